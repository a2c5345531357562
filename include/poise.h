/*
 * poise.h - the public C API of poise, a user-space file system for
 * persistent memory.
 *
 * Conventions: every call returns >= 0 on success and -errno on failure
 * (thread-safe: no global errno); media errors are -EIO, detected
 * corruption -EUCLEAN.  poise_errmsg() returns the calling thread's last
 * detailed message ("pool.img: pool in use by pid 42").  Paths are inside
 * the pool, absolute ("/a/b"; a relative path starts at the root), components
 * at most 255 bytes.  Any number of threads may use one pool; one process
 * owns a pool at a time.
 *
 * Durability: a write, and every metadata change, is durable when the call
 * returns (DAX: the data is flushed to the media, metadata goes through the
 * redo log).  poise_fsync() persists only the times of in-place overwrites.
 */
#ifndef POISE_H
#define POISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POISE_VERSION_MAJOR 0
#define POISE_VERSION_MINOR 2

struct poise_pool;
struct poise_dir;

/* The calling thread's last detailed error message ("" when none). */
const char *poise_errmsg(void);

/* ---- pools ---- */

/* Format the pool at path (a devdax device, a file on a DAX mount, or any
 * file).  size > 0 creates an emulated pool file of that size when path does
 * not exist.  A pool that already holds a poise file system is refused with
 * -EEXIST unless POISE_MKFS_FORCE.  ninodes 0 picks one per 16 KiB.
 * Errors: -EEXIST, -ENOSPC (pool too small), -EBUSY (pool in use), -EIO. */
#define POISE_MKFS_FORCE 1u
int poise_mkfs(const char *path, uint64_t size, uint64_t ninodes, unsigned flags);

/* Open (mount) a pool: replays the log, derives free space.  Errors:
 * -ENOENT, -EBUSY ("pool in use by pid N"), -EUCLEAN (not a poise file
 * system, or corrupt: the message says what), -EIO. */
/* odirect=block: O_DIRECT opens move data through the kernel (pread/pwrite
 * on a loop device over the pool, or the pool file opened O_DIRECT): the
 * 2016 patch's design, kept for comparison.  Default: odirect=dax. */
#define POISE_ODIRECT_BLOCK 2u
int poise_pool_open(const char *path, unsigned flags, struct poise_pool **pool);
/* Close a pool: persists pending times, releases it.  Sets *pool = NULL. */
int poise_pool_close(struct poise_pool **pool);
/* Later poise_pool_open()s of this pool in this process return it (their
 * closes only drop a count) until poise_pool_share(NULL): the FUSE daemon
 * runs its control channel's commands on the mounted pool this way. */
void poise_pool_share(struct poise_pool *pool);
/* Is pool the shared one (a live mount)? */
int poise_pool_shared(struct poise_pool *pool);

/* Geometry and usage of an open pool. */
struct poise_info {
	char backend[16];     /* "emulated", "fsdax", "devdax" */
	unsigned format_major, format_minor;
	uint64_t pool_bytes, block_size;
	uint64_t blocks, blocks_free;   /* data blocks */
	uint64_t inodes, inodes_free;
	unsigned log_lanes;
	uint64_t bad_sectors, bad_ranges; /* the known-bad table */
	char uuid[37];
	int64_t mkfs_time_ns;
};
int poise_info(struct poise_pool *pool, struct poise_info *info);

/* ---- files ---- */

/* Open path with O_RDONLY/O_WRONLY/O_RDWR | O_CREAT | O_EXCL | O_TRUNC |
 * O_APPEND | O_DIRECT | O_DIRECTORY | O_NOFOLLOW.  Returns a descriptor
 * (>= 0, private to the pool).  Errors: -ENOENT, -EEXIST, -EISDIR, -ENOTDIR,
 * -ENAMETOOLONG, -ELOOP, -EMFILE, -ENOSPC.  The library runs as the pool's
 * owner: mode bits are stored, and enforced by the FUSE mount. */
int poise_open(struct poise_pool *pool, const char *path, int flags, mode_t mode);
/* With O_DIRECT: this descriptor takes the block path (odirect=block per
 * open).  Reads and in-place overwrites go through the kernel; writes that
 * allocate still fill their new blocks on the DAX path. */
