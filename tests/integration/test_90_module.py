"""The FastCGI module beyond IIS (issue 13, SPEC 4.9, 4.10, 4.12): minInstances,
maxConcurrentStarts, Retry-After on 503, the per-process view of `ctl status`, last-crash
diagnostics, privateMemoryLimit and slowRequestSeconds — with real tests/apps/fcgi_app and php-cgi
processes, real signals, and waits on conditions with deadlines."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

import helpers
from conftest import fcgihost_bin
from test_20_fastcgi import (PHP_CGI, alive, app_section, env_of, handler_section, needs_app,
                             needs_php)

OK, REFUSED = 0, 1


def start(start_server, files=None, extra="", **app_keys):
    tree = {"t.fcgi": b"x"}
    tree.update(files or {})
    return start_server(files=tree, extra=app_section(**app_keys) + handler_section() + extra)


def pool_of(srv, name="app"):
    cp = srv.ctl("status", name, "--json")
    assert cp.returncode == OK, cp.stderr
    (pool,) = json.loads(cp.stdout)["pools"]
    return pool


def procs(srv, state=None):
    return [p for p in pool_of(srv)["process_list"] if state is None or p["state"] == state]


def prometheus(srv):
    r = srv.get("/fcgihost-status?format=prometheus")
    assert r.status == 200, r
    return r.body.decode()


def get_many(srv, paths, timeout=30):
    """GET each path on its own connection, all at once; returns the responses in order."""
    out = [None] * len(paths)

    def one(i, p):
        r = srv.raw(helpers.request("GET", p, [("Connection", "close")]), ("GET",), timeout=timeout)
        assert not r.error, (p, r.error)
        out[i] = r.first

    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert all(r is not None for r in out), "a request did not end"
    return out


def check_config(tmp_path, text):
    conf = tmp_path / "t.conf"
    (tmp_path / "root").mkdir(exist_ok=True)
    conf.write_text("[server]\nroot = root\n" + text)
    return subprocess.run([fcgihost_bin(), "-t", "-c", str(conf)], capture_output=True, text=True,
                          timeout=30)


# ---- minInstances (SPEC 4.9) ------------------------------------------------------------------

@needs_app
def test_min_instances_started_at_start_and_kept_after_idle_timeout(start_server):
    srv = start(start_server, minInstances=2, maxInstances=4, idleTimeout=1,
                env="FCGI_APP_START_DELAY_MS=300")
    first = helpers.wait_until(lambda: len(procs(srv, "idle")) == 2 and procs(srv, "idle"), 10,
                               what="two processes started before any request")
    pids = sorted(p["pid"] for p in first)
    pool = pool_of(srv)
    assert pool["min_instances"] == 2 and pool["spawns"] == 2, pool
    # libfcgi drops a unix connection on which nothing arrives within 2 s of its accept(): the
    # pre-started processes stay usable past that, not dropped and replaced
    helpers.wait_until(lambda: [p["idle_seconds"] >= 3 for p in procs(srv, "idle")] == [True] * 2,
                       10, what="both processes idle for 3 s")
    assert sorted(p["pid"] for p in procs(srv)) == pids and pool_of(srv)["spawns"] == 2
    assert "closed its connection" not in srv.error_log()
    # The first request finds one of them ready: no spawn, no wait for a process start (300 ms).
    r = srv.get("/t.fcgi")
    assert r.status == 200 and int(env_of(r.body)["pid"]) in pids
    pool = pool_of(srv)
    assert pool["spawns"] == 2 and pool["queue"]["wait_ms_total"] < 300, pool
    # Three at once: a third process, which idleTimeout ends; the two stay past it.
    rs = get_many(srv, ["/t.fcgi?sleep=400"] * 3)
    assert [x.status for x in rs] == [200] * 3
    helpers.wait_until(lambda: pool_of(srv)["recycles"]["idle"] == 1, 10,
                       what="the third process ended by idleTimeout")
    helpers.wait_until(lambda: all(p["idle_seconds"] >= 2 for p in procs(srv, "idle")), 10,
                       what="the two remaining processes idle for twice idleTimeout")
    left = procs(srv)
    assert len(left) == 2 and all(p["state"] == "idle" for p in left), left
    assert pool_of(srv)["recycles"]["idle"] == 1
    assert all(alive(p["pid"]) for p in left)
    assert 'fcgihost_min_instances{app="app"} 2' in prometheus(srv)


@needs_app
def test_a_process_slower_to_start_than_the_probe_grace_is_kept(start_server):
    # ready after the 2 s grace of FCGI_GET_VALUES; its answer comes later, while it is idle
    srv = start(start_server, minInstances=1, maxInstances=2, env="FCGI_APP_START_DELAY_MS=2600")
    m = srv.wait_for_log(r"fcgi_app (\d+) start", timeout=10)
    pid = int(m.group(1))
    srv.wait_for_log(r"app: started process", timeout=5)
    helpers.wait_until(lambda: procs(srv, "idle") and procs(srv, "idle")[0]["idle_seconds"] >= 2,
                       15, what="the slow process idle for 2 s after its start")
    r = srv.get("/t.fcgi")
    assert r.status == 200 and int(env_of(r.body)["pid"]) == pid, r
    assert pool_of(srv)["spawns"] == 1
    assert "outside a request" not in srv.error_log()


@needs_app
def test_min_instances_live_set_and_recycle_replace_at_once(start_server):
    srv = start(start_server, minInstances=1, maxInstances=3)
    helpers.wait_until(lambda: len(procs(srv, "idle")) == 1, 10, what="one process")
    cp = srv.ctl("set", "app", "minInstances", "3")
    assert cp.returncode == OK, cp.stderr
    helpers.wait_until(lambda: len(procs(srv, "idle")) == 3, 10, what="three processes")
    old = {p["pid"] for p in procs(srv)}
    assert srv.ctl("recycle", "app").returncode == OK
    helpers.wait_until(lambda: len(procs(srv, "idle")) == 3 and not old & {p["pid"] for p in procs(srv)},
                       10, what="three new processes after the recycle")
    # above maxInstances: refused, nothing changes; and maxInstances cannot go under it
    cp = srv.ctl("set", "app", "minInstances", "4")
    assert cp.returncode == REFUSED and "maxInstances" in cp.stderr, cp
    cp = srv.ctl("set", "app", "maxInstances", "2")
    assert cp.returncode == REFUSED and "minInstances" in cp.stderr, cp
    pool = pool_of(srv)
    assert pool["min_instances"] == 3 and pool["limit"] == 3


@needs_app
def test_min_instances_do_not_apply_to_an_application_a_reload_removed(start_server):
    srv = start(start_server, minInstances=2, maxInstances=2)
    helpers.wait_until(lambda: len(procs(srv, "idle")) == 2, 10, what="two processes")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", srv.get("/t.fcgi?mark=inflight&sleep=1500")))
    t.start()
    try:
        srv.wait_for_log(r"fcgi_app \d+ mark inflight")
        idle = procs(srv, "idle")[0]["pid"]
        with open(srv.conf, "w") as f:  # the application and its handler leave the configuration
            f.write(srv.config_text.split("[fastcgi:app]")[0])
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"configuration reloaded")
        os.kill(idle, 9)
        srv.wait_for_log(rf"app\[{idle}\]: crashed: killed by signal 9")
    finally:
        t.join(15)
    assert out["r"].status == 200, out["r"]
    srv.wait_for_log(r"app: stopping")
    # the retired pool served its request and started nothing to stay at minInstances
    assert len(re.findall(r"app: started process", srv.error_log())) == 2, srv.error_log()[-3000:]


def test_min_instances_above_max_instances_is_an_error_at_its_line(tmp_path):
    cp = check_config(tmp_path, "[fastcgi:a]\nfullPath = /bin/cat\nmaxInstances = 2\n"
                      "minInstances = 3\n")
    assert cp.returncode == 1
    assert re.search(r"t\.conf:6: minInstances \(3\) is above maxInstances \(2\)",
                     cp.stderr), cp.stderr
    cp = check_config(tmp_path, "[fastcgi:a]\nfullPath = /bin/cat\nminInstances = 10001\n"
                      "maxConcurrentStarts = 0\n")
    assert cp.returncode == 1
    assert re.search(r"t\.conf:5: minInstances: '10001'", cp.stderr), cp.stderr
    assert re.search(r"t\.conf:6: maxConcurrentStarts: '0'", cp.stderr), cp.stderr
    cp = check_config(tmp_path, "[fastcgi:a]\nfullPath = /bin/cat\nprivateMemoryLimit = 1g\n"
                      "slowRequestSeconds = -1\n")
    assert cp.returncode == 1
    assert re.search(r"t\.conf:5: privateMemoryLimit: '1g' is not a whole number", cp.stderr), cp.stderr
    assert re.search(r"t\.conf:6: slowRequestSeconds: '-1'", cp.stderr), cp.stderr
    cp = check_config(tmp_path, "[fastcgi:a]\nfullPath = /bin/cat\nmaxInstances = 0\n"
                      "minInstances = 30\nmaxConcurrentStarts = 2\nprivateMemoryLimit = 262144\n"
                      "slowRequestSeconds = 5\n")
    assert cp.returncode == 0, cp.stderr


# ---- maxConcurrentStarts (SPEC 4.9) -----------------------------------------------------------

def start_intervals(log):
    """{pid: [begin_ns, end_ns]} from fcgi_app's FCGI_APP_TRACE_START lines."""
    iv = {}
    for pid, what, ns in re.findall(r"fcgi_app (\d+) start-(begin|end) (\d+)", log):
        iv.setdefault(int(pid), [None, None])[0 if what == "begin" else 1] = int(ns)
    return iv


