#!/usr/bin/env python3
"""Hostile clients for bench/soak.sh: N connections, each a thread looping until --duration is
over: connect, send one request of a randomly chosen kind, go away at a random moment, again.

    reset_clients.py --port 8090 -n 26 --duration 600 \
        --url static=/static.bin --url php=/hello.php --url big=/t.fcgi?big=1m [--seed 1]

Moments (where in the exchange the client leaves):
    head_part    after a random prefix of the request head (1 .. len-1 bytes), never the whole head
    after_head   right after the whole head, after a random pause of 0-20 ms, nothing read
    resp_bytes   after the first 1..100 bytes of the response (inside its head)
    mid_body     after the response head and a random part of its body: 1 .. Content-Length - 1
                 bytes, or 1 .. 1 MiB - 1 bytes of a chunked one (the streamed 1 MiB)
Ways to leave:
    rst          close() with SO_LINGER {1, 0}: RST at once
    fin_rst      shutdown(SHUT_WR), up to 30 ms for the server to close its side, then RST
In one cycle in four the connection first completes one whole request of the same kind
(HTTP/1.1 keep-alive, its status counted) and then misbehaves on the second request, so that
kept-alive connections and their reuse are exercised too.

Every socket operation has a 10 s timeout, so the last cycles end at most ~10 s after --duration.
Prints one JSON object: resets (total), by_moment, by_way, by_kind, completed (the whole requests
of the keep-alive cycles), statuses (status codes seen in any response head, whole or partial),
errors (by kind: refused, timeout, the server closing or resetting before the client left, ...),
server_closed_first (the server ended the connection before the client's chosen moment, which
a healthy server never does here) and cycles_per_s.
"""
import argparse
import collections
import json
import random
import re
import select
import socket
import struct
import sys
import threading
import time

MOMENTS = ("head_part", "after_head", "resp_bytes", "mid_body")
WAYS = ("rst", "fin_rst")
TIMEOUT = 10.0
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


class ServerClosed(Exception):
    """The server closed or reset the connection before the chosen moment."""


