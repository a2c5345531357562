/*
 * fs.h - in-memory structures of a mounted poise file system, shared by the
 * files of src/fs/.  On-media structures are in layout.h (struct
 * poise_dinode on media, struct inode in memory).
 *
 * Layers (each calls only those above it in this list):
 *   log.c     transactions: redo-log lanes make multi-range updates atomic
 *   alloc.c   free blocks and inode numbers (derived at mount), per thread
 *   inode.c   the inode cache, dinode store, extent maps
 *   dir.c     directory entries and their DRAM hash index
 *   super.c   mkfs, mount (replay, scan), unmount
 *   file.c    read/write/truncate/fallocate on inodes
 *   namei.c   paths and the namespace operations; api.c the public calls
 *   fsck.c    the checker
 *
 * Lock order (outer first): fs->rename_lock (which a rename of files
 * inside one directory does without, and so does an rmdir whose try-lock
 * of the directory it removes succeeds while it holds the parent), then
 * directory inodes (parent before child; a rename's two by inode number,
 * under rename_lock), then file
 * inodes (two by inode number), then an allocator shard / fs->ialloc_lock
 * / fs->icache_lock (iget holds icache_lock, then ialloc_lock across a
 * dinode read), then a log lane.  A transaction holds the locks of every structure it writes
 * until tx_commit() returns (its lane record is then durably retired).
 */
#ifndef POISE_FS_H
#define POISE_FS_H

#include "fs/layout.h"
#include "dev/dev.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct dir;

/* An inode in memory.  `lock` guards d, ext, dir and nopen; ops that only
 * read data or overwrite mapped blocks take it shared, anything that
 * changes the extent map, size or namespace takes it exclusive. */
struct inode {
	uint64_t ino;
	uint16_t type;             /* S_IFMT bits: immutable, read without the lock */
	uint64_t parent;           /* directories: atomic mirror of d.i_parent, for
				    * lock-free ".." and ancestry checks; written
				    * under fs->rename_lock */
	pthread_rwlock_t lock;
	struct poise_dinode d;     /* mirror of the dinode as last committed */
	struct poise_extent *ext;  /* all extents, sorted by e_lblk */
	uint32_t next;
	uint64_t *chain;           /* extent blocks holding ext[5..], in order:
				    * primary, replica, primary, replica, ... */
	uint32_t nchain;           /* blocks in chain (2 per link) */
	struct dir *dir;           /* directories: the DRAM index */
	int nopen;                 /* open descriptors */
	int dead;                  /* freed on media; the number may be reused */
	int times_dirty;           /* mtime/ctime changed by an overwrite, not yet stored */
	struct inode *grave;       /* next in the graveyard or limbo (inode.c) */
	uint64_t grave_tag;        /* its limbo batch's EBR tag */
	struct inode *batch_tail;  /* a limbo batch's first inode: its last */
};

struct tx;

#define POISE_MAX_FILES 65536

struct file {
	struct inode *ip; /* NULL: slot free.  Written under fd_lock. */
	int flags;        /* O_ACCMODE | O_APPEND ... */
	int blockpath;    /* O_DIRECT on the block path (odirect=block) */
};

/* A log lane in memory (log.c), its mutex and its retirement count each
 * on a cache line of their own: the lane's thread takes the mutex on
 * every commit, other threads' commits read the count.  The lane's
 * retire stores are counted in issued after they are made; a commit that
 * does not know that count durable (log.c's known_durable) writes the
 * lane's headers back before its own fence (atomics). */
struct lane_state {
	pthread_mutex_t lock __attribute__((aligned(64))); /* held from a commit's step 1 to 3 */
	struct {
		uint64_t issued; /* 64 bits: never wraps back to a count a thread remembers */
		uintptr_t by; /* the thread that made the last retire stores */
	} r __attribute__((aligned(64)));
};

struct poise_fs {
	struct poise_dev *dev;
	uint8_t *base;
	struct poise_super sb;
	uint64_t nblocks, data_blk, data_end; /* data blocks: [data_blk, data_end) */

