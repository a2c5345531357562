/*
 * data.c - the daemon's side of many processes on one pool (the protocol:
 * src/common/dataproto.h; the design: docs/MULTIPROC.md).
 *
 * The daemon stays the one owner of metadata.  A process the shim runs in
 * is admitted on the data socket (it proves it may write the pool file by
 * handing over a descriptor of it open for writing) and then reads and
 * writes blocks of files itself, through the reader table
 * (src/common/readers.h), fetching block maps here.  This file keeps the
 * table true:
 *   - after every change of an inode's size or map the FUSE operation
 *     calls pfuse_changed (ops.c), which bumps the inode's version; the
 *     blocks the change freed (the library's free hook collects them per
 *     thread) wait in the deferred list with that bump as their tag and go
 *     back to the allocator once no admitted process can still reach them
 *     (at once when none is inside an operation, else by the ticker, every
 *     TICK_MS);
 *   - the kernel's page cache: before the daemon serves a read or write
 *     for a page-cache open (pfuse_page_io), the inode's kernel bit is set
 *     and the daemon waits (at most DRAIN_MS: a process stopped inside an
 *     operation cannot stall the mount) for operations that missed it, so
 *     shim processes send that file's I/O through the kernel while the
 *     cache may hold its pages.  After the inode's last page-cache release
 *     the ticker drops its pages (notify_inval_inode) and clears the bit;
 *   - media errors: while the control channel changes the pool behind the
 *     maps (inject, clear, scrub), every bucket's kernel bit is held
 *     (pfuse_data_hold), and every version is bumped after.
 * Processes: pids come from SO_PEERCRED at accept, never from a message; a
 * connection's end (exit, exec: the socket is close-on-exec) detaches its
 * process, and rt_reap finds exits of processes whose socket a child still
 * holds.  Every message is one datagram of a fixed size (SOCK_SEQPACKET),
 * checked field by field; a client that does not read its answers is
 * dropped; descriptors a message carries are closed unless it is the one
 * ADMIT checks.
 *
 * Threads: the server thread (accept, requests), the ticker, and the FUSE
 * workers calling pfuse_changed / pfuse_page_*.  Lock rules: pc_lock
 * guards the page-cache table and is taken before the reader table's own
 * lock (inside rt_kernel), never after; the connection table is the server
 * thread's alone; the per-thread free lists are their thread's.
 */
#include "fuse/pfuse.h"
#include "common/dataproto.h"
#include "common/readers.h"
#include "poise.h"
#include "poise-admin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100
#define DRAIN_MS 1000
#define LEASE_MS 1000 /* the reader table's lease, renewed every tick */
#define MAXCONN RT_NPROC
#define PC_BUCKETS 4096
#define PC_KEEP 16384 /* closed inodes whose pages stay cached while nobody is admitted */

struct pcent {
	uint64_t ino;
	uint32_t opens;    /* page-cache opens */
	uint32_t inflight; /* page-cache reads and writes being served */
	uint64_t seq;      /* page-cache reads and writes begun so far */
	uint64_t last;     /* the tick of the last one */
	int cached;        /* the kernel bit is held for it */
	int quiet;         /* ... and the drain after setting it is over */
	uint64_t g;        /* the generation of that drain */
	uint32_t appenders; /* O_APPEND opens: no grant while there is one */
	struct pcent *next;
};

