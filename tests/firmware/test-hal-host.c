/* Tests of the host HAL: STM32F4 flash rules, the timing model, operation counting and power cuts. */
#include <errno.h>
#include <string.h>

#include "canfleet/crc32.h"
#include "cf-test.h"
#include "fw-fixture.h"
#include "journal.h"

#define B           CF_AREA_APP_ADDR
#define C           CF_AREA_STAGING_ADDR
#define AT(f, addr) ((f)->flash[(addr) -CF_FLASH_BASE])

static void setup(struct fx *f)
{
        fx_init(f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f->hal), 0);
}

static void test_init_validates(void)
{
        struct cf_hal h = {0};

        CU_ASSERT_EQUAL(cf_hal_host_init(&h), -EINVAL);
}

static void test_program_only_erased(void)
{
        struct fx f;
        const uint8_t a[4] = {0x12, 0x34, 0x56, 0x78}, b[4] = {0x00, 0x00, 0x00, 0x00};

        setup(&f);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 0x10, a, 4), 0);
        CU_ASSERT_EQUAL(memcmp(&AT(&f, C + 0x10), a, 4), 0);
        /* Clearing more bits of programmed bytes would work on silicon, but is never allowed. */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 0x10, b, 4), -EIO);
        CU_ASSERT_EQUAL(memcmp(&AT(&f, C + 0x10), a, 4), 0);
        /* One non-erased byte at the end of the range refuses the whole write, nothing changes. */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 0x0D, b, 4), -EIO);
        CU_ASSERT_EQUAL(AT(&f, C + 0x0D), 0xFF);
        CU_ASSERT_EQUAL(AT(&f, C + 0x0E), 0xFF);
        CU_ASSERT_EQUAL(AT(&f, C + 0x0F), 0xFF);
        CU_ASSERT_EQUAL(f.hal.programs, 1);
        fx_fini(&f);
}

/* --flash-fault install: programs into B fail and write nothing; C, erases and reads work. */
static void test_fault_program_app(void)
{
        struct fx f;
        const uint8_t d[4] = {1, 2, 3, 4};

        setup(&f);
        f.hal.fault_program_app = true;
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_AREA_APP_ADDR + 0x100, d, 4), -EIO);
        CU_ASSERT_EQUAL(AT(&f, CF_AREA_APP_ADDR + 0x100), 0xFF);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 1);
        CU_ASSERT_EQUAL(f.hal.programs, 0);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_AREA_STAGING_ADDR, d, 4), 0);
        CU_ASSERT_EQUAL(AT(&f, CF_AREA_STAGING_ADDR + 3), 4);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 5), 0);
        fx_fini(&f);
}

static void test_area_a_refused(void)
{
        struct fx f;
        const uint8_t d[2] = {1, 2};

        setup(&f);
        /* Sectors 0-3: the bootloader and its provisioning record. Sector 4 is the install journal. */
        for (unsigned s = 0; s < 4; s++)
                CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, s), -EACCES);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_AREA_BOOT_ADDR, d, 2), -EACCES);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_JOURNAL_ADDR - 1, d, 2), -EACCES);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_AREA_BOOT_ADDR + CF_AREA_BOOT_SIZE - 1, d, 2),
                        -EACCES); /* journal and B at once */
        CU_ASSERT_EQUAL(AT(&f, CF_AREA_BOOT_ADDR), 0xFF);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 12), -EINVAL);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_FLASH_BASE + CF_FLASH_SIZE - 1, d, 2), -EINVAL);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 0);
        /* The journal's sector, and sector 5, the first one outside A. */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_JOURNAL_ADDR, d, 2), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_AREA_BOOT_ADDR + CF_AREA_BOOT_SIZE - 1, d, 1), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, CF_JOURNAL_SECTOR), 0);
        CU_ASSERT_EQUAL(AT(&f, CF_JOURNAL_ADDR), 0xFF);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 5), 0);
        fx_fini(&f);
}

static void test_erase_whole_sector(void)
{
        struct fx f;

        setup(&f);
        memset(f.flash, 0x00, CF_FLASH_SIZE);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 7), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_poll(&f.hal), 0);
        const struct cf_flash_sector *s = &cf_flash_sectors[7];
        for (uint32_t i = 0; i < s->size; i++)
                if (AT(&f, s->addr + i) != 0xFF) {
                        CU_FAIL("sector 7 not erased");
                        break;
                }
        CU_ASSERT_EQUAL(AT(&f, s->addr - 1), 0x00);
        CU_ASSERT_EQUAL(AT(&f, s->addr + s->size), 0x00);
        CU_ASSERT_EQUAL(f.hal.erases, 1);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 1);
        fx_fini(&f);
}

