#!/usr/bin/env bash
# bench/before_after.sh - issue 19's before-and-after in one run: builds
# BASE (default 85fada2, the code before the two-fence log and the mount's
# mapped read replies) in a
# temporary directory, then measures it and this tree side by side,
# interleaved, REPS times (median kept):
#   - bench_fs: 4 KiB append + fsync (clwb and no flush), create + close and
#     unlink against tmpfs, 4 KiB random read against memcpy;
#   - poise bench append,create,unlink,mkdir,rename --path dax,tmpfs at 1 and
#     2 threads (BASE has no mkdir or rename workload: those rows are this
#     tree's alone);
#   - the mount: fio psync, one job, cache=none (every read reaches the
#     daemon), 1 MiB sequential read and write and 4 KiB random read, on
#     BASE's mount, this tree's (reply=map), and tmpfs.
# Prints markdown tables (bench/run.sh puts them in docs/BENCHMARKS.md);
# raw figures in bench/results/before_after.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-85fada2}
REPS=${BENCH_REPS:-3}
SECS=${BENCH_SECONDS:-1}
FIO_SECS=${FIO_SECS:-3}
NEW=$PWD/build
OLDSRC=$(mktemp -d /tmp/poise-base-XXXXXX)
T=$(mktemp -d /dev/shm/poise-ba-XXXXXX)
cleanup() {
	mountpoint -q "$T/mnt" && "$NEW/poise" umount "$T/mnt"
	rm -rf "$T" "$OLDSRC"
}
trap cleanup EXIT
git archive "$BASE" | tar -x -C "$OLDSRC"
echo "before_after: building $BASE..." >&2
make -C "$OLDSRC" -j2 all bench-bin >/dev/null 2>&1
OLD=$OLDSRC/build
RAW=bench/results/before_after.jsonl
mkdir -p bench/results "$T/mnt" "$T/tmpfs"
: >"$RAW"
export POISE_PREFAULT=1

fio_job() { # DIR RW BS -> "kib_s iops"
	fio --name=m --directory="$1" --filename=f --rw="$2" --bs="$3" --size=256m --ioengine=psync --numjobs=1 \
		--invalidate=0 --time_based --runtime="$FIO_SECS" --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; r=j["read"] if j["read"]["io_bytes"] else j["write"]; print(int(r["bw"]), int(r["iops"]))'
}

for rep in $(seq 1 "$REPS"); do
	for v in before after; do
		B=$([ $v = before ] && echo "$OLD" || echo "$NEW")
		echo "before_after: rep $rep, $v: bench_fs" >&2
		"$B/bench_fs" "$T/fs.json" >/dev/null 2>&1
		sed "s/^{/{\"set\":\"fs\",\"v\":\"$v\",\"rep\":$rep,/" "$T/fs.json" >>"$RAW"
		w=append,create,unlink
		[ $v = after ] && w=$w,mkdir,rename
		echo "before_after: rep $rep, $v: poise bench $w" >&2
		"$B/poise" bench "$w" --path dax,tmpfs --threads 1,2 --seconds "$SECS" --json 2>/dev/null |
			sed "s/^{/{\"set\":\"meta\",\"v\":\"$v\",\"rep\":$rep,/" >>"$RAW"
		echo "before_after: rep $rep, $v: the mount" >&2
		rm -f "$T/pool"
		"$B/poise" mkfs --size 1G "$T/pool" >/dev/null
		"$B/poise" mount -o cache=none "$T/pool" "$T/mnt"
		for job in read:1m write:1m randread:4k; do
			read -r bw iops < <(fio_job "$T/mnt" "${job%%:*}" "${job##*:}")
			echo "{\"set\":\"mount\",\"v\":\"$v\",\"rep\":$rep,\"job\":\"$job\",\"kib_s\":$bw,\"iops\":$iops}" >>"$RAW"
		done
		"$B/poise" umount "$T/mnt"
	done
	for job in read:1m write:1m randread:4k; do
		read -r bw iops < <(fio_job "$T/tmpfs" "${job%%:*}" "${job##*:}")
		echo "{\"set\":\"mount\",\"v\":\"tmpfs\",\"rep\":$rep,\"job\":\"$job\",\"kib_s\":$bw,\"iops\":$iops}" >>"$RAW"
	done
	rm -f "$T/tmpfs/f"
done

