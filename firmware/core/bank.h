/* Dual-bank nodes (docs/design.md §9): each bank's journal of its image's trial, and the state read from both. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cf-hal.h"
#include "node-config.h"

/*
 * Where: sector 4 of each bank (bank base + 0x10000, 64 KB: sector 4 or 16 in the dual-bank
 * numbering), as the F4's install journal. A bank's journal speaks of the image in that bank's
 * application area only, and is erased, together with that area, when the CCP slave starts
 * receiving a new image into it (CLEAR_MEMORY): a journal never holds more than one image's story.
 *
 * Records: 16-byte slots appended in order, each programmed once:
 *   0 magic u32 "CFBJ"   4 kind u8   5 zero[3]   8 crc u32 (the area's stored CRC: which image)
 *  12 check u32 (cf_crc32_le of bytes 0-11), little-endian.
 * The story of one image, each written before what it allows happens:
 *   STAGED     by the CCP slave of the other bank at DISCONNECT(end), once the image checked out:
 *              "boot me on trial"
 *   TRIAL      by a bootloader, before it flips BOOT_ADD0 to this bank
 *   BOOTED     by this bank's bootloader, before it runs the image for the first time
 *   CONFIRMED  by the running image (the application's own call, or CCP CONFIRM)
 *   REVERTED   by a bootloader that found the image BOOTED but not CONFIRMED: it never runs again
 * Records for another CRC are ignored. A slot that is neither erased nor a valid record is a
 * record torn by a power cut: after TRIAL it counts as BOOTED (the image may have run: it must not
 * run again unconfirmed), before TRIAL as nothing (a torn STAGED or TRIAL: nothing happened yet
 * that depends on it; the writer tries again or the update is simply not done).
 */
#define CF_BANK_JOURNAL_OFFSET 0x00010000u /* in the bank */
#define CF_BANK_JOURNAL_SECTOR 4u          /* in the bank; + 12 for bank 2 */
#define CF_BANK_JOURNAL_SIZE   0x00010000u
#define CF_BANK_RECORD_SIZE    16u
#define CF_BANK_SLOTS          (CF_BANK_JOURNAL_SIZE / CF_BANK_RECORD_SIZE)
#define CF_BANK_MAGIC          0x4A424643u /* "CFBJ" */

enum cf_bank_kind {
        CF_BANK_STAGED = 1,
        CF_BANK_TRIAL = 2,
        CF_BANK_BOOTED = 3,
        CF_BANK_CONFIRMED = 4,
        CF_BANK_REVERTED = 5,
};

/* One bank as read from flash. */
struct cf_bank {
        uint8_t bank;        /* 1 or 2 */
        uint32_t crc;        /* the area's stored CRC (the key of its records) */
        bool valid;          /* CRC, trailer and vectors for this bank's address check out */
        bool staged, trial, booted, confirmed, reverted;
        uint32_t next;       /* slot for the next record; CF_BANK_SLOTS when full */
};

/* Journal and state of a bank (1 or 2), without the CRC computation: the caller says whether the
 * computed CRC matched (crc_ok); vectors and trailer are checked here. */
void cf_bank_read(struct cf_hal *h, unsigned bank, bool crc_ok, struct cf_bank *b);

/* Append one record about b's image. 0; -ENOSPC when the journal is full; the HAL's error otherwise
 * (-EBUSY: try again later). The slot is used up whatever happened, and b follows the record. */
int cf_bank_append(struct cf_hal *h, struct cf_bank *b, enum cf_bank_kind kind);

/* The decisions, from the records. */
static inline bool cf_bank_on_trial(const struct cf_bank *b)
{
        return b->valid && b->trial && !b->confirmed && !b->reverted;
}
/* May run without a trial: a valid image that was never tried (programmed at the factory, or a
 * bank whose story the slave erased) or whose trial was confirmed. */
static inline bool cf_bank_good(const struct cf_bank *b)
{
        if (!b->valid || b->reverted)
                return false;
        return b->trial ? b->confirmed : !b->staged;
}
/* Staged and not tried yet: the next boot tries it. */
static inline bool cf_bank_requested(const struct cf_bank *b)
{
        return b->valid && b->staged && !b->trial && !b->reverted;
}

/* The status block's trial byte (CF_TRIAL_*) for a node running bank run, the other being other. */
uint8_t cf_bank_trial_state(const struct cf_bank *run, const struct cf_bank *other);

/* Address of bank's journal and its sector number (0-23). */
uint32_t cf_bank_journal_addr(unsigned bank);
unsigned cf_bank_journal_sector(unsigned bank);
/* The other bank. */
static inline unsigned cf_bank_other(unsigned bank)
{
        return bank == 2u ? 1u : 2u;
}
/* Does bank hold a bootloader (a plausible vector table at its base)? A flip to a bank without one
 * would never boot again. */
bool cf_bank_has_bootloader(struct cf_hal *h, unsigned bank);
