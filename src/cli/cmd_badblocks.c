/*
 * cmd_badblocks.c - `poise badblocks list|inject|clear`: the known-bad table
 * in the kernel's units (512-byte sectors, "first count" lines).
 */
#include "cli/cli.h"
#include "cli/pool_open.h"
#include "poise.h"
#include "fs/scrub.h"
#include "common/err.h"

#include <errno.h>

#include <stdlib.h>
#include <string.h>

static int bb_list(int argc, char **argv);
static int bb_inject(int argc, char **argv);
static int bb_clear(int argc, char **argv);

const struct cli_cmd cli_badblocks_cmds[] = {
	{"list", "badblocks list [--json] POOL",
	 "Print the pool's bad sectors, one 'first_sector count' line per range (the\n"
	 "format of /sys/block/pmemX/badblocks).  --json prints one object with a\n"
	 "'ranges' array and totals.\n",
	 bb_list},
	{"inject", "badblocks inject POOL SECTOR [COUNT] | POOL --file PATH --offset N [--length L] | POOL --metadata KIND",
	 "Poison COUNT (default 1) 512-byte sectors from SECTOR of an emulated pool:\n"
	 "they are recorded, their bytes scrambled, their pages made unreadable.\n"
	 "With --file, poison the sectors that hold bytes [N, N+L) of a file of the\n"
	 "file system on POOL (L defaults to 1: the sector of byte N).\n"
	 "With --metadata KIND, poison the first sector of one copy of a metadata\n"
	 "structure: superblock, inodes (the root inode), dir (the root directory's\n"
	 "first block), extents (the first extent block of any file), log; KIND may\n"
	 "be a comma list (one open: a later open's mount would repair the first).\n",
	 bb_inject},
	{"clear", "badblocks clear POOL SECTOR [COUNT]",
	 "Clear bad sectors in [SECTOR, SECTOR+COUNT): they read as zeros afterwards.\n",
	 bb_clear},
	{NULL, NULL, NULL, NULL},
};

static int bb_list(int argc, char **argv)
{
	const struct cli_cmd *c = &cli_badblocks_cmds[0];
	const char *path = NULL;
	int json = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (argv[i][0] == '-')
			return cli_usage(c, "badblocks list: unknown option '%s'", argv[i]);
		else if (!path)
			path = argv[i];
		else
			return cli_usage(c, "badblocks list: unexpected argument '%s'", argv[i]);
	}
	if (!path)
		return cli_usage(c, "badblocks list: POOL is required");
	struct poise_dev *d;
	if (cli_open_dev("badblocks list", path, &d))
		return EXIT_FAIL;
	struct poise_bb_range *r;
	long n = poise_dev_badblocks(d, &r);
	if (n < 0) {
		poise_dev_close(&d);
		return cli_fail((int)n, "badblocks list");
	}
	uint64_t total = 0;
	for (long i = 0; i < n; i++)
		total += r[i].count;
	if (json) {
		printf("{\"pool\":");
		cli_json_str(stdout, path);
		printf(",\"backend\":\"%s\",\"sector_size\":%u,\"ranges\":[", d->ops->name, POISE_SECTOR);
		for (long i = 0; i < n; i++)
			printf("%s{\"sector\":%llu,\"count\":%llu,\"offset\":%llu,\"length\":%llu}",
			       i ? "," : "", (unsigned long long)r[i].sector,
			       (unsigned long long)r[i].count,
			       (unsigned long long)(r[i].sector * POISE_SECTOR),
			       (unsigned long long)(r[i].count * POISE_SECTOR));
		printf("],\"total_ranges\":%ld,\"total_sectors\":%llu}\n", n, (unsigned long long)total);
	} else {
		for (long i = 0; i < n; i++)
			printf("%llu %llu\n", (unsigned long long)r[i].sector, (unsigned long long)r[i].count);
	}
	free(r);
	poise_dev_close(&d);
	if (fflush(stdout) != 0)
		return cli_fail(0, "badblocks list: cannot write the output");
	return EXIT_OK;
}

/* POOL SECTOR [COUNT] */
static int sector_args(const struct cli_cmd *c, int argc, char **argv, const char **path,
		       uint64_t *sector, uint64_t *count)
{
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_usage(c, "badblocks %s: unknown option '%s'", c->name, argv[i]);
	if (argc < 2 || argc > 3)
		return cli_usage(c, "badblocks %s: POOL and SECTOR are required", c->name);
	*path = argv[0];
	if (cli_parse_u64(argv[1], sector) < 0)
		return cli_usage(c, "badblocks %s: bad sector number '%s'", c->name, argv[1]);
	*count = 1;
	if (argc == 3 && (cli_parse_u64(argv[2], count) < 0 || *count == 0))
		return cli_usage(c, "badblocks %s: bad count '%s'", c->name, argv[2]);
	return 0;
}

