/*
 * mount.c - the shim's mount mode: a file under a poise mount, opened
 * through the kernel as any file, has its reads and writes inside the
 * blocks it already has served here, straight from this process's own
 * mapping of the pool, with no system call and no FUSE request; all else
 * (and any of these the direct path cannot serve) is the kernel's, on the
 * same descriptor.  The protocol is src/common/dataproto.h, the argument
 * against stale maps src/common/readers.h, the design docs/MULTIPROC.md.
 *
 *   - A descriptor is registered at open (mnt_opened): a regular file on a
 *     FUSE file system whose daemon answers DP_IOC_HELLO.  The first one of
 *     a mount admits the process: the daemon's socket must belong to root
 *     or to this user, the daemon names its pool and its mount's device
 *     (which must be the descriptor's), the process opens the pool O_RDWR
 *     itself (the kernel decides) and hands the descriptor over.  A refusal
 *     anywhere leaves the mount on the kernel path, silently, for good.
 *   - An operation (io): a thread slot, rt_enter, and if the version is the
 *     map's, the copy (guarded for reads: a machine check sends the request
 *     to the kernel, whose daemon then lists the damage; persisted for
 *     writes).  Otherwise a new map from the daemon (DP_MAP), or the
 *     kernel: for the kernel bit (the page cache holds the file, or media
 *     errors are being changed), for a range past the size, a hole or a
 *     block with a known bad sector in a write, for bytes the map window
 *     does not reach after a refresh, for an O_APPEND or set-id file.
 *   - read, write, readv, writev and lseek keep the description's offset
 *     here (pos), with no system call, while the description is this
 *     registration's alone (ownpos): from its open in this process, not
 *     O_APPEND.  Whatever lets another party see the description, or asks
 *     the kernel for its offset, first writes pos back into the kernel and
 *     leaves the offset to it for good (mnt_unown): dup, fork (before it),
 *     exec, posix_spawn, system and popen (handoff.c), a descriptor sent
 *     over a socket, fdopen, sendfile, splice and copy_file_range without
 *     an offset, a preadv2 or pwritev2 at -1 with flags the shim does not
 *     serve, lockf and fcntl locks relative to SEEK_CUR, FIONREAD,
 *     O_APPEND set by F_SETFL.  Then read and write take the kernel's offset with the
 *     registration's offset lock held: lseek(SEEK_CUR), the copy,
 *     lseek(SEEK_SET), the fallback under the same lock.  Not covered: a
 *     raw system call on the descriptor (syscall(2), io_uring at offset
 *     -1) and /proc/PID/fdinfo's pos, which show the offset of the last
 *     write-back (docs/MULTIPROC.md).
 *   - A direct write moves the file's times through the daemon (DP_TOUCH)
 *     at the registration's first direct write and at its close.
 *   - Registrations go at close, dup2/dup3 onto them, close_range,
 *     closefrom and fdopen (whose FILE the C library closes behind the
 *     shim).  A descriptor closed behind the shim's back (a raw system
 *     call) leaves a registration that a later open of the same number
 *     replaces; until then, reads of that number would see the old file.
 *   - The daemon's socket is the one descriptor the shim keeps: closing
 *     it, or a dup2 onto it, first takes the mount off the direct path and
 *     waits for this process's operations in progress (mnt_guard).
 *   - fork: the child's copy of the table is unusable (rt_usable); its
 *     first operation admits it again on its own connection.  exec: the
 *     socket is close-on-exec and the new program starts afresh (inherited
 *     descriptors then take the kernel path).
 *
 * Lock rules: mnt_lock guards the mount list and admission; a
 * registration's rwlock is held for reading by every operation on it and
 * for writing by a map refresh and by its end; its offset lock is taken
 * before its rwlock.  Registrations are never freed (a recycled one is
 * reinitialised under its write lock), so a racing close cannot make an
 * operation touch freed memory.
 */
#include "preload/shim.h"
#include "common/dataproto.h"
#include "common/readers.h"
#include "dev/mcsafe.h"
#include "dev/persist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <stdio.h>
#include <unistd.h>

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif

#define NMNT 16 /* file systems remembered, poise mounts and others */
#define DIRECT_MAX (1u << 20) /* larger calls go to the kernel */
#define BLK 4096ULL

struct mnt {
	dev_t dev;
	int state;     /* 1: direct path; -1: the kernel's (not poise, refused, lost) */
	int sock;
	char sockpath[108];
	char pool[4096];
	uint8_t *base;
	uint64_t size;
	uint32_t flags; /* DP_* */
	unsigned epoch; /* admissions so far (a thread's slot is of one) */
	struct rt_user u;
	pthread_mutex_t sock_lock; /* one request and its answer at a time */
};

struct mfile {
	pthread_rwlock_t lock;
	pthread_mutex_t offlock;
	int fd;        /* the number it is registered at, -1 when ended */
	struct mnt *m;
	uint64_t ino;
	int acc, append, flags;
	int shared;    /* atomic: its description may be another number's too (dup,
			* fork): read and write then go to the kernel, whose
			* offset updates are atomic */
	int ownpos;    /* the description's offset is pos, not the kernel's (under offlock) */
	off_t pos;     /* under offlock */
	int kfd;       /* the companion: the same file opened O_DIRECT for the
			* calls the shim sends to the kernel (no page cache, so
			* they never turn the kernel bit on, and an O_DIRECT write
			* drops what pages others have); -1 none yet, -2 none to
			* be had.  Under kfd_lock */
	pthread_mutex_t kfd_lock;
	int dirty;     /* atomic: written directly since the last DP_TOUCH */
	uint64_t ver;  /* the map's version; UINT64_MAX: none yet */
	int nomap;     /* the daemon gave none at ver: the kernel's until it moves */
	int grant;     /* with the map: the grant whose word holds the size past map.size, or -1 */
	int holder;    /* ... which this process holds: it may append into [size, gend) */
	uint64_t gend;
	unsigned extends; /* atomic: extending writes sent to the kernel (the second asks for a grant) */
	unsigned nogrow;  /* atomic: grants refused */
	int granted;   /* atomic: it held a grant (its close settles it) */
	uint64_t faulted; /* the file block up to which the grant's space is mapped in (populate) */
	struct poise_fmap map;
	struct mfile *next_free;
};

