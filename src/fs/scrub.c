/*
 * scrub.c - read every block of the pool (used and free) through the
 * machine-check-safe copy, merge what it finds with the known-bad table
 * (a fault the table did not list is added to it by the device layer), and
 * report each bad range with its owner:
 *   file        a file's or symlink's data: path, file offset, length;
 *   metadata    superblock (and replica), log lane, inode-table sectors
 *               (either copy), directory block, extent block (either
 *               copy); each is rewritten from its other copy (a write
 *               clears the poison), log lanes are cleared (empty after
 *               mount);
 *   quarantined blocks inode 2 already holds;
 *   free        nobody's bytes (the allocator clears them before reuse).
 * Offline it owns the pool; on a mounted pool (shared by the FUSE daemon)
 * it reads under each inode's lock and repairs nothing (report only).
 */
#include "poise-admin.h"
#include "fs/api.h"
#include "common/ebr.h"
#include "fs/fs.h"
#include "poise.h"
#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


/* Who owns a data block: an inode, and its file block (or a kind). */
struct owner {
	uint64_t ino;
	uint64_t lblk;
	uint8_t kind; /* 0 none, 1 data, 2 extent block, 3 attribute block */
	uint64_t twin; /* replicated metadata: the other copy's pool block */
};

struct names {
	uint64_t *parent; /* per inode: the directory naming it (first name) */
	char **name;
};

static void path_of(struct names *nm, uint64_t ino, char *out, size_t len)
{
	char tmp[1024] = "";
	size_t tl = 0;
	int depth = 0;
	if (ino == POISE_ROOT_INO) {
		snprintf(out, len, "/");
		return;
	}
	while (ino != POISE_ROOT_INO && nm->name[ino] && depth++ < 256) {
		size_t nl = strlen(nm->name[ino]);
		if (tl + nl + 2 > sizeof(tmp))
			break; /* too deep to print: keep the tail */
		memmove(tmp + nl + 1, tmp, tl + 1);
		tmp[0] = '/';
		memcpy(tmp + 1, nm->name[ino], nl);
		tl += nl + 1;
		ino = nm->parent[ino];
	}
	snprintf(out, len, "%s", ino == POISE_ROOT_INO ? tmp : "(unnamed)");
}

static struct poise_scrub_range *add(struct poise_scrub_report *rep)
{
	if (rep->n == rep->cap) {
		size_t cap = rep->cap ? rep->cap * 2 : 16;
		struct poise_scrub_range *r = realloc(rep->r, cap * sizeof(*r));
		if (!r)
			return NULL;
		rep->r = r;
		rep->cap = cap;
	}
	struct poise_scrub_range *x = &rep->r[rep->n++];
	memset(x, 0, sizeof(*x));
	return x;
}

void poise_scrub_free(struct poise_scrub_report *rep)
{
	free(rep->r);
	memset(rep, 0, sizeof(*rep));
}

/* Rewrite block blk from its twin (a replicated pair holds the same bytes
 * after every committed transaction); the write clears blk's poison. */
static int heal_from_twin(struct poise_fs *fs, uint64_t blk, uint64_t twin)
{
	uint8_t *b = malloc(POISE_BLOCK);
	int ok = b && twin && poise_dev_read(fs->dev, twin * POISE_BLOCK, b, POISE_BLOCK) == POISE_BLOCK &&
		 poise_dev_write(fs->dev, blk * POISE_BLOCK, b, POISE_BLOCK) == POISE_BLOCK;
	free(b);
	return ok;
}

/* Fill x for the bad sectors [s, e) of block blk; repair (rewrite or
 * clear) what can be when `fix`. */
