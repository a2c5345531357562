/*
 * test_sysfs.c - the sysfs readers against fake trees (POISE_SYSFS_ROOT):
 * pmem block badblocks (whole device and partition), devdax geometry and
 * region badblocks minus the device's offset, eADR, malformed files; and
 * the extent translation used for fsdax pool files.
 */
#include "harness.h"
#include "dev/sysfs.h"
#include "common/err.h"

#include <errno.h>
#include <sys/stat.h>

static char root[512];

static void put(const char *rel, const char *text)
{
	char p[1024], dir[1100];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "mkdir -p \"$(dirname '%s')\"", p);
	if (system(dir) != 0)
		exit(2);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
}

static void link_to(const char *rel, const char *target)
{
	char p[1024], dir[1100];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "mkdir -p \"$(dirname '%s')\"", p);
	if (system(dir) != 0 || symlink(target, p) != 0)
		exit(2);
}

static void make_tree(void)
{
	snprintf(root, sizeof(root), "%s/sys", h_tmpdir());
	const char *ns = "devices/ndbus0/region0/namespace0.0";
	char p[512];
	put("devices/ndbus0/region0/persistence_domain", "memory_controller\n");
	snprintf(p, sizeof(p), "%s/block/pmem0/badblocks", ns);
	put(p, "8 2\n100 1\n2000 64\n");
	snprintf(p, sizeof(p), "%s/block/pmem0/pmem0p1/partition", ns);
	put(p, "1\n");
	snprintf(p, sizeof(p), "%s/block/pmem0/pmem0p1/start", ns);
	put(p, "64\n");
	snprintf(p, sizeof(p), "%s/block/pmem0/pmem0p1/size", ns);
	put(p, "1990\n");
	link_to("devices/ndbus0/region0/namespace0.0/block/pmem0/device", "../..");
	link_to("dev/block/259:0", "../../devices/ndbus0/region0/namespace0.0/block/pmem0");
	link_to("dev/block/259:1", "../../devices/ndbus0/region0/namespace0.0/block/pmem0/pmem0p1");
	/* a devdax device 2 MiB into region1, which is eADR */
	put("devices/ndbus0/region1/resource", "0x140000000\n");
	put("devices/ndbus0/region1/badblocks", "0 8\n4100 4\n8192 16\n12288 1\n");
	put("devices/ndbus0/region1/persistence_domain", "cpu_cache\n");
	put("devices/ndbus0/region1/dax1.1/dax1.0/size", "4194304\n");
	put("devices/ndbus0/region1/dax1.1/dax1.0/resource", "0x140200000\n");
	put("devices/ndbus0/region1/dax1.1/dax_region/align", "2097152\n");
	link_to("bus/dax/devices/dax1.0", "../../../devices/ndbus0/region1/dax1.1/dax1.0");
	setenv("POISE_SYSFS_ROOT", root, 1);
}

static void t_pmem_whole(void)
{
	struct poise_bb_range *r;
	size_t n;
	int eadr = -1;
	CHECK_EQ(poise_sysfs_blockdev_badblocks(259, 0, &r, &n, &eadr), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(r[0].sector, 8);
	CHECK_EQ(r[0].count, 2);
	CHECK_EQ(r[2].sector, 2000);
	CHECK_EQ(eadr, 0);
	free(r);
}

static void t_pmem_partition(void)
{
	struct poise_bb_range *r;
	size_t n;
	int eadr;
	/* partition covers device sectors [64, 2054): 8+2 is outside, 100 -> 36,
	 * 2000+64 is cut to 2000..2053 -> 1936+54 */
	CHECK_EQ(poise_sysfs_blockdev_badblocks(259, 1, &r, &n, &eadr), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(r[0].sector, 36);
	CHECK_EQ(r[0].count, 1);
	CHECK_EQ(r[1].sector, 1936);
	CHECK_EQ(r[1].count, 54);
	free(r);
}

static void t_pmem_missing(void)
{
	struct poise_bb_range *r;
	size_t n;
	int eadr;
	CHECK_EQ(poise_sysfs_blockdev_badblocks(8, 0, &r, &n, &eadr), -ENOENT);
	CHECK_STR_HAS(poise_errmsg(), "8:0/badblocks");
}

static void t_pmem_malformed(void)
{
	struct poise_bb_range *r;
	size_t n;
	int eadr;
	put("devices/ndbus0/region0/namespace0.0/block/pmem0/badblocks", "8 2\n100 x\n");
	CHECK_EQ(poise_sysfs_blockdev_badblocks(259, 0, &r, &n, &eadr), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "259:0/badblocks:2: expected");
	put("devices/ndbus0/region0/namespace0.0/block/pmem0/badblocks", "8 2\n100 1\n2000 64\n");
}

static void t_devdax(void)
{
	struct poise_devdax_info info;
	CHECK_EQ(poise_sysfs_devdax("dax1.0", &info), 0);
	CHECK_EQ(info.size, 4194304);
	CHECK_EQ(info.align, 2097152); /* from dax_region/align (no align attribute) */
	CHECK_EQ(info.eadr, 1);
	/* device = region sectors [4096, 12288): 0+8 outside, 4100+4 -> 4+4,
	 * 8192+16 -> 4096+16, 12288 outside */
	CHECK_EQ(info.nbad, 2);
	CHECK_EQ(info.bad[0].sector, 4);
	CHECK_EQ(info.bad[0].count, 4);
	CHECK_EQ(info.bad[1].sector, 4096);
	CHECK_EQ(info.bad[1].count, 16);
	free(info.bad);
	put("devices/ndbus0/region1/dax1.1/dax1.0/align", "4096\n");
	CHECK_EQ(poise_sysfs_devdax("dax1.0", &info), 0);
	CHECK_EQ(info.align, 4096); /* the device's own attribute wins */
	free(info.bad);
	put("devices/ndbus0/region1/dax1.1/dax1.0/align", "3000\n");
	CHECK_EQ(poise_sysfs_devdax("dax1.0", &info), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "alignment 3000");
	put("devices/ndbus0/region1/dax1.1/dax1.0/align", "4096\n");
	put("devices/ndbus0/region1/dax1.1/dax1.0/size", "lots\n");
	CHECK_EQ(poise_sysfs_devdax("dax1.0", &info), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "size: expected a number");
	put("devices/ndbus0/region1/dax1.1/dax1.0/size", "4194304\n");
	CHECK_EQ(poise_sysfs_devdax("dax9.9", &info), -ENOENT);
}

static void t_map_extents(void)
{
	/* file [0,8K) at device byte 1M, file [8K,16K) at device byte 64K */
	struct poise_extent ext[2] = {{0, 1 << 20, 8192}, {8192, 65536, 8192}};
	struct poise_bb_range bad[3] = {
		{(1 << 20) / 512 + 3, 2}, /* in extent 0: file sectors 3,4 */
		{65536 / 512 + 15, 4},    /* straddles the end of extent 1: file sector 31 */
		{10, 5},                  /* outside the file */
	}, *r;
	size_t n;
	CHECK_EQ(poise_bb_map_extents(bad, 3, ext, 2, &r, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(r[0].sector, 3);
	CHECK_EQ(r[0].count, 2);
	CHECK_EQ(r[1].sector, 31);
	CHECK_EQ(r[1].count, 1);
	free(r);
}

int main(void)
{
	make_tree();
	RUN(t_pmem_whole);
	RUN(t_pmem_partition);
	RUN(t_pmem_missing);
	RUN(t_pmem_malformed);
	RUN(t_devdax);
	RUN(t_map_extents);
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
