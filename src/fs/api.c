/*
 * api.c - the public API's pools, descriptors and data calls
 * (include/poise.h): mkfs, open and close of pools, the descriptor table,
 * read, write and their vectored forms, fsync, truncate, lseek, fallocate,
 * stat, extended attributes, the direct map, bad blocks, statfs and
 * directory streams.  Paths are resolved, and names made, by namei.c
 * (fs/api.h); the work itself is in file.c, inode.c, dir.c and xattr.c.
 *
 * Lock rules: descriptor slots are claimed and freed under fs->fd_lock;
 * fd_get reads a slot without it (an acquire load of f->ip, which a close
 * clears last).  Data calls take the inode's locks as file.c says.  No
 * function here is called with a lock held.
 */
#include "fs/api.h"
#include "common/ebr.h"
#include "dev/block.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

/* ---- pools ---- */

int poise_mkfs(const char *path, uint64_t size, uint64_t ninodes, unsigned flags)
{
	struct poise_dev *dev;
	struct stat st;
	int ret, made = 0;
	if (size && access(path, F_OK) != 0) {
		if ((ret = poise_dev_create(path, size)) < 0)
			return ret;
		made = 1;
	}
	if ((ret = poise_dev_open(path, &dev)) < 0)
		goto out;
	if (!(flags & POISE_MKFS_FORCE)) {
		uint64_t magic = 0;
		if (poise_dev_read(dev, 0, &magic, 8) == 8 && magic == POISE_MAGIC) {
			poise_dev_close(&dev);
			return poise_err(EEXIST, "%s already holds a poise file system (use --force to overwrite it)", path);
		}
	}
	/* a pool file holds every file's bytes: its owner's alone */
	if (fstat(dev->fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
		(void)fchmod(dev->fd, st.st_mode & 07700);
	ret = fs_mkfs(dev, ninodes);
	poise_dev_close(&dev);
out:
	if (ret < 0 && made) { /* leave nothing half-made behind (the message stays) */
		char side[4096];
		unlink(path);
		snprintf(side, sizeof(side), "%s.badblocks", path);
		unlink(side);
	}
	return ret;
}

/* A pool shared with this process's own later opens (poise_pool_share). */
static struct poise_pool *shared_pool;
static int shared_refs;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

void poise_pool_share(struct poise_pool *p)
{
	pthread_mutex_lock(&shared_lock);
	shared_pool = p;
	shared_refs = 0;
	pthread_mutex_unlock(&shared_lock);
	poise_dev_share(p ? p->dev : NULL);
}

int poise_pool_shared(struct poise_pool *p)
{
	return p && p == shared_pool;
}

int poise_pool_open(const char *path, unsigned flags, struct poise_pool **out)
{
	EBR_SECTION();
	struct poise_pool *p;
	struct stat st;
	int ret;
	*out = NULL;
	pthread_mutex_lock(&shared_lock);
	if (shared_pool && stat(path, &st) == 0 && st.st_dev == shared_pool->dev->file_dev &&
	    st.st_ino == shared_pool->dev->file_ino) {
		shared_refs++;
		*out = shared_pool;
		pthread_mutex_unlock(&shared_lock);
		return 0;
	}
	pthread_mutex_unlock(&shared_lock);
	p = calloc(1, sizeof(*p));
	if (!p)
		return poise_err(ENOMEM, "out of memory");
	if ((ret = poise_dev_open(path, &p->dev)) < 0) {
		free(p);
		return ret;
	}
	if ((ret = fs_mount(p->dev, &p->fs)) < 0) {
		poise_dev_close(&p->dev);
		free(p);
		return ret;
	}
	p->fs->odirect_block = !!(flags & POISE_ODIRECT_BLOCK);
	*out = p;
	return 0;
}

int poise_pool_close(struct poise_pool **pp)
{
	EBR_SECTION();
	struct poise_pool *p = *pp;
	if (!p)
		return 0;
	pthread_mutex_lock(&shared_lock);
	if (p == shared_pool && shared_refs > 0) {
		shared_refs--;
		pthread_mutex_unlock(&shared_lock);
		*pp = NULL;
		return 0;
	}
	pthread_mutex_unlock(&shared_lock);
	if (p->fs->blk) {
		poise_block_close(p->fs->blk);
		free(p->fs->blk);
		p->fs->blk = NULL;
	}
	fs_unmount(p->fs);
	poise_dev_close(&p->dev);
	free(p);
	*pp = NULL;
	return 0;
}

int poise_info(struct poise_pool *pool, struct poise_info *in)
{
	EBR_SECTION();
	struct poise_fs *fs = pool->fs;
	struct statvfs sv;
	struct poise_bb_range *r;
	memset(in, 0, sizeof(*in));
	snprintf(in->backend, sizeof(in->backend), "%s", pool->dev->ops->name);
	in->format_major = fs->sb.s_major;
	in->format_minor = fs->sb.s_minor;
	in->pool_bytes = fs->sb.s_pool_size;
	in->block_size = POISE_BLOCK;
	poise_statfs(pool, &sv);
	in->blocks = sv.f_blocks;
	in->blocks_free = sv.f_bfree;
	in->inodes = sv.f_files;
	in->inodes_free = sv.f_ffree;
	in->log_lanes = fs->sb.s_nlanes;
	long n = poise_dev_badblocks(pool->dev, &r);
	for (long i = 0; i < n; i++)
		in->bad_sectors += r[i].count;
	in->bad_ranges = n > 0 ? (uint64_t)n : 0;
	free(n > 0 ? r : NULL);
	const uint8_t *u = fs->sb.s_uuid;
	snprintf(in->uuid, sizeof(in->uuid),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	in->mkfs_time_ns = fs->sb.s_mkfs_time_ns;
	return 0;
}

struct poise_dev *poise_pool_dev(struct poise_pool *p)
{
	return p->dev;
}

struct poise_fs *poise_pool_fs(struct poise_pool *p)
{
	return p->fs;
}

/* ---- descriptors ---- */

static struct file *fd_get(struct poise_fs *fs, int fd)
{
	if (fd < 0 || fd >= POISE_MAX_FILES)
		return NULL;
	struct file *f = &fs->files[fd];
	return __atomic_load_n(&f->ip, __ATOMIC_ACQUIRE) ? f : NULL;
}

static int fd_new(struct poise_fs *fs, struct inode *ip, int flags)
{
	int blockpath = (flags & O_DIRECT) && (fs->odirect_block || (flags & POISE_O_BLOCK));
	pthread_mutex_lock(&fs->fd_lock);
	if (blockpath && !fs->blk) {
		struct poise_block *b = calloc(1, sizeof(*b));
		int ret = b ? poise_block_open(fs->dev, b) : poise_err(ENOMEM, "out of memory");
		if (ret < 0) {
			free(b);
			pthread_mutex_unlock(&fs->fd_lock);
			return ret;
		}
		fs->blk = b;
	}
	for (int i = 0; i < POISE_MAX_FILES; i++) {
		if (fs->files[i].ip)
			continue;
		fs->files[i].flags = flags;
		fs->files[i].blockpath = blockpath;
		__atomic_store_n(&fs->files[i].ip, ip, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&fs->fd_lock);
		return i;
	}
	pthread_mutex_unlock(&fs->fd_lock);
	return poise_err(EMFILE, "too many open files (%d)", POISE_MAX_FILES);
}

int poise_openat(struct poise_pool *pool, uint64_t at, const char *path, int flags, mode_t mode)
{
	EBR_SECTION();
	struct poise_fs *fs = pool->fs;
	struct inode *ip = NULL, *dp;
	const char *name;
	size_t len;
	int ret, acc = flags & O_ACCMODE, tries = 0, asked = flags;
	uint64_t seen = 0; /* the inode the name held at the last try */
again:
	flags = asked;
	if (flags & O_CREAT) {
		if ((ret = namei_resolve_parent(fs, at, path, &dp, &name, &len)) < 0)
			return ret;
		if (len == 0 || namei_is_dot(name, len)) {
			if (flags & O_EXCL)
				return poise_err(EEXIST, "%s exists", path);
			return poise_err(EISDIR, "%s is a directory", path);
		}
		pthread_rwlock_wrlock(&dp->lock);
		uint64_t ino;
		uint8_t t;
		ret = dp->dead || dp->d.i_nlink == 0 ? poise_err(ENOENT, "the directory was removed")
						     : dir_lookup(dp, name, len, &ino, &t);
		if (ret == -ENOENT && !dp->dead) {
			ret = namei_create(fs, dp, name, len, S_IFREG | (mode & 07777), NULL, 0, &ip);
			pthread_rwlock_unlock(&dp->lock);
			if (ret < 0)
				return ret;
			flags &= ~O_TRUNC;
		} else {
			pthread_rwlock_unlock(&dp->lock);
			if (ret < 0)
				return ret;
			if (flags & O_EXCL)
				return poise_err(EEXIST, "%s exists", path);
			ret = namei_resolve(fs, at, path, !(flags & O_NOFOLLOW), &ip);
			if (ret == -ENOENT && ino != seen && ++tries < 1000) {
				seen = ino; /* unlinked since the lookup: create it after all (the */
				goto again; /* same inode again: a dangling symlink, not a race) */
			}
			if (ret < 0)
				return ret;
		}
	} else if ((ret = namei_resolve(fs, at, path, !(flags & O_NOFOLLOW), &ip)) < 0) {
		return ret;
	}
	if (S_ISLNK(ip->type))
		return poise_err(ELOOP, "%s is a symbolic link (O_NOFOLLOW)", path);
	if (S_ISDIR(ip->type) && (acc != O_RDONLY || (flags & O_TRUNC)))
		return poise_err(EISDIR, "%s is a directory", path);
	if ((flags & O_DIRECTORY) && !S_ISDIR(ip->type))
		return poise_err(ENOTDIR, "%s is not a directory", path);
	if (is_node(ip->type))
		return poise_err(ENXIO, "%s is a %s: the library cannot open it (open it through the mount)", path,
				 S_ISFIFO(ip->type) ? "FIFO" : S_ISSOCK(ip->type) ? "socket" : "device node");
	pthread_rwlock_wrlock(&ip->lock);
	if (ip->dead) {
		pthread_rwlock_unlock(&ip->lock);
		if ((flags & O_CREAT) && ++tries < 1000)
			goto again; /* removed under us: O_CREAT makes it anew */
		return poise_err(ENOENT, "%s was removed", path);
	}
	ip->nopen++;
	pthread_rwlock_unlock(&ip->lock);
	int fd = fd_new(fs, ip, flags);
	if (fd >= 0 && (flags & O_TRUNC) && acc != O_RDONLY && ip->d.i_size) {
		ret = file_truncate(fs, ip, 0);
		if (ret < 0) {
			poise_close(pool, fd);
			return ret;
		}
	}
	if (fd < 0) {
		pthread_rwlock_wrlock(&ip->lock);
		ip->nopen--;
		pthread_rwlock_unlock(&ip->lock);
	}
	return fd;
}

int poise_open(struct poise_pool *pool, const char *path, int flags, mode_t mode)
{
	return poise_openat(pool, POISE_ROOT_INO, path, flags, mode);
}

int poise_close(struct poise_pool *pool, int fd)
{
	EBR_SECTION();
	struct poise_fs *fs = pool->fs;
	pthread_mutex_lock(&fs->fd_lock);
	struct file *f = fd_get(fs, fd);
	struct inode *ip = f ? f->ip : NULL;
	if (f)
		__atomic_store_n(&f->ip, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fs->fd_lock);
	if (!ip)
		return poise_err(EBADF, "descriptor %d is not open", fd);
	int ret = 0;
	if (__atomic_load_n(&ip->times_dirty, __ATOMIC_RELAXED))
		ret = file_sync_times(fs, ip);
	pthread_rwlock_wrlock(&ip->lock);
	if (--ip->nopen == 0 && ip->d.i_nlink == 0 && !ip->dead) {
		struct tx *tx = tx_begin(fs);
		ret = tx ? namei_log_free_dinode(tx, ip) : -ENOMEM;
		if (tx)
			ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
		if (ret == 0)
			namei_release_inode(fs, ip);
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

static int check_rw(struct poise_fs *fs, struct file *f, int write)
{
	if (!f)
		return poise_err(EBADF, "bad descriptor");
	int acc = __atomic_load_n(&f->flags, __ATOMIC_RELAXED) & O_ACCMODE;
	if (S_ISDIR(f->ip->type))
		return poise_err(EISDIR, "a directory");
	if (write ? acc == O_RDONLY : acc == O_WRONLY)
		return poise_err(EBADF, "descriptor not open for %s", write ? "writing" : "reading");
	return write ? log_fork_check(fs) : 0; /* a forked child: refused before a byte moves */
}

ssize_t poise_pread(struct poise_pool *pool, int fd, void *buf, size_t len, off_t off)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	int ret = check_rw(pool->fs, f, 0);
	if (ret < 0)
		return ret;
	if (off < 0)
		return poise_err(EINVAL, "negative offset");
	return file_read(pool->fs, f->ip, buf, len, (uint64_t)off, f->blockpath ? pool->fs->blk : NULL);
}

ssize_t poise_pwrite(struct poise_pool *pool, int fd, const void *buf, size_t len, off_t off)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	int ret = check_rw(pool->fs, f, 1);
	if (ret < 0)
		return ret;
	if (off < 0)
		return poise_err(EINVAL, "negative offset");
	return file_write(pool->fs, f->ip, buf, len, (uint64_t)off, !!(__atomic_load_n(&f->flags, __ATOMIC_RELAXED) & O_APPEND),
			  f->blockpath ? pool->fs->blk : NULL);
}

/* Vectored I/O, segment by segment straight into or out of each buffer
 * (no bounce copy), counted in 64 bits: the total of the segments done; a
 * short segment ends it; an error is returned only when nothing was done
 * (as the kernel's readv does).  The total must fit ssize_t. */
static ssize_t vec_total(const struct iovec *iov, int n)
{
	if (n < 0 || (n > 0 && !iov))
		return poise_err(EINVAL, "bad vector");
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
			return poise_err(EINVAL, "the vector's lengths add up past SSIZE_MAX");
		total += iov[i].iov_len;
	}
	return (ssize_t)total;
}

static ssize_t vec_io(struct poise_pool *pool, int fd, const struct iovec *iov, int n, off_t off, int write)
{
	ssize_t ret = vec_total(iov, n);
	if (ret < 0)
		return ret;
	int64_t done = 0;
	for (int i = 0; i < n; i++) {
		if (!iov[i].iov_len)
			continue;
		ssize_t k = write ? poise_pwrite(pool, fd, iov[i].iov_base, iov[i].iov_len, off + done)
				  : poise_pread(pool, fd, iov[i].iov_base, iov[i].iov_len, off + done);
		if (k < 0)
			return done ? (ssize_t)done : k;
		done += k;
		if ((size_t)k < iov[i].iov_len)
			break;
	}
	return (ssize_t)done;
}

ssize_t poise_preadv(struct poise_pool *pool, int fd, const struct iovec *iov, int n, off_t off)
{
	EBR_SECTION();
	return vec_io(pool, fd, iov, n, off, 0);
}

ssize_t poise_pwritev(struct poise_pool *pool, int fd, const struct iovec *iov, int n, off_t off)
{
	EBR_SECTION();
	return vec_io(pool, fd, iov, n, off, 1);
}

int poise_fsync(struct poise_pool *pool, int fd)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	if (!f)
		return poise_err(EBADF, "bad descriptor");
	return file_sync_times(pool->fs, f->ip);
}

int poise_ftruncate(struct poise_pool *pool, int fd, off_t len)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	int ret = check_rw(pool->fs, f, 1);
	if (ret < 0)
		return ret == -EBADF && f ? poise_err(EINVAL, "descriptor not open for writing") : ret;
	if (len < 0)
		return poise_err(EINVAL, "negative length");
	return file_truncate(pool->fs, f->ip, (uint64_t)len);
}

