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
