/*
 * test_fs_media.c - media errors at the file-system level (emulated
 * poison): a read stops at exactly the first bad sector, or fails with -EIO
 * naming the file offset and pool sector; the good sectors of the same
 * block, the rest of the file and other files read normally; writes clear
 * poison at sector granularity (sub-sector, cross-sector, cross-page,
 * O_DIRECT and buffered alike); truncate, punch, unlink and rename-over
 * clear what they free; the allocator never hands out a bad block; and on a
 * platform that cannot clear, a write moves the block to a fresh one and
 * quarantines the old one, for good.
 */
#include "harness.h"
#include "poise.h"
#include "poise-admin.h"
#include "fs_check.h"
#include "dev/dev.h"
#include "fs/fs.h"
#include "dev/block.h"
#include "dev/persist.h"
#include "fs/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/wait.h>

struct poise_dev *poise_pool_dev(struct poise_pool *p);
struct poise_fs *poise_pool_fs(struct poise_pool *p);
static char img[400];
#define FSZ (64 * 1024)

static void pattern(char *b, size_t n, uint64_t off, int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(1 + ((off + i) * 7 + seed * 13 + ((off + i) >> 9)) % 127);
}

static struct poise_pool *with_file(const char *name, int seed)
{
	static int k;
	struct poise_pool *p;
	snprintf(img, sizeof(img), "%s/m%d.img", h_tmpdir(), k++);
	if (poise_mkfs(img, 32 << 20, 0, 0) < 0 || poise_pool_open(img, 0, &p) < 0)
		return NULL;
	static char buf[FSZ];
	pattern(buf, FSZ, 0, seed);
	int fd = poise_open(p, name, O_CREAT | O_RDWR, 0644);
	if (fd < 0 || poise_pwrite(p, fd, buf, FSZ, 0) != FSZ)
		return NULL;
	poise_close(p, fd);
	return p;
}

/* Poison the sectors holding [off, off+len) of path; returns the first pool sector. */
static uint64_t poison(struct poise_pool *p, const char *path, uint64_t off, uint64_t len)
{
	struct poise_map_piece m[8];
	int n = poise_fiemap(p, path, off, len, m, 8);
	uint64_t first = 0;
	for (int i = 0; i < n; i++) {
		uint64_t s0 = m[i].pool_off / 512, s1 = (m[i].pool_off + m[i].length + 511) / 512;
		if (!i)
			first = s0;
		if (poise_badblocks_inject(p, s0, s1 - s0) < 0)
			return ~0ULL;
	}
	return n > 0 ? first : ~0ULL;
}

static long bad_sectors(struct poise_pool *p)
{
	struct poise_info in;
	poise_info(p, &in);
	return (long)in.bad_sectors;
}


static void t_read_stops_at_each_sector(void)
{
	static char buf[FSZ], want[FSZ];
	pattern(want, FSZ, 0, 1);
	for (int s = 0; s < 8; s++) { /* every sector of file block 3 */
		struct poise_pool *p = with_file("/f", 1);
		CHECK(p);
		uint64_t off = 3 * 4096 + s * 512;
		uint64_t sector = poison(p, "/f", off, 1);
		CHECK(sector != ~0ULL);
		int fd = poise_open(p, "/f", O_RDONLY, 0);
		CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), (long long)off); /* exactly the bytes before */
		CHECK(!memcmp(buf, want, off));
		CHECK_EQ(poise_pread(p, fd, buf, 10, (off_t)off + 100), -EIO);
		char msg[128];
		snprintf(msg, sizeof(msg), "file offset %llu (pool sector %llu)", (unsigned long long)off + 100,
			 (unsigned long long)sector);
		CHECK_STR_HAS(poise_errmsg(), msg);
		for (int o = 0; o < 8; o++) { /* the block's other sectors read normally */
			if (o == s)
				continue;
			CHECK_EQ(poise_pread(p, fd, buf, 512, 3 * 4096 + o * 512), 512);
			CHECK(!memcmp(buf, want + 3 * 4096 + o * 512, 512));
		}
		CHECK_EQ(poise_pread(p, fd, buf, FSZ, (off_t)off + 512), (long long)(FSZ - off - 512));
		CHECK(!memcmp(buf, want + off + 512, FSZ - off - 512));
		poise_close(p, fd);
		poise_pool_close(&p);
	}
}

static void t_other_files_and_holes(void)
{
	struct poise_pool *p = with_file("/f", 1);
	CHECK(p);
	static char buf[FSZ], want[FSZ];
	int g = poise_open(p, "/g", O_CREAT | O_RDWR, 0644);
	pattern(want, FSZ, 0, 2);
	CHECK_EQ(poise_pwrite(p, g, want, FSZ, 0), FSZ);
	CHECK_EQ(poise_pwrite(p, g, "x", 1, 10 << 20), 1); /* a 10 MiB hole */
	CHECK(poison(p, "/f", 0, FSZ) != ~0ULL); /* all of /f */
	/* poison free space too: a hole never reads the media */
	CHECK_EQ(poise_badblocks_inject(p, 30000, 64), 0);
	CHECK_EQ(poise_pread(p, g, buf, FSZ, 0), FSZ);
	CHECK(!memcmp(buf, want, FSZ));
	CHECK_EQ(poise_pread(p, g, buf, FSZ, 5 << 20), FSZ);
	for (int i = 0; i < FSZ; i++)
		CHECK_EQ(buf[i], 0);
	int f = poise_open(p, "/f", O_RDONLY, 0);
	CHECK_EQ(poise_pread(p, f, buf, 100, 0), -EIO);
	poise_close(p, f);
	poise_close(p, g);
	poise_pool_close(&p);
}

