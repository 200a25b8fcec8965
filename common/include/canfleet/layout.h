/* Node flash layout of the STM32F405/407 (1 MB): the four areas and the twelve sectors (docs/design.md §2). */
#pragma once

#include <stdint.h>

#define CF_FLASH_BASE    0x08000000u
#define CF_FLASH_SIZE    0x00100000u
#define CF_FLASH_SECTORS 12u
#define CF_FLASH_ERASED  0xFFu

/* SRAM1+SRAM2 (112 + 16 KB) and the 64 KB core-coupled RAM: where a valid initial stack pointer may point. */
#define CF_SRAM_BASE 0x20000000u
#define CF_SRAM_SIZE 0x00020000u
#define CF_CCM_BASE  0x10000000u
#define CF_CCM_SIZE  0x00010000u

enum cf_area {
        CF_AREA_BOOT = 0,    /* A: sectors 0-4, 128 KB, the bootloader; never written by our code */
        CF_AREA_APP = 1,     /* B: sectors 5-6, the running application */
        CF_AREA_STAGING = 2, /* C: sectors 7-8, where a new image is received */
        CF_AREA_DATA = 3,    /* D: sectors 9-11, user data, untouched by updates */
        CF_AREA_COUNT
};

#define CF_AREA_BOOT_ADDR    0x08000000u
#define CF_AREA_BOOT_SIZE    0x00020000u
#define CF_AREA_APP_ADDR     0x08020000u
#define CF_AREA_STAGING_ADDR 0x08060000u
#define CF_AREA_DATA_ADDR    0x080A0000u
#define CF_AREA_DATA_SIZE    0x00060000u
/* B and C are the same size: an image is built for 256 KB and copied verbatim. */
#define CF_IMAGE_AREA_SIZE 0x00040000u
/* The application is linked at B: VECT_TAB_OFFSET 0x20000. */
#define CF_APP_VTOR_OFFSET 0x00020000u

struct cf_flash_sector {
        uint32_t addr;
        uint32_t size;
};

struct cf_flash_area {
        uint32_t addr;
        uint32_t size;
        uint8_t first_sector;
        uint8_t n_sectors;
};

/* The 12 sectors: 4 x 16 KB, 1 x 64 KB, 7 x 128 KB. */
extern const struct cf_flash_sector cf_flash_sectors[CF_FLASH_SECTORS];
extern const struct cf_flash_area cf_flash_areas[CF_AREA_COUNT];

/* Sector index holding addr, or -1 when addr is outside flash.
 *   cf_flash_sector_of(0x08000000) == 0; cf_flash_sector_of(0x0801FFFF) == 4;
 *   cf_flash_sector_of(0x08060000) == 7; cf_flash_sector_of(0x08100000) == -1 */
int cf_flash_sector_of(uint32_t addr);

/* Area holding addr, or -1. */
int cf_flash_area_of(uint32_t addr);

/* 1 when [addr, addr+len) lies wholly inside area (len 0 counts as inside when addr does), else 0.
 * Overflow-safe. */
int cf_flash_in_area(enum cf_area area, uint32_t addr, uint32_t len);

/* ---- STM32F76x/77x, 2 MB in dual-bank mode (nDBANK = 0; docs/design.md §9) -------------------------
 * Two banks of 1 MB, each with the F4's twelve sectors (4 x 16 KB, 1 x 64 KB, 7 x 128 KB; RM0410
 * §3.3.2): bank 1 is sectors 0-11 at 0x08000000, bank 2 sectors 12-23 at 0x08100000. Each bank holds
 * its own copy of the bootloader (its sectors 0-4, area A, with its bank's journal in its sector 4)
 * and an application area of CF_IMAGE_AREA_SIZE at bank base + 0x20000 (its sectors 5-6), in the
 * area image format of image.h. An image is linked for one bank: its vectors point into
 * 0x08020000.. (bank 1) or 0x08120000.. (bank 2). The option bytes BOOT_ADD0/BOOT_ADD1 hold bits
 * [29:14] of the boot address: 0x2000 boots bank 1, 0x2040 bank 2. */
#define CF_F7_FLASH_SIZE     0x00200000u
#define CF_F7_FLASH_SECTORS  24u
#define CF_F7_BANK_SIZE      0x00100000u
#define CF_F7_BANK_SECTORS   12u
#define CF_F7_BANK1_ADDR     0x08000000u
#define CF_F7_BANK2_ADDR     0x08100000u
#define CF_F7_APP_OFFSET     0x00020000u /* the application area inside a bank */
#define CF_F7_BANK1_APP_ADDR (CF_F7_BANK1_ADDR + CF_F7_APP_OFFSET) /* 0x08020000 = CF_AREA_APP_ADDR */
#define CF_F7_BANK2_APP_ADDR (CF_F7_BANK2_ADDR + CF_F7_APP_OFFSET) /* 0x08120000 */
#define CF_F7_APP_FIRST_SECTOR 5u        /* in a bank; the area is its sectors 5 and 6 */
#define CF_F7_BOOT_ADD_BANK1 0x2000u
#define CF_F7_BOOT_ADD_BANK2 0x2040u

/* Base address of bank 1 or 2 (any other value: bank 1). */
static inline uint32_t cf_f7_bank_addr(unsigned bank)
{
        return bank == 2u ? CF_F7_BANK2_ADDR : CF_F7_BANK1_ADDR;
}

/* The application area of bank 1 or 2: cf_f7_app_addr(2) == 0x08120000. */
static inline uint32_t cf_f7_app_addr(unsigned bank)
{
        return cf_f7_bank_addr(bank) + CF_F7_APP_OFFSET;
}

/* The bank (1 or 2) holding addr, or 0 outside the 2 MB: cf_f7_bank_of(0x0812ABCD) == 2. */
static inline unsigned cf_f7_bank_of(uint32_t addr)
{
        if (addr - CF_F7_BANK1_ADDR < CF_F7_BANK_SIZE)
                return 1u;
        if (addr - CF_F7_BANK2_ADDR < CF_F7_BANK_SIZE)
                return 2u;
        return 0u;
}

/* Sector index (0-23) holding addr in the dual-bank map, or -1: cf_f7_sector_of(0x08120000) == 17. */
int cf_f7_sector_of(uint32_t addr);
/* Address and size of a dual-bank sector (0-23); 0 for both when out of range. */
struct cf_flash_sector cf_f7_sector(unsigned sector);

/* The BOOT_ADDx value that boots a bank, and the bank a BOOT_ADDx value boots (0: neither bank's base,
 * e.g. the system memory 0x0040 or a torn value).
 *   cf_f7_boot_add_of(2) == 0x2040;  cf_f7_bank_of_boot_add(0x2000) == 1 */
static inline uint16_t cf_f7_boot_add_of(unsigned bank)
{
        return bank == 2u ? CF_F7_BOOT_ADD_BANK2 : CF_F7_BOOT_ADD_BANK1;
}
static inline unsigned cf_f7_bank_of_boot_add(uint16_t boot_add)
{
        return boot_add == CF_F7_BOOT_ADD_BANK1 ? 1u : boot_add == CF_F7_BOOT_ADD_BANK2 ? 2u : 0u;
}
