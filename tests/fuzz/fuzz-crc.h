/* An exact, faster stand-in for cf_crc32_le() over mostly erased flash, for the targets that CRC 256 KB
 * areas. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * The targets fuzz-image and fuzz-ccp-slave are linked with -Wl,--wrap=cf_crc32_le, so that every
 * call of cf_crc32_le() (from image.c, boot.c through the host HAL, and the targets) comes to
 * fuzz_crc_le() below, and __real_cf_crc32_le() is common's function itself.
 *
 * Most of every area is erased, and a byte-wise CRC of 256 KB costs ~0.7 ms: more than everything
 * else an input does. The CRC register is linear over GF(2): n words fed from state c leave
 * c·x^(32n) mod P xor what they leave from state 0. fuzz_crc_le() therefore hands the bytes that
 * are not erased to the real function and jumps over each erased run of whole 256-byte blocks with
 * two tables built once by the real function itself, word by word (x^(32n) mod P as n zero words
 * from state 1, and n erased words from state 0). The result is the same value exactly; the first
 * call checks that on a few buffers against one real call over all of each.
 */
uint32_t __real_cf_crc32_le(uint32_t crc, const void *data, size_t len);
uint32_t __wrap_cf_crc32_le(uint32_t crc, const void *data, size_t len);

uint32_t fuzz_crc_le(uint32_t crc, const void *data, size_t len);
