/*
 * shim.c - set-up, path matching and the descriptor table of the preload
 * shim (see shim.h).
 *
 * Set-up is lazy: the first call that names a path opens the pool at
 * POISE_POOL (a program that never touches POISE_PATH never opens it);
 * POISE_ODIRECT=block opens it with odirect=block (O_DIRECT data through
 * the kernel's block path, the 2016 patch's design, for comparison).  A
 * pool belongs to one process: after fork the child keeps working
 * descriptors (the table and the open pool are copied), which is safe as
 * long as only one of the two processes uses the pool from then on (the
 * usual fork-then-exec or fork-then-wait patterns); at exec the reserved
 * descriptors close (they are close-on-exec) and the new program starts its
 * own shim.
 */
#include "preload/shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

struct poise_pool *shim_pool;
int (*real_open)(const char *, int, ...);
int (*real_close)(int);

static char prefix[4096];
static size_t prefix_len;
static int state; /* 0 not started, 1 on, -1 off */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

#define MAXFD SHIM_MAXFD
static struct pfile *tab[MAXFD];
static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;

/* The real functions, resolved on first use: other libraries' constructors
 * may call them before ours runs. */
static void resolve_real(void)
{
	if (real_open)
		return;
	real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	__atomic_store_n(&real_open, (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open"), __ATOMIC_RELEASE);
}

/* The pid the table belongs to: a child of vfork (or posix_spawn's clone)
 * shares this memory, table and all, until it execs, so what it closes or
 * dup2s must not change the table (CPython's subprocess calls close_range
 * and dup2 there).  A child of fork has its own copy: the handler moves it. */
static pid_t shim_pid;
static void forked_child(void)
{
	__atomic_store_n(&shim_pid, getpid(), __ATOMIC_RELAXED);
}

int shim_shared_child(void)
{
	return getpid() != __atomic_load_n(&shim_pid, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void shim_real(void)
{
	resolve_real();
	shim_pid = getpid();
	pthread_atfork(NULL, NULL, forked_child);
}

/* POISE_PATH, read once (no pool opened yet). */
static void env_once(void)
{
	const char *pool = secure_getenv("POISE_POOL"), *path = secure_getenv("POISE_PATH");
	if (!pool || !*pool || !path || path[0] != '/' || strlen(path) >= sizeof(prefix))
		return;
	snprintf(prefix, sizeof(prefix), "%s", path);
	prefix_len = strlen(prefix);
	while (prefix_len > 1 && prefix[prefix_len - 1] == '/')
		prefix[--prefix_len] = 0;
}

static void read_env(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, env_once);
}

/* Open the pool: on the first path that is ours. */
static void start(void)
{
	pthread_mutex_lock(&init_lock);
	if (state == 0) {
		const char *pool = secure_getenv("POISE_POOL"), *od = secure_getenv("POISE_ODIRECT");
		unsigned fl = od && !strcmp(od, "block") ? POISE_ODIRECT_BLOCK : 0; /* the 2016 patch's design, to compare */
		if (od && strcmp(od, "block") && strcmp(od, "dax"))
			fprintf(stderr, "poise-preload: POISE_ODIRECT=%s: not dax or block; dax it is\n", od);
		int r = poise_pool_open(pool, fl, &shim_pool);
		if (r == 0) {
			__atomic_store_n(&state, 1, __ATOMIC_RELEASE);
		} else {
			fprintf(stderr, "poise-preload: %s: %s (paths under %s go to the kernel)\n", pool, poise_errmsg(),
				prefix);
			__atomic_store_n(&state, -1, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&init_lock);
}

int shim_ours(const char *path, const char **inner)
{
	if (!path || path[0] != '/')
		return 0;
	read_env();
	if (!prefix_len || strncmp(path, prefix, prefix_len) ||
	    (prefix_len > 1 && path[prefix_len] != 0 && path[prefix_len] != '/'))
		return 0;
	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 0)
		start();
	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 1)
		return 0;
	*inner = prefix_len == 1 ? path : path[prefix_len] ? path + prefix_len : "/";
	return 1;
}

/* The working directory when a chdir took the process into the pool (the
 * kernel's then stays where it was): its inode and the path the program
 * sees.  vcwd_ino 0: the kernel's working directory is the one.  Guarded by
 * cwd_lock. */
static uint64_t vcwd_ino;
static char vcwd_path[4096];
static pthread_mutex_t cwd_lock = PTHREAD_MUTEX_INITIALIZER;

/* /proc/self/fd/N, /proc/thread-self/fd/N or /dev/fd/N of a poise number
 * N: the pfile's inode (the kernel would reopen the placeholder). */
static int fd_alias(const char *path, uint64_t *ino)
{
	const char *p;
	if (!strncmp(path, "/proc/self/fd/", 14))
		p = path + 14;
	else if (!strncmp(path, "/dev/fd/", 8))
		p = path + 8;
	else if (!strncmp(path, "/proc/thread-self/fd/", 21))
		p = path + 21;
	else
		return 0;
	char *e;
	long n = strtol(p, &e, 10);
	if (e == p || *e || n < 0 || n >= MAXFD)
		return 0;
	struct pfile *f = shim_get((int)n);
	if (!f)
		return 0;
	*ino = f->ino;
	shim_put(f);
	return 1;
}

int shim_at(int dirfd, const char *path, uint64_t *at, const char **inner)
{
	if (path && path[0] == '/') {
		if (fd_alias(path, at)) {
			*inner = "";
			return 1;
		}
		*at = POISE_ROOT;
		return shim_ours(path, inner);
	}
	if (!path)
		return 0;
	if (dirfd == AT_FDCWD) { /* relative: to the pool's directory after a chdir into it */
		uint64_t c = __atomic_load_n(&vcwd_ino, __ATOMIC_ACQUIRE);
		if (!c)
			return 0;
		*at = c;
		*inner = path;
		return 1;
	}
	struct pfile *f = shim_get(dirfd);
	if (!f)
		return 0;
	*at = f->ino;
	*inner = path;
	shim_put(f);
	return 1;
}

struct pfile *shim_get(int fd)
{
	if (fd < 0 || fd >= MAXFD || !__atomic_load_n(&tab[fd], __ATOMIC_ACQUIRE))
		return NULL;
	pthread_mutex_lock(&tab_lock);
	struct pfile *f = tab[fd];
	if (f)
		f->refs++;
	pthread_mutex_unlock(&tab_lock);
	return f;
}

int shim_get_peek(int fd)
{
	return fd >= 0 && fd < MAXFD && __atomic_load_n(&tab[fd], __ATOMIC_ACQUIRE) != NULL;
}

void shim_put(struct pfile *f)
{
	pthread_mutex_lock(&tab_lock);
	int last = --f->refs == 0;
	pthread_mutex_unlock(&tab_lock);
	if (last) {
		lk_release(f);
		poise_closedir(&f->dents);
		poise_close(shim_pool, f->pfd);
		free(f->path);
		pthread_mutex_destroy(&f->lock);
		free(f);
	}
}

int shim_install(struct pfile *f, int cloexec)
{
	resolve_real();
	int fd = real_open("/dev/null", O_PATH | (cloexec ? O_CLOEXEC : 0));
	if (fd < 0)
		return -1;
	if (fd >= MAXFD) {
		real_close(fd);
		errno = EMFILE;
		return -1;
	}
	shim_install_at(fd, f);
	return fd;
}

void shim_install_at(int fd, struct pfile *f)
{
	if (fd < 0 || fd >= MAXFD)
		return; /* callers keep numbers below MAXFD; never write past the table */
	pthread_mutex_lock(&tab_lock);
	struct pfile *old = tab[fd];
	f->refs++;
	__atomic_store_n(&tab[fd], f, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&tab_lock);
	if (old) {
		lk_close(old->ino);
		shim_put(old);
	}
}

void shim_forget(int fd)
{
	if (fd < 0 || fd >= MAXFD)
		return;
	pthread_mutex_lock(&tab_lock);
	struct pfile *f = tab[fd];
	__atomic_store_n(&tab[fd], NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&tab_lock);
	if (f) {
		lk_close(f->ino);
		shim_put(f);
	}
}

long shim_ret(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* ---- the working directory ---- */

/* Join a relative path onto vcwd_path, folding "." and "..". */
static void join(char *out, size_t len, const char *base, const char *rel)
{
	snprintf(out, len, "%s", base);
	for (const char *p = rel; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && !strncmp(p, "..", 2)) {
			char *slash = strrchr(out, '/');
			if (slash && slash != out)
				*slash = 0;
			else
				snprintf(out, len, "/");
		} else if (n && !(n == 1 && *p == '.')) {
			size_t l = strlen(out);
			snprintf(out + l, len - l, "%s%.*s", l > 1 ? "/" : "", (int)n, p);
		}
		p += n + (e ? 1 : 0);
	}
}

int chdir(const char *path)
{
	int (*real)(const char *) = (int (*)(const char *))dlsym(RTLD_NEXT, "chdir");
	char abs[sizeof(vcwd_path)];
	pthread_mutex_lock(&cwd_lock);
	int inpool = __atomic_load_n(&vcwd_ino, __ATOMIC_ACQUIRE) != 0;
	if (path[0] == '/')
		join(abs, sizeof(abs), "/", path + 1);
	else if (inpool)
		join(abs, sizeof(abs), vcwd_path, path);
	pthread_mutex_unlock(&cwd_lock);
	const char *in;
	if ((path[0] == '/' || inpool) && shim_ours(abs, &in)) {
		struct stat st;
		int r = poise_fstatat(shim_pool, POISE_ROOT, in, &st, 0);
		if (r == 0 && !S_ISDIR(st.st_mode))
			r = -ENOTDIR;
		if (r < 0)
			return (int)shim_ret(r);
		pthread_mutex_lock(&cwd_lock);
		memcpy(vcwd_path, abs, sizeof(abs));
		__atomic_store_n(&vcwd_ino, (uint64_t)st.st_ino, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&cwd_lock);
		return 0;
	}
	int r = real(path[0] == '/' || !inpool ? path : abs); /* out of the pool again */
	if (r == 0)
		__atomic_store_n(&vcwd_ino, 0, __ATOMIC_RELEASE);
	return r;
}

int fchdir(int fd)
{
	struct pfile *f = shim_get(fd);
	if (!f) {
		int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fchdir");
		int r = real(fd);
		if (r == 0)
			__atomic_store_n(&vcwd_ino, 0, __ATOMIC_RELEASE);
		return r;
	}
	int r = 0;
	if (!f->isdir || !f->path) {
		r = f->isdir ? -ENOENT : -ENOTDIR;
	} else {
		pthread_mutex_lock(&cwd_lock);
		snprintf(vcwd_path, sizeof(vcwd_path), "%s", f->path);
		__atomic_store_n(&vcwd_ino, f->ino, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&cwd_lock);
	}
	shim_put(f);
	return (int)shim_ret(r);
}

char *getcwd(char *buf, size_t size)
{
	if (!__atomic_load_n(&vcwd_ino, __ATOMIC_ACQUIRE)) {
		char *(*real)(char *, size_t) = (char *(*)(char *, size_t))dlsym(RTLD_NEXT, "getcwd");
		return real(buf, size);
	}
	pthread_mutex_lock(&cwd_lock);
	size_t need = strlen(vcwd_path) + 1;
	char *r = NULL;
	if (!buf && (r = malloc(size > need ? size : need)))
		memcpy(r, vcwd_path, need);
	else if (buf && size >= need)
		r = memcpy(buf, vcwd_path, need);
	else
		errno = buf ? ERANGE : ENOMEM;
	pthread_mutex_unlock(&cwd_lock);
	return r;
}

char *shim_dir_path(uint64_t at, const char *inner)
{
	char buf[4096];
	if (inner[0] == '/') { /* absolute inside the pool: the prefix in front */
		if (prefix_len > 1)
			snprintf(buf, sizeof(buf), "%s%s", prefix, strcmp(inner, "/") ? inner : "");
		else
			snprintf(buf, sizeof(buf), "%s", inner);
		return strdup(buf);
	}
	pthread_mutex_lock(&cwd_lock);
	int known = at == __atomic_load_n(&vcwd_ino, __ATOMIC_ACQUIRE);
	if (known)
		join(buf, sizeof(buf), vcwd_path, inner);
	pthread_mutex_unlock(&cwd_lock);
	return known ? strdup(buf) : NULL;
}
