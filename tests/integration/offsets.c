/*
 * offsets.c - a descriptor's file offset, wherever it goes: read, write
 * and lseek move it; dup, fork, exec, posix_spawn, system, popen, a
 * descriptor sent over a socket, fdopen, sendfile, splice,
 * copy_file_range, pwritev2 at -1, lockf and O_APPEND all see the offset
 * the process reached, and the process sees what they moved.  Run on a
 * kernel file system and on a poise mount under the shim, whose read,
 * write and lseek keep the offset in the process (src/preload/mount.c):
 * every check must give the kernel's answer.  In "poise" mode it also
 * checks that read, write, readv, writev and lseek inside the file's
 * blocks make no system call on the descriptor (a seccomp filter fails
 * any that does).
 * Prints "ok NAME" / "FAIL NAME: why" lines; exit 1 on any failure.
 * Usage: offsets DIR kernel|poise   (offsets child FD N: internal)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <spawn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (256 << 10)
static int failed;
static char dir[900], self[1024];

#define CHECK(name, cond, ...)                                               \
	do {                                                                 \
		if (cond) {                                                  \
			printf("ok %s\n", name);                             \
		} else {                                                     \
			printf("FAIL %s: ", name);                           \
			printf(__VA_ARGS__);                                 \
			printf(" (errno %d %s)\n", errno, strerror(errno)); \
			failed = 1;                                          \
		}                                                            \
	} while (0)

/* byte i of the file */
static char at(long i)
{
	return (char)('a' + (i * 7 + i / 4096) % 26);
}

static char *path(const char *name)
{
	static char b[4][1000];
	static int k;
	k = (k + 1) % 4;
	snprintf(b[k], sizeof(b[k]), "%s/%s", dir, name);
	return b[k];
}

