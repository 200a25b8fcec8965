/* fuzz_crc_le(): cf_crc32_le() with a jump over erased runs (fuzz-crc.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/crc32.h"
#include "canfleet/layout.h"
#include "fuzz-crc.h"
#include "fuzz.h"

#define POLY       0x04C11DB7u
#define BLOCK      256u                      /* bytes: the grain of the erased runs jumped over */
#define JUMP_WORDS (CF_IMAGE_AREA_SIZE / 4u) /* the longest jump of one table step */

static uint32_t *xpow, *ones; /* [n]: x^(32n) mod P; n erased words from state 0 */
static uint8_t erased[BLOCK];

/* a·b mod P, bit by bit. */
static uint32_t mulmod(uint32_t a, uint32_t b)
{
        uint32_t r = 0;

        for (int i = 31; i >= 0; i--) {
                r = r & 0x80000000u ? r << 1 ^ POLY : r << 1;
                if (a >> i & 1)
                        r ^= b;
        }
        return r;
}

static uint32_t jump(uint32_t crc, size_t words)
{
        while (words > 0) {
                size_t n = words < JUMP_WORDS ? words : JUMP_WORDS;
                crc = mulmod(crc, xpow[n]) ^ ones[n];
                words -= n;
        }
        return crc;
}

static uint32_t crc_le(uint32_t crc, const uint8_t *p, size_t len)
{
        size_t n = len & ~(size_t) 3, i = 0; /* a partial last word is not fed, as cf_crc32_le says */

        while (i < n) {
                size_t j = i;
                while (j + BLOCK <= n && memcmp(p + j, erased, BLOCK) != 0)
                        j += BLOCK;
                if (j + BLOCK > n)
                        return __real_cf_crc32_le(crc, p + i, n - i);
                if (j > i)
                        crc = __real_cf_crc32_le(crc, p + i, j - i);
                size_t k = j;
                while (k + BLOCK <= n && memcmp(p + k, erased, BLOCK) == 0)
                        k += BLOCK;
                crc = jump(crc, (k - j) / 4);
                i = k;
        }
        return crc;
}

static void init(void)
{
        static const uint8_t zero[4], ff[4] = {0xFF, 0xFF, 0xFF, 0xFF};

        memset(erased, 0xFF, sizeof(erased));
        xpow = malloc((JUMP_WORDS + 1) * sizeof(*xpow));
        ones = malloc((JUMP_WORDS + 1) * sizeof(*ones));
        if (!xpow || !ones)
                abort();
        xpow[0] = 1;
        ones[0] = 0;
        for (size_t n = 0; n < JUMP_WORDS; n++) {
                xpow[n + 1] = __real_cf_crc32_le(xpow[n], zero, 4);
                ones[n + 1] = __real_cf_crc32_le(ones[n], ff, 4);
        }

        /* Against the real function over whole buffers: erased ones of several lengths with a few
         * bytes set here and there, longer than one table step too. */
        size_t size = 2 * CF_IMAGE_AREA_SIZE + 1000;
        uint8_t *a = malloc(size);
        if (!a)
                abort();
        memset(a, 0xFF, size);
        for (size_t i = 0; i < 300; i++)
                a[(i * 7919u) % 4096u] = (uint8_t) (i * 37u + 1u);
        a[CF_IMAGE_AREA_SIZE - 5] = 0;
        a[CF_IMAGE_AREA_SIZE + 777] = 0x12;
        static const size_t lens[] = {
            0, 3, 4, 255, 256, 1023, 4096, CF_IMAGE_AREA_SIZE - 4, 2 * CF_IMAGE_AREA_SIZE + 997};
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
                for (size_t off = 0; off < 8; off += 4)
                        FUZZ_CHECK(crc_le(0x12345678u, a + off, lens[i]) ==
                                       __real_cf_crc32_le(0x12345678u, a + off, lens[i]),
                                   "fuzz_crc_le differs from cf_crc32_le over %zu bytes", lens[i]);
        free(a);
}

uint32_t fuzz_crc_le(uint32_t crc, const void *data, size_t len)
{
        if (!xpow)
                init();
        return crc_le(crc, data, len);
}
