/*
 * shim_calls.c - walks glibc's calls that take a descriptor on a file of
 * directory DIR and checks each answer (docs/SHIM.md lists them).  Run it
 * on a kernel file system (tmpfs) and under the shim on a pool: a check
 * marked BOTH must give the same answer on each, which is how "as a
 * kernel file system answers" is tested; POISE checks hold for the pool
 * only (the shim's own promises: its statfs magic, the O_PATH placeholder
 * that fails a call no wrapper served, refusals the kernel would serve).
 * Prints "ok NAME" / "FAIL NAME: why" lines, then exits 1 on any failure.
 * Usage: shim_calls DIR poise|kernel
 */
#define _GNU_SOURCE
#include <aio.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>

static int failed, poise;
static char dir[1024];

#define CHECK(name, cond, ...)                                                          \
	do {                                                                            \
		if (cond) {                                                             \
			printf("ok %s\n", name);                                        \
		} else {                                                                \
			printf("FAIL %s: ", name);                                      \
			printf(__VA_ARGS__);                                            \
			printf(" (errno %d %s)\n", errno, strerror(errno));            \
			failed = 1;                                                     \
		}                                                                       \
	} while (0)
/* a call that must fail with errno e */
#define REFUSED(name, call, e)                                                           \
	do {                                                                             \
		errno = 0;                                                               \
		long r_ = (long)(call);                                                  \
		CHECK(name, r_ == -1 && errno == (e), "got %ld, want -1 with %s", r_, strerror(e)); \
	} while (0)

