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
 *
 * t_crash_states goes further, as PMDK's pmreorder does: the device layer
 * tracks every store, flush and fence (dev/track.c), and at each fence the
 * 64-byte lines not yet durable may each have reached the media or not.
 * For every fence it checks the image with all of them kept, all of them
 * lost, and POISE_CRASH_SUBSETS (default 3; 1 in sanitized builds) random
 * subsets lost; a call overwriting bytes in place may leave each of them
 * old or new (torn, as on every DAX file system), nothing else.
 * t_crash_states_threads does the same for a threaded workload: NT threads
 * at once, each its own calls on its own names, half of them in a directory
 * all threads share; a fence makes durable only its own thread's flushes.
 * Sanitized builds visit every 16th fence of it.
 * Each thread's names must show the calls of that thread that returned, or
 * those plus the one it had in flight.
 * t_wrong_writer_caught runs a deliberately wrong writer (the log applies
 * its records without flushing them) and requires the harness to catch it.
 */
#include "harness.h"
#include "poise.h"
#include "poise-admin.h"
#include "fs_check.h"
#include "dev/persist.h"
#include "dev/dev.h"
#include "fs/layout.h"
#include "common/crc32c.h"

struct poise_dev *poise_pool_dev(struct poise_pool *p);

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stddef.h>
#include <sys/wait.h>

/* ThreadSanitizer finds nothing in the one-thread workload that ASan and
 * the release build do not: it visits every 8th fence of it */
#define ONE_THREAD_STEP (H_TSAN ? 8 : 1)

static char dirbuf[256], base_img[300], img[300], journal[300];
static char dumpf[300], work[300];
static char models[40][300];

static void pat(char *b, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + (seed * 7 + (int)i * 3 + (int)(i >> 9)) % 26);
}

/* A write (len 0: an open only) or a truncate, on poise (p) or on a tmpfs path. */
static int x_write(struct poise_pool *p, const char *path, int flags, int seed, size_t len, off_t off)
{
	char buf[8192];
	pat(buf, len, seed);
	int fd = p ? poise_open(p, path, flags, 0644) : open(path, flags, 0644);
	if (fd < 0)
		return fd;
	ssize_t r = !len ? 0 : p ? poise_pwrite(p, fd, buf, len, off)
			      : flags & O_APPEND ? write(fd, buf, len) : pwrite(fd, buf, len, off);
	p ? poise_close(p, fd) : close(fd);
	return r < 0 ? (int)r : 0;
}

static int x_truncate(struct poise_pool *p, const char *path, off_t len)
{
	if (!p)
		return truncate(path, len);
	int fd = poise_open(p, path, O_WRONLY, 0);
	int r = fd < 0 ? fd : poise_ftruncate(p, fd, len);
	if (fd >= 0)
		poise_close(p, fd);
	return r;
}

