"""Response compression (SPEC §7 "Compression", issue 12): gzip and brotli bodies that decode to
the original bytes — static files (coded on the fly up to 64 KiB, larger ones as they are or
from a precompressed .gz/.br sibling), PHP answers held whole (length-delimited) and streamed
(responseBufferLimit = 0, coded as they come and seen by the client before the application
writes the rest), fcgi_app's streamed output; Accept-Encoding negotiation; Vary and weak ETags;
the responses that are never coded (Range/206, 304, an existing Content-Encoding, types that do
not compress, short bodies, statuses other than 200/201/203/403/404/410) and HEAD getting GET's
header fields; `compress` and `compressMinBytes` per server and per site; clients that reset
mid-way and an application that dies mid-stream while its output is coded; the compression
counters of `ctl status --json` and the Prometheus page.

Decoding is Python's zlib (gzip) and Debian's python3-brotli; curl --compressed and requests are
the real clients. Streamed answers use a wait-on-file handshake with the PHP script (it flushes
its first part, then polls for a file the test creates), never a sleep.
"""
import itertools
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import time
import zlib

import brotli
import pytest
import requests

import helpers
import hostile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.environ.get("FCGIHOST_APPS", os.path.join(ROOT, "build", "tests", "apps"))
FCGI_APP = os.path.join(APPS, "fcgi_app")
PHP_CGI = "/usr/bin/php-cgi"

pytestmark = pytest.mark.skipif(not os.access(FCGI_APP, os.X_OK), reason="tests/apps/fcgi_app not built")

CODABLE = ("gzip", "br")
EXT = {"gzip": "gz", "br": "br"}   # the siblings' suffixes
TIMEOUT = 10.0


# ---- content --------------------------------------------------------------------------------

WORDS = ("request response server client header body stream coding gzip brotli window flush "
         "static dynamic process pool site host cache validator range length chunk connection "
         "application script output input buffer socket kernel page table index").split()


def prose(n, seed):
    """n bytes of deterministic text that compresses like prose (words, spaces, newlines)."""
    rnd = random.Random(seed)
    out, size = [], 0
    while size < n:
        w = rnd.choice(WORDS) + ("\n" if rnd.random() < 0.08 else " ")
        out.append(w)
        size += len(w)
    return "".join(out).encode()[:n]


def noisy(n, seed):
    """n bytes of text that compresses poorly (base64 of random bytes): long coded bodies."""
    import base64
    rnd = random.Random(seed)
    return base64.b64encode(bytes(rnd.getrandbits(8) for _ in range(n)))[:n]


SMALL = prose(20000, 1)              # in memory: coded on the fly
AT_64K = prose(65536, 2)             # the largest file kept in memory
OVER_64K = prose(65537, 3)           # read on the threadpool and coded whole (sendfile uncoded)
BIG = prose(100 << 10, 4)            # 100 KiB HTML page, no sibling
HUGE = prose(600 << 10, 15)          # more than one 256 KiB chunk: coded as it is read
BIG_PRE = prose(100 << 10, 5)        # 100 KiB with .gz and .br siblings
PRE = prose(30000, 6)                # with .gz and .br siblings
ONLY_GZ = prose(30000, 7)            # with a .gz sibling only
OLD = prose(30000, 8)                # with a .gz sibling older than the file
NOISY = noisy(60000, 9)              # coded on the fly to ~45 KB (longer than a small socket buffer)
NOISY_BIG = noisy(300000, 10)        # its .gz sibling (~225 KB) goes out with sendfile
PHP_TEXT = prose(30000, 11)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(random.Random(12).getrandbits(8) for _ in range(4000))
SHORT = prose(511, 13)
MIN = prose(512, 14)

PIECE = "part %d: the quick brown fox jumps over the lazy dog, line after line\n"


def part(i):
    """What stream.sphp writes as its i-th piece (flushed on its own)."""
    return (PIECE % i).encode() * 200


def stream_text(n):
    return b"".join(part(i) for i in range(1, n + 1))


def gz(data, level=9):
    """A gzip member with fixed header fields: bytes on-the-fly coding would never produce."""
    c = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9)
    return c.compress(data) + c.flush()


def br(data):
    return brotli.compress(data, quality=11)


PHP_ECHO = rb"""<?php
// echo.php?f=FILE: data/FILE as the answer; status=N, type=T, cl=1 (its Content-Length),
// gz=1 (the application codes it itself, with Content-Encoding: gzip)
$b = file_get_contents(__DIR__ . '/data/' . basename($_GET['f']));
if (isset($_GET['status'])) http_response_code((int)$_GET['status']);
if (isset($_GET['type'])) header('Content-Type: ' . $_GET['type']);
if (isset($_GET['gz'])) { $b = gzencode($b, 9); header('Content-Encoding: gzip'); }
if (isset($_GET['cl'])) header('Content-Length: ' . strlen($b));
echo $b;
"""

# Streamed (responseBufferLimit = 0): the first part (with the process id) is flushed, then the
# script waits for go/NAME (created by the test), then writes parts 2..n, each flushed. A bounded
# wait: without the file it gives up after 20 s.
PHP_STREAM = rb"""<?php
while (ob_get_level()) ob_end_flush();
function part($i) {
    return str_repeat(sprintf("part %d: the quick brown fox jumps over the lazy dog, line after line\n", $i), 200);
}
$n = (int)($_GET['n'] ?? 3);
echo "pid=", getmypid(), ";\n", part(1);
flush();
$go = __DIR__ . '/go/' . basename($_GET['go'] ?? 'none');
$deadline = microtime(true) + 20;
while (!file_exists($go)) {
    if (microtime(true) > $deadline) { echo "no go file\n"; exit; }
    usleep(2000);
}
for ($i = 2; $i <= $n; $i++) { echo part($i); flush(); }
"""

