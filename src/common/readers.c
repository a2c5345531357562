/*
 * readers.c - the reader table (the protocol and its argument: readers.h).
 *
 * The owner's side: the table in a memory file (memfd, sealed against
 * shrinking so a process's mapping never faults), admission by pid with a
 * pidfd per process (an exit, kill -9 included, makes the pidfd readable;
 * the window before the pidfd is opened: readers.h), the scan, and the
 * list of deferred blocks.  The
 * user's side: mapping a handed-over table after checking it, and thread
 * slots from a bitmap.
 */
#include "common/readers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int rt_owner_init(struct rt_owner *o)
{
	memset(o, 0, sizeof(*o));
	for (int p = 0; p < RT_NPROC; p++)
		o->pidfd[p] = -1;
	o->fd = memfd_create("poise-readers", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (o->fd < 0)
		return -errno;
	struct rt_table *t = MAP_FAILED;
	if (ftruncate(o->fd, sizeof(struct rt_table)) < 0 ||
	    fcntl(o->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
	    (t = mmap(NULL, sizeof(struct rt_table), PROT_READ | PROT_WRITE, MAP_SHARED, o->fd, 0)) == MAP_FAILED) {
		int e = errno;
		close(o->fd);
		o->fd = -1;
		return -e;
	}
	o->t = t;
	t->h.magic = RT_MAGIC;
	t->h.nproc = RT_NPROC;
	t->h.nthr = RT_NTHR;
	t->h.nver = RT_NVER;
	__atomic_store_n(&t->h.gen, 1, __ATOMIC_SEQ_CST); /* 0 means idle */
	pthread_mutex_init(&o->lock, NULL);
	return 0;
}

void rt_owner_fini(struct rt_owner *o)
{
	if (!o->t)
		return;
	for (int p = 0; p < RT_NPROC; p++)
		if (o->pidfd[p] >= 0)
			close(o->pidfd[p]);
	munmap(o->t, sizeof(struct rt_table));
	close(o->fd);
	pthread_mutex_destroy(&o->lock);
	o->t = NULL;
}

static void clear_slots(struct rt_table *t, int p)
{
	for (int s = 0; s < RT_NTHR; s++)
		__atomic_store_n(&t->slot[p][s].active, 0, __ATOMIC_SEQ_CST);
}

int rt_attach(struct rt_owner *o, pid_t pid)
{
	if (pid <= 0)
		return -EINVAL;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return -errno;
	pthread_mutex_lock(&o->lock);
	for (int p = 0; p < RT_NPROC; p++)
		if (o->pid[p] == 0) {
			o->pid[p] = pid;
			o->aseq[p] = ++o->nseq;
			__atomic_add_fetch(&o->nattached, 1, __ATOMIC_RELAXED);
			o->pidfd[p] = pfd;
			clear_slots(o->t, p);
			pthread_mutex_unlock(&o->lock);
			return p;
		}
	pthread_mutex_unlock(&o->lock);
	close(pfd);
	return -EAGAIN;
}

static void detach_locked(struct rt_owner *o, int p)
{
	if (p < 0 || p >= RT_NPROC || o->pid[p] == 0)
		return;
	clear_slots(o->t, p);
	close(o->pidfd[p]);
	o->pidfd[p] = -1;
	o->pid[p] = 0;
	__atomic_sub_fetch(&o->nattached, 1, __ATOMIC_RELAXED);
}

void rt_detach(struct rt_owner *o, int p)
{
	pthread_mutex_lock(&o->lock);
	detach_locked(o, p);
	pthread_mutex_unlock(&o->lock);
}

uint64_t rt_attach_seq(struct rt_owner *o, int p)
{
	pthread_mutex_lock(&o->lock);
	uint64_t s = p >= 0 && p < RT_NPROC && o->pid[p] ? o->aseq[p] : 0;
	pthread_mutex_unlock(&o->lock);
	return s;
}

void rt_detach_if(struct rt_owner *o, int p, uint64_t seq)
{
	pthread_mutex_lock(&o->lock);
	if (p >= 0 && p < RT_NPROC && o->pid[p] && o->aseq[p] == seq)
		detach_locked(o, p);
	pthread_mutex_unlock(&o->lock);
}

int rt_reap(struct rt_owner *o)
{
	struct pollfd pf[RT_NPROC];
	int idx[RT_NPROC], n = 0, gone = 0;
	pthread_mutex_lock(&o->lock);
	for (int p = 0; p < RT_NPROC; p++)
		if (o->pid[p]) {
			pf[n] = (struct pollfd){.fd = o->pidfd[p], .events = POLLIN};
			idx[n++] = p;
		}
	if (n && poll(pf, (nfds_t)n, 0) > 0)
		for (int i = 0; i < n; i++)
			if (pf[i].revents) {
				detach_locked(o, idx[i]);
				gone++;
			}
	pthread_mutex_unlock(&o->lock);
	return gone;
}

uint64_t rt_bump(struct rt_owner *o, uint64_t ino)
{
	__atomic_add_fetch(&o->t->ver[ino % RT_NVER], 2, __ATOMIC_SEQ_CST); /* the kernel bit stays */
	return __atomic_add_fetch(&o->t->h.gen, 1, __ATOMIC_SEQ_CST);
}

/* The kernel bit of bucket h follows kcount[h] > 0; o->lock held. */
static void kernel_locked(struct rt_owner *o, uint32_t h, int on)
{
	if (on ? o->kcount[h]++ == 0 : o->kcount[h] && --o->kcount[h] == 0)
		__atomic_add_fetch(&o->t->ver[h], 1, __ATOMIC_SEQ_CST);
}

uint64_t rt_kernel(struct rt_owner *o, uint64_t ino, int on)
{
	pthread_mutex_lock(&o->lock);
	kernel_locked(o, (uint32_t)(ino % RT_NVER), on);
	pthread_mutex_unlock(&o->lock);
	return __atomic_add_fetch(&o->t->h.gen, 1, __ATOMIC_SEQ_CST);
}

uint64_t rt_kernel_all(struct rt_owner *o, int on)
{
	pthread_mutex_lock(&o->lock);
	for (uint32_t h = 0; h < RT_NVER; h++)
		kernel_locked(o, h, on);
	pthread_mutex_unlock(&o->lock);
	return __atomic_add_fetch(&o->t->h.gen, 1, __ATOMIC_SEQ_CST);
}

uint64_t rt_bump_all(struct rt_owner *o)
{
	for (uint32_t h = 0; h < RT_NVER; h++)
		__atomic_add_fetch(&o->t->ver[h], 2, __ATOMIC_SEQ_CST);
	return __atomic_add_fetch(&o->t->h.gen, 1, __ATOMIC_SEQ_CST);
}

int rt_wait(struct rt_owner *o, uint64_t g, int ms)
{
	struct timespec start, now, nap = {0, 20000};
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!rt_quiet(o, g)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= ms)
			return 0;
		nanosleep(&nap, NULL);
	}
	return 1;
}

