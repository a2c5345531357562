#!/usr/bin/env bash
# test_posix.sh - the rest of POSIX on the mount: every file type (a FIFO
# with a writer and a reader, a unix socket server bound inside the mount,
# character and block devices by root) through the mount, tar and poise
# put/get; shared mmap (two processes writing one mapping, read() by a
# third; sqlite3 in WAL mode written by two processes at once; LMDB's
# mdb_load/mdb_dump; fio with ioengine=mmap and crc32c); poison under the
# page cache (EIO, the size unchanged, SIGBUS for a mapped page) and after
# an injection through the control channel (no stale page); POSIX ACLs
# (round trip, enforcement as a second user, default inheritance); fcntl,
# OFD and flock locks between processes; relatime, noatime, strictatime.
# Needs /dev/fuse and root; says SKIP and fails otherwise.
# Usage: test_posix.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
mount_suite posix "${1:-}"

expect_rc 0 "mkfs" "$P" mkfs --size 256M "$POOL"
expect_rc 0 "mount" "$P" mount -o allow_other "$POOL" "$M"

# ---- every file type ----
mkfifo "$M/fifo"
check "mkfifo makes a FIFO" test -p "$M/fifo"
(echo "through the fifo" >"$M/fifo") &
check "a writer and a reader meet in it" test "$(timeout 10 cat "$M/fifo")" = "through the fifo"
wait
cat >"$T/sock.py" <<'EOF'
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(1)
if os.fork() == 0:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    c.sendall(b"ping")
    os._exit(0)
a, _ = s.accept()
print(a.recv(4).decode())
EOF
check "a unix socket server bound inside the mount, and a client" \
	test "$(timeout 10 python3 "$T/sock.py" "$M/srv.sock")" = ping
check "the socket is a socket" test -S "$M/srv.sock"
mknod "$M/null" c 1 3
mknod "$M/loop" b 7 200
check "mknod c 1 3 keeps its numbers" test "$(stat -c '%F %t %T' "$M/null")" = "character special file 1 3"
check "mknod b 7 200 keeps its numbers" test "$(stat -c '%F %t %T' "$M/loop")" = "block special file 7 c8"
check "no data behind a device on a nodev mount" sh -c "! echo x >'$M/null' 2>/dev/null"
mkdir -m 1777 "$M/pub"
$NOBODY mknod "$M/pub/nope" c 1 3 2>"$T/err"
contains "a device by a user is refused (the kernel checks CAP_MKNOD)" "$T/err" "Operation not permitted"
ls -l "$M" >"$T/ls"
contains "ls -l shows a FIFO" "$T/ls" "prw-r--r--"
check "ls -l shows a device's numbers" grep -qE "^crw.* 1, +3 " "$T/ls"

# a tree holding every type, through tar into and out of the mount and
# through poise put/get; compared by type, mode and device numbers
S=$T/tree
mkdir -p "$S/sub"
echo data >"$S/file"
ln -s file "$S/link"
mkfifo -m 0640 "$S/sub/fifo"
mknod -m 0600 "$S/sub/zero" c 1 5
mknod -m 0660 "$S/sub/blk" b 7 3
python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$S/sub/sock"
meta() { (cd "$1" && find . -mindepth 1 ! -name sock -printf '%p %y %m\n' | sort;
	find . -type c -o -type b | sort | xargs -r stat -c '%n %t %T'); }
