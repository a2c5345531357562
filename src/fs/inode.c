/*
 * inode.c - the inode cache, the dinode's checksum, and extent maps.
 *
 * fs->itab[ino] points at the in-memory inode once loaded; pointers are
 * published with release stores under icache_lock and read lock-free,
 * inside an EBR section (common/ebr.h: every public call opens one).  An
 * inode freed on media is marked dead, taken out of itab and buried in the
 * graveyard; every GRAVE_BATCH burials the graveyard becomes a batch in
 * limbo under a fresh EBR tag, and limbo batches are freed once no thread
 * can still hold their pointers (at unmount at the latest), so a racing
 * holder never touches freed memory and a long-lived mount's memory does
 * not grow with every file it ever deleted.
 *
 * Extent maps: ext[0..5) inline in the dinode, ext[5..] in a chain of
 * extent blocks, each stored twice (ip->chain lists primary, replica,
 * primary, replica, ...; replica.c reads the better copy and heals).  A change that rewrites one record (an append growing the
 * last extent) logs that record in place; any other change to the overflow
 * writes a fresh chain (not logged: new blocks, persisted before commit)
 * and the transaction swaps the head pointer, so it is atomic and the log
 * stays small.  Lock rules: callers hold ip->lock as fs.h says.
 */
#include "fs/fs.h"
#include "common/crc32c.h"
#include "common/ebr.h"
#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void dinode_seal(struct poise_dinode *d)
{
	d->i_crc = 0;
	d->i_crc = poise_crc32c(0, d, sizeof(*d));
}

int dinode_check(const struct poise_dinode *d)
{
	struct poise_dinode c = *d;
	c.i_crc = 0;
	return poise_crc32c(0, &c, sizeof(c)) == d->i_crc ? 0 : -EUCLEAN;
}

void extent_seal(struct poise_extent *e)
{
	e->e_pad = 0;
	e->e_crc = poise_crc32c(0, e, 24);
}

static int extent_ok(const struct poise_fs *fs, const struct poise_extent *e)
{
	return e->e_crc == poise_crc32c(0, e, 24) && e->e_len > 0 && e->e_pblk >= fs->data_blk &&
	       e->e_pblk + e->e_len <= fs->data_end && e->e_pblk + e->e_len > e->e_pblk;
}

int extents_ok(const struct poise_fs *fs, const struct poise_extent *e, uint32_t n, uint64_t *lend)
{
	for (uint32_t i = 0; i < n; i++) {
		/* (e_len < 2^32 < the largest file's blocks: the difference cannot wrap) */
		if (!extent_ok(fs, &e[i]) || e[i].e_lblk < *lend ||
		    e[i].e_lblk > POISE_MAX_FILE_SIZE / POISE_BLOCK - e[i].e_len) /* past the largest file */
			return 0;
		*lend = e[i].e_lblk + e[i].e_len;
	}
	return 1;
}

static void extblk_seal(struct poise_extblk *x)
{
	x->x_crc = 0;
	x->x_crc = poise_crc32c(0, x, sizeof(*x));
}

struct extblk_want {
	uint64_t ino;
	uint32_t count;
};

/* Defects of one copy of an extent block (replica score): a bad header
 * counts more than all its extents. */
static unsigned extblk_score(const struct poise_fs *fs, const uint8_t *buf, const void *ctx)
{
	const struct extblk_want *w = ctx;
	const struct poise_extblk *x = (const struct poise_extblk *)buf;
	struct poise_extblk h = *x;
	h.x_crc = 0;
	if (x->x_magic != POISE_EXTBLK_MAGIC || poise_crc32c(0, &h, sizeof(h)) != x->x_crc ||
	    x->x_owner != w->ino || x->x_count != w->count)
		return 1 + (unsigned)POISE_EXTS_PER_BLOCK;
	unsigned bad = 0;
	for (uint32_t i = 0; i < x->x_count; i++)
		bad += !extent_ok(fs, &x->x_ext[i]);
	return bad;
}

