/*
 * pool_fsdax.c - a pool file on a DAX-mounted file system (ext4 -o dax, xfs
 * -o dax), mapped MAP_SHARED_VALIDATE|MAP_SYNC so that a flushed store is
 * durable with no fsync, file-system metadata included.  When the kernel
 * refuses MAP_SYNC the pool is mapped MAP_SHARED and every persist also
 * msyncs (slower, still correct); d->notice says so.
 *
 * Bad sectors: the pmem block device's list in sysfs (a partition's start
 * subtracted), translated to pool offsets through the file's extents
 * (FIEMAP).  Clearing cannot go through the mapping (the kernel keeps a
 * poisoned page unmapped), so a bad file-system block is punched out and
 * allocated anew, as the kernel's own recovery does, after its good sectors
 * are saved; they are written back into the fresh block.  A good sector
 * that cannot be read makes the clear fail (-EIO): nothing is zeroed that
 * held data.  Between the save and the write-back the page's other
 * sectors are not what they hold, so the backend says d->clear_rewrites
 * and the generic layer runs the I/O of pages with listed poison under
 * bb_update, as the clear itself is.  The kernel refuses the whole page
 * around a bad sector (through the mapping and through read()); the good
 * sectors of that page are read
 * through the pmem block device instead, sector by sector with O_DIRECT
 * (the driver refuses only the listed sectors), where the process may open
 * it (root, or the disk group).
 */
#include "dev/dev.h"
#include "dev/mcsafe.h"
#include "dev/persist.h"
#include "dev/pool_io.h"
#include "dev/sysfs.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

static int fsdax_open(struct poise_dev *d)
{
	d->page_lost = 1;
	d->clear_rewrites = 1; /* fsdax_clear */
	struct stat st;
	if (fstat(d->fd, &st) < 0)
		return poise_errno(errno, "%s", d->path);
	if (st.st_size < (off_t)POISE_PAGE || st.st_size % POISE_PAGE)
		return poise_err(EINVAL, "%s: not a pool: its size (%lld bytes) is not a positive multiple of 4096",
				 d->path, (long long)st.st_size);
	d->size = (uint64_t)st.st_size;
	void *p = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC,
		       d->fd, 0);
	if (p == MAP_FAILED && (errno == EOPNOTSUPP || errno == EINVAL)) {
		poise_dev_note(d,
			 "%s: the kernel refused MAP_SYNC; mapped MAP_SHARED and every persist also msyncs",
			 d->path);
		d->need_msync = 1;
		p = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
	}
	if (p == MAP_FAILED)
		return poise_errno(errno, "%s: cannot map %llu bytes", d->path,
				   (unsigned long long)d->size);
	d->base = p;
	return 0;
}

static void fsdax_close(struct poise_dev *d)
{
	if (d->base)
		munmap(d->base, d->size);
	d->base = NULL;
}

/* The pool file's extents (bytes). */
static int file_extents(struct poise_dev *d, struct poise_extent **out, size_t *n)
{
	size_t cap = 64, k = 0;
	struct poise_extent *ext = NULL;
	uint64_t start = 0;
	*out = NULL;
	*n = 0;
	for (;;) {
		size_t sz = sizeof(struct fiemap) + cap * sizeof(struct fiemap_extent);
		struct fiemap *fm = calloc(1, sz);
		if (!fm) {
			free(ext);
			return poise_err(ENOMEM, "out of memory");
		}
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = (uint32_t)cap;
		if (ioctl(d->fd, FS_IOC_FIEMAP, fm) < 0) {
			int e = errno;
			free(fm);
			free(ext);
			return poise_errno(e, "%s: FIEMAP", d->path);
		}
		int last = fm->fm_mapped_extents == 0;
		struct poise_extent *ne = realloc(ext, (k + fm->fm_mapped_extents + 1) * sizeof(*ne));
		if (!ne) {
			free(fm);
			free(ext);
			return poise_err(ENOMEM, "out of memory");
		}
		ext = ne;
		for (uint32_t i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *fe = &fm->fm_extents[i];
			ext[k].logical = fe->fe_logical;
			ext[k].physical = fe->fe_physical;
			ext[k].length = fe->fe_length;
			k++;
			start = fe->fe_logical + fe->fe_length;
			if (fe->fe_flags & FIEMAP_EXTENT_LAST)
				last = 1;
		}
		free(fm);
		if (last)
			break;
	}
	*out = ext;
	*n = k;
	return 0;
}

static int fsdax_load(struct poise_dev *d)
{
	struct stat st;
	struct poise_bb_range *bad, *mapped;
	struct poise_extent *ext;
	size_t nbad, next, nmapped;
	int eadr = 0, ret;
	if (fstat(d->fd, &st) < 0)
		return poise_errno(errno, "%s", d->path);
	ret = poise_sysfs_blockdev_badblocks(major(st.st_dev), minor(st.st_dev), &bad, &nbad, &eadr);
	if (ret == -ENOENT) {
		/* not a pmem block device (virtio-pmem, a DAX-capable disk):
		 * no list to read; poison is found when it is touched */
		return 0;
	}
	if (ret < 0)
		return ret;
	if (eadr && !secure_getenv("POISE_FLUSH"))
		poise_flush_set(POISE_FLUSH_NONE);
	if (nbad == 0) {
		free(bad);
		return 0;
	}
	ret = file_extents(d, &ext, &next);
	if (ret == 0) {
		ret = poise_bb_map_extents(bad, nbad, ext, next, &mapped, &nmapped);
		free(ext);
	}
	free(bad);
	if (ret < 0)
		return ret;
	ret = poise_dev_table_load(d, mapped, nmapped, "pmem badblocks");
	free(mapped);
	return ret;
}