void rt_renew(struct rt_owner *o, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	__atomic_store_n(&o->t->h.lease, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000u,
			 __ATOMIC_RELEASE);
}

uint64_t rt_tick(struct rt_owner *o)
{
	return __atomic_add_fetch(&o->t->h.gen, 1, __ATOMIC_SEQ_CST);
}

uint64_t rt_oldest(struct rt_owner *o)
{
	rt_reap(o);
	uint64_t min = UINT64_MAX;
	pthread_mutex_lock(&o->lock);
	for (int p = 0; p < RT_NPROC; p++) {
		if (!o->pid[p])
			continue;
		for (int s = 0; s < RT_NTHR; s++) {
			uint64_t a = __atomic_load_n(&o->t->slot[p][s].active, __ATOMIC_SEQ_CST);
			if (a && a < min)
				min = a;
		}
	}
	pthread_mutex_unlock(&o->lock);
	return min;
}

int rt_quiet(struct rt_owner *o, uint64_t g)
{
	return g <= __atomic_load_n(&o->t->h.gen, __ATOMIC_SEQ_CST) && g <= rt_oldest(o);
}

/* ---- deferred blocks ---- */

void rt_deferred_init(struct rt_deferred *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
}

void rt_deferred_fini(struct rt_deferred *d)
{
	free(d->e);
	pthread_mutex_destroy(&d->lock);
	d->e = NULL;
	d->n = d->cap = 0;
}