struct conn {
	int fd;
	int p;        /* the process index, -1 before admission */
	pid_t pid;    /* SO_PEERCRED at accept */
	int64_t born; /* CLOCK_MONOTONIC ms at accept: unadmitted after ADMIT_MS, dropped */
	uint64_t seq; /* its admission (rt_attach_seq) */
};
#define ADMIT_MS 2000

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct {
	int on;
	struct pfuse *pf;
	struct rt_owner o;
	struct rt_deferred d;
	int lsock;
	char sock[108];
	char dir[PATH_MAX];
	pthread_t srv, ticker_thread;
	int wake[2];
	struct stat pool;
	dev_t mount_dev;
	int have_dev;
	struct conn conn[MAXCONN];
	int nconn;
	pthread_mutex_t pc_lock;
	struct pcent *pc[PC_BUCKETS];
	uint64_t tick;     /* ticks so far (under pc_lock) */
	size_t npc;        /* entries in pc (under pc_lock) */
} D = {.lsock = -1, .wake = {-1, -1}, .pc_lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- freed blocks ---- */

static __thread struct freed {
	struct { uint64_t blk, n; } *e;
	size_t cnt, cap;
} pend;

/* The library's free hook: the blocks wait for this thread's next
 * pfuse_changed, which tags them.  Out of memory: they are kept from the
 * allocator until the next mount (free space is derived then). */
static void free_hook(void *ctx, uint64_t blk, uint64_t n)
{
	(void)ctx;
	if (pend.cnt == pend.cap) {
		size_t cap = pend.cap ? pend.cap * 2 : 16;
		__typeof__(pend.e) e = realloc(pend.e, cap * sizeof(*e));
		if (!e)
			return;
		pend.e = e;
		pend.cap = cap;
	}
	pend.e[pend.cnt].blk = blk;
	pend.e[pend.cnt++].n = n;
}

static void give_back(void *ctx, uint64_t blk, uint64_t n)
{
	poise_pool_free_now(ctx, blk, n);
}

void pfuse_changed(struct pfuse *pf, uint64_t ino)
{
	if (!D.on)
		return;
	uint64_t g = ino ? rt_bump(&D.o, ino) : rt_bump_all(&D.o);
	if (!pend.cnt)
		return;
	for (size_t i = 0; i < pend.cnt; i++)
		(void)rt_defer(&D.d, pend.e[i].blk, pend.e[i].n, g, &D.o); /* -ENOMEM: held to the next mount */
	pend.cnt = 0;
	rt_release(&D.d, &D.o, give_back, pf->pool); /* at once when nobody is inside an operation */
}

/* ---- the page cache ---- */

static struct pcent **pc_find(uint64_t ino)
{
	struct pcent **e = &D.pc[ino % PC_BUCKETS];
	while (*e && (*e)->ino != ino)
		e = &(*e)->next;
	return e;
}

static struct pcent *pc_get(uint64_t ino)
{
	struct pcent **e = pc_find(ino);
	if (!*e && (*e = calloc(1, sizeof(**e)))) {
		(*e)->ino = ino;
		D.npc++;
	}
	return *e;
}

static void pc_drop(struct pcent **e)
{
	struct pcent *x = *e;
	*e = x->next;
	free(x);
	D.npc--;
}

static void pc_clear(uint64_t ino);

void pfuse_page_open(struct pfuse *pf, uint64_t ino)
{
	(void)pf;
	if (!D.on)
		return;
	pthread_mutex_lock(&D.pc_lock);
	struct pcent *e = pc_get(ino);
	if (e)
		e->opens++;
	pthread_mutex_unlock(&D.pc_lock);
}

void pfuse_page_release(struct pfuse *pf, uint64_t ino)
{
	(void)pf;
	if (!D.on)
		return;
	pthread_mutex_lock(&D.pc_lock);
	struct pcent **e = pc_find(ino);
	int clear = 0;
	if (*e && (*e)->opens && --(*e)->opens == 0) {
		if ((*e)->cached)
			clear = 1;
		else if (!(*e)->inflight && !(*e)->appenders)
			pc_drop(e);
	}
	pthread_mutex_unlock(&D.pc_lock);
	/* the last one: its pages go now, and the bit, when a process is
	 * admitted (else the pages stay for the next open, as without the data
	 * channel; the ticker drops them once one is) */
	if (clear && __atomic_load_n(&D.o.nattached, __ATOMIC_RELAXED))
		pc_clear(ino);
}

void pfuse_page_io(struct pfuse *pf, uint64_t ino)
{
	(void)pf;
	if (!D.on)
		return;
	uint64_t g = 0;
	pthread_mutex_lock(&D.pc_lock);
	struct pcent *e = pc_get(ino);
	if (e) {
		e->seq++;
		e->inflight++;
		e->last = D.tick;
	}
	if (e && !e->cached) {
		e->cached = 1;
		e->quiet = 0;
		e->g = g = rt_kernel(&D.o, ino, 1);
	} else if (e && !e->quiet) {
		g = e->g;
	} else if (!e) {
		/* out of memory: the bit is held for good, which is safe */
		g = rt_kernel(&D.o, ino, 1);
	}
	pthread_mutex_unlock(&D.pc_lock);
	if (!g)
		return;
	(void)rt_wait(&D.o, g, DRAIN_MS);
	pthread_mutex_lock(&D.pc_lock);
	struct pcent **f = pc_find(ino);
	if (*f && (*f)->g == g)
		(*f)->quiet = 1;
	pthread_mutex_unlock(&D.pc_lock);
}

void pfuse_page_done(struct pfuse *pf, uint64_t ino)
{
	(void)pf;
	if (!D.on)
		return;
	pthread_mutex_lock(&D.pc_lock);
	struct pcent **e = pc_find(ino);
	if (*e && (*e)->inflight)
		(*e)->inflight--;
	pthread_mutex_unlock(&D.pc_lock);
}

/* Drop ino's cached pages, then its kernel bit, unless a page-cache read
 * or write was being served or began meanwhile (its pages could outlive
 * the drop): every page the kernel holds came from one of those, and each
 * that begins after the bit is gone sets it again first. */
static void pc_clear(uint64_t ino)
{
	pthread_mutex_lock(&D.pc_lock);
	struct pcent **e = pc_find(ino);
	int go = *e && (*e)->cached && !(*e)->inflight;
	uint64_t seq = go ? (*e)->seq : 0;
	pthread_mutex_unlock(&D.pc_lock);
	if (!go)
		return;
	if (D.pf->se)
		(void)fuse_lowlevel_notify_inval_inode(D.pf->se, ino, 0, 0);
	pthread_mutex_lock(&D.pc_lock);
	e = pc_find(ino);
	if (*e && (*e)->cached && !(*e)->inflight && (*e)->seq == seq) {
		(void)rt_kernel(&D.o, ino, 0);
		(*e)->cached = 0;
		if (!(*e)->opens && !(*e)->appenders)
			pc_drop(e);
	}
	pthread_mutex_unlock(&D.pc_lock);
}

/* Inodes whose pages the kernel may hold give them up: those with no
 * page-cache read or write being served (SWEEP_ALL: at an admission, so
 * the new process finds its files on the direct path), those closed
 * (SWEEP_CLOSED: the table stays bounded while nobody is admitted), or
 * those that saw no page-cache read or write for a whole tick (SWEEP_IDLE:
 * the ticker, while a process is admitted).  Up to 256 a call. */
enum { SWEEP_IDLE, SWEEP_ALL, SWEEP_CLOSED };
static void pc_sweep(int how)
{
	uint64_t todo[256];
	int n = 0;
	pthread_mutex_lock(&D.pc_lock);
	for (int b = 0; b < PC_BUCKETS && n < 256; b++)
		for (struct pcent *e = D.pc[b]; e && n < 256; e = e->next)
			if (e->cached && !e->inflight &&
			    (how == SWEEP_ALL || (how == SWEEP_CLOSED ? !e->opens : e->last + 1 < D.tick)))
				todo[n++] = e->ino;
	pthread_mutex_unlock(&D.pc_lock);
	for (int i = 0; i < n; i++)
		pc_clear(todo[i]);
}

void pfuse_data_hold(struct pfuse *pf, int on)
{
	(void)pf;
	if (!D.on)
		return;
	if (on) {
		(void)rt_wait(&D.o, rt_kernel_all(&D.o, 1), DRAIN_MS);
	} else {
		pfuse_changed(pf, 0);
		(void)rt_kernel_all(&D.o, 0);
	}
}

/* ---- grants: space past a file's size to append into (readers.h) ---- */

struct grant {
	uint64_t ino;    /* atomic (read without the lock by the fast paths); 0: free */
	int p;           /* the holder's process index ... */
	uint64_t seq;    /* ... and its admission */
	int fd;          /* a library descriptor of the inode, for writing */
	uint64_t logged; /* the size logged so far */
	uint64_t end;    /* the byte the space ends at */
	uint64_t trim;   /* the block the space may be dropped from at the end (UINT64_MAX: never,
			  * the daemon could not see where the file's own space ends) */
	uint64_t drain;  /* free: the slot is reusable once rt_quiet(drain) (its last holder's
			  * operations that could still publish into it are over) */
	unsigned idle;   /* ticks the holder's word did not move (the ticker's count) */
	uint64_t seen;   /* the word at the last tick */
};
static struct grant G[RT_NGRANT];
static int send_fd(int c, const void *buf, size_t len, int fd);
enum { GR_TICK, GR_PROC, GR_ALL };
static void gr_sweep(int how, int p, uint64_t seq);
static unsigned ngrant; /* atomic: grants live or being made (read without the lock: a hint) */
static pthread_mutex_t gr_lock = PTHREAD_MUTEX_INITIALIZER;
#define BLK_SIZE 4096ULL                /* the pool's block (src/fs/layout.h) */
#define MAX_FILE (1ULL << 50)           /* the largest file size (src/fs/layout.h) */
#define GROW_MIN (1u << 20)
#define GROW_MAX (32u << 20)
#define IDLE_TICKS 10 /* a grant whose holder appended nothing for a second gives its space back */

/* Changes of a file by the kernel's path against a grant being made for
 * it: a change holds its inode's stripe for reading from before it takes
 * the grants back until it is done (pfuse_change_begin/end); a grant is
 * made only with the stripe held for writing, tried (never waited for: the
 * server thread does not block behind a FUSE request). */
#define NSTRIPE 64
static pthread_rwlock_t chg[NSTRIPE] = {[0 ... NSTRIPE - 1] = PTHREAD_RWLOCK_INITIALIZER};

/* Inodes whose grant ended in the last second: the kernel may have taken
 * their size in a getattr just before (an open's permission check), so an
 * O_APPEND open now must not use the page cache.  A ring, under gr_lock. */
#define NRECENT 64
static struct { uint64_t ino; int64_t ms; } recent[NRECENT];
static unsigned nrecent;

/* Is there any grant (made or being made)? */
static int any_grant(void)
{
	return D.on && __atomic_load_n(&ngrant, __ATOMIC_ACQUIRE);
}

/* Does a grant of ino exist (read without the lock)? */
static int has_grant(uint64_t ino)
{
	for (int i = 0; i < RT_NGRANT; i++)
		if (__atomic_load_n(&G[i].ino, __ATOMIC_ACQUIRE) == ino)
			return 1;
	return 0;
}

/* Log grant i's size (its holder's word); revoke: take it back first, drop
 * the space past the size, free the slot.  gr_lock held. */
static int gr_publish(int i, int revoke)
{
	struct grant *g = &G[i];
	struct rt_table *t = D.o.t;
	uint64_t w = revoke ? rt_grant_revoke(t, i) : __atomic_load_n(&t->grant[i].word, __ATOMIC_SEQ_CST) & ~RT_REVOKED;
	if (w > g->end)
		w = g->end; /* the word is any admitted process's to scribble on */
	int r = 0;
	uint64_t size = w > g->logged ? w : g->logged;
	if (w > g->logged || revoke) {
		r = poise_fgrow(D.pf->pool, g->fd, size, revoke ? g->trim : UINT64_MAX);
		if (r < 0 && revoke) /* a full pool: the size alone needs no new block */
			r = poise_fgrow(D.pf->pool, g->fd, size, UINT64_MAX);
		if (r < 0)
			fprintf(stderr, "poise mount: inode %llu: cannot log the size %llu its appends reached: %s\n",
				(unsigned long long)g->ino, (unsigned long long)size, strerror(-r));
	}
	if (r == 0 && w > g->logged)
		g->logged = w;
	if (!revoke)
		return r;
	uint64_t ino = g->ino;
	poise_close(D.pf->pool, g->fd); /* the last close of an unlinked file frees it */
	pfuse_changed(D.pf, ino);       /* the grant, and the space, are gone from the maps */
	/* the word keeps RT_REVOKED: a holder's operation that started before
	 * the bump can still try to publish; the slot waits for it (drain) */
	g->drain = rt_tick(&D.o);
	__atomic_store_n(&t->grant[i].ino, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g->ino, 0, __ATOMIC_RELEASE);
	__atomic_sub_fetch(&ngrant, 1, __ATOMIC_RELAXED);
	unsigned k = nrecent++ % NRECENT;
	recent[k].ino = ino;
	recent[k].ms = mono_ms();
	if (D.pf->se)
		(void)fuse_lowlevel_notify_inval_inode(D.pf->se, ino, -1, 0); /* attributes only */
	return r;
}

int pfuse_settle(struct pfuse *pf, uint64_t ino, int revoke)
{
	(void)pf;
	if (!any_grant() || !has_grant(ino))
		return 0;
	int n = 0;
	pthread_mutex_lock(&gr_lock);
	for (int i = 0; i < RT_NGRANT; i++)
		if (G[i].ino == ino) {
			(void)gr_publish(i, revoke);
			n++;
		}
	pthread_mutex_unlock(&gr_lock);
	return n;
}

int pfuse_change_begin(struct pfuse *pf, uint64_t ino)
{
	if (!D.on)
		return 0;
	pthread_rwlock_rdlock(&chg[ino % NSTRIPE]);
	return pfuse_settle(pf, ino, 1);
}

void pfuse_change_end(struct pfuse *pf, uint64_t ino)
{
	(void)pf;
	if (D.on)
		pthread_rwlock_unlock(&chg[ino % NSTRIPE]);
}

int pfuse_space_back(struct pfuse *pf)
{
	(void)pf;
	if (!any_grant())
		return 0;
	gr_sweep(GR_ALL, -1, 0);
	return 1;
}

int pfuse_granted(struct pfuse *pf, uint64_t ino)
{
	(void)pf;
	if (!any_grant())
		return 0;
	if (!ino)
		return 1;
	return has_grant(ino);
}

int pfuse_append_open(struct pfuse *pf, uint64_t ino, int on)
{
	if (!D.on)
		return 0;
	/* no grant from now on (answer_grow asks for appenders), and none left */
	int stale = on && pfuse_change_begin(pf, ino) > 0;
	pthread_mutex_lock(&D.pc_lock);
	struct pcent *e = on ? pc_get(ino) : *pc_find(ino);
	if (e && on)
		e->appenders++;
	else if (e && e->appenders && --e->appenders == 0 && !e->opens && !e->cached && !e->inflight)
		pc_drop(pc_find(ino));
	pthread_mutex_unlock(&D.pc_lock);
	if (!on)
		return 0;
	stale |= !e;
	pfuse_change_end(pf, ino);
	pthread_mutex_lock(&gr_lock);
	int64_t now = mono_ms();
	for (unsigned k = 0; k < NRECENT && k < nrecent; k++)
		stale |= recent[k].ino == ino && now - recent[k].ms < 1000;
	pthread_mutex_unlock(&gr_lock);
	return stale;
}

/* Every grant whose holder is gone (or is process p of admission seq,
 * p >= 0), or idle for IDLE_TICKS, taken back; the others' sizes logged
 * (all taken back: at the end, or when the pool is full). */
static void gr_sweep(int how, int p, uint64_t seq)
{
	if (!__atomic_load_n(&ngrant, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&gr_lock);
	for (int i = 0; i < RT_NGRANT; i++) {
		struct grant *g = &G[i];
		if (!g->ino)
			continue;
		pthread_mutex_lock(&D.o.lock);
		int gone = D.o.pid[g->p] == 0 || D.o.aseq[g->p] != g->seq;
		pthread_mutex_unlock(&D.o.lock);
		if (how == GR_TICK) {
			uint64_t w = __atomic_load_n(&D.o.t->grant[i].word, __ATOMIC_SEQ_CST);
			g->idle = w == g->seen ? g->idle + 1 : 0;
			g->seen = w;
		}
		int revoke = how == GR_ALL || gone || (how == GR_PROC && g->p == p && g->seq == seq) ||
			     (how == GR_TICK && g->idle >= IDLE_TICKS);
		if (how == GR_PROC && !revoke)
			continue;
		/* taking back what nobody else needs waits for a size that can be
		 * logged (a log that fails now may not at the next tick) */
		if (revoke && how != GR_ALL && gr_publish(i, 0) < 0)
			continue;
		(void)gr_publish(i, revoke);
	}
	pthread_mutex_unlock(&gr_lock);
}

/* How far a grant's space reaches when it must hold byte want of a file
 * of size bytes: want, and as much again as the file has (1 to 32 MiB), in
 * whole blocks. */
static uint64_t grow_end(uint64_t size, uint64_t want)
{
	uint64_t chunk = size < GROW_MIN ? GROW_MIN : size > GROW_MAX ? GROW_MAX : size;
	uint64_t end = (want + chunk + BLK_SIZE - 1) / BLK_SIZE * BLK_SIZE;
	return end > MAX_FILE ? MAX_FILE : end;
}

/* Allocate fd's space [from, end) past its size (fallocate KEEP_SIZE),
 * or only up to want when the pool has no more: the end reached, or -errno. */
static int64_t grow_space(int fd, uint64_t from, uint64_t want, uint64_t end)
{
	int r = poise_fallocate(D.pf->pool, fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(end - from));
	if (r == -ENOSPC) { /* just what it asked for */
		end = (want + BLK_SIZE - 1) / BLK_SIZE * BLK_SIZE;
		r = end > from ? poise_fallocate(D.pf->pool, fd, FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(end - from)) : 0;
	}
	if (r < 0)
		return r;
	return end < want ? -EFBIG : (int64_t)end;
}

/* The holder of grant k needs its space to reach byte want: more of it. */
static int gr_extend(int k, uint64_t want)
{
	struct grant *g = &G[k];
	if (want <= g->end)
		return 0; /* it has that much already */
	(void)gr_publish(k, 0);
	if (want - g->logged > GROW_MAX)
		return -EINVAL;
	int64_t end = grow_space(g->fd, g->end, want, grow_end(g->logged, want));
	if (end < 0)
		return (int)end;
	g->end = (uint64_t)end;
	g->idle = 0;
	__atomic_store_n(&D.o.t->grant[k].end, g->end, __ATOMIC_SEQ_CST);
	pfuse_changed(D.pf, g->ino); /* the new space is in the maps */
	return 0;
}

/* DP_GROW: space for the asking process to append into ino up to r->off. */
static int answer_grow(struct conn *c, const struct dp_req *r)
{
	struct dp_ans a = {.magic = DP_MAGIC};
	struct poise_fmap *m = malloc(sizeof(*m));
	int fd = -1, i = -1;
	pthread_rwlock_t *stripe = &chg[r->ino % NSTRIPE];
	if (!m || pthread_rwlock_trywrlock(stripe) != 0) {
		free(m);
		a.rc = m ? -EAGAIN : -ENOMEM; /* the kernel's path is changing a file of the stripe */
		return send_fd(c->fd, &a, sizeof(a), -1);
	}
	pthread_mutex_lock(&gr_lock);
	__atomic_add_fetch(&ngrant, 1, __ATOMIC_RELAXED); /* (the fast paths take the lock from now) */
	for (int k = 0; k < RT_NGRANT; k++)
		if (G[k].ino == r->ino) {
			if (G[k].p == c->p && G[k].seq == c->seq) {
				a.rc = gr_extend(k, r->off);
				goto out;
			}
			(void)gr_publish(k, 1); /* the last to ask holds it */
		}
	for (int k = 0; k < RT_NGRANT && i < 0; k++)
		if (!G[k].ino && (!G[k].drain || rt_quiet(&D.o, G[k].drain)))
			i = k;
	pthread_mutex_lock(&D.pc_lock);
	struct pcent *e = *pc_find(r->ino);
	int busy = e && (e->appenders || e->cached);
	pthread_mutex_unlock(&D.pc_lock);
	if (i < 0 || busy || rt_kernel_bit(rt_ver(D.o.t, r->ino))) {
		a.rc = -EBUSY; /* the kernel's: no room, an O_APPEND open, or the page cache */
		goto out;
	}
	fd = poise_openat(D.pf->pool, r->ino, "", O_RDWR | O_NOFOLLOW, 0);
	if (fd < 0 || (a.rc = poise_fmap(D.pf->pool, fd, r->off ? r->off - 1 : 0, m)) < 0) {
		a.rc = fd < 0 ? fd : a.rc;
		goto out;
	}
	a.rc = 0;
	uint64_t size = m->size, sblk = (size + BLK_SIZE - 1) / BLK_SIZE, aend = sblk;
	if (m->n && m->ext[m->n - 1].fblk + m->ext[m->n - 1].nblk > aend)
		aend = m->ext[m->n - 1].fblk + m->ext[m->n - 1].nblk;
	if ((m->mode & S_ISUID) || ((m->mode & S_ISGID) && (m->mode & S_IXGRP)) || r->off <= size ||
	    r->off - size > GROW_MAX) {
		a.rc = -EINVAL; /* set-id bits go at a write through the kernel; nothing to grow */
		goto out;
	}
	int64_t e64 = grow_space(fd, size, r->off, grow_end(size, r->off));
	if (e64 < 0) {
		a.rc = (int)e64;
		goto out;
	}
	uint64_t end = (uint64_t)e64;
	/* space of the file's own past the size (a program's fallocate, a dead
	 * daemon's grant) stays the file's at the end: the trim starts where it
	 * ended, when the window saw that far */
	uint64_t trim = m->end != UINT64_MAX ? UINT64_MAX : aend;
	struct rt_table *t = D.o.t;
	__atomic_store_n(&t->grant[i].end, end, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->grant[i].word, size, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->grant[i].ino, r->ino, __ATOMIC_SEQ_CST);
	G[i] = (struct grant){.p = c->p, .seq = c->seq, .fd = fd, .logged = size, .end = end, .trim = trim};
	__atomic_store_n(&G[i].ino, r->ino, __ATOMIC_RELEASE);
	fd = -1;
	__atomic_add_fetch(&ngrant, 1, __ATOMIC_RELAXED);
	pfuse_changed(D.pf, r->ino); /* the new space, and the grant, are in the maps now */
	if (D.pf->se) /* the kernel asks for the size from now on (no caching while granted) */
		(void)fuse_lowlevel_notify_inval_inode(D.pf->se, r->ino, -1, 0);
out:
	__atomic_sub_fetch(&ngrant, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&gr_lock);
	pthread_rwlock_unlock(stripe);
	if (fd >= 0)
		poise_close(D.pf->pool, fd);
	free(m);
	if (pend.cnt) /* a close that freed (an unlinked file) */
		pfuse_changed(D.pf, r->ino);
	return send_fd(c->fd, &a, sizeof(a), -1);
}

/* The grant of ino held by connection c (or -1).  gr_lock held. */
static int gr_of(const struct conn *c, uint64_t ino)
{
	for (int k = 0; k < RT_NGRANT; k++)
		if (G[k].ino == ino && G[k].p == c->p && G[k].seq == c->seq)
			return k;
	return -1;
}

/* ---- the socket ---- */

/* Descriptors a client sent are closed by the closer thread, never the
 * server's: a close can block for as long as the sender likes (a socket
 * lingering on unsent data, a file of a FUSE mount that never answers its
 * flush).  A full queue (the closer is stuck) leaks the descriptor rather
 * than the server thread. */
#define CLOSE_Q 1024
static int closeq[CLOSE_Q];
static unsigned closeq_n;
static pthread_mutex_t closeq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closeq_cond = PTHREAD_COND_INITIALIZER;
static pthread_t closer_thread;

static void closer_put(int fd)
{
	/* a socket's close does not wait for its unsent data (the sender's
	 * linger setting) */
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &sx) == 0 && S_ISSOCK(sx.stx_mode)) {
		struct linger l = {1, 0};
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	pthread_mutex_lock(&closeq_lock);
	if (closeq_n < CLOSE_Q)
		closeq[closeq_n++] = fd;
	pthread_cond_signal(&closeq_cond);
	pthread_mutex_unlock(&closeq_lock);
}

static void *closer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&closeq_lock);
	for (;;) {
		while (!closeq_n)
			pthread_cond_wait(&closeq_cond, &closeq_lock);
		int fd = closeq[--closeq_n];
		pthread_mutex_unlock(&closeq_lock);
		close(fd);
		pthread_mutex_lock(&closeq_lock);
	}
	return NULL;
}