#define POISE_O_BLOCK 0x40000000
int poise_close(struct poise_pool *pool, int fd);
/* Read/write at an offset; writes on an O_APPEND descriptor go to the end.
 * Reads past EOF return 0; holes read zeros.  A read that reaches a bad
 * sector returns the bytes before it, or -EIO when it starts on one.
 * Errors: -EBADF, -EISDIR, -EFBIG, -ENOSPC, -EIO. */
ssize_t poise_pread(struct poise_pool *pool, int fd, void *buf, size_t len, off_t off);
ssize_t poise_pwrite(struct poise_pool *pool, int fd, const void *buf, size_t len, off_t off);
ssize_t poise_preadv(struct poise_pool *pool, int fd, const struct iovec *iov, int iovcnt, off_t off);
ssize_t poise_pwritev(struct poise_pool *pool, int fd, const struct iovec *iov, int iovcnt, off_t off);
int poise_fsync(struct poise_pool *pool, int fd);
int poise_ftruncate(struct poise_pool *pool, int fd, off_t len);
/* mode 0 (allocate, grow size), FALLOC_FL_KEEP_SIZE, or
 * FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE.  Others: -EOPNOTSUPP. */
int poise_fallocate(struct poise_pool *pool, int fd, int mode, off_t off, off_t len);
int poise_fstat(struct poise_pool *pool, int fd, struct stat *st);

/* Where a file's bytes live: up to max pieces of [off, off+len) that are
 * mapped (holes are skipped), as pool byte offsets.  Returns the count.
 * For tools (poison injection by file, scrub reports); the offsets stay
 * valid until the file changes. */
struct poise_map_piece {
	uint64_t file_off, pool_off, length;
};
int poise_fiemap(struct poise_pool *pool, const char *path, uint64_t off, uint64_t len,
		 struct poise_map_piece *out, int max);

/* Direct map: *addr points at file bytes [off, off+len) in the pool, for
 * applications that do their own loads and stores (the pointer stays valid
 * while the file keeps those blocks: until a truncate, punch or unlink).
 * The range must be written already (no holes) and lie in one extent;
 * otherwise -ENXIO (a hole) or -EINVAL (split: map it piece by piece).
 * Stores through the pointer are not flushed for you: call
 * poise_map_persist() before relying on them.  Touching poisoned bytes
 * through the pointer raises SIGBUS (si_code BUS_MCEERR_AR) in the
 * application, as a load from a real DAX mapping does; emulated poison
 * does the same.  poise_map_read() copies from such a pointer with the
 * machine-check-safe copy instead: the bytes before the first bad sector,
 * or -EIO when it starts on one. */
int poise_map(struct poise_pool *pool, int fd, uint64_t off, uint64_t len, void **addr);
ssize_t poise_map_read(struct poise_pool *pool, void *dst, const void *src, size_t len);
void poise_map_persist(struct poise_pool *pool, const void *addr, size_t len);

/* The pool's known-bad table (512-byte sectors).  inject works on emulated
 * pools only (-EOPNOTSUPP elsewhere); clear zero-fills the sectors. */
int poise_badblocks_inject(struct poise_pool *pool, uint64_t sector, uint64_t count);
int poise_badblocks_clear(struct poise_pool *pool, uint64_t sector, uint64_t count);

/* ---- names ---- */
int poise_stat(struct poise_pool *pool, const char *path, struct stat *st);
int poise_lstat(struct poise_pool *pool, const char *path, struct stat *st);
/* Errors: -EEXIST, -ENOENT, -ENOTDIR, -ENOSPC, -ENAMETOOLONG. */
int poise_mkdir(struct poise_pool *pool, const char *path, mode_t mode);
/* Only an empty directory: -ENOTEMPTY otherwise; -EBUSY for the root. */
int poise_rmdir(struct poise_pool *pool, const char *path);
/* A file still open stays readable until its last close. -EISDIR for dirs. */
int poise_unlink(struct poise_pool *pool, const char *path);
/* Atomic: replaces an existing target (a file, or an empty directory by a
 * directory).  -EINVAL moving a directory into itself, -ENOTEMPTY,
 * -EISDIR/-ENOTDIR for mismatched types. */