static void test_erase_timing(void)
{
        struct fx f;
        const uint8_t d[4] = {1, 2, 3, 4};

        fx_init(&f);
        f.hal.erase_us_per_kb = 8000;
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        memset(&AT(&f, B), 0x00, 16);
        CU_ASSERT_EQUAL(cf_hal_flash_poll(&f.hal), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 5), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_poll(&f.hal), -EINPROGRESS);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 6), -EBUSY);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C, d, 4), -EBUSY);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 1);
        /* 128 KB at 8000 µs/KB: 1.024 s. */
        f.now_us += 1024000 - 1;
        CU_ASSERT_EQUAL(cf_hal_flash_poll(&f.hal), -EINPROGRESS);
        f.now_us += 1;
        CU_ASSERT_EQUAL(cf_hal_flash_poll(&f.hal), 0);
        CU_ASSERT_EQUAL(AT(&f, B), 0xFF);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C, d, 4), 0);
        fx_fini(&f);
}

static void test_program_timing(void)
{
        struct fx f;
        const uint8_t d[8] = {1, 2, 3, 4, 5, 6, 7, 8};

        fx_init(&f);
        f.hal.program_us_per_word = 16;
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C, d, 8), 0);
        /* Two words: busy for 32 µs. */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 8, d, 8), -EBUSY);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 8), -EBUSY);
        f.now_us += 31;
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 8, d, 8), -EBUSY);
        f.now_us += 1;
        /* Unaligned: 8 bytes at offset 2 touch three words, 48 µs. */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 0x22, d, 8), 0);
        f.now_us += 47;
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 0x40, d, 1), -EBUSY);
        f.now_us += 1;
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 0x40, d, 1), 0);
        CU_ASSERT_EQUAL(f.hal.programs, 3);
        CU_ASSERT_EQUAL(f.hal.program_bytes, 17);
        fx_fini(&f);
}

static void test_op_counting(void)
{
        struct fx f;
        const uint8_t d[3] = {1, 2, 3};

        setup(&f);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 9), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_AREA_DATA_ADDR, d, 3), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_AREA_DATA_ADDR + 3, d, 2), 0);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 3);
        CU_ASSERT_EQUAL(f.hal.erases, 1);
        CU_ASSERT_EQUAL(f.hal.programs, 2);
        CU_ASSERT_EQUAL(f.hal.program_bytes, 5);
        /* Nothing to write is no operation. */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, CF_AREA_DATA_ADDR + 8, d, 0), 0);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 3);
        /* The factory programmer is not an operation. */
        cf_hal_host_poke(&f.hal, B, d, 3);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 3);
        CU_ASSERT_EQUAL(AT(&f, B + 2), 3);
        fx_fini(&f);
}

static void test_cut_plain(void)
{
        struct fx f;
        const uint8_t d[4] = {0x11, 0x22, 0x33, 0x44};

        setup(&f);
        f.hal.cut_at_op = 2;
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C, d, 4), 0);
        CU_ASSERT_FALSE(f.hal.powered_off);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 4, d, 4), -EIO);
        CU_ASSERT_TRUE(f.hal.powered_off);
        CU_ASSERT_EQUAL(AT(&f, C + 4), 0xFF);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 8, d, 4), -EIO);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 7), -EIO);
        CU_ASSERT_EQUAL(AT(&f, C), 0x11);
        CU_ASSERT_EQUAL(AT(&f, C + 8), 0xFF);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 2);
        /* A dead node sends nothing. */
        CU_ASSERT_EQUAL(cf_hal_can_send(&f.hal, 0x6C5, d, 4), 0);
        CU_ASSERT_EQUAL(f.ntx, 0);
        /* Power up again: the flash as it was, operations work again, counters go on. */
        CU_ASSERT_EQUAL(cf_hal_host_init(&f.hal), 0);
        CU_ASSERT_FALSE(f.hal.powered_off);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C + 4, d, 4), 0);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 3);
        fx_fini(&f);
}

static void test_cut_torn_program(void)
{
        struct fx f;
        const uint8_t d[8] = {0x00, 0x01, 0x02, 0x30, 0x04, 0x05, 0x06, 0x07};

        setup(&f);
        f.hal.cut_at_op = 1;
        f.hal.cut_torn = true;
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C, d, 8), -EIO);
        CU_ASSERT_TRUE(f.hal.powered_off);
        CU_ASSERT_EQUAL(memcmp(&AT(&f, C), d, 3), 0);
        /* The last byte of the half: some of its bits cleared, not all. */
        CU_ASSERT_NOT_EQUAL(AT(&f, C + 3), 0xFF);
        CU_ASSERT_NOT_EQUAL(AT(&f, C + 3), 0x30);
        CU_ASSERT_EQUAL(AT(&f, C + 3) & 0x30, 0x30);
        for (unsigned i = 4; i < 8; i++)
                CU_ASSERT_EQUAL(AT(&f, C + i), 0xFF);
        fx_fini(&f);
}

