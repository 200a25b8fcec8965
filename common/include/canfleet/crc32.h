/* CRC32 exactly as the STM32 CRC unit computes it (docs/design.md §2). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final XOR. The unit is fed
 * 32-bit words; a word is taken from memory little-endian (as the Cortex-M loads it) and then
 * shifted in most significant byte first.
 *
 * Check values:
 *   cf_crc32_bytes(CF_CRC32_INIT, "123456789", 9)            == 0x0376E6E7  (CRC-32/MPEG-2)
 *   cf_crc32_le(CF_CRC32_INIT, "12345678", 8)                == 0xFEFC54F9  (two LE words)
 *   cf_crc32_words(CF_CRC32_INIT, (uint32_t[]){0x12345678}, 1) == 0xDF8A8A2B
 *   cf_crc32_le(CF_CRC32_INIT, <0x3FFFC bytes of 0xFF>, 0x3FFFC) == 0x6327A3F6
 */
#define CF_CRC32_INIT 0xFFFFFFFFu

/* Feed n words by value (the seed's crc32_update). */
uint32_t cf_crc32_words(uint32_t crc, const uint32_t *words, size_t n);

/* Feed len bytes as little-endian words. len must be a multiple of 4; a trailing partial word is
 * ignored (use cf_crc32_ctx for arbitrary chunking). */
uint32_t cf_crc32_le(uint32_t crc, const void *data, size_t len);

/* Feed len bytes one at a time, most significant bit first (plain CRC-32/MPEG-2). */
uint32_t cf_crc32_bytes(uint32_t crc, const void *data, size_t len);

/* Incremental form of cf_crc32_le over chunks of any length: bytes are gathered into LE words.
 *   cf_crc32_ctx c; cf_crc32_begin(&c); cf_crc32_feed(&c, "1234", 4); cf_crc32_feed(&c, "5678", 4);
 *   cf_crc32_end(&c) == 0xFEFC54F9
 * cf_crc32_end() returns the CRC of the whole words fed; bytes of an incomplete last word are
 * not included (pending() tells how many there are). */
typedef struct cf_crc32_ctx {
        uint32_t crc;
        uint32_t partial;
        uint8_t npartial;
} cf_crc32_ctx;

void cf_crc32_begin(cf_crc32_ctx *c);
void cf_crc32_feed(cf_crc32_ctx *c, const void *data, size_t len);
uint32_t cf_crc32_end(const cf_crc32_ctx *c);
static inline unsigned cf_crc32_pending(const cf_crc32_ctx *c)
{
        return c->npartial;
}
