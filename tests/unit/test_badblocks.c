/*
 * test_badblocks.c - the known-bad table (merge, split, lookup, summary
 * bitmap) against a per-sector model, and the kernel-format parser/writer.
 */
#include "harness.h"
#include "dev/badblocks.h"
#include "common/err.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

static void t_merge_adjacent_and_overlap(void)
{
	struct poise_bbt t;
	CHECK_EQ(bbt_init(&t, 1 << 20), 0);
	CHECK_EQ(bbt_add(&t, 10, 2), 0);
	CHECK_EQ(bbt_add(&t, 12, 3), 0); /* adjacent: merges */
	CHECK_EQ(t.n, 1);
	CHECK_EQ(t.r[0].sector, 10);
	CHECK_EQ(t.r[0].count, 5);
	CHECK_EQ(bbt_add(&t, 20, 1), 0);
	CHECK_EQ(bbt_add(&t, 8, 2), 0); /* adjacent before */
	CHECK_EQ(t.n, 2);
	CHECK_EQ(t.r[0].sector, 8);
	CHECK_EQ(t.r[0].count, 7);
	CHECK_EQ(bbt_add(&t, 9, 20), 0); /* swallows both */
	CHECK_EQ(t.n, 1);
	CHECK_EQ(t.r[0].sector, 8);
	CHECK_EQ(t.r[0].count, 21);
	bbt_fini(&t);
}

static void t_remove_splits(void)
{
	struct poise_bbt t;
	CHECK_EQ(bbt_init(&t, 1 << 20), 0);
	CHECK_EQ(bbt_add(&t, 100, 10), 0);
	CHECK_EQ(bbt_remove(&t, 104, 2), 0);
	CHECK_EQ(t.n, 2);
	CHECK_EQ(t.r[0].sector, 100);
	CHECK_EQ(t.r[0].count, 4);
	CHECK_EQ(t.r[1].sector, 106);
	CHECK_EQ(t.r[1].count, 4);
	CHECK_EQ(bbt_remove(&t, 0, 103), 0);
	CHECK_EQ(t.r[0].sector, 103);
	CHECK_EQ(t.r[0].count, 1);
	CHECK_EQ(bbt_remove(&t, 0, 2048), 0);
	CHECK_EQ(t.n, 0);
	CHECK_EQ(bbt_maybe(&t, 0, 1 << 20), 0);
	bbt_fini(&t);
}

static void t_bounds(void)
{
	struct poise_bbt t;
	CHECK_EQ(bbt_init(&t, 4096), 0); /* 8 sectors */
	CHECK_EQ(bbt_add(&t, 7, 1), 0);
	CHECK_EQ(bbt_add(&t, 8, 1), -ERANGE);
	CHECK_EQ(bbt_add(&t, 6, 3), -ERANGE);
	CHECK_EQ(bbt_add(&t, UINT64_MAX - 1, 4), -ERANGE);
	bbt_fini(&t);
}

/* Random adds/removes against a sector bitmap; lookups and the summary
 * bitmap must agree with it after every step. */
static void t_model(void)
{
	enum { NS = 4096 };
	static unsigned char model[NS];
	struct poise_bbt t;
	memset(model, 0, sizeof(model));
	CHECK_EQ(bbt_init(&t, (uint64_t)NS * 512), 0);
	srand(7);
	for (int step = 0; step < 20000; step++) {
		uint64_t s = (uint64_t)(rand() % NS), c = 1 + (uint64_t)(rand() % 64);
		if (s + c > NS)
			c = NS - s;
		int add = rand() % 3 != 0;
		CHECK_EQ(add ? bbt_add(&t, s, c) : bbt_remove(&t, s, c), 0);
		memset(model + s, add, c);
		/* invariants: sorted, disjoint, non-adjacent, non-empty */
		for (size_t i = 0; i < t.n; i++) {
			CHECK(t.r[i].count > 0);
			if (i)
				CHECK(t.r[i - 1].sector + t.r[i - 1].count < t.r[i].sector);
		}
		uint64_t q = (uint64_t)(rand() % NS), ql = 1 + (uint64_t)(rand() % 300);
		if (q + ql > NS)
			ql = NS - q;
		int any = 0;
		uint64_t first = 0;
		for (uint64_t x = q; x < q + ql; x++)
			if (model[x]) {
				any = 1;
				first = x;
				break;
			}
		uint64_t got;
		CHECK_EQ(bbt_first_bad(&t, q, q + ql, &got), any);
		if (any)
			CHECK_EQ(got, first);
		if (any) /* the summary never says "clean" where there is a bad sector */
			CHECK(bbt_maybe(&t, q * 512, ql * 512));
	}
	/* exact summary: a 64 KiB chunk bit is set iff the chunk has a bad sector */
	for (int c = 0; c < NS / 128; c++) {
		int any = 0;
		for (int x = c * 128; x < (c + 1) * 128; x++)
			any |= model[x];
		CHECK_EQ(bbt_maybe(&t, (uint64_t)c * 65536, 65536) != 0, any);
	}
	bbt_fini(&t);
}

