/*
 * persist.c - flush instructions chosen by CPUID (see persist.h).
 *
 * Invariant: `kind` is written by poise_persist_init()/poise_flush_set()
 * before pools are used and read relaxed by poise_flush(); changing it while
 * other threads flush is allowed (each flush uses one valid instruction).
 */
#include "dev/persist.h"
#include "common/err.h"

#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int kind = POISE_FLUSH_CLFLUSH;
__thread int poise_unfenced;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_err;

static int cpu_has(enum poise_flush_kind k)
{
	unsigned a, b, c, d;
	if (k == POISE_FLUSH_NONE)
		return 1;
	if (k == POISE_FLUSH_CLFLUSH) {
		if (!__get_cpuid(1, &a, &b, &c, &d))
			return 0;
		return (d >> 19) & 1;
	}
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return k == POISE_FLUSH_CLWB ? (b >> 24) & 1 : (b >> 23) & 1;
}

const char *poise_flush_name(enum poise_flush_kind k)
{
	static const char *names[] = {"clwb", "clflushopt", "clflush", "none"};
	return k >= POISE_FLUSH_CLWB && k <= POISE_FLUSH_NONE ? names[k] : "?";
}

int poise_flush_set(enum poise_flush_kind k)
{
	if (!cpu_has(k))
		return poise_err(EINVAL, "this CPU has no %s instruction", poise_flush_name(k));
	__atomic_store_n(&kind, k, __ATOMIC_RELAXED);
	return 0;
}

static void do_init(void)
{
#ifdef POISE_TEST_HOOKS
	poise_fence_env(); /* track.c: POISE_CRASH_FENCE, in test builds */
#endif
	const char *env = secure_getenv("POISE_FLUSH");
	if (env && *env) {
		for (int k = POISE_FLUSH_CLWB; k <= POISE_FLUSH_NONE; k++)
			if (!strcmp(env, poise_flush_name(k))) {
				init_err = poise_flush_set(k);
				return;
			}
		init_err = poise_err(EINVAL, "POISE_FLUSH=%s: expected clwb, clflushopt, clflush or none", env);
		return;
	}
	for (int k = POISE_FLUSH_CLWB; k <= POISE_FLUSH_CLFLUSH; k++)
		if (cpu_has(k)) {
			kind = k;
			return;
		}
	kind = POISE_FLUSH_NONE; /* no flush instruction at all: not x86 as we know it */
}

int poise_persist_init(void)
{
	pthread_once(&once, do_init);
	return init_err;
}

enum poise_flush_kind poise_flush_kind(void)
{
	return __atomic_load_n(&kind, __ATOMIC_RELAXED);
}

void poise_flush(const void *addr, size_t len)
{
	if (__builtin_expect(poise_track_on, 0))
		poise_track_flush(addr, len);
	if (len == 0)
		return;
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(POISE_CACHELINE - 1);
	uintptr_t end = (uintptr_t)addr + len;
	switch (__atomic_load_n(&kind, __ATOMIC_RELAXED)) {
	case POISE_FLUSH_CLWB:
		for (; p < end; p += POISE_CACHELINE)
			__asm__ __volatile__("clwb %0" : "+m"(*(volatile char *)p));
		break;
	case POISE_FLUSH_CLFLUSHOPT:
		for (; p < end; p += POISE_CACHELINE)
			__asm__ __volatile__("clflushopt %0" : "+m"(*(volatile char *)p));
		break;
	case POISE_FLUSH_CLFLUSH:
		for (; p < end; p += POISE_CACHELINE)
			__asm__ __volatile__("clflush %0" : "+m"(*(volatile char *)p));
		break;
	default:
		break;
	}
}
