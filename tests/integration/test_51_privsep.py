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
@pytest.mark.parametrize("mode", ["direct", "privsep"])
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


# ---- the privileged spawn helper ----

@needs_app
def test_per_pool_users_through_the_helper(serve, users, www):
    u2, g = users[USER2], users[GROUP]
    srv = serve(server_opts={"user": None},
                extra=app_ini("other", user=USER2) + app_ini("own") + app_ini("boss", user="root"))
    srv.wait_for_log(r"dropped privileges to www-data")
    assert ps_user(srv.pid) == WWW
    helper = helper_of(srv)
    assert helper is not None
    assert proc(helper)[1] == 0 and status_ids(helper)[0] == [0] * 4
    srv.wait_for_log(r"privileged spawn helper started \(pid %d\)" % helper)
    srv.wait_for_log(r"\[warn\] \[fastcgi:boss\] runs as root \(user = root\)")

    other, own, boss = (app_pid(srv, n) for n in ("other", "own", "boss"))
    uids, gids, groups = status_ids(other)
    assert proc(other)[0] == helper                      # the helper's child, not the server's
    assert uids == [u2.pw_uid] * 4 and gids == [u2.pw_gid] * 4
    assert groups == sorted({u2.pw_gid, g.gr_gid})
    assert proc(own)[:2] == (srv.pid, www.pw_uid)        # the server's own user: direct spawn
    assert proc(boss)[:2] == (helper, 0)
    # The other user's process still gets its socket as fd 0, made by the server (www-data, 0600).
    env = env_of(srv.get("/other/x").body)
    st = os.stat(env["process_fcgi_x_pipe"])
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (www.pw_uid, 0o600)
    assert env["pid"] == str(other)                      # served again by the same process

    # A recycle signals through the helper; the helper reports the exit, the server replaces it.
    r = srv.ctl("recycle", "other")
    assert r.returncode == 0, r.stderr
    wait_gone([other])
    srv.wait_for_log(r"other\[%d\]: killed by signal 9 .*ended by the server" % other)
    new = app_pid(srv, "other")
    assert new != other and proc(new)[:2] == (helper, u2.pw_uid)

    # A graceful stop ends everything: the helper last, once the server closed its socket.
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit(10) == 0
    try:
        wait_gone([new, own, boss, helper])
    finally:
        kill_left([new, own, boss, helper])
    assert "privileged spawn helper is gone" not in srv.error_log()


@needs_app
def test_reload_adds_an_application_of_another_user(serve, users):
    u1 = users[USER1]
    srv = serve(server_opts={"user": None}, extra=app_ini(user=USER2))
    srv.wait_for_log(r"fcgihost \S+ started")          # SIGHUP is handled from here on
    with open(srv.conf, "a") as f:
        f.write("\n" + app_ini(name="two", user=USER1))
    srv.signal(signal.SIGHUP)
    srv.signalled = False
    srv.wait_for_log(r"configuration reloaded")
    pid = app_pid(srv, "two")                            # the helper read the file again
    assert proc(pid)[:2] == (helper_of(srv), u1.pw_uid)


# The helper on its own, driven as a compromised server would drive it: only what the file says.

def _msg(type_, seq=0, pid=0, a=0, b=0, strings=(), n_argv=0):
    body = b"".join(s.encode() + b"\0" for s in strings)
    return HDR.pack(type_, seq, pid, a, b, n_argv, len(strings) - 3 - n_argv if strings else 0) + body


def _answer(sock):
    data = sock.recv(65536)
    h = HDR.unpack_from(data)
    return h, data[HDR.size:].rstrip(b"\0").decode()


