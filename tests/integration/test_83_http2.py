"""HTTP/2 (SPEC §7 "HTTP/2", issue 12): h2 by ALPN on `tls` listeners (h2 before http/1.1;
`http2 = off` offers only http/1.1), HTTP/2 with prior knowledge on `h2c` listeners next to
HTTP/1.1 on the same port (an `Upgrade: h2c` request is answered in HTTP/1.1), with real clients
(curl --http2 / --http2-prior-knowledge, nghttp) and with the HTTP/2 client of h2_hostile.py,
which also checks every frame the server sends (flow-control windows, connection-specific fields).

Every request feature of §3–§4 over HTTP/2: static files (Range, conditionals: 206, 304, 416),
HEAD, redirects, error pages, the status page, FastCGI buffered and streamed (php-cgi and
fcgi_app), request bodies with and without content-length streamed to the application (sha256
compared), expect: 100-continue, request trailers, compression, the access log ("HTTP/2.0"),
SERVER_PROTOCOL and the cookie crumbs joined (RFC 9113 §8.2.3); 421 for an unknown host over TLS.

Then what HTTP/2 adds: flow control (the connection's window shared by streams, a stream's
window taken below zero by SETTINGS_INITIAL_WINDOW_SIZE, padding counted); 100 concurrent streams
on one connection, one of them a 64 MiB streamed FastCGI answer read slowly (the application is
held back by the stream's window, the server's VmRSS stays bounded); 5000 streams on one
connection; http2MaxStreams (streams past it refused, the connection usable); a client resetting
a stream at every phase, at random points while answers flow, or losing its connection with
streams at every phase (the FastCGI requests cleaned up as for a client that left, the other
streams of the connection going on); malformed requests as stream errors; keepAliveTimeout,
bodyTimeout and sendTimeout per stream; the floods that close the connection (rapid reset,
CONTINUATION, PING, SETTINGS, empty DATA; an HPACK bomb: an error for the stream or the
connection closed, never memory growth) while other clients are served; GOAWAY on a graceful
stop (streams in flight finish; stalled ones end at shutdownTimeout) and a reload with streams
in flight (none fails); PROXY headers before h2c and TLS; the HTTP/2 counters of the JSON status
and the Prometheus page.

Waits are conditions with deadlines (streams ending, log lines, /proc values settling); a flood
must end the connection (GOAWAY or close) within FLOOD_DEADLINE. VmRSS bounds are asserted on
release builds only (under ASan the quarantine keeps freed memory mapped: LeakSanitizer checks
at teardown instead).
"""
import fcntl
import gzip
import hashlib
import itertools
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import subprocess
import termios
import threading
import time

import brotli
import pytest

import h2_hostile as h2
import helpers
import hostile
from conftest import free_ports
from helpers import make_cert

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.environ.get("FCGIHOST_APPS", os.path.join(ROOT, "build", "tests", "apps"))
FCGI_APP = os.path.join(APPS, "fcgi_app")
PHP_CGI = "/usr/bin/php-cgi"

T = 10.0                              # a response, a log line
FLOOD_DEADLINE = 5.0                  # a flood's connection ends within this (from its start)
CLOSE_DEADLINE = 5.0                  # ... and after a GOAWAY, the connection closes within this
RSS_GROWTH_KB = 32 << 10              # the server's VmRSS peak over its baseline (release builds)
APP_AHEAD = 16 << 20                  # what a held-back application may have written past the client
PATTERN = b"0123456789abcdef"         # fcgi_app's big= bytes
BIG = 64 << 20                        # the slow streamed answer


def prose(n, seed):
    rnd = random.Random(seed)
    words = "stream frame window header table flow control server client request answer".split()
    out = []
    size = 0
    while size < n:
        w = rnd.choice(words) + (" " if rnd.random() > 0.1 else "\n")
        out.append(w)
        size += len(w)
    return "".join(out).encode()[:n]


SMALL = prose(20000, 1)                                       # text: compressed on request
A_TXT = b"hello over h2\n"
MID = bytes(random.Random(2).getrandbits(8) for _ in range(1 << 20))   # 1 MiB, not compressible
ERROR_PAGE = b"<h1>custom not found page</h1>\n"

PHP_HELLO = b"<?php echo \"hello from php\\n\";\n"
PHP_SHA = b"""<?php
header('Content-Type: application/json');
$in = file_get_contents('php://input');
echo json_encode(['len' => strlen($in), 'sha256' => hash('sha256', $in),
  'cl' => $_SERVER['CONTENT_LENGTH'] ?? null, 'method' => $_SERVER['REQUEST_METHOD'],
  'proto' => $_SERVER['SERVER_PROTOCOL'], 'https' => $_SERVER['HTTPS'] ?? null]);
"""
PHP_HOP = b"""<?php
header('Connection: close');
header('Keep-Alive: timeout=5');
header('Upgrade: h2c');
header('Proxy-Connection: keep-alive');
header('X-Kept: yes');
echo "hop\\n";
"""
# Streamed (responseBufferLimit = 0): "first PID" flushed, then it waits for go/NAME (created by
# the test; 20 s at most), then n lines.
PHP_WAIT = b"""<?php
while (ob_get_level()) ob_end_flush();
echo "first ", getmypid(), "\\n";
flush();
$go = __DIR__ . '/go/' . basename($_GET['go'] ?? 'none');
$deadline = microtime(true) + 20;
while (!file_exists($go)) {
    if (microtime(true) > $deadline) { echo "no go file\\n"; exit; }
    usleep(2000);
}
echo str_repeat("the rest of the answer\\n", (int)($_GET['n'] ?? 100));
"""

FILES = {
    "a.txt": A_TXT,
    "small.txt": SMALL,
    "mid.bin": MID,
    "dir/index.html": b"<p>dir</p>\n",
    "errors/404.html": ERROR_PAGE,
    ".hidden": b"secret\n",
    "hello.php": PHP_HELLO,
    "sha.php": PHP_SHA,
    "hop.php": PHP_HOP,
    "bighead.php": b"<?php header('X-Big: ' . str_repeat('a', (int)$_GET['n']));\n"
                   b"header('X-Two: ' . str_repeat('b', (int)$_GET['n'])); echo 'ok';\n",
    "manyhead.php": b"<?php for ($i = 0; $i < 125; $i++) header(\"X-H$i: v$i\"); echo 'ok';\n",
    "wait.sphp": PHP_WAIT,
    "go/.keep": b"",
    "t.fcgi": b"", "s.sfcgi": b"", "b.bfcgi": b"",
}

APP_INI = f"""[fastcgi:php]
fullPath = {PHP_CGI}
maxInstances = 2

[fastcgi:app]
fullPath = {FCGI_APP}
maxInstances = 2

[fastcgi:big]
fullPath = {FCGI_APP}
maxInstances = 1

[handler:sphp]
path = *.sphp
scriptProcessor = php
responseBufferLimit = 0

[handler:php]
path = *.php
scriptProcessor = php

[handler:sfcgi]
path = *.sfcgi
scriptProcessor = app
responseBufferLimit = 0

[handler:fcgi]
path = *.fcgi
scriptProcessor = app

[handler:bfcgi]
path = *.bfcgi
scriptProcessor = big
responseBufferLimit = 0
"""


# ---- servers and clients -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("h2certs"))
    os.chmod(d, 0o755)
    return make_cert(d, "a", "localhost", ["localhost", "a.test"], key_type="ec")


def h2_server(factory, certs, server_opts=None, extra="", files=None, **kw):
    """A server with a TLS listener (h2 by ALPN), an h2c listener and a plain HTTP/1.1 one;
    srv.port is the plain one (srv.get() and the status page speak HTTP/1.1 there)."""
    tls_port, h2c_port, plain_port = free_ports(3)
    opts = {"tlsCertificate": certs[0], "tlsKey": certs[1], "errorPage": "404 /errors/404.html"}
    opts.update(server_opts or {})
    fs = dict(FILES)
    fs.update(files or {})
    srv = factory(listen=["127.0.0.1:%d tls" % tls_port, "127.0.0.1:%d h2c" % h2c_port,
                          "127.0.0.1:%d" % plain_port],
                  server_opts=opts, files=fs, extra=APP_INI + extra, **kw)
    srv.tls_port, srv.h2c_port, srv.plain_port = tls_port, h2c_port, plain_port
    srv.port = plain_port
    return srv


@pytest.fixture(scope="module")
def srv(module_server_factory, certs):
    return h2_server(module_server_factory, certs)


def open_h2(srv, transport="tls", **kw):
    if transport == "tls":
        return h2.H2Conn.open(srv.tls_port, tls=True, **kw)
    return h2.H2Conn.open(srv.h2c_port, tls=False, **kw)


def clean(c):
    """No frame the server sent broke the protocol (windows, fields, header blocks)."""
    v = c.all_violations()
    assert v == [], "the server broke HTTP/2: %s" % v[:10]


def ok(st, status=200):
    assert st.reset is None and not st.refused_by_goaway, st.describe()
    assert st.ended, st.describe()
    assert st.status == status, "%s %r" % (st.describe(), st.body[:300])
    return st


