"""monitorChangesTo (SPEC §4.8): the ways a file really changes each recycle the pool; requests keep
flowing. With maxInstances = 1 the test app's pid names the process that answered."""
import os
import threading
import time

import pytest

import helpers
from test_20_fastcgi import (PHP_CGI, alive, app_section, env_of, handler_section, needs_app,
                             needs_php)


def start(start_server, watched, **app_keys):
    keys = {"maxInstances": 1, "monitorChangesTo": watched}
    keys.update(app_keys)
    return start_server(files={"t.fcgi": b"x"}, extra=app_section(**keys) + handler_section())


def pid_of(srv):
    r = srv.get("/t.fcgi")
    assert r.status == 200, r
    return int(env_of(r.body)["pid"])


def warm_settled(srv):
    """Every warm recycle logged has finished (recycleMode = warm, the default: the old process
    serves until its replacement is ready, SPEC 4.9; test_91_warm.py tests that part)."""
    log = srv.error_log()
    return log.count("warm recycle ") >= log.count("(warm: the replacements start first)")


def recycled_after(srv, old_pid, count_before):
    """Wait for one more recycle line for the watched file and for the replacement to take over,
    then check the next request is served by a new process and the old one goes away."""
    helpers.wait_until(lambda: srv.error_log().count("recycling") > count_before, 5,
                       what="the pool recycled")
    helpers.wait_until(lambda: warm_settled(srv), 10, what="the warm recycle done")
    new_pid = pid_of(srv)
    assert new_pid != old_pid
    helpers.wait_until(lambda: not alive(old_pid), 5, what="the old process ended")
    return new_pid


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


@needs_app
def test_in_place_write_and_touch_recycle(start_server, tmp_path):
    watched = str(tmp_path / "app.ini")
    write(watched, "a = 1\n")
    srv = start(start_server, watched)
    srv.wait_for_log(rf"monitoring {watched} for changes")
    pid = pid_of(srv)
    n = srv.error_log().count("recycling")
    with open(watched, "a") as f:                      # appended in place
        f.write("b = 2\n")
    pid = recycled_after(srv, pid, n)
    assert f"{watched} changed" in srv.error_log()
    n = srv.error_log().count("recycling")
    st = os.stat(watched)
    os.utime(watched, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))   # touch
    recycled_after(srv, pid, n)


@needs_app
def test_rename_over_as_editors_do(start_server, tmp_path):
    watched = str(tmp_path / "app.ini")
    write(watched, "a = 1\n")
    srv = start(start_server, watched)
    pid = pid_of(srv)
    for i in range(2):                                 # the watch survives the first rename
        n = srv.error_log().count("recycling")
        tmp = str(tmp_path / f".app.ini.swp{i}")
        write(tmp, f"a = {i + 2}\n")
        os.rename(tmp, watched)                        # sed -i, vim, most editors
        pid = recycled_after(srv, pid, n)


@needs_app
def test_delete_then_recreate(start_server, tmp_path):
    watched = str(tmp_path / "app.ini")
    write(watched, "a = 1\n")
    srv = start(start_server, watched)
    pid = pid_of(srv)
    n = srv.error_log().count("recycling")
    os.unlink(watched)
    srv.wait_for_log(rf"monitorChangesTo {watched} was removed")
    assert pid_of(srv) == pid                          # deleting alone recycles nothing
    assert srv.error_log().count("recycling") == n
    write(watched, "a = 2\n")
    pid = recycled_after(srv, pid, n)
    n = srv.error_log().count("recycling")
    with open(watched, "a") as f:                      # the new file is watched too
        f.write("b = 1\n")
    recycled_after(srv, pid, n)


