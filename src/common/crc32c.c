/*
 * crc32c.c - CRC32C, hardware or table (see crc32c.h).  No state beyond a
 * table built once.
 */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[256];
static int have_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[i] = c;
	}
	__builtin_cpu_init();
	have_hw = __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) static uint32_t hw(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}

uint32_t poise_crc32c(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&once, init);
	const uint8_t *p = buf;
	uint32_t c = ~crc;
	if (have_hw)
		c = hw(c, p, n);
	else
		while (n--)
			c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}
