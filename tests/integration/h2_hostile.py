"""HTTP/2 clients for the integration suite (SPEC §7 "HTTP/2", issue 12): a thin client that sends
exactly the frames a test asks for — a correct client's requests, uploads that obey flow control,
and also what no correct client sends (floods, CONTINUATION without end, resets at any moment) —
and checks what the server sends back.

    c = H2Conn.open(port)                         # TLS with ALPN h2 (tls=False: h2c, prior knowledge)
    sid = c.request("GET", "/a.txt")              # HEADERS (+ DATA for a body): the stream's id
    st = c.response(sid)                          # waits for END_STREAM or RST_STREAM
    st.status, st.header("content-type"), st.body, st.reset
    c.reset(sid)                                  # RST_STREAM CANCEL: a client that went away
    c.goaway                                      # (error code, last stream id, debug data) once received
    end = c.flood(frames, limit=..., timeout=...) # send until the server says GOAWAY or closes

Frames come from hyperframe and header blocks from hpack (both installed with Debian's python3-h2);
the state kept here is only what the checks need. What the server does wrong is recorded in
`violations` (the connection's and each stream's): DATA beyond the flow-control windows this
client offered, upper-case or connection-specific ("hop-by-hop") response fields, frames on
streams the client never opened, a header block interrupted by another frame, undecodable HPACK.
Tests assert that the list is empty.

I/O is non-blocking with select(): sending and receiving go on together, so a flood never
deadlocks against a server that answers each frame (PING, SETTINGS), and every wait has a
deadline (helpers.Timeout past it; helpers.Closed when the server closes first).
"""
import select
import socket
import ssl
import struct
import time

import hpack
from hyperframe import frame as hf

import helpers

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Error codes (RFC 9113 §7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM, \
    INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)
ERROR_NAMES = dict(enumerate(
    "NO_ERROR PROTOCOL_ERROR INTERNAL_ERROR FLOW_CONTROL_ERROR SETTINGS_TIMEOUT STREAM_CLOSED "
    "FRAME_SIZE_ERROR REFUSED_STREAM CANCEL COMPRESSION_ERROR CONNECT_ERROR ENHANCE_YOUR_CALM "
    "INADEQUATE_SECURITY HTTP_1_1_REQUIRED".split()))

# SETTINGS identifiers
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)

# Frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
F_END_STREAM, F_ACK, F_END_HEADERS, F_PADDED, F_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20

# Connection-specific fields: never in an HTTP/2 message (RFC 9113 §8.2.2)
HOP_BY_HOP = ("connection", "transfer-encoding", "keep-alive", "upgrade", "proxy-connection")

DEFAULT_WINDOW = 65535
DEFAULT_TIMEOUT = 10.0


def error_name(code):
    return ERROR_NAMES.get(code, "0x%x" % code) if code is not None else None


def frame(ftype, flags, sid, payload=b""):
    """One frame's bytes, built by hand: fast enough for floods, and free to be wrong."""
    n = len(payload)
    return struct.pack(">BHBBL", n >> 16, n & 0xFFFF, ftype, flags, sid & 0x7FFFFFFF) + payload


def hpack_int(value, prefix_bits, first=0):
    """An HPACK integer (RFC 7541 §5.1) with `first` the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal_never_indexed(name, value):
    """A header field as a literal with a new name, never indexed, no Huffman (RFC 7541 §6.2.3)."""
    return hpack_int(0, 4, 0x10) + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def tls_context(alpn=("h2", "http/1.1")):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def connect(port, tls=True, host="127.0.0.1", sni="localhost", alpn=("h2", "http/1.1"),
            timeout=DEFAULT_TIMEOUT, prelude=b"", rcvbuf=None):
    """A connected socket (TLS-wrapped, the handshake done) and the ALPN protocol chosen;
    `prelude` (a PROXY protocol header) is sent first, in clear text; rcvbuf: SO_RCVBUF (a small
    TCP window) set before connecting."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect((host, port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if prelude:
        raw.sendall(prelude)
    if not tls:
        return raw, None
    s = tls_context(alpn).wrap_socket(raw, server_hostname=sni)
    return s, s.selected_alpn_protocol()