static char *p(const char *name)
{
	static char buf[8][1200];
	static int i;
	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static int mkfile(const char *name, const char *content)
{
	int fd = open(p(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0 && content && write(fd, content, strlen(content)) != (ssize_t)strlen(content)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void sync_and_hints(void)
{
	int fd = mkfile("sync", "0123456789");
	CHECK("BOTH sync_file_range", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) == 0, "failed");
	REFUSED("BOTH sync_file_range bad flags", sync_file_range(fd, 0, 0, 0x80), EINVAL);
	REFUSED("BOTH sync_file_range negative offset", sync_file_range(fd, -1, 0, 0), EINVAL);
	CHECK("BOTH fdatasync", fdatasync(fd) == 0, "failed");
	CHECK("BOTH syncfs", syncfs(fd) == 0, "failed");
	CHECK("BOTH readahead", readahead(fd, 0, 4096) == 0, "failed");
	CHECK("BOTH posix_fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) == 0, "failed");
	CHECK("BOTH posix_fadvise bad advice", posix_fadvise(fd, 0, 0, 99) == EINVAL, "not EINVAL");
	CHECK("BOTH posix_fallocate", posix_fallocate(fd, 0, 65536) == 0, "failed");
	struct stat st;
	CHECK("BOTH fallocate keep size", fallocate(fd, FALLOC_FL_KEEP_SIZE, 65536, 4096) == 0 && fstat(fd, &st) == 0 &&
						  st.st_size == 65536, "size %lld", (long long)st.st_size);
	close(fd);
}

static void figures(void)
{
	int fd = mkfile("fig", "abc");
	struct statfs sf;
	struct statvfs sv;
	CHECK("BOTH fstatfs", fstatfs(fd, &sf) == 0 && sf.f_bsize >= 512 && sf.f_namelen == 255, "bsize %ld", (long)sf.f_bsize);
	CHECK("BOTH statfs (path)", statfs(p("fig"), &sf) == 0 && sf.f_blocks > 0, "blocks %llu", (unsigned long long)sf.f_blocks);
	CHECK("BOTH fstatvfs", fstatvfs(fd, &sv) == 0 && sv.f_namemax == 255 && sv.f_frsize >= 512, "frsize %lu", sv.f_frsize);
	CHECK("BOTH statvfs (path)", statvfs(p("fig"), &sv) == 0 && sv.f_blocks > 0, "failed");
	REFUSED("BOTH statfs of a missing path", statfs(p("missing"), &sf), ENOENT);
	if (poise)
		CHECK("POISE fstatfs f_type is poise's", fstatfs(fd, &sf) == 0 && sf.f_type == 0x504f4953, "f_type %lx",
		      (long)sf.f_type);
	CHECK("BOTH fpathconf NAME_MAX", fpathconf(fd, _PC_NAME_MAX) == 255, "%ld", fpathconf(fd, _PC_NAME_MAX));
	CHECK("BOTH pathconf FILESIZEBITS", pathconf(p("fig"), _PC_FILESIZEBITS) >= 32, "failed");
	close(fd);
}

static void ioctls(void)
{
	int fd = mkfile("io", "0123456789"), v = -1;
	lseek(fd, 4, SEEK_SET);
	CHECK("BOTH ioctl FIONREAD", ioctl(fd, FIONREAD, &v) == 0 && v == 6, "got %d", v);
	CHECK("BOTH ioctl FIGETBSZ", ioctl(fd, FIGETBSZ, &v) == 0 && v >= 512, "got %d", v);
	CHECK("BOTH ioctl FIOCLEX", ioctl(fd, FIOCLEX) == 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "flag not set");
	CHECK("BOTH ioctl FIONCLEX", ioctl(fd, FIONCLEX) == 0 && !(fcntl(fd, F_GETFD) & FD_CLOEXEC), "flag not cleared");
	v = 1;
	CHECK("BOTH ioctl FIONBIO", ioctl(fd, FIONBIO, &v) == 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK), "O_NONBLOCK not set");
	REFUSED("BOTH ioctl TCGETS", ioctl(fd, TCGETS, &(struct termios){0}), ENOTTY);
	REFUSED("BOTH ioctl FS_IOC_GETVERSION", ioctl(fd, FS_IOC_GETVERSION, &v), ENOTTY);
	struct {
		struct fiemap m;
		struct fiemap_extent e[4];
	} fm = {.m = {.fm_length = ~0ULL, .fm_extent_count = 4}};
	REFUSED("BOTH ioctl FS_IOC_FIEMAP", ioctl(fd, FS_IOC_FIEMAP, &fm), EOPNOTSUPP);
	int other = mkfile("io2", NULL);
	REFUSED("BOTH ioctl FICLONE", ioctl(other, FICLONE, fd), EOPNOTSUPP);
	close(other);
	errno = 0;
	REFUSED("BOTH isatty", isatty(fd) ? 0 : -1, ENOTTY);
	struct termios t;
	REFUSED("BOTH tcgetattr", tcgetattr(fd, &t), ENOTTY);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	REFUSED("BOTH epoll_ctl of a file", epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), EPERM);
	close(ep);
	if (poise) {
		v = 0;
		CHECK("POISE ioctl FS_IOC_GETFLAGS: none", ioctl(fd, FS_IOC_GETFLAGS, &v) == 0 && v == 0, "got %d", v);
		REFUSED("POISE F_ADD_SEALS (not a memfd: EINVAL, as ext4; tmpfs says EPERM)", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE),
			EINVAL);
		REFUSED("POISE fexecve (EACCES, as on noexec)", fexecve(fd, (char *[]){"x", NULL}, environ), EACCES);
	}
	close(fd);
}

static void fcntls(void)
{
	int fd = mkfile("fc", "abc");
	CHECK("BOTH F_SETFL O_APPEND", fcntl(fd, F_SETFL, O_APPEND) == 0 && (fcntl(fd, F_GETFL) & O_APPEND), "not set");
	lseek(fd, 0, SEEK_SET);
	char b[8] = {0};
	CHECK("BOTH a write after F_SETFL O_APPEND goes to the end",
	      write(fd, "d", 1) == 1 && pread(fd, b, 8, 0) == 4 && !memcmp(b, "abcd", 4), "file %.4s", b);
	CHECK("BOTH F_SETFL clears O_APPEND", fcntl(fd, F_SETFL, 0) == 0 && !(fcntl(fd, F_GETFL) & O_APPEND), "still set");
	CHECK("BOTH F_SETOWN / F_GETOWN", fcntl(fd, F_SETOWN, getpid()) == 0 && fcntl(fd, F_GETOWN) == getpid(), "lost");
	CHECK("BOTH F_SETSIG / F_GETSIG", fcntl(fd, F_SETSIG, SIGUSR1) == 0 && fcntl(fd, F_GETSIG) == SIGUSR1, "lost");
	uint64_t h = RWH_WRITE_LIFE_SHORT, g = 0;
	CHECK("BOTH F_SET_RW_HINT", fcntl(fd, F_SET_RW_HINT, &h) == 0 && fcntl(fd, F_GET_RW_HINT, &g) == 0 && g == h, "got %llu",
	      (unsigned long long)g);
	REFUSED("BOTH F_GETPIPE_SZ (not a pipe)", fcntl(fd, F_GETPIPE_SZ), EBADF);
	CHECK("BOTH F_GETLEASE", fcntl(fd, F_GETLEASE) == F_UNLCK, "held");
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	CHECK("BOTH F_DUPFD_CLOEXEC", d >= 100 && (fcntl(d, F_GETFD) & FD_CLOEXEC), "fd %d", d);
	int d2 = fcntl(fd, F_DUPFD, 0);
	CHECK("BOTH F_DUPFD leaves close-on-exec clear", d2 >= 0 && !(fcntl(d2, F_GETFD) & FD_CLOEXEC), "set");
	close(d);
	close(d2);
	close(fd);
}

static void locks(void)
{
	int a = mkfile("lk", "0123456789"), b = open(p("lk"), O_RDWR);
	CHECK("BOTH flock LOCK_EX", flock(a, LOCK_EX | LOCK_NB) == 0, "failed");
	REFUSED("BOTH flock: a second open conflicts", flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
	int a2 = dup(a);
	CHECK("BOTH flock: a dup shares the lock", flock(a2, LOCK_EX | LOCK_NB) == 0, "failed");
	close(a2);
	CHECK("BOTH flock: unlock lets the other in", flock(a, LOCK_UN) == 0 && flock(b, LOCK_SH | LOCK_NB) == 0, "failed");
	REFUSED("BOTH flock: a shared lock keeps LOCK_EX out", flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	CHECK("BOTH flock: two shared locks", flock(a, LOCK_SH | LOCK_NB) == 0, "failed");
	REFUSED("BOTH flock bad operation", flock(a, 0), EINVAL);
	flock(a, LOCK_UN);
	flock(b, LOCK_UN);

	struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
	CHECK("BOTH F_OFD_SETLK", fcntl(a, F_OFD_SETLK, &w) == 0, "failed");
	REFUSED("BOTH F_OFD_SETLK: another description conflicts", fcntl(b, F_OFD_SETLK, &w), EAGAIN);
	struct flock r2 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 5};
	CHECK("BOTH F_OFD_SETLK: a disjoint range", fcntl(b, F_OFD_SETLK, &r2) == 0, "failed");
	struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 1};
	CHECK("BOTH F_OFD_GETLK names the holder's range", fcntl(b, F_OFD_GETLK, &q) == 0 && q.l_type == F_WRLCK &&
								       q.l_start == 0 && q.l_len == 5 && q.l_pid == -1,
	      "type %d start %lld len %lld pid %d", q.l_type, (long long)q.l_start, (long long)q.l_len, q.l_pid);
	struct flock pw = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	REFUSED("BOTH F_SETLK conflicts with an OFD lock", fcntl(a, F_SETLK, &pw), EAGAIN);
	struct flock un = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 3};
	CHECK("BOTH F_OFD unlock of a middle piece", fcntl(a, F_OFD_SETLK, &un) == 0, "failed");
	struct flock m = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 1};
	CHECK("BOTH ... frees just that piece", fcntl(b, F_OFD_GETLK, &m) == 0 && m.l_type == F_UNLCK, "type %d", m.l_type);
	struct flock edge = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 4, .l_len = 1};
	REFUSED("BOTH ... and keeps the rest", fcntl(b, F_OFD_SETLK, &edge), EAGAIN);
	struct flock all = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
	fcntl(a, F_OFD_SETLK, &all);
	fcntl(b, F_OFD_SETLK, &all);
	CHECK("BOTH F_SETLK", fcntl(a, F_SETLK, &pw) == 0, "failed");
	CHECK("BOTH F_SETLK: the process's own locks never conflict", fcntl(b, F_SETLK, &pw) == 0, "failed");
	struct flock ow = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	REFUSED("BOTH F_OFD_SETLK conflicts with a POSIX lock", fcntl(b, F_OFD_SETLK, &ow), EAGAIN);
	int c = open(p("lk"), O_RDONLY);
	close(c); /* POSIX: closing any descriptor of the file drops the process's locks on it */
	CHECK("BOTH closing another descriptor drops POSIX locks", fcntl(b, F_OFD_SETLK, &ow) == 0, "still locked");
	fcntl(b, F_OFD_SETLK, &all);
	int ro = open(p("lk"), O_RDONLY);
	REFUSED("BOTH F_SETLK write lock on a read-only descriptor", fcntl(ro, F_SETLK, &pw), EBADF);
	struct flock bad = {.l_type = 7, .l_whence = SEEK_SET};
	REFUSED("BOTH F_SETLK bad type", fcntl(a, F_SETLK, &bad), EINVAL);
	close(ro);
	lseek(a, 0, SEEK_SET);
	CHECK("BOTH lockf F_TLOCK", lockf(a, F_TLOCK, 4) == 0, "failed");
	CHECK("BOTH lockf F_TEST in the same process", lockf(a, F_TEST, 4) == 0, "locked");
	struct flock ow2 = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	REFUSED("BOTH an OFD lock meets lockf's", fcntl(b, F_OFD_SETLK, &ow2), EAGAIN);
	CHECK("BOTH lockf F_ULOCK", lockf(a, F_ULOCK, 4) == 0 && fcntl(b, F_OFD_SETLK, &ow2) == 0, "failed");
	close(a);
	close(b);
}

