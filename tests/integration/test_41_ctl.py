"""Operating fcgihost (SPEC §1): `fcgihost ctl` over the control socket — status, recycle, set,
reload, stop, their errors and exit codes — and the status page (statusPath: JSON, Prometheus,
statusAllow)."""
import json
import os
import re
import stat
import threading

import pytest

import helpers
from test_20_fastcgi import alive, app_section, env_of, handler_section, needs_app

OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3


def start(start_server, server_opts=None, **app_keys):
    return start_server(files={"t.fcgi": b"x", "static.txt": b"static\n"},
                        server_opts=server_opts,
                        extra=app_section(**app_keys) + handler_section())


def pid_of(srv, query=""):
    r = srv.get("/t.fcgi" + query)
    assert r.status == 200, r
    return int(env_of(r.body)["pid"])


def status_json(srv, *args):
    cp = srv.ctl("status", *args, "--json")
    assert cp.returncode == OK, cp.stderr
    return json.loads(cp.stdout)


# ---- ctl status ----------------------------------------------------------------------------

@needs_app
def test_status_table_and_json(start_server):
    srv = start(start_server, maxInstances=3)
    pid = pid_of(srv)
    assert srv.get("/static.txt").status == 200
    cp = srv.ctl("status")
    assert cp.returncode == OK, cp.stderr
    assert re.search(r"^app\s+limit 3\b", cp.stdout, re.M), cp.stdout
    assert re.search(rf"^\s*{pid}\s+idle\s+1\b", cp.stdout, re.M), cp.stdout   # PID STATE REQUESTS
    doc = status_json(srv)
    assert doc["server"]["pid"] == srv.pid
    assert doc["server"]["requests"]["2xx"] >= 2
    (pool,) = doc["pools"]
    assert pool["name"] == "app" and pool["limit"] == 3 and pool["auto"] is False
    assert pool["requests"]["2xx"] == 1 and pool["spawns"] == 1
    assert [p["pid"] for p in pool["process_list"]] == [pid]
    assert pool["process_list"][0]["state"] == "idle"
    assert pool["process_list"][0]["rss_bytes"] > 0


@needs_app
def test_status_of_one_app_and_unknown_app(start_server):
    srv = start_server(files={"t.fcgi": b"x"},
                       extra=app_section() + app_section(name="other") + handler_section())
    assert [p["name"] for p in status_json(srv)["pools"]] == ["app", "other"]
    assert [p["name"] for p in status_json(srv, "other")["pools"]] == ["other"]
    cp = srv.ctl("status", "other")
    assert cp.returncode == OK and "other" in cp.stdout and not re.search(r"^app\s", cp.stdout, re.M)
    cp = srv.ctl("status", "nope")
    assert cp.returncode == REFUSED
    assert "no application nope" in cp.stderr


@needs_app
def test_status_shows_auto_limit_and_its_reason(start_server):
    srv = start(start_server, maxInstances=0)
    pool = status_json(srv)["pools"][0]
    assert pool["auto"] is True and pool["limit"] >= 4
    assert "(auto" in srv.ctl("status").stdout
    # 12 requests at once for a pool that starts at 4: the controller raises the limit and says why
    results = []
    threads = [threading.Thread(target=lambda: results.append(srv.get("/t.fcgi?sleep=1500")))
               for _ in range(12)]
    for t in threads:
        t.start()
    helpers.wait_until(lambda: status_json(srv)["pools"][0]["autotune"] is not None, 8,
                       what="an automatic limit change")
    pool = status_json(srv)["pools"][0]
    assert pool["limit"] > 4 and "requests waited" in pool["autotune"]["note"]
    srv.wait_for_log(r"app: maxInstances \(auto\) 4 -> \d+: requests waited")
    for t in threads:
        t.join(15)
    assert [r.status for r in results] == [200] * 12


# ---- ctl recycle / set ---------------------------------------------------------------------

