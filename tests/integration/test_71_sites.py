"""Sites, routing and rules (SPEC §6, issue 11) with the real server, real php-cgi and sockets:
[site:NAME] chosen by Host (exact, *.suffix, the default site, per-site listen), per-site root,
index, maxBodyBytes and accessLog; include (sorted globs, cycles, file:line of included files);
`fcgihost -t` on every malformed new key; fallback, rewrite rules (unless, redirect, captures, the
10-rewrite limit, last), errorPage (static and PHP, POST), deny, header rules, 405 for verbs, the CGI
variables after routing, alias; a reload under load adding a site, a rule and a header rule;
hostile clients; trustedProxies with X-Forwarded-For, PROXY protocol v1/v2 listeners and a real
HAProxy with send-proxy-v2 in front."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading

import pytest

import helpers
import hostile
from conftest import fcgihost_bin, free_ports, write_tree

PHP_CGI = "/usr/bin/php-cgi"
HAPROXY = "/usr/sbin/haproxy"

# Everything a script sees, as JSON (invalid UTF-8 substituted rather than failing).
ENV_PHP = (b"<?php header('Content-Type: application/json');\n"
           b"echo json_encode(['server' => $_SERVER, 'get' => $_GET, 'post' => $_POST,\n"
           b"  'input' => file_get_contents('php://input'), 'file' => __FILE__],\n"
           b"  JSON_INVALID_UTF8_SUBSTITUTE);\n")


# ---- configuration text --------------------------------------------------------------------

def section(header, **keys):
    """An INI section; a list value gives one line per element (repeatable keys)."""
    lines = ["[%s]" % header]
    for k, v in keys.items():
        for x in (v if isinstance(v, (list, tuple)) else [v]):
            lines.append("%s = %s" % (k, x))
    return "\n".join(lines) + "\n\n"


def php(verb="*", path="*.php", **handler_keys):
    return (section("fastcgi:php", fullPath=PHP_CGI)
            + section("handler:php", path=path, verb=verb, scriptProcessor="php", **handler_keys))


def make_root(base, name, files=None):
    d = os.path.join(str(base), name)
    os.makedirs(d, exist_ok=True)
    write_tree(d, files or {})
    return os.path.realpath(d)


def get(srv, path, host="test", headers=None, method="GET", body=b"", addr=None):
    """One request on a fresh connection to the server (or to `addr`)."""
    hs = [("Host", host)] if host is not None else []
    hs += list((headers or {}).items())
    hs.append(("Connection", "close"))
    if body:
        hs.append(("Content-Length", str(len(body))))
    version = "HTTP/1.1" if host is not None else "HTTP/1.0"
    data = helpers.request(method, path, hs, body=body, version=version, host=None)
    with srv.connect(addr=addr) as c:
        res = helpers.exchange(c, data, (method,))
    assert res.error is None, "%s %s (Host %s): %s" % (method, path, host, res.error)
    return res.first


def env_of(resp):
    assert resp.status == 200, (resp, resp.body[:500])
    assert resp.header("Content-Type", "").startswith("application/json"), (resp, resp.body[:500])
    return json.loads(resp.body)


def php_env(srv, path, host="test", **kw):
    return env_of(get(srv, path, host=host, **kw))


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# ---- fcgihost -t ---------------------------------------------------------------------------

def check_config(path):
    """`fcgihost -t -c path`: (exit code, [(file, line, message)] of the diagnostics)."""
    cp = subprocess.run([fcgihost_bin(), "-t", "-c", path], capture_output=True, text=True,
                        timeout=20, stdin=subprocess.DEVNULL)
    assert not re.search(r"Sanitizer|runtime error:", cp.stderr), cp.stderr
    diags = [(m.group(1), int(m.group(2)), m.group(3))
             for m in re.finditer(r"^(/[^:\n]*):(\d+): (.*)$", cp.stderr, re.M)]
    return cp.returncode, diags, cp.stderr


def line_of(text, needle):
    """1-based number of the only line of `text` containing `needle`."""
    hits = [i for i, l in enumerate(text.split("\n"), 1) if needle in l]
    assert len(hits) == 1, "needle %r is on lines %s" % (needle, hits)
    return hits[0]


# ==== sites chosen by Host ===================================================================

def test_two_sites_on_one_listener_told_apart_by_host(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"index.html": b"site A\n", "only-a.txt": b"A only\n"})
    b = make_root(tmp_path, "b", {"index.html": b"site B\n"})
    srv = start_server(extra=section("site:a", hosts="a.test", root=a)
                       + section("site:b", hosts="b.test, www.b.test", root=b))
    assert get(srv, "/", "a.test").body == b"site A\n"
    assert get(srv, "/", "b.test").body == b"site B\n"
    assert get(srv, "/", "www.b.test").body == b"site B\n"
    # Case, port and a trailing dot do not matter.
    assert get(srv, "/", "A.TEST:%d" % srv.port).body == b"site A\n"
    assert get(srv, "/", "WWW.B.Test.").body == b"site B\n"
    # Each site serves its own root only.
    assert get(srv, "/only-a.txt", "a.test").status == 200
    assert get(srv, "/only-a.txt", "b.test").status == 404
    # An absolute-form target names the site, whatever Host says.
    r = get(srv, "http://b.test/", "a.test")
    assert r.status == 200 and r.body == b"site B\n"
    # Keep-alive: each request of one connection picks its own site.
    with srv.connect() as c:
        c.send(helpers.request("GET", "/", [("Host", "a.test")], host=None)
               + helpers.request("GET", "/", [("Host", "b.test")], host=None))
        r1, r2 = c.read_responses(["GET", "GET"])
    assert (r1.body, r2.body) == (b"site A\n", b"site B\n")


def test_unknown_host_goes_to_the_default_site(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"index.html": b"site A\n"})
    d = make_root(tmp_path, "d", {"index.html": b"default\n"})
    srv = start_server(extra=section("site:a", hosts="a.test", root=a)
                       + section("site:dflt", hosts="*", root=d))
    assert get(srv, "/", "a.test").body == b"site A\n"
    for host in ("unknown.test", "127.0.0.1:%d" % srv.port, "a.test.example"):
        r = get(srv, "/", host)
        assert r.status == 200 and r.body == b"default\n", host
    # HTTP/1.0 without Host: the default site.
    r = get(srv, "/", host=None)
    assert r.status == 200 and r.body == b"default\n"


def test_unknown_host_is_404_without_a_default_site(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"index.html": b"site A\n"})
    b = make_root(tmp_path, "b", {"index.html": b"site B\n"})
    srv = start_server(extra=section("site:a", hosts="a.test", root=a)
                       + section("site:b", hosts="b.test", root=b))
    for host in ("unknown.test", "127.0.0.1", "b.test.evil"):
        r = get(srv, "/", host)
        assert r.status == 404 and r.body not in (b"site A\n", b"site B\n"), (host, r.body)
    assert get(srv, "/", host=None).status == 404
    # The status page answers on every site, even for a host no site has.
    assert get(srv, "/fcgihost-status", "unknown.test").status == 200
    assert get(srv, "/", "b.test").body == b"site B\n"


def test_wildcard_hosts_and_the_longest_suffix(start_server, tmp_path):
    roots = {n: make_root(tmp_path, n, {"index.html": n.encode()}) for n in ("org", "shop", "exact")}
    # The shorter wildcard comes first in the file: length decides, not file order.
    srv = start_server(extra=section("site:org", hosts="*.example.org", root=roots["org"])
                       + section("site:shop", hosts="*.shop.example.org", root=roots["shop"])
                       + section("site:exact", hosts="a.shop.example.org", root=roots["exact"]))
    expect = {
        "www.example.org": b"org",
        "deep.www.example.org": b"org",
        "shop.example.org": b"org",          # *.shop.example.org does not cover its own suffix
        "b.shop.example.org": b"shop",
        "x.y.shop.example.org": b"shop",
        "B.SHOP.Example.Org:8080": b"shop",
        "a.shop.example.org": b"exact",      # an exact name beats every wildcard
    }
    for host, body in expect.items():
        r = get(srv, "/", host)
        assert r.status == 200 and r.body == body, (host, r.status, r.body)
    for host in ("example.org", "badexample.org", "example.org.evil"):
        assert get(srv, "/", host).status == 404, host


def test_a_sites_own_listen_address_serves_only_it(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"index.html": b"site A\n"})
    b = make_root(tmp_path, "b", {"index.html": b"site B\n"})
    d = make_root(tmp_path, "d", {"index.html": b"default\n"})
    own = free_ports(1)[0]
    srv = start_server(extra=section("site:a", hosts="a.test", root=a)
                       + section("site:b", hosts="b.test", root=b, listen="127.0.0.1:%d" % own)
                       + section("site:dflt", hosts="*", root=d))
    addr = ("127.0.0.1", own)
    helpers.wait_until(lambda: _connects(addr), 5, what="the site's own listener")
    # The server's listener serves every site.
    assert get(srv, "/", "a.test").body == b"site A\n"
    assert get(srv, "/", "b.test").body == b"site B\n"
    assert get(srv, "/", "other.test").body == b"default\n"
    # The site's own address serves only that site: neither another site nor the default.
    assert get(srv, "/", "b.test", addr=addr).body == b"site B\n"
    assert get(srv, "/", "a.test", addr=addr).status == 404
    assert get(srv, "/", "other.test", addr=addr).status == 404


def _connects(addr):
    try:
        socket.create_connection(addr, timeout=1).close()
        return True
    except OSError:
        return False


def test_per_site_root_index_max_body_and_access_log(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"home.html": b"A home\n", "index.html": b"A index\n",
                                  "a-only.txt": b"a\n",
                                  "len.php": b"<?php echo strlen(file_get_contents('php://input'));"})
    b = make_root(tmp_path, "b", {"index.html": b"B index\n", "b-only.txt": b"b\n",
                                  "len.php": b"<?php echo strlen(file_get_contents('php://input'));"})
    c = make_root(tmp_path, "c", {"index.html": b"C index\n"})
    alog, blog = str(tmp_path / "a.log"), str(tmp_path / "b.log")
    srv = start_server(server_opts={"maxBodyBytes": 1000},
                       extra=section("site:a", hosts="a.test", root=a, index="home.html",
                                     maxBodyBytes=100, accessLog=alog)
                       + section("site:b", hosts="b.test", root=b, accessLog=blog)
                       + section("site:c", hosts="c.test", root=c) + php())
    assert get(srv, "/", "a.test").body == b"A home\n"          # the site's own index list
    assert get(srv, "/", "b.test").body == b"B index\n"         # [server]'s default list
    assert get(srv, "/", "c.test").body == b"C index\n"
    # maxBodyBytes: the site's own (100) and [server]'s (1000) for a site without one.
    assert get(srv, "/a-only.txt", "a.test", method="POST", body=b"x" * 101).status == 413
    assert get(srv, "/len.php", "a.test", method="POST", body=b"x" * 100).body == b"100"
    assert get(srv, "/len.php", "b.test", method="POST", body=b"x" * 1000).body == b"1000"
    assert get(srv, "/len.php", "b.test", method="POST", body=b"x" * 1001).status == 413

    def chunked(n1, n2):
        return srv.raw(helpers.request("POST", "/len.php", [("Host", "a.test"), ("Connection", "close"),
                                                            ("Transfer-Encoding", "chunked")],
                                       body=helpers.chunked(b"x" * n1, b"y" * n2), host=None)).first
    assert chunked(60, 40).body == b"100"
    assert chunked(60, 41).status == 413
    # accessLog: one file per site; a site without one uses [server]'s; no site: the first site's.
    assert get(srv, "/a-only.txt", "a.test").status == 200
    assert get(srv, "/b-only.txt", "b.test").status == 200
    assert get(srv, "/c-marker", "c.test").status == 404
    assert get(srv, "/nosite-marker", "nosuch.test").status == 404
    helpers.wait_until(lambda: "GET /b-only.txt" in read(blog) and "/c-marker" in srv.access_log()
                       and "/nosite-marker" in read(alog), 5, what="the access-log lines")
    al, bl, sl = read(alog), read(blog), srv.access_log()
    # (where a 413 refused before its request began is logged: test_a_413_is_logged_in_its_site...)
    assert "GET /a-only.txt" in al and "GET /b-only.txt" not in al and "/c-marker" not in al
    assert "GET /b-only.txt" in bl and "/a-only.txt" not in bl and "/c-marker" not in bl
    assert "/c-marker" in sl and "/a-only.txt" not in sl and "/b-only.txt" not in sl
    assert '"POST /a-only.txt HTTP/1.1" 413' in al


def test_a_413_is_logged_in_its_sites_access_log(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"f.txt": b"a\n"})
    b = make_root(tmp_path, "b", {"f.txt": b"b\n"})
    alog, blog = str(tmp_path / "a.log"), str(tmp_path / "b.log")
    srv = start_server(extra=section("site:a", hosts="a.test", root=a, accessLog=alog)
                       + section("site:b", hosts="b.test", root=b, accessLog=blog,
                                 maxBodyBytes=10))
    assert get(srv, "/f.txt", "b.test", method="POST", body=b"x" * 11).status == 413
    assert get(srv, "/f.txt", "b.test").status == 200
    helpers.wait_until(lambda: "GET /f.txt" in read(blog), 5, what="b's access-log line")
    assert '"POST /f.txt HTTP/1.1" 413' in read(blog), (read(alog), read(blog))
    assert "/f.txt" not in read(alog)


def test_site_max_body_bytes_zero_is_no_limit(start_server, tmp_path):
    """SPEC §2: "maxBodyBytes = 30000000 ; 413 past this; 0 = no limit" -- a site's 0 lifts
    [server]'s limit for that site only."""
    f = b"<?php echo 'got ', strlen(file_get_contents('php://input'));"
    a = make_root(tmp_path, "a", {"f.php": f})
    b = make_root(tmp_path, "b", {"f.php": f})
    srv = start_server(server_opts={"maxBodyBytes": 10},
                       extra=section("site:a", hosts="a.test", root=a, maxBodyBytes=0)
                       + section("site:b", hosts="b.test", root=b) + php())
    assert get(srv, "/f.php", "a.test", method="POST", body=b"x" * 5000).body == b"got 5000"
    assert get(srv, "/f.php", "b.test", method="POST", body=b"x" * 11).status == 413


