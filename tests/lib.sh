# tests/lib.sh - helpers for shell test suites: named checks and the closing
# line "N passed, N failed".  Source it, call `check NAME CMD...` or
# `expect_rc RC NAME CMD...`, and end with `finish`.
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '    %s\n' "$2"; return 0; }
# check NAME CMD...: passes when CMD exits 0
check() { local n=$1; shift; if "$@" >/tmp/poise-check.$$ 2>&1; then ok "$n"; else bad "$n" "$(tail -5 /tmp/poise-check.$$)"; fi; }
# expect_rc RC NAME CMD...: passes when CMD exits with RC
expect_rc() {
	local want=$1 n=$2; shift 2
	"$@" >/tmp/poise-check.$$ 2>&1
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$n"; else bad "$n" "exit $rc, expected $want: $(tail -3 /tmp/poise-check.$$)"; fi
}
# contains NAME FILE TEXT: FILE holds TEXT
contains() { if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1" "'$3' not in: $(head -c 300 "$2")"; fi; }
# sql_inserts N: an SQL script creating table t and inserting 500 rows in
# each of N transactions (the sqlite3 client tests)
sql_inserts() {
	echo "create table t(a integer primary key, b text);"
	for b in $(seq 1 "$1"); do
		echo "begin;"
		for i in $(seq 1 500); do echo "insert into t(b) values('row $b.$i');"; done
		echo "commit;"
	done
}
# walk TAG PROGRAM...: each "ok NAME" / "FAIL NAME: why" line PROGRAM prints
# is a check here, and a nonzero exit without a FAIL line is one too
walk() {
	local tag=$1 out=/tmp/poise-walk.$$; shift
	"$@" >"$out" 2>&1
	local rc=$?
	while read -r st name; do
		case $st in
		ok) ok "$tag: $name" ;;
		FAIL) bad "$tag: $name" ;;
		esac
	done <"$out"
	[ "$rc" -eq 0 ] || grep -q "^FAIL" "$out" || bad "$tag: the walker ended with exit $rc" "$(tail -3 "$out")"
	rm -f "$out"
}
finish() { rm -f /tmp/poise-check.$$; echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; }
# need_fuse: the mount suites need /dev/fuse, fusermount3 and root; without
# them a suite says SKIP and fails, so it never passes silently
need_fuse() {
	if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null || [ "$(id -u)" != 0 ]; then
		bad "SKIP: needs /dev/fuse, fusermount3 and root"
		finish
		exit 1
	fi
}
# mount_suite NAME [POISE_BINARY]: a mount suite's setting: P (the CLI), T
# (a directory in /dev/shm, removed at exit with the mount M unmounted),
# POOL in it, need_fuse, and two unprivileged users, NOBODY and OTHER
mount_suite() {
	P=$(realpath "${2:-build/poise}")
	T=$(mktemp -d "/dev/shm/poise-$1-XXXXXX")
	M=$T/mnt
	POOL=$T/pool.img
	mkdir -p "$M"
	chmod 755 "$T"
	cleanup() {
		mountpoint -q "$M" && { "$P" umount "$M" 2>/dev/null || umount -l "$M"; }
		rm -rf "$T"
	}
	trap cleanup EXIT
	need_fuse
	NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
	OTHER="setpriv --reuid=65533 --regid=65533 --clear-groups"
}
# shim_direct TAG DIR: under the shim (build/libpoise-preload.so), a file
# of the poise mount at DIR reads back from the process's own mapping of the
# pool, sqlite3's page overwrites in place are direct too, and the kernel's
# path reads them (the shim's counts, POISE_SHIM_STATS); for the real-DAX
# suites
shim_direct() {
	local tag=$1 d=$2 shim=$PWD/build/libpoise-preload.so
	head -c 1048576 /dev/urandom >/tmp/sd.ref
	cp /tmp/sd.ref "$d/sd"
	rm -f /tmp/sd.st
	LD_PRELOAD=$shim POISE_SHIM_STATS=/tmp/sd.st cat "$d/sd" >/tmp/sd.got
	check "$tag: under the shim a file of the mount reads back" cmp /tmp/sd.got /tmp/sd.ref
	check "$tag: ... from the process's own mapping ($(tail -1 /tmp/sd.st))" \
		grep -qE 'mount: [1-9][0-9]* direct reads' /tmp/sd.st
	sqlite3 "$d/sd.db" "create table t(a, b); with recursive c(x) as (select 1 union all select x + 1 from c where x < 2000)
		insert into t select x, randomblob(200) from c;"
	rm -f /tmp/sd.st
	LD_PRELOAD=$shim POISE_SHIM_STATS=/tmp/sd.st sqlite3 "$d/sd.db" "update t set b = randomblob(200);" >/dev/null
	check "$tag: sqlite3's page overwrites under the shim are direct ($(tail -1 /tmp/sd.st))" \
		grep -qE 'direct reads, [1-9][0-9]* direct writes' /tmp/sd.st
	check "$tag: and the kernel's path reads them" \
		test "$(sqlite3 "$d/sd.db" 'pragma integrity_check; select count(*) from t;' | tr '\n' ' ')" = "ok 2000 "
	rm -f /tmp/sd.st
	LD_PRELOAD=$shim POISE_SHIM_STATS=/tmp/sd.st /usr/bin/python3 -c 'import sys
f = open(sys.argv[1], "wb", buffering=0)
d = open(sys.argv[2], "rb").read()
for i in range(0, len(d), 4096):
    f.write(d[i:i + 4096])' "$d/sd.app" /tmp/sd.ref
	check "$tag: appends under the shim go straight into granted space ($(tail -1 /tmp/sd.st))" \
		test "$(sed -n 's/.* \([0-9]*\) direct writes.*/\1/p' /tmp/sd.st | tail -1)" -ge 250
	check "$tag: and read back through the kernel" cmp "$d/sd.app" /tmp/sd.ref
	rm -f "$d/sd" "$d/sd.db" "$d/sd.app" /tmp/sd.ref /tmp/sd.got /tmp/sd.st
}
