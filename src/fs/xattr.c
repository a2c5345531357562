/*
 * xattr.c - extended attributes: small name/value pairs of an inode (the
 * user.*, trusted.* and security.* namespaces, and the POSIX ACLs
 * system.posix_acl_access and system.posix_acl_default, kept in step with
 * the mode by acl.c), at most one block of them per inode.
 *
 * On media (layout.h): a block and its replica, named by the dinode's
 * i_xattr_blk/i_xattr_rblk.  A change builds the new block in DRAM, writes
 * it to a fresh pair of blocks (not logged: new blocks, made durable by the
 * commit's first fence), and one transaction switches the dinode to the
 * new pair; the old pair is freed after the commit.  So a change is atomic
 * across a crash, and a poisoned copy is served from the other and
 * rewritten (replica.c).
 *
 * Lock rules: get and list take ip->lock shared, set and remove exclusive.
 */
#include "fs/fs.h"
#include "common/crc32c.h"
#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define HDR sizeof(struct poise_xattr_hdr)
#define SPACE (POISE_BLOCK - HDR)

static uint32_t block_crc(const uint8_t *b)
{
	struct poise_xattr_hdr h;
	memcpy(&h, b, HDR);
	h.a_crc = 0;
	return poise_crc32c(poise_crc32c(0, &h, HDR), b + HDR, SPACE);
}

static size_t entry_len(size_t nl, size_t vl)
{
	return (4 + nl + vl + 3) & ~(size_t)3;
}

/* Does every entry lie inside the block's a_bytes, with a name, and are
 * there a_count of them?  (A block is outside input: its CRC may be
 * valid and its lengths hostile.) */
static int entries_ok(const uint8_t *b)
{
	const struct poise_xattr_hdr *h = (const struct poise_xattr_hdr *)b;
	size_t end = HDR + h->a_bytes, at = HDR;
	uint32_t n = 0;
	while (at < end) {
		if (end - at < 4 || b[at] == 0)
			return 0;
		size_t el = entry_len(b[at], (size_t)b[at + 2] | (size_t)b[at + 3] << 8);
		if (el > end - at)
			return 0;
		at += el;
		n++;
	}
	return n == h->a_count;
}

static unsigned xattr_score(const struct poise_fs *fs, const uint8_t *b, const void *ctx)
{
	(void)fs;
	const struct poise_xattr_hdr *h = (const struct poise_xattr_hdr *)b;
	return h->a_magic != POISE_XATTR_MAGIC || h->a_owner != *(const uint64_t *)ctx || h->a_bytes > SPACE ||
	       block_crc(b) != h->a_crc || !entries_ok(b);
}

int xattr_name_ok(const char *name)
{
	size_t nl = strlen(name);
	if (nl == 0 || nl > 255)
		return poise_err(nl ? ERANGE : EINVAL, "attribute name of %zu bytes", nl);
	if (strncmp(name, "user.", 5) && strncmp(name, "trusted.", 8) && strncmp(name, "security.", 9) &&
	    strcmp(name, XATTR_ACL_ACCESS) && strcmp(name, XATTR_ACL_DEFAULT))
		return poise_err(EOPNOTSUPP, "%s: only user.*, trusted.*, security.* attributes and POSIX ACLs are "
				 "stored", name);
	return 0;
}

/* The inode's attribute block into buf (zeroed when it has none).  Caller
 * holds ip->lock. */
static int load(struct poise_fs *fs, struct inode *ip, uint8_t *buf)
{
	memset(buf, 0, POISE_BLOCK);
	if (!ip->d.i_xattr_blk)
		return 0;
	uint64_t p = ip->d.i_xattr_blk, r = ip->d.i_xattr_rblk;
	if (p < fs->data_blk || p >= fs->data_end || r < fs->data_blk || r >= fs->data_end)
		return poise_err(EUCLEAN, "inode %llu: attribute block out of range", (unsigned long long)ip->ino);
	int ret = replica_read(fs, p, r, buf, xattr_score, &ip->ino);
	if (ret == -EIO)
		return poise_err(EIO, "inode %llu: the attribute block is unreadable in both copies (media error)",
				 (unsigned long long)ip->ino);
	if (ret > 0)
		return poise_err(EUCLEAN, "inode %llu: the attribute block is corrupt in both copies",
				 (unsigned long long)ip->ino);
	return ret;
}