static void *release_later(void *arg)
{
	usleep(100 * 1000);
	flock(*(int *)arg, LOCK_UN);
	return NULL;
}

static void lock_wait(void)
{
	int a = mkfile("lkw", "x"), b = open(p("lkw"), O_RDWR);
	flock(a, LOCK_EX);
	pthread_t t;
	pthread_create(&t, NULL, release_later, &a);
	CHECK("BOTH flock waits for another thread's release", flock(b, LOCK_EX) == 0, "failed");
	pthread_join(t, NULL);
	close(a);
	close(b);
}

static void closing(void)
{
	int fd = mkfile("cr", "abc");
	int hi = fcntl(fd, F_DUPFD, 200);
	CHECK("BOTH close_range", close_range((unsigned)hi, (unsigned)hi + 5, 0) == 0, "failed");
	REFUSED("BOTH ... the number is closed", fstat(hi, &(struct stat){0}), EBADF);
	int r = open("/dev/zero", O_RDONLY), moved = dup2(r, hi);
	char b[4] = {1, 1, 1, 1};
	CHECK("BOTH ... and a kernel file reusing it reads as itself", moved == hi && read(hi, b, 4) == 4 && !b[0] && !b[3],
	      "read %d", b[0]);
	close(hi);
	close(r);
	int c = fcntl(fd, F_DUPFD, 300);
	CHECK("BOTH close_range CLOSE_RANGE_CLOEXEC", close_range((unsigned)c, (unsigned)c, CLOSE_RANGE_CLOEXEC) == 0 &&
							(fcntl(c, F_GETFD) & FD_CLOEXEC),
	      "flag not set");
	close(c);
	int e = fcntl(fd, F_DUPFD, 400);
	closefrom(400);
	REFUSED("BOTH closefrom", fstat(e, &(struct stat){0}), EBADF);
	close(fd);
}

