#!/bin/sh
# make bench: runs every benchmark, keeps each one's output in
# $BENCH_OUT/NAME.log (default BUILD/bench/results), then bench/report.py
# writes bench/RESULTS.md and prints it. Benchmarks measure and print; a
# benchmark that fails shows in the report as "did not finish", the others
# still run.
#
#   bench/run.sh BUILD [QUICK]          everything (QUICK non-empty: each bench's quick mode)
#   bench/run.sh BUILD [QUICK] nodered  only the Node-RED comparison, then the report
#                                       (with the other benches' last logs)
set -u
BUILD=${1:-build}
QUICK=${2:-}
ONLY=${3:-}
OUT=${BENCH_OUT:-$BUILD/bench/results}
[ "$QUICK" = 0 ] && QUICK=
PY=/usr/bin/python3

run() {
	name=$1
	shift
	echo "== $name: $*"
	"$@" 2>&1 | tee "$OUT/$name.log"
	echo
}

if [ -z "$ONLY" ]; then
	rm -rf "$OUT"
fi
mkdir -p "$OUT"
cat /proc/loadavg >"$OUT/loadavg-start"
start=$(date +%s)
if [ -n "$QUICK" ]; then q=--quick; else q=; fi
if [ -z "$ONLY" ]; then
	run bench_engine "$BUILD/bench/bench_engine" $q
	run bench_mqtt "$BUILD/bench/bench_mqtt" $q
	if [ -n "$QUICK" ]; then
		run bench_mqtt_floor "$BUILD/bench/bench_mqtt" --floor --devices 50 --seconds 5
	else
		run bench_mqtt_floor "$BUILD/bench/bench_mqtt" --floor
	fi
	run bench_bus $PY bench/bench_bus.py "$BUILD" --samples $([ -n "$QUICK" ] && echo 100 || echo 400)
	run bench_cloud $PY bench/bench_cloud.py "$BUILD" $q
	run bench_web $PY bench/bench_web.py "$BUILD" $q
fi
if sh bench/nodered/install.sh --check; then
	run bench_nodered $PY bench/bench_nodered.py "$BUILD" $q
else
	echo "== bench_nodered: skipped, Node-RED is not installed."
	echo "   \`make bench-nodered\` installs it (npm ci of bench/nodered/ into ~/.cache/gatehouse-bench/nodered,"
	echo "   or \$NODERED_HOME) and runs the gatehoused vs Node-RED comparison."
	rm -f "$OUT/bench_nodered.log"
fi
cat /proc/loadavg >"$OUT/loadavg-end"
echo "== all benchmarks in $(($(date +%s) - start)) s"
$PY bench/report.py "$OUT" bench/RESULTS.md "$QUICK"
