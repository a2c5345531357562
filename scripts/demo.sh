#!/usr/bin/env bash
# demo.sh - `make demo`: the main job on an emulated pool.
#  1. the file system: mkfs, copy a real tree in, list it, read it back,
#     compare, fsck;
#  2. media errors in a file: the read stops at the damage, scrub names the
#     file, a write repairs it (and, where the platform cannot clear, moves
#     the block and quarantines the bad one);
#  3. poison in one copy of every metadata structure: scrub repairs each
#     from its twin, nothing is lost;
#  4. media errors at the device layer: poison injected; reads of the bad
#     sectors fail cleanly while everything around them (the good sectors of
#     the same page included) reads fine; a small write clears the poison.
set -euo pipefail
cd "$(dirname "$0")/.."
P=build/poise
D=$(mktemp -d /dev/shm/poise-demo-XXXXXX)
trap 'rm -rf "$D"' EXIT
POOL=$D/pool.img
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

FS=$D/fs.img
TREE=/usr/include/linux
printf '\n== 1. a file system on persistent memory (emulated pool in /dev/shm) ==\n'
run $P mkfs --size 256M "$FS"
run $P put "$FS" "$TREE" /linux
say "$P ls -l $FS /linux | head -5"
$P ls -l "$FS" /linux | head -5
echo "-> $($P ls "$FS" /linux | wc -l) entries"
run $P stat "$FS" /linux/fs.h
say "$P cat $FS /linux/fs.h | head -3"
$P cat "$FS" /linux/fs.h | head -3
say "$P get $FS /linux back && diff -r $TREE back"
$P get "$FS" /linux "$D/back" && diff -r "$TREE" "$D/back" && echo "-> identical"
run $P info "$FS"
run $P fsck "$FS"

printf '\n== 2. media errors in files: the DAX path survives poison ==\n'
cp "$TREE/fs.h" "$D/fs.h"
say "$P badblocks inject $FS --file /linux/fs.h --offset 5000   # poison one sector of a file"
$P badblocks inject "$FS" --file /linux/fs.h --offset 5000
say "$P cat $FS /linux/fs.h > out   # the read stops exactly at the damage"
$P cat "$FS" /linux/fs.h >"$D/out" || true
echo "-> $(stat -c %s "$D/out") good bytes delivered, identical to the original: $(cmp -s -n "$(stat -c %s "$D/out")" "$D/out" "$D/fs.h" && echo yes || echo NO)"
say "$P cat $FS /linux/stat.h | md5sum   # every other file reads normally"
$P cat "$FS" /linux/stat.h | md5sum; md5sum <"$TREE/stat.h"
say "$P scrub $FS   # scrub names the file and the bytes"
$P scrub "$FS" || true
say "dd if=fs.h bs=512 skip=9 count=1 | $P write $FS /linux/fs.h --offset 4608   # repair the sector from a copy"
dd if="$D/fs.h" bs=512 skip=9 count=1 status=none | $P write "$FS" /linux/fs.h --offset 4608
$P cat "$FS" /linux/fs.h | cmp - "$D/fs.h" && echo "-> the file reads whole again"
run $P badblocks list "$FS"
say "POISE_NOCLEAR=1: a platform that cannot clear poison; a write still succeeds"
$P badblocks inject "$FS" --file /linux/fs.h --offset 100 --length 1000 >/dev/null
head -c 4096 "$D/fs.h" | POISE_NOCLEAR=1 $P write "$FS" /linux/fs.h --offset 0
$P cat "$FS" /linux/fs.h | cmp - "$D/fs.h" && echo "-> written through a fresh block; the bad one is quarantined:"
$P scrub "$FS"
run $P fsck "$FS"

printf '\n== 3. metadata survives poison: every structure has a replica ==\n'
for i in 0 2 4 6 8 10 12 14; do # a file with holes: its extents spill into an extent block
	head -c 4096 "$D/fs.h" | $P write "$FS" /frag --offset $((i * 4096))
done
$P get "$FS" /frag "$D/frag"
run $P badblocks inject "$FS" --metadata superblock,inodes,dir,extents,log
run $P scrub "$FS"
say "$P ls $FS / ; $P cat $FS /frag | cmp - frag"
$P ls "$FS" /
$P cat "$FS" /frag | cmp - "$D/frag" && echo "-> the namespace and the fragmented file read whole; every damaged copy was rewritten from its twin"
run $P badblocks list "$FS"
run $P fsck "$FS"

printf '\n== 4. the device layer underneath: raw sectors ==\n'
run $P pool create "$POOL" --size 64M
head -c 16384 /dev/urandom >"$D/data"
say "$P dev write $POOL 0 < 16 KiB of random data"
$P dev write "$POOL" 0 <"$D/data"
run $P badblocks inject "$POOL" 17 1
run $P badblocks list "$POOL"
say "$P dev read $POOL 0 16384 > out   # a read across the bad sector"
if $P dev read "$POOL" 0 16384 >"$D/out"; then echo "demo: the read should have failed" >&2; exit 1; fi
echo "-> got $(stat -c %s "$D/out") good bytes (sectors 0-16) before the error; they match: $(cmp -s -n 8704 "$D/out" "$D/data" && echo yes || echo NO)"
say "$P dev read $POOL 9216 7168   # the sectors after it, same page included"
$P dev read "$POOL" 9216 7168 | cmp - <(tail -c +9217 "$D/data") && echo "-> 7168 bytes, all correct"
say "printf '!' | $P dev write $POOL 8704   # one byte over the bad sector"
printf '!' | $P dev write "$POOL" 8704
run $P badblocks list --json "$POOL"
say "$P dev read $POOL 8704 16 | od -c"
$P dev read "$POOL" 8704 16 | od -c | head -2
echo "-> the sector is readable again: the written byte, then zeros (its old bytes were lost to the poison)"
