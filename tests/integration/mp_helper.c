/*
 * mp_helper.c - a client for test_multiproc.sh, run under the shim.
 *
 *   mp_helper cmd        commands on stdin, one answer line each on stdout:
 *                          open PATH          -> ok
 *                          r OFF LEN          -> ok N HASH | err ERRNO
 *                          w OFF LEN BYTE     -> ok N | err ERRNO
 *                          size               -> ok SIZE
 *                          wr LEN BYTE        -> ok N | err ERRNO (write(), at the offset)
 *                          fsync              -> ok | err ERRNO
 *                          append             -> ok | err ERRNO (fcntl F_SETFL O_APPEND)
 *                          fa OFF LEN         -> ok | err ERRNO (fallocate KEEP_SIZE)
 *                          q
 *   mp_helper loop FILE LOG APPEND [pos]
 *                        until killed: rounds of 4 KiB overwrites of every
 *                        block of FILE (block i, round r: every 8-byte word
 *                        is r << 32 | i), each acknowledged by a line
 *                        "i r" in LOG once pwrite returned; and 4 KiB
 *                        appends to APPEND (record k: every word k),
 *                        acknowledged as "a k" (O_APPEND writes, or with
 *                        "pos" pwrites at k * 4 KiB: the shim's grants).
 *   mp_helper check FILE LOG APPEND
 *                        after a kill: every word of block i holds a round
 *                        at least its last acknowledged one (and no more
 *                        than one past it), APPEND holds every acknowledged
 *                        record whole; prints "ok" or what is wrong.
 *   mp_helper init FILE N        N blocks of round 0 for loop
 *   mp_helper forkdrop FILE POOL read FILE (admitted), fork; the child drops
 *                        to uid 65534 and must find no mapping of POOL
 *                        in its address space and read FILE through the
 *                        kernel still; "ok" 
 *   mp_helper fill FILE SEED N   N 4 KiB blocks of a pattern of SEED (pwrite)
 *   mp_helper verify FILE SEED N the same pattern read back (pread), "ok"
 *   mp_helper records FILE N R   N records of R bytes written in turn with
 *                        write() (record i: every 32-bit word 0x5a000000|i);
 *                        "ok"
 *   mp_helper vrecords FILE N R  the size is N * R and every record whole,
 *                        "ok" or the first bad ones
 *   mp_helper watch FILE R SECS  for SECS seconds, read FILE again and again
 *                        while records are appended to it: every read
 *                        ends on a record's end and every record read is
 *                        whole; "ok ROUNDS MAXRECORDS" or what is wrong
 *   mp_helper revoke FILE SECS   for SECS seconds, fallocate(0, 4096) on
 *                        FILE again and again (each takes an appender's
 *                        grant back); "ok COUNT"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define B 4096

static uint64_t hash(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int cmd(void)
{
	char line[4200], path[4096];
	int fd = -1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long long off, len;
		unsigned byte;
		if (sscanf(line, "open %4095s", path) == 1) {
			if (fd >= 0)
				close(fd);
			fd = open(path, O_RDWR);
			printf(fd >= 0 ? "ok\n" : "err %d\n", errno);
		} else if (sscanf(line, "r %llu %llu", &off, &len) == 2) {
			unsigned char *b = malloc(len ? len : 1);
			ssize_t n = pread(fd, b, len, (off_t)off);
			if (n < 0)
				printf("err %d\n", errno);
			else
				printf("ok %zd %016llx\n", n, (unsigned long long)hash(b, (size_t)n));
			free(b);
		} else if (sscanf(line, "w %llu %llu %u", &off, &len, &byte) == 3) {
			unsigned char *b = malloc(len ? len : 1);
			memset(b, (int)byte, len);
			ssize_t n = pwrite(fd, b, len, (off_t)off);
			printf(n < 0 ? "err %d\n" : "ok %d\n", n < 0 ? errno : (int)n);
			free(b);
		} else if (!strncmp(line, "size", 4)) {
			struct stat st;
			if (fstat(fd, &st) < 0)
				printf("err %d\n", errno);
			else
				printf("ok %lld\n", (long long)st.st_size);
		} else if (sscanf(line, "wr %llu %u", &len, &byte) == 2) {
			unsigned char *b = malloc(len ? len : 1);
			memset(b, (int)byte, len);
			ssize_t n = write(fd, b, len);
			printf(n < 0 ? "err %d\n" : "ok %d\n", n < 0 ? errno : (int)n);
			free(b);
		} else if (!strncmp(line, "append", 6)) {
			int fl = fcntl(fd, F_GETFL);
			printf(fl < 0 || fcntl(fd, F_SETFL, fl | O_APPEND) < 0 ? "err %d\n" : "ok\n", errno);
		} else if (sscanf(line, "fa %llu %llu", &off, &len) == 2) {
			printf(fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 ? "err %d\n" : "ok\n", errno);
		} else if (!strncmp(line, "fsync", 5)) {
			printf(fsync(fd) < 0 ? "err %d\n" : "ok\n", errno);
		} else if (line[0] == 'q') {
			break;
		} else {
			printf("err bad command\n");
		}
	}
	return 0;
}

static int records(const char *file, int n, size_t r, int verify)
{
	int fd = verify ? open(file, O_RDONLY) : open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint32_t *b = malloc(r);
	struct stat st;
	if (fd < 0 || !b || (verify && fstat(fd, &st) < 0)) {
		printf("cannot open\n");
		return 1;
	}
	if (verify && st.st_size != (off_t)n * (off_t)r)
		printf("size %lld, not %lld\n", (long long)st.st_size, (long long)n * (long long)r);
	int bad = verify && st.st_size != (off_t)n * (off_t)r;
	for (int i = 0; i < n; i++) {
		if (!verify) {
			for (size_t k = 0; k < r / 4; k++)
				b[k] = 0x5a000000u | (uint32_t)i;
			if (write(fd, b, r) != (ssize_t)r) {
				printf("write %d: %s\n", i, strerror(errno));
				return 1;
			}
			continue;
		}
		ssize_t got = pread(fd, b, r, (off_t)i * (off_t)r);
		size_t good = 0;
		for (size_t k = 0; got == (ssize_t)r && k < r / 4; k++)
			good += b[k] == (0x5a000000u | (uint32_t)i);
		if (good != r / 4 && bad++ < 5)
			printf("record %d: %zu of %zu words right\n", i, good, r / 4);
	}
	if (!bad)
		printf("ok\n");
	close(fd);
	free(b);
	return bad != 0;
}

static int watch(const char *file, size_t r, int secs)
{
	int fd = open(file, O_RDONLY);
	uint32_t *b = malloc(r);
	if (fd < 0 || !b) {
		printf("cannot open\n");
		return 1;
	}
	time_t end = time(NULL) + secs;
	long rounds = 0, most = 0;
	while (time(NULL) < end) {
		long i = 0;
		for (;; i++) {
			ssize_t got = pread(fd, b, r, (off_t)i * (off_t)r);
			if (got == 0)
				break;
			if (got != (ssize_t)r) {
				printf("record %ld: a read of %zd bytes (a size not on a record's end)\n", i, got);
				return 1;
			}
			for (size_t k = 0; k < r / 4; k++)
				if (b[k] != (0x5a000000u | (uint32_t)i)) {
					printf("record %ld: word %zu is %08x\n", i, k, b[k]);
					return 1;
				}
		}
		rounds++;
		if (i > most)
			most = i;
	}
	printf("ok %ld %ld\n", rounds, most);
	return 0;
}

static int revoker(const char *file, int secs)
{
	time_t end = time(NULL) + secs;
	long n = 0;
	while (time(NULL) < end) {
		int fd = open(file, O_RDWR);
		if (fd >= 0) {
			n += fallocate(fd, 0, 0, 4096) == 0;
			close(fd);
		}
		usleep(100);
	}
	printf("ok %ld\n", n);
	return 0;
}

static int loop(const char *file, const char *log, const char *app, int pos)
{
	int fd = open(file, O_RDWR), lg = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644),
	    ap = open(app, O_WRONLY | (pos ? 0 : O_APPEND) | O_CREAT, 0644);
	struct stat st;
	if (fd < 0 || lg < 0 || ap < 0 || fstat(fd, &st) < 0)
		return 1;
	uint64_t nb = (uint64_t)st.st_size / B, w[B / 8];
	char msg[64];
	for (uint64_t r = 1, k = 0;; r++) {
		for (uint64_t i = 0; i < nb; i++) {
			for (int j = 0; j < B / 8; j++)
				w[j] = r << 32 | i;
			if (pwrite(fd, w, B, (off_t)(i * B)) != B)
				return 2;
			int n = snprintf(msg, sizeof(msg), "%llu %llu\n", (unsigned long long)i, (unsigned long long)r);
			if (write(lg, msg, (size_t)n) != n)
				return 3;
			if (i % 8 == 0) {
				for (int j = 0; j < B / 8; j++)
					w[j] = k;
				if ((pos ? pwrite(ap, w, B, (off_t)(k * B)) : write(ap, w, B)) != B)
					return 4;
				n = snprintf(msg, sizeof(msg), "a %llu\n", (unsigned long long)k++);
				if (write(lg, msg, (size_t)n) != n)
					return 5;
			}
		}
	}
}

static int check(const char *file, const char *log, const char *app)
{
	FILE *l = fopen(log, "r");
	int fd = open(file, O_RDONLY), ap = open(app, O_RDONLY);
	struct stat st;
	if (!l || fd < 0 || ap < 0 || fstat(fd, &st) < 0) {
		printf("cannot open\n");
		return 1;
	}
	uint64_t nb = (uint64_t)st.st_size / B, *last = calloc(nb ? nb : 1, 8), acked = 0, w[B / 8];
	unsigned long long a, b;
	char line[128];
	while (fgets(line, sizeof(line), l)) {
		if (sscanf(line, "a %llu", &a) == 1)
			acked = a + 1;
		else if (sscanf(line, "%llu %llu", &a, &b) == 2 && a < nb)
			last[a] = b;
	}
	for (uint64_t i = 0; i < nb; i++) {
		if (pread(fd, w, B, (off_t)(i * B)) != B) {
			printf("block %llu: cannot read\n", (unsigned long long)i);
			return 1;
		}
		for (int j = 0; j < B / 8; j++) {
			uint64_t r = w[j] >> 32, idx = w[j] & 0xffffffffu;
			if (idx != i || r < last[i] || r > last[i] + 1) {
				printf("block %llu word %d: round %llu of block %llu, acknowledged round %llu\n",
				       (unsigned long long)i, j, (unsigned long long)r, (unsigned long long)idx,
				       (unsigned long long)last[i]);
				return 1;
			}
		}
	}
	for (uint64_t k = 0; k < acked; k++) {
		if (pread(ap, w, B, (off_t)(k * B)) != B) {
			printf("append %llu (of %llu acknowledged): missing\n", (unsigned long long)k,
			       (unsigned long long)acked);
			return 1;
		}
		for (int j = 0; j < B / 8; j++)
			if (w[j] != k) {
				printf("append %llu: wrong word %d\n", (unsigned long long)k, j);
				return 1;
			}
	}
	printf("ok %llu blocks, %llu appends\n", (unsigned long long)nb, (unsigned long long)acked);
	return 0;
}

static int init(const char *file, uint64_t n)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint64_t w[B / 8];
	if (fd < 0)
		return 1;
	for (uint64_t i = 0; i < n; i++) {
		for (int j = 0; j < B / 8; j++)
			w[j] = i;
		if (write(fd, w, B) != B)
			return 1;
	}
	return close(fd) < 0;
}

static int forkdrop(const char *file, const char *pool)
{
	char b[B];
	int fd = open(file, O_RDONLY);
	if (fd < 0 || pread(fd, b, B, 0) != B)
		return 1;
	pid_t c = fork();
	if (c == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		struct stat ps;
		char line[4400];
		FILE *m = fopen("/proc/self/maps", "r");
		if (!m || stat(pool, &ps) < 0)
			_exit(4);
		while (fgets(line, sizeof(line), m)) {
			unsigned long long ino = 0;
			/* address perms offset dev inode path */
			if (sscanf(line, "%*s %*s %*s %*s %llu", &ino) == 1 && ino == (unsigned long long)ps.st_ino &&
			    strstr(line, pool)) {
				printf("the child still maps the pool: %s", line);
				_exit(5);
			}
		}
		fclose(m);
		_exit(pread(fd, b, B, 0) == B ? 0 : 6);
	}
	int st;
	if (waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return 1;
	}
	printf("ok\n");
	return 0;
}