/* A file of SIZE known bytes, written and closed: its blocks exist. */
static void make(const char *name)
{
	static char buf[SIZE];
	for (long i = 0; i < SIZE; i++)
		buf[i] = at(i);
	int fd = open(path(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || pwrite(fd, buf, SIZE, 0) != SIZE || close(fd) < 0) {
		printf("FAIL make %s (errno %d)\n", name, errno);
		exit(1);
	}
}

/* do n bytes read from fd now hold the file's bytes from off? */
static int reads(int fd, long off, size_t n)
{
	char b[8192];
	if (n > sizeof(b) || read(fd, b, n) != (ssize_t)n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (b[i] != at(off + (long)i))
			return 0;
	return 1;
}

static long cur(int fd)
{
	return (long)lseek(fd, 0, SEEK_CUR);
}

static int child_ok(pid_t pid)
{
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* "offsets child FD N": FD's offset must be N; reads 10 bytes there */
static int child(int fd, long n)
{
	return cur(fd) == n && reads(fd, n, 10) ? 0 : 1;
}

static void moves(void)
{
	make("m");
	int fd = open(path("m"), O_RDWR);
	CHECK("read moves the offset", reads(fd, 0, 10) && cur(fd) == 10, "at %ld", cur(fd));
	CHECK("... and the next read starts there", reads(fd, 10, 4096) && cur(fd) == 4106, "at %ld", cur(fd));
	CHECK("lseek SEEK_SET", lseek(fd, 100, SEEK_SET) == 100 && reads(fd, 100, 10), "at %ld", cur(fd));
	CHECK("lseek SEEK_CUR back", lseek(fd, -50, SEEK_CUR) == 60 && reads(fd, 60, 10), "at %ld", cur(fd));
	CHECK("lseek SEEK_END", lseek(fd, -10, SEEK_END) == SIZE - 10 && reads(fd, SIZE - 10, 10), "at %ld", cur(fd));
	char b[16];
	CHECK("a read at the end gives 0 and stays", read(fd, b, 16) == 0 && cur(fd) == SIZE, "at %ld", cur(fd));
	errno = 0;
	CHECK("lseek below 0: EINVAL, the offset kept", lseek(fd, -1, SEEK_SET) == -1 && errno == EINVAL && cur(fd) == SIZE,
	      "at %ld", cur(fd));
	errno = 0;
	CHECK("lseek SEEK_CUR past the largest: EINVAL", lseek(fd, INT64_MAX, SEEK_CUR) == -1 && errno == EINVAL,
	      "at %ld", cur(fd));
	errno = 0;
	CHECK("lseek with a bad whence: EINVAL", lseek(fd, 0, 99) == -1 && errno == EINVAL, "failed");
	CHECK("lseek SEEK_DATA", lseek(fd, 5, SEEK_DATA) == 5 && cur(fd) == 5, "at %ld", cur(fd));
	CHECK("lseek SEEK_HOLE", lseek(fd, 0, SEEK_HOLE) == SIZE && cur(fd) == SIZE, "at %ld", cur(fd));
	lseek(fd, 4096, SEEK_SET);
	CHECK("write moves the offset", write(fd, "XYZ", 3) == 3 && cur(fd) == 4099, "at %ld", cur(fd));
	char got[4] = {0};
	CHECK("... and wrote there", pread(fd, got, 3, 4096) == 3 && !memcmp(got, "XYZ", 3), "got %.3s", got);
	struct iovec v[2] = {{b, 5}, {b + 5, 5}};
	lseek(fd, 200, SEEK_SET);
	CHECK("readv moves the offset", readv(fd, v, 2) == 10 && cur(fd) == 210 && b[0] == at(200) && b[9] == at(209),
	      "at %ld", cur(fd));
	CHECK("writev moves the offset", writev(fd, v, 2) == 10 && cur(fd) == 220, "at %ld", cur(fd));
	CHECK("pread leaves it", pread(fd, b, 10, 0) == 10 && cur(fd) == 220, "at %ld", cur(fd));
	lseek(fd, SIZE + 4096, SEEK_SET);
	struct stat st;
	CHECK("a write past the end, from lseek there, leaves a hole",
	      write(fd, "E", 1) == 1 && fstat(fd, &st) == 0 && st.st_size == SIZE + 4097 && pread(fd, b, 1, SIZE) == 1 &&
		      b[0] == 0 && cur(fd) == SIZE + 4097,
	      "size %ld at %ld", (long)st.st_size, cur(fd));
	close(fd);
}

static void shares(void)
{
	make("s");
	int fd = open(path("s"), O_RDONLY);
	reads(fd, 0, 10);
	int d = dup(fd);
	CHECK("dup: the new number starts at the offset", reads(d, 10, 5), "at %ld", cur(d));
	CHECK("... and the first sees what it moved", reads(fd, 15, 5) && cur(d) == 20, "at %ld", cur(fd));
	close(d);
	close(fd);

	fd = open(path("s"), O_RDONLY);
	reads(fd, 0, 10);
	pid_t pid = fork();
	if (pid == 0)
		_exit(reads(fd, 10, 10) ? 0 : 1);
	CHECK("fork: the child reads from the parent's offset", child_ok(pid), "failed");
	CHECK("... and the parent goes on from the child's", reads(fd, 20, 10) && cur(fd) == 30, "at %ld", cur(fd));
	close(fd);

	/* exec forms: the new program starts at the offset, and moves it */
	struct {
		const char *name;
		int how;
	} ways[] = {{"execv", 0}, {"execl", 1}, {"execvp", 2}, {"vfork and execve", 3}, {"posix_spawn", 4},
		    {"posix_spawnp with a dup2 onto 0", 5}, {"system", 6}, {"popen", 7}};
	for (unsigned w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
		fd = open(path("s"), O_RDONLY);
		reads(fd, 0, 100 + (long)w);
		long n = 100 + (long)w;
		char fds[16], ns[32], cmd[2200];
		snprintf(fds, sizeof(fds), "%d", fd);
		snprintf(ns, sizeof(ns), "%ld", n);
		char *argv[] = {self, "child", fds, ns, NULL};
		int ok = 0;
		if (ways[w].how <= 3) {
			pid = ways[w].how == 3 ? vfork() : fork();
			if (pid == 0) {
				if (ways[w].how == 0)
					execv(self, argv);
				else if (ways[w].how == 1)
					execl(self, self, "child", fds, ns, (char *)NULL);
				else if (ways[w].how == 2)
					execvp(self, argv);
				else
					execve(self, argv, environ);
				_exit(127);
			}
			ok = child_ok(pid);
		} else if (ways[w].how <= 5) {
			posix_spawn_file_actions_t fa;
			posix_spawn_file_actions_init(&fa);
			char *argv0[] = {self, "child", "0", ns, NULL};
			if (ways[w].how == 5)
				posix_spawn_file_actions_adddup2(&fa, fd, 0);
			ok = (ways[w].how == 4 ? posix_spawn(&pid, self, NULL, NULL, argv, environ)
					       : posix_spawnp(&pid, self, &fa, NULL, argv0, environ)) == 0 &&
			     child_ok(pid);
			posix_spawn_file_actions_destroy(&fa);
		} else if (ways[w].how == 6) {
			snprintf(cmd, sizeof(cmd), "'%s' child %d %ld", self, fd, n);
			ok = system(cmd) == 0;
		} else {
			snprintf(cmd, sizeof(cmd), "'%s' child %d %ld", self, fd, n);
			FILE *p = popen(cmd, "r");
			ok = p && pclose(p) == 0;
		}
		char name[128];
		snprintf(name, sizeof(name), "%s: the program reads from the offset, the caller goes on after it", ways[w].name);
		CHECK(name, ok && reads(fd, n + 10, 10), "child %s, at %ld", ok ? "ok" : "failed", cur(fd));
		close(fd);
	}

	/* a descriptor sent over a socket to a process forked before it was opened */
	int sp[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
	pid = fork();
	if (pid == 0) {
		char c;
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr h;
		} u;
		struct iovec v = {&c, 1};
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
		int got = -1;
		if (recvmsg(sp[1], &m, 0) == 1 && CMSG_FIRSTHDR(&m))
			memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
		int r = got >= 0 && cur(got) == 10 && reads(got, 10, 10) ? 0 : 1;
		(void)!write(sp[1], "x", 1);
		_exit(r);
	}
	fd = open(path("s"), O_RDONLY);
	reads(fd, 0, 10);
	{
		char c = 'f';
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr h;
		} u;
		memset(&u, 0, sizeof(u));
		struct iovec v = {&c, 1};
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
		sendmsg(sp[0], &m, 0);
		(void)!read(sp[0], &c, 1);
	}
	CHECK("SCM_RIGHTS: the receiver reads from the offset, the sender goes on after it",
	      child_ok(pid) && reads(fd, 20, 10), "at %ld", cur(fd));
	close(fd);
	close(sp[0]);
	close(sp[1]);
}

static void kernel_calls(void)
{
	make("k");
	int fd = open(path("k"), O_RDONLY);
	reads(fd, 0, 10);
	FILE *f = fdopen(fd, "r");
	int c = f ? fgetc(f) : EOF;
	CHECK("fdopen: the stream reads from the offset", c == at(10), "got %d", c);
	if (f)
		fclose(f);

	fd = open(path("k"), O_RDONLY);
	int out = open(path("k-out"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	reads(fd, 0, 10);
	char b[8] = {0};
	CHECK("sendfile without an offset: from the offset, which moves",
	      sendfile(out, fd, NULL, 5) == 5 && pread(out, b, 5, 0) == 5 && b[0] == at(10) && b[4] == at(14) &&
		      reads(fd, 15, 5),
	      "at %ld", cur(fd));
	CHECK("copy_file_range without offsets: from both offsets, which move",
	      copy_file_range(fd, NULL, out, NULL, 5, 0) == 5 && pread(out, b, 5, 5) == 5 && b[0] == at(20) &&
		      reads(fd, 25, 5) && cur(out) == 10,
	      "at %ld, out at %ld", cur(fd), cur(out));
	int pp[2];
	(void)!pipe(pp);
	CHECK("splice to a pipe without an offset: from the offset, which moves",
	      splice(fd, NULL, pp[1], NULL, 5, 0) == 5 && read(pp[0], b, 5) == 5 && b[0] == at(30) && reads(fd, 35, 5),
	      "at %ld", cur(fd));
	close(pp[0]);
	close(pp[1]);
	int nr = -1;
	CHECK("FIONREAD: the size less the offset", ioctl(fd, FIONREAD, &nr) == 0 && nr == SIZE - 40, "got %d", nr);
	close(fd);

	fd = open(path("k"), O_RDWR);
	reads(fd, 0, 10);
	struct iovec v = {"A", 1};
	CHECK("pwritev2 at -1 with RWF_APPEND: at the end, the offset after it",
	      pwritev2(fd, &v, 1, -1, RWF_APPEND) == 1 && cur(fd) == SIZE + 1, "at %ld", cur(fd));
	lseek(fd, 10, SEEK_SET);
	fcntl(fd, F_SETFL, O_APPEND);
	CHECK("O_APPEND by F_SETFL: a write at the end, the offset after it", write(fd, "B", 1) == 1 && cur(fd) == SIZE + 2,
	      "at %ld", cur(fd));
	close(fd);

	fd = open(path("k"), O_RDWR);
	lseek(fd, 1000, SEEK_SET);
	int lk = lockf(fd, F_LOCK, 10);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = 100, .l_len = 10};
	int fk = fcntl(fd, F_SETLK, &fl); /* 1100..1109 */
	pid_t pid = fork();
	if (pid == 0) {
		int g = open(path("k"), O_RDWR);
		struct flock a = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1005, .l_len = 1};
		struct flock b2 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1105, .l_len = 1};
		struct flock c2 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1000};
		int r = fcntl(g, F_GETLK, &a) == 0 && a.l_type != F_UNLCK && fcntl(g, F_GETLK, &b2) == 0 &&
				b2.l_type != F_UNLCK && fcntl(g, F_GETLK, &c2) == 0 && c2.l_type == F_UNLCK
			? 0
			: 1;
		_exit(r);
	}
	CHECK("lockf and fcntl locks from SEEK_CUR lock from the offset", lk == 0 && fk == 0 && child_ok(pid), "failed");
	close(fd);
}

