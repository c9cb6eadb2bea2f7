#!/usr/bin/env python3
"""A small FastCGI client (raw sockets) to drive FastCGI applications directly.

As a library (integration tests):

    from fcgi_client import FcgiConn, cgi_params
    with FcgiConn("unix:/run/x.sock") as c:
        r = c.request(cgi_params(query="echo=body", body=b"hi"), body=b"hi", keep_conn=True)
        r.stdout, r.stderr, r.app_status, r.ended, r.records
        headers, body = r.split()

As a command:

    fcgi_client.py ADDRESS [-q QUERY] [-m METHOD] [-p NAME=VALUE ...] [-b BODY | -f FILE]
                   [-n REPEAT] [--keep-conn] [--raw] [-t TIMEOUT]

ADDRESS is unix:/path, /path or host:port. Without --raw it prints every record received
(type, request id, length, a preview of the content), then a summary line per request;
--raw writes the request's FCGI_STDOUT bytes to stdout and FCGI_STDERR bytes to stderr.
Exit status: 0 if every request ended with FCGI_END_REQUEST, 1 otherwise.
"""
import argparse
import socket
import struct
import sys

VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR, DATA = range(1, 9)
GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = 9, 10, 11
RESPONDER = 1
KEEP_CONN = 1
TYPE_NAMES = {1: "BEGIN_REQUEST", 2: "ABORT_REQUEST", 3: "END_REQUEST", 4: "PARAMS", 5: "STDIN",
              6: "STDOUT", 7: "STDERR", 8: "DATA", 9: "GET_VALUES", 10: "GET_VALUES_RESULT",
              11: "UNKNOWN_TYPE"}
PROTOCOL_STATUS = {0: "REQUEST_COMPLETE", 1: "CANT_MPX_CONN", 2: "OVERLOADED", 3: "UNKNOWN_ROLE"}
MAX_CONTENT = 65535


def record(rtype, rid, content=b""):
    """One record, padded to a multiple of 8 bytes as the specification recommends."""
    pad = -len(content) % 8
    return struct.pack("!BBHHBx", VERSION, rtype, rid, len(content), pad) + content + b"\0" * pad


def stream(rtype, rid, data):
    """A whole stream: records of at most 65535 bytes, then the empty record that ends it."""
    out = [record(rtype, rid, data[i:i + MAX_CONTENT]) for i in range(0, len(data), MAX_CONTENT)]
    return b"".join(out) + record(rtype, rid)


def _length(n):
    return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)


