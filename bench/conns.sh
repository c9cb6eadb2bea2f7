#!/bin/bash
# Memory per idle keep-alive connection: bench/hold_conns.py opens N connections, each after one
# full GET /1k.txt, and reports (RSS with them - RSS before) / N for fcgihost and the anchors.
# Writes the "conns" section of bench/RESULTS.md.
#
#   bench/conns.sh                  # needs build/fcgihost (make build); run as root
#   N=10000 FCGIHOST_NS="10000 1000" bench/conns.sh
#   bench/conns.sh --anchors-only   # no fcgihost, prints the anchors' numbers, RESULTS.md untouched
#
# The anchors run as anchors/start.sh configures them, which caps their connections: nginx
# worker_connections 4096, lighttpd server.max-connections 1024, h2o max-connections 1024 (its
# default). They are measured below those caps (NGINX_N, LIGHTTPD_N, H2O_N) and the table says so.
# nginx starts closing idle keep-alive connections once fewer than 1/16 of worker_connections are
# free (ngx_drain_connections), hence 3500 rather than 4000 for it.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

N=${N:-10000}; PORT=${PORT:-8090}
FCGIHOST_NS=${FCGIHOST_NS:-$N 1000}
NGINX_N=${NGINX_N:-3500}; LIGHTTPD_N=${LIGHTTPD_N:-1000}; H2O_N=${H2O_N:-1000}
ANCHORS_ONLY=0; [ "${1:-}" = --anchors-only ] && ANCHORS_ONLY=1
[ $ANCHORS_ONLY = 1 ] || require_fcgihost
require_tools

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-conns.XXXXXX)
cleanup() { fcgihost_stop; anchors_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# measure NAME PORT N PIDS NOTE: warm the server up (1 s of wrk, 64 connections, then closed),
# hold N connections, append "NAME<TAB>N<TAB>NOTE<TAB>json" to $TMP/rows.
measure() {
    local name=$1 port=$2 n=$3 pids=$4 note=$5 out
    wrk -t1 -c64 -d1s "http://127.0.0.1:$port/1k.txt" >/dev/null
    log "$name: holding $n connections (pids $pids)"
    out=$(python3 "$BENCH_DIR/hold_conns.py" --port "$port" -n "$n" --pids "$pids") \
        || die "hold_conns.py failed for $name"
    printf '%-10s n=%-6s %s\n' "$name" "$n" "$out"
    printf '%s\t%s\t%s\t%s\n' "$name" "$n" "$note" "$out" >>"$TMP/rows"
}

: >"$TMP/rows"
if [ $ANCHORS_ONLY = 0 ]; then
    cp -r "$ANCHORS/www" "$TMP/www"
    for n in $FCGIHOST_NS; do   # a fresh server for each N: freed memory is rarely returned
        fcgihost_start "$TMP" "$PORT"
        measure fcgihost "$PORT" "$n" "$FCGIHOST_PID $(pgrep -P "$FCGIHOST_PID")" \
            "the server and any child; keepAliveTimeout 120 (default)"
        fcgihost_stop
    done
fi
anchors_start
measure nginx 8081 "$NGINX_N" "$(nginx_pids)" "master + 1 worker; worker_connections 4096"
measure lighttpd 8082 "$LIGHTTPD_N" "$(lighttpd_pids)" "server.max-connections 1024"
measure h2o 8084 "$H2O_N" "$(h2o_pids)" "1 thread; max-connections 1024 (default)"
[ $ANCHORS_ONLY = 1 ] && exit 0

{
    echo "## Idle keep-alive connections: RSS per connection (bench/conns.sh)"
    echo
    echo "$INFO  "
    echo "Each connection completed one GET /1k.txt (HTTP/1.1, keep-alive) and then sat idle;" \
         "bytes/conn = (VmRSS with them − VmRSS before) / connections held, after 1 s of wrk" \
         "warm-up and 1 s settle. Kernel socket buffers are not in RSS. The anchors keep" \
         "the connection limits of anchors/start.sh, so they are measured at fewer connections."
    echo
    echo "| server | connections held | still open at measurement | RSS before KiB | RSS after KiB | bytes/conn | limits |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    name, n, note, js = line.rstrip("\n").split("\t", 3)
    r = json.loads(js)
    held = str(r["opened"])
    if r["opened"] != int(n):
        held += " of %s (no answer past %d)" % (n, r["opened"])
    cols = [name, held, r["still_open"], r["rss_before_kb"], r["rss_after_kb"], r["bytes_per_conn"], note]
    print("| " + " | ".join(map(str, cols)) + " |")
' "$TMP/rows"
    echo
    echo '```'
    cat "$TMP/rows"
    echo '```'
} | results_section conns
