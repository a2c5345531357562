#!/usr/bin/env bash
# test_security.sh - the trust boundaries of docs/SECURITY.md, tried as an
# attacker and as a careless user would, with two unprivileged users (OWNER
# owns the pools, STRANGER does not):
#   - the control channel: a request carrying a host path, raw text or a
#     bad field reaches nothing; a stranger cannot squat the socket, answer
#     in the daemon's place, or wedge it with half a request; -o ro refuses
#     inject and clear;
#   - pool files: made 0600, a readable one warned about, the bad-sector
#     list found through a symlink and a hard link;
#   - set-id bits: cleared by a stranger's write or truncate, kept by
#     root's; set-group-ID directories;
#   - a pool path with commas adds no mount option;
#   - the shim: POISE_PATH over the pool file itself, and a set-group-ID
#     program ignoring POISE_* (through /etc/ld.so.preload, in a private
#     mount namespace);
#   - argument checks of mkfs and inject, ls of a name with a newline, and a
#     daemon that exits 0 after umount (no leak under ASan).
# Needs root, /dev/fuse and fusermount3; says FAIL otherwise.
# Usage: test_security.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=$(realpath "${1:-build/poise}")
PRE=$(realpath build/libpoise-preload.so) # the release shim: an ASan one cannot be preloaded into uninstrumented programs
T=$(mktemp -d /dev/shm/poise-sec-XXXXXX)
M=$T/mnt
chmod 755 "$T"
mkdir -p "$M"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	mountpoint -q "$M" && { "$P" umount "$M" 2>/dev/null || umount -l "$M"; }
	rm -rf "$T" /tmp/poise-65534
}
trap cleanup EXIT
need_fuse
OWNER_UID=65534 # nobody: fusermount3 wants a user name for the owner's own mount
STRANGER_UID=65533
OWNER="setpriv --reuid=$OWNER_UID --regid=$OWNER_UID --clear-groups"
STRANGER="setpriv --reuid=$STRANGER_UID --regid=$STRANGER_UID --clear-groups"
PY=/usr/bin/python3 # the system's, which every user may run
ino_of() { stat -c %i "$1"; }
dev_of() { printf '%x' "$(stat -c '%d' "$1")"; }
umask 022

# ---- pool files ----
POOL=$T/pool.img
expect_rc 0 "mkfs" "$P" mkfs --size 64M "$POOL"
check "mkfs makes the pool its owner's alone (0600, umask 022)" test "$(stat -c %a "$POOL")" = 600
"$P" pool create "$T/raw.img" --size 1M
check "pool create too" test "$(stat -c %a "$T/raw.img")" = 600
chmod 644 "$T/raw.img"
"$P" mkfs "$T/raw.img" >/dev/null 2>&1
check "mkfs on a readable file takes the others' bits away" test "$(stat -c %a "$T/raw.img")" = 600
chmod 644 "$T/raw.img"
"$P" info "$T/raw.img" >/dev/null 2>"$T/err"
contains "info warns about a pool others can read" "$T/err" "can be read by every user"
"$P" fsck "$T/raw.img" >/dev/null 2>"$T/err"
contains "fsck too" "$T/err" "chmod 600"
chown $OWNER_UID:$OWNER_UID "$POOL"
# the owner's directory: root keeps a user's bad-sector list with that
# user's rights, so the list lives where the owner may write
chown $OWNER_UID:$OWNER_UID "$T"

