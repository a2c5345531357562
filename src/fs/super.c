/*
 * super.c - making, mounting and unmounting a file system.
 *
 * mkfs zeroes the log and both inode tables, writes the root directory and
 * the quarantine inode (2) into both, the superblock replica, and last the
 * primary superblock: a pool whose mkfs
 * died half-way has no valid primary superblock (its replica is only
 * consulted when the primary is unreadable or corrupt *and* the replica
 * describes this pool).
 *
 * mount: validate the superblock (magic, checksum, version, geometry) and
 * refuse with -EUCLEAN and a message otherwise, never writing (the one
 * exception: a damaged primary superblock is rewritten from a valid
 * replica); replay the
 * log; scan the inode table to derive the free inodes and the free blocks
 * (every block an extent map or extent chain holds is in use; an inode
 * whose primary copy is unreadable or corrupt is read from the replica and
 * its primary rewritten); rewrite known-bad sectors of the replica from the
 * primary; reclaim orphans (inodes with no link left, from unlinks of open
 * files before a crash).  The scan reads 256 bytes per inode (the primary
 * table) and the chains of fragmented files only; a 16 GiB pool has
 * 1,048,576 inodes (256 MiB).
 */
#include "fs/fs.h"
#include "dev/persist.h"
#include "common/crc32c.h"
#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static void super_seal(struct poise_super *s)
{
	s->s_crc = poise_crc32c(0, s, offsetof(struct poise_super, s_crc));
}

/* Is s a sane superblock for a pool of dev_size bytes?  0 or -EUCLEAN with
 * a message saying what is wrong. */
static int super_check(const struct poise_super *s, uint64_t dev_size, const char *where)
{
	if (s->s_magic != POISE_MAGIC)
		return poise_err(EUCLEAN, "not a poise file system (no poise magic in the %s superblock)", where);
	if (poise_crc32c(0, s, offsetof(struct poise_super, s_crc)) != s->s_crc)
		return poise_err(EUCLEAN, "the %s superblock fails its checksum", where);
	if (s->s_major != POISE_FMT_MAJOR || s->s_minor > POISE_FMT_MINOR)
		return poise_err(EUCLEAN, "format version %u.%u is not supported (this poise reads %u.0 to %u.%u)",
				 s->s_major, s->s_minor, POISE_FMT_MAJOR, POISE_FMT_MAJOR, POISE_FMT_MINOR);
	if (s->s_minor < POISE_FEAT_MINOR(s->s_features) || (s->s_features & ~POISE_FEATURES_KNOWN))
		return poise_err(EUCLEAN, "the %s superblock names features %#llx that format %u.%u does not have",
				 where, (unsigned long long)s->s_features, s->s_major, s->s_minor);
	/* every comparison below is of values already bounded by the pool, so
	 * nothing wraps: a field is checked against the pool before any sum
	 * or product uses it */
	uint64_t nb = s->s_nblocks, ipb = POISE_BLOCK / POISE_INODE_SIZE;
	int ok = s->s_block_size == POISE_BLOCK && nb >= 2 && nb <= dev_size / POISE_BLOCK &&
		 s->s_pool_size == nb * POISE_BLOCK && s->s_log_blk == 1 && s->s_nlanes != 0 &&
		 s->s_nlanes <= POISE_NLANES && s->s_lane_blocks == POISE_LANE_BLOCKS;
	uint64_t lanes = ok ? (uint64_t)s->s_nlanes * s->s_lane_blocks : 0;
	ok = ok && s->s_log_replica_blk == s->s_log_blk + lanes && s->s_itable_blk == s->s_log_replica_blk + lanes &&
	     s->s_itable_blk < nb && s->s_itable_blocks < nb && s->s_itable_blocks <= nb - s->s_itable_blk;
	ok = ok && s->s_ninodes != 0 && s->s_ninodes <= POISE_MAX_INODES && s->s_ninodes <= s->s_itable_blocks * ipb &&
	     s->s_data_blk == s->s_itable_blk + s->s_itable_blocks && s->s_replica_blk == nb - 1 &&
	     s->s_itable_blocks < nb - 1 && s->s_itable_replica_blk == nb - 1 - s->s_itable_blocks &&
	     s->s_data_blk < s->s_itable_replica_blk && s->s_root_ino == POISE_ROOT_INO &&
	     s->s_quarantine_ino == POISE_QUARANTINE_INO;
	if (!ok)
		return poise_err(EUCLEAN, "the %s superblock describes an impossible geometry", where);
	return 0;
}