int extblk_read(struct poise_fs *fs, uint64_t ino, uint64_t p, uint64_t r, uint32_t count, uint8_t *buf)
{
	if (p < fs->data_blk || p >= fs->data_end || r < fs->data_blk || r >= fs->data_end || p == r)
		return poise_err(EUCLEAN, "inode %llu: extent block %llu (replica %llu) out of range",
				 (unsigned long long)ino, (unsigned long long)p, (unsigned long long)r);
	struct extblk_want w = {ino, count};
	int ret = replica_read(fs, p, r, buf, extblk_score, &w);
	if (ret == -EIO)
		return poise_err(EIO, "inode %llu: extent block %llu is unreadable in both copies (media error)",
				 (unsigned long long)ino, (unsigned long long)p);
	if (ret > 0)
		return poise_err(EUCLEAN, "inode %llu: extent block %llu is corrupt in both copies",
				 (unsigned long long)ino, (unsigned long long)p);
	return ret;
}

/* Load the extent list of dinode d into ip.  -EUCLEAN with a message when
 * anything is inconsistent, -EIO when both copies of an extent block are
 * unreadable. */
static int load_extents(struct poise_fs *fs, struct inode *ip)
{
	const struct poise_dinode *d = &ip->d;
	uint32_t n = d->i_nextents;
	uint64_t maxblocks = fs->data_end - fs->data_blk;
	if (n > maxblocks)
		return poise_err(EUCLEAN, "inode %llu: %u extents is impossible",
				 (unsigned long long)ip->ino, n);
	ip->ext = calloc(n ? n : 1, sizeof(*ip->ext));
	uint32_t nlinks = n > POISE_INLINE_EXTENTS
				  ? (uint32_t)((n - POISE_INLINE_EXTENTS + POISE_EXTS_PER_BLOCK - 1) / POISE_EXTS_PER_BLOCK)
				  : 0;
	ip->chain = calloc(nlinks ? 2 * nlinks : 1, sizeof(uint64_t));
	if (!ip->ext || !ip->chain)
		return poise_err(ENOMEM, "out of memory");
	uint64_t lend = 0;
	for (uint32_t i = 0; i < n && i < POISE_INLINE_EXTENTS; i++)
		ip->ext[i] = d->i_ext[i];
	if (!extents_ok(fs, ip->ext, n < POISE_INLINE_EXTENTS ? n : POISE_INLINE_EXTENTS, &lend))
		return poise_err(EUCLEAN, "inode %llu: an inline extent is corrupt", (unsigned long long)ip->ino);
	uint64_t blk = d->i_ext_blk, rblk = d->i_ext_rblk;
	uint32_t at = POISE_INLINE_EXTENTS;
	uint8_t *buf = NULL;
	for (uint32_t c = 0; c < nlinks; c++) {
		if (!buf && !(buf = malloc(POISE_BLOCK)))
			return poise_err(ENOMEM, "out of memory");
		uint32_t want = n - at < POISE_EXTS_PER_BLOCK ? n - at : (uint32_t)POISE_EXTS_PER_BLOCK;
		int ret = extblk_read(fs, ip->ino, blk, rblk, want, buf);
		struct poise_extblk *x = (struct poise_extblk *)buf;
		if (ret == 0 && !extents_ok(fs, x->x_ext, want, &lend))
			ret = poise_err(EUCLEAN, "inode %llu: extent block %llu is corrupt or repeats the chain",
					(unsigned long long)ip->ino, (unsigned long long)blk);
		if (ret < 0) {
			free(buf);
			return ret;
		}
		memcpy(&ip->ext[at], x->x_ext, want * sizeof(struct poise_extent));
		ip->chain[2 * c] = blk;
		ip->chain[2 * c + 1] = rblk;
		at += want;
		blk = x->x_next;
		rblk = x->x_rnext;
	}
	free(buf);
	ip->nchain = 2 * nlinks;
	ip->next = n;
	return 0;
}

int dinode_read(struct poise_fs *fs, uint64_t ino, struct poise_dinode *d)
{
	int p_io = poise_dev_read(fs->dev, ino_off(fs, ino), d, sizeof(*d)) != sizeof(*d);
	int never = !p_io && d->i_mode == 0 && d->i_crc == 0;
	if (!p_io && (never || dinode_check(d) == 0)) {
		if (!never)
			return 0;
		/* all zeros: never used, or a replica-only update? ask the replica */
	}
	struct poise_dinode r;
	int r_io = poise_dev_read(fs->dev, ino_roff(fs, ino), &r, sizeof(r)) != sizeof(r);
	if (!r_io && r.i_mode == 0 && r.i_crc == 0) {
		if (never) {
			*d = r;
			return 0;
		}
	} else if (!r_io && dinode_check(&r) == 0) {
		*d = r;
		/* rewrite the damaged primary from the replica; the write clears
		 * poison under it (errors: the replica keeps serving) */
		(void)poise_dev_write(fs->dev, ino_off(fs, ino), &r, sizeof(r));
		return 0;
	}
	if (never)
		return 0;
	if (p_io && r_io)
		return poise_err(EIO, "inode %llu: both copies are unreadable (media error)",
				 (unsigned long long)ino);
	return poise_err(EUCLEAN, "inode %llu: no copy passes its checksum", (unsigned long long)ino);
}

