/*
 * bench_fs.c - the file system's hot paths against their limits and peers,
 * measured in one run (issue 4's targets):
 *   - 4 KiB random read through poise_pread vs memcpy from the same pool
 *     blocks (1 thread), interleaved, median of 7;
 *   - the same reads on a file with one bad sector vs a clean file, and
 *     reads of the good sectors beside it (issue 5);
 *   - 4 KiB in-place overwrite latency (poise_pwrite), mean and percentiles;
 *   - 4 KiB append + fsync, operations per second on one thread;
 *   - create+close and unlink: poise vs the same calls on tmpfs (/dev/shm);
 *   - mount time of a 16 GiB pool (sparse file in /dev/shm).
 * Output: a markdown table on stdout, JSON lines to argv[1] if given.
 */
#include "poise.h"
#include "dev/dev.h"
#include "dev/persist.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct poise_dev *poise_pool_dev(struct poise_pool *p);
static void *(*volatile plain)(void *, const void *, size_t) = memcpy;
static FILE *js;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void row(const char *what, double value, const char *unit, const char *peer, double pv,
		const char *target, const char *key)
{
	char ratio[64] = "";
	if (pv > 0)
		snprintf(ratio, sizeof(ratio), "%.2f", value / pv);
	printf("| %s | %.3g %s | %s | %s | %s |\n", what, value, unit, peer, ratio, target);
	if (js)
		fprintf(js, "{\"bench\":\"fs\",\"what\":\"%s\",\"value\":%.6g,\"unit\":\"%s\",\"peer_value\":%.6g,\"ratio\":%.4f}\n",
			key, value, unit, pv, pv > 0 ? value / pv : 0.0);
}