# ==== include ================================================================================

def test_include_reads_a_glob_in_sorted_order(start_server, tmp_path):
    make_root(tmp_path, "sites/a", {"from-10.txt": b"rule of 10\n", "from-20.txt": b"rule of 20\n"})
    make_root(tmp_path, "sites/c", {"index.html": b"site C\n"})
    confd = tmp_path / "conf.d"
    (confd / "nested").mkdir(parents=True)
    (confd / "40-dir.conf").mkdir()                  # a directory the glob matches: skipped
    (confd / "README").write_text("not a configuration file [\n")
    # Written in an order that is not the sorted one.
    (confd / "30-c.conf").write_text(
        section("site:c", hosts="c.test", root="../sites/c")
        + section("headers:h30", path="*", set="X-Order: 30"))
    (confd / "10-a.conf").write_text(
        section("site:a", hosts="a.test", root="../sites/a")      # relative to conf.d
        + section("rewrite:first", match="^/order$", to="/from-10.txt")
        + section("headers:h10", path="*", set="X-Order: 10"))
    (confd / "20-b.conf").write_text(
        section("rewrite:second", match="^/order$", to="/from-20.txt")
        + section("headers:h20", path="*", set="X-Order: 20")
        + "include = nested/*.conf\n")                           # relative to conf.d
    (confd / "nested" / "n.conf").write_text(section("headers:nested", path="*", set="X-Nested: yes"))
    srv = start_server(extra="include = %s/*.conf\n" % confd)
    r = get(srv, "/order", "a.test")
    # 10-a's rule ran first (and stopped), 30-c's header rule came last (and won).
    assert r.status == 200 and r.body == b"rule of 10\n", r.body
    assert r.header_all("X-Order") == ["30"]
    assert r.header("X-Nested") == "yes"
    assert get(srv, "/", "c.test").body == b"site C\n"


def _write_files(base, files):
    for name, text in files.items():
        p = os.path.join(str(base), name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)


def test_include_cycle_is_refused_with_file_and_line(tmp_path):
    root = make_root(tmp_path, "www")
    main = "[server]\nlisten = 127.0.0.1:1\nroot = %s\n\ninclude = a.conf\n" % root
    a = "; a\n[headers:a]\npath = *\nset = X-A: 1\ninclude = sub/b.conf\n"
    b = "[headers:b]\npath = *\nset = X-B: 1\ninclude = ../a.conf\n"
    _write_files(tmp_path, {"main.conf": main, "a.conf": a, "sub/b.conf": b})
    rc, diags, err = check_config(str(tmp_path / "main.conf"))
    assert rc == 1, err
    assert [(f, l) for f, l, _ in diags] == [(str(tmp_path / "sub" / "b.conf"), 4)], err
    assert re.search(r"include: .*a\.conf includes itself \(a cycle\)", diags[0][2]), err


def test_include_of_itself_through_a_glob_is_refused(tmp_path):
    root = make_root(tmp_path, "www")
    main = "[server]\nlisten = 127.0.0.1:1\nroot = %s\ninclude = conf.d/*.conf\n" % root
    _write_files(tmp_path, {"main.conf": main, "conf.d/1.conf": "[headers:x]\npath = *\nset = X: 1\n",
                            "conf.d/2.conf": "\n\ninclude = ../main.conf\n"})
    rc, diags, err = check_config(str(tmp_path / "main.conf"))
    assert rc == 1, err
    assert [(f, l) for f, l, _ in diags] == [(str(tmp_path / "conf.d" / "2.conf"), 3)], err
    assert "a cycle" in diags[0][2]


def test_errors_inside_an_included_file_name_that_file(tmp_path):
    root = make_root(tmp_path, "www")
    main = ("[server]\nlisten = 127.0.0.1:1\nroot = %s\n"
            "include = inc.conf\n"
            "include = missing.conf\n"
            "include = none.d/*.conf\n") % root                 # a glob may match nothing (empty dir)
    inc = ("[site:a]\n"                 # 1
           "hosts = a.test\n"           # 2
           "root = .\n"                 # 3
           "indexes = home.html\n"      # 4 unknown key
           "maxBodyBytes = lots\n"      # 5 bad value
           "\n"                         # 6
           "[site:b]\n"                 # 7 root missing: reported at the header
           "hosts = b.test\n")          # 8
    _write_files(tmp_path, {"main.conf": main, "inc.conf": inc})
    (tmp_path / "none.d").mkdir()
    rc, diags, err = check_config(str(tmp_path / "main.conf"))
    assert rc == 1, err
    incp, mainp = str(tmp_path / "inc.conf"), str(tmp_path / "main.conf")
    got = sorted((f, l) for f, l, _ in diags)
    assert got == sorted([(incp, 4), (incp, 5), (incp, 7), (mainp, 5)]), err
    msgs = {(f, l): m for f, l, m in diags}
    assert "indexes" in msgs[(incp, 4)]
    assert "lots" in msgs[(incp, 5)]
    assert "missing required key 'root' in [site:b]" in msgs[(incp, 7)]
    assert "include: cannot open" in msgs[(mainp, 5)] and "missing.conf" in msgs[(mainp, 5)]


# ==== fcgihost -t: each malformed new key at its file:line ====================================

