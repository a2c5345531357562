#!/usr/bin/env bash
# test_multiproc.sh - many processes on one mounted pool, each under the
# shim reading and writing file blocks itself (docs/MULTIPROC.md): the
# direct path is taken (the shim's counts), what one process writes every
# other sees at once (through the shim or the kernel's page cache), a
# truncate or unlink under an open file never lets its old map reach
# reused blocks, media errors are shared, kill -9 of a writer loses nothing
# acknowledged, kill -9 of the daemon gives clean errors; shell pipelines,
# tar, make -j2, git, two sqlite3 writers and fio with several processes,
# all under the shim; a second user keeps the kernel path; hostile
# messages on the data socket; Redis (BGSAVE, AOF) and PostgreSQL (initdb,
# pgbench, kill -9 of a backend and of the server, pg_amcheck) under the
# shim.
# Usage: test_multiproc.sh [POISE_BINARY] (the shim is beside it)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
mount_suite multiproc "${1:-}"
SHIM=$(dirname "$P")/libpoise-preload.so
ASANRT=$(ldd "$SHIM" 2>/dev/null | awk '/libasan/ {print $3}')
PRE=$SHIM
if [ -n "$ASANRT" ]; then
	PRE="$ASANRT $SHIM"
	export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0
fi
unset POISE_POOL POISE_PATH
S() { LD_PRELOAD="$PRE" "$@"; }
# the shim's counts of a run: "R W" direct reads and writes
SC() { LD_PRELOAD="$PRE" POISE_SHIM_STATS=1 "$@" 2>"$T/stats"; }
direct() { sed -n 's/.*mount: \([0-9]*\) direct reads, \([0-9]*\) direct writes.*/\1 \2/p' "$T/stats" | tail -1; }
H=$T/mp_helper
cc -O1 -Wall tests/integration/mp_helper.c -o "$H" 2>"$T/cc.err"
check "the helper builds" test -x "$H"
hash_of() { # hash_of FILE OFF LEN: the helper's hash of those bytes (through the kernel)
	printf 'open %s\nr %s %s\nq\n' "$1" "$2" "$3" | "$H" cmd | sed -n 2p
}

expect_rc 0 "mkfs" "$P" mkfs --size 1G "$POOL"
expect_rc 0 "mount -o allow_other" "$P" mount -o allow_other "$POOL" "$M"

# ---- the direct path ----
"$H" fill "$M/f" 1 256
SC "$H" verify "$M/f" 1 256 >"$T/out"
check "a file written through the kernel reads back under the shim" grep -q '^ok' "$T/out"
check "... every read served directly ($(direct))" test "$(direct)" = "256 0"
SC "$H" fill "$M/f" 2 256
check "overwrites inside the file are direct ($(direct))" test "$(direct)" = "0 256"
check "the kernel reads what the shim wrote" sh -c "'$H' verify '$M/f' 2 256 | grep -q '^ok'"
SC "$H" fill "$M/grow" 3 16
check "a new file written to its end: the first write goes to the daemon, the rest into a grant ($(direct))" \
	test "$(direct)" = "0 15"
check "... and reads back" sh -c "'$H' verify '$M/grow' 3 16 | grep -q '^ok'"
check "... and its space past the size is gone at close ($(stat -c '%s %b' "$M/grow"))" \
	test "$(stat -c %b "$M/grow")" -le $((16 * 8))

# a process that keeps the file in the kernel's page cache (not under the
# shim): it sees the shim's writes at once, whether they went direct (its
# cached pages dropped first) or through the kernel
coproc K { "$H" cmd; }
echo "open $M/f" >&"${K[1]}"; read -r a <&"${K[0]}"
echo "r 0 1048576" >&"${K[1]}"; read -r before <&"${K[0]}"
SC "$H" fill "$M/f" 4 256
echo "r 0 1048576" >&"${K[1]}"; read -r after <&"${K[0]}"
check "a reader holding cached pages sees the shim's writes at once" test "$after" = "$(S "$H" cmd <<<"open $M/f
r 0 1048576" | sed -n 2p)" -a "$after" != "$before"
SC "$H" fill "$M/f" 5 256
echo "r 0 1048576" >&"${K[1]}"; read -r again <&"${K[0]}"
check "... and again while it keeps reading (its reads set the kernel bit again)" test "$again" = "$(S "$H" cmd <<<"open $M/f
r 0 1048576" | sed -n 2p)" -a "$again" != "$after"
echo q >&"${K[1]}"; wait "$K_PID" 2>/dev/null
SC "$H" fill "$M/f" 5 256
check "once it closed, writes are direct ($(direct))" test "$(direct)" = "0 256"
check "and the kernel sees those writes too" sh -c "'$H' verify '$M/f' 5 256 | grep -q '^ok'"

