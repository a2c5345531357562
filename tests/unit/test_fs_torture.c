/*
 * test_fs_torture.c - poison torture with a shadow model.  Random writes,
 * reads, truncates (both ways), injections of poison into file data and
 * into one copy of a file's inode, of the directory block naming the
 * files, of an extent block or of a log lane, scrubs (held against the
 * shadow: scrub must name exactly the lost sectors of each file) and
 * remounts run on a pool; a shadow keeps each file's bytes and which of its
 * sectors are lost.  Every read must return exactly the shadow's bytes, or
 * stop exactly before the first lost sector in its range (-EIO when it
 * starts on one).  Anything else is a silent corruption; the count is
 * printed and must be zero, and fsck must be clean at the end.
 * Phase 1 runs on a platform that clears poison (a write clears exactly the
 * sectors it touches, zero-filling them); phase 2 on one that cannot (a
 * write onto a lost sector moves the whole block: every lost sector of that
 * block then reads as zeros).  POISE_TORTURE_OPS and POISE_TORTURE_SEED set
 * the operation count and the seed.
 */
#include "harness.h"
#include "poise.h"
#include "poise-admin.h"
#include "fs_check.h"
#include "dev/dev.h"
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>

struct poise_dev *poise_pool_dev(struct poise_pool *p);
struct poise_fs *poise_pool_fs(struct poise_pool *p);

#define NF 8
#define MAXSZ (192 * 1024)
#define NSEC (MAXSZ / 512 + 8)
static struct {
	char data[MAXSZ + 4096];
	uint8_t lost[NSEC];
	uint64_t size;
} sh[NF];
static struct poise_pool *pool;
static char img[400];
static unsigned seed = 99;
static long ops, corrupt, unexpected, reads_checked, short_or_eio, injections, meta_injections;
static long scrubs, scrub_ranges, ext_injections, log_injections, full;
static int remount(void);
static int noclear;

static unsigned rnd(unsigned n)
{
	return (unsigned)(rand_r(&seed) % n);
}

static void name(int f, char *out)
{
	sprintf(out, "/t%d", f);
}

/* What a write (or a zero-fill) of [a, b) does to lost sectors: on a
 * platform that clears, the lost sectors it touches become zeros; on one
 * that cannot, each block whose part of [a, b) touches a lost sector moves
 * to a fresh block, where all that block's lost sectors read as zeros. */
static void clear_model(int f, uint64_t a, uint64_t b)
{
	for (uint64_t blk = a / 4096; blk * 4096 < b; blk++) {
		uint64_t lo = blk * 4096 > a ? blk * 4096 : a, hi = (blk + 1) * 4096 < b ? (blk + 1) * 4096 : b;
		uint64_t s0 = lo / 512, s1 = (hi + 511) / 512;
		int touched = 0;
		for (uint64_t s = s0; s < s1 && s < NSEC; s++)
			touched |= sh[f].lost[s];
		if (!touched)
			continue;
		if (noclear) {
			s0 = blk * 8;
			s1 = blk * 8 + 8;
		}
		for (uint64_t s = s0; s < s1 && s < NSEC; s++)
			if (sh[f].lost[s]) {
				sh[f].lost[s] = 0;
				memset(sh[f].data + s * 512, 0, 512);
			}
	}
}

static void op_write(void)
{
	int f = (int)rnd(NF);
	char n[16];
	static char buf[64 * 1024];
	name(f, n);
	uint64_t off = rnd(MAXSZ - 1000), len = 1 + rnd(rnd(4) ? 3000 : 60000);
	if (off + len > MAXSZ)
		len = MAXSZ - off;
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (char)(1 + rnd(255));
	int fd = poise_open(pool, n, O_WRONLY, 0);
	ssize_t k = poise_pwrite(pool, fd, buf, len, (off_t)off);
	poise_close(pool, fd);
	struct statvfs sv;
	if (k == -ENOSPC && poise_statfs(pool, &sv) == 0 && sv.f_bfree < len / 4096 + 16) {
		/* the pool is full (on a platform that cannot clear, every block
		 * a write moves off poison stays quarantined): the write failed
		 * whole, the shadow keeps the file as it was and reads check it */
		full++;
		return;
	}
	if (k != (ssize_t)len) {
		fprintf(stderr, "    op %ld: write %s %llu+%llu: %zd (%s)\n", ops, n, (unsigned long long)off,
			(unsigned long long)len, k, poise_errmsg());
		unexpected++;
		return;
	}
	if (off > sh[f].size) /* the gap in the old last block is zeroed */
		clear_model(f, sh[f].size, off < (sh[f].size | 4095) + 1 ? off : (sh[f].size | 4095) + 1);
	clear_model(f, off, off + len);
	memcpy(sh[f].data + off, buf, len);
	if (off > sh[f].size)
		memset(sh[f].data + sh[f].size, 0, off - sh[f].size);
	if (off + len > sh[f].size)
		sh[f].size = off + len;
}

