#!/bin/bash
# FastCGI throughput: GET /hello.php (php-cgi) and GET /hello.fcgi (a libfcgi responder built from
# anchors/hello.c), 4 FastCGI processes each, from fcgihost and the anchor servers (nginx+php-fpm
# 8081, lighttpd 8082, Apache mod_fcgid 8083, h2o 8084), interleaved wrk rounds by
# anchors/bench.py at 16 and 64 connections. Writes the "fastcgi" section of bench/RESULTS.md.
#
#   bench/fastcgi.sh                # needs build/fcgihost (make build); run as root
#   D=5 R=3 CONNS="16 64" PAGES="hello.php hello.fcgi" WARM=2 PORT=8090 bench/fastcgi.sh
#   bench/fastcgi.sh --anchors-only # no fcgihost, prints the anchors' numbers, RESULTS.md untouched
#
# Every target is warmed up first (WARM seconds of wrk -c64 per page, thousands of requests) so
# that each server has spawned its processes; fcgihost's FastCGI processes are listed after it.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

D=${D:-5}; R=${R:-3}; CONNS=${CONNS:-16 64}; PORT=${PORT:-8090}; WARM=${WARM:-2}
PAGES=${PAGES:-hello.php hello.fcgi}
N=4     # FastCGI processes per application, as anchors/start.sh gives every anchor
ANCHORS_ONLY=0; [ "${1:-}" = --anchors-only ] && ANCHORS_ONLY=1
[ $ANCHORS_ONLY = 1 ] || require_fcgihost
require_tools gcc php-cgi

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-fastcgi.XXXXXX)
cleanup() { fcgihost_stop; anchors_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

anchors_start
wait_http http://127.0.0.1:8083/1k.txt 10 || die "anchor on port 8083 does not serve /1k.txt"
servers=(nginx=8081 lighttpd=8082 apache=8083 h2o=8084)
if [ $ANCHORS_ONLY = 0 ]; then
    cp -r "$ANCHORS/www" "$TMP/www"
    gcc -O2 -o "$TMP/www/hello.fcgi" "$ANCHORS/hello.c" -lfcgi || die "cannot build hello.fcgi"
    fcgihost_start "$TMP" "$PORT" "$(fastcgi_apps_conf "$TMP/www" "$N")"
    servers=(fcgihost="$PORT" "${servers[@]}")
fi

for s in "${servers[@]}"; do
    for page in $PAGES; do expect_body "http://127.0.0.1:${s#*=}/$page" "Hello, world"; done
done
log "warming up every target: ${WARM} s of wrk -c64 per page"
for s in "${servers[@]}"; do
    for page in $PAGES; do
        printf '%s ' "${s%%=*}"; warm_up "$WARM" "http://127.0.0.1:${s#*=}/$page"
    done
done | tee "$TMP/warm.txt" >&2
if [ $ANCHORS_ONLY = 0 ]; then
    children_of "$FCGIHOST_PID" | tee "$TMP/children.txt" >&2
    touch "$TMP/error.log"; wc -l <"$TMP/error.log" >"$TMP/errlog_before"
fi

for page in $PAGES; do
    targets=(); for s in "${servers[@]}"; do targets+=("${s%%=*}=http://127.0.0.1:${s#*=}/$page"); done
    for c in $CONNS; do
        log "$page: bench.py -d $D -r $R -c $c (about $((D * R * ${#targets[@]})) s)"
        "$ANCHORS/bench.py" -d "$D" -r "$R" -c "$c" "${targets[@]}" | tee "$TMP/$page-c$c.txt"
        [ "${PIPESTATUS[0]}" = 0 ] || die "bench.py failed for $page at -c $c"
    done
done
[ $ANCHORS_ONLY = 1 ] && exit 0
children_of "$FCGIHOST_PID" >"$TMP/children_after.txt"
# Error log lines written during the measured rounds (after the warm-up).
tail -n +"$(($(cat "$TMP/errlog_before") + 1))" "$TMP/error.log" >"$TMP/errlog_run.txt"

# Tables: raw numbers and fcgihost ÷ each anchor, ÷ the best anchor, per page and connection count.
{
    echo "## FastCGI: GET /hello.php and /hello.fcgi, $N processes each (bench/fastcgi.sh)"
    echo
    echo "$INFO  "
    echo "wrk -t1 through anchors/bench.py -d $D -r $R: median req/s and median p99 of $R interleaved" \
         "rounds of ${D} s; non-2xx summed over the rounds. Same www/ and programs as anchors/start.sh:" \
         "hello.php on php-cgi (nginx: php-fpm, pm static $N), hello.fcgi = anchors/hello.c" \
         "(gcc -O2 -lfcgi); $N FastCGI processes per application everywhere; nginx 1 worker," \
         "lighttpd 1 process, Apache event + mod_fcgid, h2o 1 thread. fcgihost: accessLog off," \
         "maxInstances $N, instanceMaxRequests 0, PHP_FCGI_MAX_REQUESTS=0, unix sockets (default)," \
         "responseBufferLimit 4194304 (default). Warm-up: ${WARM} s of wrk -c64 per server and page" \
         "before the rounds."
    echo
    python3 - "$TMP" "$PAGES" $CONNS <<'EOF'
import re, sys
tmp, pages, conns = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
line = re.compile(r"^(\S+)\s+(\d+) req/s\s+p99\s+([\d.na]+) ms.*non2xx (\d+)\s*(.*)$")
summary = []
print("| page | -c | server | req/s | p99 ms | non-2xx | socket errors | fcgihost ÷ server |")
print("|---|---:|---|---:|---:|---:|---|---:|")
for page in pages:
    for c in conns:
        rows = [m.groups() for m in map(line.match, open(f"{tmp}/{page}-c{c}.txt")) if m]
        rps = {r[0]: float(r[1]) for r in rows}
        for name, r, p99, bad, sock in rows:
            print(f"| {page} | {c} | {name} | {float(r):.0f} | {p99} | {bad} | {sock.strip() or '-'} "
                  f"| {rps['fcgihost'] / float(r):.2f} |")
        anchors = {n: v for n, v in rps.items() if n != "fcgihost"}
        best = max(anchors, key=anchors.get)
        each = ", ".join(f"÷ {n} {rps['fcgihost'] / v:.2f}" for n, v in anchors.items())
        summary.append(f"- {page} -c {c}: fcgihost ÷ best anchor ({best}) = "
                       f"**{rps['fcgihost'] / anchors[best]:.2f}**; {each}")
print()
print("\n".join(summary))
EOF
    echo
    echo "fcgihost's FastCGI processes after the rounds: $(awk '{print $2}' "$TMP/children_after.txt" |
        sort | uniq -c | awk '{printf "%s%s × %s", (NR > 1 ? ", " : ""), $1, $2}')." \
         "Its error log gained $(wc -l <"$TMP/errlog_run.txt") lines during the rounds" \
         "($(grep -cE '\[(warn|error|crit)' "$TMP/errlog_run.txt") at warn or above);" \
         "$(for a in php hello; do printf '%s: %s processes started, %s requests retried after' \
            "$a" "$(grep -c "\] $a: started process" "$TMP/errlog_run.txt")" \
            "$(grep -c "\] $a\[[0-9]*\] request .*process ended before answering" "$TMP/errlog_run.txt")"
            printf ' "process ended before answering", %s [error] lines. ' \
            "$(grep -c "\[error\] $a\[" "$TMP/errlog_run.txt")"; done)"
    echo
    echo '<details><summary>raw bench.py output, warm-up, fcgihost error log of the rounds</summary>'
    echo
    for page in $PAGES; do for c in $CONNS; do
        echo '```'; echo "$page -c $c"; cat "$TMP/$page-c$c.txt"; echo '```'
    done; done
    echo '```'; echo "warm-up: server url requests non-2xx"; cat "$TMP/warm.txt"; echo '```'
    echo '```'; echo "fcgihost error log during the rounds: the first 20 lines at warn or above"
    grep -E '\[(warn|error|crit)' "$TMP/errlog_run.txt" | head -20
    echo "... and its first 10 lines"; head -10 "$TMP/errlog_run.txt"; echo '```'
    echo '</details>'
} | results_section fastcgi
