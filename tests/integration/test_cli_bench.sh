#!/usr/bin/env bash
# test_cli_bench.sh - `poise bench`: every workload on every path it
# applies to, briefly, with --json; each line must carry every field with
# the right type, echo the point it measured, count operations and no
# errors.  Then: refusals of meaningless combinations, a run inside an
# existing pool that leaves it as it was, and bad arguments.
# Usage: test_cli_bench.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=${1:-build/poise}
T=$(mktemp -d /dev/shm/poise-clibench-XXXXXX)
trap 'rm -rf "$T"' EXIT
S=${POISE_BENCH_TEST_SECONDS:-0.05}
LEFT0=$(ls /dev/shm | grep -c '^poise-bench-')

# validate LINE WORKLOAD PATH BS THREADS: every field, typed, consistent
validate() {
	local l=$1 w=$2 p=$3 bs=$4 th=$5 k
	for k in workload path; do
		echo "$l" | grep -qE "\"$k\":\"[a-z]+\"" || { echo "field $k missing or not a string"; return 1; }
	done
	for k in bs threads ops p50_ns p99_ns p999_ns errors; do
		echo "$l" | grep -qE "\"$k\":[0-9]+[,}]" || { echo "field $k missing or not an integer"; return 1; }
	done
	for k in seconds ops_per_s mb_per_s; do
		echo "$l" | grep -qE "\"$k\":[0-9]+(\.[0-9]+)?[,}]" || { echo "field $k missing or not a number"; return 1; }
	done
	echo "$l" | grep -qE '"odirect":(true|false)' || { echo "odirect missing"; return 1; }
	echo "$l" | grep -qF "\"workload\":\"$w\"" || { echo "wrong workload"; return 1; }
	echo "$l" | grep -qF "\"path\":\"$p\"" || { echo "wrong path"; return 1; }
	echo "$l" | grep -qF "\"bs\":$bs," || { echo "wrong bs"; return 1; }
	echo "$l" | grep -qF "\"threads\":$th," || { echo "wrong threads"; return 1; }
	echo "$l" | grep -qE '"ops":[1-9][0-9]*,' || { echo "no operations counted"; return 1; }
	echo "$l" | grep -qE '"ops_per_s":[1-9]' || { echo "zero rate"; return 1; }
	echo "$l" | grep -qF '"errors":0}' || { echo "errors counted"; return 1; }
	# percentiles ordered
	local p50 p99 p999
	p50=$(echo "$l" | sed 's/.*"p50_ns":\([0-9]*\).*/\1/')
	p99=$(echo "$l" | sed 's/.*"p99_ns":\([0-9]*\).*/\1/')
	p999=$(echo "$l" | sed 's/.*"p999_ns":\([0-9]*\).*/\1/')
	[ "$p50" -gt 0 ] && [ "$p50" -le "$p99" ] && [ "$p99" -le "$p999" ] || { echo "percentiles $p50 $p99 $p999"; return 1; }
}

data="seqread seqwrite randread randwrite mixed"
for w in $data append create stat unlink; do
	for p in raw mcsafe dax block tmpfs fuse; do
		case "$w:$p" in
		append:raw | append:mcsafe | create:raw | create:mcsafe | stat:raw | stat:mcsafe | unlink:raw | unlink:mcsafe | create:block | stat:block | unlink:block)
			expect_rc 2 "$w on $p is refused" $P bench $w --path $p --seconds $S
			continue ;;
		esac
		bs=4096
		[ "$w" = seqread ] && bs=65536
		[ "$w" = randwrite ] && bs=512
		out=$($P bench $w --path $p --bs $bs --threads 2 --seconds $S --json 2>"$T/err")
		rc=$?
		n=$(printf '%s\n' "$out" | grep -c '^{')
		if [ $rc -ne 0 ] || [ "$n" -ne 1 ]; then
			bad "$w on $p: one JSON line" "exit $rc, $n lines: $(head -c 300 "$T/err")"
			continue
		fi
		if why=$(validate "$out" $w $p $bs 2); then ok "$w on $p: JSON fields valid"; else bad "$w on $p: JSON fields valid" "$why: $out"; fi
	done
done

