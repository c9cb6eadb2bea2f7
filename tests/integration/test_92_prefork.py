"""preforkChildren (SPEC 4.9b) with real php-cgi: each started process gets PHP_FCGI_CHILDREN=N and
forks N children that share its socket and its opcache; the pool counts the children as instances,
sends each group at most N requests at once, moves in whole groups and shows each child in status.
A child killed in a request costs only that request; a SIGKILLed server leaves no child behind."""
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import helpers
from conftest import fcgihost_bin
from test_20_fastcgi import needs_php
from test_42_under_load import php_app
from test_50_identity import USER1, serve, status_ids, users  # noqa: F401 (fixtures)

N = 4
SLOW = b"<?php usleep((int)($_GET['ms'] ?? 600) * 1000); echo getmypid();"
PID = b"<?php echo getmypid();"
OPC = (b"<?php $s = opcache_get_status(true); $st = $s['opcache_statistics'];"
       b" echo json_encode(['pid' => getmypid(), 'enabled' => $s['opcache_enabled'],"
       b" 'start' => $st['start_time'], 'oom' => $st['oom_restarts'],"
       b" 'hash' => $st['hash_restarts'], 'manual' => $st['manual_restarts'],"
       b" 'cached' => $st['num_cached_scripts'],"
       b" 'scripts' => array_keys($s['scripts'] ?? [])]);")
FILES = {"slow.php": SLOW, "pid.php": PID, "opc.php": OPC, "only_once.php": b"<?php echo 'once';"}


def start(start_server, **keys):
    conf = dict(preforkChildren=N, maxInstances=N, idleTimeout=0,
                arguments="-d opcache.enable=1 -d opcache.validate_timestamps=0"
                " -d opcache.file_update_protection=0")  # the files were just written
    conf.update(keys)
    srv = start_server(files=FILES, extra=php_app(**conf))
    assert srv.get("/pid.php").status == 200
    return srv


def pool(srv):
    cp = srv.ctl("status", "php", "--json")
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)["pools"][0]


def groups(st):
    """{master pid: [child pids]} from the status's process list."""
    out = {}
    for p in st["process_list"]:
        if p["group"] is None:
            continue
        out.setdefault(p["group"], [])
        if p["state"] == "child":
            out[p["group"]].append(p["pid"])
    return out


def wait_children(srv, n_groups=1, timeout=10):
    def ok():
        g = groups(pool(srv))
        return len(g) == n_groups and all(len(c) == N for c in g.values())
    helpers.wait_until(ok, timeout, what="%d group(s) of %d children" % (n_groups, N))
    return groups(pool(srv))


def get(srv, path, timeout=15):
    try:
        r = helpers.exchange(srv.connect(timeout=timeout), helpers.request("GET", path),
                             timeout=timeout)
        resp = r.first
        return (resp.status, resp.body) if resp else (0, b"")
    except (helpers.Timeout, helpers.Closed, OSError):
        return (0, b"")


def concurrently(srv, paths, timeout=15):
    res = [None] * len(paths)

    def run(i):
        res[i] = get(srv, paths[i], timeout)
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(paths))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 5)
    return res


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def kill_server_expect_group_gone(srv, master, kids):
    """SIGKILL the server: the group's master gets SIGTERM (PDEATHSIG) and ends its children."""
    srv.signal(signal.SIGKILL)
    assert srv.wait_exit(5) == -signal.SIGKILL
    try:
        helpers.wait_until(lambda: not any(alive(p) for p in [master] + kids), 5,
                           what="the master and every child gone")
    except helpers.Timeout:
        pytest.fail("processes outlived the SIGKILLed server: %r"
                    % [p for p in [master] + kids if alive(p)])


