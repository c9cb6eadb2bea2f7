"""testssl.sh (Debian's package testssl.sh, 3.0.x) against a fcgihost TLS listener: no finding rated
HIGH or CRITICAL (issue 12, "Tests that must exist").

The listener serves a certificate as a real site would: an RSA 2048 leaf for localhost/127.0.0.1,
90 days, with key usage, serverAuth, a CRL distribution point and an OCSP URI, issued by an
intermediate CA that the server sends with it (tlsCertificate is the full chain), under a root that
testssl is given with --add-ca. So the certificate rows (chain of trust, expiry, revocation info)
judge what the server sends, not the shortcuts of a self-signed test certificate: with one, testssl
rates the chain CRITICAL and a short life or no CRL/OCSP URI HIGH. RSA rather than P-256 so that
the DHE suites of the "intermediate" list, their DH group (LOGJAM) and ROBOT are exercised too.
hsts is set (the HSTS row is then judged rather than reported absent); index.html is a page big
enough to be compressed, so that BREACH looks at a compressed answer.

Checks that run (two testssl processes in parallel, one per CPU, each about 40-60 s on a quiet
2-core machine in the release build; testssl is a bash script and its cost is its own forks, not
the server's):
  A: -p protocols (SSLv2 ... TLS 1.3, NPN, ALPN), -s cipher categories (NULL, aNULL, export, LOW,
     3DES/IDEA, CBC, AEAD), -f forward secrecy (suites, curves, DH groups), -P server preference
     (cipher order and the order per protocol).
  B: -S server defaults (extensions, session tickets and resumption, the certificate and its chain),
     -U every vulnerability check (Heartbleed, CCS, Ticketbleed, ROBOT, renegotiation, CRIME, BREACH,
     POODLE, TLS_FALLBACK_SCSV, SWEET32, FREAK, DROWN, LOGJAM, BEAST, LUCKY13, RC4), -h HTTP headers
     (HSTS, banners, security headers).
Left out: -e/-E (each of ~370 cipher suites tried one by one: minutes; -s, -f and -P already list
what is accepted), -c (client simulation: ~100 handshakes that only say which client gets which
suite), -g (GREASE and size-limit bugs: not part of testssl's default run), --phone-out (CRL/OCSP
fetches; loopback only), DNS (-n none: no resolver; CAA is a DNS matter).

testssl's --severity filters its JSON down to the rated rows; it is not used because the test
also checks that every check above produced its row (a check that silently did not run is a
failure, not a pass), so the full --jsonfile is read and filtered here. MEDIUM and LOW findings are
printed (not asserted: "no security headers" is a site's choice, OCSP stapling is not
implemented, BREACH depends on the page)."""
import json
import os
import subprocess
import time

import pytest

from conftest import free_ports

TESTSSL = "/usr/bin/testssl"
RUN_TIMEOUT = 300  # per testssl process; a quiet machine needs about 60 s

INDEX = ("<!DOCTYPE html>\n<html><head><title>fcgihost</title></head><body>\n"
         + "".join("<p>Paragraph %d of a page that gzip shrinks.</p>\n" % i for i in range(60))
         + "</body></html>\n").encode()

