/*
 * alloc.c - free blocks and free inode numbers.
 *
 * Neither is stored on media: mount derives them from the inodes in use
 * (super.c marks every block an extent map or extent chain holds), so a
 * crash can only leave allocated-but-unpublished blocks, which are free at
 * the next mount.  Blocks are taken before the transaction that publishes
 * them and given back only after the transaction that drops them commits.
 *
 * The data area is cut into shards (a multiple of 64 blocks each, so no
 * bitmap word straddles two), each with its own lock and search hint; a
 * thread starts in the shard of its log lane and moves on when it is full,
 * so allocating threads rarely meet.  Inode numbers have one lock.
 *
 * Blocks with a known bad sector are cleared before they are handed out;
 * one that cannot be cleared stays marked in use (quarantined in DRAM).
 * With a free hook (poise_pool_set_free_hook: the mount's daemon while
 * other processes map the pool), freed blocks go to the hook, which gives
 * them back with free_blocks_now once no process can reach them.
 */
#include "fs/fs.h"
#include "common/err.h"
#include "common/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct alloc_shard {
	pthread_mutex_t lock;
	uint64_t lo, hi, hint; /* blocks [lo, hi) */
};

static int test_bit(const uint64_t *m, uint64_t b)
{
	return (m[b / 64] >> (b % 64)) & 1;
}
static void set_bit(uint64_t *m, uint64_t b)
{
	m[b / 64] |= 1ULL << (b % 64);
}
static void clr_bit(uint64_t *m, uint64_t b)
{
	m[b / 64] &= ~(1ULL << (b % 64));
}

int alloc_init(struct poise_fs *fs)
{
	uint64_t words = (fs->nblocks + 63) / 64;
	fs->bmap = calloc(words, 8);
	uint64_t span = fs->data_end - fs->data_blk;
	fs->nshards = span >= 16 * 4096 ? 16 : span >= 4 * 1024 ? 4 : 1;
	fs->shards = calloc(fs->nshards, sizeof(*fs->shards));
	fs->imap = calloc((fs->sb.s_ninodes + 1 + 63) / 64, 8);
	fs->ino_new = calloc((fs->sb.s_ninodes + 1 + 63) / 64, 8);
	if (!fs->bmap || !fs->shards || !fs->imap || !fs->ino_new)
		return poise_err(ENOMEM, "out of memory for the allocator");
	uint64_t per = (span / fs->nshards) & ~63ULL;
	for (unsigned i = 0; i < fs->nshards; i++) {
		struct alloc_shard *s = &fs->shards[i];
		pthread_mutex_init(&s->lock, NULL);
		s->lo = i == 0 ? fs->data_blk : ((fs->data_blk + i * per) & ~63ULL);
		s->hi = i + 1 == fs->nshards ? fs->data_end : ((fs->data_blk + (i + 1) * per) & ~63ULL);
		s->hint = s->lo;
	}
	for (uint64_t b = 0; b < fs->data_blk; b++)
		set_bit(fs->bmap, b);
	for (uint64_t b = fs->data_end; b < fs->nblocks; b++)
		set_bit(fs->bmap, b);
	fs->nfree = span;
	set_bit(fs->imap, 0); /* inode 0 does not exist */
	fs->ifree = fs->sb.s_ninodes;
	fs->ihint = 1;
	pthread_mutex_init(&fs->ialloc_lock, NULL);
	return 0;
}

void alloc_fini(struct poise_fs *fs)
{
	for (unsigned i = 0; fs->shards && i < fs->nshards; i++)
		pthread_mutex_destroy(&fs->shards[i].lock);
	free(fs->shards);
	free(fs->bmap);
	free(fs->imap);
	free(fs->ino_new);
}

/* The mask of bits [lo, hi) of word w (lo < hi <= 64). */
static uint64_t word_mask(unsigned lo, unsigned hi)
{
	return (hi == 64 ? ~0ULL : (1ULL << hi) - 1) & ~((1ULL << lo) - 1);
}

