/*
 * badblocks.c - the known-bad table and its text format (see badblocks.h for
 * the invariants and lock rules).
 */
#include "dev/badblocks.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTORS_PER_CHUNK (1ULL << (POISE_BB_CHUNK_SHIFT - POISE_SECTOR_SHIFT))

int bbt_init(struct poise_bbt *t, uint64_t dev_bytes)
{
	memset(t, 0, sizeof(*t));
	t->nsectors = dev_bytes >> POISE_SECTOR_SHIFT;
	uint64_t nchunks = (dev_bytes + (1ULL << POISE_BB_CHUNK_SHIFT) - 1) >> POISE_BB_CHUNK_SHIFT;
	t->nwords = (nchunks + 63) / 64;
	t->chunks = calloc(t->nwords ? t->nwords : 1, sizeof(uint64_t));
	if (!t->chunks)
		return poise_err(ENOMEM, "badblocks: out of memory");
	pthread_rwlock_init(&t->lock, NULL);
	return 0;
}

void bbt_fini(struct poise_bbt *t)
{
	if (!t->chunks)
		return;
	pthread_rwlock_destroy(&t->lock);
	free(t->r);
	free(t->chunks);
	t->r = NULL;
	t->chunks = NULL;
}

/* Index of the first range whose end is > sector (n if none).  Caller holds lock. */
static size_t lower(const struct poise_bbt *t, uint64_t sector)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->r[mid].sector + t->r[mid].count <= sector)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void chunk_bits(struct poise_bbt *t, uint64_t sector, uint64_t count, int set)
{
	uint64_t c0 = sector / SECTORS_PER_CHUNK, c1 = (sector + count - 1) / SECTORS_PER_CHUNK;
	for (uint64_t c = c0; c <= c1; c++) {
		uint64_t bit = 1ULL << (c % 64);
		if (set) {
			__atomic_fetch_or(&t->chunks[c / 64], bit, __ATOMIC_RELEASE);
		} else {
			/* clear only when no range is left in the chunk */
			uint64_t lo = c * SECTORS_PER_CHUNK, hi = lo + SECTORS_PER_CHUNK;
			size_t i = lower(t, lo);
			if (i < t->n && t->r[i].sector < hi)
				continue;
			__atomic_fetch_and(&t->chunks[c / 64], ~bit, __ATOMIC_RELEASE);
		}
	}
}

int bbt_add(struct poise_bbt *t, uint64_t sector, uint64_t count)
{
	if (count == 0)
		return 0;
	if (sector >= t->nsectors || count > t->nsectors - sector)
		return poise_err(ERANGE, "bad range %llu+%llu lies beyond the device (%llu sectors)",
				 (unsigned long long)sector, (unsigned long long)count,
				 (unsigned long long)t->nsectors);
	pthread_rwlock_wrlock(&t->lock);
	uint64_t end = sector + count;
	/* first range that overlaps or touches [sector, end): its end >= sector */
	size_t i = lower(t, sector ? sector - 1 : 0);
	size_t j = i;
	while (j < t->n && t->r[j].sector <= end) {
		if (t->r[j].sector < sector)
			sector = t->r[j].sector;
		if (t->r[j].sector + t->r[j].count > end)
			end = t->r[j].sector + t->r[j].count;
		j++;
	}
	/* ranges [i, j) merge into one */
	if (j == i) {
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 16;
			struct poise_bb_range *r = realloc(t->r, cap * sizeof(*r));
			if (!r) {
				pthread_rwlock_unlock(&t->lock);
				return poise_err(ENOMEM, "badblocks: out of memory");
			}
			t->r = r;
			t->cap = cap;
		}
		memmove(&t->r[i + 1], &t->r[i], (t->n - i) * sizeof(t->r[0]));
		t->n++;
	} else if (j - i > 1) {
		memmove(&t->r[i + 1], &t->r[j], (t->n - j) * sizeof(t->r[0]));
		t->n -= j - i - 1;
	}
	chunk_bits(t, sector, end - sector, 1);
	t->r[i].sector = sector;
	t->r[i].count = end - sector;
	__atomic_store_n(&t->nranges, t->n, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&t->lock);
	return 0;
}

