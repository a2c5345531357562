/*
 * fault.h - fault injection for tests (the fault loop of
 * tests/unit/test_fs_faults.c): fail the n-th call of a kind, as if the
 * resource ran out or the media failed there.  Unarmed (the default) each
 * site costs one predictable branch on poise_fault_armed.  Compiled into
 * test builds only (-DPOISE_TEST_HOOKS); in the shipped library the sites
 * compile to nothing.
 */
#ifndef POISE_FAULT_H
#define POISE_FAULT_H

enum poise_fault_kind {
	POISE_FAULT_ALLOC_BLOCK, /* alloc_blocks: -ENOSPC */
	POISE_FAULT_ALLOC_INODE, /* alloc_ino: -ENOSPC */
	POISE_FAULT_MEDIA_READ,  /* a device read that goes the careful way: -EIO */
	POISE_FAULT_MEDIA_WRITE, /* a device write: -EIO, and its sectors turn bad (emulated) */
	POISE_FAULT_KINDS
};

#ifdef POISE_TEST_HOOKS /* test builds only (libpoise-test.a): fault.c */
extern int poise_fault_armed;
/* Fail the n-th call of kind from now (n >= 1; 0 disarms all). */
void poise_fault_arm(enum poise_fault_kind kind, long n);
/* Has an armed fault of kind fired?  (Counts the call.) */
int poise_fault_hit(enum poise_fault_kind kind);
/* Did the armed fault fire in this run? */
int poise_fault_fired(void);
#else /* the shipped library: no fault can be armed */
#define poise_fault_armed 0
static inline int poise_fault_hit(enum poise_fault_kind kind)
{
	(void)kind;
	return 0;
}
#endif

#endif
