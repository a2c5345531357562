/*
 * cmd_bench.c - `poise bench`: one driver for every path (bench.c runs
 * it).  Arguments may list several workloads, paths, block sizes and
 * thread counts (comma lists); every combination runs, in the order given,
 * the paths interleaved innermost so that peers are measured side by side.
 * Output: a table, or with --json one JSON object per run on one line.
 */
#include "cli/cli.h"
#include "cli/bench.h"
#include "poise.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int bench_main(const struct cli_cmd *c, int argc, char **argv);

const struct cli_cmd cli_bench_cmds[] = {
	{"bench", "bench [WORKLOADS] [--path PATHS] [--bs SIZES] [--threads NS] [--seconds S] [--odirect] "
		  "[--bad-elsewhere N] [--bad-in-file] [--pool POOL] [--dir DIR] [--json]",
	 "Measure a workload on a path.  WORKLOADS (default randread): seqread,\n"
	 "seqwrite, randread, randwrite, append, mixed (70% reads), create, stat,\n"
	 "unlink, mkdir, rename.  PATHS (default dax): raw (memcpy on the pool mapping: the limit),\n"
	 "mcsafe (the machine-check-safe copy alone), dax (the library), block (the\n"
	 "library's block path, O_DIRECT through the kernel), tmpfs (pread/pwrite\n"
	 "system calls on a file in DIR, default /dev/shm: the kernel peer), fuse\n"
	 "(the same calls on a poise FUSE mount: DIR, or a temporary pool mounted\n"
	 "for the run).\n"
	 "--bs 64..2M (default 4K), --threads 1..1000 (default 1), --seconds\n"
	 "(default 3).  Each option takes a comma list; every combination runs,\n"
	 "the paths interleaved.  Without --pool one temporary emulated pool in\n"
	 "/dev/shm, sized for the largest point, serves every run and is removed\n"
	 "afterwards; with --pool the runs' files are made in that pool and removed.  --json prints one\n"
	 "object per run on one line: workload, bs, threads, path, odirect, ops,\n"
	 "seconds, ops_per_s, mb_per_s, p50_ns, p99_ns, p999_ns, errors.\n"
	 "The error path: --bad-elsewhere N poisons N sectors of the pool away from\n"
	 "the file; --bad-in-file poisons one sector in the file's middle, and the\n"
	 "random reads and writes step around its block (pool paths only).\n",
	 bench_main},
	{NULL, NULL, NULL, NULL},
};

#define MAXL 32

/* Split a comma list into up to MAXL items, each looked up by cb. */
static int parse_list(const char *s, uint64_t *out, int *n, int (*one)(const char *, uint64_t *))
{
	char *dup = strdup(s), *save = NULL;
	if (!dup)
		return -1;
	*n = 0;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n == MAXL || one(t, &out[*n]) < 0) {
			free(dup);
			return -1;
		}
		(*n)++;
	}
	free(dup);
	return *n ? 0 : -1;
}

static int one_workload(const char *s, uint64_t *v)
{
	for (uint64_t i = 0; i < W_COUNT; i++)
		if (!strcmp(s, bench_workload_names[i])) {
			*v = i;
			return 0;
		}
	return -1;
}

static int one_path(const char *s, uint64_t *v)
{
	for (uint64_t i = 0; i < P_COUNT; i++)
		if (!strcmp(s, bench_path_names[i])) {
			*v = i;
			return 0;
		}
	return -1;
}

static int one_size(const char *s, uint64_t *v)
{
	return cli_parse_size(s, v) < 0 || *v < 64 || *v > (2u << 20) ? -1 : 0;
}

static int one_threads(const char *s, uint64_t *v)
{
	return cli_parse_u64(s, v) < 0 || *v < 1 || *v > 1000 ? -1 : 0;
}

static void print_json(const struct bench_cfg *c, const struct bench_result *r)
{
	printf("{\"workload\":\"%s\",\"bs\":%llu,\"threads\":%u,\"path\":\"%s\",\"odirect\":%s,\"ops\":%llu,"
	       "\"seconds\":%.4f,\"ops_per_s\":%.1f,\"mb_per_s\":%.2f,\"p50_ns\":%llu,\"p99_ns\":%llu,"
	       "\"p999_ns\":%llu,\"errors\":%llu}\n",
	       bench_workload_names[c->w], (unsigned long long)c->bs, c->threads, bench_path_names[c->path],
	       r->odirect ? "true" : "false", (unsigned long long)r->ops, r->seconds,
	       r->ops_per_s, r->mb_per_s, (unsigned long long)r->p50_ns, (unsigned long long)r->p99_ns,
	       (unsigned long long)r->p999_ns, (unsigned long long)r->errors);
	fflush(stdout);
}

static void print_row(const struct bench_cfg *c, const struct bench_result *r)
{
	printf("%-9s %7llu %7u %-6s %12.0f %10.1f %9llu %9llu %9llu %6llu\n", bench_workload_names[c->w],
	       (unsigned long long)c->bs, c->threads, bench_path_names[c->path], r->ops_per_s, r->mb_per_s,
	       (unsigned long long)r->p50_ns, (unsigned long long)r->p99_ns, (unsigned long long)r->p999_ns,
	       (unsigned long long)r->errors);
	fflush(stdout);
}