	/* log (log.c) */
	struct lane_state *lanes; /* POISE_NLANES of them */
	int lanes_hi;             /* atomic: lanes [0, lanes_hi) have committed */
	uint64_t seq;             /* atomic */
	uint64_t log_id;          /* unique to this mount in the process (log_replay) */
	unsigned fork_mark; /* the process's fork count at mount (log_replay): a forked child does not commit */

	/* blocks (alloc.c): 1 bit per pool block, 1 = in use; the data area is
	 * cut into shards with a lock each, a thread starts in its own shard */
	uint64_t *bmap;
	struct alloc_shard *shards;
	unsigned nshards;
	uint64_t nfree; /* atomic */
	uint64_t scan_budget; /* mount scan: blocks it may still claim (alloc_claim) */
	uint64_t *ino_bad;    /* mount scan: inodes whose blocks did not check out (iget refuses them) */
	/* inode numbers */
	pthread_mutex_t ialloc_lock;
	uint64_t *imap;
	uint64_t ifree, ihint;

	/* inode cache (inode.c): itab[ino], pointers published atomically */
	pthread_mutex_t icache_lock;
	struct inode **itab;
	struct inode *graves;  /* buried, not yet tagged (icache_lock) */
	struct inode *limbo;   /* tagged batches, newest first: freed when safe (icache_lock) */
	unsigned ngraves;      /* in graves (icache_lock) */
	int reclaiming;        /* a reclaim pass runs (atomic; inode.c) */

	uid_t uid;  /* owner of new inodes: the process that mounted */
	gid_t gid;
	pthread_mutex_t rename_lock;
	pthread_mutex_t fd_lock;
	struct file *files;
	int odirect_block;       /* pool option: O_DIRECT opens take the block path */
	struct poise_block *blk; /* opened at the first block-path open (fd_lock) */
	/* many processes (poise_pool_set_free_hook): freed blocks go to the
	 * hook instead of the allocator; set once, before other threads use fs */
	void (*free_hook)(void *ctx, uint64_t blk, uint64_t n);
	void *free_ctx;
	/* inodes alloc_ino() gave out and neither ipublish() nor free_ino()
	 * has settled (alloc.c; atomic bits, set under ialloc_lock, which iget
	 * holds across its check and dinode read): iget refuses them.  (Last,
	 * so that the fields above keep the cache lines they share: a shift
	 * of seq or nfree measured 10% at 2 threads.) */
	uint64_t *ino_new;
};

/* The directory-entry type (DT_DIR, DT_LNK, DT_REG) of a file of mode. */
static inline uint8_t dtype_of(uint16_t mode)
{
	return (uint8_t)IFTODT(mode & S_IFMT);
}

/* Is mode's type one that fs may hold?  Regular files, directories and
 * symlinks always; FIFOs, sockets and devices with POISE_FEAT_NODES. */
static inline int type_ok(const struct poise_fs *fs, uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
		return 1;
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return (__atomic_load_n(&fs->sb.s_features, __ATOMIC_ACQUIRE) & POISE_FEAT_NODES) != 0;
	}
	return 0;
}

/* A node: a FIFO, socket or device, which holds no blocks. */
static inline int is_node(uint32_t mode)
{
	return S_ISFIFO(mode) || S_ISSOCK(mode) || S_ISCHR(mode) || S_ISBLK(mode);
}

/* setattr masks (namei.c) */
#define POISE_SET_MODE 1u
#define POISE_SET_UID 2u
#define POISE_SET_GID 4u
#define POISE_SET_ATIME 8u
#define POISE_SET_MTIME 16u
#define POISE_SET_KILLPRIV 32u /* drop set-user-ID (and set-group-ID when group-executable) */

/* Each prototype below says what the caller must hold ("Caller holds") or
 * what the function takes itself ("Takes"); none may be called with a lock
 * that comes after the ones it takes in the order above. */

