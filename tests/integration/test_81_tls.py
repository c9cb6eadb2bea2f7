"""TLS (SPEC §7, issue 12): `listen ... tls` with OpenSSL, real clients (curl, openssl s_client,
Python's ssl), certificates per site chosen by SNI, protocols refused, session resumption,
reloads that replace or break a certificate under load, redirectToHttps and hsts, FastCGI
variables, large files, uploads, a PROXY header before TLS, and clients that misbehave at each
step of a TLS connection."""
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import free_ports
from helpers import make_cert, wait_until

PHP_CGI = "/usr/bin/php-cgi"

VARS_PHP = b"""<?php
header('Content-Type: application/json');
$in = file_get_contents('php://input');
echo json_encode(['HTTPS' => $_SERVER['HTTPS'] ?? null, 'SSL_PROTOCOL' => $_SERVER['SSL_PROTOCOL'] ?? null,
  'REQUEST_SCHEME' => $_SERVER['REQUEST_SCHEME'] ?? null, 'SERVER_PORT' => $_SERVER['SERVER_PORT'] ?? null,
  'REMOTE_ADDR' => $_SERVER['REMOTE_ADDR'] ?? null, 'len' => strlen($in), 'md5' => md5($in)]);
"""


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_conn(port, sni=None, ctx=None, timeout=10):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return (ctx or client_ctx()).wrap_socket(raw, server_hostname=sni)


def peer_subject(port, sni):
    """The subject of the certificate the server shows for `sni`, as openssl prints it."""
    with tls_conn(port, sni) as s:
        der = s.getpeercert(binary_form=True)
    return subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                          capture_output=True).stdout.decode()