def is_pattern_at(data, offset):
    """Are `data` fcgi_app's big= bytes at `offset`?"""
    start = offset % 16
    need = start + len(data)
    return data == (PATTERN * (need // 16 + 1))[start:need]


class PatternSink:
    """Checks a streamed big= answer piece by piece without keeping it."""

    def __init__(self):
        self.n = 0
        self.bad_at = None

    def feed(self, data):
        if self.bad_at is None and not is_pattern_at(data, self.n):
            self.bad_at = self.n
        self.n += len(data)


def go_name(_c=itertools.count()):
    return "go%d-%d" % (os.getpid(), next(_c))


def release(srv, name):
    with open(os.path.join(srv.root, "go", name), "wb"):
        pass


def status(srv):
    r = srv.get("/fcgihost-status")
    assert r.status == 200, r
    return json.loads(r.body)


def pool(st, name):
    return next(p for p in st["pools"] if p["name"] == name)


def check_quiet(srv, what, max_conns=1):
    """Within a deadline: no connection but the status page's own (and `max_conns - 1` more),
    no FastCGI process busy or queued for, at most maxInstances fcgi_app/php-cgi children."""
    last = {}

    def quiet():
        st = status(srv)
        last["server"] = st["server"]["connections"]
        good = st["server"]["connections"] <= max_conns
        for p in st["pools"]:
            procs = p["processes"]
            last[p["name"]] = (procs.get("busy"), p["queue"]["queued"], p["failed"], procs.get("total"))
            good = good and procs.get("busy", 0) == 0 and p["queue"]["queued"] == 0 and not p["failed"]
        kids = hostile.children(srv.pid, "fcgi_app")
        last["fcgi_app children"] = len(kids)
        return good and len(kids) <= 3          # app: 2, big: 1
    try:
        helpers.wait_until(quiet, 15, interval=0.05, what="a quiet server")
    except helpers.Timeout:
        assert srv.running(), "the server died after %s" % what
        raise AssertionError("15s after %s the server is not quiet: %s" % (what, last))


def wchar(pid):
    """Bytes a process has written (/proc/PID/io)."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    raise KeyError("wchar")


def settle(read, c=None, quiet=0.5, timeout=T, what="a value to settle"):
    """Wait until read() has not changed for `quiet` seconds (pumping connection c meanwhile);
    returns the value."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while True:
        if c is not None:
            c.pump(0.05)
        else:
            time.sleep(0.05)
        v, now = read(), time.monotonic()
        if v != last:
            last, since = v, now
        elif now - since >= quiet:
            return v
        if now > deadline:
            raise helpers.Timeout("%s: still changing after %.0fs (last %r)" % (what, timeout, v))


class RssWatch:
    """Samples a process's VmRSS every 20 ms from a thread; .peak is the largest seen."""

    def __init__(self, pid):
        self.pid = pid
        self.base = hostile.status_kb(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, hostile.status_kb(self.pid))
            except (OSError, KeyError):
                return
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        self._t.join(2)
        return self.peak - self.base


def sanitized(srv):
    return hostile.sanitized(srv.pid, srv.proc.args[0])


def curl(*args, timeout=30):
    return subprocess.run(["curl", "-s", "--max-time", "20"] + list(args), capture_output=True,
                          timeout=timeout)


def wait_mark(srv, mark):
    """fcgi_app's "mark" line: the request is inside its process; returns the process id."""
    m = srv.wait_for_log(r"fcgi_app (\d+) mark %s$" % re.escape(mark), timeout=T)
    return int(m.group(1))


# ==== negotiation and real clients ===========================================================

def test_alpn_offers_h2_then_http11(srv):
    for alpn, want in ((("h2", "http/1.1"), "h2"), (("h2",), "h2"), (("http/1.1",), "http/1.1"),
                       (("http/1.1", "h2"), None)):
        sock, got = h2.connect(srv.tls_port, alpn=alpn)
        sock.close()
        if want is None:
            assert got in ("h2", "http/1.1"), (alpn, got)
        else:
            assert got == want, (alpn, got)
    # h2 over TLS 1.2 (RFC 9113 §9.2: the ciphers offered by default qualify)
    ctx = h2.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=T)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    assert sock.version() == "TLSv1.2" and sock.selected_alpn_protocol() == "h2"
    with h2.H2Conn(sock, alpn="h2") as c:
        assert ok(c.get("/a.txt")).body == A_TXT
        assert c.goaway is None
        clean(c)
    # HTTP/1.1 on the TLS listener: chosen by ALPN, and without ALPN at all.
    for alpn in (("http/1.1",), None):
        sock, _ = h2.connect(srv.tls_port, alpn=alpn)
        with helpers.RawConn(sock, T) as rc:
            res = helpers.exchange(rc, helpers.request("GET", "/a.txt", [("Connection", "close")],
                                                       host="localhost"))
        assert res.status == 200 and res.first.body == A_TXT and res.first.version == "HTTP/1.1", res


def test_http2_off_offers_only_http11(start_server, certs):
    srv = h2_server(start_server, certs, server_opts={"http2": "off"})
    sock, got = h2.connect(srv.tls_port, alpn=("h2", "http/1.1"))
    sock.close()
    assert got == "http/1.1"
    try:     # no protocol in common: no ALPN in the answer, or the no_application_protocol alert
        sock, got = h2.connect(srv.tls_port, alpn=("h2",))
        sock.close()
        assert got is None, "ALPN chose %r with http2 = off" % got
    except ssl.SSLError as e:
        assert "NO_APPLICATION_PROTOCOL" in str(e).upper(), e
    out = curl("-k", "--http2", "-w", "\n%{http_version}", "--resolve",
               "localhost:%d:127.0.0.1" % srv.tls_port, "https://localhost:%d/a.txt" % srv.tls_port)
    assert out.returncode == 0, out.stderr
    assert out.stdout == A_TXT + b"\n1.1"


def test_tls_h2c_listener_is_a_tls_listener(start_server, certs):
    """`listen = ADDR tls h2c` is allowed and means no more than `tls`: ALPN h2 and HTTP/1.1 over
    TLS; clear text there is not HTTP/2 (nor HTTP at all)."""
    port = free_ports(1)[0]
    srv = start_server(listen=["127.0.0.1:%d tls h2c" % port],
                       server_opts={"tlsCertificate": certs[0], "tlsKey": certs[1]}, files={"a.txt": A_TXT})
    with h2.H2Conn.open(port) as c:
        assert ok(c.get("/a.txt")).body == A_TXT
        clean(c)
    sock, alpn = h2.connect(port, alpn=("http/1.1",))
    with helpers.RawConn(sock, T) as rc:
        res = helpers.exchange(rc, helpers.request("GET", "/a.txt", [("Connection", "close")], host="localhost"))
    assert alpn == "http/1.1" and res.status == 200 and res.first.body == A_TXT, res
    sock, _ = h2.connect(port, tls=False)
    with h2.H2Conn(sock, scheme="http") as c:
        c.request("GET", "/a.txt", flush=False)
        c.flush()
        c.wait_closed(T)
        assert not any(st.status for st in c.streams.values()), "HTTP/2 in clear text on a tls listener"


def test_curl_over_tls_by_alpn(srv, tmp_path):
    base = "https://localhost:%d" % srv.tls_port
    res = ["--resolve", "localhost:%d:127.0.0.1" % srv.tls_port]
    out = curl("-k", "--http2", "-o", str(tmp_path / "mid"), "-w", "%{http_version} %{http_code}",
               *res, base + "/mid.bin")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"2 200" and (tmp_path / "mid").read_bytes() == MID
    out = curl("-k", "--http2", "-w", "%{http_version} %{http_code}", *res, base + "/hello.php")
    assert out.stdout == b"hello from php\n2 200", out
    # HEAD: the fields, no body
    out = curl("-k", "--http2", "-I", *res, base + "/mid.bin")
    head = out.stdout.decode().lower()
    assert head.startswith("http/2 200") and "content-length: %d" % len(MID) in head, head
    # an upload to PHP, sha256 compared
    up = os.urandom(3 << 20)
    (tmp_path / "up").write_bytes(up)
    out = curl("-k", "--http2", "--data-binary", "@" + str(tmp_path / "up"), "-H",
               "Content-Type: application/octet-stream", *res, base + "/sha.php")
    v = json.loads(out.stdout)
    assert v["sha256"] == hashlib.sha256(up).hexdigest() and v["proto"] == "HTTP/2.0", v
    assert v["https"] == "on"
    # curl's verbose output: ALPN chose h2
    out = curl("-k", "-v", "--http2", "-o", "/dev/null", *res, base + "/a.txt")
    assert b"ALPN: server accepted h2" in out.stderr or b"ALPN, server accepted to use h2" in out.stderr, \
        out.stderr[-2000:]


def test_curl_on_h2c_prior_knowledge_http11_and_upgrade(srv):
    url = "http://127.0.0.1:%d" % srv.h2c_port
    out = curl("--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}", url + "/a.txt")
    assert out.returncode == 0 and out.stdout == A_TXT + b"\n2 200", out
    out = curl("--http2-prior-knowledge", "-w", "\n%{http_version}", url + "/hello.php")
    assert out.stdout == b"hello from php\n\n2", out
    # HTTP/1.1 on the same port
    out = curl("--http1.1", "-w", "\n%{http_version}", url + "/a.txt")
    assert out.stdout == A_TXT + b"\n1.1", out
    # curl --http2 on http:// asks for Upgrade: h2c; the answer is HTTP/1.1, no 101
    out = curl("--http2", "-v", "-w", "\n%{http_version} %{http_code}", url + "/a.txt")
    assert out.returncode == 0 and out.stdout == A_TXT + b"\n1.1 200", out
    assert b"Upgrade: h2c" in out.stderr and b"101" not in out.stderr, out.stderr[-2000:]
    # the same with exact bytes
    with srv.connect(addr=("127.0.0.1", srv.h2c_port), timeout=T) as rc:
        res = helpers.exchange(rc, helpers.request(
            "GET", "/a.txt", [("Connection", "Upgrade, HTTP2-Settings, close"), ("Upgrade", "h2c"),
                              ("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")], host="localhost"))
    assert res.status == 200 and res.first.version == "HTTP/1.1" and res.first.body == A_TXT, res


def nghttp(*args, timeout=30):
    return subprocess.run(["nghttp", "-t", "20"] + list(args), capture_output=True, timeout=timeout)


def test_nghttp(srv, tmp_path):
    for base in ("https://127.0.0.1:%d" % srv.tls_port, "http://127.0.0.1:%d" % srv.h2c_port):
        out = nghttp(base + "/mid.bin")
        assert out.returncode == 0 and out.stdout == MID, (base, out.stderr[-1000:])
        out = nghttp("-nv", base + "/hello.php")
        text = out.stdout.decode("latin-1")
        assert out.returncode == 0 and re.search(r"recv \(stream_id=\d+\) :status: 200", text), text[-2000:]
        assert "recv GOAWAY" not in text.split("send GOAWAY")[0], text[-2000:]
        up = os.urandom(2 << 20)
        (tmp_path / "up").write_bytes(up)
        out = nghttp("-d", str(tmp_path / "up"), base + "/sha.php")
        v = json.loads(out.stdout)
        assert v["len"] == len(up) and v["sha256"] == hashlib.sha256(up).hexdigest(), v
        # 40 concurrent streams on one connection
        out = nghttp("-n", "-s", "-m", "40", base + "/small.txt")
        codes = re.findall(r"^\s*\d+\s+\+\S+\s+\+\S+\s+\S+\s+(\d{3})\s", out.stdout.decode(), re.M)
        assert out.returncode == 0 and codes == ["200"] * 40, out.stdout.decode()[-3000:]


# ==== every request feature over HTTP/2 ========================================================

TRANSPORTS = ("tls", "h2c")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_static_files(srv, transport):
    with open_h2(srv, transport) as c:
        st = ok(c.get("/a.txt"))
        assert st.body == A_TXT and st.header("content-length") == str(len(A_TXT))
        assert st.header("content-type", "").startswith("text/plain")
        assert st.header("server") and st.header("date")
        helpers.parse_http_date(st.header("date"))
        etag, lm = st.header("etag"), st.header("last-modified")
        assert etag and lm
        assert ok(c.get("/mid.bin")).body == MID
        # HEAD: GET's fields, no body
        st = ok(c.get("/mid.bin", method="HEAD"))
        assert st.received == 0 and st.header("content-length") == str(len(MID))
        # conditionals: 304 without a body
        for hs in ([("if-none-match", etag)], [("if-modified-since", lm)]):
            st = ok(c.get("/a.txt", headers=hs), 304)
            assert st.received == 0 and st.header("etag") == etag
        # Range: 206, 416
        st = ok(c.get("/mid.bin", headers=[("range", "bytes=1000-2999")]), 206)
        assert st.body == MID[1000:3000] and st.header("content-range") == "bytes 1000-2999/%d" % len(MID)
        st = ok(c.get("/mid.bin", headers=[("range", "bytes=-100")]), 206)
        assert st.body == MID[-100:]
        st = ok(c.get("/mid.bin", headers=[("range", "bytes=%d-" % (len(MID) + 10))]), 416)
        assert st.header("content-range") == "bytes */%d" % len(MID)
        st = ok(c.get("/mid.bin", headers=[("range", "bytes=0-9"), ("if-range", etag)]), 200)
        # redirect, refusals, the error page
        st = ok(c.get("/dir"), 301)
        assert st.header("location", "").endswith("/dir/"), st.headers
        assert ok(c.get("/dir/")).body == b"<p>dir</p>\n"
        ok(c.get("/.hidden"), 403)
        st = ok(c.get("/nope.txt"), 404)
        assert st.body == ERROR_PAGE
        st = ok(c.get("/a.txt", method="DELETE"), 405)
        assert "GET" in st.header("allow", ""), st.headers
        # the status page
        st = ok(c.get("/fcgihost-status"))
        assert "server" in json.loads(st.body)
        st = ok(c.get("/fcgihost-status?format=prometheus"))
        assert b"fcgihost_http2_streams_total" in st.body
        assert c.goaway is None
        clean(c)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fastcgi(srv, transport):
    with open_h2(srv, transport) as c:
        st = ok(c.get("/hello.php"))
        assert st.body == b"hello from php\n"
        st = ok(c.get("/hello.php", method="HEAD"))
        assert st.received == 0
        # the variables: SERVER_PROTOCOL, HTTPS, the host from :authority, cookie crumbs joined
        st = ok(c.get("/t.fcgi?echo=env", headers=[("cookie", "a=1"), ("cookie", "b=2"),
                                                   ("x-test", "abc")], authority="localhost:8443"))
        env = dict(l.split("=", 1) for l in st.body.decode().splitlines() if "=" in l)
        assert env["SERVER_PROTOCOL"] == "HTTP/2.0" and env["REQUEST_METHOD"] == "GET", env
        assert env["HTTP_HOST"] == "localhost:8443" and env["SERVER_NAME"] == "localhost", env
        assert env["HTTP_COOKIE"] == "a=1; b=2" and env["HTTP_X_TEST"] == "abc", env
        assert env.get("HTTPS") == ("on" if transport == "tls" else None), env
        assert env["REQUEST_SCHEME"] == ("https" if transport == "tls" else "http"), env
        # buffered and streamed answers, php and fcgi_app
        st = ok(c.get("/t.fcgi?big=1m"))
        assert st.received == 1 << 20 and is_pattern_at(st.body, 0)
        st = ok(c.get("/s.sfcgi?big=3m"))
        assert st.received == 3 << 20 and is_pattern_at(st.body, 0)
        assert st.header("content-length") is None and st.header("transfer-encoding") is None
        assert ok(c.get("/s.sfcgi?big=3m", method="HEAD")).received == 0
        # a response head larger than a frame: HEADERS and CONTINUATION frames
        st = ok(c.get("/bighead.php?n=30000"))
        assert st.header("x-big") == "a" * 30000 and st.header("x-two") == "b" * 30000
        assert c.frames_in.get(h2.CONTINUATION), "a 60 KB head in one frame?"
        # more fields than the server's scratch array holds (128 with :status; an application
        # may send 128 at most): every one, in order
        st = ok(c.get("/manyhead.php"))
        assert len(st.headers) + 1 > 128, len(st.headers)
        assert [(k, v) for k, v in st.headers if k.startswith("x-h")] == \
            [("x-h%d" % i, "v%d" % i) for i in range(125)], st.headers[:10]
        go = go_name()
        release(srv, go)
        st = ok(c.get("/wait.sphp?n=5&go=" + go))
        assert st.body.split(b"\n", 1)[1] == b"the rest of the answer\n" * 5, st.body[:200]
        # the application's status, and its connection-specific fields dropped
        ok(c.get("/t.fcgi?status=404"), 404)
        st = ok(c.get("/hop.php"))
        assert st.body == b"hop\n" and st.header("x-kept") == "yes"
        clean(c)       # no connection, keep-alive, upgrade, proxy-connection, transfer-encoding


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_uploads_reach_php_intact(srv, transport):
    up = os.urandom(3 << 20)
    sha = hashlib.sha256(up).hexdigest()
    with open_h2(srv, transport) as c:
        for hs in ([("content-length", str(len(up)))], []):
            st = ok(c.get("/sha.php", method="POST", body=up, headers=hs))
            v = json.loads(st.body)
            assert v["len"] == len(up) and v["sha256"] == sha and v["method"] == "POST", (hs, v)
            assert v["cl"] == str(len(up)), "php-cgi needs CONTENT_LENGTH: %r" % v
        # three uploads at once on one connection, their DATA frames interleaved
        ups = [os.urandom((1 << 20) + i * 1000) for i in range(3)]
        sids = [c.request("POST", "/sha.php", [("content-length", str(len(u)))], end_stream=False)
                for u in ups]
        pos = [0, 0, 0]
        while any(p < len(u) for p, u in zip(pos, ups)):
            for i, (sid, u) in enumerate(zip(sids, ups)):
                if pos[i] < len(u):
                    piece = u[pos[i]:pos[i] + 100000]
                    pos[i] += len(piece)
                    assert c.send_data(sid, piece, end_stream=pos[i] == len(u))
        for sid, u in zip(sids, ups):
            v = json.loads(ok(c.response(sid)).body)
            assert v["len"] == len(u) and v["sha256"] == hashlib.sha256(u).hexdigest(), v
        clean(c)


def test_bodies_not_read_give_their_window_back(start_server, certs):
    """Bodies the server answers without reading (405 for a static file, 413 past maxBodyBytes,
    a stream reset mid-upload) still count against the connection's window: the server must give
    it back, or the connection's later uploads stall."""
    srv = h2_server(start_server, certs, server_opts={"maxBodyBytes": 5 << 20})
    body = os.urandom(1 << 20)
    with open_h2(srv) as c:
        for path, status in (("/a.txt", 405), ("/mid.bin", 405)):
            sid = c.request("POST", path, [("content-length", str(len(body)))], end_stream=False)
            c.send_data(sid, body, end_stream=True)       # stops if the stream is answered and reset
            st = c.response(sid)
            assert st.status == status or st.reset is not None, st.describe()
        sid = c.request("POST", "/sha.php", end_stream=False)      # no length: 413 past 5 MiB
        for _ in range(6):
            if not c.send_data(sid, body):
                break
        st = c.response(sid)
        assert st.status == 413 or st.reset is not None, st.describe()
        sid = c.request("POST", "/t.fcgi?echo=env", [("content-length", str(4 << 20))], end_stream=False)
        assert c.send_data(sid, body)
        c.reset(sid)
        up = os.urandom(3 << 20)                       # past the 1 MiB connection window
        v = json.loads(ok(c.get("/sha.php", method="POST", body=up, timeout=20)).body)
        assert v["sha256"] == hashlib.sha256(up).hexdigest(), v
        clean(c)


def test_request_body_streams_to_the_application(srv):
    """With a content-length the body goes to the application as it comes: fcgi_app's request
    has started (its mark is logged) while most of the body is still to be sent."""
    mark = "stream-" + go_name()
    body = os.urandom(4 << 20)
    with open_h2(srv) as c:
        sid = c.request("POST", "/t.fcgi?mark=" + mark, [("content-length", str(len(body)))],
                        end_stream=False)
        assert c.send_data(sid, body[:512 << 10])
        wait_mark(srv, mark)
        assert c.send_data(sid, body[512 << 10:], end_stream=True)
        st = ok(c.response(sid))
        env = dict(l.split("=", 1) for l in st.body.decode().splitlines() if "=" in l)
        assert env["stdin_bytes"] == str(len(body)), env
        clean(c)


def test_expect_100_continue_and_trailers(srv):
    up = os.urandom(300000)
    sha = hashlib.sha256(up).hexdigest()
    with open_h2(srv) as c:
        sid = c.request("POST", "/sha.php", [("content-length", str(len(up))),
                                             ("expect", "100-continue")], end_stream=False)
        st = c.streams[sid]
        c.wait(lambda: st.informational or st.done, T, "100 Continue")
        assert [f for f in st.informational[0] if f[0] == ":status"] == [(":status", "100")], st.informational
        assert st.status is None, "a final answer before the body: %s" % st.describe()
        assert c.send_data(sid, up, end_stream=True)
        v = json.loads(ok(c.response(sid)).body)
        assert v["sha256"] == sha
        # trailers after the body (with and without content-length): ignored, the body intact
        for hs in ([("content-length", str(len(up)))], [("te", "trailers")]):
            sid = c.request("POST", "/sha.php", hs, end_stream=False)
            assert c.send_data(sid, up, end_stream=False)
            c.send_trailers(sid, [("x-checksum", sha), ("x-more", "1")])
            v = json.loads(ok(c.response(sid)).body)
            assert v["sha256"] == sha and v["len"] == len(up), v
        # a trailer on a request without a body
        sid = c.request("GET", "/a.txt", end_stream=False)
        c.send_trailers(sid, [("x-after", "nothing")])
        assert ok(c.response(sid)).body == A_TXT
        assert c.goaway is None
        clean(c)


@pytest.mark.parametrize("coding", ("gzip", "br"))
def test_compression(srv, coding):
    dec = (lambda b: gzip.decompress(b)) if coding == "gzip" else brotli.decompress
    with open_h2(srv) as c:
        st = ok(c.get("/small.txt", headers=[("accept-encoding", coding)]))
        assert st.header("content-encoding") == coding and dec(st.body) == SMALL
        assert "accept-encoding" in st.header("vary", "").lower()
        assert len(st.body) < len(SMALL)
        head = ok(c.get("/small.txt", method="HEAD", headers=[("accept-encoding", coding)]))
        assert head.received == 0 and head.header("content-encoding") == coding
        # a streamed PHP answer, coded as it streams
        go = go_name()
        sid = c.request("GET", "/wait.sphp?n=2000&go=" + go, [("accept-encoding", coding)])
        st = c.wait_head(sid)
        assert st.header("content-encoding") == coding, st.headers
        release(srv, go)
        body = dec(ok(c.response(sid)).body)
        assert body.split(b"\n", 1)[1] == b"the rest of the answer\n" * 2000
        # never for a Range
        st = ok(c.get("/small.txt", headers=[("accept-encoding", coding), ("range", "bytes=0-99")]), 206)
        assert st.header("content-encoding") is None and st.body == SMALL[:100]
        clean(c)


def test_access_log_says_http2(srv):
    tag = go_name()
    with open_h2(srv) as c:
        ok(c.get("/a.txt?tls=" + tag))
    with open_h2(srv, "h2c") as c:
        ok(c.get("/hello.php?h2c=" + tag))
    srv.wait_for_log(r'"GET /a\.txt\?tls=%s HTTP/2\.0" 200 ' % tag, which="access")
    srv.wait_for_log(r'"GET /hello\.php\?h2c=%s HTTP/2\.0" 200 ' % tag, which="access")


def test_unknown_host_gets_421_over_tls(start_server, certs):
    """With sites but no default site (SPEC §6): 421 over HTTP/2 on TLS (the connection may have
    been set up for another name), 404 otherwise."""
    tls_port, h2c_port = free_ports(2)
    srv = start_server(listen=["127.0.0.1:%d tls" % tls_port, "127.0.0.1:%d h2c" % h2c_port],
                       server_opts={"tlsCertificate": certs[0], "tlsKey": certs[1]},
                       files={"a.txt": A_TXT}, start=False)
    srv.config_text = srv.config_text.replace("root = %s\n" % srv.root, "")
    srv.config_text += "\n[site:a]\nhosts = a.test localhost\nroot = %s\n" % srv.root
    with open(srv.conf, "w") as f:
        f.write(srv.config_text)
    srv.start()
    with h2.H2Conn.open(tls_port) as c:
        assert ok(c.get("/a.txt")).body == A_TXT
        ok(c.get("/a.txt", authority="other.test"), 421)
        assert ok(c.get("/a.txt", authority="a.test")).body == A_TXT
        clean(c)
    with h2.H2Conn.open(h2c_port, tls=False) as c:
        ok(c.get("/a.txt", authority="other.test"), 404)


def test_counters(start_server, certs):
    srv = h2_server(start_server, certs)

    def counters():
        return srv.status_json()["server"]["http2"]

    def prom():
        text = srv.get("/fcgihost-status?format=prometheus").text
        assert "# TYPE fcgihost_http2_connections_total counter" in text
        assert "# TYPE fcgihost_http2_streams_total counter" in text
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r"^(fcgihost_http2_\w+_total) (\d+)$", text, re.M)}

    assert counters() == {"connections": 0, "streams": 0}
    with open_h2(srv) as c:
        for p in ("/a.txt", "/hello.php", "/t.fcgi"):
            ok(c.get(p))
    with open_h2(srv, "h2c") as c:
        for p in ("/a.txt", "/nope.txt"):
            c.get(p)
    # HTTP/1.1, on TLS and on the h2c port, counts nothing
    sock, _ = h2.connect(srv.tls_port, alpn=("http/1.1",))
    with helpers.RawConn(sock, T) as rc:
        assert helpers.exchange(rc, helpers.request("GET", "/a.txt", [("Connection", "close")])).status == 200
    assert curl("--http1.1", "http://127.0.0.1:%d/a.txt" % srv.h2c_port).stdout == A_TXT
    helpers.wait_until(lambda: counters() == {"connections": 2, "streams": 5}, T,
                       what="http2 counters of 2 connections and 5 streams: %r" % counters())
    assert prom() == {"fcgihost_http2_connections_total": 2, "fcgihost_http2_streams_total": 5}


