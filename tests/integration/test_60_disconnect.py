"""The disconnect matrix (SPEC §8, issue 10): a client may go away — FIN, FIN then RST, RST,
half-close — at any moment of any kind of response, and the server frees what the request held,
reuses or recycles the FastCGI process, and nothing else is affected.

Every combination of
    how the client leaves     fin | fin_rst | rst | half                      (see hostile.py)
    when                      head_partial | body_partial | app_wait | resp_headers |
                              resp_mid_body | continue_pending | pipelined_pending
    what it asked for         small | sendfile | dir301 | etag304 | nf404 | range416 | status |
                              fcgi_buf | fcgi_stream | head | head_fcgi | chunked
that exists is one test (combinations that do not exist — a 304 has no mid-body, a static file
never waits for an application — are left out of the list, not skipped). After each one:
the server runs, has printed no sanitizer report, answers a static file and a FastCGI request
correctly on fresh connections, and within a deadline holds no connection but the status page's
own and has no FastCGI process busy or queued (the JSON status page), and no more fcgi_app
children than maxInstances (/proc). With "half" the bytes that did arrive must be well-formed and,
for each response that arrived whole, the right answer.

The servers are module-scoped (one server for the whole matrix). When a combination fails, the
next one starts on a fresh server (the failed one is stopped; a crashed one is left as it is), so
each combination reports on its own; the harness's teardown then also reports the crash or the
sanitizer report of any server of the module. The last test checks, on the server that ran the end
of the matrix, that the FastCGI pool did not leak processes and still works, that the server's open
descriptors came back to what they were after the warm-up, and (release builds) that VmRSS grew by
less than 20 MB; under ASan the leak check proper is LeakSanitizer's at teardown (make sanitize).
"""
import json
import os
import re
import signal

import pytest

import helpers
import hostile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.environ.get("FCGIHOST_APPS", os.path.join(ROOT, "build", "tests", "apps"))
FCGI_APP = os.path.join(APPS, "fcgi_app")

pytestmark = pytest.mark.skipif(not os.access(FCGI_APP, os.X_OK), reason="tests/apps/fcgi_app not built")

MAX_INSTANCES = 2
SMALL = bytes((i * 7 + 13) % 251 for i in range(1000))
BIG_SIZE = 4 << 20                    # the sendfile file
UPLOAD = bytes((i * 31 + 5) % 256 for i in range(64 << 10))
UPLOAD_BIG = bytes((i * 17 + 3) % 256 for i in range(1 << 20))      # echoed: a 1 MiB buffered answer
SPILL = 1536 << 10                    # a chunked body past the 1 MiB in-memory threshold
STATIC_BODY = 20000                   # a body sent to a handler that does not read it
SMALL_RCVBUF = 4096
PATTERN = b"0123456789abcdef"
RSS_GROWTH_KB = 20 << 10
FD_SLACK = 8
MOMENT_TIMEOUT = 10.0                 # reaching the moment (a head, a mark in the log)
CHECK_TIMEOUT = 15.0                  # the checks after each combination
HALF_TIMEOUT = 30.0                   # a half-closed client reading what still comes

INI = f"""[fastcgi:app]
fullPath = {FCGI_APP}
maxInstances = {MAX_INSTANCES}

[handler:stream]
path = *.sfcgi
scriptProcessor = app
responseBufferLimit = 0

[handler:app]
path = *.fcgi
scriptProcessor = app
"""

MODES = hostile.MODES
MOMENTS = ("head_partial", "body_partial", "app_wait", "resp_headers", "resp_mid_body",
           "continue_pending", "pipelined_pending")


# ---- what the client asks for ----------------------------------------------------------------