int rt_defer(struct rt_deferred *d, uint64_t blk, uint64_t n, uint64_t tag, const struct rt_owner *o)
{
	/* a tag gen has not reached was not a bump's result: another bump
	 * could reach it before this change's version bump (readers.h) */
	if (tag == 0 || tag > __atomic_load_n(&o->t->h.gen, __ATOMIC_SEQ_CST))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct rt_def *e = realloc(d->e, cap * sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&d->lock);
			return -ENOMEM;
		}
		d->e = e;
		d->cap = cap;
	}
	d->e[d->n++] = (struct rt_def){blk, n, tag};
	d->blocks += n;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

uint64_t rt_release(struct rt_deferred *d, struct rt_owner *o, void (*release)(void *, uint64_t, uint64_t),
		    void *ctx)
{
	/* one scan of the slots for all entries: tag g is quiet when no
	 * operation started before g (g <= oldest) and gen has reached it
	 * (entries may be added out of tag order by concurrent changes) */
	pthread_mutex_lock(&d->lock);
	uint64_t gen = __atomic_load_n(&o->t->h.gen, __ATOMIC_SEQ_CST);
	uint64_t oldest = d->n ? rt_oldest(o) : 0, freed = 0;
	size_t keep = 0;
	for (size_t i = 0; i < d->n; i++) {
		struct rt_def e = d->e[i];
		if (e.tag <= gen && e.tag <= oldest) {
			release(ctx, e.blk, e.n);
			freed += e.n;
		} else {
			d->e[keep++] = e;
		}
	}
	d->n = keep;
	d->blocks -= freed;
	pthread_mutex_unlock(&d->lock);
	return freed;
}

/* ---- the user's side ---- */

/* A forked child shares no slot with its parent: its copy of every rt_user
 * is unusable (rt_usable) until it is admitted on its own. */
unsigned rt_forks;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void forked(void)
{
	__atomic_add_fetch(&rt_forks, 1, __ATOMIC_RELAXED);
}
static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forked);
}

int rt_user_map(struct rt_user *u, int fd, int p)
{
	struct stat st;
	memset(u, 0, sizeof(*u));
	if (p < 0 || p >= RT_NPROC)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != sizeof(struct rt_table))
		return -EPROTO;
	/* only a table that cannot shrink under the mapping (a sender could
	 * otherwise make every later access fault) */
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return -EPROTO;
	struct rt_table *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (t == MAP_FAILED)
		return -errno;
	if (t->h.magic != RT_MAGIC || t->h.nproc != RT_NPROC || t->h.nthr != RT_NTHR || t->h.nver != RT_NVER) {
		munmap(t, sizeof(*t));
		return -EPROTO;
	}
	pthread_once(&fork_once, watch_forks);
	u->t = t;
	u->p = p;
	u->forks = __atomic_load_n(&rt_forks, __ATOMIC_RELAXED);
	return 0;
}

void rt_user_unmap(struct rt_user *u)
{
	if (u->t)
		munmap(u->t, sizeof(*u->t));
	u->t = NULL;
}

int rt_slot_get(struct rt_user *u)
{
	if (!rt_usable(u))
		return -1;
	uint64_t b = __atomic_load_n(&u->busy, __ATOMIC_RELAXED);
	for (;;) {
		if (b == ~0ULL)
			return -1;
		int s = __builtin_ctzll(~b);
		if (__atomic_compare_exchange_n(&u->busy, &b, b | (1ULL << s), 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return s;
	}
}

void rt_slot_put(struct rt_user *u, int s)
{
	if (s >= 0 && s < RT_NTHR)
		__atomic_and_fetch(&u->busy, ~(1ULL << s), __ATOMIC_ACQ_REL);
}
