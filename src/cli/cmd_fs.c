/*
 * cmd_fs.c - the file-system commands of `poise`: mkfs, info, fsck, ls,
 * stat, cat, put, get, rm, mkdir, mv.  Each opens the pool, does one thing
 * through the public API (include/poise.h), and closes it.
 */
#include "cli/cli.h"
#include "cli/live.h"
#include "poise.h"
#include "poise-admin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define POISE_LINK_MAX 4095

static int c_mkfs(const struct cli_cmd *, int, char **), c_info(const struct cli_cmd *, int, char **), c_fsck(const struct cli_cmd *, int, char **), c_ls(const struct cli_cmd *, int, char **),
	c_stat(const struct cli_cmd *, int, char **), c_cat(const struct cli_cmd *, int, char **), c_put(const struct cli_cmd *, int, char **), c_get(const struct cli_cmd *, int, char **),
	c_rm(const struct cli_cmd *, int, char **), c_mkdir(const struct cli_cmd *, int, char **), c_mv(const struct cli_cmd *, int, char **), c_write(const struct cli_cmd *, int, char **),
	c_scrub(const struct cli_cmd *, int, char **), c_map(const struct cli_cmd *, int, char **);

const struct cli_cmd cli_fs_cmds[] = {
	{"mkfs", "mkfs [--size SIZE] [--inodes N] [--force] POOL",
	 "Make a file system on POOL.  With --size, an emulated pool file is created\n"
	 "when POOL does not exist.  A pool that already holds poise is refused\n"
	 "unless --force.\n", c_mkfs},
	{"info", "info [--json] POOL", "Geometry and usage of the file system on POOL.\n", c_info},
	{"fsck", "fsck [--repair] [--json] POOL",
	 "Check every invariant (after the recovery a mount does: log replay, orphans).\n"
	 "Exit 0 when clean, 1 when problems were found (--repair fixes link counts,\n"
	 "the superblock replica, dangling entries; unreachable inodes go to /lost+found).\n", c_fsck},
	{"ls", "ls [-l] POOL [PATH]", "List a directory (default /), sorted by name.\n", c_ls},
	{"stat", "stat [--json] POOL PATH", "Show an inode (symlinks not followed).\n", c_stat},
	{"cat", "cat POOL PATH", "Write a file to stdout.  At a media error it stops, naming\n"
	 "the file offset and pool sector.\n", c_cat},
	{"put", "put POOL LOCAL PATH", "Copy a local file, or a directory tree, into the pool.\n", c_put},
	{"get", "get [--devices] POOL PATH LOCAL",
	 "Copy a file, or a directory tree, out of the pool: files, directories,\n"
	 "symlinks, FIFOs and sockets (never set-user-ID or set-group-ID bits).\n"
	 "Device nodes only with --devices (and as root): a pool is outside input,\n"
	 "and a node it names could open a raw disk to whoever reaches LOCAL.\n", c_get},
	{"rm", "rm [-r] POOL PATH", "Remove a file, an empty directory, or with -r a tree.\n", c_rm},
	{"mkdir", "mkdir [-p] POOL PATH", "Make a directory (-p: parents too, no error if it exists).\n", c_mkdir},
	{"mv", "mv POOL FROM TO", "Rename (atomically replaces TO).\n", c_mv},
	{"write", "write POOL PATH --offset N",
	 "Write stdin into the file at offset N (creating it if absent), through the\n"
	 "same path as any write: bad sectors it covers are cleared, so a damaged\n"
	 "range can be repaired by hand.\n", c_write},
	{"map", "map POOL PATH",
	 "Where a file's bytes live in the pool: one line per piece, \"FILE_OFFSET\n"
	 "POOL_OFFSET LENGTH\" (holes are absent).  For tests that poison a\n"
	 "file's media from outside (sysfs badblocks on a real device).\n", c_map},
	{"scrub", "scrub [--json] POOL",
	 "Read every block (used and free) through the machine-check-safe copy and\n"
	 "report each bad range with its owner: a file (path, file offset), metadata\n"
	 "(which structure, repaired or not), quarantined, or free.  Exit 1 when a\n"
	 "file or unrepaired metadata is damaged.\n", c_scrub},
	{NULL, NULL, NULL, NULL},
};