static void t_writes_clear_at_sector_granularity(void)
{
	static char buf[FSZ], want[FSZ];
	for (int odirect = 0; odirect < 2; odirect++) {
		struct poise_pool *p = with_file("/f", 3);
		CHECK(p);
		pattern(want, FSZ, 0, 3);
		int fd = poise_open(p, "/f", O_RDWR | (odirect ? O_DIRECT : 0), 0);
		/* sub-sector: 1 byte into bad sector (block 2, sector 5) */
		uint64_t a = 2 * 4096 + 5 * 512;
		poison(p, "/f", a, 1);
		CHECK_EQ(poise_pwrite(p, fd, "Q", 1, (off_t)a + 7), 1);
		memset(want + a, 0, 512);
		want[a + 7] = 'Q';
		/* cross-sector: the end of one bad sector and the start of the next */
		uint64_t b = 5 * 4096 + 2 * 512;
		poison(p, "/f", b, 1024);
		CHECK_EQ(poise_pwrite(p, fd, "crossing", 8, (off_t)b + 508), 8);
		memset(want + b, 0, 1024);
		memcpy(want + b + 508, "crossing", 8);
		/* cross-page: the last sector of block 8 and the first of block 9 */
		uint64_t c = 9 * 4096 - 512;
		poison(p, "/f", c, 1024);
		char big[3000];
		memset(big, 'P', sizeof(big));
		CHECK_EQ(poise_pwrite(p, fd, big, sizeof(big), (off_t)c - 1000), (long)sizeof(big));
		memset(want + c, 0, 1024);
		memcpy(want + c - 1000, big, sizeof(big));
		CHECK_EQ(bad_sectors(p), 0); /* every write cleared what it covered */
		CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), FSZ);
		CHECK(!memcmp(buf, want, FSZ));
		poise_close(p, fd);
		poise_pool_close(&p);
		CHECK(h_fsck_clean(img));
	}
}

static void t_freeing_clears(void)
{
	struct poise_pool *p = with_file("/f", 4);
	CHECK(p);
	int fd = poise_open(p, "/g", O_CREAT | O_RDWR, 0644);
	static char buf[FSZ];
	CHECK_EQ(poise_pwrite(p, fd, buf, FSZ, 0), FSZ);
	poise_close(p, fd);
	poison(p, "/f", 40000, 1);
	CHECK_EQ(bad_sectors(p), 1);
	fd = poise_open(p, "/f", O_RDWR, 0);
	CHECK_EQ(poise_ftruncate(p, fd, 8192), 0); /* truncate frees and clears */
	CHECK_EQ(bad_sectors(p), 0);
	poise_close(p, fd);
	poison(p, "/g", 3 * 4096, 4096);
	fd = poise_open(p, "/g", O_RDWR, 0);
	CHECK_EQ(poise_fallocate(p, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * 4096, 3 * 4096), 0);
	CHECK_EQ(bad_sectors(p), 0); /* punch */
	poise_close(p, fd);
	poison(p, "/g", 0, 1);
	CHECK_EQ(poise_rename(p, "/f", "/g"), 0); /* rename over /g frees it */
	CHECK_EQ(bad_sectors(p), 0);
	poison(p, "/g", 100, 1);
	CHECK_EQ(poise_unlink(p, "/g"), 0);
	CHECK_EQ(bad_sectors(p), 0);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static void t_allocator_clears_before_use(void)
{
	struct poise_pool *p = with_file("/f", 5);
	CHECK(p);
	struct statvfs sv;
	poise_statfs(p, &sv);
	/* poison a spread of free blocks, then fill the pool */
	struct poise_info in;
	poise_info(p, &in);
	uint64_t total = in.pool_bytes / 512;
	for (uint64_t s = total / 4; s < total * 3 / 4; s += 211)
		poise_badblocks_inject(p, s, 1);
	CHECK(bad_sectors(p) > 100);
	int fd = poise_open(p, "/fill", O_CREAT | O_RDWR, 0644);
	static char buf[1 << 20], back[1 << 20];
	off_t off = 0;
	for (;;) {
		pattern(buf, sizeof(buf), (uint64_t)off, 6);
		ssize_t k = poise_pwrite(p, fd, buf, sizeof(buf), off);
		if (k < 0) {
			CHECK_EQ(k, -ENOSPC);
			break;
		}
		off += k;
	}
	for (off_t o = 0; o < off; o += sizeof(buf)) {
		pattern(buf, sizeof(buf), (uint64_t)o, 6);
		CHECK_EQ(poise_pread(p, fd, back, sizeof(back), o), (long)sizeof(back));
		CHECK(!memcmp(buf, back, sizeof(buf)));
	}
	poise_close(p, fd);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static void t_noclear_remaps_and_quarantines(void)
{
	struct poise_pool *p = with_file("/f", 7);
	CHECK(p);
	poise_pool_dev(p)->noclear = 1; /* a platform that cannot clear */
	static char want[FSZ], buf[FSZ];
	pattern(want, FSZ, 0, 7);
	uint64_t off = 6 * 4096 + 3 * 512;
	uint64_t sector = poison(p, "/f", off, 1);
	struct poise_map_piece before;
	CHECK_EQ(poise_fiemap(p, "/f", 6 * 4096, 1, &before, 1), 1);
	int fd = poise_open(p, "/f", O_RDWR | O_DIRECT, 0);
	CHECK_EQ(poise_pwrite(p, fd, "R", 1, (off_t)off + 1), 1); /* succeeds anyway */
	memset(want + off, 0, 512);
	want[off + 1] = 'R';
	CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), FSZ); /* reads back whole */
	CHECK(!memcmp(buf, want, FSZ));
	CHECK_EQ(bad_sectors(p), 1); /* the entry stays: the sector is still bad */
	struct poise_map_piece after;
	CHECK_EQ(poise_fiemap(p, "/f", 6 * 4096, 1, &after, 1), 1);
	CHECK(after.pool_off != before.pool_off); /* moved to a fresh block */
	CHECK_EQ(before.pool_off / 512 + 3, sector);
	/* an in-place overwrite of the whole block, too */
	poison(p, "/f", 0, 4096);
	memset(buf, 'W', 4096);
	CHECK_EQ(poise_pwrite(p, fd, buf, 4096, 0), 4096);
	memset(want, 'W', 4096);
	CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), FSZ);
	CHECK(!memcmp(buf, want, FSZ));
	poise_close(p, fd);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img)); /* the quarantine inode holds the old blocks */
	/* for good: after a remount, filling the pool never reuses them */
	setenv("POISE_NOCLEAR", "1", 1);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	fd = poise_open(p, "/fill", O_CREAT | O_RDWR, 0644);
	off_t o = 0;
	while (poise_pwrite(p, fd, buf, 4096, o) == 4096)
		o += 4096;
	CHECK_EQ(poise_pread(p, fd, buf, 4096, 0), 4096);
	poise_close(p, fd);
	unsetenv("POISE_NOCLEAR");
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img)); /* no block owned twice, quarantine intact */
}

