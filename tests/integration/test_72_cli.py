"""The conventions users expect of the command line (SPEC §1, issue 11): `--help` and `--version`
(GNU: help on stdout and exit 0; a usage error is a line on stderr, a pointer to --help, exit 2),
`fcgihost ctl --help` and each command's `--help`, `fcgihost ctl -c FILE` finding the server from
its configuration file, syslog priorities on error-log lines when stderr is the journal
(JOURNAL_STREAM), and the Prometheus counter of responses by status code."""
import os
import re
import subprocess

import pytest

import helpers
from conftest import REPO
from test_20_fastcgi import app_section, handler_section, needs_app

OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3


def run(bin_path, *args, env=None, cwd=None):
    """Run the binary; FCGIHOST_CONTROL_SOCKET is never inherited from the test's environment."""
    e = {k: v for k, v in os.environ.items() if k != "FCGIHOST_CONTROL_SOCKET"}
    e.update(env or {})
    return subprocess.run([bin_path] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=30, env=e, cwd=cwd)


def project_version():
    with open(os.path.join(REPO, "meson.build")) as f:
        m = re.search(r"project\([^)]*?version\s*:\s*'([^']+)'", f.read(), re.S)
    assert m, "no version in meson.build"
    return m.group(1)


def assert_usage_error(cp, try_cmd, what):
    assert cp.returncode == USAGE, (cp.returncode, cp.stdout, cp.stderr)
    assert cp.stdout == "", cp.stdout
    assert what in cp.stderr, cp.stderr
    assert "Try '%s --help' for more information.\n" % try_cmd in cp.stderr, cp.stderr


# ---- fcgihost --help / --version -------------------------------------------------------------

def test_help_and_version(bin_path):
    for opt in ("--help", "-h"):
        cp = run(bin_path, opt)
        assert cp.returncode == OK and cp.stderr == "", (opt, cp)
        assert cp.stdout.startswith("usage: fcgihost [-c FILE] [-t]\n"), cp.stdout
        for text in ("-c FILE", "-t ", "-h, --help", "-v, --version", "/etc/fcgihost/fcgihost.conf",
                     "fcgihost ctl --help"):
            assert text in cp.stdout, (text, cp.stdout)
    for opt in ("--version", "-v"):
        cp = run(bin_path, opt)
        assert (cp.returncode, cp.stdout, cp.stderr) == (OK, "fcgihost %s\n" % project_version(), "")
    # --help wins wherever it stands, without reading or checking any file
    cp = run(bin_path, "-c", "/nonexistent/fcgihost.conf", "--help")
    assert cp.returncode == OK and cp.stdout.startswith("usage: fcgihost")


def test_usage_errors(bin_path):
    for args, what in [(("-x",), "unknown option: -x"),
                       (("-tx",), "unknown option: -x"),
                       (("--bogus",), "unknown option: --bogus"),
                       (("--help=yes",), "unknown option: --help=yes"),
                       (("-c",), "option needs an argument: -c"),
                       (("-t", "extra"), "unexpected argument: extra")]:
        cp = run(bin_path, *args)
        assert_usage_error(cp, "fcgihost", "fcgihost: " + what)
        assert cp.stderr.count("\n") == 2, cp.stderr   # two lines, not the whole help


# ---- fcgihost ctl --help ---------------------------------------------------------------------

CTL_COMMANDS = {
    "status": "status [APP] [--json]",
    "recycle": "recycle APP",
    "set": "set APP KEY VALUE",
    "reload": "reload",
    "stop": "stop",
}


def test_ctl_help(bin_path):
    for opt in ("--help", "-h"):
        cp = run(bin_path, "ctl", opt)
        assert cp.returncode == OK and cp.stderr == "", cp
        assert cp.stdout.startswith("usage: fcgihost ctl [-s SOCKET | -c FILE] COMMAND"), cp.stdout
        for synopsis in CTL_COMMANDS.values():
            assert re.search(r"^  %s\s" % re.escape(synopsis), cp.stdout, re.M), (synopsis, cp.stdout)
        for text in ("-s SOCKET", "-c FILE", "/etc/fcgihost/fcgihost.conf",
                     "/run/fcgihost/control.sock", "exit status:"):
            assert text in cp.stdout, (text, cp.stdout)
    # Each command's own help, with nothing sent: the socket named does not exist.
    for cmd, synopsis in CTL_COMMANDS.items():
        for args in ((cmd, "--help"), ("-s", "/nonexistent/s.sock", cmd, "-h"),
                     ("-c", "/nonexistent/x.conf", cmd, "--help")):
            cp = run(bin_path, "ctl", *args)
            assert cp.returncode == OK and cp.stderr == "", (args, cp)
            assert cp.stdout.startswith("usage: fcgihost ctl [-s SOCKET | -c FILE] %s\n" % synopsis), \
                (args, cp.stdout)
            assert len(cp.stdout.splitlines()) >= 2, cp.stdout  # and what it does
    cp = run(bin_path, "ctl", "set", "php", "--help", "2")
    assert cp.returncode == OK and "set APP KEY VALUE" in cp.stdout