def read_response(s):
    """One HTTP/1.1 response with Content-Length or chunked framing, from a socket-like s."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("closed before the head: %r" % buf)
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        n = int(hdrs["content-length"])
        while len(rest) < n:
            d = s.recv(65536)
            if not d:
                raise EOFError("closed in the body")
            rest += d
        return status, hdrs, rest[:n]
    assert hdrs.get("transfer-encoding") == "chunked", hdrs
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += s.recv(65536)
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(rest) < size + 2:
            rest += s.recv(65536)
        body += rest[:size]
        rest = rest[size + 2:]
        if size == 0:
            return status, hdrs, body


def https_get(port, path, sni="localhost", headers=(), method="GET", body=b"", ctx=None):
    with tls_conn(port, sni, ctx) as s:
        req = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, path, sni or "localhost")
        for k, v in headers:
            req += "%s: %s\r\n" % (k, v)
        if body:
            req += "Content-Length: %d\r\n" % len(body)
        s.sendall(req.encode() + b"\r\n" + body)
        return read_response(s)


@pytest.fixture
def certs(tmp_path):
    d = str(tmp_path)
    os.chmod(d, 0o755)
    return {
        "a": make_cert(d, "a", "a.test", ["a.test", "localhost"]),
        "b": make_cert(d, "b", "b.test", ["b.test"], key_type="ec"),
        "dir": d,
    }


def tls_server(start_server, certs, sites=True, extra_server=None, extra="", files=None):
    tls_port, plain_port = free_ports(2)
    files = dict(files or {})
    files.setdefault("a.txt", b"hello over tls\n")
    files.setdefault("vars.php", VARS_PHP)
    opts = {"tlsCertificate": certs["a"][0], "tlsKey": certs["a"][1]}
    opts.update(extra_server or {})
    conf_extra = ""
    if sites:
        conf_extra = ("[site:b]\nhosts = b.test\nroot = {root}\ntlsCertificate = %s\ntlsKey = %s\n"
                      % certs["b"])
    conf_extra += ("[fastcgi:php]\nfullPath = %s\n[handler:php]\npath = *.php\nscriptProcessor = php\n"
                   % PHP_CGI) + extra
    srv = start_server(listen=["127.0.0.1:%d tls" % tls_port, "127.0.0.1:%d" % plain_port],
                       server_opts=opts, files=files, start=False)
    if sites:
        # [server] is then only the defaults: a default site serves everything but b.test.
        conf_extra = "[site:a]\nhosts = * a.test\nroot = {root}\n" + conf_extra
        srv.config_text = srv.config_text.replace("root = %s\n" % srv.root, "")
    srv.config_text += "\n" + conf_extra.replace("{root}", srv.root)
    with open(srv.conf, "w") as f:
        f.write(srv.config_text)
    srv.start()
    srv.tls_port, srv.plain_port = tls_port, plain_port
    srv.port = plain_port  # srv.get() and srv.raw() speak clear text
    return srv


def test_https_static_php_and_keep_alive(start_server, certs):
    srv = tls_server(start_server, certs)
    st, h, body = https_get(srv.tls_port, "/a.txt")
    assert st == 200 and body == b"hello over tls\n"
    st, h, body = https_get(srv.tls_port, "/vars.php")
    v = json.loads(body)
    assert v["HTTPS"] == "on" and v["REQUEST_SCHEME"] == "https"
    assert v["SSL_PROTOCOL"] == "TLSv1.3" and v["SERVER_PORT"] == str(srv.tls_port)
    # The clear-text listener of the same server: no HTTPS.
    r = srv.get("/vars.php")
    v = json.loads(r.body)
    assert v["HTTPS"] is None and v["REQUEST_SCHEME"] == "http" and v["SSL_PROTOCOL"] is None
    # Three requests on one TLS connection, the last two pipelined.
    with tls_conn(srv.tls_port, "localhost") as s:
        s.sendall(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[0] == 200
        s.sendall(b"GET /vars.php HTTP/1.1\r\nHost: localhost\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[0] == 200
        assert read_response(s)[2] == b"hello over tls\n"
    # curl, TLS 1.2 and 1.3.
    for v in ("--tlsv1.3", "--tls-max"):
        args = ["curl", "-sk", "--http1.1", "https://localhost:%d/vars.php" % srv.tls_port,
                "--resolve", "localhost:%d:127.0.0.1" % srv.tls_port]
        args += ["--tlsv1.3"] if v == "--tlsv1.3" else ["--tlsv1.2", "--tls-max", "1.2"]
        out = subprocess.run(args, capture_output=True, timeout=20)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["SSL_PROTOCOL"] == ("TLSv1.3" if v == "--tlsv1.3" else "TLSv1.2")


def test_sni_picks_the_sites_certificate(start_server, certs):
    srv = tls_server(start_server, certs)
    for sni, cn in (("b.test", "b.test"), ("a.test", "a.test"), ("unknown.test", "a.test"), (None, "a.test")):
        text = peer_subject(srv.tls_port, sni)
        assert "CN = " + cn in text or "CN=" + cn in text, (sni, text)
    # curl checking the chain and the name against the site's own certificate.
    out = subprocess.run(["curl", "-s", "--cacert", certs["b"][0], "--resolve",
                          "b.test:%d:127.0.0.1" % srv.tls_port, "https://b.test:%d/a.txt" % srv.tls_port],
                         capture_output=True, timeout=20)
    assert out.returncode == 0 and out.stdout == b"hello over tls\n", out.stderr


def s_client(port, *args, data=b"", timeout=20):
    return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                           "-servername", "localhost"] + list(args),
                          input=data, capture_output=True, timeout=timeout)


def test_old_protocols_refused_and_sessions_resume(start_server, certs, tmp_path):
    srv = tls_server(start_server, certs, sites=False)
    for proto in ("-tls1", "-tls1_1"):
        out = s_client(srv.tls_port, proto)
        assert b"BEGIN CERTIFICATE" not in out.stdout, proto
        assert out.returncode != 0
    for proto, name in (("-tls1_2", b"TLSv1.2"), ("-tls1_3", b"TLSv1.3")):
        out = s_client(srv.tls_port, proto)
        assert b"Protocol  : " + name in out.stdout or b"Protocol: " + name in out.stdout or name in out.stdout
    sess = str(tmp_path / "sess")
    req = b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    for proto in ("-tls1_2", "-tls1_3"):
        first = s_client(srv.tls_port, proto, "-sess_out", sess, "-ign_eof", data=req)
        assert b"hello over tls" in first.stdout
        again = s_client(srv.tls_port, proto, "-sess_in", sess, "-sess_out", sess + proto, "-ign_eof",
                         data=req)
        assert b"Reused, " in again.stdout, (proto, again.stdout[-2000:])
    # A resumed TLS 1.3 connection brings a new ticket (clients use each one once), and it resumes.
    assert os.path.exists(sess + "-tls1_3"), "no session ticket on a resumed TLS 1.3 connection"
    third = s_client(srv.tls_port, "-tls1_3", "-sess_in", sess + "-tls1_3", "-ign_eof", data=req)
    assert b"Reused, " in third.stdout, third.stdout[-2000:]
    st = srv.status_json()["server"]["tls_handshakes"]
    assert st["resumed"] >= 2 and st["full"] >= 4 and st["failed"] >= 2


def test_reload_replaces_a_certificate_under_load_and_keeps_it_when_broken(start_server, certs):
    srv = tls_server(start_server, certs)
    stop = threading.Event()
    results = {"ok": 0, "bad": []}

    def load():
        while not stop.is_set():
            try:
                st, _, body = https_get(srv.tls_port, "/a.txt", sni="b.test")
                if st == 200 and body == b"hello over tls\n":
                    results["ok"] += 1
                else:
                    results["bad"].append(st)
            except Exception as e:  # noqa: BLE001 - any failure counts
                results["bad"].append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: results["ok"] >= 30, 20, what="requests before the reload")
        cert_b, key_b = certs["b"]
        new_cert, new_key = make_cert(certs["dir"], "b2", "b-renewed.test", ["b.test"], key_type="ec")
        os.replace(new_cert, cert_b)
        os.replace(new_key, key_b)
        assert srv.ctl("reload").returncode == 0
        before = results["ok"]
        wait_until(lambda: results["ok"] >= before + 30, 20, what="requests after the reload")
        assert "b-renewed.test" in peer_subject(srv.tls_port, "b.test")
        # A broken file: the reload goes through, the site keeps its certificate, the log names the file.
        with open(cert_b, "w") as f:
            f.write("not a certificate\n")
        assert srv.ctl("reload").returncode == 0
        srv.wait_for_log(r"\[error\] site b: cannot load the certificate %s: .*keeping the certificate "
                         r"loaded before" % re.escape(cert_b))
        before = results["ok"]
        wait_until(lambda: results["ok"] >= before + 30, 20, what="requests after the broken reload")
        assert "b-renewed.test" in peer_subject(srv.tls_port, "b.test")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert results["bad"] == [] and results["ok"] > 90


def test_redirect_to_https_and_hsts(start_server, certs):
    srv = tls_server(start_server, certs, sites=False,
                     extra_server={"redirectToHttps": "true", "hsts": 31536000})
    r = srv.get("/a.txt?x=1", headers={"Host": "www.example.test:8080"})
    assert r.status == 301
    assert r.header("location") == "https://www.example.test:%d/a.txt?x=1" % srv.tls_port
    assert r.header("strict-transport-security") is None
    st, h, body = https_get(srv.tls_port, "/a.txt")
    assert st == 200 and h["strict-transport-security"] == "max-age=31536000"
    st, h, body = https_get(srv.tls_port, "/vars.php")
    assert st == 200 and h["strict-transport-security"] == "max-age=31536000"


def test_large_file_range_and_upload_over_tls(start_server, certs):
    big = os.urandom(3 * 1024 * 1024 + 12345)
    srv = tls_server(start_server, certs, files={"big.bin": big})
    st, h, body = https_get(srv.tls_port, "/big.bin")
    assert st == 200 and body == big
    st, h, body = https_get(srv.tls_port, "/big.bin", headers=[("Range", "bytes=1000000-2999999")])
    assert st == 206 and body == big[1000000:3000000]
    upload = os.urandom(2 * 1024 * 1024)
    st, h, body = https_get(srv.tls_port, "/vars.php", method="POST", body=upload)
    v = json.loads(body)
    import hashlib
    assert st == 200 and v["len"] == len(upload) and v["md5"] == hashlib.md5(upload).hexdigest()


def test_proxy_header_before_tls(start_server, certs):
    tls_port = free_ports(1)[0]
    srv = start_server(listen=["127.0.0.1:%d tls proxy" % tls_port],
                       server_opts={"tlsCertificate": certs["a"][0], "tlsKey": certs["a"][1]},
                       files={"vars.php": VARS_PHP},
                       extra="[fastcgi:php]\nfullPath = %s\n[handler:php]\npath = *.php\nscriptProcessor = php\n"
                             % PHP_CGI)
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n")
    with client_ctx().wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /vars.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        st, h, body = read_response(s)
    v = json.loads(body)
    assert st == 200 and v["REMOTE_ADDR"] == "203.0.113.7" and v["HTTPS"] == "on"


def assert_alive(srv):
    st, _, body = https_get(srv.tls_port, "/a.txt")
    assert st == 200 and body == b"hello over tls\n"
    assert srv.running()


def test_hostile_clients(start_server, certs):
    big = os.urandom(4 * 1024 * 1024)
    srv = tls_server(start_server, certs, files={"big.bin": big})
    port = srv.tls_port

    def closed_without_answer(data):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(data)
            got = b""
            while True:
                try:
                    d = s.recv(65536)
                except ConnectionResetError:
                    break
                if not d:
                    break
                got += d
            return got

    # Plain HTTP and garbage on a TLS port: no HTTP answer, the connection closed.
    got = closed_without_answer(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"HTTP/1.1" not in got
    got = closed_without_answer(os.urandom(3000))
    assert b"HTTP/1.1" not in got
    srv.wait_for_log(r"TLS handshake failed")
    # A TLS ClientHello on the clear-text port: 400.
    with socket.create_connection(("127.0.0.1", srv.plain_port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64)
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    # Leaving at each step: after the TCP connect, mid-ClientHello, after the handshake, after the
    # request, in the middle of a large body; with FIN or with RST.
    hello_part = None
    for step in ("connect", "half-hello", "handshake", "request", "mid-body"):
        for rst in (False, True):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            if rst:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            if step == "half-hello":
                raw.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(40))
            elif step != "connect":
                s = client_ctx().wrap_socket(raw, server_hostname="localhost")
                if step in ("request", "mid-body"):
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
                if step == "mid-body":
                    got = 0
                    while got < 300000:
                        got += len(s.recv(65536))
                raw = s
            raw.close()
        assert_alive(srv)
    # A client that stops reading a large TLS answer does not stop others.
    slow = tls_conn(port, "localhost")
    slow.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert_alive(srv)
    slow.close()
    assert_alive(srv)
    # Closed connections go away (no handshake, session or buffer left holding a connection).
    wait_until(lambda: srv.status_json()["server"]["connections"] <= 1, 15, what="connections closing")


def test_config_errors(tmp_path, certs, bin_path):
    conf = tmp_path / "t.conf"
    conf.write_text("[server]\nroot = %s\nlisten = 127.0.0.1:9443 tls\n" % tmp_path)
    out = subprocess.run([bin_path, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "t.conf:3: listen: 127.0.0.1:9443 is a tls listener and there is no tlsCertificate" in out.stderr
    conf.write_text("[server]\nroot = %s\nlisten = 127.0.0.1:9443 tls\ntlsCertificate = %s\ntlsKey = %s\n"
                    % (tmp_path, certs["a"][0], certs["b"][1]))
    out = subprocess.run([bin_path, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "does not match the certificate" in out.stderr or "key values mismatch" in out.stderr, out.stderr
    conf.write_text("[server]\nroot = %s\nlisten = 127.0.0.1:9443 tls\ntlsCertificate = %s/missing.pem\n"
                    % (tmp_path, tmp_path))
    out = subprocess.run([bin_path, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode == 1 and "cannot load the certificate %s/missing.pem" % tmp_path in out.stderr
    conf.write_text("[server]\nroot = %s\nlisten = 127.0.0.1:9443 tls\nlisten = 127.0.0.1:9443\n" % tmp_path)
    out = subprocess.run([bin_path, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode == 1 and "t.conf:4: listen: '127.0.0.1:9443' is already given at line 3" in out.stderr
