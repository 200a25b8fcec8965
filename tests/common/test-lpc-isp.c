/* Tests of common/src/lpc-isp.c: UU lines (the seed's "Cat"), checksums, return codes, sectors, parts. */
#include <errno.h>
#include <string.h>

#include "canfleet/lpc-isp.h"
#include "cf-test.h"

static void test_uu_seed_example(void)
{
        char line[CF_UU_LINE_MAX + 1] = {0};
        /* seed 001 / Wikipedia: "Cat" -> "0V%T" after the length char '#' (3 + 0x20) */
        CU_ASSERT_EQUAL(cf_uu_encode_line((const uint8_t *) "Cat", 3, line), 5);
        CU_ASSERT_STRING_EQUAL(line, "#0V%T");
        uint8_t out[45];
        CU_ASSERT_EQUAL(cf_uu_decode_line("#0V%T", 5, out, sizeof(out)), 3);
        CU_ASSERT_EQUAL(memcmp(out, "Cat", 3), 0);
}

static void test_uu_zero_is_backquote(void)
{
        char line[CF_UU_LINE_MAX + 1] = {0};
        /* the seed's lesson: a 6-bit 0 is sent as 0x60, not as a space */
        CU_ASSERT_EQUAL(cf_uu_encode_line((const uint8_t[]){0, 0, 0}, 3, line), 5);
        CU_ASSERT_STRING_EQUAL(line, "#````");
        memset(line, 0, sizeof(line));
        CU_ASSERT_EQUAL(cf_uu_encode_line((const uint8_t[]){0x01}, 1, line), 5);
        CU_ASSERT_STRING_EQUAL(line, "!`0``");
        /* a decoder takes a space as 0 too, as older encoders send it */
        uint8_t out[3] = {0xAA, 0xAA, 0xAA};
        CU_ASSERT_EQUAL(cf_uu_decode_line("#    ", 5, out, sizeof(out)), 3);
        CU_ASSERT_EQUAL(out[0] | out[1] | out[2], 0);
        CU_ASSERT_EQUAL(cf_uu_decode_line("!`0``", 5, out, sizeof(out)), 1);
        CU_ASSERT_EQUAL(out[0], 0x01);
}

static void test_uu_full_line_roundtrip(void)
{
        uint8_t data[45], back[45];
        char line[CF_UU_LINE_MAX + 1];
        for (size_t n = 1; n <= 45; n++) {
                for (size_t i = 0; i < n; i++)
                        data[i] = (uint8_t) (i * 37 + n * 11 + 0x80);
                size_t len = cf_uu_encode_line(data, n, line);
                CU_ASSERT_EQUAL(len, 1 + 4 * ((n + 2) / 3));
                CU_ASSERT(len <= CF_UU_LINE_MAX);
                for (size_t i = 0; i < len; i++)
                        CU_ASSERT(line[i] > ' ' && line[i] <= '`');
                CU_ASSERT_EQUAL(cf_uu_decode_line(line, len, back, sizeof(back)), (int) n);
                CU_ASSERT_EQUAL(memcmp(back, data, n), 0);
        }
        CU_ASSERT_EQUAL(line[0], 'M'); /* 45 + 0x20 */
        CU_ASSERT_EQUAL(cf_uu_encode_line(data, 0, line), 0);
        CU_ASSERT_EQUAL(cf_uu_encode_line(data, 46, line), 0);
}

static void test_uu_malformed(void)
{
        uint8_t out[64];
        CU_ASSERT_EQUAL(cf_uu_decode_line("", 0, out, sizeof(out)), -EINVAL);
        CU_ASSERT_EQUAL(cf_uu_decode_line("#0V%", 4, out, sizeof(out)), -EINVAL);     /* short */
        CU_ASSERT_EQUAL(cf_uu_decode_line("#0V%TT", 6, out, sizeof(out)), -EINVAL);   /* long */
        CU_ASSERT_EQUAL(cf_uu_decode_line("#0v%T", 5, out, sizeof(out)), -EINVAL);    /* 'v' > '`' */
        CU_ASSERT_EQUAL(cf_uu_decode_line("#0\x1f%T", 5, out, sizeof(out)), -EINVAL); /* control */
        CU_ASSERT_EQUAL(cf_uu_decode_line("N", 1, out, sizeof(out)), -EINVAL);        /* 46 bytes */
        CU_ASSERT_EQUAL(cf_uu_decode_line("#0V%T", 5, out, 2), -ENOBUFS);
        CU_ASSERT_EQUAL(cf_uu_decode_line("`", 1, out, sizeof(out)), 0); /* the empty line */
}

