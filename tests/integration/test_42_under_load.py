"""No request lost under load (SPEC §1, §4.8): 20 reloads during a 30 s wrk run at 64 connections,
and a 60 s run while the monitored php.ini is touched every second with instanceMaxRequests = 100.
wrk counts every non-2xx/3xx response and every socket error (connect, read, write, timeout)."""
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

import helpers
from conftest import free_ports
from test_20_fastcgi import PHP_CGI, app_section, handler_section, needs_php

WRK = shutil.which("wrk")
needs_wrk = pytest.mark.skipif(WRK is None, reason="wrk not installed (scripts/deps.sh test)")

PAGE = b"<?php echo 'hello from ', getmypid(), \"\\n\";"


class Wrk:
    """wrk in the background; .result() waits and parses its summary."""

    def __init__(self, url, seconds, conns=64, threads=2):
        self.proc = subprocess.Popen([WRK, f"-t{threads}", f"-c{conns}", f"-d{seconds}s",
                                      "--timeout", "10s", url],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.seconds = seconds

    def running(self):
        return self.proc.poll() is None

    def result(self):
        out, _ = self.proc.communicate(timeout=self.seconds + 60)
        m = re.search(r"(\d+) requests in", out)
        assert m, out
        res = {"requests": int(m.group(1)), "non2xx": 0, "socket_errors": 0, "out": out}
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m:
            res["non2xx"] = int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            res["socket_errors"] = sum(int(x) for x in m.groups())
        return res


def php_app(**keys):
    return app_section(name="php", full_path=PHP_CGI, **keys) + \
        handler_section(name="php", path="*.php", app="php")


@needs_php
@needs_wrk
def test_20_reloads_during_load_lose_nothing(start_server):
    srv = start_server(files={"hello.php": PAGE},
                       extra=php_app(env="PHP_FCGI_MAX_REQUESTS=0", maxInstances=8))
    assert srv.get("/hello.php").status == 200
    base = srv.config_text
    extra_port = free_ports(1)[0]
    variants = [
        base,
        base.replace("maxInstances = 8", "maxInstances = 6"),               # a live setting
        base.replace("PHP_FCGI_MAX_REQUESTS=0", "PHP_FCGI_MAX_REQUESTS=0\nenv = X_GEN=2"),
                                                                            # recycled gracefully
        base + handler_section(name="txt", path="*.txt", app="php", resourceType="Unspecified"),
        base + app_section(name="other", full_path=PHP_CGI),                # an app added
    ]
    assert base.startswith("[server]\n")
    variants.append(base.replace("[server]\n", f"[server]\nlisten = 127.0.0.1:{extra_port}\n", 1))
                                                                            # a listener added
    wrk = Wrk(srv.url("/hello.php"), 30)
    reloads = 0
    t0 = time.monotonic()
    while reloads < 20:
        time.sleep(max(0.0, t0 + 1.3 * (reloads + 1) - time.monotonic()))   # spread over ~26 s
        with open(srv.conf, "w") as f:
            f.write(variants[reloads % len(variants)])
        if reloads % 2:
            srv.signal(signal.SIGHUP)
            srv.signalled = False
            n = reloads + 1
            helpers.wait_until(lambda: srv.error_log().count("configuration reloaded") >= n, 10,
                               what=f"reload {n}")
        else:
            cp = srv.ctl("reload")
            assert cp.returncode == 0, cp.stderr
        reloads += 1
        assert wrk.running(), "the reloads took longer than the wrk run"
        if reloads % len(variants) == 0:                                  # the listener is there
            with srv.connect(addr=("127.0.0.1", extra_port)) as c:
                r = helpers.exchange(c, b"GET /hello.php HTTP/1.1\r\nHost: x\r\n\r\n")
            assert r.status == 200
    res = wrk.result()
    assert srv.error_log().count("configuration reloaded") == 20
    assert res["non2xx"] == 0 and res["socket_errors"] == 0, res["out"]
    assert res["requests"] > 1000, res["out"]
    assert "recycling" in srv.error_log()                     # the env change was applied


@needs_php
@needs_wrk
def test_60s_with_the_monitored_file_touched_every_second(start_server, tmp_path):
    ini = str(tmp_path / "php.ini")
    with open(ini, "w") as f:
        f.write("memory_limit = 64M\n")
    srv = start_server(files={"hello.php": PAGE},
                       extra=php_app(arguments=f"-c {ini}", monitorChangesTo=ini,
                                     instanceMaxRequests=100, maxInstances=0))
    assert srv.get("/hello.php").status == 200
    stop = threading.Event()

    def toucher():
        n = 0
        while not stop.wait(1.0):
            n += 1
            os.utime(ini, ns=(time.time_ns(), time.time_ns() + n))
    t = threading.Thread(target=toucher, daemon=True)
    wrk = Wrk(srv.url("/hello.php"), 60)
    t.start()
    try:
        res = wrk.result()
    finally:
        stop.set()
        t.join(5)
    log = srv.error_log()
    assert res["non2xx"] == 0 and res["socket_errors"] == 0, res["out"]
    assert res["requests"] > 5000, res["out"]
    assert log.count(f"{ini} changed") >= 50                  # the pool was recycled each second
    assert "served 100 requests" in log                       # and by instanceMaxRequests
