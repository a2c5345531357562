/*
 * pool.c - the generic device layer: open/close, the guarded read path, the
 * clearing write path, injection, and the badblocks table (see dev.h).
 *
 * Read path invariants:
 *   - a byte in a sector the table lists as bad is never returned;
 *   - a byte the mapping cannot give (fault inside the guarded copy) is
 *     never returned from the mapping; after such a fault the table is
 *     consulted again (emulated injection adds to the table before it
 *     protects the page), and only good sectors are fetched through the
 *     backend's system-call path;
 *   - a machine check (BUS_MCEERR_AR) adds the faulting page to the table;
 *   - where such pages are lost to the mapping (page_lost: emulated,
 *     fsdax), the mapping is never read inside a page that lists a bad
 *     sector; where a clear rewrites whole pages (fsdax) the backend reads
 *     one only under bb_update.
 * Write path invariants: when a write returns, no sector it covered is in
 * the table and its bytes are durable (flushed and fenced, or written by
 * the kernel's own durable path); where a clear rewrites whole pages, a
 * write whose chunk holds listed poison runs whole under bb_update, its
 * clear, store and backend write together.
 * Lock rules: dev.h; fork handlers take every open pool's bb_update.
 */
#include "dev/dev.h"
#include "dev/mcsafe.h"
#include "dev/persist.h"
#include "common/fault.h"
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

const char *poise_dev_kind_name(enum poise_dev_kind k)
{
	switch (k) {
	case POISE_DEV_EMULATED: return "emulated";
	case POISE_DEV_FSDAX: return "fsdax";
	case POISE_DEV_DEVDAX: return "devdax";
	}
	return "?";
}

int poise_dev_create(const char *path, uint64_t size)
{
	if (size < POISE_PAGE || size % POISE_PAGE)
		return poise_err(EINVAL, "%s: pool size %llu is not a positive multiple of 4096",
				 path, (unsigned long long)size);
	/* owner only: a pool holds the bytes of every file in it */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return poise_errno(errno, "%s", path);
	int e = posix_fallocate(fd, 0, (off_t)size);
	if (e == EOPNOTSUPP || e == EINVAL)
		e = ftruncate(fd, (off_t)size) < 0 ? errno : 0;
	close(fd);
	if (e) {
		unlink(path);
		return poise_errno(e, "%s: cannot reserve %llu bytes", path, (unsigned long long)size);
	}
	/* a new pool has no bad sectors: drop a stale sidecar */
	char side[4096];
	snprintf(side, sizeof(side), "%s.badblocks", path);
	unlink(side);
	return 0;
}

/* Pools open in this process, by file identity: a second open is refused
 * before it touches the locks (closing its descriptor would drop our
 * classic lock).  `d` once the open succeeded, until its close.  Guarded
 * by open_lock. */
static struct {
	dev_t dev;
	ino_t ino;
	int used;
	struct poise_dev *d;
} open_pools[POISE_MC_MAX_RANGES];
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

/* fork: no open pool's bb_update may be held by another thread at that
 * moment, or the child (which may read the pool, and whose reads of listed
 * pages take bb_update) would wait for it forever.  The forking thread
 * takes them all (open_lock, then each pool's bb_update: the usual order)
 * and both sides drop them after.  The child also starts each table's
 * rwlock afresh: a reader of the parent's may have held it (its copy would
 * block the child's every change of the table), and no writer did, since
 * every change of the table is made under bb_update.  (A rwlock cannot be
 * taken here and dropped in the child: glibc's unlock tells a writer by
 * its thread id, which the child's thread does not have.) */
static void fork_prepare(void)
{
	pthread_mutex_lock(&open_lock);
	for (int i = 0; i < POISE_MC_MAX_RANGES; i++)
		if (open_pools[i].used && open_pools[i].d)
			pthread_mutex_lock(&open_pools[i].d->bb_update);
}

static void fork_parent(void)
{
	for (int i = POISE_MC_MAX_RANGES - 1; i >= 0; i--)
		if (open_pools[i].used && open_pools[i].d)
			pthread_mutex_unlock(&open_pools[i].d->bb_update);
	pthread_mutex_unlock(&open_lock);
}

