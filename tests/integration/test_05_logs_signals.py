"""Access and error logs, SIGUSR1 reopen, graceful stop on SIGTERM/SIGINT (SPEC §1, §2)."""
import datetime
import os
import re
import signal
import socket
import time

import pytest

import helpers
from helpers import request, wait_until

ONE_K = bytes((i * 5 + 9) % 256 for i in range(1024))
BIG = 50 * 1024 * 1024
FILES = {"1k.txt": ONE_K, "a.txt": b"AAAA\n", "big.bin": ("sparse", BIG)}

ACCESS_RX = re.compile(
    r'^(?P<ip>\S+) - (?P<user>\S+) \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<req>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<ref>[^"]*)" "(?P<ua>[^"]*)" '
    r'(?P<rt>\d+(?:\.\d+)?) (?P<app>\S+)$')


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory(files=FILES)


def access_lines(srv):
    return [l for l in srv.access_log().split("\n") if l]


def find_access(srv, needle, timeout=5):
    def look():
        return [l for l in access_lines(srv) if needle in l]
    try:
        return wait_until(look, timeout, what="access log line with %r" % needle)
    except helpers.Timeout:
        raise AssertionError("no access-log line containing %r; the log holds:\n%s"
                             % (needle, srv.access_log()[-2000:]))


def test_access_log_combined_format(srv):
    tag = "tag=%d" % time.monotonic_ns()
    r = srv.get("/1k.txt?" + tag, {"Referer": "http://ref.example/page", "User-Agent": "pytest-agent/1.0 (x)"})
    assert r.status == 200
    lines = find_access(srv, tag)
    assert len(lines) == 1, lines
    m = ACCESS_RX.match(lines[0])
    assert m, "access-log line not in combined format + time + app: %r" % lines[0]
    assert m["ip"] == "127.0.0.1"
    assert m["req"] == "GET /1k.txt?%s HTTP/1.1" % tag
    assert m["status"] == "200"
    assert m["bytes"] == "1024"
    assert m["ref"] == "http://ref.example/page"
    assert m["ua"] == "pytest-agent/1.0 (x)"
    assert float(m["rt"]) < 5
    assert m["app"] == "-"
    ts = datetime.datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z").timestamp()
    assert abs(ts - time.time()) < 60, m["time"]