/* What an unprivileged write or truncate does to set-id bits (poise.h). */
int poise_fclear_setid(struct poise_pool *pool, int fd)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	if (!f)
		return poise_err(EBADF, "bad descriptor");
	struct inode *ip = f->ip;
	pthread_rwlock_rdlock(&ip->lock);
	uint16_t m = ip->d.i_mode;
	pthread_rwlock_unlock(&ip->lock);
	/* S_ISGID without group execute marks mandatory locking, not set-gid */
	uint16_t kill = (uint16_t)((m & S_ISUID) | ((m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) ? S_ISGID : 0));
	if (!kill)
		return 0;
	/* the mode is re-read under the inode's lock there: a racing chmod
	 * may win, never a stale mode */
	int ret = namei_setattr(pool, ip->ino, "", 0, POISE_SET_KILLPRIV, 0, 0, 0, NULL);
	return ret < 0 ? ret : 1;
}

/* ---- extended attributes ---- */

ssize_t poise_getxattrat(struct poise_pool *pool, uint64_t at, const char *path, const char *name, void *value,
			 size_t size)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = namei_resolve(pool->fs, at, path, 0, &ip);
	return ret < 0 ? ret : xattr_get(pool->fs, ip, name, value, size);
}

ssize_t poise_listxattrat(struct poise_pool *pool, uint64_t at, const char *path, char *list, size_t size)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = namei_resolve(pool->fs, at, path, 0, &ip);
	return ret < 0 ? ret : xattr_list(pool->fs, ip, list, size);
}