/* Split argv into flags (given as a string of accepted ones) and operands. */
static int args(const struct cli_cmd *c, int argc, char **argv, const char *const *accept,
		int *seen, char **ops, int nmin, int nmax, int *nops)
{
	*nops = 0;
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1]) {
			int k = 0;
			for (; accept && accept[k]; k++)
				if (!strcmp(argv[i], accept[k]))
					break;
			if (!accept || !accept[k])
				return cli_usage(c, "%s: unknown option '%s'", c->name, argv[i]);
			seen[k] = 1;
			continue;
		}
		if (*nops == nmax)
			return cli_usage(c, "%s: unexpected argument '%s'", c->name, argv[i]);
		ops[(*nops)++] = argv[i];
	}
	if (*nops < nmin)
		return cli_usage(c, "%s: missing arguments", c->name);
	return 0;
}

static int open_pool(const char *cmd, const char *path, struct poise_pool **p)
{
	int ret = poise_pool_open(path, 0, p);
	return ret < 0 ? cli_fail(ret, "%s", cmd) : 0;
}

static int c_mkfs(const struct cli_cmd *c, int argc, char **argv)
{
	uint64_t size = 0, inodes = 0;
	int force = 0;
	const char *pool = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (cli_parse_size(argv[++i], &size) < 0 || size == 0)
				return cli_usage(c, "mkfs: bad size '%s' (a positive number of bytes; K, M, G, T suffixes)",
						 argv[i]);
		} else if (!strcmp(argv[i], "--inodes") && i + 1 < argc) {
			if (cli_parse_u64(argv[++i], &inodes) < 0 || inodes == 0)
				return cli_usage(c, "mkfs: bad inode count '%s'", argv[i]);
		} else if (!strcmp(argv[i], "--force")) {
			force = 1;
		} else if (argv[i][0] == '-') {
			return cli_usage(c, "mkfs: unknown option '%s'", argv[i]);
		} else if (!pool) {
			pool = argv[i];
		} else {
			return cli_usage(c, "mkfs: unexpected argument '%s'", argv[i]);
		}
	}
	if (!pool)
		return cli_usage(c, "mkfs: POOL is required");
	int ret = poise_mkfs(pool, size, inodes, force ? POISE_MKFS_FORCE : 0);
	if (ret < 0)
		return cli_fail(ret, "mkfs");
	return EXIT_OK;
}

/* info and scrub also run on a mounted pool, through its daemon (live.h) */
static int c_live(const struct cli_cmd *c, int argc, char **argv, uint32_t op)
{
	static const char *const acc[] = {"--json", NULL};
	int seen[1] = {0}, n;
	char *ops[1];
	int r = args(c, argc, argv, acc, seen, ops, 1, 1, &n);
	if (r)
		return r;
	struct live_req q;
	memset(&q, 0, sizeof(q));
	q.magic = LIVE_REQ_MAGIC;
	q.op = op;
	q.flags = seen[0] ? LIVE_JSON : 0;
	return live_run(&q, ops[0]);
}

static int c_info(const struct cli_cmd *c, int argc, char **argv)
{
	return c_live(c, argc, argv, LIVE_INFO);
}

