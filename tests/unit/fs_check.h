/*
 * fs_check.h - for file-system tests: run fsck on an image, print every
 * problem, and say whether it is clean.
 */
#ifndef POISE_FS_CHECK_H
#define POISE_FS_CHECK_H

#include "poise-admin.h"

#include <stdio.h>

static inline int h_fsck_clean(const char *img)
{
	struct poise_fsck_report r;
	if (poise_fsck(img, 0, &r) < 0)
		return 0;
	for (size_t i = 0; i < r.n; i++)
		fprintf(stderr, "    fsck: %s: %s\n", r.p[i].kind, r.p[i].detail);
	int ok = r.mounted && r.n == 0;
	poise_fsck_free(&r);
	return ok;
}

/* The same without printing (for harnesses that expect failures). */
static inline int h_fsck_quiet(const char *img)
{
	struct poise_fsck_report r;
	if (poise_fsck(img, 0, &r) < 0)
		return 0;
	int ok = r.mounted && r.n == 0;
	poise_fsck_free(&r);
	return ok;
}

#endif
