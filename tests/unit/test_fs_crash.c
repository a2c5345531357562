/*
 * test_fs_crash.c - crash at every fence.  A workload of single API calls
 * (mkdir, create, extending and in-place writes, O_APPEND, truncate both
 * ways, rename over a file, link, unlink, symlink, punch, a fragmented file
 * whose extents spill into an extent chain, rmdir) runs in a child that is
 * stopped at its N-th fence, for every N until the workload completes.  The
 * parent then mounts the image (log replay), requires fsck to be clean, and
 * requires the tree to equal the same calls applied to a tmpfs directory:
 * the k calls that returned, or those plus the one in flight.  Nothing that
 * returned may be lost, nothing may be half-visible.
 */
#include "harness.h"
#include "poise.h"
#include "fs/fsck.h"
#include "fs_check.h"
#include "dev/persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dirbuf[256], base_img[300], img[300], journal[300];
static char models[40][300];

static void pat(char *b, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + (seed * 7 + (int)i * 3 + (int)(i >> 9)) % 26);
}

/* One call per op, on poise (p != NULL) or on a tmpfs directory (root). */
static int op(int i, struct poise_pool *p, const char *root)
{
	static char buf[40000];
	char a[512], b[512];
#define PATH(x, rel) snprintf(x, sizeof(x), "%s%s", p ? "" : root, rel)
	int fd, ret = 0;
	switch (i) {
	case 0: PATH(a, "/d"); return p ? poise_mkdir(p, a, 0755) : mkdir(a, 0755);
	case 1: PATH(a, "/d/a"); fd = p ? poise_open(p, a, O_CREAT | O_WRONLY, 0644) : open(a, O_CREAT | O_WRONLY, 0644);
		return p ? poise_close(p, fd) : close(fd);
	case 4: PATH(a, "/d/frag"); fd = p ? poise_open(p, a, O_CREAT | O_WRONLY, 0644) : open(a, O_CREAT | O_WRONLY, 0644);
		return p ? poise_close(p, fd) : close(fd);
	case 2: case 3: case 5: case 6: case 7: case 8: case 9: case 10: case 11: case 12: case 13:
	case 14: case 15: case 16: case 17: case 18: case 19: case 20: case 21: case 22: case 23:
	{ /* writes: an extend, an in-place one, then a fragmented file (every other block) */
		const char *rel = i < 4 ? "/d/a" : "/d/frag";
		size_t len = i == 2 ? 6000 : i == 3 ? 3000 : 4096;
		off_t off = i == 2 ? 0 : i == 3 ? 100 : (off_t)(i - 5) * 8192;
		PATH(a, rel);
		pat(buf, len, i);
		fd = p ? poise_open(p, a, O_WRONLY, 0) : open(a, O_WRONLY);
		ret = p ? (int)poise_pwrite(p, fd, buf, len, off) : (int)pwrite(fd, buf, len, off);
		p ? poise_close(p, fd) : close(fd);
		return ret < 0 ? ret : 0;
	}
	case 24: PATH(a, "/d/log");
		fd = p ? poise_open(p, a, O_CREAT | O_WRONLY, 0644) : open(a, O_CREAT | O_WRONLY, 0644);
		return p ? poise_close(p, fd) : close(fd);
	case 25: case 26: { PATH(a, "/d/log"); pat(buf, 5000, i);
		fd = p ? poise_open(p, a, O_WRONLY | O_APPEND, 0) : open(a, O_WRONLY | O_APPEND);
		ret = p ? (int)poise_pwrite(p, fd, buf, 5000, 0) : (int)write(fd, buf, 5000);
		p ? poise_close(p, fd) : close(fd);
		return ret < 0 ? ret : 0; }
	case 27: PATH(a, "/d/frag"); return p ? ({ int f = poise_open(p, a, O_WRONLY, 0); int r = poise_ftruncate(p, f, 30000); poise_close(p, f); r; }) : truncate(a, 30000);
	case 28: PATH(a, "/d/frag"); return p ? ({ int f = poise_open(p, a, O_WRONLY, 0); int r = poise_ftruncate(p, f, 100000); poise_close(p, f); r; }) : truncate(a, 100000);
	case 29: PATH(a, "/d/a"); PATH(b, "/d/a2"); return p ? poise_link(p, a, b) : link(a, b);
	case 30: PATH(a, "/d/log"); PATH(b, "/d/a"); return p ? poise_rename(p, a, b) : rename(a, b); /* replaces */
	case 31: PATH(a, "/d/sub"); return p ? poise_mkdir(p, a, 0700) : mkdir(a, 0700);
	case 32: PATH(a, "/d/a2"); PATH(b, "/d/sub/moved"); return p ? poise_rename(p, a, b) : rename(a, b);
	case 33: PATH(b, "/d/sym"); return p ? poise_symlink(p, "sub/moved", b) : symlink("sub/moved", b);
	case 34: PATH(a, "/d/a"); return p ? ({ int f = poise_open(p, a, O_WRONLY, 0); int r = poise_fallocate(p, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 6000); poise_close(p, f); r; })
				 : ({ int f = open(a, O_WRONLY); int r = fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 6000); close(f); r; });
	case 35: PATH(a, "/d/frag"); return p ? poise_unlink(p, a) : unlink(a);
	case 36: PATH(a, "/d/sub/moved"); PATH(b, "/d/moved-up"); return p ? poise_rename(p, a, b) : rename(a, b);
	case 37: PATH(a, "/d/sub"); return p ? poise_rmdir(p, a) : rmdir(a);
	case 38: PATH(a, "/d"); PATH(b, "/e"); return p ? poise_rename(p, a, b) : rename(a, b);
	}
	return 1; /* past the end */
