/* The bootloader's boot sequence (docs/design.md §2), as a step function so that nothing ever blocks. */
#pragma once

#include <stdint.h>

#include "bank.h"
#include "cf-hal.h"
#include "journal.h"
#include "node-config.h"

/*
 * cf_boot_step() runs the sequence a little at a time (one flash operation or one CRC chunk per
 * call), kicking the watchdog, until it reports an outcome:
 *  1. C valid (CRC, trailer, hw id, no rollback against a valid B): erase B, copy C to B, verify
 *     B's CRC; only then erase C, then reset. If B does not verify, C is kept and the node resets to
 *     try again. Power loss at any point leaves either a valid C (the copy is redone) or a valid B.
 *     A failure the bootloader sees (erase, program or verify error) is counted in the install
 *     journal (journal.h); after CF_JOURNAL_MAX_FAILURES of the same staged image it is not tried
 *     again (CF_UPDATE_GAVE_UP): the node goes on to step 2 without a reset, so it never resets in a
 *     loop, and stays reachable over CCP (the application's, or the bootloader's in recovery). A new
 *     image staged over CCP resets the count.
 *  2. B valid (vectors, CRC, trailer): CF_BOOT_JUMP.
 *  3. Neither: CF_BOOT_RECOVERY: stay in the bootloader, which speaks CCP (cf_app with
 *     CF_MODE_BOOTLOADER) so that the node can be re-flashed over CAN.
 *
 * Dual-bank nodes (cf_dual_bank(cfg), docs/design.md §9; boot-dual.c) copy nothing: the bootloader of
 * the bank the chip booted reads both banks (CRC, trailer, vectors, journal) and decides, one flash
 * operation per step, which bank must run; when that is not the one it runs in, it writes
 * BOOT_ADD0 and ends in CF_BOOT_RESET. In order:
 *  1. this bank on trial: not booted yet -> BOOTED, CF_BOOT_JUMP (on trial); booted before and not
 *     confirmed -> REVERTED, and on (it never runs again);
 *  2. the other bank on trial: not booted yet -> flip to it; booted -> REVERTED, and on;
 *  3. a bank staged and not tried, hardware id and release (not below the image it replaces) fine,
 *     a bootloader in its bank -> TRIAL, then 1 or 2;
 *  4. both banks good (the image before a confirmed swap stays): a bank confirmed in a trial wins
 *     over one never tried (same or higher release); this bank good (never tried, or confirmed) -> CF_BOOT_JUMP (BOOT_ADD0
 *     repaired first if it names another bank); the other bank good -> flip to it; else
 *     CF_BOOT_RECOVERY.
 * A record's write comes before what it allows; every flip is redone by whichever bootloader the
 * chip starts, so a power cut or a torn write at any operation ends in a valid image, and an image
 * never runs twice unconfirmed (bank.h).
 */
enum cf_boot_outcome {
        CF_BOOT_BUSY = 0,     /* call again */
        CF_BOOT_JUMP = 1,     /* B is valid: the port jumps to it */
        CF_BOOT_RECOVERY = 2, /* no valid application */
        CF_BOOT_RESET = 3,    /* an install finished (or failed verification): reset (cf_hal_reset) */
};

struct cf_boot {
        struct cf_hal *hal;
        const struct cf_node_config *cfg;
        int state;
        uint32_t off;       /* progress within the current phase */
        uint32_t crc;       /* running CRC of the current phase */
        uint8_t sector;     /* sector being erased */
        uint8_t last_update; /* enum cf_update_result */
        uint8_t give_up;    /* this boot does not install C: counted failures, or one uncounted */
        bool no_journal;    /* the journal's sector cannot be erased: counts ignored, one try per boot */
        uint32_t c_crc;     /* C's stored CRC: the staged image's identity in the journal */
        uint32_t carry;     /* failures to write again after compacting the journal */
        struct cf_journal journal;
        /* dual-bank */
        struct cf_bank run, other; /* the bank the chip booted, and the other one */
        bool no_flip;       /* a write of BOOT_ADD0 failed: this boot flips no more */
        bool refused[3];    /* per bank: its request failed the checks or its TRIAL write failed */
};

void cf_boot_init(struct cf_boot *b, struct cf_hal *hal, const struct cf_node_config *cfg);
enum cf_boot_outcome cf_boot_step(struct cf_boot *b);
/* Dual-bank boot sequence (boot-dual.c), called by cf_boot_step(). */
enum cf_boot_outcome cf_boot_dual_step(struct cf_boot *b);

/* What happened to C in this boot (enum cf_update_result), for the status block. */
uint8_t cf_boot_last_update(const struct cf_boot *b);
/* Failed installs of the staged image counted in the journal at the end of this boot. */
uint32_t cf_boot_install_failures(const struct cf_boot *b);
