/*
 * calls.c - the interposed system-call wrappers of the preload shim: open,
 * close, data, attributes, names, descriptors (dup, fcntl) and mmap.  Each
 * checks whether its descriptor or path is a poise one (shim.h) and either
 * calls the library or the next definition in the link order (the real
 * libc function).  Errors follow libc's convention: -1 and errno.  The
 * rest of the calls that take a descriptor are in fdcalls.c; docs/SHIM.md
 * lists every call and what it answers.
 *
 * Not served, and what a program sees (also in docs/SHIM.md): chdir into
 * the pool keeps the kernel's working directory (relative paths resolve in
 * the shim; a child after exec starts where the kernel's is); O_TMPFILE
 * (EOPNOTSUPP); access() checks existence only (the library does not
 * enforce modes); a shared mmap needs its range to be one extent of the
 * file and no fixed address (else ENODEV), and the poison of a mapped page
 * raises SIGBUS as on real DAX; a private mmap is a copy taken at the call.
 */
#include "preload/shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>


/* ---- open and close ---- */

/* The process's umask, applied to new files and directories as the kernel
 * would (read by setting it twice, under a lock). */
static mode_t cur_umask(void)
{
	static pthread_mutex_t l = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&l);
	mode_t m = umask(022);
	umask(m);
	pthread_mutex_unlock(&l);
	return m;
}

static int open_ours(uint64_t at, const char *inner, int flags, mode_t mode)
{
	if ((flags & O_TMPFILE) == O_TMPFILE) {
		errno = EOPNOTSUPP;
		return -1;
	}
	int lf = flags & (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_DIRECT | O_NOFOLLOW | O_DIRECTORY);
	if (flags & O_PATH)
		lf = (lf & ~O_ACCMODE) | O_RDONLY;
	int pfd = poise_openat(shim_pool, at, inner, lf, mode & ~cur_umask());
	if (pfd < 0)
		return (int)shim_ret(pfd);
	struct stat st;
	struct pfile *f = calloc(1, sizeof(*f));
	if (!f || poise_fstat(shim_pool, pfd, &st) < 0) {
		free(f);
		poise_close(shim_pool, pfd);
		errno = ENOMEM;
		return -1;
	}
	f->pfd = pfd;
	f->ino = st.st_ino;
	f->isdir = S_ISDIR(st.st_mode);
	f->flags = flags;
	if (f->isdir)
		f->path = shim_dir_path(at, inner);
	pthread_mutex_init(&f->lock, NULL);
	int fd = shim_install(f, flags & O_CLOEXEC);
	if (fd < 0) {
		poise_close(shim_pool, pfd);
		free(f);
	}
	return fd;
}

/* A kernel open's result: registered when it is a file of a poise mount
 * (mount.c). */
static int kopened(int fd, int flags)
{
	if (fd >= 0)
		mnt_opened(fd, flags);
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	const char *in;
	uint64_t at;
	if (shim_at(AT_FDCWD, path, &at, &in))
		return open_ours(at, in, flags, mode);
	return kopened(NEXT(open)(path, flags, mode), flags);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	uint64_t at;
	const char *in;
	if (shim_at(dirfd, path, &at, &in))
		return open_ours(at, in, flags, mode);
	return kopened(NEXT(openat)(dirfd, path, flags, mode), flags);
}

int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int __open_2(const char *path, int flags)
{
	return open(path, flags);
}

int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

int __openat_2(int dirfd, const char *path, int flags)
{
	return openat(dirfd, path, flags);
}

int __openat64_2(int dirfd, const char *path, int flags) __attribute__((alias("__openat_2")));

/* The fortified calls (_FORTIFY_SOURCE, as distributions build programs:
 * a read whose buffer size the compiler knows but whose length it does not
 * becomes __read_chk).  The length is checked against the buffer as the C
 * library's own would, then the call is the shim's.  Without these, a
 * fortified program's read of a poise descriptor would reach the
 * placeholder and see end of file. */
extern void __chk_fail(void) __attribute__((noreturn));

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return read(fd, buf, n);
}

ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return pread(fd, buf, n, off);
}

ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buflen) __attribute__((alias("__pread_chk")));

ssize_t __readlink_chk(const char *path, char *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	return readlink(path, buf, len);
}

ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	return readlinkat(dirfd, path, buf, len);
}

char *__getcwd_chk(char *buf, size_t size, size_t buflen)
{
	if (size > buflen)
		__chk_fail();
	return getcwd(buf, size);
}

