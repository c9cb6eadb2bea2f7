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
    wait_until(lambda: tsrv.get("/t.fcgi").status == 200, 10, what="the application to answer again")


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
