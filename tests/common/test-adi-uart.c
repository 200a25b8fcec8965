/* Tests of common/src/adi-uart.c against AN-1160's (seed 004) captured packets and its LFSR code. */
#include <errno.h>
#include <string.h>

#include "canfleet/adi-uart.h"
#include "cf-test.h"

/* The application note's CRC24_D32, one bit per array element, transcribed equation by equation
 * from seed 004 so that the library's mask table is checked against a second reading of the text. */
static unsigned long seed_crc24_d32(unsigned long old_crc, unsigned long data)
{
        unsigned long D[32], C[24], N[24], r = 0;
        for (int f = 0; f < 24; f++)
                C[f] = (old_crc >> f) & 1;
        for (int f = 0; f < 32; f++)
                D[f] = (data >> f) & 1;
        N[0] = D[31] ^ D[30] ^ D[29] ^ D[28] ^ D[27] ^ D[26] ^ D[25] ^ D[24] ^ D[23] ^ D[17] ^ D[16] ^
               D[15] ^ D[14] ^ D[13] ^ D[12] ^ D[11] ^ D[10] ^ D[9] ^ D[8] ^ D[7] ^ D[6] ^ D[5] ^ D[4] ^
               D[3] ^ D[2] ^ D[1] ^ D[0] ^ C[0] ^ C[1] ^ C[2] ^ C[3] ^ C[4] ^ C[5] ^ C[6] ^ C[7] ^ C[8] ^
               C[9] ^ C[15] ^ C[16] ^ C[17] ^ C[18] ^ C[19] ^ C[20] ^ C[21] ^ C[22] ^ C[23];
        N[1] = D[23] ^ D[18] ^ D[0] ^ C[10] ^ C[15];
        N[2] = D[24] ^ D[19] ^ D[1] ^ C[11] ^ C[16];
        N[3] = D[25] ^ D[20] ^ D[2] ^ C[12] ^ C[17];
        N[4] = D[26] ^ D[21] ^ D[3] ^ C[13] ^ C[18];
        N[5] = D[31] ^ D[30] ^ D[29] ^ D[28] ^ D[26] ^ D[25] ^ D[24] ^ D[23] ^ D[22] ^ D[17] ^ D[16] ^
               D[15] ^ D[14] ^ D[13] ^ D[12] ^ D[11] ^ D[10] ^ D[9] ^ D[8] ^ D[7] ^ D[6] ^ D[5] ^ D[3] ^
               D[2] ^ D[1] ^ D[0] ^ C[0] ^ C[1] ^ C[2] ^ C[3] ^ C[4] ^ C[5] ^ C[6] ^ C[7] ^ C[8] ^ C[9] ^
               C[14] ^ C[15] ^ C[16] ^ C[17] ^ C[18] ^ C[20] ^ C[21] ^ C[22] ^ C[23];
        N[6] = D[28] ^ D[18] ^ D[5] ^ D[0] ^ C[10] ^ C[20];
        N[7] = D[29] ^ D[19] ^ D[6] ^ D[1] ^ C[11] ^ C[21];
        N[8] = D[30] ^ D[20] ^ D[7] ^ D[2] ^ C[12] ^ C[22];
        N[9] = D[31] ^ D[21] ^ D[8] ^ D[3] ^ C[0] ^ C[13] ^ C[23];
        N[10] = D[22] ^ D[9] ^ D[4] ^ C[1] ^ C[14];
        N[11] = D[23] ^ D[10] ^ D[5] ^ C[2] ^ C[15];
        N[12] = D[24] ^ D[11] ^ D[6] ^ C[3] ^ C[16];
        N[13] = D[25] ^ D[12] ^ D[7] ^ C[4] ^ C[17];
        N[14] = D[26] ^ D[13] ^ D[8] ^ C[0] ^ C[5] ^ C[18];
        N[15] = D[27] ^ D[14] ^ D[9] ^ C[1] ^ C[6] ^ C[19];
        N[16] = D[28] ^ D[15] ^ D[10] ^ C[2] ^ C[7] ^ C[20];
        N[17] = D[29] ^ D[16] ^ D[11] ^ C[3] ^ C[8] ^ C[21];
        N[18] = D[30] ^ D[17] ^ D[12] ^ C[4] ^ C[9] ^ C[22];
        N[19] = D[31] ^ D[18] ^ D[13] ^ C[5] ^ C[10] ^ C[23];
        N[20] = D[19] ^ D[14] ^ C[6] ^ C[11];
        N[21] = D[20] ^ D[15] ^ C[7] ^ C[12];
        N[22] = D[21] ^ D[16] ^ C[8] ^ C[13];
        N[23] = D[31] ^ D[30] ^ D[29] ^ D[28] ^ D[27] ^ D[26] ^ D[25] ^ D[24] ^ D[23] ^ D[22] ^ D[16] ^
                D[15] ^ D[14] ^ D[13] ^ D[12] ^ D[11] ^ D[10] ^ D[9] ^ D[8] ^ D[7] ^ D[6] ^ D[5] ^ D[4] ^
                D[3] ^ D[2] ^ D[1] ^ D[0] ^ C[0] ^ C[1] ^ C[2] ^ C[3] ^ C[4] ^ C[5] ^ C[6] ^ C[7] ^ C[8] ^
                C[14] ^ C[15] ^ C[16] ^ C[17] ^ C[18] ^ C[19] ^ C[20] ^ C[21] ^ C[22] ^ C[23];
        for (int f = 0; f < 24; f++)
                r |= N[f] << f;
        return r & 0xFFFFFF;
}

