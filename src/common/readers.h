/*
 * readers.h - the reader table: how many processes share one pool's block
 * maps without ever touching a block through a map that is no longer the
 * file's (docs/MULTIPROC.md; the mechanism of LMDB's reader table, with
 * generations in place of transaction ids).
 *
 * One table in shared memory (a memory file the metadata owner, the mount's
 * daemon, makes and hands to each process it admits):
 *   gen       a counter only the owner increments;
 *   ver[h]    per inode hash bucket, a counter the owner raises by 2 after
 *             every change of an inode's size or block map (h = ino mod
 *             nver; a collision costs a spurious refresh, never a stale map);
 *             its low bit, the kernel bit, set while the owner wants every
 *             operation on the bucket's inodes to go through the kernel (the
 *             kernel's page cache holds pages of one of them, or media
 *             errors are being injected): a user that sees it set does not
 *             touch the blocks (rt_kernel, rt_kernel_all);
 *   slot[p][t] per thread t of admitted process p: the generation the
 *             thread's current operation started in, 0 when idle;
 *   grant[g]  space to append into: the owner allocated blocks past the
 *             size of inode `ino` up to byte `end` and gave them to one
 *             process; `word` is the size that process's appends reached,
 *             moved by it alone (compare-and-swap, after the bytes are
 *             durable), with RT_REVOKED set by the owner when it takes the
 *             grant back (rt_grant_*).
 *
 * Appends (the grant protocol): the holder copies bytes [off, off+len)
 * with off <= the word's size into the granted blocks, makes them durable,
 * then CASes the word to off+len unless RT_REVOKED is set (a failed CAS
 * sends the write to the kernel).  The owner takes a grant back with one
 * CAS that sets RT_REVOKED: the size it read is final (no later CAS of
 * the holder can succeed), it logs that size (poise_fgrow), and only then
 * changes the inode's map or size itself, bumps its version, and reuses
 * the slot for another inode after that bump.  Readers (any process)
 * take an inode's size as the larger of its map's and the word's, read
 * between two loads of the version (rt_enter's and one after): a slot
 * reused for another inode is seen as a moved version, so a word is only
 * ever taken for its own inode.  Every byte below the word was written by
 * the holder (each append starts at or below the size it saw), so growing
 * the size zeroes nothing.
 *
 * The protocol (all the accesses named are sequentially consistent):
 *   user  (rt_enter):  a = gen; slot = a; v = ver[h]; if v differs from the
 *                      version its cached map carries: leave (slot = 0),
 *                      fetch the map again, retry.  Otherwise use the map,
 *                      then slot = 0 (rt_leave).
 *   owner (a change):  change the map (under its own locks); ver[h] += 2;
 *                      g = ++gen (rt_bump); blocks the change dropped wait
 *                      with tag g (rt_defer) and go back to the allocator
 *                      only once rt_quiet(g): no slot holds 0 < a < g.
 * Why that suffices (Dekker's argument): take a user whose operation
 * could still use the old map.  Either its store to slot came before the
 * owner's scan in the single order of these accesses, and then the scan
 * sees a < g (its a was loaded before ++gen, or it would have seen the
 * bump of ver, which came first) and waits; or its store came after the
 * scan, and then its load of ver, later still, sees the increment and it
 * refreshes.  A map fetched from the owner carries the ver value read
 * before the map itself, so a change that races the fetch is caught by
 * the next rt_enter.
 *
 * Trust: the table is writable by every admitted process (each may write
 * the whole pool anyway, docs/SECURITY.md), so the owner never takes
 * anything but slot values from it: which process holds which slot, and
 * its pid, live in the owner's private struct rt_owner.  A garbage slot
 * value can only delay reuse, and only while that process lives: a process
 * that exits, killed or not, is found by its pidfd (rt_reap) and its slots
 * cleared.  (An admitted process can also clear other processes' slots:
 * it can write the whole pool anyway.)  The pidfd is opened at admission
 * from the pid the kernel gave (SO_PEERCRED); a pid recycled between the
 * two is a window the daemon will close with SO_PEERPIDFD where the
 * kernel has it.
 *
 * Lock rules: none in the table (atomics only).  rt_owner's own fields
 * are the owner's, guarded by its lock; a process's thread slots are
 * handed out by a bitmap in the process (rt_user), lock-free.
 */
#ifndef POISE_READERS_H
#define POISE_READERS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define RT_MAGIC 0x3230547265736f50ULL /* "PoserT02" */
#define RT_NPROC 256 /* processes admitted at once */
#define RT_NTHR 64   /* threads of one process inside an operation at once */
#define RT_NVER 4096 /* inode hash buckets */
#define RT_NGRANT 64 /* files with space to append into, at once */
#define RT_REVOKED (1ULL << 63)

/* The shared table.  Fixed widths; slots one cache line each (no false
 * sharing between threads). */
