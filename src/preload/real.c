/*
 * real.c - the C library's own functions for the library inside the shim.
 *
 * The shim links the library in, and defines open, statx, pread, ... for
 * the program.  Calls the library itself makes (opening the pool, statx on
 * its path, the block path's pread, the bad-sector list's files) must reach
 * the C library, never the shim's definitions: with POISE_PATH covering the
 * pool file they would be served from the pool being opened (a deadlock on
 * the shim's set-up lock), and on any path they would be answered by the
 * wrong file system.  So the build gives the shim its own copy of the
 * library objects in which each of these names is renamed to
 * __poise_libc_NAME (objcopy --redefine-syms=src/preload/real.syms), and
 * this file defines those as the next definition of NAME after the shim:
 * the C library's.  The build checks that the renamed objects call no name
 * the shim defines.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The C library's NAME, looked up once (a race looks it up twice: the same
 * answer). */
#define REAL(name, type) \
	static __typeof__(type) cached; \
	__typeof__(type) real = __atomic_load_n(&cached, __ATOMIC_ACQUIRE); \
	if (!real) { \
		real = (type)dlsym(RTLD_NEXT, #name); \
		__atomic_store_n(&cached, real, __ATOMIC_RELEASE); \
	}

/* The mode argument of open and openat: there only with O_CREAT or
 * O_TMPFILE. */
static mode_t open_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int __poise_libc_open(const char *path, int flags, ...);
int __poise_libc_open(const char *path, int flags, ...)
{
	REAL(open, int (*)(const char *, int, ...));
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return real(path, flags, mode);
}

int __poise_libc_openat(int dfd, const char *path, int flags, ...);
int __poise_libc_openat(int dfd, const char *path, int flags, ...)
{
	REAL(openat, int (*)(int, const char *, int, ...));
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return real(dfd, path, flags, mode);
}

int __poise_libc_fcntl(int fd, int cmd, ...);
int __poise_libc_fcntl(int fd, int cmd, ...)
{
	REAL(fcntl, int (*)(int, int, ...));
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *); /* an int or a pointer: one register either way */
	va_end(ap);
	return real(fd, cmd, arg);
}

int __poise_libc_ioctl(int fd, unsigned long req, ...);
int __poise_libc_ioctl(int fd, unsigned long req, ...)
{
	REAL(ioctl, int (*)(int, unsigned long, ...));
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return real(fd, req, arg);
}

/* The fixed-argument ones. */
#define PASS(ret, name, params, args) \
	ret __poise_libc_##name params; \
	ret __poise_libc_##name params \
	{ \
		REAL(name, ret(*) params); \
		return real args; \
	}

/* the fortified calls (_FORTIFY_SOURCE, as distributions build) */
PASS(char *, __getcwd_chk, (char *b, size_t n, size_t l), (b, n, l))
PASS(int, __open_2, (const char *p, int f), (p, f))
PASS(int, __openat_2, (int d, const char *p, int f), (d, p, f))
PASS(ssize_t, __pread_chk, (int fd, void *b, size_t n, off_t o, size_t l), (fd, b, n, o, l))
PASS(ssize_t, __pread64_chk, (int fd, void *b, size_t n, off_t o, size_t l), (fd, b, n, o, l))
PASS(ssize_t, __read_chk, (int fd, void *b, size_t n, size_t l), (fd, b, n, l))
PASS(ssize_t, __readlink_chk, (const char *p, char *b, size_t n, size_t l), (p, b, n, l))
PASS(ssize_t, __readlinkat_chk, (int d, const char *p, char *b, size_t n, size_t l), (d, p, b, n, l))
PASS(int, access, (const char *p, int m), (p, m))
PASS(int, chown, (const char *p, uid_t u, gid_t g), (p, u, g))
PASS(int, close, (int fd), (fd))
PASS(int, fallocate, (int fd, int m, off_t o, off_t l), (fd, m, o, l))
PASS(int, fchmod, (int fd, mode_t m), (fd, m))
PASS(int, fchown, (int fd, uid_t u, gid_t g), (fd, u, g))
PASS(ssize_t, fgetxattr, (int fd, const char *n, void *v, size_t l), (fd, n, v, l))
PASS(int, fremovexattr, (int fd, const char *n), (fd, n))
PASS(int, fsetxattr, (int fd, const char *n, const void *v, size_t l, int f), (fd, n, v, l, f))
PASS(FILE *, fdopen, (int fd, const char *m), (fd, m))
PASS(FILE *, fopen, (const char *p, const char *m), (p, m))
PASS(int, fstat, (int fd, struct stat *st), (fd, st))
PASS(int, fstatat, (int d, const char *p, struct stat *st, int f), (d, p, st, f))
PASS(int, fsync, (int fd), (fd))
PASS(int, ftruncate, (int fd, off_t l), (fd, l))
PASS(int, lstat, (const char *p, struct stat *st), (p, st))
PASS(int, mkdir, (const char *p, mode_t m), (p, m))
PASS(void *, mmap, (void *a, size_t l, int pr, int f, int fd, off_t o), (a, l, pr, f, fd, o))
PASS(int, msync, (void *a, size_t l, int f), (a, l, f))
PASS(int, munmap, (void *a, size_t l), (a, l))
PASS(int, posix_fallocate, (int fd, off_t o, off_t l), (fd, o, l))
PASS(ssize_t, pread, (int fd, void *b, size_t n, off_t o), (fd, b, n, o))
PASS(ssize_t, pwrite, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))
PASS(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n))
PASS(ssize_t, readlink, (const char *p, char *b, size_t n), (p, b, n))
PASS(int, sigaction, (int s, const struct sigaction *a, struct sigaction *o), (s, a, o))
PASS(__sighandler_t, signal, (int s, __sighandler_t h), (s, h))
PASS(int, rename, (const char *a, const char *b), (a, b))
PASS(int, renameat, (int a, const char *b, int c, const char *d), (a, b, c, d))
PASS(int, rmdir, (const char *p), (p))
PASS(int, stat, (const char *p, struct stat *st), (p, st))
PASS(int, statx, (int d, const char *p, int f, unsigned m, struct statx *x), (d, p, f, m, x))
PASS(int, unlink, (const char *p), (p))
PASS(int, unlinkat, (int d, const char *p, int f), (d, p, f))
PASS(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n))
