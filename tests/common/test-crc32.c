/* Tests of common/src/crc32.c against the STM32 CRC unit's check values and a bitwise reference. */
#include <stdbool.h>
#include <string.h>

#include "canfleet/crc32.h"
#include "cf-test.h"

/* The unit one bit at a time, written straight from the reference manual's description. */
static uint32_t ref_word(uint32_t crc, uint32_t w)
{
        crc ^= w;
        for (int i = 0; i < 32; i++)
                crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
        return crc;
}

static uint32_t ref_byte(uint32_t crc, uint8_t b)
{
        crc ^= (uint32_t) b << 24;
        for (int i = 0; i < 8; i++)
                crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
        return crc;
}

static uint8_t buf[0x40000];

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
        uint32_t x = seed;
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                p[i] = (uint8_t) (x >> 16);
        }
}

static void test_check_values(void)
{
        CU_ASSERT_EQUAL(cf_crc32_bytes(CF_CRC32_INIT, "123456789", 9), 0x0376E6E7u);
        CU_ASSERT_EQUAL(cf_crc32_le(CF_CRC32_INIT, "12345678", 8), 0xFEFC54F9u);
        CU_ASSERT_EQUAL(cf_crc32_words(CF_CRC32_INIT, (const uint32_t[]){0x12345678u}, 1), 0xDF8A8A2Bu);
        CU_ASSERT_EQUAL(cf_crc32_words(CF_CRC32_INIT, NULL, 0), CF_CRC32_INIT);
        CU_ASSERT_EQUAL(cf_crc32_le(CF_CRC32_INIT, "", 0), CF_CRC32_INIT);
        CU_ASSERT_EQUAL(cf_crc32_bytes(CF_CRC32_INIT, "", 0), CF_CRC32_INIT);
}

static void test_erased_area(void)
{
        memset(buf, 0xFF, sizeof(buf));
        CU_ASSERT_EQUAL(cf_crc32_le(CF_CRC32_INIT, buf, 0x3FFFC), 0x6327A3F6u);
        /* and so the CRC slot of an erased area (0xFFFFFFFF) never matches */
        CU_ASSERT_NOT_EQUAL(cf_crc32_le(CF_CRC32_INIT, buf, 0x3FFFC), 0xFFFFFFFFu);
}

static void test_matches_bitwise_reference(void)
{
        fill_pattern(buf, 4096, 1);
        uint32_t ref = CF_CRC32_INIT;
        for (size_t i = 0; i < 4096; i += 4)
                ref = ref_word(ref, (uint32_t) buf[i] | (uint32_t) buf[i + 1] << 8 |
                                        (uint32_t) buf[i + 2] << 16 | (uint32_t) buf[i + 3] << 24);
        CU_ASSERT_EQUAL(cf_crc32_le(CF_CRC32_INIT, buf, 4096), ref);

        /* every table entry: each byte value from every starting register that isolates it */
        for (unsigned b = 0; b < 256; b++) {
                CU_ASSERT_EQUAL(cf_crc32_bytes(0, (uint8_t[]){(uint8_t) b}, 1), ref_byte(0, (uint8_t) b));
                CU_ASSERT_EQUAL(cf_crc32_bytes(CF_CRC32_INIT, (uint8_t[]){(uint8_t) b}, 1),
                                ref_byte(CF_CRC32_INIT, (uint8_t) b));
        }

        uint32_t rb = CF_CRC32_INIT;
        for (size_t i = 0; i < 1001; i++)
                rb = ref_byte(rb, buf[i]);
        CU_ASSERT_EQUAL(cf_crc32_bytes(CF_CRC32_INIT, buf, 1001), rb);
}

static void test_word_byte_order(void)
{
        /* A word is shifted in MSB first: the same as its big-endian bytes fed one at a time ... */
        const uint8_t be[4] = {0x12, 0x34, 0x56, 0x78};
        CU_ASSERT_EQUAL(cf_crc32_words(CF_CRC32_INIT, (const uint32_t[]){0x12345678u}, 1),
                        cf_crc32_bytes(CF_CRC32_INIT, be, 4));
        /* ... and memory is loaded little-endian, so the bytes 78 56 34 12 make that word. */
        const uint8_t le[4] = {0x78, 0x56, 0x34, 0x12};
        CU_ASSERT_EQUAL(cf_crc32_le(CF_CRC32_INIT, le, 4), 0xDF8A8A2Bu);
        CU_ASSERT_NOT_EQUAL(cf_crc32_le(CF_CRC32_INIT, be, 4), 0xDF8A8A2Bu);

        uint32_t words[2] = {0x34333231u, 0x38373635u}; /* "12345678" loaded LE */
        CU_ASSERT_EQUAL(cf_crc32_words(CF_CRC32_INIT, words, 2), 0xFEFC54F9u);
}