int alloc_claim(struct poise_fs *fs, uint64_t blk, uint64_t n)
{
	/* every claim spends from a budget of twice the data area: a sound
	 * image spends at most once, a crafted one whose extents overlap
	 * without end is refused before it costs more than that */
	if (n > fs->scan_budget)
		return -E2BIG;
	fs->scan_budget -= n;
	uint64_t end = blk + n;
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t b = blk; b < end;) {
			unsigned lo = (unsigned)(b % 64), hi = end - b + lo >= 64 ? 64 : (unsigned)(end - b + lo);
			uint64_t m = word_mask(lo, hi);
			if (pass == 0 && (fs->bmap[b / 64] & m))
				return -EEXIST; /* held already: cross-linked */
			if (pass == 1)
				fs->bmap[b / 64] |= m;
			b += hi - lo;
		}
	fs->nfree -= n;
	return 0;
}

static unsigned my_shard(struct poise_fs *fs)
{
	static int next;
	static __thread int mine = -1;
	if (mine < 0)
		mine = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
	return (unsigned)mine % fs->nshards;
}

/* Search shard s from its hint (or goal inside it).  Caller holds s->lock. */
static int shard_alloc(struct poise_fs *fs, struct alloc_shard *s, uint64_t goal, uint64_t want,
		       uint64_t *blk, uint64_t *got)
{
	uint64_t start = goal >= s->lo && goal < s->hi ? goal : s->hint;
	for (int pass = 0; pass < 2; pass++) {
		uint64_t b = pass ? s->lo : start, end = pass ? start : s->hi;
		while (b < end) {
			if ((b % 64) == 0 && b + 64 <= end && fs->bmap[b / 64] == ~0ULL) {
				b += 64;
				continue;
			}
			if (test_bit(fs->bmap, b)) {
				b++;
				continue;
			}
			uint64_t n = 1;
			while (n < want && b + n < s->hi && !test_bit(fs->bmap, b + n))
				n++;
			for (uint64_t i = 0; i < n; i++)
				set_bit(fs->bmap, b + i);
			s->hint = b + n < s->hi ? b + n : s->lo;
			*blk = b;
			*got = n;
			return 0;
		}
	}
	return -ENOSPC;
}

int alloc_blocks(struct poise_fs *fs, uint64_t goal, uint64_t want, uint64_t *blk, uint64_t *got)
{
	if (__builtin_expect(poise_fault_armed, 0) && poise_fault_hit(POISE_FAULT_ALLOC_BLOCK))
		return poise_err(ENOSPC, "no space left (injected fault)");
	if (want == 0)
		want = 1;
	unsigned first = my_shard(fs);
	if (goal >= fs->data_blk && goal < fs->data_end)
		for (unsigned i = 0; i < fs->nshards; i++)
			if (goal >= fs->shards[i].lo && goal < fs->shards[i].hi)
				first = i;
	for (unsigned k = 0; k < fs->nshards;) {
		struct alloc_shard *s = &fs->shards[(first + k) % fs->nshards];
		pthread_mutex_lock(&s->lock);
		int ret = shard_alloc(fs, s, k == 0 ? goal : 0, want, blk, got);
		pthread_mutex_unlock(&s->lock);
		if (ret < 0) {
			k++;
			continue;
		}
		__atomic_sub_fetch(&fs->nfree, *got, __ATOMIC_RELAXED);
		/* never hand out a known-bad block without clearing it; one that
		 * cannot be cleared stays taken (quarantined in DRAM) and the
		 * search goes on in the same shard */
		if (bbt_maybe(&fs->dev->bb, *blk * POISE_BLOCK, *got * POISE_BLOCK) &&
		    poise_dev_clear(fs->dev, *blk * POISE_BLOCK, *got * POISE_BLOCK) < 0)
			continue;
		return 0;
	}
	return poise_err(ENOSPC, "the pool is full (no free block)");
}

