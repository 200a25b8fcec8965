/* A simulated node's life: power-on, polling cadence, software resets and power cuts. */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "canfleet/image.h"
#include "bank.h"
#include "canfleet/ccp.h"
#include "sim-node.h"

#define POLL_BUSY_US  1000u  /* a node with work waits at most this long for its next poll */
#define POLL_IDLE_US  10000u /* an idle node: its main loop ticks, lockouts expire */
#define WORK_SLICE_US 2000u  /* CPU-bound work (boot CRC, BUILD_CHKSUM) per turn of the loop */

uint64_t sim_now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static uint64_t hal_now_us(void *ctx)
{
        const struct sim_node *n = ctx;
        return n && n->clock_at_us ? n->clock_at_us : sim_now_us();
}

static void hal_log(void *ctx, const char *msg)
{
        struct sim_node *n = ctx;
        if (!n->quiet)
                fprintf(stderr, "%s: %s\n", n->name, msg);
}

static int hal_can_send(void *ctx, uint32_t id, const uint8_t *data, uint8_t dlc)
{
        struct sim_node *n = ctx;
        if (n->silent || n->off)
                return 0; /* nobody hears it: for the node the frame left the mailbox */
        return n->send(n->send_ctx, n, id, data, dlc);
}

/* The simulated chip's bootloader is this program's C code, but the dual-bank core checks that a bank
 * holds one before it flips to it (bank.h): the factory programs each bank's copy, so the vector
 * table of that copy is put where the real one would be (SP at the top of DTCM, reset handler in
 * the bank's sector 0). */
static void factory_bootloaders(struct sim_node *n)
{
        for (unsigned bank = 1; bank <= 2; bank++) {
                uint32_t base = cf_f7_bank_addr(bank);
                uint8_t vt[8];
                if (cf_bank_has_bootloader(&n->hal, bank))
                        continue;
                cf_le32_put(vt, CF_SRAM_BASE + CF_SRAM_SIZE);
                cf_le32_put(vt + 4, base + 0x1C1u);
                cf_hal_host_poke(&n->hal, base, vt, sizeof(vt));
        }
}

int sim_node_init(struct sim_node *n, const char *path, const struct cf_node_config *cfg_template,
                  uint16_t sa, const uint8_t *fleet_key, bool flash_timing)
{
        int r = sim_flash_open(&n->flash, path, true, false,
                               cfg_template->dual_bank ? SIM_LAYOUT_F7_DUAL : SIM_LAYOUT_F4_COPY);
        if (r < 0)
                return r;

        n->sa = sa;
        n->cfg = *cfg_template;
        n->cfg.station = sa;
        n->cfg.cro_id = cfg_template->cro_id + sa;
        n->cfg.dto_id = cfg_template->dto_id + sa;
        if (fleet_key)
                cf_node_secret(fleet_key, n->flash.hdr->uid, n->cfg.node_secret);

        n->hal = (struct cf_hal){
            .flash = n->flash.flash,
            .now_us = hal_now_us,
            .clock_ctx = n,
            .can_send = hal_can_send,
            .can_ctx = n,
            .log = hal_log,
            .log_ctx = n,
            .erase_us_per_kb = flash_timing ? 8000u : 0u,
            .program_us_per_word = flash_timing ? 16u : 0u,
        };
        memcpy(n->hal.uid, n->flash.hdr->uid, sizeof(n->hal.uid));
        if (n->cfg.dual_bank) {
                n->hal.dual_bank = true;
                /* offset 40 of a page-aligned mapping: aligned, whatever "packed" makes of it */
                n->hal.option_bytes = (uint16_t *) (void *) ((uint8_t *) n->flash.map +
                                                             offsetof(struct sim_flash_header, option_bytes));
                factory_bootloaders(n);
        }
        n->off = true;
        return 0;
}

int sim_node_install(struct sim_node *n, const uint8_t *image)
{
        if (n->cfg.dual_bank) {
                unsigned bank = cf_image_link_bank(image);
                if (!bank)
                        return -EINVAL;
                for (unsigned b = 1; b <= 2; b++)
                        if (cf_image_check_at(n->flash.flash + (cf_f7_app_addr(b) - CF_FLASH_BASE), NULL,
                                              cf_f7_app_addr(b)) == CF_IMAGE_OK)
                                return 0;
                cf_hal_host_poke(&n->hal, cf_f7_app_addr(bank), image, CF_IMAGE_AREA_SIZE);
                n->flash.hdr->option_bytes[0] = cf_f7_boot_add_of(bank);
                return 1;
        }
        if (cf_image_check(n->flash.flash + (CF_AREA_APP_ADDR - CF_FLASH_BASE), NULL) == CF_IMAGE_OK)
                return 0;
        cf_hal_host_poke(&n->hal, CF_AREA_APP_ADDR, image, CF_IMAGE_AREA_SIZE);
        return 1;
}

