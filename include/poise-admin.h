/*
 * poise-admin.h - the administration interface of poise: check and repair
 * (fsck), scrub, a pool's bad-sector list, raw reads and writes through the
 * media-error path, pool files and who holds a pool.  The `poise` command,
 * the FUSE daemon and the tests use it; programs that only store files need
 * poise.h alone.
 *
 * Conventions as in poise.h: >= 0 or -errno, the detail in poise_errmsg().
 * A struct poise_dev is one open pool device (the pool without a file
 * system on top): opening one takes the pool's ownership lock as
 * poise_pool_open() does, so neither may be open twice at once; a mounted
 * pool is reached through its daemon instead.
 */
#ifndef POISE_ADMIN_H
#define POISE_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct poise_pool;
struct poise_dev;

/* ---- messages ---- */
/* Record "fmt..." as the calling thread's message for poise_errmsg() and
 * return -err (err > 0): for tools that report their own failures the
 * library's way.  poise_errno appends ": strerror(err)". */
int poise_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int poise_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the checker ---- */
struct poise_fsck_problem {
	char kind[24]; /* "superblock", "log", "inode", "blocks", "dirent", "nlink", "orphan", "space", "xattr" */
	uint64_t ino;  /* 0 when not about one inode */
	char detail[200];
	int repaired;
};
struct poise_fsck_report {
	struct poise_fsck_problem *p;
	size_t n, cap;
	uint64_t inodes_used, blocks_used, blocks_free, dirs, files, symlinks;
	int log_replayed;
	int mounted; /* 0: the pool did not mount (see p[0]) */
};
#define POISE_FSCK_REPAIR 1u
/* Check the pool at path (recovering as a mount does: log replay, orphans),
 * and with POISE_FSCK_REPAIR fix what can be fixed.  Returns 0 (report
 * filled, r->n problems) or -errno when the pool cannot be opened at all. */
int poise_fsck(const char *path, unsigned flags, struct poise_fsck_report *r);
void poise_fsck_free(struct poise_fsck_report *r);

/* ---- scrub: every bad range, and whose bytes it holds ---- */
struct poise_scrub_range {
	uint64_t sector, count;       /* 512-byte sectors, inside one block */
	char owner[16];               /* "file", "metadata", "free", "quarantined" */
	char what[64];                /* file: "file"/"symlink"; metadata: the structure */
	char path[1024];              /* the owner's path ("" when none) */
	uint64_t ino;
	uint64_t file_offset, length; /* file: the bytes of the file it covers */
	int repaired;
};
struct poise_scrub_report {
	struct poise_scrub_range *r;
	size_t n, cap;
	uint64_t blocks_scanned, sectors_bad;
	uint64_t found_new; /* sectors the scan found that the table did not list */
};
/* Scan the pool at path (mounting it).  0, or -errno when it cannot be
 * opened. */
int poise_scrub(const char *path, struct poise_scrub_report *rep);
/* The same on a pool this process has open and in service (the FUSE
 * daemon's): reports, repairs nothing a transaction could race. */
int poise_scrub_live(struct poise_pool *pool, struct poise_scrub_report *rep);
void poise_scrub_free(struct poise_scrub_report *rep);
/* The first sector of one copy of a metadata structure of an open pool, for
 * injection: "superblock" (the primary), "inodes" (the root inode's primary
 * sector), "dir" (the root directory's first block), "extents" (the first
 * extent block of any file), "log" (lane 0's header).  -ENOENT when the
 * pool has no such structure yet, -EINVAL for another kind. */
int poise_metadata_sector(struct poise_pool *pool, const char *kind, uint64_t *sector);
/* The files this process has loaded (opened, looked up, served) whose data
 * lies in pool bytes [off, off+len): up to max inode numbers into inos, the
 * count returned.  The FUSE mount drops the kernel's cached pages of these
 * after the control channel injects or clears media errors under them. */
long poise_range_owners(struct poise_pool *pool, uint64_t off, uint64_t len, uint64_t *inos, long max);