/* The pmem block device under the pool file, opened O_DIRECT (root or the
 * disk group), or -1. */
static int open_blockdev(struct poise_dev *d)
{
	struct stat st;
	char p[128], line[256], name[64] = "";
	if (fstat(d->fd, &st) < 0)
		return -1;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/uevent", major(st.st_dev), minor(st.st_dev));
	FILE *f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "DEVNAME=", 8))
			sscanf(line + 8, "%63s", name);
	if (f)
		fclose(f);
	if (!name[0])
		return -1;
	snprintf(p, sizeof(p), "/dev/%s", name);
	return open(p, O_RDONLY | O_DIRECT | O_CLOEXEC);
}

/* Sectors of the pool file read through the block device, one at a time:
 * the pmem driver refuses only the sectors its list names, where the file
 * system's DAX path refuses the whole page.  The bytes read, stopping at
 * the first that fails. */
static size_t read_by_sectors(struct poise_dev *d, uint64_t off, uint8_t *buf, size_t len)
{
	struct poise_extent *ext;
	size_t next, done = 0;
	int bd = open_blockdev(d);
	void *sec = NULL;
	if (bd < 0 || file_extents(d, &ext, &next) < 0) {
		if (bd >= 0)
			close(bd);
		return 0;
	}
	if (posix_memalign(&sec, POISE_SECTOR, POISE_SECTOR) == 0) {
		while (done < len) {
			uint64_t at = off + done, in = at % POISE_SECTOR, dev = UINT64_MAX;
			for (size_t i = 0; i < next; i++)
				if (at >= ext[i].logical && at < ext[i].logical + ext[i].length)
					dev = ext[i].physical + (at - in - ext[i].logical);
			if (dev == UINT64_MAX || pread(bd, sec, POISE_SECTOR, (off_t)dev) != POISE_SECTOR)
				break;
			size_t n = POISE_SECTOR - in < len - done ? POISE_SECTOR - in : len - done;
			memcpy(buf + done, (uint8_t *)sec + in, n);
			done += n;
		}
	}
	free(sec);
	free(ext);
	close(bd);
	return done;
}

static ssize_t fsdax_read_slow(struct poise_dev *d, uint64_t off, void *buf, size_t len)
{
	ssize_t k = poise_pread_full(d, off, buf, len);
	if (k == (ssize_t)len)
		return k;
	/* the kernel refuses a whole page around a bad sector: its good
	 * sectors may still come through the block device */
	size_t got = k > 0 ? (size_t)k : 0;
	got += read_by_sectors(d, off + got, (uint8_t *)buf + got, len - got);
	return got ? (ssize_t)got : k;
}

static ssize_t fsdax_write_slow(struct poise_dev *d, uint64_t off, const void *buf, size_t len)
{
	return poise_pwrite_full(d, off, buf, len);
}

static int fsdax_clear(struct poise_dev *d, uint64_t sector, uint64_t count)
{
	uint64_t off = sector * POISE_SECTOR, end = (sector + count) * POISE_SECTOR;
	uint64_t b0 = off & ~(uint64_t)(POISE_PAGE - 1);
	uint8_t *save = malloc(POISE_PAGE);
	if (!save)
		return poise_err(ENOMEM, "out of memory");
	int ret = 0;
	for (uint64_t b = b0; b < end && ret == 0; b += POISE_PAGE) {
		/* save the sectors of this block that stay (good ones outside
		 * the cleared range, and not listed bad) */
		memset(save, 0, POISE_PAGE);
		for (uint64_t s = b; s < b + POISE_PAGE; s += POISE_SECTOR) {
			if ((s >= off && s < end) || bbt_any(&d->bb, s / POISE_SECTOR, s / POISE_SECTOR + 1))
				continue;
			uint64_t f;
			if (poise_mc_copy(save + (s - b), d->base + s, POISE_SECTOR, 0, &f) == POISE_SECTOR)
				continue;
			if (fsdax_read_slow(d, s, save + (s - b), POISE_SECTOR) != POISE_SECTOR) {
				ret = poise_err(EIO, "%s: cannot clear sector %llu: good sector %llu of its block is unreadable",
						d->path, (unsigned long long)sector,
						(unsigned long long)(s / POISE_SECTOR));
				break;
			}
		}
		if (ret)
			break;
		if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)b, POISE_PAGE) < 0 ||
		    fallocate(d->fd, 0, (off_t)b, POISE_PAGE) < 0) {
			ret = poise_errno(errno, "%s: cannot reallocate the block at offset %llu", d->path,
					  (unsigned long long)b);
			break;
		}
		ssize_t k = poise_pwrite_full(d, b, save, POISE_PAGE);
		if (k < 0)
			ret = (int)k;
	}
	free(save);
	return ret;
}

const struct poise_dev_ops poise_pool_fsdax_ops = {
	.name = "fsdax",
	.open = fsdax_open,
	.close = fsdax_close,
	.load_badblocks = fsdax_load,
	.read_slow = fsdax_read_slow,
	.write_slow = fsdax_write_slow,
	.clear = fsdax_clear,
};