static void power_on(struct sim_node *n, uint64_t now, bool from_reset)
{
        n->off = false;
        n->flash.hdr->boot_count++;
        n->flash.hdr->hw_id = n->cfg.hw_id;
        n->hal.reset_requested = false;
        n->hal.powered_off = false;
        n->hal.cut_at_op = 0;
        int r = cf_hal_host_init(&n->hal);
        if (r < 0)
                fprintf(stderr, "%s: host HAL init failed: %s\n", n->name, strerror(-r));
        if (n->cut_pending && (!n->cut.after_reset || from_reset)) {
                /* Counted from here: the HAL's operation counter runs on across power-ons. */
                n->cut_base = n->hal.flash_ops;
                n->hal.cut_at_op = n->cut_base + n->cut.at_op;
                n->hal.cut_torn = n->cut.torn;
                n->cut_pending = false;
        }
        if (!from_reset)
                memset(&n->node, 0, sizeof(n->node)); /* RAM does not survive a power cut */
        /* The chip starts the bank BOOT_ADD0 names (bank 1 when it names neither). */
        if (n->cfg.dual_bank)
                n->hal.running_bank = cf_hal_host_boot_bank(&n->hal);
        n->app_since_us = 0;
        n->app_said = false;
        cf_node_power_on(&n->node, &n->hal, &n->cfg, n->flash.hdr->boot_count);
        n->next_poll_us = now;
}

void sim_node_power_on(struct sim_node *n, uint64_t now)
{
        power_on(n, now, false);
}

/* Power cut or software reset after the node ran: true when one happened. */
static bool after_event(struct sim_node *n, uint64_t now)
{
        if (n->hal.powered_off) {
                /* numbered as --power-cut counts: from where the cut was armed */
                fprintf(stderr,
                        "%s: power cut at flash operation %" PRIu64 "%s (%" PRIu64 " since start-up)%s\n",
                        n->name, n->hal.flash_ops - n->cut_base, n->hal.cut_torn ? ", torn" : "",
                        n->hal.flash_ops, n->cut.stay_off ? ", staying off" : "");
                n->off = true;
                n->hal.cut_at_op = 0;
                n->dead = n->cut.stay_off;
                n->power_up_at_us = now + SIM_POWER_UP_DELAY_US;
                n->next_poll_us = n->dead ? UINT64_MAX : n->power_up_at_us;
                return true;
        }
        if (n->hal.reset_requested) {
                power_on(n, now, true);
                return true;
        }
        return false;
}

/* The dual-bank application's part: it confirms its trial once it has run a while, unless it is
 * the failing application of --app-fails-after-update, which crashes first (a watchdog reset), or
 * the one of --app-no-confirm, which leaves the confirmation to the gateway. */
static void app_trial(struct sim_node *n)
{
        if (!n->cfg.dual_bank || n->node.phase != CF_NODE_APP) {
                n->app_since_us = 0;
                n->app_said = false;
                return;
        }
        uint64_t t = sim_now_us();
        if (!n->app_since_us)
                n->app_since_us = t;
        if (n->node.slave.trial != CF_TRIAL_PENDING)
                return;
        if (n->app_fails) {
                if (t - n->app_since_us >= SIM_APP_CRASH_US) {
                        fprintf(stderr, "%s: the new application crashed before confirming (--app-fails-after-update)\n",
                                n->name);
                        cf_hal_reset(&n->hal);
                }
                return;
        }
        if (n->app_no_confirm) {
                if (!n->app_said)
                        fprintf(stderr, "%s: the new application runs and does not confirm itself (--app-no-confirm)\n",
                                n->name);
                n->app_said = true;
                return;
        }
        if (t - n->app_since_us >= SIM_APP_CONFIRM_US && cf_ccp_slave_confirm(&n->node.slave) == 0 &&
            n->node.slave.trial == CF_TRIAL_CONFIRMED)
                fprintf(stderr, "%s: the application confirmed its trial\n", n->name);
        /* -EBUSY: again at the next poll */
}

