/*
 * layout.h - the on-media format of a poise file system.  Only the format
 * lives here: every structure has fixed-width little-endian fields (x86-64
 * is little-endian; the static asserts pin sizes), a CRC32C, and offsets or
 * block numbers, never pointers.  docs/FORMAT.md draws it.
 *
 *   block 0                 superblock (struct poise_super)
 *   log_blk ..              nlanes redo-log lanes of lane_blocks each
 *   log_replica_blk ..      the same lanes again (every commit writes both)
 *   itable_blk ..           inode table: ninodes x 256-byte poise_dinode
 *   data_blk ..             data: file blocks, directory blocks, extent blocks
 *   itable_replica_blk ..   inode table replica (every inode update writes both)
 *   nblocks-1               superblock replica
 *
 * Inode 2 is never named: its extents (file block = pool block) are the
 * quarantined blocks, whose bad sectors the platform could not clear; they
 * are never allocated again.
 *
 * Free space is not stored: mount derives it from the extent maps of the
 * inodes in use, so allocation needs no logging and a crash can only leave
 * blocks unreferenced (= free).  Field prefixes: s_ super, i_ dinode,
 * e_ extent, x_ extent block, d_ directory entry, l_ log.
 */
#ifndef POISE_LAYOUT_H
#define POISE_LAYOUT_H

#include <stdint.h>

#define POISE_MAGIC 0x3153464553494f50ULL /* "POISEFS1" */
#define POISE_FMT_MAJOR 1
#define POISE_FMT_MINOR 2
/* s_features: what a pool may hold beyond format 1.0.  A 1.0 reader
 * refuses any pool with s_features != 0, so a pool that may hold an inode
 * it would misread always carries a bit it does not know. */
#define POISE_FEAT_NODES 1ULL /* 1.1: FIFOs, sockets, character and block devices (i_rdev) */
/* 1.2: lane headers carry l_hash, and a commit writes records and header
 * under one fence (log.c).  A crc32c over records that hold crc-sealed
 * structures does not see those structures' contents (a crc over a
 * message followed by its own crc is a constant), so without the hash a
 * lane torn between two extents would still pass its crc. */
#define POISE_FEAT_LOG_HASH 2ULL
#define POISE_FEATURES_KNOWN (POISE_FEAT_NODES | POISE_FEAT_LOG_HASH)
/* The least format minor that may carry features f. */
#define POISE_FEAT_MINOR(f) ((f) & POISE_FEAT_LOG_HASH ? 2 : (f) & POISE_FEAT_NODES ? 1 : 0)
#define POISE_BLOCK 4096u
#define POISE_BLOCK_SHIFT 12
#define POISE_ROOT_INO 1ULL
#define POISE_QUARANTINE_INO 2ULL /* holds blocks with bad sectors that cannot be cleared */
#define POISE_NAME_MAX 255
#define POISE_NLANES 64
#define POISE_LANE_BLOCKS 4
#define POISE_INODE_SIZE 256
#define POISE_INODE_RATIO (16 * 1024) /* default: one inode per 16 KiB, as ext4 */
#define POISE_INLINE_EXTENTS 4
#define POISE_MAX_INODES (1ULL << 32)      /* inode numbers 1..s_ninodes fit in 32 bits */
#define POISE_MAX_FILE_SIZE (1ULL << 50)   /* the largest i_size of a file */

/* Superblock: block 0 and the last block.  s_crc covers bytes [0, 252). */
struct poise_super {
	uint64_t s_magic;
	uint16_t s_major, s_minor;
	uint32_t s_block_size;
	uint64_t s_pool_size;      /* bytes the file system spans */
	uint64_t s_nblocks;
	uint64_t s_log_blk;
	uint32_t s_nlanes, s_lane_blocks;
	uint64_t s_itable_blk;
	uint64_t s_itable_blocks;
	uint64_t s_ninodes;        /* inode numbers 1..s_ninodes */
	uint64_t s_itable_replica_blk; /* the inode table's replica: nblocks-1-itable_blocks */
	uint64_t s_data_blk;
	uint64_t s_replica_blk;    /* the superblock replica: s_nblocks - 1 */
	uint64_t s_root_ino;
	int64_t s_mkfs_time_ns;
	uint8_t s_uuid[16];
	uint64_t s_features;       /* 0 in version 1.0; POISE_FEAT_* in 1.1 */
	uint64_t s_quarantine_ino; /* POISE_QUARANTINE_INO */
	uint64_t s_log_replica_blk; /* the lanes' replicas: s_log_blk + nlanes * lane_blocks */
	uint8_t s_reserved[100];
	uint32_t s_crc;
};
_Static_assert(sizeof(struct poise_super) == 256, "superblock is 256 bytes");

/* An extent: file blocks [e_lblk, e_lblk+e_len) live at pool blocks
 * [e_pblk, e_pblk+e_len).  e_crc covers the first 24 bytes. */
struct poise_extent {
	uint64_t e_lblk;
	uint64_t e_pblk;
	uint32_t e_len;
	uint32_t e_flags; /* 0 in version 1.0 */
	uint32_t e_crc;
	uint32_t e_pad;
};
_Static_assert(sizeof(struct poise_extent) == 32, "extent is 32 bytes");

/* Inode: i_mode == 0 means free.  i_crc covers the 256 bytes with i_crc = 0.
 * Extents [0, 4) are inline; the rest live in a chain of extent blocks.
 * FIFOs, sockets and device nodes (only with POISE_FEAT_NODES) hold no
 * blocks and have size 0; i_rdev is the device number of a character or
 * block device (the kernel's dev_t encoding) and 0 for every other type. */