static int c_fsck(const struct cli_cmd *c, int argc, char **argv)
{
	static const char *const acc[] = {"--repair", "--json", NULL};
	int seen[2] = {0, 0}, n;
	char *ops[1];
	int r = args(c, argc, argv, acc, seen, ops, 1, 1, &n);
	if (r)
		return r;
	struct poise_fsck_report rep;
	cli_warn_exposed(ops[0]);
	int ret = poise_fsck(ops[0], seen[0] ? POISE_FSCK_REPAIR : 0, &rep);
	if (ret < 0)
		return cli_fail(ret, "fsck");
	size_t unrepaired = 0;
	for (size_t i = 0; i < rep.n; i++)
		unrepaired += !rep.p[i].repaired;
	if (seen[1]) {
		printf("{\"pool\":");
		cli_json_str(stdout, ops[0]);
		printf(",\"mounted\":%s,\"clean\":%s,\"inodes_used\":%llu,\"files\":%llu,\"dirs\":%llu,"
		       "\"symlinks\":%llu,\"blocks_used\":%llu,\"blocks_free\":%llu,\"problems\":[",
		       rep.mounted ? "true" : "false", rep.n ? "false" : "true",
		       (unsigned long long)rep.inodes_used, (unsigned long long)rep.files,
		       (unsigned long long)rep.dirs, (unsigned long long)rep.symlinks,
		       (unsigned long long)rep.blocks_used, (unsigned long long)rep.blocks_free);
		for (size_t i = 0; i < rep.n; i++) {
			printf("%s{\"kind\":\"%s\",\"ino\":%llu,\"detail\":", i ? "," : "", rep.p[i].kind,
			       (unsigned long long)rep.p[i].ino);
			cli_json_str(stdout, rep.p[i].detail);
			printf(",\"repaired\":%s}", rep.p[i].repaired ? "true" : "false");
		}
		printf("]}\n");
	} else {
		for (size_t i = 0; i < rep.n; i++)
			printf("%s: %s%s\n", rep.p[i].kind, rep.p[i].detail, rep.p[i].repaired ? " (repaired)" : "");
		/* FIFOs, sockets and devices: the inodes of no other kind */
		unsigned long long nodes = rep.inodes_used - rep.files - rep.dirs - rep.symlinks;
		char other[64] = "";
		if (nodes && nodes <= rep.inodes_used)
			snprintf(other, sizeof(other), ", %llu fifos, sockets or devices", nodes);
		if (rep.mounted)
			printf("%s: %llu inodes (%llu files, %llu directories, %llu symlinks%s), %llu blocks used, %llu free: %s\n",
			       ops[0], (unsigned long long)rep.inodes_used, (unsigned long long)rep.files,
			       (unsigned long long)rep.dirs, (unsigned long long)rep.symlinks, other,
			       (unsigned long long)rep.blocks_used, (unsigned long long)rep.blocks_free,
			       rep.n == 0 ? "clean" : unrepaired ? "PROBLEMS FOUND" : "repaired");
	}
	int bad = rep.n > 0 && (!seen[0] || unrepaired);
	poise_fsck_free(&rep);
	return bad ? EXIT_FAIL : EXIT_OK;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct poise_entry *)a)->name, ((const struct poise_entry *)b)->name);
}

