/*
 * log.c - transactions: redo-log lanes make a multi-range metadata update
 * atomic across a crash.
 *
 * A transaction stages records (pool offset, bytes) in DRAM.  tx_commit()
 * in a format 1.2 pool (POISE_FEAT_LOG_HASH) pays two fences; poise 0.2
 * paid four (one after the records and one after the retirement as well):
 *   0. only if this thread stored to the pool since its last fence (the
 *      data of an extending write, a new directory or chain block: bytes
 *      the records will point at): fence, so they are durable before the
 *      commit can be;
 *   1. writes the records and the lane header (magic, global sequence
 *      number, a 64-bit hash over header and records) into both
 *      copies of the lane, and writes back the headers of lanes whose
 *      retirement is not yet known durable (below); fence  <- commit point
 *   2. applies every record to its place; fence;
 *   3. retires the lane (its header zeroed) in both copies, without a
 *      write-back or a fence: the next commit of any thread writes the
 *      lines back and makes them durable (step 1).  Neither a write-back
 *      nor a locked instruction follows the apply fence here, since either
 *      would wait for the apply's write-backs like a third fence (about
 *      200 ns a commit on this machine).
 * Records and header share one fence: a crash in step 1 may leave any of
 * their lines old or new, and a header whose records are not all there
 * fails its hash, so the lane reads as never committed (the caller had
 * not returned).  The hash, not the crc, is what makes this safe: a crc
 * over a message followed by its own crc is a constant, so a crc32c over
 * records does not see the contents of the crc-sealed extents, entries and
 * inodes inside them, and a lane torn between two transactions' extents
 * passes it (the crash harness found exactly that).  The hash mixes every
 * word in with a multiply, which is not linear.  The deliberately wrong
 * writer 2 leaves the last record out of both checks and the harness
 * catches it.  In 1.0 and 1.1 pools the lanes carry the crc alone (what an
 * older poise checks), so step 1 keeps a fence between the records and
 * the header there, and before the records overwrite a lane its last
 * retirement is made durable (else that old header could stand over a
 * mix of old and new records): up to four fences, as before.
 * A retirement zeroes the whole header, since a header's stores may reach
 * the media one 8-byte word at a time: a new magic over the rest of an old
 * header must not make the old transaction valid again.
 * Mount replays the lanes whose header is committed and whose checks pass
 * in either copy (the one with the higher sequence number when both do),
 * in sequence order; a lane without a valid header in either copy is
 * ignored (the transaction never happened).  Records are physical, so
 * replay is idempotent.  The media format of a lane is the same in every
 * version but for l_hash; only the order of the writes changed, and an
 * older poise replays a 1.1 pool's lanes as it always did.
 *
 * Why a retirement may wait for the next commit.  A lane whose retirement
 * is not durable at a crash is replayed again: harmless as long as no
 * later transaction touching the same bytes has applied anything, since
 * replaying it in sequence order rewrites what is already there, and a
 * later committed one is replayed after it.  A later transaction T on
 * those bytes starts after this one returned (a transaction holds the
 * locks of every structure it writes until tx_commit() returns), so the
 * retirement's stores and its retirement count happened before T's
 * step 1 reads the counts; T writes the header back (a cache-line
 * write-back acts on the line whichever core stored it) and T's fence makes
 * the retirement durable before T applies a byte.  A fence orders only its
 * own thread's write-backs, and the retiring thread made none, which is
 * why T writes the line back itself (the deliberately wrong writer 3 does
 * so only for its own thread's lanes, and the threaded harness catches
 * it).  A header that cannot be written back through the mapping (its
 * page was listed poisoned after the retire stores went into the cache,
 * and is now protected) is rewritten through the backend instead, durable
 * at once, under its lane's mutex so that it cannot overwrite a newer
 * commit's header; T does this (settle_unmapped, only on a pool whose
 * table lists poison) before it takes its own lane, so it never holds two
 * lane mutexes (t_retire_then_poison in the crash harness).  Left open:
 * poison listed in that page between settle_unmapped and T's write-backs,
 * a window of a few hundred nanoseconds; closing it would cost every
 * commit its write-backs before it takes its lane, which measured up to
 * 10% slower at 2 threads.
 * So at any crash, every lane still valid is either the newest transaction
 * on its bytes or older than transactions that are themselves still
 * valid.  Invariant: a lane is reused only by its own next commit (its
 * mutex is held from step 1 to 3), after its own apply fence.
 *
 * Delta records (tx_write_delta, what istore uses): only the 8-byte words
 * of a range that differ from what the pool holds there, once this
 * transaction's earlier records are laid over it.  Replay is physical, so
 * a delta is right only over the bytes it was computed against; it is,
 * because those bytes are durable before the delta's commit: they are
 * what the last transaction on them applied and fenced before retiring
 * (and a retirement that is not durable replays that transaction first,
 * in sequence order), and nobody else writes them until this commit (the
 * caller holds their structure's lock; a transaction nested in this one,
 * a directory's growth, commits before its parent operation stores the
 * directory).  A range the pool cannot give back is logged whole.
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
 * Why the lane's twin is a whole copy: a replay that has lost one copy
 * needs every record of the other.  Half a lane per copy (each copy the
 * records of one of the structures' two copies) would leave the other
 * copy of each structure at its old contents, which are valid and would
 * be read as current; and the second copy costs no ordering point, only
 * cache lines written back under the same fence.
 *
 * Lanes: POISE_NLANES, one per thread slot (threads are spread round-robin
 * on first use); each has a mutex held from step 1 to 3.
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

/* Is this process a fork of the one that mounted fs? */
static int forked_since_mount(const struct poise_fs *fs)
{
	return __atomic_load_n(&forks, __ATOMIC_RELAXED) != fs->fork_mark;
}

