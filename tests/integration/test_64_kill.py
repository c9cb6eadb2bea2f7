"""Killing processes from outside (issue 10; SPEC §3, §4.1, §4.6, §8): kill -9 of one FastCGI
process under load costs only the request it was serving; kill -9 of fcgihost itself leaves no
FastCGI process behind and a new fcgihost starts on the same configuration (runtimeDir, port,
control socket) despite the stale files; a FastCGI process stopped with SIGSTOP mid-request is
ended by activityTimeout (500 to its client) and replaced.

Real processes and signals throughout; every wait is a poll with a deadline.
"""
import json
import os
import signal
import threading
import time

import pytest

import helpers
from test_20_fastcgi import FCGI_APP, alive, app_pids, app_section, env_of, handler_section, needs_app

pytestmark = needs_app

ANSWER_WITHIN = 15.0          # a socket timeout for requests that must be answered (ASan builds)


def start(start_server, **app_keys):
    ini = app_section(**app_keys) + handler_section()
    return start_server(files={"t.fcgi": b"script"}, extra=ini)


def status_json(srv):
    return srv.status_json()


def pool_of(srv, name="app"):
    return srv.pool_status(name)


def get(srv, path, timeout=ANSWER_WITHIN):
    """One GET on a fresh connection; returns (status, body) or ("error", text)."""
    try:
        with srv.connect(timeout=timeout) as c:
            c.send(helpers.request("GET", path, [("Connection", "close")]))
            r = c.read_response(timeout=timeout)
            return r.status, r.body
    except (OSError, helpers.Timeout, helpers.Closed, helpers.ProtocolError) as e:
        return "error", "%s: %s" % (type(e).__name__, e)


class Load:
    """Clients in threads, each GETting `path` over and over (a fresh connection per request)
    until stopped; every outcome is recorded as (thread, status, pid from the body)."""

    def __init__(self, srv, path, clients):
        self.srv, self.path = srv, path
        self.stop = threading.Event()
        self.results = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(clients)]

    def run(self, i):
        while not self.stop.is_set():
            status, body = get(self.srv, self.path)
            pid = env_of(body).get("pid") if status == 200 else None
            with self.lock:
                self.results.append((i, status, pid, body if status != 200 else None))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(ANSWER_WITHIN + 5)
        assert not any(t.is_alive() for t in self.threads), "a load client never finished"

    def count(self):
        with self.lock:
            return len(self.results)


# ---- (a) kill -9 of one FastCGI process under load --------------------------------------------

def test_kill_9_of_one_process_under_load_costs_only_its_request(start_server):
    srv = start(start_server, maxInstances=4)
    # Six clients on four processes: every process busy, requests queued behind them.
    with Load(srv, "/t.fcgi?sleep=300", clients=6) as load:
        helpers.wait_until(lambda: len(app_pids(srv)) == 4 and load.count() >= 8, 10,
                           what="four busy processes and the load flowing")
        # The victim: one long request, so that its process is certainly serving it when killed.
        victim = {}
        t = threading.Thread(target=lambda: victim.update(r=get(srv, "/t.fcgi?sleep=5000&mark=victim")))
        t.start()
        pid = int(srv.wait_for_log(r"fcgi_app (\d+) mark victim", timeout=10).group(1))
        before = set(app_pids(srv))
        at_kill = load.count()
        os.kill(pid, signal.SIGKILL)
        t.join(ANSWER_WITHIN)
        assert "r" in victim, "the victim's request was never answered"
        helpers.wait_until(lambda: not alive(pid), 5, what="the killed process gone")
        # The pool replaces it: a fresh process appears and the pool is back at four.
        helpers.wait_until(lambda: set(app_pids(srv)) - before and len(app_pids(srv)) == 4, 10,
                           what="a replacement process and four processes again")
        new = (set(app_pids(srv)) - before).pop()
        # ... and the load goes on through the replacement too.
        helpers.wait_until(lambda: any(p == str(new) for _, s, p, _ in load.results[at_kill:]), 10,
                           what="a request served by the replacement process %d" % new)
    assert victim["r"][0] == 502, victim["r"]
    bad = [r for r in load.results if r[1] != 200]
    assert bad == [], "only the killed process's request may fail; also failed: %r" % bad[:5]
    assert len(load.results) > at_kill + 4, "the load did not go on after the kill"
    pool = pool_of(srv)
    assert pool["exits_unexpected"] == 1, pool
    assert pool["processes"]["total"] == 4, pool
    assert pool["requests"]["5xx"] == 1, pool
    assert "killed by signal 9" in srv.error_log()
    assert get(srv, "/t.fcgi")[0] == 200


