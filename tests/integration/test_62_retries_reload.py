"""Issue 10 regressions: retries exactly as SPEC 4.11, pools that a reload removes while requests
are queued or uploading (SPEC §1, §8), `ctl set` not writing into a shared generation, and a
client resetting during a 100-continue to a FastCGI URL. Each test failed on the code before
the fix (retry of a crashing request on a second process, a POST sent twice, 502s with processes
exiting on their own, a use-after-free of the removed pool, 503s for queued requests)."""
import contextlib
import os
import re
import resource
import signal
import socket
import struct
import threading
import time

import pytest

import helpers
from test_20_fastcgi import FCGI_APP, app_section, env_of, handler_section, needs_app


def pool_of(srv, name="app"):
    return srv.pool_status(name)


def start(start_server, extra_app="", **app_keys):
    ini = app_section(**app_keys) + extra_app + handler_section()
    return start_server(files={"t.fcgi": b"script"}, extra=ini)


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ---- SPEC 4.11 -------------------------------------------------------------------------------

@needs_app
def test_a_request_that_kills_a_fresh_process_costs_one_process_and_one_rapid_fail(start_server):
    srv = start(start_server, maxInstances=4, rapidFailsPerMinute=10)
    assert srv.get("/t.fcgi?crash=1").status == 502
    pool = pool_of(srv)
    assert pool["spawns"] == 1, pool
    assert pool["rapid_fails"] == 1, pool
    assert srv.get("/t.fcgi").status == 200


@needs_app
def test_a_crash_on_a_reused_process_is_not_retried(start_server):
    srv = start(start_server, maxInstances=1)
    assert srv.get("/t.fcgi").status == 200
    assert srv.get("/t.fcgi?crash=1").status == 502   # abort(): a signal, so it may have run
    pool = pool_of(srv)
    assert pool["spawns"] == 1, pool                   # no second process tried it
    assert srv.get("/t.fcgi").status == 200


@needs_app
def test_a_post_whose_process_is_killed_is_never_sent_twice(start_server):
    srv = start(start_server, maxInstances=2)
    assert srv.get("/t.fcgi").status == 200            # the process is a reused one from now on
    result = {}

    def post():
        body = b"order=42"
        result["r"] = srv.get("/t.fcgi?sleep=5000&mark=order42", method="POST", body=body)
    t = threading.Thread(target=post)
    t.start()
    pid = int(srv.wait_for_log(r"fcgi_app (\d+) mark order42", timeout=10).group(1))
    os.kill(pid, signal.SIGKILL)
    t.join(15)
    assert result["r"].status == 502, result["r"]
    # the order reached one process only (its own fd 2 line; the crash line quotes it again)
    assert len(re.findall(r"\]: fcgi_app \d+ mark order42$", srv.error_log(), re.M)) == 1


@needs_app
def test_processes_exiting_on_their_own_cost_no_client_an_error(start_server):
    """fcgi_app exits (status 0) after every 2nd answer, as php-cgi after PHP_FCGI_MAX_REQUESTS;
    with no known limit the server cannot retire it first, so requests race the exit."""
    srv = start(start_server, maxInstances=3, instanceMaxRequests=0)
    bad = []

    def client():
        for _ in range(45):
            r = srv.get("/t.fcgi?exit_after=2")
            if r.status != 200:
                bad.append(r.status)
    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert bad == []
    assert pool_of(srv)["rapid_fails"] == 0


# ---- reloads and pools -----------------------------------------------------------------------

def rewrite_conf(srv, text):
    with open(srv.conf, "w") as f:
        f.write(text)