static void t_scrub_names_owners(void)
{
	struct poise_pool *p = with_file("/f", 8);
	CHECK(p);
	CHECK_EQ(poise_mkdir(p, "/dir", 0755), 0);
	int fd = poise_open(p, "/dir/g", O_CREAT | O_RDWR, 0644);
	static char buf[FSZ];
	CHECK_EQ(poise_pwrite(p, fd, buf, 20000, 0), 20000);
	poise_close(p, fd);
	uint64_t fs_ = poison(p, "/f", 3 * 4096 + 1024, 600);   /* 2 sectors of /f */
	uint64_t gs = poison(p, "/dir/g", 16384, 1);           /* 1 sector of /dir/g */
	CHECK_EQ(poise_badblocks_inject(p, 0, 1), 0);          /* the superblock */
	CHECK_EQ(poise_badblocks_inject(p, 9, 1), 0);          /* log lane 0 */
	CHECK_EQ(poise_badblocks_inject(p, 60000, 2), 0);      /* free space */
	poise_pool_close(&p);
	struct poise_scrub_report r;
	CHECK_EQ(poise_scrub(img, &r), 0);
	int seen_f = 0, seen_g = 0, seen_sb = 0, seen_log = 0, seen_free = 0;
	for (size_t i = 0; i < r.n; i++) {
		struct poise_scrub_range *x = &r.r[i];
		if (x->sector == fs_) {
			CHECK(!strcmp(x->owner, "file") && !strcmp(x->path, "/f"));
			CHECK_EQ(x->file_offset, 3 * 4096 + 1024);
			CHECK_EQ(x->length, 1024);
			seen_f = 1;
		} else if (x->sector == gs) {
			CHECK(!strcmp(x->owner, "file") && !strcmp(x->path, "/dir/g"));
			CHECK_EQ(x->file_offset, 16384);
			seen_g = 1;
		} else if (x->sector == 0) {
			CHECK(!strcmp(x->owner, "metadata") && !strcmp(x->what, "superblock") && x->repaired);
			seen_sb = 1;
		} else if (x->sector == 9) {
			CHECK(!strcmp(x->owner, "metadata") && !strncmp(x->what, "log lane", 8) && x->repaired);
			seen_log = 1;
		} else if (x->sector == 60000) {
			CHECK(!strcmp(x->owner, "free"));
			CHECK_EQ(x->count, 2);
			seen_free = 1;
		}
	}
	CHECK(seen_f && seen_g && seen_sb && seen_log && seen_free);
	CHECK_EQ(r.found_new, 0);
	poise_scrub_free(&r);
	CHECK(h_fsck_clean(img));
}