static void classify(struct poise_fs *fs, const struct owner *own, struct names *nm,
		     const uint16_t *types, struct poise_scrub_range *x, uint64_t blk, uint64_t s,
		     uint64_t e, int fix)
{
	struct poise_dev *dev = fs->dev;
	uint64_t spb = POISE_BLOCK / POISE_SECTOR;
	x->sector = s;
	x->count = e - s;
	if (blk == 0 || blk == fs->sb.s_replica_blk) {
		snprintf(x->owner, sizeof(x->owner), "metadata");
		snprintf(x->what, sizeof(x->what), blk ? "superblock replica" : "superblock");
		/* rewrite the damaged copy from the other (the write clears) */
		const struct poise_super *sb = &fs->sb;
		if (!fix)
			x->repaired = 1; /* mount rewrote it from the other copy */
		else if (s * POISE_SECTOR < blk * POISE_BLOCK + sizeof(*sb) &&
		    poise_dev_write(dev, blk * POISE_BLOCK, sb, sizeof(*sb)) == sizeof(*sb))
			x->repaired = poise_dev_clear(dev, s * POISE_SECTOR, (e - s) * POISE_SECTOR) == 0;
		else if (s * POISE_SECTOR >= blk * POISE_BLOCK + sizeof(*sb))
			x->repaired = poise_dev_clear(dev, s * POISE_SECTOR, (e - s) * POISE_SECTOR) == 0;
	} else if (blk < fs->sb.s_itable_blk) {
		snprintf(x->owner, sizeof(x->owner), "metadata");
		uint64_t lane = (blk - fs->sb.s_log_blk) / fs->sb.s_lane_blocks;
		snprintf(x->what, sizeof(x->what), "log lane %llu%s",
			 (unsigned long long)(lane % fs->sb.s_nlanes), lane >= fs->sb.s_nlanes ? " (replica)" : "");
		/* lanes are empty after mount: clearing loses nothing */
		x->repaired = !fix || poise_dev_clear(dev, s * POISE_SECTOR, (e - s) * POISE_SECTOR) == 0;
	} else if (blk < fs->data_blk ||
		   (blk >= fs->sb.s_itable_replica_blk && blk < fs->sb.s_replica_blk)) {
		int rep = blk >= fs->sb.s_itable_replica_blk;
		uint64_t base = (rep ? fs->sb.s_itable_replica_blk : fs->sb.s_itable_blk) * POISE_BLOCK;
		uint64_t other = (rep ? fs->sb.s_itable_blk : fs->sb.s_itable_replica_blk) * POISE_BLOCK;
		uint64_t first = (s * POISE_SECTOR - base) / POISE_INODE_SIZE + 1;
		uint64_t last = ((e * POISE_SECTOR - base) - 1) / POISE_INODE_SIZE + 1;
		snprintf(x->owner, sizeof(x->owner), "metadata");
		snprintf(x->what, sizeof(x->what), "%s %llu-%llu", rep ? "inode replicas" : "inodes",
			 (unsigned long long)first, (unsigned long long)last);
		/* rewrite these sectors from the other copy (the write clears) */
		uint8_t sec[POISE_SECTOR];
		x->repaired = !fix;
		for (uint64_t q = s; fix && q < e; q++) {
			uint64_t o = q * POISE_SECTOR - base;
			if (poise_dev_read(dev, other + o, sec, sizeof(sec)) != sizeof(sec) ||
			    poise_dev_write(dev, q * POISE_SECTOR, sec, sizeof(sec)) != sizeof(sec))
				break;
			x->repaired = q + 1 == e;
		}
	} else if (own[blk].kind == 0) {
		snprintf(x->owner, sizeof(x->owner), "free");
	} else {
		uint64_t ino = own[blk].ino;
		x->ino = ino;
		path_of(nm, ino, x->path, sizeof(x->path));
		if (ino == POISE_QUARANTINE_INO) {
			snprintf(x->owner, sizeof(x->owner), "quarantined");
			x->path[0] = 0;
		} else if (own[blk].kind == 2) {
			snprintf(x->owner, sizeof(x->owner), "metadata");
			snprintf(x->what, sizeof(x->what), "extent block %llu%s",
				 (unsigned long long)own[blk].lblk / 2, own[blk].lblk % 2 ? " (replica)" : "");
			x->repaired = !fix || heal_from_twin(fs, blk, own[blk].twin);
		} else if (own[blk].kind == 3) {
			snprintf(x->owner, sizeof(x->owner), "metadata");
			snprintf(x->what, sizeof(x->what), "attribute block%s", own[blk].lblk ? " (replica)" : "");
			x->repaired = !fix || heal_from_twin(fs, blk, own[blk].twin);
		} else if (S_ISDIR(types[ino])) {
			snprintf(x->owner, sizeof(x->owner), "metadata");
			snprintf(x->what, sizeof(x->what), "directory block %llu%s",
				 (unsigned long long)own[blk].lblk / 2, own[blk].lblk % 2 ? " (replica)" : "");
			x->repaired = !fix || heal_from_twin(fs, blk, own[blk].twin);
		} else {
			snprintf(x->owner, sizeof(x->owner), "file");
			snprintf(x->what, sizeof(x->what), S_ISLNK(types[ino]) ? "symlink" : "file");
			x->file_offset = own[blk].lblk * POISE_BLOCK + (s % spb) * POISE_SECTOR;
			x->length = (e - s) * POISE_SECTOR;
		}
	}
}