@needs_app
def test_symlink_switch_and_write_through_the_link(start_server, tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    write(str(tmp_path / "v1" / "app.ini"), "v = 1\n")
    write(str(tmp_path / "v2" / "app.ini"), "v = 2\n")
    watched = str(tmp_path / "app.ini")
    os.symlink(str(tmp_path / "v1" / "app.ini"), watched)
    srv = start(start_server, watched)
    pid = pid_of(srv)
    n = srv.error_log().count("recycling")
    tmp_link = str(tmp_path / "app.ini.new")
    os.symlink(str(tmp_path / "v2" / "app.ini"), tmp_link)
    os.rename(tmp_link, watched)                       # ln -sfn: an atomic switch
    pid = recycled_after(srv, pid, n)
    n = srv.error_log().count("recycling")
    with open(str(tmp_path / "v2" / "app.ini"), "a") as f:   # the target edited in place
        f.write("w = 1\n")
    pid = recycled_after(srv, pid, n)
    n = srv.error_log().count("recycling")
    write(str(tmp_path / "v1" / "app.ini"), "v = 9\n")      # the old target: not ours any more
    time.sleep(0.5)                                    # (a negative check: give it a chance)
    assert pid_of(srv) == pid and srv.error_log().count("recycling") == n


@needs_app
def test_missing_at_start_is_a_warning_and_watched(start_server, tmp_path):
    watched = str(tmp_path / "conf.d" / "app.ini")     # not even the directory exists yet
    srv = start(start_server, watched)
    srv.wait_for_log(rf"monitorChangesTo {watched} does not exist: watching for it to appear")
    pid = pid_of(srv)
    n = srv.error_log().count("recycling")
    os.mkdir(str(tmp_path / "conf.d"))
    write(watched, "a = 1\n")
    pid = recycled_after(srv, pid, n)
    assert f"{watched} appeared" in srv.error_log()
    n = srv.error_log().count("recycling")
    with open(watched, "a") as f:
        f.write("b = 2\n")
    recycled_after(srv, pid, n)


@needs_app
def test_busy_process_finishes_its_request_new_requests_go_to_fresh_processes(start_server,
                                                                              tmp_path):
    watched = str(tmp_path / "app.ini")
    write(watched, "a = 1\n")
    srv = start(start_server, watched, maxInstances=2)
    conn = srv.connect()
    conn.send(b"GET /t.fcgi?mark=slow&sleep=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
    srv.wait_for_log(r"fcgi_app \d+ mark slow")           # the slow request is in its process
    n = srv.error_log().count("recycling")
    with open(watched, "a") as f:
        f.write("b = 2\n")
    helpers.wait_until(lambda: srv.error_log().count("recycling") > n, 5, what="recycled")
    fresh = pid_of(srv)                                # served while the slow one still runs
    slow = conn.read_response(timeout=5)
    conn.close()
    assert slow.status == 200
    slow_pid = int(env_of(slow.body)["pid"])
    assert slow_pid != fresh
    helpers.wait_until(lambda: not alive(slow_pid), 5, what="the draining process ended after "
                       "its request")
    assert pid_of(srv) == fresh


class Load:
    """Keep-alive clients hammering a URL in threads; counts statuses and errors."""

    def __init__(self, srv, path, clients=4):
        self.srv, self.path = srv, path
        self.stop = threading.Event()
        self.ok = 0
        self.bad = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]

    def run(self):
        conn = self.srv.connect()
        try:
            while not self.stop.is_set():
                conn.send(f"GET {self.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                r = conn.read_response(timeout=10)
                with self.lock:
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.bad.append((r.status, r.body[:200]))
        except Exception as e:                         # noqa: BLE001 - any error is a failure
            with self.lock:
                self.bad.append(("error", repr(e)))
        finally:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(15)


@needs_php
def test_php_ini_edit_shows_in_the_next_response_and_no_request_fails(start_server, tmp_path):
    ini = str(tmp_path / "php.ini")
    write(ini, "memory_limit = 64M\n")
    srv = start_server(
        files={"limit.php": b"<?php echo ini_get('memory_limit');"},
        extra=app_section(name="php", full_path=PHP_CGI, arguments=f"-c {ini}", maxInstances=4,
                          monitorChangesTo=ini)
        + handler_section(name="php", path="*.php", app="php"))
    r = srv.get("/limit.php")
    assert (r.status, r.body) == (200, b"64M")
    with Load(srv, "/limit.php") as load:
        helpers.wait_until(lambda: load.ok > 50, 10, what="load running")
        n = srv.error_log().count("recycling")
        write(ini, "memory_limit = 96M\n")             # in place, as `echo > php.ini` does
        helpers.wait_until(lambda: srv.error_log().count("recycling") > n, 5, what="recycled")
        helpers.wait_until(lambda: warm_settled(srv), 10, what="the warm recycle done")
        r = srv.get("/limit.php")
        assert (r.status, r.body) == (200, b"96M")
        seen = load.ok
        helpers.wait_until(lambda: load.ok > seen + 50, 10, what="load still running")
    assert load.bad == [] and load.ok > 100
