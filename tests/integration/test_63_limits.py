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
