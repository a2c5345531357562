/*
 * sysfs.c - readers for the kernel's persistent-memory attributes (see
 * sysfs.h).  No state, no locks.
 */
#include "dev/sysfs.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *poise_sysfs_root(void)
{
	const char *r = secure_getenv("POISE_SYSFS_ROOT");
	return r && *r ? r : "/sys";
}

int poise_sysfs_read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return poise_errno(errno, "%s", path);
	ssize_t k = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (k < 0)
		return poise_errno(e, "%s", path);
	buf[k] = 0;
	while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == ' '))
		buf[--k] = 0;
	return 0;
}

int poise_sysfs_read_u64(const char *path, uint64_t *v)
{
	char buf[64], *end;
	int ret = poise_sysfs_read_str(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	errno = 0;
	unsigned long long x = strtoull(buf, &end, 0);
	if (!buf[0] || *end || errno || buf[0] == '-')
		return poise_err(EINVAL, "%s: expected a number, found '%s'", path, buf);
	*v = x;
	return 0;
}

/* Walk up from dir (resolved) to the nd region directory; 0 or -ENOENT. */
static int region_dir(const char *dir, char *out, size_t outlen)
{
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return -ENOENT;
	for (;;) {
		char *slash = strrchr(real, '/');
		if (!slash || slash == real)
			return -ENOENT;
		if (!strncmp(slash + 1, "region", 6)) {
			snprintf(out, outlen, "%s", real);
			return 0;
		}
		*slash = 0;
	}
}

static int region_eadr(const char *region)
{
	char p[PATH_MAX + 32], buf[64];
	snprintf(p, sizeof(p), "%s/persistence_domain", region);
	if (poise_sysfs_read_str(p, buf, sizeof(buf)) < 0)
		return 0;
	return !strcmp(buf, "cpu_cache");
}

/* Keep the parts of r[] inside [lo, lo+cnt) sectors, shifted down by lo. */
static size_t window(struct poise_bb_range *r, size_t n, uint64_t lo, uint64_t cnt)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t s = r[i].sector, e = s + r[i].count;
		if (s < lo)
			s = lo;
		if (e > lo + cnt)
			e = lo + cnt;
		if (s >= e)
			continue;
		r[k].sector = s - lo;
		r[k].count = e - s;
		k++;
	}
	return k;
}

int poise_sysfs_blockdev_badblocks(unsigned maj, unsigned min, struct poise_bb_range **out,
				   size_t *n, int *eadr)
{
	char dir[PATH_MAX], p[PATH_MAX + 32], region[PATH_MAX];
	uint64_t start = 0, size = UINT64_MAX;
	int part;
	snprintf(dir, sizeof(dir), "%s/dev/block/%u:%u", poise_sysfs_root(), maj, min);
	snprintf(p, sizeof(p), "%s/partition", dir);
	part = access(p, F_OK) == 0;
	if (part) {
		int ret;
		snprintf(p, sizeof(p), "%s/start", dir);
		if ((ret = poise_sysfs_read_u64(p, &start)) < 0)
			return ret;
		snprintf(p, sizeof(p), "%s/size", dir);
		if ((ret = poise_sysfs_read_u64(p, &size)) < 0)
			return ret;
		snprintf(p, sizeof(p), "%s/../badblocks", dir);
	} else {
		snprintf(p, sizeof(p), "%s/badblocks", dir);
	}
	int ret = bb_read_file(p, 0, out, n);
	if (ret < 0)
		return ret;
	if (part)
		*n = window(*out, *n, start, size);
	snprintf(p, sizeof(p), "%s/device", dir);
	*eadr = region_dir(p, region, sizeof(region)) == 0 && region_eadr(region);
	return 0;
}

int poise_sysfs_devdax(const char *name, struct poise_devdax_info *info)
{
	char dir[PATH_MAX], p[PATH_MAX + 32], region[PATH_MAX];
	uint64_t res, rres;
	int ret;
	memset(info, 0, sizeof(*info));
	snprintf(dir, sizeof(dir), "%s/bus/dax/devices/%s", poise_sysfs_root(), name);
	snprintf(p, sizeof(p), "%s/size", dir);
	if ((ret = poise_sysfs_read_u64(p, &info->size)) < 0)
		return ret;
	snprintf(p, sizeof(p), "%s/align", dir);
	if (poise_sysfs_read_u64(p, &info->align) < 0) {
		snprintf(p, sizeof(p), "%s/../dax_region/align", dir);
		if (poise_sysfs_read_u64(p, &info->align) < 0)
			info->align = 2ULL << 20; /* the kernel's default for devdax */
	}
	if (info->align == 0 || (info->align & (info->align - 1)) || info->align % 4096)
		return poise_err(EINVAL, "%s: alignment %llu is not a power of two >= 4096", dir,
				 (unsigned long long)info->align);
	if (region_dir(dir, region, sizeof(region)) < 0)
		return poise_err(ENOENT, "%s: no nd region above this device", dir);
	snprintf(p, sizeof(p), "%s/resource", dir);
	if ((ret = poise_sysfs_read_u64(p, &res)) < 0)
		return ret;
	snprintf(p, sizeof(p), "%s/resource", region);
	if ((ret = poise_sysfs_read_u64(p, &rres)) < 0)
		return ret;
	if (res < rres || (res - rres) % POISE_SECTOR)
		return poise_err(EINVAL, "%s: resource 0x%llx is not inside region %s (0x%llx)", dir,
				 (unsigned long long)res, region, (unsigned long long)rres);
	snprintf(p, sizeof(p), "%s/badblocks", region);
	if ((ret = bb_read_file(p, 0, &info->bad, &info->nbad)) < 0)
		return ret;
	info->nbad = window(info->bad, info->nbad, (res - rres) / POISE_SECTOR,
			    info->size / POISE_SECTOR);
	info->eadr = region_eadr(region);
	return 0;
}

int poise_bb_map_extents(const struct poise_bb_range *bad, size_t nbad,
			 const struct poise_extent *ext, size_t next,
			 struct poise_bb_range **out, size_t *n)
{
	size_t cap = 0, k = 0;
	struct poise_bb_range *r = NULL;
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < nbad; i++) {
		uint64_t bs = bad[i].sector * POISE_SECTOR, be = bs + bad[i].count * POISE_SECTOR;
		for (size_t j = 0; j < next; j++) {
			uint64_t ps = ext[j].physical, pe = ps + ext[j].length;
			uint64_t s = bs > ps ? bs : ps, e = be < pe ? be : pe;
			if (s >= e)
				continue;
			/* round outwards to sectors of the file */
			uint64_t ls = (ext[j].logical + (s - ps)) / POISE_SECTOR;
			uint64_t le = (ext[j].logical + (e - ps) + POISE_SECTOR - 1) / POISE_SECTOR;
			if (k == cap) {
				cap = cap ? cap * 2 : 16;
				struct poise_bb_range *nr = realloc(r, cap * sizeof(*r));
				if (!nr) {
					free(r);
					return poise_err(ENOMEM, "badblocks: out of memory");
				}
				r = nr;
			}
			r[k].sector = ls;
			r[k].count = le - ls;
			k++;
		}
	}
	*out = r;
	*n = k;
	return 0;
}
