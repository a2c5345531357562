/*
 * ops.c - FUSE low-level operations on a pool.  Translation only: a FUSE
 * inode number is the poise inode number (the root is 1 in both), and every
 * operation is one *at call of the library on (inode, name) or on the
 * inode itself (empty path).  Open files are poise descriptors in fi->fh;
 * open directories are snapshots (struct poise_dir) in fi->fh.
 *
 * Caching (docs/MOUNT.md): attributes and entries are cached `timeout`
 * seconds (1 by default).  File data:
 *   - buffered opens use the kernel's page cache, write-through (no
 *     writeback cache): a write() returns when its bytes are on the media,
 *     and every process reading through the mount sees it at once (one
 *     page cache per inode); MAP_SHARED maps work, and their stores reach
 *     the media at msync (or writeback), as on any kernel file system.  A
 *     read request that meets a bad sector inside the file fails whole
 *     with EIO (never short: the kernel would take a short page read for
 *     the end of the file), so a page over poison is EIO to read() and
 *     SIGBUS to a map;
 *   - O_DIRECT opens bypass the cache through the kernel's own O_DIRECT
 *     path (which writes back and drops cached pages of the range first)
 *     and keep the exact prefix of a read that meets a bad sector;
 *   - -o cache=none: every open is direct_io, as before (no shared maps).
 * Reads whose range holds no known bad sector are answered from the pool
 * mapping (reply.c: no copy in the daemon); the rest, and any that meets
 * damage, are copied with the guarded copy as above.
 * Cached pages outlive an open (keep_cache): every change of file data
 * passes through the kernel, which updates or drops its pages, except
 * two, which drop them here: an O_DIRECT write (kernels before 6.6 leave
 * cached pages of the range as they were) and the control channel's
 * injections and clears (pfuse_inval_range).  So nothing that writes the
 * pool behind the page cache leaves stale pages.
 * Permissions: the mount always uses default_permissions, so the kernel
 * checks mode bits, ownership, sticky directories and POSIX ACLs
 * (FUSE_CAP_POSIX_ACL: the library keeps the ACLs, their inheritance and
 * the mode in step); new inodes belong to the calling process's uid and
 * gid.  Locks (fcntl, OFD, flock) are the kernel's own: no lock
 * operations are implemented, so the kernel keeps them for the mount as it
 * does for a local file system.  NFS export: "." and ".." are looked up,
 * and entries carry the inode's generation (FUSE_CAP_EXPORT_SUPPORT).
 * Access times: pf->atime (relatime by default) on opens for reading, and
 * on read and readdir requests that reach the daemon (a read served from
 * the page cache does not: an open for reading stands for it).
 *
 * Threads: libfuse's multithreaded loop calls these concurrently; the
 * library is thread-safe, and nothing here is shared but `struct pfuse`
 * (read-only after mount).
 */
#include "fuse/pfuse.h"
#include "poise.h"
#include "poise-admin.h"
#include "common/dataproto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF(req) ((struct pfuse *)fuse_req_userdata(req))
/* fi->fh of a file: the poise descriptor, and FH_DIRECT when the open was
 * direct_io (the kernel sends no open flags that say so: O_DIRECT in a
 * request's flags may be a later fcntl on a page-cache open) */
#define FH_DIRECT (1ULL << 32)
#define FH_APPEND (1ULL << 33) /* an O_APPEND open (counted: pfuse_append_open) */
#define FD(fi) ((int)((fi)->fh & 0xffffffffu))

/* The entry of `path` in `parent`; "." and ".." as the NFS server asks for
 * them (the inode itself, a directory's parent).  0 or -errno. */
/* fstatat for the kernel: a file whose size a shim process's appends hold
 * (a grant, data.c) has them logged first. */
static int kstat(struct pfuse *pf, fuse_ino_t dir, const char *path, struct stat *st)
{
	int r = poise_fstatat(pf->pool, dir, path, st, AT_SYMLINK_NOFOLLOW);
	if (r == 0 && S_ISREG(st->st_mode) && pfuse_settle(pf, st->st_ino, 0) > 0)
		r = poise_fstatat(pf->pool, dir, path, st, AT_SYMLINK_NOFOLLOW);
	return r;
}

/* How long the kernel may keep ino's attributes just fetched: not at all
 * while a grant holds its size (the kernel then asks each time it needs
 * it: a stat, a read past the end it knows, an open's permission check). */