# Streamed, already coded by the application: gzencode output in three flushed pieces.
PHP_STREAM_CODED = rb"""<?php
while (ob_get_level()) ob_end_flush();
header('Content-Encoding: gzip');
$z = gzencode(file_get_contents(__DIR__ . '/data/text'), 9);
$n = intdiv(strlen($z), 3);
echo substr($z, 0, $n); flush();
echo substr($z, $n, $n); flush();
echo substr($z, 2 * $n); flush();
"""

FILES = {
    "small.txt": SMALL,
    "at64k.txt": AT_64K,
    "over64k.txt": OVER_64K,
    "big.html": BIG,
    "huge.txt": HUGE,
    "bigpre.html": BIG_PRE,
    "bigpre.html.gz": gz(BIG_PRE),
    "bigpre.html.br": br(BIG_PRE),
    "pre.css": PRE,
    "pre.css.gz": gz(PRE),
    "pre.css.br": br(PRE),
    "onlygz.js": ONLY_GZ,
    "onlygz.js.gz": gz(ONLY_GZ),
    "old.css": OLD,
    "old.css.gz": gz(OLD),
    "noisy.txt": NOISY,
    "noisybig.html": NOISY_BIG,
    "noisybig.html.gz": gz(NOISY_BIG, 6),
    "img.png": PNG,
    "short.txt": SHORT,
    "min.txt": MIN,
    "data.json": prose(5000, 15),
    "pic.svg": b"<svg xmlns='http://www.w3.org/2000/svg'>" + prose(5000, 16) + b"</svg>",
    "blob.bin": prose(5000, 17),
    "echo.php": PHP_ECHO,
    "stream.sphp": PHP_STREAM,
    "echo.sphp": PHP_ECHO,
    "coded.sphp": PHP_STREAM_CODED,
    "data/text": PHP_TEXT,
    "data/short": SHORT,
    "data/img": PNG,
    "go/.keep": b"",
    "t.fcgi": b"",                   # fcgi_app's scripts: the handlers want the files to exist
    "s.sfcgi": b"",
}


def app_ini():
    return f"""[fastcgi:php]
fullPath = {PHP_CGI}
maxInstances = 2

[fastcgi:app]
fullPath = {FCGI_APP}
maxInstances = 2

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
"""


def setup_tree(srv):
    """The siblings' times: not older than their files, except old.css.gz (an hour older)."""
    now = time.time()
    for name in FILES:
        os.utime(os.path.join(srv.root, name), (now, now))
    past = now - 3600
    os.utime(os.path.join(srv.root, "old.css.gz"), (past, past))


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory(files=FILES, extra=app_ini(), setup=setup_tree)


_names = itertools.count()


def go_name():
    return "go%d-%d" % (os.getpid(), next(_names))


def release(server, name):
    """Create go/NAME: the streamed script goes on."""
    with open(os.path.join(server.root, "go", name), "wb"):
        pass


# ---- decoding ---------------------------------------------------------------------------------

class Decoder:
    """Incremental decoder of one coded body; feed() returns what decoded so far."""

    def __init__(self, coding):
        self.coding = coding
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else None
        self.b = brotli.Decompressor() if coding == "br" else None
        self.out = b""

    def feed(self, data):
        if self.z:
            got = self.z.decompress(data)
            assert not self.z.unused_data, "bytes after the end of the gzip member"
        elif self.b:
            got = self.b.process(data)
        else:
            got = data
        self.out += got
        return got

    def finished(self):
        if self.z:
            return self.z.eof
        if self.b:
            return self.b.is_finished()
        return True


def decode(body, coding):
    """The whole body decoded; fails unless it is exactly one complete coded stream."""
    if coding is None:
        return body
    d = Decoder(coding)
    d.feed(body)
    assert d.finished(), "the %s stream is incomplete (%d coded bytes)" % (coding, len(body))
    return d.out


def fetch(server, path, ae=None, method="GET", headers=(), version="HTTP/1.1"):
    hs = list(headers)
    if ae is not None:
        hs.append(("Accept-Encoding", ae))
    return server.get(path, headers=hs, method=method, version=version)


def coding_of(r):
    return r.header("Content-Encoding")


def vary_has_ae(r):
    return any("accept-encoding" in [t.strip().lower() for t in v.split(",")]
               for v in r.header_all("Vary"))


def check_coded(r, coding, original):
    """r is a 200 coded with `coding` whose body decodes to `original`, with Vary."""
    assert r.status == 200, r
    assert coding_of(r) == coding, r.raw_head
    assert len(r.header_all("Content-Encoding")) == 1, r.raw_head
    assert vary_has_ae(r), r.raw_head
    got = decode(r.body, coding)
    assert got == original, "decoded %d byte(s), expected %d" % (len(got), len(original))
    assert len(r.body) < len(original)


def check_identity(r, original):
    assert r.status == 200, r
    assert coding_of(r) is None, r.raw_head
    assert r.body == original


# ---- chunked bodies read as they come -----------------------------------------------------------

def read_chunk(conn, deadline):
    """The next chunk's payload of a chunked body, None after the last chunk (trailers read)."""
    line = conn._line(deadline).strip()
    size_s = line.split(b";", 1)[0].strip()
    assert re.fullmatch(rb"[0-9a-fA-F]+", size_s), "bad chunk size line %r" % line
    size = int(size_s, 16)
    if size == 0:
        while conn._line(deadline).strip():
            pass
        return None
    conn._need(size + 2, deadline)
    data, rest = conn.buf[:size], conn.buf[size:]
    assert rest[:2] == b"\r\n", "chunk not followed by CRLF"
    conn.buf = rest[2:]
    return data