static void op_truncate(void)
{
	int f = (int)rnd(NF);
	char n[16];
	name(f, n);
	uint64_t size = rnd(MAXSZ);
	int fd = poise_open(pool, n, O_WRONLY, 0);
	int r = poise_ftruncate(pool, fd, (off_t)size);
	poise_close(pool, fd);
	struct statvfs sv;
	if (r == -ENOSPC && poise_statfs(pool, &sv) == 0 && sv.f_bfree < 16) {
		full++; /* zeroing a poisoned block past the old EOF needs a fresh one */
		return;
	}
	if (r < 0) {
		fprintf(stderr, "    op %ld: truncate %s: %d (%s)\n", ops, n, r, poise_errmsg());
		unexpected++;
		return;
	}
	if (size > sh[f].size) {
		uint64_t old = sh[f].size;
		clear_model(f, old, size < (old | 4095) + 1 ? size : (old | 4095) + 1);
		memset(sh[f].data + old, 0, size - old);
	} else {
		/* blocks wholly past the end are freed (and cleared) */
		for (uint64_t s = (size + 4095) / 4096 * 8; s < NSEC; s++)
			sh[f].lost[s] = 0;
	}
	sh[f].size = size;
}

/* Is any sector of [off, off+len) listed bad?  Metadata injections poison
 * one copy at a time: never the twin of a copy that is still bad (on a
 * platform that cannot clear, that is two independent failures of one
 * object, which no replica survives). */
static int listed_bad(uint64_t off, uint64_t len)
{
	struct poise_dev *d = poise_pool_dev(pool);
	return bbt_any(&d->bb, off / 512, (off + len + 511) / 512);
}

/* Poison one copy of a file's inode (the other copy serves, and the
 * primary is rewritten): the files must read exactly as before. */
static void op_inject_inode(void)
{
	int f = (int)rnd(NF);
	char n[16];
	struct stat st;
	name(f, n);
	if (poise_stat(pool, n, &st) < 0) {
		unexpected++;
		return;
	}
	struct poise_fs *fs = poise_pool_fs(pool);
	int rep = (int)rnd(2);
	uint64_t off = rep ? ino_roff(fs, st.st_ino) : ino_off(fs, st.st_ino);
	if (listed_bad(rep ? ino_off(fs, st.st_ino) : ino_roff(fs, st.st_ino), POISE_INODE_SIZE))
		return;
	if (poise_badblocks_inject(pool, off / 512, 1) < 0)
		unexpected++;
	meta_injections++;
	if (remount() < 0) /* the in-memory inode is cached: read it from media again */
		unexpected++;
}

/* Poison one copy of the root directory's block (where the files are
 * named): the other copy serves, the names must all resolve. */
static void op_inject_dir(void)
{
	struct inode *root;
	struct poise_fs *fs = poise_pool_fs(pool);
	if (iget(fs, POISE_ROOT_INO, &root) < 0) {
		unexpected++;
		return;
	}
	uint64_t run, fb = rnd(2), b = imap(root, fb, &run), twin = imap(root, fb ^ 1, &run);
	if (b && twin && listed_bad(twin * 4096, 4096))
		return;
	if (!b || poise_badblocks_inject(pool, b * 8 + rnd(8), 1) < 0)
		unexpected++;
	meta_injections++;
	if (remount() < 0)
		unexpected++;
}

/* Poison one copy of an extent block of a fragmented file. */
static void op_inject_extents(void)
{
	struct poise_fs *fs = poise_pool_fs(pool);
	for (int t = 0; t < NF; t++) {
		char n[16];
		struct stat st;
		struct inode *ip;
		name((int)rnd(NF), n);
		if (poise_stat(pool, n, &st) < 0 || iget(fs, st.st_ino, &ip) < 0) {
			unexpected++;
			return;
		}
		if (!ip->nchain)
			continue;
		uint32_t c = (uint32_t)rnd(ip->nchain);
		if (listed_bad(ip->chain[c ^ 1] * 4096, 4096))
			return;
		if (poise_badblocks_inject(pool, ip->chain[c] * 8 + rnd(8), 1) < 0)
			unexpected++;
		meta_injections++;
		ext_injections++;
		if (remount() < 0)
			unexpected++;
		return;
	}
}