mkdir "$M/tar"
tar -C "$T" -cf - tree | tar -C "$M/tar" -xpf -
check "tar into the mount: the types, modes and device numbers" cmp <(meta "$S") <(meta "$M/tar/tree")
mkdir "$T/back"
tar -C "$M/tar" -cf - tree | tar -C "$T/back" -xpf -
check "tar out of the mount: the same" cmp <(meta "$S") <(meta "$T/back/tree")
check "and the file's bytes" cmp "$S/file" "$T/back/tree/file"
"$P" mkfs --size 16M "$T/put.img" >/dev/null
expect_rc 0 "poise put of the tree" "$P" put "$T/put.img" "$S" /tree
"$P" ls -l "$T/put.img" /tree/sub >"$T/ls"
contains "poise ls -l shows the FIFO" "$T/ls" "prw-r-----"
contains "poise ls -l shows the device's numbers" "$T/ls" "1, 5"
contains "poise ls -l shows the socket" "$T/ls" "srwxr-xr-x"
check "poise stat names the type" test "$("$P" stat --json "$T/put.img" /tree/sub/blk |
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["type"], d["rdev_major"], d["rdev_minor"])')" = "block device 7 3"
expect_rc 0 "poise get of the tree (devices asked for)" "$P" get --devices "$T/put.img" /tree "$T/got"
"$P" get "$T/put.img" /tree "$T/got2" 2>"$T/err"
contains "without --devices, get skips device nodes and says so" "$T/err" "a device node, skipped"
check "(and made none)" test ! -e "$T/got2/sub/zero" -a -p "$T/got2/sub/fifo"
check "put then get: the types, modes and device numbers" cmp <(meta "$S") <(meta "$T/got")
check "and the socket" test -S "$T/got/sub/sock"
expect_rc 0 "fsck of a pool with every type" "$P" fsck "$T/put.img"
"$P" fsck "$T/put.img" >"$T/fsck"
contains "fsck counts them" "$T/fsck" "4 fifos, sockets or devices"

# ---- shared mmap ----
cat >"$T/map.py" <<'EOF'
import mmap, os, sys
path, who = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDWR)
m = mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED)
for i in range(who, 256, 2):          # two writers, interleaved pages
    m[i * 4096:(i + 1) * 4096] = bytes([i]) * 4096
m.flush()                              # msync
EOF
truncate -s 1M "$M/shared"
python3 "$T/map.py" "$M/shared" 0 & python3 "$T/map.py" "$M/shared" 1 & wait
python3 - "$M/shared" >"$T/mapcheck" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
bad = [i for i in range(256) if os.pread(fd, 4096, i * 4096) != bytes([i]) * 4096]
print("bad pages", bad)
EOF
contains "two processes writing one MAP_SHARED file: read() by a third agrees" "$T/mapcheck" "bad pages []"
cat >"$T/coherent.py" <<'EOF'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096, mmap.MAP_SHARED)
os.pwrite(os.open(sys.argv[1], os.O_WRONLY), b"written", 0)  # write() by another descriptor
print(m[0:7].decode())
m[0:6] = b"mapped"
print(os.pread(os.open(sys.argv[1], os.O_RDONLY), 6, 0).decode())  # before any msync
EOF
check "write() shows in a map, a map's store shows to read()" \
	test "$(python3 "$T/coherent.py" "$M/shared" | tr '\n' ' ')" = "written mapped "