static struct inode *ialloc_mem(uint64_t ino)
{
	struct inode *ip = calloc(1, sizeof(*ip));
	if (!ip)
		return NULL;
	ip->ino = ino;
	pthread_rwlock_init(&ip->lock, NULL);
	return ip;
}

static void ifree_mem(struct inode *ip)
{
	if (ip->dir)
		dir_free(ip->dir);
	free(ip->ext);
	free(ip->chain);
	pthread_rwlock_destroy(&ip->lock);
	free(ip);
}

/* Free a chain of dead inodes linked by ->grave. */
static void free_chain(struct inode *g)
{
	while (g) {
		struct inode *next = g->grave;
		ifree_mem(g);
		g = next;
	}
}

/* ip is out of itab (icache_lock held): into the graveyard.  A full
 * graveyard goes to limbo under a new tag; then 1: the caller runs
 * reclaim() once it has dropped icache_lock. */
#define GRAVE_BATCH 512
static int bury(struct poise_fs *fs, struct inode *ip)
{
	ip->grave = fs->graves;
	fs->graves = ip;
	if (++fs->ngraves < GRAVE_BATCH)
		return 0;
	uint64_t tag = ebr_retire_tag();
	struct inode *last = NULL;
	for (struct inode *g = fs->graves; g; g = g->grave) {
		g->grave_tag = tag;
		last = g;
	}
	last->grave = fs->limbo; /* newest batches first */
	fs->graves->batch_tail = last; /* so a pass steps batch by batch */
	fs->limbo = fs->graves;
	fs->graves = NULL;
	fs->ngraves = 0;
	return 1;
}

/* Free the limbo batches no thread can reach any longer.  No lock held on
 * entry but the caller's inode locks; one pass at a time (another thread's
 * pass running: this one is skipped, the next batch's frees what is due).
 * The membarrier of ebr_safe_upto and the frees run outside icache_lock. */
static void reclaim(struct poise_fs *fs)
{
	if (__atomic_exchange_n(&fs->reclaiming, 1, __ATOMIC_ACQUIRE))
		return;
	uint64_t upto = ebr_safe_upto();
	struct inode *dead = NULL;
	if (upto) { /* 0: reclamation is off, or nothing is safe yet */
		pthread_mutex_lock(&fs->icache_lock);
		struct inode **at = &fs->limbo; /* a batch head, newest first */
		while (*at && (*at)->grave_tag > upto) /* batches tagged since are newer still */
			at = &(*at)->batch_tail->grave;
		dead = *at; /* tags only fall from here on: all of these are safe */
		*at = NULL;
		pthread_mutex_unlock(&fs->icache_lock);
	}
	__atomic_store_n(&fs->reclaiming, 0, __ATOMIC_RELEASE);
	free_chain(dead);
}

/* (fs.h) */
int dinode_type_check(struct poise_fs *fs, uint64_t ino, const struct poise_dinode *d)
{
	unsigned long long n = (unsigned long long)ino;
	if (!type_ok(fs, d->i_mode))
		return poise_err(EUCLEAN, "inode %llu has a type format %u.%u does not have (mode %o)", n,
				 fs->sb.s_major, __atomic_load_n(&fs->sb.s_minor, __ATOMIC_ACQUIRE), d->i_mode);
	if (d->i_rdev && !S_ISCHR(d->i_mode) && !S_ISBLK(d->i_mode))
		return poise_err(EUCLEAN, "inode %llu: a device number on what is not a device", n);
	if (is_node(d->i_mode) && (d->i_size || d->i_nextents || d->i_ext_blk || d->i_ext_rblk))
		return poise_err(EUCLEAN, "inode %llu: a FIFO, socket or device that holds data", n);
	return 0;
}