int poise_setxattrat(struct poise_pool *pool, uint64_t at, const char *path, const char *name, const void *value,
		     size_t size, int flags)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = namei_resolve(pool->fs, at, path, 0, &ip);
	return ret < 0 ? ret : xattr_set(pool->fs, ip, name, value, size, flags);
}

int poise_removexattrat(struct poise_pool *pool, uint64_t at, const char *path, const char *name)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = namei_resolve(pool->fs, at, path, 0, &ip);
	return ret < 0 ? ret : xattr_remove(pool->fs, ip, name);
}

int poise_fsetfl(struct poise_pool *pool, int fd, int flags)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	if (!f)
		return poise_err(EBADF, "bad descriptor");
	const int settable = O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT;
	int old = __atomic_load_n(&f->flags, __ATOMIC_RELAXED), new;
	do
		new = (old & ~settable) | (flags & settable);
	while (!__atomic_compare_exchange_n(&f->flags, &old, new, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return 0;
}

off_t poise_lseek(struct poise_pool *pool, int fd, off_t off, int whence)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	if (!f)
		return poise_err(EBADF, "bad descriptor");
	struct inode *ip = f->ip;
	pthread_rwlock_rdlock(&ip->lock);
	uint64_t size = ip->d.i_size, pos = off < 0 ? 0 : (uint64_t)off;
	off_t ret;
	if (whence == SEEK_SET) {
		ret = off < 0 ? poise_err(EINVAL, "negative offset") : off;
	} else if (whence == SEEK_END) {
		ret = (off_t)size + off < 0 ? poise_err(EINVAL, "negative offset") : (off_t)size + off;
	} else if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		ret = poise_err(EINVAL, "whence %d is not supported", whence);
	} else if (off < 0 || pos >= size) {
		ret = poise_err(ENXIO, "offset %lld is past the end", (long long)off);
	} else {
		/* walk runs of mapped blocks and holes from pos's block */
		uint64_t b = pos >> POISE_BLOCK_SHIFT, run;
		for (;;) {
			int mapped = imap(ip, b, &run) != 0;
			if (mapped == (whence == SEEK_DATA)) {
				uint64_t at = b << POISE_BLOCK_SHIFT;
				at = at < pos ? pos : at;
				ret = at >= size ? (whence == SEEK_HOLE ? (off_t)size : poise_err(ENXIO, "no data past %lld", (long long)off))
						 : (off_t)at;
				break;
			}
			if ((b + run) << POISE_BLOCK_SHIFT >= size || run > (size >> POISE_BLOCK_SHIFT) + 1) {
				ret = whence == SEEK_HOLE ? (off_t)size : poise_err(ENXIO, "no data past %lld", (long long)off);
				break;
			}
			b += run;
		}
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

int poise_fallocate(struct poise_pool *pool, int fd, int mode, off_t off, off_t len)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	int ret = check_rw(pool->fs, f, 1);
	if (ret < 0)
		return ret;
	if (off < 0 || len <= 0)
		return poise_err(EINVAL, "fallocate: bad offset or length");
	return file_fallocate(pool->fs, f->ip, mode, (uint64_t)off, (uint64_t)len);
}

