/* The factory provisioning record in sector 3 (0x0800C000): station, CAN ids, hw id, node secret. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "node-config.h"

/*
 * Written once with the ST-Link (firmware/stm32f4/mkprovision.py makes it), never by our code:
 * sector 3 is in area A. Packed little-endian, 64 bytes:
 *   off size field
 *    0   4   magic        0x52504643 ("CFPR" in memory)
 *    4   2   layout       1
 *    6   2   station      CCP station address
 *    8   4   cro_id       11-bit CAN id the node listens on
 *   12   4   dto_id       11-bit CAN id it answers on
 *   16   2   hw_id
 *   18   1   flags        bit 0: seed & key "echo" mode (the seed demo's key)
 *   19   1   reserved     0
 *   20   4   bitrate      CAN bit rate, 0 = 500 kbit/s
 *   24  32   node_secret  HMAC-SHA256(fleet_key, "canfleet-node-v1" || uid)
 *   56   4   reserved     0
 *   60   4   crc          canfleet/crc32.h cf_crc32_le of bytes 0..59
 */
#define CF_PROVISION_ADDR      0x0800C000u
#define CF_PROVISION_MAGIC     0x52504643u
#define CF_PROVISION_LAYOUT    1u
#define CF_PROVISION_SIZE      64u
#define CF_PROVISION_FLAG_ECHO 0x01u

#define CF_DEFAULT_STATION  1u
#define CF_DEFAULT_CRO_BASE 0x680u
#define CF_DEFAULT_DTO_BASE 0x6C0u
#define CF_DEFAULT_BITRATE  500000u
#ifndef CF_DEFAULT_HW_ID
#define CF_DEFAULT_HW_ID 0x0001u
#endif

struct cf_provision {
        struct cf_node_config cfg;
        uint32_t bitrate;
};

enum cf_provision_status {
        CF_PROVISION_OK = 0,
        CF_PROVISION_MISSING = -1, /* erased or not ours: factory step not done */
        CF_PROVISION_BAD_CRC = -2,
        CF_PROVISION_BAD_FIELD = -3, /* unknown layout, station 0, id beyond 11 bits */
};

/*
 * Decode the record. On any failure p holds the defaults: station 1, CRO 0x681, DTO 0x6C1,
 * CF_DEFAULT_HW_ID, 500 kbit/s, and a secret that the caller must fill with random bytes nobody
 * knows, so that UNLOCK is refused (an unprovisioned node cannot be re-flashed over CAN).
 */
int cf_provision_parse(const uint8_t rec[CF_PROVISION_SIZE], struct cf_provision *p);
const char *cf_provision_status_str(int status);
