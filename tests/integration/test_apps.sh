#!/usr/bin/env bash
# test_apps.sh - every descriptor call of the shim, and real databases on
# every path:
#   - tests/integration/shim_calls.c walks glibc's descriptor-taking calls
#     (docs/SHIM.md) on tmpfs and, under the shim, on a pool: the checks
#     marked BOTH must answer alike, the POISE ones hold for the pool;
#   - RocksDB's db_bench with O_DIRECT reads, flushes and compactions
#     (verify_checksum=1) under the shim and on the mount: every key it
#     wrote is found, a random fill finds what tmpfs finds, and after kill -9
#     in the middle of a fill `ldb checkconsistency` and `ldb scan` are clean
#     and the pool is fsck-clean;
#   - Redis with an append-only file (appendfsync always) under the shim and
#     on the mount: kill -9, restart, every key back; a foreground SAVE
#     reloads without the AOF; BGSAVE (a forked child writing the pool) is
#     refused with EROFS under the shim (the multi-process issue's), never
#     half-written;
#   - poison under a data block of an SST: RocksDB's IO error naming the
#     file for the keys in that block (never a crash or a wrong value),
#     every other key read, a compaction stopped with the error and its
#     input kept; poison inside Redis's AOF: Redis refuses to start with an
#     I/O error naming the file, redis-check-aof names it, nothing crashes
#     (Redis installs its own SIGSEGV/SIGBUS handler: the shim keeps the
#     library's media-error handler in front of it).
# Usage: test_apps.sh [POISE_BINARY] (the shim is beside it)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=$(realpath "${1:-build/poise}")
SHIM=$(dirname "$P")/libpoise-preload.so
T=$(mktemp -d /dev/shm/poise-apps-XXXXXX)
M=$T/mnt
mkdir -p "$M"
RPORT=$((20000 + $$ % 20000))
cleanup() {
	redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1
	mountpoint -q "$M" && { "$P" umount "$M" 2>/dev/null || umount -l "$M"; }
	rm -rf "$T"
}
trap cleanup EXIT
ASANRT=$(ldd "$SHIM" 2>/dev/null | awk '/libasan/ {print $3}')
PRE=$SHIM
if [ -n "$ASANRT" ]; then
	PRE="$ASANRT:$SHIM" # no spaces: $S is split into words
	export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0
fi
POOL=$T/pool.img
# $S PROGRAM...: a program under the shim, on the pool at $POOL under /poise
# (a command, not a function, so that `$S prog &` gives prog's own pid)
S="env POISE_POOL=$POOL POISE_PATH=/poise LD_PRELOAD=$PRE"

# ---- the call audit ----
cc -O1 -pthread tests/integration/shim_calls.c -o "$T/shim_calls" 2>"$T/cc.err"
check "the call walker builds" test -x "$T/shim_calls"
# each line of the walker is a check here (walk: tests/lib.sh)
mkdir "$T/kernel"
walk "tmpfs" "$T/shim_calls" "$T/kernel" kernel
expect_rc 0 "mkfs" "$P" mkfs --size 1G "$POOL"
walk "shim" $S "$T/shim_calls" /poise poise
expect_rc 0 "the pool is fsck-clean after the walk" "$P" fsck "$POOL"

# ---- RocksDB ----
DB_DIRECT="--use_direct_reads=1 --use_direct_io_for_flush_and_compaction=1 --verify_checksum=1"
# the rows of db_bench's output that name a benchmark
bench_rows() { grep -E '^(fillseq|fillrandom|readrandom) +:' "$1"; }
found() { sed -n 's/.*(\([0-9]*\) of \([0-9]*\) found).*/\1 \2/p' "$1"; }
rocks() { # rocks TAG DBDIR RUNNER...
	local tag=$1 db=$2; shift 2
	"$@" db_bench --db="$db/seq" --benchmarks=fillseq,readrandom --num=20000 $DB_DIRECT >"$T/rk" 2>&1
	check "$tag: db_bench fillseq + readrandom, O_DIRECT, finds every key" test "$(found "$T/rk")" = "20000 20000"
	"$@" db_bench --db="$db/rnd" --benchmarks=fillrandom,readrandom --num=20000 --seed=7 $DB_DIRECT >"$T/rk2" 2>&1
	check "$tag: db_bench fillrandom + readrandom finds what tmpfs finds" test "$(found "$T/rk2")" = "$REF_FOUND"
	"$@" ldb --db="$db/seq" checkconsistency >"$T/ldb" 2>&1
	check "$tag: ldb checkconsistency" grep -qx OK "$T/ldb"
	# kill -9 in the middle of a fill, then check what is there
	"$@" db_bench --db="$db/kill" --benchmarks=fillrandom --num=5000000 --seed=9 $DB_DIRECT >/dev/null 2>&1 &
	local pid=$!
	sleep 2
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	"$@" ldb --db="$db/kill" checkconsistency >"$T/ldb" 2>&1
	check "$tag: after kill -9 mid-fill, ldb checkconsistency" grep -qx OK "$T/ldb"
	"$@" ldb --db="$db/kill" scan >"$T/scan" 2>"$T/scan.err"
	check "$tag: ... ldb scan reads it all" test "$?" = 0 -a -s "$T/scan"
}
db_bench --db="$T/ref" --benchmarks=fillrandom,readrandom --num=20000 --seed=7 >"$T/ref.out" 2>&1
REF_FOUND=$(found "$T/ref.out")
check "tmpfs: db_bench reference run" test -n "$REF_FOUND"
rocks "shim" /poise $S
expect_rc 0 "shim: the pool is fsck-clean after RocksDB and a kill -9" "$P" fsck "$POOL"

