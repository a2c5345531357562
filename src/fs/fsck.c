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
 * Single-threaded: it owns the pool while it runs.
 */
#include "fs/fsck.h"
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

struct poise_pool;
struct poise_fs *poise_pool_fs(struct poise_pool *p);

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

int poise_fsck(const char *path, unsigned flags, struct poise_fsck_report *r)
{
	struct poise_pool *pool;
	int repair = !!(flags & POISE_FSCK_REPAIR);
	memset(r, 0, sizeof(*r));
	int ret = poise_pool_open(path, 0, &pool);
	if (ret < 0) {
		if (ret == -EUCLEAN || ret == -EIO) {
			report(r, "superblock", 0, "%s", poise_errmsg());
			return 0;
		}
		return ret;
	}
	r->mounted = 1;
	struct poise_fs *fs = poise_pool_fs(pool);
	uint64_t N = fs->sb.s_ninodes;

	/* superblock replica */
	struct poise_super rep;
	if (poise_dev_read(fs->dev, fs->sb.s_replica_blk * POISE_BLOCK, &rep, sizeof(rep)) != sizeof(rep) ||
	    memcmp(&rep, &fs->sb, sizeof(rep))) {
		struct poise_fsck_problem *p = report(r, "superblock", 0, "the superblock replica differs from the primary");
		if (p && repair &&
		    poise_dev_write(fs->dev, fs->sb.s_replica_blk * POISE_BLOCK, &fs->sb, sizeof(fs->sb)) == sizeof(fs->sb))
			p->repaired = 1;
	}
	int pend = log_pending(fs);
	if (pend > 0)
		report(r, "log", 0, "%d committed transactions remain in the log after replay", pend);

	struct odd {
		uint64_t dir, ino;
		char name[POISE_NAME_MAX + 1];
	} *odd = NULL;
	size_t nodd = 0, codd = 0;
	uint8_t *by_parent = calloc(N + 1, 1); /* named in the directory its i_parent names */
	uint32_t *refs = calloc(N + 1, sizeof(uint32_t));
	uint32_t *subdirs = calloc(N + 1, sizeof(uint32_t));
	uint64_t *named_in = calloc(N + 1, sizeof(uint64_t));
	uint64_t *owner = calloc(fs->nblocks, sizeof(uint64_t));
	struct inode **ips = calloc(N + 1, sizeof(*ips));
	struct names_count nc = {refs, subdirs, named_in};
	if (!refs || !subdirs || !named_in || !owner || !ips || !by_parent) {
		ret = poise_err(ENOMEM, "out of memory");
		goto out;
	}
	/* pass 1: every inode, its blocks */
	for (uint64_t ino = 1; ino <= N; ino++) {
		struct poise_dinode d;
		if (dinode_read(fs, ino, &d) < 0) { /* both copies lost */
			report(r, "inode", ino, "%s", poise_errmsg());
			continue;
		}
		if (d.i_mode == 0 && d.i_crc == 0)
			continue;
		if (d.i_mode == 0)
			continue;
		if (!S_ISREG(d.i_mode) && !S_ISDIR(d.i_mode) && !S_ISLNK(d.i_mode)) {
			report(r, "inode", ino, "inode %llu has an unknown type (mode %o)", (unsigned long long)ino, d.i_mode);
			continue;
		}
		struct inode *ip;
		if ((ret = iget(fs, ino, &ip)) < 0) {
			report(r, "inode", ino, "%s", poise_errmsg());
			continue;
		}
		ips[ino] = ip;
		struct poise_dinode rd;
		if (poise_dev_read(fs->dev, ino_roff(fs, ino), &rd, sizeof(rd)) != sizeof(rd) ||
		    memcmp(&rd, &d, sizeof(d))) {
			struct poise_fsck_problem *p = report(r, "inode", ino, "inode %llu: the replica differs from the primary",
							      (unsigned long long)ino);
			if (p && repair)
				p->repaired = poise_dev_write(fs->dev, ino_roff(fs, ino), &d, sizeof(d)) == sizeof(d);
		}
		r->inodes_used++;
		if (S_ISDIR(d.i_mode))
			r->dirs++;
		else if (S_ISREG(d.i_mode))
			r->files++;
		else
			r->symlinks++;
		uint64_t held = ip->nchain;
		uint64_t meta[2] = {ip->d.i_xattr_blk, ip->d.i_xattr_rblk}; /* the attribute pair */
		for (uint32_t c = 0; c < ip->nchain + 2; c++) {
			uint64_t b = c < ip->nchain ? ip->chain[c] : meta[c - ip->nchain];
			if (c >= ip->nchain && !b)
				continue;
			if (c >= ip->nchain && (b < fs->data_blk || b >= fs->data_end)) {
				report(r, "xattr", ino, "inode %llu: attribute block %llu out of range", (unsigned long long)ino,
				       (unsigned long long)b);
				continue;
			}
			held += c >= ip->nchain;
			if (owner[b])
				report(r, "blocks", ino, "block %llu is claimed by inodes %llu and %llu",
				       (unsigned long long)b, (unsigned long long)owner[b], (unsigned long long)ino);
			owner[b] = ino;
		}
		if (ip->d.i_xattr_blk && xattr_list(fs, ip, NULL, 0) < 0)
			report(r, "xattr", ino, "%s", poise_errmsg());
		for (uint32_t i = 0; i < ip->next; i++) {
			held += ip->ext[i].e_len;
			for (uint64_t b = ip->ext[i].e_pblk; b < ip->ext[i].e_pblk + ip->ext[i].e_len; b++) {
				if (owner[b] && owner[b] != ino) {
					report(r, "blocks", ino, "block %llu is claimed by inodes %llu and %llu",
					       (unsigned long long)b, (unsigned long long)owner[b], (unsigned long long)ino);
					break;
				}
				owner[b] = ino;
			}
		}
		if (held != ip->d.i_blocks) {
			struct poise_fsck_problem *p = report(r, "blocks", ino, "inode %llu counts %llu blocks but holds %llu",
							      (unsigned long long)ino, (unsigned long long)ip->d.i_blocks,
							      (unsigned long long)held);
			if (p && repair) {
				struct poise_dinode nd = ip->d;
				nd.i_blocks = held;
				p->repaired = tx_one(fs, ip, &nd) == 0;
			}
		}
		if (S_ISDIR(d.i_mode) && ip->d.i_size % (2 * POISE_BLOCK))
			report(r, "inode", ino, "directory %llu has size %llu, not a whole number of block pairs",
			       (unsigned long long)ino, (unsigned long long)ip->d.i_size);
		/* a directory's blocks come in pairs: block 2b and its copy 2b+1 */
		for (uint64_t b = 0; S_ISDIR(d.i_mode) && b < ip->d.i_size / (2 * POISE_BLOCK); b++) {
			static uint8_t pa[POISE_BLOCK], pr[POISE_BLOCK];
			uint64_t run, p0 = imap(ip, 2 * b, &run), p1 = imap(ip, 2 * b + 1, &run);
			if (!p0 || !p1 || poise_dev_read(fs->dev, p0 * POISE_BLOCK, pa, POISE_BLOCK) != POISE_BLOCK ||
			    poise_dev_read(fs->dev, p1 * POISE_BLOCK, pr, POISE_BLOCK) != POISE_BLOCK ||
			    memcmp(pa, pr, POISE_BLOCK)) {
				struct poise_fsck_problem *p = report(r, "dirent", ino, "directory %llu: block %llu and its replica differ",
								      (unsigned long long)ino, (unsigned long long)b);
				if (p && repair && p0 && p1 && poise_dev_read(fs->dev, p0 * POISE_BLOCK, pa, POISE_BLOCK) == POISE_BLOCK)
					p->repaired = poise_dev_write(fs->dev, p1 * POISE_BLOCK, pa, POISE_BLOCK) == POISE_BLOCK;
			}
		}
		if (S_ISREG(d.i_mode) && ip->d.i_size > POISE_MAX_FILE_SIZE)
			report(r, "inode", ino, "file %llu has size %llu, past the largest the format allows (%llu)",
			       (unsigned long long)ino, (unsigned long long)ip->d.i_size,
			       (unsigned long long)POISE_MAX_FILE_SIZE);
		if (S_ISLNK(d.i_mode) && (ip->d.i_size == 0 || ip->d.i_size >= POISE_BLOCK))
			report(r, "inode", ino, "symlink %llu has length %llu", (unsigned long long)ino,
			       (unsigned long long)ip->d.i_size);
	}
	/* pass 2: directory entries */
	for (uint64_t ino = 1; ino <= N; ino++) {
		struct inode *dp = ips[ino];
		if (!dp || !S_ISDIR(dp->d.i_mode))
			continue;
		if (dir_corrupt(dp))
			report(r, "dirent", ino, "directory %llu has %zu corrupt entries", (unsigned long long)ino,
			       dir_corrupt(dp));
		struct poise_dirent_snap *e;
		size_t n;
		if (dir_snapshot(dp, &e, &n) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			uint64_t t = e[i].ino;
			struct inode *tp = t <= N ? ips[t] : NULL;
			uint8_t want = tp ? (S_ISDIR(tp->d.i_mode) ? DT_DIR : S_ISLNK(tp->d.i_mode) ? DT_LNK : DT_REG) : 0;
			if (!tp || e[i].type != want) {
				struct poise_fsck_problem *p = report(r, "dirent", ino, "directory %llu: entry '%s' names %s inode %llu",
								      (unsigned long long)ino, e[i].name,
								      tp ? "a differently typed" : "a free or corrupt",
								      (unsigned long long)t);
				if (p && repair)
					p->repaired = remove_entry(fs, dp, e[i].name) == 0;
				continue;
			}
			if (S_ISDIR(tp->d.i_mode) && tp->d.i_parent == ino)
				by_parent[t] = 1;
			if (S_ISDIR(tp->d.i_mode) && tp->d.i_parent != ino) { /* decided below */
				if (nodd == codd) {
					codd = codd ? 2 * codd : 16;
					struct odd *o = realloc(odd, codd * sizeof(*odd));
					if (!o) {
						free(e);
						ret = poise_err(ENOMEM, "out of memory");
						goto out;
					}
					odd = o;
				}
				odd[nodd].dir = ino;
				odd[nodd].ino = t;
				snprintf(odd[nodd].name, sizeof(odd[nodd].name), "%s", e[i].name);
				nodd++;
				continue;
			}
			count_name(r, &nc, ino, t, tp);
		}
		free(e);
	}
	/* pass 2b: entries naming a directory whose parent pointer names
	 * another directory.  When that parent names it too, this entry is a
	 * second name or a cycle (an ancestor named again below itself): it is
	 * reported, removed by --repair, and never counted (a count raised for
	 * it would call the image clean).  Otherwise it is the only name and
	 * the parent pointer is what is wrong (pass 3). */
	for (size_t i = 0; i < nodd; i++) {
		uint64_t t = odd[i].ino, dino = odd[i].dir;
		struct inode *tp = ips[t], *dp = ips[dino];
		if (!by_parent[t] && t != dino) {
			count_name(r, &nc, dino, t, tp);
			continue;
		}
		struct poise_fsck_problem *p =
			report(r, "dirent", dino, "directory %llu: entry '%s' names directory %llu, which is named in "
			       "its parent %llu (a cycle or a second name)", (unsigned long long)dino, odd[i].name,
			       (unsigned long long)t, (unsigned long long)tp->d.i_parent);
		if (p && repair)
			p->repaired = remove_entry(fs, dp, odd[i].name) == 0;
	}
	/* pass 3: link counts, parents, reachability */
	for (uint64_t ino = 1; ino <= N; ino++) {
		struct inode *ip = ips[ino];
		if (!ip)
			continue;
		int dir = S_ISDIR(ip->d.i_mode);
		uint32_t want = dir ? 2 + subdirs[ino] : refs[ino];
		if (ino == POISE_QUARANTINE_INO) { /* never named; holds quarantined blocks */
			if (dir || refs[ino] || ip->d.i_nlink != 1)
				report(r, "inode", ino, "the quarantine inode is not what the format says");
			for (uint32_t i = 0; i < ip->next; i++)
				if (ip->ext[i].e_lblk != ip->ext[i].e_pblk)
					report(r, "inode", ino, "quarantine extent %u does not map a block to itself", i);
			continue;
		}
		if (ino != POISE_ROOT_INO && refs[ino] == 0) {
			struct poise_fsck_problem *p = report(r, "orphan", ino, "inode %llu is in use but has no name",
							      (unsigned long long)ino);
			if (p && repair) {
				char name[64];
				struct stat st;
				if (poise_stat(pool, "/lost+found", &st) < 0)
					poise_mkdir(pool, "/lost+found", 0700);
				snprintf(name, sizeof(name), "/lost+found/#%llu", (unsigned long long)ino);
				struct inode *lf;
				if (poise_stat(pool, "/lost+found", &st) == 0 && iget(fs, st.st_ino, &lf) == 0) {
					pthread_rwlock_wrlock(&lf->lock);
					struct tx *tx = tx_begin(fs);
					struct poise_dinode nd = ip->d, lnd;
					int rr = tx ? dir_add(tx, fs, lf, name + 12, strlen(name + 12), ino,
							      dir ? DT_DIR : S_ISLNK(ip->d.i_mode) ? DT_LNK : DT_REG)
						    : -ENOMEM;
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
						refs[ino] = 1;
						p->repaired = 1;
					} else {
						dir_abort(lf);
					}
					pthread_rwlock_unlock(&lf->lock);
				}
			}
			continue;
		}
		if (ip->d.i_nlink != want) {
			struct poise_fsck_problem *p = report(r, "nlink", ino, "inode %llu has link count %u, names say %u",
							      (unsigned long long)ino, ip->d.i_nlink, want);
			if (p && repair) {
				struct poise_dinode nd = ip->d;
				nd.i_nlink = want;
				p->repaired = tx_one(fs, ip, &nd) == 0;
			}
		}
		if (dir && ino != POISE_ROOT_INO && named_in[ino] && ip->d.i_parent != named_in[ino]) {
			struct poise_fsck_problem *p = report(r, "dirent", ino, "directory %llu says its parent is %llu, but %llu names it",
							      (unsigned long long)ino, (unsigned long long)ip->d.i_parent,
							      (unsigned long long)named_in[ino]);
			if (p && repair) {
				struct poise_dinode nd = ip->d;
				nd.i_parent = named_in[ino];
				p->repaired = tx_one(fs, ip, &nd) == 0;
				ip->parent = ip->d.i_parent;
			}
		}
	}
	/* free space */
	uint64_t used = 0;
	for (uint64_t b = fs->data_blk; b < fs->data_end; b++)
		used += owner[b] != 0;
	r->blocks_used = used;
	r->blocks_free = fs->data_end - fs->data_blk - used;
	if (__atomic_load_n(&fs->nfree, __ATOMIC_RELAXED) != r->blocks_free)
		report(r, "space", 0, "the allocator counts %llu free blocks, the inodes leave %llu",
		       (unsigned long long)fs->nfree, (unsigned long long)r->blocks_free);
	ret = 0;
out:
	free(odd);
	free(by_parent);
	free(refs);
	free(subdirs);
	free(named_in);
	free(owner);
	free(ips);
	poise_pool_close(&pool);
	return ret;
}
