#!/bin/bash
# PHP memory on a real application (issue 13): MediaWiki from Debian's package (on SQLite, installed
# by its own maintenance/install.php into a private directory, as tests/integration/test_75_apps.py
# does), opcache on (Debian's php.ini), N = 8 PHP workers in every configuration:
#   fpm        nginx + php-fpm, pm = static, pm.max_children = 8 (the anchors' nginx + php-fpm of
#              /work/shared/anchors/start.sh, with 8 workers and MediaWiki as root)
#   cgi        fcgihost, maxInstances = 8 php-cgi processes (one opcache each)
#   preforkK   fcgihost, maxInstances = 8, preforkChildren = K (SPEC 4.9b: each process started
#              with PHP_FCGI_CHILDREN=K, its K children share its opcache) — measured only when the
#              binary accepts the key (probed with fcgihost -t); otherwise the row says so
# fcgihost cannot pass requests to an external php-fpm, hence nginx in front of php-fpm.
#
# Each round starts every configuration in turn, alone on the machine (the PSS of a shared page is
# divided among all the processes that map it, so two PHP servers running at once would lower each
# other's figures), warms it up (WARM s of wrk -c16 on the main page, so that every worker has
# served it many times; the requests per worker are read from php-fpm's ?full status and from
# fcgihost ctl status), runs wrk -c$C --latency for D s on the main page, then reads
# /proc/PID/smaps_rollup of every PHP process (php-fpm: master and workers; fcgihost: every php-cgi
# it started, leaders and children), and stops it. Figures: medians of R rounds; ratios against
# php-fpm of the same round. PSS (Pss), private memory (Private_Clean + Private_Dirty, what
# privateMemoryLimit counts) and RSS are summed over the PHP processes; the HTTP server's own PSS is
# shown apart. Target (issue 13): prefork at most 1.3 x php-fpm's PSS at no lower throughput.
#
# Then, for docs/guide.md: the first request of a fresh php-cgi (opcache empty) with and without
# opcache.file_cache, COLD times each: a fresh fcgihost with minInstances = maxInstances = 1, the
# process started and idle (so its start is not counted), the time of its first GET of the main
# page, then of the next five (median). The file cache is filled once beforehand by another process.
#
# Writes the "memory" section of bench/RESULTS.md.
#
#   bench/memory.sh                  # needs build/fcgihost (make build) and scripts/deps.sh bench; root
#   D=10 R=3 C=16 WARM=15 COLD=5 PREFORK="4 8" PORT=8120 bench/memory.sh     # the defaults (~8 min)
#   D=5 R=1 WARM=8 COLD=2 bench/memory.sh                                   # a quick look
#   FCGIHOST_BIN=/path/to/fcgihost BUILD_NOTE="branch h-prefork 291d200" bench/memory.sh   # another build
set -uo pipefail
. "$(dirname "$0")/lib.sh"

