/* Tests of common/src/layout.c: the sector and area tables against docs/design.md §2, lookups at every edge. */
#include "canfleet/layout.h"
#include "cf-test.h"

static void test_sector_table(void)
{
        static const uint32_t sizes[CF_FLASH_SECTORS] = {16,  16,  16,  16,  64,  128,
                                                         128, 128, 128, 128, 128, 128};
        uint32_t addr = CF_FLASH_BASE;

        for (unsigned i = 0; i < CF_FLASH_SECTORS; i++) {
                CU_ASSERT_EQUAL(cf_flash_sectors[i].addr, addr);
                CU_ASSERT_EQUAL(cf_flash_sectors[i].size, sizes[i] * 1024u);
                addr += sizes[i] * 1024u;
        }
        CU_ASSERT_EQUAL(addr, CF_FLASH_BASE + CF_FLASH_SIZE);
}

static void test_area_table(void)
{
        static const struct cf_flash_area want[CF_AREA_COUNT] = {
            {0x08000000u, 0x20000u, 0, 5},
            {0x08020000u, 0x40000u, 5, 2},
            {0x08060000u, 0x40000u, 7, 2},
            {0x080A0000u, 0x60000u, 9, 3},
        };
        for (unsigned a = 0; a < CF_AREA_COUNT; a++) {
                const struct cf_flash_area *ar = &cf_flash_areas[a];
                CU_ASSERT_EQUAL(ar->addr, want[a].addr);
                CU_ASSERT_EQUAL(ar->size, want[a].size);
                CU_ASSERT_EQUAL(ar->first_sector, want[a].first_sector);
                CU_ASSERT_EQUAL(ar->n_sectors, want[a].n_sectors);
                /* the area is exactly its sectors */
                uint32_t sum = 0;
                for (unsigned s = ar->first_sector; s < ar->first_sector + ar->n_sectors; s++)
                        sum += cf_flash_sectors[s].size;
                CU_ASSERT_EQUAL(cf_flash_sectors[ar->first_sector].addr, ar->addr);
                CU_ASSERT_EQUAL(sum, ar->size);
        }
        CU_ASSERT_EQUAL(cf_flash_areas[CF_AREA_APP].addr, CF_AREA_APP_ADDR);
        CU_ASSERT_EQUAL(cf_flash_areas[CF_AREA_STAGING].addr, CF_AREA_STAGING_ADDR);
        CU_ASSERT_EQUAL(CF_FLASH_BASE + CF_APP_VTOR_OFFSET, CF_AREA_APP_ADDR);
}

static void test_sector_of(void)
{
        CU_ASSERT_EQUAL(cf_flash_sector_of(0x08000000u), 0);
        CU_ASSERT_EQUAL(cf_flash_sector_of(0x0801FFFFu), 4);
        CU_ASSERT_EQUAL(cf_flash_sector_of(0x08060000u), 7);
        CU_ASSERT_EQUAL(cf_flash_sector_of(0x08100000u), -1);
        for (unsigned i = 0; i < CF_FLASH_SECTORS; i++) {
                uint32_t a = cf_flash_sectors[i].addr, n = cf_flash_sectors[i].size;
                CU_ASSERT_EQUAL(cf_flash_sector_of(a), (int) i);
                CU_ASSERT_EQUAL(cf_flash_sector_of(a + n / 2), (int) i);
                CU_ASSERT_EQUAL(cf_flash_sector_of(a + n - 1), (int) i);
        }
        CU_ASSERT_EQUAL(cf_flash_sector_of(0x07FFFFFFu), -1);
        CU_ASSERT_EQUAL(cf_flash_sector_of(0x00000000u), -1);
        CU_ASSERT_EQUAL(cf_flash_sector_of(0x20000000u), -1);
        CU_ASSERT_EQUAL(cf_flash_sector_of(0xFFFFFFFFu), -1);
        CU_ASSERT_EQUAL(cf_flash_sector_of(0x080FFFFFu), 11);
}

static void test_area_of(void)
{
        CU_ASSERT_EQUAL(cf_flash_area_of(0x08000000u), CF_AREA_BOOT);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x0801FFFFu), CF_AREA_BOOT);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x08020000u), CF_AREA_APP);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x0805FFFFu), CF_AREA_APP);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x08060000u), CF_AREA_STAGING);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x0809FFFFu), CF_AREA_STAGING);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x080A0000u), CF_AREA_DATA);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x080FFFFFu), CF_AREA_DATA);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x08100000u), -1);
        CU_ASSERT_EQUAL(cf_flash_area_of(0x07FFFFFFu), -1);
        CU_ASSERT_EQUAL(cf_flash_area_of(0xFFFFFFFFu), -1);
        CU_ASSERT_EQUAL(cf_flash_area_of(0u), -1);
}

