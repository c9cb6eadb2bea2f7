#!/bin/bash
# HTTPS (issue 12): fcgihost against the anchors' TLS ports (nginx 8441, lighttpd 8442, h2o 8444,
# Caddy 8445), every server with the certificate of anchors/start.sh ($RUN/tls, self-signed
# P-256), in one run whose rounds are interleaved (each round visits every server in turn):
#   1. new TLS 1.3 connections per second, full and resumed handshakes: bench/tls_connect.c
#      (HS_CONNS clients, each: connect, handshake, GET /1k.txt, close, again; resumed: each
#      client offers the ticket of its previous connection), with the server's CPU time per
#      connection read from /proc (the client needs about as much CPU as the server, so on a
#      small machine connections/s may be the client's limit; CPU per connection is not);
#   2. GET /1k.txt and /hello.php over HTTPS/1.1: wrk through anchors/bench.py at CONNS
#      connections (keep-alive: one handshake per connection, then requests). Caddy is left out of
#      the hello.php rows: anchors/start.sh sends its PHP to nginx's php-fpm pool (4 workers), and
#      nginx keeps its FastCGI connections to that pool alive (fastcgi_keep_conn, keepalive 8),
#      each holding a worker, so after nginx has run hello.php Caddy gets no answer for a minute;
#   3. the same over HTTP/2: h2load -c16 -m32 (fcgihost: "not implemented yet" as long as its ALPN
#      does not offer h2; measured as soon as it does);
#   4. a 100 MiB file over TLS: BIG_N sequential curl downloads per server and round, MB/s and the
#      server's CPU time per download.
# Writes the "tls" section of bench/RESULTS.md.
#
#   bench/tls.sh                    # needs build/fcgihost (make build); run as root
#   D=5 R=3 CONNS="16 256" HS_CONNS=16 BIG_N=3 WARM=2 PORT=8093 TLS_PORT=8493 bench/tls.sh
#   bench/tls.sh --anchors-only     # no fcgihost, prints the anchors' numbers, RESULTS.md untouched
set -uo pipefail
. "$(dirname "$0")/lib.sh"

D=${D:-5}; R=${R:-3}; CONNS=${CONNS:-16 256}; HS_CONNS=${HS_CONNS:-16}; BIG_N=${BIG_N:-3}
WARM=${WARM:-2}; PORT=${PORT:-8093}; TLS_PORT=${TLS_PORT:-8493}
PAGES="1k.txt hello.php"
N=4     # FastCGI processes for hello.php, as anchors/start.sh gives every anchor
BIG=100m.bin; BIG_BYTES=$((100 * 1024 * 1024))
ANCHORS_ONLY=0; [ "${1:-}" = --anchors-only ] && ANCHORS_ONLY=1
[ $ANCHORS_ONLY = 1 ] || require_fcgihost
require_tools gcc php-cgi h2load openssl

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-tls.XXXXXX)
cleanup() { fcgihost_stop; anchors_stop; rm -f "$RUN/www/$BIG"; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

gcc -O2 -Wall -o "$TMP/tls_connect" "$BENCH_DIR/tls_connect.c" -lssl -lcrypto ||
    die "cannot build bench/tls_connect.c (libssl-dev)"

anchors_start
servers=(nginx=8441 lighttpd=8442 h2o=8444 caddy=8445)
for s in "${servers[@]}"; do
    wait_http "https://127.0.0.1:${s#*=}/1k.txt" 10 || die "anchor ${s%%=*} does not serve https://127.0.0.1:${s#*=}/1k.txt"
done
mkdir -p "$TMP/www"
head -c "$BIG_BYTES" /dev/urandom >"$TMP/www/$BIG"
# The anchors serve $RUN/www: the same file (one inode, one copy in the page cache).
ln "$TMP/www/$BIG" "$RUN/www/$BIG" 2>/dev/null || cp "$TMP/www/$BIG" "$RUN/www/$BIG"
chmod a+r "$RUN/www/$BIG"
if [ $ANCHORS_ONLY = 0 ]; then
    cp -r "$ANCHORS/www/." "$TMP/www/"
    gcc -O2 -o "$TMP/www/hello.fcgi" "$ANCHORS/hello.c" -lfcgi || die "cannot build hello.fcgi"
    port_free "$TLS_PORT" || die "port $TLS_PORT is busy; set TLS_PORT=... to use another"
    fcgihost_start "$TMP" "$PORT" "listen = 127.0.0.1:$TLS_PORT tls
tlsCertificate = $RUN/tls/cert.pem
tlsKey = $RUN/tls/key.pem
$(fastcgi_apps_conf "$TMP/www" "$N")"
    servers=(fcgihost="$TLS_PORT" "${servers[@]}")
fi

# php_ok NAME: whether NAME's hello.php is measured (see Caddy above).
php_ok() { [ "$1" != caddy ]; }

# server_pids NAME: the processes whose CPU time is the server's (workers and helpers; not PHP's).
server_pids() {
    case $1 in
        fcgihost) echo "$FCGIHOST_PID" $(pgrep -P "$FCGIHOST_PID" -x fcgihost) ;;
        nginx) nginx_pids ;;
        lighttpd) lighttpd_pids ;;
        h2o) h2o_pids ;;
        caddy) cat "$RUN/caddy/pid" ;;
    esac
}
# cpu_ticks PID...: user + system time of the processes, in clock ticks.
cpu_ticks() {
    local p t s=0
    for p in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
        s=$((s + ${t:-0}))
    done
    echo $s
}

