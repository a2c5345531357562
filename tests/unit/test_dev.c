/*
 * test_dev.c - the device layer on emulated pools: create/open errors and
 * ownership, reads that stop at exactly the bad sector (every sector of a
 * page in turn), writes that clear at sector granularity, the sidecar,
 * readers racing an injector, and a page-rewriting clear (fsdax's) racing
 * the I/O of its page's other sectors, and a fork while that lock is held.
 */
#include "harness.h"
#include "dev/dev.h"
#include "dev/persist.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PG 4096
#define SZ (1u << 20)

static char path[600];

static void pattern(uint8_t *p, size_t n, uint64_t off)
{
	/* 0x01..0x7f: never zero (a cleared sector), never >= 0x80 (scrambled) */
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(1 + ((off + i) * 13 + ((off + i) >> 9)) % 127);
}

/* A fresh 1 MiB pool filled with the pattern. */
static struct poise_dev *fresh(void)
{
	static int k;
	struct poise_dev *d = NULL;
	snprintf(path, sizeof(path), "%s/pool%d", h_tmpdir(), k++);
	if (poise_dev_create(path, SZ) < 0 || poise_dev_open(path, &d) < 0)
		return NULL;
	uint8_t *buf = malloc(SZ);
	pattern(buf, SZ, 0);
	ssize_t w = poise_dev_write(d, 0, buf, SZ);
	free(buf);
	return w == SZ ? d : NULL;
}

static void gone(struct poise_dev **d)
{
	char side[700];
	poise_dev_close(d);
	unlink(path);
	snprintf(side, sizeof(side), "%s.badblocks", path);
	unlink(side);
}

/* Does [off, off+len) of the pool read back as the pattern? */
static int is_pattern(const uint8_t *buf, size_t len, uint64_t off)
{
	uint8_t *want = malloc(len ? len : 1);
	pattern(want, len, off);
	int ok = !memcmp(buf, want, len);
	free(want);
	return ok;
}

static void t_create_errors(void)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/c", h_tmpdir());
	CHECK_EQ(poise_dev_create(p, 1000), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "multiple of 4096");
	CHECK_EQ(poise_dev_create(p, 0), -EINVAL);
	CHECK_EQ(poise_dev_create(p, 8192), 0);
	CHECK_EQ(poise_dev_create(p, 8192), -EEXIST);
	CHECK_STR_HAS(poise_errmsg(), "File exists");
	unlink(p);
	snprintf(p, sizeof(p), "%s/no/such/dir", h_tmpdir());
	CHECK_EQ(poise_dev_create(p, 8192), -ENOENT);
}

static void t_open_errors(void)
{
	struct poise_dev *d = (void *)1;
	char p[700];
	snprintf(p, sizeof(p), "%s/nothere", h_tmpdir());
	CHECK_EQ(poise_dev_open(p, &d), -ENOENT);
	CHECK(d == NULL);
	CHECK_STR_HAS(poise_errmsg(), "nothere");
	CHECK_EQ(poise_dev_open(h_tmpdir(), &d), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "not a pool");
	snprintf(p, sizeof(p), "%s/odd", h_tmpdir());
	FILE *f = fopen(p, "w");
	fputs("hello", f);
	fclose(f);
	CHECK_EQ(poise_dev_open(p, &d), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "not a positive multiple of 4096");
	truncate(p, 0);
	CHECK_EQ(poise_dev_open(p, &d), -EINVAL);
	unlink(p);
}

static void t_owned_once_in_process(void)
{
	struct poise_dev *d = fresh(), *d2 = NULL;
	CHECK(d);
	CHECK_EQ(poise_dev_open(path, &d2), -EBUSY);
	CHECK_STR_HAS(poise_errmsg(), "already open in this process");
	gone(&d);
}

