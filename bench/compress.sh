#!/bin/bash
# Compression (issue 12, Done means): a 100 KiB HTML page with gzip, fcgihost against nginx's
# default `gzip on` (gzip_comp_level 1). For each server, the page as a static file (/page.html)
# and from PHP (/page.php, readfile() of the same page; php-cgi for fcgihost, the anchors' php-fpm
# for nginx), each with and without Accept-Encoding: gzip:
#   - bytes on the wire: the body (and head) of one response, checked to decode to the page;
#   - CPU per byte: utime + stime of the server's own processes (/proc/PID/stat: fcgihost's
#     process with its threads; nginx's master and worker; not the PHP processes) over a wrk run,
#     divided by the page bytes served (requests x 102400); the gzip run minus the identity run
#     is the cost of compressing.
# Interleaved rounds (every server, page and coding once per round); medians of R rounds.
# Writes the "compression" section of bench/RESULTS.md.
#
#   bench/compress.sh               # needs build/fcgihost (make build) and nginx; run as root
#   D=5 R=3 C=16 PORT=8090 NGINX_PORT=8091 bench/compress.sh
#
# nginx here is a second instance of the anchor's configuration (anchors/start.sh: 1 worker,
# sendfile, keep-alive, php-fpm over a kept-alive unix socket) with `gzip on;` and mime.types
# (the anchor has neither: without mime.types its .html files are text/plain, which gzip_types'
# default, text/html, leaves alone). The page is built from the repository's documentation
# (docs/guide.md, docs/design.md, docs/fcgihost.conf.5.scd as HTML paragraphs), cut at 102400 bytes.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

D=${D:-5}; R=${R:-3}; C=${C:-16}; PORT=${PORT:-8090}; NGINX_PORT=${NGINX_PORT:-8091}
N=4     # PHP processes, as anchors/start.sh gives every anchor
require_fcgihost
require_tools nginx php-cgi

INFO=$(machine_info)
TMP=$(mktemp -d /tmp/bench-compress.XXXXXX)
NGINX_PID=
nginx_stop() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
    NGINX_PID=
}
cleanup() { fcgihost_stop; nginx_stop; anchors_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

anchors_start     # for php-fpm ($RUN/fpm/php.sock); the anchors themselves stay idle
[ -S "$RUN/fpm/php.sock" ] || die "the anchors' php-fpm socket $RUN/fpm/php.sock is missing"

# --- the page
cp -r "$ANCHORS/www" "$TMP/www"
python3 - "$TMP/www/page.html" "$TOP/docs/guide.md" "$TOP/docs/design.md" "$TOP/docs/fcgihost.conf.5.scd" <<'EOF'
import html, sys
out, srcs = sys.argv[1], sys.argv[2:]
SIZE = 102400
tail = b"\n</main>\n</body>\n</html>\n"
parts = [b"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         b"<title>fcgihost documentation</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n"
         b"</head>\n<body>\n<nav><a href=\"/\">fcgihost</a> <a href=\"/guide\">guide</a> "
         b"<a href=\"/design\">design</a> <a href=\"/conf\">fcgihost.conf(5)</a></nav>\n<main>\n"]
for src in srcs:
    for block in open(src, encoding="utf-8").read().split("\n\n"):
        block = block.strip()
        if not block:
            continue
        if block.startswith("#"):
            level = min(len(block) - len(block.lstrip("#")), 4) + 1
            text = html.escape(block.lstrip("#").strip())
            parts.append(f"<h{level} id=\"s{len(parts)}\">{text}</h{level}>\n".encode())
        elif block.startswith(("    ", "```", "\t")):
            parts.append(f"<pre><code>{html.escape(block)}</code></pre>\n".encode())
        else:
            parts.append(f"<p class=\"text\">{html.escape(' '.join(block.split()))}</p>\n".encode())
page = b"".join(parts)
if len(page) < SIZE:
    sys.exit("the documentation gives only %d bytes of page" % len(page))
page = page[:SIZE - len(tail)] + tail
assert len(page) == SIZE
open(out, "wb").write(page)
EOF
[ -s "$TMP/www/page.html" ] || die "could not build the page"
printf '<?php readfile(__DIR__ . "/page.html");\n' >"$TMP/www/page.php"
chmod -R a+rX "$TMP"

# --- nginx with gzip on (defaults otherwise)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<C
user root;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  gzip on;
  upstream php { server unix:$RUN/fpm/php.sock; keepalive 8; }
  server {
    listen 127.0.0.1:$NGINX_PORT reuseport;
    root $TMP/www;
    location ~ \.php\$ { include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name; fastcgi_keep_conn on; fastcgi_pass php; }
  }
}
C
port_free "$NGINX_PORT" || die "port $NGINX_PORT is busy; set NGINX_PORT=..."
nginx -c "$TMP/nginx/nginx.conf" || die "nginx did not start"
wait_http "http://127.0.0.1:$NGINX_PORT/page.html" 10 || die "nginx does not serve /page.html"
NGINX_PID=$(cat "$TMP/nginx/nginx.pid")

