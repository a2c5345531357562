/*
 * file.c - file data: read, write, truncate, fallocate on an inode.
 *
 * Reads take ip->lock shared; holes read zeros (never the media); a bad
 * sector ends the read short, or fails it with -EIO when it starts there.
 * Writes inside the file's size onto mapped blocks take the lock shared too,
 * so writers of disjoint ranges run in parallel (overwrites in place are not
 * atomic, as in every DAX file system).  Any other write takes it exclusive:
 * new blocks are allocated and filled first, then one transaction publishes
 * extents and size, so an append is all or nothing; a write that needs new
 * blocks gets them before it overwrites any byte in place, so a full pool
 * fails it with nothing changed.
 *
 * Invariant on bytes past EOF: they may be garbage (a shrinking truncate
 * does not zero them, so it stays atomic); whoever grows the size zeroes the
 * gap in the old last block before the new size is published.  Blocks
 * allocated but not written (fallocate, partial blocks of a write) are
 * zero-filled before they are published.
 *
 * mtime/ctime of in-place overwrites, and access times (file_touch_atime),
 * change in DRAM and reach the media at fsync, close, unmount or the next
 * metadata update (times_dirty); each is stored with an atomic store under
 * the shared lock and read with atomic loads.
 */
#include "fs/fs.h"
#include "poise.h"
#include "dev/persist.h"
#include "dev/block.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

static int media_error(struct inode *ip, uint64_t off, uint64_t pool_off)
{
	return poise_err(EIO, "inode %llu: Input/output error at file offset %llu (pool sector %llu)",
			 (unsigned long long)ip->ino, (unsigned long long)off,
			 (unsigned long long)(pool_off / POISE_SECTOR));
}

/* The piece of the file at pos that one extent (or hole) covers, at most
 * `left` bytes: returns its length, *pblk the pool block (0 for a hole).
 * Caller holds ip->lock. */
static size_t segment(const struct inode *ip, uint64_t pos, size_t left, uint64_t *pblk)
{
	uint64_t run, boff = pos & (POISE_BLOCK - 1);
	*pblk = imap(ip, pos >> POISE_BLOCK_SHIFT, &run);
	if (run >= (left + boff + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT)
		return left;
	return (size_t)(run * POISE_BLOCK - boff);
}

ssize_t file_read(struct poise_fs *fs, struct inode *ip, void *buf, size_t len, uint64_t off,
		  struct poise_block *bp)
{
	pthread_rwlock_rdlock(&ip->lock);
	uint64_t size = ip->d.i_size;
	if (off >= size || len == 0) {
		pthread_rwlock_unlock(&ip->lock);
		return 0;
	}
	if (len > size - off)
		len = (size_t)(size - off);
	size_t done = 0;
	ssize_t ret = 0;
	while (done < len) {
		uint64_t pos = off + done, pblk;
		size_t n = segment(ip, pos, len - done, &pblk);
		if (!pblk) {
			memset((char *)buf + done, 0, n);
			done += n;
			continue;
		}
		uint64_t poff = pblk * POISE_BLOCK + (pos & (POISE_BLOCK - 1));
		ssize_t k = bp ? poise_block_read(bp, poff, (char *)buf + done, n)
			       : poise_dev_read(fs->dev, poff, (char *)buf + done, n);
		if (k == (ssize_t)n) {
			done += n;
			continue;
		}
		if (k > 0)
			done += (size_t)k;
		ret = media_error(ip, off + done, poff + (k > 0 ? (uint64_t)k : 0));
		break;
	}
	pthread_rwlock_unlock(&ip->lock);
	return done ? (ssize_t)done : ret;
}

/* Is every block of [off, off+len) mapped?  Caller holds ip->lock. */
static int fully_mapped(const struct inode *ip, uint64_t off, uint64_t len)
{
	uint64_t b = off >> POISE_BLOCK_SHIFT, last = (off + len - 1) >> POISE_BLOCK_SHIFT, run;
	while (b <= last) {
		if (!imap(ip, b, &run))
			return 0;
		b += run;
	}
	return 1;
}

/* Store buf at file range [off, off+len), all of it mapped; no fence.
 * bp: through the kernel instead. */
static ssize_t store_mapped(struct poise_fs *fs, struct inode *ip, const void *buf, size_t len,
			    uint64_t off, struct poise_block *bp)
{
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done, pblk;
		size_t n = segment(ip, pos, len - done, &pblk);
		uint64_t po = pblk * POISE_BLOCK + (pos & (POISE_BLOCK - 1));
		ssize_t k = bp ? poise_block_write(bp, po, (const char *)buf + done, n)
			       : poise_dev_store(fs->dev, po, (const char *)buf + done, n);
		if (k < 0)
			return done ? (ssize_t)done : k;
		done += n;
	}
	return (ssize_t)done;
}