static void t_owned_once_across_processes(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	poise_dev_close(&d);
	int p2c[2], c2p[2];
	CHECK_EQ(pipe(p2c), 0);
	CHECK_EQ(pipe(c2p), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct poise_dev *cd;
		char c = poise_dev_open(path, &cd) == 0 ? 'y' : 'n';
		write(c2p[1], &c, 1);
		read(p2c[0], &c, 1); /* hold the pool until told */
		_exit(0);
	}
	char c;
	CHECK_EQ(read(c2p[0], &c, 1), 1);
	CHECK_EQ(c, 'y');
	int ret = poise_dev_open(path, &d);
	char want[64];
	snprintf(want, sizeof(want), "pool in use by pid %d", (int)pid);
	write(p2c[1], "x", 1);
	waitpid(pid, NULL, 0);
	CHECK_EQ(ret, -EBUSY);
	CHECK_STR_HAS(poise_errmsg(), want);
	CHECK_EQ(poise_dev_open(path, &d), 0); /* free again once the owner exits */
	gone(&d);
}

static void t_roundtrip_and_bounds(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	static uint8_t buf[300000];
	uint64_t offs[] = {0, 1, 511, 4095, 4096, 100000, SZ - 300000};
	size_t lens[] = {1, 63, 64, 255, 256, 4096, 5000, 300000};
	for (size_t i = 0; i < 7; i++)
		for (size_t j = 0; j < 8; j++) {
			if (offs[i] + lens[j] > SZ)
				continue;
			memset(buf, 0, lens[j]);
			CHECK_EQ(poise_dev_read(d, offs[i], buf, lens[j]), (long long)lens[j]);
			CHECK(is_pattern(buf, lens[j], offs[i]));
		}
	CHECK_EQ(poise_dev_read(d, SZ - 10, buf, 11), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "leaves the pool");
	CHECK_EQ(poise_dev_write(d, SZ, buf, 1), -EINVAL);
	CHECK_EQ(poise_dev_read(d, SZ, buf, 0), 0);
	gone(&d);
}

/* Every sector of a page injected in turn, with reads around it. */
static void t_every_sector_of_a_page(void)
{
	const uint64_t P = 16 * PG; /* the page under test */
	static uint8_t buf[4 * PG];
	for (unsigned s = 0; s < PG / 512; s++) {
		struct poise_dev *d = fresh();
		CHECK(d);
		uint64_t bad = P + s * 512;
		CHECK_EQ(poise_dev_inject(d, bad / 512, 1), 0);
		/* a read from the page before stops exactly at the bad sector */
		ssize_t k = poise_dev_read(d, P - PG, buf, 3 * PG);
		CHECK_EQ(k, (long long)(bad - (P - PG)));
		CHECK(is_pattern(buf, (size_t)k, P - PG));
		/* a read starting in it fails, naming the sector */
		CHECK_EQ(poise_dev_read(d, bad + 100, buf, 10), -EIO);
		char want[64];
		snprintf(want, sizeof(want), "pool sector %llu", (unsigned long long)(bad / 512));
		CHECK_STR_HAS(poise_errmsg(), want);
		/* every other sector of the same page reads normally */
		for (unsigned o = 0; o < PG / 512; o++) {
			if (o == s)
				continue;
			CHECK_EQ(poise_dev_read(d, P + o * 512, buf, 512), 512);
			CHECK(is_pattern(buf, 512, P + o * 512));
		}
		/* the good tail of the page and beyond, in one read */
		if (s < 7) {
			CHECK_EQ(poise_dev_read(d, bad + 512, buf, 2 * PG), 2 * PG);
			CHECK(is_pattern(buf, 2 * PG, bad + 512));
		}
		/* the neighbours */
		CHECK_EQ(poise_dev_read(d, P + PG, buf, PG), PG);
		CHECK(is_pattern(buf, PG, P + PG));
		gone(&d);
	}
}

static void t_injected_bytes_are_scrambled(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	CHECK_EQ(poise_dev_inject(d, 40, 2), 0);
	int fd = open(path, O_RDONLY);
	uint8_t raw[1024];
	CHECK_EQ(pread(fd, raw, 1024, 40 * 512), 1024);
	close(fd);
	int high = 0;
	for (int i = 0; i < 1024; i++)
		high += raw[i] >= 0x80;
	CHECK_EQ(high, 1024); /* the old data is gone from the media */
	gone(&d);
}

