/*
 * cmd_pool.c - `poise pool create`.
 */
#include "cli/cli.h"
#include "poise-admin.h"

#include <string.h>

static int pool_create(const struct cli_cmd *c, int argc, char **argv);

const struct cli_cmd cli_pool_cmds[] = {
	{"create", "pool create POOL --size SIZE",
	 "Create an emulated pool: an ordinary file of SIZE bytes (K, M, G, T\n"
	 "suffixes; a multiple of 4 KiB), fully allocated so that a full disk\n"
	 "fails now rather than later.  Refuses to overwrite an existing file.\n",
	 pool_create},
	{NULL, NULL, NULL, NULL},
};

static int pool_create(const struct cli_cmd *c, int argc, char **argv)
{
	const char *path = NULL, *size_s = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size_s = argv[++i];
		else if (!strncmp(argv[i], "--size=", 7))
			size_s = argv[i] + 7;
		else if (argv[i][0] == '-')
			return cli_usage(c, "pool create: unknown option '%s'", argv[i]);
		else if (!path)
			path = argv[i];
		else
			return cli_usage(c, "pool create: unexpected argument '%s'", argv[i]);
	}
	if (!path || !size_s)
		return cli_usage(c, "pool create: POOL and --size are required");
	uint64_t size;
	if (cli_parse_size(size_s, &size) < 0)
		return cli_usage(c, "pool create: bad size '%s'", size_s);
	int ret = poise_dev_create(path, size);
	if (ret < 0)
		return cli_fail(ret, "pool create");
	return EXIT_OK;
}
