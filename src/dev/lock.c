/*
 * lock.c - who owns a pool: one open at a time, and only a process that may
 * write the pool can keep others out.
 *
 * An fcntl lock on the pool file itself can be blocked by anyone who may
 * read it (a read lock meets every write lock), so the ownership lock lives
 * on a lock file that only the pool's writers can open:
 *   - the pool file's attribute user.poise.lock names it, "DEV:INO:PATH"
 *     (the pool's identity, so a copy of the file with its attributes does
 *     not share the original's lock); setting an attribute needs write
 *     access to the pool, so no reader can point it elsewhere;
 *   - the lock file is made by the first writer, in its runtime directory
 *     (poise_runtime_dir: /run/poise for root, /run/user/UID/poise or
 *     /tmp/poise-UID, writable by that user alone), named lock-DEV-INO (or
 *     that name + .XXXXXX when the name is taken by a file that is not the
 *     pool owner's), mode rw for exactly the classes that may write the
 *     pool, given to the pool's owner and group when root makes it; a
 *     reader of the pool cannot open it, so cannot lock it, and nothing is
 *     left beside the pool;
 *   - the owner holds an OFD write lock on its byte 0 (dropped by the kernel
 *     when the owner dies: no stale owner) and a classic lock on byte 1 so
 *     that others can name its pid;
 *   - owner = the holder of the lock on the file the attribute names *after*
 *     it took the lock: a writer re-reads the attribute once it holds the
 *     lock and starts over if it changed, so two writers racing to make the
 *     file end with one owner.  A writer replaces the attribute only when
 *     the file it names is gone (only the pool's owner or root can delete
 *     it from a sticky directory).
 * The pool file's own OFD write lock on byte 0 is taken too, when no reader
 * blocks it, so owners of either kind see each other.  Where the pool
 * cannot carry user attributes (a devdax character device, a file system
 * without them) or no runtime directory can be had, that lock alone is the
 * ownership lock, as before: blockable by the pool's readers.
 *
 * Lock rules: none of its own; the caller (poise_dev_open) serialises opens
 * of one pool in this process (claim()).
 */
#include "dev/dev.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define LOCK_XATTR "user.poise.lock"

/* The lock file the pool's attribute names, when it is the pool's own:
 * 1 with path set, 0 when there is none (or it names another inode), -1
 * when the pool cannot carry attributes. */
static int named_lock(int fd, const struct stat *pool, char *path, size_t len)
{
	char v[4200];
	ssize_t n = fgetxattr(fd, LOCK_XATTR, v, sizeof(v) - 1);
	if (n < 0)
		return errno == ENODATA ? 0 : -1;
	v[n] = 0;
	unsigned long long dev, ino;
	int at = 0;
	if (sscanf(v, "%llx:%llx:%n", &dev, &ino, &at) != 2 || at == 0 || v[at] != '/' ||
	    dev != (unsigned long long)pool->st_dev || ino != (unsigned long long)pool->st_ino)
		return 0;
	snprintf(path, len, "%s", v + at);
	return 1;
}

/* The pool's writers: rw for each class the pool grants write. */
static mode_t lock_mode(const struct stat *pool)
{
	return (pool->st_mode & S_IWUSR ? 0600 : 0) | (pool->st_mode & S_IWGRP ? 0060 : 0) |
	       (pool->st_mode & S_IWOTH ? 0006 : 0) | 0600;
}

int poise_runtime_dir(uid_t uid, int create, char *dir, size_t len)
{
	char run[64];
	struct stat st;
	snprintf(run, sizeof(run), "/run/user/%u", (unsigned)uid);
	if (uid == 0)
		snprintf(dir, len, "/run/poise");
	else if (lstat(run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid)
		snprintf(dir, len, "%s/poise", run);
	else
		snprintf(dir, len, "/tmp/poise-%u", (unsigned)uid);
	if (create && mkdir(dir, uid == 0 ? 0755 : 0700) < 0 && errno != EEXIST)
		return poise_errno(errno, "%s", dir);
	if (lstat(dir, &st) < 0)
		return create ? poise_errno(errno, "%s", dir) : -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 022))
		return poise_err(EPERM, "%s: not a directory of uid %u that only it may write (not used)", dir,
				 (unsigned)uid);
	return 0;
}

/* Make a lock file for the pool in our runtime directory and point the
 * attribute at it (replace: the one it named is gone).  0, or -errno;
 * -EEXIST when another writer set the attribute first (start over). */
static int make_lock(struct poise_dev *d, const struct stat *pool, int replace)
{
	char path[4096];
	int r = poise_runtime_dir(geteuid(), 1, path, sizeof(path) - 64);
	if (r < 0)
		return r;
	snprintf(path + strlen(path), 64, "/lock-%llx-%llx", (unsigned long long)pool->st_dev,
		 (unsigned long long)pool->st_ino);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, lock_mode(pool));
	struct stat st;
	if (fd < 0 && errno == EEXIST && (fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) >= 0 &&
	    (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_uid != pool->st_uid && st.st_uid != geteuid()))) {
		close(fd); /* left by someone else: not ours to use */
		fd = -1;
	}
	if (fd < 0) { /* the plain name is taken by something not ours */
		snprintf(path + strlen(path), sizeof(path) - strlen(path), ".XXXXXX");
		if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
			return poise_errno(errno, "%s: cannot make a lock file for the pool", d->path);
		(void)fchmod(fd, lock_mode(pool));
	}
	if (geteuid() == 0)
		(void)fchown(fd, pool->st_uid, pool->st_gid);
	else
		(void)fchown(fd, (uid_t)-1, pool->st_gid);
	close(fd);
	char v[4200];
	int n = snprintf(v, sizeof(v), "%llx:%llx:%s", (unsigned long long)pool->st_dev,
			 (unsigned long long)pool->st_ino, path);
	if (fsetxattr(d->fd, LOCK_XATTR, v, (size_t)n, replace ? XATTR_REPLACE : XATTR_CREATE) < 0) {
		int e = errno;
		if (e == EEXIST || e == ENODATA)
			return -EEXIST; /* raced another writer */
		return poise_errno(e, "%s: cannot record its lock file", d->path);
	}
	return 0;
}

