#!/usr/bin/env bash
# test_install.sh - poise installs as a distribution would ship it:
# `make install DESTDIR=... ` lays out the command, the versioned library
# (soname libpoise.so.0), the static library, the header, poise.pc, the
# shim, the mount helper, the man pages and bash completion; the README's C
# example builds with pkg-config against the installed files and runs; the
# man pages render without a warning and cover every command of --help;
# bash completion offers commands, subcommands and options; `mount -t
# fuse.poise`, an fstab line with `mount DIR` and `mount -a`, and `umount
# DIR` work through the installed mount.fuse.poise (in a private mount
# namespace where the DESTDIR is seen at / : nothing is installed on the
# machine); `make uninstall` removes every file; and the tree builds with
# Debian's hardening flags (what debian/rules passes), without a warning.
# Needs root and /dev/fuse for the mount part (says FAIL otherwise).
# What is installed is the release build (build/); with another build's
# binary (make test's ASan run) only its --help is checked against the
# installed pages and completion.
# Usage: test_install.sh [POISE_BINARY]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
B=build
P=$(realpath --relative-to=. "${1:-build/poise}")
T=$(mktemp -d /dev/shm/poise-inst-XXXXXX)
trap 'rm -rf "$T"' EXIT
D=$T/root
PFX=$D/usr/local

# ---- make install ----
make --no-print-directory install BUILD="$B" DESTDIR="$D" >"$T/log" 2>&1
check "make install DESTDIR=... succeeds" test $? -eq 0
for f in bin/poise lib/libpoise.so.0.2.0 lib/libpoise.a include/poise.h include/poise-admin.h lib/pkgconfig/poise.pc \
	lib/poise/libpoise-preload.so share/man/man8/poise.8 share/man/man8/poise-mount.8 \
	share/man/man8/mount.fuse.poise.8 share/man/man3/libpoise.3 share/bash-completion/completions/poise; do
	check "installed: PREFIX/$f" test -f "$PFX/$f"
done
check "installed: /sbin/mount.fuse.poise (where mount(8) looks), executable" test -x "$D/sbin/mount.fuse.poise"
check "libpoise.so.0 and libpoise.so are links to the versioned file" \
	test "$(readlink "$PFX/lib/libpoise.so.0") $(readlink "$PFX/lib/libpoise.so")" = "libpoise.so.0.2.0 libpoise.so.0"
check "its soname is libpoise.so.0" sh -c "readelf -d '$PFX/lib/libpoise.so.0.2.0' | grep -q 'SONAME.*\[libpoise.so.0\]'"
check "the helper runs the poise it was installed with" grep -qx 'POISE="/usr/local/bin/poise"' "$D/sbin/mount.fuse.poise"
check "poise --version names the version" sh -c "'$PFX/bin/poise' --version | grep -qx 'poise 0.2.0'"

# ---- pkg-config and the README's example ----
export PKG_CONFIG_LIBDIR=$PFX/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D
flags=$(pkg-config --cflags --libs poise)
check "pkg-config --cflags --libs poise: the installed places" test "$(echo $flags)" = "-I$PFX/include -L$PFX/lib -lpoise"
check "pkg-config knows its version" test "$(pkg-config --modversion poise)" = 0.2.0
sed -n '/^```c$/,/^```$/p' README.md | sed '1d;$d' | sed "s|/dev/shm/fs.img|$T/fs.img|g" >"$T/hello.c"
check "(the README has its C example)" grep -q poise_pool_open "$T/hello.c"
# shellcheck disable=SC2086 # pkg-config's words
cc -Wall -Werror "$T/hello.c" $flags -o "$T/hello" 2>"$T/err"
check "the README's C example builds with pkg-config, without a warning" test $? -eq 0
LD_LIBRARY_PATH=$PFX/lib "$T/hello"
check "and runs against the installed library" test $? -eq 0
LD_LIBRARY_PATH=$PFX/lib "$T/hello"
check "and runs again on the pool it made" test $? -eq 0
check "(the file it made is in the pool)" sh -c "'$B/poise' cat '$T/fs.img' /hello | grep -qx hi"
check "it loads libpoise.so.0" sh -c "LD_LIBRARY_PATH='$PFX/lib' ldd '$T/hello' | grep -q 'libpoise.so.0 => $PFX/lib/libpoise.so.0'"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

