#!/usr/bin/env bash
# bench/matrix.sh - the benchmark matrix behind `make bench`: runs
# `poise bench` over the points below, every path of a point in the same
# invocation (interleaved), each point REPS times (the repetitions
# interleaved too), keeps the median, writes
#   bench/results/matrix-raw.jsonl   every run, tagged with section, variant, rep
#   bench/results/matrix.json        the medians, one JSON object per line
#   docs/plots/*.png                 gnuplot plots
#   bench/results/matrix.md          the tables (bench/run.sh puts them in
#                                    docs/BENCHMARKS.md)
# Quick by default (about 2 minutes); FULL=1 for longer points and more
# repetitions.  BENCH_SECONDS and BENCH_REPS override.
set -euo pipefail
cd "$(dirname "$0")/.."
P=build/poise
R=bench/results
PLOTS=docs/plots
mkdir -p "$R" "$PLOTS"
if [ "${FULL:-0}" = 1 ]; then
	SECS=${BENCH_SECONDS:-1}
	REPS=${BENCH_REPS:-5}
else
	SECS=${BENCH_SECONDS:-0.3}
	REPS=${BENCH_REPS:-3}
fi
export POISE_PREFAULT=1 # the temporary pools: no first-touch faults (real pmem has none)
if [ "${FULL:-0}" = 1 ]; then
	THREADS=1,2,4,8,16,32,64,128,256,512,1000
	WTHREADS=1,2
else
	THREADS=1,2,4,16,64,256,1000
	WTHREADS=1
fi
RAW=$R/matrix-raw.jsonl
REPORT_ONLY=${REPORT_ONLY:-0} # 1: redo the medians, tables and plots from the raw runs
[ "$REPORT_ONLY" = 1 ] || : >"$RAW"

# run1 SECTION VARIANT REP ARGS...: one invocation, its lines tagged
run1() {
	[ "$REPORT_ONLY" = 1 ] && return 0
	local sec=$1 var=$2 rep=$3; shift 3
	$P bench "$@" --seconds "$SECS" --json |
		sed "s/^{/{\"section\":\"$sec\",\"variant\":\"$var\",\"rep\":$rep,/" >>"$RAW"
}
# run SECTION VARIANT ARGS...: REPS invocations
run() {
	local sec=$1 var=$2 rep; shift 2
	for rep in $(seq 1 "$REPS"); do run1 "$sec" "$var" "$rep" "$@"; done
}

echo "matrix: O_DIRECT 4 KiB random read and write, dax/block/tmpfs/fuse, 1-1000 threads..." >&2
for t in ${THREADS//,/ }; do
	run odirect - randread,randwrite --path dax,block,tmpfs,fuse --odirect --threads "$t"
done
echo "matrix: the read path against its limits (raw, mcsafe, dax, tmpfs)..." >&2
run limits - randread --path raw,mcsafe,dax,tmpfs --bs 64,4K,2M
echo "matrix: the error path..." >&2
for rep in $(seq 1 "$REPS"); do # the variants interleaved too
	run1 errors none "$rep" randread --path raw,mcsafe,dax --bs 4K
	run1 errors bad512 "$rep" randread --path mcsafe,dax --bs 4K --bad-elsewhere 512
	run1 errors badinfile "$rep" randread --path mcsafe,dax --bs 4K --bad-in-file
done
echo "matrix: every workload, dax against tmpfs and fuse..." >&2
run workloads - seqread,seqwrite,randread,randwrite,append,mixed,create,stat,unlink,mkdir,rename --path dax,tmpfs,fuse --threads $WTHREADS

# medians: key = section, variant, workload, bs, threads, path; the run with
# the median ops_per_s gives its percentiles too
awk '
function get(l, k,   m) {
	if (match(l, "\"" k "\":\"[^\"]*\"")) { m = substr(l, RSTART, RLENGTH); sub("^\"" k "\":\"", "", m); sub("\"$", "", m); return m }
	if (match(l, "\"" k "\":[-0-9.eE+a-z]*")) { m = substr(l, RSTART, RLENGTH); sub("^\"" k "\":", "", m); return m }
	return ""
}
{
	key = get($0, "section") SUBSEP get($0, "variant") SUBSEP get($0, "workload") SUBSEP get($0, "bs") SUBSEP get($0, "threads") SUBSEP get($0, "path")
	if (!(key in n)) order[++nk] = key
	n[key]++; v[key, n[key]] = get($0, "ops_per_s") + 0; line[key, n[key]] = $0
}
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]; c = n[k]
		for (a = 1; a <= c; a++) idx[a] = a
		for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[k, idx[b]] < v[k, idx[a]]) { t = idx[a]; idx[a] = idx[b]; idx[b] = t }
		m = idx[int((c + 1) / 2)]
		l = line[k, m]; sub(/"rep":[0-9]+,/, "\"reps\":" c ",", l); print l
	}
}' "$RAW" >"$R/matrix.json"

