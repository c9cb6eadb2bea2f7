#!/bin/bash
# Latency while the PHP pool is recycled (issue 13, SPEC 4.9): hello.php and cpu.php (~5 ms of
# CPU) at 16 connections, first steady (nothing recycled), then while the pool is recycled every
# 2 s — for fcgihost by touching its monitorChangesTo file (every process replaced), once per
# recycleMode the binary knows (warm, immediate), and in the same run for the anchors of
# anchors/start.sh that can restart their PHP processes: nginx + php-fpm (`kill -USR2` of the
# php-fpm master), lighttpd (`kill -USR1`: graceful restart, its php-cgi processes spawned anew)
# and h2o (`kill -HUP` of its daemon: a new h2o with new php-cgi, the old one finishing).
# p99, mean and max latency from wrk --latency --timeout 30s (a request stuck behind a restart
# is measured, not dropped from the percentiles as a wrk timeout); medians of R interleaved rounds. Writes the "recycle"
# section of bench/RESULTS.md. Target (issue 13): warm's p99 while recycling at most 1.5x its own
# steady p99, and below every anchor's.
#
#   bench/recycle.sh                 # needs build/fcgihost; run as root
#   D=10 R=3 C=16 PORT=8090 MODES="warm warm+prefork immediate" STARTS=1 PREFORK=4 bench/recycle.sh
set -uo pipefail
. "$(dirname "$0")/lib.sh"

