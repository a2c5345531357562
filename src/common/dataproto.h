/*
 * dataproto.h - the data channel between a mount's daemon (src/fuse/data.c)
 * and the processes whose shim reads and writes the mount's file blocks
 * themselves (src/preload/mount.c); docs/MULTIPROC.md has the design.
 *
 *   1. The shim asks a descriptor of the mount who serves it: the
 *      DP_IOC_HELLO ioctl, answered by the daemon, gives the data socket's
 *      path.  Nothing in that answer is trusted: the path must be a data
 *      socket in the runtime directory of root or of the caller's user,
 *      and its listener (SO_PEERCRED) root or the caller's user.
 *   2. DP_WHO: that daemon names its pool file and its mount's device,
 *      which must be the descriptor's (a FUSE daemon that named another
 *      mount's socket is found out here).
 *   3. The shim opens the pool file O_RDWR itself (so the kernel's
 *      permission check decides who gets the direct path) and sends
 *      DP_ADMIT with the pool descriptor (SCM_RIGHTS).  The daemon
 *      checks the descriptor is its pool, open for writing; takes the pid
 *      from SO_PEERCRED; answers struct dp_admit with the reader table's
 *      memory file (SCM_RIGHTS).
 *   4. Then DP_MAP (a window of an inode's block map, struct dp_map, with
 *      the grant that holds its size when one does), DP_TOUCH (the process
 *      wrote an inode's blocks: its times move, the kernel's cached
 *      attributes are dropped), DP_GROW (space to append into past the
 *      size: a grant, readers.h) and DP_SETTLE (the process is done
 *      appending: its grant of the inode is taken back, the size logged,
 *      the space past it dropped; and DP_TOUCH's work when off is 1), each
 *      answered.
 * SOCK_SEQPACKET: one message per send, so a request is whole or absent.
 * Both ends are one build on one machine: structures travel as they are,
 * and every field is checked by the receiver.
 */
#ifndef POISE_DATAPROTO_H
#define POISE_DATAPROTO_H

#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "poise-admin.h"

#define DP_MAGIC 0x31504450u /* "PDP1" */

struct dp_hello {
	uint32_t magic;
	uint32_t pad;
	char sock[108];   /* the data socket's path, NUL-terminated */
};
/* FUSE passes a restricted ioctl's argument by the size the command names. */
#define DP_IOC_HELLO _IOR('P', 0x51, struct dp_hello)

enum dp_op { DP_WHO = 1, DP_ADMIT, DP_MAP, DP_TOUCH, DP_GROW, DP_SETTLE };

struct dp_req {
	uint32_t magic, op;
	uint64_t ino, off; /* the inode; DP_MAP: the byte the window starts at; DP_GROW: the byte
			    * the space must reach; DP_SETTLE: 1 to move the times too */
};

#define DP_NEED_MSYNC 1u /* the pool is a mapped ordinary file: stores need msync to be durable */
#define DP_READONLY 2u   /* a read-only mount: no direct writes */
#define DP_ODIRECT_BLOCK 4u /* odirect=block: O_DIRECT descriptors stay on the kernel's block path */
struct dp_who {
	uint32_t magic;
	int32_t rc;
	uint64_t mount_dev; /* st_dev of the mount's files */
	char pool[4096];    /* the pool file's path, NUL-terminated */
};

struct dp_admit {
	uint32_t magic;
	int32_t rc;        /* 0, or -errno (then no table follows) */
	int32_t p;         /* the process's index in the table */
	uint32_t flags;    /* DP_* */
	uint64_t mount_dev; /* st_dev of the mount's files */
	uint64_t pool_size;
};

struct dp_ans { /* DP_TOUCH's, DP_GROW's and DP_SETTLE's answer */
	uint32_t magic;
	int32_t rc;
};

struct dp_map {
	uint32_t magic;
	int32_t rc;        /* 0, or -errno */
	uint64_t ver;      /* the bucket's version, read before the map */
	int32_t grant;     /* the grant (table index) whose word holds the size past m.size, or -1 */
	uint32_t holder;   /* 1: the asking process holds it (may append) */
	uint64_t gend;     /* the byte its space ends at */
	struct poise_fmap m;
};

/* Room for one descriptor in a message's control data. */
union dp_cmsg {
	char b[CMSG_SPACE(sizeof(int))];
	struct cmsghdr a;
};
/* Make m carry descriptor fd (SCM_RIGHTS) in u; nothing when fd < 0. */
static inline void dp_attach_fd(struct msghdr *m, union dp_cmsg *u, int fd)
{
	if (fd < 0)
		return;
	memset(u, 0, sizeof(*u));
	m->msg_control = u->b;
	m->msg_controllen = sizeof(u->b);
	struct cmsghdr *h = CMSG_FIRSTHDR(m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
}

#endif