def max_overlap(intervals):
    events = []
    for b, e in intervals:
        events += [(b, 1), (e, -1)]
    events.sort(key=lambda x: (x[0], x[1]))  # an end before a begin at the same instant
    most = cur = 0
    for _, d in events:
        cur += d
        most = max(most, cur)
    return most


@needs_app
def test_growth_from_4_to_64_starts_at_most_max_concurrent_starts_at_once(start_server):
    srv = start(start_server, minInstances=4, maxInstances=64, maxConcurrentStarts=4,
                idleTimeout=0, env=["FCGI_APP_START_DELAY_MS=150", "FCGI_APP_TRACE_START=1"])
    helpers.wait_until(lambda: len(procs(srv, "idle")) == 4, 10, what="four processes")
    seen_starting = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen_starting.append(pool_of(srv)["processes"]["starting"])
            time.sleep(0.05)

    w = threading.Thread(target=watch)
    w.start()
    try:
        rs = get_many(srv, ["/t.fcgi?sleep=4000"] * 64, timeout=60)
    finally:
        done.set()
        w.join(10)
    assert [r.status for r in rs] == [200] * 64
    # Processes that finish their request take queued ones, so a slow machine (a sanitizer build)
    # needs fewer than 64; the pool still has to grow far past its four.
    served_by = {env_of(r.body)["pid"] for r in rs}
    assert len(served_by) >= 32, len(served_by)
    iv = start_intervals(srv.error_log())
    assert len(iv) == pool_of(srv)["spawns"] and all(b and e for b, e in iv.values()), iv
    # The processes' own clocks: never more than four of them loading at the same time.
    assert max_overlap(iv.values()) <= 4, sorted(iv.values())
    assert max(seen_starting) >= 1 and len(seen_starting) > 10, seen_starting
    pool = pool_of(srv)
    assert pool["max_concurrent_starts"] == 4 and pool["spawns"] >= len(served_by)
    assert 'fcgihost_max_concurrent_starts{app="app"} 4' in prometheus(srv)


