/* Fuzz target: a dual-bank node (docs/design.md §9) fed CAN frames, updates, confirmations, crashes and power cuts. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bank.h"
#include "canfleet/ccp.h"
#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "fuzz-crc.h"
#include "fuzz.h"
#include "fw-fixture.h"

/*
 * The node is an STM32F767 in dual-bank mode running v1 (release 1) from bank 1, both bootloaders in
 * place, and starts each input from the same snapshot. The input is a series of records (zeros past
 * the end):
 *   0x00-0x0F  a CAN frame on the node's CRO id: DLC = low nibble, then 8 data bytes
 *   0x1n b     advance the virtual clock by (b + 1) << n ms, without polling
 *   0x2n b     poll the node b + 1 times, the clock advancing n ms before each poll
 *   0x30       power cut now, then power up and boot
 *   0x31 b     arm a power cut at the (b % 32 + 1)th flash or option-byte operation from now (0x32: torn)
 *   0x4_       CONNECT, GET_SEED and the right UNLOCK (the gateway's seed & key)
 *   0x5n       a whole update (CONNECT ... DISCONNECT(end)) with test image n & 3, linked for the
 *              bank the node does not run from: 0 v2 (release 2), 1 v0.9 (release 0: rollback),
 *              2 another hardware id, 3 v3 (release 3)
 *   0x60       the application confirms its trial    0x61 the application crashes (a reset)
 *   0x62       CCP CONFIRM (0xCF10) in the current session
 *   others     poll once, the clock advancing 1 ms
 * A power-up always runs the boot to its end (powering up again after each reset or armed cut).
 *
 * Invariants, after every record:
 *  - each bank's bootloader sectors (0-3, and 12-15) never change;
 *  - running the application, the node runs a valid image of the bank it is in (CRC, trailer,
 *    vectors for that bank's address);
 *  - the same staged image never starts twice on trial without a confirmation or a new staging
 *    in between;
 *  - the running release never falls below the highest release ever confirmed (anti-rollback
 *    across banks, swaps and reverts);
 *  - at the end, after a power cut, the node boots into the application, never into recovery.
 */

#define N_IMAGES 4u

static struct fx fx, fx_start;
static uint8_t *flash_start;
static uint8_t *images[3][N_IMAGES]; /* [bank][n] */

static struct {
        bool pending_seen;   /* an image started on trial since the last confirmation / staging */
        uint32_t pending_crc;
        unsigned pending_bank;
        uint32_t max_confirmed; /* highest release seen confirmed (or running untried at the start) */
} m;

static void *xmalloc(size_t n)
{
        void *p = malloc(n);
        if (!p)
                abort();
        return p;
}

/* A boot CRCs both 256 KB areas: the memo of fuzz-ccp-slave's kind is not worth it here, but the
 * erased-run jump of fuzz-crc.h is (-Wl,--wrap=cf_crc32_le). */
uint32_t __wrap_cf_crc32_le(uint32_t crc, const void *data, size_t len)
{
        return fuzz_crc_le(crc, data, len);
}

static void setup(void)
{
        uint8_t *v1 = xmalloc(CF_IMAGE_AREA_SIZE);

        for (unsigned bank = 1; bank <= 2; bank++) {
                uint32_t app = cf_f7_app_addr(bank);
                for (unsigned i = 0; i < N_IMAGES; i++)
                        images[bank][i] = xmalloc(CF_IMAGE_AREA_SIZE);
                fx_image_at(images[bank][0], app, FX_HW_ID, 2, 0, 0, 2, 600, 2);
                fx_image_at(images[bank][1], app, FX_HW_ID, 0, 9, 0, 0, 400, 3);
                fx_image_at(images[bank][2], app, FX_HW_ID + 1, 2, 0, 0, 2, 400, 4);
                fx_image_at(images[bank][3], app, FX_HW_ID, 3, 0, 0, 3, 500, 5);
        }
        fx_init_dual(&fx);
        if (cf_hal_host_init(&fx.hal) < 0)
                abort();
        fx_image_at(v1, CF_F7_BANK1_APP_ADDR, FX_HW_ID, 1, 0, 0, 1, 800, 1);
        fx_poke_area(&fx, CF_F7_BANK1_APP_ADDR, v1);
        /* the rest of each bootloader: filled, so that an erase or a stray write would show */
        uint8_t *fill = xmalloc(0xC000u);
        for (uint32_t i = 0; i < 0xC000u; i++)
                fill[i] = (uint8_t) (i * 131u + (i >> 9));
        for (unsigned bank = 1; bank <= 2; bank++)
                cf_hal_host_poke(&fx.hal, cf_f7_bank_addr(bank) + 0x100u, fill, 0xC000u - 0x100u);
        free(fill);
        fx_power_on(&fx);
        if (fx_run(&fx, NULL) != CF_NODE_APP)
                abort();
        flash_start = xmalloc(CF_F7_FLASH_SIZE);
        memcpy(flash_start, fx.flash, CF_F7_FLASH_SIZE);
        fx_start = fx;
        free(v1);
}

static uint8_t status(unsigned byte)
{
        uint8_t st[CF_STATUS_SIZE];
        cf_ccp_slave_status(&fx.node.slave, st);
        return st[byte];
}

