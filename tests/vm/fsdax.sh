#!/usr/bin/env bash
# fsdax.sh [ext4|xfs] - inside the pmem VM (fsdax mode, /dev/pmem0): poise
# pools as files on ext4-DAX or on xfs-DAX.  The fsdax backend (MAP_SYNC), the file
# system, the FUSE mount and fsck there; real bad sectors from the pmem
# device's sysfs list, mapped through the pool file's extents, read as EIO
# at the exact file offset and cleared by a write (the block moves, as the
# kernel cannot clear from user space); real machine checks
# (MADV_HWPOISON) through build/vm-hwpoison.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=$PWD/build/poise
BB=/sys/block/pmem0/badblocks
mkdir -p /fm

# FS: ext4 or xfs (one per VM boot: bad sectors and poisoned pages stay for
# the VM's life)
for fs in ${1:-ext4}; do
	umount /mnt 2>/dev/null
	if [ $fs = ext4 ]; then mkfs.ext4 -q -F /dev/pmem0 && mount -o dax /dev/pmem0 /mnt
	else mkfs.xfs -q -f /dev/pmem0 && mount -o dax=always /dev/pmem0 /mnt; fi
	check "$fs: mounted with DAX" grep -q "/mnt $fs .*dax" /proc/mounts
	expect_rc 0 "$fs: pool create" "$P" pool create /mnt/pool --size 300M
	expect_rc 0 "$fs: mkfs" "$P" mkfs /mnt/pool
	"$P" info /mnt/pool >/tmp/info 2>&1
	contains "$fs: the fsdax backend serves it" /tmp/info "(fsdax)"
	check "$fs: mapped with MAP_SYNC (no fallback warning)" sh -c "! grep -q 'MAP_SYNC' /tmp/info"
	expect_rc 0 "$fs: put a tree" "$P" put /mnt/pool /usr/share/doc/util-linux /doc
	rm -rf /tmp/back
	expect_rc 0 "$fs: get it back" "$P" get /mnt/pool /doc /tmp/back
	check "$fs: identical" diff -r /usr/share/doc/util-linux /tmp/back
	expect_rc 0 "$fs: fsck" "$P" fsck /mnt/pool

	# a real bad sector under byte 4608 of a file in the pool
	head -c 65536 /dev/urandom >/tmp/ref
	"$P" put /mnt/pool /tmp/ref /victim
	read -r foff poff _ < <("$P" map /mnt/pool /victim)
	dev=$(python3 tests/vm/fiemap.py /mnt/pool $((poff + 4608 - foff)))
	echo "$((dev / 512)) 1" >"$BB"
	check "$fs: the kernel lists the sector" grep -q "^$((dev / 512)) 1" "$BB"
	"$P" badblocks list /mnt/pool >/tmp/bb
	check "$fs: poise maps it to the pool sector" grep -q "^$(((poff + 4608 - foff) / 512)) 1" /tmp/bb
	"$P" cat /mnt/pool /victim >/tmp/got 2>/tmp/err
	contains "$fs: cat fails naming the file offset" /tmp/err "file offset 4608"
	check "$fs: after exactly the good bytes" cmp /tmp/got <(head -c 4608 /tmp/ref)
	dd if=/tmp/ref bs=512 skip=9 count=1 status=none | "$P" write /mnt/pool /victim --offset 4608
	check "$fs: a write over it succeeds and the file reads whole" cmp <("$P" cat /mnt/pool /victim) /tmp/ref
	expect_rc 0 "$fs: fsck after the repair" "$P" fsck /mnt/pool

	# the FUSE mount on an fsdax pool
	expect_rc 0 "$fs: poise mount" "$P" mount /mnt/pool /fm
	cp -a /usr/share/doc/util-linux /fm/copy
	check "$fs: cp -a through the mount" diff -r /usr/share/doc/util-linux /fm/copy
	shim_direct "$fs" /fm
	check "$fs: sqlite3 through the mount" test "$(sqlite3 /fm/t.db 'create table t(a); insert into t values(1),(2); pragma integrity_check; select count(*) from t;' | tr '\n' ' ')" = "ok 2 "
	expect_rc 0 "$fs: poise umount" "$P" umount /fm
	expect_rc 0 "$fs: fsck after the mount" "$P" fsck /mnt/pool

	# real machine checks in the pool's mapping
	build/vm-hwpoison /mnt/pool >/tmp/hw 2>&1
	check "$fs: MADV_HWPOISON: EIO, the table learns it, the process lives, threads too" \
		grep -qE '^[0-9]+ passed, 0 failed' /tmp/hw
	sed 's/^/    /' /tmp/hw | tail -8
	umount /mnt
done
finish
