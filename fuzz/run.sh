#!/bin/sh
# Runs each libFuzzer harness for a bounded time (`make fuzz`; fuzz/README.md).
# Usage: fuzz/run.sh BUILD_DIR SECONDS NAME...
# Each harness starts from a copy of its seed corpus fuzz/corpus/NAME/ in
# BUILD_DIR/corpus/NAME/ (what it finds stays there, the repository is not
# touched). Exits non-zero when any harness found a crash, a leak, undefined
# behaviour or a timeout, naming the reproducer.
set -u
build=$1
secs=$2
shift 2
[ "$secs" -ge 1 ] 2>/dev/null || { echo "fuzz: FUZZ_TIME must be a number of seconds" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
failed=""
passed=0
for name in "$@"; do
	bin="$build/fuzz_$name"
	[ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz-build)" >&2; exit 2; }
	work="$build/corpus/$name"
	art="$build/artifacts/$name"
	mkdir -p "$work" "$art"
	[ -d "$here/fuzz/corpus/$name" ] && cp -f "$here/fuzz/corpus/$name"/* "$work"/ 2>/dev/null
	dict=""
	[ -f "$here/fuzz/dict/$name.dict" ] && dict="-dict=$here/fuzz/dict/$name.dict"
	log="$build/fuzz_$name.log"
	echo "== fuzz_$name: ${secs}s"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
		-print_final_stats=1 -artifact_prefix="$art/" $dict "$work" >"$log" 2>&1
	rc=$?
	stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
		sed 's/^stat:://; s/: */=/' | tr '\n' ' ')
	if [ $rc -ne 0 ]; then
		repro=$(grep -o "Test unit written to .*" "$log" | sed 's/Test unit written to //' | tail -1)
		echo "fuzz_$name: FAILED (exit $rc) $stats"
		grep -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|INVARIANT BROKEN|SUMMARY:" "$log" | head -5
		echo "  reproducer: ${repro:-see $log}"
		echo "  replay: $bin ${repro:-CRASH_FILE}   (log: $log)"
		failed="$failed $name"
	else
		echo "fuzz_$name: ok $stats"
		passed=$((passed + 1))
	fi
done
nfail=$(echo "$failed" | wc -w)
echo "fuzz: $passed passed, $nfail failed"
[ -z "$failed" ] || { echo "fuzz: failing harnesses:$failed" >&2; exit 1; }