# ==== limits, flow control, resets ===============================================================

def held_streams(c, n):
    """n requests whose bodies are still to come: each holds its stream open."""
    sids = [c.request("POST", "/t.fcgi?echo=body", [("content-length", "1")], end_stream=False,
                      flush=False) for _ in range(n)]
    c.flush()
    return sids


def test_flow_control_windows_respected(srv):
    """The server never sends past the windows the client offers: the connection's (shared by
    three streams) and a stream's shrunk below zero by SETTINGS_INITIAL_WINDOW_SIZE."""
    with open_h2(srv, conn_window=h2.DEFAULT_WINDOW) as c:
        c.conn_slow = True
        sids = [c.request("GET", "/mid.bin", flush=False) for _ in range(3)]
        c.flush()
        total = lambda: sum(c.streams[s].received for s in sids)       # noqa: E731
        got = settle(total, c, what="the bytes sent into the connection window")
        assert got == h2.DEFAULT_WINDOW, "%d byte(s) for a connection window of 65535" % got
        while not all(c.streams[s].done for s in sids):
            c.ack_connection()
            c.wait(lambda: c.conn_unacked > 0 or all(c.streams[s].done for s in sids), T,
                   "DATA after a connection WINDOW_UPDATE")
        for s in sids:
            assert ok(c.streams[s]).body == MID
        clean(c)
    with open_h2(srv) as c:
        sid = c.request("GET", "/mid.bin", slow=True)
        st = c.streams[sid]
        c.wait(lambda: st.received >= h2.DEFAULT_WINDOW, T, "the first window")
        c.set_initial_window(16384)                   # the stream's window: 0 - 49151
        c.wait(lambda: c.settings_acked >= 2, T, "the SETTINGS ACK")
        assert st.recv_window == 16384 - h2.DEFAULT_WINDOW
        c.ack(sid, 32768)                             # still -16383: nothing may come
        got = settle(lambda: st.received, c, what="the bytes of a stream with a negative window")
        assert got == h2.DEFAULT_WINDOW, "DATA on a stream whose window is below zero"
        c.ack(sid)                                    # 16384: that much may come, no more
        got = settle(lambda: st.received, c, what="the bytes of the reopened window")
        assert got == h2.DEFAULT_WINDOW + 16384, got
        st.slow = False
        c.ack(sid)
        assert ok(c.response(sid)).body == MID
        clean(c)