static void fill_stat(struct inode *ip, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&ip->lock);
	st->st_ino = ip->ino;
	st->st_mode = ip->d.i_mode;
	st->st_rdev = (dev_t)ip->d.i_rdev;
	st->st_nlink = ip->d.i_nlink;
	st->st_uid = ip->d.i_uid;
	st->st_gid = ip->d.i_gid;
	st->st_size = (off_t)ip->d.i_size;
	st->st_blksize = POISE_BLOCK;
	st->st_blocks = (blkcnt_t)(ip->d.i_blocks * (POISE_BLOCK / 512));
	int64_t a = __atomic_load_n(&ip->d.i_atime_ns, __ATOMIC_RELAXED), m = __atomic_load_n(&ip->d.i_mtime_ns, __ATOMIC_RELAXED),
		c = __atomic_load_n(&ip->d.i_ctime_ns, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&ip->lock);
	st->st_atim.tv_sec = a / 1000000000;
	st->st_atim.tv_nsec = a % 1000000000;
	st->st_mtim.tv_sec = m / 1000000000;
	st->st_mtim.tv_nsec = m % 1000000000;
	st->st_ctim.tv_sec = c / 1000000000;
	st->st_ctim.tv_nsec = c % 1000000000;
}

int poise_generation(struct poise_pool *pool, uint64_t ino, uint64_t *gen)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = iget(pool->fs, ino, &ip);
	if (ret == 0)
		*gen = ip->d.i_generation; /* set at creation, never changed */
	return ret;
}

