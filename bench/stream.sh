#!/bin/bash
# Streaming a large response to a slow client: fcgihost's RSS growth while tests/apps/fcgi_app
# streams ?big=SIZE (pattern bytes in 64 KiB FastCGI records) to bench/slow_reader.py, which reads
# at RATE bytes/s and checks the length and the bytes. The issue's target: 1 GB to a client
# reading at 10 MB/s keeps fcgihost's RSS growth under 16 MB. One fresh fcgihost per
# responseBufferLimit (LIMITS); VmRSS of the server process (its FastCGI children excluded) is
# sampled every 0.5 s. Writes the "stream" section of bench/RESULTS.md.
#
#   bench/stream.sh                 # needs build/fcgihost and build/tests/apps/fcgi_app; root
#   SIZE=1g LIMITS="4194304 0" RATE=10e6 PORT=8090 bench/stream.sh
#   SIZES="256m 1g" LIMITS="4194304 0" bench/stream.sh   # one SIZE per LIMIT, in order
#
# requestTimeout is raised to 600 s: at 10 MB/s 1 GiB takes 107 s, past the default 90.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

SIZE=${SIZE:-1g}; LIMITS=${LIMITS:-4194304 0}; RATE=${RATE:-10e6}; PORT=${PORT:-8090}
SIZES=${SIZES:-}; RECV=${RECV:-65536}; LIMIT_MB=${LIMIT_MB:-16}
APP=${APP:-$TOP/build/tests/apps/fcgi_app}
require_fcgihost
require_tools
[ -x "$APP" ] || die "$APP not found: run 'make build' first (bench does not build)"

