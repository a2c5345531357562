/*
 * ctl.c - the server side of a mounted pool's control channel (where the
 * socket lives and what the client checks: src/cli/remote.c).
 *
 * One thread accepts connections on the daemon's socket and serves them
 * one at a time:
 *   1. the caller's credentials (SO_PEERCRED) first: root, the daemon's
 *      own user or the pool file's owner; anyone else gets a refusal and
 *      nothing is read from them;
 *   2. one fixed-size request (struct live_req, ctlproto.h), read within
 *      REQ_TIMEOUT_MS: a client that sends half of one and waits delays
 *      the others by that much at most;
 *   3. every field checked (live_req_check); a read-only mount refuses
 *      inject and clear;
 *   4. the operation runs on the pool this daemon serves, named by the
 *      daemon's own path (pf->pool_path): a request carries no host path,
 *      option or command text, so it cannot reach another file.  The pool
 *      is shared with this process's opens (poise_pool_share), so the
 *      operation's open returns the mounted pool.  Its stdout and stderr
 *      are captured into memory files (the daemon prints nothing else) and
 *      sent back with the exit status, all of it within SEND_TIMEOUT_S.
 * The channel failing to start (its directory taken by another user) does
 * not stop the mount: the daemon says why on its stderr.
 */
#include "fuse/pfuse.h"
#include "fuse/ctlproto.h"
#include "poise.h"
#include "poise-admin.h"


#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REQ_TIMEOUT_MS 2000
#define SEND_TIMEOUT_S 5

static int lsock = -1;
static pthread_t thread;
static struct pfuse *g_pf;
static char sock_path[320];

static char *slurp(int fd, size_t *len)
{
	off_t end = lseek(fd, 0, SEEK_END);
	char *b = malloc(end > 0 ? (size_t)end : 1);
	*len = 0;
	if (b && end > 0 && pread(fd, b, (size_t)end, 0) == end)
		*len = (size_t)end;
	return b;
}

static int64_t now_ms(void);

/* All of buf before the deadline (a client that reads slowly cannot hold
 * the channel longer than that); 0 or -1. */