static void copies(void)
{
	char buf[64] = {0};
	int in = mkfile("cp-in", "hello, descriptors");
	int out = mkfile("cp-out", NULL);
	off_t o = 7;
	CHECK("BOTH sendfile from an offset", sendfile(out, in, &o, 11) == 11 && o == 18 && lseek(in, 0, SEEK_CUR) == 18,
	      "offset %lld", (long long)o);
	CHECK("BOTH ... wrote the bytes", pread(out, buf, 64, 0) == 11 && !memcmp(buf, "descriptors", 11), "got %s", buf);
	lseek(in, 0, SEEK_SET);
	int pp[2];
	if (pipe(pp) < 0)
		return;
	CHECK("BOTH splice file to pipe", splice(in, NULL, pp[1], NULL, 5, 0) == 5 && lseek(in, 0, SEEK_CUR) == 5, "failed");
	memset(buf, 0, sizeof(buf));
	CHECK("BOTH ... the pipe holds them", read(pp[0], buf, 64) == 5 && !memcmp(buf, "hello", 5), "got %s", buf);
	if (write(pp[1], "piped", 5) != 5)
		return;
	loff_t oo = 2;
	CHECK("BOTH splice pipe to file at an offset", splice(pp[0], NULL, out, &oo, 5, 0) == 5 && oo == 7, "failed");
	memset(buf, 0, sizeof(buf));
	CHECK("BOTH ... wrote them", pread(out, buf, 64, 0) == 11 && !memcmp(buf, "depipedtors", 11), "got %s", buf);
	REFUSED("BOTH splice file to file (no pipe)", splice(in, NULL, out, NULL, 5, 0), EINVAL);
	REFUSED("BOTH tee of a file", tee(in, pp[1], 5, 0), EINVAL);
	struct iovec v = {"x", 1};
	REFUSED("BOTH vmsplice into a file", vmsplice(out, &v, 1, 0), EBADF);
	close(pp[0]);
	close(pp[1]);
	loff_t ci = 0, co = 0;
	int cf = mkfile("cp-copy", NULL);
	CHECK("BOTH copy_file_range", copy_file_range(in, &ci, cf, &co, 64, 0) == 18 && ci == 18 && co == 18, "failed");
	memset(buf, 0, sizeof(buf));
	CHECK("BOTH ... copied", pread(cf, buf, 64, 0) == 18 && !memcmp(buf, "hello, descriptors", 18), "got %s", buf);
	REFUSED("BOTH copy_file_range bad flags", copy_file_range(in, &ci, cf, &co, 64, 1), EINVAL);
	if (poise) {
		int k = open("/dev/shm", O_RDONLY | O_DIRECTORY);
		int kf = openat(k, "poise-shim-calls-k", O_RDWR | O_CREAT | O_TRUNC, 0600);
		REFUSED("POISE copy_file_range between the pool and the kernel", copy_file_range(in, NULL, kf, NULL, 4, 0), EXDEV);
		off_t z = 0;
		CHECK("POISE sendfile from the pool to a kernel file", sendfile(kf, in, &z, 5) == 5 && pread(kf, buf, 5, 0) == 5 &&
									 !memcmp(buf, "hello", 5), "failed");
		unlinkat(k, "poise-shim-calls-k", 0);
		close(kf);
		close(k);
	}
	close(cf);
	close(in);
	close(out);
}