int fs_mkfs(struct poise_dev *dev, uint64_t ninodes)
{
	uint64_t nblocks = dev->size / POISE_BLOCK;
	uint32_t nlanes = nblocks / 256 >= POISE_NLANES ? POISE_NLANES
			  : nblocks / 256 < 4 ? 4 : (uint32_t)(nblocks / 256);
	uint64_t ipb = POISE_BLOCK / POISE_INODE_SIZE;
	if (!ninodes)
		ninodes = dev->size / POISE_INODE_RATIO;
	if (ninodes < 64)
		ninodes = 64;
	if (ninodes > nblocks / 2 * ipb || ninodes > POISE_MAX_INODES)
		return poise_err(ENOSPC, "%s: %llu inodes do not fit a pool of %llu bytes (at most %llu)", dev->path,
				 (unsigned long long)ninodes, (unsigned long long)dev->size,
				 (unsigned long long)(nblocks / 2 * ipb < POISE_MAX_INODES ? nblocks / 2 * ipb
											  : POISE_MAX_INODES));
	ninodes = (ninodes + ipb - 1) / ipb * ipb;
	struct poise_super s;
	memset(&s, 0, sizeof(s));
	s.s_magic = POISE_MAGIC;
	s.s_major = POISE_FMT_MAJOR;
	s.s_minor = POISE_FMT_MINOR;
	s.s_features = POISE_FEATURES_KNOWN;
	s.s_block_size = POISE_BLOCK;
	s.s_nblocks = nblocks;
	s.s_pool_size = nblocks * POISE_BLOCK;
	s.s_log_blk = 1;
	s.s_nlanes = nlanes;
	s.s_lane_blocks = POISE_LANE_BLOCKS;
	s.s_log_replica_blk = 1 + (uint64_t)nlanes * POISE_LANE_BLOCKS;
	s.s_itable_blk = 1 + 2 * (uint64_t)nlanes * POISE_LANE_BLOCKS;
	s.s_itable_blocks = ninodes / ipb;
	s.s_ninodes = ninodes;
	s.s_data_blk = s.s_itable_blk + s.s_itable_blocks;
	s.s_replica_blk = nblocks - 1;
	s.s_itable_replica_blk = nblocks - 1 - s.s_itable_blocks;
	s.s_root_ino = POISE_ROOT_INO;
	s.s_quarantine_ino = POISE_QUARANTINE_INO;
	s.s_mkfs_time_ns = now_ns();
	if (getrandom(s.s_uuid, sizeof(s.s_uuid), 0) != sizeof(s.s_uuid))
		for (int i = 0; i < 16; i++) /* no entropy source: the time, spread */
			s.s_uuid[i] = (uint8_t)((uint64_t)s.s_mkfs_time_ns >> ((i * 5) % 60));
	if (s.s_replica_blk < 1 + s.s_itable_blocks || s.s_data_blk + 16 > s.s_itable_replica_blk)
		return poise_err(ENOSPC, "%s: a pool of %llu bytes is too small for a file system "
				 "(%llu inodes need at least %llu bytes)", dev->path,
				 (unsigned long long)dev->size, (unsigned long long)ninodes,
				 (unsigned long long)((s.s_data_blk + 17) * POISE_BLOCK));
	super_seal(&s);
	if (super_check(&s, dev->size, "new") < 0) /* never write what mount refuses */
		return poise_err(EINVAL, "%s: no valid geometry for %llu bytes and %llu inodes", dev->path,
				 (unsigned long long)dev->size, (unsigned long long)ninodes);
	/* invalidate the old primary first: a crash from here on leaves no
	 * valid file system rather than a mix */
	uint8_t *zero = calloc(1, 1 << 20);
	if (!zero)
		return poise_err(ENOMEM, "out of memory");
	ssize_t k = poise_dev_write(dev, 0, zero, POISE_BLOCK);
	for (uint64_t b = 1; k >= 0 && b < s.s_data_blk; b += 256) {
		uint64_t n = s.s_data_blk - b < 256 ? s.s_data_blk - b : 256;
		k = poise_dev_store(dev, b * POISE_BLOCK, zero, n * POISE_BLOCK);
	}
	for (uint64_t b = s.s_itable_replica_blk; k >= 0 && b < s.s_replica_blk; b += 256) {
		uint64_t n = s.s_replica_blk - b < 256 ? s.s_replica_blk - b : 256;
		k = poise_dev_store(dev, b * POISE_BLOCK, zero, n * POISE_BLOCK);
	}
	free(zero);
	if (k < 0)
		return (int)k;
	struct poise_dinode root;
	memset(&root, 0, sizeof(root));
	root.i_mode = S_IFDIR | 0755;
	root.i_nlink = 2;
	root.i_uid = getuid();
	root.i_gid = getgid();
	root.i_parent = POISE_ROOT_INO;
	root.i_atime_ns = root.i_mtime_ns = root.i_ctime_ns = s.s_mkfs_time_ns;
	root.i_generation = (uint64_t)s.s_mkfs_time_ns;
	dinode_seal(&root);
	struct poise_dinode q;
	memset(&q, 0, sizeof(q));
	q.i_mode = S_IFREG; /* no permission: nobody opens it, nobody names it */
	q.i_nlink = 1;
	q.i_atime_ns = q.i_mtime_ns = q.i_ctime_ns = s.s_mkfs_time_ns;
	dinode_seal(&q);
	uint64_t roff = s.s_itable_blk * POISE_BLOCK, rroff = s.s_itable_replica_blk * POISE_BLOCK;
	if ((k = poise_dev_store(dev, roff, &root, sizeof(root))) < 0 ||
	    (k = poise_dev_store(dev, roff + POISE_INODE_SIZE, &q, sizeof(q))) < 0 ||
	    (k = poise_dev_store(dev, rroff, &root, sizeof(root))) < 0 ||
	    (k = poise_dev_store(dev, rroff + POISE_INODE_SIZE, &q, sizeof(q))) < 0 ||
	    (k = poise_dev_store(dev, s.s_replica_blk * POISE_BLOCK, &s, sizeof(s))) < 0)
		return (int)k;
	poise_fence();
	if ((k = poise_dev_write(dev, 0, &s, sizeof(s))) < 0) /* the file system exists */
		return (int)k;
	return 0;
}

