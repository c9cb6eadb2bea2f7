"""IIS hotfix features (SPEC §4.3 stderrMode, §4.4 signalBeforeTerminateSeconds, §4.7
utf8ServerVariables) with the C test app and php-cgi."""
import os
import signal
import time

import pytest

import helpers
from test_20_fastcgi import (FCGI_APP, PHP_CGI, alive, app_pids, app_section, env_of, handler_section,
                             needs_app, needs_php)

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


# §4.4 for every way the server ends a process: SIGTERM first, the process exits by itself within
# the grace period (no SIGKILL), and no client waits for it. The app logs SIGTERM and takes 300 ms.
GRACEFUL = dict(signalBeforeTerminateSeconds=5, maxInstances=1,
                env=["FCGI_APP_LOG_SIGTERM=1", "FCGI_APP_TERM_DELAY_MS=300"])


def assert_ended_gracefully(srv, pid):
    srv.wait_for_log(rf"fcgi_app {pid} got SIGTERM")
    helpers.wait_until(lambda: not alive(int(pid)), 5, what="the process exited by itself")
    assert f"app[{pid}]: killed by signal 9" not in srv.error_log()
    assert "SIGKILL" not in srv.error_log()


@needs_app
@pytest.mark.parametrize("way", ["idle", "recycle", "file change", "activity timeout", "reload"])
def test_every_way_a_process_ends_sends_sigterm_first(start_server, tmp_path, way):
    watched = tmp_path / "watched.ini"
    watched.write_text("a=1\n")
    keys = dict(GRACEFUL)
    if way == "idle":
        keys["idleTimeout"] = 1
    if way == "file change":
        keys["monitorChangesTo"] = str(watched)
    if way == "activity timeout":
        keys["activityTimeout"] = 1
    srv = start(start_server, **keys)
    pid = env_of(srv.get("/t.fcgi").body)["pid"]
    t0 = time.monotonic()
    if way == "recycle":
        assert srv.ctl("recycle", "app").returncode == 0
    elif way == "file change":
        watched.write_text("a=2\n")
    elif way == "activity timeout":
        assert srv.get("/t.fcgi?hang=1").status == 500
        assert time.monotonic() - t0 < 4          # the client got its 500 without the grace
    elif way == "reload":
        # The application changes (one more env entry): the pool is recycled gracefully.
        with open(srv.conf) as f:
            text = f.read()
        with open(srv.conf, "w") as f:
            f.write(text.replace("[fastcgi:app]\n", "[fastcgi:app]\nenv = EXTRA=1\n"))
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"configuration reloaded")
    assert_ended_gracefully(srv, pid)
    if way != "idle":
        # A fresh process serves at once: nobody waits for the old one's grace period.
        t1 = time.monotonic()
        assert env_of(srv.get("/t.fcgi").body)["pid"] != pid
        assert time.monotonic() - t1 < 2


@needs_app
def test_shutdown_waits_for_the_grace_period(start_server):
    srv = start(start_server, signalBeforeTerminateSeconds=5,
                env=["FCGI_APP_LOG_SIGTERM=1", "FCGI_APP_TERM_DELAY_MS=1200"])
    pid = env_of(srv.get("/t.fcgi").body)["pid"]
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(10) == 0
    took = time.monotonic() - t0
    assert f"fcgi_app {pid} got SIGTERM" in srv.error_log()
    assert f"app[{pid}]: killed by signal 9" not in srv.error_log()
    assert took >= 1.0, f"the server exited {took:.2f} s after SIGTERM, before its process did"
    assert not alive(int(pid))


@needs_app
def test_shutdown_grace_is_bounded_by_shutdown_timeout(start_server):
    # The app would linger 20 s and the grace is 30 s: shutdownTimeout (2 s) wins, and the
    # process does not outlive the server.
    srv = start_server(files={"t.fcgi": b"x"}, server_opts={"shutdownTimeout": 2},
                       extra=app_section(signalBeforeTerminateSeconds=30,
                                         env=["FCGI_APP_LOG_SIGTERM=1",
                                              "FCGI_APP_TERM_DELAY_MS=20000"])
                       + handler_section())
    pid = env_of(srv.get("/t.fcgi").body)["pid"]
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(10) == 0
    took = time.monotonic() - t0
    assert 1.5 <= took < 5, f"the server exited {took:.2f} s after SIGTERM"
    srv.wait_for_log(rf"fcgi_app {pid} got SIGTERM")
    helpers.wait_until(lambda: not alive(int(pid)), 3, what="the process ended with the server")


# §4.7 end to end with php-cgi: a non-ASCII script path runs (php-cgi opens SCRIPT_FILENAME, so it
# must be UTF-8), and overlong-UTF-8 traversal attempts are refused before PHP is contacted.
PHP_UTF8 = {"données/é.php": b"<?php echo $_SERVER['SCRIPT_NAME'], '|', $_SERVER['PATH_INFO'] ?? '', "
                            b"'|', basename(__FILE__);",
            "secret.txt": b"outside the scripts"}


@needs_php
def test_php_non_ascii_script_path_runs(start_server):
    srv = start_server(files=PHP_UTF8,
                       extra=app_section("php", PHP_CGI) + handler_section("php", "*.php", "php"))
    r = srv.get("/donn%C3%A9es/%C3%A9.php/caf%C3%A9")
    assert r.status == 200, r
    assert r.body.decode() == "/données/é.php|/café|é.php"


@needs_php
@pytest.mark.parametrize("path", ["/donn%C3%A9es/%C0%AE%C0%AE/secret.txt",
                                  "/donn%C3%A9es/%C0%AE%C0%AE/%C0%AE%C0%AE/etc/passwd.php",
                                  "/%C0%AE%C0%AE/donn%C3%A9es/%C3%A9.php",
                                  "/donn%C3%A9es/%C3%A9.php/%C0%AE%C0%AE/x",
                                  "/donn%C3%A9es/%E9.php"])
def test_php_overlong_and_latin1_paths_are_400(start_server, path):
    srv = start_server(files=PHP_UTF8,
                       extra=app_section("php", PHP_CGI) + handler_section("php", "*.php", "php"))
    r = srv.get(path)
    assert r.status == 400, r
    assert b"outside the scripts" not in r.body and b"root:" not in r.body
    assert not app_pids(srv), "PHP was started for a refused path"


@needs_php
def test_php_ascii_only_variables_escape_the_path(start_server):
    # utf8ServerVariables empty (IIS's ASCII server variables): PATH_INFO carries %XX; the script
    # name stays UTF-8 in the list so php-cgi can open the file.
    srv = start_server(files=PHP_UTF8,
                       extra=app_section("php", PHP_CGI,
                                         utf8ServerVariables="SCRIPT_FILENAME SCRIPT_NAME")
                       + handler_section("php", "*.php", "php"))
    r = srv.get("/donn%C3%A9es/%C3%A9.php/caf%C3%A9")
    assert r.status == 200, r
    assert r.body.decode() == "/données/é.php|/caf%C3%A9|é.php"
