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