static void t_no_cap(void)
{
	struct poise_bbt t;
	CHECK_EQ(bbt_init(&t, 1ULL << 30), 0);
	for (uint64_t i = 0; i < 20000; i++)
		CHECK_EQ(bbt_add(&t, i * 4, 1), 0);
	CHECK_EQ(t.n, 20000);
	struct poise_bb_range *r;
	CHECK_EQ(bbt_snapshot(&t, &r), 20000);
	CHECK_EQ(r[19999].sector, 79996);
	free(r);
	bbt_fini(&t);
}

static void t_parse_ok(void)
{
	struct poise_bb_range *r;
	size_t n;
	CHECK_EQ(bb_parse("8 1\n100\t16\n  3 2  \n", "x", &r, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(r[1].sector, 100);
	CHECK_EQ(r[1].count, 16);
	CHECK_EQ(r[2].sector, 3);
	free(r);
	CHECK_EQ(bb_parse("", "x", &r, &n), 0); /* the kernel prints nothing when clean */
	CHECK_EQ(n, 0);
	CHECK_EQ(bb_parse("5 1", "x", &r, &n), 0); /* no trailing newline */
	CHECK_EQ(n, 1);
	free(r);
}

static void t_parse_malformed(void)
{
	static const struct {
		const char *text;
		const char *msg;
	} bad[] = {
		{"8 1\nfoo\n", "f:2: expected"},
		{"8\n", "f:1: expected"},
		{"8 1 3\n", "f:1: expected"},
		{"8 0\n", "f:1: bad range"},
		{"-1 4\n", "f:1: expected"},
		{"1 2\n\n", "f:2: expected"},
		{"99999999999999999999999 1\n", "f:1: expected"},
		{"18446744073709551615 2\n", "f:1: bad range"},
		{"0x10 1\n", "f:1: expected"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct poise_bb_range *r = (void *)1;
		size_t n = 7;
		CHECK_EQ(bb_parse(bad[i].text, "f", &r, &n), -EINVAL);
		CHECK(r == NULL && n == 0);
		CHECK_STR_HAS(poise_errmsg(), bad[i].msg);
	}
}

static void t_file_roundtrip(void)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/bb", h_tmpdir());
	struct poise_bb_range in[3] = {{1, 2}, {4096, 8}, {1ULL << 40, 1}}, *r;
	size_t n;
	CHECK_EQ(bb_write_file(path, in, 3, (uid_t)-1, (gid_t)-1), 0);
	CHECK_EQ(bb_read_file(path, 0, &r, &n), 0);
	CHECK_EQ(n, 3);
	CHECK(!memcmp(r, in, sizeof(in)));
	free(r);
	CHECK_EQ(bb_write_file(path, in, 0, (uid_t)-1, (gid_t)-1), 0); /* empty table: file removed */
	CHECK_EQ(bb_read_file(path, 1, &r, &n), -ENOENT);
	CHECK_EQ(bb_read_file(path, 0, &r, &n), -ENOENT);
	CHECK_STR_HAS(poise_errmsg(), "No such file");
	FILE *f = fopen(path, "w");
	fwrite("1 1\n\0\0", 1, 6, f);
	fclose(f);
	CHECK_EQ(bb_read_file(path, 0, &r, &n), -EINVAL);
	CHECK_STR_HAS(poise_errmsg(), "binary data");
	unlink(path);
}

int main(void)
{
	RUN(t_merge_adjacent_and_overlap);
	RUN(t_remove_splits);
	RUN(t_bounds);
	RUN(t_model);
	RUN(t_no_cap);
	RUN(t_parse_ok);
	RUN(t_parse_malformed);
	RUN(t_file_roundtrip);
	rmdir(h_tmpdir());
	DONE();
}
