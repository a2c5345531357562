#!/usr/bin/env bash
# test_cli_fs.sh - the file-system commands end to end: mkfs, info, put a
# real tree, ls, stat, cat, get it back and compare, mv, rm, mkdir -p,
# fsck (clean, and exit 1 on damage), and the errors users meet.
# Usage: test_cli_fs.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=${1:-build/poise}
T=$(mktemp -d /dev/shm/poise-clifs-XXXXXX)
trap 'rm -rf "$T"' EXIT
POOL=$T/fs.img
SRC=/usr/include/linux

expect_rc 0 "mkfs creates a 128 MiB pool" $P mkfs --size 128M "$POOL"
expect_rc 1 "mkfs refuses a formatted pool" $P mkfs "$POOL"
$P mkfs "$POOL" 2>"$T/err"; contains "and says how to override" "$T/err" "use --force"
expect_rc 0 "mkfs --force" $P mkfs --force "$POOL"
$P info --json "$POOL" >"$T/info"
contains "info --json has the geometry" "$T/info" '"block_size":4096'
contains "info --json has usage" "$T/info" '"inodes_free":'
if command -v python3 >/dev/null; then check "info json parses" python3 -m json.tool "$T/info"; fi
expect_rc 0 "put a real tree" $P put "$POOL" $SRC /linux
expect_rc 0 "ls" sh -c "$P ls '$POOL' / > '$T/ls'"
check "ls shows it" grep -qx linux "$T/ls"
check "ls -l lists every file" test "$($P ls -l "$POOL" /linux | wc -l)" -eq "$(ls -A $SRC | wc -l)"
f=$(ls $SRC | grep '\.h$' | head -1)
check "cat gives the bytes" cmp <($P cat "$POOL" /linux/$f) $SRC/$f
$P stat --json "$POOL" /linux/$f >"$T/st"
contains "stat --json has the size" "$T/st" "\"size\":$(stat -c %s $SRC/$f)"
contains "stat --json has the type" "$T/st" '"type":"file"'
expect_rc 0 "get the tree back" $P get "$POOL" /linux "$T/back"
check "the tree comes back byte for byte" diff -r $SRC "$T/back"
check "and with the same modes" diff <(cd $SRC && find . -printf "%m %y %p\n" | sort) <(cd "$T/back" && find . -printf "%m %y %p\n" | sort)
expect_rc 0 "fsck is clean" $P fsck "$POOL"
$P fsck --json "$POOL" >"$T/fsck"
contains "fsck --json says clean" "$T/fsck" '"clean":true'
expect_rc 0 "mkdir -p" $P mkdir -p "$POOL" /a/b/c
expect_rc 0 "mkdir -p again is fine" $P mkdir -p "$POOL" /a/b/c
expect_rc 1 "mkdir of an existing dir fails" $P mkdir "$POOL" /a
expect_rc 0 "mv" $P mv "$POOL" /linux/$f /a/b/c/moved.h
check "moved file has its bytes" cmp <($P cat "$POOL" /a/b/c/moved.h) $SRC/$f
expect_rc 1 "cat of the old name fails" $P cat "$POOL" /linux/$f
$P cat "$POOL" /linux/$f 2>"$T/err"; contains "naming it" "$T/err" "/linux/$f"
expect_rc 1 "rm of a non-empty dir without -r fails" $P rm "$POOL" /a
expect_rc 0 "rm -r" $P rm -r "$POOL" /a
expect_rc 0 "rm -r a big tree" $P rm -r "$POOL" /linux
check "the pool is empty again" test -z "$($P ls "$POOL" /)"
$P info --json "$POOL" >"$T/info"
blocks=$(sed 's/.*"blocks":\([0-9]*\).*/\1/' "$T/info")
contains "and every block is free but the root's directory block and its copy" "$T/info" "\"blocks_free\":$((blocks - 2)),"
expect_rc 0 "fsck still clean" $P fsck "$POOL"

# damage: a dinode's checksum.  One copy: served and repaired from the
# replica.  Both copies: fsck finds it (exit 1) and names the inode.
printf hi >"$T/small"
$P put "$POOL" "$T/small" /victim
ino=$($P stat --json "$POOL" /victim | sed 's/.*"ino":\([0-9]*\).*/\1/')
itable=$(( (1 + 2 * $($P info --json "$POOL" | sed 's/.*"log_lanes":\([0-9]*\).*/\1/') * 4) * 4096 )) # two copies of the lanes
inodes=$($P info --json "$POOL" | sed 's/.*"inodes":\([0-9]*\).*/\1/')
replica=$(( $(stat -c %s "$POOL") - 4096 - inodes * 256 ))
printf '\x55' | dd of="$POOL" bs=1 seek=$((itable + (ino - 1) * 256 + 30)) conv=notrunc status=none
check "one damaged copy: the file still reads" cmp <($P cat "$POOL" /victim) "$T/small"
expect_rc 0 "and fsck is clean (repaired from the replica)" $P fsck "$POOL"
printf '\x55' | dd of="$POOL" bs=1 seek=$((itable + (ino - 1) * 256 + 30)) conv=notrunc status=none
printf '\x55' | dd of="$POOL" bs=1 seek=$((replica + (ino - 1) * 256 + 30)) conv=notrunc status=none
$P fsck "$POOL" >"$T/out" 2>&1; rc=$?
check "both copies damaged: fsck finds it (exit 1)" test $rc -eq 1
contains "and names the inode" "$T/out" "inode $ino: no copy passes its checksum"
expect_rc 0 "the rest of the pool still works" $P ls "$POOL" /

