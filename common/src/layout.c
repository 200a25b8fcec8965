/* The STM32F405/407 flash map: sector and area tables and address lookups. */
#include "canfleet/layout.h"

const struct cf_flash_sector cf_flash_sectors[CF_FLASH_SECTORS] = {
    {0x08000000u, 0x4000u},  {0x08004000u, 0x4000u},  {0x08008000u, 0x4000u},  {0x0800C000u, 0x4000u},
    {0x08010000u, 0x10000u}, {0x08020000u, 0x20000u}, {0x08040000u, 0x20000u}, {0x08060000u, 0x20000u},
    {0x08080000u, 0x20000u}, {0x080A0000u, 0x20000u}, {0x080C0000u, 0x20000u}, {0x080E0000u, 0x20000u},
};

const struct cf_flash_area cf_flash_areas[CF_AREA_COUNT] = {
    [CF_AREA_BOOT] = {CF_AREA_BOOT_ADDR, CF_AREA_BOOT_SIZE, 0, 5},
    [CF_AREA_APP] = {CF_AREA_APP_ADDR, CF_IMAGE_AREA_SIZE, 5, 2},
    [CF_AREA_STAGING] = {CF_AREA_STAGING_ADDR, CF_IMAGE_AREA_SIZE, 7, 2},
    [CF_AREA_DATA] = {CF_AREA_DATA_ADDR, CF_AREA_DATA_SIZE, 9, 3},
};

int cf_flash_sector_of(uint32_t addr)
{
        for (unsigned i = 0; i < CF_FLASH_SECTORS; i++)
                if (addr - cf_flash_sectors[i].addr < cf_flash_sectors[i].size)
                        return (int) i;
        return -1;
}

int cf_flash_area_of(uint32_t addr)
{
        for (unsigned i = 0; i < CF_AREA_COUNT; i++)
                if (addr - cf_flash_areas[i].addr < cf_flash_areas[i].size)
                        return (int) i;
        return -1;
}

int cf_flash_in_area(enum cf_area area, uint32_t addr, uint32_t len)
{
        if ((unsigned) area >= CF_AREA_COUNT)
                return 0;
        const struct cf_flash_area *a = &cf_flash_areas[area];
        /* Unsigned differences: an address below the area wraps to a huge offset, so no sum can overflow. */
        uint32_t off = addr - a->addr;
        if (off >= a->size)
                return 0;
        return len <= a->size - off;
}

int cf_f7_sector_of(uint32_t addr)
{
        unsigned bank = cf_f7_bank_of(addr);

        if (!bank)
                return -1;
        int s = cf_flash_sector_of(addr - cf_f7_bank_addr(bank) + CF_FLASH_BASE);
        return s < 0 ? -1 : s + (int) ((bank - 1u) * CF_F7_BANK_SECTORS);
}

struct cf_flash_sector cf_f7_sector(unsigned sector)
{
        struct cf_flash_sector s = {0, 0};

        if (sector >= CF_F7_FLASH_SECTORS)
                return s;
        s = cf_flash_sectors[sector % CF_F7_BANK_SECTORS];
        s.addr = s.addr - CF_FLASH_BASE + cf_f7_bank_addr(sector / CF_F7_BANK_SECTORS + 1u);
        return s;
}