/* GenerateChecksumCRC24_D32 over words as a little-endian Cortex-M3 reads them from flash. */
static uint32_t seed_signature(const uint8_t *p, size_t n)
{
        unsigned long lfsr = 0xFFFFFF;
        for (size_t i = 0; i + 4 <= n; i += 4)
                lfsr = seed_crc24_d32(lfsr, (unsigned long) p[i] | (unsigned long) p[i + 1] << 8 |
                                                (unsigned long) p[i + 2] << 16 |
                                                (unsigned long) p[i + 3] << 24);
        return (uint32_t) lfsr;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
        for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                p[i] = (uint8_t) (seed >> 16);
        }
}

static void test_lfsr_matches_seed_code(void)
{
        uint8_t page[CF_ADI_PAGE_SIZE];
        for (uint32_t s = 1; s <= 64; s++) {
                fill(page, sizeof(page), s);
                CU_ASSERT_EQUAL(cf_adi_page_signature(page), seed_signature(page, CF_ADI_PAGE_SIZE - 4));
                CU_ASSERT_EQUAL(cf_adi_lfsr_signature(page, 4 * s), seed_signature(page, 4 * s));
        }
        /* one word at a time, each single bit of data and of the old value */
        for (int b = 0; b < 32; b++) {
                uint8_t w[4] = {0};
                w[b / 8] = (uint8_t) (1u << (b % 8));
                CU_ASSERT_EQUAL(cf_adi_lfsr_signature(w, 4), seed_signature(w, 4));
        }
        for (int b = 0; b < 24; b++)
                CU_ASSERT_EQUAL(seed_crc24_d32(1ul << b, 0) != 0, 1);
}

