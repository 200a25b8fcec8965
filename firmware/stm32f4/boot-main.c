/* canfleet-boot: the bootloader in area A: install from C (or, dual-bank, swap banks), check the application and jump, or recover over CCP. */
#include "boot.h"
#include "canfleet/image.h"
#include "ccp-slave.h"
#include "handoff.h"
#include "image-diag.h"
#include "log-line.h"
#include "node-setup.h"

__attribute__((section(".noinit"))) volatile struct cf_handoff cf_handoff;

static const char *const update_names[] = {"none", "installed", "rejected", "verify failed",
                                           "install failed 3 times, not retried", "swapped"};

static void log_area(struct cf_hal *h, const char *what, int status, const struct cf_image_info *info)
{
        struct cf_line l;
        cf_line_init(&l);
        cf_line_str(&l, "boot: ");
        cf_line_str(&l, what);
        if (status == CF_IMAGE_OK) {
                cf_line_str(&l, " valid: v");
                cf_line_version(&l, info->ver_major, info->ver_minor, info->ver_patch);
                cf_line_str(&l, " release ");
                cf_line_dec(&l, info->release);
                cf_line_str(&l, " hw 0x");
                cf_line_hex(&l, info->hw_id, 4);
        } else {
                cf_line_str(&l, " invalid: ");
                cf_line_str(&l, cf_image_status_str(status));
        }
        cf_hal_log(h, l.buf);
}

static void recovery(struct cf_hal *h, const struct cf_provision *p, uint8_t last_update,
                     uint32_t boot_count)
{
        static struct cf_ccp_slave slave;
        struct cf_line l;

        cf_line_init(&l);
        cf_line_str(&l, "boot: no valid application: recovery mode, CCP on cro 0x");
        cf_line_hex(&l, p->cfg.cro_id, 3);
        cf_hal_log(h, l.buf);
        /* By interrupt, as the application: a group transfer's frames come back to back and the
         * controller's FIFO holds only 3 (recovery never jumps, so the interrupt stays ours). */
        cf_stm32_node_can(h, p, true);
        cf_ccp_slave_init(&slave, h, &p->cfg, CF_MODE_BOOTLOADER, last_update, boot_count);
        for (;;) {
                struct cf_bxcan_frame f;
                while (cf_stm32_can_recv(h, &f))
                        cf_stm32_node_dispatch(h, &slave, &p->cfg, &f);
                cf_ccp_slave_poll(&slave);
                cf_stm32_node_group_filter(h, &slave);
                cf_hal_watchdog_kick(h);
        }
}

int main(void)
{
        struct cf_hal *h = &cf_stm32_hal;
        static struct cf_provision prov;
        static struct cf_boot boot;
        struct cf_line l;

        cf_stm32_init(h, "canfleet-boot");
        bool power_on = cf_stm32_reset_was_power_on();
        uint32_t boot_count = cf_handoff_next_boot_count(&cf_handoff, power_on);
        cf_stm32_iwdg_start(h);

        cf_line_init(&l);
        cf_line_str(&l, "canfleet-boot ");
        cf_line_dec(&l, CF_BOOTLOADER_VERSION >> 8);
        cf_line_str(&l, ".");
        cf_line_dec(&l, CF_BOOTLOADER_VERSION & 0xFFu);
        cf_line_str(&l, ": boot #");
        cf_line_dec(&l, boot_count);
        cf_hal_log(h, l.buf);

        cf_stm32_node_setup(h, &prov);
        cf_boot_init(&boot, h, &prov.cfg);
        enum cf_boot_outcome outcome;
        while ((outcome = cf_boot_step(&boot)) == CF_BOOT_BUSY)
                cf_hal_watchdog_kick(h);

        uint8_t last_update = cf_boot_last_update(&boot);
        if (last_update != 0 && last_update < sizeof(update_names) / sizeof(update_names[0])) {
                cf_line_init(&l);
                cf_line_str(&l, CF_PORT_DUAL_BANK ? "boot: update: " : "boot: update from C: ");
                cf_line_str(&l, update_names[last_update]);
                cf_hal_log(h, l.buf);
        }
        if (outcome == CF_BOOT_RESET) {
                cf_handoff_write(&cf_handoff, boot_count, last_update, h->clock_hse);
                cf_hal_reset(h);
        }

        /* The core decided; say why, from B itself. */
        struct cf_image_info info;
        uint32_t app = cf_stm32_app_addr(h);
        int status = cf_stm32_area_check(h, app, &info);
        log_area(h, CF_PORT_DUAL_BANK ? "this bank's application" : "B", status, &info);
        if (outcome == CF_BOOT_JUMP) {
                cf_handoff_write(&cf_handoff, boot_count, last_update, h->clock_hse);
                cf_line_init(&l);
                cf_line_str(&l, "boot: jumping to the application at 0x");
                cf_line_hex(&l, app, 8);
                cf_hal_log(h, l.buf);
                cf_hal_jump_to_app(h);
        }
        recovery(h, &prov, last_update, boot_count);
        return 0;
}
