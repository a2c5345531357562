/*
 * namei.c - paths and the namespace (include/poise.h): path walk, create,
 * mkdir, symlink, readlink, attributes (chmod, chown, times, truncate by
 * path), unlink, rmdir, link and rename.  Pools, descriptors and data calls
 * are api.c's; what the two share is in fs/api.h.
 *
 * Path walk: from the root, one component at a time, each directory's index
 * read under its shared lock; symlinks are followed (40 at most, -ELOOP).
 * A namespace change locks the parent exclusive and looks the name up again
 * under that lock.  rename and rmdir take fs->rename_lock first (not a
 * rename of files inside one directory: lock_parents says why; not an
 * rmdir that gets its directory's lock without waiting: remove_name), then the
 * directories by inode number, then the inodes named (a directory before a
 * file, else by number: the order fs.h gives); a directory whose last link
 * went is dead and refuses new entries.
 * Each change is one transaction; the DRAM side (index, inode mirrors,
 * freed blocks and inode numbers) follows after it committed.
 */
#include "fs/api.h"
#include "common/ebr.h"
#include "dev/block.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>


#define MAX_SYMLINKS 40


static int read_link(struct poise_fs *fs, struct inode *ip, char *buf, size_t len)
{
	ssize_t k = file_read(fs, ip, buf, len - 1, 0, NULL);
	if (k < 0)
		return (int)k;
	buf[k] = 0;
	return (int)k;
}

/* Walk `path` from dir `start`.  want_parent: stop before the last
 * component and return it in name/len (len 0 for "/").  Otherwise follow
 * a last symlink when follow.  *out is the directory or the inode. */
/* Does the entry (dp, type t) -> ip hold together?  A directory has one
 * name, in the directory its parent pointer names; an entry naming any
 * other directory (an ancestor: a cycle; or a second name) is corruption,
 * and so is a type that differs from the inode's. */
static int entry_fits(const struct inode *dp, uint8_t t, struct inode *ip)
{
	if (dtype_of(ip->type) != t)
		return 0;
	return !S_ISDIR(ip->type) ||
	       (ip != dp && ip->ino != POISE_ROOT_INO && __atomic_load_n(&ip->parent, __ATOMIC_ACQUIRE) == dp->ino);
}

static int corrupt_entry(const struct inode *dp, const char *name, size_t len, uint8_t t, const struct inode *ip)
{
	return poise_err(EUCLEAN, "directory %llu: entry '%.*s' names %s inode %llu%s (corrupt)",
			 (unsigned long long)dp->ino, (int)len, name,
			 dtype_of(ip->type) != t ? "a differently typed" : "directory", (unsigned long long)ip->ino,
			 dtype_of(ip->type) != t ? "" : ", which has its name elsewhere (a cycle)");
}

/* The inode that name names in directory dp.  A rename or unlink racing
 * between the lookup and iget can make the pair look inconsistent; only
 * what still fails under dp's lock (renames change names and parents under
 * it) is reported as corruption. */
static int lookup_child(struct poise_fs *fs, struct inode *dp, const char *name, size_t len, struct inode **out)
{
	for (int tries = 0;; tries++) {
		uint64_t ino, ino2;
		uint8_t t, t2;
		pthread_rwlock_rdlock(&dp->lock);
		int ret = dp->dead ? -ENOENT : dir_lookup(dp, name, len, &ino, &t);
		pthread_rwlock_unlock(&dp->lock);
		if (ret < 0)
			return ret == -ENOENT ? poise_err(ENOENT, "no such file or directory") : ret;
		struct inode *ip;
		if ((ret = iget(fs, ino, &ip)) < 0)
			return ret == -ENOENT ? poise_err(ENOENT, "no such file or directory") : ret;
		if (entry_fits(dp, t, ip)) {
			*out = ip;
			return 0;
		}
		pthread_rwlock_rdlock(&dp->lock);
		int same = !dp->dead && dir_lookup(dp, name, len, &ino2, &t2) == 0 && ino2 == ino && t2 == t &&
			   !entry_fits(dp, t, ip);
		pthread_rwlock_unlock(&dp->lock);
		if (same || tries == 8)
			return corrupt_entry(dp, name, len, t, ip);
	}
}

static int walk(struct poise_fs *fs, struct inode *start, const char *path, int want_parent,
		int follow, int depth, struct inode **out, const char **name, size_t *len)
{
	struct inode *cur = start;
	const char *p = path;
	int ret;
	if (*p == '/')
		ret = iget(fs, POISE_ROOT_INO, &cur);
	else
		ret = 0;
	if (ret < 0)
		return ret;
	for (;;) {
		while (*p == '/')
			p++;
		const char *c = p;
		while (*p && *p != '/')
			p++;
		size_t clen = (size_t)(p - c);
		const char *rest = p;
		while (*rest == '/')
			rest++;
		int last = *rest == 0;
		if (clen > POISE_NAME_MAX)
			return poise_err(ENAMETOOLONG, "name component longer than %d bytes", POISE_NAME_MAX);
		if (clen == 0) { /* the path was "/" or empty */
			if (want_parent) {
				*name = c;
				*len = 0;
			}
			*out = cur;
			return 0;
		}
		if (!S_ISDIR(cur->type))
			return poise_err(ENOTDIR, "a path component is not a directory");
		if (last && want_parent) {
			*name = c;
			*len = clen;
			*out = cur;
			return 0;
		}
		struct inode *next;
		if (clen == 1 && c[0] == '.') {
			next = cur;
		} else if (clen == 2 && c[0] == '.' && c[1] == '.') {
			uint64_t par = __atomic_load_n(&cur->parent, __ATOMIC_ACQUIRE);
			if ((ret = iget(fs, par, &next)) < 0)
				return ret;
		} else {
			if ((ret = lookup_child(fs, cur, c, clen, &next)) < 0)
				return ret;
		}
		if (S_ISLNK(next->type) && (!last || follow)) {
			char target[POISE_BLOCK];
			if (depth >= MAX_SYMLINKS)
				return poise_err(ELOOP, "too many levels of symbolic links");
			if ((ret = read_link(fs, next, target, sizeof(target))) < 0)
				return ret;
			struct inode *t;
			ret = walk(fs, cur, target, 0, 1, depth + 1, &t, NULL, NULL);
			if (ret < 0)
				return ret;
			next = t;
		}
		cur = next;
		p = rest;
		if (last) {
			*out = cur;
			return 0;
		}
	}
}