# --- fcgihost (defaults: compress = gzip br, compressMinBytes = 512)
fcgihost_start "$TMP" "$PORT" "
[fastcgi:php]
fullPath = $(command -v php-cgi)
env = PHP_FCGI_MAX_REQUESTS=0
maxInstances = $N
instanceMaxRequests = 0

[handler:php]
path = *.php
scriptProcessor = php"

log "measuring: $R rounds x 2 servers x 2 pages x 2 codings x ${D} s of wrk -c$C (about $((R * 8 * D)) s)"
python3 - "$TMP" "$D" "$R" "$C" "$TMP/www/page.html" \
    "fcgihost=$PORT=$FCGIHOST_PID" "nginx=$NGINX_PORT=$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')" \
    >"$TMP/table.md" <<'EOF' || die "the measurement failed"
import gzip, os, re, statistics, subprocess, sys

tmp, D, R, C, page_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
servers = []
for spec in sys.argv[6:]:
    name, port, pids = spec.split("=", 2)
    servers.append((name, int(port), [int(p) for p in pids.split()]))
page = open(page_path, "rb").read()
TICK = os.sysconf("SC_CLK_TCK")
PATHS = ("/page.html", "/page.php")
CODINGS = ("gzip", "identity")


def cpu_ticks(pids):
    t = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        t += int(fields[11]) + int(fields[12])      # utime, stime (fields 14 and 15)
    return t


def one_response(port, path, coding):
    """(head bytes, body bytes, Content-Encoding) of one response, its body checked."""
    hdr = os.path.join(tmp, "hdr")
    body = os.path.join(tmp, "body")
    cmd = ["curl", "-s", "-o", body, "-D", hdr, "-w", "%{size_header} %{size_download} %{http_code}",
           f"http://127.0.0.1:{port}{path}"]
    if coding == "gzip":
        cmd[1:1] = ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.split()
    hsize, bsize, code = int(out[0]), int(out[1]), out[2]
    assert code == "200", f"{port}{path}: status {code}"
    ce = re.search(r"(?im)^content-encoding:\s*(\S+)", open(hdr).read())
    ce = ce.group(1).lower() if ce else None
    data = open(body, "rb").read()
    got = gzip.decompress(data) if ce == "gzip" else data
    assert got == page, f"{port}{path} ({coding}): the body does not decode to the page"
    return hsize, bsize, ce


def wrk(port, path, coding):
    cmd = ["wrk", "-t1", f"-c{C}", f"-d{D}s", f"http://127.0.0.1:{port}{path}"]
    if coding == "gzip":
        cmd[1:1] = ["-H", "Accept-Encoding: gzip"]
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def unit(v, u):
    return float(v) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[u]


wire = {}
for name, port, _ in servers:
    for path in PATHS:
        for coding in CODINGS:
            wire[name, path, coding] = one_response(port, path, coding)
for name, port, _ in servers:          # warm-up: PHP processes spawned, caches filled
    for path in PATHS:
        wrk_out = subprocess.run(["wrk", "-t1", f"-c{C}", "-d1s", f"http://127.0.0.1:{port}{path}"],
                                 capture_output=True, text=True).stdout

