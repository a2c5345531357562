#!/usr/bin/env bash
# bench/rocksdb.sh - RocksDB's db_bench with O_DIRECT reads, flushes and
# compactions (the 2016 question asked with a real database): fillrandom,
# readrandom and readwhilewriting at 1, 4 and 16 threads on five targets in
# one run:
#   shim        the LD_PRELOAD shim, O_DIRECT on the DAX path (poise's design)
#   shim-block  the shim with POISE_ODIRECT=block (the 2016 patch's design:
#               O_DIRECT data through the kernel's block path)
#   mount       the FUSE mount (odirect=dax)
#   mount-block the FUSE mount with -o odirect=block
#   tmpfs       the kernel's tmpfs (this kernel takes O_DIRECT on tmpfs: the
#               same flags; tmpfs makes nothing durable)
# The targets interleave in every repetition; each run starts from an empty
# database; the median of REPS is kept.  A small block cache (1 MiB) makes
# the reads reach the files, a 1 MiB write buffer that the data is in SST
# files by the time it is read.  Writes bench/results/rocksdb.json,
# docs/plots/rocksdb.png and prints a markdown table.
# ROCKS_NUM keys in all (default 40000, split between the threads),
# BENCH_REPS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
P=$PWD/build/poise
SHIM=$PWD/build/libpoise-preload.so
NUM=${ROCKS_NUM:-40000}
REPS=${BENCH_REPS:-3}
THREADS=${ROCKS_THREADS:-"1 4 16"}
TARGETS="shim shim-block mount mount-block tmpfs"
T=$(mktemp -d /dev/shm/poise-rocks-XXXXXX)
cleanup() {
	mountpoint -q "$T/mnt" && "$P" umount "$T/mnt"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/mnt"
OUT=bench/results/rocksdb.json
: >"$OUT"

# one db_bench run on a fresh target; prints "bench ops/sec" lines
run() {
	local target=$1 threads=$2 db pre="" od=dax direct="--use_direct_reads=1 --use_direct_io_for_flush_and_compaction=1"
	rm -rf "$T/tmpfs" "$T/pool"
	case $target in
	shim | shim-block)
		"$P" mkfs --size 2G "$T/pool" >/dev/null
		db=/poise/db pre=$SHIM
		[ "$target" = shim-block ] && od=block
		;;
	mount | mount-block)
		"$P" mkfs --size 2G "$T/pool" >/dev/null
		[ "$target" = mount-block ] && od=block
		"$P" mount -o "odirect=$od" "$T/pool" "$T/mnt"
		db=$T/mnt/db
		;;
	tmpfs)
		mkdir -p "$T/tmpfs"
		db=$T/tmpfs/db
		;;
	esac
	POISE_POOL=$T/pool POISE_PATH=/poise POISE_ODIRECT=$od LD_PRELOAD=$pre \
		db_bench --db="$db" --benchmarks=fillrandom,readrandom,readwhilewriting --num="$NUM" --writes=$((NUM / threads)) --reads=$((NUM / threads)) \
		--threads="$threads" --cache_size=1048576 --write_buffer_size=1048576 --compression_type=none --value_size=100 $direct 2>&1 |
		awk '$2 == ":" && $1 ~ /^(fillrandom|readrandom|readwhilewriting)$/ { print $1, int($5) }'
	mountpoint -q "$T/mnt" && "$P" umount "$T/mnt"
	return 0
}

for rep in $(seq 1 "$REPS"); do
	for th in $THREADS; do
		for target in $TARGETS; do
			echo "bench: rocksdb rep $rep, $th threads, $target" >&2
			run "$target" "$th" | while read -r b v; do
				echo "{\"bench\":\"rocksdb\",\"workload\":\"$b\",\"threads\":$th,\"target\":\"$target\",\"rep\":$rep,\"ops\":$v}" >>"$OUT"
			done
		done
	done
done

med() { grep "\"workload\":\"$1\",\"threads\":$2,\"target\":\"$3\"," "$OUT" | sed 's/.*"ops":\([0-9]*\).*/\1/' | sort -n |
	awk '{a[NR]=$1} END {print NR ? a[int((NR+1)/2)] : 0}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
: >bench/results/rocksdb.dat
echo "| db_bench (ops/s) | threads | shim (dax) | shim odirect=block | mount (dax) | mount odirect=block | tmpfs | shim / shim-block | shim / tmpfs | mount / mount-block |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for w in fillrandom readrandom readwhilewriting; do
	for th in $THREADS; do
		s=$(med $w $th shim) sb=$(med $w $th shim-block) m=$(med $w $th mount) mb=$(med $w $th mount-block) t=$(med $w $th tmpfs)
		echo "| $w | $th | $s | $sb | $m | $mb | $t | $(ratio "$s" "$sb") | $(ratio "$s" "$t") | $(ratio "$m" "$mb") |"
		echo "$w-$th $s $sb $m $mb $t" >>bench/results/rocksdb.dat
	done
done

gnuplot <<GP
set terminal pngcairo size 1000,560 font ",11"
set output "docs/plots/rocksdb.png"
set termoption noenhanced
set title "RocksDB db_bench, O_DIRECT reads, flushes and compactions (median of $REPS)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "operations per second"
set yrange [0:*]
set grid ytics
set xtics rotate by -30
set key top left
plot "bench/results/rocksdb.dat" using 2:xtic(1) title "shim (dax)", "" using 3 title "shim odirect=block", \
     "" using 4 title "mount (dax)", "" using 5 title "mount odirect=block", "" using 6 title "tmpfs"
GP