static double attr_timeout(struct pfuse *pf, fuse_ino_t ino)
{
	return pfuse_granted(pf, ino) ? 0 : pf->timeout;
}

static int fill_entry(struct pfuse *pf, fuse_ino_t parent, const char *path, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	int r = kstat(pf, parent, strcmp(path, ".") ? path : "", &e->attr);
	if (r == 0)
		r = poise_generation(pf->pool, e->attr.st_ino, &e->generation);
	if (r < 0)
		return r;
	e->ino = e->attr.st_ino;
	e->entry_timeout = pf->timeout;
	e->attr_timeout = attr_timeout(pf, e->ino);
	return 0;
}

static void reply_entry(fuse_req_t req, const char *path, fuse_ino_t parent)
{
	struct fuse_entry_param e;
	int r = fill_entry(PF(req), parent, path, &e);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct pfuse *pf = userdata;
	/* parallel lookups and readdirs; big requests */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* ACLs: the kernel enforces them; the library keeps them, and applies
	 * the caller's umask only where no default ACL is (DONT_MASK: the
	 * kernel sends the mode unmasked, with the umask) */
	if ((conn->capable & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	conn->max_write = 1 << 20;
	if (pf->max_read)
		conn->max_read = pf->max_read; /* libfuse wants it equal to the mount option */
	conn->max_readahead = 1 << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_entry(req, name, parent);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req); /* inodes stay in the library's cache; nothing to drop */
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfuse *pf = PF(req);
	struct stat st;
	(void)fi;
	int r = kstat(pf, ino, "", &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, attr_timeout(pf, ino));
}

/* Before a write, truncate, fallocate or copy into fd's file by anyone but
 * root: clear its set-id bits, as Linux does, and drop the kernel's cached
 * mode, so an exec never runs new bytes set-id.  fd < 0: the inode itself.
 * 0 or -errno. */
static int drop_setid(fuse_req_t req, fuse_ino_t ino, int fd)
{
	struct pfuse *pf = PF(req);
	if (fuse_req_ctx(req)->uid == 0)
		return 0;
	int own = fd < 0 ? poise_openat(pf->pool, ino, "", O_RDONLY, 0) : fd;
	if (own < 0)
		return own;
	int r = poise_fclear_setid(pf->pool, own);
	if (fd < 0)
		poise_close(pf->pool, own);
	if (r > 0 && pf->se)
		(void)fuse_lowlevel_notify_inval_inode(pf->se, ino, -1, 0);
	return r < 0 ? r : 0;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int set, struct fuse_file_info *fi)
{
	struct pfuse *pf = PF(req);
	int r = 0;
	if (set & FUSE_SET_ATTR_MODE)
		r = poise_fchmodat(pf->pool, ino, "", a->st_mode, AT_SYMLINK_NOFOLLOW);
	if (r == 0 && (set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		r = poise_fchownat(pf->pool, ino, "", (set & FUSE_SET_ATTR_UID) ? a->st_uid : (uid_t)-1,
				   (set & FUSE_SET_ATTR_GID) ? a->st_gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW);
	if (r == 0 && (set & FUSE_SET_ATTR_SIZE) && !(set & FUSE_SET_ATTR_MODE))
		r = drop_setid(req, ino, -1); /* before the size changes */
	if (r == 0 && (set & FUSE_SET_ATTR_SIZE)) {
		pfuse_change_begin(pf, ino); /* shim appends end first */
		r = fi ? poise_ftruncate(pf->pool, FD(fi), a->st_size)
		       : poise_truncateat(pf->pool, ino, "", a->st_size);
		pfuse_change_end(pf, ino); /* (the bump below) */
	}
	if (r == 0 && (set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
		if (set & FUSE_SET_ATTR_ATIME)
			ts[0] = (set & FUSE_SET_ATTR_ATIME_NOW) ? (struct timespec){0, UTIME_NOW} : a->st_atim;
		if (set & FUSE_SET_ATTR_MTIME)
			ts[1] = (set & FUSE_SET_ATTR_MTIME_NOW) ? (struct timespec){0, UTIME_NOW} : a->st_mtim;
		r = poise_utimensat(pf->pool, ino, "", ts, AT_SYMLINK_NOFOLLOW);
	}
	pfuse_changed(pf, ino); /* before the answer: the caller's next read anywhere sees it */
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	op_getattr(req, ino, fi);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	ssize_t n = poise_readlinkat(PF(req)->pool, ino, "", buf, sizeof(buf) - 1);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	buf[n] = 0;
	fuse_reply_readlink(req, buf);
}

/* New inodes belong to the caller, with its umask unless the directory
 * has a default ACL (the kernel leaves both to a file system with ACLs). */
static void as_caller(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	poise_set_thread_owner(c->uid, c->gid);
	poise_set_thread_umask((int)c->umask);
}

static void as_daemon(void)
{
	poise_set_thread_owner((uid_t)-1, (gid_t)-1);
	poise_set_thread_umask(-1);
}

/* Every type mknod(2) makes: files, FIFOs (mkfifo), sockets (bind of a
 * unix socket) and devices (the kernel checked CAP_MKNOD). */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	as_caller(req);
	int r = poise_mknodat(PF(req)->pool, parent, name, mode, rdev);
	as_daemon();
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, name, parent);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	as_caller(req);
	int r = poise_mkdirat(PF(req)->pool, parent, name, mode);
	as_daemon();
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, name, parent);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	as_caller(req);
	int r = poise_symlinkat(PF(req)->pool, link, parent, name);
	as_daemon();
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, name, parent);
}