static struct mnt mnts[NMNT];
static int nmnt;
static pthread_mutex_t mnt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mfile *mtab[SHIM_MAXFD];
static struct mfile *kowner[SHIM_MAXFD]; /* companion number -> its registration */
static int kfd_top = -1;                 /* the highest companion number so far */
static int mtab_top = -1;                /* the highest registered number so far */
static struct mfile *free_list;
static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- counts, for tests: POISE_SHIM_STATS=1 prints them on stderr at
 * exit, POISE_SHIM_STATS=/a/file appends them to that file (a program
 * may close its stderr before its exit handlers end, as coreutils do) ---- */

static int stats_on;
static char stats_path[256];
static uint64_t n_direct[2], n_kernel[2]; /* [write] */

static void stats_print(void)
{
	char line[200];
	int n = snprintf(line, sizeof(line),
			 "poise-preload: mount: %llu direct reads, %llu direct writes, %llu kernel reads, %llu kernel writes\n",
			 (unsigned long long)n_direct[0], (unsigned long long)n_direct[1], (unsigned long long)n_kernel[0],
			 (unsigned long long)n_kernel[1]);
	int fd = stats_path[0] ? real_open(stats_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644) : 2;
	if (fd >= 0 && n > 0 && write(fd, line, (size_t)n) < 0)
		(void)0;
	if (fd > 2)
		real_close(fd);
}

__attribute__((constructor)) static void stats_init(void)
{
	const char *e = secure_getenv("POISE_SHIM_STATS");
	if (e && (!strcmp(e, "1") || (e[0] == '/' && strlen(e) < sizeof(stats_path)))) {
		if (e[0] == '/')
			snprintf(stats_path, sizeof(stats_path), "%s", e);
		stats_on = 1;
		atexit(stats_print);
	}
}

static void count(int write, int served)
{
	if (__builtin_expect(stats_on, 0))
		__atomic_add_fetch(served ? &n_direct[write] : &n_kernel[write], 1, __ATOMIC_RELAXED);
}

/* This thread is inside a call of this file (a signal handler's I/O then
 * goes to the kernel: its slot, offset lock and map lock are taken). */
static __thread int t_busy;

/* ---- thread slots ---- */

static __thread int t_slot[NMNT];       /* slot + 1, 0: none */
static __thread unsigned t_epoch[NMNT];
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void slots_put(void *arg)
{
	(void)arg;
	for (int i = 0; i < NMNT; i++)
		if (t_slot[i] && t_epoch[i] == mnts[i].epoch && rt_usable(&mnts[i].u))
			rt_slot_put(&mnts[i].u, t_slot[i] - 1);
}

static void slot_key_make(void)
{
	(void)pthread_key_create(&slot_key, slots_put);
}

/* This thread's slot of mount m, or -1 (all taken: the kernel path). */
static int slot_of(struct mnt *m)
{
	int i = (int)(m - mnts);
	if (t_slot[i] && t_epoch[i] == __atomic_load_n(&m->epoch, __ATOMIC_ACQUIRE))
		return t_slot[i] - 1;
	int s = rt_slot_get(&m->u);
	if (s < 0)
		return -1;
	pthread_once(&slot_once, slot_key_make);
	(void)pthread_setspecific(slot_key, (void *)1); /* so the destructor runs at thread exit */
	t_slot[i] = s + 1;
	t_epoch[i] = m->epoch;
	return s;
}

/* ---- the daemon ---- */

/* One request, one answer of exactly alen bytes (and the descriptor it
 * carries when tfd): 0 or -1.  m->sock_lock held. */
static int ask(struct mnt *m, const struct dp_req *r, int pfd, void *ans, size_t alen, int *tfd)
{
	union dp_cmsg u;
	struct iovec v = {(void *)r, sizeof(*r)};
	struct msghdr msg = {.msg_iov = &v, .msg_iovlen = 1};
	dp_attach_fd(&msg, &u, pfd);
	ssize_t n;
	do
		n = NEXT(sendmsg)(m->sock, &msg, MSG_NOSIGNAL); /* (not the shim's: no descriptor of ours) */
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*r)) {
		__atomic_store_n(&m->state, -1, __ATOMIC_RELEASE); /* the daemon is gone or dropped us */
		return -1;
	}
	struct iovec av = {ans, alen};
	struct msghdr am = {.msg_iov = &av, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	do
		n = recvmsg(m->sock, &am, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	int got = -1;
	for (struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&am) : NULL; h; h = CMSG_NXTHDR(&am, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && h->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&got, CMSG_DATA(h), sizeof(int));
	if (tfd)
		*tfd = got;
	else if (got >= 0)
		real_close(got);
	if (n <= 0)
		__atomic_store_n(&m->state, -1, __ATOMIC_RELEASE); /* no answer: the daemon is gone, or dropped us */
	if (n != (ssize_t)alen || (am.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || *(uint32_t *)ans != DP_MAGIC) {
		if (tfd && got >= 0)
			real_close(got);
		if (tfd)
			*tfd = -1;
		return -1;
	}
	return 0;
}

/* Is sock a data socket in the runtime directory of root or of this user
 * (the daemon's answer is not trusted to name anything else)? */
static int plausible_socket(const char *sock)
{
	char dir[256];
	uid_t uids[2] = {0, geteuid()};
	for (int i = 0; i < 2; i++) {
		if (poise_runtime_dir(uids[i], 0, dir, sizeof(dir)) < 0)
			continue;
		size_t n = strlen(dir);
		if (!strncmp(sock, dir, n) && !strncmp(sock + n, "/data-", 6) && !strchr(sock + n + 1, '/'))
			return 1;
	}
	return 0;
}

/* Connect to sock, whose listener must be root or this user: the socket
 * (close-on-exec), or -1. */
static int dial(const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof(a.sun_path) || !plausible_socket(sock))
		return -1;
	strcpy(a.sun_path, sock);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	struct timeval tv = {5, 0}; /* a daemon that stops answering: the kernel's path, not a hang */
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || (cr.uid != 0 && cr.uid != geteuid())) {
		if (s >= 0)
			real_close(s);
		return -1;
	}
	return s;
}

