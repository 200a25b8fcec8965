/* After the clocks, in both images: provisioning record -> node configuration, and CAN bring-up. */
#pragma once

#include "ccp-slave.h"
#include "hal-stm32.h"
#include "provision.h"

/* Reads sector 3; without a valid record, defaults and a random secret nobody knows (UNLOCK refused). */
void cf_stm32_node_setup(struct cf_hal *h, struct cf_provision *p);
/* CAN up with the node's filter, or a log line saying the node runs without CAN. */
void cf_stm32_node_can(struct cf_hal *h, const struct cf_provision *p, bool with_irq);
/* A received frame to the CCP slave: the CRO id as CCP, the group id (while joined) as a group frame. */
void cf_stm32_node_dispatch(struct cf_hal *h, struct cf_ccp_slave *s, const struct cf_node_config *cfg,
                            const struct cf_bxcan_frame *f);
/* Keep filter bank 1 in step with the slave's group membership (call after the frames of a turn). */
void cf_stm32_node_group_filter(struct cf_hal *h, const struct cf_ccp_slave *s);
