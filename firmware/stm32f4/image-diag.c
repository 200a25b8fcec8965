/* In-place area check with the HAL's CRC, kicking the watchdog between chunks. */
#include "image-diag.h"

#include "canfleet/crc32.h"

#define CHUNK 0x4000u

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

int cf_stm32_area_check(struct cf_hal *h, uint32_t area_addr, struct cf_image_info *info)
{
        const uint8_t *area = cf_hal_flash_ptr(h) + (area_addr - CF_FLASH_BASE);
        cf_image_info_parse(area + CF_TRAILER_OFFSET, info);

        uint32_t crc = CF_CRC32_INIT;
        for (uint32_t off = 0; off < CF_CRC_OFFSET; off += CHUNK) {
                uint32_t n = CF_CRC_OFFSET - off < CHUNK ? CF_CRC_OFFSET - off : CHUNK;
                crc = cf_hal_flash_crc(h, crc, area_addr + off, n);
                cf_hal_watchdog_kick(h);
        }
        if (crc != get32(area + CF_CRC_OFFSET))
                return CF_IMAGE_BAD_CRC;
        int r = cf_image_check_trailer(info);
        if (r != CF_IMAGE_OK)
                return r;
        /* the vectors of an image linked for this very area (a dual-bank node's bank 2: 0x08120000) */
        return cf_image_check_vectors_at(get32(area), get32(area + 4), area_addr);
}
