#!/bin/sh
# packaging/build-deb.sh [BUILD_DIR] [OUT_DIR]
#
# Builds OUT_DIR/gatehouse_VERSION_ARCH.deb from an already-built tree
# (BUILD_DIR, default build/, holds gatehoused and gatehouse: `make all`).
# The files come from `make install DESTDIR=... PREFIX=/usr` (never rebuilding
# the binaries); this adds the mosquitto snippet, docs, man pages, the
# maintainer scripts and the control file, then runs dpkg-deb.
#
# VERSION is the Makefile's `VERSION :=` unless GH_DEB_VERSION is set (the
# package test builds a bumped one to test upgrades); GH_DEB_MAINTAINER sets
# the Maintainer field. Needs dpkg-dev (dpkg-shlibdeps), binutils (strip).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKG=$ROOT/packaging
BUILD=${1:-build}
OUT=${2:-.}
case $BUILD in /*) ;; *) BUILD=$(cd "$BUILD" 2>/dev/null && pwd || echo "$ROOT/$BUILD") ;; esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for b in gatehoused gatehouse; do
	if [ ! -x "$BUILD/$b" ]; then
		echo "build-deb: $BUILD/$b is missing: run 'make all' first" >&2
		exit 1
	fi
done

VERSION=${GH_DEB_VERSION:-$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$ROOT/Makefile")}
[ -n "$VERSION" ] || { echo "build-deb: no 'VERSION :=' in $ROOT/Makefile" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
MAINTAINER=${GH_DEB_MAINTAINER:-gatehouse maintainers <maintainers@users.noreply.h-seed-ad6a1fb5.example>}
# reproducible dates: the last commit's, else now
EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH=$EPOCH

W=$(mktemp -d /tmp/gh-deb-XXXXXX)
trap 'rm -rf "$W"' EXIT INT TERM
R=$W/root
DOC=$R/usr/share/doc/gatehouse

# the files `make install` puts in place, from BUILD without rebuilding (-o)
make -s -C "$ROOT" install DESTDIR="$R" PREFIX=/usr BUILD="$BUILD" \
	-o "$BUILD/gatehoused" -o "$BUILD/gatehouse" >"$W/make.log" 2>&1 ||
	{ cat "$W/make.log" >&2; exit 1; }

# binaries without debug symbols (lintian: unstripped-binary-or-object)
for f in "$R/usr/sbin/gatehoused" "$R/usr/bin/gatehouse"; do
	strip --remove-section=.comment --remove-section=.note --strip-unneeded "$f"
done

# the config holds no secret (those are files of their own): 0644
chmod 0644 "$R/etc/gatehouse/gatehouse.conf"
install -d "$R/etc/mosquitto/conf.d" "$R/lib/modules-load.d" "$DOC/examples" \
	"$R/usr/share/man/man1" "$R/usr/share/man/man8"
sed "s|@MULTIARCH@|$MULTIARCH|g" "$PKG/mosquitto-gatehouse.conf" >"$R/etc/mosquitto/conf.d/gatehouse.conf"
install -m 0644 "$PKG/modules-load-gatehouse.conf" "$R/lib/modules-load.d/gatehouse.conf"
install -m 0644 "$PKG/99-gatehouse-ftdi-latency.rules" "$DOC/examples/"

# web UI: plain static files; the vendored libraries' licences are in copyright
find "$R/usr/share/gatehouse" -name 'LICENSE*' -delete
rm -f "$R/usr/share/gatehouse/web-ui/README.md"  # a note for developers
find "$R/usr/share/gatehouse" -type d -exec chmod 0755 {} +
find "$R/usr/share/gatehouse" -type f -exec chmod 0644 {} +

# docs
install -m 0644 "$ROOT/README.md" "$DOC/README.md"
if [ -f "$ROOT/docs/OPERATIONS.md" ]; then
	install -m 0644 "$ROOT/docs/OPERATIONS.md" "$DOC/OPERATIONS.md"
fi
install -D -m 0644 "$PKG/deb/lintian-overrides" "$R/usr/share/lintian/overrides/gatehouse"
gzip -9n <"$PKG/man/gatehouse.1" >"$R/usr/share/man/man1/gatehouse.1.gz"
gzip -9n <"$PKG/man/gatehoused.8" >"$R/usr/share/man/man8/gatehoused.8.gz"
{
	cat "$PKG/deb/copyright"
	sed 's/^/    /' "$ROOT/web-ui/vendor/LICENSE.preact" 2>/dev/null || true
} >"$DOC/copyright"
DATE=$(date -u -R -d "@$EPOCH")
sed -e "s|@VERSION@|$VERSION|" -e "s|@MAINTAINER@|$MAINTAINER|" -e "s|@DATE@|$DATE|" \
	"$PKG/deb/changelog.in" | gzip -9n >"$DOC/changelog.gz"

# control
install -d -m 0755 "$R/DEBIAN"
for s in postinst prerm postrm config; do
	install -m 0755 "$PKG/deb/$s" "$R/DEBIAN/$s"
done
install -m 0644 "$PKG/deb/templates" "$R/DEBIAN/templates"
(cd "$R" && find etc -type f | sort | sed 's|^|/|') >"$R/DEBIAN/conffiles"
chmod 0644 "$R/DEBIAN/conffiles"
(cd "$R" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print | sed 's|^\./||' | sort |
	xargs md5sum) >"$R/DEBIAN/md5sums"
chmod 0644 "$R/DEBIAN/md5sums"

# shared library dependencies, as dpkg-shlibdeps finds them
mkdir -p "$W/debian"
printf 'Source: gatehouse\n\nPackage: gatehouse\nArchitecture: any\n' >"$W/debian/control"
SHLIBS=$(cd "$W" && dpkg-shlibdeps -O -e root/usr/sbin/gatehoused -e root/usr/bin/gatehouse 2>"$W/shlibs.err" |
	sed -n 's/^shlibs:Depends=//p') || true
if [ -z "$SHLIBS" ]; then
	cat "$W/shlibs.err" >&2
	echo "build-deb: dpkg-shlibdeps found no dependencies" >&2
	exit 1
fi
# libwebsockets loads its libuv event loop as a plugin (dlopen): dpkg-shlibdeps cannot see it
case $SHLIBS in *libwebsockets*) SHLIBS="$SHLIBS, libwebsockets-evlib-uv" ;; esac
SIZE=$(du -s -k --exclude=DEBIAN "$R" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$MAINTAINER|" \
	-e "s|@SIZE@|$SIZE|" -e "s|@SHLIBS@|$SHLIBS|" "$PKG/deb/control.in" >"$R/DEBIAN/control"

# dates of the files: the same epoch (reproducible builds)
find "$R" -exec touch -h -d "@$EPOCH" {} +
DEB=$OUT/gatehouse_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$R" "$DEB" >/dev/null
echo "$DEB"
