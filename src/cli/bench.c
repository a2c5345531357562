/*
 * bench.c - the engine of `poise bench`: one workload on one path with N
 * threads for S seconds.
 *
 * Paths (what moves the bytes):
 *   raw     plain memcpy on the pool's mapping of the file (the limit);
 *   mcsafe  the machine-check-safe copy alone (poise_map_read; writes are
 *           memcpy + persist, as a DAX store must be);
 *   dax     the library: poise_pread/poise_pwrite (O_DIRECT with --odirect);
 *   block   the library's block path (O_DIRECT | POISE_O_BLOCK);
 *   tmpfs   pread/pwrite system calls on a file in --dir (default /dev/shm);
 *   fuse    the same system calls on a poise FUSE mount: --dir, or a
 *           temporary pool this run mounts (`poise mount`) and unmounts.
 * Data workloads run on one file (sized for the run and filled first);
 * append writes per-thread files, truncated when they reach a cap; create,
 * stat, unlink, mkdir and rename work on per-thread directories (rename
 * moves each of 64 files to another name in its directory and back).
 *
 * Timing: all threads open their files, then start together at a gate;
 * the main thread stops them after
 * S seconds.  Throughput is operations over the wall time.  create,
 * unlink and mkdir need the other half of the pair to keep going (a pool
 * has finite inodes): each thread times only its creates, unlinks or
 * mkdirs (rmdir is the other half), in batches,
 * and the rate is the sum of the threads' rates over their timed work.
 * Latency is sampled (every 8th operation at <= 4 KiB, each one above) into
 * a log-linear histogram per thread (8 buckets per power of two, so a
 * percentile is within 12.5%), merged at the end.
 *
 * Threads share nothing but the stop flag and the files; counters are per
 * thread, read by the progress line with relaxed atomics.
 */
#include "cli/bench.h"
#include "poise.h"
#include "poise-admin.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const bench_workload_names[W_COUNT] = {"seqread", "seqwrite", "randread", "randwrite", "append",
						    "mixed", "create", "stat", "unlink", "mkdir", "rename"};
const char *const bench_path_names[P_COUNT] = {"raw", "mcsafe", "dax", "block", "tmpfs", "fuse"};

/* Paths that reach their files through system calls in a directory. */
static int kernel_path(enum bench_path p)
{
	return p == P_TMPFS || p == P_FUSE;
}

#define NB (64 * 8)
#define STAT_FILES 64

struct ctx {
	const struct bench_cfg *c;
	struct poise_pool *pool;
	char tmp_pool[128]; /* a temporary pool we made, or "" */
	char pfile[64];     /* the data file inside the pool */
	int pfd;            /* its poise descriptor (dax, block, raw/mcsafe: for the map) */
	uint8_t *map;       /* raw, mcsafe: the file's bytes in the pool mapping */
	char kdir[512];     /* tmpfs, fuse: our directory under --dir */
	char pdir[32];      /* pool paths: our directory in the pool (made once, so
			     * no name costs a getpid the kernel paths do not pay) */
	char fdir[256];     /* fuse without --dir: our pool and mount point */
	int kfd;            /* tmpfs: the data file */
	uint64_t fsize, append_cap;
	unsigned batch;     /* create/unlink: files per timed batch */
	int odirect;        /* O_DIRECT in effect */
	uint64_t skip_blk;  /* bad_in_file: the file block (of bs) reads step around, else ~0 */
	int stop;           /* atomic */
	pthread_mutex_t gate_mu; /* the start gate: threads report ready (their files
				  * open), then wait for go; the clock starts at go */
	pthread_cond_t gate_cv;
	unsigned ready;
	int go;
};

struct worker {
	struct ctx *x;
	unsigned id;
	pthread_t th;
	uint64_t ops, errors; /* ops: atomic (read by the progress line) */
	double busy;          /* create/unlink: seconds of timed work */
	uint64_t rng;
	uint8_t *buf;
	uint64_t hist[NB];
};

static void *(*volatile plain_copy)(void *, const void *, size_t) = memcpy;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static unsigned bucket(uint64_t ns)
{
	if (ns < 16)
		return (unsigned)ns;
	unsigned msb = 63 - (unsigned)__builtin_clzll(ns);
	unsigned b = (msb - 3) * 8 + (unsigned)((ns >> (msb - 3)) & 7);
	return b < NB ? b : NB - 1;
}