static int read_super(struct poise_dev *dev, struct poise_super *s)
{
	if (dev->size < 2 * POISE_BLOCK)
		return poise_err(EUCLEAN, "%s: not a poise file system (the pool is too small)", dev->path);
	int pr = -EIO, rr;
	if (poise_dev_read(dev, 0, s, sizeof(*s)) == sizeof(*s))
		pr = super_check(s, dev->size, "primary");
	else
		poise_err(EIO, "the primary superblock is unreadable (media error)");
	if (pr == 0)
		return 0;
	char why[300];
	snprintf(why, sizeof(why), "%s", poise_errmsg());
	struct poise_super r;
	uint64_t roff = (dev->size / POISE_BLOCK - 1) * POISE_BLOCK;
	if (poise_dev_read(dev, roff, &r, sizeof(r)) == sizeof(r) &&
	    (rr = super_check(&r, dev->size, "replica")) == 0 && r.s_replica_blk * POISE_BLOCK == roff) {
		/* a real file system whose primary copy is damaged: rewrite it
		 * from the replica (this also clears poison under it) */
		if (s->s_magic == POISE_MAGIC || pr == -EIO) {
			*s = r;
			if (poise_dev_write(dev, 0, s, sizeof(*s)) < 0)
				return poise_err(EIO, "%s: %s, and rewriting it from the replica failed",
						 dev->path, why);
			return 0;
		}
	}
	return poise_err(pr == -EIO ? EIO : EUCLEAN, "%s: %s", dev->path, why);
}

/* After log replay: a replayed transaction may have upgraded the format
 * (super_add_features); nothing else of the superblock may change, so a
 * log record that rewrote its geometry is corruption. */
static int reread_super(struct poise_fs *fs)
{
	struct poise_super s, a, b;
	int ret = read_super(fs->dev, &s);
	if (ret < 0)
		return ret;
	a = s;
	b = fs->sb;
	a.s_minor = b.s_minor = 0;
	a.s_features = b.s_features = 0;
	a.s_crc = b.s_crc = 0;
	if (memcmp(&a, &b, sizeof(a)))
		return poise_err(EUCLEAN, "%s: the log rewrote the superblock's geometry (corrupt log)", fs->dev->path);
	fs->sb = s;
	return 0;
}

