"""A hostile FastCGI application (issue 10; SPEC §3, §4, §8): tests/apps/hostile_fcgi.py breaks the
protocol in the way its QUERY_STRING asks, one pool serving every case.

Every case checks what the client gets (the documented status, never more bytes than a
Content-Length says, an answer within a few seconds), the error log (a line naming the problem,
a bounded number of warning/error lines, a bounded log size for floods), the server's memory
(peak RSS during the case, measured by resetting VmHWM through /proc/PID/clear_refs) and that the
server still serves a normal request to the same pool afterwards, with no sanitizer report.

The pool runs with activityTimeout = 3 so that a case where the application goes silent ends in
a few seconds, and stderrMode = IgnoreAndReturn200 (SPEC §2's default) so that the stderr flood
is judged on the log and on memory, not on the status.
"""
import os
import re
import socket
import threading
import time

import pytest

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HOSTILE = os.path.join(ROOT, "tests", "apps", "hostile_fcgi.py")
PYTHON = "/usr/bin/python3"

ACTIVITY_TIMEOUT = 3
ANSWER_WITHIN = 8.0            # seconds: "no hang"; generous for ASan builds
CLOSE_WITHIN = 3.0             # seconds for the server to close a connection it must close
MIB = 1 << 20
RSS_BOUND = 24 * MIB           # peak RSS growth allowed while 20..100 MB go through the server
LOG_BOUND = 1 * MIB            # error-log growth allowed for a 50 MB flood
PROBLEM_LINES_MAX = 5          # [error]/[warn] lines of the server itself per case

needs_python = pytest.mark.skipif(not os.access(PYTHON, os.X_OK), reason="no /usr/bin/python3")
pytestmark = needs_python


def config():
    app = ("fullPath = %s\narguments = %s\nactivityTimeout = %d\nrequestTimeout = 60\n"
           "rapidFailsPerMinute = 1000000\nstderrMode = IgnoreAndReturn200\n"
           % (PYTHON, HOSTILE, ACTIVITY_TIMEOUT))
    return ("[fastcgi:hostile]\n" + app + "maxInstances = 2\n\n"
            "[fastcgi:one]\n" + app + "maxInstances = 1\n\n"
            # buffered (responseBufferLimit 4 MiB, the default) and streamed, same pool
            "[handler:hostile]\npath = *.hx\nscriptProcessor = hostile\n\n"
            "[handler:stream]\npath = /stream/\nresourceType = Unspecified\nscriptProcessor = hostile\n"
            "responseBufferLimit = 0\n\n"
            "[handler:one]\npath = /one/\nresourceType = Unspecified\nscriptProcessor = one\n")


BUFFERED = "/t.hx"
STREAMED = "/stream/t"


# ---- process memory ----

def _status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("%s not in /proc/%d/status" % (field, pid))


class PeakRss:
    """Peak resident memory of a process from now on: VmHWM reset through clear_refs (Linux ≥ 4.0),
    with VmRSS sampled every 20 ms as well in case the reset is refused."""

    def __init__(self, pid):
        self.pid = pid
        try:
            with open("/proc/%d/clear_refs" % pid, "w") as f:
                f.write("5")
        except OSError:
            pass
        self.base = _status_kb(pid, "VmRSS")
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()

    def _sample(self):
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, _status_kb(self.pid, "VmRSS"))
            except (OSError, AssertionError):
                return

    def growth(self):
        self._stop.set()
        self._t.join(2)
        try:
            self.peak = max(self.peak, _status_kb(self.pid, "VmHWM"))
        except (OSError, AssertionError):
            pass
        return self.peak - self.base


# ---- the server and one case ----