def read_until_decoded(conn, dec, want, timeout=TIMEOUT):
    """Read chunks until the decoded output holds `want` bytes; returns the coded bytes read."""
    deadline = time.monotonic() + timeout
    coded = b""
    while len(dec.out) < want:
        data = read_chunk(conn, deadline)
        assert data is not None, "the body ended after %d decoded byte(s), expected %d" % (len(dec.out), want)
        coded += data
        dec.feed(data)
    return coded


def read_rest(conn, dec, timeout=TIMEOUT):
    """Read the remaining chunks to the last one; returns the coded bytes read."""
    deadline = time.monotonic() + timeout
    coded = b""
    while True:
        data = read_chunk(conn, deadline)
        if data is None:
            return coded
        coded += data
        dec.feed(data)


def stream_request(path, ae, version="HTTP/1.1", method="GET"):
    hs = [("Accept-Encoding", ae)] if ae else []
    return helpers.request(method, path, hs, version=version)


# ==== bodies decode to the original bytes ====================================================

@pytest.mark.parametrize("coding", CODABLE)
@pytest.mark.parametrize("name,data", [("small.txt", SMALL), ("at64k.txt", AT_64K),
                                       ("data.json", None), ("pic.svg", None)])
def test_static_in_memory_decodes(srv, coding, name, data):
    data = data if data is not None else FILES[name]
    r = fetch(srv, "/" + name, coding)
    check_coded(r, coding, data)
    assert int(r.header("Content-Length")) == len(r.body)
    assert r.header("Transfer-Encoding") is None


@pytest.mark.parametrize("coding", CODABLE)
@pytest.mark.parametrize("name,data", [("over64k.txt", OVER_64K), ("big.html", BIG), ("huge.txt", HUGE)])
def test_static_over_64k_coded_as_read(srv, coding, name, data):
    """Files past 64 KiB with no sibling are coded as they are read, as nginx's gzip does: up to
    one 256 KiB chunk in one go (with its coded length), larger ones as a coded stream (chunked);
    without Accept-Encoding they go out as they are (sendfile), with Vary."""
    r = fetch(srv, "/" + name, coding)
    check_coded(r, coding, data)
    if len(data) <= 256 << 10:
        assert r.header("Content-Length") == str(len(r.body)), r.raw_head
    else:
        assert r.header("Content-Length") is None and r.header("Transfer-Encoding") == "chunked"
    assert r.header("ETag", "").startswith('W/"'), r.raw_head
    plain = fetch(srv, "/" + name)
    check_identity(plain, data)
    assert plain.header("Content-Length") == str(len(data)) and vary_has_ae(plain), plain.raw_head
    c = fetch(srv, "/" + name, coding, headers=[("If-None-Match", r.header("ETag"))])
    assert c.status == 304 and c.header("ETag") == r.header("ETag") and vary_has_ae(c), c.raw_head


@pytest.mark.parametrize("coding", CODABLE)
def test_static_over_64k_from_precompressed_sibling(srv, coding):
    sib = FILES["bigpre.html." + EXT[coding]]
    r = fetch(srv, "/bigpre.html", coding)
    assert r.status == 200 and coding_of(r) == coding, r.raw_head
    assert r.body == sib, "not the sibling's bytes as they are"
    assert r.header("Content-Length") == str(len(sib))
    assert decode(r.body, coding) == BIG_PRE
    assert r.header("Content-Type", "").startswith("text/html"), "the original's type"
    assert vary_has_ae(r)


@pytest.mark.parametrize("coding", CODABLE)
@pytest.mark.parametrize("cl", [False, True], ids=["no-cl", "app-cl"])
def test_php_length_delimited_decodes(srv, coding, cl):
    r = fetch(srv, "/echo.php?f=text" + ("&cl=1" if cl else ""), coding)
    check_coded(r, coding, PHP_TEXT)
    assert r.header("Content-Length") == str(len(r.body)), "the coded length, announced"
    assert r.header("Transfer-Encoding") is None


@pytest.mark.parametrize("coding", CODABLE)
def test_php_streamed_with_its_content_length(srv, coding):
    """Streamed with the application's Content-Length: the coded length is not known, so the
    answer is chunked (HTTP/1.1) and still decodes to all the application wrote."""
    r = fetch(srv, "/echo.sphp?f=text&cl=1", coding)
    assert r.status == 200 and coding_of(r) == coding, r.raw_head
    assert r.header("Content-Length") is None
    assert r.header("Transfer-Encoding", "").lower() == "chunked"
    assert decode(r.body, coding) == PHP_TEXT


@pytest.mark.parametrize("coding", CODABLE + ("identity",))
def test_php_streamed_progressive(srv, coding):
    """The first flushed part decodes at the client while the script still waits; the rest
    follows after the handshake; the whole decodes to what the script wrote."""
    go = go_name()
    with srv.connect(timeout=TIMEOUT) as c:
        c.send(stream_request("/stream.sphp?n=5&go=" + go, coding))
        _, status, _, headers, raw = c.read_head(TIMEOUT)
        r = helpers.Response("HTTP/1.1", status, "", headers, b"", raw)
        assert status == 200, raw
        assert r.header("Transfer-Encoding", "").lower() == "chunked", raw
        assert r.header("Content-Length") is None, raw
        assert vary_has_ae(r), raw
        expect_coding = None if coding == "identity" else coding
        assert coding_of(r) == expect_coding, raw
        dec = Decoder(expect_coding)
        first = b"pid="
        read_until_decoded(c, dec, len(first))
        pid_line = dec.out.split(b"\n", 1)[0]
        assert re.fullmatch(rb"pid=\d+;", pid_line), dec.out[:100]
        want_first = len(pid_line) + 1 + len(part(1))
        read_until_decoded(c, dec, want_first)
        assert dec.out == pid_line + b"\n" + part(1), "more than the first part before the handshake"
        assert not os.path.exists(os.path.join(srv.root, "go", go))
        release(srv, go)
        read_rest(c, dec)
        assert dec.finished(), "the coded stream has no end"
        assert dec.out == pid_line + b"\n" + stream_text(5)


