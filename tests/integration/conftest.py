"""pytest harness for fcgihost integration tests.

`start_server(...)` (function scope) and `module_server_factory(...)` (module scope) render an INI
file into a temporary directory, build a document root, pick free ports, start `fcgihost -c FILE`,
wait until every listener accepts a connection, and return a `Server` object with helpers.
On teardown the server gets SIGTERM (then SIGKILL if it does not exit), and the fixture fails if the
server crashed, needed SIGKILL, printed a sanitizer report, or left a child process running.

The binary comes from $FCGIHOST_BIN (default /work/main/build/fcgihost, i.e. <repo>/build/fcgihost).
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import helpers  # noqa: E402
from helpers import RawConn, exchange, wait_until  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("FCGIHOST_BIN", os.path.join(REPO, "build", "fcgihost"))
START_TIMEOUT = 10.0


def fcgihost_bin():
    if not os.path.exists(BIN):
        pytest.skip("fcgihost binary not found at %s (set FCGIHOST_BIN)" % BIN)
    return BIN


def free_ports(n=1, family=socket.AF_INET, host="127.0.0.1"):
    """Pick n distinct free ports by binding port 0 (all held open until all are chosen)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def render_ini(sections):
    """sections: list of (header, [(key, value), ...]); a value None omits the key."""
    out = []
    for header, items in sections:
        out.append("[%s]" % header)
        for k, v in items:
            if v is None:
                continue
            out.append("%s = %s" % (k, v))
        out.append("")
    return "\n".join(out)


def write_tree(root, files):
    """files: {relative path: bytes | str | ("symlink", target) | ("sparse", size) | ("dir",)}"""
    for rel, content in (files or {}).items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, tuple):
            kind = content[0]
            if kind == "symlink":
                os.symlink(content[1], p)
            elif kind == "sparse":
                with open(p, "wb") as f:
                    f.truncate(content[1])
            elif kind == "dir":
                os.makedirs(p, exist_ok=True)
            else:
                raise ValueError(kind)
        else:
            if isinstance(content, str):
                content = content.encode()
            with open(p, "wb") as f:
                f.write(content)