cat >"$T/direct.py" <<'EOF'
import mmap, os, sys
p = sys.argv[1]
b = os.open(p, os.O_RDWR | os.O_CREAT)
os.pwrite(b, b"A" * 8192, 0)
os.pread(b, 8192, 0)                    # its pages cached
d = os.open(p, os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
buf[:] = b"D" * 4096
os.pwritev(d, [buf], 4096)              # past the page cache
print(os.pread(b, 1, 4096).decode(), end=" ")   # buffered: the new byte
os.pwrite(b, b"B", 0)
os.preadv(d, [buf], 0)
print(buf[0:1].decode())                # O_DIRECT: the buffered write
EOF
check "O_DIRECT and buffered opens of one file agree both ways" \
	test "$(python3 "$T/direct.py" "$M/direct")" = "D B"
dd if=/dev/urandom of="$T/mref" bs=64k count=4 status=none
cp "$T/mref" "$M/mfile"
python3 -c "
import mmap,os,sys
fd=os.open(sys.argv[1],os.O_RDWR); m=mmap.mmap(fd,262144,mmap.MAP_SHARED)
m[100:105]=b'HELLO'; m.flush(); os.fsync(fd)" "$M/mfile"
printf 'HELLO' | dd of="$T/mref" bs=1 seek=100 conv=notrunc status=none
expect_rc 0 "umount after msync" "$P" umount "$M"
expect_rc 0 "mount again" "$P" mount -o allow_other "$POOL" "$M"
check "msync made the mapped store durable (after a remount)" cmp "$M/mfile" "$T/mref"

# sqlite3 in WAL mode, two processes writing at once
sqlite3 "$M/wal.db" 'pragma journal_mode=wal; create table t(w int, i int);' >/dev/null
for w in 1 2; do
	(for i in $(seq 1 100); do echo "insert into t values($w,$i);"; done |
		sqlite3 -cmd '.timeout 20000' "$M/wal.db") &
done
wait
check "sqlite3 WAL, two writers at once: integrity_check ok and all 200 rows" \
	test "$(sqlite3 "$M/wal.db" 'pragma integrity_check; select count(*) from t;' | tr '\n' ' ')" = "ok 200 "
check "(the database is in WAL mode)" test "$(sqlite3 "$M/wal.db" 'pragma journal_mode;')" = wal

# LMDB (its map is MAP_SHARED, written through the map when asked)
python3 -c "
print('VERSION=3'); print('format=print'); print('type=btree'); print('HEADER=END')
for i in range(2000): print(' key%05d' % i); print(' value-%d' % (i * i))
print('DATA=END')" >"$T/lmdb.txt"
mkdir "$M/lmdb"
mdb_load -f "$T/lmdb.txt" "$M/lmdb" 2>"$T/err"
check "mdb_load into the mount" test -s "$M/lmdb/data.mdb"
mdb_dump -p "$M/lmdb" >"$T/lmdb.out" 2>>"$T/err"
check "mdb_dump gives back what mdb_load got" cmp <(grep '^ ' "$T/lmdb.txt") <(grep '^ ' "$T/lmdb.out")

fio --verify_state_save=0 --name=mm --directory="$M" --rw=randwrite --bs=4k --size=8m --ioengine=mmap \
	--verify=crc32c --do_verify=1 >"$T/fio" 2>&1
check "fio ioengine=mmap, crc32c verified" grep -q "err= 0" "$T/fio"
rm -f "$M"/mm.*

# ---- poison under the page cache ----
head -c 65536 /dev/urandom >"$T/ref"
cp "$T/ref" "$M/victim"
cat "$M/victim" >/dev/null # its pages cached
expect_rc 0 "inject poison under a file whose pages are cached" "$P" badblocks inject "$POOL" --file /victim --offset 20000
cat "$M/victim" >"$T/vgot" 2>"$T/err"
contains "the cached pages were dropped: the read meets the poison (EIO)" "$T/err" "Input/output error"
check "the pages before it read" cmp "$T/vgot" <(head -c 16384 "$T/ref")
check "the size is unchanged" test "$(stat -c %s "$M/victim")" = 65536
check "the rest reads" cmp <(tail -c +20481 "$M/victim") <(tail -c +20481 "$T/ref")
cat >"$T/sigbus.py" <<'EOF'
import mmap, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 65536, mmap.MAP_SHARED, mmap.PROT_READ)
print("before", m[0:4] == open(sys.argv[2], "rb").read(4), flush=True)
m[16384 + 100]   # the poisoned page
print("no signal")
EOF
python3 "$T/sigbus.py" "$M/victim" "$T/ref" >"$T/out" 2>&1
check "a mapped page over poison raises SIGBUS (exit 135)" test $? -ne 0 -a -n "$(grep -x 'before True' "$T/out")"
check "(and not a silent read)" test -z "$(grep 'no signal' "$T/out")"
head -c 4096 /dev/urandom >"$T/patch"
dd if="$T/patch" of="$M/victim" bs=4096 seek=4 conv=notrunc status=none
check "a buffered write over the bad page clears it" cmp <(dd if="$M/victim" bs=4096 skip=4 count=1 status=none) "$T/patch"