struct poise_dinode {
	uint32_t i_crc;
	uint16_t i_mode;   /* S_IFREG/DIR/LNK (1.1: also S_IFIFO/SOCK/CHR/BLK) | permissions */
	uint16_t i_flags;
	uint32_t i_nlink;
	uint32_t i_uid, i_gid;
	uint32_t i_nextents;
	uint64_t i_size;
	uint64_t i_generation;
	int64_t i_atime_ns, i_mtime_ns, i_ctime_ns;
	uint64_t i_ext_blk; /* first extent block, 0 if none */
	uint64_t i_blocks;  /* blocks held: data, directory and extent blocks */
	uint64_t i_parent;  /* directories: the parent's inode number */
	uint64_t i_ext_rblk; /* the first extent block's replica, 0 if none */
	uint64_t i_xattr_blk;  /* extended attributes: a block, 0 if none */
	uint64_t i_xattr_rblk; /* ... and its replica */
	uint64_t i_rdev;       /* 1.1: a device's number; 0 otherwise (1.0: reserved, 0) */
	uint64_t i_reserved;
	struct poise_extent i_ext[POISE_INLINE_EXTENTS];
};
_Static_assert(sizeof(struct poise_dinode) == POISE_INODE_SIZE, "inode is 256 bytes");

/* Extent block: a header, then extents.  x_crc covers the 64-byte header
 * with x_crc = 0; every extent carries its own e_crc.  Every extent block
 * is stored twice (a primary and a replica block with the same bytes), so
 * the chain links carry both: i_ext_blk/i_ext_rblk, x_next/x_rnext. */
#define POISE_EXTBLK_MAGIC 0x5458454553494f50ULL /* "POISEEXT" */
struct poise_extblk {
	uint64_t x_magic;
	uint32_t x_crc;
	uint32_t x_count;
	uint64_t x_next;  /* next extent block, 0 at the end */
	uint64_t x_owner; /* inode number */
	uint64_t x_rnext; /* the next block's replica */
	uint64_t x_reserved[3];
	struct poise_extent x_ext[];
};
#define POISE_EXTS_PER_BLOCK ((POISE_BLOCK - 64) / sizeof(struct poise_extent))
_Static_assert(sizeof(struct poise_extblk) == 64, "extent block header is 64 bytes");

/* Extended attributes: one block (and its replica) per inode that has any.
 * A 64-byte header, then entries packed from byte 64: u8 name length, u8
 * 0, u16 value length, the name (no NUL), the value, padded to 4 bytes.
 * x_crc covers the whole block with x_crc = 0.  A change writes a fresh
 * pair (not logged) and the inode's transaction switches to it. */
#define POISE_XATTR_MAGIC 0x5441584553494f50ULL /* "POISEXAT" */
struct poise_xattr_hdr {
	uint64_t a_magic;
	uint32_t a_crc;
	uint32_t a_count;
	uint32_t a_bytes; /* bytes of entries after the header */
	uint32_t a_pad;
	uint64_t a_owner; /* inode number */
	uint64_t a_reserved[4];
};
_Static_assert(sizeof(struct poise_xattr_hdr) == 64, "xattr header is 64 bytes");

/* Directory blocks: 64 slots of 64 bytes.  An entry takes d_nslots
 * consecutive slots of one block: the 16-byte header, then the name (no
 * NUL).  d_ino == 0 marks a free slot.  d_crc covers the header with
 * d_crc = 0 and the name. */
#define POISE_DSLOT 64
#define POISE_DSLOTS_PER_BLOCK (POISE_BLOCK / POISE_DSLOT)
struct poise_dirent {
	uint64_t d_ino;
	uint32_t d_crc;
	uint8_t d_name_len;
	uint8_t d_type;   /* DT_REG, DT_DIR, DT_LNK (1.1: also DT_FIFO/SOCK/CHR/BLK) */
	uint8_t d_nslots;
	uint8_t d_pad;
	char d_name[];
};
_Static_assert(sizeof(struct poise_dirent) == 16, "dirent header is 16 bytes");
#define POISE_DIRENT_SLOTS(name_len) ((16 + (name_len) + POISE_DSLOT - 1) / POISE_DSLOT)

/* Log lane: a 64-byte header, then records (struct poise_logrec + data
 * rounded up to 8 bytes).  l_magic == POISE_LOG_COMMITTED marks a committed
 * transaction not yet known to be applied; l_crc covers the header with
 * l_crc = 0 and all l_bytes of records (1.0, 1.1); in 1.2 l_crc is 0 and
 * l_hash covers the same with l_hash = 0 (log.c says why). */
#define POISE_LOG_COMMITTED 0x544d4d4f434f4c50ULL /* "PLOCOMMT" */
struct poise_lane {
	uint64_t l_magic;
	uint64_t l_seq;   /* global order of commits, for replay */
	uint32_t l_nrec;
	uint32_t l_bytes;
	uint32_t l_crc;
	uint32_t l_pad;
	uint64_t l_hash; /* 1.2 (POISE_FEAT_LOG_HASH): log.c's log_lane_hash over header and records; else 0 */
	uint64_t l_reserved[3];
};
_Static_assert(sizeof(struct poise_lane) == 64, "lane header is 64 bytes");
struct poise_logrec {
	uint64_t r_off; /* pool byte offset */
	uint32_t r_len;
	uint32_t r_pad;
};
_Static_assert(sizeof(struct poise_logrec) == 16, "log record header is 16 bytes");

#endif
