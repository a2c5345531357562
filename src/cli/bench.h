/*
 * bench.h - the benchmark engine behind `poise bench` (bench.c): one
 * workload, one path, N threads, for S seconds; throughput and latency
 * percentiles.
 */
#ifndef POISE_CLI_BENCH_H
#define POISE_CLI_BENCH_H

#include <stdint.h>

enum bench_workload {
	W_SEQREAD, W_SEQWRITE, W_RANDREAD, W_RANDWRITE, W_APPEND, W_MIXED, W_CREATE, W_STAT, W_UNLINK,
	W_MKDIR, W_RENAME, W_COUNT
};
enum bench_path { P_RAW, P_MCSAFE, P_DAX, P_BLOCK, P_TMPFS, P_FUSE, P_COUNT };

extern const char *const bench_workload_names[W_COUNT];
extern const char *const bench_path_names[P_COUNT];

struct bench_cfg {
	enum bench_workload w;
	enum bench_path path;
	uint64_t bs;       /* bytes per operation (data workloads) */
	unsigned threads;  /* 1..1000 */
	double seconds;
	int odirect;       /* O_DIRECT opens (dax, block: always) */
	const char *pool;  /* an existing pool, or NULL: a temporary one in /dev/shm */
	const char *dir;   /* directory for the tmpfs path (default /dev/shm) and the
			    * fuse path (default: a temporary pool mounted for the run) */
	int progress;      /* a progress line on stderr each second */
	unsigned bad_elsewhere; /* poison this many sectors in free blocks away from the file */
	int bad_in_file;   /* poison one sector in the middle of the file; reads skip its block */
};

struct bench_result {
	uint64_t ops, errors;
	double seconds;
	double ops_per_s, mb_per_s;
	uint64_t p50_ns, p99_ns, p999_ns;
	uint64_t file_size; /* the file the data workloads ran on */
	int odirect;        /* O_DIRECT was in effect (tmpfs refuses it: buffered) */
};

/* Does this workload make sense on this path?  NULL, or why not. */
const char *bench_unsupported(enum bench_workload w, enum bench_path p);
/* Bytes and inodes a temporary pool for this point needs. */
void bench_pool_needs(const struct bench_cfg *c, uint64_t *bytes, uint64_t *inodes);
/* Run one point.  0, or -errno with the library's message set (setup
 * failed; errors during the run are counted in r->errors). */
int bench_run(const struct bench_cfg *c, struct bench_result *r);

#endif