static void fork_child(void)
{
	for (int i = POISE_MC_MAX_RANGES - 1; i >= 0; i--)
		if (open_pools[i].used && open_pools[i].d) {
			pthread_rwlock_init(&open_pools[i].d->bb.lock, NULL);
			pthread_mutex_unlock(&open_pools[i].d->bb_update);
		}
	pthread_mutex_unlock(&open_lock);
}

static void fork_handlers(void)
{
	(void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* The open of d succeeded (or d is closing: NULL): fork_prepare sees it. */
static void publish(struct poise_dev *d, dev_t dev, ino_t ino)
{
	pthread_mutex_lock(&open_lock);
	for (int i = 0; i < POISE_MC_MAX_RANGES; i++)
		if (open_pools[i].used && open_pools[i].dev == dev && open_pools[i].ino == ino)
			open_pools[i].d = d;
	pthread_mutex_unlock(&open_lock);
}

static int claim(dev_t dev, ino_t ino, int take)
{
	int ret = 0, free_slot = -1;
	pthread_mutex_lock(&open_lock);
	for (int i = 0; i < POISE_MC_MAX_RANGES; i++) {
		if (open_pools[i].used && open_pools[i].dev == dev && open_pools[i].ino == ino) {
			if (take)
				ret = -EBUSY;
			else
				open_pools[i].used = 0;
			goto out;
		}
		if (!open_pools[i].used && free_slot < 0)
			free_slot = i;
	}
	if (take && free_slot < 0)
		ret = -ENFILE;
	else if (take)
		open_pools[free_slot] = (typeof(open_pools[0])){dev, ino, 1, NULL};
out:
	pthread_mutex_unlock(&open_lock);
	return ret;
}

int poise_dev_table_load(struct poise_dev *d, const struct poise_bb_range *r, size_t n,
			 const char *source)
{
	for (size_t i = 0; i < n; i++) {
		if (bbt_add(&d->bb, r[i].sector, r[i].count) < 0)
			return poise_err(EINVAL, "%s: range %llu+%llu lies beyond the pool (%llu sectors)",
					 source, (unsigned long long)r[i].sector,
					 (unsigned long long)r[i].count,
					 (unsigned long long)(d->size / POISE_SECTOR));
	}
	return 0;
}

/* A device shared with this process's own later opens (poise_dev_share):
 * they get it back instead of a refusal.  Guarded by open_lock. */
static struct poise_dev *shared_dev;
static int shared_refs;

void poise_dev_share(struct poise_dev *d)
{
	pthread_mutex_lock(&open_lock);
	shared_dev = d;
	shared_refs = 0;
	pthread_mutex_unlock(&open_lock);
}

/* Is char device maj:min a dax device?  sysfs says (its subsystem); where
 * there is no sysfs, the devdax backend's own checks decide. */
static int is_dax_chr(unsigned maj, unsigned min)
{
	char p[96], target[256];
	snprintf(p, sizeof(p), "/sys/dev/char/%u:%u/subsystem", maj, min);
	ssize_t n = readlink(p, target, sizeof(target) - 1);
	if (n < 0)
		return access("/sys/dev/char", F_OK) != 0; /* no sysfs at all: let the backend check */
	target[n] = 0;
	const char *base = strrchr(target, '/');
	return !strcmp(base ? base + 1 : target, "dax");
}

int poise_dev_open(const char *path, struct poise_dev **out)
{
	struct statx stx;
	int ret;
	*out = NULL;
	if ((ret = poise_mc_init()) < 0)
		return poise_errno(-ret, "cannot install the machine-check handler");
	if ((ret = poise_persist_init()) < 0)
		return ret;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	(void)pthread_once(&once, fork_handlers);
	if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx) < 0)
		return poise_errno(errno, "%s", path);
	pthread_mutex_lock(&open_lock);
	if (shared_dev && shared_dev->file_dev == makedev(stx.stx_dev_major, stx.stx_dev_minor) &&
	    shared_dev->file_ino == stx.stx_ino) {
		shared_refs++;
		*out = shared_dev;
		pthread_mutex_unlock(&open_lock);
		return 0;
	}
	pthread_mutex_unlock(&open_lock);
	struct poise_dev *d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		return poise_err(ENOMEM, "out of memory");
	}
	d->fd = -1;
	d->lock_fd = -1;
	d->sidecar_dfd = -1;
	d->align = POISE_PAGE;
	pthread_mutex_init(&d->bb_update, NULL);
	if (S_ISCHR(stx.stx_mode) && !is_dax_chr(stx.stx_rdev_major, stx.stx_rdev_minor)) {
		ret = poise_err(EINVAL, "%s: not a pool (a character device, but not a devdax one)", path);
		goto fail;
	}
	if (S_ISCHR(stx.stx_mode)) {
		d->kind = POISE_DEV_DEVDAX;
		d->ops = &poise_pool_devdax_ops;
	} else if (S_ISREG(stx.stx_mode)) {
		int dax = (stx.stx_attributes_mask & STATX_ATTR_DAX) &&
			  (stx.stx_attributes & STATX_ATTR_DAX);
		d->kind = dax ? POISE_DEV_FSDAX : POISE_DEV_EMULATED;
		d->ops = dax ? &poise_pool_fsdax_ops : &poise_pool_emulated_ops;
	} else {
		ret = poise_err(EINVAL, "%s: not a pool (neither a regular file nor a devdax device)",
				path);
		goto fail;
	}
	d->file_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	d->file_ino = stx.stx_ino;
	if ((ret = claim(d->file_dev, d->file_ino, 1)) < 0) {
		ret = ret == -EBUSY ? poise_err(EBUSY, "%s: pool is already open in this process", path)
				    : poise_err(ENFILE, "%s: too many pools open in this process", path);
		free(d->path);
		free(d);
		return ret;
	}
	d->fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (d->fd < 0) {
		ret = poise_errno(errno, "%s", path);
		goto fail;
	}
	struct stat fst; /* the file opened is the one checked above, not a swap */
	if (fstat(d->fd, &fst) < 0 || fst.st_dev != d->file_dev || fst.st_ino != d->file_ino ||
	    (fst.st_mode & S_IFMT) != (stx.stx_mode & S_IFMT)) {
		ret = poise_err(EAGAIN, "%s: the path changed while the pool was being opened", path);
		goto fail;
	}
	if ((ret = poise_dev_lock(d)) < 0)
		goto fail;
	if ((ret = d->ops->open(d)) < 0)
		goto fail;
	if ((ret = bbt_init(&d->bb, d->size)) < 0)
		goto fail_unmap;
	if ((ret = poise_mc_register(d->base, d->size)) < 0) {
		ret = poise_err(ENFILE, "%s: too many pools open in this process", path);
		goto fail_unmap;
	}
	if ((ret = d->ops->load_badblocks(d)) < 0) {
		poise_mc_unregister(d->base);
		goto fail_unmap;
	}
	publish(d, d->file_dev, d->file_ino);
	*out = d;
	return 0;
