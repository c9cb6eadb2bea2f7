"""Issue 10 regressions: retries exactly as SPEC 4.11, pools that a reload removes while requests
are queued or uploading (SPEC §1, §8), `ctl set` not writing into a shared generation, and a
client resetting during a 100-continue to a FastCGI URL. Each test failed on the code before
the fix (retry of a crashing request on a second process, a POST sent twice, 502s with processes
exiting on their own, a use-after-free of the removed pool, 503s for queued requests)."""
import json
import os
import signal
import socket
import struct
import threading
import time

import pytest

import helpers
from test_20_fastcgi import FCGI_APP, app_section, env_of, handler_section, needs_app


def status_json(srv):
    cp = srv.ctl("status", "--json")
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def pool_of(srv, name="app"):
    return next(p for p in status_json(srv)["pools"] if p["name"] == name)


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
    assert srv.error_log().count("mark order42") == 1   # the order reached one process only


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
