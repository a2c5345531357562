/*
 * scrub.h - find every bad range of a pool and say whose bytes it holds.
 */
#ifndef POISE_SCRUB_H
#define POISE_SCRUB_H

#include <stddef.h>
#include <stdint.h>

struct poise_scrub_range {
	uint64_t sector, count;   /* 512-byte sectors, inside one block */
	char owner[16];           /* "file", "metadata", "free", "quarantined" */
	char what[64];            /* file: "file"/"symlink"; metadata: the structure */
	char path[1024];          /* the owner's path ("" when none) */
	uint64_t ino;
	uint64_t file_offset, length; /* file: the bytes of the file it covers */
	int repaired;
};

struct poise_scrub_report {
	struct poise_scrub_range *r;
	size_t n, cap;
	uint64_t blocks_scanned, sectors_bad;
	uint64_t found_new; /* sectors the scan found that the table did not list */
};

/* Scan the pool at path (mounting it).  0, or -errno when it cannot be
 * opened. */
int poise_scrub(const char *path, struct poise_scrub_report *rep);
void poise_scrub_free(struct poise_scrub_report *rep);

struct poise_pool;
/* The same on a pool this process has open and in service (the FUSE
 * daemon's): reports, repairs nothing a transaction could race. */
int poise_scrub_live(struct poise_pool *pool, struct poise_scrub_report *rep);

struct poise_pool;
/* The first sector of one copy of a metadata structure of an open pool, for
 * injection: "superblock" (the primary), "inodes" (the root inode's primary
 * sector), "dir" (the root directory's first block), "extents" (the first
 * extent block of any file), "log" (lane 0's header).  -ENOENT when the
 * pool has no such structure yet, -EINVAL for another kind. */
int poise_metadata_sector(struct poise_pool *pool, const char *kind, uint64_t *sector);

#endif
