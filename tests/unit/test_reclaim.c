/*
 * test_reclaim.c - the memory of deleted inodes is given back while the
 * pool stays open (inode.c's graveyard and limbo, common/ebr.c), and never
 * while a thread may still hold it:
 *   - create + unlink and mkdir + rmdir churn keeps the dead inodes held
 *     in memory under a bound (before, every one stayed until unmount);
 *   - a thread inside a section keeps everything buried after it entered;
 *     once it leaves, the next batches free it;
 *   - threads that look names up, stat and open them while others delete
 *     and recreate them (lock-free inode-cache reads against frees: ASan
 *     and TSan in `make test` see a use after free or a race), then fsck;
 *   - no public call reads the inode cache outside a section;
 *   - a child forked while a thread is inside a section reclaims;
 *   - O_CREAT through a dangling symlink fails at once;
 *   - a read outside any section stops reclamation for good (last: it is
 *     process-wide).
 */
#include "harness.h"
#include "poise.h"
#include "fs_check.h"
#include "common/ebr.h"
#include "fs/fs.h"
#include "fs/api.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

static struct poise_pool *pool;
static char img[400];

/* Dead inodes still in memory (the pool is quiet). */
static long held(void)
{
	struct poise_fs *fs = poise_pool_fs(pool);
	long n = 0;
	pthread_mutex_lock(&fs->icache_lock);
	for (struct inode *g = fs->graves; g; g = g->grave)
		n++;
	for (struct inode *g = fs->limbo; g; g = g->grave)
		n++;
	pthread_mutex_unlock(&fs->icache_lock);
	return n;
}

/* n files created and unlinked, and n/4 directories made and removed */
static int churn(const char *tag, int n)
{
	char p[64];
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/%s%d", tag, i % 64);
		int fd = poise_open(pool, p, O_CREAT | O_RDWR, 0644);
		if (fd < 0)
			return fd;
		int r = poise_pwrite(pool, fd, p, 8, 0);
		poise_close(pool, fd);
		if (r != 8 || (r = poise_unlink(pool, p)) < 0)
			return r < 0 ? r : -EIO;
		if (i % 4 == 0) {
			snprintf(p, sizeof(p), "/%sd%d", tag, i % 64);
			if ((r = poise_mkdir(pool, p, 0755)) < 0 || (r = poise_rmdir(pool, p)) < 0)
				return r;
		}
	}
	return 0;
}

static void t_churn_bounded(void)
{
	CHECK_EQ(churn("c", 20000), 0);
	long h = held();
	/* 25,000 inodes died: a graveyard not yet full, and batches some
	 * thread's section may still have covered at the last pass */
	CHECK(h < 3 * 512);
	CHECK_EQ(ebr_unguarded_count(), 0);
}

static int inside_go, inside_leave;

static void *inside(void *arg)
{
	(void)arg;
	ebr_enter();
	__atomic_store_n(&inside_go, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&inside_leave, __ATOMIC_ACQUIRE))
		usleep(1000);
	ebr_leave();
	return NULL;
}

/* A thread inside a section until stop_inside(). */
static int start_inside(pthread_t *th)
{
	inside_go = inside_leave = 0;
	int r = pthread_create(th, NULL, inside, NULL);
	while (r == 0 && !__atomic_load_n(&inside_go, __ATOMIC_ACQUIRE))
		usleep(1000);
	return r;
}