class Stream:
    """One stream as the client saw it."""

    def __init__(self, conn, sid, keep=True, slow=False):
        self.conn = conn
        self.id = sid
        self.status = None           # the final status (int)
        self.headers = []            # the final response's fields: [(name, value)] as str
        self.informational = []      # each 1xx head: [(name, value)]
        self.trailers = None
        self.data = bytearray()      # the body (when keep)
        self.received = 0            # body bytes received
        self.keep = keep
        self.on_data = None          # callable(bytes) for each DATA payload (when not keep)
        self.slow = slow             # the window is returned only by ack(): a slow reader
        self.unacked = 0             # bytes received and not yet returned to the stream window
        self.recv_window = conn.local_initial_window
        self.send_window = conn.peer_initial_window
        self.ended = False           # END_STREAM from the server
        self.end_on_headers = False  # END_STREAM came on the HEADERS (no DATA frame at all)
        self.data_frames = 0
        self.reset = None            # error code of a RST_STREAM
        self.reset_by = None         # "server" | "client"
        self.refused_by_goaway = False   # id above a GOAWAY's last stream id: never processed
        self.local_closed = False    # the client sent END_STREAM
        self.reset_after_end = None  # RST_STREAM after a whole answer (NO_ERROR: stop uploading)
        self.violations = []

    @property
    def done(self):
        return self.ended or self.reset is not None or self.refused_by_goaway

    @property
    def body(self):
        return bytes(self.data)

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def describe(self):
        return ("stream %d: status %s, %d body byte(s)%s%s%s" %
                (self.id, self.status, self.received, ", ended" if self.ended else "",
                 ", reset %s by the %s" % (error_name(self.reset), self.reset_by)
                 if self.reset is not None else "",
                 ", refused by GOAWAY" if self.refused_by_goaway else ""))

    def __repr__(self):
        return "<%s>" % self.describe()