static uint64_t bucket_value(unsigned b)
{
	if (b < 16)
		return b;
	unsigned msb = b / 8 + 3;
	return ((uint64_t)(8 + b % 8) << (msb - 3)) + ((1ULL << (msb - 3)) >> 1); /* the bucket's middle */
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

const char *bench_unsupported(enum bench_workload w, enum bench_path p)
{
	if ((p == P_RAW || p == P_MCSAFE) && w >= W_APPEND && w != W_MIXED)
		return "raw and mcsafe copy bytes on a mapping: only the read/write workloads apply";
	if (p == P_BLOCK && w >= W_CREATE)
		return "the block path moves file data: metadata workloads run on dax";
	return NULL;
}

static int is_data(enum bench_workload w)
{
	return w <= W_RANDWRITE || w == W_MIXED;
}

/* ---- one operation ---- */

static int data_op(struct worker *k, int write, uint64_t off)
{
	struct ctx *x = k->x;
	uint64_t bs = x->c->bs;
	ssize_t n;
	switch (x->c->path) {
	case P_RAW:
		write ? plain_copy(x->map + off, k->buf, bs) : plain_copy(k->buf, x->map + off, bs);
		return 0;
	case P_MCSAFE:
		if (write) {
			memcpy(x->map + off, k->buf, bs);
			poise_map_persist(x->pool, x->map + off, bs);
			return 0;
		}
		return poise_map_read(x->pool, k->buf, x->map + off, bs) == (ssize_t)bs ? 0 : -1;
	case P_DAX:
	case P_BLOCK:
		n = write ? poise_pwrite(x->pool, x->pfd, k->buf, bs, (off_t)off)
			  : poise_pread(x->pool, x->pfd, k->buf, bs, (off_t)off);
		return n == (ssize_t)bs ? 0 : -1;
	default:
		n = write ? pwrite(x->kfd, k->buf, bs, (off_t)off) : pread(x->kfd, k->buf, bs, (off_t)off);
		return n == (ssize_t)bs ? 0 : -1;
	}
}

/* Entry n of thread id's directory: files f<n>, their other names r<n>
 * (rename), directories d<n> (mkdir). */
static void entry_of(struct ctx *x, unsigned id, char kind, unsigned n, char *out, size_t len)
{
	if (kernel_path(x->c->path))
		snprintf(out, len, "%s/t%u/%c%u", x->kdir, id, kind, n);
	else
		snprintf(out, len, "%s/t%u/%c%u", x->pdir, id, kind, n);
}

static void name_of(struct ctx *x, unsigned id, unsigned n, char *out, size_t len)
{
	entry_of(x, id, 'f', n, out, len);
}

static int create_one(struct ctx *x, const char *name)
{
	if (kernel_path(x->c->path)) {
		int fd = open(name, O_CREAT | O_WRONLY, 0644);
		return fd < 0 ? -1 : close(fd);
	}
	int fd = poise_open(x->pool, name, O_CREAT | O_WRONLY, 0644);
	return fd < 0 ? -1 : poise_close(x->pool, fd);
}

static int unlink_one(struct ctx *x, const char *name)
{
	return kernel_path(x->c->path) ? unlink(name) : poise_unlink(x->pool, name);
}

static int mkdir_one(struct ctx *x, const char *name)
{
	return kernel_path(x->c->path) ? mkdir(name, 0755) : poise_mkdir(x->pool, name, 0755);
}

static int rmdir_one(struct ctx *x, const char *name)
{
	return kernel_path(x->c->path) ? rmdir(name) : poise_rmdir(x->pool, name);
}

static int rename_one(struct ctx *x, const char *from, const char *to)
{
	return kernel_path(x->c->path) ? rename(from, to) : poise_rename(x->pool, from, to);
}

static void record(struct worker *k, uint64_t t0)
{
	k->hist[bucket(now_ns() - t0)]++;
}

/* create, unlink or mkdir: batches, only one half timed (mkdir: mkdir
 * then rmdir; the others: create then unlink) */
static void meta_pairs(struct worker *k, int time_create, int dirs)
{
	struct ctx *x = k->x;
	char name[600];
	while (!__atomic_load_n(&x->stop, __ATOMIC_RELAXED)) {
		for (int phase = 0; phase < 2; phase++) {
			int timed = (phase == 0) == time_create;
			uint64_t b0 = now_ns();
			for (unsigned i = 0; i < x->batch; i++) {
				entry_of(x, k->id, dirs ? 'd' : 'f', i, name, sizeof(name));
				uint64_t t0 = timed ? now_ns() : 0;
				int r = dirs ? (phase == 0 ? mkdir_one(x, name) : rmdir_one(x, name))
					     : (phase == 0 ? create_one(x, name) : unlink_one(x, name));
				if (r < 0)
					k->errors++;
				else if (timed) {
					record(k, t0);
					__atomic_add_fetch(&k->ops, 1, __ATOMIC_RELAXED);
				}
			}
			if (timed)
				k->busy += (now_ns() - b0) * 1e-9;
		}
	}
}

/* rename: each of the thread's STAT_FILES files to its other name and
 * back, round and round; every rename timed */
static void renames(struct worker *k)
{
	struct ctx *x = k->x;
	char a[600], b[600];
	for (uint64_t i = 0; !__atomic_load_n(&x->stop, __ATOMIC_RELAXED); i++) {
		unsigned n = (unsigned)(i % STAT_FILES);
		int there = (int)(i / STAT_FILES) & 1; /* this round moves r<n> back to f<n> */
		entry_of(x, k->id, there ? 'r' : 'f', n, a, sizeof(a));
		entry_of(x, k->id, there ? 'f' : 'r', n, b, sizeof(b));
		uint64_t t0 = (i & 7) == 0 ? now_ns() : 0;
		if (rename_one(x, a, b) < 0)
			k->errors++;
		else {
			if (t0)
				record(k, t0);
			__atomic_add_fetch(&k->ops, 1, __ATOMIC_RELAXED);
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *k = arg;
	struct ctx *x = k->x;
	const struct bench_cfg *c = x->c;
	uint64_t nblk = x->fsize / c->bs, pos = (nblk / c->threads) * k->id, mask = c->bs <= 4096 ? 7 : 0;
	int afd = -1;
	uint64_t appended = 0;
	char name[600];
	if (c->w == W_APPEND) {
		if (kernel_path(c->path))
			snprintf(name, sizeof(name), "%s/append.%u", x->kdir, k->id);
		else
			snprintf(name, sizeof(name), "/poise-bench-append.%u", k->id);
		afd = kernel_path(c->path) ? open(name, O_CREAT | O_WRONLY | O_APPEND | O_TRUNC, 0644)
					 : poise_open(x->pool, name, O_CREAT | O_WRONLY | O_APPEND | O_TRUNC |
								     (c->odirect ? O_DIRECT : 0) |
								     (c->path == P_BLOCK ? O_DIRECT | POISE_O_BLOCK : 0),
						      0644);
		if (afd < 0)
			k->errors++;
	}
	pthread_mutex_lock(&x->gate_mu);
	x->ready++;
	pthread_cond_broadcast(&x->gate_cv);
	while (!x->go)
		pthread_cond_wait(&x->gate_cv, &x->gate_mu);
	pthread_mutex_unlock(&x->gate_mu);
	if (c->w == W_CREATE || c->w == W_UNLINK || c->w == W_MKDIR) {
		meta_pairs(k, c->w != W_UNLINK, c->w == W_MKDIR);
		return NULL;
	}
	if (c->w == W_RENAME) {
		renames(k);
		return NULL;
	}
	if (afd < 0 && c->w == W_APPEND)
		return NULL;
	for (uint64_t i = 0; !__atomic_load_n(&x->stop, __ATOMIC_RELAXED); i++) {
		int timed = (i & mask) == 0, r;
		uint64_t t0 = timed ? now_ns() : 0;
		switch (c->w) {
		case W_SEQREAD:
		case W_SEQWRITE:
			r = data_op(k, c->w == W_SEQWRITE, pos * c->bs);
			if (++pos == nblk)
				pos = 0;
			break;
		case W_RANDREAD:
		case W_RANDWRITE: {
			uint64_t b = xorshift(&k->rng) % nblk;
			if (b == x->skip_blk) /* around the bad sector, not onto it */
				b = (b + 1) % nblk;
			r = data_op(k, c->w == W_RANDWRITE, b * c->bs);
			break;
		}
		case W_MIXED: {
			uint64_t v = xorshift(&k->rng);
			r = data_op(k, v % 10 >= 7, ((v >> 8) % nblk) * c->bs);
			break;
		}
		case W_APPEND:
			if (appended + c->bs > x->append_cap) {
				r = kernel_path(c->path) ? ftruncate(afd, 0) : poise_ftruncate(x->pool, afd, 0);
				appended = 0;
				if (r < 0)
					break;
			}
			r = (kernel_path(c->path) ? write(afd, k->buf, c->bs)
						: poise_pwrite(x->pool, afd, k->buf, c->bs, 0)) == (ssize_t)c->bs ? 0 : -1;
			appended += c->bs;
			break;
		default: /* W_STAT */
			name_of(x, k->id, (unsigned)(xorshift(&k->rng) % STAT_FILES), name, sizeof(name));
			if (kernel_path(c->path)) {
				struct stat st;
				r = stat(name, &st);
			} else {
				struct stat st;
				r = poise_stat(x->pool, name, &st);
			}
			break;
		}
		if (r < 0) {
			k->errors++;
			continue;
		}
		if (timed)
			record(k, t0);
		__atomic_add_fetch(&k->ops, 1, __ATOMIC_RELAXED);
	}
	if (afd >= 0)
		kernel_path(c->path) ? close(afd) : poise_close(x->pool, afd);
	return NULL;
}

/* ---- setup and teardown ---- */

static int fill(struct ctx *x)
{
	size_t chunk = 1 << 20;
	uint8_t *b = malloc(chunk);
	if (!b)
		return poise_err(ENOMEM, "out of memory");
	for (size_t i = 0; i < chunk; i++)
		b[i] = (uint8_t)(i * 131 + 7);
	int ret = 0;
	for (uint64_t off = 0; off < x->fsize && ret == 0; off += chunk) {
		size_t n = x->fsize - off < chunk ? (size_t)(x->fsize - off) : chunk;
		ssize_t k = kernel_path(x->c->path) ? pwrite(x->kfd, b, n, (off_t)off)
						  : poise_pwrite(x->pool, x->pfd, b, n, (off_t)off);
		if (k != (ssize_t)n)
			ret = k < 0 && !kernel_path(x->c->path)
				      ? (int)k
				      : poise_err(k < 0 ? errno : ENOSPC, "filling the %llu-byte benchmark file: %s",
						  (unsigned long long)x->fsize, k < 0 ? strerror(errno) : "short write");
	}
	free(b);
	return ret;
}

static int setup_dirs(struct ctx *x)
{
	const struct bench_cfg *c = x->c;
	char name[600];
	unsigned per = c->w == W_STAT || c->w == W_RENAME ? STAT_FILES : 0;
	if (kernel_path(c->path)) {
		for (unsigned t = 0; t < c->threads; t++) {
			snprintf(name, sizeof(name), "%s/t%u", x->kdir, t);
			if (mkdir(name, 0755) < 0)
				return poise_err(errno, "%s: %s", name, strerror(errno));
		}
	} else {
		int r = poise_mkdir(x->pool, x->pdir, 0755);
		for (unsigned t = 0; r == 0 && t < c->threads; t++) {
			snprintf(name, sizeof(name), "%s/t%u", x->pdir, t);
			r = poise_mkdir(x->pool, name, 0755);
		}
		if (r < 0)
			return r;
	}
	for (unsigned t = 0; t < c->threads; t++)
		for (unsigned i = 0; i < per; i++) {
			name_of(x, t, i, name, sizeof(name));
			if (create_one(x, name) < 0)
				return poise_err(EIO, "cannot create %s", name);
		}
	return 0;
}

/* Remove what the run made inside a pool we did not make. */
static void cleanup_pool_files(struct ctx *x)
{
	char name[600];
	const struct bench_cfg *c = x->c;
	if (x->pfile[0])
		poise_unlink(x->pool, x->pfile);
	snprintf(name, sizeof(name), "/poise-bench-filler.%d", (int)getpid());
	poise_unlink(x->pool, name);
	for (unsigned t = 0; t < c->threads; t++) {
		snprintf(name, sizeof(name), "/poise-bench-append.%u", t);
		poise_unlink(x->pool, name);
		for (unsigned i = 0; i < (x->batch > STAT_FILES ? x->batch : STAT_FILES); i++) {
			name_of(x, t, i, name, sizeof(name));
			poise_unlink(x->pool, name);
			entry_of(x, t, 'r', i, name, sizeof(name));
			poise_unlink(x->pool, name);
			entry_of(x, t, 'd', i, name, sizeof(name));
			poise_rmdir(x->pool, name);
		}
		snprintf(name, sizeof(name), "%s/t%u", x->pdir, t);
		poise_rmdir(x->pool, name);
	}
	poise_rmdir(x->pool, x->pdir);
}

/* The error-path options: sectors poisoned in blocks away from the file
 * (a filler file holds them for the run; removing it at the end clears
 * them, as every free does), or one in the
 * file's middle, whose block the random reads step around. */
static int poison(struct ctx *x)
{
	const struct bench_cfg *c = x->c;
	int r = 0;
	if (c->bad_in_file) {
		uint64_t off = x->fsize / 2 + 3 * 512;
		struct poise_map_piece m;
		if (poise_fiemap(x->pool, x->pfile, off, 1, &m, 1) != 1)
			return poise_err(EIO, "cannot map the benchmark file");
		if ((r = poise_badblocks_inject(x->pool, m.pool_off / 512, 1)) < 0)
			return r;
		x->skip_blk = off / c->bs;
	}
	if (c->bad_elsewhere) {
		char f[64];
		snprintf(f, sizeof(f), "/poise-bench-filler.%d", (int)getpid());
		int fd = poise_open(x->pool, f, O_CREAT | O_RDWR, 0644);
		if (fd < 0)
			return fd;
		/* spread: one sector in every 8th block of the filler */
		r = poise_fallocate(x->pool, fd, 0, 0, (off_t)c->bad_elsewhere * 8 * 4096);
		for (unsigned i = 0; r == 0 && i < c->bad_elsewhere; i++) {
			struct poise_map_piece m;
			if (poise_fiemap(x->pool, f, (uint64_t)i * 8 * 4096, 1, &m, 1) != 1)
				r = poise_err(EIO, "cannot map the filler");
			else
				r = poise_badblocks_inject(x->pool, m.pool_off / 512 + i % 8, 1);
		}
		poise_close(x->pool, fd); /* kept until teardown: unlinking clears what it frees */
	}
	return r;
}

/* The sizes a run needs (file, append cap, metadata batch). */
static void sizes(const struct bench_cfg *c, uint64_t *fsize, uint64_t *append_cap, unsigned *batch)
{
	uint64_t want = 4 * c->bs * c->threads;
	*fsize = is_data(c->w) ? (want < (64u << 20) ? 64u << 20 : want > (1u << 30) ? 1u << 30 : want) : 0;
	*fsize -= *fsize % c->bs;
	*append_cap = c->bs * 256 > (4u << 20) ? c->bs * 256 : 4u << 20;
	*batch = 65536 / c->threads < 16 ? 16 : 65536 / c->threads > 1024 ? 1024 : 65536 / c->threads;
}

void bench_pool_needs(const struct bench_cfg *c, uint64_t *bytes, uint64_t *inodes)
{
	uint64_t fsize, cap;
	unsigned batch;
	sizes(c, &fsize, &cap, &batch);
	*inodes = (uint64_t)c->threads * (batch > STAT_FILES ? batch : STAT_FILES) + 4096;
	*bytes = fsize + (c->w == W_APPEND ? cap * c->threads : 0) + *inodes * 512 + (64u << 20) +
		 (c->bad_elsewhere ? (uint64_t)c->bad_elsewhere * 8 * 4096 : 0);
	*bytes = (*bytes + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
}

/* Run `poise CMD ARGS...` (this very program) and wait: 0 or -EIO. */
static int self(const char *a, const char *b, const char *c)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "poise", a, b, c, (char *)NULL);
		_exit(127);
	}
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* The fuse path without --dir: a temporary pool, mounted for this run. */
static int fuse_up(struct ctx *x, char *mnt, size_t len)
{
	uint64_t bytes, inodes;
	char pool[300];
	bench_pool_needs(x->c, &bytes, &inodes);
	snprintf(x->fdir, sizeof(x->fdir), "/dev/shm/poise-bench-fuse-XXXXXX");
	if (!mkdtemp(x->fdir)) {
		x->fdir[0] = 0;
		return poise_err(errno, "/dev/shm: %s", strerror(errno));
	}
	snprintf(pool, sizeof(pool), "%s/pool", x->fdir);
	snprintf(mnt, len, "%s/mnt", x->fdir);
	int r = mkdir(mnt, 0755) < 0 ? -errno : poise_mkfs(pool, bytes, inodes, 0);
	if (r == 0 && (r = self("mount", pool, mnt)) < 0)
		poise_err(EIO, "cannot mount a pool for the fuse path (is FUSE available?)");
	return r;
}

static void fuse_down(struct ctx *x)
{
	char p[300];
	if (!x->fdir[0])
		return;
	snprintf(p, sizeof(p), "%s/mnt", x->fdir);
	if (self("umount", p, NULL) < 0)
		fprintf(stderr, "poise: bench: could not unmount %s\n", p);
	snprintf(p, sizeof(p), "rm -rf '%s'", x->fdir);
	if (system(p) != 0)
		fprintf(stderr, "poise: bench: could not remove %s\n", x->fdir);
}

static int setup(struct ctx *x)
{
	const struct bench_cfg *c = x->c;
	sizes(c, &x->fsize, &x->append_cap, &x->batch);
	x->pfd = x->kfd = -1;
	x->skip_blk = ~0ULL;
	snprintf(x->pdir, sizeof(x->pdir), "/poise-bench.%d", (int)getpid());
	if (kernel_path(c->path)) {
		const char *base = c->dir ? c->dir : "/dev/shm";
		char mnt[300];
		if (c->path == P_FUSE && !c->dir) {
			int r = fuse_up(x, mnt, sizeof(mnt));
			if (r < 0)
				return r;
			base = mnt;
		}
		snprintf(x->kdir, sizeof(x->kdir), "%s/poise-bench-XXXXXX", base);
		if (!mkdtemp(x->kdir))
			return poise_err(errno, "%s: cannot make a directory: %s", base, strerror(errno));
		if (is_data(c->w)) {
			char f[600];
			snprintf(f, sizeof(f), "%s/data", x->kdir);
			x->kfd = open(f, O_CREAT | O_RDWR | (c->odirect ? O_DIRECT : 0), 0644);
			x->odirect = c->odirect && x->kfd >= 0;
			if (x->kfd < 0 && c->odirect && errno == EINVAL)
				x->kfd = open(f, O_CREAT | O_RDWR, 0644); /* tmpfs has no O_DIRECT: buffered */
			if (x->kfd < 0)
				return poise_err(errno, "%s: %s", f, strerror(errno));
			int r = fill(x);
			if (r < 0)
				return r;
		}
		return c->w >= W_CREATE ? setup_dirs(x) : 0;
	}
	int r;
	x->odirect = c->odirect || c->path == P_BLOCK;
	if (!c->pool) {
		uint64_t inodes, size;
		bench_pool_needs(c, &size, &inodes);
		snprintf(x->tmp_pool, sizeof(x->tmp_pool), "/dev/shm/poise-bench-%d.pool", (int)getpid());
		if ((r = poise_mkfs(x->tmp_pool, size, inodes, 0)) < 0) {
			x->tmp_pool[0] = 0;
			return r;
		}
	}
	if ((r = poise_pool_open(c->pool ? c->pool : x->tmp_pool, 0, &x->pool)) < 0)
		return r;
	if (is_data(c->w)) {
		snprintf(x->pfile, sizeof(x->pfile), "/poise-bench-data.%d", (int)getpid());
		int flags = O_CREAT | O_RDWR | (c->odirect ? O_DIRECT : 0) |
			    (c->path == P_BLOCK ? O_DIRECT | POISE_O_BLOCK : 0);
		if ((x->pfd = poise_open(x->pool, x->pfile, flags, 0644)) < 0)
			return x->pfd;
		if ((r = fill(x)) < 0)
			return r;
		if ((r = poison(x)) < 0)
			return r;
		if (c->path == P_RAW || c->path == P_MCSAFE) {
			void *a;
			if ((r = poise_map(x->pool, x->pfd, 0, x->fsize, &a)) < 0)
				return r;
			x->map = a;
		}
	}
	return c->w >= W_CREATE ? setup_dirs(x) : 0;
}

static void teardown(struct ctx *x)
{
	if (x->kfd >= 0)
		close(x->kfd);
	if (x->kdir[0]) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->kdir);
		if (system(cmd) != 0)
			fprintf(stderr, "poise: bench: could not remove %s\n", x->kdir);
	}
	fuse_down(x);
	if (x->pool) {
		if (x->pfd >= 0)
			poise_close(x->pool, x->pfd);
		if (!x->tmp_pool[0])
			cleanup_pool_files(x);
		poise_pool_close(&x->pool);
	}
	if (x->tmp_pool[0]) {
		char side[160];
		unlink(x->tmp_pool);
		snprintf(side, sizeof(side), "%s.badblocks", x->tmp_pool);
		unlink(side);
	}
}

