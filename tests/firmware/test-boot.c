/* Tests of the boot sequence: every outcome of docs/design.md §2 over the host HAL. */
#include <string.h>

#include "canfleet/crc32.h"
#include "cf-test.h"
#include "fw-fixture.h"
#include "journal.h"

#define B CF_AREA_APP_ADDR
#define C CF_AREA_STAGING_ADDR

static uint8_t img_v1[CF_IMAGE_AREA_SIZE], img_v2[CF_IMAGE_AREA_SIZE];

static const uint8_t *area(const struct fx *f, uint32_t addr)
{
        return f->flash + (addr - CF_FLASH_BASE);
}

static bool erased(const struct fx *f, uint32_t addr, uint32_t len)
{
        for (uint32_t i = 0; i < len; i++)
                if (area(f, addr)[i] != 0xFF)
                        return false;
        return true;
}

static void setup(struct fx *f, const uint8_t *b, const uint8_t *c)
{
        fx_init(f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f->hal), 0);
        if (b)
                fx_poke_area(f, B, b);
        if (c)
                fx_poke_area(f, C, c);
        fx_power_on(f);
}

static void test_only_b(void)
{
        struct fx f;

        setup(&f, img_v1, NULL);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.node.slave.mode, CF_MODE_APP);
        CU_ASSERT_EQUAL(f.node.slave.last_update, CF_UPDATE_NONE);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 0);
        CU_ASSERT_EQUAL(f.boot_count, 1);
        CU_ASSERT(f.hal.watchdog_kicks > 0);
        fx_fini(&f);
}

static void test_neither(void)
{
        struct fx f;
        bool rec = false;

        setup(&f, NULL, NULL);
        CU_ASSERT_EQUAL(fx_run(&f, &rec), CF_NODE_RECOVERY);
        CU_ASSERT_TRUE(rec);
        CU_ASSERT_EQUAL(f.node.slave.mode, CF_MODE_BOOTLOADER);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 0);
        fx_fini(&f);
}

static void test_b_corrupted(void)
{
        struct fx f;
        uint8_t bad[1] = {0x00};

        setup(&f, img_v1, NULL);
        /* One flipped payload byte: the CRC catches it. */
        cf_hal_host_poke(&f.hal, B + 0x1234, bad, 1);
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        fx_fini(&f);
}

static void test_b_bad_vectors(void)
{
        struct fx f;
        static uint8_t img[CF_IMAGE_AREA_SIZE];

        /* CRC and trailer fine, but the reset vector lacks the Thumb bit. */
        memcpy(img, img_v1, sizeof(img));
        cf_le32_put(img + 4, B + 0x198);
        cf_le32_put(img + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, img, CF_CRC_OFFSET));
        setup(&f, img, NULL);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        fx_fini(&f);
}

static void test_valid_c_installs(void)
{
        struct fx f;
        unsigned resets = 0;

        setup(&f, img_v1, img_v2);
        /* Step by step: never more than one flash operation per step. */
        while (f.node.phase == CF_NODE_BOOTING) {
                uint64_t ops = f.hal.flash_ops;
                fx_poll(&f, 100);
                CU_ASSERT_FATAL(f.hal.flash_ops - ops <= 1);
        }
        CU_ASSERT_EQUAL(f.node.phase, CF_NODE_RESETTING);
        CU_ASSERT_TRUE(f.hal.reset_requested);
        CU_ASSERT_EQUAL(cf_boot_last_update(&f.node.boot), CF_UPDATE_INSTALLED);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_TRUE(erased(&f, C, CF_IMAGE_AREA_SIZE));
        resets++;

        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.boot_count, 1 + resets);
        /* The boot after the install finds C erased, yet the install is reported. */
        CU_ASSERT_EQUAL(f.node.slave.last_update, CF_UPDATE_INSTALLED);

        /* 4 erases (B twice, C twice) and one program per 256-byte chunk that is not erased. */
        unsigned chunks = 0;
        for (uint32_t off = 0; off < CF_IMAGE_AREA_SIZE; off += 256) {
                bool ff = true;
                for (unsigned i = 0; i < 256; i++)
                        ff = ff && img_v2[off + i] == 0xFF;
                chunks += !ff;
        }
        CU_ASSERT_EQUAL(f.hal.erases, 4);
        CU_ASSERT_EQUAL(f.hal.programs, chunks);
        CU_ASSERT(chunks < CF_IMAGE_AREA_SIZE / 256 / 4);

        /* A later power-up just runs it. */
        uint64_t ops = f.hal.flash_ops;
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.hal.flash_ops, ops);
        CU_ASSERT_EQUAL(f.node.slave.last_update, CF_UPDATE_NONE);
        fx_fini(&f);
}