# ---- a reader cannot block the pool's owner ----
chmod 644 "$POOL"
mkdir -m 777 "$T/s"
$STRANGER $PY - "$POOL" "$T/s/griefing" <<'EOF2' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.lockf(fd, fcntl.LOCK_SH, 0, 0, 0)          # a classic read lock on the whole file
open(sys.argv[2], 'w').close()
time.sleep(30)
EOF2
GRIEF=$!
PIDS+=($GRIEF)
for i in $(seq 50); do [ -e "$T/s/griefing" ] && break; sleep 0.1; done
check "(a stranger holds a read lock on the whole pool)" test -e "$T/s/griefing"
expect_rc 0 "info is not blocked by it" "$P" info "$POOL"
expect_rc 0 "fsck neither" "$P" fsck "$POOL"
expect_rc 0 "mount neither" "$P" mount "$POOL" "$M"
"$P" mount "$POOL" "$T" 2>"$T/err"
contains "and the mount still keeps a second owner out" "$T/err" "in use by pid"
LOCKF=/tmp/poise-$OWNER_UID/lock-$(dev_of "$POOL")-$(printf '%x' "$(ino_of "$POOL")")
check "its lock file is the pool owner's alone (0600), in the owner's own directory (0700)" \
	test "$(stat -c '%a %u' "$LOCKF") $(stat -c '%a %u' "$(dirname "$LOCKF")")" = "600 $OWNER_UID 700 $OWNER_UID"
expect_rc 0 "umount" "$P" umount "$M"
# the owner's lock directory taken by a stranger first: the pool file's own
# lock is all there is, and the reader's lock blocks it; say why and how out
mv /tmp/poise-$OWNER_UID "$T/owner-rt"
mkdir -m 0755 /tmp/poise-$OWNER_UID && chown $STRANGER_UID:$STRANGER_UID /tmp/poise-$OWNER_UID
expect_rc 1 "a squatted lock directory and a reader: the owner is refused..." $OWNER "$P" info "$POOL"
$OWNER "$P" info "$POOL" >/dev/null 2>"$T/err"
contains "...with the way out (an owner-only pool)" "$T/err" "chmod go-rw"
kill $GRIEF 2>/dev/null
wait $GRIEF 2>/dev/null
$OWNER "$P" badblocks list "$POOL" >/dev/null 2>"$T/err"
contains "without the reader it opens, warning that a reader could block it" "$T/err" "another user who can read"
chmod 600 "$POOL"
$OWNER "$P" badblocks list "$POOL" >/dev/null 2>"$T/err"
check "an owner-only pool: nobody can block it, no warning" sh -c "! grep -q 'another user' '$T/err'"
rm -rf /tmp/poise-$OWNER_UID
mv "$T/owner-rt" /tmp/poise-$OWNER_UID
check "the lock file stays (never replaced, so one name never has two files)" test -f "$LOCKF"

# ---- the bad-sector list through a symlink and a hard link ----
printf 'precious bytes' >"$T/data"
"$P" put "$POOL" "$T/data" /f
mkdir "$T/links"
ln -s "$POOL" "$T/links/sym.img"
ln "$POOL" "$T/links/hard.img"
expect_rc 0 "inject through a symlink" "$P" badblocks inject "$T/links/sym.img" --file /f --offset 0
for via in "$POOL" "$T/links/sym.img" "$T/links/hard.img"; do
	n=$(basename "$via")
	check "$n: badblocks list finds the list" test -n "$("$P" badblocks list "$via")"
	expect_rc 1 "$n: cat fails with the media error (no scrambled bytes as data)" "$P" cat "$via" /f
	"$P" scrub "$via" >"$T/scrub" 2>&1
	contains "$n: scrub names the file" "$T/scrub" "file /f, bytes 0-"
done
printf 'precious bytes' | "$P" write "$T/links/hard.img" /f --offset 0
check "a write through the hard link clears it for every name" test -z "$("$P" badblocks list "$POOL")"
rm -f "$T/links/hard.img"

# ---- what a stranger plants in a shared directory blocks nothing ----
mkdir -m 1777 "$T/shared"
"$P" mkfs --size 16M "$T/shared/sp.img" >/dev/null
$STRANGER ln -s /etc/passwd "$T/shared/sp.img.badblocks"
expect_rc 0 "a symlink planted where the pool's list would be: the pool still opens" "$P" info "$T/shared/sp.img"
"$P" badblocks list "$T/shared/sp.img" 2>&1 | grep -q "ignored"
check "(it says the planted file is ignored)" test $? -eq 0
$STRANGER sh -c "rm -f '$T/shared/sp.img.badblocks'; : >'$T/shared/sp.img.badblocks.tmp'"
expect_rc 0 "a planted temporary name does not stop an inject" "$P" badblocks inject "$T/shared/sp.img" 40
check "and the list is the owner's own file" test "$(stat -c %U "$T/shared/sp.img.badblocks")" = root
mkdir "$T/getdst" && mkfifo "$T/getdst/top"
printf 'x' >"$T/one"; "$P" put "$T/shared/sp.img" "$T/one" /top
sane_get() { timeout 20 "$P" get "$T/shared/sp.img" / "$T/getdst"; }
sane_get 2>"$T/err"
check "get into a destination holding a FIFO neither hangs nor writes into it" test $? -eq 1
contains "(it names the file)" "$T/err" "getdst/top"