def test_client_without_a_dynamic_table(srv):
    """SETTINGS_HEADER_TABLE_SIZE = 0: the server's header blocks say so (a table size update)
    and never refer to a dynamic entry (the client's decoder has none: it would fail)."""
    with open_h2(srv, settings={h2.HEADER_TABLE_SIZE: 0}) as c:
        c.dec.max_allowed_table_size = 0
        for p in ("/a.txt", "/hello.php", "/a.txt", "/t.fcgi", "/nope.txt", "/a.txt"):
            st = c.get(p)
            assert st.status in (200, 404), st.describe()
        assert ok(c.get("/a.txt")).body == A_TXT
        clean(c)


def test_h2c_preface_in_pieces(srv):
    """The h2c listener tells the preface from HTTP/1.1 however the bytes arrive."""
    sock, _ = h2.connect(srv.h2c_port, tls=False)
    for b in h2.PREFACE:
        sock.sendall(bytes([b]))
    c = h2.H2Conn(sock, scheme="http", preface=False)
    c.queue(h2.frame(h2.SETTINGS, 0, 0))
    with c:
        assert ok(c.get("/a.txt")).body == A_TXT
        clean(c)
    for method in ("PUT", "PRI"):        # 'P', then not the preface
        sock, _ = h2.connect(srv.h2c_port, tls=False)
        req = helpers.request(method, "/a.txt", [("Connection", "close"), ("Content-Length", "0")],
                              host="localhost")
        for b in req:
            sock.sendall(bytes([b]))
        with helpers.RawConn(sock, T) as rc:
            res = helpers.exchange(rc, b"", (method,))
        assert res.first is not None and res.first.version == "HTTP/1.1", (method, res)
        assert res.status in (400, 405, 501), (method, res)
    assert srv.get("/a.txt").body == A_TXT