/* (api.h) */
int namei_resolve(struct poise_fs *fs, uint64_t at, const char *path, int follow, struct inode **ip)
{
	struct inode *start;
	int ret = iget(fs, at, &start);
	/* (no lock of start held: read as iget does) */
	if (ret == 0 && __atomic_load_n(&start->dead, __ATOMIC_ACQUIRE))
		ret = poise_err(ENOENT, "inode %llu was removed", (unsigned long long)at);
	return ret < 0 ? ret : walk(fs, start, path, 0, follow, 0, ip, NULL, NULL);
}

/* (api.h) */
int namei_resolve_parent(struct poise_fs *fs, uint64_t at, const char *path, struct inode **dp,
			  const char **name, size_t *len)
{
	struct inode *start;
	int ret = iget(fs, at, &start);
	if (ret < 0)
		return ret;
	if ((ret = walk(fs, start, path, 1, 1, 0, dp, name, len)) < 0)
		return ret;
	if (!S_ISDIR((*dp)->type))
		return poise_err(ENOTDIR, "a path component is not a directory");
	return 0;
}

/* (api.h) */
int namei_is_dot(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

static void set_times(struct poise_dinode *d, int m)
{
	int64_t t = now_ns();
	d->i_ctime_ns = t;
	if (m)
		d->i_mtime_ns = t;
}

/* (api.h) */
void namei_release_inode(struct poise_fs *fs, struct inode *ip)
{
	file_free_all(fs, ip->ext, ip->next, ip->chain, ip->nchain);
	if (ip->d.i_xattr_blk) {
		free_blocks(fs, ip->d.i_xattr_blk, 1);
		free_blocks(fs, ip->d.i_xattr_rblk, 1);
	}
	ip->next = 0;
	ip->nchain = 0;
	iput_dead(fs, ip);
	free_ino(fs, ip->ino);
}

/* (api.h) */
int namei_log_free_dinode(struct tx *tx, struct inode *ip)
{
	struct poise_dinode z;
	memset(&z, 0, sizeof(z));
	z.i_generation = ip->d.i_generation + 1;
	return istore(tx, ip, &z);
}

/* The owner of what this thread creates (poise_set_thread_owner), else the
 * pool's opener. */
static __thread struct {
	int set;
	uid_t uid;
	gid_t gid;
} owner;

/* The umask of this thread's creations (poise_set_thread_umask): -1 none. */
static __thread int thread_umask = -1;

void poise_set_thread_umask(int mask)
{
	thread_umask = mask < 0 ? -1 : mask & 0777;
}

/* A new inode ip in dp (dp->lock held exclusive): with dp's default ACL,
 * its access ACL (and a directory's default) staged into ip->d, its mode
 * masked by the ACL; without, the thread's umask.  Symlinks are 0777. */
static int inherit(struct poise_fs *fs, struct inode *dp, struct inode *ip, struct xattr_pair *st)
{
	memset(st, 0, sizeof(*st));
	if (S_ISLNK(ip->type))
		return 0;
	if (!dp->d.i_xattr_blk) { /* no attributes, so no default ACL: no buffers */
		if (thread_umask >= 0)
			ip->d.i_mode &= (uint16_t)~thread_umask;
		return 0;
	}
	uint8_t *acl = malloc(3 * POISE_BLOCK), *dflt = acl + POISE_BLOCK, *blk = dflt + POISE_BLOCK;
	if (!acl)
		return poise_err(ENOMEM, "out of memory");
	ssize_t n = xattr_get_locked(fs, dp, XATTR_ACL_DEFAULT, acl, POISE_BLOCK);
	int base;
	if (n == -ENODATA || (n >= 0 && acl_check(acl, (size_t)n, &base) < 0)) {
		if (thread_umask >= 0)
			ip->d.i_mode &= (uint16_t)~thread_umask;
		free(acl);
		return 0;
	}
	if (n < 0) {
		free(acl);
		return (int)n;
	}
	memset(blk, 0, POISE_BLOCK);
	/* the entries: access (when it is more than the mode), then a
	 * directory's default */
	struct poise_xattr_hdr *h = (struct poise_xattr_hdr *)blk;
	memcpy(dflt, acl, (size_t)n);
	int ret = 0;
	if (acl_create(acl, (size_t)n, &ip->d.i_mode))
		ret = xattr_append(blk, XATTR_ACL_ACCESS, acl, (size_t)n);
	if (ret == 0 && S_ISDIR(ip->type))
		ret = xattr_append(blk, XATTR_ACL_DEFAULT, dflt, (size_t)n);
	if (ret < 0) { /* both copies of a large default ACL do not fit one block */
		free(acl);
		return poise_err(ENOSPC, "the directory's default ACL (%zd bytes) does not fit a new "
				 "directory's attribute block twice", n);
	}
	ret = h->a_count ? xattr_stage(fs, ip, &ip->d, blk, st) : 0;
	free(acl);
	return ret;
}

void poise_set_thread_owner(uid_t uid, gid_t gid)
{
	owner.set = uid != (uid_t)-1;
	owner.uid = uid;
	owner.gid = gid;
}

/* (api.h) */
int namei_create(struct poise_fs *fs, struct inode *dp, const char *name, size_t len,
			 uint16_t mode, const char *target, uint64_t rdev, struct inode **out)
{
	uint64_t ino, blk = 0, got;
	struct inode *ip;
	struct xattr_pair acl = {{0, 0}, {0, 0}};
	int ret = alloc_ino(fs, &ino);
	if (ret < 0)
		return ret;
	if ((ret = inew(fs, ino, mode, &ip)) < 0) {
		free_ino(fs, ino);
		return ret;
	}
	ip->d.i_rdev = S_ISCHR(mode) || S_ISBLK(mode) ? rdev : 0;
	ip->d.i_uid = owner.set ? owner.uid : fs->uid;
	ip->d.i_gid = owner.set ? owner.gid : fs->gid;
	if (dp->d.i_mode & S_ISGID) { /* BSD group semantics in a set-group-ID directory */
		ip->d.i_gid = dp->d.i_gid;
		if (S_ISDIR(mode))
			ip->d.i_mode |= S_ISGID;
	}
	if (S_ISDIR(mode)) {
		ip->d.i_nlink = 2;
		ip->d.i_parent = ip->parent = dp->ino;
		if ((ret = dir_load(fs, ip)) < 0) /* size 0: an empty index */
			goto fail;
	}
	if ((ret = inherit(fs, dp, ip, &acl)) < 0)
		goto fail;
	struct ext_change ch;
	memset(&ch, 0, sizeof(ch));
	struct tx *tx = tx_begin(fs);
	if (!tx) {
		ret = poise_err(ENOMEM, "out of memory");
		goto fail;
	}
	if (target) { /* the symlink text, in a block of its own */
		size_t tl = strlen(target);
		uint8_t buf[POISE_BLOCK] = {0};
		memcpy(buf, target, tl);
		ret = alloc_blocks(fs, 0, 1, &blk, &got);
		if (ret == 0 && poise_dev_store(fs->dev, blk * POISE_BLOCK, buf, POISE_BLOCK) < 0)
			ret = poise_err(EIO, "cannot write the symlink's block");
		if (ret == 0) {
			struct poise_extent e = {.e_lblk = 0, .e_pblk = blk, .e_len = 1};
			ip->d.i_size = tl;
			ret = ext_store(tx, fs, ip, &ip->d, &e, 1, &ch);
		}
	}
	struct poise_super nsb;
	int upgrade = 0;
	if (ret == 0 && is_node(mode)) /* a 1.0 pool moves to 1.1 with its first node */
		ret = upgrade = super_add_features(tx, fs, POISE_FEAT_NODES, &nsb);
	if (ret > 0)
		ret = 0;
	if (ret == 0)
		ret = dir_add(tx, fs, dp, name, len, ino, dtype_of(mode));
	struct poise_dinode pnd = dp->d;
	set_times(&pnd, 1);
	if (S_ISDIR(mode))
		pnd.i_nlink++;
	if (ret == 0)
		ret = istore(tx, ip, &ip->d);
	if (ret == 0)
		ret = istore(tx, dp, &pnd);
	if (ret == 0)
		ret = tx_commit(tx);
	else
		tx_abort(tx);
	if (ret < 0) {
		dir_abort(dp);
		ext_abort(fs, &ch);
		if (blk)
			free_blocks(fs, blk, 1);
		goto fail;
	}
	xattr_stage_end(fs, &acl, 1);
	if (upgrade > 0)
		super_publish(fs, &nsb);
	if (target)
		ext_commit(fs, ip, &ch);
	dir_commit(dp);
	dp->d = pnd;
	ipublish(fs, ip);
	*out = ip;
	return 0;
fail:
	xattr_stage_end(fs, &acl, 0);
	free_ino(fs, ino);
	if (ip->dir)
		dir_free(ip->dir);
	free(ip->ext);
	free(ip->chain);
	free(ip);
	return ret;
}

static int name_ok(const char *name, size_t len, int for_create)
{
	if (len == 0)
		return poise_err(for_create ? EEXIST : EBUSY, "the root directory");
	if (namei_is_dot(name, len))
		return poise_err(for_create ? EEXIST : EINVAL, "'.' and '..' cannot be used here");
	return 0;
}

/* ---- names ---- */

static int mknode(struct poise_pool *pool, uint64_t at, const char *path, uint16_t mode, const char *target,
		  uint64_t rdev)
{
	struct poise_fs *fs = pool->fs;
	struct inode *dp, *ip;
	const char *name;
	size_t len;
	int ret = namei_resolve_parent(fs, at, path, &dp, &name, &len);
	if (ret < 0)
		return ret;
	if ((ret = name_ok(name, len, 1)) < 0)
		return ret;
	pthread_rwlock_wrlock(&dp->lock);
	uint64_t ino;
	uint8_t t;
	if (dp->dead || dp->d.i_nlink == 0)
		ret = poise_err(ENOENT, "the directory was removed");
	else if (dir_lookup(dp, name, len, &ino, &t) == 0)
		ret = poise_err(EEXIST, "%s exists", path);
	else
		ret = namei_create(fs, dp, name, len, mode, target, rdev, &ip);
	pthread_rwlock_unlock(&dp->lock);
	return ret;
}

int poise_mkdirat(struct poise_pool *pool, uint64_t at, const char *path, mode_t mode)
{
	EBR_SECTION();
	return mknode(pool, at, path, S_IFDIR | (mode & 07777), NULL, 0);
}

int poise_mkdir(struct poise_pool *pool, const char *path, mode_t mode)
{
	return poise_mkdirat(pool, POISE_ROOT_INO, path, mode);
}

int poise_mknodat(struct poise_pool *pool, uint64_t at, const char *path, mode_t mode, dev_t dev)
{
	EBR_SECTION();
	uint16_t perm = (uint16_t)(mode & 07777);
	switch (mode & S_IFMT) {
	case 0:
	case S_IFREG: {
		int fd = poise_openat(pool, at, path, O_CREAT | O_EXCL | O_WRONLY, perm);
		return fd < 0 ? fd : poise_close(pool, fd);
	}
	case S_IFCHR:
	case S_IFBLK:
		return mknode(pool, at, path, (uint16_t)((mode & S_IFMT) | perm), NULL, (uint64_t)dev);
	case S_IFIFO:
	case S_IFSOCK:
		return mknode(pool, at, path, (uint16_t)((mode & S_IFMT) | perm), NULL, 0);
	case S_IFDIR:
		return poise_err(EPERM, "mknod cannot make a directory (use mkdir)");
	}
	return poise_err(EINVAL, "mknod: mode %o has no file type poise knows", (unsigned)mode);
}

int poise_mknod(struct poise_pool *pool, const char *path, mode_t mode, dev_t dev)
{
	return poise_mknodat(pool, POISE_ROOT_INO, path, mode, dev);
}

int poise_symlink(struct poise_pool *pool, const char *target, const char *path)
{
	return poise_symlinkat(pool, target, POISE_ROOT_INO, path);
}

int poise_symlinkat(struct poise_pool *pool, const char *target, uint64_t at, const char *path)
{
	EBR_SECTION();
	size_t tl = strlen(target);
	if (tl == 0)
		return poise_err(ENOENT, "empty symlink target");
	if (tl >= POISE_BLOCK)
		return poise_err(ENAMETOOLONG, "symlink target longer than %u bytes", POISE_BLOCK - 1);
	return mknode(pool, at, path, S_IFLNK | 0777, target, 0);
}

ssize_t poise_readlink(struct poise_pool *pool, const char *path, char *buf, size_t len)
{
	return poise_readlinkat(pool, POISE_ROOT_INO, path, buf, len);
}

ssize_t poise_readlinkat(struct poise_pool *pool, uint64_t at, const char *path, char *buf, size_t len)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = namei_resolve(pool->fs, at, path, 0, &ip);
	if (ret < 0)
		return ret;
	if (!S_ISLNK(ip->type))
		return poise_err(EINVAL, "%s is not a symbolic link", path);
	return file_read(pool->fs, ip, buf, len, 0, NULL);
}

