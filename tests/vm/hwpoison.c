/*
 * hwpoison.c - real machine checks inside the pmem VM (tests/vm/): memory
 * failures injected with madvise(MADV_HWPOISON) into the pool's mapping run
 * the kernel's memory-failure path, as a real uncorrectable error does.
 * Checks: a read through the library that meets the poisoned page returns
 * the bytes before it and then -EIO, the page is added to the bad-block
 * table, the process lives on (the kernel reports the failure with SIGBUS
 * BUS_MCEERR_AR at madvise's return: a report, not a faulting access); the
 * same from several threads at once; a write over the page succeeds and
 * the file reads back whole.  (A plain load that faults on poison outside a
 * guarded copy still kills: compare.sh's mmap-load step shows it on a real
 * bad sector.  After a memory failure the kernel here "recovers" the DAX
 * page and maps it again, so no load faults there.)
 * Usage: hwpoison POOL (a poise file system, fsdax or devdax); root.
 */
#include "harness.h"
#include "poise.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif

static const char *pool_path;
static struct poise_pool *pool;
#define FSZ (256 * 1024)
static char want[FSZ];

static int poison_page_of(int fd, uint64_t off)
{
	void *a;
	if (poise_map(pool, fd, off & ~4095ULL, 4096, &a) < 0)
		return -1;
	return madvise(a, 4096, MADV_HWPOISON);
}

static void t_read_meets_machine_check(void)
{
	for (size_t i = 0; i < FSZ; i++)
		want[i] = (char)(i * 7 + 3);
	int fd = poise_open(pool, "/hw", O_CREAT | O_RDWR, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(poise_pwrite(pool, fd, want, FSZ, 0), FSZ);
	struct poise_info in0, in1;
	poise_info(pool, &in0);
	CHECK_EQ(poison_page_of(fd, 5 * 4096), 0);
	static char buf[FSZ];
	/* the bytes before the reported unit (the page; on devdax the kernel
	 * reports its whole 2 MiB mapping unit), then the end */
	ssize_t k = poise_pread(pool, fd, buf, FSZ, 0);
	CHECK(k == -EIO || (k >= 0 && k <= 5 * 4096 && k % 4096 == 0)); /* -EIO: the unit starts before the file */
	CHECK(k <= 0 || !memcmp(buf, want, (size_t)k));
	CHECK_EQ(poise_pread(pool, fd, buf, 100, 5 * 4096 + 10), -EIO);
	poise_info(pool, &in1);
	CHECK(in1.bad_sectors >= in0.bad_sectors + 8); /* the page joined the table */
	fprintf(stderr, "    the read stopped at byte %zd; the table grew by %llu sectors\n", k,
		(unsigned long long)(in1.bad_sectors - in0.bad_sectors));
	/* writing the file again: the blocks cannot be cleared from user
	 * space, so they move, and the file reads whole */
	CHECK_EQ(poise_pwrite(pool, fd, want, FSZ, 0), FSZ);
	CHECK_EQ(poise_pread(pool, fd, buf, FSZ, 0), FSZ);
	CHECK(!memcmp(buf, want, FSZ));
	poise_close(pool, fd);
}

static int tfd;
static long wrong; /* reads past the poison or with wrong bytes: must stay 0 */
static void *reader(void *arg)
{
	long id = (long)arg, bad = 0;
	static char b[4][FSZ];
	for (int i = 0; i < 50; i++) {
		ssize_t k = poise_pread(pool, tfd, b[id], FSZ, 0);
		if (k == FSZ)
			bad++; /* read before the poison landed */
		else if ((k > 9 * 4096 && k != FSZ) || (k > 0 && memcmp(b[id], want, (size_t)k)))
			__atomic_add_fetch(&wrong, 1, __ATOMIC_RELAXED);
	}
	return (void *)bad;
}

static void t_threads(void)
{
	tfd = poise_open(pool, "/hw", O_RDWR, 0);
	CHECK(tfd >= 0);
	pthread_t th[4];
	for (long i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, reader, (void *)i);
	CHECK_EQ(poison_page_of(tfd, 9 * 4096 + 100), 0); /* while they read */
	long bad = 0;
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r);
		bad += (long)r;
	}
	static char buf[FSZ];
	ssize_t k = poise_pread(pool, tfd, buf, FSZ, 0);
	CHECK(k == -EIO || (k >= 0 && k <= 9 * 4096));
	CHECK_EQ(wrong, 0);
	fprintf(stderr, "    4 threads x 50 reads; %ld saw the whole file before the poison landed\n", bad);
	poise_close(pool, tfd);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: hwpoison POOL\n");
		return 2;
	}
	pool_path = argv[1];
	if (poise_pool_open(pool_path, 0, &pool) < 0) {
		fprintf(stderr, "hwpoison: %s\n", poise_errmsg());
		return 1;
	}
	RUN(t_read_meets_machine_check);
	RUN(t_threads);
	poise_pool_close(&pool);
	DONE();
}
