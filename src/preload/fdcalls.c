/*
 * fdcalls.c - the rest of glibc's calls that take a descriptor (or a
 * path) and would otherwise reach the kernel with a poise number, where
 * they would act on the reserved O_PATH placeholder (shim.h).  Each is
 * served, or refused with the errno a kernel file system gives for an
 * operation it does not support; docs/SHIM.md lists every call and its
 * answer, and tests/integration/shim_calls.c walks the list.
 *
 *   served: sync_file_range, syncfs, readahead, posix_fadvise (advice
 *     checked; nothing to do on DAX: every write is durable on return, no
 *     page cache), fstatfs/statfs/fstatvfs/statvfs (the pool's figures,
 *     f_type POISE_STATFS_MAGIC), fpathconf/pathconf, ioctl (FIGETBSZ,
 *     FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, FS_IOC_GETFLAGS: no flags,
 *     FS_IOC_SETFLAGS of none), flock and lockf (locks.c), close_range and
 *     closefrom, sendfile, splice to and from a pipe, copy_file_range
 *     within the pool, the xattr calls (f*, l* and following), futimes,
 *     utimes, lutimes, utime, futimesat, getdents64, POSIX AIO (aio_read,
 *     aio_write, aio_fsync, lio_listio: done at once, in the caller, then
 *     notified as asked; aio_error/aio_return/aio_suspend then see them
 *     complete).
 *   refused: ioctl FS_IOC_SETFLAGS of a flag, FIEMAP, FICLONE(RANGE) and
 *     FIDEDUPERANGE (EOPNOTSUPP; EXDEV against a kernel file), FIBMAP
 *     (EINVAL), FS_IOC_GETVERSION and every other request (ENOTTY); tee
 *     (EINVAL: not a pipe), vmsplice (EBADF), epoll_ctl (EPERM, as for any
 *     regular file), isatty/tcgetattr (ENOTTY), fexecve (EACCES, as on a
 *     noexec mount: run programs from the pool through the mount),
 *     copy_file_range between the pool and the kernel (EXDEV).
 *   not interposable: io_uring and Linux AIO (io_submit) requests go to
 *     the kernel by system call: on a poise number they fail with EBADF
 *     (the placeholder is O_PATH), never with a silent success.
 *
 * Lock rules: none of its own; each call holds a pfile reference from
 * shim_get for its duration, and takes the pfile's lock only to read or
 * move its offset.
 */
#include "preload/shim.h"
#include "poise-admin.h"

#include <aio.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>
#include <utime.h>


/* statfs's f_type for a poise file system ("POIS") */
#define POISE_STATFS_MAGIC 0x504f4953
#ifndef ST_VALID
#define ST_VALID 0x0020 /* f_flags is filled in (the kernel's flag) */
#endif

/* ---- durability and hints: nothing to do on DAX ---- */

int sync_file_range(int fd, off64_t off, off64_t n, unsigned flags)
{
	if (!shim_get_peek(fd))
		return NEXT(sync_file_range)(fd, off, n, flags);
	int64_t end;
	if ((flags & ~(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)) || off < 0 ||
	    n < 0 || __builtin_add_overflow(off, n, &end)) {
		errno = EINVAL;
		return -1;
	}
	return 0; /* every write was durable when it returned */
}

int syncfs(int fd)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(syncfs)(fd);
	int r = poise_fsync(shim_pool, f->pfd); /* the times of in-place overwrites; the rest is durable */
	shim_put(f);
	return (int)shim_ret(r);
}

ssize_t readahead(int fd, off64_t off, size_t n)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(readahead)(fd, off, n);
	int dir = f->isdir;
	shim_put(f);
	return shim_ret(dir ? -EINVAL : 0); /* no page cache to fill */
}

int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
	if (!shim_get_peek(fd))
		return NEXT(posix_fadvise)(fd, off, len, advice);
	return advice < POSIX_FADV_NORMAL || advice > POSIX_FADV_NOREUSE || len < 0 ? EINVAL : 0;
}

int posix_fadvise64(int fd, off_t off, off_t len, int advice) __attribute__((alias("posix_fadvise")));

/* ---- file system figures ---- */