/* (api.h) */
int namei_setattr(struct poise_pool *pool, uint64_t at, const char *path, int follow, unsigned mask,
		      mode_t mode, uid_t uid, gid_t gid, const struct timespec *ts)
{
	struct inode *ip;
	int ret = namei_resolve(pool->fs, at, path, follow, &ip);
	if (ret < 0)
		return ret;
	pthread_rwlock_wrlock(&ip->lock);
	if (ip->dead) {
		pthread_rwlock_unlock(&ip->lock);
		return poise_err(ENOENT, "inode %llu was removed", (unsigned long long)ip->ino);
	}
	struct poise_dinode nd = ip->d;
	int64_t now = now_ns();
	if (mask & POISE_SET_MODE)
		nd.i_mode = (uint16_t)((nd.i_mode & S_IFMT) | (mode & 07777));
	if (mask & POISE_SET_KILLPRIV) {
		uint16_t m = nd.i_mode;
		nd.i_mode &= (uint16_t)~S_ISUID;
		if ((m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
			nd.i_mode &= (uint16_t)~S_ISGID;
		if (nd.i_mode == m) { /* cleared meanwhile: nothing to store */
			pthread_rwlock_unlock(&ip->lock);
			return 0;
		}
	}
	if ((mask & POISE_SET_UID) && uid != (uid_t)-1)
		nd.i_uid = uid;
	if ((mask & POISE_SET_GID) && gid != (gid_t)-1)
		nd.i_gid = gid;
	for (int k = 0; k < 2; k++) {
		if (!(mask & (k ? POISE_SET_MTIME : POISE_SET_ATIME)) || ts[k].tv_nsec == UTIME_OMIT)
			continue;
		int64_t t = ts[k].tv_nsec == UTIME_NOW ? now : (int64_t)ts[k].tv_sec * 1000000000 + ts[k].tv_nsec;
		*(k ? &nd.i_mtime_ns : &nd.i_atime_ns) = t;
	}
	nd.i_ctime_ns = now;
	struct xattr_pair acl = {{0, 0}, {0, 0}};
	if ((mask & POISE_SET_MODE) && nd.i_mode != ip->d.i_mode)
		ret = xattr_chmod_stage(pool->fs, ip, &nd, &acl);
	struct tx *tx = ret == 0 ? tx_begin(pool->fs) : NULL;
	if (ret == 0)
		ret = tx ? istore(tx, ip, &nd) : poise_err(ENOMEM, "out of memory");
	if (tx)
		ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
	xattr_stage_end(pool->fs, &acl, ret == 0);
	if (ret == 0) {
		ip->d = nd;
		ip->times_dirty = 0; /* the stored times are these */
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

int poise_chmod(struct poise_pool *pool, const char *path, mode_t mode)
{
	EBR_SECTION();
	return namei_setattr(pool, POISE_ROOT_INO, path, 1, POISE_SET_MODE, mode, 0, 0, NULL);
}

int poise_fchmodat(struct poise_pool *pool, uint64_t at, const char *path, mode_t mode, int flags)
{
	EBR_SECTION();
	return namei_setattr(pool, at, path, !(flags & AT_SYMLINK_NOFOLLOW), POISE_SET_MODE, mode, 0, 0, NULL);
}

int poise_fchownat(struct poise_pool *pool, uint64_t at, const char *path, uid_t uid, gid_t gid, int flags)
{
	EBR_SECTION();
	return namei_setattr(pool, at, path, !(flags & AT_SYMLINK_NOFOLLOW), POISE_SET_UID | POISE_SET_GID, 0, uid,
			  gid, NULL);
}

int poise_utimensat(struct poise_pool *pool, uint64_t at, const char *path, const struct timespec ts[2],
		    int flags)
{
	EBR_SECTION();
	struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	return namei_setattr(pool, at, path, !(flags & AT_SYMLINK_NOFOLLOW), POISE_SET_ATIME | POISE_SET_MTIME, 0, 0,
			  0, ts ? ts : now);
}

int poise_truncateat(struct poise_pool *pool, uint64_t at, const char *path, off_t len)
{
	EBR_SECTION();
	struct inode *ip;
	int ret = log_fork_check(pool->fs);
	if (ret == 0)
		ret = namei_resolve(pool->fs, at, path, 1, &ip);
	if (ret < 0)
		return ret;
	if (len < 0)
		return poise_err(EINVAL, "negative length");
	if (S_ISDIR(ip->type))
		return poise_err(EISDIR, "a directory cannot be truncated");
	if (!S_ISREG(ip->type))
		return poise_err(EINVAL, "not a regular file");
	return file_truncate(pool->fs, ip, (uint64_t)len);
}

/* Drop one link of ip (locked exclusive) inside tx: the dinode record. */
static int drop_link(struct tx *tx, struct inode *ip, struct poise_dinode *nd, int *freeit)
{
	*nd = ip->d;
	nd->i_nlink = S_ISDIR(nd->i_mode) ? 0 : nd->i_nlink - 1;
	set_times(nd, 0);
	*freeit = nd->i_nlink == 0 && ip->nopen == 0;
	return *freeit ? namei_log_free_dinode(tx, ip) : istore(tx, ip, nd);
}

/* An inode being removed or replaced must be of the kind the call names:
 * -ENOTDIR when a directory is wanted and it is none, -EISDIR when it is
 * one and none is wanted. */
static int type_fits(int want_dir, uint16_t type, const char *name)
{
	if (want_dir && !S_ISDIR(type))
		return poise_err(ENOTDIR, "%s is not a directory", name);
	if (!want_dir && S_ISDIR(type))
		return poise_err(EISDIR, "%s is a directory", name);
	return 0;
}

static int remove_name(struct poise_pool *pool, uint64_t at, const char *path, int want_dir)
{
	struct poise_fs *fs = pool->fs;
	struct inode *dp, *ip;
	const char *name;
	size_t len;
	int ret = namei_resolve_parent(fs, at, path, &dp, &name, &len);
	if (ret < 0)
		return ret;
	if ((ret = name_ok(name, len, 0)) < 0)
		return ret;
	int global = 0; /* rmdir: rename_lock only when the directory's lock is busy */
again:
	if (global)
		pthread_mutex_lock(&fs->rename_lock);
	pthread_rwlock_wrlock(&dp->lock);
	uint64_t ino;
	uint8_t t;
	ret = dp->dead ? -ENOENT : dir_lookup(dp, name, len, &ino, &t);
	if (ret == 0)
		ret = iget(fs, ino, &ip);
	if (ret < 0) {
		ret = ret == -ENOENT ? poise_err(ENOENT, "%s: no such file or directory", path) : ret;
		goto out;
	}
	if (!entry_fits(dp, t, ip)) { /* under dp's lock: no rename races this */
		ret = corrupt_entry(dp, name, len, t, ip);
		goto out;
	}
	if ((ret = type_fits(want_dir, ip->type, path)) < 0)
		goto out;
	if (want_dir && !global) {
		/* Without rename_lock, never wait for a directory while holding
		 * its parent: a rename holding rename_lock locks its two
		 * directories by number, so it may hold this one and wait for
		 * dp.  A busy lock sends this rmdir the global way. */
		if (pthread_rwlock_trywrlock(&ip->lock) != 0) {
			pthread_rwlock_unlock(&dp->lock);
			global = 1;
			goto again;
		}
	} else {
		pthread_rwlock_wrlock(&ip->lock);
	}
	if (want_dir && dir_count(ip) > 0) {
		pthread_rwlock_unlock(&ip->lock);
		ret = poise_err(ENOTEMPTY, "%s is not empty", path);
		goto out;
	}
	struct tx *tx = tx_begin(fs);
	struct poise_dinode nd, pnd = dp->d;
	int freeit = 0;
	set_times(&pnd, 1);
	if (want_dir)
		pnd.i_nlink--;
	ret = tx ? dir_remove(tx, fs, dp, name, len) : poise_err(ENOMEM, "out of memory");
	if (ret == 0)
		ret = drop_link(tx, ip, &nd, &freeit);
	if (ret == 0)
		ret = istore(tx, dp, &pnd);
	if (tx)
		ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
	if (ret < 0) {
		dir_abort(dp);
	} else {
		dir_commit(dp);
		dp->d = pnd;
		if (freeit)
			namei_release_inode(fs, ip);
		else
			ip->d = nd;
	}
	pthread_rwlock_unlock(&ip->lock);
out:
	pthread_rwlock_unlock(&dp->lock);
	if (global)
		pthread_mutex_unlock(&fs->rename_lock);
	return ret;
}

int poise_unlink(struct poise_pool *pool, const char *path)
{
	EBR_SECTION();
	return remove_name(pool, POISE_ROOT_INO, path, 0);
}

int poise_rmdir(struct poise_pool *pool, const char *path)
{
	EBR_SECTION();
	return remove_name(pool, POISE_ROOT_INO, path, 1);
}

int poise_unlinkat(struct poise_pool *pool, uint64_t at, const char *path, int flags)
{
	EBR_SECTION();
	return remove_name(pool, at, path, !!(flags & AT_REMOVEDIR));
}

int poise_link(struct poise_pool *pool, const char *from, const char *to)
{
	return poise_linkat(pool, POISE_ROOT_INO, from, POISE_ROOT_INO, to, 0);
}

int poise_linkat(struct poise_pool *pool, uint64_t fat, const char *from, uint64_t tat, const char *to, int flags)
{
	EBR_SECTION();
	struct poise_fs *fs = pool->fs;
	struct inode *ip, *dp;
	const char *name;
	size_t len;
	int ret = namei_resolve(fs, fat, from, !!(flags & AT_SYMLINK_FOLLOW), &ip);
	if (ret < 0)
		return ret;
	if ((ret = namei_resolve_parent(fs, tat, to, &dp, &name, &len)) < 0)
		return ret;
	if ((ret = name_ok(name, len, 1)) < 0)
		return ret;
	pthread_rwlock_wrlock(&dp->lock);
	uint64_t ino;
	uint8_t t;
	if (dp->dead || dp->d.i_nlink == 0) {
		pthread_rwlock_unlock(&dp->lock);
		return poise_err(ENOENT, "the directory was removed");
	}
	if (dir_lookup(dp, name, len, &ino, &t) == 0) {
		pthread_rwlock_unlock(&dp->lock);
		return poise_err(EEXIST, "%s exists", to);
	}
	if (S_ISDIR(ip->type)) { /* checked after the target, as Linux does */
		pthread_rwlock_unlock(&dp->lock);
		return poise_err(EPERM, "%s: hard links to directories are not allowed", from);
	}
	pthread_rwlock_wrlock(&ip->lock);
	if (ip->dead || ip->d.i_nlink == 0) {
		ret = poise_err(ENOENT, "%s was removed", from);
		goto out;
	}
	struct tx *tx = tx_begin(fs);
	struct poise_dinode nd = ip->d, pnd;
	nd.i_nlink++;
	set_times(&nd, 0);
	ret = tx ? dir_add(tx, fs, dp, name, len, ip->ino, dtype_of(ip->d.i_mode)) : -ENOMEM;
	pnd = dp->d;
	set_times(&pnd, 1);
	if (ret == 0)
		ret = istore(tx, ip, &nd);
	if (ret == 0)
		ret = istore(tx, dp, &pnd);
	if (tx)
		ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
	if (ret < 0) {
		dir_abort(dp);
	} else {
		dir_commit(dp);
		dp->d = pnd;
		ip->d = nd;
	}
out:
	pthread_rwlock_unlock(&ip->lock);
	pthread_rwlock_unlock(&dp->lock);
	return ret;
}

/* Is dir `a` (inode number) `d` or above it? */
static int is_ancestor(struct poise_fs *fs, uint64_t a, struct inode *d)
{
	uint64_t cur = d->ino;
	for (int i = 0; i < 100000; i++) {
		if (cur == a)
			return 1;
		if (cur == POISE_ROOT_INO)
			return 0;
		struct inode *ip;
		if (iget(fs, cur, &ip) < 0)
			return 0;
		cur = __atomic_load_n(&ip->parent, __ATOMIC_ACQUIRE);
	}
	return 1;
}

/* A rename's lock order: rename_lock (global), then its two directories
 * by inode number (one lock when they are the same), then the inodes it
 * names (lock_named: a directory first, else by number).  rename_lock orders what a directory tree does
 * not: the ancestor checks, and a directory locked as a parent by one
 * rename and as the child another moves.  A rename inside one directory
 * whose source and target are no directories skips it: it
 * changes no parent, its directory's lock orders it against every other
 * change there (rmdir of it included), and the files it locks after that
 * directory are locked by number by every rename, and by nothing that
 * waits for a directory while it holds a file. */
static void lock_parents(struct poise_fs *fs, struct inode *a, struct inode *b, int global)
{
	if (global)
		pthread_mutex_lock(&fs->rename_lock);
	struct inode *first = a->ino <= b->ino ? a : b, *second = first == a ? b : a;
	pthread_rwlock_wrlock(&first->lock);
	if (second != first)
		pthread_rwlock_wrlock(&second->lock);
}

static void unlock_parents(struct poise_fs *fs, struct inode *a, struct inode *b, int global)
{
	if (a != b)
		pthread_rwlock_unlock(&b->lock);
	pthread_rwlock_unlock(&a->lock);
	if (global)
		pthread_mutex_unlock(&fs->rename_lock);
}

/* Two distinct inodes a rename names, locked for writing: a directory
 * before a file (an exchange may name one of each: a rename, link or
 * unlink inside that directory holds it and waits for the file), else by
 * number; b may be NULL. */
static void lock_named(struct inode *a, struct inode *b)
{
	int first_b = b && (S_ISDIR(b->type) != S_ISDIR(a->type) ? S_ISDIR(b->type) : b->ino < a->ino);
	struct inode *lo = first_b ? b : a, *hi = lo == a ? b : a;
	pthread_rwlock_wrlock(&lo->lock);
	if (hi)
		pthread_rwlock_wrlock(&hi->lock);
}

/* The two parents of a rename, in tx after what ret says went before: their
 * times, and one store when they are one directory (its image is then
 * snd's).  Returns ret, or the first store's error. */
static int store_parents(struct tx *tx, struct inode *sdp, struct inode *ddp, struct poise_dinode *snd,
			 struct poise_dinode *dnd, int ret)
{
	set_times(snd, 1);
	set_times(dnd, 1);
	if (sdp == ddp)
		*dnd = *snd;
	if (ret == 0)
		ret = istore(tx, sdp, snd);
	if (ret == 0 && sdp != ddp)
		ret = istore(tx, ddp, dnd);
	return ret;
}

/* RENAME_EXCHANGE: the two names swap the inodes they name, in one
 * transaction (directories change parent, the parents' link counts
 * follow). */
static int exchange(struct poise_fs *fs, struct inode *sdp, const char *sn, size_t sl, struct inode *ddp,
		    const char *dn, size_t dl)
{
	int ret;
	if ((ret = name_ok(sn, sl, 0)) < 0 || (ret = name_ok(dn, dl, 0)) < 0)
		return ret;
	lock_parents(fs, sdp, ddp, 1);
	uint64_t ai, bi;
	uint8_t at, bt;
	struct inode *ap = NULL, *bp = NULL;
	ret = sdp->dead || ddp->dead ? -ENOENT : dir_lookup(sdp, sn, sl, &ai, &at);
	if (ret == 0)
		ret = dir_lookup(ddp, dn, dl, &bi, &bt);
	if (ret == 0)
		ret = iget(fs, ai, &ap);
	if (ret == 0)
		ret = iget(fs, bi, &bp);
	if (ret < 0) {
		ret = ret == -ENOENT ? poise_err(ENOENT, "no such file or directory") : ret;
		goto out;
	}
	if (!entry_fits(sdp, at, ap) || !entry_fits(ddp, bt, bp)) {
		ret = !entry_fits(sdp, at, ap) ? corrupt_entry(sdp, sn, sl, at, ap) : corrupt_entry(ddp, dn, dl, bt, bp);
		goto out;
	}
	if (ai == bi)
		goto out;
	int adir = S_ISDIR(ap->type), bdir = S_ISDIR(bp->type);
	if ((adir && is_ancestor(fs, ai, ddp)) || (bdir && is_ancestor(fs, bi, sdp))) {
		ret = poise_err(EINVAL, "cannot move a directory into itself");
		goto out;
	}
	lock_named(ap, bp);
	struct tx *tx = tx_begin(fs);
	struct poise_dinode and = ap->d, bnd = bp->d, snd = sdp->d, dnd = ddp->d;
	ret = tx ? dir_retarget(tx, fs, sdp, sn, sl, bi, bt) : poise_err(ENOMEM, "out of memory");
	if (ret == 0)
		ret = dir_retarget(tx, fs, ddp, dn, dl, ai, at);
	set_times(&and, 0);
	set_times(&bnd, 0);
	if (sdp != ddp) {
		if (adir) {
			and.i_parent = ddp->ino;
			snd.i_nlink--;
			dnd.i_nlink++;
		}
		if (bdir) {
			bnd.i_parent = sdp->ino;
			dnd.i_nlink--;
			snd.i_nlink++;
		}
	}
	if (ret == 0)
		ret = istore(tx, ap, &and);
	if (ret == 0)
		ret = istore(tx, bp, &bnd);
	ret = store_parents(tx, sdp, ddp, &snd, &dnd, ret);
	if (tx)
		ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
	if (ret < 0) {
		dir_abort(sdp);
		if (sdp != ddp)
			dir_abort(ddp);
	} else {
		dir_commit(sdp);
		if (sdp != ddp)
			dir_commit(ddp);
		ap->d = and;
		bp->d = bnd;
		__atomic_store_n(&ap->parent, and.i_parent, __ATOMIC_RELEASE);
		__atomic_store_n(&bp->parent, bnd.i_parent, __ATOMIC_RELEASE);
		sdp->d = snd;
		ddp->d = dnd;
	}
	pthread_rwlock_unlock(&bp->lock);
	pthread_rwlock_unlock(&ap->lock);
out:
	unlock_parents(fs, sdp, ddp, 1);
	return ret;
}

int poise_rename(struct poise_pool *pool, const char *from, const char *to)
{
	return poise_renameat2(pool, POISE_ROOT_INO, from, POISE_ROOT_INO, to, 0);
}

int poise_renameat2(struct poise_pool *pool, uint64_t fat, const char *from, uint64_t tat, const char *to,
		    unsigned flags)
{
	EBR_SECTION();
	struct poise_fs *fs = pool->fs;
	struct inode *sdp, *ddp, *sp, *tp = NULL;
	const char *sn, *dn;
	size_t sl, dl;
	int ret;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return poise_err(EINVAL, "rename flags 0x%x are not supported", flags);
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return poise_err(EINVAL, "RENAME_NOREPLACE and RENAME_EXCHANGE together");
	if ((ret = namei_resolve_parent(fs, fat, from, &sdp, &sn, &sl)) < 0 ||
	    (ret = namei_resolve_parent(fs, tat, to, &ddp, &dn, &dl)) < 0)
		return ret;
	if (flags & RENAME_EXCHANGE)
		return exchange(fs, sdp, sn, sl, ddp, dn, dl);
	if ((ret = name_ok(sn, sl, 0)) < 0 || (ret = name_ok(dn, dl, 0)) < 0)
		return ret;
	int global = sdp != ddp; /* a rename inside one directory tries without rename_lock */
again:
	lock_parents(fs, sdp, ddp, global);
	tp = NULL;
	uint64_t sino, tino;
	uint8_t st, tt;
	ret = sdp->dead || ddp->dead || ddp->d.i_nlink == 0 ? -ENOENT
							     : dir_lookup(sdp, sn, sl, &sino, &st);
	if (ret == 0)
		ret = iget(fs, sino, &sp);
	if (ret < 0) {
		ret = ret == -ENOENT ? poise_err(ENOENT, "%s: no such file or directory", from) : ret;
		goto out;
	}
	if (!entry_fits(sdp, st, sp)) {
		ret = corrupt_entry(sdp, sn, sl, st, sp);
		goto out;
	}
	int sdir = S_ISDIR(sp->type);
	if (!global && sdir) { /* a directory moves: the global order */
		unlock_parents(fs, sdp, ddp, global);
		global = 1;
		goto again;
	}
	/* the checks in Linux's order: source above target, target above
	 * source, then the types */
	if (sdir && is_ancestor(fs, sino, ddp)) {
		ret = poise_err(EINVAL, "cannot move %s into itself", from);
		goto out;
	}
	if (dir_lookup(ddp, dn, dl, &tino, &tt) == 0) {
		if (flags & RENAME_NOREPLACE) {
			ret = poise_err(EEXIST, "%s exists", to);
			goto out;
		}
		if (tino == sino) { /* the same inode: nothing to do */
			ret = 0;
			goto out;
		}
		if ((ret = iget(fs, tino, &tp)) < 0)
			goto out;
		if (!global && S_ISDIR(tp->type)) {
			unlock_parents(fs, sdp, ddp, global);
			global = 1;
			goto again;
		}
		if (!entry_fits(ddp, tt, tp)) {
			ret = corrupt_entry(ddp, dn, dl, tt, tp);
			goto out;
		}
		if (S_ISDIR(tp->type) && is_ancestor(fs, tino, sdp)) { /* the target holds the source */
			ret = poise_err(ENOTEMPTY, "%s is not empty", to);
			goto out;
		}
		if ((ret = type_fits(sdir, tp->type, to)) < 0)
			goto out;
	}
	lock_named(sp, tp); /* after the directories */
	if (tp && S_ISDIR(tp->type) && dir_count(tp) > 0) {
		ret = poise_err(ENOTEMPTY, "%s is not empty", to);
		goto out2;
	}
	struct tx *tx = tx_begin(fs);
	struct poise_dinode snd = sp->d, tnd, sdnd, ddnd;
	int freeit = 0;
	if (!tx) {
		ret = poise_err(ENOMEM, "out of memory");
		goto out2;
	}
	ret = tp ? dir_retarget(tx, fs, ddp, dn, dl, sino, st) : dir_add(tx, fs, ddp, dn, dl, sino, st);
	if (ret == 0)
		ret = dir_remove(tx, fs, sdp, sn, sl);
	if (ret == 0 && tp)
		ret = drop_link(tx, tp, &tnd, &freeit);
	sdnd = sdp->d; /* after dir_add, which may have grown ddp */
	ddnd = ddp->d;
	set_times(&snd, 0);
	if (sdir && sdp != ddp) {
		snd.i_parent = ddp->ino;
		sdnd.i_nlink--;     /* sdp lost a subdirectory */
		if (!tp)
			ddnd.i_nlink++; /* ddp gained one (or swapped one for one) */
	} else if (sdir && tp) {
		sdnd.i_nlink--;     /* the replaced directory is gone */
	}
	if (ret == 0)
		ret = istore(tx, sp, &snd);
	ret = store_parents(tx, sdp, ddp, &sdnd, &ddnd, ret);
	ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
	if (ret < 0) {
		dir_abort(ddp);
		if (sdp != ddp)
			dir_abort(sdp);
		goto out2;
	}
	dir_commit(ddp);
	if (sdp != ddp)
		dir_commit(sdp);
	sp->d = snd;
	__atomic_store_n(&sp->parent, snd.i_parent, __ATOMIC_RELEASE);
	sdp->d = sdnd;
	ddp->d = ddnd;
	if (tp) {
		if (freeit)
			namei_release_inode(fs, tp);
		else
			tp->d = tnd;
	}
out2:
	if (tp)
		pthread_rwlock_unlock(&tp->lock);
	pthread_rwlock_unlock(&sp->lock);
out:
	unlock_parents(fs, sdp, ddp, global);
	return ret;
}