static void touch_times(struct inode *ip)
{
	int64_t t = now_ns();
	__atomic_store_n(&ip->d.i_mtime_ns, t, __ATOMIC_RELAXED);
	__atomic_store_n(&ip->d.i_ctime_ns, t, __ATOMIC_RELAXED);
	__atomic_store_n(&ip->times_dirty, 1, __ATOMIC_RELAXED);
}

/* Insert extent e (no overlap with the list) into a sorted list, merging
 * with neighbours contiguous in both file and pool blocks. */
static int ext_insert(struct poise_extent **list, uint32_t *n, uint32_t *cap, struct poise_extent e)
{
	struct poise_extent *l = *list;
	uint32_t i = 0;
	while (i < *n && l[i].e_lblk < e.e_lblk)
		i++;
	if (i > 0 && l[i - 1].e_lblk + l[i - 1].e_len == e.e_lblk &&
	    l[i - 1].e_pblk + l[i - 1].e_len == e.e_pblk && (uint64_t)l[i - 1].e_len + e.e_len < (1u << 31)) {
		l[i - 1].e_len += e.e_len;
		if (i < *n && l[i - 1].e_lblk + l[i - 1].e_len == l[i].e_lblk &&
		    l[i - 1].e_pblk + l[i - 1].e_len == l[i].e_pblk) {
			l[i - 1].e_len += l[i].e_len;
			memmove(&l[i], &l[i + 1], (*n - i - 1) * sizeof(*l));
			(*n)--;
		}
		return 0;
	}
	if (i < *n && e.e_lblk + e.e_len == l[i].e_lblk && e.e_pblk + e.e_len == l[i].e_pblk) {
		l[i].e_lblk = e.e_lblk;
		l[i].e_pblk = e.e_pblk;
		l[i].e_len += e.e_len;
		return 0;
	}
	if (*n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 8;
		struct poise_extent *nl = realloc(l, nc * sizeof(*l));
		if (!nl)
			return poise_err(ENOMEM, "out of memory");
		*list = l = nl;
		*cap = nc;
	}
	memmove(&l[i + 1], &l[i], (*n - i) * sizeof(*l));
	l[i] = e;
	(*n)++;
	return 0;
}

/* Remove file blocks [from, to) from a sorted list; the dropped pool runs are
 * appended to *fr (pairs blk, n). */
static int ext_cut(struct poise_extent **list, uint32_t *n, uint32_t *cap, uint64_t from,
		   uint64_t to, uint64_t **fr, uint32_t *nfr)
{
	for (uint32_t i = 0; i < *n; i++) {
		struct poise_extent *e = &(*list)[i];
		uint64_t s = e->e_lblk, t = e->e_lblk + e->e_len;
		uint64_t cs = s > from ? s : from, ct = t < to ? t : to;
		if (cs >= ct)
			continue;
		uint64_t *f = realloc(*fr, (*nfr + 2) * 2 * sizeof(uint64_t));
		if (!f)
			return poise_err(ENOMEM, "out of memory");
		*fr = f;
		f[2 * *nfr] = e->e_pblk + (cs - s);
		f[2 * *nfr + 1] = ct - cs;
		(*nfr)++;
		if (cs == s && ct == t) { /* whole */
			memmove(e, e + 1, (*n - i - 1) * sizeof(*e));
			(*n)--;
			i--;
		} else if (cs == s) { /* head */
			e->e_pblk += ct - s;
			e->e_lblk = ct;
			e->e_len = (uint32_t)(t - ct);
		} else if (ct == t) { /* tail */
			e->e_len = (uint32_t)(cs - s);
		} else { /* middle: split */
			struct poise_extent tail = *e;
			tail.e_lblk = ct;
			tail.e_pblk = e->e_pblk + (ct - s);
			tail.e_len = (uint32_t)(t - ct);
			e->e_len = (uint32_t)(cs - s);
			if (ext_insert(list, n, cap, tail) < 0)
				return -ENOMEM;
			i++;
		}
	}
	return 0;
}