SITE_A = "[site:a]\nhosts = a.test\nroot = @ROOT@\n"
SITE_B = "[site:b]\nhosts = b.test\nroot = @ROOT@\n"
REWRITE = "[rewrite:r]\nmatch = ^/x$\nto = /y\n"
# (id, text after [server], needle on the line the error must name, message regex[, needle on the
# line the message must name as the first occurrence])
BAD_KEYS = [
    ("hosts-bad-name", SITE_A.replace("a.test", "a.test bad/name"), "bad/name",
     r"hosts: 'bad/name' is not a host name"),
    ("hosts-empty", SITE_A.replace("a.test", ","), "hosts = ,", r"hosts: at least one host"),
    ("hosts-twice-in-a-site", SITE_A.replace("a.test", "a.test A.TEST"), "A.TEST",
     r"hosts: 'a\.test' is listed twice"),
    ("listen-unknown-option", SITE_A + "listen = 127.0.0.1:@P1@ proxies\n", "proxies",
     r"listen: 'proxies' after the address of listen is not an option"),
    ("listen-proxy-as-address", SITE_A + "listen = proxy\n", "listen = proxy",
     r"listen: 'proxy' is not an address"),
    ("listen-proxy-mismatch", SITE_A + "listen = 127.0.0.1:@P0@ proxy\n", "@P0@ proxy",
     r"listen: 127\.0\.0\.1:\d+ is also given without the proxy option at line (\d+)",
     "@P0@\n"),
    ("root-missing", "[site:noroot]\nhosts = x.test\n", "[site:noroot]",
     r"missing required key 'root' in \[site:noroot\]"),
    ("root-not-a-directory", SITE_A.replace("root = @ROOT@", "root = @ROOT@/nothing"), "nothing",
     r"root: .*nothing"),
    ("alias-one-word", SITE_A + "alias = /media\n", "alias = /media",
     r"alias: expected URL-PREFIX DIRECTORY"),
    ("alias-relative-prefix", SITE_A + "alias = media @ROOT@\n", "alias = media",
     r"alias: 'media' is not a URL prefix: it must start with '/'"),
    ("alias-missing-directory", SITE_A + "alias = /media @ROOT@/nowhere\n", "nowhere",
     r"alias: '.*/nowhere': No such file or directory"),
    ("alias-twice", SITE_A + "alias = /m @ROOT@\nalias = /m/ @ROOT@\n", "alias = /m/ ",
     r"alias: the prefix /m is already given at line (\d+)", "alias = /m "),
    ("fallback-relative", SITE_A + "fallback = index.php\n", "fallback",
     r"fallback: 'index.php' is not a URL path: it must start with '/'"),
    ("fallback-dot-segment", SITE_A + "fallback = /a/../index.php\n", "fallback",
     r"fallback: .* no '\.' or '\.\.' segments"),
    ("errorPage-not-an-error", SITE_A + "errorPage = 302 /e.html\n", "errorPage",
     r"errorPage: '302' is not an error status"),
    ("errorPage-no-url", SITE_A + "errorPage = 404\n", "errorPage",
     r"errorPage: expected STATUS URL"),
    ("errorPage-twice", SITE_A + "errorPage = 404 /a.html\nerrorPage = 404 /b.html\n", "/b.html",
     r"errorPage: a page for 404 is already given at line (\d+)", "/a.html"),
    ("deny-slash-inside", SITE_A + "deny = /ok a/b\n", "deny",
     r"deny: 'a/b' is neither a URL prefix"),
    ("deny-whole-site", SITE_A + "deny = /\n", "deny", r"deny: '/' is neither"),
    ("site-key-in-server", SITE_A, "@SERVERKEY@",
     r"fallback in \[server\] applies only when there is no \[site:NAME\]"),
    ("match-bad-pcre2", REWRITE.replace("^/x$", "^/(x"), "^/(x",
     r"match: '\^/\(x': missing closing parenthesis at offset 4"),
    ("match-empty", REWRITE.replace("^/x$", ""), "match =", r"match: a regular expression is required"),
    ("redirect-303", REWRITE + "redirect = 303\n", "redirect",
     r"redirect: '303': expected 0 \(rewrite\), 301, 302, 307 or 308"),
    ("to-absolute-without-redirect", REWRITE.replace("/y", "https://example.org/y"), "to =",
     r"to: 'https://example.org/y' is an absolute URL: only a redirect"),
    ("to-bad-dollar", REWRITE.replace("/y", "/y$a"), "to =", r"to: .*'\$' must be followed by a digit"),
    ("to-relative", REWRITE.replace("/y", "y.php"), "to =", r"to: 'y.php' must start with '/'"),
    ("unless-unknown", REWRITE + "unless = file socket\n", "unless",
     r"unless: 'socket': expected file, directory or both"),
    ("last-maybe", REWRITE + "last = maybe\n", "last", r"last: 'maybe' is not a boolean"),
    ("rewrite-without-to", "[rewrite:noto]\nmatch = ^/x$\n", "[rewrite:noto]",
     r"missing required key 'to' in \[rewrite:noto\]"),
    ("headers-set-without-colon", "[headers:h]\npath = *\nset = X-Frame-Options DENY\n", "set =",
     r"set: expected 'Name: value'"),
    ("headers-set-framing", "[headers:h]\npath = *\nset = Content-Length: 5\n", "set =",
     r"set: Content-Length is set by the server itself"),
    ("headers-set-bad-name", "[headers:h]\npath = *\nset = X Bad: 5\n", "set =",
     r"set: 'X Bad' is not a header name"),
    ("headers-without-path", "[headers:h]\nset = X-A: 1\n", "[headers:h]",
     r"missing required key 'path' in \[headers:h\]"),
    ("site-unknown-in-rewrite", SITE_A + REWRITE + "site = a nosuch\n", "site = a nosuch",
     r"site: there is no \[site:nosuch\] section"),
    ("site-unknown-in-headers", SITE_A + "[headers:h]\npath = *\nset = X: 1\nsite = ghost\n",
     "site = ghost", r"site: there is no \[site:ghost\] section"),
    ("site-unknown-in-handler", SITE_A + "[fastcgi:php]\nfullPath = " + PHP_CGI + "\n"
     "[handler:php]\npath = *.php\nscriptProcessor = php\nsite = phantom\n", "site = phantom",
     r"site: there is no \[site:phantom\] section"),
    ("host-in-two-sites", SITE_A + SITE_B.replace("b.test", "b.test A.test"), "b.test A.test",
     r"hosts: a\.test is already a host of \[site:a\]"),
    ("two-default-sites", SITE_A.replace("a.test", "*") + SITE_B.replace("b.test", "b.test *"),
     "b.test *", r"hosts: \[site:a\] is already the default site"),
    ("trustedProxies-bad", "[server]\n", "@TRUSTED@", r"trustedProxies: .*10\.0\.0\.300"),
]


@pytest.mark.parametrize("case", BAD_KEYS, ids=[c[0] for c in BAD_KEYS])
def test_t_rejects_a_malformed_key_at_its_line(tmp_path, case):
    name, body, needle, rx, *first = case
    root = make_root(tmp_path, "www")
    p0, p1 = free_ports(2)
    server = "[server]\nlisten = 127.0.0.1:%d\nroot = %s\n" % (p0, root)
    if name == "site-key-in-server":
        server += "fallback = /index.php   ; @SERVERKEY@\n"
    if name == "trustedProxies-bad":
        server += "trustedProxies = 10.0.0.1 10.0.0.300   ; @TRUSTED@\n"
        body = ""
    text = (server + "\n" + body).replace("@ROOT@", root).replace("@P0@", str(p0)) \
        .replace("@P1@", str(p1))
    needle = needle.replace("@P0@", str(p0))
    path = str(tmp_path / "fcgihost.conf")
    with open(path, "w") as f:
        f.write(text)
    rc, diags, err = check_config(path)
    assert rc == 1, (text, err)
    want = line_of(text, needle)
    assert [(f, l) for f, l, _ in diags] == [(path, want)], "want %s:%d\n%s\n---\n%s" % (
        path, want, err, text)
    m = re.search(rx, diags[0][2])
    assert m, "message %r does not match /%s/" % (diags[0][2], rx)
    if first:                           # "already given at line N": the first one's line
        first = first[0].replace("@P0@", str(p0))
        want_first = text[:text.index(first)].count("\n") + 1
        assert int(m.group(1)) == want_first, (m.group(0), text)


def test_t_accepts_every_new_key(tmp_path):
    """The counterpart: a file using each new key correctly passes -t (exit 0, no message)."""
    root = make_root(tmp_path, "www", {"errors/404.html": b"x"})
    media = make_root(tmp_path, "media")
    p0, p1, p2 = free_ports(3)
    text = ("[server]\nlisten = 127.0.0.1:%d\nlisten = 127.0.0.1:%d proxy\nroot = %s\n"
            "trustedProxies = 127.0.0.1 10.0.0.0/8, ::1\n\n" % (p0, p1, root)
            + section("site:a", hosts="a.test www.a.test *.a.test", root=root,
                      listen=["127.0.0.1:%d" % p2, "127.0.0.1:%d proxy" % p1],
                      alias="/media %s" % media, fallback="/index.php?r=1",
                      errorPage=["404 /errors/404.html", "503 /err.php"],
                      deny=["/.git/ /private", "/uploads/*.php *.bak"], index="index.php",
                      maxBodyBytes="1m", accessLog="off")
            + section("site:dflt", hosts="*", root=root)
            + section("rewrite:wiki", match=r"^/wiki/(.*)$", to="/index.php?title=$1",
                      unless="file, directory", last="false", site="a")
            + section("rewrite:old", match="^/old$", to="https://a.test/new", redirect=308)
            + section("headers:cache", path="/media/", set=["Cache-Control: max-age=60", "X-Empty:"],
                      site="a dflt")
            + php(verb="GET,POST", site="a"))
    path = str(tmp_path / "good.conf")
    with open(path, "w") as f:
        f.write(text)
    rc, diags, err = check_config(path)
    assert rc == 0 and diags == [], err


# ==== fallback and rewrite rules ==============================================================

