/*
 * cmd_mount.c - `poise mount [-o OPTIONS] [-f] POOL DIR` and `poise umount DIR`.
 *
 * mount: the daemon (src/fuse/daemon.h: pfuse_serve) opens the pool and
 * mounts; only then does the command return (or, without -f, the daemon
 * detach): the parent waits on a pipe for the child's "ready" or its error
 * message, so every failure is reported by the command itself.
 * Options: ro, odirect=dax|block, cache=page|none, reply=map|copy, relatime|noatime|
 * strictatime, timeout=SECONDS (attribute and entry cache), and the usual
 * FUSE ones (allow_other, ...), passed through (strictatime is not: libfuse
 * does not know it, so the mount table shows relatime);
 * default_permissions is always on (the kernel enforces modes and
 * ownership).  The session ends on unmount or SIGTERM/SIGINT; the pool is
 * then closed cleanly (the log is empty, nothing to replay).
 *
 * umount: unmounts DIR (umount2 as root, else fusermount3 -u) and waits
 * until the daemon has closed the pool, so the next command can open it.
 */
#include "cli/cli.h"
#include "cli/live.h"
#include "fuse/daemon.h"
#include "poise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int c_mount(const struct cli_cmd *c, int argc, char **argv);
static int c_umount(const struct cli_cmd *c, int argc, char **argv);

const struct cli_cmd cli_mount_cmds[] = {
	{"mount", "mount [-o OPTIONS] [-f] [--] POOL DIR",
	 "Serve the file system on POOL at DIR through FUSE, until `poise umount DIR`\n"
	 "(or umount DIR).  `mount -t fuse.poise POOL DIR` and fstab lines of type\n"
	 "fuse.poise run this through the mount.fuse.poise helper.\n"
	 "OPTIONS (comma-separated): ro; odirect=dax (default) or odirect=block\n"
	 "(O_DIRECT opens take the block path); cache=page (default: buffered\n"
	 "opens use the page cache, write-through, and MAP_SHARED works) or\n"
	 "cache=none (every read and write goes to the pool; no shared maps);\n"
	 "reply=map (default: the kernel copies a read with no known bad sector\n"
	 "straight from the pool mapping) or reply=copy (the daemon's guarded\n"
	 "copy first, for every read);\n"
	 "relatime (default), noatime or strictatime; timeout=S (attribute and\n"
	 "entry cache, default 1 s); allow_other and other FUSE options.  The\n"
	 "kernel checks permissions and POSIX ACLs (default_permissions).\n"
	 "-f stays in the foreground.\n"
	 "While mounted, `poise badblocks` and `poise scrub` on POOL reach the\n"
	 "daemon through its control socket (the pool's owner and root only).\n",
	 c_mount},
	{"umount", "umount DIR", "Unmount a poise mount and wait until its pool is closed.\n", c_umount},
	{NULL, NULL, NULL, NULL},
};

/* A value inside a FUSE option string: a comma or backslash in a pool
 * path is escaped (libfuse reads "\," as a comma), so a pool named
 * "x,suid,dev" cannot add mount options. */
static void opt_escape(const char *s, char *out)
{
	for (; *s; s++) {
		if (*s == ',' || *s == '\\')
			*out++ = '\\';
		*out++ = *s;
	}
	*out = 0;
}

