#!/usr/bin/env bash
# bench/fio.sh - fio 4 KiB random read and write, one job (psync), on three
# targets in one run: a tmpfs directory (the kernel), a poise FUSE mount,
# and the same pool through the LD_PRELOAD shim; the targets interleaved in
# every repetition, the median of REPS kept.  Writes bench/results/fio.json
# and prints a markdown table.  BENCH_SECONDS (default 2) per run.
set -euo pipefail
cd "$(dirname "$0")/.."
P=$PWD/build/poise
SHIM=$PWD/build/libpoise-preload.so
SECS=${BENCH_SECONDS_FIO:-2}
REPS=${BENCH_REPS:-3}
T=$(mktemp -d /dev/shm/poise-fio-XXXXXX)
cleanup() {
	mountpoint -q "$T/mnt" && "$P" umount "$T/mnt"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/tmpfs" "$T/mnt"
export POISE_PREFAULT=1
"$P" mkfs --size 512M "$T/pool" >/dev/null
OUT=bench/results/fio.json
: >"$OUT"

# iops RW TARGET: one fio run, its IOPS
iops() {
	local rw=$1 target=$2 dir pre=""
	case $target in
	tmpfs) dir=$T/tmpfs ;;
	fuse) dir=$T/mnt ;;
	preload) dir=/poise pre=$SHIM ;;
	esac
	POISE_POOL=$T/pool POISE_PATH=/poise LD_PRELOAD=$pre fio --verify_state_save=0 --name=b --directory="$dir" --filename=bench.dat \
		--rw="$rw" --bs=4k --size=64m --ioengine=psync --thread --numjobs=1 --time_based --runtime="$SECS" \
		--output-format=json 2>/dev/null |
		awk -v k="$([ "$rw" = randread ] && echo read || echo write)" '
			$0 ~ "\"" k "\" *: *\\{" { inside = 1 }
			inside && !done && /"iops" *:/ { gsub(/[^0-9.]/, "", $0); print int($0); done = 1 }'
}

for rep in $(seq 1 "$REPS"); do
	for rw in randread randwrite; do
		for target in tmpfs fuse preload; do
			[ "$target" = fuse ] && "$P" mount "$T/pool" "$T/mnt"
			v=$(iops "$rw" "$target")
			[ "$target" = fuse ] && "$P" umount "$T/mnt"
			echo "{\"bench\":\"fio\",\"rw\":\"$rw\",\"target\":\"$target\",\"rep\":$rep,\"iops\":${v:-0}}" >>"$OUT"
		done
	done
done

med() { grep "\"rw\":\"$1\",\"target\":\"$2\"" "$OUT" | sed 's/.*"iops":\([0-9]*\).*/\1/' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| fio 4 KiB, psync, 1 job | tmpfs | FUSE mount | LD_PRELOAD shim | shim/tmpfs | shim/FUSE |"
echo "|---|---:|---:|---:|---:|---:|"
for rw in randread randwrite; do
	a=$(med $rw tmpfs) b=$(med $rw fuse) c=$(med $rw preload)
	awk -v rw=$rw -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
		printf "| %s (IOPS) | %d | %d | %d | %.2f | %.2f |\n", rw, a, b, c, a ? c / a : 0, b ? c / b : 0 }'
done
