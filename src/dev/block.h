/*
 * block.h - the block path (see block.c).
 */
#ifndef POISE_BLOCK_H
#define POISE_BLOCK_H

#include "dev/dev.h"

struct poise_block {
	struct poise_dev *dev;
	int fd;        /* pread/pwrite here */
	int odirect;   /* fd is O_DIRECT */
	char name[64]; /* /dev/loopN or the pool path */
	uint64_t writes; /* calls of poise_block_write (atomic): tests prove the path */
};

int poise_block_open(struct poise_dev *d, struct poise_block *b);
void poise_block_close(struct poise_block *b);
/* Same contracts as poise_dev_read/poise_dev_write, through the kernel. */
ssize_t poise_block_read(struct poise_block *b, uint64_t off, void *buf, size_t len);
ssize_t poise_block_write(struct poise_block *b, uint64_t off, const void *buf, size_t len);

#endif