/* For a server that hands file bytes straight to the kernel (the FUSE
 * mount replies from the pool's mapping): [off, off+len) of readable
 * descriptor fd, clipped to the file's size, as up to max pieces of the
 * mapping (iov_base NULL: a hole, zeros).  Returns the count (0 at or past
 * the end of the file) with the file's block map locked for reading, so no
 * piece can be freed and reused before poise_read_unlock(*hold), which the
 * caller must call once the bytes are read (the hold stays valid if fd is
 * closed meanwhile: the close waits for it).  Without the lock: -EAGAIN
 * when a block of the range holds a known bad sector or more than max
 * pieces are needed (use poise_pread, which returns the exact prefix),
 * -EOPNOTSUPP on the block path, -EBADF.  The pieces are read without the
 * guarded copy: a reader must be one that survives a fault (the kernel's
 * copy from user memory fails the request with EFAULT instead). */
struct iovec;
struct poise_read_hold;
int poise_read_lock(struct poise_pool *pool, int fd, uint64_t off, uint64_t len, struct iovec *out, int max,
		    struct poise_read_hold **hold);
void poise_read_unlock(struct poise_read_hold *hold);

/* ---- many processes ----
 * While other processes map the pool and read or write file blocks through
 * maps they took (docs/MULTIPROC.md), a freed block must not be reused
 * until none of them can still reach it.  With a hook set, every block the
 * file system frees (data, extent chains, directories, attributes) goes to
 * hook(ctx, blk, n) instead of the allocator, its bad sectors left as they
 * are; the hook's owner gives the blocks back with poise_pool_free_now()
 * once no process can reach them (a range outside the data area is
 * ignored).  Blocks held at unmount are free again at the next mount (free
 * space is derived from the inodes).  The hook runs in the thread of the
 * operation that frees, before that operation returns; the owner tags the
 * blocks only after the operation (with the reader table's bump that
 * follows it).  A block given back twice is counted once.  Set the hook
 * right after opening the pool, before other threads use it; hook NULL
 * restores the default. */
void poise_pool_set_free_hook(struct poise_pool *pool, void (*hook)(void *ctx, uint64_t blk, uint64_t n), void *ctx);
void poise_pool_free_now(struct poise_pool *pool, uint64_t blk, uint64_t n);
/* The block map of regular file fd for a process that reads and writes its
 * blocks itself, from byte off on: every mapped block of the window
 * [start, end) (in 4 KiB blocks, start = off's block; end UINT64_MAX: to
 * the end of the file) as extents of pool blocks, split where the pool's
 * known bad sectors start and stop (bad = 1: a block with one, to be read
 * and written through the file system only); holes are the blocks no
 * extent holds.  Blocks past the size (fallocate FALLOC_FL_KEEP_SIZE space)
 * are included; m->size says where the bytes end.  At most
 * POISE_FMAP_MAX extents: a longer map ends the window early.  Returns
 * the extent count, -EBADF, -EINVAL (not a regular file) or -EOPNOTSUPP
 * (the block path).  The map is the file's at the call: the caller must
 * learn of later changes (docs/MULTIPROC.md). */
#define POISE_FMAP_MAX 64
struct poise_fmap_ext {
	uint64_t fblk, pblk, nblk;
	uint32_t bad, pad;
};
struct poise_fmap {
	uint64_t size;
	uint64_t start, end;
	uint32_t n, mode; /* the extent count; the file's mode (type and permission bits) */
	struct poise_fmap_ext ext[POISE_FMAP_MAX];
};
int poise_fmap(struct poise_pool *pool, int fd, uint64_t off, struct poise_fmap *m);
/* The size of fd's file grows to `size` (never shrinks) with nothing
 * zeroed: a process that shares the pool wrote every byte between the old
 * size and `size` into blocks the file already has (fallocate
 * FALLOC_FL_KEEP_SIZE space, docs/MULTIPROC.md).  Blocks from
 * max(the new size's block, trim_from) on are dropped (trim_from
 * UINT64_MAX: none).  0, -EBADF, -EINVAL (not open for writing, not a
 * regular file), -EFBIG or -ENOSPC/-EIO from the log. */