/* The scan of an open pool; premount: the table before its mount (freed
 * here); live: a pool in service elsewhere in this process (report only). */
static int scrub_pool(struct poise_pool *pool, int live, struct poise_bb_range *premount, long npre,
		      struct poise_scrub_report *rep)
{
	int ret = 0;
	struct poise_fs *fs = poise_pool_fs(pool);
	struct poise_dev *dev = fs->dev;
	/* a mounted pool (the FUSE daemon's control channel): report only;
	 * its repairs happen as the file system reads the objects, or at the
	 * next mount, so no rewrite here races a transaction */
	uint64_t N = fs->sb.s_ninodes, spb = POISE_BLOCK / POISE_SECTOR;
	uint64_t known = 0; /* listed before the mount */
	for (long i = 0; i < npre; i++)
		known += premount[i].count;

	/* 1. read everything */
	uint8_t *buf = malloc(POISE_BLOCK);
	for (uint64_t b = 0; buf && b < fs->nblocks; b++) {
		(void)poise_dev_read(dev, b * POISE_BLOCK, buf, POISE_BLOCK);
		rep->blocks_scanned++;
	}
	free(buf);

	/* 2. owners of data blocks, and names */
	struct owner *own = calloc(fs->nblocks, sizeof(*own));
	struct names nm = {calloc(N + 1, 8), calloc(N + 1, sizeof(char *))};
	uint16_t *types = calloc(N + 1, sizeof(uint16_t));
	if (!own || !nm.parent || !nm.name || !types) {
		ret = poise_err(ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t ino = 1; ino <= N; ino++) {
		struct inode *ip;
		if (iget(fs, ino, &ip) < 0)
			continue;
		types[ino] = ip->type;
		int dir = S_ISDIR(ip->type);
		pthread_rwlock_rdlock(&ip->lock);
		for (uint32_t i = 0; i < ip->next; i++)
			for (uint32_t k = 0; k < ip->ext[i].e_len; k++) {
				uint64_t lb = ip->ext[i].e_lblk + k, run;
				own[ip->ext[i].e_pblk + k] = (struct owner){ino, lb, 1, dir ? imap(ip, lb ^ 1, &run) : 0};
			}
		for (uint32_t c = 0; c < ip->nchain; c++)
			own[ip->chain[c]] = (struct owner){ino, c, 2, ip->chain[c ^ 1]};
		if (ip->d.i_xattr_blk && ip->d.i_xattr_blk < fs->nblocks && ip->d.i_xattr_rblk < fs->nblocks) {
			own[ip->d.i_xattr_blk] = (struct owner){ino, 0, 3, ip->d.i_xattr_rblk};
			own[ip->d.i_xattr_rblk] = (struct owner){ino, 1, 3, ip->d.i_xattr_blk};
		}
		if (S_ISDIR(ip->type) && ip->dir) {
			struct poise_dirent_snap *e;
			size_t n;
			if (dir_snapshot(ip, &e, &n) == 0) {
				for (size_t j = 0; j < n; j++)
					if (e[j].ino <= N && !nm.name[e[j].ino]) {
						nm.name[e[j].ino] = strdup(e[j].name);
						nm.parent[e[j].ino] = ino;
					}
				free(e);
			}
		}
		pthread_rwlock_unlock(&ip->lock);
	}

	/* 3. every bad range, block by block, with its owner; first those the
	 * mount already repaired (bad before it, good now) */
	uint64_t mount_repaired = 0;
	/* sectors mount already repaired: bad before, good now */
	for (long i = 0; i < npre; i++)
		for (uint64_t q = premount[i].sector; q < premount[i].sector + premount[i].count;) {
			uint64_t blk = q / spb, e = (blk + 1) * spb;
			if (e > premount[i].sector + premount[i].count)
				e = premount[i].sector + premount[i].count;
			if (!bbt_any(&dev->bb, q, e)) {
				struct poise_scrub_range *x = add(rep);
				if (x) {
					classify(fs, own, &nm, types, x, blk, q, e, 0);
					x->sector = q;
					x->count = e - q;
					rep->sectors_bad += e - q;
					mount_repaired += e - q;
				}
			}
			q = e;
		}

	struct poise_bb_range *bad;
	long nbad = poise_dev_badblocks(dev, &bad);
	uint64_t now_bad = 0;
	for (long i = 0; i < nbad; i++) {
		rep->sectors_bad += bad[i].count;
		now_bad += bad[i].count;
		for (uint64_t s = bad[i].sector; s < bad[i].sector + bad[i].count;) {
			uint64_t blk = s / spb, e = (blk + 1) * spb;
			if (e > bad[i].sector + bad[i].count)
				e = bad[i].sector + bad[i].count;
			struct poise_scrub_range *x = add(rep);
			if (!x) {
				ret = poise_err(ENOMEM, "out of memory");
				free(bad);
				goto out;
			}
			classify(fs, own, &nm, types, x, blk, s, e, !live);
			s = e;
		}
	}
	free(nbad > 0 ? bad : NULL);
	/* the scan only adds: what is bad now and was not listed before */
	rep->found_new = now_bad + mount_repaired > known ? now_bad + mount_repaired - known : 0;
	ret = 0;
out:
	free(npre > 0 ? premount : NULL);
	for (uint64_t i = 0; nm.name && i <= N; i++)
		free(nm.name[i]);
	free(nm.name);
	free(nm.parent);
	free(own);
	free(types);
	return ret;
}

int poise_scrub(const char *path, struct poise_scrub_report *rep)
{
	EBR_SECTION();
	struct poise_pool *pool;
	struct poise_dev *pre;
	struct poise_bb_range *premount = NULL;
	long npre = 0;
	memset(rep, 0, sizeof(*rep));
	/* what was bad before mount (mount repairs the superblock and the log) */
	if (poise_dev_open(path, &pre) == 0) {
		npre = poise_dev_badblocks(pre, &premount);
		poise_dev_close(&pre);
	}
	int ret = poise_pool_open(path, 0, &pool);
	if (ret < 0) {
		free(npre > 0 ? premount : NULL);
		return ret;
	}
	ret = scrub_pool(pool, poise_pool_shared(pool), premount, npre, rep);
	poise_pool_close(&pool);
	return ret;
}

int poise_scrub_live(struct poise_pool *pool, struct poise_scrub_report *rep)
{
	EBR_SECTION();
	struct poise_bb_range *now = NULL;
	memset(rep, 0, sizeof(*rep));
	long n = poise_dev_badblocks(poise_pool_fs(pool)->dev, &now);
	return scrub_pool(pool, 1, now, n, rep);
}

int poise_metadata_sector(struct poise_pool *pool, const char *kind, uint64_t *sector)
{
	EBR_SECTION();
	struct poise_fs *fs = poise_pool_fs(pool);
	const uint64_t spb = POISE_BLOCK / POISE_SECTOR;
	struct inode *ip;
	uint64_t run;
	if (!strcmp(kind, "superblock")) {
		*sector = 0;
	} else if (!strcmp(kind, "inodes")) {
		*sector = ino_off(fs, POISE_ROOT_INO) / POISE_SECTOR;
	} else if (!strcmp(kind, "log")) {
		*sector = fs->sb.s_log_blk * spb;
	} else if (!strcmp(kind, "dir")) {
		if (iget(fs, POISE_ROOT_INO, &ip) < 0)
			return -EIO;
		uint64_t b = imap(ip, 0, &run);
		if (!b)
			return poise_err(ENOENT, "the root directory has no block yet (it is empty)");
		*sector = b * spb;
	} else if (!strcmp(kind, "extents")) {
		for (uint64_t ino = 1; ino <= fs->sb.s_ninodes; ino++)
			if (iget(fs, ino, &ip) == 0 && ip->nchain) {
				*sector = ip->chain[0] * spb;
				return 0;
			}
		return poise_err(ENOENT, "no file has more than %d extents, so there is no extent block",
				 POISE_INLINE_EXTENTS);
	} else {
		return poise_err(EINVAL, "unknown metadata kind '%s' (superblock, inodes, dir, extents, log)", kind);
	}
	return 0;
}
