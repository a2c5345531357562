#!/usr/bin/env bash
# devdax.sh - inside the pmem VM (devdax mode, /dev/dax0.0): the device
# itself as a pool.  Geometry and alignment from sysfs; mkfs, put/get,
# fsck, the FUSE mount; real machine checks (MADV_HWPOISON) become EIO and
# the process lives.  Bad sectors on devdax come from the region's list
# (/sys/bus/nd/devices/region0/badblocks) minus the namespace's offset; the
# emulated NVDIMM has no writable list for it (only the fsdax block device's
# is), so they are covered by the fsdax suite and the sysfs unit tests.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=$PWD/build/poise
D=/dev/dax0.0
mkdir -p /fm
check "the devdax device exists" test -c $D
check "its alignment is in sysfs" test -r /sys/bus/dax/devices/dax0.0/align -o -r /sys/class/dax/dax0.0/align
expect_rc 0 "mkfs on the device" "$P" mkfs $D
"$P" info $D >/tmp/info 2>&1
contains "the devdax backend serves it" /tmp/info "(devdax)"
expect_rc 0 "put a tree" "$P" put $D /usr/share/doc/util-linux /doc
rm -rf /tmp/back
expect_rc 0 "get it back" "$P" get $D /doc /tmp/back
check "identical" diff -r /usr/share/doc/util-linux /tmp/back
expect_rc 0 "fsck" "$P" fsck $D
expect_rc 0 "poise mount" "$P" mount $D /fm
cp -a /usr/share/doc/util-linux /fm/copy
check "cp -a through the mount" diff -r /usr/share/doc/util-linux /fm/copy
shim_direct "devdax" /fm
expect_rc 0 "poise umount" "$P" umount /fm
"$P" badblocks inject $D 100 1 2>/tmp/err
contains "injection is refused on real devices, clearly" /tmp/err "emulated pool"
build/vm-hwpoison $D >/tmp/hw 2>&1
check "MADV_HWPOISON on devdax: EIO, the table learns it, the process lives, threads too" \
	grep -qE '^[0-9]+ passed, 0 failed' /tmp/hw
sed 's/^/    /' /tmp/hw | tail -8
expect_rc 0 "fsck at the end" "$P" fsck $D
finish
