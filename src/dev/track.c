/*
 * track.c - crash-state tracking for tests (the crash harness of
 * tests/unit/test_fs_crash.c), and the crash fence (POISE_CRASH_FENCE);
 * compiled into test builds only (libpoise-test.a, -DPOISE_TEST_HOOKS),
 * never into the shipped library.  When poise_track_on is set, the device
 * layer reports every store to the pool mapping before it happens, every
 * flush and every fence; this file keeps, per 64-byte line not yet known
 * durable, the content it last had when durable and whether it has been
 * flushed since its last store:
 *
 *   store (cached)      line -> DIRTY (its durable content captured first)
 *   store (non-temporal) line -> FLUSHED by the storing thread
 *   flush by thread T    DIRTY -> FLUSHED by T (and by any earlier flusher)
 *   fence by thread T    lines FLUSHED by T are durable: forgotten
 *   backend write        the bytes it wrote are the lines' durable content
 *
 * A fence orders only its own thread's flushes (x86 sfence): a line one
 * thread wrote back is not durable because another thread fenced, so each
 * line keeps the set of threads that flushed it since its last store (a
 * 64-bit mask of thread slots; slot = thread number mod 64, so with more
 * than 64 tracked threads two may share a slot: the harness runs fewer).
 *
 * At a crash point (the N-th fence, before it takes effect) every line
 * still tracked may hold its new or its old content: poise_track_crash()
 * writes them (pool offset, old bytes) for the harness, which builds crash
 * images from any subset of them, and exits with track_lock held, so no
 * other thread stores, untracked, after the dump.  Off (the default), the
 * hooks cost one predictable branch.  Lock rules: track_lock guards the
 * table.
 */
#include "dev/persist.h"
#include "dev/mcsafe.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int poise_track_on;
int poise_bug;
void (*poise_apply_hook)(uint64_t off);

/* ---- the crash fence (POISE_CRASH_FENCE) ---- */
long poise_fence_crash_at;
static long fences;

const char *poise_track_dump_path;

void poise_fence_env(void)
{
	const char *crash = secure_getenv("POISE_CRASH_FENCE");
	if (crash && *crash)
		poise_fence_crash_at = strtol(crash, NULL, 10);
}

void poise_fence_hook(void)
{
	long n = __atomic_add_fetch(&fences, 1, __ATOMIC_SEQ_CST);
	if (n == poise_fence_crash_at) {
		/* the power fails before this fence takes effect */
		if (poise_track_on)
			poise_track_crash(poise_track_dump_path);
		_exit(99);
	}
	if (poise_track_on)
		poise_track_fence();
}

long poise_fence_count(void)
{
	return __atomic_load_n(&fences, __ATOMIC_SEQ_CST);
}

struct line {
	uintptr_t addr;	  /* 0: empty slot */
	uint64_t flushers; /* thread slots that wrote it back since its last store; 0: dirty */
	uint8_t old[POISE_CACHELINE];
};

static __thread uint64_t my_slot; /* 1 << (thread number % 64); 0: not yet numbered */
static unsigned next_thread;

static uint64_t me(void)
{
	if (!my_slot)
		my_slot = 1ULL << (__atomic_fetch_add(&next_thread, 1, __ATOMIC_RELAXED) % 64);
	return my_slot;
}

static struct line *tab;
static size_t cap, used;
static uintptr_t base_addr;
static size_t base_len;
static pthread_mutex_t track_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot(uintptr_t a)
{
	return (size_t)((a >> 6) * 0x9e3779b97f4a7c15ULL) & (cap - 1);
}

static struct line *find(uintptr_t a, int add)
{
	if (add && (used + 1) * 2 > cap) {
		size_t ncap = cap ? cap * 2 : 4096;
		struct line *old = tab, *nt = calloc(ncap, sizeof(*nt));
		if (!nt)
			return NULL;
		size_t ocap = cap;
		tab = nt;
		cap = ncap;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].addr) {
				size_t j = slot(old[i].addr);
				while (tab[j].addr)
					j = (j + 1) & (cap - 1);
				tab[j] = old[i];
			}
		free(old);
	}
	if (!cap)
		return NULL;
	for (size_t j = slot(a);; j = (j + 1) & (cap - 1)) {
		if (tab[j].addr == a)
			return &tab[j];
		if (!tab[j].addr) {
			if (!add)
				return NULL;
			tab[j].addr = a;
			used++;
			return &tab[j];
		}
	}
}

