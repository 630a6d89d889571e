#!/bin/sh
# End-to-end tests of the two programs as an installer uses them: the
# daemon on a real SQLite file with its control socket, and the CLI.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -u
B=${GH_BUILD:-build}
ROOT=$(pwd)
T=$(mktemp -d /tmp/gh-cli-XXXXXX)
DPID=""
pass=0
failn=0
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "  ok    $1"; }
bad() { failn=$((failn + 1)); echo "  FAIL  $1"; [ -f "$T/out" ] && sed 's/^/        /' "$T/out" | head -20; }
check() { # name, command...
	name=$1; shift
	if "$@" >"$T/out" 2>&1; then ok "$name"; else bad "$name"; fi
}
gh() { "$ROOT/$B/gatehouse" --config "$T/gh.conf" "$@"; }
# GH_VALGRIND=1 (make check-valgrind): the daemon under memcheck, waits x10
# (the options are testlib.daemon_cmd's, where the logs are checked too)
VG=""
SLOW=1
if [ "${GH_VALGRIND:-}" = 1 ]; then
	VG=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import testlib; print(" ".join(testlib.daemon_cmd("", sys.argv[2])[:-1]))' "$ROOT/tests/sim" "$T")
	SLOW=10
fi

cat >"$T/gh.conf" <<CONF
[site]
id = test-site
[storage]
db = site.db
[drivers]
profiles_dir = $ROOT/drivers/profiles
[daemon]
control_socket = ctl.sock
log_level = info
CONF

echo "== cli: config errors"
printf '[site]\nid = x\n[storage]\nbogus = 1\n' >"$T/bad.conf"
$VG "$ROOT/$B/gatehoused" --config "$T/bad.conf" >"$T/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q 'bad.conf:4: unknown key "bogus" in section \[storage\]' "$T/out" &&
	[ "$(wc -l <"$T/out")" -eq 1 ]; then ok "bad key exits 2 with file:line"; else bad "bad key exits 2 with file:line (rc=$rc)"; fi
printf '[storage]\ndb = x.db\n' >"$T/bad2.conf"
$VG "$ROOT/$B/gatehoused" --config "$T/bad2.conf" >"$T/out" 2>&1
[ $? -eq 2 ] && grep -q 'site\] id is required' "$T/out" && ok "missing site id exits 2" || bad "missing site id exits 2"
$VG "$ROOT/$B/gatehoused" --config "$T/nonexistent.conf" >"$T/out" 2>&1
[ $? -eq 2 ] && grep -q 'nonexistent.conf:0: cannot read' "$T/out" && ok "missing config exits 2" || bad "missing config exits 2"
check "--check-config accepts a good file" $VG "$ROOT/$B/gatehoused" --config "$T/gh.conf" --check-config

echo "== cli: seeding through the validator"
cat >"$T/site.json" <<JSON
{"timezone": "Europe/Vienna", "pin_mode": "pin"}
JSON
check "put settings" gh put settings "$T/site.json"
echo '[{"id":"0C11050B9814"},{"id":"0C11050B9815"}]' >"$T/macs.json"
check "put macs" gh put mac "$T/macs.json"
echo '{"id":"b1","name":"Block A"}' | gh put building - >"$T/out" 2>&1 && ok "put building from stdin" || bad "put building from stdin"
echo '{"id":"a101","building":"b1","apt":"101","floor":"3"}' | gh put apartment - >"$T/out" 2>&1 && ok "put apartment" || bad "put apartment"
echo '{"id":"a1","building":"b1","apt":"#12"}' | gh put apartment - >"$T/out" 2>&1
[ $? -ne 0 ] && grep -q "apt must be 1-6" "$T/out" && ok "bad APT refused naming the field" || bad "bad APT refused naming the field"
check "device add (MAC into library)" gh device add 0C11050B9816 --type 0 --name "Gate"
echo '{"id":"0C11050B9814","type":0,"name":"Main entrance","area":"building","building":"b1","relays":[{"n":1,"name":"Door"}]}' |
	gh put device - >"$T/out" 2>&1 && ok "put door phone" || bad "put door phone"
