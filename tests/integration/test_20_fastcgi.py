"""The FastCGI module (SPEC §3, §4.1, §4.5, §4.6): handler mappings, CGI variables, the process
pool that fcgihost runs itself, with the C test app (tests/apps/fcgi_app.c) and real php-cgi."""
import os
import re
import signal
import socket
import threading
import time

import pytest

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.environ.get("FCGIHOST_APPS", os.path.join(ROOT, "build", "tests", "apps"))
FCGI_APP = os.path.join(APPS, "fcgi_app")
PHP_CGI = "/usr/bin/php-cgi"

needs_app = pytest.mark.skipif(not os.access(FCGI_APP, os.X_OK), reason="tests/apps/fcgi_app not built")
needs_php = pytest.mark.skipif(not os.access(PHP_CGI, os.X_OK), reason="php-cgi not installed")


def app_section(name="app", full_path=None, **keys):
    lines = [f"[fastcgi:{name}]", f"fullPath = {full_path or FCGI_APP}"]
    for k, v in keys.items():
        if isinstance(v, (list, tuple)):
            lines += [f"{k} = {x}" for x in v]
        else:
            lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


def handler_section(name="app", path="*.fcgi", app="app", **keys):
    lines = [f"[handler:{name}]", f"path = {path}", f"scriptProcessor = {app}"]
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def env_of(body):
    """The test app's echo=env body as a dict."""
    out = {}
    for line in body.decode("utf-8", "replace").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, v)
    return out


def app_pids(srv):
    """Live FastCGI processes started by this server (children of its pid)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == srv.pid:
            pids.append(int(d))
    return pids


def alive(pid):
    """True while pid runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] != "Z"


def get_env(srv, path="/t.fcgi", headers=None, **kw):
    r = srv.get(path, headers=headers, **kw)
    assert r.status == 200, r
    return env_of(r.body)


@pytest.fixture
def appsrv(start_server):
    def factory(app_keys=None, handler_keys=None, server_opts=None, files=None, extra="", **kw):
        tree = {"t.fcgi": b"script", "sub/t.fcgi": b"script", "img/x.jpg": b"jpeg"}
        tree.update(files or {})
        ini = app_section(**(app_keys or {})) + handler_section(**(handler_keys or {})) + extra
        return start_server(files=tree, extra=ini, server_opts=server_opts, **kw)
    return factory


# ---- mapping, variables, fd 0 ----

@needs_app
@pytest.mark.parametrize("protocol", ["unix", "tcp"])
def test_fd0_and_fcgi_x_pipe_seen_from_the_app(appsrv, protocol):
    srv = appsrv(app_keys={"protocol": protocol})
    env = get_env(srv, "/t.fcgi")
    pipe = env["process_fcgi_x_pipe"]
    fd0 = env["fd0"]
    if protocol == "unix":
        assert fd0.startswith("unix:"), fd0
        assert pipe == fd0[len("unix:"):]
    else:
        assert re.fullmatch(r"tcp:127\.0\.0\.1:\d+", fd0), fd0
        assert pipe == fd0[len("tcp:"):]


@needs_app
def test_cgi_variables(appsrv):
    srv = appsrv()
    env = get_env(srv, "/sub/t.fcgi/extra/path?a=1&b=%20x", headers={"X-Custom": "v1", "Proxy": "evil"})
    root = srv.root
    assert env["REQUEST_METHOD"] == "GET"
    assert env["REQUEST_URI"] == "/sub/t.fcgi/extra/path?a=1&b=%20x"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert env["SCRIPT_NAME"] == "/sub/t.fcgi"
    assert env["PATH_INFO"] == "/extra/path"
    assert env["PATH_TRANSLATED"] == root + "/extra/path"
    assert env["SCRIPT_FILENAME"] == root + "/sub/t.fcgi"
    assert env["DOCUMENT_ROOT"] == root
    assert env["DOCUMENT_URI"] == "/sub/t.fcgi/extra/path"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["SERVER_SOFTWARE"].startswith("fcgihost")
    assert env["REDIRECT_STATUS"] == "200"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_ADDR"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(srv.port)
    assert env["SERVER_NAME"] == "test"            # the harness sends Host: test
    assert env["HTTP_HOST"] == "test"
    assert env["HTTP_X_CUSTOM"] == "v1"
    assert "HTTP_PROXY" not in env
    assert "PATH_INFO" in env


@needs_app
def test_no_path_info_means_no_path_translated(appsrv):
    env = get_env(appsrv(), "/t.fcgi")
    assert env["PATH_INFO"] == ""
    assert "PATH_TRANSLATED" not in env


