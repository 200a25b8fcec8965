/* canfleet-app: the IAP application in area B (0x08020000; dual-bank: either bank's area): normal work with the CCP slave beside it. */
#include "canfleet/image.h"
#include "ccp-slave.h"
#include "handoff.h"
#include "log-line.h"
#include "node-setup.h"
#include "stm32-regs.h"

__attribute__((section(".noinit"))) volatile struct cf_handoff cf_handoff;

#define HEARTBEAT_MS 10000u

static const char *const update_names[] = {"none", "installed", "rejected", "verify failed",
                                           "install failed 3 times, not retried", "swapped"};

/* Dual-bank: how long the application must have run its normal work before it confirms a trial
 * (docs/design.md §9). A product puts its own health check here (sensors answer, the control loop
 * settles, the gateway is reachable...); this IAP application's own health is that its main loop,
 * CAN and watchdog kept going for this long. */
#define CONFIRM_AFTER_MS 5000u

/* The packed trailer of B is the one truth about our version: canfleetctl image pack wrote it. */
static void banner(struct cf_hal *h, uint32_t boot_count, uint8_t last_update, bool handoff_ok)
{
        struct cf_image_info info;
        struct cf_line l;
        cf_image_info_parse(cf_hal_flash_ptr(h) + (cf_stm32_app_addr(h) + CF_TRAILER_OFFSET - CF_FLASH_BASE),
                            &info);

        cf_line_init(&l);
        cf_line_str(&l, "canfleet-app v");
        if (info.magic == CF_IMAGE_MAGIC)
                cf_line_version(&l, info.ver_major, info.ver_minor, info.ver_patch);
        else
                cf_line_str(&l, "?.?.? (not packed)");
        cf_line_str(&l, " release ");
        cf_line_dec(&l, info.release);
        cf_line_str(&l, " hw 0x");
        cf_line_hex(&l, info.hw_id, 4);
        cf_line_str(&l, ", boot #");
        cf_line_dec(&l, boot_count);
        cf_line_str(&l, ", last update: ");
        cf_line_str(&l, last_update < sizeof(update_names) / sizeof(update_names[0]) ? update_names[last_update] : "?");
        if (!handoff_ok)
                cf_line_str(&l, " (no handoff from the bootloader)");
        cf_hal_log(h, l.buf);
}

/* Stands for what the node is really for (control loop, sensors…): it must never stop for CCP. */
static void normal_work(struct cf_hal *h, uint32_t *next_beat, const struct cf_ccp_slave *s)
{
        uint32_t now = cf_hal_clock_ms(h);
        if ((int32_t) (now - *next_beat) < 0)
                return;
        *next_beat = now + HEARTBEAT_MS;
        struct cf_line l;
        cf_line_init(&l);
        cf_line_str(&l, "app: alive, ");
        cf_line_dec(&l, s->ticks);
        cf_line_str(&l, " work ticks");
        cf_hal_log(h, l.buf);
}

int main(void)
{
        struct cf_hal *h = &cf_stm32_hal;
        static struct cf_provision prov;
        static struct cf_ccp_slave slave;

        cf_stm32_init(h, "canfleet-app");
        /* The bootloader started it; the application only keeps kicking. */
        h->iwdg_on = true;
        cf_hal_watchdog_kick(h);

        uint32_t boot_count = 0;
        uint8_t last_update = 0;
        bool handoff_ok = cf_handoff_read(&cf_handoff, &boot_count, &last_update);
        banner(h, boot_count, last_update, handoff_ok);

        cf_stm32_node_setup(h, &prov);
        cf_stm32_node_can(h, &prov, true);
        cf_ccp_slave_init(&slave, h, &prov.cfg, CF_MODE_APP, last_update, boot_count);

        uint32_t next_beat = cf_hal_clock_ms(h) + HEARTBEAT_MS;
        uint32_t started = cf_hal_clock_ms(h);
        for (;;) {
                struct cf_bxcan_frame f;
                normal_work(h, &next_beat, &slave);
                /* A trial confirmed once this application has proven itself; -EBUSY: next pass. */
                if (CF_PORT_DUAL_BANK && slave.trial == CF_TRIAL_PENDING &&
                    cf_hal_clock_ms(h) - started >= CONFIRM_AFTER_MS)
                        (void) cf_ccp_slave_confirm(&slave);
                while (cf_stm32_can_recv(h, &f))
                        cf_stm32_node_dispatch(h, &slave, &prov.cfg, &f);
                cf_ccp_slave_poll(&slave);
                cf_stm32_node_group_filter(h, &slave);
                cf_hal_watchdog_kick(h);
                /* Sleep until the next SysTick or CAN interrupt, unless a long CCP operation is running. */
                if (!slave.busy_cmd)
                        __asm__ volatile("wfi");
        }
}
