#!/bin/bash
# Install the Debian packages fcgihost needs for a goal, only those missing.
#   scripts/deps.sh build|test|sanitize|fuzz|bench
set -euo pipefail
goal=${1:-build}
# The default build (meson option tests=true) also compiles the unit tests (cmocka) and the FastCGI test
# applications (libfcgi): without them `make run` on a fresh machine stops at meson setup.
build=(gcc make meson ninja-build pkg-config libuv1-dev libinih-dev libsystemd-dev libpcre2-dev zlib1g-dev libdeflate-dev libbrotli-dev libssl-dev libnghttp2-dev media-types scdoc libcmocka-dev libfcgi-dev)
test=(libcmocka-dev python3 python3-pytest python3-requests python3-brotli php-cgi libfcgi-dev curl wrk haproxy testssl.sh nghttp2-client python3-h2)
# Real applications of tests/integration/test_75_apps.py (examples/sites/): the Debian packages of
# MediaWiki, DokuWiki, phpMyAdmin and WordPress (with the theme its package recommends: without one its
# pages are empty), the PHP modules they load (php-sqlite3: MediaWiki on SQLite; php-cli runs MediaWiki's
# maintenance/install.php), a MariaDB server that the test starts on a private datadir, and headless
# Chromium driven over the DevTools protocol (--remote-debugging-pipe: no other package needed).
# wp-cli is not in Debian 12: WordPress installs over HTTP. dbconfig-no-thanks: phpMyAdmin's package
# then sets up no database of its own at install time.
# bench/memory.sh measures PHP's memory on MediaWiki: the bench goal installs that part of them.
mediawiki=(php-cli php-sqlite3 php-intl php-mbstring php-xml mediawiki)
apps=("${mediawiki[@]}" php-mysql dokuwiki dbconfig-no-thanks
      phpmyadmin wordpress wordpress-theme-twentytwentythree mariadb-server chromium)
case "$goal" in
  build)    want=("${build[@]}" php-cgi) ;;
  test)     want=("${build[@]}" "${test[@]}" "${apps[@]}") ;;
  sanitize) want=("${build[@]}" "${test[@]}" "${apps[@]}" clang libclang-rt-14-dev) ;;
  fuzz)     want=("${build[@]}" libcmocka-dev clang libclang-rt-14-dev) ;;
  bench)    want=("${build[@]}" "${test[@]}" wrk linux-perf nginx lighttpd lighttpd-mod-openssl apache2 libapache2-mod-fcgid h2o caddy php-fpm spawn-fcgi nghttp2-client "${mediawiki[@]}") ;;
  *) echo "usage: $0 build|test|sanitize|fuzz|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
# Services Debian would start on install that the tests start their own instances of, or never use:
# mediawiki and wordpress depend on "apache2 | httpd", mariadb-server starts mariadbd, haproxy its own. Each one that
# this run installs is stopped and disabled afterwards (one installed before is left as it was).
daemons=(apache2 mariadb haproxy)
fresh=()
for s in "${daemons[@]}"; do
  [ -e "/lib/systemd/system/$s.service" ] || [ -e "/etc/init.d/$s" ] || fresh+=("$s")
done
if [ "$(id -u)" != 0 ]; then echo "deps: need root to apt-get install ${missing[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for s in "${fresh[@]}"; do
  if [ -e "/lib/systemd/system/$s.service" ] || [ -e "/etc/init.d/$s" ]; then
    command -v systemctl >/dev/null && { systemctl stop "$s"; systemctl disable "$s"; } >/dev/null 2>&1 || true
    service "$s" stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null && update-rc.d "$s" disable >/dev/null 2>&1 || true
  fi
done
# Debian starts services on install; the benchmark anchors start their own instances.
if [ "$goal" = bench ]; then
  for s in nginx lighttpd apache2 h2o php8.2-fpm; do
    command -v systemctl >/dev/null && systemctl stop "$s" 2>/dev/null || true
    service "$s" stop >/dev/null 2>&1 || true
  done
fi
