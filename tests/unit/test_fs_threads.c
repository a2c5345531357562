/*
 * test_fs_threads.c - 1000 threads on one pool: disjoint ranges of one file
 * (first writes extend it, later ones overwrite in place, in parallel), and
 * one file each in a shared directory (create, write, read back, rename,
 * unlink half).  Every byte is checked afterwards, and fsck must be clean.
 * Then a rename storm: renames inside one directory (which take no global
 * lock), across directories, of directories, exchanges, links, unlinks and
 * rmdirs at once, over files hard-linked into both directories (so two
 * renames meet the same inodes in different roles), and a directory
 * exchanged with a file of lower number that is linked into it while
 * names of that file come and go inside it: every thread must
 * finish (a deadlock fails the test after a deadline) and every name left
 * must be whole.  Runs under ThreadSanitizer in `make test`, whose
 * lock-order checker reports an inversion even when no deadlock happens.
 */
#include "harness.h"
#include "poise.h"
#include "poise-admin.h"
#include "fs_check.h"
#include "dev/persist.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define NT 1000
#define SPAN 8192
static struct poise_pool *pool;
static char img[400];
static int shared_fd;
static long failures;

static void fill(char *b, size_t n, int t, int round)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(1 + (t * 31 + round * 7 + (int)i) % 250);
}

static void *one_file_worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	char buf[SPAN], back[SPAN];
	for (int round = 0; round < 4; round++) {
		fill(buf, SPAN, t, round);
		if (poise_pwrite(pool, shared_fd, buf, SPAN, (off_t)t * SPAN) != SPAN ||
		    poise_pread(pool, shared_fd, back, SPAN, (off_t)t * SPAN) != SPAN ||
		    memcmp(buf, back, SPAN))
			__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *many_files_worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	char name[64], to[64], buf[3000], back[3000];
	snprintf(name, sizeof(name), "/many/t%d", t);
	snprintf(to, sizeof(to), "/many/renamed-%d", t);
	fill(buf, sizeof(buf), t, 9);
	int fd = poise_open(pool, name, O_CREAT | O_EXCL | O_RDWR, 0644);
	if (fd < 0 || poise_pwrite(pool, fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
	    poise_pread(pool, fd, back, sizeof(back), 0) != (ssize_t)sizeof(back) ||
	    memcmp(buf, back, sizeof(buf)) || poise_close(pool, fd) < 0 ||
	    poise_rename(pool, name, to) < 0 || (t % 2 && poise_unlink(pool, to) < 0))
		__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
	return NULL;
}

static int run(void *(*fn)(void *))
{
	static pthread_t th[NT];
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 << 10);
	for (int i = 0; i < NT; i++)
		if (pthread_create(&th[i], &a, fn, (void *)(intptr_t)i))
			return -1;
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	return 0;
}

static void t_one_file_disjoint_ranges(void)
{
	shared_fd = poise_open(pool, "/shared", O_CREAT | O_RDWR, 0644);
	CHECK(shared_fd >= 0);
	CHECK_EQ(run(one_file_worker), 0);
	CHECK_EQ(failures, 0);
	struct stat st;
	poise_fstat(pool, shared_fd, &st);
	CHECK_EQ(st.st_size, (off_t)NT * SPAN);
	char buf[SPAN], want[SPAN];
	for (int t = 0; t < NT; t++) {
		fill(want, SPAN, t, 3);
		CHECK_EQ(poise_pread(pool, shared_fd, buf, SPAN, (off_t)t * SPAN), SPAN);
		CHECK(!memcmp(buf, want, SPAN));
	}
	poise_close(pool, shared_fd);
}

static void t_many_files(void)
{
	CHECK_EQ(poise_mkdir(pool, "/many", 0755), 0);
	CHECK_EQ(run(many_files_worker), 0);
	CHECK_EQ(failures, 0);
	struct poise_dir *d;
	struct poise_entry e;
	int n = 0;
	CHECK_EQ(poise_opendir(pool, "/many", &d), 0);
	while (poise_readdir(d, &e) > 0) {
		CHECK(!strncmp(e.name, "renamed-", 8));
		n++;
	}
	poise_closedir(&d);
	CHECK_EQ(n, NT / 2);
}