# ---- (b) kill -9 of fcgihost itself ------------------------------------------------------------

def test_kill_9_of_the_server_leaves_no_process_and_a_new_server_starts_on_the_same_config(
        start_server):
    srv = start(start_server, maxInstances=3, protocol="unix")
    # Three processes: two busy with requests in flight, one idle.
    assert get(srv, "/t.fcgi")[0] == 200
    inflight = [threading.Thread(target=get, args=(srv, "/t.fcgi?sleep=8000&mark=busy%d" % i, 10))
                for i in range(2)]
    for t in inflight:
        t.start()
    for i in range(2):
        srv.wait_for_log(r"fcgi_app \d+ mark busy%d" % i, timeout=10)
    helpers.wait_until(lambda: len(app_pids(srv)) >= 2, 5, what="the processes started")
    children = {p: open("/proc/%d/stat" % p).read().split(")")[1].split()[19] for p in app_pids(srv)}
    assert len(children) >= 2, children
    srv.signal(signal.SIGKILL)                             # the harness: a kill we asked for
    assert srv.wait_exit(5) == -signal.SIGKILL

    def survivors():
        out = []
        for p, st in children.items():
            try:
                stat = open("/proc/%d/stat" % p).read()
            except OSError:
                continue
            fields = stat.split(")")[1].split()
            if fields[19] == st and fields[0] != "Z":
                out.append(p)
        return out
    try:
        helpers.wait_until(lambda: not survivors(), 5, what="every FastCGI process gone")
    except helpers.Timeout:
        pytest.fail("FastCGI processes outlived the SIGKILLed server: %r" % survivors())
    for t in inflight:
        t.join(ANSWER_WITHIN)

    # The stale files are there; a new fcgihost on the same configuration starts and serves at once.
    stale = sorted(f for f in os.listdir(srv.run_dir) if f.endswith(".sock"))
    assert "control.sock" in stale, stale
    new = start_server(config=srv.config_text, listen=srv.listen)
    assert (new.host, new.port) == (srv.host, srv.port)
    t0 = time.monotonic()
    status, body = get(new, "/t.fcgi")
    assert status == 200, body
    assert int(env_of(body)["pid"]) not in children
    assert time.monotonic() - t0 < 5.0, "the first FastCGI request waited on something stale"
    cp = new.ctl("status", "--json", socket_path=srv.control_socket)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["server"]["pid"] == new.pid


# ---- (c) SIGSTOP mid-request --------------------------------------------------------------------

def test_sigstop_mid_request_ends_in_activity_timeout_and_a_new_process(start_server):
    srv = start(start_server, maxInstances=1, activityTimeout=2)
    first = env_of(get(srv, "/t.fcgi")[1])
    # Unstopped, this request would be answered after 1.5 s, inside activityTimeout.
    result = {}

    def stopped_request():
        t0 = time.monotonic()
        result["r"] = get(srv, "/t.fcgi?sleep=1500&mark=stopme")
        result["s"] = time.monotonic() - t0
    t = threading.Thread(target=stopped_request)
    t.start()
    pid = int(srv.wait_for_log(r"fcgi_app (\d+) mark stopme", timeout=10).group(1))
    assert pid == int(first["pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        t.join(ANSWER_WITHIN)
        assert "r" in result, "no answer to the request on the stopped process"
        assert result["r"][0] == 500, result["r"]
        # activityTimeout is 2 s: the answer comes after it, and not long after (timer, kill, ASan).
        assert 1.9 <= result["s"] <= 6.0, result["s"]
        # SIGKILL ends a stopped process too.
        helpers.wait_until(lambda: not alive(pid), 5, what="the stopped process killed")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGCONT)
    srv.wait_for_log(r"activityTimeout", timeout=2)
    status, body = get(srv, "/t.fcgi")
    assert status == 200, body
    assert int(env_of(body)["pid"]) != pid
    assert get(srv, "/t.fcgi?sleep=100")[0] == 200
