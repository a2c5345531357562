/*
 * test_fs_at.c - the *at calls (paths relative to an inode, "" for the
 * inode itself), renameat2 with RENAME_NOREPLACE and RENAME_EXCHANGE,
 * ownership and times, SEEK_DATA/SEEK_HOLE, directory positions, FIFOs,
 * sockets and device nodes (format 1.1), POSIX ACLs (mode in step,
 * inheritance), access times and generations: what the FUSE mount and
 * the shim are built on.
 */
#include "harness.h"
#include "poise.h"
#include "fs_check.h"
#include "fs/fs.h"

#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char img[400];

static struct poise_pool *fresh(void)
{
	static int k;
	struct poise_pool *p;
	snprintf(img, sizeof(img), "%s/at%d.img", h_tmpdir(), k++);
	if (poise_mkfs(img, 32 << 20, 0, 0) < 0 || poise_pool_open(img, 0, &p) < 0)
		return NULL;
	return p;
}

static uint64_t ino_of(struct poise_pool *p, const char *path)
{
	struct stat st;
	return poise_lstat(p, path, &st) == 0 ? st.st_ino : 0;
}

static void t_relative(void)
{
	struct poise_pool *p = fresh();
	CHECK(p);
	CHECK_EQ(poise_mkdir(p, "/a", 0755), 0);
	uint64_t a = ino_of(p, "/a");
	CHECK(a > 1);
	CHECK_EQ(poise_mkdirat(p, a, "b", 0700), 0);
	int fd = poise_openat(p, a, "b/f", O_CREAT | O_WRONLY, 0640);
	CHECK(fd >= 0);
	CHECK_EQ(poise_pwrite(p, fd, "hello", 5, 0), 5);
	poise_close(p, fd);
	struct stat st;
	CHECK_EQ(poise_stat(p, "/a/b/f", &st), 0);
	CHECK_EQ(st.st_size, 5);
	CHECK_EQ(st.st_mode & 07777, 0640);
	/* "" is the inode itself, of any type */
	uint64_t f = st.st_ino;
	struct stat s2;
	CHECK_EQ(poise_fstatat(p, f, "", &s2, 0), 0);
	CHECK_EQ(s2.st_ino, f);
	CHECK_EQ(s2.st_size, 5);
	/* an absolute path ignores `at` */
	CHECK_EQ(poise_fstatat(p, f, "/a", &s2, 0), 0);
	CHECK_EQ(s2.st_ino, a);
	/* a file is no directory to walk from */
	CHECK_EQ(poise_fstatat(p, f, "x", &s2, 0), -ENOTDIR);
	CHECK_EQ(poise_fstatat(p, 999, "", &s2, 0), -ENOENT);
	/* symlinks: relative creation, readlinkat, NOFOLLOW */
	CHECK_EQ(poise_symlinkat(p, "b/f", a, "ln"), 0);
	char buf[64];
	CHECK_EQ(poise_readlinkat(p, a, "ln", buf, sizeof(buf)), 3);
	CHECK_EQ(poise_fstatat(p, a, "ln", &s2, 0), 0);
	CHECK_EQ(s2.st_ino, f);
	CHECK_EQ(poise_fstatat(p, a, "ln", &s2, AT_SYMLINK_NOFOLLOW), 0);
	CHECK(S_ISLNK(s2.st_mode));
	/* linkat of the inode itself ("" from f) into another directory */
	CHECK_EQ(poise_linkat(p, f, "", POISE_ROOT, "hard", 0), 0);
	CHECK_EQ(poise_stat(p, "/hard", &s2), 0);
	CHECK_EQ(s2.st_ino, f);
	CHECK_EQ(s2.st_nlink, 2);
	/* unlinkat, with and without AT_REMOVEDIR */
	CHECK_EQ(poise_unlinkat(p, a, "b", 0), -EISDIR);
	CHECK_EQ(poise_unlinkat(p, a, "b", AT_REMOVEDIR), -ENOTEMPTY);
	CHECK_EQ(poise_unlinkat(p, a, "b/f", 0), 0);
	CHECK_EQ(poise_unlinkat(p, a, "b", AT_REMOVEDIR), 0);
	CHECK_EQ(poise_stat(p, "/hard", &s2), 0);
	CHECK_EQ(s2.st_nlink, 1);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static void t_rename_flags(void)
{
	struct poise_pool *p = fresh();
	CHECK(p);
	CHECK_EQ(poise_mkdir(p, "/d1", 0755), 0);
	CHECK_EQ(poise_mkdir(p, "/d2", 0755), 0);
	CHECK_EQ(poise_mkdir(p, "/d1/sub", 0755), 0);
	poise_close(p, poise_open(p, "/d2/file", O_CREAT | O_WRONLY, 0644));
	poise_close(p, poise_open(p, "/d1/x", O_CREAT | O_WRONLY, 0644));
	uint64_t d1 = ino_of(p, "/d1"), d2 = ino_of(p, "/d2"), sub = ino_of(p, "/d1/sub"), file = ino_of(p, "/d2/file");
	/* NOREPLACE refuses an existing target, takes a free one */
	CHECK_EQ(poise_renameat2(p, d1, "x", d2, "file", RENAME_NOREPLACE), -EEXIST);
	CHECK_EQ(poise_renameat2(p, d1, "x", d2, "y", RENAME_NOREPLACE), 0);
	CHECK(ino_of(p, "/d2/y") && !ino_of(p, "/d1/x"));
	/* EXCHANGE: both must exist */
	CHECK_EQ(poise_renameat2(p, d1, "nothere", d2, "file", RENAME_EXCHANGE), -ENOENT);
	CHECK_EQ(poise_renameat2(p, d1, "sub", d2, "file", RENAME_EXCHANGE | RENAME_NOREPLACE), -EINVAL);
	/* a directory and a file across parents swap: link counts follow */
	struct stat s1, s2;
	CHECK_EQ(poise_stat(p, "/d1", &s1), 0);
	CHECK_EQ(poise_stat(p, "/d2", &s2), 0);
	nlink_t n1 = s1.st_nlink, n2 = s2.st_nlink;
	CHECK_EQ(poise_renameat2(p, d1, "sub", d2, "file", RENAME_EXCHANGE), 0);
	CHECK_EQ(ino_of(p, "/d1/sub"), file);
	CHECK_EQ(ino_of(p, "/d2/file"), sub);
	CHECK_EQ(poise_stat(p, "/d1", &s1), 0);
	CHECK_EQ(poise_stat(p, "/d2", &s2), 0);
	CHECK_EQ(s1.st_nlink, n1 - 1);
	CHECK_EQ(s2.st_nlink, n2 + 1);
	/* ".." of the moved directory is its new parent */
	CHECK_EQ(ino_of(p, "/d2/file/.."), d2);
	/* a directory cannot be swapped into itself */
	CHECK_EQ(poise_mkdir(p, "/d2/file/inner", 0755), 0);
	CHECK_EQ(poise_renameat2(p, d2, "file", sub, "inner", RENAME_EXCHANGE), -EINVAL);
	/* survives a remount, and fsck agrees */
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(ino_of(p, "/d1/sub"), file);
	CHECK_EQ(ino_of(p, "/d2/file/inner/.."), sub);
	poise_pool_close(&p);
}

static void t_owner_and_times(void)
{
	struct poise_pool *p = fresh();
	CHECK(p);
	poise_set_thread_owner(1234, 5678);
	CHECK_EQ(poise_mkdir(p, "/theirs", 0755), 0);
	poise_close(p, poise_open(p, "/theirs/f", O_CREAT | O_WRONLY, 0600));
	poise_set_thread_owner((uid_t)-1, (gid_t)-1);
	poise_close(p, poise_open(p, "/mine", O_CREAT | O_WRONLY, 0600));
	struct stat st;
	CHECK_EQ(poise_stat(p, "/theirs/f", &st), 0);
	CHECK_EQ(st.st_uid, 1234);
	CHECK_EQ(st.st_gid, 5678);
	CHECK_EQ(poise_stat(p, "/mine", &st), 0);
	CHECK_EQ(st.st_uid, getuid());
	CHECK_EQ(poise_fchownat(p, POISE_ROOT, "/mine", 42, (gid_t)-1, 0), 0);
	CHECK_EQ(poise_stat(p, "/mine", &st), 0);
	CHECK_EQ(st.st_uid, 42);
	CHECK_EQ(st.st_gid, getgid());
	struct timespec ts[2] = {{1000, 5}, {2000, 7}};
	CHECK_EQ(poise_utimensat(p, POISE_ROOT, "/mine", ts, 0), 0);
	CHECK_EQ(poise_stat(p, "/mine", &st), 0);
	CHECK_EQ(st.st_atim.tv_sec, 1000);
	CHECK_EQ(st.st_mtim.tv_sec, 2000);
	CHECK_EQ(st.st_mtim.tv_nsec, 7);
	struct timespec omit[2] = {{0, UTIME_OMIT}, {3000, 0}};
	CHECK_EQ(poise_utimensat(p, POISE_ROOT, "/mine", omit, 0), 0);
	CHECK_EQ(poise_stat(p, "/mine", &st), 0);
	CHECK_EQ(st.st_atim.tv_sec, 1000);
	CHECK_EQ(st.st_mtim.tv_sec, 3000);
	CHECK_EQ(poise_fchmodat(p, POISE_ROOT, "/mine", 0444, 0), 0);
	CHECK_EQ(poise_truncateat(p, POISE_ROOT, "/mine", 10000), 0);
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	CHECK_EQ(poise_stat(p, "/mine", &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0444);
	CHECK_EQ(st.st_size, 10000);
	CHECK_EQ(st.st_uid, 42);
	CHECK_EQ(st.st_mtim.tv_sec > 3000, 1); /* the truncate changed it */
	CHECK_EQ(poise_truncateat(p, POISE_ROOT, "/theirs", 0), -EISDIR);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static void t_seek_data_hole(void)
{
	struct poise_pool *p = fresh();
	CHECK(p);
	int fd = poise_open(p, "/sparse", O_CREAT | O_RDWR, 0644);
	CHECK_EQ(poise_pwrite(p, fd, "a", 1, 8192), 1);     /* block 2 */
	CHECK_EQ(poise_pwrite(p, fd, "b", 1, 5 * 4096), 1); /* block 5 */
	CHECK_EQ(poise_lseek(p, fd, 0, SEEK_DATA), 8192);
	CHECK_EQ(poise_lseek(p, fd, 0, SEEK_HOLE), 0);
	CHECK_EQ(poise_lseek(p, fd, 8192, SEEK_HOLE), 12288);
	CHECK_EQ(poise_lseek(p, fd, 9000, SEEK_DATA), 9000);
	CHECK_EQ(poise_lseek(p, fd, 12288, SEEK_DATA), 5 * 4096);
	CHECK_EQ(poise_lseek(p, fd, 5 * 4096, SEEK_HOLE), 5 * 4096 + 1); /* the end counts as a hole */
	CHECK_EQ(poise_lseek(p, fd, 5 * 4096 + 1, SEEK_DATA), -ENXIO);
	CHECK_EQ(poise_lseek(p, fd, 0, SEEK_END), 5 * 4096 + 1);
	CHECK_EQ(poise_lseek(p, fd, -1, SEEK_SET), -EINVAL);
	poise_close(p, fd);
	/* directory positions */
	for (int i = 0; i < 5; i++) {
		char n[16];
		snprintf(n, sizeof(n), "/e%d", i);
		poise_close(p, poise_open(p, n, O_CREAT | O_WRONLY, 0644));
	}
	struct poise_dir *d;
	struct poise_entry e, again;
	CHECK_EQ(poise_opendirat(p, POISE_ROOT, "", &d), 0);
	CHECK_EQ(poise_readdir(d, &e), 1);
	CHECK_EQ(poise_readdir(d, &e), 1);
	long pos = poise_telldir(d);
	CHECK_EQ(pos, 2);
	CHECK_EQ(poise_readdir(d, &e), 1);
	poise_seekdir(d, pos);
	CHECK_EQ(poise_readdir(d, &again), 1);
	CHECK(!strcmp(again.name, e.name));
	poise_seekdir(d, 1000);
	CHECK_EQ(poise_readdir(d, &e), 0);
	poise_closedir(&d);
	poise_pool_close(&p);
}

struct poise_fs *poise_pool_fs(struct poise_pool *p);

static void t_xattrs(void)
{
	struct poise_pool *p = fresh();
	CHECK(p);
	poise_close(p, poise_open(p, "/f", O_CREAT | O_WRONLY, 0644));
	uint64_t f = ino_of(p, "/f");
	struct statvfs v0, v1;
	CHECK_EQ(poise_statfs(p, &v0), 0);
	CHECK_EQ(poise_setxattrat(p, f, "", "user.a", "alpha", 5, 0), 0);
	CHECK_EQ(poise_setxattrat(p, POISE_ROOT, "/f", "user.b", "", 0, 0), 0); /* empty values count */
	CHECK_EQ(poise_setxattrat(p, f, "", "user.a", "x", 1, XATTR_CREATE), -EEXIST);
	CHECK_EQ(poise_setxattrat(p, f, "", "user.c", "x", 1, XATTR_REPLACE), -ENODATA);
	CHECK_EQ(poise_setxattrat(p, f, "", "system.posix_acl_access", "x", 1, 0), -EINVAL); /* not an ACL */
	CHECK_EQ(poise_setxattrat(p, f, "", "system.other", "x", 1, 0), -EOPNOTSUPP);
	char buf[64];
	CHECK_EQ(poise_getxattrat(p, f, "", "user.a", NULL, 0), 5);
	CHECK_EQ(poise_getxattrat(p, f, "", "user.a", buf, 2), -ERANGE);
	CHECK_EQ(poise_getxattrat(p, f, "", "user.a", buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "alpha", 5));
	CHECK_EQ(poise_getxattrat(p, f, "", "user.nope", buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(poise_listxattrat(p, f, "", NULL, 0), 14);
	CHECK_EQ(poise_listxattrat(p, f, "", buf, sizeof(buf)), 14);
	CHECK(!memcmp(buf, "user.a\0user.b\0", 14));
	CHECK_EQ(poise_setxattrat(p, f, "", "user.a", "beta", 4, XATTR_REPLACE), 0);
	CHECK_EQ(poise_statfs(p, &v1), 0);
	CHECK_EQ(v0.f_bfree - v1.f_bfree, 2); /* one block and its replica */
	/* a block fills up: -ENOSPC, and what was there stays */
	static char big[3000];
	memset(big, 'v', sizeof(big));
	CHECK_EQ(poise_setxattrat(p, f, "", "user.big", big, sizeof(big), 0), 0);
	CHECK_EQ(poise_setxattrat(p, f, "", "user.big2", big, sizeof(big), 0), -ENOSPC);
	CHECK_EQ(poise_getxattrat(p, f, "", "user.big", NULL, 0), 3000);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
	/* after a remount; and with the primary copy poisoned */
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	struct stat st;
	CHECK_EQ(poise_stat(p, "/f", &st), 0);
	struct inode *ip;
	CHECK_EQ(iget(poise_pool_fs(p), st.st_ino, &ip), 0);
	CHECK_EQ(poise_badblocks_inject(p, ip->d.i_xattr_blk * 8 + 1, 1), 0);
	CHECK_EQ(poise_getxattrat(p, f, "", "user.a", buf, sizeof(buf)), 4);
	CHECK(!memcmp(buf, "beta", 4));
	struct poise_info in;
	poise_info(p, &in);
	CHECK_EQ(in.bad_sectors, 0); /* the damaged copy was rewritten */
	CHECK_EQ(poise_removexattrat(p, f, "", "user.big"), 0);
	CHECK_EQ(poise_removexattrat(p, f, "", "user.big"), -ENODATA);
	CHECK_EQ(poise_removexattrat(p, f, "", "user.a"), 0);
	CHECK_EQ(poise_removexattrat(p, f, "", "user.b"), 0);
	CHECK_EQ(poise_listxattrat(p, f, "", NULL, 0), 0);
	CHECK_EQ(poise_statfs(p, &v1), 0);
	CHECK_EQ(v1.f_bfree, v0.f_bfree); /* the last removal gives the pair back */
	CHECK_EQ(poise_setxattrat(p, f, "", "user.again", "1", 1, 0), 0);
	CHECK_EQ(poise_unlink(p, "/f"), 0); /* unlink frees it too */
	CHECK_EQ(poise_statfs(p, &v1), 0);
	CHECK_EQ(v1.f_bfree, v0.f_bfree);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static void t_nodes(void)
{
	struct poise_pool *p = fresh();
	CHECK(p);
	CHECK_EQ(poise_mknod(p, "/fifo", S_IFIFO | 0640, 0), 0);
	CHECK_EQ(poise_mknod(p, "/sock", S_IFSOCK | 0755, 0), 0);
	CHECK_EQ(poise_mknod(p, "/null", S_IFCHR | 0666, makedev(1, 3)), 0);
	CHECK_EQ(poise_mknodat(p, POISE_ROOT, "blk", S_IFBLK | 0600, makedev(7, 1)), 0);
	CHECK_EQ(poise_mknod(p, "/reg", S_IFREG | 0600, 0), 0);
	CHECK_EQ(poise_mknod(p, "/plain", 0644, 0), 0); /* no type: a file, as mknod(2) */
	CHECK_EQ(poise_mknod(p, "/dir", S_IFDIR | 0755, 0), -EPERM);
	CHECK_EQ(poise_mknod(p, "/fifo", S_IFIFO | 0640, 0), -EEXIST);
	struct stat st;
	CHECK_EQ(poise_lstat(p, "/fifo", &st), 0);
	CHECK(S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0640 && st.st_size == 0 && st.st_rdev == 0);
	CHECK_EQ(poise_lstat(p, "/sock", &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(poise_lstat(p, "/null", &st), 0);
	CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
	CHECK_EQ(poise_lstat(p, "/blk", &st), 0);
	CHECK(S_ISBLK(st.st_mode) && major(st.st_rdev) == 7 && minor(st.st_rdev) == 1);
	CHECK_EQ(poise_lstat(p, "/plain", &st), 0);
	CHECK(S_ISREG(st.st_mode));
	/* the library cannot open a node; the mount opens them through the kernel */
	CHECK_EQ(poise_open(p, "/fifo", O_RDONLY, 0), -ENXIO);
	CHECK_EQ(poise_open(p, "/null", O_RDWR, 0), -ENXIO);
	CHECK_EQ(poise_truncateat(p, POISE_ROOT, "/fifo", 0), -EINVAL);
	/* directory entries carry the type */
	struct poise_dir *d;
	struct poise_entry e;
	int types = 0;
	CHECK_EQ(poise_opendir(p, "/", &d), 0);
	while (poise_readdir(d, &e) == 1)
		types |= e.type == DT_FIFO ? 1 : e.type == DT_SOCK ? 2 : e.type == DT_CHR ? 4 : e.type == DT_BLK ? 8 : 0;
	poise_closedir(&d);
	CHECK_EQ(types, 15);
	CHECK_EQ(poise_rename(p, "/fifo", "/fifo2"), 0);
	CHECK_EQ(poise_link(p, "/null", "/null2"), 0);
	CHECK_EQ(poise_unlink(p, "/null"), 0);
	struct poise_info in;
	CHECK_EQ(poise_info(p, &in), 0);
	CHECK_EQ(in.format_minor, 2); /* mkfs writes 1.2 */
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
	CHECK_EQ(poise_pool_open(img, 0, &p), 0); /* all of it after a remount */
	CHECK_EQ(poise_lstat(p, "/null2", &st), 0);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) && st.st_nlink == 1);
	CHECK_EQ(poise_lstat(p, "/fifo2", &st), 0);
	CHECK(S_ISFIFO(st.st_mode));
	poise_pool_close(&p);
}

/* An ACL value: version 2, then (tag, perm, id) triples. */
static size_t acl(uint8_t *b, int n, const unsigned *e)
{
	b[0] = 2, b[1] = b[2] = b[3] = 0;
	for (int i = 0; i < n; i++) {
		uint8_t *x = b + 4 + 8 * i;
		unsigned tag = e[3 * i], perm = e[3 * i + 1], id = e[3 * i + 2];
		x[0] = (uint8_t)tag, x[1] = (uint8_t)(tag >> 8), x[2] = (uint8_t)perm, x[3] = 0;
		memcpy(x + 4, &id, 4);
	}
	return 4 + 8 * (size_t)n;
}

static unsigned perm_of(const uint8_t *b, size_t n, unsigned tag)
{
	for (size_t i = 0; 4 + 8 * i < n; i++)
		if (b[4 + 8 * i] == tag)
			return b[6 + 8 * i];
	return 99;
}

static void t_acls(void)
{
	struct poise_pool *p = fresh();
	CHECK(p);
	CHECK_EQ(poise_mkdir(p, "/d", 0755), 0);
	uint64_t d = ino_of(p, "/d");
	uint8_t v[128], g[128];
	const unsigned full[] = {1, 7, 0, 2, 6, 1000, 4, 5, 0, 16, 7, 0, 32, 4, 0};
	size_t n = acl(v, 5, full);
	/* checked as the kernel checks: order, one of each base entry, a mask */
	const unsigned nomask[] = {1, 7, 0, 2, 6, 1000, 4, 5, 0, 32, 4, 0};
	size_t bad = acl(g, 4, nomask);
	CHECK_EQ(poise_setxattrat(p, d, "", "system.posix_acl_access", g, bad, 0), -EINVAL);
	const unsigned unordered[] = {4, 5, 0, 1, 7, 0, 32, 4, 0};
	bad = acl(g, 3, unordered);
	CHECK_EQ(poise_setxattrat(p, d, "", "system.posix_acl_access", g, bad, 0), -EINVAL);
	/* an access ACL sets the mode's bits: owner, mask, other */
	CHECK_EQ(poise_setxattrat(p, d, "", "system.posix_acl_access", v, n, 0), 0);
	struct stat st;
	CHECK_EQ(poise_lstat(p, "/d", &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0774);
	CHECK_EQ(poise_getxattrat(p, d, "", "system.posix_acl_access", g, sizeof(g)), (ssize_t)n);
	CHECK(!memcmp(g, v, n));
	/* a chmod rewrites them in the ACL */
	CHECK_EQ(poise_chmod(p, "/d", 0750), 0);
	ssize_t k = poise_getxattrat(p, d, "", "system.posix_acl_access", g, sizeof(g));
	CHECK_EQ(k, (ssize_t)n);
	CHECK(perm_of(g, (size_t)k, 1) == 7 && perm_of(g, (size_t)k, 16) == 5 && perm_of(g, (size_t)k, 32) == 0);
	CHECK(perm_of(g, (size_t)k, 2) == 6); /* the named entry stays */
	/* the base entries alone are the mode: no attribute kept */
	const unsigned base[] = {1, 6, 0, 4, 4, 0, 32, 0, 0};
	n = acl(v, 3, base);
	CHECK_EQ(poise_setxattrat(p, d, "", "system.posix_acl_access", v, n, 0), 0);
	CHECK_EQ(poise_lstat(p, "/d", &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0640);
	CHECK_EQ(poise_getxattrat(p, d, "", "system.posix_acl_access", g, sizeof(g)), -ENODATA);
	CHECK_EQ(poise_chmod(p, "/d", 0755), 0);
	/* a default ACL: on directories only, inherited by what is made in it */
	CHECK_EQ(poise_close(p, poise_open(p, "/f", O_CREAT | O_WRONLY, 0644)), 0);
	CHECK_EQ(poise_setxattrat(p, ino_of(p, "/f"), "", "system.posix_acl_default", v, n, 0), -EACCES);
	const unsigned dflt[] = {1, 7, 0, 2, 5, 1000, 4, 5, 0, 16, 5, 0, 32, 5, 0};
	n = acl(v, 5, dflt);
	CHECK_EQ(poise_setxattrat(p, d, "", "system.posix_acl_default", v, n, 0), 0);
	poise_set_thread_umask(077); /* not used where a default ACL is */
	CHECK_EQ(poise_close(p, poise_open(p, "/d/new", O_CREAT | O_WRONLY, 0640)), 0);
	CHECK_EQ(poise_mkdir(p, "/d/sub", 0777), 0);
	CHECK_EQ(poise_mknod(p, "/d/fifo", S_IFIFO | 0666, 0), 0);
	CHECK_EQ(poise_close(p, poise_open(p, "/masked", O_CREAT | O_WRONLY, 0666)), 0);
	poise_set_thread_umask(-1);
	CHECK_EQ(poise_lstat(p, "/masked", &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600); /* no default ACL: the umask */
	CHECK_EQ(poise_lstat(p, "/d/new", &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0640); /* 0640 masked by the ACL: owner rw, mask r, other none */
	k = poise_getxattrat(p, ino_of(p, "/d/new"), "", "system.posix_acl_access", g, sizeof(g));
	CHECK_EQ(k, (ssize_t)n);
	CHECK(perm_of(g, (size_t)k, 1) == 6 && perm_of(g, (size_t)k, 2) == 5 && perm_of(g, (size_t)k, 16) == 4);
	CHECK_EQ(poise_getxattrat(p, ino_of(p, "/d/new"), "", "system.posix_acl_default", g, sizeof(g)), -ENODATA);
	CHECK_EQ(poise_lstat(p, "/d/sub", &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0755);
	CHECK_EQ(poise_getxattrat(p, ino_of(p, "/d/sub"), "", "system.posix_acl_default", g, sizeof(g)),
		 (ssize_t)n); /* a directory keeps the default too */
	CHECK(!memcmp(g, v, n));
	CHECK_EQ(poise_getxattrat(p, ino_of(p, "/d/fifo"), "", "system.posix_acl_access", g, sizeof(g)), (ssize_t)n);
	poise_pool_close(&p);
	CHECK(h_fsck_clean(img));
}

static void t_atime_generation(void)
{
	struct poise_pool *p = fresh();
	CHECK(p);
	CHECK_EQ(poise_close(p, poise_open(p, "/f", O_CREAT | O_WRONLY, 0644)), 0);
	uint64_t f = ino_of(p, "/f"), g1, g2;
	struct timespec old[2] = {{1000, 0}, {2000, 0}}, newer[2] = {{3000, 0}, {2000, 0}};
	CHECK_EQ(poise_utimensat(p, f, "", old, 0), 0); /* atime before mtime */
	CHECK_EQ(poise_touch_atime(p, f, POISE_ATIME_NEVER), 0);
	CHECK_EQ(poise_touch_atime(p, f, POISE_ATIME_RELATIME), 1);
	struct stat st;
	CHECK_EQ(poise_lstat(p, "/f", &st), 0);
	CHECK(st.st_atim.tv_sec > 2000 && st.st_mtim.tv_sec == 2000);
	CHECK_EQ(poise_touch_atime(p, f, POISE_ATIME_RELATIME), 0); /* after the change and recent: kept */
	CHECK_EQ(poise_touch_atime(p, f, POISE_ATIME_STRICT), 1);
	CHECK_EQ(poise_utimensat(p, f, "", newer, 0), 0); /* after mtime, but old: relatime updates it */
	CHECK_EQ(poise_touch_atime(p, f, POISE_ATIME_RELATIME), 1);
	CHECK_EQ(poise_touch_atime(p, f, 7), -EINVAL);
	CHECK_EQ(poise_generation(p, f, &g1), 0);
	CHECK_EQ(poise_unlink(p, "/f"), 0);
	CHECK_EQ(poise_close(p, poise_open(p, "/g", O_CREAT | O_WRONLY, 0644)), 0);
	CHECK_EQ(poise_generation(p, f, &g2), -ENOENT); /* a removed inode has none */
	f = ino_of(p, "/g");
	CHECK_EQ(poise_generation(p, f, &g2), 0);
	CHECK(g2 != g1);
	CHECK_EQ(poise_lstat(p, "/g", &st), 0);
	int64_t a = st.st_atim.tv_sec;
	poise_pool_close(&p);
	CHECK_EQ(poise_pool_open(img, 0, &p), 0);
	uint64_t g3;
	CHECK_EQ(poise_generation(p, f, &g3), 0);
	CHECK_EQ(g3, g2); /* stable across a remount */
	CHECK_EQ(poise_lstat(p, "/g", &st), 0);
	CHECK_EQ(st.st_atim.tv_sec, a);
	poise_pool_close(&p);
}

int main(void)
{
	RUN(t_relative);
	RUN(t_rename_flags);
	RUN(t_owner_and_times);
	RUN(t_seek_data_hole);
	RUN(t_xattrs);
	RUN(t_nodes);
	RUN(t_acls);
	RUN(t_atime_generation);
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
