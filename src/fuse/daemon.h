/*
 * daemon.h - what the command line (src/cli/cmd_mount.c) calls to serve a
 * pool through FUSE; free of FUSE headers.
 */
#ifndef POISE_FUSE_DAEMON_H
#define POISE_FUSE_DAEMON_H

#include "fuse/ctlproto.h"

struct pfuse_mount {
	const char *pool_path; /* absolute */
	unsigned pool_flags;   /* poise_pool_open's (POISE_ODIRECT_BLOCK) */
	double timeout;        /* attribute and entry cache, seconds */
	int readonly;
	int cache_none;        /* cache=none: all direct_io (no shared mmap) */
	int copy_reply;        /* reply=copy: read replies always copied in the daemon first */
	unsigned max_read;     /* the largest read request (also in fuse_opts) */
	int atime;             /* POISE_ATIME_* */
	const char *dir;       /* the mount point */
	const char *fuse_opts; /* the option string for libfuse (escaped) */
	ctl_exec_fn exec;      /* the control channel's executor */
};

/* Open the pool, make and mount the FUSE session, then report "OK" (or
 * "OKwarning: ...") or the error message through the pipe `ready`, and
 * serve until the file system is unmounted (or SIGTERM, SIGINT, SIGHUP);
 * the pool is then closed.  fg: messages also on stderr, and standard
 * descriptors and the directory are kept (no detaching).  Returns the exit
 * status (0 or 1). */
int pfuse_serve(const struct pfuse_mount *m, int ready, int fg);

#endif