# One row per check that must have run, with the severities that mean "tested and fine".
FINE = ("OK", "INFO", "LOW")
EXPECTED = {
    # -p
    "SSLv2": ("OK",), "SSLv3": ("OK",), "TLS1": FINE, "TLS1_1": FINE, "TLS1_2": ("OK",),
    "TLS1_3": ("OK",), "ALPN": FINE,
    # -s
    "cipherlist_NULL": ("OK",), "cipherlist_aNULL": ("OK",), "cipherlist_EXPORT": ("OK",),
    "cipherlist_LOW": ("OK",), "cipherlist_3DES_IDEA": FINE, "cipherlist_STRONG": ("OK",),
    # -f
    "PFS": ("OK",), "PFS_ECDHE_curves": ("OK",),
    # -P
    "cipher_order": ("OK",), "protocol_negotiated": ("OK",),
    # -S
    "TLS_session_ticket": FINE, "sessionresumption_ticket": FINE + ("WARN",), "cert_chain_of_trust": ("OK",),
    "cert_trust": ("OK",), "cert_expirationStatus": ("OK",), "certs_countServer": FINE,
    "certs_list_ordering_problem": FINE,
    # -U
    "heartbleed": ("OK",), "CCS": ("OK",), "ticketbleed": ("OK",), "ROBOT": ("OK",),
    "secure_renego": ("OK",), "secure_client_renego": ("OK",), "CRIME_TLS": ("OK",),
    "BREACH": FINE + ("MEDIUM",), "POODLE_SSL": ("OK",), "fallback_SCSV": ("OK",),
    "SWEET32": ("OK",), "FREAK": ("OK",), "DROWN": ("OK",), "LOGJAM": ("OK",), "BEAST": ("OK",),
    "LUCKY13": ("OK",), "RC4": ("OK",),
    # -h
    "HTTP_status_code": FINE, "HSTS_time": ("OK",),
}
# WARN rows that are not about the server: testssl always writes engine_problem on Debian (no GOST
# engine in its OpenSSL). sessionresumption_ticket: testssl runs `openssl s_client -sess_out`
# with stdin at EOF, and s_client closes right after the TLS 1.3 handshake, often before the ticket
# that an OpenSSL server sends after the client's Finished has arrived (nginx, lighttpd and h2o lose
# the same race: only a server that sends tickets with its own Finished, as Go's, always wins); it
# then reports "check failed because of connect problem". test_81_tls.py checks resumption.
HARMLESS_WARN = {"engine_problem": None,
                 "sessionresumption_ticket": "check failed because of connect problem"}


