/* Why an area does or does not hold a valid image, checked in place on the node's flash (for the log). */
#pragma once

#include <stdint.h>

#include "canfleet/image.h"
#include "cf-hal.h"

/* CRC (through the HAL: the CRC unit where there is one), trailer, then vectors: the order of
 * cf_image_check(). Returns a CF_IMAGE_* status and fills info from the trailer. */
int cf_stm32_area_check(struct cf_hal *h, uint32_t area_addr, struct cf_image_info *info);