void free_blocks(struct poise_fs *fs, uint64_t blk, uint64_t n)
{
	if (n == 0)
		return;
	/* other processes may still reach the blocks through maps they took
	 * (docs/MULTIPROC.md): the hook holds them, poison and all, until they
	 * cannot, then calls free_blocks_now */
	if (fs->free_hook) {
		fs->free_hook(fs->free_ctx, blk, n);
		return;
	}
	free_blocks_now(fs, blk, n);
}

void free_blocks_now(struct poise_fs *fs, uint64_t blk, uint64_t n)
{
	if (n == 0 || blk < fs->data_blk || blk > fs->data_end || n > fs->data_end - blk)
		return;
	/* freed blocks give up their poison (errors: the block stays bad and
	 * is cleared again before reuse) */
	if (bbt_maybe(&fs->dev->bb, blk * POISE_BLOCK, n * POISE_BLOCK))
		(void)poise_dev_clear(fs->dev, blk * POISE_BLOCK, n * POISE_BLOCK);
	for (unsigned i = 0; i < fs->nshards; i++) {
		struct alloc_shard *s = &fs->shards[i];
		uint64_t lo = blk > s->lo ? blk : s->lo, hi = blk + n < s->hi ? blk + n : s->hi;
		if (lo >= hi)
			continue;
		uint64_t freed = 0;
		pthread_mutex_lock(&s->lock);
		for (uint64_t b = lo; b < hi; b++)
			if (test_bit(fs->bmap, b)) { /* a block freed twice is counted once */
				clr_bit(fs->bmap, b);
				freed++;
			}
		pthread_mutex_unlock(&s->lock);
		__atomic_add_fetch(&fs->nfree, freed, __ATOMIC_RELAXED);
	}
}

void ino_mark_used(struct poise_fs *fs, uint64_t ino)
{
	if (!test_bit(fs->imap, ino)) {
		set_bit(fs->imap, ino);
		fs->ifree--;
	}
}

int alloc_ino(struct poise_fs *fs, uint64_t *ino)
{
	if (__builtin_expect(poise_fault_armed, 0) && poise_fault_hit(POISE_FAULT_ALLOC_INODE))
		return poise_err(ENOSPC, "no inode left (injected fault)");
	uint64_t n = fs->sb.s_ninodes;
	pthread_mutex_lock(&fs->ialloc_lock);
	for (uint64_t k = 0; k < n; k++) {
		uint64_t i = 1 + (fs->ihint - 1 + k) % n;
		if (!test_bit(fs->imap, i)) {
			set_bit(fs->imap, i);
			/* new until ipublish() or free_ino(): iget refuses it */
			__atomic_fetch_or(&fs->ino_new[i / 64], 1ULL << (i % 64), __ATOMIC_RELAXED);
			fs->ifree--;
			fs->ihint = i % n + 1;
			*ino = i;
			pthread_mutex_unlock(&fs->ialloc_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&fs->ialloc_lock);
	return poise_err(ENOSPC, "no free inode (all %llu in use)", (unsigned long long)n);
}

int ino_is_new(const struct poise_fs *fs, uint64_t ino)
{
	return (__atomic_load_n(&fs->ino_new[ino / 64], __ATOMIC_RELAXED) >> (ino % 64)) & 1;
}

void ino_settled(struct poise_fs *fs, uint64_t ino)
{
	__atomic_fetch_and(&fs->ino_new[ino / 64], ~(1ULL << (ino % 64)), __ATOMIC_RELEASE);
}

void free_ino(struct poise_fs *fs, uint64_t ino)
{
	pthread_mutex_lock(&fs->ialloc_lock);
	ino_settled(fs, ino); /* (a create that failed) */
	if (test_bit(fs->imap, ino)) {
		clr_bit(fs->imap, ino);
		fs->ifree++;
	}
	pthread_mutex_unlock(&fs->ialloc_lock);
}
