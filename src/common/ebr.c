/*
 * ebr.c - epoch-based reclamation (see ebr.h for the rules).
 *
 * Why it is safe.  A reclaimer R unpublished object X, then took tag T
 * (the epoch became T), then ran membarrier(2), then read each thread's
 * record.  For a thread A:
 *   - A's record reads 0: had A's entry store come before the barrier
 *     membarrier ran on A, R would see it; so A's next section begins
 *     after that barrier and its reads of the tables see X gone.  A holds
 *     nothing from earlier sections (pointers do not outlive a section).
 *   - A's record reads e >= T: A loaded the epoch (acquire) after it was
 *     bumped to T, which R did after unpublishing X: A's reads see X gone.
 *   - e < T: A may hold X; not safe.
 * A thread that is not running took its barrier when it was switched out.
 * The records are read with acquire, and written with release at every
 * entry and exit, so a thread's accesses to X happen before R frees it.
 *
 * Lock rules: the record list is prepended under reg_lock and read without
 * it (records are never freed); a record's epoch is written by its thread
 * only (and by a forked child's in_child, with no other thread left).
 */
#include "common/ebr.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

uint64_t ebr_epoch = 1;
__thread struct ebr_rec *ebr_me;

static struct ebr_rec *recs; /* atomic head */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;
static int off;                   /* reclamation stopped for good (atomic) */
static unsigned long unguarded;   /* atomic */
static int registered;            /* membarrier registration done (atomic) */

static void on_exit_thread(void *p)
{
	struct ebr_rec *r = p;
	__atomic_store_n(&r->epoch, 0, __ATOMIC_RELEASE);
	r->depth = 0;
	__atomic_store_n(&r->used, 0, __ATOMIC_RELEASE);
	ebr_me = NULL; /* a call from a later destructor registers again */
}

/* A forked child has only the thread that forked: the others' records
 * (copied with the memory, maybe mid-section) and reg_lock (maybe held)
 * start over, or the child would never reclaim, or hang registering. */
static void in_child(void)
{
	pthread_mutex_init(&reg_lock, NULL);
	for (struct ebr_rec *q = recs; q; q = q->next)
		if (q != ebr_me) {
			q->epoch = 0;
			q->depth = 0;
			q->used = 0;
		}
}

static void make_key(void)
{
	key_ok = pthread_key_create(&exit_key, on_exit_thread) == 0 && pthread_atfork(NULL, NULL, in_child) == 0;
}

struct ebr_rec *ebr_register(void)
{
	static __thread struct ebr_rec alone; /* not listed: only when reclamation is off */
	pthread_once(&key_once, make_key);
	struct ebr_rec *r = NULL;
	pthread_mutex_lock(&reg_lock);
	for (struct ebr_rec *q = recs; q && !r; q = q->next)
		if (!__atomic_load_n(&q->used, __ATOMIC_ACQUIRE))
			r = q;
	if (r) {
		r->depth = 0;
		__atomic_store_n(&r->used, 1, __ATOMIC_RELEASE);
	} else if (key_ok && (r = aligned_alloc(64, sizeof(*r)))) {
		r->epoch = 0;
		r->depth = 0;
		r->used = 1;
		r->next = recs;
		__atomic_store_n(&recs, r, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&reg_lock);
	if (!r || pthread_setspecific(exit_key, r) != 0) {
		/* no record the reclaimer can see: nothing is freed from now on */
		if (r)
			__atomic_store_n(&r->used, 0, __ATOMIC_RELEASE);
		ebr_note_unguarded();
		r = &alone;
	}
	ebr_me = r;
	return r;
}

void ebr_note_unguarded(void)
{
	__atomic_store_n(&off, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&unguarded, 1, __ATOMIC_RELAXED);
}

unsigned long ebr_unguarded_count(void)
{
	return __atomic_load_n(&unguarded, __ATOMIC_RELAXED);
}

uint64_t ebr_retire_tag(void)
{
	return __atomic_add_fetch(&ebr_epoch, 1, __ATOMIC_SEQ_CST);
}

static int barrier_all(void)
{
	if (!__atomic_load_n(&registered, __ATOMIC_ACQUIRE)) {
		if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) < 0)
			return -1;
		__atomic_store_n(&registered, 1, __ATOMIC_RELEASE);
	}
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
		return 0;
	/* a forked child's address space is not registered: once more */
	if (errno == EPERM && syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
		return 0;
	return -1;
}

uint64_t ebr_safe_upto(void)
{
	if (__atomic_load_n(&off, __ATOMIC_ACQUIRE))
		return 0;
	uint64_t upto = __atomic_load_n(&ebr_epoch, __ATOMIC_SEQ_CST);
	if (barrier_all() < 0) {
		__atomic_store_n(&off, 1, __ATOMIC_RELEASE);
		return 0;
	}
	if (__atomic_load_n(&off, __ATOMIC_ACQUIRE))
		return 0; /* a pointer was read outside a section */
	for (struct ebr_rec *r = __atomic_load_n(&recs, __ATOMIC_ACQUIRE); r; r = r->next) {
		uint64_t e = __atomic_load_n(&r->epoch, __ATOMIC_ACQUIRE);
		if (e && e < upto) /* that thread read the epoch at e: tags up to e are safe */
			upto = e;
	}
	return upto;
}