long poise_range_owners(struct poise_pool *pool, uint64_t off, uint64_t len, uint64_t *inos, long max)
{
	EBR_SECTION();
	struct poise_fs *fs = pool->fs;
	uint64_t b0 = off / POISE_BLOCK, b1 = (off + len + POISE_BLOCK - 1) / POISE_BLOCK;
	long n = 0;
	if (len == 0 || off + len < off)
		return poise_err(EINVAL, "an empty or wrapping range");
	for (uint64_t ino = 1; ino <= fs->sb.s_ninodes && n < max; ino++) {
		struct inode *ip = __atomic_load_n(&fs->itab[ino], __ATOMIC_ACQUIRE);
		if (!ip || !S_ISREG(ip->type))
			continue;
		int hit = 0;
		pthread_rwlock_rdlock(&ip->lock);
		for (uint32_t i = 0; i < ip->next && !hit; i++)
			hit = ip->ext[i].e_pblk < b1 && ip->ext[i].e_pblk + ip->ext[i].e_len > b0;
		pthread_rwlock_unlock(&ip->lock);
		if (hit)
			inos[n++] = ino;
	}
	return n;
}

int poise_touch_atime(struct poise_pool *pool, uint64_t ino, int how)
{
	EBR_SECTION();
	struct inode *ip;
	if (how != POISE_ATIME_RELATIME && how != POISE_ATIME_STRICT)
		return how == POISE_ATIME_NEVER ? 0 : poise_err(EINVAL, "unknown access-time policy %d", how);
	int ret = iget(pool->fs, ino, &ip);
	return ret < 0 ? ret : file_touch_atime(ip, how);
}

