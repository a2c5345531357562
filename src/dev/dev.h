/*
 * dev.h - the device layer: a pool mapped into the process.
 *
 * A pool is one of three backends behind struct poise_dev_ops, chosen by the
 * path: a character device /dev/daxX.Y (devdax), a regular file on a DAX
 * mount (fsdax, mapped MAP_SHARED_VALIDATE|MAP_SYNC), or any other regular
 * file (emulated; its bad sectors live in the sidecar POOL.badblocks).
 *
 * The generic layer (pool.c) owns:
 *   - reads through the machine-check-safe copy: known-bad sectors are
 *     refused first, a fault inside the copy becomes a short read;
 *   - writes that clear the bad sectors they overlap, then persist;
 *   - the badblocks table and its sidecar.
 *
 * Lock rules: reads and writes take no lock on the fast path.  d->bb_update
 * serialises every change of the badblocks table (inject, clear, a write
 * that clears, a newly found machine check) together with the sidecar
 * update; the table's own rwlock guards lookups.  On a backend whose
 * clear rewrites a whole page (d->clear_rewrites, fsdax: punch and
 * reallocate the block, then write its good sectors back) it also covers
 * the I/O of pages the table lists: a write whose 64 KiB chunk holds
 * listed poison runs whole under it, so does a backend read of a page the
 * mapping refuses (a careful read never copies from the mapping into a
 * page that lists a bad sector), and so does the block path's I/O near
 * poison (poise_dev_near_poison).  Elsewhere a clear touches only its own
 * sectors (emulated) or none (devdax), and that I/O takes no lock, so a
 * sector that stays bad near the log does not serialise every commit.
 * The race left: poison listed in a page (a machine check, a scrub, a
 * write error) after a writer's or reader's check of the table and
 * cleared before its access ends.  Pointers handed out into the
 * mapping (poise_map, the preload's mount mode in other processes) are
 * not covered: a store through one during a clear's rewrite of its page
 * can be lost.  Under bb_update only the table's rwlock (and in test
 * builds the crash tracker's lock) is taken.  fork: the forking thread
 * takes every open pool's bb_update first (pthread_atfork), and the child
 * starts each table's rwlock afresh, so a child never inherits either
 * held by a thread it does not have (the device's locks only; and not for
 * _Fork, raw clone, or a fork from a signal handler that interrupted a
 * holder of bb_update, which waits for itself).
 * A pool is owned by one open at a time (lock.c: an OFD lock on a lock
 * file only the pool's writers can open, plus a classic POSIX lock that
 * names the owner's pid).
 */
#ifndef POISE_DEV_H
#define POISE_DEV_H

#include "dev/badblocks.h"
#include "dev/mcsafe.h"
#include "common/fault.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POISE_PAGE 4096u

enum poise_dev_kind { POISE_DEV_EMULATED, POISE_DEV_FSDAX, POISE_DEV_DEVDAX };

struct poise_dev;

struct poise_dev_ops {
	const char *name;
	/* Map the pool: set base, size, align; open-time checks. */
	int (*open)(struct poise_dev *d);
	void (*close)(struct poise_dev *d);
	/* Fill d->bb from the sidecar or sysfs, and re-apply emulation. */
	int (*load_badblocks)(struct poise_dev *d);
	/* Persist the table after a change (sidecar); NULL where the
	 * platform keeps it (sysfs). */
	int (*save_badblocks)(struct poise_dev *d);
	/* Bytes the mapping cannot give: a system call path.  Only called on
	 * sectors the table says are good. */
	ssize_t (*read_slow)(struct poise_dev *d, uint64_t off, void *buf, size_t len);
	ssize_t (*write_slow)(struct poise_dev *d, uint64_t off, const void *buf, size_t len);
	/* Make [sector, sector+count) good and zero; the caller then removes
	 * it from the table and calls unprotect.  -EOPNOTSUPP where the
	 * platform cannot clear. */
	int (*clear)(struct poise_dev *d, uint64_t sector, uint64_t count);
	/* Pages [off, off+len) lost their last bad sector (may be NULL). */
	void (*unprotect)(struct poise_dev *d, uint64_t off, uint64_t len);
	/* Poison [sector, sector+count) after the caller added it to the
	 * table (emulation: protect the pages, scramble the bytes).
	 * -EOPNOTSUPP on real devices. */
	int (*inject)(struct poise_dev *d, uint64_t sector, uint64_t count);
};

struct poise_dev {
	uint8_t *base;  /* the mapping; immutable while open */
	uint64_t size;  /* bytes, a multiple of POISE_PAGE */
	uint64_t align; /* mapping alignment (devdax), else POISE_PAGE */
	enum poise_dev_kind kind;
	const struct poise_dev_ops *ops;
	int fd;
	int lock_fd;     /* the lock file held while open (lock.c), or -1 */
	char *lock_path; /* ... and its path, removed at close */
	dev_t file_dev;  /* identity of the pool file (one open per process) */
	ino_t file_ino;
	int need_msync; /* fsdax mapped without MAP_SYNC: persist also msyncs */
	int noclear;    /* emulated: POISE_NOCLEAR=1 plays a platform that cannot clear */
	int page_lost;  /* a page with a listed bad sector is unreachable through the
			 * mapping (emulated: protected; fsdax: the kernel refuses it):
			 * its good sectors go straight to read_slow, no fault first */
	int clear_rewrites; /* a clear rewrites the whole page around a bad sector
			     * (fsdax: punch, reallocate, write the good sectors
			     * back): the I/O of pages with listed poison then runs
			     * under bb_update */
	char *path;
	char *sidecar;  /* emulated: PATH.badblocks */
	int sidecar_dfd; /* ... its directory, opened once (-1 when none) */
	const char *sidecar_name; /* ... its name in there (inside sidecar) */
	char notice[512]; /* warnings the caller may print (fallbacks): poise_dev_note */
	void *priv;       /* backend's own state between open and load */
	struct poise_bbt bb;
	pthread_mutex_t bb_update;
};

