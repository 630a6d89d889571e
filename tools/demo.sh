#!/bin/sh
# make demo: a seeded community site on this machine, all on loopback: the
# real mosquitto broker (dynamic security, an account per device), gatehoused
# on a real SQLite file, and simulated door phones and indoor monitors that
# ask it for decisions, route calls and report events over MQTT. Ctrl-C stops
# everything. Simulated Modbus boards and a cloud simulator over HTTPS (taken
# down for 20 s every minute: a scripted WAN outage, or on demand with
# tools/demo-wan.sh) and the web UI over HTTPS are part of it.
set -eu
B=${1:-build}
ROOT=$(pwd)
D=${DEMO_DIR:-/tmp/gatehouse-demo}
if [ -f "$D/broker/pid" ]; then /usr/bin/python3 "$ROOT/tests/sim/broker.py" stop "$D/broker"; fi
if [ -f "$D/cloud/cloudsim.pid" ]; then /usr/bin/python3 "$ROOT/tests/sim/cloudsim.py" stop "$D/cloud" || true; fi
rm -rf "$D"
mkdir -p "$D/seed"
chmod 755 "$D"
echo "== starting the mosquitto broker (dynamic security, anonymous off)"
set -- $(/usr/bin/python3 "$ROOT/tests/sim/broker.py" start "$D/broker" gatehoused demo-gateway-pw)
PORT=$1
echo "== starting the cloud simulator (HTTPS with its own test CA)"
set -- $(/usr/bin/python3 "$ROOT/tests/sim/cloudsim.py" start "$D/cloud" --site parkview-demo --token demo-cloud-token)
CLOUD_PORT=$1
export CLOUD_CTL=$2
printf 'demo-cloud-token\n' >"$D/cloud.token"
chmod 600 "$D/cloud.token"
echo "   https://127.0.0.1:$CLOUD_PORT (control: http://127.0.0.1:$CLOUD_CTL/_sim/...)"
echo "== starting the simulated field bus (HF-8000, lift, UHF reader over Modbus TCP; MK485 over RTU on a pty)"
eval "$(/usr/bin/python3 -c 'import socket
for n in ("HF_PORT", "LIFT_PORT", "UHF_PORT"):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print("export %s=%d" % (n, s.getsockname()[1])); s.close()
s = socket.socket()
try:
    s.bind(("127.0.0.1", 8443))   # the packaged port when it is free
except OSError:
    s.bind(("127.0.0.1", 0))
