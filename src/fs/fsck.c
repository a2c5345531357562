/*
 * fsck.c - the checker.  It recovers like a mount (log replay, orphan
 * reclaim), then checks every invariant of the format on the mounted state:
 *   superblock == replica; no committed record left in the log;
 *   every dinode in use passes its checksum, equals its replica, and has a
 *   known type;
 *   extents and chains are valid (iget), no block is claimed twice, and
 *   i_blocks matches what the inode holds;
 *   directories: size = blocks, entries pass checksums, point at inodes in
 *   use with the right type; every directory is named once and its parent
 *   pointer names its parent; link counts match the names (2 + subdirs for
 *   a directory); every inode in use is reachable from the root;
 *   the free-block count equals the blocks nobody holds;
 *   inode 2 (quarantine) is unnamed and maps each block to itself.
 * With POISE_FSCK_REPAIR it rewrites the replica, removes dangling entries,
 * fixes link counts, and names unreachable inodes in /lost+found.
 * The passes, in order, share one struct check: pass_super (superblock
 * replica, log), pass_inodes (1: every inode, its replica, type, blocks:
 * inode_blocks, directory block pairs: dir_pairs, sizes), pass_entries (2:
 * every entry, names counted), pass_odd_entries (2b: second names and
 * cycles), pass_links (3: link counts, parents, orphans: adopt), pass_space.
 * Single-threaded: it owns the pool while it runs.
 */
#include "poise-admin.h"
#include "fs/api.h"
#include "common/ebr.h"
#include "fs/fs.h"
#include "poise.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


static struct poise_fsck_problem *report(struct poise_fsck_report *r, const char *kind, uint64_t ino,
					 const char *fmt, ...)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct poise_fsck_problem *p = realloc(r->p, cap * sizeof(*p));
		if (!p)
			return NULL;
		r->p = p;
		r->cap = cap;
	}
	struct poise_fsck_problem *p = &r->p[r->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->kind, sizeof(p->kind), "%s", kind);
	p->ino = ino;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
	va_end(ap);
	return p;
}

void poise_fsck_free(struct poise_fsck_report *r)
{
	free(r->p);
	memset(r, 0, sizeof(*r));
}

static int tx_one(struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd)
{
	struct tx *tx = tx_begin(fs);
	if (!tx)
		return -ENOMEM;
	int ret = istore(tx, ip, nd);
	ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
	if (ret == 0)
		ip->d = *nd;
	return ret;
}

/* What the names of pass 2 add up to, for pass 3. */
struct names_count {
	uint32_t *refs;     /* names of each inode */
	uint32_t *subdirs;  /* subdirectories of each directory */
	uint64_t *named_in; /* the directory naming each directory */
};

/* Count the entry of directory dino that names inode t. */
static void count_name(struct poise_fsck_report *r, struct names_count *nc, uint64_t dino, uint64_t t,
		       const struct inode *tp)
{
	nc->refs[t]++;
	if (!S_ISDIR(tp->d.i_mode))
		return;
	nc->subdirs[dino]++;
	if (nc->named_in[t])
		report(r, "dirent", t, "directory %llu has two names", (unsigned long long)t);
	nc->named_in[t] = dino;
}

/* Remove the entry name of directory dp (repair). */
static int remove_entry(struct poise_fs *fs, struct inode *dp, const char *name)
{
	struct tx *tx = tx_begin(fs);
	int rr = tx ? dir_remove(tx, fs, dp, name, strlen(name)) : -ENOMEM;
	if (tx)
		rr = rr ? (tx_abort(tx), rr) : tx_commit(tx);
	if (rr == 0)
		dir_commit(dp);
	else
		dir_abort(dp);
	return rr;
}

/* One run of the checker: the pool, what the passes learn, the report. */
struct check {
	struct poise_pool *pool;
	struct poise_fs *fs;
	struct poise_fsck_report *r;
	int repair;
	uint64_t N;             /* inodes */
	struct inode **ips;     /* the inodes in use (pass 1) */
	uint64_t *owner;        /* the inode holding each block (pass 1) */
	uint8_t *by_parent;     /* named in the directory its i_parent names (pass 2) */
	struct names_count nc;  /* the names of each inode (passes 2, 2b) */
	struct odd {            /* entries naming a directory whose parent is another (pass 2) */
		uint64_t dir, ino;
		char name[POISE_NAME_MAX + 1];
	} *odd;
	size_t nodd, codd;
};