runs = {k: [] for k in wire}
raw = []
for rnd in range(R):
    for path in PATHS:
        for coding in CODINGS:
            for name, port, pids in servers:
                t0 = cpu_ticks(pids)
                out = wrk(port, path, coding)
                t1 = cpu_ticks(pids)
                reqs = int(re.search(r"(\d+) requests in", out).group(1))
                rd = re.search(r"requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB) read", out)
                bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                sock = re.search(r"Socket errors: (.*)", out)
                cpu = (t1 - t0) / TICK
                runs[name, path, coding].append(dict(
                    reqs=reqs, rps=reqs / D, cpu=cpu,
                    ns_per_byte=cpu * 1e9 / (reqs * len(page)) if reqs else float("nan"),
                    wire_per_resp=unit(*rd.groups()) / reqs if reqs else float("nan"),
                    bad=int(bad.group(1)) if bad else 0, sock=sock.group(1) if sock else ""))
                raw.append(f"round {rnd + 1} {name:8s} {path:10s} {coding:8s} {reqs:7d} requests "
                           f"cpu {cpu:6.2f} s  non2xx {runs[name, path, coding][-1]['bad']} "
                           f"{runs[name, path, coding][-1]['sock']}")


def med(k, f):
    return statistics.median(r[f] for r in runs[k])


names = [s[0] for s in servers]
print("| page | server | Accept-Encoding | Content-Encoding | body bytes | head bytes | ratio | req/s | server CPU ns per page byte | compression's cost ns/byte (gzip − identity) |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
for path in PATHS:
    for name in names:
        g, i = (name, path, "gzip"), (name, path, "identity")
        for coding in CODINGS:
            k = (name, path, coding)
            h, b, ce = wire[k]
            cost = med(g, "ns_per_byte") - med(i, "ns_per_byte")
            print(f"| {path} | {name} | {'gzip' if coding == 'gzip' else '-'} | {ce or '-'} "
                  f"| {b} | {h} | {b / len(page):.3f} | {med(k, 'rps'):.0f} | {med(k, 'ns_per_byte'):.2f} "
                  f"| {f'{cost:.2f}' if coding == 'gzip' else ''} |")
print()
for path in PATHS:
    f, n = ("fcgihost", path, "gzip"), ("nginx", path, "gzip")
    fb, nb = wire[f][1], wire[n][1]
    fc, nc = med(f, "ns_per_byte"), med(n, "ns_per_byte")
    fi, ni = med(("fcgihost", path, "identity"), "ns_per_byte"), med(("nginx", path, "identity"), "ns_per_byte")
    size_ok = "**yes**" if fb <= nb else "**no**"
    cpu_ok = "**yes**" if fc <= nc else "**no**"
    print(f"- {path} with gzip: fcgihost {fb} bytes ({wire[f][2] or 'not coded'}), nginx {nb} "
          f"({wire[n][2] or 'not coded'}): as small or smaller: {size_ok}; server CPU per page byte "
          f"fcgihost {fc:.2f} ns, nginx {nc:.2f} ns: no more: {cpu_ok} (compressing alone: fcgihost "
          f"{fc - fi:.2f} ns/byte, nginx {nc - ni:.2f} ns/byte)")
bad = sum(r["bad"] for v in runs.values() for r in v)
print()
print(f"Non-2xx responses over all runs: {bad}.")
open(os.path.join(tmp, "raw.txt"), "w").write("\n".join(raw) + "\n")
EOF

cat "$TMP/table.md" >&2
{
    echo "## Compression: a 100 KiB HTML page with gzip, fcgihost and nginx \`gzip on\` (bench/compress.sh)"
    echo
    echo "$INFO  "
    echo "wrk -t1 -c$C, ${D} s per run, median of $R interleaved rounds. fcgihost: defaults (gzip level 1," \
         "\`compress = gzip br\`), php-cgi × $N; nginx: the anchor's configuration with \`gzip on\`" \
         "(level 1) and mime.types, 1 worker, the anchors' php-fpm × $N. CPU: utime + stime of the" \
         "server processes only (not PHP's) from /proc/PID/stat over each run, per byte of page served" \
         "(requests × 102400). The page: the repository's documentation as HTML, 102400 bytes;" \
         "/page.php is \`readfile()\` of it. Body bytes: one response, decoded and checked against the page."
    echo
    cat "$TMP/table.md"
    echo
    echo '<details><summary>raw runs</summary>'
    echo
    echo '```'
    cat "$TMP/raw.txt"
    echo '```'
    echo '</details>'
} | results_section compression