static void mode_str(mode_t m, char *s)
{
	s[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISFIFO(m) ? 'p' : S_ISSOCK(m) ? 's' : S_ISCHR(m) ? 'c'
	     : S_ISBLK(m) ? 'b' : '-';
	const char *x = "rwxrwxrwx";
	for (int i = 0; i < 9; i++)
		s[1 + i] = (m & (0400 >> i)) ? x[i] : '-';
	/* set-id and sticky bits as ls shows them */
	if (m & S_ISUID)
		s[3] = (m & S_IXUSR) ? 's' : 'S';
	if (m & S_ISGID)
		s[6] = (m & S_IXGRP) ? 's' : 'S';
	if (m & S_ISVTX)
		s[9] = (m & S_IXOTH) ? 't' : 'T';
	s[10] = 0;
}

/* What stat calls a file of mode m. */
static const char *type_name(mode_t m)
{
	return S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symlink" : S_ISFIFO(m) ? "fifo" : S_ISSOCK(m) ? "socket"
	       : S_ISCHR(m) ? "character device" : S_ISBLK(m) ? "block device" : "file";
}

static int c_ls(const struct cli_cmd *c, int argc, char **argv)
{
	static const char *const acc[] = {"-l", NULL};
	int seen[1] = {0}, n;
	char *ops[2];
	int r = args(c, argc, argv, acc, seen, ops, 1, 2, &n);
	if (r)
		return r;
	const char *dir = n > 1 ? ops[1] : "/";
	struct poise_pool *p;
	if (open_pool("ls", ops[0], &p))
		return EXIT_FAIL;
	struct poise_dir *d;
	int ret = poise_opendir(p, dir, &d);
	if (ret < 0) {
		poise_pool_close(&p);
		return cli_fail(ret, "ls: %s", dir);
	}
	size_t cnt = 0, cap = 64;
	struct poise_entry *e = malloc(cap * sizeof(*e));
	while (e && poise_readdir(d, &e[cnt]) > 0)
		if (++cnt == cap)
			e = realloc(e, (cap *= 2) * sizeof(*e));
	poise_closedir(&d);
	qsort(e, cnt, sizeof(*e), by_name);
	for (size_t i = 0; i < cnt; i++) {
		if (!seen[0]) {
			cli_print_name(stdout, e[i].name);
			putchar('\n');
			continue;
		}
		char path[4096], ms[11], tb[32], target[4096] = "";
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", e[i].name);
		struct stat st;
		if (poise_lstat(p, path, &st) < 0)
			continue;
		mode_str(st.st_mode, ms);
		struct tm tm;
		localtime_r(&st.st_mtim.tv_sec, &tm);
		strftime(tb, sizeof(tb), "%Y-%m-%d %H:%M", &tm);
		if (S_ISLNK(st.st_mode)) {
			ssize_t k = poise_readlink(p, path, target + 4, sizeof(target) - 5);
			if (k > 0) {
				memcpy(target, " -> ", 4);
				target[4 + k] = 0;
			}
		}
		char size[32];
		if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) /* devices: major, minor as ls shows them */
			snprintf(size, sizeof(size), "%u, %u", major(st.st_rdev), minor(st.st_rdev));
		else
			snprintf(size, sizeof(size), "%lld", (long long)st.st_size);
		printf("%s %3lu %6u %6u %10s %s ", ms, (unsigned long)st.st_nlink, st.st_uid, st.st_gid, size, tb);
		cli_print_name(stdout, e[i].name);
		cli_print_name(stdout, target);
		putchar('\n');
	}
	free(e);
	poise_pool_close(&p);
	return EXIT_OK;
}

