#!/usr/bin/env bash
# run-all.sh - the whole suite, as `make test` runs it: every unit-test
# binary under ASan+UBSan (build/asan) and under TSan (build/tsan), and every
# integration scenario against the release CLI and the ASan CLI.  Each suite
# ends with "N passed, N failed"; this prints one line per suite (the full
# output of a failing one) and the sum.
set -u
cd "$(dirname "$0")/.."
TOTAL_P=0
TOTAL_F=0
BROKEN=()
# The expected crashes of children (faults outside the guard) print reports;
# keep ASan from also dumping its whole mapping.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp}

suite() {
	local name=$1; shift
	local log start end
	log=$(mktemp)
	start=$(date +%s.%N)
	"$@" >"$log" 2>&1
	local rc=$?
	end=$(date +%s.%N)
	local line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	if [ -z "$line" ]; then
		p=0; f=1
		line="no result line (exit $rc)"
	else
		p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1 && line="$line, but exit $rc"
	fi
	TOTAL_P=$((TOTAL_P + p)); TOTAL_F=$((TOTAL_F + f))
	printf '%-44s %s (%.1fs)\n' "$name" "$line" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')"
	if [ "$f" -ne 0 ]; then
		BROKEN+=("$name")
		sed 's/^/    | /' "$log" | tail -60
	fi
	rm -f "$log"
}

for v in release asan tsan; do
	for t in $([ $v = release ] && echo build/tests/test_* || echo build/$v/tests/test_*); do
		[ -x "$t" ] && suite "$v/$(basename "$t")" "$t"
	done
done
[ -x build/fuzz/fuzz_mount ] && suite "fuzz/fuzz_mount (short)" tests/fuzz/run-short.sh
for t in tests/integration/test_*.sh; do
	suite "release/$(basename "$t" .sh)" "$t" build/poise
	suite "asan/$(basename "$t" .sh)" "$t" build/asan/poise
done

echo
[ ${#BROKEN[@]} -gt 0 ] && echo "failing suites: ${BROKEN[*]}"
echo "$TOTAL_P passed, $TOTAL_F failed"
[ "$TOTAL_F" -eq 0 ]
