/*
 * ctl.c - the server side of a mounted pool's control channel (the wire
 * format is in src/cli/remote.c).  One thread accepts connections on the
 * pool's abstract unix socket and serves them one at a time: it checks the
 * caller (root, the daemon's own user, or the pool file's owner), checks
 * that the command is one a live pool allows, and runs it with the normal
 * command code on the mounted pool (shared through poise_pool_share, so
 * the command's own open returns it), its stdout and stderr captured into
 * memory files (the daemon prints nothing else; its own output goes to
 * /dev/null or, with -f, to the terminal, briefly redirected here).
 */
#include "fuse/pfuse.h"
#include "cli/cli.h"
#include "poise.h"
#include "common/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int lsock = -1;
static pthread_t thread;
static struct pfuse *g_pf;

static char *slurp(int fd, size_t *len)
{
	off_t end = lseek(fd, 0, SEEK_END);
	char *b = malloc(end > 0 ? (size_t)end : 1);
	*len = 0;
	if (b && end > 0 && pread(fd, b, (size_t)end, 0) == end)
		*len = (size_t)end;
	return b;
}

static void answer(int c, int rc, const char *out, size_t olen, const char *err, size_t elen)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "%d %zu %zu\n", rc, olen, elen);
	if (cli_write_all(c, head, (size_t)n) == 0 && cli_write_all(c, out, olen) == 0)
		(void)cli_write_all(c, err, elen);
}

static void serve_one(int c)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	struct stat st;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || stat(g_pf->pool_path, &st) < 0 ||
	    !(cr.uid == 0 || cr.uid == geteuid() || cr.uid == st.st_uid)) {
		char e[200];
		int n = snprintf(e, sizeof(e), "poise: %s: control channel: only the pool's owner or root may use it "
					      "(uid %u refused)\n", g_pf->pool_path, (unsigned)cr.uid);
		answer(c, EXIT_FAIL, "", 0, e, (size_t)n);
		return;
	}
	/* the request: NUL-terminated arguments, then an empty one */
	char buf[65536], *argv[65];
	size_t got = 0;
	int argc = 0;
	for (;;) {
		ssize_t n = read(c, buf + got, sizeof(buf) - got);
		if (n <= 0)
			return;
		got += (size_t)n;
		if (got >= 2 && buf[got - 1] == 0 && buf[got - 2] == 0)
			break;
		if (got == sizeof(buf))
			return;
	}
	for (size_t at = 0; at < got - 1 && argc < 64; at += strlen(buf + at) + 1)
		argv[argc++] = strcmp(buf + at, "@POOL") ? buf + at : (char *)g_pf->pool_path;
	argv[argc] = NULL;
	if (!cli_remote_allowed(argc, argv)) {
		static const char e[] = "poise: control channel: this command does not run on a mounted pool\n";
		answer(c, EXIT_USAGE, "", 0, e, sizeof(e) - 1);
		return;
	}
	int out = memfd_create("poise-ctl-out", MFD_CLOEXEC), err = memfd_create("poise-ctl-err", MFD_CLOEXEC);
	int s1 = dup(1), s2 = dup(2);
	if (out < 0 || err < 0 || s1 < 0 || s2 < 0) {
		static const char e[] = "poise: control channel: out of descriptors\n";
		answer(c, EXIT_FAIL, "", 0, e, sizeof(e) - 1);
	} else {
		fflush(stdout);
		fflush(stderr);
		dup2(out, 1);
		dup2(err, 2);
		int rc = cli_run(argc, argv);
		fflush(stdout);
		fflush(stderr);
		dup2(s1, 1);
		dup2(s2, 2);
		size_t ol, el;
		char *o = slurp(out, &ol), *e = slurp(err, &el);
		answer(c, rc, o ? o : "", o ? ol : 0, e ? e : "", e ? el : 0);
		free(o);
		free(e);
	}
	if (out >= 0)
		close(out);
	if (err >= 0)
		close(err);
	if (s1 >= 0)
		close(s1);
	if (s2 >= 0)
		close(s2);
}

static void *loop(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL; /* shut down */
		}
		serve_one(c);
		close(c);
	}
}

int pfuse_ctl_start(struct pfuse *pf)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int r = cli_ctl_addr(pf->pool_path, a.sun_path + 1, sizeof(a.sun_path) - 1);
	if (r < 0)
		return poise_err(-r, "%s: %s", pf->pool_path, strerror(-r));
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1));
	lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&a, alen) < 0 || listen(lsock, 8) < 0) {
		r = errno;
		if (lsock >= 0)
			close(lsock);
		lsock = -1;
		return poise_err(r, "cannot open the control socket: %s", strerror(r));
	}
	g_pf = pf;
	poise_pool_share(pf->pool);
	if ((r = pthread_create(&thread, NULL, loop, NULL)) != 0) {
		poise_pool_share(NULL);
		close(lsock);
		lsock = -1;
		return poise_err(r, "cannot start the control thread");
	}
	return 0;
}

void pfuse_ctl_stop(void)
{
	if (lsock < 0)
		return;
	shutdown(lsock, SHUT_RDWR);
	pthread_join(thread, NULL);
	close(lsock);
	lsock = -1;
	poise_pool_share(NULL);
}
