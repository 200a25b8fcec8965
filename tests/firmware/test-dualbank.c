/* Dual-bank nodes (docs/design.md §9): trial boot, confirm, revert, anti-rollback, and the power-cut proof. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bank.h"
#include "cf-test.h"
#include "fw-fixture.h"

#define BANK1 CF_F7_BANK1_APP_ADDR
#define BANK2 CF_F7_BANK2_APP_ADDR

#define EXTRA_CUTS 3u /* random further cuts per cut point, while the node recovers */

/* v1 in bank 1 (release 1); v2 linked for bank 2 (release 2); v2 linked for bank 1; v0: release 0. */
static uint8_t img_v1[CF_IMAGE_AREA_SIZE], img_v2[CF_IMAGE_AREA_SIZE], img_v2_b1[CF_IMAGE_AREA_SIZE];
static uint8_t img_v0_b2[CF_IMAGE_AREA_SIZE], img_v3_b1[CF_IMAGE_AREA_SIZE], img_hw_b2[CF_IMAGE_AREA_SIZE];
static uint64_t prng_state = 0x9E3779B97F4A7C15ull;

static uint64_t prng(void)
{
        prng_state ^= prng_state << 13;
        prng_state ^= prng_state >> 7;
        prng_state ^= prng_state << 17;
        return prng_state;
}

static void make_images(void)
{
        /* small images: the sweep runs a whole update per cut point */
        fx_image_at(img_v1, BANK1, FX_HW_ID, 1, 0, 0, 1, 3000, 1);
        fx_image_at(img_v2, BANK2, FX_HW_ID, 2, 0, 0, 2, 3600, 2);
        fx_image_at(img_v2_b1, BANK1, FX_HW_ID, 2, 0, 0, 2, 3600, 2);
        fx_image_at(img_v0_b2, BANK2, FX_HW_ID, 0, 9, 0, 0, 12000, 9);
        fx_image_at(img_v3_b1, BANK1, FX_HW_ID, 3, 0, 0, 3, 16000, 3);
        fx_image_at(img_hw_b2, BANK2, FX_HW_ID + 1, 4, 0, 0, 4, 12000, 4);
}

/* A node with v1 in bank 1, booted, counters cleared. */
static void fresh(struct fx *f)
{
        fx_wipe(f);
        f->hal.cut_at_op = 0;
        f->hal.cut_torn = false;
        fx_poke_area(f, BANK1, img_v1);
        fx_power_on(f);
        CU_ASSERT_EQUAL_FATAL(fx_run(f, NULL), CF_NODE_APP);
        f->hal.flash_ops = f->hal.erases = f->hal.programs = f->hal.program_bytes = f->hal.option_writes = 0;
}

static uint8_t status(struct fx *f, unsigned byte)
{
        uint8_t st[CF_STATUS_SIZE];
        cf_ccp_slave_status(&f->node.slave, st);
        return st[byte];
}

/* Major version of the running image, from the status block (what a gateway reads). */
static unsigned running_version(struct fx *f)
{
        return status(f, 8);
}

static void test_swap_and_confirm(void)
{
        struct fx f;

        fx_init_dual(&f);
        fresh(&f);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_BANK), 1);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_NONE);
        CU_ASSERT_EQUAL(running_version(&f), 1);

        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        /* no copy: bank 1 still holds v1, bank 2 runs v2 on trial */
        CU_ASSERT_EQUAL(fx_area_check(&f, BANK1, NULL), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(f.hal.running_bank, 2);
        CU_ASSERT_EQUAL(f.option_bytes[0], CF_F7_BOOT_ADD_BANK2);
        CU_ASSERT_EQUAL(f.option_bytes[1], 0x0040u); /* BOOT_ADD1 (the ROM loader) left alone */
        CU_ASSERT_EQUAL(f.hal.option_writes, 1);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_BANK), 2);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_PENDING);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_SWAPPED);
        CU_ASSERT_EQUAL(running_version(&f), 2);

        /* the application confirms; a reset then keeps bank 2 */
        CU_ASSERT_EQUAL(cf_ccp_slave_confirm(&f.node.slave), 0);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_CONFIRMED);
        CU_ASSERT_EQUAL(cf_ccp_slave_confirm(&f.node.slave), 0); /* nothing left: OK, no write */
        uint64_t ops = f.hal.flash_ops;
        CU_ASSERT_EQUAL(cf_ccp_slave_confirm(&f.node.slave), 0);
        CU_ASSERT_EQUAL(f.hal.flash_ops, ops);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.hal.running_bank, 2);
        CU_ASSERT_EQUAL(running_version(&f), 2);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_CONFIRMED);
        CU_ASSERT_EQUAL(f.hal.option_writes, 1);

        /* the second update goes to bank 1 (the seed's goes to the wrong bank) */
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_v2), -EPROTO); /* linked for bank 2, which runs */
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v3_b1), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.hal.running_bank, 1);
        CU_ASSERT_EQUAL(running_version(&f), 3);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_PENDING);
        fx_fini(&f);
}