def test_access_log_missing_fields_are_dashes(srv):
    tag = "nofields%d" % time.monotonic_ns()
    r = srv.raw(("GET /a.txt?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % tag).encode())
    assert r.status == 200
    m = ACCESS_RX.match(find_access(srv, tag)[0])
    assert m and m["ref"] == "-" and m["ua"] == "-", m and m.groupdict()


def test_access_log_one_line_per_request(srv):
    tag = "pipe%d" % time.monotonic_ns()
    data = (request("GET", "/a.txt?%s-1" % tag) + request("HEAD", "/a.txt?%s-2" % tag)
            + request("GET", "/missing?%s-3" % tag, {"Connection": "close"}))
    res = srv.raw(data, ("GET", "HEAD", "GET"))
    assert [r.status for r in res.responses] == [200, 200, 404]
    wait_until(lambda: len([l for l in access_lines(srv) if tag in l]) >= 3, 5, what="3 lines")
    lines = [l for l in access_lines(srv) if tag in l]
    assert len(lines) == 3, lines
    ms = [ACCESS_RX.match(l) for l in lines]
    assert all(ms), lines
    assert [m["req"].split()[1][-1] for m in ms] == ["1", "2", "3"], "not in request order"
    assert [m["status"] for m in ms] == ["200", "200", "404"]
    assert ms[0]["bytes"] == "5"
    assert ms[1]["bytes"] in ("0", "-"), "HEAD sent no body"
    assert ms[1]["req"].startswith("HEAD ")


def test_access_log_partial_content_bytes(srv):
    tag = "range%d" % time.monotonic_ns()
    r = srv.get("/1k.txt?" + tag, {"Range": "bytes=0-99"})
    assert r.status == 206
    m = ACCESS_RX.match(find_access(srv, tag)[0])
    assert m and m["status"] == "206" and m["bytes"] == "100"


def test_access_log_bad_request_logged(srv):
    before = len(access_lines(srv))
    r = srv.raw(b"GET /x HTTP/1.1\r\nHost : bad\r\n\r\n")
    assert r.status == 400
    lines = wait_until(lambda: access_lines(srv)[before:] or None, 5, what="a line for the 400")
    ms = [ACCESS_RX.match(l) for l in lines]
    ms = [m for m in ms if m and m["status"] == "400"]
    assert ms, lines
    # The bytes field is the body that went out, as for any other response.
    assert ms[0]["bytes"] == r.first.header("Content-Length"), (ms[0].group(0), r.first.raw_head)


def test_error_log_has_level_tags(srv):
    srv.wait_for_log(r"\S", timeout=5)
    lines = [l for l in srv.error_log().split("\n") if l.strip()]
    assert lines
    for l in lines:
        assert re.search(r"\[(error|warn|warning|info|notice|debug)\]", l), "no level tag: %r" % l


def test_sigusr1_reopens_access_log(start_server):
    s = start_server(files=FILES)
    assert s.get("/a.txt?before").status == 200
    find_access(s, "before")
    rotated = s.access_log_path + ".1"
    os.rename(s.access_log_path, rotated)
    s.signal(signal.SIGUSR1)
    s.signalled = False  # SIGUSR1 is not a reason to exit
    n = [0]

    def reopened():
        n[0] += 1
        assert s.get("/a.txt?after%d" % n[0]).status == 200
        return os.path.exists(s.access_log_path) and "after" in s.access_log()

    wait_until(reopened, 5, interval=0.1, what="a new access.log after SIGUSR1")
    assert s.running()
    # The old file kept what was written before; the new one gets the requests after the reopen.
    with open(rotated) as f:
        assert "before" in f.read()
    assert "before" not in s.access_log()
    assert s.get("/a.txt?final").status == 200
    find_access(s, "final")


def test_sigusr1_reopens_error_log(start_server):
    s = start_server(files=FILES)
    # Not just any line: the listeners accept (and log) before the signal handlers are installed,
    # and a SIGUSR1 in between would end the server (its default action).
    s.wait_for_log(r"fcgihost \S+ started", timeout=5)
    os.rename(s.error_log_path, s.error_log_path + ".1")
    s.signal(signal.SIGUSR1)
    s.signalled = False
    # The server reopens at once: the file is there again (possibly empty) and it keeps serving.
    wait_until(lambda: os.path.exists(s.error_log_path), 5, what="a new error.log after SIGUSR1")
    assert s.get("/a.txt").status == 200


# --- graceful stop ---------------------------------------------------------------------------

def accepting(s):
    """True if the server still answers a new connection."""
    try:
        c = s.connect(timeout=1)
    except OSError:
        return False
    try:
        c.send(request("GET", "/a.txt", {"Connection": "close"}))
        r = c.read_response(timeout=0.5)
        return r.status == 200
    except (helpers.Timeout, helpers.Closed, helpers.ProtocolError, OSError):
        return False
    finally:
        c.close()


def test_sigterm_finishes_in_flight_download(start_server):
    s = start_server(files=FILES, server_opts={"shutdownTimeout": 20})
    c = s.connect(rcvbuf=8192, timeout=20)
    try:
        c.send(request("GET", "/big.bin"))
        head = c.read_head()
        assert head[1] == 200
        got = len(c.buf)
        c.buf = b""
        data = c.sock.recv(4096)
        got += len(data)
        s.signal(signal.SIGTERM)
        wait_until(lambda: not accepting(s), 5, interval=0.1, what="the server to stop accepting")
        assert s.running(), "the server exited with a response in flight"
        while got < BIG:
            data = c.sock.recv(1 << 20)
            assert data, "in-flight response cut after %d of %d bytes" % (got, BIG)
            assert data.count(0) == len(data)
            got += len(data)
        assert got == BIG
    finally:
        c.close()
    assert s.wait_exit(5) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_idle_exits_0(start_server, sig):
    s = start_server(files=FILES)
    assert s.get("/a.txt").status == 200
    t0 = time.monotonic()
    s.signal(sig)
    assert s.wait_exit(5) == 0
    assert time.monotonic() - t0 < 3
    with pytest.raises(OSError):
        s.connect(timeout=1)


def test_idle_keep_alive_connections_do_not_delay_stop(start_server):
    s = start_server(files=FILES, server_opts={"keepAliveTimeout": 60, "shutdownTimeout": 20})
    conns = []
    try:
        for _ in range(3):
            c = s.connect()
            c.send(request("GET", "/a.txt"))
            assert c.read_response().status == 200
            conns.append(c)
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        assert s.wait_exit(5) == 0
        assert time.monotonic() - t0 < 3, "idle keep-alive connections held the server"
        for c in conns:
            assert c.wait_closed(2)
            assert c.buf == b""
    finally:
        for c in conns:
            c.close()


def test_shutdown_timeout_bounds_a_stalled_response(start_server):
    s = start_server(files=FILES, server_opts={"shutdownTimeout": 2})
    c = s.connect(rcvbuf=8192, timeout=10)
    try:
        c.send(request("GET", "/big.bin"))
        assert c.read_head()[1] == 200
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        # The client never reads: the server gives up after shutdownTimeout and exits 0.
        rc = s.wait_exit(8)
        assert rc == 0
        assert 1.5 <= time.monotonic() - t0 <= 6, time.monotonic() - t0
    finally:
        c.close()


def test_sigterm_with_partial_head_connection(start_server):
    # A client that never finishes its head cannot hold the server past shutdownTimeout.
    s = start_server(files=FILES, server_opts={"headerTimeout": 60, "shutdownTimeout": 2})
    c = s.connect()
    try:
        c.send(b"GET /a.txt HTTP/1.1\r\nHo")
        assert not c.wait_closed(0.2)
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        assert s.wait_exit(6) == 0
        assert time.monotonic() - t0 < 5
    finally:
        c.close()


def test_access_log_off(start_server):
    s = start_server(files=FILES, server_opts={"accessLog": "off"})
    assert s.get("/a.txt").status == 200
    s.wait_for_log(r"\S", timeout=5)  # the server is up and logging errors...
    assert not os.path.exists(s.access_log_path)  # ...but writes no access log


def test_log_level_error_hides_info(start_server):
    s = start_server(files=FILES, server_opts={"logLevel": "error"})
    assert s.get("/a.txt").status == 200
    s.signal(signal.SIGTERM)
    assert s.wait_exit(5) == 0
    assert "[info]" not in s.error_log(), s.error_log()
