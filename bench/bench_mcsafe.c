/*
 * bench_mcsafe.c - the cost of surviving poison on the read path.
 *
 * Compares, on one mapping of one emulated pool in /dev/shm:
 *   raw     memcpy (glibc, through a function pointer so it is a real call)
 *   mcsafe  the guarded copy alone (poise_mc_copy)
 *   dev     poise_dev_read: table check + guarded copy
 * at 64 B, 4 KiB and 2 MiB, with an empty badblocks table and with 512 bad
 * ranges elsewhere in the pool; "cold" reads land at random offsets in
 * 512 MiB (TLB and cache misses, as a real pool), "hot" ones inside 1 MiB.
 * Paths run interleaved, each point REPS times; the median is kept.  Only
 * ratios are meaningful on a shared machine.
 *
 * Output: a markdown table on stdout, JSON lines to argv[1] if given.
 */
#include "dev/dev.h"
#include "dev/mcsafe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL_SIZE (1ULL << 30)
#define READ_SPAN (512ULL << 20)
#define REPS 7

static void *(*volatile plain)(void *, const void *, size_t) = memcpy;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

enum path { RAW, MCSAFE, DEV, NPATH };
static const char *names[] = {"raw", "mcsafe", "dev"};

/* One loop per path, same shape, never inlined into each other, so that
 * the compiler gives each the same treatment. */
__attribute__((noinline)) static void loop_raw(struct poise_dev *d, const uint64_t *offs,
					       size_t n, size_t bs, uint8_t *buf)
{
	uint8_t *base = d->base;
	for (size_t i = 0; i < n; i++)
		plain(buf, base + offs[i], bs);
}

__attribute__((noinline)) static void loop_mcsafe(struct poise_dev *d, const uint64_t *offs,
						  size_t n, size_t bs, uint8_t *buf)
{
	uint8_t *base = d->base;
	uint64_t f;
	for (size_t i = 0; i < n; i++)
		if (poise_mc_copy(buf, base + offs[i], bs, 0, &f) != bs)
			abort();
}

__attribute__((noinline)) static void loop_dev(struct poise_dev *d, const uint64_t *offs,
					       size_t n, size_t bs, uint8_t *buf)
{
	for (size_t i = 0; i < n; i++)
		if (poise_dev_read(d, offs[i], buf, bs) != (ssize_t)bs)
			abort();
}

static double run(struct poise_dev *d, enum path p, const uint64_t *offs, size_t n, size_t bs,
		  uint8_t *buf)
{
	static void (*const loops[])(struct poise_dev *, const uint64_t *, size_t, size_t,
				     uint8_t *) = {loop_raw, loop_mcsafe, loop_dev};
	double t0 = now();
	loops[p](d, offs, n, bs, buf);
	return (now() - t0) / n;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	char path[] = "/dev/shm/poise-bench-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 1;
	close(fd);
	unlink(path);
	struct poise_dev *d;
	if (poise_dev_create(path, POOL_SIZE) < 0 || poise_dev_open(path, &d) < 0) {
		fprintf(stderr, "bench: cannot make a pool in /dev/shm\n");
		return 1;
	}
	memset(d->base, 0x5a, POOL_SIZE); /* fault every page in */
	FILE *js = argc > 1 ? fopen(argv[1], "w") : NULL;
	uint8_t *buf = aligned_alloc(4096, 2 << 20);
	static const size_t sizes[] = {64, 4096, 2 << 20};
	printf("| size | reads | bad ranges | raw ns/op | mcsafe ns/op | dev ns/op | mcsafe overhead | dev overhead |\n");
	printf("|---:|---|---:|---:|---:|---:|---:|---:|\n");
	for (int table = 0; table < 2; table++) {
		if (table) /* 512 single bad sectors in the upper half of the pool */
			for (int i = 0; i < 512; i++)
				poise_dev_inject(d, (READ_SPAN + (uint64_t)i * (READ_SPAN / 512)) / 512 + 3, 1);
		for (int hot = 0; hot < 2; hot++)
			for (size_t si = 0; si < 3; si++) {
				size_t bs = sizes[si];
				uint64_t span = hot ? (1ULL << 20) : READ_SPAN;
				size_t n = bs >= (2 << 20) ? 400 : bs >= 4096 ? 200000 : 2000000;
				if (hot && bs >= (2 << 20))
					span = 4ULL << 20;
				uint64_t *offs = malloc(n * sizeof(*offs));
				srand(42);
				for (size_t i = 0; i < n; i++)
					offs[i] = ((uint64_t)rand() * 4096 + (uint64_t)rand()) % (span - bs) /
						  (bs < 4096 ? bs : 4096) * (bs < 4096 ? bs : 4096);
				double t[NPATH][REPS];
				for (int r = 0; r < REPS; r++)
					for (int k = 0; k < NPATH; k++) {
						enum path p = (enum path)((k + r) % NPATH); /* rotate order */
						t[p][r] = run(d, p, offs, n, bs, buf);
					}
				double med[NPATH];
				for (int p = 0; p < NPATH; p++) {
					qsort(t[p], REPS, sizeof(double), cmp_d);
					med[p] = t[p][REPS / 2];
				}
				printf("| %zu | %s | %d | %.1f | %.1f | %.1f | %+.1f%% | %+.1f%% |\n", bs,
				       hot ? "hot" : "cold", table ? 512 : 0, med[0] * 1e9, med[1] * 1e9,
				       med[2] * 1e9, (med[1] / med[0] - 1) * 100, (med[2] / med[0] - 1) * 100);
				fflush(stdout);
				for (int p = 0; js && p < NPATH; p++)
					fprintf(js, "{\"bench\":\"mcsafe\",\"path\":\"%s\",\"bs\":%zu,\"reads\":\"%s\",\"bad_ranges\":%d,\"ns_per_op\":%.2f,\"ratio_to_raw\":%.4f}\n",
						names[p], bs, hot ? "hot" : "cold", table ? 512 : 0,
						med[p] * 1e9, med[0] / med[p]);
				free(offs);
			}
	}
	if (js)
		fclose(js);
	poise_dev_close(&d);
	unlink(path);
	char side[64];
	snprintf(side, sizeof(side), "%s.badblocks", path);
	unlink(side);
	return 0;
}
