/*
 * harness.h - the unit-test harness: named cases, CHECK macros that fail
 * the current case (and return from it), and a closing line
 * "N passed, N failed".  Run one case with: TEST_ONLY=name ./test_x
 */
#ifndef POISE_HARNESS_H
#define POISE_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int h_passed, h_failed, h_cur_failed;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
				#cond);                                                \
			h_cur_failed = 1;                                              \
			return;                                                        \
		}                                                                      \
	} while (0)

#define CHECK_EQ(a, b)                                                                 \
	do {                                                                           \
		long long h_a = (long long)(a), h_b = (long long)(b);                  \
		if (h_a != h_b) {                                                      \
			fprintf(stderr, "    %s:%d: %s == %lld, expected %s == %lld\n",    \
				__FILE__, __LINE__, #a, h_a, #b, h_b);                 \
			h_cur_failed = 1;                                              \
			return;                                                        \
		}                                                                      \
	} while (0)

#define CHECK_STR_HAS(s, sub)                                                          \
	do {                                                                           \
		if (!strstr((s), (sub))) {                                             \
			fprintf(stderr, "    %s:%d: \"%s\" does not contain \"%s\"\n",     \
				__FILE__, __LINE__, (s), (sub));                       \
			h_cur_failed = 1;                                              \
			return;                                                        \
		}                                                                      \
	} while (0)

#define RUN(fn)                                                                        \
	do {                                                                           \
		const char *h_only = getenv("TEST_ONLY");                              \
		if (h_only && strcmp(h_only, #fn))                                     \
			break;                                                         \
		h_cur_failed = 0;                                                      \
		fn();                                                                  \
		if (h_cur_failed) {                                                    \
			h_failed++;                                                    \
			printf("FAIL %s\n", #fn);                                     \
		} else {                                                               \
			h_passed++;                                                    \
			printf("ok   %s\n", #fn);                                     \
		}                                                                      \
		fflush(stdout);                                                        \
	} while (0)

#define DONE()                                                                         \
	do {                                                                           \
		printf("%d passed, %d failed\n", h_passed, h_failed);                  \
		return h_failed ? 1 : 0;                                               \
	} while (0)

/* A scratch directory under /dev/shm (or /tmp), removed by the caller
 * (h_tmpdir_remove). */
static inline const char *h_tmpdir(void)
{
	static char dir[256];
	if (!dir[0]) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(dir, sizeof(dir), "%s/poise-test-XXXXXX", base);
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(2);
		}
	}
	return dir;
}

/* Remove h_tmpdir() and all it holds; 0 on success. */
static inline int h_tmpdir_remove(void)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h_tmpdir());
	return system(cmd);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define H_SANITIZED 1
#else
#define H_SANITIZED 0
#endif
#if defined(__SANITIZE_THREAD__)
#define H_TSAN 1 /* races are all it finds: single-threaded work can be thinned */
#else
#define H_TSAN 0
#endif

#endif