static void t_block_path(void)
{
	static char want[FSZ], buf[FSZ];
	pattern(want, FSZ, 0, 10);
	struct poise_pool *p = with_file("/f", 10);
	CHECK(p);
	int fd = poise_open(p, "/f", O_RDWR | O_DIRECT | POISE_O_BLOCK, 0);
	CHECK(fd >= 0);
	fprintf(stderr, "    block path through %s\n", poise_pool_fs(p)->blk->name);
	CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), FSZ);
	CHECK(!memcmp(buf, want, FSZ));
	CHECK_EQ(poise_pread(p, fd, buf, 1000, 777), 1000); /* unaligned: a bounce buffer */
	CHECK(!memcmp(buf, want + 777, 1000));
	memset(buf, 'B', 4096);
	CHECK_EQ(poise_pwrite(p, fd, buf, 4096, 8192), 4096);
	memset(want + 8192, 'B', 4096);
	CHECK_EQ(poise_pwrite(p, fd, "odd", 3, 5), 3);
	memcpy(want + 5, "odd", 3);
	/* poison: a short read before the bad sector, -EIO on it, a write clears */
	poison(p, "/f", 5 * 4096 + 512, 1);
	CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), 5 * 4096 + 512);
	CHECK_EQ(poise_pread(p, fd, buf, 10, 5 * 4096 + 600), -EIO);
	CHECK_EQ(poise_pwrite(p, fd, "fix", 3, 5 * 4096 + 600), 3);
	memset(want + 5 * 4096 + 512, 0, 512);
	memcpy(want + 5 * 4096 + 600, "fix", 3);
	CHECK_EQ(bad_sectors(p), 0);
	/* allocating writes take the block path too: an append, and a write
	 * past EOF leaving a hole */
	struct poise_block *bk = poise_pool_fs(p)->blk;
	uint64_t w0 = bk->writes;
	static char more[3 * 4096];
	pattern(more, sizeof(more), FSZ, 33);
	CHECK_EQ(poise_pwrite(p, fd, more, 6000, FSZ), 6000);
	CHECK_EQ(poise_pwrite(p, fd, more + 6000, 100, FSZ + 2 * 4096 + 50), 100);
	CHECK(bk->writes >= w0 + 3); /* two blocks, then one */
	/* the DAX path sees the same bytes */
	int dfd = poise_open(p, "/f", O_RDONLY, 0);
	CHECK_EQ(poise_pread(p, dfd, buf, FSZ, 0), FSZ);
	CHECK(!memcmp(buf, want, FSZ));
	static char tail[3 * 4096], twant[3 * 4096];
	memcpy(twant, more, 6000);
	memcpy(twant + 2 * 4096 + 50, more + 6000, 100);
	CHECK_EQ(poise_pread(p, dfd, tail, sizeof(tail), FSZ), 2 * 4096 + 150);
	CHECK(!memcmp(tail, twant, 2 * 4096 + 150));
	poise_close(p, dfd);
	poise_close(p, fd);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static void t_inode_replica(void)
{
	struct poise_pool *p = with_file("/f", 11);
	CHECK(p);
	/* two inodes share a 512-byte sector: keep /g out of /f's sector */
	poise_close(p, poise_open(p, "/pad1", O_CREAT | O_WRONLY, 0644));
	poise_close(p, poise_open(p, "/pad2", O_CREAT | O_WRONLY, 0644));
	int fd = poise_open(p, "/g", O_CREAT | O_WRONLY, 0644);
	CHECK_EQ(poise_pwrite(p, fd, "other", 5, 0), 5);
	poise_close(p, fd);
	struct stat st;
	CHECK_EQ(poise_stat(p, "/f", &st), 0);
	struct poise_fs *fs = poise_pool_fs(p);
	uint64_t prim = ino_off(fs, st.st_ino) / 512, rep = ino_roff(fs, st.st_ino) / 512;
	poise_pool_close(&p);
	/* the primary copy poisoned: served from the replica, and repaired */
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_badblocks_inject(p, prim, 1), 0);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	static char want[FSZ], buf[FSZ];
	pattern(want, FSZ, 0, 11);
	fd = poise_open(p, "/f", O_RDONLY, 0);
	CHECK(fd >= 0);
	CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), FSZ);
	CHECK(!memcmp(buf, want, FSZ));
	poise_close(p, fd);
	CHECK_EQ(bad_sectors(p), 0); /* the rewrite cleared the poison */
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
	/* both copies poisoned: only that file fails; the pool and /g work */
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_badblocks_inject(p, prim, 1), 0);
	CHECK_EQ(poise_badblocks_inject(p, rep, 1), 0);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0); /* still mounts */
	CHECK_EQ(poise_stat(p, "/f", &st), -EIO);
	CHECK_STR_HAS(poise_errmsg(), "both copies are unreadable");
	fd = poise_open(p, "/g", O_RDONLY, 0);
	CHECK_EQ(poise_pread(p, fd, buf, 5, 0), 5);
	CHECK(!memcmp(buf, "other", 5));
	poise_close(p, fd);
	poise_pool_close(&p);
}

/* Two inodes share a 512-byte sector.  Poison it while the pool is open,
 * then load only the first: its repair is a clearing write, which zero-fills
 * the sector, so the second inode's primary now reads as never used.  The
 * next mount must see through that (the replica holds it), or the second
 * file's blocks would be handed out again. */