struct rt_head {
	uint64_t magic;
	uint32_t nproc, nthr, nver, head_pad;
	uint64_t gen; /* atomic; the owner's */
	uint64_t lease; /* atomic: CLOCK_MONOTONIC ns until which the owner promises to be alive */
	uint64_t pad[4];
};
struct rt_slot {
	uint64_t active; /* atomic: the generation the operation started in, 0 idle */
	uint64_t pad[7];
};
struct rt_grant {
	uint64_t ino;  /* atomic: the inode, 0 when free (the owner's) */
	uint64_t word; /* atomic: the size the holder's appends reached, | RT_REVOKED once taken back */
	uint64_t end;  /* atomic: the byte the granted space ends at (the owner's) */
	uint64_t pad[5];
};
struct rt_table {
	struct rt_head h;
	struct rt_slot slot[RT_NPROC][RT_NTHR];
	uint64_t ver[RT_NVER]; /* atomic */
	struct rt_grant grant[RT_NGRANT];
};

/* ---- the owner ---- */
struct rt_owner {
	struct rt_table *t;
	int fd; /* the memory file, to hand to processes */
	pthread_mutex_t lock;
	pid_t pid[RT_NPROC]; /* 0: free */
	int pidfd[RT_NPROC];
	uint32_t kcount[RT_NVER]; /* holds of each bucket's kernel bit */
	unsigned nattached; /* atomic: processes admitted now (a hint: read without the lock) */
	uint64_t aseq[RT_NPROC]; /* which admission holds each index (rt_detach_if) */
	uint64_t nseq;
};
/* Make a table in a new memory file: 0 or -errno. */
int rt_owner_init(struct rt_owner *o);
void rt_owner_fini(struct rt_owner *o);
/* Admit process pid (taken from the kernel, SO_PEERCRED, never from the
 * process): its index p (its slots are slot[p][*], all idle), or -errno
 * (-EAGAIN: the table is full, the process uses the kernel path). */
int rt_attach(struct rt_owner *o, pid_t pid);
/* Process p is gone (or has stopped using the table for good): its
 * slots are cleared.  Never for a process that may still be inside an
 * operation: its blocks would be reused under it. */
void rt_detach(struct rt_owner *o, int p);
/* The admission now holding index p (a number no other admission gets),
 * and rt_detach only while that admission still holds it: a connection of
 * a process reaped meanwhile must not detach the next one at its index. */
uint64_t rt_attach_seq(struct rt_owner *o, int p);
void rt_detach_if(struct rt_owner *o, int p, uint64_t seq);
/* Detach every process that has exited; the count detached. */
int rt_reap(struct rt_owner *o);
/* After a change of ino's map: the new generation (the tag of the blocks
 * the change dropped). */
uint64_t rt_bump(struct rt_owner *o, uint64_t ino);
/* Set (on) or drop one hold of the kernel bit of ino's bucket (the bit is
 * set while any hold is), then a new generation, returned: once
 * rt_quiet of it, no operation that missed the bit is still running. */
uint64_t rt_kernel(struct rt_owner *o, uint64_t ino, int on);
/* The same for every bucket at once. */
uint64_t rt_kernel_all(struct rt_owner *o, int on);
/* rt_bump of every bucket at once (a change the owner cannot pin to
 * inodes: a scrub, a cleared bad sector). */
uint64_t rt_bump_all(struct rt_owner *o);
/* Wait up to ms milliseconds for rt_quiet(g): 1 when quiet, 0 when the
 * time ran out (a process stopped inside an operation). */
int rt_wait(struct rt_owner *o, uint64_t g, int ms);
/* The owner is alive for ms milliseconds more (renewed well before). */
void rt_renew(struct rt_owner *o, int ms);
/* Bump only the generation (to let deferred blocks go when nothing changed). */
uint64_t rt_tick(struct rt_owner *o);
/* Can blocks tagged g be reused: g is not ahead of gen and no slot of an
 * admitted, living process holds 0 < a < g?  (Reaps first.) */
int rt_quiet(struct rt_owner *o, uint64_t g);
/* The oldest generation an operation in progress started in (UINT64_MAX
 * when none is): blocks tagged g are free to reuse when g <= it.  (Reaps
 * first.) */
uint64_t rt_oldest(struct rt_owner *o);

/* Blocks waiting for quiet (rt_defer): a list the owner keeps. */
struct rt_deferred {
	pthread_mutex_t lock;
	struct rt_def { uint64_t blk, n, tag; } *e;
	size_t n, cap;
	uint64_t blocks; /* total held */
};
void rt_deferred_init(struct rt_deferred *d);
void rt_deferred_fini(struct rt_deferred *d);
/* Hold [blk, blk+n) until rt_quiet(tag).  tag must be the value of the
 * rt_bump that followed the change which dropped the blocks (a tag chosen
 * ahead, such as gen + 1 at the time of the free, is unsafe: another
 * thread's bump can reach it before this change's version bump); a tag
 * gen has not reached is refused.  0, -EINVAL, or -ENOMEM (the caller
 * then must not reuse the blocks: it leaks them until the next mount). */