def test_proxy_protocol_before_h2c_and_h2(start_server, certs):
    h2c_port, tls_port = free_ports(2)
    srv = start_server(listen=["127.0.0.1:%d h2c proxy" % h2c_port, "127.0.0.1:%d tls proxy" % tls_port],
                       server_opts={"tlsCertificate": certs[0], "tlsKey": certs[1]},
                       files=FILES, extra=APP_INI)
    for port, tls, addr in ((h2c_port, False, "203.0.113.7"), (tls_port, True, "203.0.113.8")):
        line = b"PROXY TCP4 %s 127.0.0.1 40000 443\r\n" % addr.encode()
        with h2.H2Conn.open(port, tls=tls, prelude=line) as c:
            body = ok(c.get("/t.fcgi?echo=env")).body.decode()
            assert "REMOTE_ADDR=%s\n" % addr in body, body
            assert "SERVER_PROTOCOL=HTTP/2.0\n" in body
            clean(c)
    assert srv.running()


def test_header_block_in_pieces_and_padded_uploads(srv):
    """A header block in HEADERS + 5 CONTINUATION frames; DATA frames with padding (which counts
    against the windows: the server must return it too, or the upload stalls)."""
    with open_h2(srv) as c:
        sid = c.new_stream()
        block = c.header_block(c.request_fields("GET", "/t.fcgi?echo=env") + [("x-long", "v" * 3000)])
        assert 2000 < len(block) <= 2900, len(block)      # 5 or 6 frames: within the 8 allowed
        c.send_block(sid, block, end_stream=True, frame_size=500)
        st = ok(c.response(sid))
        assert "HTTP_X_LONG=%s\n" % ("v" * 3000) in st.body.decode()
        up = os.urandom(1 << 20)
        for hs in ([("content-length", str(len(up)))], []):
            sid = c.request("POST", "/sha.php", hs, end_stream=False)
            assert c.send_data(sid, up, end_stream=True, pad=255)
            v = json.loads(ok(c.response(sid)).body)
            assert v["len"] == len(up) and v["sha256"] == hashlib.sha256(up).hexdigest(), v
        clean(c)


def test_max_streams_before_the_settings_ack(start_server, certs):
    srv = h2_server(start_server, certs, server_opts={"http2MaxStreams": 4})
    # A client that sends its requests with its preface, before it has seen the server's
    # SETTINGS (as browsers do): 8 requests whose bodies are still to come hold their streams.
    c = open_h2(srv, ack_settings=False)
    sids = held_streams(c, 8)
    c.wait(lambda: all(c.streams[s].done for s in sids[4:]), T, "the streams past 4 refused")
    assert c.server_settings.get(h2.MAX_CONCURRENT_STREAMS) == 4, c.server_settings
    for s in sids[4:]:
        st = c.streams[s]
        assert st.reset == h2.REFUSED_STREAM and st.reset_by == "server", st.describe()
    c.queue(h2.frame(h2.SETTINGS, h2.F_ACK, 0))
    c.auto_ack_settings = True
    for s in sids[:4]:
        assert c.streams[s].reset is None, c.streams[s].describe()
        c.send_data(s, b"x", end_stream=True)
    for s in sids[:4]:
        assert ok(c.response(s)).body == b"x"
    assert ok(c.get("/a.txt")).body == A_TXT
    assert c.goaway is None
    clean(c)
    c.close()


def test_max_streams_after_the_settings_ack(start_server, certs):
    """A client that acknowledged the limit and opens one stream more. RFC 9113 §5.1.2 asks for
    a stream error; nghttp2 (the server's HTTP/2 library, whose limit cannot be bypassed) treats
    it as a connection error, as fcgihost.conf(5) documents: GOAWAY PROTOCOL_ERROR naming the
    last stream it processed, the streams before it answered, the connection closed, and other
    connections unaffected."""
    srv = h2_server(start_server, certs, server_opts={"http2MaxStreams": 4})
    with open_h2(srv) as other:
        with open_h2(srv) as c:
            c.wait(lambda: c.server_settings_frames, T, "the server's SETTINGS")
            c.ping()                                    # answered after our SETTINGS ACK is read
            c.wait(lambda: c.pings_acked, T, "the PING's ACK")
            sids = held_streams(c, 5)
            c.wait(lambda: c.goaway, T, "GOAWAY for the fifth stream", allow_eof=True)
            code, last, _ = c.goaway
            assert code == h2.PROTOCOL_ERROR and last == sids[3], c.describe()
        assert ok(other.get("/a.txt")).body == A_TXT
        clean(other)


def test_100_streams_and_a_slow_64m_answer(start_server, certs):
    """100 streams on one connection: static files, hello.php, fcgi_app, and one 64 MiB answer
    streamed by fcgi_app whose window the client keeps closed, then reads slowly, then reads
    whole. The application is held back (it has written little more than the client took), the
    server's VmRSS stays bounded, every other stream completes meanwhile."""
    srv = h2_server(start_server, certs)
    mix = ["/small.txt", "/a.txt", "/hello.php", "/mid.bin", "/t.fcgi?big=64k"]
    want = {"/small.txt": SMALL, "/a.txt": A_TXT, "/hello.php": b"hello from php\n", "/mid.bin": MID}
    with open_h2(srv) as c:        # warm-up: every kind once, the allocator at its working size
        for p in mix * 2:
            ok(c.get(p))
        ok(c.get("/b.bfcgi?big=4m"))
    check_quiet(srv, "the warm-up")
    watch = RssWatch(srv.pid)
    c = open_h2(srv)
    sink = PatternSink()
    mark = "big-" + go_name()
    big = c.request("GET", "/b.bfcgi?big=64m&mark=" + mark, keep=False, slow=True,
                    on_data=sink.feed, flush=False)
    others = [(c.request("GET", mix[i % len(mix)], flush=False), mix[i % len(mix)]) for i in range(99)]
    c.flush()
    c.wait(lambda: all(c.streams[s].done for s, _ in others), 60, "the 99 other streams")
    for s, p in others:
        st = ok(c.streams[s])
        if p in want:
            assert st.body == want[p], "%s: %d byte(s)" % (p, len(st.body))
        else:
            assert st.received == 64 << 10 and is_pattern_at(st.body, 0)
    pid = wait_mark(srv, mark)
    bst = c.streams[big]
    # The window closed: the application stops writing soon after the client stopped taking.
    written = settle(lambda: wchar(pid), c, what="the held-back application's written bytes")
    assert bst.received <= h2.DEFAULT_WINDOW and not bst.done, bst.describe()
    assert written < APP_AHEAD, ("fcgi_app wrote %d byte(s) while the client took %d: the server "
                                 "buffered the answer instead of holding the application back"
                                 % (written, bst.received))
    # Slowly: 4 MiB in 64 KiB steps, each one a WINDOW_UPDATE once the previous step arrived.
    while bst.received < 4 << 20:
        c.ack(big)
        c.wait(lambda: bst.unacked > 0 or bst.done, T, "the next 64 KiB of the slow stream")
    assert wchar(pid) < bst.received + APP_AHEAD
    # Then whole.
    bst.slow = False
    c.ack(big)
    ok(c.response(big, timeout=120))
    peak = watch.stop()
    assert sink.n == BIG and sink.bad_at is None, (sink.n, sink.bad_at)
    assert ok(c.get("/a.txt")).body == A_TXT
    clean(c)
    c.close()
    if not sanitized(srv):
        assert peak < RSS_GROWTH_KB, "the server's VmRSS grew by %d kB" % peak
    check_quiet(srv, "the 100 streams")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_that_stops_reading_the_socket(start_server, certs, transport):
    """A client that stops reading its socket with every window open (the server's writes
    block on TCP, not on flow control) holds nobody else up, and gets everything whole once it
    reads again."""
    srv = h2_server(start_server, certs, files={"huge.bin": ("sparse", 16 << 20)})
    c = open_h2(srv, transport, rcvbuf=16384, settings={h2.INITIAL_WINDOW_SIZE: 16 << 20})
    sids = [c.request("GET", p, keep=False, flush=False) for p in ("/huge.bin", "/s.sfcgi?big=8m", "/mid.bin")]
    c.flush()
    c.wait(lambda: all(c.streams[s].received > 0 for s in sids), T, "the answers starting")
    fd = c.sock.fileno()

    def pending():
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    settle(pending, what="the bytes waiting in the client's socket")    # the server is blocked now
    with open_h2(srv, "h2c") as other:        # others are served meanwhile
        assert ok(other.get("/mid.bin")).body == MID
        assert b"REQUEST_METHOD=GET" in ok(other.get("/t.fcgi")).body
    assert srv.get("/a.txt").body == A_TXT
    for s in sids:
        ok(c.response(s, timeout=60))
    assert [c.streams[s].received for s in sids] == [16 << 20, 8 << 20, len(MID)]
    clean(c)
    c.close()
    check_quiet(srv, "a client that stopped reading")