bytes_of() {   # 1g -> 1073741824 (fcgi_app's parse_size: k, m, g are powers of 1024)
    python3 -c 'import sys; s = sys.argv[1].lower(); m = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
print(int(s[:-1]) * m[s[-1]] if s[-1] in m else int(s))' "$1"
}

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-stream.XXXXXX)
SAMPLER=
cleanup() { [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null; fcgihost_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# sample PID FILE: "seconds VmRSS_kB" every 0.5 s until killed.
sample() {
    local t0=${EPOCHREALTIME/./} e
    while kill -0 "$1" 2>/dev/null; do
        e=$(((${EPOCHREALTIME/./} - t0) / 100000))    # tenths of a second
        echo "$((e / 10)).$((e % 10)) $(rss_kb "$1")"
        sleep 0.5
    done >"$2"
}

: >"$TMP/rows"; : >"$TMP/errlog"; : >"$TMP/trace"
i=0
for limit in $LIMITS; do
    i=$((i + 1))
    size=$SIZE; [ -n "$SIZES" ] && size=$(echo $SIZES | cut -d' ' -f$i)
    expect=$(bytes_of "$size")
    d=$TMP/limit$limit; mkdir -p "$d/www"
    cp "$ANCHORS/www/1k.txt" "$d/www/"; : >"$d/www/t.fcgi"   # resourceType File: it must exist
    fcgihost_start "$d" "$PORT" "
[fastcgi:app]
fullPath = $APP
maxInstances = 1
requestTimeout = 600

[handler:app]
path = *.fcgi
scriptProcessor = app
responseBufferLimit = $limit"
    start_kb=$(rss_kb "$FCGIHOST_PID")
    # Warm-up: the app is spawned and one 1 MiB response has gone through every buffer once.
    got=$(curl -s -m 10 "http://127.0.0.1:$PORT/t.fcgi?big=1m" | wc -c)
    [ "$got" = 1048576 ] || die "warm-up: GET /t.fcgi?big=1m gave $got bytes"
    sleep 1
    base_kb=$(rss_kb "$FCGIHOST_PID")
    # Reset VmHWM to the current RSS (clear_refs 5, Linux >= 4.0), so that VmHWM after the
    # transfer is the exact peak, including any spike between two 0.5 s samples.
    echo 5 2>/dev/null >"/proc/$FCGIHOST_PID/clear_refs" && hwm_reset=yes || hwm_reset=no
    hwm_base=$(hwm_kb "$FCGIHOST_PID")
    log "responseBufferLimit $limit: GET /t.fcgi?big=$size at $RATE B/s" \
        "(about $(python3 -c "print(round($expect / $RATE))") s); baseline VmRSS $base_kb kB"
    sample "$FCGIHOST_PID" "$d/rss.txt" & SAMPLER=$!
    out=$(python3 "$BENCH_DIR/slow_reader.py" --port "$PORT" --path "/t.fcgi?big=$size" \
          --expect "$expect" --rate "$RATE" --recv "$RECV"); rc=$?
    sleep 1
    kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=
    after_kb=$(rss_kb "$FCGIHOST_PID"); hwm=$(hwm_kb "$FCGIHOST_PID")
    sampled_kb=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$d/rss.txt")
    peak_kb=$sampled_kb     # the peak: the sampled one, or VmHWM if it was reset and is higher
    [ $hwm_reset = yes ] && [ "$hwm" -gt "$peak_kb" ] && peak_kb=$hwm
    nsamples=$(wc -l <"$d/rss.txt")
    log "slow_reader: $out (exit $rc); VmRSS peak $sampled_kb kB over $nsamples samples," \
        "VmHWM $hwm kB (reset at baseline: $hwm_reset, then $hwm_base kB)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$limit" "$size" "$start_kb" "$base_kb" \
        "$sampled_kb" "$after_kb" "$hwm_reset $hwm_base $hwm" "$nsamples" "$peak_kb" "$rc" "$out" >>"$TMP/rows"
    grep -iE '\[(warn|error|crit)' "$d/error.log" | grep -v 'started _FCGI_X_PIPE_=' | head -5 |
        sed "s/^/limit $limit: /" >>"$TMP/errlog"
    # Growth trace: VmRSS every ~5 s (every 10th sample) for the raw section.
    awk -v l="$limit" 'NR % 10 == 1 {printf "%s%s s %s kB", (NR > 1 ? ", " : "limit " l ": "), $1, $2}
        END {print ""}' "$d/rss.txt" >>"$TMP/trace"
    fcgihost_stop
done

{
    echo "## Streaming a large response to a slow client: fcgihost RSS growth (bench/stream.sh)"
    echo
    echo "$INFO  "
    echo "tests/apps/fcgi_app \`?big=SIZE\` writes SIZE pattern bytes in 64 KiB FastCGI records" \
         "(1 process, unix socket, requestTimeout 600 because 1 GiB at 10 MB/s takes 107 s);" \
         "bench/slow_reader.py sends an HTTP/1.0 GET and reads $RECV bytes per recv() at" \
         "$RATE bytes/s (token bucket, burst one recv), checking the length and every byte." \
         "VmRSS of the fcgihost process (not its FastCGI child) from /proc every 0.5 s;" \
         "baseline = after a warm-up GET of 1 MiB and 1 s of rest; growth = peak − baseline." \
         "Target: growth < $LIMIT_MB MB (10^6 bytes). A fresh fcgihost per responseBufferLimit."
    echo
    python3 - "$TMP/rows" "$LIMIT_MB" <<'EOF'
import json, sys
rows, limit_mb = sys.argv[1], float(sys.argv[2])
print("| responseBufferLimit | body | received | status | s | MB/s | max recv wait s "
      "| VmRSS start kB | baseline kB | sampled peak kB | VmHWM kB | after kB | growth MB | < %g MB |" % limit_mb)
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for line in open(rows):
    lim, size, start, base, sampled, after, hwm, n, peak, rc, out = line.rstrip("\n").split("\t")
    reset, hwm_base, hwm_after = hwm.split()
    r = json.loads(out)
    growth = (int(peak) - int(base)) * 1024 / 1e6
    ok = r["status"] == 200 and r["length_ok"] and r["pattern_ok"]
    verdict = ("**pass**" if growth < limit_mb else "**FAIL**") if ok else "**FAIL** (transfer)"
    hwm_cell = hwm_after if reset == "yes" else f"{hwm_after} (not reset)"
    print(f"| {lim} | {size} ({r['expect']} B) | {r['body_bytes']} B{'' if ok else ' ✗'} "
          f"| {r['status']} | {r['seconds']} | {r['mean_MBps']} | {r['max_recv_wait_s']} | {start} "
          f"| {base} | {sampled} ({n} samples) | {hwm_cell} | {after} | {growth:.2f} | {verdict} |")
EOF
    echo
    echo "VmHWM: the process's peak RSS, reset to the baseline RSS just before the transfer" \
         "(/proc/PID/clear_refs 5), so it catches spikes between samples; growth = max(sampled" \
         "peak, VmHWM) − baseline. \"after\": VmRSS 1 s after the transfer. Warnings or errors in" \
         "the error logs (fcgi_app's start banner on its stderr excluded): $(wc -l <"$TMP/errlog")."
    echo
    echo '<details><summary>raw: slow_reader.py output, VmRSS trace, error log warnings</summary>'
    echo
    echo '```'
    cut -f1,2,4,5,7,8,10,11 "$TMP/rows" |
        sed 's/^/limit size baseline sampled-peak hwm(reset,at-baseline,after) samples rc out: /'
    cat "$TMP/trace"
    cat "$TMP/errlog"
    echo '```'
    echo '</details>'
} | results_section stream
