"""maxInstances = 0 (SPEC §4.2) with real php-cgi under wrk: a wait-bound page makes the pool grow
to the demand, a CPU-bound page keeps the limit at or below max(8, 4 x CPUs); every change is logged
with its reason and shows in `ctl status`. The controller's decisions themselves are unit-tested
against simulated loads (tests/unit/pool/test_autotune.c); these tests prove the measurements that
feed it are real."""
import json
import os
import re
import time

import helpers
from test_20_fastcgi import needs_php
from test_42_under_load import Wrk, needs_wrk, php_app

IO_PAGE = b"<?php usleep(100000); echo 'io';"
CPU_PAGE = b"<?php $x = 0; for ($i = 0; $i < 400000; $i++) { $x += $i % 7; } echo 'cpu ', $x;"
NCPU = len(os.sched_getaffinity(0))
CPU_CAP = max(8, 4 * NCPU)


def pool_status(srv):
    cp = srv.ctl("status", "php", "--json")
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)["pools"][0]


def start(start_server, page):
    return start_server(files={"p.php": page},
                        extra=php_app(env="PHP_FCGI_MAX_REQUESTS=0", maxInstances=0,
                                      instanceMaxRequests=0, idleTimeout=0))


@needs_php
@needs_wrk
def test_wait_bound_pool_grows_to_the_demand(start_server):
    srv = start(start_server, IO_PAGE)
    assert srv.get("/p.php").status == 200
    first = pool_status(srv)
    assert first["auto"] is True and first["limit"] == max(4, 2 * NCPU)
    wrk = Wrk(srv.url("/p.php"), seconds=14, conns=32, threads=1)
    seen = []

    def grown():
        st = pool_status(srv)
        seen.append(st["limit"])
        return st["processes"]["total"] >= 28

    helpers.wait_until(grown, 13, interval=0.25,
                       what="the automatic pool to grow to the 32 waiting clients")
    res = wrk.result()
    assert res["non2xx"] == 0 and res["socket_errors"] == 0, res["out"]
    # Grown by steps, each logged with why; never past the demand (32 busy + 32 queued at most).
    assert max(seen) <= 64, seen
    changes = re.findall(r"php: maxInstances \(auto\) (\d+) -> (\d+): requests waited",
                         srv.error_log())
    assert changes and int(changes[0][0]) == first["limit"], srv.error_log()[-2000:]
    # It settles at the demand: a growth past the 32 clients is undone as not needed.
    st = pool_status(srv)
    assert 28 <= st["limit"] <= 48, (st["limit"], srv.error_log()[-2000:])
    assert st["autotune"]["note"]


@needs_php
@needs_wrk
def test_cpu_bound_pool_stays_at_or_below_the_cap(start_server):
    srv = start(start_server, CPU_PAGE)
    assert srv.get("/p.php").status == 200
    wrk = Wrk(srv.url("/p.php"), seconds=12, conns=32, threads=1)
    limits, procs = [], []
    while wrk.running():
        st = pool_status(srv)
        limits.append(st["limit"])
        procs.append(st["processes"]["total"])
        time.sleep(0.5)
    res = wrk.result()
    assert res["non2xx"] == 0 and res["socket_errors"] == 0, res["out"]
    assert res["requests"] > 0
    assert len(limits) >= 10
    assert max(limits) <= CPU_CAP, (limits, srv.error_log()[-2000:])
    assert max(procs) <= CPU_CAP, procs