int poise_fgrow(struct poise_pool *pool, int fd, uint64_t size, uint64_t trim_from);

/* ---- pool devices, bad sectors, raw access ---- */
#define POISE_SECTOR 512u
struct poise_bb_range {
	uint64_t sector;
	uint64_t count;
};
/* Create an emulated pool file of `size` bytes (a multiple of 4 KiB), mode
 * 0600.  Fails with -EEXIST when it exists. */
int poise_dev_create(const char *path, uint64_t size);
/* Open a pool device; the backend follows from the path (a devdax
 * character device, a file on a DAX mount, any other file: emulated). */
int poise_dev_open(const char *path, struct poise_dev **out);
void poise_dev_close(struct poise_dev **d);
/* The device of an open pool (valid until the pool is closed). */
struct poise_dev *poise_pool_dev(struct poise_pool *pool);
uint64_t poise_dev_size(const struct poise_dev *d);
/* "emulated", "fsdax" or "devdax". */
const char *poise_dev_backend(const struct poise_dev *d);
/* 1 when stores to the device's mapping are durable only after msync (an
 * fsdax pool file mapped without MAP_SYNC), else 0. */
int poise_dev_needs_msync(const struct poise_dev *d);
/* A warning worth printing about how the device was opened ("" if none). */
const char *poise_dev_notice(const struct poise_dev *d);
struct stat;
/* The status of the opened pool file itself (never of its path, which may
 * name another file by now).  0 or -errno. */
int poise_dev_fstat(const struct poise_dev *d, struct stat *st);
/* Read through the machine-check-safe copy: len, a short count ending
 * before the first bad byte, or -EIO when off itself is in a bad sector;
 * -EINVAL when the range leaves the pool. */
ssize_t poise_dev_pread(struct poise_dev *d, uint64_t off, void *buf, size_t len);
/* Write: clears every bad sector it overlaps (partly covered ones are
 * zero-filled first), writes, persists.  len or -errno. */
ssize_t poise_dev_write(struct poise_dev *d, uint64_t off, const void *buf, size_t len);
/* Clear every bad sector overlapping [off, off+len) (byte offsets): they
 * read as zeros afterwards. */
int poise_dev_clear(struct poise_dev *d, uint64_t off, uint64_t len);
/* Emulated pools: poison [sector, sector+count) (-EOPNOTSUPP elsewhere). */
int poise_dev_inject(struct poise_dev *d, uint64_t sector, uint64_t count);
/* The bad-sector list, sorted: returns the count (caller frees *out). */
long poise_dev_badblocks(struct poise_dev *d, struct poise_bb_range **out);

/* ---- who holds a pool ---- */
/* The runtime directory of uid's poise processes (lock files, control
 * sockets): /run/poise for root, /tmp/poise-UID otherwise; made when
 * create.  0, or -EPERM when it is not uid's alone. */
int poise_runtime_dir(uid_t uid, int create, char *dir, size_t len);
/* Is the pool at path held by some process?  1 (and *pid when known), 0,
 * or -errno when it cannot be opened. */
int poise_pool_holder(const char *path, pid_t *pid);

/* ---- signals ----
 * The library reads the pool through a copy that survives poison: its own
 * SIGBUS and SIGSEGV handler turns a fault inside that copy into EIO and
 * passes every other fault to the handler installed before it.  A program
 * that installs its own handler for either signal after a pool is open
 * would take that away (a media error would then crash it): it calls
 * poise_sigaction() in place of sigaction(2), which keeps the library's
 * handler and makes act the one other faults go to (old: the one before).
 * Other signals, or before any pool is open: sigaction(2) itself.  The
 * preload shim does this for every program's sigaction() and signal(). */
int poise_sigaction(int sig, const struct sigaction *act, struct sigaction *old);

#ifdef __cplusplus
}
#endif

#endif