/* ---- log.c ---- */
/* Takes nothing: a transaction is private to its thread until commit. */
struct tx *tx_begin(struct poise_fs *fs);
struct poise_fs *tx_fs(struct tx *tx);
/* Queue a redo record: at commit, len bytes of data go to pool offset off. */
int tx_write(struct tx *tx, uint64_t off, const void *data, uint32_t len);
/* tx_write of only the 8-byte words of [off, off+len) that differ from
 * what the pool holds there with this transaction's earlier records laid
 * over it (len and off multiples of 8, len at most TX_DELTA_MAX; else, or
 * where the pool cannot be read, the whole range).  For bytes nobody else
 * writes until the commit (the caller holds their structure's lock) and
 * no transaction begun inside this one writes: replay is physical, so a
 * partial record is right only over the bytes it was computed against. */
#define TX_DELTA_MAX 512
int tx_write_delta(struct tx *tx, uint64_t off, const void *data, uint32_t len);
/* Commit (log.c's head comment): records and header, fence, apply, fence,
 * retire (made durable by the next commit).
 * Frees tx.  On error nothing was applied; -EROFS in a child forked after
 * the mount (its in-memory state is a copy the parent's changes make
 * stale: what it committed would be lost or clobber the parent's).  Takes a lane's lock (the
 * last lock of the order); caller holds the locks of everything tx writes. */
int tx_commit(struct tx *tx);
void tx_abort(struct tx *tx);
/* 0, or -EROFS (with the message) in a child forked after the mount: the
 * data path calls it before a write, truncate or writable map.  Takes nothing. */
int log_fork_check(struct poise_fs *fs);
/* Mount: replay committed lanes in sequence order.  Returns how many.
 * Single-threaded (mount): no lock. */
int log_replay(struct poise_fs *fs, int *replayed);
/* Used by fsck: committed records waiting in the lanes. */
int log_pending(struct poise_fs *fs);
/* The 1.2 lane hash of header h and its records (tests reseal lanes with it). */
uint64_t log_lane_hash(const struct poise_lane *h, const uint8_t *recs);
/* Make every retirement durable (unmount: the last commits' retirements
 * wait for a next commit that will not come). */
void log_quiesce(struct poise_fs *fs);

/* ---- alloc.c ---- */
/* Mount and unmount only (single-threaded). */
int alloc_init(struct poise_fs *fs);
void alloc_fini(struct poise_fs *fs);
/* Mount only (single-threaded): mark [blk, blk+n) held by an inode.
 * -EEXIST when a block of it is held already (cross-linked: nothing
 * marked), -E2BIG when the claims of the scan exceed twice the data area. */
int alloc_claim(struct poise_fs *fs, uint64_t blk, uint64_t n);
/* Up to want contiguous blocks near goal; at least 1.  *got set.  -ENOSPC.
 * Takes an allocator shard's lock; free_blocks the same. */
int alloc_blocks(struct poise_fs *fs, uint64_t goal, uint64_t want, uint64_t *blk, uint64_t *got);
/* Return blocks (after the transaction that dropped them committed). */
void free_blocks(struct poise_fs *fs, uint64_t blk, uint64_t n);
/* The same, never through fs->free_hook (what the hook's owner calls once
 * no process can reach the blocks). */
void free_blocks_now(struct poise_fs *fs, uint64_t blk, uint64_t n);
/* Take fs->ialloc_lock.  A number alloc_ino() gives out is new (iget
 * refuses it) until ipublish() or free_ino() settles it. */
int alloc_ino(struct poise_fs *fs, uint64_t *ino);
void free_ino(struct poise_fs *fs, uint64_t ino);
/* Is ino new?  Caller holds fs->ialloc_lock (iget, across its dinode read). */
int ino_is_new(const struct poise_fs *fs, uint64_t ino);
/* ino is no longer new (atomic; no lock needed). */
void ino_settled(struct poise_fs *fs, uint64_t ino);
void ino_mark_used(struct poise_fs *fs, uint64_t ino);

/* ---- inode.c ---- */
static inline uint64_t ino_off(const struct poise_fs *fs, uint64_t ino)
{
	return fs->sb.s_itable_blk * POISE_BLOCK + (ino - 1) * POISE_INODE_SIZE;
}
static inline uint64_t ino_roff(const struct poise_fs *fs, uint64_t ino)
{
	return fs->sb.s_itable_replica_blk * POISE_BLOCK + (ino - 1) * POISE_INODE_SIZE;
}
/* Read dinode ino into d: the primary copy, else the replica (which then
 * rewrites the primary: the write clears its poison).  0, -EIO when both
 * copies are unreadable, -EUCLEAN when neither passes its checksum. */
