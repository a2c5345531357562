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

enum live_op {
	LIVE_INFO = 1,
	LIVE_SCRUB,
	LIVE_BB_LIST,
	LIVE_BB_INJECT,      /* sector, count */
	LIVE_BB_INJECT_FILE, /* file, offset, length */
	LIVE_BB_INJECT_META, /* kinds[0..nkinds) */
	LIVE_BB_CLEAR,       /* sector, count */
	LIVE_OP_END
};

#define LIVE_JSON 1u       /* flags: --json */
#define LIVE_MAX_KINDS 8
#define LIVE_FILE_MAX 4096
#define LIVE_REQ_MAGIC 0x31515250u  /* "PRQ1" */
#define LIVE_ANS_MAGIC 0x31534e50u  /* "PNS1" */

/* On the wire as it is (both ends are one build on one machine); every
 * field is checked by live_req_check before use. */
struct live_req {
	uint32_t magic;
	uint32_t op;
	uint32_t flags;
	uint32_t nkinds;
	uint8_t kinds[LIVE_MAX_KINDS]; /* indexes into live_kind_names */
	uint64_t sector, count;
	uint64_t offset, length;
	char file[LIVE_FILE_MAX];      /* NUL-terminated, a path in the file system */
};

struct live_ans {
	uint32_t magic;
	int32_t rc;
	uint64_t outlen, errlen;       /* then the output bytes, then the errors */
};

/* "superblock", "inodes", "dir", "extents", "log", NULL */
extern const char *const live_kind_names[];

/* 0 when r is well formed, else -EINVAL (with the reason in *why). */
int live_req_check(const struct live_req *r, const char **why);
/* Does r change the pool (refused on a read-only mount)? */
int live_req_writes(const struct live_req *r);

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