/* /proc/self/mountinfo writes space, tab, newline and backslash as \ooo. */
static void unoctal(char *s)
{
	char *d = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

/* Split -o OPTIONS into ours and FUSE's. */
static int parse_opts(const struct cli_cmd *c, const char *o, struct pfuse_mount *pf, char *fuse_o, size_t len)
{
	char *dup = strdup(o), *save = NULL;
	if (!dup)
		return cli_fail(-ENOMEM, "mount");
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "odirect=block")) {
			pf->pool_flags |= POISE_ODIRECT_BLOCK;
		} else if (!strcmp(t, "odirect=dax")) {
			pf->pool_flags &= ~(unsigned)POISE_ODIRECT_BLOCK;
		} else if (!strncmp(t, "odirect=", 8)) {
			int r = cli_usage(c, "mount: odirect takes dax or block, not '%s'", t + 8);
			free(dup);
			return r;
		} else if (!strncmp(t, "timeout=", 8)) {
			char *end;
			pf->timeout = strtod(t + 8, &end);
			if (*end || pf->timeout < 0 || pf->timeout > 3600) {
				int r = cli_usage(c, "mount: bad timeout '%s'", t + 8);
				free(dup);
				return r;
			}
		} else if (!strcmp(t, "cache=none") || !strcmp(t, "cache=page")) {
			pf->cache_none = t[6] == 'n';
		} else if (!strncmp(t, "max_read=", 9)) {
			char *end;
			unsigned long v = strtoul(t + 9, &end, 10);
			if (*end || v < 4096 || v > (64u << 20)) {
				int r = cli_usage(c, "mount: bad max_read '%s' (4096 to 67108864 bytes)", t + 9);
				free(dup);
				return r;
			}
			pf->max_read = (unsigned)v; /* libfuse wants init to ask for the same */
			size_t l = strlen(fuse_o);
			if (l + strlen(t) + 2 > len) {
				free(dup);
				return cli_usage(c, "mount: too many options");
			}
			snprintf(fuse_o + l, len - l, ",%s", t);
		} else if (!strcmp(t, "reply=map") || !strcmp(t, "reply=copy")) {
			pf->copy_reply = t[6] == 'c';
		} else if (!strncmp(t, "reply=", 6)) {
			int r = cli_usage(c, "mount: reply takes map or copy, not '%s'", t + 6);
			free(dup);
			return r;
		} else if (!strncmp(t, "cache=", 6)) {
			int r = cli_usage(c, "mount: cache takes page or none, not '%s'", t + 6);
			free(dup);
			return r;
		} else if (!strcmp(t, "default_permissions")) {
			/* always on */
		} else {
			/* access times: ours to keep (the kernel leaves them to a
			 * FUSE file system); the flag also goes to the kernel, so
			 * the mount table shows it */
			if (!strcmp(t, "noatime")) {
				pf->atime = POISE_ATIME_NEVER;
			} else if (!strcmp(t, "strictatime")) {
				pf->atime = POISE_ATIME_STRICT;
				continue; /* libfuse does not know it */
			} else if (!strcmp(t, "relatime") || !strcmp(t, "atime")) {
				pf->atime = POISE_ATIME_RELATIME;
			}
			if (!strcmp(t, "ro"))
				pf->readonly = 1;
			size_t l = strlen(fuse_o);
			if (l + strlen(t) + 2 > len) {
				free(dup);
				return cli_usage(c, "mount: too many options");
			}
			snprintf(fuse_o + l, len - l, ",%s", t);
		}
	}
	free(dup);
	return 0;
}