/* Find name in a loaded block: its offset, or -1. */
static long find(const uint8_t *b, const char *name)
{
	const struct poise_xattr_hdr *h = (const struct poise_xattr_hdr *)b;
	size_t nl = strlen(name);
	for (size_t at = HDR; at + 4 <= HDR + h->a_bytes;) {
		size_t enl = b[at], evl = (size_t)b[at + 2] | (size_t)b[at + 3] << 8;
		if (enl == nl && !memcmp(b + at + 4, name, nl))
			return (long)at;
		at += entry_len(enl, evl);
	}
	return -1;
}

/* (fs.h) */
int xattr_append(uint8_t *b, const char *name, const void *value, size_t size)
{
	struct poise_xattr_hdr *h = (struct poise_xattr_hdr *)b;
	size_t nl = strlen(name), w = HDR + h->a_bytes;
	if (size > 0xffff || w + entry_len(nl, size) > POISE_BLOCK)
		return -ENOSPC;
	b[w] = (uint8_t)nl;
	b[w + 1] = 0;
	b[w + 2] = (uint8_t)(size & 0xff);
	b[w + 3] = (uint8_t)(size >> 8);
	memcpy(b + w + 4, name, nl);
	if (size)
		memcpy(b + w + 4 + nl, value, size);
	h->a_count++;
	h->a_bytes = (uint32_t)(w + entry_len(nl, size) - HDR);
	return 0;
}

/* (fs.h) */
ssize_t xattr_get_locked(struct poise_fs *fs, struct inode *ip, const char *name, void *value, size_t size)
{
	if (!ip->d.i_xattr_blk)
		return -ENODATA;
	uint8_t *b = malloc(POISE_BLOCK);
	if (!b)
		return poise_err(ENOMEM, "out of memory");
	ssize_t ret = load(fs, ip, b);
	long at = ret < 0 ? -1 : find(b, name);
	if (ret == 0 && at < 0) {
		ret = -ENODATA;
	} else if (ret == 0) {
		size_t nl = b[at], vl = (size_t)b[at + 2] | (size_t)b[at + 3] << 8;
		if (size && size < vl)
			ret = -ERANGE;
		else {
			if (size)
				memcpy(value, b + at + 4 + nl, vl);
			ret = (ssize_t)vl;
		}
	}
	free(b);
	return ret;
}

ssize_t xattr_get(struct poise_fs *fs, struct inode *ip, const char *name, void *value, size_t size)
{
	pthread_rwlock_rdlock(&ip->lock);
	ssize_t ret = xattr_get_locked(fs, ip, name, value, size);
	pthread_rwlock_unlock(&ip->lock);
	return ret;
}

ssize_t xattr_list(struct poise_fs *fs, struct inode *ip, char *list, size_t size)
{
	uint8_t *b = malloc(POISE_BLOCK);
	if (!b)
		return poise_err(ENOMEM, "out of memory");
	pthread_rwlock_rdlock(&ip->lock);
	ssize_t ret = load(fs, ip, b);
	size_t need = 0;
	const struct poise_xattr_hdr *h = (const struct poise_xattr_hdr *)b;
	for (size_t at = HDR; ret == 0 && at + 4 <= HDR + h->a_bytes;) {
		size_t nl = b[at], vl = (size_t)b[at + 2] | (size_t)b[at + 3] << 8;
		if (size && need + nl + 1 > size) {
			ret = -ERANGE;
			break;
		}
		if (size) {
			memcpy(list + need, b + at + 4, nl);
			list[need + nl] = 0;
		}
		need += nl + 1;
		at += entry_len(nl, vl);
	}
	pthread_rwlock_unlock(&ip->lock);
	free(b);
	return ret < 0 ? ret : (ssize_t)need;
}

