#!/usr/bin/python3
"""hostile_fcgi.py — a FastCGI responder that breaks the protocol on purpose (fcgihost issue 10).

Like any application fcgihost launches it accepts connections on fd 0 (FCGI_LISTENSOCK_FILENO,
a unix or tcp listening socket) and serves requests one at a time over kept-alive connections.
Start it with fullPath = /usr/bin/python3 and arguments = the path of this file (or run it through
its shebang). Python 3 standard library only.

QUERY_STRING picks the misbehaviour, so that one pool serves every case:

  mode=ok (or none)   200 text/plain "ok pid=<pid> served=<n>\\n"
  mode=wrong_id       a record carrying the wrong request id (id+1); where=first|mid|end: as the
                      first record, as a body record after good headers, or as the END_REQUEST
  mode=wrong_version  a record whose version byte is `v` (default 2); where=first|mid
  mode=pad255         body `n` bytes (default 3000) in STDOUT records of `chunk` bytes (default 1)
                      each followed by 255 bytes of padding (legal: paddingLength is one byte)
  mode=bigrec         body `n` bytes (default 4 MiB) in records of 65535 content bytes + 255
                      padding (the largest record a header can describe; legal)
  mode=declared_stall a STDOUT record declaring 65535 content bytes, 100 bytes of it and what
                      looks like END_REQUEST, then silence with the connection open
  mode=end_first      END_REQUEST before any STDOUT
  mode=after_end      a whole response, END_REQUEST, then a STDOUT record "STALE..." (and another
                      END_REQUEST) for the same request id; delay=S sends the stale part S seconds
                      later (0: in the same write as the END_REQUEST), delay=next once the server
                      has sent the next request on this connection (which is then served normally)
  mode=unknown        type=T (default 20) id=I (default: 0 for types 9..11, else the request id):
                      good headers, then a record of type T with 8 content bytes (a well-formed
                      GET_VALUES_RESULT pair for type 10), then the body and END_REQUEST
  mode=trunc          at=header: 5 bytes of a STDOUT header; at=content: a STDOUT header declaring
                      100 bytes and 10 of them; at=end: a whole response and 5 bytes of
                      END_REQUEST. Then the connection is closed and the process exits with 0
  mode=hdrflood       `mb` MiB (default 100) of header lines and never the empty line, in records
                      of 65528 bytes, then END_REQUEST (if the server is still listening)
  mode=hdrtrickle     a header block that never ends, as 6-byte lines each in its own record,
                      up to `kb` KiB (default 256)
  mode=stderr_flood   `mb` MiB (default 50) of FCGI_STDERR lines, then a normal 200
  mode=fd_flood       `mb` MiB (default 50) of lines written to the process's own fd `fd`
                      (default 2), then a normal 200
  mode=noread         reads BEGIN_REQUEST and PARAMS, never STDIN; sleeps `delay` s (default 0.5),
                      then answers 200 "noread\\n" and closes the connection
  mode=noread_hang    reads BEGIN_REQUEST and PARAMS, never STDIN, never answers
  mode=status         "Status: <code> Whatever" (code default 101), a small body
  mode=cl_surplus     "Content-Length: 5", then `kb` KiB (default 200) of body: "hello" followed
                      by forged HTTP responses (X-Smuggled: yes) and filler
  mode=cl_short       "Content-Length: 100" and 10 bytes of body
  mode=garbage        kind=text: an HTTP response instead of records; kind=binary: 4096 bytes
                      starting with 0xff. Then the connection is closed

Every request first writes "hostile_fcgi <pid> mark <mode> <QUERY_STRING>" to fd 2 (which fcgihost
captures into its error log), so a test can count how many times a request reached a process.
Management records: GET_VALUES is answered with GET_VALUES_RESULT (FCGI_MAX_CONNS=1,
FCGI_MAX_REQS=1, FCGI_MPXS_CONNS=0); other ones get UNKNOWN_TYPE.
"""
import os
import socket
import struct
import sys
import time
import urllib.parse

VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR, DATA = range(1, 9)
GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = 9, 10, 11
KEEP_CONN = 1
FCGI_LISTENSOCK_FILENO = 0
CHUNK = 65528

