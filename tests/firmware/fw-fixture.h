/* Firmware test fixture: a node over the host HAL, virtual clock, capturing CAN bus, small CCP master. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "canfleet/ccp.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "canfleet/node-status.h"
#include "hal-host.h"
#include "node.h"

#define FX_STATION 5u
#define FX_HW_ID   0x0042u
#define FX_MAX_TX  64u

struct fx_frame {
        uint32_t id;
        uint8_t dlc;
        uint8_t data[8];
};

struct fx {
        uint8_t *flash; /* CF_FLASH_SIZE; CF_F7_FLASH_SIZE for a dual-bank node */
        uint16_t option_bytes[2]; /* BOOT_ADD0, BOOT_ADD1 of a dual-bank node */
        uint64_t now_us;
        struct cf_hal hal;
        struct cf_node_config cfg;
        struct cf_node node;
        uint32_t boot_count;
        uint8_t fleet_key[32];
        /* fx_group_upgrade() in block mode (canfleet/ccp.h "Checked blocks"), as canfleetd does it;
         * with corrupt_every, one data bit of every corrupt_every-th group data frame flipped */
        bool checked;
        uint32_t corrupt_every;
        struct fx_frame tx[FX_MAX_TX];
        unsigned ntx;
        uint8_t ctr;
};

/* A fresh node: flash erased, timing instantaneous, seeded RNG. Nothing powered yet. */
void fx_init(struct fx *f);
/* The same as a dual-bank STM32F767 (docs/design.md §9): 2 MB, a bootloader's vector table in each
 * bank (as the factory programs them), BOOT_ADD0 = bank 1. */
void fx_init_dual(struct fx *f);
/* Erase the whole flash again (a dual-bank node keeps its bootloaders; BOOT_ADD0 back to bank 1). */
void fx_wipe(struct fx *f);
void fx_fini(struct fx *f);

/* Build a 256 KB area image: a valid vector table, payload_len bytes of pseudo-random payload with
 * some erased runs inside, the trailer and the CRC. */
void fx_image(uint8_t *area, uint16_t hw_id, uint8_t major, uint8_t minor, uint16_t patch, uint32_t release,
              uint32_t payload_len, uint32_t seed);
/* The same, linked at app_addr (a dual-bank node's bank 2: CF_F7_BANK2_APP_ADDR). */
void fx_image_at(uint8_t *area, uint32_t app_addr, uint16_t hw_id, uint8_t major, uint8_t minor, uint16_t patch,
                 uint32_t release, uint32_t payload_len, uint32_t seed);
/* Put an image into an area as the factory programmer does. */
void fx_poke_area(struct fx *f, uint32_t area_addr, const uint8_t *area);

/* Power up (HAL re-initialised, flash kept, boot_count + 1) and start the boot sequence. */
void fx_power_on(struct fx *f);
/* Poll the node: power up again after every reset, until it runs (APP/RECOVERY phase) or the power
 * is cut. Returns the phase, or -1 on a power cut. *saw_recovery is set when any boot ended in
 * recovery (may be NULL). */
int fx_run(struct fx *f, bool *saw_recovery);
/* One poll with the clock advanced by us. */
void fx_poll(struct fx *f, uint64_t us);

/* Send a CRO and poll (1 ms per poll, up to max_polls) until the node answers; NULL without an
 * answer. The answer is copied to *dto. */
const struct fx_frame *fx_cro(struct fx *f, const uint8_t cro[8], struct cf_ccp_dto *dto);
const struct fx_frame *fx_cro_dlc(struct fx *f, const uint8_t *cro, uint8_t dlc, struct cf_ccp_dto *dto,
                                  unsigned max_polls);
uint8_t fx_next_ctr(struct fx *f);

/* Connect and unlock PGM with the real key. Returns 0, or the CCP error / -1 when no answer. */
int fx_connect_unlock(struct fx *f);
/* The whole CCP part of an upgrade (CONNECT … DISCONNECT end). 0 when the node accepted the image,
 * -EIO when it stopped answering (power cut), -EPROTO on an unexpected answer. */
int fx_upgrade(struct fx *f, const uint8_t *image);

/* One group frame of image's slot on the group id, then a poll. */
void fx_group_frame(struct fx *f, const uint8_t *image, uint16_t slot);
/* The whole group update of one node as the gateway does it (docs/design.md §7): erase, join, one
 * pass with every drop_every-th frame lost (0: none), GAP-driven PROGRAM_6 repair, BUILD_CHKSUM,
 * DISCONNECT(end). Returns as fx_upgrade(); *repaired (may be NULL): slots sent by unicast. */
int fx_group_upgrade(struct fx *f, const uint8_t *image, uint32_t drop_every, uint32_t *repaired);
/* The check frame of image's block k on the group id, then a poll. */
void fx_group_check(struct fx *f, const uint8_t *image, uint16_t k);

/* ACTION_SERVICE CONFIRM (0xCF10) in the current session: the CCP error, -1 without an answer. */
int fx_confirm(struct fx *f);

/* Does the area hold a CRC-valid image / a fully valid one (cf_image_check)? */
bool fx_area_crc_ok(const struct fx *f, uint32_t area_addr);
int fx_area_check(const struct fx *f, uint32_t area_addr, struct cf_image_info *info);