static int pool_statfs(struct statfs *sf)
{
	struct statvfs v;
	int r = poise_statfs(shim_pool, &v);
	if (r < 0)
		return r;
	memset(sf, 0, sizeof(*sf));
	sf->f_type = POISE_STATFS_MAGIC;
	sf->f_bsize = (long)v.f_bsize;
	sf->f_frsize = (long)v.f_frsize;
	sf->f_blocks = v.f_blocks;
	sf->f_bfree = v.f_bfree;
	sf->f_bavail = v.f_bavail;
	sf->f_files = v.f_files;
	sf->f_ffree = v.f_ffree;
	memcpy(&sf->f_fsid, &v.f_fsid, sizeof(sf->f_fsid) < sizeof(v.f_fsid) ? sizeof(sf->f_fsid) : sizeof(v.f_fsid));
	sf->f_namelen = (long)v.f_namemax;
	sf->f_flags = ST_VALID;
	return 0;
}

/* Is (AT_FDCWD, path) in the pool?  1 with *r the result of stat'ing it
 * (following links), 0 when it is the kernel's. */
static int path_ours(const char *path, int *r)
{
	uint64_t at;
	const char *in;
	if (!shim_at(AT_FDCWD, path, &at, &in))
		return 0;
	struct stat st;
	*r = poise_fstatat(shim_pool, at, in, &st, 0);
	return 1;
}

int fstatfs(int fd, struct statfs *sf)
{
	if (!shim_get_peek(fd))
		return NEXT(fstatfs)(fd, sf);
	return (int)shim_ret(pool_statfs(sf));
}

int fstatfs64(int fd, struct statfs64 *sf)
{
	return fstatfs(fd, (struct statfs *)sf); /* the same layout on 64-bit */
}

int statfs(const char *path, struct statfs *sf)
{
	int r;
	if (!path_ours(path, &r))
		return NEXT(statfs)(path, sf);
	return (int)shim_ret(r < 0 ? r : pool_statfs(sf));
}

int statfs64(const char *path, struct statfs64 *sf)
{
	return statfs(path, (struct statfs *)sf);
}

static int pool_statvfs(struct statvfs *v)
{
	int r = poise_statfs(shim_pool, v);
	if (r == 0)
		v->f_flag = 0;
	return r;
}

int fstatvfs(int fd, struct statvfs *v)
{
	if (!shim_get_peek(fd))
		return NEXT(fstatvfs)(fd, v);
	return (int)shim_ret(pool_statvfs(v));
}

int fstatvfs64(int fd, struct statvfs64 *v)
{
	return fstatvfs(fd, (struct statvfs *)v);
}

int statvfs(const char *path, struct statvfs *v)
{
	int r;
	if (!path_ours(path, &r))
		return NEXT(statvfs)(path, v);
	return (int)shim_ret(r < 0 ? r : pool_statvfs(v));
}

int statvfs64(const char *path, struct statvfs64 *v)
{
	return statvfs(path, (struct statvfs *)v);
}

/* The limits that are the pool's own; the rest are glibc's generic ones. */
static long pool_pathconf(int name)
{
	switch (name) {
	case _PC_NAME_MAX:
		return 255;
	case _PC_FILESIZEBITS:
		return 64;
	case _PC_SYMLINK_MAX:
		return 4095;
	case _PC_2_SYMLINKS:
		return 1;
	case _PC_REC_MIN_XFER_SIZE:
	case _PC_REC_XFER_ALIGN:
	case _PC_ALLOC_SIZE_MIN:
		return 4096;
	default:
		return NEXT(pathconf)("/", name);
	}
}

long fpathconf(int fd, int name)
{
	return shim_get_peek(fd) ? pool_pathconf(name) : NEXT(fpathconf)(fd, name);
}

long pathconf(const char *path, int name)
{
	int r;
	if (!path_ours(path, &r))
		return NEXT(pathconf)(path, name);
	return r < 0 ? shim_ret(r) : pool_pathconf(name);
}

/* ---- ioctl ---- */