int iget(struct poise_fs *fs, uint64_t ino, struct inode **ipp)
{
	if (ino < 1 || ino > fs->sb.s_ninodes)
		return poise_err(EUCLEAN, "inode number %llu out of range", (unsigned long long)ino);
	if (__builtin_expect(!ebr_inside(), 0))
		ebr_note_unguarded(); /* a caller outside any section: free nothing early */
	struct inode *ip = __atomic_load_n(&fs->itab[ino], __ATOMIC_ACQUIRE);
	if (ip && !__atomic_load_n(&ip->dead, __ATOMIC_ACQUIRE)) {
		*ipp = ip;
		return 0;
	}
	pthread_mutex_lock(&fs->icache_lock);
	ip = fs->itab[ino];
	if (ip && !ip->dead) {
		pthread_mutex_unlock(&fs->icache_lock);
		*ipp = ip;
		return 0;
	}
	int ret;
	ip = ialloc_mem(ino);
	if (!ip) {
		ret = poise_err(ENOMEM, "out of memory");
		goto out;
	}
	/* a number being created is not there until ipublish(): alloc_ino
	 * marks it under ialloc_lock, held here across the read, so no
	 * commit of a new inode writes this dinode while it is read (and
	 * perhaps healed) */
	pthread_mutex_lock(&fs->ialloc_lock);
	if (ino_is_new(fs, ino))
		ret = -ENOENT;
	else
		ret = dinode_read(fs, ino, &ip->d);
	pthread_mutex_unlock(&fs->ialloc_lock);
	if (ret < 0)
		goto fail;
	if (ip->d.i_mode == 0) {
		ret = -ENOENT;
		goto fail;
	}
	if (fs->ino_bad && (fs->ino_bad[ino / 64] >> (ino % 64)) & 1) {
		ret = poise_err(EUCLEAN, "inode %llu: it maps blocks another inode holds (cross-linked): run fsck",
				(unsigned long long)ino);
		goto fail;
	}
	if ((ret = dinode_type_check(fs, ino, &ip->d)) < 0)
		goto fail;
	ip->type = ip->d.i_mode & S_IFMT;
	ip->parent = ip->d.i_parent;
	if (S_ISDIR(ip->type) && (ip->parent == 0 || ip->parent > fs->sb.s_ninodes)) {
		ret = poise_err(EUCLEAN, "directory %llu: its parent %llu is not an inode", (unsigned long long)ino,
				(unsigned long long)ip->parent);
		goto fail;
	}
	if ((ret = load_extents(fs, ip)) < 0)
		goto fail;
	if (S_ISDIR(ip->d.i_mode) && (ret = dir_load(fs, ip)) < 0)
		goto fail;
	struct inode *old = fs->itab[ino];
	__atomic_store_n(&fs->itab[ino], ip, __ATOMIC_RELEASE);
	int due = old && bury(fs, old); /* a dead one */
	*ipp = ip;
	pthread_mutex_unlock(&fs->icache_lock);
	if (due)
		reclaim(fs);
	return 0;
fail:
	ifree_mem(ip);
out:
	pthread_mutex_unlock(&fs->icache_lock);
	return ret;
}

int inew(struct poise_fs *fs, uint64_t ino, uint16_t mode, struct inode **ipp)
{
	struct inode *ip = ialloc_mem(ino);
	if (!ip || !(ip->ext = calloc(1, sizeof(*ip->ext))) || !(ip->chain = calloc(1, 8))) {
		if (ip)
			ifree_mem(ip);
		return poise_err(ENOMEM, "out of memory");
	}
	int64_t t = now_ns();
	ip->d.i_mode = mode;
	ip->type = mode & S_IFMT;
	ip->d.i_nlink = 1;
	ip->d.i_atime_ns = ip->d.i_mtime_ns = ip->d.i_ctime_ns = t;
	ip->d.i_generation = (uint64_t)t;
	*ipp = ip;
	return 0;
}

/* Publish a new inode after its transaction committed. */
void ipublish(struct poise_fs *fs, struct inode *ip)
{
	pthread_mutex_lock(&fs->icache_lock);
	ino_settled(fs, ip->ino); /* committed: no longer new */
	struct inode *old = fs->itab[ip->ino];
	if (old)
		__atomic_store_n(&old->dead, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&fs->itab[ip->ino], ip, __ATOMIC_RELEASE);
	int due = old && bury(fs, old);
	pthread_mutex_unlock(&fs->icache_lock);
	if (due)
		reclaim(fs);
}