def test_fallback_front_controller_keeps_the_query_string(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"index.php": ENV_PHP, "app.php": ENV_PHP, "real.txt": b"real\n",
                                  "noindex/x.txt": b"x", "sub/index.html": b"sub index\n"})
    b = make_root(tmp_path, "b", {"index.php": ENV_PHP})
    srv = start_server(extra=section("site:a", hosts="a.test", root=a, fallback="/index.php")
                       + section("site:b", hosts="b.test", root=b, fallback="/index.php?route=fb")
                       + php())
    e = php_env(srv, "/blog/2024/hello-world?p=1&q=a%20b", "a.test")
    s = e["server"]
    assert s["SCRIPT_NAME"] == "/index.php"
    assert s["SCRIPT_FILENAME"] == os.path.join(a, "index.php")
    assert s.get("PATH_INFO", "") == ""
    assert s["QUERY_STRING"] == "p=1&q=a%20b"
    assert s["REQUEST_URI"] == "/blog/2024/hello-world?p=1&q=a%20b"
    assert e["get"] == {"p": "1", "q": "a b"}
    # A missing script of a resourceType = File handler goes to the fallback too.
    s = php_env(srv, "/missing.php?z=1", "a.test")["server"]
    assert (s["SCRIPT_NAME"], s["QUERY_STRING"], s["REQUEST_URI"]) == ("/index.php", "z=1",
                                                                       "/missing.php?z=1")
    # Without a query string there is none.
    assert php_env(srv, "/pretty", "a.test")["server"]["QUERY_STRING"] == ""
    # What exists is served as it is: a file, a script with its PATH_INFO, a directory's index.
    assert get(srv, "/real.txt", "a.test").body == b"real\n"
    s = php_env(srv, "/app.php/x/y?k=v", "a.test")["server"]
    assert (s["SCRIPT_NAME"], s["PATH_INFO"], s["QUERY_STRING"]) == ("/app.php", "/x/y", "k=v")
    assert get(srv, "/sub/", "a.test").body == b"sub index\n"
    # A directory without an index file is not a fallback case.
    assert get(srv, "/noindex/", "a.test").status == 403
    # A fallback URL with its own query: that one, not the client's.
    s = php_env(srv, "/anything?client=1", "b.test")["server"]
    assert (s["SCRIPT_NAME"], s["QUERY_STRING"], s["REQUEST_URI"]) == ("/index.php", "route=fb",
                                                                       "/anything?client=1")


def test_fallback_to_a_static_page(start_server, tmp_path):
    """A single-page application: every path naming nothing gets /index.html, with 200."""
    a = make_root(tmp_path, "a", {"index.html": b"<app>\n", "app.js": b"js\n"})
    srv = start_server(extra=section("site:a", hosts="*", root=a, fallback="/index.html"))
    for path in ("/", "/users/42", "/deep/route/x?tab=2"):
        r = get(srv, path)
        assert r.status == 200 and r.body == b"<app>\n", path
    assert get(srv, "/app.js").body == b"js\n"
    assert get(srv, "/users/42", method="HEAD").status == 200


def test_rewrite_unless_file_directory(start_server, tmp_path):
    files = {"index.php": ENV_PHP, "style.css": b"body{}\n", "docs/index.html": b"docs\n"}
    a = make_root(tmp_path, "a", files)
    b = make_root(tmp_path, "b", files)
    srv = start_server(
        extra=section("site:a", hosts="a.test", root=a) + section("site:b", hosts="b.test", root=b)
        + section("rewrite:both", match="^/(.+)$", to="/index.php?path=$1",
                  unless="file directory", site="a")
        + section("rewrite:fileonly", match="^/(.+)$", to="/index.php?path=$1", unless="file",
                  site="b")
        + php())
    # unless = file directory: files and directories are left alone.
    assert get(srv, "/style.css", "a.test").body == b"body{}\n"
    assert get(srv, "/docs/", "a.test").body == b"docs\n"
    r = get(srv, "/docs", "a.test")
    assert r.status == 301 and r.header("Location").endswith("/docs/")
    s = php_env(srv, "/no/such/thing?x=1", "a.test")["server"]
    assert (s["SCRIPT_NAME"], s["QUERY_STRING"]) == ("/index.php", "path=no/such/thing&x=1")
    # The rewritten path names a file itself: the rule is not applied to it again.
    assert php_env(srv, "/index.php", "a.test")["server"]["QUERY_STRING"] == ""
    # unless = file only: a directory is rewritten.
    assert get(srv, "/style.css", "b.test").body == b"body{}\n"
    s = php_env(srv, "/docs/", "b.test")["server"]
    assert (s["SCRIPT_NAME"], s["QUERY_STRING"]) == ("/index.php", "path=docs/")


def test_redirect_rules_location_and_status(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"new/page.html": b"new\n"})
    rules = "".join(section("rewrite:r%d" % code, match=r"^/r%d/(.*)$" % code,
                            to="/new/$1", redirect=code) for code in (301, 302, 307, 308))
    rules += section("rewrite:abs", match=r"^/abs/(.*)$", to="https://other.example/x/$1?from=abs",
                     redirect=301)
    srv = start_server(extra=section("site:a", hosts="*", root=a) + rules)
    for code in (301, 302, 307, 308):
        r = get(srv, "/r%d/page.html" % code)
        assert r.status == code, r
        assert r.header_all("Location") == ["/new/page.html"], r.headers
        r = get(srv, "/r%d/page.html?a=1&b=2" % code)         # the client's query comes along
        assert r.status == code and r.header("Location") == "/new/page.html?a=1&b=2"
    r = get(srv, "/r307/p.html", method="POST", body=b"data")  # 307: method and body stay theirs
    assert r.status == 307 and r.header("Location") == "/new/p.html"
    r = get(srv, "/abs/y%20z?c=3")
    assert r.status == 301 and r.header("Location") == "https://other.example/x/y%20z?from=abs&c=3"
    # The target of the redirect is then served.
    assert get(srv, "/new/page.html").body == b"new\n"


def test_captures_are_escaped_into_the_query(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"w.php": ENV_PHP, "store/a b/x.txt": b"stored\n"})
    srv = start_server(extra=section("site:a", hosts="*", root=a) + php()
                       + section("rewrite:wiki", match=r"^/wiki/(.*)$", to="/w.php?title=$1")
                       + section("rewrite:files", match=r"^/files/([^/]+)/(.*)$", to="/store/$2/$1.txt")
                       + section("rewrite:dollar", match=r"^/dollar/(\w+)$", to="/w.php?lit=$$1&all=$0&g=$1")
                       + section("rewrite:opt", match=r"^/opt(/x)?(/y)?$", to="/w.php?one=$1&two=$2"))
    e = php_env(srv, "/wiki/A%26B%20c%2Bd%3Fe%23f%25?action=edit")
    assert e["server"]["QUERY_STRING"] == "title=A%26B%20c%2Bd%3Fe%23f%25&action=edit"
    assert e["get"] == {"title": "A&B c+d?e#f%", "action": "edit"}
    assert e["server"]["REQUEST_URI"] == "/wiki/A%26B%20c%2Bd%3Fe%23f%25?action=edit"
    e = php_env(srv, "/wiki/Caf%C3%A9")
    assert e["server"]["QUERY_STRING"] == "title=Caf%C3%A9" and e["get"] == {"title": "Café"}
    # In the path part, groups go in as decoded text (the path is then checked as a client's).
    assert get(srv, "/files/x/a%20b").body == b"stored\n"
    e = php_env(srv, "/dollar/abc")
    assert e["server"]["QUERY_STRING"] == "lit=$1&all=/dollar/abc&g=abc"
    # A group that took no part is empty.
    assert php_env(srv, "/opt/y")["server"]["QUERY_STRING"] == "one=&two=/y"


def test_a_rewritten_path_is_checked_as_a_clients(start_server, tmp_path):
    """Groups joined by a rule may form '..' or a dot-file: 400 and 403, as for a client."""
    a = make_root(tmp_path, "a", {".htaccess": b"secret", "x/y.txt": b"y\n", "ab/z.txt": b"z\n"})
    srv = start_server(extra=section("site:a", hosts="*", root=a)
                       + section("rewrite:join", match=r"^/j/a(.*)b(.*)$", to="/$1$2/z.txt")
                       + section("rewrite:dot", match=r"^/d/(.*)$", to="/.$1"))
    assert get(srv, "/j/aabb").body == b"z\n"                 # /ab/z.txt
    assert get(srv, "/j/a.b.").status == 400                   # /../z.txt
    assert get(srv, "/d/htaccess").status == 403               # /.htaccess
    assert get(srv, "/x/y.txt").body == b"y\n"


def test_the_10_rewrite_limit_gives_500(start_server, tmp_path):
    files = {"step%d" % i: ("step %d\n" % i).encode() for i in range(12)}
    a = make_root(tmp_path, "a", files)
    fb = make_root(tmp_path, "fb", {})
    chain = "".join(section("rewrite:s%d" % i, match="^/step%d$" % (i - 1), to="/step%d" % i,
                            last="false", site="a") for i in range(1, 12))
    srv = start_server(extra=section("site:a", hosts="a.test", root=a)
                       + section("site:fb", hosts="fb.test", root=fb, fallback="/nowhere")
                       + chain)
    # 10 rewrites of one request are allowed ...
    r = get(srv, "/step1", "a.test")
    assert r.status == 200 and r.body == b"step 11\n"
    # ... an 11th is a 500, not a hang.
    assert get(srv, "/step0", "a.test").status == 500
    srv.wait_for_log(r"more than 10 rewrites")
    # A fallback that names nothing re-routes to itself until the limit.
    assert get(srv, "/x", "fb.test").status == 500
    assert get(srv, "/step11", "a.test").body == b"step 11\n"


def test_last_false_chains_rules(start_server, tmp_path):
    files = {"b/x": b"stopped at b\n", "c/x.txt": b"chained to c\n"}
    chain = make_root(tmp_path, "chain", files)
    stop = make_root(tmp_path, "stop", files)
    srv = start_server(
        extra=section("site:chain", hosts="chain.test", root=chain)
        + section("site:stop", hosts="stop.test", root=stop)
        + section("rewrite:a2b-go-on", match="^/a/(.*)$", to="/b/$1", last="false", site="chain")
        + section("rewrite:a2b-stop", match="^/a/(.*)$", to="/b/$1", site="stop")
        + section("rewrite:b2c", match="^/b/(.*)$", to="/c/$1.txt"))
    assert get(srv, "/a/x", "chain.test").body == b"chained to c\n"
    assert get(srv, "/a/x", "stop.test").body == b"stopped at b\n"
    # b2c applies on its own to both.
    assert get(srv, "/b/x", "stop.test").body == b"chained to c\n"