int bbt_remove(struct poise_bbt *t, uint64_t sector, uint64_t count)
{
	if (count == 0)
		return 0;
	pthread_rwlock_wrlock(&t->lock);
	uint64_t end = sector + count;
	size_t i = lower(t, sector);
	while (i < t->n && t->r[i].sector < end) {
		uint64_t rs = t->r[i].sector, re = rs + t->r[i].count;
		if (rs < sector && re > end) { /* split in two */
			if (t->n == t->cap) {
				size_t cap = t->cap * 2;
				struct poise_bb_range *r = realloc(t->r, cap * sizeof(*r));
				if (!r) {
					pthread_rwlock_unlock(&t->lock);
					return poise_err(ENOMEM, "badblocks: out of memory");
				}
				t->r = r;
				t->cap = cap;
			}
			memmove(&t->r[i + 1], &t->r[i], (t->n - i) * sizeof(t->r[0]));
			t->n++;
			t->r[i].count = sector - rs;
			t->r[i + 1].sector = end;
			t->r[i + 1].count = re - end;
			break;
		}
		if (rs < sector) { /* keep the head */
			t->r[i].count = sector - rs;
			i++;
		} else if (re > end) { /* keep the tail */
			t->r[i].sector = end;
			t->r[i].count = re - end;
			break;
		} else { /* drop whole */
			memmove(&t->r[i], &t->r[i + 1], (t->n - i - 1) * sizeof(t->r[0]));
			t->n--;
		}
	}
	if (sector < t->nsectors)
		chunk_bits(t, sector, (end > t->nsectors ? t->nsectors : end) - sector, 0);
	__atomic_store_n(&t->nranges, t->n, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&t->lock);
	return 0;
}

int bbt_first_bad(struct poise_bbt *t, uint64_t lo, uint64_t hi, uint64_t *first)
{
	int found = 0;
	/* no chunk bit in the range: no bad sector at this load (the header's
	 * rule), and no shared lock taken on the paths that ask every time
	 * (each log record a commit applies) */
	if (hi > lo && hi <= t->nsectors && !bbt_maybe(t, lo << POISE_SECTOR_SHIFT, (hi - lo) << POISE_SECTOR_SHIFT))
		return 0;
	pthread_rwlock_rdlock(&t->lock);
	size_t i = lower(t, lo);
	if (i < t->n && t->r[i].sector < hi) {
		*first = t->r[i].sector > lo ? t->r[i].sector : lo;
		found = 1;
	}
	pthread_rwlock_unlock(&t->lock);
	return found;
}

int bbt_any(struct poise_bbt *t, uint64_t lo, uint64_t hi)
{
	uint64_t f;
	return bbt_first_bad(t, lo, hi, &f);
}

long bbt_snapshot(struct poise_bbt *t, struct poise_bb_range **out)
{
	pthread_rwlock_rdlock(&t->lock);
	long n = (long)t->n;
	*out = NULL;
	if (n) {
		*out = malloc(n * sizeof(**out));
		if (!*out)
			n = poise_err(ENOMEM, "badblocks: out of memory");
		else
			memcpy(*out, t->r, n * sizeof(**out));
	}
	pthread_rwlock_unlock(&t->lock);
	return n;
}

int bbt_maybe_slow(const struct poise_bbt *t, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	uint64_t c0 = off >> POISE_BB_CHUNK_SHIFT, c1 = (off + len - 1) >> POISE_BB_CHUNK_SHIFT;
	for (uint64_t c = c0; c <= c1; c++) {
		if (c / 64 >= t->nwords)
			return 1;
		if (__atomic_load_n(&t->chunks[c / 64], __ATOMIC_ACQUIRE) & (1ULL << (c % 64)))
			return 1;
	}
	return 0;
}

/* ---- text format ---- */

static int parse_u64(const char **p, uint64_t *v)
{
	const char *s = *p;
	if (*s < '0' || *s > '9')
		return -1;
	uint64_t x = 0;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
		s++;
	}
	*p = s;
	*v = x;
	return 0;
}