static int send_by(int c, const void *buf, size_t len, int64_t deadline)
{
	for (size_t done = 0; done < len;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = {.fd = c, .events = POLLOUT};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		ssize_t n = send(c, (const char *)buf + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void answer(int c, int rc, const char *out, size_t olen, const char *err, size_t elen)
{
	struct live_ans a = {.magic = LIVE_ANS_MAGIC, .rc = rc, .outlen = olen, .errlen = elen};
	int64_t deadline = now_ms() + SEND_TIMEOUT_S * 1000;
	if (send_by(c, &a, sizeof(a), deadline) == 0 && send_by(c, out, olen, deadline) == 0)
		(void)send_by(c, err, elen, deadline);
}

static void refuse(int c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(int c, int rc, const char *fmt, ...)
{
	char e[400];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e, sizeof(e), fmt, ap);
	va_end(ap);
	answer(c, rc, "", 0, e, n < 0 ? 0 : (size_t)n < sizeof(e) ? (size_t)n : sizeof(e) - 1);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exactly len bytes within REQ_TIMEOUT_MS; 0 or -1. */
static int read_request(int c, void *buf, size_t len)
{
	int64_t deadline = now_ms() + REQ_TIMEOUT_MS;
	for (size_t got = 0; got < len;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = {.fd = c, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		ssize_t n = read(c, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* After r changed bytes of the pool behind the kernel (an injection
 * scrambles them, a clear zeroes them): drop the cached pages of the files
 * there, so the next read meets the pool as it now is. */
static void drop_cached(const struct live_req *r)
{
	if (r->op == LIVE_BB_INJECT || r->op == LIVE_BB_CLEAR) {
		pfuse_inval_range(g_pf, r->sector * POISE_SECTOR, r->count * POISE_SECTOR);
	} else if (r->op == LIVE_BB_INJECT_FILE) {
		struct poise_bb_range *rg;
		long n = poise_dev_badblocks(poise_pool_dev(g_pf->pool), &rg);
		for (long i = 0; i < n; i++)
			pfuse_inval_range(g_pf, rg[i].sector * POISE_SECTOR, rg[i].count * POISE_SECTOR);
		if (n >= 0)
			free(rg);
	}
}

/* Run r with stdout and stderr captured; answer the client. */
static void run_captured(int c, const struct live_req *r)
{
	int out = memfd_create("poise-ctl-out", MFD_CLOEXEC), err = memfd_create("poise-ctl-err", MFD_CLOEXEC);
	int s1 = dup(1), s2 = dup(2);
	if (out < 0 || err < 0 || s1 < 0 || s2 < 0) {
		refuse(c, CTL_EXIT_FAIL, "poise: control channel: out of descriptors\n");
	} else {
		fflush(stdout);
		fflush(stderr);
		dup2(out, 1);
		dup2(err, 2);
		int behind = live_req_writes(r) || r->op == LIVE_SCRUB; /* bytes change behind the maps */
		if (behind)
			pfuse_data_hold(g_pf, 1);
		int rc = g_pf->exec(r, g_pf->pool_path, g_pf->pool); /* the served pool itself, never a path */
		drop_cached(r);
		if (behind)
			pfuse_data_hold(g_pf, 0);
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
	int fds[4] = {out, err, s1, s2};
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void serve_one(int c)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	struct stat st;
	int ok = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0;
	/* the served pool file's owner, from the open file (never the path,
	 * which someone may have re-pointed since the mount) */
	if (!ok || poise_dev_fstat(poise_pool_dev(g_pf->pool), &st) < 0 ||
	    !(cr.uid == 0 || cr.uid == geteuid() || cr.uid == st.st_uid)) {
		if (!ok)
			cr.uid = (uid_t)-1;
		refuse(c, CTL_EXIT_FAIL, "poise: %s: control channel: only the pool's owner or root may use it "
				     "(uid %u refused)\n", g_pf->pool_path, (unsigned)cr.uid);
		return;
	}
	struct live_req *r = malloc(sizeof(*r));
	const char *why;
	if (!r)
		refuse(c, CTL_EXIT_FAIL, "poise: control channel: out of memory\n");
	else if (read_request(c, r, sizeof(*r)) < 0)
		; /* half a request, or none in time: nothing to answer */
	else if (live_req_check(r, &why) < 0)
		refuse(c, CTL_EXIT_USAGE, "poise: control channel: refused a malformed request (%s)\n", why);
	else if (g_pf->readonly && live_req_writes(r))
		refuse(c, CTL_EXIT_FAIL, "poise: %s: mounted read-only: badblocks inject and clear are refused\n",
		       g_pf->pool_path);
	else
		run_captured(c, r);
	free(r);
}

static void *loop(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINVAL || errno == EBADF)
				return NULL; /* shut down */
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
				struct timespec ts = {0, 100 * 1000 * 1000}; /* out of something: wait, go on */
				nanosleep(&ts, NULL);
			}
			continue;
		}
		serve_one(c);
		close(c);
	}
}

int pfuse_ctl_start(struct pfuse *pf)
{
	struct stat st;
	char dir[256];
	int r;
	if (stat(pf->pool_path, &st) < 0)
		return poise_errno(errno, "%s", pf->pool_path);
	if ((r = ctl_socket_path(geteuid(), st.st_dev, st.st_ino, dir, sizeof(dir), sock_path, sizeof(sock_path))) < 0)
		return poise_err(-r, "control socket path too long");
	if ((r = poise_runtime_dir(geteuid(), 1, dir, sizeof(dir))) < 0) /* ours alone */
		return r;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, sock_path, strlen(sock_path) + 1); /* ctl_socket_path checked the length */
	/* a socket left by a daemon that died: the pool is ours now (its lock
	 * is held), so no live daemon can be using the name */
	(void)unlink(sock_path);
	lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    chmod(sock_path, 0666) < 0 || listen(lsock, 16) < 0) {
		r = errno;
		if (lsock >= 0)
			close(lsock);
		lsock = -1;
		(void)unlink(sock_path);
		return poise_err(r, "%s: cannot open the control socket: %s", sock_path, strerror(r));
	}
	g_pf = pf;
	poise_pool_share(pf->pool);
	if ((r = pthread_create(&thread, NULL, loop, NULL)) != 0) {
		poise_pool_share(NULL);
		close(lsock);
		lsock = -1;
		(void)unlink(sock_path);
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
	(void)unlink(sock_path);
	poise_pool_share(NULL);
}