served = 0


def rec(rtype, rid, content=b"", pad=None, version=VERSION, declared=None):
    """One record; `pad` defaults to the padding that reaches a multiple of 8, `declared`
    overrides the content length written in the header (the content itself is sent as given)."""
    if pad is None:
        pad = -len(content) % 8
    clen = len(content) if declared is None else declared
    return struct.pack("!BBHHBx", version, rtype, rid, clen, pad) + content + b"\0" * pad


def stream(rtype, rid, data):
    out = [rec(rtype, rid, data[i:i + CHUNK]) for i in range(0, len(data), CHUNK)]
    return b"".join(out)


def end_request(rid, app_status=0):
    return rec(END_REQUEST, rid, struct.pack("!IB3x", app_status, 0))


def pairs(items):
    out = bytearray()
    for k, v in items:
        for x in (k, v):
            out += struct.pack("!B", len(x)) if len(x) < 128 else struct.pack("!I", len(x) | 0x80000000)
        out += k + v
    return bytes(out)


def decode_pairs(data):
    res, i = {}, 0
    while i < len(data):
        lens = []
        for _ in range(2):
            if data[i] & 0x80:
                lens.append(struct.unpack("!I", data[i:i + 4])[0] & 0x7FFFFFFF)
                i += 4
            else:
                lens.append(data[i])
                i += 1
        name, value = data[i:i + lens[0]], data[i + lens[0]:i + lens[0] + lens[1]]
        res[name.decode("latin-1")] = value.decode("latin-1")
        i += lens[0] + lens[1]
    return res


class Closed(Exception):
    pass


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read_record(self):
        while True:
            if len(self.buf) >= 8:
                _, rtype, rid, clen, plen = struct.unpack("!BBHHBx", self.buf[:8])
                if len(self.buf) >= 8 + clen + plen:
                    content = self.buf[8:8 + clen]
                    self.buf = self.buf[8 + clen + plen:]
                    return rtype, rid, content
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed()
            self.buf += chunk

    def send(self, data):
        self.sock.sendall(data)


def log(text):
    """A line on the process's own fd 2 (fcgihost logs it with the app name and pid)."""
    try:
        os.write(2, ("hostile_fcgi %d %s\n" % (os.getpid(), text)).encode("latin-1", "replace"))
    except OSError:
        pass


def answer_management(c, rtype, content):
    if rtype == GET_VALUES:
        c.send(rec(GET_VALUES_RESULT, 0, pairs([(b"FCGI_MAX_CONNS", b"1"), (b"FCGI_MAX_REQS", b"1"),
                                                (b"FCGI_MPXS_CONNS", b"0")])))
    else:
        c.send(rec(UNKNOWN_TYPE, 0, struct.pack("!B7x", rtype)))


def read_head(c):
    """BEGIN_REQUEST and the PARAMS stream. Returns (request id, keep_conn, params)."""
    rid, keep, params = None, False, b""
    while True:
        rtype, r, content = c.read_record()
        if r == 0:
            answer_management(c, rtype, content)
            continue
        if rtype == BEGIN_REQUEST:
            rid = r
            keep = bool(content[2] & KEEP_CONN)
        elif rtype == PARAMS:
            if not content:
                return rid, keep, decode_pairs(params)
            params += content
        elif rtype == ABORT_REQUEST:
            raise Closed()


def read_stdin(c, rid):
    total = 0
    while True:
        rtype, r, content = c.read_record()
        if rtype == STDIN and r == rid:
            if not content:
                return total
            total += len(content)
        elif rtype == ABORT_REQUEST:
            raise Closed()


def ok_response(rid, text=None):
    body = (text if text is not None else "ok pid=%d served=%d\n" % (os.getpid(), served)).encode()
    return stream(STDOUT, rid, b"Content-Type: text/plain\r\n\r\n" + body) + rec(STDOUT, rid) + end_request(rid)


def num(q, name, default):
    try:
        return float(q.get(name, [default])[0])
    except ValueError:
        return default


