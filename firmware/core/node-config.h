/* What a node knows about itself: CAN ids, hardware id, its secret for seed & key. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "canfleet/seedkey.h"

#define CF_BOOTLOADER_VERSION 0x0100u /* 1.0: reported in the device ID */

/* Which layout and boot policy the node follows. A port builds for one (-DCF_PORT_DUAL_BANK=0 or 1)
 * and the compiler drops the other; the host simulator leaves it open and reads cfg->dual_bank, so
 * the tests run the very code paths of both ports. */
#if defined(CF_PORT_DUAL_BANK)
#define cf_dual_bank(cfg) ((void) (cfg), CF_PORT_DUAL_BANK)
#else
#define cf_dual_bank(cfg) ((cfg)->dual_bank)
#endif

struct cf_node_config {
        uint16_t station;  /* CCP station address (1..63 by default) */
        uint32_t cro_id;   /* CAN id the node listens on (cro_base + station) */
        uint32_t dto_id;   /* CAN id it answers on (dto_base + station) */
        uint16_t hw_id;    /* hardware id; staged images for another id are refused */
        bool seedkey_echo; /* the seed demo's key = 00 00 seed, instead of the HMAC key; like the
                            * seed's firmware it has no group transfer (ACTION_SERVICE) either */
        bool no_group;     /* an older bootloader: no ACTION_SERVICE, plain CCP only */
        bool dual_bank;    /* the STM32F7 dual-bank layout (docs/design.md §9) instead of the F4 copy
                            * layout; a port fixes it with CF_PORT_DUAL_BANK, see cf_dual_bank() */
        bool no_block;     /* an older bootloader with the group transfer but without checked blocks */
        uint8_t node_secret[CF_NODE_SECRET_LEN];
};