static void test_revert(void)
{
        struct fx f;

        fx_init_dual(&f);
        fresh(&f);
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(running_version(&f), 2);
        /* it crashes (a watchdog reset) before it confirms: the next boot goes back to v1 */
        cf_hal_reset(&f.hal);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.hal.running_bank, 1);
        CU_ASSERT_EQUAL(f.option_bytes[0], CF_F7_BOOT_ADD_BANK1);
        CU_ASSERT_EQUAL(running_version(&f), 1);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_REVERTED);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_NONE);
        /* and stays there */
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(running_version(&f), 1);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_REVERTED);

        /* DISCONNECT(end) alone does not try the reverted image again: it must be staged anew */
        struct cf_ccp_dto d;
        uint8_t cro[8];
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(&f), 0);
        cf_ccp_cro_disconnect(cro, fx_next_ctr(&f), CF_CCP_DISCONNECT_END, FX_STATION);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fx_cro(&f, cro, &d));
        CU_ASSERT_EQUAL(d.err, CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_FALSE(f.node.slave.reset_pending);
        /* staged anew it gets a new trial, and confirmed over CCP this time */
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_PENDING);
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(&f), 0);
        CU_ASSERT_EQUAL(fx_confirm(&f), 0);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_CONFIRMED);
        cf_hal_reset(&f.hal);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(running_version(&f), 2);
        CU_ASSERT_EQUAL(f.hal.running_bank, 2);
        fx_fini(&f);
}

static void test_confirm_service(void)
{
        struct fx f;
        struct cf_ccp_dto d;
        uint8_t cro[8];

        fx_init_dual(&f);
        fresh(&f);
        /* locked: refused */
        cf_ccp_cro_connect(cro, fx_next_ctr(&f), FX_STATION);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fx_cro(&f, cro, &d));
        CU_ASSERT_EQUAL(fx_confirm(&f), CF_CCP_ERR_ACCESS_LOCKED);
        /* nothing to confirm: OK */
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(&f), 0);
        CU_ASSERT_EQUAL(fx_confirm(&f), 0);

        /* on trial: the previous bank is not erased before a confirmation */
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(&f), 0);
        cf_ccp_cro_set_mta(cro, fx_next_ctr(&f), 0, CF_CCP_EXT_STAGING, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fx_cro(&f, cro, &d));
        cf_ccp_cro_clear_memory(cro, fx_next_ctr(&f), CF_IMAGE_AREA_SIZE);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fx_cro(&f, cro, &d));
        CU_ASSERT_EQUAL(d.err, CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(fx_area_check(&f, BANK1, NULL), CF_IMAGE_OK);
        /* a flash that refuses the record: NOT_AVAILABLE, still on trial */
        f.hal.fault_sectors = 1u << cf_bank_journal_sector(2);
        CU_ASSERT_EQUAL(fx_confirm(&f), CF_CCP_ERR_NOT_AVAILABLE);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_PENDING);
        f.hal.fault_sectors = 0;
        CU_ASSERT_EQUAL(fx_confirm(&f), 0);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_CONFIRMED);
        /* now the old bank may go */
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v3_b1), 0);

        /* a single-bank node answers CONFIRM with OK: nothing to confirm */
        static uint8_t img_f4[CF_IMAGE_AREA_SIZE];
        struct fx g;
        fx_init(&g);
        fx_image(img_f4, FX_HW_ID, 1, 0, 0, 1, 1000, 5);
        fx_poke_area(&g, CF_AREA_APP_ADDR, img_f4);
        fx_power_on(&g);
        CU_ASSERT_EQUAL_FATAL(fx_run(&g, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(&g), 0);
        CU_ASSERT_EQUAL(fx_confirm(&g), 0);
        CU_ASSERT_EQUAL(status(&g, CF_STATUS_BANK), 0);
        CU_ASSERT_EQUAL(status(&g, CF_STATUS_TRIAL), CF_TRIAL_NONE);
        fx_fini(&g);
        fx_fini(&f);
}