static void test_install_with_timing(void)
{
        struct fx f;

        fx_init(&f);
        f.hal.erase_us_per_kb = 8000;
        f.hal.program_us_per_word = 16;
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_poke_area(&f, C, img_v2);
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_TRUE(erased(&f, C, CF_IMAGE_AREA_SIZE));
        /* 4 sectors of 128 KB at ~1 s each passed on the virtual clock. */
        CU_ASSERT(f.now_us > 4 * 1024000);
        fx_fini(&f);
}

static void test_only_c(void)
{
        struct fx f;

        /* B invalid: no rollback reference, C installs whatever its release. */
        static uint8_t old[CF_IMAGE_AREA_SIZE];
        fx_image(old, FX_HW_ID, 0, 9, 0, 0, 2000, 77);
        setup(&f, NULL, old);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), old, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(f.node.slave.last_update, CF_UPDATE_INSTALLED);
        fx_fini(&f);
}

static void rejected(const uint8_t *c)
{
        struct fx f;

        setup(&f, img_v1, c);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.node.slave.last_update, CF_UPDATE_REJECTED);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v1, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(memcmp(area(&f, C), c, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 0);
        fx_fini(&f);
}

static void test_c_wrong_hw(void)
{
        static uint8_t c[CF_IMAGE_AREA_SIZE];

        fx_image(c, FX_HW_ID + 1, 2, 0, 0, 2, 3000, 2);
        rejected(c);
}

static void test_c_rollback(void)
{
        static uint8_t c[CF_IMAGE_AREA_SIZE];

        /* A higher version number does not excuse a lower release counter. */
        fx_image(c, FX_HW_ID, 3, 0, 0, 0, 3000, 3);
        rejected(c);
}

static void test_c_bad_vectors(void)
{
        static uint8_t c[CF_IMAGE_AREA_SIZE];

        memcpy(c, img_v2, sizeof(c));
        cf_le32_put(c, 0x30000000u);
        cf_le32_put(c + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, c, CF_CRC_OFFSET));
        rejected(c);
}

static void test_c_torn(void)
{
        struct fx f;
        static uint8_t c[CF_IMAGE_AREA_SIZE];

        /* A transfer that stopped half-way: no CRC match, nothing to do. */
        memcpy(c, img_v2, sizeof(c));
        memset(c + 0x600, 0xFF, CF_IMAGE_AREA_SIZE - 0x600 - 64);
        setup(&f, img_v1, c);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.node.slave.last_update, CF_UPDATE_NONE);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v1, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(memcmp(area(&f, C), c, CF_IMAGE_AREA_SIZE), 0);
        fx_fini(&f);
}

/* Spoils B behind the copy's back once a few chunks are programmed, as a failing flash would. */
static struct fx *spoil_fx;
static bool spoiled;
static uint64_t spoil_clock(void *ctx)
{
        struct fx *f = ctx;

        if (!spoiled && f->hal.programs == 3) {
                spoiled = true;
                f->flash[B - CF_FLASH_BASE + 0x20000] = 0x5A; /* an erased chunk of the image */
        }
        return f->now_us;
}