static void test_cut_torn_erase(void)
{
        struct fx f;
        const struct cf_flash_sector *s = &cf_flash_sectors[6];

        setup(&f);
        memset(&AT(&f, s->addr), 0x00, s->size);
        f.hal.cut_at_op = 1;
        f.hal.cut_torn = true;
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 6), -EIO);
        CU_ASSERT_TRUE(f.hal.powered_off);
        CU_ASSERT_EQUAL(AT(&f, s->addr), 0xFF);
        CU_ASSERT_EQUAL(AT(&f, s->addr + s->size / 2 - 1), 0xFF);
        CU_ASSERT_EQUAL(AT(&f, s->addr + s->size / 2), 0x00);
        CU_ASSERT_EQUAL(AT(&f, s->addr + s->size - 1), 0x00);
        CU_ASSERT_EQUAL(f.hal.erases, 0);
        fx_fini(&f);
}

static void test_cut_plain_erase(void)
{
        struct fx f;

        setup(&f);
        memset(&AT(&f, C), 0x00, 16);
        f.hal.cut_at_op = 1;
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 7), -EIO);
        CU_ASSERT_EQUAL(AT(&f, C), 0x00);
        CU_ASSERT_EQUAL(cf_hal_flash_poll(&f.hal), -EIO);
        fx_fini(&f);
}

static void test_random_seeded(void)
{
        struct fx f, g;
        uint8_t a[37], b[37], c[37];

        setup(&f);
        setup(&g);
        cf_hal_random(&f.hal, a, sizeof(a));
        cf_hal_random(&g.hal, b, sizeof(b));
        CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
        cf_hal_random(&f.hal, c, sizeof(c));
        CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(a)), 0);
        /* A power cycle goes on with the sequence instead of replaying it. */
        CU_ASSERT_EQUAL(cf_hal_host_init(&g.hal), 0);
        cf_hal_random(&g.hal, b, sizeof(b));
        CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0);
        fx_fini(&f);
        fx_fini(&g);

        /* Seed 0: from /dev/urandom, unlike the fixed seed. */
        fx_init(&g);
        g.hal.rng_seed = 0;
        CU_ASSERT_EQUAL(cf_hal_host_init(&g.hal), 0);
        CU_ASSERT_NOT_EQUAL(g.hal.rng, 0);
        cf_hal_random(&g.hal, b, sizeof(b));
        CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0);
        fx_fini(&g);
}

static char logged[128];
static void log_cb(void *ctx, const char *msg)
{
        (void) ctx;
        snprintf(logged, sizeof(logged), "%s", msg);
}

static void test_misc(void)
{
        struct fx f;
        uint8_t uid[12];
        const uint8_t d[8] = {1, 2, 3, 4, 5, 6, 7, 8};

        setup(&f);
        cf_hal_uid(&f.hal, uid);
        CU_ASSERT_EQUAL(memcmp(uid, f.hal.uid, 12), 0);
        cf_hal_watchdog_kick(&f.hal);
        cf_hal_watchdog_kick(&f.hal);
        CU_ASSERT_EQUAL(f.hal.watchdog_kicks, 2);
        CU_ASSERT_FALSE(f.hal.reset_requested);
        cf_hal_reset(&f.hal);
        CU_ASSERT_TRUE(f.hal.reset_requested);
        cf_hal_log(&f.hal, "not captured");
        f.hal.log = log_cb;
        cf_hal_log(&f.hal, "hello");
        CU_ASSERT_STRING_EQUAL(logged, "hello");
        f.now_us = 123456789;
        CU_ASSERT_EQUAL(cf_hal_clock_ms(&f.hal), 123456);
        CU_ASSERT_EQUAL(cf_hal_can_send(&f.hal, 0x6C5, d, 8), 0);
        CU_ASSERT_EQUAL(f.ntx, 1);
        CU_ASSERT_EQUAL(f.tx[0].id, 0x6C5);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, B, d, 8), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_crc(&f.hal, CF_CRC32_INIT, B, 8), cf_crc32_le(CF_CRC32_INIT, d, 8));
        /* The check value of docs/design.md §2, through the HAL. */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, C, "12345678", 8), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_crc(&f.hal, CF_CRC32_INIT, C, 8), 0xFEFC54F9u);
        CU_ASSERT_EQUAL(cf_hal_flash_ptr(&f.hal), f.flash);
        fx_fini(&f);
}