static void test_isp_checksum(void)
{
        CU_ASSERT_EQUAL(cf_isp_checksum((const uint8_t *) "Cat", 3), 280u);
        CU_ASSERT_EQUAL(cf_isp_checksum(NULL, 0), 0u);
        static uint8_t ff[900];
        memset(ff, 0xFF, sizeof(ff));
        /* 20 full lines of 0xFF: the sum is not reduced to 8 or 16 bits */
        CU_ASSERT_EQUAL(cf_isp_checksum(ff, sizeof(ff)), 900u * 255u);
}

static void test_vector_checksum(void)
{
        /* a Cortex-M3 vector table: SP, reset, NMI, HardFault, MemManage, BusFault, UsageFault */
        uint32_t words[8] = {0x10008000u, 0x000000C1u, 0x000000C9u, 0x000000CBu,
                             0x000000CDu, 0x000000CFu, 0x000000D1u, 0xDEADBEEFu};
        uint8_t img[64] = {0};
        for (int w = 0; w < 8; w++)
                for (int b = 0; b < 4; b++)
                        img[4 * w + b] = (uint8_t) (words[w] >> (8 * b));
        CU_ASSERT_FALSE(cf_lpc_vector_checksum_ok(img, sizeof(img)));
        cf_lpc_vector_checksum_fix(img, sizeof(img));
        CU_ASSERT_TRUE(cf_lpc_vector_checksum_ok(img, sizeof(img)));
        /* 0x10008000 + 0xC1 + 0xC9 + 0xCB + 0xCD + 0xCF + 0xD1 = 0x100084C2; two's complement: */
        CU_ASSERT_EQUAL(img[0x1C] | img[0x1D] << 8 | img[0x1E] << 16 | (uint32_t) img[0x1F] << 24,
                        0xEFFF7B3Eu);
        /* only word 7 changed */
        CU_ASSERT_EQUAL(img[0], 0x00);
        CU_ASSERT_EQUAL(img[3], 0x10);
        CU_ASSERT_EQUAL(img[0x20], 0);
        img[4] ^= 1;
        CU_ASSERT_FALSE(cf_lpc_vector_checksum_ok(img, sizeof(img)));
        CU_ASSERT_FALSE(cf_lpc_vector_checksum_ok(img, 31));
        uint8_t small[31] = {1};
        cf_lpc_vector_checksum_fix(small, sizeof(small)); /* too short: untouched */
        CU_ASSERT_EQUAL(small[0], 1);
}

static void test_return_codes(void)
{
        CU_ASSERT_STRING_EQUAL(cf_isp_rc_name(CF_ISP_CMD_SUCCESS), "CMD_SUCCESS");
        CU_ASSERT_STRING_EQUAL(cf_isp_rc_name(9), "SECTOR_NOT_PREPARED_FOR_WRITE_OPERATION");
        CU_ASSERT_STRING_EQUAL(cf_isp_rc_name(15), "CMD_LOCKED");
        CU_ASSERT_STRING_EQUAL(cf_isp_rc_name(19), "CODE_READ_PROTECTION_ENABLED");
        CU_ASSERT_PTR_NULL(cf_isp_rc_name(20));
        CU_ASSERT_PTR_NULL(cf_isp_rc_name(-1));
        for (int c = 0; c <= CF_ISP_RC_MAX; c++) {
                CU_ASSERT_PTR_NOT_NULL(cf_isp_rc_name(c));
                CU_ASSERT(strlen(cf_isp_strerror(c)) > 8);
                CU_ASSERT_STRING_NOT_EQUAL(cf_isp_strerror(c), "unknown ISP return code");
        }
        CU_ASSERT_STRING_EQUAL(cf_isp_strerror(42), "unknown ISP return code");
        CU_ASSERT_PTR_NOT_NULL(strstr(cf_isp_strerror(CF_ISP_CMD_LOCKED), "U 23130"));
}