# media errors through the commands
rm -f "$POOL" "$POOL.badblocks"
$P mkfs --size 64M "$POOL"
head -c 20000 /dev/urandom >"$T/data"
$P put "$POOL" "$T/data" /data
expect_rc 0 "inject poison by file offset" $P badblocks inject "$POOL" --file /data --offset 5000
$P cat "$POOL" /data >"$T/out" 2>"$T/err"; rc=$?
check "cat of a damaged file fails" test $rc -eq 1
contains "naming file, file offset and pool sector" "$T/err" "/data: inode 3: Input/output error at file offset 4608 (pool sector"
check "after writing the good bytes before the damage" cmp -n 4608 "$T/out" "$T/data"
check "exactly those" test "$(stat -c %s "$T/out")" -eq 4608
expect_rc 1 "get fails the same way" $P get "$POOL" /data "$T/got"
expect_rc 0 "poise write repairs the sector by hand" sh -c "dd if='$T/data' bs=512 skip=9 count=1 status=none | $P write '$POOL' /data --offset 4608"
check "the file reads whole again" cmp <($P cat "$POOL" /data) "$T/data"
check "and the pool has no bad sector left" test -z "$($P badblocks list "$POOL")"
expect_rc 0 "a platform that cannot clear: inject" $P badblocks inject "$POOL" --file /data --offset 100 --length 2000
expect_rc 0 "a write still succeeds (remapped)" sh -c "head -c 4096 '$T/data' | POISE_NOCLEAR=1 $P write '$POOL' /data --offset 0"
check "the file reads whole" cmp <($P cat "$POOL" /data) "$T/data"
check "the bad sectors stay listed" test "$($P badblocks list "$POOL")" != ""
expect_rc 0 "fsck is clean (the block is quarantined)" $P fsck "$POOL"
$P badblocks inject "$POOL" --file /data --offset 12000 >/dev/null
$P scrub "$POOL" >"$T/scrub"; rc=$?
check "scrub exits 1 when a file is damaged" test $rc -eq 1
contains "scrub names the file and its bytes" "$T/scrub" "file /data, bytes 11776-12287"
$P scrub --json "$POOL" >"$T/scrub.json"
contains "scrub --json has the range" "$T/scrub.json" '"owner":"file","what":"file","path":"/data"'
contains "scrub --json has totals" "$T/scrub.json" '"totals":{"ranges":'
if command -v python3 >/dev/null; then check "scrub json parses" python3 -m json.tool "$T/scrub.json"; fi
head -c 20000 "$T/data" | $P write "$POOL" /data --offset 0
expect_rc 0 "scrub exits 0 once the file is rewritten" $P scrub "$POOL"
# metadata poison: one copy of the superblock, the root inode, a log lane
before=$($P badblocks list "$POOL")
for k in superblock inodes log; do
	expect_rc 0 "inject --metadata $k" $P badblocks inject "$POOL" --metadata $k
done
check "the pool mounts and the file reads whole" cmp <($P cat "$POOL" /data) "$T/data"
check "mount repaired all three" test "$($P badblocks list "$POOL")" = "$before"
expect_rc 0 "fsck clean after metadata poison" $P fsck "$POOL"
expect_rc 2 "inject --metadata of an unknown kind (a usage error)" $P badblocks inject "$POOL" --metadata bogus
# the root directory's block: its replica serves, and the primary is rewritten
before=$($P badblocks list "$POOL")
expect_rc 0 "inject --metadata dir" $P badblocks inject "$POOL" --metadata dir
expect_rc 0 "a poisoned root directory block: the pool still mounts" $P ls "$POOL" /
check "and the primary was rewritten (poison cleared)" test "$($P badblocks list "$POOL")" = "$before"
expect_rc 0 "fsck clean (both copies agree)" $P fsck "$POOL"
expect_rc 1 "inject into a hole is refused" $P badblocks inject "$POOL" --file /data --offset 1G
expect_rc 2 "write without --offset is a usage error" $P write "$POOL" /data

# bad input
expect_rc 1 "a pool that does not exist" $P ls "$T/none.img"
head -c 1M /dev/urandom >"$T/junk.img"
$P ls "$T/junk.img" 2>"$T/err"; rc=$?
check "a file that is not poise is refused" test $rc -eq 1
contains "with a clear message" "$T/err" "not a poise file system"
expect_rc 1 "fsck of a non-poise file exits 1" $P fsck "$T/junk.img"
expect_rc 2 "usage errors exit 2" $P ls
expect_rc 2 "unknown options exit 2" $P ls --bogus "$POOL"
for c in mkfs info fsck ls stat cat put get rm mkdir mv write scrub; do
	expect_rc 0 "--help for $c" $P $c --help
done
finish