int shim_setfl(struct pfile *f, int flags)
{
	int r = poise_fsetfl(shim_pool, f->pfd, flags);
	if (r == 0) {
		int old = __atomic_load_n(&f->flags, __ATOMIC_RELAXED);
		while (!__atomic_compare_exchange_n(&f->flags, &old, (old & ~SHIM_SETFL) | (flags & SHIM_SETFL), 0,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	return r;
}

static int pf_ioctl(struct pfile *f, int fd, unsigned long req, void *arg)
{
	struct stat st;
	int r;
	switch (req) {
	case FIOCLEX:
	case FIONCLEX: /* the number's own flag: the placeholder holds it */
		return NEXT(fcntl)(fd, F_SETFD, req == FIOCLEX ? FD_CLOEXEC : 0) < 0 ? -errno : 0;
	case FIONBIO:
		return shim_setfl(f, *(int *)arg ? shim_flags(f) | O_NONBLOCK : shim_flags(f) & ~O_NONBLOCK);
	case FIONREAD:
		if (f->isdir)
			return -ENOTTY;
		if ((r = poise_fstat(shim_pool, f->pfd, &st)) < 0)
			return r;
		pthread_mutex_lock(&f->lock);
		*(int *)arg = st.st_size > f->off ? (int)(st.st_size - f->off > INT32_MAX ? INT32_MAX : st.st_size - f->off) : 0;
		pthread_mutex_unlock(&f->lock);
		return 0;
	case FIGETBSZ:
		if ((r = poise_fstat(shim_pool, f->pfd, &st)) < 0)
			return r;
		*(int *)arg = (int)st.st_blksize;
		return 0;
	case FS_IOC_GETFLAGS: /* none of chattr's attributes is kept: a file has none */
		*(int *)arg = 0;
		return 0;
	case FS_IOC_SETFLAGS:
		return *(int *)arg ? -EOPNOTSUPP : 0;
	case FS_IOC_FIEMAP:
	case FIDEDUPERANGE:
		return -EOPNOTSUPP;
	case FICLONE:
		return shim_get_peek((int)(intptr_t)arg) ? -EOPNOTSUPP : -EXDEV;
	case FICLONERANGE:
		return shim_get_peek((int)((struct file_clone_range *)arg)->src_fd) ? -EOPNOTSUPP : -EXDEV;
	case FIBMAP:
		return -EINVAL;
	default: /* FS_IOC_GETVERSION, FS_IOC_FSGETXATTR, terminal and block requests... */
		return -ENOTTY;
	}
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	struct pfile *f = shim_get(fd);
	if (!f) {
		if (req == FIONREAD)
			mnt_unown(fd); /* a regular file's is the size less the description's offset */
		return NEXT(ioctl)(fd, req, arg);
	}
	int r = pf_ioctl(f, fd, req, arg);
	shim_put(f);
	return (int)shim_ret(r);
}

int isatty(int fd)
{
	if (!shim_get_peek(fd))
		return NEXT(isatty)(fd);
	errno = ENOTTY;
	return 0;
}

int tcgetattr(int fd, struct termios *t)
{
	if (!shim_get_peek(fd))
		return NEXT(tcgetattr)(fd, t);
	errno = ENOTTY;
	return -1;
}

int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
	if (!shim_get_peek(fd))
		return NEXT(epoll_ctl)(ep, op, fd, ev);
	errno = EPERM; /* a regular file cannot be polled */
	return -1;
}

int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (!shim_get_peek(fd)) {
		mnt_unown_all(); /* (handoff.c) */
		return NEXT(fexecve)(fd, argv, envp);
	}
	errno = EACCES;
	return -1;
}

/* ---- locks ---- */

int flock(int fd, int op)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(flock)(fd, op);
	int r = lk_flock(f, op);
	shim_put(f);
	return (int)shim_ret(r);
}

int lockf(int fd, int cmd, off_t len)
{
	struct pfile *f = shim_get(fd);
	if (!f) {
		mnt_unown(fd); /* a range from the description's offset */
		return NEXT(lockf)(fd, cmd, len);
	}
	int r = lk_lockf(f, cmd, len);
	shim_put(f);
	return (int)shim_ret(r);
}

int lockf64(int fd, int cmd, off64_t len) __attribute__((alias("lockf")));

/* ---- closing many ---- */

static void forget_from(unsigned first, unsigned last)
{
	for (unsigned fd = first; fd <= last && fd < SHIM_MAXFD; fd++) {
		if (shim_get_peek((int)fd))
			shim_forget((int)fd);
		mnt_forget((int)fd);
	}
}

/* A vfork child (CPython's subprocess) or CLOSE_RANGE_UNSHARE closes numbers
 * of a table that is not the shim's (the parent's, or this thread's own new
 * one): the kernel alone. */