static void xattrs(void)
{
	int fd = mkfile("xa", "x");
	char v[32] = {0}, list[256];
	CHECK("BOTH fsetxattr", fsetxattr(fd, "user.k", "v1", 2, 0) == 0, "failed");
	CHECK("BOTH fgetxattr", fgetxattr(fd, "user.k", v, sizeof(v)) == 2 && !memcmp(v, "v1", 2), "got %s", v);
	CHECK("BOTH getxattr (path)", getxattr(p("xa"), "user.k", v, sizeof(v)) == 2, "failed");
	CHECK("BOTH lsetxattr (path)", lsetxattr(p("xa"), "user.j", "v2", 2, XATTR_CREATE) == 0, "failed");
	REFUSED("BOTH XATTR_CREATE of an existing one", fsetxattr(fd, "user.j", "v3", 2, XATTR_CREATE), EEXIST);
	ssize_t n = flistxattr(fd, list, sizeof(list));
	CHECK("BOTH flistxattr", n == 14, "got %zd", n);
	CHECK("BOTH listxattr (path)", listxattr(p("xa"), list, sizeof(list)) == 14, "failed");
	CHECK("BOTH fremovexattr", fremovexattr(fd, "user.k") == 0, "failed");
	REFUSED("BOTH ... gone", fgetxattr(fd, "user.k", v, sizeof(v)), ENODATA);
	CHECK("BOTH removexattr (path)", removexattr(p("xa"), "user.j") == 0, "failed");
	close(fd);
}

