/*
 * test_fs_at.c - the *at calls (paths relative to an inode, "" for the
 * inode itself), renameat2 with RENAME_NOREPLACE and RENAME_EXCHANGE,
 * ownership and times, SEEK_DATA/SEEK_HOLE, and directory positions: what
 * the FUSE mount and the shim are built on.
 */
#include "harness.h"
#include "poise.h"
#include "fs_check.h"
#include "fs/fs.h"

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
	CHECK_EQ(poise_setxattrat(p, f, "", "system.posix_acl_access", "x", 1, 0), -EOPNOTSUPP);
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

int main(void)
{
	RUN(t_relative);
	RUN(t_rename_flags);
	RUN(t_owner_and_times);
	RUN(t_seek_data_hole);
	RUN(t_xattrs);
	if (h_tmpdir_remove() != 0)
		return 2;
	DONE();
}
