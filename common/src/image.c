/* The image trailer codec and the checks a bootloader, a node and the tools apply to a 256 KB area image. */
#include <string.h>

#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/sha256.h"

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
        p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

static uint16_t get16(const uint8_t *p)
{
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* Offsets from the struct itself, so the codec cannot drift from the documented layout. */
#define OFF(f) offsetof(struct cf_image_trailer_raw, f)

void cf_image_info_pack(const struct cf_image_info *info, uint8_t out[CF_TRAILER_SIZE])
{
        put32(out + OFF(magic), info->magic);
        put16(out + OFF(layout_version), info->layout_version);
        put16(out + OFF(hw_id), info->hw_id);
        out[OFF(ver_major)] = info->ver_major;
        out[OFF(ver_minor)] = info->ver_minor;
        put16(out + OFF(ver_patch), info->ver_patch);
        put32(out + OFF(release), info->release);
        put32(out + OFF(payload_len), info->payload_len);
        put32(out + OFF(area_size), info->area_size);
        put32(out + OFF(build_time), info->build_time);
        memcpy(out + OFF(payload_sha256), info->payload_sha256, sizeof(info->payload_sha256));
}

void cf_image_info_parse(const uint8_t in[CF_TRAILER_SIZE], struct cf_image_info *info)
{
        info->magic = get32(in + OFF(magic));
        info->layout_version = get16(in + OFF(layout_version));
        info->hw_id = get16(in + OFF(hw_id));
        info->ver_major = in[OFF(ver_major)];
        info->ver_minor = in[OFF(ver_minor)];
        info->ver_patch = get16(in + OFF(ver_patch));
        info->release = get32(in + OFF(release));
        info->payload_len = get32(in + OFF(payload_len));
        info->area_size = get32(in + OFF(area_size));
        info->build_time = get32(in + OFF(build_time));
        memcpy(info->payload_sha256, in + OFF(payload_sha256), sizeof(info->payload_sha256));
}

int cf_image_version_cmp(const struct cf_image_info *a, const struct cf_image_info *b)
{
        if (a->ver_major != b->ver_major)
                return a->ver_major < b->ver_major ? -1 : 1;
        if (a->ver_minor != b->ver_minor)
                return a->ver_minor < b->ver_minor ? -1 : 1;
        if (a->ver_patch != b->ver_patch)
                return a->ver_patch < b->ver_patch ? -1 : 1;
        return 0;
}

const char *cf_image_status_str(int status)
{
        switch (status) {
        case CF_IMAGE_OK:
                return "valid";
        case CF_IMAGE_BAD_CRC:
                return "CRC mismatch";
        case CF_IMAGE_BAD_MAGIC:
                return "no image trailer (bad magic)";
        case CF_IMAGE_BAD_LAYOUT:
                return "unsupported trailer layout or area size";
        case CF_IMAGE_BAD_LENGTH:
                return "payload length beyond the trailer";
        case CF_IMAGE_BAD_VECTORS:
                return "invalid vector table (stack pointer or reset vector)";
        case CF_IMAGE_WRONG_HW:
                return "built for another hardware id";
        case CF_IMAGE_ROLLBACK:
                return "release below the running one (rollback)";
        case CF_IMAGE_BAD_SHA256:
                return "payload SHA-256 differs from the trailer's";
        case CF_IMAGE_BAD_PADDING:
                return "bytes after the payload are not 0xFF";
        default:
                return "unknown image status";
        }
}

int cf_image_check_trailer(const struct cf_image_info *info)
{
        if (info->magic != CF_IMAGE_MAGIC)
                return CF_IMAGE_BAD_MAGIC;
        if (info->layout_version != CF_TRAILER_LAYOUT || info->area_size != CF_IMAGE_AREA_SIZE)
                return CF_IMAGE_BAD_LAYOUT;
        if (info->payload_len > CF_IMAGE_MAX_PAYLOAD)
                return CF_IMAGE_BAD_LENGTH;
        return CF_IMAGE_OK;
}

static int sp_in(uint32_t sp, uint32_t base, uint32_t size)
{
        /* (base, base+size]: an empty full-descending stack points one past the end of RAM. */
        return sp - base - 1u < size;
}

int cf_image_check_vectors(uint32_t initial_sp, uint32_t reset_vector)
{
        return cf_image_check_vectors_at(initial_sp, reset_vector, CF_AREA_APP_ADDR);
}

int cf_image_check_vectors_at(uint32_t initial_sp, uint32_t reset_vector, uint32_t app_addr)
{
        if (initial_sp & 3u)
                return CF_IMAGE_BAD_VECTORS;
        if (!sp_in(initial_sp, CF_SRAM_BASE, CF_SRAM_SIZE) && !sp_in(initial_sp, CF_CCM_BASE, CF_CCM_SIZE))
                return CF_IMAGE_BAD_VECTORS;
        if (!(reset_vector & 1u))
                return CF_IMAGE_BAD_VECTORS;
        uint32_t entry = reset_vector & ~1u;
        if (entry - app_addr >= CF_TRAILER_OFFSET)
                return CF_IMAGE_BAD_VECTORS;
        return CF_IMAGE_OK;
}

unsigned cf_image_link_bank(const uint8_t area[CF_IMAGE_AREA_SIZE])
{
        uint32_t sp = get32(area), reset = get32(area + 4);

        if (cf_image_check_vectors_at(sp, reset, CF_F7_BANK1_APP_ADDR) == CF_IMAGE_OK)
                return 1u;
        if (cf_image_check_vectors_at(sp, reset, CF_F7_BANK2_APP_ADDR) == CF_IMAGE_OK)
                return 2u;
        return 0u;
}

int cf_image_check(const uint8_t area[CF_IMAGE_AREA_SIZE], struct cf_image_info *info)
{
        return cf_image_check_at(area, info, CF_AREA_APP_ADDR);
}

int cf_image_check_at(const uint8_t area[CF_IMAGE_AREA_SIZE], struct cf_image_info *info, uint32_t app_addr)
{
        struct cf_image_info local;
        struct cf_image_info *i = info ? info : &local;

        cf_image_info_parse(area + CF_TRAILER_OFFSET, i);

        uint32_t crc = cf_crc32_le(CF_CRC32_INIT, area, CF_CRC_OFFSET);
        if (crc != get32(area + CF_CRC_OFFSET))
                return CF_IMAGE_BAD_CRC;

        int r = cf_image_check_trailer(i);
        if (r != CF_IMAGE_OK)
                return r;

        return cf_image_check_vectors_at(get32(area), get32(area + 4), app_addr);
}

int cf_image_check_full(const uint8_t area[CF_IMAGE_AREA_SIZE], struct cf_image_info *info)
{
        return cf_image_check_full_at(area, info, CF_AREA_APP_ADDR);
}

int cf_image_check_full_at(const uint8_t area[CF_IMAGE_AREA_SIZE], struct cf_image_info *info, uint32_t app_addr)
{
        struct cf_image_info local;
        struct cf_image_info *i = info ? info : &local;

        int r = cf_image_check_at(area, i, app_addr);
        if (r != CF_IMAGE_OK)
                return r;
        uint8_t sha[CF_SHA256_LEN];
        cf_sha256(area, i->payload_len, sha);
        if (memcmp(sha, i->payload_sha256, sizeof(sha)) != 0)
                return CF_IMAGE_BAD_SHA256;
        for (uint32_t k = i->payload_len; k < CF_TRAILER_OFFSET; k++)
                if (area[k] != 0xFFu)
                        return CF_IMAGE_BAD_PADDING;
        return CF_IMAGE_OK;
}

int cf_image_check_policy(const struct cf_image_info *staged, uint16_t node_hw_id,
                          const struct cf_image_info *running)
{
        if (staged->hw_id != node_hw_id)
                return CF_IMAGE_WRONG_HW;
        if (running && staged->release < running->release)
                return CF_IMAGE_ROLLBACK;
        return CF_IMAGE_OK;
}
