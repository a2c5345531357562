/*
 * mutate.c - the structure-aware half of the fuzzer (libFuzzer's custom
 * mutator, linked into fuzz_mount).
 *
 * A byte mutation of an image almost always breaks a CRC, and the file
 * system then refuses the structure at its first check: the code behind
 * the checksums (geometry, names, bounds, chains, cycles) is never reached.
 * So every mutation here is followed, seven times in eight, by resealing
 * the image: every structure found where the (possibly mutated) superblock
 * says it lives gets its CRC32C recomputed, as a writer of crafted images
 * would do (tests/craft.py does it by hand).  Half of the mutations write a
 * hostile value (0, 1, -1, 2^32-1, 2^60+1, the pool's own sizes, a block
 * or inode number of the image, ...) into a field of a structure: the
 * superblock, an inode, an inline extent, a directory entry, an extent
 * block's header, a log lane's header; the other half are libFuzzer's own
 * byte mutations.
 */
#include "fs/layout.h"
#include "common/crc32c.h"
#include "fs/fs.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed);

static uint64_t rng;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Read/write little-endian fields of any width at any offset. */
static uint64_t get(const uint8_t *p, unsigned w)
{
	uint64_t v = 0;
	memcpy(&v, p, w);
	return v;
}
static void put(uint8_t *p, unsigned w, uint64_t v)
{
	memcpy(p, &v, w);
}

struct geo {
	uint64_t nblocks, itable, itable_blocks, ninodes, itable_r, data, data_end, log, log_r, nlanes;
};

/* The geometry the superblock claims, cut to what the image holds. */
static struct geo geometry(const uint8_t *d, size_t size)
{
	const struct poise_super *s = (const struct poise_super *)d;
	uint64_t have = size / POISE_BLOCK;
	struct geo g = {0};
	g.nblocks = s->s_nblocks < have ? s->s_nblocks : have;
	g.itable = s->s_itable_blk;
	g.itable_blocks = s->s_itable_blocks;
	g.ninodes = s->s_ninodes;
	g.itable_r = s->s_itable_replica_blk;
	g.data = s->s_data_blk;
	g.data_end = s->s_itable_replica_blk < g.nblocks ? s->s_itable_replica_blk : g.nblocks;
	g.log = s->s_log_blk;
	g.log_r = s->s_log_replica_blk;
	g.nlanes = s->s_nlanes <= POISE_NLANES ? s->s_nlanes : 0;
	return g;
}

static int in_image(uint64_t blk, uint64_t n, size_t size)
{
	uint64_t have = size / POISE_BLOCK;
	return blk < have && n <= have - blk;
}

static void seal_super(uint8_t *b)
{
	struct poise_super *s = (struct poise_super *)b;
	s->s_crc = poise_crc32c(0, s, offsetof(struct poise_super, s_crc));
}

static void seal_inode(uint8_t *b)
{
	struct poise_dinode *d = (struct poise_dinode *)b;
	for (uint32_t i = 0; i < POISE_INLINE_EXTENTS && i < d->i_nextents; i++)
		d->i_ext[i].e_crc = poise_crc32c(0, &d->i_ext[i], 24);
	d->i_crc = 0;
	d->i_crc = poise_crc32c(0, d, sizeof(*d));
}

/* One block of the data area: an extent block, an attribute block, or
 * (whatever else it is) the slots of a directory block. */