int rt_defer(struct rt_deferred *d, uint64_t blk, uint64_t n, uint64_t tag, const struct rt_owner *o);
/* Give every entry whose tag is quiet to release(ctx, blk, n): the count
 * of blocks released. */
uint64_t rt_release(struct rt_deferred *d, struct rt_owner *o, void (*release)(void *, uint64_t, uint64_t),
		    void *ctx);

/* ---- a process that uses the table ---- */
struct rt_user {
	struct rt_table *t;
	int p;           /* its process index */
	uint64_t busy;   /* atomic bitmap of its thread slots in use */
	unsigned forks;  /* rt_forks when mapped */
};
/* Forks of this process so far (counted once a table is mapped).  A
 * forked child inherits the parent's rt_user, index and slots and all;
 * using them would clear the parent's slots under its operations, so a
 * copy is unusable in the child: rt_slot_get refuses, and a caller that
 * keeps a slot across operations checks rt_usable before rt_enter. */
extern unsigned rt_forks;
static inline int rt_usable(const struct rt_user *u)
{
	return u->t && u->forks == __atomic_load_n(&rt_forks, __ATOMIC_RELAXED);
}
/* Map the table handed over as fd (checked: size, sealed against
 * shrinking, magic, dimensions) for process index p: 0 or -errno. */
int rt_user_map(struct rt_user *u, int fd, int p);
void rt_user_unmap(struct rt_user *u);
/* A free thread slot (its index), or -1 when all RT_NTHR are taken (the
 * caller goes the slow way).  rt_slot_put gives it back. */
int rt_slot_get(struct rt_user *u);
void rt_slot_put(struct rt_user *u, int s);
/* Start an operation on ino in slot s: the bucket's version now (compare
 * with the map's).  rt_leave ends it. */
static inline uint64_t rt_enter(struct rt_user *u, int s, uint64_t ino)
{
	struct rt_table *t = u->t;
	uint64_t a = __atomic_load_n(&t->h.gen, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->slot[u->p][s].active, a, __ATOMIC_SEQ_CST); /* gen starts at 1 */
	return __atomic_load_n(&t->ver[ino % RT_NVER], __ATOMIC_SEQ_CST);
}
static inline void rt_leave(struct rt_user *u, int s)
{
	__atomic_store_n(&u->t->slot[u->p][s].active, 0, __ATOMIC_RELEASE);
}
/* Is the owner's lease still running?  (A process stops using blocks
 * when it has run out: the owner may have died, and a new one must not
 * find it writing; a new owner waits out the longest lease first.) */
static inline int rt_alive(const struct rt_user *u)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec <
	       __atomic_load_n(&u->t->h.lease, __ATOMIC_ACQUIRE);
}
/* Does version v say "through the kernel" (the kernel bit)? */
static inline int rt_kernel_bit(uint64_t v)
{
	return (int)(v & 1);
}
/* Inode ino's size by grant g, at most end (the space the map covers), or
 * 0 when g is not ino's; the caller then checks the version did not move
 * (the argument above). */
static inline uint64_t rt_grant_size(const struct rt_table *t, int g, uint64_t ino, uint64_t end)
{
	if (g < 0 || g >= RT_NGRANT || __atomic_load_n(&t->grant[g].ino, __ATOMIC_SEQ_CST) != ino)
		return 0;
	uint64_t w = __atomic_load_n(&t->grant[g].word, __ATOMIC_SEQ_CST) & ~RT_REVOKED;
	return w <= end ? w : end;
}
/* The holder's append reached byte to: 1, or 0 when the grant was taken
 * back (the write then goes to the kernel). */
static inline int rt_grant_publish(struct rt_table *t, int g, uint64_t to)
{
	uint64_t w = __atomic_load_n(&t->grant[g].word, __ATOMIC_SEQ_CST);
	for (;;) {
		if (w & RT_REVOKED)
			return 0;
		if (w >= to)
			return 1;
		if (__atomic_compare_exchange_n(&t->grant[g].word, &w, to, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return 1;
	}
}
/* The owner takes grant g back: the final size (no publish succeeds after). */
static inline uint64_t rt_grant_revoke(struct rt_table *t, int g)
{
	return __atomic_fetch_or(&t->grant[g].word, RT_REVOKED, __ATOMIC_SEQ_CST) & ~RT_REVOKED;
}

/* The bucket's version, outside an operation (what a map fetch records
 * before it reads the map). */
static inline uint64_t rt_ver(const struct rt_table *t, uint64_t ino)
{
	return __atomic_load_n(&t->ver[ino % RT_NVER], __ATOMIC_SEQ_CST);
}

#endif