static int copy_list(const struct inode *ip, struct poise_extent **l, uint32_t *n, uint32_t *cap)
{
	*cap = ip->next + 8;
	*l = malloc(*cap * sizeof(**l));
	if (!*l)
		return poise_err(ENOMEM, "out of memory");
	memcpy(*l, ip->ext, ip->next * sizeof(**l));
	*n = ip->next;
	return 0;
}

/* Give every hole of file blocks [b0, b1) a fresh block holding its
 * content: data where [doff, doff+dlen) covers it, zeros elsewhere (data
 * NULL: all zeros).  The new runs go into c. */
struct newrun {
	uint64_t blk, n;
};

/* A pending change of one inode's data, built under its exclusive lock and
 * published by one transaction (publish) or dropped (drop):
 *   l[0..n)    the new extent list (a copy of the inode's, then edited);
 *   nr[0..nnr) blocks taken for it (given back if it is dropped);
 *   fr[0..nfr) runs (blk, count) it releases (freed after the commit);
 *   q[0..nq)   blocks to quarantine (uncleared poison, moved away from). */
struct fchange {
	struct poise_extent *l;
	uint32_t n, cap;
	struct newrun *nr;
	uint32_t nnr;
	uint64_t *fr;
	uint32_t nfr;
	uint64_t *q;
	uint32_t nq;
	struct poise_block *bp; /* the data goes through the kernel (block path), or NULL */
};

/* Store file data at pool offset po (no fence): on the DAX path, or through
 * the kernel on the block path. */
static ssize_t data_store(struct poise_fs *fs, const struct fchange *c, uint64_t po, const void *b, size_t n)
{
	return c->bp ? poise_block_write(c->bp, po, b, n) : poise_dev_store(fs->dev, po, b, n);
}

static int fill_holes(struct poise_fs *fs, struct fchange *c, uint64_t b0, uint64_t b1,
		      const char *data, uint64_t doff, uint64_t dlen)
{
	static const uint8_t zero[POISE_BLOCK];
	uint64_t b = b0;
	while (b < b1) {
		uint64_t run, p = lmap(c->l, c->n, b, &run);
		if (p) {
			b += run;
			continue;
		}
		uint64_t want = run < b1 - b ? run : b1 - b, goal = 0, r2;
		if (b > 0 && (goal = lmap(c->l, c->n, b - 1, &r2)))
			goal++;
		uint64_t blk, got;
		int ret = alloc_blocks(fs, goal, want, &blk, &got);
		if (ret < 0)
			return ret;
		struct newrun *x = realloc(c->nr, (c->nnr + 1) * sizeof(*x));
		if (!x) {
			free_blocks(fs, blk, got);
			return poise_err(ENOMEM, "out of memory");
		}
		c->nr = x;
		x[c->nnr++] = (struct newrun){blk, got};
		if (!c->bp)
			poise_dev_prefault(fs->dev, blk * POISE_BLOCK, got * POISE_BLOCK);
		/* content: data where the write covers, zeros elsewhere */
		for (uint64_t i = 0; i < got; i++) {
			uint64_t fo = (b + i) * POISE_BLOCK, po = (blk + i) * POISE_BLOCK;
			uint64_t ds = doff > fo ? doff : fo;
			uint64_t de = doff + dlen < fo + POISE_BLOCK ? doff + dlen : fo + POISE_BLOCK;
			ssize_t k = 0;
			if (c->bp && data && ds < de) {
				/* the block path: one whole-block write through the kernel */
				uint8_t whole[POISE_BLOCK];
				memset(whole, 0, sizeof(whole));
				memcpy(whole + (ds - fo), data + (ds - doff), de - ds);
				k = data_store(fs, c, po, whole, POISE_BLOCK);
			} else if (!data || ds >= de) {
				k = poise_dev_store(fs->dev, po, zero, POISE_BLOCK);
			} else {
				if (ds > fo)
					k = poise_dev_store(fs->dev, po, zero, ds - fo);
				if (k >= 0 && de < fo + POISE_BLOCK)
					k = poise_dev_store(fs->dev, po + (de - fo), zero, fo + POISE_BLOCK - de);
				if (k >= 0)
					k = poise_dev_store(fs->dev, po + (ds - fo), data + (ds - doff), de - ds);
			}
			if (k < 0)
				return (int)k;
		}
		ret = ext_insert(&c->l, &c->n, &c->cap, (struct poise_extent){.e_lblk = b, .e_pblk = blk, .e_len = (uint32_t)got});
		if (ret < 0)
			return ret;
		b += got;
	}
	return 0;
}