# Every server answers each page over TLS 1.3 with HTTP/1.1, and serves the same 100 MiB.
for s in "${servers[@]}"; do
    name=${s%%=*}; port=${s#*=}
    expect_body "https://127.0.0.1:$port/hello.php" "Hello, world"
    got=$(curl -sk --http1.1 -o /dev/null -w '%{http_code} %{size_download}' "https://127.0.0.1:$port/1k.txt")
    [ "$got" = "200 1024" ] || die "$name: GET /1k.txt over https: $got"
    proto=$(openssl s_client -connect "127.0.0.1:$port" -alpn http/1.1 </dev/null 2>/dev/null |
            awk '/^New, / {print $2}')
    [ "$proto" = "TLSv1.3," ] || die "$name: no TLS 1.3 handshake ($proto)"
    [ -n "$(server_pids "$name")" ] || die "$name: no process found to measure"
    log "$name: https://127.0.0.1:$port ok, processes $(server_pids "$name" | tr '\n' ' ')"
done
log "warming up hello.php: ${WARM} s of wrk -c64 per server"
for s in "${servers[@]}"; do
    php_ok "${s%%=*}" || continue
    printf '%s ' "${s%%=*}"; warm_up "$WARM" "https://127.0.0.1:${s#*=}/hello.php"
done | tee "$TMP/warm.txt" >&2
for s in "${servers[@]}"; do echo "${s%%=*}"; done >"$TMP/servers.txt"
touch "$TMP/hs-errors.txt"
if [ $ANCHORS_ONLY = 0 ]; then
    touch "$TMP/error.log"; wc -l <"$TMP/error.log" >"$TMP/errlog_before"
fi

# 1. New TLS 1.3 connections, full and resumed.
for mode in full resumed; do
    flag=; [ $mode = resumed ] && flag=-r
    log "new connections ($mode handshakes): tls_connect -c $HS_CONNS -d $D $flag, $R rounds"
    for r in $(seq "$R"); do
        for s in "${servers[@]}"; do
            name=${s%%=*}; port=${s#*=}
            pids=$(server_pids "$name")
            c0=$(cpu_ticks $pids)
            out=$("$TMP/tls_connect" -c "$HS_CONNS" -d "$D" $flag 127.0.0.1 "$port" 2>>"$TMP/hs-errors.txt")
            c1=$(cpu_ticks $pids)
            echo "$name $r $out server_ticks $((c1 - c0))" | tee -a "$TMP/hs-$mode.txt" >&2
        done
    done
done

# 2. HTTPS/1.1 with wrk (keep-alive), interleaved by bench.py.
for page in $PAGES; do
    targets=()
    for s in "${servers[@]}"; do
        [ "$page" = hello.php ] && ! php_ok "${s%%=*}" && continue
        targets+=("${s%%=*}=https://127.0.0.1:${s#*=}/$page")
    done
    for c in $CONNS; do
        log "HTTPS/1.1 $page: bench.py -d $D -r $R -c $c (about $((D * R * ${#targets[@]})) s)"
        "$ANCHORS/bench.py" -d "$D" -r "$R" -c "$c" "${targets[@]}" | tee "$TMP/h1-$page-c$c.txt"
        [ "${PIPESTATUS[0]}" = 0 ] || die "bench.py failed for $page at -c $c"
    done
done

# 3. HTTP/2 with h2load, where the server offers h2.
mkdir -p "$TMP/h2"
for page in $PAGES; do
    log "HTTP/2 $page: h2load -D $D -c 16 -m 32, $R rounds"
    for r in $(seq "$R"); do
        for s in "${servers[@]}"; do
            name=${s%%=*}; port=${s#*=}; f="$TMP/h2/$page-$name-$r.txt"
            [ "$page" = hello.php ] && ! php_ok "$name" && continue
            v=$(curl -sk --http2 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$port/1k.txt")
            if [ "$v" != 2 ]; then
                echo "no h2 (ALPN gave HTTP/$v)" >"$f"
                continue
            fi
            h2load -D "$D" -c 16 -m 32 -t 1 "https://127.0.0.1:$port/$page" >"$f" 2>&1
        done
    done
done

# 4. 100 MiB over TLS (HTTP/1.1), sequential downloads.
log "$BIG: $BIG_N sequential curl downloads per server, $R rounds"
for r in $(seq "$R"); do
    for s in "${servers[@]}"; do
        name=${s%%=*}; port=${s#*=}
        pids=$(server_pids "$name")
        c0=$(cpu_ticks $pids)
        for i in $(seq "$BIG_N"); do
            curl -sk --http1.1 -o /dev/null -w "$name $r %{http_code} %{size_download} %{time_total}\n" \
                "https://127.0.0.1:$port/$BIG" >>"$TMP/big.txt"
        done
        c1=$(cpu_ticks $pids)
        echo "$name $r $((c1 - c0))" >>"$TMP/big-cpu.txt"
    done
done
tail -n $((R * BIG_N * ${#servers[@]})) "$TMP/big.txt" >&2

if [ $ANCHORS_ONLY = 0 ]; then
    tail -n +"$(($(cat "$TMP/errlog_before") + 1))" "$TMP/error.log" >"$TMP/errlog_run.txt"
fi

# Tables: medians over the rounds, fcgihost ÷ each anchor and ÷ the best anchor.
report() {
    echo "## HTTPS: TLS 1.3 handshakes, HTTPS/1.1, HTTP/2, 100 MiB (bench/tls.sh)"
    echo
    echo "$INFO  "
    echo "One run, every measurement interleaved: each of $R rounds visits every server in turn." \
         "All servers use anchors/start.sh's certificate (self-signed ECDSA P-256), TLS 1.3" \
         "(TLS_AES_256_GCM_SHA384, X25519), HTTP/1.1 by ALPN. nginx 1 worker, lighttpd 1 process," \
         "h2o 1 thread, Caddy GOMAXPROCS=1 (anchors/start.sh); fcgihost: accessLog off, hello.php" \
         "on $N php-cgi processes. Caddy has no hello.php rows: anchors/start.sh sends its PHP to" \
         "nginx's php-fpm pool, whose $N workers nginx holds with kept-alive FastCGI connections" \
         "(fastcgi_keep_conn, keepalive 8), so Caddy gets no answer once nginx has run hello.php."
    echo
    python3 - "$TMP" "$R" "$D" "$HS_CONNS" "$BIG_N" "$(getconf CLK_TCK)" "$PAGES" $CONNS <<'EOF'
import glob, os, re, statistics, sys
tmp, R, D, hs_conns, big_n, tck = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
pages, conns = sys.argv[7].split(), sys.argv[8:]
med = statistics.median
summary = []

def ratios(vals, what, lower_better=False, fmt="{:.2f}"):
    """vals: {server: value}; one summary line, fcgihost against the best anchor."""
    if "fcgihost" not in vals or vals["fcgihost"] is None:
        return
    anchors = {n: v for n, v in vals.items() if n != "fcgihost" and v}
    if not anchors:
        return
    pick = min if lower_better else max
    best = pick(anchors, key=anchors.get)
    f = vals["fcgihost"]
    r = (anchors[best] / f) if lower_better else (f / anchors[best])
    each = ", ".join(f"{n} {(v / f if lower_better else f / v):.2f}" for n, v in anchors.items())
    verdict = "meets the target" if r >= 1 else "below the target"
    summary.append(f"- {what}: fcgihost vs the best anchor ({best}) **{r:.2f}** ({verdict}); each: {each}")

# 1. Handshakes.
print(f"### New TLS 1.3 connections (bench/tls_connect.c, {hs_conns} clients, {D} s per round)")
print()
print("Each connection: TCP connect, TLS 1.3 handshake, GET /1k.txt (Connection: close), whole answer read,")
print("close_notify, close. *resumed*: each client offers the ticket from its previous connection (used once,")
print("as browsers do); the resumed column says how many handshakes the server actually resumed. Server CPU")
print("per connection is the server processes' user+system time (/proc, 10 ms ticks) over the round divided by")
print("its connections: it does not depend on the client, which needs about as much CPU as the server and")
print("shares the machine with it (client CPU near 100% means connections/s is the client's limit).")
print()
print("| handshake | server | conn/s | resumed | handshake p50 / p99 ms | conn p99 ms | server CPU µs/conn | client CPU % | errors | fcgihost ÷ server conn/s | server ÷ fcgihost µs/conn |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for mode in ("full", "resumed"):
    path = f"{tmp}/hs-{mode}.txt"
    rows = {}
    for ln in open(path):
        t = ln.split()
        name, kv = t[0], dict(zip(t[2::2], t[3::2]))
        rows.setdefault(name, []).append(kv)
    stats = {}
    for name, rs in rows.items():
        g = lambda k: med(float(x[k]) for x in rs)
        done = sum(int(x["done"]) for x in rs)
        us = med(int(x["server_ticks"]) / tck * 1e6 / max(1, int(x["done"])) for x in rs)
        stats[name] = dict(cps=g("conns/s"), p50=g("hs_p50_ms"), p99=g("hs_p99_ms"), cp99=g("p99_ms"),
                           res=sum(int(x["resumed"]) for x in rs) / max(1, done), us=us,
                           cli=g("client_cpu_pct"), err=sum(int(x["errors"]) for x in rs))
    f = stats.get("fcgihost")
    for name, s in stats.items():
        rc = f"{f['cps'] / s['cps']:.2f}" if f and s["cps"] else "-"
        ru = f"{s['us'] / f['us']:.2f}" if f and f["us"] else "-"
        print(f"| {mode} | {name} | {s['cps']:.0f} | {100 * s['res']:.0f}% | {s['p50']:.2f} / {s['p99']:.2f} "
              f"| {s['cp99']:.2f} | {s['us']:.0f} | {s['cli']:.0f} | {s['err']} | {rc} | {ru} |")
    ratios({n: s["cps"] for n, s in stats.items()}, f"{mode} handshakes, connections/s")
    ratios({n: s["us"] for n, s in stats.items()}, f"{mode} handshakes, server CPU per connection (lower is better)",
           lower_better=True)
print()

# 2. HTTPS/1.1.
line = re.compile(r"^(\S+)\s+(\d+) req/s\s+p99\s+([\d.na]+) ms.*non2xx (\d+)\s*(.*)$")
print(f"### HTTPS/1.1: wrk -t1 through anchors/bench.py -d {D} -r {R} (keep-alive)")
print()
print("Median req/s and median p99 of the rounds; non-2xx summed over the rounds.")
print()
print("| page | -c | server | req/s | p99 ms | non-2xx | socket errors | fcgihost ÷ server |")
print("|---|---:|---|---:|---:|---:|---|---:|")
for page in pages:
    for c in conns:
        rows = [m.groups() for m in map(line.match, open(f"{tmp}/h1-{page}-c{c}.txt")) if m]
        rps = {r[0]: float(r[1]) for r in rows}
        for name, r, p99, bad, sock in rows:
            rr = f"{rps['fcgihost'] / float(r):.2f}" if "fcgihost" in rps and float(r) else "-"
            print(f"| {page} | {c} | {name} | {float(r):.0f} | {p99} | {bad} | {sock.strip() or '-'} | {rr} |")
        ratios(rps, f"HTTPS/1.1 {page} -c {c}, req/s")
print()

# 3. HTTP/2.
def unit_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)$", v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")

def parse_h2(path):
    """(req/s, mean ms, max ms, failed + errored) of one h2load run; None: the server offered no
    h2; "absent": not run."""
    if not os.path.exists(path):
        return "absent"
    text = open(path).read()
    m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", text)
    if not m:
        return None
    req = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored", text)
    t = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", text)
    return (float(m.group(1)), unit_ms(t.group(3)) if t else float("nan"),
            unit_ms(t.group(2)) if t else float("nan"), int(req.group(1)) + int(req.group(2)) if req else 0)

print(f"### HTTP/2: h2load -D {D} -c 16 -m 32 -t 1")
print()
print("Median req/s of the rounds; h2load gives no percentiles: mean and max time per request (medians).")
print()
print("| page | server | req/s | mean ms | max ms | failed+errored | fcgihost ÷ server |")
print("|---|---|---:|---:|---:|---:|---:|")
for page in pages:
    stats, order = {}, []
    for name in open(f"{tmp}/servers.txt").read().split():
        runs = [parse_h2(f"{tmp}/h2/{page}-{name}-{r}.txt") for r in range(1, R + 1)]
        runs = [x for x in runs if x != "absent"]
        if not runs:
            continue  # not measured for this page (Caddy's hello.php)
        order.append(name)
        ok = [x for x in runs if x]
        stats[name] = ok and {"rps": [x[0] for x in ok], "mean": [x[1] for x in ok],
                              "max": [x[2] for x in ok], "bad": sum(x[3] for x in ok)}
    vals = {n: (med(stats[n]["rps"]) if stats.get(n) else None) for n in order}
    for n in order:
        s = stats.get(n)
        if not s:
            what = "not implemented yet (ALPN offers http/1.1 only)" if n == "fcgihost" else "no h2"
            print(f"| {page} | {n} | {what} | | | | |")
            continue
        f = vals.get("fcgihost")
        rr = f"{f / vals[n]:.2f}" if f else "-"
        print(f"| {page} | {n} | {vals[n]:.0f} | {med(s['mean']):.2f} | {med(s['max']):.2f} | {s['bad']} | {rr} |")
    if vals.get("fcgihost") is None and "fcgihost" in vals:
        anchors = {n: v for n, v in vals.items() if n != "fcgihost" and v}
        if anchors:
            best = max(anchors, key=anchors.get)
            summary.append(f"- HTTP/2 {page}: fcgihost not implemented yet; the target is {best}'s {anchors[best]:.0f} req/s")
    else:
        ratios(vals, f"HTTP/2 {page}, req/s")
print()

# 4. 100 MiB.
print(f"### 100 MiB over TLS: curl --http1.1, {big_n} sequential downloads per server and round")
print()
print("MB/s = 10^6 bytes per second, median of the downloads; server CPU per download from /proc (the client,")
print("curl, decrypts on the same machine).")
print()
print("| server | MB/s | seconds | server CPU ms per download | bad downloads | fcgihost ÷ server MB/s |")
print("|---|---:|---:|---:|---:|---:|")
dl, cpu = {}, {}
for ln in open(f"{tmp}/big.txt"):
    name, r, code, size, t = ln.split()
    d = dl.setdefault(name, {"mbps": [], "t": [], "bad": 0})
    if code != "200" or int(size) != 100 * 1024 * 1024:
        d["bad"] += 1
        continue
    d["mbps"].append(int(size) / float(t) / 1e6)
    d["t"].append(float(t))
for ln in open(f"{tmp}/big-cpu.txt"):
    name, r, ticks = ln.split()
    cpu.setdefault(name, []).append(int(ticks) / tck * 1e3 / big_n)
mb = {n: (med(d["mbps"]) if d["mbps"] else None) for n, d in dl.items()}
for n, d in dl.items():
    f = mb.get("fcgihost")
    rr = f"{f / mb[n]:.2f}" if f and mb[n] else "-"
    print(f"| {n} | {mb[n] or 0:.0f} | {med(d['t']) if d['t'] else 0:.3f} | {med(cpu[n]):.0f} | {d['bad']} | {rr} |")
ratios(mb, "100 MiB, MB/s")
ratios({n: med(v) for n, v in cpu.items()}, "100 MiB, server CPU per download (lower is better)", lower_better=True)
print()
print("### Where fcgihost stands (target: at least the best anchor on every row)")
print()
print("\n".join(summary))
EOF
    echo
    if [ $ANCHORS_ONLY = 0 ]; then
        echo "fcgihost's error log gained $(wc -l <"$TMP/errlog_run.txt") lines during the measurements" \
             "($(grep -cE '\[(warn|error|crit)' "$TMP/errlog_run.txt") at warn or above)."
        echo
    fi
    echo '<details><summary>raw output: tls_connect, bench.py, h2load, curl, warm-up, errors</summary>'
    echo
    for mode in full resumed; do echo '```'; echo "tls_connect $mode"; cat "$TMP/hs-$mode.txt"; echo '```'; done
    echo '```'; echo "tls_connect errors (first 10)"; head -10 "$TMP/hs-errors.txt"; echo '```'
    for page in $PAGES; do for c in $CONNS; do
        echo '```'; echo "HTTPS/1.1 $page -c $c"; cat "$TMP/h1-$page-c$c.txt"; echo '```'
    done; done
    echo '```'; echo "h2load: req/s per round"
    for f in "$TMP"/h2/*.txt; do
        printf '%s: %s\n' "$(basename "$f" .txt)" "$(grep -oE 'finished in .*req/s|no h2.*' "$f" | head -1)"
    done
    echo '```'
    echo '```'; echo "curl $BIG: server round code bytes seconds"; cat "$TMP/big.txt"; echo '```'
    echo '```'; echo "warm-up: server url requests non-2xx"; cat "$TMP/warm.txt"; echo '```'
    if [ $ANCHORS_ONLY = 0 ]; then
        echo '```'; echo "fcgihost error log during the measurements: the first 20 lines at warn or above"
        grep -E '\[(warn|error|crit)' "$TMP/errlog_run.txt" | head -20; echo '```'
    fi
    echo '</details>'
}
if [ $ANCHORS_ONLY = 1 ]; then
    report
    exit 0
fi
report | tee "$TMP/section.md" | results_section tls