/* An operation that may have freed blocks (of a name's inode no one has
 * open, of a directory, of attributes): they wait for the bump. */
static void reply_changed(fuse_req_t req, fuse_ino_t ino, int r)
{
	pfuse_changed(PF(req), ino);
	fuse_reply_err(req, -r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_changed(req, parent, poise_unlinkat(PF(req)->pool, parent, name, 0));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_changed(req, parent, poise_unlinkat(PF(req)->pool, parent, name, AT_REMOVEDIR));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	reply_changed(req, newparent, poise_renameat2(PF(req)->pool, parent, name, newparent, newname, flags));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	int r = poise_linkat(PF(req)->pool, ino, "", newparent, newname, 0);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, newname, newparent);
}

/* Flags for the library: the access mode and the flags it knows. */
static int open_flags(int f)
{
	return f & (O_ACCMODE | O_APPEND | O_TRUNC | O_DIRECT | O_NOFOLLOW);
}

/* A read of ino through an open of `flags`: its access time as the mount's
 * policy says.  Called for opens for reading too: reads served from the
 * page cache never reach the daemon. */
static void touch_atime(const struct pfuse *pf, fuse_ino_t ino, int flags)
{
	if (pf->atime != POISE_ATIME_NEVER && !(flags & O_NOATIME) && (flags & O_ACCMODE) != O_WRONLY &&
	    poise_touch_atime(pf->pool, ino, pf->atime) > 0 && pf->se)
		(void)fuse_lowlevel_notify_inval_inode(pf->se, ino, -1, 0); /* the attributes only */
}

/* The kernel's caching of an open file (the head comment). */
static void set_caching(const struct pfuse *pf, struct fuse_file_info *fi)
{
	/* O_DIRECT: direct_io, whose short reads the kernel passes on as
	 * they are (its generic O_DIRECT path takes one for the end of the
	 * file and shrinks the size) */
	fi->direct_io = pf->cache_none || (fi->flags & O_DIRECT);
	if (fi->direct_io)
		fi->fh |= FH_DIRECT;
	fi->keep_cache = 1; /* the pages outlive an open: only what the
			     * kernel sees changes the pool, and the rest is
			     * invalidated (the head comment) */
}

/* An open about to be answered (its inode ino): the page-cache count,
 * and a truncating open's bump. */
static void opened(struct pfuse *pf, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* O_APPEND: the kernel picks the offset from the size it knows, which
	 * a shim process's appends may have left behind: such an open keeps
	 * off the page cache, and the library appends at the true end */
	if (fi->flags & O_APPEND) {
		fi->fh |= FH_APPEND;
		if (pfuse_append_open(pf, ino, 1) && !fi->direct_io) {
			fi->direct_io = 1;
			fi->fh |= FH_DIRECT;
		}
	}
	if (!(fi->fh & FH_DIRECT))
		pfuse_page_open(pf, ino);
	if (fi->flags & O_TRUNC)
		pfuse_changed(pf, ino);
}

