#!/usr/bin/env bash
# make-corpus.sh POISE OUTDIR - real 256 KiB pool images as fuzz seeds: an
# empty file system; one with files, a directory tree, a symlink, a
# fragmented file (an extent chain) and extended attributes; and one left
# with a committed transaction in its log (a crash at a fence); and crafted
# images with valid checksums (below).
# POISE must have the test hooks (build/tests/poise-hooks, made by make
# tests) for the crash at a fence: the shipped command has none.
set -euo pipefail
P=$1
OUT=$2
mkdir -p "$OUT"
T=$(mktemp -d /dev/shm/poise-corpus-XXXXXX)
trap 'rm -rf "$T"' EXIT
"$P" mkfs --size 256K "$T/empty" >/dev/null
"$P" mkfs --size 256K "$T/tree" >/dev/null
printf 'hello' >"$T/small"
head -c 9000 /dev/zero | tr '\0' 'x' >"$T/mid"
"$P" mkdir -p "$T/tree" /a/b
"$P" put "$T/tree" "$T/small" /a/small
"$P" put "$T/tree" "$T/mid" /a/b/mid
for o in 0 8192 16384 24576 32768 40960; do printf 'frag' | "$P" write "$T/tree" /frag --offset $o; done
cp "$T/tree" "$T/crash"
rc=0
POISE_CRASH_FENCE=3 "$P" mkdir "$T/crash" /late 2>/dev/null || rc=$?
[ "$rc" -eq 99 ] || { echo "make-corpus.sh: $P did not crash at the fence (exit $rc): use build/tests/poise-hooks" >&2; exit 1; }
for f in empty tree crash; do cp "$T/$f" "$OUT/$f.img"; done
# crafted seeds (tests/craft.py): every CRC valid, one hostile field each,
# so the fuzzer starts past the checksums
ino() { "$P" stat --json "$T/tree" "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ino"])'; }
C="python3 $(dirname "$0")/../craft.py"
$C sb-itable-wrap "$T/tree" "$OUT/craft-sb-wrap.img"
$C sb-itable-big "$T/tree" "$OUT/craft-sb-big.img"
$C dirent-name "$T/tree" "$OUT/craft-dotdot.img" "a:.."
$C dirent-name "$T/tree" "$OUT/craft-slash.img" "frag:f/ag"
$C dirent-cycle "$T/tree" "$OUT/craft-cycle.img" "$(ino /a):$(ino /a/b)"
$C dirent-dup "$T/tree" "$OUT/craft-dup.img" "frag:$(ino /a/small)"
$C extent-loop "$T/tree" "$OUT/craft-extent-loop.img"
$C dir-size "$T/tree" "$OUT/craft-dir-size.img" "$(ino /a)"
$C file-size "$T/tree" "$OUT/craft-file-size.img" "$(ino /a/small)"
