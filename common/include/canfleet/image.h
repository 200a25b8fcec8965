/* The image trailer (image_info) and CRC at the end of a 256 KB area image, and how to check an image. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "canfleet/layout.h"

/*
 * A 256 KB area image:  [payload ... 0xFF padding][trailer: 60 bytes @0x3FFC0][CRC32 LE @0x3FFFC]
 * The CRC (canfleet/crc32.h, cf_crc32_le) covers offsets 0x00000-0x3FFFB, trailer included.
 *
 * Trailer, packed little-endian:
 *   off size field
 *    0   4   magic            0x4D494643 ("CFIM" in memory)
 *    4   2   layout_version   CF_TRAILER_LAYOUT (1)
 *    6   2   hw_id            hardware the image is built for; a node refuses any other
 *    8   1   ver_major
 *    9   1   ver_minor
 *   10   2   ver_patch
 *   12   4   release          anti-rollback counter; a node refuses a release below its running one
 *   16   4   payload_len      meaningful bytes from offset 0 (the rest up to the trailer is 0xFF)
 *   20   4   area_size        0x40000
 *   24   4   build_time       seconds since 1970 (UTC), 0 when unknown
 *   28  32   payload_sha256   SHA-256 of the payload_len first bytes
 */
#define CF_IMAGE_MAGIC      0x4D494643u
#define CF_TRAILER_LAYOUT   1u
#define CF_TRAILER_SIZE     60u
#define CF_TRAILER_OFFSET   (CF_IMAGE_AREA_SIZE - 64u) /* 0x3FFC0 */
#define CF_CRC_OFFSET       (CF_IMAGE_AREA_SIZE - 4u)  /* 0x3FFFC */
#define CF_IMAGE_MAX_PAYLOAD CF_TRAILER_OFFSET

struct cf_image_trailer_raw {
        uint32_t magic;
        uint16_t layout_version;
        uint16_t hw_id;
        uint8_t ver_major;
        uint8_t ver_minor;
        uint16_t ver_patch;
        uint32_t release;
        uint32_t payload_len;
        uint32_t area_size;
        uint32_t build_time;
        uint8_t payload_sha256[32];
} __attribute__((packed));
_Static_assert(sizeof(struct cf_image_trailer_raw) == CF_TRAILER_SIZE, "image trailer is 60 bytes");

/* Decoded trailer (native byte order). */
struct cf_image_info {
        uint32_t magic;
        uint16_t layout_version;
        uint16_t hw_id;
        uint8_t ver_major, ver_minor;
        uint16_t ver_patch;
        uint32_t release;
        uint32_t payload_len;
        uint32_t area_size;
        uint32_t build_time;
        uint8_t payload_sha256[32];
};

void cf_image_info_pack(const struct cf_image_info *info, uint8_t out[CF_TRAILER_SIZE]);
void cf_image_info_parse(const uint8_t in[CF_TRAILER_SIZE], struct cf_image_info *info);

/* Compare versions: <0, 0, >0 like strcmp, on (major, minor, patch). */
int cf_image_version_cmp(const struct cf_image_info *a, const struct cf_image_info *b);

/* Result of checking an area image. */
enum cf_image_status {
        CF_IMAGE_OK = 0,
        CF_IMAGE_BAD_CRC = -1,      /* stored CRC differs (erased, torn, corrupted) */
        CF_IMAGE_BAD_MAGIC = -2,    /* CRC fine but no trailer of ours */
        CF_IMAGE_BAD_LAYOUT = -3,   /* unknown layout_version or area_size */
        CF_IMAGE_BAD_LENGTH = -4,   /* payload_len beyond the trailer */
        CF_IMAGE_BAD_VECTORS = -5,  /* stack pointer not in SRAM or reset vector not in B with the Thumb bit */
        CF_IMAGE_WRONG_HW = -6,     /* built for another hardware id */
        CF_IMAGE_ROLLBACK = -7,     /* release below the one running */
        CF_IMAGE_BAD_SHA256 = -8,   /* payload SHA-256 differs from the trailer's */
        CF_IMAGE_BAD_PADDING = -9,  /* a byte after the payload, before the trailer, is not 0xFF */
};

