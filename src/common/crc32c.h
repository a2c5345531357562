/*
 * crc32c.h - CRC32C (Castagnoli), the checksum of every on-media structure.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
 */
#ifndef POISE_CRC32C_H
#define POISE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c(0, p, n) is the checksum of p[0..n); chain by passing the last. */
uint32_t poise_crc32c(uint32_t crc, const void *p, size_t n);

#endif