/* Ownership (lock.c): take it for d (d->fd open O_RDWR), or -EBUSY naming
 * the holder; drop it. */
int poise_dev_lock(struct poise_dev *d);
void poise_dev_unlock(struct poise_dev *d);
/* poise_runtime_dir, poise_pool_holder, poise_dev_create, _open, _close,
 * _write, _clear, _inject, _badblocks and the accessors: poise-admin.h. */

/* Later opens of d's pool in this process return d itself (counted; their
 * closes only drop the count) until poise_dev_share(NULL).  The FUSE
 * daemon shares its pool with the commands its control channel runs. */
void poise_dev_share(struct poise_dev *d);

/* Read: len, a short count ending before the first bad byte, or -EIO when
 * off itself is in a bad sector (message names the sector); -EINVAL when
 * the range leaves the pool.  The fast path (in range, empty table, no
 * fault) is inline; everything else is poise_dev_read_slow(). */
ssize_t poise_dev_read_slow(struct poise_dev *d, uint64_t off, void *buf, size_t len);
static inline ssize_t poise_dev_read(struct poise_dev *d, uint64_t off, void *buf, size_t len)
{
	uint64_t fault;
	if (__builtin_expect(off > d->size || len > d->size - off || bbt_maybe(&d->bb, off, len) ||
				     __atomic_load_n(&poise_mc_pending, __ATOMIC_RELAXED) | poise_fault_armed, 0))
		return poise_dev_read_slow(d, off, buf, len);
	if (__builtin_expect(poise_mc_copy(buf, d->base + off, len, 0, &fault) == len, 1))
		return (ssize_t)len;
	return poise_dev_read_slow(d, off, buf, len);
}
/* Write: clears every bad sector it overlaps (partly covered ones are
 * zero-filled first), writes, persists (flush + fence).  len or -errno. */
ssize_t poise_dev_write(struct poise_dev *d, uint64_t off, const void *buf, size_t len);
/* The same without the closing fence: the caller fences once for several
 * stores (poise_fence()). */
ssize_t poise_dev_store(struct poise_dev *d, uint64_t off, const void *buf, size_t len);
/* The same without the write-back of a cached store (len < 256; longer
 * stores are non-temporal and need none): the caller, or another thread
 * that learns of the store, writes the lines back (poise_flush) before the
 * fence that must cover them. */
ssize_t poise_dev_store_cached(struct poise_dev *d, uint64_t off, const void *buf, size_t len);
/* About to store over all of [off, off+len): the mapping's page tables are
 * made in one call (MADV_POPULATE_WRITE) rather than a fault per page
 * (first touch of a sparse pool file).  A hint: nothing when it fails. */
void poise_dev_prefault(struct poise_dev *d, uint64_t off, uint64_t len);
/* Clear every bad sector overlapping [off, off+len): those sectors read as
 * zeros afterwards; other bytes are untouched. */
int poise_dev_clear(struct poise_dev *d, uint64_t off, uint64_t len);
/* I/O outside this layer of a range whose chunk may hold listed poison
 * (the block path): [off, off+len)'s bad sectors cleared first when
 * `clear`, then fn(arg), both under d->bb_update where a clear rewrites
 * pages (d->clear_rewrites), so that no clear of a neighbouring sector
 * rewrites the page meanwhile.  fn's result, or the clear's -errno.  fn
 * must not call back into this layer's locked paths. */
ssize_t poise_dev_near_poison(struct poise_dev *d, uint64_t off, uint64_t len, int clear,
			      ssize_t (*fn)(void *arg), void *arg);
/* Sectors a write could not reach: list them bad (their bytes are not to
 * be trusted), on any backend.  Reads then refuse them; a later write
 * clears them as it clears any bad sector. */
int poise_dev_mark_bad(struct poise_dev *d, uint64_t off, uint64_t len);
/* Emulated pools: poison [sector, sector+count). */
int poise_dev_inject(struct poise_dev *d, uint64_t sector, uint64_t count);
/* Snapshot of the table; returns the count (caller frees *out). */
long poise_dev_badblocks(struct poise_dev *d, struct poise_bb_range **out);
const char *poise_dev_kind_name(enum poise_dev_kind k);

/* Add a warning to d->notice ("; " between two). */
void poise_dev_note(struct poise_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Persist stores made through d->base. */
void poise_dev_persist(struct poise_dev *d, const void *addr, size_t len);

/* Backends (pool_*.c). */
extern const struct poise_dev_ops poise_pool_emulated_ops;
extern const struct poise_dev_ops poise_pool_fsdax_ops;
extern const struct poise_dev_ops poise_pool_devdax_ops;

/* Shared by backends (pool.c). */
int poise_dev_table_load(struct poise_dev *d, const struct poise_bb_range *r, size_t n,
			 const char *source);

#endif