/* The dual-bank STM32F767 (docs/design.md §9): 24 sectors, each bank's area A, BOOT_ADD0 as a flash operation. */
static void test_dual_bank(void)
{
        struct fx f;
        const uint8_t rec[16] = {1, 2, 3, 4};

        fx_init_dual(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        CU_ASSERT_EQUAL(cf_hal_host_flash_size(&f.hal), CF_F7_FLASH_SIZE);
        /* each bank's bootloader sectors refused, its journal (4, 16) and the rest fine */
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 3), -EACCES);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 12), -EACCES);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 15), -EACCES);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 24), -EINVAL);
        AT(&f, 0x08110000u) = 0;
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&f.hal, 16), 0);
        CU_ASSERT_EQUAL(AT(&f, 0x08110000u), 0xFF);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, 0x08110000u, rec, sizeof(rec)), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, 0x0810C000u, rec, 4), -EACCES);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, 0x0811FFF8u, rec, 16), -EACCES); /* journal into the area */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, 0x080FFFF8u, rec, 16), -EACCES); /* into bank 2's A */
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, 0x08120000u, rec, 4), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, 0x081FFFFCu, rec, 4), 0);
        CU_ASSERT_EQUAL(cf_hal_flash_program(&f.hal, 0x081FFFFEu, rec, 4), -EINVAL);

        /* BOOT_ADD0: one counted operation; BOOT_ADD1 untouched */
        CU_ASSERT_EQUAL(cf_hal_boot_bank(&f.hal), 1);
        uint64_t ops = f.hal.flash_ops;
        CU_ASSERT_EQUAL(cf_hal_boot_bank_set(&f.hal, 2), 0);
        CU_ASSERT_EQUAL(f.hal.flash_ops, ops + 1);
        CU_ASSERT_EQUAL(f.option_bytes[0], 0x2040u);
        CU_ASSERT_EQUAL(f.option_bytes[1], 0x0040u);
        CU_ASSERT_EQUAL(cf_hal_boot_bank(&f.hal), 2);
        CU_ASSERT_EQUAL(cf_hal_boot_bank_set(&f.hal, 3), -EINVAL);
        /* a plain cut at it changes nothing, a torn one leaves it naming no bank: the chip starts bank 1 */
        f.hal.cut_at_op = f.hal.flash_ops + 1;
        CU_ASSERT_EQUAL(cf_hal_boot_bank_set(&f.hal, 1), -EIO);
        CU_ASSERT_EQUAL(f.option_bytes[0], 0x2040u);
        CU_ASSERT(f.hal.powered_off);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        f.hal.cut_at_op = f.hal.flash_ops + 1;
        f.hal.cut_torn = true;
        CU_ASSERT_EQUAL(cf_hal_boot_bank_set(&f.hal, 1), -EIO);
        CU_ASSERT_EQUAL(f.option_bytes[0], 0xFFFFu);
        CU_ASSERT_EQUAL(cf_hal_boot_bank(&f.hal), 0);
        CU_ASSERT_EQUAL(cf_hal_host_boot_bank(&f.hal), 1);
        CU_ASSERT_EQUAL(f.hal.option_op, f.hal.flash_ops);

        /* a single-bank node has no banks */
        struct fx g;
        setup(&g);
        CU_ASSERT_EQUAL(cf_hal_running_bank(&g.hal), 0);
        CU_ASSERT_EQUAL(cf_hal_boot_bank(&g.hal), 0);
        CU_ASSERT_EQUAL(cf_hal_boot_bank_set(&g.hal, 2), -ENOTSUP);
        CU_ASSERT_EQUAL(cf_hal_flash_erase_start(&g.hal, 12), -EINVAL);
        fx_fini(&g);
        fx_fini(&f);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"init validates", test_init_validates},
            {"program only over erased bytes", test_program_only_erased},
            {"area A refused but for the journal sector", test_area_a_refused},
            {"program fault in B (--flash-fault install)", test_fault_program_app},
            {"erase a whole sector", test_erase_whole_sector},
            {"erase timing", test_erase_timing},
            {"program timing", test_program_timing},
            {"operation counting", test_op_counting},
            {"plain cut", test_cut_plain},
            {"plain cut of an erase", test_cut_plain_erase},
            {"torn program", test_cut_torn_program},
            {"torn erase", test_cut_torn_erase},
            {"random seeded", test_random_seeded},
            {"uid, watchdog, reset, log, clock, crc", test_misc},
            {"dual-bank geometry and BOOT_ADD0", test_dual_bank},
            {NULL, NULL},
        };
        return cf_test_run("hal-host", tests);
}