/* (fs.h) */
int xattr_stage(struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd, uint8_t *b, struct xattr_pair *st)
{
	int ret = 0;
	uint64_t got;
	memset(st, 0, sizeof(*st));
	if (b) {
		struct poise_xattr_hdr *h = (struct poise_xattr_hdr *)b;
		h->a_magic = POISE_XATTR_MAGIC;
		h->a_owner = ip->ino;
		h->a_crc = block_crc(b);
		for (int k = 0; k < 2 && ret == 0; k++)
			ret = alloc_blocks(fs, ip->next ? ip->ext[0].e_pblk : 0, 1, &st->fresh[k], &got);
		for (int k = 0; k < 2 && ret == 0; k++)
			if (poise_dev_store(fs->dev, st->fresh[k] * POISE_BLOCK, b, POISE_BLOCK) < 0)
				ret = poise_err(EIO, "cannot write the attribute block");
		if (ret < 0) {
			xattr_stage_end(fs, st, 0);
			return ret;
		}
	}
	st->old[0] = nd->i_xattr_blk;
	st->old[1] = nd->i_xattr_rblk;
	nd->i_blocks = nd->i_blocks - (st->old[0] ? 2 : 0) + (b ? 2 : 0);
	nd->i_xattr_blk = st->fresh[0];
	nd->i_xattr_rblk = st->fresh[1];
	return 0;
}

/* (fs.h) */
void xattr_stage_end(struct poise_fs *fs, struct xattr_pair *st, int committed)
{
	uint64_t *gone = committed ? st->old : st->fresh;
	for (int k = 0; k < 2; k++)
		if (gone[k])
			free_blocks(fs, gone[k], 1);
	memset(st, 0, sizeof(*st));
}

/* Switch ip to the attribute block `b` (NULL: none), and its permission
 * bits to those of mode when mode >= 0 (an access ACL), in one
 * transaction. */
static int publish(struct poise_fs *fs, struct inode *ip, uint8_t *b, int mode)
{
	struct poise_dinode nd = ip->d;
	struct xattr_pair st;
	int ret = xattr_stage(fs, ip, &nd, b, &st);
	if (ret < 0)
		return ret;
	if (mode >= 0)
		nd.i_mode = (uint16_t)((nd.i_mode & ~0777u) | ((unsigned)mode & 0777));
	nd.i_ctime_ns = now_ns();
	struct tx *tx = tx_begin(fs);
	if (!tx)
		ret = poise_err(ENOMEM, "out of memory");
	if (ret == 0) {
		ret = istore(tx, ip, &nd);
		ret = ret ? (tx_abort(tx), ret) : tx_commit(tx);
	}
	xattr_stage_end(fs, &st, ret == 0);
	if (ret == 0)
		ip->d = nd;
	return ret;
}

/* A copy of block b without the entry at `skip` (-1: none); the entry
 * count and length set.  Returns the bytes used (from the block start). */
static size_t copy_without(const uint8_t *b, long skip, uint8_t *nb)
{
	const struct poise_xattr_hdr *h = (const struct poise_xattr_hdr *)b;
	struct poise_xattr_hdr *nh = (struct poise_xattr_hdr *)nb;
	size_t w = HDR;
	for (size_t r = HDR; r + 4 <= HDR + h->a_bytes;) {
		size_t el = entry_len(b[r], (size_t)b[r + 2] | (size_t)b[r + 3] << 8);
		if ((long)r != skip) {
			memcpy(nb + w, b + r, el);
			w += el;
			nh->a_count++;
		}
		r += el;
	}
	nh->a_bytes = (uint32_t)(w - HDR);
	return w;
}

