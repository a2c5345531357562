/*
 * live.c - the operations of live.h: info, scrub, badblocks list, inject
 * (sectors, under a file, into one copy of metadata) and clear, each run
 * on the pool at a path, printing what the command prints.
 *
 * live_run decides where a request runs: a pool that a process holds (its
 * OFD lock taken) is asked through the control channel (cli_remote); when
 * no mount answers for it, the local open reports who holds it.
 */
#include "cli/live.h"
#include "cli/cli.h"
#include "cli/pool_open.h"
#include "poise.h"
#include "poise-admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


/* The pool to work on: the daemon's own (live), or one opened here.  The
 * daemon never opens anything by path for a request. */
static int get_pool(const char *cmd, const char *path, struct poise_pool *live, struct poise_pool **p)
{
	if (live) {
		*p = live;
		return 0;
	}
	int ret = poise_pool_open(path, 0, p);
	return ret < 0 ? cli_fail(ret, "%s", cmd) : 0;
}

static void put_pool(struct poise_pool *live, struct poise_pool **p)
{
	if (*p != live)
		poise_pool_close(p);
}

static int get_dev(const char *cmd, const char *path, struct poise_pool *live, struct poise_dev **d)
{
	if (live) {
		*d = poise_pool_dev(live);
		return 0;
	}
	return cli_open_dev(cmd, path, d);
}

static void put_dev(struct poise_pool *live, struct poise_dev **d)
{
	if (!live)
		poise_dev_close(d);
}

static int do_info(const struct live_req *r, const char *path, struct poise_pool *live)
{
	struct poise_pool *p;
	if (get_pool("info", path, live, &p))
		return EXIT_FAIL;
	struct stat st;
	if (poise_dev_fstat(poise_pool_dev(p), &st) == 0)
		cli_warn_mode(path, &st);
	struct poise_info in;
	poise_info(p, &in);
	put_pool(live, &p);
	if (r->flags & LIVE_JSON) {
		printf("{\"pool\":");
		cli_json_str(stdout, path);
		printf(",\"backend\":\"%s\",\"format\":\"%u.%u\",\"uuid\":\"%s\",\"pool_bytes\":%llu,"
		       "\"block_size\":%llu,\"blocks\":%llu,\"blocks_free\":%llu,\"inodes\":%llu,"
		       "\"inodes_free\":%llu,\"log_lanes\":%u,\"bad_ranges\":%llu,\"bad_sectors\":%llu}\n",
		       in.backend, in.format_major, in.format_minor, in.uuid,
		       (unsigned long long)in.pool_bytes, (unsigned long long)in.block_size,
		       (unsigned long long)in.blocks, (unsigned long long)in.blocks_free,
		       (unsigned long long)in.inodes, (unsigned long long)in.inodes_free, in.log_lanes,
		       (unsigned long long)in.bad_ranges, (unsigned long long)in.bad_sectors);
	} else {
		printf("pool:        %s (%s)\nformat:      poise %u.%u, uuid %s\n", path, in.backend,
		       in.format_major, in.format_minor, in.uuid);
		printf("size:        %llu bytes, %llu-byte blocks\n", (unsigned long long)in.pool_bytes,
		       (unsigned long long)in.block_size);
		printf("data blocks: %llu, %llu free (%.1f%%)\n", (unsigned long long)in.blocks,
		       (unsigned long long)in.blocks_free,
		       in.blocks ? 100.0 * (double)in.blocks_free / (double)in.blocks : 0.0);
		printf("inodes:      %llu, %llu free\nlog lanes:   %u\nbad sectors: %llu in %llu ranges\n",
		       (unsigned long long)in.inodes, (unsigned long long)in.inodes_free, in.log_lanes,
		       (unsigned long long)in.bad_sectors, (unsigned long long)in.bad_ranges);
	}
	return EXIT_OK;
}