# ---- POSIX ACLs ----
mkdir "$M/acl"
echo secret >"$M/acl/f"
chmod 600 "$M/acl/f"
check "a second user cannot read a 0600 file" sh -c "! $NOBODY cat '$M/acl/f' 2>/dev/null"
setfacl -m u:65534:r "$M/acl/f"
check "setfacl -m u:nobody:r lets that user read it" test "$($NOBODY cat "$M/acl/f")" = secret
check "and no other user" sh -c "! $OTHER cat '$M/acl/f' 2>/dev/null"
getfacl -p "$M/acl/f" >"$T/acl" 2>/dev/null
contains "getfacl reads it back" "$T/acl" "user:nobody:r--"
check "ls -l marks the ACL (+) and shows the mask as group" test "$(stat -c %A "$M/acl/f")" = "-rw-r-----"
chmod 600 "$M/acl/f"
check "chmod g-rwx masks the named entry too" sh -c "! $NOBODY cat '$M/acl/f' 2>/dev/null"
setfacl -b "$M/acl/f"
getfacl -p "$M/acl/f" >"$T/acl" 2>/dev/null
check "setfacl -b removes it" sh -c "! grep -q nobody '$T/acl'"
setfacl -d -m u:65534:rwx,m::rwx "$M/acl"
setfacl -m u:65534:rwx "$M/acl"
(umask 077; echo inherited >"$M/acl/new"; mkdir "$M/acl/sub")
getfacl -p "$M/acl/new" >"$T/acl" 2>/dev/null
contains "a new file inherits the default ACL" "$T/acl" "user:nobody:rwx"
check "(the umask does not apply under a default ACL)" test "$($NOBODY cat "$M/acl/new")" = inherited
getfacl -p "$M/acl/sub" >"$T/acl" 2>/dev/null
contains "a new directory inherits it as its own default" "$T/acl" "default:user:nobody:rwx"
$NOBODY sh -c "echo by-nobody >'$M/acl/sub/n'"
check "the named user writes in the inherited directory" test "$(cat "$M/acl/sub/n")" = by-nobody
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "fsck with ACLs" "$P" fsck "$POOL"
expect_rc 0 "mount again" "$P" mount -o allow_other "$POOL" "$M"
check "ACLs survive a remount (enforced again)" test "$($NOBODY cat "$M/acl/new")" = inherited

# ---- locks between processes ----
echo data >"$M/lockme"
cat >"$T/locks.py" <<'EOF'
import fcntl, os, struct, subprocess, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)             # POSIX record lock, bytes 0-9
child = r'''
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
def try_(f):
    try: f(); return "ok"
    except OSError as e: return "busy" if e.errno in (11, 13) else str(e)
print(try_(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)),
      try_(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 20)),
      try_(lambda: fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 5, 0))),  # F_OFD_SETLK
      try_(lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)))
'''
print(subprocess.run([sys.executable, "-c", child, p], capture_output=True, text=True).stdout.strip())
fcntl.flock(fd, fcntl.LOCK_EX)
print(subprocess.run([sys.executable, "-c", child, p], capture_output=True, text=True).stdout.strip().split()[-1])
EOF
python3 "$T/locks.py" "$M/lockme" >"$T/locks"
check "fcntl: a conflicting range is busy, another is free; OFD conflicts with POSIX; flock is apart" \
	test "$(head -1 "$T/locks")" = "busy ok busy ok"
check "flock: a second process's LOCK_NB is busy" test "$(tail -1 "$T/locks")" = busy
check "flock(1) waits for the holder" sh -c "flock -w 5 '$M/lockme' true"

# ---- access times ----
atime() { stat -c %X "$1"; }
echo x >"$M/at"
touch -a -d @1000000000 "$M/at"
cat "$M/at" >/dev/null
check "relatime (default): a read after an older atime updates it" test "$(atime "$M/at")" -gt 1000000000
a=$(atime "$M/at")
sleep 1.1
cat "$M/at" >/dev/null
check "relatime: a second read soon after leaves it" test "$(atime "$M/at")" = "$a"
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "mount -o strictatime" "$P" mount -o strictatime "$POOL" "$M"
cat "$M/at" >/dev/null
a=$(atime "$M/at")
sleep 1.1
cat "$M/at" >/dev/null
check "strictatime: every read updates it" test "$(atime "$M/at")" -gt "$a"
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "mount -o noatime" "$P" mount -o noatime "$POOL" "$M"
check "noatime is in the mount table" grep -q " $M fuse.poise [^ ]*noatime" /proc/mounts
touch -a -d @1000000000 "$M/at"
cat "$M/at" >/dev/null
check "noatime: a read never updates it" test "$(atime "$M/at")" = 1000000000
expect_rc 0 "umount" "$P" umount "$M"
expect_rc 0 "final fsck" "$P" fsck "$POOL"
expect_rc 2 "mount: bad cache value" "$P" mount -o cache=maybe "$POOL" "$M"
finish