/* EBUSY naming the holder of the lock on fd (its classic lock on byte 1). */
static int busy(struct poise_dev *d, int fd)
{
	struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
	if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK && who.l_pid > 0)
		return poise_err(EBUSY, "%s: pool in use by pid %d", d->path, (int)who.l_pid);
	/* (a process that closes any descriptor of the lock file loses its
	 * classic lock, so the pid can go unknown; the OFD lock still holds) */
	return poise_err(EBUSY, "%s: pool in use by another process", d->path);
}

/* OFD write lock on byte 0 of fd, and the pid lock on byte 1.  0, 1 when
 * held by another, or -errno. */
static int take(struct poise_dev *d, int fd)
{
	struct flock ofd = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	if (fcntl(fd, F_OFD_SETLK, &ofd) < 0) {
		if (errno == EAGAIN || errno == EACCES)
			return 1;
		return poise_errno(errno, "%s: cannot lock the pool", d->path);
	}
	struct flock pid = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
	(void)fcntl(fd, F_SETLK, &pid);
	return 0;
}

/* Does someone hold a write lock on byte 0 of fd (an owner: readers can
 * only hold read locks)?  A read-lock probe meets only write locks. */
static int write_locked(int fd)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* The pool file's own lock: taken beside the lock file's when no reader
 * blocks it, so that an owner of the other kind (below) is seen. */
static int legacy(struct poise_dev *d)
{
	int r = take(d, d->fd);
	return r == 1 ? busy(d, d->fd) : r;
}

int poise_dev_lock(struct poise_dev *d)
{
	struct stat pool;
	char path[4096], again[4096];
	d->lock_fd = -1;
	if (fstat(d->fd, &pool) < 0)
		return poise_errno(errno, "%s", d->path);
	for (int tries = 0; tries < 32; tries++) {
		int r = named_lock(d->fd, &pool, path, sizeof(path));
		if (r < 0) /* no attributes here: the pool file itself */
			return legacy(d);
		int lfd = r ? open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC) : -1;
		if (lfd < 0 && r && errno == EACCES) {
			/* a lock file we may not open: made by root before the pool
			 * was given away, or by another writer.  Its owner would
			 * hold the pool file's own lock too (unless only readers
			 * block that): replace it only when nobody does */
			if (write_locked(d->fd))
				return busy(d, d->fd);
			errno = ENOENT;
		}
		if (lfd < 0) {
			if (r && errno != ENOENT)
				return poise_errno(errno, "%s: its lock file %s", d->path, path);
			/* none yet, or the one named is gone: make one (where none
			 * can be made, a directory we may not write, the pool
			 * file's own lock) */
			r = make_lock(d, &pool, r);
			if (r < 0 && r != -EEXIST)
				return legacy(d);
			continue;
		}
		r = take(d, lfd);
		if (r == 1) {
			r = busy(d, lfd);
			close(lfd);
			return r;
		}
		if (r < 0) {
			close(lfd);
			return r;
		}
		struct stat mine, now;
		if (named_lock(d->fd, &pool, again, sizeof(again)) != 1 || strcmp(again, path) || fstat(lfd, &mine) < 0 ||
		    stat(path, &now) < 0 || mine.st_dev != now.st_dev || mine.st_ino != now.st_ino) {
			/* another writer re-pointed it meanwhile, or the owner we
			 * waited on removed the file as it closed: start over */
			close(lfd);
			continue;
		}
		/* ours; the pool file's own lock too, unless only readers hold it
		 * (then they cannot be owners) */
		if (take(d, d->fd) == 1 && write_locked(d->fd)) {
			r = busy(d, d->fd);
			close(lfd);
			return r;
		}
		if (geteuid() == 0) /* the pool may have been given away since */
			(void)fchown(lfd, pool.st_uid, pool.st_gid);
		if (!(d->lock_path = strdup(path))) {
			close(lfd);
			return poise_err(ENOMEM, "out of memory");
		}
		d->lock_fd = lfd;
		return 0;
	}
	return poise_err(EBUSY, "%s: cannot settle who owns the pool (its lock file keeps changing)", d->path);
}

void poise_dev_unlock(struct poise_dev *d)
{
	/* removed while still held: whoever opened it meanwhile finds it is
	 * no longer the file at its path once it gets the lock, and starts
	 * over (above) */
	if (d->lock_path)
		(void)unlink(d->lock_path);
	free(d->lock_path);
	d->lock_path = NULL;
	if (d->lock_fd >= 0)
		close(d->lock_fd); /* drops both locks */
	d->lock_fd = -1;
}

/* The holder of a write lock on byte 0 of fd: 1 (and *pid when its classic
 * lock names it), or 0. */
static int holder(int fd, pid_t *pid)
{
	if (!write_locked(fd))
		return 0;
	struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
	if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK && who.l_pid > 0)
		*pid = who.l_pid;
	return 1;
}

int poise_pool_holder(const char *path, pid_t *pid)
{
	*pid = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat pool;
	char lpath[4096];
	int held = holder(fd, pid);
	if (!held && fstat(fd, &pool) == 0 && named_lock(fd, &pool, lpath, sizeof(lpath)) == 1) {
		int lfd = open(lpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (lfd >= 0) {
			held = holder(lfd, pid);
			close(lfd);
		}
	}
	close(fd);
	return held;
}
