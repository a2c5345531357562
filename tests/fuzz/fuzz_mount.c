/*
 * fuzz_mount.c - a libFuzzer harness: the input is a pool image (up to
 * 256 KiB, zero-padded); it is mounted (log replay, the inode scan,
 * replica repairs), its whole tree walked (names, attributes, file bytes,
 * symlink targets, extended attributes), and fsck'd.  A crash, a hang or a
 * sanitizer report is a bug; a refusal with an error is the right answer
 * for a broken image.  Seeds: tests/fuzz/corpus/ (real images made by
 * tests/fuzz/make-corpus.sh).  Built by `make fuzz` (clang).
 */
#include "poise.h"
#include "poise-admin.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMG (256 * 1024)

static void walk(struct poise_pool *p, const char *dir, int depth)
{
	struct poise_dir *d;
	if (depth > 8 || poise_opendir(p, dir, &d) < 0)
		return;
	struct poise_entry e;
	int n = 0;
	while (n++ < 200 && poise_readdir(d, &e) > 0) {
		char path[1024];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", e.name);
		if (poise_lstat(p, path, &st) < 0)
			continue;
		char buf[4096];
		(void)poise_listxattrat(p, POISE_ROOT, path, buf, sizeof(buf));
		if (S_ISDIR(st.st_mode)) {
			walk(p, path, depth + 1);
		} else if (S_ISLNK(st.st_mode)) {
			(void)poise_readlink(p, path, buf, sizeof(buf));
		} else {
			int fd = poise_open(p, path, O_RDONLY, 0);
			for (off_t o = 0; fd >= 0 && o < 65536; o += sizeof(buf))
				if (poise_pread(p, fd, buf, sizeof(buf), o) <= 0)
					break;
			if (fd >= 0)
				poise_close(p, fd);
		}
	}
	poise_closedir(&d);
}

static char path[64], side[80];

static void remove_image(void)
{
	unlink(path);
	unlink(side);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One image file for the whole run, rewritten in place (no truncate:
	 * its pages stay allocated), pre-faulted at every mount: page faults,
	 * not the file system, were most of an execution's time. */
	static const uint8_t zero[IMG];
	static int fd = -1;
	if (fd < 0) {
		snprintf(path, sizeof(path), "/dev/shm/poise-fuzz-%d.img", (int)getpid());
		snprintf(side, sizeof(side), "%s.badblocks", path);
		fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
		setenv("POISE_PREFAULT", "1", 1);
		atexit(remove_image);
	}
	size_t n = size < IMG ? size : IMG;
	if (fd < 0 || pwrite(fd, data, n, 0) != (ssize_t)n || pwrite(fd, zero, IMG - n, (off_t)n) != (ssize_t)(IMG - n))
		abort();
	unlink(side);
	struct poise_pool *p;
	if (poise_pool_open(path, 0, &p) == 0) {
		walk(p, "/", 0);
		struct statvfs sv;
		(void)poise_statfs(p, &sv);
		poise_pool_close(&p);
	}
	struct poise_fsck_report r;
	if (poise_fsck(path, 0, &r) == 0)
		poise_fsck_free(&r);
	return 0;
}