/* The records of a bank's journal, as written so far. */
static unsigned journal_records(struct fx *f, unsigned bank)
{
        struct cf_bank b;
        cf_bank_read(&f->hal, bank, true, &b);
        return b.next;
}

static void test_anti_rollback_across_banks(void)
{
        struct fx f;

        fx_init_dual(&f);
        fresh(&f);
        /* release 0 below the running 1: DISCONNECT(end) refuses, nothing requested */
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_v0_b2), -EPROTO);
        CU_ASSERT_EQUAL(f.node.slave.staged, CF_STAGED_INVALID);
        CU_ASSERT_EQUAL(journal_records(&f, 2), 0);
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_hw_b2), -EPROTO); /* another hardware id */
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.hal.running_bank, 1);

        /* the bootloader checks again: a request for a lower release written behind the slave's back
         * (a slave of an older firmware, a bit flipped) is refused, the node stays */
        fx_poke_area(&f, BANK2, img_v0_b2);
        struct cf_bank b;
        cf_bank_read(&f.hal, 2, true, &b);
        CU_ASSERT_EQUAL(cf_bank_append(&f.hal, &b, CF_BANK_STAGED), 0);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.hal.running_bank, 1);
        CU_ASSERT_EQUAL(f.hal.option_writes, 0);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_REJECTED);

        /* across a swap: with v2 (release 2) confirmed in bank 2, bank 1 cannot take release 1 */
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(cf_ccp_slave_confirm(&f.node.slave), 0);
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_v1), -EPROTO);
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_v2_b1), 0); /* the same release is fine */
        fx_fini(&f);
}

/* The group transfer (docs/design.md §7) fills the inactive bank as it fills C on an F4 node. */
static void test_group_transfer(void)
{
        struct fx f;
        uint32_t repaired = 0;

        fx_init_dual(&f);
        fresh(&f);
        CU_ASSERT_EQUAL_FATAL(fx_group_upgrade(&f, img_v2, 13, &repaired), 0);
        CU_ASSERT(repaired > 0);
        CU_ASSERT_EQUAL(memcmp(f.flash + (BANK2 - CF_FLASH_BASE), img_v2, CF_IMAGE_AREA_SIZE), 0);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(running_version(&f), 2);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_PENDING);
        /* and back the other way, into bank 1, once confirmed */
        CU_ASSERT_EQUAL(cf_ccp_slave_confirm(&f.node.slave), 0);
        CU_ASSERT_EQUAL_FATAL(fx_group_upgrade(&f, img_v3_b1, 0, NULL), 0);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(running_version(&f), 3);
        CU_ASSERT_EQUAL(f.hal.running_bank, 1);
        fx_fini(&f);
}

/* Each bank's bootloader decides the same: the chip started in the "wrong" bank (a torn BOOT_ADD0
 * names neither, and the chip falls back to bank 1) goes where it must. */