static void test_verify_failure_keeps_c(void)
{
        struct fx f;

        setup(&f, img_v1, img_v2);
        spoil_fx = &f;
        spoiled = false;
        f.hal.now_us = spoil_clock;
        while (f.node.phase == CF_NODE_BOOTING)
                fx_poll(&f, 100);
        CU_ASSERT_TRUE(spoiled);
        CU_ASSERT_EQUAL(f.node.phase, CF_NODE_RESETTING);
        CU_ASSERT_EQUAL(cf_boot_last_update(&f.node.boot), CF_UPDATE_VERIFY_FAILED);
        CU_ASSERT_EQUAL(memcmp(area(&f, C), img_v2, CF_IMAGE_AREA_SIZE), 0);
        /* The next boot tries again, and succeeds. */
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_TRUE(erased(&f, C, CF_IMAGE_AREA_SIZE));
        fx_fini(&f);
}

/* ---- The install journal: failing installs are given up on ---------------------------------- */

/* A journal record as journal.h describes it, written as the factory programmer would. */
static void put_record(struct fx *f, uint32_t slot, uint8_t kind, uint32_t crc)
{
        uint8_t rec[16] = {0};

        cf_le32_put(rec, 0x524A4643u);
        rec[4] = kind;
        cf_le32_put(rec + 8, crc);
        cf_le32_put(rec + 12, cf_crc32_le(CF_CRC32_INIT, rec, 12));
        cf_hal_host_poke(&f->hal, CF_JOURNAL_ADDR + slot * 16u, rec, 16);
}

static uint32_t used_slots(const struct fx *f)
{
        uint32_t n = 0;

        for (uint32_t i = 0; i < CF_JOURNAL_SLOTS; i++)
                if (!erased(f, CF_JOURNAL_ADDR + i * 16u, 16))
                        n = i + 1;
        return n;
}

static uint8_t status_byte(struct fx *f, unsigned off)
{
        uint8_t st[CF_STATUS_SIZE];

        cf_ccp_slave_status(&f->node.slave, st);
        return st[off];
}

static bool ccp_reachable(struct fx *f)
{
        uint8_t cro[8];
        struct cf_ccp_dto d;

        cf_ccp_cro_connect(cro, fx_next_ctr(f), FX_STATION);
        return fx_cro(f, cro, &d) && d.err == CF_CCP_OK;
}

static const uint32_t *v2_crc(void)
{
        static uint32_t crc;
        crc = cf_le32_get(img_v2 + CF_CRC_OFFSET);
        return &crc;
}

/* Every program of the install fails (--flash-fault install): three boots try, each counts its
 * failure; the third gives up at once, without a reset, and stays in recovery (the tries erased B)
 * with CCP. Power cycles change nothing. Staging the same image again over CCP resets the count. */
static void test_failing_install_gives_up(void)
{
        struct fx f;

        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_poke_area(&f, C, img_v2);
        f.hal.fault_program_app = true;
        fx_power_on(&f);
        bool recovery = false;
        CU_ASSERT_EQUAL(fx_run(&f, &recovery), CF_NODE_RECOVERY);
        CU_ASSERT_EQUAL(f.boot_count, 3);
        CU_ASSERT_EQUAL(used_slots(&f), 3);
        CU_ASSERT_EQUAL(cf_boot_install_failures(&f.node.boot), 3);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_GAVE_UP);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_INSTALL_FAILURES), 3);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_MODE), CF_MODE_BOOTLOADER);
        CU_ASSERT_EQUAL(memcmp(area(&f, C), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_TRUE(ccp_reachable(&f));

        /* Power cycles: no flash operation, no reset, the same report. */
        uint64_t ops = f.hal.flash_ops;
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        CU_ASSERT_EQUAL(f.boot_count, 4);
        CU_ASSERT_EQUAL(f.hal.flash_ops, ops);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_GAVE_UP);

        /* The flash is mended; DISCONNECT(end) of the same C without a new CLEAR_MEMORY keeps the
         * count (nothing new was staged): the reset boots straight back into recovery. */
        f.hal.fault_program_app = false;
        CU_ASSERT_EQUAL(fx_connect_unlock(&f), 0);
        uint8_t cro[8];
        struct cf_ccp_dto d;
        cf_ccp_cro_disconnect(cro, fx_next_ctr(&f), CF_CCP_DISCONNECT_END, FX_STATION);
        CU_ASSERT_PTR_NOT_NULL(fx_cro(&f, cro, &d));
        CU_ASSERT_EQUAL(d.err, CF_CCP_OK);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        CU_ASSERT_EQUAL(used_slots(&f), 3);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_GAVE_UP);

        /* A real update (CLEAR_MEMORY, the same image again, DISCONNECT end): STAGED, installed. */
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL(used_slots(&f), 4);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_INSTALLED);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_INSTALL_FAILURES), 0);
        fx_fini(&f);
}

