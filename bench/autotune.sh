#!/bin/bash
# Automatic pool sizing (SPEC 4.2, maxInstances = 0) against fixed pools: GET /cpu.php (~5 ms of
# CPU) and GET /io.php (20 ms usleep) through php-cgi at 64 connections, with maxInstances =
# 1 2 4 8 16 32 64 and 0 (automatic). SPEC's goal: auto within 10% of the best fixed limit on both
# pages; on io.php the automatic pool must also grow well past 4 processes (auto ≥ 10 × fixed 4).
# Writes the "autotune" section of bench/RESULTS.md.
#
#   bench/autotune.sh               # needs build/fcgihost (make build); run as root
#   D=10 R=3 WARM=3 AUTO_WARM=20 PORT=8100 PAGES="cpu.php io.php" LIMITS="1 2 4 8 16 32 64" \
#       bench/autotune.sh           # the defaults: about 10 minutes
#   D=5 R=1 WARM=2 AUTO_WARM=10 bench/autotune.sh             # a quick look: about 2.5 minutes
#   PAGES=io.php LIMITS="4 32 64" D=5 R=2 bench/autotune.sh   # a subset: about 1.5 minutes
#
# One fresh fcgihost per configuration, each with a single php-cgi application (ports PORT ..
# PORT+7; PHP_FCGI_MAX_REQUESTS=0, instanceMaxRequests 0, queueLength 10000, idleTimeout 0 so a
# fixed pool keeps its processes between rounds). Per page:
#  1. the fixed pools run side by side: WARM s of wrk -c64 each, then anchors/bench.py rounds
#     interleaved across them (D s × R, median); then they are stopped.
#  2. the automatic pool runs alone (nothing else loads the machine, so its controller measures
#     only itself): AUTO_WARM s of the same load to let the controller converge, then R rounds of
#     D s back to back. Its rounds are not interleaved with the fixed pools': an idle pause of
#     minutes while other pools saturate the CPU is exactly what would mislead a controller.
#     The limit it settled on is read from the error log (the last `php: maxInstances (auto) A -> B`
#     line) and from `fcgihost ctl status php --json`; the php-cgi processes
#     it ran are sampled every second.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

D=${D:-10}; R=${R:-3}; WARM=${WARM:-3}; AUTO_WARM=${AUTO_WARM:-20}; PORT=${PORT:-8100}
PAGES=${PAGES:-cpu.php io.php}; LIMITS=${LIMITS:-1 2 4 8 16 32 64}
C=64            # connections (warm_up in lib.sh uses 64 too)
QUEUE=10000     # queueLength: 64 connections never fill it
require_fcgihost
require_tools php-cgi
PHP_CGI=$(command -v php-cgi)
NCPU=$(nproc)
CPU_CAP=$((4 * NCPU > 8 ? 4 * NCPU : 8))    # SPEC 4.2: on a CPU-bound page, limit ≤ max(8, 4 × CPUs)

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-autotune.XXXXXX)
PIDS=()         # the fcgihost servers running now
SAMPLER=
stop_all() {
    local p
    for p in "${PIDS[@]}"; do FCGIHOST_PID=$p; fcgihost_stop; done
    PIDS=()
}
cleanup() { [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null; stop_all; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

n_limits=$(wc -w <<<"$LIMITS"); n_pages=$(wc -w <<<"$PAGES")
log "about $((n_pages * (n_limits * (WARM + D * R) + AUTO_WARM + D * R) + n_pages * 8)) s:" \
    "$n_pages pages × ($n_limits fixed pools × (${WARM} s warm-up + $R × ${D} s)" \
    "+ auto ${AUTO_WARM} s settle + $R × ${D} s)"

# server_start DIR MAXINSTANCES PORT: a fresh fcgihost in DIR with one php-cgi application.
server_start() {
    local dir=$1 max=$2 port=$3
    mkdir -p "$dir" && cp -r "$ANCHORS/www" "$dir/www" || die "cannot copy $ANCHORS/www"
    fcgihost_start "$dir" "$port" "
[fastcgi:php]
fullPath = $PHP_CGI
env = PHP_FCGI_MAX_REQUESTS=0
maxInstances = $max
instanceMaxRequests = 0
queueLength = $QUEUE
idleTimeout = 0

[handler:php]
path = *.php
scriptProcessor = php"
    PIDS+=("$FCGIHOST_PID")
}

# check_page URL PAGE: the page answers 200 with its known text (any text for another page).
check_page() {
    case $2 in
        cpu.php) expect_body "$1" "cpu 599994" ;;
        io.php) expect_body "$1" "io" ;;
        *) [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$1")" = 200 ] || die "GET $1 is not 200" ;;
    esac
}

