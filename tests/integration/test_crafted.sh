#!/usr/bin/env bash
# test_crafted.sh - images an attacker made, every checksum valid
# (tests/craft.py): an inode-table size that wraps the geometry, directory
# entries named '..', '.', 'a/b', 'a\0b', a second entry of one name, an
# entry naming an ancestor (a cycle), extent chains that loop with
# i_nextents = 0xFFFFFFFF, a directory claiming 2^27 blocks, a file past
# the largest size.  Every command must refuse or report them with a clear
# error (exit 1 or 2), never crash (no signal, no sanitizer report), never
# hang, never write outside `get`'s destination, and fsck must call none of
# them clean.
# Usage: test_crafted.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=$(realpath "${1:-build/poise}")
T=$(mktemp -d /dev/shm/poise-crafted-XXXXXX)
trap 'rm -rf "$T"' EXIT
CRAFT="python3 tests/craft.py"

# a command on a crafted image: it ends within 20 s by itself, with exit 0, 1
# or 2 (a signal or a sanitizer's abort is a failure)
sane() {
	local n=$1; shift
	timeout -s KILL 20 "$@" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ $rc -le 2 ] && ! grep -qE 'Sanitizer|runtime error' "$T/err"; then ok "$n"; else
		bad "$n" "exit $rc: $(tail -3 "$T/err")"; fi
}
not_clean() { # NAME IMAGE: fsck and fsck --repair do not call it clean afterwards without a change
	sane "$1: fsck ends cleanly" "$P" fsck "$2"
	expect_rc 1 "$1: fsck reports it" "$P" fsck "$2"
}

# the base: a small tree, fragmented files (extent blocks)
B=$T/base.img
"$P" mkfs --size 4M "$B" >/dev/null
"$P" mkdir -p "$B" /sub/inner
printf 'secret' >"$T/f"
"$P" put "$B" "$T/f" /sub/inner/f
"$P" put "$B" "$T/f" /top
for i in 1 2 3; do for o in 0 8192 16384 24576 32768 40960; do
	printf 'frag' | "$P" write "$B" /frag$i --offset $o; done; done
check "the base image is clean" "$P" fsck "$B"
SUB=$("$P" stat --json "$B" /sub | python3 -c 'import json,sys; print(json.load(sys.stdin)["ino"])')
INNER=$("$P" stat --json "$B" /sub/inner | python3 -c 'import json,sys; print(json.load(sys.stdin)["ino"])')
TOP=$("$P" stat --json "$B" /top | python3 -c 'import json,sys; print(json.load(sys.stdin)["ino"])')

# ---- superblock geometry that wraps ----
for k in sb-itable-wrap sb-itable-big; do
	$CRAFT $k "$B" "$T/$k.img"
	for cmd in info fsck "fsck --repair" "ls" scrub "badblocks list"; do
		sane "$k: $cmd" "$P" $cmd "$T/$k.img"
	done
	expect_rc 1 "$k: info refuses it" "$P" info "$T/$k.img"
	"$P" info "$T/$k.img" 2>"$T/err"
	contains "$k: naming the impossible geometry" "$T/err" "impossible geometry"
	mkdir -p "$T/get-$k"
	sane "$k: get" "$P" get "$T/$k.img" / "$T/get-$k/d"
done

# ---- names no entry may have ----
for spec in "sub:.." "sub:." "sub:s/b" 'sub:s\0b'; do
	n="entry '${spec#sub:}'"
	$CRAFT dirent-name "$B" "$T/x.img" "$spec"
	not_clean "$n" "$T/x.img"
	"$P" fsck --repair "$T/x.img" >/dev/null 2>&1
	expect_rc 0 "$n: --repair leaves a clean image" "$P" fsck "$T/x.img"
	check "$n: the directory the bad name hid is in /lost+found" \
		test "$("$P" ls "$T/x.img" /lost+found)" = "#$SUB"
	sane "$n: ls" "$P" ls "$T/x.img" /
	mkdir -p "$T/g/dest"
	sane "$n: get" "$P" get "$T/x.img" / "$T/g/dest/out"
	check "$n: get wrote nothing outside its destination" test -z "$(ls -A "$T/g" | grep -v '^dest$')" \
		-a -z "$(ls -A "$T/g/dest" | grep -v '^out$')"
	check "$n: and the good file came out" cmp "$T/g/dest/out/top" "$T/f"
	rm -rf "$T/g"
done

