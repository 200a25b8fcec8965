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
 */
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
} __attribute__((packed));
_Static_assert(sizeof(struct sim_flash_header) == 36, "flash file header is 36 bytes");

struct sim_flash {
        char *path;
        void *map; /* header page + flash */
        struct sim_flash_header *hdr;
        uint8_t *flash; /* CF_FLASH_SIZE bytes */
};

/* Map path; with create, a missing file is made (all flash 0xFF, a random UID) atomically: it is
 * built under a temporary name and renamed, so a kill during creation leaves no half file.
 * -ENOENT when missing and !create, -EBADMSG when the file is not a node flash file. */
int sim_flash_open(struct sim_flash *f, const char *path, bool create, bool readonly);
/* msync and unmap; safe on a zeroed or already closed struct. */
void sim_flash_close(struct sim_flash *f);
/* Write the mapping back to the file now (the kernel would anyway; this makes shutdown explicit). */
int sim_flash_sync(struct sim_flash *f);