/* ---- the rename storm ---- */

#define STORM_T 8
#define STORM_N 12
#define STORM_OPS 4000

static uint64_t storm_x; /* a directory exchanged with a file linked into it */

static void *storm_worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	unsigned seed = 77u + (unsigned)t;
	char p[64], q[64];
	for (int k = 0; k < STORM_OPS; k++) {
		int i = (int)(rand_r(&seed) % STORM_N), j = (int)(rand_r(&seed) % STORM_N), r = 0;
		const char *da = t % 2 ? "b" : "a", *db = t % 2 ? "a" : "b";
		switch (t < 4 ? t % 2 : t) {
		case 6: /* a directory and a file of lower number, exchanged */
			r = poise_renameat2(pool, POISE_ROOT, "/s/c/f", POISE_ROOT, "/s/x/y", RENAME_EXCHANGE);
			break;
		case 7: /* ... while names of that file come and go inside the directory */
			if (k % 2)
				r = poise_renameat2(pool, storm_x, k % 4 == 1 ? "g" : "h", storm_x,
						    k % 4 == 1 ? "h" : "g", 0);
			else if ((r = poise_linkat(pool, storm_x, "g", storm_x, "k", 0)) == 0)
				r = poise_unlinkat(pool, storm_x, "k", 0);
			break;
		case 0:
		case 1: /* inside one directory, replacing; a missing source comes back from the other one */
			snprintf(p, sizeof(p), "/s/%s/n%d", da, i);
			snprintf(q, sizeof(q), "/s/%s/n%d", da, j);
			r = poise_rename(pool, p, q);
			if (r == -ENOENT) {
				snprintf(q, sizeof(q), "/s/%s/n%d", db, i);
				r = poise_link(pool, q, p);
			}
			break;
		case 4: /* across directories, and exchanges */
			snprintf(p, sizeof(p), "/s/a/n%d", i);
			snprintf(q, sizeof(q), "/s/b/n%d", j);
			r = k % 2 ? poise_renameat2(pool, POISE_ROOT, p, POISE_ROOT, q, RENAME_EXCHANGE)
				  : poise_rename(pool, q, p);
			break;
		default: /* directories inside one directory and across, and rmdir */
			snprintf(p, sizeof(p), "/s/%s/d%d", k % 3 ? "a" : "b", i % 3);
			snprintf(q, sizeof(q), "/s/%s/d%d", k % 5 ? "a" : "b", j % 3);
			r = k % 7 == 0 ? poise_rmdir(pool, p) : poise_rename(pool, p, q);
			if (r == -ENOENT || r == -ENOTEMPTY)
				r = poise_mkdir(pool, p, 0755);
			break;
		}
		if (r < 0 && r != -ENOENT && r != -EEXIST && r != -ENOTEMPTY)
			__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void t_rename_storm(void)
{
	failures = 0;
	CHECK_EQ(poise_mkdir(pool, "/s", 0755), 0);
	CHECK_EQ(poise_mkdir(pool, "/s/a", 0755), 0);
	CHECK_EQ(poise_mkdir(pool, "/s/b", 0755), 0);
	CHECK_EQ(poise_mkdir(pool, "/s/c", 0755), 0);
	int xfd = poise_open(pool, "/s/c/f", O_CREAT | O_EXCL | O_RDWR, 0644);
	CHECK(xfd >= 0);
	CHECK_EQ(poise_pwrite(pool, xfd, "file 0", 7, 0), 7);
	poise_close(pool, xfd);
	CHECK_EQ(poise_mkdir(pool, "/s/x", 0755), 0);
	CHECK_EQ(poise_mkdir(pool, "/s/x/y", 0755), 0); /* numbered after the file */
	CHECK_EQ(poise_link(pool, "/s/c/f", "/s/x/y/g"), 0);
	struct stat xs;
	CHECK_EQ(poise_stat(pool, "/s/x/y", &xs), 0);
	storm_x = xs.st_ino;
	char p[64], q[64], want[64], buf[64];
	for (int i = 0; i < STORM_N; i++) {
		snprintf(p, sizeof(p), "/s/a/n%d", i);
		snprintf(q, sizeof(q), "/s/b/n%d", i);
		int fd = poise_open(pool, p, O_CREAT | O_EXCL | O_RDWR, 0644);
		CHECK(fd >= 0);
		snprintf(want, sizeof(want), "file %d", i);
		CHECK_EQ(poise_pwrite(pool, fd, want, sizeof(want), 0), (ssize_t)sizeof(want));
		poise_close(pool, fd);
		CHECK_EQ(poise_link(pool, p, q), 0);
	}
	pthread_t th[STORM_T];
	for (int t = 0; t < STORM_T; t++)
		CHECK_EQ(pthread_create(&th[t], NULL, storm_worker, (void *)(intptr_t)t), 0);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 300; /* minutes under TSan on 2 cores; a deadlock never ends */
	for (int t = 0; t < STORM_T; t++) {
		int r = pthread_timedjoin_np(th[t], NULL, &dl);
		if (r) {
			printf("FAIL rename storm: thread %d did not finish (%s): a deadlock\n", t, strerror(r));
			fflush(stdout);
			_exit(1);
		}
	}
	CHECK_EQ(failures, 0);
	int left = 0;
	for (int d = 0; d < 2; d++)
		for (int i = 0; i < STORM_N; i++) { /* every name left holds one of the files, whole */
			snprintf(p, sizeof(p), "/s/%c/n%d", "ab"[d], i);
			int fd = poise_open(pool, p, O_RDONLY, 0);
			if (fd == -ENOENT)
				continue;
			left++;
			CHECK(fd >= 0);
			CHECK_EQ(poise_pread(pool, fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
			int n = -1;
			CHECK(sscanf(buf, "file %d", &n) == 1 && n >= 0 && n < STORM_N);
			poise_close(pool, fd);
		}
	CHECK(left > 0);
}

/* Inode numbers looked up while they are being created: a creator makes
 * and removes names in a pool of few inodes (so numbers come back at
 * once, their freed dinodes still sealed in both copies) while a prober
 * stats every inode number by number (what an NFS file handle or a scrub
 * does).  A lookup that read the dinode between the commit's writes of its
 * two copies would once rewrite the new primary from the old replica (a
 * freed inode): the file was gone after the next mount.  Every name the
 * creator left must be there after a remount, and fsck clean. */
#define IG_NAMES 16
#define IG_ITER 20000
static struct poise_pool *ig_pool;
static int ig_done;
static void *ig_prober(void *arg)
{
	(void)arg;
	struct stat st;
	while (!__atomic_load_n(&ig_done, __ATOMIC_ACQUIRE))
		for (uint64_t ino = 1; ino <= 64; ino++)
			(void)poise_fstatat(ig_pool, ino, "", &st, 0);
	return NULL;
}

static void t_iget_during_create(void)
{
	char im[400], name[32];
	snprintf(im, sizeof(im), "%s/iget.img", h_tmpdir());
	CHECK_EQ(poise_mkfs(im, 4 << 20, 64, 0), 0);
	CHECK_EQ(poise_pool_open(im, 0, &ig_pool), 0);
	int live[IG_NAMES] = {0};
	__atomic_store_n(&ig_done, 0, __ATOMIC_RELEASE);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, ig_prober, NULL), 0);
	long errs = 0;
	/* (a multiple of IG_NAMES, and half of them once more: those end live) */
	for (int i = 0; i < IG_ITER / (H_SANITIZED ? 10 : 1) + IG_NAMES / 2; i++) {
		int k = i % IG_NAMES;
		snprintf(name, sizeof(name), "/c%d", k);
		if (live[k]) {
			errs += poise_unlink(ig_pool, name) != 0;
		} else {
			int fd = poise_open(ig_pool, name, O_CREAT | O_EXCL | O_WRONLY, 0644);
			errs += fd < 0;
			if (fd >= 0)
				poise_close(ig_pool, fd);
		}
		live[k] = !live[k];
	}
	__atomic_store_n(&ig_done, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK_EQ(errs, 0);
	poise_pool_close(&ig_pool);
	CHECK_EQ(poise_pool_open(im, 0, &ig_pool), 0); /* the dinodes as the media holds them */
	struct stat st;
	for (int k = 0; k < IG_NAMES; k++) {
		snprintf(name, sizeof(name), "/c%d", k);
		CHECK_EQ(poise_stat(ig_pool, name, &st), live[k] ? 0 : -ENOENT);
	}
	poise_pool_close(&ig_pool);
	CHECK(h_fsck_quiet(im));
}

/* The same, deterministic: between every two records a create applies,
 * another thread stats the number being created.  It must not exist until
 * the create returns (and must not be loaded, half written, into the
 * cache); then it must. */
static uint64_t nu_ino;
static long nu_seen, nu_calls;
static void *nu_probe(void *arg)
{
	(void)arg;
	struct stat st;
	if (poise_fstatat(ig_pool, nu_ino, "", &st, 0) != -ENOENT)
		nu_seen++;
	return NULL;
}

static void nu_hook(uint64_t off)
{
	(void)off;
	pthread_t t;
	nu_calls++;
	if (pthread_create(&t, NULL, nu_probe, NULL) == 0)
		pthread_join(t, NULL);
}

static void t_new_inode_unseen(void)
{
	char im[400];
	snprintf(im, sizeof(im), "%s/unseen.img", h_tmpdir());
	CHECK_EQ(poise_mkfs(im, 4 << 20, 64, 0), 0);
	CHECK_EQ(poise_pool_open(im, 0, &ig_pool), 0);
	/* every number in use, then one freed: the create must take that one,
	 * whose dinode is sealed (mode 0) in both copies, the case where a
	 * torn read would heal the new primary from the old replica */
	char name[32];
	int n = 0, fd;
	for (; n < 100; n++) {
		snprintf(name, sizeof(name), "/f%d", n);
		if ((fd = poise_open(ig_pool, name, O_CREAT | O_EXCL | O_WRONLY, 0644)) < 0)
			break;
		poise_close(ig_pool, fd);
	}
	CHECK_EQ(fd, -ENOSPC);
	CHECK(n > 10);
	struct stat st;
	CHECK_EQ(poise_stat(ig_pool, "/f5", &st), 0);
	CHECK_EQ(poise_unlink(ig_pool, "/f5"), 0);
	nu_ino = st.st_ino; /* the only free number */
	poise_apply_hook = nu_hook;
	fd = poise_open(ig_pool, "/b", O_CREAT | O_EXCL | O_WRONLY, 0644);
	poise_apply_hook = NULL;
	CHECK(fd >= 0);
	poise_close(ig_pool, fd);
	CHECK_EQ(poise_stat(ig_pool, "/b", &st), 0);
	CHECK_EQ(st.st_ino, nu_ino);
	CHECK(nu_calls >= 2);
	CHECK_EQ(nu_seen, 0);
	CHECK_EQ(poise_fstatat(ig_pool, nu_ino, "", &st, 0), 0);
	poise_pool_close(&ig_pool);
	CHECK(h_fsck_quiet(im));
}

int main(void)
{
	snprintf(img, sizeof(img), "%s/threads.img", h_tmpdir());
	if (poise_mkfs(img, 128 << 20, 0, 0) < 0 || poise_pool_open(img, 0, &pool) < 0)
		return 2;
	RUN(t_one_file_disjoint_ranges);
	RUN(t_many_files);
	RUN(t_rename_storm);
	RUN(t_iget_during_create);
	RUN(t_new_inode_unseen);
	poise_pool_close(&pool);
	int clean = h_fsck_clean(img);
	h_passed += clean;
	h_failed += !clean;
	printf("%s fsck after the threads\n", clean ? "ok  " : "FAIL");
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