# ---- man pages ----
for m in "$PFX"/share/man/man*/*; do
	n=$(basename "$m")
	[ "$n" = mount.fuse.poise.8 ] && continue # a .so link, checked below
	groff -man -ww -z "$m" >"$T/warn" 2>&1
	check "man page $n renders without a warning" test ! -s "$T/warn"
done
MANPATH=$PFX/share/man MANWIDTH=80 man poise 2>/dev/null >"$T/man"
contains "man poise opens" "$T/man" "a file system for persistent memory"
MANPATH=$PFX/share/man MANWIDTH=80 man libpoise 2>/dev/null >"$T/man"
contains "man libpoise opens" "$T/man" "poise_pool_open"
MANPATH=$PFX/share/man MANWIDTH=80 man mount.fuse.poise 2>/dev/null >"$T/man"
contains "man mount.fuse.poise opens poise-mount(8)" "$T/man" "fuse.poise"
# every command of --help is on a page, in the words of its --help
"$P" --help | sed -n 's/^  poise //p' >"$T/usages"
miss=""
while IFS= read -r u; do
	e=$(printf '%s\n' "$u" | sed -e 's/\\/\\e/g' -e 's/-/\\-/g')
	grep -qxF ".B poise $e" "$PFX"/share/man/man8/*.8 || miss="$miss [$u]"
done <"$T/usages"
check "every command's usage line is on a man page:$miss" test -z "$miss"
cat include/poise.h include/poise-admin.h | grep -oE '\bpoise_[a-z0-9_]+ *\(' | tr -d ' (' | sort -u >"$T/api"
miss=$(while read -r fn; do grep -q "$fn" "$PFX/share/man/man3/libpoise.3" || echo "$fn"; done <"$T/api" | tr '\n' ' ')
check "libpoise(3) names every function of poise.h and poise-admin.h: ${miss:-all}" test -z "$miss"

# ---- bash completion ----
cat >"$T/comp.sh" <<EOF
. '$PFX/share/bash-completion/completions/poise'
t() { COMP_WORDS=("\$@"); COMP_CWORD=\$((\$# - 1)); _poise; echo "\${COMPREPLY[*]}"; }
EOF
comp() { bash -c ". '$T/comp.sh'; t '$P' $*"; }
check "completion: commands" test "$(comp mk)" = "mkdir mkfs"
check "completion: a group's subcommands" test "$(comp badblocks "''")" = "list inject clear --help"
check "completion: a command's options, from its --help" test "$(comp mkfs --)" = "--force --inodes --size --help"
check "completion: a subcommand's options" sh -c "echo '$(comp badblocks inject x.img --f)' | grep -qx -- --file"
check "completion: one option of a comma list keeps the ones before it" test "$(comp mount -o ro,odi)" = "ro,odirect=dax ro,odirect=block"
check "completion: a word that is no command completes nothing, quietly" test -z "$(comp 'a/b' '' 2>&1)"
check "completion: mount's DIR is a directory" test "$(comp mount x.img "'$T/ro'")" = "$T/root"

# ---- mount -t fuse.poise, fstab, umount (in a private mount namespace) ----
if [ "$P" != build/poise ]; then
	: # the mount helper runs the installed (release) poise: checked in its run
elif [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null || [ "$(id -u)" != 0 ]; then
	bad "SKIP: the mount helper checks need /dev/fuse, fusermount3 and root"
else
	POOL=$T/pools/a.img
	M=$T/mnt/a
	mkdir -p "$T/pools" "$M"
	"$B/poise" mkfs --size 64M "$POOL" >/dev/null
	printf '# test fstab\n%s %s fuse.poise defaults,allow_other 0 0\n' "$POOL" "$M" >"$T/fstab"
	mkdir "$T/sbin" && cp "$D/sbin/mount.fuse.poise" "$T/sbin/"
	cat >"$T/ns.sh" <<EOF
set -u
. tests/lib.sh
mount -t overlay overlay -o lowerdir=$T/sbin:/usr/sbin /usr/sbin || exit 3
mount --bind $PFX /usr/local || exit 3
mount --bind $T/fstab /etc/fstab || exit 3
mounted() { grep -q " $M fuse.poise " /proc/self/mounts; }
# does any process still have the pool open (the daemon after umount)?
held() { find /proc/[0-9]*/fd -lname '$POOL' 2>/dev/null | grep -q .; }
gone() { for i in \$(seq 100); do held || return 0; sleep 0.1; done; return 1; }
expect_rc 0 "mount.fuse.poise -f (fake) checks and does not mount" /sbin/mount.fuse.poise $POOL $M -o rw,allow_other -f
check "(nothing mounted)" sh -c "! grep -q ' $M ' /proc/self/mounts"
mkdir -p $T/globdir && touch $T/globdir/odirect=block $T/globdir/secret
(cd $T/globdir && /sbin/mount.fuse.poise $POOL $M -o 'rw,*,odirect=*' -f -v) 2>$T/glob
check "options are never expanded as file names in the caller's directory" grep -qF -- "-o *,odirect=*" $T/glob
expect_rc 0 "mount DIR: the fstab line mounts through the helper" mount $M
check "it is a fuse.poise mount of the pool" mounted
check "with allow_other (mount's own options dropped, the rest passed)" grep -q " $M fuse.poise .*allow_other" /proc/self/mounts
echo 'via fstab' >$M/f
check "files written through it land in the pool" test "\$(cat $M/f)" = "via fstab"
expect_rc 0 "umount DIR" umount $M
check "unmounted" sh -c "! grep -q ' $M ' /proc/self/mounts"
check "the daemon closes the pool" gone
check "the file is in the pool" sh -c "'$B/poise' cat $POOL /f | grep -qx 'via fstab'"
expect_rc 0 "mount -a mounts the fstab line" mount -a -t fuse.poise
check "(mounted)" mounted
expect_rc 0 "umount" umount $M
gone
expect_rc 0 "mount -t fuse.poise -o ro POOL DIR" mount -t fuse.poise -o ro,nosuid $POOL $M
check "a read-only mount refuses writes" sh -c "! echo x >$M/g 2>/dev/null"
check "and reads" test "\$(cat $M/f)" = "via fstab"
check "ro and nosuid reach the kernel" grep -q " $M fuse.poise ro,nosuid" /proc/self/mounts
expect_rc 0 "umount" umount $M
gone
mount -t fuse.poise -o bogus_option $POOL $M 2>$T/err
check "an unknown option: mount fails" test \$? -ne 0
check "(nothing mounted)" sh -c "! grep -q ' $M ' /proc/self/mounts"
check "a missing pool: mount fails, naming it" sh -c "! mount -t fuse.poise $T/none.img $M 2>$T/err && grep -q none.img $T/err"
expect_rc 1 "the helper refuses a mount namespace it cannot enter" /sbin/mount.fuse.poise $POOL $M -N /proc/1/ns/mnt
finish
EOF
	unshare -m --propagation private bash "$T/ns.sh" >"$T/ns.out" 2>&1
	rc=$?
	sed 's/^/  /' "$T/ns.out" | grep -v ' passed, ' >&2
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$T/ns.out")
	PASS=$((PASS + ${line%% passed*}))
	f=${line#*, }
	FAIL=$((FAIL + ${f%% failed*}))
	[ -n "$line" ] || bad "the mount namespace's checks did not run (exit $rc)" "$(tail -5 "$T/ns.out")"
fi

# ---- make uninstall ----
make --no-print-directory uninstall BUILD="$B" DESTDIR="$D" >"$T/log" 2>&1
check "make uninstall succeeds" test $? -eq 0
check "and leaves no file behind" test -z "$(find "$D" ! -type d)"

# ---- Debian's build flags (debian/rules): no warning, the shim's link check passes ----
if [ "$P" = build/poise ]; then
	DF="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)"
	make --no-print-directory all BUILD="$T/deb" EXTRA_CFLAGS="$DF" \
		EXTRA_LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" >"$T/log" 2>&1
	check "the tree builds with Debian's hardening flags (_FORTIFY_SOURCE=2, -z now)" test $? -eq 0
	check "without a warning" sh -c "! grep -iE 'warning|shim:' '$T/log'"
fi
finish