static int remap_block(struct poise_fs *fs, struct fchange *c, uint64_t lb, uint64_t old,
		       const char *data, uint64_t doff, uint64_t dlen);

/* Zero [from, to) of the file where it is mapped, in place (no fence).  A
 * block whose poison cannot be cleared is remapped (list l, new runs nr,
 * quarantine q: see remap_block). */
static int zero_mapped(struct poise_fs *fs, struct fchange *c, uint64_t from, uint64_t to)
{
	static const uint8_t zero[POISE_BLOCK];
	while (from < to) {
		uint64_t run, lb = from >> POISE_BLOCK_SHIFT, p = lmap(c->l, c->n, lb, &run);
		uint64_t boff = from & (POISE_BLOCK - 1);
		uint64_t len = POISE_BLOCK - boff < to - from ? POISE_BLOCK - boff : to - from;
		if (p) {
			ssize_t k = poise_dev_store(fs->dev, p * POISE_BLOCK + boff, zero, len);
			if (k < 0 && bbt_any(&fs->dev->bb, p * (POISE_BLOCK / POISE_SECTOR),
					     (p + 1) * (POISE_BLOCK / POISE_SECTOR))) {
				int ret = remap_block(fs, c, lb, p, NULL, from, len);
				if (ret < 0)
					return ret;
			} else if (k < 0) {
				return (int)k;
			}
		}
		from += len;
	}
	return 0;
}

/* Publish change c with the dinode image nd in one transaction: c's
 * quarantined blocks join inode 2's map in it too (its lock is taken last,
 * after the file's).  On failure the change is dropped.  c is freed. */
static void drop(struct poise_fs *fs, struct fchange *c);

static int publish(struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd, struct fchange *c)
{
	struct poise_extent *l = c->l;
	uint32_t n = c->n, nq = c->nq;
	const uint64_t *q = c->q;
	struct tx *tx = tx_begin(fs);
	struct ext_change ch, qch;
	struct inode *qip = NULL;
	struct poise_dinode qnd;
	struct poise_extent *ql = NULL;
	uint32_t qn = 0, qcap = 0;
	int ret = tx ? 0 : poise_err(ENOMEM, "out of memory");
	memset(&ch, 0, sizeof(ch));
	memset(&qch, 0, sizeof(qch));
	if (ret == 0)
		ret = ext_store(tx, fs, ip, nd, l, n, &ch);
	if (ret == 0)
		ret = istore(tx, ip, nd);
	if (ret == 0 && nq) {
		if ((ret = iget(fs, POISE_QUARANTINE_INO, &qip)) == 0) {
			pthread_rwlock_wrlock(&qip->lock);
			ret = copy_list(qip, &ql, &qn, &qcap);
			for (uint32_t i = 0; ret == 0 && i < nq; i++)
				ret = ext_insert(&ql, &qn, &qcap, (struct poise_extent){.e_lblk = q[i], .e_pblk = q[i], .e_len = 1});
			qnd = qip->d;
			qnd.i_mtime_ns = qnd.i_ctime_ns = now_ns();
			if (ret == 0)
				ret = ext_store(tx, fs, qip, &qnd, ql, qn, &qch);
			if (ret == 0)
				ret = istore(tx, qip, &qnd);
		}
	}
	if (ret == 0)
		ret = tx_commit(tx);
	else if (tx)
		tx_abort(tx);
	if (ret < 0) {
		ext_abort(fs, &ch);
		ext_abort(fs, &qch);
		drop(fs, c);
	} else {
		ext_commit(fs, ip, &ch);
		ip->d = *nd;
		__atomic_store_n(&ip->times_dirty, 0, __ATOMIC_RELAXED);
		for (uint32_t i = 0; i < c->nfr; i++)
			free_blocks(fs, c->fr[2 * i], c->fr[2 * i + 1]);
		if (qip) {
			ext_commit(fs, qip, &qch);
			qip->d = qnd;
		}
	}
	if (qip)
		pthread_rwlock_unlock(&qip->lock);
	free(ql);
	free(c->l);
	free(c->nr);
	free(c->fr);
	free(c->q);
	memset(c, 0, sizeof(*c));
	return ret;
}