static void times(void)
{
	int fd = mkfile("tm", "x");
	struct timeval tv[2] = {{1000000000, 0}, {1200000000, 500000}};
	struct stat st;
	CHECK("BOTH futimes", futimes(fd, tv) == 0 && fstat(fd, &st) == 0 && st.st_mtime == 1200000000 &&
				      st.st_mtim.tv_nsec == 500000000,
	      "mtime %lld", (long long)st.st_mtime);
	tv[1].tv_sec = 1300000000;
	CHECK("BOTH utimes (path)", utimes(p("tm"), tv) == 0 && stat(p("tm"), &st) == 0 && st.st_mtime == 1300000000, "failed");
	tv[1].tv_sec = 1400000000;
	CHECK("BOTH lutimes (path)", lutimes(p("tm"), tv) == 0 && stat(p("tm"), &st) == 0 && st.st_mtime == 1400000000, "failed");
	struct timespec ts[2] = {{0, UTIME_OMIT}, {1500000000, 0}};
	const char *volatile none = NULL; /* glibc declares the path nonnull, and refuses NULL */
	REFUSED("BOTH utimensat(fd, NULL) (glibc's EINVAL)", utimensat(fd, none, ts, 0), EINVAL);
	CHECK("BOTH futimesat(fd, NULL): fd's own", futimesat(fd, none, tv) == 0 && fstat(fd, &st) == 0 &&
							st.st_mtime == 1400000000, "mtime %lld", (long long)st.st_mtime);
	CHECK("BOTH futimens", futimens(fd, ts) == 0 && fstat(fd, &st) == 0 && st.st_mtime == 1500000000, "mtime %lld",
	      (long long)st.st_mtime);
	tv[1].tv_usec = 2000000;
	REFUSED("BOTH futimes bad microseconds", futimes(fd, tv), EINVAL);
	close(fd);
}

static void dents(void)
{
	mkdir(p("dd"), 0755);
	for (int i = 0; i < 40; i++) {
		char n[64];
		snprintf(n, sizeof(n), "dd/entry-%02d", i);
		close(mkfile(n, NULL));
	}
	int fd = open(p("dd"), O_RDONLY | O_DIRECTORY);
	char buf[512];
	int seen = 0, dots = 0, calls = 0;
	ssize_t n;
	while ((n = getdents64(fd, buf, sizeof(buf))) > 0) {
		calls++;
		for (ssize_t o = 0; o < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + o);
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				dots++;
			else if (!strncmp(d->d_name, "entry-", 6) && d->d_type == DT_REG)
				seen++;
			o += d->d_reclen;
		}
	}
	CHECK("BOTH getdents64 lists every entry, . and .., over several calls", n == 0 && seen == 40 && dots == 2 && calls > 1,
	      "n %zd seen %d dots %d calls %d", n, seen, dots, calls);
	lseek(fd, 0, SEEK_SET);
	n = getdents64(fd, buf, sizeof(buf));
	CHECK("BOTH getdents64 after a rewind", n > 0, "got %zd", n);
	REFUSED("BOTH getdents64 with no room", getdents64(fd, buf, 8), EINVAL);
	int f = mkfile("notdir", NULL);
	REFUSED("BOTH getdents64 of a file", getdents64(f, buf, sizeof(buf)), ENOTDIR);
	close(f);
	close(fd);
}

static void aio(void)
{
	int fd = mkfile("aio", "asynchronous");
	char b[16] = {0};
	struct aiocb cb = {.aio_fildes = fd, .aio_buf = b, .aio_nbytes = 5, .aio_offset = 1};
	cb.aio_sigevent.sigev_notify = SIGEV_NONE;
	CHECK("BOTH aio_read", aio_read(&cb) == 0, "failed");
	const struct aiocb *l[1] = {&cb};
	while (aio_error(&cb) == EINPROGRESS)
		aio_suspend(l, 1, NULL);
	CHECK("BOTH ... aio_error, aio_return", aio_error(&cb) == 0 && aio_return(&cb) == 5 && !memcmp(b, "synch", 5),
	      "got %.5s", b);
	struct aiocb w = {.aio_fildes = fd, .aio_buf = "XY", .aio_nbytes = 2, .aio_offset = 0};
	struct aiocb *list[1] = {&w};
	CHECK("BOTH lio_listio LIO_WAIT write", (w.aio_lio_opcode = LIO_WRITE, lio_listio(LIO_WAIT, list, 1, NULL)) == 0 &&
							aio_return(&w) == 2 && pread(fd, b, 2, 0) == 2 && !memcmp(b, "XY", 2),
	      "failed");
	struct aiocb s = {.aio_fildes = fd};
	CHECK("BOTH aio_fsync", aio_fsync(O_SYNC, &s) == 0, "failed");
	const struct aiocb *sl[1] = {&s};
	while (aio_error(&s) == EINPROGRESS)
		aio_suspend(sl, 1, NULL);
	CHECK("BOTH ... done", aio_error(&s) == 0, "failed");
	close(fd);
}

