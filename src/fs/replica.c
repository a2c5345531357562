/*
 * replica.c - replicated metadata blocks: directory blocks and extent
 * blocks are stored twice, as a pair of pool blocks (primary, replica) that
 * hold the same bytes.  Every change is logged to both copies in one
 * transaction, so after any crash the two are equal.
 *
 * Reading a pair takes the better copy (the caller's score counts the
 * defects of a copy: checksums that fail, entries that do not check out)
 * and rewrites the worse one from it: the write clears the poison under
 * it.  Where the platform cannot clear, that write fails and the good copy
 * keeps serving; the pair is then degraded, not lost.
 *
 * A replica nobody reads (the primary is sound) is still healed when the
 * bad-block table lists poison in it: otherwise a later hit on the primary
 * would lose both copies without anyone having noticed the first.
 *
 * No locks: callers hold what protects the object (the owning inode's
 * lock, or mount's single thread).
 */
#include "fs/fs.h"
#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int blk_known_bad(const struct poise_fs *fs, uint64_t blk)
{
	const uint64_t spb = POISE_BLOCK / POISE_SECTOR;
	return bbt_maybe(&fs->dev->bb, blk * POISE_BLOCK, POISE_BLOCK) &&
	       bbt_any(&fs->dev->bb, blk * spb, (blk + 1) * spb);
}

int replica_read(struct poise_fs *fs, uint64_t p, uint64_t r, uint8_t *buf, replica_score_fn score,
		 const void *ctx)
{
	int pok = poise_dev_read(fs->dev, p * POISE_BLOCK, buf, POISE_BLOCK) == POISE_BLOCK;
	unsigned ps = pok ? score(fs, buf, ctx) : 0;
	if (pok && ps == 0) {
		if (blk_known_bad(fs, r))
			(void)poise_dev_write(fs->dev, r * POISE_BLOCK, buf, POISE_BLOCK);
		return 0;
	}
	uint8_t *rb = malloc(POISE_BLOCK);
	if (!rb)
		return poise_err(ENOMEM, "out of memory");
	int rok = poise_dev_read(fs->dev, r * POISE_BLOCK, rb, POISE_BLOCK) == POISE_BLOCK;
	unsigned rs = rok ? score(fs, rb, ctx) : 0;
	int ret;
	if (rok && (!pok || rs < ps)) {
		memcpy(buf, rb, POISE_BLOCK);
		(void)poise_dev_write(fs->dev, p * POISE_BLOCK, buf, POISE_BLOCK); /* heal the primary */
		ret = (int)rs;
	} else if (pok) {
		if (!rok || rs > ps)
			(void)poise_dev_write(fs->dev, r * POISE_BLOCK, buf, POISE_BLOCK); /* heal the replica */
		ret = (int)ps;
	} else {
		ret = -EIO;
	}
	free(rb);
	return ret;
}