/* (fs.h) */
int xattr_chmod_stage(struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd, struct xattr_pair *st)
{
	memset(st, 0, sizeof(*st));
	if (!ip->d.i_xattr_blk)
		return 0;
	uint8_t *b = malloc(POISE_BLOCK);
	if (!b)
		return poise_err(ENOMEM, "out of memory");
	int ret = load(fs, ip, b);
	long at = ret < 0 ? -1 : find(b, XATTR_ACL_ACCESS);
	if (at >= 0) {
		size_t nl = b[at], vl = (size_t)b[at + 2] | (size_t)b[at + 3] << 8;
		int base;
		if (acl_check(b + at + 4 + nl, vl, &base) == 0) { /* else leave what chmod cannot mend */
			acl_chmod(b + at + 4 + nl, vl, nd->i_mode);
			ret = xattr_stage(fs, ip, nd, b, st);
		}
	}
	free(b);
	return ret;
}

int xattr_set(struct poise_fs *fs, struct inode *ip, const char *name, const void *value, size_t size, int flags)
{
	int ret = xattr_name_ok(name);
	if (ret < 0)
		return ret;
	int acl = !strcmp(name, XATTR_ACL_ACCESS) ? 1 : !strcmp(name, XATTR_ACL_DEFAULT) ? 2 : 0, base = 0;
	if (acl && (ret = acl_check(value, size, &base)) < 0)
		return ret;
	if (acl == 2 && !S_ISDIR(ip->type))
		return poise_err(EACCES, "a default ACL is for directories only");
	size_t nl = strlen(name);
	if (size > 0xffff || entry_len(nl, size) > SPACE)
		return poise_err(ENOSPC, "%s: a value of %zu bytes does not fit an attribute block", name, size);
	uint8_t *b = malloc(POISE_BLOCK), *nb = calloc(1, POISE_BLOCK);
	if (!b || !nb) {
		free(b);
		free(nb);
		return poise_err(ENOMEM, "out of memory");
	}
	pthread_rwlock_wrlock(&ip->lock);
	if (ip->dead)
		ret = poise_err(ENOENT, "inode %llu was removed", (unsigned long long)ip->ino);
	else
		ret = load(fs, ip, b);
	long at = ret < 0 ? -1 : find(b, name);
	if (ret == 0 && at >= 0 && (flags & XATTR_CREATE))
		ret = poise_err(EEXIST, "%s exists", name);
	else if (ret == 0 && at < 0 && (flags & XATTR_REPLACE))
		ret = poise_err(ENODATA, "%s: no such attribute", name);
	if (ret == 0 && acl == 1 && base) {
		/* an access ACL of the owner, group and other entries alone is
		 * the mode: stored as the mode, no attribute (as ext4) */
		copy_without(b, at, nb);
		ret = publish(fs, ip, ((struct poise_xattr_hdr *)nb)->a_count ? nb : NULL,
			      acl_mode(value, size, ip->d.i_mode));
	} else if (ret == 0) {
		/* the new block: every other entry, then this one */
		copy_without(b, at, nb);
		if (xattr_append(nb, name, value, size) < 0)
			ret = poise_err(ENOSPC, "%s: the inode's attribute block is full", name);
		else
			ret = publish(fs, ip, nb, acl == 1 ? acl_mode(value, size, ip->d.i_mode) : -1);
	}
	pthread_rwlock_unlock(&ip->lock);
	free(b);
	free(nb);
	return ret;
}

int xattr_remove(struct poise_fs *fs, struct inode *ip, const char *name)
{
	uint8_t *b = malloc(POISE_BLOCK), *nb = calloc(1, POISE_BLOCK);
	int ret = b && nb ? 0 : poise_err(ENOMEM, "out of memory");
	if (ret == 0) {
		pthread_rwlock_wrlock(&ip->lock);
		ret = ip->dead ? poise_err(ENOENT, "inode %llu was removed", (unsigned long long)ip->ino) : load(fs, ip, b);
		long at = ret < 0 ? -1 : find(b, name);
		if (ret == 0 && at < 0)
			ret = -ENODATA;
		if (ret == 0) {
			copy_without(b, at, nb);
			ret = publish(fs, ip, ((struct poise_xattr_hdr *)nb)->a_count ? nb : NULL, -1);
		}
		pthread_rwlock_unlock(&ip->lock);
	}
	free(b);
	free(nb);
	return ret;
}