class Hostile:
    def __init__(self, srv):
        self.srv = srv
        self.mark()

    def mark(self):
        """Start a new case: later log reads see only what follows."""
        self.log_at = os.path.getsize(self.srv.error_log_path) if os.path.exists(self.srv.error_log_path) else 0

    def log(self):
        with open(self.srv.error_log_path, "rb") as f:
            f.seek(self.log_at)
            return f.read().decode("utf-8", "replace")

    def log_size(self):
        return os.path.getsize(self.srv.error_log_path) - self.log_at

    def wait_log(self, regex, timeout=5.0):
        rx = re.compile(regex, re.M)
        try:
            return helpers.wait_until(lambda: rx.search(self.log()), timeout, what="log /%s/" % regex)
        except helpers.Timeout:
            raise AssertionError("error log never matched /%s/ within %.0fs; since the case began it holds:\n%s"
                                 % (regex, timeout, self.log()[-3000:]))

    def server_lines(self):
        """[error]/[warn] lines of the server itself (not the application's own fd 1/2 lines)."""
        return [l for l in self.log().splitlines()
                if re.search(r"\[(error|warn)\]", l) and "hostile_fcgi " not in l
                and " stderr: " not in l]

    def check_log(self, regex):
        """One line naming the problem, and only a bounded few warnings/errors in all."""
        self.wait_log(regex)
        lines = self.server_lines()
        assert len(lines) <= PROBLEM_LINES_MAX, \
            "%d warning/error lines for one case:\n%s" % (len(lines), "\n".join(lines[:20]))

    def marks(self, mode):
        """How many requests of this mode reached a process since the case began."""
        return len(re.findall(r"hostile_fcgi \d+ mark %s " % re.escape(mode), self.log()))

    def get(self, target, timeout=ANSWER_WITHIN):
        """One GET on a fresh connection; the answer must come within `timeout` seconds."""
        t0 = time.monotonic()
        res = self.srv.raw(helpers.request("GET", target, [("Connection", "close")]), timeout=timeout)
        assert res.error is None, "%s: %s (after %.1fs)" % (target, res.error, time.monotonic() - t0)
        return res.first

    def healthy(self):
        """After a case: no crash, no sanitizer report, and the same pool answers a normal request."""
        assert self.srv.running(), "fcgihost died: %s" % self.srv.stderr()[-4000:]
        err = self.srv.stderr()
        assert "Sanitizer" not in err and "runtime error:" not in err, err[-4000:]
        for path in (BUFFERED, STREAMED):
            r = self.get(path + "?mode=ok")
            assert r.status == 200 and r.body.startswith(b"ok pid="), (path, r, r.body[:200])


@pytest.fixture
def hostile(start_server):
    # ASan keeps freed blocks in a quarantine (256 MB by default) that counts in RSS; the bound is
    # about live memory, so the quarantine is kept small for this server (no effect without ASan).
    saved = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = ((saved + ":") if saved else "") + "quarantine_size_mb=4"
    try:
        srv = start_server(files={"t.hx": b"script"}, extra=config())
    finally:
        if saved is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = saved
    h = Hostile(srv)
    # Warm both pools and the handlers so the baseline RSS of each case includes them.
    r = h.get(BUFFERED + "?mode=ok")
    assert r.status == 200, r
    assert h.get("/one/x?mode=ok").status == 200
    h.mark()
    return h


def body_of(n):
    return bytes(ord("a") + i % 26 for i in range(n))


# ---- records that break the protocol: 502 ----

@pytest.mark.parametrize("where", ["first", "mid", "end"])
def test_wrong_request_id_is_502(hostile, where):
    r = hostile.get(BUFFERED + "?mode=wrong_id&where=" + where)
    assert r.status == 502, r
    assert b"wrong id" not in r.body and b"part one" not in r.body
    hostile.check_log(r"(?i)request id")
    hostile.healthy()


@pytest.mark.parametrize("where,version", [("first", 2), ("first", 0), ("mid", 2)])
def test_wrong_protocol_version_is_502(hostile, where, version):
    r = hostile.get(BUFFERED + "?mode=wrong_version&where=%s&v=%d" % (where, version))
    assert r.status == 502, r
    hostile.check_log(r"(?i)version")
    hostile.healthy()


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_garbage_instead_of_records_is_502(hostile, kind):
    r = hostile.get(BUFFERED + "?mode=garbage&kind=" + kind)
    assert r.status == 502, r
    assert b"garbage" not in r.body
    hostile.check_log(r"(?i)FastCGI protocol error|version")
    hostile.healthy()