print("export WEB_PORT=%d" % s.getsockname()[1]); s.close()')"
WEB_PORT=${DEMO_WEB_PORT:-$WEB_PORT}
export RTU_TTY="$D/ttyGW"
socat pty,raw,echo=0,link="$D/ttyGW" pty,raw,echo=0,link="$D/ttyBOARD" 2>/dev/null &
SOCAT=$!
i=0; while [ ! -e "$D/ttyBOARD" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
P="$ROOT/drivers/profiles"
"$ROOT/$B/sim/modbus_sim" --profile "$P/HF-8000.ini" --tcp "$HF_PORT" >"$D/sim-garage.log" 2>&1 &
S1=$!
"$ROOT/$B/sim/modbus_sim" --profile "$P/LIFT-16.ini" --tcp "$LIFT_PORT" >"$D/sim-lift.log" 2>&1 &
S2=$!
"$ROOT/$B/sim/modbus_sim" --profile "$P/MK485-G2R-8J8C.ini" --rtu "$D/ttyBOARD" >"$D/sim-bikes.log" 2>&1 &
S3=$!
mkfifo "$D/uhf.in"
"$ROOT/$B/sim/modbus_sim" --profile "$P/UHF-READER.ini" --tcp "$UHF_PORT" <"$D/uhf.in" >"$D/sim-uhf.log" 2>&1 &
S4=$!
exec 7<>"$D/uhf.in"   # keeps the reader's input open for the traffic script
printf 'demo-gateway-pw\n' >"$D/mqtt.password"
chmod 600 "$D/mqtt.password"
cat >"$D/gatehouse.conf" <<CONF
[site]
id = parkview-demo
[storage]
db = site.db
[drivers]
profiles_dir = $ROOT/drivers/profiles
[daemon]
control_socket = control.sock
log_level = info
[mqtt]
host = 127.0.0.1
port = $PORT
username = gatehoused
password_file = mqtt.password
manage_accounts = true
[cloud]
url = https://127.0.0.1:$CLOUD_PORT
token_file = cloud.token
ca_file = $D/cloud/ca.pem
[web]
listen = 127.0.0.1:$WEB_PORT
root = $ROOT/web-ui
CONF
gh() { "$ROOT/$B/gatehouse" --config "$D/gatehouse.conf" "$@"; }

echo "== seeding the demo site into $D/site.db (through the validator)"
python3 "$ROOT/tools/demo-seed.py" "$D/seed"
gh put settings "$D/seed/settings.json" >/dev/null
for kind in mac building apartment relay_board parking_lot device person credential access_group temp_key; do
	gh put "$kind" "$D/seed/$kind.json" | tail -n 1
done
echo "== issuing a broker account to every device"
python3 - "$D/seed/device.json" "$D/passwords.json" "$ROOT/$B/gatehouse" "$D/gatehouse.conf" <<'PY'
import json, subprocess, sys
out = {}
for d in json.load(open(sys.argv[1])):
    r = subprocess.run([sys.argv[3], "--config", sys.argv[4], "device", "passwd", d["id"]],
                       capture_output=True, text=True, check=True)
    out[d["id"]] = r.stdout.strip().split()[-1]
json.dump(out, open(sys.argv[2], "w"))
print("   %d device accounts" % len(out))
PY
chmod 600 "$D/passwords.json"
printf 'demo-admin-pw\n' | gh user add admin --role admin >/dev/null
printf 'demo-manager-pw\n' | gh user add manager --role manager >/dev/null
printf 'demo-viewer-pw\n' | gh user add viewer --role viewer >/dev/null
echo auto >"$D/wan"

echo "== starting gatehoused"
"$ROOT/$B/gatehoused" --config "$D/gatehouse.conf" 2>"$D/gatehoused.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; kill $S1 $S2 $S3 $S4 $SOCAT 2>/dev/null; /usr/bin/python3 "$ROOT/tests/sim/broker.py" stop "$D/broker"; /usr/bin/python3 "$ROOT/tests/sim/cloudsim.py" stop "$D/cloud"; echo "== stopped; door logs in $D/site.db, daemon log $D/gatehoused.log"' EXIT INT TERM
i=0
while [ ! -S "$D/control.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -S "$D/control.sock" ] || { cat "$D/gatehoused.log"; exit 1; }
gh status | head -n 12
cat <<BANNER
==========================================================================
 web UI:  https://127.0.0.1:$WEB_PORT/   (self-signed certificate: accept it)
 login:   admin / demo-admin-pw     (also manager / demo-manager-pw, viewer / demo-viewer-pw)
 WAN:     down 20 s every minute; take it down or up yourself, in another shell:
          sh tools/demo-wan.sh down|up|auto
 CLI:     $B/gatehouse --config $D/gatehouse.conf status
 Ctrl-C stops everything.
==========================================================================
BANNER
echo "== door phones and monitors over MQTT (Ctrl-C to stop)"
DEMO_WAN_FILE="$D/wan" UHF_FIFO="$D/uhf.in" /usr/bin/python3 "$ROOT/tools/demo-traffic.py" "$PORT" "$D/seed" "$D/passwords.json" || true
echo "== boards"
gh status | python3 -c 'import json,sys; [print("   %-11s %-7s %s" % (b["id"], "online" if b["online"] else "OFFLINE", b["bus"])) for b in json.load(sys.stdin).get("boards", [])]'
echo "== relay and lift switching seen by the simulated boards (last lines)"
tail -n 3 "$D/sim-garage.log" "$D/sim-lift.log" "$D/sim-bikes.log" 2>/dev/null | sed 's/^/   /'
echo "== garage"
sqlite3 "$D/site.db" "SELECT '   inside: ' || count(*) FROM lot_vehicles; SELECT '   stays: ' || count(*) FROM parking_logs" 2>/dev/null || true
gh status | grep -A3 '"devices"'
echo "== cloud"
gh status | python3 -c 'import json,sys; s=json.load(sys.stdin); c=s.get("cloud") or {}; print("   WAN %s, rev %s, outbox %s pending, %s conflicts" % (s.get("wan"), c.get("rev"), c.get("outbox_pending"), c.get("conflicts")))'
python3 -c 'import json,sys,urllib.request; e=json.load(urllib.request.urlopen("http://127.0.0.1:%s/_sim/events?after=0&limit=1" % sys.argv[1])); print("   the cloud holds %s events from this site" % e.get("total"))' "$CLOUD_CTL" || true
echo "== last door logs"
gh logs door --limit 8
