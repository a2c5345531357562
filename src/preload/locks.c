/*
 * locks.c - file locks on poise descriptors, kept by the shim itself: the
 * pool belongs to one process, so every holder of a lock on a poise file
 * is a thread of this process, and the kernel never sees the files.
 *
 * Three kinds, as Linux's local file systems keep them:
 *  - flock(2) locks belong to an open file description (a struct pfile):
 *    a second open() of the same file conflicts with the first, dup'ed
 *    numbers share one lock; a conversion is not atomic (the old lock goes
 *    first); the lock goes when the description's last number closes.
 *  - OFD record locks (F_OFD_SETLK, F_OFD_SETLKW, F_OFD_GETLK): byte
 *    ranges, also owned by the description.
 *  - POSIX record locks (F_SETLK, F_SETLKW, F_GETLK, lockf): byte ranges
 *    owned by the process.  They never conflict with each other here (one
 *    process), but they do with OFD locks, and every POSIX lock of a file
 *    goes when any of the process's descriptors of that file is closed
 *    (POSIX's rule, which SQLite and others plan around).
 * flock locks and record locks do not interact.
 *
 * Ranges are [start, end], end LK_EOF for "to the end and beyond".  A
 * waiter (F_SETLKW, flock without LOCK_NB) sleeps until a release; a
 * signal does not end the wait (unlike the kernel's EINTR), and there is
 * no deadlock detection between threads (POSIX has none between the
 * threads of one process either).
 *
 * Lock rules: lk_lock guards both lists; waiters sleep on lk_cond, which
 * every release broadcasts.  No other shim lock is taken under lk_lock
 * except a pfile's own lock (to read its offset, for SEEK_CUR), never the
 * other way round.
 */
#include "preload/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LK_EOF INT64_MAX

struct range {
	struct range *next;
	uint64_t ino;
	const void *owner; /* a struct pfile (OFD), or &process (POSIX) */
	short type;        /* F_RDLCK or F_WRLCK */
	int64_t start, end;
};

struct flk {
	struct flk *next;
	uint64_t ino;
	const struct pfile *owner;
	int ex;
};

static struct range *ranges;
static struct flk *flocks;
static const char process; /* the owner of this process's POSIX locks */
static pthread_mutex_t lk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lk_cond = PTHREAD_COND_INITIALIZER;

/* ---- record locks ---- */

/* The first lock of another owner that [s, e] of type would conflict with. */
static struct range *conflict(uint64_t ino, const void *owner, short type, int64_t s, int64_t e)
{
	for (struct range *r = ranges; r; r = r->next)
		if (r->ino == ino && r->owner != owner && r->start <= e && s <= r->end &&
		    (type == F_WRLCK || r->type == F_WRLCK))
			return r;
	return NULL;
}

/* Make [s, e] of owner's locks on ino exactly type (F_UNLCK: none), splitting
 * what it held around the range.  0, or -ENOLCK when memory runs out (nothing
 * changed then). */
static int set_range(uint64_t ino, const void *owner, short type, int64_t s, int64_t e)
{
	struct range *fresh = NULL, *split = NULL;
	if (type != F_UNLCK && !(fresh = malloc(sizeof(*fresh))))
		return -ENOLCK;
	for (struct range *r = ranges; r; r = r->next)
		if (r->ino == ino && r->owner == owner && r->start < s && r->end > e) {
			if (!(split = malloc(sizeof(*split)))) {
				free(fresh);
				return -ENOLCK;
			}
			break;
		}
	for (struct range **pp = &ranges; *pp;) {
		struct range *r = *pp;
		if (r->ino != ino || r->owner != owner || r->end < s || r->start > e) {
			pp = &r->next;
			continue;
		}
		if (r->start < s && r->end > e) { /* a hole punched in it: two pieces */
			*split = *r;
			split->start = e + 1;
			r->end = s - 1;
			split->next = r->next;
			r->next = split;
			pp = &split->next;
		} else if (r->start < s) {
			r->end = s - 1;
			pp = &r->next;
		} else if (r->end > e) {
			r->start = e + 1;
			pp = &r->next;
		} else {
			*pp = r->next;
			free(r);
		}
	}
	if (fresh) {
		*fresh = (struct range){ranges, ino, owner, type, s, e};
		ranges = fresh;
	}
	pthread_cond_broadcast(&lk_cond);
	return 0;
}

/* The byte range a struct flock names on f, as the kernel computes it. */
static int flock_range(struct pfile *f, const struct flock *fl, int64_t *s, int64_t *e)
{
	int64_t base;
	if (fl->l_whence == SEEK_SET) {
		base = 0;
	} else if (fl->l_whence == SEEK_CUR) {
		pthread_mutex_lock(&f->lock);
		base = f->off;
		pthread_mutex_unlock(&f->lock);
	} else if (fl->l_whence == SEEK_END) {
		struct stat st;
		int r = poise_fstat(shim_pool, f->pfd, &st);
		if (r < 0)
			return r;
		base = st.st_size;
	} else {
		return -EINVAL;
	}
	int64_t start;
	if (__builtin_add_overflow(base, (int64_t)fl->l_start, &start))
		return -EOVERFLOW;
	int64_t end = LK_EOF;
	if (fl->l_len > 0) {
		if (__builtin_add_overflow(start, (int64_t)fl->l_len - 1, &end))
			return -EOVERFLOW;
	} else if (fl->l_len < 0) {
		end = start - 1;
		if (__builtin_add_overflow(start, (int64_t)fl->l_len, &start))
			return -EINVAL;
	}
	if (start < 0)
		return -EINVAL;
	*s = start;
	*e = end;
	return 0;
}

