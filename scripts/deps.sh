#!/bin/bash
# Install the Debian packages fcgihost needs for a goal, only those missing.
#   scripts/deps.sh build|test|sanitize|fuzz|bench
set -euo pipefail
goal=${1:-build}
build=(gcc make meson ninja-build pkg-config libuv1-dev libinih-dev libsystemd-dev libpcre2-dev zlib1g-dev libbrotli-dev libssl-dev media-types scdoc)
test=(libcmocka-dev python3 python3-pytest python3-requests python3-brotli php-cgi libfcgi-dev curl wrk haproxy)
case "$goal" in
  build)    want=("${build[@]}" php-cgi) ;;
  test)     want=("${build[@]}" "${test[@]}") ;;
  sanitize) want=("${build[@]}" "${test[@]}" clang libclang-rt-14-dev) ;;
  fuzz)     want=("${build[@]}" libcmocka-dev clang libclang-rt-14-dev) ;;
  bench)    want=("${build[@]}" "${test[@]}" wrk nginx lighttpd lighttpd-mod-openssl apache2 libapache2-mod-fcgid h2o caddy php-fpm spawn-fcgi nghttp2-client) ;;
  *) echo "usage: $0 build|test|sanitize|fuzz|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then echo "deps: need root to apt-get install ${missing[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts services on install; the benchmark anchors start their own instances.
if [ "$goal" = bench ]; then
  for s in nginx lighttpd apache2 h2o php8.2-fpm; do
    command -v systemctl >/dev/null && systemctl stop "$s" 2>/dev/null || true
    service "$s" stop >/dev/null 2>&1 || true
  done
fi