static void t_inode_sector_neighbours(void)
{
	struct poise_pool *p = with_file("/f", 14); /* inode 3 */
	CHECK(p);
	static char want[FSZ], buf[FSZ];
	pattern(want, FSZ, 0, 15);
	int fd = poise_open(p, "/g", O_CREAT | O_RDWR, 0644); /* inode 4: the same sector */
	CHECK_EQ(poise_pwrite(p, fd, want, FSZ, 0), FSZ);
	poise_close(p, fd);
	struct stat sf, sg;
	CHECK_EQ(poise_stat(p, "/f", &sf), 0);
	CHECK_EQ(poise_stat(p, "/g", &sg), 0);
	struct poise_fs *fs = poise_pool_fs(p);
	CHECK_EQ(ino_off(fs, sf.st_ino) / 512, ino_off(fs, sg.st_ino) / 512);
	uint64_t sec = ino_off(fs, sf.st_ino) / 512;
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_badblocks_inject(p, sec, 1), 0);
	CHECK_EQ(poise_stat(p, "/f", &sf), 0); /* loads and repairs /f only */
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	/* fill the pool: not one of /g's blocks may be handed out */
	static char junk[1 << 20];
	memset(junk, 'J', sizeof(junk));
	fd = poise_open(p, "/fill", O_CREAT | O_WRONLY, 0644);
	for (off_t o = 0; poise_pwrite(p, fd, junk, sizeof(junk), o) == (ssize_t)sizeof(junk); o += sizeof(junk))
		;
	poise_close(p, fd);
	fd = poise_open(p, "/g", O_RDONLY, 0);
	CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), FSZ);
	CHECK(!memcmp(buf, want, FSZ));
	poise_close(p, fd);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static void t_dir_replica(void)
{
	struct poise_pool *p = with_file("/other", 12);
	CHECK(p);
	CHECK_EQ(poise_mkdir(p, "/d", 0755), 0);
	char n[32];
	for (int i = 0; i < 10; i++) {
		snprintf(n, sizeof(n), "/d/f%d", i);
		poise_close(p, poise_open(p, n, O_CREAT | O_WRONLY, 0644));
	}
	struct stat st;
	CHECK_EQ(poise_stat(p, "/d", &st), 0);
	struct inode *dp;
	CHECK_EQ(iget(poise_pool_fs(p), st.st_ino, &dp), 0);
	uint64_t run, prim = imap(dp, 0, &run) * 8, rep = imap(dp, 1, &run) * 8;
	CHECK(prim && rep && prim != rep);
	/* the primary block poisoned: the replica serves and heals it */
	CHECK_EQ(poise_badblocks_inject(p, prim, 8), 0);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_stat(p, "/d/f7", &st), 0);
	CHECK_EQ(bad_sectors(p), 0);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
	/* both copies: only /d fails; the pool and /other work */
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_badblocks_inject(p, prim + 1, 1), 0);
	CHECK_EQ(poise_badblocks_inject(p, rep + 1, 1), 0);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_stat(p, "/d/f7", &st), -EIO);
	CHECK_STR_HAS(poise_errmsg(), "unreadable in both copies");
	CHECK_EQ(poise_stat(p, "/other", &st), 0);
	CHECK_EQ(poise_mkdir(p, "/fine", 0755), 0);
	poise_pool_close(&p);
}

/* A file whose extents spill into an extent chain: every other block. */
static void make_frag(struct poise_pool *p, const char *path, int nblk)
{
	char b[4096];
	int fd = poise_open(p, path, O_CREAT | O_WRONLY, 0644);
	for (int i = 0; i < nblk; i += 2) {
		pattern(b, sizeof(b), (uint64_t)i * 4096, 21);
		poise_pwrite(p, fd, b, sizeof(b), (off_t)i * 4096);
	}
	poise_close(p, fd);
}

static int frag_intact(struct poise_pool *p, const char *path, int nblk)
{
	char b[4096], w[4096];
	int fd = poise_open(p, path, O_RDONLY, 0), ok = fd >= 0;
	struct stat st;
	ok = ok && poise_fstat(p, fd, &st) == 0 && st.st_size >= (nblk - 1) * 4096;
	for (int i = 0; ok && i < nblk && i * 4096 < st.st_size; i++) {
		if (i % 2)
			memset(w, 0, sizeof(w));
		else
			pattern(w, sizeof(w), (uint64_t)i * 4096, 21);
		ok = poise_pread(p, fd, b, sizeof(b), (off_t)i * 4096) == (ssize_t)sizeof(b) && !memcmp(b, w, sizeof(b));
	}
	poise_close(p, fd);
	return ok;
}

