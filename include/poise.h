/*
 * poise.h - the public C API of poise, a user-space file system for
 * persistent memory.
 *
 * Conventions: every call returns >= 0 on success and -errno on failure
 * (thread-safe: no global errno); media errors are -EIO, detected
 * corruption -EUCLEAN.  poise_errmsg() returns the calling thread's last
 * detailed message ("pool.img:3: expected 'first_sector count'").
 *
 * This header grows with the file-system layer; today it holds the
 * library-wide pieces.
 */
#ifndef POISE_H
#define POISE_H

#ifdef __cplusplus
extern "C" {
#endif

#define POISE_VERSION_MAJOR 0
#define POISE_VERSION_MINOR 1

/* The calling thread's last detailed error message ("" when none). */
const char *poise_errmsg(void);

#ifdef __cplusplus
}
#endif

#endif
