/*
 * badblocks.h - the known-bad table, in the kernel's units (512-byte sectors).
 *
 * A sorted array of disjoint, non-adjacent [sector, sector+count) intervals
 * (adjacent and overlapping ranges merge on insert; removal splits), with no
 * cap on its length, and a summary bitmap with one bit per 64 KiB chunk of the
 * device that says "this chunk may hold a bad sector".
 *
 * Lock rules: the interval array is guarded by t->lock (rwlock: lookups take
 * it shared, add/remove exclusive; a lookup whose range has no chunk bit set
 * answers "none" from the bitmap alone, without the lock).  The bitmap and
 * t->nranges are atomics read without the lock: bbt_maybe() is the read
 * path's one predictable branch.  A chunk bit is set before the interval becomes visible and
 * cleared only after the chunk's last interval is gone, so "bit clear"
 * implies "no bad sector there" at the moment of the load.  Callers that need
 * "a fault we saw is explained by the table" re-check under the lock.
 *
 * Parsing and writing the text format ("first_sector count" per line, as in
 * /sys/block/pmemX/badblocks) lives here too, because sidecar and sysfs
 * files share it.
 */
#ifndef POISE_BADBLOCKS_H
#define POISE_BADBLOCKS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "poise-admin.h" /* POISE_SECTOR, struct poise_bb_range */

#define POISE_SECTOR_SHIFT 9
#define POISE_BB_CHUNK_SHIFT 16 /* summary bitmap granularity: 64 KiB */

struct poise_bbt {
	pthread_rwlock_t lock;
	struct poise_bb_range *r; /* sorted, disjoint, non-adjacent; guarded by lock */
	size_t n, cap;            /* guarded by lock */
	uint64_t nsectors;        /* device size; immutable */
	uint64_t nranges;         /* atomic mirror of n */
	uint64_t *chunks;         /* atomic bitmap, 1 bit per 64 KiB */
	size_t nwords;
};

int bbt_init(struct poise_bbt *t, uint64_t dev_bytes);
void bbt_fini(struct poise_bbt *t);
/* -ERANGE when the range leaves the device, -ENOMEM. */
int bbt_add(struct poise_bbt *t, uint64_t sector, uint64_t count);
int bbt_remove(struct poise_bbt *t, uint64_t sector, uint64_t count);
/* First bad sector in [lo, hi): 1 and *first set, or 0. */
int bbt_first_bad(struct poise_bbt *t, uint64_t lo, uint64_t hi, uint64_t *first);
/* Any bad sector in [lo, hi)? */
int bbt_any(struct poise_bbt *t, uint64_t lo, uint64_t hi);
/* Copy of the table (malloc'd; *out NULL when empty).  Returns count or -ENOMEM. */
long bbt_snapshot(struct poise_bbt *t, struct poise_bb_range **out);

int bbt_maybe_slow(const struct poise_bbt *t, uint64_t off, uint64_t len);
/* Does the table list nothing at all?  One load. */
static inline int bbt_empty(const struct poise_bbt *t)
{
	return __builtin_expect(__atomic_load_n(&t->nranges, __ATOMIC_ACQUIRE) == 0, 1);
}

/* May [off, off+len) (bytes, inside the device) touch a bad sector?  0
 * means certainly not.  Inline for the read path: an empty table is one
 * load, a read inside one 64 KiB chunk one more. */
static inline int bbt_maybe(const struct poise_bbt *t, uint64_t off, uint64_t len)
{
	if (bbt_empty(t))
		return 0;
	uint64_t c0 = off >> POISE_BB_CHUNK_SHIFT;
	if (len && c0 == (off + len - 1) >> POISE_BB_CHUNK_SHIFT)
		return (__atomic_load_n(&t->chunks[c0 / 64], __ATOMIC_ACQUIRE) >> (c0 % 64)) & 1;
	return bbt_maybe_slow(t, off, len);
}

/*
 * Text format.  bb_parse() accepts "first count" lines (decimal, blanks and
 * tabs between, optional trailing newline), rejects anything else with
 * -EINVAL and a message "NAME:LINE: ...".  Ranges are returned in file
 * order, unmerged.  bb_read_file() reads a whole file (-ENOENT passes through
 * without a message when the file is absent and missing_ok).
 */
int bb_parse(const char *text, const char *name, struct poise_bb_range **out, size_t *n);
int bb_read_file(const char *path, int missing_ok, struct poise_bb_range **out, size_t *n);
/* Write atomically (a new temp file, never through a symlink; fsync,
 * rename); n == 0 removes the file.  As root, the file is given to uid:gid
 * (the pool's owner) unless uid is -1. */
int bb_write_file(const char *path, const struct poise_bb_range *r, size_t n, uid_t uid, gid_t gid);
/* The same relative to directory dfd (a pool's sidecar, whose directory is
 * opened once, so no component can be swapped between uses); name is in
 * dfd, path is what messages call it.  bb_read_at
 * reads only a regular file of at most 16 MiB, never through a symlink or
 * a FIFO, owned by trust, root or us (trust -1: by anyone). */
int bb_read_at(int dfd, const char *name, const char *path, int missing_ok, uid_t trust, struct poise_bb_range **out,
	       size_t *n);
int bb_write_at(int dfd, const char *name, const char *path, const struct poise_bb_range *r, size_t n, uid_t uid,
		gid_t gid);

#endif