int dinode_read(struct poise_fs *fs, uint64_t ino, struct poise_dinode *d);
static inline uint8_t *blk_ptr(const struct poise_fs *fs, uint64_t blk)
{
	return fs->base + blk * POISE_BLOCK;
}
void dinode_seal(struct poise_dinode *d);
int dinode_check(const struct poise_dinode *d);
void extent_seal(struct poise_extent *e);
/* Read the extent block pair (p, r) of inode ino holding count extents
 * into buf, from the better copy (healing the other).  0, -EIO when both
 * copies are unreadable, -EUCLEAN when neither checks out. */
int extblk_read(struct poise_fs *fs, uint64_t ino, uint64_t p, uint64_t r, uint32_t count, uint8_t *buf);
/* Do the n extents at e pass their checks and follow each other in file
 * order, the first at or past *lend?  Sets *lend past the last.  1 or 0.
 * (A chain that loops repeats extents, so it fails here at its first
 * repetition.) */
int extents_ok(const struct poise_fs *fs, const struct poise_extent *e, uint32_t n, uint64_t *lend);
/* Get the in-memory inode (loading it); -ENOENT for a free inode, -EUCLEAN
 * for a corrupt one.  Takes fs->icache_lock (a directory's index is loaded
 * under it); caller may hold inode locks, never icache_lock. */
/* Is d's type one fs holds, with the fields its type allows (no device
 * number off devices, no data on nodes)?  0 or -EUCLEAN; iget and fsck
 * both check with it. */
int dinode_type_check(struct poise_fs *fs, uint64_t ino, const struct poise_dinode *d);
int iget(struct poise_fs *fs, uint64_t ino, struct inode **ipp);
/* A new inode in memory (caller logs its dinode, then ipublish()es it,
 * which takes fs->icache_lock; so does iput_dead).  From alloc_ino() until
 * ipublish() or free_ino() the number is marked new, and iget() answers
 * -ENOENT for it without reading the dinode: the commit may be writing
 * both copies, and a read between them would "heal" the new primary from
 * the old replica. */
int inew(struct poise_fs *fs, uint64_t ino, uint16_t mode, struct inode **ipp);
void ipublish(struct poise_fs *fs, struct inode *ip);
/* Log the dinode image nd (sealed here) for ip into tx, both copies, only
 * the words that change (tx_write_delta: a 4 KiB append's records shrink
 * from two 256-byte images, 544 bytes with their headers, to two runs per
 * copy, about 260 bytes).  Caller holds ip->lock exclusive (or owns ip:
 * not yet published), and no transaction begun inside tx after this call
 * writes ip (a directory that grows, dir_add, does so before its parent
 * operation stores it). */
int istore(struct tx *tx, struct inode *ip, struct poise_dinode *nd);
/* Caller holds ip->lock exclusive for ext_store and ext_commit.
 * Replace ip's extent list by ne[0..n) (sorted) inside tx: nd receives the
 * inline part and chain head; the overflow is logged in place when one
 * record changed, else written as a fresh chain.  Nothing in ip changes
 * until ext_commit(); ext_abort() undoes the allocations. */
struct ext_change {
	struct poise_extent *ext; /* the new list (owned) */
	uint32_t n;
	uint64_t *chain;          /* the new chain (owned) */
	uint32_t nchain;
	int fresh;                /* chain blocks are new: old ones free at commit */
};
int ext_store(struct tx *tx, struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd,
	      const struct poise_extent *ne, uint32_t n, struct ext_change *ch);
void ext_commit(struct poise_fs *fs, struct inode *ip, struct ext_change *ch);
void ext_abort(struct poise_fs *fs, struct ext_change *ch);
/* Block lookup: pool block of file block lblk, or 0 (hole); *run = blocks
 * contiguous from there (for a hole: blocks to the next extent, or ~0).
 * Caller holds ip->lock (shared is enough). */