@needs_app
def test_max_concurrent_starts_is_live(start_server):
    srv = start(start_server, maxInstances=6, idleTimeout=0,
                env=["FCGI_APP_START_DELAY_MS=100", "FCGI_APP_TRACE_START=1"])
    cp = srv.ctl("set", "app", "maxConcurrentStarts", "1")
    assert cp.returncode == OK, cp.stderr
    assert pool_of(srv)["max_concurrent_starts"] == 1
    rs = get_many(srv, ["/t.fcgi?sleep=1500"] * 6)
    assert [r.status for r in rs] == [200] * 6
    iv = start_intervals(srv.error_log())
    assert len(iv) == 6 and max_overlap(iv.values()) == 1, sorted(iv.values())
    cp = srv.ctl("set", "app", "maxConcurrentStarts", "0")
    assert cp.returncode == REFUSED and "maxConcurrentStarts" in cp.stderr


# ---- Retry-After on 503 (SPEC 4.12) -----------------------------------------------------------

@needs_app
def test_queue_full_503_carries_retry_after(start_server):
    srv = start(start_server, maxInstances=1, queueLength=0)
    holder = threading.Thread(target=lambda: srv.get("/t.fcgi?sleep=1500"))
    holder.start()
    try:
        helpers.wait_until(lambda: pool_of(srv)["processes"]["busy"] == 1, 10,
                           what="the one process busy")
        r = srv.get("/t.fcgi")
        assert r.status == 503, r
        assert r.header("Retry-After") == "1", r.raw_head
    finally:
        holder.join(10)
    assert srv.get("/t.fcgi").status == 200  # and an answer that is not a 503 carries none
    assert srv.get("/t.fcgi").header("Retry-After") is None