# ---- the file offset: the shim's own, handed to the kernel wherever it goes ----
cc -O1 -Wall -pthread tests/integration/offsets.c -o "$T/offsets" 2>"$T/cc.err"
check "the offset walker builds" test -x "$T/offsets"
mkdir -p "$T/koff" "$M/off"
walk "kernel file system" "$T/offsets" "$T/koff" kernel
walk "shim" env LD_PRELOAD="$PRE" "$T/offsets" "$M/off" poise
rm -rf "$M/off"

# ---- appends into a grant: seen at once, by every path ----
"$H" fill "$M/ap" 3 1
coproc A { SC "$H" cmd; }
echo "open $M/ap" >&"${A[1]}"; read -r a <&"${A[0]}"
for i in 1 2 3 4; do echo "w $((i * 4096)) 4096 $((64 + i))" >&"${A[1]}"; read -r a <&"${A[0]}"; done
want=$(printf 'open %s\nr 4096 16384\nq\n' "$M/ap" | "$H" cmd | sed -n 2p)
check "A's appends: the kernel's stat has the size at once" test "$(stat -c %s "$M/ap")" = 20480
check "... another shim process reads them at once" test "$(printf 'open %s\nr 4096 16384\n' "$M/ap" | S "$H" cmd | sed -n 2p)" = "$want"
check "... and they are A's bytes" test "$(tail -c 4096 "$M/ap" | tr -d D | wc -c)" = 0
echo "size" >&"${A[1]}"; read -r a <&"${A[0]}"
check "A's own fstat has the size ($a)" test "$a" = "ok 20480"
echo "XYZ" >>"$M/ap" # an O_APPEND write through the kernel while A holds the grant
check "an O_APPEND write through the kernel lands at the true end" test "$(stat -c %s "$M/ap")" = 20484 -a \
	"$(tail -c 4 "$M/ap")" = "XYZ"
echo "w 20484 4096 70" >&"${A[1]}"; read -r a <&"${A[0]}"
check "A appends after it ($a)" test "$(stat -c %s "$M/ap")" = 24580 -a "$(tail -c 4096 "$M/ap" | tr -d F | wc -c)" = 0
S truncate -s 8192 "$M/ap"
echo "size" >&"${A[1]}"; read -r a1 <&"${A[0]}"
echo "w 8192 4096 71" >&"${A[1]}"; read -r a2 <&"${A[0]}"
check "a truncate by another process takes A's grant back: A sees it ($a1), appends at the new end" \
	test "$a1" = "ok 8192" -a "$(stat -c %s "$M/ap")" = 12288 -a "$(tail -c 4096 "$M/ap" | tr -d G | wc -c)" = 0
sleep 0.5 # the kernel's reads above cached pages: the direct path is back once they are dropped (a tick)
for i in $(seq 3 40); do echo "w $((i * 4096)) 4096 72" >&"${A[1]}"; read -r a <&"${A[0]}"; done
echo "fsync" >&"${A[1]}"; read -r a <&"${A[0]}"
echo q >&"${A[1]}"; wait "$A_PID" 2>/dev/null
check "A's appends were direct ($(direct))" test "$(direct | cut -d' ' -f2)" -ge 38
check "after A's close the file is 41 blocks, its space past them gone" \
	test "$(stat -c %s "$M/ap")" = $((41 * 4096)) -a "$(stat -c %b "$M/ap")" -le $((41 * 8))

# a grant taken back again and again while its holder appends (another
# process's fallocate through the kernel each time): no acknowledged
# record lost, none written over
bad_rev=0
for run in 1 2; do
	(sleep 0.05; "$H" revoke "$M/rv" 2 >"$T/rv.out") &
	rp=$!
	S "$H" records "$M/rv" 200 262144 >"$T/rv.w"
	wait "$rp"
	"$H" vrecords "$M/rv" 200 262144 >"$T/rv.v" || { bad_rev=$((bad_rev + 1)); cat "$T/rv.w" "$T/rv.v"; }
	rm -f "$M/rv"
done
check "appends while another process takes the grant back again and again ($(cat "$T/rv.out") times): every record whole" \
	test "$bad_rev" = 0