int creat(const char *path, mode_t mode)
{
	return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode) __attribute__((alias("creat")));

int close(int fd)
{
	if (shim_get_peek(fd) && !shim_shared_child())
		shim_forget(fd);
	if (!shim_shared_child()) {
		mnt_guard(fd, fd);
		mnt_forget(fd);
	}
	return NEXT(close)(fd);
}

/* ---- data ---- */

ssize_t read(int fd, void *buf, size_t n)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_read(fd, buf, n);
	ssize_t r;
	if (f->isdir) {
		r = -EISDIR;
	} else {
		pthread_mutex_lock(&f->lock);
		r = poise_pread(shim_pool, f->pfd, buf, n, f->off);
		if (r > 0)
			f->off += r;
		pthread_mutex_unlock(&f->lock);
	}
	shim_put(f);
	return shim_ret(r);
}

/* A write at the description's offset, or at the end for O_APPEND (the
 * library appends atomically; the offset then follows the end). */
static ssize_t write_at_offset(struct pfile *f, const struct iovec *iov, int cnt)
{
	pthread_mutex_lock(&f->lock);
	ssize_t r = poise_pwritev(shim_pool, f->pfd, iov, cnt, f->off);
	if (r > 0) {
		if (shim_flags(f) & O_APPEND) {
			struct stat st;
			if (poise_fstat(shim_pool, f->pfd, &st) == 0)
				f->off = st.st_size;
		} else {
			f->off += r;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_write(fd, buf, n);
	struct iovec v = {(void *)buf, n};
	ssize_t r = f->isdir ? -EISDIR : write_at_offset(f, &v, 1);
	shim_put(f);
	return shim_ret(r);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_pread(fd, buf, n, off);
	ssize_t r = f->isdir ? -EISDIR : poise_pread(shim_pool, f->pfd, buf, n, off);
	shim_put(f);
	return shim_ret(r);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_pwrite(fd, buf, n, off);
	ssize_t r = f->isdir ? -EISDIR : poise_pwrite(shim_pool, f->pfd, buf, n, off);
	shim_put(f);
	return shim_ret(r);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_readv(fd, iov, cnt);
	pthread_mutex_lock(&f->lock);
	ssize_t r = poise_preadv(shim_pool, f->pfd, iov, cnt, f->off);
	if (r > 0)
		f->off += r;
	pthread_mutex_unlock(&f->lock);
	shim_put(f);
	return shim_ret(r);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_writev(fd, iov, cnt);
	ssize_t r = write_at_offset(f, iov, cnt);
	shim_put(f);
	return shim_ret(r);
}

ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_preadv(fd, iov, cnt, off);
	ssize_t r = poise_preadv(shim_pool, f->pfd, iov, cnt, off);
	shim_put(f);
	return shim_ret(r);
}

ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off) __attribute__((alias("preadv")));

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_pwritev(fd, iov, cnt, off);
	ssize_t r = poise_pwritev(shim_pool, f->pfd, iov, cnt, off);
	shim_put(f);
	return shim_ret(r);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) __attribute__((alias("pwritev")));

/* the v2 calls: offset -1 means the description's offset; flags (RWF_*)
 * change nothing here (every write is durable when it returns) */
ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	if (off == -1 && shim_get_peek(fd))
		return readv(fd, iov, cnt);
	struct pfile *f = shim_get(fd);
	if (!f && off == -1 && (flags & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC)))
		mnt_unown(fd); /* the kernel's call, at the description's offset */
	if (!f) /* a mount's file: flags that ask nothing of the data path are served as preadv */
		return !mnt_has(fd) || (flags & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC)) ? NEXT(preadv2)(fd, iov, cnt, off, flags)
		       : off == -1 ? mnt_readv(fd, iov, cnt) : mnt_preadv(fd, iov, cnt, off);
	shim_put(f);
	return preadv(fd, iov, cnt, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	if (off == -1 && shim_get_peek(fd))
		return writev(fd, iov, cnt);
	struct pfile *f = shim_get(fd);
	if (!f && (flags & RWF_APPEND))
		mnt_append_sync(fd);
	if (!f && off == -1 && (flags & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC)))
		mnt_unown(fd); /* the kernel's call, at the description's offset */
	if (!f) /* direct writes are durable when they return: DSYNC and SYNC hold */
		return !mnt_has(fd) || (flags & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC)) ? NEXT(pwritev2)(fd, iov, cnt, off, flags)
		       : off == -1 ? mnt_writev(fd, iov, cnt) : mnt_pwritev(fd, iov, cnt, off);
	shim_put(f);
	return pwritev(fd, iov, cnt, off);
}

ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) __attribute__((alias("preadv2")));
ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) __attribute__((alias("pwritev2")));