static void test_lfsr_fixed_values(void)
{
        uint8_t page[CF_ADI_PAGE_SIZE] = {0};
        /* nothing signed: the initial value */
        CU_ASSERT_EQUAL(cf_adi_lfsr_signature(page, 0), 0xFFFFFFu);
        CU_ASSERT_EQUAL(cf_adi_lfsr_signature(page, 3), 0xFFFFFFu);
        /* pinned values (from the seed's code, see above), so a change of word order shows */
        memset(page, 0xFF, sizeof(page));
        uint32_t erased = cf_adi_page_signature(page);
        CU_ASSERT_EQUAL(erased, seed_signature(page, 508));
        CU_ASSERT(erased <= 0xFFFFFFu);
        uint8_t le[4] = {0x78, 0x56, 0x34, 0x12}, be[4] = {0x12, 0x34, 0x56, 0x78};
        CU_ASSERT_EQUAL(cf_adi_lfsr_signature(le, 4), (uint32_t) seed_crc24_d32(0xFFFFFF, 0x12345678));
        CU_ASSERT_NOT_EQUAL(cf_adi_lfsr_signature(le, 4), cf_adi_lfsr_signature(be, 4));
        /* the last word of a page is not signed (the loader checks it in verify step 1) */
        fill(page, sizeof(page), 7);
        uint32_t before = cf_adi_page_signature(page);
        page[511] ^= 0xFF;
        CU_ASSERT_EQUAL(cf_adi_page_signature(page), before);
        page[507] ^= 0x01;
        CU_ASSERT_NOT_EQUAL(cf_adi_page_signature(page), before);
}

static void expect_build(uint8_t cmd, uint32_t value, const uint8_t *data, size_t n, const uint8_t *want,
                         size_t want_len)
{
        uint8_t out[CF_ADI_PACKET_MAX];
        CU_ASSERT_EQUAL_FATAL(cf_adi_packet_build(cmd, value, data, n, out), want_len);
        CU_ASSERT_EQUAL(memcmp(out, want, want_len), 0);
        struct cf_adi_packet p;
        CU_ASSERT_EQUAL(cf_adi_packet_parse(want, want_len, &p), (int) want_len);
        CU_ASSERT_EQUAL(p.cmd, cmd);
        CU_ASSERT_EQUAL(p.value, value);
        CU_ASSERT_EQUAL(p.n, n);
        CU_ASSERT_EQUAL(memcmp(p.data, data, n), 0);
}

/* Every packet captured in AN-1160's "Command Examples". */
static void test_packets_of_the_note(void)
{
        expect_build('E', 0x200, (const uint8_t[]){0x01}, 1,
                     (const uint8_t[]){0x07, 0x0E, 0x06, 0x45, 0x00, 0x00, 0x02, 0x00, 0x01, 0xB2}, 10);
        expect_build('E', 0, (const uint8_t[]){0x00}, 1,
                     (const uint8_t[]){0x07, 0x0E, 0x06, 0x45, 0x00, 0x00, 0x00, 0x00, 0x00, 0xB5}, 10);
        static const uint8_t wdata[16] = {0x77, 0xFF, 0x2C, 0xB1, 0x00, 0x20, 0x00, 0xF0,
                                          0x5A, 0xFC, 0x08, 0xB1, 0x01, 0x20, 0x00, 0xE0};
        static const uint8_t wpkt[25] = {0x07, 0x0E, 0x15, 0x57, 0x00, 0x00, 0x02, 0x00, 0x77,
                                         0xFF, 0x2C, 0xB1, 0x00, 0x20, 0x00, 0xF0, 0x5A, 0xFC,
                                         0x08, 0xB1, 0x01, 0x20, 0x00, 0xE0, 0x1F};
        expect_build('W', 0x200, wdata, 16, wpkt, 25);
        expect_build(
            'V', 0x80000000u, (const uint8_t[]){0x44, 0x33, 0x22, 0x11}, 4,
            (const uint8_t[]){0x07, 0x0E, 0x09, 0x56, 0x80, 0x00, 0x00, 0x00, 0x44, 0x33, 0x22, 0x11, 0x77},
            13);
        expect_build(
            'V', 0x200, (const uint8_t[]){0x81, 0x1B, 0x84, 0x00}, 4,
            (const uint8_t[]){0x07, 0x0E, 0x09, 0x56, 0x00, 0x00, 0x02, 0x00, 0x81, 0x1B, 0x84, 0x00, 0x7F},
            13);
        expect_build('R', 1, NULL, 0,
                     (const uint8_t[]){0x07, 0x0E, 0x05, 0x52, 0x00, 0x00, 0x00, 0x01, 0xA8}, 9);
}

