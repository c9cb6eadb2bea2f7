"""Identities (SPEC §2 `user`, src/server_user.h): the server's privilege drop, per-application
users with their supplementary groups, runtimeDir and socket owners and modes, and the refusals.

Runs only as root. Creates the system users fhtest1 and fhtest2 (and the group fhtestg, of which
fhtest2 is a supplementary member) when missing, and removes those it created at the end. The
servers live in a 0755 temporary directory of their own: pytest's are 0700, which a server that
dropped to fhtest1 could not enter."""
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile

import pytest

import helpers
from conftest import Server, _stop_all, fcgihost_bin
from test_20_fastcgi import FCGI_APP, alive, app_section, env_of, handler_section, needs_app

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: privilege drop and per-app users"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="useradd (passwd) not installed"),
]

USER1, USER2, GROUP = "fhtest1", "fhtest2", "fhtestg"
NOSUCH = "fhtest-nosuch"
TREE = {"t.fcgi": b"script", "a.txt": b"hello\n"}


def _run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _exists(getter, name):
    try:
        getter(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def users():
    created_users, created_group = [], False
    if not _exists(grp.getgrnam, GROUP):
        _run("groupadd", "--system", GROUP)
        created_group = True
    for name, extra in ((USER1, []), (USER2, ["-G", GROUP])):
        if not _exists(pwd.getpwnam, name):
            _run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 *extra, name)
            created_users.append(name)
    if USER2 not in grp.getgrnam(GROUP).gr_mem:
        _run("usermod", "-a", "-G", GROUP, USER2)
    yield {n: pwd.getpwnam(n) for n in (USER1, USER2)} | {GROUP: grp.getgrnam(GROUP)}
    for name in created_users:
        # A process a failed test left behind would keep userdel from working; it can only be
        # one of ours, since the user was made for these tests.
        for pid in _pids_of_uid(pwd.getpwnam(name).pw_uid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        helpers.wait_until(lambda: not _pids_of_uid(pwd.getpwnam(name).pw_uid), 5,
                           what="the processes of %s to go" % name)
        subprocess.run(["userdel", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if created_group:
        subprocess.run(["groupdel", GROUP], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pids_of_uid(uid):
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat("/proc/" + d).st_uid == uid and alive(int(d)):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def _world_reachable(path):
    """Every directory up to path lets others in, and path itself is executable by others."""
    path = os.path.realpath(path)
    if not os.stat(path).st_mode & stat.S_IXOTH:
        return False
    d = os.path.dirname(path)
    while True:
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return False
        if d == "/":
            return True
        d = os.path.dirname(d)


@pytest.fixture
def serve(users):
    """Factory like conftest's start_server, in a 0755 directory an unprivileged user can enter."""
    if not _world_reachable(fcgihost_bin()) or not os.access(FCGI_APP, os.X_OK) \
            or not _world_reachable(FCGI_APP):
        pytest.skip("the fcgihost binary or tests/apps/fcgi_app is not reachable by other users")
    old_umask = os.umask(0o022)
    base = tempfile.mkdtemp(prefix="fcgihost-id-")
    os.chmod(base, 0o755)
    servers, n = [], [0]

    def factory(**kw):
        n[0] += 1
        d = os.path.join(base, "srv%d" % n[0])
        os.mkdir(d, 0o755)
        kw.setdefault("files", TREE)
        s = Server(d, **kw)
        servers.append(s)
        return s

    try:
        yield factory
        _stop_all(servers)
    finally:
        os.umask(old_umask)
        shutil.rmtree(base, ignore_errors=True)


def app_ini(name="app", **keys):
    return app_section(name=name, **keys) + handler_section(name=name, path="/" + name + "/",
                                                            app=name, resourceType="Unspecified")


def status_ids(pid):
    """(uids, gids, groups) of /proc/PID/status: real, effective, saved, filesystem ids."""
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    def field(name):
        m = re.search(r"^%s:[ \t]*(.*)$" % name, text, re.M)
        return [int(x) for x in m.group(1).split()]
    return field("Uid"), field("Gid"), sorted(set(field("Groups")))


def app_env(srv, name="app"):
    r = srv.get("/%s/x" % name)
    assert r.status == 200, (r, srv.error_log()[-2000:])
    return env_of(r.body)


def run_check(conf):
    return subprocess.run([fcgihost_bin(), "-t", "-c", conf], capture_output=True, text=True,
                          timeout=10, stdin=subprocess.DEVNULL)


def line_of(text, needle, nth=1):
    hits = [i for i, l in enumerate(text.split("\n"), 1) if needle in l]
    return hits[nth - 1]


# ---- the server drops to [server] user ----

@needs_app
def test_server_drops_privileges_and_keeps_serving(serve, users):
    u1 = users[USER1]
    srv = serve(server_opts={"user": USER1}, extra=app_ini())
    # The listeners accept before the drop: wait for it before looking at the ids.
    srv.wait_for_log(r"dropped privileges to %s \(uid %d" % (USER1, u1.pw_uid))
    uids, gids, groups = status_ids(srv.pid)
    assert uids == [u1.pw_uid] * 4 and gids == [u1.pw_gid] * 4, (uids, gids)
    assert groups == sorted(set(os.getgrouplist(USER1, u1.pw_gid)))
    # Static files and the FastCGI application still work after the drop.
    r = srv.get("/a.txt")
    assert r.status == 200 and r.body == b"hello\n"
    env = app_env(srv)
    pid = int(env["pid"])
    assert status_ids(pid)[:2] == ([u1.pw_uid] * 4, [u1.pw_gid] * 4)
    # runtimeDir is the server user's, 0750; the process's socket is the server user's, 0600.
    st = os.stat(srv.run_dir)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (u1.pw_uid, u1.pw_gid, 0o750)
    sock = env["process_fcgi_x_pipe"]
    assert os.path.dirname(sock) == srv.run_dir
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (u1.pw_uid, 0o600)
    # The control socket was bound before the drop: root's, 0600; `ctl` (as root) still works.
    ctl = os.path.join(srv.run_dir, "control.sock")
    st = os.stat(ctl)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    r = subprocess.run([fcgihost_bin(), "ctl", "-s", ctl, "status"], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "app" in r.stdout, (r.stdout, r.stderr)
    # The log files were handed over, so a reload (which reopens them) works after the drop.
    assert os.stat(srv.error_log_path).st_uid == u1.pw_uid
    assert os.stat(srv.access_log_path).st_uid == u1.pw_uid
    srv.signal(signal.SIGHUP)
    srv.signalled = False
    srv.wait_for_log(r"configuration reloaded")
    assert "cannot open" not in srv.error_log()
    assert srv.get("/a.txt").status == 200
    assert app_env(srv)["pid"] == env["pid"]          # unchanged application: not recycled


@needs_app
def test_app_with_the_server_user_runs_after_the_drop(serve, users):
    u1 = users[USER1]
    srv = serve(server_opts={"user": USER1}, extra=app_ini(user=USER1))
    pid = int(app_env(srv)["pid"])
    assert status_ids(pid)[0] == [u1.pw_uid] * 4


def test_not_started_as_root_user_is_warned_and_ignored(serve, users):
    # Simulated with setpriv when available: the server starts as fhtest2 with user = fhtest1.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not installed")
    u2 = users[USER2]
    srv = serve(server_opts={"user": USER1}, start=False)
    os.chown(srv.run_dir, u2.pw_uid, u2.pw_gid)
    for p in (srv.error_log_path, srv.access_log_path):
        open(p, "a").close()
        os.chown(p, u2.pw_uid, u2.pw_gid)
    port = srv.port
    proc = subprocess.Popen([setpriv, "--reuid", str(u2.pw_uid), "--regid", str(u2.pw_gid),
                             "--init-groups", fcgihost_bin(), "-c", srv.conf],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        helpers.wait_until(lambda: _connects(port) or proc.poll() is not None, 10, what="listening")
        assert proc.poll() is None, proc.stderr.read()
        assert re.search(r"user = %s ignored: fcgihost was not started as root" % USER1,
                         srv.error_log()), srv.error_log()
        assert status_ids(proc.pid)[0] == [u2.pw_uid] * 4
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# ---- per-application users (the server keeps root) ----

@needs_app
def test_app_user_with_supplementary_groups(serve, users):
    u2, g = users[USER2], users[GROUP]
    srv = serve(extra=app_ini(user=USER2) + app_ini(name="other"))
    assert status_ids(srv.pid)[0] == [0] * 4                 # user = root (the harness's): stays root
    env = app_env(srv)
    pid = int(env["pid"])
    uids, gids, groups = status_ids(pid)
    assert uids == [u2.pw_uid] * 4 and gids == [u2.pw_gid] * 4, (uids, gids)
    assert groups == sorted({u2.pw_gid, g.gr_gid}), groups
    # Sockets are the server's (root here), 0600; runtimeDir is left as it was.
    st = os.stat(env["process_fcgi_x_pipe"])
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert os.stat(srv.run_dir).st_uid == 0
    # The application without a user runs as root: said once, at start, for that one only.
    log = srv.error_log()
    assert log.count("[fastcgi:other] runs as root") == 1, log
    assert "[fastcgi:app] runs as root" not in log
    assert status_ids(int(app_env(srv, "other")["pid"]))[0] == [0] * 4
    srv.signal(signal.SIGHUP)
    srv.signalled = False
    srv.wait_for_log(r"configuration reloaded")
    assert srv.error_log().count("[fastcgi:other] runs as root") == 1


@needs_app
def test_app_with_user_dies_with_the_server(serve, users):
    # PR_SET_PDEATHSIG is cleared by the identity change: the trampoline sets it again afterwards.
    srv = serve(extra=app_ini(user=USER2))
    pid = int(app_env(srv)["pid"])
    assert status_ids(pid)[0][0] == users[USER2].pw_uid
    srv.signal(signal.SIGKILL)
    srv.wait_exit(5)
    try:
        helpers.wait_until(lambda: not alive(pid), 5, what="the application to die with the server")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


# ---- refusals and configuration errors ----

def test_unknown_user_is_reported_at_its_line(serve, users):
    srv = serve(server_opts={"user": NOSUCH}, extra=app_ini(user=NOSUCH), start=False)
    r = run_check(srv.conf)
    assert r.returncode == 1, r.stderr
    text = srv.config_text
    assert "%s:%d: user: no such user '%s'" % (srv.conf, line_of(text, "user = " + NOSUCH, 1),
                                                NOSUCH) in r.stderr, r.stderr
    assert "%s:%d: user: no such user '%s'" % (srv.conf, line_of(text, "user = " + NOSUCH, 2),
                                                NOSUCH) in r.stderr, r.stderr
    # Starting is refused the same way.
    p = subprocess.run([fcgihost_bin(), "-c", srv.conf], capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1 and "no such user '%s'" % NOSUCH in p.stderr, p.stderr


def test_other_app_user_refused_when_not_started_as_root(serve, users):
    # Started as fhtest1 (setpriv): nothing can start a process as fhtest2, and no helper exists.
    # The same file is fine for `-t`, which checks as if started as root (the helper would start
    # the application then, test_51_privsep.py).
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not installed")
    u1 = users[USER1]
    srv = serve(server_opts={"user": USER1}, extra=app_ini(user=USER2), start=False)
    section_line = line_of(srv.config_text, "[fastcgi:app]")
    r = run_check(srv.conf)
    assert r.returncode == 0, r.stderr
    os.chown(srv.run_dir, u1.pw_uid, u1.pw_gid)
    for path in (srv.error_log_path, srv.access_log_path):
        open(path, "a").close()
        os.chown(path, u1.pw_uid, u1.pw_gid)
    p = subprocess.run([setpriv, "--reuid", str(u1.pw_uid), "--regid", str(u1.pw_gid),
                        "--init-groups", fcgihost_bin(), "-c", srv.conf], capture_output=True,
                       text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p.stderr
    assert re.search(r"^\S+ \[error\] %s:%d: \[fastcgi:app\] user = %s refused: the server runs as "
                     r"uid %d, not as root" % (re.escape(srv.conf), section_line, USER2, u1.pw_uid),
                     srv.error_log(), re.M), srv.error_log()
    assert "privileged spawn helper" not in srv.error_log()


@needs_app
def test_reload_with_other_app_user_is_rejected_after_the_drop(serve, users):
    srv = serve(server_opts={"user": USER1}, extra=app_ini())
    pid = app_env(srv)["pid"]
    with open(srv.conf, "a") as f:
        f.write("\n" + app_ini(name="two", user=USER2))
    srv.signal(signal.SIGHUP)
    srv.signalled = False
    srv.wait_for_log(r"reload failed: keeping the running configuration")
    log = srv.error_log()
    # No application needed another user at start, so no privileged helper runs to start one.
    assert re.search(r"\[fastcgi:two\] user = %s refused: the server runs as %s \(uid \d+\), not as "
                     r"root, and no privileged spawn helper runs" % (USER2, USER1), log), log
    assert app_env(srv)["pid"] == pid                  # the running configuration goes on
    assert srv.get("/two/x").status == 404            # ...without the refused application


def test_world_writable_runtime_dir_refused_for_the_drop(serve, users):
    srv = serve(server_opts={"user": USER1}, start=False)
    os.chmod(srv.run_dir, 0o1777)
    p = subprocess.run([fcgihost_bin(), "-c", srv.conf], capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1
    assert "writable by every user" in srv.error_log(), srv.error_log()
    assert os.stat(srv.run_dir).st_uid == 0


def test_privileged_port_after_the_drop_is_an_error_for_that_listener(serve, users):
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        if int(f.read()) <= 1:
            pytest.skip("every port is unprivileged on this system")
    low = None
    for port in range(1023, 900, -1):
        try:
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.close()
            low = port
            break
        except OSError:
            continue
    if low is None:
        pytest.skip("no free port below 1024")
    srv = serve(server_opts={"user": USER1})
    srv.wait_for_log(r"fcgihost \S+ started")          # SIGHUP is handled from here on
    text = open(srv.conf).read().replace("[server]\n", "[server]\nlisten = 127.0.0.1:%d\n" % low, 1)
    with open(srv.conf, "w") as f:
        f.write(text)
    srv.signal(signal.SIGHUP)
    srv.signalled = False
    srv.wait_for_log(r"configuration reloaded")
    assert re.search(r"cannot listen on 127\.0\.0\.1:%d: permission denied \(a port below 1024 needs "
                     r"root" % low, srv.error_log()), srv.error_log()
    assert srv.get("/a.txt").status == 200            # the other listener stays
