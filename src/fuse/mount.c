/*
 * mount.c - the daemon of `poise mount` (daemon.h): the pool is opened
 * first (a pool already open elsewhere, mounted or not, is refused with its
 * owner's pid), then the FUSE session is made and mounted; only then is
 * "ready" reported, so the command line (src/cli/cmd_mount.c) returns with
 * every failure reported by itself.  default_permissions is always on (the
 * kernel enforces modes and ownership).  The session ends on unmount or
 * SIGTERM/SIGINT/SIGHUP; the pool is then closed cleanly (the log is empty,
 * nothing to replay).
 */
#include "fuse/pfuse.h"
#include "poise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fuse_session *g_se;

static void on_term(int sig)
{
	(void)sig;
	if (g_se)
		fuse_session_exit(g_se);
}

/* (daemon.h) */
int pfuse_serve(const struct pfuse_mount *m, int ready, int fg)
{
	struct pfuse pfs = {.pool_path = m->pool_path, .timeout = m->timeout, .readonly = m->readonly,
			    .odirect_block = !!(m->pool_flags & POISE_ODIRECT_BLOCK),
			    .cache_none = m->cache_none, .mapped_reply = !m->copy_reply, .max_read = m->max_read, .atime = m->readonly ? POISE_ATIME_NEVER : m->atime,
			    .exec = m->exec};
	struct pfuse *pf = &pfs;
	unsigned pflags = m->pool_flags;
	const char *dir = m->dir, *fuse_o = m->fuse_opts;
	char msg[600];
	int ret = poise_pool_open(pf->pool_path, pflags, &pf->pool);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "%s", poise_errmsg());
		goto fail;
	}
	char *fargv[] = {"poise", "-o", (char *)fuse_o, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	g_se = fuse_session_new(&args, &pfuse_ops, sizeof(pfuse_ops), pf);
	fuse_opt_free_args(&args);
	pf->se = g_se;
	if (!g_se) {
		snprintf(msg, sizeof(msg), "cannot start a FUSE session (options: %s)", fuse_o);
		ret = -EINVAL;
		goto fail_pool;
	}
	if (fuse_session_mount(g_se, dir) != 0) {
		snprintf(msg, sizeof(msg), "%s: cannot mount (is FUSE available, and DIR an empty directory?)", dir);
		ret = -EIO;
		goto fail_session;
	}
	/* without its control channel the mount still serves (the CLI then
	 * cannot reach it): say why, do not fail */
	char ready_msg[600] = "OK";
	if (pfuse_ctl_start(pf) < 0)
		snprintf(ready_msg, sizeof(ready_msg), "OKwarning: no control channel (badblocks and scrub cannot reach "
			 "this mount): %s", poise_errmsg());
	else if (pfuse_data_start(pf, dir) < 0) /* processes under the shim then use the mount as others do */
		snprintf(ready_msg, sizeof(ready_msg), "OKwarning: no data channel (the shim's processes go through "
			 "the mount): %s", poise_errmsg());
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (fg && ready_msg[2])
		fprintf(stderr, "poise: mount: %s\n", ready_msg + 2);
	if (write(ready, ready_msg, strlen(ready_msg)) < 0)
		(void)0;
	close(ready);
	if (!fg) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
		if (chdir("/") != 0)
			(void)0;
	}
	struct fuse_loop_config cfg = {.clone_fd = 0, .max_idle_threads = 16};
	ret = fuse_session_loop_mt(g_se, &cfg);
	pfuse_ctl_stop();
	pfuse_data_stop(pf);
	fuse_session_unmount(g_se);
	fuse_session_destroy(g_se);
	poise_pool_close(&pf->pool);
	return ret == 0 ? 0 : 1;
fail_session:
	fuse_session_destroy(g_se);
fail_pool:
	poise_pool_close(&pf->pool);
fail:
	if (fg)
		fprintf(stderr, "poise: mount: %s\n", msg);
	else if (write(ready, msg, strlen(msg)) < 0)
		(void)0;
	close(ready);
	return 1;
}