int close_range(unsigned first, unsigned last, int flags)
{
	if (first > last || (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC))) {
		errno = EINVAL;
		return -1;
	}
	if (!(flags & (CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) && !shim_shared_child()) {
		mnt_guard((int)(first > INT_MAX ? INT_MAX : first), (int)(last > INT_MAX ? INT_MAX : last));
		forget_from(first, last);
	}
	return NEXT(close_range)(first, last, flags);
}

void closefrom(int low)
{
	if (!shim_shared_child()) {
		mnt_guard(low < 0 ? 0 : low, INT_MAX);
		forget_from(low < 0 ? 0 : (unsigned)low, ~0U);
	}
	NEXT(closefrom)(low);
}

/* ---- copies between descriptors ---- */

#define CHUNK (128 << 10)

/* Up to n bytes from in to out through a buffer, at *ioff / *ooff when
 * given (the descriptors' offsets untouched), else at the descriptors' own
 * offsets (advanced by what was written).  Never reads more than it writes
 * from a seekable in.  The count moved, or -1 with errno when nothing was. */
static ssize_t move(int in, off64_t *ioff, int out, off64_t *ooff, size_t n)
{
	char *buf = malloc(n < CHUNK ? (n ? n : 1) : CHUNK);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	off64_t ipos = ioff ? *ioff : lseek(in, 0, SEEK_CUR); /* -1: a pipe, read as it comes */
	size_t done = 0;
	int err = 0;
	while (done < n) {
		size_t want = n - done < CHUNK ? n - done : CHUNK;
		ssize_t k = ipos >= 0 ? pread(in, buf, want, ipos) : read(in, buf, want);
		if (k <= 0) {
			err = k < 0 ? errno : 0;
			break;
		}
		ssize_t w = ooff ? pwrite(out, buf, (size_t)k, *ooff) : write(out, buf, (size_t)k);
		if (w < 0) {
			err = errno;
			break;
		}
		done += (size_t)w;
		if (ipos >= 0)
			ipos += w;
		if (ooff)
			*ooff += w;
		if (w < k)
			break;
	}
	free(buf);
	if (ioff)
		*ioff = ipos;
	else if (ipos >= 0)
		lseek(in, ipos, SEEK_SET);
	if (!done && err) {
		errno = err;
		return -1;
	}
	return (ssize_t)done;
}

ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	if (!shim_get_peek(in) && !shim_get_peek(out)) {
		if (!off)
			mnt_unown(in); /* the kernel's call, at the descriptions' offsets */
		mnt_unown(out);
		return NEXT(sendfile)(out, in, off, n);
	}
	if (off && *off < 0) {
		errno = EINVAL;
		return -1;
	}
	return move(in, (off64_t *)off, out, NULL, n > 0x7ffff000 ? 0x7ffff000 : n);
}

ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	return sendfile(out, in, (off_t *)off, n);
}

ssize_t copy_file_range(int in, off64_t *oin, int out, off64_t *oout, size_t n, unsigned flags)
{
	int pi = shim_get_peek(in), po = shim_get_peek(out);
	if (!pi && !po) {
		if (!oin)
			mnt_unown(in); /* the kernel's call, at the descriptions' offsets */
		if (!oout)
			mnt_unown(out);
		return NEXT(copy_file_range)(in, oin, out, oout, n, flags);
	}
	if (pi != po) {
		errno = EXDEV; /* between the pool and the kernel: callers fall back to read and write */
		return -1;
	}
	if (flags || (oin && *oin < 0) || (oout && *oout < 0)) {
		errno = EINVAL;
		return -1;
	}
	struct pfile *fi = shim_get(in), *fo = shim_get(out);
	int r = 0;
	if (!fi || !fo)
		r = -EBADF;
	else if ((shim_flags(fi) & O_ACCMODE) == O_WRONLY || (shim_flags(fo) & O_ACCMODE) == O_RDONLY ||
		 (shim_flags(fo) & O_APPEND))
		r = -EBADF; /* as the kernel: readable in, writable out, no O_APPEND */
	else if (fi->isdir || fo->isdir)
		r = -EISDIR;
	else if (fi->ino == fo->ino) { /* one file: the ranges may not overlap */
		pthread_mutex_lock(&fi->lock);
		off64_t a = oin ? *oin : fi->off;
		pthread_mutex_unlock(&fi->lock);
		pthread_mutex_lock(&fo->lock);
		off64_t b = oout ? *oout : fo->off;
		pthread_mutex_unlock(&fo->lock);
		if ((a <= b && (uint64_t)(b - a) < n) || (b < a && (uint64_t)(a - b) < n))
			r = -EINVAL;
	}
	if (fi)
		shim_put(fi);
	if (fo)
		shim_put(fo);
	return r < 0 ? shim_ret(r) : move(in, oin, out, oout, n);
}

