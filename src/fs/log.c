/*
 * log.c - transactions: redo-log lanes make a multi-range metadata update
 * atomic across a crash.
 *
 * A transaction stages records (pool offset, bytes) in DRAM.  tx_commit():
 *   1. copies the records into a lane after its header, in both copies of
 *      the lane (primary and replica); fence;
 *   2. writes the lane header (magic, global sequence number, crc over header
 *      and records) into both; fence                <- the commit point
 *   3. applies every record to its place; fence;
 *   4. retires the lane (magic = 0) in both; fence.
 * Mount replays the lanes whose header is committed and whose crc matches
 * in either copy (the primary first), in sequence order; a lane without a
 * valid header in either copy is ignored (the transaction never happened).
 * Records are physical, so replay is idempotent.  Invariant: a transaction
 * holds the locks of every structure it writes until tx_commit() returns,
 * so at most one unretired record can touch given bytes at a crash.
 *
 * Media errors: a lane copy whose poison cannot be cleared is skipped (the
 * other copy carries the transaction); a lane unusable in both copies is
 * skipped for the next one.  Every logged record is one copy of a
 * replicated structure (inode, directory entry, extent), so a record whose
 * target holds listed poison is not written at apply (clearing only the
 * record's bytes would leave the rest of the sector zeroed: readable and
 * wrong): that copy stays unreadable and its twin, written by the same
 * record set, serves until a heal rewrites the whole copy.  A record its
 * place refuses is tried once more, then the place is listed bad.
 *
 * Lanes: POISE_NLANES, one per thread slot (threads are spread round-robin
 * on first use); each has a mutex held from step 1 to 4.
 *
 * Forks: a child forked after the mount has a copy of the allocator, the
 * inode cache and the directories that neither process's later changes
 * reach in the other, so a transaction of the child would hand out blocks
 * and entries the parent also holds (and the parent's next commit would
 * drop the child's).  The child's commits fail with EROFS instead, and so
 * do its data writes, truncates and writable maps, at their entry (its idea
 * of which blocks are a file's may be stale too): it may read, nothing more.
 * Counted by a pthread_atfork handler, so a child of vfork, _Fork or a raw
 * clone is not seen (vfork's child may only exec or _exit anyway).
 */
#include "fs/fs.h"
#include "dev/persist.h"
#include "common/crc32c.h"
#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LANE_BYTES ((uint32_t)(POISE_LANE_BLOCKS * POISE_BLOCK - sizeof(struct poise_lane)))

struct tx {
	struct poise_fs *fs;
	uint32_t used, nrec;
	int cached; /* from the thread's cache (else malloc'd) */
	uint8_t buf[LANE_BYTES];
};

/* Each thread keeps TX_CACHE transaction buffers (16 KiB each), used as a
 * stack: a transaction may begin inside another (a directory grows in its
 * own transaction during an add), and ends before it.  Freed at thread
 * exit. */
#define TX_CACHE 2
static pthread_key_t tx_key;
static pthread_once_t tx_once = PTHREAD_ONCE_INIT;
struct tx_cache {
	struct tx *tx[TX_CACHE];
	int depth;
};

static void tx_cache_free(void *p)
{
	struct tx_cache *c = p;
	for (int i = 0; i < TX_CACHE; i++)
		free(c->tx[i]);
	free(c);
}

static void tx_key_init(void)
{
	pthread_key_create(&tx_key, tx_cache_free);
}

static struct tx_cache *my_cache(void)
{
	pthread_once(&tx_once, tx_key_init);
	struct tx_cache *c = pthread_getspecific(tx_key);
	if (!c && (c = calloc(1, sizeof(*c))))
		pthread_setspecific(tx_key, c);
	return c;
}

static int lane_of_thread(void)
{
	static int next;
	static __thread int mine = -1;
	if (mine < 0)
		mine = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
	return mine;
}

static uint64_t lane_off(struct poise_fs *fs, int lane, int rep)
{
	return ((rep ? fs->sb.s_log_replica_blk : fs->sb.s_log_blk) + (uint64_t)lane * fs->sb.s_lane_blocks) *
	       POISE_BLOCK;
}

/* [off, off+len) holds listed poison (the platform could not clear it, or
 * nobody has rewritten that copy yet): this copy is lost and reads as bad. */
static int unclearable(struct poise_fs *fs, uint64_t off, uint64_t len)
{
	return bbt_any(&fs->dev->bb, off / POISE_SECTOR, (off + len + POISE_SECTOR - 1) / POISE_SECTOR);
}

struct poise_fs *tx_fs(struct tx *tx)
{
	return tx->fs;
}

struct tx *tx_begin(struct poise_fs *fs)
{
	struct tx_cache *c = my_cache();
	struct tx *tx;
	if (c && c->depth < TX_CACHE) {
		if (!c->tx[c->depth] && !(c->tx[c->depth] = malloc(sizeof(*tx))))
			return NULL;
		tx = c->tx[c->depth++];
		tx->cached = 1;
	} else if ((tx = malloc(sizeof(*tx)))) {
		tx->cached = 0;
	} else {
		return NULL;
	}
	tx->fs = fs;
	tx->used = tx->nrec = 0;
	return tx;
}