off_t lseek(int fd, off_t off, int whence)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return mnt_lseek(fd, off, whence);
	off_t r;
	pthread_mutex_lock(&f->lock);
	if (whence == SEEK_CUR)
		r = f->off + off < 0 ? -EINVAL : f->off + off;
	else
		r = poise_lseek(shim_pool, f->pfd, off, whence);
	if (r >= 0)
		f->off = r;
	pthread_mutex_unlock(&f->lock);
	shim_put(f);
	return shim_ret(r);
}

off_t lseek64(int fd, off_t off, int whence) __attribute__((alias("lseek")));

int fsync(int fd)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(fsync)(fd);
	int r = poise_fsync(shim_pool, f->pfd);
	shim_put(f);
	return (int)shim_ret(r);
}

int fdatasync(int fd)
{
	return shim_get_peek(fd) ? fsync(fd) : NEXT(fdatasync)(fd);
}

int ftruncate(int fd, off_t len)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(ftruncate)(fd, len);
	int r = poise_ftruncate(shim_pool, f->pfd, len);
	shim_put(f);
	return (int)shim_ret(r);
}

int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

int fallocate(int fd, int mode, off_t off, off_t len)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(fallocate)(fd, mode, off, len);
	int r = poise_fallocate(shim_pool, f->pfd, mode, off, len);
	shim_put(f);
	return (int)shim_ret(r);
}

int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

int posix_fallocate(int fd, off_t off, off_t len)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(posix_fallocate)(fd, off, len);
	int r = poise_fallocate(shim_pool, f->pfd, 0, off, len);
	shim_put(f);
	return -r; /* an error number, as posix_fallocate returns */
}

int posix_fallocate64(int fd, off_t off, off_t len) __attribute__((alias("posix_fallocate")));

/* ---- attributes ---- */

int fstat(int fd, struct stat *st)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(fstat)(fd, st);
	int r = poise_fstat(shim_pool, f->pfd, st);
	shim_put(f);
	return (int)shim_ret(r);
}

int fstat64(int fd, struct stat64 *st)
{
	return fstat(fd, (struct stat *)st); /* the same layout on 64-bit */
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	uint64_t at;
	const char *in;
	if ((flags & AT_EMPTY_PATH) && !*path && shim_get_peek(dirfd))
		return fstat(dirfd, st);
	if (shim_at(dirfd, path, &at, &in))
		return (int)shim_ret(poise_fstatat(shim_pool, at, in, st, flags & AT_SYMLINK_NOFOLLOW));
	return NEXT(fstatat)(dirfd, path, st, flags);
}

int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return fstatat(dirfd, path, (struct stat *)st, flags);
}

int stat(const char *path, struct stat *st)
{
	return fstatat(AT_FDCWD, path, st, 0);
}

int stat64(const char *path, struct stat64 *st)
{
	return fstatat(AT_FDCWD, path, (struct stat *)st, 0);
}

int lstat(const char *path, struct stat *st)
{
	return fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

int lstat64(const char *path, struct stat64 *st)
{
	return fstatat(AT_FDCWD, path, (struct stat *)st, AT_SYMLINK_NOFOLLOW);
}

int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *sx)
{
	uint64_t at;
	const char *in;
	struct stat st;
	int r;
	if ((flags & AT_EMPTY_PATH) && !*path && shim_get_peek(dirfd))
		r = fstat(dirfd, &st);
	else if (shim_at(dirfd, path, &at, &in))
		r = (int)shim_ret(poise_fstatat(shim_pool, at, in, &st, flags & AT_SYMLINK_NOFOLLOW));
	else
		return NEXT(statx)(dirfd, path, flags, mask, sx);
	if (r < 0)
		return r;
	memset(sx, 0, sizeof(*sx));
	sx->stx_mask = STATX_BASIC_STATS;
	sx->stx_blksize = (uint32_t)st.st_blksize;
	sx->stx_nlink = (uint32_t)st.st_nlink;
	sx->stx_uid = st.st_uid;
	sx->stx_gid = st.st_gid;
	sx->stx_mode = (uint16_t)st.st_mode;
	sx->stx_ino = st.st_ino;
	sx->stx_size = (uint64_t)st.st_size;
	sx->stx_blocks = (uint64_t)st.st_blocks;
	sx->stx_atime = (struct statx_timestamp){st.st_atim.tv_sec, (uint32_t)st.st_atim.tv_nsec, 0};
	sx->stx_mtime = (struct statx_timestamp){st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec, 0};
	sx->stx_ctime = (struct statx_timestamp){st.st_ctim.tv_sec, (uint32_t)st.st_ctim.tv_nsec, 0};
	sx->stx_dev_major = 0;
	sx->stx_dev_minor = (uint32_t)st.st_dev;
	return 0;
}