static void test_packet_errors(void)
{
        uint8_t pkt[CF_ADI_PACKET_MAX];
        struct cf_adi_packet p;
        size_t n = cf_adi_packet_build('R', 1, NULL, 0, pkt);
        /* every proper prefix: read more */
        for (size_t k = 0; k < n; k++)
                CU_ASSERT_EQUAL(cf_adi_packet_parse(pkt, k, &p), 0);
        /* a flipped bit anywhere after the start id: bad checksum */
        for (size_t k = 3; k < n; k++) {
                pkt[k] ^= 0x10;
                CU_ASSERT_EQUAL(cf_adi_packet_parse(pkt, n, &p), -EBADMSG);
                pkt[k] ^= 0x10;
        }
        pkt[0] = 0x08;
        CU_ASSERT_EQUAL(cf_adi_packet_parse(pkt, n, &p), -EINVAL);
        pkt[0] = 0x07;
        pkt[1] = 0x0F;
        CU_ASSERT_EQUAL(cf_adi_packet_parse(pkt, n, &p), -EINVAL);
        CU_ASSERT_EQUAL(
            cf_adi_packet_parse((const uint8_t[]){0x07, 0x0E, 0x04, 0x52, 0x00, 0x00, 0x00, 0xAA}, 8, &p),
            -EINVAL);
        /* the largest packet: 250 data bytes */
        uint8_t data[251];
        fill(data, sizeof(data), 3);
        CU_ASSERT_EQUAL(cf_adi_packet_build('W', 0x1FF00, data, 250, pkt), 259);
        CU_ASSERT_EQUAL(pkt[2], 0xFF);
        CU_ASSERT_EQUAL(cf_adi_packet_parse(pkt, 259, &p), 259);
        CU_ASSERT_EQUAL(p.n, 250);
        CU_ASSERT_EQUAL(cf_adi_packet_build('W', 0, data, 251, pkt), 0);
        /* trailing bytes after a packet are the next packet's business */
        n = cf_adi_packet_build('R', 1, NULL, 0, pkt);
        pkt[n] = 0x07;
        CU_ASSERT_EQUAL(cf_adi_packet_parse(pkt, n + 1, &p), (int) n);
}

static void test_id_packet(void)
{
        uint8_t id[CF_ADI_ID_LEN];
        cf_adi_id_build("ADuCM360", "I23", id);
        CU_ASSERT_EQUAL(memcmp(id, "ADuCM360       I23\0\0\0\0\n\r", 24), 0);
        struct cf_adi_id p;
        CU_ASSERT_EQUAL(cf_adi_id_parse(id, sizeof(id), &p), 0);
        CU_ASSERT_STRING_EQUAL(p.product, "ADuCM360");
        CU_ASSERT_STRING_EQUAL(p.version, "I23");
        CU_ASSERT_EQUAL(cf_adi_id_parse(id, 23, &p), -EINVAL);
        id[23] = '\n';
        CU_ASSERT_EQUAL(cf_adi_id_parse(id, 24, &p), -EINVAL);
        id[23] = '\r';
        id[3] = 0x01;
        CU_ASSERT_EQUAL(cf_adi_id_parse(id, 24, &p), -EINVAL);
        cf_adi_id_build("", "I23", id);
        CU_ASSERT_EQUAL(cf_adi_id_parse(id, 24, &p), -EINVAL);
        /* a product name longer than 15 chars is cut */
        cf_adi_id_build("ADuCM360-ABCDEFGHIJ", "X", id);
        CU_ASSERT_EQUAL(cf_adi_id_parse(id, 24, &p), 0);
        CU_ASSERT_STRING_EQUAL(p.product, "ADuCM360-ABCDEF");
        CU_ASSERT_STRING_EQUAL(p.version, "X");
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"lfsr matches the seed's code", test_lfsr_matches_seed_code},
            {"lfsr fixed values", test_lfsr_fixed_values},
            {"packets of AN-1160", test_packets_of_the_note},
            {"packet errors", test_packet_errors},
            {"id packet", test_id_packet},
            {NULL, NULL},
        };
        return cf_test_run("adi-uart", tests);
}
