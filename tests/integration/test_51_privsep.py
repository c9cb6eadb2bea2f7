"""Privilege separation and the rest of SPEC §8 that concerns identities and trust:

- started as root, the server drops to [server] user, www-data by default; `user = root` keeps root;
- applications of other users are started by the privileged spawn helper (src/pool/privsep.h),
  which checks every request against the configuration file, reaps its children and reports
  their exits, and dies with the server;
- no FastCGI process outlives a SIGKILLed server, and a new server on the same configuration
  starts at once (stale sockets in runtimeDir are removed);
- the control socket serves only root and the server's own user (SO_PEERCRED);
- bytes from clients and applications are escaped in the error log.

Runs only as root (it needs the users of test_50_identity.py, which it creates the same way)."""
import array
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import time

import pytest

import helpers
from conftest import fcgihost_bin
from test_20_fastcgi import FCGI_APP, alive, env_of, needs_app
from test_50_identity import USER1, USER2, GROUP, app_ini, serve, status_ids, users  # noqa: F401

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: privilege drop and per-app users"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="useradd (passwd) not installed"),
]

WWW = "www-data"
HDR = struct.Struct("<IIiiiII")  # privsep_hdr_t: type, seq, pid, a, b, n_argv, n_env
READY, SPAWN, SPAWNED, FAILED, KILL, EXITED = 1, 2, 3, 4, 5, 6
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(error|warn|info|debug)\] ")


@pytest.fixture(scope="module")
def www():
    try:
        return pwd.getpwnam(WWW)
    except KeyError:
        pytest.skip("no user %s on this system" % WWW)


def proc(pid):
    """(ppid, real uid, argv) of a live process."""
    with open("/proc/%d/stat" % pid) as f:
        stat_ = f.read()
    ppid = int(stat_[stat_.rfind(")") + 2:].split()[1])
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().rstrip(b"\0").split(b"\0")
    return ppid, status_ids(pid)[0][0], [a.decode() for a in argv]


def ps_user(pid):
    return subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True,
                          timeout=10).stdout.strip()


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if proc(int(d))[0] == pid:
                    out.append(int(d))
            except OSError:
                pass
    return out


def helper_of(srv):
    """The pid of the server's privileged helper, or None."""
    found = [p for p in children(srv.pid) if "__fcgihost_helper" in proc(p)[2]]
    assert len(found) <= 1, found
    return found[0] if found else None


def app_pid(srv, name):
    r = srv.get("/%s/x" % name)
    assert r.status == 200, (r, srv.error_log()[-2000:])
    return int(env_of(r.body)["pid"])


def wait_gone(pids, timeout=5):
    helpers.wait_until(lambda: not [p for p in pids if alive(p)], timeout,
                       what="processes %s to end" % pids)


def kill_left(pids):
    for p in pids:
        if alive(p):
            os.kill(p, signal.SIGKILL)


def assert_log_lines_well_formed(text):
    bad = [l for l in text.splitlines() if not LOG_LINE.match(l)]
    assert not bad, bad


# ---- escaping ----

@needs_app
def test_client_and_application_bytes_cannot_forge_log_lines(start_server):
    srv = start_server(extra=app_ini(stderrMode="IgnoreAndReturn200"))
    # The decoded path of a request that fails reaches the error log.
    r = srv.get("/app/x%0A[error]%20forged%0D%1B[2J?crash=1")
    assert r.status == 502
    srv.wait_for_log(r"\(/app/x\\x0A\[error\] forged\\x0D\\x1B\[2J\): the application closed")
    # FCGI_STDERR: a line break still splits (each part is tagged), anything else is escaped.
    r = srv.get("/app/y?stderr=one%0Dtwo%1B%C2%85three%FF%0A%5Berror%5D%20four")
    assert r.status == 200
    srv.wait_for_log(r"stderr: one\\x0Dtwo\\x1B\\xC2\\x85three\\xFF$")
    srv.wait_for_log(r"request \d+ stderr: \[error\] four$")
    log = srv.error_log()
    assert_log_lines_well_formed(log)
    assert not re.search(r"^\[error\] forged", log, re.M)
    # Valid UTF-8 is kept as it is.
    r = srv.get("/app/z?stderr=caf%C3%A9")
    srv.wait_for_log(r"stderr: café$")


# ---- the default user ----