/* The open was never the kernel's (the caller was interrupted). */
static void unopened(struct pfuse *pf, fuse_ino_t ino, const struct fuse_file_info *fi)
{
	poise_close(pf->pool, FD(fi));
	pfuse_changed(pf, ino);
	if (!(fi->fh & FH_DIRECT))
		pfuse_page_release(pf, ino);
	if (fi->fh & FH_APPEND)
		(void)pfuse_append_open(pf, ino, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->flags & O_TRUNC)
		pfuse_change_begin(PF(req), ino);
	int fd = poise_openat(PF(req)->pool, ino, "", open_flags(fi->flags), 0);
	if (fi->flags & O_TRUNC)
		pfuse_change_end(PF(req), ino); /* (opened() bumps) */
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	struct pfuse *pf = PF(req); /* req is gone once answered */
	fi->fh = (uint64_t)fd;
	set_caching(pf, fi);
	touch_atime(pf, ino, fi->flags);
	opened(pf, ino, fi);
	if (fuse_reply_open(req, fi) == -ENOENT) /* the caller was interrupted */
		unopened(pf, ino, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct pfuse *pf = PF(req);
	struct stat old;
	int trunc = (fi->flags & O_TRUNC) && poise_fstatat(pf->pool, parent, name, &old, AT_SYMLINK_NOFOLLOW) == 0;
	if (trunc)
		pfuse_change_begin(pf, old.st_ino); /* a shim process's appends end before the truncation */
	as_caller(req);
	int fd = poise_openat(pf->pool, parent, name, open_flags(fi->flags) | O_CREAT | (fi->flags & O_EXCL), mode);
	as_daemon();
	if (trunc)
		pfuse_change_end(pf, old.st_ino); /* (opened() bumps) */
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	struct fuse_entry_param e;
	int r = fill_entry(pf, parent, name, &e);
	if (r < 0) {
		poise_close(pf->pool, fd);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)fd;
	set_caching(pf, fi);
	opened(pf, e.ino, fi);
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		unopened(pf, e.ino, fi);
}

static void serve_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct pfuse *pf = PF(req);
	(void)pfuse_settle(pf, ino, 0); /* the bytes a shim process appended are the file's */
	if (pfuse_read_mapped(req, pf, FD(fi), size, off) == 0) {
		touch_atime(pf, ino, fi->flags);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct stat before, after;
	int cached = !(fi->fh & FH_DIRECT);
	if (cached && poise_fstat(pf->pool, FD(fi), &before) < 0)
		cached = 0;
	ssize_t n = poise_pread(pf->pool, FD(fi), buf, size, off);
	/* a page-cache read that stops short inside the file met a bad
	 * sector: EIO for the whole request, or the kernel would shrink the
	 * file to the short end.  "Inside": before the size as it was both
	 * before and after the read (a file growing or shrinking meanwhile
	 * ends a read short without damage) */
	if (n >= 0 && (size_t)n < size && cached && poise_fstat(pf->pool, FD(fi), &after) == 0 &&
	    off + n < before.st_size && off + n < after.st_size)
		n = -EIO;
	if (n < 0 || (size_t)n < size)
		pfuse_changed(pf, ino); /* it may have met damage nobody had listed: maps say so now */
	if (n < 0)
		fuse_reply_err(req, (int)-n); /* EIO when the read starts on a bad sector */
	else
		fuse_reply_buf(req, buf, (size_t)n); /* short (O_DIRECT): the bytes before the damage */
	free(buf);
	if (n >= 0)
		touch_atime(pf, ino, fi->flags);
}

/* A page-cache open's read or write: shim processes keep off the inode's
 * blocks from before it is served until after it is answered (data.c). */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct pfuse *pf = PF(req); /* req is gone once answered */
	int page = !(fi->fh & FH_DIRECT);
	if (page)
		pfuse_page_io(pf, ino);
	serve_read(req, ino, size, off, fi);
	if (page)
		pfuse_page_done(pf, ino);
}

