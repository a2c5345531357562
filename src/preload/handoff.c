/*
 * handoff.c - where a mount descriptor's description leaves this process
 * (mount.c keeps its offset in the process while no one else can see it):
 * exec and spawn, and descriptors sent over a socket.  Each writes the
 * shim's offsets back into the kernel first and leaves them to the kernel
 * from then on (mnt_unown_all, mnt_dup), so a program started with the
 * descriptor, or a process that receives it, starts at the offset this
 * one had reached, and this one then sees what they move.
 *
 *   - exec: every form the C library has (its execl, execvp and the rest
 *     call its own execve inside, which no wrapper sees).  A vfork child
 *     shares the parent's table; writing back then serves both.
 *   - posix_spawn, posix_spawnp, system, popen: the C library's child
 *     (a clone that shares memory) runs no wrapper before its exec.
 *   - sendmsg, sendmmsg: every descriptor an SCM_RIGHTS message carries.
 *
 * fork needs none of this here: mount.c's fork handler does the same.  A
 * raw system call (syscall(2), clone) is not seen (docs/MULTIPROC.md).
 * Threads: nothing of its own; mount.c's locks.
 */
#include "preload/shim.h"

#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

int execve(const char *path, char *const argv[], char *const envp[])
{
	mnt_unown_all();
	return NEXT(execve)(path, argv, envp);
}

int execv(const char *path, char *const argv[])
{
	mnt_unown_all();
	return NEXT(execv)(path, argv);
}

int execvp(const char *file, char *const argv[])
{
	mnt_unown_all();
	return NEXT(execvp)(file, argv);
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
	mnt_unown_all();
	return NEXT(execvpe)(file, argv, envp);
}

int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	mnt_unown_all();
	return NEXT(execveat)(dirfd, path, argv, envp, flags);
}

/* The argument list of an execl form, as an array (malloc'd; *envp the
 * environment after it for execle).  NULL with errno set. */
static char **arg_list(const char *arg, va_list ap, char ***envp)
{
	va_list c;
	va_copy(c, ap);
	size_t n = 1;
	while (va_arg(c, char *)) {
		if (++n > (size_t)INT32_MAX) {
			va_end(c);
			errno = E2BIG;
			return NULL;
		}
	}
	va_end(c);
	char **argv = malloc((n + 1) * sizeof(*argv));
	if (!argv) {
		errno = ENOMEM;
		return NULL;
	}
	argv[0] = (char *)arg;
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *); /* the last one read is the NULL */
	if (envp)
		*envp = va_arg(ap, char **);
	return argv;
}

int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	char **argv = arg_list(arg, ap, NULL);
	va_end(ap);
	if (!argv)
		return -1;
	int r = execv(path, argv);
	int e = errno;
	free(argv);
	errno = e;
	return r;
}

int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	char **argv = arg_list(arg, ap, NULL);
	va_end(ap);
	if (!argv)
		return -1;
	int r = execvp(file, argv);
	int e = errno;
	free(argv);
	errno = e;
	return r;
}

int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	char **envp = NULL;
	char **argv = arg_list(arg, ap, &envp);
	va_end(ap);
	if (!argv)
		return -1;
	int r = execve(path, argv, envp);
	int e = errno;
	free(argv);
	errno = e;
	return r;
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
		char *const argv[], char *const envp[])
{
	mnt_unown_all();
	return NEXT(posix_spawn)(pid, path, fa, at, argv, envp);
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
		 char *const argv[], char *const envp[])
{
	mnt_unown_all();
	return NEXT(posix_spawnp)(pid, file, fa, at, argv, envp);
}

int system(const char *cmd)
{
	if (cmd)
		mnt_unown_all();
	return NEXT(system)(cmd);
}

FILE *popen(const char *cmd, const char *mode)
{
	mnt_unown_all();
	return NEXT(popen)(cmd, mode);
}

/* Every descriptor msg passes: the kernel's offset from now on. */
static void passing(const struct msghdr *msg)
{
	if (!msg || !msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *h = CMSG_FIRSTHDR((struct msghdr *)msg); h; h = CMSG_NXTHDR((struct msghdr *)msg, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS || h->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
			mnt_dup(fd);
		}
	}
}

ssize_t sendmsg(int sock, const struct msghdr *msg, int flags)
{
	passing(msg);
	return NEXT(sendmsg)(sock, msg, flags);
}

int sendmmsg(int sock, struct mmsghdr *v, unsigned n, int flags)
{
	for (unsigned i = 0; v && i < n; i++)
		passing(&v[i].msg_hdr);
	return NEXT(sendmmsg)(sock, v, n, flags);
}
