/* A whole node: the boot sequence at power-on, then the CCP slave as the application or in recovery. */
#include <string.h>

#include "node.h"

void cf_node_power_on(struct cf_node *n, struct cf_hal *hal, const struct cf_node_config *cfg,
                      uint32_t boot_count)
{
        /* A boot that installed an image ends in a reset, and the boot after it finds C erased and
         * would report "nothing to do". The struct outlives a soft reset in the simulator (as a
         * no-init RAM word would on the MCU), so the install is carried over to be reported. */
        bool installed = n->phase == CF_NODE_RESETTING && n->boot.last_update == CF_UPDATE_INSTALLED;

        memset(n, 0, sizeof(*n));
        n->hal = hal;
        n->cfg = cfg;
        n->boot_count = boot_count;
        n->phase = CF_NODE_BOOTING;
        cf_boot_init(&n->boot, hal, cfg);
        if (installed)
                n->boot.last_update = CF_UPDATE_INSTALLED;
}

void cf_node_poll(struct cf_node *n)
{
        switch (n->phase) {
        case CF_NODE_BOOTING:
                switch (cf_boot_step(&n->boot)) {
                case CF_BOOT_BUSY:
                        break;
                case CF_BOOT_JUMP:
                        cf_ccp_slave_init(&n->slave, n->hal, n->cfg, CF_MODE_APP,
                                          cf_boot_last_update(&n->boot), n->boot_count);
                        n->phase = CF_NODE_APP;
                        break;
                case CF_BOOT_RECOVERY:
                        cf_hal_log(n->hal, "node: no valid application, staying in the bootloader");
                        cf_ccp_slave_init(&n->slave, n->hal, n->cfg, CF_MODE_BOOTLOADER,
                                          cf_boot_last_update(&n->boot), n->boot_count);
                        n->phase = CF_NODE_RECOVERY;
                        break;
                case CF_BOOT_RESET:
                        n->phase = CF_NODE_RESETTING;
                        cf_hal_reset(n->hal);
                        break;
                }
                break;
        case CF_NODE_APP:
        case CF_NODE_RECOVERY:
                cf_ccp_slave_poll(&n->slave);
                break;
        case CF_NODE_RESETTING:
                break;
        }
}

void cf_node_rx(struct cf_node *n, const uint8_t *data, uint8_t dlc)
{
        if (n->phase == CF_NODE_APP || n->phase == CF_NODE_RECOVERY)
                cf_ccp_slave_rx(&n->slave, data, dlc);
}

bool cf_node_group_id(const struct cf_node *n, uint32_t *id)
{
        if (n->phase != CF_NODE_APP && n->phase != CF_NODE_RECOVERY)
                return false;
        return cf_ccp_slave_group_id(&n->slave, id);
}

void cf_node_rx_group(struct cf_node *n, const uint8_t *data, uint8_t dlc)
{
        if (n->phase == CF_NODE_APP || n->phase == CF_NODE_RECOVERY)
                cf_ccp_slave_group_rx(&n->slave, data, dlc);
}
