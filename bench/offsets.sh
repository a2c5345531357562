#!/usr/bin/env bash
# bench/offsets.sh - read/write at the descriptor's offset under the shim,
# on a poise mount: BASE (default 96cad8c, the shim before it kept the
# offset in the process, with two lseek calls around every read and
# write) against this tree, interleaved, REPS times, median kept.  fio's
# sync engine (read(2)/write(2), lseek(2) only where the next offset is
# not where the last call ended) for 4 KiB sequential read, sequential
# write and random read (an lseek before each read), and psync (pread) as
# the control that neither shim changes.  Prints a markdown table.
# Usage: bench/offsets.sh   (BASE, BENCH_REPS, FIO_SECS change it)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-96cad8c}
REPS=${BENCH_REPS:-3}
SECS=${FIO_SECS:-2}
NEW=$PWD/build
OLDSRC=$(mktemp -d /tmp/poise-base-XXXXXX)
T=$(mktemp -d /dev/shm/poise-off-XXXXXX)
cleanup() {
	mountpoint -q "$T/mnt" && "$NEW/poise" umount "$T/mnt"
	rm -rf "$T" "$OLDSRC"
}
trap cleanup EXIT
git archive "$BASE" | tar -x -C "$OLDSRC"
echo "offsets: building $BASE..." >&2
make -C "$OLDSRC" -j2 build/libpoise-preload.so >/dev/null 2>&1
make -s -j2 all >/dev/null
mkdir -p "$T/mnt"
"$NEW/poise" mkfs --size 2G "$T/pool" >/dev/null
POISE_PREFAULT=1 "$NEW/poise" mount "$T/pool" "$T/mnt"
fio --name=p --directory="$T/mnt" --filename=f --size=256m --rw=write --bs=1m --ioengine=psync >/dev/null 2>&1
run() { # SHIM RW ENGINE -> IOPS
	LD_PRELOAD=$1 fio --name=m --directory="$T/mnt" --filename=f --rw="$2" --bs=4k --size=256m --ioengine="$3" \
		--numjobs=1 --invalidate=0 --time_based --runtime="$SECS" --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; r=j["read"] if j["read"]["io_bytes"] else j["write"]; print(int(r["iops"]))'
}
RAW=$T/raw
for rep in $(seq 1 "$REPS"); do
	for job in read:sync write:sync randread:sync read:psync; do
		echo "offsets: rep $rep, $job" >&2
		echo "$job old $(run "$OLDSRC/build/libpoise-preload.so" "${job%%:*}" "${job##*:}")" >>"$RAW"
		echo "$job new $(run "$NEW/libpoise-preload.so" "${job%%:*}" "${job##*:}")" >>"$RAW"
	done
done
python3 - "$RAW" "$BASE" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(job, v):
    return statistics.median(int(r[2]) for r in rows if r[0] == job and r[1] == v)
print(f"| fio 4 KiB, one job, under the shim | before ({sys.argv[2]}) | after | after / before |")
print("|---|---:|---:|---:|")
names = {"read:sync": "sequential read(2)", "write:sync": "sequential write(2)",
         "randread:sync": "random lseek(2) + read(2)", "read:psync": "sequential pread(2) (control)"}
for job in ["read:sync", "write:sync", "randread:sync", "read:psync"]:
    o, n = med(job, "old"), med(job, "new")
    print(f"| {names[job]} | {o} IOPS | {n} IOPS | {n / o:.2f} |")
PY
