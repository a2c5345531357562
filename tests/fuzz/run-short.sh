#!/usr/bin/env bash
# run-short.sh - the bounded fuzz run of `make test`: build/fuzz/fuzz_mount
# on a copy of the seed corpus for FUZZ_SHORT_RUNS executions (default
# 2000); passes when libFuzzer reports no crash, leak or timeout.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
W=$(mktemp -d /tmp/poise-fuzz-XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir "$W/corpus"
cp tests/fuzz/corpus/* "$W/corpus/"
build/fuzz/fuzz_mount -max_len=262144 -runs="${FUZZ_SHORT_RUNS:-2000}" -rss_limit_mb=4096 -print_final_stats=1 \
	-artifact_prefix="$W/" "$W/corpus" >"$W/log" 2>&1
rc=$?
n=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$W/log" | grep -oE '[0-9]+$')
echo "    ${n:-0} executions"
check "libFuzzer finished cleanly" test "$rc" -eq 0
check "no crash, leak or timeout inputs" test -z "$(ls "$W" | grep -E '^(crash|leak|timeout|oom)-')"
[ "$rc" -ne 0 ] && tail -30 "$W/log"
finish