# tables and plot data
awk -v plots="$PLOTS" -v R="$R" '
function get(l, k,   m) {
	if (match(l, "\"" k "\":\"[^\"]*\"")) { m = substr(l, RSTART, RLENGTH); sub("^\"" k "\":\"", "", m); sub("\"$", "", m); return m }
	if (match(l, "\"" k "\":[-0-9.eE+a-z]*")) { m = substr(l, RSTART, RLENGTH); sub("^\"" k "\":", "", m); return m }
	return ""
}
{
	s = get($0, "section"); var = get($0, "variant"); w = get($0, "workload"); bs = get($0, "bs"); t = get($0, "threads"); p = get($0, "path")
	ops[s, var, w, bs, t, p] = get($0, "ops_per_s") + 0
	p50[s, var, w, bs, t, p] = get($0, "p50_ns"); p99[s, var, w, bs, t, p] = get($0, "p99_ns"); p999[s, var, w, bs, t, p] = get($0, "p999_ns")
	if (s == "odirect" && !(t in seen)) { seen[t] = 1; th[++nt] = t }
}
function r(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
function f(x) { return sprintf("%.0f", x) }
END {
	out = R "/matrix.md"
	for (wi = 1; wi <= 2; wi++) {
		w = wi == 1 ? "randread" : "randwrite"
		dat = R "/odirect-" w ".dat"
		print "# threads dax block tmpfs dax_p50 dax_p99 dax_p999 block_p50 block_p99 block_p999 tmpfs_p50 tmpfs_p99 tmpfs_p999 fuse fuse_p99" > dat
		printf "\n### O_DIRECT 4 KiB %s (ops/s, median of the repetitions)\n\n", (w == "randread" ? "random read" : "random write") > out
		print "| threads | dax | block | tmpfs | fuse | dax/block | dax/tmpfs | dax/fuse | dax p99 ns | block p99 ns | tmpfs p99 ns | fuse p99 ns |" > out
		print "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" > out
		peak = 0
		for (i = 1; i <= nt; i++) { x = ops["odirect", "-", w, 4096, th[i], "dax"]; if (x > peak) peak = x }
		for (i = 1; i <= nt; i++) {
			t = th[i]; d = ops["odirect", "-", w, 4096, t, "dax"]; b = ops["odirect", "-", w, 4096, t, "block"]; m = ops["odirect", "-", w, 4096, t, "tmpfs"]; u = ops["odirect", "-", w, 4096, t, "fuse"]
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t, f(d), f(b), f(m), f(u), r(d, b), r(d, m), r(d, u), p99["odirect", "-", w, 4096, t, "dax"], p99["odirect", "-", w, 4096, t, "block"], p99["odirect", "-", w, 4096, t, "tmpfs"], p99["odirect", "-", w, 4096, t, "fuse"] > out
			print t, d, b, m, p50["odirect", "-", w, 4096, t, "dax"], p99["odirect", "-", w, 4096, t, "dax"], p999["odirect", "-", w, 4096, t, "dax"], p50["odirect", "-", w, 4096, t, "block"], p99["odirect", "-", w, 4096, t, "block"], p999["odirect", "-", w, 4096, t, "block"], p50["odirect", "-", w, 4096, t, "tmpfs"], p99["odirect", "-", w, 4096, t, "tmpfs"], p999["odirect", "-", w, 4096, t, "tmpfs"], u, p99["odirect", "-", w, 4096, t, "fuse"] > dat
		}
		last = ops["odirect", "-", w, 4096, 1000, "dax"]
		printf "\ndax at 1000 threads: %s of its own peak (%s ops/s); target >= 0.80.\n", r(last, peak), f(peak) > out
		close(dat)
	}
	printf "\n### The read path against its limits (1 thread, random reads, ops/s)\n\n" > out
	print "| bs | raw | mcsafe | dax | tmpfs | dax/raw | mcsafe/raw | dax/tmpfs |" > out
	print "|---:|---:|---:|---:|---:|---:|---:|---:|" > out
	split("64 4096 2097152", sizes, " ")
	for (i = 1; i <= 3; i++) {
		bs = sizes[i]; a = ops["limits", "-", "randread", bs, 1, "raw"]; mc = ops["limits", "-", "randread", bs, 1, "mcsafe"]; d = ops["limits", "-", "randread", bs, 1, "dax"]; m = ops["limits", "-", "randread", bs, 1, "tmpfs"]
		printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", bs, f(a), f(mc), f(d), f(m), r(d, a), r(mc, a), r(d, m) > out
	}
	printf "\nTargets: dax/raw >= 0.85 at 4 KiB and >= 0.95 at 2 MiB; dax/tmpfs >= 4 at 4 KiB; mcsafe/raw >= 0.98 (overhead <= 2%%).\n" > out
	dat = R "/errors.dat"
	print "# variant mcsafe dax" > dat
	printf "\n### The error path (1 thread, 4 KiB random reads, ops/s)\n\n" > out
	print "| bad sectors | raw | mcsafe | dax | mcsafe/raw | dax vs none |" > out
	print "|---|---:|---:|---:|---:|---:|" > out
	base = ops["errors", "none", "randread", 4096, 1, "dax"]; rawn = ops["errors", "none", "randread", 4096, 1, "raw"]
	split("none bad512 badinfile", vars, " "); split("none|512 elsewhere in the pool|one in the file (reads step around its block)", names, "|")
	for (i = 1; i <= 3; i++) {
		v = vars[i]; mc = ops["errors", v, "randread", 4096, 1, "mcsafe"]; d = ops["errors", v, "randread", 4096, 1, "dax"]
		printf "| %s | %s | %s | %s | %s | %s |\n", names[i], (v == "none" ? f(rawn) : "-"), f(mc), f(d), r(mc, rawn), r(d, base) > out
		printf "\"%s\" %s %s\n", names[i], mc, d > dat
	}
	printf "\nTarget: mcsafe overhead over raw <= 5%% with 512 ranges.\n" > out
	close(dat)
	printf "\n### Every workload, dax against tmpfs and the FUSE mount (4 KiB, ops/s)\n\n" > out
	print "| workload | threads | dax | tmpfs | fuse | dax/tmpfs | dax/fuse | dax p50 ns | dax p99 ns | tmpfs p50 ns | fuse p50 ns |" > out
	print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" > out
	split("seqread seqwrite randread randwrite append mixed create stat unlink mkdir rename", wl, " ")
	for (i = 1; i <= 11; i++) for (t = 1; t <= 2; t++) {
		w = wl[i]
		if (!(("workloads", "-", w, 4096, t, "dax") in ops)) continue
		d = ops["workloads", "-", w, 4096, t, "dax"]; m = ops["workloads", "-", w, 4096, t, "tmpfs"]; u = ops["workloads", "-", w, 4096, t, "fuse"]
		printf "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w, t, f(d), f(m), f(u), r(d, m), r(d, u), p50["workloads", "-", w, 4096, t, "dax"], p99["workloads", "-", w, 4096, t, "dax"], p50["workloads", "-", w, 4096, t, "tmpfs"], p50["workloads", "-", w, 4096, t, "fuse"] > out
	}
}' "$R/matrix.json"

# plots
for w in randread randwrite; do
	gnuplot <<GP
set terminal pngcairo size 900,540 font ",11"
set output "$PLOTS/odirect-$w.png"
set title "O_DIRECT 4 KiB $w: dax (poise) vs block (odirect=block) vs tmpfs (kernel) vs fuse (poise mount)"
set logscale x 2
set logscale y 10
set xlabel "threads"
set ylabel "operations per second"
set key top left
set grid
plot "$R/odirect-$w.dat" using 1:2 with linespoints lw 2 title "dax", \
     "" using 1:3 with linespoints lw 2 title "block", \
     "" using 1:4 with linespoints lw 2 title "tmpfs", \
     "" using 1:14 with linespoints lw 2 title "fuse"
GP
	gnuplot <<GP
set terminal pngcairo size 900,540 font ",11"
set output "$PLOTS/latency-$w.png"
set title "O_DIRECT 4 KiB $w latency percentiles (sampled)"
set logscale x 2
set logscale y 10
set xlabel "threads"
set ylabel "nanoseconds"
set key top left
set grid
plot "$R/odirect-$w.dat" using 1:5 with linespoints title "dax p50", "" using 1:6 with linespoints title "dax p99", \
     "" using 1:7 with linespoints title "dax p99.9", "" using 1:8 with linespoints title "block p50", \
     "" using 1:9 with linespoints title "block p99", "" using 1:10 with linespoints title "block p99.9", \
     "" using 1:11 with linespoints title "tmpfs p50", "" using 1:12 with linespoints title "tmpfs p99"
GP
done
gnuplot <<GP
set terminal pngcairo size 900,540 font ",11"
set output "$PLOTS/errorpath.png"
set title "4 KiB random reads, 1 thread: with no poison, 512 bad sectors elsewhere, one in the file"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "operations per second"
set yrange [0:*]
set grid ytics
set key top right
plot "$R/errors.dat" using 2:xtic(1) title "mcsafe", "" using 3 title "dax"
GP
echo "matrix: wrote $R/matrix.json, $R/matrix.md and $PLOTS/*.png" >&2