int log_fork_check(struct poise_fs *fs)
{
	if (!forked_since_mount(fs))
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

/* Lane bytes a record of len data bytes takes: its header, the data padded
 * to 8. */
static uint32_t rec_span(uint32_t len)
{
	return (uint32_t)sizeof(struct poise_logrec) + ((len + 7) & ~7u);
}

int tx_write(struct tx *tx, uint64_t off, const void *data, uint32_t len)
{
	uint32_t need = rec_span(len);
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

/* What the pool holds at [off, off+len) once this transaction's
 * records so far are laid over it, in the order apply() writes them;
 * -EIO where the pool cannot be read. */
static int tx_view(struct tx *tx, uint64_t off, uint8_t *out, uint32_t len)
{
	if (poise_dev_read(tx->fs->dev, off, out, len) != (ssize_t)len)
		return -EIO;
	for (uint32_t at = 0; at < tx->used;) {
		struct poise_logrec r;
		memcpy(&r, tx->buf + at, sizeof(r));
		uint64_t lo = r.r_off > off ? r.r_off : off;
		uint64_t hi = r.r_off + r.r_len < off + len ? r.r_off + r.r_len : off + len;
		if (lo < hi)
			memcpy(out + (lo - off), tx->buf + at + sizeof(r) + (lo - r.r_off), hi - lo);
		at += rec_span(r.r_len);
	}
	return 0;
}

int tx_write_delta(struct tx *tx, uint64_t off, const void *data, uint32_t len)
{
	uint64_t old[TX_DELTA_MAX / 8], now[TX_DELTA_MAX / 8];
	uint32_t n = len / 8;
	if (len > TX_DELTA_MAX || (len | off) % 8 || tx_view(tx, off, (uint8_t *)old, len) < 0)
		return tx_write(tx, off, data, len);
	memcpy(now, data, len);
	for (uint32_t i = 0; i < n;) {
		if (old[i] == now[i]) {
			i++;
			continue;
		}
		/* a run of differing words; a gap of up to two equal words is
		 * cheaper inside the run than a second record header */
		uint32_t end = i + 1;
		for (uint32_t j = end; j < n && j - end <= 2; j++)
			if (old[j] != now[j])
				end = j + 1;
		int ret = tx_write(tx, off + 8 * i, now + i, 8 * (end - i));
		if (ret < 0)
			return ret;
		i = end;
	}
	return 0;
}

void tx_abort(struct tx *tx)
{
	tx_end(tx);
}

/* The start of the last record of [recs, recs+bytes). */
static uint32_t last_record_at(const uint8_t *recs, uint32_t bytes)
{
	uint32_t at = 0, prev = 0;
	while (at < bytes && bytes - at >= sizeof(struct poise_logrec)) {
		struct poise_logrec r;
		memcpy(&r, recs + at, sizeof(r));
		prev = at;
		if (r.r_len > bytes - at)
			break;
		at += rec_span(r.r_len);
	}
	return prev;
}

/* The record bytes a lane's checks cover: all of them, but for the
 * deliberately wrong writer 2 (test builds, in the writer and the reader
 * alike) not the last record, so that a header can be whole while that
 * record is torn. */
static uint32_t covered(const struct poise_lane *h, const uint8_t *recs)
{
	if (__builtin_expect(poise_bug == 2, 0) && h->l_nrec > 1)
		return last_record_at(recs, h->l_bytes);
	return h->l_bytes;
}

/* crc32c over the header (its crc field zero) and the records. */
static uint32_t lane_crc(const struct poise_lane *h, const uint8_t *recs)
{
	struct poise_lane c = *h;
	c.l_crc = 0;
	return poise_crc32c(poise_crc32c(0, &c, sizeof(c)), recs, covered(h, recs));
}

/* 1.2's lane hash: over the header (crc and hash zero) and the records,
 * 8 bytes at a time, each word mixed in with a multiply (carries make it
 * non-linear over GF(2): unlike a crc, it sees the contents of records
 * that carry crcs of their own).  Detects a lane torn between two
 * transactions' lines; it is no defence against a forger, who can write
 * any hash (replay bounds-checks every record regardless). */
static uint64_t mix(uint64_t x, uint64_t w)
{
	x ^= w;
	x *= 0xff51afd7ed558ccdULL;
	return x ^ (x >> 32);
}

/* Mix the 32-byte chunks of [p, p+len) (len a multiple of 32) into the
 * four chains x. */
static void mix32s(uint64_t *x, const uint8_t *p, size_t len)
{
	uint64_t w[4];
	for (size_t i = 0; i < len; i += 32) {
		memcpy(w, p + i, 32);
		for (int j = 0; j < 4; j++)
			x[j] = mix(x[j], w[j]);
	}
}

uint64_t log_lane_hash(const struct poise_lane *h, const uint8_t *recs)
{
	struct poise_lane c = *h;
	c.l_crc = 0;
	c.l_hash = 0;
	/* four independent chains (the multiplies overlap), over the header
	 * then the records, folded together at the end */
	uint64_t x[4] = {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL, 0x082efa98ec4e6c89ULL};
	mix32s(x, (const uint8_t *)&c, sizeof(c));
	uint32_t n = covered(h, recs), i = n & ~31u;
	mix32s(x, recs, i);
	for (int j = 0; i < n; j++, i += 8) { /* the last 8 to 24 bytes, the last word padded */
		uint64_t v = 0;
		memcpy(&v, recs + i, n - i < 8 ? n - i : 8);
		x[j] = mix(x[j], v ^ ((uint64_t)(n - i) << 56));
	}
	uint64_t r = mix(mix(mix(mix(x[0], x[1]), x[2]), x[3]), n);
	r *= 0xc4ceb9fe1a85ec53ULL;
	return r ^ (r >> 29);
}

/* 1 when the pool's lanes carry the hash (format 1.2): a commit then
 * writes records and header under one fence. */
static int hashed(struct poise_fs *fs)
{
	return (__atomic_load_n(&fs->sb.s_features, __ATOMIC_ACQUIRE) & POISE_FEAT_LOG_HASH) != 0;
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
		if (__builtin_expect(poise_apply_hook != 0, 0) && !replay)
			poise_apply_hook(r.r_off);
		at += rec_span(r.r_len);
	}
	return 0;
}

/* A number unique to the calling thread, never reused by a later one (a
 * thread-local's address would be: glibc reuses exited threads' stacks,
 * and a new thread must not take an old one's write-backs for its own). */
static uintptr_t thread_token(void)
{
	static uintptr_t next;
	static __thread uintptr_t me;
	if (!me)
		me = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
	return me;
}

/* A lane header copy at lo that cannot be written back through the
 * mapping: its own sectors hold listed poison (its stores failed; the
 * lane reads as not committed there), or its page does on a pool that
 * protects such pages (an emulated pool's PROT_NONE, fsdax's refused
 * fault: a write-back there would fault).  Stores to such a page went
 * through the backend, which made them durable on its own (lane_retire
 * sends its stores there when it sees the poison).  Device DAX protects
 * nothing: its lines are written back like any other. */
static int header_unmapped(struct poise_fs *fs, uint64_t lo)
{
	if (fs->dev->kind == POISE_DEV_DEVDAX)
		return unclearable(fs, lo, sizeof(struct poise_lane));
	return unclearable(fs, lo & ~(uint64_t)(POISE_PAGE - 1), POISE_PAGE); /* (the header's sectors too) */
}

/* Lane i's header copies header_unmapped() excludes: bit rep. */
static int unmapped_mask(struct poise_fs *fs, int i)
{
	return header_unmapped(fs, lane_off(fs, i, 0)) | header_unmapped(fs, lane_off(fs, i, 1)) << 1;
}

/* Write lane i's header lines back (both copies), but for the copies
 * unmapped_mask() names, which it returns: those need rewrite_unmapped(). */
static int write_back_header(struct poise_fs *fs, int i)
{
	int unmapped = unmapped_mask(fs, i);
	for (int rep = 0; rep < 2; rep++)
		if (!(unmapped >> rep & 1))
			poise_flush(fs->base + lane_off(fs, i, rep), sizeof(struct poise_lane));
	return unmapped;
}

/* The copies of lane i's retired header in mask cannot be written back
 * through the mapping (poison listed in their page after lane_retire left
 * its stores in the cache: by a scrub, a machine check elsewhere in the
 * page, a write error): the zero header again, through the backend,
 * durable at return.  Caller holds lane i's mutex: between commits the
 * header is zero, during one it is the new transaction's. */
static void rewrite_unmapped(struct poise_fs *fs, int i, int mask)
{
	static const struct poise_lane zero;
	for (int rep = 0; rep < 2; rep++) {
		uint64_t lo = lane_off(fs, i, rep);
		struct poise_lane h;
		/* (a header still committed here is a transaction whose apply
		 * failed, left for mount to replay or refuse: kept; an unreadable
		 * one cannot be replayed either) */
		if (!(mask >> rep & 1) || poise_dev_read(fs->dev, lo, &h, sizeof(h)) != sizeof(h) ||
		    h.l_magic == POISE_LOG_COMMITTED)
			continue;
		if (poise_dev_write(fs->dev, lo, &zero, sizeof(zero)) < 0 && !unclearable(fs, lo, sizeof(zero)))
			(void)poise_dev_mark_bad(fs->dev, lo, sizeof(zero)); /* unreadable = not committed */
	}
}

/* What this thread knows to be durable: the retirement count of each lane
 * that it last wrote back and fenced itself, for one mounted pool at a
 * time (a commit on another pool starts the table over: more write-backs,
 * never fewer).  Thread-local, so that no commit writes a line that other
 * threads' commits read. */
static __thread struct {
	uint64_t log_id;
	uint64_t n[POISE_NLANES];
} known_tab;

static uint64_t *known_durable(struct poise_fs *fs)
{
	if (known_tab.log_id != fs->log_id) {
		memset(known_tab.n, 0, sizeof(known_tab.n));
		known_tab.log_id = fs->log_id;
	}
	return known_tab.n;
}

/* Step 1's write-back of retirements: every lane whose retire stores are
 * not known durable gets its headers written back by this thread, so
 * this thread's next fence makes them durable.  Only lanes that have
 * committed are looked at (lanes_hi, returned).  seen[] takes
 * the counts written back, for retired_durable(). */
static int flush_retired(struct poise_fs *fs, uint64_t *seen)
{
	int hi = __atomic_load_n(&fs->lanes_hi, __ATOMIC_ACQUIRE);
	const uint64_t *known = known_durable(fs);
	for (int i = 0; i < hi; i++) {
		seen[i] = __atomic_load_n(&fs->lanes[i].r.issued, __ATOMIC_ACQUIRE);
		if (seen[i] == known[i])
			continue;
		/* retire stores are left in the cache (lane_retire): this
		 * thread writes the lines back, its own and other threads'
		 * alike, since a fence covers only its own thread's write-backs
		 * (the deliberately wrong writer 3 leaves other threads' lines
		 * out) */
		if (__builtin_expect(poise_bug == 3, 0) &&
		    __atomic_load_n(&fs->lanes[i].r.by, __ATOMIC_RELAXED) != thread_token())
			continue;
		(void)write_back_header(fs, i); /* (unmapped copies: settle_unmapped) */
	}
	return hi;
}

/* After the fence that followed flush_retired(seen): those counts are
 * durable, and this thread knows it. */
static void retired_durable(struct poise_fs *fs, const uint64_t *seen, int hi)
{
	memcpy(known_durable(fs), seen, (size_t)hi * sizeof(*seen));
}

/* Before a commit takes its lane (no lane mutex held, so waiting for one
 * cannot deadlock): every retirement not known durable whose header copy
 * cannot be written back is rewritten under its lane's mutex.  Only on a
 * pool with listed poison (tx_commit's test). */
static void settle_unmapped(struct poise_fs *fs)
{
	int hi = __atomic_load_n(&fs->lanes_hi, __ATOMIC_ACQUIRE);
	const uint64_t *known = known_durable(fs);
	for (int i = 0; i < hi; i++) {
		if (__atomic_load_n(&fs->lanes[i].r.issued, __ATOMIC_ACQUIRE) == known[i])
			continue;
		int mask = unmapped_mask(fs, i);
		if (!mask)
			continue;
		pthread_mutex_lock(&fs->lanes[i].lock);
		rewrite_unmapped(fs, i, mask);
		pthread_mutex_unlock(&fs->lanes[i].lock);
	}
}

/* Step 1 on lane `lane` (its mutex held): records and header into every
 * copy that takes them, no fence.  0 when at least one copy took the
 * whole transaction, -EIO when neither did. */
static int lane_write(struct poise_fs *fs, int lane, struct tx *tx, struct poise_lane *h)
{
	int live[2], any = 0, one_fence = hashed(fs);
	if (!one_fence && __atomic_load_n(&fs->lanes[lane].r.issued, __ATOMIC_ACQUIRE) != known_durable(fs)[lane]) {
		/* 1.0 and 1.1: the lane's last retirement is durable before its
		 * records are overwritten, or a crash could show that header over
		 * a mix of old and new records, and the crc cannot tell (the
		 * hash of 1.2 can) */
		uint64_t seen = __atomic_load_n(&fs->lanes[lane].r.issued, __ATOMIC_ACQUIRE);
		rewrite_unmapped(fs, lane, write_back_header(fs, lane)); /* (its mutex is held) */
		poise_fence();
		known_durable(fs)[lane] = seen;
	}
	for (int rep = 0; rep < 2; rep++)
		live[rep] = poise_dev_store(fs->dev, lane_off(fs, lane, rep) + sizeof(*h), tx->buf, tx->used) >= 0;
	if (!one_fence && (live[0] || live[1]))
		poise_fence(); /* 1.0 and 1.1: only a crc, so the records are durable before the header */
	for (int rep = 0; rep < 2; rep++)
		if (live[rep])
			any |= poise_dev_store(fs->dev, lane_off(fs, lane, rep), h, sizeof(*h)) >= 0;
	return any ? 0 : -EIO;
}

/* Step 3: the lane's transaction is applied and fenced; its header says
 * so from now on in both copies, durable at the next commit's fence.  The
 * whole header is zeroed, not only the magic: the next header's stores
 * can reach the media one 8-byte word at a time (a line written back
 * between two of them), and a header whose magic is new and the rest old
 * must not be the old transaction again. */
static void lane_retire(struct poise_fs *fs, int lane)
{
	static const struct poise_lane zero;
	for (int rep = 0; rep < 2; rep++) {
		uint64_t lo = lane_off(fs, lane, rep);
		/* a copy the next commit will not write back is made durable
		 * here (rare: poison in the lane's page) */
		ssize_t k = header_unmapped(fs, lo) ? poise_dev_write(fs->dev, lo, &zero, sizeof(zero))
						    : poise_dev_store_cached(fs->dev, lo, &zero, sizeof(zero));
		if (k < 0 && !unclearable(fs, lo, sizeof(zero)))
			(void)poise_dev_mark_bad(fs->dev, lo, sizeof(zero)); /* unreadable = not committed */
	}
	__atomic_store_n(&fs->lanes[lane].r.by, thread_token(), __ATOMIC_RELAXED);
	/* a plain store, not a locked add (the lane's mutex serializes its
	 * writers): a locked instruction would wait for the apply step's
	 * write-backs like a fence */
	__atomic_store_n(&fs->lanes[lane].r.issued, __atomic_load_n(&fs->lanes[lane].r.issued, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELEASE);
	poise_unfenced = 0; /* these stores are the next commit's to order (flush_retired), not a dependency */
}

void log_quiesce(struct poise_fs *fs)
{
	uint64_t seen[POISE_NLANES];
	if (forked_since_mount(fs))
		return; /* a forked child: its lane mutexes are copies, the parent's lanes are not its to write */
	settle_unmapped(fs);
	int hi = flush_retired(fs, seen);
	poise_fence();
	retired_durable(fs, seen, hi);
}

/* Lane `lane` commits: raise lanes_hi over it, before its retirement is
 * counted (a later commit that must see the count sees the lane). */
static void lane_used(struct poise_fs *fs, int lane)
{
	int hi = __atomic_load_n(&fs->lanes_hi, __ATOMIC_RELAXED);
	while (hi <= lane &&
	       !__atomic_compare_exchange_n(&fs->lanes_hi, &hi, lane + 1, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

int tx_commit(struct tx *tx)
{
	struct poise_fs *fs = tx->fs;
	int nl = (int)fs->sb.s_nlanes, first = lane_of_thread() % nl, lane = -1, ret = -EIO;
	uint64_t seen[POISE_NLANES];
	if (poise_unfenced)
		poise_fence(); /* step 0: what the records point at is durable first (and with no
				* record, tx_write_delta having found nothing to change, the data
				* the caller stored is durable at return all the same) */
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
	/* a pool with listed poison: retirements whose header cannot be
	 * written back are rewritten under their lane's mutex now, before this
	 * commit takes its own (settle_unmapped) */
	if (!bbt_empty(&fs->dev->bb))
		settle_unmapped(fs);
	for (int t = 0; t < nl && ret < 0; t++) {
		lane = (first + t) % nl;
		pthread_mutex_lock(&fs->lanes[lane].lock);
		h.l_seq = __atomic_add_fetch(&fs->seq, 1, __ATOMIC_RELAXED);
		/* 1.2: the hash alone (l_crc 0); before: the crc alone */
		h.l_hash = hashed(fs) ? log_lane_hash(&h, tx->buf) : 0;
		h.l_crc = hashed(fs) ? 0 : lane_crc(&h, tx->buf);
		lane_used(fs, lane);
		ret = lane_write(fs, lane, tx, &h);
		if (ret < 0)
			pthread_mutex_unlock(&fs->lanes[lane].lock); /* poisoned in both copies: the next lane */
	}
	if (ret < 0) {
		tx_end(tx);
		return poise_err(EIO, "no log lane can be written (media errors in both copies of every lane)");
	}
	int hi = flush_retired(fs, seen);
	poise_fence(); /* the commit point: from here the update survives a crash */
	retired_durable(fs, seen, hi);
	ret = apply(fs, tx->buf, tx->used, 0);
	poise_fence();
	if (ret == 0)
		lane_retire(fs, lane);
	pthread_mutex_unlock(&fs->lanes[lane].lock);
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
	return hashed(fs) ? log_lane_hash(h, recs) == h->l_hash && h->l_crc == 0 : lane_crc(h, recs) == h->l_crc;
}

/* Lane i's committed transaction from either copy: 1, else 0.  Both
 * copies hold the same one when both are intact; when they differ (one
 * copy's write failed, and the other kept an older transaction whose
 * retirement was not yet durable) the newer one is the lane's. */
static int lane_read(struct poise_fs *fs, int i, struct poise_lane *h, uint8_t *recs)
{
	if (!lane_copy_read(fs, i, 1, h, recs))
		return lane_copy_read(fs, i, 0, h, recs);
	uint64_t seq1 = h->l_seq;
	struct poise_lane h0;
	uint8_t *r0 = malloc(LANE_BYTES);
	if (r0 && lane_copy_read(fs, i, 0, &h0, r0) && h0.l_seq >= seq1) {
		*h = h0;
		memcpy(recs, r0, h0.l_bytes);
	}
	free(r0);
	return 1;
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
	static uint64_t mounts;
	fs->log_id = __atomic_add_fetch(&mounts, 1, __ATOMIC_RELAXED); /* known_durable's tables start over */
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
		static const struct poise_lane zero; /* the whole header: lane_retire says why */
		uint64_t lo = lane_off(fs, i / 2, i % 2);
		ssize_t k = poise_dev_store(fs->dev, lo, &zero, sizeof(zero));
		if (k < 0 && !unclearable(fs, lo, sizeof(zero)))
			ret = (int)k;
	}
	poise_fence();
	free(recs);
	for (int i = 0; i < POISE_NLANES; i++)
		fs->lanes[i].r.issued = 0;
	fs->seq = maxseq;
	*replayed = n;
	return ret;
}