static void t_write_clears_subsector(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	uint8_t buf[PG];
	CHECK_EQ(poise_dev_inject(d, 100, 1), 0);
	CHECK_EQ(poise_dev_write(d, 100 * 512 + 7, "Z", 1), 1);
	CHECK_EQ(poise_dev_read(d, 100 * 512, buf, 512), 512);
	for (int i = 0; i < 512; i++)
		CHECK_EQ(buf[i], i == 7 ? 'Z' : 0); /* the rest of the sector is zeros */
	struct poise_bb_range *r;
	CHECK_EQ(poise_dev_badblocks(d, &r), 0);
	char side[700];
	snprintf(side, sizeof(side), "%s.badblocks", path);
	CHECK(access(side, F_OK) != 0); /* the sidecar lost its last entry */
	/* the sector's page is mapped again: neighbours still intact */
	CHECK_EQ(poise_dev_read(d, 96 * 512, buf, PG), PG);
	CHECK(is_pattern(buf, 4 * 512, 96 * 512));
	CHECK(is_pattern(buf + 5 * 512, 3 * 512, 101 * 512));
	gone(&d);
}

static void t_write_clears_cross_sector_and_page(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	static uint8_t src[3 * PG], buf[4 * PG];
	memset(src, 'w', sizeof(src));
	/* bad: sectors 15 (end of page 1), 16..17 (start of page 2), 23 (end of page 2) */
	CHECK_EQ(poise_dev_inject(d, 15, 3), 0);
	CHECK_EQ(poise_dev_inject(d, 23, 1), 0);
	/* write [15*512+300, 17*512+100): partly covers 15 and 17, wholly 16 */
	uint64_t off = 15 * 512 + 300, len = 2 * 512 - 200;
	CHECK_EQ(poise_dev_write(d, off, src, len), (long long)len);
	CHECK_EQ(poise_dev_read(d, 14 * 512, buf, 4 * 512), 4 * 512);
	CHECK(is_pattern(buf, 512, 14 * 512));
	for (int i = 0; i < 300; i++)
		CHECK_EQ(buf[512 + i], 0);
	for (uint64_t i = 0; i < len; i++)
		CHECK_EQ(buf[512 + 300 + i], 'w');
	for (int i = 100; i < 512; i++)
		CHECK_EQ(buf[3 * 512 + i], 0);
	/* sector 23 is untouched and still bad; sectors 18..22 still good */
	struct poise_bb_range *r;
	CHECK_EQ(poise_dev_badblocks(d, &r), 1);
	CHECK_EQ(r[0].sector, 23);
	free(r);
	CHECK_EQ(poise_dev_read(d, 18 * 512, buf, 10 * 512), 5 * 512);
	CHECK(is_pattern(buf, 5 * 512, 18 * 512));
	/* a large (non-temporal) write over the rest clears it */
	CHECK_EQ(poise_dev_write(d, 20 * 512, src, 2 * PG), 2 * PG);
	CHECK_EQ(poise_dev_badblocks(d, &r), 0);
	CHECK_EQ(poise_dev_read(d, 20 * 512, buf, 2 * PG), 2 * PG);
	CHECK(!memcmp(buf, src, 2 * PG));
	gone(&d);
}

static void t_write_good_sector_of_bad_page(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	uint8_t buf[512];
	memset(buf, 'g', sizeof(buf));
	CHECK_EQ(poise_dev_inject(d, 8 * 8 + 3, 1), 0); /* page 8, sector 3 */
	CHECK_EQ(poise_dev_write(d, 8 * PG + 5 * 512, buf, 512), 512);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(poise_dev_read(d, 8 * PG + 5 * 512, buf, 512), 512);
	for (int i = 0; i < 512; i++)
		CHECK_EQ(buf[i], 'g');
	CHECK_EQ(poise_dev_read(d, 8 * PG + 3 * 512, buf, 1), -EIO); /* still bad */
	gone(&d);
}