# ==== error pages ==============================================================================

ERR_PHP = (b"<?php header('Content-Type: text/plain');\n"
           b"echo 'php error page|', $_SERVER['REQUEST_METHOD'], '|', $_SERVER['QUERY_STRING'], '|',\n"
           b"  $_SERVER['REQUEST_URI'], '|', $_SERVER['SCRIPT_NAME'], '|',\n"
           b"  ($_SERVER['CONTENT_LENGTH'] ?? '') === '' ? '-' : $_SERVER['CONTENT_LENGTH'], '|',\n"
           b"  strlen(file_get_contents('php://input'));\n")


def test_error_page_from_a_static_file(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"errors/404.html": b"<h1>custom 404</h1>\n",
                                  "errors/403.html": b"<h1>custom 403</h1>\n",
                                  "noindex/x.txt": b"x", ".hidden": b"secret"})
    srv = start_server(extra=section("site:a", hosts="*", root=a,
                                     errorPage=["404 /errors/404.html", "403 /errors/403.html",
                                                "500 /errors/missing.html"]))
    r = get(srv, "/no/such/page")
    assert r.status == 404 and r.body == b"<h1>custom 404</h1>\n"
    assert r.header("Content-Type", "").startswith("text/html")
    helpers.check_common_headers(r)
    r = get(srv, "/no/such/page", method="HEAD")
    assert r.status == 404 and r.body == b"" and r.header("Content-Length") == "20"
    # The page answers another request: no range of it, no 304 for its validators.
    r = get(srv, "/no/such/page", headers={"Range": "bytes=0-3"})
    assert r.status == 404 and r.body == b"<h1>custom 404</h1>\n"
    etag = get(srv, "/errors/404.html").header("ETag")
    r = get(srv, "/no/such/page", headers={"If-None-Match": etag})
    assert r.status == 404 and r.body == b"<h1>custom 404</h1>\n"
    for path in ("/noindex/", "/.hidden"):
        r = get(srv, path)
        assert r.status == 403 and r.body == b"<h1>custom 403</h1>\n", path
    # The page of another status is not used for this one; the page itself is served normally.
    assert get(srv, "/errors/404.html").status == 200
    # A page that is itself missing: the usual one-line error, with the original status.
    a2 = make_root(tmp_path, "a2", {})
    srv2 = start_server(extra=section("site:a2", hosts="*", root=a2, errorPage="404 /errors/nope.html"))
    r = get(srv2, "/missing")
    assert r.status == 404 and r.body.startswith(b"404 Not Found")


def test_error_page_from_php_keeps_the_status(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"err.php": ERR_PHP, "noindex/x.txt": b"x",
                                  "own404.php": b"<?php header('Status: 404 Not Found');\n"
                                                b"echo \"the application's own 404\";"})
    srv = start_server(extra=section("site:a", hosts="*", root=a,
                                     errorPage=["404 /err.php?kind=nf", "403 /err.php?kind=forbidden"])
                       + php())
    r = get(srv, "/missing/page?client=1")
    assert r.status == 404, r
    assert r.body == b"php error page|GET|kind=nf|/missing/page?client=1|/err.php|-|0", r.body
    r = get(srv, "/noindex/")
    assert r.status == 403 and r.body.startswith(b"php error page|GET|kind=forbidden|/noindex/|")
    # A missing script: 404, answered by the PHP page.
    r = get(srv, "/gone.php")
    assert r.status == 404 and r.body.startswith(b"php error page|GET|kind=nf|/gone.php|")
    r = get(srv, "/missing", method="HEAD")
    assert r.status == 404 and r.body == b""
    # An application's own 404 is its answer: passed through, no page.
    r = get(srv, "/own404.php")
    assert r.status == 404 and r.body == b"the application's own 404"
    # Pipelined behind a re-routed request, the next answer waits its turn.
    with srv.connect() as c:
        c.send(helpers.request("GET", "/missing") + helpers.request("GET", "/noindex/x.txt")
               + helpers.request("HEAD", "/gone.php") + helpers.request("GET", "/noindex/x.txt"))
        rs = c.read_responses(["GET", "GET", "HEAD", "GET"])
    assert [x.status for x in rs] == [404, 200, 404, 200]
    assert rs[0].body.startswith(b"php error page|GET|kind=nf|/missing|") and rs[1].body == b"x"
    assert rs[3].body == b"x"


def test_error_page_for_a_failing_application(start_server, tmp_path):
    """502/503 that fcgihost answers for an application that dies show the site's page."""
    a = make_root(tmp_path, "a", {"x.broken": b"", "errors/5xx.html": b"down for maintenance\n"})
    srv = start_server(extra=section("site:a", hosts="*", root=a,
                                     errorPage=["502 /errors/5xx.html", "503 /errors/5xx.html"])
                       + section("fastcgi:broken", fullPath="/bin/false", rapidFailsPerMinute=2)
                       + section("handler:broken", path="*.broken", scriptProcessor="broken"))
    for i in range(3):
        r = get(srv, "/x.broken?%d" % i)
        assert r.status in (502, 503) and r.body == b"down for maintenance\n", r
    srv.wait_for_log(r"broken")