/* How many times this process has forked (counted in the child). */
static unsigned forks;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void forked(void)
{
	__atomic_add_fetch(&forks, 1, __ATOMIC_RELAXED);
}
static void fork_watch(void)
{
	pthread_atfork(NULL, NULL, forked);
}

int log_fork_check(struct poise_fs *fs)
{
	if (__atomic_load_n(&forks, __ATOMIC_RELAXED) == fs->fork_mark)
		return 0;
	return poise_err(EROFS, "this process is a fork of the one that opened the pool: it may not change it "
				"(processes share a pool through its mount)");
}

static void tx_end(struct tx *tx)
{
	if (tx->cached)
		my_cache()->depth--;
	else
		free(tx);
}

int tx_write(struct tx *tx, uint64_t off, const void *data, uint32_t len)
{
	uint32_t need = (uint32_t)sizeof(struct poise_logrec) + ((len + 7) & ~7u);
	if (tx->used + need > LANE_BYTES)
		return poise_err(EOVERFLOW, "transaction larger than a log lane (%u bytes)", LANE_BYTES);
	struct poise_logrec r = {.r_off = off, .r_len = len};
	memcpy(tx->buf + tx->used, &r, sizeof(r));
	memcpy(tx->buf + tx->used + sizeof(r), data, len);
	memset(tx->buf + tx->used + sizeof(r) + len, 0, need - sizeof(r) - len);
	tx->used += need;
	tx->nrec++;
	return 0;
}

void tx_abort(struct tx *tx)
{
	tx_end(tx);
}

static uint32_t lane_crc(const struct poise_lane *h, const uint8_t *recs)
{
	struct poise_lane c = *h;
	c.l_crc = 0;
	return poise_crc32c(poise_crc32c(0, &c, sizeof(c)), recs, h->l_bytes);
}

/* Apply records [recs, recs+bytes) to their places (no fence).  After the
 * commit point a transaction cannot fail: a record its place refuses (a
 * write error) is tried once more, then that place is listed bad, so reads
 * take the record's twin (every record is one copy of a replicated
 * structure).  During replay (replay = 1) an error is reported: mount fails
 * rather than guess. */
static int apply(struct poise_fs *fs, const uint8_t *recs, uint32_t bytes, int replay)
{
	for (uint32_t at = 0; at < bytes;) {
		struct poise_logrec r;
		memcpy(&r, recs + at, sizeof(r));
		if (r.r_len > bytes - at - sizeof(r) || r.r_off > fs->dev->size ||
		    r.r_len > fs->dev->size - r.r_off)
			return poise_err(EUCLEAN, "log record at lane byte %u is out of bounds", at);
		ssize_t k = (ssize_t)r.r_len;
		if (unclearable(fs, r.r_off, r.r_len)) {
			/* this copy holds listed poison: writing the record would
			 * clear only its own bytes and leave the rest of the
			 * sector zeroed, readable and wrong; leave the copy
			 * unreadable instead (its twin serves, and a heal
			 * rewrites the whole copy from the twin) */
		} else if (__builtin_expect(poise_bug == 1, 0)) { /* the wrong writer: no flush */
			poise_track_store(fs->dev->base + r.r_off, r.r_len, 0);
			memcpy(fs->dev->base + r.r_off, recs + at + sizeof(r), r.r_len);
		} else {
			k = poise_dev_store(fs->dev, r.r_off, recs + at + sizeof(r), r.r_len);
			if (k < 0 && !unclearable(fs, r.r_off, r.r_len))
				k = poise_dev_store(fs->dev, r.r_off, recs + at + sizeof(r), r.r_len); /* once more */
			if (k < 0 && replay && !unclearable(fs, r.r_off, r.r_len))
				return (int)k;
			if (k < 0 && !unclearable(fs, r.r_off, r.r_len))
				(void)poise_dev_mark_bad(fs->dev, r.r_off, r.r_len); /* lost: reads go to its twin */
		}
		at += (uint32_t)sizeof(r) + ((r.r_len + 7) & ~7u);
	}
	return 0;
}

/* Steps 1-2 on lane `lane` (its mutex held): records and header into
 * every copy that takes them.  0 when at least one copy holds the
 * committed transaction, -EIO when neither copy can. */
static int lane_write(struct poise_fs *fs, int lane, struct tx *tx, struct poise_lane *h)
{
	int live[2];
	for (int rep = 0; rep < 2; rep++) {
		uint64_t lo = lane_off(fs, lane, rep);
		live[rep] = poise_dev_store(fs->dev, lo + sizeof(*h), tx->buf, tx->used) >= 0;
	}
	if (!live[0] && !live[1])
		return -EIO;
	poise_fence();
	int any = 0;
	for (int rep = 0; rep < 2; rep++)
		if (live[rep])
			any |= poise_dev_store(fs->dev, lane_off(fs, lane, rep), h, sizeof(*h)) >= 0;
	return any ? 0 : -EIO;
}