/* The superblock's replica, and the log after replay. */
static void pass_super(struct check *c)
{
	struct poise_fs *fs = c->fs;
	struct poise_super rep;
	if (poise_dev_read(fs->dev, fs->sb.s_replica_blk * POISE_BLOCK, &rep, sizeof(rep)) != sizeof(rep) ||
	    memcmp(&rep, &fs->sb, sizeof(rep))) {
		struct poise_fsck_problem *p = report(c->r, "superblock", 0, "the superblock replica differs from the primary");
		if (p && c->repair &&
		    poise_dev_write(fs->dev, fs->sb.s_replica_blk * POISE_BLOCK, &fs->sb, sizeof(fs->sb)) == sizeof(fs->sb))
			p->repaired = 1;
	}
	int pend = log_pending(fs);
	if (pend > 0)
		report(c->r, "log", 0, "%d committed transactions remain in the log after replay", pend);
}

/* Pass 1, blocks: claim every block ip holds (chain, attribute pair,
 * extents) in c->owner, and check i_blocks against them. */
static void inode_blocks(struct check *c, struct inode *ip)
{
	struct poise_fs *fs = c->fs;
	uint64_t ino = ip->ino, *owner = c->owner;
	uint64_t held = ip->nchain;
	uint64_t meta[2] = {ip->d.i_xattr_blk, ip->d.i_xattr_rblk}; /* the attribute pair */
	for (uint32_t k = 0; k < ip->nchain + 2; k++) {
		uint64_t b = k < ip->nchain ? ip->chain[k] : meta[k - ip->nchain];
		if (k >= ip->nchain && !b)
			continue;
		if (k >= ip->nchain && (b < fs->data_blk || b >= fs->data_end)) {
			report(c->r, "xattr", ino, "inode %llu: attribute block %llu out of range", (unsigned long long)ino,
			       (unsigned long long)b);
			continue;
		}
		held += k >= ip->nchain;
		if (owner[b])
			report(c->r, "blocks", ino, "block %llu is claimed by inodes %llu and %llu", (unsigned long long)b,
			       (unsigned long long)owner[b], (unsigned long long)ino);
		owner[b] = ino;
	}
	if (ip->d.i_xattr_blk && xattr_list(fs, ip, NULL, 0) < 0)
		report(c->r, "xattr", ino, "%s", poise_errmsg());
	for (uint32_t i = 0; i < ip->next; i++) {
		held += ip->ext[i].e_len;
		for (uint64_t b = ip->ext[i].e_pblk; b < ip->ext[i].e_pblk + ip->ext[i].e_len; b++) {
			if (owner[b] && owner[b] != ino) {
				report(c->r, "blocks", ino, "block %llu is claimed by inodes %llu and %llu",
				       (unsigned long long)b, (unsigned long long)owner[b], (unsigned long long)ino);
				break;
			}
			owner[b] = ino;
		}
	}
	if (held != ip->d.i_blocks) {
		struct poise_fsck_problem *p = report(c->r, "blocks", ino, "inode %llu counts %llu blocks but holds %llu",
						      (unsigned long long)ino, (unsigned long long)ip->d.i_blocks,
						      (unsigned long long)held);
		if (p && c->repair) {
			struct poise_dinode nd = ip->d;
			nd.i_blocks = held;
			p->repaired = tx_one(fs, ip, &nd) == 0;
		}
	}
}

/* Pass 1, directories: whole block pairs, each block equal to its copy
 * (block 2b and 2b+1). */
static void dir_pairs(struct check *c, struct inode *ip)
{
	struct poise_fs *fs = c->fs;
	uint64_t ino = ip->ino;
	if (ip->d.i_size % (2 * POISE_BLOCK))
		report(c->r, "inode", ino, "directory %llu has size %llu, not a whole number of block pairs",
		       (unsigned long long)ino, (unsigned long long)ip->d.i_size);
	for (uint64_t b = 0; b < ip->d.i_size / (2 * POISE_BLOCK); b++) {
		static uint8_t pa[POISE_BLOCK], pr[POISE_BLOCK]; /* single-threaded (head comment) */
		uint64_t run, p0 = imap(ip, 2 * b, &run), p1 = imap(ip, 2 * b + 1, &run);
		if (p0 && p1 && poise_dev_read(fs->dev, p0 * POISE_BLOCK, pa, POISE_BLOCK) == POISE_BLOCK &&
		    poise_dev_read(fs->dev, p1 * POISE_BLOCK, pr, POISE_BLOCK) == POISE_BLOCK && !memcmp(pa, pr, POISE_BLOCK))
			continue;
		struct poise_fsck_problem *p = report(c->r, "dirent", ino, "directory %llu: block %llu and its replica differ",
						      (unsigned long long)ino, (unsigned long long)b);
		if (p && c->repair && p0 && p1 && poise_dev_read(fs->dev, p0 * POISE_BLOCK, pa, POISE_BLOCK) == POISE_BLOCK)
			p->repaired = poise_dev_write(fs->dev, p1 * POISE_BLOCK, pa, POISE_BLOCK) == POISE_BLOCK;
	}
}