def test_ctl_usage_errors(bin_path):
    assert_usage_error(run(bin_path, "ctl", "-x", "status"), "fcgihost ctl", "unknown option -x")
    assert_usage_error(run(bin_path, "ctl"), "fcgihost ctl", "no command given")
    assert_usage_error(run(bin_path, "ctl", "frob"), "fcgihost ctl", "unknown command frob")
    assert_usage_error(run(bin_path, "ctl", "-s", "/a.sock", "-c", "/b.conf", "status"),
                       "fcgihost ctl", "-s and -c both name the socket")
    assert_usage_error(run(bin_path, "ctl", "-c"), "fcgihost ctl", "-c needs a configuration file")
    assert_usage_error(run(bin_path, "ctl", "recycle"), "fcgihost ctl recycle",
                       "recycle takes 1 argument, not 0")
    assert_usage_error(run(bin_path, "ctl", "status", "--xml"), "fcgihost ctl status",
                       "unknown status option --xml")


# ---- fcgihost ctl -c FILE --------------------------------------------------------------------

def test_ctl_finds_the_server_from_its_config(start_server, bin_path):
    srv = start_server(files={"a.txt": b"a"})
    # The harness's file names its own controlSocket (run/control.sock), not the default one.
    assert "controlSocket = %s" % srv.control_socket in srv.config_text
    cp = run(bin_path, "ctl", "-c", srv.conf, "status", "--json")
    assert cp.returncode == OK, cp.stderr
    assert '"pid":%d,' % srv.pid in cp.stdout
    # A relative FILE is taken from the working directory; -c wins over the environment.
    cp = run(bin_path, "ctl", "-c", "fcgihost.conf", "status", cwd=srv.tmp,
             env={"FCGIHOST_CONTROL_SOCKET": "/nonexistent/env.sock"})
    assert cp.returncode == OK, cp.stderr
    # A server that is not running: the message names the socket and where it came from.
    os.rename(srv.control_socket, srv.control_socket + ".away")
    try:
        cp = run(bin_path, "ctl", "-c", srv.conf, "status")
    finally:
        os.rename(srv.control_socket + ".away", srv.control_socket)
    assert cp.returncode == UNREACHABLE, cp
    assert "cannot connect to %s" % srv.control_socket in cp.stderr
    assert "the controlSocket of %s" % srv.conf in cp.stderr
    # And the commands act on that server: stop it through its file.
    srv.signalled = True                                     # it is meant to exit
    cp = run(bin_path, "ctl", "-c", srv.conf, "stop")
    assert cp.returncode == OK and "stopping" in cp.stdout, cp
    assert srv.wait_exit(10) == 0


def test_ctl_with_a_broken_config_sends_nothing(start_server, bin_path, tmp_path):
    srv = start_server(files={"a.txt": b"a"})
    broken = tmp_path / "broken.conf"
    # It names the running server's socket, but also has errors: nothing may be sent.
    broken.write_text("[server]\nroot = %s\ncontrolSocket = %s\nlisen = 127.0.0.1:1\n"
                      "logLevel = loud\n" % (srv.root, srv.control_socket))
    cp = run(bin_path, "ctl", "-c", broken, "stop")
    assert cp.returncode == REFUSED, cp
    assert cp.stdout == ""
    assert re.search(r"^%s:4: .*lisen" % re.escape(str(broken)), cp.stderr, re.M), cp.stderr
    assert re.search(r"^%s:5: .*loud" % re.escape(str(broken)), cp.stderr, re.M), cp.stderr
    assert "cannot take the control socket from %s" % broken in cp.stderr
    assert srv.running() and srv.get("/a.txt").status == 200   # no stop reached it
    # A file that cannot be read at all.
    cp = run(bin_path, "ctl", "-c", tmp_path / "missing.conf", "status")
    assert cp.returncode == REFUSED and "missing.conf: cannot open" in cp.stderr, cp


# ---- Syslog priorities when stderr is the journal --------------------------------------------

LINE = re.compile(r"^(<\d>)?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(\w+)\] ")
PRIORITY = {"error": "<3>", "warn": "<4>", "info": "<6>", "debug": "<7>"}


def start_with_stderr(start_server, monkeypatch, journal, **kw):
    """A server whose stderr is its stderr.txt, with JOURNAL_STREAM naming that file (journal
    True) or another inode of the same device (False)."""
    srv = start_server(start=False, **kw)
    open(srv.stderr_path, "ab").close()
    st = os.stat(srv.stderr_path)
    monkeypatch.setenv("JOURNAL_STREAM", "%d:%d" % (st.st_dev, st.st_ino + (0 if journal else 1)))
    srv.start()
    monkeypatch.delenv("JOURNAL_STREAM")
    return srv