int poise_fstat(struct poise_pool *pool, int fd, struct stat *st)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	if (!f)
		return poise_err(EBADF, "bad descriptor");
	fill_stat(f->ip, st);
	return 0;
}

int poise_fstatat(struct poise_pool *pool, uint64_t at, const char *path, struct stat *st, int flags)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = namei_resolve(pool->fs, at, path, !(flags & AT_SYMLINK_NOFOLLOW), &ip);
	if (ret == 0)
		fill_stat(ip, st);
	return ret;
}

int poise_stat(struct poise_pool *pool, const char *path, struct stat *st)
{
	return poise_fstatat(pool, POISE_ROOT_INO, path, st, 0);
}

int poise_lstat(struct poise_pool *pool, const char *path, struct stat *st)
{
	return poise_fstatat(pool, POISE_ROOT_INO, path, st, AT_SYMLINK_NOFOLLOW);
}

void poise_pool_set_free_hook(struct poise_pool *pool, void (*hook)(void *ctx, uint64_t blk, uint64_t n), void *ctx)
{
	pool->fs->free_ctx = ctx;
	pool->fs->free_hook = hook;
}

void poise_pool_free_now(struct poise_pool *pool, uint64_t blk, uint64_t n)
{
	EBR_SECTION();
	free_blocks_now(pool->fs, blk, n);
}