static void serve_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	(void)ino;
	/* set-id bits go on a write by anyone but root (the kernel leaves it
	 * to us for direct_io writes) */
	int r = drop_setid(req, ino, FD(fi));
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	struct pfuse *pf = PF(req);
	pfuse_change_begin(pf, ino); /* a shim process's appends end first */
	/* O_APPEND (set by fcntl or RWF_APPEND too, which the library's
	 * descriptor does not know): the kernel's offset is its cached size,
	 * which a shim process's appends can leave behind; the true end */
	struct stat st;
	int moved = 0;
	if ((fi->flags & O_APPEND) && poise_fstat(pf->pool, FD(fi), &st) == 0 && st.st_size != off) {
		moved = 1;
		off = st.st_size;
	}
	ssize_t n = poise_pwrite(pf->pool, FD(fi), buf, size, off);
	if (n == -ENOSPC && pfuse_space_back(pf)) /* space held for appends elsewhere */
		n = poise_pwrite(pf->pool, FD(fi), buf, size, off);
	pfuse_changed(pf, ino);
	pfuse_change_end(pf, ino);
	/* a write on a direct_io open went past the page cache: drop its
	 * pages of the range (a multithreaded session serves what that needs
	 * meanwhile; never for the kernel's own writeback, nor for a page-cache
	 * open, whose writes hold those pages) */
	if (n > 0 && (fi->fh & FH_DIRECT) && !fi->writepage && !pf->cache_none && pf->se)
		(void)fuse_lowlevel_notify_inval_inode(pf->se, ino, off, n);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
	/* the kernel cached those bytes where it thought the end was: its
	 * pages and size go, once it has the answer (it holds them till then) */
	if (moved && n > 0 && !(fi->fh & FH_DIRECT) && pf->se)
		(void)fuse_lowlevel_notify_inval_inode(pf->se, ino, 0, 0);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct pfuse *pf = PF(req); /* req is gone once answered */
	int page = !(fi->fh & FH_DIRECT);
	if (page)
		pfuse_page_io(pf, ino);
	serve_write(req, ino, buf, size, off, fi);
	if (page)
		pfuse_page_done(pf, ino);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0); /* writes are durable when they return (a shim process's appends:
				 * their size is logged at release, fsync, or within a tick) */
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfuse *pf = PF(req);
	(void)pfuse_settle(pf, ino, 0);
	int r = poise_close(pf->pool, FD(fi));
	pfuse_changed(pf, ino); /* the last close of an unlinked file frees it */
	if (!(fi->fh & FH_DIRECT))
		pfuse_page_release(pf, ino);
	if (fi->fh & FH_APPEND)
		(void)pfuse_append_open(pf, ino, 0);
	fuse_reply_err(req, -r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	(void)pfuse_settle(PF(req), ino, 0); /* a shim process's appends are durable with it */
	fuse_reply_err(req, -poise_fsync(PF(req)->pool, FD(fi)));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct poise_dir *d;
	int r = poise_opendirat(PF(req)->pool, ino, "", &d);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		poise_closedir(&d);
}

