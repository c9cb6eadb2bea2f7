"""SIGHUP reload (SPEC §1): a good file takes effect for new requests; a bad one keeps the running
configuration and logs every error with file:line."""
import signal

import helpers
from test_20_fastcgi import app_section, env_of, handler_section, needs_app


@needs_app
def test_reload_adds_a_handler_and_a_bad_file_keeps_the_old_one(start_server):
    srv = start_server(files={"t.fcgi": b"static script", "a.txt": b"a"})
    assert srv.get("/t.fcgi").body == b"static script"       # no handler yet: a static file
    with open(srv.conf) as f:
        good = f.read()
    with open(srv.conf, "a") as f:
        f.write("\n" + app_section() + handler_section())
    srv.signal(signal.SIGHUP)
    srv.wait_for_log(r"configuration reloaded")
    r = srv.get("/t.fcgi")
    assert r.status == 200 and b"SCRIPT_NAME=/t.fcgi" in r.body
    pid = env_of(r.body)["pid"]

    with open(srv.conf, "a") as f:
        f.write("\n[server2]\nbogus = 1\n")
    srv.signal(signal.SIGHUP)
    srv.wait_for_log(r"reload failed: keeping the running configuration")
    assert srv.conf + ":" in srv.error_log()                  # errors carry file:line
    r = srv.get("/t.fcgi")
    assert r.status == 200 and env_of(r.body)["pid"] == pid   # same pool, same process

    with open(srv.conf, "w") as f:
        f.write(good)                                         # the application is removed
    srv.signal(signal.SIGHUP)
    helpers.wait_until(lambda: srv.error_log().count("configuration reloaded") >= 2, 5,
                       what="the second reload")
    assert srv.get("/t.fcgi").body == b"static script"
    assert srv.get("/a.txt").status == 200
