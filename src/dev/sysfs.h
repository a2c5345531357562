/*
 * sysfs.h - what the kernel says about real persistent memory: bad sectors
 * of pmem block devices and devdax regions, devdax geometry, eADR.
 *
 * Every path is built under poise_sysfs_root() ($POISE_SYSFS_ROOT, default
 * /sys) so tests run these readers against fake trees.  Units are the
 * kernel's: 512-byte sectors.  Malformed files give -EINVAL with a message
 * naming the file (and line).
 */
#ifndef POISE_SYSFS_H
#define POISE_SYSFS_H

#include "dev/badblocks.h"

#include <stddef.h>
#include <stdint.h>

const char *poise_sysfs_root(void);
/* Read a whole small attribute (trailing newline stripped). */
int poise_sysfs_read_str(const char *path, char *buf, size_t len);
/* Decimal, or hexadecimal with 0x. */
int poise_sysfs_read_u64(const char *path, uint64_t *v);

/* Bad sectors of block device MAJ:MIN, relative to its first sector (a
 * partition's start is subtracted and sectors outside it dropped).  *eadr is
 * set when the region's persistence domain is the CPU cache. */
int poise_sysfs_blockdev_badblocks(unsigned maj, unsigned min, struct poise_bb_range **out,
				   size_t *n, int *eadr);

struct poise_devdax_info {
	uint64_t size, align;
	struct poise_bb_range *bad; /* relative to the device's first byte */
	size_t nbad;
	int eadr;
};
/* NAME is "daxR.N" (the /dev name). */
int poise_sysfs_devdax(const char *name, struct poise_devdax_info *info);

/* A file extent, as FIEMAP reports it (bytes). */
struct poise_extent {
	uint64_t logical, physical, length;
};
/* Translate device-relative bad sectors into file-relative ones through
 * the file's extents (sectors outside every extent are dropped). */
int poise_bb_map_extents(const struct poise_bb_range *bad, size_t nbad,
			 const struct poise_extent *ext, size_t next,
			 struct poise_bb_range **out, size_t *n);

#endif