# A client resetting a stream (RST_STREAM CANCEL) at each phase of a request; each one on a
# connection that also has a streamed FastCGI answer in flight (held by its closed window), which
# must go on whole after the reset, as must new streams on the same connection.
PHASES = ("app_wait", "queued", "upload", "after_continue", "streamed_body", "static_body", "headers_only")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("phase", PHASES)
def test_reset_at_every_phase(start_server, certs, phase, transport):
    srv = h2_server(start_server, certs)
    c = open_h2(srv, transport)
    mark = "%s-%s" % (phase, go_name())
    # the bystander: 2 MiB streamed by fcgi_app, window closed until the end
    by = c.request("GET", "/s.sfcgi?big=8m", slow=True)
    c.wait(lambda: c.streams[by].received >= h2.DEFAULT_WINDOW, T, "the bystander's first window")
    if phase == "app_wait":
        sid = c.request("GET", "/t.fcgi?sleep=1000&mark=" + mark)
        wait_mark(srv, mark)
    elif phase == "queued":
        # the app pool's other process busy too: this request waits in the queue
        hold = c.request("GET", "/s.sfcgi?big=8m", slow=True)
        c.wait(lambda: c.streams[hold].received > 0, T, "the second process's answer")
        sid = c.request("GET", "/t.fcgi?mark=" + mark)
        helpers.wait_until(lambda: pool(status(srv), "app")["queue"]["queued"] == 1, T,
                           what="the request in the queue")
    elif phase == "upload":
        sid = c.request("POST", "/t.fcgi?mark=" + mark, [("content-length", str(4 << 20))],
                        end_stream=False)
        assert c.send_data(sid, os.urandom(1 << 20))
        wait_mark(srv, mark)
    elif phase == "after_continue":
        sid = c.request("POST", "/t.fcgi?mark=" + mark, [("content-length", "100000"),
                                                        ("expect", "100-continue")], end_stream=False)
        c.wait(lambda: c.streams[sid].informational or c.streams[sid].done, T, "100 Continue")
        assert c.streams[sid].informational, c.streams[sid].describe()
    elif phase == "streamed_body":
        sid = c.request("GET", "/s.sfcgi?big=8m&mark=" + mark, slow=True)
        c.wait(lambda: c.streams[sid].received >= h2.DEFAULT_WINDOW, T, "a window of the answer")
    elif phase == "static_body":
        sid = c.request("GET", "/mid.bin", slow=True)
        c.wait(lambda: c.streams[sid].received >= h2.DEFAULT_WINDOW, T, "a window of the file")
    elif phase == "headers_only":
        # HEADERS without END_STREAM, then the reset before any body
        sid = c.request("POST", "/hello.php", [("content-length", "10")], end_stream=False)
    st = c.streams[sid]
    assert not st.done, "the stream ended before the client could reset it: %s" % st.describe()
    c.reset(sid)
    # The same connection goes on: a new static and FastCGI stream, then the bystander whole.
    assert ok(c.get("/a.txt")).body == A_TXT
    if phase == "queued":
        c.streams[hold].slow = False
        c.ack(hold)
        assert ok(c.response(hold)).received == 8 << 20
    env = ok(c.get("/t.fcgi?echo=env", timeout=T + 2)).body
    assert b"REQUEST_METHOD=GET" in env
    bst = c.streams[by]
    bst.slow = False
    c.ack(by)
    ok(c.response(by))
    assert bst.received == 8 << 20 and is_pattern_at(bst.body, 0), bst.describe()
    assert c.goaway is None, c.describe()
    clean(c)
    c.close()
    assert srv.running()
    check_quiet(srv, "a reset in phase " + phase)
    # The pool serves on fresh connections, within its limit.
    with open_h2(srv, transport) as c2:
        assert b"REQUEST_METHOD=GET" in ok(c2.get("/t.fcgi")).body
    assert len(hostile.children(srv.pid, "fcgi_app")) <= 3


@pytest.mark.parametrize("how,transport", [("fin", "tls"), ("rst", "tls"), ("rst", "h2c")])
def test_connection_lost_with_streams_in_flight(start_server, certs, how, transport):
    """The client's connection ends (FIN or RST) with streams at every phase: all of them are
    clients that went away; the server frees them all and goes on."""
    srv = h2_server(start_server, certs)
    c = open_h2(srv, transport)
    go, mark = go_name(), "lost-" + go_name()
    php = c.request("GET", "/wait.sphp?go=" + go)
    streamed = c.request("GET", "/s.sfcgi?big=8m", slow=True)
    upload = c.request("POST", "/t.fcgi?mark=" + mark, [("content-length", str(4 << 20))], end_stream=False)
    static = c.request("GET", "/mid.bin", slow=True)
    cont = c.request("POST", "/hello.php", [("content-length", "1000"), ("expect", "100-continue")],
                     end_stream=False)
    c.wait(lambda: b"first" in c.streams[php].data and c.streams[streamed].received >= h2.DEFAULT_WINDOW
           and c.streams[static].received >= h2.DEFAULT_WINDOW and c.streams[cont].informational, T,
           "every stream at its moment")
    assert c.send_data(upload, os.urandom(1 << 20))
    wait_mark(srv, mark)
    assert not any(st.done for st in c.streams.values()), [st.describe() for st in c.streams.values()]
    hostile_close(c, how)
    release(srv, go)
    assert srv.running()
    check_quiet(srv, "a connection lost with its streams (%s)" % how)
    with open_h2(srv, transport) as c2:
        assert ok(c2.get("/hello.php")).body == b"hello from php\n"
        assert b"REQUEST_METHOD=GET" in ok(c2.get("/t.fcgi")).body
        clean(c2)


def hostile_close(c, how):
    raw = c.sock
    if how == "rst":
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        try:
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    c.close()


def test_max_body_bytes(start_server, certs):
    srv = h2_server(start_server, certs, server_opts={"maxBodyBytes": 100000})
    small, big = os.urandom(50000), os.urandom(1 << 20)
    with open_h2(srv) as c:
        v = json.loads(ok(c.get("/sha.php", method="POST", body=small)).body)
        assert v["sha256"] == hashlib.sha256(small).hexdigest()
        # announced too long: 413 before the body; then sent anyway, or without a length: 413
        for hs in ([("content-length", str(len(big)))], []):
            sid = c.request("POST", "/sha.php", hs, end_stream=False)
            c.send_data(sid, big, end_stream=True)       # stops when the stream is answered
            st = c.response(sid)
            assert st.status == 413 or st.reset is not None, st.describe()
        assert ok(c.get("/a.txt")).body == A_TXT
        assert c.goaway is None
        clean(c)
    check_quiet(srv, "bodies past maxBodyBytes")


def test_malformed_requests_are_stream_errors(start_server, certs):
    """Malformed requests (RFC 9113 §8.1.1) are stream errors: the stream is reset or answered
    4xx, the connection goes on; a FastCGI request already started is cleaned up."""
    srv = h2_server(start_server, certs)
    with open_h2(srv) as c:
        cases = {
            "content-length shorter than the DATA": ("POST", "/t.fcgi?echo=body", [("content-length", "10")], b"x" * 20),
            "content-length longer than the DATA": ("POST", "/t.fcgi?echo=body", [("content-length", "30")], b"x" * 20),
            "no :path": None,
            "upper-case field name": ("GET", "/a.txt", [("X-Upper", "1")], None),
            "connection field": ("GET", "/a.txt", [("connection", "keep-alive")], None),
            "te other than trailers": ("GET", "/a.txt", [("te", "gzip")], None),
            "header list past maxHeaderBytes": ("GET", "/a.txt", [("x-long", "v" * 20000)], None),
        }
        for what, case in cases.items():
            sid = c.new_stream()
            if case is None:
                c.send_headers(sid, [(":method", "GET"), (":scheme", c.scheme), (":authority", "localhost")],
                               end_stream=True)
            else:
                method, path, hs, body = case
                fields = c.request_fields(method, path)
                fields += hs          # as given: upper case kept
                c.send_headers(sid, fields, end_stream=body is None)
                if body is not None:
                    c.queue(h2.frame(h2.DATA, h2.F_END_STREAM, sid, body))
                    c.flush()
            st = c.response(sid)
            assert st.reset is not None or 400 <= (st.status or 0) < 500, "%s: %s" % (what, st.describe())
            assert c.goaway is None and not c.eof, "%s closed the connection: %s" % (what, c.describe())
            assert ok(c.get("/a.txt")).body == A_TXT, what
        clean(c)
    check_quiet(srv, "malformed requests")


def head(method="GET", path="/a.txt", authority="localhost", scheme="https", extra=()):
    out = [(":method", method)]
    if scheme is not None:
        out.append((":scheme", scheme))
    if authority is not None:
        out.append((":authority", authority))
    if path is not None:
        out.append((":path", path))
    return out + list(extra)


# Request heads an HTTP/2 client can send that an HTTP/1.1 request line could not carry as they
# are (the server writes each head out as HTTP/1.1 for its parser): none may reach a handler as
# something else. "refused": a stream error or a 4xx; otherwise the status expected.
ODD_HEADS = [
    ("a space and a version in :path", head(path="/a.txt HTTP/1.0"), "refused"),
    ("a space in :path to the app", head(path="/t.fcgi?x=1 HTTP/1.1"), "refused"),
    ("a space in :method", head(method="G ET"), "refused"),
    ("CONNECT", head(method="CONNECT", path=None, scheme=None, authority="localhost:443"), "refused"),
    ("OPTIONS *", head(method="OPTIONS", path="*"), 200),
    ("GET *", head(path="*"), "refused"),
    ("absolute :path", head(path="http://localhost/a.txt"), "refused"),
    ("userinfo in :authority", head(authority="user@localhost"), "refused"),
    ("empty :authority", head(authority=""), "refused"),
    ("host instead of :authority", head(authority=None, extra=[("host", "localhost")]), 200),
    ("two :path", head(extra=[(":path", "/t.fcgi")]), "refused"),
    ("an unknown pseudo-header", head(extra=[(":protocol", "websocket")]), "refused"),
    ("a pseudo-header after a field", head(path=None, extra=[("x-a", "1"), (":path", "/a.txt")]), "refused"),
    ("DEL in a value", head(path="/t.fcgi", extra=[("x-a", "1\x7f2")]), "refused"),
    ("traversal", head(path="/../../etc/passwd"), "refused"),
    ("NUL escaped in :path", head(path="/%00/../a.txt"), "refused"),
]


