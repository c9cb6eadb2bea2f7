#!/bin/bash
# Robustness soak (issue 10): DURATION seconds of mixed load at CONNS connections — a static file,
# hello.php through php-cgi and a streamed 1 MiB FastCGI answer (tests/apps/fcgi_app ?big=1m,
# responseBufferLimit 0) — with one client in ten going away at a random moment (bench/
# reset_clients.py: RST or FIN-then-RST, before the whole head, after it, after some response
# bytes, mid-body). Done means: no crash, 0 non-2xx for the clients that stayed, the server's RSS
# at the end within 10 % of its RSS after the first minute. Writes the "soak" section of
# bench/RESULTS.md. This is not a speed measurement (the throughput is whatever the machine gives).
#
#   bench/soak.sh                       # needs build/fcgihost and build/tests/apps/fcgi_app; root
#   DURATION=60 bench/soak.sh           # a short try (the RSS baseline is then taken at DURATION/2)
#   CONNS=256 RESETTERS=26 PORT=8090 PHP_INSTANCES=8 APP_INSTANCES=8 STATIC_SIZE=65536 bench/soak.sh
#   FCGIHOST_BIN=build-asan/fcgihost RESULTS=/tmp/soak-asan.md DURATION=120 bench/soak.sh
#
# wrk (CONNS - RESETTERS connections, 2 threads, --timeout 10s) picks one of the three URLs at
# random for every request (a Lua script that also counts what it sent). VmRSS, open descriptors
# and FastCGI children of the server are sampled every SAMPLE (10) seconds. Afterwards each URL
# must still answer 200, ctl status must show no connection or busy process left, the server must
# exit 0 on SIGTERM, and none of its FastCGI processes may survive it.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-600}; CONNS=${CONNS:-256}; RESETTERS=${RESETTERS:-$(((CONNS + 5) / 10))}
PORT=${PORT:-8090}; SAMPLE=${SAMPLE:-10}; PHP_INSTANCES=${PHP_INSTANCES:-8}
APP_INSTANCES=${APP_INSTANCES:-8}; STATIC_SIZE=${STATIC_SIZE:-65536}; WRK_THREADS=${WRK_THREADS:-2}
BASE_AT=${BASE_AT:-$((DURATION >= 120 ? 60 : DURATION / 2))}
RSS_LIMIT=${RSS_LIMIT:-1.10}
APP=${APP:-$TOP/build/tests/apps/fcgi_app}
WRK_CONNS=$((CONNS - RESETTERS))
BIG=$((1 << 20))
require_fcgihost
require_tools php-cgi
[ -x "$APP" ] || die "$APP not found: run 'make build' first (bench does not build)"
[ "$WRK_CONNS" -ge "$WRK_THREADS" ] || die "CONNS - RESETTERS must be at least $WRK_THREADS"

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-soak.XXXXXX)
SAMPLER=; CLIENTS=
cleanup() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    [ -n "$CLIENTS" ] && kill "$CLIENTS" 2>/dev/null
    fcgihost_stop; rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the server: static files, php-cgi, fcgi_app streaming
mkdir -p "$TMP/www"
cp "$ANCHORS/www/1k.txt" "$ANCHORS/www/hello.php" "$TMP/www/"
python3 -c 'import sys; sys.stdout.buffer.write((b"0123456789abcdef" * (int(sys.argv[1]) // 16 + 1))[:int(sys.argv[1])])' \
    "$STATIC_SIZE" >"$TMP/www/static.bin"
: >"$TMP/www/t.fcgi"          # resourceType File (the default): the script must exist
STATIC=/static.bin; PHP=/hello.php; STREAM="/t.fcgi?big=1m"
fcgihost_start "$TMP" "$PORT" "
[fastcgi:php]
fullPath = $(command -v php-cgi)
maxInstances = $PHP_INSTANCES

[handler:php]
path = *.php
scriptProcessor = php

[fastcgi:app]
fullPath = $APP
maxInstances = $APP_INSTANCES

[handler:app]
path = *.fcgi
scriptProcessor = app
responseBufferLimit = 0"
SOCK=$TMP/run/control.sock