/* Short English description of a status, e.g. "CRC mismatch". Never NULL. */
const char *cf_image_status_str(int status);

/* Check a whole 256 KB area held in memory: CRC, magic, layout, length, vector table. Fills info
 * (when non-NULL) as soon as the trailer has been read, even when a later check fails. */
int cf_image_check(const uint8_t area[CF_IMAGE_AREA_SIZE], struct cf_image_info *info);

/* The whole check of an image before it goes anywhere: cf_image_check(), then the SHA-256 of the
 * payload_len first bytes equals the trailer's payload_sha256, and every byte from payload_len up to the
 * trailer is 0xFF (erased flash). `canfleetctl image inspect` and canfleetd (before a job is made) both
 * use it, so that an image one accepts the other never refuses. A CRC alone is no proof: anyone can
 * recompute it over a tampered payload or over v2 code under v1's trailer.
 *   cf_image_check_full(packed by `canfleetctl image pack`, &i) == CF_IMAGE_OK
 *   payload byte changed, CRC recomputed                      == CF_IMAGE_BAD_SHA256
 *   a 0x00 after the payload, CRC recomputed                  == CF_IMAGE_BAD_PADDING */
int cf_image_check_full(const uint8_t area[CF_IMAGE_AREA_SIZE], struct cf_image_info *info);

/* Check the trailer of an image whose CRC is already known to be right (a caller with the CRC unit
 * computes it itself): magic, layout, length. */
int cf_image_check_trailer(const struct cf_image_info *info);

/* The application's first two vector table words: initial SP 4-byte aligned in (base, base+size] of
 * SRAM or CCM (a full descending stack starts at the end), reset handler inside B below the trailer
 * with the Thumb bit set. Returns CF_IMAGE_OK or CF_IMAGE_BAD_VECTORS.
 *   cf_image_check_vectors(0x20020000, 0x08020199) == CF_IMAGE_OK
 *   cf_image_check_vectors(0x20020000, 0x08020198) == CF_IMAGE_BAD_VECTORS (no Thumb bit)
 *   cf_image_check_vectors(0xFFFFFFFF, 0xFFFFFFFF) == CF_IMAGE_BAD_VECTORS (erased) */
int cf_image_check_vectors(uint32_t initial_sp, uint32_t reset_vector);

/* The same for an image linked at another application area: a dual-bank node's bank 2
 * (CF_F7_BANK2_APP_ADDR, docs/design.md §9). cf_image_check_vectors() is app_addr CF_AREA_APP_ADDR.
 *   cf_image_check_vectors_at(0x20020000, 0x08120199, 0x08120000) == CF_IMAGE_OK
 *   cf_image_check_vectors_at(0x20020000, 0x08020199, 0x08120000) == CF_IMAGE_BAD_VECTORS */
int cf_image_check_vectors_at(uint32_t initial_sp, uint32_t reset_vector, uint32_t app_addr);
/* cf_image_check() / cf_image_check_full() of an image linked at app_addr. */
int cf_image_check_at(const uint8_t area[CF_IMAGE_AREA_SIZE], struct cf_image_info *info, uint32_t app_addr);
int cf_image_check_full_at(const uint8_t area[CF_IMAGE_AREA_SIZE], struct cf_image_info *info, uint32_t app_addr);

/* Which dual-bank application area an image is linked for, from its first two vectors: 1 (0x08020000,
 * also the F4's B), 2 (0x08120000), 0 neither. Says nothing about CRC or trailer. */
unsigned cf_image_link_bank(const uint8_t area[CF_IMAGE_AREA_SIZE]);

/* Policy of a node taking a staged image: the hardware id must match; when a valid image runs
 * (running != NULL) the new release may not be lower. Returns CF_IMAGE_OK, _WRONG_HW or _ROLLBACK. */
int cf_image_check_policy(const struct cf_image_info *staged, uint16_t node_hw_id,
                          const struct cf_image_info *running);
