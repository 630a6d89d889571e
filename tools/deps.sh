#!/bin/sh
# Installs the Debian 12 packages that the build, the tests and the demo need.
# Safe to repeat. Runs apt-get as root (directly, or through sudo).
set -eu
PKGS="build-essential pkg-config ca-certificates tzdata python3 sqlite3
libsqlite3-dev libjansson-dev libinih-dev libuv1-dev libsystemd-dev libssl-dev
libcriterion-dev libmosquitto-dev mosquitto mosquitto-clients python3-paho-mqtt
libmodbus-dev socat libcurl4-openssl-dev openssl libwebsockets-dev wrk faketime
clang libclang-rt-dev chromium valgrind"
# Node.js and npm for the browser tests (tests/web-ui runs npm ci itself): a
# machine that has them already keeps its own (NodeSource's nodejs bundles npm
# and conflicts with Debian's npm package)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	PKGS="$PKGS nodejs npm"
fi

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: run as root to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
