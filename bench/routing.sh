#!/bin/bash
# What routing costs (issue 11, SPEC §6): one fcgihost server with two listeners, measured in one
# interleaved run — "plain" (a site of its own, no rules) and "routed" (3 sites, 10 rewrite rules
# and 5 header rules, none of which changes the benchmarked requests, so both do the same work
# apart from evaluating them, with the same FastCGI processes) — with nginx (+php-fpm for
# hello.php) as the anchor, on GET /1k.txt,
# /hello.php and /hello.fcgi. Done means: routed ÷ plain within 3 % (so the ratios of
# bench/static.sh and bench/fastcgi.sh do not move). Writes the "routing" section of
# bench/RESULTS.md.
#
#   bench/routing.sh                # needs build/fcgihost; run as root
#   D=5 R=5 CONNS="16 64" PAGES="1k.txt hello.php hello.fcgi" PORT=8090 bench/routing.sh
set -uo pipefail
. "$(dirname "$0")/lib.sh"

D=${D:-5}; R=${R:-5}; CONNS=${CONNS:-16 64}; PORT=${PORT:-8090}; WARM=${WARM:-2}
PAGES=${PAGES:-1k.txt hello.php hello.fcgi}
N=4
require_fcgihost
require_tools gcc php-cgi

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-routing.XXXXXX)
chmod 755 "$TMP" # the servers run as www-data: their directories below must be reachable
ROUTED_PID=
cleanup() {
    FCGIHOST_PID=$ROUTED_PID; fcgihost_stop
    anchors_stop; rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

anchors_start
mkdir -p "$TMP/routed"
cp -r "$ANCHORS/www" "$TMP/routed/www"
gcc -O2 -o "$TMP/routed/www/hello.fcgi" "$ANCHORS/hello.c" -lfcgi || die "cannot build hello.fcgi"

# Three sites (the benchmark's requests reach the default one after an exact-name and a
# wildcard miss), ten rules of the kinds WordPress, MediaWiki and Laravel sites use, five header
# rules for assets: a realistic configuration whose rules the benchmarked URLs all pass through.
# plain is a site of its own on its own listener, with no rule: the same server and the same
# FastCGI processes answer both, so that only the routing differs (two servers' process pools are
# scheduled differently enough to move FastCGI throughput by ±10 % from run to run).
routing() {
    cat <<ROUTES
[site:plain]
hosts = 127.0.0.1
listen = 127.0.0.1:$PORT
root = $1/www

[site:bench]
hosts = *
listen = 127.0.0.1:$((PORT + 1))
root = $1/www

[site:blog]
hosts = blog.example.com www.blog.example.com *.blog.example.org
listen = 127.0.0.1:$((PORT + 1))
root = $1/www

[site:shop]
hosts = shop.example.com *.shop.example.net
listen = 127.0.0.1:$((PORT + 1))
root = $1/www

[rewrite:wiki]
site = bench blog shop
match = ^/wiki/(.*)$
to = /index.php?title=\$1

[rewrite:old]
site = bench blog shop
match = ^/old/(.*)$
to = /new/\$1
redirect = 301

[rewrite:api]
site = bench blog shop
match = ^/api/v1/(.*)$
to = /api.php?route=\$1

[rewrite:dates]
site = bench blog shop
match = ^/(\\d{4})/(\\d{2})/([^/]+)/?$
to = /index.php?year=\$1&month=\$2&name=\$3

[rewrite:feed]
site = bench blog shop
match = ^/feed/?$
to = /index.php?feed=rss2

[rewrite:sitemap]
site = bench blog shop
match = ^/sitemap\\.xml$
to = /sitemap.php

[rewrite:category]
site = bench blog shop
match = ^/category/(.+)$
unless = file directory
to = /index.php?cat=\$1

[rewrite:tag]
site = bench blog shop
match = ^/tag/(.+)$
to = /index.php?tag=\$1

[rewrite:user]
site = bench blog shop
match = ^/u/([a-z0-9_]+)$
to = /profile.php?user=\$1

[rewrite:download]
site = bench blog shop
match = ^/download/(.+)\\.zip$
to = /download.php?file=\$1

[headers:css]
site = bench blog shop
path = *.css
set = Cache-Control: public, max-age=31536000

[headers:js]
site = bench blog shop
path = *.js
set = Cache-Control: public, max-age=31536000

[headers:fonts]
site = bench blog shop
path = *.woff2
set = Cache-Control: public, max-age=31536000
set = Access-Control-Allow-Origin: *

[headers:uploads]
site = bench blog shop
path = /wp-content/uploads/
set = X-Content-Type-Options: nosniff

[headers:admin]
site = bench blog shop
path = /wp-admin/
set = X-Frame-Options: SAMEORIGIN
ROUTES
}

# One server: its [server] listen (PORT + 2, every site) is only for the start-up check.
fcgihost_start "$TMP/routed" "$((PORT + 2))" "$(fastcgi_apps_conf "$TMP/routed/www" "$N")
$(routing "$TMP/routed")"
ROUTED_PID=$FCGIHOST_PID
FCGIHOST_PID=
"$FCGIHOST_BIN" -t -c "$TMP/routed/fcgihost.conf" >/dev/null || die "the routed configuration does not load"
grep -c '^\[rewrite:' "$TMP/routed/fcgihost.conf" | grep -qx 10 || die "expected 10 rewrite rules"
grep -c '^\[headers:' "$TMP/routed/fcgihost.conf" | grep -qx 5 || die "expected 5 header rules"
grep -c '^site = bench blog shop' "$TMP/routed/fcgihost.conf" | grep -qx 15 || die "expected 15 rules limited to the routed sites"

servers=(plain="$PORT" routed="$((PORT + 1))" nginx=8081)
for s in "${servers[@]}"; do
    expect_body "http://127.0.0.1:${s#*=}/hello.php" "Hello, world"
    expect_body "http://127.0.0.1:${s#*=}/hello.fcgi" "Hello, world"
done
log "warming up every target: ${WARM} s of wrk -c64 per page"
for s in "${servers[@]}"; do
    for page in $PAGES; do
        printf '%s ' "${s%%=*}"; warm_up "$WARM" "http://127.0.0.1:${s#*=}/$page"
    done
done | tee "$TMP/warm.txt" >&2

# One bench.py round at a time, plain and routed swapping places every round (a fixed order biased
# the first runs' figures by a few per cent on this machine), so that each round gives a paired
# routed ÷ plain ratio measured minutes apart at most: the table shows the median of those ratios.
for page in $PAGES; do
    for c in $CONNS; do
        log "$page: $R rounds of bench.py -d $D -r 1 -c $c (about $((D * R * ${#servers[@]})) s)"
        for round in $(seq "$R"); do
            if [ $((round % 2)) = 1 ]; then order=("${servers[@]}")
            else order=("${servers[1]}" "${servers[0]}" "${servers[@]:2}"); fi
            targets=(); for s in "${order[@]}"; do targets+=("${s%%=*}=http://127.0.0.1:${s#*=}/$page"); done
            "$ANCHORS/bench.py" -d "$D" -r 1 -c "$c" "${targets[@]}" | sed "s/^/$round /" ||
                die "bench.py failed for $page at -c $c"
        done | tee "$TMP/$page-c$c.txt"
    done
done

# plain and routed at the same time: two wrk -t1 -c8, one per listener, for D s, R rounds. Both
# share the same moments of the machine (a 5 s run alone moves by ±15 % from one run to the next
# here), and the server's loop serves both: routed gets fewer requests through exactly to the
# extent that its requests cost the server more.
for page in $PAGES; do
    for i in $(seq "$R"); do
        wrk -t1 -c8 -d"${D}s" "http://127.0.0.1:$PORT/$page" >"$TMP/cc-plain.txt" 2>&1 &
        wp=$!
        wrk -t1 -c8 -d"${D}s" "http://127.0.0.1:$((PORT + 1))/$page" >"$TMP/cc-routed.txt" 2>&1
        wait "$wp"
        p=$(awk '/requests in/ {print $1}' "$TMP/cc-plain.txt")
        r=$(awk '/requests in/ {print $1}' "$TMP/cc-routed.txt")
        [ "${p:-0}" -gt 0 ] && [ "${r:-0}" -gt 0 ] || die "wrk answered no request for $page (concurrent)"
        echo "$page $p $r"
    done
done | tee "$TMP/concurrent.txt" >&2

# The server's own CPU time per request, plain and routed in alternation (what routing adds is
# work of the server process; its throughput with FastCGI also depends on how the kernel schedules
# wrk, the server and 4 application processes on the machine's cores, which moves req/s by several
# per cent from round to round on a 2-core machine while the server's CPU per request does not).
TCK=$(getconf CLK_TCK)
for page in $PAGES; do
    for i in $(seq "$R"); do
        pair=("${servers[@]:0:2}") # plain and routed, swapping places every round
        [ $((i % 2)) = 0 ] && pair=("${servers[1]}" "${servers[0]}")
        for s in "${pair[@]}"; do
            t0=$(cpu_ticks "$ROUTED_PID")
            n=$(wrk -t1 -c16 -d"${D}s" "http://127.0.0.1:${s#*=}/$page" | awk '/requests in/ {print $1}')
            t1=$(cpu_ticks "$ROUTED_PID")
            [ "${n:-0}" -gt 0 ] || die "wrk answered no request from ${s%%=*} for $page"
            echo "${s%%=*} $page $n $((t1 - t0))"
        done
    done
done | tee "$TMP/cpu.txt" >&2

# Where the server's CPU goes, sampled: perf records the server (cpu-clock, 1000 Hz, DWARF call
# chains) while one wrk -t1 -c16 loads one listener for D s; a sample counts as routing when a
# function of the routing is on its stack (choosing the site, the rewrite rules with PCRE2 and
# their JIT code, matching the header rules). Unlike throughput, which moves by ±10 % from one
# round to the next on this machine, the share of samples in a function has a statistical error of
# a few tenths of a per cent at these sample counts: it bounds what routing can cost in throughput.
ROUTING_FNS="http_site_for rewrite_run rewrite_io_init rewrite_io_dispose dispatch_header_rules append_rule_headers rule_sets"
if command -v perf >/dev/null; then
    for page in $PAGES; do
        for s in "${servers[@]:0:2}"; do
            wrk -t1 -c16 -d"$((D + 2))s" "http://127.0.0.1:${s#*=}/$page" >/dev/null &
            wp=$!
            sleep 1 # wrk's connections are open and busy before the sampling starts
            perf record -q -e cpu-clock -F 1000 --call-graph dwarf,16384 -p "$ROUTED_PID" \
                -o "$TMP/perf.data" -- sleep "$D" >/dev/null 2>&1
            wait "$wp"
            perf script -i "$TMP/perf.data" -F ip,sym,dso 2>/dev/null |
                "$TOP/bench/stack_share.py" "$ROUTING_FNS" libpcre2 /perf- | sed "s/^/${s%%=*} $page /"
        done
    done | tee "$TMP/profile.txt" >&2
else
    log "perf is missing (package linux-perf): no profile of the routing's share"
fi

{
    echo "## Routing cost: 3 sites, 10 rewrite rules, 5 header rules (bench/routing.sh)"
    echo
    echo "$INFO  "
    echo "wrk -t1 through anchors/bench.py -d $D -r 1, $R rounds of ${D} s per server, plain and routed" \
         "swapping places every round: median req/s, median p99, and the median of the $R paired" \
         "routed ÷ plain ratios. plain and routed are two listeners of one server ($FCGIHOST_BIN, $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null))" \
         "sharing its applications (as bench/fastcgi.sh: $N processes each, accessLog off): plain is a" \
         "site of its own without rules; routed goes through the 3 sites (an exact-name and a wildcard" \
         "miss, then the default site), 10 rewrite rules and 5 header rules of the script, none of" \
         "which changes the answer. nginx (1 worker, php-fpm pm static $N) is the anchor."
    echo
    python3 - "$TMP" "$PAGES" $CONNS <<'PY'
import re, statistics, sys
tmp, pages, conns = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
line = re.compile(r"^(\d+) (\S+)\s+(\d+) req/s\s+p99\s+([\d.na]+) ms.*non2xx (\d+)\s*(.*)$")
print("| page | -c | plain req/s | routed req/s | **routed ÷ plain** (median of rounds) | plain ÷ nginx | routed ÷ nginx | p99 ms plain / routed | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
worst, rows = None, []
for page in pages:
    for c in conns:
        runs = {}  # server -> {round: (req/s, p99, non-2xx)}
        for m in map(line.match, open(f"{tmp}/{page}-c{c}.txt")):
            if m:
                runs.setdefault(m.group(2), {})[int(m.group(1))] = (float(m.group(3)), float(m.group(4)), int(m.group(5)))
        med = lambda k, i: statistics.median(v[i] for v in runs[k].values())
        p, r, n = (med(k, 0) for k in ("plain", "routed", "nginx"))
        ratio = statistics.median(runs["routed"][i][0] / runs["plain"][i][0] for i in runs["plain"] if i in runs["routed"])
        worst = ratio if worst is None else min(worst, ratio)
        rows.append(ratio)
        bad = sum(v[2] for k in runs for v in runs[k].values())
        print(f"| {page} | {c} | {p:.0f} | {r:.0f} | **{ratio:.3f}** | {p / n:.2f} | {r / n:.2f} "
              f"| {med('plain', 1):.2f} / {med('routed', 1):.2f} | {bad} |")
print()
print(f"Lowest routed ÷ plain: **{worst:.3f}**; mean of the rows: **{statistics.mean(rows):.3f}** (Done means: within 3 %;"
      " one row's median of paired 4-5 s rounds moves by ±5 % on this machine from run to run, the"
      " profile below measures routing's cost without that noise).")
PY
    echo
    echo "The server process's CPU time per request (utime + stime of /proc/PID/stat around wrk -t1 -c16" \
         "-d $D, $R rounds, plain and routed swapping places every round; median), which does not depend on how the" \
         "kernel shares the cores between wrk, the server and the application processes:"
    echo
    python3 - "$TMP/cpu.txt" "$PAGES" "$TCK" <<'PY'
import statistics, sys
rows, pages, tck = open(sys.argv[1]).read().split("\n"), sys.argv[2].split(), int(sys.argv[3])
us = {}
for r in filter(None, rows):
    name, page, n, ticks = r.split()
    us.setdefault((name, page), []).append(int(ticks) * 1e6 / tck / int(n))
print("| page | plain µs/request | routed µs/request | **routed ÷ plain** |")
print("|---|---:|---:|---:|")
for page in pages:
    p, r = (statistics.median(us[(k, page)]) for k in ("plain", "routed"))
    print(f"| {page} | {p:.2f} | {r:.2f} | **{r / p:.3f}** |")
PY
    echo
    echo "plain and routed at the same time (one wrk -t1 -c8 per listener for $D s, $R rounds; what" \
         "each got through while both ran): the most direct measure of what routing costs, as both" \
         "share the same moments of the machine:"
    echo
    python3 - "$TMP/concurrent.txt" "$PAGES" <<'PY'
import statistics, sys
rows, pages = [l.split() for l in open(sys.argv[1]) if l.strip()], sys.argv[2].split()
print("| page | plain requests | routed requests | **routed ÷ plain** (median of rounds) | lowest / highest round |")
print("|---|---:|---:|---:|---|")
for page in pages:
    rs = [(int(p), int(r)) for pg, p, r in rows if pg == page]
    ratios = [r / p for p, r in rs]
    print(f"| {page} | {statistics.median(p for p, _ in rs):.0f} | {statistics.median(r for _, r in rs):.0f} "
          f"| **{statistics.median(ratios):.3f}** | {min(ratios):.3f} / {max(ratios):.3f} |")
PY
    if [ -s "$TMP/profile.txt" ]; then
        echo
        echo "The server's CPU samples with a routing function on their stack (perf record -e cpu-clock" \
             "-F 1000 --call-graph dwarf on the server during $D s of wrk -t1 -c16 against one listener;" \
             "functions: $ROUTING_FNS): what routing costs the server, measured without the" \
             "throughput noise. plain also chooses its site (one exact name), with no rule to run:"
        echo
        python3 - "$TMP/profile.txt" <<'PY'
import sys
rows = {}
for l in open(sys.argv[1]):
    name, page, n, hit = l.split()
    rows.setdefault(page, {})[name] = (int(n), int(hit))
print("| page | plain: samples, routing share | routed: samples, routing share | **routing's added share of the server's CPU** |")
print("|---|---:|---:|---:|")
for page, v in rows.items():
    (pn, ph), (rn, rh) = v["plain"], v["routed"]
    print(f"| {page} | {pn}, {100 * ph / pn:.2f} % | {rn}, {100 * rh / rn:.2f} % | **{100 * (rh / rn - ph / pn):.2f} %** |")
PY
    fi
    echo
    echo '<details><summary>raw bench.py output (round server ...) and warm-up</summary>'
    echo
    for page in $PAGES; do for c in $CONNS; do
        echo '```'; echo "$page -c $c"; cat "$TMP/$page-c$c.txt"; echo '```'
    done; done
    echo '```'; echo "warm-up: server url requests non-2xx"; cat "$TMP/warm.txt"; echo '```'
    echo '```'; echo "CPU per request: listener page requests ticks"; cat "$TMP/cpu.txt"; echo '```'
    echo '```'; echo "concurrent: page plain-requests routed-requests"; cat "$TMP/concurrent.txt"; echo '```'
    if [ -s "$TMP/profile.txt" ]; then
        echo '```'; echo "profile: listener page samples routing-samples"; cat "$TMP/profile.txt"; echo '```'
    fi
    echo '</details>'
} | results_section routing
log "wrote the 'routing' section of $RESULTS"