static void t_extent_replica(void)
{
	struct poise_pool *p = with_file("/other", 13);
	CHECK(p);
	make_frag(p, "/frag", 80);
	struct stat st;
	struct inode *ip;
	CHECK_EQ(poise_stat(p, "/frag", &st), 0);
	CHECK_EQ(iget(poise_pool_fs(p), st.st_ino, &ip), 0);
	CHECK_EQ(ip->nchain, 2); /* one link: a primary and its replica */
	uint64_t chain[2] = {ip->chain[0], ip->chain[1]};
	CHECK(chain[0] != chain[1]);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
	/* each copy poisoned in turn: the other serves, the bad one is rewritten */
	for (int rep = 0; rep < 2; rep++) {
		CHECK_EQ(poise_pool_open(img, 0, &p), 0);
		CHECK_EQ(poise_badblocks_inject(p, chain[rep] * 8 + 3, 1), 0);
		poise_pool_close(&p);
		CHECK_EQ(poise_pool_open(img, 0, &p), 0);
		CHECK(frag_intact(p, "/frag", 80));
		CHECK_EQ(bad_sectors(p), 0);
		poise_pool_close(&p);
		CHECK(h_fsck_clean(img));
	}
	/* a platform that cannot clear: the primary stays bad; changes to the
	 * map (in place: an append growing the last extent; and a fresh
	 * chain: a hole filled) still succeed, served by the replica */
	setenv("POISE_NOCLEAR", "1", 1);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_badblocks_inject(p, chain[0] * 8 + 1, 1), 0);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK(frag_intact(p, "/frag", 80));
	CHECK_EQ(bad_sectors(p), 1);
	char b[4096];
	pattern(b, sizeof(b), 79 * 4096, 21);
	int fd = poise_open(p, "/frag", O_WRONLY, 0);
	memset(b, 0, sizeof(b));
	CHECK_EQ(poise_pwrite(p, fd, b, 4096, 79 * 4096), 4096); /* zeros: as frag_intact expects */
	poise_close(p, fd);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK(frag_intact(p, "/frag", 80));
	fd = poise_open(p, "/frag", O_WRONLY, 0);
	CHECK_EQ(poise_pwrite(p, fd, b, 4096, 41 * 4096), 4096); /* fills a hole: a new chain */
	poise_close(p, fd);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK(frag_intact(p, "/frag", 80));
	poise_pool_close(&p);
	unsetenv("POISE_NOCLEAR");
	CHECK(h_fsck_clean(img));
	/* both copies: only that file fails; the pool and /other work */
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_stat(p, "/frag", &st), 0);
	CHECK_EQ(iget(poise_pool_fs(p), st.st_ino, &ip), 0);
	CHECK(ip->nchain == 2);
	CHECK_EQ(poise_badblocks_inject(p, ip->chain[0] * 8, 1), 0);
	CHECK_EQ(poise_badblocks_inject(p, ip->chain[1] * 8, 1), 0);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_open(p, "/frag", O_RDONLY, 0), -EIO);
	CHECK_STR_HAS(poise_errmsg(), "unreadable in both copies");
	static char want[FSZ], buf[FSZ];
	pattern(want, FSZ, 0, 13);
	fd = poise_open(p, "/other", O_RDONLY, 0);
	CHECK_EQ(poise_pread(p, fd, buf, FSZ, 0), FSZ);
	CHECK(!memcmp(buf, want, FSZ));
	poise_close(p, fd);
	CHECK_EQ(poise_mkdir(p, "/fine", 0755), 0);
	poise_pool_close(&p);
}

/* Lane header of lane i, copy rep, read from a closed pool image. */
static int lane_committed(struct poise_dev *d, const struct poise_super *sb, uint32_t i, int rep)
{
	struct poise_lane h;
	uint64_t blk = (rep ? sb->s_log_replica_blk : sb->s_log_blk) + (uint64_t)i * sb->s_lane_blocks;
	return poise_dev_read(d, blk * POISE_BLOCK, &h, sizeof(h)) == sizeof(h) && h.l_magic == POISE_LOG_COMMITTED;
}

/* Crash a child at successive fences of one mkdir until the image holds a
 * committed, unapplied transaction; returns its lane (or -1). */
static int committed_image(struct poise_super *sb)
{
	for (long n = 1; n < 50; n++) {
		unlink(img);
		char side[450];
		snprintf(side, sizeof(side), "%s.badblocks", img);
		unlink(side);
		if (poise_mkfs(img, 8 << 20, 0, 0) < 0)
			return -1;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			struct poise_pool *p;
			if (poise_pool_open(img, 0, &p) < 0 || poise_mkdir(p, "/pre", 0755) < 0)
				_exit(3); /* the root has its block: the mkdir below is one transaction */
			poise_fence_crash_at = poise_fence_count() + n;
			poise_mkdir(p, "/made", 0755);
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		struct poise_dev *d;
		if (poise_dev_open(img, &d) < 0)
			return -1;
		poise_dev_read(d, 0, sb, sizeof(*sb));
		int found = -1;
		for (uint32_t i = 0; i < sb->s_nlanes && found < 0; i++)
			if (lane_committed(d, sb, i, 0) && lane_committed(d, sb, i, 1))
				found = (int)i;
		poise_dev_close(&d);
		if (found >= 0)
			return found;
	}
	return -1;
}