# a reader under the shim, then one through the kernel, watch a file while
# it is appended to: each sees the size move only over whole records
: >"$M/wt"
(S "$H" watch "$M/wt" 65536 2 >"$T/wt.s") &
ws=$!
SC "$H" records "$M/wt" 600 65536 >"$T/wt.w"
wait "$ws"
wdirect=$(direct)
"$H" vrecords "$M/wt" 600 65536 >>"$T/wt.w"
: >"$M/wt"
("$H" watch "$M/wt" 65536 2 >"$T/wt.k") &
wk=$!
S "$H" records "$M/wt" 600 65536 >>"$T/wt.w"
wait "$wk"
"$H" vrecords "$M/wt" 600 65536 >>"$T/wt.w"
check "readers watching appends see only whole records: under the shim ($(cat "$T/wt.s"); appender $wdirect), through the kernel ($(cat "$T/wt.k"))" \
	test "$(cut -c1-2 "$T/wt.s")" = ok -a "$(cut -c1-2 "$T/wt.k")" = ok -a "$(grep -c '^ok' "$T/wt.w")" = 4 -a \
	"${wdirect#* }" -gt 500
: >"$M/fa"
printf 'open %s\nwr 4096 65\nwr 4096 65\nwr 4096 65\nwr 4096 65\nappend\nwr 4 66\nq\n' "$M/fa" | S "$H" cmd >/dev/null
check "O_APPEND set by fcntl after direct appends: the write lands at the true end" \
	test "$(stat -c %s "$M/fa")" = 16388 -a "$(tail -c 4 "$M/fa")" = BBBB
printf 'open %s\nw 16388 4096 65\nw 20484 4096 65\nw 24580 4096 65\nq\n' "$M/fa" | S "$H" cmd >/dev/null
S /usr/bin/python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwritev(fd, [b"CCCC"], 0, os.RWF_APPEND)' "$M/fa"
check "... and so does a pwritev2 RWF_APPEND" test "$(stat -c %s "$M/fa")" = 28680 -a "$(tail -c 4 "$M/fa")" = CCCC
: >"$M/own"
printf 'open %s\nfa 0 16384\nwr 8192 65\nwr 8192 65\nwr 8192 65\nwr 8192 65\nq\n' "$M/own" | S "$H" cmd >/dev/null
check "a file with space of its own past the size: the grant's space still goes at close ($(stat -c '%s %b' "$M/own"))" \
	test "$(stat -c '%s %b' "$M/own")" = "32768 64"

# ---- nothing stale ----
"$H" fill "$M/stale" 6 256
coproc A { S "$H" cmd; }
echo "open $M/stale" >&"${A[1]}"; read -r a <&"${A[0]}"
echo "r 0 1048576" >&"${A[1]}"; read -r a1 <&"${A[0]}"
check "A holds the file, its map fetched" test "${a1%% *}" = ok
S truncate -s 0 "$M/stale"
S "$H" fill "$M/new" 7 256
sum_new=$(sha256sum <"$M/new")
echo "size" >&"${A[1]}"; read -r asz <&"${A[0]}"
check "A sees the truncate at once" test "$asz" = "ok 0"
echo "w 4096 4096 65" >&"${A[1]}"; read -r aw <&"${A[0]}"
check "A's write into its descriptor succeeds" test "$aw" = "ok 4096"
check "B's new file, in the blocks A's map had, is unchanged" test "$(sha256sum <"$M/new")" = "$sum_new"
check "A's write landed in A's file (a hole, then its bytes)" test "$(stat -c %s "$M/stale")" = 8192 -a \
	"$(tail -c 4096 "$M/stale" | tr -d A | wc -c)" = 0
# unlink of an open file: A keeps its bytes, the blocks are not reused
S "$H" fill "$M/gone" 8 64
echo "open $M/gone" >&"${A[1]}"; read -r a <&"${A[0]}"
echo "r 0 262144" >&"${A[1]}"; read -r g1 <&"${A[0]}"
S rm "$M/gone"
S "$H" fill "$M/new2" 9 256
echo "r 0 262144" >&"${A[1]}"; read -r g2 <&"${A[0]}"
check "an unlinked file stays whole for the process that holds it" test "$g1" = "$g2" -a "${g1%% *}" = ok
check "the new file next to it is whole" sh -c "'$H' verify '$M/new2' 9 256 | grep -q '^ok'"
echo q >&"${A[1]}"; wait "$A_PID" 2>/dev/null

