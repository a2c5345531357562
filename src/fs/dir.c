/*
 * dir.c - directories: entries in 64-byte slots of directory blocks on
 * media, and an open-addressing hash table over them in DRAM (as NOVA keeps
 * its directory index in DRAM), so a lookup costs O(1) at 100,000 entries.
 * The index is built when the directory inode is loaded.
 *
 * Replicas: the directory's logical block b is file block 2b, and its copy
 * file block 2b+1; every entry change is logged into both.  Loading reads
 * the primary and, when it is unreadable or holds an entry that fails its
 * checksum, the replica too, keeps the better copy and rewrites the other
 * (a write clears poison).  Both lost: the directory fails, nothing else.
 * A removed entry's slots are all zeroed, so every slot is either free
 * (d_ino == 0) or the header or continuation of a live entry.
 * A change is logged into the caller's transaction and remembered as
 * pending; dir_commit() applies it to the index after the transaction
 * committed, dir_abort() forgets it.  Slots an add reserves are marked used
 * at once (so a second add in the same transaction does not take them) and
 * released again on abort.  When no run of free slots is left, the
 * directory grows by one zeroed block in a transaction of its own (an empty
 * block is consistent whatever happens next).
 *
 * Lock rules: dp->lock shared for lookup/snapshot, exclusive for changes
 * through commit/abort.
 */
#include "fs/fs.h"
#include "common/crc32c.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dentry {
	uint64_t ino;
	uint32_t hash;
	uint32_t blk;  /* directory block index (file block number) */
	uint8_t slot, nslots, type, len;
	char name[];   /* len bytes + NUL */
};

#define TOMB ((struct dentry *)1)

struct pend {
	int kind; /* 0 add, 1 remove, 2 retarget */
	struct dentry *e; /* add: the new entry; others: the existing one */
	uint64_t ino;
	uint8_t type;
};

struct dir {
	struct dentry **tab;
	size_t cap, count, used; /* used: live + tombstones */
	uint64_t *slots;         /* per block: bitmap of used slots */
	uint32_t nblocks;
	size_t corrupt;
	struct pend *pend;
	size_t npend, pcap;
};