class H2Conn:
    """One HTTP/2 client connection (see the module docstring)."""

    def __init__(self, sock, alpn=None, scheme="https", authority="localhost", settings=None,
                 conn_window=1 << 30, timeout=DEFAULT_TIMEOUT, preface=True, ack_settings=True):
        self.sock = sock
        self.alpn = alpn
        self.scheme = scheme
        self.authority = authority
        self.timeout = timeout
        sock.setblocking(False)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder(max_header_list_size=1 << 26)
        self.out = bytearray()
        self.inbuf = bytearray()
        self.streams = {}
        self.next_id = 1
        self.violations = []
        self.frames_in = {}          # frame type -> count
        self.frames_sent = 0
        self.bytes_sent = 0
        self.server_settings = {}    # the last value of each setting the server sent
        self.server_settings_frames = 0
        self.settings_acked = 0      # ACKs of our SETTINGS
        self.pings_acked = 0
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = 16384
        self.send_window = DEFAULT_WINDOW
        self.settings = dict(settings or {})
        self.local_initial_window = self.settings.get(INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
        assert self.local_initial_window >= DEFAULT_WINDOW, "a smaller window than the default " \
            "could not be checked before the server acknowledges it"
        self.recv_window = DEFAULT_WINDOW
        self.conn_window = conn_window
        self.conn_unacked = 0
        self.conn_slow = False       # the connection window is returned only by ack_connection()
        self._settings_sent = []     # per SETTINGS sent, the INITIAL_WINDOW_SIZE it sets (or None)
        self.auto_ack_ping = True
        self.goaway = None           # (error code, last stream id, debug data)
        self.goaway_at = None
        self.eof = False             # the server closed (FIN) or reset the connection
        self.reset_by_peer = False
        self.eof_at = None
        self._block = None           # (stream id, bytearray, end_stream, frame type) until END_HEADERS
        self.strict_streams = True   # frames on streams not opened with new_stream() are violations
        self.auto_ack_settings = ack_settings
        if preface:
            self.out += PREFACE + hf.SettingsFrame(0, settings=self.settings).serialize()
            self._settings_sent.append(None)
            if conn_window > DEFAULT_WINDOW:
                self.out += hf.WindowUpdateFrame(0, window_increment=conn_window - DEFAULT_WINDOW).serialize()
                self.recv_window = conn_window
            self.flush()

    @classmethod
    def open(cls, port, tls=True, host="127.0.0.1", sni="localhost", authority="localhost",
             timeout=DEFAULT_TIMEOUT, prelude=b"", rcvbuf=None, **kw):
        """Connect and send the preface: over TLS ALPN must choose h2; in clear text, prior knowledge."""
        sock, alpn = connect(port, tls=tls, host=host, sni=sni, timeout=timeout, alpn=("h2", "http/1.1"),
                             prelude=prelude, rcvbuf=rcvbuf)
        if tls and alpn != "h2":
            sock.close()
            raise AssertionError("ALPN chose %r, not h2" % alpn)
        return cls(sock, alpn=alpn, scheme="https" if tls else "http", authority=authority,
                   timeout=timeout, **kw)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- I/O --------------------------------------------------------------------------------
    def _step(self, timeout):
        """Wait up to `timeout` for the socket; send what is queued, receive what came."""
        s = self.sock
        pending = isinstance(s, ssl.SSLSocket) and s.pending()
        if self.eof:
            if self.out:
                self.out.clear()
            if timeout > 0:
                time.sleep(min(timeout, 0.01))
            return
        wlist = [s] if self.out else []
        if pending:
            r, w = [s], wlist
        else:
            try:
                r, w, _ = select.select([s], wlist, [], max(timeout, 0))
            except (OSError, ValueError):
                self._closed(False)
                return
        if w and self.out:
            try:
                n = s.send(self.out[:1 << 18])
                self.bytes_sent += n
                del self.out[:n]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                pass
            except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                self._closed(True)
                return
            except (OSError, ssl.SSLError):
                self._closed(True)
                return
        if r:
            for _ in range(64):
                try:
                    d = s.recv(1 << 18)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                    break
                except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                    self._closed(True)
                    break
                except (OSError, ssl.SSLError):
                    self._closed(True)
                    break
                if not d:
                    self._closed(False)
                    break
                self._feed(d)
                if not (isinstance(s, ssl.SSLSocket) and s.pending()):
                    break

    def _closed(self, reset):
        if not self.eof:
            self.eof = True
            self.eof_at = time.monotonic()
            self.reset_by_peer = reset
        self.out.clear()

    def flush(self, timeout=None):
        """Send everything queued (receiving meanwhile)."""
        self.wait(lambda: not self.out, timeout, "the client's frames to be sent", allow_eof=True)

    def wait(self, cond, timeout=None, what="a condition", allow_eof=False):
        """Run I/O until cond() is true; returns its value. helpers.Closed when the connection
        ends first (unless allow_eof), helpers.Timeout past the deadline."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            if self.eof:
                if allow_eof:
                    return v
                raise helpers.Closed("the server %s the connection while the client waited for %s "
                                     "(GOAWAY: %s)" % ("reset" if self.reset_by_peer else "closed",
                                                       what, self.describe_goaway()))
            left = deadline - time.monotonic()
            if left <= 0:
                raise helpers.Timeout("no %s within %.1fs (%s)" % (what, timeout, self.describe()))
            self._step(min(left, 0.2))

    def pump(self, timeout=0.0):
        """One round of I/O (sends queued frames, handles what arrived)."""
        self._step(timeout)

    def wait_closed(self, timeout=None):
        """Wait until the server closes the connection (reading and discarding meanwhile)."""
        return self.wait(lambda: self.eof, timeout, "the end of the connection", allow_eof=True)

    def describe_goaway(self):
        if self.goaway is None:
            return "none"
        return "%s, last stream %d%s" % (error_name(self.goaway[0]), self.goaway[1],
                                         ", %r" % self.goaway[2] if self.goaway[2] else "")

    def describe(self):
        return "connection: GOAWAY %s, %s; %d frame(s) sent, frames received %s" % (
            self.describe_goaway(), "closed" if self.eof else "open", self.frames_sent,
            {hf.FRAMES[t].__name__ if t in hf.FRAMES else t: n for t, n in self.frames_in.items()})

    # ---- receiving --------------------------------------------------------------------------
    def _feed(self, data):
        self.inbuf += data
        frames = []
        pos, buf = 0, self.inbuf
        mv = memoryview(buf)
        try:
            while len(buf) - pos >= 9:
                length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
                if len(buf) - pos < 9 + length:
                    break
                try:
                    f, _ = hf.Frame.parse_frame_header(mv[pos:pos + 9])
                    f.parse_body(mv[pos + 9:pos + 9 + length])
                except Exception as e:  # noqa: BLE001 - any malformed frame is the server's fault
                    self.violations.append("malformed frame from the server: %r (header %r)"
                                           % (e, bytes(buf[pos:pos + 9])))
                    f = None
                pos += 9 + length
                if f is not None:
                    frames.append(f)
        finally:
            mv.release()
        del buf[:pos]
        for f in frames:
            self._on_frame(f)

    def _stream(self, sid, what):
        st = self.streams.get(sid)
        if st is None and self.strict_streams:
            self.violations.append("%s on stream %d, which the client never opened" % (what, sid))
        return st

    def _on_frame(self, f):
        self.frames_in[f.type] = self.frames_in.get(f.type, 0) + 1
        if self._block is not None and not isinstance(f, hf.ContinuationFrame):
            self.violations.append("%s in the middle of a header block" % type(f).__name__)
            self._block = None
        if isinstance(f, hf.DataFrame):
            self._on_data(f)
        elif isinstance(f, (hf.HeadersFrame, hf.PushPromiseFrame)):
            if isinstance(f, hf.PushPromiseFrame):
                self.violations.append("PUSH_PROMISE although the client disabled push")
            self._block = (f.stream_id, bytearray(f.data), "END_STREAM" in f.flags,
                           type(f).__name__)
            if "END_HEADERS" in f.flags:
                self._end_block()
        elif isinstance(f, hf.ContinuationFrame):
            if self._block is None or self._block[0] != f.stream_id:
                self.violations.append("CONTINUATION without a header block on stream %d" % f.stream_id)
                return
            self._block[1].extend(f.data)
            if "END_HEADERS" in f.flags:
                self._end_block()
        elif isinstance(f, hf.SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acked += 1
                v = self._settings_sent.pop(0) if self._settings_sent else None
                if v is not None:
                    # the server applied it before acknowledging: DATA counts against it from now
                    delta = v - self.local_initial_window
                    self.local_initial_window = v
                    for st in self.streams.values():
                        st.recv_window += delta
                return
            self.server_settings_frames += 1
            for k, v in f.settings.items():
                self.server_settings[k] = v
                if k == INITIAL_WINDOW_SIZE:
                    delta = v - self.peer_initial_window
                    self.peer_initial_window = v
                    for st in self.streams.values():
                        st.send_window += delta
                elif k == MAX_FRAME_SIZE:
                    self.peer_max_frame = v
            if self.auto_ack_settings:
                self.out += frame(SETTINGS, F_ACK, 0)
        elif isinstance(f, hf.PingFrame):
            if "ACK" in f.flags:
                self.pings_acked += 1
            elif self.auto_ack_ping:
                self.out += frame(PING, F_ACK, 0, f.opaque_data)
        elif isinstance(f, hf.WindowUpdateFrame):
            if f.stream_id == 0:
                self.send_window += f.window_increment
            else:
                st = self.streams.get(f.stream_id)
                if st is not None:
                    st.send_window += f.window_increment
        elif isinstance(f, hf.RstStreamFrame):
            st = self._stream(f.stream_id, "RST_STREAM")
            if st is not None and st.reset is None and not st.ended:
                st.reset, st.reset_by = f.error_code, "server"
            elif st is not None and st.ended:
                st.reset_after_end = f.error_code   # the answer is whole; the upload is not wanted
        elif isinstance(f, hf.GoAwayFrame):
            self.goaway = (f.error_code, f.last_stream_id, f.additional_data)
            if self.goaway_at is None:
                self.goaway_at = time.monotonic()
            for sid, st in self.streams.items():
                if sid > f.last_stream_id and not st.done:
                    st.refused_by_goaway = True

    def _end_block(self):
        sid, block, end_stream, kind = self._block
        self._block = None
        try:
            fields = self.dec.decode(bytes(block), raw=True)
        except Exception as e:  # noqa: BLE001 - the connection is unusable after this
            self.violations.append("undecodable header block on stream %d: %r" % (sid, e))
            return
        fields = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]
        if kind == "PushPromiseFrame":
            return
        st = self._stream(sid, "HEADERS")
        if st is None:
            return
        for k, _ in fields:
            if k != k.lower():
                st.violations.append("upper-case field name %r" % k)
            if k in HOP_BY_HOP:
                st.violations.append("connection-specific field %r in an HTTP/2 response" % k)
        status = next((v for k, v in fields if k == ":status"), None)
        if st.status is None and status is not None and status.startswith("1"):
            st.informational.append(fields)
        elif st.status is None:
            if status is None or not status.isdigit():
                st.violations.append("a response head without a valid :status: %r" % fields)
                st.status = -1
            else:
                st.status = int(status)
            st.headers = fields
            if end_stream:
                st.end_on_headers = True
        else:
            st.trailers = fields
            if not end_stream:
                st.violations.append("trailers without END_STREAM")
        if end_stream:
            st.ended = True

    def _on_data(self, f):
        n = f.flow_controlled_length
        self.recv_window -= n
        if self.recv_window < 0:
            self.violations.append("DATA beyond the connection window (%d)" % self.recv_window)
        self.conn_unacked += n
        if not self.conn_slow and self.conn_unacked >= self.conn_window // 2:
            self.out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">L", self.conn_unacked))
            self.recv_window += self.conn_unacked
            self.conn_unacked = 0
        st = self._stream(f.stream_id, "DATA")
        if st is None:
            return
        st.data_frames += 1
        st.recv_window -= n
        if st.recv_window < 0:
            st.violations.append("DATA beyond the stream window (%d after %d byte(s))"
                                 % (st.recv_window, st.received))
        if st.status is None:
            st.violations.append("DATA before a final response head")
        if st.ended:
            st.violations.append("DATA after END_STREAM")
        if st.reset is None:
            st.received += len(f.data)
            if st.keep:
                st.data += f.data
            if st.on_data:
                st.on_data(f.data)
        end = "END_STREAM" in f.flags
        if end:
            st.ended = True
        st.unacked += n
        if not st.slow and not st.done and st.unacked >= self.local_initial_window // 2:
            self._return_window(st, st.unacked)

    def _return_window(self, st, n):
        if n <= 0 or st.done:
            return
        self.out += frame(WINDOW_UPDATE, 0, st.id, struct.pack(">L", n))
        st.recv_window += n
        st.unacked -= n

    def ack_connection(self, n=None):
        """Return n bytes (all received, by default) of the connection window: WINDOW_UPDATE 0."""
        n = self.conn_unacked if n is None else min(n, self.conn_unacked)
        if n > 0:
            self.out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">L", n))
            self.recv_window += n
            self.conn_unacked -= n
        self._step(0)

    def set_initial_window(self, value):
        """SETTINGS_INITIAL_WINDOW_SIZE mid-connection (it may take open streams' windows below
        zero); DATA is checked against it once the server acknowledges it."""
        self.queue(frame(SETTINGS, 0, 0, struct.pack(">HL", INITIAL_WINDOW_SIZE, value)))
        self._settings_sent.append(value)
        self.flush()

    def ack(self, sid, n=None):
        """A slow reader takes n more bytes (all it has received, by default): WINDOW_UPDATE."""
        st = self.streams[sid]
        self._return_window(st, st.unacked if n is None else min(n, st.unacked))
        self._step(0)

    # ---- sending ----------------------------------------------------------------------------
    def new_stream(self, keep=True, slow=False, on_data=None):
        sid = self.next_id
        self.next_id += 2
        st = self.streams[sid] = Stream(self, sid, keep=keep, slow=slow)
        st.on_data = on_data
        return sid

    def queue(self, data, frames=1):
        """Queue raw bytes (frames built by hand) without waiting."""
        self.out += data
        self.frames_sent += frames

    def header_block(self, fields):
        return self.enc.encode([(k.encode() if isinstance(k, str) else k,
                                 v.encode() if isinstance(v, str) else v) for k, v in fields])

    def send_headers(self, sid, fields, end_stream=False, flush=True):
        """HEADERS (and CONTINUATION frames past the server's frame size) for `fields`."""
        self.send_block(sid, self.header_block(fields), end_stream, flush)

    def send_block(self, sid, block, end_stream=False, flush=True, frame_size=None):
        """An encoded header block as HEADERS + CONTINUATION frames of the server's frame size
        (or of frame_size bytes)."""
        maxf = frame_size or self.peer_max_frame
        first, rest = block[:maxf], block[maxf:]
        flags = (F_END_STREAM if end_stream else 0) | (0 if rest else F_END_HEADERS)
        self.queue(frame(HEADERS, flags, sid, first))
        while rest:
            chunk, rest = rest[:maxf], rest[maxf:]
            self.queue(frame(CONTINUATION, 0 if rest else F_END_HEADERS, sid, chunk))
        if end_stream and sid in self.streams:
            self.streams[sid].local_closed = True
        if flush:
            self.flush()

    def request_fields(self, method, path, headers=(), authority=None):
        return [(":method", method), (":scheme", self.scheme),
                (":authority", self.authority if authority is None else authority),
                (":path", path)] + [(k.lower(), v) for k, v in headers]

    def request(self, method, path, headers=(), body=None, end_stream=True, authority=None,
                keep=True, slow=False, on_data=None, flush=True):
        """Open a stream: HEADERS, then `body` as DATA (within the windows) unless None; END_STREAM
        at the end unless end_stream is False. Returns the stream id. keep=False: the body is
        counted (and given to on_data) but not kept; slow=True: its window is returned only by
        ack()."""
        sid = self.new_stream(keep=keep, slow=slow, on_data=on_data)
        fields = self.request_fields(method, path, headers, authority)
        self.send_headers(sid, fields, end_stream=end_stream and body is None, flush=flush)
        if body is not None:
            self.send_data(sid, body, end_stream=end_stream)
        return sid

    def send_data(self, sid, data, end_stream=False, timeout=None, pad=0):
        """DATA frames within the connection's and the stream's send windows, waiting for
        WINDOW_UPDATE as needed; pad > 0: each frame PADDED with that many bytes (they count
        against the windows too). Returns False when the stream ended or was reset (or the
        connection closed) before everything was sent."""
        st = self.streams[sid]
        view = memoryview(bytes(data))
        pos = 0
        extra = pad + 1 if pad else 0
        while True:
            if st.reset is not None or st.reset_after_end is not None or st.refused_by_goaway or self.eof:
                return False
            room = min(self.send_window, st.send_window, self.peer_max_frame) - extra
            n = min(len(view) - pos, max(0, room))
            last = pos + n == len(view)
            if (n > 0 or last) and (room >= 0 or not extra):   # an empty last frame needs no window
                flags = F_END_STREAM if (last and end_stream) else 0
                payload = view[pos:pos + n].tobytes()
                if pad:
                    flags |= F_PADDED
                    payload = bytes([pad]) + payload + b"\0" * pad
                self.queue(frame(DATA, flags, sid, payload))
                self.send_window -= n + extra
                st.send_window -= n + extra
                pos += n
                if last:
                    if end_stream:
                        st.local_closed = True
                    self.flush(timeout)
                    return not (st.reset is not None or self.eof)
                if len(self.out) >= 1 << 18:
                    self._step(0)
                continue
            self.wait(lambda: min(self.send_window, st.send_window) > extra or st.reset is not None
                      or st.reset_after_end is not None or st.refused_by_goaway, timeout,
                      "a WINDOW_UPDATE for stream %d (%d of %d byte(s) sent)" % (sid, pos, len(view)))

    def send_trailers(self, sid, fields):
        self.send_headers(sid, fields, end_stream=True)

    def reset(self, sid, code=CANCEL):
        """RST_STREAM: the client leaves this stream."""
        st = self.streams[sid]
        self.queue(frame(RST_STREAM, 0, sid, struct.pack(">L", code)))
        if not st.done:
            st.reset, st.reset_by = code, "client"
        self.flush()

    def ping(self, data=b"12345678"):
        self.queue(frame(PING, 0, 0, data))
        self.flush()

    def send_goaway(self, code=NO_ERROR, last=0):
        self.queue(frame(GOAWAY, 0, 0, struct.pack(">LL", last, code)))
        self.flush()

    # ---- waiting for answers ----------------------------------------------------------------
    def response(self, sid, timeout=None):
        """Wait until the stream ends (END_STREAM, RST_STREAM or refused by GOAWAY)."""
        st = self.streams[sid]
        self.wait(lambda: st.done, timeout, "the end of stream %d (%s)" % (sid, st.describe()))
        return st

    def get(self, path, headers=(), method="GET", body=None, timeout=None, **kw):
        return self.response(self.request(method, path, headers, body=body, **kw), timeout)

    def wait_head(self, sid, timeout=None):
        """Wait for the final response head of a stream (not its end)."""
        st = self.streams[sid]
        self.wait(lambda: st.status is not None or st.done, timeout,
                  "the response head of stream %d" % sid)
        return st

    def all_violations(self):
        out = list(self.violations)
        for st in self.streams.values():
            out += ["stream %d: %s" % (st.id, v) for v in st.violations]
        return out

    # ---- floods -----------------------------------------------------------------------------
    def flood(self, frames, limit, timeout, stop_on_goaway=True, max_queue=1 << 16):
        """Send the frames an iterable yields (bytes, each one frame), at most `limit` of them,
        as fast as the socket takes them while reading what comes back, until the server sends
        GOAWAY (when stop_on_goaway) or closes, or `timeout` passes. Returns
        {"sent": frames sent, "seconds":, "goaway": (code, last id) or None, "closed": bool}."""
        start = time.monotonic()
        deadline = start + timeout
        sent = 0
        it = iter(frames)
        exhausted = False

        def over():
            return self.eof or (stop_on_goaway and self.goaway is not None) or time.monotonic() > deadline

        while not over():
            while not exhausted and sent < limit and len(self.out) < max_queue:
                try:
                    b = next(it)
                except StopIteration:
                    exhausted = True
                    break
                self.out += b
                sent += 1
            if (exhausted or sent >= limit) and not self.out:
                break
            self._step(0.05 if len(self.out) >= max_queue else 0)
        self.frames_sent += sent
        return {"sent": sent, "seconds": time.monotonic() - start,
                "goaway": self.goaway[:2] if self.goaway else None, "closed": self.eof}


# ---- the frames of the floods (generators for H2Conn.flood) ---------------------------------------

def rapid_reset_frames(c, paths):
    """CVE-2023-44487: HEADERS (a whole request) then RST_STREAM CANCEL at once, on stream after
    stream, cycling through `paths`. Each item is the two frames of one stream."""
    c.strict_streams = False
    firsts = [c.header_block(c.request_fields("GET", p)) for p in paths]   # these index the fields
    stable = [c.header_block(c.request_fields("GET", p)) for p in paths]   # fully indexed from now on
    assert stable == [c.header_block(c.request_fields("GET", p)) for p in paths], "HPACK not stable"
    rst = struct.pack(">L", CANCEL)
    i = 0
    while True:
        sid = c.next_id
        c.next_id += 2
        block = firsts[i] if i < len(firsts) else stable[i % len(paths)]
        i += 1
        yield frame(HEADERS, F_END_HEADERS | F_END_STREAM, sid, block) + frame(RST_STREAM, 0, sid, rst)


def continuation_frames(c, path, filled=True):
    """CVE-2024-27316: HEADERS without END_HEADERS, then CONTINUATION frames that never end the
    block, each with a 1 KiB field (never indexed: the HPACK state stays the encoder's), or empty."""
    sid = c.new_stream()
    yield frame(HEADERS, 0, sid, c.header_block(c.request_fields("GET", path)))
    i = 0
    while True:
        payload = literal_never_indexed(b"x-cont-%d" % i, b"c" * 1000) if filled else b""
        i += 1
        yield frame(CONTINUATION, 0, sid, payload)


def ping_frames():
    i = 0
    while True:
        i += 1
        yield frame(PING, 0, 0, struct.pack(">Q", i))


def settings_frames():
    body = struct.pack(">HL", INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
    while True:
        yield frame(SETTINGS, 0, 0, body)


def empty_data_frames(c, path):
    """A request whose body is an endless series of DATA frames without data or END_STREAM."""
    sid = c.new_stream()
    yield frame(HEADERS, F_END_HEADERS, sid, c.header_block(c.request_fields("POST", path)))
    while True:
        yield frame(DATA, 0, sid, b"")


def hpack_bomb(c, path, refs=20000, size=4000):
    """One request whose header block puts a `size`-byte field into the dynamic table once, then
    refers to it `refs` times with one byte each: a ~20 KB block that decodes to refs * size bytes.
    Returns the stream id."""
    value = b"b" * size
    block = c.header_block(c.request_fields("GET", path) + [("x-bomb", value)])
    assert c.enc.header_table.dynamic_entries[0] == (b"x-bomb", value), "not the newest entry"
    block += hpack_int(62, 7, 0x80) * refs       # indexed field 62: the newest dynamic entry
    sid = c.new_stream()
    c.send_block(sid, block, end_stream=True)
    return sid
