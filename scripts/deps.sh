#!/bin/sh
# Installs the Debian packages wagate needs to build and test, only those missing.
# Idempotent and quiet when everything is there. Run as root (or with sudo available).
set -e

PKGS="build-essential pkg-config clang python3 zlib1g-dev
libevent-dev libssl-dev libwslay-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler
libsignal-protocol-c-dev libqrencode-dev libpng-dev libcurl4-openssl-dev libsqlite3-dev
libsodium-dev zbar-tools sqlite3 openssl
chromium"
# chromium: headless, for the Wachat live QR page test (tests/integration/test_wachat_live_browser.py).
# Node is needed only for the Baileys interop tests; keep whatever node/npm is already there.
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

[ "$1" = "--bench" ] && PKGS="$PKGS wrk valgrind"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