/* Pass 1: every inode in use, its replica, type, blocks and size. */
static void pass_inodes(struct check *c)
{
	struct poise_fs *fs = c->fs;
	struct poise_fsck_report *r = c->r;
	for (uint64_t ino = 1; ino <= c->N; ino++) {
		struct poise_dinode d;
		if (dinode_read(fs, ino, &d) < 0) { /* both copies lost */
			report(r, "inode", ino, "%s", poise_errmsg());
			continue;
		}
		if (d.i_mode == 0)
			continue;
		if (dinode_type_check(fs, ino, &d) < 0) {
			report(r, "inode", ino, "%s", poise_errmsg());
			continue;
		}
		struct inode *ip;
		if (iget(fs, ino, &ip) < 0) {
			report(r, "inode", ino, "%s", poise_errmsg());
			continue;
		}
		c->ips[ino] = ip;
		struct poise_dinode rd;
		if (poise_dev_read(fs->dev, ino_roff(fs, ino), &rd, sizeof(rd)) != sizeof(rd) ||
		    memcmp(&rd, &d, sizeof(d))) {
			struct poise_fsck_problem *p = report(r, "inode", ino, "inode %llu: the replica differs from the primary",
							      (unsigned long long)ino);
			if (p && c->repair)
				p->repaired = poise_dev_write(fs->dev, ino_roff(fs, ino), &d, sizeof(d)) == sizeof(d);
		}
		r->inodes_used++;
		if (S_ISDIR(d.i_mode))
			r->dirs++;
		else if (S_ISREG(d.i_mode))
			r->files++;
		else if (S_ISLNK(d.i_mode))
			r->symlinks++;
		inode_blocks(c, ip);
		if (S_ISDIR(d.i_mode))
			dir_pairs(c, ip);
		if (S_ISREG(d.i_mode) && ip->d.i_size > POISE_MAX_FILE_SIZE)
			report(r, "inode", ino, "file %llu has size %llu, past the largest the format allows (%llu)",
			       (unsigned long long)ino, (unsigned long long)ip->d.i_size,
			       (unsigned long long)POISE_MAX_FILE_SIZE);
		if (S_ISLNK(d.i_mode) && (ip->d.i_size == 0 || ip->d.i_size >= POISE_BLOCK))
			report(r, "inode", ino, "symlink %llu has length %llu", (unsigned long long)ino,
			       (unsigned long long)ip->d.i_size);
	}
}

/* Keep an entry of directory dino naming directory t for pass 2b. */
static int keep_odd(struct check *c, uint64_t dino, uint64_t t, const char *name)
{
	if (c->nodd == c->codd) {
		size_t cap = c->codd ? 2 * c->codd : 16;
		struct odd *o = realloc(c->odd, cap * sizeof(*o));
		if (!o)
			return poise_err(ENOMEM, "out of memory");
		c->odd = o;
		c->codd = cap;
	}
	struct odd *o = &c->odd[c->nodd++];
	o->dir = dino;
	o->ino = t;
	snprintf(o->name, sizeof(o->name), "%s", name);
	return 0;
}

/* Pass 2: every directory's entries name inodes in use of their type;
 * count the names.  0 or -ENOMEM. */