static int bench_main(const struct cli_cmd *c, int argc, char **argv)
{
	uint64_t ws[MAXL] = {W_RANDREAD}, ps[MAXL] = {P_DAX}, bss[MAXL] = {4096}, ts[MAXL] = {1};
	int nw = 1, np = 1, nbs = 1, nt = 1, json = 0, odirect = 0, have_w = 0;
	double seconds = 3;
	const char *pool = NULL, *dir = NULL;
	uint64_t bad_elsewhere = 0;
	int bad_in_file = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--odirect")) {
			odirect = 1;
		} else if (!strcmp(a, "--path") && v) {
			if (parse_list(v, ps, &np, one_path) < 0)
				return cli_usage(c, "bench: bad --path '%s' (raw, mcsafe, dax, block, tmpfs, fuse)", v);
			i++;
		} else if (!strcmp(a, "--bs") && v) {
			if (parse_list(v, bss, &nbs, one_size) < 0)
				return cli_usage(c, "bench: bad --bs '%s' (64 to 2M)", v);
			i++;
		} else if (!strcmp(a, "--threads") && v) {
			if (parse_list(v, ts, &nt, one_threads) < 0)
				return cli_usage(c, "bench: bad --threads '%s' (1 to 1000)", v);
			i++;
		} else if (!strcmp(a, "--seconds") && v) {
			char *end;
			seconds = strtod(v, &end);
			if (*end || !(seconds > 0) || seconds > 3600)
				return cli_usage(c, "bench: bad --seconds '%s' (more than 0, at most 3600)", v);
			i++;
		} else if (!strcmp(a, "--bad-elsewhere") && v) {
			if (cli_parse_u64(v, &bad_elsewhere) < 0 || bad_elsewhere > 100000)
				return cli_usage(c, "bench: bad --bad-elsewhere '%s' (0 to 100000)", v);
			i++;
		} else if (!strcmp(a, "--bad-in-file")) {
			bad_in_file = 1;
		} else if (!strcmp(a, "--pool") && v) {
			pool = argv[++i];
		} else if (!strcmp(a, "--dir") && v) {
			dir = argv[++i];
		} else if (a[0] == '-') {
			return cli_usage(c, "bench: unknown option '%s'", a);
		} else if (!have_w) {
			if (parse_list(a, ws, &nw, one_workload) < 0)
				return cli_usage(c, "bench: unknown workload in '%s'", a);
			have_w = 1;
		} else {
			return cli_usage(c, "bench: unexpected argument '%s'", a);
		}
	}
	/* refuse combinations that make no sense before running anything */
	for (int w = 0; w < nw; w++)
		for (int p = 0; p < np; p++) {
			if ((bad_elsewhere || bad_in_file) && (ps[p] == P_TMPFS || ps[p] == P_FUSE || ws[w] >= W_APPEND))
				return cli_usage(c, "bench: --bad-elsewhere and --bad-in-file poison a pool under a "
						    "read/write workload (not %s on %s)", bench_workload_names[ws[w]],
						 bench_path_names[ps[p]]);
			const char *why = bench_unsupported((enum bench_workload)ws[w], (enum bench_path)ps[p]);
			if (why)
				return cli_usage(c, "bench: %s on %s: %s", bench_workload_names[ws[w]],
						 bench_path_names[ps[p]], why);
		}
	if (!json)
		printf("%-9s %7s %7s %-6s %12s %10s %9s %9s %9s %6s\n", "workload", "bs", "threads", "path", "ops/s",
		       "MB/s", "p50_ns", "p99_ns", "p999_ns", "errors");
	/* One temporary pool for the whole invocation (sized for its largest
	 * point): every pool path of a point reads the same memory, so their
	 * ratios compare copies, not page placements or first-touch faults. */
	char tmp[128] = "";
	if (!pool) {
		uint64_t bytes = 0, inodes = 0;
		for (int w = 0; w < nw; w++)
			for (int b = 0; b < nbs; b++)
				for (int t = 0; t < nt; t++) {
					struct bench_cfg cfg = {.w = (enum bench_workload)ws[w], .bs = bss[b],
								.threads = (unsigned)ts[t],
								.bad_elsewhere = (unsigned)bad_elsewhere};
					uint64_t by, in;
					bench_pool_needs(&cfg, &by, &in);
					bytes = by > bytes ? by : bytes;
					inodes = in > inodes ? in : inodes;
				}
		snprintf(tmp, sizeof(tmp), "/dev/shm/poise-bench-%d.pool", (int)getpid());
		int ret = poise_mkfs(tmp, bytes, inodes, 0);
		if (ret < 0)
			return cli_fail(ret, "bench: a temporary pool of %llu bytes in /dev/shm", (unsigned long long)bytes);
		pool = tmp;
	}
	int failed = 0;
	for (int w = 0; w < nw; w++)
		for (int b = 0; b < nbs; b++)
			for (int t = 0; t < nt; t++)
				for (int p = 0; p < np; p++) {
					struct bench_cfg cfg = {
						.w = (enum bench_workload)ws[w], .path = (enum bench_path)ps[p],
						.bs = bss[b], .threads = (unsigned)ts[t], .seconds = seconds,
						.odirect = odirect, .pool = pool, .dir = dir, .progress = seconds >= 3,
						.bad_elsewhere = (unsigned)bad_elsewhere, .bad_in_file = bad_in_file,
					};
					struct bench_result r;
					int ret = bench_run(&cfg, &r);
					if (ret < 0) {
						cli_fail(ret, "bench: %s on %s", bench_workload_names[cfg.w],
							 bench_path_names[cfg.path]);
						failed = 1;
						continue;
					}
					json ? print_json(&cfg, &r) : print_row(&cfg, &r);
					if (r.errors)
						failed = 1;
				}
	if (tmp[0]) {
		char side[160];
		unlink(tmp);
		snprintf(side, sizeof(side), "%s.badblocks", tmp);
		unlink(side);
	}
	return failed ? EXIT_FAIL : EXIT_OK;
}