static void test_in_area(void)
{
        const uint32_t b = CF_AREA_APP_ADDR, n = CF_IMAGE_AREA_SIZE;

        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b, n), 1);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b, n + 1), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b + 1, n), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b + n - 1, 1), 1);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b + n - 4, 4), 1);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b + n - 4, 5), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b - 1, 2), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b - 1, 0), 0);
        /* len 0 is inside exactly when addr is */
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b, 0), 1);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b + n - 1, 0), 1);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b + n, 0), 0);
        /* neighbours */
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_STAGING, b + n, n), 1);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_STAGING, b + n - 1, 1), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_BOOT, 0x08000000u, 0x20000u), 1);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_DATA, 0x080A0000u, 0x60000u), 1);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_DATA, 0x080A0000u, 0x60001u), 0);
        /* overflow: a sum addr+len that wraps must not look small */
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b, 0xFFFFFFFFu), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, b + 0x100, 0xFFFFFF00u), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_APP, 0xFFFFFFF0u, 0x08020020u), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_DATA, 0xFFFFFFFFu, 1), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_BOOT, 0u, 0x08000010u), 0);
        /* not an area */
        CU_ASSERT_EQUAL(cf_flash_in_area(CF_AREA_COUNT, b, 1), 0);
        CU_ASSERT_EQUAL(cf_flash_in_area((enum cf_area) 200, b, 1), 0);
}

/* The dual-bank STM32F7 map (docs/design.md §9): two copies of the F4's twelve sectors. */
static void test_f7_dual_bank(void)
{
        CU_ASSERT_EQUAL(cf_f7_sector_of(0x08000000u), 0);
        CU_ASSERT_EQUAL(cf_f7_sector_of(0x080FFFFFu), 11);
        CU_ASSERT_EQUAL(cf_f7_sector_of(0x08100000u), 12);
        CU_ASSERT_EQUAL(cf_f7_sector_of(0x08110000u), 16);
        CU_ASSERT_EQUAL(cf_f7_sector_of(0x08120000u), 17);
        CU_ASSERT_EQUAL(cf_f7_sector_of(0x081FFFFFu), 23);
        CU_ASSERT_EQUAL(cf_f7_sector_of(0x08200000u), -1);
        CU_ASSERT_EQUAL(cf_f7_sector_of(0x07FFFFFFu), -1);
        uint32_t end = CF_F7_BANK1_ADDR;
        for (unsigned i = 0; i < CF_F7_FLASH_SECTORS; i++) {
                struct cf_flash_sector s = cf_f7_sector(i);
                CU_ASSERT_EQUAL(s.addr, end);
                CU_ASSERT_EQUAL(cf_f7_sector_of(s.addr), (int) i);
                CU_ASSERT_EQUAL(cf_f7_sector_of(s.addr + s.size - 1), (int) i);
                end = s.addr + s.size;
        }
        CU_ASSERT_EQUAL(end, CF_F7_BANK1_ADDR + CF_F7_FLASH_SIZE);
        CU_ASSERT_EQUAL(cf_f7_sector(24).size, 0);
        CU_ASSERT_EQUAL(cf_f7_sector(17).addr, CF_F7_BANK2_APP_ADDR);
        CU_ASSERT_EQUAL(cf_f7_sector(17).size, 0x20000u);
        CU_ASSERT_EQUAL(cf_f7_app_addr(1), CF_AREA_APP_ADDR);
        CU_ASSERT_EQUAL(cf_f7_app_addr(2), 0x08120000u);
        CU_ASSERT_EQUAL(cf_f7_bank_of(0x0812ABCDu), 2u);
        CU_ASSERT_EQUAL(cf_f7_bank_of(0x08000000u), 1u);
        CU_ASSERT_EQUAL(cf_f7_bank_of(0x08200000u), 0u);
        CU_ASSERT_EQUAL(cf_f7_bank_of(0x00200000u), 0u);
        CU_ASSERT_EQUAL(cf_f7_boot_add_of(1), 0x2000u);
        CU_ASSERT_EQUAL(cf_f7_boot_add_of(2), 0x2040u);
        /* BOOT_ADDx holds address bits [29:14] */
        CU_ASSERT_EQUAL((uint32_t) cf_f7_boot_add_of(2) << 14, CF_F7_BANK2_ADDR);
        CU_ASSERT_EQUAL(cf_f7_bank_of_boot_add(0x2040u), 2u);
        CU_ASSERT_EQUAL(cf_f7_bank_of_boot_add(0x2000u), 1u);
        CU_ASSERT_EQUAL(cf_f7_bank_of_boot_add(0x0040u), 0u);
        CU_ASSERT_EQUAL(cf_f7_bank_of_boot_add(0x2041u), 0u);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"sector table", test_sector_table},
            {"area table", test_area_table},
            {"sector_of", test_sector_of},
            {"area_of", test_area_of},
            {"in_area edges and overflow", test_in_area},
            {"f7 dual-bank map", test_f7_dual_bank},
            {NULL, NULL},
        };
        return cf_test_run("layout", tests);
}
