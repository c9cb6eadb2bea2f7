"""Static files (SPEC §3): exact bytes, Content-Type, conditional requests, single Range, index files,
/dir -> /dir/, no listings, dot-files, traversal, symlinks, large files through sendfile."""
import hashlib
import os
import socket
import time

import pytest

import helpers
from helpers import request, check_common_headers

ONE_K = bytes((i * 13 + 5) % 256 for i in range(1024))
TWO_MB = hashlib.sha256(b"seed").digest() * (2 * 1024 * 1024 // 32)
BIG = 50 * 1024 * 1024
SECRET = b"OUTSIDE-ROOT-SECRET-7f3a\n"

FILES = {
    "1k.txt": ONE_K,
    "page.html": b"<html><body>page</body></html>\n",
    "style.css": b"body { color: red }\n",
    "app.js": b"console.log(1);\n",
    "img.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
    "blob.qqzzunknown": b"who knows\n",
    "dir/index.html": b"<html>dir index</html>\n",
    "dir/file.txt": b"in dir\n",
    "dir/.env": b"SECRET=1\n",
    "noindex/alpha-entry.txt": b"a\n",
    "noindex/beta-entry.txt": b"b\n",
    ".hidden": b"hidden\n",
    ".git/config": b"[core]\n",
    "2mb.bin": TWO_MB,
    "big.bin": ("sparse", BIG),
    "link_in": ("symlink", "1k.txt"),
    "link_in_abs": None,  # made in setup (absolute path inside root)
    "link_dir_in": ("symlink", "dir"),
    "link_out": ("symlink", "/etc/passwd"),
    "link_out_rel": ("symlink", "../outside/secret.txt"),
    "link_dir_out": ("symlink", "../outside"),
    "dir/link_up": ("symlink", "../../outside/secret.txt"),
}


def setup_tree(srv):
    outside = os.path.join(srv.tmp, "outside")
    os.makedirs(outside, exist_ok=True)
    with open(os.path.join(outside, "secret.txt"), "wb") as f:
        f.write(SECRET)
    os.symlink(os.path.join(srv.root, "dir", "file.txt"), os.path.join(srv.root, "link_in_abs"))


def files():
    return {k: v for k, v in FILES.items() if v is not None}


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory(files=files(), setup=setup_tree)


@pytest.fixture(scope="module")
def srv_follow(module_server_factory):
    return module_server_factory(files=files(), setup=setup_tree, server_opts={"symlinks": "follow"})


def test_exact_bytes(srv):
    r = srv.get("/1k.txt")
    assert r.status == 200 and r.body == ONE_K
    assert r.header("Content-Length") == "1024"
    check_common_headers(r)


@pytest.mark.parametrize("path,types", [
    ("/1k.txt", ["text/plain"]),
    ("/page.html", ["text/html"]),
    ("/style.css", ["text/css"]),
    ("/app.js", ["application/javascript", "text/javascript"]),
    ("/img.png", ["image/png"]),
    ("/blob.qqzzunknown", ["application/octet-stream"]),
    ("/dir/", ["text/html"]),
])
def test_content_type(srv, path, types):
    r = srv.get(path)
    assert r.status == 200
    ct = (r.header("Content-Type") or "").split(";")[0].strip().lower()
    assert ct in types, "Content-Type %r for %s" % (r.header("Content-Type"), path)


def test_last_modified_and_if_modified_since(srv):
    r = srv.get("/1k.txt")
    lm = r.header("Last-Modified")
    assert lm, r.raw_head
    ts = helpers.parse_http_date(lm)
    assert abs(ts - os.stat(os.path.join(srv.root, "1k.txt")).st_mtime) < 2
    with srv.connect() as c:
        res = helpers.exchange(c, request("GET", "/1k.txt", {"If-Modified-Since": lm})
                               + request("GET", "/page.html"), ("GET", "GET"))
    assert res.error is None, res
    nm, after = res.responses
    assert nm.status == 304 and nm.body == b""
    assert nm.header("ETag") == r.header("ETag"), "a 304 must carry the ETag a 200 would"
    check_common_headers(nm)
    # No body went out with the 304: the next response parses cleanly.
    assert after.status == 200 and after.body.startswith(b"<html>")
    # An older date: modified since then -> 200 with the body.
    old = helpers.http_date(ts - 3600)
    r2 = srv.get("/1k.txt", {"If-Modified-Since": old})
    assert r2.status == 200 and r2.body == ONE_K
    # A garbage date is ignored.
    r3 = srv.get("/1k.txt", {"If-Modified-Since": "yesterday-ish"})
    assert r3.status == 200 and r3.body == ONE_K


def test_etag_and_if_none_match(srv):
    r = srv.get("/1k.txt")
    etag = r.header("ETag")
    assert etag and etag.strip('W/').startswith('"') and etag.endswith('"'), etag
    assert srv.get("/page.html").header("ETag") != etag
    r2 = srv.get("/1k.txt", {"If-None-Match": etag})
    assert r2.status == 304 and r2.body == b""
    r3 = srv.get("/1k.txt", {"If-None-Match": '"nope", ' + etag})
    assert r3.status == 304
    r4 = srv.get("/1k.txt", {"If-None-Match": '"something-else"'})
    assert r4.status == 200 and r4.body == ONE_K
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    r5 = srv.get("/1k.txt", {"If-None-Match": '"something-else"', "If-Modified-Since": r.header("Last-Modified")})
    assert r5.status == 200
    # HEAD with a matching ETag -> 304 as well.
    r6 = srv.get("/1k.txt", {"If-None-Match": etag}, method="HEAD")
    assert r6.status == 304


def test_etag_changes_when_file_changes(srv):
    p = os.path.join(srv.root, "changing.txt")
    with open(p, "wb") as f:
        f.write(b"one\n")
    os.utime(p, (time.time() - 100, time.time() - 100))
    e1 = srv.get("/changing.txt").header("ETag")
    with open(p, "wb") as f:
        f.write(b"two two\n")
    # The server may cache file metadata briefly (it does, for a second): poll, with a deadline.
    r = helpers.wait_until(lambda: (lambda x: x if x.status == 200 else None)(
        srv.get("/changing.txt", {"If-None-Match": e1})), 3, interval=0.1, what="the new content")
    assert r.body == b"two two\n"
    assert r.header("ETag") != e1


@pytest.mark.parametrize("rng,start,end", [
    ("bytes=0-99", 0, 99),
    ("bytes=-10", 1014, 1023),
    ("bytes=500-", 500, 1023),
    ("bytes=1000-2000", 1000, 1023),
    ("bytes=1023-1023", 1023, 1023),
    ("bytes=0-0", 0, 0),
])
def test_single_range(srv, rng, start, end):
    r = srv.get("/1k.txt", {"Range": rng})
    assert r.status == 206, (rng, r)
    assert r.header("Content-Range") == "bytes %d-%d/1024" % (start, end)
    assert r.body == ONE_K[start:end + 1]
    assert r.header("Content-Length") == str(end - start + 1)
    check_common_headers(r)


def test_range_head(srv):
    r = srv.get("/1k.txt", {"Range": "bytes=0-99"}, method="HEAD")
    assert r.status in (200, 206)
    if r.status == 206:
        assert r.header("Content-Length") == "100"


@pytest.mark.parametrize("rng", ["bytes=999999-", "bytes=1024-", "bytes=1024-2000"])
def test_range_unsatisfiable(srv, rng):
    r = srv.get("/1k.txt", {"Range": rng})
    assert r.status == 416, r
    assert r.header("Content-Range") == "bytes */1024"
    check_common_headers(r)


@pytest.mark.parametrize("rng", ["bytes=0-1,5-6", "bytes=0-99,200-299"])
def test_multiple_ranges(srv, rng):
    r = srv.get("/1k.txt", {"Range": rng})
    if r.status == 200:
        assert r.body == ONE_K
    else:
        assert r.status == 206
        assert (r.header("Content-Type") or "").startswith("multipart/byteranges")


@pytest.mark.parametrize("rng", ["bytes=abc", "items=0-5", "bytes=5-1"])
def test_invalid_range_ignored(srv, rng):
    # An invalid Range field is ignored (RFC 9110 14.2): full content.
    r = srv.get("/1k.txt", {"Range": rng})
    assert r.status in (200, 416)
    if r.status == 200:
        assert r.body == ONE_K


def test_if_range(srv):
    r = srv.get("/1k.txt")
    etag = r.header("ETag")
    r2 = srv.get("/1k.txt", {"Range": "bytes=0-9", "If-Range": etag})
    assert r2.status == 206 and r2.body == ONE_K[:10]
    # The validator does not match: the whole (changed) representation, not a piece of it.
    r3 = srv.get("/1k.txt", {"Range": "bytes=0-9", "If-Range": '"stale-etag"'})
    assert r3.status == 200 and r3.body == ONE_K


def test_index_file(srv):
    r = srv.get("/dir/")
    assert r.status == 200 and r.body == b"<html>dir index</html>\n"


@pytest.mark.parametrize("path,want", [("/dir", "/dir/"), ("/dir?x=1&y=2", "/dir/?x=1&y=2"),
                                       ("/link_dir_in", "/link_dir_in/")])
def test_directory_redirect(srv, path, want):
    r = srv.get(path)
    assert r.status == 301, r
    loc = r.header("Location")
    assert loc and loc.endswith(want), loc
    check_common_headers(r)


def test_no_directory_listing(srv):
    for path in ("/noindex/", "/noindex/?list", "/dir/../noindex/"):
        r = srv.get(path)
        # (a `..` segment may also be refused as a traversal attempt: 400)
        assert r.status in ((400, 403, 404) if ".." in path else (403, 404)), (path, r)
        assert b"alpha-entry" not in r.body and b"beta-entry" not in r.body
    # ... but the files in it are there.
    assert srv.get("/noindex/alpha-entry.txt").status == 200


@pytest.mark.parametrize("path", ["/missing.txt", "/dir/missing.html", "/nodir/x", "/1k.txt/extra"])
def test_404(srv, path):
    r = srv.get(path)
    assert r.status == 404, r
    check_common_headers(r)


@pytest.mark.parametrize("path", ["/.hidden", "/.git/config", "/.git/", "/.git", "/dir/.env",
                                  "/.nonexistent", "/%2ehidden", "/dir/%2Eenv"])
def test_dot_segments_forbidden(srv, path):
    r = srv.raw(request("GET", path, {"Connection": "close"}))
    assert r.status == 403, (path, r)
    assert b"SECRET=1" not in r.first.body and b"[core]" not in r.first.body


TRAVERSALS = [
    "/../etc/passwd",
    "/../../../../../../etc/passwd",
    "/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/dir/%2e%2e/%2e%2e/etc/passwd",
    "/..%2fetc/passwd",
    "/%2e%2e%2fetc%2fpasswd",
    "/dir/..%2f..%2fetc%2fpasswd",
    "/%c0%ae%c0%ae/etc/passwd",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/%e0%80%ae%e0%80%ae/etc/passwd",
    "/1k.txt%00.html",
    "/%00/../etc/passwd",
    "/..\\..\\etc\\passwd",
    "/%2e%2e%5c%2e%2e%5cetc%5cpasswd",
    "/../outside/secret.txt",
    "/dir/../../outside/secret.txt",
    "/%2e%2e/outside/secret.txt",
    "//etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_refused(srv, path):
    r = srv.raw(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    assert r.first is not None, r
    assert r.status in (400, 403, 404), (path, r.first)
    assert b"root:" not in r.first.body and SECRET not in r.first.body
    check_common_headers(r.first)


def test_symlink_inside_root(srv):
    r = srv.get("/link_in")
    assert r.status == 200 and r.body == ONE_K
    r = srv.get("/link_in_abs")
    assert r.status == 200 and r.body == b"in dir\n"
    r = srv.get("/link_dir_in/file.txt")
    assert r.status == 200 and r.body == b"in dir\n"


@pytest.mark.parametrize("path", ["/link_out", "/link_out_rel", "/link_dir_out/secret.txt",
                                  "/link_dir_out/", "/dir/link_up"])
def test_symlink_outside_root_forbidden(srv, path):
    r = srv.get(path)
    assert r.status == 403, (path, r)
    assert b"root:" not in r.body and SECRET not in r.body


def test_symlinks_follow(srv_follow):
    r = srv_follow.get("/link_out_rel")
    assert r.status == 200 and r.body == SECRET
    r = srv_follow.get("/link_dir_out/secret.txt")
    assert r.status == 200 and r.body == SECRET
    r = srv_follow.get("/link_out")
    assert r.status == 200 and r.body.startswith(b"root:")
    # follow does not open the dot-files or traversal.
    assert srv_follow.get("/.hidden").status == 403
    t = srv_follow.raw(b"GET /../outside/secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert t.status in (400, 403, 404) and SECRET not in t.first.body


def test_two_megabytes(srv):
    r = srv.get("/2mb.bin")
    assert r.status == 200
    assert r.header("Content-Length") == str(len(TWO_MB))
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(TWO_MB).digest()


def test_big_file_head(srv):
    r = srv.get("/big.bin", method="HEAD")
    assert r.status == 200 and r.header("Content-Length") == str(BIG)


def test_big_file_range_at_end(srv):
    r = srv.get("/big.bin", {"Range": "bytes=-100"})
    assert r.status == 206 and r.body == b"\0" * 100
    assert r.header("Content-Range") == "bytes %d-%d/%d" % (BIG - 100, BIG - 1, BIG)


def read_body_counting(c, n, pause_first=0, pause=0.0, piece=65536, timeout=20):
    """Read n body bytes in pieces; the first `pause_first` pieces with a pause each (slow reader).
    Returns (bytes read, count of non-zero bytes)."""
    got, nonzero = 0, 0
    deadline = time.monotonic() + timeout
    if c.buf:
        got, nonzero = len(c.buf), len(c.buf) - c.buf.count(0)
        c.buf = b""
    i = 0
    while got < n:
        if time.monotonic() > deadline:
            raise AssertionError("body incomplete: %d of %d bytes before the deadline" % (got, n))
        if i < pause_first:
            time.sleep(pause)
        c.sock.settimeout(max(0.1, deadline - time.monotonic()))
        data = c.sock.recv(min(piece if i < pause_first else 1 << 20, n - got))
        if not data:
            raise AssertionError("connection closed after %d of %d bytes" % (got, n))
        got += len(data)
        nonzero += len(data) - data.count(0)
        i += 1
    return got, nonzero


def test_big_file_slow_reader(srv):
    with srv.connect(rcvbuf=8192, timeout=20) as c:
        c.send(request("GET", "/big.bin"))
        version, status, _, headers, raw = c.read_head()
        assert status == 200
        cl = dict((k.lower(), v) for k, v in headers)["content-length"]
        assert int(cl) == BIG
        # Slow at first (the server's sendfile meets a full socket), then drain fast.
        got, nonzero = read_body_counting(c, BIG, pause_first=20, pause=0.05, piece=4096)
        assert got == BIG and nonzero == 0
        # Keep-alive still works after a big body.
        c.send(request("GET", "/1k.txt"))
        r = c.read_response()
        assert r.status == 200 and r.body == ONE_K


def test_big_file_fast_twice_concurrently(srv):
    conns = [srv.connect(timeout=20) for _ in range(2)]
    try:
        for c in conns:
            c.send(request("GET", "/big.bin", {"Connection": "close"}))
        for c in conns:
            assert c.read_head()[1] == 200
        for c in conns:
            got, nonzero = read_body_counting(c, BIG)
            assert got == BIG and nonzero == 0
    finally:
        for c in conns:
            c.close()


def test_index_setting_order(start_server):
    s = start_server(files={"d/home.htm": b"home\n", "d/index.html": b"index\n", "e/index.html": b"e-index\n"},
                     server_opts={"index": "home.htm index.html"})
    assert s.get("/d/").body == b"home\n"
    assert s.get("/e/").body == b"e-index\n"
    r = s.get("/")
    assert r.status in (403, 404)


def test_stalled_readers_do_not_block_other_downloads(start_server):
    # Clients that stop reading a big file must not starve everyone else: with sendfile work done on
    # a small thread pool, a blocking wait for socket space per stalled client would do exactly that.
    s = start_server(files={"big.bin": ("sparse", BIG), "2mb.bin": TWO_MB})
    stalled = []
    try:
        for _ in range(6):
            c = s.connect(rcvbuf=4096)
            c.send(request("GET", "/big.bin"))
            assert c.read_head()[1] == 200
            stalled.append(c)
        t0 = time.monotonic()
        r = s.connect(timeout=5)
        try:
            res = helpers.exchange(r, request("GET", "/2mb.bin", {"Connection": "close"}), timeout=5)
        finally:
            r.close()
        assert res.error is None and res.status == 200, \
            "a fresh 2 MB download did not complete while 6 clients stalled: %s" % res.error
        assert res.first.body == TWO_MB
        assert time.monotonic() - t0 < 5
    finally:
        for c in stalled:
            c.close()