static void t_clear_api(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	uint8_t buf[2 * PG];
	CHECK_EQ(poise_dev_clear(d, 0, 8 * PG), 0); /* nothing bad: nothing changes */
	CHECK_EQ(poise_dev_read(d, 0, buf, 2 * PG), 2 * PG);
	CHECK(is_pattern(buf, 2 * PG, 0));
	CHECK_EQ(poise_dev_inject(d, 2, 2), 0);
	CHECK_EQ(poise_dev_clear(d, 2 * 512 + 10, 1), 0); /* touches sector 2 only */
	CHECK_EQ(poise_dev_read(d, 0, buf, 2 * PG), 3 * 512);
	CHECK(is_pattern(buf, 2 * 512, 0));
	for (int i = 0; i < 512; i++)
		CHECK_EQ(buf[2 * 512 + i], 0);
	CHECK_EQ(poise_dev_clear(d, 0, SZ), 0);
	CHECK_EQ(poise_dev_read(d, 0, buf, 2 * PG), 2 * PG);
	CHECK(is_pattern(buf + 4 * 512, 2 * PG - 4 * 512, 4 * 512));
	CHECK_EQ(poise_dev_clear(d, SZ - 1, 2), -EINVAL);
	gone(&d);
}

static void t_inject_bounds(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	CHECK_EQ(poise_dev_inject(d, SZ / 512, 1), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "beyond the pool");
	CHECK_EQ(poise_dev_inject(d, SZ / 512 - 1, 2), -EINVAL);
	CHECK_EQ(poise_dev_inject(d, 0, 0), -EINVAL);
	CHECK_EQ(poise_dev_inject(d, SZ / 512 - 1, 1), 0);
	gone(&d);
}

static struct poise_dev *child_dev;
static void load_protected(void)
{
	fprintf(stderr, "    (expected) a plain load from a re-protected page:\n");
	volatile uint8_t c = child_dev->base[7 * PG + 1];
	(void)c;
}

static void t_sidecar_survives_reopen(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	CHECK_EQ(poise_dev_inject(d, 7 * 8 + 1, 3), 0);
	CHECK_EQ(poise_dev_inject(d, 200, 1), 0);
	poise_dev_close(&d);
	char side[700], text[100] = {0};
	snprintf(side, sizeof(side), "%s.badblocks", path);
	int fd = open(side, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(read(fd, text, sizeof(text) - 1) > 0);
	close(fd);
	CHECK(!strcmp(text, "57 3\n200 1\n")); /* the kernel's format */
	CHECK_EQ(poise_dev_open(path, &d), 0);
	struct poise_bb_range *r;
	CHECK_EQ(poise_dev_badblocks(d, &r), 2);
	free(r);
	uint8_t buf[PG];
	CHECK_EQ(poise_dev_read(d, 7 * PG, buf, PG), 512);
	child_dev = d;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		load_protected();
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFSIGNALED(st) || (H_SANITIZED && WEXITSTATUS(st) != 0));
	gone(&d);
}

static void t_sidecar_malformed(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	poise_dev_close(&d);
	char side[700];
	snprintf(side, sizeof(side), "%s.badblocks", path);
	FILE *f = fopen(side, "w");
	fputs("8 1\n9 one\n", f);
	fclose(f);
	CHECK_EQ(poise_dev_open(path, &d), -EINVAL);
	char want[800];
	snprintf(want, sizeof(want), "%s:2: expected", side);
	CHECK_STR_HAS(poise_errmsg(), want);
	f = fopen(side, "w");
	fprintf(f, "%u 1\n", SZ / 512);
	fclose(f);
	CHECK_EQ(poise_dev_open(path, &d), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "beyond the pool");
	/* the pool itself was not touched: remove the sidecar and it opens */
	unlink(side);
	CHECK_EQ(poise_dev_open(path, &d), 0);
	uint8_t buf[PG];
	CHECK_EQ(poise_dev_read(d, 0, buf, PG), PG);
	CHECK(is_pattern(buf, PG, 0));
	gone(&d);
}

static void t_flush_kinds(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	enum poise_flush_kind old = poise_flush_kind();
	uint8_t buf[1000];
	memset(buf, 'f', sizeof(buf));
	for (int k = POISE_FLUSH_CLWB; k <= POISE_FLUSH_NONE; k++) {
		if (poise_flush_set(k) < 0) {
			CHECK_STR_HAS(poise_errmsg(), "no ");
			continue;
		}
		CHECK_EQ(poise_flush_kind(), k);
		CHECK_EQ(poise_dev_write(d, 12345 + k, buf, sizeof(buf)), sizeof(buf));
		CHECK_EQ(poise_dev_write(d, 99, buf, 10), 10);
	}
	poise_flush_set(old);
	gone(&d);
}

