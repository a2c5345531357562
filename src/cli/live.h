/*
 * live.h - the commands that also run on a mounted pool: info, scrub and
 * badblocks list|inject|clear, as fixed operations (struct live_req).
 *
 * The command line is parsed into a request here, in the CLI; the request
 * then runs either in this process (the pool is not open elsewhere) or in
 * the daemon of the mount that holds the pool, sent over the control
 * channel (remote.c, src/fuse/ctl.c).  A request names no host path, no
 * option text and no command: only an operation, numbers, and for
 * `inject --file` one path inside the served file system.  The daemon
 * runs it on the pool it serves and on nothing else.
 */
#ifndef POISE_CLI_LIVE_H
#define POISE_CLI_LIVE_H

#include <stdint.h>

#include "fuse/ctlproto.h"

struct poise_pool;
/* Run r, in this process, on live (the daemon's own pool, which it serves:
 * nothing is opened by path then, and path only names it in the output)
 * or, when live is NULL, on the pool at path; prints on stdout/stderr,
 * returns the exit status. */
int live_exec(const struct live_req *r, const char *path, struct poise_pool *live);

/* The command's entry: through the daemon of the mount holding the pool
 * when there is one, else live_exec. */
int live_run(const struct live_req *r, const char *path);

#endif
