/*
 * err.c - the thread's last detailed error message (see err.h).
 * Invariant: the buffer always holds a NUL-terminated string; a message may
 * quote the previous one.
 */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char msg[512];

/* Format first, then copy: callers may pass poise_errmsg() itself as an
 * argument ("...: %s", poise_errmsg()) to wrap the detail they got. */
static void vset(const char *fmt, va_list ap)
{
	char tmp[sizeof(msg)];
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	memcpy(msg, tmp, sizeof(msg));
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