echo '{"id":"p1","kind":"resident","apartment":"a101","first_name":"Anna","last_name":"Berger"}' | gh put person - >"$T/out" 2>&1 && ok "put person" || bad "put person"
echo '{"id":"c1","person":"p1","type":"pin","code":"1234"}' | gh put credential - >"$T/out" 2>&1 && ok "put PIN" || bad "put PIN"
echo '{"id":"c2","person":"p1","type":"pin","code":"9123"}' | gh put credential - >"$T/out" 2>&1
[ $? -ne 0 ] && grep -q "must not start with 9" "$T/out" && ok "PIN starting with 9 refused" || bad "PIN starting with 9 refused"
echo '{"id":"g1","name":"Block A","building":"b1","relays":[{"device":"0C11050B9814","relay":1}]}' | gh put access_group - >"$T/out" 2>&1 && ok "put default group" || bad "put default group"
gh get person p1 >"$T/out" 2>&1 && grep -q '"first_name": "Anna"' "$T/out" && ok "get person" || bad "get person"
gh get person nobody >"$T/out" 2>&1
[ $? -eq 3 ] && ok "get unknown -> exit 3" || bad "get unknown -> exit 3"

echo "== cli: decisions without the daemon"
gh access check --device 0C11050B9814 --method pin --code 1234 --relay 1 >"$T/out" 2>&1
[ $? -eq 0 ] && grep -q '"granted": true' "$T/out" && grep -q '"via": "local"' "$T/out" && ok "local access check granted" || bad "local access check granted"
gh access check --device 0C11050B9814 --method pin --code 4321 >"$T/out" 2>&1
[ $? -eq 4 ] && grep -q '"reason": "unknown_credential"' "$T/out" && ok "unknown PIN denied (exit 4)" || bad "unknown PIN denied (exit 4)"

echo "== cli: residents import"
gh import residents "$ROOT/tests/data/residents_bad.csv" >"$T/out" 2>&1
[ $? -ne 0 ] && grep -q '"line": 3' "$T/out" && grep -q '"field": "Apt"' "$T/out" && ok "bad CSV refused with line and column" || bad "bad CSV refused with line and column"
before=$(sqlite3 "$T/site.db" "select count(*) from persons")
[ "$before" = 1 ] && ok "a refused file imports nothing" || bad "a refused file imports nothing ($before persons)"
printf 'Building,Apt,First Name,Last Name,PIN\nBlock A,102,Max,Muster,5678\nBlock A,103,Eva,Muster,9999\n' >"$T/mixed.csv"
gh import residents --partial "$T/mixed.csv" >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q '"imported": 1' "$T/out" && grep -q "1 rows failed" "$T/out" && ok "--partial keeps good rows, exits 1" || bad "--partial keeps good rows, exits 1"
gh access check --device 0C11050B9814 --method pin --code 5678 >"$T/out" 2>&1
[ $? -eq 0 ] && grep -q '"person": "Max Muster"' "$T/out" && ok "imported resident opens the door" || bad "imported resident opens the door"
sqlite3 "$T/site.db" "select count(*) from local_changes where actor='import'" | grep -qv '^0$' && ok "import journaled for the cloud" || bad "import journaled for the cloud"

echo "== cli: users"
printf 'correct horse battery\n' | gh user add alice --role manager >"$T/out" 2>&1 && ok "user add (password on stdin)" || bad "user add"
printf 'correct horse battery\n' | gh user add alice --role manager >"$T/out" 2>&1
[ $? -ne 0 ] && grep -q "already exists" "$T/out" && ok "duplicate user refused" || bad "duplicate user refused"
printf 'short\n' | gh user add bob --role viewer >"$T/out" 2>&1
[ $? -ne 0 ] && grep -q "8-256" "$T/out" && ok "short password refused" || bad "short password refused"
printf 'x\n' | gh user add carol --role root >"$T/out" 2>&1
[ $? -ne 0 ] && grep -q "role must be" "$T/out" && ok "bad role refused" || bad "bad role refused"
h=$(sqlite3 "$T/site.db" "select hash from users where name='alice'")
case "$h" in '$scrypt$ln=14,r=8,p=1$'*) ok "password stored as scrypt hash" ;; *) bad "password stored as scrypt hash" ;; esac
sqlite3 "$T/site.db" "select count(*) from audit_logs where action='user_add' and eid='alice'" | grep -qx 1 && ok "user add audited" || bad "user add audited"
printf 'another long secret\n' | gh user passwd alice >"$T/out" 2>&1 &&
	[ "$(sqlite3 "$T/site.db" "select hash from users where name='alice'")" != "$h" ] && ok "user passwd changes the hash" || bad "user passwd changes the hash"