@needs_app
def test_reload_removing_an_app_during_a_chunked_upload_serves_the_upload(start_server):
    srv = start(start_server, maxInstances=2)
    with srv.connect() as c:
        c.send(b"POST /t.fcgi?echo=body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n")
        # the application and its handler leave the configuration mid-upload
        rewrite_conf(srv, srv.config_text.split("[fastcgi:app]")[0])
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"configuration reloaded")
        c.send(b"6\r\n world\r\n0\r\n\r\n")
        r = c.read_response(method="POST")
    assert r.status == 200 and r.body == b"hello world", r
    # the retired pool stops once its last request ended
    helpers.wait_until(lambda: "app: stopping" in srv.error_log(), 10, what="retired pool stopped")
    assert srv.get("/t.fcgi").status == 200                     # now a static file


@needs_app
def test_requests_queued_for_a_removed_app_are_served(start_server):
    srv = start(start_server, maxInstances=1, queueLength=50)
    statuses = []
    lock = threading.Lock()

    def one():
        r = srv.get("/t.fcgi?sleep=300")
        with lock:
            statuses.append(r.status)
    ts = [threading.Thread(target=one) for _ in range(6)]
    for t in ts:
        t.start()
    helpers.wait_until(lambda: pool_of(srv)["queue"]["queued"] >= 3, 10, what="requests queued")
    rewrite_conf(srv, srv.config_text.split("[fastcgi:app]")[0])
    srv.signal(signal.SIGHUP)
    for t in ts:
        t.join(30)
    assert statuses == [200] * 6, statuses


@needs_app
def test_ctl_set_does_not_change_the_generation_requests_share(start_server):
    srv = start(start_server, maxInstances=1, activityTimeout=30)
    cp = srv.ctl("set", "app", "activityTimeout", "1")
    assert cp.returncode == 0, cp.stderr
    t0 = time.monotonic()
    r = srv.get("/t.fcgi?hang=1")
    assert r.status == 500 and time.monotonic() - t0 < 8, r   # the pool's own setting applies
    # a reload goes back to the file's value (the generation was never written to)
    srv.signal(signal.SIGHUP)
    srv.wait_for_log(r"configuration reloaded")
    assert pool_of(srv)["name"] == "app"


# ---- a client leaving during 100-continue ----------------------------------------------------

