/*
 * shim.h - the LD_PRELOAD shim (build/libpoise-preload.so): paths under
 * POISE_PATH are served by the library in-process from the pool at
 * POISE_POOL; files under a poise mount have their reads and writes served
 * from the process's own mapping of the mounted pool (mount.c); everything
 * else goes to the kernel untouched.
 *
 *   shim.c   set-up, path matching, the descriptor table, the real calls
 *   calls.c  the interposed system-call wrappers (open ... mmap)
 *   fdcalls.c the rest of the calls that take a descriptor (the audit list)
 *   locks.c  flock, OFD and POSIX record locks on poise files
 *   stdio.c  fopen/fdopen on poise files (fopencookie), and directories
 *   mount.c  the mount mode: many processes on one mounted pool
 *
 * Descriptors: a poise file's descriptor is a real kernel descriptor
 * reserved for it (an O_PATH descriptor of /dev/null), so its number never
 * collides with the program's own; the table maps that number to the open
 * poise file.  dup'ed numbers share one struct pfile (its offset and
 * flags), as they share an open file description in the kernel.  O_PATH,
 * so that a call the shim does not serve fails loudly (EBADF from the
 * kernel) instead of reading end of file or swallowing a write as /dev/null
 * would; and close-on-exec only when the program asked for it, so that a
 * new program finds its inherited numbers taken (and failing with EBADF),
 * never reused by the next file it opens.
 *
 * Lock rules: tab_lock guards the table (install, remove, lookups take it
 * briefly); a pfile's own mutex guards its offset for read/write/lseek.
 */
#ifndef POISE_SHIM_H
#define POISE_SHIM_H

#include "poise.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

struct pfile {
	int pfd;       /* the library's descriptor */
	uint64_t ino;
	int isdir;
	int flags;     /* open flags (O_APPEND, access mode); atomic: F_SETFL changes them */
	off_t off;
	int refs;      /* kernel descriptors sharing it */
	char *path;    /* directories: the path the program sees (for fchdir), or NULL */
	int own_type, own_pid, sig; /* F_SETOWN(_EX), F_SETSIG: kept, never used (no SIGIO for files) */
	uint64_t hint; /* F_SET_RW_HINT */
	struct poise_dir *dents; /* getdents64's snapshot, from position 0 to the next rewind; under lock */
	pthread_mutex_t lock;
};

extern struct poise_pool *shim_pool;

/* Is path (absolute) under POISE_PATH?  Then *inner is the path inside the
 * pool ("/" for the prefix itself).  Starts the shim on first use; 0 when
 * the shim is off (no POISE_POOL/POISE_PATH) or the path is not ours. */
int shim_ours(const char *path, const char **inner);
/* The pfile of kernel descriptor fd (a reference: drop with shim_put), or NULL. */
struct pfile *shim_get(int fd);
void shim_put(struct pfile *f);
/* Is fd a poise descriptor (no reference taken)? */
int shim_get_peek(int fd);
/* A new kernel descriptor number for f (a reference taken): the number, or
 * -1 with errno.  Close-on-exec when cloexec is set. */
int shim_install(struct pfile *f, int cloexec);
/* The highest descriptor number the table holds, plus one. */
#define SHIM_MAXFD 65536
/* Is this a child that shares the parent's memory (vfork, posix_spawn)?
 * Then it must leave the table alone: it is the parent's. */
int shim_shared_child(void);
/* Forget fd's mapping (the caller closes the kernel descriptor). */
void shim_forget(int fd);
/* Install fd -> f at a given number (dup2). */
void shim_install_at(int fd, struct pfile *f);
/* Set errno from a -errno return and give -1 (or the value when >= 0). */
long shim_ret(long r);
/* Resolve (dirfd, path) for an *at call: 1, with at and inner set, when it is ours. */
int shim_at(int dirfd, const char *path, uint64_t *at, const char **inner);

/* A directory's path as the program sees it, for (at, inner) of an open
 * (malloc'd), or NULL when it cannot be known. */
char *shim_dir_path(uint64_t at, const char *inner);

/* The entry at position pos of poise directory fd (0 ".", 1 "..", then
 * entry pos - 2 of the snapshot d): 1 with *e filled, 0 past the end. */
int shim_dir_entry(int fd, struct poise_dir *d, long pos, struct poise_entry *e);

/* The F_SETFL flags a poise descriptor keeps, and setting them (0 or -errno). */
#define SHIM_SETFL (O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT)
int shim_setfl(struct pfile *f, int flags);
static inline int shim_flags(const struct pfile *f)
{
	return __atomic_load_n(&f->flags, __ATOMIC_RELAXED);
}

/* Locks (locks.c).  lk_fcntl: F_GETLK, F_SETLK(W) and the F_OFD_ forms on
 * f; lk_lockf: lockf(3) on f; lk_flock: flock(2) on f; each 0 or -errno.
 * lk_close: a descriptor of ino closed (the process's POSIX locks on it
 * go); lk_release: f's last number closed (its OFD and flock locks go). */
int lk_fcntl(struct pfile *f, int cmd, struct flock *fl);
int lk_lockf(struct pfile *f, int cmd, off_t len);
int lk_flock(struct pfile *f, int op);
void lk_close(uint64_t ino);
void lk_release(const struct pfile *f);

/* The next definition of fn in the link order (the C library's). */
#define NEXT(fn) ({ static __typeof__(&fn) p_; if (!p_) p_ = (__typeof__(&fn))dlsym(RTLD_NEXT, #fn); p_; })

/* The mount mode (mount.c): descriptors of files under a poise mount
 * whose daemon admits this process.  mnt_opened: after the kernel opened
 * fd with flags (registers it when it is one); mnt_forget: fd is closed or
 * replaced; mnt_setfl: its F_SETFL flags changed; mnt_guard: numbers
 * [lo, hi] are about to close (the daemon's socket among them ends the
 * direct path first).  The data calls serve fd directly when they can,
 * else call the C library's. */
struct iovec;
void mnt_opened(int fd, int flags);
int mnt_has(int fd); /* is fd registered? */
void mnt_dup(int fd); /* fd's description is now another number's too */
/* mnt_unown: fd's offset is about to be read or moved by the kernel: the
 * shim's own is written back and the kernel's used from then on;
 * mnt_unown_all: the same for every registration, each now shared too
 * (exec, spawn, fork); mnt_lseek: lseek on a descriptor not the pool's. */
void mnt_unown(int fd);
void mnt_unown_all(void);
off_t mnt_lseek(int fd, off_t off, int whence);
void mnt_forget(int fd);
void mnt_setfl(int fd, int flags);
/* An append through the kernel on fd is next (O_APPEND, RWF_APPEND): the
 * kernel takes its offset from the size it has cached, which appends into
 * a grant may have passed; it asks the daemon again first. */
void mnt_append_sync(int fd);
void mnt_guard(int lo, int hi);
ssize_t mnt_pread(int fd, void *buf, size_t n, off_t off);
ssize_t mnt_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t mnt_preadv(int fd, const struct iovec *iov, int cnt, off_t off);
ssize_t mnt_pwritev(int fd, const struct iovec *iov, int cnt, off_t off);
ssize_t mnt_read(int fd, void *buf, size_t n);
ssize_t mnt_write(int fd, const void *buf, size_t n);
ssize_t mnt_readv(int fd, const struct iovec *iov, int cnt);
ssize_t mnt_writev(int fd, const struct iovec *iov, int cnt);

/* The real libc functions. */
extern int (*real_open)(const char *, int, ...);
extern int (*real_close)(int);

#endif
