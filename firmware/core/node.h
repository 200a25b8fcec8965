/* A whole node: power-on runs the boot sequence, then either the IAP application or recovery. */
#pragma once

#include <stdint.h>

#include "boot.h"
#include "ccp-slave.h"

/*
 * The same code runs on the MCU (firmware/stm32f4: the bootloader image runs cf_boot_* and, in
 * recovery, the CCP slave; the application image runs the CCP slave) and in canfleet-nodesim,
 * which keeps one struct cf_node per simulated node and drives it like this:
 *
 *     cf_node_power_on(&n, hal, &cfg, boot_count);
 *     loop: cf_node_poll(&n); for each frame on cfg.cro_id: cf_node_rx(&n, data, dlc);
 *     when the port's cf_hal_reset() was called: cf_node_power_on() again (flash kept)
 */
enum cf_node_phase {
        CF_NODE_BOOTING = 0,
        CF_NODE_APP = 1,      /* the IAP application (B valid) */
        CF_NODE_RECOVERY = 2, /* the bootloader's CCP, no valid application */
        CF_NODE_RESETTING = 3,
};

struct cf_node {
        struct cf_hal *hal;
        const struct cf_node_config *cfg;
        enum cf_node_phase phase;
        uint32_t boot_count;
        struct cf_boot boot;
        struct cf_ccp_slave slave;
};

void cf_node_power_on(struct cf_node *n, struct cf_hal *hal, const struct cf_node_config *cfg, uint32_t boot_count);
/* Run a bounded amount of work. */
void cf_node_poll(struct cf_node *n);
/* A CAN frame addressed to the node (id == cfg->cro_id); frames in the boot phase are dropped. */
void cf_node_rx(struct cf_node *n, const uint8_t *data, uint8_t dlc);
/* The group id the node also takes frames on right now (a group member): true and *id. */
bool cf_node_group_id(const struct cf_node *n, uint32_t *id);
/* A frame on that group id. */
void cf_node_rx_group(struct cf_node *n, const uint8_t *data, uint8_t dlc);
