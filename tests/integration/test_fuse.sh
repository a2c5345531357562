#!/usr/bin/env bash
# test_fuse.sh - the FUSE mount with real clients: fio with verification,
# sqlite3 across a remount, a real tree copied in with cp -a and tar and
# compared by bytes and metadata, git, a POSIX behaviour suite (permissions
# as a second unprivileged user with allow_other, sticky directories, hard
# links, renames, holes, O_APPEND from two writers, unlink of an open file),
# a stress run, media errors through the mount and its control channel, a
# read-only mount, odirect=block, and kill -9 of the daemon (nothing fsynced
# is lost).  Needs /dev/fuse and root (for the second user); says SKIP and
# fails otherwise, so a machine without FUSE never passes silently.
# Usage: test_fuse.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
mount_suite fuse "${1:-}"

expect_rc 0 "mkfs" "$P" mkfs --size 512M "$POOL"
expect_rc 0 "mount" "$P" mount -o allow_other "$POOL" "$M"
check "it is a fuse.poise mount" grep -q " $M fuse.poise " /proc/mounts
"$P" mount "$POOL" "$T" 2>"$T/err"
contains "a second mount is refused, naming the holder" "$T/err" "in use by pid"
DPID=$(sed -n 's/.*in use by pid \([0-9]*\).*/\1/p' "$T/err")
check "the daemon's pid is known" test -n "$DPID"

# ---- real clients ----
fio --verify_state_save=0 --name=rand --directory="$M" --rw=randwrite --bs=4k --size=16m --numjobs=4 --ioengine=psync \
	--verify=crc32c --do_verify=1 --group_reporting >"$T/fio1" 2>&1
check "fio: 4 jobs, random 4 KiB psync writes, crc32c verified" grep -q "err= 0" "$T/fio1"
fio --verify_state_save=0 --name=seq --directory="$M" --rw=write --bs=1m --size=32m --numjobs=2 --ioengine=psync \
	--verify=crc32c --do_verify=1 --group_reporting >"$T/fio2" 2>&1
check "fio: 2 jobs, sequential 1 MiB writes, crc32c verified" grep -q "err= 0" "$T/fio2"
rm -f "$M"/rand.* "$M"/seq.*

sql_inserts 10 >"$T/sql"
sqlite3 "$M/db.sqlite" <"$T/sql"
check "sqlite3: 5000 inserts in 10 transactions, integrity_check ok" \
	test "$(sqlite3 "$M/db.sqlite" 'pragma integrity_check; select count(*) from t;' | tr '\n' ' ')" = "ok 5000 "

SRC=/usr/include/linux
mkdir "$M/cp" "$M/tar"
cp -a "$SRC" "$M/cp/"
check "cp -a of $SRC: identical bytes" diff -r "$SRC" "$M/cp/linux"
# type, mode, mtime; size for files, target for links (directory sizes are the file system's own)
meta() { (cd "$1" && find . \( -type f -printf '%p f %m %s %T@\n' \) -o \( -type l -printf '%p l %l\n' \) \
	-o \( -type d -printf '%p d %m %T@\n' \) | sort); }
check "cp -a: identical metadata (type, mode, size, mtime, link targets)" cmp <(meta "$SRC") <(meta "$M/cp/linux")
tar -C /usr/include -cf - sound | tar -C "$M/tar" -xf -
check "tar: identical bytes" diff -r /usr/include/sound "$M/tar/sound"
check "tar: identical metadata" cmp <(meta /usr/include/sound) <(meta "$M/tar/sound")

# extended attributes: set, read, list, remove through the mount; kept by cp -a and tar --xattrs
mkdir "$T/xsrc" "$M/xtar"
echo data >"$T/xsrc/f"
setfattr -n user.color -v blue "$T/xsrc/f"
setfattr -n user.size -v large "$T/xsrc"
cp -a "$T/xsrc" "$M/xcp"
check "cp -a keeps user.* attributes" test "$(getfattr -n user.color --only-values "$M/xcp/f" 2>/dev/null)" = blue
check "on directories too" test "$(getfattr -n user.size --only-values "$M/xcp" 2>/dev/null)" = large
tar --xattrs -C "$T" -cf - xsrc | tar --xattrs --xattrs-include='user.*' -C "$M/xtar" -xf -
check "tar --xattrs keeps them" test "$(getfattr -n user.color --only-values "$M/xtar/xsrc/f" 2>/dev/null)" = blue
setfattr -n user.second -v 2 "$M/xcp/f"
check "listxattr names both" test "$(getfattr -d -m 'user\.' "$M/xcp/f" 2>/dev/null | grep -c '^user\.')" = 2
setfattr -x user.color "$M/xcp/f"
expect_rc 1 "a removed attribute is gone" getfattr -n user.color "$M/xcp/f"
expect_rc 1 "a non-owner cannot set one" $NOBODY setfattr -n user.x -v 1 "$M/xcp/f"