static int do_scrub(const struct live_req *r, const char *path, struct poise_pool *live)
{
	struct poise_scrub_report rep;
	int ret = live ? poise_scrub_live(live, &rep) : poise_scrub(path, &rep);
	if (ret < 0)
		return cli_fail(ret, "scrub");
	uint64_t files = 0, meta = 0, free_ = 0, quar = 0, damaged = 0;
	for (size_t i = 0; i < rep.n; i++) {
		struct poise_scrub_range *x = &rep.r[i];
		files += !strcmp(x->owner, "file");
		meta += !strcmp(x->owner, "metadata");
		free_ += !strcmp(x->owner, "free");
		quar += !strcmp(x->owner, "quarantined");
		damaged += !strcmp(x->owner, "file") || (!strcmp(x->owner, "metadata") && !x->repaired);
	}
	if (r->flags & LIVE_JSON) {
		printf("{\"pool\":");
		cli_json_str(stdout, path);
		printf(",\"blocks_scanned\":%llu,\"ranges\":[", (unsigned long long)rep.blocks_scanned);
		for (size_t i = 0; i < rep.n; i++) {
			struct poise_scrub_range *x = &rep.r[i];
			printf("%s{\"sector\":%llu,\"count\":%llu,\"owner\":\"%s\",\"what\":", i ? "," : "",
			       (unsigned long long)x->sector, (unsigned long long)x->count, x->owner);
			cli_json_str(stdout, x->what);
			printf(",\"path\":");
			if (x->path[0])
				cli_json_str(stdout, x->path);
			else
				printf("null");
			printf(",\"ino\":%llu,\"file_offset\":%llu,\"length\":%llu,\"repaired\":%s}",
			       (unsigned long long)x->ino, (unsigned long long)x->file_offset,
			       (unsigned long long)x->length, x->repaired ? "true" : "false");
		}
		printf("],\"totals\":{\"ranges\":%zu,\"sectors\":%llu,\"new_sectors\":%llu,\"file\":%llu,"
		       "\"metadata\":%llu,\"free\":%llu,\"quarantined\":%llu,\"damaged\":%llu}}\n",
		       rep.n, (unsigned long long)rep.sectors_bad, (unsigned long long)rep.found_new,
		       (unsigned long long)files, (unsigned long long)meta, (unsigned long long)free_,
		       (unsigned long long)quar, (unsigned long long)damaged);
	} else {
		for (size_t i = 0; i < rep.n; i++) {
			struct poise_scrub_range *x = &rep.r[i];
			printf("sectors %llu-%llu: ", (unsigned long long)x->sector,
			       (unsigned long long)(x->sector + x->count - 1));
			if (!strcmp(x->owner, "file")) {
				printf("%s ", x->what);
				cli_print_name(stdout, x->path);
				printf(", bytes %llu-%llu\n", (unsigned long long)x->file_offset,
				       (unsigned long long)(x->file_offset + x->length - 1));
			} else if (!strcmp(x->owner, "metadata")) {
				printf("metadata: %s%s", x->what, x->path[0] ? " of " : "");
				cli_print_name(stdout, x->path);
				printf("%s\n", x->repaired ? " (repaired)" : " (NOT repaired)");
			} else {
				printf("%s\n", x->owner);
			}
		}
		printf("%s: %llu blocks scanned, %llu bad sectors in %zu ranges (%llu newly found): "
		       "%llu in files, %llu in metadata, %llu quarantined, %llu free\n",
		       path, (unsigned long long)rep.blocks_scanned, (unsigned long long)rep.sectors_bad, rep.n,
		       (unsigned long long)rep.found_new, (unsigned long long)files, (unsigned long long)meta,
		       (unsigned long long)quar, (unsigned long long)free_);
	}
	poise_scrub_free(&rep);
	return damaged ? EXIT_FAIL : EXIT_OK;
}

static int do_bb_list(const struct live_req *r, const char *path, struct poise_pool *live)
{
	struct poise_dev *d;
	if (get_dev("badblocks list", path, live, &d))
		return EXIT_FAIL;
	struct poise_bb_range *rg;
	long n = poise_dev_badblocks(d, &rg);
	if (n < 0) {
		put_dev(live, &d);
		return cli_fail((int)n, "badblocks list");
	}
	uint64_t total = 0;
	for (long i = 0; i < n; i++)
		total += rg[i].count;
	if (r->flags & LIVE_JSON) {
		printf("{\"pool\":");
		cli_json_str(stdout, path);
		printf(",\"backend\":\"%s\",\"sector_size\":%u,\"ranges\":[", poise_dev_backend(d), POISE_SECTOR);
		for (long i = 0; i < n; i++)
			printf("%s{\"sector\":%llu,\"count\":%llu,\"offset\":%llu,\"length\":%llu}", i ? "," : "",
			       (unsigned long long)rg[i].sector, (unsigned long long)rg[i].count,
			       (unsigned long long)(rg[i].sector * POISE_SECTOR),
			       (unsigned long long)(rg[i].count * POISE_SECTOR));
		printf("],\"total_ranges\":%ld,\"total_sectors\":%llu}\n", n, (unsigned long long)total);
	} else {
		for (long i = 0; i < n; i++)
			printf("%llu %llu\n", (unsigned long long)rg[i].sector, (unsigned long long)rg[i].count);
	}
	free(rg);
	put_dev(live, &d);
	if (fflush(stdout) != 0)
		return cli_fail(0, "badblocks list: cannot write the output");
	return EXIT_OK;
}

static int do_inject(const struct live_req *r, const char *path, struct poise_pool *live)
{
	struct poise_dev *d;
	if (get_dev("badblocks inject", path, live, &d))
		return EXIT_FAIL;
	int ret = poise_dev_inject(d, r->sector, r->count);
	put_dev(live, &d);
	if (ret < 0)
		return cli_fail(ret, "badblocks inject");
	printf("poisoned sectors %llu-%llu (bytes %llu-%llu)\n", (unsigned long long)r->sector,
	       (unsigned long long)(r->sector + r->count - 1), (unsigned long long)(r->sector * POISE_SECTOR),
	       (unsigned long long)((r->sector + r->count) * POISE_SECTOR - 1));
	return EXIT_OK;
}