fail_unmap:
	d->ops->close(d);
fail:
	bbt_fini(&d->bb);
	if (d->sidecar_dfd >= 0) /* the backend's open got that far */
		close(d->sidecar_dfd);
	poise_dev_unlock(d);
	if (d->fd >= 0)
		close(d->fd);
	claim(d->file_dev, d->file_ino, 0);
	free(d->sidecar);
	free(d->path);
	free(d);
	return ret;
}

void poise_dev_close(struct poise_dev **dp)
{
	struct poise_dev *d = *dp;
	if (!d)
		return;
	pthread_mutex_lock(&open_lock);
	if (d == shared_dev && shared_refs > 0) { /* a shared open: only the count drops */
		shared_refs--;
		pthread_mutex_unlock(&open_lock);
		*dp = NULL;
		return;
	}
	pthread_mutex_unlock(&open_lock);
	publish(NULL, d->file_dev, d->file_ino);
	poise_mc_unregister(d->base);
	d->ops->close(d);
	bbt_fini(&d->bb);
	poise_dev_unlock(d);
	close(d->fd); /* drops the pool file's own locks */
	claim(d->file_dev, d->file_ino, 0);
	pthread_mutex_destroy(&d->bb_update);
	free(d->sidecar);
	free(d->path);
	free(d);
	*dp = NULL;
}