int poise_read_lock(struct poise_pool *pool, int fd, uint64_t off, uint64_t len, struct iovec *out, int max,
		    struct poise_read_hold **hold)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	int ret = check_rw(pool->fs, f, 0);
	if (ret < 0)
		return ret;
	if (f->blockpath)
		return -EOPNOTSUPP; /* the block path serves its own reads */
	struct poise_dev *d = pool->dev;
	struct inode *ip = f->ip;
	int n = 0;
	pthread_rwlock_rdlock(&ip->lock);
	uint64_t size = ip->d.i_size, end = off + len < off || off + len > size ? size : off + len;
	while (off < end) {
		uint64_t run, b = imap(ip, off >> POISE_BLOCK_SHIFT, &run), boff = off & (POISE_BLOCK - 1);
		uint64_t piece = run >= ((end - off + boff + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT)
					 ? end - off : run * POISE_BLOCK - boff;
		uint64_t nb = (boff + piece + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT; /* whole blocks: a page with a bad
										     * sector may be unreachable */
		if (n == max || (b && bbt_any(&d->bb, b * (POISE_BLOCK / POISE_SECTOR), (b + nb) * (POISE_BLOCK / POISE_SECTOR)))) {
			pthread_rwlock_unlock(&ip->lock);
			return -EAGAIN; /* known damage, or too many pieces: the copying path */
		}
		out[n++] = (struct iovec){b ? d->base + b * POISE_BLOCK + boff : NULL, piece};
		off += piece;
	}
	*hold = (struct poise_read_hold *)ip; /* the inode: the descriptor may be closed before the unlock
					       * (its close then waits for this lock, so ip stays) */
	return n; /* the lock stays held: poise_read_unlock */
}

void poise_read_unlock(struct poise_read_hold *hold)
{
	EBR_SECTION();
	pthread_rwlock_unlock(&((struct inode *)hold)->lock);
}

/* Emit blocks [b, b+run) at pool block p into m, split where their bad
 * sectors start and stop; 0, or -1 when m is full (nothing emitted). */
static int fmap_emit(struct poise_dev *d, struct poise_fmap *m, uint64_t b, uint64_t p, uint64_t run)
{
	const uint64_t spb = POISE_BLOCK / POISE_SECTOR;
	if (!bbt_any(&d->bb, p * spb, (p + run) * spb)) {
		if (m->n == POISE_FMAP_MAX)
			return -1;
		m->ext[m->n++] = (struct poise_fmap_ext){b, p, run, 0, 0};
		return 0;
	}
	struct poise_fmap saved = *m;
	for (uint64_t i = 0; i < run;) {
		uint32_t bad = bbt_any(&d->bb, (p + i) * spb, (p + i + 1) * spb) ? 1 : 0;
		uint64_t j = i + 1;
		while (j < run && (bbt_any(&d->bb, (p + j) * spb, (p + j + 1) * spb) ? 1u : 0u) == bad)
			j++;
		if (m->n == POISE_FMAP_MAX) {
			*m = saved;
			return -1;
		}
		m->ext[m->n++] = (struct poise_fmap_ext){b + i, p + i, j - i, bad, 0};
		i = j;
	}
	return 0;
}

int poise_fmap(struct poise_pool *pool, int fd, uint64_t off, struct poise_fmap *m)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	if (!f)
		return poise_err(EBADF, "bad descriptor");
	struct inode *ip = f->ip;
	if (!S_ISREG(ip->type))
		return poise_err(EINVAL, "not a regular file");
	if (f->blockpath)
		return -EOPNOTSUPP;
	memset(m, 0, sizeof(*m));
	pthread_rwlock_rdlock(&ip->lock);
	m->size = ip->d.i_size;
	m->mode = ip->d.i_mode;
	uint64_t limit = (m->size + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT, b = off >> POISE_BLOCK_SHIFT;
	if (ip->next && ip->ext[ip->next - 1].e_lblk + ip->ext[ip->next - 1].e_len > limit)
		limit = ip->ext[ip->next - 1].e_lblk + ip->ext[ip->next - 1].e_len; /* blocks past the size too */
	m->start = b;
	while (b < limit) {
		uint64_t run, p = imap(ip, b, &run);
		if (run > limit - b)
			run = limit - b;
		if (p && fmap_emit(pool->dev, m, b, p, run) < 0)
			break;
		b += run;
	}
	m->end = b < limit ? b : UINT64_MAX; /* UINT64_MAX: to the end of the file and past it */
	pthread_rwlock_unlock(&ip->lock);
	return (int)m->n;
}

int poise_fgrow(struct poise_pool *pool, int fd, uint64_t size, uint64_t trim_from)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	int ret = check_rw(pool->fs, f, 1);
	if (ret < 0)
		return ret == -EBADF && f ? poise_err(EINVAL, "descriptor not open for writing") : ret;
	if (!S_ISREG(f->ip->type))
		return poise_err(EINVAL, "not a regular file");
	return file_grow(pool->fs, f->ip, size, trim_from);
}

int poise_fiemap(struct poise_pool *pool, const char *path, uint64_t off, uint64_t len,
		 struct poise_map_piece *out, int max)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = namei_resolve(pool->fs, POISE_ROOT_INO, path, 1, &ip), n = 0;
	if (ret < 0)
		return ret;
	pthread_rwlock_rdlock(&ip->lock);
	uint64_t end = off + len < off ? ~0ULL : off + len;
	while (off < end && n < max) {
		uint64_t run, b = imap(ip, off >> POISE_BLOCK_SHIFT, &run), boff = off & (POISE_BLOCK - 1);
		uint64_t piece = run >= ((end - off + boff + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT)
					 ? end - off : run * POISE_BLOCK - boff;
		if (!b && run > (~0ULL >> 13))
			break; /* a hole to the end */
		if (b)
			out[n++] = (struct poise_map_piece){off, b * POISE_BLOCK + boff, piece};
		off += piece;
	}
	pthread_rwlock_unlock(&ip->lock);
	return n;
}

