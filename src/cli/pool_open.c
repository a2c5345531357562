/*
 * pool_open.c - see pool_open.h.
 */
#include "cli/pool_open.h"
#include "cli/cli.h"

int cli_open_dev(const char *cmd, const char *path, struct poise_dev **d)
{
	int ret = poise_dev_open(path, d);
	if (ret < 0)
		return cli_fail(ret, "%s", cmd);
	if (poise_dev_notice(*d)[0])
		fprintf(stderr, "poise: warning: %s\n", poise_dev_notice(*d));
	return 0;
}