static int check_range(struct poise_dev *d, uint64_t off, size_t len, const char *what)
{
	if (off > d->size || len > d->size - off)
		return poise_err(EINVAL, "%s: %s of %zu bytes at offset %llu leaves the pool (%llu bytes)",
				 d->path, what, len, (unsigned long long)off,
				 (unsigned long long)d->size);
	return 0;
}

/* fsdax without MAP_SYNC: the file system must write back its metadata. */
static void dev_msync(struct poise_dev *d, const void *addr, size_t len)
{
	(void)d;
	uintptr_t a = (uintptr_t)addr & ~(uintptr_t)(POISE_PAGE - 1);
	(void)msync((void *)a, (uintptr_t)addr + len - a, MS_SYNC);
}

static int save_table(struct poise_dev *d)
{
	return d->ops->save_badblocks ? d->ops->save_badblocks(d) : 0;
}

/* A machine check at `addr`: the whole page (or mapping unit) is lost to
 * the mapping and joins the table.  Caller holds d->bb_update; 0 when the
 * table took it. */
static int record_mce_locked(struct poise_dev *d, uint64_t fault)
{
	/* the unit the kernel reported: a page, or a devdax mapping unit */
	unsigned lsb = POISE_MC_LSB(fault) < 12 ? 12 : POISE_MC_LSB(fault) > 30 ? 30 : POISE_MC_LSB(fault);
	uint64_t unit = 1ULL << lsb;
	uint64_t off = (POISE_MC_ADDR(fault) - (uintptr_t)d->base) & ~(unit - 1);
	uint64_t len = off + unit > d->size ? d->size - off : unit;
	int ret = bbt_add(&d->bb, off / POISE_SECTOR, len / POISE_SECTOR);
	if (ret == 0)
		(void)save_table(d);
	return ret;
}

static int record_mce(struct poise_dev *d, uint64_t fault)
{
	pthread_mutex_lock(&d->bb_update);
	int ret = record_mce_locked(d, fault);
	pthread_mutex_unlock(&d->bb_update);
	return ret;
}

/*
 * The careful read: used when the table may list a bad sector in range, or
 * after the fast copy faulted.  `done` bytes at buf are already good.
 */