static uint32_t hash_name(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static struct dentry **find(struct dir *d, const char *name, size_t len, uint32_t h)
{
	if (!d->cap)
		return NULL;
	size_t i = h & (d->cap - 1);
	for (;;) {
		struct dentry *e = d->tab[i];
		if (!e)
			return NULL;
		if (e != TOMB && e->hash == h && e->len == len && !memcmp(e->name, name, len))
			return &d->tab[i];
		i = (i + 1) & (d->cap - 1);
	}
}

static int grow_table(struct dir *d)
{
	size_t cap = d->cap ? d->cap * 2 : 16;
	if (d->count * 4 < d->cap) /* mostly tombstones: rehash in place size */
		cap = d->cap;
	struct dentry **t = calloc(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < d->cap; i++) {
		struct dentry *e = d->tab[i];
		if (!e || e == TOMB)
			continue;
		size_t j = e->hash & (cap - 1);
		while (t[j])
			j = (j + 1) & (cap - 1);
		t[j] = e;
	}
	free(d->tab);
	d->tab = t;
	d->cap = cap;
	d->used = d->count;
	return 0;
}

static int insert(struct dir *d, struct dentry *e)
{
	if ((d->used + 1) * 10 >= d->cap * 7 && grow_table(d) < 0)
		return -ENOMEM;
	size_t i = e->hash & (d->cap - 1);
	while (d->tab[i] && d->tab[i] != TOMB)
		i = (i + 1) & (d->cap - 1);
	if (!d->tab[i])
		d->used++;
	d->tab[i] = e;
	d->count++;
	return 0;
}

static void mark_slots(struct dir *d, uint32_t blk, unsigned slot, unsigned n, int used)
{
	uint64_t m = (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << slot;
	if (used)
		d->slots[blk] |= m;
	else
		d->slots[blk] &= ~m;
}

static struct dentry *dentry_new(const char *name, size_t len, uint64_t ino, uint8_t type)
{
	struct dentry *e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	e->ino = ino;
	e->hash = hash_name(name, len);
	e->len = (uint8_t)len;
	e->type = type;
	memcpy(e->name, name, len);
	e->name[len] = 0;
	return e;
}

static uint32_t dirent_crc(const struct poise_dirent *h, const char *name)
{
	struct poise_dirent c = *h;
	c.d_crc = 0;
	return poise_crc32c(poise_crc32c(0, &c, sizeof(c)), name, h->d_name_len);
}

static int slots_grow(struct dir *d, uint32_t nblocks)
{
	uint64_t *s = realloc(d->slots, (nblocks ? nblocks : 1) * sizeof(uint64_t));
	if (!s)
		return -ENOMEM;
	for (uint32_t b = d->nblocks; b < nblocks; b++)
		s[b] = 0;
	d->slots = s;
	d->nblocks = nblocks;
	return 0;
}

/* Pool block of copy `rep` (0 primary, 1 replica) of logical block b. */
static uint64_t dblk(const struct inode *dp, uint32_t b, int rep)
{
	uint64_t run;
	return imap(dp, 2 * (uint64_t)b + (uint64_t)rep, &run);
}

/* Does the in-use slot s (header h) hold a valid entry: a sane length and
 * slot count inside the block, an inode number in range, no '/' or NUL in
 * the name, and a matching checksum? */
static int entry_ok(const struct poise_fs *fs, const struct poise_dirent *h, unsigned s)
{
	unsigned len = h->d_name_len;
	int dot = (len == 1 && h->d_name[0] == '.') || (len == 2 && h->d_name[0] == '.' && h->d_name[1] == '.');
	return len != 0 && !dot && h->d_nslots == POISE_DIRENT_SLOTS(len) &&
	       s + h->d_nslots <= POISE_DSLOTS_PER_BLOCK && h->d_ino <= fs->sb.s_ninodes &&
	       h->d_ino != POISE_ROOT_INO && h->d_ino != POISE_QUARANTINE_INO &&
	       type_ok(fs, DTTOIF(h->d_type)) && IFTODT(DTTOIF(h->d_type)) == h->d_type &&
	       !memchr(h->d_name, '/', len) && !memchr(h->d_name, 0, len) &&
	       dirent_crc(h, h->d_name) == h->d_crc;
}

/* Entries of a directory block that fail their checks (replica score). */
static unsigned count_bad(const struct poise_fs *fs, const uint8_t *buf, const void *ctx)
{
	unsigned bad = 0;
	for (unsigned s = 0; s < POISE_DSLOTS_PER_BLOCK;) {
		const struct poise_dirent *h = (const struct poise_dirent *)(buf + s * POISE_DSLOT);
		if (!h->d_ino) {
			s++;
			continue;
		}
		if (!entry_ok(fs, h, s)) {
			bad++;
			s++;
			continue;
		}
		s += h->d_nslots;
	}
	return bad;
}

/* Read logical block b into buf from the better copy (replica.c rewrites
 * the worse).  0, or -EIO when neither copy can be read. */
static int read_dblock(struct poise_fs *fs, const struct inode *dp, uint32_t b, uint8_t *buf)
{
	uint64_t p = dblk(dp, b, 0), r = dblk(dp, b, 1);
	if (!p || !r)
		return poise_err(EUCLEAN, "directory %llu: block %u is a hole", (unsigned long long)dp->ino, b);
	int ret = replica_read(fs, p, r, buf, count_bad, NULL);
	if (ret == -EIO)
		return poise_err(EIO, "directory %llu: block %u is unreadable in both copies (media error)",
				 (unsigned long long)dp->ino, b);
	return ret < 0 ? ret : 0;
}

int dir_load(struct poise_fs *fs, struct inode *dp)
{
	/* the size is checked against the blocks the directory holds before
	 * anything is allocated for it */
	uint64_t held = 0;
	for (uint32_t i = 0; i < dp->next; i++)
		held += dp->ext[i].e_len;
	if (dp->d.i_size / POISE_BLOCK > held || dp->d.i_size / POISE_BLOCK > fs->data_end - fs->data_blk)
		return poise_err(EUCLEAN, "directory %llu: its size %llu does not match the %llu blocks it holds",
				 (unsigned long long)dp->ino, (unsigned long long)dp->d.i_size,
				 (unsigned long long)held);
	struct dir *d = calloc(1, sizeof(*d));
	uint8_t *buf = malloc(POISE_BLOCK);
	uint32_t nblocks = (uint32_t)(dp->d.i_size / (2 * POISE_BLOCK));
	int ret = 0;
	if (!d || !buf || slots_grow(d, nblocks) < 0) {
		ret = poise_err(ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t b = 0; b < nblocks; b++) {
		if ((ret = read_dblock(fs, dp, b, buf)) < 0)
			goto out;
		for (unsigned s = 0; s < POISE_DSLOTS_PER_BLOCK;) {
			struct poise_dirent *h = (struct poise_dirent *)(buf + s * POISE_DSLOT);
			if (!h->d_ino) {
				s++;
				continue;
			}
			unsigned len = h->d_name_len;
			if (!entry_ok(fs, h, s)) {
				d->corrupt++;
				s++;
				continue;
			}
			if (find(d, h->d_name, len, hash_name(h->d_name, len))) { /* a second entry of one name */
				d->corrupt++;
				s += h->d_nslots;
				continue;
			}
			struct dentry *e = dentry_new(h->d_name, len, h->d_ino, h->d_type);
			if (!e || insert(d, e) < 0) {
				free(e);
				ret = poise_err(ENOMEM, "out of memory");
				goto out;
			}
			e->blk = b;
			e->slot = (uint8_t)s;
			e->nslots = h->d_nslots;
			mark_slots(d, b, s, h->d_nslots, 1);
			s += h->d_nslots;
		}
	}
out:
	free(buf);
	if (ret < 0) {
		if (d)
			dir_free(d);
		return ret;
	}
	dp->dir = d;
	return 0;
}

void dir_free(struct dir *d)
{
	for (size_t i = 0; i < d->cap; i++)
		if (d->tab[i] && d->tab[i] != TOMB)
			free(d->tab[i]);
	for (size_t i = 0; i < d->npend; i++)
		if (d->pend[i].kind == 0)
			free(d->pend[i].e);
	free(d->tab);
	free(d->slots);
	free(d->pend);
	free(d);
}

int dir_lookup(struct inode *dp, const char *name, size_t len, uint64_t *ino, uint8_t *type)
{
	struct dentry **p = find(dp->dir, name, len, hash_name(name, len));
	if (!p)
		return -ENOENT;
	*ino = (*p)->ino;
	*type = (*p)->type;
	return 0;
}

size_t dir_count(struct inode *dp)
{
	return dp->dir->count;
}

size_t dir_corrupt(struct inode *dp)
{
	return dp->dir->corrupt;
}

static int pend_push(struct dir *d, int kind, struct dentry *e, uint64_t ino, uint8_t type)
{
	if (d->npend == d->pcap) {
		size_t cap = d->pcap ? d->pcap * 2 : 4;
		struct pend *p = realloc(d->pend, cap * sizeof(*p));
		if (!p)
			return poise_err(ENOMEM, "out of memory");
		d->pend = p;
		d->pcap = cap;
	}
	d->pend[d->npend++] = (struct pend){kind, e, ino, type};
	return 0;
}

/* A run of n free slots: 1 with *blk, *slot; or 0. */
static int free_run(struct dir *d, unsigned n, uint32_t *blk, unsigned *slot)
{
	uint64_t want = (n == 64 ? ~0ULL : ((1ULL << n) - 1));
	for (uint32_t b = d->nblocks; b-- > 0;) { /* newest blocks first */
		uint64_t used = d->slots[b];
		if (used == ~0ULL)
			continue;
		for (unsigned s = 0; s + n <= POISE_DSLOTS_PER_BLOCK; s++)
			if (!(used & (want << s))) {
				*blk = b;
				*slot = s;
				return 1;
			}
	}
	return 0;
}

/* Add one zeroed logical block (two copies) to the directory, in a
 * transaction of its own. */
static int dir_grow(struct poise_fs *fs, struct inode *dp)
{
	static const uint8_t zero[POISE_BLOCK];
	uint32_t b = dp->dir->nblocks;
	uint64_t prev = b ? dblk(dp, b - 1, 1) : 0, pb[2], got;
	int ret = alloc_blocks(fs, prev ? prev + 1 : 0, 1, &pb[0], &got);
	if (ret < 0)
		return ret;
	if ((ret = alloc_blocks(fs, pb[0] + 1, 1, &pb[1], &got)) < 0) {
		free_blocks(fs, pb[0], 1);
		return ret;
	}
	struct poise_extent *ne = malloc((dp->next + 2) * sizeof(*ne));
	struct tx *tx = tx_begin(fs);
	if (!ne || !tx || slots_grow(dp->dir, b + 1) < 0)
		ret = poise_err(ENOMEM, "out of memory");
	for (int i = 0; ret == 0 && i < 2; i++)
		if (poise_dev_store(fs->dev, pb[i] * POISE_BLOCK, zero, POISE_BLOCK) < 0)
			ret = poise_err(EIO, "directory %llu: cannot zero a new block", (unsigned long long)dp->ino);
	if (ret < 0) {
		free(ne);
		if (tx)
			tx_abort(tx);
		free_blocks(fs, pb[0], 1);
		free_blocks(fs, pb[1], 1);
		return ret;
	}
	dp->dir->nblocks = b; /* the slot map grows for real at commit */
	memcpy(ne, dp->ext, dp->next * sizeof(*ne));
	uint32_t n = dp->next;
	for (int i = 0; i < 2; i++) {
		uint64_t lb = 2 * (uint64_t)b + (uint64_t)i;
		if (n && ne[n - 1].e_pblk + ne[n - 1].e_len == pb[i] && ne[n - 1].e_lblk + ne[n - 1].e_len == lb)
			ne[n - 1].e_len++;
		else
			ne[n++] = (struct poise_extent){.e_lblk = lb, .e_pblk = pb[i], .e_len = 1};
	}
	struct poise_dinode nd = dp->d;
	struct ext_change ch;
	nd.i_size = (uint64_t)(b + 1) * 2 * POISE_BLOCK;
	nd.i_mtime_ns = nd.i_ctime_ns = now_ns();
	ret = ext_store(tx, fs, dp, &nd, ne, n, &ch);
	free(ne);
	if (ret == 0)
		ret = istore(tx, dp, &nd);
	if (ret == 0)
		ret = tx_commit(tx);
	else
		tx_abort(tx);
	if (ret < 0) {
		ext_abort(fs, &ch);
		free_blocks(fs, pb[0], 1);
		free_blocks(fs, pb[1], 1);
		return ret;
	}
	ext_commit(fs, dp, &ch);
	dp->d = nd;
	dp->dir->nblocks = b + 1;
	return 0;
}

static int write_entry(struct tx *tx, struct inode *dp, const struct dentry *e)
{
	uint8_t buf[16 + POISE_NAME_MAX];
	struct poise_dirent *h = (struct poise_dirent *)buf;
	uint64_t pblk = dblk(dp, e->blk, 0), rblk = dblk(dp, e->blk, 1);
	if (!pblk || !rblk)
		return poise_err(EUCLEAN, "directory %llu: block %u is a hole",
				 (unsigned long long)dp->ino, e->blk);
	memset(h, 0, sizeof(*h));
	h->d_ino = e->ino;
	h->d_name_len = e->len;
	h->d_type = e->type;
	h->d_nslots = e->nslots;
	memcpy(h->d_name, e->name, e->len);
	h->d_crc = dirent_crc(h, e->name);
	int ret = tx_write(tx, pblk * POISE_BLOCK + (uint64_t)e->slot * POISE_DSLOT, buf, 16u + e->len);
	return ret ? ret : tx_write(tx, rblk * POISE_BLOCK + (uint64_t)e->slot * POISE_DSLOT, buf, 16u + e->len);
}

int dir_add(struct tx *tx, struct poise_fs *fs, struct inode *dp, const char *name, size_t len,
	    uint64_t ino, uint8_t type)
{
	struct dir *d = dp->dir;
	unsigned n = POISE_DIRENT_SLOTS(len), slot;
	uint32_t blk;
	int ret;
	while (!free_run(d, n, &blk, &slot))
		if ((ret = dir_grow(fs, dp)) < 0)
			return ret;
	struct dentry *e = dentry_new(name, len, ino, type);
	if (!e)
		return poise_err(ENOMEM, "out of memory");
	e->blk = blk;
	e->slot = (uint8_t)slot;
	e->nslots = (uint8_t)n;
	if ((ret = write_entry(tx, dp, e)) < 0 || (ret = pend_push(d, 0, e, ino, type)) < 0) {
		free(e);
		return ret;
	}
	mark_slots(d, blk, slot, n, 1);
	return 0;
}

int dir_remove(struct tx *tx, struct poise_fs *fs, struct inode *dp, const char *name, size_t len)
{
	(void)fs;
	struct dentry **p = find(dp->dir, name, len, hash_name(name, len));
	if (!p)
		return -ENOENT;
	struct dentry *e = *p;
	/* zero every slot the entry held: stale name bytes in a continuation
	 * slot must never read as an entry header later */
	static const uint8_t zero[POISE_DSLOT * POISE_DIRENT_SLOTS(POISE_NAME_MAX)];
	uint64_t off = (uint64_t)e->slot * POISE_DSLOT;
	int ret = tx_write(tx, dblk(dp, e->blk, 0) * POISE_BLOCK + off, zero, (uint32_t)e->nslots * POISE_DSLOT);
	if (ret == 0) /* and its copy */
		ret = tx_write(tx, dblk(dp, e->blk, 1) * POISE_BLOCK + off, zero, (uint32_t)e->nslots * POISE_DSLOT);
	return ret < 0 ? ret : pend_push(dp->dir, 1, e, 0, 0);
}

int dir_retarget(struct tx *tx, struct poise_fs *fs, struct inode *dp, const char *name,
		 size_t len, uint64_t ino, uint8_t type)
{
	(void)fs;
	struct dentry **p = find(dp->dir, name, len, hash_name(name, len));
	if (!p)
		return -ENOENT;
	struct dentry *e = *p;
	struct dentry *img = malloc(sizeof(*img) + e->len + 1);
	if (!img)
		return poise_err(ENOMEM, "out of memory");
	memcpy(img, e, sizeof(*e) + e->len + 1);
	img->ino = ino;
	img->type = type;
	int ret = write_entry(tx, dp, img);
	free(img);
	return ret < 0 ? ret : pend_push(dp->dir, 2, e, ino, type);
}

void dir_commit(struct inode *dp)
{
	struct dir *d = dp->dir;
	for (size_t i = 0; i < d->npend; i++) {
		struct pend *p = &d->pend[i];
		if (p->kind == 0) {
			if (insert(d, p->e) < 0)
				free(p->e); /* out of memory: the entry is on media; fsck/remount see it */
		} else if (p->kind == 1) {
			struct dentry **slot = find(d, p->e->name, p->e->len, p->e->hash);
			if (slot && *slot == p->e) {
				*slot = TOMB;
				d->count--;
				mark_slots(d, p->e->blk, p->e->slot, p->e->nslots, 0);
				free(p->e);
			}
		} else {
			p->e->ino = p->ino;
			p->e->type = p->type;
		}
	}
	d->npend = 0;
}

void dir_abort(struct inode *dp)
{
	struct dir *d = dp->dir;
	for (size_t i = 0; i < d->npend; i++)
		if (d->pend[i].kind == 0) {
			mark_slots(d, d->pend[i].e->blk, d->pend[i].e->slot, d->pend[i].e->nslots, 0);
			free(d->pend[i].e);
		}
	d->npend = 0;
}

int dir_snapshot(struct inode *dp, struct poise_dirent_snap **out, size_t *n)
{
	struct dir *d = dp->dir;
	struct poise_dirent_snap *s = malloc((d->count ? d->count : 1) * sizeof(*s));
	size_t k = 0;
	if (!s)
		return poise_err(ENOMEM, "out of memory");
	for (size_t i = 0; i < d->cap; i++) {
		struct dentry *e = d->tab[i];
		if (!e || e == TOMB)
			continue;
		s[k].ino = e->ino;
		s[k].type = e->type;
		memcpy(s[k].name, e->name, e->len + 1u);
		k++;
	}
	*out = s;
	*n = k;
	return 0;
}