printf 'correct horse battery\n' | gh user add bob --role viewer >/dev/null 2>&1
gh user del bob >"$T/out" 2>&1 && [ "$(sqlite3 "$T/site.db" "select count(*) from users where name='bob'")" = 0 ] && ok "user del" || bad "user del"
gh user del bob >"$T/out" 2>&1
[ $? -eq 3 ] && grep -q "no user bob" "$T/out" && ok "deleting an unknown user -> exit 3" || bad "deleting an unknown user -> exit 3"
grep -rq "correct horse" "$T/site.db" && bad "no plain password in the database" || ok "no plain password in the database"

echo "== daemon: start, serve, reload, stop"
$VG "$ROOT/$B/gatehoused" --config "$T/gh.conf" 2>"$T/daemon.log" &
DPID=$!
i=0
while [ ! -S "$T/ctl.sock" ] && [ $i -lt $((100 * SLOW)) ]; do sleep 0.05; i=$((i + 1)); done
[ -S "$T/ctl.sock" ] && ok "daemon listens on its control socket" || bad "daemon listens on its control socket"
perm=$(stat -c %a "$T/ctl.sock" 2>/dev/null)
[ "$perm" = "660" ] && ok "control socket is 0660" || bad "control socket is 0660 (got $perm)"
gh status >"$T/out" 2>&1
rc=$?
grep -q '"daemon": "running"' "$T/out" && grep -q '"wan": "standalone"' "$T/out" && ok "status from the daemon" || bad "status from the daemon"
# no broker runs in this test: status names that, says what to check, exits 4
[ $rc -eq 4 ] && grep -q '"level": "error"' "$T/out" && grep -q 'not connected to the MQTT broker' "$T/out" &&
	ok "status explains what is wrong (no broker) and exits 4" || bad "status explains what is wrong (exit $rc)"
gh status --text >"$T/out" 2>&1
grep -q '^gatehouse .*daemon running' "$T/out" && grep -q 'broker     NOT CONNECTED' "$T/out" &&
	grep -q 'ERROR   not connected to the MQTT broker' "$T/out" && grep -q -- '-> check mosquitto runs' "$T/out" &&
	ok "status --text: a summary, the problem and what to check" || bad "status --text: $(cat "$T/out")"
gh status --bogus >"$T/out" 2>&1
[ $? -eq 2 ] && grep -q 'status takes --json or --text' "$T/out" && ok "status with a wrong option -> exit 2" || bad "status with a wrong option"
gh access check --device 0C11050B9814 --method pin --code 1234 >"$T/out" 2>&1
[ $? -eq 0 ] && grep -q '"via": "daemon"' "$T/out" && grep -q '"person": "Anna Berger"' "$T/out" && ok "daemon decides access" || bad "daemon decides access"
grep -q 'info engine: access.check device=0C11050B9814 method=pin relay=0 -> granted' "$T/daemon.log" && ok "decision logged with level and subsystem" || bad "decision logged"
grep -q '1234' "$T/daemon.log" && bad "PIN never in the daemon log" || ok "PIN never in the daemon log"
# the daemon commits door logs within a few ms of the decision
i=0; while ! sqlite3 "$T/site.db" "select result, code from door_logs order by id desc limit 1" | grep -qx 'success|\*\*\*\*' && [ $i -lt $((50 * SLOW)) ]; do sleep 0.02; i=$((i + 1)); done
sqlite3 "$T/site.db" "select result, code from door_logs order by id desc limit 1" | grep -qx 'success|\*\*\*\*' && ok "door log written, PIN masked" || bad "door log written, PIN masked"
gh export logs --from 2000-01-01 --to 2100-12-31 "$T/door.csv" 2>"$T/out"
# the daemon may commit another log meanwhile: compare with the database up to the export's last id
ids=$(tail -n +2 "$T/door.csv" | cut -d, -f1 | tr -d '\r' | tr '\n' ' ')
last=$(echo "$ids" | awk '{print $NF}')
want=$(sqlite3 "$T/site.db" "select id from door_logs where id <= ${last:-0} order by id" | tr '\n' ' ')
n=$(echo "$ids" | wc -w)
head -n 1 "$T/door.csv" | grep -q '^id,ts,type,' && [ "$n" -gt 0 ] && [ "$ids" = "$want" ] &&
	grep -q "$n door logs written" "$T/out" && ok "export logs: every door log in the range as CSV ($n)" || bad "export logs ($n; $ids vs $want): $(cat "$T/out")"
