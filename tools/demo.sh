#!/bin/sh
# make demo: the daemon on a seeded community site, with door phones asking
# it for access decisions over its control socket. Everything is real: the
# SQLite file, the validator, the engine, the door logs. Ctrl-C stops it.
# (The MQTT broker, Modbus simulators, cloud simulator and web UI join the
# demo as their issues land.)
set -eu
B=${1:-build}
ROOT=$(pwd)
D=${DEMO_DIR:-/tmp/gatehouse-demo}
rm -rf "$D"
mkdir -p "$D/seed"
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
CONF
gh() { "$ROOT/$B/gatehouse" --config "$D/gatehouse.conf" "$@"; }

echo "== seeding the demo site into $D/site.db (through the validator)"
python3 "$ROOT/tools/demo-seed.py" "$D/seed"
gh put settings "$D/seed/settings.json" >/dev/null
for kind in mac building apartment relay_board device person credential access_group temp_key; do
	gh put "$kind" "$D/seed/$kind.json" | tail -n 1
done
printf 'demo-admin-pw\n' | gh user add admin --role admin >/dev/null
echo "   admin login: admin / demo-admin-pw (for the web UI once it lands)"

echo "== starting gatehoused"
"$ROOT/$B/gatehoused" --config "$D/gatehouse.conf" 2>"$D/gatehoused.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; echo "== stopped; door logs in $D/site.db, daemon log $D/gatehoused.log"' EXIT INT TERM
i=0
while [ ! -S "$D/control.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -S "$D/control.sock" ] || { cat "$D/gatehoused.log"; exit 1; }
gh status | head -n 12
echo "== door phones asking for decisions (Ctrl-C to stop)"
python3 "$ROOT/tools/demo-traffic.py" "$D/control.sock" "$D/seed" || true
echo "== last door logs"
gh logs door --limit 8
