"""Raw HTTP/1.x helpers for the integration suite: a response reader that works on a plain socket,
so tests can send exact bytes (pipelined requests, malformed heads, partial heads) and see exactly
what the server answers, including whether it closes the connection afterwards.

Every wait here is a poll with a deadline: nothing sleeps a fixed time and hopes.
"""
import email.utils
import os
import re
import socket
import subprocess
import time

DEFAULT_TIMEOUT = 5.0


class ProtocolError(Exception):
    """The server sent something that is not a valid HTTP/1.x response."""


class Timeout(Exception):
    """Nothing (or not enough) arrived before the deadline."""


class Closed(Exception):
    """The connection ended before a complete response arrived."""


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version          # "HTTP/1.1"
        self.status = status            # int
        self.reason = reason            # str
        self.headers = headers          # list of (name, value) as sent
        self.body = body                # bytes (b"" for HEAD / 1xx / 204 / 304)
        self.raw_head = raw_head        # bytes of the status line and header block

    def header(self, name, default=None):
        """The value of the first field named `name` (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has(self, name):
        return self.header(name) is not None

    @property
    def text(self):
        return self.body.decode("latin-1")

    def __repr__(self):
        return "<Response %s %d %s, %d header(s), %d body byte(s)>" % (
            self.version, self.status, self.reason, len(self.headers), len(self.body))


class RawConn:
    """One client connection (TCP or AF_UNIX) with a buffered response reader."""

    def __init__(self, sock, timeout=DEFAULT_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.reset = False

    # --- connecting ---------------------------------------------------------------------------
    @classmethod
    def tcp(cls, host, port, timeout=DEFAULT_TIMEOUT, rcvbuf=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((host, port))
        return cls(s, timeout)

    @classmethod
    def unix(cls, path, timeout=DEFAULT_TIMEOUT):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- sending ------------------------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    # --- receiving ----------------------------------------------------------------------------
    def _fill(self, deadline, bufsize=65536):
        """Read more bytes into self.buf. Returns False on EOF; raises Timeout past deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout("no data before the deadline (have %d byte(s): %r)"
                          % (len(self.buf), self.buf[:200]))
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(bufsize)
        except socket.timeout:
            raise Timeout("no data before the deadline (have %d byte(s): %r)"
                          % (len(self.buf), self.buf[:200]))
        except (ConnectionResetError, BrokenPipeError):
            self.eof = True
            self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise Closed("connection closed with %d of %d byte(s)" % (len(self.buf), n))

    def _line(self, deadline, limit=1 << 20):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("line too long")
            if not self._fill(deadline):
                raise Closed("connection closed mid-line (have %r)" % self.buf[:200])

    def read_head(self, timeout=None):
        """Read a status line and header block; returns (version, status, reason, headers, raw)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\r\n\r\n" not in self.buf and b"\n\n" not in self.buf:
            if not self._fill(deadline):
                if not self.buf:
                    raise Closed("connection closed before a response")
                raise Closed("connection closed mid-head: %r" % self.buf[:300])
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            end = self.buf.find(b"\n\n")
            raw, self.buf = self.buf[:end + 2], self.buf[end + 2:]
        else:
            raw, self.buf = self.buf[:end + 4], self.buf[end + 4:]
        lines = raw.decode("latin-1").split("\n")
        lines = [l[:-1] if l.endswith("\r") else l for l in lines]
        m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise ProtocolError("bad status line %r" % lines[0])
        headers = []
        for l in lines[1:]:
            if l == "":
                continue
            if ":" not in l or l[0] in " \t":
                raise ProtocolError("bad header line %r" % l)
            k, v = l.split(":", 1)
            if k != k.strip() or not k:
                raise ProtocolError("bad header name %r" % k)
            headers.append((k, v.strip()))
        return m.group(1), int(m.group(2)), m.group(3) or "", headers, raw

    def read_response(self, method="GET", timeout=None, skip_1xx=True):
        """Read one complete response. `method` decides whether a body follows (HEAD: none).
        With skip_1xx, interim 1xx responses are skipped (they are kept in self.interim)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        self.interim = []
        while True:
            version, status, reason, headers, raw = self.read_head(max(0.0, deadline - time.monotonic()))
            if 100 <= status < 200:
                r = Response(version, status, reason, headers, b"", raw)
                if skip_1xx and status != 101:
                    self.interim.append(r)
                    continue
                return r
            break
        resp = Response(version, status, reason, headers, b"", raw)
        if method == "HEAD" or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header_all("Content-Length")
        if te is not None:
            if te.lower().replace(" ", "") != "chunked":
                raise ProtocolError("unexpected Transfer-Encoding %r" % te)
            resp.body = self._read_chunked(deadline)
        elif cl:
            if len(set(cl)) != 1 or not re.fullmatch(r"\d+", cl[0]):
                raise ProtocolError("bad Content-Length %r" % cl)
            n = int(cl[0])
            self._need(n, deadline)
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            # Delimited by close.
            while self._fill(deadline):
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def _read_chunked(self, deadline):
        body = b""
        while True:
            line = self._line(deadline).strip()
            size_s = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9a-fA-F]+", size_s):
                raise ProtocolError("bad chunk size line %r" % line)
            size = int(size_s, 16)
            if size == 0:
                # trailers until an empty line
                while self._line(deadline).strip():
                    pass
                return body
            self._need(size + 2, deadline)
            chunk, rest = self.buf[:size], self.buf[size:]
            if not rest.startswith(b"\r\n") and not rest.startswith(b"\n"):
                raise ProtocolError("chunk not followed by CRLF")
            self.buf = rest[2:] if rest.startswith(b"\r\n") else rest[1:]
            body += chunk

    def read_responses(self, methods, timeout=None):
        """Read len(methods) pipelined responses in order."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        out = []
        for m in methods:
            out.append(self.read_response(m, timeout=max(0.01, deadline - time.monotonic())))
        return out

    def wait_closed(self, timeout=2.0):
        """Wait up to `timeout` for the peer to close. Returns True on EOF (or reset), False if the
        connection is still open when the time is up. Any bytes that arrive meanwhile are kept in
        self.buf (a test can assert that there were none)."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except Timeout:
            return False

    def read_exact(self, n, timeout=None, piece=65536):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        self._need(n, deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class RawResult:
    def __init__(self, responses, closed, extra, error=None):
        self.responses = responses
        self.closed = closed      # True: EOF seen; False: still open; None: not checked
        self.extra = extra        # bytes received after the responses
        self.error = error        # exception text when fewer responses than asked came

    @property
    def first(self):
        return self.responses[0] if self.responses else None

    @property
    def status(self):
        return self.first.status if self.first else None

    def __repr__(self):
        return "<RawResult %r closed=%r extra=%r error=%r>" % (
            self.responses, self.closed, self.extra[:100], self.error)


def exchange(conn, data, methods=("GET",), close_timeout=None, timeout=DEFAULT_TIMEOUT):
    """Send `data` once, read one response per entry of `methods` (in order), then, when
    close_timeout is given, wait that long for the server to close the connection."""
    conn.send(data)
    responses, error = [], None
    deadline = time.monotonic() + timeout
    try:
        for m in methods:
            responses.append(conn.read_response(m, timeout=max(0.01, deadline - time.monotonic())))
    except (Timeout, Closed, ProtocolError) as e:
        error = "%s: %s" % (type(e).__name__, e)
    closed = None
    if close_timeout is not None:
        if conn.eof:
            closed = True
        else:
            closed = conn.wait_closed(close_timeout)
    elif conn.eof:
        closed = True
    return RawResult(responses, closed, conn.buf, error)


def request(method, target, headers=None, body=b"", version="HTTP/1.1", host="test"):
    """Build request bytes. `headers` is a list of (name, value) or a dict; Host is added for
    HTTP/1.1 unless host is None or the headers already carry one."""
    lines = ["%s %s %s" % (method, target, version)]
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if host is not None and not any(k.lower() == "host" for k, _ in hs):
        hs.insert(0, ("Host", host))
    for k, v in hs:
        lines.append("%s: %s" % (k, v))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if isinstance(body, str):
        body = body.encode("latin-1")
    return head + body


def chunked(*pieces):
    """Encode pieces as a chunked body (with the final zero chunk)."""
    out = b""
    for p in pieces:
        if isinstance(p, str):
            p = p.encode()
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n\r\n"


def parse_http_date(value):
    """Parse an IMF-fixdate (RFC 9110 5.6.7); returns a timestamp or raises ValueError."""
    if not re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep"
                        r"|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT", value or ""):
        raise ValueError("not an IMF-fixdate: %r" % value)
    return email.utils.parsedate_to_datetime(value).timestamp()


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def wait_until(cond, timeout, interval=0.05, what="condition"):
    """Poll cond() until it returns a truthy value; return that value or raise Timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Timeout("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def check_common_headers(resp, method="GET"):
    """Assertions every response must satisfy: Date (IMF-fixdate), Server, and framing."""
    assert resp.has("Date"), "no Date header in %r" % (resp.raw_head,)
    parse_http_date(resp.header("Date"))
    assert resp.has("Server"), "no Server header in %r" % (resp.raw_head,)
    if resp.status >= 200 and resp.status not in (204, 304):
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        assert te is not None or cl is not None, \
            "neither Content-Length nor Transfer-Encoding in %r" % (resp.raw_head,)
        if cl is not None and method != "HEAD":
            assert int(cl) == len(resp.body)


def make_cert(d, name, cn, sans, key_type="rsa:2048"):
    """A self-signed certificate and key for cn with subjectAltName DNS names `sans`."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    args = ["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
            "-addext", "subjectAltName=" + ",".join("DNS:" + s for s in sans),
            "-keyout", key, "-out", cert]
    if key_type == "ec":
        args[2:2] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    else:
        args[2:2] = ["-newkey", key_type]
    subprocess.run(args, check=True, capture_output=True)
    return cert, key
