#!/bin/sh
# tests/package/run.sh: the Debian package end to end, as an installer gets it.
#
#   builds the .deb (and a rebuilt one with a bumped version), runs lintian,
#   checks the systemd unit (verify, exposure score, the sandbox against what
#   the daemon really does: tests/package/syscalls.py), then installs the .deb
#   into a clean Debian 12 (debootstrap minbase chroot) with its dependencies
#   from the mirror: files, user, secrets and their modes, the admin password,
#   the migrated database, the real broker and daemon running on the installed
#   config (in a private network namespace), reinstall, upgrade, remove, purge,
#   and a preseeded install.
#
# Needs root and the Debian mirror (not part of `make check`). Installs the
# tools it needs (lintian, debootstrap, strace) with apt-get. Caches the
# minbase tarball and the downloaded .debs in /var/cache/gatehouse-test/, so a
# second run does not download them again. Leaves nothing running or mounted.
# Prints "N passed, N failed"; exits non-zero on any failure.
#
#   GH_BUILD=build (the build dir)  GH_MIRROR=http://deb.debian.org/debian
#   GH_KEEP=1 keeps the work folder (logs, chroot) for a look afterwards
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${GH_BUILD:-build}
MIRROR=${GH_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CACHE=/var/cache/gatehouse-test
TARBALL=$CACHE/$SUITE-minbase.tgz
START=$(date +%s)

pass=0
failn=0
ok() { pass=$((pass + 1)); echo "  ok    $1"; }
bad() {
	failn=$((failn + 1))
	echo "  FAIL  $1"
	[ -n "${2:-}" ] && [ -f "$2" ] && tail -n 25 "$2" | sed 's/^/        /'
	return 0
}
# check NAME COMMAND...: ok when the command succeeds (its output in $T/out)
check() {
	name=$1
	shift
	if "$@" >"$T/out" 2>&1; then ok "$name"; else bad "$name" "$T/out"; fi
}
finish() {
	echo "$pass passed, $failn failed ($(($(date +%s) - START)) s)"
	[ "$failn" -eq 0 ]
	exit $?
}

if [ "$(id -u)" -ne 0 ]; then
	echo "package test: needs root (debootstrap, chroot)" >&2
	exit 2
fi

T=$(mktemp -d /tmp/gh-pkg-XXXXXX)
CH=$T/root
OUT=$T/out.d
mkdir -p "$OUT" "$CACHE/archives"

# Processes started in the chroot (by pid), mounts under $T: all gone before
# $T is removed, and $T is never removed while something is mounted in it.
PIDS=""
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$p" 2>/dev/null
	done
	# anything else still running inside the chroot was started by this test
	for p in $(inside); do
		echo "package test: ending pid $p left in the chroot" >&2
		kill -9 "$p" 2>/dev/null
	done
	if [ -d "$CH" ]; then
		[ -d "$CH/var/cache/apt/archives" ] && cp -n "$CH"/var/cache/apt/archives/*.deb "$CACHE/archives/" 2>/dev/null
		grep -q " $CH/proc " /proc/mounts && umount "$CH/proc"
	fi
	if grep -q " $T" /proc/mounts; then
		echo "package test: something is still mounted under $T: not removing it" >&2
	elif [ -n "${GH_KEEP:-}" ]; then
		echo "package test: kept $T (GH_KEEP)" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need() { # TOOL PACKAGE: install the Debian package when the tool is missing
	command -v "$1" >/dev/null 2>&1 && return 0
	DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends "$2" >"$T/apt-tools.log" 2>&1 ||
		{ cat "$T/apt-tools.log" >&2; echo "package test: cannot install $2" >&2; exit 2; }
}
need lintian lintian
need debootstrap debootstrap
need strace strace
need socat socat

# run a command inside the chroot, with a clean environment
inch() {
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		chroot "$CH" "$@"
}
# the CLI inside the chroot, as the daemon's user (as the docs say to run it)
ghc() { inch runuser -u gatehouse -- gatehouse --config /etc/gatehouse/gatehouse.conf "$@"; }
# mode owner:group of a file inside the chroot (the chroot's names)
perms() { inch stat -c '%a %U:%G' "$1" 2>/dev/null; }
# pids of the processes running inside the chroot
inside() {
	for r in /proc/[0-9]*/root; do
		if [ "$(readlink "$r" 2>/dev/null)" = "$CH" ]; then
			p=${r#/proc/}
			echo "${p%/root}"
		fi
	done
}
# a JSON number field of a file (the CLI's pretty output: "key": N)
jnum() { sed -n "s/.*\"$1\": *\([0-9][0-9]*\).*/\1/p" "$2" | head -n 1; }

VERSION=$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$ROOT/Makefile")
ARCH=$(dpkg --print-architecture)
NSCHEMA=$(ls "$ROOT"/schema/[0-9][0-9][0-9]-*.sql | wc -l)

echo "== package: build"
if ! (cd "$ROOT" && timeout 900 make -s -j2 all "$B/sim/modbus_sim") >"$T/make.log" 2>&1; then
	bad "make all" "$T/make.log"
	finish
fi
ok "make all"
DEB=$(sh "$ROOT/packaging/build-deb.sh" "$ROOT/$B" "$OUT" 2>"$T/deb.log") && [ -f "$DEB" ] &&
	ok "build-deb.sh builds $(basename "$DEB")" || { bad "build-deb.sh" "$T/deb.log"; finish; }
DEB2=$(GH_DEB_VERSION="$VERSION+pkgtest1" sh "$ROOT/packaging/build-deb.sh" "$ROOT/$B" "$OUT" 2>"$T/deb2.log") &&
	[ -f "$DEB2" ] && ok "a rebuilt package with a bumped version ($VERSION+pkgtest1)" ||
	bad "build-deb.sh with GH_DEB_VERSION" "$T/deb2.log"
[ "$(basename "$DEB")" = "gatehouse_${VERSION}_$ARCH.deb" ] && ok "named gatehouse_VERSION_ARCH.deb" ||
	bad "named gatehouse_${VERSION}_$ARCH.deb (got $(basename "$DEB"))"

echo "== package: lintian"
lintian --fail-on error,warning --display-info "$DEB" >"$T/lintian.log" 2>&1
rc=$?
grep -v '^running with root' "$T/lintian.log" | sed 's/^/        /'
[ $rc -eq 0 ] && ! grep -q '^[EW]: ' "$T/lintian.log" && ok "lintian: no errors, no warnings" ||
	bad "lintian: no errors, no warnings (rc $rc)"

echo "== package: the systemd unit"
mkdir -p "$T/unit"
sed "s|/usr/sbin/gatehoused|$ROOT/$B/gatehoused|" "$ROOT/systemd/gatehoused.service" >"$T/unit/gatehoused.service"
systemd-analyze verify "$T/unit/gatehoused.service" >"$T/out" 2>&1 && [ ! -s "$T/out" ] &&
	ok "systemd-analyze verify: clean" || bad "systemd-analyze verify: clean" "$T/out"
systemd-analyze security --offline=true "$ROOT/systemd/gatehoused.service" >"$T/sec.log" 2>&1
score=$(sed -n 's/.*Overall exposure level for gatehoused.service: \([0-9.]*\).*/\1/p' "$T/sec.log")
if [ -n "$score" ] && awk "BEGIN { exit !($score <= 2.5) }"; then
	ok "systemd-analyze security: exposure $score (<= 2.5)"
else
	bad "systemd-analyze security: exposure '$score' (<= 2.5)" "$T/sec.log"
fi
if /usr/bin/python3 -c 'import paho.mqtt.client' 2>/dev/null && [ -x "$ROOT/$B/sim/modbus_sim" ]; then
	timeout 300 /usr/bin/python3 "$ROOT/tests/package/syscalls.py" "$B" >"$T/sc.log" 2>&1 &&
		ok "the sandbox allows what the daemon does (tests/package/syscalls.py)" ||
		bad "the sandbox allows what the daemon does (tests/package/syscalls.py)" "$T/sc.log"
else
	echo "  skip  tests/package/syscalls.py (needs python3-paho-mqtt and make $B/sim/modbus_sim)"
fi

echo "== package: a clean $SUITE (debootstrap minbase)"
if [ ! -s "$TARBALL" ]; then
	if timeout 900 debootstrap --variant=minbase --make-tarball="$TARBALL.tmp" "$SUITE" "$T/mk" "$MIRROR" \
		>"$T/debootstrap.log" 2>&1; then
		mv "$TARBALL.tmp" "$TARBALL"
	else
		rm -f "$TARBALL.tmp"
		bad "debootstrap --make-tarball ($MIRROR)" "$T/debootstrap.log"
		finish
	fi
fi
if ! timeout 900 debootstrap --variant=minbase --unpack-tarball="$TARBALL" "$SUITE" "$CH" "$MIRROR" \
	>"$T/debootstrap.log" 2>&1; then
	bad "debootstrap --unpack-tarball" "$T/debootstrap.log"
	finish
fi
ok "debootstrap minbase $SUITE"
cat >"$CH/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
# no daemon starts in the chroot (mosquitto's own postinst would try)
printf '#!/bin/sh\nexit 101\n' >"$CH/usr/sbin/policy-rc.d"
chmod 0755 "$CH/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$CH/etc/resolv.conf"
mount -t proc proc "$CH/proc"
cp "$CACHE"/archives/*.deb "$CH/var/cache/apt/archives/" 2>/dev/null
cp "$DEB" "$DEB2" "$CH/tmp/"
D1=/tmp/$(basename "$DEB")
D2=/tmp/$(basename "$DEB2")
check "apt-get update" inch timeout 600 apt-get update -q

echo "== package: first install (apt-get install ./$(basename "$DEB"))"
inch timeout 900 apt-get install -y -q "$D1" >"$T/install1.log" 2>&1 &&
	ok "apt-get install with its dependencies from the mirror" || bad "apt-get install" "$T/install1.log"
inch dpkg-query -W -f='${Status} ${Version}\n' gatehouse >"$T/out" 2>&1
grep -q "install ok installed $VERSION" "$T/out" && ok "gatehouse $VERSION installed" || bad "installed" "$T/out"

missing=""
for f in /usr/sbin/gatehoused /usr/bin/gatehouse /etc/gatehouse/gatehouse.conf \
	/etc/mosquitto/conf.d/gatehouse.conf /lib/systemd/system/gatehoused.service \
	/lib/modules-load.d/gatehouse.conf /usr/share/doc/gatehouse/copyright /usr/share/doc/gatehouse/README.md \
	/usr/share/man/man8/gatehoused.8.gz /usr/share/man/man1/gatehouse.1.gz \
	/usr/share/doc/gatehouse/examples/99-gatehouse-ftdi-latency.rules; do
	[ -e "$CH$f" ] || missing="$missing $f"
done
for p in "$ROOT"/drivers/profiles/*.ini; do
	[ -f "$CH/usr/share/gatehouse/profiles/$(basename "$p")" ] || missing="$missing profiles/$(basename "$p")"
done
if [ -f "$ROOT/web-ui/index.html" ]; then
	[ -f "$CH/usr/share/gatehouse/web-ui/index.html" ] || missing="$missing web-ui/index.html"
fi
[ -d "$CH/usr/share/gatehouse/web-ui" ] || missing="$missing web-ui/"
[ -z "$missing" ] && ok "files in place (binaries, config, broker snippet, unit, profiles, web UI, docs)" ||
	bad "files in place, missing:$missing"
[ -x "$CH/usr/sbin/gatehoused" ] && [ -x "$CH/usr/bin/gatehouse" ] && ok "gatehoused in /usr/sbin, gatehouse in /usr/bin" ||
	bad "binaries executable"
inch dpkg-query -W -f='${Conffiles}\n' gatehouse >"$T/out" 2>&1
grep -q "/etc/gatehouse/gatehouse.conf" "$T/out" && grep -q "/etc/mosquitto/conf.d/gatehouse.conf" "$T/out" &&
	ok "both configs are conffiles" || bad "conffiles" "$T/out"
plugin=$(sed -n 's/^plugin //p' "$CH/etc/mosquitto/conf.d/gatehouse.conf")
[ -n "$plugin" ] && [ -f "$CH$plugin" ] && ok "the broker snippet names the installed plugin ($plugin)" ||
	bad "dynamic-security plugin at '$plugin'"

pw=$(inch getent passwd gatehouse)
uid=$(echo "$pw" | cut -d: -f3)
[ -n "$uid" ] && [ "$uid" -lt 1000 ] && echo "$pw" | grep -q ':/var/lib/gatehouse:/usr/sbin/nologin$' &&
	ok "system user gatehouse ($pw)" || bad "system user gatehouse: '$pw'"
inch id -nG gatehouse >"$T/out" 2>&1
grep -qw dialout "$T/out" && grep -qw gatehouse "$T/out" && ok "gatehouse is in dialout ($(cat "$T/out"))" ||
	bad "gatehouse in dialout" "$T/out"
[ "$(perms /var/lib/gatehouse)" = "750 gatehouse:gatehouse" ] && ok "/var/lib/gatehouse 0750 gatehouse" ||
	bad "/var/lib/gatehouse: $(perms /var/lib/gatehouse)"
[ -s "$CH/etc/gatehouse/mqtt.password" ] && [ "$(perms /etc/gatehouse/mqtt.password)" = "640 root:gatehouse" ] &&
	ok "mqtt.password 0640 root:gatehouse" || bad "mqtt.password: $(perms /etc/gatehouse/mqtt.password)"
[ "$(perms /etc/gatehouse/web.key)" = "640 root:gatehouse" ] && [ "$(perms /etc/gatehouse/web.crt)" = "644 root:root" ] &&
	ok "web UI pair: key 0640 root:gatehouse, certificate 0644" ||
	bad "web pair: key $(perms /etc/gatehouse/web.key), cert $(perms /etc/gatehouse/web.crt)"
[ "$(perms /etc/gatehouse/mqtt.key)" = "640 root:mosquitto" ] && [ "$(perms /etc/gatehouse/mqtt.crt)" = "644 root:root" ] &&
	ok "broker pair: key 0640 root:mosquitto, certificate 0644" ||
	bad "broker pair: key $(perms /etc/gatehouse/mqtt.key), cert $(perms /etc/gatehouse/mqtt.crt)"
tlsok=1
for n in web mqtt; do
	openssl x509 -in "$CH/etc/gatehouse/$n.crt" -noout -text >"$T/x509" 2>&1 || tlsok=0
	grep -q "prime256v1" "$T/x509" || tlsok=0
	a=$(openssl x509 -in "$CH/etc/gatehouse/$n.crt" -noout -pubkey 2>/dev/null)
	k=$(openssl pkey -in "$CH/etc/gatehouse/$n.key" -pubout 2>/dev/null)
	[ -n "$a" ] && [ "$a" = "$k" ] || tlsok=0
	openssl verify -CAfile "$CH/etc/gatehouse/$n.crt" "$CH/etc/gatehouse/$n.crt" >/dev/null 2>&1 || tlsok=0
done
[ $tlsok -eq 1 ] && ok "both pairs: EC P-256, self-signed, key matches" || bad "TLS pairs" "$T/x509"
DYN=/var/lib/mosquitto/gatehouse-dynsec.json
[ "$(perms $DYN)" = "600 mosquitto:mosquitto" ] && grep -q '"gatehoused"' "$CH$DYN" &&
	grep -q '"gatehouse/#"' "$CH$DYN" && ok "broker accounts: admin gatehoused, may publish gatehouse/# ($DYN 0600 mosquitto)" ||
	bad "dynamic-security state: $(perms $DYN)"
ADMINPW=$(sed -n 's/.*web UI login: user admin, password \([^ ]*\).*/\1/p' "$T/install1.log" | head -n 1)
[ -n "$ADMINPW" ] && [ "$(grep -c 'web UI login: user admin, password' "$T/install1.log")" -eq 1 ] &&
	ok "the admin password was printed once" || bad "admin password printed" "$T/install1.log"
grep -q "systemd is not running" "$T/install1.log" && ok "no systemd in the chroot: enabled, not started" ||
	bad "skips the service start gracefully" "$T/install1.log"
[ -L "$CH/etc/systemd/system/multi-user.target.wants/gatehoused.service" ] && ok "gatehoused.service enabled" ||
	bad "gatehoused.service enabled"
ghc status >"$T/status.json" 2>"$T/out"
schema=$(jnum schema "$T/status.json")
[ "$schema" = "$NSCHEMA" ] && ok "gatehouse status: schema migrated ($schema of $NSCHEMA)" ||
	bad "gatehouse status: schema '$schema', want $NSCHEMA" "$T/out"
[ "$(perms /var/lib/gatehouse/site.db)" = "640 gatehouse:gatehouse" ] && ok "site.db 0640 gatehouse" ||
	bad "site.db: $(perms /var/lib/gatehouse/site.db)"
check "gatehoused --check-config accepts the installed config" \
	inch runuser -u gatehouse -- gatehoused --config /etc/gatehouse/gatehouse.conf --check-config
! sed -n '/^Name: gatehouse\/admin_password/,/^$/p' "$CH"/var/cache/debconf/*.dat | grep -q '^Value: .' &&
	ok "no password left in the debconf database" || bad "debconf password cleared"

# e2e NAME PASSWORD SCRIPT MODE: runs SCRIPT (sh) in a private network namespace (the
# broker's and the web UI's ports never meet the host's); it prints ok/FAIL lines
e2e() {
	if ! unshare --net true 2>/dev/null; then
		echo "  skip  $1 (unshare --net is not permitted here)"
		return 0
	fi
	CH=$CH T=$T ADMINPW=$2 MODE=$4 timeout 120 unshare --net sh "$3" >"$T/e2e.log" 2>&1
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok }" ;;
		"FAIL "*) bad "${line#FAIL }" ;;
		*) echo "        $line" ;;
		esac
	done <"$T/e2e.log"
	left=$(inside)
	[ -z "$left" ] && ok "nothing left running in the chroot" || bad "left running in the chroot: $left"
}

# The broker and the daemon, started from the installed files as systemd
# would (mosquitto as root dropping to its user; gatehoused as gatehouse with
# dialout); every process by its pid, all ended before the namespace goes.
cat >"$T/e2e.sh" <<'EOF'
set -u
ip link set lo up
pids=""
end() { for p in $pids; do kill "$p" 2>/dev/null; done; for p in $pids; do wait "$p" 2>/dev/null; done; }
trap end EXIT
inch() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 chroot "$CH" "$@"; }
# background processes: env execs chroot execs the program, so $! is its pid
ENV="env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8"
ghc() { inch runuser -u gatehouse -- gatehouse --config /etc/gatehouse/gatehouse.conf "$@"; }
waitfor() { i=0; while [ $i -lt 100 ]; do "$@" && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
r() { if "$@"; then echo "ok $name"; else echo "FAIL $name"; fi; }

# what systemd would make (RuntimeDirectory=), with the chroot's user ids
install -d -o "$(stat -c %u "$CH/var/lib/mosquitto")" -g "$(stat -c %g "$CH/var/lib/mosquitto")" "$CH/run/mosquitto"
install -d -m 0750 -o "$(stat -c %u "$CH/var/lib/gatehouse")" -g "$(stat -c %g "$CH/var/lib/gatehouse")" "$CH/run/gatehouse"
if [ "$MODE" = full ]; then
	$ENV chroot "$CH" /usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf >"$T/mosquitto.out" 2>&1 &
	pids="$pids $!"
	name="the broker starts on the installed config (1883 and 8883)"
	r waitfor sh -c 'ss -ltnH | grep -q ":1883 " && ss -ltnH | grep -q ":8883 "'
	ss -ltnH | awk '{print "listening " $4}'
	name="TLS on 8883 with the installed certificate"
	r sh -c "openssl s_client -connect 127.0.0.1:8883 -CAfile '$CH/etc/gatehouse/mqtt.crt' -verify_return_error </dev/null 2>&1 | grep -q 'Verify return code: 0'"
	name="anonymous MQTT is refused"
	r sh -c 'mosquitto_sub -h 127.0.0.1 -p 1883 -t "#" -C 1 -W 3 2>&1 | grep -q "not authori"'
fi
$ENV chroot "$CH" setpriv --reuid=gatehouse --regid=gatehouse --init-groups -- \
	/usr/sbin/gatehoused --config /etc/gatehouse/gatehouse.conf >"$T/daemon.out" 2>&1 &
pids="$pids $!"
name="gatehoused runs as gatehouse on the installed config"
r waitfor sh -c "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot '$CH' runuser -u gatehouse -- gatehouse status 2>/dev/null | grep -q '\"daemon\": \"running\"'"
name="the web UI login works with the admin password"
r waitfor sh -c "curl -sk --max-time 5 -X POST -H 'Content-Type: application/json' \
	-d '{\"user\":\"admin\",\"password\":\"$ADMINPW\"}' https://127.0.0.1:8443/api/v1/login | grep -q csrf"
name="a wrong password is refused"
r sh -c "! curl -sk --max-time 5 -X POST -H 'Content-Type: application/json' \
	-d '{\"user\":\"admin\",\"password\":\"wrong-$ADMINPW\"}' https://127.0.0.1:8443/api/v1/login | grep -q csrf"
if [ "$MODE" = full ]; then
	echo '[{"id":"0C11050B98AA"}]' | ghc put mac - >/dev/null 2>&1
	ghc device add 0C11050B98AA --type 0 --name "Package test" >"$T/devadd.json" 2>&1
	devpw=$(sed -n 's/.*"mqtt_password": "\([^"]*\)".*/\1/p' "$T/devadd.json")
	name="device add makes a broker account through gatehoused's admin account"
	r test -n "$devpw"
	name="the device reads the gateway's retained status (gatehoused publishes under gatehouse/#)"
	r sh -c "mosquitto_sub -h 127.0.0.1 -p 1883 -u 0C11050B98AA -P '$devpw' -t gatehouse/v1/gw/status -C 1 -W 5 2>&1 | grep -q '\"online\": *true'"
	name="gatehouse backup while the daemon runs"
	r sh -c "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot '$CH' runuser -u gatehouse -- gatehouse backup /var/lib/gatehouse/pkgtest-backup.db >/dev/null 2>&1 && test -s '$CH/var/lib/gatehouse/pkgtest-backup.db'"
fi
name="no errors in the daemon's log"
r sh -c "! grep -E ' (error|crit) ' '$T/daemon.out'"
grep -E ' (error|crit|warn) ' "$T/daemon.out" | head -n 10
EOF
echo "== package: the installed broker and daemon, running"
e2e "the installed broker and daemon" "$ADMINPW" "$T/e2e.sh" full

echo "== package: documented operations"
if [ -s "$CH/var/lib/gatehouse/pkgtest-backup.db" ]; then
	check "gatehouse restore with the daemon stopped (the backup made while it ran)" \
		ghc restore /var/lib/gatehouse/pkgtest-backup.db
fi
rm -f "$CH/etc/gatehouse/web.crt" "$CH/etc/gatehouse/web.key"
inch dpkg-reconfigure -fnoninteractive gatehouse >"$T/reconf.log" 2>&1 &&
	[ "$(perms /etc/gatehouse/web.key)" = "640 root:gatehouse" ] && [ -s "$CH/etc/gatehouse/web.crt" ] &&
	! grep -q "web UI login: user admin, password" "$T/reconf.log" &&
	ok "dpkg-reconfigure gatehouse remakes a missing web UI pair, nothing else" || bad "dpkg-reconfigure" "$T/reconf.log"

echo "== package: reinstall and upgrade keep the site"
echo '{"id":"pkgtest","name":"Kept across upgrades"}' | ghc put building - >"$T/out" 2>&1 &&
	ok "a building stored before the upgrade" || bad "put building" "$T/out"
sed -i 's/^id = my-site$/id = pkgtest-site/' "$CH/etc/gatehouse/gatehouse.conf"
sums() { (cd "$CH" && md5sum etc/gatehouse/mqtt.password etc/gatehouse/web.key etc/gatehouse/mqtt.key) 2>&1; }
sums >"$T/sums.before"
inch timeout 600 apt-get install -y -q --reinstall "$D1" >"$T/install2.log" 2>&1 &&
	ok "apt-get install --reinstall" || bad "reinstall" "$T/install2.log"
inch timeout 600 apt-get install -y -q "$D2" >"$T/install3.log" 2>&1 &&
	ok "apt-get install the bumped version (upgrade)" || bad "upgrade" "$T/install3.log"
inch dpkg-query -W -f='${Version}' gatehouse >"$T/out" 2>&1
grep -qx "$VERSION+pkgtest1" "$T/out" && ok "upgraded to $VERSION+pkgtest1" || bad "upgraded version" "$T/out"
ghc get building pkgtest >"$T/out" 2>&1 && grep -q "Kept across upgrades" "$T/out" &&
	ok "the database is kept (the building is there)" || bad "database kept" "$T/out"
ghc status >"$T/status.json" 2>"$T/out"
[ "$(jnum schema "$T/status.json")" = "$NSCHEMA" ] && ok "schema still at $NSCHEMA after the upgrade" ||
	bad "schema after upgrade" "$T/status.json"
sums >"$T/sums.after"
cmp -s "$T/sums.before" "$T/sums.after" && ok "secrets and TLS keys unchanged" || bad "secrets unchanged" "$T/sums.after"
grep -q "^id = pkgtest-site$" "$CH/etc/gatehouse/gatehouse.conf" && ok "the edited config is kept (conffile)" ||
	bad "edited config kept"
! grep -q "web UI login: user admin, password" "$T/install2.log" "$T/install3.log" &&
	ok "no new admin password on reinstall or upgrade" || bad "admin password printed again"

echo "== package: remove keeps the data, purge removes it"
inch timeout 600 apt-get remove -y -q gatehouse >"$T/remove.log" 2>&1 && ok "apt-get remove" ||
	bad "apt-get remove" "$T/remove.log"
[ ! -e "$CH/usr/sbin/gatehoused" ] && [ -s "$CH/var/lib/gatehouse/site.db" ] &&
	[ -s "$CH/etc/gatehouse/mqtt.password" ] && [ -e "$CH$DYN" ] && inch getent passwd gatehouse >/dev/null &&
	ok "after remove: binaries gone; database, secrets, broker accounts and user kept" ||
	bad "remove keeps the data"
inch dpkg-query -W -f='${Status}' gatehouse >"$T/out" 2>&1
grep -q "deinstall ok config-files" "$T/out" && ok "state config-files" || bad "state after remove" "$T/out"
inch timeout 600 apt-get purge -y -q gatehouse >"$T/purge.log" 2>&1 && ok "apt-get purge" ||
	bad "apt-get purge" "$T/purge.log"
left=""
for f in /var/lib/gatehouse /etc/gatehouse /etc/mosquitto/conf.d/gatehouse.conf "$DYN" \
	/etc/systemd/system/multi-user.target.wants/gatehoused.service; do
	[ -e "$CH$f" ] || [ -L "$CH$f" ] && left="$left $f"
done
[ -z "$left" ] && ok "after purge: data, config, secrets, broker accounts gone" || bad "purge left:$left"
! inch getent passwd gatehouse >/dev/null && ! inch getent group gatehouse >/dev/null &&
	ok "after purge: user and group gatehouse gone" || bad "user gone after purge"
! grep -qs "gatehouse/" "$CH/var/cache/debconf/config.dat" "$CH/var/cache/debconf/passwords.dat" &&
	ok "after purge: nothing left in the debconf database" || bad "debconf purged"

echo "== package: an unattended install with a preseeded admin password"
PRESEED=Preseeded-pass-4711
echo "gatehouse gatehouse/admin_password password $PRESEED" | inch debconf-set-selections &&
	inch timeout 600 apt-get install -y -q "$D1" >"$T/install4.log" 2>&1 &&
	ok "install after purge, password preseeded" || bad "preseeded install" "$T/install4.log"
grep -q "the preseeded password" "$T/install4.log" && ! grep -q "web UI login: user admin, password" "$T/install4.log" &&
	ok "the preseeded password is used, none printed" || bad "preseeded password used" "$T/install4.log"
! grep -qs "$PRESEED" "$CH/var/cache/debconf/passwords.dat" "$CH/var/cache/debconf/config.dat" &&
	ok "the preseeded password is cleared from debconf" || bad "preseeded password cleared"
e2e "the preseeded password logs in" "$PRESEED" "$T/e2e.sh" login
inch timeout 600 apt-get purge -y -q gatehouse >"$T/purge2.log" 2>&1 && ok "purge again" || bad "purge again" "$T/purge2.log"

finish
