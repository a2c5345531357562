/*
 * ebr.h - epoch-based reclamation: memory that lock-free readers may still
 * hold is freed only once no thread can hold it.
 *
 * A thread is inside a section from ebr_enter() to its matching
 * ebr_leave() (sections nest; EBR_SECTION() opens one that closes when the
 * enclosing block is left, on every return path).  The library's public
 * calls open one each; a pointer read lock-free from a shared table (the
 * inode cache) is used only inside the section that read it.
 *
 * Reclaiming: the owner first unpublishes an object (no table points at it
 * any longer), then asks ebr_retire_tag() for a tag, and may free it once
 * ebr_safe_upto() reaches that tag: every thread then inside a section entered it
 * after the tag was taken, so it read the tables after the unpublishing.
 *
 * The read side is two plain stores per call and no fence: the reclaimer
 * makes the ordering with membarrier(2) (MEMBARRIER_CMD_PRIVATE_EXPEDITED),
 * which runs a full barrier on every thread of the process.  Where that
 * call is refused (an old kernel, a seccomp filter), or a pointer was read
 * outside any section (ebr_note_unguarded()), ebr_safe_upto() says 0 from
 * then on: nothing is freed early, the memory stays until unmount.
 *
 * Invariants: thread records are never freed (a thread that exits leaves
 * its record for the next one), so the reclaimer reads them without a
 * lock; a record's epoch is 0 outside a section.
 */
#ifndef POISE_EBR_H
#define POISE_EBR_H

#include <stdint.h>

struct ebr_rec {
	uint64_t epoch;  /* the epoch this thread's section began in; 0 = none (atomic) */
	unsigned depth;  /* nesting, this thread's only */
	int used;        /* a live thread owns it (atomic) */
	struct ebr_rec *next;
} __attribute__((aligned(64)));

extern __thread struct ebr_rec *ebr_me;
struct ebr_rec *ebr_register(void);

static inline int ebr_enter(void)
{
	struct ebr_rec *r = ebr_me ? ebr_me : ebr_register();
	if (r->depth++ == 0) {
		extern uint64_t ebr_epoch;
		/* release: this thread's accesses of its earlier sections
		 * happen before a reclaimer that reads the new value */
		__atomic_store_n(&r->epoch, __atomic_load_n(&ebr_epoch, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	}
	return 0;
}

static inline void ebr_leave(void)
{
	struct ebr_rec *r = ebr_me;
	if (--r->depth == 0)
		__atomic_store_n(&r->epoch, 0, __ATOMIC_RELEASE);
}

static inline void ebr_leave_cleanup(int *unused)
{
	(void)unused;
	ebr_leave();
}

#define EBR_SECTION() __attribute__((cleanup(ebr_leave_cleanup), unused)) int ebr_section_ = ebr_enter()

/* Is this thread inside a section? */
static inline int ebr_inside(void)
{
	return ebr_me && ebr_me->depth > 0;
}

/* A shared pointer was read outside a section: reclamation stops for good
 * (and the count says so to the tests). */
void ebr_note_unguarded(void);
unsigned long ebr_unguarded_count(void);

/* A tag for objects unpublished before this call (never 0). */
uint64_t ebr_retire_tag(void);
/* Objects whose tag is <= the answer may be freed now; 0: none may.  One
 * membarrier(2) per call, so call it for many objects at once. */
uint64_t ebr_safe_upto(void);

#endif
