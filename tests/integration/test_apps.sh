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
#     half-written.
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
# each line of the walker is a check here
walk() {
	local tag=$1; shift
	"$@" >"$T/walk" 2>&1
	local rc=$?
	while read -r st name; do
		case $st in
		ok) ok "$tag: $name" ;;
		FAIL) bad "$tag: $name" ;;
		esac
	done <"$T/walk"
	[ "$rc" -eq 0 ] || grep -q "^FAIL" "$T/walk" || bad "$tag: the walker ended with exit $rc" "$(tail -3 "$T/walk")"
}
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
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "the mounted pool is fsck-clean" "$P" fsck "$T/mpool.img"
finish