int poise_rename(struct poise_pool *pool, const char *from, const char *to);
int poise_link(struct poise_pool *pool, const char *from, const char *to);
int poise_symlink(struct poise_pool *pool, const char *target, const char *path);
/* Returns the target's length (not NUL-terminated when it fills buf). */
ssize_t poise_readlink(struct poise_pool *pool, const char *path, char *buf, size_t len);
int poise_chmod(struct poise_pool *pool, const char *path, mode_t mode);
int poise_statfs(struct poise_pool *pool, struct statvfs *st);

/* ---- the *at calls: paths relative to an inode ----
 * As POSIX's *at calls with an inode number (st_ino; POISE_ROOT for the
 * root) in place of a directory descriptor.  An absolute path starts at
 * the root; an empty path names the inode `at` itself (AT_EMPTY_PATH), so
 * poise_fstatat(pool, ino, "", &st, 0) stats inode ino.  flags take
 * AT_SYMLINK_NOFOLLOW (AT_SYMLINK_FOLLOW for linkat, AT_REMOVEDIR for
 * unlinkat) as POSIX does.  The FUSE mount and the shim work this way. */
#define POISE_ROOT 1ULL
int poise_openat(struct poise_pool *pool, uint64_t at, const char *path, int flags, mode_t mode);
int poise_fstatat(struct poise_pool *pool, uint64_t at, const char *path, struct stat *st, int flags);
int poise_mkdirat(struct poise_pool *pool, uint64_t at, const char *path, mode_t mode);
int poise_unlinkat(struct poise_pool *pool, uint64_t at, const char *path, int flags);
/* flags: 0, RENAME_NOREPLACE (-EEXIST when the target exists) or
 * RENAME_EXCHANGE (both must exist; they swap, atomically). */
int poise_renameat2(struct poise_pool *pool, uint64_t fat, const char *from, uint64_t tat, const char *to,
		    unsigned flags);
int poise_linkat(struct poise_pool *pool, uint64_t fat, const char *from, uint64_t tat, const char *to, int flags);
int poise_symlinkat(struct poise_pool *pool, const char *target, uint64_t at, const char *path);
/* As mknod(2): mode's type S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK (dev is
 * the device number), or S_IFREG/0 for an empty file; -EPERM for S_IFDIR.
 * The library cannot open a FIFO, socket or device (-ENXIO); the mount
 * can, through the kernel.  The first node in a format-1.0 pool moves it
 * to format 1.1 (poise_info says which), which a poise before 1.1 refuses. */
int poise_mknodat(struct poise_pool *pool, uint64_t at, const char *path, mode_t mode, dev_t dev);
int poise_mknod(struct poise_pool *pool, const char *path, mode_t mode, dev_t dev);
ssize_t poise_readlinkat(struct poise_pool *pool, uint64_t at, const char *path, char *buf, size_t len);
int poise_fchmodat(struct poise_pool *pool, uint64_t at, const char *path, mode_t mode, int flags);
/* What a write or truncate by an unprivileged user does on Linux: clear
 * set-user-ID, and set-group-ID when the group may execute, of fd's file
 * (one logged update, only when a bit is set): 1 when it cleared a bit, 0
 * when none was set.  The FUSE mount calls it for writes and truncates of
 * callers other than root. */
int poise_fclear_setid(struct poise_pool *pool, int fd);
/* uid or gid (uid_t)-1 / (gid_t)-1: unchanged.  The library does not check
 * who may do this: the FUSE mount lets the kernel check (default_permissions). */
int poise_fchownat(struct poise_pool *pool, uint64_t at, const char *path, uid_t uid, gid_t gid, int flags);
/* ts[0] atime, ts[1] mtime; UTIME_NOW and UTIME_OMIT as utimensat(2); NULL: now. */
int poise_utimensat(struct poise_pool *pool, uint64_t at, const char *path, const struct timespec ts[2], int flags);
/* A read of inode ino happened: update its access time as policy how says
 * (the FUSE mount calls it; the library's own reads never change atime):
 * POISE_ATIME_RELATIME when it is not after the last modification or
 * change, or is a day old (Linux's relatime); POISE_ATIME_STRICT always;
 * POISE_ATIME_NEVER never.  In memory at once (stat shows it), on the
 * media with the next fsync, close or metadata update of the inode, as
 * mtime of an overwrite.  1 when it changed, 0 when not, or -errno. */