int tx_commit(struct tx *tx)
{
	struct poise_fs *fs = tx->fs;
	int nl = (int)fs->sb.s_nlanes, first = lane_of_thread() % nl, lane = -1, ret = -EIO;
	if (tx->nrec == 0) {
		tx_end(tx);
		return 0;
	}
	int forked = log_fork_check(fs);
	if (forked < 0) {
		tx_end(tx);
		return forked;
	}
	struct poise_lane h = {
		.l_magic = POISE_LOG_COMMITTED,
		.l_nrec = tx->nrec,
		.l_bytes = tx->used,
	};
	for (int t = 0; t < nl && ret < 0; t++) {
		lane = (first + t) % nl;
		pthread_mutex_lock(&fs->lane_lock[lane]);
		h.l_seq = __atomic_add_fetch(&fs->seq, 1, __ATOMIC_RELAXED);
		h.l_crc = lane_crc(&h, tx->buf);
		ret = lane_write(fs, lane, tx, &h);
		if (ret < 0)
			pthread_mutex_unlock(&fs->lane_lock[lane]); /* poisoned in both copies: the next lane */
	}
	if (ret < 0) {
		tx_end(tx);
		return poise_err(EIO, "no log lane can be written (media errors in both copies of every lane)");
	}
	poise_fence(); /* the commit point: from here the update survives a crash */
	ret = apply(fs, tx->buf, tx->used, 0);
	poise_fence();
	if (ret == 0) {
		uint64_t zero = 0;
		for (int rep = 0; rep < 2; rep++) {
			uint64_t lo = lane_off(fs, lane, rep);
			ssize_t k = poise_dev_store(fs->dev, lo, &zero, sizeof(zero)); /* retire */
			if (k < 0 && !unclearable(fs, lo, sizeof(zero)))
				(void)poise_dev_mark_bad(fs->dev, lo, sizeof(zero)); /* unreadable = not committed */
		}
		poise_fence();
	}
	pthread_mutex_unlock(&fs->lane_lock[lane]);
	tx_end(tx);
	return ret;
}

struct pending {
	uint64_t seq;
	int lane;
};

static int by_seq(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Read copy rep of lane i: header and records if committed and intact. */
static int lane_copy_read(struct poise_fs *fs, int i, int rep, struct poise_lane *h, uint8_t *recs)
{
	uint64_t lo = lane_off(fs, i, rep);
	if (poise_dev_read(fs->dev, lo, h, sizeof(*h)) != sizeof(*h))
		return 0;
	if (h->l_magic != POISE_LOG_COMMITTED || h->l_bytes > LANE_BYTES)
		return 0;
	if (poise_dev_read(fs->dev, lo + sizeof(*h), recs, h->l_bytes) != (ssize_t)h->l_bytes)
		return 0;
	return lane_crc(h, recs) == h->l_crc;
}

/* Lane i's committed transaction from either copy (both hold the same one
 * when both are intact): 1, else 0. */
static int lane_read(struct poise_fs *fs, int i, struct poise_lane *h, uint8_t *recs)
{
	return lane_copy_read(fs, i, 0, h, recs) || lane_copy_read(fs, i, 1, h, recs);
}

int log_pending(struct poise_fs *fs)
{
	uint8_t *recs = malloc(LANE_BYTES);
	struct poise_lane h;
	int n = 0;
	if (!recs)
		return -ENOMEM;
	for (int i = 0; i < (int)fs->sb.s_nlanes; i++)
		n += lane_read(fs, i, &h, recs);
	free(recs);
	return n;
}

int log_replay(struct poise_fs *fs, int *replayed)
{
	struct pending p[POISE_NLANES];
	struct poise_lane h;
	int n = 0, ret = 0;
	uint64_t maxseq = 0;
	pthread_once(&fork_once, fork_watch);
	fs->fork_mark = __atomic_load_n(&forks, __ATOMIC_RELAXED);
	uint8_t *recs = malloc(LANE_BYTES);
	if (!recs)
		return poise_err(ENOMEM, "out of memory");
	for (int i = 0; i < (int)fs->sb.s_nlanes; i++) {
		if (lane_read(fs, i, &h, recs)) {
			p[n].seq = h.l_seq;
			p[n].lane = i;
			n++;
		}
	}
	qsort(p, (size_t)n, sizeof(p[0]), by_seq);
	for (int j = 0; j < n && ret == 0; j++) {
		lane_read(fs, p[j].lane, &h, recs);
		ret = apply(fs, recs, h.l_bytes, 1);
		poise_fence();
		if (h.l_seq > maxseq)
			maxseq = h.l_seq;
	}
	/* retire every lane (committed ones are applied, the rest never
	 * happened) */
	for (int i = 0; ret == 0 && i < 2 * (int)fs->sb.s_nlanes; i++) {
		uint64_t zero = 0, lo = lane_off(fs, i / 2, i % 2);
		ssize_t k = poise_dev_store(fs->dev, lo, &zero, sizeof(zero));
		if (k < 0 && !unclearable(fs, lo, sizeof(zero)))
			ret = (int)k;
	}
	poise_fence();
	free(recs);
	fs->seq = maxseq;
	*replayed = n;
	return ret;
}