static void seal_block(uint8_t *b)
{
	if (get(b, 8) == POISE_EXTBLK_MAGIC) {
		struct poise_extblk *x = (struct poise_extblk *)b;
		for (uint32_t i = 0; i < x->x_count && i < POISE_EXTS_PER_BLOCK; i++)
			x->x_ext[i].e_crc = poise_crc32c(0, &x->x_ext[i], 24);
		x->x_crc = 0;
		x->x_crc = poise_crc32c(0, x, sizeof(*x));
		return;
	}
	if (get(b, 8) == POISE_XATTR_MAGIC) {
		struct poise_xattr_hdr *h = (struct poise_xattr_hdr *)b;
		h->a_crc = 0;
		h->a_crc = poise_crc32c(poise_crc32c(0, h, sizeof(*h)), b + sizeof(*h), POISE_BLOCK - sizeof(*h));
		return;
	}
	for (unsigned s = 0; s < POISE_DSLOTS_PER_BLOCK; s++) {
		struct poise_dirent *e = (struct poise_dirent *)(b + s * POISE_DSLOT);
		if (!e->d_ino || !e->d_name_len || e->d_nslots != POISE_DIRENT_SLOTS(e->d_name_len) ||
		    s + e->d_nslots > POISE_DSLOTS_PER_BLOCK)
			continue;
		struct poise_dirent h = *e;
		h.d_crc = 0;
		e->d_crc = poise_crc32c(poise_crc32c(0, &h, sizeof(h)), e->d_name, e->d_name_len);
		s += e->d_nslots - 1u;
	}
}

static void seal_lane(uint8_t *b, int hashed)
{
	struct poise_lane *h = (struct poise_lane *)b;
	if (h->l_magic != POISE_LOG_COMMITTED || h->l_bytes > POISE_LANE_BLOCKS * POISE_BLOCK - sizeof(*h))
		return;
	if (hashed) { /* 1.2: the lane hash, no crc */
		h->l_crc = 0;
		h->l_hash = log_lane_hash(h, b + sizeof(*h));
		return;
	}
	struct poise_lane c = *h;
	c.l_crc = 0;
	h->l_crc = poise_crc32c(poise_crc32c(0, &c, sizeof(c)), b + sizeof(*h), h->l_bytes);
}

/* Recompute every CRC where the superblock says structures live. */
static void seal(uint8_t *d, size_t size)
{
	if (size < 2 * POISE_BLOCK || get(d, 8) != POISE_MAGIC)
		return;
	struct geo g = geometry(d, size);
	uint64_t ipb = POISE_BLOCK / POISE_INODE_SIZE;
	for (int copy = 0; copy < 2; copy++) {
		uint64_t t = copy ? g.itable_r : g.itable;
		uint64_t nb = g.itable_blocks < g.nblocks ? g.itable_blocks : 0;
		for (uint64_t i = 0; in_image(t, nb, size) && i < nb * ipb && i < g.ninodes; i++) {
			uint8_t *p = d + t * POISE_BLOCK + i * POISE_INODE_SIZE;
			if (get(p + 4, 2)) /* i_mode: in use */
				seal_inode(p);
		}
	}
	for (uint64_t b = g.data; b < g.data_end && in_image(b, 1, size); b++)
		seal_block(d + b * POISE_BLOCK);
	for (uint64_t l = 0; l < g.nlanes; l++)
		for (int copy = 0; copy < 2; copy++) {
			uint64_t b = (copy ? g.log_r : g.log) + l * POISE_LANE_BLOCKS;
			if (in_image(b, POISE_LANE_BLOCKS, size))
				seal_lane(d + b * POISE_BLOCK, (((const struct poise_super *)d)->s_features & POISE_FEAT_LOG_HASH) != 0);
		}
	seal_super(d);
	uint64_t last = get(d + offsetof(struct poise_super, s_replica_blk), 8);
	if (in_image(last, 1, size) && last) {
		memcpy(d + last * POISE_BLOCK, d, sizeof(struct poise_super));
	}
}

/* A value meant to break an assumption about field p of width w. */
static uint64_t hostile(const struct geo *g, uint64_t self)
{
	switch (next() % 16) {
	case 0: return 0;
	case 1: return 1;
	case 2: return 2;
	case 3: return ~0ULL;
	case 4: return 0xFFFFFFFFULL;
	case 5: return (1ULL << 60) + 1;
	case 6: return g->nblocks;
	case 7: return g->nblocks - 1;
	case 8: return g->ninodes;
	case 9: return g->ninodes + 1;
	case 10: return g->data + next() % (g->data_end > g->data ? g->data_end - g->data : 1);
	case 11: return self;
	case 12: return 1ULL << 63;
	case 13: return next() % 64;
	case 14: return next() & 0xFFFF;
	default: return next();
	}
}

