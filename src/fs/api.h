/*
 * api.h - what the two halves of the public API share (private: not
 * installed).  namei.c walks paths and changes the namespace; api.c holds
 * pools, descriptors, data calls, stat, attributes, the map and directory
 * streams, and resolves its paths and makes its new files through the
 * namei_* calls below.
 *
 * Lock rules: the namei_* calls take and drop their own locks (fs.h's
 * order); namei_create is the exception, called with dp's lock held
 * exclusive, as its comment says.
 */
#ifndef POISE_FS_API_H
#define POISE_FS_API_H

#include "poise.h"
#include "fs/fs.h"

struct poise_pool {
	struct poise_dev *dev;
	struct poise_fs *fs;
};

struct poise_dir {
	struct poise_dirent_snap *ents;
	size_t n, at;
};

/* The file system of an open pool (fsck.c, scrub.c: api.c). */
struct poise_fs *poise_pool_fs(struct poise_pool *p);

/* ---- namei.c ---- */

/* Resolve path from inode `at` (an absolute path starts at the root; ""
 * is `at` itself, as with AT_EMPTY_PATH); a last symlink is followed when
 * follow.  Takes and drops each directory's lock in turn. */
int namei_resolve(struct poise_fs *fs, uint64_t at, const char *path, int follow, struct inode **ip);
/* The directory that holds path's last component (*dp, no lock held on
 * return), and that component (*name, *len; len 0 for "/"). */
int namei_resolve_parent(struct poise_fs *fs, uint64_t at, const char *path, struct inode **dp,
			 const char **name, size_t *len);
/* Is name "." or ".."? */
int namei_is_dot(const char *name, size_t len);
/* Create name in dp: a file of mode (its type bits included), or a
 * symlink to target.  Caller holds dp->lock exclusive and has looked the
 * name up under it.  *out: the new inode. */
int namei_create(struct poise_fs *fs, struct inode *dp, const char *name, size_t len, uint16_t mode,
		 const char *target, uint64_t rdev, struct inode **out);
/* Log the zeroing of ip's dinode into tx (the inode is being freed). */
int namei_log_free_dinode(struct tx *tx, struct inode *ip);
/* Free an inode whose last link and last descriptor are gone.  Caller holds
 * ip->lock exclusive; tx already carried the dinode = 0 record. */
void namei_release_inode(struct poise_fs *fs, struct inode *ip);
/* Change the attributes `mask` names (POISE_SET_*) of the inode at path:
 * one transaction; ctime is set too.  Sizes go through file_truncate. */
int namei_setattr(struct poise_pool *pool, uint64_t at, const char *path, int follow, unsigned mask, mode_t mode,
		  uid_t uid, gid_t gid, const struct timespec *ts);

#endif
