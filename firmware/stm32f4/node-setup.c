/* Provisioning and CAN bring-up shared by the bootloader's recovery and the application. */
#include "node-setup.h"

#include "canfleet/layout.h"
#include "log-line.h"

void cf_stm32_node_setup(struct cf_hal *h, struct cf_provision *p)
{
        struct cf_line l;
        uint32_t addr = cf_stm32_provision_addr(h);
        const uint8_t *rec = cf_hal_flash_ptr(h) + (addr - CF_FLASH_BASE);
        int r = cf_provision_parse(rec, p);

        cf_line_init(&l);
        if (r == CF_PROVISION_OK) {
                cf_line_str(&l, "provision: station ");
        } else {
                cf_hal_random(h, p->cfg.node_secret, sizeof(p->cfg.node_secret));
                cf_line_str(&l, "provision: ");
                cf_line_str(&l, cf_provision_status_str(r));
                cf_line_str(&l, " at 0x");
                cf_line_hex(&l, addr, 8);
                cf_line_str(&l, ", defaults (UNLOCK refused): station ");
        }
        cf_line_dec(&l, p->cfg.station);
        cf_line_str(&l, " cro 0x");
        cf_line_hex(&l, p->cfg.cro_id, 3);
        cf_line_str(&l, " dto 0x");
        cf_line_hex(&l, p->cfg.dto_id, 3);
        cf_line_str(&l, " hw 0x");
        cf_line_hex(&l, p->cfg.hw_id, 4);
        cf_hal_log(h, l.buf);
}

void cf_stm32_node_can(struct cf_hal *h, const struct cf_provision *p, bool with_irq)
{
        struct cf_line l;
        int r = cf_stm32_can_start(h, p->cfg.cro_id, p->bitrate, with_irq);
        cf_line_init(&l);
        if (r < 0) {
                cf_line_str(&l, "can: init failed (");
                cf_line_int(&l, r);
                cf_line_str(&l, "), running without CAN");
        } else {
                cf_line_str(&l, "can: ");
                cf_line_dec(&l, p->bitrate / 1000u);
                cf_line_str(&l, " kbit/s, filter 0x");
                cf_line_hex(&l, p->cfg.cro_id, 3);
        }
        cf_hal_log(h, l.buf);
}

void cf_stm32_node_dispatch(struct cf_hal *h, struct cf_ccp_slave *s, const struct cf_node_config *cfg,
                            const struct cf_bxcan_frame *f)
{
        uint32_t gid;
        (void) h;
        if (f->id == cfg->cro_id)
                cf_ccp_slave_rx(s, f->data, f->dlc);
        else if (cf_ccp_slave_group_id(s, &gid) && f->id == gid)
                cf_ccp_slave_group_rx(s, f->data, f->dlc);
}

void cf_stm32_node_group_filter(struct cf_hal *h, const struct cf_ccp_slave *s)
{
        uint32_t gid = 0;
        bool on = cf_ccp_slave_group_id(s, &gid);
        cf_stm32_can_group_filter(h, on, gid);
}