# check_urls: each URL answers 200 with the expected body (size for the files, text for php).
check_urls() {
    local got
    got=$(curl -s -m 10 -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$PORT$STATIC")
    [ "$got" = "200 $STATIC_SIZE" ] || { log "GET $STATIC: $got"; return 1; }
    got=$(curl -s -m 10 -w ' %{http_code}' "http://127.0.0.1:$PORT$PHP")
    [ "$got" = "Hello, world
 200" ] || { log "GET $PHP: $got"; return 1; }
    got=$(curl -s -m 10 -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$PORT$STREAM")
    [ "$got" = "200 $BIG" ] || { log "GET $STREAM: $got"; return 1; }
}
check_urls || die "the soak's URLs do not answer as expected before the soak"
curl -s -m 10 -D - -o /dev/null "http://127.0.0.1:$PORT$STREAM" | tr -d '\r' | sed 's/^/  /' >"$TMP/stream_head.txt"
curl -s -m 10 -D - -o /dev/null "http://127.0.0.1:$PORT$PHP" | tr -d '\r' | sed 's/^/  /' >"$TMP/php_head.txt"

# --- wrk's request mix: one URL at random per request, counted per kind
cat >"$TMP/mix.lua" <<EOF
local paths = {"$STATIC", "$PHP", "$STREAM"}
local threads, count = {}, 0
function setup(thread)
    count = count + 1
    thread:set("id", count)
    table.insert(threads, thread)
end
function init(args)
    math.randomseed(os.time() * 1000 + id)
    reqs = {}
    for i, p in ipairs(paths) do reqs[i] = wrk.format("GET", p) end
    n1, n2, n3 = 0, 0, 0
end
function request()
    local i = math.random(3)
    if i == 1 then n1 = n1 + 1 elseif i == 2 then n2 = n2 + 1 else n3 = n3 + 1 end
    return reqs[i]
end
function done(summary, latency, requests)
    local a, b, c = 0, 0, 0
    for _, t in ipairs(threads) do a, b, c = a + t:get("n1"), b + t:get("n2"), c + t:get("n3") end
    io.write(string.format("issued static=%d php=%d stream=%d\n", a, b, c))
end
EOF

# running PID: the process exists and is not a zombie (kill -0 succeeds on an unreaped zombie).
running() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# sampler PID FILE: "seconds VmRSS_kB fds children" every SAMPLE s while PID lives; the children's
# "pid comm" pairs of the latest sample go to FILE.children.
sampler() {
    local t0=${EPOCHREALTIME/./} e next=0 kids
    while running "$1"; do
        e=$(((${EPOCHREALTIME/./} - t0) / 100000))
        kids=$(children_of "$1")
        printf '%s %s %s %s\n' "$((e / 10)).$((e % 10))" "$(rss_kb "$1")" \
            "$(ls "/proc/$1/fd" 2>/dev/null | wc -l)" "$(grep -c . <<<"$kids")"
        echo "$kids" >"$2.children"
        next=$((next + SAMPLE))
        e=$((next * 1000000 - (${EPOCHREALTIME/./} - t0)))
        [ $e -gt 0 ] && sleep "$((e / 1000000)).$(printf '%06d' $((e % 1000000)))"
    done >"$2"
}

log "soak: ${DURATION} s, $WRK_CONNS wrk connections + $RESETTERS resetting clients" \
    "($STATIC ${STATIC_SIZE} B, $PHP, $STREAM); RSS baseline at ${BASE_AT} s"
touch "$TMP/error.log"
sampler "$FCGIHOST_PID" "$TMP/rss.txt" & SAMPLER=$!
python3 "$BENCH_DIR/reset_clients.py" --port "$PORT" -n "$RESETTERS" --duration "$DURATION" \
    --url "static=$STATIC" --url "php=$PHP" --url "stream=$STREAM" >"$TMP/resets.json" 2>"$TMP/resets.err" &
CLIENTS=$!
wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --timeout 10s --latency -s "$TMP/mix.lua" \
    "http://127.0.0.1:$PORT/" >"$TMP/wrk.txt" 2>&1
WRK_RC=$?
wait "$CLIENTS"; CLIENTS_RC=$?; CLIENTS=
ALIVE=no; running "$FCGIHOST_PID" && ALIVE=yes
sleep 2
kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=
cat "$TMP/wrk.txt" >&2
log "reset clients (exit $CLIENTS_RC): $(cat "$TMP/resets.json") $(head -c 2000 "$TMP/resets.err")"

# --- after the load: still serving, nothing left over, clean exit
AFTER_KB=; AFTER_FDS=; URLS_OK=no; STATUS_JSON='{}'
if [ $ALIVE = yes ]; then
    AFTER_KB=$(rss_kb "$FCGIHOST_PID"); AFTER_FDS=$(ls "/proc/$FCGIHOST_PID/fd" | wc -l)
    check_urls && URLS_OK=yes
    STATUS_JSON=$("$FCGIHOST_BIN" ctl -s "$SOCK" status --json 2>&1) || log "ctl status: $STATUS_JSON"
fi
children_of "$FCGIHOST_PID" >"$TMP/children_end.txt"
EXIT_RC=none
if [ $ALIVE = yes ]; then
    kill -TERM "$FCGIHOST_PID"
    for _ in $(seq 400); do kill -0 "$FCGIHOST_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$FCGIHOST_PID" 2>/dev/null; then
        EXIT_RC="still running 40 s after SIGTERM (SIGKILLed)"; kill -KILL "$FCGIHOST_PID"
        wait "$FCGIHOST_PID" 2>/dev/null
    else
        wait "$FCGIHOST_PID"; EXIT_RC=$?
    fi
else
    wait "$FCGIHOST_PID"; EXIT_RC="died during the soak: wait status $?"
fi
FCGIHOST_PID=
SURVIVORS=
for _ in $(seq 50); do
    SURVIVORS=$(while read -r p c; do
        [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$c" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && echo "$p $c"
    done <"$TMP/children_end.txt")
    [ -z "$SURVIVORS" ] && break; sleep 0.1
done
SANITIZER=$(grep -cE 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP/stdout.log")

# --- the report
python3 - "$TMP" "$DURATION" "$WRK_CONNS" "$RESETTERS" "$BASE_AT" "$RSS_LIMIT" "$WRK_RC" \
    "$ALIVE" "$EXIT_RC" "$URLS_OK" "${AFTER_KB:-}" "${AFTER_FDS:-}" "$SANITIZER" "$SURVIVORS" \
    "$STATIC_SIZE" "$PHP_INSTANCES" "$APP_INSTANCES" "$INFO" "$FCGIHOST_BIN" "$STATUS_JSON" \
    "$WRK_THREADS" >"$TMP/section.md" <<'EOF'
import collections, json, re, sys
(tmp, duration, wrk_conns, resetters, base_at, rss_limit, wrk_rc, alive, exit_rc, urls_ok, after_kb,
 after_fds, sanitizer, survivors, static_size, php_n, app_n, info, binary, status_json,
 wrk_threads) = sys.argv[1:]
duration, base_at, rss_limit = int(duration), float(base_at), float(rss_limit)
wrk = open(f"{tmp}/wrk.txt").read()

def num(s):
    m = re.match(r"([\d.]+)([kMG]?)", s)
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]

m = re.search(r"(\d+) requests in ([\d.]+)(m?s|m), ([\d.]+\w+) read", wrk)
requests = int(m.group(1)) if m else None
rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
tps = re.search(r"Transfer/sec:\s+([\d.]+\w+)", wrk)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
non2xx = int(non2xx.group(1)) if non2xx else (0 if requests is not None else None)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wrk)
sock = dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()))) if sock else \
    dict(connect=0, read=0, write=0, timeout=0)
