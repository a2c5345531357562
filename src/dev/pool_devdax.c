/*
 * pool_devdax.c - a device-DAX character device (/dev/daxR.N) as the pool.
 *
 * Size and mapping alignment come from sysfs (bus/dax/devices/daxR.N); the
 * bad sectors from the nd region's badblocks minus the device's offset in
 * the region.  A devdax device has no read(2)/write(2) and user space has
 * no portable clear-error command, so the system-call paths answer -EIO and
 * clearing answers -EOPNOTSUPP: on devdax a bad sector stays bad until the
 * media-error layer remaps around it.
 */
#include "dev/dev.h"
#include "dev/persist.h"
#include "dev/sysfs.h"
#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int devdax_open(struct poise_dev *d)
{
	struct poise_devdax_info *info = calloc(1, sizeof(*info));
	const char *name = strrchr(d->path, '/');
	name = name ? name + 1 : d->path;
	int ret;
	if (!info)
		return poise_err(ENOMEM, "out of memory");
	if (strncmp(name, "dax", 3)) {
		ret = poise_err(EINVAL, "%s: a character device that is not devdax (daxR.N)", d->path);
		goto fail;
	}
	if ((ret = poise_sysfs_devdax(name, info)) < 0)
		goto fail;
	if (info->size < POISE_PAGE || info->size % info->align) {
		ret = poise_err(EINVAL, "%s: size %llu is not a multiple of its alignment %llu",
				d->path, (unsigned long long)info->size,
				(unsigned long long)info->align);
		goto fail;
	}
	d->size = info->size;
	d->align = info->align;
	void *p = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
	if (p == MAP_FAILED) {
		ret = poise_errno(errno, "%s: cannot map %llu bytes", d->path,
				  (unsigned long long)d->size);
		goto fail;
	}
	d->base = p;
	if (info->eadr && !secure_getenv("POISE_FLUSH"))
		poise_flush_set(POISE_FLUSH_NONE);
	d->priv = info; /* the bad list waits for load_badblocks (table not built yet) */
	return 0;
fail:
	free(info->bad);
	free(info);
	return ret;
}

static void drop_info(struct poise_dev *d)
{
	struct poise_devdax_info *info = d->priv;
	if (info) {
		free(info->bad);
		free(info);
	}
	d->priv = NULL;
}

static void devdax_close(struct poise_dev *d)
{
	if (d->base)
		munmap(d->base, d->size);
	d->base = NULL;
	drop_info(d);
}

static int devdax_load(struct poise_dev *d)
{
	struct poise_devdax_info *info = d->priv;
	int ret = poise_dev_table_load(d, info->bad, info->nbad, "devdax region badblocks");
	drop_info(d);
	return ret;
}

static ssize_t devdax_rw_slow(struct poise_dev *d, uint64_t off)
{
	return poise_err(EIO, "%s: offset %llu is unreachable through the mapping and devdax has no read/write path",
			 d->path, (unsigned long long)off);
}

static ssize_t devdax_read_slow(struct poise_dev *d, uint64_t off, void *buf, size_t len)
{
	(void)buf;
	(void)len;
	return devdax_rw_slow(d, off);
}

static ssize_t devdax_write_slow(struct poise_dev *d, uint64_t off, const void *buf, size_t len)
{
	(void)buf;
	(void)len;
	return devdax_rw_slow(d, off);
}

static int devdax_clear(struct poise_dev *d, uint64_t sector, uint64_t count)
{
	(void)count;
	return poise_err(EOPNOTSUPP, "%s: cannot clear sector %llu: devdax offers user space no clear-error command",
			 d->path, (unsigned long long)sector);
}

const struct poise_dev_ops poise_pool_devdax_ops = {
	.name = "devdax",
	.open = devdax_open,
	.close = devdax_close,
	.load_badblocks = devdax_load,
	.read_slow = devdax_read_slow,
	.write_slow = devdax_write_slow,
	.clear = devdax_clear,
};
