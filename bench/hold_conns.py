#!/usr/bin/env python3
"""Open N keep-alive connections to an HTTP server, each after one full request, and measure
the server's RSS growth per connection.

    hold_conns.py --port 8090 -n 10000 --pids 1234[,5678] [--path /1k.txt] [--settle 1] [--hold 0]

Every connection sends one GET (HTTP/1.1, keep-alive) and reads the whole response, so it went
through a complete request cycle before it sits idle. Opening stops at the first connection the
server does not answer within --timeout (a server at its connection limit leaves new ones in the
listen backlog). RSS (VmRSS, summed over --pids) is read before and --settle seconds after the
last connection; then each connection is checked for still being open (idle timeouts of the
server would close them). Prints one JSON object:
    opened, failed_at, still_open, rss_before_kb, rss_after_kb, bytes_per_conn, open_seconds
"""
import argparse
import json
import resource
import select
import socket
import sys
import time


def rss_kb(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return total


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):  # raising the hard limit needs CAP_SYS_RESOURCE
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < want:
            sys.exit(f"hold_conns: RLIMIT_NOFILE hard limit {hard} < {want} needed")


def one_request(host, port, path, timeout):
    """A connected socket that completed one request, or None if the server did not answer."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: hold_conns\r\n\r\n"
    buf = b""
    try:
        s.sendall(req.encode())
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("closed before the response head")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if not head.startswith(b"HTTP/1.1 200"):
            raise OSError("status " + head.split(b"\r\n")[0].decode(errors="replace"))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("closed mid-body")
            body += chunk
    except (OSError, socket.timeout):
        s.close()
        return None
    s.settimeout(None)
    return s


def still_open(socks):
    """Sockets not closed by the server: closed ones poll readable and peek 0 bytes."""
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLIN | select.POLLRDHUP)
    dead = {fd for fd, ev in poller.poll(0)}
    return sum(1 for s in socks if s.fileno() not in dead)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--path", default="/1k.txt")
    ap.add_argument("--pids", required=True, help="server pids whose VmRSS is summed")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--hold", type=float, default=0.0, help="keep the connections this long after")
    a = ap.parse_args()
    pids = [int(p) for p in a.pids.replace(",", " ").split()]
    raise_nofile(a.n)

    time.sleep(a.settle)
    before = rss_kb(pids)
    socks, failed_at, t0 = [], None, time.time()
    for i in range(a.n):
        s = one_request(a.host, a.port, a.path, a.timeout)
        if s is None:
            failed_at = i + 1
            break
        socks.append(s)
    open_seconds = time.time() - t0
    time.sleep(a.settle)
    after = rss_kb(pids)
    alive = still_open(socks)
    grown = (after - before) * 1024
    print(json.dumps({"opened": len(socks), "failed_at": failed_at, "still_open": alive,
                      "rss_before_kb": before, "rss_after_kb": after,
                      "bytes_per_conn": round(grown / len(socks)) if socks else None,
                      "open_seconds": round(open_seconds, 2)}), flush=True)
    time.sleep(a.hold)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