static void pattern(uint64_t *w, uint64_t seed, uint64_t i)
{
	for (int j = 0; j < B / 8; j++)
		w[j] = (seed * 0x9e3779b97f4a7c15ULL) ^ (i << 20) ^ (uint64_t)j;
}

static int fill(const char *file, uint64_t seed, uint64_t n, int verify)
{
	int fd = open(file, verify ? O_RDONLY : O_RDWR | O_CREAT, 0644);
	uint64_t w[B / 8], r[B / 8];
	if (fd < 0)
		return 1;
	for (uint64_t i = 0; i < n; i++) {
		pattern(w, seed, i);
		if (verify) {
			if (pread(fd, r, B, (off_t)(i * B)) != B || memcmp(w, r, B)) {
				printf("block %llu differs\n", (unsigned long long)i);
				return 1;
			}
		} else if (pwrite(fd, w, B, (off_t)(i * B)) != B) {
			return 1;
		}
	}
	if (verify)
		printf("ok\n");
	return close(fd) < 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "cmd"))
		return cmd();
	if (argc == 4 && !strcmp(argv[1], "forkdrop"))
		return forkdrop(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "init"))
		return init(argv[2], strtoull(argv[3], NULL, 0));
	if ((argc == 5 || (argc == 6 && !strcmp(argv[5], "pos"))) && !strcmp(argv[1], "loop"))
		return loop(argv[2], argv[3], argv[4], argc == 6);
	if (argc == 5 && (!strcmp(argv[1], "records") || !strcmp(argv[1], "vrecords")))
		return records(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0), argv[1][0] == 'v');
	if (argc == 5 && !strcmp(argv[1], "watch"))
		return watch(argv[2], strtoull(argv[3], NULL, 0), atoi(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "revoke"))
		return revoker(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "check"))
		return check(argv[2], argv[3], argv[4]);
	if (argc == 5 && (!strcmp(argv[1], "fill") || !strcmp(argv[1], "verify")))
		return fill(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), argv[1][0] == 'v');
	fprintf(stderr, "usage: mp_helper cmd | loop FILE LOG APPEND [pos] | check FILE LOG APPEND | fill|verify FILE SEED N\n");
	return 2;
}