static int c_stat(const struct cli_cmd *c, int argc, char **argv)
{
	static const char *const acc[] = {"--json", NULL};
	int seen[1] = {0}, n;
	char *ops[2];
	int r = args(c, argc, argv, acc, seen, ops, 2, 2, &n);
	if (r)
		return r;
	struct poise_pool *p;
	if (open_pool("stat", ops[0], &p))
		return EXIT_FAIL;
	struct stat st;
	int ret = poise_lstat(p, ops[1], &st);
	poise_pool_close(&p);
	if (ret < 0)
		return cli_fail(ret, "stat: %s", ops[1]);
	const char *type = type_name(st.st_mode);
	if (seen[0]) {
		printf("{\"path\":");
		cli_json_str(stdout, ops[1]);
		printf(",\"type\":\"%s\",\"ino\":%llu,\"mode\":\"%04o\",\"nlink\":%lu,\"uid\":%u,\"gid\":%u,"
		       "\"size\":%lld,\"blocks\":%lld,\"rdev_major\":%u,\"rdev_minor\":%u,"
		       "\"atime_ns\":%lld,\"mtime_ns\":%lld,\"ctime_ns\":%lld}\n",
		       type, (unsigned long long)st.st_ino, st.st_mode & 07777, (unsigned long)st.st_nlink,
		       st.st_uid, st.st_gid, (long long)st.st_size, (long long)st.st_blocks, major(st.st_rdev),
		       minor(st.st_rdev),
		       (long long)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec,
		       (long long)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
		       (long long)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
	} else {
		printf("  path: %s\n  type: %s\n inode: %llu\n  mode: %04o\n links: %lu\n   uid: %u\n   gid: %u\n  size: %lld\nblocks: %lld (512-byte)\n mtime: %lld.%09ld\n ctime: %lld.%09ld\n",
		       ops[1], type, (unsigned long long)st.st_ino, st.st_mode & 07777,
		       (unsigned long)st.st_nlink, st.st_uid, st.st_gid, (long long)st.st_size,
		       (long long)st.st_blocks, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		       (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
		if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
			printf("device: %u, %u\n", major(st.st_rdev), minor(st.st_rdev));
	}
	return EXIT_OK;
}

/* Copy pool file `src` to descriptor out.  On a media error the message
 * names the file, file offset and pool sector. */
static int copy_out(struct poise_pool *p, const char *cmd, const char *src, int out)
{
	int fd = poise_open(p, src, O_RDONLY, 0);
	if (fd < 0)
		return cli_fail(fd, "%s: %s", cmd, src);
	char *buf = malloc(CHUNK);
	int rc = EXIT_OK;
	for (off_t off = 0; buf;) {
		ssize_t k = poise_pread(p, fd, buf, CHUNK, off);
		if (k < 0) {
			rc = cli_fail((int)k, "%s: %s", cmd, src);
			break;
		}
		if (k == 0)
			break;
		int w = cli_write_all(out, buf, (size_t)k);
		if (w < 0) {
			rc = cli_fail(0, "%s: writing: %s", cmd, strerror(-w));
			break;
		}
		off += k;
	}
	free(buf);
	poise_close(p, fd);
	return rc;
}

static int c_cat(const struct cli_cmd *c, int argc, char **argv)
{
	int n;
	char *ops[2];
	int r = args(c, argc, argv, NULL, NULL, ops, 2, 2, &n);
	if (r)
		return r;
	struct poise_pool *p;
	if (open_pool("cat", ops[0], &p))
		return EXIT_FAIL;
	r = copy_out(p, "cat", ops[1], 1);
	poise_pool_close(&p);
	return r;
}

static int put_file(struct poise_pool *p, const char *local, const char *dst, const struct stat *st)
{
	int in = open(local, O_RDONLY);
	if (in < 0)
		return cli_fail(0, "put: %s: %s", local, strerror(errno));
	int fd = poise_open(p, dst, O_CREAT | O_WRONLY | O_TRUNC, st->st_mode & 07777);
	if (fd < 0) {
		close(in);
		return cli_fail(fd, "put: %s", dst);
	}
	char *buf = malloc(CHUNK);
	int rc = EXIT_OK;
	for (off_t off = 0; buf;) {
		ssize_t k = read(in, buf, CHUNK);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = cli_fail(0, "put: %s: %s", local, strerror(errno));
			break;
		}
		if (k == 0)
			break;
		ssize_t w = poise_pwrite(p, fd, buf, (size_t)k, off);
		if (w < 0) {
			rc = cli_fail((int)w, "put: %s", dst);
			break;
		}
		off += k;
	}
	free(buf);
	close(in);
	poise_close(p, fd);
	return rc;
}

static int put_tree(struct poise_pool *p, const char *local, const char *dst)
{
	struct stat st;
	if (lstat(local, &st) < 0)
		return cli_fail(0, "put: %s: %s", local, strerror(errno));
	if (S_ISLNK(st.st_mode)) {
		char t[4096];
		ssize_t k = readlink(local, t, sizeof(t) - 1);
		if (k < 0)
			return cli_fail(0, "put: %s: %s", local, strerror(errno));
		t[k] = 0;
		int ret = poise_symlink(p, t, dst);
		return ret < 0 ? cli_fail(ret, "put: %s", dst) : EXIT_OK;
	}
	if (S_ISREG(st.st_mode))
		return put_file(p, local, dst, &st);
	if (!S_ISDIR(st.st_mode)) { /* a FIFO, socket or device: the node, as cp -a makes it */
		int ret = poise_mknod(p, dst, st.st_mode & (S_IFMT | 07777), st.st_rdev);
		return ret < 0 ? cli_fail(ret, "put: %s", dst) : EXIT_OK;
	}
	int ret = poise_mkdir(p, dst, st.st_mode & 07777);
	if (ret < 0 && ret != -EEXIST)
		return cli_fail(ret, "put: %s", dst);
	DIR *d = opendir(local);
	if (!d)
		return cli_fail(0, "put: %s: %s", local, strerror(errno));
	struct dirent *de;
	int rc = EXIT_OK;
	while (rc == EXIT_OK && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char l[4096], t[4096];
		snprintf(l, sizeof(l), "%s/%s", local, de->d_name);
		snprintf(t, sizeof(t), "%s/%s", strcmp(dst, "/") ? dst : "", de->d_name);
		rc = put_tree(p, l, t);
	}
	closedir(d);
	return rc;
}

static int c_put(const struct cli_cmd *c, int argc, char **argv)
{
	int n;
	char *ops[3];
	int r = args(c, argc, argv, NULL, NULL, ops, 3, 3, &n);
	if (r)
		return r;
	struct poise_pool *p;
	if (open_pool("put", ops[0], &p))
		return EXIT_FAIL;
	r = put_tree(p, ops[1], ops[2]);
	poise_pool_close(&p);
	return r;
}

/* dir/name into buf (dir "/" gives "/name"); 0 when it does not fit or
 * name is not one name (".", "..", a '/': never from a sane pool, but a
 * pool is outside input). */
static int child_path(char *buf, size_t len, const char *dir, const char *name)
{
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return 0;
	int n = snprintf(buf, len, "%s/%s", strcmp(dir, "/") ? dir : "", name);
	return n > 0 && (size_t)n < len;
}

static int get_tree(struct poise_pool *p, const char *src, const char *local, int devices)
{
	struct stat st;
	int ret = poise_lstat(p, src, &st);
	if (ret < 0)
		return cli_fail(ret, "get: %s", src);
	if (S_ISLNK(st.st_mode)) {
		char *t = malloc(POISE_LINK_MAX + 1);
		ssize_t k = t ? poise_readlink(p, src, t, POISE_LINK_MAX) : -ENOMEM;
		if (k < 0) {
			free(t);
			return cli_fail((int)k, "get: %s", src);
		}
		t[k] = 0;
		int r = symlink(t, local) < 0 ? cli_fail(0, "get: %s: %s", local, strerror(errno)) : EXIT_OK;
		free(t);
		return r;
	}
	/* no set-user-ID or set-group-ID bits from a pool: a crafted one must
	 * not make root extract set-id programs (as tar does for non-root) */
	st.st_mode &= ~(mode_t)(S_ISUID | S_ISGID);
	if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && !devices) {
		fprintf(stderr, "poise: get: %s: a device node, skipped (--devices creates them)\n", src);
		return EXIT_OK;
	}
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		/* the node itself, as tar and cp -a make it (devices need root;
		 * an existing name is never replaced) */
		/* the mode the pool holds, not the umask's: made so at once
		 * (no chmod by name afterwards, which a name swapped meanwhile
		 * would redirect) */
		mode_t um = umask(0);
		int k = mknod(local, st.st_mode & (S_IFMT | 07777), st.st_rdev);
		int e = errno;
		umask(um);
		if (k < 0)
			return cli_fail(0, "get: %s: %s", local, strerror(e));
		return EXIT_OK;
	}
	if (S_ISREG(st.st_mode)) {
		/* never through a symlink already at local: a crafted pool must
		 * not make get write outside its destination */
		int out = open(local, O_CREAT | O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, st.st_mode & 07777);
		if (out < 0)
			return cli_fail(0, "get: %s: %s", local, strerror(errno));
		/* only a regular file with one name is written into (a FIFO or a
		 * hard link someone planted in the destination is refused) */
		struct stat ost;
		if (fstat(out, &ost) < 0 || !S_ISREG(ost.st_mode) || ost.st_nlink != 1 || ftruncate(out, 0) < 0) {
			close(out);
			return cli_fail(0, "get: %s: exists and is not a plain file of one name: not written", local);
		}
		int rc = copy_out(p, "get", src, out);
		if (close(out) < 0 && rc == EXIT_OK)
			rc = cli_fail(0, "get: %s: %s", local, strerror(errno));
		return rc;
	}
	struct stat lst;
	if (mkdir(local, st.st_mode & 07777) < 0 && errno != EEXIST)
		return cli_fail(0, "get: %s: %s", local, strerror(errno));
	if (lstat(local, &lst) < 0 || !S_ISDIR(lst.st_mode))
		return cli_fail(0, "get: %s: exists and is not a directory", local);
	struct poise_dir *d;
	if ((ret = poise_opendir(p, src, &d)) < 0)
		return cli_fail(ret, "get: %s", src);
	struct poise_entry e;
	int rc = EXIT_OK;
	/* the paths on the heap: a frame stays small however deep the tree
	 * (child_path bounds the depth by PATH_MAX) */
	char *s = malloc(2 * PATH_MAX), *l = s + PATH_MAX;
	if (!s)
		rc = cli_fail(-ENOMEM, "get");
	while (rc == EXIT_OK && poise_readdir(d, &e) > 0) {
		if (!child_path(s, PATH_MAX, src, e.name) || !child_path(l, PATH_MAX, local, e.name)) {
			rc = cli_fail(0, "get: %s: a name in it is unusable here or makes a path too long", src);
			break;
		}
		rc = get_tree(p, s, l, devices);
	}
	free(s);
	poise_closedir(&d);
	return rc;
}