# ---- attributes a pool's owner may set cannot make root touch other files ----
printf 'keep me' >"$T/victim1"; cp "$T/victim1" "$T/victim1.ref"
printf 'keep me' >"$T/victim2"; cp "$T/victim2" "$T/victim2.ref"
mkdir -m 700 "$T/rootdir"; printf 'root list' >"$T/rootdir/x.badblocks"; cp "$T/rootdir/x.badblocks" "$T/x.ref"
$PY - "$POOL" "$T" "$(dev_of "$POOL")" "$(printf '%x' "$(ino_of "$POOL")")" <<'EOF2'
import os, sys
pool, t, dev, ino = sys.argv[1:]
os.setxattr(pool, 'user.poise.lock', ('%s:%s:%s/victim1' % (dev, ino, t)).encode())
os.setxattr(pool, 'user.poise.badblocks', ('%s:%s:%s/victim2\0x.badblocks' % (dev, ino, t)).encode())
EOF2
expect_rc 0 "root injects into a pool whose attributes name other files" "$P" badblocks inject "$POOL" 9000
"$P" info "$POOL" >/dev/null 2>&1
check "a lock-file attribute is never followed (the file is untouched)" cmp "$T/victim1" "$T/victim1.ref"
check "a bad-sector attribute with a NUL inside is not believed" cmp "$T/victim2" "$T/victim2.ref"
$PY -c "import os,sys; os.setxattr(sys.argv[1], 'user.poise.badblocks', ('%s:%s:%s' % (sys.argv[2], sys.argv[3], sys.argv[4])).encode())" \
	"$POOL" "$(dev_of "$POOL")" "$(printf '%x' "$(ino_of "$POOL")")" "$T/rootdir/x.badblocks"
expect_rc 0 "nor one naming a list in a directory that is not the owner's" "$P" badblocks clear "$POOL" 9000
check "(root's file there is untouched)" cmp "$T/rootdir/x.badblocks" "$T/x.ref"
check "and the pool's own list was used" test -z "$("$P" badblocks list "$POOL")"

# ---- the control channel ----
$OWNER mkdir "$T/own"
printf 'root only' >"$T/rootonly"
chmod 600 "$T/rootonly"
cp "$T/rootonly" "$T/rootonly.ref"
# a stranger holds the old (abstract) name and other names first: nothing blocks the mount
python3 - "$(dev_of "$POOL")" "$(ino_of "$POOL")" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('\0poise-ctl-%s-%x' % (sys.argv[1], int(sys.argv[2])))
s.listen(1)
time.sleep(60)
EOF
PIDS+=($!)
sleep 0.3
expect_rc 0 "a root daemon mounts the owner's pool although a stranger squats the old socket name" \
	"$P" mount -o allow_other "$POOL" "$M"