/* Admit this process on m's socket (m->sock connected): the pool mapped
 * (when not yet) and the table.  0 or -1.  mnt_lock held. */
static int admit(struct mnt *m)
{
	struct dp_req r = {.magic = DP_MAGIC, .op = DP_ADMIT};
	struct dp_admit a;
	int pfd = real_open(m->pool, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK), tfd = -1;
	struct stat st;
	if (pfd < 0 || fstat(pfd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
		if (pfd >= 0)
			real_close(pfd);
		return -1;
	}
	pthread_mutex_lock(&m->sock_lock);
	int ok = ask(m, &r, pfd, &a, sizeof(a), &tfd) == 0 && a.rc == 0 && tfd >= 0 && a.mount_dev == m->dev &&
		 a.pool_size >= BLK && (!S_ISREG(st.st_mode) || (uint64_t)st.st_size >= a.pool_size);
	pthread_mutex_unlock(&m->sock_lock);
	if (ok && !m->base) {
		void *b = mmap(NULL, a.pool_size, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, pfd, 0);
		if (b == MAP_FAILED)
			b = mmap(NULL, a.pool_size, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
		if (b == MAP_FAILED || poise_mc_init() < 0 || poise_mc_register(b, a.pool_size) < 0 ||
		    poise_persist_init() < 0) {
			if (b != MAP_FAILED)
				munmap(b, a.pool_size);
			ok = 0;
		} else {
			/* a forked child does not inherit it: it may have dropped the
			 * privileges that got it, and must be admitted on its own */
			(void)madvise(b, a.pool_size, MADV_DONTFORK);
			m->base = b;
			m->size = a.pool_size;
		}
	}
	ok = ok && a.pool_size == m->size;
	if (ok) {
		struct rt_user nu;
		ok = rt_user_map(&nu, tfd, a.p) == 0;
		if (ok) {
			(void)madvise(nu.t, sizeof(*nu.t), MADV_DONTFORK);
			if (m->u.t)
				rt_user_unmap(&m->u); /* a forked child's copy of the parent's */
			m->u = nu;
			m->flags = a.flags;
			__atomic_add_fetch(&m->epoch, 1, __ATOMIC_RELEASE);
		}
	}
	if (tfd >= 0)
		real_close(tfd);
	real_close(pfd);
	return ok ? 0 : -1;
}

/* In a forked child: the pool and table mappings were not inherited
 * (MADV_DONTFORK), and the parent's connection is the parent's. */
static void forked(void)
{
	/* locks another thread held at the fork stay held in the child: made
	 * anew, and the registrations (whose locks may be held) forgotten
	 * without them: the child's inherited descriptors take the kernel
	 * path (they share their descriptions with the parent anyway) */
	pthread_mutex_init(&mnt_lock, NULL);
	pthread_mutex_init(&free_lock, NULL);
	for (int fd = 0; fd < SHIM_MAXFD; fd++)
		__atomic_store_n(&mtab[fd], NULL, __ATOMIC_RELAXED);
	for (int k = 0; k < SHIM_MAXFD; k++)
		__atomic_store_n(&kowner[k], NULL, __ATOMIC_RELAXED);
	free_list = NULL;
	for (int i = 0; i < nmnt; i++) {
		struct mnt *m = &mnts[i];
		pthread_mutex_init(&m->sock_lock, NULL);
		if (m->base)
			poise_mc_unregister(m->base);
		m->base = NULL;
		m->size = 0;
		m->u.t = NULL; /* unmapped here: rt_usable is false until admitted */
		if (m->sock >= 0)
			real_close(m->sock);
		m->sock = -1;
	}
}

/* Before fork: every description is about to be the child's too (its
 * offset the kernel's from now on).  In the parent after it, again, for a
 * registration another thread made meanwhile. */
static void forking(void)
{
	mnt_unown_all();
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void watch_fork(void)
{
	pthread_atfork(forking, forking, forked);
}

/* The mount of a descriptor on device dev (st of the file): its entry,
 * found or made (admitted when it is a poise mount); NULL when the list
 * is full.  mnt_lock held. */
static struct mnt *mount_of(int fd, dev_t dev)
{
	for (int i = 0; i < nmnt; i++)
		if (mnts[i].dev == dev)
			return &mnts[i];
	if (nmnt == NMNT)
		return NULL;
	pthread_once(&fork_once, watch_fork);
	struct mnt *m = &mnts[nmnt];
	memset(m, 0, offsetof(struct mnt, u));
	pthread_mutex_init(&m->sock_lock, NULL);
	m->dev = dev;
	m->state = -1;
	m->sock = -1;
	__atomic_store_n(&nmnt, nmnt + 1, __ATOMIC_RELEASE);
	struct statfs sf;
	struct dp_hello h;
	memset(&h, 0, sizeof(h));
	if (fstatfs(fd, &sf) < 0 || sf.f_type != FUSE_SUPER_MAGIC || ioctl(fd, DP_IOC_HELLO, &h) < 0 ||
	    h.magic != DP_MAGIC || !memchr(h.sock, 0, sizeof(h.sock)))
		return m; /* not a poise mount (or one without a data channel): the kernel's */
	if ((m->sock = dial(h.sock)) < 0)
		return m;
	snprintf(m->sockpath, sizeof(m->sockpath), "%s", h.sock);
	struct dp_req r = {.magic = DP_MAGIC, .op = DP_WHO};
	struct dp_who *w = malloc(sizeof(*w));
	pthread_mutex_lock(&m->sock_lock);
	int ok = w && ask(m, &r, -1, w, sizeof(*w), NULL) == 0 && w->rc == 0 && w->mount_dev == dev &&
		 memchr(w->pool, 0, sizeof(w->pool)) && w->pool[0] == '/';
	pthread_mutex_unlock(&m->sock_lock);
	if (ok)
		snprintf(m->pool, sizeof(m->pool), "%s", w->pool);
	free(w);
	if (ok && admit(m) == 0) {
		__atomic_store_n(&m->state, 1, __ATOMIC_RELEASE);
	} else {
		real_close(m->sock);
		m->sock = -1;
	}
	return m;
}

/* After fork: the child's own admission, on its own connection.  1 when
 * m is usable. */
static int readmit(struct mnt *m)
{
	pthread_mutex_lock(&mnt_lock);
	if (__atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == 1 && !rt_usable(&m->u)) {
		/* the parent's connection and mapping stayed the parent's
		 * (forked()): a new connection, a new mapping */
		if (m->sock >= 0)
			real_close(m->sock);
		m->sock = dial(m->sockpath);
		if (m->sock < 0 || admit(m) < 0) {
			if (m->sock >= 0)
				real_close(m->sock);
			m->sock = -1;
			__atomic_store_n(&m->state, -1, __ATOMIC_RELEASE);
		}
	}
	int ok = __atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == 1 && rt_usable(&m->u);
	pthread_mutex_unlock(&mnt_lock);
	return ok;
}

/* ---- registrations ---- */

static struct mfile *mfile_new(void)
{
	pthread_mutex_lock(&free_lock);
	struct mfile *f = free_list;
	if (f)
		free_list = f->next_free;
	pthread_mutex_unlock(&free_lock);
	if (!f && (f = calloc(1, sizeof(*f)))) {
		pthread_rwlock_init(&f->lock, NULL);
		pthread_mutex_init(&f->offlock, NULL);
		pthread_mutex_init(&f->kfd_lock, NULL);
		f->fd = -1;
		f->kfd = -1;
	}
	return f;
}

/* A request about f's inode with a dp_ans answer: DP_TOUCH (its times
 * after direct writes), DP_GROW (space to append into up to byte arg),
 * DP_SETTLE (the appends are over; arg 1: the times too).  Its rc, or -1. */
static int request(struct mfile *f, int op, uint64_t arg)
{
	struct mnt *m = f->m;
	struct dp_req r = {.magic = DP_MAGIC, .op = (uint32_t)op, .ino = f->ino, .off = arg};
	struct dp_ans a;
	if (!rt_usable(&m->u))
		return -1; /* a forked child's first act: its parent's connection is not its own */
	pthread_mutex_lock(&m->sock_lock);
	int r0 = ask(m, &r, -1, &a, sizeof(a), NULL) == 0 ? a.rc : -1;
	pthread_mutex_unlock(&m->sock_lock);
	return r0;
}

void mnt_forget(int fd)
{
	if (fd < 0 || fd >= SHIM_MAXFD || !__atomic_load_n(&mtab[fd], __ATOMIC_ACQUIRE))
		return;
	struct mfile *f = __atomic_exchange_n(&mtab[fd], NULL, __ATOMIC_ACQ_REL);
	if (!f || t_busy)
		return; /* (a signal handler's close inside the shim: the registration is left, not reused) */
	pthread_mutex_lock(&f->offlock);
	pthread_rwlock_wrlock(&f->lock); /* operations in progress end first */
	int dirty = __atomic_exchange_n(&f->dirty, 0, __ATOMIC_ACQ_REL);
	__atomic_store_n(&f->fd, -1, __ATOMIC_RELAXED);
	f->ownpos = 0;
	pthread_mutex_unlock(&f->offlock);
	pthread_mutex_lock(&f->kfd_lock);
	if (f->kfd >= 0) {
		__atomic_store_n(&kowner[f->kfd], NULL, __ATOMIC_RELEASE);
		real_close(f->kfd);
	}
	f->kfd = -1;
	pthread_mutex_unlock(&f->kfd_lock);
	int granted = __atomic_exchange_n(&f->granted, 0, __ATOMIC_ACQ_REL);
	pthread_rwlock_unlock(&f->lock);
	if (granted || dirty) /* (DP_SETTLE with 1 moves the times too) */
		(void)request(f, granted ? DP_SETTLE : DP_TOUCH, dirty ? 1 : 0);
	pthread_mutex_lock(&free_lock);
	f->next_free = free_list;
	free_list = f;
	pthread_mutex_unlock(&free_lock);
}

void mnt_opened(int fd, int flags)
{
	if (fd < 0 || fd >= SHIM_MAXFD || (flags & O_PATH) || shim_shared_child())
		return;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	pthread_mutex_lock(&mnt_lock);
	struct mnt *m = mount_of(fd, st.st_dev);
	int on = m && __atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == 1 &&
		 !((flags & O_DIRECT) && (m->flags & DP_ODIRECT_BLOCK)); /* the 2016 design, measured as it is */
	pthread_mutex_unlock(&mnt_lock);
	mnt_forget(fd); /* a number closed behind the shim's back */
	if (!on)
		return;
	struct mfile *f = mfile_new();
	if (!f)
		return;
	pthread_mutex_lock(&f->offlock);
	pthread_rwlock_wrlock(&f->lock);
	__atomic_store_n(&f->fd, fd, __ATOMIC_RELAXED);
	f->ownpos = !(flags & O_APPEND); /* a new description: its offset is 0, the kernel's too */
	f->pos = 0;
	f->m = m;
	f->ino = st.st_ino;
	f->acc = flags & O_ACCMODE;
	f->append = !!(flags & O_APPEND);
	f->flags = flags;
	f->shared = 0;
	f->dirty = 0;
	f->ver = UINT64_MAX;
	f->nomap = 0;
	f->grant = -1;
	f->holder = 0;
	f->extends = f->nogrow = 0;
	f->granted = 0;
	f->faulted = 0;
	pthread_rwlock_unlock(&f->lock);
	pthread_mutex_unlock(&f->offlock);
	__atomic_store_n(&mtab[fd], f, __ATOMIC_RELEASE);
	int top;
	while ((top = __atomic_load_n(&mtab_top, __ATOMIC_ACQUIRE)) < fd &&
	       !__atomic_compare_exchange_n(&mtab_top, &top, fd, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

/* ---- the daemon's socket ---- */

void mnt_guard(int lo, int hi)
{
	/* a companion the program closes (closefrom): the kernel's own
	 * descriptor is used instead from then on */
	int top = __atomic_load_n(&kfd_top, __ATOMIC_ACQUIRE);
	for (int k = lo < 0 ? 0 : lo; k <= hi && k <= top; k++) {
		struct mfile *f = __atomic_load_n(&kowner[k], __ATOMIC_ACQUIRE);
		if (!f)
			continue;
		pthread_mutex_lock(&f->kfd_lock);
		if (f->kfd == k) {
			f->kfd = -2; /* the program's close closes it */
			__atomic_store_n(&kowner[k], NULL, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&f->kfd_lock);
	}
	int n = __atomic_load_n(&nmnt, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++) {
		struct mnt *m = &mnts[i];
		if (m->sock < lo || m->sock > hi || __atomic_load_n(&m->state, __ATOMIC_ACQUIRE) != 1)
			continue;
		/* the program closes the socket (or writes over its number):
		 * the direct path ends here, once this process's operations in
		 * progress have (the daemon reclaims its slots when the socket
		 * goes) */
		__atomic_store_n(&m->state, -1, __ATOMIC_SEQ_CST);
		if (rt_usable(&m->u))
			for (int s = 0; s < RT_NTHR; s++)
				while (__atomic_load_n(&m->u.t->slot[m->u.p][s].active, __ATOMIC_SEQ_CST))
					sched_yield();
		pthread_mutex_lock(&m->sock_lock);
		m->sock = -1; /* the program's close closes it */
		pthread_mutex_unlock(&m->sock_lock);
	}
}

/* ---- the data path ---- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
/* The grant's space in f's map gets its page tables now, in one call, not
 * a fault per page at each append (a fault costs more than the copy).  f's
 * lock held for writing. */
static void populate(struct mfile *f)
{
	uint64_t from = f->map.size / BLK, to = (f->gend + BLK - 1) / BLK;
	if (f->faulted > from)
		from = f->faulted;
	for (uint32_t i = 0; i < f->map.n && from < to; i++) {
		const struct poise_fmap_ext *e = &f->map.ext[i];
		uint64_t a = e->fblk > from ? e->fblk : from, b = e->fblk + e->nblk < to ? e->fblk + e->nblk : to;
		if (a < b && !e->bad)
			(void)madvise(f->m->base + (e->pblk + a - e->fblk) * BLK, (b - a) * BLK, MADV_POPULATE_WRITE);
	}
	if (to > f->faulted)
		f->faulted = to;
}

/* Fetch f's map around byte off.  f's lock held for writing. */
static void refresh(struct mfile *f, uint64_t off)
{
	struct mnt *m = f->m;
	struct dp_req r = {.magic = DP_MAGIC, .op = DP_MAP, .ino = f->ino, .off = off};
	struct dp_map *a = malloc(sizeof(*a));
	uint64_t v = rt_ver(m->u.t, f->ino);
	pthread_mutex_lock(&m->sock_lock);
	int ok = a && __atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == 1 &&
		 ask(m, &r, -1, a, sizeof(*a), NULL) == 0 && a->rc == 0 && a->m.n <= POISE_FMAP_MAX;
	pthread_mutex_unlock(&m->sock_lock);
	for (uint32_t i = 0; ok && i < a->m.n; i++) { /* every block inside the pool */
		const struct poise_fmap_ext *e = &a->m.ext[i];
		ok = e->pblk && e->nblk && e->pblk < m->size / BLK && e->nblk <= m->size / BLK - e->pblk &&
		     e->fblk + e->nblk > e->fblk;
	}
	ok = ok && a->grant >= -1 && a->grant < RT_NGRANT;
	if (ok) {
		f->map = a->m;
		f->ver = a->ver;
		f->nomap = 0;
		f->grant = a->grant;
		f->holder = a->grant >= 0 && a->holder == 1;
		f->gend = a->grant >= 0 ? a->gend : 0;
		struct rlimit rl; /* appends past RLIMIT_FSIZE are the kernel's (SIGXFSZ, EFBIG) */
		if (f->holder && getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		    f->gend > rl.rlim_cur)
			f->gend = rl.rlim_cur > f->map.size ? rl.rlim_cur : f->map.size;
		if (f->holder) {
			__atomic_store_n(&f->granted, 1, __ATOMIC_RELEASE);
			populate(f);
		} else {
			f->faulted = 0;
		}
	} else {
		f->grant = -1;
		f->holder = 0;
		f->faulted = 0;
		f->ver = v; /* no map: the kernel's until the version moves */
		f->nomap = 1;
	}
	free(a);
}

/* The extent of map mp holding file block b, or NULL (a hole). */
static const struct poise_fmap_ext *ext_of(const struct poise_fmap *mp, uint64_t b)
{
	uint32_t lo = 0, hi = mp->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		const struct poise_fmap_ext *e = &mp->ext[mid];
		if (b < e->fblk)
			hi = mid;
		else if (b >= e->fblk + e->nblk)
			lo = mid + 1;
		else
			return e;
	}
	return NULL;
}

/* May f be written here at all? */
static int writable(const struct mfile *f)
{
	const struct poise_fmap *mp = &f->map;
	return !f->append && f->acc != O_RDONLY && !(f->m->flags & (DP_READONLY | DP_NEED_MSYNC)) &&
	       !(mp->mode & S_ISUID) && !((mp->mode & S_ISGID) && (mp->mode & S_IXGRP));
}

/* Can [off, off+len) be served from the map, the file being size bytes?
 * 1 yes, 0 the kernel's, -1 outside the window (a refresh at off may serve
 * it).  *len is clipped to the size for reads; a write past the size is
 * served only by a grant's holder, from at most the size to at most its
 * space's end. */
static int servable(const struct mfile *f, uint64_t off, size_t *len, int write, uint64_t size)
{
	const struct poise_fmap *mp = &f->map;
	if (write) {
		if (!writable(f))
			return 0;
		if (off > size || (*len > size - off && (!f->holder || off + *len > f->gend)))
			return 0; /* it extends the file: the daemon's, or the grant's */
	} else {
		if (f->acc == O_WRONLY)
			return 0;
		if (off >= size) {
			*len = 0;
			return 1;
		}
		if (*len > size - off)
			*len = size - off;
	}
	if (*len == 0)
		return 1;
	uint64_t b0 = off / BLK, b1 = (off + *len - 1) / BLK;
	if (b0 < mp->start || b1 >= mp->end)
		return -1;
	for (uint64_t b = b0; b <= b1;) {
		const struct poise_fmap_ext *e = ext_of(mp, b);
		if (e && e->bad)
			return 0;
		if (!e && write)
			return 0; /* a hole: the daemon allocates */
		if (!e) {
			b++;
			continue;
		}
		b = e->fblk + e->nblk;
	}
	return 1;
}

/* Copy between the iovecs and file bytes [off, off+len) as the map says.
 * 0, or -1 when a read met a machine check or a write a page the mapping
 * refuses (poison found since the map was fetched): the kernel then, whose
 * daemon writes the whole range again (clearing what it must). */
static int copy(struct mfile *f, const struct iovec *iov, int cnt, uint64_t off, size_t len, int write)
{
	const struct poise_fmap *mp = &f->map;
	uint8_t *base = f->m->base;
	size_t done = 0;
	int i = 0;
	size_t ioff = 0;
	while (done < len) {
		while (ioff == iov[i].iov_len) {
			i++;
			ioff = 0;
		}
		uint64_t pos = off + done, b = pos / BLK, boff = pos % BLK;
		const struct poise_fmap_ext *e = ext_of(mp, b);
		size_t piece = e ? (size_t)((e->fblk + e->nblk - b) * BLK - boff) : (size_t)(BLK - boff);
		if (piece > len - done)
			piece = len - done;
		if (piece > iov[i].iov_len - ioff)
			piece = iov[i].iov_len - ioff;
		uint8_t *u = (uint8_t *)iov[i].iov_base + ioff;
		if (!e) {
			memset(u, 0, piece); /* a hole (reads only) */
		} else {
			uint8_t *p = base + (e->pblk + (b - e->fblk)) * BLK + boff;
			uint64_t fault;
			if (write) {
				int nt = piece >= 256;
				if (poise_mc_copy(p, u, piece, nt, &fault) != piece) {
					poise_fence(); /* (what landed is written again) */
					return -1;
				}
				if (nt) {
					poise_flush(p, 16);
					poise_flush(p + piece - 16, 16);
				} else {
					poise_flush(p, piece);
				}
			} else if (poise_mc_copy(u, p, piece, 0, &fault) != piece) {
				return -1;
			}
		}
		done += piece;
		ioff += piece;
	}
	if (write)
		poise_fence();
	return 0;
}

static size_t iov_len(const struct iovec *iov, int cnt)
{
	size_t n = 0;
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > SSIZE_MAX - n)
			return SSIZE_MAX + (size_t)1;
		n += iov[i].iov_len;
	}
	return n;
}

/* Serve an I/O of fd at off directly: 1 with *ret the count, 0 when the
 * kernel must. */
static int io(int fd, const struct iovec *iov, int cnt, off_t off, int write, ssize_t *ret)
{
	struct mfile *f = fd >= 0 && fd < SHIM_MAXFD ? __atomic_load_n(&mtab[fd], __ATOMIC_ACQUIRE) : NULL;
	if (!f || off < 0 || cnt <= 0 || cnt > IOV_MAX)
		return 0;
	size_t len = iov_len(iov, cnt);
	if (len > SSIZE_MAX || (uint64_t)off + len < (uint64_t)off)
		return 0;
	struct mnt *m = f->m;
	if (__atomic_load_n(&m->state, __ATOMIC_ACQUIRE) != 1 || (!rt_usable(&m->u) && !readmit(m)))
		return 0;
	if (len > DIRECT_MAX)
		return 0; /* the daemon's drains wait for an operation a bounded time */
	int s = slot_of(m), served = 0, asked = 0;
	if (s < 0)
		return 0;
	pthread_rwlock_rdlock(&f->lock);
	for (int tries = 0; f->fd == fd && f->m == m && tries < 4; tries++) { /* (recycled meanwhile: the kernel's) */
		uint64_t v = rt_enter(&m->u, s, f->ino);
		if (!rt_alive(&m->u)) { /* after the slot is up: the daemon is gone (or stalled), for good */
			rt_leave(&m->u, s);
			__atomic_store_n(&m->state, -1, __ATOMIC_RELEASE);
			break;
		}
		if (rt_kernel_bit(v)) {
			/* the kernel's while the bit is set, whatever the map (no
			 * fetch) */
			rt_leave(&m->u, s);
			break;
		}
		if (v == f->ver && !f->nomap && __atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == 1) {
			uint64_t size = f->map.size;
			if (f->grant >= 0) { /* the grant's word, then the version again (readers.h) */
				uint64_t w = rt_grant_size(m->u.t, f->grant, f->ino, f->gend);
				if (w > size)
					size = w;
				if (rt_ver(m->u.t, f->ino) != v) {
					rt_leave(&m->u, s);
					goto again;
				}
			}
			size_t n = len;
			int ok = servable(f, (uint64_t)off, &n, write, size);
			if (ok == 0 && write && (uint64_t)off + len > size && (!f->holder || (uint64_t)off + len > f->gend) &&
			    !asked && (uint64_t)off <= size && writable(f) &&
			    __atomic_add_fetch(&f->extends, 1, __ATOMIC_RELAXED) >= 2 &&
			    __atomic_load_n(&f->nogrow, __ATOMIC_RELAXED) < 4) {
				/* a second extending write: space to append into
				 * (the first goes to the kernel: a file written
				 * once costs no grant) */
				rt_leave(&m->u, s);
				asked = 1;
				int gr = request(f, DP_GROW, (uint64_t)off + len);
				if (gr != 0 && gr != -EAGAIN) /* (EAGAIN: the file was being changed) */
					__atomic_add_fetch(&f->nogrow, 1, __ATOMIC_RELAXED);
				goto again;
			}
			if (ok == 1 && copy(f, iov, cnt, (uint64_t)off, n, write) == 0) {
				/* an append is the file's once the word says so; a
				 * grant taken back meanwhile: the kernel writes it */
				int done = !write || (uint64_t)off + n <= f->map.size ||
					   rt_grant_publish(m->u.t, f->grant, (uint64_t)off + n);
				rt_leave(&m->u, s);
				if (!done)
					break;
				*ret = (ssize_t)n;
				served = 1;
				break;
			}
			rt_leave(&m->u, s);
			if (ok == 0 || tries > 0)
				break; /* the kernel's (or a machine check: the daemon lists the damage) */
		} else {
			rt_leave(&m->u, s);
			if (v == f->ver)
				break; /* no map at this version */
		}
	again:
		pthread_rwlock_unlock(&f->lock);
		pthread_rwlock_wrlock(&f->lock);
		if (f->fd == fd)
			refresh(f, (uint64_t)off);
		pthread_rwlock_unlock(&f->lock);
		pthread_rwlock_rdlock(&f->lock);
	}
	pthread_rwlock_unlock(&f->lock);
	if (served && write && *ret > 0 && !__atomic_exchange_n(&f->dirty, 1, __ATOMIC_ACQ_REL))
		(void)request(f, DP_TOUCH, 0);
	count(write, served);
	return served;
}

static struct mfile *reg(int fd)
{
	return fd >= 0 && fd < SHIM_MAXFD ? __atomic_load_n(&mtab[fd], __ATOMIC_ACQUIRE) : NULL;
}

/* The descriptor a call the shim cannot serve goes to: fd's companion
 * (opened on first use: the same file, O_DIRECT, through the mount), or fd
 * itself (not registered, an O_APPEND file, or no companion to be had). */
static int kernel_fd(int fd)
{
	struct mfile *f = reg(fd);
	if (!f || f->append)
		return fd;
	pthread_mutex_lock(&f->kfd_lock);
	if (f->kfd == -1 && f->fd == fd) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		int k = real_open(path, f->acc | O_DIRECT | O_CLOEXEC | (f->flags & O_NOATIME));
		struct stat a, b;
		if (k >= 0 && (k >= SHIM_MAXFD || fstat(k, &a) < 0 || fstat(fd, &b) < 0 || a.st_ino != b.st_ino ||
			       a.st_dev != b.st_dev)) {
			real_close(k);
			k = -1;
		}
		f->kfd = k >= 0 ? k : -2;
		if (k >= 0) {
			__atomic_store_n(&kowner[k], f, __ATOMIC_RELEASE);
			int top;
			while ((top = __atomic_load_n(&kfd_top, __ATOMIC_ACQUIRE)) < k &&
			       !__atomic_compare_exchange_n(&kfd_top, &top, k, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				;
		}
	}
	int k = f->fd == fd && f->kfd >= 0 ? f->kfd : fd;
	pthread_mutex_unlock(&f->kfd_lock);
	return k;
}

/* A positional call: direct, or the kernel's on fd's companion. */
static ssize_t pio(int fd, const struct iovec *iov, int cnt, off_t off, int write)
{
	if (t_busy || !reg(fd))
		return write ? NEXT(pwritev)(fd, iov, cnt, off) : NEXT(preadv)(fd, iov, cnt, off);
	t_busy = 1;
	ssize_t r;
	if (!io(fd, iov, cnt, off, write, &r)) {
		int k = kernel_fd(fd);
		r = write ? NEXT(pwritev)(k, iov, cnt, off) : NEXT(preadv)(k, iov, cnt, off);
	}
	t_busy = 0;
	return r;
}

ssize_t mnt_preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pio(fd, iov, cnt, off, 0);
}

ssize_t mnt_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pio(fd, iov, cnt, off, 1);
}

ssize_t mnt_pread(int fd, void *buf, size_t n, off_t off)
{
	if (!reg(fd))
		return NEXT(pread)(fd, buf, n, off);
	struct iovec v = {buf, n};
	return pio(fd, &v, 1, off, 0);
}

ssize_t mnt_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (!reg(fd))
		return NEXT(pwrite)(fd, buf, n, off);
	struct iovec v = {(void *)buf, n};
	return pio(fd, &v, 1, off, 1);
}

/* f's offset is the kernel's from now on: pos written back first.  f's
 * offlock held; fd its number. */
static void unown_locked(struct mfile *f, int fd)
{
	if (f->ownpos && __atomic_load_n(&f->fd, __ATOMIC_RELAXED) == fd)
		(void)NEXT(lseek)(fd, f->pos, SEEK_SET); /* (fails only for a number closed behind the shim) */
	f->ownpos = 0;
}

void mnt_unown(int fd)
{
	struct mfile *f = reg(fd);
	if (!f)
		return;
	pthread_mutex_lock(&f->offlock);
	unown_locked(f, fd);
	pthread_mutex_unlock(&f->offlock);
}

void mnt_unown_all(void)
{
	int top = __atomic_load_n(&mtab_top, __ATOMIC_ACQUIRE);
	for (int fd = 0; fd <= top; fd++) {
		struct mfile *f = reg(fd);
		if (!f)
			continue;
		pthread_mutex_lock(&f->offlock);
		unown_locked(f, fd);
		__atomic_store_n(&f->shared, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&f->offlock);
	}
}

/* read, write, readv, writev: at f's own offset while it has one (every
 * call then positional: direct, or the kernel's on the companion or on fd
 * itself), else at the kernel's offset of the description; kernel(fd)
 * does the call the C library's way when the shim cannot. */
static ssize_t rw(struct mfile *f, int fd, const struct iovec *iov, int cnt, int write,
		  ssize_t (*kernel)(int, const struct iovec *, int))
{
	if (__atomic_load_n(&f->shared, __ATOMIC_RELAXED))
		return kernel(fd, iov, cnt);
	if (t_busy) {
		/* inside the shim already (a signal handler): the kernel's, at
		 * the true offset when the lock is free (it may be this
		 * thread's own) */
		if (pthread_mutex_trylock(&f->offlock) == 0) {
			unown_locked(f, fd);
			pthread_mutex_unlock(&f->offlock);
		}
		return kernel(fd, iov, cnt);
	}
	t_busy = 1;
	pthread_mutex_lock(&f->offlock);
	ssize_t r;
	int k;
	if (__atomic_load_n(&f->fd, __ATOMIC_RELAXED) != fd) {
		r = kernel(fd, iov, cnt); /* ended meanwhile: the number is another's now */
	} else if (f->ownpos) {
		off_t cur = f->pos;
		if (!io(fd, iov, cnt, cur, write, &r)) {
			k = kernel_fd(fd);
			r = write ? NEXT(pwritev)(k, iov, cnt, cur) : NEXT(preadv)(k, iov, cnt, cur);
		}
		if (r > 0)
			f->pos = cur + r;
	} else {
		if (write && f->append)
			mnt_append_sync(fd);
		off_t cur = write && f->append ? -1 : NEXT(lseek)(fd, 0, SEEK_CUR);
		if (cur >= 0 && io(fd, iov, cnt, cur, write, &r)) {
			if (r > 0 && NEXT(lseek)(fd, cur + r, SEEK_SET) < 0)
				r = -1;
		} else if (cur >= 0 && (k = kernel_fd(fd)) != fd) {
			/* the companion at the description's offset, which then moves */
			r = write ? NEXT(pwritev)(k, iov, cnt, cur) : NEXT(preadv)(k, iov, cnt, cur);
			if (r > 0 && NEXT(lseek)(fd, cur + r, SEEK_SET) < 0)
				r = -1;
		} else {
			r = kernel(fd, iov, cnt);
		}
	}
	pthread_mutex_unlock(&f->offlock);
	t_busy = 0;
	return r;
}

off_t mnt_lseek(int fd, off_t off, int whence)
{
	struct mfile *f = reg(fd);
	if (!f || __atomic_load_n(&f->shared, __ATOMIC_RELAXED))
		return NEXT(lseek)(fd, off, whence);
	if (t_busy) { /* as in rw */
		if (pthread_mutex_trylock(&f->offlock) == 0) {
			unown_locked(f, fd);
			pthread_mutex_unlock(&f->offlock);
		}
		return NEXT(lseek)(fd, off, whence);
	}
	pthread_mutex_lock(&f->offlock);
	off_t r;
	if (!f->ownpos || __atomic_load_n(&f->fd, __ATOMIC_RELAXED) != fd) {
		r = NEXT(lseek)(fd, off, whence);
	} else if (whence == SEEK_SET || whence == SEEK_CUR) {
		/* as the kernel's: EINVAL below 0 or past the largest */
		off_t base = whence == SEEK_CUR ? f->pos : 0;
		if ((off > 0 && base > INT64_MAX - off) || base + off < 0) {
			errno = EINVAL;
			r = -1;
		} else {
			r = f->pos = base + off;
		}
	} else {
		/* SEEK_END, SEEK_DATA, SEEK_HOLE: the size and the holes are
		 * the daemon's; none depends on the offset, and the kernel's
		 * is then the answer too */
		r = NEXT(lseek)(fd, off, whence);
		if (r >= 0)
			f->pos = r;
	}
	pthread_mutex_unlock(&f->offlock);
	return r;
}

static ssize_t k_read(int fd, const struct iovec *iov, int cnt)
{
	(void)cnt;
	return NEXT(read)(fd, iov[0].iov_base, iov[0].iov_len);
}
static ssize_t k_write(int fd, const struct iovec *iov, int cnt)
{
	(void)cnt;
	return NEXT(write)(fd, iov[0].iov_base, iov[0].iov_len);
}
static ssize_t k_readv(int fd, const struct iovec *iov, int cnt)
{
	return NEXT(readv)(fd, iov, cnt);
}
static ssize_t k_writev(int fd, const struct iovec *iov, int cnt)
{
	return NEXT(writev)(fd, iov, cnt);
}

ssize_t mnt_read(int fd, void *buf, size_t n)
{
	struct mfile *f = reg(fd);
	struct iovec v = {buf, n};
	return f ? rw(f, fd, &v, 1, 0, k_read) : NEXT(read)(fd, buf, n);
}

ssize_t mnt_write(int fd, const void *buf, size_t n)
{
	struct mfile *f = reg(fd);
	struct iovec v = {(void *)buf, n};
	return f ? rw(f, fd, &v, 1, 1, k_write) : NEXT(write)(fd, buf, n);
}

ssize_t mnt_readv(int fd, const struct iovec *iov, int cnt)
{
	struct mfile *f = reg(fd);
	return f ? rw(f, fd, iov, cnt, 0, k_readv) : NEXT(readv)(fd, iov, cnt);
}

ssize_t mnt_writev(int fd, const struct iovec *iov, int cnt)
{
	struct mfile *f = reg(fd);
	return f ? rw(f, fd, iov, cnt, 1, k_writev) : NEXT(writev)(fd, iov, cnt);
}

int mnt_has(int fd)
{
	return reg(fd) != NULL;
}

void mnt_dup(int fd)
{
	struct mfile *f = reg(fd);
	if (!f)
		return;
	pthread_mutex_lock(&f->offlock);
	unown_locked(f, fd);
	__atomic_store_n(&f->shared, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&f->offlock);
}

void mnt_append_sync(int fd)
{
	struct stat st;
	if (reg(fd)) /* the attributes are dropped when a grant ends, and not cached while one stands */
		(void)fstat(fd, &st);
}

void mnt_setfl(int fd, int flags)
{
	struct mfile *f = reg(fd);
	if (!f)
		return;
	pthread_mutex_lock(&f->offlock);
	if (flags & O_APPEND)
		unown_locked(f, fd); /* the kernel moves an O_APPEND write's offset */
	pthread_rwlock_wrlock(&f->lock);
	if (f->fd == fd)
		f->append = !!(flags & O_APPEND);
	pthread_rwlock_unlock(&f->lock);
	pthread_mutex_unlock(&f->offlock);
}