# ---- a second entry of one name (a symlink and a file: get must not write through the link) ----
ln -s "$T/outside" "$T/l"
"$P" put "$B" "$T/l" /link
LINK=$("$P" stat --json "$B" /link | python3 -c 'import json,sys; print(json.load(sys.stdin)["ino"])')
$CRAFT dirent-dup "$B" "$T/dup.img" "top:$LINK"
not_clean "duplicate name" "$T/dup.img"
mkdir -p "$T/g"
sane "duplicate name: get" "$P" get "$T/dup.img" / "$T/g/out"
check "duplicate name: nothing written through a symlink" test ! -e "$T/outside"
rm -rf "$T/g"
"$P" rm "$B" /link

# ---- a cycle: /sub/inner/loop names /sub ----
$CRAFT dirent-cycle "$B" "$T/cyc.img" "$SUB:$INNER"
not_clean "cycle" "$T/cyc.img"
"$P" fsck "$T/cyc.img" >"$T/fsck" 2>&1
contains "cycle: fsck says what it is" "$T/fsck" "a cycle or a second name"
mkdir -p "$T/g"
sane "cycle: get does not follow it" "$P" get "$T/cyc.img" / "$T/g/out"
check "cycle: get stopped (no endless tree)" test ! -e "$T/g/out/sub/inner/loop/inner"
rm -rf "$T/g"
cp "$T/cyc.img" "$T/cyc2.img"
sane "cycle: rm -r does not follow it" "$P" rm -r "$T/cyc2.img" /sub
sane "cycle: and leaves what is not under it" "$P" cat "$T/cyc2.img" /top
check "cycle: /top is still there" test "$("$P" cat "$T/cyc2.img" /top)" = secret
"$P" fsck --repair "$T/cyc.img" >"$T/fsck" 2>&1
contains "cycle: --repair removes the entry" "$T/fsck" "(repaired)"
expect_rc 0 "cycle: then the image is clean" "$P" fsck "$T/cyc.img"
check "cycle: the link count was not raised for it" test "$("$P" stat --json "$T/cyc.img" /sub/inner |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["nlink"])')" = 2

# ---- extent chains that loop ----
$CRAFT extent-loop "$B" "$T/loop.img"
start=$(date +%s)
sane "looping extent chains: info" "$P" info "$T/loop.img"
sane "looping extent chains: fsck" "$P" fsck "$T/loop.img"
check "looping extent chains: both in a few seconds" test $(($(date +%s) - start)) -le 10
expect_rc 1 "looping extent chains: fsck reports them" "$P" fsck "$T/loop.img"
sane "looping extent chains: cat of one" "$P" cat "$T/loop.img" /frag1
expect_rc 1 "looping extent chains: cat refuses it" "$P" cat "$T/loop.img" /frag1

# ---- extents that claim blocks another inode holds ----
"$P" put "$B" "$T/f" /second
SECOND=$("$P" stat --json "$B" /second | python3 -c 'import json,sys; print(json.load(sys.stdin)["ino"])')
$CRAFT extent-share "$B" "$T/share.img" "$TOP:$SECOND"
sane "a shared block: info" "$P" info "$T/share.img"
expect_rc 0 "a shared block: the pool still mounts" "$P" info "$T/share.img"
check "the first holder keeps it" test "$("$P" cat "$T/share.img" /top)" = secret
"$P" cat "$T/share.img" /second >/dev/null 2>"$T/err"
contains "the second is refused as cross-linked (never two files on one block)" "$T/err" "cross-linked"
not_clean "a shared block" "$T/share.img"
$CRAFT extent-overlap "$B" "$T/over.img"
start=$(date +%s)
sane "every inode claiming the whole data area: info" "$P" info "$T/over.img"
"$P" info "$T/over.img" 2>"$T/err"
contains "refused at once, naming the cross-linking" "$T/err" "cross-linked"
check "(in a few seconds)" test $(($(date +%s) - start)) -le 10
"$P" rm "$B" /second

