/*
 * block.c - the block path: the pool's bytes through the kernel, the design
 * of the 2016 patch ("fs: prioritize and separate direct_io from dax_io")
 * kept so that both designs can be measured on one machine.
 *
 * poise_block_open() gets a descriptor for pread/pwrite: a loop device
 * attached over the pool file (when the process may: root, /dev/loop-control)
 * opened O_DIRECT, else the pool file itself opened O_DIRECT, else plain.
 * Reads check the known-bad table first and stop before a bad sector, as
 * the pmem driver does (is_bad_pmem); writes clear the bad sectors they
 * cover first, as the pmem driver's write does.  Buffers, offsets and
 * lengths that O_DIRECT cannot take go through an aligned bounce buffer.
 * Lock rules: none of its own; the descriptor is immutable while open.  An
 * access whose chunk may hold listed poison runs under the device's
 * bb_update (poise_dev_near_poison), as the DAX path's does.
 */
#include "dev/block.h"
#include "dev/persist.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int try_loop(struct poise_dev *d, struct poise_block *b)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -1;
	int n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return -1;
	snprintf(b->name, sizeof(b->name), "/dev/loop%d", n);
	int lfd = open(b->name, O_RDWR | O_CLOEXEC);
	if (lfd < 0)
		return -1;
	if (ioctl(lfd, LOOP_SET_FD, d->fd) < 0) {
		close(lfd);
		return -1;
	}
	/* detach by itself when the last descriptor closes, even if we die */
	struct loop_info64 li;
	memset(&li, 0, sizeof(li));
	li.lo_flags = LO_FLAGS_AUTOCLEAR;
	(void)ioctl(lfd, LOOP_SET_STATUS64, &li);
	(void)ioctl(lfd, LOOP_SET_DIRECT_IO, 1UL);
	int fd = open(b->name, O_RDWR | O_DIRECT | O_CLOEXEC);
	close(lfd);
	if (fd < 0)
		return -1;
	b->fd = fd;
	b->odirect = 1;
	return 0;
}

int poise_block_open(struct poise_dev *d, struct poise_block *b)
{
	memset(b, 0, sizeof(*b));
	b->dev = d;
	if (d->kind != POISE_DEV_DEVDAX && secure_getenv("POISE_NO_LOOP") == NULL && try_loop(d, b) == 0)
		return 0;
	snprintf(b->name, sizeof(b->name), "%s", d->path);
	b->fd = open(d->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	b->odirect = b->fd >= 0;
	if (b->fd < 0)
		b->fd = open(d->path, O_RDWR | O_CLOEXEC);
	if (b->fd < 0)
		return poise_errno(errno, "%s: no block path", d->path);
	return 0;
}

void poise_block_close(struct poise_block *b)
{
	if (b->fd >= 0)
		close(b->fd); /* the last descriptor: an auto-clear loop device detaches */
	b->fd = -1;
}

static int aligned(const void *buf, uint64_t off, size_t len)
{
	return !(((uintptr_t)buf | off | len) & (POISE_SECTOR - 1));
}

/* One system call's worth, through a bounce buffer when O_DIRECT needs it. */
static ssize_t rw(struct poise_block *b, int write, uint64_t off, void *buf, size_t len)
{
	if (!b->odirect || aligned(buf, off, len)) {
		ssize_t k = write ? pwrite(b->fd, buf, len, (off_t)off) : pread(b->fd, buf, len, (off_t)off);
		return k < 0 ? -errno : k;
	}
	uint64_t a = off & ~(uint64_t)(POISE_SECTOR - 1);
	size_t span = (size_t)(((off + len + POISE_SECTOR - 1) & ~(uint64_t)(POISE_SECTOR - 1)) - a);
	void *bb;
	if (posix_memalign(&bb, 4096, span))
		return -ENOMEM;
	ssize_t k = pread(b->fd, bb, span, (off_t)a);
	if (k == (ssize_t)span && write) {
		memcpy((char *)bb + (off - a), buf, len);
		k = pwrite(b->fd, bb, span, (off_t)a);
	} else if (k == (ssize_t)span) {
		memcpy(buf, (char *)bb + (off - a), len);
	}
	free(bb);
	if (k < 0)
		return -errno;
	return k == (ssize_t)span ? (ssize_t)len : -EIO;
}

/* An access near listed poison runs under the device's bb_update (a clear
 * may rewrite a whole page: poise_dev_near_poison). */
struct near {
	struct poise_block *b;
	int write;
	uint64_t off;
	void *buf;
	size_t len;
};

static ssize_t near_rw(void *arg)
{
	struct near *n = arg;
	uint64_t bad;
	if (!n->write &&
	    bbt_first_bad(&n->b->dev->bb, n->off / POISE_SECTOR, (n->off + n->len + POISE_SECTOR - 1) / POISE_SECTOR,
			  &bad)) {
		if (bad * POISE_SECTOR <= n->off)
			return poise_err(EIO, "%s: Input/output error at offset %llu (pool sector %llu)",
					 n->b->name, (unsigned long long)n->off, (unsigned long long)bad);
		n->len = (size_t)(bad * POISE_SECTOR - n->off); /* a short read, as the pmem driver */
	}
	return rw(n->b, n->write, n->off, n->buf, n->len);
}

ssize_t poise_block_read(struct poise_block *b, uint64_t off, void *buf, size_t len)
{
	if (!bbt_maybe(&b->dev->bb, off, len))
		return rw(b, 0, off, buf, len);
	struct near n = {b, 0, off, buf, len};
	return poise_dev_near_poison(b->dev, off, len, 0, near_rw, &n);
}

ssize_t poise_block_write(struct poise_block *b, uint64_t off, const void *buf, size_t len)
{
	__atomic_add_fetch(&b->writes, 1, __ATOMIC_RELAXED);
	poise_unfenced = 1; /* a commit after it fences first, as after a DAX store */
	if (!bbt_maybe(&b->dev->bb, off, len))
		return rw(b, 1, off, (void *)buf, len);
	struct near n = {b, 1, off, (void *)buf, len};
	return poise_dev_near_poison(b->dev, off, len, 1, near_rw, &n);
}
