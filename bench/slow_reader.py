#!/usr/bin/env python3
"""A slow HTTP client: GET one URL and read the response at a fixed rate, checking the body.

    slow_reader.py --port 8090 --path '/t.fcgi?big=1g' --expect 1073741824 [--rate 10e6]
                   [--recv 65536] [--http 1.0] [--pattern 0123456789abcdef] [--stall 60]

Pacing is a token bucket whose burst is one recv: after each recv() of at most --recv bytes the
client sleeps until (bytes read so far) / --rate seconds after the first byte of the response, so
64 KiB at 10 MB/s is one recv every 6.55 ms. HTTP/1.0 (the default) gets a close-delimited or
Content-Length body; --http 1.1 sends "Connection: close" and decodes a chunked body too.
The body is checked to be --expect bytes of --pattern repeated from its first byte (fcgi_app's
?big= output). Exits 0 if status 200, the length and the pattern are right, else 1; prints one JSON
object: status, framing, body_bytes, expect, length_ok, pattern_ok, seconds (first byte to end),
ttfb_s, mean_MBps, max_recv_wait_s (longest wait inside one recv(): a stall shows here), end.
"""
import argparse
import json
import socket
import sys
import time


class Chunked:
    """Incremental chunked transfer-coding decoder; feed() returns the body bytes decoded."""

    def __init__(self):
        self.buf = b""
        self.left = 0          # bytes of chunk data still expected
        self.state = "size"    # size | data | crlf | trailer | done

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if self.state == "data":
                take = self.buf[: self.left]
                out.append(take)
                self.left -= len(take)
                self.buf = self.buf[len(take):]
                if self.left:
                    break
                self.state = "crlf"
            elif self.state == "crlf":
                if len(self.buf) < 2:
                    break
                if self.buf[:2] != b"\r\n":
                    raise ValueError("chunk data not followed by CRLF")
                self.buf = self.buf[2:]
                self.state = "size"
            elif self.state == "size":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                self.left = int(self.buf[:i].split(b";")[0], 16)
                self.buf = self.buf[i + 2:]
                self.state = "data" if self.left else "trailer"
            elif self.state == "trailer":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                if not line:
                    self.state = "done"
            else:
                break
        return b"".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--expect", type=int, required=True, help="body length in bytes")
    ap.add_argument("--rate", type=float, default=10e6, help="bytes per second")
    ap.add_argument("--recv", type=int, default=65536, help="bytes per recv()")
    ap.add_argument("--http", default="1.0", choices=["1.0", "1.1"])
    ap.add_argument("--pattern", default="0123456789abcdef")
    ap.add_argument("--stall", type=float, default=60, help="give up after this long without data")
    a = ap.parse_args()

    pat = a.pattern.encode()
    period = len(pat)
    ref = pat * (a.recv // period + 2)  # any slice of the body at offset o is ref[o % period:]

    s = socket.create_connection((a.host, a.port), timeout=a.stall)
    req = f"GET {a.path} HTTP/{a.http}\r\nHost: {a.host}:{a.port}\r\n"
    if a.http == "1.1":
        req += "Connection: close\r\n"
    s.sendall((req + "\r\n").encode())
    sent = time.monotonic()

    head = b""
    status, framing, clen, chunked = None, "close", None, None
    body = 0
    pattern_ok = True
    first = None          # time of the first response byte: the pacing clock starts there
    total = 0             # response bytes (head included) read so far, for pacing
    max_wait = 0.0
    end = "close"

    def check(data):
        nonlocal body, pattern_ok
        if pattern_ok and data:
            o = body % period
            if data != ref[o:o + len(data)]:
                pattern_ok = False
        body += len(data)

    while True:
        t0 = time.monotonic()
        try:
            data = s.recv(a.recv)
        except socket.timeout:
            end = f"no data for {a.stall} s"
            break
        except ConnectionResetError:
            end = "reset"
            break
        now = time.monotonic()
        max_wait = max(max_wait, now - t0) if first is not None else max_wait
        if not data:
            break
        if first is None:
            first = now
        total += len(data)
        if status is None:
            head += data
            i = head.find(b"\r\n\r\n")
            if i >= 0:
                lines = head[:i].decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                for l in lines[1:]:
                    k, _, v = l.partition(":")
                    k, v = k.strip().lower(), v.strip()
                    if k == "content-length":
                        clen, framing = int(v), "content-length"
                    elif k == "transfer-encoding" and "chunked" in v.lower():
                        chunked, framing = Chunked(), "chunked"
                data, head = head[i + 4:], head[:i]
            else:
                data = b""
        if status is not None and data:
            check(chunked.feed(data) if chunked else data)
            if chunked and chunked.state == "done":
                end = "last chunk"
                break
            if clen is not None and body >= clen:
                end = "content-length reached"
                break
        # token bucket: never more than rate * elapsed bytes since the first byte
        delay = first + total / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    done = time.monotonic()
    s.close()
    secs = done - (first or done)
    res = {
        "status": status, "framing": framing, "body_bytes": body, "expect": a.expect,
        "length_ok": body == a.expect, "pattern_ok": pattern_ok, "seconds": round(secs, 2),
        "ttfb_s": round((first or done) - sent, 3),
        "mean_MBps": round(total / secs / 1e6, 2) if secs > 0 else None,
        "max_recv_wait_s": round(max_wait, 3), "end": end,
    }
    print(json.dumps(res))
    sys.exit(0 if status == 200 and res["length_ok"] and pattern_ok else 1)


if __name__ == "__main__":
    main()
