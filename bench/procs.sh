#!/usr/bin/env bash
# bench/procs.sh - many processes on one pool (issue 18): 1, 2, 4 and 8
# processes (fio jobs are processes: no --thread) of 4 KiB random read,
# 4 KiB overwrite (random writes inside a laid-out file), 4 KiB append (64 MiB, each
# process a new file), and create+unlink pairs (bench_create), on three
# targets in one run: a tmpfs directory (the kernel), a poise FUSE mount
# alone, and the same mount with every process under the LD_PRELOAD shim
# (the direct path).  The targets interleaved in every repetition, the
# median of REPS kept.  Writes bench/results/procs.json and prints a
# markdown table.  BENCH_SECONDS_PROCS (default 2) per run.
#
# The emulated pool is made to behave as real pmem does on first use: its
# file lives on a tmpfs of its own mounted huge=always (where this user may
# mount one: root), so every process maps it by 2 MiB faults as DAX maps
# pmem, and the daemon opens it with POISE_PREFAULT=1, so no page is zeroed
# by the kernel at its first fault.  On this machine's VM a process's first
# touch of a 4 KiB page costs about 6.5 us even after MADV_POPULATE_WRITE
# (shadow page tables), which an append into fresh space pays per 4 KiB and
# an overwrite of a warm file never does.  BENCH_POOL_HUGE=0 keeps the pool
# in /dev/shm (4 KiB pages); the table's heading says which one ran.
set -euo pipefail
cd "$(dirname "$0")/.."
P=$PWD/build/poise
SHIM=$PWD/build/libpoise-preload.so
BC=$PWD/build/bench_create
SECS=${BENCH_SECONDS_PROCS:-2}
REPS=${BENCH_REPS:-3}
NS=${BENCH_PROCS:-1 2 4 8}
T=$(mktemp -d /dev/shm/poise-procs-XXXXXX)
cleanup() {
	mountpoint -q "$T/mnt" && "$P" umount "$T/mnt"
	mountpoint -q "$T/hp" && umount "$T/hp"
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/tmpfs" "$T/mnt" "$T/hp"
POOLDIR=$T POOLKIND="/dev/shm, 4 KiB pages"
if [ "${BENCH_POOL_HUGE:-1}" = 1 ] && mount -t tmpfs -o huge=always,size=1100m poise-bench "$T/hp" 2>/dev/null; then
	POOLDIR=$T/hp POOLKIND="tmpfs huge=always, 2 MiB pages"
fi
"$P" mkfs --size 1G "$POOLDIR/pool" >/dev/null
POISE_PREFAULT=1 "$P" mount "$POOLDIR/pool" "$T/mnt"
echo "pool: $POOLKIND, prefaulted by the daemon" >&2
OUT=bench/results/procs.json
: >"$OUT"

dir_of() { case $1 in tmpfs) echo "$T/tmpfs" ;; *) echo "$T/mnt" ;; esac; }
pre_of() { [ "$1" = shim ] && echo "$SHIM" || true; }

# fio_ops WORKLOAD N TARGET: one fio run of N processes, total IOPS
fio_ops() {
	local w=$1 n=$2 t=$3 d args
	d=$(dir_of "$t")
	case $w in
	randread) args="--filename=$d/shared.dat --rw=randread --size=64m --time_based --runtime=$SECS" ;;
	overwrite) args="--filename=$d/shared.dat --rw=randwrite --size=64m --time_based --runtime=$SECS" ;;
	append) rm -f "$d"/app.*; args="--filename_format=app.\$jobnum --directory=$d --rw=write --size=64m --fallocate=none" ;;
	esac
	# shellcheck disable=SC2086
	LD_PRELOAD=$(pre_of "$t") fio --verify_state_save=0 --name=b $args --bs=4k --ioengine=psync --numjobs="$n" \
		--group_reporting --output-format=json 2>/dev/null |
		awk -v k="$([ "$w" = randread ] && echo read || echo write)" '
			$0 ~ "\"" k "\" *: *\\{" { inside = 1 }
			inside && !done && /"iops" *:/ { gsub(/[^0-9.]/, "", $0); print int($0); done = 1 }'
}

# lay out the shared file once per target (fio would do it inside the timed run)
for t in tmpfs mount; do
	fio --verify_state_save=0 --name=lay --filename="$(dir_of $t)/shared.dat" --rw=write --bs=1m --size=64m \
		--ioengine=psync >/dev/null 2>&1
done
for rep in $(seq 1 "$REPS"); do
	for n in $NS; do
		for w in randread overwrite append create; do
			for t in tmpfs mount shim; do
				if [ "$w" = create ]; then
					mkdir -p "$(dir_of $t)/c"
					v=$(LD_PRELOAD=$(pre_of "$t") "$BC" "$(dir_of $t)/c" "$n" "$SECS")
				else
					v=$(fio_ops "$w" "$n" "$t")
				fi
				echo "{\"bench\":\"procs\",\"w\":\"$w\",\"procs\":$n,\"target\":\"$t\",\"rep\":$rep,\"ops\":${v:-0}}" >>"$OUT"
			done
		done
	done
done

med() { grep "\"w\":\"$1\",\"procs\":$2,\"target\":\"$3\"" "$OUT" | sed 's/.*"ops":\([0-9]*\).*/\1/' | sort -n |
	awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "Pool: $POOLKIND, prefaulted by the daemon."
echo
echo "| workload | procs | tmpfs | mount | shim | shim/mount | shim/tmpfs | shim per process / 1 process |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for w in randread overwrite append create; do
	one=$(med "$w" 1 shim)
	for n in $NS; do
		a=$(med "$w" "$n" tmpfs) b=$(med "$w" "$n" mount) c=$(med "$w" "$n" shim)
		awk -v w=$w -v n="$n" -v a="$a" -v b="$b" -v c="$c" -v one="$one" 'BEGIN {
			cores = 2; per = n < cores ? n : cores
			printf "| %s | %d | %d | %d | %d | %.2f | %.2f | %.2f |\n", w, n, a, b, c, b ? c / b : 0, a ? c / a : 0,
				one ? c / per / one : 0 }'
	done
done