def test_odd_request_heads(srv):
    c = open_h2(srv)
    try:
        for what, fields, want in ODD_HEADS:
            if c.eof or c.goaway:
                c.close()
                c = open_h2(srv)
            sid = c.new_stream()
            c.send_headers(sid, fields, end_stream=True)
            st = c.response(sid)
            if want == "refused":
                assert st.reset is not None or 400 <= st.status < 500, "%s: %s %r" % (what, st.describe(), st.body[:200])
            else:
                assert ok(st, want), what
            assert c.goaway is None, "%s: %s" % (what, c.describe())
            assert ok(c.get("/a.txt")).body == A_TXT, what
        clean(c)
    finally:
        c.close()


def test_flow_control_violation_by_the_client(start_server, certs):
    """DATA past the windows the server offered: FLOW_CONTROL_ERROR (the stream or the
    connection); the server goes on."""
    srv = h2_server(start_server, certs)
    c = open_h2(srv)
    ok(c.get("/a.txt"))
    sid = c.request("POST", "/t.fcgi?echo=body", [("content-length", str(4 << 20))], end_stream=False)
    piece = b"z" * 16384
    frames = (h2.frame(h2.DATA, 0, sid, piece) for _ in range(256))      # 4 MiB, windows ignored
    c.flood(frames, 256, T, stop_on_goaway=True)
    st = c.streams[sid]
    c.wait(lambda: c.goaway or st.reset is not None, T, "FLOW_CONTROL_ERROR", allow_eof=True)
    code = c.goaway[0] if c.goaway else st.reset
    assert code == h2.FLOW_CONTROL_ERROR or c.eof, c.describe()
    c.close()
    assert srv.running()
    check_quiet(srv, "a flow-control violation")


TIMEOUTS = {"keepAliveTimeout": 1, "bodyTimeout": 2, "sendTimeout": 2}
TIMEOUT_SLACK = 6.0          # a stalled stream ends within its timeout + this


def test_keepalive_timeout(start_server, certs):
    """keepAliveTimeout ends an idle HTTP/2 connection, never one with a stream in progress."""
    srv = h2_server(start_server, certs, server_opts=TIMEOUTS)
    with open_h2(srv) as c:
        go = go_name()
        sid = c.request("GET", "/wait.sphp?n=10&go=" + go)
        c.wait(lambda: b"first" in c.streams[sid].data, T, "the first part")
        with pytest.raises(helpers.Timeout):     # 2.5 s: past keepAliveTimeout, the stream still going
            c.wait(lambda: c.goaway is not None or c.eof, 2.5, "no GOAWAY while a stream is in progress",
                   allow_eof=True)
        assert not c.eof
        release(srv, go)
        ok(c.response(sid))
        c.wait_closed(T)          # idle now: the connection ends


def test_body_timeout_ends_the_stalled_stream(start_server, certs):
    """A request body that stalls past bodyTimeout: that stream gets 408 (or is reset), as over
    HTTP/1.1; the connection's other streams go on; the application's process is freed."""
    srv = h2_server(start_server, certs, server_opts=TIMEOUTS)
    with open_h2(srv, "h2c") as c:
        sid = c.request("POST", "/t.fcgi?echo=body", [("content-length", "1000")], end_stream=False)
        assert c.send_data(sid, b"0123456789")
        st = c.streams[sid]
        deadline = time.monotonic() + 2 + TIMEOUT_SLACK
        while not st.done:      # activity on the connection meanwhile: only the body stalls
            assert time.monotonic() < deadline, "%.0fs after the body stalled (bodyTimeout = 2) the " \
                "stream is still open: %s" % (2 + TIMEOUT_SLACK, st.describe())
            ok(c.get("/a.txt"))
            c.pump(0.3)
        assert st.status == 408 or st.reset is not None, st.describe()
        assert ok(c.get("/a.txt")).body == A_TXT
    check_quiet(srv, "a stalled request body")


def test_send_timeout_ends_the_stalled_stream(start_server, certs):
    """An answer the client takes nothing of (its window closed) past sendTimeout: that stream is
    reset, or the connection closed; the application's process is freed."""
    srv = h2_server(start_server, certs, server_opts=TIMEOUTS)
    with open_h2(srv) as c:
        sid = c.request("GET", "/s.sfcgi?big=8m", slow=True)
        st = c.streams[sid]
        try:
            c.wait(lambda: st.done or c.goaway, 2 + TIMEOUT_SLACK, "the end of the stalled answer",
                   allow_eof=True)
        except helpers.Timeout:
            raise AssertionError("%.0fs after the client stopped taking the answer (sendTimeout = 2) "
                                 "the stream is still open: %s" % (2 + TIMEOUT_SLACK, st.describe()))
        assert st.reset is not None or c.goaway is not None or c.eof, st.describe()
    check_quiet(srv, "a stalled answer")


def test_many_streams_on_one_connection_release_their_memory(start_server, certs):
    srv = h2_server(start_server, certs)
    paths = ["/a.txt", "/small.txt", "/nope.txt", "/t.fcgi", "/hello.php"]

    def run(c, n):
        for i in range(0, n, 50):
            sids = [c.request("GET", paths[(i + j) % len(paths)], flush=False) for j in range(50)]
            c.flush()
            for s in sids:
                st = c.response(s)
                assert st.status in (200, 404) and st.ended, st.describe()
                st.data = bytearray()       # the client keeps no bodies
    with open_h2(srv) as c:
        run(c, 500)
        base = hostile.status_kb(srv.pid)
        run(c, 5000)
        grown = hostile.status_kb(srv.pid) - base
        clean(c)
        assert c.goaway is None
    if not sanitized(srv):
        assert grown < 8 << 10, "VmRSS grew by %d kB over 5000 streams on one connection" % grown
    check_quiet(srv, "5500 streams")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resets_while_data_flows(start_server, certs, transport):
    """Streams reset at random points while their answers flow (files read ahead on the
    threadpool, coded on the fly, FastCGI streamed), then the connection reset with streams
    mid-way: nothing of theirs is touched after it is freed (ASan), the server goes on."""
    srv = h2_server(start_server, certs, files={"big.txt": prose(3 << 20, 5), "huge.bin": ("sparse", 16 << 20)})
    rnd = random.Random(11)
    kinds = [("/huge.bin", []), ("/big.txt", [("accept-encoding", "gzip")]),
             ("/big.txt", [("accept-encoding", "br")]), ("/s.sfcgi?big=8m", []), ("/big.txt", [])]
    with open_h2(srv, transport) as c:
        plan = {}
        for i in range(30):
            path, hs = kinds[i % len(kinds)]
            plan[c.request("GET", path, hs, keep=False, flush=False)] = rnd.randint(0, 1 << 20)
        c.flush()
        deadline = time.monotonic() + 30
        while any(not c.streams[s].done for s in plan):
            assert time.monotonic() < deadline, [c.streams[s].describe() for s in plan]
            c.pump(0.05)
            for s, at in plan.items():
                st = c.streams[s]
                if not st.done and st.received >= at:
                    c.reset(s)
        assert ok(c.get("/a.txt")).body == A_TXT
        clean(c)
    c = open_h2(srv, transport)
    sids = [c.request("GET", p, hs, keep=False) for p, hs in kinds[:3]]
    c.wait(lambda: all(c.streams[s].received > 200000 for s in sids), T, "the answers flowing")
    hostile_close(c, "rst")
    assert srv.running()
    check_quiet(srv, "resets while data flowed")
    with open_h2(srv, transport) as c:
        assert ok(c.get("/big.txt", [("accept-encoding", "gzip")])).header("content-encoding") == "gzip"


def test_stop_with_stalled_streams(start_server, certs):
    """SIGTERM with streams that never finish (windows closed, a script waiting, an upload
    half sent): GOAWAY, then after shutdownTimeout the connection closed and the server gone,
    exit status 0, no process left."""
    srv = h2_server(start_server, certs, server_opts={"shutdownTimeout": 1})
    c = open_h2(srv)
    mark = "stop-" + go_name()
    php = c.request("GET", "/wait.sphp?go=" + go_name())
    streamed = c.request("GET", "/s.sfcgi?big=8m", slow=True)
    static = c.request("GET", "/mid.bin", slow=True)
    upload = c.request("POST", "/t.fcgi?mark=" + mark, [("content-length", str(4 << 20))], end_stream=False)
    assert c.send_data(upload, os.urandom(1 << 20))
    c.wait(lambda: b"first" in c.streams[php].data and c.streams[streamed].received >= h2.DEFAULT_WINDOW
           and c.streams[static].received >= h2.DEFAULT_WINDOW, T, "every stream at its moment")
    wait_mark(srv, mark)
    srv.signal(signal.SIGTERM)
    c.wait(lambda: c.goaway, T, "GOAWAY after SIGTERM")
    c.wait_closed(T)
    assert srv.wait_exit(T) == 0
    c.close()


# ==== floods ==================================================================================

class Prober:
    """Another client, served while the flood goes on: HTTP/1.1 on the plain port and HTTP/2 on
    its own h2c connection, one request each per round until stop()."""

    def __init__(self, srv):
        self.srv = srv
        self.rounds = 0
        self.errors = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        c = None
        try:
            c = open_h2(self.srv, "h2c")
            while not self._stop.is_set() and len(self.errors) < 5:
                try:
                    r = self.srv.get("/a.txt")
                    if r.status != 200 or r.body != A_TXT:
                        self.errors.append("HTTP/1.1: %r" % r)
                    st = c.get("/a.txt", timeout=T)
                    if st.status != 200 or st.body != A_TXT:
                        self.errors.append("HTTP/2: %s" % st.describe())
                except Exception as e:  # noqa: BLE001 - any failure counts
                    self.errors.append(repr(e))
                self.rounds += 1
                self._stop.wait(0.02)
        except Exception as e:  # noqa: BLE001
            self.errors.append("prober: %r" % e)
        finally:
            if c is not None:
                c.close()

    def stop(self):
        self._stop.set()
        self._t.join(T + 5)
        return self.errors


