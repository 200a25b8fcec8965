/* Dual-bank nodes: each bank's trial journal in its sector 4, read and appended. */
#include <errno.h>
#include <string.h>

#include "bank.h"
#include "canfleet/ccp.h"
#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "canfleet/node-status.h"

uint32_t cf_bank_journal_addr(unsigned bank)
{
        return cf_f7_bank_addr(bank) + CF_BANK_JOURNAL_OFFSET;
}

unsigned cf_bank_journal_sector(unsigned bank)
{
        return (bank == 2u ? CF_F7_BANK_SECTORS : 0u) + CF_BANK_JOURNAL_SECTOR;
}

static const uint8_t *at(struct cf_hal *h, uint32_t addr)
{
        return cf_hal_flash_ptr(h) + (addr - CF_FLASH_BASE);
}

static void encode(uint8_t rec[CF_BANK_RECORD_SIZE], enum cf_bank_kind kind, uint32_t crc)
{
        memset(rec, 0, CF_BANK_RECORD_SIZE);
        cf_le32_put(rec, CF_BANK_MAGIC);
        rec[4] = (uint8_t) kind;
        cf_le32_put(rec + 8, crc);
        cf_le32_put(rec + 12, cf_crc32_le(CF_CRC32_INIT, rec, 12));
}

/* The record's kind, or 0 when the slot holds no valid record. */
static uint8_t decode(const uint8_t *rec, uint32_t *crc)
{
        if (cf_le32_get(rec) != CF_BANK_MAGIC || rec[5] || rec[6] || rec[7] ||
            cf_le32_get(rec + 12) != cf_crc32_le(CF_CRC32_INIT, rec, 12))
                return 0;
        if (rec[4] < CF_BANK_STAGED || rec[4] > CF_BANK_REVERTED)
                return 0;
        *crc = cf_le32_get(rec + 8);
        return rec[4];
}

static bool erased(const uint8_t *p, uint32_t n)
{
        for (uint32_t i = 0; i < n; i++)
                if (p[i] != CF_FLASH_ERASED)
                        return false;
        return true;
}

static void apply(struct cf_bank *b, uint8_t kind)
{
        switch (kind) {
        case CF_BANK_STAGED:
                /* A new story of the same image (staged again after a revert). */
                b->staged = true;
                b->trial = b->booted = b->confirmed = b->reverted = false;
                break;
        case CF_BANK_TRIAL:
                b->trial = true;
                break;
        case CF_BANK_BOOTED:
                b->booted = true;
                break;
        case CF_BANK_CONFIRMED:
                b->confirmed = true;
                break;
        case CF_BANK_REVERTED:
                b->reverted = true;
                break;
        default:
                break;
        }
}

void cf_bank_read(struct cf_hal *h, unsigned bank, bool crc_ok, struct cf_bank *b)
{
        uint32_t app = cf_f7_app_addr(bank);
        const uint8_t *area = at(h, app);
        const uint8_t *j = at(h, cf_bank_journal_addr(bank));

        memset(b, 0, sizeof(*b));
        b->bank = (uint8_t) bank;
        b->crc = cf_le32_get(area + CF_CRC_OFFSET);
        if (crc_ok) {
                struct cf_image_info info;
                cf_image_info_parse(area + CF_TRAILER_OFFSET, &info);
                b->valid = cf_image_check_trailer(&info) == CF_IMAGE_OK &&
                           cf_image_check_vectors_at(cf_le32_get(area), cf_le32_get(area + 4), app) == CF_IMAGE_OK;
        }
        for (uint32_t i = 0; i < CF_BANK_SLOTS; i++) {
                const uint8_t *rec = j + i * CF_BANK_RECORD_SIZE;
                uint32_t crc = 0;

                if (erased(rec, CF_BANK_RECORD_SIZE))
                        continue;
                b->next = i + 1;
                uint8_t kind = decode(rec, &crc);
                if (kind == 0) {
                        /* Torn: after TRIAL the image may have run (see bank.h). */
                        if (b->trial)
                                b->booted = true;
                        continue;
                }
                if (crc == b->crc)
                        apply(b, kind);
        }
}

int cf_bank_append(struct cf_hal *h, struct cf_bank *b, enum cf_bank_kind kind)
{
        uint8_t rec[CF_BANK_RECORD_SIZE];

        if (b->next >= CF_BANK_SLOTS)
                return -ENOSPC;
        encode(rec, kind, b->crc);
        int r = cf_hal_flash_program(h, cf_bank_journal_addr(b->bank) + b->next * CF_BANK_RECORD_SIZE, rec,
                                     sizeof(rec));
        if (r == -EBUSY)
                return r;
        /* Whatever else happened, the slot may hold part of the record now: never reuse it. */
        b->next++;
        if (r < 0) {
                if (b->trial)
                        b->booted = true; /* what the next scan will make of it */
                return r;
        }
        apply(b, (uint8_t) kind);
        return 0;
}

uint8_t cf_bank_trial_state(const struct cf_bank *run, const struct cf_bank *other)
{
        if (cf_bank_on_trial(run))
                return CF_TRIAL_PENDING;
        /* The other bank was tried and did not make it: what sent us back here. */
        if (other->trial && !other->confirmed && (other->reverted || other->booted))
                return CF_TRIAL_REVERTED;
        if (run->trial && run->confirmed)
                return CF_TRIAL_CONFIRMED;
        return CF_TRIAL_NONE;
}

bool cf_bank_has_bootloader(struct cf_hal *h, unsigned bank)
{
        uint32_t base = cf_f7_bank_addr(bank);
        const uint8_t *v = at(h, base);
        uint32_t sp = cf_le32_get(v), reset = cf_le32_get(v + 4);

        /* The bootloader's code lives in the bank's sectors 0-3 (its journal is sector 4). */
        if ((sp & 3u) || sp - CF_SRAM_BASE - 1u >= CF_SRAM_SIZE)
                return false;
        return (reset & 1u) && (reset & ~1u) - base < CF_BANK_JOURNAL_OFFSET;
}
