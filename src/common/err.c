/*
 * err.c - the thread's last detailed error message (see err.h).
 * Invariant: the buffer always holds a NUL-terminated string.
 */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char msg[512];

static void vset(const char *fmt, va_list ap)
{
	vsnprintf(msg, sizeof(msg), fmt, ap);
}

int poise_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	return -err;
}

int poise_errno(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(fmt, ap);
	va_end(ap);
	size_t n = strlen(msg);
	snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(err));
	return -err;
}

const char *poise_errmsg(void)
{
	return msg;
}

void poise_errclear(void)
{
	msg[0] = 0;
}