/* Poison a sector of one copy of a log lane (either copy may go bad: a
 * lane bad in both is skipped for another). */
static void op_inject_log(void)
{
	struct poise_fs *fs = poise_pool_fs(pool);
	uint64_t lanes = 2ULL * fs->sb.s_nlanes * fs->sb.s_lane_blocks * 8;
	if (poise_badblocks_inject(pool, fs->sb.s_log_blk * 8 + rnd((unsigned)lanes), 1) < 0)
		unexpected++;
	meta_injections++;
	log_injections++;
}

/* Close the pool, scrub it, and hold the report against the shadow: every
 * range it gives to a file is a sector the shadow has lost, and every lost
 * sector inside a file's blocks is reported.  Then reopen. */
static void op_scrub(void)
{
	struct poise_scrub_report rep;
	poise_pool_close(&pool);
	int r = poise_scrub(img, &rep);
	scrubs++;
	if (r < 0) {
		fprintf(stderr, "    op %ld: scrub failed: %s\n", ops, poise_errmsg());
		unexpected++;
	}
	static uint8_t seen[NF][NSEC];
	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; r == 0 && i < rep.n; i++) {
		const struct poise_scrub_range *x = &rep.r[i];
		scrub_ranges++;
		if (strcmp(x->owner, "file"))
			continue;
		int f = x->path[0] == '/' && x->path[1] == 't' ? atoi(x->path + 2) : -1;
		for (uint64_t q = x->file_offset / 512; f >= 0 && f < NF && q < (x->file_offset + x->length) / 512; q++) {
			if (q >= NSEC || !sh[f].lost[q]) {
				fprintf(stderr, "    op %ld: scrub names %s sector %llu, which the shadow has not lost\n", ops,
					x->path, (unsigned long long)q);
				corrupt++;
			} else {
				seen[f][q] = 1;
			}
		}
	}
	for (int f = 0; r == 0 && f < NF; f++)
		for (uint64_t q = 0; q < (sh[f].size + 4095) / 4096 * 8 && q < NSEC; q++)
			if (sh[f].lost[q] && !seen[f][q]) {
				fprintf(stderr, "    op %ld: scrub missed lost sector %llu of /t%d\n", ops, (unsigned long long)q, f);
				corrupt++;
			}
	if (r == 0)
		poise_scrub_free(&rep);
	pool = NULL;
	if (remount() < 0)
		unexpected++;
}

static void op_inject(void)
{
	int f = (int)rnd(NF);
	char n[16];
	name(f, n);
	if (sh[f].size == 0)
		return;
	uint64_t off = rnd((unsigned)sh[f].size), len = 1 + rnd(1500);
	struct poise_map_piece m[8];
	int k = poise_fiemap(pool, n, off, len, m, 8);
	for (int i = 0; i < k; i++) {
		uint64_t s0 = m[i].pool_off / 512, s1 = (m[i].pool_off + m[i].length + 511) / 512;
		if (poise_badblocks_inject(pool, s0, s1 - s0) < 0) {
			unexpected++;
			return;
		}
		for (uint64_t fs_ = m[i].file_off / 512; fs_ < (m[i].file_off + m[i].length + 511) / 512; fs_++)
			sh[f].lost[fs_] = 1;
	}
	injections++;
}

static void op_read(void)
{
	int f = (int)rnd(NF);
	char n[16];
	static char buf[MAXSZ];
	name(f, n);
	uint64_t off = rnd(MAXSZ), len = 1 + rnd(rnd(3) ? 5000 : MAXSZ);
	int fd = poise_open(pool, n, O_RDONLY, 0);
	ssize_t k = poise_pread(pool, fd, buf, len, (off_t)off);
	poise_close(pool, fd);
	/* expected */
	uint64_t end = off + len < sh[f].size ? off + len : sh[f].size;
	ssize_t want = off >= sh[f].size ? 0 : (ssize_t)(end - off);
	if (want > 0)
		for (uint64_t s = off / 512; s * 512 < end; s++)
			if (sh[f].lost[s]) {
				want = s * 512 <= off ? -EIO : (ssize_t)(s * 512 - off);
				break;
			}
	reads_checked++;
	if (k != want) {
		fprintf(stderr, "    op %ld: read %s %llu+%llu returned %zd, expected %zd\n", ops, n,
			(unsigned long long)off, (unsigned long long)len, k, want);
		corrupt++;
		return;
	}
	if (k < (ssize_t)(end > off ? end - off : 0))
		short_or_eio++;
	if (k > 0 && memcmp(buf, sh[f].data + off, (size_t)k)) {
		fprintf(stderr, "    op %ld: read %s %llu+%zd: WRONG BYTES\n", ops, n, (unsigned long long)off, k);
		corrupt++;
	}
}