void iput_dead(struct poise_fs *fs, struct inode *ip)
{
	int due = 0;
	pthread_mutex_lock(&fs->icache_lock);
	__atomic_store_n(&ip->dead, 1, __ATOMIC_RELEASE);
	if (fs->itab[ip->ino] == ip) {
		__atomic_store_n(&fs->itab[ip->ino], NULL, __ATOMIC_RELEASE);
		due = bury(fs, ip);
	}
	pthread_mutex_unlock(&fs->icache_lock);
	if (due)
		reclaim(fs);
}

void icache_fini(struct poise_fs *fs)
{
	if (!fs->itab)
		return;
	for (uint64_t i = 1; i <= fs->sb.s_ninodes; i++)
		if (fs->itab[i])
			ifree_mem(fs->itab[i]);
	free_chain(fs->graves);
	free_chain(fs->limbo);
	fs->graves = fs->limbo = NULL;
	fs->ngraves = 0;
	free(fs->itab);
	fs->itab = NULL;
}

/* (fs.h) Each copy is compared with what the pool holds (tx_write_delta),
 * so a copy left stale or torn gets every word it lacks: the records
 * always make both copies exactly nd. */
int istore(struct tx *tx, struct inode *ip, struct poise_dinode *nd)
{
	struct poise_fs *fs = tx_fs(tx);
	dinode_seal(nd);
	int ret = tx_write_delta(tx, ino_off(fs, ip->ino), nd, sizeof(*nd));
	return ret ? ret : tx_write_delta(tx, ino_roff(fs, ip->ino), nd, sizeof(*nd)); /* both copies, atomically */
}

uint64_t lmap(const struct poise_extent *ext, uint32_t n, uint64_t lblk, uint64_t *run)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) { /* first extent ending after lblk */
		uint32_t mid = lo + (hi - lo) / 2;
		if (ext[mid].e_lblk + ext[mid].e_len <= lblk)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == n) {
		*run = ~0ULL - lblk;
		return 0;
	}
	const struct poise_extent *e = &ext[lo];
	if (e->e_lblk > lblk) {
		*run = e->e_lblk - lblk;
		return 0;
	}
	*run = e->e_lblk + e->e_len - lblk;
	return e->e_pblk + (lblk - e->e_lblk);
}

uint64_t imap(const struct inode *ip, uint64_t lblk, uint64_t *run)
{
	return lmap(ip->ext, ip->next, lblk, run);
}

/* Pool offset of overflow extent i in copy rep (0 primary, 1 replica). */
static uint64_t chain_slot_off(const uint64_t *chain, uint32_t i, int rep)
{
	uint32_t j = i - POISE_INLINE_EXTENTS;
	return chain[2 * (j / POISE_EXTS_PER_BLOCK) + rep] * POISE_BLOCK + sizeof(struct poise_extblk) +
	       (uint64_t)(j % POISE_EXTS_PER_BLOCK) * sizeof(struct poise_extent);
}

