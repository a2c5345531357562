/*
 * acl.c - POSIX access control lists, in the form Linux gives them as the
 * attributes system.posix_acl_access and system.posix_acl_default: a
 * little-endian u32 version (2), then 8-byte entries {u16 tag, u16 perm,
 * u32 id}.  They are stored as other attributes are (xattr.c); this file
 * keeps them meaningful:
 *   - a value is checked as the kernel's posix_acl_valid checks it (one
 *     owner, group and other entry, a mask when named entries exist,
 *     entries in order, no id twice, permissions 0-7) before it is stored;
 *   - the access ACL and the mode bits agree: setting an ACL sets the mode
 *     (owner, mask or group, other), a chmod rewrites those entries, and an
 *     ACL of only the three base entries is stored as the mode alone;
 *   - a new inode in a directory with a default ACL inherits it (the
 *     kernel's posix_acl_create: the mode masks the ACL, the umask is not
 *     used), a new directory also as its own default.
 * The FUSE mount lets the kernel enforce them (FUSE_CAP_POSIX_ACL).
 *
 * Pure functions on values; the callers (xattr.c, namei.c) hold the locks.
 */
#include "fs/fs.h"
#include "common/err.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define ACL_VERSION 2
#define T_USER_OBJ 0x01
#define T_USER 0x02
#define T_GROUP_OBJ 0x04
#define T_GROUP 0x08
#define T_MASK 0x10
#define T_OTHER 0x20

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* (fs.h) */
int acl_check(const void *value, size_t size, int *base_only)
{
	const uint8_t *v = value;
	if (size < 4 || (size - 4) % 8 || get32(v) != ACL_VERSION)
		return poise_err(EINVAL, "not a POSIX ACL (version 2, 8-byte entries)");
	size_t n = (size - 4) / 8;
	int seen_obj = 0, seen_gobj = 0, seen_mask = 0, seen_other = 0, named = 0;
	unsigned last_tag = 0;
	uint32_t last_id = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = v + 4 + 8 * i;
		unsigned tag = get16(e), perm = get16(e + 2);
		uint32_t id = get32(e + 4);
		if (perm > 7)
			return poise_err(EINVAL, "ACL entry %zu: permissions %#x", i, perm);
		if (tag < last_tag || (tag == last_tag && (tag == T_USER || tag == T_GROUP) && id <= last_id && i))
			return poise_err(EINVAL, "ACL entries out of order or repeated");
		switch (tag) {
		case T_USER_OBJ:
			seen_obj++;
			break;
		case T_GROUP_OBJ:
			seen_gobj++;
			break;
		case T_MASK:
			seen_mask++;
			break;
		case T_OTHER:
			seen_other++;
			break;
		case T_USER:
		case T_GROUP:
			named++;
			break;
		default:
			return poise_err(EINVAL, "ACL entry %zu: unknown tag %#x", i, tag);
		}
		if (tag == last_tag && tag != T_USER && tag != T_GROUP)
			return poise_err(EINVAL, "ACL: a second entry of tag %#x", tag);
		last_tag = tag;
		last_id = id;
	}
	if (seen_obj != 1 || seen_gobj != 1 || seen_other != 1 || (named && !seen_mask))
		return poise_err(EINVAL, "ACL: needs one owner, group and other entry (and a mask with named ones)");
	*base_only = n == 3;
	return 0;
}

/* (fs.h) */
uint16_t acl_mode(const void *value, size_t size, uint16_t mode)
{
	const uint8_t *v = value;
	unsigned u = 0, g = 0, o = 0, m = 8;
	for (size_t i = 0; i < (size - 4) / 8; i++) {
		const uint8_t *e = v + 4 + 8 * i;
		unsigned perm = get16(e + 2);
		switch (get16(e)) {
		case T_USER_OBJ: u = perm; break;
		case T_GROUP_OBJ: g = perm; break;
		case T_MASK: m = perm; break;
		case T_OTHER: o = perm; break;
		}
	}
	return (uint16_t)((mode & ~0777u) | u << 6 | (m == 8 ? g : m) << 3 | o);
}

/* (fs.h) */
void acl_chmod(void *value, size_t size, uint16_t mode)
{
	uint8_t *v = value;
	int has_mask = 0;
	for (size_t i = 0; i < (size - 4) / 8; i++)
		has_mask |= get16(v + 4 + 8 * i) == T_MASK;
	for (size_t i = 0; i < (size - 4) / 8; i++) {
		uint8_t *e = v + 4 + 8 * i;
		switch (get16(e)) {
		case T_USER_OBJ: put16(e + 2, (uint16_t)((mode >> 6) & 7)); break;
		case T_GROUP_OBJ:
			if (!has_mask)
				put16(e + 2, (uint16_t)((mode >> 3) & 7));
			break;
		case T_MASK: put16(e + 2, (uint16_t)((mode >> 3) & 7)); break;
		case T_OTHER: put16(e + 2, (uint16_t)(mode & 7)); break;
		}
	}
}

/* (fs.h) */
int acl_create(void *value, size_t size, uint16_t *mode)
{
	uint8_t *v = value;
	uint16_t m = *mode;
	uint8_t *gobj = NULL, *mask = NULL;
	int not_equiv = 0;
	for (size_t i = 0; i < (size - 4) / 8; i++) {
		uint8_t *e = v + 4 + 8 * i;
		uint16_t perm = get16(e + 2);
		switch (get16(e)) {
		case T_USER_OBJ:
			perm &= (m >> 6) & 7;
			put16(e + 2, perm);
			m = (uint16_t)((m & ~0700u) | perm << 6);
			break;
		case T_USER:
		case T_GROUP:
			not_equiv = 1;
			break;
		case T_GROUP_OBJ:
			gobj = e;
			break;
		case T_OTHER:
			perm &= m & 7;
			put16(e + 2, perm);
			m = (uint16_t)((m & ~007u) | perm);
			break;
		case T_MASK:
			mask = e;
			not_equiv = 1;
			break;
		}
	}
	uint8_t *g = mask ? mask : gobj;
	uint16_t perm = (uint16_t)(get16(g + 2) & ((m >> 3) & 7));
	put16(g + 2, perm);
	m = (uint16_t)((m & ~070u) | perm << 3);
	*mode = m;
	return not_equiv;
}
