"""Hostile clients for the integration suite: a connection that goes away at a chosen moment, in
one of the ways a real client does (SPEC §8: "a client may go away (FIN, RST, half-close) at any
moment"), and /proc probes that tell whether such clients cost the server anything (children by
name, VmRSS, open descriptors).

    c = HostileConn("127.0.0.1", port, rcvbuf=4096)   # a small receive window: the server blocks
    c.send(head)
    c.wait_final_head(timeout=5)                        # or wait_head(), wait_body_bytes(n)
    outcome = c.leave("rst")                            # "fin" | "fin_rst" | "rst" | "half"

The ways to leave:
    fin      shutdown(SHUT_WR), then close(): FIN; Linux then answers whatever the server still
             sends with RST (and close() itself sends RST when received bytes were left unread)
    fin_rst  shutdown(SHUT_WR), a short pause (up to 30 ms, over as soon as the server closes its
             side) so that the server sees the FIN first, then close() with SO_LINGER {1, 0}: RST
    rst      close() with SO_LINGER {1, 0}: RST at once, nothing more is read or acknowledged
    half     shutdown(SHUT_WR) only, then keep reading until the server closes, or until
             done(bytes) says the answer is complete, within a deadline (helpers.Timeout past it)

Every byte received on the connection is kept in `.data` (in order, across waits), so a test can
parse what arrived with parse_responses() whatever the moment it left at. Every wait has a deadline.
"""
import os
import re
import select
import socket
import struct
import time

import helpers

MODES = ("fin", "fin_rst", "rst", "half")
FIN_RST_GAP = 0.03


