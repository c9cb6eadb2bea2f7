"""Real PHP applications nobody here wrote, from Debian's packages, served by fcgihost through the
configurations of examples/sites/ (issue 11): MediaWiki on SQLite with short URLs (and a page shown
by headless Chromium), DokuWiki with nice URLs, phpMyAdmin and WordPress on a MariaDB server started
here on a private datadir and socket, and a Laravel-style front controller.

One source: the tests load examples/sites/NAME.conf themselves, the files that docs/guide.md shows
in its "Hosting ..." sections (a test below checks that the guide shows them as they are). The only
change made to a file before it is included is a substitution of whole strings, each of which must
occur in it (`example()`): a Debian path becomes this test's private copy of it, so that nothing
outside the test's temporary directories is written (`SUBSTITUTIONS` lists them all), and
WordPress's host name becomes "localhost", the one name that resolves here, because WordPress's
installer requests its own pages to test pretty permalinks. Everything else — sites, rewrite rules,
aliases, fallbacks, denies, header rules, pools and handlers — runs as written.

One fcgihost serves the five sites (one module-scoped server); the applications are set up on first
use, each by its own module-scoped fixture. Chromium is driven over the DevTools protocol through
--remote-debugging-pipe, and its screenshot kept as an artifact in the test's temporary directory.
No request of these tests leaves the machine: Python and Chromium resolve the example host names to
127.0.0.1 and nothing else; WordPress blocks external HTTP.
"""
import base64
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import zlib

import pytest
import requests
import urllib3.util.connection

import helpers
from conftest import REPO, Server, fcgihost_bin, free_ports, write_tree

EXAMPLES = os.path.join(REPO, "examples", "sites")
GUIDE = os.path.join(REPO, "docs", "guide.md")
SITES = ("wordpress", "mediawiki", "dokuwiki", "phpmyadmin", "laravel")
PHP = "/usr/bin/php"
CHROMIUM = "/usr/lib/chromium/chromium"   # the binary itself: /usr/bin/chromium is a shell wrapper
MARIADBD = "/usr/sbin/mariadbd"
PHP_SESSIONS = "/var/lib/php/sessions"
PMA_TWIG_CACHE = "/var/lib/phpmyadmin/tmp/twig"

# The Debian path (or name) in each example -> what the test puts there instead: a function of the
# test's directory. Nothing else of a file is changed.
SUBSTITUTIONS = {
    "wordpress": {"/usr/share/wordpress": "wordpress",                  # a copy: its wp-config.php
                  "/var/lib/wordpress/wp-content": "wp-content",        # reads our config
                  "blog.example.com": None},                            # -> localhost (see above)
    "mediawiki": {"/etc/mediawiki/LocalSettings.php": "mediawiki/LocalSettings.php",
                  "/var/lib/mediawiki/images": "mediawiki/images"},     # root: Debian's own tree
    "dokuwiki": {"/usr/share/dokuwiki": "dokuwiki"},                    # a copy: its preload.php
                                                                        # names our conf directory
    "phpmyadmin": {"/run/mysqld/mysqld.sock": None},                    # -> the test's MariaDB
    "laravel": {"/srv/laravel": "laravel"},                             # not packaged: a tiny app
}