int bench_run(const struct bench_cfg *c, struct bench_result *r)
{
	memset(r, 0, sizeof(*r));
	const char *why = bench_unsupported(c->w, c->path);
	if (why)
		return poise_err(EINVAL, "%s on %s: %s", bench_workload_names[c->w], bench_path_names[c->path], why);
	struct ctx x;
	memset(&x, 0, sizeof(x));
	x.c = c;
	int ret = setup(&x);
	struct worker *w = ret == 0 ? calloc(c->threads, sizeof(*w)) : NULL;
	if (ret == 0 && !w)
		ret = poise_err(ENOMEM, "out of memory");
	if (ret < 0) {
		teardown(&x);
		return ret;
	}
	pthread_mutex_init(&x.gate_mu, NULL);
	pthread_cond_init(&x.gate_cv, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	unsigned started = 0;
	for (unsigned i = 0; i < c->threads; i++) {
		w[i].x = &x;
		w[i].id = i;
		w[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1);
		w[i].buf = aligned_alloc(4096, (c->bs + 4095) & ~(uint64_t)4095);
		if (!w[i].buf || pthread_create(&w[i].th, &attr, worker_main, &w[i]) != 0)
			break;
		memset(w[i].buf, 0x5a, c->bs);
		started++;
	}
	if (started < c->threads) {
		ret = poise_err(EAGAIN, "could only start %u of %u threads", started, c->threads);
		__atomic_store_n(&x.stop, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&x.gate_mu); /* every thread ready (set-up done): go */
	while (x.ready < started)
		pthread_cond_wait(&x.gate_cv, &x.gate_mu);
	x.go = 1;
	pthread_cond_broadcast(&x.gate_cv);
	pthread_mutex_unlock(&x.gate_mu);
	uint64_t t0 = now_ns();
	for (double left = c->seconds; ret == 0 && left > 0;) {
		double step = left < 1 ? left : 1;
		struct timespec ts = {(time_t)step, (long)((step - (time_t)step) * 1e9)};
		nanosleep(&ts, NULL);
		left -= step;
		if (c->progress && left > 0) {
			uint64_t ops = 0;
			for (unsigned i = 0; i < c->threads; i++)
				ops += __atomic_load_n(&w[i].ops, __ATOMIC_RELAXED);
			double el = (now_ns() - t0) * 1e-9;
			fprintf(stderr, "bench: %s %s bs %llu x%u: %.0f/%.0f s, %.3g ops/s\n", bench_workload_names[c->w],
				bench_path_names[c->path], (unsigned long long)c->bs, c->threads, el, c->seconds, ops / el);
		}
	}
	__atomic_store_n(&x.stop, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	r->seconds = (now_ns() - t0) * 1e-9;
	pthread_attr_destroy(&attr);
	pthread_mutex_destroy(&x.gate_mu);
	pthread_cond_destroy(&x.gate_cv);
	uint64_t hist[NB] = {0}, samples = 0;
	double rate = 0;
	for (unsigned i = 0; i < c->threads; i++) {
		r->ops += w[i].ops;
		r->errors += w[i].errors;
		if (w[i].busy > 0)
			rate += w[i].ops / w[i].busy;
		for (unsigned b = 0; b < NB; b++) {
			hist[b] += w[i].hist[b];
			samples += w[i].hist[b];
		}
		free(w[i].buf);
	}
	free(w);
	r->ops_per_s = c->w == W_CREATE || c->w == W_UNLINK || c->w == W_MKDIR ? rate : r->ops / r->seconds;
	r->mb_per_s = is_data(c->w) || c->w == W_APPEND ? r->ops_per_s * (double)c->bs / 1e6 : 0;
	uint64_t want[3] = {samples / 2, samples * 99 / 100, samples * 999 / 1000}, *out[3] = {&r->p50_ns, &r->p99_ns,
											      &r->p999_ns};
	for (int q = 0; q < 3 && samples; q++) {
		uint64_t acc = 0;
		for (unsigned b = 0; b < NB; b++)
			if ((acc += hist[b]) > want[q]) {
				*out[q] = bucket_value(b);
				break;
			}
	}
	r->file_size = x.fsize;
	r->odirect = x.odirect;
	teardown(&x);
	return ret;
}
