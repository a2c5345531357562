/*
 * test_readers.c - the reader table (src/common/readers.h): a block freed
 * by the owner is never reused while a user can still reach it through an
 * old map, with threads and with processes; a process that dies (kill -9
 * inside an operation) holds nothing; a table handed over is checked; and
 * a deliberately wrong owner (reuse without waiting) is caught, so the
 * check can fail.
 */
#include "harness.h"
#include "common/readers.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the model: files of FBLK blocks in a pool of NBLK blocks ---- */
#define NBLK 64
#define WORDS 64
#define NFILE 4
#define FBLK 2

struct model {
	uint64_t word[NBLK][WORDS]; /* atomics: each block holds its owner's label in every word */
	pthread_mutex_t lock;        /* the owner's metadata: maps and the free list */
	uint64_t map[NFILE][FBLK];
	int free_[NBLK], nfree;
	uint64_t ino_base;
	int stop; /* atomic */
	uint64_t reads, stale; /* atomic: operations checked, and ones that saw a block not the file's */
};

static uint64_t label(int file)
{
	return 0x1000 + (uint64_t)file;
}

static void relabel(struct model *m, uint64_t blk, uint64_t lab)
{
	for (int w = 0; w < WORDS; w++)
		__atomic_store_n(&m->word[blk][w], lab, __ATOMIC_RELAXED);
}

/* Does block blk hold lab in every word? */
static int holds(struct model *m, uint64_t blk, uint64_t lab)
{
	for (int w = 0; w < WORDS; w++)
		if (__atomic_load_n(&m->word[blk][w], __ATOMIC_RELAXED) != lab)
			return 0;
	return 1;
}

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&m->lock, &a);
	int b = 0;
	for (int f = 0; f < NFILE; f++)
		for (int i = 0; i < FBLK; i++) {
			m->map[f][i] = (uint64_t)b;
			relabel(m, (uint64_t)b, label(f));
			b++;
		}
	for (; b < NBLK; b++)
		m->free_[m->nfree++] = b;
	m->ino_base = 100;
}

static void give_back(void *ctx, uint64_t blk, uint64_t n)
{
	struct model *m = ctx;
	for (uint64_t i = 0; i < n; i++) {
		relabel(m, blk + i, 0xdead); /* a reused block changes at once */
		m->free_[m->nfree++] = (int)(blk + i);
	}
}

/* The owner's change: file f's block i moves to a free block (copy, then
 * publish, then bump, then defer the old one).  wrong: reuse the old block
 * at once, without waiting for quiet.  Returns 0, or -1 when no block is free. */
static int owner_step(struct model *m, struct rt_owner *o, struct rt_deferred *d, int f, int i, int wrong)
{
	pthread_mutex_lock(&m->lock);
	if (m->nfree == 0) {
		rt_tick(o);
		rt_release(d, o, give_back, m);
		pthread_mutex_unlock(&m->lock);
		return -1;
	}
	uint64_t nb = (uint64_t)m->free_[--m->nfree];
	relabel(m, nb, label(f));
	uint64_t old = m->map[f][i];
	m->map[f][i] = nb;
	pthread_mutex_unlock(&m->lock);
	uint64_t g = rt_bump(o, m->ino_base + (uint64_t)f);
	pthread_mutex_lock(&m->lock);
	if (wrong)
		give_back(m, old, 1);
	else
		(void)rt_defer(d, old, 1, g, o); /* on -ENOMEM the block leaks, never reused early */
	rt_release(d, o, give_back, m);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* A user's fetch of file f's map: the version first, then the map. */
static uint64_t fetch(struct model *m, struct rt_table *t, int f, uint64_t out[FBLK])
{
	uint64_t v = rt_ver(t, m->ino_base + (uint64_t)f);
	pthread_mutex_lock(&m->lock);
	memcpy(out, m->map[f], sizeof(m->map[f]));
	pthread_mutex_unlock(&m->lock);
	return v;
}

/* Users: read through cached maps, refreshing only when rt_enter says so,
 * and check every word of each block read is the file's. */
static void user_loop(struct model *m, struct rt_user *u, unsigned seed)
{
	uint64_t map[NFILE][FBLK], ver[NFILE];
	for (int f = 0; f < NFILE; f++)
		ver[f] = fetch(m, u->t, f, map[f]);
	int s = rt_slot_get(u);
	if (s < 0)
		return;
	while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED)) {
		seed = seed * 1103515245 + 12345;
		int f = (int)((seed >> 8) % NFILE);
		uint64_t v = rt_enter(u, s, m->ino_base + (uint64_t)f);
		if (v != ver[f]) {
			rt_leave(u, s);
			ver[f] = fetch(m, u->t, f, map[f]);
			continue;
		}
		int bad = 0;
		for (int i = 0; i < FBLK; i++)
			bad |= !holds(m, map[f][i], label(f));
		rt_leave(u, s);
		__atomic_add_fetch(&m->reads, 1, __ATOMIC_RELAXED);
		if (bad)
			__atomic_add_fetch(&m->stale, 1, __ATOMIC_RELAXED);
	}
	rt_slot_put(u, s);
}

