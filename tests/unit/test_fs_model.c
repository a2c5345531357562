/*
 * test_fs_model.c - model-based test: the same random operations (create,
 * write at random offsets, truncate, punch, rename, link, unlink, mkdir,
 * rmdir, read) applied to poise and to a directory on tmpfs; every result
 * (value or errno) must agree, and every BATCH operations the two trees are
 * compared entry by entry (type, size, link count, every byte).  The pool is
 * remounted now and then, so what is compared is what survived on media.
 * POISE_MODEL_OPS and POISE_MODEL_SEED override the defaults.
 */
#include "harness.h"
#include "poise.h"
#include "poise-admin.h"
#include "fs_check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#define BATCH 500
static char ref[300], pool_path[300];
static struct poise_pool *pool;
static unsigned seed;
static long nops, mismatches;

static unsigned rnd(unsigned n)
{
	return (unsigned)(rand_r(&seed) % n);
}

static const char *names[] = {"a", "b", "c", "dd", "e", "long-name-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789-abcdefghijklmnopqrstuvwxyz"};

static void rand_path(char *out, size_t n)
{
	int depth = 1 + (int)rnd(3);
	size_t at = 0;
	for (int i = 0; i < depth; i++)
		at += (size_t)snprintf(out + at, n - at, "/%s", names[rnd(6)]);
}

static void refpath(char *out, const char *p)
{
	sprintf(out, "%s%s", ref, p); /* callers size out for ref + p */
}

static int agree(const char *op, const char *p, long a, long b)
{
	if ((a < 0) == (b < 0) && (a >= 0 || a == b))
		return 1;
	fprintf(stderr, "    op %ld %s %s: poise %ld (%s), tmpfs %ld\n", nops, op, p, a,
		a < 0 ? poise_errmsg() : "", b);
	mismatches++;
	return 0;
}

static long sys(long r)
{
	return r < 0 ? -errno : r;
}

static void one_op(void)
{
	char p[200], q[200], rp[500], rq[500];
	static char buf[1 << 17], buf2[1 << 17];
	rand_path(p, sizeof(p));
	rand_path(q, sizeof(q));
	refpath(rp, p);
	refpath(rq, q);
	nops++;
	switch (rnd(14)) {
	case 0:
	case 1: { /* create */
		int fl = O_CREAT | O_WRONLY | (rnd(2) ? O_EXCL : 0) | (rnd(4) ? 0 : O_TRUNC);
		int a = poise_open(pool, p, fl, 0644);
		int b = open(rp, fl, 0644);
		if (agree("create", p, a, sys(b))) {
			if (a >= 0)
				poise_close(pool, a);
			if (b >= 0)
				close(b);
		}
		break;
	}
	case 2:
	case 3:
	case 4: { /* write */
		int a = poise_open(pool, p, O_WRONLY, 0), b = open(rp, O_WRONLY);
		if (!agree("open-w", p, a, sys(b)) || a < 0)
			break;
		size_t len = 1 + rnd(rnd(4) ? 9000 : sizeof(buf) - 1);
		off_t off = rnd(4) ? rnd(200000) : rnd(8) * 4096;
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)rnd(256);
		agree("pwrite", p, poise_pwrite(pool, a, buf, len, off), sys(pwrite(b, buf, len, off)));
		poise_close(pool, a);
		close(b);
		break;
	}
	case 5: { /* truncate */
		int a = poise_open(pool, p, O_WRONLY, 0), b = open(rp, O_WRONLY);
		if (!agree("open-t", p, a, sys(b)) || a < 0)
			break;
		off_t sz = rnd(3) ? rnd(250000) : 0;
		agree("ftruncate", p, poise_ftruncate(pool, a, sz), sys(ftruncate(b, sz)));
		poise_close(pool, a);
		close(b);
		break;
	}
	case 6: { /* punch */
		int a = poise_open(pool, p, O_WRONLY, 0), b = open(rp, O_WRONLY);
		if (!agree("open-p", p, a, sys(b)) || a < 0)
			break;
		off_t off = rnd(200000), len = 1 + rnd(40000);
		int m = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		agree("punch", p, poise_fallocate(pool, a, m, off, len), sys(fallocate(b, m, off, len)));
		poise_close(pool, a);
		close(b);
		break;
	}
	case 7: /* rename */
		agree("rename", p, poise_rename(pool, p, q), sys(rename(rp, rq)));
		break;
	case 8: /* link */
		agree("link", p, poise_link(pool, p, q), sys(link(rp, rq)));
		break;
	case 9: /* unlink */
		agree("unlink", p, poise_unlink(pool, p), sys(unlink(rp)));
		break;
	case 10: /* mkdir */
	case 11:
		agree("mkdir", p, poise_mkdir(pool, p, 0755), sys(mkdir(rp, 0755)));
		break;
	case 12: /* rmdir */
		agree("rmdir", p, poise_rmdir(pool, p), sys(rmdir(rp)));
		break;
	case 13: { /* read */
		int a = poise_open(pool, p, O_RDONLY, 0), b = open(rp, O_RDONLY);
		if (!agree("open-r", p, a, sys(b)) || a < 0)
			break;
		struct stat st;
		fstat(b, &st);
		if (S_ISREG(st.st_mode)) {
			off_t off = rnd(260000);
			size_t len = 1 + rnd(70000);
			long x = poise_pread(pool, a, buf, len, off), y = sys(pread(b, buf2, len, off));
			if (agree("pread", p, x, y) && x > 0 && (x != y || memcmp(buf, buf2, (size_t)x))) {
				fprintf(stderr, "    op %ld pread %s: different bytes\n", nops, p);
				mismatches++;
			}
		}
		poise_close(pool, a);
		close(b);
		break;
	}
	}
}