@needs_app
def test_failed_pool_503_carries_retry_after(start_server):
    srv = start(start_server, rapidFailsPerMinute=2, env="FCGI_APP_FAIL_AT_START=1")
    r = srv.get("/t.fcgi")
    assert r.status == 503, r
    assert 50 <= int(r.header("Retry-After")) <= 60, r.raw_head
    pool = pool_of(srv)
    assert pool["failed"] is True and pool["rapid_fails"] >= 3
    r = srv.get("/t.fcgi")
    assert r.status == 503 and 1 <= int(r.header("Retry-After")) <= 60, r.raw_head


@needs_app
def test_retry_after_survives_the_error_page(start_server):
    srv = start_server(files={"t.fcgi": b"x", "down.html": b"down for now\n"},
                       server_opts={"errorPage": "503 /down.html"},
                       extra=app_section(rapidFailsPerMinute=1, env="FCGI_APP_FAIL_AT_START=1")
                       + handler_section())
    r = srv.get("/t.fcgi")
    assert r.status == 503 and r.body == b"down for now\n", r
    assert 50 <= int(r.header("Retry-After")) <= 60, r.raw_head


# ---- the per-process view (SPEC 4.12) ---------------------------------------------------------

@needs_app
def test_status_shows_the_request_each_process_serves(start_server):
    srv = start(start_server, minInstances=2, maxInstances=2)
    helpers.wait_until(lambda: len(procs(srv, "idle")) == 2, 10, what="two processes")
    long_uri = "/t.fcgi?mark=long&sleep=2500&pad=" + "x" * 400
    results = []
    ts = [threading.Thread(target=lambda p=p: results.append(srv.get(p)))
          for p in ("/t.fcgi?mark=slow1&sleep=2500", long_uri)]
    for t in ts:
        t.start()
    try:
        srv.wait_for_log(r"fcgi_app \d+ mark slow1")
        srv.wait_for_log(r"fcgi_app \d+ mark long")

        def busy_for_a_second():
            b = procs(srv, "busy")
            return len(b) == 2 and all(p["request"]["elapsed_seconds"] >= 1 for p in b) and b

        busy = helpers.wait_until(busy_for_a_second, 10, what="both requests seen running")
        (slow,) = [p for p in busy if "mark=slow1" in p["request"]["uri"]]
        (long_one,) = [p for p in busy if "mark=long" in p["request"]["uri"]]
        assert slow["request"]["method"] == "GET"
        assert slow["request"]["uri"] == "/t.fcgi?mark=slow1&sleep=2500"
        assert 1 <= slow["request"]["elapsed_seconds"] < 30
        assert slow["rss_bytes"] > 0 and slow["cpu_seconds"] >= 0 and slow["requests"] == 0
        cut = long_one["request"]["uri"]
        assert cut.endswith("...") and len(cut) == 255 and long_uri.startswith(cut[:-3])
        table = srv.ctl("status", "app").stdout
        head = re.search(r"^\s*PID\s+STATE\s+REQUESTS\s+AGE\s+IDLE\s+RSS\s+CPU\s+REQUEST$", table,
                         re.M)
        assert head, table
        row = re.search(rf"^\s*{slow['pid']}\s+busy\s+0\s+\S+\s+-\s+\S+\s+\S+\s+"
                        rf"GET /t\.fcgi\?mark=slow1&sleep=2500 \(\d+(\.\d+)?s\)$", table, re.M)
        assert row, table
        assert re.search(r"GET /t\.fcgi\?mark=long&sleep=2500&pad=x+\.\.\. \(", table), table
    finally:
        for t in ts:
            t.join(15)
    assert [r.status for r in results] == [200, 200]
    idle = helpers.wait_until(lambda: len(procs(srv, "idle")) == 2 and procs(srv, "idle"), 10,
                              what="both idle again")
    assert all(p["request"] is None and p["requests"] == 1 for p in idle), idle
    table = srv.ctl("status", "app").stdout
    assert re.search(rf"^\s*{idle[0]['pid']}\s+idle\s+1\s+\S+\s+\S+\s+\S+\s+\S+\s+-$", table, re.M), table


