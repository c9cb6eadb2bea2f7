# Shared helpers of the bench/ scripts; source it: . "$(dirname "$0")/lib.sh"
# Benchmarks are never part of the test suite. They run as root on a quiet machine and assume
# `make build` produced build/fcgihost (they never build it themselves).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
ANCHORS=${ANCHORS:-/work/shared/anchors}
export RUN=${RUN:-/tmp/anchors}          # start.sh / stop.sh read it
FCGIHOST_BIN=${FCGIHOST_BIN:-$TOP/build/fcgihost}
RESULTS=${RESULTS:-$BENCH_DIR/RESULTS.md}
FCGIHOST_PID=

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

require_fcgihost() {
    [ -x "$FCGIHOST_BIN" ] || die "$FCGIHOST_BIN not found: run 'make build' first (bench does not build)"
}

require_tools() {
    local t
    for t in wrk curl python3 "$@"; do
        command -v "$t" >/dev/null || die "missing $t (scripts/deps.sh bench installs the bench tools)"
    done
}

# wait_http URL [SECONDS]: poll until URL answers 200 (https: the anchors' certificate is
# self-signed, so it is not checked).
wait_http() {
    local url=$1 deadline=$((SECONDS + ${2:-10}))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(curl -sk -o /dev/null -m 1 -w '%{http_code}' "$url")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# --- anchors (nginx 8081, lighttpd 8082, apache 8083, h2o 8084) from /work/shared/anchors
anchors_start() {
    log "starting anchors in $RUN"
    "$ANCHORS/start.sh" >&2 || die "anchors/start.sh failed"
    local p
    for p in 8081 8082 8084; do
        wait_http "http://127.0.0.1:$p/1k.txt" 10 || die "anchor on port $p does not serve /1k.txt"
    done
}

anchors_stop() { "$ANCHORS/stop.sh" >/dev/null 2>&1 || true; }

nginx_pids() {      # master and workers
    local m
    m=$(cat "$RUN/nginx/nginx.pid" 2>/dev/null) || return 1
    echo "$m" $(pgrep -P "$m")
}
lighttpd_pids() { cat "$RUN/lighttpd/pid"; }
h2o_pids() {        # the h2o server process, a child of start_server (whose pid is in the pid file)
    local s c
    s=$(cat "$RUN/h2o/pid" 2>/dev/null) || return 1
    for c in $(pgrep -P "$s"); do
        tr '\0' ' ' <"/proc/$c/cmdline" | grep -q '^h2o ' && echo "$c"
    done
}

# --- fcgihost
# fcgihost_start DIR PORT [EXTRA_SERVER_LINES]: writes DIR/fcgihost.conf serving DIR/www,
# starts the server with a high fd limit, waits until /1k.txt answers. Sets FCGIHOST_PID.
fcgihost_start() {
    local dir=$1 port=$2 extra=${3:-}
    port_free "$port" || die "port $port is busy; set PORT=... to use another"
    mkdir -p "$dir/run"
    cat >"$dir/fcgihost.conf" <<EOF
[server]
listen = 127.0.0.1:$port
root = $dir/www
accessLog = off
errorLog = $dir/error.log
controlSocket = $dir/run/control.sock
runtimeDir = $dir/run
$extra
EOF
    chmod -R a+rX "$dir"
    # 65536 descriptors, or the hard limit when raising it is not allowed (no CAP_SYS_RESOURCE).
    (ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
     exec "$FCGIHOST_BIN" -c "$dir/fcgihost.conf" >"$dir/stdout.log" 2>&1) &
    FCGIHOST_PID=$!
    if ! wait_http "http://127.0.0.1:$port/1k.txt" 10; then
        log "fcgihost did not serve http://127.0.0.1:$port/1k.txt within 10 s; its logs:"
        tail -20 "$dir/stdout.log" "$dir/error.log" >&2 2>/dev/null
        fcgihost_stop
        exit 1
    fi
    log "fcgihost pid $FCGIHOST_PID on 127.0.0.1:$port"
}

# fastcgi_apps_conf WWW N: the two applications of the FastCGI benchmarks (hello.php on php-cgi,
# WWW/hello.fcgi), N processes each, never recycled, and their handlers.
fastcgi_apps_conf() {
    cat <<APPS
[fastcgi:php]
fullPath = $(command -v php-cgi)
env = PHP_FCGI_MAX_REQUESTS=0
maxInstances = $2
instanceMaxRequests = 0

[handler:php]
path = *.php
scriptProcessor = php

[fastcgi:hello]
fullPath = $1/hello.fcgi
maxInstances = $2
instanceMaxRequests = 0

[handler:hello]
path = /hello.fcgi
scriptProcessor = hello
resourceType = Unspecified
APPS
}

fcgihost_stop() {
    [ -n "$FCGIHOST_PID" ] || return 0
    kill -TERM "$FCGIHOST_PID" 2>/dev/null
    local i
    for i in $(seq 50); do kill -0 "$FCGIHOST_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FCGIHOST_PID" 2>/dev/null
    wait "$FCGIHOST_PID" 2>/dev/null
    FCGIHOST_PID=
}

# --- measurements
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }     # rss_kb PID
rss_sum_kb() { local s=0 p; for p in "$@"; do s=$((s + $(rss_kb "$p"))); done; echo $s; }