static int is_pipe(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* A pipe to a poise file, losing nothing when the pool refuses the write:
 * the bytes are copied out with tee() first and taken from the pipe only
 * once written. */
static ssize_t pipe_to_pool(int in, int out, off64_t *ooff, size_t n, unsigned flags)
{
	int sp[2];
	if (pipe2(sp, O_CLOEXEC) < 0)
		return -1;
	char *buf = malloc(1 << 16);
	ssize_t r = buf ? NEXT(tee)(in, sp[1], n < (1 << 16) ? n : (1 << 16), flags & SPLICE_F_NONBLOCK) : -1;
	if (!buf)
		errno = ENOMEM;
	if (r > 0 && NEXT(read)(sp[0], buf, (size_t)r) == r) {
		r = ooff ? pwrite(out, buf, (size_t)r, *ooff) : write(out, buf, (size_t)r);
		if (r > 0 && ooff)
			*ooff += r;
		if (r > 0) /* take what was written off the pipe (the count stands: it is in the file) */
			(void)!NEXT(read)(in, buf, (size_t)r);
	} else if (r > 0) {
		r = -1;
	}
	int e = errno;
	free(buf);
	NEXT(close)(sp[0]);
	NEXT(close)(sp[1]);
	errno = e;
	return r;
}

ssize_t splice(int in, off64_t *ioff, int out, off64_t *ooff, size_t n, unsigned flags)
{
	int pi = shim_get_peek(in), po = shim_get_peek(out);
	if (!pi && !po) {
		if (!ioff)
			mnt_unown(in); /* the kernel's call, at the descriptions' offsets */
		if (!ooff)
			mnt_unown(out);
		return NEXT(splice)(in, ioff, out, ooff, n, flags);
	}
	if ((pi && !is_pipe(out)) || (po && !is_pipe(in))) {
		errno = EINVAL; /* one end must be a pipe */
		return -1;
	}
	if ((pi && ooff) || (po && ioff)) {
		errno = ESPIPE;
		return -1;
	}
	if ((ioff && *ioff < 0) || (ooff && *ooff < 0)) {
		errno = EINVAL;
		return -1;
	}
	if (po)
		return pipe_to_pool(in, out, ooff, n, flags);
	/* pool to pipe: at most what the pipe holds; without blocking when
	 * asked, at most the room it has now */
	size_t cap = 1 << 16;
	if (flags & SPLICE_F_NONBLOCK) {
		int size = NEXT(fcntl)(out, F_GETPIPE_SZ), queued = 0;
		if (size > 0 && NEXT(ioctl)(out, FIONREAD, &queued) == 0)
			cap = size > queued ? (size_t)(size - queued) : 0;
		if (!cap) {
			errno = EAGAIN;
			return -1;
		}
	}
	return move(in, ioff, out, NULL, n < cap ? n : cap);
}

ssize_t tee(int in, int out, size_t n, unsigned flags)
{
	if (!shim_get_peek(in) && !shim_get_peek(out))
		return NEXT(tee)(in, out, n, flags);
	errno = EINVAL; /* both ends must be pipes */
	return -1;
}

ssize_t vmsplice(int fd, const struct iovec *iov, size_t cnt, unsigned flags)
{
	if (!shim_get_peek(fd))
		return NEXT(vmsplice)(fd, iov, cnt, flags);
	errno = EBADF; /* not a pipe */
	return -1;
}

/* ---- extended attributes ---- */

/* The inode an xattr call names: fd's (*f then holds a reference for the
 * length of the call), or path's (following links unless nofollow).  1
 * with *ino (or *r < 0), 0 when it is the kernel's. */
static int xattr_target(int fd, const char *path, int nofollow, uint64_t *ino, int *r, struct pfile **f)
{
	*f = NULL;
	if (!path) {
		if (!(*f = shim_get(fd)))
			return 0;
		*ino = (*f)->ino;
		*r = 0;
		return 1;
	}
	uint64_t at;
	const char *in;
	if (!shim_at(AT_FDCWD, path, &at, &in))
		return 0;
	struct stat st;
	*r = poise_fstatat(shim_pool, at, in, &st, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
	*ino = st.st_ino;
	return 1;
}

#define XATTR_CALL(decl, fd, path, nofollow, next, call)                                                     \
	decl                                                                                                  \
	{                                                                                                     \
		uint64_t ino;                                                                                 \
		int r;                                                                                        \
		struct pfile *f;                                                                              \
		if (!xattr_target(fd, path, nofollow, &ino, &r, &f))                                          \
			return next;                                                                          \
		long k = r < 0 ? r : (call);                                                                  \
		if (f)                                                                                        \
			shim_put(f);                                                                          \
		return shim_ret(k);                                                                           \
	}

XATTR_CALL(ssize_t fgetxattr(int fd, const char *name, void *v, size_t size), fd, NULL, 1,
	   NEXT(fgetxattr)(fd, name, v, size), poise_getxattrat(shim_pool, ino, "", name, v, size))
XATTR_CALL(ssize_t getxattr(const char *path, const char *name, void *v, size_t size), -1, path, 0,
	   NEXT(getxattr)(path, name, v, size), poise_getxattrat(shim_pool, ino, "", name, v, size))
XATTR_CALL(ssize_t lgetxattr(const char *path, const char *name, void *v, size_t size), -1, path, 1,
	   NEXT(lgetxattr)(path, name, v, size), poise_getxattrat(shim_pool, ino, "", name, v, size))
XATTR_CALL(ssize_t flistxattr(int fd, char *list, size_t size), fd, NULL, 1, NEXT(flistxattr)(fd, list, size),
	   poise_listxattrat(shim_pool, ino, "", list, size))
XATTR_CALL(ssize_t listxattr(const char *path, char *list, size_t size), -1, path, 0,
	   NEXT(listxattr)(path, list, size), poise_listxattrat(shim_pool, ino, "", list, size))
XATTR_CALL(ssize_t llistxattr(const char *path, char *list, size_t size), -1, path, 1,
	   NEXT(llistxattr)(path, list, size), poise_listxattrat(shim_pool, ino, "", list, size))
XATTR_CALL(int fsetxattr(int fd, const char *name, const void *v, size_t size, int flags), fd, NULL, 1,
	   NEXT(fsetxattr)(fd, name, v, size, flags), poise_setxattrat(shim_pool, ino, "", name, v, size, flags))
XATTR_CALL(int setxattr(const char *path, const char *name, const void *v, size_t size, int flags), -1, path, 0,
	   NEXT(setxattr)(path, name, v, size, flags), poise_setxattrat(shim_pool, ino, "", name, v, size, flags))
XATTR_CALL(int lsetxattr(const char *path, const char *name, const void *v, size_t size, int flags), -1, path, 1,
	   NEXT(lsetxattr)(path, name, v, size, flags), poise_setxattrat(shim_pool, ino, "", name, v, size, flags))
XATTR_CALL(int fremovexattr(int fd, const char *name), fd, NULL, 1, NEXT(fremovexattr)(fd, name),
	   poise_removexattrat(shim_pool, ino, "", name))
XATTR_CALL(int removexattr(const char *path, const char *name), -1, path, 0, NEXT(removexattr)(path, name),
	   poise_removexattrat(shim_pool, ino, "", name))
XATTR_CALL(int lremovexattr(const char *path, const char *name), -1, path, 1, NEXT(lremovexattr)(path, name),
	   poise_removexattrat(shim_pool, ino, "", name))

/* ---- times from timevals ---- */

static const struct timespec *tv_ts(const struct timeval tv[2], struct timespec ts[2])
{
	if (!tv)
		return NULL;
	for (int i = 0; i < 2; i++) {
		ts[i].tv_sec = tv[i].tv_sec;
		ts[i].tv_nsec = tv[i].tv_usec * 1000;
	}
	return ts;
}

static int tv_bad(const struct timeval tv[2])
{
	return tv && (tv[0].tv_usec < 0 || tv[0].tv_usec >= 1000000 || tv[1].tv_usec < 0 || tv[1].tv_usec >= 1000000);
}

int futimes(int fd, const struct timeval tv[2])
{
	if (!shim_get_peek(fd))
		return NEXT(futimes)(fd, tv);
	struct timespec ts[2];
	return tv_bad(tv) ? (errno = EINVAL, -1) : futimens(fd, tv_ts(tv, ts));
}

int futimesat(int dirfd, const char *path, const struct timeval tv[2])
{
	uint64_t at;
	const char *in;
	if (!path) /* as glibc: dirfd's own times */
		return futimes(dirfd, tv);
	if (!shim_at(dirfd, path, &at, &in))
		return NEXT(futimesat)(dirfd, path, tv);
	struct timespec ts[2];
	return tv_bad(tv) ? (errno = EINVAL, -1) : utimensat(dirfd, path, tv_ts(tv, ts), 0);
}

int utimes(const char *path, const struct timeval tv[2])
{
	return futimesat(AT_FDCWD, path, tv);
}

int lutimes(const char *path, const struct timeval tv[2])
{
	uint64_t at;
	const char *in;
	if (!shim_at(AT_FDCWD, path, &at, &in))
		return NEXT(lutimes)(path, tv);
	struct timespec ts[2];
	return tv_bad(tv) ? (errno = EINVAL, -1) : utimensat(AT_FDCWD, path, tv_ts(tv, ts), AT_SYMLINK_NOFOLLOW);
}

int utime(const char *path, const struct utimbuf *t)
{
	uint64_t at;
	const char *in;
	if (!shim_at(AT_FDCWD, path, &at, &in))
		return NEXT(utime)(path, t);
	struct timespec ts[2] = {{t ? t->actime : 0, 0}, {t ? t->modtime : 0, 0}};
	return utimensat(AT_FDCWD, path, t ? ts : NULL, 0);
}

/* ---- directory entries ---- */

/* The entries from the description's position on, packed as the kernel
 * packs them (struct linux_dirent64), "." and ".." first.  One snapshot of
 * the directory serves from position 0 until the next rewind (lseek to 0),
 * so entries unlinked between calls move nothing (a program that deletes
 * as it reads sees every entry once); d_off is the index the next call
 * resumes at. */
ssize_t getdents64(int fd, void *buf, size_t len)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(getdents64)(fd, buf, len);
	ssize_t r = f->isdir ? 0 : -ENOTDIR;
	pthread_mutex_lock(&f->lock);
	if (r == 0 && (f->off == 0 || !f->dents)) {
		poise_closedir(&f->dents);
		r = poise_opendirat(shim_pool, f->ino, "", &f->dents);
	}
	if (r == 0) {
		size_t used = 0;
		struct poise_entry e;
		while (shim_dir_entry(fd, f->dents, (long)f->off, &e)) {
			size_t nl = strlen(e.name), rl = (offsetof(struct dirent64, d_name) + nl + 1 + 7) & ~(size_t)7;
			if (used + rl > len) {
				if (!used)
					r = -EINVAL; /* the buffer holds not even one entry */
				break;
			}
			struct dirent64 *de = (struct dirent64 *)((char *)buf + used);
			de->d_ino = e.ino;
			de->d_off = ++f->off;
			de->d_reclen = (unsigned short)rl;
			de->d_type = e.type;
			memcpy(de->d_name, e.name, nl + 1);
			used += rl;
		}
		if (r == 0)
			r = (ssize_t)used;
	}
	pthread_mutex_unlock(&f->lock);
	shim_put(f);
	return shim_ret(r);
}

/* ---- POSIX AIO: done at once, in the caller ---- */

static void *notify_thread(void *arg)
{
	struct sigevent *ev = arg;
	ev->sigev_notify_function(ev->sigev_value);
	free(ev);
	return NULL;
}

/* Deliver a completion notice as sigev asks. */
static void aio_notify(const struct sigevent *ev)
{
	if (!ev)
		return;
	if (ev->sigev_notify == SIGEV_SIGNAL) {
		sigqueue(getpid(), ev->sigev_signo, ev->sigev_value);
	} else if (ev->sigev_notify == SIGEV_THREAD) {
		struct sigevent *copy = malloc(sizeof(*copy));
		pthread_t t;
		if (copy) {
			*copy = *ev;
			if (pthread_create(&t, ev->sigev_notify_attributes, notify_thread, copy) == 0)
				pthread_detach(t);
			else
				free(copy);
		}
	}
}

/* One request on a poise descriptor, its result where aio_error and
 * aio_return read it. */
static void aio_do(struct aiocb *cb, int op)
{
	ssize_t r;
	if (op == LIO_READ)
		r = pread(cb->aio_fildes, (void *)cb->aio_buf, cb->aio_nbytes, cb->aio_offset);
	else if (op == LIO_WRITE)
		r = pwrite(cb->aio_fildes, (const void *)cb->aio_buf, cb->aio_nbytes, cb->aio_offset);
	else if (op == O_DSYNC)
		r = fdatasync(cb->aio_fildes);
	else if (op == O_SYNC)
		r = fsync(cb->aio_fildes);
	else
		r = 0; /* LIO_NOP */
	cb->__error_code = r < 0 ? errno : 0;
	cb->__return_value = r;
}

int aio_read(struct aiocb *cb)
{
	if (!shim_get_peek(cb->aio_fildes))
		return NEXT(aio_read)(cb);
	aio_do(cb, LIO_READ);
	aio_notify(&cb->aio_sigevent);
	return 0;
}

int aio_write(struct aiocb *cb)
{
	if (!shim_get_peek(cb->aio_fildes))
		return NEXT(aio_write)(cb);
	aio_do(cb, LIO_WRITE);
	aio_notify(&cb->aio_sigevent);
	return 0;
}

int aio_fsync(int op, struct aiocb *cb)
{
	if (!shim_get_peek(cb->aio_fildes))
		return NEXT(aio_fsync)(op, cb);
	if (op != O_DSYNC && op != O_SYNC) {
		errno = EINVAL;
		return -1;
	}
	aio_do(cb, op);
	aio_notify(&cb->aio_sigevent);
	return 0;
}

int lio_listio(int mode, struct aiocb *const list[], int n, struct sigevent *sig)
{
	int ours = 0, others = 0;
	for (int i = 0; i < n; i++)
		if (list[i])
			shim_get_peek(list[i]->aio_fildes) ? ours++ : others++;
	if (!ours)
		return NEXT(lio_listio)(mode, list, n, sig);
	if ((mode != LIO_WAIT && mode != LIO_NOWAIT) || n < 0) {
		errno = EINVAL;
		return -1;
	}
	struct aiocb **rest = others ? calloc((size_t)n, sizeof(*rest)) : NULL;
	if (others && !rest) {
		errno = EAGAIN;
		return -1;
	}
	int failed = 0;
	for (int i = 0; i < n; i++) {
		if (!list[i])
			continue;
		if (!shim_get_peek(list[i]->aio_fildes)) {
			rest[i] = list[i];
			continue;
		}
		aio_do(list[i], list[i]->aio_lio_opcode);
		failed |= list[i]->__error_code != 0;
	}
	int r = 0;
	if (others) /* the kernel's share notifies once it and ours (done) are complete */
		r = NEXT(lio_listio)(mode, rest, n, sig);
	else if (mode == LIO_NOWAIT)
		aio_notify(sig);
	free(rest);
	if (r == 0 && failed && mode == LIO_WAIT) {
		errno = EIO;
		return -1;
	}
	return r;
}

int aio_read64(struct aiocb64 *cb)
{
	return aio_read((struct aiocb *)cb);
}

int aio_write64(struct aiocb64 *cb)
{
	return aio_write((struct aiocb *)cb);
}

int aio_fsync64(int op, struct aiocb64 *cb)
{
	return aio_fsync(op, (struct aiocb *)cb);
}

int lio_listio64(int mode, struct aiocb64 *const list[], int n, struct sigevent *sig)
{
	return lio_listio(mode, (struct aiocb *const *)list, n, sig);
}

/* ---- fault handlers: the library's stays first ---- */

/* A program's SIGBUS and SIGSEGV handlers become the ones the library's
 * media-error handler passes other faults to (poise_sigaction): Redis, a
 * JVM or a crash reporter installing its own must not turn a poisoned
 * sector into a crash. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	return poise_sigaction(sig, act, old);
}

__sighandler_t signal(int sig, __sighandler_t h)
{
	if (sig != SIGSEGV && sig != SIGBUS)
		return NEXT(signal)(sig, h);
	struct sigaction sa = {.sa_handler = h, .sa_flags = SA_RESTART}, old;
	sigemptyset(&sa.sa_mask);
	if (poise_sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}