/* Offsets: 0 before ".", 1 before "..", 2 + i before snapshot entry i. */
static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
			   int plus)
{
	struct pfuse *pf = PF(req);
	struct poise_dir *d = (struct poise_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (off_t pos = off;; pos++) {
		struct fuse_entry_param e;
		struct poise_entry ent;
		const char *name;
		memset(&e, 0, sizeof(e));
		if (pos < 2) {
			name = pos == 0 ? "." : "..";
			if (poise_fstatat(pf->pool, ino, pos == 0 ? "" : "..", &e.attr, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
		} else {
			poise_seekdir(d, pos - 2);
			if (poise_readdir(d, &ent) != 1)
				break;
			name = ent.name;
			e.attr.st_ino = ent.ino;
			e.attr.st_mode = (mode_t)DTTOIF(ent.type);
			if (plus && (kstat(pf, ino, name, &e.attr) < 0 ||
				     poise_generation(pf->pool, e.attr.st_ino, &e.generation) < 0))
				continue; /* removed since the snapshot */
		}
		size_t n;
		if (plus) {
			e.ino = pos < 2 ? 0 : e.attr.st_ino; /* no lookup for . and .. */
			e.entry_timeout = pf->timeout;
			e.attr_timeout = e.ino ? attr_timeout(pf, e.ino) : pf->timeout;
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, pos + 1);
		} else {
			n = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, pos + 1);
		}
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	if (off == 0 && pf->atime != POISE_ATIME_NEVER)
		(void)poise_touch_atime(pf->pool, ino, pf->atime);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct poise_dir *d = (struct poise_dir *)(uintptr_t)fi->fh;
	poise_closedir(&d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0); /* namespace changes are committed when they return */
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs st;
	int r = poise_statfs(PF(req)->pool, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_statfs(req, &st);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct pfuse *pf = PF(req);
	pfuse_change_begin(pf, ino);
	int r = drop_setid(req, ino, FD(fi));
	if (r == 0 && (r = poise_fallocate(pf->pool, FD(fi), mode, off, len)) == -ENOSPC && pfuse_space_back(pf))
		r = poise_fallocate(pf->pool, FD(fi), mode, off, len); /* space held for appends elsewhere */
	pfuse_changed(pf, ino);
	pfuse_change_end(pf, ino);
	fuse_reply_err(req, -r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	(void)pfuse_settle(PF(req), ino, 0);
	off_t r = poise_lseek(PF(req)->pool, FD(fi), off, whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, r);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
			       fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len,
			       int flags)
{
	struct pfuse *pf = PF(req);
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	(void)pfuse_settle(pf, ino_in, 0);
	int r0 = drop_setid(req, ino_out, FD(fi_out));
	if (r0 < 0) {
		fuse_reply_err(req, -r0);
		return;
	}
	size_t chunk = len < (1u << 20) ? len : 1u << 20, done = 0;
	char *buf = malloc(chunk ? chunk : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pfuse_change_begin(pf, ino_out);
	int err = 0;
	while (done < len) {
		size_t want = len - done < chunk ? len - done : chunk;
		ssize_t n = poise_pread(pf->pool, FD(fi_in), buf, want, off_in + (off_t)done);
		if (n <= 0) {
			err = n < 0 ? (int)-n : 0;
			break;
		}
		ssize_t w = poise_pwrite(pf->pool, FD(fi_out), buf, (size_t)n, off_out + (off_t)done);
		if (w == -ENOSPC && pfuse_space_back(pf))
			w = poise_pwrite(pf->pool, FD(fi_out), buf, (size_t)n, off_out + (off_t)done);
		if (w < 0) {
			err = (int)-w;
			break;
		}
		done += (size_t)w;
		if ((size_t)n < want)
			break;
	}
	free(buf);
	pfuse_changed(pf, ino_out);
	pfuse_change_end(pf, ino_out);
	if (done == 0 && err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, done);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	reply_changed(req, ino, poise_setxattrat(PF(req)->pool, ino, "", name, value, size, flags));
}

/* size 0: the length; else the bytes (shared by get and list). */
static void reply_sized(fuse_req_t req, ssize_t n, const char *buf, size_t size)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_sized(req, poise_getxattrat(PF(req)->pool, ino, "", name, buf, size), buf, size);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_sized(req, poise_listxattrat(PF(req)->pool, ino, "", buf, size), buf, size);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	reply_changed(req, ino, poise_removexattrat(PF(req)->pool, ino, "", name));
}

/* (pfuse.h) */
void pfuse_inval_range(struct pfuse *pf, uint64_t off, uint64_t len)
{
	long max = 1 << 16;
	uint64_t *inos = pf->se ? malloc((size_t)max * sizeof(*inos)) : NULL;
	long n = inos ? poise_range_owners(pf->pool, off, len, inos, max) : 0;
	for (long i = 0; i < n; i++)
		(void)fuse_lowlevel_notify_inval_inode(pf->se, inos[i], 0, 0); /* unknown to the kernel: -ENOENT */
	free(inos);
}

/* The shim asks who serves this mount (src/common/dataproto.h); nothing
 * else is an ioctl of ours. */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, int cmd, void *arg, struct fuse_file_info *fi,
		     unsigned flags, const void *in, size_t insz, size_t outsz)
{
	(void)ino, (void)arg, (void)fi, (void)in, (void)insz;
	const char *sock = pfuse_data_socket();
	if ((unsigned)cmd != DP_IOC_HELLO || (flags & FUSE_IOCTL_COMPAT) || outsz < sizeof(struct dp_hello)) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	struct dp_hello h = {.magic = DP_MAGIC};
	if (!sock || strlen(sock) >= sizeof(h.sock)) {
		fuse_reply_err(req, ENOTTY); /* no data channel: the kernel path */
		return;
	}
	strcpy(h.sock, sock);
	fuse_reply_ioctl(req, 0, &h, sizeof(h));
}

const struct fuse_lowlevel_ops pfuse_ops = {
	.ioctl = op_ioctl,
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.create = op_create,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
};
