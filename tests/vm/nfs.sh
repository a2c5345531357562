#!/usr/bin/env bash
# nfs.sh - inside the pmem VM: a poise mount exported by the kernel's NFS
# server (nfs-kernel-server in the image) and mounted back over loopback
# with NFSv3 and NFSv4.2.  A tree written through NFS reads back through
# the mount and the reverse; permissions hold for a second user; a
# poisoned sector is EIO to the NFS client; file handles stay valid across
# a restart of the NFS server and a remount of the pool (stable inode
# number and generation pairs, lookups of "." and "..").
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=$PWD/build/poise
POOL=/tmp/nfs-pool.img
M=/export/poise
mkdir -p "$M" /nfs3 /nfs4
ip link set lo up 2>/dev/null
modprobe nfsd 2>/dev/null
mount -t nfsd nfsd /proc/fs/nfsd 2>/dev/null
mkdir -p /var/lib/nfs/rpc_pipefs /run/rpcbind
mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs 2>/dev/null
rpcbind -w 2>/dev/null || rpcbind
expect_rc 0 "mkfs" "$P" mkfs --size 256M "$POOL"
expect_rc 0 "mount -o allow_other (nfsd acts as its clients' users)" "$P" mount -o allow_other "$POOL" "$M"
echo "$M 127.0.0.1(rw,sync,no_subtree_check,no_root_squash,fsid=7701)" >/etc/exports
start_nfsd() {
	exportfs -ra && rpc.nfsd 4 && rpc.mountd
}
stop_nfsd() {
	rpc.nfsd 0; pkill rpc.mountd; exportfs -ua; exportfs -f
}
check "the kernel NFS server exports the poise mount" start_nfsd
check "exportfs lists it" sh -c "exportfs -v | grep -q '$M'"
check "NFSv3 mount over loopback" mount -t nfs -o vers=3,nolock,hard,timeo=50 127.0.0.1:"$M" /nfs3
check "NFSv4.2 mount over loopback" mount -t nfs -o vers=4.2,hard,timeo=50 127.0.0.1:"$M" /nfs4

# a tree through NFS, back through the mount, and the reverse
for v in 3 4; do
	cp -a /usr/share/doc/util-linux "/nfs$v/tree$v"
	check "v$v: a tree written through NFS reads back through the mount" \
		diff -r /usr/share/doc/util-linux "$M/tree$v"
done
cp -a /usr/share/doc/fio "$M/from-mount"
check "v3: a tree written through the mount reads through NFS" diff -r /usr/share/doc/fio /nfs3/from-mount
check "v4: the same" diff -r /usr/share/doc/fio /nfs4/from-mount
mkdir /nfs3/d1 && mkdir /nfs3/d1/d2 && echo deep >/nfs3/d1/d2/f
check "v3: mkdir, nested create, rename" mv /nfs3/d1/d2 /nfs3/moved
check "and the mount agrees" test "$(cat "$M/moved/f")" = deep
check "v4: .. of a moved directory" test "$(cd /nfs4/moved/.. && pwd)" = /nfs4
check "v3: ls -i gives the mount's inode numbers" \
	test "$(stat -c %i /nfs3/moved/f)" = "$(stat -c %i "$M/moved/f")"

# permissions: a second user, through the server's checks and the mount's
echo private >"$M/private"
chown 65533:65533 "$M/private"
chmod 600 "$M/private"
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
for v in 3 4; do
	check "v$v: a 0600 file of another user is refused" sh -c "! $NOBODY cat /nfs$v/private 2>/dev/null"
done
check "its owner reads it" test "$(setpriv --reuid=65533 --regid=65533 --clear-groups cat /nfs3/private)" = private

# a poisoned sector: EIO to the NFS client
head -c 65536 /dev/urandom >/tmp/ref
cp /tmp/ref "$M/victim"
expect_rc 0 "poison under a file (control channel)" "$P" badblocks inject "$POOL" --file /victim --offset 20000
for v in 3 4; do
	dd if="/nfs$v/victim" of=/tmp/got bs=64k iflag=direct status=none 2>/tmp/err
	contains "v$v: a read of the poisoned range is EIO to the NFS client" /tmp/err "Input/output error"
	dd if="/nfs$v/victim" of=/tmp/got bs=4096 skip=8 iflag=direct status=none 2>/dev/null
	check "v$v: the pages after it read" cmp /tmp/got <(tail -c +32769 /tmp/ref)
done

# file handles across a restart of the server and a remount of the pool
echo "before the remount" >"$M/handle"
exec 7<"/nfs3/handle"
check "v3: an open file through NFS" test "$(head -c 6 <&7)" = before
stop_nfsd
expect_rc 0 "the pool unmounts with the NFS client still mounted" "$P" umount "$M"
expect_rc 0 "fsck between" "$P" fsck "$POOL"
expect_rc 0 "and mounts again" "$P" mount -o allow_other "$POOL" "$M"
check "the server starts again" start_nfsd
check "v3: the open file's handle still names it (stable inode number and generation)" \
	test "$(python3 -c 'import os; print(os.pread(7, 18, 0).decode())')" = "before the remount"
check "v3: paths resolve again" test "$(cat /nfs3/moved/f)" = deep
check "v4: and through v4" test "$(cat /nfs4/moved/f)" = deep
exec 7<&-
rm "$M/handle"
check "a handle of a removed file is stale, not another file's" \
	sh -c "! cat /nfs3/handle 2>/dev/null"
umount /nfs3 /nfs4
stop_nfsd
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "fsck after NFS" "$P" fsck "$POOL"
finish