int faccessat(int dirfd, const char *path, int mode, int flags)
{
	uint64_t at;
	const char *in;
	struct stat st;
	if (shim_at(dirfd, path, &at, &in)) /* existence only: the library keeps modes, the kernel would check them */
		return (int)shim_ret(poise_fstatat(shim_pool, at, in, &st, flags & AT_SYMLINK_NOFOLLOW));
	return NEXT(faccessat)(dirfd, path, mode, flags);
}

int access(const char *path, int mode)
{
	return faccessat(AT_FDCWD, path, mode, 0);
}

int euidaccess(const char *path, int mode)
{
	const char *in;
	uint64_t at;
	return shim_at(AT_FDCWD, path, &at, &in) ? faccessat(AT_FDCWD, path, mode, 0) : NEXT(euidaccess)(path, mode);
}

int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	uint64_t at;
	const char *in;
	if (shim_at(dirfd, path, &at, &in))
		return (int)shim_ret(poise_fchmodat(shim_pool, at, in, mode, flags));
	return NEXT(fchmodat)(dirfd, path, mode, flags);
}

int chmod(const char *path, mode_t mode)
{
	return fchmodat(AT_FDCWD, path, mode, 0);
}

int fchmod(int fd, mode_t mode)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(fchmod)(fd, mode);
	int r = poise_fchmodat(shim_pool, f->ino, "", mode, 0);
	shim_put(f);
	return (int)shim_ret(r);
}

int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
	uint64_t at;
	const char *in;
	if ((flags & AT_EMPTY_PATH) && !*path && shim_get_peek(dirfd))
		return fchown(dirfd, uid, gid);
	if (shim_at(dirfd, path, &at, &in))
		return (int)shim_ret(poise_fchownat(shim_pool, at, in, uid, gid, flags & AT_SYMLINK_NOFOLLOW));
	return NEXT(fchownat)(dirfd, path, uid, gid, flags);
}

int chown(const char *path, uid_t uid, gid_t gid)
{
	return fchownat(AT_FDCWD, path, uid, gid, 0);
}

int lchown(const char *path, uid_t uid, gid_t gid)
{
	return fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}

int fchown(int fd, uid_t uid, gid_t gid)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(fchown)(fd, uid, gid);
	int r = poise_fchownat(shim_pool, f->ino, "", uid, gid, 0);
	shim_put(f);
	return (int)shim_ret(r);
}

int utimensat(int dirfd, const char *path, const struct timespec ts[2], int flags)
{
	uint64_t at;
	const char *in;
	if (shim_at(dirfd, path, &at, &in))
		return (int)shim_ret(poise_utimensat(shim_pool, at, in, ts, flags & AT_SYMLINK_NOFOLLOW));
	return NEXT(utimensat)(dirfd, path, ts, flags);
}

int futimens(int fd, const struct timespec ts[2])
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(futimens)(fd, ts);
	int r = poise_utimensat(shim_pool, f->ino, "", ts, 0);
	shim_put(f);
	return (int)shim_ret(r);
}

int truncate(const char *path, off_t len)
{
	const char *in;
	uint64_t at;
	if (shim_at(AT_FDCWD, path, &at, &in))
		return (int)shim_ret(poise_truncateat(shim_pool, at, in, len));
	return NEXT(truncate)(path, len);
}

int truncate64(const char *path, off_t len) __attribute__((alias("truncate")));

/* ---- names ---- */

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	uint64_t at;
	const char *in;
	if (shim_at(dirfd, path, &at, &in))
		return (int)shim_ret(poise_mkdirat(shim_pool, at, in, mode & ~cur_umask()));
	return NEXT(mkdirat)(dirfd, path, mode);
}