void poise_track_begin(const void *base, size_t len)
{
	pthread_mutex_lock(&track_lock);
	free(tab);
	tab = NULL;
	cap = used = 0;
	base_addr = (uintptr_t)base;
	base_len = len;
	pthread_mutex_unlock(&track_lock);
	__atomic_store_n(&poise_track_on, 1, __ATOMIC_RELEASE);
}

void poise_track_store(const void *addr, size_t len, int nt)
{
	uintptr_t a = (uintptr_t)addr & ~(uintptr_t)(POISE_CACHELINE - 1), end = (uintptr_t)addr + len;
	pthread_mutex_lock(&track_lock);
	for (; a < end; a += POISE_CACHELINE) {
		if (a < base_addr || a >= base_addr + base_len)
			continue;
		struct line *l = find(a, 0);
		if (!l) {
			uint8_t cur[POISE_CACHELINE];
			uint64_t fault;
			if (poise_mc_copy(cur, (const void *)a, POISE_CACHELINE, 0, &fault) != POISE_CACHELINE)
				continue; /* poisoned: not part of a crash test */
			if (!(l = find(a, 1)))
				continue;
			memcpy(l->old, cur, POISE_CACHELINE);
		}
		l->flushers = nt ? me() : 0;
	}
	pthread_mutex_unlock(&track_lock);
}

void poise_track_flush(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr & ~(uintptr_t)(POISE_CACHELINE - 1), end = (uintptr_t)addr + len;
	uint64_t t = me();
	pthread_mutex_lock(&track_lock);
	for (; cap && a < end; a += POISE_CACHELINE) {
		struct line *l = find(a, 0);
		if (l)
			l->flushers |= t;
	}
	pthread_mutex_unlock(&track_lock);
}

/* Bytes written around the mapping (the backend's pwrite, where the page
 * is protected): durable at return, so a tracked line overlapping them
 * has them as its durable content from now on.  (The rest of such a line
 * keeps its old bytes: a pessimistic model, since the backend's write
 * writes the whole line back.) */
void poise_track_wrote(const void *addr, const void *buf, size_t len)
{
	uintptr_t lo = (uintptr_t)addr, end = lo + len, a = lo & ~(uintptr_t)(POISE_CACHELINE - 1);
	pthread_mutex_lock(&track_lock);
	for (; cap && a < end; a += POISE_CACHELINE) {
		struct line *l = find(a, 0);
		if (!l)
			continue;
		uintptr_t s = a > lo ? a : lo, e = a + POISE_CACHELINE < end ? a + POISE_CACHELINE : end;
		memcpy(l->old + (s - a), (const uint8_t *)buf + (s - lo), e - s);
	}
	pthread_mutex_unlock(&track_lock);
}

void poise_track_fence(void)
{
	uint64_t t = me();
	pthread_mutex_lock(&track_lock);
	/* rebuild without the lines this fence made durable */
	size_t ocap = cap;
	struct line *old = tab;
	tab = NULL;
	cap = used = 0;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].addr && !(old[i].flushers & t)) {
			struct line *l = find(old[i].addr, 1);
			if (l)
				*l = old[i];
		}
	free(old);
	pthread_mutex_unlock(&track_lock);
}

void poise_track_crash(const char *path)
{
	pthread_mutex_lock(&track_lock); /* held through the exit */
	int fd = path ? open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644) : -1;
	for (size_t i = 0; fd >= 0 && i < cap; i++) {
		if (!tab[i].addr)
			continue;
		uint64_t off = tab[i].addr - base_addr;
		if (write(fd, &off, 8) != 8 || write(fd, tab[i].old, POISE_CACHELINE) != POISE_CACHELINE)
			_exit(98);
	}
	if (fd >= 0 && close(fd) < 0)
		_exit(98);
	_exit(99);
}
