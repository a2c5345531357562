#!/usr/bin/env bash
# demo.sh - `make demo`: the main job on an emulated pool.
#  1. the file system: mkfs, copy a real tree in, list it, read it back,
#     compare, fsck;
#  2. media errors at the device layer: poison injected; reads of the bad
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

printf '\n== 2. media errors: the device layer survives poison ==\n'
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