SOCK=/run/poise/ctl-$(dev_of "$POOL")-$(printf '%x' "$(ino_of "$POOL")").sock
check "its socket lives in root's own directory" test -S "$SOCK" -a "$(stat -c %U /run/poise)" = root
expect_rc 0 "the pool's owner reaches the daemon" $OWNER "$P" badblocks list "$POOL"
$STRANGER "$P" badblocks list "$POOL" 2>"$T/err"
contains "a stranger cannot even open the pool" "$T/err" "Permission denied"
# raw requests: the old wire format (command text with a host path), a bad magic
python3 - "$SOCK" "$T/rootonly" <<'EOF' >"$T/raw" 2>&1
import socket, struct, sys, time
def ask(payload, wait=3.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.sendall(payload)
    s.settimeout(wait)
    out = b''
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        out += b'<timeout>'
    s.close()
    return out
old = b'\0'.join([b'poise', b'badblocks', b'inject', sys.argv[2].encode(), b'0', b'2']) + b'\0\0'
print('old:', ask(old))
req = struct.pack('<IIII8sQQQQ', 0x12345678, 4, 0, 0, b'', 0, 2, 0, 0) + sys.argv[2].encode().ljust(4096, b'\0')
print('magic:', ask(req))
req = struct.pack('<IIII8sQQQQ', 0x31515250, 99, 0, 0, b'', 0, 2, 0, 0) + b'\0' * 4096
print('op:', ask(req))
req = struct.pack('<IIII8sQQQQ', 0x31515250, 5, 0, 0, b'', 0, 0, 0, 1) + b'x' * 4096
print('name:', ask(req))
EOF
check "old-style text requests get no action" grep -q "old: b''" "$T/raw"
contains "a bad magic is refused" "$T/raw" "malformed request (not a poise request)"
contains "an unknown operation is refused" "$T/raw" "unknown operation"
contains "an unterminated name is refused" "$T/raw" "unterminated file name"
check "the root-only file is untouched" cmp "$T/rootonly" "$T/rootonly.ref"
# the served pool's path re-pointed at another file after the mount: the
# daemon works on the pool it opened, never on what the path names now
mv "$POOL" "$T/pool.moved"
ln -s "$T/rootonly" "$POOL"
$PY - "$SOCK" <<'EOF2' >"$T/raw2" 2>&1
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(struct.pack('<IIII8sQQQQ', 0x31515250, 7, 0, 0, b'', 0, 8, 0, 0) + b'\0' * 4096)  # clear 0+8
print(s.recv(65536))
EOF2
rm -f "$POOL"
mv "$T/pool.moved" "$POOL"
check "a clear after the pool's path was re-pointed leaves that file alone" cmp "$T/rootonly" "$T/rootonly.ref"
check "(and nothing was made beside it)" test ! -e "$T/rootonly.badblocks"
check "and no list was made beside it" test ! -e "$T/rootonly.badblocks"
$OWNER "$P" badblocks inject "$T/rootonly" 0 2 2>"$T/err"
check "the owner's CLI cannot name another file either" cmp "$T/rootonly" "$T/rootonly.ref"
contains "(it cannot open it)" "$T/err" "Permission denied"
# half a request, held open: others are served meanwhile
python3 - "$SOCK" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'\x50\x52\x51\x31' + b'\0' * 96)
time.sleep(30)
EOF
PIDS+=($!)
sleep 0.3
start=$(date +%s%N)
expect_rc 0 "a client holding half a request open does not wedge the others" $OWNER "$P" badblocks list "$POOL"
check "(answered within 5 s)" test $((($(date +%s%N) - start) / 1000000)) -lt 5000
expect_rc 0 "the owner injects through the channel" $OWNER "$P" badblocks inject "$POOL" 8000
expect_rc 0 "and clears" $OWNER "$P" badblocks clear "$POOL" 8000
"$P" umount "$M"
expect_rc 0 "a read-only mount" "$P" mount -o ro "$POOL" "$M"
"$P" badblocks inject "$POOL" 8000 2>"$T/err"
contains "refuses inject" "$T/err" "read-only"
expect_rc 1 "(exit 1)" "$P" badblocks inject "$POOL" 8000
expect_rc 1 "and clear" "$P" badblocks clear "$POOL" 8000
expect_rc 0 "but lists" "$P" badblocks list "$POOL"
"$P" umount "$M"
# a stranger takes the daemon's socket directory first (a private mount
# namespace puts a stranger's directory at /run/poise): the mount goes on
# without its control channel and says why
mkdir "$T/squat" && chown $STRANGER_UID:$STRANGER_UID "$T/squat"
unshare -m --propagation private bash -c "mount --bind '$T/squat' /run/poise &&
	'$P' mount '$POOL' '$M' 2>'$T/err' && mountpoint -q '$M' && '$P' umount '$M'" >/dev/null 2>&1