@needs_app
@pytest.mark.parametrize("how", ["rst", "fin_rst"])
def test_reset_while_100_continue_is_pending(start_server, how):
    srv = start(start_server, maxInstances=2)
    for _ in range(10):
        s = socket.create_connection((srv.host, srv.port), timeout=5)
        s.sendall(b"POST /t.fcgi HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        if how == "fin_rst":
            s.shutdown(socket.SHUT_WR)
        rst_close(s)
    assert srv.running()
    assert srv.get("/t.fcgi").status == 200


# ---- framing by the application's Content-Length, 1xx (SPEC §3) ------------------------------

@needs_app
@pytest.mark.parametrize("limit", [0, 4194304])
def test_more_than_content_length_is_dropped_not_taken_as_the_next_response(start_server, limit):
    ini = app_section() + handler_section(responseBufferLimit=limit)
    srv = start_server(files={"t.fcgi": b"script", "a.txt": b"static"}, extra=ini)
    with srv.connect() as c:
        c.send(b"GET /t.fcgi?rawheaders=cl5&big=200k HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"01234", r
        # the connection closes after that response: the surplus never reaches the client
        assert c.wait_closed(10)
        assert b"0123456789abcdef" not in c.buf, c.buf[:200]
    srv.wait_for_log(r"more than its Content-Length")
    assert srv.get("/t.fcgi").status == 200


@needs_app
def test_less_than_content_length_streamed_cuts_the_connection(start_server):
    ini = app_section() + handler_section(responseBufferLimit=0)
    srv = start_server(files={"t.fcgi": b"script"}, extra=ini)
    with srv.connect() as c:
        c.send(b"GET /t.fcgi?rawheaders=cl1m HTTP/1.1\r\nHost: t\r\n\r\n")
        _, status, _, headers, _ = c.read_head()
        assert status == 200 and ("Content-Length", "1000000") in headers, headers
        assert c.wait_closed(10)
        assert len(c.buf) < 1000000   # closed: the client sees a truncated answer, not a whole one
    srv.wait_for_log(r"less than its Content-Length")


@needs_app
def test_less_than_content_length_buffered_is_a_502(start_server):
    srv = start(start_server)
    r = srv.get("/t.fcgi?rawheaders=cl1m")
    assert r.status == 502, r
    srv.wait_for_log(r"less than its Content-Length")
    assert srv.get("/t.fcgi").status == 200


@needs_app
@pytest.mark.parametrize("block", ["status101", "status103"])
def test_an_interim_status_as_the_final_answer_is_a_502(start_server, block):
    srv = start(start_server)
    r = srv.get("/t.fcgi?rawheaders=" + block)
    assert r.status == 502, r
    srv.wait_for_log(r"Status 10[13] as the final answer")
    assert srv.get("/t.fcgi").status == 200


# ---- verbs (SPEC §6): a script is never served as a static file ------------------------------

@needs_app
def test_a_verb_no_handler_accepts_gets_405_with_allow_not_the_source(start_server):
    ini = app_section() + handler_section(path="*.fcgi", verb="POST,PUT")
    srv = start_server(files={"t.fcgi": b"SECRET SOURCE", "d/index.fcgi": b"SECRET INDEX"},
                       extra=ini, server_opts={"index": "index.fcgi"})
    for path in ("/t.fcgi", "/d/", "/d/index.fcgi"):
        r = srv.get(path)
        assert r.status == 405, (path, r)
        assert r.header("Allow") == "POST, PUT", r
        assert b"SECRET" not in r.body
    r = srv.get("/t.fcgi", method="HEAD")
    assert r.status == 405 and r.body == b""
    assert srv.get("/t.fcgi", method="POST", body=b"x").status == 200


# ---- SPEC 4.11: out of descriptors is not a rapid fail --------------------------------------


@contextlib.contextmanager
def no_descriptor_left(srv):
    """Lower the running server's RLIMIT_NOFILE to its lowest free descriptor for the block, so
    that any descriptor it tries to create fails with EMFILE; restored on the way out."""
    soft, hard = resource.prlimit(srv.pid, resource.RLIMIT_NOFILE)
    used = {int(f) for f in os.listdir("/proc/%d/fd" % srv.pid)}
    lowest_free = min(set(range(len(used) + 1)) - used)
    resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        yield
    finally:
        resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (soft, hard))


def busy_connection(srv):
    """A connection the server has accepted and answered on (its descriptor exists)."""
    c = srv.connect()
    c.send(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
    assert c.read_response().status == 404
    return c


@needs_app
def test_a_start_refused_for_want_of_descriptors_waits_and_is_not_a_rapid_fail(start_server):
    # resourceType = Unspecified: no file is opened for the request, only the start needs one
    ini = app_section(maxInstances=2, rapidFailsPerMinute=1) + handler_section(resourceType="Unspecified")
    srv = start_server(files={"t.fcgi": b"script"}, extra=ini)
    with busy_connection(srv) as c:
        with no_descriptor_left(srv):
            c.send(b"GET /t.fcgi HTTP/1.1\r\nHost: t\r\n\r\n")
            srv.wait_for_log(r"cannot start a process", timeout=10)
            helpers.wait_until(lambda: srv.error_log().count("cannot start a process") >= 2, 10,
                               what="the start tried again")
            assert "failed within a minute" not in srv.error_log()
        r = c.read_response(timeout=10)
    assert r.status == 200, r
    assert pool_of(srv)["rapid_fails"] == 0


def test_a_static_file_that_cannot_be_opened_for_want_of_descriptors_is_a_503_not_cached(start_server):
    srv = start_server(files={"a.txt": b"x" * 300000})   # past the in-memory cache: needs its fd
    with busy_connection(srv) as c:
        with no_descriptor_left(srv):
            c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.read_response()
            assert r.status == 503 and r.header("Retry-After") == "1", r
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and len(r.body) == 300000, r    # the shortage was not cached
