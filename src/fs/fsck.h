/*
 * fsck.h - the checker's report.
 */
#ifndef POISE_FSCK_H
#define POISE_FSCK_H

#include <stddef.h>
#include <stdint.h>

struct poise_fsck_problem {
	char kind[24];   /* "superblock", "log", "inode", "blocks", "dirent", "nlink", "orphan", "space" */
	uint64_t ino;    /* 0 when not about one inode */
	char detail[200];
	int repaired;
};

struct poise_fsck_report {
	struct poise_fsck_problem *p;
	size_t n, cap;
	uint64_t inodes_used, blocks_used, blocks_free, dirs, files, symlinks;
	int log_replayed;
	int mounted; /* 0: the pool did not mount (see p[0]) */
};

#define POISE_FSCK_REPAIR 1u
/* Check the pool at path.  Returns 0 (report filled, r->n problems) or
 * -errno when the pool cannot be opened at all. */
int poise_fsck(const char *path, unsigned flags, struct poise_fsck_report *r);
void poise_fsck_free(struct poise_fsck_report *r);

#endif
