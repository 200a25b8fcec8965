/* After the clocks, in both images: provisioning record -> node configuration, and CAN bring-up. */
#pragma once

#include "hal-stm32.h"
#include "provision.h"

/* Reads sector 3; without a valid record, defaults and a random secret nobody knows (UNLOCK refused). */
void cf_stm32_node_setup(struct cf_hal *h, struct cf_provision *p);
/* CAN up with the node's filter, or a log line saying the node runs without CAN. */
void cf_stm32_node_can(struct cf_hal *h, const struct cf_provision *p, bool with_irq);
