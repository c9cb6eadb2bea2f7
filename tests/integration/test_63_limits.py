"""Connection limits and protection (SPEC §2 [server] limits, §3 "bytes that cannot begin an HTTP
request", §8 maxConnections / maxConnectionsPerIp / descriptors).

Covers: non-HTTP bytes answered 400 and closed at once; bodyTimeout and sendTimeout; tempDir for
request bodies held on disk and the server-wide cap on bodies held in memory; maxConnections
(accepting pauses, clients wait in the backlog); running out of descriptors (accepting pauses and
resumes, no busy loop); maxConnectionsPerIp; many slowloris connections.

Every wait is a condition polled with a deadline or a socket timeout."""
import os
import random
import socket
import ssl
import time

import pytest

import helpers
from conftest import free_ports
from helpers import RawConn, request, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APPS = os.environ.get("FCGIHOST_APPS", os.path.join(ROOT, "build", "tests", "apps"))
FCGI_APP = os.path.join(APPS, "fcgi_app")
needs_app = pytest.mark.skipif(not os.access(FCGI_APP, os.X_OK), reason="tests/apps/fcgi_app not built")

FILES = {"a.txt": b"AAAA\n", "big.bin": ("sparse", 50 * 1024 * 1024)}


def tls_client_hello():
    """The bytes of a real TLS ClientHello, as a browser sends to https:// on a clear-text port."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16", hello[:8]
    return hello


def answered_400_and_closed(srv, data, within=1.0):
    """Send data on a new connection; the 400 and the close must both come within `within` s."""
    with srv.connect() as c:
        t0 = time.monotonic()
        c.send(data)
        r = c.read_response(timeout=within)
        assert r.status == 400, r
        assert c.wait_closed(max(0.05, within - (time.monotonic() - t0))), \
            "the connection stayed open after the 400"
        assert time.monotonic() - t0 <= within


# --- bytes that cannot begin a request -------------------------------------------------------

@pytest.fixture(scope="module")
def srv(module_server_factory):
    # headerTimeout is long, so an answer within 1 s cannot be the head deadline.
    return module_server_factory(files=FILES, server_opts={"headerTimeout": 30})


def test_tls_client_hello_gets_400_at_once(srv):
    answered_400_and_closed(srv, tls_client_hello())


def test_tls_handshake_fails_fast(srv):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = socket.create_connection((srv.host, srv.port), timeout=5)
    t0 = time.monotonic()
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)) as e:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.do_handshake()
    assert not isinstance(e.value, socket.timeout), "the handshake hung until the socket timeout"
    assert time.monotonic() - t0 <= 1.0
    sock.close()


@pytest.mark.parametrize("seed", range(6))
def test_binary_noise_gets_400_at_once(srv, seed):
    rnd = random.Random(seed)
    noise = bytes([rnd.choice([0x00, 0x01, 0x16, 0x80, 0xff, 0x7f, 0x1b])]) + rnd.randbytes(63)
    answered_400_and_closed(srv, noise)


@pytest.mark.parametrize("data", [b"\x00", b"\r\n\xff", b"GET\x00", b"GET /\x01", b"G ET / HTTP/1.1"])
def test_short_non_http_prefixes(srv, data):
    answered_400_and_closed(srv, data)


def test_slow_legitimate_client_byte_by_byte(srv):
    data = b"\r\nGE" + b"T /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with srv.connect() as c:
        c.send(data[:4])
        # Nothing is answered to a prefix that can still become a request.
        with pytest.raises(helpers.Timeout):
            c.read_response(timeout=0.3)
        for i in range(4, len(data)):
            c.send(data[i:i + 1])
        r = c.read_response(timeout=5)
        assert r.status == 200 and r.body == b"AAAA\n"


def test_http_still_works_after_noise(srv):
    answered_400_and_closed(srv, b"\x16\x03\x01\x02\x00")
    r = srv.get("/a.txt")
    assert r.status == 200 and r.body == b"AAAA\n"
    srv.wait_for_log(r'"\\x16\\x03\\x01\\x02\\x00" 400 ', which="access")


# --- bodyTimeout = 2, sendTimeout = 2 ---------------------------------------------------------

def app_ini(**handler_keys):
    ini = "[fastcgi:app]\nfullPath = %s\n[handler:app]\npath = *.fcgi\nscriptProcessor = app\n" % FCGI_APP
    return ini + "".join("%s = %s\n" % kv for kv in handler_keys.items())


@pytest.fixture(scope="module")
def tsrv(module_server_factory, tmp_path_factory):
    sock = os.path.join(str(tmp_path_factory.mktemp("unix")), "http.sock")
    return module_server_factory(
        files=dict(FILES, **{"t.fcgi": b"script"}),
        listen=["127.0.0.1:%d" % free_ports(1)[0], "unix:" + sock],
        server_opts={"bodyTimeout": 2, "sendTimeout": 2, "headerTimeout": 30, "keepAliveTimeout": 30},
        extra=app_ini(responseBufferLimit=0))


def env_of(body):
    return dict(l.split("=", 1) for l in body.decode("latin-1").splitlines() if "=" in l)


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def expect_408_and_close(c, t0, lo=1.5, hi=4.5):
    r = c.read_response(timeout=hi + 1)
    elapsed = time.monotonic() - t0
    assert r.status == 408, r
    assert lo <= elapsed <= hi, "408 after %.1fs, bodyTimeout is 2s" % elapsed
    assert c.wait_closed(2), "the connection stayed open after the 408"


@needs_app
def test_body_timeout_chunked_upload_stalls(tsrv):
    with tsrv.connect(timeout=10) as c:
        c.send(b"POST /t.fcgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        t0 = time.monotonic()
        expect_408_and_close(c, t0)
    tsrv.wait_for_log(r"request body stalled for 2s \(bodyTimeout\)")
    tsrv.wait_for_log(r'"POST /t.fcgi HTTP/1.1" 408 ', which="access")
    r = tsrv.get("/t.fcgi")
    assert r.status == 200, r


@needs_app
def test_body_timeout_content_length_body_stalls(tsrv):
    with tsrv.connect(timeout=10) as c:
        c.send(b"POST /t.fcgi HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        t0 = time.monotonic()
        expect_408_and_close(c, t0)
    r = tsrv.get("/t.fcgi")
    assert r.status == 200, r


@needs_app
def test_body_timeout_is_between_reads_not_a_deadline(tsrv):
    pieces = [os.urandom(1000) for _ in range(5)]
    with tsrv.connect(timeout=10) as c:
        c.send(b"POST /t.fcgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        t0 = time.monotonic()
        for i, p in enumerate(pieces):
            # 0.7 s apart: 2.8 s in all, longer than bodyTimeout, never 2 s without a byte.
            wait_until(lambda: time.monotonic() - t0 >= 0.7 * i, 2, interval=0.02)
            c.send(b"%x\r\n" % len(p) + p + b"\r\n")
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    env = env_of(r.body)
    assert r.status == 200, r
    assert env["stdin_bytes"] == str(5000) and env["stdin_sum"] == fnv1a(b"".join(pieces))


def stall_reading(srv, target, addr=None):
    """Request target, read the head, then read nothing. Returns (conn, bytes read so far)."""
    c = srv.connect(timeout=20, rcvbuf=None if isinstance(addr, str) else 16384, addr=addr)
    c.send(request("GET", target))
    head = c.read_head(timeout=10)
    assert head[1] == 200, head
    return c, len(c.buf)


def drain(c, timeout=20, until=None):
    """Read until EOF (or `until` bytes); returns the number of bytes."""
    n = 0
    c.sock.settimeout(timeout)
    while until is None or n < until:
        try:
            data = c.sock.recv(1 << 20)
        except ConnectionResetError:
            return n
        if not data:
            return n
        n += len(data)
    return n


@pytest.mark.parametrize("via", ["tcp", "unix"])
def test_send_timeout_client_stops_reading_a_sendfile_answer(tsrv, via):
    before = tsrv.error_log().count("(sendTimeout)")
    c, got = stall_reading(tsrv, "/big.bin", addr=tsrv.unix[0] if via == "unix" else None)
    with c:
        wait_until(lambda: tsrv.error_log().count("(sendTimeout)") > before, 10,
                   what="the sendTimeout log line")
        got += drain(c)
    assert got < 50 * 1024 * 1024, "the whole file arrived: the stalled client was not cut"
    r = tsrv.get("/a.txt")
    assert r.status == 200


@needs_app
def test_send_timeout_client_stops_reading_a_streamed_fastcgi_answer(tsrv):
    before = tsrv.error_log().count("(sendTimeout)")
    c, got = stall_reading(tsrv, "/t.fcgi?big=200m")
    with c:
        wait_until(lambda: tsrv.error_log().count("(sendTimeout)") > before, 10,
                   what="the sendTimeout log line")
        got += drain(c)
    assert got < 200 * 1024 * 1024
    # The pool still serves (the process was recycled or reused).
    wait_until(lambda: get_ok(tsrv, "/t.fcgi"), 10, what="the application to answer again")


def test_send_timeout_spares_a_slow_reader(tsrv):
    before = tsrv.error_log().count("(sendTimeout)")
    c, got = stall_reading(tsrv, "/big.bin")
    with c:
        t0 = time.monotonic()
        # 32 KiB every 0.25 s for 4 s: slow, but never 2 s without taking anything.
        while time.monotonic() - t0 < 4:
            data = c.sock.recv(32768)
            assert data, "closed after %d bytes" % got
            got += len(data)
            time.sleep(0.25)  # the reader's pace
        got += drain(c, until=50 * 1024 * 1024 - got)
    assert got == 50 * 1024 * 1024
    assert tsrv.error_log().count("(sendTimeout)") == before


# --- tempDir and the cap on bodies held in memory ---------------------------------------------

def spool_fds(srv, spool):
    """The server's descriptors open on files in `spool` (O_TMPFILE: "/spool/#123 (deleted)")."""
    out = []
    fd_dir = "/proc/%d/fd" % srv.pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(spool + "/"):
            out.append(target)
    return out


