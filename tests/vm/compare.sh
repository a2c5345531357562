#!/usr/bin/env bash
# compare.sh ext4|xfs|poise - inside the pmem VM (fsdax mode): the same
# media-error scenario on ext4-DAX, xfs-DAX or poise (a pool file on
# ext4-DAX, used through the LD_PRELOAD shim by the very same program), one
# bad 512-byte sector marked in the pmem device's badblocks under byte 4608
# of a fresh 64 KiB file for every step.  One column per VM boot (marked
# sectors last the VM's life).  Writes build/cmp-COLUMN.txt ("step|outcome"
# lines; tests/vm/run.sh makes docs/KERNEL-COMPARISON.md of the three) and,
# for poise, checks the outcomes.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
P=$PWD/build/poise
SHIM=$PWD/build/libpoise-preload.so
BB=/sys/block/pmem0/badblocks
STEPS="read-beside read-span read-page read-after write-1 write-512-od write-4k write-4k-od mmap-load fill"
declare -A OUT
n=0

mark() { # mark the device sector holding byte $2 of file $1
	local off
	off=$(python3 tests/vm/fiemap.py "$1" "$2") || return 1
	echo "$((off / 512)) 1" >"$BB"
}

pattern() { python3 -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) & 255 for i in range(65536)))"; }

kernel_fs() { # FS: mkfs, mount with DAX, every step on a fresh file
	local fs=$1
	umount /mnt 2>/dev/null
	if [ "$fs" = ext4 ]; then mkfs.ext4 -q -F /dev/pmem0 && mount -o dax /dev/pmem0 /mnt
	else mkfs.xfs -q -f /dev/pmem0 && mount -o dax=always /dev/pmem0 /mnt; fi
	for s in $STEPS; do
		n=$((n + 1))
		pattern >/mnt/f$n
		sync
		mark /mnt/f$n 4608
		if [ "$s" = fill ]; then
			rm /mnt/f$n
			OUT[$fs,$s]=$(python3 tests/vm/scenario.py fill /mnt/fill 2>&1 | tail -1)
			rm -f /mnt/fill
		else
			OUT[$fs,$s]=$(python3 tests/vm/scenario.py "$s" /mnt/f$n 2>&1 | tail -1)
		fi
	done
	umount /mnt
}

poise_fs() {
	umount /mnt 2>/dev/null
	mkfs.ext4 -q -F /dev/pmem0 && mount -o dax /dev/pmem0 /mnt
	"$P" pool create /mnt/pool --size 600M >/dev/null && "$P" mkfs /mnt/pool >/dev/null
	pattern >/tmp/pat
	for s in $STEPS; do
		n=$((n + 1))
		"$P" put /mnt/pool /tmp/pat /f$n
		read -r foff poff _ < <("$P" map /mnt/pool /f$n)
		mark /mnt/pool $((poff + 4608 - foff))
		if [ "$s" = fill ]; then
			"$P" rm /mnt/pool /f$n
			OUT[poise,$s]=$(POISE_POOL=/mnt/pool POISE_PATH=/poise LD_PRELOAD=$SHIM python3 tests/vm/scenario.py fill /poise/fill 2>&1 | tail -1)
			"$P" rm /mnt/pool /fill
		else
			OUT[poise,$s]=$(POISE_POOL=/mnt/pool POISE_PATH=/poise LD_PRELOAD=$SHIM python3 tests/vm/scenario.py "$s" /poise/f$n 2>&1 | tail -1)
		fi
	done
	expect_rc 0 "poise: fsck after the scenario" "$P" fsck /mnt/pool
	umount /mnt
}

COL=${1:-poise}
case $COL in
ext4 | xfs) kernel_fs "$COL" ;;
poise) poise_fs ;;
*) echo "usage: compare.sh ext4|xfs|poise"; exit 2 ;;
esac
for s in $STEPS; do echo "$s|${OUT[$COL,$s]}"; done >"build/cmp-$COL.txt"
cat "build/cmp-$COL.txt"
if [ "$COL" != poise ]; then
	check "$COL: every step has an outcome" test "$(grep -c '|.' "build/cmp-$COL.txt")" = 10
	finish
	exit
fi

# poise's outcomes, asserted
check "poise: a good sector beside the bad one reads" test "${OUT[poise,read-beside]}" = ok
check "poise: a read spanning it returns the bytes before it" test "${OUT[poise,read-span]}" = "short: 4608 of 65536 B"
check "poise: the page read returns the good sector before it" test "${OUT[poise,read-page]}" = "short: 512 of 4096 B"
check "poise: the next page reads" test "${OUT[poise,read-after]}" = ok
for s in write-1 write-512-od write-4k write-4k-od; do
	check "poise: $s succeeds and the sector reads again" test "${OUT[poise,$s]}" = "write ok, sector reads ok"
done
check "poise: a mapped load of poison raises SIGBUS, as on DAX" test "${OUT[poise,mmap-load]}" = SIGBUS
check "poise: after delete, new data never meets the bad sector" test "${OUT[poise,fill]}" = "reads whole"
finish
