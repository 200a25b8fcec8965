/* A simulated node's non-volatile state: one file per node, mapped shared so a SIGKILL is a power cut. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "canfleet/layout.h"
#include "canfleet/seedkey.h"

/*
 * File layout: a 4096-byte header page, then the CF_FLASH_SIZE bytes of flash (offset 0 of the
 * flash = CF_FLASH_BASE). Every write into the mapping is in the page cache at once, so killing the
 * simulator keeps exactly the bytes the HAL wrote; nothing is ever written back "later".
 *
 * Header, little-endian (the host's; the file is not meant to move between machines):
 *    0  magic "CFNSIM01"      8  header size (4096)   12 flash size   16 uid[12]
 *   28  boot_count u32       32  hw_id u16 (last run; informational)
 *   36  layout u32 (SIM_LAYOUT_*; 0 in files made before there were two)
 *   40  option bytes: BOOT_ADD0 u16, BOOT_ADD1 u16 (dual-bank; the chip's non-volatile options)
 * The flash is CF_FLASH_SIZE bytes for the F4 copy layout, CF_F7_FLASH_SIZE for the dual-bank F7.
 */
enum sim_layout {
        SIM_LAYOUT_F4_COPY = 0, /* STM32F405/407: B and C, the bootloader copies (docs/design.md §2) */
        SIM_LAYOUT_F7_DUAL = 1, /* STM32F767 dual-bank: two banks, trial boot (docs/design.md §9) */
        SIM_LAYOUT_ANY = -1,    /* sim_flash_open(): whatever the file is (reading it) */
};
#define SIM_FLASH_MAGIC       "CFNSIM01"
#define SIM_FLASH_HEADER_SIZE 4096u

struct sim_flash_header {
        char magic[8];
        uint32_t header_size;
        uint32_t flash_size;
        uint8_t uid[CF_UID_LEN];
        uint32_t boot_count;
        uint16_t hw_id;
        uint16_t reserved;
        uint32_t layout;
        uint16_t option_bytes[2];
} __attribute__((packed));
_Static_assert(sizeof(struct sim_flash_header) == 44, "flash file header is 44 bytes");

struct sim_flash {
        char *path;
        void *map; /* header page + flash */
        struct sim_flash_header *hdr;
        uint8_t *flash; /* flash_size bytes */
        uint32_t flash_size;
        size_t map_size;
        enum sim_layout layout;
};

/* Map path; with create, a missing file is made (all flash 0xFF, a random UID; for the dual-bank
 * layout BOOT_ADD0 = bank 1, BOOT_ADD1 = the system memory, as the chip leaves the factory) atomically:
 * it is built under a temporary name and renamed, so a kill during creation leaves no half file.
 * -ENOENT when missing and !create, -EBADMSG when the file is not a node flash file, -EMEDIUMTYPE
 * when it is one of the other layout. */
int sim_flash_open(struct sim_flash *f, const char *path, bool create, bool readonly, enum sim_layout layout);
/* msync and unmap; safe on a zeroed or already closed struct. */
void sim_flash_close(struct sim_flash *f);
/* Write the mapping back to the file now (the kernel would anyway; this makes shutdown explicit). */
int sim_flash_sync(struct sim_flash *f);