class HostileConn:
    """One client TCP connection that records everything it receives and can leave on demand."""

    def __init__(self, host, port, rcvbuf=None, timeout=10.0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # before connect: the window
        s.settimeout(timeout)
        s.connect((host, port))
        self.sock = s
        self.timeout = timeout
        self.data = bytearray()
        self.eof = False            # the server closed (FIN) or reset the connection
        self.reset = False          # ... with RST (ECONNRESET)
        self.closed = False         # we closed our socket

    # --- sending ------------------------------------------------------------------------------
    def send(self, data):
        """sendall within the socket timeout; a reset or timeout while sending raises."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    # --- receiving ----------------------------------------------------------------------------
    def _recv(self, deadline, bufsize=65536):
        """Receive once into .data; False at EOF or reset; helpers.Timeout past the deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise helpers.Timeout("nothing more arrived before the deadline (have %d byte(s): %r)"
                                  % (len(self.data), bytes(self.data[:200])))
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(bufsize)
        except socket.timeout:
            raise helpers.Timeout("nothing more arrived before the deadline (have %d byte(s): %r)"
                                  % (len(self.data), bytes(self.data[:200])))
        except (ConnectionResetError, BrokenPipeError):
            self.eof = self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.data += chunk
        return True

    def wait_for(self, cond, timeout, what):
        """Receive until cond(self.data) is truthy; returns it. helpers.Closed if the server closes
        first, helpers.Timeout past the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            v = cond(self.data)
            if v:
                return v
            try:
                more = self._recv(deadline)
            except helpers.Timeout as e:
                raise helpers.Timeout("waiting for %s: %s" % (what, e))
            if not more:
                v = cond(self.data)
                if v:
                    return v
                raise helpers.Closed("the server %s the connection while the client waited for %s "
                                     "(received %d byte(s): %r)"
                                     % ("reset" if self.reset else "closed", what, len(self.data),
                                        bytes(self.data[:300])))

    def wait_head(self, timeout=5.0):
        """The first response head, interim (1xx) or final: returns its status."""
        return self.wait_for(lambda d: first_head(d, final=False), timeout, "a response head")[0]

    def wait_final_head(self, timeout=5.0):
        """The first final (non-1xx) head: returns (status, offset of its end in .data)."""
        return self.wait_for(lambda d: first_head(d, final=True), timeout, "a final response head")

    def wait_body_bytes(self, n, timeout=5.0):
        """At least n bytes after the first final head."""
        def enough(d):
            h = first_head(d, final=True)
            return h if h and len(d) - h[1] >= n else None
        return self.wait_for(enough, timeout, "%d byte(s) of response body" % n)

    # --- leaving ------------------------------------------------------------------------------
    def _shutdown_wr(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # already reset by the server: the FIN cannot be sent, which is fine here

    def _close_rst(self):
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def leave(self, mode, done=None, timeout=30.0):
        """Go away as `mode` says (see the module docstring). For "half", returns how the exchange
        ended: "eof", "reset" or "done" (done(self.data) became true); the others return mode."""
        if mode == "fin":
            self._shutdown_wr()
            self.close()
        elif mode == "fin_rst":
            self._shutdown_wr()
            p = select.poll()
            p.register(self.sock.fileno(), select.POLLRDHUP)
            p.poll(int(FIN_RST_GAP * 1000))       # returns early when the server closes its side
            self._close_rst()
        elif mode == "rst":
            self._close_rst()
        elif mode == "half":
            self._shutdown_wr()
            deadline = time.monotonic() + timeout
            try:
                while True:
                    if done is not None and done(self.data):
                        return "done"
                    try:
                        more = self._recv(deadline)
                    except helpers.Timeout:
                        raise helpers.Timeout(
                            "after a half-close the server neither completed the answer nor closed "
                            "the connection within %.0fs (received %d byte(s), first: %r)"
                            % (timeout, len(self.data), bytes(self.data[:300])))
                    if not more:
                        return "reset" if self.reset else "eof"
            finally:
                self.close()
        else:
            raise ValueError(mode)
        return mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- parsing what arrived ---------------------------------------------------------------------

_STATUS = re.compile(rb"HTTP/\d\.\d (\d{3})")


def first_head(data, final=True):
    """(status, end offset) of the first complete head in data, skipping 1xx heads when final;
    None when that head is not complete yet."""
    pos = 0
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return None
        m = _STATUS.match(bytes(data[pos:pos + 12]))
        status = int(m.group(1)) if m else 0
        if final and 100 <= status < 200:
            pos = end + 4
            continue
        return status, end + 4


class _EndOfData:
    """A socket stand-in for helpers.RawConn that is at end of stream."""

    def settimeout(self, t):
        pass

    def recv(self, n):
        return b""


def parse_responses(data, methods):
    """Parse up to len(methods) responses from the bytes of a finished connection.
    Returns (responses, problem): problem is None when all were complete, else "truncated: ..."
    (the data ended inside a response) or "malformed: ..." (not HTTP)."""
    rc = helpers.RawConn(_EndOfData(), timeout=1.0)
    rc.buf = bytes(data)
    out = []
    for m in methods:
        if not rc.buf:
            return out, "truncated: no bytes for response %d" % (len(out) + 1)
        try:
            out.append(rc.read_response(m, timeout=1.0))
        except (helpers.Closed, helpers.Timeout) as e:
            return out, "truncated: %s" % e
        except helpers.ProtocolError as e:
            return out, "malformed: %s" % e
    return out, None


class ResponseTracker:
    """Follows the responses in a connection's growing .data incrementally (each byte is looked at
    once), so that a reader can stop as soon as the answers it expects are complete. Call it with
    the data; it returns True once len(methods) final responses are complete. A close-delimited
    body can only end with the connection, so it never completes here."""

    def __init__(self, methods):
        self.methods = list(methods)
        self.count = 0            # complete final responses
        self.pos = 0
        self.state = "head"
        self.left = 0
        self.bad = None

    def __call__(self, data):
        while self.count < len(self.methods) and self.bad is None:
            if not self._step(data):
                break
        return self.count >= len(self.methods)

    def _line(self, data):
        i = data.find(b"\n", self.pos)
        if i < 0:
            return None
        line = bytes(data[self.pos:i]).strip()
        self.pos = i + 1
        return line

    def _step(self, data):
        """Advance once; False when more data is needed."""
        if self.state == "head":
            end = data.find(b"\r\n\r\n", self.pos)
            if end < 0:
                return False
            head = bytes(data[self.pos:end]).decode("latin-1")
            self.pos = end + 4
            m = re.match(r"HTTP/\d\.\d (\d{3})", head)
            if not m:
                self.bad = "bad status line %r" % head[:80]
                return False
            status = int(m.group(1))
            if 100 <= status < 200:
                return True
            fields = {}
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                fields[k.strip().lower()] = v.strip()
            if self.methods[self.count] == "HEAD" or status in (204, 304):
                self.count += 1
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                self.state = "size"
            elif "content-length" in fields:
                self.left = int(fields["content-length"])
                self.state = "body"
            else:
                self.state = "close"
            return True
        if self.state == "body":
            take = min(self.left, len(data) - self.pos)
            self.pos += take
            self.left -= take
            if self.left:
                return False
            self.count += 1
            self.state = "head"
            return True
        if self.state == "size":
            line = self._line(data)
            if line is None:
                return False
            try:
                size = int(line.split(b";")[0], 16)
            except ValueError:
                self.bad = "bad chunk size %r" % line[:40]
                return False
            if size == 0:
                self.state = "trailer"
            else:
                self.left = size + 2
                self.state = "chunk"
            return True
        if self.state == "chunk":
            take = min(self.left, len(data) - self.pos)
            self.pos += take
            self.left -= take
            if self.left:
                return False
            self.state = "size"
            return True
        if self.state == "trailer":
            line = self._line(data)
            if line is None:
                return False
            if line == b"":
                self.count += 1
                self.state = "head"
            return True
        return False      # "close": only the end of the connection ends it


# --- the server seen from /proc ----------------------------------------------------------------

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    return st[st.rfind(")") + 2:].split()


def children(pid, comm=None):
    """Live (not zombie) children of pid, optionally only those whose comm is `comm`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = _stat_fields(int(d))
            if int(fields[1]) != pid or fields[0] == "Z":
                continue
            if comm is not None:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().strip() != comm[:15]:
                        continue
        except (OSError, ValueError, IndexError):
            continue
        out.append(int(d))
    return sorted(out)


def status_kb(pid, field="VmRSS"):
    """A "kB" field of /proc/PID/status (VmRSS, VmHWM, ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_targets(pid):
    """What each open descriptor of pid points to (sorted; descriptors closing meanwhile are left
    out)."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return sorted(out)


def sanitized(pid, binary=None):
    """True when the process runs with AddressSanitizer (its RSS then says little: the quarantine
    keeps freed memory mapped)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            if "libasan" in f.read():
                return True
    except OSError:
        pass
    if binary:
        try:
            with open(binary, "rb") as f:
                return b"__asan_init" in f.read()
        except OSError:
            pass
    return False