static void maps(void)
{
	int fd = mkfile("mm", NULL);
	char page[4096];
	memset(page, 'a', sizeof(page));
	if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
		return;
	char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	CHECK("BOTH mmap MAP_SHARED read-only", m != MAP_FAILED, "failed");
	if (m != MAP_FAILED) {
		pwrite(fd, "b", 1, 10);
		CHECK("BOTH ... a later write shows through", m[10] == 'b', "got %c", m[10]);
		munmap(m, 4096);
	}
	char *r = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *at = r + 4096;
	char *q = mmap(at, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
	CHECK("BOTH mmap MAP_PRIVATE | MAP_FIXED lands at the address", q == at && q[10] == 'b', "got %p want %p", q, at);
	munmap(r, 8192);
	close(fd);
}

static volatile sig_atomic_t caught;
static void on_segv(int sig __attribute__((unused)))
{
	caught++;
}

static void signals(void)
{
	struct sigaction sa = {.sa_handler = on_segv}, old;
	sigemptyset(&sa.sa_mask);
	CHECK("BOTH sigaction SIGSEGV", sigaction(SIGSEGV, &sa, NULL) == 0 && sigaction(SIGSEGV, NULL, &old) == 0 &&
						old.sa_handler == on_segv, "handler not kept");
	raise(SIGSEGV);
	CHECK("BOTH ... raise(SIGSEGV) runs it", caught == 1, "caught %d", (int)caught);
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGSEGV, &sa, NULL);
	raise(SIGSEGV);
	CHECK("BOTH SA_RESETHAND: runs once, then the default", caught == 2 && sigaction(SIGSEGV, NULL, &old) == 0 &&
								      old.sa_handler == SIG_DFL, "caught %d", (int)caught);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK("BOTH signal(SIGSEGV, SIG_DFL) then raise kills", WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %d", st);
}

static void more(void)
{
	/* getdents64 while unlinking what it returned */
	mkdir(p("gu"), 0755);
	for (int i = 0; i < 6; i++) {
		char n[64];
		snprintf(n, sizeof(n), "gu/f%d", i);
		close(mkfile(n, NULL));
	}
	int d = open(p("gu"), O_RDONLY | O_DIRECTORY);
	char buf[80];
	int seen = 0;
	ssize_t n;
	while ((n = getdents64(d, buf, sizeof(buf))) > 0)
		for (ssize_t o = 0; o < n;) {
			struct dirent64 *e = (struct dirent64 *)(buf + o);
			if (e->d_name[0] == 'f') {
				seen++;
				unlinkat(d, e->d_name, 0);
			}
			o += e->d_reclen;
		}
	CHECK("BOTH getdents64 while unlinking what it returned sees every entry", seen == 6, "saw %d", seen);
	close(d);

	int fd = mkfile("alias", "through /proc");
	char path[64], b[32] = {0};
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int r = open(path, O_RDONLY);
	CHECK("BOTH open(/proc/self/fd/N) reopens the file", r >= 0 && read(r, b, sizeof(b)) == 13 && !memcmp(b, "through /proc", 13),
	      "got '%s'", b);
	close(r);
	snprintf(path, sizeof(path), "/dev/fd/%d", fd);
	struct stat st;
	CHECK("BOTH stat(/dev/fd/N) is the file's", stat(path, &st) == 0 && st.st_size == 13, "size %lld", (long long)st.st_size);

	int ro = open(p("alias"), O_RDONLY);
	REFUSED("BOTH mmap MAP_SHARED PROT_WRITE of an O_RDONLY descriptor", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED ? -1 : 0, EACCES);
	close(ro);
	int big = mkfile("two-pages", NULL);
	char page[8192];
	memset(page, 'p', sizeof(page));
	if (write(big, page, sizeof(page)) == (ssize_t)sizeof(page)) {
		char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, big, 0);
		CHECK("BOTH munmap of half a shared map leaves the other half", m != MAP_FAILED && munmap(m + 4096, 4096) == 0 &&
										     m[100] == 'p' && munmap(m, 4096) == 0,
		      "failed");
	}
	close(big);

	int c = mkfile("cfr", "0123456789abcdef");
	loff_t a = 0, z = 4;
	REFUSED("BOTH copy_file_range of overlapping ranges of one file", copy_file_range(c, &a, c, &z, 8, 0), EINVAL);
	int ap = open(p("cfr-out"), O_WRONLY | O_CREAT | O_APPEND, 0644);
	a = 0;
	REFUSED("BOTH copy_file_range to an O_APPEND descriptor", copy_file_range(c, &a, ap, NULL, 4, 0), EBADF);
	close(ap);

	/* a vfork child (as CPython's subprocess) closing everything leaves the parent's descriptors */
	pid_t pid = vfork();
	if (pid == 0) {
		close_range(3, ~0U, 0);
		_exit(0);
	}
	int stt;
	waitpid(pid, &stt, 0);
	memset(b, 0, sizeof(b));
	CHECK("BOTH a vfork child's close_range leaves the parent's descriptors", pread(c, b, 4, 0) == 4 && !memcmp(b, "0123", 4),
	      "read failed");
	close(c);
	close(fd);
}

