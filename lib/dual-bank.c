/* The checks of the two links of a dual-bank application (docs/design.md §9). */
#include <string.h>

#include "canfleet/sha256.h"
#include "dual-bank.h"

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

unsigned cf_link_bank(const uint8_t area[CF_IMAGE_AREA_SIZE])
{
        uint32_t sp = get32(area), reset = get32(area + 4);
        if (cf_image_check_vectors(sp, reset) == CF_IMAGE_OK)
                return 1;
        /* The bank-2 link is the bank-1 one moved by the distance of the banks: the same rule there. */
        if (cf_image_check_vectors(sp, reset - CF_DUAL_BANK_DISTANCE) == CF_IMAGE_OK)
                return 2;
        return 0;
}

int cf_image_check_link(const uint8_t area[CF_IMAGE_AREA_SIZE], unsigned bank, struct cf_image_info *info)
{
        struct cf_image_info local;
        struct cf_image_info *i = info ? info : &local;

        int r = cf_image_check_full(area, i);
        if (bank != 2)
                return r;
        if (r == CF_IMAGE_OK)
                return CF_IMAGE_BAD_VECTORS; /* linked for bank 1 */
        if (r != CF_IMAGE_BAD_VECTORS || cf_link_bank(area) != 2)
                return r;
        /* cf_image_check_full() stopped at the vectors, the CRC and trailer being fine: the rest of it. */
        uint8_t sha[CF_SHA256_LEN];
        cf_sha256(area, i->payload_len, sha);
        if (memcmp(sha, i->payload_sha256, sizeof(sha)) != 0)
                return CF_IMAGE_BAD_SHA256;
        for (uint32_t k = i->payload_len; k < CF_TRAILER_OFFSET; k++)
                if (area[k] != 0xFFu)
                        return CF_IMAGE_BAD_PADDING;
        return CF_IMAGE_OK;
}