ADMIN_USER = "fcgiadmin"
ADMIN_PASSWORD = "Fcgihost-test-Passw0rd!"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (MariaDB, Debian's trees)")


# ==== the examples ===========================================================================

def example_text(name):
    with open(os.path.join(EXAMPLES, name + ".conf"), encoding="utf-8") as f:
        return f.read()


def example(name, values):
    """examples/sites/NAME.conf with each key of SUBSTITUTIONS[name] replaced by values[key]."""
    text = example_text(name)
    for old in SUBSTITUTIONS[name]:
        assert old in text, "examples/sites/%s.conf no longer mentions %s" % (name, old)
        text = text.replace(old, values[old])
    return text


def example_host(name):
    m = re.search(r"(?m)^hosts = (\S+)", example_text(name))
    assert m, "examples/sites/%s.conf has no hosts line" % name
    return m.group(1)


# ==== the network as the tests see it: example names are 127.0.0.1, nothing else resolves =====

_LOCAL_NAMES = {example_host(n) for n in SITES} | {"localhost", "127.0.0.1"}
_real_create_connection = urllib3.util.connection.create_connection


def _local_create_connection(address, *args, **kw):
    host, port = address
    if host not in _LOCAL_NAMES:
        raise OSError("test_75_apps: %s is not a local name" % host)
    return _real_create_connection(("127.0.0.1", port), *args, **kw)


@pytest.fixture(scope="module", autouse=True)
def local_names():
    mp = pytest.MonkeyPatch()
    mp.setattr(urllib3.util.connection, "create_connection", _local_create_connection)
    yield
    mp.undo()


class Browser(requests.Session):
    """A requests session whose PHP session cookies are forgotten on the server at the end
    (php-cgi writes them to /var/lib/php/sessions, Debian's session.save_path)."""
    opened = []

    def __init__(self, base):
        super().__init__()
        self.base = base
        self.headers["User-Agent"] = "fcgihost-test_75"
        Browser.opened.append(self)

    def url(self, path):
        return self.base + path

    def go(self, method, path, **kw):
        kw.setdefault("timeout", 60)
        kw.setdefault("allow_redirects", False)
        return self.request(method, self.url(path), **kw)


def _forget_php_sessions():
    for b in Browser.opened:
        for c in b.cookies:
            if re.fullmatch(r"[A-Za-z0-9,-]{16,128}", c.value or ""):
                try:
                    os.unlink(os.path.join(PHP_SESSIONS, "sess_" + c.value))
                except OSError:
                    pass
    Browser.opened.clear()


def form_fields(html, form_re):
    """The named inputs of the first <form> whose opening tag matches form_re: {name: value}."""
    m = re.search(r"(<form\b[^>]*" + form_re + r"[^>]*>)(.*?)</form>", html, re.S)
    assert m, "no form matching %r in:\n%s" % (form_re, html[:3000])
    fields = {}
    for tag in re.findall(r"<(?:input|button)\b[^>]*>", m.group(2)):
        name = re.search(r'\bname="([^"]*)"', tag)
        if not name:
            continue
        value = re.search(r'\bvalue="([^"]*)"', tag)
        kind = re.search(r'\btype="([^"]*)"', tag)
        if kind and kind.group(1) in ("checkbox", "radio") and "checked" not in tag:
            continue
        fields[_unescape(name.group(1))] = _unescape(value.group(1)) if value else ""
    action = re.search(r'\baction="([^"]*)"', m.group(1))
    return (_unescape(action.group(1)) if action else ""), fields


def _unescape(s):
    return (s.replace("&amp;", "&").replace("&quot;", '"').replace("&#039;", "'")
            .replace("&lt;", "<").replace("&gt;", ">"))


def path_of(url):
    """The path and query of an absolute URL of one of our sites."""
    return re.sub(r"^https?://[^/]+", "", url)


def access_lines(srv, since=0):
    return srv.access_log()[since:].splitlines()


def statuses(lines, marker):
    """(status, method, target) of the access-log lines that contain marker."""
    out = []
    for line in lines:
        if marker not in line:
            continue
        m = re.search(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) ', line)
        assert m, line
        out.append((int(m.group(3)), m.group(1), m.group(2)))
    return out


def png_1x1():
    """A valid 1x1 PNG (no imaging library here)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00")) + chunk(b"IEND", b""))


# ==== the private copies the examples are pointed at ==========================================

LARAVEL_INDEX = r"""<?php
// public/index.php of a Laravel-style application: one front controller routes by REQUEST_URI
// and REQUEST_METHOD, as Illuminate\Http\Request does (with the _method override of HTML forms).
$method = $_SERVER['REQUEST_METHOD'];
if ($method === 'POST' && isset($_POST['_method'])) $method = strtoupper($_POST['_method']);
$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH));
$body = file_get_contents('php://input');
function reply($status, $data) {
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($data + ['server' => array_intersect_key($_SERVER, array_flip([
        'REQUEST_URI', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'QUERY_STRING',
        'REQUEST_METHOD', 'DOCUMENT_ROOT']))]);
    exit;
}
if ($path === '/') reply(200, ['route' => 'home']);
if ($path === '/users' && $method === 'GET') reply(200, ['route' => 'users.index', 'query' => $_GET]);
if ($path === '/users' && $method === 'POST') reply(201, ['route' => 'users.store', 'body' => json_decode($body, true)]);
if (preg_match('#^/users/(\d+)$#', $path, $m)) {
    switch ($method) {
    case 'GET': case 'HEAD': reply(200, ['route' => 'users.show', 'id' => (int)$m[1], 'query' => $_GET]);
    case 'PUT': case 'PATCH': reply(200, ['route' => 'users.update', 'id' => (int)$m[1], 'verb' => $method, 'body' => json_decode($body, true)]);
    case 'DELETE': reply(204, []);
    }
    http_response_code(405); header('Allow: GET, HEAD, PUT, PATCH, DELETE'); exit;
}
reply(404, ['route' => null, 'message' => 'Not Found']);
"""


def copy_debian_tree(src, dst):
    """A copy of a Debian package's tree, its links kept as links: a relative link that leaves the
    tree (wp-includes/js/underscore.js -> ../../../javascript/...) is made absolute, so that it
    names what it names in the original."""
    shutil.copytree(src, dst, symlinks=True)
    for d, dirs, files in os.walk(dst):
        for name in dirs + files:
            p = os.path.join(d, name)
            if not os.path.islink(p):
                continue
            target = os.readlink(p)
            if os.path.isabs(target):
                continue
            orig = os.path.join(src, os.path.relpath(d, dst))
            real = os.path.normpath(os.path.join(orig, target))
            if real != src and not real.startswith(src + "/"):
                os.unlink(p)
                os.symlink(real, p)


def build_trees(base, db_socket):
    """Every directory the examples name, privately under `base`; returns the substitution values."""
    j = lambda *p: os.path.join(base, *p)  # noqa: E731
    # WordPress: a copy of Debian's /usr/share/wordpress whose wp-config.php (Debian's) looks for
    # config-HOST.php in our directory instead of /etc/wordpress, and a copy of wp-content.
    copy_debian_tree("/usr/share/wordpress", j("wordpress"))
    os.unlink(j("wordpress", ".htaccess"))          # a link to /etc/wordpress/htaccess
    with open(j("wordpress", "wp-config.php")) as f:
        cfg = f.read()
    assert "/etc/wordpress/" in cfg
    os.unlink(j("wordpress", "wp-config.php"))      # (a new file, never the copy's inode)
    with open(j("wordpress", "wp-config.php"), "w") as f:
        f.write(cfg.replace("/etc/wordpress/", j("etc-wordpress") + "/"))
    shutil.copytree("/var/lib/wordpress/wp-content", j("wp-content"), symlinks=True)
    assert os.path.isdir(j("wp-content", "themes", "twentytwentythree")), \
        "wordpress-theme-twentytwentythree is missing (scripts/deps.sh test installs it)"
    os.makedirs(j("etc-wordpress"))
    salts = "".join("define('%s', '%s');\n" % (k, base64.b64encode(os.urandom(32)).decode())
                    for k in ("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
                              "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"))
    with open(j("etc-wordpress", "config-localhost.php"), "w") as f:
        f.write("<?php\n"
                "define('DB_NAME', 'wordpress');\n"
                "define('DB_USER', 'wordpress');\n"
                "define('DB_PASSWORD', 'wp-Passw0rd');\n"
                "define('DB_HOST', 'localhost:%s');\n"
                "define('WP_CONTENT_DIR', '%s');\n"
                "define('WP_HTTP_BLOCK_EXTERNAL', true);   // nothing leaves the machine\n"
                "define('DISABLE_WP_CRON', true);          // no background requests of its own\n"
                "%s" % (db_socket, j("wp-content"), salts))
    # MediaWiki: Debian's tree as it is; LocalSettings.php and the uploads here.
    os.makedirs(j("mediawiki", "images"))
    with open(j("mediawiki", "images", "fcgihost.txt"), "w") as f:
        f.write("an uploaded file\n")
    with open(j("mediawiki", "images", "evil.php"), "w") as f:
        f.write("<?php echo 'ran';\n")
    # DokuWiki: a copy of its tree whose inc/preload.php (Debian's: it sets the configuration
    # directory) names our copy of /etc/dokuwiki, whose local.php names our copy of the pages.
    copy_debian_tree("/usr/share/dokuwiki", j("dokuwiki"))
    os.unlink(j("dokuwiki", ".htaccess"))           # a link to /etc/dokuwiki/htaccess
    pre = j("dokuwiki", "inc", "preload.php")
    with open(pre) as f:
        text = f.read()
    assert "/etc/dokuwiki" in text
    os.unlink(pre)
    with open(pre, "w") as f:
        f.write(text.replace("/etc/dokuwiki", j("dokuwiki-conf")))
    shutil.copytree("/etc/dokuwiki", j("dokuwiki-conf"), symlinks=False)
    shutil.copytree("/var/lib/dokuwiki/data", j("dokuwiki-data"), symlinks=True)
    with open(j("dokuwiki-conf", "acl.auth.php"), "w") as f:
        f.write("# acl.auth.php\n*\t@ALL\t8\n")   # anyone may edit this private wiki
    with open(j("dokuwiki-conf", "users.auth.php"), "w") as f:
        f.write("# users.auth.php\n")
    with open(j("dokuwiki-conf", "local.php"), "a") as f:
        f.write("\n$conf['savedir'] = '%s';\n$conf['userewrite'] = 1;\n$conf['title'] = 'Fcgihost DokuWiki';\n"
                % j("dokuwiki-data"))
    # Laravel: not packaged; the smallest application of its shape.
    write_tree(j("laravel"), {
        "public/index.php": LARAVEL_INDEX,
        "public/build/app.js": "console.log('built');\n",
        "public/robots.txt": "User-agent: *\n",
        "storage/app/public/avatar.txt": "a stored file\n",
        "storage/app/public/evil.php": "<?php echo 'ran';\n",
        ".env": "APP_KEY=secret\n",
    })
    return {
        "wordpress": {"/usr/share/wordpress": j("wordpress"),
                      "/var/lib/wordpress/wp-content": j("wp-content"),
                      "blog.example.com": "localhost"},
        "mediawiki": {"/etc/mediawiki/LocalSettings.php": j("mediawiki", "LocalSettings.php"),
                      "/var/lib/mediawiki/images": j("mediawiki", "images")},
        "dokuwiki": {"/usr/share/dokuwiki": j("dokuwiki")},
        "phpmyadmin": {"/run/mysqld/mysqld.sock": db_socket},
        "laravel": {"/srv/laravel": j("laravel")},
    }


# ==== MariaDB on a private datadir and socket =================================================

class MariaDB:
    def __init__(self, base):
        self.base = base
        self.datadir = os.path.join(base, "data")
        self.socket = os.path.join(base, "mysqld.sock")
        self.log = os.path.join(base, "mariadbd.err")
        self.proc = None

    def sql(self, statements, user="root", password=None):
        argv = ["mariadb", "--no-defaults", "-S", self.socket, "-u", user, "--batch", "-e", statements]
        if password is not None:
            argv.insert(5, "-p" + password)
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, cp.stderr
        return cp.stdout

    def start(self):
        cp = subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + self.datadir,
                             "--user=root", "--auth-root-authentication-method=socket",
                             "--skip-test-db"], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        self.proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", "--datadir=" + self.datadir, "--socket=" + self.socket,
             "--pid-file=" + os.path.join(self.base, "mariadbd.pid"), "--skip-networking",
             "--user=root", "--log-error=" + self.log, "--innodb-buffer-pool-size=32M",
             "--performance-schema=OFF", "--skip-log-bin"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("mariadbd exited %s:\n%s" % (self.proc.returncode, _tail(self.log)))
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.socket)
                return True
            except OSError:
                return False
            finally:
                s.close()
        helpers.wait_until(up, 60, what="mariadbd accepting on its socket")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


@pytest.fixture(scope="module")
def mariadb_dir(tmp_path_factory):
    """Where the MariaDB server lives (its socket path is in the configuration from the start)."""
    return str(tmp_path_factory.mktemp("mariadb"))


@pytest.fixture(scope="module")
def mariadb(mariadb_dir):
    db = MariaDB(mariadb_dir)
    try:
        db.start()
        db.sql("CREATE DATABASE wordpress; "
               "CREATE USER 'wordpress'@'localhost' IDENTIFIED BY 'wp-Passw0rd'; "
               "GRANT ALL ON wordpress.* TO 'wordpress'@'localhost'; "
               "CREATE DATABASE fcgihost_pma; "
               "CREATE USER 'pmauser'@'localhost' IDENTIFIED BY 'pma-Passw0rd'; "
               "GRANT ALL ON fcgihost_pma.* TO 'pmauser'@'localhost'; "
               "CREATE TABLE fcgihost_pma.visitors (id INT PRIMARY KEY, name VARCHAR(40)); "
               "INSERT INTO fcgihost_pma.visitors VALUES (1, 'fcgihost');")
        yield db
    finally:
        db.stop()


# ==== the one fcgihost that serves the five sites =============================================

@pytest.fixture(scope="module")
def apps(tmp_path_factory, mariadb_dir):
    """The server, with every example included (their paths pointed at private copies)."""
    base = str(tmp_path_factory.mktemp("apps"))
    port = free_ports(1)[0]
    db_socket = MariaDB(mariadb_dir).socket
    values = build_trees(base, db_socket)
    sites_d = os.path.join(base, "sites.d")
    os.makedirs(sites_d)
    for name in SITES:
        with open(os.path.join(sites_d, name + ".conf"), "w") as f:
            f.write(example(name, values[name]))
    srv_dir = os.path.join(base, "server")
    os.makedirs(srv_dir)
    listen = "127.0.0.1:%d" % port
    config = ("[server]\nlisten = %s\nroot = %s\naccessLog = %s\nerrorLog = %s\n"
              "controlSocket = %s\nruntimeDir = %s\nuser = root\nheaderTimeout = 30\n"
              "keepAliveTimeout = 30\nshutdownTimeout = 10\ninclude = %s/*.conf\n"
              % (listen, os.path.join(srv_dir, "root"), os.path.join(srv_dir, "access.log"),
                 os.path.join(srv_dir, "error.log"), os.path.join(srv_dir, "run", "control.sock"),
                 os.path.join(srv_dir, "run"), sites_d))
    twig_before = os.path.exists(PMA_TWIG_CACHE)
    srv = Server(srv_dir, listen=[listen], config=config)
    srv.base, srv.values = base, values
    try:
        yield srv
    finally:
        problems = srv.stop()
        # The applications' PHP warnings are logged as warnings (stderrMode IgnoreAndReturn200:
        # WordPress's installer prints two); nothing here is an error of the server's.
        problems += ["error log: " + l for l in srv.error_log().splitlines() if "[error]" in l][:10]
        _forget_php_sessions()
        if not twig_before:   # phpMyAdmin's template cache, made by this test's php-cgi as root
            shutil.rmtree(PMA_TWIG_CACHE, ignore_errors=True)
        if problems:
            pytest.fail("server teardown: " + "; ".join(problems), pytrace=False)


def site_url(srv, name):
    host = "localhost" if name == "wordpress" else example_host(name)
    return "http://%s:%d" % (host, srv.port)


# ==== the examples as documented ==============================================================

def test_examples_pass_fcgihost_t_as_debian_installs_the_applications(tmp_path):
    """Each example, unchanged, is a valid configuration on a machine with Debian's packages
    (Laravel, not packaged, with its root pointed at an empty application)."""
    lara = tmp_path / "laravel"
    (lara / "public").mkdir(parents=True)
    (lara / "storage" / "app" / "public").mkdir(parents=True)
    (tmp_path / "root").mkdir()
    includes = []
    for name in SITES:
        if name == "laravel":
            p = tmp_path / "laravel.conf"
            p.write_text(example_text(name).replace("/srv/laravel", str(lara)))
            includes.append(str(p))
        else:
            includes.append(os.path.join(EXAMPLES, name + ".conf"))
    conf = tmp_path / "fcgihost.conf"
    conf.write_text("[server]\nlisten = 127.0.0.1:1\nroot = %s\n" % (tmp_path / "root")
                    + "".join("include = %s\n" % i for i in includes))
    cp = subprocess.run([fcgihost_bin(), "-t", "-c", str(conf)], capture_output=True, text=True,
                        timeout=30, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # Each file is a drop-in: its rules and handlers are limited to its own site.
    for name in SITES:
        text = example_text(name)
        site = re.findall(r"(?m)^\[site:([^\]]+)\]", text)
        assert len(site) == 1, name
        for sect in re.split(r"(?m)^(?=\[)", text):
            if re.match(r"\[(handler|rewrite|headers):", sect):
                assert re.search(r"(?m)^site = %s$" % re.escape(site[0]), sect), (name, sect)
            if re.match(r"\[handler:", sect):
                assert re.search(r"(?m)^verb = \*$", sect), (name, sect)


def test_guide_shows_each_example_as_it_is():
    """docs/guide.md's "Hosting ..." sections show the very files the tests below load."""
    with open(GUIDE, encoding="utf-8") as f:
        guide = f.read()
    sections = re.split(r"(?m)^(?=## )", guide)
    titles = {"wordpress": "Hosting WordPress", "mediawiki": "Hosting MediaWiki",
              "dokuwiki": "Hosting DokuWiki", "phpmyadmin": "Hosting phpMyAdmin",
              "laravel": "Hosting a Laravel-style application"}
    for name, title in titles.items():
        sect = [s for s in sections if s.startswith("## " + title + "\n")]
        assert len(sect) == 1, "docs/guide.md has no single section '## %s'" % title
        blocks = re.findall(r"(?ms)^```ini\n(.*?)^```$", sect[0])
        assert example_text(name) in blocks, \
            "the '%s' section of docs/guide.md does not show examples/sites/%s.conf as it is" \
            % (title, name)