static void test_sectors(void)
{
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0), 0);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0x0FFF), 0);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0x1000), 1);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0xFFFF), 15);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0x10000), 16);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0x17FFF), 16);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0x18000), 17);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0x78000), 29);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0x7FFFF), 29);
        CU_ASSERT_EQUAL(cf_lpc_sector_of(0x80000), -1);
        uint32_t end = 0;
        for (int s = 0; s < CF_LPC_SECTORS; s++) {
                CU_ASSERT_EQUAL(cf_lpc_sector_start(s), end);
                CU_ASSERT_EQUAL(cf_lpc_sector_of(end), s);
                end += cf_lpc_sector_size(s);
        }
        CU_ASSERT_EQUAL(end, 512u * 1024u);
        CU_ASSERT_EQUAL(cf_lpc_sector_size(30), 0);
        CU_ASSERT_EQUAL(cf_lpc_sector_size(-1), 0);
        CU_ASSERT_EQUAL(cf_lpc_sector_count(512 * 1024), 30);
        CU_ASSERT_EQUAL(cf_lpc_sector_count(256 * 1024), 22);
        CU_ASSERT_EQUAL(cf_lpc_sector_count(128 * 1024), 18);
        CU_ASSERT_EQUAL(cf_lpc_sector_count(64 * 1024), 16);
        CU_ASSERT_EQUAL(cf_lpc_sector_count(32 * 1024), 8);
}

static void test_copy_sizes(void)
{
        CU_ASSERT_TRUE(cf_lpc_copy_size_ok(256));
        CU_ASSERT_TRUE(cf_lpc_copy_size_ok(512));
        CU_ASSERT_TRUE(cf_lpc_copy_size_ok(1024));
        CU_ASSERT_TRUE(cf_lpc_copy_size_ok(4096));
        CU_ASSERT_FALSE(cf_lpc_copy_size_ok(2048));
        CU_ASSERT_FALSE(cf_lpc_copy_size_ok(128));
        CU_ASSERT_FALSE(cf_lpc_copy_size_ok(0));
}

static void test_parts(void)
{
        const struct cf_lpc_part *p = cf_lpc_part_by_id(0x26013F37u);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_STRING_EQUAL(p->name, "LPC1768");
        CU_ASSERT_EQUAL(p->flash_size, 512u * 1024u);
        CU_ASSERT_EQUAL(p->ram_size, 32u * 1024u);
        CU_ASSERT_PTR_EQUAL(cf_lpc_part_by_name("lpc1768"), p);
        /* 0x26011922 is the LPC1764 lpctools ships in its parts file */
        p = cf_lpc_part_by_id(0x26011922u);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_STRING_EQUAL(p->name, "LPC1764");
        CU_ASSERT_EQUAL(p->flash_size, 128u * 1024u);
        CU_ASSERT_PTR_NULL(cf_lpc_part_by_id(0x12345678u));
        CU_ASSERT_PTR_NULL(cf_lpc_part_by_name("LPC17680"));
        CU_ASSERT_PTR_NULL(cf_lpc_part_by_name("LPC176"));
        size_t n;
        const struct cf_lpc_part *all = cf_lpc_parts(&n);
        CU_ASSERT(n >= 12);
        for (size_t i = 0; i < n; i++) {
                CU_ASSERT(all[i].flash_size <= CF_LPC_FLASH_MAX);
                CU_ASSERT(cf_lpc_sector_count(all[i].flash_size) >= 8);
                for (size_t k = i + 1; k < n; k++)
                        CU_ASSERT_NOT_EQUAL(all[i].id, all[k].id);
        }
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"uu seed example", test_uu_seed_example},
            {"uu zero is backquote", test_uu_zero_is_backquote},
            {"uu round trip 1..45", test_uu_full_line_roundtrip},
            {"uu malformed", test_uu_malformed},
            {"isp checksum", test_isp_checksum},
            {"vector checksum", test_vector_checksum},
            {"return codes", test_return_codes},
            {"sectors", test_sectors},
            {"copy sizes", test_copy_sizes},
            {"parts", test_parts},
            {NULL, NULL},
        };
        return cf_test_run("lpc-isp", tests);
}