uint64_t imap(const struct inode *ip, uint64_t lblk, uint64_t *run);
/* The same on a list being built (sorted extents). */
uint64_t lmap(const struct poise_extent *ext, uint32_t n, uint64_t lblk, uint64_t *run);
void iput_dead(struct poise_fs *fs, struct inode *ip);
void icache_fini(struct poise_fs *fs);
int64_t now_ns(void);

/* ---- replica.c ---- */
/* Defects of one copy of a replicated block (0 = sound). */
typedef unsigned (*replica_score_fn)(const struct poise_fs *fs, const uint8_t *buf, const void *ctx);
/* Read the pair (p, r) into buf from the better copy, rewriting the worse
 * (and a sound-looking replica the bad-block table lists).  Returns the
 * defect count of the copy in buf, or -EIO when neither can be read. */
int replica_read(struct poise_fs *fs, uint64_t p, uint64_t r, uint8_t *buf, replica_score_fn score,
		 const void *ctx);
/* The bad-block table lists a sector of pool block blk. */
int blk_known_bad(const struct poise_fs *fs, uint64_t blk);

/* ---- xattr.c ---- */
/* Linux's semantics: size 0 asks for the length; -ERANGE when too small,
 * -ENODATA when absent; flags XATTR_CREATE / XATTR_REPLACE.  Each takes
 * ip->lock itself (get and list shared, set and remove exclusive): caller
 * holds none of ip's locks. */
#define XATTR_ACL_ACCESS "system.posix_acl_access"
#define XATTR_ACL_DEFAULT "system.posix_acl_default"
int xattr_name_ok(const char *name);
/* Append the entry name = value to attribute block b (its header's count
 * and length kept): 0, or -ENOSPC when it does not fit (no message). */
int xattr_append(uint8_t *b, const char *name, const void *value, size_t size);
/* xattr_get with ip->lock already held (either way). */
ssize_t xattr_get_locked(struct poise_fs *fs, struct inode *ip, const char *name, void *value, size_t size);
/* A change of an inode's attribute block inside a caller's transaction:
 * xattr_stage writes block b (NULL: none) to a fresh pair and points nd at
 * it; after the transaction, xattr_stage_end frees the old pair (committed)
 * or the fresh one (not).  Caller holds ip->lock exclusive (or owns a new
 * inode). */
struct xattr_pair {
	uint64_t fresh[2], old[2];
};
int xattr_stage(struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd, uint8_t *b, struct xattr_pair *st);
void xattr_stage_end(struct poise_fs *fs, struct xattr_pair *st, int committed);
/* A chmod to nd->i_mode: stage ip's access ACL rewritten to agree (nothing
 * staged when it has none). */
int xattr_chmod_stage(struct poise_fs *fs, struct inode *ip, struct poise_dinode *nd, struct xattr_pair *st);

/* ---- acl.c ---- (values of system.posix_acl_*; pure) */
/* Is value a valid ACL?  *base_only: it holds only the owner, group and
 * other entries.  0 or -EINVAL. */
int acl_check(const void *value, size_t size, int *base_only);
/* The permission bits a valid access ACL gives (other bits of mode kept). */
uint16_t acl_mode(const void *value, size_t size, uint16_t mode);
/* Rewrite a valid access ACL's owner, mask (or group) and other entries to
 * mode's bits. */
void acl_chmod(void *value, size_t size, uint16_t mode);
/* A parent's default ACL into a new inode's access ACL (in place), masked
 * by *mode, which gets the result's bits; 1 when the result needs storing
 * (named entries or a mask), 0 when the mode says it all. */
int acl_create(void *value, size_t size, uint16_t *mode);
ssize_t xattr_get(struct poise_fs *fs, struct inode *ip, const char *name, void *value, size_t size);
ssize_t xattr_list(struct poise_fs *fs, struct inode *ip, char *list, size_t size);
int xattr_set(struct poise_fs *fs, struct inode *ip, const char *name, const void *value, size_t size, int flags);
int xattr_remove(struct poise_fs *fs, struct inode *ip, const char *name);

/* ---- dir.c ---- */
/* Build dp's index from its blocks.  Caller holds fs->icache_lock (iget)
 * or owns dp (not yet published). */
