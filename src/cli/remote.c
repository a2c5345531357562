/*
 * remote.c - the client side of a mounted pool's control channel.
 *
 * While `poise mount` holds a pool, other processes cannot open it; the
 * commands that make sense on a live pool (badblocks list|inject|clear,
 * scrub, info) are sent to the daemon instead, which runs them on its open
 * pool and returns their output and exit status.  The channel is a unix
 * socket in the abstract namespace named after the pool file's identity
 * (device and inode numbers), so any path to the pool finds it; the daemon
 * checks the caller's credentials (SO_PEERCRED): root or the pool's owner.
 *
 * Wire format: the request is the command line, each argument ending in a
 * NUL and the list in an empty argument, with the pool argument written
 * "@POOL"; the answer is "RC OUTLEN ERRLEN\n", then the command's stdout
 * and stderr bytes.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int cli_ctl_addr(const char *path, char *name, size_t len)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	snprintf(name, len, "poise-ctl-%llx-%llx", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	return 0;
}

int cli_remote_allowed(int argc, char **argv)
{
	if (argc < 2)
		return 0;
	if (!strcmp(argv[1], "scrub") || !strcmp(argv[1], "info"))
		return 1;
	return argc >= 3 && !strcmp(argv[1], "badblocks") &&
	       (!strcmp(argv[2], "list") || !strcmp(argv[2], "inject") || !strcmp(argv[2], "clear"));
}

/* Index of the POOL argument: the first that is neither an option nor an
 * option's value. */
static int pool_arg(int argc, char **argv)
{
	int first = !strcmp(argv[1], "badblocks") ? 3 : 2;
	for (int i = first; i < argc; i++) {
		if (!strcmp(argv[i], "--file") || !strcmp(argv[i], "--offset") || !strcmp(argv[i], "--length") ||
		    !strcmp(argv[i], "--metadata")) {
			i++;
			continue;
		}
		if (argv[i][0] != '-')
			return i;
	}
	return -1;
}

int cli_pool_held(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	int h = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	close(fd);
	return h;
}

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

int cli_remote(int argc, char **argv, int *rc)
{
	if (!cli_remote_allowed(argc, argv) || cli_wants_help(argc - 2, argv + 2))
		return 0;
	int pi = pool_arg(argc, argv);
	if (pi < 0 || !cli_pool_held(argv[pi]))
		return 0;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (cli_ctl_addr(argv[pi], a.sun_path + 1, sizeof(a.sun_path) - 1) < 0)
		return 0;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1));
	if (s < 0 || connect(s, (struct sockaddr *)&a, alen) < 0) {
		if (s >= 0)
			close(s);
		return 0; /* held, but not by a mount: the local command says by whom */
	}
	/* the request */
	size_t len = 1;
	for (int i = 0; i < argc; i++)
		len += strlen(i == pi ? "@POOL" : argv[i]) + 1;
	char *req = malloc(len), *w = req;
	if (!req) {
		close(s);
		return 0;
	}
	for (int i = 0; i < argc; i++) {
		const char *x = i == pi ? "@POOL" : argv[i];
		memcpy(w, x, strlen(x) + 1);
		w += strlen(x) + 1;
	}
	*w = 0;
	(void)cli_write_all(s, req, len); /* a refusal may come before the request is read */
	free(req);
	int ok = 1;
	/* the answer */
	char head[64];
	size_t h = 0;
	while (ok && h < sizeof(head) - 1 && read(s, head + h, 1) == 1 && head[h] != '\n')
		h++;
	head[h] = 0;
	unsigned long long olen, elen;
	int code;
	if (!ok || sscanf(head, "%d %llu %llu", &code, &olen, &elen) != 3 || olen > (1ULL << 30) ||
	    elen > (1ULL << 20)) {
		close(s);
		fprintf(stderr, "poise: %s: the mount's control channel gave no answer\n", argv[pi]);
		*rc = EXIT_FAIL;
		return 1;
	}
	char *out = malloc(olen + 1), *err = malloc(elen + 1);
	if (!out || !err || read_full(s, out, olen) < 0 || read_full(s, err, elen) < 0) {
		free(out);
		free(err);
		close(s);
		fprintf(stderr, "poise: %s: the mount's control channel broke off\n", argv[pi]);
		*rc = EXIT_FAIL;
		return 1;
	}
	close(s);
	fwrite(out, 1, olen, stdout);
	fflush(stdout);
	fwrite(err, 1, elen, stderr);
	free(out);
	free(err);
	*rc = code;
	return 1;
}