static void test_boot_from_either_bank(void)
{
        struct fx f;

        fx_init_dual(&f);
        fresh(&f);
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(cf_ccp_slave_confirm(&f.node.slave), 0);
        f.option_bytes[0] = 0xFFFFu; /* torn */
        fx_power_on(&f);
        CU_ASSERT_EQUAL(f.hal.running_bank, 1);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        /* bank 1's v1 is valid too, but never had a trial: back to the confirmed bank 2, BOOT_ADD0 repaired */
        CU_ASSERT_EQUAL(f.hal.running_bank, 2);
        CU_ASSERT_EQUAL(f.option_bytes[0], CF_F7_BOOT_ADD_BANK2);
        CU_ASSERT_EQUAL(running_version(&f), 2);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), CF_TRIAL_CONFIRMED);

        /* a bank without a bootloader is never flipped to */
        fresh(&f);
        memset(f.flash + (CF_F7_BANK2_ADDR - CF_FLASH_BASE), 0xFF, 8);
        CU_ASSERT_FALSE(cf_bank_has_bootloader(&f.hal, 2));
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(f.hal.running_bank, 1);
        CU_ASSERT_EQUAL(f.hal.option_writes, 0);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_REJECTED);
        fx_fini(&f);
}

/* ---- The power-cut proof: a cut at every flash and option-byte operation ---------------------- */

/*
 * One update as it happens on a node: the CCP transfer (erase the bank's journal and area,
 * PROGRAMs, the STAGED record), the boot (TRIAL, the flip, BOOTED) and then, the application being
 * healthy, its CONFIRMED — or, failing, a crash before it confirms and the revert (REVERTED, the flip
 * back). For every operation k of that, plain and torn, the power goes at k and then at random
 * points of the boots that follow. Whatever happens the node must:
 *   - always come up running a valid image (never recovery: the old one is always there),
 *   - never run one image on trial twice without its confirmation in between,
 *   - end, with a healthy application, confirmed on v2 once a gateway retried the update; with a
 *     failing one, on v1 with the trial reverted.
 */
struct run_log {
        unsigned pending_runs; /* boots into v2 on trial since its last confirmation */
        bool violation;
        bool recovery;
};

static uint64_t n_ops[2], cut_points[2][2], torn_option_cuts, extra_cuts;

/* The application's turn after the node came up (phase APP): a healthy one confirms, a failing one
 * crashes. Returns false when the power went meanwhile. */
static bool app_turn(struct fx *f, bool healthy, struct run_log *log)
{
        if (f->node.slave.trial != CF_TRIAL_PENDING)
                return true;
        if (++log->pending_runs > 1) {
                log->violation = true;
                printf("\n  an unconfirmed image ran twice\n");
        }
        if (!healthy) {
                cf_hal_reset(&f->hal);
                return true;
        }
        int r = cf_ccp_slave_confirm(&f->node.slave);
        if (f->hal.powered_off)
                return false;
        if (r == 0)
                log->pending_runs = 0;
        return true;
}

/* Power up and run (with cut_in random operations ahead, 0: none) until the node has settled: it
 * runs and its application has had its turn without a reset. false when the power went. */
static bool boot_settle(struct fx *f, bool healthy, struct run_log *log)
{
        for (unsigned i = 0; i < 8; i++) {
                int res = fx_run(f, &log->recovery);
                if (res == -1)
                        return false;
                if (res != CF_NODE_APP) {
                        log->violation = true;
                        return true;
                }
                if (status(f, CF_STATUS_MODE) != CF_MODE_APP ||
                    fx_area_check(f, cf_f7_app_addr(f->hal.running_bank), NULL) != CF_IMAGE_OK) {
                        printf("\n  runs an invalid image\n");
                        log->violation = true;
                }
                if (!app_turn(f, healthy, log))
                        return false;
                if (!f->hal.reset_requested)
                        return true;
        }
        log->violation = true;
        printf("\n  does not settle\n");
        return true;
}

/* After the cut: power up again, with random further cuts, until the node settles. */
static void recover(struct fx *f, bool healthy, struct run_log *log, uint64_t span)
{
        for (unsigned j = 0; j < EXTRA_CUTS; j++) {
                f->hal.cut_at_op = f->hal.flash_ops + 1 + prng() % span;
                f->hal.cut_torn = prng() & 1;
                fx_power_on(f);
                if (boot_settle(f, healthy, log)) {
                        f->hal.cut_at_op = 0;
                        return;
                }
                extra_cuts++;
        }
        f->hal.cut_at_op = 0;
        fx_power_on(f);
        if (!boot_settle(f, healthy, log))
                log->violation = true;
}