static int send_fd(int c, const void *buf, size_t len, int fd)
{
	struct iovec v = {(void *)buf, len};
	union dp_cmsg u;
	struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
	dp_attach_fd(&m, &u, fd);
	return sendmsg(c, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Is fd the pool this daemon serves, open for writing? */
static int is_our_pool(int fd)
{
	struct statx sx;
	int fl = fcntl(fd, F_GETFL);
	/* the attributes the kernel has, without asking the file system (a
	 * file of a FUSE mount could make a fresh stat wait forever) */
	if (fl < 0 || (fl & O_ACCMODE) != O_RDWR ||
	    statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx) < 0)
		return 0;
	if ((sx.stx_mode & S_IFMT) != (D.pool.st_mode & S_IFMT))
		return 0;
	if (S_ISCHR(sx.stx_mode))
		return makedev(sx.stx_rdev_major, sx.stx_rdev_minor) == D.pool.st_rdev;
	return S_ISREG(sx.stx_mode) && makedev(sx.stx_dev_major, sx.stx_dev_minor) == D.pool.st_dev &&
	       sx.stx_ino == D.pool.st_ino;
}

/* The mount's device, from the mount point (its root's getattr is served
 * by the FUSE workers, not this thread): 0 or -1. */
static int know_dev(void)
{
	struct stat st;
	if (!D.have_dev && stat(D.dir, &st) == 0) {
		D.mount_dev = st.st_dev;
		D.have_dev = 1;
	}
	return D.have_dev ? 0 : -1;
}

static int who(struct conn *c)
{
	struct dp_who *w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	w->magic = DP_MAGIC;
	if (know_dev() < 0 || strlen(D.pf->pool_path) >= sizeof(w->pool)) {
		w->rc = -EIO;
	} else {
		w->mount_dev = D.mount_dev;
		strcpy(w->pool, D.pf->pool_path);
	}
	int r = send_fd(c->fd, w, sizeof(*w), -1);
	free(w);
	return r;
}

static void admit(struct conn *c, int fd)
{
	struct dp_admit a = {.magic = DP_MAGIC, .p = -1};
	(void)know_dev();
	if (c->p >= 0)
		a.rc = -EALREADY;
	else if (fd < 0 || !is_our_pool(fd))
		a.rc = -EACCES;
	else if (!D.have_dev)
		a.rc = -EIO;
	else if ((a.p = rt_attach(&D.o, c->pid)) < 0)
		a.rc = a.p;
	if (a.rc == 0) {
		a.mount_dev = D.mount_dev;
		a.pool_size = poise_dev_size(poise_pool_dev(D.pf->pool));
		a.flags = (D.pf->readonly ? DP_READONLY : 0) | (D.pf->odirect_block ? DP_ODIRECT_BLOCK : 0) |
			  (poise_dev_needs_msync(poise_pool_dev(D.pf->pool)) ? DP_NEED_MSYNC : 0);
		c->p = a.p;
		c->seq = rt_attach_seq(&D.o, a.p);
		pc_sweep(SWEEP_ALL);
	} else {
		a.p = -1;
	}
	if (send_fd(c->fd, &a, sizeof(a), a.rc == 0 ? D.o.fd : -1) < 0 && a.rc == 0) {
		rt_detach_if(&D.o, c->p, c->seq); /* it never got the table */
		c->p = -1;
	}
}

static int answer_map(struct conn *c, const struct dp_req *r)
{
	struct dp_map *a = calloc(1, sizeof(*a));
	if (!a)
		return -1;
	a->magic = DP_MAGIC;
	a->ver = rt_ver(D.o.t, r->ino); /* before the map: a change racing the fetch is seen next time */
	int fd = poise_openat(D.pf->pool, r->ino, "", O_RDONLY | O_NOFOLLOW, 0);
	a->grant = -1;
	if (fd < 0) {
		a->rc = fd;
	} else {
		pthread_mutex_lock(&gr_lock); /* the map and the grant of one moment */
		int n = poise_fmap(D.pf->pool, fd, r->off, &a->m);
		a->rc = n < 0 ? n : 0;
		for (int k = 0; k < RT_NGRANT && a->grant < 0; k++)
			if (G[k].ino == r->ino) {
				a->grant = k;
				a->holder = G[k].p == c->p && G[k].seq == c->seq;
				a->gend = G[k].end;
			}
		pthread_mutex_unlock(&gr_lock);
	}
	if (fd >= 0) {
		poise_close(D.pf->pool, fd);
		if (pend.cnt) /* the last close of an unlinked file freed it (else no bump: the map stands) */
			pfuse_changed(D.pf, r->ino);
	}
	int ret = send_fd(c->fd, a, sizeof(*a), -1);
	free(a);
	return ret;
}

/* DP_TOUCH, and DP_SETTLE: the grant of r->ino that c holds taken back
 * first (its size logged, its space dropped), then the times when asked. */
static int answer_touch(struct conn *c, const struct dp_req *r)
{
	struct dp_ans a = {.magic = DP_MAGIC};
	struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	if (r->op == DP_SETTLE) {
		pthread_mutex_lock(&gr_lock);
		int k = gr_of(c, r->ino);
		if (k >= 0)
			a.rc = gr_publish(k, 1);
		pthread_mutex_unlock(&gr_lock);
	}
	if (a.rc == 0 && (r->op == DP_TOUCH || r->off == 1))
		a.rc = poise_utimensat(D.pf->pool, r->ino, "", ts, AT_SYMLINK_NOFOLLOW);
	if (a.rc == 0 && D.pf->se)
		(void)fuse_lowlevel_notify_inval_inode(D.pf->se, r->ino, -1, 0); /* attributes only */
	return send_fd(c->fd, &a, sizeof(a), -1);
}

static void drop_conn(int i)
{
	struct conn *c = &D.conn[i];
	if (c->p >= 0) { /* its socket is gone: exited or exec'd (close-on-exec); unless reaped already
			  * and the index given to another */
		gr_sweep(GR_PROC, c->p, c->seq); /* what it appended is the file's */
		rt_detach_if(&D.o, c->p, c->seq);
	}
	close(c->fd);
	D.conn[i] = D.conn[--D.nconn];
}

/* One message of connection i: 0, or -1 to drop it. */
static int serve(int i)
{
	struct conn *c = &D.conn[i];
	struct dp_req r;
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr a;
	} u;
	struct iovec v = {&r, sizeof(r)};
	struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	int fds[4], nfd = 0;
	/* an empty datagram carries descriptors too */
	for (struct cmsghdr *h = n >= 0 && m.msg_controllen ? CMSG_FIRSTHDR(&m) : NULL; h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
			for (size_t k = 0; k < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfd < 4; k++)
				memcpy(&fds[nfd++], CMSG_DATA(h) + k * sizeof(int), sizeof(int));
	int ret = 0;
	if (n != (ssize_t)sizeof(r) || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || r.magic != DP_MAGIC)
		ret = -1; /* not our protocol, or an end of file */
	else if (r.op == DP_ADMIT)
		admit(c, nfd == 1 ? fds[0] : -1);
	else if (r.op == DP_WHO && !nfd)
		ret = who(c);
	else if (c->p < 0 || nfd)
		ret = -1; /* not admitted, or descriptors nobody asked for */
	else if (r.op == DP_MAP)
		ret = answer_map(c, &r);
	else if ((r.op == DP_TOUCH || r.op == DP_SETTLE) && !D.pf->readonly)
		ret = answer_touch(c, &r);
	else if (r.op == DP_GROW && !D.pf->readonly)
		ret = answer_grow(c, &r);
	else
		ret = -1;
	for (int k = 0; k < nfd; k++)
		closer_put(fds[k]);
	return ret;
}

static void accept_one(void)
{
	int c = accept4(D.lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	if (D.nconn == MAXCONN || getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.pid <= 0) {
		close(c);
		return;
	}
	D.conn[D.nconn++] = (struct conn){.fd = c, .p = -1, .pid = cr.pid, .born = mono_ms()};
}

static void *server(void *arg)
{
	(void)arg;
	struct pollfd p[MAXCONN + 2];
	for (;;) {
		/* a connection that has not been admitted in time holds a place
		 * for nothing: dropped (processes admit at once) */
		int64_t now = mono_ms();
		for (int i = D.nconn - 1; i >= 0; i--)
			if (D.conn[i].p < 0 && now - D.conn[i].born > ADMIT_MS)
				drop_conn(i);
		int n = 0;
		p[n++] = (struct pollfd){.fd = D.wake[0], .events = POLLIN};
		p[n++] = (struct pollfd){.fd = D.lsock, .events = POLLIN};
		for (int i = 0; i < D.nconn; i++)
			p[n++] = (struct pollfd){.fd = D.conn[i].fd, .events = POLLIN};
		if (poll(p, (nfds_t)n, ADMIT_MS / 2) < 0)
			continue;
		if (p[0].revents)
			return NULL;
		/* connections first, from the last, so dropping one (the last
		 * moves into its place) does not skip another */
		for (int i = D.nconn - 1; i >= 0; i--)
			if (p[i + 2].revents && serve(i) < 0)
				drop_conn(i);
		if (p[1].revents & POLLIN)
			accept_one();
	}
}

static void *ticker(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = {.fd = D.wake[0], .events = POLLIN};
		if (poll(&p, 1, TICK_MS) > 0)
			return NULL;
		rt_renew(&D.o, LEASE_MS);
		rt_reap(&D.o);
		gr_sweep(GR_TICK, -1, 0); /* appends are logged within a tick; a dead holder's taken back */
		(void)rt_tick(&D.o);
		rt_release(&D.d, &D.o, give_back, D.pf->pool);
		pthread_mutex_lock(&D.pc_lock);
		D.tick++;
		pthread_mutex_unlock(&D.pc_lock);
		if (__atomic_load_n(&D.o.nattached, __ATOMIC_RELAXED))
			pc_sweep(SWEEP_IDLE);
		else if (D.npc > PC_KEEP)
			pc_sweep(SWEEP_CLOSED);
	}
}

const char *pfuse_data_socket(void)
{
	return D.on ? D.sock : NULL;
}

int pfuse_data_start(struct pfuse *pf, const char *dir)
{
	char rdir[256];
	int r;
	if (!realpath(dir, D.dir))
		return poise_errno(errno, "%s", dir);
	if ((r = poise_dev_fstat(poise_pool_dev(pf->pool), &D.pool)) < 0)
		return r;
	(void)poise_runtime_dir(geteuid(), 0, rdir, sizeof(rdir));
	if ((r = poise_runtime_dir(geteuid(), 1, rdir, sizeof(rdir))) < 0)
		return r;
	int len = snprintf(D.sock, sizeof(D.sock), "%s/data-%llx-%llx.sock", rdir, (unsigned long long)D.pool.st_dev,
			   (unsigned long long)D.pool.st_ino);
	if (len < 0 || (size_t)len >= sizeof(D.sock))
		return poise_err(ENAMETOOLONG, "data socket path too long");
	if ((r = rt_owner_init(&D.o)) < 0)
		return poise_err(-r, "cannot make the reader table: %s", strerror(-r));
	rt_deferred_init(&D.d);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, D.sock, (size_t)len + 1);
	if (unlink(D.sock) == 0) {
		/* a daemon that died left it (the pool's lock is ours now): its
		 * processes stop touching blocks when its lease runs out; wait
		 * that long before serving */
		struct timespec ts = {LEASE_MS / 1000, (LEASE_MS % 1000) * 1000000L + 200000000L};
		nanosleep(&ts, NULL);
	}
	D.lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (D.lsock < 0 || bind(D.lsock, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(D.sock, 0666) < 0 ||
	    listen(D.lsock, 64) < 0 || pipe2(D.wake, O_CLOEXEC) < 0) {
		r = errno;
		goto fail;
	}
	D.pf = pf;
	rt_renew(&D.o, LEASE_MS);
	poise_pool_set_free_hook(pf->pool, free_hook, NULL);
	D.on = 1;
	/* the closer lives as long as the process: it may be stuck in a
	 * close that never returns, and must not keep the daemon from exiting */
	static int closer_up;
	if (!closer_up && (r = pthread_create(&closer_thread, NULL, closer, NULL)) != 0) {
		D.on = 0;
		poise_pool_set_free_hook(pf->pool, NULL, NULL);
		goto fail;
	}
	if (!closer_up)
		pthread_detach(closer_thread);
	closer_up = 1;
	if ((r = pthread_create(&D.srv, NULL, server, NULL)) != 0) {
		D.on = 0;
		poise_pool_set_free_hook(pf->pool, NULL, NULL);
		goto fail;
	}
	if ((r = pthread_create(&D.ticker_thread, NULL, ticker, NULL)) != 0) {
		if (write(D.wake[1], "x", 1) < 0)
			(void)0;
		pthread_join(D.srv, NULL);
		D.on = 0;
		poise_pool_set_free_hook(pf->pool, NULL, NULL);
		goto fail;
	}
	return 0;
fail:
	if (D.lsock >= 0)
		close(D.lsock);
	for (int i = 0; i < 2; i++)
		if (D.wake[i] >= 0)
			close(D.wake[i]);
	D.lsock = D.wake[0] = D.wake[1] = -1;
	(void)unlink(D.sock);
	rt_deferred_fini(&D.d);
	rt_owner_fini(&D.o);
	return poise_err(r, "%s: cannot open the data socket: %s", D.sock, strerror(r));
}

void pfuse_data_stop(struct pfuse *pf)
{
	if (!D.on)
		return;
	if (write(D.wake[1], "x", 1) < 0)
		(void)0;
	pthread_join(D.srv, NULL);
	pthread_join(D.ticker_thread, NULL);
	/* the lease ends now: no process starts another operation on the
	 * pool (a file system mounted next with this device number must not
	 * be taken for this one); those in progress finish */
	rt_renew(&D.o, 0);
	(void)rt_wait(&D.o, rt_tick(&D.o), DRAIN_MS);
	gr_sweep(GR_ALL, -1, 0); /* every size appended to is logged */
	D.on = 0;
	while (D.nconn)
		drop_conn(D.nconn - 1);
	/* held blocks are free again at the next mount (free space is derived) */
	poise_pool_set_free_hook(pf->pool, NULL, NULL);
	close(D.lsock);
	close(D.wake[0]);
	close(D.wake[1]);
	D.lsock = D.wake[0] = D.wake[1] = -1;
	(void)unlink(D.sock);
	rt_deferred_fini(&D.d);
	rt_owner_fini(&D.o);
	for (int b = 0; b < PC_BUCKETS; b++)
		while (D.pc[b])
			pc_drop(&D.pc[b]);
}