machine_info() {   # the load average tells whether something else was running
    printf '%s · %s CPUs (%s) · kernel %s · %s MiB RAM · load average at start %s' \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" \
        "$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)" "$(uname -r)" \
        "$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# results_section NAME < markdown: replaces <!-- NAME:begin --> ... <!-- NAME:end --> in RESULTS.md
# (appends the section when absent), keeping the other sections.
results_section() {
    # The program goes in -c because stdin carries the section text.
    python3 -c '
import os, re, sys
path, name = sys.argv[1], sys.argv[2]
body = sys.stdin.read().rstrip("\n")
block = f"<!-- {name}:begin -->\n{body}\n<!-- {name}:end -->"
head = "# fcgihost benchmark results\n\nWritten by bench/*.sh; each script replaces its own section.\n"
text = open(path).read() if os.path.exists(path) else head
pat = re.compile(rf"<!-- {re.escape(name)}:begin -->.*?<!-- {re.escape(name)}:end -->", re.S)
text = pat.sub(lambda m: block, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
' "$RESULTS" "$1"
    log "wrote the '$1' section of $RESULTS"
}

# --- FastCGI benchmarks (fastcgi.sh, stream.sh)
# warm_up SECONDS URL...: wrk -c64 against each URL for SECONDS so that every server has spawned
# its FastCGI processes before it is measured; prints "URL requests non-2xx" lines.
warm_up() {
    local secs=$1 url out; shift
    for url in "$@"; do
        out=$(wrk -t1 -c64 -d"${secs}s" "$url")
        printf '%s %s %s\n' "$url" "$(awk '/requests in/ {print $1}' <<<"$out")" \
            "$(awk '/Non-2xx/ {print $NF}' <<<"$out" | grep . || echo 0)"
    done
}

# expect_body URL TEXT: GET URL answers 200 with TEXT (one trailing newline ignored), or die.
expect_body() {
    local got body
    got=$(curl -sk -m 5 -w '%{http_code}' "$1"); body=${got%???}
    [ "${got: -3}" = 200 ] && [ "${body%$'\n'}" = "$2" ] ||
        die "GET $1: expected 200 '$2', got: $(head -c 300 <<<"$got")"
}

# children_of PID: "pid comm" of each child (fcgihost's children are its FastCGI processes).
children_of() {
    local c
    for c in $(pgrep -P "$1"); do echo "$c $(cat "/proc/$c/comm" 2>/dev/null)"; done
}

# cpu_ticks PID: its utime + stime so far, in clock ticks (getconf CLK_TCK); the fields are
# counted after the ")" closing the command name, which may itself hold spaces.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }     # hwm_kb PID: peak RSS so far