def provoke_every_level(srv, bin_path):
    """An info line (start), a warn (status page refused), a debug (a process ended on recycle)
    and errors (a reload of a file with an error: a second [server] section)."""
    assert srv.get("/t.fcgi").status == 200
    assert srv.get("/fcgihost-status").status == 403
    assert srv.ctl("recycle", "app").returncode == OK
    with open(srv.conf, "a") as f:
        f.write("\n[server]\nbogusKey = 1\n")
    cp = srv.ctl("reload")
    assert cp.returncode == REFUSED, cp


def log_lines(text):
    lines = [l for l in text.splitlines() if l.strip()]
    for l in lines:
        assert LINE.match(l), "not a log line: %r" % l
    return [(LINE.match(l).group(1), LINE.match(l).group(2), l) for l in lines]


@needs_app
def test_journal_priorities(start_server, monkeypatch, bin_path):
    srv = start_with_stderr(start_server, monkeypatch, True,
                            files={"t.fcgi": b"x"}, extra=app_section() + handler_section(),
                            server_opts={"errorLog": "-", "logLevel": "debug",
                                         "statusAllow": "192.0.2.0/24"})
    provoke_every_level(srv, bin_path)
    srv.wait_for_log(r"^<3>.*\[error\] reload failed", which="stderr")
    srv.wait_for_log(r"^<7>.*\[debug\] ", which="stderr")
    seen = set()
    for prio, level, line in log_lines(srv.stderr()):
        assert prio == PRIORITY[level], line
        seen.add(level)
    assert seen == set(PRIORITY), seen
    assert re.search(r"^<4>\S+ \[warn\] .*status page refused", srv.stderr(), re.M)
    assert re.search(r"^<6>\S+ \[info\] ", srv.stderr(), re.M)


@needs_app
def test_no_priorities_unless_stderr_is_the_journal(start_server, monkeypatch, bin_path):
    # JOURNAL_STREAM names another stream: stderr keeps the plain format.
    srv = start_with_stderr(start_server, monkeypatch, False,
                            files={"t.fcgi": b"x"}, extra=app_section() + handler_section(),
                            server_opts={"errorLog": "-", "logLevel": "debug",
                                         "statusAllow": "192.0.2.0/24"})
    provoke_every_level(srv, bin_path)
    srv.wait_for_log(r"\[error\] reload failed", which="stderr")
    srv.wait_for_log(r"\[debug\] ", which="stderr")
    lines = log_lines(srv.stderr())
    assert {level for _, level, _ in lines} == set(PRIORITY)
    assert all(prio is None for prio, _, _ in lines), srv.stderr()

    # stderr is the journal but the error log is a file: the file keeps the plain format.
    srv2 = start_with_stderr(start_server, monkeypatch, True,
                             files={"t.fcgi": b"x"}, extra=app_section() + handler_section(),
                             server_opts={"logLevel": "debug", "statusAllow": "192.0.2.0/24"})
    provoke_every_level(srv2, bin_path)
    srv2.wait_for_log(r"\[error\] reload failed")
    srv2.wait_for_log(r"\[debug\] ")
    lines = log_lines(srv2.error_log())
    assert {level for _, level, _ in lines} == set(PRIORITY)
    assert all(prio is None for prio, _, _ in lines), srv2.error_log()


# ---- Responses by status code (Prometheus) ---------------------------------------------------

def metrics(srv):
    r = srv.get("/fcgihost-status?format=prometheus")
    assert r.status == 200, r
    text = r.body.decode()
    codes = {int(m.group(1)): int(m.group(2)) for m in
             re.finditer(r'^fcgihost_http_responses_total\{code="(\d+)"\} (\d+)$', text, re.M)}
    classes = {m.group(1): int(m.group(2)) for m in
               re.finditer(r'^fcgihost_http_requests_total\{class="(\dxx)"\} (\d+)$', text, re.M)}
    return text, codes, classes


def test_metric_by_status_code(start_server):
    srv = start_server(files={"a.txt": b"a"})
    text, codes, classes = metrics(srv)
    assert "# TYPE fcgihost_http_responses_total counter\n" in text
    assert codes == {}                        # nothing answered yet (this page counts once sent)
    assert classes == {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
    assert srv.get("/a.txt").status == 200
    assert srv.get("/missing.txt").status == 404
    assert srv.get("/missing.txt").status == 404
    text, codes, classes = metrics(srv)
    # one 200 for a.txt and one for the first metrics page; two 404s
    assert codes == {200: 2, 404: 2}, text
    assert classes["2xx"] == 2 and classes["4xx"] == 2     # the per-class family is unchanged
    _, codes, _ = metrics(srv)
    assert codes == {200: 3, 404: 2}