@needs_app
def test_started_as_root_without_user_drops_to_www_data(serve, users, www):
    srv = serve(server_opts={"user": None}, extra=app_ini())
    srv.wait_for_log(r"dropped privileges to www-data \(uid %d" % www.pw_uid)
    assert status_ids(srv.pid)[0] == [www.pw_uid] * 4
    assert ps_user(srv.pid) == WWW                       # what an administrator sees
    assert srv.get("/a.txt").body == b"hello\n"
    pid = app_pid(srv, "app")                            # no `user`: the server's, spawned by it
    assert proc(pid)[:2] == (srv.pid, www.pw_uid)
    assert helper_of(srv) is None                        # nobody needs another user: no helper
    st = os.stat(srv.run_dir)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (www.pw_uid, 0o750)


def test_user_root_written_out_keeps_root(serve, users):
    srv = serve(server_opts={"user": "root"})
    srv.wait_for_log(r"running as root \(\[server\] user = root\)")
    assert status_ids(srv.pid)[0] == [0] * 4
    assert "dropped privileges" not in srv.error_log()


def test_user_none_is_an_error(serve, users):
    srv = serve(server_opts={"user": "none"}, start=False)
    r = subprocess.run([fcgihost_bin(), "-t", "-c", srv.conf], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1
    assert "user: 'none' is not a user" in r.stderr and "user = root to keep root" in r.stderr, \
        r.stderr


# ---- the control socket's peers ----

def _ctl_as(srv, uid, gid, *args):
    return subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups",
                           fcgihost_bin(), "ctl", "-s", os.path.join(srv.tmp, "ctl.sock"), *args],
                          capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)


def test_control_socket_serves_only_root_and_the_servers_user(serve, users, www):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    nobody = pwd.getpwnam("nobody")
    # The socket in the server's own 0755 directory, so that other users can reach the file.
    srv = serve(server_opts={"user": None, "controlSocket": "ctl.sock"})
    srv.wait_for_log(r"dropped privileges to www-data")
    path = os.path.join(srv.tmp, "ctl.sock")
    st = os.stat(path)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)    # created 0600
    os.chmod(path, 0o666)                                        # whatever the file's mode:
    r = _ctl_as(srv, nobody.pw_uid, nobody.pw_gid, "status")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.strip() == ("fcgihost ctl: permission denied: uid %d may not control this "
                                "server (only root and uid %d may)" % (nobody.pw_uid, www.pw_uid))
    assert r.stdout == ""
    srv.wait_for_log(r"\[warn\] control socket %s: refused a client running as uid %d \(pid \d+\)"
                     % (re.escape(path), nobody.pw_uid))
    r = _ctl_as(srv, www.pw_uid, www.pw_gid, "status")           # the server's own user
    assert r.returncode == 0 and r.stdout, r.stderr
    r = srv.ctl("status", socket_path=path)                      # root
    assert r.returncode == 0, r.stderr


# ---- SIGKILL of the server ----

@needs_app
@pytest.mark.parametrize("mode", ["direct"])
def test_sigkill_leaves_no_process_and_a_new_server_starts_at_once(serve, users, mode):
    extra = app_ini("own") + (app_ini("other", user=USER2) if mode == "privsep" else "")
    srv = serve(server_opts={"user": None if mode == "privsep" else "root"}, extra=extra)
    names = ["own"] + (["other"] if mode == "privsep" else [])
    pids = [app_pid(srv, n) for n in names]
    helper = helper_of(srv)
    assert (helper is not None) == (mode == "privsep")
    socks = [f for f in os.listdir(srv.run_dir) if f.endswith(".sock") and f != "control.sock"]
    assert len(socks) == len(names), socks
    srv.signal(signal.SIGKILL)
    srv.wait_exit(5)
    try:
        wait_gone(pids + ([helper] if helper else []))
    finally:
        kill_left(pids + ([helper] if helper else []))
    # The same configuration again: it starts and serves at once, and the old sockets are gone.
    srv.start()
    srv.signalled = False
    assert srv.get("/a.txt").status == 200
    new = [app_pid(srv, n) for n in names]
    assert not set(new) & set(pids)
    srv.wait_for_log(r"removed %d stale socket\(s\)" % len(names))
    left = set(os.listdir(srv.run_dir)) & set(socks)
    assert not left, left