/* Compare the tree under path p (poise) and ref+p. */
static void compare_tree(const char *p)
{
	char rp[8192];
	if (strlen(p) > 3000)
		return; /* beyond what the kernel side can name (PATH_MAX) */
	refpath(rp, p);
	DIR *dir = opendir(rp);
	struct poise_dir *pd;
	if (!dir || poise_opendir(pool, *p ? p : "/", &pd) < 0) {
		fprintf(stderr, "    compare: cannot open %s\n", p);
		mismatches++;
		if (dir)
			closedir(dir);
		return;
	}
	int nref = 0, npoise = 0;
	struct dirent *de;
	struct poise_entry pe;
	while (poise_readdir(pd, &pe) > 0)
		npoise++;
	poise_closedir(&pd);
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		nref++;
		char child[4096], rchild[8192];
		snprintf(child, sizeof(child), "%s/%s", p, de->d_name);
		refpath(rchild, child);
		struct stat a, b;
		if (poise_lstat(pool, child, &a) < 0 || lstat(rchild, &b) < 0) {
			fprintf(stderr, "    compare: %s missing in poise (%s)\n", child, poise_errmsg());
			mismatches++;
			continue;
		}
		if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT) || a.st_nlink != b.st_nlink ||
		    (S_ISREG(a.st_mode) && a.st_size != b.st_size)) {
			fprintf(stderr, "    compare: %s differs: mode %o/%o nlink %ld/%ld size %ld/%ld\n", child,
				a.st_mode, b.st_mode, (long)a.st_nlink, (long)b.st_nlink, (long)a.st_size,
				(long)b.st_size);
			mismatches++;
			continue;
		}
		if (S_ISDIR(a.st_mode)) {
			compare_tree(child);
		} else if (S_ISREG(a.st_mode) && a.st_size) {
			char *x = malloc((size_t)a.st_size), *y = malloc((size_t)a.st_size);
			int fa = poise_open(pool, child, O_RDONLY, 0), fb = open(rchild, O_RDONLY);
			long ka = poise_pread(pool, fa, x, (size_t)a.st_size, 0);
			long kb = pread(fb, y, (size_t)a.st_size, 0);
			if (ka != kb || memcmp(x, y, (size_t)a.st_size)) {
				long at = 0, last = 0;
				while (at < kb && x[at] == y[at])
					at++;
				for (long i = at; i < kb; i++)
					if (x[i] != y[i])
						last = i;
				fprintf(stderr, "    compare: %s content differs (read %ld/%ld, bytes %ld..%ld of %ld, poise %02x tmpfs %02x)\n",
					child, ka, kb, at, last, (long)a.st_size, (uint8_t)x[at], (uint8_t)y[at]);
				mismatches++;
			}
			poise_close(pool, fa);
			close(fb);
			free(x);
			free(y);
		}
	}
	closedir(dir);
	if (nref != npoise) {
		fprintf(stderr, "    compare: %s has %d entries in poise, %d in tmpfs\n", p, npoise, nref);
		mismatches++;
	}
}

static void t_model(void)
{
	long total = getenv("POISE_MODEL_OPS") ? atol(getenv("POISE_MODEL_OPS")) : (H_SANITIZED ? 20000 : 100000);
	seed = getenv("POISE_MODEL_SEED") ? (unsigned)atoi(getenv("POISE_MODEL_SEED")) : 12345;
	fprintf(stderr, "    %ld operations, seed %u\n", total, seed);
	snprintf(ref, sizeof(ref), "%s/ref", h_tmpdir());
	snprintf(pool_path, sizeof(pool_path), "%s/pool", h_tmpdir());
	CHECK_EQ(mkdir(ref, 0755), 0);
	CHECK_EQ(poise_mkfs(pool_path, 256 << 20, 0, 0), 0);
	CHECK_EQ(poise_pool_open(pool_path, 0, &pool), 0);
	long compares = 0, remounts = 0;
	while (nops < total && mismatches == 0) {
		for (int i = 0; i < BATCH; i++)
			one_op();
		if (rnd(4) == 0) {
			poise_pool_close(&pool);
			CHECK_EQ(poise_pool_open(pool_path, 0, &pool), 0);
			remounts++;
		}
		compare_tree("");
		compares++;
	}
	fprintf(stderr, "    %ld ops, %ld tree comparisons, %ld remounts, %ld mismatches\n", nops,
		compares, remounts, mismatches);
	CHECK_EQ(mismatches, 0);
	poise_pool_close(&pool);
	CHECK(h_fsck_clean(pool_path));
}

int main(void)
{
	RUN(t_model);
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