(cd "$M" && git init -q repo && cd repo && cp "$SRC"/*.h . && git add . &&
	git -c user.email=t@poise -c user.name=poise commit -qm first && echo change >>fs.h &&
	git -c user.email=t@poise -c user.name=poise commit -qam second) >"$T/git" 2>&1
check "git: init, two commits" test "$(cd "$M/repo" && git rev-list --count HEAD 2>/dev/null)" = 2
check "git fsck --full" sh -c "cd '$M/repo' && git fsck --full"

# ---- POSIX behaviour ----
echo secret >"$M/secret"
chmod 600 "$M/secret"
expect_rc 1 "a 0600 file is unreadable to another user" $NOBODY cat "$M/secret"
expect_rc 1 "a root 0755 directory refuses another user's create" $NOBODY touch "$M/intruder"
mkdir "$M/shared"
chmod 1777 "$M/shared"
expect_rc 0 "a sticky 1777 directory takes another user's file" $NOBODY sh -c "echo mine >'$M/shared/n'"
check "the new file belongs to its creator" test "$(stat -c %u:%g "$M/shared/n")" = 65534:65534
expect_rc 1 "sticky: a third user cannot remove it" $OTHER rm -f "$M/shared/n"
expect_rc 2 "nor overwrite it (0644): the shell's redirection fails" $OTHER sh -c "echo x >'$M/shared/n'"
expect_rc 0 "its owner can remove it" $NOBODY rm "$M/shared/n"
expect_rc 1 "chown by a non-owner is refused" $NOBODY chown 65534 "$M/secret"
expect_rc 0 "chown by root" chown 65533:65533 "$M/secret"
check "chown took" test "$(stat -c %u:%g "$M/secret")" = 65533:65533
expect_rc 0 "and the new owner can read it" $OTHER cat "$M/secret"

echo a >"$M/h1"
ln "$M/h1" "$M/h2"
check "hard link: 2 links" test "$(stat -c %h "$M/h1")" = 2
rm "$M/h1"
check "after unlink: 1 link, content kept" test "$(stat -c %h "$M/h2"):$(cat "$M/h2")" = "1:a"
mkdir -p "$M/r/a/b" "$M/r/full"
touch "$M/r/full/x" "$M/r/f1" "$M/r/f2"
echo one >"$M/r/f1"
mv "$M/r/f1" "$M/r/f2"
check "rename over a file replaces it" test "$(cat "$M/r/f2")" = one -a ! -e "$M/r/f1"
expect_rc 1 "rename a directory into itself fails" mv "$M/r/a" "$M/r/a/b/"
expect_rc 1 "rename a directory over a non-empty one fails" python3 -c "import os; os.rename('$M/r/a', '$M/r/full')"
check "rename of a directory updates .." test "$(mv "$M/r/a/b" "$M/r/b" && cd "$M/r/b/.." && pwd -P)" = "$M/r"

truncate -s 1M "$M/holes"
printf X | dd of="$M/holes" bs=1 seek=524288 conv=notrunc status=none
check "holes read as zeros around the data" cmp <(head -c 524288 /dev/zero; printf X; head -c 524287 /dev/zero) "$M/holes"
check "a sparse file takes few blocks" test "$(stat -c %b "$M/holes")" -lt 64

: >"$M/applog"
(for i in $(seq 1 400); do echo "A $i" >>"$M/applog"; done) &
(for i in $(seq 1 400); do echo "B $i" >>"$M/applog"; done) &
wait
check "O_APPEND from two writers: 800 intact lines" test "$(grep -cE '^(A|B) [0-9]+$' "$M/applog"):$(wc -l <"$M/applog")" = 800:800

echo still-here >"$M/open-unlinked"
exec 3<"$M/open-unlinked"
rm "$M/open-unlinked"
check "an unlinked open file stays readable" test "$(cat <&3)" = still-here
exec 3<&-

# ---- stress: writers, readers and namespace churn at once, then fsck ----
for w in 1 2 3; do
	(for i in $(seq 1 150); do head -c $((i * 97)) /dev/urandom >"$M/s$w.$((i % 7))"; done) &
done
for r in 1 2; do (for i in $(seq 1 200); do cat "$M"/s*.* >/dev/null 2>&1; done) & done
(for i in $(seq 1 100); do mkdir -p "$M/churn/$i/x" && mv "$M/churn/$i" "$M/churn/m$i" && rm -r "$M/churn/m$i"; done) &
wait
check "stress: the namespace is consistent" test -z "$(ls "$M/churn")"

# ---- media errors through the mount ----
head -c 65536 /dev/urandom >"$T/ref"
cp "$T/ref" "$M/victim"
expect_rc 0 "inject poison under a mounted file (control channel)" "$P" badblocks inject "$POOL" --file /victim --offset 5000
cat "$M/victim" >"$T/got" 2>"$T/caterr"
contains "a read reaching it fails with EIO" "$T/caterr" "Input/output error"
# through the page cache (a buffered open): the pages before the bad one
check "buffered: exactly the pages before the bad one arrived" cmp "$T/got" <(head -c 4096 "$T/ref")
check "buffered: the file's size is unchanged (no short read taken for its end)" \
	test "$(stat -c %s "$M/victim")" = 65536
check "buffered: the rest of the file reads" cmp <(tail -c +8193 "$M/victim") <(tail -c +8193 "$T/ref")
# O_DIRECT: the exact prefix, to the sector
dd if="$M/victim" of="$T/got" bs=64k iflag=direct status=none 2>/dev/null
check "O_DIRECT: exactly the bytes before the bad sector arrived" cmp "$T/got" <(head -c 4608 "$T/ref")
check "O_DIRECT: and the size is still unchanged" test "$(stat -c %s "$M/victim")" = 65536
dd if="$M/victim" of="$T/got" bs=512 skip=10 iflag=direct status=none 2>/dev/null
check "O_DIRECT: the rest of the file reads, from the next sector" cmp "$T/got" <(tail -c +5121 "$T/ref")
"$P" scrub "$POOL" >"$T/scrub"
contains "scrub while mounted names the file" "$T/scrub" "/victim, bytes 4608-5119"
"$P" badblocks list "$POOL" >"$T/bb"
check "badblocks list while mounted" test -s "$T/bb"
check "mkfs made the pool its owner's alone (0600)" test "$(stat -c %a "$POOL")" = 600
expect_rc 1 "another user cannot even open it" $NOBODY "$P" badblocks list "$POOL"
chmod 644 "$POOL" # readable by all: the daemon itself must refuse them
expect_rc 1 "another user is refused by the control channel" $NOBODY "$P" badblocks list "$POOL"
$NOBODY "$P" badblocks list "$POOL" 2>"$T/err"
contains "with a clear message" "$T/err" "only the pool's owner or root"
chmod 600 "$POOL"
dd if="$T/ref" of="$M/victim" bs=512 skip=9 seek=9 count=1 conv=notrunc status=none
check "a write over the damage clears it" cmp "$M/victim" "$T/ref"
check "and the table is empty again" test -z "$("$P" badblocks list "$POOL")"

# ---- kill -9: nothing fsynced is lost ----
head -c 300000 /dev/urandom >"$T/durable"
dd if="$T/durable" of="$M/durable" bs=64k conv=fsync status=none
kill -9 "$DPID"
sleep 0.2
umount -l "$M" 2>/dev/null || fusermount3 -uz "$M"
expect_rc 0 "after kill -9, fsck (log replay) is clean" "$P" fsck "$POOL"
expect_rc 0 "remount" "$P" mount "$POOL" "$M"
check "the fsynced file is whole" cmp "$M/durable" "$T/durable"
check "the database still checks" test "$(sqlite3 "$M/db.sqlite" 'pragma integrity_check; select count(*) from t;' | tr '\n' ' ')" = "ok 5000 "
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "clean unmount: fsck clean" "$P" fsck "$POOL"

# ---- read-only, and odirect=block ----
expect_rc 0 "mount -o ro" "$P" mount -o ro "$POOL" "$M"
expect_rc 2 "writes fail on a read-only mount (the shell's redirection)" sh -c "echo x >'$M/new'"
check "reads work" cmp "$M/durable" "$T/durable"
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "mount -o odirect=block" "$P" mount -o odirect=block "$POOL" "$M"
dd if="$T/durable" of="$M/direct" bs=4096 count=16 oflag=direct status=none
check "O_DIRECT writes on the block path" cmp <(head -c 65536 "$T/durable") "$M/direct"
expect_rc 0 "umount" "$P" umount "$M"
# ---- read replies: from the pool mapping (reply=map, the default) or copied ----
for mode in map copy; do
	expect_rc 0 "mount -o cache=none,reply=$mode" "$P" mount -o cache=none,reply=$mode "$POOL" "$M"
	check "reply=$mode: a 300000-byte file reads back (every read reaches the daemon)" cmp "$M/durable" "$T/durable"
	check "reply=$mode: holes read as zeros, the end of the file ends the read" \
		cmp <(head -c 524288 /dev/zero; printf X; head -c 524287 /dev/zero) "$M/holes"
	check "reply=$mode: O_DIRECT 1 MiB reads too" \
		cmp <(dd if="$M/durable" bs=1M iflag=direct status=none) "$T/durable"
	# reads that race the file's release (the kernel may send it as soon as
	# it has a reply): a daemon that kept a lock past it would hang here
	check "reply=$mode: 8 readers opening and closing the file 100 times each, no hang" timeout 60 sh -c \
		"for r in 1 2 3 4 5 6 7 8; do (for i in \$(seq 1 100); do cat '$M/durable' >/dev/null || exit 1; done) & done; wait"
	expect_rc 0 "umount" "$P" umount "$M"
done
expect_rc 2 "mount: reply takes map or copy" "$P" mount -o reply=nope "$POOL" "$M"
expect_rc 2 "mount: bad option value" "$P" mount -o odirect=nope "$POOL" "$M"
expect_rc 1 "mount: a missing pool" "$P" mount "$T/nope.img" "$M"
expect_rc 1 "umount of something else" "$P" umount "$T"
expect_rc 0 "final fsck" "$P" fsck "$POOL"
finish