static void t_log_replica(void)
{
	static int k;
	snprintf(img, sizeof(img), "%s/log%d.img", h_tmpdir(), k++);
	struct poise_super sb;
	struct poise_pool *p;
	struct stat st;
	/* a committed transaction waiting in a lane whose primary is poisoned:
	 * replay takes it from the replica; then each other case */
	for (int c = 0; c < 3; c++) {
		int lane = committed_image(&sb);
		CHECK(lane >= 0);
		if (lane < 0)
			return;
		struct poise_dev *d;
		CHECK_EQ(poise_dev_open(img, &d), 0);
		uint64_t prim = (sb.s_log_blk + (uint64_t)lane * sb.s_lane_blocks) * 8;
		uint64_t rep = (sb.s_log_replica_blk + (uint64_t)lane * sb.s_lane_blocks) * 8;
		if (c != 1)
			CHECK_EQ(poise_dev_inject(d, prim, 1), 0);
		struct poise_lane h; /* the records' last sector (inode records are deltas: short) */
		CHECK_EQ(poise_dev_read(d, rep * POISE_SECTOR, &h, sizeof(h)), (ssize_t)sizeof(h));
		if (c != 0)
			CHECK_EQ(poise_dev_inject(d, rep + (sizeof(h) + h.l_bytes - 1) / POISE_SECTOR, 1), 0);
		poise_dev_close(&d);
		CHECK_EQ(poise_pool_open(img, 0, &p), 0);
		/* one copy left: the mkdir is there; none: it never happened */
		CHECK_EQ(poise_stat(p, "/made", &st), c == 2 ? -ENOENT : 0);
		CHECK_EQ(poise_mkdir(p, "/after", 0755), 0);
		poise_pool_close(&p);
		CHECK(h_fsck_clean(img));
	}
	/* a platform that cannot clear: every primary lane poisoned, the
	 * replicas carry the transactions; then every replica too: a
	 * transaction fails cleanly, with nothing applied */
	setenv("POISE_NOCLEAR", "1", 1);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	for (uint32_t i = 0; i < sb.s_nlanes; i++)
		CHECK_EQ(poise_badblocks_inject(p, (sb.s_log_blk + (uint64_t)i * sb.s_lane_blocks) * 8, 1), 0);
	CHECK_EQ(poise_mkdir(p, "/nc", 0755), 0);
	int fd = poise_open(p, "/nc/f", O_CREAT | O_WRONLY, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(poise_pwrite(p, fd, "abc", 3, 0), 3);
	poise_close(p, fd);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_stat(p, "/nc/f", &st), 0);
	CHECK_EQ(st.st_size, 3);
	CHECK_EQ(bad_sectors(p), (long)sb.s_nlanes);
	for (uint32_t i = 0; i < sb.s_nlanes; i++)
		CHECK_EQ(poise_badblocks_inject(p, (sb.s_log_replica_blk + (uint64_t)i * sb.s_lane_blocks) * 8, 1), 0);
	CHECK_EQ(poise_mkdir(p, "/nolane", 0755), -EIO);
	CHECK_STR_HAS(poise_errmsg(), "no log lane");
	CHECK_EQ(poise_stat(p, "/nolane", &st), -ENOENT);
	poise_pool_close(&p);
	unsetenv("POISE_NOCLEAR");
	/* a platform that clears: mount's retire clears the lane headers */
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(bad_sectors(p), 0);
	CHECK_EQ(poise_stat(p, "/nc/f", &st), 0);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static struct poise_pool *mp;
static void *maddr;
static void touch_mapped(void)
{
	fprintf(stderr, "    (expected) a load through poise_map on poison:\n");
	volatile char c = *(volatile char *)maddr;
	(void)c;
}

static void t_direct_map(void)
{
	struct poise_pool *p = with_file("/f", 9);
	CHECK(p);
	static char want[FSZ], buf[FSZ];
	pattern(want, FSZ, 0, 9);
	int fd = poise_open(p, "/f", O_RDWR, 0);
	void *a;
	CHECK_EQ(poise_map(p, fd, 4096, 8192, &a), 0);
	CHECK(!memcmp(a, want + 4096, 8192)); /* plain loads */
	memcpy(a, "direct", 6);                /* plain stores */
	poise_map_persist(p, a, 6);
	CHECK_EQ(poise_pread(p, fd, buf, 6, 4096), 6);
	CHECK(!memcmp(buf, "direct", 6));
	CHECK_EQ(poise_map(p, fd, 0, FSZ + 4096, &a), -EINVAL);
	poise_pwrite(p, fd, "x", 1, 1 << 20); /* a hole before it */
	CHECK_EQ(poise_map(p, fd, 512 << 10, 10, &a), -ENXIO);
	/* poison: poise_map_read stops short, a plain load gets SIGBUS */
	CHECK_EQ(poise_map(p, fd, 0, 3 * 4096, &a), 0);
	poison(p, "/f", 2 * 4096 + 512, 1);
	CHECK_EQ(poise_map_read(p, buf, a, 3 * 4096), 2 * 4096 + 512);
	CHECK_EQ(poise_map_read(p, buf, (char *)a + 2 * 4096 + 600, 10), -EIO);
	mp = p;
	maddr = (char *)a + 2 * 4096 + 600;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		touch_mapped();
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) || (H_SANITIZED && WIFEXITED(st) && WEXITSTATUS(st)));
	poise_close(p, fd);
	poise_pool_close(&p);
}

