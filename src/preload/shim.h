/*
 * shim.h - the LD_PRELOAD shim (build/libpoise-preload.so): paths under
 * POISE_PATH are served by the library in-process from the pool at
 * POISE_POOL; everything else goes to the kernel untouched.
 *
 *   shim.c   set-up, path matching, the descriptor table, the real calls
 *   calls.c  the interposed system-call wrappers (open ... mmap)
 *   stdio.c  fopen/fdopen on poise files (fopencookie), and directories
 *
 * Descriptors: a poise file's descriptor is a real kernel descriptor (a
 * /dev/null opened O_CLOEXEC) reserved for it, so its number never collides
 * with the program's own; the table maps that number to the open poise
 * file.  dup'ed numbers share one struct pfile (its offset and flags), as
 * they share an open file description in the kernel.
 *
 * Lock rules: tab_lock guards the table (install, remove, lookups take it
 * briefly); a pfile's own mutex guards its offset for read/write/lseek.
 */
#ifndef POISE_SHIM_H
#define POISE_SHIM_H

#include "poise.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

struct pfile {
	int pfd;       /* the library's descriptor */
	uint64_t ino;
	int isdir;
	int flags;     /* open flags (O_APPEND, access mode) */
	off_t off;
	int refs;      /* kernel descriptors sharing it */
	char *path;    /* directories: the path the program sees (for fchdir), or NULL */
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
 * -1 with errno.  Always close-on-exec. */
int shim_install(struct pfile *f, int unused);
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

/* The real libc functions. */
extern int (*real_open)(const char *, int, ...);
extern int (*real_close)(int);

#endif
