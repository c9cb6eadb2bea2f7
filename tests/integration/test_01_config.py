"""`fcgihost -t -c FILE` and start-up with a bad file (SPEC §1, §2): exit 0/1 and `FILE:LINE: message`."""
import os
import re
import subprocess

import pytest

from conftest import fcgihost_bin, free_ports

PHP = "/usr/bin/php-cgi" if os.path.exists("/usr/bin/php-cgi") else "/bin/cat"


def write(tmp_path, text, name="fcgihost.conf"):
    root = tmp_path / "www"
    root.mkdir(exist_ok=True)
    text = text.replace("@ROOT@", str(root)).replace("@TMP@", str(tmp_path)).replace("@PHP@", PHP)
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def check(path, timeout=10):
    return subprocess.run([fcgihost_bin(), "-t", "-c", path], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def lines_of(text):
    return text.split("\n")


def line_no(text, needle, nth=1):
    """1-based line number of the nth line of `text` that contains `needle`."""
    seen = 0
    for i, l in enumerate(lines_of(text), 1):
        if needle in l:
            seen += 1
            if seen == nth:
                return i
    raise AssertionError("%r not in config" % needle)


def diag_lines(stderr, path):
    """The line numbers of the `path:LINE: message` diagnostics on stderr."""
    rx = re.compile(r"^%s:(\d+): ?(.+)$" % re.escape(path), re.M)
    return [(int(m.group(1)), m.group(2)) for m in rx.finditer(stderr)]


GOOD = """\
; a comment
# another comment
[server]
listen = 127.0.0.1:18080
listen = [::1]:18080
listen = unix:@TMP@/http.sock
root = @ROOT@
index = index.php index.html
accessLog = off
errorLog = -
logLevel = info
controlSocket = @TMP@/control.sock
runtimeDir = @TMP@/run
symlinks = insideRoot
statusPath = /fcgihost-status
statusAllow = 127.0.0.0/8 ::1
maxUrlBytes = 8192
maxHeaderBytes = 16384
maxBodyBytes = 30000000
headerTimeout = 30
keepAliveTimeout = 120
shutdownTimeout = 30

[fastcgi:php]
fullPath = @PHP@
arguments =
env = PHP_FCGI_MAX_REQUESTS=10000
env = FOO=bar
maxInstances = 0
instanceMaxRequests = 10000
idleTimeout = 300
activityTimeout = 70
requestTimeout = 90
queueLength = 1000
rapidFailsPerMinute = 10
protocol = unix
flushNamedPipe = false
stderrMode = ReturnStdErrIn500
signalBeforeTerminateSeconds = 0
responseHeaders = relaxed
utf8ServerVariables = *

[handler:php]
path = *.php
verb = *
scriptProcessor = php
resourceType = File
responseBufferLimit = 4194304
"""


def test_good_file_exits_0(tmp_path):
    p = write(tmp_path, GOOD)
    r = check(p)
    assert r.returncode == 0, "stdout=%r stderr=%r" % (r.stdout, r.stderr)
    assert not diag_lines(r.stderr, p)


def test_minimal_file_exits_0(tmp_path):
    p = write(tmp_path, "[server]\nroot = @ROOT@\n")
    r = check(p)
    assert r.returncode == 0, r.stderr


def test_inline_comments_as_in_the_spec(tmp_path):
    # SPEC §2 itself writes `key = value ; comment`: such a file must load.
    p = write(tmp_path, "[server]\nlisten = 127.0.0.1:18080          ; repeatable\n"
                        "root = @ROOT@                  ; required\nheaderTimeout = 1 ; short\n"
                        "symlinks = insideRoot            ; insideRoot | follow\n")
    r = check(p)
    assert r.returncode == 0, r.stderr


BASE = "[server]\nroot = @ROOT@\nlisten = 127.0.0.1:18080\n"
APP = "[fastcgi:php]\nfullPath = @PHP@\n"

# (id, config text, marker of the offending line (or section header), words the message names)
ERRORS = [
    ("unknown_key", BASE + "bogusKey = 1\n", "bogusKey", "bogusKey"),
    ("unknown_key_in_app", BASE + APP + "maxInstancez = 4\n", "maxInstancez", "maxInstancez"),
    ("negative_max_instances", BASE + APP + "maxInstances = -3\n", "maxInstances", "maxInstances"),
    ("header_timeout_abc", BASE + "headerTimeout = abc\n", "headerTimeout", "headerTimeout"),
    ("symlinks_sometimes", BASE + "symlinks = sometimes\n", "symlinks", "symlinks"),
    ("max_url_bytes_suffix", BASE + "maxUrlBytes = 12x\n", "maxUrlBytes", "maxUrlBytes"),
    ("listen_bad_port", "[server]\nroot = @ROOT@\nlisten = 127.0.0.1:99999\n", "listen", "listen"),
    ("log_level_bad", BASE + "logLevel = loud\n", "logLevel", "logLevel"),
    ("stderr_mode_bad", BASE + APP + "stderrMode = Whatever\n", "stderrMode", "stderrMode"),
    ("protocol_bad", BASE + APP + "protocol = pipe\n", "protocol", "protocol"),
    ("flush_named_pipe_bad", BASE + APP + "flushNamedPipe = maybe\n", "flushNamedPipe", "flushNamedPipe"),
    ("response_headers_bad", BASE + APP + "responseHeaders = lax\n", "responseHeaders", "responseHeaders"),
    ("resource_type_bad", BASE + APP + "[handler:h]\npath = *.php\nscriptProcessor = php\n"
     "resourceType = Files\n", "resourceType", "resourceType"),
    ("duplicate_server", BASE + "[server]\nroot = @ROOT@\n", "[server]#2", "server"),
    ("duplicate_app", BASE + APP + APP, "[fastcgi:php]#2", "php"),
    ("handler_missing_app", BASE + APP + "[handler:h]\npath = *.php\nscriptProcessor = perl\n",
     "scriptProcessor = perl", "perl"),
    ("missing_root", "[server]\nlisten = 127.0.0.1:18080\nindex = index.html\n", "[server]", "root"),
    ("missing_full_path", BASE + "[fastcgi:php]\nmaxInstances = 2\n", "[fastcgi:php]", "fullPath"),
    ("missing_script_processor", BASE + APP + "[handler:h]\npath = *.php\n", "[handler:h]",
     "scriptProcessor"),
    ("missing_handler_path", BASE + APP + "[handler:h]\nscriptProcessor = php\n", "[handler:h]", "path"),
    ("unknown_section", BASE + "[fastcgi php]\nfullPath = @PHP@\n", "[fastcgi php]", "fastcgi php"),
]


def expected_lines(text, marker):
    nth = 1
    if "#" in marker:
        marker, nth = marker.split("#")
        nth = int(nth)
    n = line_no(text, marker, nth)
    ok = {n}
    # A missing key or a bad reference may be reported at the key or at its section header.
    if marker.startswith("["):
        return ok
    for i in range(n, 0, -1):
        if lines_of(text)[i - 1].startswith("["):
            if marker.startswith("scriptProcessor"):
                ok.add(i)
            break
    return ok


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_error_reported_with_file_and_line(tmp_path, case):
    _, text, marker, word = case
    p = write(tmp_path, text)
    text = open(p).read()
    r = check(p)
    assert r.returncode == 1, "rc=%d stderr=%r" % (r.returncode, r.stderr)
    diags = diag_lines(r.stderr, p)
    assert diags, "no '%s:LINE: message' on stderr: %r" % (p, r.stderr)
    want = expected_lines(text, marker)
    hits = [(n, m) for n, m in diags if n in want]
    assert hits, "expected a diagnostic at line %s, got %r" % (sorted(want), diags)
    assert any(word.lower() in m.lower() for _, m in hits), \
        "the message should name %r: %r" % (word, hits)


def test_every_error_is_reported(tmp_path):
    # Two independent mistakes: both are reported, each with its own line.
    text = BASE + "bogusKey = 1\nheaderTimeout = abc\n"
    p = write(tmp_path, text)
    r = check(p)
    assert r.returncode == 1
    got = {n for n, _ in diag_lines(r.stderr, p)}
    assert {4, 5} <= got, r.stderr


def test_missing_file(tmp_path):
    p = str(tmp_path / "nope.conf")
    r = check(p)
    assert r.returncode == 1
    assert "nope.conf" in r.stderr


@pytest.mark.parametrize("key", ["arguments", "env"])
def test_long_lines_are_read_whole(tmp_path, key):
    # inih's default line buffer is 200 bytes; a 3000-byte value must not be cut into pieces that
    # then parse as garbage, and the line numbers after it must stay right.
    value = ("-d x=" + "a" * 2995) if key == "arguments" else ("BIG=" + "b" * 2996)
    text = BASE + "[fastcgi:php]\nfullPath = /usr/bin/php-cgi\n%s = %s\nmaxInstances = 2\n" % (key, value)
    p = write(tmp_path, text)
    r = check(p)
    assert r.returncode == 0, r.stderr[:2000]
    # Same file with an error after the long line: reported at the right line.
    text2 = text + "bogusKey = 1\n"
    p2 = write(tmp_path, text2, "bad.conf")
    r2 = check(p2)
    assert r2.returncode == 1
    assert [n for n, _ in diag_lines(r2.stderr, p2)] == [line_no(text2, "bogusKey")], r2.stderr[:2000]


def test_start_with_bad_file_exits_1_with_same_messages(tmp_path):
    port = free_ports(1)[0]
    text = "[server]\nroot = @ROOT@\nlisten = 127.0.0.1:%d\nheaderTimeout = abc\nbogusKey = 1\n" % port
    p = write(tmp_path, text)
    t = check(p)
    r = subprocess.run([fcgihost_bin(), "-c", p], capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    assert sorted(diag_lines(r.stderr, p)) == sorted(diag_lines(t.stderr, p))
    assert {4, 5} <= {n for n, _ in diag_lines(r.stderr, p)}, r.stderr


def test_relative_root_is_relative_to_config_file(start_server):
    # root = www (relative) resolves against the config file's directory, not the cwd ("/").
    import helpers

    def setup(srv):
        os.makedirs(os.path.join(srv.tmp, "www"))
        with open(os.path.join(srv.tmp, "www", "hello.txt"), "wb") as f:
            f.write(b"relative root works\n")

    srv = start_server(server_opts={"root": "www"}, setup=setup, cwd="/")
    r = srv.get("/hello.txt")
    assert r.status == 200 and r.body == b"relative root works\n"
    helpers.check_common_headers(r)