@needs_app
def test_helper_runs_only_what_the_configuration_file_says(tmp_path, users):
    u2 = users[USER2]
    conf = tmp_path / "fcgihost.conf"
    (tmp_path / "root").mkdir()
    conf.write_text("[server]\nroot = root\n\n" + app_ini(user=USER2, env="FOO=bar"))
    req, req_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ev, ev_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    req.settimeout(10)
    ev.settimeout(10)

    def fds_3_4():
        os.dup2(req_peer.fileno(), 3)
        os.dup2(ev_peer.fileno(), 4)

    helper = subprocess.Popen([fcgihost_bin(), "__fcgihost_helper", str(conf), str(os.getpid())],
                              preexec_fn=fds_3_4, close_fds=False, stdin=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    req_peer.close()
    ev_peer.close()
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(str(tmp_path / "app.sock"))
    lsock.listen(8)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    fds = array.array("i", [lsock.fileno(), out_w, err_w])
    spawned = []
    try:
        h, _ = _answer(req)
        assert h[0] == READY

        def spawn(seq, full_path=FCGI_APP, user=USER2, argv=(FCGI_APP,), env=()):
            strings = ["app", full_path, user, *argv, *env]
            req.sendmsg([_msg(SPAWN, seq, strings=strings, n_argv=len(argv))],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            h, text = _answer(req)
            assert h[1] == seq
            return h, text

        pipe = "_FCGI_X_PIPE_=%s" % (tmp_path / "app.sock")
        for seq, kw, why in [
            (1, {"full_path": "/bin/sh", "argv": ("/bin/sh",)}, "fullPath differs"),
            (2, {"user": "root"}, "user differs"),
            (3, {"argv": (FCGI_APP, "-x")}, "arguments differ"),
            (4, {"env": (pipe, "LD_PRELOAD=/tmp/evil.so")}, "environment entry"),
        ]:
            h, text = spawn(seq, **kw)
            assert h[0] == FAILED and why in text, (h, text)
        h, text = spawn(5, env=(pipe, "FOO=bar", "PHP_FCGI_CHILDREN=0"))
        assert h[0] == SPAWNED, text
        pid = h[2]
        spawned.append(pid)
        helpers.wait_until(lambda: alive(pid) and status_ids(pid)[0][0] == u2.pw_uid, 5,
                           what="the application to run as %s" % USER2)
        assert proc(pid)[0] == helper.pid

        # A kill for a pid that is not its child is ignored; one for its child is carried out and
        # the exit is reported on the event socket.
        req.send(_msg(KILL, pid=os.getpid(), a=signal.SIGKILL))
        req.send(_msg(KILL, pid=pid, a=signal.SIGKILL))
        e = HDR.unpack(ev.recv(64))
        assert (e[0], e[2], e[4]) == (EXITED, pid, signal.SIGKILL)

        # End of file on its socket: it ends what is left and exits.
        h, _ = spawn(6)
        assert h[0] == SPAWNED
        spawned.append(h[2])
        req.close()
        assert helper.wait(10) == 0
        wait_gone(spawned)
    finally:
        kill_left(spawned)
        if helper.poll() is None:
            helper.kill()
            helper.wait()
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        lsock.close()
        ev.close()


@needs_app
def test_helper_killed_takes_its_processes_and_the_server_goes_on(serve, users):
    srv = serve(server_opts={"user": None}, extra=app_ini("other", user=USER2) + app_ini("own"))
    other, own = app_pid(srv, "other"), app_pid(srv, "own")
    helper = helper_of(srv)
    os.kill(helper, signal.SIGKILL)
    try:
        wait_gone([helper, other])
    finally:
        kill_left([other])
    srv.wait_for_log(r"\[error\] the privileged spawn helper is gone")
    srv.wait_for_log(r"other\[%d\]: killed by signal 9" % other)
    assert app_pid(srv, "own") == own                    # the server's own processes go on
    r = srv.get("/other/x")                              # nobody can start the other user's now
    assert r.status in (502, 503), r
    srv.wait_for_log(r"other: cannot start a process as %s: the server does not run as root and "
                     r"no privileged spawn helper runs" % USER2)