python3 - "$RAW" "$BASE" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = sys.argv[2]
def med(xs):
    return statistics.median(xs) if xs else 0
def fs(v, what, key="value"):
    return med([r[key] for r in rows if r["set"] == "fs" and r["v"] == v and r["what"] == what])
def meta(v, w, t, p):
    return med([r["ops_per_s"] for r in rows if r["set"] == "meta" and r["v"] == v and r["workload"] == w
                and r["threads"] == t and r["path"] == p])
def mnt(v, job, key):
    return med([r[key] for r in rows if r["set"] == "mount" and r["v"] == v and r["job"] == job])
def ratio(a, b):
    return "%.2f" % (a / b) if b else "-"
print("### Before and after, in one run (`bench/before_after.sh`, BASE %s, median of the repetitions)\n" % base)
print("| measure | before | after | after / before |")
print("|---|---:|---:|---:|")
for what, name in (("append_fsync_4k_ops", "4 KiB append + fsync, 1 thread, clwb (ops/s)"),
                   ("append_fsync_4k_ops_eadr", "4 KiB append + fsync, 1 thread, no flush (eADR) (ops/s)"),
                   ("create_vs_tmpfs", "create + close (ops/s)"), ("unlink_vs_tmpfs", "unlink (ops/s)")):
    a, b = fs("before", what), fs("after", what)
    print("| %s | %.0f | %.0f | %s |" % (name, a, b, ratio(b, a)))
for what, name in (("randread_4k_vs_memcpy", "4 KiB random read / memcpy (bench_fs)"),
                   ("create_vs_tmpfs", "create + close / tmpfs (bench_fs)"), ("unlink_vs_tmpfs", "unlink / tmpfs (bench_fs)")):
    a, b = fs("before", what, "ratio"), fs("after", what, "ratio")
    print("| %s | %.2f | %.2f | %s |" % (name, a, b, ratio(b, a)))
print("\n#### Metadata operations against tmpfs (`poise bench W --path dax,tmpfs --threads 1,2`, ops/s; every dax one durable)\n")
print("| workload | threads | before dax | after dax | tmpfs | before / tmpfs | after / tmpfs | after / before |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
plot = []
for w in ("append", "create", "unlink", "mkdir", "rename"):
    for t in (1, 2):
        a, b, m = meta("before", w, t, "dax"), meta("after", w, t, "dax"), meta("after", w, t, "tmpfs")
        print("| %s | %d | %s | %.0f | %.0f | %s | %s | %s |" % (w, t, "%.0f" % a if a else "-", b, m,
              ratio(a, m) if a else "-", ratio(b, m), ratio(b, a) if a else "-"))
        plot.append((w + " x" + str(t), a, b, m))
with open("bench/results/metadata.dat", "w") as f:
    f.write("# workload before after tmpfs\n")
    for n, a, b, m in plot:
        f.write('"%s" %.0f %.0f %.0f\n' % (n, a, b, m))
print("\n#### The mount (`poise mount -o cache=none`, fio psync, one job, 256 MiB file)\n")
print("| workload | before | after | tmpfs | after / before | before / tmpfs | after / tmpfs |")
print("|---|---:|---:|---:|---:|---:|---:|")
for job, name, key, unit in (("read:1m", "1 MiB sequential read", "kib_s", "MiB/s"),
                             ("write:1m", "1 MiB sequential write", "kib_s", "MiB/s"),
                             ("randread:4k", "4 KiB random read", "iops", "IOPS")):
    a, b, m = mnt("before", job, key), mnt("after", job, key), mnt("tmpfs", job, key)
    sh = (lambda x: "%.0f MiB/s" % (x / 1024)) if key == "kib_s" else (lambda x: "%.0f IOPS" % x)
    print("| %s | %s | %s | %s | %s | %s | %s |" % (name, sh(a), sh(b), sh(m), ratio(b, a), ratio(a, m), ratio(b, m)))
PY
if command -v gnuplot >/dev/null; then
	gnuplot <<'GP'
set terminal pngcairo size 900,540 font ",11"
set output "docs/plots/metadata.png"
set title "Metadata operations per second: poise (durable) before and after, and tmpfs"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "operations per second"
set yrange [0:*]
set xtics rotate by -30
set grid ytics
set key top right
plot "bench/results/metadata.dat" using 2:xtic(1) title "before", "" using 3 title "after", "" using 4 title "tmpfs"
GP
fi
