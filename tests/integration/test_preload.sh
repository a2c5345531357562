#!/usr/bin/env bash
# test_preload.sh - unmodified programs on a pool through the LD_PRELOAD
# shim: fio (psync and pvsync2, crc32c verification, threads), sqlite3
# (transactions, integrity_check, reopened), cp/cat/sha256sum/tar round
# trips, ls, mv, rm, ln -s, chmod, touch, stat; media errors as EIO; fork
# keeps descriptors, exec closes them; paths outside POISE_PATH untouched;
# a program built with _FORTIFY_SOURCE=2 (its __read_chk and kin).
# Usage: test_preload.sh [POISE_BINARY] (the shim is beside it)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=$(realpath "${1:-build/poise}")
SHIM=$(dirname "$P")/libpoise-preload.so
T=$(mktemp -d /dev/shm/poise-preload-XXXXXX)
trap 'rm -rf "$T"' EXIT
POOL=$T/pool.img
export POISE_POOL=$POOL POISE_PATH=/poise
# A sanitizer build of the shim needs its runtime loaded first; programs'
# own leaks are not ours to report.
ASANRT=$(ldd "$SHIM" 2>/dev/null | awk '/libasan/ {print $3}')
PRE=$SHIM
if [ -n "$ASANRT" ]; then
	PRE="$ASANRT $SHIM"
	export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0
fi
# run a program under the shim (one at a time: a pool belongs to one process)
S() { LD_PRELOAD="$PRE" "$@"; }

expect_rc 0 "mkfs" "$P" mkfs --size 512M "$POOL"
check "the shim is built" test -f "$SHIM"

# ---- coreutils ----
expect_rc 0 "mkdir" S mkdir -p /poise/a/b
expect_rc 0 "cp a file in" S cp /usr/include/stdio.h /poise/a/b/
check "cat reads it back" cmp <(S cat /poise/a/b/stdio.h) /usr/include/stdio.h
check "sha256sum agrees" test "$(S sha256sum /poise/a/b/stdio.h | cut -d' ' -f1)" = "$(sha256sum /usr/include/stdio.h | cut -d' ' -f1)"
expect_rc 0 "cp it back out" S cp /poise/a/b/stdio.h "$T/out.h"
check "identical" cmp "$T/out.h" /usr/include/stdio.h
check "ls lists it" sh -c "LD_PRELOAD=\"$PRE\" ls /poise/a/b | grep -qx stdio.h"
expect_rc 0 "mv within the pool" S mv /poise/a/b/stdio.h /poise/a/renamed.h
expect_rc 1 "the old name is gone" S cat /poise/a/b/stdio.h
expect_rc 0 "ln -s" S ln -s renamed.h /poise/a/link
check "a symlink is followed" cmp <(S cat /poise/a/link) /usr/include/stdio.h
expect_rc 0 "chmod" S chmod 600 /poise/a/renamed.h
check "stat shows the mode" test "$(S stat -c %a /poise/a/renamed.h)" = 600
expect_rc 0 "touch -d sets times" S touch -d '2020-01-02 03:04:05' /poise/a/renamed.h
check "stat shows them" test "$(S stat -c %Y /poise/a/renamed.h)" = "$(date -d '2020-01-02 03:04:05' +%s)"
env LD_PRELOAD="$PRE" sh -c 'umask 077; exec mkdir /poise/private'
check "umask applies" test "$(S stat -c %a /poise/private)" = 700
expect_rc 0 "rm -r" S rm -r /poise/a/b
check "mv out of the pool copies (EXDEV)" sh -c "LD_PRELOAD=\"$PRE\" mv /poise/a/renamed.h $T/moved.h && cmp $T/moved.h /usr/include/stdio.h"
check "paths outside POISE_PATH are the kernel's" sh -c "LD_PRELOAD=\"$PRE\" cp /usr/include/stdio.h $T/plain.h && cmp $T/plain.h /usr/include/stdio.h"

# ---- tar round trips ----
expect_rc 0 "tar into the pool" S tar -C /poise -xf <(tar -C /usr/include -cf - linux)
check "diff -r against the source" sh -c "LD_PRELOAD=\"$PRE\" diff -r /usr/include/linux /poise/linux"
expect_rc 0 "tar out of the pool" S tar -C /poise -cf "$T/back.tar" linux
mkdir "$T/back"
tar -C "$T/back" -xf "$T/back.tar"
check "what comes out equals the source" diff -r /usr/include/linux "$T/back/linux"

# ---- fio ----
S fio --verify_state_save=0 --name=ps --directory=/poise --thread --numjobs=4 --rw=randwrite --bs=4k --size=16m --ioengine=psync \
	--verify=crc32c --do_verify=1 --group_reporting >"$T/fio1" 2>&1