#undef PATH
}
#define NOPS 39

static int compare(struct poise_pool *p, const char *pp, const char *rp)
{
	DIR *d = opendir(rp);
	struct poise_dir *pd;
	if (!d || poise_opendir(p, *pp ? pp : "/", &pd) < 0) {
		if (d)
			closedir(d);
		return 0;
	}
	int n1 = 0, n2 = 0, ok = 1;
	struct poise_entry pe;
	while (poise_readdir(pd, &pe) > 0)
		n1++;
	poise_closedir(&pd);
	struct dirent *de;
	while (ok && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n2++;
		char c1[1024], c2[1024];
		snprintf(c1, sizeof(c1), "%s/%s", pp, de->d_name);
		snprintf(c2, sizeof(c2), "%s/%s", rp, de->d_name);
		struct stat a, b;
		if (poise_lstat(p, c1, &a) < 0 || lstat(c2, &b) < 0 ||
		    (a.st_mode & S_IFMT) != (b.st_mode & S_IFMT) || a.st_nlink != b.st_nlink ||
		    (!S_ISDIR(a.st_mode) && a.st_size != b.st_size)) {
			ok = 0;
			break;
		}
		if (S_ISDIR(a.st_mode)) {
			ok = compare(p, c1, c2);
		} else if (S_ISREG(a.st_mode) && a.st_size) {
			char *x = malloc((size_t)a.st_size), *y = malloc((size_t)a.st_size);
			int f = poise_open(p, c1, O_RDONLY, 0), g = open(c2, O_RDONLY);
			ok = poise_pread(p, f, x, (size_t)a.st_size, 0) == a.st_size &&
			     pread(g, y, (size_t)a.st_size, 0) == a.st_size && !memcmp(x, y, (size_t)a.st_size);
			poise_close(p, f);
			close(g);
			free(x);
			free(y);
		}
	}
	closedir(d);
	return ok && n1 == n2;
}

/* tmpfs tree after ops [0, k) */
static void model(int k, char *out)
{
	static int gen;
	sprintf(out, "%s/model%d", dirbuf, gen++);
	mkdir(out, 0755);
	for (int i = 0; i < k; i++)
		op(i, NULL, out);
}

static int copy_file(const char *from, const char *to)
{
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && rm -f '%s.badblocks'", from, to, to);
	return system(cmd);
}

/* Run the workload on img stopping at fence n (0: never).  Returns the
 * number of calls that returned, or -1 if the child did something else. */
static int run_child(long n, int *crashed)
{
	unlink(journal);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct poise_pool *p;
		int j = open(journal, O_CREAT | O_WRONLY | O_APPEND, 0644);
		if (poise_pool_open(img, 0, &p) < 0)
			_exit(3);
		if (n)
			poise_fence_crash_at = poise_fence_count() + n;
		for (int i = 0; i < NOPS; i++) {
			if (op(i, p, NULL) < 0)
				_exit(4);
			if (write(j, "x", 1) != 1)
				_exit(5);
		}
		poise_pool_close(&p);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	struct stat js;
	int k = stat(journal, &js) == 0 ? (int)js.st_size : 0;
	*crashed = WIFEXITED(st) && WEXITSTATUS(st) == 99;
	if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 99)) {
		fprintf(stderr, "    child at fence %ld: status %d\n", n, st);
		return -1;
	}
	return k;
}

static void t_crash_every_fence(void)
{
	snprintf(dirbuf, sizeof(dirbuf), "%s", h_tmpdir());
	snprintf(base_img, sizeof(base_img), "%s/base.img", dirbuf);
	snprintf(img, sizeof(img), "%s/run.img", dirbuf);
	snprintf(journal, sizeof(journal), "%s/journal", dirbuf);
	CHECK_EQ(poise_mkfs(base_img, 8 << 20, 0, 0), 0);
	/* reference models: after k calls, for every k */
	for (int k = 0; k <= NOPS; k++)
		model(k, models[k]);
	long states = 0, inflight_done = 0;
	int crashed = 1;
	for (long n = 1; crashed; n++) {
		CHECK_EQ(copy_file(base_img, img), 0);
		int k = run_child(n, &crashed);
		CHECK(k >= 0);
		struct poise_pool *p;
		CHECK_EQ(poise_pool_open(img, 0, &p), 0); /* mount: replay */
		int as_k = compare(p, "", models[k]);
		int as_k1 = !as_k && k < NOPS && compare(p, "", models[k + 1]);
		poise_pool_close(&p);
		if (!as_k && !as_k1)
			fprintf(stderr, "    fence %ld: %d calls returned; the tree matches neither %d nor %d calls\n",
				n, k, k, k + 1);
		CHECK(as_k || as_k1);
		inflight_done += as_k1;
		int clean = h_fsck_clean(img);
		if (!clean)
			fprintf(stderr, "    (at fence %ld)\n", n);
		CHECK(clean);
		if (!crashed)
			CHECK_EQ(k, NOPS);
		states++;
	}
	fprintf(stderr, "    %ld crash points (one per fence), %ld with the call in flight already durable\n",
		states, inflight_done);
	CHECK(states > NOPS);
}

int main(void)
{
	RUN(t_crash_every_fence);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h_tmpdir());
	if (system(cmd) != 0)
		return 2;
	DONE();
}