/* A node whose journal already counts 3 failures of the staged image: B is not touched, it runs
 * and says why C was not installed. Failures of another image, or before a STAGED, do not count;
 * torn records do. */
static void test_counted_failures_keep_b(void)
{
        struct fx f;
        const uint32_t crc = *v2_crc();

        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_poke_area(&f, C, img_v2);
        put_record(&f, 0, CF_JOURNAL_FAILED, crc);
        put_record(&f, 1, CF_JOURNAL_FAILED, crc);
        put_record(&f, 2, CF_JOURNAL_STAGED, crc);
        put_record(&f, 3, CF_JOURNAL_FAILED, crc);
        put_record(&f, 4, CF_JOURNAL_FAILED, crc ^ 1u); /* another image */
        put_record(&f, 6, CF_JOURNAL_FAILED, crc);      /* slot 5 left erased: skipped */
        uint8_t torn[16];
        memset(torn, 0xFF, sizeof(torn));
        torn[0] = 0x43;
        torn[1] = 0x06;
        cf_hal_host_poke(&f.hal, CF_JOURNAL_ADDR + 7 * 16u, torn, sizeof(torn));
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.boot_count, 1);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 0);
        CU_ASSERT_EQUAL(cf_boot_install_failures(&f.node.boot), 3);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v1, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_GAVE_UP);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_INSTALL_FAILURES), 3);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_MODE), CF_MODE_APP);
        fx_fini(&f);

        /* Two failures only: the install goes ahead (and works). */
        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_poke_area(&f, C, img_v2);
        put_record(&f, 0, CF_JOURNAL_FAILED, crc);
        put_record(&f, 1, CF_JOURNAL_FAILED, crc);
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_INSTALLED);
        fx_fini(&f);
}

/* A journal with fewer than CF_JOURNAL_LOW_WATER free slots is erased at power-on, the staged
 * image's failures written again; then the boot goes on as usual. */
static void test_journal_compaction(void)
{
        struct fx f;
        const uint32_t crc = *v2_crc();

        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_poke_area(&f, C, img_v2);
        for (uint32_t i = 0; i < CF_JOURNAL_SLOTS - 3; i++)
                put_record(&f, i, i % 2 ? CF_JOURNAL_STAGED : CF_JOURNAL_FAILED, crc ^ 7u);
        put_record(&f, CF_JOURNAL_SLOTS - 3, CF_JOURNAL_FAILED, crc);
        put_record(&f, CF_JOURNAL_SLOTS - 2, CF_JOURNAL_FAILED, crc);
        f.hal.fault_program_app = true;
        fx_power_on(&f);
        /* erase of the journal, 2 failures carried, then one more failed install: given up */
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        CU_ASSERT_EQUAL(used_slots(&f), 3);
        CU_ASSERT_EQUAL(f.boot_count, 1);
        CU_ASSERT_EQUAL(cf_boot_install_failures(&f.node.boot), 3);
        fx_fini(&f);

        /* A full journal and no image in C: erased, nothing carried. */
        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        for (uint32_t i = 0; i < CF_JOURNAL_SLOTS; i++)
                put_record(&f, i, CF_JOURNAL_FAILED, i);
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(used_slots(&f), 0);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 1);
        fx_fini(&f);
}

