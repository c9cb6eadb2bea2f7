#!/usr/bin/env python3
"""Self-check of fcgi_app without a web server: runs every behaviour once, asserts, reaps.

    python3 tests/apps/check_fcgi_app.py build/tests/apps/fcgi_app

The app is started the way fcgihost starts it: a listening socket (unix, or tcp with --tcp) on
fd 0 and _FCGI_X_PIPE_ naming it. Prints one line per check; exit status 0 when all pass.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi_client import END_REQUEST, STDERR, STDOUT, FcgiConn, cgi_params  # noqa: E402

APP = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/tests/apps/fcgi_app"
TCP = "--tcp" in sys.argv
TMP = tempfile.mkdtemp(prefix="fcgi_app_check.")
failures = []


class App:
    def __init__(self, **env):
        if TCP:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        else:
            path = os.path.join(TMP, "app.sock")
            if os.path.exists(path):
                os.unlink(path)
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            self.addr = "unix:" + path
        self.sock.listen(16)
        self.err = open(os.path.join(TMP, "stderr.log"), "w+b")
        e = dict(os.environ, _FCGI_X_PIPE_=self.addr.removeprefix("unix:"),
                 **{k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen([APP], stdin=self.sock.fileno(), stdout=self.err,
                                     stderr=self.err, env=e)
        self.sock.close()

    def req(self, query="", body=b"", **kw):
        with FcgiConn(self.addr, timeout=kw.pop("timeout", 10)) as c:
            return c.request(cgi_params(query, body=body), body, **kw)

    def log(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  " + str(detail)[:300]))
    if not cond:
        failures.append(name)


def fnv(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & (2**64 - 1)
    return "%016x" % h


def main():
    a = App()
    time.sleep(0.1)
    check("start line", f"fcgi_app {a.proc.pid} started _FCGI_X_PIPE_=" in a.log(), a.log())
    r = a.req("echo=env", b"hello")
    h, body = r.split()
    lines = body.decode().splitlines()
    params = [l for l in lines if "=" in l and l.split("=")[0].isupper()]
    check("echo=env 200 text/plain", r.ended and h == [("Content-Type", "text/plain")], h)
    check("echo=env sorted params", params == sorted(params) and "QUERY_STRING=echo=env" in params)
    kind = "tcp:" if TCP else "unix:"
    check("echo=env fd0", any(l.startswith("fd0=" + kind) for l in lines), lines[-5:])
    check("echo=env pid", f"pid={a.proc.pid}" in lines)
    check("echo=env stdin", "stdin_bytes=5" in lines and f"stdin_sum={fnv(b'hello')}" in lines)
    check("requests counter", b"requests=2\n" in a.req().stdout)
    big = os.urandom(300000)
    r = a.req("echo=body", big)
    check("echo=body", r.split() == ([("Content-Type", "application/octet-stream")], big))
    t = time.time(); r = a.req("sleep=300&status=404")
    check("sleep+status", time.time() - t >= 0.3 and r.stdout.startswith(b"Status: 404 Not Found\r\n"))
    for when, order in (("before", [STDERR, STDOUT]), ("between", [STDOUT, STDERR, STDOUT]),
                        ("after", [STDOUT, STDERR])):
        r = a.req(f"stderr=oops+%41&stderr_when={when}")
        kinds = []
        for t_, _, c in r.records:
            if c and t_ in (STDOUT, STDERR) and (not kinds or kinds[-1] != t_):
                kinds.append(t_)
        check(f"stderr_when={when}", r.stderr == b"oops A" and kinds == order, kinds)
    for name, needle in (("nospace", b"Content-Type:text/plain\r\n"), ("lfonly", b"lfonly\n\n"),
                         ("statusnoreason", b"Status: 404\r\n"), ("httpline", b"HTTP/1.1 404"),
                         ("nul", b"a\0b"), ("crinvalue", b"a\rb\r\n"), ("badname", b"Bad Name: x")):
        r = a.req("rawheaders=" + name)
        check(f"rawheaders={name}", needle in r.stdout and r.stdout.endswith(b"rawheaders=" + name.encode() + b"\n"))
    r = a.req("big=1000003&ctype=text/x-big")
    h, body = r.split()
    check("big + ctype", h == [("Content-Type", "text/x-big")] and len(body) == 1000003
          and body[:20] == b"0123456789abcdef0123" and len(r.records) > 16)
    r = a.req("crash=after_headers")
    check("crash=after_headers", r.closed and not r.ended and r.stdout.endswith(b"\r\n\r\n")
          and a.proc.wait(5) == 1)

    a = App()
    try:
        a.req("hang=1", timeout=1)
        check("hang=1", False, "answered")
    except socket.timeout:
        check("hang=1", a.proc.poll() is None)
    a.stop()

    a = App()
    r = a.req("crash=1")
    check("crash=1", r.closed and not r.ended and a.proc.wait(5) == -signal.SIGABRT)

    a = App()
    with FcgiConn(a.addr) as c:
        rs = [c.request(cgi_params("exit_after=3"), keep_conn=True) for _ in range(4)]
    check("exit_after=3", all(x.ended for x in rs[:3]) and rs[3].closed and a.proc.wait(5) == 0)

    a = App(FCGI_APP_FAIL_AT_START=1)
    check("FCGI_APP_FAIL_AT_START", a.proc.wait(5) == 1 and "failing at start" in a.log())

    a = App(FCGI_APP_START_DELAY_MS=700)
    t = time.time(); a.req()
    check("FCGI_APP_START_DELAY_MS", time.time() - t >= 0.6)
    a.stop()

    a = App(FCGI_APP_LOG_SIGTERM=1, FCGI_APP_TERM_DELAY_MS=800)
    a.req()
    a.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    r = a.req()
    check("SIGTERM logged, serves during delay", r.ended and f"fcgi_app {a.proc.pid} got SIGTERM" in a.log())
    t = time.time(); rc = a.proc.wait(5)
    check("SIGTERM delay then exit(0)", rc == 0 and 0.3 < time.time() - t < 1.0, (rc, time.time() - t))

    for query in ("", "hang=1"):
        a = App()
        a.req()  # up and past FCGX_Init
        if query:
            threading.Thread(target=a.req, args=(query,), daemon=True).start()
            time.sleep(0.2)
        a.proc.send_signal(signal.SIGTERM)
        check(f"SIGTERM without env {query or 'idle'}: exit(0)", a.proc.wait(5) == 0)

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