/* Abandon a change: give back the blocks it took, forget the rest. */
static void drop(struct poise_fs *fs, struct fchange *c)
{
	for (uint32_t i = 0; i < c->nnr; i++)
		free_blocks(fs, c->nr[i].blk, c->nr[i].n);
	c->nnr = 0;
}

static void change_free(struct fchange *c)
{
	free(c->l);
	free(c->nr);
	free(c->fr);
	free(c->q);
	memset(c, 0, sizeof(*c));
}

/* End change c of ip (whose lock the caller holds exclusive, released
 * here): published with the dinode image nd when ret is 0, else dropped.
 * The result. */
static int change_end(struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd, struct fchange *c, int ret)
{
	if (ret == 0) {
		ret = publish(fs, ip, nd, c);
	} else {
		drop(fs, c);
		change_free(c);
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

/* Start a change from ip's current extent list. */
static int change_begin(const struct inode *ip, struct fchange *c)
{
	memset(c, 0, sizeof(*c));
	return copy_list(ip, &c->l, &c->n, &c->cap);
}

/* File block lb lives at pool block old, whose bad sectors the platform
 * cannot clear.  Give it a fresh block: the good sectors are copied through
 * the machine-check-safe read, the bad ones become zeros (their bytes were
 * lost), and the write's data [doff, doff+dlen) is laid over.  c's list
 * maps lb to the new block; old goes to c's quarantine; the new block to its
 * new runs (given back if the change is dropped).  data NULL lays zeros.
 * Caller holds ip->lock exclusive. */
static int remap_block(struct poise_fs *fs, struct fchange *c, uint64_t lb, uint64_t old,
		       const char *data, uint64_t doff, uint64_t dlen)
{
	uint8_t blk[POISE_BLOCK];
	for (unsigned s = 0; s < POISE_BLOCK / POISE_SECTOR; s++) {
		uint64_t so = old * POISE_BLOCK + s * POISE_SECTOR;
		if (bbt_any(&fs->dev->bb, so / POISE_SECTOR, so / POISE_SECTOR + 1) ||
		    poise_dev_read(fs->dev, so, blk + s * POISE_SECTOR, POISE_SECTOR) != POISE_SECTOR)
			memset(blk + s * POISE_SECTOR, 0, POISE_SECTOR);
	}
	uint64_t fo = lb * POISE_BLOCK;
	uint64_t ds = doff > fo ? doff : fo, de = doff + dlen < fo + POISE_BLOCK ? doff + dlen : fo + POISE_BLOCK;
	if (ds < de && data)
		memcpy(blk + (ds - fo), data + (ds - doff), de - ds);
	else if (ds < de)
		memset(blk + (ds - fo), 0, de - ds); /* data NULL: zeros */
	uint64_t nb, got, *fr = NULL;
	uint32_t nfr = 0;
	int ret = alloc_blocks(fs, old + 1, 1, &nb, &got);
	if (ret < 0)
		return ret;
	struct newrun *x = realloc(c->nr, (c->nnr + 1) * sizeof(*x));
	uint64_t *qq = realloc(c->q, (c->nq + 1) * sizeof(*qq));
	if (x)
		c->nr = x;
	if (qq)
		c->q = qq;
	if (!x || !qq) {
		free_blocks(fs, nb, 1);
		return poise_err(ENOMEM, "out of memory");
	}
	x[c->nnr++] = (struct newrun){nb, 1};
	ssize_t k = poise_dev_store(fs->dev, nb * POISE_BLOCK, blk, POISE_BLOCK);
	if (k < 0)
		return (int)k;
	if ((ret = ext_cut(&c->l, &c->n, &c->cap, lb, lb + 1, &fr, &nfr)) == 0)
		ret = ext_insert(&c->l, &c->n, &c->cap, (struct poise_extent){.e_lblk = lb, .e_pblk = nb, .e_len = 1});
	free(fr); /* the old block is quarantined, not freed */
	if (ret == 0)
		qq[c->nq++] = old;
	return ret;
}

/* 1 when block p lies in one of the n runs r. */
static int in_runs(const struct newrun *r, uint32_t n, uint64_t p)
{
	for (uint32_t i = 0; i < n; i++)
		if (p >= r[i].blk && p < r[i].blk + r[i].n)
			return 1;
	return 0;
}

/* The current dinode image with the DRAM times folded in. */
static struct poise_dinode image(struct inode *ip)
{
	struct poise_dinode nd = ip->d;
	nd.i_atime_ns = __atomic_load_n(&ip->d.i_atime_ns, __ATOMIC_RELAXED);
	nd.i_mtime_ns = __atomic_load_n(&ip->d.i_mtime_ns, __ATOMIC_RELAXED);
	nd.i_ctime_ns = __atomic_load_n(&ip->d.i_ctime_ns, __ATOMIC_RELAXED);
	return nd;
}

ssize_t file_write(struct poise_fs *fs, struct inode *ip, const void *buf, size_t len,
		   uint64_t off, int append, struct poise_block *bp)
{
	if (len == 0)
		return 0;
	if (!append) {
		if (off + len < off || off + len > POISE_MAX_FILE_SIZE)
			return poise_err(EFBIG, "write past the largest file size");
		pthread_rwlock_rdlock(&ip->lock);
		if (off + len <= ip->d.i_size && fully_mapped(ip, off, len)) {
			ssize_t k = store_mapped(fs, ip, buf, len, off, bp);
			poise_fence();
			if (k == (ssize_t)len) {
				touch_times(ip);
				pthread_rwlock_unlock(&ip->lock);
				return k;
			}
			/* poison that could not be cleared: the path below remaps */
		}
		pthread_rwlock_unlock(&ip->lock);
	}
	pthread_rwlock_wrlock(&ip->lock);
	uint64_t size = ip->d.i_size;
	if (append)
		off = size;
	if (off + len < off || off + len > POISE_MAX_FILE_SIZE) {
		pthread_rwlock_unlock(&ip->lock);
		return poise_err(EFBIG, "write past the largest file size");
	}
	struct fchange c;
	int ret = change_begin(ip, &c);
	c.bp = bp; /* the data's path; zero-fills and remaps stay on DAX */
	uint64_t b0 = off >> POISE_BLOCK_SHIFT, b1 = (off + len + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT;
	/* the gap between the old EOF and the write, inside the old last block */
	if (ret == 0 && off > size && (size & (POISE_BLOCK - 1)))
		ret = zero_mapped(fs, &c, size, off < ((size | (POISE_BLOCK - 1)) + 1) ? off : (size | (POISE_BLOCK - 1)) + 1);
	/* the holes get fresh blocks holding the data first: a full pool fails
	 * the write before any byte in place has changed */
	uint32_t fresh0 = c.nnr;
	if (ret == 0)
		ret = fill_holes(fs, &c, b0, b1, buf, off, len);
	uint32_t fresh1 = c.nnr;
	/* then the mapped part of the range is overwritten in place, block by
	 * block (looked up in the change's list: the gap zeroing may have moved
	 * a block; the blocks fill_holes just wrote are skipped); a block whose
	 * poison cannot be cleared moves to a fresh one.  Only that move can
	 * still fail (a full pool) after bytes changed in place: poison found by
	 * this very write on a pool with no free block. */
	for (uint64_t pos = off; ret == 0 && pos < off + len;) {
		uint64_t run, lb = pos >> POISE_BLOCK_SHIFT, p = lmap(c.l, c.n, lb, &run);
		uint64_t end = (lb + 1) << POISE_BLOCK_SHIFT;
		if (end > off + len)
			end = off + len;
		if (p && !in_runs(c.nr + fresh0, fresh1 - fresh0, p)) {
			ssize_t k = data_store(fs, &c, p * POISE_BLOCK + (pos & (POISE_BLOCK - 1)),
					       (const char *)buf + (pos - off), end - pos);
			if (k < 0 && bbt_any(&fs->dev->bb, p * (POISE_BLOCK / POISE_SECTOR),
					     (p + 1) * (POISE_BLOCK / POISE_SECTOR)))
				ret = remap_block(fs, &c, lb, p, buf, off, len);
			else if (k < 0)
				ret = (int)k;
		}
		pos = end;
	}
	if (ret == 0) {
		struct poise_dinode nd = image(ip);
		if (off + len > nd.i_size)
			nd.i_size = off + len;
		nd.i_mtime_ns = nd.i_ctime_ns = now_ns();
		ret = publish(fs, ip, &nd, &c); /* fences the data too */
	} else {
		drop(fs, &c);
		change_free(&c);
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret < 0 ? ret : (ssize_t)len;
}

int file_truncate(struct poise_fs *fs, struct inode *ip, uint64_t size)
{
	if (size > POISE_MAX_FILE_SIZE)
		return poise_err(EFBIG, "size %llu is past the largest file size", (unsigned long long)size);
	pthread_rwlock_wrlock(&ip->lock);
	uint64_t old = ip->d.i_size;
	struct fchange c;
	int ret = change_begin(ip, &c);
	if (ret == 0 && size < old)
		ret = ext_cut(&c.l, &c.n, &c.cap, (size + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT, ~0ULL >> 13,
			      &c.fr, &c.nfr);
	if (ret == 0 && size > old && (old & (POISE_BLOCK - 1)))
		ret = zero_mapped(fs, &c, old, size < (old | (POISE_BLOCK - 1)) + 1 ? size : (old | (POISE_BLOCK - 1)) + 1);
	struct poise_dinode nd = image(ip);
	nd.i_size = size;
	nd.i_mtime_ns = nd.i_ctime_ns = now_ns();
	return change_end(fs, ip, &nd, &c, ret);
}

/* (fs.h) */
int file_grow(struct poise_fs *fs, struct inode *ip, uint64_t size, uint64_t trim_from)
{
	if (size > POISE_MAX_FILE_SIZE)
		return poise_err(EFBIG, "size %llu is past the largest file size", (unsigned long long)size);
	pthread_rwlock_wrlock(&ip->lock);
	struct poise_dinode nd = image(ip);
	uint64_t nsize = size > nd.i_size ? size : nd.i_size;
	uint64_t cut = (nsize + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT;
	if (trim_from > cut)
		cut = trim_from;
	struct fchange c;
	int ret = change_begin(ip, &c);
	uint32_t n0 = c.n;
	if (ret == 0 && cut < (~0ULL >> 13))
		ret = ext_cut(&c.l, &c.n, &c.cap, cut, ~0ULL >> 13, &c.fr, &c.nfr);
	if (ret == 0 && nsize == nd.i_size && !c.nfr && c.n == n0) {
		change_free(&c); /* nothing to publish */
		pthread_rwlock_unlock(&ip->lock);
		return 0;
	}
	/* no zeros: every byte of [old size, size) was written by the caller,
	 * into blocks the file already had */
	if (nsize != nd.i_size) {
		nd.i_size = nsize;
		nd.i_mtime_ns = nd.i_ctime_ns = now_ns();
	}
	return change_end(fs, ip, &nd, &c, ret);
}

int file_fallocate(struct poise_fs *fs, struct inode *ip, int mode, uint64_t off, uint64_t len)
{
	if (len == 0 || off + len < off || off + len > POISE_MAX_FILE_SIZE)
		return poise_err(EINVAL, "fallocate: bad range %llu+%llu", (unsigned long long)off,
				 (unsigned long long)len);
	int punch = mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
	if (!punch && mode != 0 && mode != FALLOC_FL_KEEP_SIZE)
		return poise_err(EOPNOTSUPP, "fallocate mode 0x%x is not supported", mode);
	pthread_rwlock_wrlock(&ip->lock);
	struct fchange c;
	uint64_t end = off + len;
	int ret = change_begin(ip, &c);
	struct poise_dinode nd = image(ip);
	if (ret == 0 && punch) {
		uint64_t b0 = (off + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT, b1 = end >> POISE_BLOCK_SHIFT;
		/* partial blocks at the edges: zeros in place */
		uint64_t head_end = b0 << POISE_BLOCK_SHIFT < end ? b0 << POISE_BLOCK_SHIFT : end;
		ret = zero_mapped(fs, &c, off, head_end);
		uint64_t tail = b1 << POISE_BLOCK_SHIFT > head_end ? b1 << POISE_BLOCK_SHIFT : head_end;
		if (ret == 0 && end > tail)
			ret = zero_mapped(fs, &c, tail, end);
		if (ret == 0 && b1 > b0)
			ret = ext_cut(&c.l, &c.n, &c.cap, b0, b1, &c.fr, &c.nfr);
	} else if (ret == 0) {
		if (end > nd.i_size && !(mode & FALLOC_FL_KEEP_SIZE) && (nd.i_size & (POISE_BLOCK - 1)))
			ret = zero_mapped(fs, &c, nd.i_size, (nd.i_size | (POISE_BLOCK - 1)) + 1);
		if (ret == 0)
			ret = fill_holes(fs, &c, off >> POISE_BLOCK_SHIFT,
					 (end + POISE_BLOCK - 1) >> POISE_BLOCK_SHIFT, NULL, 0, 0);
		if (!(mode & FALLOC_FL_KEEP_SIZE) && end > nd.i_size)
			nd.i_size = end;
	}
	if (ret == 0) {
		nd.i_ctime_ns = now_ns();
		if (punch)
			nd.i_mtime_ns = nd.i_ctime_ns;
		ret = publish(fs, ip, &nd, &c);
	} else {
		drop(fs, &c);
		change_free(&c);
	}
	if (ret == 0)
		poise_fence(); /* the in-place zeros of a punch */
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

void file_free_all(struct poise_fs *fs, struct poise_extent *ext, uint32_t n, uint64_t *chain,
		   uint32_t nchain)
{
	for (uint32_t i = 0; i < n; i++)
		free_blocks(fs, ext[i].e_pblk, ext[i].e_len);
	for (uint32_t c = 0; c < nchain; c++)
		free_blocks(fs, chain[c], 1);
}

/* (fs.h) */
int file_touch_atime(struct inode *ip, int how)
{
	pthread_rwlock_rdlock(&ip->lock);
	int64_t now = now_ns(), a = __atomic_load_n(&ip->d.i_atime_ns, __ATOMIC_RELAXED),
		m = __atomic_load_n(&ip->d.i_mtime_ns, __ATOMIC_RELAXED),
		c = __atomic_load_n(&ip->d.i_ctime_ns, __ATOMIC_RELAXED);
	/* relatime as Linux has it: when the access time is not after the
	 * last change, or a day old */
	int touch = !ip->dead && (how == POISE_ATIME_STRICT ||
				  (how == POISE_ATIME_RELATIME &&
				   (a <= m || a <= c || now - a >= 24LL * 3600 * 1000000000)));
	if (touch) {
		__atomic_store_n(&ip->d.i_atime_ns, now, __ATOMIC_RELAXED);
		__atomic_store_n(&ip->times_dirty, 1, __ATOMIC_RELAXED);
	}
	pthread_rwlock_unlock(&ip->lock);
	return touch;
}

int file_sync_times(struct poise_fs *fs, struct inode *ip)
{
	pthread_rwlock_wrlock(&ip->lock);
	int ret = 0;
	if (ip->times_dirty && !ip->dead) {
		struct tx *tx = tx_begin(fs);
		struct poise_dinode nd = image(ip);
		ret = tx ? istore(tx, ip, &nd) : poise_err(ENOMEM, "out of memory");
		if (tx)
			ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
		if (ret == 0) {
			ip->d = nd;
			__atomic_store_n(&ip->times_dirty, 0, __ATOMIC_RELAXED);
		}
	}
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}