@pytest.mark.parametrize("coding", CODABLE)
def test_fcgi_streamed_many_pieces(srv, coding):
    """fcgi_app writes 1 MiB in 64 KiB records, each flushed: one coded stream for all."""
    n = 1 << 20
    r = fetch(srv, "/s.sfcgi?big=1m&ctype=text/plain", coding)
    assert r.status == 200 and coding_of(r) == coding, r.raw_head
    assert r.header("Transfer-Encoding", "").lower() == "chunked"
    body = decode(r.body, coding)
    assert body == (b"0123456789abcdef" * (n // 16))


@pytest.mark.parametrize("coding", CODABLE)
def test_http10_streamed_ends_with_the_connection(srv, coding):
    go = go_name()
    release(srv, go)
    r = fetch(srv, "/stream.sphp?n=3&go=" + go, coding, version="HTTP/1.0")
    assert r.status == 200 and coding_of(r) == coding, r.raw_head
    assert r.header("Transfer-Encoding") is None and r.header("Content-Length") is None
    assert decode(r.body, coding).split(b"\n", 1)[1] == stream_text(3)


def test_pipelined_coded_and_identity_on_one_connection(srv):
    go = go_name()
    release(srv, go)
    reqs = (stream_request("/small.txt", "gzip") + stream_request("/echo.php?f=text", "br")
            + stream_request("/stream.sphp?n=2&go=" + go, "gzip") + stream_request("/small.txt", None)
            + stream_request("/pre.css", "br"))
    with srv.connect(timeout=TIMEOUT) as c:
        c.send(reqs)
        rs = c.read_responses(["GET"] * 5, timeout=TIMEOUT)
    check_coded(rs[0], "gzip", SMALL)
    check_coded(rs[1], "br", PHP_TEXT)
    assert coding_of(rs[2]) == "gzip" and decode(rs[2].body, "gzip").endswith(stream_text(2))
    check_identity(rs[3], SMALL)
    assert rs[4].body == FILES["pre.css.br"]


# ---- real clients -------------------------------------------------------------------------------

@pytest.mark.parametrize("path,original", [("/small.txt", SMALL), ("/echo.php?f=text", PHP_TEXT),
                                           ("/pre.css", PRE)])
def test_curl_compressed(srv, tmp_path, path, original):
    out, hdr = tmp_path / "out", tmp_path / "hdr"
    cp = subprocess.run(["curl", "-s", "--compressed", "-D", str(hdr), "-o", str(out), "-w",
                         "%{size_download}", srv.url(path)], capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 0, cp.stderr
    head = hdr.read_text().lower()
    assert re.search(r"^content-encoding: (br|gzip)\r?$", head, re.M), head
    assert out.read_bytes() == original
    assert int(cp.stdout) < len(original), "curl received the body uncoded"


@pytest.mark.parametrize("coding", CODABLE)
def test_curl_explicit_accept_encoding(srv, tmp_path, coding):
    """curl -H 'Accept-Encoding: X': curl leaves the body coded; Python decodes it."""
    out = tmp_path / "out"
    cp = subprocess.run(["curl", "-s", "-H", "Accept-Encoding: " + coding, "-o", str(out),
                         "-w", "%{content_type}", srv.url("/small.txt")], capture_output=True,
                        text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert decode(out.read_bytes(), coding) == SMALL


def test_requests_decodes(srv):
    go = go_name()
    release(srv, go)
    for path, original in (("/echo.php?f=text", PHP_TEXT), ("/small.txt", SMALL)):
        r = requests.get(srv.url(path), headers={"Accept-Encoding": "gzip"}, timeout=TIMEOUT)
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
        assert r.content == original
    r = requests.get(srv.url("/stream.sphp?n=4&go=" + go), headers={"Accept-Encoding": "gzip"},
                     timeout=TIMEOUT, stream=True)
    assert r.headers["Content-Encoding"] == "gzip"
    body = b"".join(r.iter_content(8192))
    assert body.split(b"\n", 1)[1] == stream_text(4)


# ==== Accept-Encoding negotiation ===============================================================

NEGOTIATION = [
    ("gzip", "gzip"),
    ("br", "br"),
    ("gzip, br", "br"),                       # brotli first at equal q
    ("br, gzip", "br"),
    ("gzip;q=0.8, br;q=0.8", "br"),
    ("br;q=0.5, gzip", "gzip"),
    ("gzip;q=1.0, br;q=0.999", "gzip"),
    ("gzip;q=0.001", "gzip"),
    ("GZIP", "gzip"),
    ("x-gzip", "gzip"),                       # answered as gzip
    ("deflate, gzip;q=0.5", "gzip"),
    ("deflate", None),
    ("identity", None),
    ("identity, gzip;q=0.5", "gzip"),
    ("*", "br"),
    ("*;q=0", None),
    ("*;q=0, gzip", "gzip"),
    ("gzip;q=0, *", "br"),
    ("br;q=0, *", "gzip"),
    ("gzip;q=0", None),
    ("br;q=0, gzip;q=0", None),
    ("", None),
    (" , ,", None),
    ("gzip ; q=0.5 , br ; q=0.4", "gzip"),
    # malformed fields: identity, compression is never required
    ("gzip;q=abc", None),
    ("gzip;q=1.5", None),
    ("br;q=2", None),
    ("gzip;q=", None),
    ("gzip;q=0.0001", None),
    ("br;q=-1, gzip", None),
]


@pytest.mark.parametrize("ae,expect", NEGOTIATION, ids=[repr(a) for a, _ in NEGOTIATION])
def test_accept_encoding(srv, ae, expect):
    r = fetch(srv, "/small.txt", ae)
    assert r.status == 200
    assert coding_of(r) == expect, "Accept-Encoding %r: %r" % (ae, r.raw_head)
    assert vary_has_ae(r), r.raw_head
    assert decode(r.body, expect) == SMALL


def test_no_accept_encoding_is_identity(srv):
    r = fetch(srv, "/small.txt")
    check_identity(r, SMALL)
    assert vary_has_ae(r)


def test_compress_gzip_only(start_server):
    srv = start_server(files=FILES, server_opts={"compress": "gzip"}, extra=app_ini(), setup=setup_tree)
    for ae, expect in (("br", None), ("gzip, br", "gzip"), ("*", "gzip"), ("br;q=1, gzip;q=0.1", "gzip"),
                       ("gzip;q=0, *", None)):
        r = fetch(srv, "/small.txt", ae)
        assert coding_of(r) == expect, "%r: %r" % (ae, r.raw_head)
        assert decode(r.body, expect) == SMALL
        assert vary_has_ae(r)
    # the .br sibling is not offered either
    r = fetch(srv, "/pre.css", "br, gzip")
    assert coding_of(r) == "gzip" and r.body == FILES["pre.css.gz"]
    r = fetch(srv, "/echo.php?f=text", "br, gzip")
    check_coded(r, "gzip", PHP_TEXT)


def sites_ini(srv_dir_a, srv_dir_b):
    return f"""[site:plain]
hosts = plain.test
root = {srv_dir_a}
compress = off

[site:gzonly]
hosts = gz.test
root = {srv_dir_b}
compress = gzip
compressMinBytes = 0

[site:main]
hosts = *
root = {srv_dir_b}
"""


def test_compress_per_site(start_server, tmp_path):
    """compress = off on one site, gzip on another: each site answers by its own keys."""
    www = tmp_path / "www"
    for name, data in (("small.txt", SMALL), ("pre.css", PRE), ("pre.css.gz", FILES["pre.css.gz"]),
                       ("pre.css.br", FILES["pre.css.br"]), ("tiny.txt", b"tiny text\n" * 5)):
        p = www / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
    srv = start_server(server_opts={"root": None}, extra=sites_ini(www, www))

    def get(host, path, ae):
        return fetch(srv, path, ae, headers=[("Host", host)])

    # compress = off: nothing coded, no Vary, siblings not used
    for path in ("/small.txt", "/pre.css"):
        r = get("plain.test", path, "br, gzip")
        assert r.status == 200 and coding_of(r) is None, r.raw_head
        assert not vary_has_ae(r), r.raw_head
        assert r.body == (SMALL if path == "/small.txt" else PRE)
    # compress = gzip, compressMinBytes = 0
    r = get("gz.test", "/small.txt", "br, gzip")
    check_coded(r, "gzip", SMALL)
    r = get("gz.test", "/tiny.txt", "gzip")
    assert coding_of(r) == "gzip" and decode(r.body, "gzip") == b"tiny text\n" * 5
    # the default site: the [server] defaults (gzip br, 512)
    r = get("other.test", "/small.txt", "br, gzip")
    check_coded(r, "br", SMALL)
    r = get("other.test", "/tiny.txt", "gzip")
    assert coding_of(r) is None


# ==== Vary and validators =======================================================================

def test_vary_on_identity_answers_of_codable_responses(srv):
    """Vary: Accept-Encoding whether coded or not (the answer depends on the field)."""
    go = go_name()
    release(srv, go)
    for path in ("/small.txt", "/echo.php?f=text", "/stream.sphp?n=2&go=" + go,
                 "/s.sfcgi?big=10k&ctype=text/plain", "/pre.css"):
        for ae in (None, "identity", "deflate"):
            r = fetch(srv, path, ae)
            assert r.status == 200 and coding_of(r) is None, (path, ae, r.raw_head)
            assert vary_has_ae(r), "%s (Accept-Encoding %r): no Vary in %r" % (path, ae, r.raw_head)


@pytest.mark.parametrize("ae", [None, "identity", "deflate"])
def test_vary_when_a_large_file_has_siblings(srv, ae):
    """A file past 64 KiB is sent uncoded, but with .gz/.br siblings its URL answers gzip and br
    clients differently: the identity answer needs Vary too (RFC 9110 12.5.5), or a shared
    cache serves it for every request of the URL."""
    assert coding_of(fetch(srv, "/bigpre.html", "gzip")) == "gzip"
    r = fetch(srv, "/bigpre.html", ae)
    check_identity(r, BIG_PRE)
    assert vary_has_ae(r), "no Vary in %r" % r.raw_head


def test_no_vary_on_what_is_never_coded(srv):
    for path in ("/img.png", "/blob.bin", "/echo.php?f=img&type=image/png"):
        r = fetch(srv, path, "gzip, br")
        assert r.status == 200 and coding_of(r) is None, r.raw_head
        assert not vary_has_ae(r), r.raw_head


@pytest.mark.parametrize("coding", CODABLE)
def test_weak_etag_and_conditional_get(srv, coding):
    plain = fetch(srv, "/small.txt")
    strong = plain.header("ETag")
    assert strong and strong.startswith('"'), plain.raw_head
    r = fetch(srv, "/small.txt", coding)
    assert coding_of(r) == coding
    assert r.header("ETag") == "W/" + strong, "the coded representation's ETag is weak"
    for inm in ("W/" + strong, strong, '"nope", W/' + strong):
        c = fetch(srv, "/small.txt", coding, headers=[("If-None-Match", inm)])
        assert c.status == 304, (inm, c.raw_head)
        assert c.body == b"" and coding_of(c) is None
    c = fetch(srv, "/small.txt", coding, headers=[("If-None-Match", '"other"')])
    assert c.status == 200 and decode(c.body, coding) == SMALL


@pytest.mark.parametrize("coding", CODABLE)
def test_304_carries_the_validator_and_vary_of_its_200(srv, coding):
    """RFC 9110 15.4.5: a 304 carries the ETag and Vary the 200 would have carried (as the
    precompressed siblings' 304s do), so that a cache can freshen the coded response it holds."""
    r = fetch(srv, "/small.txt", coding)
    c = fetch(srv, "/small.txt", coding, headers=[("If-None-Match", r.header("ETag"))])
    assert c.status == 304, c.raw_head
    assert c.header("ETag") == r.header("ETag"), \
        "304 ETag %r, its 200 had %r" % (c.header("ETag"), r.header("ETag"))
    assert vary_has_ae(c), "304 without the Vary of its 200: %r" % c.raw_head


@pytest.mark.parametrize("coding", CODABLE)
def test_precompressed_validators(srv, coding):
    r = fetch(srv, "/pre.css", coding)
    etag = r.header("ETag")
    assert etag and etag.startswith('W/"'), r.raw_head
    c = fetch(srv, "/pre.css", coding, headers=[("If-None-Match", etag)])
    assert c.status == 304 and c.body == b"" and coding_of(c) is None
    assert c.header("ETag") == etag and vary_has_ae(c)


# ==== never coded ===============================================================================

@pytest.mark.parametrize("path,original", [("/small.txt", SMALL), ("/pre.css", PRE),
                                           ("/bigpre.html", BIG_PRE), ("/big.html", BIG)])
def test_range_is_never_coded(srv, path, original):
    r = fetch(srv, path, "gzip, br", headers=[("Range", "bytes=100-1099")])
    assert r.status == 206, r.raw_head
    assert coding_of(r) is None, r.raw_head
    assert r.body == original[100:1100]
    assert r.header("Content-Range") == "bytes 100-1099/%d" % len(original)


def test_304_is_never_coded(srv):
    r = fetch(srv, "/small.txt")
    c = fetch(srv, "/small.txt", "gzip", headers=[("If-Modified-Since", r.header("Last-Modified"))])
    assert c.status == 304 and coding_of(c) is None and c.body == b""
    assert c.header("Content-Length") is None and c.header("Transfer-Encoding") is None


def _head_matches_get(srv, path, ae):
    g = fetch(srv, path, ae)
    h = fetch(srv, path, ae, method="HEAD")
    assert g.status == h.status == 200, (g.raw_head, h.raw_head)
    assert h.body == b""
    for name in ("Content-Encoding", "Content-Type", "ETag", "Last-Modified"):
        assert h.header(name) == g.header(name), "%s: HEAD %r, GET %r" % (name, h.header(name), g.header(name))
    assert vary_has_ae(h) == vary_has_ae(g), (h.raw_head, g.raw_head)
    if h.header("Content-Length") is not None:
        assert h.header("Content-Length") == g.header("Content-Length") == str(len(g.body)), \
            "HEAD Content-Length %r, GET sent %d byte(s)" % (h.header("Content-Length"), len(g.body))
    return g, h


@pytest.mark.parametrize("coding", CODABLE)
@pytest.mark.parametrize("path", ["/small.txt", "/pre.css", "/bigpre.html", "/big.html",
                                  "/t.fcgi?big=30k&ctype=text/plain"])
def test_head_gets_the_fields_of_get(srv, coding, path):
    g, h = _head_matches_get(srv, path, coding)
    if h.header("Content-Length") is None:
        # a large file coded as it is read: its coded length is known only once it is coded,
        # which a HEAD does not do (RFC 9110 §9.3.2 lets it leave the field out)
        assert path == "/big.html" and coding_of(g) == coding, (h.raw_head, g.raw_head)


@pytest.mark.parametrize("coding", CODABLE)
@pytest.mark.parametrize("path", ["/echo.php?f=text", "/echo.php?f=text&cl=1"])
def test_head_php_gets_the_fields_of_get(srv, coding, path):
    """PHP sends no body to a HEAD request: the server cannot code it, but must not announce
    a Content-Length other than GET's, and keeps Content-Encoding and Vary (SPEC §7)."""
    _head_matches_get(srv, path, coding)


@pytest.mark.parametrize("coding", CODABLE)
def test_head_php_streamed(srv, coding):
    go = go_name()
    release(srv, go)
    g = fetch(srv, "/stream.sphp?n=2&go=" + go, coding)
    h = fetch(srv, "/stream.sphp?n=2&go=" + go, coding, method="HEAD")
    assert coding_of(g) == coding
    assert coding_of(h) == coding and vary_has_ae(h), h.raw_head
    assert h.header("Content-Length") is None, h.raw_head


@pytest.mark.parametrize("coding", CODABLE)
def test_existing_content_encoding_untouched(srv, coding):
    """An answer that already has a Content-Encoding goes out as it is: gzip once, whatever the
    client prefers, no Vary added, its own Content-Length kept."""
    for path in ("/echo.php?f=text&gz=1", "/echo.php?f=text&gz=1&cl=1", "/coded.sphp"):
        plain = fetch(srv, path)            # no Accept-Encoding: the application's bytes as sent
        r = fetch(srv, path, coding)
        assert r.status == 200 and r.header_all("Content-Encoding") == ["gzip"], r.raw_head
        assert not vary_has_ae(r)
        assert r.body == plain.body, "not the application's bytes"
        assert decode(r.body, "gzip") == PHP_TEXT, "coded twice"
        if "sphp" not in path:
            assert r.header("Content-Length") == str(len(r.body))


@pytest.mark.parametrize("path", ["/img.png", "/blob.bin", "/echo.php?f=img&type=image/png",
                                  "/t.fcgi?big=30k", "/s.sfcgi?big=30k"])
def test_types_that_do_not_compress(srv, path):
    r = fetch(srv, path, "gzip, br")
    assert r.status == 200 and coding_of(r) is None, r.raw_head


def test_compressible_types(srv):
    for path, ctype in (("/data.json", "application/json"), ("/pic.svg", "image/svg+xml"),
                        ("/echo.php?f=text&type=application/problem%2Bjson", None),
                        ("/echo.php?f=text&type=application/xml;%20charset=utf-8", None),
                        ("/t.fcgi?big=30k&ctype=text/css", None)):
        r = fetch(srv, path, "gzip")
        assert coding_of(r) == "gzip", (path, r.raw_head)
        if ctype:
            assert r.header("Content-Type").startswith(ctype)


def test_under_compress_min_bytes(srv):
    r = fetch(srv, "/short.txt", "gzip")
    check_identity(r, SHORT)
    r = fetch(srv, "/min.txt", "gzip")
    check_coded(r, "gzip", MIN)
    r = fetch(srv, "/echo.php?f=short", "gzip")
    check_identity(r, SHORT)


def test_compress_min_bytes_zero(start_server):
    srv = start_server(files={"t.txt": b"tiny\n" * 3, "e.txt": b""},
                       server_opts={"compressMinBytes": 0})
    r = fetch(srv, "/t.txt", "gzip")
    assert coding_of(r) == "gzip" and decode(r.body, "gzip") == b"tiny\n" * 3
    r = fetch(srv, "/e.txt", "br")
    assert r.status == 200 and decode(r.body, coding_of(r)) == b""
    r = fetch(srv, "/missing.txt", "gzip")     # the server's own 404 page is text too
    assert r.status == 404 and coding_of(r) == "gzip"
    assert decode(r.body, "gzip").startswith(b"404 Not Found")


@pytest.mark.parametrize("status", [201, 203, 403, 404, 410])
def test_codable_statuses(srv, status):
    r = fetch(srv, "/echo.php?f=text&status=%d" % status, "gzip")
    assert r.status == status and coding_of(r) == "gzip", r.raw_head
    assert decode(r.body, "gzip") == PHP_TEXT


@pytest.mark.parametrize("status", [202, 300, 302, 400, 401, 409, 500, 503])
def test_other_statuses_never_coded(srv, status):
    r = fetch(srv, "/echo.php?f=text&status=%d" % status, "gzip, br")
    assert r.status == status and coding_of(r) is None, r.raw_head
    assert not vary_has_ae(r)
    assert r.body == PHP_TEXT


# ==== precompressed siblings ====================================================================

@pytest.mark.parametrize("coding", CODABLE)
def test_precompressed_sent_as_is(srv, coding):
    r = fetch(srv, "/pre.css", coding)
    assert r.status == 200 and coding_of(r) == coding
    assert r.body == FILES["pre.css." + EXT[coding]]
    assert r.header("Content-Type", "").startswith("text/css")
    assert decode(r.body, coding) == PRE


def test_precompressed_follows_q_values(srv):
    r = fetch(srv, "/pre.css", "gzip, br;q=0.5")
    assert coding_of(r) == "gzip" and r.body == FILES["pre.css.gz"]
    r = fetch(srv, "/pre.css", "gzip;q=0.5, br")
    assert coding_of(r) == "br" and r.body == FILES["pre.css.br"]
    # only a .gz sibling: a br client gets the file coded on the fly
    r = fetch(srv, "/onlygz.js", "br")
    check_coded(r, "br", ONLY_GZ)
    r = fetch(srv, "/onlygz.js", "br, gzip")
    assert coding_of(r) == "gzip" and r.body == FILES["onlygz.js.gz"]


def test_older_sibling_ignored(srv):
    r = fetch(srv, "/old.css", "gzip")
    check_coded(r, "gzip", OLD)
    assert r.body != FILES["old.css.gz"], "the sibling older than its file was sent"


def test_sibling_itself_is_not_recoded(srv):
    r = fetch(srv, "/pre.css.gz", "gzip, br")
    assert r.status == 200 and coding_of(r) is None and r.body == FILES["pre.css.gz"]


# ==== hostile clients and applications ===========================================================

def quiet(srv, what):
    """Within a deadline: the server runs, holds no client connection, no FastCGI process busy."""
    last = {}

    def ok():
        st = srv.status_json()
        busy = sum(p["processes"].get("busy", 0) + p["processes"].get("draining", 0)
                   for p in st["pools"])
        last.update(connections=st["server"]["connections"], busy=busy)
        return st["server"]["connections"] == 0 and busy == 0
    try:
        helpers.wait_until(ok, 15, interval=0.02, what="a quiet server")
    except helpers.Timeout:
        assert srv.running(), "the server died after %s" % what
        raise AssertionError("after %s the server is not quiet: %s" % (what, last))


def still_serves(srv):
    assert srv.running()
    check_coded(fetch(srv, "/small.txt", "gzip"), "gzip", SMALL)
    check_coded(fetch(srv, "/echo.php?f=text", "br"), "br", PHP_TEXT)


@pytest.mark.parametrize("coding", CODABLE)
@pytest.mark.parametrize("mode", ["rst", "fin"])
def test_client_leaves_mid_streamed_coded_php(srv, coding, mode):
    """The client reads the first coded part and goes; the script then writes the rest to a
    client that is gone: the server drains it, the process goes back to its pool."""
    go = go_name()
    c = hostile.HostileConn(srv.host, srv.port, timeout=TIMEOUT)
    try:
        c.send(stream_request("/stream.sphp?n=40&go=" + go, coding))
        status, at = c.wait_final_head(TIMEOUT)
        assert status == 200
        c.wait_body_bytes(64, TIMEOUT)
        c.leave(mode)
    finally:
        c.close()
    release(srv, go)
    quiet(srv, "a client left a streamed %s answer (%s)" % (coding, mode))
    still_serves(srv)


@pytest.mark.parametrize("path,coding", [("/noisy.txt", "gzip"), ("/noisy.txt", "br"),
                                         ("/noisybig.html", "gzip")],
                         ids=["on-the-fly-gzip", "on-the-fly-br", "sibling-sendfile"])
def test_client_resets_after_headers_of_coded_static(srv, path, coding):
    """A small receive window holds the coded body in the server; the client resets after the
    head."""
    c = hostile.HostileConn(srv.host, srv.port, rcvbuf=4096, timeout=TIMEOUT)
    try:
        c.send(stream_request(path, coding))
        status, at = c.wait_final_head(TIMEOUT)
        assert status == 200
        head = bytes(c.data[:at]).lower()
        assert b"content-encoding: " + coding.encode() in head, head
        c.leave("rst")
    finally:
        c.close()
    quiet(srv, "a client reset a coded static answer")
    still_serves(srv)


def _parse_cut_chunked(data):
    """Chunk payloads of a chunked body that may be cut; returns (payload, ended)."""
    out, pos = b"", 0
    while True:
        nl = data.find(b"\r\n", pos)
        if nl < 0:
            return out, False
        size = int(data[pos:nl].split(b";")[0], 16)
        if size == 0:
            return out, True
        if len(data) < nl + 2 + size + 2:
            return out + data[nl + 2:nl + 2 + size], False
        out += data[nl + 2:nl + 2 + size]
        pos = nl + 2 + size + 2


@pytest.mark.parametrize("coding", CODABLE + ("identity",))
def test_application_dies_mid_stream(srv, coding):
    """The script flushes its first part, then is killed: coded or not, the response is cut the
    same way (the connection closes without the last chunk), what arrived decodes to a prefix of
    what the script wrote, and the server goes on."""
    go = go_name()
    logged = srv.error_log().count("closed the connection mid-request")
    with srv.connect(timeout=TIMEOUT) as c:
        c.send(stream_request("/stream.sphp?n=5&go=" + go, coding))
        _, status, _, headers, raw = c.read_head(TIMEOUT)
        assert status == 200
        r = helpers.Response("HTTP/1.1", status, "", headers, b"", raw)
        expect_coding = None if coding == "identity" else coding
        assert coding_of(r) == expect_coding
        dec = Decoder(expect_coding)
        read_until_decoded(c, dec, len(b"pid=") + 1)
        while b";" not in dec.out:
            read_until_decoded(c, dec, len(dec.out) + 1)
        pid = int(re.match(rb"pid=(\d+);", dec.out).group(1))
        os.kill(pid, signal.SIGKILL)
        assert c.wait_closed(TIMEOUT), "the cut response's connection stays open"
        payload, ended = _parse_cut_chunked(c.buf)
        assert not ended, "a cut response must not end with the last chunk"
        dec.feed(payload)
        if expect_coding:
            assert not dec.finished(), "a cut coded body must not look complete"
        whole = dec.out.split(b"\n", 1)
        assert len(whole) == 2 and stream_text(5).startswith(whole[1])
    helpers.wait_until(lambda: srv.error_log().count("closed the connection mid-request") > logged,
                       TIMEOUT, what="the error log line of the process that died")
    release(srv, go)
    quiet(srv, "the application died mid-stream (%s)" % coding)
    still_serves(srv)


# ==== counters ===================================================================================

def compression(srv):
    return srv.status_json()["server"]["compression"]


def prometheus(srv):
    r = fetch(srv, "/fcgihost-status?format=prometheus")
    assert r.status == 200 and coding_of(r) is None
    out = {}
    for line in r.text.splitlines():
        m = re.match(r"^(fcgihost_compressed_responses_total|fcgihost_compression_bytes_total)"
                     r"(\{direction=\"(in|out)\"\})? (\d+)$", line)
        if m:
            out[m.group(1) + (":" + m.group(3) if m.group(3) else "")] = int(m.group(4))
    return out


def test_counters(start_server):
    srv = start_server(files=FILES, extra=app_ini(), setup=setup_tree)
    assert compression(srv) == {"responses": 0, "bytes_in": 0, "bytes_out": 0}
    assert prometheus(srv) == {"fcgihost_compressed_responses_total": 0,
                               "fcgihost_compression_bytes_total:in": 0,
                               "fcgihost_compression_bytes_total:out": 0}
    expect = {"responses": 0, "bytes_in": 0, "bytes_out": 0}

    def coded(r, original):
        expect["responses"] += 1
        expect["bytes_in"] += len(original)
        expect["bytes_out"] += len(r.body)
        assert compression(srv) == expect

    r = fetch(srv, "/small.txt", "gzip")
    coded(r, SMALL)
    r = fetch(srv, "/small.txt", "br")
    coded(r, SMALL)
    r = fetch(srv, "/echo.php?f=text", "gzip")
    coded(r, PHP_TEXT)
    go = go_name()
    release(srv, go)
    r = fetch(srv, "/stream.sphp?n=3&go=" + go, "br")
    coded(r, decode(r.body, "br"))
    r = fetch(srv, "/big.html", "gzip")
    coded(r, BIG)
    # not coded on the fly: nothing counted
    for path, ae in (("/small.txt", None), ("/small.txt", "identity"), ("/pre.css", "gzip"),
                     ("/bigpre.html", "br"), ("/big.html", None), ("/img.png", "gzip"),
                     ("/short.txt", "gzip"), ("/echo.php?f=text&gz=1", "gzip")):
        fetch(srv, path, ae)
        assert compression(srv) == expect, "%s (%r) moved the counters" % (path, ae)
    assert expect["bytes_out"] < expect["bytes_in"]
    assert prometheus(srv) == {"fcgihost_compressed_responses_total": expect["responses"],
                               "fcgihost_compression_bytes_total:in": expect["bytes_in"],
                               "fcgihost_compression_bytes_total:out": expect["bytes_out"]}