@needs_app
def test_recycle(start_server):
    srv = start(start_server, maxInstances=1)
    pid = pid_of(srv)
    cp = srv.ctl("recycle", "app")
    assert cp.returncode == OK and "recycling 1" in cp.stdout
    helpers.wait_until(lambda: not alive(pid), 5, what="the old process ended")
    assert pid_of(srv) != pid
    assert status_json(srv)["pools"][0]["recycles"]["manual"] == 1
    cp = srv.ctl("recycle", "nope")
    assert cp.returncode == REFUSED and "no application nope" in cp.stderr


@needs_app
def test_set_max_instances_takes_effect_for_the_next_requests(start_server):
    srv = start(start_server, maxInstances=4)
    cp = srv.ctl("set", "app", "maxInstances", "2")
    assert cp.returncode == OK, cp.stderr
    assert status_json(srv)["pools"][0]["limit"] == 2
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        srv.get(f"/t.fcgi?mark=set{i}&sleep=800"))) for i in range(3)]
    for t in threads:
        t.start()
    helpers.wait_until(lambda: len(re.findall(r"mark set\d", srv.error_log())) >= 2, 5,
                       what="two requests in their processes")
    pool = status_json(srv)["pools"][0]
    assert pool["processes"]["total"] == 2 and pool["queue"]["queued"] == 1, pool
    for t in threads:
        t.join(10)
    assert [r.status for r in results] == [200, 200, 200]
    assert len({env_of(r.body)["pid"] for r in results}) == 2
    srv.wait_for_log(r"app: maxInstances set to 2 \(fcgihost ctl")


@needs_app
@pytest.mark.parametrize("args,message", [
    (("set", "nope", "maxInstances", "2"), "no application nope"),
    (("set", "app", "bogusKey", "2"), "bogusKey"),
    (("set", "app", "maxInstances", "lots"), "maxInstances"),
    (("set", "app", "maxInstances", "-1"), "maxInstances"),
    (("set", "app", "stderrMode", "Sometimes"), "stderrMode"),
    (("set", "app", "fullPath", "/bin/true"), "fullPath"),      # not a live setting
])
def test_set_errors(start_server, args, message):
    srv = start(start_server, maxInstances=3)
    cp = srv.ctl(*args)
    assert cp.returncode == REFUSED, (cp.returncode, cp.stdout, cp.stderr)
    assert message in cp.stderr
    assert status_json(srv)["pools"][0]["limit"] == 3


@needs_app
def test_set_every_live_key(start_server):
    srv = start(start_server)
    for key, value in [("maxInstances", "5"), ("queueLength", "7"), ("instanceMaxRequests", "9"),
                       ("idleTimeout", "11"), ("activityTimeout", "12"), ("requestTimeout", "13"),
                       ("stderrMode", "ReturnGeneric500"),
                       ("signalBeforeTerminateSeconds", "2")]:
        cp = srv.ctl("set", "app", key, value)
        assert cp.returncode == OK, (key, cp.stderr)
    pool = status_json(srv)["pools"][0]
    assert pool["limit"] == 5 and pool["queue"]["length"] == 7
    # stderrMode is live: stderr now turns the response into a 500 (the default lets it through)
    assert srv.get("/t.fcgi?stderr=oops").status == 500


# ---- ctl reload / stop ---------------------------------------------------------------------

@needs_app
def test_reload_and_a_bad_file(start_server):
    srv = start(start_server)
    assert srv.get("/x.new").status == 404
    with open(srv.conf, "a") as f:
        f.write(handler_section(name="new", path="*.new", resourceType="Unspecified"))
    cp = srv.ctl("reload")
    assert cp.returncode == OK and "reloaded" in cp.stdout, cp.stderr
    assert srv.get("/x.new").status == 200
    with open(srv.conf, "a") as f:
        f.write("[fastcgi:broken]\nmaxInstances = many\n")
    cp = srv.ctl("reload")
    assert cp.returncode == REFUSED
    assert "keeping the running configuration" in cp.stderr
    assert re.search(r"fcgihost\.conf:\d+: .*maxInstances", cp.stdout + cp.stderr)
    assert srv.get("/x.new").status == 200                   # still serving the old one
    doc = status_json(srv)
    assert doc["server"]["reloads"] == {"ok": 1, "failed": 1}