nprocs() { pgrep -c -P "$1"; }      # the server's children: its php-cgi processes
lines() { wc -l 2>/dev/null <"$1" || echo 0; }
warn_lines() { grep -cE '\[(warn|error|crit)' "$1" 2>/dev/null; }   # warn_lines FILE

# The controller's log line: `php: maxInstances (auto) A -> B: reason`.
CHANGE_RE='php: maxInstances \(auto\) [0-9]+ -> [0-9]+'
# log_limit FILE: the last limit the controller logged.
log_limit() { grep -oE "$CHANGE_RE" "$1" 2>/dev/null | tail -1 | grep -oE '[0-9]+$'; }

# ctl_status SOCKET OUT: `fcgihost ctl status php --json` into OUT; empty when the command fails.
ctl_status() {
    timeout 5 "$FCGIHOST_BIN" ctl -s "$1" status php --json >"$2" 2>/dev/null || : >"$2"
}
# ctl_limit FILE: the pool's current limit from that JSON ("" when absent or not JSON).
ctl_limit() {
    python3 - "$1" <<'EOF' 2>/dev/null
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(0)
found = []
def walk(o, path):
    if isinstance(o, dict):
        for k, v in o.items():
            kl = k.lower()
            if isinstance(v, int) and not isinstance(v, bool) and "limit" in kl and not any(
                    w in kl for w in ("queue", "request", "buffer", "byte", "fail")):
                found.append((0 if kl in ("limit", "instance_limit", "instancelimit", "current_limit")
                              else 1, path + [k], v))
            walk(v, path + [k])
    elif isinstance(o, list):
        for i, v in enumerate(o):
            walk(v, path + [str(i)])
walk(doc, [])
if found:
    found.sort(key=lambda f: f[0])
    print(f"{found[0][2]} ({'.'.join(found[0][1])})")
EOF
}

# sample_procs PID OUT: "seconds processes" once a second until killed.
sample_procs() {
    local t0=$SECONDS
    while kill -0 "$1" 2>/dev/null; do echo "$((SECONDS - t0)) $(nprocs "$1")"; sleep 1; done >"$2"
}

# bench OUT NAME=URL...: anchors/bench.py rounds; on failure OUT gets a "FAILED" line and the logs.
bench() {
    local out=$1; shift
    "$ANCHORS/bench.py" -d "$D" -r "$R" -c "$C" "$@" >"$out" 2>"$out.err" && return 0
    log "bench.py failed for ${*%%=*}: $(tail -1 "$out.err")"
    echo "FAILED bench.py: $(tail -1 "$out.err")" >>"$out"
    return 1
}

