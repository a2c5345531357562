#!/usr/bin/env bash
# bench/mount_cache.sh - the FUSE mount's two data paths against tmpfs, with
# fio (psync, one job, a 256 MiB file): 4 KiB random reads and 1 MiB
# sequential reads, buffered, on three targets in one run:
#   page   `poise mount` (cache=page, the default): buffered opens through
#          the kernel's page cache, write-through
#   none   `poise mount -o cache=none`: every read a FUSE request to the
#          daemon (direct_io), as the mount was before format 1.1
#   tmpfs  the kernel's tmpfs
# The targets interleave in every repetition; the median of BENCH_REPS
# (default 3) is kept; each run lasts FIO_SECS (default 4) after fio lays
# the file out and reads it once (--pre_read, --invalidate=0: the steady
# state of a file that is read again, its pages cached where a cache is).  Writes bench/results/mount_cache.json and prints a
# markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
P=$PWD/build/poise
REPS=${BENCH_REPS:-3}
SECS=${FIO_SECS:-4}
T=$(mktemp -d /dev/shm/poise-mcache-XXXXXX)
cleanup() {
	mountpoint -q "$T/mnt" && "$P" umount "$T/mnt"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/mnt" "$T/tmpfs"
OUT=bench/results/mount_cache.json
: >"$OUT"

# one fio job; prints the read bandwidth in KiB/s and the IOPS
job() { # DIR RW BS
	fio --name=m --directory="$1" --filename=f --rw="$2" --bs="$3" --size=256m --ioengine=psync \
		--numjobs=1 --invalidate=0 --pre_read=1 --time_based --runtime="$SECS" --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["jobs"][0]["read"]; print(int(r["bw"]), int(r["iops"]))'
}

for rep in $(seq 1 "$REPS"); do
	for target in page none tmpfs; do
		dir=$T/tmpfs
		if [ "$target" != tmpfs ]; then
			rm -f "$T/pool"
			"$P" mkfs --size 1G "$T/pool" >/dev/null
			"$P" mount -o "cache=$([ $target = page ] && echo page || echo none)" "$T/pool" "$T/mnt"
			dir=$T/mnt
		fi
		for w in randread:4k read:1m; do
			echo "bench: mount cache rep $rep, $target, $w" >&2
			read -r bw iops < <(job "$dir" "${w%%:*}" "${w##*:}")
			echo "{\"bench\":\"mount_cache\",\"workload\":\"$w\",\"target\":\"$target\",\"rep\":$rep,\"kib_s\":$bw,\"iops\":$iops}" >>"$OUT"
		done
		rm -f "$dir/f"
		mountpoint -q "$T/mnt" && "$P" umount "$T/mnt"
	done
done

med() { grep "\"workload\":\"$1\",\"target\":\"$2\"," "$OUT" | sed "s/.*\"$3\":\([0-9]*\).*/\1/" | sort -n |
	awk '{a[NR]=$1} END {print NR ? a[int((NR+1)/2)] : 0}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
echo "| workload | page cache (default) | cache=none (direct_io) | tmpfs | page / none | page / tmpfs | none / tmpfs |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for w in randread:4k read:1m; do
	if [ "$w" = randread:4k ]; then
		f=iops unit="IOPS" name="4 KiB random read"
	else
		f=kib_s unit="MiB/s" name="1 MiB sequential read"
	fi
	a=$(med "$w" page $f) b=$(med "$w" none $f) c=$(med "$w" tmpfs $f)
	if [ $f = kib_s ]; then
		show() { awk -v v="$1" 'BEGIN { printf "%.0f MiB/s", v / 1024 }'; }
	else
		show() { echo "$1 IOPS"; }
	fi
	echo "| $name | $(show "$a") | $(show "$b") | $(show "$c") | $(ratio "$a" "$b") | $(ratio "$a" "$c") | $(ratio "$b" "$c") |"
done