# ---- Redis ----
redis_up() { # redis_up DIR RUNNER... : a server on $RPORT, ready
	local dir=$1; shift
	"$@" redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync always \
		--save '' --daemonize no --logfile "$T/redis.log" &
	RPID=$!
	for _ in $(seq 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
	return 1
}
redis_keys() { for i in $(seq 1 "$1"); do echo "SET key:$i value-$i"; done | redis-cli -p "$RPORT" >/dev/null; }
redis() { # redis TAG DIR RUNNER...
	local tag=$1 dir=$2; shift 2
	check "$tag: redis-server starts with an AOF" redis_up "$dir" "$@"
	redis_keys 2000
	check "$tag: 2000 keys set" test "$(redis-cli -p "$RPORT" dbsize)" = 2000
	kill -9 "$RPID"
	wait "$RPID" 2>/dev/null
	check "$tag: after kill -9 it restarts from the AOF" redis_up "$dir" "$@"
	check "$tag: ... with every key" test "$(redis-cli -p "$RPORT" dbsize)" = 2000
	check "$tag: ... and their values" test "$(redis-cli -p "$RPORT" get key:1999)" = value-1999
	check "$tag: SAVE writes an RDB" test "$(redis-cli -p "$RPORT" save)" = OK
	redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1
	wait "$RPID" 2>/dev/null
	"$@" redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$dir" --appendonly no --save '' \
		--daemonize no --logfile "$T/redis2.log" &
	RPID=$!
	for _ in $(seq 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
	check "$tag: the RDB alone reloads every key" test "$(redis-cli -p "$RPORT" dbsize)" = 2000
	redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1
	wait "$RPID" 2>/dev/null
}
redis "shim" /poise $S
$S redis-check-aof /poise/appendonlydir/appendonly.aof.manifest >"$T/cka" 2>&1
contains "shim: redis-check-aof finds the AOF valid" "$T/cka" "is valid"
# BGSAVE forks a child that would write the pool beside its parent
redis_up /poise $S
redis-cli -p "$RPORT" bgsave >/dev/null
for _ in $(seq 50); do grep -q "Background saving error\|Background saving terminated" "$T/redis.log" && break; sleep 0.1; done
contains "shim: BGSAVE's forked child is refused (EROFS), not let loose on the pool" "$T/redis.log" "Read-only file system"
check "shim: ... and the server goes on serving" test "$(redis-cli -p "$RPORT" dbsize)" = 2000
redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1
wait "$RPID" 2>/dev/null
expect_rc 0 "shim: the pool is fsck-clean after Redis" "$P" fsck "$POOL"

# ---- poison under a live database's files ----
# the hex key and value of line N of an `ldb scan --hex` listing
kv() { sed -n "$2p" "$1"; }
sst_poison() { # sst_poison TAG DBDIR POOL INNER RUNNER...: DBDIR as programs see it, INNER inside the pool
	local tag=$1 db=$2 pool=$3 inner=$4; shift 4
	"$@" db_bench --db="$db" --benchmarks=fillseq --num=20000 --compression_type=none --value_size=100 \
		--block_size=4096 --write_buffer_size=1048576 --disable_auto_compactions=1 $DB_DIRECT >/dev/null 2>&1
	"$@" ldb --db="$db" scan --hex >"$T/before" 2>&1
	local sst
	sst=$("$@" ls "$db" | grep '\.sst$' | head -1)
	check "$tag: the database has its SST files" test -n "$sst" -a "$(wc -l <"$T/before")" = 20000
	expect_rc 0 "$tag: poison a sector under a data block of $sst" "$P" badblocks inject "$pool" --file "$inner/$sst" --offset 65536
	"$@" ldb --db="$db" scan --hex >"$T/after" 2>"$T/after.err"
	contains "$tag: ldb scan stops with RocksDB's IO error, naming the file" "$T/after.err" "IO error: While pread offset 65536"
	contains "$tag: ... and the file" "$T/after.err" "$sst: Input/output error"
	local n
	n=$(wc -l <"$T/after")
	check "$tag: what the scan gave before the error is exactly the data" cmp "$T/after" <(head -n "$n" "$T/before")
	local badkey="" i
	for i in $(seq "$n" 16 $((n + 640))); do
		"$@" ldb --db="$db" get --hex "$(printf '0x%016X3030303030303030' "$i")" >"$T/get" 2>&1 || { badkey=$i; break; }
	done
	check "$tag: a key in the poisoned block fails with an IO error" grep -q "Get failed: IO error.*$sst" "$T/get"
	for i in 1 "$n" 20000; do
		local key val
		key=$(kv "$T/before" "$i" | cut -d' ' -f1)
		val=$(kv "$T/before" "$i" | cut -d' ' -f3)
		check "$tag: key $key (outside the block) reads its value" test "$("$@" ldb --db="$db" get --hex "$key" 2>&1)" = "$val"
	done
	"$@" ldb --db="$db" compact >"$T/compact" 2>&1
	contains "$tag: a compaction stops with the IO error" "$T/compact" "Compaction failed: IO error"
	check "$tag: ... keeping its input file" "$@" test -e "$db/$sst"
	key=$(kv "$T/before" 20000 | cut -d' ' -f1)
	check "$tag: ... and the rest reads after it" test "$("$@" ldb --db="$db" get --hex "$key" 2>&1)" = "$(kv "$T/before" 20000 | cut -d' ' -f3)"
}
aof_poison() { # aof_poison TAG DIR POOL INNER RUNNER...
	local tag=$1 dir=$2 pool=$3 inner=$4; shift 4
	"$@" mkdir -p "$dir"
	check "$tag: redis-server starts (AOF, appendfsync always)" redis_up "$dir" "$@"
	redis_keys 2000
	redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1
	wait "$RPID" 2>/dev/null
	local aof=appendonlydir/appendonly.aof.1.incr.aof
	expect_rc 0 "$tag: poison a sector inside the AOF" "$P" badblocks inject "$pool" --file "$inner/$aof" --offset 30000
	timeout 20 "$@" redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$dir" --appendonly yes --save '' \
		--daemonize no --logfile "$T/redis-bad.log"
	local rc=$?
	check "$tag: Redis will not start on a damaged AOF (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
	contains "$tag: ... saying it is an I/O error in that file" "$T/redis-bad.log" \
		"Unrecoverable error reading the append only file appendonly.aof.1.incr.aof: Input/output error"
	check "$tag: ... without crashing" sh -c "! grep -q 'crashed by signal' '$T/redis-bad.log'"
	"$@" redis-check-aof "$dir/appendonlydir/appendonly.aof.manifest" >"$T/cka2" 2>&1
	# (through the mount's page cache, stdio's read of the damaged page
	# fails whole, which redis-check-aof reports as the file not valid
	# from the last whole command before that page)
	check "$tag: redis-check-aof names the unreadable file" grep -qE \
		"Failed to read from AOF appendonly.aof.1.incr.aof|AOF appendonly.aof.1.incr.aof is not valid" "$T/cka2"
}
sst_poison "shim" /poise/sstp "$POOL" /sstp $S
aof_poison "shim" /poise/aofp "$POOL" /aofp $S
expect_rc 0 "shim: fsck after the poison cases (the bad sectors listed, nothing else)" "$P" fsck "$POOL"

# ---- the same on the mount ----
if [ ! -c /dev/fuse ] || [ "$(id -u)" != 0 ]; then
	bad "SKIP: the mount half needs /dev/fuse and root"
	finish
	exit 1
fi
expect_rc 0 "mkfs (mount)" "$P" mkfs --size 1G "$T/mpool.img"
expect_rc 0 "mount" "$P" mount "$T/mpool.img" "$M"
rocks "mount" "$M" env
redis "mount" "$M" env
sst_poison "mount" "$M/sstp" "$T/mpool.img" /sstp env
aof_poison "mount" "$M/aofp" "$T/mpool.img" /aofp env
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "the mounted pool is fsck-clean" "$P" fsck "$T/mpool.img"
finish