def test_post_hitting_an_error_page_becomes_a_get(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"err.php": ERR_PHP, "ok.txt": b"ok\n"})
    srv = start_server(extra=section("site:a", hosts="*", root=a, errorPage="404 /err.php")
                       + php())
    body = b"name=value&" + b"x" * 5000
    with srv.connect() as c:
        for path in ("/missing.php", "/missing.html"):
            c.send(helpers.request("POST", path, [("Content-Type", "application/x-www-form-urlencoded"),
                                                  ("Content-Length", str(len(body)))], body=body))
            r = c.read_response()
            assert r.status == 404, r
            assert r.body == ("php error page|GET||%s|/err.php|-|0" % path).encode(), r.body
        # The body was consumed, not taken for the next request.
        c.send(helpers.request("GET", "/ok.txt"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok\n"


# ==== deny ====================================================================================

def test_deny_patterns(start_server, tmp_path):
    files = {"private/a.txt": b"p", "privatex.txt": b"px", "uploads/2024/x.php": b"<?php echo 1;",
             "uploads/x.php": b"<?php echo 2;", "uploads/a.jpg": b"jpg", "db.BAK": b"bak",
             "dir/file.bak/more.txt": b"m", "public.txt": b"public", "errors/404.html": b"denied page",
             "git/config": b"c"}
    a = make_root(tmp_path, "a", files)
    srv = start_server(extra=section("site:a", hosts="*", root=a, errorPage="404 /errors/404.html",
                                     deny=["/private /uploads/*.php", "*.bak /git"])
                       + section("rewrite:secret", match="^/secret$", to="/private/a.txt")
                       + php())
    denied = ["/private", "/private/", "/private/a.txt", "/priv%61te/a.txt", "//private/a.txt",
              "/uploads/x.php", "/uploads/2024/x.php", "/uploads/x.php/extra", "/db.BAK",
              "/db.bak", "/dir/file.bak/more.txt", "/git/config", "/git", "/secret"]
    for path in denied:
        r = get(srv, path)
        assert r.status == 404 and r.body == b"denied page", (path, r.status, r.body)
    for path, body in (("/privatex.txt", b"px"), ("/uploads/a.jpg", b"jpg"), ("/public.txt", b"public")):
        r = get(srv, path)
        assert r.status == 200 and r.body == body, path


def test_deny_prefix_written_with_a_trailing_slash(start_server, tmp_path):
    """fcgihost.conf(5): "/.git and /.git/ deny /.git and everything below"; the guide's example
    is `deny = /wp-config.php /.git/ /wp-content/uploads/*.php *.bak`."""
    a = make_root(tmp_path, "a", {"git/config": b"c", "gitx.txt": b"gx", "wp-config.php": b"<?php"})
    srv = start_server(extra=section("site:a", hosts="*", root=a,
                                     deny="/wp-config.php /git/ /wp-content/uploads/*.php *.bak"))
    for path in ("/git/config", "/git", "/wp-config.php"):
        assert get(srv, path).status == 404, path
    assert get(srv, "/gitx.txt").body == b"gx"


# ==== header rules =============================================================================

def test_header_rules_on_static_php_and_error_answers(start_server, tmp_path):
    page = (b"<?php header('X-Frame-Options: SAMEORIGIN'); header('Cache-Control: max-age=5');\n"
            b"header('X-App: mine'); echo 'page';")
    a = make_root(tmp_path, "a", {"assets/a.css": b"body{}", "page.php": page, "plain.txt": b"t"})
    srv = start_server(extra=section("site:a", hosts="*", root=a) + php()
                       + section("headers:all", path="*", set=["X-Frame-Options: DENY", "X-Rule: all"])
                       + section("headers:assets", path="/assets/",
                                 set=["Cache-Control: public, max-age=60", "X-Rule: assets"])
                       + section("headers:php", path="*.php", set="Cache-Control: no-cache, private"))
    r = get(srv, "/assets/a.css")
    assert r.status == 200 and r.body == b"body{}"
    assert r.header_all("X-Frame-Options") == ["DENY"]
    assert r.header_all("Cache-Control") == ["public, max-age=60"]
    assert r.header_all("X-Rule") == ["assets"]                  # a later rule wins
    r = get(srv, "/page.php")
    assert r.status == 200 and r.body == b"page"
    assert r.header_all("X-Frame-Options") == ["DENY"]            # replaces the application's
    assert r.header_all("Cache-Control") == ["no-cache, private"]
    assert r.header_all("X-App") == ["mine"] and r.header_all("X-Rule") == ["all"]
    r = get(srv, "/plain.txt")
    assert r.header_all("X-Frame-Options") == ["DENY"] and r.header("Cache-Control") is None
    r = get(srv, "/missing.txt")                                   # an error answer
    assert r.status == 404 and r.header_all("X-Frame-Options") == ["DENY"]
    r = get(srv, "/plain.txt", headers={"If-None-Match": get(srv, "/plain.txt").header("ETag")})
    assert r.status == 304 and r.header_all("X-Frame-Options") == ["DENY"]


# ==== verbs ===================================================================================

def test_get_on_a_post_only_handler_is_405_without_source(start_server, tmp_path):
    form = b"<?php /* SECRET-SOURCE */ echo 'posted ', $_SERVER['REQUEST_METHOD'];"
    files = {"form.php": form, "sub/index.php": form}
    a = make_root(tmp_path, "a", files)
    b = make_root(tmp_path, "b", files)
    srv = start_server(extra=section("site:a", hosts="a.test", root=a)
                       + section("site:b", hosts="b.test", root=b)
                       + section("fastcgi:php", fullPath=PHP_CGI)
                       + section("handler:post", path="*.php", verb="POST", scriptProcessor="php")
                       + section("handler:put", path="*.php", verb="PUT", scriptProcessor="php",
                                 site="b"))
    for host, allowed in (("a.test", ["POST"]), ("b.test", ["POST", "PUT"])):
        for method, path in (("GET", "/form.php"), ("HEAD", "/form.php"), ("GET", "/sub/"),
                             ("DELETE", "/form.php"), ("GET", "/form.php/x?y")):
            r = get(srv, path, host, method=method)
            assert r.status == 405, (host, method, path, r)
            allow = [v.strip() for v in r.header("Allow", "").split(",")]
            assert sorted(allow) == allowed, (host, r.headers)
            assert b"SECRET-SOURCE" not in r.body and b"<?php" not in r.body
        r = get(srv, "/form.php", host, method="POST", body=b"a=1")
        assert r.status == 200 and r.body == b"posted POST"
    assert get(srv, "/form.php", "b.test", method="PUT", body=b"a=1").body == b"posted PUT"


def test_405_with_an_error_page_keeps_allow_and_hides_source(start_server, tmp_path):
    form = b"<?php /* SECRET-SOURCE */ echo 'posted';"
    a = make_root(tmp_path, "a", {"form.php": form, "errors/405.html": b"custom 405\n"})
    srv = start_server(extra=section("site:a", hosts="*", root=a, errorPage="405 /errors/405.html")
                       + php(verb="POST"))
    r = get(srv, "/form.php")
    assert r.status == 405 and r.header("Allow") == "POST", r.headers
    assert b"SECRET-SOURCE" not in r.body
    assert r.body == b"custom 405\n"


def test_static_405_with_an_error_page_keeps_allow(start_server, tmp_path):
    """A method static files do not take: 405, through the page, still with its Allow (RFC 9110
    15.5.6: a 405 must carry Allow)."""
    a = make_root(tmp_path, "a", {"x.txt": b"x", "errors/405.html": b"custom 405\n"})
    srv = start_server(extra=section("site:a", hosts="*", root=a, errorPage="405 /errors/405.html"))
    r = get(srv, "/x.txt", method="PUT", body=b"x")
    assert r.status == 405 and r.header("Allow") is not None, r.headers
    assert r.body == b"custom 405\n"


# ==== CGI variables after routing ==============================================================

def test_cgi_variables_follow_rewrite_fallback_and_alias(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"index.php": ENV_PHP, "api.php": ENV_PHP})
    tools = make_root(tmp_path, "tools-outside", {"info.php": ENV_PHP})
    srv = start_server(extra=section("site:a", hosts="a.test", root=a, fallback="/index.php",
                                     alias="/tools %s" % tools)
                       + section("rewrite:wiki", match=r"^/wiki/(.*)$", to="/index.php?title=$1")
                       + section("rewrite:api", match=r"^/api/(.*)$", to="/api.php/$1")
                       + php())
    cases = [
        # path sent, SCRIPT_NAME, SCRIPT_FILENAME, PATH_INFO, QUERY_STRING
        ("/wiki/Main_Page?action=raw", "/index.php", os.path.join(a, "index.php"), "",
         "title=Main_Page&action=raw"),
        ("/api/v1/users?limit=5", "/api.php", os.path.join(a, "api.php"), "/v1/users", "limit=5"),
        ("/api/", "/api.php", os.path.join(a, "api.php"), "/", ""),
        ("/shop/cart?id=7", "/index.php", os.path.join(a, "index.php"), "", "id=7"),
        ("/tools/info.php/extra/x?q=1", "/tools/info.php", os.path.join(tools, "info.php"),
         "/extra/x", "q=1"),
    ]
    for sent, name, filename, path_info, query in cases:
        s = php_env(srv, sent, "a.test")["server"]
        got = (s.get("SCRIPT_NAME"), s.get("SCRIPT_FILENAME"), s.get("PATH_INFO", ""),
               s.get("QUERY_STRING"), s.get("REQUEST_URI"))
        assert got == (name, filename, path_info, query, sent), sent
        assert s["DOCUMENT_ROOT"] == a, sent
        assert s["REQUEST_METHOD"] == "GET" and s["SERVER_NAME"] == "a.test"


# ==== alias ====================================================================================

def test_alias_serves_static_files_and_scripts_outside_root(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"media/a.txt": b"root's media\n", "mediax.txt": b"mediax\n"})
    media = make_root(tmp_path, "media-dir", {"a.txt": b"alias a\n", "big/a.txt": b"shadowed\n",
                                              "env.php": ENV_PHP, "sub/index.html": b"alias index\n",
                                              "passwd": ("symlink", "/etc/passwd")})
    big = make_root(tmp_path, "big-dir", {"b.txt": b"big b\n"})
    srv = start_server(extra=section("site:a", hosts="*", root=a,
                                     alias=["/media %s" % media, "/media/big/ %s" % big])
                       + php())
    assert get(srv, "/media/a.txt").body == b"alias a\n"      # the alias, not root's media/
    assert get(srv, "/media/big/b.txt").body == b"big b\n"    # the longest prefix wins ...
    assert get(srv, "/media/big/a.txt").status == 404         # ... even for what it lacks
    assert get(srv, "/mediax.txt").body == b"mediax\n"        # whole segments only
    assert get(srv, "/media/sub/").body == b"alias index\n"
    r = get(srv, "/media/sub")
    assert r.status == 301 and r.header("Location").endswith("/media/sub/")
    assert get(srv, "/media/passwd").status == 403            # insideRoot: inside the alias
    assert get(srv, "/media/../etc/passwd").status in (400, 404)
    s = php_env(srv, "/media/env.php?x=1")["server"]
    assert s["SCRIPT_FILENAME"] == os.path.join(media, "env.php")
    assert s["SCRIPT_NAME"] == "/media/env.php" and s["DOCUMENT_ROOT"] == a
    assert s["QUERY_STRING"] == "x=1"


# ==== reload under load =======================================================================

class Load:
    """Requests fired continuously from two threads (one keep-alive connection at a time, one
    fresh connection per request) at a static file and a PHP page; every failure is kept."""

    def __init__(self, srv, host="a.test"):
        self.srv, self.host = srv, host
        self.stop = threading.Event()
        self.failures = []
        self.done = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(keep,), daemon=True)
                        for keep in (True, False)]

    def start(self):
        for t in self.threads:
            t.start()
        helpers.wait_until(lambda: self.done >= 20, 10, what="the load to start")

    def _check(self, path, r):
        want = b"static\n" if path == "/load.txt" else b"php load"
        if r.status != 200 or r.body != want:
            self.failures.append((path, r.status, r.body[:200]))
        with self.lock:
            self.done += 1

    def _run(self, keep):
        paths = ("/load.txt", "/load.php")
        n = 0
        while not self.stop.is_set() and n < 200000:
            try:
                with self.srv.connect(timeout=10) as c:
                    for _ in range(25 if keep else 1):
                        path = paths[n % 2]
                        n += 1
                        c.send(helpers.request("GET", path, [("Host", self.host)], host=None))
                        self._check(path, c.read_response(timeout=10))
                        if self.stop.is_set():
                            break
            except Exception as e:          # a reset, a timeout, a malformed answer
                self.failures.append(("exception", repr(e)))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads)


def test_reload_under_load_adds_a_site_a_rewrite_and_a_header_rule(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"load.txt": b"static\n", "load.php": b"<?php echo 'php load';",
                                  "index.html": b"site A\n", "target.txt": b"rewritten\n"})
    b = make_root(tmp_path, "b", {"index.html": b"site B\n"})
    base = section("site:a", hosts="a.test *", root=a) + php()
    srv = start_server(extra=base)
    conf = srv.config_text
    load = Load(srv)
    load.start()
    try:
        # 1. a site, by `fcgihost ctl reload`
        assert get(srv, "/", "b.test").body == b"site A\n"
        with open(srv.conf, "w") as f:
            f.write(conf + section("site:b", hosts="b.test", root=b))
        conf += section("site:b", hosts="b.test", root=b)
        before = load.done
        cp = srv.ctl("reload")
        assert cp.returncode == 0 and "reloaded" in cp.stdout, (cp.stdout, cp.stderr)
        assert get(srv, "/", "b.test").body == b"site B\n"
        assert get(srv, "/", "a.test").body == b"site A\n"
        # 2. a rewrite rule, by `fcgihost ctl reload`
        assert get(srv, "/pretty/x", "a.test").status == 404
        conf += section("rewrite:pretty", match=r"^/pretty/(.*)$", to="/target.txt")
        with open(srv.conf, "w") as f:
            f.write(conf)
        cp = srv.ctl("reload")
        assert cp.returncode == 0 and "reloaded" in cp.stdout, (cp.stdout, cp.stderr)
        assert get(srv, "/pretty/x", "a.test").body == b"rewritten\n"
        # 3. a header rule, by SIGHUP
        assert get(srv, "/load.txt", "a.test").header("X-Added") is None
        conf += section("headers:added", path="*", set="X-Added: yes")
        with open(srv.conf, "w") as f:
            f.write(conf)
        os.kill(srv.pid, signal.SIGHUP)
        helpers.wait_until(lambda: get(srv, "/load.txt", "a.test").header("X-Added") == "yes", 10,
                           what="the header rule after SIGHUP")
        assert get(srv, "/load.php", "a.test").header("X-Added") == "yes"
        # More reloads, by both ways, each changing the rule's value, for more overlap with the load.
        for i in range(10):
            with open(srv.conf, "w") as f:
                f.write(conf.replace("X-Added: yes", "X-Added: round-%d" % i))
            if i % 2:
                os.kill(srv.pid, signal.SIGHUP)
            else:
                cp = srv.ctl("reload")
                assert cp.returncode == 0 and "reloaded" in cp.stdout, (cp.stdout, cp.stderr)
            helpers.wait_until(
                lambda: get(srv, "/pretty/y", "a.test").header("X-Added") == "round-%d" % i, 10,
                what="reload %d" % i)
        helpers.wait_until(lambda: load.done >= before + 200, 20, what="more load after the reloads")
    finally:
        load.finish()
    assert load.failures == [], load.failures[:5]
    assert srv.status_json()["server"]["reloads"] == {"ok": 13, "failed": 0}


