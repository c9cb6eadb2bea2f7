"""HTTP/1.0 and 1.1 semantics (SPEC §3): keep-alive, Connection: close, pipelining, HEAD, Date/Server
headers, framing, absolute-form targets, Expect: 100-continue, request bodies on static resources."""
import os
import time

import pytest
import requests

import helpers
from helpers import chunked, request, check_common_headers

ONE_K = bytes((i * 7 + 3) % 256 for i in range(1024))
FILES = {
    "1k.txt": ONE_K,
    "a.txt": b"AAAA\n",
    "b.txt": b"BBBBBBBB\n",
    "c.txt": b"C" * 3000,
    "2.txt": b"second file\n",
    "with space.txt": b"space in name\n",
    "index.html": b"<html>root index</html>\n",
}


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory(files=FILES)


def test_get_basic(srv):
    r = srv.get("/1k.txt")
    assert r.status == 200
    assert r.body == ONE_K
    assert r.header("Content-Length") == "1024"
    check_common_headers(r)


def test_with_requests_library(srv):
    r = requests.get(srv.url("/a.txt"), timeout=5)
    assert r.status_code == 200 and r.content == b"AAAA\n"


def test_root_serves_index(srv):
    r = srv.get("/")
    assert r.status == 200 and r.body == FILES["index.html"]


def test_query_string_ignored_for_static(srv):
    r = srv.get("/a.txt?x=1&y=%20")
    assert r.status == 200 and r.body == b"AAAA\n"


def test_percent_encoded_path(srv):
    r = srv.get("/with%20space.txt")
    assert r.status == 200 and r.body == b"space in name\n"


def test_header_names_case_insensitive(srv):
    r = srv.raw(b"GET /a.txt HTTP/1.1\r\nhOsT: x\r\nconnection: close\r\n\r\n", close_timeout=2)
    assert r.status == 200 and r.first.body == b"AAAA\n"
    assert r.closed


def test_http11_keep_alive_by_default(srv):
    with srv.connect() as c:
        for path, body in (("/a.txt", b"AAAA\n"), ("/b.txt", b"BBBBBBBB\n"), ("/1k.txt", ONE_K)):
            c.send(request("GET", path))
            r = c.read_response()
            assert r.status == 200 and r.body == body
            check_common_headers(r)
            assert (r.header("Connection") or "").lower() != "close"
        # Still open: nothing arrives, no EOF.
        assert not c.wait_closed(0.3)


def test_http11_connection_close_honoured(srv):
    with srv.connect() as c:
        res = helpers.exchange(c, request("GET", "/a.txt", {"Connection": "close"}), close_timeout=2)
    assert res.status == 200 and res.first.body == b"AAAA\n"
    assert res.closed, "server kept the connection open after Connection: close"
    assert res.extra == b""
    assert (res.first.header("Connection") or "").lower() == "close"


def test_http10_closes_by_default(srv):
    res = srv.raw(request("GET", "/a.txt", version="HTTP/1.0", host=None), close_timeout=2)
    assert res.status == 200 and res.first.body == b"AAAA\n"
    assert res.closed, "HTTP/1.0 without keep-alive: the server must close"
    check_common_headers(res.first)


def test_http10_keep_alive_on_request(srv):
    with srv.connect() as c:
        c.send(request("GET", "/a.txt", {"Connection": "keep-alive"}, version="HTTP/1.0", host=None))
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"AAAA\n"
        assert r1.header("Content-Length") == "5"
        assert (r1.header("Connection") or "").lower() == "keep-alive"
        c.send(request("GET", "/b.txt", {"Connection": "keep-alive"}, version="HTTP/1.0", host=None))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"BBBBBBBB\n"
        # Last request without keep-alive: closed after it.
        c.send(request("GET", "/a.txt", version="HTTP/1.0", host=None))
        r3 = c.read_response()
        assert r3.status == 200
        assert c.wait_closed(2)