issued = re.search(r"issued static=(\d+) php=(\d+) stream=(\d+)", wrk)
issued = dict(zip(("static", "php", "stream"), map(int, issued.groups()))) if issued else {}
lat = {p: v for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", wrk, re.M)}
try:
    resets = json.load(open(f"{tmp}/resets.json"))
except (OSError, ValueError):
    resets = {}
samples = [tuple(map(float, l.split())) for l in open(f"{tmp}/rss.txt") if len(l.split()) == 4]
sample_step = samples[1][0] - samples[0][0] if len(samples) > 1 else 10.0
load = [s for s in samples if s[0] <= duration - sample_step / 2]   # not racing the load's end
base = next((s for s in load if s[0] >= base_at), None)
end = load[-1] if load else None
ratio = end[1] / base[1] if base and end else None
peak = max((s for s in load if base and s[0] >= base[0]), key=lambda s: s[1], default=None)
try:
    status = json.loads(status_json)
except ValueError:
    status = {}
pools = {p["name"]: p for p in status.get("pools", [])}
srv = status.get("server", {})
log = open(f"{tmp}/error.log", errors="replace").read().splitlines()
levels = collections.Counter(re.search(r"\[(\w+)\]", l).group(1) for l in log if re.search(r"\[(\w+)\]", l))
shapes = collections.Counter(re.sub(r"\d+", "N", re.sub(r"^\S+ ", "", l))[:160]
                             for l in log if re.search(r"\[(warn|error|crit)\]", l))
started = {a: sum(1 for l in log if re.search(rf"\] {a}: started process", l)) for a in ("php", "app")}

crash_ok = alive == "yes" and exit_rc == "0" and sanitizer == "0"
non2xx_ok = non2xx == 0
rss_ok = ratio is not None and ratio <= rss_limit
sock_total = sum(sock.values())
ok = lambda b: "**pass**" if b else "**FAIL**"
mib = lambda kb: f"{int(kb)} kB ({int(kb) / 1024:.1f} MiB)"

out = []
w = out.append
w("## Soak: mixed load with resetting clients (bench/soak.sh)")
w("")
w(f"{info}  ")
w(f"{duration} s ({duration / 60:g} min) at {int(wrk_conns) + int(resetters)} connections: "
  f"**{wrk_conns} well-behaved** (wrk -t{wrk_threads} -c{wrk_conns} --timeout 10s, HTTP/1.1 keep-alive, "
  f"a Lua script picking one of three URLs at random for every request) and **{resetters} "
  f"resetting** (bench/reset_clients.py, one in ten of the connections). URLs: `/static.bin` "
  f"({static_size} B static file, sendfile), `/hello.php` (php-cgi, maxInstances {php_n}, "
  f"PHP_FCGI_MAX_REQUESTS unset, so the server retires each php-cgi after 500 requests), "
  f"`/t.fcgi?big=1m` (tests/apps/fcgi_app streaming 1 MiB in 64 KiB records, maxInstances "
  f"{app_n}, responseBufferLimit 0). Binary: `{binary}`; accessLog off. **A robustness soak, not "
  f"a speed measurement**: 2 cores shared by the server, its FastCGI processes, wrk, the Python "
  f"clients and other work on the machine.")
w("")
w("Each resetting client loops until the end: connect, one request (in one cycle in four a whole "
  "keep-alive request first, then the hostile one on the same connection), then leave at a random "
  "moment — `head_part` (part of the request head sent), `after_head` (whole head, 0-20 ms, nothing "
  "read), `resp_bytes` (1-100 bytes of the response read), `mid_body` (head and a random part of "
  "the body read) — by `rst` (SO_LINGER 0 close) or `fin_rst` (shutdown(SHUT_WR), up to 30 ms, "
  "then RST).")
w("")
w("| Done means (issue 10) | measured | result |")
w("|---|---|---|")
w(f"| no crash | server alive at the end of the load: {alive}; exit status after SIGTERM: "
  f"{exit_rc}; sanitizer reports: {sanitizer} | {ok(crash_ok)} |")
w(f"| 0 non-2xx for the clients that stayed | wrk non-2xx: {non2xx} of {requests} | {ok(non2xx_ok)} |")
if base and end:
    w(f"| RSS at the end within {round((rss_limit - 1) * 100)} % of RSS after "
      f"{'the first minute' if abs(base[0] - 60) < 1 else f'{base[0]:g} s'} | {mib(base[1])} at "
      f"{base[0]:g} s → {mib(end[1])} at {end[0]:g} s: ratio **{ratio:.3f}** | {ok(rss_ok)} |")
else:
    w(f"| RSS at the end within 10 % of RSS after the first minute | no sample under load at or after {base_at:g} s (the server died?) | **FAIL** |")
w("")
w("| figure | value |")
w("|---|---|")
w(f"| wrk requests completed | {requests} in {duration} s |")
w(f"| requests issued per URL kind (wrk) | static {issued.get('static')}, php {issued.get('php')}, "
  f"stream {issued.get('stream')} |")
w(f"| throughput (wrk) | {rps.group(1) if rps else '?'} req/s, {tps.group(1) if tps else '?'}/s |")
w(f"| wrk latency p50 / p90 / p99 | {lat.get('50')} / {lat.get('90')} / {lat.get('99')} |")
w(f"| wrk non-2xx | {non2xx} |")
w(f"| wrk socket errors | connect {sock['connect']}, read {sock['read']}, write {sock['write']}, "
  f"timeout {sock['timeout']} |")
w(f"| resets done | **{resets.get('resets')}** in {resets.get('cycles')} cycles "
  f"({resets.get('cycles_per_s')} cycles/s); by moment {resets.get('by_moment')}; by way "
  f"{resets.get('by_way')}; by URL {resets.get('by_kind')} |")
w(f"| resetting clients: whole keep-alive requests, statuses seen | {resets.get('completed')} "
  f"whole; statuses in any head received {resets.get('statuses')} |")
w(f"| resetting clients: server closed first / errors | {resets.get('server_closed_first') or 0} / "
  f"{resets.get('errors') or 0} |")
if base and end:
    w(f"| server VmRSS after {base[0]:g} s / at the end (last sample under load, {end[0]:g} s) / "
      f"highest from then on / "
      f"after the load (idle, 2 s) | {int(base[1])} / {int(end[1])} / {int(peak[1])} at "
      f"{peak[0]:g} s / {after_kb or '-'} kB |")
    w(f"| server open descriptors after {base[0]:g} s / at the end / after the load | "
      f"{int(base[2])} / {int(end[2])} / {after_fds or '-'} |")
w(f"| FastCGI processes started during the soak | php-cgi {started['php']}, fcgi_app {started['app']} "
  f"(retired by instanceMaxRequests or replaced) |")
for name in ("php", "app"):
    p = pools.get(name)
    if p:
        r = p.get("requests", {})
        w(f"| pool {name} at the end (ctl status) | {r.get('total')} requests: 2xx {r.get('2xx')}, "
          f"4xx {r.get('4xx')}, 5xx {r.get('5xx')}; processes {p.get('processes')}; queue "
          f"{ {k: v for k, v in p.get('queue', {}).items() if k in ('queued', 'full')} }; spawns "
          f"{p.get('spawns')}, exits_unexpected {p.get('exits_unexpected')}, recycles "
          f"{p.get('recycles')} |")
if srv:
    w(f"| server at the end (ctl status) | connections {srv.get('connections')}; requests "
      f"{ {k: v for k, v in srv.get('requests', {}).items()} } |")
w(f"| after the load | the three URLs answer 200: {urls_ok}; FastCGI processes surviving the "
  f"server: {survivors or 'none'} |")
w(f"| error log | {len(log)} lines; by level {dict(levels)} |")
w("")
w("The server's counters include the resetting clients' requests (those whose head was complete); "
  "wrk's non-2xx are the well-behaved clients' only.")
w("")
w("<details><summary>raw: wrk output, reset_clients.py output, VmRSS samples, error-log "
  "warnings</summary>")
w("")
w("```")
w(wrk.rstrip())
w("```")
w("```")
w(json.dumps(resets))
w("```")
w("```")
w("seconds VmRSS_kB fds children")
for s in samples:
    w(" ".join(f"{x:g}" if i == 0 else str(int(x)) for i, x in enumerate(s)))
w("```")
w("```")
w("warn/error/crit lines of the error log by shape (digits as N), the 20 most frequent:")
for s, n in shapes.most_common(20):
    w(f"{n:8d}  {s}")
w("```")
w("</details>")
print("\n".join(out))
pass_all = crash_ok and non2xx_ok and rss_ok
sys.stderr.write(f"[bench] soak: crash {'pass' if crash_ok else 'FAIL'}, non-2xx {non2xx} "
                 f"{'pass' if non2xx_ok else 'FAIL'}, RSS ratio "
                 f"{'%.3f' % ratio if ratio else '?'} {'pass' if rss_ok else 'FAIL'}, "
                 f"socket errors {sock_total}, resets {resets.get('resets')}\n")
open(f"{tmp}/verdict", "w").write("pass" if pass_all else "fail")
EOF
cat "$TMP/section.md" >&2
results_section soak <"$TMP/section.md"
[ "$(cat "$TMP/verdict" 2>/dev/null)" = pass ]