# ---- media errors are shared ----
"$H" fill "$M/p" 10 16
coproc A { S "$H" cmd; }
echo "open $M/p" >&"${A[1]}"; read -r a <&"${A[0]}"
echo "r 8192 4096" >&"${A[1]}"; read -r p1 <&"${A[0]}"
expect_rc 0 "inject poison under an open file (control channel)" "$P" badblocks inject "$POOL" --file /p --offset 8192
echo "r 8192 4096" >&"${A[1]}"; read -r p2 <&"${A[0]}"
check "the process that had the map gets EIO at once ($p2)" test "$p2" = "err 5"
echo "r 0 4096" >&"${A[1]}"; read -r p3 <&"${A[0]}"
check "the rest of the file still reads" test "${p3%% *}" = ok
check "another process is refused the bad sector too" test "$(S "$H" cmd <<<"open $M/p
r 8192 512" | sed -n 2p)" = "err 5"
echo "w 8192 4096 66" >&"${A[1]}"; read -r p4 <&"${A[0]}"
echo "r 8192 4096" >&"${A[1]}"; read -r p5 <&"${A[0]}"
check "a write over it clears it, for everyone" test "$p4" = "ok 4096" -a "${p5%% *}" = ok -a \
	"$(hash_of "$M/p" 8192 4096)" = "$p5"
echo q >&"${A[1]}"; wait "$A_PID" 2>/dev/null

# ---- kill -9 of writers ----
S "$H" init "$M/loop" 128
bad_kill=0
for i in $(seq 1 12); do
	rm -f "$T/log" "$M/app"
	S "$H" init "$M/loop" 128
	mode=$([ $((i % 2)) = 0 ] && echo pos) # O_APPEND writes (the kernel's), or pwrites into a grant
	LD_PRELOAD="$PRE" "$H" loop "$M/loop" "$T/log" "$M/app" $mode &
	pid=$!
	sleep "0.$((RANDOM % 4 + 1))"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	S "$H" check "$M/loop" "$T/log" "$M/app" >"$T/chk" || { bad_kill=$((bad_kill + 1)); cat "$T/chk"; }
done
check "kill -9 of a writer, 12 times (half of them appending into grants): every acknowledged write is there" test "$bad_kill" = 0
check "a dead appender's space past the size is gone ($(stat -c '%s %b' "$M/app"))" \
	test "$(stat -c %b "$M/app")" -le $(( ($(stat -c %s "$M/app") + 4095) / 4096 * 8 ))
check "(the writes were acknowledged: $(tail -1 "$T/chk"))" grep -q '^ok 128 blocks, [1-9]' "$T/chk"

# ---- real programs, every process under the shim ----
S bash -c "echo 'hello world' >'$M/a' && cat '$M/a' | tr a-z A-Z >'$M/b' && echo more >>'$M/b'"
check "pipeline and redirections inside the mount" test "$(cat "$M/b")" = "HELLO WORLD
more"
mkdir "$M/src" "$M/dst"
cp -a /usr/include/linux "$M/src/"
S bash -c "tar -C '$M/src' -cf - linux | tar -C '$M/dst' -xf -"
check "tar c | tar x between two directories of the mount" diff -r /usr/include/linux "$M/dst/linux"
mkdir "$M/proj"
for i in 1 2 3 4 5 6; do
	printf 'int f%d(void) { return %d; }\n' "$i" "$i" >"$M/proj/f$i.c"
done
{ echo '#include <stdio.h>'; for i in 1 2 3 4 5 6; do echo "int f$i(void);"; done
  echo 'int main(void) { printf("%d\n", f1() + f2() + f3() + f4() + f5() + f6()); return 0; }'; } >"$M/proj/main.c"
printf 'OBJ := main.o f1.o f2.o f3.o f4.o f5.o f6.o\nprog: $(OBJ)\n\t$(CC) -o $@ $(OBJ)\n%%.o: %%.c\n\t$(CC) -O1 -c $< -o $@\n' \
	>"$M/proj/Makefile"