/* One call per op, on poise (p != NULL) or on a tmpfs directory (root). */
static int op(int i, struct poise_pool *p, const char *root)
{
	char a[512], b[512];
#define PATH(x, rel) snprintf(x, sizeof(x), "%s%s", p ? "" : root, rel)
	switch (i) {
	case 0: PATH(a, "/d"); return p ? poise_mkdir(p, a, 0755) : mkdir(a, 0755);
	case 1: PATH(a, "/d/a"); return x_write(p, a, O_CREAT | O_WRONLY, i, 0, 0);
	case 4: PATH(a, "/d/frag"); return x_write(p, a, O_CREAT | O_WRONLY, i, 0, 0);
	case 2: case 3: case 5: case 6: case 7: case 8: case 9: case 10: case 11: case 12: case 13:
	case 14: case 15: case 16: case 17: case 18: case 19: case 20: case 21: case 22: case 23:
		/* writes: an extend, an in-place one, then a fragmented file (every other block) */
		PATH(a, i < 4 ? "/d/a" : "/d/frag");
		return x_write(p, a, O_WRONLY, i, i == 2 ? 6000 : i == 3 ? 3000 : 4096,
			       i == 2 ? 0 : i == 3 ? 100 : (off_t)(i - 5) * 8192);
	case 24: PATH(a, "/d/log"); return x_write(p, a, O_CREAT | O_WRONLY, i, 0, 0);
	case 25: case 26: PATH(a, "/d/log"); return x_write(p, a, O_WRONLY | O_APPEND, i, 5000, 0);
	case 27: PATH(a, "/d/frag"); return x_truncate(p, a, 30000);
	case 28: PATH(a, "/d/frag"); return x_truncate(p, a, 100000);
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

static const char *skip_content; /* compare(): a file whose bytes are checked elsewhere */

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
		} else if (S_ISREG(a.st_mode) && a.st_size && !(skip_content && !strcmp(c1, skip_content))) {
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

/* to = a copy of from (in place: the pages of `to` stay allocated), and
 * no bad-block list beside it.  0 on success. */
static int copy_file(const char *from, const char *to)
{
	static char *buf;
	static size_t cap;
	int f = open(from, O_RDONLY), t = open(to, O_CREAT | O_WRONLY, 0644);
	struct stat st;
	int ok = f >= 0 && t >= 0 && fstat(f, &st) == 0;
	if (ok && (size_t)st.st_size > cap) {
		free(buf);
		cap = (size_t)st.st_size;
		ok = (buf = malloc(cap)) != NULL;
		if (!ok)
			cap = 0;
	}
	ok = ok && pread(f, buf, (size_t)st.st_size, 0) == st.st_size &&
	     pwrite(t, buf, (size_t)st.st_size, 0) == st.st_size && ftruncate(t, st.st_size) == 0;
	if (f >= 0)
		close(f);
	if (t >= 0)
		close(t);
	char side[400];
	snprintf(side, sizeof(side), "%s.badblocks", to);
	unlink(side);
	return ok ? 0 : -1;
}

static struct {
	uint64_t off;
	uint8_t old[64];
} *lines;
static size_t nlines;

/* Run the workload on img stopping at fence n (0: never).  Returns the
 * number of calls that returned (the journal's length: workloads other
 * than work_calls keep their own), or -1 if the child did something else.
 * track: the device layer tracks stores, and the lines not yet durable at
 * the crash are loaded into `lines`; bug: the wrong writer (poise_bug). */
/* The single-threaded workload: the calls in order, a journal byte after
 * each one returns. */
static void work_calls(struct poise_pool *p)
{
	int j = open(journal, O_CREAT | O_WRONLY | O_APPEND, 0644);
	for (int i = 0; i < NOPS; i++) {
		if (op(i, p, NULL) < 0)
			_exit(4);
		if (write(j, "x", 1) != 1)
			_exit(5);
	}
}

static int run_child(long n, int *crashed, int track, int bug, void (*workload)(struct poise_pool *))
{
	unlink(journal);
	unlink(dumpf);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct poise_pool *p;
		if (poise_pool_open(img, 0, &p) < 0)
			_exit(3);
		if (track) {
			struct poise_dev *d = poise_pool_dev(p);
			poise_track_dump_path = dumpf;
			poise_track_begin(d->base, d->size);
			poise_bug = bug;
		}
		if (n)
			poise_fence_crash_at = poise_fence_count() + n;
		workload(p);
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
	free(lines);
	lines = NULL;
	nlines = 0;
	FILE *f = track ? fopen(dumpf, "r") : NULL;
	if (f) {
		fseek(f, 0, SEEK_END);
		long sz = ftell(f);
		rewind(f);
		lines = malloc(sz > 0 ? (size_t)sz : 1);
		nlines = lines ? fread(lines, sizeof(*lines), (size_t)sz / sizeof(*lines), f) : 0;
		fclose(f);
	}
	return k;
}

/* The scratch paths and the empty base image, once (every test needs them;
 * TEST_ONLY may run any one alone). */
static int paths_init(void)
{
	if (base_img[0])
		return 0;
	snprintf(dirbuf, sizeof(dirbuf), "%s", h_tmpdir());
	snprintf(base_img, sizeof(base_img), "%s/base.img", dirbuf);
	snprintf(img, sizeof(img), "%s/run.img", dirbuf);
	snprintf(journal, sizeof(journal), "%s/journal", dirbuf);
	snprintf(dumpf, sizeof(dumpf), "%s/lines", dirbuf);
	snprintf(work, sizeof(work), "%s/work.img", dirbuf);
	return poise_mkfs(base_img, 1 << 20, 0, 0);
}

static void t_crash_every_fence(void)
{
	CHECK_EQ(paths_init(), 0);
	/* reference models: after k calls, for every k */
	for (int k = 0; k <= NOPS; k++)
		model(k, models[k]);
	long states = 0, inflight_done = 0;
	int crashed = 1;
	for (long n = 1; crashed; n += ONE_THREAD_STEP) {
		CHECK_EQ(copy_file(base_img, img), 0);
		int k = run_child(n, &crashed, 0, 0, work_calls);
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
	CHECK(states > NOPS / ONE_THREAD_STEP);
}

/* Calls that overwrite file bytes in place: a crash in the middle may
 * leave each byte old or new (in-place overwrites are not atomic, in poise
 * as in every DAX file system, and POSIX promises nothing there). */
static const char *torn_file(int op_index)
{
	return op_index == 3 || op_index == 34 ? "/d/a" : NULL;
}

/* The tree is k calls' except that the file call k overwrites in place
 * holds, byte by byte, its old or its new content. */
static int torn_state(struct poise_pool *p, int k)
{
	const char *f = k < NOPS ? torn_file(k) : NULL;
	if (!f)
		return 0;
	skip_content = f;
	int same = compare(p, "", models[k]);
	skip_content = NULL;
	char o[600], n[600];
	snprintf(o, sizeof(o), "%s%s", models[k], f);
	snprintf(n, sizeof(n), "%s%s", models[k + 1], f);
	static char a[65536], b[65536], c[65536];
	int fo = open(o, O_RDONLY), fn = open(n, O_RDONLY), fp = poise_open(p, f, O_RDONLY, 0);
	ssize_t la = read(fo, a, sizeof(a)), lb = read(fn, b, sizeof(b)), lc = poise_pread(p, fp, c, sizeof(c), 0);
	close(fo);
	close(fn);
	poise_close(p, fp);
	int ok = same && la == lb && lc == la;
	for (ssize_t i = 0; ok && i < lc; i++)
		ok = c[i] == a[i] || c[i] == b[i];
	return ok;
}

/* Image `work` = img with the lines chosen by `mask` (bit per line; all
 * when mask is NULL and lose) put back to their old content; mount it and
 * check it against the models.  1 when it is a state of k or k+1 calls
 * and fsck is clean. */
static struct poise_pool *crash_image(const uint8_t *lose)
{
	if (copy_file(img, work) != 0)
		return NULL;
	int fd = open(work, O_WRONLY);
	if (fd < 0)
		return NULL;
	for (size_t i = 0; i < nlines; i++)
		if (lose[i] && pwrite(fd, lines[i].old, 64, (off_t)lines[i].off) != 64) {
			close(fd);
			return NULL;
		}
	close(fd);
	const char *keep = getenv("POISE_CRASH_KEEP");
	if (keep) {
		char to[600];
		snprintf(to, sizeof(to), "%s/last.img", keep);
		(void)copy_file(work, to);
	}
	struct poise_pool *p;
	return poise_pool_open(work, 0, &p) < 0 ? NULL : p;
}

static int check_state(int k, const uint8_t *lose)
{
	struct poise_pool *p = crash_image(lose);
	if (!p)
		return 0;
	int ok = compare(p, "", models[k]) || (k < NOPS && compare(p, "", models[k + 1])) || torn_state(p, k);
	poise_pool_close(&p);
	return ok && h_fsck_quiet(work);
}

/* The threaded workload: NT threads at once, call i of thread t.  Names
 * carry t, so the threads' calls commute: the tree after ks[t] calls of
 * each thread t is one tree whatever the interleaving. */
#define NT 3
#define NTOPS 20
static char tjournal[NT][300];

static int tcall(int t, int i, struct poise_pool *p, const char *root)
{
	char a[512], b[512];
	const char *r = p ? "" : root;
	int seed = t * 40 + i;
	switch (i) {
	case 0: snprintf(a, sizeof(a), "%s/t%d", r, t); return p ? poise_mkdir(p, a, 0755) : mkdir(a, 0755);
	case 1: case 2: case 3: snprintf(a, sizeof(a), "%s/s/f%d", r, t);
		return x_write(p, a, i == 1 ? O_CREAT | O_WRONLY : i == 2 ? O_WRONLY : O_WRONLY | O_APPEND, seed,
			       i == 1 ? 0 : i == 2 ? 6000 : 5000, 0);
	case 4: case 5: case 6: case 7: case 8: case 9: case 10: snprintf(a, sizeof(a), "%s/t%d/frag", r, t);
		return x_write(p, a, i == 4 ? O_CREAT | O_WRONLY : O_WRONLY, seed, i == 4 ? 0 : 4096, (off_t)(i - 5) * 8192);
	case 11: snprintf(a, sizeof(a), "%s/t%d/frag", r, t); return x_truncate(p, a, 20000);
	case 12: snprintf(a, sizeof(a), "%s/s/f%d", r, t); snprintf(b, sizeof(b), "%s/t%d/l", r, t);
		return p ? poise_link(p, a, b) : link(a, b);
	case 13: snprintf(a, sizeof(a), "%s/t%d/frag", r, t); snprintf(b, sizeof(b), "%s/s/g%d", r, t);
		return p ? poise_rename(p, a, b) : rename(a, b);
	case 14: snprintf(a, sizeof(a), "%s/t%d/sub", r, t); return p ? poise_mkdir(p, a, 0700) : mkdir(a, 0700);
	case 15: snprintf(a, sizeof(a), "../s/g%d", t); snprintf(b, sizeof(b), "%s/t%d/sym", r, t);
		return p ? poise_symlink(p, a, b) : symlink(a, b);
	case 16: snprintf(a, sizeof(a), "%s/s/f%d", r, t); return p ? poise_unlink(p, a) : unlink(a);
	case 17: snprintf(a, sizeof(a), "%s/t%d/sub", r, t); snprintf(b, sizeof(b), "%s/s/sub%d", r, t);
		return p ? poise_rename(p, a, b) : rename(a, b);
	case 18: snprintf(a, sizeof(a), "%s/s/g%d", r, t); snprintf(b, sizeof(b), "%s/t%d/l", r, t);
		return p ? poise_rename(p, a, b) : rename(a, b); /* replaces the last link of f */
	case 19: snprintf(a, sizeof(a), "%s/s/sub%d", r, t); return p ? poise_rmdir(p, a) : rmdir(a);
	}
	return 1;
}

struct worker {
	struct poise_pool *p;
	int t;
	pthread_barrier_t *go;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	int j = open(tjournal[w->t], O_CREAT | O_WRONLY | O_APPEND, 0644);
	pthread_barrier_wait(w->go);
	for (int i = 0; i < NTOPS; i++) {
		if (tcall(w->t, i, w->p, NULL) < 0)
			_exit(4);
		if (write(j, "x", 1) != 1)
			_exit(5);
	}
	close(j);
	return NULL;
}

static void work_threads(struct poise_pool *p)
{
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, NT);
	pthread_t th[NT];
	struct worker w[NT];
	for (int t = 0; t < NT; t++) {
		w[t] = (struct worker){p, t, &go};
		if (pthread_create(&th[t], NULL, worker, &w[t]) != 0)
			_exit(6);
	}
	for (int t = 0; t < NT; t++)
		pthread_join(th[t], NULL);
}

/* tmpfs tree after ks[t] calls of every thread t (built once per vector) */
static const char *model_threads(const int *ks)
{
	static char *built[9261]; /* (NTOPS + 1)^NT */
	int idx = 0;
	for (int t = 0; t < NT; t++)
		idx = idx * (NTOPS + 1) + ks[t];
	if (!built[idx]) {
		char dir[400];
		snprintf(dir, sizeof(dir), "%s/mt%d", dirbuf, idx);
		mkdir(dir, 0755);
		char sdir[420];
		snprintf(sdir, sizeof(sdir), "%s/s", dir);
		mkdir(sdir, 0755);
		for (int t = 0; t < NT; t++)
			for (int i = 0; i < ks[t]; i++)
				tcall(t, i, NULL, dir);
		built[idx] = strdup(dir);
	}
	return built[idx];
}

/* 1 when the image is the tree of ks[t] or ks[t] + 1 calls of every thread
 * (each thread may have had one call in flight) and fsck is clean. */
static int check_state_threads(const int *ks, const uint8_t *lose)
{
	struct poise_pool *p = crash_image(lose);
	if (!p)
		return 0;
	int ok = 0;
	for (int c = 0; !ok && c < 1 << NT; c++) {
		int kk[NT], valid = 1;
		for (int t = 0; t < NT; t++)
			valid &= (kk[t] = ks[t] + (c >> t & 1)) <= NTOPS;
		ok = valid && compare(p, "", model_threads(kk));
	}
	poise_pool_close(&p);
	return ok && h_fsck_quiet(work);
}

/* All kept, all lost, then `subsets` random subsets of the lines not yet
 * durable at fence n: each image checked (ks: the threaded workload). */
static void check_fence(long n, long subsets, unsigned *seed, int k, const int *ks, long *states, long *bad)
{
	static uint8_t *lose;
	lose = realloc(lose, nlines + 1);
	for (long v = 0; lose && v < 2 + subsets; v++) {
		for (size_t i = 0; i < nlines; i++)
			lose[i] = v == 0 ? 0 : v == 1 ? 1 : (uint8_t)(rand_r(seed) & 1);
		if (!(ks ? check_state_threads(ks, lose) : check_state(k, lose))) {
			const char *keep = getenv("POISE_CRASH_KEEP"); /* a directory: keep the bad images (debugging) */
			if (keep && *bad < 5) {
				char from[600], to[600];
				snprintf(from, sizeof(from), "%s/last.img", keep);
				snprintf(to, sizeof(to), "%s/bad-%ld-%ld.img", keep, n, v);
				(void)rename(from, to);
			}
			if ((*bad)++ < 5) {
				fprintf(stderr, "    fence %ld, variant %ld (%zu lines uncertain): not a state of ", n, v, nlines);
				for (int t = 0; t < (ks ? NT : 1); t++)
					fprintf(stderr, "%s%d", t ? "/" : "", ks ? ks[t] : k);
				fprintf(stderr, " calls or one more, or fsck unclean\n");
			}
		}
		(*states)++;
		if (v == 0 && nlines == 0)
			break; /* nothing uncertain: one state */
	}
}

static long crash_subsets(void)
{
	return getenv("POISE_CRASH_SUBSETS") ? atol(getenv("POISE_CRASH_SUBSETS")) : H_SANITIZED ? 1 : 3;
}

static void t_crash_states(void)
{
	long subsets = crash_subsets();
	unsigned seed = 7;
	snprintf(dumpf, sizeof(dumpf), "%s/lines", dirbuf);
	snprintf(work, sizeof(work), "%s/work.img", dirbuf);
	long states = 0, uncertain = 0, bad = 0, fences = 0;
	int crashed = 1;
	for (long n = 1; crashed; n += ONE_THREAD_STEP) {
		CHECK_EQ(copy_file(base_img, img), 0);
		int k = run_child(n, &crashed, 1, 0, work_calls);
		CHECK(k >= 0);
		if (k < 0)
			return;
		uncertain += (long)nlines;
		fences += crashed;
		check_fence(n, subsets, &seed, k, NULL, &states, &bad);
	}
	fprintf(stderr, "    one thread: %ld crash states checked at %ld fences (%ld uncertain lines in all), %ld bad\n",
		states, fences, uncertain, bad);
	CHECK_EQ(bad, 0);
	CHECK(states > NOPS / ONE_THREAD_STEP);
}

/* The threaded workload on the image base_mt, every fence. */
static void threads_states(const char *base_mt, unsigned seed, const char *what)
{
	long subsets = crash_subsets();
	long states = 0, uncertain = 0, bad = 0, fences = 0, inflight = 0;
	int crashed = 1;
	/* sanitized builds (ten times slower) visit every 16th fence */
	for (long n = 1; crashed; n += H_SANITIZED ? 16 : 1) {
		CHECK_EQ(copy_file(base_mt, img), 0);
		for (int t = 0; t < NT; t++)
			unlink(tjournal[t]);
		if (run_child(n, &crashed, 1, 0, work_threads) < 0) {
			CHECK(0);
			return;
		}
		int ks[NT], running = 0;
		for (int t = 0; t < NT; t++) {
			struct stat js;
			ks[t] = stat(tjournal[t], &js) == 0 ? (int)js.st_size : 0;
			running += ks[t] < NTOPS;
		}
		if (!crashed)
			CHECK_EQ(running, 0);
		inflight += running > 1;
		uncertain += (long)nlines;
		fences += crashed;
		check_fence(n, subsets, &seed, 0, ks, &states, &bad);
	}
	fprintf(stderr, "    %d threads%s: %ld crash states checked at %ld fences (%ld with calls of two or more threads in flight; "
		"%ld uncertain lines in all), %ld bad\n", NT, what, states, fences, inflight, uncertain, bad);
	CHECK_EQ(bad, 0);
	CHECK(inflight > 0);
	CHECK(fences > NT * NTOPS / (H_SANITIZED ? 16 : 1));
}

static void t_crash_states_threads(void)
{
	char base_mt[300];
	snprintf(base_mt, sizeof(base_mt), "%s/base-mt.img", dirbuf);
	CHECK_EQ(copy_file(base_img, base_mt), 0);
	struct poise_pool *p;
	CHECK_EQ(poise_pool_open(base_mt, 0, &p), 0);
	CHECK_EQ(poise_mkdir(p, "/s", 0755), 0);
	poise_pool_close(&p);
	for (int t = 0; t < NT; t++)
		snprintf(tjournal[t], sizeof(tjournal[t]), "%s/journal%d", dirbuf, t);
	threads_states(base_mt, 11, "");
}

/* Superblock copies of img say format 1.1 (no lane hash): the commit
 * keeps a fence between records and header. */
static int as_v11(const char *path)
{
	struct poise_super sb;
	int fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, &sb, sizeof(sb), 0) != sizeof(sb)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	sb.s_minor = 1;
	sb.s_features = POISE_FEAT_NODES;
	sb.s_crc = poise_crc32c(0, &sb, offsetof(struct poise_super, s_crc));
	int ok = pwrite(fd, &sb, sizeof(sb), 0) == sizeof(sb) &&
		 pwrite(fd, &sb, sizeof(sb), (off_t)(sb.s_replica_blk * POISE_BLOCK)) == sizeof(sb);
	close(fd);
	return ok ? 0 : -1;
}

/* The same on a 1.1 pool: the lanes carry only a crc, which cannot tell a
 * lane torn between two transactions' extents (their own crcs make them
 * invisible to it), so there the records are fenced before the header. */
static void t_crash_states_threads_v11(void)
{
	char base_mt[300], v11[300];
	snprintf(base_mt, sizeof(base_mt), "%s/base-mt.img", dirbuf);
	snprintf(v11, sizeof(v11), "%s/base-mt11.img", dirbuf);
	CHECK_EQ(copy_file(base_mt, v11), 0);
	CHECK_EQ(as_v11(v11), 0);
	struct poise_pool *p;
	CHECK_EQ(poise_pool_open(v11, 0, &p), 0);
	struct poise_info in;
	CHECK_EQ(poise_info(p, &in), 0);
	CHECK_EQ(in.format_minor, 1);
	poise_pool_close(&p);
	threads_states(v11, 17, " on a 1.1 pool");
}

static void t_wrong_writer_caught(void)
{
	snprintf(dumpf, sizeof(dumpf), "%s/lines", dirbuf);
	snprintf(work, sizeof(work), "%s/work.img", dirbuf);
	long caught = 0, states = 0;
	int crashed = 1;
	for (long n = 1; crashed && !caught; n++) {
		CHECK_EQ(copy_file(base_img, img), 0);
		int k = run_child(n, &crashed, 1, 1, work_calls);
		if (k < 0)
			break;
		uint8_t *lose = calloc(nlines + 1, 1);
		memset(lose, 1, nlines);
		caught += !check_state(k, lose);
		states++;
		free(lose);
	}
	fprintf(stderr, "    the wrong writer (no flush of applied records) was caught after %ld crash states\n", states);
	CHECK(caught > 0);
}

/* The commit protocol's own mistake: a crc that leaves the last record
 * out (writer and reader alike, so the lane still validates), with the
 * records and the header under one fence.  A crash that keeps the header
 * and loses a line of that record must be caught. */
static void t_wrong_crc_caught(void)
{
	long caught = 0, states = 0, bad = 0;
	unsigned seed = 5;
	int crashed = 1;
	for (long n = 1; crashed && !caught; n++) {
		CHECK_EQ(copy_file(base_img, img), 0);
		int k = run_child(n, &crashed, 1, 2, work_calls);
		if (k < 0)
			break;
		poise_bug = 2; /* the reader of the wrong protocol: mount replays with it */
		long before = bad;
		check_fence(n, 8, &seed, k, NULL, &states, &bad);
		poise_bug = 0;
		caught += bad > before;
	}
	fprintf(stderr, "    the wrong writer 2 (a commit crc that does not cover the last record) was caught after "
		"%ld crash states\n", states);
	CHECK(caught > 0);
}

/* Without writing back the other threads' retirements before its commit
 * point, a commit could apply bytes that an older, not yet durably
 * retired lane is replayed over.  The wrong writer 3 skips that: the
 * threaded workload must catch it. */
static void t_wrong_retire_caught(void)
{
	char base_mt[300];
	snprintf(base_mt, sizeof(base_mt), "%s/base-mt.img", dirbuf);
	long caught = 0, states = 0, bad = 0;
	unsigned seed = 13;
	int crashed = 1;
	for (long n = 1; crashed && !caught; n++) {
		CHECK_EQ(copy_file(base_mt, img), 0);
		for (int t = 0; t < NT; t++)
			unlink(tjournal[t]);
		if (run_child(n, &crashed, 1, 3, work_threads) < 0)
			break;
		int ks[NT];
		for (int t = 0; t < NT; t++) {
			struct stat js;
			ks[t] = stat(tjournal[t], &js) == 0 ? (int)js.st_size : 0;
		}
		long before = bad;
		check_fence(n, 8, &seed, 0, ks, &states, &bad);
		caught += bad > before;
	}
	fprintf(stderr, "    the wrong writer 3 (a commit that trusts other threads to make their retirements durable) "
		"was caught after %ld crash states\n", states);
	CHECK(caught > 0);
}

/* A retirement left in the cache (lane_retire), then poison listed in
 * its header's page before the next commit writes the line back: a page
 * that cannot be written back through the mapping (an emulated pool's
 * PROT_NONE, fsdax's refused fault).  The next commit of another thread
 * on the same inode must still make that retirement durable before it
 * applies, or a crash replays the older transaction over it.  Workload:
 * chmod 0600 in this thread, sector 7 of every lane's header page (both
 * copies) poisoned, chmod 0640 in a second thread, then the power fails. */
static struct poise_pool *rp_pool;
static void *rp_second(void *arg)
{
	(void)arg;
	if (poise_chmod(rp_pool, "/rp", 0640) < 0)
		_exit(6);
	return NULL;
}

static void work_retire_poisoned(struct poise_pool *p)
{
	int fd = poise_open(p, "/rp", O_CREAT | O_WRONLY, 0644);
	if (fd < 0 || poise_close(p, fd) < 0 || poise_chmod(p, "/rp", 0600) < 0)
		_exit(4);
	struct poise_super sb;
	memcpy(&sb, poise_pool_dev(p)->base, sizeof(sb));
	for (uint64_t i = 0; i < sb.s_nlanes; i++)
		for (int rep = 0; rep < 2; rep++)
			if (poise_badblocks_inject(p, ((rep ? sb.s_log_replica_blk : sb.s_log_blk) + i * sb.s_lane_blocks) * 8 + 7,
						   1) < 0)
				_exit(5);
	rp_pool = p;
	pthread_t t;
	if (pthread_create(&t, NULL, rp_second, NULL) != 0 || pthread_join(t, NULL) != 0)
		_exit(7);
	poise_track_crash(dumpf); /* the power fails: every line not yet durable may be lost */
}

static void t_retire_then_poison(void)
{
	int crashed = 0;
	CHECK_EQ(paths_init(), 0);
	CHECK_EQ(copy_file(base_img, img), 0);
	CHECK_EQ(run_child(0, &crashed, 1, 0, work_retire_poisoned), 0);
	CHECK(crashed);
	CHECK(nlines > 0);
	unsigned seed = 3;
	uint8_t *lose = calloc(nlines + 1, 1);
	for (int v = 0; lose && v < 10; v++) {
		for (size_t i = 0; i < nlines; i++)
			lose[i] = v == 0 ? 0 : v == 1 ? 1 : (uint8_t)(rand_r(&seed) & 1);
		struct poise_pool *p = crash_image(lose);
		CHECK(p != NULL);
		if (!p)
			break;
		struct stat st;
		CHECK_EQ(poise_stat(p, "/rp", &st), 0);
		if ((st.st_mode & 07777) != 0640)
			fprintf(stderr, "    variant %d: mode %o after the crash, not 640\n", v, st.st_mode & 07777);
		CHECK_EQ(st.st_mode & 07777, 0640);
		poise_pool_close(&p);
		CHECK(h_fsck_quiet(work));
	}
	free(lose);
}

int main(void)
{
	RUN(t_crash_every_fence);
	RUN(t_crash_states);
	RUN(t_crash_states_threads);
	RUN(t_crash_states_threads_v11);
	RUN(t_wrong_writer_caught);
	RUN(t_wrong_crc_caught);
	RUN(t_wrong_retire_caught);
	RUN(t_retire_then_poison);
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
