#!/bin/bash
# What routing costs (issue 11, SPEC §6): two fcgihost servers from the same binary in one
# interleaved run — "plain" (one site, no rules) and "routed" (3 sites, 10 rewrite rules and 5
# header rules, none of which changes the benchmarked requests, so both do the same work apart
# from evaluating them) — with nginx (+php-fpm for hello.php) as the anchor, on GET /1k.txt,
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
PLAIN_PID=; ROUTED_PID=
cleanup() {
    FCGIHOST_PID=$PLAIN_PID; fcgihost_stop
    FCGIHOST_PID=$ROUTED_PID; fcgihost_stop
    anchors_stop; rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

anchors_start
mkdir -p "$TMP/plain" "$TMP/routed"
cp -r "$ANCHORS/www" "$TMP/plain/www"
gcc -O2 -o "$TMP/plain/www/hello.fcgi" "$ANCHORS/hello.c" -lfcgi || die "cannot build hello.fcgi"
cp -r "$TMP/plain/www" "$TMP/routed/www"

# Three sites (the benchmark's requests reach the default one after an exact-name and a
# wildcard miss), ten rules of the kinds WordPress, MediaWiki and Laravel sites use, five header
# rules for assets: a realistic configuration whose rules the benchmarked URLs all pass through.
routing() {
    cat <<ROUTES
[site:bench]
hosts = *
root = $1/www

[site:blog]
hosts = blog.example.com www.blog.example.com *.blog.example.org
root = $1/www

[site:shop]
hosts = shop.example.com *.shop.example.net
root = $1/www

[rewrite:wiki]
match = ^/wiki/(.*)$
to = /index.php?title=\$1

[rewrite:old]
match = ^/old/(.*)$
to = /new/\$1
redirect = 301

[rewrite:api]
match = ^/api/v1/(.*)$
to = /api.php?route=\$1

[rewrite:dates]
match = ^/(\\d{4})/(\\d{2})/([^/]+)/?$
to = /index.php?year=\$1&month=\$2&name=\$3

[rewrite:feed]
match = ^/feed/?$
to = /index.php?feed=rss2

[rewrite:sitemap]
match = ^/sitemap\\.xml$
to = /sitemap.php

[rewrite:category]
match = ^/category/(.+)$
unless = file directory
to = /index.php?cat=\$1

[rewrite:tag]
match = ^/tag/(.+)$
to = /index.php?tag=\$1

[rewrite:user]
match = ^/u/([a-z0-9_]+)$
to = /profile.php?user=\$1

[rewrite:download]
match = ^/download/(.+)\\.zip$
to = /download.php?file=\$1

[headers:css]
path = *.css
set = Cache-Control: public, max-age=31536000

[headers:js]
path = *.js
set = Cache-Control: public, max-age=31536000

[headers:fonts]
path = *.woff2
set = Cache-Control: public, max-age=31536000
set = Access-Control-Allow-Origin: *

[headers:uploads]
path = /wp-content/uploads/
set = X-Content-Type-Options: nosniff

[headers:admin]
path = /wp-admin/
set = X-Frame-Options: SAMEORIGIN
ROUTES
}

fcgihost_start "$TMP/plain" "$PORT" "$(fastcgi_apps_conf "$TMP/plain/www" "$N")"
PLAIN_PID=$FCGIHOST_PID
FCGIHOST_PID=
fcgihost_start "$TMP/routed" "$((PORT + 1))" "$(fastcgi_apps_conf "$TMP/routed/www" "$N")
$(routing "$TMP/routed")"
ROUTED_PID=$FCGIHOST_PID
FCGIHOST_PID=
"$FCGIHOST_BIN" -t -c "$TMP/routed/fcgihost.conf" >/dev/null || die "the routed configuration does not load"
grep -c '^\[rewrite:' "$TMP/routed/fcgihost.conf" | grep -qx 10 || die "expected 10 rewrite rules"
grep -c '^\[headers:' "$TMP/routed/fcgihost.conf" | grep -qx 5 || die "expected 5 header rules"

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

for page in $PAGES; do
    targets=(); for s in "${servers[@]}"; do targets+=("${s%%=*}=http://127.0.0.1:${s#*=}/$page"); done
    for c in $CONNS; do
        log "$page: bench.py -d $D -r $R -c $c (about $((D * R * ${#targets[@]})) s)"
        "$ANCHORS/bench.py" -d "$D" -r "$R" -c "$c" "${targets[@]}" | tee "$TMP/$page-c$c.txt"
        [ "${PIPESTATUS[0]}" = 0 ] || die "bench.py failed for $page at -c $c"
    done
done

{
    echo "## Routing cost: 3 sites, 10 rewrite rules, 5 header rules (bench/routing.sh)"
    echo
    echo "$INFO  "
    echo "wrk -t1 through anchors/bench.py -d $D -r $R: median req/s and median p99 of $R interleaved" \
         "rounds of ${D} s. plain and routed are the same binary ($FCGIHOST_BIN, $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null))" \
         "with the same applications (as bench/fastcgi.sh: $N processes each, accessLog off); routed adds" \
         "the sites and rules of the script, which the benchmarked URLs all go through without any" \
         "of them changing the answer. nginx (1 worker, php-fpm pm static $N) is the anchor."
    echo
    python3 - "$TMP" "$PAGES" $CONNS <<'PY'
import re, sys
tmp, pages, conns = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
line = re.compile(r"^(\S+)\s+(\d+) req/s\s+p99\s+([\d.na]+) ms.*non2xx (\d+)\s*(.*)$")
print("| page | -c | plain req/s | routed req/s | **routed ÷ plain** | plain ÷ nginx | routed ÷ nginx | p99 ms plain / routed | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
worst = None
for page in pages:
    for c in conns:
        rows = {m.group(1): m.groups() for m in map(line.match, open(f"{tmp}/{page}-c{c}.txt")) if m}
        p, r, n = (float(rows[k][1]) for k in ("plain", "routed", "nginx"))
        ratio = r / p
        worst = ratio if worst is None else min(worst, ratio)
        bad = sum(int(rows[k][3]) for k in rows)
        print(f"| {page} | {c} | {p:.0f} | {r:.0f} | **{ratio:.3f}** | {p / n:.2f} | {r / n:.2f} "
              f"| {rows['plain'][2]} / {rows['routed'][2]} | {bad} |")
print()
print(f"Lowest routed ÷ plain: **{worst:.3f}** (Done means: at least 0.97).")
PY
    echo
    echo '<details><summary>raw bench.py output and warm-up</summary>'
    echo
    for page in $PAGES; do for c in $CONNS; do
        echo '```'; echo "$page -c $c"; cat "$TMP/$page-c$c.txt"; echo '```'
    done; done
    echo '```'; echo "warm-up: server url requests non-2xx"; cat "$TMP/warm.txt"; echo '```'
    echo '</details>'
} | results_section routing
log "wrote the 'routing' section of $RESULTS"