# comma lists: every combination, paths innermost, in the order given
out=$($P bench randread,randwrite --path dax,tmpfs --bs 64,2M --threads 1,3 --seconds $S --json 2>/dev/null)
check "lists: 16 runs" test "$(printf '%s\n' "$out" | grep -c '^{')" -eq 16
check "lists: paths interleaved" test "$(printf '%s\n' "$out" | sed -n '1p;2p' | sed 's/.*"path":"\([a-z]*\)".*/\1/' | tr '\n' ' ')" = "dax tmpfs "
check "lists: 2 MiB blocks measured" grep -q '"bs":2097152,"threads":3' <<<"$out"
# O_DIRECT at 1000 threads on dax, as the 2016 question asks
out=$($P bench randread --path dax --odirect --threads 1000 --seconds 0.3 --json 2>"$T/err")
if why=$(validate "$out" randread dax 4096 1000); then ok "1000 threads, O_DIRECT, dax"; else bad "1000 threads, O_DIRECT, dax" "$why: $out"; fi
contains "O_DIRECT reported" <(echo "$out") '"odirect":true'

# the error path: poison away from the file, and in it (reads step around)
for o in "--bad-elsewhere 512" "--bad-in-file"; do
	out=$($P bench randread --path dax,mcsafe $o --seconds $S --json 2>"$T/err")
	check "$o: two runs" test "$(printf '%s\n' "$out" | grep -c '^{')" -eq 2
	if why=$(validate "$(printf '%s\n' "$out" | head -1)" randread dax 4096 1); then ok "$o: valid, no errors"; else bad "$o: valid, no errors" "$why: $out"; fi
done
expect_rc 2 "poison options refused on tmpfs" $P bench randread --path tmpfs --bad-in-file
expect_rc 2 "and on fuse" $P bench randread --path fuse --bad-elsewhere 3
# the fuse path on a mount of our own, through --dir
$P mkfs --size 256M "$T/fpool.img" >/dev/null && mkdir "$T/fmnt"
if $P mount "$T/fpool.img" "$T/fmnt"; then
	out=$($P bench randwrite --path fuse --dir "$T/fmnt" --seconds $S --json 2>"$T/err")
	if why=$(validate "$out" randwrite fuse 4096 1); then ok "fuse path with --dir: valid"; else bad "fuse path with --dir: valid" "$why: $out"; fi
	check "--dir: nothing left in the mount" test -z "$(ls "$T/fmnt")"
	$P umount "$T/fmnt"
else
	bad "fuse path with --dir: mount failed"
fi
check "no fuse mount left behind" sh -c "! grep -q 'poise-bench-fuse' /proc/mounts"

# the human table
$P bench stat --path dax --seconds $S >"$T/table"
contains "table header" "$T/table" "ops/s"
check "table row" grep -qE '^stat +4096 +1 dax +[0-9]+' "$T/table"

# inside an existing pool: nothing left behind, fsck clean
$P mkfs --size 128M "$T/pool.img" >/dev/null
$P mkdir "$T/pool.img" /mine
expect_rc 0 "runs in an existing pool" $P bench randwrite,append,create,stat --path dax --threads 2 --seconds $S --pool "$T/pool.img"
check "the pool holds only what it held" test "$($P ls "$T/pool.img" /)" = "mine"
expect_rc 0 "and is clean" $P fsck "$T/pool.img"
expect_rc 1 "a pool too small is an error" $P bench randread --path dax --bs 2M --threads 64 --seconds $S --pool "$T/pool.img"
expect_rc 1 "a missing pool is an error" $P bench randread --seconds $S --pool "$T/nope.img"
$P bench randread --seconds $S --pool "$T/nope.img" 2>"$T/err" >/dev/null; contains "naming it" "$T/err" "nope.img"
check "no temporary pool or directory left in /dev/shm" test "$(ls /dev/shm | grep -c '^poise-bench-')" -eq "$LEFT0"

# bad arguments
expect_rc 2 "unknown workload" $P bench fly
expect_rc 2 "unknown path" $P bench randread --path nfs
expect_rc 2 "bs too small" $P bench randread --bs 32
expect_rc 2 "too many threads" $P bench randread --threads 1001
expect_rc 2 "zero seconds" $P bench randread --seconds 0
expect_rc 0 "help" $P bench --help
finish