/* The whole update with the power going at its operation k (0: never). Returns the running major
 * version once settled, 0 on a violation. */
static unsigned update_image_cut(struct fx *f, const uint8_t *image, uint64_t k, bool torn, bool healthy,
                                 struct run_log *log)
{
        f->hal.cut_at_op = k ? f->hal.flash_ops + k : 0;
        f->hal.cut_torn = torn;
        int r = fx_upgrade(f, image);
        bool cut = f->hal.powered_off;
        if (!cut && r == 0) {
                fx_power_on(f); /* the reset the DISCONNECT asked for: RAM would not survive either */
                cut = !boot_settle(f, healthy, log);
        } else if (!cut) {
                /* refused without a cut: only once the first attempt left the node on trial */
                printf("\n  update refused (%d) without a cut\n", r);
                log->violation = true;
        }
        if (cut) {
                if (torn && f->hal.option_op == f->hal.flash_ops && f->option_bytes[0] == 0xFFFFu)
                        torn_option_cuts++;
                recover(f, healthy, log, 6); /* a boot writes at most about 5 things */
        }
        if (log->violation || log->recovery)
                return 0;
        return running_version(f);
}

static unsigned update_cut(struct fx *f, uint64_t k, bool torn, bool healthy, struct run_log *log)
{
        return update_image_cut(f, img_v2, k, torn, healthy, log);
}

static void measure(bool healthy)
{
        struct fx f;
        struct run_log log = {0};

        fx_init_dual(&f);
        fresh(&f);
        CU_ASSERT_EQUAL_FATAL(update_cut(&f, 0, false, healthy, &log), healthy ? 2 : 1);
        n_ops[healthy] = f.hal.flash_ops;
        CU_ASSERT_EQUAL(f.hal.option_writes, healthy ? 1 : 2);
        CU_ASSERT_EQUAL(status(&f, CF_STATUS_TRIAL), healthy ? CF_TRIAL_CONFIRMED : CF_TRIAL_REVERTED);
        printf("\n  clean dual-bank update, application %s: %llu flash operations (%llu option-byte writes)\n",
               healthy ? "healthy" : "failing", (unsigned long long) n_ops[healthy],
               (unsigned long long) f.hal.option_writes);
        fx_fini(&f);
}

static void sweep(bool healthy, bool torn)
{
        struct fx f;
        unsigned failures = 0;

        CU_ASSERT_FATAL(n_ops[healthy] > 0);
        fx_init_dual(&f);
        for (uint64_t k = 1; k <= n_ops[healthy]; k++) {
                struct run_log log = {0};
                fresh(&f);
                unsigned v = update_cut(&f, k, torn, healthy, &log);
                bool ok = v != 0;
                if (ok && healthy && v == 1) {
                        /* the gateway tries again, and once more without a cut */
                        memset(&log, 0, sizeof(log));
                        v = update_cut(&f, 1 + prng() % n_ops[healthy], prng() & 1, true, &log);
                        if (v == 1) {
                                memset(&log, 0, sizeof(log));
                                v = update_cut(&f, 0, false, true, &log);
                        }
                        ok = v == 2;
                }
                if (ok && healthy)
                        ok = status(&f, CF_STATUS_TRIAL) == CF_TRIAL_CONFIRMED;
                if (ok && !healthy)
                        ok = v == 1 && status(&f, CF_STATUS_TRIAL) != CF_TRIAL_PENDING;
                if (!ok) {
                        printf("\n  %s application, %s cut at op %llu: version %u, trial %u, bank %u\n",
                               healthy ? "healthy" : "failing", torn ? "torn" : "plain", (unsigned long long) k,
                               v, status(&f, CF_STATUS_TRIAL), f.hal.running_bank);
                        failures++;
                }
                cut_points[healthy][torn]++;
        }
        CU_ASSERT_EQUAL(failures, 0);
        CU_ASSERT_EQUAL(cut_points[healthy][torn], n_ops[healthy]);
        fx_fini(&f);
}