S make -s -j2 -C "$M/proj" >"$T/make.out" 2>&1
check "make -j2 of a C project inside the mount" test "$("$M/proj/prog")" = 21
touch "$M/proj/f3.c"
S make -s -j2 -C "$M/proj" >"$T/make.out" 2>&1
check "a second make rebuilds what changed" test "$("$M/proj/prog")" = 21 -a "$M/proj/f3.o" -nt "$M/proj/f1.o"
if command -v git >/dev/null; then
	GIT="git -c user.name=t -c user.email=t@t -c init.defaultBranch=main -c safe.directory=*"
	S $GIT init -q "$M/repo" && cp -a /usr/include/linux "$M/repo/" &&
		S $GIT -C "$M/repo" add -A && S $GIT -C "$M/repo" commit -qm one
	S $GIT clone -q "$M/repo" "$M/clone" 2>"$T/git.err"
	echo change >>"$M/clone/linux/types.h"
	S $GIT -C "$M/clone" commit -qam two
	S $GIT -C "$M/clone" gc -q 2>>"$T/git.err"
	check "git clone, commit, gc and fsck inside the mount" S $GIT -C "$M/clone" fsck --strict
	check "git: the clone's tree is the commit's" test -z "$(S $GIT -C "$M/clone" status --porcelain)"
else
	bad "git is not installed"
fi
sqlite3 "$M/db" 'create table t(a integer primary key, w int, b text);'
for w in 1 2; do
	S bash -c "for i in \$(seq 1 40); do echo \"begin; insert into t(w, b) values($w, 'x'); insert into t(w, b) values($w, 'y'); commit;\"; done | sqlite3 -cmd '.timeout 20000' '$M/db'" &
done
wait
check "two sqlite3 processes writing one database at once: integrity ok, every row" \
	test "$(S sqlite3 "$M/db" 'pragma integrity_check; select count(*) from t;' | tr '\n' ' ')" = "ok 160 "
# WAL mode: the -shm index is a MAP_SHARED map of the mount (the kernel's
# page cache, so that file keeps the kernel path), the -wal file is written
# and read direct; a third process reads while the two write
sqlite3 "$M/wal" 'pragma journal_mode=wal; create table t(a integer primary key, w int, b text);' >/dev/null
for w in 1 2; do
	LD_PRELOAD="$PRE" POISE_SHIM_STATS=1 bash -c "for i in \$(seq 1 100); do echo \"begin; insert into t(w, b) values($w, 'x'); insert into t(w, b) values($w, 'y'); commit;\"; done | sqlite3 -cmd '.timeout 20000' '$M/wal'" 2>"$T/wal$w" &
done
for i in 1 2 3 4 5; do S sqlite3 -cmd '.timeout 20000' "$M/wal" 'select count(*) from t;' >>"$T/walr" 2>&1; done
wait
check "two sqlite3 processes writing one WAL-mode database at once: integrity ok, every row" \
	test "$(S sqlite3 "$M/wal" 'pragma journal_mode; pragma integrity_check; select count(*) from t;' | tr '\n' ' ')" = "wal ok 400 "
walw=$(cat "$T/wal1" "$T/wal2" | sed -n 's/.*mount: [0-9]* direct reads, \([0-9]*\) direct writes.*/\1/p' | awk '{n += $1} END {print n + 0}')
check "... their WAL writes were direct ($walw)" test "$walw" -ge 300
check "... a reader during the writes saw only whole transactions ($(tr '\n' ' ' <"$T/walr"))" \
	awk '!/^[0-9]+$/ || $1 % 2 {exit 1}' "$T/walr"
check "... and a checkpoint folds the WAL into the database (read back through the kernel)" \
	test "$(S sqlite3 "$M/wal" 'pragma wal_checkpoint(truncate);' >/dev/null && sqlite3 "$M/wal" 'pragma integrity_check; select count(*), sum(w) from t;' | tr '\n' ' ')" = "ok 400|600 "
S fio --verify_state_save=0 --name=mp --filename="$M/fio" --size=8m --offset_increment=8m --numjobs=3 --rw=randwrite \
	--bs=4k --ioengine=psync --verify=crc32c --do_verify=1 --group_reporting >"$T/fio" 2>&1
check "fio: 3 processes on one file, random 4 KiB writes, crc32c verified" grep -q "err= 0" "$T/fio"
S fio --verify_state_save=0 --name=mp2 --filename="$M/fio" --size=8m --offset_increment=8m --numjobs=3 --rw=randread \
	--bs=4k --ioengine=psync --verify=crc32c --verify_only --group_reporting >"$T/fio" 2>&1
check "fio: 3 processes read it back, verified" grep -q "err= 0" "$T/fio"