static int c_mount(const struct cli_cmd *c, int argc, char **argv)
{
	struct pfuse_mount pf = {.timeout = 1.0, .atime = POISE_ATIME_RELATIME, .exec = live_exec};
	int fg = 0;
	const char *pool = NULL, *dir = NULL;
	char fuse_o[1024] = "fsname=poise,subtype=poise,default_permissions";
	for (int i = 0, only_names = 0; i < argc; i++) {
		if (only_names || argv[i][0] != '-') {
			if (!pool)
				pool = argv[i];
			else if (!dir)
				dir = argv[i];
			else
				return cli_usage(c, "mount: unexpected argument '%s'", argv[i]);
		} else if (!strcmp(argv[i], "--")) {
			only_names = 1; /* what follows are POOL and DIR, even "-x" */
		} else if (!strcmp(argv[i], "-f")) {
			fg = 1;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			int r = parse_opts(c, argv[++i], &pf, fuse_o, sizeof(fuse_o));
			if (r)
				return r;
		} else {
			return cli_usage(c, "mount: unknown option '%s'", argv[i]);
		}
	}
	if (!pool || !dir)
		return cli_usage(c, "mount: POOL and DIR are required");
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return cli_fail(0, "mount: %s: not a directory", dir);
	char *abspool = realpath(pool, NULL);
	if (!abspool)
		return cli_fail(-errno, "mount: %s", pool);
	pf.pool_path = abspool;
	/* fsname names the pool in /proc/mounts, for umount and for people */
	char fsn[1200], esc[2 * 4096 + 1];
	opt_escape(abspool, esc);
	if (snprintf(fsn, sizeof(fsn), "fsname=poise:%s%s", esc, fuse_o + strlen("fsname=poise")) >= (int)sizeof(fsn)) {
		free(abspool);
		return cli_usage(c, "mount: the pool path and options are too long");
	}
	pf.dir = dir;
	pf.fuse_opts = fsn;
	int p[2];
	if (pipe(p) < 0)
		return cli_fail(-errno, "mount: pipe");
	fflush(NULL);
	pid_t pid = fg ? 0 : fork();
	if (pid < 0)
		return cli_fail(-errno, "mount: fork");
	if (pid == 0) {
		if (!fg) {
			close(p[0]);
			setsid();
			_exit(pfuse_serve(&pf, p[1], 0));
		}
		/* foreground: a thread of ours reads nothing; report inline */
		close(p[0]);
		int r = pfuse_serve(&pf, p[1], 1) ? EXIT_FAIL : EXIT_OK;
		free(abspool);
		return r;
	}
	close(p[1]);
	char msg[601];
	ssize_t n = read(p[0], msg, sizeof(msg) - 1);
	close(p[0]);
	msg[n > 0 ? n : 0] = 0;
	if (n >= 2 && !memcmp(msg, "OK", 2)) {
		if (n > 2)
			fprintf(stderr, "poise: mount: %s\n", msg + 2);
		free(abspool);
		return EXIT_OK;
	}
	waitpid(pid, NULL, 0);
	fprintf(stderr, "poise: mount: %s\n", n > 0 ? msg : "the daemon died while starting");
	free(abspool);
	return EXIT_FAIL;
}

/* The pool mounted at dir, from /proc/self/mountinfo's source "poise:POOL". */
static int pool_of_mount(const char *dir, char *pool, size_t len)
{
	char *real = realpath(dir, NULL);
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int found = 0;
	while (real && f && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPER */
		char mnt[2048], fstype[64], src[2048];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %2047s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %2047s", fstype, src) != 2)
			continue;
		unoctal(mnt);
		unoctal(src);
		if (strcmp(mnt, real) || strncmp(fstype, "fuse", 4) || strncmp(src, "poise:", 6))
			continue;
		snprintf(pool, len, "%s", src + 6);
		found = 1;
	}
	if (f)
		fclose(f);
	free(real);
	return found;
}

static int c_umount(const struct cli_cmd *c, int argc, char **argv)
{
	if (argc != 1 || argv[0][0] == '-')
		return cli_usage(c, "umount: DIR is required");
	char pool[2048];
	if (!pool_of_mount(argv[0], pool, sizeof(pool)))
		return cli_fail(0, "umount: %s: not a poise mount", argv[0]);
	if (geteuid() == 0) {
		if (umount2(argv[0], 0) < 0)
			return cli_fail(-errno, "umount: %s", argv[0]);
	} else {
		pid_t pid = fork();
		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-u", argv[0], (char *)NULL);
			_exit(127);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			return cli_fail(0, "umount: %s: fusermount3 -u failed", argv[0]);
	}
	/* the daemon closes the pool as its session ends */
	for (int i = 0; i < 1000 && cli_pool_held(pool); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (cli_pool_held(pool))
		return cli_fail(0, "umount: %s: unmounted, but the daemon still holds %s after 10 s", argv[0], pool);
	return EXIT_OK;
}
