/*
 * test_fs_faults.c - the fault loop, in the spirit of SQLite's I/O-error
 * tests: a workload of namespace and data calls runs with the n-th block
 * allocation, inode allocation, media read or media write failing, for
 * n = 1, 2, ... until a run injects nothing.  A media write that fails
 * leaves its sectors bad, as on a real platform.  After every run the pool
 * must mount (log replay) and fsck must be clean; when the fault fired,
 * either some call reported an error, or the fault was masked (a replica
 * took the write, a retry cleared the sector) and the tree is the one a
 * run without faults leaves, but for file bytes of the sector the media
 * lost, which read as zeros: nothing fails silently.
 */
#include "harness.h"
#include "poise.h"
#include "fs_check.h"
#include "common/fault.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

static char base[300], img[300];

/* The whole tree, flattened: each name with its type, size, link count
 * and bytes (files up to 64 KiB). */
struct node {
	char path[600];
	mode_t mode;
	off_t size;
	nlink_t nlink;
	char *bytes;
};
struct tree {
	struct node n[64];
	int count;
};

static void flatten(struct poise_pool *p, const char *dir, struct tree *t)
{
	struct poise_dir *d;
	if (poise_opendir(p, dir, &d) < 0)
		return;
	struct poise_entry e;
	char names[64][256];
	int n = 0;
	while (n < 64 && poise_readdir(d, &e) > 0)
		snprintf(names[n++], 256, "%s", e.name);
	poise_closedir(&d);
	qsort(names, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
	for (int i = 0; i < n && t->count < 64; i++) {
		struct node *x = &t->n[t->count++];
		struct stat st;
		snprintf(x->path, sizeof(x->path), "%.300s/%.255s", strcmp(dir, "/") ? dir : "", names[i]);
		if (poise_lstat(p, x->path, &st) < 0)
			continue;
		x->mode = st.st_mode;
		x->size = st.st_size;
		x->nlink = st.st_nlink;
		if (S_ISDIR(st.st_mode)) {
			flatten(p, x->path, t);
		} else if (S_ISREG(st.st_mode) && st.st_size <= 65536) {
			x->bytes = calloc(1, (size_t)st.st_size + 1);
			int fd = poise_open(p, x->path, O_RDONLY, 0);
			if (poise_pread(p, fd, x->bytes, (size_t)st.st_size, 0) != st.st_size) {
				free(x->bytes);
				x->bytes = NULL; /* unreadable */
			}
			poise_close(p, fd);
		}
	}
}

static void tree_free(struct tree *t)
{
	for (int i = 0; i < t->count; i++)
		free(t->n[i].bytes);
	t->count = 0;
}

/* The same tree as ref, except file bytes a failed write turned bad and a
 * retry cleared: those read as zeros (their old content was on the sector
 * the media lost).  1 when so. */
static int same_tree(const struct tree *t, const struct tree *ref)
{
	if (t->count != ref->count)
		return 0;
	for (int i = 0; i < t->count; i++) {
		const struct node *a = &t->n[i], *b = &ref->n[i];
		if (strcmp(a->path, b->path) || a->mode != b->mode || a->size != b->size || a->nlink != b->nlink ||
		    !a->bytes != !b->bytes)
			return 0;
		for (off_t j = 0; a->bytes && j < a->size; j++)
			if (a->bytes[j] != b->bytes[j] && a->bytes[j] != 0)
				return 0;
	}
	return 1;
}

static int copy_file(const char *from, const char *to)
{
	char cmd[1000];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && rm -f '%s.badblocks'", from, to, to);
	return system(cmd);
}

/* The workload: returns how many calls reported an error. */
static int workload(struct poise_pool *p)
{
	static char buf[40000];
	int errs = 0, fd;
	memset(buf, 'w', sizeof(buf));
	errs += poise_mkdir(p, "/d", 0755) < 0;
	errs += poise_mkdir(p, "/d/sub", 0755) < 0;
	for (int i = 0; i < 4; i++) {
		char n[32];
		snprintf(n, sizeof(n), "/d/f%d", i);
		fd = poise_open(p, n, O_CREAT | O_RDWR, 0644);
		if (fd < 0) {
			errs++;
			continue;
		}
		errs += poise_pwrite(p, fd, buf, 5000 + (size_t)i * 3000, 0) < 0;
		errs += poise_pwrite(p, fd, buf, 100, 50) < 0;
		char r[200];
		errs += poise_pread(p, fd, r, sizeof(r), 0) < 0;
		poise_close(p, fd);
	}
	fd = poise_open(p, "/d/frag", O_CREAT | O_RDWR, 0644); /* extents spill into a chain */
	for (int b = 0; fd >= 0 && b < 24; b += 2)
		errs += poise_pwrite(p, fd, buf, 4096, (off_t)b * 4096) < 0;
	if (fd >= 0) {
		errs += poise_ftruncate(p, fd, 30000) < 0;
		errs += poise_fallocate(p, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 6000) < 0;
		poise_close(p, fd);
	} else {
		errs++;
	}
	fd = poise_open(p, "/d/log", O_CREAT | O_WRONLY | O_APPEND, 0644);
	for (int i = 0; fd >= 0 && i < 5; i++)
		errs += poise_pwrite(p, fd, buf, 3000, 0) < 0;
	if (fd >= 0)
		poise_close(p, fd);
	else
		errs++;
	errs += poise_link(p, "/d/f0", "/d/sub/hard") < 0;
	errs += poise_symlink(p, "../f1", "/d/sub/sym") < 0;
	errs += poise_rename(p, "/d/f2", "/d/f3") < 0;
	errs += poise_setxattrat(p, POISE_ROOT, "/d/f1", "user.k", "value", 5, 0) < 0;
	errs += poise_unlink(p, "/d/f1") < 0;
	errs += poise_rmdir(p, "/d/sub") < 0; /* not empty: an expected error, counted the same */
	struct poise_dir *dir;
	if (poise_opendir(p, "/d", &dir) == 0) {
		struct poise_entry e;
		while (poise_readdir(dir, &e) > 0)
			;
		poise_closedir(&dir);
	} else {
		errs++;
	}
	return errs;
}

static void t_fault_loop(void)
{
	snprintf(base, sizeof(base), "%s/base.img", h_tmpdir());
	snprintf(img, sizeof(img), "%s/run.img", h_tmpdir());
	CHECK_EQ(poise_mkfs(base, 8 << 20, 0, 0), 0);
	/* the errors a clean run reports (the rmdir of a non-empty directory) */
	CHECK_EQ(copy_file(base, img), 0);
	struct poise_pool *p;
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	int clean_errs = workload(p);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	static struct tree ref, got;
	flatten(p, "/", &ref);
	poise_pool_close(&p);
	static const char *names[] = {"block allocation", "inode allocation", "media read", "media write"};
	long total_runs = 0, total_fired = 0;
	for (int kind = 0; kind < POISE_FAULT_KINDS; kind++) {
		long runs = 0, fired = 0, silent = 0, broken = 0, masked = 0;
		for (long n = 1; n < 5000; n++) {
			if (copy_file(base, img) != 0)
				break;
			if (poise_pool_open(img, 0, &p) < 0) {
				broken++;
				break;
			}
			poise_fault_arm((enum poise_fault_kind)kind, n);
			int errs = workload(p);
			int hit = poise_fault_fired();
			poise_fault_arm(0, 0);
			poise_pool_close(&p);
			runs++;
			if (!hit)
				break;
			fired++;
			if (poise_pool_open(img, 0, &p) < 0) {
				fprintf(stderr, "    %s fault %ld: the pool does not mount: %s\n", names[kind], n, poise_errmsg());
				broken++;
				continue;
			}
			if (errs <= clean_errs) { /* masked: then nothing may differ */
				masked++;
				flatten(p, "/", &got);
				int same = same_tree(&got, &ref);
				tree_free(&got);
				if (!same) {
					silent++;
					fprintf(stderr, "    %s fault %ld: no call reported an error, yet the tree differs\n",
						names[kind], n);
				}
			}
			poise_pool_close(&p);
			if (!h_fsck_clean(img)) {
				fprintf(stderr, "    (after %s fault %ld)\n", names[kind], n);
				broken++;
			}
		}
		fprintf(stderr, "    %s: %ld runs, %ld faults injected (%ld masked by replicas or retries), %ld silent, %ld broken pools\n",
			names[kind], runs, fired, masked, silent, broken);
		CHECK_EQ(silent, 0);
		CHECK_EQ(broken, 0);
		CHECK(fired > 0);
		total_runs += runs;
		total_fired += fired;
	}
	fprintf(stderr, "    %ld runs, %ld faults injected in all\n", total_runs, total_fired);
	tree_free(&ref);
}

int main(void)
{
	RUN(t_fault_loop);
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