static ssize_t read_careful(struct poise_dev *d, uint64_t off, uint8_t *buf, size_t len,
			    size_t done)
{
	uint64_t slow_until = 0; /* bytes below this come through the backend */
	while (done < len) {
		uint64_t cur = off + done, end = off + len, bad;
		if (bbt_first_bad(&d->bb, cur / POISE_SECTOR, (end + POISE_SECTOR - 1) / POISE_SECTOR,
				  &bad)) {
			if (bad * POISE_SECTOR <= cur)
				break;
			end = bad * POISE_SECTOR;
		}
		if (cur < slow_until) {
			/* under bb_update where a clear rewrites pages: none
			 * rewrites this one meanwhile (fsdax punches it, and a
			 * read in the hole would see zeros that are nobody's data) */
			uint64_t stop = end < slow_until ? end : slow_until;
			int hold = d->clear_rewrites;
			if (hold)
				pthread_mutex_lock(&d->bb_update);
			ssize_t k = d->ops->read_slow(d, cur, buf + done, stop - cur);
			/* a sector listed while the backend read is not good data:
			 * poison is listed before it lands (emulation: before the
			 * bytes are scrambled), so checking after the read is enough */
			if (k > 0 && bbt_first_bad(&d->bb, cur / POISE_SECTOR,
						   (cur + (uint64_t)k + POISE_SECTOR - 1) / POISE_SECTOR, &bad))
				k = bad * POISE_SECTOR > cur ? (ssize_t)(bad * POISE_SECTOR - cur) : 0;
			if (hold)
				pthread_mutex_unlock(&d->bb_update);
			if (k <= 0)
				break;
			done += (size_t)k;
			continue;
		}
		uint64_t pg = cur & ~(uint64_t)(POISE_PAGE - 1);
		if (d->page_lost && bbt_any(&d->bb, pg / POISE_SECTOR, (pg + POISE_PAGE) / POISE_SECTOR)) {
			slow_until = pg + POISE_PAGE; /* the mapping would only fault */
			continue;
		}
		/* The mapping up to the first bad sector, and (pages with one
		 * are lost to the mapping) never into a page that lists one,
		 * even past the range's end: that page's good sectors come
		 * through the backend, under the lock, since a clear may have
		 * it punched (reading as zeros, with no fault) right now. */
		uint64_t stop = end, pb;
		if (d->page_lost &&
		    bbt_first_bad(&d->bb, cur / POISE_SECTOR,
				  ((end + POISE_PAGE - 1) & ~(uint64_t)(POISE_PAGE - 1)) / POISE_SECTOR, &pb)) {
			pb = pb * POISE_SECTOR & ~(uint64_t)(POISE_PAGE - 1);
			if (pb > cur && pb < stop)
				stop = pb;
		}
		uint64_t fault;
		size_t k = poise_mc_copy(buf + done, d->base + cur, stop - cur, 0, &fault);
		done += k;
		if (k == stop - cur) {
			if (stop == end && end < off + len)
				break; /* stopped before a bad sector */
			continue;
		}
		if (fault & POISE_MC_FAULT_MCE) {
			record_mce(d, fault);
			continue; /* the table now stops us at that page */
		}
		/* The page is protected (emulated poison nearby, or a clear in
		 * flight): its good sectors come through the backend. */
		slow_until = (off + done + POISE_PAGE) & ~(uint64_t)(POISE_PAGE - 1);
	}
	if (done == 0) {
		uint64_t s = (off + done) / POISE_SECTOR;
		return poise_err(EIO, "%s: Input/output error at offset %llu (pool sector %llu)",
				 d->path, (unsigned long long)(off + done), (unsigned long long)s);
	}
	if (done < len)
		poise_err(EIO, "%s: Input/output error at offset %llu (pool sector %llu)", d->path,
			  (unsigned long long)(off + done),
			  (unsigned long long)((off + done) / POISE_SECTOR));
	return (ssize_t)done;
}

/* Machine checks the handler remembered: pages of this pool join the table
 * (reports for other pools are put back for their own reads). */
static void take_pending(struct poise_dev *d)
{
	uint64_t a, other[64];
	int n = 0;
	while ((a = poise_mc_take()) != 0) {
		if (POISE_MC_ADDR(a) >= (uintptr_t)d->base && POISE_MC_ADDR(a) < (uintptr_t)d->base + d->size)
			record_mce(d, a);
		else if (n < 64)
			other[n++] = a;
	}
	for (int i = 0; i < n; i++)
		poise_mc_remember(other[i]);
}

ssize_t poise_dev_read_slow(struct poise_dev *d, uint64_t off, void *buf, size_t len)
{
	if (__atomic_load_n(&poise_mc_pending, __ATOMIC_ACQUIRE))
		take_pending(d);
	if (__builtin_expect(poise_fault_armed, 0) && poise_fault_hit(POISE_FAULT_MEDIA_READ))
		return poise_err(EIO, "%s: Input/output error at offset %llu (injected fault)", d->path,
				 (unsigned long long)off);
	int ret = check_range(d, off, len, "read");
	if (ret < 0)
		return ret;
	if (!bbt_maybe(&d->bb, off, len)) {
		uint64_t fault;
		size_t k = poise_mc_copy(buf, d->base + off, len, 0, &fault);
		if (k == len)
			return (ssize_t)len;
		if (fault & POISE_MC_FAULT_MCE)
			record_mce(d, fault);
		return read_careful(d, off, buf, len, k);
	}
	return read_careful(d, off, buf, len, 0);
}

