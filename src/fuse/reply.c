/*
 * reply.c - the mount's read replies without a copy in the daemon.
 *
 * A read whose range holds no known bad sector (in any block it touches)
 * is answered with the pool's own mapping as the reply's iovec: the
 * kernel copies the bytes from the mapping straight into the reader's
 * pages, once, where the copying path (ops.c) first copies them into a
 * buffer with the guarded copy and the kernel then copies that.  Holes are
 * a page of zeros.  Anything else takes the copying path, which keeps the
 * exact-prefix and whole-request-EIO semantics for damage.
 *
 * Why a mapping and not the pool file's descriptor (libfuse can splice a
 * reply from a file and an offset): measured on this kernel, the splice
 * route (pool file -> pipe -> /dev/fuse) served 1 MiB reads at 0.75x the
 * copying path, since the last step copies page by page; a copy from the
 * mapping is one writev.  Device DAX has no file to splice from anyway.
 *
 * Poison nobody has found yet: the kernel's copy from user memory that
 * meets it fails (a machine check in a kernel copy from user space ends
 * the copy with EFAULT, on platforms that recover from it), and the FUSE
 * device then ends the request with EIO: the reader gets an error, never
 * wrong bytes, and the daemon goes on; it then reads the range with the
 * guarded copy, which lists the damage, so later reads of it take the
 * copying path with its exact prefix.
 *
 * Invariant: the file's block map stays read-locked from the lookup until
 * the reply has been written (the hold is the inode, not the descriptor:
 * the kernel may send the release as soon as it has the reply), so no
 * piece can be freed and handed to another file while the kernel copies
 * it.  Threads: nothing shared.
 */
#include "fuse/pfuse.h"
#include "poise.h"
#include "poise-admin.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>

#define REPLY_PIECES 64
static const char zeros[64 << 10];

/* The kernel could not copy the reply (EFAULT: poison nobody had listed,
 * where it can recover from the machine check; the reader got EIO).  Read
 * the range with the guarded copy, which lists what it finds, so later
 * reads take the copying path with its exact prefix. */
static void learn(struct pfuse *pf, int fd, size_t size, off_t off)
{
	char *buf = malloc(size ? size : 1);
	if (buf)
		(void)poise_pread(pf->pool, fd, buf, size, off);
	free(buf);
}

int pfuse_read_mapped(fuse_req_t req, struct pfuse *pf, int fd, size_t size, off_t off)
{
	if (!pf->mapped_reply || off < 0)
		return -1;
	struct iovec iov[REPLY_PIECES];
	struct poise_read_hold *hold;
	int n = poise_read_lock(pf->pool, fd, (uint64_t)off, size, iov, REPLY_PIECES, &hold);
	if (n < 0)
		return -1;
	/* holes: zeros, in pieces of the zero buffer (a long hole may need
	 * more iovecs than there are: the copying path then) */
	struct iovec out[REPLY_PIECES];
	int k = 0;
	for (int i = 0; i < n && k <= REPLY_PIECES; i++) {
		if (iov[i].iov_base) {
			if (k < REPLY_PIECES)
				out[k] = iov[i];
			k++;
			continue;
		}
		for (size_t left = iov[i].iov_len; left && k <= REPLY_PIECES;) {
			size_t z = left < sizeof(zeros) ? left : sizeof(zeros);
			if (k < REPLY_PIECES)
				out[k] = (struct iovec){(void *)zeros, z};
			k++;
			left -= z;
		}
	}
	if (k > REPLY_PIECES) {
		poise_read_unlock(hold);
		return -1;
	}
	int r = fuse_reply_iov(req, out, k); /* k = 0: at or past the end */
	poise_read_unlock(hold);
	if (r < 0 && r != -ENOENT) {
		learn(pf, fd, size, off); /* the kernel's copy failed: find out why */
		pfuse_changed(pf, 0);     /* what it found: every map says so now */
	}
	return 0;
}