@pytest.fixture
def spsrv(start_server, tmp_path):
    spool = str(tmp_path / "spool")
    os.mkdir(spool)
    os.chmod(spool, 0o1777)  # as /var/tmp: the server may run as another user
    srv = start_server(files={"t.fcgi": b"script"}, server_opts={"tempDir": spool},
                       extra=app_ini())
    srv.spool = os.path.realpath(spool)
    return srv


def chunks_of(body, size=65536):
    return b"".join(b"%x\r\n" % len(body[i:i + size]) + body[i:i + size] + b"\r\n"
                    for i in range(0, len(body), size))


@needs_app
def test_chunked_body_past_1mib_goes_to_a_file_in_temp_dir(spsrv):
    body = os.urandom(1536 * 1024)
    with spsrv.connect(timeout=20) as c:
        c.send(b"POST /t.fcgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        c.send(chunks_of(body))
        # The upload is not finished: the bytes past 1 MiB wait in an unnamed file in tempDir.
        files = wait_until(lambda: spool_fds(spsrv, spsrv.spool), 10, what="a file in tempDir")
        assert all(f.endswith("(deleted)") for f in files), files
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    env = env_of(r.body)
    assert r.status == 200, r
    assert env["CONTENT_LENGTH"] == str(len(body)) and env["stdin_sum"] == fnv1a(body)
    wait_until(lambda: not spool_fds(spsrv, spsrv.spool), 5, what="the temporary file to be closed")


@needs_app
def test_bodies_past_64mib_in_all_go_to_files(spsrv):
    # 72 uploads of 1,000,000 bytes each stay under the 1 MiB per request, but together they pass
    # 64 MiB: the later ones must go to files.
    n, body = 72, os.urandom(1_000_000)
    head = b"POST /t.fcgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    encoded = chunks_of(body)
    conns = []
    try:
        for _ in range(n):
            c = spsrv.connect(timeout=30)
            conns.append(c)
            c.send(head + encoded)
        files = wait_until(lambda: spool_fds(spsrv, spsrv.spool), 10, what="files in tempDir")
        assert len(files) < n, "every body went to a file"
        for c in conns:
            c.send(b"0\r\n\r\n")
        want = fnv1a(body)
        for c in conns:
            r = c.read_response()
            env = env_of(r.body)
            assert r.status == 200 and env["stdin_bytes"] == str(len(body)) and env["stdin_sum"] == want
    finally:
        for c in conns:
            c.close()
    # Everything held was given back: a body under 1 MiB is held in memory again, no file. The
    # mark shows the request inside the application, i.e. the whole body collected.
    wait_until(lambda: not spool_fds(spsrv, spsrv.spool), 5, what="the temporary files to be closed")
    with spsrv.connect(timeout=20) as c:
        c.send(b"POST /t.fcgi?mark=after&sleep=1000 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + encoded + b"0\r\n\r\n")
        spsrv.wait_for_log(r"mark after")
        assert spool_fds(spsrv, spsrv.spool) == []
        r = c.read_response()
        assert r.status == 200 and env_of(r.body)["stdin_bytes"] == str(len(body))


# --- maxConnections, descriptors, maxConnectionsPerIp, slowloris -----------------------------

def served(c, path="/a.txt"):
    """One keep-alive request on an open connection; the Response."""
    c.send(request("GET", path))
    return c.read_response()


def get_ok(srv, path="/a.txt"):
    """True when a new connection is answered 200 (False when refused, closed or late)."""
    try:
        res = srv.raw(request("GET", path, [("Connection", "close")]), timeout=2)
    except OSError:
        return False
    return res.first is not None and res.status == 200


def open_conns(srv, n, timeout=10, source=None):
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((srv.host, srv.port))
        conns.append(RawConn(s, timeout))
    return conns


def close_all(conns):
    for c in conns:
        c.close()


def test_max_connections_pauses_accepting_and_the_rest_wait(start_server):
    srv = start_server(files=FILES, server_opts={"maxConnections": 50})
    first = open_conns(srv, 50)
    waiting = []
    try:
        for c in first:
            assert served(c).status == 200
        srv.wait_for_log(r"maxConnections \(50\) reached")
        # 30 more: the kernel completes their handshakes (backlog), the server does not take them.
        waiting = open_conns(srv, 30)
        for c in waiting:
            c.send(request("GET", "/a.txt"))
        with pytest.raises(helpers.Timeout):
            waiting[0].read_response(timeout=0.5)
        # As the first ones close, the waiting ones are served: none was refused.
        close_all(first[:30])
        for c in waiting:
            r = c.read_response(timeout=10)
            assert r.status == 200 and r.body == b"AAAA\n"
        # The 20 still open are served as before.
        for c in first[30:]:
            assert served(c).status == 200
    finally:
        close_all(first + waiting)


def start_with_nofile(start_server, monkeypatch, nofile, **kw):
    """start_server(...) with RLIMIT_NOFILE soft = hard = nofile for the server process."""
    import resource
    import subprocess
    srv = start_server(start=False, **kw)
    real = subprocess.Popen

    def popen(*a, **k):
        k["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        return real(*a, **k)

    with monkeypatch.context() as m:
        m.setattr(subprocess, "Popen", popen)
        srv.start()
    return srv


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


BIG_FILES = {"f%03d.bin" % i: ("sparse", 200 * 1024) for i in range(100)}


def serve_all(conns, deadline):
    """Read the answer on each connection (a request was sent on each) and close it as soon as it
    is complete, which frees the server's descriptor for the next. Returns (served, dropped)."""
    import selectors
    sel = selectors.DefaultSelector()
    bufs = {}
    for c in conns:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, c)
        bufs[c] = b""
    served_n, dropped = 0, 0
    while bufs and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                data = b""
            bufs[c] += data
            done = bufs[c].endswith(b"\r\n\r\nAAAA\n")
            if done or not data:
                if done and bufs[c].startswith(b"HTTP/1.1 200 "):
                    served_n += 1
                else:
                    dropped += 1
                sel.unregister(c.sock)
                del bufs[c]
                c.close()
    sel.close()
    return served_n, dropped


def test_out_of_descriptors_pauses_accepting_then_resumes(start_server, monkeypatch):
    with open("/proc/sys/net/core/somaxconn") as f:
        if int(f.read()) < 1024:
            pytest.skip("net.core.somaxconn < 1024: 1,000 clients do not fit in the backlog")
    srv = start_with_nofile(start_server, monkeypatch, 256, files=dict(FILES, **{"b.txt": b"BBBB\n"}),
                            server_opts={"headerTimeout": 30, "keepAliveTimeout": 30})
    conns = []
    with srv.connect() as early:
        assert served(early).status == 200
        try:
            # 1,000 clients against 256 descriptors: the server takes what it can, the rest wait
            # in the backlog (1,024). Each sends a request at once.
            conns = open_conns(srv, 1000)
            for c in conns:
                c.send(request("GET", "/a.txt"))
            srv.wait_for_log(r"accepting paused: ")
            # Saturated, but not spinning: two seconds of the loop cost little CPU.
            t0, cpu0 = time.monotonic(), cpu_seconds(srv.pid)
            wait_until(lambda: time.monotonic() - t0 >= 2, 3)
            used = cpu_seconds(srv.pid) - cpu0
            assert used < 0.5, "%.2fs of CPU in 2s while out of descriptors: a busy loop" % used
            # The reserve left for serving: a connection already open still gets a file that
            # must be opened now.
            r = served(early, "/b.txt")
            assert r.status == 200 and r.body == b"BBBB\n"
            # As clients take their answers and leave, the server accepts the waiting ones: every
            # client is served, none is dropped.
            n_served, dropped = serve_all(conns, time.monotonic() + 30)
            assert (n_served, dropped) == (1000, 0)
            assert srv.running()
        finally:
            close_all(conns)
    wait_until(lambda: get_ok(srv), 10, what="a new connection to be served")
    srv.wait_for_log(r"file descriptors available again")


def test_static_cache_holds_few_descriptors_and_frees_them(start_server, monkeypatch):
    srv = start_with_nofile(start_server, monkeypatch, 256, files=BIG_FILES)
    base = open_fds(srv.pid)
    with srv.connect() as c:
        for name in sorted(BIG_FILES):
            r = served(c, "/" + name)
            assert r.status == 200 and len(r.body) == 200 * 1024
        # At most an eighth of the limit is cached (32 of 256), plus this connection.
        assert open_fds(srv.pid) <= base + 1 + 32, open_fds(srv.pid) - base
    # Entries past their second are dropped by the maintenance tick, with their descriptors.
    wait_until(lambda: open_fds(srv.pid) <= base, 5, what="the cached descriptors to be closed")


def http_connections(srv):
    """Open HTTP connections as the server counts them (fcgihost ctl status --json)."""
    import json
    out = srv.ctl("status", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["server"]["connections"]


def test_max_connections_per_ip(start_server):
    srv = start_server(files=FILES, server_opts={"maxConnectionsPerIp": 5})
    # The harness's start-up probes must have left (they count too).
    wait_until(lambda: http_connections(srv) == 0, 5, what="no connection open")
    five = open_conns(srv, 5)
    try:
        for c in five:
            assert served(c).status == 200
        # The 6th from 127.0.0.1 is closed at once, without an answer.
        with srv.connect() as sixth:
            t0 = time.monotonic()
            sixth.send(request("GET", "/a.txt"))
            assert sixth.wait_closed(1.0), "the 6th connection was not closed"
            assert sixth.buf == b"" and time.monotonic() - t0 <= 1.0
        srv.wait_for_log(r"127\.0\.0\.1: more than maxConnectionsPerIp \(5\) connections: closed")
        # Another address (127.0.0.2 is loopback too) has its own count.
        other = open_conns(srv, 1, source="127.0.0.2")[0]
        with other:
            assert served(other).status == 200
        # One of the five leaves: a new connection from 127.0.0.1 is served again.
        five.pop().close()
        wait_until(lambda: get_ok(srv), 5, what="a 5th connection to be served")
        for c in five:
            assert served(c).status == 200
    finally:
        close_all(five)


def test_slowloris_5000_partial_heads_do_not_stop_others(start_server):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 5200:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low for 5,000 client sockets" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 5200), hard))
    srv = start_server(files=FILES, server_opts={"headerTimeout": 60, "keepAliveTimeout": 60})
    slow = []
    try:
        t0 = time.monotonic()
        for i in range(5000):
            s = socket.create_connection((srv.host, srv.port), timeout=10)
            s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        with srv.connect() as c:
            for rnd in range(3):
                # Each slow client sends one more header line...
                for s in slow:
                    s.sendall(b"X-%d: y\r\n" % rnd)
                # ...while an ordinary client is served promptly, on a new and a kept connection.
                t1 = time.monotonic()
                assert srv.get("/a.txt").status == 200
                assert served(c).status == 200
                assert time.monotonic() - t1 < 5
        # None of the slow ones was answered (their heads are not complete).
        for s in slow[:50]:
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
        assert time.monotonic() - t0 < 30
    finally:
        for s in slow:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- the new keys under `fcgihost -t` ---------------------------------------------------------

def check_conf(tmp_path, body):
    import subprocess
    from conftest import fcgihost_bin
    root = tmp_path / "www"
    root.mkdir(exist_ok=True)
    text = "[server]\nroot = %s\n%s" % (root, body)
    p = tmp_path / "fcgihost.conf"
    p.write_text(text)
    return str(p), subprocess.run([fcgihost_bin(), "-t", "-c", str(p)], capture_output=True, text=True,
                                  timeout=10, stdin=subprocess.DEVNULL)


def test_new_keys_are_checked_with_file_and_line(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    path, res = check_conf(tmp_path, "bodyTimeout = 5\nsendTimeout = 7\ntempDir = %s\nmaxConnections = 100\n"
                                     "maxConnectionsPerIp = 3\n" % spool)
    assert res.returncode == 0, res.stderr
    path, res = check_conf(tmp_path, "bodyTimeout = 0\nsendTimeout = soon\ntempDir = %s/none\n"
                                     "maxConnections = 0\nmaxConnectionsPerIp = -1\n" % tmp_path)
    assert res.returncode == 1
    want = [
        (3, "bodyTimeout: '0' is not a whole number from 1 to 86400"),
        (4, "sendTimeout: 'soon' is not a whole number from 1 to 86400"),
        (5, "tempDir: '%s/none': No such file or directory" % tmp_path),
        (6, "maxConnections: '0' is not a whole number from 1 to 10000000"),
        (7, "maxConnectionsPerIp: '-1' is not a whole number from 0 to 10000000"),
    ]
    for line, msg in want:
        assert "%s:%d: %s" % (path, line, msg) in res.stderr, res.stderr
