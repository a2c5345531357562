#!/usr/bin/env bash
# test_cli_dev.sh - the device-layer CLI scenario: create a pool, write,
# inject poison, read around it, clear it by writing; errors and exit codes.
# Usage: test_cli_dev.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=${1:-build/poise}
T=$(mktemp -d /dev/shm/poise-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
POOL=$T/pool.img

expect_rc 0 "create a 4 MiB pool" $P pool create "$POOL" --size 4M
check "pool file has its size" test "$(stat -c %s "$POOL")" -eq 4194304
expect_rc 1 "create refuses an existing file" $P pool create "$POOL" --size 4M
$P pool create "$POOL" --size 4M 2>"$T/err"; contains "the error names the pool" "$T/err" "$POOL: File exists"
expect_rc 2 "bad size is a usage error" $P pool create "$T/x" --size 12Q
expect_rc 1 "size not a multiple of 4096" $P pool create "$T/x" --size 1000
expect_rc 2 "missing --size is a usage error" $P pool create "$T/x"

head -c 65536 /dev/urandom >"$T/data"
expect_rc 0 "dev write" sh -c "$P dev write '$POOL' 8192 < '$T/data'"
expect_rc 0 "dev read" sh -c "$P dev read '$POOL' 8192 65536 > '$T/out'"
check "read back what was written" cmp "$T/data" "$T/out"
check "an empty pool lists no bad blocks" test -z "$($P badblocks list "$POOL")"

# poison pool sectors 40 and 41 (bytes 20480-21503, inside the data)
expect_rc 0 "inject two sectors" $P badblocks inject "$POOL" 40 2
check "list prints the kernel format" test "$($P badblocks list "$POOL")" = "40 2"
check "the sidecar holds the kernel format" test "$(cat "$POOL.badblocks")" = "40 2"
$P badblocks list --json "$POOL" >"$T/json"
contains "json lists the range" "$T/json" '"ranges":[{"sector":40,"count":2,"offset":20480,"length":1024}]'
contains "json has totals" "$T/json" '"total_sectors":2'
if command -v python3 >/dev/null; then check "json parses" python3 -m json.tool "$T/json"; fi

$P dev read "$POOL" 8192 65536 >"$T/out" 2>"$T/err"
rc=$?
check "read across poison fails" test $rc -eq 1
contains "the error names offset and sector" "$T/err" "Input/output error at offset 20480 (pool sector 40)"
check "the good prefix is written before the error" test "$(stat -c %s "$T/out")" -eq $((20480 - 8192))
check "the prefix is the right data" cmp -n $((20480 - 8192)) "$T/data" "$T/out"
expect_rc 1 "a read starting on a bad sector fails" $P dev read "$POOL" 20600 10
$P dev read "$POOL" 21504 2560 >"$T/out" 2>/dev/null
check "good sectors in the same page read fine" cmp "$T/out" <(tail -c +$((21504 - 8192 + 1)) "$T/data" | head -c 2560)

# a one-byte write clears sector 40 only
expect_rc 0 "a 1-byte write over poison" sh -c "printf Q | $P dev write '$POOL' 20490"
check "sector 40 left the table" test "$($P badblocks list "$POOL")" = "41 1"
$P dev read "$POOL" 20480 512 >"$T/out"
check "the rest of the sector reads as zeros" cmp "$T/out" <(head -c 10 /dev/zero; printf Q; head -c 501 /dev/zero)
expect_rc 0 "badblocks clear" $P badblocks clear "$POOL" 41
check "the table is empty" test -z "$($P badblocks list "$POOL")"
check "the sidecar is gone" test ! -e "$POOL.badblocks"
check "a cleared sector reads as zeros" cmp <($P dev read "$POOL" 20992 512) <(head -c 512 /dev/zero)
check "data after it is intact" cmp <($P dev read "$POOL" 21504 4096) <(tail -c +$((21504 - 8192 + 1)) "$T/data" | head -c 4096)

# bad input
expect_rc 1 "inject beyond the pool" $P badblocks inject "$POOL" 8192 1
expect_rc 2 "inject with a bad number" $P badblocks inject "$POOL" 12x
expect_rc 1 "read beyond the pool" $P dev read "$POOL" 4M 1
expect_rc 1 "a pool that does not exist" $P badblocks list "$T/nope"
printf '1 1\n2 two\n' >"$POOL.badblocks"
$P badblocks list "$POOL" 2>"$T/err"; rc=$?
check "a malformed sidecar fails" test $rc -eq 1
contains "the error names file and line" "$T/err" "$POOL.badblocks:2: expected 'first_sector count'"
rm -f "$POOL.badblocks"
POISE_FLUSH=bogus $P badblocks list "$POOL" 2>"$T/err"; rc=$?
check "a bad POISE_FLUSH fails" test $rc -eq 1
contains "and says what is expected" "$T/err" "expected clwb, clflushopt, clflush or none"
expect_rc 0 "POISE_FLUSH=clflush works" env POISE_FLUSH=clflush $P dev read "$POOL" 0 1

# a pool held by another process
mkfifo "$T/fifo"
$P dev write "$POOL" 0 <"$T/fifo" &
holder=$!
exec 9>"$T/fifo" # the writer holds the pool until this closes
# until it holds the pool's lock (no fixed sleep).  Polling with a second
# poise would race the holder for that lock: one that loses exits, and the
# test then waits for a holder that is gone.  /proc/locks shows the pid lock.
for _ in $(seq 300); do
	grep -Eq "POSIX +ADVISORY +WRITE +$holder " /proc/locks && break
	kill -0 $holder 2>/dev/null || break
	sleep 0.1
done
$P badblocks list "$POOL" 2>"$T/err"; rc=$?
check "a held pool is refused" test $rc -eq 1
contains "naming the owner's pid" "$T/err" "pool in use by pid $holder"
exec 9>&-
wait

for c in "" "pool create" "badblocks list" "badblocks inject" "badblocks clear" "dev read" "dev write"; do
	expect_rc 0 "--help for '${c:-poise}'" $P $c --help
done
expect_rc 2 "no command is a usage error" $P
expect_rc 2 "an unknown command is a usage error" $P frobnicate
expect_rc 2 "an unknown subcommand is a usage error" $P badblocks frob
finish
