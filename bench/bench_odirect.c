/*
 * bench_odirect.c - the 2016 question, measured: O_DIRECT 4 KiB random read
 * and write at 1 to 1000 threads on
 *   dax     poise's default: memcpy on the mapped pool, media errors handled
 *           on that path;
 *   block   poise's odirect=block: the same file's blocks through the kernel
 *           (a loop device over the pool, O_DIRECT), the 2016 patch's design;
 *   tmpfs   pread/pwrite system calls on a file in /dev/shm: the kernel peer.
 * All three in one run, interleaved per thread count; each point runs a
 * fixed time.  Output: a markdown table, JSON lines to argv[1] if given.
 * BENCH_SECONDS sets the time per point (default 0.3).
 */
#include "poise.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_SZ (64ULL << 20)
static struct poise_pool *pool;
static int poise_fd[2], tmpfs_fd;
static volatile int stop;
static int write_mode, path;
static pthread_barrier_t start;

struct worker {
	pthread_t t;
	unsigned seed;
	long ops;
};

static void *run(void *arg)
{
	struct worker *w = arg;
	char *buf = aligned_alloc(4096, 4096);
	memset(buf, 0x33, 4096);
	long n = 0;
	pthread_barrier_wait(&start); /* everyone starts together */
	while (!stop) {
		off_t off = (off_t)(rand_r(&w->seed) % (FILE_SZ / 4096)) * 4096;
		ssize_t k;
		if (path < 2)
			k = write_mode ? poise_pwrite(pool, poise_fd[path], buf, 4096, off)
				       : poise_pread(pool, poise_fd[path], buf, 4096, off);
		else
			k = write_mode ? pwrite(tmpfs_fd, buf, 4096, off) : pread(tmpfs_fd, buf, 4096, off);
		if (k == 4096)
			n++;
	}
	free(buf);
	w->ops = n;
	return NULL;
}

static double point(int threads, double seconds)
{
	static struct worker w[1000];
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 128 << 10);
	stop = 0;
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		w[i].seed = (unsigned)i * 7919 + 1;
		w[i].ops = 0;
		pthread_create(&w[i].t, &a, run, &w[i]);
	}
	struct timespec t0, t1;
	pthread_barrier_wait(&start);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	usleep((useconds_t)(seconds * 1e6));
	stop = 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long total = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].t, NULL);
		total += w[i].ops; /* an op in flight at the stop counts: at most one per thread */
	}
	pthread_barrier_destroy(&start);
	return total / ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
}

int main(int argc, char **argv)
{
	FILE *js = argc > 1 ? fopen(argv[1], "w") : NULL;
	double secs = getenv("BENCH_SECONDS") ? atof(getenv("BENCH_SECONDS")) : 0.3;
	char img[] = "/dev/shm/poise-bench-od-XXXXXX", tf[] = "/dev/shm/poise-bench-tmpfs-XXXXXX";
	close(mkstemp(img));
	unlink(img);
	tmpfs_fd = mkstemp(tf);
	if (poise_mkfs(img, 256 << 20, 0, 0) < 0 || poise_pool_open(img, 0, &pool) < 0) {
		fprintf(stderr, "bench_odirect: %s\n", poise_errmsg());
		return 1;
	}
	char *buf = aligned_alloc(4096, 1 << 20);
	memset(buf, 0x5a, 1 << 20);
	int fd = poise_open(pool, "/data", O_CREAT | O_RDWR, 0644);
	for (uint64_t off = 0; off < FILE_SZ; off += 1 << 20) {
		poise_pwrite(pool, fd, buf, 1 << 20, (off_t)off);
		pwrite(tmpfs_fd, buf, 1 << 20, (off_t)off);
	}
	poise_close(pool, fd);
	close(tmpfs_fd);
	tmpfs_fd = open(tf, O_RDWR | O_DIRECT);
	if (tmpfs_fd < 0)
		tmpfs_fd = open(tf, O_RDWR); /* tmpfs without O_DIRECT: plain */
	poise_fd[0] = poise_open(pool, "/data", O_RDWR | O_DIRECT, 0);
	poise_fd[1] = poise_open(pool, "/data", O_RDWR | O_DIRECT | POISE_O_BLOCK, 0);
	static const int threads[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000};
	static const char *names[] = {"dax", "block", "tmpfs"};
	for (write_mode = 0; write_mode < 2; write_mode++) {
		printf("\n%s, O_DIRECT, 4 KiB random, ops/s:\n\n| threads | dax | block | tmpfs | dax/block | dax/tmpfs |\n|---:|---:|---:|---:|---:|---:|\n",
		       write_mode ? "Write" : "Read");
		for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
			double r[3];
			for (int k = 0; k < 3; k++) {
				path = (int)((k + i) % 3); /* rotate the order */
				r[path] = point(threads[i], secs);
			}
			printf("| %d | %.0f | %.0f | %.0f | %.2f | %.2f |\n", threads[i], r[0], r[1], r[2],
			       r[0] / r[1], r[0] / r[2]);
			fflush(stdout);
			for (int k = 0; js && k < 3; k++)
				fprintf(js, "{\"bench\":\"odirect\",\"workload\":\"%s\",\"bs\":4096,\"threads\":%d,\"path\":\"%s\",\"ops_per_s\":%.0f,\"seconds\":%.2f}\n",
					write_mode ? "randwrite" : "randread", threads[i], names[k], r[k], secs);
		}
	}
	poise_close(pool, poise_fd[0]);
	poise_close(pool, poise_fd[1]);
	poise_pool_close(&pool);
	unlink(img);
	unlink(tf);
	close(tmpfs_fd);
	if (js)
		fclose(js);
	return 0;
}
