/*
 * pool_emulated.c - a pool in an ordinary file (any file system, /dev/shm
 * included), with poison emulated the way the kernel's memory_failure shows
 * it to a process.
 *
 * Injection (caller has added the sectors to the table first):
 *   1. the pages holding the sectors become PROT_NONE in our mapping, so a
 *      path that forgets the table faults instead of reading;
 *   2. then the sectors' bytes are scrambled through the descriptor, so a
 *      path that reads around the mapping gets garbage, not old data.
 * The order matters: once step 1 returns no thread can load the page, so
 * nobody ever sees the scrambled bytes through the mapping.
 * Clearing zero-fills the sectors through the descriptor; the generic layer
 * then drops them from the table and unprotects pages left with no bad
 * sector.  The sidecar PATH.badblocks holds the table in the kernel's
 * format; reopening re-protects its pages (the bytes stay scrambled on disk).
 * Good sectors that share a page with a bad one are read and written with
 * pread/pwrite on the pool file, which shares the page cache with the
 * mapping.
 * POISE_NOCLEAR=1 makes clearing fail, as on a platform without a
 * clear-error command (the emulated NVDIMM of pmem-vm, many devdax setups),
 * so the file system's remapping path is tested.
 * Durability: the mapping is MAP_SHARED, so data survives a process crash;
 * surviving power loss needs a real pmem backend.
 */