# ---- last-crash diagnostics (SPEC 4.12) -------------------------------------------------------

def php_section(**keys):
    return app_section(name="php", full_path=PHP_CGI, **keys) + \
        handler_section(name="php", path="*.php", app="php")


@needs_app
def test_crash_in_a_request_is_logged_with_its_request_and_stderr(start_server):
    srv = start(start_server, maxInstances=2)
    assert srv.get("/t.fcgi?mark=warm").status == 200
    r = srv.get("/t.fcgi?mark=boom&crash=1")
    assert r.status == 502, r
    m = srv.wait_for_log(r"app\[(\d+)\]: crashed: killed by signal 6 \(Aborted\) while serving "
                         r"GET /t\.fcgi\?mark=boom&crash=1 \(for \d+\.\d\d s\); last stderr: "
                         r"(.*)$")
    pid = int(m.group(1))
    assert f"fcgi_app {pid} mark boom" in m.group(2), m.group(0)
    assert m.group(0).count(" | ") <= 4  # bounded: five lines at most
    pool = helpers.wait_until(lambda: pool_of(srv)["last_crash"] and pool_of(srv), 5,
                              what="the crash in the status")
    c = pool["last_crash"]
    assert pool["crashes"] == 1
    assert c["pid"] == pid and c["signal"] == 6 and c["exit_status"] is None
    assert c["how"] == "killed by signal 6 (Aborted)" and c["requests"] == 1
    assert c["request"]["method"] == "GET" and c["request"]["uri"] == "/t.fcgi?mark=boom&crash=1"
    assert f"fcgi_app {pid} mark boom" in c["stderr"] and len(c["stderr"]) <= 5
    table = srv.ctl("status", "app").stdout
    assert re.search(rf"^  last crash \d+s ago \(1 in all\): pid {pid} killed by signal 6 \(Aborted\) "
                     rf"while serving GET /t\.fcgi\?mark=boom&crash=1 \(", table, re.M), table
    assert re.search(rf"^    stderr: fcgi_app {pid} mark boom$", table, re.M), table
    assert 'fcgihost_crashes_total{app="app"} 1' in prometheus(srv)
    # a non-zero exit status in a request, then a signal from outside between requests
    assert srv.get("/t.fcgi?crash=exit").status == 502
    m = srv.wait_for_log(r"app\[(\d+)\]: crashed: exited with status 3 while serving "
                         r"GET /t\.fcgi\?crash=exit ")
    c = helpers.wait_until(lambda: pool_of(srv)["last_crash"]["pid"] == int(m.group(1)) and
                           pool_of(srv)["last_crash"], 5, what="the second crash")
    assert c["signal"] is None and c["exit_status"] == 3 and pool_of(srv)["crashes"] == 2
    pid = int(env_of(srv.get("/t.fcgi").body)["pid"])
    os.kill(pid, 9)  # SIGKILL: a sanitizer build catches SIGSEGV itself
    srv.wait_for_log(rf"app\[{pid}\]: crashed: killed by signal 9 \(Killed\) "
                     r"between requests \(after 1 completed\)")
    c = helpers.wait_until(lambda: pool_of(srv)["last_crash"]["pid"] == pid and
                           pool_of(srv)["last_crash"], 5, what="the third crash")
    assert c["request"] is None and c["signal"] == 9
    # a process the server ends is no crash
    assert srv.ctl("recycle", "app").returncode == OK
    assert srv.get("/t.fcgi").status == 200
    assert pool_of(srv)["crashes"] == 3