class Client:
    def __init__(self, host, port, urls, deadline, seed):
        self.host, self.port, self.urls, self.deadline = host, port, urls, deadline
        self.rng = random.Random(seed)
        self.c = collections.Counter()   # "moment:x", "way:x", "kind:x", "err:x", "status:x", ...

    # --- one connection -----------------------------------------------------------------------
    def recv_until(self, s, buf, enough):
        """Receive into buf (a bytearray) until enough(buf) is true; ServerClosed on EOF/RST."""
        while not enough(buf):
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                raise ServerClosed("reset")
            if not chunk:
                raise ServerClosed("eof")
            buf += chunk

    def whole_response(self, s, buf):
        """Read one whole response (Content-Length or chunked framing) from s; returns (status,
        bytes left over after it). The soak's three URLs all frame their body one way or the other."""
        self.recv_until(s, buf, lambda b: b"\r\n\r\n" in b)
        end = buf.index(b"\r\n\r\n") + 4
        head = bytes(buf[:end]).lower()
        m = STATUS.match(bytes(buf[:16]))
        status = int(m.group(1)) if m else 0
        cl = re.search(rb"\r\ncontent-length: *(\d+)", head)
        if cl:
            need = end + int(cl.group(1))
            self.recv_until(s, buf, lambda b: len(b) >= need)
            return status, buf[need:]
        if b"transfer-encoding: chunked" not in head:
            raise ServerClosed("unframed")
        pos = end
        while True:                       # walk the chunks as they arrive
            self.recv_until(s, buf, lambda b: b.find(b"\r\n", pos) >= 0)
            eol = buf.index(b"\r\n", pos)
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                self.recv_until(s, buf, lambda b: b.find(b"\r\n\r\n", eol) >= 0)
                return status, buf[buf.index(b"\r\n\r\n", eol) + 4:]
            pos = eol + 2 + size + 2
            self.recv_until(s, buf, lambda b: len(b) >= pos)

    def leave(self, s, way):
        if way == "fin_rst":
            try:
                s.shutdown(socket.SHUT_WR)
                p = select.poll()
                p.register(s.fileno(), select.POLLRDHUP)
                p.poll(30)
            except OSError:
                pass
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        s.close()

    def cycle(self):
        rng = self.rng
        kind = rng.choice(sorted(self.urls))
        moment = rng.choice(MOMENTS)
        way = rng.choice(WAYS)
        head = ("GET %s HTTP/1.1\r\nHost: soak\r\nUser-Agent: reset_clients\r\n\r\n"
                % self.urls[kind]).encode()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        try:
            s.connect((self.host, self.port))
        except OSError as e:
            s.close()
            self.c["err:connect_" + type(e).__name__] += 1
            time.sleep(0.05)                      # a server that is gone: do not spin
            return
        buf = bytearray()
        try:
            if rng.random() < 0.25:              # a whole request first: keep-alive reuse
                s.sendall(head)
                status, rest = self.whole_response(s, buf)
                self.c["completed"] += 1
                self.c["status:%d" % status] += 1
                buf = bytearray(rest)
                if rest:
                    self.c["err:bytes_after_response"] += 1
            if moment == "head_part":
                s.sendall(head[:rng.randrange(1, len(head))])
            else:
                s.sendall(head)
                if moment == "after_head":
                    time.sleep(rng.random() * 0.02)
                elif moment == "resp_bytes":
                    n = rng.randrange(1, 101)     # every head of the soak is longer
                    self.recv_until(s, buf, lambda b: len(b) >= n)
                else:                             # mid_body
                    self.recv_until(s, buf, lambda b: b"\r\n\r\n" in b)
                    end = buf.index(b"\r\n\r\n") + 4
                    cl = re.search(rb"\r\ncontent-length: *(\d+)", bytes(buf[:end]).lower())
                    # A chunked body (the streamed 1 MiB) carries framing: any n < 1 MiB is inside.
                    length = int(cl.group(1)) if cl else 1 << 20
                    n = rng.randrange(1, length) if length >= 2 else 0
                    self.recv_until(s, buf, lambda b: len(b) - end >= n)
            self.c["resets"] += 1
            self.c["moment:" + moment] += 1
            self.c["way:" + way] += 1
            self.c["kind:" + kind] += 1
        except ServerClosed as e:
            # The moments never ask for more than the response holds, and every response here is
            # keep-alive: the only way to get here is a server that ended the connection itself.
            self.c["server_closed_first:%s:%s:%s" % (kind, moment, e)] += 1
        except socket.timeout:
            self.c["err:timeout:%s:%s" % (kind, moment)] += 1
        except OSError as e:
            self.c["err:%s:%s:%s" % (type(e).__name__, kind, moment)] += 1
        finally:
            m = STATUS.match(bytes(buf[:16]))
            if m:
                self.c["status:" + m.group(1).decode()] += 1
            self.leave(s, way)

    def run(self):
        while time.monotonic() < self.deadline:
            self.c["cycles"] += 1
            try:
                self.cycle()
            except Exception as e:              # a bug here must not silently stop a client
                self.c["err:client_bug:%s" % type(e).__name__] += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=26, help="concurrent hostile connections")
    ap.add_argument("--duration", type=float, required=True, help="seconds")
    ap.add_argument("--url", action="append", required=True, help="KIND=PATH, repeatable")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    urls = dict(u.split("=", 1) for u in a.url)
    seed = a.seed if a.seed is not None else int(time.time())
    t0 = time.monotonic()
    clients = [Client(a.host, a.port, urls, t0 + a.duration, seed * 1000 + i) for i in range(a.n)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = collections.Counter()
    for c in clients:
        total.update(c.c)
    secs = time.monotonic() - t0

    def group(prefix):
        return {k[len(prefix):]: v for k, v in sorted(total.items()) if k.startswith(prefix)}
    print(json.dumps({
        "clients": a.n, "seed": seed, "seconds": round(secs, 1),
        "cycles": total["cycles"], "cycles_per_s": round(total["cycles"] / secs, 1),
        "resets": total["resets"], "by_moment": group("moment:"), "by_way": group("way:"),
        "by_kind": group("kind:"), "completed": total["completed"], "statuses": group("status:"),
        "server_closed_first": group("server_closed_first:"), "errors": group("err:"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