#include "dev/dev.h"
#include "dev/pool_io.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The sidecar of the pool file open on d->fd, whatever name opened it:
 *   1. the path the file's own attribute user.poise.badblocks names (set
 *      when the list was first written: "DEV:INO:PATH", the pool's identity
 *      first, so a copy of the file and its attributes is not taken for
 *      the original), so a hard link or a renamed pool finds its list;
 *      trusted only when the value is exactly that (no NUL inside), names
 *      "*.badblocks" that is a regular file of the pool's owner with one
 *      link, in a directory of the owner's or root's (the attribute is the
 *      owner's to set: it must not make root read or replace another file);
 *   2. else the pool's real path (symlinks resolved) + ".badblocks".
 * The directory is opened once (d->sidecar_dfd) and every later use is
 * relative to it (bb_read_at, bb_write_at): no component of the path can
 * be swapped in between.  A list file that is not a regular file of the
 * pool's owner (or root) is ignored, with a notice.  Where the file system
 * keeps no user attributes, hard links to a pool with a list are not found
 * (symlinks are). */
#define SIDECAR_XATTR "user.poise.badblocks"

/* Root works on a user's list with that user's file-system identity
 * (setfsuid, this thread only): whatever a path was made to name meanwhile,
 * root then opens, makes, replaces or removes only what the pool's owner
 * could itself. */
struct fsid {
	int on;
	uid_t uid;
	gid_t gid;
};
static struct fsid as_owner(struct poise_dev *d)
{
	struct fsid s = {0, 0, 0};
	struct stat st;
	if (geteuid() == 0 && fstat(d->fd, &st) == 0 && st.st_uid != 0) {
		s.on = 1;
		s.gid = (gid_t)setfsgid(st.st_gid);
		s.uid = (uid_t)setfsuid(st.st_uid);
	}
	return s;
}
static void as_self(struct fsid s)
{
	if (s.on) {
		(void)setfsuid(s.uid);
		(void)setfsgid(s.gid);
	}
}

/* Open path's directory into d (sidecar_dfd, sidecar_name); 0 or -1. */
static int sidecar_at(struct poise_dev *d, char *path, const struct stat *pool, int check_owner)
{
	char *slash = strrchr(path, '/');
	if (!slash || !slash[1])
		return -1;
	*slash = 0;
	int dfd = open(slash == path ? "/" : path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	*slash = '/';
	struct stat st;
	/* named by the attribute: the directory the owner's or root's, and the
	 * list there a regular file of the owner's alone (never another of
	 * root's files) */
	if (dfd >= 0 && check_owner &&
	    (fstat(dfd, &st) < 0 || (st.st_uid != pool->st_uid && st.st_uid != 0) ||
	     fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	     st.st_uid != pool->st_uid)) {
		close(dfd);
		dfd = -1;
	}
	if (dfd < 0)
		return -1;
	d->sidecar = path;
	d->sidecar_dfd = dfd;
	d->sidecar_name = slash + 1;
	return 0;
}

static int sidecar_find(struct poise_dev *d, const struct stat *pool)
{
	char x[4200], *real, *path = NULL;
	unsigned long long dev, ino;
	int at = 0;
	ssize_t n = fgetxattr(d->fd, SIDECAR_XATTR, x, sizeof(x) - 1);
	if (n > 0) {
		x[n] = 0;
		if (strlen(x) == (size_t)n && sscanf(x, "%llx:%llx:%n", &dev, &ino, &at) == 2 && at > 0 &&
		    x[at] == '/' && dev == (unsigned long long)pool->st_dev && ino == (unsigned long long)pool->st_ino &&
		    n - at > 10 && !strcmp(x + n - 10, ".badblocks") && (path = strdup(x + at)) &&
		    sidecar_at(d, path, pool, 1) == 0)
			return 0;
		free(path);
		path = NULL;
	}
	if ((real = realpath(d->path, NULL)) != NULL && asprintf(&path, "%s.badblocks", real) < 0)
		path = NULL;
	if (!real && asprintf(&path, "%s.badblocks", d->path) < 0)
		path = NULL;
	free(real);
	if (!path)
		return poise_err(ENOMEM, "out of memory");
	if (sidecar_at(d, path, pool, 0) < 0) {
		free(path);
		return poise_errno(errno ? errno : EACCES, "%s: cannot open the directory of its bad-sector list",
				   d->path);
	}
	return 0;
}

/* Point the pool's attribute at its sidecar (or drop it with the list). */
static void sidecar_mark(struct poise_dev *d, int have)
{
	char x[4200], v[4200];
	struct stat st;
	if (fstat(d->fd, &st) < 0)
		return;
	int vn = snprintf(v, sizeof(v), "%llx:%llx:%s", (unsigned long long)st.st_dev,
			  (unsigned long long)st.st_ino, d->sidecar);
	if (vn < 0 || vn >= (int)sizeof(v))
		return;
	ssize_t n = fgetxattr(d->fd, SIDECAR_XATTR, x, sizeof(x));
	int same = n == vn && !memcmp(x, v, (size_t)n);
	if (have && !same)
		(void)fsetxattr(d->fd, SIDECAR_XATTR, v, (size_t)vn, 0);
	else if (!have && n >= 0)
		(void)fremovexattr(d->fd, SIDECAR_XATTR);
}

static int emu_open(struct poise_dev *d)
{
	struct stat st;
	if (fstat(d->fd, &st) < 0)
		return poise_errno(errno, "%s", d->path);
	if (st.st_size < (off_t)POISE_PAGE || st.st_size % POISE_PAGE)
		return poise_err(EINVAL, "%s: not a pool: its size (%lld bytes) is not a positive multiple of 4096",
				 d->path, (long long)st.st_size);
	d->size = (uint64_t)st.st_size;
	struct fsid id = as_owner(d);
	int ret = sidecar_find(d, &st);
	as_self(id);
	if (ret < 0) /* no list can be kept; reads still refuse what the table holds */
		poise_dev_note(d, "%s: no bad-sector list (%s)", d->path, poise_errmsg());
	void *p = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
	if (p == MAP_FAILED)
		return poise_errno(errno, "%s: cannot map %llu bytes", d->path,
				   (unsigned long long)d->size);
	d->base = p;
	/* POISE_PREFAULT=1: fault every page in now (benchmarks; a real pmem
	 * pool has its pages mapped by 2 MiB faults, not 4 KiB ones) */
	const char *nc = secure_getenv("POISE_NOCLEAR");
	d->noclear = nc && *nc == '1';
	d->page_lost = 1;
	const char *pf = secure_getenv("POISE_PREFAULT");
	if (pf && *pf == '1')
		(void)madvise(p, d->size, MADV_POPULATE_WRITE);
	return 0;
}

static void emu_close(struct poise_dev *d)
{
	if (d->sidecar_dfd >= 0)
		close(d->sidecar_dfd);
	d->sidecar_dfd = -1;
	if (d->base)
		munmap(d->base, d->size);
	d->base = NULL;
}

static int protect(struct poise_dev *d, uint64_t sector, uint64_t count, int prot)
{
	uint64_t p0 = sector * POISE_SECTOR & ~(uint64_t)(POISE_PAGE - 1);
	uint64_t p1 = ((sector + count) * POISE_SECTOR + POISE_PAGE - 1) & ~(uint64_t)(POISE_PAGE - 1);
	if (mprotect(d->base + p0, p1 - p0, prot) < 0)
		return poise_errno(errno, "%s: cannot %s pages at offset %llu", d->path,
				   prot == PROT_NONE ? "protect" : "unprotect",
				   (unsigned long long)p0);
	return 0;
}

static int emu_load(struct poise_dev *d)
{
	struct poise_bb_range *r;
	size_t n;
	struct stat st;
	if (fstat(d->fd, &st) < 0)
		return poise_errno(errno, "%s", d->path);
	if (d->sidecar_dfd < 0)
		return 0;
	struct fsid id = as_owner(d);
	int ret = bb_read_at(d->sidecar_dfd, d->sidecar_name, d->sidecar, 1, st.st_uid, &r, &n);
	as_self(id);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0 && ret != -EINVAL && ret != -ENOMEM && ret != -EFBIG) {
		/* something else where the list would be (another user's file, a
		 * link, a socket, one we may not read): not ours to believe, and
		 * no reason to refuse the pool */
		poise_dev_note(d, "%s: ignored (%s)", d->sidecar, strerror(-ret));
		return 0;
	}
	if (ret < 0)
		return ret;
	sidecar_mark(d, n > 0); /* a list from before the attribute existed */
	ret = poise_dev_table_load(d, r, n, d->sidecar);
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = protect(d, r[i].sector, r[i].count, PROT_NONE);
	free(r);
	return ret;
}

static int emu_save(struct poise_dev *d)
{
	struct poise_bb_range *r;
	long n = bbt_snapshot(&d->bb, &r);
	if (n < 0)
		return (int)n;
	struct stat st;
	int have = fstat(d->fd, &st) == 0;
	if (d->sidecar_dfd < 0) {
		free(r);
		return poise_err(EACCES, "%s: its bad-sector list cannot be kept: %s", d->path, d->notice);
	}
	struct fsid id = as_owner(d);
	int ret = bb_write_at(d->sidecar_dfd, d->sidecar_name, d->sidecar, r, (size_t)n, have ? st.st_uid : (uid_t)-1,
			      have ? st.st_gid : (gid_t)-1);
	if (ret == 0)
		sidecar_mark(d, n > 0);
	as_self(id);
	free(r);
	return ret;
}

static ssize_t emu_read_slow(struct poise_dev *d, uint64_t off, void *buf, size_t len)
{
	return poise_pread_full(d, off, buf, len);
}

static ssize_t emu_write_slow(struct poise_dev *d, uint64_t off, const void *buf, size_t len)
{
	return poise_pwrite_full(d, off, buf, len);
}

static int emu_clear(struct poise_dev *d, uint64_t sector, uint64_t count)
{
	if (d->noclear)
		return poise_err(EOPNOTSUPP, "%s: cannot clear sector %llu: this platform cannot clear poison (POISE_NOCLEAR)",
				 d->path, (unsigned long long)sector);
	return poise_pwrite_zero(d, sector * POISE_SECTOR, count * POISE_SECTOR);
}

static void emu_unprotect(struct poise_dev *d, uint64_t off, uint64_t len)
{
	(void)mprotect(d->base + off, len, PROT_READ | PROT_WRITE);
}

static int emu_inject(struct poise_dev *d, uint64_t sector, uint64_t count)
{
	int ret = protect(d, sector, count, PROT_NONE);
	if (ret < 0)
		return ret;
	uint8_t junk[POISE_SECTOR];
	for (uint64_t s = sector; s < sector + count; s++) {
		/* high-bit bytes that name the sector: never zeros, never a
		 * plausible old value */
		for (unsigned i = 0; i < POISE_SECTOR; i++)
			junk[i] = (uint8_t)(0x80 | ((s * 131 + i * 7) & 0x7f));
		ssize_t k = poise_pwrite_full(d, s * POISE_SECTOR, junk, sizeof(junk));
		if (k < 0)
			return (int)k;
	}
	return 0;
}

const struct poise_dev_ops poise_pool_emulated_ops = {
	.name = "emulated",
	.open = emu_open,
	.close = emu_close,
	.load_badblocks = emu_load,
	.save_badblocks = emu_save,
	.read_slow = emu_read_slow,
	.write_slow = emu_write_slow,
	.clear = emu_clear,
	.unprotect = emu_unprotect,
	.inject = emu_inject,
};