# Redis: BGSAVE forks a child that writes the dump while the parent
# serves; an append-only file
RPORT=$((20000 + $$ % 20000))
mkdir "$M/redis"
redis_up() { # redis_up AOF LOG: a server under the shim on $RPORT, ready
	S redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$M/redis" --appendonly "$1" --appendfsync always \
		--save '' --daemonize no --logfile "$T/$2" &
	RPID=$!
	for _ in $(seq 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
}
redis_down() { redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1; wait "$RPID" 2>/dev/null; }
redis_up yes redis.log
for i in $(seq 1 20000); do echo "SET key:$i value-$i"; done | redis-cli -p "$RPORT" >/dev/null
check "redis under the shim: 20000 keys" test "$(redis-cli -p "$RPORT" dbsize)" = 20000
redis-cli -p "$RPORT" bgsave >/dev/null
for i in $(seq 1 500); do echo "SET during:$i x"; done | redis-cli -p "$RPORT" >/dev/null
for _ in $(seq 200); do
	redis-cli -p "$RPORT" info persistence | grep -q 'rdb_bgsave_in_progress:0' && break
	sleep 0.1
done
check "BGSAVE: the forked child wrote the dump while the parent served" \
	sh -c "redis-cli -p $RPORT info persistence | grep -q 'rdb_last_bgsave_status:ok'"
check "the dump checks (redis-check-rdb)" S redis-check-rdb "$M/redis/dump.rdb"
redis_down
redis_up no redis2.log
check "the dump alone loads every key set before BGSAVE" test "$(redis-cli -p "$RPORT" dbsize)" -ge 20000 -a \
	"$(redis-cli -p "$RPORT" get key:19999)" = value-19999
redis_down
redis_up yes redis3.log
check "the append-only file replays every key, those set during BGSAVE too" \
	test "$(redis-cli -p "$RPORT" dbsize)" = 20500
redis_down

# PostgreSQL: the postmaster and every backend under the shim, as the
# pool's owner (the direct path is for those who may write the pool)
PGB=/usr/lib/postgresql/15/bin
if [ -x "$PGB/postgres" ] && id postgres >/dev/null 2>&1; then
	echo "(the pool before PostgreSQL: $(stat -f -c '%f of %b blocks free' "$M"))"
	chown postgres "$POOL"
	mkdir "$M/pg" "$T/pgs"
	chown postgres "$M/pg" "$T/pgs"
	# postgres hangs at its start under libasan itself (with or without the
	# shim): a sanitizer suite runs it with the release shim, against the
	# sanitizer build's daemon
	PGPRE=$PRE
	[ -n "$ASANRT" ] && PGPRE=$(realpath "$(dirname "$SHIM")/../libpoise-preload.so")
	PG() { setpriv --reuid=postgres --regid=postgres --clear-groups env HOME="$T/pgs" LD_PRELOAD="$PGPRE" "$@"; }
	PGPORT=$((40000 + $$ % 20000))
	pg_start() {
		PG env POISE_SHIM_STATS=1 "$PGB/pg_ctl" -D "$M/pg/data" -l "$T/pgs/pg.log" \
			-o "-k $T/pgs -c listen_addresses= -p $PGPORT" -w start >/dev/null
	}
	SQL() { PG "$PGB/psql" -h "$T/pgs" -p "$PGPORT" -U postgres -At -c "$1" postgres; }
	# pgbench's invariant (its runs with -n: no truncation of the history
	# between runs): every transaction adds its delta to one account,
	# teller and branch, and records it in the history
	sums() { SQL "select (select sum(abalance) from pgbench_accounts) = (select coalesce(sum(delta), 0) from pgbench_history)
		and (select sum(tbalance) from pgbench_tellers) = (select sum(bbalance) from pgbench_branches)
		and (select sum(bbalance) from pgbench_branches) = (select coalesce(sum(delta), 0) from pgbench_history),
		(select count(*) from pgbench_accounts)"; }
	expect_rc 0 "postgres: initdb in the mount" PG "$PGB/initdb" -D "$M/pg/data" -A trust -U postgres
	expect_rc 0 "postgres: the server starts" pg_start
	expect_rc 0 "pgbench -i" PG "$PGB/pgbench" -h "$T/pgs" -p "$PGPORT" -i -s 2 -q postgres
	PG "$PGB/pgbench" -h "$T/pgs" -p "$PGPORT" -n -c 4 -j 2 -T 3 postgres >"$T/pgb1" 2>&1
	check "pgbench, 4 clients: no failed transaction" grep -q "number of failed transactions: 0 " "$T/pgb1"
	PG "$PGB/pgbench" -h "$T/pgs" -p "$PGPORT" -n -c 2 -T 4 postgres >"$T/pgb2" 2>&1 &
	BPID=$!
	sleep 1.5
	kill -9 "$(pgrep -u postgres -f 'postgres: postgres postgres' | head -1)" 2>/dev/null
	wait "$BPID" 2>/dev/null
	for _ in $(seq 100); do SQL 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
	check "kill -9 of a backend: the postmaster recovers and serves" test "$(SQL 'select 1')" = 1 ||
		grep -v 'direct reads' "$T/pgs/pg.log" | tail -25
	check "... the balances agree, every account is there" test "$(sums)" = "t|200000"
	PG "$PGB/pgbench" -h "$T/pgs" -p "$PGPORT" -n -c 2 -T 4 postgres >"$T/pgb3" 2>&1 &
	BPID=$!
	sleep 1.5
	pkill -9 -u postgres -x postgres
	wait "$BPID" 2>/dev/null
	for _ in $(seq 100); do pgrep -u postgres -x postgres >/dev/null || break; sleep 0.1; done
	# a postmaster killed with -9 leaves its pid file; the pid is gone (or a zombie)
	pid=$(head -1 "$M/pg/data/postmaster.pid" 2>/dev/null)
	if [ -n "$pid" ] && { [ ! -e "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; }; then
		rm -f "$M/pg/data/postmaster.pid"
	fi
	expect_rc 0 "kill -9 of the whole server: it starts again (crash recovery)" pg_start ||
		grep -v 'direct reads' "$T/pgs/pg.log" | tail -25
	check "pg_amcheck (heap and every index) is clean" PG "$PGB/pg_amcheck" -h "$T/pgs" -p "$PGPORT" -U postgres \
		--install-missing --heapallindexed postgres
	check "the balances agree, every account is there" test "$(sums)" = "t|200000"
	PG "$PGB/pg_ctl" -D "$M/pg/data" -m fast -w stop >/dev/null
	check "the server's processes read and wrote directly" \
		awk '/direct reads/ {r += $3; w += $6} END {exit !(r > 0 && w > 0)}' "$T/pgs/pg.log"
	chown root "$POOL"
else
	bad "PostgreSQL 15 is not installed (scripts/install-deps installs it)"
fi

# ---- another user, and hostile messages ----
chmod 644 "$M/f"
SC $NOBODY "$H" verify "$M/f" 5 256 >"$T/out"
check "a user who may not write the pool reads through the kernel ($(direct))" \
	test "$(cat "$T/out")" = ok -a "$(direct)" = "0 0"
expect_rc 1 "and cannot write a file the kernel would refuse it" $NOBODY env LD_PRELOAD="$PRE" "$H" fill "$M/f" 1 1
check "a child that drops privileges after fork does not keep the pool mapped" S "$H" forkdrop "$M/f" "$POOL"
SOCK=$(ls /run/poise/data-*.sock 2>/dev/null | head -1)
check "the data socket exists" test -S "$SOCK"
cat >"$T/hostile.py" <<'EOF'
import socket, struct, sys, os
sock = sys.argv[1]
MAGIC = 0x31504450
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(sock)
    return s
out = []
s = conn(); s.send(b"garbage"); out.append("garbage:" + ("dropped" if s.recv(64) == b"" else "answered"))
s = conn(); s.send(struct.pack("<IIQQ", MAGIC, 3, 1, 0)); out.append("map-unadmitted:" + ("dropped" if s.recv(9000) == b"" else "answered"))
s = conn(); fd = os.open("/dev/null", os.O_RDWR)
s.sendmsg([struct.pack("<IIQQ", MAGIC, 2, 0, 0)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
a = s.recv(64); out.append("admit-wrong-fd:%d" % struct.unpack("<Ii", a[:8])[1])
s = conn(); s.send(struct.pack("<IIQQ", MAGIC, 99, 0, 0)); out.append("unknown-op:" + ("dropped" if s.recv(64) == b"" else "answered"))
print(" ".join(out))
if len(sys.argv) > 2:
    # descriptors on empty datagrams, many times: none may stay in the daemon
    for i in range(300):
        s = conn()
        s.sendmsg([b""], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("4i", fd, fd, fd, fd))])
        s.close()
    # a socket whose close would wait forever (lingering on unsent data),
    # handed over and kept alive: the daemon must go on serving
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
    t = socket.create_connection(l.getsockname()); a, _ = l.accept()
    t.setblocking(False)
    try:
        while True:
            t.send(b"x" * 65536)
    except BlockingIOError:
        pass
    t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 2**31 - 1))
    s = conn(); s.sendmsg([struct.pack("<IIQQ", MAGIC, 1, 0, 0)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", t.fileno()))])
    t.close()
    # and connections that never admit
    idle = [conn() for i in range(300)]
    open(sys.argv[2], "w").write("ready\n")
    import time; time.sleep(float(sys.argv[3]))
EOF
PY=/usr/bin/python3 # the system's (another user may not run one under /root)
[ -x "$PY" ] || PY=$(command -v python3)
"$PY" "$T/hostile.py" "$SOCK" >"$T/hostile" 2>&1
check "garbage, a map before admission, an unknown operation: dropped" grep -q "garbage:dropped map-unadmitted:dropped.*unknown-op:dropped" "$T/hostile"
check "admission with a descriptor that is not the pool: refused (EACCES)" grep -q "admit-wrong-fd:-13" "$T/hostile"
DPID=$(pgrep -f "poise mount -o allow_other $POOL" | head -1)
nfd=$(ls /proc/"$DPID"/fd | wc -l)
rm -f "$T/ready"
$NOBODY "$PY" "$T/hostile.py" "$SOCK" "$T/ready" 6 >"$T/hostile2" 2>&1 &
HPID=$!
for _ in $(seq 100); do [ -e "$T/ready" ] && break; sleep 0.1; done
check "the same as another user" grep -q "admit-wrong-fd:-13" "$T/hostile2"
sleep 3.5 # past the admission deadline (2 s, checked every second)
SC "$H" verify "$M/f" 5 256 >"$T/out"
check "while another user floods it (fds on empty datagrams, a socket whose close blocks, 300 idle connections), a process is admitted and reads directly ($(direct))" \
	test "$(cat "$T/out")" = ok -a "$(direct)" = "256 0"
check "the daemon kept none of the descriptors sent to it ($nfd before, $(ls /proc/"$DPID"/fd | wc -l) now)" \
	test "$(ls /proc/"$DPID"/fd | wc -l)" -le $((nfd + 8))
wait "$HPID" 2>/dev/null
check "the mount still serves" sh -c "'$H' verify '$M/f' 5 256 | grep -q '^ok'"

# ---- kill -9 of the daemon ----
DPID=$(pgrep -f "poise mount -o allow_other $POOL" | head -1)
"$H" fill "$M/dapp" 8 1
coproc B { S "$H" cmd; } # appends into a grant, fsyncs, appends more
echo "open $M/dapp" >&"${B[1]}"; read -r a <&"${B[0]}"
for i in $(seq 1 20); do echo "w $((i * 4096)) 4096 9" >&"${B[1]}"; read -r a <&"${B[0]}"; done
echo "fsync" >&"${B[1]}"; read -r bf <&"${B[0]}"
echo "w $((21 * 4096)) 4096 9" >&"${B[1]}"; read -r a <&"${B[0]}"
coproc A { S "$H" cmd; }
echo "open $M/f" >&"${A[1]}"; read -r a <&"${A[0]}"
echo "r 0 4096" >&"${A[1]}"; read -r d1 <&"${A[0]}"
kill -9 "$DPID"
sleep 1.5 # the lease runs out
echo "r 0 4096" >&"${A[1]}"; read -r -t 10 d2 <&"${A[0]}"
check "after kill -9 of the daemon, a process's read is a clean error ($d2)" test "${d2%% *}" = err
echo "w 0 4096 1" >&"${A[1]}"; read -r -t 10 d3 <&"${A[0]}"
check "and so is its write ($d3)" test "${d3%% *}" = err
echo q >&"${A[1]}"; wait "$A_PID" 2>/dev/null
echo q >&"${B[1]}"; wait "$B_PID" 2>/dev/null
umount -l "$M" 2>/dev/null || fusermount3 -uz "$M"
expect_rc 0 "fsck after all of it is clean" "$P" fsck "$POOL"
expect_rc 0 "remount" "$P" mount "$POOL" "$M"
check "the data is there" sh -c "'$H' verify '$M/f' 5 256 | grep -q '^ok'"
check "and the writers' file checks" S "$H" check "$M/loop" "$T/log" "$M/app"
check "appends fsynced before the daemon died are there ($bf, $(stat -c %s "$M/dapp") bytes)" \
	test "$bf" = ok -a "$(stat -c %s "$M/dapp")" -ge $((21 * 4096)) -a \
	"$(head -c $((21 * 4096)) "$M/dapp" | tail -c $((20 * 4096)) | tr -d '\011' | wc -c)" = 0
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "fsck clean" "$P" fsck "$POOL"
finish