@needs_php
def test_children_share_the_opcache_and_share_the_requests(start_server):
    srv = start(start_server)
    g = wait_children(srv)
    (master, kids), = g.items()
    assert master not in kids
    st = pool(srv)
    assert st["prefork_children"] == N and st["limit"] == N
    assert st["processes"]["total"] == N            # the children count as the instances
    # status lists each child with its own pid, RSS and CPU
    for p in st["process_list"]:
        if p["state"] == "child":
            assert p["group"] == master and p["rss_bytes"] and p["cpu_seconds"] is not None, p
    text = srv.ctl("status", "php").stdout
    for k in kids:
        assert any(l.split()[:2] == [str(k), "child"] for l in text.splitlines()), text
    # N requests at once are served by N different children, none by the master
    res = concurrently(srv, ["/slow.php?ms=800"] * N)
    assert all(s == 200 for s, _ in res), res
    pids = {int(b) for _, b in res}
    assert len(pids) >= 2 and pids <= set(kids), (pids, kids)
    # one child compiles a script; every child sees it in the one shared opcache, whose start
    # time and restart counts are the same for all
    assert get(srv, "/only_once.php") == (200, b"once")
    seen = {}
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:
        for s, b in concurrently(srv, ["/opc.php"] * N):
            assert s == 200, b
            d = json.loads(b)
            seen[d["pid"]] = d
    assert len(seen) >= 2, seen
    stats = {(d["start"], d["oom"], d["hash"], d["manual"]) for d in seen.values()}
    assert len(stats) == 1, seen
    for d in seen.values():
        assert d["enabled"] and any(s.endswith("/only_once.php") for s in d["scripts"]), d
    assert set(seen) <= set(kids)
    # the group got PHP_FCGI_CHILDREN from the server; the master did not serve
    env = open("/proc/%d/environ" % master, "rb").read().split(b"\0")
    assert b"PHP_FCGI_CHILDREN=%d" % N in env and b"PHP_FCGI_MAX_REQUESTS=0" in env
    assert not any(e.startswith(b"_FCGIHOST_PDEATHSIG") for e in env)


def sleeping_children(kids):
    """The children in their usleep (serving a slow request)."""
    out = []
    for p in kids:
        try:
            if "sleep" in open("/proc/%d/wchan" % p).read():
                out.append(p)
        except OSError:
            pass
    return out


def sleeping_child(kids):
    s = sleeping_children(kids)
    return s[0] if s else None


@needs_php
def test_a_child_killed_in_a_request_costs_only_that_request(start_server):
    srv = start(start_server)
    (master, kids), = wait_children(srv).items()
    victim_res = []
    t = threading.Thread(target=lambda: victim_res.append(get(srv, "/slow.php?ms=6000", 20)))
    t.start()
    helpers.wait_until(lambda: sleeping_child(kids) is not None, 5, what="a child in the request")
    victim = sleeping_child(kids)
    others = []
    o = threading.Thread(target=lambda: others.extend(concurrently(srv, ["/slow.php?ms=1500"] * 2)))
    o.start()
    helpers.wait_until(lambda: len(sleeping_children(kids)) == 3, 5,
                       what="the two concurrent requests in their children")
    os.kill(victim, signal.SIGKILL)
    t.join(20)
    o.join(20)
    assert victim_res and victim_res[0][0] == 502, victim_res
    assert [s for s, _ in others] == [200, 200], others
    # the group lives: same master, php-cgi forked a replacement child, later requests succeed
    g = wait_children(srv)
    assert list(g) == [master]
    assert victim not in g[master]
    res = concurrently(srv, ["/slow.php?ms=300"] * N)
    assert all(s == 200 for s, _ in res), res
    assert pool(srv)["rapid_fails"] >= 1