for page in $PAGES; do
    P=$TMP/$page; mkdir -p "$P"
    # ---- 1. fixed pools, interleaved rounds
    targets=(); i=0; : >"$P/fixed.meta"
    for m in $LIMITS; do
        server_start "$P/m$m" "$m" $((PORT + i))
        targets+=("m$m=http://127.0.0.1:$((PORT + i))/$page"); i=$((i + 1))
    done
    for t in "${targets[@]}"; do check_page "${t#*=}" "$page"; done
    log "$page: warming up the fixed pools, ${WARM} s of wrk -c64 each"
    i=0
    for t in "${targets[@]}"; do
        w=$(warm_up "$WARM" "${t#*=}")
        echo "${t%%=*} $w procs $(nprocs "${PIDS[$i]}")" | tee -a "$P/warm.txt" >&2
        i=$((i + 1))
    done
    for m in $LIMITS; do lines "$P/m$m/error.log" >"$P/m$m/mark"; done
    log "$page: bench.py -d $D -r $R -c $C over ${#targets[@]} fixed pools" \
        "(about $((D * R * ${#targets[@]})) s)"
    echo "fixed rounds start: $(cut -d' ' -f1-3 /proc/loadavg)" >"$P/load.txt"
    bench "$P/fixed.txt" "${targets[@]}"
    echo "fixed rounds end:   $(cut -d' ' -f1-3 /proc/loadavg)" >>"$P/load.txt"
    cat "$P/fixed.txt"
    i=0
    for m in $LIMITS; do     # name procs-after log-lines-in-rounds warn-lines alive
        d=$P/m$m; tail -n +"$(($(cat "$d/mark") + 1))" "$d/error.log" >"$d/run.log" 2>/dev/null
        alive=yes; kill -0 "${PIDS[$i]}" 2>/dev/null || alive=no
        echo "m$m $(nprocs "${PIDS[$i]}") $(lines "$d/run.log") $(warn_lines "$d/run.log") $alive" \
            >>"$P/fixed.meta"
        i=$((i + 1))
    done
    stop_all

    # ---- 2. the automatic pool, alone
    d=$P/auto; url=http://127.0.0.1:$((PORT + 7))/$page
    server_start "$d" 0 $((PORT + 7))
    check_page "$url" "$page"
    sample_procs "${PIDS[0]}" "$d/procs.txt" & SAMPLER=$!
    log "$page: auto pool settle warm-up, ${AUTO_WARM} s of wrk -c64"
    w=$(warm_up "$AUTO_WARM" "$url")
    echo "auto $w procs $(nprocs "${PIDS[0]}")" | tee -a "$P/warm.txt" >&2
    lines "$d/error.log" >"$d/mark"; head -n "$(cat "$d/mark")" "$d/error.log" >"$d/settle.log"
    rounds_t0=$(($(lines "$d/procs.txt")))   # samples before the rounds
    ctl_status "$d/run/control.sock" "$d/ctl-settle.json"
    log "$page: bench.py -d $D -r $R -c $C, auto pool (about $((D * R)) s)"
    echo "auto rounds start:  $(cut -d' ' -f1-3 /proc/loadavg)" >>"$P/load.txt"
    bench "$P/auto.txt" "auto=$url"
    echo "auto rounds end:    $(cut -d' ' -f1-3 /proc/loadavg)" >>"$P/load.txt"
    cat "$P/auto.txt"
    ctl_status "$d/run/control.sock" "$d/ctl-end.json"
    kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=
    tail -n +"$(($(cat "$d/mark") + 1))" "$d/error.log" >"$d/run.log"
    alive=yes; kill -0 "${PIDS[0]}" 2>/dev/null || alive=no
    echo "auto $(nprocs "${PIDS[0]}") $(lines "$d/run.log") $(warn_lines "$d/run.log") $alive" \
        >"$P/auto.meta"
    {   # what the controller settled on
        echo "log_settle $(log_limit "$d/settle.log")"
        echo "log_end $(log_limit "$d/error.log")"
        echo "log_changes_settle $(grep -cE "$CHANGE_RE" "$d/settle.log")"
        echo "log_changes_rounds $(grep -cE "$CHANGE_RE" "$d/run.log")"
        echo "ctl_settle $(ctl_limit "$d/ctl-settle.json")"
        echo "ctl_end $(ctl_limit "$d/ctl-end.json")"
        echo "procs_warm $(head -n "$rounds_t0" "$d/procs.txt" |
            awk '{if ($2 > m) m = $2; l = $2} END {if (NR) printf "%d %d", l, m}')"
        echo "procs_rounds $(tail -n +"$((rounds_t0 + 1))" "$d/procs.txt" | awk '{print $2}' |
            sort -n | awk '{a[NR] = $1} END {if (NR) printf "%d %d %d", a[1], a[int((NR + 1) / 2)], a[NR]}')"
    } >"$P/auto.limit"
    stop_all
done