/*
 * Many updates in a row, alternating banks, with a power cut at a random operation of each (plain
 * or torn, further ones while recovering) and applications that confirm or crash at random (fixed
 * seed). After each: a valid image runs, nothing runs unconfirmed twice, nothing is left on trial,
 * and the running release never falls below the highest release ever confirmed (anti-rollback
 * across banks and reverts).
 */
static void test_random_updates(void)
{
        static uint8_t img[CF_IMAGE_AREA_SIZE];
        struct fx f;
        unsigned confirmed = 1, updates = 0, reverts = 0, failures = 0;

        CU_ASSERT_FATAL(n_ops[1] > 0);
        fx_init_dual(&f);
        fresh(&f);
        for (unsigned round = 0; round < 60; round++) {
                struct run_log log = {0};
                unsigned bank = 3u - f.hal.running_bank, next = confirmed + 1u;
                bool healthy = prng() % 3 != 0;
                fx_image_at(img, cf_f7_app_addr(bank), FX_HW_ID, (uint8_t) next, 0, 0, next, 2000 + round * 37,
                            round + 100);
                /* half the rounds without a cut, so that the updates go on */
                uint64_t k = (prng() & 1) ? prng() % (n_ops[1] + 8) : 0;
                unsigned v = update_image_cut(&f, img, k, prng() & 1, healthy, &log);
                if (v == 0 || status(&f, CF_STATUS_TRIAL) == CF_TRIAL_PENDING || v < confirmed ||
                    status(&f, CF_STATUS_MODE) != CF_MODE_APP) {
                        printf("\n  round %u: version %u, trial %u, confirmed release %u\n", round, v,
                               status(&f, CF_STATUS_TRIAL), confirmed);
                        failures++;
                        break;
                }
                if (v == next && status(&f, CF_STATUS_TRIAL) == CF_TRIAL_CONFIRMED) {
                        confirmed = next;
                        updates++;
                } else if (status(&f, CF_STATUS_TRIAL) == CF_TRIAL_REVERTED) {
                        reverts++;
                }
        }
        CU_ASSERT_EQUAL(failures, 0);
        CU_ASSERT(updates >= 10 && reverts >= 5); /* both kinds of ending happened */
        printf("\n  60 random updates: %u confirmed, %u reverted, release %u runs\n", updates, reverts, confirmed);
        fx_fini(&f);
}

static void test_measure(void)
{
        measure(true);
        measure(false);
}

static void test_cuts_confirmed(void)
{
        sweep(true, false);
        sweep(true, true);
}

static void test_cuts_reverted(void)
{
        sweep(false, false);
        sweep(false, true);
        CU_ASSERT(torn_option_cuts >= 3); /* torn BOOT_ADD0 writes were among them */
        printf("\n  %llu + %llu cut points (healthy), %llu + %llu (failing), plain + torn; %llu torn option-byte "
               "writes, %llu further cuts while recovering\n",
               (unsigned long long) cut_points[1][0], (unsigned long long) cut_points[1][1],
               (unsigned long long) cut_points[0][0], (unsigned long long) cut_points[0][1],
               (unsigned long long) torn_option_cuts, (unsigned long long) extra_cuts);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"swap, trial, confirm, second update to the other bank", test_swap_and_confirm},
            {"revert after an unconfirmed reset", test_revert},
            {"CCP CONFIRM 0xCF10", test_confirm_service},
            {"anti-rollback across banks", test_anti_rollback_across_banks},
            {"either bank's bootloader decides the same", test_boot_from_either_bank},
            {"group transfer into the inactive bank", test_group_transfer},
            {"clean updates measured", test_measure},
            {"power cut at every operation, confirmed", test_cuts_confirmed},
            {"power cut at every operation, reverted", test_cuts_reverted},
            {"random updates, cuts and crashes in a row", test_random_updates},
            {NULL, NULL},
        };
        make_images();
        return cf_test_run("dualbank", tests);
}
