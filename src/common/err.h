/*
 * err.h - thread-local detailed error messages.
 *
 * Every layer returns -errno; the detail (which file, which line, which
 * sector) goes into the calling thread's message buffer, read back with
 * poise_errmsg().  No global errno, no locks.
 */
#ifndef POISE_ERR_H
#define POISE_ERR_H

#include "poise.h"       /* poise_errmsg() */
#include "poise-admin.h" /* poise_err(), poise_errno(): public for tools */
void poise_errclear(void);

#endif