def test_end_request_before_any_stdout_is_502(hostile):
    r = hostile.get(BUFFERED + "?mode=end_first")
    assert r.status == 502, r
    hostile.check_log(r"(?i)without response headers|no response")
    hostile.healthy()


# Record types an application may not send (FastCGI spec: 9 GET_VALUES and 1, 2, 4, 5, 8 go from the
# server to the application; 12..255 are not defined), or management types with a request id: 502.
@pytest.mark.parametrize("rtype,rid", [(12, 1), (255, 1), (9, 0), (1, 1), (5, 1), (8, 1), (11, 1)],
                         ids=["type12", "type255", "GET_VALUES", "BEGIN_REQUEST", "STDIN", "DATA",
                              "UNKNOWN_TYPE-with-id"])
@pytest.mark.parametrize("path", [BUFFERED, STREAMED], ids=["buffered", "streamed"])
def test_record_type_not_allowed_mid_answer(hostile, rtype, rid, path):
    target = path + "?mode=unknown&type=%d&id=%d" % (rtype, rid)
    if path == BUFFERED:
        r = hostile.get(target)
        assert r.status == 502, r
    else:
        # Streamed (responseBufferLimit 0): the headers may have gone out before the bad record came.
        # Then the client gets a 502, or a response cut short (no final chunk) or nothing at all,
        # never one that looks complete.
        res = hostile.srv.raw(helpers.request("GET", target, [("Connection", "close")]), timeout=ANSWER_WITHIN)
        if res.error is None:
            assert res.first.status == 502, (res.first, res.first.body)
        else:
            assert res.error.startswith("Closed"), res.error
    hostile.check_log(r"(?i)record type|request id")
    hostile.healthy()


# Well-formed management records (request id 0) are connection-level and may come at any time:
# they must neither fail the request nor leak into the body.
@pytest.mark.parametrize("rtype", [11, 10], ids=["UNKNOWN_TYPE", "GET_VALUES_RESULT"])
@pytest.mark.parametrize("path", [BUFFERED, STREAMED], ids=["buffered", "streamed"])
def test_management_record_mid_answer_is_ignored(hostile, rtype, path):
    r = hostile.get(path + "?mode=unknown&type=%d&id=0" % rtype)
    assert r.status == 200, r
    assert r.body == b"before\nafter\n", r.body
    hostile.healthy()


# ---- legal but unusual framing: must work ----

@pytest.mark.parametrize("path", [BUFFERED, STREAMED], ids=["buffered", "streamed"])
def test_padding_255_on_every_record(hostile, path):
    r = hostile.get(path + "?mode=pad255&n=3000&chunk=1")
    assert r.status == 200, r
    assert r.body == body_of(3000)
    hostile.healthy()