/* The sectors under bytes [offset, offset+length) of a file of the pool. */
static int do_inject_file(const struct live_req *r, const char *path, struct poise_pool *live)
{
	struct poise_pool *p;
	int ret = 0;
	if (get_pool("badblocks inject", path, live, &p))
		return EXIT_FAIL;
	struct poise_map_piece m[64];
	int n = poise_fiemap(p, r->file, r->offset, r->length, m, 64);
	if (n == 0)
		n = poise_err(EINVAL, "%s: bytes %llu+%llu hold no data (a hole, or past the end)", r->file,
			      (unsigned long long)r->offset, (unsigned long long)r->length);
	for (int i = 0; n > 0 && i < n; i++) {
		uint64_t s0 = m[i].pool_off / POISE_SECTOR;
		uint64_t s1 = (m[i].pool_off + m[i].length + POISE_SECTOR - 1) / POISE_SECTOR;
		ret = poise_badblocks_inject(p, s0, s1 - s0);
		if (ret < 0)
			break;
		printf("poisoned ");
		cli_print_name(stdout, r->file);
		printf(" bytes %llu-%llu: pool sectors %llu-%llu\n", (unsigned long long)m[i].file_off,
		       (unsigned long long)(m[i].file_off + m[i].length - 1), (unsigned long long)s0,
		       (unsigned long long)(s1 - 1));
	}
	put_pool(live, &p);
	if (n < 0 || ret < 0)
		return cli_fail(n < 0 ? n : ret, "badblocks inject");
	return EXIT_OK;
}

/* One copy of each structure named, all in one open (a later open's mount
 * would repair what an earlier one poisoned); every sector is found before
 * any is poisoned, since finding one structure must not read (and so
 * repair) another already poisoned. */
static int do_inject_meta(const struct live_req *r, const char *path, struct poise_pool *live)
{
	struct poise_pool *p;
	int ret = 0;
	if (get_pool("badblocks inject", path, live, &p))
		return EXIT_FAIL;
	uint64_t secs[LIVE_MAX_KINDS];
	for (uint32_t i = 0; i < r->nkinds && ret == 0; i++)
		ret = poise_metadata_sector(p, live_kind_names[r->kinds[i]], &secs[i]);
	for (uint32_t i = 0; i < r->nkinds && ret == 0; i++) {
		ret = poise_badblocks_inject(p, secs[i], 1);
		if (ret == 0)
			printf("poisoned %s: pool sector %llu\n", live_kind_names[r->kinds[i]],
			       (unsigned long long)secs[i]);
	}
	put_pool(live, &p);
	return ret < 0 ? cli_fail(ret, "badblocks inject") : EXIT_OK;
}

static int do_clear(const struct live_req *r, const char *path, struct poise_pool *live)
{
	struct poise_dev *d;
	if (get_dev("badblocks clear", path, live, &d))
		return EXIT_FAIL;
	uint64_t nsect = poise_dev_size(d) / POISE_SECTOR;
	if (r->sector >= nsect || r->count > nsect - r->sector) {
		put_dev(live, &d);
		return cli_fail(0, "badblocks clear: %s: sectors %llu+%llu lie beyond the pool (%llu sectors)", path,
				(unsigned long long)r->sector, (unsigned long long)r->count,
				(unsigned long long)nsect);
	}
	int ret = poise_dev_clear(d, r->sector * POISE_SECTOR, r->count * POISE_SECTOR);
	put_dev(live, &d);
	return ret < 0 ? cli_fail(ret, "badblocks clear") : EXIT_OK;
}

int live_exec(const struct live_req *r, const char *path, struct poise_pool *live)
{
	const char *why;
	if (live_req_check(r, &why) < 0)
		return cli_fail(0, "%s: %s", path, why);
	switch (r->op) {
	case LIVE_INFO: return do_info(r, path, live);
	case LIVE_SCRUB: return do_scrub(r, path, live);
	case LIVE_BB_LIST: return do_bb_list(r, path, live);
	case LIVE_BB_INJECT: return do_inject(r, path, live);
	case LIVE_BB_INJECT_FILE: return do_inject_file(r, path, live);
	case LIVE_BB_INJECT_META: return do_inject_meta(r, path, live);
	case LIVE_BB_CLEAR: return do_clear(r, path, live);
	}
	return EXIT_FAIL;
}

int live_run(const struct live_req *r, const char *path)
{
	int rc;
	if (cli_pool_held(path) && cli_remote(path, r, &rc))
		return rc;
	return live_exec(r, path, NULL);
}