int mkdir(const char *path, mode_t mode)
{
	return mkdirat(AT_FDCWD, path, mode);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	uint64_t at;
	const char *in;
	if (shim_at(dirfd, path, &at, &in))
		return (int)shim_ret(poise_unlinkat(shim_pool, at, in, flags));
	return NEXT(unlinkat)(dirfd, path, flags);
}

int unlink(const char *path)
{
	return unlinkat(AT_FDCWD, path, 0);
}

int rmdir(const char *path)
{
	return unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
}

int renameat2(int ofd, const char *op, int nfd, const char *np, unsigned flags)
{
	uint64_t oa, na;
	const char *oi, *ni;
	int o = shim_at(ofd, op, &oa, &oi), n = shim_at(nfd, np, &na, &ni);
	if (o && n)
		return (int)shim_ret(poise_renameat2(shim_pool, oa, oi, na, ni, flags));
	if (o || n) {
		errno = EXDEV; /* between the pool and the kernel: mv copies */
		return -1;
	}
	return NEXT(renameat2)(ofd, op, nfd, np, flags);
}

int renameat(int ofd, const char *op, int nfd, const char *np)
{
	return renameat2(ofd, op, nfd, np, 0);
}

int rename(const char *op, const char *np)
{
	return renameat2(AT_FDCWD, op, AT_FDCWD, np, 0);
}

int linkat(int ofd, const char *op, int nfd, const char *np, int flags)
{
	uint64_t oa, na;
	const char *oi, *ni;
	int o = shim_at(ofd, op, &oa, &oi), n = shim_at(nfd, np, &na, &ni);
	if (o && n)
		return (int)shim_ret(poise_linkat(shim_pool, oa, oi, na, ni, flags));
	if (o || n) {
		errno = EXDEV;
		return -1;
	}
	return NEXT(linkat)(ofd, op, nfd, np, flags);
}

int link(const char *op, const char *np)
{
	return linkat(AT_FDCWD, op, AT_FDCWD, np, 0);
}

int symlinkat(const char *target, int dirfd, const char *path)
{
	uint64_t at;
	const char *in;
	if (shim_at(dirfd, path, &at, &in))
		return (int)shim_ret(poise_symlinkat(shim_pool, target, at, in));
	return NEXT(symlinkat)(target, dirfd, path);
}

int symlink(const char *target, const char *path)
{
	return symlinkat(target, AT_FDCWD, path);
}

ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t len)
{
	uint64_t at;
	const char *in;
	if (shim_at(dirfd, path, &at, &in))
		return shim_ret(poise_readlinkat(shim_pool, at, in, buf, len));
	return NEXT(readlinkat)(dirfd, path, buf, len);
}

ssize_t readlink(const char *path, char *buf, size_t len)
{
	return readlinkat(AT_FDCWD, path, buf, len);
}

/* ---- descriptors ---- */

/* A second number for poise file f: a dup of the reserved descriptor
 * (close-on-exec when cloexec is set, as dup and F_DUPFD leave it clear). */
static int dup_ours(int fd, struct pfile *f, int minfd, int cloexec)
{
	int nfd = NEXT(fcntl)(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, minfd);
	if (nfd >= SHIM_MAXFD) { /* past the table: as past RLIMIT_NOFILE */
		NEXT(close)(nfd);
		errno = minfd >= SHIM_MAXFD ? EINVAL : EMFILE;
		return -1;
	}
	if (nfd >= 0)
		shim_install_at(nfd, f);
	return nfd;
}

int dup(int fd)
{
	struct pfile *f = shim_get(fd);
	if (!f) {
		mnt_dup(fd);
		return NEXT(dup)(fd);
	}
	int r = dup_ours(fd, f, 0, 0);
	shim_put(f);
	return r;
}

int dup3(int old, int new, int flags)
{
	if (shim_shared_child()) /* a vfork child's dup2 onto its stdio: the table is the parent's */
		return NEXT(dup3)(old, new, flags);
	struct pfile *f = shim_get(old);
	if (f && (new < 0 || new >= SHIM_MAXFD)) {
		shim_put(f);
		errno = EBADF;
		return -1;
	}
	if (old != new) {
		mnt_guard(new, new);
		mnt_forget(new); /* before: an operation on the old file must not meet the new one */
		mnt_dup(old);
	}
	int r = NEXT(dup3)(old, new, flags);
	if (r >= 0) {
		if (f)
			shim_install_at(new, f);
		else
			shim_forget(new);
	}
	if (f)
		shim_put(f);
	return r;
}