check "a squatted socket directory does not block the mount" test $? -eq 0
contains "(it says its channel is off, and why)" "$T/err" "no control channel"
# the pool held by the owner's own process (the shim), a stranger's fake
# server where the owner's daemon would listen: the CLI must not believe it
rm -rf /tmp/poise-$OWNER_UID # the owner's runtime directory: a stranger takes its name first
mkdir -m 0755 /tmp/poise-$OWNER_UID && chown $STRANGER_UID:$STRANGER_UID /tmp/poise-$OWNER_UID
FAKE=/tmp/poise-$OWNER_UID/ctl-$(dev_of "$POOL")-$(printf '%x' "$(ino_of "$POOL")").sock
$STRANGER $PY - "$FAKE" <<'EOF2' &
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(4)
while True:
    c, _ = s.accept()
    out = b'FAKE: 0 bad sectors: clean\n'
    c.sendall(struct.pack('<IiQQ', 0x31534e50, 0, len(out), 0) + out)
    c.close()
EOF2
PIDS+=($!)
$OWNER env POISE_POOL="$POOL" POISE_PATH=/poise LD_PRELOAD="$PRE" sh -c 'exec 3</poise/f; sleep 20' &
PIDS+=($!)
for i in $(seq 50); do [ -S "$FAKE" ] && "$P" badblocks list "$POOL" 2>&1 | grep -q "in use" && break; sleep 0.1; done
$OWNER "$P" scrub "$POOL" >"$T/out" 2>&1
check "the CLI never believes a stranger's answer" sh -c "! grep -q FAKE '$T/out'"
contains "it names the holder instead" "$T/out" "in use"
kill "${PIDS[-1]}" "${PIDS[-2]}" 2>/dev/null
wait "${PIDS[-1]}" 2>/dev/null
for i in $(seq 50); do "$P" info "$POOL" >/dev/null 2>&1 && break; sleep 0.1; done
rm -rf /tmp/poise-$OWNER_UID

# ---- set-id bits and groups ----
expect_rc 0 "mount for the set-id checks" "$P" mount -o allow_other "$POOL" "$M"
chmod 777 "$M"
printf '#!/bin/sh\necho hi\n' >"$M/prog"
chmod 04777 "$M/prog"
$STRANGER sh -c "echo '# x' >>'$M/prog'"
check "a stranger's write clears set-user-ID at once" test "$(stat -c %a "$M/prog")" = 777
chmod 06777 "$M/prog"
$STRANGER truncate -s 5 "$M/prog"
check "a stranger's truncate clears set-user-ID and set-group-ID" test "$(stat -c %a "$M/prog")" = 777
chmod 02767 "$M/prog"
$STRANGER sh -c "echo y >>'$M/prog'"
check "set-group-ID without group execute (a lock marker) stays" test "$(stat -c %a "$M/prog")" = 2767
chmod 04777 "$M/prog"
echo root >>"$M/prog"
check "root's write keeps the bits" test "$(stat -c %a "$M/prog")" = 4777
mkdir "$M/g" && chgrp 100 "$M/g" && chmod 2777 "$M/g"
$STRANGER sh -c "touch '$M/g/f' && mkdir '$M/g/d'"
check "a new file in a set-group-ID directory takes its group" test "$(stat -c %g "$M/g/f")" = 100
check "a new subdirectory takes the group and the bit" test "$(stat -c '%g %A' "$M/g/d")" = "100 drwxr-sr-x"
"$P" umount "$M"

# ---- a pool path with commas ----
CP="$T/x,suid,dev,allow_other.img"
cp "$POOL" "$CP"
expect_rc 0 "mount a pool whose name has commas" "$P" mount "$CP" "$M"
OPTS=$(awk -v m="$M" '$2 == m {print $4}' /proc/mounts)
check "the name added no option (nosuid, nodev, no allow_other)" sh -c \
	"echo '$OPTS' | grep -q nosuid && echo '$OPTS' | grep -q nodev && ! echo '$OPTS' | grep -q allow_other"