@needs_php
def test_limit_recycle_and_autotune_move_whole_groups(start_server):
    srv = start(start_server, maxInstances=2 * N)
    # twice the limit's worth of requests: two groups at most, never a third
    seen_groups = set()
    res = []
    w = threading.Thread(target=lambda: res.extend(concurrently(srv, ["/slow.php?ms=1000"] * 4 * N,
                                                                 30)))
    w.start()
    while w.is_alive():
        st = pool(srv)
        assert st["processes"]["total"] <= 2 * N, st["processes"]
        seen_groups.update(groups(st))
        assert len([1 for p in st["process_list"] if p["state"] != "child"]) <= 2 * N
        time.sleep(0.2)
    w.join()
    assert all(s == 200 for s, _ in res), res
    assert len(seen_groups) == 2, seen_groups
    g = wait_children(srv, 2)
    # ctl recycle (warm, the default) replaces every group by a new one (new masters), children
    # and all, the new groups starting before the old ones go
    old = set(g)
    old_kids = {k for c in g.values() for k in c}
    assert srv.ctl("recycle", "php").returncode == 0
    helpers.wait_until(lambda: not any(alive(p) for p in old | old_kids), 10,
                       what="the old groups gone")
    assert get(srv, "/pid.php")[0] == 200
    g2 = wait_children(srv, 2)
    assert not set(g2) & old
    assert pool(srv)["recycles"]["manual"] == 2  # counted per group
    # a lower limit (live) ends a whole group, never part of one
    assert srv.ctl("set", "php", "maxInstances", str(N + 1)).returncode == 0
    st = pool(srv)
    assert st["limit"] == N  # whole groups only
    # the automatic limit starts at a whole number of groups
    assert srv.ctl("set", "php", "maxInstances", "0").returncode == 0
    st = pool(srv)
    assert st["auto"] and st["limit"] % N == 0 and st["limit"] >= N


@needs_php
def test_group_request_limit_recycles_the_group(start_server):
    # PHP_FCGI_MAX_REQUESTS would end children on their own: the group gets 0 and the pool
    # recycles the whole group after N x the per-instance limit instead.
    srv = start(start_server, instanceMaxRequests=3)
    (master, kids), = wait_children(srv).items()
    for _ in range(4 * N):
        assert get(srv, "/pid.php")[0] == 200
    helpers.wait_until(lambda: not alive(master), 10, what="the first group recycled")
    assert pool(srv)["recycles"]["max_requests"] >= 1
    assert "its group served %d requests" % (3 * N) in srv.error_log()


@needs_php
def test_server_killed_leaves_no_child(start_server):
    srv = start(start_server)
    (master, kids), = wait_children(srv).items()
    busy = threading.Thread(target=lambda: get(srv, "/slow.php?ms=5000", 10))
    busy.start()
    helpers.wait_until(lambda: sleeping_child(kids) is not None, 5, what="a child in a request")
    kill_server_expect_group_gone(srv, master, kids)
    busy.join(10)


@needs_php
@pytest.mark.parametrize("how", ["fin", "rst"])
def test_clients_leaving_mid_request(start_server, how):
    srv = start(start_server)
    (master, kids), = wait_children(srv).items()
    for _ in range(3):
        conns = []
        for _ in range(N):
            c = srv.connect()
            c.send(helpers.request("GET", "/slow.php?ms=700"))
            conns.append(c)
        time.sleep(0.2)
        for c in conns:
            if how == "rst":
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
    # the group is whole and serves N requests at once afterwards
    res = concurrently(srv, ["/slow.php?ms=200"] * N)
    assert all(s == 200 for s, _ in res), res
    g = wait_children(srv)
    assert list(g) == [master]


