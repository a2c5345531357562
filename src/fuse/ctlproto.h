/*
 * ctlproto.h - the control channel's protocol: the fixed request a client
 * sends to a mount's daemon and the answer it gets back, where the socket
 * is, and the checks every request passes before use.  Shared by the
 * daemon (ctl.c) and the client (src/cli/remote.c); free of FUSE headers.
 *
 * A request names no host path, no option text and no command: only an
 * operation, numbers, and for `inject --file` one path inside the served
 * file system.  The daemon runs it on the pool it serves and on nothing
 * else, with the executor the program gave it (pfuse_serve: the CLI's
 * live_exec).
 */
#ifndef POISE_FUSE_CTLPROTO_H
#define POISE_FUSE_CTLPROTO_H

#include <stdint.h>
#include <sys/types.h>

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

/* Exit statuses an answer carries (the poise command's). */
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

struct poise_pool;
/* What the daemon runs a checked request with, on the pool it serves (path
 * only names it in the output): prints on stdout and stderr, returns the
 * exit status.  The program gives it (the CLI's live_exec). */
typedef int (*ctl_exec_fn)(const struct live_req *r, const char *path, struct poise_pool *pool);

/* The control socket of the daemon running as uid for the pool file
 * (dev, ino): its directory in dir, its path in sock.  0 or -errno. */
int ctl_socket_path(uid_t uid, dev_t dev, ino_t ino, char *dir, size_t dlen, char *sock, size_t slen);

#endif