int dup2(int old, int new)
{
	if (old == new) {
		if (shim_get_peek(old))
			return new;
		return NEXT(dup2)(old, new);
	}
	return dup3(old, new, 0);
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	struct pfile *f = shim_get(fd);
	if (!f) {
		if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
			mnt_dup(fd);
		if ((cmd == F_GETLK || cmd == F_SETLK || cmd == F_SETLKW || cmd == F_OFD_GETLK || cmd == F_OFD_SETLK ||
		     cmd == F_OFD_SETLKW) && arg && ((struct flock *)arg)->l_whence == SEEK_CUR)
			mnt_unown(fd); /* a range from the description's offset */
		int r = NEXT(fcntl)(fd, cmd, arg);
		if (r >= 0 && cmd == F_SETFL)
			mnt_setfl(fd, (int)(intptr_t)arg);
		return r;
	}
	int r = 0, iarg = (int)(intptr_t)arg;
	switch (cmd) {
	case F_GETFL:
		r = shim_flags(f) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
		break;
	case F_SETFL:
		r = shim_setfl(f, iarg);
		break;
	case F_GETFD:
	case F_SETFD: /* the number's own flag: the placeholder holds it */
		r = NEXT(fcntl)(fd, cmd, arg);
		r = r < 0 ? -errno : r;
		break;
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		r = dup_ours(fd, f, iarg, cmd == F_DUPFD_CLOEXEC);
		r = r < 0 ? -errno : r;
		break;
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_GETLK:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		r = lk_fcntl(f, cmd, arg);
		break;
	case F_GETOWN: /* kept as the kernel keeps them; regular files never raise SIGIO */
		r = f->own_type == F_OWNER_PGRP ? -f->own_pid : f->own_pid;
		break;
	case F_SETOWN:
		f->own_type = iarg < 0 ? F_OWNER_PGRP : F_OWNER_PID;
		f->own_pid = iarg < 0 ? -iarg : iarg;
		break;
	case F_GETOWN_EX:
		((struct f_owner_ex *)arg)->type = f->own_type;
		((struct f_owner_ex *)arg)->pid = f->own_pid;
		break;
	case F_SETOWN_EX: {
		const struct f_owner_ex *o = arg;
		if (o->type != F_OWNER_TID && o->type != F_OWNER_PID && o->type != F_OWNER_PGRP) {
			r = -EINVAL;
			break;
		}
		f->own_type = o->type;
		f->own_pid = o->pid;
		break;
	}
	case F_GETSIG:
		r = f->sig;
		break;
	case F_SETSIG:
		if (iarg < 0 || iarg > SIGRTMAX)
			r = -EINVAL;
		else
			f->sig = iarg;
		break;
	case F_GET_RW_HINT: /* a uint64_t, at whatever alignment the caller has it */
		memcpy(arg, &f->hint, sizeof(f->hint));
		break;
	case F_SET_RW_HINT: {
		uint64_t h;
		memcpy(&h, arg, sizeof(h));
		if (h > RWH_WRITE_LIFE_EXTREME)
			r = -EINVAL;
		else
			f->hint = h;
		break;
	}
	case F_GETLEASE:
		r = F_UNLCK;
		break;
	case F_GETPIPE_SZ:
	case F_SETPIPE_SZ:
		r = -EBADF; /* not a pipe */
		break;
	default: /* F_SETLEASE, F_NOTIFY, seals, ...: not kept */
		r = -EINVAL;
	}
	shim_put(f);
	return (int)shim_ret(r);
}

int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

/* ---- mmap ---- */

static struct {
	void *addr;
	size_t len;
} direct[64]; /* shared mappings that point into the pool: munmap leaves them */
static pthread_mutex_t direct_lock = PTHREAD_MUTEX_INITIALIZER;

/* Does [a, a + len) meet a shared map that points into the pool?  Caller
 * holds direct_lock. */