@needs_app
def test_stop(start_server):
    srv = start(start_server)
    pid = pid_of(srv)
    srv.signalled = True                                     # it is meant to exit
    cp = srv.ctl("stop")
    assert cp.returncode == OK and "stopping" in cp.stdout
    assert srv.wait_exit(10) == 0
    helpers.wait_until(lambda: not alive(pid), 5, what="the FastCGI process ended")
    assert not os.path.exists(srv.control_socket)


# ---- the client's own errors -----------------------------------------------------------------

def test_unreachable_server_and_usage(bin_path, tmp_path):
    import subprocess

    def ctl(*args):
        return subprocess.run([bin_path, "ctl"] + list(args), capture_output=True, text=True,
                              timeout=10)
    sock = str(tmp_path / "none.sock")
    cp = ctl("-s", sock, "status")
    assert cp.returncode == UNREACHABLE and sock in cp.stderr
    for args in [(), ("-s", sock), ("-s", sock, "bogus"), ("-s", sock, "set", "app", "k"),
                 ("-s", sock, "recycle"), ("-s", sock, "stop", "now")]:
        cp = ctl(*args)
        assert cp.returncode == USAGE, (args, cp.returncode, cp.stderr)
        assert "--help' for more information" in cp.stderr     # GNU style (test_72_cli.py)
    cp = ctl("-h")
    assert cp.returncode == 0 and "exit" in cp.stdout.lower()