static void test_le_ignores_partial_word(void)
{
        CU_ASSERT_EQUAL(cf_crc32_le(CF_CRC32_INIT, "123456789", 9), 0xFEFC54F9u);
        CU_ASSERT_EQUAL(cf_crc32_le(CF_CRC32_INIT, "12345678abc", 11), 0xFEFC54F9u);
        CU_ASSERT_EQUAL(cf_crc32_le(CF_CRC32_INIT, "123", 3), CF_CRC32_INIT);
}

static void test_chaining(void)
{
        fill_pattern(buf, 1024, 7);
        uint32_t whole = cf_crc32_le(CF_CRC32_INIT, buf, 1024);
        uint32_t part = cf_crc32_le(CF_CRC32_INIT, buf, 400);
        CU_ASSERT_EQUAL(cf_crc32_le(part, buf + 400, 624), whole);
        uint32_t b = cf_crc32_bytes(CF_CRC32_INIT, buf, 333);
        CU_ASSERT_EQUAL(cf_crc32_bytes(b, buf + 333, 691), cf_crc32_bytes(CF_CRC32_INIT, buf, 1024));
}

static void test_ctx_example(void)
{
        cf_crc32_ctx c;
        cf_crc32_begin(&c);
        CU_ASSERT_EQUAL(cf_crc32_end(&c), CF_CRC32_INIT);
        cf_crc32_feed(&c, "1234", 4);
        cf_crc32_feed(&c, "5678", 4);
        CU_ASSERT_EQUAL(cf_crc32_end(&c), 0xFEFC54F9u);
        CU_ASSERT_EQUAL(cf_crc32_pending(&c), 0u);
}

static void test_ctx_odd_chunks(void)
{
        static const size_t chunk_sets[][6] = {
            {1, 1, 1, 1, 1, 1},  {3, 3, 3, 3, 3, 3},    {1, 2, 3, 5, 7, 11},
            {13, 1, 6, 2, 9, 4}, {4095, 1, 3, 5, 2, 7},
        };
        const size_t len = 0x3FFFC;

        fill_pattern(buf, len, 42);
        uint32_t oneshot = cf_crc32_le(CF_CRC32_INIT, buf, len);

        for (size_t s = 0; s < sizeof(chunk_sets) / sizeof(chunk_sets[0]); s++) {
                cf_crc32_ctx c;
                size_t off = 0, k = 0;
                bool pending_ok = true;
                cf_crc32_begin(&c);
                while (off < len) {
                        size_t n = chunk_sets[s][k++ % 6];
                        if (n > len - off)
                                n = len - off;
                        cf_crc32_feed(&c, buf + off, n);
                        off += n;
                        if (cf_crc32_pending(&c) != off % 4)
                                pending_ok = false;
                }
                CU_ASSERT_TRUE(pending_ok);
                CU_ASSERT_EQUAL(cf_crc32_end(&c), oneshot);
        }

        /* An unfinished last word is left out of the result and reported as pending. */
        cf_crc32_ctx c;
        cf_crc32_begin(&c);
        cf_crc32_feed(&c, "123456789", 9);
        CU_ASSERT_EQUAL(cf_crc32_pending(&c), 1u);
        CU_ASSERT_EQUAL(cf_crc32_end(&c), 0xFEFC54F9u);
        cf_crc32_feed(&c, "", 0);
        CU_ASSERT_EQUAL(cf_crc32_pending(&c), 1u);
        cf_crc32_feed(&c, "abc", 3);
        CU_ASSERT_EQUAL(cf_crc32_pending(&c), 0u);
        CU_ASSERT_EQUAL(cf_crc32_end(&c), cf_crc32_le(CF_CRC32_INIT, "123456789abc", 12));
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"check values", test_check_values},
            {"erased area 0x3FFFC x 0xFF", test_erased_area},
            {"matches bitwise reference", test_matches_bitwise_reference},
            {"word and byte order", test_word_byte_order},
            {"le ignores a partial word", test_le_ignores_partial_word},
            {"chaining", test_chaining},
            {"ctx example", test_ctx_example},
            {"ctx odd chunks equal one-shot", test_ctx_odd_chunks},
            {NULL, NULL},
        };
        return cf_test_run("crc32", tests);
}
