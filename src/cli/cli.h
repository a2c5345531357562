/*
 * cli.h - shared pieces of the `poise` command: argument parsing, errors,
 * exit codes (0 success, 1 failure, 2 usage), JSON string output.
 */
#ifndef POISE_CLI_H
#define POISE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

struct cli_cmd {
	const char *name;
	const char *usage; /* one line: "pool create POOL --size SIZE" */
	const char *help;  /* more lines, may be NULL */
	int (*run)(const struct cli_cmd *c, int argc, char **argv); /* c: this entry */
};

/* Parse "123", "4K", "16M", "2G", "1T" (binary units).  0 or -1. */
int cli_parse_size(const char *s, uint64_t *v);
/* Parse a plain unsigned decimal (or 0x hex).  0 or -1. */
int cli_parse_u64(const char *s, uint64_t *v);
/* "poise: " + message (+ the library's detail when err < 0); returns EXIT_FAIL. */
int cli_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "poise: " + message, then the usage line; returns EXIT_USAGE. */
int cli_usage(const struct cli_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the command's help to stdout; returns EXIT_OK. */
int cli_help(const struct cli_cmd *c);
/* Is argv[i] "--help" or "-h" for any i? */
int cli_wants_help(int argc, char **argv);
void cli_json_str(FILE *f, const char *s);
/* write(2) until done; 0 or -errno. */
int cli_write_all(int fd, const void *buf, size_t len);

/* Run a command line (argv[0] is "poise"); the exit status (main.c). */
int cli_run(int argc, char **argv);
/* Print a name as GNU ls quotes it when it holds control characters. */
void cli_print_name(FILE *f, const char *s);
/* Warn on stderr when the pool file at path (of status st) is readable by
 * others. */
void cli_warn_exposed(const char *path);
struct stat;
void cli_warn_mode(const char *path, const struct stat *st);

struct live_req;
/* Send r to the daemon of the mount that holds the pool at path (remote.c):
 * 1 with *rc set when a daemon answered or the channel failed (the error
 * printed), 0 when no mount serves the pool (run it here). */
int cli_remote(const char *path, const struct live_req *r, int *rc);
/* Is the pool at path open in some process (its OFD write lock held)? */
int cli_pool_held(const char *path);

/* Sub-command tables (cmd_*.c). */
extern const struct cli_cmd cli_pool_cmds[];
extern const struct cli_cmd cli_badblocks_cmds[];
extern const struct cli_cmd cli_dev_cmds[];
extern const struct cli_cmd cli_fs_cmds[];
extern const struct cli_cmd cli_bench_cmds[];
extern const struct cli_cmd cli_mount_cmds[];

#endif
