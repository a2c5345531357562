/*
 * persist.h - making stores durable: flush, fence, persist, and the choice
 * of flush instruction.
 *
 * All file-system code goes through these; nothing above src/dev/ issues
 * clwb/clflushopt/sfence itself.  The instruction is chosen once by CPUID
 * (clwb > clflushopt > clflush); POISE_FLUSH=clwb|clflushopt|clflush|none
 * overrides it, and a device in an eADR persistence domain (CPU caches are
 * persistent) selects none.  Fences are always real.
 */
#ifndef POISE_PERSIST_H
#define POISE_PERSIST_H

#include <stddef.h>
#include <stdint.h>

enum poise_flush_kind {
	POISE_FLUSH_CLWB,
	POISE_FLUSH_CLFLUSHOPT,
	POISE_FLUSH_CLFLUSH,
	POISE_FLUSH_NONE,
};

#define POISE_CACHELINE 64

/* Choose the instruction (idempotent).  Returns -EINVAL with a message for a
 * bad POISE_FLUSH value, or for an instruction the CPU lacks. */
int poise_persist_init(void);
enum poise_flush_kind poise_flush_kind(void);
const char *poise_flush_name(enum poise_flush_kind k);
/* Force a kind (tests, eADR).  Unsupported instructions give -EINVAL. */
int poise_flush_set(enum poise_flush_kind k);

/* Write back every cache line overlapping [addr, addr+len); no fence. */
void poise_flush(const void *addr, size_t len);
#ifdef POISE_TEST_HOOKS
/* The crash-test hooks (track.c), compiled into test builds only (make's
 * libpoise-test.a, -DPOISE_TEST_HOOKS); the shipped library has none.
 *
 * With POISE_CRASH_FENCE=N the process exits (status 99) at its N-th
 * fence, as if the power failed there; N = -1 only counts.  Zero (unset)
 * costs one predictable branch per fence. */
extern long poise_fence_crash_at;
void poise_fence_hook(void);
long poise_fence_count(void);
/* Read POISE_CRASH_FENCE (poise_persist_init calls it once). */
void poise_fence_env(void);

/* Crash-state tracking: after poise_track_begin() the device layer reports
 * stores, flushes and fences; at the crash fence the lines not yet durable
 * are written to poise_track_dump_path (pool offset, then the 64 bytes they
 * held when last durable) and the process exits (99; 98 when the dump could
 * not be written). */
extern int poise_track_on;
extern const char *poise_track_dump_path;
void poise_track_begin(const void *base, size_t len);
void poise_track_store(const void *addr, size_t len, int nt);
void poise_track_flush(const void *addr, size_t len);
void poise_track_fence(void);
void poise_track_wrote(const void *addr, const void *buf, size_t len);
__attribute__((noreturn)) void poise_track_crash(const char *path);
/* A deliberately wrong writer, for the harness to catch: 1 = the log
 * applies its records without flushing them. */
extern int poise_bug;
/* Called by the log after it applied each record (pool offset of the
 * record), when set: a test stops a commit between two of its stores. */
extern void (*poise_apply_hook)(uint64_t off);
#else
/* The shipped library: every hook site compiles to nothing. */
#define poise_fence_crash_at 0L
#define poise_track_on 0
#define poise_bug 0
#define poise_apply_hook ((void (*)(uint64_t))0)
static inline void poise_fence_hook(void)
{
}
static inline void poise_track_store(const void *addr, size_t len, int nt)
{
	(void)addr, (void)len, (void)nt;
}
static inline void poise_track_flush(const void *addr, size_t len)
{
	(void)addr, (void)len;
}
static inline void poise_track_wrote(const void *addr, const void *buf, size_t len)
{
	(void)addr, (void)buf, (void)len;
}
#endif

/* 1 while this thread has stored to a pool (poise_dev_store and the other
 * device writes) since its last fence: a commit fences first only then, so
 * a transaction whose records are all it wrote pays no fence for them. */
extern __thread int poise_unfenced;

/* Order preceding flushes and non-temporal stores before later stores. */
static inline void poise_fence(void)
{
	__asm__ __volatile__("sfence" ::: "memory");
	poise_unfenced = 0;
	if (__builtin_expect(poise_fence_crash_at != 0 || poise_track_on, 0))
		poise_fence_hook();
}
static inline void poise_persist(const void *addr, size_t len)
{
	poise_flush(addr, len);
	poise_fence();
}

#endif