int bb_parse(const char *text, const char *name, struct poise_bb_range **out, size_t *n)
{
	struct poise_bb_range *r = NULL;
	size_t cnt = 0, cap = 0;
	unsigned line = 1;
	const char *p = text;
	*out = NULL;
	*n = 0;
	while (*p) {
		uint64_t a, b;
		const char *q = p;
		while (*q == ' ' || *q == '\t')
			q++;
		if (parse_u64(&q, &a) < 0)
			goto bad;
		if (*q != ' ' && *q != '\t')
			goto bad;
		while (*q == ' ' || *q == '\t')
			q++;
		if (parse_u64(&q, &b) < 0)
			goto bad;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q != '\n' && *q != 0)
			goto bad;
		if (b == 0 || a + b < a) {
			free(r);
			return poise_err(EINVAL, "%s:%u: bad range '%llu %llu' (count must be > 0)",
					 name, line, (unsigned long long)a, (unsigned long long)b);
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			struct poise_bb_range *nr = realloc(r, cap * sizeof(*r));
			if (!nr) {
				free(r);
				return poise_err(ENOMEM, "%s: out of memory", name);
			}
			r = nr;
		}
		r[cnt].sector = a;
		r[cnt].count = b;
		cnt++;
		p = *q ? q + 1 : q;
		line++;
		continue;
bad:
		free(r);
		return poise_err(EINVAL, "%s:%u: expected 'first_sector count'", name, line);
	}
	*out = r;
	*n = cnt;
	return 0;
}

#define BB_FILE_MAX (16u << 20) /* a list longer than this is not a list */

int bb_read_at(int dfd, const char *name, const char *path, int missing_ok, uid_t trust, struct poise_bb_range **out,
	       size_t *n)
{
	*out = NULL;
	*n = 0;
	/* a planted symlink is not followed, a FIFO does not hang us */
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && missing_ok)
			return -ENOENT;
		return poise_errno(errno, "%s", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)BB_FILE_MAX ||
	    (trust != (uid_t)-1 && st.st_uid != trust && st.st_uid != 0 && st.st_uid != geteuid())) {
		close(fd);
		return poise_err(EPERM, "%s: not a bad-sector list of the pool's owner (a regular file of theirs, "
				 "at most %u bytes): remove it", path, BB_FILE_MAX);
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (!buf) {
			close(fd);
			return poise_err(ENOMEM, "%s: out of memory", path);
		}
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return poise_errno(e, "%s", path);
		}
		if (k == 0)
			break;
		len += (size_t)k;
		if (len > BB_FILE_MAX) {
			free(buf);
			close(fd);
			return poise_err(EFBIG, "%s: longer than %u bytes", path, BB_FILE_MAX);
		}
		if (len == cap) {
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	close(fd);
	if (memchr(buf, 0, len)) {
		free(buf);
		return poise_err(EINVAL, "%s: binary data where badblocks lines were expected", path);
	}
	buf[len] = 0;
	int ret = bb_parse(buf, path, out, n);
	free(buf);
	return ret;
}

int bb_read_file(const char *path, int missing_ok, struct poise_bb_range **out, size_t *n)
{
	return bb_read_at(AT_FDCWD, path, path, missing_ok, (uid_t)-1, out, n);
}

int bb_write_at(int dfd, const char *name, const char *path, const struct poise_bb_range *r, size_t n, uid_t uid,
		gid_t gid)
{
	if (n == 0) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
			return poise_errno(errno, "%s", path);
		return 0;
	}
	size_t plen = strlen(name) + 32;
	char *tmp = malloc(plen);
	if (!tmp)
		return poise_err(ENOMEM, "%s: out of memory", path);
	/* a new file of our own under a name nobody can guess (O_EXCL never
	 * follows a symlink someone put there), renamed over the list: never
	 * written through a link, never stopped by a file planted in advance */
	int fd = -1;
	for (int tries = 0; fd < 0 && tries < 16; tries++) {
		uint64_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL + (uint64_t)tries;
		snprintf(tmp, plen, "%s.tmp.%016llx", name, (unsigned long long)rnd);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(tmp);
		return poise_errno(e, "%s", path);
	}
	/* root writing a user's list: it stays the user's (if it cannot, the
	 * owner's own later opens of it are refused, never misread) */
	if (uid != (uid_t)-1 && geteuid() == 0 && fchown(fd, uid, gid) < 0)
		poise_errno(errno, "%s: cannot give it to uid %u", path, (unsigned)uid);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%llu %llu\n", (unsigned long long)r[i].sector, (unsigned long long)r[i].count);
	int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
	int e = errno;
	bad |= fclose(f) != 0;
	if (bad || renameat(dfd, tmp, dfd, name) < 0) {
		e = bad ? e : errno;
		unlinkat(dfd, tmp, 0);
		free(tmp);
		return poise_errno(e, "%s", path);
	}
	free(tmp);
	return 0;
}

int bb_write_file(const char *path, const struct poise_bb_range *r, size_t n, uid_t uid, gid_t gid)
{
	return bb_write_at(AT_FDCWD, path, path, r, n, uid, gid);
}