# ---- sizes past what the pool holds ----
$CRAFT dir-size "$B" "$T/dsz.img" "$SUB"
# memory bounded: 2 GB of address space (not under ASan, which reserves terabytes)
LIMIT="ulimit -v 2000000"
ldd "$P" | grep -q libasan && LIMIT=:
sane "directory of 2^27 blocks: ls" bash -c "$LIMIT; exec \"$P\" ls \"$T/dsz.img\" /sub"
expect_rc 1 "directory of 2^27 blocks: ls refuses it" "$P" ls "$T/dsz.img" /sub
not_clean "directory of 2^27 blocks" "$T/dsz.img"
$CRAFT file-size "$B" "$T/fsz.img" "$TOP"
not_clean "file of 2^60 bytes" "$T/fsz.img"
"$P" fsck "$T/fsz.img" >"$T/fsck" 2>&1
contains "file of 2^60 bytes: fsck names the limit" "$T/fsck" "past the largest the format allows"
# ---- format versions: 1.0 pools, newer ones, and the node types of 1.1 ----
"$P" info "$B" >"$T/info"
contains "a new pool is format 1.2" "$T/info" "poise 1.2"
$CRAFT as-1.0 "$B" "$T/v10.img"
expect_rc 0 "a 1.0 pool (an older poise's) opens" "$P" info "$T/v10.img"
"$P" info "$T/v10.img" >"$T/info"
contains "and says it is 1.0" "$T/info" "poise 1.0"
expect_rc 0 "a 1.0 pool is fsck-clean" "$P" fsck "$T/v10.img"
check "its files read as before" test "$("$P" cat "$T/v10.img" /top)" = secret
cp "$T/v10.img" "$T/v10b.img"
mkfifo "$T/fifo"
expect_rc 0 "a FIFO put into a 1.0 pool" "$P" put "$T/v10b.img" "$T/fifo" /fifo
"$P" info "$T/v10b.img" >"$T/info"
contains "moves the pool to 1.1 with it" "$T/info" "poise 1.1"
expect_rc 0 "which is fsck-clean" "$P" fsck "$T/v10b.img"
check "and holds the FIFO" test "$("$P" stat --json "$T/v10b.img" /fifo |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')" = fifo
$CRAFT sb-minor "$B" "$T/v13.img" 3
expect_rc 1 "a 1.3 pool (a newer poise's) is refused" "$P" info "$T/v13.img"
"$P" fsck "$T/v13.img" >"$T/err" 2>&1
contains "naming the version" "$T/err" "format version 1.3 is not supported"
$CRAFT sb-minor "$B" "$T/v11h.img" 1
expect_rc 1 "a 1.1 superblock with the 1.2 lane-hash bit is refused" "$P" info "$T/v11h.img"
"$P" info "$T/v11h.img" 2>"$T/err"
contains "naming the features" "$T/err" "features 0x3 that format 1.1 does not have"
$CRAFT sb-features "$B" "$T/feat.img" 0x4
expect_rc 1 "an unknown feature bit is refused" "$P" info "$T/feat.img"
"$P" info "$T/feat.img" 2>"$T/err"
contains "naming it" "$T/err" "features 0x4"
$CRAFT sb-features "$T/v10.img" "$T/feat0.img" 0x1
expect_rc 1 "a 1.0 superblock with a feature bit is refused" "$P" info "$T/feat0.img"
# a FIFO in a 1.0 pool: what an older poise could never have written
$CRAFT set-mode "$T/v10.img" "$T/fifo10.img" "$TOP:010644"
not_clean "a FIFO in a 1.0 pool" "$T/fifo10.img"
"$P" fsck "$T/fifo10.img" >"$T/fsck" 2>&1
contains "a FIFO in a 1.0 pool: fsck names it" "$T/fsck" "a type format 1.0 does not have"
expect_rc 1 "a FIFO in a 1.0 pool: stat refuses it (never misread)" "$P" stat "$T/fifo10.img" /top
sane "a FIFO in a 1.0 pool: ls -l" "$P" ls -l "$T/fifo10.img" /
# nodes that hold data, device numbers on files
$CRAFT set-mode "$B" "$T/fifod.img" "$TOP:010644"
not_clean "a FIFO holding blocks" "$T/fifod.img"
"$P" fsck "$T/fifod.img" >"$T/fsck" 2>&1
contains "a FIFO holding blocks: fsck names it" "$T/fsck" "a FIFO, socket or device that holds data"
expect_rc 1 "a FIFO holding blocks: stat refuses it" "$P" stat "$T/fifod.img" /top
$CRAFT set-rdev "$B" "$T/rdev.img" "$TOP:0x103"
not_clean "a device number on a file" "$T/rdev.img"
"$P" fsck "$T/rdev.img" >"$T/fsck" 2>&1
contains "a device number on a file: fsck names it" "$T/fsck" "a device number on what is not a device"
sane "a device number on a file: cat" "$P" cat "$T/rdev.img" /top
expect_rc 1 "a device number on a file: cat refuses it" "$P" cat "$T/rdev.img" /top
finish