def test_config_rules(tmp_path):
    base = "[server]\nroot = %s\nlisten = 127.0.0.1:29091\n" % tmp_path
    for extra, msg in [
            ("preforkChildren = 4\nenv = PHP_FCGI_CHILDREN=2\n",
             "preforkChildren and env PHP_FCGI_CHILDREN together"),
            ("preforkChildren = 1\n", "preforkChildren = 1: 0 (one process per socket)")]:
        conf = tmp_path / "f.conf"
        conf.write_text(base + "[fastcgi:php]\nfullPath = /bin/sh\n" + extra)
        r = subprocess.run([fcgihost_bin(), "-t", "-c", str(conf)], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode != 0 and msg in r.stderr + r.stdout, (r.stdout, r.stderr)
    conf.write_text(base + "[fastcgi:php]\nfullPath = /bin/sh\npreforkChildren = 8\n")
    r = subprocess.run([fcgihost_bin(), "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr


@needs_php
def test_live_set_switches_between_groups_and_single_processes(start_server):
    srv = start(start_server, preforkChildren=0, maxInstances=2)
    assert groups(pool(srv)) == {}
    old = {p["pid"] for p in pool(srv)["process_list"]}
    # a change of preforkChildren recycles the pool: groups replace the single processes
    assert srv.ctl("set", "php", "preforkChildren", str(N)).returncode == 0
    assert get(srv, "/pid.php")[0] == 200
    g = wait_children(srv)
    assert not set(g) & old
    assert pool(srv)["limit"] == N  # maxInstances 2 is less than a group: one group
    r = srv.ctl("set", "php", "preforkChildren", "1")
    assert r.returncode != 0 and "at least 2" in (r.stderr + r.stdout)
    # and back: the group ends, children and all, single processes serve
    kids = [k for c in g.values() for k in c] + list(g)
    assert srv.ctl("set", "php", "preforkChildren", "0").returncode == 0
    helpers.wait_until(lambda: not any(alive(p) for p in kids), 10, what="the group gone")
    res = concurrently(srv, ["/slow.php?ms=300"] * 2)
    assert all(s == 200 for s, _ in res), res
    st = pool(srv)
    assert groups(st) == {} and st["limit"] == 2


@needs_php
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: privilege drop and per-app users")
def test_a_group_of_another_user_through_the_helper(serve, users):
    # The server drops to www-data; the group runs as USER1, started and signalled by the helper.
    u1 = users[USER1]
    srv = serve(server_opts={"user": None}, files=FILES,
                extra=php_app(user=USER1, preforkChildren=N, maxInstances=N, idleTimeout=0,
                              arguments="-d opcache.file_update_protection=0"))
    srv.wait_for_log(r"dropped privileges to www-data")
    assert get(srv, "/pid.php")[0] == 200, srv.error_log()[-3000:]
    (master, kids), = wait_children(srv).items()
    for p in [master] + kids:
        assert status_ids(p)[0] == [u1.pw_uid] * 4, p
    res = concurrently(srv, ["/slow.php?ms=600"] * N)
    assert all(s == 200 for s, _ in res), res
    assert len({int(b) for _, b in res}) >= 2 and {int(b) for _, b in res} <= set(kids)
    # a recycle goes through the helper and takes the children with the master
    assert srv.ctl("recycle", "php").returncode == 0
    helpers.wait_until(lambda: not any(alive(p) for p in [master] + kids), 10,
                       what="the recycled group gone")
    assert get(srv, "/pid.php")[0] == 200
    (master, kids), = wait_children(srv).items()
    # the server killed: the helper goes with it, the master gets SIGTERM and ends its children
    kill_server_expect_group_gone(srv, master, kids)


@needs_php
def test_idle_timeout_ends_a_group_only_when_all_of_it_is_idle(start_server):
    srv = start(start_server, idleTimeout=2)
    (master, kids), = wait_children(srv).items()
    # one connection busy for 4 s while the other three idle past idleTimeout: the group stays
    t0 = time.monotonic()
    res = []
    t = threading.Thread(target=lambda: res.append(get(srv, "/slow.php?ms=4000", 15)))
    t.start()
    t.join(15)
    assert res == [(200, res[0][1])] and int(res[0][1]) in kids, res
    assert time.monotonic() - t0 >= 4 and alive(master)
    # then, all idle: it ends as a whole
    helpers.wait_until(lambda: not any(alive(p) for p in [master] + kids), 8,
                       what="the idle group ended")
    st = pool(srv)
    assert st["recycles"]["idle"] == 1 and st["processes"]["total"] == 0, st["processes"]


@needs_php
def test_private_memory_limit_of_a_child_recycles_its_group(start_server):
    srv = start(start_server)
    (master, kids), = wait_children(srv).items()
    # a forked child's pages are its master's until written: its private memory is small (tens
    # of KiB idle), so the test sets a limit of 1 KiB that a child passes after a request
    assert srv.ctl("set", "php", "privateMemoryLimit", "1").returncode == 0
    assert get(srv, "/pid.php")[0] == 200
    helpers.wait_until(lambda: not alive(master), 10, what="the group recycled")
    assert pool(srv)["recycles"]["memory"] >= 1
    assert "is over privateMemoryLimit = 1 KiB: recycling its group" in srv.error_log()
    assert not any(alive(p) for p in kids)


@needs_php
def test_the_master_killed_ends_the_group_and_a_new_one_serves(start_server):
    srv = start(start_server)
    (master, kids), = wait_children(srv).items()
    inflight = []
    t = threading.Thread(target=lambda: inflight.extend(concurrently(srv, ["/slow.php?ms=4000"] * 2)))
    t.start()
    helpers.wait_until(lambda: len(sleeping_children(kids)) == 2, 5, what="two requests running")
    os.kill(master, signal.SIGKILL)
    # its children go with it (the pool kills what is left of its process group)
    helpers.wait_until(lambda: not any(alive(p) for p in kids), 5, what="the children gone")
    t.join(15)
    assert [s for s, _ in inflight] == [502, 502], inflight
    assert get(srv, "/pid.php")[0] == 200
    g = wait_children(srv)
    assert master not in g
    st = pool(srv)
    assert st["crashes"] == 1 and st["last_crash"]["pid"] == master, st["last_crash"]


@needs_php
def test_warm_recycle_under_load_replaces_whole_groups(start_server):
    # recycleMode = warm (the default) with groups: a new group starts (maxConcurrentStarts = 1:
    # one group at a time) before an old one is retired, the old ones finish their requests, and
    # no request fails; the pool never holds more than the limit plus one starting group (besides
    # the retired ones on their way out).
    srv = start(start_server, maxInstances=2 * N, maxConcurrentStarts=1)
    stop = threading.Event()
    res = []

    def client():
        while not stop.is_set():
            res.append(get(srv, "/slow.php?ms=150", 15))
    ts = [threading.Thread(target=client) for _ in range(2 * N)]
    for t in ts:
        t.start()
    try:
        old = wait_children(srv, 2)
        helpers.wait_until(lambda: len(res) >= 4 * N, 10, what="the load flowing")
        old_all = set(old) | {k for c in old.values() for k in c}
        assert srv.ctl("recycle", "php").returncode == 0
        most = 0
        deadline = time.monotonic() + 30
        while "warm recycle done" not in srv.error_log():
            assert time.monotonic() < deadline, srv.error_log()[-3000:]
            st = pool(srv)
            stopping = {p["pid"] for p in st["process_list"] if p["state"] == "stopping"}
            most = max(most, len(set(groups(st)) - stopping))
            # a retired group that is exiting (stopping: SIGTERM sent) no longer counts: it
            # takes no request and is gone within terminationGracePeriod
            procs = st["processes"]
            assert procs["total"] - procs["stopping"] <= 3 * N, procs
            time.sleep(0.05)
        helpers.wait_until(lambda: not any(alive(p) for p in old_all), 10,
                           what="the old groups gone")
        new = wait_children(srv, 2)
        assert not set(new) & set(old)
        assert most <= 3, most
    finally:
        stop.set()
        for t in ts:
            t.join(20)
    assert res and all(s == 200 for s, _ in res), [r for r in res if r[0] != 200]
    log = srv.error_log()
    assert "recycling 2 processes (warm: the replacements start first)" in log
    assert "2 old processes retired" in log
