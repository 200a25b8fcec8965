/* Checked blocks: buffer, check value, commit to area C. */
#include <errno.h>
#include <string.h>

#include "block.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"

_Static_assert(CF_BLOCK_SIZE % CF_GROUP_SLOT_SIZE == 0 && CF_BLOCK_SIZE % 4u == 0,
               "a block is whole slots and whole words");
_Static_assert(CF_GROUP_AREA_SIZE % 4u == 0, "the last block is whole words");

static const uint8_t *staging(struct cf_hal *hal, uint32_t area, uint32_t off)
{
        return cf_hal_flash_ptr(hal) + (area - CF_FLASH_BASE) + off;
}

void cf_block_start(struct cf_block_buf *b, struct cf_hal *hal, uint16_t k)
{
        uint32_t off = (uint32_t) k * CF_BLOCK_SIZE;
        b->active = true;
        b->index = k;
        memcpy(b->data, staging(hal, b->area, off), cf_block_len(k));
}

void cf_block_put(struct cf_block_buf *b, struct cf_hal *hal, uint32_t off, const uint8_t *data, uint32_t n)
{
        uint16_t k = (uint16_t) (off / CF_BLOCK_SIZE);
        if (!b->active || b->index != k)
                cf_block_start(b, hal, k);
        memcpy(b->data + (off - (uint32_t) k * CF_BLOCK_SIZE), data, n);
}

int cf_block_commit(struct cf_block_buf *b, struct cf_hal *hal, uint32_t crc)
{
        if (!b->active)
                return -ENOENT;
        uint32_t off = (uint32_t) b->index * CF_BLOCK_SIZE, len = cf_block_len(b->index);
        if (cf_block_crc(off, b->data, len) != crc) {
                b->active = false;
                return -EBADMSG;
        }
        const uint8_t *fl = staging(hal, b->area, off);
        /* Nothing is written unless all of it can be. */
        for (uint32_t i = 0; i < len; i++)
                if (fl[i] != b->data[i] && fl[i] != CF_FLASH_ERASED) {
                        b->active = false;
                        return -EIO;
                }
        /* Runs of erased flash that hold a differing byte, each in one program call: 0xFF onto an
         * erased byte changes nothing, so a fresh block is one call. Bytes already programmed (by
         * an earlier, interrupted commit) are skipped, which makes a repeat after -EBUSY cheap. */
        for (uint32_t i = 0; i < len;) {
                if (fl[i] == b->data[i]) {
                        i++;
                        continue;
                }
                uint32_t j = i, last = i;
                while (j < len && fl[j] == CF_FLASH_ERASED) {
                        if (b->data[j] != CF_FLASH_ERASED)
                                last = j;
                        j++;
                }
                int r = cf_hal_flash_program(hal, b->area + off + i, b->data + i, last + 1u - i);
                if (r == -EBUSY)
                        return r;
                if (r < 0) {
                        b->active = false;
                        return -EIO;
                }
                i = j;
        }
        b->active = false;
        return 0;
}

bool cf_block_in_flash(struct cf_hal *hal, uint32_t area, uint16_t k, uint32_t crc)
{
        uint32_t len = cf_block_len(k);
        return len > 0 &&
               cf_block_crc((uint32_t) k * CF_BLOCK_SIZE, staging(hal, area, (uint32_t) k * CF_BLOCK_SIZE), len) == crc;
}
