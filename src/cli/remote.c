/*
 * remote.c - the client side of a mounted pool's control channel.
 *
 * While `poise mount` holds a pool, other processes cannot open it; the
 * commands that make sense on a live pool (live.h: info, scrub, badblocks
 * list|inject|clear) are sent to the daemon instead as a fixed request
 * (struct live_req), and the daemon answers with the exit status, the
 * output and the errors.
 *
 * Where the daemon listens: a unix socket file "ctl-DEV-INO.sock" (the
 * pool file's identity, so any path to the pool finds it) in a directory
 * that only the daemon's user can write: /run/poise for root, else
 * /run/user/UID/poise, else /tmp/poise-UID (made 0700; one that another
 * user made first is not used).  No other user can bind there, so nobody
 * can squat the name or block the mount.
 *
 * Whom the client trusts: it looks only in the directories of root, of the
 * pool file's owner and of its own user, checks that the directory and the
 * socket belong to that user and that no one else may write the directory,
 * and after connecting checks the server's credentials (SO_PEERCRED): root,
 * the pool file's owner, or the client's own user.  Anyone else answering
 * is refused with an error, never believed.
 *
 * Time limits: 5 s to connect and send; the answer within 120 s (a scrub of
 * a large pool reads all of it).
 */
#include "cli/cli.h"
#include "cli/live.h"
#include "poise-admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define SEND_TIMEOUT_S 5
#define ANSWER_TIMEOUT_S 120

int cli_pool_held(const char *path)
{
	pid_t pid;
	return poise_pool_holder(path, &pid) > 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void set_timeout(int s, int opt, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	(void)setsockopt(s, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/* Connect to the socket of the daemon that would run as uid; -1 when there
 * is none to trust there (no socket, or one another user could have put). */
static int try_connect(uid_t uid, const struct stat *pool)
{
	char dir[256], path[320];
	struct stat st;
	if (ctl_socket_path(uid, pool->st_dev, pool->st_ino, dir, sizeof(dir), path, sizeof(path)) < 0)
		return -1;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 022))
		return -1;
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != uid)
		return -1;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, path, strlen(path) + 1); /* ctl_socket_path checked the length */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	set_timeout(s, SO_SNDTIMEO, SEND_TIMEOUT_S);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(s);
		return -1; /* a stale socket: that daemon is gone */
	}
	return s;
}

int cli_remote(const char *path, const struct live_req *r, int *rc)
{
	struct stat pool;
	if (stat(path, &pool) < 0)
		return 0;
	uid_t cand[3] = {0, pool.st_uid, geteuid()};
	int s = -1;
	uid_t want = 0;
	for (int i = 0; i < 3 && s < 0; i++) {
		if ((i == 1 && cand[1] == 0) || (i == 2 && (cand[2] == 0 || cand[2] == cand[1])))
			continue;
		want = cand[i];
		s = try_connect(want, &pool);
	}
	if (s < 0)
		return 0; /* held, but not by a mount we can reach: the local open says by whom */
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	*rc = EXIT_FAIL;
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0)
		cr.uid = (uid_t)-1;
	if (cr.uid != 0 && cr.uid != want) {
		fprintf(stderr, "poise: %s: the control socket is served by uid %u, neither root nor the pool's "
				"owner: not trusted\n", path, (unsigned)cr.uid);
		close(s);
		return 1;
	}
	/* a refusal may come before the request is read: read the answer even
	 * when sending failed */
	int sent = cli_write_all(s, r, sizeof(*r));
	set_timeout(s, SO_RCVTIMEO, ANSWER_TIMEOUT_S);
	struct live_ans ans;
	if (read_full(s, &ans, sizeof(ans)) < 0 || ans.magic != LIVE_ANS_MAGIC || ans.outlen > (1ULL << 30) ||
	    ans.errlen > (1ULL << 20)) {
		if (sent < 0)
			fprintf(stderr, "poise: %s: cannot send to the mount's control channel: %s\n", path,
				strerror(-sent));
		else
			fprintf(stderr, "poise: %s: the mount's control channel gave no answer%s\n", path,
				errno == EAGAIN ? " in time" : "");
		close(s);
		return 1;
	}
	char *out = malloc(ans.outlen + 1), *err = malloc(ans.errlen + 1);
	if (!out || !err || read_full(s, out, ans.outlen) < 0 || read_full(s, err, ans.errlen) < 0) {
		free(out);
		free(err);
		close(s);
		fprintf(stderr, "poise: %s: the mount's control channel broke off\n", path);
		return 1;
	}
	close(s);
	fwrite(out, 1, ans.outlen, stdout);
	fflush(stdout);
	fwrite(err, 1, ans.errlen, stderr);
	free(out);
	free(err);
	*rc = ans.rc;
	return 1;
}