D=${D:-10}; R=${R:-3}; C=${C:-16}; WARM=${WARM:-15}; COLD=${COLD:-5}; PORT=${PORT:-8120}
PREFORK=${PREFORK:-4 8}
N=8
MW=/usr/share/mediawiki
PAGE="/index.php?title=Main_Page"
require_fcgihost
require_tools php php-cgi php-fpm8.2 nginx
[ -f "$MW/maintenance/install.php" ] || die "no MediaWiki in $MW (scripts/deps.sh bench installs it)"
grep -qix pdo_sqlite <<<"$(php -m)" || die "php has no pdo_sqlite (scripts/deps.sh bench installs php-sqlite3)"
[ "$(id -u)" = 0 ] || die "run as root (smaps_rollup of www-data's processes, php-fpm, nginx)"
PHP_CGI=$(command -v php-cgi)

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-memory.XXXXXX)
chmod 755 "$TMP"
FPM_PID=; NGINX_PID=
fpm_stop() {
    local p
    for p in $NGINX_PID $FPM_PID; do kill -QUIT "$p" 2>/dev/null; done
    for p in $NGINX_PID $FPM_PID; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    NGINX_PID=; FPM_PID=
}
cleanup() { fcgihost_stop; fpm_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- MediaWiki: installed once, on SQLite, in $TMP/wiki (owned by www-data, who runs PHP).
WIKI=$TMP/wiki
mkdir -p "$WIKI"
log "installing MediaWiki into $WIKI (maintenance/install.php)"
php "$MW/maintenance/install.php" --dbtype=sqlite --dbpath="$WIKI/db" --dbname=wiki \
    --server="http://127.0.0.1:$PORT" --scriptpath= --lang=en --pass="Bench-memory-Passw0rd!" \
    --confpath="$WIKI" "Bench Wiki" benchadmin </dev/null >"$TMP/install.log" 2>&1 ||
    { tail -20 "$TMP/install.log" >&2; die "MediaWiki's install.php failed"; }
chown -R www-data:www-data "$WIKI"
chmod -R a+rX "$TMP"
MWVER=$(dpkg-query -W -f='${Version}' mediawiki 2>/dev/null || echo '?')
INI=$(for b in "$PHP_CGI" php-fpm8.2; do
          printf '%s: ' "$(basename "$b")"
          # php-cgi -i prints HTML, php-fpm -i text ("name => local => master"): the local value
          "$b" -i 2>/dev/null | tr -d '\r' | sed 's/<[^>]*>/ /g; s/=>/ /g' | awk '
              $1 ~ /^opcache\.(enable|memory_consumption|interned_strings_buffer|max_accelerated_files|validate_timestamps|file_cache)$/ {
                  printf "%s=%s ", $1, ($2 == "no" && $3 == "value" ? "(none)" : $2) }'
          echo
      done)
grep -q 'opcache.enable=On' <<<"$INI" || log "warning: opcache may be off: $INI"

# --- the configurations
# fcgihost_mw DIR PORT POOL_LINES: fcgihost serving MediaWiki's tree with the pool "mw".
fcgihost_mw() {
    local dir=$1 port=$2
    port_free "$port" || die "port $port is busy; set PORT=... to use another"
    mkdir -p "$dir/run"
    cat >"$dir/fcgihost.conf" <<EOF
[server]
listen = 127.0.0.1:$port
root = $MW
accessLog = off
errorLog = $dir/error.log
controlSocket = $dir/run/control.sock
runtimeDir = $dir/run

[fastcgi:mw]
fullPath = $PHP_CGI
env = PHP_FCGI_MAX_REQUESTS=0
env = MW_CONFIG_FILE=$WIKI/LocalSettings.php
instanceMaxRequests = 0
idleTimeout = 0
$3

[handler:mw]
path = *.php
scriptProcessor = mw
EOF
    chmod -R a+rX "$dir"
    (ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
     exec "$FCGIHOST_BIN" -c "$dir/fcgihost.conf" >"$dir/stdout.log" 2>&1) &
    FCGIHOST_PID=$!
}
ctl_json() { "$FCGIHOST_BIN" ctl -c "$1/fcgihost.conf" status mw --json 2>/dev/null; }

fpm_mw() {   # DIR PORT: php-fpm (pm static N) behind nginx, as anchors/start.sh sets them up
    local dir=$1 port=$2
    port_free "$port" || die "port $port is busy; set PORT=... to use another"
    mkdir -p "$dir"
    cat >"$dir/php-fpm.conf" <<C
[global]
pid = $dir/fpm.pid
error_log = $dir/fpm-error.log
daemonize = yes
[mw]
user = www-data
group = www-data
listen = $dir/php.sock
pm = static
pm.max_children = $N
pm.max_requests = 0
pm.status_path = /fpm-status
env[MW_CONFIG_FILE] = $WIKI/LocalSettings.php
C
    cat >"$dir/nginx.conf" <<C
user root;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  upstream php { server unix:$dir/php.sock; keepalive $N; }
  server {
    listen 127.0.0.1:$port reuseport;
    root $MW;
    location ~ \.php\$ { include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name; fastcgi_keep_conn on; fastcgi_pass php; }
    location = /fpm-status { include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name; fastcgi_keep_conn on; fastcgi_pass php; }
  }
}
C
    php-fpm8.2 -y "$dir/php-fpm.conf" || die "php-fpm did not start"
    nginx -c "$dir/nginx.conf" || die "nginx did not start"
    FPM_PID=$(cat "$dir/fpm.pid"); NGINX_PID=$(cat "$dir/nginx.pid")
}