def serial():
    """A random positive 16-byte serial number (testssl rates short serials LOW: CA/B rules ask for
    at least 64 random bits)."""
    return "0x" + ("%02x" % (os.urandom(1)[0] & 0x7F | 0x10)) + os.urandom(15).hex()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def make_chain(d):
    """root CA -> intermediate CA -> RSA leaf for localhost; returns (chain.pem, leaf.key, root.pem)."""
    p = lambda n: os.path.join(d, n)  # noqa: E731
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-subj", "/CN=fcgihost test root CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", p("root.key"), "-out", p("root.pem"))
    with open(p("int.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=fcgihost test intermediate CA",
            "-keyout", p("int.key"), "-out", p("int.csr"))
    openssl("x509", "-req", "-in", p("int.csr"), "-CA", p("root.pem"), "-CAkey", p("root.key"),
            "-set_serial", serial(), "-days", "30", "-extfile", p("int.ext"), "-out", p("int.pem"))
    with open(p("leaf.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "crlDistributionPoints=URI:http://ca.invalid/int.crl\n"
                "authorityInfoAccess=OCSP;URI:http://ocsp.invalid/\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", p("leaf.key"), "-out", p("leaf.csr"))
    # 90 days: testssl rates a certificate that expires within 60 days MEDIUM, within 30 HIGH.
    openssl("x509", "-req", "-in", p("leaf.csr"), "-CA", p("int.pem"), "-CAkey", p("int.key"),
            "-set_serial", serial(), "-days", "90", "-extfile", p("leaf.ext"), "-out", p("leaf.pem"))
    with open(p("chain.pem"), "w") as out:
        for n in ("leaf.pem", "int.pem"):
            with open(p(n)) as f:
                out.write(f.read())
    return p("chain.pem"), p("leaf.key"), p("root.pem")


def start_testssl(d, name, checks, port, root):
    jsonfile = os.path.join(d, name + ".json")
    log = open(os.path.join(d, name + ".txt"), "wb")
    cmd = [TESTSSL, "--quiet", "--color", "0", "--warnings", "off", "-n", "none",
           "--add-ca", root, "--jsonfile", jsonfile] + checks + ["127.0.0.1:%d" % port]
    # TMPDIR: testssl's scratch files next to the test's, removed with them.
    env = dict(os.environ, TMPDIR=d)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=d, env=env), jsonfile, log


def test_testssl_finds_nothing_high_or_critical(start_server, tmp_path):
    if not os.path.exists(TESTSSL):
        pytest.fail("testssl not installed: scripts/deps.sh test installs testssl.sh")
    d = str(tmp_path)
    chain, key, root = make_chain(d)
    port = free_ports(1)[0]
    srv = start_server(listen=["127.0.0.1:%d tls" % port], files={"index.html": INDEX},
                       server_opts={"tlsCertificate": chain, "tlsKey": key, "hsts": 31536000})

    runs = {"A": ["-p", "-s", "-f", "-P"], "B": ["-S", "-U", "-h"]}
    procs = {n: start_testssl(d, n, checks, port, root) for n, checks in runs.items()}
    deadline = time.monotonic() + RUN_TIMEOUT
    findings, problems = [], []
    for n, (proc, jsonfile, log) in procs.items():
        try:
            rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = "killed after %d s" % RUN_TIMEOUT
        log.close()
        with open(log.name, errors="replace") as f:
            out = f.read()
        # testssl's exit status adds up the return values of its checks (LOGJAM returns 1 for a
        # well-known DH prime, BREACH for compression): only 242-255 (its ERR_* codes) and a
        # kill mean it failed; a complete run ends its JSON with the scanTime row.
        rows = []
        if os.path.exists(jsonfile):
            with open(jsonfile) as f:
                rows = json.load(f)
        if not isinstance(rc, int) or rc >= 240 or not any(r["id"] == "scanTime" for r in rows):
            problems.append("testssl %s (%s) exited %s; its output ends:\n%s"
                            % (n, " ".join(runs[n]), rc, out[-3000:]))
        findings += rows
    assert not problems, "\n".join(problems)

    by_id = {}
    for f in findings:
        by_id.setdefault(f["id"], []).append(f)
    rated = {s: ["%s: %s" % (f["id"], f["finding"]) for f in findings if f["severity"] == s]
             for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN")}
    for s in ("MEDIUM", "LOW"):
        for line in rated[s]:
            print("testssl %s %s" % (s, line))

    bad = rated["CRITICAL"] + rated["HIGH"]
    assert not bad, "testssl rates these HIGH or CRITICAL:\n" + "\n".join(bad)
    # Every check ran and gave its verdict; WARN means testssl could not test something.
    missing = [i for i in EXPECTED if i not in by_id]
    assert not missing, "testssl wrote no row for %s (a check did not run)" % missing
    wrong = ["%s: %s %s" % (i, f["severity"], f["finding"]) for i, ok in EXPECTED.items()
             for f in by_id[i] if f["severity"] not in ok]
    assert not wrong, "unexpected verdicts:\n" + "\n".join(wrong)
    warns = [f for f in findings if f["severity"] == "WARN" and not (
        f["id"] in HARMLESS_WARN and HARMLESS_WARN[f["id"]] in (None, f["finding"]))]
    assert not warns, "testssl could not run some checks: %s" % warns
    # What the rows say about this server in particular.
    assert by_id["TLS1_3"][0]["finding"].startswith("offered")
    assert by_id["TLS1"][0]["finding"] == "not offered" and by_id["TLS1_1"][0]["finding"] == "not offered"
    assert by_id["certs_countServer"][0]["finding"] == "2"  # the leaf and the intermediate
    assert by_id["ALPN"][0]["finding"] == "http/1.1"

    # The server took every probe (SSLv2 hellos, Heartbleed, CCS, renegotiation...) in its stride:
    # it still answers, and counted the refused handshakes.
    out = subprocess.run(["curl", "-s", "--cacert", root, "https://localhost:%d/index.html" % port],
                         capture_output=True, timeout=20)
    assert out.returncode == 0 and out.stdout == INDEX, out.stderr
    hs = srv.status_json()["server"]["tls_handshakes"]
    print("tls_handshakes", hs)
    assert hs["failed"] >= 20 and hs["full"] >= 20, hs  # resumed: see HARMLESS_WARN
