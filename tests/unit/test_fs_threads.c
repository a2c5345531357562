/*
 * test_fs_threads.c - 1000 threads on one pool: disjoint ranges of one file
 * (first writes extend it, later ones overwrite in place, in parallel), and
 * one file each in a shared directory (create, write, read back, rename,
 * unlink half).  Every byte is checked afterwards, and fsck must be clean.
 * Runs under ThreadSanitizer in `make test`.
 */
#include "harness.h"
#include "poise.h"
#include "poise-admin.h"
#include "fs_check.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

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

int main(void)
{
	snprintf(img, sizeof(img), "%s/threads.img", h_tmpdir());
	if (poise_mkfs(img, 128 << 20, 0, 0) < 0 || poise_pool_open(img, 0, &pool) < 0)
		return 2;
	RUN(t_one_file_disjoint_ranges);
	RUN(t_many_files);
	poise_pool_close(&pool);
	int clean = h_fsck_clean(img);
	h_passed += clean;
	h_failed += !clean;
	printf("%s fsck after the threads\n", clean ? "ok  " : "FAIL");
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