int poise_map(struct poise_pool *pool, int fd, uint64_t off, uint64_t len, void **addr)
{
	EBR_SECTION();
	struct file *f = fd_get(pool->fs, fd);
	if (!f)
		return poise_err(EBADF, "bad descriptor");
	if (len == 0 || off + len < off)
		return poise_err(EINVAL, "poise_map: empty or wrapping range");
	int forked = log_fork_check(pool->fs); /* the map is writable */
	if (forked < 0)
		return forked;
	struct inode *ip = f->ip;
	int ret = 0;
	pthread_rwlock_rdlock(&ip->lock);
	uint64_t run, boff = off & (POISE_BLOCK - 1);
	uint64_t b = imap(ip, off >> POISE_BLOCK_SHIFT, &run);
	if (!b)
		ret = poise_err(ENXIO, "poise_map: file offset %llu is a hole", (unsigned long long)off);
	else if (run * POISE_BLOCK - boff < len)
		ret = poise_err(EINVAL, "poise_map: [%llu, +%llu) spans more than one extent",
				(unsigned long long)off, (unsigned long long)len);
	else
		*addr = pool->dev->base + b * POISE_BLOCK + boff;
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

ssize_t poise_map_read(struct poise_pool *pool, void *dst, const void *src, size_t len)
{
	const uint8_t *s = src;
	if (s < pool->dev->base || s + len > pool->dev->base + pool->dev->size || s + len < s)
		return poise_err(EINVAL, "poise_map_read: the source is not inside the pool");
	return poise_dev_read(pool->dev, (uint64_t)(s - pool->dev->base), dst, len);
}

void poise_map_persist(struct poise_pool *pool, const void *addr, size_t len)
{
	poise_dev_persist(pool->dev, addr, len);
}

int poise_badblocks_inject(struct poise_pool *pool, uint64_t sector, uint64_t count)
{
	return poise_dev_inject(pool->dev, sector, count);
}

int poise_badblocks_clear(struct poise_pool *pool, uint64_t sector, uint64_t count)
{
	EBR_SECTION();
	if (sector >= pool->dev->size / POISE_SECTOR || count > pool->dev->size / POISE_SECTOR - sector)
		return poise_err(EINVAL, "sectors %llu+%llu lie beyond the pool", (unsigned long long)sector,
				 (unsigned long long)count);
	return poise_dev_clear(pool->dev, sector * POISE_SECTOR, count * POISE_SECTOR);
}

int poise_statfs(struct poise_pool *pool, struct statvfs *st)
{
	EBR_SECTION();
	struct poise_fs *fs = pool->fs;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = POISE_BLOCK;
	st->f_blocks = fs->data_end - fs->data_blk;
	st->f_bfree = st->f_bavail = __atomic_load_n(&fs->nfree, __ATOMIC_RELAXED);
	st->f_files = fs->sb.s_ninodes;
	pthread_mutex_lock(&fs->ialloc_lock);
	st->f_ffree = st->f_favail = fs->ifree;
	pthread_mutex_unlock(&fs->ialloc_lock);
	st->f_namemax = POISE_NAME_MAX;
	memcpy(&st->f_fsid, fs->sb.s_uuid, sizeof(st->f_fsid));
	return 0;
}

/* ---- directories ---- */

int poise_opendir(struct poise_pool *pool, const char *path, struct poise_dir **out)
{
	return poise_opendirat(pool, POISE_ROOT_INO, path, out);
}

int poise_opendirat(struct poise_pool *pool, uint64_t at, const char *path, struct poise_dir **out)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = namei_resolve(pool->fs, at, path, 1, &ip);
	if (ret < 0)
		return ret;
	if (!S_ISDIR(ip->type))
		return poise_err(ENOTDIR, "%s is not a directory", path);
	struct poise_dir *d = calloc(1, sizeof(*d));
	if (!d)
		return poise_err(ENOMEM, "out of memory");
	pthread_rwlock_rdlock(&ip->lock);
	ret = dir_snapshot(ip, &d->ents, &d->n);
	pthread_rwlock_unlock(&ip->lock);
	if (ret < 0) {
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

int poise_readdir(struct poise_dir *d, struct poise_entry *ent)
{
	if (d->at >= d->n)
		return 0;
	ent->ino = d->ents[d->at].ino;
	ent->type = d->ents[d->at].type;
	memcpy(ent->name, d->ents[d->at].name, sizeof(ent->name));
	d->at++;
	return 1;
}

long poise_telldir(struct poise_dir *d)
{
	return (long)d->at;
}

void poise_seekdir(struct poise_dir *d, long pos)
{
	d->at = pos < 0 ? 0 : (size_t)pos > d->n ? d->n : (size_t)pos;
}

void poise_closedir(struct poise_dir **dp)
{
	if (*dp) {
		free((*dp)->ents);
		free(*dp);
		*dp = NULL;
	}
}