@needs_app
def test_server_name_is_host_without_port(appsrv):
    env = get_env(appsrv(), "/t.fcgi", headers={"Host": "example.org:8443"})
    assert env["SERVER_NAME"] == "example.org"
    assert env["HTTP_HOST"] == "example.org:8443"


@needs_app
def test_missing_script_is_404_without_contacting_the_app(appsrv):
    srv = appsrv()
    r = srv.get("/nope.fcgi")
    assert r.status == 404
    assert app_pids(srv) == []          # nothing was started for it


@needs_app
def test_script_is_the_first_matching_segment(appsrv):
    # /img/x.jpg/y.fcgi: the script is y.fcgi under the *file* x.jpg: 404, x.jpg never runs.
    srv = appsrv()
    assert srv.get("/img/x.jpg/y.fcgi").status == 404
    assert app_pids(srv) == []


@needs_app
def test_a_verb_the_handler_does_not_take_is_405_not_the_static_file(appsrv):
    srv = appsrv(handler_keys={"verb": "POST"}, files={"t.fcgi": b"static body"})
    r = srv.get("/t.fcgi")
    assert r.status == 405 and r.header("Allow") == "POST"   # SPEC §6: never the script's source
    assert b"static body" not in r.body
    r = srv.get("/t.fcgi", method="POST", body=b"x", headers={"Content-Length": "1"})
    assert r.status == 200 and b"REQUEST_METHOD=POST" in r.body


@needs_app
def test_url_prefix_mapping_gives_path_info(appsrv):
    srv = appsrv(handler_keys={"path": "/api/", "resourceType": "Unspecified"})
    env = get_env(srv, "/api/users/7")
    assert env["SCRIPT_NAME"] == "/api"
    assert env["PATH_INFO"] == "/users/7"


@needs_app
def test_script_processor_iis_form(appsrv):
    srv = appsrv(handler_keys={"app": FCGI_APP})       # "fullPath|arguments" with no arguments
    assert get_env(srv, "/t.fcgi")["SCRIPT_NAME"] == "/t.fcgi"