@needs_php
def test_php_crash_names_the_script_and_its_error_log_line(start_server):
    srv = start_server(files={"die.php": b"<?php error_log('about to die in die.php'); flush(); "
                                         b"posix_kill(posix_getpid(), 11); echo 'not reached';",
                              "ok.php": b"<?php echo 'ok';"},
                       extra=php_section(env="PHP_FCGI_MAX_REQUESTS=0", maxInstances=2))
    assert srv.get("/ok.php").status == 200
    r = srv.get("/die.php?x=1")
    assert r.status == 502, r
    m = srv.wait_for_log(r"php\[(\d+)\]: crashed: killed by signal 11 \(Segmentation fault\) "
                         r"while serving GET /die\.php\?x=1 \(for [\d.]+ s\); last stderr: .*"
                         r"about to die in die\.php")
    c = helpers.wait_until(lambda: pool_of(srv, "php")["last_crash"], 5, what="the crash in status")
    assert c["pid"] == int(m.group(1)) and c["request"]["uri"] == "/die.php?x=1"
    assert any("about to die in die.php" in line for line in c["stderr"]), c
    assert srv.get("/ok.php").status == 200


# ---- privateMemoryLimit (SPEC 4.10) -----------------------------------------------------------

def private_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        text = f.read()
    return sum(int(re.search(rf"^{k}:\s+(\d+) kB", text, re.M).group(1))
               for k in ("Private_Clean", "Private_Dirty"))


@needs_app
def test_private_memory_limit_recycles_after_the_request_that_crossed_it(start_server):
    srv = start(start_server, maxInstances=1)
    pid = int(env_of(srv.get("/t.fcgi").body)["pid"])
    limit = private_kib(pid) + 10 * 1024  # what it holds now (more under a sanitizer), and 10 MiB
    assert srv.ctl("set", "app", "privateMemoryLimit", str(limit)).returncode == OK
    pids = []
    for _ in range(3):  # 4 MiB more private memory each: the third request passes the limit
        r = srv.get("/t.fcgi?leak=4m")
        assert r.status == 200, r
        pids.append(int(env_of(r.body)["pid"]))
    assert pids == [pid] * 3
    m = srv.wait_for_log(rf"app\[{pid}\]: private memory (\d+) KiB \(RSS (\d+) KiB\) is over "
                         rf"privateMemoryLimit = {limit} KiB after its request 4: recycling it")
    assert int(m.group(1)) > limit and int(m.group(2)) >= int(m.group(1))
    helpers.wait_until(lambda: not alive(pid), 5, what="the grown process ended")
    r = srv.get("/t.fcgi")
    assert r.status == 200 and int(env_of(r.body)["pid"]) != pid
    pool = pool_of(srv)
    assert pool["recycles"]["memory"] == 1 and pool["private_memory_limit_bytes"] == limit * 1024
    assert pool["crashes"] == 0 and pool["requests"]["5xx"] == 0
    assert 'fcgihost_recycles_total{app="app",reason="memory"} 1' in prometheus(srv)
    assert f'fcgihost_private_memory_limit_bytes{{app="app"}} {limit * 1024}' in prometheus(srv)


@needs_php
def test_php_that_leaks_is_recycled_and_no_request_fails(start_server):
    # FFI's persistent memory outlives the request, as a leaking extension's does.
    leak = (b"<?php $n = 4 << 20; $p = FFI::new(\"char[$n]\", false, true); "
            b"FFI::memset($p, 1, $n); echo 'leaked ', getmypid();")
    srv = start_server(files={"leak.php": leak},
                       extra=php_section(env="PHP_FCGI_MAX_REQUESTS=0", maxInstances=1,
                                         arguments="-d ffi.enable=1"))
    r = srv.get("/leak.php")
    assert r.status == 200 and r.body.startswith(b"leaked "), r
    pid = int(r.body.split()[1])
    limit = private_kib(pid) + 10 * 1024  # what it holds now, and 10 MiB
    assert srv.ctl("set", "php", "privateMemoryLimit", str(limit)).returncode == OK
    seen = []
    for _ in range(6):
        r = srv.get("/leak.php")
        assert r.status == 200, r
        seen.append(int(r.body.split()[1]))
    # 4 MiB a request: the third after the setting passes it; the next request has a new process
    assert seen[:3] == [pid] * 3 and seen[3] != pid, seen
    srv.wait_for_log(rf"php\[{pid}\]: private memory \d+ KiB \(RSS \d+ KiB\) is over "
                     rf"privateMemoryLimit = {limit} KiB after its request 4: recycling it")
    pool = pool_of(srv, "php")
    assert pool["recycles"]["memory"] >= 1 and pool["requests"]["5xx"] == 0


