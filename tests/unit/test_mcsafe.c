/*
 * test_mcsafe.c - the machine-check-safe copy: it copies like memcpy at
 * every size and alignment, stops exactly at the first unreadable or
 * unwritable pool byte (emulated poison: PROT_NONE; a truncated file:
 * SIGBUS), and leaves every other fault fatal.
 */
#include "harness.h"
#include "dev/mcsafe.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PG 4096

static uint8_t *pool; /* 4 pages, registered; page 2 is PROT_NONE in fault tests */

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

static int copy_case(uint8_t *src, uint8_t *dst, uint8_t *ref, size_t len, int nt)
{
	for (int so = 0; so < 64; so += 13)
		for (int dof = 0; dof < 64; dof += 11) {
			memset(dst, 0xEE, len + 128);
			memcpy(ref, dst, len + 128);
			memcpy(ref + 32 + dof, src + so, len);
			uint64_t f = 1;
			if (poise_mc_copy(dst + 32 + dof, src + so, len, nt, &f) != len || f != 1)
				return 0;
			if (memcmp(dst, ref, len + 128)) /* guard bytes untouched too */
				return 0;
		}
	return 1;
}

static void t_copy_matches_memcpy(void)
{
	static uint8_t src[3 << 20], dst[3 << 20], ref[3 << 20];
	static const size_t big[] = {4095, 4096, 4097, 65536 + 7, (2 << 20) + 3};
	fill(src, sizeof(src), 1);
	for (int nt = 0; nt < 2; nt++) {
		for (size_t len = 0; len < 2300; len += len < 300 ? 1 : 37)
			CHECK(copy_case(src, dst, ref, len, nt));
		for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
			CHECK(copy_case(src, dst, ref, big[i], nt));
	}
}

static void t_fault_read_stops_exactly(void)
{
	uint8_t buf[3 * PG];
	CHECK_EQ(mprotect(pool + 2 * PG, PG, PROT_NONE), 0);
	for (int nt = 0; nt < 2; nt++)
		for (size_t len = 1; len <= 2 * PG + 100; len = len < 80 ? len + 1 : len * 5 / 4) {
			for (size_t back = 0; back <= len + 8 && back <= 2 * PG; back += (back < 70 ? 1 : 61)) {
				size_t off = 2 * PG - back; /* `back` good bytes before the bad page */
				uint64_t f = 0;
				memset(buf, 0, sizeof(buf));
				size_t k = poise_mc_copy(buf, pool + off, len, nt, &f);
				size_t want = len < back ? len : back;
				CHECK_EQ(k, want);
				CHECK(!memcmp(buf, pool + off, k));
				if (want < len) {
					CHECK(f == (uintptr_t)(pool + 2 * PG));
				} else {
					CHECK_EQ(f, 0); /* untouched without a fault */
				}
			}
		}
	mprotect(pool + 2 * PG, PG, PROT_READ | PROT_WRITE);
}

static void t_fault_write_stops_exactly(void)
{
	uint8_t src[3 * PG];
	fill(src, sizeof(src), 9);
	CHECK_EQ(mprotect(pool + 2 * PG, PG, PROT_READ), 0);
	for (int nt = 0; nt < 2; nt++)
		for (size_t len = 1; len <= 2 * PG; len = len < 80 ? len + 1 : len * 3 / 2) {
			size_t back = len / 2, off = 2 * PG - back;
			uint64_t f;
			size_t k = poise_mc_copy(pool + off, src, len, nt, &f);
			CHECK_EQ(k, back);
			CHECK(!memcmp(pool + off, src, k));
			if (back < len)
				CHECK(f == (uintptr_t)(pool + 2 * PG));
		}
	mprotect(pool + 2 * PG, PG, PROT_READ | PROT_WRITE);
}

