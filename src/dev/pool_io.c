/*
 * pool_io.c - system-call I/O on a pool's descriptor, shared by backends
 * (see pool_io.h).  Only the error paths use these.
 */
#include "dev/pool_io.h"
#include "common/err.h"

#include <errno.h>
#include <unistd.h>

ssize_t poise_pread_full(struct poise_dev *d, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t k = pread(d->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			if (done)
				break;
			return poise_errno(errno, "%s: read at offset %llu", d->path,
					   (unsigned long long)(off + done));
		}
		if (k == 0)
			break;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

ssize_t poise_pwrite_full(struct poise_dev *d, uint64_t off, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t k = pwrite(d->fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return poise_errno(k < 0 ? errno : EIO, "%s: write at offset %llu", d->path,
					   (unsigned long long)(off + done));
		done += (size_t)k;
	}
	return (ssize_t)done;
}

int poise_pwrite_zero(struct poise_dev *d, uint64_t off, uint64_t len)
{
	static const char zero[POISE_PAGE];
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		ssize_t k = poise_pwrite_full(d, off, zero, n);
		if (k < 0)
			return (int)k;
		off += n;
		len -= n;
	}
	return 0;
}