def encode_pairs(pairs):
    """Name-value pairs (dict or list of tuples; str or bytes) in FastCGI encoding."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    out = bytearray()
    for name, value in items:
        name = name.encode() if isinstance(name, str) else name
        value = value.encode() if isinstance(value, str) else value
        out += _length(len(name)) + _length(len(value)) + name + value
    return bytes(out)


def decode_pairs(data):
    pairs, i = {}, 0
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
        pairs[name.decode()] = value.decode()
        i += lens[0] + lens[1]
    return pairs


def cgi_params(query="", method=None, body=b"", script="/app", extra=None):
    """A plausible CGI/1.1 parameter set for a request to the app."""
    p = {"GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
         "REQUEST_METHOD": method or ("POST" if body else "GET"),
         "SCRIPT_NAME": script, "SCRIPT_FILENAME": script, "QUERY_STRING": query,
         "REQUEST_URI": script + ("?" + query if query else ""), "SERVER_NAME": "localhost",
         "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
         "SERVER_SOFTWARE": "fcgi_client.py", "CONTENT_LENGTH": str(len(body))}
    if body:
        p["CONTENT_TYPE"] = "application/octet-stream"
    p.update(extra or {})
    return p


class Result:
    def __init__(self):
        self.records = []        # (type, request id, content) in arrival order
        self.stdout = b""
        self.stderr = b""
        self.app_status = None
        self.protocol_status = None
        self.ended = False       # FCGI_END_REQUEST seen
        self.closed = False      # the application closed the connection

    def split(self):
        """(headers as a list of (name, value) str tuples, body bytes) of a CGI response."""
        head, sep, body = self.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, _, body = self.stdout.partition(b"\n\n")
        headers = []
        for line in head.replace(b"\r\n", b"\n").split(b"\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        return headers, body


class FcgiConn:
    def __init__(self, address, timeout=30.0):
        if address.startswith("unix:") or address.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address[5:] if address.startswith("unix:") else address)
        else:
            host, _, port = address.rpartition(":")
            self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_record(self):
        """(type, request id, content), or None when the peer closed the connection."""
        while True:
            if len(self.buf) >= 8:
                _, rtype, rid, clen, plen = struct.unpack("!BBHHBx", self.buf[:8])
                if len(self.buf) >= 8 + clen + plen:
                    content = self.buf[8:8 + clen]
                    self.buf = self.buf[8 + clen + plen:]
                    return rtype, rid, content
            try:
                chunk = self.sock.recv(262144)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def request(self, params, body=b"", keep_conn=False, rid=1, on_record=None):
        """Send one whole request and read until FCGI_END_REQUEST or the connection closes."""
        begin = struct.pack("!HB5x", RESPONDER, KEEP_CONN if keep_conn else 0)
        try:
            self.send_raw(record(BEGIN_REQUEST, rid, begin)
                          + stream(PARAMS, rid, encode_pairs(params)) + stream(STDIN, rid, body))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the application went away; read what it sent before that
        return self.read_response(rid, on_record)

    def read_response(self, rid=1, on_record=None):
        res = Result()
        while not res.ended:
            rec = self.read_record()
            if rec is None:
                res.closed = True
                break
            res.records.append(rec)
            if on_record:
                on_record(rec)
            rtype, rrid, content = rec
            if rrid != rid:
                continue
            if rtype == STDOUT:
                res.stdout += content
            elif rtype == STDERR:
                res.stderr += content
            elif rtype == END_REQUEST:
                res.app_status, res.protocol_status = struct.unpack("!IB3x", content)
                res.ended = True
        return res


def _print_record(rec):
    rtype, rid, content = rec
    name = TYPE_NAMES.get(rtype, str(rtype))
    if rtype == END_REQUEST:
        app, proto = struct.unpack("!IB3x", content)
        detail = f"appStatus={app} protocolStatus={PROTOCOL_STATUS.get(proto, proto)}"
    else:
        detail = repr(content[:200]) + (" ..." if len(content) > 200 else "")
    print(f"{name:13s} id={rid} len={len(content):5d} {detail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("address")
    ap.add_argument("-q", "--query", default="")
    ap.add_argument("-m", "--method")
    ap.add_argument("-p", "--param", action="append", default=[], help="NAME=VALUE, repeatable")
    ap.add_argument("-b", "--body", default=None)
    ap.add_argument("-f", "--body-file")
    ap.add_argument("-n", "--repeat", type=int, default=1, help="requests on one connection")
    ap.add_argument("--keep-conn", action="store_true", help="set FCGI_KEEP_CONN")
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("-t", "--timeout", type=float, default=30.0)
    a = ap.parse_args()
    body = a.body.encode() if a.body is not None else b""
    if a.body_file:
        with open(a.body_file, "rb") as f:
            body = f.read()
    extra = dict(p.split("=", 1) for p in a.param)
    ok = True
    with FcgiConn(a.address, a.timeout) as conn:
        for i in range(a.repeat):
            keep = a.keep_conn or i < a.repeat - 1
            params = cgi_params(a.query, a.method, body, extra=extra)
            res = conn.request(params, body, keep_conn=keep,
                               on_record=None if a.raw else _print_record)
            if a.raw:
                sys.stdout.buffer.write(res.stdout)
                sys.stdout.flush()
                sys.stderr.buffer.write(res.stderr)
            else:
                print(f"# request {i + 1}: stdout={len(res.stdout)} stderr={len(res.stderr)} "
                      f"ended={res.ended} closed={res.closed} appStatus={res.app_status}")
            ok = ok and res.ended
            if res.closed:
                break
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