/* Clear every bad sector in [lo, hi) sectors.  Caller holds d->bb_update. */
static int clear_locked(struct poise_dev *d, uint64_t lo, uint64_t hi)
{
	uint64_t s;
	int changed = 0, ret = 0;
	while (lo < hi && bbt_first_bad(&d->bb, lo, hi, &s)) {
		/* extent of this bad run inside [s, hi) */
		uint64_t e = s + 1;
		while (e < hi && bbt_any(&d->bb, e, e + 1))
			e++;
		ret = d->ops->clear(d, s, e - s);
		if (ret < 0)
			break;
		bbt_remove(&d->bb, s, e - s);
		changed = 1;
		if (d->ops->unprotect) {
			uint64_t p0 = s * POISE_SECTOR & ~(uint64_t)(POISE_PAGE - 1);
			uint64_t p1 = (e * POISE_SECTOR + POISE_PAGE - 1) & ~(uint64_t)(POISE_PAGE - 1);
			for (uint64_t p = p0; p < p1; p += POISE_PAGE)
				if (!bbt_any(&d->bb, p / POISE_SECTOR, (p + POISE_PAGE) / POISE_SECTOR))
					d->ops->unprotect(d, p, POISE_PAGE);
		}
		lo = e;
	}
	if (changed) {
		int r2 = save_table(d);
		if (ret == 0)
			ret = r2;
	}
	return ret;
}

int poise_dev_clear(struct poise_dev *d, uint64_t off, uint64_t len)
{
	int ret = check_range(d, off, len, "clear");
	if (ret < 0 || len == 0)
		return ret;
	poise_unfenced = 1; /* clearing writes the sectors */
	pthread_mutex_lock(&d->bb_update);
	ret = clear_locked(d, off / POISE_SECTOR, (off + len + POISE_SECTOR - 1) / POISE_SECTOR);
	pthread_mutex_unlock(&d->bb_update);
	return ret;
}

/* Clear every bad sector overlapping [off, off+len) (inside the pool);
 * held: the caller holds d->bb_update. */
static int clear_bytes(struct poise_dev *d, uint64_t off, uint64_t len, int held)
{
	if (!held)
		return poise_dev_clear(d, off, len);
	poise_unfenced = 1; /* clearing writes the sectors */
	return clear_locked(d, off / POISE_SECTOR, (off + len + POISE_SECTOR - 1) / POISE_SECTOR);
}

ssize_t poise_dev_near_poison(struct poise_dev *d, uint64_t off, uint64_t len, int clear,
			      ssize_t (*fn)(void *arg), void *arg)
{
	int ret = check_range(d, off, len, "access");
	if (ret < 0)
		return ret;
	int hold = d->clear_rewrites;
	if (hold)
		pthread_mutex_lock(&d->bb_update);
	ssize_t r = clear && len ? clear_bytes(d, off, len, hold) : 0;
	if (r == 0)
		r = fn(arg);
	if (hold)
		pthread_mutex_unlock(&d->bb_update);
	return r;
}

/* how: STORE_FLUSH writes the lines back, STORE_PERSIST fences too,
 * STORE_CACHED leaves them in the cache (a pool that needs msync gets
 * its msync regardless: it has no later write-back to rely on). */
enum { STORE_CACHED, STORE_FLUSH, STORE_PERSIST };

/* Store through the mapping: the bytes that landed (all of len, flushed and
 * fenced as `how` says, or a prefix before a fault, flushed and fenced;
 * *fault says why it stopped). */
static inline size_t store_mapped(struct poise_dev *d, uint8_t *dst, const void *buf, size_t len, int how,
				  uint64_t *fault)
{
	int nt = len >= 256;
	poise_unfenced = 1;
	if (__builtin_expect(poise_track_on, 0))
		poise_track_store(dst, len, nt);
	size_t k = poise_mc_copy(dst, buf, len, nt, fault);
	if (__builtin_expect(k == len, 1)) {
		if (nt) {
			poise_flush(dst, 16);
			poise_flush(dst + len - 16, 16);
		} else if (how != STORE_CACHED || d->need_msync) {
			poise_flush(dst, len);
		}
		if (how == STORE_PERSIST) /* sfence also orders the non-temporal stores */
			poise_fence();
		if (d->need_msync)
			dev_msync(d, dst, len);
		return len;
	}
	if (k) {
		poise_flush(dst, k);
		poise_fence();
	}
	return k;
}

