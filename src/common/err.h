/*
 * err.h - thread-local detailed error messages.
 *
 * Every layer returns -errno; the detail (which file, which line, which
 * sector) goes into the calling thread's message buffer, read back with
 * poise_errmsg().  No global errno, no locks.
 */
#ifndef POISE_ERR_H
#define POISE_ERR_H

#include "poise.h" /* poise_errmsg() */

/* Record "fmt..." as the thread's last message and return -err (err > 0). */
int poise_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(err)". */
int poise_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void poise_errclear(void);

#endif