def test_largest_records_with_255_padding(hostile):
    n = 4 << 20
    with hostile.srv.connect(timeout=ANSWER_WITHIN) as c:
        c.send(helpers.request("GET", STREAMED + "?mode=bigrec&n=%d" % n, [("Connection", "close")]))
        r = c.read_response(timeout=ANSWER_WITHIN)
    assert r.status == 200, r
    assert len(r.body) == n
    expect = b"".join(bytes([ord("a") + (i // 65535) % 26]) * min(65535, n - i) for i in range(0, n, 65535))
    assert r.body == expect
    hostile.healthy()


def test_declared_content_never_sent_times_out_with_500(hostile):
    # A STDOUT record declares 65535 bytes, 100 come, then silence: activityTimeout, 500.
    t0 = time.monotonic()
    r = hostile.get(BUFFERED + "?mode=declared_stall", timeout=ACTIVITY_TIMEOUT + ANSWER_WITHIN)
    assert r.status == 500, r
    assert time.monotonic() - t0 < ACTIVITY_TIMEOUT + ANSWER_WITHIN
    hostile.check_log(r"activityTimeout")
    hostile.healthy()


# ---- truncated records: 502, never retried (SPEC §4.11: bytes of an answer came) ----

@pytest.mark.parametrize("at", ["header", "content", "end"])
def test_truncated_record_then_close_is_502_and_not_retried(hostile, at):
    r = hostile.get(BUFFERED + "?mode=trunc&at=" + at)
    assert r.status == 502, r
    hostile.wait_log(r"hostile_fcgi \d+ truncated at %s" % at)
    hostile.check_log(r"(?i)closed the connection|ended unexpectedly|truncated|FastCGI protocol error")
    # The process had sent bytes of an answer: the request must not have run a second time.
    assert hostile.marks("trunc") == 1, hostile.log()[-3000:]
    hostile.healthy()


# ---- STDOUT after END_REQUEST ----

@pytest.mark.parametrize("path", [BUFFERED, STREAMED], ids=["buffered", "streamed"])
def test_stdout_after_end_request_in_the_same_write(hostile, path):
    r = hostile.get(path + "?mode=after_end&delay=0")
    assert r.status == 200, r
    assert r.body == b"after_end first answer\n"
    hostile.check_log(r"(?i)after END_REQUEST|outside a request|after the end")
    hostile.healthy()
    assert b"STALE" not in hostile.get(BUFFERED + "?mode=ok").body


def test_stdout_after_end_request_while_idle(hostile):
    r = hostile.get(BUFFERED + "?mode=after_end&delay=0.3")
    assert r.status == 200, r
    assert r.body == b"after_end first answer\n"
    hostile.check_log(r"(?i)after END_REQUEST|outside a request|after the end")
    hostile.healthy()


def test_stale_stdout_never_reaches_the_next_client(hostile):
    # maxInstances = 1, so B goes to the process that served A, on the same kept-alive connection.
    # That process answers A, waits for B's request to arrive, then sends a second, stale answer for
    # A's request id before answering B. B must get its own answer (or an error), never A's.
    ra = hostile.get("/one/x?mode=after_end&delay=next")
    assert ra.status == 200 and ra.body == b"after_end first answer\n", (ra, ra.body)
    rb = hostile.get("/one/x?mode=ok")
    assert b"STALE" not in rb.body, "B got the stale answer A's process sent: %r %r" % (rb, rb.body)
    assert rb.status in (200, 502), rb
    if rb.status == 200:
        assert rb.body.startswith(b"ok pid="), rb.body
    hostile.healthy()


# ---- floods: bounded memory, bounded log, an answer ----

def test_endless_header_block_is_502_with_bounded_memory(hostile):
    mem = PeakRss(hostile.srv.pid)
    t0 = time.monotonic()
    r = hostile.get(BUFFERED + "?mode=hdrflood&mb=100")
    took = time.monotonic() - t0
    grew = mem.growth()
    print("100 MB header block: status %d after %.2fs, peak RSS +%.1f MiB" % (r.status, took, grew / MIB))
    assert r.status == 502, r
    hostile.check_log(r"(?i)header block|too large|too long")
    assert grew < RSS_BOUND, "RSS grew by %.1f MiB during a 100 MB header block" % (grew / MIB)
    assert took < ANSWER_WITHIN
    hostile.healthy()


def test_header_block_in_tiny_records_is_502_in_time(hostile):
    # 6-byte header lines, each in its own record, and no empty line: the header-block limit must
    # be reached without re-scanning the whole block for every record.
    r = hostile.get(BUFFERED + "?mode=hdrtrickle&kb=256")
    assert r.status == 502, r
    hostile.check_log(r"(?i)header block|too large|too long|header lines")
    hostile.healthy()


def test_stderr_flood_is_bounded_in_memory_and_log(hostile):
    mem = PeakRss(hostile.srv.pid)
    r = hostile.get(BUFFERED + "?mode=stderr_flood&mb=50", timeout=3 * ANSWER_WITHIN)
    grew = mem.growth()
    print("50 MB FCGI_STDERR: status %d, peak RSS +%.1f MiB, error log +%.2f MiB"
          % (r.status, grew / MIB, hostile.log_size() / MIB))
    assert r.status == 200, r
    assert r.body == b"survived the stderr flood\n"
    hostile.wait_log(r"stderr flood line")
    assert grew < RSS_BOUND, "RSS grew by %.1f MiB during 50 MB of FCGI_STDERR" % (grew / MIB)
    assert hostile.log_size() < LOG_BOUND, \
        "50 MB of FCGI_STDERR wrote %.1f MiB to the error log" % (hostile.log_size() / MIB)
    hostile.healthy()


@pytest.mark.parametrize("fd,mb", [(2, 50), (1, 20)])
def test_process_output_flood_is_bounded_in_memory_and_log(hostile, fd, mb):
    mem = PeakRss(hostile.srv.pid)
    r = hostile.get(BUFFERED + "?mode=fd_flood&fd=%d&mb=%d" % (fd, mb), timeout=3 * ANSWER_WITHIN)
    assert r.status == 200, r
    assert r.body == b"survived the fd flood\n"
    hostile.wait_log(r"fd%d flood line" % fd)    # the capture still works
    # Let the server read what is left in the pipe before judging the log (polled, no fixed wait).
    size = {"last": -1}

    def settled():
        now = hostile.log_size()
        done = now == size["last"]
        size["last"] = now
        return done
    helpers.wait_until(settled, 3 * ANSWER_WITHIN, interval=0.3, what="the error log to stop growing")
    grew = mem.growth()
    print("%d MB on fd %d: peak RSS +%.1f MiB, error log +%.2f MiB" % (mb, fd, grew / MIB, hostile.log_size() / MIB))
    assert grew < RSS_BOUND, "RSS grew by %.1f MiB during %d MB on fd %d" % (grew / MIB, mb, fd)
    assert hostile.log_size() < LOG_BOUND, \
        "%d MB on the process's fd %d wrote %.1f MiB to the error log" % (mb, fd, hostile.log_size() / MIB)
    hostile.healthy()


# ---- an application that never reads its request body ----

def _post_in_background(c, head, total):
    """Send head and `total` body bytes from a thread; stop quietly when the server stops reading."""
    state = {"sent": 0}

    def send():
        try:
            c.sock.sendall(head)
            piece = b"z" * 65536
            while state["sent"] < total:
                n = min(len(piece), total - state["sent"])
                c.sock.sendall(piece[:n])
                state["sent"] += n
        except OSError:
            pass
    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t, state


def test_app_not_reading_a_20mb_body_answers_with_bounded_memory(hostile):
    total = 20 * MIB
    mem = PeakRss(hostile.srv.pid)
    with hostile.srv.connect(timeout=ANSWER_WITHIN) as c:
        head = helpers.request("POST", BUFFERED + "?mode=noread&delay=0.5",
                               [("Content-Length", str(total)), ("Connection", "close")])
        t, state = _post_in_background(c, head, total)
        r = c.read_response(timeout=ANSWER_WITHIN)
        c.wait_closed(ANSWER_WITHIN)
    t.join(ANSWER_WITHIN)
    grew = mem.growth()
    print("20 MB POST not read: status %d, peak RSS +%.1f MiB, %d body bytes sent" % (r.status, grew / MIB, state["sent"]))
    assert r.status == 200 and r.body == b"noread\n", (r, r.body[:200])
    assert grew < RSS_BOUND, "RSS grew by %.1f MiB while a 20 MB body was not read" % (grew / MIB)
    hostile.healthy()


def test_app_not_reading_and_not_answering_times_out_with_500(hostile):
    total = 20 * MIB
    mem = PeakRss(hostile.srv.pid)
    t0 = time.monotonic()
    with hostile.srv.connect(timeout=ACTIVITY_TIMEOUT + ANSWER_WITHIN) as c:
        head = helpers.request("POST", BUFFERED + "?mode=noread_hang",
                               [("Content-Length", str(total)), ("Connection", "close")])
        t, state = _post_in_background(c, head, total)
        r = c.read_response(timeout=ACTIVITY_TIMEOUT + ANSWER_WITHIN)
    t.join(ANSWER_WITHIN)
    grew = mem.growth()
    print("20 MB POST, no answer: status %d, peak RSS +%.1f MiB, %d body bytes sent" % (r.status, grew / MIB, state["sent"]))
    assert r.status == 500, r
    assert time.monotonic() - t0 < ACTIVITY_TIMEOUT + ANSWER_WITHIN
    assert grew < RSS_BOUND, "RSS grew by %.1f MiB while a 20 MB body was not read" % (grew / MIB)
    hostile.check_log(r"activityTimeout")
    hostile.healthy()


# ---- statuses and framing ----

@pytest.mark.parametrize("code", [100, 101, 103])
@pytest.mark.parametrize("path", [BUFFERED, STREAMED], ids=["buffered", "streamed"])
def test_1xx_final_status_is_502(hostile, code, path):
    with hostile.srv.connect(timeout=ANSWER_WITHIN) as c:
        c.send(helpers.request("GET", path + "?mode=status&code=%d" % code, [("Connection", "close")]))
        r = c.read_response(timeout=ANSWER_WITHIN, skip_1xx=False)
        assert r.status == 502, (r, c.buf[:300])
        extra = c.buf
        c.wait_closed(CLOSE_WITHIN)
        assert b"status body" not in extra + c.buf
    hostile.check_log(r"(?i)1xx|\b%d\b|informational" % code)
    hostile.healthy()


@pytest.mark.parametrize("path", [BUFFERED, STREAMED], ids=["buffered", "responseBufferLimit0"])
def test_content_length_surplus_is_cut_and_the_connection_closed(hostile, path):
    # "Content-Length: 5", then 200 KB whose bytes after "hello" are forged HTTP responses. A
    # second request is pipelined behind: the surplus must never be read as its response.
    with hostile.srv.connect(timeout=ANSWER_WITHIN) as c:
        c.send(helpers.request("GET", path + "?mode=cl_surplus&kb=200")
               + helpers.request("GET", BUFFERED + "?mode=ok"))
        r = c.read_response(timeout=ANSWER_WITHIN)
        closed = c.wait_closed(CLOSE_WITHIN)
        rest = c.buf
    assert r.status == 200, r
    assert r.header("Content-Length") == "5", r.raw_head
    assert r.body == b"hello"
    assert b"SMUGGLED" not in rest and b"X-Smuggled" not in rest, rest[:300]
    assert rest == b"", "bytes after the 5-byte body: %r" % rest[:300]
    assert closed, "connection left open after a response whose application overran its Content-Length"
    hostile.check_log(r"(?i)content-length")
    hostile.healthy()


@pytest.mark.parametrize("path", [BUFFERED, STREAMED], ids=["buffered", "responseBufferLimit0"])
def test_content_length_shortfall_never_looks_complete(hostile, path):
    # "Content-Length: 100" and 10 bytes: the client must get a 502, or a response cut short and the
    # connection closed; never a complete-looking response (a rewritten Content-Length), and it must
    # not be left waiting for the 90 missing bytes.
    s = socket.create_connection((hostile.srv.host, hostile.srv.port), timeout=ANSWER_WITHIN)
    s.sendall(helpers.request("GET", path + "?mode=cl_short"))
    data, eof = b"", False
    deadline = time.monotonic() + CLOSE_WITHIN + 2

    def complete():
        head, sep, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        return sep and m and len(body) >= int(m.group(1))
    try:
        while time.monotonic() < deadline and not complete():
            s.settimeout(max(0.01, deadline - time.monotonic()))
            d = s.recv(65536)
            if not d:
                eof = True
                break
            data += d
    except socket.timeout:
        pass
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head, "no response at all"
    status = int(head.split(b" ", 2)[1])
    if status != 502:
        assert status == 200, head
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if m:
            assert int(m.group(1)) == 100, \
                "the application said Content-Length: 100 and sent 10 bytes; the client got a " \
                "complete-looking response: %r" % data
            assert len(body) < 100
        else:
            assert re.search(rb"(?im)^transfer-encoding:\s*chunked", head), head
            assert not body.endswith(b"0\r\n\r\n"), (head, body)
        assert eof, "connection still open %.0fs after a response cut short: %r" % (CLOSE_WITHIN + 2, data[:300])
    hostile.check_log(r"(?i)content-length")
    hostile.healthy()