/* Fields (offset, width) of each structure worth a hostile value. */
static const uint8_t super_fields[][2] = {{16, 8}, {24, 8}, {32, 8}, {40, 4}, {44, 4}, {48, 8}, {56, 8}, {64, 8},
					  {72, 8}, {80, 8}, {88, 8}, {96, 8}, {128, 8}, {136, 8}, {144, 8}};
static const uint8_t inode_fields[][2] = {{4, 2}, {8, 4}, {20, 4}, {24, 8}, {64, 8}, {72, 8}, {80, 8}, {88, 8},
					  {96, 8}, {104, 8}, {128, 8}, {136, 8}, {144, 4}, {160, 8}, {168, 8}};
static const uint8_t dirent_fields[][2] = {{0, 8}, {12, 1}, {13, 1}, {14, 1}, {16, 1}, {17, 1}};
static const uint8_t extblk_fields[][2] = {{12, 4}, {16, 8}, {24, 8}, {32, 8}, {64, 8}, {72, 8}, {80, 4}};
static const uint8_t lane_fields[][2] = {{0, 8}, {8, 8}, {16, 4}, {20, 4}, {64, 8}, {72, 4}};
#define PICK(t) t[next() % (sizeof(t) / sizeof(t[0]))]

static void poke(uint8_t *d, size_t size)
{
	if (size < 2 * POISE_BLOCK || get(d, 8) != POISE_MAGIC)
		return;
	struct geo g = geometry(d, size);
	uint64_t ipb = POISE_BLOCK / POISE_INODE_SIZE;
	const uint8_t *f;
	uint8_t *base;
	uint64_t self = 0;
	switch (next() % 5) {
	case 0:
		f = PICK(super_fields);
		base = d;
		break;
	case 1: {
		uint64_t n = g.itable_blocks * ipb < g.ninodes ? g.itable_blocks * ipb : g.ninodes;
		if (!n || !in_image(g.itable, (n + ipb - 1) / ipb, size))
			return;
		self = next() % n;
		base = d + g.itable * POISE_BLOCK + self * POISE_INODE_SIZE;
		self++;
		f = PICK(inode_fields);
		break;
	}
	case 2:
	case 3: {
		if (g.data_end <= g.data)
			return;
		uint64_t b = g.data + next() % (g.data_end - g.data);
		if (!in_image(b, 1, size))
			return;
		base = d + b * POISE_BLOCK;
		self = b;
		if (get(base, 8) == POISE_EXTBLK_MAGIC) {
			f = PICK(extblk_fields);
		} else {
			base += (next() % POISE_DSLOTS_PER_BLOCK) * POISE_DSLOT;
			f = PICK(dirent_fields);
		}
		break;
	}
	default:
		if (!g.nlanes || !in_image(g.log, 1, size))
			return;
		base = d + (g.log + (next() % g.nlanes) * POISE_LANE_BLOCKS) * POISE_BLOCK;
		if (base + POISE_BLOCK > d + size)
			return;
		f = PICK(lane_fields);
		break;
	}
	uint64_t v = hostile(&g, self);
	if (f[1] == 1 && next() % 2) /* names: the characters that matter */
		v = "./\0."[next() % 4];
	put(base + f[0], f[1], v);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned int seed)
{
	rng = seed * 0x9E3779B97F4A7C15ULL + 1;
	if (next() % 2) {
		size = LLVMFuzzerMutate(data, size, max);
	} else {
		int n = 1 + (int)(next() % 3);
		for (int i = 0; i < n; i++)
			poke(data, size);
	}
	if (next() % 8)
		seal(data, size);
	return size;
}