/* An extending write logs only the inode words that change
 * (istore), each copy compared with what the pool holds: a copy
 * torn without poison (its crc no longer matches) gets every word it
 * lacks, so both copies come out whole and equal. */
static void t_inode_delta_heals_a_torn_copy(void)
{
	struct poise_pool *p = with_file("/f", 21);
	CHECK(p);
	struct stat st;
	CHECK_EQ(poise_stat(p, "/f", &st), 0);
	struct poise_fs *fs = poise_pool_fs(p);
	static char junk[64];
	memset(junk, 0x5a, sizeof(junk));
	CHECK_EQ(poise_dev_write(fs->dev, ino_roff(fs, st.st_ino) + 72, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	int fd = poise_open(p, "/f", O_WRONLY, 0);
	CHECK(fd >= 0);
	CHECK_EQ(poise_pwrite(p, fd, "tail", 4, FSZ), 4); /* extends: a transaction */
	poise_close(p, fd);
	struct poise_dinode a, b;
	CHECK_EQ(poise_dev_read(fs->dev, ino_off(fs, st.st_ino), &a, sizeof(a)), (ssize_t)sizeof(a));
	CHECK_EQ(poise_dev_read(fs->dev, ino_roff(fs, st.st_ino), &b, sizeof(b)), (ssize_t)sizeof(b));
	CHECK(!memcmp(&a, &b, sizeof(a)));
	CHECK_EQ(dinode_check(&b), 0);
	CHECK_EQ(a.i_size, (uint64_t)FSZ + 4);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_stat(p, "/f", &st), 0);
	CHECK_EQ(st.st_size, FSZ + 4);
	poise_pool_close(&p);
}

/* One transaction of one tx_write_delta; got[8] then reads the 64 bytes
 * from off & ~7. */
static void delta_commit(struct poise_fs *fs, uint64_t off, const void *data, uint32_t len, uint64_t *got)
{
	struct tx *tx = tx_begin(fs);
	CHECK(tx);
	if (!tx)
		return;
	CHECK_EQ(tx_write_delta(tx, off, data, len), 0);
	CHECK_EQ(tx_commit(tx), 0);
	CHECK_EQ(poise_dev_read(fs->dev, off & ~7ULL, got, 64), 64);
}

/* tx_write_delta compares with the pool as this transaction's earlier
 * records leave it: a word an earlier record changed and the delta's
 * image puts back is logged (else the earlier record's value would
 * stand); a delta that changes nothing logs nothing; a range it cannot
 * compare (not 8-byte multiples) is logged whole. */
static void t_tx_delta_sees_earlier_records(void)
{
	struct poise_pool *p = with_file("/s", 22);
	CHECK(p);
	struct poise_fs *fs = poise_pool_fs(p);
	struct poise_map_piece m[1];
	CHECK_EQ(poise_fiemap(p, "/s", 0, 4096, m, 1), 1);
	uint64_t off = m[0].pool_off, o[8], a[8], b[8], got[8];
	for (int i = 0; i < 8; i++)
		o[i] = 0x1111111111111111ULL * (uint64_t)(i + 1);
	CHECK_EQ(poise_dev_write(fs->dev, off, o, sizeof(o)), (ssize_t)sizeof(o));
	memcpy(a, o, sizeof(o));
	a[3] = 0xaaaaULL;
	memcpy(b, o, sizeof(o));
	b[5] = 0xbbbbULL; /* and b[3] back to o[3] */
	struct tx *tx = tx_begin(fs);
	CHECK(tx);
	CHECK_EQ(tx_write(tx, off, a, sizeof(a)), 0);
	CHECK_EQ(tx_write_delta(tx, off, b, sizeof(b)), 0);
	CHECK_EQ(tx_commit(tx), 0);
	CHECK_EQ(poise_dev_read(fs->dev, off, got, sizeof(got)), (ssize_t)sizeof(got));
	CHECK(!memcmp(got, b, sizeof(b)));
	/* nothing to change: the commit has no record and succeeds */
	delta_commit(fs, off, b, sizeof(b), got);
	CHECK(!memcmp(got, b, sizeof(b)));
	/* an odd length: the whole range */
	delta_commit(fs, off + 1, "xyz", 3, got);
	CHECK(!memcmp((char *)got + 1, "xyz", 3));
	CHECK(!memcmp((char *)got + 4, (char *)b + 4, sizeof(b) - 4));
	poise_pool_close(&p);
}

int main(void)
{
	RUN(t_read_stops_at_each_sector);
	RUN(t_other_files_and_holes);
	RUN(t_writes_clear_at_sector_granularity);
	RUN(t_freeing_clears);
	RUN(t_allocator_clears_before_use);
	RUN(t_noclear_remaps_and_quarantines);
	RUN(t_scrub_names_owners);
	RUN(t_direct_map);
	RUN(t_extent_replica);
	RUN(t_log_replica);
	RUN(t_block_path);
	RUN(t_inode_replica);
	RUN(t_dir_replica);
	RUN(t_inode_sector_neighbours);
	RUN(t_inode_delta_heals_a_torn_copy);
	RUN(t_tx_delta_sees_earlier_records);
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