D=${D:-10}; R=${R:-3}; C=${C:-16}; PORT=${PORT:-8090}; EVERY=${EVERY:-2}
PAGES=${PAGES:-hello.php cpu.php}
ANCHOR_SERVERS=${ANCHOR_SERVERS:-nginx lighttpd h2o}
STARTS=${STARTS:-} # maxConcurrentStarts of the fcgihost pools (empty: the default, 4)
PREFORK=${PREFORK:-4} # preforkChildren of the "+prefork" modes (the others: one php-cgi per instance)
N=4
require_fcgihost
require_tools php-cgi php-fpm8.2

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-recycle.XXXXXX)
chmod 755 "$TMP"
TOUCHER=
declare -A PIDS=()
cleanup() {
    [ -n "$TOUCHER" ] && kill "$TOUCHER" 2>/dev/null
    local pid
    for pid in "${PIDS[@]}"; do FCGIHOST_PID=$pid; fcgihost_stop; done # one server per mode
    anchors_stop; rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mode_ok MODE [KEY=VALUE LINE]: whether this binary accepts recycleMode MODE (SPEC 4.9; a binary
# without it has immediate only), with the extra line of the [fastcgi:php] section if given.
mode_ok() {
    mkdir -p "$TMP/probe/www"
    printf '[server]\nroot = %s/probe/www\n[fastcgi:php]\nfullPath = %s\nrecycleMode = %s\n%s\n' \
        "$TMP" "$(command -v php-cgi)" "$1" "${2:-}" >"$TMP/probe/c.conf"
    "$FCGIHOST_BIN" -t -c "$TMP/probe/c.conf" >/dev/null 2>&1
}
MODES=${MODES:-}
if [ -z "$MODES" ]; then
    for m in warm immediate; do mode_ok "$m" && MODES="$MODES $m"; done
    # warm+prefork: one php-cgi parent whose PREFORK children share its opcache (SPEC 4.9b),
    # replaced as a group: a recycle starts one PHP and forks the rest.
    mode_ok warm "preforkChildren = $PREFORK" && MODES="$MODES warm+prefork"
    [ -n "$MODES" ] || MODES=" default"
fi

anchors_start
FPM_PID=$(cat "$RUN/fpm/fpm.pid") || die "no php-fpm pid in $RUN/fpm/fpm.pid"

# One fcgihost per mode, each on its own port and monitored file.
declare -A URL TOUCH
port=$PORT
for m in $MODES; do
    d="$TMP/$m"
    mkdir -p "$d/www"
    cp "$ANCHORS/www/"*.php "$d/www/"
    : >"$d/recycle.stamp"
    extra="[fastcgi:php]
fullPath = $(command -v php-cgi)
env = PHP_FCGI_MAX_REQUESTS=0
maxInstances = $N
instanceMaxRequests = 0
monitorChangesTo = $d/recycle.stamp"
    [ -n "$STARTS" ] && extra="$extra
maxConcurrentStarts = $STARTS"
    [[ $m == *+prefork ]] && extra="$extra
preforkChildren = $PREFORK"
    [ "$m" != default ] && extra="$extra
recycleMode = ${m%+prefork}"
    extra="$extra

[handler:php]
path = *.php
scriptProcessor = php"
    cp "$ANCHORS/www/1k.txt" "$d/www/"
    FCGIHOST_PID=
    fcgihost_start "$d" "$port" "$extra"
    PIDS[$m]=$FCGIHOST_PID
    URL[$m]="http://127.0.0.1:$port"
    TOUCH[$m]="touch $d/recycle.stamp"
    port=$((port + 1))
done
URL[nginx]="http://127.0.0.1:8081"
TOUCH[nginx]="kill -USR2 \$(cat $RUN/fpm/fpm.pid)"
URL[lighttpd]="http://127.0.0.1:8082"
TOUCH[lighttpd]="kill -USR1 \$(cat $RUN/lighttpd/pid)"
URL[h2o]="http://127.0.0.1:8084"
TOUCH[h2o]="kill -HUP \$(cat $RUN/h2o/pid)"
SERVERS="$MODES $ANCHOR_SERVERS"

for s in $SERVERS; do
    for p in $PAGES; do
        [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "${URL[$s]}/$p")" = 200 ] || die "$s does not serve /$p"
        wrk -t1 -c"$C" -d2s "${URL[$s]}/$p" >/dev/null 2>&1 # warm-up
    done
done

# wrk's figures: req/s, p99 ms, max ms, non-2xx, socket errors, mean ms.
wrk_figures() {
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                         if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
        /^    Latency / { max = ms($4); mean = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /^Requests\/sec/ { rps = $2 }
        /Non-2xx/ { bad = $NF }
        /Socket errors/ { sock = $0; sub(/^ *Socket errors: */, "", sock); gsub(/ /, "", sock) }
        END { printf "%s %.2f %.2f %d %s %.2f\n", rps, p99, max, bad + 0, (sock == "" ? "-" : sock), mean }'
}

# run SERVER PAGE PHASE: one wrk run; PHASE recycle: the pool is recycled every EVERY s meanwhile.
run() {
    local s=$1 p=$2 phase=$3 out
    if [ "$phase" = recycle ]; then
        ( while sleep "$EVERY"; do eval "${TOUCH[$s]}" 2>/dev/null; done ) &
        TOUCHER=$!
    fi
    out=$(wrk -t1 -c"$C" -d"${D}s" --timeout 30s --latency "${URL[$s]}/$p" 2>&1)
    if [ -n "$TOUCHER" ]; then kill "$TOUCHER" 2>/dev/null; wait "$TOUCHER" 2>/dev/null; TOUCHER=; fi
    echo "$s $p $phase $(echo "$out" | wrk_figures)"
}

RAW="$TMP/raw.txt"
: >"$RAW"
for round in $(seq "$R"); do
    for p in $PAGES; do
        for s in $SERVERS; do
            for phase in steady recycle; do
                log "round $round: $s /$p $phase"
                echo "$round $(run "$s" "$p" "$phase")" | tee -a "$RAW" >&2
                sleep 1
            done
        done
    done
done

# fcgihost's own logs: every process it started or ended, and any error.
LOGS=""
for m in $MODES; do
    LOGS="$LOGS$m: $(grep -c 'started process' "$TMP/$m/error.log") processes started, $(grep -cE '\[(error|warn)\]' "$TMP/$m/error.log") warn/error lines
"
done

section=$(python3 - "$RAW" "$INFO" "$D" "$R" "$C" "$EVERY" "$MODES" "$LOGS" "${STARTS:-4 (default)}" "$ANCHOR_SERVERS" "$PREFORK" <<'PY'
import statistics, sys
raw, info, D, R, C, every, modes, logs, starts, anchor_servers, prefork = sys.argv[1:12]
rows = {}
for line in open(raw):
    f = line.split()
    if len(f) < 9:
        continue
    _, s, p, phase, rps, p99, mx, bad, sock = f[:9]
    mean = float(f[9]) if len(f) > 9 else float("nan")
    rows.setdefault((s, p, phase), []).append((float(rps), float(p99), float(mx), int(bad), sock,
                                               mean))
def med(k, i):
    v = [r[i] for r in rows.get(k, [])]
    return statistics.median(v) if v else float("nan")
anchors = [a for a in anchor_servers.split() if any(k[0] == a for k in rows)]
servers = modes.split() + anchors
restart = {"nginx": "nginx + php-fpm: `kill -USR2` of the php-fpm master, pm static 4",
           "lighttpd": "lighttpd: `kill -USR1` (graceful restart, php-cgi max-procs 4 spawned anew)",
           "h2o": "h2o: `kill -HUP` of its daemon (graceful restart, php-cgi PHP_FCGI_CHILDREN=4)"}
pages = sorted({k[1] for k in rows}, key=lambda x: (x != "hello.php", x))
out = []
out.append("## Recycling under load (bench/recycle.sh)\n")
out.append(f"{info}  ")
out.append(f"wrk -t1 -c{C} --latency, {D} s per run, medians of {R} interleaved rounds. *recycle*: the "
           f"whole PHP pool replaced every {every} s during the run (fcgihost: its monitorChangesTo "
           "file touched; " + "; ".join(restart[a] for a in anchors) + "). fcgihost: 4 "
           f"php-cgi processes, maxConcurrentStarts {starts}, one server per recycleMode (*warm+prefork*: "
           f"recycleMode warm with preforkChildren {prefork}, the 4 processes being the children of "
           "one php-cgi that share its opcache, replaced as a group). "
           "wrk --timeout 30s: every request counts in the percentiles, however long it waited.\n")
out.append("| page | server | steady req/s | steady p99 ms | steady max ms | recycling req/s | "
           "recycling mean ms | recycling p99 ms | recycling max ms | p99 recycling ÷ steady | "
           "non-2xx |")
out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p in pages:
    for s in servers:
        st, rc = (s, p, "steady"), (s, p, "recycle")
        if st not in rows:
            continue
        bad = sum(r[3] for r in rows[st] + rows.get(rc, []))
        ratio = med(rc, 1) / med(st, 1) if med(st, 1) else float("nan")
        out.append(f"| {p} | {s} | {med(st,0):.0f} | {med(st,1):.2f} | {med(st,2):.2f} | "
                   f"{med(rc,0):.0f} | {med(rc,5):.2f} | {med(rc,1):.2f} | {med(rc,2):.2f} | "
                   f"{ratio:.2f} | {bad} |")
out.append("")
for p in pages:
    for m in modes.split():
        st, rc = (m, p, "steady"), (m, p, "recycle")
        if st not in rows:
            continue
        ratio = med(rc, 1) / med(st, 1)
        theirs = {a: med((a, p, "recycle"), 1) for a in anchors}
        best = min(theirs.values()) if theirs else float("nan")
        out.append(f"- {p}, {m}: p99 while recycling {med(rc,1):.2f} ms = {ratio:.2f} x its steady p99 "
                   f"(target at most 1.5: **{'yes' if ratio <= 1.5 else 'no'}**); the anchors "
                   "restarting: " + ", ".join(f"{a} {v:.2f} ms" for a, v in theirs.items()) +
                   f" (below every one: **{'yes' if med(rc,1) < best else 'no'}**)")
out.append("")
out.append("fcgihost's logs over the run:\n")
out.append("```")
out.append(logs.strip())
out.append("```\n")
out.append("<details><summary>raw runs: round server page phase req/s p99 max non-2xx socket-errors mean</summary>\n")
out.append("```")
out.append(open(raw).read().strip())
out.append("```")
out.append("</details>")
print("\n".join(out))
PY
)
results_section recycle <<<"$section"