# ---- slowRequestSeconds (SPEC 4.12) -----------------------------------------------------------

SLOW_LINE = (r"{app}\[(\d+)\] request \d+ \({what}\): slow: (\d+\.\d{{3}}) s \(slowRequestSeconds = "
             r"{limit}\): queued (\S+) s, connected (\S+) s, request sent (\S+) s, first byte (\S+) s, "
             r"last byte (\S+) s$")


def slow_lines(srv, app, what, limit):
    rx = re.compile(SLOW_LINE.format(app=app, what=what, limit=limit), re.M)
    return [(int(m.group(1)), [float(x) for x in m.groups()[1:]]) for m in rx.finditer(srv.error_log())]


@needs_app
def test_slow_requests_are_logged_once_with_their_phases(start_server):
    srv = start(start_server, maxInstances=1, slowRequestSeconds=1)
    assert srv.get("/t.fcgi").status == 200  # the process is up: no start in the phases below
    rs = get_many(srv, ["/t.fcgi?sleep=1200&n=1", "/t.fcgi?sleep=1200&n=2"])
    assert [r.status for r in rs] == [200, 200]
    assert srv.get("/t.fcgi?fast=1").status == 200
    what = r"GET /t\.fcgi\?sleep=1200&n=(?:1|2)"
    lines = helpers.wait_until(lambda: len(slow_lines(srv, "app", what, 1)) == 2 and
                               slow_lines(srv, "app", what, 1), 5, what="two slow-request lines")
    for pid, (total, queued, connected, sent, first, last) in lines:
        assert 0 <= queued <= connected <= sent <= first <= last <= total, lines
        assert first >= 1.1 and total >= 1.2, lines
    # the second waited for the first's process: its 'connected' is about the first's duration
    waited = max(line[1][2] for line in lines)
    assert waited >= 1.0, lines
    log = srv.error_log()
    assert "fast=1" not in "".join(x for x in log.splitlines() if "slow:" in x)
    assert len(re.findall(r"\): slow: ", log)) == 2  # one line per slow request
    pool = pool_of(srv)
    assert pool["slow_requests"] == 2 and pool["slow_request_seconds"] == 1
    text = prometheus(srv)
    assert 'fcgihost_slow_requests_total{app="app"} 2' in text
    assert 'fcgihost_slow_request_seconds{app="app"} 1' in text
    # off, live: no more lines
    assert srv.ctl("set", "app", "slowRequestSeconds", "0").returncode == OK
    assert srv.get("/t.fcgi?sleep=1200&n=3").status == 200
    assert pool_of(srv)["slow_requests"] == 2
    assert len(re.findall(r"\): slow: ", srv.error_log())) == 2


@needs_php
def test_slow_php_page_shows_first_and_last_byte_apart(start_server):
    page = (b"<?php while (ob_get_level()) ob_end_flush(); echo 'first'; flush(); "
            b"usleep(1200000); echo ' last';")
    srv = start_server(files={"drip.php": page},
                       extra=php_section(env="PHP_FCGI_MAX_REQUESTS=0", maxInstances=1,
                                         slowRequestSeconds=1))
    r = srv.get("/drip.php")
    assert r.status == 200 and r.body == b"first last", r
    (line,) = helpers.wait_until(lambda: slow_lines(srv, "php", r"GET /drip\.php", 1), 5,
                                 what="the slow-request line")
    pid, (total, queued, connected, sent, first, last) = line
    assert first < last - 0.9 and last >= 1.2 and last <= total, line
