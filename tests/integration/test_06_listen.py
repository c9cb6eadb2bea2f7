"""`listen` lines (SPEC §2): several TCP ports, IPv6 loopback, unix:/path sockets."""
import os
import signal
import socket
import subprocess

import pytest

import helpers
from conftest import fcgihost_bin, free_ports, have_ipv6_loopback
from helpers import request

FILES = {"a.txt": b"AAAA\n"}


def get_over(srv, addr):
    with srv.connect(addr=addr) as c:
        res = helpers.exchange(c, request("GET", "/a.txt", {"Connection": "close"}), close_timeout=2)
    assert res.error is None, res
    return res


def test_two_tcp_ports(start_server):
    p1, p2 = free_ports(2)
    s = start_server(files=FILES, listen=["127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2])
    for port in (p1, p2):
        res = get_over(s, ("127.0.0.1", port))
        assert res.status == 200 and res.first.body == b"AAAA\n"
        assert res.closed


@pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback(start_server):
    p4 = free_ports(1)[0]
    p6 = free_ports(1, socket.AF_INET6, "::1")[0]
    s = start_server(files=FILES, listen=["127.0.0.1:%d" % p4, "[::1]:%d" % p6])
    res = get_over(s, ("::1", p6))
    assert res.status == 200 and res.first.body == b"AAAA\n"
    # The access log records the IPv6 peer.
    s.wait_for_log(r"^::1 ", which="access")


def test_unix_socket(start_server, tmp_path):
    path = str(tmp_path / "http.sock")
    port = free_ports(1)[0]
    s = start_server(files=FILES, listen=["127.0.0.1:%d" % port, "unix:" + path])
    res = get_over(s, path)
    assert res.status == 200 and res.first.body == b"AAAA\n"
    helpers.check_common_headers(res.first)
    # Keep-alive and pipelining work over it too.
    with s.connect(addr=path) as c:
        r = helpers.exchange(c, request("GET", "/a.txt") + request("GET", "/nope"), ("GET", "GET"))
    assert [x.status for x in r.responses] == [200, 404]


def test_unix_socket_only(start_server, tmp_path):
    path = str(tmp_path / "only.sock")
    s = start_server(files=FILES, listen=["unix:" + path])
    res = get_over(s, path)
    assert res.status == 200


def test_unix_socket_stale_file_after_kill(start_server, tmp_path):
    # After SIGKILL the socket file stays behind; the next start must not fail on it.
    path = str(tmp_path / "stale.sock")
    s = start_server(files=FILES, listen=["unix:" + path])
    s.signal(signal.SIGKILL)
    s.wait_exit(5)
    assert os.path.exists(path)
    s.signalled = False
    s._out.close()
    s._err.close()
    s.start()
    assert get_over(s, path).status == 200


def test_port_in_use_fails(tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        (tmp_path / "www").mkdir()
        conf = tmp_path / "f.conf"
        conf.write_text("[server]\nlisten = 127.0.0.1:%d\nroot = %s\naccessLog = off\nerrorLog = -\n"
                        "controlSocket = %s/ctl.sock\nruntimeDir = %s\n"
                        % (port, tmp_path / "www", tmp_path, tmp_path))
        r = subprocess.run([fcgihost_bin(), "-c", str(conf)], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        assert r.returncode != 0
        assert str(port) in r.stderr, r.stderr
    finally:
        holder.close()
