/*
 * ctlproto.c - see ctlproto.h: the request checks and the socket's place.
 */
#include "fuse/ctlproto.h"
#include "poise-admin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

const char *const live_kind_names[] = {"superblock", "inodes", "dir", "extents", "log", NULL};
#define NKINDS 5

int live_req_check(const struct live_req *r, const char **why)
{
	*why = NULL;
	if (r->magic != LIVE_REQ_MAGIC)
		*why = "not a poise request";
	else if (r->op < LIVE_INFO || r->op >= LIVE_OP_END)
		*why = "unknown operation";
	else if (r->flags & ~LIVE_JSON)
		*why = "unknown flags";
	else if (r->nkinds > LIVE_MAX_KINDS || (r->op == LIVE_BB_INJECT_META && r->nkinds == 0))
		*why = "bad metadata kind count";
	else if (memchr(r->file, 0, sizeof(r->file)) == NULL)
		*why = "unterminated file name";
	else if (r->op == LIVE_BB_INJECT_FILE && (r->file[0] != '/' || r->length == 0))
		*why = "bad file range";
	else if ((r->op == LIVE_BB_INJECT || r->op == LIVE_BB_CLEAR) && r->count == 0)
		*why = "zero sectors";
	for (uint32_t i = 0; !*why && i < r->nkinds; i++)
		if (r->kinds[i] >= NKINDS)
			*why = "unknown metadata kind";
	return *why ? -EINVAL : 0;
}

int live_req_writes(const struct live_req *r)
{
	return r->op == LIVE_BB_INJECT || r->op == LIVE_BB_INJECT_FILE || r->op == LIVE_BB_INJECT_META ||
	       r->op == LIVE_BB_CLEAR;
}

int ctl_socket_path(uid_t uid, dev_t dev, ino_t ino, char *dir, size_t dlen, char *sock, size_t slen)
{
	(void)poise_runtime_dir(uid, 0, dir, dlen); /* the caller checks the directory */
	int n = snprintf(sock, slen, "%s/ctl-%llx-%llx.sock", dir, (unsigned long long)dev, (unsigned long long)ino);
	return n < 0 || (size_t)n >= slen || n >= (int)sizeof(((struct sockaddr_un *)0)->sun_path) ? -ENAMETOOLONG : 0;
}
