/* The install journal: failed boot installs counted in flash, so that a failing install is not retried forever. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cf-hal.h"

/*
 * Where: sector 4 (0x08010000, 64 KB), the last sector of area A. The bootloader's code takes
 * sectors 0-2 and its provisioning record sector 3 (firmware/stm32f4/boot.ld); sector 4 was unused.
 * It is the only part of area A our code erases or programs (both ports' HALs refuse the rest).
 *
 * Records: 16-byte slots, appended in order, each programmed once (only cleared bits) and never
 * changed:   0 magic u32 "CFJR"   4 kind u8   5 zero[3]   8 crc u32 (C's stored CRC)   12 check u32
 * (cf_crc32_le of bytes 0-11), little-endian.
 *   FAILED  the boot's install of the image whose CRC is crc failed (an erase, program or verify
 *           error: something the bootloader saw; a power cut or reset in the middle is not a
 *           failure, docs/design.md §2 wants any number of those to end with a valid B)
 *   STAGED  a new image was staged over CCP (CLEAR_MEMORY, PROGRAMs, DISCONNECT(end) accepted):
 *           the failures before it no longer count
 *
 * Counting (cf_journal_scan): the failures of an image = FAILED records with its CRC after the last
 * valid STAGED, plus every slot after it that is neither erased nor a valid record (a record torn by
 * a power cut: counted as a failure, so that not even a cut at each FAILED write can make the count
 * stall). Erased slots are skipped; the next record goes after the last used slot.
 * Power-cut argument: a record is one program operation. Cut before it: the failure is not counted,
 * the next boot tries again and counts it then. Cut inside: the slot is garbage and counts. Either
 * way the count never goes down without a STAGED record, so at most CF_JOURNAL_MAX_FAILURES + 1
 * failing installs of one staged image are tried. A torn STAGED counts as a failure: the new image
 * gets one try fewer, never an endless loop.
 * Space: the bootloader compacts the journal at power-on when fewer than CF_JOURNAL_LOW_WATER slots
 * are free (erase, then the current image's failures written again), so the at most one STAGED and
 * one FAILED record written between two boots always fit. A cut during compaction can lose the
 * count (some extra tries: 4096 records in between, so rarely) but nothing else.
 */
#define CF_JOURNAL_SECTOR       4u
#define CF_JOURNAL_ADDR         0x08010000u
#define CF_JOURNAL_SIZE         0x10000u
#define CF_JOURNAL_RECORD_SIZE  16u
#define CF_JOURNAL_SLOTS        (CF_JOURNAL_SIZE / CF_JOURNAL_RECORD_SIZE)
#define CF_JOURNAL_MAGIC        0x524A4643u /* "CFJR" */
#define CF_JOURNAL_MAX_FAILURES 3u          /* failed installs of one staged image before giving up */
#define CF_JOURNAL_LOW_WATER    4u

enum cf_journal_kind {
        CF_JOURNAL_FAILED = 0x01,
        CF_JOURNAL_STAGED = 0x02,
};

struct cf_journal {
        uint32_t next;          /* slot for the next record; CF_JOURNAL_SLOTS when full */
        uint32_t failures;      /* failures of the image scanned for (see above) */
        bool since_staged;      /* a record (or garbage) after the last STAGED: a STAGED would reset something */
};

/* Read the journal from flash (CF_FLASH_BASE-based, as cf_hal_flash_ptr()) for the image with CRC crc. */
void cf_journal_scan(const uint8_t *flash, uint32_t crc, struct cf_journal *j);

/* Append one record at j->next and advance it (j->failures/since_staged follow the record).
 * -ENOSPC when the journal is full; the HAL's error otherwise (-EBUSY: try again later). */
int cf_journal_append(struct cf_hal *h, struct cf_journal *j, enum cf_journal_kind kind, uint32_t crc);

/* Does the journal need compacting (fewer than CF_JOURNAL_LOW_WATER free slots)? */
bool cf_journal_low(const struct cf_journal *j);