def flood_lines(total, prefix):
    """`total` bytes of 100-byte lines starting with prefix, yielded in pieces of about CHUNK."""
    line = (prefix + "x" * 100)[:99].encode() + b"\n"
    per = CHUNK // len(line)
    piece = line * per
    sent = 0
    while sent < total:
        n = min(len(piece), total - sent)
        yield piece[:n]
        sent += n


def serve_one(c):
    """One request on connection c. Returns False when the connection must be closed."""
    global served
    rid, keep, params = read_head(c)
    q = urllib.parse.parse_qs(params.get("QUERY_STRING", ""), keep_blank_values=True)
    mode = q.get("mode", ["ok"])[0]
    log("mark %s %s" % (mode, params.get("QUERY_STRING", "")))
    if mode not in ("noread", "noread_hang"):
        read_stdin(c, rid)
    served += 1
    head = b"Content-Type: text/plain\r\n\r\n"

    if mode == "ok":
        c.send(ok_response(rid))
    elif mode == "wrong_id":
        where = q.get("where", ["first"])[0]
        bad = (rid + 1) & 0xFFFF
        if where == "first":
            c.send(rec(STDOUT, bad, head + b"wrong id\n") + rec(STDOUT, bad) + end_request(bad))
        elif where == "mid":
            c.send(rec(STDOUT, rid, head + b"part one\n") + rec(STDOUT, bad, b"part two\n")
                   + rec(STDOUT, rid) + end_request(rid))
        else:
            c.send(rec(STDOUT, rid, head + b"body\n") + rec(STDOUT, rid) + end_request(bad))
    elif mode == "wrong_version":
        v = int(num(q, "v", 2))
        if q.get("where", ["first"])[0] == "first":
            c.send(rec(STDOUT, rid, head + b"v\n", version=v) + rec(STDOUT, rid) + end_request(rid))
        else:
            c.send(rec(STDOUT, rid, head + b"part one\n") + rec(STDOUT, rid, b"part two\n", version=v)
                   + rec(STDOUT, rid) + end_request(rid))
    elif mode == "pad255":
        n, chunk = int(num(q, "n", 3000)), int(num(q, "chunk", 1))
        body = bytes(ord("a") + i % 26 for i in range(n))
        out = [rec(STDOUT, rid, head, pad=255)]
        out += [rec(STDOUT, rid, body[i:i + chunk], pad=255) for i in range(0, n, chunk)]
        c.send(b"".join(out) + rec(STDOUT, rid, pad=255) + end_request(rid))
    elif mode == "bigrec":
        n = int(num(q, "n", 4 << 20))
        c.send(rec(STDOUT, rid, head, pad=255))
        sent = 0
        while sent < n:
            k = min(65535, n - sent)
            c.send(rec(STDOUT, rid, bytes([ord("a") + (sent // 65535) % 26]) * k, pad=255))
            sent += k
        c.send(rec(STDOUT, rid) + end_request(rid))
    elif mode == "declared_stall":
        c.send(rec(STDOUT, rid, head + b"x" * (100 - len(head)), pad=0, declared=65535)
               + end_request(rid))
        while c.sock.recv(65536):   # silence until the server closes the connection
            pass
        return False
    elif mode == "end_first":
        c.send(end_request(rid))
    elif mode == "after_end":
        when = q.get("delay", ["0"])[0]
        delay = 0.0 if when == "next" else num(q, "delay", 0)
        stale = (rec(STDOUT, rid, b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nSTALE from an earlier request\n")
                 + rec(STDOUT, rid) + end_request(rid))
        good = stream(STDOUT, rid, head + b"after_end first answer\n") + rec(STDOUT, rid) + end_request(rid)
        if when == "next":
            # Wait for the server's next request on this connection, then answer the old one again.
            c.send(good)
            c.sock.settimeout(5)
            try:
                more = c.sock.recv(65536)
            except socket.timeout:
                more = b""
            c.sock.settimeout(None)
            if not more:
                return False
            c.buf += more
            c.send(stale)
        elif delay <= 0:
            c.send(good + stale)
        else:
            c.send(good)
            time.sleep(delay)
            c.send(stale)
    elif mode == "unknown":
        t = int(num(q, "type", 20))
        i = int(num(q, "id", 0 if t in (GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE) else rid))
        if t == GET_VALUES_RESULT:
            content = pairs([(b"FCGI_MAX_CONNS", b"1")])
        elif t == GET_VALUES:
            content = pairs([(b"FCGI_MAX_CONNS", b"")])
        else:
            content = struct.pack("!B7x", 200)
        c.send(rec(STDOUT, rid, head + b"before\n") + rec(t, i, content)
               + rec(STDOUT, rid, b"after\n") + rec(STDOUT, rid) + end_request(rid))
    elif mode == "trunc":
        at = q.get("at", ["header"])[0]
        if at == "header":
            c.send(rec(STDOUT, rid, head)[:5])
        elif at == "content":
            c.send(struct.pack("!BBHHBx", VERSION, STDOUT, rid, 100, 4) + head[:10])
        else:
            c.send(stream(STDOUT, rid, head + b"complete body\n") + rec(STDOUT, rid) + end_request(rid)[:5])
        c.sock.shutdown(socket.SHUT_RDWR)
        c.sock.close()
        log("truncated at %s, exiting 0" % at)
        os._exit(0)
    elif mode == "hdrflood":
        total = int(num(q, "mb", 100) * (1 << 20))
        for piece in flood_lines(total, "X-Flood: "):
            c.send(rec(STDOUT, rid, piece))
        c.send(rec(STDOUT, rid) + end_request(rid))
    elif mode == "hdrtrickle":
        total = int(num(q, "kb", 256) * 1024)
        batch = b"".join(rec(STDOUT, rid, b"X: y\r\n") for _ in range(1024))  # 1024 records, 6 KiB of lines
        for _ in range(0, total, 6 * 1024):
            c.send(batch)
        c.send(rec(STDOUT, rid) + end_request(rid))
    elif mode == "stderr_flood":
        total = int(num(q, "mb", 50) * (1 << 20))
        for piece in flood_lines(total, "stderr flood line "):
            c.send(rec(STDERR, rid, piece))
        c.send(rec(STDERR, rid) + ok_response(rid, "survived the stderr flood\n"))
    elif mode == "fd_flood":
        total = int(num(q, "mb", 50) * (1 << 20))
        fd = int(num(q, "fd", 2))
        for piece in flood_lines(total, "fd%d flood line " % fd):
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view):]
        c.send(ok_response(rid, "survived the fd flood\n"))
    elif mode == "noread":
        time.sleep(num(q, "delay", 0.5))
        c.send(ok_response(rid, "noread\n"))
        return False
    elif mode == "noread_hang":
        while True:
            time.sleep(3600)
    elif mode == "status":
        code = int(num(q, "code", 101))
        c.send(stream(STDOUT, rid, b"Status: %d Whatever\r\nContent-Type: text/plain\r\n\r\nstatus body\n" % code)
               + rec(STDOUT, rid) + end_request(rid))
    elif mode == "cl_surplus":
        total = int(num(q, "kb", 200) * 1024)
        forged = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n"
                  b"X-Smuggled: yes\r\n\r\nSMUGGLED\n")
        body = b"hello" + forged * 8
        body += b"." * (total - len(body))
        c.send(stream(STDOUT, rid, b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n" + body)
               + rec(STDOUT, rid) + end_request(rid))
    elif mode == "cl_short":
        c.send(stream(STDOUT, rid, b"Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly 10 b\n")
               + rec(STDOUT, rid) + end_request(rid))
    elif mode == "garbage":
        if q.get("kind", ["text"])[0] == "text":
            c.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 20\r\n\r\n<html>garbage</html>")
        else:
            c.send(b"\xff" + bytes((i * 37 + 11) & 0xFF for i in range(4095)))
        return False
    else:
        c.send(ok_response(rid, "unknown mode %s\n" % mode))
    return keep


def main():
    lsock = socket.socket(fileno=FCGI_LISTENSOCK_FILENO)
    log("started")
    while True:
        sock, _ = lsock.accept()
        c = Conn(sock)
        try:
            while serve_one(c):
                pass
        except (Closed, BrokenPipeError, ConnectionResetError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