int ext_store(struct tx *tx, struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd,
	      const struct poise_extent *ne, uint32_t n, struct ext_change *ch)
{
	memset(ch, 0, sizeof(*ch));
	ch->ext = malloc((n ? n : 1) * sizeof(*ne));
	if (!ch->ext)
		return poise_err(ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		ch->ext[i] = ne[i];
		extent_seal(&ch->ext[i]);
	}
	ch->n = n;
	nd->i_nextents = n;
	nd->i_blocks = nd->i_xattr_blk ? 2 : 0; /* what the inode holds: its attribute pair, its
						   * extents, plus chain blocks below */
	for (uint32_t i = 0; i < n; i++)
		nd->i_blocks += ne[i].e_len;
	memset(nd->i_ext, 0, sizeof(nd->i_ext));
	for (uint32_t i = 0; i < n && i < POISE_INLINE_EXTENTS; i++)
		nd->i_ext[i] = ch->ext[i];
	if (n <= POISE_INLINE_EXTENTS) {
		nd->i_ext_blk = nd->i_ext_rblk = 0;
		ch->fresh = ip->nchain > 0;
		return 0;
	}
	uint32_t nlinks = (uint32_t)((n - POISE_INLINE_EXTENTS + POISE_EXTS_PER_BLOCK - 1) / POISE_EXTS_PER_BLOCK);
	nd->i_blocks += 2 * nlinks; /* each link: a primary and a replica */
	/* overflow: same length, at most one record differs -> in place, in
	 * both copies */
	if (n == ip->next) {
		uint32_t diff = 0, at = 0;
		for (uint32_t i = POISE_INLINE_EXTENTS; i < n; i++)
			if (memcmp(&ch->ext[i], &ip->ext[i], sizeof(*ne))) {
				diff++;
				at = i;
			}
		if (diff <= 1) {
			ch->chain = malloc(ip->nchain * sizeof(uint64_t));
			if (!ch->chain)
				return poise_err(ENOMEM, "out of memory");
			memcpy(ch->chain, ip->chain, ip->nchain * sizeof(uint64_t));
			ch->nchain = ip->nchain;
			nd->i_ext_blk = ip->d.i_ext_blk;
			nd->i_ext_rblk = ip->d.i_ext_rblk;
			int ret = 0;
			for (int rep = 0; diff && rep < 2 && ret == 0; rep++)
				ret = tx_write(tx, chain_slot_off(ip->chain, at, rep), &ch->ext[at], sizeof(*ne));
			return ret;
		}
	}
	/* a fresh chain: two blocks per link */
	ch->chain = calloc(2 * nlinks, sizeof(uint64_t));
	uint8_t *buf = calloc(1, POISE_BLOCK);
	if (!ch->chain || !buf) {
		free(buf);
		return poise_err(ENOMEM, "out of memory");
	}
	ch->fresh = 1;
	int ret = 0;
	for (uint32_t c = 0; c < 2 * nlinks && ret == 0; c++) {
		uint64_t got;
		ret = alloc_blocks(fs, ip->next ? ip->ext[0].e_pblk : 0, 1, &ch->chain[c], &got);
		if (ret == 0)
			ch->nchain++;
	}
	for (uint32_t c = 0; c < nlinks && ret == 0; c++) {
		struct poise_extblk *x = (struct poise_extblk *)buf;
		memset(buf, 0, POISE_BLOCK);
		uint32_t first = POISE_INLINE_EXTENTS + c * (uint32_t)POISE_EXTS_PER_BLOCK;
		uint32_t cnt = n - first < POISE_EXTS_PER_BLOCK ? n - first : (uint32_t)POISE_EXTS_PER_BLOCK;
		x->x_magic = POISE_EXTBLK_MAGIC;
		x->x_count = cnt;
		x->x_next = c + 1 < nlinks ? ch->chain[2 * c + 2] : 0;
		x->x_rnext = c + 1 < nlinks ? ch->chain[2 * c + 3] : 0;
		x->x_owner = ip->ino;
		memcpy(x->x_ext, &ch->ext[first], cnt * sizeof(*ne));
		extblk_seal(x);
		for (int rep = 0; rep < 2 && ret == 0; rep++) {
			ssize_t k = poise_dev_store(fs->dev, ch->chain[2 * c + rep] * POISE_BLOCK, buf, POISE_BLOCK);
			if (k < 0)
				ret = (int)k;
		}
	}
	free(buf);
	nd->i_ext_blk = ch->nchain ? ch->chain[0] : 0;
	nd->i_ext_rblk = ch->nchain > 1 ? ch->chain[1] : 0;
	/* the new chain is made durable by the commit's first fence */
	return ret;
}

void ext_commit(struct poise_fs *fs, struct inode *ip, struct ext_change *ch)
{
	if (ch->fresh)
		for (uint32_t c = 0; c < ip->nchain; c++)
			free_blocks(fs, ip->chain[c], 1);
	free(ip->ext);
	free(ip->chain);
	ip->ext = ch->ext;
	ip->next = ch->n;
	ip->chain = ch->chain ? ch->chain : calloc(1, 8);
	ip->nchain = ch->chain ? ch->nchain : 0;
	ch->ext = NULL;
	ch->chain = NULL;
}

void ext_abort(struct poise_fs *fs, struct ext_change *ch)
{
	if (ch->fresh)
		for (uint32_t c = 0; c < ch->nchain; c++)
			free_blocks(fs, ch->chain[c], 1);
	free(ch->ext);
	free(ch->chain);
	ch->ext = NULL;
	ch->chain = NULL;
}