def test_pipelining_in_order(srv):
    data = (request("GET", "/a.txt") + request("HEAD", "/1k.txt") + request("GET", "/missing.txt")
            + request("GET", "/b.txt") + request("GET", "/c.txt", {"Connection": "close"}))
    res = srv.raw(data, ("GET", "HEAD", "GET", "GET", "GET"), close_timeout=2)
    assert res.error is None, res
    st = [r.status for r in res.responses]
    assert st == [200, 200, 404, 200, 200]
    assert res.responses[0].body == b"AAAA\n"
    assert res.responses[1].body == b"" and res.responses[1].header("Content-Length") == "1024"
    assert res.responses[3].body == b"BBBBBBBB\n"
    assert res.responses[4].body == b"C" * 3000
    assert res.closed and res.extra == b""
    for r, m in zip(res.responses, ("GET", "HEAD", "GET", "GET", "GET")):
        check_common_headers(r, m)


def test_pipelining_many(srv):
    n = 50
    data = b"".join(request("GET", "/a.txt" if i % 2 else "/2.txt") for i in range(n))
    with srv.connect() as c:
        res = helpers.exchange(c, data, ("GET",) * n)
    assert res.error is None, res.error
    for i, r in enumerate(res.responses):
        assert r.status == 200
        assert r.body == (b"AAAA\n" if i % 2 else b"second file\n")