static bool cpu_work(const struct sim_node *n)
{
        return n->node.phase == CF_NODE_BOOTING || n->node.slave.busy_cmd != 0;
}

static bool has_work(const struct sim_node *n)
{
        return cpu_work(n) || n->node.phase == CF_NODE_RESETTING || n->node.slave.reset_pending ||
               n->hal.erase_sector >= 0 || cf_group_pending(&n->node.slave.group);
}

/* Time until which the flash controller is busy, 0 when it is not. */
static uint64_t flash_busy_until(const struct sim_node *n, uint64_t t)
{
        uint64_t until = 0;
        if (n->hal.erase_sector >= 0 && n->hal.erase_done_us > t)
                until = n->hal.erase_done_us;
        if (n->hal.busy_until_us > t && n->hal.busy_until_us > until)
                until = n->hal.busy_until_us;
        return until;
}

static void schedule(struct sim_node *n, uint64_t now)
{
        uint64_t t = sim_now_us();
        uint64_t busy = flash_busy_until(n, t);
        if (busy)
                n->next_poll_us = busy < t + POLL_BUSY_US ? busy : t + POLL_BUSY_US;
        else if (cpu_work(n))
                n->next_poll_us = now;
        else if (has_work(n))
                n->next_poll_us = t + POLL_BUSY_US;
        else /* on a common 10 ms grid, so idle nodes share one wake-up */
                n->next_poll_us = (t / POLL_IDLE_US + 1) * POLL_IDLE_US;
}

void sim_node_run(struct sim_node *n, uint64_t now)
{
        if (n->dead)
                return;
        if (n->off) {
                if (now < n->power_up_at_us)
                        return;
                fprintf(stderr, "%s: power restored\n", n->name);
                power_on(n, now, false);
        }
        if (now < n->next_poll_us)
                return;

        uint64_t start = sim_now_us();
        for (;;) {
                cf_node_poll(&n->node);
                app_trial(n);
                if (after_event(n, now))
                        return;
                uint64_t t = sim_now_us();
                if (!cpu_work(n) || flash_busy_until(n, t) || t - start >= WORK_SLICE_US)
                        break;
        }
        schedule(n, now);
}

void sim_node_rx(struct sim_node *n, const uint8_t *data, uint8_t dlc, uint64_t now)
{
        if (!sim_node_listening(n))
                return;
        bool pending = n->node.phase == CF_NODE_APP && n->node.slave.trial == CF_TRIAL_PENDING;
        cf_node_rx(&n->node, data, dlc);
        /* A command that ended a trial is the master's CONFIRM (the only one that can): said apart
         * from the application's own confirmation, so that a test sees who confirmed. */
        if (pending && n->node.phase == CF_NODE_APP && n->node.slave.trial == CF_TRIAL_CONFIRMED)
                fprintf(stderr, "%s: the trial was confirmed by the master's CCP CONFIRM\n", n->name);
        if (after_event(n, now))
                return;
        n->next_poll_us = now; /* a command may have started work */
}

void sim_node_rx_group(struct sim_node *n, const uint8_t *data, uint8_t dlc, uint64_t now, uint64_t at_us)
{
        if (!sim_node_listening(n))
                return;
        /* With the timing models the node takes the frame when it came off the bus, or when the
         * flash finished the previous slot if that is later (the frame waited in the port's RX
         * ring), not when the simulator's loop got round to it: a loop that runs late hands over a
         * burst of frames that were really 111 us (1 Mbit/s) or more apart, and a flash model on
         * wall time would then find itself busy and lose them. The flash (~32 us a slot) outpaces
         * the bus, so on a real node the ring never fills from programming. */
        uint64_t t = at_us ? at_us : sim_now_us();
        if (n->hal.busy_until_us > t)
                t = n->hal.busy_until_us;
        n->clock_at_us = t;
        cf_node_rx_group(&n->node, data, dlc);
        n->clock_at_us = 0;
        /* Frames the flash could not take yet wait in the node's backlog: poll when it is free. */
        if (cf_group_pending(&n->node.slave.group) && n->next_poll_us > now)
                schedule(n, now);
}

bool sim_node_listening(const struct sim_node *n)
{
        return !n->silent && !n->off;
}

void sim_node_fini(struct sim_node *n)
{
        sim_flash_sync(&n->flash);
        sim_flash_close(&n->flash);
}