# ---- the section: one table per page, then the ratios against the targets
{
    echo "## Automatic pool sizing: maxInstances = 0 against fixed pools (bench/autotune.sh)"
    echo
    echo "$INFO · load average at end $(cut -d' ' -f1-3 /proc/loadavg)  "
    echo "GET /cpu.php (~5 ms CPU) and /io.php (usleep 20 ms) from anchors/www on php-cgi, wrk -t1" \
         "-c$C through anchors/bench.py -d $D -r $R: median req/s and median p99 of $R rounds of" \
         "${D} s; non-2xx summed over the rounds. One fresh fcgihost per configuration, accessLog off," \
         "one application: PHP_FCGI_MAX_REQUESTS=0, instanceMaxRequests 0, queueLength $QUEUE," \
         "idleTimeout 0. Fixed pools (maxInstances $LIMITS) run side by side, ${WARM} s of wrk -c64" \
         "each as warm-up, then rounds interleaved across them. The automatic pool (maxInstances 0)" \
         "runs alone afterwards: a settle warm-up of ${AUTO_WARM} s of the same load, then its $R" \
         "rounds back to back. Targets (SPEC 4.2): auto ≥ 0.90 × the best fixed pool on both pages," \
         "io.php auto ≥ 10 × fixed 4, and on cpu.php a limit ≤ max(8, 4 × CPUs) = $CPU_CAP."
    echo
    python3 - "$TMP" "$PAGES" "$CPU_CAP" <<'EOF'
import os, re, sys
tmp, pages, cpu_cap = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
line = re.compile(r"^(\S+)\s+(\d+) req/s\s+p99\s+([\d.na]+) ms.*non2xx (\d+)\s*(.*)$")
def rows(path):
    return [m.groups() for m in map(line.match, open(path)) if m]
def failed(path):
    return next((l.strip() for l in open(path) if l.startswith("FAILED")), None)
def meta(path):
    return {f[0]: f[1:] for f in (l.split() for l in open(path)) if f}
def kv(path):
    return {l.split(" ", 1)[0]: l.split(" ", 1)[1].strip() if " " in l.strip() else ""
            for l in open(path) if l.strip()}
def mark(ok):
    return "**pass**" if ok else "**FAIL**"
summary = []
for page in pages:
    P = f"{tmp}/{page}"
    fixed, auto = rows(f"{P}/fixed.txt"), rows(f"{P}/auto.txt")
    fm, am, lim = meta(f"{P}/fixed.meta"), meta(f"{P}/auto.meta"), kv(f"{P}/auto.limit")
    rps = {r[0]: float(r[1]) for r in fixed + auto}
    fixed_rps = {n: v for n, v in rps.items() if n != "auto"}
    best = max(fixed_rps, key=fixed_rps.get) if fixed_rps else None
    print(f"**{page}**\n")
    print("| config | req/s | p99 ms | non-2xx | socket errors | ÷ best fixed | php-cgi after | "
          "log lines (≥ warn) in rounds |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for name, r, p99, bad, sock in fixed + auto:
        m = fm.get(name) or am.get(name) or ["?", "?", "?", "?"]
        label = "maxInstances 0 (auto)" if name == "auto" else f"maxInstances {name[1:]}"
        dead = "" if m[3] == "yes" else " (server exited!)"
        ratio = f"{float(r) / fixed_rps[best]:.2f}" if best else "-"
        print(f"| {label}{dead} | {float(r):.0f} | {p99} | {bad} | {sock.strip() or '-'} | {ratio} "
              f"| {m[0]} | {m[1]} ({m[2]}) |")
    for f in ("fixed.txt", "auto.txt"):
        if failed(f"{P}/{f}"):
            print(f"| {'fixed pools' if f == 'fixed.txt' else 'auto'}: {failed(f'{P}/{f}')} "
                  "| | | | | | | |")
    print()
    # the limit the automatic pool settled on
    def limit_text():
        parts = []
        if lim.get("log_end"):
            parts.append(f"error log: {lim.get('log_settle') or '(none yet)'} after the settle "
                         f"warm-up ({lim.get('log_changes_settle')} changes), "
                         f"{lim['log_end']} at the end ({lim.get('log_changes_rounds')} changes "
                         "during the rounds)")
        else:
            parts.append("error log: no `php: maxInstances (auto) A -> B` line")
        if lim.get("ctl_end") or lim.get("ctl_settle"):
            parts.append(f"ctl status: {lim.get('ctl_settle') or '-'} after settle, "
                         f"{lim.get('ctl_end') or '-'} at the end")
        else:
            parts.append("ctl status --json: not available")
        pr = lim.get("procs_rounds", "").split()
        if len(pr) == 3:
            pw = lim.get("procs_warm", "").split() or ["-", "-"]
            parts.append(f"php-cgi processes (sampled every second): at the end of the settle "
                         f"warm-up {pw[0]} (most {pw[1]}), during the rounds min {pr[0]} / "
                         f"median {pr[1]} / max {pr[2]}")
        return "; ".join(parts)
    settled, source = lim.get("log_end"), "its last `maxInstances (auto) A -> B` log line"
    if not settled and lim.get("ctl_end"):
        settled, source = lim["ctl_end"].split(" ")[0], "ctl status at the end"
    if not settled and lim.get("procs_rounds"):
        settled, source = lim["procs_rounds"].split()[-1], \
            "no limit logged or reported: the most php-cgi processes it ran during the rounds"
    out = [f"- {page}: "]
    if "auto" in rps and best:
        a = rps["auto"] / fixed_rps[best]
        out[0] += (f"auto / best fixed = **{a:.2f}** (best fixed = maxInstances {best[1:]}, "
                   f"{fixed_rps[best]:.0f} req/s; auto {rps['auto']:.0f} req/s) — target ≥ 0.90: "
                   f"{mark(a >= 0.90)}")
    else:
        out[0] += "auto / best fixed: not measured (a run failed, see the table)"
    if page == "io.php":
        if "auto" in rps and "m4" in rps:
            a4 = rps["auto"] / rps["m4"]
            out.append(f"  - io.php: auto / fixed 4 = **{a4:.2f}** — target ≥ 10: {mark(a4 >= 10)}")
        else:
            out.append("  - io.php: auto / fixed 4: not measured")
    out.append(f"  - limit auto settled on: **{settled or '?'}** ({source}) — {limit_text()}")
    if page == "cpu.php" and settled and settled.isdigit():
        out.append(f"  - cpu.php: limit {settled} ≤ {cpu_cap}: {mark(int(settled) <= cpu_cap)}")
    summary += out
print("\n".join(summary))
EOF
    echo
    echo '<details><summary>raw bench.py output, warm-ups, the controller'"'"'s log lines, ctl status, error-log warnings</summary>'
    echo
    for page in $PAGES; do
        P=$TMP/$page
        echo '```'; echo "$page: fixed pools"; cat "$P/fixed.txt"; echo "$page: auto"; cat "$P/auto.txt"
        echo "warm-up: config url requests non-2xx procs N"; cat "$P/warm.txt"
        echo "load average (1 5 15 min) around the rounds, to spot other work on the machine:"
        cat "$P/load.txt"
        echo "auto: php-cgi processes once a second (s procs), settle warm-up then rounds:"
        awk '{printf "%s%s:%s", (NR > 1 ? " " : ""), $1, $2} END {print ""}' "$P/auto/procs.txt"
        echo "auto: the controller's changes in the error log (the first 40):"
        grep -E "$CHANGE_RE" "$P/auto/error.log" | head -40
        for j in settle end; do
            echo "auto: ctl status php --json after $j: $(head -c 1500 "$P/auto/ctl-$j.json" | tr '\n' ' ' |
                grep . || echo '(no output: command not available)')"
        done
        for d in "$P"/m* "$P/auto"; do
            [ "$(warn_lines "$d/run.log")" -gt 0 ] || continue
            echo "$(basename "$d"): the first 10 error-log lines at warn or above during the rounds"
            grep -E '\[(warn|error|crit)' "$d/run.log" | head -10
        done
        echo '```'
    done
    echo '</details>'
} >"$TMP/section.md"
cat "$TMP/section.md"
results_section autotune <"$TMP/section.md"