/*
 * A write that may meet listed poison: its own bad sectors are cleared,
 * then its bytes land, through the mapping or, where a page is refused
 * (other bad sectors share it, or a machine check found it now), through
 * the backend.  Where a clear rewrites the whole page (fsdax: save its good
 * sectors, punch, reallocate, write them back), all of it runs under
 * bb_update, since a store landing between the save and the write-back
 * would be lost; every writer of a page whose sectors the table lists comes
 * here (bbt_maybe covers the page), so none races a clear of that page.
 */
static ssize_t write_near_poison(struct poise_dev *d, uint64_t off, const void *buf, size_t len, int how)
{
	uint64_t fault = 0;
	size_t k = 0;
	ssize_t ret;
	int hold = d->clear_rewrites; /* else a clear touches only its own sectors */
	if (hold)
		pthread_mutex_lock(&d->bb_update);
	ret = clear_bytes(d, off, len, hold);
	if (ret < 0)
		goto out;
	k = store_mapped(d, d->base + off, buf, len, how, &fault);
	ret = (ssize_t)len;
	if (k == len)
		goto out;
	/* The mapping refused a page: the whole write goes through the
	 * backend (again over the prefix that landed: a machine check lists
	 * its whole page, prefix included, and clearing that page must not
	 * leave bytes this write acknowledged listed bad or zeroed). */
	if ((fault & POISE_MC_FAULT_MCE) && (hold ? record_mce_locked(d, fault) : record_mce(d, fault)) == 0 &&
	    (ret = clear_bytes(d, off, len, hold)) < 0)
		goto out;
	ssize_t w = d->ops->write_slow(d, off, buf, len);
	if (w < 0) {
		ret = w;
		goto out;
	}
	if (__builtin_expect(poise_track_on, 0))
		poise_track_wrote(d->base + off, buf, (size_t)w);
	ret = (size_t)w == len ? (ssize_t)len
			       : poise_err(EIO, "%s: short write at offset %llu", d->path,
					   (unsigned long long)(off + (size_t)w));
out:
	if (hold)
		pthread_mutex_unlock(&d->bb_update);
	return ret;
}

static ssize_t dev_write(struct poise_dev *d, uint64_t off, const void *buf, size_t len, int how)
{
	if (__builtin_expect(poise_fault_armed, 0) && poise_fault_hit(POISE_FAULT_MEDIA_WRITE)) {
		/* a write the media refused leaves its sectors bad, as on a
		 * real platform: poison them (emulated pools) */
		if (d->ops->inject && len)
			(void)poise_dev_inject(d, off / POISE_SECTOR,
					       (off + len + POISE_SECTOR - 1) / POISE_SECTOR - off / POISE_SECTOR);
		return poise_err(EIO, "%s: Input/output error writing offset %llu (injected fault)", d->path,
				 (unsigned long long)off);
	}
	int ret = check_range(d, off, len, "write");
	if (ret < 0)
		return ret;
	if (len == 0)
		return 0;
	if (bbt_maybe(&d->bb, off, len))
		return write_near_poison(d, off, buf, len, how);
	uint64_t fault;
	size_t k = store_mapped(d, d->base + off, buf, len, how, &fault);
	if (__builtin_expect(k == len, 1))
		return (ssize_t)len;
	/* A page we write was lost under us (a machine check), or the table
	 * listed poison in it since the check: the whole write goes the
	 * careful way, after the machine check joins the table. */
	if (fault & POISE_MC_FAULT_MCE)
		record_mce(d, fault);
	return write_near_poison(d, off, buf, len, how);
}

ssize_t poise_dev_write(struct poise_dev *d, uint64_t off, const void *buf, size_t len)
{
	return dev_write(d, off, buf, len, STORE_PERSIST);
}