/* two threads reading one descriptor: every byte read once */
static int tfd;
static unsigned char seen[SIZE / 512];
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int tbad;
static void *reader(void *arg)
{
	(void)arg;
	char b[512];
	ssize_t n;
	while ((n = read(tfd, b, sizeof(b))) == (ssize_t)sizeof(b)) {
		long k = -1;
		memcpy(&k, b, sizeof(k)); /* each block starts with its number */
		pthread_mutex_lock(&seen_lock);
		if (k < 0 || k >= SIZE / 512)
			tbad++;
		else
			seen[k]++;
		pthread_mutex_unlock(&seen_lock);
	}
	return NULL;
}

static void threads(void)
{
	make("t");
	tfd = open(path("t"), O_RDWR);
	for (long k = 0; k < SIZE / 512; k++)
		(void)!pwrite(tfd, &k, sizeof(k), k * 512);
	pthread_t a, b;
	pthread_create(&a, NULL, reader, NULL);
	pthread_create(&b, NULL, reader, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	int once = 1;
	for (long i = 0; i < SIZE / 512; i++)
		once &= seen[i] == 1;
	CHECK("two threads reading one descriptor: every block read once", once && !tbad, "bad %d", tbad);
	close(tfd);
}

/* poise: inside the file's blocks, no system call on the descriptor */
static void no_syscalls(void)
{
	make("n");
	int fd = open(path("n"), O_RDWR);
	char b[4096];
	if (pread(fd, b, 4096, 0) != 4096 || pwrite(fd, b, 4096, 0) != 4096) { /* the map, and the first write's touch */
		CHECK("no system calls: the warm-up", 0, "failed");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* a fresh description in the child (fork made the parent's the kernel's) */
		int g = open(path("n"), O_RDWR);
		if (g < 0 || pread(g, b, 4096, 0) != 4096 || pwrite(g, b, 4096, 0) != 4096)
			_exit(2);
		struct sock_filter filt[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)g, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_read, 8, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 7, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_lseek, 6, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_readv, 5, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_writev, 4, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pread64, 3, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pwrite64, 2, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_preadv, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		};
		struct sock_fprog prog = {.len = sizeof(filt) / sizeof(filt[0]), .filter = filt};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			_exit(3);
		if (lseek(g, 0, SEEK_SET) != 0 || !reads(g, 0, 4096) || !reads(g, 4096, 100) || lseek(g, 0, SEEK_CUR) != 4196)
			_exit(4);
		if (lseek(g, 8192, SEEK_SET) != 8192 || write(g, b, 4096) != 4096 || lseek(g, -4096, SEEK_CUR) != 8192)
			_exit(5);
		struct iovec v[2] = {{b, 2048}, {b + 2048, 2048}};
		if (readv(g, v, 2) != 4096 || writev(g, v, 2) != 4096 || lseek(g, 0, SEEK_CUR) != 16384)
			_exit(6);
		/* the filter itself works: a call the shim sends to the kernel fails */
		errno = 0;
		if (syscall(SYS_lseek, g, 0, SEEK_CUR) != -1 || errno != ENOSYS)
			_exit(7);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK("read, write, readv, writev and lseek inside the blocks: no system call on the descriptor",
	      WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "child"))
		return child(atoi(argv[2]), atol(argv[3]));
	if (argc != 3) {
		fprintf(stderr, "usage: offsets DIR kernel|poise\n");
		return 2;
	}
	if (!realpath("/proc/self/exe", self)) {
		perror("offsets: /proc/self/exe");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	moves();
	shares();
	kernel_calls();
	threads();
	if (!strcmp(argv[2], "poise"))
		no_syscalls();
	return failed;
}
