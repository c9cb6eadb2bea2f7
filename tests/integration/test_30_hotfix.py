"""IIS hotfix features (SPEC §4.3 stderrMode, §4.4 signalBeforeTerminateSeconds, §4.7
utf8ServerVariables) with the C test app."""
import os
import time

import pytest

import helpers
from test_20_fastcgi import FCGI_APP, alive, app_section, env_of, handler_section, needs_app

STDERR_TEXT = "warning%3A+disk+almost+full"     # URL-encoded "warning: disk almost full"


def start(start_server, files=None, **app_keys):
    handler_keys = app_keys.pop("handler_keys", {})
    tree = {"t.fcgi": b"x"}
    tree.update(files or {})
    return start_server(files=tree, extra=app_section(**app_keys) + handler_section(**handler_keys))


@needs_app
@pytest.mark.parametrize("when", ["before", "between", "after"])
@pytest.mark.parametrize("mode", ["ReturnStdErrIn500", "ReturnGeneric500", "IgnoreAndReturn200",
                                  "TerminateProcess"])
def test_stderr_modes(start_server, mode, when):
    srv = start(start_server, stderrMode=mode, maxInstances=1)
    pid = env_of(srv.get("/t.fcgi").body)["pid"]
    r = srv.get(f"/t.fcgi?stderr={STDERR_TEXT}&stderr_when={when}")
    if mode == "IgnoreAndReturn200":
        assert r.status == 200 and b"REQUEST_METHOD=GET" in r.body
    else:
        assert r.status == 500
        if mode == "ReturnStdErrIn500":
            assert b"warning: disk almost full" in r.body
        else:
            assert b"disk almost full" not in r.body and b"REQUEST_METHOD" not in r.body
    # Always logged, with app, pid and request.
    srv.wait_for_log(rf"app\[{pid}\] request \d+ stderr: warning: disk almost full")
    nxt = env_of(srv.get("/t.fcgi").body)["pid"]
    if mode == "TerminateProcess":
        assert nxt != pid
        helpers.wait_until(lambda: not alive(int(pid)), 5, what="the process terminated")
    else:
        assert nxt == pid


@needs_app
def test_stderr_after_the_headers_went_out_only_logs(start_server):
    srv = start(start_server, stderrMode="ReturnStdErrIn500", handler_keys={"responseBufferLimit": 0})
    r = srv.get(f"/t.fcgi?stderr={STDERR_TEXT}&stderr_when=after")
    assert r.status == 200 and b"REQUEST_METHOD=GET" in r.body
    srv.wait_for_log(r"stderr: warning: disk almost full")


@needs_app
def test_stderr_flood_is_bounded_in_the_log(start_server):
    srv = start(start_server, stderrMode="IgnoreAndReturn200")
    long = "x" * 6000
    for _ in range(20):
        assert srv.get(f"/t.fcgi?stderr={long}").status == 200
    srv.wait_for_log(r"stderr: x{100}")
    assert len(srv.error_log()) < 20 * 8000


@needs_app
def test_sigterm_then_grace_then_exit(start_server):
    # instanceMaxRequests = 1: each process is ended after its request; the app logs SIGTERM and
    # takes 400 ms to exit, within the 3 s grace: no SIGKILL, and the client does not wait.
    srv = start(start_server, instanceMaxRequests=1, signalBeforeTerminateSeconds=3,
                env=["FCGI_APP_LOG_SIGTERM=1", "FCGI_APP_TERM_DELAY_MS=400"])
    t0 = time.monotonic()
    pid = env_of(srv.get("/t.fcgi").body)["pid"]
    pid2 = env_of(srv.get("/t.fcgi").body)["pid"]
    assert pid2 != pid
    assert time.monotonic() - t0 < 2.0               # nobody waited for the grace period
    srv.wait_for_log(rf"fcgi_app {pid} got SIGTERM")
    helpers.wait_until(lambda: not alive(int(pid)), 3, what="the process exited by itself")
    assert not __import__("re").search(rf"app\[{pid}\]: killed by signal 9", srv.error_log())


@needs_app
def test_sigkill_after_the_grace_period(start_server):
    srv = start(start_server, instanceMaxRequests=1, signalBeforeTerminateSeconds=1,
                env=["FCGI_APP_LOG_SIGTERM=1", "FCGI_APP_TERM_DELAY_MS=10000"])
    t0 = time.monotonic()
    pid = env_of(srv.get("/t.fcgi").body)["pid"]
    srv.wait_for_log(rf"fcgi_app {pid} got SIGTERM")
    srv.wait_for_log(rf"app\[{pid}\]: killed by signal 9", timeout=5)
    assert 0.8 <= time.monotonic() - t0 < 4


@needs_app
def test_zero_means_sigkill_at_once(start_server):
    srv = start(start_server, instanceMaxRequests=1, signalBeforeTerminateSeconds=0,
                env=["FCGI_APP_LOG_SIGTERM=1"])
    pid = env_of(srv.get("/t.fcgi").body)["pid"]
    srv.wait_for_log(rf"app\[{pid}\]: killed by signal 9")
    assert f"fcgi_app {pid} got SIGTERM" not in srv.error_log()


UTF8_FILES = {"données/é.fcgi": b"x"}


@needs_app
def test_utf8_all_variables(start_server):
    srv = start(start_server, files=UTF8_FILES)
    env = env_of(srv.get("/donn%C3%A9es/%C3%A9.fcgi/caf%C3%A9").body)
    assert env["SCRIPT_NAME"] == "/données/é.fcgi"
    assert env["PATH_INFO"] == "/café"
    assert env["SCRIPT_FILENAME"].endswith("/données/é.fcgi")


@needs_app
def test_utf8_empty_list_escapes_every_variable(start_server):
    srv = start(start_server, files=UTF8_FILES, utf8ServerVariables="")
    env = env_of(srv.get("/donn%C3%A9es/%C3%A9.fcgi/caf%C3%A9").body)
    assert env["SCRIPT_NAME"] == "/donn%C3%A9es/%C3%A9.fcgi"
    assert env["PATH_INFO"] == "/caf%C3%A9"
    assert env["DOCUMENT_URI"] == "/donn%C3%A9es/%C3%A9.fcgi/caf%C3%A9"


@needs_app
def test_utf8_listed_variables_only(start_server):
    srv = start(start_server, files=UTF8_FILES, utf8ServerVariables="PATH_INFO")
    env = env_of(srv.get("/donn%C3%A9es/%C3%A9.fcgi/caf%C3%A9").body)
    assert env["PATH_INFO"] == "/café"
    assert env["SCRIPT_NAME"] == "/donn%C3%A9es/%C3%A9.fcgi"


@needs_app
@pytest.mark.parametrize("path", ["/%C0%AE%C0%AE/t.fcgi", "/%C0%AE.fcgi", "/t.fcgi/%C0%AE", "/t.fcgi/%FF"])
def test_invalid_utf8_is_400(start_server, path):
    srv = start(start_server)
    assert srv.get(path).status == 400
