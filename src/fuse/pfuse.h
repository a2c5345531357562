/*
 * pfuse.h - the FUSE layer (src/fuse/): `poise mount` serves a pool through
 * libfuse3's low-level API.  It only translates: every file-system decision
 * is the library's (src/fs/).
 *
 *   ops.c      the low-level operations, FUSE inode number = poise inode number
 *   mount.c    the daemon: open the pool, mount, serve the session loop
 *              (daemon.h: what the command line, src/cli/cmd_mount.c, calls)
 *   data.c     the data channel: processes under the shim read and write
 *              file blocks themselves (docs/MULTIPROC.md)
 *   ctl.c      the control channel: the CLI reaches a mounted pool's daemon
 *              (badblocks, scrub) through a unix socket; ctlproto.[ch] its
 *              protocol, shared with the client (src/cli/remote.c)
 * The arrows go one way: src/cli/ calls into this layer, never back.
 */
#ifndef POISE_PFUSE_H
#define POISE_PFUSE_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <sys/types.h>

#include "fuse/ctlproto.h"
#include "fuse/daemon.h"

struct poise_pool;

struct pfuse {
	struct poise_pool *pool;
	const char *pool_path;
	struct fuse_session *se; /* for notifications to the kernel */
	double timeout; /* attribute and entry cache, seconds */
	int readonly;
	int odirect_block; /* odirect=block: O_DIRECT opens take the kernel's block path */
	int cache_none; /* -o cache=none: every open direct_io, as before 1.1 */
	unsigned max_read; /* the largest read request the kernel sends (op_init) */
	int mapped_reply; /* read replies straight from the pool mapping (reply.c): -o reply=map */
	int atime;      /* POISE_ATIME_* (relatime unless -o noatime / strictatime) */
	ctl_exec_fn exec; /* the control channel's executor (pfuse_mount) */
};

/* ops.c: drop the kernel's cached pages of every file whose data lies in
 * pool bytes [off, off+len) (after the control channel changed them). */
void pfuse_inval_range(struct pfuse *pf, uint64_t off, uint64_t len);
/* reply.c: answer a read of descriptor fd from the pool mapping, without a
 * copy here; 0 when answered, -1 when the copying path must (known bad
 * sectors in the range, the block path, -o reply=copy). */
int pfuse_read_mapped(fuse_req_t req, struct pfuse *pf, int fd, size_t size, off_t off);

extern const struct fuse_lowlevel_ops pfuse_ops;

/* data.c: the data channel of processes that read and write file blocks
 * themselves (the shim; src/common/dataproto.h).  pfuse_data_start: the
 * socket, the reader table, the free hook (before the session serves);
 * 0 or -errno.  pfuse_data_socket: its path, NULL when off. */
int pfuse_data_start(struct pfuse *pf, const char *dir);
void pfuse_data_stop(struct pfuse *pf);
const char *pfuse_data_socket(void);
/* After an operation that may have changed ino's size, map or media
 * errors (0: any inode's), before it is answered: the version bump, and
 * the tag of what the operation freed.  Nothing when the channel is off. */
void pfuse_changed(struct pfuse *pf, uint64_t ino);
/* Page-cache opens of ino (not direct_io): counted; before the daemon
 * serves one's read or write (pfuse_page_io, then pfuse_page_done once it
 * is answered), shim processes stop touching ino's blocks, until its
 * cached pages are dropped (data.c). */
void pfuse_page_open(struct pfuse *pf, uint64_t ino);
void pfuse_page_release(struct pfuse *pf, uint64_t ino);
void pfuse_page_io(struct pfuse *pf, uint64_t ino);
void pfuse_page_done(struct pfuse *pf, uint64_t ino);
/* Grants (space past a file's size that a shim process appends into):
 * pfuse_settle logs the sizes the holders of ino's grants reached, and
 * with revoke takes them back; the count of grants it found.  An
 * operation that changes ino's size or map calls pfuse_change_begin
 * (grants taken back, their count returned, and none made until
 * pfuse_change_end) before the change, pfuse_change_end after it (the
 * bump may come after: a grant made then reads the changed size).
 * pfuse_granted: does ino have one (its attributes are then not cached)?
 * (ino 0: does any inode?)
 * pfuse_append_open: an O_APPEND open of ino (on) or its release: no grant
 * while one is open; 1 when the kernel's size of ino may be stale, so the
 * open must not use the page cache. */
int pfuse_settle(struct pfuse *pf, uint64_t ino, int revoke);
int pfuse_change_begin(struct pfuse *pf, uint64_t ino);
void pfuse_change_end(struct pfuse *pf, uint64_t ino);
int pfuse_granted(struct pfuse *pf, uint64_t ino);
int pfuse_append_open(struct pfuse *pf, uint64_t ino, int on);
/* The pool is full: every grant taken back, its space past the size
 * given back (1 when there was any: try again). */
int pfuse_space_back(struct pfuse *pf);
/* on: no shim process touches any block until off (the control channel
 * changes the pool behind the maps meanwhile); off also bumps every map. */
void pfuse_data_hold(struct pfuse *pf, int on);

/* ctl.c: serve requests for `pf` on the pool's control socket (a thread);
 * 0 or -errno. */
int pfuse_ctl_start(struct pfuse *pf);
void pfuse_ctl_stop(void);

#endif
