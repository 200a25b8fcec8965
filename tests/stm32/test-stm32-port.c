/* Host unit tests of the STM32F4 port's pure logic: area A guard, PSIZE, CRC seed, CAN timing, records. */
#include <errno.h>
#include <string.h>

#include "can-timing.h"
#include "canfleet/crc32.h"
#include "canfleet/layout.h"
#include "cf-test.h"
#include "flash-policy.h"
#include "handoff.h"
#include "log-line.h"
#include "provision.h"

static void test_erase_never_area_a(void)
{
        for (unsigned s = 0; s < 4; s++)
                CU_ASSERT_EQUAL(cf_stm32_erase_allowed(s), -EACCES);
        /* sector 4: the install journal */
        for (unsigned s = 4; s < 12; s++)
                CU_ASSERT_EQUAL(cf_stm32_erase_allowed(s), 0);
        CU_ASSERT_EQUAL(cf_stm32_erase_allowed(12), -EINVAL);
        CU_ASSERT_EQUAL(cf_stm32_erase_allowed(~0u), -EINVAL);
}

static void test_program_never_area_a(void)
{
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x08000000u, 4), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x0800C000u, 64), -EACCES); /* provisioning record */
        /* the install journal, sector 4: inside it only */
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x08010000u, 16), 0);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x0801FFF0u, 16), 0);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x0801FFFFu, 1), 0);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x0800FFFFu, 2), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x0801FFFFu, 2), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x08010000u, 0xFFFFFFF0u), -EINVAL);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x08020000u, 4), 0);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x08060000u, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x080FFFFCu, 4), 0);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x080FFFFFu, 2), -EINVAL);
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x07FFFFFFu, 2), -EINVAL);
        /* A length that would wrap around the address space must not sneak into A. */
        CU_ASSERT_EQUAL(cf_stm32_program_allowed(0x08020000u, 0xFFFFFFFFu), -EINVAL);
        /* Every sector of A but the journal's, byte by byte at its edges. */
        for (unsigned s = 0; s < 4; s++) {
                CU_ASSERT_EQUAL(cf_stm32_program_allowed(cf_flash_sectors[s].addr, 1), -EACCES);
                CU_ASSERT_EQUAL(
                    cf_stm32_program_allowed(cf_flash_sectors[s].addr + cf_flash_sectors[s].size - 1, 1),
                    -EACCES);
        }
}

static void test_program_width_and_psize(void)
{
        CU_ASSERT_EQUAL(cf_stm32_program_width(0x08020000u, 8), 4);
        CU_ASSERT_EQUAL(cf_stm32_program_width(0x08020000u, 4), 4);
        CU_ASSERT_EQUAL(cf_stm32_program_width(0x08020000u, 3), 2);
        CU_ASSERT_EQUAL(cf_stm32_program_width(0x08020000u, 1), 1);
        CU_ASSERT_EQUAL(cf_stm32_program_width(0x08020001u, 8), 1);
        CU_ASSERT_EQUAL(cf_stm32_program_width(0x08020002u, 8), 2);
        /* Group slots: 6 bytes at 6 * slot are one word and one half-word, in either order. */
        for (uint32_t slot = 0; slot < 8; slot++) {
                uint32_t at = 0x08060000u + 6u * slot;
                unsigned w1 = cf_stm32_program_width(at, 6), w2 = cf_stm32_program_width(at + w1, 6 - w1);
                CU_ASSERT_EQUAL(w1 + w2, 6);
                CU_ASSERT_EQUAL(slot % 2 ? w1 : w2, 2);
        }
        /* Walking an unaligned range covers each byte exactly once and uses words in the middle. */
        uint32_t a = 0x08020003u;
        size_t left = 13, words = 0, bytes = 0;
        while (left) {
                unsigned w = cf_stm32_program_width(a, left);
                CU_ASSERT_TRUE(w == 1 || (w == 2 && (a & 1u) == 0) || (w == 4 && (a & 3u) == 0));
                if (w == 4)
                        words++;
                else
                        bytes++;
                a += w;
                left -= w;
        }
        CU_ASSERT_EQUAL(a, 0x08020003u + 13);
        CU_ASSERT_EQUAL(words, 3);
        CU_ASSERT_EQUAL(bytes, 1);
        /* RM0090 FLASH_CR PSIZE[9:8]: 00 x8, 01 x16, 10 x32. */
        CU_ASSERT_EQUAL(cf_stm32_psize_bits(1), 0x000u);
        CU_ASSERT_EQUAL(cf_stm32_psize_bits(2), 0x100u);
        CU_ASSERT_EQUAL(cf_stm32_psize_bits(4), 0x200u);
}