static void t_sigbus_truncated_file(void)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/trunc", h_tmpdir());
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 4 * PG), 0);
	uint8_t *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	memset(m, 5, 4 * PG);
	CHECK_EQ(poise_mc_register(m, 4 * PG), 0);
	CHECK_EQ(ftruncate(fd, PG + PG / 2), 0); /* pages 2, 3 now raise SIGBUS */
	uint8_t buf[4 * PG];
	uint64_t f;
	size_t k = poise_mc_copy(buf, m + 100, 3 * PG, 0, &f);
	CHECK_EQ(k, 2 * PG - 100);
	CHECK(f == (uintptr_t)(m + 2 * PG)); /* no machine-check flag: not poison */
	poise_mc_unregister(m);
	munmap(m, 4 * PG);
	close(fd);
	unlink(path);
}

/* Run fn in a child; return its wait status. */
static int in_child(void (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		fn();
		_exit(0); /* survived: the test fails */
	}
	int st;
	waitpid(pid, &st, 0);
	return st;
}

/* Killed by the signal, or (sanitizer builds, whose handler we chain to)
 * ended by the sanitizer's report: either way, not survived. */
static int died(int st, int sig)
{
	if (WIFSIGNALED(st))
		return WTERMSIG(st) == sig;
	return H_SANITIZED && WIFEXITED(st) && WEXITSTATUS(st) != 0;
}

static void load_outside_guard(void)
{
	mprotect(pool + 2 * PG, PG, PROT_NONE);
	fprintf(stderr, "    (expected) a plain load from poisoned pool memory:\n");
	volatile uint8_t c = pool[2 * PG + 5];
	(void)c;
}

static void guarded_copy_outside_pool(void)
{
	uint8_t *m = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t buf[64];
	uint64_t f;
	fprintf(stderr, "    (expected) a guarded copy from memory that is not a pool:\n");
	poise_mc_copy(buf, m, 64, 0, &f);
}

static void guarded_copy_bad_user_buffer(void)
{
	uint8_t *m = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t f;
	fprintf(stderr, "    (expected) a guarded read into a read-only user buffer:\n");
	poise_mc_copy(m, pool, 64, 0, &f);
}

static void t_fault_outside_guard_kills(void)
{
	/* poisoned pool memory touched outside a guarded copy: SIGBUS, as real
	 * poison (the emulated PROT_NONE fault is translated) */
	CHECK(died(in_child(load_outside_guard), SIGBUS));
}

static void t_fault_outside_pool_kills(void)
{
	CHECK(died(in_child(guarded_copy_outside_pool), SIGSEGV));
}

static void t_fault_on_user_buffer_kills(void)
{
	CHECK(died(in_child(guarded_copy_bad_user_buffer), SIGSEGV));
}

static void t_register_limits(void)
{
	static uint8_t blocks[POISE_MC_MAX_RANGES + 1][64];
	int ok = 0;
	for (int i = 0; i <= POISE_MC_MAX_RANGES; i++)
		ok += poise_mc_register(blocks[i], 64) == 0;
	CHECK_EQ(ok, POISE_MC_MAX_RANGES - 1); /* the test pool holds one slot */
	for (int i = 0; i <= POISE_MC_MAX_RANGES; i++)
		poise_mc_unregister(blocks[i]);
	CHECK_EQ(poise_mc_register(blocks[0], 64), 0);
	poise_mc_unregister(blocks[0]);
}

int main(void)
{
	if (poise_mc_init() != 0)
		return 2;
	pool = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(pool, 4 * PG, 3);
	poise_mc_register(pool, 4 * PG);
	RUN(t_copy_matches_memcpy);
	RUN(t_fault_read_stops_exactly);
	RUN(t_fault_write_stops_exactly);
	RUN(t_sigbus_truncated_file);
	RUN(t_fault_outside_guard_kills);
	RUN(t_fault_outside_pool_kills);
	RUN(t_fault_on_user_buffer_kills);
	RUN(t_register_limits);
	rmdir(h_tmpdir());
	DONE();
}