# ==== hostile clients ==========================================================================

def test_rst_right_after_a_request_an_error_page_reroutes(start_server, tmp_path):
    slow_err = b"<?php usleep(100000); echo 'slow error page';"
    a = make_root(tmp_path, "a", {"err.php": slow_err, "errors/404.html": b"static page",
                                  "ok.txt": b"ok"})
    b = make_root(tmp_path, "b", {"errors/404.html": b"static page", "ok.txt": b"ok"})
    srv = start_server(extra=section("site:a", hosts="a.test", root=a, errorPage="404 /err.php")
                       + section("site:b", hosts="b.test", root=b, errorPage="404 /errors/404.html")
                       + php())
    heads = [
        helpers.request("GET", "/missing", [("Host", "a.test")], host=None),
        helpers.request("GET", "/missing.php?x=1", [("Host", "a.test")], host=None),
        helpers.request("GET", "/missing", [("Host", "b.test")], host=None),
        helpers.request("POST", "/missing", [("Host", "a.test"), ("Content-Length", "10")],
                        body=b"0123456789", host=None),
        # pipelined: the second request is re-routed while the client is gone
        helpers.request("GET", "/missing", [("Host", "b.test")], host=None)
        + helpers.request("GET", "/missing.php", [("Host", "a.test")], host=None),
    ]
    for i in range(30):
        for mode in ("rst", "fin_rst"):
            c = hostile.HostileConn(srv.host, srv.port)
            c.send(heads[i % len(heads)])
            c.leave(mode)
    # The server lives, answers, and lets everything go.
    assert get(srv, "/missing", "a.test").body == b"slow error page"
    assert get(srv, "/missing", "b.test").body == b"static page"

    def quiet():
        st = srv.status_json()
        pool = st["pools"][0]
        return (st["server"]["connections"] == 0 and pool["processes"].get("busy", 0) == 0
                and pool["queue"]["queued"] == 0)
    helpers.wait_until(quiet, 10, what="no connection or busy process left")


def test_crlf_in_a_capture_splits_no_header(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"env.php": ENV_PHP})
    srv = start_server(extra=section("site:a", hosts="*", root=a) + php()
                       + section("rewrite:go", match=r"(?s)^/go/(.*)$", to="/target/$1", redirect=302)
                       + section("rewrite:abs", match=r"(?s)^/abs/(.*)$", to="https://x.example/$1",
                                 redirect=301)
                       + section("rewrite:q", match=r"(?s)^/q/(.*)$", to="/env.php?v=$1"))
    evil = "a%0d%0aSet-Cookie:%20evil=1%0d%0a%0d%0a<html>"
    for prefix, code in (("/go/", 302), ("/abs/", 301)):
        res = srv.raw(helpers.request("GET", prefix + evil, [("Connection", "close")]),
                      close_timeout=5)
        assert res.error is None, res
        r = res.first
        head = r.raw_head.decode("latin-1")
        assert "evil" not in "".join(k for k, _ in r.headers).lower()
        assert not re.search(r"^Set-Cookie", head, re.M | re.I), head
        assert res.extra == b"", res.extra
        assert r.status == code, r
        loc = r.header("Location")
        assert "\r" not in loc and "\n" not in loc
        assert loc.endswith("/a%0D%0ASet-Cookie:%20evil=1%0D%0A%0D%0A%3Chtml%3E"), loc
    e = php_env(srv, "/q/" + evil)
    assert e["get"]["v"] == "a\r\nSet-Cookie: evil=1\r\n\r\n<html>"
    assert "\r" not in e["server"]["QUERY_STRING"] and "\n" not in e["server"]["QUERY_STRING"]


# ==== behind a proxy ===========================================================================