check "fio psync: 4 threads, random writes, crc32c verified" grep -q "err= 0" "$T/fio1"
S fio --verify_state_save=0 --name=pv2 --directory=/poise --thread --numjobs=2 --rw=randrw --bs=4k --size=16m --ioengine=pvsync2 \
	--verify=crc32c --do_verify=1 --group_reporting >"$T/fio2" 2>&1
check "fio pvsync2: random reads and writes, crc32c verified" grep -q "err= 0" "$T/fio2"
S fio --verify_state_save=0 --name=seq --directory=/poise --thread --rw=write --bs=1m --size=32m --ioengine=psync --verify=crc32c \
	--do_verify=1 >"$T/fio3" 2>&1
check "fio sequential 1 MiB, verified" grep -q "err= 0" "$T/fio3"

# ---- sqlite3 ----
sql_inserts 6 >"$T/sql"
expect_rc 0 "sqlite3: 3000 inserts in 6 transactions" S sqlite3 /poise/db.sqlite ".read $T/sql"
check "integrity_check ok, every row there, in a new process" \
	test "$(S sqlite3 /poise/db.sqlite 'pragma integrity_check; select count(*) from t;' | tr '\n' ' ')" = "ok 3000 "
check "a rolled-back transaction leaves nothing" \
	test "$(S sqlite3 /poise/db.sqlite "begin; delete from t; rollback; select count(*) from t;")" = 3000

# ---- fork and exec ----
echo hello >"$T/h"
S cp "$T/h" /poise/h
S python3 - <<'PY' >"$T/py" 2>&1
import os
fd = os.open("/poise/h", os.O_RDONLY)
pid = os.fork()
if pid == 0:
    os._exit(0 if os.read(fd, 5) == b"hello" else 3)
_, st = os.waitpid(pid, 0)
print("fork", os.WEXITSTATUS(st))
r = os.system("cat <&%d 2>/dev/null" % fd)  # exec: the descriptor is closed
print("exec", 0 if r != 0 else 1)
os.close(fd)
PY
check "after fork the child reads the parent's descriptor" grep -qx "fork 0" "$T/py"
check "exec closes poise descriptors" grep -qx "exec 0" "$T/py"

# ---- media errors ----
head -c 65536 /dev/urandom >"$T/ref"
S cp "$T/ref" /poise/victim
expect_rc 0 "poison a sector of it" "$P" badblocks inject "$POOL" --file /victim --offset 20000
S cat /poise/victim >"$T/got" 2>"$T/err"
contains "cat gets EIO" "$T/err" "Input/output error"
check "after exactly the good bytes" cmp "$T/got" <(head -c 19968 "$T/ref")
expect_rc 0 "a write over it clears it" S python3 -c "
import os
src = open('$T/ref', 'rb').read()
fd = os.open('/poise/victim', os.O_WRONLY)
os.pwrite(fd, src[19968:20480], 19968)
os.close(fd)"

check "the file reads whole" cmp <(S cat /poise/victim) "$T/ref"

# ---- a program built as distributions build (_FORTIFY_SOURCE=2) ----
# its reads of a buffer of known size but unknown length become __read_chk,
# __pread_chk, __readlink_chk, __getcwd_chk: they must reach the pool too
cat >"$T/fort.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	char buf[64], lnk[64], cwd[256];
	size_t want = (size_t)atoi(argv[2]); /* unknown to the compiler */
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return 2;
	ssize_t r = read(fd, buf, want), p = pread(fd, buf, want, 6);
	ssize_t l = readlink(argv[3], lnk, want);
	if (chdir(argv[4]) != 0)
		return 3;
	char *c = getcwd(cwd, want * 4);
	printf("%zd %zd %.*s %zd %.*s %s\n", r, p, (int)(p > 0 ? p : 0), buf, l, (int)(l > 0 ? l : 0), lnk, c ? c : "-");
	return 0;
}
C
printf 'hello world' >"$T/hw"
S cp "$T/hw" /poise/hw
S ln -s /poise/hw /poise/hwlink
if cc -O2 -D_FORTIFY_SOURCE=2 "$T/fort.c" -o "$T/fort" 2>"$T/err" && nm -u "$T/fort" | grep -q __read_chk; then
	out=$(S "$T/fort" /poise/hw 20 /poise/hwlink /poise/a 2>&1)
	check "a fortified program reads pool files, links and its cwd (read, pread, readlink, getcwd _chk)" \
		test "$out" = "11 5 world 9 /poise/hw /poise/a"
	S "$T/fort" /poise/hw 100 /poise/hwlink /poise/a >/dev/null 2>"$T/err"
	check "and a length past the buffer still stops it, as glibc does" grep -q "buffer overflow detected" "$T/err"
else
	bad "(the fortified test program did not build with __read_chk)" "$(cat "$T/err")"
fi

# ---- the pool is consistent ----
expect_rc 0 "fsck" "$P" fsck "$POOL"
expect_rc 0 "the pool is still usable by the CLI" "$P" ls "$POOL" /
finish