/* --file PATH --offset N [--length L]: through the file system. */
static int inject_file(int argc, char **argv)
{
	const struct cli_cmd *c = &cli_badblocks_cmds[1];
	const char *pool = NULL, *file = NULL;
	uint64_t off = 0, len = 1;
	int have_off = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--file") && i + 1 < argc)
			file = argv[++i];
		else if (!strcmp(argv[i], "--offset") && i + 1 < argc) {
			if (cli_parse_size(argv[++i], &off) < 0)
				return cli_usage(c, "badblocks inject: bad offset '%s'", argv[i]);
			have_off = 1;
		} else if (!strcmp(argv[i], "--length") && i + 1 < argc) {
			if (cli_parse_size(argv[++i], &len) < 0 || len == 0)
				return cli_usage(c, "badblocks inject: bad length '%s'", argv[i]);
		} else if (argv[i][0] == '-')
			return cli_usage(c, "badblocks inject: unknown option '%s'", argv[i]);
		else if (!pool)
			pool = argv[i];
		else
			return cli_usage(c, "badblocks inject: unexpected argument '%s'", argv[i]);
	}
	if (!pool || !file || !have_off)
		return cli_usage(c, "badblocks inject: POOL, --file and --offset are required");
	struct poise_pool *p;
	int ret = poise_pool_open(pool, 0, &p);
	if (ret < 0)
		return cli_fail(ret, "badblocks inject");
	struct poise_map_piece m[64];
	int n = poise_fiemap(p, file, off, len, m, 64);
	if (n == 0)
		n = poise_err(EINVAL, "%s: bytes %llu+%llu hold no data (a hole, or past the end)", file,
			      (unsigned long long)off, (unsigned long long)len);
	for (int i = 0; n > 0 && i < n; i++) {
		uint64_t s0 = m[i].pool_off / POISE_SECTOR;
		uint64_t s1 = (m[i].pool_off + m[i].length + POISE_SECTOR - 1) / POISE_SECTOR;
		ret = poise_badblocks_inject(p, s0, s1 - s0);
		if (ret < 0)
			break;
		printf("poisoned %s bytes %llu-%llu: pool sectors %llu-%llu\n", file,
		       (unsigned long long)m[i].file_off,
		       (unsigned long long)(m[i].file_off + m[i].length - 1), (unsigned long long)s0,
		       (unsigned long long)(s1 - 1));
	}
	poise_pool_close(&p);
	if (n < 0 || ret < 0)
		return cli_fail(n < 0 ? n : ret, "badblocks inject");
	return EXIT_OK;
}

/* --metadata KIND */
static int inject_metadata(int argc, char **argv)
{
	const struct cli_cmd *c = &cli_badblocks_cmds[1];
	const char *pool = NULL, *kind = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--metadata") && i + 1 < argc)
			kind = argv[++i];
		else if (argv[i][0] == '-')
			return cli_usage(c, "badblocks inject: unknown option '%s'", argv[i]);
		else if (!pool)
			pool = argv[i];
		else
			return cli_usage(c, "badblocks inject: unexpected argument '%s'", argv[i]);
	}
	if (!pool || !kind)
		return cli_usage(c, "badblocks inject: POOL and --metadata KIND are required");
	struct poise_pool *p;
	int ret = poise_pool_open(pool, 0, &p);
	if (ret < 0)
		return cli_fail(ret, "badblocks inject");
	/* a comma list: all in one open (a mount repairs what an earlier
	 * command poisoned) */
	char *list = strdup(kind), *save = NULL;
	if (!list) {
		poise_pool_close(&p);
		return cli_fail(-ENOMEM, "badblocks inject");
	}
	/* every sector first, then the poison: finding one structure must not
	 * read (and so repair) another already poisoned */
	char *kinds[16];
	uint64_t secs[16];
	int nk = 0;
	for (char *k = strtok_r(list, ",", &save); k && ret == 0 && nk < 16; k = strtok_r(NULL, ",", &save)) {
		kinds[nk] = k;
		ret = poise_metadata_sector(p, k, &secs[nk]);
		nk++;
	}
	for (int i = 0; i < nk && ret == 0; i++) {
		ret = poise_badblocks_inject(p, secs[i], 1);
		if (ret == 0)
			printf("poisoned %s: pool sector %llu\n", kinds[i], (unsigned long long)secs[i]);
	}
	free(list);
	poise_pool_close(&p);
	if (ret < 0)
		return cli_fail(ret, "badblocks inject");
	return EXIT_OK;
}

static int bb_inject(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--file"))
			return inject_file(argc, argv);
		if (!strcmp(argv[i], "--metadata"))
			return inject_metadata(argc, argv);
	}
	const char *path;
	uint64_t s, n;
	int ret = sector_args(&cli_badblocks_cmds[1], argc, argv, &path, &s, &n);
	if (ret)
		return ret;
	struct poise_dev *d;
	if (cli_open_dev("badblocks inject", path, &d))
		return EXIT_FAIL;
	ret = poise_dev_inject(d, s, n);
	poise_dev_close(&d);
	if (ret < 0)
		return cli_fail(ret, "badblocks inject");
	printf("poisoned sectors %llu-%llu (bytes %llu-%llu)\n", (unsigned long long)s,
	       (unsigned long long)(s + n - 1), (unsigned long long)(s * POISE_SECTOR),
	       (unsigned long long)((s + n) * POISE_SECTOR - 1));
	return EXIT_OK;
}

static int bb_clear(int argc, char **argv)
{
	const char *path;
	uint64_t s, n;
	int ret = sector_args(&cli_badblocks_cmds[2], argc, argv, &path, &s, &n);
	if (ret)
		return ret;
	struct poise_dev *d;
	if (cli_open_dev("badblocks clear", path, &d))
		return EXIT_FAIL;
	uint64_t nsect = d->size / POISE_SECTOR;
	if (s >= nsect || n > nsect - s) {
		poise_dev_close(&d);
		return cli_fail(0, "badblocks clear: %s: sectors %llu+%llu lie beyond the pool (%llu sectors)",
				path, (unsigned long long)s, (unsigned long long)n,
				(unsigned long long)nsect);
	}
	ret = poise_dev_clear(d, s * POISE_SECTOR, n * POISE_SECTOR);
	poise_dev_close(&d);
	if (ret < 0)
		return cli_fail(ret, "badblocks clear");
	return EXIT_OK;
}
