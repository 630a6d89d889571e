#!/bin/sh
# Installs Node-RED for bench/bench_nodered.py into a cache folder outside
# the repository: `npm ci` of the committed package.json + package-lock.json
# (exact versions) into $NODERED_HOME, by default
# ${XDG_CACHE_HOME:-~/.cache}/gatehouse-bench/nodered. Does nothing when that
# lock is installed already. Needs node >= 18.5 and npm (and, for sqlite3's
# native module when npm cannot use a prebuilt one, g++, make, python3 and
# the node headers). `make check` never runs this.
#
#   bench/nodered/install.sh          install (or confirm) and print the folder
#   bench/nodered/install.sh --check  exit 0 when installed, 1 when not
set -e
here=$(cd "$(dirname "$0")" && pwd)
dest=${NODERED_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse-bench/nodered}
stamp=$(sha256sum "$here/package-lock.json" | cut -c1-16)

installed() {
	[ -f "$dest/.installed-$stamp" ] && [ -f "$dest/node_modules/node-red/red.js" ]
}

if [ "$1" = "--check" ]; then
	installed && exit 0
	exit 1
fi
if installed; then
	echo "$dest"
	exit 0
fi
command -v node >/dev/null && command -v npm >/dev/null || {
	echo "install.sh: node and npm are needed (apt-get install nodejs npm)" >&2
	exit 1
}
echo "Installing Node-RED (bench/nodered/package-lock.json) into $dest" >&2
mkdir -p "$dest"
rm -f "$dest"/.installed-*
cp "$here/package.json" "$here/package-lock.json" "$dest/"
cd "$dest"
npm ci --no-audit --no-fund >&2
# sqlite3 builds its native module from source when no prebuilt one can be
# fetched (only the npm registry is reached here)
if ! node -e "require('sqlite3')" 2>/dev/null; then
	echo "install.sh: building sqlite3's native module" >&2
	npm rebuild sqlite3 --build-from-source >&2
	node -e "require('sqlite3')"
fi
touch "$dest/.installed-$stamp"
echo "$dest"