expect_rc 0 "umount recognises the mount" "$P" umount "$M"
check "and the pool is closed" "$P" info "$CP"

# ---- the shim ----
printf 'in the pool' >"$T/f2"
"$P" put "$POOL" "$T/f2" /inpool
check "POISE_PATH covering the pool file itself: no deadlock" sh -c \
	"POISE_POOL='$POOL' POISE_PATH='$T' LD_PRELOAD='$PRE' timeout 20 cat '$T/inpool' | grep -q 'in the pool'"
check "POISE_PATH=/ too" sh -c \
	"POISE_POOL='$POOL' POISE_PATH=/ LD_PRELOAD='$PRE' timeout 20 cat /inpool | grep -q 'in the pool'"
# a set-group-ID program with the shim in /etc/ld.so.preload (a private mount
# namespace, so the rest of the machine never sees it)
echo "real file" >"$T/target"
chmod 644 "$T/target"
mkdir "$T/fake" && printf 'FAKE contents' >"$T/fake/target"
"$P" mkfs --size 16M "$T/evil.img" >/dev/null
"$P" mkdir -p "$T/evil.img" /x
"$P" put "$T/evil.img" "$T/fake/target" /target
chown $STRANGER_UID:$STRANGER_UID "$T/evil.img"
cp /bin/cat "$T/sgcat" && chgrp 0 "$T/sgcat" && chmod 2755 "$T/sgcat"
echo "$PRE" >"$T/preload"
created=0
[ -e /etc/ld.so.preload ] || { : >/etc/ld.so.preload; created=1; }
unshare -m --propagation private sh -c "mount --bind '$T/preload' /etc/ld.so.preload && \
	$STRANGER env POISE_POOL='$T/evil.img' POISE_PATH='$T' '$T/sgcat' '$T/target'" >"$T/out" 2>&1
unshare -m --propagation private sh -c "mount --bind '$T/preload' /etc/ld.so.preload && \
	$STRANGER env POISE_POOL='$T/evil.img' POISE_PATH='$T' cat '$T/target'" >"$T/out2" 2>&1
[ $created = 1 ] && rm -f /etc/ld.so.preload
check "the shim in ld.so.preload does serve an ordinary program (the test reaches it)" grep -q FAKE "$T/out2"
check "a set-group-ID program ignores POISE_* (reads the real file)" grep -qx "real file" "$T/out"

# ---- arguments ----
expect_rc 1 "mkfs --inodes 2^64-1 fails" "$P" mkfs --size 64M --inodes 18446744073709551615 "$T/n1.img"
check "and leaves no pool file behind" test ! -e "$T/n1.img"
"$P" mkfs --size 0 "$T/n2.img" 2>"$T/err"
contains "mkfs --size 0 says what is wrong with the size" "$T/err" "bad size '0'"
expect_rc 1 "mkfs --size too small for a file system fails" "$P" mkfs --size 8K "$T/n3.img"
check "and leaves no pool file behind" test ! -e "$T/n3.img"
expect_rc 2 "inject --metadata '' is a usage error" "$P" badblocks inject "$POOL" --metadata ""
printf 'x' >"$T/nl"
"$P" put "$POOL" "$T/nl" "/a
b"
"$P" ls "$POOL" / >"$T/ls"
check "ls quotes a name holding a newline as GNU ls does" grep -qxF "'a'\$'\\n''b'" "$T/ls"
check "(one line for it)" test "$(grep -c "^b" "$T/ls")" = 0

# ---- the daemon exits cleanly (no leak under ASan) ----
"$P" mount -f "$POOL" "$M" 2>"$T/daemon" &
DP=$!
for i in $(seq 100); do mountpoint -q "$M" && break; sleep 0.05; done
"$P" umount "$M"
wait $DP
check "a foreground daemon exits 0 after umount" test $? -eq 0
check "with no sanitizer report" sh -c "! grep -q Sanitizer '$T/daemon'"
finish