static int c_get(const struct cli_cmd *c, int argc, char **argv)
{
	static const char *const acc[] = {"--devices", NULL};
	int seen[1] = {0}, n;
	char *ops[3];
	int r = args(c, argc, argv, acc, seen, ops, 3, 3, &n);
	if (r)
		return r;
	struct poise_pool *p;
	if (open_pool("get", ops[0], &p))
		return EXIT_FAIL;
	r = get_tree(p, ops[1], ops[2], seen[0]);
	poise_pool_close(&p);
	return r;
}

static int rm_tree(struct poise_pool *p, const char *path)
{
	struct stat st;
	int ret = poise_lstat(p, path, &st);
	if (ret < 0)
		return ret;
	if (!S_ISDIR(st.st_mode))
		return poise_unlink(p, path);
	struct poise_dir *d;
	if ((ret = poise_opendir(p, path, &d)) < 0)
		return ret;
	struct poise_entry e;
	char *c = malloc(PATH_MAX); /* on the heap: small frames however deep */
	if (!c)
		ret = -ENOMEM;
	while (ret == 0 && poise_readdir(d, &e) > 0)
		ret = child_path(c, PATH_MAX, path, e.name) ? rm_tree(p, c)
							    : poise_err(ENAMETOOLONG, "%s: a path in it is too long", path);
	free(c);
	poise_closedir(&d);
	return ret < 0 ? ret : (strcmp(path, "/") ? poise_rmdir(p, path) : 0);
}