ssize_t poise_dev_store(struct poise_dev *d, uint64_t off, const void *buf, size_t len)
{
	return dev_write(d, off, buf, len, STORE_FLUSH);
}

ssize_t poise_dev_store_cached(struct poise_dev *d, uint64_t off, const void *buf, size_t len)
{
	return dev_write(d, off, buf, len, STORE_CACHED);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
void poise_dev_prefault(struct poise_dev *d, uint64_t off, uint64_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	if (!d->base || pg <= 0 || check_range(d, off, len, "prefault") < 0 || len < 16 * (uint64_t)pg ||
	    bbt_maybe(&d->bb, off, len))
		return; /* (a poisoned page must stay unmapped) */
	uint64_t a = (off + (uint64_t)pg - 1) / (uint64_t)pg * (uint64_t)pg, b = (off + len) / (uint64_t)pg * (uint64_t)pg;
	if (a < b)
		(void)madvise(d->base + a, b - a, MADV_POPULATE_WRITE);
}

int poise_dev_inject(struct poise_dev *d, uint64_t sector, uint64_t count)
{
	if (count == 0)
		return poise_err(EINVAL, "%s: inject needs a count of at least 1", d->path);
	if (sector >= d->size / POISE_SECTOR || count > d->size / POISE_SECTOR - sector)
		return poise_err(EINVAL, "%s: sectors %llu+%llu lie beyond the pool (%llu sectors)",
				 d->path, (unsigned long long)sector, (unsigned long long)count,
				 (unsigned long long)(d->size / POISE_SECTOR));
	if (!d->ops->inject)
		return poise_err(EOPNOTSUPP, "%s: poison injection needs an emulated pool (this is %s)",
				 d->path, d->ops->name);
	pthread_mutex_lock(&d->bb_update);
	int ret = bbt_add(&d->bb, sector, count);
	if (ret == 0)
		ret = d->ops->inject(d, sector, count);
	if (ret == 0)
		ret = save_table(d);
	pthread_mutex_unlock(&d->bb_update);
	return ret;
}

int poise_dev_mark_bad(struct poise_dev *d, uint64_t off, uint64_t len)
{
	int ret = check_range(d, off, len, "mark");
	if (ret < 0 || len == 0)
		return ret;
	uint64_t s = off / POISE_SECTOR, e = (off + len + POISE_SECTOR - 1) / POISE_SECTOR;
	pthread_mutex_lock(&d->bb_update);
	ret = bbt_add(&d->bb, s, e - s);
	if (ret == 0)
		ret = save_table(d);
	pthread_mutex_unlock(&d->bb_update);
	return ret;
}

long poise_dev_badblocks(struct poise_dev *d, struct poise_bb_range **out)
{
	return bbt_snapshot(&d->bb, out);
}

void poise_dev_persist(struct poise_dev *d, const void *addr, size_t len)
{
	poise_persist(addr, len);
	if (d->need_msync)
		dev_msync(d, addr, len);
}

/* ---- the accessors of poise-admin.h ---- */

uint64_t poise_dev_size(const struct poise_dev *d)
{
	return d->size;
}

const char *poise_dev_backend(const struct poise_dev *d)
{
	return d->ops->name;
}

int poise_dev_needs_msync(const struct poise_dev *d)
{
	return d->need_msync ? 1 : 0;
}

const char *poise_dev_notice(const struct poise_dev *d)
{
	return d->notice;
}

ssize_t poise_dev_pread(struct poise_dev *d, uint64_t off, void *buf, size_t len)
{
	return poise_dev_read(d, off, buf, len);
}

int poise_dev_fstat(const struct poise_dev *d, struct stat *st)
{
	return fstat(d->fd, st) < 0 ? -errno : 0;
}

void poise_dev_note(struct poise_dev *d, const char *fmt, ...)
{
	size_t l = strlen(d->notice);
	if (l && l + 2 < sizeof(d->notice)) {
		memcpy(d->notice + l, "; ", 3);
		l += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->notice + l, sizeof(d->notice) - l, fmt, ap);
	va_end(ap);
}