/* Inode ino's generation: set when the inode is made, never changed; with
 * the inode number it names one file for as long as the pool lives (NFS
 * file handles through the mount). */
int poise_generation(struct poise_pool *pool, uint64_t ino, uint64_t *gen);
#define POISE_ATIME_NEVER 0
#define POISE_ATIME_RELATIME 1
#define POISE_ATIME_STRICT 2
int poise_touch_atime(struct poise_pool *pool, uint64_t ino, int how);
int poise_truncateat(struct poise_pool *pool, uint64_t at, const char *path, off_t len);
int poise_opendirat(struct poise_pool *pool, uint64_t at, const char *path, struct poise_dir **dir);
/* Files, directories and symlinks this thread creates from now on belong to
 * uid:gid (a FUSE request's caller); (uid_t)-1 returns to the pool opener. */
void poise_set_thread_owner(uid_t uid, gid_t gid);
/* Files, directories and nodes this thread creates from now on: in a
 * directory with a default ACL they inherit it (the mode given masks it);
 * elsewhere their mode is masked by `mask` (a FUSE request's umask), as a
 * kernel file system with ACLs does.  -1 (the default): no umask (the
 * caller applied its own). */
void poise_set_thread_umask(int mask);
/* SEEK_DATA / SEEK_HOLE (and SEEK_SET/SEEK_END) on an open file: the
 * offset, or -ENXIO past the end. */
off_t poise_lseek(struct poise_pool *pool, int fd, off_t off, int whence);
/* fcntl(F_SETFL) on an open descriptor: O_APPEND, O_NONBLOCK, O_NOATIME and
 * O_DIRECT become as in flags (other bits are ignored, as the kernel
 * ignores them); the path O_DIRECT data takes (odirect=block) stays the one
 * chosen when the file was opened. */
int poise_fsetfl(struct poise_pool *pool, int fd, int flags);

/* Extended attributes (user.*, trusted.*, security.*, and the POSIX ACLs
 * system.posix_acl_access and system.posix_acl_default: checked as the
 * kernel checks them, an access ACL sets the mode's bits and a chmod
 * rewrites it, a default ACL is inherited by what is made in the
 * directory; up to one 4 KiB block per inode), with Linux's semantics: size 0 returns the length needed;
 * -ERANGE when the buffer is too small, -ENODATA when absent, -ENOSPC when
 * the inode's block is full, -EOPNOTSUPP for other namespaces; flags
 * XATTR_CREATE / XATTR_REPLACE.  A symlink's own attributes (no follow). */
ssize_t poise_getxattrat(struct poise_pool *pool, uint64_t at, const char *path, const char *name, void *value,
			 size_t size);
ssize_t poise_listxattrat(struct poise_pool *pool, uint64_t at, const char *path, char *list, size_t size);
int poise_setxattrat(struct poise_pool *pool, uint64_t at, const char *path, const char *name, const void *value,
		     size_t size, int flags);
int poise_removexattrat(struct poise_pool *pool, uint64_t at, const char *path, const char *name);

/* ---- directories ---- */
struct poise_entry {
	uint64_t ino;
	unsigned char type; /* DT_REG, DT_DIR, DT_LNK, DT_FIFO, DT_SOCK, DT_CHR, DT_BLK */
	char name[256];
};
/* A snapshot of the entries at open time ("." and ".." not included). */
int poise_opendir(struct poise_pool *pool, const char *path, struct poise_dir **dir);
/* 1 and *ent filled, 0 at the end. */
int poise_readdir(struct poise_dir *dir, struct poise_entry *ent);
/* The position in the snapshot (an entry index), and back to one. */
long poise_telldir(struct poise_dir *dir);
void poise_seekdir(struct poise_dir *dir, long pos);
void poise_closedir(struct poise_dir **dir);

#ifdef __cplusplus
}
#endif

#endif
