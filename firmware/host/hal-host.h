/* The host port of cf-hal.h: a node's flash in memory (or a mapped file), STM32F4 flash rules, timing and fault models. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "canfleet/layout.h"
#include "cf-hal.h"

/*
 * One struct cf_hal per simulated node. The owner (canfleet-nodesim, or a test) fills the public
 * fields, calls cf_hal_host_init(), and reads back the counters.
 *
 * Flash operations are counted: every cf_hal_flash_erase_start() and every cf_hal_flash_program()
 * call is one operation (numbered from 1). With cut_at_op = N, operation N is where the power goes:
 * it does nothing (or, with cut_torn, half of it: a program writes only the first half of its bytes
 * with the last of those bytes only partly cleared; an erase sets only the first half of the sector
 * to 0xFF), powered_off becomes true and every later flash operation fails with -EIO and changes
 * nothing. The owner notices powered_off and powers the node up again (cf_node_power_on()) with the
 * flash as it is.
 */
struct cf_hal {
        /* Set by the owner before cf_hal_host_init(). */
        uint8_t *flash;            /* CF_FLASH_SIZE bytes; CF_F7_FLASH_SIZE with dual_bank */
        /* The STM32F767 in dual-bank mode (docs/design.md §9): 24 sectors (0-11 bank 1, 12-23 bank
         * 2), each bank's sectors 0-3 refused (its bootloader) and 4 writable (its journal); the
         * option bytes BOOT_ADD0/BOOT_ADD1 in *option_bytes ([0], [1]), written by
         * cf_hal_boot_bank_set() as one flash operation (power cuts apply; a torn write leaves
         * 0xFFFF, which names no bank: the chip then boots bank 1, RM0410's fallback to the flash
         * on ITCM). running_bank is the bank the owner booted (where the code runs). */
        bool dual_bank;
        uint16_t *option_bytes;
        unsigned running_bank;
        uint8_t uid[12];
        uint64_t (*now_us)(void *ctx); /* monotonic clock: virtual in tests, CLOCK_MONOTONIC in the simulator */
        void *clock_ctx;
        int (*can_send)(void *ctx, uint32_t id, const uint8_t *data, uint8_t dlc);
        void *can_ctx;
        void (*log)(void *ctx, const char *msg); /* may be NULL */
        void *log_ctx;
        /* Flash timing model; 0 = instantaneous. RM0090 typical: 128 KB sector ~1 s, word ~16 µs. */
        uint32_t erase_us_per_kb;  /* e.g. 8000 (≈1 s per 128 KB) */
        uint32_t program_us_per_word; /* e.g. 16; programming time advances a "flash busy until" mark */
        /* Fault injection. */
        uint64_t cut_at_op;        /* 0 = never */
        bool cut_torn;
        /* Every program operation into area B fails with -EIO and writes nothing, as the STM32F4
         * reports a programming error (a write-protected or worn-out sector: WRPERR/PGPERR set
         * before any bit is written). Only the bootloader's install writes B, so this makes every
         * install fail; erasing B still works. The operation still counts as one (power cuts). */
        bool fault_program_app;
        /* Bit n set: every erase and program of sector n fails with -EIO and changes nothing (a
         * worn-out sector; tests of the install journal use it). Counted as operations too. */
        uint32_t fault_sectors;
        uint64_t rng_seed;         /* 0 = seed from /dev/urandom */

        /* Read back. */
        uint64_t flash_ops;        /* operations so far */
        uint32_t sector_writes[32]; /* changes of each sector's bytes so far (erase, program, torn, poke) */
        uint64_t erases, programs, program_bytes;
        uint64_t option_writes;    /* BOOT_ADD0 writes (dual-bank) */
        uint64_t option_op;        /* the operation number of the last BOOT_ADD0 write, cut or not */
        bool powered_off;
        bool reset_requested;      /* cf_hal_reset() was called */
        uint32_t watchdog_kicks;

        /* Private. */
        int erase_sector;          /* -1 none */
        int erase_result;
        uint64_t erase_done_us;
        uint64_t busy_until_us;
        uint64_t rng;
};

/* Validate the fields, reset the private state (an erase in progress at a power cut is lost). */
int cf_hal_host_init(struct cf_hal *h);

/* Size of the flash (CF_FLASH_SIZE or CF_F7_FLASH_SIZE). */
uint32_t cf_hal_host_flash_size(const struct cf_hal *h);
/* The bank the chip boots at the next reset, from BOOT_ADD0 (1 when it names neither bank). */
unsigned cf_hal_host_boot_bank(const struct cf_hal *h);

/* Write bytes to flash bypassing the rules and counters: the factory programmer (ST-Link) putting
 * an image into B, or a test setting up a state. */
void cf_hal_host_poke(struct cf_hal *h, uint32_t addr, const void *data, uint32_t len);
