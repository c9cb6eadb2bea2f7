#!/bin/bash
# Static file throughput: GET /1k.txt from fcgihost and the anchor servers (nginx 8081, lighttpd
# 8082, h2o 8084), interleaved wrk rounds by anchors/bench.py at 16 and 256 connections.
# Writes the "static" section of bench/RESULTS.md.
#
#   bench/static.sh                 # needs build/fcgihost (make build); run as root
#   D=5 R=3 CONNS="16 256" PORT=8090 bench/static.sh
#   bench/static.sh --anchors-only  # no fcgihost, prints the anchors' numbers, RESULTS.md untouched
set -uo pipefail
. "$(dirname "$0")/lib.sh"

D=${D:-5}; R=${R:-3}; CONNS=${CONNS:-16 256}; PORT=${PORT:-8090}
ANCHORS_ONLY=0; [ "${1:-}" = --anchors-only ] && ANCHORS_ONLY=1
[ $ANCHORS_ONLY = 1 ] || require_fcgihost
require_tools

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-static.XXXXXX)
cleanup() { fcgihost_stop; anchors_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

anchors_start
targets=()
if [ $ANCHORS_ONLY = 0 ]; then
    cp -r "$ANCHORS/www" "$TMP/www"
    fcgihost_start "$TMP" "$PORT"
    targets+=("fcgihost=http://127.0.0.1:$PORT/1k.txt")
fi
targets+=(nginx=http://127.0.0.1:8081/1k.txt lighttpd=http://127.0.0.1:8082/1k.txt
          h2o=http://127.0.0.1:8084/1k.txt)

for c in $CONNS; do
    log "bench.py -d $D -r $R -c $c (about $((D * R * ${#targets[@]})) s)"
    "$ANCHORS/bench.py" -d "$D" -r "$R" -c "$c" "${targets[@]}" | tee "$TMP/c$c.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || die "bench.py failed at -c $c"
done
[ $ANCHORS_ONLY = 1 ] && exit 0

# Table: raw numbers and fcgihost ÷ each anchor, ÷ the best anchor, per connection count.
{
    echo "## Static file: GET /1k.txt (bench/static.sh)"
    echo
    echo "$INFO  "
    echo "wrk -t1 through anchors/bench.py -d $D -r $R: median of $R interleaved rounds of ${D} s;" \
         "nginx 1 worker, lighttpd 1 process, h2o 1 thread (anchors/start.sh); fcgihost: accessLog off."
    echo
    python3 - "$TMP" $CONNS <<'EOF'
import re, sys
tmp, conns = sys.argv[1], sys.argv[2:]
line = re.compile(r"^(\S+)\s+(\d+) req/s\s+p99\s+([\d.na]+) ms.*non2xx (\d+)\s*(.*)$")
print("| -c | server | req/s | p99 ms | non-2xx | socket errors | fcgihost ÷ server |")
print("|---:|---|---:|---:|---:|---|---:|")
summary = []
for c in conns:
    rows = [m.groups() for m in map(line.match, open(f"{tmp}/c{c}.txt")) if m]
    rps = {r[0]: float(r[1]) for r in rows}
    for name, r, p99, bad, sock in rows:
        print(f"| {c} | {name} | {float(r):.0f} | {p99} | {bad} | {sock.strip() or '-'} "
              f"| {rps['fcgihost'] / float(r):.2f} |")
    anchors = {n: v for n, v in rps.items() if n != "fcgihost"}
    best = max(anchors, key=anchors.get)
    each = ", ".join(f"÷ {n} {rps['fcgihost'] / v:.2f}" for n, v in anchors.items())
    summary.append(f"- -c {c}: fcgihost ÷ best anchor ({best}) = **{rps['fcgihost'] / anchors[best]:.2f}**; {each}")
print()
print("\n".join(summary))
EOF
    echo
    echo '<details><summary>raw bench.py output</summary>'
    echo
    for c in $CONNS; do echo '```'; echo "-c $c"; cat "$TMP/c$c.txt"; echo '```'; done
    echo '</details>'
} | results_section static
