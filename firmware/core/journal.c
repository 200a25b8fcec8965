/* The install journal in flash sector 4: append-only records, scanned at each boot. */
#include <errno.h>
#include <string.h>

#include "canfleet/ccp.h"
#include "canfleet/crc32.h"
#include "canfleet/layout.h"
#include "journal.h"

static void encode(uint8_t rec[CF_JOURNAL_RECORD_SIZE], enum cf_journal_kind kind, uint32_t crc)
{
        memset(rec, 0, CF_JOURNAL_RECORD_SIZE);
        cf_le32_put(rec, CF_JOURNAL_MAGIC);
        rec[4] = (uint8_t) kind;
        cf_le32_put(rec + 8, crc);
        cf_le32_put(rec + 12, cf_crc32_le(CF_CRC32_INIT, rec, 12));
}

/* The record's kind, or 0 when the slot holds no valid record. */
static uint8_t decode(const uint8_t *rec, uint32_t *crc)
{
        if (cf_le32_get(rec) != CF_JOURNAL_MAGIC || rec[5] || rec[6] || rec[7] ||
            cf_le32_get(rec + 12) != cf_crc32_le(CF_CRC32_INIT, rec, 12))
                return 0;
        if (rec[4] != CF_JOURNAL_FAILED && rec[4] != CF_JOURNAL_STAGED)
                return 0;
        *crc = cf_le32_get(rec + 8);
        return rec[4];
}

static bool erased(const uint8_t *rec)
{
        for (unsigned i = 0; i < CF_JOURNAL_RECORD_SIZE; i++)
                if (rec[i] != CF_FLASH_ERASED)
                        return false;
        return true;
}

void cf_journal_scan(const uint8_t *flash, uint32_t crc, struct cf_journal *j)
{
        const uint8_t *base = flash + (CF_JOURNAL_ADDR - CF_FLASH_BASE);

        memset(j, 0, sizeof(*j));
        for (uint32_t i = 0; i < CF_JOURNAL_SLOTS; i++) {
                const uint8_t *rec = base + i * CF_JOURNAL_RECORD_SIZE;
                uint32_t rcrc = 0;

                if (erased(rec))
                        continue;
                j->next = i + 1;
                switch (decode(rec, &rcrc)) {
                case CF_JOURNAL_STAGED:
                        j->failures = 0;
                        j->since_staged = false;
                        break;
                case CF_JOURNAL_FAILED:
                        if (rcrc == crc)
                                j->failures++;
                        j->since_staged = true;
                        break;
                default: /* torn or foreign: a failure, whoever wrote it */
                        j->failures++;
                        j->since_staged = true;
                        break;
                }
        }
}

bool cf_journal_low(const struct cf_journal *j)
{
        return CF_JOURNAL_SLOTS - j->next < CF_JOURNAL_LOW_WATER;
}

int cf_journal_append(struct cf_hal *h, struct cf_journal *j, enum cf_journal_kind kind, uint32_t crc)
{
        uint8_t rec[CF_JOURNAL_RECORD_SIZE];

        if (j->next >= CF_JOURNAL_SLOTS)
                return -ENOSPC;
        encode(rec, kind, crc);
        int r = cf_hal_flash_program(h, CF_JOURNAL_ADDR + j->next * CF_JOURNAL_RECORD_SIZE, rec, sizeof(rec));
        if (r == -EBUSY)
                return r;
        /* Whatever else happened, the slot may hold part of the record now: never reuse it. */
        j->next++;
        if (r < 0)
                return r;
        if (kind == CF_JOURNAL_STAGED) {
                j->failures = 0;
                j->since_staged = false;
        } else {
                j->failures++;
                j->since_staged = true;
        }
        return 0;
}