/* (fs.h) */
int super_add_features(struct tx *tx, struct poise_fs *fs, uint64_t feat, struct poise_super *out)
{
	*out = fs->sb;
	out->s_minor = __atomic_load_n(&fs->sb.s_minor, __ATOMIC_ACQUIRE);
	out->s_features = __atomic_load_n(&fs->sb.s_features, __ATOMIC_ACQUIRE);
	if ((out->s_features & feat) == feat)
		return 0;
	out->s_features |= feat;
	if (out->s_minor < POISE_FEAT_MINOR(out->s_features))
		out->s_minor = POISE_FEAT_MINOR(out->s_features);
	super_seal(out);
	int ret = tx_write(tx, 0, out, sizeof(*out));
	if (ret == 0)
		ret = tx_write(tx, fs->sb.s_replica_blk * POISE_BLOCK, out, sizeof(*out));
	return ret < 0 ? ret : 1;
}

/* (fs.h) */
void super_publish(struct poise_fs *fs, const struct poise_super *s)
{
	__atomic_store_n(&fs->sb.s_crc, s->s_crc, __ATOMIC_RELAXED);
	__atomic_store_n(&fs->sb.s_minor, s->s_minor, __ATOMIC_RELEASE);
	__atomic_store_n(&fs->sb.s_features, s->s_features, __ATOMIC_RELEASE);
}

/* Mark the blocks inode d holds (mount scan).  Returns -EUCLEAN for a chain
 * that does not check out. */
static int scan_blocks(struct poise_fs *fs, uint64_t ino, const struct poise_dinode *d)
{
	uint32_t n = d->i_nextents, at = 0;
	uint64_t lend = 0;
	int ret;
	if (n > fs->data_end - fs->data_blk) /* each extent holds a block at least */
		return -EUCLEAN;
	if (!extents_ok(fs, d->i_ext, n < POISE_INLINE_EXTENTS ? n : POISE_INLINE_EXTENTS, &lend))
		return -EUCLEAN;
	for (; at < n && at < POISE_INLINE_EXTENTS; at++)
		if ((ret = alloc_claim(fs, d->i_ext[at].e_pblk, d->i_ext[at].e_len)) < 0)
			return ret;
	if (d->i_xattr_blk) {
		if (d->i_xattr_blk < fs->data_blk || d->i_xattr_blk >= fs->data_end || d->i_xattr_rblk < fs->data_blk ||
		    d->i_xattr_rblk >= fs->data_end)
			return -EUCLEAN;
		if ((ret = alloc_claim(fs, d->i_xattr_blk, 1)) < 0 || (ret = alloc_claim(fs, d->i_xattr_rblk, 1)) < 0)
			return ret;
	}
	uint64_t blk = d->i_ext_blk, rblk = d->i_ext_rblk;
	uint8_t buf[POISE_BLOCK];
	while (at < n) {
		uint32_t want = n - at < POISE_EXTS_PER_BLOCK ? n - at : (uint32_t)POISE_EXTS_PER_BLOCK;
		if ((ret = extblk_read(fs, ino, blk, rblk, want, buf)) < 0)
			return ret;
		const struct poise_extblk *x = (const struct poise_extblk *)buf;
		if (!extents_ok(fs, x->x_ext, want, &lend)) /* also ends a chain that loops */
			return -EUCLEAN;
		if ((ret = alloc_claim(fs, blk, 1)) < 0 || (ret = alloc_claim(fs, rblk, 1)) < 0)
			return ret;
		for (uint32_t i = 0; i < want; i++, at++)
			if ((ret = alloc_claim(fs, x->x_ext[i].e_pblk, x->x_ext[i].e_len)) < 0)
				return ret;
		blk = x->x_next;
		rblk = x->x_rnext;
	}
	return 0;
}

/* Inode i of an inode-table block reads as all zeros (never used) while
 * the other inode of its 512-byte sector does not: a clearing write of that
 * other inode zero-filled the sector (its old bytes were poison), so i's
 * primary is lost, not empty, and the replica must say. */