static int pass_entries(struct check *c)
{
	for (uint64_t ino = 1; ino <= c->N; ino++) {
		struct inode *dp = c->ips[ino];
		if (!dp || !S_ISDIR(dp->d.i_mode))
			continue;
		if (dir_corrupt(dp))
			report(c->r, "dirent", ino, "directory %llu has %zu corrupt entries", (unsigned long long)ino,
			       dir_corrupt(dp));
		struct poise_dirent_snap *e;
		size_t n;
		if (dir_snapshot(dp, &e, &n) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			uint64_t t = e[i].ino;
			struct inode *tp = t <= c->N ? c->ips[t] : NULL;
			uint8_t want = tp ? dtype_of(tp->d.i_mode) : 0;
			if (!tp || e[i].type != want) {
				struct poise_fsck_problem *p = report(c->r, "dirent", ino, "directory %llu: entry '%s' names %s inode %llu",
								      (unsigned long long)ino, e[i].name,
								      tp ? "a differently typed" : "a free or corrupt",
								      (unsigned long long)t);
				if (p && c->repair)
					p->repaired = remove_entry(c->fs, dp, e[i].name) == 0;
				continue;
			}
			if (S_ISDIR(tp->d.i_mode) && tp->d.i_parent == ino)
				c->by_parent[t] = 1;
			if (S_ISDIR(tp->d.i_mode) && tp->d.i_parent != ino) { /* decided in pass 2b */
				if (keep_odd(c, ino, t, e[i].name) < 0) {
					free(e);
					return -ENOMEM;
				}
				continue;
			}
			count_name(c->r, &c->nc, ino, t, tp);
		}
		free(e);
	}
	return 0;
}

/* Pass 2b: entries naming a directory whose parent pointer names another
 * directory.  When that parent names it too, this entry is a second name
 * or a cycle (an ancestor named again below itself): it is reported,
 * removed by --repair, and never counted (a count raised for it would call
 * the image clean).  Otherwise it is the only name and the parent pointer
 * is what is wrong (pass 3). */
static void pass_odd_entries(struct check *c)
{
	for (size_t i = 0; i < c->nodd; i++) {
		uint64_t t = c->odd[i].ino, dino = c->odd[i].dir;
		struct inode *tp = c->ips[t], *dp = c->ips[dino];
		if (!c->by_parent[t] && t != dino) {
			count_name(c->r, &c->nc, dino, t, tp);
			continue;
		}
		struct poise_fsck_problem *p =
			report(c->r, "dirent", dino, "directory %llu: entry '%s' names directory %llu, which is named in "
			       "its parent %llu (a cycle or a second name)", (unsigned long long)dino, c->odd[i].name,
			       (unsigned long long)t, (unsigned long long)tp->d.i_parent);
		if (p && c->repair)
			p->repaired = remove_entry(c->fs, dp, c->odd[i].name) == 0;
	}
}

/* Repair: name the unnamed inode ip in /lost+found (made when missing)
 * as #INO.  1 when it is named now. */
static int adopt(struct check *c, struct inode *ip)
{
	struct poise_fs *fs = c->fs;
	int dir = S_ISDIR(ip->d.i_mode);
	char name[64];
	struct stat st;
	if (poise_stat(c->pool, "/lost+found", &st) < 0)
		poise_mkdir(c->pool, "/lost+found", 0700);
	snprintf(name, sizeof(name), "/lost+found/#%llu", (unsigned long long)ip->ino);
	struct inode *lf;
	if (poise_stat(c->pool, "/lost+found", &st) < 0 || iget(fs, st.st_ino, &lf) < 0)
		return 0;
	pthread_rwlock_wrlock(&lf->lock);
	struct tx *tx = tx_begin(fs);
	struct poise_dinode nd = ip->d, lnd;
	int rr = tx ? dir_add(tx, fs, lf, name + 12, strlen(name + 12), ip->ino, dtype_of(ip->d.i_mode)) : -ENOMEM;
	lnd = lf->d;
	if (dir) {
		nd.i_parent = ip->parent = lf->ino;
		lnd.i_nlink++;
	} else {
		nd.i_nlink = 1;
	}
	if (rr == 0)
		rr = istore(tx, ip, &nd);
	if (rr == 0)
		rr = istore(tx, lf, &lnd);
	if (tx)
		rr = rr ? (tx_abort(tx), rr) : tx_commit(tx);
	if (rr == 0) {
		dir_commit(lf);
		ip->d = nd;
		lf->d = lnd;
		c->nc.refs[ip->ino] = 1;
	} else {
		dir_abort(lf);
	}
	pthread_rwlock_unlock(&lf->lock);
	return rr == 0;
}