def test_x_forwarded_for_from_a_trusted_peer(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"env.php": ENV_PHP})
    srv = start_server(server_opts={"trustedProxies": "127.0.0.1 10.0.0.0/8"},
                       extra=section("site:a", hosts="*", root=a) + php())
    e = php_env(srv, "/env.php?one", headers={"X-Forwarded-For": "203.0.113.7",
                                              "X-Forwarded-Proto": "https"})
    s = e["server"]
    assert s["REMOTE_ADDR"] == "203.0.113.7"
    assert s.get("HTTPS") == "on" and s.get("REQUEST_SCHEME") == "https"
    # Walked from the right past trusted proxies (10.1.2.3 is one); the spoofed left part is not
    # believed.
    s = php_env(srv, "/env.php?two", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.9, 10.1.2.3",
                                              "X-Forwarded-Proto": "http"})["server"]
    assert s["REMOTE_ADDR"] == "198.51.100.9" and s.get("HTTPS", "off") in ("", "off")
    s = php_env(srv, "/env.php?three", headers={"X-Forwarded-For": "[2001:db8::5]:4711"})["server"]
    assert s["REMOTE_ADDR"] == "2001:db8::5"
    s = php_env(srv, "/env.php", headers={"X-Forwarded-For": "10.0.0.1, 10.0.0.2"})["server"]
    assert s["REMOTE_ADDR"] == "10.0.0.1"                     # all trusted: the leftmost
    # Several fields are one list, in order; the nearest proxy's X-Forwarded-Proto counts.
    hs = [("Host", "a"), ("X-Forwarded-For", "192.0.2.44"), ("X-Forwarded-For", "10.9.9.9"),
          ("X-Forwarded-Proto", "https, http"), ("Connection", "close")]
    res = srv.raw(helpers.request("GET", "/env.php?four", hs, host=None))
    s = env_of(res.first)["server"]
    assert s["REMOTE_ADDR"] == "192.0.2.44" and s.get("HTTPS", "off") in ("", "off")
    # An element that is not an address stops the walk: the peer stays the client.
    s = php_env(srv, "/env.php?five", headers={"X-Forwarded-For": "203.0.113.9, bogus"})["server"]
    assert s["REMOTE_ADDR"] == "127.0.0.1"
    srv.wait_for_log(r'^203\.0\.113\.7 - - \[.*"GET /env\.php\?one HTTP/1\.1" 200', which="access")
    srv.wait_for_log(r'^198\.51\.100\.9 - - \[.*"GET /env\.php\?two ', which="access")


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(start_server, tmp_path):
    a = make_root(tmp_path, "a", {"env.php": ENV_PHP})
    srv = start_server(server_opts={"trustedProxies": "10.0.0.0/8"},
                       extra=section("site:a", hosts="*", root=a) + php())
    s = php_env(srv, "/env.php?untrusted", headers={"X-Forwarded-For": "203.0.113.7",
                                                    "X-Forwarded-Proto": "https"})["server"]
    assert s["REMOTE_ADDR"] == "127.0.0.1" and s["REMOTE_PORT"] != "0"
    assert s.get("HTTPS", "off") in ("", "off") and s.get("REQUEST_SCHEME") == "http"
    assert s["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"          # passed on, believed by nobody
    srv.wait_for_log(r'^127\.0\.0\.1 - - \[.*"GET /env\.php\?untrusted ', which="access")


def proxy_v2(src, dst, sport, dport, command=0x1, tlvs=b""):
    """A PROXY protocol v2 header (TCP over IPv4 or IPv6; command 0 is LOCAL)."""
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    if command == 0:
        return sig + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    if ":" in src:
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = 0x21
    else:
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
        fam = 0x11
    payload = addrs + struct.pack("!HH", sport, dport) + tlvs
    return sig + bytes([0x21, fam]) + struct.pack("!H", len(payload)) + payload


def proxy_server(start_server, tmp_path, **server_opts):
    a = make_root(tmp_path, "a", {"env.php": ENV_PHP, "t.txt": b"text\n"})
    port = free_ports(1)[0]
    srv = start_server(server_opts=server_opts,
                       extra="listen = 127.0.0.1:%d proxy\n\n" % port
                       + section("site:a", hosts="*", root=a) + php())
    addr = ("127.0.0.1", port)
    helpers.wait_until(lambda: _connects(addr), 5, what="the proxy listener")
    return srv, addr


def over_proxy(addr, header, paths, pieces=1):
    """Send `header` then one GET per path on one connection; returns the responses."""
    with helpers.RawConn.tcp(addr[0], addr[1]) as c:
        step = max(1, len(header) // pieces)
        for i in range(0, len(header), step):
            c.send(header[i:i + step])
        out = []
        for p in paths:
            c.send(helpers.request("GET", p, [("Host", "a.test")], host=None))
            out.append(c.read_response())
        return out


def test_proxy_protocol_v1_reaches_remote_addr_and_the_access_log(start_server, tmp_path):
    srv, addr = proxy_server(start_server, tmp_path)
    r1, r2 = over_proxy(addr, b"PROXY TCP4 192.0.2.10 192.0.2.1 56324 80\r\n",
                        ["/env.php?v1a", "/env.php?v1b"])
    for r in (r1, r2):                  # every request of the connection
        s = env_of(r)["server"]
        assert (s["REMOTE_ADDR"], s["REMOTE_PORT"]) == ("192.0.2.10", "56324")
    (r,) = over_proxy(addr, b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n", ["/env.php?v1c"],
                      pieces=3)
    s = env_of(r)["server"]
    assert (s["REMOTE_ADDR"], s["REMOTE_PORT"]) == ("2001:db8::7", "40000")
    (r,) = over_proxy(addr, b"PROXY UNKNOWN\r\n", ["/env.php?v1d"])
    assert env_of(r)["server"]["REMOTE_ADDR"] == "127.0.0.1"
    srv.wait_for_log(r'^192\.0\.2\.10 - - \[.*"GET /env\.php\?v1a ', which="access")
    srv.wait_for_log(r'^192\.0\.2\.10 - - \[.*"GET /env\.php\?v1b ', which="access")
    srv.wait_for_log(r'^2001:db8::7 - - \[.*"GET /env\.php\?v1c ', which="access")
    # The plain listener takes no PROXY header: there it is a bad request.
    res = srv.raw(b"PROXY TCP4 192.0.2.10 192.0.2.1 56324 80\r\nGET /t.txt HTTP/1.1\r\nHost: a\r\n\r\n",
                  close_timeout=5)
    assert res.status in (400, 501, 505), res


def test_proxy_protocol_v2_reaches_remote_addr_and_the_access_log(start_server, tmp_path):
    srv, addr = proxy_server(start_server, tmp_path)
    (r,) = over_proxy(addr, proxy_v2("198.51.100.20", "192.0.2.1", 61000, 8080), ["/env.php?v2a"])
    s = env_of(r)["server"]
    assert (s["REMOTE_ADDR"], s["REMOTE_PORT"]) == ("198.51.100.20", "61000")
    # IPv6, with TLVs (an authority, a no-op), the header arriving in pieces.
    tlvs = b"\x02" + struct.pack("!H", 11) + b"example.org" + b"\x04" + struct.pack("!H", 3) + b"\0\0\0"
    (r, r2) = over_proxy(addr, proxy_v2("2001:db8::42", "2001:db8::1", 1234, 443, tlvs=tlvs),
                         ["/env.php?v2b", "/t.txt"], pieces=4)
    s = env_of(r)["server"]
    assert (s["REMOTE_ADDR"], s["REMOTE_PORT"]) == ("2001:db8::42", "1234")
    assert r2.status == 200 and r2.body == b"text\n"
    srv.wait_for_log(r'^198\.51\.100\.20 - - \[.*"GET /env\.php\?v2a ', which="access")
    srv.wait_for_log(r'^2001:db8::42 - - \[.*"GET /t\.txt ', which="access")


def test_proxy_v2_local_keeps_the_peer(start_server, tmp_path):
    srv, addr = proxy_server(start_server, tmp_path)
    (r,) = over_proxy(addr, proxy_v2(None, None, 0, 0, command=0), ["/env.php?local"])
    s = env_of(r)["server"]
    assert s["REMOTE_ADDR"] == "127.0.0.1" and s["REMOTE_PORT"] != "0"
    srv.wait_for_log(r'^127\.0\.0\.1 - - \[.*"GET /env\.php\?local ', which="access")


def test_plain_http_on_a_proxy_listener_is_closed_without_an_answer(start_server, tmp_path):
    srv, addr = proxy_server(start_server, tmp_path)
    bad = [
        b"GET /t.txt HTTP/1.1\r\nHost: a.test\r\n\r\n",
        b"PROXY TCP4 999.0.2.10 192.0.2.1 56324 80\r\nGET /t.txt HTTP/1.1\r\nHost: a\r\n\r\n",
        b"PROXY TCP4 192.0.2.10 192.0.2.1 56324\r\nGET /t.txt HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + b"\0" * 12 + b"GET / HTTP/1.1\r\n\r\n",  # version 3
        b"PROXY " + b"A" * 200 + b"\r\n",
    ]
    for data in bad:
        with helpers.RawConn.tcp(*addr) as c:
            c.send(data)
            assert c.wait_closed(5), data
            assert c.buf == b"", (data, c.buf)
    srv.wait_for_log(r"no valid PROXY protocol header")
    # The listener still works for a proper header.
    (r,) = over_proxy(addr, b"PROXY TCP4 192.0.2.99 192.0.2.1 1000 80\r\n", ["/env.php"])
    assert env_of(r)["server"]["REMOTE_ADDR"] == "192.0.2.99"


def test_proxy_listener_and_trusted_proxies_together(start_server, tmp_path):
    """With a proxy listener, the peer trustedProxies tests is the client the header named."""
    srv, addr = proxy_server(start_server, tmp_path, trustedProxies="192.0.2.0/24")
    hdr = b"PROXY TCP4 192.0.2.5 192.0.2.1 5555 80\r\n"
    with helpers.RawConn.tcp(*addr) as c:
        c.send(hdr + helpers.request("GET", "/env.php", [("Host", "a"), ("X-Forwarded-For", "203.0.113.50")],
                                     host=None))
        s = env_of(c.read_response())["server"]
    assert s["REMOTE_ADDR"] == "203.0.113.50"
    with helpers.RawConn.tcp(*addr) as c:
        c.send(b"PROXY TCP4 198.51.100.5 192.0.2.1 5555 80\r\n"
               + helpers.request("GET", "/env.php", [("Host", "a"), ("X-Forwarded-For", "203.0.113.50")],
                                 host=None))
        s = env_of(c.read_response())["server"]
    assert s["REMOTE_ADDR"] == "198.51.100.5"


HAPROXY_CFG = """\
global
    maxconn 200

defaults
    mode tcp
    timeout connect 5s
    timeout client 20s
    timeout server 20s

frontend fe
    bind 127.0.0.1:{front}
    default_backend be

backend be
    server fcgihost 127.0.0.1:{back} send-proxy-v2
"""


def test_haproxy_in_front_with_send_proxy_v2(start_server, tmp_path):
    assert os.access(HAPROXY, os.X_OK), "haproxy is not installed (scripts/deps.sh test)"
    srv, addr = proxy_server(start_server, tmp_path)
    front = free_ports(1)[0]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(front=front, back=addr[1]))
    out = open(tmp_path / "haproxy.out", "wb")
    hap = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    try:
        helpers.wait_until(lambda: hap.poll() is None and _connects(("127.0.0.1", front)), 10,
                           what="haproxy listening")
        for source in ("127.0.0.1", "127.0.0.2"):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            s.bind((source, 0))
            s.connect(("127.0.0.1", front))
            client_port = s.getsockname()[1]
            with helpers.RawConn(s, timeout=10) as c:
                c.send(helpers.request("GET", "/env.php?via=haproxy-" + source, [("Host", "a.test")],
                                       host=None))
                srv_env = env_of(c.read_response())["server"]
                c.send(helpers.request("GET", "/t.txt", [("Host", "a.test")], host=None))
                assert c.read_response().body == b"text\n"
            assert srv_env["REMOTE_ADDR"] == source
            assert srv_env["REMOTE_PORT"] == str(client_port)   # the client's, not haproxy's
            srv.wait_for_log(r'^%s - - \[.*"GET /env\.php\?via=haproxy-%s ' % (re.escape(source),
                                                                            re.escape(source)),
                             which="access")
    finally:
        hap.terminate()
        try:
            hap.wait(10)
        except subprocess.TimeoutExpired:
            hap.kill()
            hap.wait()
        out.close()
    assert "no valid PROXY" not in srv.error_log()


def test_proxy_clients_count_for_max_connections_per_ip(start_server, tmp_path):
    srv, addr = proxy_server(start_server, tmp_path, maxConnectionsPerIp=1)
    first = helpers.RawConn.tcp(*addr)
    try:
        first.send(b"PROXY TCP4 192.0.2.7 192.0.2.1 1000 80\r\n"
                   + helpers.request("GET", "/t.txt", [("Host", "a")], host=None))
        assert first.read_response().status == 200          # its header was taken and counted
        # Another connection of the same client (as the header says): closed, nothing answered.
        with helpers.RawConn.tcp(*addr) as c:
            c.send(b"PROXY TCP4 192.0.2.7 192.0.2.1 1001 80\r\n"
                   + helpers.request("GET", "/t.txt", [("Host", "a")], host=None))
            assert c.wait_closed(5) and c.buf == b""
        # Another client through the same proxy connection address: served.
        (r,) = over_proxy(addr, b"PROXY TCP4 192.0.2.8 192.0.2.1 1002 80\r\n", ["/t.txt"])
        assert r.status == 200
    finally:
        first.close()
    # Once the first connection is gone, its client may come back.
    def back():
        with helpers.RawConn.tcp(*addr) as c:
            c.send(b"PROXY TCP4 192.0.2.7 192.0.2.1 1003 80\r\n"
                   + helpers.request("GET", "/t.txt", [("Host", "a"), ("Connection", "close")], host=None))
            try:
                return c.read_response().status == 200
            except (helpers.Closed, helpers.Timeout):
                return False
    helpers.wait_until(back, 5, what="the client's connection to be counted no more")


def test_status_page_allows_the_client_the_proxy_names(start_server, tmp_path):
    srv, addr = proxy_server(start_server, tmp_path)
    (r,) = over_proxy(addr, b"PROXY TCP4 192.0.2.10 192.0.2.1 5000 80\r\n", ["/fcgihost-status"])
    assert r.status == 403
    (r,) = over_proxy(addr, b"PROXY TCP4 127.0.0.9 127.0.0.1 5000 80\r\n", ["/fcgihost-status"])
    assert r.status == 200 and json.loads(r.body)["server"]
    (r,) = over_proxy(addr, proxy_v2(None, None, 0, 0, command=0), ["/fcgihost-status"])
    assert r.status == 200                                   # LOCAL: the proxy itself, 127.0.0.1


def test_a_proxy_header_that_never_completes_is_closed(start_server, tmp_path):
    srv, addr = proxy_server(start_server, tmp_path, headerTimeout=1)
    conns = []
    try:
        for partial in (b"PROXY TCP4 192.0.2.1", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0", b""):
            c = helpers.RawConn.tcp(*addr)
            conns.append(c)
            if partial:
                c.send(partial)
        for c in conns:
            assert c.wait_closed(8) and c.buf == b""
    finally:
        for c in conns:
            c.close()