@needs_app
def test_head_reaches_the_app_as_head_and_no_body_is_sent(appsrv):
    srv = appsrv()
    with srv.connect() as c:
        c.send(b"HEAD /t.fcgi HTTP/1.1\r\nHost: x\r\n\r\nGET /t.fcgi?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        h = c.read_response(method="HEAD")
        assert h.status == 200 and h.body == b""
        g = c.read_response()
        assert g.status == 200 and b"REQUEST_METHOD=GET" in g.body


# ---- bodies ----

@needs_app
def test_post_body_with_content_length(appsrv):
    srv = appsrv()
    body = os.urandom(300_000)
    r = srv.get("/t.fcgi?echo=body", method="POST", body=body, headers={"Content-Length": str(len(body))})
    assert r.status == 200 and r.body == body


@needs_app
def test_chunked_body_is_collected_and_gets_content_length(appsrv):
    srv = appsrv()
    body = os.urandom(2_500_000)           # past the in-memory threshold: spills to a temp file
    with srv.connect() as c:
        c.send(b"POST /t.fcgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        c.send(helpers.chunked(*[body[i:i + 100_000] for i in range(0, len(body), 100_000)]))
        r = c.read_response()
    env = env_of(r.body)
    assert r.status == 200
    assert env["CONTENT_LENGTH"] == str(len(body))
    assert env["stdin_bytes"] == str(len(body))


@needs_app
def test_expect_100_continue_for_an_app(appsrv):
    srv = appsrv()
    with srv.connect() as c:
        c.send(b"POST /t.fcgi?echo=body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_head(timeout=3)
        assert interim[1] == 100
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello"


@needs_app
def test_big_response_streams(appsrv):
    srv = appsrv(handler_keys={"responseBufferLimit": 0})
    # HTTP/1.0: the body is close-delimited, so it can be counted without parsing 20 MB of chunks.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"GET /t.fcgi?big=20m HTTP/1.0\r\n\r\n")
    data = bytearray()
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        data += d
    s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert len(body) == 20 * 1024 * 1024
    assert body[:16] == b"0123456789abcdef" and body[-16:] == b"0123456789abcdef"


# ---- responses, headers, errors ----

@needs_app
def test_status_and_relaxed_headers(appsrv):
    srv = appsrv()
    assert srv.get("/t.fcgi?status=404").status == 404
    for block in ("nospace", "lfonly", "mixed", "statusnoreason", "httpline", "nocolon", "spaces"):
        r = srv.get(f"/t.fcgi?rawheaders={block}")
        assert r.status in (200, 404), (block, r)
        for k, v in r.headers:
            assert "\r" not in v and "\n" not in v and "\0" not in v


@needs_app
def test_strict_headers_give_502(appsrv):
    srv = appsrv(app_keys={"responseHeaders": "strict"})
    assert srv.get("/t.fcgi?rawheaders=nospace").status == 502
    assert srv.get("/t.fcgi?rawheaders=nocolon").status == 502
    srv.wait_for_log(r"bad response headers")
    assert srv.get("/t.fcgi").status == 200          # a fresh process answers the next one


@needs_app
def test_app_stdout_stderr_fds_are_logged_with_app_and_pid(appsrv):
    srv = appsrv()
    env = get_env(srv, "/t.fcgi")
    srv.wait_for_log(rf"app\[{env['pid']}\].*fcgi_app {env['pid']} started")


@needs_app
def test_crash_mid_request_is_502_and_the_next_request_works(appsrv):
    srv = appsrv()
    assert srv.get("/t.fcgi?crash=1").status == 502
    assert srv.get("/t.fcgi").status == 200


# ---- the pool ----

@needs_app
def test_one_request_at_a_time_per_process_and_max_instances(appsrv):
    srv = appsrv(app_keys={"maxInstances": 2})
    results = []

    def one():
        results.append(env_of(srv.get("/t.fcgi?sleep=300").body)["pid"])
    ts = [threading.Thread(target=one) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    assert len(results) == 6
    assert len(set(results)) <= 2          # never more than maxInstances processes


@needs_app
def test_queue_overflow_gives_503(appsrv):
    srv = appsrv(app_keys={"maxInstances": 1, "queueLength": 1})
    statuses = []

    def one():
        statuses.append(srv.get("/t.fcgi?sleep=1500").status)
    ts = [threading.Thread(target=one) for _ in range(4)]
    for t in ts:
        t.start()
        time.sleep(0.05)
    for t in ts:
        t.join(20)
    assert sorted(statuses) == [200, 200, 503, 503], statuses


@needs_app
def test_instance_max_requests_recycles(appsrv):
    srv = appsrv(app_keys={"maxInstances": 1, "instanceMaxRequests": 3})
    pids = [env_of(srv.get("/t.fcgi").body)["pid"] for _ in range(7)]
    assert pids[0] == pids[1] == pids[2]
    assert pids[3] != pids[2]
    assert pids[3] == pids[4] == pids[5] != pids[6]


@needs_app
def test_process_exiting_on_its_own_costs_no_client_an_error(appsrv):
    srv = appsrv(app_keys={"maxInstances": 2, "instanceMaxRequests": 0})
    for i in range(40):
        r = srv.get("/t.fcgi?exit_after=3")
        assert r.status == 200, (i, r)


@needs_app
def test_idle_timeout_ends_processes(appsrv):
    srv = appsrv(app_keys={"idleTimeout": 1})
    pid = int(env_of(srv.get("/t.fcgi").body)["pid"])
    helpers.wait_until(lambda: not alive(pid), 6, what="idle process ended")


@needs_app
@pytest.mark.parametrize("which,keys", [("activityTimeout", {"activityTimeout": 1}),
                                        ("requestTimeout", {"requestTimeout": 1, "activityTimeout": 30})])
def test_timeouts_give_500_and_a_fresh_process(appsrv, which, keys):
    srv = appsrv(app_keys=dict(keys, maxInstances=1))
    first = int(env_of(srv.get("/t.fcgi").body)["pid"])
    t0 = time.monotonic()
    path = "/t.fcgi?hang=1" if which == "activityTimeout" else "/t.fcgi?big=1g&sleep=0"
    if which == "requestTimeout":
        path = "/t.fcgi?hang=1"
    r = srv.get(path)
    assert r.status == 500, r
    assert time.monotonic() - t0 < 6
    srv.wait_for_log(which)
    helpers.wait_until(lambda: not alive(first), 5, what="timed-out process killed")
    second = int(env_of(srv.get("/t.fcgi").body)["pid"])
    assert second != first


@needs_app
def test_request_timeout_while_the_app_keeps_talking(appsrv):
    # stderr every few ms keeps activityTimeout happy; requestTimeout still ends it.
    srv = appsrv(app_keys={"requestTimeout": 1, "activityTimeout": 30, "maxInstances": 1},
                 handler_keys={"responseBufferLimit": 0})
    t0 = time.monotonic()
    with srv.connect() as c:
        c.send(b"GET /t.fcgi?big=4g HTTP/1.1\r\nHost: x\r\n\r\n")
        # Raw reads until the server closes (parsing gigabytes of chunks in Python would make the
        # client, not the server, the slow side on a loaded machine).
        c.sock.settimeout(8)
        got = 0
        try:
            while time.monotonic() - t0 < 8:
                d = c.sock.recv(1 << 20)
                if not d:
                    break
                got += len(d)
        except (socket.timeout, ConnectionError):
            pass
    assert time.monotonic() - t0 < 8, f"still open after 8 s ({got} bytes read)"
    srv.wait_for_log("requestTimeout")


@needs_app
def test_crash_loop_marks_the_pool_failed(appsrv, tmp_path):
    wrapper = tmp_path / "failing.sh"
    wrapper.write_text(f"#!/bin/sh\nexit 1\n")
    wrapper.chmod(0o755)
    srv = appsrv(app_keys={"full_path": str(wrapper), "rapidFailsPerMinute": 3})
    statuses = [srv.get("/t.fcgi").status for _ in range(8)]
    assert all(s in (502, 503) for s in statuses), statuses
    srv.wait_for_log(r"failed")
    t0 = time.monotonic()
    assert srv.get("/t.fcgi").status == 503
    assert time.monotonic() - t0 < 1           # refused at once, no spawn storm


# ---- php-cgi ----

@needs_php
def test_php_2000_requests_with_php_fcgi_max_requests(start_server):
    srv = start_server(
        files={"hello.php": b"<?php echo 'hi ', getmypid();"},
        extra=app_section("php", PHP_CGI, env="PHP_FCGI_MAX_REQUESTS=37", instanceMaxRequests=50,
                          maxInstances=4)
        + handler_section("php", "*.php", "php"))
    failures = []
    pids = set()

    def worker(n):
        with srv.connect() as c:
            for i in range(n):
                c.send(b"GET /hello.php HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response()
                if r.status != 200 or not r.body.startswith(b"hi "):
                    failures.append(r)
                else:
                    pids.add(r.body.split()[1])
    ts = [threading.Thread(target=worker, args=(500,)) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert failures == []
    assert len(pids) >= 2000 // 50                      # processes were recycled


@needs_php
def test_php_post_and_path_info(start_server):
    srv = start_server(
        files={"f.php": b"<?php echo $_POST['name'] ?? '-', '|', $_SERVER['PATH_INFO'] ?? '', '|', $_SERVER['REQUEST_METHOD'];"},
        extra=app_section("php", PHP_CGI) + handler_section("php", "*.php", "php"))
    r = srv.get("/f.php/a/b", method="POST", body=b"name=world",
                headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "10"})
    assert r.status == 200 and r.body == b"world|/a/b|POST"


@needs_php
def test_index_php(start_server):
    srv = start_server(files={"index.php": b"<?php echo 'index ', $_SERVER['SCRIPT_NAME'];"},
                       extra=app_section("php", PHP_CGI) + handler_section("php", "*.php", "php"))
    r = srv.get("/")
    assert r.status == 200 and r.body == b"index /index.php"


# ---- no orphans ----

@needs_app
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_process_survives_the_server(appsrv, sig):
    srv = appsrv(app_keys={"maxInstances": 3})
    ts = [threading.Thread(target=lambda: srv.get("/t.fcgi?sleep=200")) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    pids = app_pids(srv)
    assert pids, "no FastCGI process was started"
    srv.signal(sig)
    srv.wait_exit(10)
    helpers.wait_until(lambda: not any(alive(p) for p in pids), 5,
                       what="every FastCGI process gone")


@needs_app
def test_failed_pool_recovers_after_a_minute(appsrv, tmp_path):
    # The application fails at start while a marker file exists (a broken deploy), then is fixed.
    marker = tmp_path / "broken"
    marker.write_text("1")
    wrapper = tmp_path / "app.sh"
    wrapper.write_text(f"#!/bin/sh\n[ -e {marker} ] && exit 1\nexec {FCGI_APP}\n")
    wrapper.chmod(0o755)
    srv = appsrv(app_keys={"full_path": str(wrapper), "rapidFailsPerMinute": 2})
    for _ in range(6):
        srv.get("/t.fcgi")
    srv.wait_for_log(r"failed")
    assert srv.get("/t.fcgi").status == 503
    marker.unlink()
    # SPEC 4.6: after a minute it tries again.
    helpers.wait_until(lambda: srv.get("/t.fcgi").status == 200, 75, interval=1.0,
                       what="the pool to recover")


@needs_app
def test_client_leaving_mid_request_does_not_cost_the_process(appsrv):
    srv = appsrv(app_keys={"maxInstances": 1})
    first = env_of(srv.get("/t.fcgi").body)
    with srv.connect() as c:
        c.send(b"GET /t.fcgi?sleep=300 HTTP/1.1\r\nHost: x\r\n\r\n")
    # The process finishes that request (its output is dropped) and serves the next one.
    second = env_of(srv.get("/t.fcgi").body)
    assert second["pid"] == first["pid"]
    assert int(second["requests"]) == int(first["requests"]) + 2