def flood_and_check(srv, c, frames, limit, what):
    """Send the flood; the connection must end (GOAWAY or closed) within FLOOD_DEADLINE, then close
    within CLOSE_DEADLINE; other clients are served meanwhile and after; the server's memory
    stays bounded (release builds)."""
    watch = RssWatch(srv.pid)
    prober = Prober(srv)
    start = time.monotonic()
    try:
        res = c.flood(frames, limit, FLOOD_DEADLINE)
        try:       # all sent: the server may still be reading them
            c.wait(lambda: c.goaway is not None, start + FLOOD_DEADLINE - time.monotonic(),
                   "GOAWAY", allow_eof=True)
        except helpers.Timeout:
            pass
        ended = c.goaway is not None or c.eof
        assert ended, ("%s: after %d frame(s) in %.1fs the connection is still open and no GOAWAY "
                       "came (%s)" % (what, res["sent"], res["seconds"], c.describe()))
        try:
            c.wait_closed(CLOSE_DEADLINE)
        except helpers.Timeout:
            raise AssertionError("%s: GOAWAY (%s) but the connection still open %.0fs later"
                                 % (what, c.describe_goaway(), CLOSE_DEADLINE))
        assert c.eof_at - start < FLOOD_DEADLINE + CLOSE_DEADLINE
    finally:
        errors = prober.stop()
        peak = watch.stop()
        c.close()
    assert errors == [], "other clients failed during the %s: %s" % (what, errors)
    assert srv.running(), "the server died in the %s" % what
    assert srv.get("/a.txt").body == A_TXT
    with open_h2(srv) as c2:
        assert ok(c2.get("/hello.php")).body == b"hello from php\n"
        assert b"REQUEST_METHOD=GET" in ok(c2.get("/t.fcgi")).body
    if not sanitized(srv):
        assert peak < RSS_GROWTH_KB, "the server's VmRSS grew by %d kB in the %s" % (peak, what)
    check_quiet(srv, "the " + what)
    return res


FLOODS = ("rapid_reset", "continuation", "continuation_empty", "ping", "settings", "empty_data")


@pytest.mark.parametrize("kind", FLOODS)
def test_flood_ends_the_connection_and_is_logged(start_server, certs, kind):
    srv = h2_server(start_server, certs)
    c = open_h2(srv, "tls" if kind in ("rapid_reset", "ping", "continuation") else "h2c")
    ok(c.get("/a.txt"))                  # a working connection first
    if kind == "rapid_reset":
        # streams for static files and for the application, reset as soon as opened
        frames, limit = h2.rapid_reset_frames(c, ["/a.txt", "/t.fcgi?rr=1", "/hello.php"]), 50000
    elif kind == "continuation":
        frames, limit = h2.continuation_frames(c, "/a.txt"), 200000
    elif kind == "continuation_empty":
        frames, limit = h2.continuation_frames(c, "/a.txt", filled=False), 1000000
    elif kind == "ping":
        frames, limit = h2.ping_frames(), 1000000
    elif kind == "settings":
        frames, limit = h2.settings_frames(), 1000000
    else:
        frames, limit = h2.empty_data_frames(c, "/t.fcgi?echo=body"), 1000000
    logged = srv.error_log().count("HTTP/2")
    flood_and_check(srv, c, frames, limit, kind + " flood")
    try:       # bad input gets a log line: an operator under attack needs to see it
        helpers.wait_until(lambda: srv.error_log().count("HTTP/2") > logged, T)
    except helpers.Timeout:
        raise AssertionError("the %s ended the connection, but the error log has no line about it:\n%s"
                             % (kind, srv.error_log()[-1500:]))


def test_hpack_bomb(start_server, certs):
    """A 20 KB header block decoding to 80 MB: the stream gets an error status or is reset, or
    the connection closes; never memory growth or a crash."""
    srv = h2_server(start_server, certs)
    c = open_h2(srv)
    ok(c.get("/a.txt"))
    watch = RssWatch(srv.pid)
    prober = Prober(srv)
    try:
        sid = h2.hpack_bomb(c, "/t.fcgi", refs=20000, size=4000)
        st = c.streams[sid]
        c.wait(lambda: st.done or c.goaway, T, "an answer to the bomb", allow_eof=True)
        if c.goaway is not None or c.eof:
            c.wait_closed(CLOSE_DEADLINE)
        else:
            assert st.reset is not None or st.status in (400, 431), st.describe()
            assert ok(c.get("/a.txt")).body == A_TXT     # the connection still usable
    finally:
        errors = prober.stop()
        peak = watch.stop()
        c.close()
    assert errors == [], errors
    assert srv.running()
    with open_h2(srv) as c2:
        assert b"REQUEST_METHOD=GET" in ok(c2.get("/t.fcgi")).body
    if not sanitized(srv):
        assert peak < RSS_GROWTH_KB, "the server's VmRSS grew by %d kB" % peak
    check_quiet(srv, "the HPACK bomb")


def test_not_http2_after_alpn_h2(srv):
    """ALPN chose h2 and the client speaks HTTP/1.1: no HTTP/1.1 answer, the connection closed."""
    sock, alpn = h2.connect(srv.tls_port)
    assert alpn == "h2"
    with helpers.RawConn(sock, T) as rc:
        rc.send(helpers.request("GET", "/a.txt", host="localhost"))
        closed = rc.wait_closed(T)
    assert closed and b"HTTP/1.1 200" not in rc.buf, rc.buf[:200]
    assert srv.get("/a.txt").body == A_TXT


# ==== stop and reload ============================================================================

def test_graceful_stop_sends_goaway_and_finishes_streams(start_server, certs):
    srv = h2_server(start_server, certs)
    c = open_h2(srv)
    go = go_name()
    a = c.request("GET", "/wait.sphp?n=3000&go=" + go)
    c.wait(lambda: b"first" in c.streams[a].data, T, "the first part of the PHP answer")
    b = c.request("GET", "/mid.bin", slow=True)
    c.wait(lambda: c.streams[b].received >= h2.DEFAULT_WINDOW, T, "a window of the file")
    srv.signal(signal.SIGTERM)
    c.wait(lambda: c.goaway, T, "GOAWAY after SIGTERM")
    code, last, _ = c.goaway
    assert code == h2.NO_ERROR and last >= b, c.describe()
    # the streams in flight finish whole
    release(srv, go)
    bst = c.streams[b]
    bst.slow = False
    c.ack(b)
    assert ok(c.response(b)).body == MID
    assert ok(c.response(a)).body.split(b"\n", 1)[1] == b"the rest of the answer\n" * 3000
    clean(c)
    c.wait_closed(T)
    assert srv.wait_exit(T) == 0


def test_client_goaway_lets_its_streams_finish(start_server, certs):
    """A client that sends GOAWAY (it opens no more streams) still gets its streams answered
    whole; then the connection ends."""
    srv = h2_server(start_server, certs)
    with open_h2(srv) as c:
        go = go_name()
        php = c.request("GET", "/wait.sphp?n=100&go=" + go)
        static = c.request("GET", "/mid.bin", slow=True)
        c.wait(lambda: b"first" in c.streams[php].data and c.streams[static].received >= h2.DEFAULT_WINDOW,
               T, "both streams under way")
        c.send_goaway(h2.NO_ERROR, 0)
        release(srv, go)
        c.streams[static].slow = False
        c.ack(static)
        assert ok(c.response(static)).body == MID
        assert ok(c.response(php)).body.split(b"\n", 1)[1] == b"the rest of the answer\n" * 100
        clean(c)
        c.wait_closed(T)
    check_quiet(srv, "a client's GOAWAY")


def test_reload_with_streams_in_flight(start_server, certs):
    srv = h2_server(start_server, certs)
    c = open_h2(srv)
    go = go_name()
    php = c.request("GET", "/wait.sphp?n=500&go=" + go)
    c.wait(lambda: b"first" in c.streams[php].data, T, "the first part of the PHP answer")
    app = c.request("GET", "/s.sfcgi?big=4m", slow=True)
    stat = c.request("GET", "/mid.bin", slow=True)
    c.wait(lambda: all(c.streams[s].received >= h2.DEFAULT_WINDOW for s in (app, stat)), T,
           "a window of each answer")
    stop = threading.Event()
    results = {"ok": 0, "bad": []}

    def load(transport):
        conn = open_h2(srv, transport)
        try:
            for i in itertools.count():
                if stop.is_set():
                    break
                st = conn.get(("/a.txt", "/hello.php", "/t.fcgi")[i % 3], timeout=T)
                if st.refused_by_goaway:              # never processed: safe to retry elsewhere
                    conn.close()
                    conn = open_h2(srv, transport)
                    continue
                if st.status == 200 and st.reset is None:
                    results["ok"] += 1
                else:
                    results["bad"].append(st.describe())
                if conn.goaway is not None:
                    conn.close()
                    conn = open_h2(srv, transport)
        except Exception as e:  # noqa: BLE001
            results["bad"].append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=load, args=(t,)) for t in TRANSPORTS]
    for t in threads:
        t.start()
    try:
        helpers.wait_until(lambda: results["ok"] >= 20 or results["bad"], 20, what="load before the reload")
        assert srv.ctl("reload").returncode == 0
        srv.wait_for_log(r"configuration reloaded")
        before = results["ok"]
        helpers.wait_until(lambda: results["ok"] >= before + 20 or results["bad"], 20,
                           what="load after the reload")
        # the streams in flight before the reload finish whole
        release(srv, go)
        for s in (app, stat):
            c.streams[s].slow = False
            c.ack(s)
        assert ok(c.response(php)).body.split(b"\n", 1)[1] == b"the rest of the answer\n" * 500
        st = ok(c.response(app))
        assert st.received == 4 << 20 and is_pattern_at(st.body, 0)
        assert ok(c.response(stat)).body == MID
        if c.goaway is None:
            assert ok(c.get("/hello.php")).body == b"hello from php\n"
        else:
            assert c.goaway[0] == h2.NO_ERROR and c.goaway[1] >= stat, c.describe()
        clean(c)
    finally:
        stop.set()
        for t in threads:
            t.join(T + 5)
        c.close()
    assert results["bad"] == [], results["bad"][:5]
    check_quiet(srv, "the reload")
