/* Dual-bank nodes (docs/design.md §9): the two links of one application and how the tools check each. */
#pragma once

#include <stdint.h>

#include "canfleet/image.h"

/*
 * An STM32F76x/77x in dual-bank mode has two 1 MB banks, each with its own bootloader (sectors 0-4)
 * and a 256 KB application area at bank base + 0x20000, in the area-image format of canfleet/image.h.
 * An application linked for bank 1 has its vectors in 0x08020000..0x0805FFFF (the same addresses as
 * an F4's area B), one linked for bank 2 in 0x08120000..0x0815FFFF; neither runs from the other bank,
 * so a dual-bank bundle carries both links and the gateway sends the one for the node's inactive bank.
 */
#define CF_DUAL_BANKS         2u
#define CF_DUAL_BANK1_BASE    0x08000000u
#define CF_DUAL_BANK2_BASE    0x08100000u
#define CF_DUAL_APP_OFFSET    0x00020000u
#define CF_DUAL_BANK_DISTANCE (CF_DUAL_BANK2_BASE - CF_DUAL_BANK1_BASE)

/* Which bank the area image is linked for, from its reset vector (word 1): 1, 2, or 0 when the
 * reset vector lies in neither application area (with the Thumb bit, below the trailer).
 *   reset vector 0x08020199 -> 1;  0x08120199 -> 2;  0xFFFFFFFF -> 0 */
unsigned cf_link_bank(const uint8_t area[CF_IMAGE_AREA_SIZE]);

/* cf_image_check_full() of an image that must be linked for bank (1 or 2): CRC, trailer, vector table
 * inside that bank's application area, payload SHA-256, padding. An image linked for the other bank is
 * CF_IMAGE_BAD_VECTORS. bank 1 is exactly cf_image_check_full(). */
int cf_image_check_link(const uint8_t area[CF_IMAGE_AREA_SIZE], unsigned bank, struct cf_image_info *info);