# prefork_ok K: does this fcgihost accept preforkChildren = K (SPEC 4.9b)?
prefork_ok() {
    mkdir -p "$TMP/probe"
    printf '[server]\nroot = %s\n[fastcgi:mw]\nfullPath = %s\nmaxInstances = %s\npreforkChildren = %s\n' \
        "$MW" "$PHP_CGI" "$N" "$1" >"$TMP/probe/c.conf"
    "$FCGIHOST_BIN" -t -c "$TMP/probe/c.conf" >"$TMP/probe/out" 2>&1
}
CONFIGS="fpm cgi"
NOT_MEASURED=""
for k in $PREFORK; do
    if prefork_ok "$k"; then
        CONFIGS="$CONFIGS prefork$k"
    else
        NOT_MEASURED="$NOT_MEASURED prefork$k"
        log "prefork$k: not measured: $FCGIHOST_BIN does not accept preforkChildren = $k: $(head -c 300 "$TMP/probe/out")"
    fi
done

# --- measurements
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
# php_pids CONFIG: the PHP processes of the running configuration, "pid role" (role: master or
# leader, a process that serves nothing itself; worker, one that serves requests).
php_pids() {
    local p pp
    if [ "$1" = fpm ]; then
        echo "$FPM_PID master"
        for p in $(pgrep -P "$FPM_PID"); do echo "$p worker"; done
        return
    fi
    for p in $(descendants "$FCGIHOST_PID"); do
        case "$(cat "/proc/$p/comm" 2>/dev/null)" in php-cgi*) ;; *) continue ;; esac
        pp=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        case "$(cat "/proc/$pp/comm" 2>/dev/null)" in
            php-cgi*) echo "$p worker" ;;                  # a child of a preforked leader
            *) if [ -n "$(pgrep -P "$p")" ]; then echo "$p leader"; else echo "$p worker"; fi ;;
        esac
    done
}
expected() {   # CONFIG: "workers others" once every process is up
    case $1 in
        fpm) echo "$N 1" ;;
        cgi) echo "$N 0" ;;
        prefork*) local k=${1#prefork}; echo "$N $(( (N + k - 1) / k ))" ;;
    esac
}
# kb FIELD-REGEX PID: the sum of the matching fields of /proc/PID/smaps_rollup, in KiB
kb() { awk -v re="^($1):" '$0 ~ re {s += $2} END {print s + 0}' "/proc/$2/smaps_rollup" 2>/dev/null || echo 0; }

wrk_figures() {   # req/s, p99 ms, non-2xx + socket errors (from wrk --latency)
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                         if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
        /^ +99%/ { p99 = ms($2) }
        /^Requests\/sec/ { rps = $2 }
        /Non-2xx/ { bad += $NF }
        /Socket errors/ { for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) bad += $i }
        END { printf "%s %.1f %d\n", rps, p99, bad + 0 }'
}

# requests served by each worker so far, "min max" (as far as the status tells)
served() {
    if [ "$1" = fpm ]; then
        curl -s -m 5 "http://127.0.0.1:$2/fpm-status?json&full"
    else
        ctl_json "$3"
    fi | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    print("? ?"); sys.exit()
if "pools" in d:
    procs = [p for p in d["pools"][0]["process_list"]]
else:
    procs = d.get("processes", [])
# php-fpm counts the status request itself as one served by the worker that answers it. With
# preforkChildren fcgihost counts requests per connection (N per group, each accepted and kept by
# one child) and lists the children themselves apart (state "child", no count): those are skipped.
r = [p.get("requests") for p in procs
     if isinstance(p.get("requests"), int) and p.get("state") != "child"]
print(f"{min(r)} {max(r)}" if r else "? ?")'
}

RAW=$TMP/raw.txt; PROCS=$TMP/procs.txt
: >"$RAW"; : >"$PROCS"
run_config() {   # ROUND CONFIG PORT
    local round=$1 cfg=$2 port=$3 dir=$TMP/$2-$1 url out want got i workers others figs
    local pss=0 uss=0 rss=0 lpss=0 wpss=0 wuss=0 nw=0 nl=0 srv_pss=0 p role a b c
    case $cfg in
        fpm) fpm_mw "$dir" "$port" ;;
        cgi) fcgihost_mw "$dir" "$port" "maxInstances = $N" ;;
        prefork*) fcgihost_mw "$dir" "$port" "maxInstances = $N