/* A journal that takes no record (a worn-out sector): the failure cannot be counted, so the boot
 * does not reset to retry; it goes on (recovery here: the try erased B). One try per power-on. */
static void test_journal_unwritable(void)
{
        struct fx f;

        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_poke_area(&f, C, img_v2);
        f.hal.fault_program_app = true;
        f.hal.fault_sectors = 1u << CF_JOURNAL_SECTOR;
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        CU_ASSERT_EQUAL(f.boot_count, 1);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_VERIFY_FAILED);
        CU_ASSERT_TRUE(ccp_reachable(&f));
        fx_power_on(&f);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        CU_ASSERT_EQUAL(f.boot_count, 2);
        CU_ASSERT_EQUAL(memcmp(area(&f, C), img_v2, CF_IMAGE_AREA_SIZE), 0);
        fx_fini(&f);
}

/* A full journal whose sector will not erase: its contents are ignored (they would count as
 * failures), the image installs; with a failing install too, one try and no reset. */
static void test_journal_unerasable(void)
{
        static uint8_t zeros[CF_JOURNAL_SIZE];
        struct fx f;

        for (int failing = 0; failing < 2; failing++) {
                fx_init(&f);
                CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
                fx_poke_area(&f, B, img_v1);
                fx_poke_area(&f, C, img_v2);
                cf_hal_host_poke(&f.hal, CF_JOURNAL_ADDR, zeros, sizeof(zeros));
                f.hal.fault_sectors = 1u << CF_JOURNAL_SECTOR;
                f.hal.fault_program_app = failing;
                fx_power_on(&f);
                CU_ASSERT_EQUAL(fx_run(&f, NULL), failing ? CF_NODE_RECOVERY : CF_NODE_APP);
                CU_ASSERT_EQUAL(f.boot_count, failing ? 1 : 2);
                CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE),
                                failing ? CF_UPDATE_VERIFY_FAILED : CF_UPDATE_INSTALLED);
                if (!failing)
                        CU_ASSERT_EQUAL(memcmp(area(&f, B), img_v2, CF_IMAGE_AREA_SIZE), 0);
                fx_fini(&f);
        }
}

int main(void)
{
        fx_image(img_v1, FX_HW_ID, 1, 0, 0, 1, 3000, 1);
        fx_image(img_v2, FX_HW_ID, 2, 0, 0, 2, 5000, 2);

        static const struct cf_test tests[] = {
            {"only B: jump", test_only_b},
            {"neither: recovery", test_neither},
            {"B corrupted: recovery", test_b_corrupted},
            {"B with bad vectors: recovery", test_b_bad_vectors},
            {"valid C installs, C erased", test_valid_c_installs},
            {"install with the flash timing model", test_install_with_timing},
            {"only C: installs", test_only_c},
            {"C for another hw id rejected", test_c_wrong_hw},
            {"C rolling back rejected", test_c_rollback},
            {"C with bad vectors rejected", test_c_bad_vectors},
            {"C torn: B runs", test_c_torn},
            {"B fails verification: C kept, retried", test_verify_failure_keeps_c},
            {"failing install: 3 tries, then recovery; a new staging installs", test_failing_install_gives_up},
            {"3 failures counted: B kept and runs, reports why", test_counted_failures_keep_b},
            {"journal compaction", test_journal_compaction},
            {"journal that takes no record: one try per power-on", test_journal_unwritable},
            {"journal that will not erase: ignored", test_journal_unerasable},
            {NULL, NULL},
        };
        return cf_test_run("boot", tests);
}