int dir_load(struct poise_fs *fs, struct inode *dp);
/* Lookup under dp->lock (shared is enough): 0 and *ino, *type; or -ENOENT. */
int dir_lookup(struct inode *dp, const char *name, size_t len, uint64_t *ino, uint8_t *type);
/* Changes inside tx (dp->lock exclusive).  dir_add may first grow the
 * directory by a block in a transaction of its own.  The DRAM index changes
 * at dir_commit() (after tx_commit succeeded) or is restored by dir_abort(). */
int dir_add(struct tx *tx, struct poise_fs *fs, struct inode *dp, const char *name, size_t len,
	    uint64_t ino, uint8_t type);
int dir_remove(struct tx *tx, struct poise_fs *fs, struct inode *dp, const char *name, size_t len);
int dir_retarget(struct tx *tx, struct poise_fs *fs, struct inode *dp, const char *name,
		 size_t len, uint64_t ino, uint8_t type);
void dir_commit(struct inode *dp);
void dir_abort(struct inode *dp);
/* Caller holds dp->lock (shared is enough) for dir_count, dir_corrupt and
 * dir_snapshot. */
size_t dir_count(struct inode *dp);
/* Entries that failed their checks at load (fsck reports them). */
size_t dir_corrupt(struct inode *dp);
/* Snapshot of names for readdir (malloc'd). */
struct poise_dirent_snap {
	uint64_t ino;
	uint8_t type;
	char name[POISE_NAME_MAX + 1];
};
int dir_snapshot(struct inode *dp, struct poise_dirent_snap **out, size_t *n);
void dir_free(struct dir *d);

/* ---- file.c ---- */
struct poise_block;
/* bp: the block path, or NULL for DAX.  Each takes ip->lock itself (read
 * and in-place writes shared; allocating writes, truncate, fallocate and
 * file_sync_times exclusive), then allocator shards and a lane: caller
 * holds none of ip's locks. */
ssize_t file_read(struct poise_fs *fs, struct inode *ip, void *buf, size_t len, uint64_t off,
		  struct poise_block *bp);
ssize_t file_write(struct poise_fs *fs, struct inode *ip, const void *buf, size_t len,
		   uint64_t off, int append, struct poise_block *bp);
int file_truncate(struct poise_fs *fs, struct inode *ip, uint64_t size);
int file_fallocate(struct poise_fs *fs, struct inode *ip, int mode, uint64_t off, uint64_t len);
/* The size grows to `size` (never shrinks) without zeroing anything: the
 * bytes between were written into blocks the file has, by a process of
 * the data channel (docs/MULTIPROC.md); blocks from max(the new size's
 * block, trim_from) on are dropped (trim_from UINT64_MAX: none).  0 or
 * -errno. */
int file_grow(struct poise_fs *fs, struct inode *ip, uint64_t size, uint64_t trim_from);
/* Free every block of an inode being deleted (after its tx committed).
 * Takes allocator shards only. */
void file_free_all(struct poise_fs *fs, struct poise_extent *ext, uint32_t n, uint64_t *chain,
		   uint32_t nchain);
int file_sync_times(struct poise_fs *fs, struct inode *ip);
/* A read of ip under policy how (POISE_ATIME_*): set its access time to now
 * in DRAM (stored as file_sync_times stores mtime) when the policy says
 * so; 1 when it did.  Takes ip->lock shared. */
int file_touch_atime(struct inode *ip, int how);

/* ---- super.c ---- */
/* Single-threaded: the pool is the caller's alone (poise_dev_open's lock). */
int fs_mkfs(struct poise_dev *dev, uint64_t ninodes);
int fs_mount(struct poise_dev *dev, struct poise_fs **out);
void fs_unmount(struct poise_fs *fs);
/* Add features feat (POISE_FEAT_*) to the format inside tx: both copies of
 * the superblock move to 1.1 with the bits set.  *out gets the new
 * superblock; 1 when it changed (the caller calls super_publish after tx
 * commits), 0 when fs already had feat.  Any thread; racing upgrades
 * write the same bytes. */
int super_add_features(struct tx *tx, struct poise_fs *fs, uint64_t feat, struct poise_super *out);
void super_publish(struct poise_fs *fs, const struct poise_super *s);

#endif