/* The placeholder a poise number stands on: a call no wrapper serves (here
 * a raw system call) fails, never reads end of file or swallows a write. */
static void placeholder(void)
{
	int fd = mkfile("ph", "data");
	char b[4];
	REFUSED("POISE a raw read(2) fails (EBADF), no silent end of file", syscall(SYS_read, fd, b, 4), EBADF);
	REFUSED("POISE a raw write(2) fails (EBADF), nothing swallowed", syscall(SYS_write, fd, "x", 1), EBADF);
	REFUSED("POISE a raw fsync(2) fails (EBADF)", syscall(SYS_fsync, fd), EBADF);
	int keep = dup2(fd, 7); /* inherited across exec (no close-on-exec); one digit, for sh */
	pid_t pid = fork();
	if (pid == 0) {
		char arg[16];
		snprintf(arg, sizeof(arg), "%d", keep);
		execl("/bin/sh", "sh", "-c", "[ -e /proc/$$/fd/$0 ] || exit 2; cat <&$0 >/dev/null 2>&1 && exit 1; exit 0", arg,
		      (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK("POISE after exec an inherited number is still taken, and reading it fails", WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	close(keep);
	close(fd);
}

/* A child forked after the pool opened may read, never change the pool
 * (its in-memory copy of the file system goes stale: issue 18). */
static void forked(void)
{
	int fd = mkfile("fk", "parent");
	pid_t pid = fork();
	if (pid == 0) {
		char b[6];
		int rd = pread(fd, b, 6, 0) == 6 && !memcmp(b, "parent", 6);
		errno = 0;
		int c = open(p("fk-child"), O_CREAT | O_WRONLY, 0644);
		int ce = errno;
		errno = 0;
		ssize_t w = pwrite(fd, "child!", 6, 0); /* in place, in blocks the file has: refused too */
		_exit(rd && c == -1 && ce == EROFS && w == -1 && errno == EROFS ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK("POISE a forked child reads; its create and its in-place write fail with EROFS", WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "status %d", st);
	CHECK("POISE ... and the parent still writes", write(fd, "+", 1) == 1 && access(p("fk-child"), F_OK) != 0, "failed");
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: shim_calls DIR poise|kernel\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	poise = !strcmp(argv[2], "poise");
	setvbuf(stdout, NULL, _IOLBF, 0);
	sync_and_hints();
	figures();
	ioctls();
	fcntls();
	locks();
	lock_wait();
	closing();
	copies();
	xattrs();
	times();
	dents();
	aio();
	maps();
	more();
	signals();
	if (poise) {
		placeholder();
		forked();
	}
	return failed;
}