static void test_crc_seed_word(void)
{
        /* The unit is reset to 0xFFFFFFFF; one seed word must land its register on any value. */
        const uint32_t targets[] = {0xDF8A8A2Bu, 0u, 0xFFFFFFFFu, 0x80000000u, 0x00000001u, 0x6327A3F6u};
        for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
                uint32_t w = cf_stm32_crc_seed_word(targets[i]);
                CU_ASSERT_EQUAL(cf_crc32_words(CF_CRC32_INIT, &w, 1), targets[i]);
        }
        /* Continuing a split computation through the seed gives the one-pass CRC. */
        uint8_t data[64];
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i * 37 + 11);
        uint32_t whole = cf_crc32_le(CF_CRC32_INIT, data, sizeof(data));
        uint32_t first = cf_crc32_le(CF_CRC32_INIT, data, 24);
        uint32_t seed = cf_stm32_crc_seed_word(first);
        uint32_t resumed =
            cf_crc32_le(cf_crc32_words(CF_CRC32_INIT, &seed, 1), data + 24, sizeof(data) - 24);
        CU_ASSERT_EQUAL(resumed, whole);
}

static void test_can_timing(void)
{
        struct cf_can_timing t;
        CU_ASSERT_EQUAL(cf_can_timing_compute(42000000u, 500000u, &t), 0);
        CU_ASSERT_EQUAL(t.prescaler, 6);
        CU_ASSERT_EQUAL(t.tq, 14);
        CU_ASSERT_EQUAL(t.ts1, 11);
        CU_ASSERT_EQUAL(t.ts2, 2);
        CU_ASSERT_EQUAL(t.sjw, 2);
        /* BRP 5, TS1 10, TS2 1, SJW 1 (all stored minus one). */
        CU_ASSERT_EQUAL(cf_can_timing_btr(&t), 0x011A0005u);

        CU_ASSERT_EQUAL(cf_can_timing_compute(16000000u, 500000u, &t), 0);
        CU_ASSERT_EQUAL(t.prescaler, 2);
        CU_ASSERT_EQUAL(t.tq, 16);
        CU_ASSERT_EQUAL(t.sample_permille, 875);

        /* Every rate the gateway offers, on both clock trees: exact, sample point 75..90 %. */
        const uint32_t rates[] = {125000u, 250000u, 500000u, 1000000u};
        const uint32_t clocks[] = {42000000u, 16000000u};
        for (size_t c = 0; c < 2; c++)
                for (size_t r = 0; r < 4; r++) {
                        CU_ASSERT_EQUAL_FATAL(cf_can_timing_compute(clocks[c], rates[r], &t), 0);
                        CU_ASSERT_EQUAL((uint64_t) t.prescaler * t.tq * rates[r], clocks[c]);
                        CU_ASSERT_EQUAL(1 + t.ts1 + t.ts2, t.tq);
                        CU_ASSERT_TRUE(t.ts1 >= 1 && t.ts1 <= 16 && t.ts2 >= 1 && t.ts2 <= 8);
                        CU_ASSERT_TRUE(t.sample_permille >= 750 && t.sample_permille <= 900);
                }
        /* No exact setting: refused rather than approximated. */
        CU_ASSERT_EQUAL(cf_can_timing_compute(42000000u, 33333u, &t), -EINVAL);
        CU_ASSERT_EQUAL(cf_can_timing_compute(42000000u, 0, &t), -EINVAL);
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void make_record(uint8_t rec[CF_PROVISION_SIZE], uint16_t station, uint32_t cro, uint32_t dto)
{
        memset(rec, 0, CF_PROVISION_SIZE);
        put32(rec, CF_PROVISION_MAGIC);
        rec[4] = 1;
        rec[6] = (uint8_t) station;
        rec[7] = (uint8_t) (station >> 8);
        put32(rec + 8, cro);
        put32(rec + 12, dto);
        rec[16] = 0x34;
        rec[17] = 0x12;
        rec[18] = CF_PROVISION_FLAG_ECHO;
        put32(rec + 20, 250000u);
        for (int i = 0; i < 32; i++)
                rec[24 + i] = (uint8_t) (0xA0 + i);
        put32(rec + 60, cf_crc32_le(CF_CRC32_INIT, rec, 60));
}

static void test_provision_record(void)
{
        uint8_t rec[CF_PROVISION_SIZE];
        struct cf_provision p;

        make_record(rec, 5, 0x685, 0x6C5);
        CU_ASSERT_EQUAL(cf_provision_parse(rec, &p), CF_PROVISION_OK);
        CU_ASSERT_EQUAL(p.cfg.station, 5);
        CU_ASSERT_EQUAL(p.cfg.cro_id, 0x685u);
        CU_ASSERT_EQUAL(p.cfg.dto_id, 0x6C5u);
        CU_ASSERT_EQUAL(p.cfg.hw_id, 0x1234);
        CU_ASSERT_TRUE(p.cfg.seedkey_echo);
        CU_ASSERT_EQUAL(p.bitrate, 250000u);
        CU_ASSERT_EQUAL(p.cfg.node_secret[0], 0xA0);
        CU_ASSERT_EQUAL(p.cfg.node_secret[31], 0xBF);

        /* Erased sector: defaults. */
        memset(rec, 0xFF, sizeof(rec));
        CU_ASSERT_EQUAL(cf_provision_parse(rec, &p), CF_PROVISION_MISSING);
        CU_ASSERT_EQUAL(p.cfg.station, 1);
        CU_ASSERT_EQUAL(p.cfg.cro_id, 0x681u);
        CU_ASSERT_EQUAL(p.cfg.dto_id, 0x6C1u);
        CU_ASSERT_EQUAL(p.bitrate, 500000u);
        CU_ASSERT_FALSE(p.cfg.seedkey_echo);

        /* One flipped bit anywhere: refused, defaults again. */
        make_record(rec, 5, 0x685, 0x6C5);
        rec[30] ^= 0x10;
        CU_ASSERT_EQUAL(cf_provision_parse(rec, &p), CF_PROVISION_BAD_CRC);
        CU_ASSERT_EQUAL(p.cfg.cro_id, 0x681u);

        /* Consistent CRC but nonsense ids. */
        make_record(rec, 5, 0x900, 0x6C5);
        CU_ASSERT_EQUAL(cf_provision_parse(rec, &p), CF_PROVISION_BAD_FIELD);
        make_record(rec, 0, 0x680, 0x6C0);
        CU_ASSERT_EQUAL(cf_provision_parse(rec, &p), CF_PROVISION_BAD_FIELD);
        make_record(rec, 5, 0x685, 0x685);
        CU_ASSERT_EQUAL(cf_provision_parse(rec, &p), CF_PROVISION_BAD_FIELD);
}

static void test_handoff(void)
{
        struct cf_handoff h;
        uint32_t count;
        uint8_t last;

        memset(&h, 0x5A, sizeof(h)); /* RAM after power-on */
        CU_ASSERT_FALSE(cf_handoff_read(&h, &count, &last));
        CU_ASSERT_EQUAL(cf_handoff_next_boot_count(&h, false), 1);

        cf_handoff_write(&h, 7, 1, 1);
        CU_ASSERT_TRUE(cf_handoff_read(&h, &count, &last));
        CU_ASSERT_EQUAL(count, 7);
        CU_ASSERT_EQUAL(last, 1);
        CU_ASSERT_EQUAL(cf_handoff_next_boot_count(&h, false), 8);
        /* A power-on reset starts counting again even if the RAM kept its content. */
        CU_ASSERT_EQUAL(cf_handoff_next_boot_count(&h, true), 1);

        h.boot_count ^= 4; /* a corrupted word is not believed */
        CU_ASSERT_FALSE(cf_handoff_read(&h, &count, &last));
        CU_ASSERT_EQUAL(cf_handoff_next_boot_count(&h, false), 1);
}

static void test_log_line(void)
{
        struct cf_line l;
        cf_line_hex(cf_line_str(cf_line_init(&l), "id 0x"), 0x681, 3);
        CU_ASSERT_STRING_EQUAL(l.buf, "id 0x681");
        cf_line_int(cf_line_dec(cf_line_str(cf_line_init(&l), ""), 168000000u), -110);
        CU_ASSERT_STRING_EQUAL(l.buf, "168000000-110");
        cf_line_version(cf_line_init(&l), 1, 20, 300);
        CU_ASSERT_STRING_EQUAL(l.buf, "1.20.300");
        cf_line_dec(cf_line_init(&l), 0);
        CU_ASSERT_STRING_EQUAL(l.buf, "0");
        cf_line_int(cf_line_init(&l), INT32_MIN);
        CU_ASSERT_STRING_EQUAL(l.buf, "-2147483648");
        /* Long text is cut at CF_LINE_MAX, still terminated. */
        cf_line_init(&l);
        for (int i = 0; i < 50; i++)
                cf_line_str(&l, "abcd");
        CU_ASSERT_EQUAL(l.n, CF_LINE_MAX);
        CU_ASSERT_EQUAL(strlen(l.buf), CF_LINE_MAX);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"erase never area A", test_erase_never_area_a},
            {"program never area A", test_program_never_area_a},
            {"program width and PSIZE", test_program_width_and_psize},
            {"CRC unit seed word", test_crc_seed_word},
            {"CAN bit timing", test_can_timing},
            {"provisioning record", test_provision_record},
            {"noinit handoff", test_handoff},
            {"log line", test_log_line},
            {NULL, NULL},
        };
        return cf_test_run("stm32-port", tests);
}
