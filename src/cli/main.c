/*
 * main.c - the `poise` command: dispatch to command groups.
 *
 * Every command prints errors on stderr naming the object, exits 0 on
 * success, 1 on failure, 2 on a usage error, and answers --help.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

struct group {
	const char *name;
	const char *summary;
	const struct cli_cmd *cmds;
};

static const struct group groups[] = {
	{"pool", "create pool files", cli_pool_cmds},
	{"badblocks", "list, inject and clear bad sectors (512-byte units)", cli_badblocks_cmds},
	{"dev", "raw reads and writes at pool offsets, through the media-error path", cli_dev_cmds},
	{NULL, NULL, NULL},
};

/* Commands without a group. */
static const struct cli_cmd *const toplevel[] = {cli_fs_cmds, cli_mount_cmds, cli_bench_cmds, NULL};

static void usage(FILE *f)
{
	fprintf(f, "usage: poise COMMAND [ARGS...]   (poise COMMAND --help for details; poise --version)\n\ncommands:\n");
	for (const struct cli_cmd *const *t = toplevel; *t; t++)
		for (const struct cli_cmd *c = *t; c->name; c++)
			fprintf(f, "  poise %s\n", c->usage);
	for (const struct group *g = groups; g->name; g++)
		for (const struct cli_cmd *c = g->cmds; c->name; c++)
			fprintf(f, "  poise %s\n", c->usage);
}

static void group_usage(FILE *f, const struct group *g)
{
	fprintf(f, "usage: poise %s SUBCOMMAND ...   (%s)\n\n", g->name, g->summary);
	for (const struct cli_cmd *c = g->cmds; c->name; c++)
		fprintf(f, "  poise %s\n", c->usage);
}

int cli_run(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("poise %s\n", POISE_RELEASE);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (const struct cli_cmd *const *t = toplevel; *t; t++)
		for (const struct cli_cmd *c = *t; c->name; c++) {
			if (strcmp(argv[1], c->name))
				continue;
			if (cli_wants_help(argc - 2, argv + 2))
				return cli_help(c);
			return c->run(c, argc - 2, argv + 2);
		}
	for (const struct group *g = groups; g->name; g++) {
		if (strcmp(argv[1], g->name))
			continue;
		if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
			group_usage(argc < 3 ? stderr : stdout, g);
			return argc < 3 ? EXIT_USAGE : EXIT_OK;
		}
		for (const struct cli_cmd *c = g->cmds; c->name; c++) {
			if (strcmp(argv[2], c->name))
				continue;
			if (cli_wants_help(argc - 3, argv + 3))
				return cli_help(c);
			return c->run(c, argc - 3, argv + 3);
		}
		fprintf(stderr, "poise: %s: unknown subcommand '%s'\n", g->name, argv[2]);
		group_usage(stderr, g);
		return EXIT_USAGE;
	}
	fprintf(stderr, "poise: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error we report */
	return cli_run(argc, argv);
}
