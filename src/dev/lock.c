/*
 * lock.c - who owns a pool: one open at a time, and only a process that may
 * write the pool can keep others out.
 *
 * An fcntl lock on the pool file itself can be blocked by anyone who may
 * read it (a read lock meets every write lock), so the ownership lock lives
 * on a lock file that only the pool's owner and root can reach:
 *   - its place follows from the pool alone, never from anything a user can
 *     write: lock-DEV-INO (the pool file's identity, so every name of the
 *     pool finds it and a copy does not) in the runtime directory of the
 *     pool file's *owner* (poise_runtime_dir: /run/poise for root,
 *     /tmp/poise-UID otherwise, a directory of that user alone, mode 0700;
 *     root makes it for the owner when it is missing);
 *   - the file is opened relative to that directory's descriptor, never
 *     through a symlink, and used only when it is a regular file of the
 *     pool's owner with one link; root gives a file it makes to the owner;
 *   - the owner holds an OFD write lock on its byte 0 (dropped by the kernel
 *     when the owner dies: no stale owner) and a classic lock on byte 1 so
 *     that others can name its pid.  The file is never removed, so no two
 *     openers can ever hold locks on two different files of one name.
 * The pool file's own OFD write lock on byte 0 is taken as well whenever no
 * reader blocks it, and a writer that finds it held by another gives up.
 * An opener with no lock file to use (the owner's runtime directory absent
 * and not ours to make, or taken by another user first) falls back to that
 * lock alone: it still excludes, and is excluded by, an owner of either
 * kind, and only it can be blocked by a reader's read lock (none exists
 * for a pool of mode 0600; for another, it warns, and a refusal by a
 * reader's lock says how to shut readers out).  An opener that
 * finds a lock file it may not open (a group writer) refuses: the file's
 * holder may own the pool without the pool file's lock.
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
#include <unistd.h>

int poise_runtime_dir(uid_t uid, int create, char *dir, size_t len)
{
	struct stat st;
	if (uid == 0)
		snprintf(dir, len, "/run/poise");
	else
		snprintf(dir, len, "/tmp/poise-%u", (unsigned)uid);
	if (create && mkdir(dir, uid == 0 ? 0755 : 0700) == 0 && geteuid() == 0 && uid != 0 &&
	    chown(dir, uid, (gid_t)-1) < 0) {
		int e = errno;
		(void)rmdir(dir);
		return poise_errno(e, "%s", dir);
	}
	if (lstat(dir, &st) < 0)
		return create ? poise_errno(errno, "%s", dir) : -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & (uid == 0 ? 022 : 077)))
		return poise_err(EPERM, "%s: not a directory of uid %u that only it may use (not used)", dir,
				 (unsigned)uid);
	return 0;
}

/* The lock file of the pool (identity and owner in *pool), opened O_RDWR
 * (or O_RDONLY for a probe), made when missing and make: the descriptor,
 * or -errno (-EPERM: no trustworthy place for it). */
static int open_lock(const struct stat *pool, int make, int probe)
{
	char dir[256], name[64];
	int r = poise_runtime_dir(pool->st_uid, make && (geteuid() == 0 || geteuid() == pool->st_uid), dir,
				  sizeof(dir));
	if (r < 0)
		return r;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct stat ds;
	if (fstat(dfd, &ds) < 0 || ds.st_uid != pool->st_uid) { /* swapped since the check */
		close(dfd);
		return -EPERM;
	}
	snprintf(name, sizeof(name), "lock-%llx-%llx", (unsigned long long)pool->st_dev,
		 (unsigned long long)pool->st_ino);
	int flags = (probe ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, made = 0;
	int fd = make ? openat(dfd, name, flags | O_CREAT | O_EXCL, 0600) : -1;
	if (fd >= 0)
		made = 1;
	else if (!make || errno == EEXIST)
		fd = openat(dfd, name, flags);
	r = fd < 0 ? -errno : 0;
	/* a file we just made is the owner's; one we cannot give it must not
	 * stay, or the owner could never open it */
	if (fd >= 0 && made && geteuid() == 0 && pool->st_uid != 0 && fchown(fd, pool->st_uid, pool->st_gid) < 0) {
		r = -errno;
		(void)unlinkat(dfd, name, 0);
		close(fd);
		fd = -1;
	}
	close(dfd);
	if (fd < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != pool->st_uid) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* EBUSY naming the holder of the lock on fd (its classic lock on byte 1). */
static int busy(struct poise_dev *d, int fd)
{
	struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
	if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK && who.l_pid > 0)
		return poise_err(EBUSY, "%s: pool in use by pid %d", d->path, (int)who.l_pid);
	/* (a process that closes any descriptor of the file loses its classic
	 * lock, so the pid can go unknown; the OFD lock still holds) */
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

int poise_dev_lock(struct poise_dev *d)
{
	struct stat pool;
	d->lock_fd = -1;
	if (fstat(d->fd, &pool) < 0)
		return poise_errno(errno, "%s", d->path);
	int lfd = open_lock(&pool, 1, 0);
	/* a lock file that exists where we may not open it: its owner (the
	 * pool's owner, or root for it) may hold the pool while only readers
	 * block the pool file's own lock, so taking that one would not exclude
	 * it: refuse.  With no place for a lock file at all (none made, or the
	 * place not the owner's), every opener falls back alike. */
	if (lfd < 0 && lfd != -ENOENT && lfd != -EPERM)
		return poise_err(-lfd, "%s: cannot open its lock file in the runtime directory of the pool's owner "
				       "(uid %u): %s", d->path, (unsigned)pool.st_uid, strerror(-lfd));
	if (lfd >= 0) {
		int r = take(d, lfd);
		if (r != 0) {
			r = r == 1 ? busy(d, lfd) : r;
			close(lfd);
			return r;
		}
	}
	/* the pool file's own lock: required unless only readers block it
	 * (they cannot be owners); an owner of either kind holds it */
	int r = take(d, d->fd);
	if (r == 1 && lfd < 0 && !write_locked(d->fd)) {
		/* only a reader holds it, and with no lock file it is all we
		 * have: say what lets a reader in and how to shut it out */
		char dir[256];
		(void)poise_runtime_dir(pool.st_uid, 0, dir, sizeof(dir));
		return poise_err(EBUSY, "%s: another process that can read the pool holds a read lock on it (until it "
					"closes the pool), and %s, the lock directory of the pool's owner, is missing or "
					"not the owner's: make the pool readable by its owner only (chmod go-rw) to keep "
					"others out from then on, and have root remove that directory",
				 d->path, dir);
	}
	if (r < 0 || (r == 1 && (lfd < 0 || write_locked(d->fd)))) {
		r = r < 0 ? r : busy(d, d->fd);
		if (lfd >= 0)
			close(lfd);
		return r;
	}
	if (lfd < 0 && (pool.st_mode & 044))
		poise_dev_note(d,
			 "%s: no lock directory of the pool's owner: another user who can read the pool can keep it "
			 "from being opened (make it owner-only: chmod go-rw)", d->path);
	d->lock_fd = lfd;
	return 0;
}

void poise_dev_unlock(struct poise_dev *d)
{
	if (d->lock_fd >= 0)
		close(d->lock_fd); /* drops both locks; the file stays (see above) */
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
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat pool;
	int held = holder(fd, pid);
	if (!held && fstat(fd, &pool) == 0 && S_ISREG(pool.st_mode)) {
		int lfd = open_lock(&pool, 0, 1);
		if (lfd >= 0) {
			held = holder(lfd, pid);
			close(lfd);
		}
	}
	close(fd);
	return held;
}