grep -q '1234' "$T/door.csv" && bad "export logs keeps PINs masked" || ok "export logs keeps PINs masked"
gh export logs --from 2100-01-01 "$T/none.csv" 2>/dev/null && [ "$(grep -c . "$T/none.csv")" = 1 ] &&
	ok "export logs of an empty range: the header only" || bad "export logs of an empty range"
gh export logs --log audit - 2>/dev/null | head -n 1 | grep -q '^id,ts,actor,action' && ok "export logs --log audit to stdout" || bad "export logs --log audit to stdout"
gh export logs --from yesterday "$T/x.csv" >"$T/out" 2>&1
[ $? -eq 2 ] && grep -q -- '--from yesterday: expected Unix seconds or a date' "$T/out" && [ ! -e "$T/x.csv" ] &&
	ok "export logs with a bad date -> exit 2, no file" || bad "export logs with a bad date: $(cat "$T/out")"
gh export logs --log doors "$T/x.csv" >"$T/out" 2>&1
[ $? -eq 2 ] && grep -q 'logs are door, calls' "$T/out" && ok "export logs of an unknown log -> exit 2" || bad "export logs of an unknown log"
gh export logs "$T/no/such/dir/x.csv" >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q 'cannot write' "$T/out" && ok "export logs to an unwritable place -> exit 1, says why" || bad "export logs unwritable: $(cat "$T/out")"
# an edit by the CLI while the daemon runs is seen by the next decision
echo '{"id":"p1","kind":"resident","apartment":"a101","first_name":"Anna","active":false}' | gh put person - >/dev/null 2>&1
gh access check --device 0C11050B9814 --method pin --code 1234 >"$T/out" 2>&1
grep -q '"reason": "disabled"' "$T/out" && ok "CLI edit applies at once in the daemon" || bad "CLI edit applies at once in the daemon"
printf '{"op":"access.check","device":"0C11050B9814","method":"pin"}\nnot json\n' >"$T/req"
python3 - "$T/ctl.sock" "$T/req" >"$T/out" 2>&1 <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(open(sys.argv[2], 'rb').read())
buf = b''
while buf.count(b'\n') < 2:
    d = s.recv(4096)
    if not d: break
    buf += d