/* Two readers race an injector that poisons and clears: no crash, and no
 * read ever returns a scrambled byte (>= 0x80). */
struct race {
	struct poise_dev *d;
	int stop;
	long reads, short_reads, bad_bytes, injections;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	uint8_t *buf = malloc(64 * 1024);
	unsigned seed = (unsigned)(uintptr_t)&buf;
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		uint64_t off = (uint64_t)(rand_r(&seed) % (256 * 1024));
		size_t len = 1 + (size_t)(rand_r(&seed) % (32 * 1024));
		ssize_t k = poise_dev_read(r->d, off, buf, len);
		if (k < 0 && k != -EIO) {
			__atomic_fetch_add(&r->bad_bytes, 1000000, __ATOMIC_RELAXED);
			continue;
		}
		if (k < (ssize_t)len)
			__atomic_fetch_add(&r->short_reads, 1, __ATOMIC_RELAXED);
		for (ssize_t i = 0; i < k; i++)
			if (buf[i] >= 0x80)
				__atomic_fetch_add(&r->bad_bytes, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&r->reads, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

static void t_readers_race_injector(void)
{
	struct race r = {.d = fresh()};
	CHECK(r.d);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, reader, &r);
	unsigned seed = 42;
	/* at least 400 rounds, and on until the readers have seen an injection
	 * (a loaded machine may starve them for a while) */
	for (int i = 0; i < 400 || (__atomic_load_n(&r.short_reads, __ATOMIC_RELAXED) == 0 && i < 400000); i++) {
		uint64_t s = (uint64_t)(rand_r(&seed) % 512), c = 1 + (uint64_t)(rand_r(&seed) % 9);
		if (poise_dev_inject(r.d, s, c) == 0)
			r.injections++;
		usleep(200);
		if (rand_r(&seed) % 2)
			poise_dev_clear(r.d, 0, 512 * 512);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	fprintf(stderr, "    %ld reads, %ld short, %ld injections\n", r.reads, r.short_reads, r.injections);
	CHECK_EQ(r.bad_bytes, 0);
	CHECK(r.reads > 0);
	CHECK(r.short_reads > 0); /* the injections were seen */
	gone(&r.d);
}

/*
 * A clear that rewrites a whole page, as fsdax's does (save the page's good
 * sectors, punch and reallocate the block: zeros, write the good sectors
 * back), must not race the I/O of the page's other sectors: a write landing
 * between the save and the write-back would be lost, and a read in the
 * punched window would return zeros as data.  The test backend below is
 * the emulated one with that clear, its window held open for 20 ms; its
 * write_slow lets a writer that is already past its own checks meet the
 * window (it waits for the window, 50 ms at most).
 */
static const struct poise_dev_ops *real_ops;
static struct poise_dev_ops page_ops;
static int in_window, writer_in_slow;

static int wait_flag(int *flag, int ms)
{
	for (int i = 0; i < ms * 10 && !__atomic_load_n(flag, __ATOMIC_ACQUIRE); i++)
		usleep(100);
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

static int page_clear(struct poise_dev *d, uint64_t sector, uint64_t count)
{
	uint64_t b = sector * 512 & ~(uint64_t)(PG - 1);
	uint8_t save[PG], zero[PG] = {0};
	if (real_ops->read_slow(d, b, save, PG) != PG)
		return -EIO;
	for (uint64_t s = sector; s < sector + count && s * 512 < b + PG; s++)
		memset(save + (s * 512 - b), 0, 512);
	if (pwrite(d->fd, zero, PG, (off_t)b) != PG) /* the punched block */
		return -EIO;
	/* ... a hole the mapping reads as zeros, with no fault */
	(void)mprotect(d->base + b, PG, PROT_READ | PROT_WRITE);
	__atomic_store_n(&in_window, 1, __ATOMIC_RELEASE);
	usleep(20000);
	ssize_t w = pwrite(d->fd, save, PG, (off_t)b);
	__atomic_store_n(&in_window, 0, __ATOMIC_RELEASE);
	return w == PG ? 0 : -EIO;
}

static ssize_t page_write_slow(struct poise_dev *d, uint64_t off, const void *buf, size_t len)
{
	__atomic_store_n(&writer_in_slow, 1, __ATOMIC_RELEASE);
	(void)wait_flag(&in_window, 50);
	return real_ops->write_slow(d, off, buf, len);
}

struct page_io {
	struct poise_dev *d;
	uint64_t at, len;
	int stop;
	long reads, wrong;
	uint8_t val;
	ssize_t wrote;
};

static void *page_reader(void *arg)
{
	struct page_io *io = arg;
	uint8_t buf[PG];
	while (!__atomic_load_n(&io->stop, __ATOMIC_RELAXED)) {
		ssize_t k = poise_dev_read(io->d, io->at, buf, io->len);
		if (k > 0 && !is_pattern(buf, (size_t)k, io->at))
			__atomic_fetch_add(&io->wrong, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&io->reads, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *page_writer(void *arg)
{
	struct page_io *io = arg;
	uint8_t buf[512];
	memset(buf, io->val, sizeof(buf));
	io->wrote = poise_dev_write(io->d, io->at, buf, sizeof(buf));
	return NULL;
}

static void t_clear_rewriting_page_races_nothing(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	real_ops = d->ops;
	page_ops = *d->ops;
	page_ops.clear = page_clear;
	page_ops.write_slow = page_write_slow;
	d->ops = &page_ops;
	d->clear_rewrites = 1; /* as fsdax says of its clear */
	const uint64_t page = 16 * PG, bad = page / 512 + 3;
	/* one reader of a neighbour sector, one of a range that ends just
	 * short of the bad sector and starts in the page before */
	struct page_io rd = {.d = d, .at = page + 6 * 512, .len = 512};
	struct page_io rd2 = {.d = d, .at = page - 512, .len = 4 * 512};
	pthread_t rt, rt2;
	pthread_create(&rt, NULL, page_reader, &rd);
	pthread_create(&rt2, NULL, page_reader, &rd2);
	int lost = 0;
	for (int round = 0; round < 8; round++) {
		CHECK_EQ(poise_dev_inject(d, bad, 1), 0);
		struct page_io wr = {.d = d, .at = page + 5 * 512, .val = (uint8_t)(0x20 + round)};
		__atomic_store_n(&writer_in_slow, 0, __ATOMIC_RELAXED);
		pthread_t wt;
		pthread_create(&wt, NULL, page_writer, &wr);
		(void)wait_flag(&writer_in_slow, 50); /* past its checks: a clear now races it */
		CHECK_EQ(poise_dev_clear(d, bad * 512, 512), 0);
		pthread_join(wt, NULL);
		CHECK_EQ(wr.wrote, 512);
		uint8_t got[512], want[512];
		memset(want, wr.val, sizeof(want));
		CHECK_EQ(poise_dev_read(d, wr.at, got, 512), 512);
		lost += memcmp(got, want, 512) != 0;
		CHECK_EQ(poise_dev_read(d, bad * 512, got, 512), 512); /* cleared: zeros */
		CHECK_EQ(got[0] | got[511], 0);
	}
	__atomic_store_n(&rd.stop, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&rd2.stop, 1, __ATOMIC_RELAXED);
	pthread_join(rt, NULL);
	pthread_join(rt2, NULL);
	fprintf(stderr, "    %ld reads of a neighbour sector, %ld wrong; %ld reads into the page from the one before, %ld wrong; %d of 8 writes lost\n",
		rd.reads, rd.wrong, rd2.reads, rd2.wrong, lost);
	CHECK_EQ(lost, 0);
	CHECK_EQ(rd.wrong, 0);
	CHECK_EQ(rd2.wrong, 0);
	CHECK(rd.reads > 0 && rd2.reads > 0);
	d->ops = real_ops;
	gone(&d);
}

/* fork while another thread holds the device's bb_update (here: an access
 * near poison that takes 200 ms): the child, which reads a page with
 * listed poison (that read takes the lock), must not wait forever for a
 * lock its copy says is held by a thread it does not have. */
static int holding, held;
static ssize_t hold_a_while(void *arg)
{
	(void)arg;
	__atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
	usleep(200000);
	return 0;
}

static void *holder(void *d)
{
	(void)poise_dev_near_poison(d, 0, 512, 0, hold_a_while, NULL);
	__atomic_store_n(&held, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The exit status of child pid, or -1 when it did not end within 5 s (it
 * is killed then). */
static int child_status(pid_t pid)
{
	int st = -1, waited = 0;
	while (waited < 5000 && waitpid(pid, &st, WNOHANG) == 0) {
		usleep(10000);
		waited += 10;
	}
	if (waited >= 5000) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void t_fork_while_locked(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	CHECK_EQ(poise_dev_inject(d, 9, 1), 0); /* page 1 has a listed sector */
	d->clear_rewrites = 1; /* as on fsdax: the child's read of page 1 takes the lock */
	pthread_t t; /* detached: a finished, unjoined thread copied into the
		      * child would be a "leak" to ThreadSanitizer there */
	pthread_create(&t, NULL, holder, d);
	pthread_detach(t);
	CHECK(wait_flag(&holding, 5000)); /* (else the fork would not test the lock) */
	pid_t pid = fork();
	if (pid == 0) {
		uint8_t b[512];
		ssize_t k = poise_dev_read(d, 8 * 512, b, sizeof(b));
		_exit(k == 512 && is_pattern(b, sizeof(b), 8 * 512) ? 0 : 1);
	}
	CHECK(pid > 0);
	CHECK_EQ(child_status(pid), 0);
	CHECK(wait_flag(&held, 5000));
	gone(&d);
}

/* The same with a reader of the table in another thread at the fork: the
 * child's first change of the table (an injection) must not wait for that
 * reader's hold on the table's rwlock, which its copy still shows. */
static int reading, done_reading;
static void *table_reader(void *d)
{
	pthread_rwlock_rdlock(&((struct poise_dev *)d)->bb.lock);
	__atomic_store_n(&reading, 1, __ATOMIC_RELEASE);
	(void)wait_flag(&done_reading, 10000);
	pthread_rwlock_unlock(&((struct poise_dev *)d)->bb.lock);
	__atomic_store_n(&reading, 0, __ATOMIC_RELEASE);
	return NULL;
}

static void t_fork_while_table_read(void)
{
	struct poise_dev *d = fresh();
	CHECK(d);
	pthread_t t;
	pthread_create(&t, NULL, table_reader, d);
	pthread_detach(t);
	CHECK(wait_flag(&reading, 5000));
	pid_t pid = fork();
	if (pid == 0)
		_exit(poise_dev_inject(d, 20, 1) == 0 ? 0 : 1);
	CHECK(pid > 0);
	CHECK_EQ(child_status(pid), 0);
	__atomic_store_n(&done_reading, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 50000 && __atomic_load_n(&reading, __ATOMIC_ACQUIRE); i++)
		usleep(100);
	gone(&d);
}

int main(void)
{
	RUN(t_create_errors);
	RUN(t_open_errors);
	RUN(t_owned_once_in_process);
	RUN(t_owned_once_across_processes);
	RUN(t_roundtrip_and_bounds);
	RUN(t_every_sector_of_a_page);
	RUN(t_injected_bytes_are_scrambled);
	RUN(t_write_clears_subsector);
	RUN(t_write_clears_cross_sector_and_page);
	RUN(t_write_good_sector_of_bad_page);
	RUN(t_clear_api);
	RUN(t_inject_bounds);
	RUN(t_sidecar_survives_reopen);
	RUN(t_sidecar_malformed);
	RUN(t_flush_kinds);
	RUN(t_readers_race_injector);
	RUN(t_clear_rewriting_page_races_nothing);
	RUN(t_fork_while_locked);
	RUN(t_fork_while_table_read);
	rmdir(h_tmpdir());
	DONE();
}