preforkChildren = ${cfg#prefork}" ;;
    esac
    url="http://127.0.0.1:$port$PAGE"
    if ! wait_http "$url" 60; then
        tail -20 "$dir"/*.log >&2 2>/dev/null
        die "$cfg does not answer 200 for $url"
    fi
    out=$(curl -s -m 30 "$url")
    grep -q 'Bench Wiki' <<<"$out" || die "$cfg: $url is not MediaWiki's main page: $(head -c 300 <<<"$out")"
    wrk -t1 -c"$C" -d"${WARM}s" "$url" >/dev/null 2>&1
    read -r workers others <<<"$(expected "$cfg")"
    want=$((workers + others))
    for i in $(seq 100); do
        got=$(php_pids "$cfg" | wc -l)
        [ "$got" -ge "$want" ] && break
        sleep 0.1
    done
    [ "$got" = "$want" ] || log "$cfg: $got PHP processes, expected $want"
    read -r a b <<<"$(served "$cfg" "$port" "$dir")"
    log "round $round: $cfg: $got PHP processes; requests per process after warm-up: min $a, max $b"
    out=$(wrk -t1 -c"$C" -d"${D}s" --latency "$url" 2>&1)
    figs=$(wrk_figures <<<"$out")
    while read -r p role; do
        a=$(kb Pss "$p"); b=$(kb 'Private_Clean|Private_Dirty' "$p"); c=$(kb Rss "$p")
        pss=$((pss + a)); uss=$((uss + b)); rss=$((rss + c))
        if [ "$role" = worker ]; then wpss=$((wpss + a)); wuss=$((wuss + b)); nw=$((nw + 1))
        else lpss=$((lpss + a)); nl=$((nl + 1)); fi
        echo "$round $cfg $p $role pss=$a private=$b rss=$c" >>"$PROCS"
    done < <(php_pids "$cfg")
    if [ "$cfg" = fpm ]; then
        for p in $NGINX_PID $(pgrep -P "$NGINX_PID"); do srv_pss=$((srv_pss + $(kb Pss "$p"))); done
    else
        srv_pss=$(kb Pss "$FCGIHOST_PID")
    fi
    # round config req/s p99 bad | PHP: processes pss private rss | workers: n pss private |
    # masters/leaders: n pss | server pss | min-max requests per process at the end | load average (1 min)
    read -r a b <<<"$(served "$cfg" "$port" "$dir")"
    echo "$round $cfg $figs $((nw + nl)) $pss $uss $rss $nw $wpss $wuss $nl $lpss $srv_pss $a $b $(cut -d' ' -f1 /proc/loadavg)" |
        tee -a "$RAW" >&2
    if [ "$cfg" = fpm ]; then fpm_stop; else fcgihost_stop; fi
}

n_cfg=$(wc -w <<<"$CONFIGS")
log "measuring: $R rounds x $n_cfg configurations x (${WARM} s warm-up + ${D} s) (about $((R * n_cfg * (WARM + D + 8))) s), then the cold starts"
for round in $(seq "$R"); do
    i=0
    for cfg in $CONFIGS; do
        run_config "$round" "$cfg" $((PORT + i))
        i=$((i + 1))
        sleep 1
    done
done

# --- the first request of a fresh php-cgi, with and without opcache.file_cache
COLD_RAW=$TMP/cold.txt
: >"$COLD_RAW"
FC=$TMP/opcache-files
mkdir -p "$FC"; chown www-data:www-data "$FC"
cold_one() {   # MODE ROUND: one fresh fcgihost with one php-cgi; "first median-of-next" in ms
    local mode=$1 dir=$TMP/cold-$1-$2 url="http://127.0.0.1:$PORT$PAGE" args="" i first next=""
    [ "$mode" = file_cache ] && args="arguments = -d opcache.file_cache=$FC"
    fcgihost_mw "$dir" "$PORT" "maxInstances = 1
minInstances = 1
$args"
    for i in $(seq 100); do
        grep -q '"idle": *1[,}]' <<<"$(ctl_json "$dir")" && break
        sleep 0.1
    done
    grep -q '"idle": *1[,}]' <<<"$(ctl_json "$dir")" || die "cold start: no idle process (see $dir/error.log)"
    first=$(curl -s -o /dev/null -m 60 -w '%{http_code} %{time_total}' "$url")
    [ "${first%% *}" = 200 ] || die "cold start ($mode): GET $url answered ${first%% *}"
    for i in 1 2 3 4 5; do next="$next $(curl -s -o /dev/null -m 60 -w '%{time_total}' "$url")"; done
    fcgihost_stop
    python3 -c 'import statistics, sys; print("%.1f %.1f" % (float(sys.argv[1]) * 1000,
                statistics.median(float(x) for x in sys.argv[2:]) * 1000))' "${first#* }" $next
}
log "cold starts: $COLD x (no file cache, file cache)"
cold_one file_cache prime >/dev/null              # fills the file cache
FC_FILES=$(find "$FC" -type f | wc -l); FC_KB=$(du -sk "$FC" | cut -f1)
for i in $(seq "$COLD"); do
    for mode in none file_cache; do
        echo "$i $mode $(cold_one "$mode" "$i")" | tee -a "$COLD_RAW" >&2
    done
done
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

section=$(python3 - "$RAW" "$COLD_RAW" "$PROCS" "$INFO" "$END_LOAD" "$D" "$R" "$C" "$WARM" "$N" "$CONFIGS" \
    "$NOT_MEASURED" "$MWVER" "$INI" "$FC_FILES" "$FC_KB" "$PAGE" "$("$FCGIHOST_BIN" -v 2>&1 | head -1)" "$FCGIHOST_BIN${BUILD_NOTE:+, $BUILD_NOTE}" <<'PY'
import statistics, sys
(raw, cold_raw, procs, info, end_load, D, R, C, WARM, N, configs, not_measured, mwver, ini,
 fc_files, fc_kb, page, version, binary) = sys.argv[1:20]
configs, not_measured = configs.split(), not_measured.split()
rows = {}
for line in open(raw):
    f = line.split()
    if len(f) < 17:
        continue
    rnd, cfg = f[0], f[1]
    rows.setdefault(cfg, {})[rnd] = dict(
        rps=float(f[2]), p99=float(f[3]), bad=int(f[4]), nproc=int(f[5]), pss=int(f[6]),
        uss=int(f[7]), rss=int(f[8]), nw=int(f[9]), wpss=int(f[10]), wuss=int(f[11]),
        nl=int(f[12]), lpss=int(f[13]), srv=int(f[14]), rmin=f[15], rmax=f[16])
med = statistics.median
def m(cfg, key):
    return med(r[key] for r in rows[cfg].values())
def ratio(cfg, key):   # median over rounds of cfg / fpm in the same round
    v = [r[key] / rows["fpm"][k][key] for k, r in rows[cfg].items()
         if k in rows.get("fpm", {}) and rows["fpm"][k][key]]
    return med(v) if v else float("nan")
MiB = lambda kb: kb / 1024
names = {"fpm": f"nginx + php-fpm (pm static {N})", "cgi": f"fcgihost, {N} php-cgi"}
for c in configs + not_measured:
    if c.startswith("prefork"):
        k = int(c[7:])
        g = (int(N) + k - 1) // k
        names[c] = f"fcgihost, {N} php-cgi, preforkChildren = {k} ({g} leader{'s' if g > 1 else ''})"
out = ["## PHP memory on MediaWiki (bench/memory.sh)\n",
       f"{info}; at the end {end_load}  ",
       f"{version} ({binary}); MediaWiki {mwver} (Debian) on SQLite, installed by maintenance/install.php; "
       f"GET {page} (the parser cache of the page is warm). Opcache as Debian's php.ini sets it:  ",
       "`" + "`  \n`".join(l.strip() for l in ini.strip().splitlines()) + "`\n",
       f"Each configuration runs alone (the PSS of a page shared by several programs is divided among "
       f"them), {N} PHP workers each: warm-up {WARM} s of wrk -c{C} on the page, then wrk -t1 -c{C} "
       f"--latency for {D} s, then /proc/PID/smaps_rollup of every PHP process (php-fpm: master "
       f"and workers; fcgihost: every php-cgi, leaders and children). Medians of {R} rounds, the "
       "configurations in turn in each round; ratios against php-fpm of the same round. "
       "*private*: Private_Clean + Private_Dirty (what the process alone holds, as "
       "privateMemoryLimit counts it). *server*: PSS of nginx (master and worker) or of fcgihost. "
       "*requests per worker*: at the end, from php-fpm's `?full` status and `fcgihost ctl status "
       "mw --json` (with preforkChildren fcgihost counts per connection, each accepted and kept by "
       "one child).\n",
       "| configuration | PHP processes | PHP PSS MiB | ÷ php-fpm | private MiB | RSS MiB | "
       "PSS per worker MiB | private per worker MiB | master/leaders PSS MiB | server PSS MiB | "
       "req/s | ÷ php-fpm | p99 ms | non-2xx/errors | requests per worker (min-max) |",
       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
for c in configs:
    if c not in rows:
        out.append(f"| {names[c]} | failed: no figures | | | | | | | | | | | | | |")
        continue
    last = rows[c][max(rows[c])]
    wp = med(r["wpss"] / r["nw"] for r in rows[c].values() if r["nw"])
    wu = med(r["wuss"] / r["nw"] for r in rows[c].values() if r["nw"])
    out.append(
        f"| {names[c]} | {m(c,'nproc'):.0f} | {MiB(m(c,'pss')):.1f} | {ratio(c,'pss'):.2f} | "
        f"{MiB(m(c,'uss')):.1f} | {MiB(m(c,'rss')):.1f} | {MiB(wp):.1f} | {MiB(wu):.1f} | "
        f"{MiB(m(c,'lpss')):.1f} | {MiB(m(c,'srv')):.1f} | {m(c,'rps'):.1f} | {ratio(c,'rps'):.2f} | "
        f"{m(c,'p99'):.0f} | {sum(r['bad'] for r in rows[c].values())} | {last['rmin']}-{last['rmax']} |")
for c in not_measured:
    out.append(f"| {names[c]} | not measured yet: this fcgihost does not accept preforkChildren "
               "(fcgihost -t) | | | | | | | | | | | | | |")
out.append("")
for c in configs:
    if c.startswith("prefork") and c in rows and "fpm" in rows:
        pr, tr = ratio(c, "pss"), ratio(c, "rps")
        out.append(f"- {names[c]}: PSS {pr:.2f} x php-fpm's (target at most 1.3: "
                   f"**{'yes' if pr <= 1.3 else 'no'}**), throughput {tr:.2f} x php-fpm's (target "
                   f"at least 1.0: **{'yes' if tr >= 1.0 else 'no'}**)")
for c in not_measured:
    out.append(f"- {names[c]}: not measured (the binary measured has no preforkChildren); "
               "the issue-13 target (at most 1.3 x php-fpm's PSS at no lower throughput) is open.")
if "cgi" in rows and "fpm" in rows:
    out.append(f"- {names['cgi']} (one opcache per process, today's model): PSS "
               f"{ratio('cgi','pss'):.2f} x php-fpm's, throughput {ratio('cgi','rps'):.2f} x.")
out.append("")
cold = {}
for line in open(cold_raw):
    f = line.split()
    if len(f) == 4:
        cold.setdefault(f[1], []).append((float(f[2]), float(f[3])))
if cold:
    out.append(f"First request of a fresh php-cgi (its opcache empty) on the same page: a fresh "
               f"fcgihost with minInstances = maxInstances = 1, timed once its process is started "
               f"and idle (curl's time_total); *next*: the median of the 5 requests after it. "
               f"Medians of {len(cold.get('none', []))} fresh servers each. With "
               f"`-d opcache.file_cache=DIR` (filled beforehand by another php-cgi: {fc_files} files, "
               f"{int(fc_kb) / 1024:.1f} MiB) the process loads compiled scripts from the file "
               "instead of compiling them.\n")
    out.append("| opcache.file_cache | first request ms | next requests ms |")
    out.append("|---|---:|---:|")
    for mode, label in (("none", "none (Debian's default)"), ("file_cache", "DIR, warm")):
        if mode in cold:
            out.append(f"| {label} | {med(x[0] for x in cold[mode]):.0f} | "
                       f"{med(x[1] for x in cold[mode]):.0f} |")
    out.append("")
out.append("<details><summary>raw rounds: round config req/s p99 bad | PHP processes, PSS, private, "
           "RSS (KiB) | workers n, PSS, private | masters/leaders n, PSS | server PSS | requests per "
           "worker min max | load average (1 min) after the run, its own 8 busy workers and wrk included</summary>\n")
out.append("```")
out.append(open(raw).read().strip())
out.append("```\n")
out.append("per process (KiB):\n")
out.append("```")
out.append(open(procs).read().strip())
out.append("```\n")
out.append("cold starts: round mode first-ms next-ms\n")
out.append("```")
out.append(open(cold_raw).read().strip())
out.append("```")
out.append("</details>")
print("\n".join(out))
PY
) || die "could not write the results"
results_section memory <<<"$section"