static int zeroed_beside(const uint8_t *buf, uint64_t i)
{
	static const uint8_t zero[POISE_INODE_SIZE];
	uint64_t per = POISE_SECTOR / POISE_INODE_SIZE, first = i - i % per;
	for (uint64_t j = first; j < first + per; j++)
		if (j != i && memcmp(buf + j * POISE_INODE_SIZE, zero, POISE_INODE_SIZE))
			return 1;
	return 0;
}

static int scan_inodes(struct poise_fs *fs, uint64_t **orphans, size_t *norphans)
{
	uint8_t buf[POISE_BLOCK];
	uint64_t ipb = POISE_BLOCK / POISE_INODE_SIZE;
	size_t cap = 0;
	*orphans = NULL;
	*norphans = 0;
	for (uint64_t b = 0; b < fs->sb.s_itable_blocks; b++) {
		uint64_t off = (fs->sb.s_itable_blk + b) * POISE_BLOCK;
		ssize_t k = poise_dev_read(fs->dev, off, buf, POISE_BLOCK);
		for (uint64_t i = 0; i < ipb; i++) {
			uint64_t ino = b * ipb + i + 1;
			if (ino > fs->sb.s_ninodes)
				break;
			struct poise_dinode *d = (struct poise_dinode *)(buf + i * POISE_INODE_SIZE), rd;
			int primary_ok = k >= (ssize_t)((i + 1) * POISE_INODE_SIZE) &&
					 (dinode_check(d) == 0 || (d->i_mode == 0 && d->i_crc == 0 &&
								   !zeroed_beside(buf, i)));
			if (!primary_ok) { /* the replica, which repairs the primary */
				if (dinode_read(fs, ino, &rd) < 0) {
					ino_mark_used(fs, ino); /* both lost: never reuse it; fsck reports it */
					continue;
				}
				d = &rd;
			}
			if (d->i_mode == 0 && d->i_crc == 0)
				continue; /* never used */
			if (d->i_mode == 0)
				continue;
			ino_mark_used(fs, ino);
			int sr = scan_blocks(fs, ino, d);
			if (sr == -E2BIG)
				return poise_err(EUCLEAN, "the inodes claim more than twice the pool's data blocks "
						 "(extents cross-linked over and over): not a sound file system");
			if (sr == -EEXIST) /* cross-linked: iget refuses it (its other checks pass) */
				fs->ino_bad[ino / 64] |= 1ULL << (ino % 64);
			if (sr < 0)
				continue; /* fsck reports it */
			if (d->i_nlink == 0) {
				if (*norphans == cap) {
					cap = cap ? cap * 2 : 16;
					uint64_t *o = realloc(*orphans, cap * 8);
					if (!o)
						return poise_err(ENOMEM, "out of memory");
					*orphans = o;
				}
				(*orphans)[(*norphans)++] = ino;
			}
		}
	}
	return 0;
}

/* Known-bad sectors of the inode-table replica (nobody reads it while the
 * primary is good, so nothing else would notice): rewrite them from the
 * primary; the write clears the poison. */
static void heal_replica(struct poise_fs *fs)
{
	struct poise_bb_range *bad;
	long n = poise_dev_badblocks(fs->dev, &bad);
	uint64_t lo = fs->sb.s_itable_replica_blk * (POISE_BLOCK / POISE_SECTOR);
	uint64_t hi = fs->sb.s_replica_blk * (POISE_BLOCK / POISE_SECTOR);
	uint64_t delta = (fs->sb.s_itable_replica_blk - fs->sb.s_itable_blk) * POISE_BLOCK;
	uint8_t sec[POISE_SECTOR];
	for (long i = 0; i < n; i++)
		for (uint64_t s = bad[i].sector; s < bad[i].sector + bad[i].count; s++)
			if (s >= lo && s < hi &&
			    poise_dev_read(fs->dev, s * POISE_SECTOR - delta, sec, sizeof(sec)) == sizeof(sec))
				(void)poise_dev_write(fs->dev, s * POISE_SECTOR, sec, sizeof(sec));
	free(n > 0 ? bad : NULL);
}