int main(int argc, char **argv)
{
	js = argc > 1 ? fopen(argv[1], "w") : NULL;
	char img[] = "/dev/shm/poise-benchfs-XXXXXX";
	int tfd = mkstemp(img);
	close(tfd);
	unlink(img);
	struct poise_pool *p;
	if (poise_mkfs(img, 1ULL << 30, 0, 0) < 0 || poise_pool_open(img, 0, &p) < 0) {
		fprintf(stderr, "bench_fs: %s\n", poise_errmsg());
		return 1;
	}
	printf("| measure | poise | peer | ratio | target |\n|---|---:|---|---:|---|\n");
	/* 1. random 4 KiB reads of a 256 MiB file */
	const size_t FILE_SZ = 256 << 20, N = 200000;
	int fd = poise_open(p, "/data", O_CREAT | O_RDWR, 0644);
	char *buf = aligned_alloc(4096, 1 << 20);
	memset(buf, 0x5a, 1 << 20);
	for (size_t off = 0; off < FILE_SZ; off += 1 << 20)
		poise_pwrite(p, fd, buf, 1 << 20, (off_t)off);
	struct poise_dev *dev = poise_pool_dev(p);
	uint64_t *offs = malloc(N * 8), *poffs = malloc(N * 8);
	srand(7);
	/* the same blocks both ways: the file's data is contiguous from its
	 * first block, found with a marker */
	uint64_t first = 0;
	char probe[8];
	poise_pwrite(p, fd, "MARKER!!", 8, 0);
	for (uint64_t b = 0; b < dev->size; b += 4096)
		if (!memcmp(dev->base + b, "MARKER!!", 8)) {
			first = b;
			break;
		}
	poise_pread(p, fd, probe, 8, 0);
	for (size_t i = 0; i < N; i++) {
		offs[i] = ((uint64_t)rand() % (FILE_SZ / 4096)) * 4096;
		poffs[i] = first + offs[i];
	}
	double tr[7], tp[7];
	for (int r = 0; r < 7; r++) {
		double t0 = now();
		for (size_t i = 0; i < N; i++)
			plain(buf, dev->base + poffs[i], 4096);
		double t1 = now();
		for (size_t i = 0; i < N; i++)
			poise_pread(p, fd, buf, 4096, (off_t)offs[i]);
		double t2 = now();
		tr[r] = (t1 - t0) / N;
		tp[r] = (t2 - t1) / N;
	}
	qsort(tr, 7, 8, cmp_d);
	qsort(tp, 7, 8, cmp_d);
	row("4 KiB random read, 1 thread (ops/s)", 1 / tp[3], "ops/s", "memcpy from the same blocks", 1 / tr[3],
	    ">= 0.85", "randread_4k_vs_memcpy");
	/* 1b. the error path: a second file like /data with one bad sector in
	 * its middle; the same random reads on both (those that reach the
	 * sector stop short, as they must), and 512-byte reads of the seven
	 * good sectors beside it against the same sectors of the clean file */
	int bfd = poise_open(p, "/bad", O_CREAT | O_RDWR, 0644);
	for (size_t off = 0; off < FILE_SZ; off += 1 << 20)
		poise_pwrite(p, bfd, buf, 1 << 20, (off_t)off);
	const uint64_t BAD = FILE_SZ / 2 + 3 * 512;
	struct poise_map_piece mp;
	if (poise_fiemap(p, "/bad", BAD, 512, &mp, 1) != 1 || poise_badblocks_inject(p, mp.pool_off / 512, 1) < 0) {
		fprintf(stderr, "bench_fs: cannot poison /bad: %s\n", poise_errmsg());
		return 1;
	}
	double tc[7], tb[7], nc[7], nb[7];
	const int NN = 200000;
	for (int r = 0; r < 7; r++) {
		double t0 = now();
		for (size_t i = 0; i < N; i++)
			poise_pread(p, fd, buf, 4096, (off_t)offs[i]);
		double t1 = now();
		for (size_t i = 0; i < N; i++)
			poise_pread(p, bfd, buf, 4096, (off_t)offs[i]);
		double t2 = now();
		for (int i = 0; i < NN; i++) {
			uint64_t sec = (uint64_t)(i % 7), o = BAD - 3 * 512 + (sec < 3 ? sec : sec + 1) * 512;
			poise_pread(p, fd, buf, 512, (off_t)o);
		}
		double t3 = now();
		for (int i = 0; i < NN; i++) {
			uint64_t sec = (uint64_t)(i % 7), o = BAD - 3 * 512 + (sec < 3 ? sec : sec + 1) * 512;
			poise_pread(p, bfd, buf, 512, (off_t)o);
		}
		double t4 = now();
		tc[r] = (t1 - t0) / N;
		tb[r] = (t2 - t1) / N;
		nc[r] = (t3 - t2) / NN;
		nb[r] = (t4 - t3) / NN;
	}
	qsort(tc, 7, 8, cmp_d);
	qsort(tb, 7, 8, cmp_d);
	qsort(nc, 7, 8, cmp_d);
	qsort(nb, 7, 8, cmp_d);
	row("4 KiB random read, file with one bad sector (ops/s)", 1 / tb[3], "ops/s", "the same reads, clean file",
	    1 / tc[3], "~1.0", "randread_4k_one_bad_vs_clean");
	row("512 B reads of the 7 good sectors beside the bad one (ops/s)", 1 / nb[3], "ops/s",
	    "the same sectors, clean file", 1 / nc[3], "", "read_beside_bad_vs_clean");
	poise_close(p, bfd);
	poise_unlink(p, "/bad");
	/* 2. overwrite latency */
	static double lat[200000];
	for (size_t i = 0; i < N; i++) {
		double t0 = now();
		poise_pwrite(p, fd, buf, 4096, (off_t)offs[i]);
		lat[i] = now() - t0;
	}
	double sum = 0;
	for (size_t i = 0; i < N; i++)
		sum += lat[i];
	qsort(lat, N, 8, cmp_d);
	row("4 KiB overwrite, mean latency", sum / N * 1e6, "us", "", 0, "<= 1 us", "overwrite_4k_mean_us");
	row("4 KiB overwrite, p50 latency", lat[N / 2] * 1e6, "us", "", 0, "", "overwrite_4k_p50_us");
	row("4 KiB overwrite, p99 latency", lat[N * 99 / 100] * 1e6, "us", "", 0, "", "overwrite_4k_p99_us");
	poise_close(p, fd);
	/* 3. append + fsync: steady state (blocks touched once before, as a
	 * pool in use), with the flush instruction this CPU has and with none
	 * (what an eADR platform does) */
	int afd = poise_open(p, "/log", O_CREAT | O_WRONLY | O_APPEND, 0644);
	const int NA = 100000;
	double t0, ta[2];
	for (int i = 0; i < NA; i++)
		poise_pwrite(p, afd, buf, 4096, 0);
	enum poise_flush_kind fk = poise_flush_kind();
	for (int mode = 0; mode < 2; mode++) {
		poise_ftruncate(p, afd, 0);
		if (mode)
			poise_flush_set(POISE_FLUSH_NONE);
		t0 = now();
		for (int i = 0; i < NA; i++) {
			poise_pwrite(p, afd, buf, 4096, 0);
			poise_fsync(p, afd);
		}
		ta[mode] = now() - t0;
	}
	poise_flush_set(fk);
	poise_close(p, afd);
	char what[96];
	snprintf(what, sizeof(what), "4 KiB append + fsync, 1 thread (%s)", poise_flush_name(fk));
	row(what, NA / ta[0], "ops/s", "", 0, ">= 500,000", "append_fsync_4k_ops");
	row("4 KiB append + fsync, 1 thread (no flush: eADR)", NA / ta[1], "ops/s", "", 0, ">= 500,000", "append_fsync_4k_ops_eadr");
	/* 4. create / unlink vs tmpfs */
	const int NC = 20000;
	char n[256], dir[] = "/dev/shm/poise-bench-tmpfs-XXXXXX";
	mkdtemp(dir);
	double cp[5], ct[5], up[5], ut[5];
	poise_mkdir(p, "/c", 0755);
	for (int r = 0; r < 5; r++) {
		t0 = now();
		for (int i = 0; i < NC; i++) {
			snprintf(n, sizeof(n), "/c/f%d", i);
			poise_close(p, poise_open(p, n, O_CREAT | O_WRONLY, 0644));
		}
		double t1 = now();
		for (int i = 0; i < NC; i++) {
			snprintf(n, sizeof(n), "%s/f%d", dir, i);
			close(open(n, O_CREAT | O_WRONLY, 0644));
		}
		double t2 = now();
		for (int i = 0; i < NC; i++) {
			snprintf(n, sizeof(n), "/c/f%d", i);
			poise_unlink(p, n);
		}
		double t3 = now();
		for (int i = 0; i < NC; i++) {
			snprintf(n, sizeof(n), "%s/f%d", dir, i);
			unlink(n);
		}
		double t4 = now();
		cp[r] = (t1 - t0) / NC;
		ct[r] = (t2 - t1) / NC;
		up[r] = (t3 - t2) / NC;
		ut[r] = (t4 - t3) / NC;
	}
	rmdir(dir);
	qsort(cp, 5, 8, cmp_d);
	qsort(ct, 5, 8, cmp_d);
	qsort(up, 5, 8, cmp_d);
	qsort(ut, 5, 8, cmp_d);
	row("create + close (ops/s)", 1 / cp[2], "ops/s", "tmpfs open(O_CREAT)+close", 1 / ct[2], "> 1", "create_vs_tmpfs");
	row("unlink (ops/s)", 1 / up[2], "ops/s", "tmpfs unlink", 1 / ut[2], "> 1", "unlink_vs_tmpfs");
	poise_pool_close(&p);
	unlink(img);
	/* 5. mount time of a 16 GiB pool (never pre-faulted: mount touches
	 * only the superblock, the log and the inode table) */
	unsetenv("POISE_PREFAULT");
	if (poise_mkfs(img, 16ULL << 30, 0, 0) == 0) {
		double best = 1e9;
		for (int r = 0; r < 3; r++) {
			t0 = now();
			if (poise_pool_open(img, 0, &p) < 0)
				break;
			double t = now() - t0;
			poise_pool_close(&p);
			if (t < best)
				best = t;
		}
		row("mount of a 16 GiB pool (1,048,576 inodes)", best * 1e3, "ms", "", 0, "well under 1 s", "mount_16g_ms");
	} else {
		fprintf(stderr, "bench_fs: no room for a 16 GiB pool in /dev/shm: %s\n", poise_errmsg());
	}
	unlink(img);
	if (js)
		fclose(js);
	return 0;
}