print(buf.decode())
PY
grep -q 'access.check needs method and code' "$T/out" && grep -q 'request is not JSON' "$T/out" && ok "malformed requests answered, no crash" || bad "malformed requests answered"
gh emergency on >"$T/out" 2>&1 && grep -q '"state": "on"' "$T/out" && ok "emergency on through the daemon" || bad "emergency on"
gh status | grep -q '"emergency": true' && ok "status shows the emergency" || bad "status shows the emergency"
gh emergency off >/dev/null 2>&1
gh backup "$T/backup.db" >"$T/out" 2>&1 && [ "$(sqlite3 "$T/backup.db" 'select count(*) from persons')" = "$(sqlite3 "$T/site.db" 'select count(*) from persons')" ] && ok "online backup while the daemon runs" || bad "online backup"
gh restore "$T/backup.db" >"$T/out" 2>&1
[ $? -ne 0 ] && grep -q "daemon stopped" "$T/out" && ok "restore refused while the daemon runs" || bad "restore refused while the daemon runs"
sed -i 's/log_level = info/log_level = debug/' "$T/gh.conf"
kill -HUP "$DPID"
i=0; while ! grep -q "configuration reloaded" "$T/daemon.log" && [ $i -lt $((50 * SLOW)) ]; do sleep 0.05; i=$((i + 1)); done
grep -q "configuration reloaded" "$T/daemon.log" && kill -0 "$DPID" && ok "SIGHUP reloads" || bad "SIGHUP reloads"
# a control client still connected when the daemon stops (its close
# callback used to run after the server's had freed the socket's state)
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); open(sys.argv[2], "w").close(); time.sleep(60)' "$T/ctl.sock" "$T/held" &
HPID=$!
i=0; while [ ! -e "$T/held" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.2
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=""
kill "$HPID" 2>/dev/null; wait "$HPID" 2>/dev/null
gh status --text >"$T/out" 2>&1
[ $? -eq 4 ] && grep -q 'daemon stopped' "$T/out" && grep -q 'gatehoused is not running' "$T/out" &&
	grep -q 'journalctl -u gatehoused' "$T/out" && ok "status of a stopped daemon says so and where to look" ||
	bad "status of a stopped daemon: $(cat "$T/out")"
[ $rc -eq 0 ] && grep -q "stopping (SIGTERM)" "$T/daemon.log" && ok "SIGTERM stops cleanly (exit 0), a control client still connected" || bad "SIGTERM stops cleanly (rc=$rc)"
[ ! -S "$T/ctl.sock" ] && ok "control socket removed on stop" || bad "control socket removed on stop"
gh restore "$T/backup.db" >"$T/out" 2>&1 && ok "restore with the daemon stopped" || bad "restore with the daemon stopped"

echo "== daemon: systemd notify protocol"
python3 - "$T/notify.sock" "$T/notify.log" "$SLOW" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(0.2)
end = time.time() + 10 * int(sys.argv[3])
with open(sys.argv[2], "a", buffering=1) as log:
    while time.time() < end:
        try:
            log.write(s.recv(4096).decode() + "\n")
        except socket.timeout:
            pass
PY
LPID=$!
i=0; while [ ! -S "$T/notify.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=200000 $VG "$ROOT/$B/gatehoused" --config "$T/gh.conf" 2>>"$T/daemon.log" &
DPID=$!
i=0; while ! grep -q "READY=1" "$T/notify.log" 2>/dev/null && [ $i -lt $((100 * SLOW)) ]; do sleep 0.05; i=$((i + 1)); done
grep -q "READY=1" "$T/notify.log" && ok "READY=1 sent once serving" || bad "READY=1 sent once serving"
i=0; while [ "$(grep -c WATCHDOG=1 "$T/notify.log")" -lt 2 ] && [ $i -lt $((100 * SLOW)) ]; do sleep 0.05; i=$((i + 1)); done
[ "$(grep -c WATCHDOG=1 "$T/notify.log")" -ge 2 ] && ok "WATCHDOG=1 at half the watchdog interval" || bad "WATCHDOG=1 pings"
kill -TERM "$DPID"; wait "$DPID"; DPID=""
i=0; while ! grep -q "STOPPING=1" "$T/notify.log" && [ $i -lt $((40 * SLOW)) ]; do sleep 0.05; i=$((i + 1)); done
grep -q "STOPPING=1" "$T/notify.log" && ok "STOPPING=1 on SIGTERM" || bad "STOPPING=1 on SIGTERM"
kill "$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null

echo "== cli: a new database opened by several processes at once"
mkdir -p "$T/race"
sed "s|db = site.db|db = race/site.db|; s|control_socket = ctl.sock|control_socket = race/ctl.sock|" "$T/gh.conf" >"$T/race.conf"
$VG "$ROOT/$B/gatehoused" --config "$T/race.conf" 2>"$T/race/daemon.log" &
RPID=$!
for k in 1 2 3 4 5 6; do "$ROOT/$B/gatehouse" --config "$T/race.conf" list building >"$T/race/cli$k" 2>&1 & done
for k in 1 2 3 4 5 6; do wait %$((k + 1)) 2>/dev/null || true; done
sleep $((SLOW / 2)).5
n_ok=0
for k in 1 2 3 4 5 6; do grep -q '^\[' "$T/race/cli$k" && n_ok=$((n_ok + 1)); done
[ $n_ok -eq 6 ] && ok "six CLI runs and the daemon migrate a new file together" || { cat "$T"/race/cli* >"$T/out"; bad "six CLI runs and the daemon migrate a new file together ($n_ok of 6)"; }
kill -0 "$RPID" 2>/dev/null && ok "and the daemon is running" || { cp "$T/race/daemon.log" "$T/out"; bad "and the daemon is running"; }
kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null

if [ -n "$VG" ]; then
	if /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import testlib; bad = testlib.valgrind_report(sys.argv[2]); [print(f, e) for f, e in bad]; sys.exit(1 if bad else 0)' "$ROOT/tests/sim" "$T" >"$T/out" 2>&1 &&
		ls "$T"/valgrind.*.log >/dev/null 2>&1; then
		ok "cli: valgrind memcheck clean ($(ls "$T"/valgrind.*.log | wc -l) daemon runs)"
	else
		mkdir -p "$ROOT/$B/artifacts/valgrind-cli" && cp "$T"/valgrind.*.log "$ROOT/$B/artifacts/valgrind-cli/" 2>/dev/null
		bad "cli: valgrind memcheck clean (logs in $B/artifacts/valgrind-cli)"
	fi
fi

echo "cli: $pass passed, $failn failed"
[ $failn -eq 0 ]