static int meets_direct(uintptr_t a, size_t len)
{
	for (int i = 0; i < 64; i++) {
		uintptr_t d = (uintptr_t)direct[i].addr;
		if (d && a < d + direct[i].len && d < a + len)
			return 1;
	}
	return 0;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		/* the pool's own pages under a map the program let go of:
		 * never replaced (the pool would lose them) */
		pthread_mutex_lock(&direct_lock);
		int meets = meets_direct((uintptr_t)addr, len);
		pthread_mutex_unlock(&direct_lock);
		if (meets) {
			errno = (flags & MAP_FIXED_NOREPLACE) ? EEXIST : EINVAL;
			return MAP_FAILED;
		}
	}
	struct pfile *f = (flags & MAP_ANONYMOUS) ? NULL : shim_get(fd);
	if (!f)
		return NEXT(mmap)(addr, len, prot, flags, fd, off);
	void *p = MAP_FAILED;
	int shared = (flags & MAP_TYPE) == MAP_SHARED || (flags & MAP_TYPE) == MAP_SHARED_VALIDATE;
	int acc = shim_flags(f) & O_ACCMODE;
	if (acc == O_WRONLY || (shared && (prot & PROT_WRITE) && acc == O_RDONLY)) {
		errno = EACCES; /* as the kernel: a map reads, a shared writable one needs O_RDWR */
	} else if (shared) {
		/* the file's bytes in place, read or written: every later write
		 * of the file shows through, stores reach the pool (msync
		 * persists).  The range must be one extent of the file, and the
		 * pool's mapping cannot move to a fixed address: else ENODEV. */
		void *a;
		int r = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) ? -ENODEV
									: poise_map(shim_pool, f->pfd, (uint64_t)off, len, &a);
		pthread_mutex_lock(&direct_lock);
		for (int i = 0; r == 0 && i < 64; i++)
			if (!direct[i].addr) {
				direct[i].addr = a;
				direct[i].len = len;
				p = a;
				break;
			}
		pthread_mutex_unlock(&direct_lock);
		if (p == MAP_FAILED)
			errno = ENODEV;
	} else {
		/* a private copy (or a read-only snapshot of a shared one) */
		p = NEXT(mmap)(addr, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_32BIT)), -1, 0);
		if (p != MAP_FAILED) {
			ssize_t k = poise_pread(shim_pool, f->pfd, p, len, off);
			if (k < 0) {
				NEXT(munmap)(p, len);
				p = MAP_FAILED;
				errno = (int)-k;
			} else if (prot != (PROT_READ | PROT_WRITE)) {
				mprotect(p, len, prot);
			}
		}
	}
	shim_put(f);
	return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));

/* A shared poise map is the pool's own mapping: unmapping it only forgets
 * it (whole) or leaves it (in part); the rest of the range, outside every
 * such map, is unmapped for real. */
int munmap(void *addr, size_t len)
{
	uintptr_t s = (uintptr_t)addr, e = s + len;
	struct {
		uintptr_t a, b;
	} keep[64];
	int n = 0;
	pthread_mutex_lock(&direct_lock);
	for (int i = 0; i < 64; i++) {
		uintptr_t d = (uintptr_t)direct[i].addr, de = d + direct[i].len;
		if (!d || de <= s || d >= e)
			continue;
		keep[n].a = d < s ? s : d;
		keep[n++].b = de > e ? e : de;
		if (d >= s && de <= e)
			direct[i].addr = NULL;
	}
	pthread_mutex_unlock(&direct_lock);
	if (!n)
		return NEXT(munmap)(addr, len);
	for (int i = 1; i < n; i++) /* by address */
		for (int j = i; j > 0 && keep[j].a < keep[j - 1].a; j--) {
			__typeof__(keep[0]) t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	uintptr_t at = s;
	for (int i = 0; i < n; i++) {
		uintptr_t from = at, to = keep[i].a & ~(uintptr_t)4095;
		if (to > from && NEXT(munmap)((void *)from, to - from) < 0)
			return -1;
		at = keep[i].b > at ? (keep[i].b + 4095) & ~(uintptr_t)4095 : at;
	}
	return at < e ? NEXT(munmap)((void *)at, e - at) : 0;
}

int msync(void *addr, size_t len, int flags)
{
	pthread_mutex_lock(&direct_lock);
	for (int i = 0; i < 64; i++)
		if (direct[i].addr && (char *)addr >= (char *)direct[i].addr &&
		    (char *)addr < (char *)direct[i].addr + direct[i].len) {
			pthread_mutex_unlock(&direct_lock);
			poise_map_persist(shim_pool, addr, len);
			return 0;
		}
	pthread_mutex_unlock(&direct_lock);
	return NEXT(msync)(addr, len, flags);
}