/* An orphan: no name left.  Free it and its blocks. */
static int reclaim(struct poise_fs *fs, uint64_t ino)
{
	struct inode *ip;
	int ret = iget(fs, ino, &ip);
	if (ret < 0)
		return ret;
	struct tx *tx = tx_begin(fs);
	if (!tx)
		return poise_err(ENOMEM, "out of memory");
	struct poise_dinode nd;
	memset(&nd, 0, sizeof(nd));
	nd.i_generation = ip->d.i_generation + 1;
	ret = istore(tx, ip, &nd);
	ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < ip->next; i++)
		free_blocks(fs, ip->ext[i].e_pblk, ip->ext[i].e_len);
	for (uint32_t c = 0; c < ip->nchain; c++)
		free_blocks(fs, ip->chain[c], 1);
	if (ip->d.i_xattr_blk) {
		free_blocks(fs, ip->d.i_xattr_blk, 1);
		free_blocks(fs, ip->d.i_xattr_rblk, 1);
	}
	iput_dead(fs, ip);
	free_ino(fs, ino);
	return 0;
}

int fs_mount(struct poise_dev *dev, struct poise_fs **out)
{
	struct poise_fs *fs = calloc(1, sizeof(*fs));
	int ret, replayed;
	*out = NULL;
	if (fs && !(fs->lanes = aligned_alloc(64, POISE_NLANES * sizeof(*fs->lanes))))
		free(fs), fs = NULL;
	if (!fs)
		return poise_err(ENOMEM, "out of memory");
	memset(fs->lanes, 0, POISE_NLANES * sizeof(*fs->lanes));
	fs->dev = dev;
	fs->base = dev->base;
	fs->uid = getuid();
	fs->gid = getgid();
	if ((ret = read_super(dev, &fs->sb)) < 0) {
		free(fs->lanes);
		free(fs);
		return ret;
	}
	fs->nblocks = fs->sb.s_nblocks;
	fs->data_blk = fs->sb.s_data_blk;
	fs->data_end = fs->sb.s_itable_replica_blk;
	for (int i = 0; i < POISE_NLANES; i++)
		pthread_mutex_init(&fs->lanes[i].lock, NULL);
	pthread_mutex_init(&fs->icache_lock, NULL);
	pthread_mutex_init(&fs->rename_lock, NULL);
	pthread_mutex_init(&fs->fd_lock, NULL);
	fs->itab = calloc(fs->sb.s_ninodes + 1, sizeof(*fs->itab));
	fs->files = calloc(POISE_MAX_FILES, sizeof(*fs->files));
	if (!fs->itab || !fs->files) {
		ret = poise_err(ENOMEM, "out of memory");
		goto fail;
	}
	if ((ret = alloc_init(fs)) < 0)
		goto fail;
	fs->scan_budget = 2 * (fs->data_end - fs->data_blk) + 64;
	if (!(fs->ino_bad = calloc(fs->sb.s_ninodes / 64 + 1, 8))) {
		ret = poise_err(ENOMEM, "out of memory");
		goto fail;
	}
	if ((ret = log_replay(fs, &replayed)) < 0)
		goto fail;
	if (replayed && (ret = reread_super(fs)) < 0)
		goto fail;
	uint64_t *orphans;
	size_t norphans;
	if ((ret = scan_inodes(fs, &orphans, &norphans)) < 0)
		goto fail;
	struct inode *root;
	if ((ret = iget(fs, POISE_ROOT_INO, &root)) < 0 || !S_ISDIR(root->d.i_mode)) {
		free(orphans);
		ret = poise_err(EUCLEAN, "%s: the root directory is missing or corrupt%s%s", dev->path,
				ret < 0 ? ": " : "", ret < 0 ? poise_errmsg() : "");
		goto fail;
	}
	heal_replica(fs);
	for (size_t i = 0; i < norphans; i++)
		(void)reclaim(fs, orphans[i]);
	free(orphans);
	*out = fs;
	return 0;
fail:
	fs_unmount(fs);
	return ret;
}

void fs_unmount(struct poise_fs *fs)
{
	if (!fs)
		return;
	if (fs->itab)
		for (uint64_t i = 1; i <= fs->sb.s_ninodes; i++)
			if (fs->itab[i] && fs->itab[i]->times_dirty)
				(void)file_sync_times(fs, fs->itab[i]);
	if (fs->dev && fs->dev->base)
		log_quiesce(fs);
	icache_fini(fs);
	alloc_fini(fs);
	free(fs->ino_bad);
	free(fs->files);
	free(fs->lanes);
	free(fs);
}
