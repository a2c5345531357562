/*
 * cmd_badblocks.c - `poise badblocks list|inject|clear`: the known-bad table
 * in the kernel's units (512-byte sectors, "first count" lines).  These
 * commands only parse their arguments into a request (live.h), which runs
 * here or, on a mounted pool, in the mount's daemon.
 */
#include "cli/cli.h"
#include "cli/live.h"

#include <stdlib.h>
#include <string.h>

static int bb_list(const struct cli_cmd *c, int argc, char **argv);
static int bb_inject(const struct cli_cmd *c, int argc, char **argv);
static int bb_clear(const struct cli_cmd *c, int argc, char **argv);

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

static struct live_req req(uint32_t op)
{
	struct live_req r;
	memset(&r, 0, sizeof(r));
	r.magic = LIVE_REQ_MAGIC;
	r.op = op;
	return r;
}

static int bb_list(const struct cli_cmd *c, int argc, char **argv)
{
	const char *path = NULL;
	struct live_req r = req(LIVE_BB_LIST);
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			r.flags |= LIVE_JSON;
		else if (argv[i][0] == '-')
			return cli_usage(c, "badblocks list: unknown option '%s'", argv[i]);
		else if (!path)
			path = argv[i];
		else
			return cli_usage(c, "badblocks list: unexpected argument '%s'", argv[i]);
	}
	if (!path)
		return cli_usage(c, "badblocks list: POOL is required");
	return live_run(&r, path);
}

/* POOL SECTOR [COUNT] */
static int sector_args(const struct cli_cmd *c, int argc, char **argv, const char **path, struct live_req *r)
{
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_usage(c, "badblocks %s: unknown option '%s'", c->name, argv[i]);
	if (argc < 2 || argc > 3)
		return cli_usage(c, "badblocks %s: POOL and SECTOR are required", c->name);
	*path = argv[0];
	if (cli_parse_u64(argv[1], &r->sector) < 0)
		return cli_usage(c, "badblocks %s: bad sector number '%s'", c->name, argv[1]);
	r->count = 1;
	if (argc == 3 && (cli_parse_u64(argv[2], &r->count) < 0 || r->count == 0))
		return cli_usage(c, "badblocks %s: bad count '%s'", c->name, argv[2]);
	return 0;
}

/* --file PATH --offset N [--length L]: through the file system. */
static int inject_file(const struct cli_cmd *c, int argc, char **argv)
{
	const char *pool = NULL, *file = NULL;
	struct live_req r = req(LIVE_BB_INJECT_FILE);
	r.length = 1;
	int have_off = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--file") && i + 1 < argc)
			file = argv[++i];
		else if (!strcmp(argv[i], "--offset") && i + 1 < argc) {
			if (cli_parse_size(argv[++i], &r.offset) < 0)
				return cli_usage(c, "badblocks inject: bad offset '%s'", argv[i]);
			have_off = 1;
		} else if (!strcmp(argv[i], "--length") && i + 1 < argc) {
			if (cli_parse_size(argv[++i], &r.length) < 0 || r.length == 0)
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
	if (file[0] != '/' || strlen(file) >= sizeof(r.file))
		return cli_usage(c, "badblocks inject: --file takes an absolute path in the file system, not '%s'",
				 file);
	strcpy(r.file, file);
	return live_run(&r, pool);
}

/* --metadata KIND[,KIND...] */
static int inject_metadata(const struct cli_cmd *c, int argc, char **argv)
{
	const char *pool = NULL, *kind = NULL;
	struct live_req r = req(LIVE_BB_INJECT_META);
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
	for (const char *k = kind;; k++) {
		size_t len = strcspn(k, ",");
		int found = -1;
		for (int j = 0; live_kind_names[j]; j++)
			if (strlen(live_kind_names[j]) == len && !strncmp(k, live_kind_names[j], len))
				found = j;
		if (found < 0)
			return cli_usage(c, "badblocks inject: unknown metadata kind '%.*s' (superblock, inodes, dir, "
					    "extents, log)", (int)len, k);
		if (r.nkinds == LIVE_MAX_KINDS)
			return cli_usage(c, "badblocks inject: at most %d metadata kinds", LIVE_MAX_KINDS);
		r.kinds[r.nkinds++] = (uint8_t)found;
		k += len;
		if (!*k)
			break;
	}
	return live_run(&r, pool);
}

static int bb_inject(const struct cli_cmd *c, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--file"))
			return inject_file(c, argc, argv);
		if (!strcmp(argv[i], "--metadata"))
			return inject_metadata(c, argc, argv);
	}
	const char *path;
	struct live_req r = req(LIVE_BB_INJECT);
	int ret = sector_args(c, argc, argv, &path, &r);
	return ret ? ret : live_run(&r, path);
}

static int bb_clear(const struct cli_cmd *c, int argc, char **argv)
{
	const char *path;
	struct live_req r = req(LIVE_BB_CLEAR);
	int ret = sector_args(c, argc, argv, &path, &r);
	return ret ? ret : live_run(&r, path);
}