def is_pattern(body, n):
    if len(body) != n:
        return "%d body byte(s), expected %d" % (len(body), n)
    whole = PATTERN * (n // 16) + PATTERN[:n % 16]
    return None if body == whole else "the body is not fcgi_app's big= pattern"


def body_is(expected):
    def check(r):
        if r.body == expected:
            return None
        return "body of %d byte(s) differs from the expected %d" % (len(r.body), len(expected))
    return check


class Target:
    """One kind of response. `request(moment, mark)` builds the request for a moment and returns
    (method, head bytes, body bytes, check): check(resp) is None when resp is the right answer."""

    def __init__(self, name, kind, method, path, status, check=None, headers=(), rcvbuf=None,
                 moments=MOMENTS):
        self.name, self.kind, self.method, self.path = name, kind, method, path
        self.status, self.check, self.headers, self.rcvbuf = status, check, list(headers), rcvbuf
        self.moments = moments

    @property
    def fcgi(self):
        return self.kind in ("fcgi", "chunked")


def _check_status_json(r):
    try:
        json.loads(r.body)
    except ValueError as e:
        return "status page body is not JSON: %s" % e
    return None


def _check_301(r):
    loc = r.header("Location") or ""
    return None if loc.endswith("/dir/") else "Location %r does not end with /dir/" % loc


def _check_head(length):
    def check(r):
        return None if r.header("Content-Length") == str(length) else \
            "HEAD Content-Length %r, expected %d" % (r.header("Content-Length"), length)
    return check


def _check_env(r):
    return None if b"REQUEST_METHOD=GET" in r.body else "no REQUEST_METHOD=GET in %r" % r.body[:200]


TARGETS = [
    Target("small", "static", "GET", "/small.txt", 200, body_is(SMALL)),
    Target("sendfile", "static", "GET", "/big.bin", 200, None, rcvbuf=SMALL_RCVBUF),   # check set below
    Target("dir301", "static", "GET", "/dir", 301, _check_301),
    Target("etag304", "static", "GET", "/small.txt", 304, headers=[("If-None-Match", None)]),
    Target("nf404", "static", "GET", "/nope.txt", 404),
    Target("range416", "static", "GET", "/small.txt", 416, headers=[("Range", "bytes=5000-6000")]),
    Target("status", "static", "GET", "/fcgihost-status", 200, _check_status_json),
    Target("fcgi_buf", "fcgi", "GET", "/t.fcgi", 200, _check_env),
    Target("fcgi_stream", "fcgi", "GET", "/s.sfcgi?big=2m", 200,
           lambda r: is_pattern(r.body, 2 << 20), rcvbuf=SMALL_RCVBUF),
    Target("head", "static", "HEAD", "/big.bin", 200, _check_head(BIG_SIZE)),
    Target("head_fcgi", "fcgi", "HEAD", "/s.sfcgi?big=2m", 200),
    Target("chunked", "chunked", "POST", "/t.fcgi?echo=body", 200, body_is(UPLOAD)),
]
TARGET = {t.name: t for t in TARGETS}


def exists(moment, t):
    """Does this moment exist for this response? (The list is built from this, nothing skips.)"""
    if moment in ("head_partial", "resp_headers", "pipelined_pending"):
        return True
    if moment in ("body_partial", "continue_pending"):
        return t.method != "HEAD"                       # any request but HEAD may carry a body
    if moment == "app_wait":
        return t.fcgi                                   # only an application makes a client wait
    if moment == "resp_mid_body":
        # a body long enough to be left in the middle: the 4 MB file, 2 MB streamed, and 1 MiB
        # answers buffered whole by the server (fcgi_buf with ?big=1m, chunked echoing 1 MiB)
        return t.name in ("sendfile", "fcgi_stream", "fcgi_buf", "chunked")
    raise ValueError(moment)


COMBOS = [(mode, moment, t.name) for moment in MOMENTS for t in TARGETS if exists(moment, t)
          for mode in MODES]


def add_query(path, q):
    return path + ("&" if "?" in path else "?") + q


def chunks_of(data, size=16 << 10):
    return b"".join(b"%x\r\n" % len(data[i:i + size]) + data[i:i + size] + b"\r\n"
                    for i in range(0, len(data), size))


class Plan:
    """What the client sends and waits for in one combination."""

    def __init__(self, t, moment, mark, ctx):
        self.t, self.moment, self.mark = t, moment, mark
        self.rcvbuf = t.rcvbuf
        self.method = t.method
        path = t.path
        headers = [(k, ctx.etag if v is None else v) for k, v in t.headers]
        body = b""
        check = t.check
        if t.name == "sendfile":
            check = body_is(ctx.big)
        self.wait_mark = False

        # The variant of the request this moment needs.
        if t.fcgi:
            path = add_query(path, "mark=" + mark)
        if t.kind == "chunked":
            data = UPLOAD
            if moment == "resp_mid_body":
                data = UPLOAD_BIG
                check = body_is(UPLOAD_BIG)
                self.rcvbuf = SMALL_RCVBUF
            headers.append(("Transfer-Encoding", "chunked"))
            body = chunks_of(data) + b"0\r\n\r\n"
            if moment == "body_partial":
                body = chunks_of(os.urandom(SPILL))      # no last chunk: the body never ends
        elif moment in ("body_partial", "continue_pending"):
            if t.fcgi:
                self.method = "POST"
                if t.name == "fcgi_buf":
                    path = add_query(path, "echo=body")
                check = None
            n = 200000 if t.fcgi else STATIC_BODY
            headers.append(("Content-Length", str(n)))
            body = os.urandom(n // 2) if moment == "body_partial" else b""
        if t.name == "fcgi_buf" and moment == "resp_mid_body":
            path = add_query(path, "big=1m")
            check = lambda r: is_pattern(r.body, 1 << 20)  # noqa: E731
            self.rcvbuf = SMALL_RCVBUF
        if moment == "continue_pending":
            headers.append(("Expect", "100-continue"))
        slow_first = moment == "app_wait" or (moment == "pipelined_pending" and t.name in ("fcgi_buf", "chunked"))
        if slow_first:
            path = add_query(path, "sleep=300")
        # When the client knows it reached the moment.
        if moment == "app_wait" or (moment == "pipelined_pending" and slow_first):
            self.wait_mark = True
        if moment == "body_partial" and t.kind == "fcgi":
            self.wait_mark = True       # length-delimited bodies stream: the app is reading stdin

        self.head = helpers.request(self.method, path, headers)
        self.body = body
        self.check = check
        self.req1 = self.head + body
        self.methods = [self.method]
        if moment == "pipelined_pending":
            # the second request: the same one without the sleep or the mark
            path2 = re.sub(r"[?&](sleep=300|mark=[^&]*)", "", path)
            if "?" not in path2 and "&" in path2:
                path2 = path2.replace("&", "?", 1)
            self.req2 = helpers.request(self.method, path2, headers) + body
            self.methods.append(self.method)
        else:
            self.req2 = b""

    def allowed_statuses(self):
        st = {self.t.status}
        if self.moment in ("head_partial", "body_partial", "continue_pending"):
            st |= {400, 408}     # a request the client never finished may be refused
        return st


# ---- the server and its checks ------------------------------------------------------------------

class Matrix:
    """The module's server; replaced by a fresh one after a combination fails."""

    def __init__(self, factory):
        self.factory = factory
        self.big = os.urandom(BIG_SIZE)
        self.srv = None
        self.restarts = []
        self.last = None             # the last combination that ran
        self.failed = False          # it failed (its failure says why; the next one restarts)
        self.counter = 0
        self.start()

    def start(self):
        self.srv = self.factory(
            files={"small.txt": SMALL, "big.bin": self.big, "dir/index.html": b"<p>dir</p>\n",
                   "t.fcgi": b"script", "s.sfcgi": b"script"},
            extra=INI)
        self.sanitized = hostile.sanitized(self.srv.pid, self.srv.proc.args[0])
        r = self.srv.get("/small.txt")
        assert r.status == 200 and r.body == SMALL, r
        self.etag = r.header("ETag")
        assert self.etag, "no ETag on a static file"
        self.warm_up()
        self.check_quiet("the warm-up")
        self.rss_base = hostile.status_kb(self.srv.pid)
        self.fds_base = hostile.fd_count(self.srv.pid)
        self.stderr_seen = len(self.srv.stderr())

    def warm_up(self):
        """Every kind of response once, whole, heavy ones included, so that caches and the
        allocator have reached their working size before the baseline is taken."""
        srv = self.srv
        for _ in range(2):
            assert srv.get("/big.bin").body == self.big
            assert srv.get("/dir").status == 301
            assert srv.get("/small.txt", headers={"If-None-Match": self.etag}).status == 304
            assert srv.get("/nope.txt").status == 404
            assert srv.get("/small.txt", headers={"Range": "bytes=5000-6000"}).status == 416
            assert srv.get("/fcgihost-status").status == 200
            assert srv.get("/big.bin", method="HEAD").status == 200
            assert srv.get("/s.sfcgi?big=2m", method="HEAD").status == 200
            assert is_pattern(srv.get("/s.sfcgi?big=2m").body, 2 << 20) is None
            assert is_pattern(srv.get("/t.fcgi?big=1m").body, 1 << 20) is None
            with srv.connect(timeout=CHECK_TIMEOUT) as c:
                up = os.urandom(SPILL)
                c.send(helpers.request("POST", "/t.fcgi?echo=body",
                                       [("Transfer-Encoding", "chunked"), ("Connection", "close")])
                       + chunks_of(up) + b"0\r\n\r\n")
                r = c.read_response(timeout=CHECK_TIMEOUT)
                assert r.status == 200 and r.body == up
            with srv.connect(timeout=CHECK_TIMEOUT) as c:
                c.send(b"POST /t.fcgi?echo=body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
                assert c.read_head(timeout=CHECK_TIMEOUT)[1] == 100
                c.send(b"hello")
                assert c.read_response(timeout=CHECK_TIMEOUT).body == b"hello"

    def stop_current(self):
        """Stop a server that is still running (the harness's teardown reports its problems)."""
        srv = self.srv
        if srv.running():
            srv.signal(signal.SIGTERM)
            try:
                srv.wait_exit(15)
            except AssertionError:
                srv.proc.kill()
                srv.proc.wait()

    def death(self):
        srv = self.srv
        err = srv.stderr()
        state = ("is still running" if srv.running() else
                 "is dead, exit status %s" % srv.proc.returncode)
        return ("fcgihost (pid %d) %s; stderr ends with:\n%s"
                % (srv.pid, state, err[-6000:] or "(nothing)"))

    def begin(self, cid):
        """Before a combination: a server that works. Fails this combination at once (without
        running it) when the server died after the previous one had passed."""
        dead = not self.srv.running()
        if dead or self.failed:
            prev, was_failed = self.last, self.failed
            msg = self.death() if dead else None
            if not dead:
                self.stop_current()
            self.restarts.append(prev)
            self.failed = False
            self.start()
            if dead and not was_failed:
                self.last = cid
                pytest.fail("the server died after %s had passed its checks (a fresh server runs "
                            "the next combinations); %s" % (prev, msg), pytrace=False)
        self.last = cid
        self.counter += 1
        self.stderr_seen = len(self.srv.stderr())

    def dying(self):
        """After a failure: is the server dead, or dying (a sanitizer report is being written)?
        Returns the death's description, or None when it still runs after a short grace."""
        srv = self.srv
        sanitizer = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|Assertion .* failed")
        try:
            helpers.wait_until(lambda: not srv.running() or sanitizer.search(srv.stderr()[self.stderr_seen:]),
                               2.0, what="the server to die")
        except helpers.Timeout:
            return None
        try:
            srv.proc.wait(timeout=30)      # the whole report, then abort_on_error
        except Exception:
            pass
        return self.death()

    def alive(self, when):
        if not self.srv.running():
            raise AssertionError("the server died %s: %s" % (when, self.death()))

    def status(self):
        r = self.srv.get("/fcgihost-status")
        assert r.status == 200, r
        return json.loads(r.body)

    def check_quiet(self, after):
        """Within a deadline: no connection but the status page's own, no FastCGI process busy,
        draining or queued for, the pool not failed, at most maxInstances fcgi_app children."""
        last = {}

        def quiet():
            st = self.status()
            pool = st["pools"][0]
            procs = pool["processes"]
            kids = hostile.children(self.srv.pid, "fcgi_app")
            last.update(connections=st["server"]["connections"], busy=procs.get("busy"),
                        draining=procs.get("draining"), queued=pool["queue"]["queued"],
                        failed=pool["failed"], total=procs["total"], fcgi_app_children=len(kids))
            return (st["server"]["connections"] <= 1 and procs.get("busy", 0) == 0
                    and procs.get("draining", 0) == 0 and pool["queue"]["queued"] == 0
                    and not pool["failed"] and len(kids) <= MAX_INSTANCES)
        try:
            helpers.wait_until(quiet, CHECK_TIMEOUT, interval=0.02, what="a quiet server")
        except helpers.Timeout:
            self.alive("while waiting for it to be quiet after %s" % after)
            raise AssertionError("%.0fs after %s the server is not quiet: %s (want connections <= 1, "
                                 "busy = draining = queued = 0, not failed, fcgi_app children <= %d)"
                                 % (CHECK_TIMEOUT, after, last, MAX_INSTANCES))

    def check_after(self, cid):
        """The checks after each combination (see the module docstring)."""
        srv = self.srv
        self.alive("after the client left")
        with srv.connect(timeout=CHECK_TIMEOUT) as c:
            res = helpers.exchange(c, helpers.request("GET", "/small.txt", [("Connection", "close")]),
                                   timeout=CHECK_TIMEOUT)
        self.alive("while answering a fresh static request")
        assert res.first is not None, "a fresh static request got no answer: %s" % res.error
        assert res.status == 200 and res.first.body == SMALL, "fresh static request: %r" % res
        with srv.connect(timeout=CHECK_TIMEOUT) as c:
            res = helpers.exchange(c, helpers.request("GET", "/t.fcgi", [("Connection", "close")]),
                                   timeout=CHECK_TIMEOUT)
        self.alive("while answering a fresh FastCGI request")
        assert res.first is not None, \
            "a fresh FastCGI request got no answer within %.0fs: %s" % (CHECK_TIMEOUT, res.error)
        assert res.status == 200 and _check_env(res.first) is None, "fresh FastCGI request: %r" % res
        self.check_quiet(cid)
        self.alive("after the checks")
        err = srv.stderr()[self.stderr_seen:]
        if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", err):
            raise AssertionError("sanitizer report during %s:\n%s" % (cid, err[-6000:]))


@pytest.fixture(scope="module")
def matrix(module_server_factory):
    return Matrix(module_server_factory)


# ---- one combination --------------------------------------------------------------------------

def reach_moment(ctx, c, plan):
    """Send what the moment needs and wait until the server is there."""
    t, moment = plan.t, plan.moment
    if moment == "head_partial":
        head = plan.head
        c.send(head[:max(10, len(head) // 2)])     # cut inside the header block
        return
    if moment == "body_partial":
        c.send(plan.head + plan.body)               # plan.body is half of what Content-Length says
    elif moment == "continue_pending":
        c.send(plan.head)
    elif moment == "pipelined_pending":
        c.send(plan.req1 + plan.req2)
    else:
        c.send(plan.req1)
    if plan.wait_mark:
        ctx.srv.wait_for_log(r"mark %s$" % re.escape(plan.mark), timeout=MOMENT_TIMEOUT)
        return
    if moment in ("body_partial", "continue_pending"):
        if t.kind == "chunked" and moment == "body_partial":
            return
        # The server may answer (or say 100 Continue) before the body; let that arrive if it does.
        # Not required: an answer only after the body would be a choice, not a bug.
        try:
            c.wait_head(timeout=2.0)
        except helpers.Timeout:
            pass
        return
    if moment == "resp_mid_body":
        c.wait_body_bytes(1, timeout=MOMENT_TIMEOUT)
        return
    c.wait_final_head(timeout=MOMENT_TIMEOUT)       # resp_headers, pipelined_pending


def check_half(plan, outcome, data):
    """What a half-closed client received: well-formed, and each whole response right."""
    resps, problem = hostile.parse_responses(data, plan.methods)
    if problem and problem.startswith("malformed"):
        raise AssertionError("after a half-close the client received something that is not HTTP "
                             "(%s): %r" % (problem, bytes(data[:500])))
    allowed = plan.allowed_statuses()
    for i, r in enumerate(resps):
        assert r.status in allowed, \
            "response %d after a half-close: status %d, expected one of %s" % (i + 1, r.status, sorted(allowed))
        if r.status == plan.t.status and plan.check:
            why = plan.check(r)
            assert why is None, "response %d after a half-close is wrong: %s" % (i + 1, why)
    return resps, problem


@pytest.mark.parametrize("mode,moment,target", COMBOS,
                         ids=["%s-%s-%s" % c for c in COMBOS])
def test_disconnect(matrix, mode, moment, target):
    cid = "%s-%s-%s" % (mode, moment, target)
    matrix.begin(cid)
    try:
        plan = Plan(TARGET[target], moment, "m%d-%s" % (matrix.counter, cid), matrix)
        c = hostile.HostileConn(matrix.srv.host, matrix.srv.port, rcvbuf=plan.rcvbuf,
                                timeout=MOMENT_TIMEOUT)
        try:
            reach_moment(matrix, c, plan)
            outcome = c.leave(mode, done=hostile.ResponseTracker(plan.methods),
                              timeout=HALF_TIMEOUT)
        finally:
            c.close()
        if mode == "half":
            check_half(plan, outcome, c.data)
        matrix.check_after(cid)
    except BaseException as e:
        matrix.failed = True       # the next combination gets a fresh server
        died = matrix.dying()
        if died:
            raise AssertionError("the server died during %s: %s" % (cid, died)) from e
        raise


def test_pool_descriptors_and_memory_after_the_matrix(matrix):
    """On the server that ran the end of the matrix: no FastCGI process leaked, the pool still
    works, descriptors are back to the warm-up's count, VmRSS grew by less than 20 MB."""
    matrix.alive("before the final checks")
    srv = matrix.srv
    note = ("" if not matrix.restarts else
            " (the server was replaced %d time(s); this one has run since after %s)"
            % (len(matrix.restarts), matrix.restarts[-1]))
    matrix.check_quiet("the matrix" + note)
    kids = hostile.children(srv.pid, "fcgi_app")
    assert len(kids) <= MAX_INSTANCES, "fcgi_app children %s > maxInstances %d%s" % (kids, MAX_INSTANCES, note)
    for _ in range(3):
        r = srv.get("/t.fcgi")
        assert r.status == 200, r
        pid = int(re.search(rb"^pid=(\d+)$", r.body, re.M).group(1))
        now = hostile.children(srv.pid, "fcgi_app")
        assert pid in now, "the FastCGI answer came from pid %d, not a child of the server %s" % (pid, now)
        assert len(now) <= MAX_INSTANCES, now
    fds = []
    try:
        helpers.wait_until(lambda: fds.append(hostile.fd_count(srv.pid)) or fds[-1] <= matrix.fds_base + FD_SLACK,
                           CHECK_TIMEOUT, what="descriptors back to the warm-up's count")
    except helpers.Timeout:
        raise AssertionError("the server holds %d open descriptors, %d after the warm-up (slack %d)%s: %s"
                             % (fds[-1], matrix.fds_base, FD_SLACK, note, hostile.fd_targets(srv.pid)))
    rss = hostile.status_kb(srv.pid)
    growth = rss - matrix.rss_base
    print("VmRSS %d kB after the warm-up, %d kB after the matrix (%+d kB%s); descriptors %d -> %d"
          % (matrix.rss_base, rss, growth, ", ASan: not bounded" if matrix.sanitized else "",
             matrix.fds_base, fds[-1]))
    if not matrix.sanitized:
        assert growth <= RSS_GROWTH_KB, ("VmRSS grew from %d kB after the warm-up to %d kB after the "
                                         "matrix (+%d kB > %d kB)%s"
                                         % (matrix.rss_base, rss, growth, RSS_GROWTH_KB, note))
    matrix.alive("at the end")