int lk_fcntl(struct pfile *f, int cmd, struct flock *fl)
{
	int ofd = cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
	int get = cmd == F_GETLK || cmd == F_OFD_GETLK, wait = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
	if (!fl)
		return -EFAULT;
	if (fl->l_type != F_RDLCK && fl->l_type != F_WRLCK && fl->l_type != F_UNLCK)
		return -EINVAL;
	if (ofd && fl->l_pid != 0)
		return -EINVAL;
	if (!get && fl->l_type == F_RDLCK && (shim_flags(f) & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	if (!get && fl->l_type == F_WRLCK && (shim_flags(f) & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	int64_t s, e;
	int r = flock_range(f, fl, &s, &e);
	if (r < 0)
		return r;
	const void *owner = ofd ? (const void *)f : &process;
	pthread_mutex_lock(&lk_lock);
	if (get) {
		struct range *c = fl->l_type == F_UNLCK ? NULL : conflict(f->ino, owner, fl->l_type, s, e);
		if (c) {
			fl->l_type = c->type;
			fl->l_whence = SEEK_SET;
			fl->l_start = c->start;
			fl->l_len = c->end == LK_EOF ? 0 : c->end - c->start + 1;
			fl->l_pid = c->owner == &process ? getpid() : -1; /* OFD locks have no process */
		} else {
			fl->l_type = F_UNLCK;
		}
	} else {
		while (fl->l_type != F_UNLCK && conflict(f->ino, owner, fl->l_type, s, e) && wait)
			pthread_cond_wait(&lk_cond, &lk_lock);
		if (fl->l_type != F_UNLCK && conflict(f->ino, owner, fl->l_type, s, e))
			r = -EAGAIN;
		else
			r = set_range(f->ino, owner, fl->l_type, s, e);
	}
	pthread_mutex_unlock(&lk_lock);
	return r;
}

int lk_lockf(struct pfile *f, int cmd, off_t len)
{
	struct flock fl = {.l_whence = SEEK_CUR, .l_start = 0, .l_len = len};
	switch (cmd) {
	case F_TEST: /* as glibc tests: may this process read-lock it? */
		fl.l_type = F_RDLCK;
		break;
	case F_ULOCK:
		fl.l_type = F_UNLCK;
		break;
	case F_LOCK:
	case F_TLOCK:
		fl.l_type = F_WRLCK;
		break;
	default:
		return -EINVAL;
	}
	if (cmd == F_TEST) {
		int r = lk_fcntl(f, F_GETLK, &fl);
		return r < 0 ? r : fl.l_type == F_UNLCK ? 0 : -EACCES;
	}
	return lk_fcntl(f, cmd == F_LOCK ? F_SETLKW : F_SETLK, &fl);
}

void lk_close(uint64_t ino)
{
	pthread_mutex_lock(&lk_lock);
	set_range(ino, &process, F_UNLCK, 0, LK_EOF); /* an unlock allocates nothing */
	pthread_mutex_unlock(&lk_lock);
}

/* ---- flock ---- */

static struct flk **flk_find(const struct pfile *f)
{
	struct flk **pp = &flocks;
	while (*pp && (*pp)->owner != f)
		pp = &(*pp)->next;
	return pp;
}

static int flk_busy(const struct pfile *f, int ex)
{
	for (struct flk *l = flocks; l; l = l->next)
		if (l->ino == f->ino && l->owner != f && (ex || l->ex))
			return 1;
	return 0;
}

int lk_flock(struct pfile *f, int op)
{
	int nb = op & LOCK_NB, kind = op & ~LOCK_NB;
	if (kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN)
		return -EINVAL;
	int ex = kind == LOCK_EX, r = 0;
	pthread_mutex_lock(&lk_lock);
	struct flk **pp = flk_find(f);
	if (*pp && (kind == LOCK_UN || (*pp)->ex != ex)) { /* unlock, or convert: the old lock goes first */
		struct flk *l = *pp;
		*pp = l->next;
		free(l);
		pthread_cond_broadcast(&lk_cond);
	} else if (*pp) {
		kind = LOCK_UN; /* already held as asked */
	}
	if (kind != LOCK_UN) {
		while (flk_busy(f, ex) && !nb)
			pthread_cond_wait(&lk_cond, &lk_lock);
		struct flk *l = flk_busy(f, ex) ? NULL : malloc(sizeof(*l));
		if (l) {
			*l = (struct flk){flocks, f->ino, f, ex};
			flocks = l;
		} else {
			r = flk_busy(f, ex) ? -EWOULDBLOCK : -ENOLCK;
		}
	}
	pthread_mutex_unlock(&lk_lock);
	return r;
}

void lk_release(const struct pfile *f)
{
	pthread_mutex_lock(&lk_lock);
	struct flk **pp = flk_find(f);
	if (*pp) {
		struct flk *l = *pp;
		*pp = l->next;
		free(l);
	}
	set_range(f->ino, f, F_UNLCK, 0, LK_EOF);
	pthread_mutex_unlock(&lk_lock);
}