static void stop_inside(pthread_t th)
{
	__atomic_store_n(&inside_leave, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
}

static void t_section_holds(void)
{
	pthread_t th;
	CHECK_EQ(start_inside(&th), 0);
	CHECK_EQ(churn("s", 2000), 0); /* 2,500 deaths while the thread is inside */
	long during = held();
	stop_inside(th);
	CHECK(during >= 2500); /* only what died before it entered may have gone */
	CHECK_EQ(churn("t", 1300), 0); /* three more passes, the thread gone */
	CHECK(held() < 3 * 512);
}

#define RT 4
static int race_stop, race_fail;

static void *racer(void *arg)
{
	int t = (int)(intptr_t)arg;
	unsigned seed = 99u + (unsigned)t;
	char p[64];
	struct stat st;
	while (!__atomic_load_n(&race_stop, __ATOMIC_ACQUIRE)) {
		snprintf(p, sizeof(p), "/r/n%u", rand_r(&seed) % 16);
		int r = 0;
		switch (t % 2) {
		case 0: { /* deaths and births */
			int fd = poise_open(pool, p, O_CREAT | O_RDWR, 0644);
			if (fd >= 0)
				poise_close(pool, fd);
			else
				r = fd;
			if (r == 0 && (r = poise_unlink(pool, p)) == -ENOENT)
				r = 0;
			break;
		}
		default: /* lookups of the same names */
			r = poise_stat(pool, p, &st);
			if (r == 0) {
				int fd = poise_open(pool, p, O_RDONLY, 0);
				if (fd >= 0)
					poise_close(pool, fd);
				else if (fd != -ENOENT)
					r = fd;
			}
			if (r == -ENOENT)
				r = 0;
			break;
		}
		if (r < 0 && __atomic_fetch_add(&race_fail, 1, __ATOMIC_RELAXED) < 3)
			fprintf(stderr, "    thread %d on %s: %s\n", t, p, strerror(-r));
	}
	return NULL;
}

static void t_race(void)
{
	CHECK_EQ(poise_mkdir(pool, "/r", 0755), 0);
	race_stop = race_fail = 0;
	pthread_t th[RT];
	for (int t = 0; t < RT; t++)
		CHECK_EQ(pthread_create(&th[t], NULL, racer, (void *)(intptr_t)t), 0);
	sleep(H_SANITIZED ? 4 : 2);
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELEASE);
	for (int t = 0; t < RT; t++)
		pthread_join(th[t], NULL);
	CHECK_EQ(race_fail, 0);
	CHECK_EQ(ebr_unguarded_count(), 0);
}

/* A child forked while another thread is inside a section reclaims in a
 * pool of its own (the parent's threads do not exist there). */
static void t_fork_child(void)
{
	pthread_t th;
	CHECK_EQ(start_inside(&th), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char cimg[450];
		snprintf(cimg, sizeof(cimg), "%s/child.img", h_tmpdir());
		if (poise_mkfs(cimg, 64 << 20, 0, 0) < 0 || poise_pool_open(cimg, 0, &pool) < 0)
			_exit(2);
		int r = churn("f", 2000);
		long h = held();
		poise_pool_close(&pool);
		_exit(r == 0 && h < 3 * 512 ? 0 : 1);
	}
	stop_inside(th);
	CHECK(pid > 0);
	int st = 0;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
}

/* O_CREAT through a symlink to nothing: ENOENT at once, not after
 * retries as if the name had been unlinked under it (timed against opens
 * of a name in a directory that does not exist, in the same run). */
static long ns_since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000000000L + (b.tv_nsec - a->tv_nsec);
}

static void t_creat_dangling(void)
{
	CHECK_EQ(poise_symlink(pool, "/nowhere/x", "/dl"), 0);
	struct timespec a;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 200; i++)
		CHECK_EQ(poise_open(pool, "/nowhere/x", O_CREAT | O_RDWR, 0644), -ENOENT);
	long plain = ns_since(&a);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 200; i++)
		CHECK_EQ(poise_open(pool, "/dl", O_CREAT | O_RDWR, 0644), -ENOENT);
	long dangling = ns_since(&a);
	/* a few walks each, against a thousand */
	CHECK(dangling < 30 * plain);
	CHECK_EQ(poise_unlink(pool, "/dl"), 0);
}

static void t_unguarded_stops(void)
{
	ebr_note_unguarded();
	long before = held();
	CHECK_EQ(churn("u", 1200), 0);
	CHECK(held() >= before + 1500); /* nothing freed from here on */
}

int main(void)
{
	snprintf(img, sizeof(img), "%s/reclaim.img", h_tmpdir());
	if (poise_mkfs(img, 128 << 20, 0, 0) < 0 || poise_pool_open(img, 0, &pool) < 0)
		return 2;
	RUN(t_churn_bounded);
	RUN(t_section_holds);
	RUN(t_race);
	RUN(t_fork_child);
	RUN(t_creat_dangling);
	RUN(t_unguarded_stops);
	poise_pool_close(&pool);
	int clean = h_fsck_clean(img);
	h_passed += clean;
	h_failed += !clean;
	printf("%s fsck after the churn\n", clean ? "ok  " : "FAIL");
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