static int c_rm(const struct cli_cmd *c, int argc, char **argv)
{
	static const char *const acc[] = {"-r", NULL};
	int seen[1] = {0}, n;
	char *ops[2];
	int r = args(c, argc, argv, acc, seen, ops, 2, 2, &n);
	if (r)
		return r;
	struct poise_pool *p;
	if (open_pool("rm", ops[0], &p))
		return EXIT_FAIL;
	struct stat st;
	int ret = poise_lstat(p, ops[1], &st);
	if (ret == 0)
		ret = seen[0] ? rm_tree(p, ops[1]) : S_ISDIR(st.st_mode) ? poise_rmdir(p, ops[1]) : poise_unlink(p, ops[1]);
	poise_pool_close(&p);
	return ret < 0 ? cli_fail(ret, "rm: %s", ops[1]) : EXIT_OK;
}

static int c_mkdir(const struct cli_cmd *c, int argc, char **argv)
{
	static const char *const acc[] = {"-p", NULL};
	int seen[1] = {0}, n;
	char *ops[2];
	int r = args(c, argc, argv, acc, seen, ops, 2, 2, &n);
	if (r)
		return r;
	struct poise_pool *p;
	if (open_pool("mkdir", ops[0], &p))
		return EXIT_FAIL;
	int ret = 0;
	if (seen[0]) {
		char path[4096];
		snprintf(path, sizeof(path), "%s", ops[1]);
		for (char *s = path + 1; ret >= 0; s++) {
			if (*s != '/' && *s)
				continue;
			char ch = *s;
			*s = 0;
			ret = poise_mkdir(p, path, 0755);
			if (ret == -EEXIST) {
				struct stat st;
				ret = poise_stat(p, path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -EEXIST;
			}
			*s = ch;
			if (!ch)
				break;
		}
	} else {
		ret = poise_mkdir(p, ops[1], 0755);
	}
	poise_pool_close(&p);
	return ret < 0 ? cli_fail(ret, "mkdir: %s", ops[1]) : EXIT_OK;
}

static int c_mv(const struct cli_cmd *c, int argc, char **argv)
{
	int n;
	char *ops[3];
	int r = args(c, argc, argv, NULL, NULL, ops, 3, 3, &n);
	if (r)
		return r;
	struct poise_pool *p;
	if (open_pool("mv", ops[0], &p))
		return EXIT_FAIL;
	int ret = poise_rename(p, ops[1], ops[2]);
	poise_pool_close(&p);
	return ret < 0 ? cli_fail(ret, "mv: %s -> %s", ops[1], ops[2]) : EXIT_OK;
}

static int c_write(const struct cli_cmd *c, int argc, char **argv)
{
	const char *ops[2] = {NULL, NULL};
	uint64_t off = 0;
	int have_off = 0, n = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--offset") && i + 1 < argc) {
			if (cli_parse_size(argv[++i], &off) < 0)
				return cli_usage(c, "write: bad offset '%s'", argv[i]);
			have_off = 1;
		} else if (argv[i][0] == '-') {
			return cli_usage(c, "write: unknown option '%s'", argv[i]);
		} else if (n < 2) {
			ops[n++] = argv[i];
		} else {
			return cli_usage(c, "write: unexpected argument '%s'", argv[i]);
		}
	}
	if (n < 2 || !have_off)
		return cli_usage(c, "write: POOL, PATH and --offset are required");
	struct poise_pool *p;
	if (open_pool("write", ops[0], &p))
		return EXIT_FAIL;
	int fd = poise_open(p, ops[1], O_CREAT | O_WRONLY, 0644);
	if (fd < 0) {
		poise_pool_close(&p);
		return cli_fail(fd, "write: %s", ops[1]);
	}
	char *buf = malloc(CHUNK);
	int rc = buf ? EXIT_OK : cli_fail(-ENOMEM, "write");
	while (buf) {
		ssize_t k = read(0, buf, CHUNK);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = cli_fail(0, "write: reading stdin: %s", strerror(errno));
			break;
		}
		if (k == 0)
			break;
		ssize_t w = poise_pwrite(p, fd, buf, (size_t)k, (off_t)off);
		if (w < 0) {
			rc = cli_fail((int)w, "write: %s", ops[1]);
			break;
		}
		off += (uint64_t)k;
	}
	free(buf);
	poise_close(p, fd);
	poise_pool_close(&p);
	return rc;
}

static int c_scrub(const struct cli_cmd *c, int argc, char **argv)
{
	return c_live(c, argc, argv, LIVE_SCRUB);
}

static int c_map(const struct cli_cmd *c, int argc, char **argv)
{
	int seen[1] = {0}, n;
	char *ops[2];
	int r = args(c, argc, argv, NULL, seen, ops, 2, 2, &n);
	if (r)
		return r;
	struct poise_pool *p;
	if (open_pool("map", ops[0], &p))
		return EXIT_FAIL;
	struct poise_map_piece m[256];
	uint64_t at = 0;
	int ret = 0;
	for (;;) {
		ret = poise_fiemap(p, ops[1], at, UINT64_MAX / 2, m, 256);
		if (ret <= 0)
			break;
		for (int i = 0; i < ret; i++)
			printf("%llu %llu %llu\n", (unsigned long long)m[i].file_off, (unsigned long long)m[i].pool_off,
			       (unsigned long long)m[i].length);
		at = m[ret - 1].file_off + m[ret - 1].length;
		if (ret < 256)
			break;
	}
	poise_pool_close(&p);
	if (ret < 0)
		return cli_fail(ret, "map: %s", ops[1]);
	return EXIT_OK;
}