static void check_running(void)
{
        for (unsigned bank = 1; bank <= 2; bank++) {
                uint32_t a = cf_f7_bank_addr(bank) - CF_FLASH_BASE;
                FUZZ_CHECK(memcmp(fx.flash + a, flash_start + a, 0x10000u) == 0,
                           "bank %u's bootloader sectors changed", bank);
        }
        if (fx.node.phase != CF_NODE_APP || fx.node.slave.reset_pending)
                return;
        unsigned bank = fx.hal.running_bank;
        uint32_t app = cf_f7_app_addr(bank);
        struct cf_image_info info;
        FUZZ_CHECK(cf_image_check_at(fx.flash + (app - CF_FLASH_BASE), &info, app) == CF_IMAGE_OK,
                   "the application runs from bank %u, which holds no valid image", bank);
        FUZZ_CHECK(info.release >= m.max_confirmed, "release %u runs, %u was confirmed before", info.release,
                   m.max_confirmed);
        if (status(CF_STATUS_TRIAL) == CF_TRIAL_CONFIRMED && info.release > m.max_confirmed)
                m.max_confirmed = info.release;
}

/* The node came up running something: is it an image on trial, and its first run? */
static void note_boot(void)
{
        if (fx.node.phase != CF_NODE_APP || fx.node.slave.trial != CF_TRIAL_PENDING)
                return;
        uint32_t crc = cf_le32_get(fx.flash + (cf_f7_app_addr(fx.hal.running_bank) - CF_FLASH_BASE) + CF_CRC_OFFSET);
        FUZZ_CHECK(!(m.pending_seen && m.pending_crc == crc && m.pending_bank == fx.hal.running_bank),
                   "the image of bank %u ran on trial twice without a confirmation", fx.hal.running_bank);
        m.pending_seen = true;
        m.pending_crc = crc;
        m.pending_bank = fx.hal.running_bank;
}

static void power_up(void)
{
        /* An image staged and not tried yet (a DISCONNECT(end) accepted, through whatever frames):
         * its trial is a new one. */
        for (unsigned bank = 1; bank <= 2; bank++) {
                struct cf_bank b;
                cf_bank_read(&fx.hal, bank, true, &b);
                if (cf_bank_requested(&b))
                        m.pending_seen = false;
        }
        for (unsigned i = 0; i < 64; i++) {
                fx_power_on(&fx);
                int r = fx_run(&fx, NULL);
                if (r != -1) {
                        FUZZ_CHECK(r == CF_NODE_APP || r == CF_NODE_RECOVERY, "boot did not end (%d)", r);
                        note_boot();
                        return;
                }
        }
        FUZZ_CHECK(false, "64 power cuts in a row");
}

static void after_event(void)
{
        if (fx.hal.powered_off || fx.hal.reset_requested)
                power_up();
}

static void confirmed_now(void)
{
        if (fx.node.phase == CF_NODE_APP && fx.node.slave.trial == CF_TRIAL_CONFIRMED)
                m.pending_seen = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool ready;
        struct fuzz_in in = {data, size};

        if (!ready) {
                setup();
                ready = true;
        }
        memcpy(fx.flash, flash_start, CF_F7_FLASH_SIZE);
        fx = fx_start;
        memset(&m, 0, sizeof(m));
        m.max_confirmed = 1;

        while (fuzz_left(&in) > 0) {
                uint8_t op = fuzz_u8(&in);
                uint8_t f[8];

                if (op <= 0x0F) {
                        fuzz_bytes(&in, f, 8);
                        cf_node_rx(&fx.node, f, op);
                        after_event();
                } else if ((op & 0xF0) == 0x10) {
                        fx.now_us += (uint64_t) (fuzz_u8(&in) + 1u) << (op & 0x0F) << 10;
                } else if ((op & 0xF0) == 0x20) {
                        unsigned n = fuzz_u8(&in) + 1u;
                        for (unsigned i = 0; i < n; i++) {
                                fx_poll(&fx, (uint64_t) (op & 0x0F) * 1000u);
                                after_event();
                        }
                } else if (op == 0x30) {
                        fx.hal.powered_off = true;
                        power_up();
                } else if (op == 0x31 || op == 0x32) {
                        fx.hal.cut_at_op = fx.hal.flash_ops + fuzz_u8(&in) % 32u + 1u;
                        fx.hal.cut_torn = op == 0x32;
                } else if ((op & 0xF0) == 0x40) {
                        (void) fx_connect_unlock(&fx);
                        after_event();
                } else if ((op & 0xF0) == 0x50) {
                        unsigned other = fx.hal.running_bank == 2u ? 1u : 2u;
                        (void) fx_upgrade(&fx, images[other][op & 3u]);
                        after_event();
                } else if (op == 0x60) {
                        if (fx.node.phase == CF_NODE_APP)
                                (void) cf_ccp_slave_confirm(&fx.node.slave);
                        after_event();
                } else if (op == 0x61) {
                        cf_hal_reset(&fx.hal);
                        after_event();
                } else if (op == 0x62) {
                        (void) fx_confirm(&fx);
                        after_event();
                } else {
                        fx_poll(&fx, 1000);
                        after_event();
                }
                confirmed_now(); /* by the application, CCP CONFIRM or frames that make one */
                check_running();
        }

        /* The end: a power cut, and the node must come up in an application from a valid bank. */
        fx.hal.cut_at_op = 0;
        fx.hal.powered_off = true;
        power_up();
        FUZZ_CHECK(fx.node.phase == CF_NODE_APP, "after a power cut the node boots into recovery");
        check_running();
        return 0;
}