struct uarg {
	struct model *m;
	struct rt_user *u;
	unsigned seed;
};
static void *user_thread(void *p)
{
	struct uarg *a = p;
	user_loop(a->m, a->u, a->seed);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The owner moving random blocks for secs, then telling the users to
 * stop: the count of changes made. */
static long owner_run(struct model *m, struct rt_owner *o, struct rt_deferred *d, double secs, unsigned seed)
{
	double end = now_s() + secs;
	long changes = 0;
	while (now_s() < end) {
		seed = seed * 1103515245 + 12345;
		if (owner_step(m, o, d, (int)((seed >> 8) % NFILE), (int)((seed >> 20) % FBLK), 0) == 0)
			changes++;
	}
	__atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
	return changes;
}

/* The owner and one admitted user (this process) around a new model. */
struct world {
	struct model *m;
	struct rt_owner o;
	struct rt_deferred d;
	struct rt_user u;
};
static int world_up(struct world *w)
{
	w->m = calloc(1, sizeof(*w->m));
	if (!w->m || rt_owner_init(&w->o) < 0)
		return -1;
	model_init(w->m);
	rt_deferred_init(&w->d);
	int p = rt_attach(&w->o, getpid());
	return p < 0 || rt_user_map(&w->u, w->o.fd, p) < 0 ? -1 : 0;
}
static void world_down(struct world *w)
{
	rt_user_unmap(&w->u);
	rt_deferred_fini(&w->d);
	rt_owner_fini(&w->o);
	free(w->m);
}

/* Threads: 3 users against the owner for `secs`.  Returns the stale
 * count; *reads the operations checked. */
static uint64_t run_threads(double secs, uint64_t *reads, long *changes)
{
	struct world w;
	if (world_up(&w) < 0)
		return UINT64_MAX;
	struct model *m = w.m;
	pthread_t th[3];
	struct uarg a[3];
	for (int i = 0; i < 3; i++) {
		a[i] = (struct uarg){m, &w.u, 7u + (unsigned)i};
		pthread_create(&th[i], NULL, user_thread, &a[i]);
	}
	*changes = owner_run(m, &w.o, &w.d, secs, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	*reads = m->reads;
	uint64_t stale = m->stale;
	world_down(&w);
	return stale;
}

static void t_threads_never_stale(void)
{
	uint64_t reads;
	long changes;
	uint64_t stale = run_threads(1.5, &reads, &changes);
	printf("    %llu reads checked against %ld map changes\n", (unsigned long long)reads, changes);
	CHECK_EQ(stale, 0);
	CHECK(reads > 1000);
	CHECK(changes > 1000);
}

/* One user inside an operation on file 0 with a valid map while the owner
 * moves that file's block: the right owner keeps the old block (the read
 * sees the file's bytes, and the block comes back once the user leaves);
 * the wrong one, reusing it at once, is caught by the same read. */
static int one_race(int wrong)
{
	struct world w;
	if (world_up(&w) < 0)
		return -1;
	struct model *m = w.m;
	struct rt_owner *o = &w.o;
	struct rt_deferred *d = &w.d;
	struct rt_user *u = &w.u;
	uint64_t map[FBLK];
	uint64_t ver = fetch(m, u->t, 0, map);
	int s = rt_slot_get(u), stale = 0;
	if (rt_enter(u, s, m->ino_base) != ver)
		return -1;
	int nfree = m->nfree;
	owner_step(m, o, d, 0, 0, wrong); /* the change, in the middle of the user's operation */
	if (!holds(m, map[0], label(0)))
		stale = 1;
	rt_leave(u, s);
	if (!wrong) {
		/* held while the user was inside; back once it left */
		if (m->nfree != nfree - 1 || d->n != 1)
			stale = 2;
		rt_release(d, o, give_back, m);
		if (m->nfree != nfree || d->n != 0)
			stale = 3;
	}
	rt_slot_put(u, s);
	world_down(&w);
	return stale;
}

static void t_wrong_owner_caught(void)
{
	CHECK_EQ(one_race(0), 0);
	CHECK_EQ(one_race(1), 1);
}

/* A forked child's copy of the parent's user is unusable (it would share
 * the parent's slots); the parent's stays usable. */
static void t_fork_unusable(void)
{
	struct rt_owner o;
	struct rt_user u;
	CHECK_EQ(rt_owner_init(&o), 0);
	CHECK_EQ(rt_user_map(&u, o.fd, 0), 0);
	CHECK(rt_usable(&u));
	pid_t kid = fork();
	if (kid == 0)
		_exit(!rt_usable(&u) && rt_slot_get(&u) == -1 ? 0 : 1);
	int st;
	waitpid(kid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(rt_usable(&u));
	int s = rt_slot_get(&u);
	CHECK(s >= 0);
	rt_slot_put(&u, s);
	rt_user_unmap(&u);
	CHECK(!rt_usable(&u));
	rt_owner_fini(&o);
}

/* Processes: the model and the table are shared memory; two forked users. */
static void t_processes_never_stale(void)
{
	struct model *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	model_init(m);
	struct rt_owner o;
	struct rt_deferred d;
	CHECK_EQ(rt_owner_init(&o), 0);
	rt_deferred_init(&d);
	pid_t kid[2];
	int go[2];
	CHECK_EQ(pipe(go), 0);
	for (int k = 0; k < 2; k++) {
		kid[k] = fork();
		if (kid[k] == 0) {
			char c;
			if (read(go[0], &c, 1) != 1) /* the index, once the owner admitted us */
				_exit(3);
			struct rt_user u;
			if (rt_user_map(&u, o.fd, c) < 0)
				_exit(2);
			user_loop(m, &u, 11u + (unsigned)k);
			_exit(0);
		}
		int p = rt_attach(&o, kid[k]);
		CHECK(p >= 0);
		char c = (char)p;
		CHECK_EQ(write(go[1], &c, 1), 1);
	}
	long changes = owner_run(m, &o, &d, 1.5, 3);
	int ok = 1;
	for (int k = 0; k < 2; k++) {
		int st;
		waitpid(kid[k], &st, 0);
		ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	printf("    2 processes: %llu reads checked against %ld map changes\n", (unsigned long long)m->reads, changes);
	uint64_t stale = m->stale, reads = m->reads;
	close(go[0]);
	close(go[1]);
	rt_deferred_fini(&d);
	rt_owner_fini(&o);
	munmap(m, sizeof(*m));
	CHECK(ok);
	CHECK_EQ(stale, 0);
	CHECK(reads > 1000 && changes > 1000);
}

/* A process killed inside an operation holds its slot only until it is
 * gone; one that exits mid-operation the same; a living one holds it. */
static void t_dead_process_reclaimed(void)
{
	struct rt_owner o;
	CHECK_EQ(rt_owner_init(&o), 0);
	for (int how = 0; how < 2; how++) {
		int rdy[2], go[2];
		CHECK_EQ(pipe(rdy), 0);
		CHECK_EQ(pipe(go), 0);
		pid_t kid = fork();
		if (kid == 0) {
			char c;
			if (read(go[0], &c, 1) != 1)
				_exit(3);
			struct rt_user u;
			if (rt_user_map(&u, o.fd, c) < 0)
				_exit(2);
			int s = rt_slot_get(&u);
			(void)rt_enter(&u, s, 5); /* and never leaves */
			if (write(rdy[1], "x", 1) != 1)
				_exit(4);
			if (how == 0)
				pause();
			if (read(go[0], &c, 1) != 1) /* exit (inside the operation) when told */
				_exit(5);
			_exit(0);
		}
		int p = rt_attach(&o, kid);
		CHECK(p >= 0);
		char c = (char)p, x;
		CHECK_EQ(write(go[1], &c, 1), 1);
		CHECK_EQ(read(rdy[0], &x, 1), 1);
		uint64_t g = rt_bump(&o, 5);
		CHECK(!rt_quiet(&o, g)); /* the kid is inside an operation from before g */
		CHECK(!rt_quiet(&o, g));
		if (how == 0)
			kill(kid, SIGKILL);
		else
			CHECK_EQ(write(go[1], &c, 1), 1);
		int st;
		waitpid(kid, &st, 0);
		CHECK(rt_quiet(&o, g));
		CHECK_EQ(o.pid[p], 0); /* reaped: the index is free again */
		close(rdy[0]);
		close(rdy[1]);
		close(go[0]);
		close(go[1]);
	}
	rt_owner_fini(&o);
}

/* Thread slots: 64 distinct, then none, then one again after a put. */
static void t_thread_slots(void)
{
	struct rt_owner o;
	struct rt_user u;
	CHECK_EQ(rt_owner_init(&o), 0);
	CHECK_EQ(rt_user_map(&u, o.fd, 0), 0);
	uint64_t seen = 0;
	for (int i = 0; i < RT_NTHR; i++) {
		int s = rt_slot_get(&u);
		CHECK(s >= 0 && s < RT_NTHR);
		CHECK(!(seen & (1ULL << s)));
		seen |= 1ULL << s;
	}
	CHECK_EQ(rt_slot_get(&u), -1);
	rt_slot_put(&u, 17);
	CHECK_EQ(rt_slot_get(&u), 17);
	rt_slot_put(&u, -1); /* ignored */
	rt_slot_put(&u, RT_NTHR);
	rt_user_unmap(&u);
	rt_owner_fini(&o);
}

/* A handed-over table is checked before use: size, magic, dimensions,
 * process index. */
static void t_user_map_checks(void)
{
	struct rt_owner o;
	struct rt_user u;
	CHECK_EQ(rt_owner_init(&o), 0);
	CHECK_EQ(rt_user_map(&u, o.fd, RT_NPROC), -EINVAL);
	CHECK_EQ(rt_user_map(&u, o.fd, -1), -EINVAL);
	CHECK_EQ(rt_user_map(&u, o.fd, 3), 0);
	rt_user_unmap(&u);
	/* sealed: nobody can shrink it under a user's mapping */
	CHECK(ftruncate(o.fd, 4096) < 0);
	int fd = memfd_create("x", 0);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 4096), 0);
	CHECK_EQ(rt_user_map(&u, fd, 0), -EPROTO); /* wrong size */
	CHECK_EQ(ftruncate(fd, sizeof(struct rt_table)), 0);
	CHECK_EQ(pwrite(fd, o.t, sizeof(o.t->h), 0), (ssize_t)sizeof(o.t->h));
	CHECK_EQ(rt_user_map(&u, fd, 0), -EPROTO); /* a good header, but not sealed: it could shrink */
	close(fd);
	fd = memfd_create("y", MFD_ALLOW_SEALING);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, sizeof(struct rt_table)), 0);
	CHECK_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	CHECK_EQ(rt_user_map(&u, fd, 0), -EPROTO); /* no magic */
	struct rt_head h = {.magic = RT_MAGIC, .nproc = RT_NPROC, .nthr = RT_NTHR, .nver = RT_NVER + 1};
	CHECK_EQ(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	CHECK_EQ(rt_user_map(&u, fd, 0), -EPROTO); /* other dimensions */
	close(fd);
	CHECK_EQ(rt_user_map(&u, 12345, 0), -EBADF);
	rt_owner_fini(&o);
}

/* Deferred blocks go back exactly when their tag is quiet, whatever the
 * order they were added in; garbage slot values of a process that is gone
 * hold nothing. */
static uint64_t released;
static void count_release(void *ctx, uint64_t blk, uint64_t n)
{
	(void)ctx;
	(void)blk;
	released += n;
}
static void t_deferred_release(void)
{
	struct rt_owner o;
	struct rt_deferred d;
	struct rt_user u;
	CHECK_EQ(rt_owner_init(&o), 0);
	rt_deferred_init(&d);
	int p = rt_attach(&o, getpid());
	CHECK(p >= 0);
	CHECK_EQ(rt_user_map(&u, o.fd, p), 0);
	int s = rt_slot_get(&u);
	uint64_t g1 = rt_bump(&o, 1);
	(void)rt_enter(&u, s, 1); /* an operation in generation g1 */
	uint64_t g2 = rt_bump(&o, 2), g3 = rt_bump(&o, 3);
	released = 0;
	CHECK_EQ(rt_defer(&d, 10, 3, g3, &o), 0);
	CHECK_EQ(rt_defer(&d, 20, 2, g1, &o), 0); /* out of order */
	CHECK_EQ(rt_defer(&d, 30, 1, g2, &o), 0);
	CHECK_EQ(rt_defer(&d, 40, 7, g3 + 1, &o), -EINVAL); /* not a bump's result */
	CHECK_EQ(rt_defer(&d, 40, 7, 0, &o), -EINVAL);
	CHECK_EQ(rt_release(&d, &o, count_release, NULL), 2); /* only g1's: the operation started in g1 */
	CHECK_EQ(d.blocks, 4);
	rt_leave(&u, s);
	CHECK_EQ(rt_release(&d, &o, count_release, NULL), 4);
	CHECK_EQ(d.blocks, 0);
	CHECK_EQ(released, 6);
	CHECK_EQ(d.n, 0);
	/* a slot nobody owns (a process index not admitted) is not looked at */
	__atomic_store_n(&o.t->slot[p + 1][0].active, 1, __ATOMIC_SEQ_CST);
	CHECK(rt_quiet(&o, rt_tick(&o)));
	rt_slot_put(&u, s);
	rt_user_unmap(&u);
	rt_detach(&o, p);
	rt_deferred_fini(&d);
	rt_owner_fini(&o);
}

/* The kernel bit: held while any hold is, kept across bumps, seen by a
 * user as "not through the map"; the drain after setting it waits for an
 * operation that missed it, and gives up after its time; the lease. */
static void t_kernel_bit_and_lease(void)
{
	struct rt_owner o;
	struct rt_user u;
	CHECK_EQ(rt_owner_init(&o), 0);
	int p = rt_attach(&o, getpid());
	CHECK(p >= 0);
	CHECK_EQ(rt_user_map(&u, o.fd, p), 0);
	int s = rt_slot_get(&u);
	uint64_t v0 = rt_ver(o.t, 5);
	CHECK(!rt_kernel_bit(v0));
	uint64_t a = rt_enter(&u, s, 5); /* an operation that started before the bit */
	CHECK_EQ(a, v0);
	uint64_t g = rt_kernel(&o, 5, 1);
	CHECK(rt_kernel_bit(rt_ver(o.t, 5)));
	CHECK(rt_kernel_bit(rt_ver(o.t, 5 + RT_NVER))); /* the bucket's */
	CHECK(!rt_kernel_bit(rt_ver(o.t, 6)));
	CHECK_EQ(rt_wait(&o, g, 30), 0); /* the operation still runs: the drain gives up */
	rt_leave(&u, s);
	CHECK_EQ(rt_wait(&o, g, 30), 1);
	(void)rt_kernel(&o, 5, 1); /* a second hold */
	(void)rt_bump(&o, 5);
	CHECK(rt_kernel_bit(rt_ver(o.t, 5))); /* a bump keeps it */
	CHECK(rt_ver(o.t, 5) != v0 + 1);
	(void)rt_kernel(&o, 5, 0);
	CHECK(rt_kernel_bit(rt_ver(o.t, 5))); /* one hold left */
	(void)rt_kernel(&o, 5, 0);
	CHECK(!rt_kernel_bit(rt_ver(o.t, 5)));
	(void)rt_kernel(&o, 5, 0); /* more drops than holds: ignored */
	CHECK(!rt_kernel_bit(rt_ver(o.t, 5)));
	uint64_t v6 = rt_ver(o.t, 6);
	(void)rt_kernel_all(&o, 1);
	CHECK(rt_kernel_bit(rt_ver(o.t, 6)) && rt_kernel_bit(rt_ver(o.t, RT_NVER - 1)));
	(void)rt_bump_all(&o);
	(void)rt_kernel_all(&o, 0);
	CHECK(!rt_kernel_bit(rt_ver(o.t, 6)) && rt_ver(o.t, 6) == v6 + 4);
	CHECK(!rt_alive(&u)); /* no lease yet */
	rt_renew(&o, 50);
	CHECK(rt_alive(&u));
	struct timespec ts = {0, 80 * 1000 * 1000};
	nanosleep(&ts, NULL);
	CHECK(!rt_alive(&u)); /* the owner stopped renewing */
	rt_slot_put(&u, s);
	rt_user_unmap(&u);
	rt_detach(&o, p);
	rt_owner_fini(&o);
}

/* The grant word (readers.h): once the owner takes a grant back, the size
 * it read is final: no append its holder was told succeeded ends past it,
 * and none succeeds after; readers clamp the word and ignore other inodes'
 * slots. */
static struct rt_table *gt;
static uint64_t acked;
static void *appender(void *arg)
{
	(void)arg;
	for (uint64_t to = 4096 + 512;; to += 512) {
		if (!rt_grant_publish(gt, 5, to))
			return NULL;
		__atomic_store_n(&acked, to, __ATOMIC_RELEASE);
	}
}

static void t_grant_word(void)
{
	gt = calloc(1, sizeof(*gt));
	CHECK(gt);
	if (!gt)
		return;
	int bad = 0;
	for (int round = 0; round < 200; round++) {
		__atomic_store_n(&gt->grant[5].end, 1ULL << 40, __ATOMIC_SEQ_CST);
		__atomic_store_n(&gt->grant[5].word, 4096, __ATOMIC_SEQ_CST);
		__atomic_store_n(&gt->grant[5].ino, 77, __ATOMIC_SEQ_CST);
		acked = 0;
		pthread_t th;
		pthread_create(&th, NULL, appender, NULL);
		for (volatile int spin = 0; spin < (round % 10) * 1000; spin++)
			;
		uint64_t final = rt_grant_revoke(gt, 5);
		pthread_join(th, NULL);
		bad += __atomic_load_n(&acked, __ATOMIC_ACQUIRE) > final;
		bad += rt_grant_publish(gt, 5, final + 512) != 0; /* none after */
		bad += rt_grant_size(gt, 5, 77, 1ULL << 40) != final;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(rt_grant_size(gt, 5, 78, 1ULL << 40), 0); /* another inode's slot */
	CHECK_EQ(rt_grant_size(gt, 5, 77, 4096), 4096);   /* clamped to the space the map has */
	CHECK_EQ(rt_grant_size(gt, -1, 77, 4096), 0);
	CHECK_EQ(rt_grant_size(gt, RT_NGRANT, 77, 4096), 0);
	free(gt);
}

int main(void)
{
	RUN(t_grant_word);
	RUN(t_thread_slots);
	RUN(t_user_map_checks);
	RUN(t_deferred_release);
	RUN(t_kernel_bit_and_lease);
	RUN(t_dead_process_reclaimed);
	RUN(t_threads_never_stale);
	RUN(t_processes_never_stale);
	RUN(t_wrong_owner_caught);
	RUN(t_fork_unusable);
	DONE();
}
