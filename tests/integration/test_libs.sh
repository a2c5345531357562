#!/usr/bin/env bash
# test_libs.sh - the shared libraries behave in other people's processes:
# libpoise.so exports the functions include/poise.h declares and nothing
# else; the shim exports only the C library names it interposes; a program
# with its own functions named like the library's internals (iget,
# dir_add, tx_commit, file_write, now_ns) runs under the shim and keeps
# its own.
# Usage: test_libs.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
B=$(dirname "$(realpath "${1:-build/poise}")")
P=$B/poise
SHIM=$(realpath build/libpoise-preload.so) # the release shim (an ASan one cannot be preloaded)
T=$(mktemp -d /dev/shm/poise-libs-XXXXXX)
trap 'rm -rf "$T"' EXIT

nm -D --defined-only "$B/libpoise.so" | awk '{print $3}' | sort >"$T/lib"
check "libpoise.so exports only poise_* names" test -z "$(grep -v '^poise_' "$T/lib")"
cat include/poise.h include/poise-admin.h | grep -oE '\bpoise_[a-z0-9_]+ *\(' | tr -d ' (' | sort -u >"$T/api"
check "exactly the functions poise.h and poise-admin.h declare" cmp "$T/lib" "$T/api"
check "(iget, tx_commit, dir_add, file_write, now_ns are not among them)" \
	sh -c "! grep -qxE 'iget|tx_commit|dir_add|file_write|now_ns' '$T/lib'"
nm -D --defined-only "$SHIM" | awk '{print $3}' | sort >"$T/shim"
check "the shim exports no poise, shim or library-internal name" \
	sh -c "! grep -qE '^(poise_|shim_|__poise_libc_|iget|dir_add|tx_commit|file_write|now_ns)' '$T/shim'"
check "but does export what it interposes" sh -c "grep -qx open '$T/shim' && grep -qx pread '$T/shim' && grep -qx statx '$T/shim'"

# a program with functions of the library's internal names, under the shim
cat >"$T/own.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* the program's own functions: the shim's library must never call these */
int iget(void *a, unsigned long b, void **c) { (void)a; (void)b; (void)c; fprintf(stderr, "own iget called\n"); abort(); }
int dir_add(void) { fprintf(stderr, "own dir_add called\n"); abort(); }
int tx_commit(void *t) { (void)t; fprintf(stderr, "own tx_commit called\n"); abort(); }
long file_write(void) { fprintf(stderr, "own file_write called\n"); abort(); }
long now_ns(void) { return 42; }
int main(int argc, char **argv)
{
	int fd = open(argv[1], O_CREAT | O_RDWR, 0644);
	if (fd < 0 || write(fd, "hello", 5) != 5 || pread(fd, (char[8]){0}, 5, 0) != 5 || close(fd) != 0)
		return 1;
	return now_ns() == 42 ? 0 : 2; /* and its own now_ns is its own */
}
C
cc -O1 -rdynamic -o "$T/own" "$T/own.c"
"$P" mkfs --size 16M "$T/pool.img" >/dev/null
check "a program with its own iget, dir_add, tx_commit runs under the shim" \
	env POISE_POOL="$T/pool.img" POISE_PATH=/poise LD_PRELOAD="$SHIM" "$T/own" /poise/f
check "and its file is in the pool" test "$("$P" cat "$T/pool.img" /f)" = hello
finish
