/*
 * pool_io.h - helpers the backends share: full pread/pwrite loops and the
 * zero-fill used to clear sectors.  No state.
 */
#ifndef POISE_POOL_IO_H
#define POISE_POOL_IO_H

#include "dev/dev.h"

/* Loop until len bytes moved, EOF, or an error (-errno with a message). */
ssize_t poise_pread_full(struct poise_dev *d, uint64_t off, void *buf, size_t len);
ssize_t poise_pwrite_full(struct poise_dev *d, uint64_t off, const void *buf, size_t len);
/* pwrite zeros over [off, off+len). */
int poise_pwrite_zero(struct poise_dev *d, uint64_t off, uint64_t len);

#endif