static int remount(void)
{
	poise_pool_close(&pool);
	/* the platform's nature holds for the mount's own repairs too */
	if (noclear)
		setenv("POISE_NOCLEAR", "1", 1);
	else
		unsetenv("POISE_NOCLEAR");
	if (poise_pool_open(img, 0, &pool) < 0) {
		fprintf(stderr, "    op %ld: remount failed: %s\n", ops, poise_errmsg());
		corrupt++; /* stops the run: nothing below works without the pool */
		return -1;
	}
	poise_pool_dev(pool)->noclear = noclear;
	return 0;
}

static void run_phase(long n)
{
	for (long i = 0; i < n && !corrupt; i++, ops++) {
		unsigned r = rnd(100);
		if (r < 35)
			op_write();
		else if (r < 70)
			op_read();
		else if (r < 80)
			op_truncate();
		else if (r < 95)
			op_inject();
		else if (r < 97)
			op_inject_inode();
		else if (r < 98)
			op_inject_dir();
		else if (r < 99)
			rnd(2) ? op_inject_extents() : op_inject_log();
		else if (rnd(10) == 0)
			op_scrub();
		else if (remount() < 0)
			unexpected++;
	}
}

static void t_torture(void)
{
	long total = getenv("POISE_TORTURE_OPS") ? atol(getenv("POISE_TORTURE_OPS")) : (H_SANITIZED ? 10000 : 60000);
	if (getenv("POISE_TORTURE_SEED"))
		seed = (unsigned)atoi(getenv("POISE_TORTURE_SEED"));
	fprintf(stderr, "    %ld operations, seed %u\n", total, seed);
	snprintf(img, sizeof(img), "%s/torture.img", h_tmpdir());
	/* quarantined blocks accumulate in the second half: a long run gets a
	 * larger pool (64 MiB and 256 bytes per operation) to stay useful */
	CHECK_EQ(poise_mkfs(img, (64ULL << 20) + (uint64_t)total * 256 / 4096 * 4096, 4096, 0), 0);
	CHECK_EQ(poise_pool_open(img, 0, &pool), 0);
	for (int f = 0; f < NF; f++) {
		char n[16];
		name(f, n);
		int fd = poise_open(pool, n, O_CREAT | O_WRONLY, 0644);
		CHECK(fd >= 0);
		poise_close(pool, fd);
	}
	noclear = 0;
	run_phase(total / 2);
	noclear = 1;
	poise_pool_dev(pool)->noclear = 1;
	run_phase(total - total / 2);
	unsetenv("POISE_NOCLEAR");
	if (!pool) {
		CHECK(pool != NULL);
		return;
	}
	/* a last full read of everything */
	for (int f = 0; f < NF && !corrupt; f++)
		for (int k = 0; k < 20; k++)
			op_read();
	poise_pool_close(&pool);
	fprintf(stderr, "    %ld metadata-copy injections (%ld extent blocks, %ld log lanes, the rest inodes and directory blocks)\n",
		meta_injections, ext_injections, log_injections);
	fprintf(stderr, "    %ld scrubs checked against the shadow (%ld bad ranges reported)\n", scrubs, scrub_ranges);
	fprintf(stderr, "    %ld writes refused whole with ENOSPC: the pool full of quarantined blocks\n", full);
	fprintf(stderr, "    %ld operations: %ld injections, %ld reads checked (%ld short or -EIO as expected), "
		"%ld silent corruptions, %ld unexpected errors\n", ops, injections, reads_checked, short_or_eio,
		corrupt, unexpected);
	CHECK_EQ(corrupt, 0);
	CHECK_EQ(unexpected, 0);
	CHECK(h_fsck_clean(img));
}

int main(void)
{
	RUN(t_torture);
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