def _proc_children(pid):
    """{child pid: starttime} of the live processes whose parent is pid."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            out[int(d)] = fields[19]
    return out


def _alive_same(pid, starttime):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] == starttime and fields[0] != "Z"


class Server:
    """A running fcgihost and its temporary directory."""

    def __init__(self, tmp, server_opts=None, extra="", files=None, listen=None, config=None,
                 setup=None, root_dir=None, start=True, args=(), cwd=None):
        self.tmp = str(tmp)
        self.root = root_dir or os.path.join(self.tmp, "root")
        os.makedirs(self.root, exist_ok=True)
        write_tree(self.root, files)
        if setup:
            setup(self)
        self.access_log_path = os.path.join(self.tmp, "access.log")
        self.error_log_path = os.path.join(self.tmp, "error.log")
        self.stdout_path = os.path.join(self.tmp, "stdout.txt")
        self.stderr_path = os.path.join(self.tmp, "stderr.txt")
        self.conf = os.path.join(self.tmp, "fcgihost.conf")
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.run_dir, exist_ok=True)

        if listen is None:
            listen = ["127.0.0.1:%d" % free_ports(1)[0]]
        self.listen = listen
        self.tcp = []    # (host, port)
        self.unix = []   # paths
        for l in listen:
            l = l.split()[0]  # the address; options such as tls or proxy follow it
            if l.startswith("unix:"):
                self.unix.append(l[5:])
            else:
                m = re.fullmatch(r"\[?([^\]]+?)\]?:(\d+)", l)
                self.tcp.append((m.group(1), int(m.group(2))))
        self.host, self.port = self.tcp[0] if self.tcp else (None, None)

        if config is None:
            opts = {
                "root": self.root,
                "accessLog": self.access_log_path,
                "errorLog": self.error_log_path,
                "controlSocket": os.path.join(self.run_dir, "control.sock"),
                "runtimeDir": self.run_dir,
                "headerTimeout": 10,
                "keepAliveTimeout": 10,
                "shutdownTimeout": 5,
            }
            if os.geteuid() == 0:
                # As root the server drops to [server] user, www-data by default (SPEC §8); the
                # harness's 0700 temporary directories would then be out of its reach. Tests of
                # the drop set `user` themselves (test_50_identity.py, test_51_privsep.py).
                opts["user"] = "root"
            opts.update(server_opts or {})
            items = [("listen", l) for l in listen] + list(opts.items())
            config = render_ini([("server", items)]) + "\n" + extra
        self.config_text = config
        with open(self.conf, "w") as f:
            f.write(config)
        self.args = list(args)
        self.cwd = cwd or self.tmp
        self.proc = None
        self.children = {}
        self.signalled = False
        self._stop_scan = threading.Event()
        self._scanner = None
        if start:
            self.start()

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout=START_TIMEOUT):
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([fcgihost_bin(), "-c", self.conf] + self.args,
                                     stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                     cwd=self.cwd)
        self.pid = self.proc.pid
        self._scanner = threading.Thread(target=self._scan, daemon=True)
        self._scanner.start()
        deadline = time.monotonic() + timeout
        pending = [("tcp", t) for t in self.tcp] + [("unix", u) for u in self.unix]
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError("fcgihost exited with %s during start-up\nstderr:\n%s\nerror log:\n%s"
                                     % (self.proc.returncode, self.stderr(), self.error_log()))
            kind, addr = pending[0]
            try:
                if kind == "tcp":
                    RawConn.tcp(addr[0], addr[1], timeout=1).close()
                else:
                    RawConn.unix(addr, timeout=1).close()
                pending.pop(0)
                continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("fcgihost did not listen on %s within %.0fs\nstderr:\n%s"
                                     % (addr, timeout, self.stderr()))
            time.sleep(0.02)

    def _scan(self):
        while not self._stop_scan.is_set() and self.proc.poll() is None:
            try:
                for pid, st in _proc_children(self.pid).items():
                    self.children.setdefault(pid, st)
            except Exception:
                pass
            self._stop_scan.wait(0.1)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.signalled = True
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Wait for the server to exit; returns its return code (negative: killed by a signal)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("fcgihost (pid %d) still running after %.1fs" % (self.pid, timeout))

    def stop(self):
        """Teardown: returns a list of problems (empty when all is well)."""
        problems = []
        if self.proc is None:
            return problems
        rc = self.proc.poll()
        if rc is not None and not self.signalled:
            problems.append("fcgihost exited by itself during the tests (rc %d)" % rc)
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
                if rc != 0 and not self.signalled:
                    problems.append("fcgihost exited %d on SIGTERM (expected 0)" % rc)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("fcgihost did not exit within 10s of SIGTERM; SIGKILLed")
        self._stop_scan.set()
        if self._scanner:
            self._scanner.join(2)
        # Children may need a moment to go after the parent (they are ended by it or notice it).
        survivors = []
        deadline = time.monotonic() + 3
        while True:
            survivors = [p for p, st in self.children.items() if _alive_same(p, st)]
            if not survivors or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for p in survivors:
            problems.append("child process %d of fcgihost survived it" % p)
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self._out.close()
        self._err.close()
        err = self.stderr()
        if "AddressSanitizer" in err or "LeakSanitizer" in err or "runtime error:" in err:
            problems.append("sanitizer report on stderr:\n" + err[-4000:])
        bugs = [l for l in (self.error_log() + err).splitlines() if "BUG:" in l]
        if bugs:
            problems.append("the server logged an internal inconsistency:\n" + "\n".join(bugs[:10]))
        return problems

    # --- addresses ----------------------------------------------------------------------------
    @property
    def control_socket(self):
        return os.path.join(self.run_dir, "control.sock")

    def ctl(self, *args, timeout=30, socket_path=None):
        """Run `fcgihost ctl -s SOCKET args...`; returns the CompletedProcess (text)."""
        return subprocess.run([fcgihost_bin(), "ctl", "-s", socket_path or self.control_socket]
                              + [str(a) for a in args], capture_output=True, text=True,
                              timeout=timeout)

    def status_json(self):
        """`fcgihost ctl status --json`, parsed."""
        cp = self.ctl("status", "--json")
        assert cp.returncode == 0, cp.stderr
        return json.loads(cp.stdout)

    def pool_status(self, name="app"):
        """The JSON status of one application's pool."""
        return next(p for p in self.status_json()["pools"] if p["name"] == name)

    def url(self, path="/"):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d%s" % (h, self.port, path)

    def connect(self, timeout=helpers.DEFAULT_TIMEOUT, rcvbuf=None, addr=None):
        if addr is None:
            return RawConn.tcp(self.host, self.port, timeout=timeout, rcvbuf=rcvbuf)
        if isinstance(addr, str):
            return RawConn.unix(addr, timeout=timeout)
        return RawConn.tcp(addr[0], addr[1], timeout=timeout, rcvbuf=rcvbuf)

    def raw(self, data, methods=("GET",), close_timeout=None, timeout=helpers.DEFAULT_TIMEOUT):
        """Open a connection, send `data` in one write, read one response per method, optionally
        wait for the server to close; returns a helpers.RawResult."""
        if isinstance(methods, str):
            methods = (methods,)
        with self.connect(timeout=timeout) as c:
            return exchange(c, data, methods, close_timeout=close_timeout, timeout=timeout)

    def get(self, path, headers=None, method="GET", version="HTTP/1.1", body=b""):
        """One request on a fresh connection (Connection: close); returns the Response."""
        hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if version == "HTTP/1.1" and not any(k.lower() == "connection" for k, _ in hs):
            hs.append(("Connection", "close"))
        r = self.raw(helpers.request(method, path, hs, body=body, version=version), (method,))
        if r.error:
            raise AssertionError("%s %s: %s" % (method, path, r.error))
        return r.first

    # --- logs ---------------------------------------------------------------------------------
    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def error_log(self):
        return self._read(self.error_log_path)

    def access_log(self):
        return self._read(self.access_log_path)

    def stderr(self):
        return self._read(self.stderr_path)

    def stdout(self):
        return self._read(self.stdout_path)

    def wait_for_log(self, regex, timeout=5.0, which="error"):
        """Poll a log ('error', 'access', 'stderr', 'stdout') until `regex` matches; return the match."""
        reader = {"error": self.error_log, "access": self.access_log,
                  "stderr": self.stderr, "stdout": self.stdout}[which]
        rx = re.compile(regex, re.M)
        try:
            return wait_until(lambda: rx.search(reader()), timeout, what="%s log /%s/" % (which, regex))
        except helpers.Timeout:
            raise AssertionError("%s log never matched /%s/ within %.1fs; it holds:\n%s"
                                 % (which, regex, timeout, reader()[-3000:]))


def _stop_all(servers):
    """Stop every server a fixture started; fail the test on any teardown problem."""
    problems = []
    for s in servers:
        problems += s.stop()
    if problems:
        pytest.fail("server teardown: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(server_opts=..., extra=..., files=..., listen=...) -> Server."""
    servers = []
    counter = [0]

    def factory(**kw):
        counter[0] += 1
        d = tmp_path / ("srv%d" % counter[0])
        d.mkdir()
        s = Server(d, **kw)
        servers.append(s)
        return s

    yield factory
    _stop_all(servers)


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    """Module-scoped variant of start_server, for one server shared by a module's tests."""
    servers = []

    def factory(**kw):
        d = tmp_path_factory.mktemp("msrv")
        s = Server(d, **kw)
        servers.append(s)
        return s

    yield factory
    _stop_all(servers)


@pytest.fixture
def bin_path():
    return fcgihost_bin()