/* Pass 3: link counts, parent pointers, reachability, the quarantine. */
static void pass_links(struct check *c)
{
	struct poise_fsck_report *r = c->r;
	for (uint64_t ino = 1; ino <= c->N; ino++) {
		struct inode *ip = c->ips[ino];
		if (!ip)
			continue;
		int dir = S_ISDIR(ip->d.i_mode);
		uint32_t want = dir ? 2 + c->nc.subdirs[ino] : c->nc.refs[ino];
		if (ino == POISE_QUARANTINE_INO) { /* never named; holds quarantined blocks */
			if (dir || c->nc.refs[ino] || ip->d.i_nlink != 1)
				report(r, "inode", ino, "the quarantine inode is not what the format says");
			for (uint32_t i = 0; i < ip->next; i++)
				if (ip->ext[i].e_lblk != ip->ext[i].e_pblk)
					report(r, "inode", ino, "quarantine extent %u does not map a block to itself", i);
			continue;
		}
		if (ino != POISE_ROOT_INO && c->nc.refs[ino] == 0) {
			struct poise_fsck_problem *p = report(r, "orphan", ino, "inode %llu is in use but has no name",
							      (unsigned long long)ino);
			if (p && c->repair)
				p->repaired = adopt(c, ip);
			continue;
		}
		if (ip->d.i_nlink != want) {
			struct poise_fsck_problem *p = report(r, "nlink", ino, "inode %llu has link count %u, names say %u",
							      (unsigned long long)ino, ip->d.i_nlink, want);
			if (p && c->repair) {
				struct poise_dinode nd = ip->d;
				nd.i_nlink = want;
				p->repaired = tx_one(c->fs, ip, &nd) == 0;
			}
		}
		uint64_t named_in = c->nc.named_in[ino];
		if (dir && ino != POISE_ROOT_INO && named_in && ip->d.i_parent != named_in) {
			struct poise_fsck_problem *p = report(r, "dirent", ino, "directory %llu says its parent is %llu, but %llu names it",
							      (unsigned long long)ino, (unsigned long long)ip->d.i_parent,
							      (unsigned long long)named_in);
			if (p && c->repair) {
				struct poise_dinode nd = ip->d;
				nd.i_parent = named_in;
				p->repaired = tx_one(c->fs, ip, &nd) == 0;
				ip->parent = ip->d.i_parent;
			}
		}
	}
}

/* Free space: the allocator's count against the blocks nobody holds. */
static void pass_space(struct check *c)
{
	struct poise_fs *fs = c->fs;
	uint64_t used = 0;
	for (uint64_t b = fs->data_blk; b < fs->data_end; b++)
		used += c->owner[b] != 0;
	c->r->blocks_used = used;
	c->r->blocks_free = fs->data_end - fs->data_blk - used;
	if (__atomic_load_n(&fs->nfree, __ATOMIC_RELAXED) != c->r->blocks_free)
		report(c->r, "space", 0, "the allocator counts %llu free blocks, the inodes leave %llu",
		       (unsigned long long)fs->nfree, (unsigned long long)c->r->blocks_free);
}

int poise_fsck(const char *path, unsigned flags, struct poise_fsck_report *r)
{
	EBR_SECTION();
	struct check c = {.r = r, .repair = !!(flags & POISE_FSCK_REPAIR)};
	memset(r, 0, sizeof(*r));
	int ret = poise_pool_open(path, 0, &c.pool);
	if (ret < 0) {
		if (ret == -EUCLEAN || ret == -EIO) {
			report(r, "superblock", 0, "%s", poise_errmsg());
			return 0;
		}
		return ret;
	}
	r->mounted = 1;
	c.fs = poise_pool_fs(c.pool);
	c.N = c.fs->sb.s_ninodes;
	pass_super(&c); /* needs no memory: done even when the tables below cannot be had */
	c.by_parent = calloc(c.N + 1, 1);
	c.nc.refs = calloc(c.N + 1, sizeof(uint32_t));
	c.nc.subdirs = calloc(c.N + 1, sizeof(uint32_t));
	c.nc.named_in = calloc(c.N + 1, sizeof(uint64_t));
	c.owner = calloc(c.fs->nblocks, sizeof(uint64_t));
	c.ips = calloc(c.N + 1, sizeof(*c.ips));
	if (!c.nc.refs || !c.nc.subdirs || !c.nc.named_in || !c.owner || !c.ips || !c.by_parent) {
		ret = poise_err(ENOMEM, "out of memory");
	} else {
		pass_inodes(&c);
		ret = pass_entries(&c);
		if (ret == 0) {
			pass_odd_entries(&c);
			pass_links(&c);
			pass_space(&c);
		}
	}
	free(c.odd);
	free(c.by_parent);
	free(c.nc.refs);
	free(c.nc.subdirs);
	free(c.nc.named_in);
	free(c.owner);
	free(c.ips);
	poise_pool_close(&c.pool);
	return ret;
}