@needs_app
def test_control_socket_is_private_and_a_second_server_does_not_steal_it(start_server):
    srv = start(start_server)
    st = os.stat(srv.control_socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()
    other = start_server(files={"a": b"a"},
                         server_opts={"controlSocket": srv.control_socket})
    other.wait_for_log(r"cannot create the control socket .*another fcgihost answers on it")
    assert srv.ctl("status").returncode == OK                # still the first server's
    assert str(srv.pid) in srv.ctl("status").stdout


@needs_app
def test_stale_control_socket_is_replaced(start_server, tmp_path):
    import socket
    path = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()                                                # a file nobody accepts on
    srv = start(start_server, server_opts={"controlSocket": path})
    assert srv.ctl("status", socket_path=path).returncode == OK


# ---- the status page ---------------------------------------------------------------------------

def parse_prometheus(text):
    """A small parser of the text exposition format: {family: {"type":, "help":, "samples":
    [(name, labels, value)]}}. Asserts what the format requires."""
    families = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert name not in families or "help" not in families[name], f"two HELP for {name}"
            families.setdefault(name, {"samples": []})["help"] = help_
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            fam = families.setdefault(name, {"samples": []})
            assert "type" not in fam and not fam["samples"], f"TYPE after samples: {line}"
            fam["type"] = typ
        elif line.startswith("#") or not line:
            continue
        else:
            m = line_re.match(line)
            assert m, f"bad sample line: {line!r}"
            name, labels_s, value = m.group(1), m.group(3) or "", m.group(4)
            labels = {}
            pos = 0
            while pos < len(labels_s):
                lm = label_re.match(labels_s, pos)
                assert lm, f"bad labels: {line!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
            v = float(value)
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            fam = families.get(name) or families.get(base)
            assert fam and "type" in fam, f"sample without TYPE: {line}"
            fam["samples"].append((name, labels, v))
    for name, fam in families.items():
        assert name.startswith("fcgihost_"), name
        assert "type" in fam and "help" in fam, name
        if fam["type"] == "counter":
            assert name.endswith("_total"), name
            assert all(v >= 0 for _, _, v in fam["samples"]), name
        if fam["type"] == "histogram":
            series = {}
            for n, labels, v in fam["samples"]:
                key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                series.setdefault(key, {"buckets": [], "count": None})
                if n.endswith("_bucket"):
                    series[key]["buckets"].append((labels["le"], v))
                elif n.endswith("_count"):
                    series[key]["count"] = v
            for key, s in series.items():
                values = [v for _, v in s["buckets"]]
                assert values == sorted(values), f"{name}{key}: buckets not cumulative"
                assert s["buckets"][-1][0] == "+Inf" and values[-1] == s["count"], name
    return families


def sample(families, name, **labels):
    fam = families.get(name) or families.get(re.sub(r"_(bucket|sum|count)$", "", name))
    for n, l, v in fam["samples"]:
        if n == name and all(l.get(k) == str(x) for k, x in labels.items()):
            return v
    raise KeyError((name, labels))


@needs_app
def test_status_page_json_and_prometheus(start_server):
    srv = start(start_server, maxInstances=2, stderrMode="ReturnStdErrIn500")
    pid_of(srv)
    r = srv.get("/fcgihost-status")
    assert r.status == 200 and r.header("content-type") == "application/json"
    doc = json.loads(r.body)
    assert doc["pools"][0]["name"] == "app"
    r = srv.get("/fcgihost-status?format=prometheus")
    assert r.status == 200 and r.header("content-type").startswith("text/plain; version=0.0.4")
    fams = parse_prometheus(r.text)
    for name in ["fcgihost_http_requests_total", "fcgihost_http_request_duration_seconds",
                 "fcgihost_processes", "fcgihost_queue_length", "fcgihost_spawns_total",
                 "fcgihost_recycles_total", "fcgihost_rapid_fails_total",
                 "fcgihost_stderr_lines_total"]:
        assert name in fams, name
    assert fams["fcgihost_http_request_duration_seconds"]["type"] == "histogram"
    before_2xx = sample(fams, "fcgihost_http_requests_total", **{"class": "2xx"})
    before_app = sample(fams, "fcgihost_app_requests_total", app="app", **{"class": "2xx"})
    before_stderr = sample(fams, "fcgihost_stderr_lines_total", app="app")
    assert sample(fams, "fcgihost_processes", app="app", state="idle") == 1
    for _ in range(3):
        pid_of(srv)
    assert srv.get("/t.fcgi?stderr=line1%0Aline2&stderr_when=after").status == 500
    fams = parse_prometheus(srv.get("/fcgihost-status?format=prometheus").text)
    assert sample(fams, "fcgihost_http_requests_total", **{"class": "2xx"}) >= before_2xx + 4
    assert sample(fams, "fcgihost_app_requests_total", app="app", **{"class": "2xx"}) \
        == before_app + 3
    assert sample(fams, "fcgihost_app_requests_total", app="app", **{"class": "5xx"}) == 1
    assert sample(fams, "fcgihost_stderr_lines_total", app="app") == before_stderr + 2
    assert sample(fams, "fcgihost_http_request_duration_seconds_count") >= before_2xx + 4
    r = srv.get("/fcgihost-status", method="HEAD")
    assert r.status == 200 and r.body == b""


@needs_app
def test_status_page_refused_outside_status_allow(start_server):
    srv = start(start_server, server_opts={"statusAllow": "10.0.0.0/8 192.168.0.0/16"})
    r = srv.get("/fcgihost-status")
    assert r.status == 403 and b"fcgihost_" not in r.body and b"pools" not in r.body
    srv.wait_for_log(r"127\.0\.0\.1: status page refused \(not in statusAllow\)")
    assert srv.get("/fcgihost-status?format=prometheus").status == 403


@needs_app
def test_status_page_path_and_off(start_server):
    srv = start(start_server, server_opts={"statusPath": "/_status"})
    assert srv.get("/_status").status == 200
    assert srv.get("/fcgihost-status").status == 404
    srv2 = start(start_server, server_opts={"statusPath": "off"})
    assert srv2.get("/fcgihost-status").status == 404