# ==== MediaWiki ==============================================================================

@pytest.fixture(scope="module")
def mediawiki(apps):
    """MediaWiki installed on SQLite with its own maintenance/install.php (CLI, as root) into the
    private LocalSettings.php the example's MW_CONFIG_FILE names; a page created over the API."""
    ls = apps.values["mediawiki"]["/etc/mediawiki/LocalSettings.php"]
    d = os.path.dirname(ls)
    url = site_url(apps, "mediawiki")
    cp = subprocess.run(
        [PHP, "/usr/share/mediawiki/maintenance/install.php", "--dbtype=sqlite",
         "--dbpath=" + os.path.join(d, "db"), "--dbname=wiki", "--server=" + url, "--scriptpath=",
         "--lang=en", "--pass=" + ADMIN_PASSWORD, "--confpath=" + d, "Fcgihost Wiki", ADMIN_USER],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0 and os.path.exists(ls), cp.stdout[-3000:] + cp.stderr[-3000:]
    with open(ls, "a") as f:   # what the guide tells a user to add
        f.write('\n$wgArticlePath = "/wiki/$1";\n'
                '$wgUploadDirectory = "%s";\n'
                '$wgFavicon = "$wgResourceBasePath/resources/assets/change-your-logo-icon.svg";\n'
                % apps.values["mediawiki"]["/var/lib/mediawiki/images"])
    b = Browser(url)
    r = b.go("GET", "/api.php?action=query&meta=tokens&format=json")
    assert r.status_code == 200, r.text[:2000]
    token = r.json()["query"]["tokens"]["csrftoken"]
    r = b.go("POST", "/api.php", data={
        "action": "edit", "format": "json", "title": "Fcgihost test page", "token": token,
        "text": "Hello from '''fcgihost''', served by [[Special:Version|MediaWiki]].\n\n"
                "== Über ==\nA heading with a non-ASCII title.", "summary": "test_75"})
    assert r.status_code == 200 and r.json().get("edit", {}).get("result") == "Success", r.text[:2000]
    return b


def test_mediawiki_page_read_at_its_short_url(apps, mediawiki):
    b = mediawiki
    r = b.go("GET", "/wiki/Fcgihost_test_page")
    assert r.status_code == 200, r.text[:2000]
    assert "<title>Fcgihost test page - Fcgihost Wiki</title>" in r.text
    assert "Hello from <b>fcgihost</b>" in r.text
    # MediaWiki builds its links with $wgArticlePath: they are short URLs too.
    assert 'href="/wiki/Special:Version"' in r.text
    # The client's query string follows the rewritten one: ?action=raw gives the wikitext.
    r = b.go("GET", "/wiki/Fcgihost_test_page?action=raw")
    assert r.status_code == 200 and r.text.startswith("Hello from '''fcgihost'''"), r.text[:500]
    # "/" and the long form lead to the same page; a missing page is MediaWiki's own 404.
    r = b.go("GET", "/")
    assert r.status_code == 301 and r.headers["Location"] == b.url("/wiki/Main_Page"), r.headers
    r = b.go("GET", "/index.php?title=Fcgihost_test_page")
    assert r.status_code == 200 and "Hello from <b>fcgihost</b>" in r.text
    r = b.go("GET", "/wiki/No_such_page_here")
    assert r.status_code == 404 and "There is currently no text in this page" in r.text
    # Percent-encoded and non-ASCII titles reach MediaWiki decoded once.
    r = b.go("GET", "/wiki/Fcgihost%20test%20page")
    assert r.status_code in (200, 301), r.status_code
    # The REST endpoint and ResourceLoader, as the pages use them.
    r = b.go("GET", "/rest.php/v1/page/Fcgihost_test_page")
    assert r.status_code == 200 and r.json()["source"].startswith("Hello from"), r.text[:500]
    r = b.go("GET", "/load.php?modules=startup&only=scripts&raw=1&skin=vector")
    assert r.status_code == 200 and "mw.loader" in r.text


def test_mediawiki_uploads_alias_and_denied_paths(apps, mediawiki):
    b = mediawiki
    r = b.go("GET", "/images/fcgihost.txt")
    assert r.status_code == 200 and r.text == "an uploaded file\n"
    for path in ("/images/evil.php", "/maintenance/install.php", "/includes/WebStart.php",
                 "/LocalSettings.php", "/vendor/autoload.php", "/tests/"):
        r = b.go("GET", path)
        assert r.status_code == 404, (path, r.status_code, r.text[:300])
        assert "ran" not in r.text


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, messages
    ended by NUL): no port, no WebSocket."""

    def __init__(self, tmp, host_rules):
        a, self._cmd = os.pipe()
        self._res, b = os.pipe()
        # The child's fds 3 and 4 are made from fds >= 10, so no dup2 can overwrite the other.
        cmd_r = fcntl.fcntl(a, fcntl.F_DUPFD_CLOEXEC, 10)
        res_w = fcntl.fcntl(b, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(a)
        os.close(b)
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                "--user-data-dir=" + os.path.join(tmp, "chromium-profile"), "--no-first-run",
                "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--disable-default-apps", "--disable-dev-shm-usage", "--no-proxy-server",
                "--window-size=1280,900", "--host-resolver-rules=" + host_rules, "about:blank"]
        self.log_path = os.path.join(tmp, "chromium.log")
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # Its own HOME: crashpad writes under ~/.config/chromium whatever --user-data-dir says.
            env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, ".config"),
                       XDG_CACHE_HOME=os.path.join(tmp, ".cache"))
            self.pid = os.posix_spawn(CHROMIUM, argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2), (os.POSIX_SPAWN_DUP2, cmd_r, 3),
                (os.POSIX_SPAWN_DUP2, res_w, 4)], setsid=True)
        finally:
            for fd in (log, null, cmd_r, res_w):
                os.close(fd)
        self.events = []
        self._q = queue.Queue()
        self._next = 0
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        buf = b""
        while True:
            try:
                data = os.read(self._res, 1 << 16)
            except OSError:
                data = b""
            if not data:
                self._q.put(None)
                return
            buf += data
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self._q.put(json.loads(msg))

    def send(self, method, params=None, session=None, timeout=30):
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("DevTools: no answer to %s within %ss" % (method, timeout))
            try:
                m = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if m is None:
                raise AssertionError("Chromium went away; its log:\n" + _tail(self.log_path))
            if m.get("id") == self._next:
                if "error" in m:
                    raise AssertionError("DevTools %s: %s" % (method, m["error"]))
                return m["result"]
            self.events.append(m)

    def evaluate(self, session, expression):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                      session=session)
        return r["result"].get("value")

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except AssertionError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        else:
            os.killpg(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        try:   # its helpers (zygote, renderer, GPU) are in its session: none may stay
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(self._cmd)
        os.close(self._res)


def test_mediawiki_page_in_headless_chromium(apps, mediawiki, tmp_path):
    host = example_host("mediawiki")
    url = "%s/wiki/Fcgihost_test_page" % site_url(apps, "mediawiki")
    ua = "fcgihost-test_75-chromium"
    log_from = len(apps.access_log())
    browser = DevTools(str(tmp_path), "MAP %s 127.0.0.1, MAP * ~NOTFOUND" % host)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Network.enable", session=s)
        browser.send("Page.enable", session=s)
        browser.send("Network.setUserAgentOverride", {"userAgent": ua}, session=s)
        nav = browser.send("Page.navigate", {"url": url}, session=s)
        assert "errorText" not in nav, nav
        # Ready when MediaWiki's JavaScript modules, loaded through load.php, have run.
        helpers.wait_until(lambda: browser.evaluate(
            s, "typeof mw === 'object' && mw.loader.getState('mediawiki.page.ready')") == "ready",
            60, interval=0.2, what="mediawiki.page.ready in Chromium")
        title = browser.evaluate(s, "document.title")
        heading = browser.evaluate(s, "document.getElementById('firstHeading').textContent")
        body = browser.evaluate(s, "document.getElementById('mw-content-text').innerText")
        js = browser.evaluate(s, "document.documentElement.className")
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=s)
        png = base64.b64decode(shot["data"])
        with open(str(tmp_path / "mediawiki-chromium.png"), "wb") as f:   # the artifact
            f.write(png)
    finally:
        browser.close()
    assert title == "Fcgihost test page - Fcgihost Wiki"
    assert heading.strip() == "Fcgihost test page"
    assert "Hello from fcgihost" in body
    assert "client-js" in js, js
    assert png.startswith(b"\x89PNG") and len(png) > 10000, len(png)
    # No request of the page failed, as Chromium saw it ...
    failed = [e["params"] for e in browser.events if e.get("method") == "Network.loadingFailed"]
    assert not failed, failed
    seen = [(e["params"]["response"]["status"], e["params"]["response"]["url"])
            for e in browser.events if e.get("method") == "Network.responseReceived"]
    assert any("load.php" in u for _, u in seen), seen
    assert all(200 <= st < 400 for st, _ in seen), seen
    # ... and as the server logged it.
    logged = statuses(access_lines(apps, log_from), ua)
    assert len(logged) >= len(seen) >= 5, (logged, seen)
    assert all(200 <= st < 400 for st, _, _ in logged), logged


# ==== DokuWiki ===============================================================================

def test_dokuwiki_page_created_and_read_at_its_nice_url(apps):
    b = Browser(site_url(apps, "dokuwiki"))
    r = b.go("GET", "/")
    assert r.status_code == 200 and "Fcgihost DokuWiki" in r.text, (r.status_code, r.text[:2000])
    # userewrite = 1: DokuWiki writes its links as nice URLs, and they work.
    assert 'href="/start"' in r.text and 'href="/start?do=' in r.text, r.text[:3000]
    r = b.go("GET", "/wiki:syntax")
    assert r.status_code == 200 and "Formatting Syntax" in r.text
    # Create a page with DokuWiki's own edit form (security token and session cookie).
    r = b.go("GET", "/fcgihost:test?do=edit")
    assert r.status_code == 200, r.text[:2000]
    action, fields = form_fields(r.text, r'id="dw__editform"')
    fields.update({"wikitext": "====== Served by fcgihost ======\n\nHello from **fcgihost**.\n",
                   "summary": "test_75", "do[save]": "Save"})
    r = b.go("POST", path_of(action) or "/doku.php", data=fields)
    assert r.status_code in (302, 303), (r.status_code, r.text[:2000])
    assert path_of(r.headers["Location"]).startswith("/fcgihost:test"), r.headers
    r = b.go("GET", "/fcgihost:test")
    assert r.status_code == 200, r.text[:2000]
    assert "Served by fcgihost" in r.text and "Hello from <strong>fcgihost</strong>" in r.text
    assert os.path.exists(os.path.join(apps.base, "dokuwiki-data", "pages", "fcgihost", "test.txt"))
    # The other rules of DokuWiki's .htaccess: export, media, detail; a query string is kept.
    r = b.go("GET", "/_export/raw/fcgihost:test")
    assert r.status_code == 200 and r.text.startswith("====== Served by fcgihost"), r.text[:300]
    r = b.go("GET", "/_media/wiki:dokuwiki-128.png")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), r.status_code
    assert r.headers["Content-Type"] == "image/png"
    r = b.go("GET", "/_detail/wiki:dokuwiki-128.png?id=start")
    assert r.status_code == 200 and "dokuwiki-128.png" in r.text
    r = b.go("GET", "/fcgihost:test?do=diff")
    assert r.status_code == 200 and "Differences" in r.text
    # Static files of the template through Debian's links (lib/tpl -> /var/lib/dokuwiki/lib/tpl),
    # and the CSS and JavaScript DokuWiki builds.
    r = b.go("GET", "/lib/tpl/dokuwiki/images/logo.png")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), r.status_code
    r = b.go("GET", "/lib/exe/css.php?t=dokuwiki")
    assert r.status_code == 200 and "text/css" in r.headers["Content-Type"]
    r = b.go("GET", "/lib/exe/js.php?t=dokuwiki")
    assert r.status_code == 200 and "javascript" in r.headers["Content-Type"]
    # A page that does not exist is DokuWiki's own answer (one anyone may create here); its
    # private directories stay closed.
    r = b.go("GET", "/no:such:page")
    assert r.status_code in (200, 404) and "This topic does not exist yet" in r.text
    for path in ("/conf/local.php", "/data/pages/wiki/syntax.txt", "/inc/init.php",
                 "/bin/indexer.php", "/vendor/autoload.php"):
        r = b.go("GET", path)
        assert r.status_code == 404, (path, r.status_code)
        assert "savedir" not in r.text and "Formatting" not in r.text


# ==== phpMyAdmin on the test's MariaDB =======================================================

def test_phpmyadmin_logs_in_to_mariadb(apps, mariadb):
    b = Browser(site_url(apps, "phpmyadmin"))
    r = b.go("GET", "/")
    assert r.status_code == 200, (r.status_code, r.text[:2000])
    action, fields = form_fields(r.text, r'id="login_form"')
    assert fields.get("token"), fields
    fields.update({"pma_username": "pmauser", "pma_password": "pma-Passw0rd", "server": "1"})
    r = b.go("POST", "/" + action.lstrip("/") if action else "/index.php", data=fields)
    assert r.status_code in (200, 302, 303), (r.status_code, r.text[:2000])
    if r.status_code != 200:
        r = b.go("GET", path_of(r.headers["Location"]))
    assert r.status_code == 200, (r.status_code, r.text[:2000])
    assert "login_form" not in r.text, "still the login form:\n" + r.text[:3000]
    assert "pmauser@localhost" in r.text, r.text[:3000]
    assert "Localhost via UNIX socket" in r.text or "via UNIX socket" in r.text, r.text[:3000]
    assert "MariaDB" in r.text
    # The database of the test's account is listed, and a query runs through the SQL page.
    r = b.go("GET", "/index.php?route=/database/structure&db=fcgihost_pma")
    assert r.status_code == 200 and "visitors" in r.text, r.text[:3000]
    token = re.search(r'name="token" value="([^"]+)"', r.text) or \
        re.search(r'"token":"([^"]+)"', r.text)
    assert token, r.text[:3000]
    r = b.go("POST", "/index.php?route=/import", data={
        "db": "fcgihost_pma", "sql_query": "SELECT name FROM visitors WHERE id = 1",
        "token": token.group(1), "ajax_request": "true", "server": "1"})
    assert r.status_code == 200 and r.json().get("success") is True, r.text[:2000]
    assert "fcgihost" in r.json()["message"]
    # Its libraries and templates are not pages.
    for path in ("/libraries/vendor_config.php", "/templates/login/form.twig"):
        r = b.go("GET", path)
        assert r.status_code == 404, (path, r.status_code)


# ==== WordPress on the test's MariaDB ========================================================

@pytest.fixture(scope="module")
def wordpress(apps, mariadb):
    """WordPress installed over HTTP by its own installer, then an administrator logged in."""
    b = Browser(site_url(apps, "wordpress"))
    r = b.go("GET", "/")
    assert r.status_code == 302 and path_of(r.headers["Location"]) == "/wp-admin/install.php", \
        (r.status_code, r.headers, r.text[:2000])
    r = b.go("GET", "/wp-admin/install.php")
    assert r.status_code == 200 and "weblog_title" in r.text, r.text[:2000]
    r = b.go("POST", "/wp-admin/install.php?step=2", data={
        "weblog_title": "Fcgihost Blog", "user_name": ADMIN_USER, "admin_password": ADMIN_PASSWORD,
        "admin_password2": ADMIN_PASSWORD, "pw_weak": "on", "admin_email": "admin@example.com",
        "blog_public": "0", "Submit": "Install WordPress", "language": ""}, timeout=120)
    assert r.status_code == 200 and "Success!" in r.text, r.text[:3000]
    b.installed_permalink = b.go("GET", "/?p=1").headers.get("Location")
    # Log in as a browser does: the test cookie first, then the form.
    r = b.go("GET", "/wp-login.php")
    assert r.status_code == 200
    r = b.go("POST", "/wp-login.php", data={"log": ADMIN_USER, "pwd": ADMIN_PASSWORD,
                                            "wp-submit": "Log In", "testcookie": "1",
                                            "redirect_to": b.url("/wp-admin/")})
    assert r.status_code == 302 and path_of(r.headers["Location"]) == "/wp-admin/", \
        (r.status_code, r.text[:2000])
    r = b.go("GET", "/wp-admin/admin-ajax.php?action=rest-nonce")
    assert r.status_code == 200 and re.fullmatch(r"[0-9a-f]{10}", r.text), r.text[:500]
    b.nonce = r.text
    return b


def test_wordpress_installer_finds_pretty_permalinks(wordpress):
    """WordPress's installer requests its first post at /YYYY/MM/DD/hello-world/ through the
    fallback, and keeps that structure when the answer is WordPress's (the issue's symptom was a
    fall-back to /index.php/... URLs)."""
    loc = wordpress.installed_permalink
    assert loc and re.fullmatch(r"/\d{4}/\d{2}/\d{2}/hello-world/", path_of(loc)), loc
    r = wordpress.go("GET", path_of(loc))
    assert r.status_code == 200 and "Hello world!" in r.text, r.text[:2000]


def test_wordpress_post_at_its_postname_permalink_and_rest_api(apps, wordpress):
    b = wordpress
    # Settings > Permalinks: /%postname%/, as an administrator sets it.
    r = b.go("GET", "/wp-admin/options-permalink.php")
    assert r.status_code == 200, r.text[:2000]
    _, fields = form_fields(r.text, r'action="options-permalink.php"')
    fields.update({"selection": "/%postname%/", "permalink_structure": "/%postname%/"})
    r = b.go("POST", "/wp-admin/options-permalink.php", data=fields)
    assert r.status_code == 302, (r.status_code, r.text[:2000])
    r = b.go("GET", path_of(r.headers["Location"]))   # as a browser: the page flushes the rules
    assert r.status_code == 200, r.text[:2000]
    assert re.search(r'<input name="permalink_structure"[^>]*value="/%postname%/"', r.text), \
        re.findall(r'<input name="permalink_structure"[^>]*>', r.text)
    # Publish a post over the REST API (POST), then change it with PUT and PATCH.
    api = {"X-WP-Nonce": b.nonce}
    r = b.go("POST", "/wp-json/wp/v2/posts", headers=api, json={
        "title": "Served by fcgihost", "slug": "served-by-fcgihost", "status": "publish",
        "content": "<!-- wp:paragraph --><p>Hello from fcgihost.</p><!-- /wp:paragraph -->"})
    assert r.status_code == 201, r.text[:2000]
    post = r.json()
    assert path_of(post["link"]) == "/served-by-fcgihost/", post["link"]
    r = b.go("PUT", "/wp-json/wp/v2/posts/%d" % post["id"], headers=api,
             json={"excerpt": "Changed with PUT"})
    assert r.status_code == 200 and r.json()["excerpt"]["raw"] == "Changed with PUT", r.text[:1000]
    r = b.go("PATCH", "/wp-json/wp/v2/posts/%d" % post["id"], headers=api,
             json={"title": "Served by fcgihost, patched"})
    assert r.status_code == 200 and r.json()["title"]["raw"] == "Served by fcgihost, patched"
    # Read by anyone at its permalink, and in the public REST API.
    anon = Browser(b.base)
    r = anon.go("GET", "/served-by-fcgihost/")
    assert r.status_code == 200, (r.status_code, r.text[:2000])
    assert "Served by fcgihost, patched" in r.text and "Hello from fcgihost." in r.text
    r = anon.go("GET", "/served-by-fcgihost")          # WordPress's own canonical redirect
    assert r.status_code == 301 and path_of(r.headers["Location"]) == "/served-by-fcgihost/"
    r = anon.go("GET", "/wp-json/wp/v2/posts?search=fcgihost&_fields=id,slug,link")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert [p["slug"] for p in r.json()] == ["served-by-fcgihost"], r.text
    r = anon.go("GET", "/?rest_route=/wp/v2/posts/%d" % post["id"])
    assert r.status_code == 200 and r.json()["slug"] == "served-by-fcgihost"
    r = anon.go("GET", "/no-such-post-here/")
    assert r.status_code == 404 and "Fcgihost Blog" in r.text   # WordPress's own 404 page
    # DELETE moves a second post to the trash; it is then gone from its permalink.
    r = b.go("POST", "/wp-json/wp/v2/posts", headers=api,
             json={"title": "Short-lived", "slug": "short-lived", "status": "publish"})
    assert r.status_code == 201
    gone = r.json()["id"]
    assert anon.go("GET", "/short-lived/").status_code == 200
    r = b.go("DELETE", "/wp-json/wp/v2/posts/%d" % gone, headers=api)
    assert r.status_code == 200 and r.json()["status"] == "trash", r.text[:1000]
    assert anon.go("GET", "/short-lived/").status_code == 404
    # The block editor's page loads for the post.
    r = b.go("GET", "/wp-admin/post.php?post=%d&action=edit" % post["id"])
    assert r.status_code == 200 and "block-editor" in r.text


def test_wordpress_upload_served_from_wp_content_alias(apps, wordpress):
    b = wordpress
    png = png_1x1()
    r = b.go("POST", "/wp-json/wp/v2/media", data=png, headers={
        "X-WP-Nonce": b.nonce, "Content-Type": "image/png",
        "Content-Disposition": 'attachment; filename="fcgihost-pixel.png"'})
    assert r.status_code == 201, r.text[:2000]
    src = path_of(r.json()["source_url"])
    assert re.fullmatch(r"/wp-content/uploads/\d{4}/\d{2}/fcgihost-pixel\.png", src), src
    # The file is in the alias's directory (Debian's /var/lib/wordpress/wp-content), and served.
    on_disk = os.path.join(apps.values["wordpress"]["/var/lib/wordpress/wp-content"],
                           src[len("/wp-content/"):])
    with open(on_disk, "rb") as f:
        assert f.read() == png
    r = requests.get(b.url(src), timeout=30)
    assert r.status_code == 200 and r.content == png and r.headers["Content-Type"] == "image/png"
    # A script under uploads never runs; the theme comes through the alias and Debian's link to
    # /usr/share/wordpress/wp-content/themes; Debian's linked libraries with the header rule.
    evil = os.path.join(os.path.dirname(on_disk), "evil.php")
    with open(evil, "w") as f:
        f.write("<?php echo 'ran';\n")
    r = requests.get(b.url(os.path.dirname(src) + "/evil.php"), timeout=30)
    assert r.status_code == 404 and "ran" not in r.text
    r = requests.get(b.url("/wp-content/themes/twentytwentythree/style.css"), timeout=30)
    assert r.status_code == 200 and "Twenty Twenty-Three" in r.text
    r = requests.get(b.url("/wp-includes/js/underscore.min.js"), timeout=30)
    assert r.status_code == 200 and "javascript" in r.headers["Content-Type"]
    assert r.headers["Cache-Control"] == "public, max-age=86400"
    for path in ("/wp-config.php", "/wp-config-sample.php"):
        assert requests.get(b.url(path), timeout=30).status_code == 404, path


# ==== a Laravel-style front controller =======================================================

def test_laravel_style_front_controller(apps):
    b = Browser(site_url(apps, "laravel"))
    r = b.go("GET", "/")
    assert r.status_code == 200 and r.json()["route"] == "home"
    r = b.go("GET", "/users/42?include=posts&sort=-name")
    assert r.status_code == 200, r.text
    j = r.json()
    assert (j["route"], j["id"], j["query"]) == ("users.show", 42, {"include": "posts", "sort": "-name"})
    srv = j["server"]
    assert srv["REQUEST_URI"] == "/users/42?include=posts&sort=-name"
    assert srv["SCRIPT_NAME"] == "/index.php" and srv["PATH_INFO"] in ("", None)
    assert srv["QUERY_STRING"] == "include=posts&sort=-name"
    assert srv["SCRIPT_FILENAME"] == os.path.join(apps.values["laravel"]["/srv/laravel"],
                                                  "public", "index.php")
    r = b.go("POST", "/users", json={"name": "Ada"})
    assert r.status_code == 201 and r.json()["body"] == {"name": "Ada"}
    for verb in ("PUT", "PATCH"):
        r = b.go(verb, "/users/7", json={"name": "Grace"})
        assert r.status_code == 200 and r.json()["verb"] == verb and r.json()["body"] == {"name": "Grace"}
    r = b.go("POST", "/users/7", data={"_method": "DELETE"})
    assert r.status_code == 204
    assert b.go("DELETE", "/users/7").status_code == 204
    r = b.go("HEAD", "/users/7")
    assert r.status_code == 200 and r.content == b""
    r = b.go("GET", "/no/such/route")
    assert r.status_code == 404 and r.json()["message"] == "Not Found"   # the application's own
    # Files are files: static ones are served as they are, with the example's header rule; the
    # stored files through the alias; never a script among them; nothing above public/.
    r = b.go("GET", "/build/app.js")
    assert r.status_code == 200 and r.text == "console.log('built');\n"
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b.go("GET", "/robots.txt").text == "User-agent: *\n"
    r = b.go("GET", "/storage/avatar.txt")
    assert r.status_code == 200 and r.text == "a stored file\n"
    r = b.go("GET", "/storage/evil.php")
    assert r.status_code == 404 and "ran" not in r.text
    r = b.go("GET", "/.env")
    assert r.status_code in (403, 404) and "APP_KEY" not in r.text
    r = b.go("GET", "/../.env")
    assert "APP_KEY" not in r.text
