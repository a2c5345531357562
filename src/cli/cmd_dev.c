/*
 * cmd_dev.c - `poise dev read|write`: raw pool bytes through the device
 * layer's media-error path (reads stop at a bad sector, writes clear).
 */
#include "cli/cli.h"
#include "cli/pool_open.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int dev_read(const struct cli_cmd *c, int argc, char **argv);
static int dev_write(const struct cli_cmd *c, int argc, char **argv);

const struct cli_cmd cli_dev_cmds[] = {
	{"read", "dev read POOL OFFSET LENGTH",
	 "Copy LENGTH bytes from pool offset OFFSET to stdout through the\n"
	 "machine-check-safe copy.  At a bad sector it writes the good bytes\n"
	 "before it, then fails naming the offset and pool sector.\n",
	 dev_read},
	{"write", "dev write POOL OFFSET",
	 "Write stdin to the pool at OFFSET.  Bad sectors it covers are cleared\n"
	 "(a partly covered one is zero-filled first).\n",
	 dev_write},
	{NULL, NULL, NULL, NULL},
};

#define CHUNK (1u << 20)

static int dev_read(const struct cli_cmd *c, int argc, char **argv)
{
	uint64_t off, len;
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_usage(c, "dev read: unknown option '%s'", argv[i]);
	if (argc != 3)
		return cli_usage(c, "dev read: POOL, OFFSET and LENGTH are required");
	if (cli_parse_size(argv[1], &off) < 0)
		return cli_usage(c, "dev read: bad offset '%s'", argv[1]);
	if (cli_parse_size(argv[2], &len) < 0)
		return cli_usage(c, "dev read: bad length '%s'", argv[2]);
	struct poise_dev *d;
	if (cli_open_dev("dev read", argv[0], &d))
		return EXIT_FAIL;
	int rc = EXIT_OK;
	if (off > poise_dev_size(d) || len > poise_dev_size(d) - off) {
		rc = cli_fail(0, "dev read: %s: %llu bytes at offset %llu leave the pool (%llu bytes)",
			      argv[0], (unsigned long long)len, (unsigned long long)off,
			      (unsigned long long)poise_dev_size(d));
		goto out;
	}
	char *buf = malloc(CHUNK);
	if (!buf) {
		rc = cli_fail(-ENOMEM, "dev read");
		goto out;
	}
	for (uint64_t done = 0; done < len;) {
		size_t want = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		ssize_t k = poise_dev_pread(d, off + done, buf, want);
		if (k > 0) {
			int w = cli_write_all(1, buf, (size_t)k);
			if (w < 0) {
				rc = cli_fail(0, "dev read: writing to stdout: %s", strerror(-w));
				break;
			}
			done += (uint64_t)k;
		}
		if (k < 0 || (size_t)k < want) {
			rc = cli_fail(-EIO, "dev read");
			break;
		}
	}
	free(buf);
out:
	poise_dev_close(&d);
	return rc;
}

static int dev_write(const struct cli_cmd *c, int argc, char **argv)
{
	uint64_t off;
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_usage(c, "dev write: unknown option '%s'", argv[i]);
	if (argc != 2)
		return cli_usage(c, "dev write: POOL and OFFSET are required");
	if (cli_parse_size(argv[1], &off) < 0)
		return cli_usage(c, "dev write: bad offset '%s'", argv[1]);
	struct poise_dev *d;
	if (cli_open_dev("dev write", argv[0], &d))
		return EXIT_FAIL;
	int rc = EXIT_OK;
	char *buf = malloc(CHUNK);
	if (!buf) {
		poise_dev_close(&d);
		return cli_fail(-ENOMEM, "dev write");
	}
	uint64_t done = 0;
	for (;;) {
		ssize_t k = read(0, buf, CHUNK);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = cli_fail(0, "dev write: reading stdin: %s", strerror(errno));
			break;
		}
		if (k == 0)
			break;
		if (off + done > poise_dev_size(d) || (uint64_t)k > poise_dev_size(d) - off - done) {
			rc = cli_fail(0, "dev write: %s: input runs past the end of the pool (%llu bytes) after %llu bytes",
				      argv[0], (unsigned long long)poise_dev_size(d), (unsigned long long)done);
			break;
		}
		ssize_t w = poise_dev_write(d, off + done, buf, (size_t)k);
		if (w < 0) {
			rc = cli_fail((int)w, "dev write");
			break;
		}
		done += (uint64_t)k;
	}
	free(buf);
	poise_dev_close(&d);
	return rc;
}