def test_pipelined_request_split_across_writes(srv):
    # A request whose head arrives in pieces, right behind a complete one.
    with srv.connect() as c:
        c.send(request("GET", "/a.txt") + b"GET /b.t")
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"AAAA\n"
        c.send(b"xt HTTP/1.1\r\nHo")
        c.send(b"st: x\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"BBBBBBBB\n"


def test_head_same_headers_no_body(srv):
    get = srv.get("/1k.txt")
    with srv.connect() as c:
        # HEAD then GET on one connection: if HEAD carried a body, the GET response would not parse.
        res = helpers.exchange(c, request("HEAD", "/1k.txt") + request("GET", "/a.txt"), ("HEAD", "GET"))
    assert res.error is None, res
    head, after = res.responses
    assert head.status == 200 and head.body == b""
    assert head.header("Content-Length") == get.header("Content-Length") == "1024"
    assert head.header("Content-Type") == get.header("Content-Type")
    assert head.header("Last-Modified") == get.header("Last-Modified")
    assert head.header("ETag") == get.header("ETag")
    assert after.status == 200 and after.body == b"AAAA\n"
    check_common_headers(head, "HEAD")


def test_head_404_has_no_body(srv):
    with srv.connect() as c:
        res = helpers.exchange(c, request("HEAD", "/nope") + request("GET", "/a.txt"), ("HEAD", "GET"))
    assert res.error is None, res
    assert res.responses[0].status == 404 and res.responses[0].body == b""
    assert res.responses[1].status == 200 and res.responses[1].body == b"AAAA\n"


def test_error_responses_have_date_server_and_length(srv):
    for path in ("/missing", "/.hidden"):
        r = srv.get(path)
        assert r.status in (403, 404)
        check_common_headers(r)


def test_date_header_is_current(srv):
    r = srv.get("/a.txt")
    ts = helpers.parse_http_date(r.header("Date"))
    assert abs(ts - time.time()) < 5


def test_absolute_form_target(srv):
    r = srv.raw(b"GET http://example.test/a.txt HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
    assert r.status == 200 and r.first.body == b"AAAA\n"


def test_bare_lf_line_ends_accepted(srv):
    r = srv.raw(b"GET /a.txt HTTP/1.1\nHost: x\nConnection: close\n\n")
    assert r.status == 200 and r.first.body == b"AAAA\n"


def test_unknown_method(srv):
    r = srv.get("/a.txt", method="FROB")
    assert r.status in (405, 501)
    check_common_headers(r)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_body_methods_405_with_allow(srv, method):
    r = srv.get("/a.txt", method=method, headers={"Content-Length": "0"})
    assert r.status == 405
    allow = r.header("Allow")
    assert allow is not None, r.raw_head
    allowed = {m.strip().upper() for m in allow.split(",")}
    assert {"GET", "HEAD"} <= allowed and method not in allowed
    check_common_headers(r)


# A body that looks like a request: if the server did not consume it, it would answer /2.txt.
SMUGGLE = request("GET", "/2.txt")


def _after_405(res):
    """The connection either closes after the 405 or answers the next request correctly."""
    assert res.responses, res
    assert res.responses[0].status == 405
    if len(res.responses) == 1:
        assert res.closed, "no second response and the connection did not close: %r" % res
        assert res.extra == b"", "stray bytes after the 405: %r" % res.extra
        # The client must be told the connection ends, or it cannot know its next request was lost.
        assert (res.responses[0].header("Connection") or "").lower() == "close", \
            "closed after the 405 without Connection: close (%r)" % res.responses[0].raw_head
    else:
        second = res.responses[1]
        assert second.status == 200 and second.body == b"AAAA\n", \
            "the body was not consumed: the next response is %r %r" % (second, second.body[:60])


def test_post_with_content_length_body_is_consumed(srv):
    data = request("POST", "/1k.txt", {"Content-Length": str(len(SMUGGLE))}, body=SMUGGLE) \
        + request("GET", "/a.txt", {"Connection": "close"})
    with srv.connect() as c:
        res = helpers.exchange(c, data, ("POST", "GET"), close_timeout=2)
    _after_405(res)


def test_post_with_chunked_body_is_consumed(srv):
    body = chunked(SMUGGLE[:10], SMUGGLE[10:])
    data = request("POST", "/1k.txt", {"Transfer-Encoding": "chunked"}, body=body) \
        + request("GET", "/a.txt", {"Connection": "close"})
    with srv.connect() as c:
        res = helpers.exchange(c, data, ("POST", "GET"), close_timeout=2)
    _after_405(res)


def test_post_body_sent_later_is_consumed(srv):
    # Head first, body after the 405 may already be out: the server must still find the next request.
    with srv.connect() as c:
        c.send(request("POST", "/1k.txt", {"Content-Length": str(len(SMUGGLE))}))
        r1 = c.read_response("POST", timeout=3)
        assert r1.status == 405
        if c.wait_closed(0.2):
            return
        c.send(SMUGGLE[:5])
        c.send(SMUGGLE[5:] + request("GET", "/a.txt"))
        try:
            r2 = c.read_response(timeout=3)
        except helpers.Closed:
            return  # closing is acceptable
        assert r2.status == 200 and r2.body == b"AAAA\n", r2


def test_get_with_body_then_pipelined(srv):
    data = request("GET", "/a.txt", {"Content-Length": str(len(SMUGGLE))}, body=SMUGGLE) \
        + request("GET", "/b.txt")
    with srv.connect() as c:
        res = helpers.exchange(c, data, ("GET", "GET"))
    assert res.responses and res.responses[0].status == 200
    if len(res.responses) == 2:
        assert res.responses[1].body == b"BBBBBBBB\n", "GET body was not consumed"
    else:
        assert c.eof
        assert (res.responses[0].header("Connection") or "").lower() == "close"


def test_expect_100_continue_get(srv):
    with srv.connect() as c:
        c.send(request("GET", "/1k.txt", {"Content-Length": "10", "Expect": "100-continue"}))
        # Either "100 Continue" or the final response must come without the body being sent.
        head = c.read_head(timeout=3)
        if head[1] == 100:
            c.send(b"0123456789")
            r = c.read_response(timeout=3)
        else:
            c.buf = head[4] + c.buf  # put the head back and read it as a whole response
            r = c.read_response(timeout=3)
            # The client may still send the body: the server must cope (consume it or close).
            try:
                c.send(b"0123456789")
            except OSError:
                pass
        assert r.status == 200 and r.body == ONE_K
        # The connection is usable afterwards, or closed; it must not hang with a half answer.
        try:
            c.send(request("GET", "/a.txt"))
            r2 = c.read_response(timeout=3)
            assert r2.status == 200 and r2.body == b"AAAA\n"
        except (helpers.Closed, OSError):
            pass


def test_expect_100_continue_http10_ignored(srv):
    # A server must not send 1xx to an HTTP/1.0 client (RFC 9110 15.2); the body comes at once.
    with srv.connect() as c:
        res = helpers.exchange(c, request("GET", "/a.txt", {"Content-Length": "3", "Expect": "100-continue"},
                                          body=b"xyz", version="HTTP/1.0", host=None), close_timeout=2)
        assert res.status == 200 and res.first.body == b"AAAA\n"
        assert c.interim == [], "1xx sent to an HTTP/1.0 client: %r" % c.interim
