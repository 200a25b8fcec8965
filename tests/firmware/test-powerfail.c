/* The power-loss proof, MCUboot simulator style: a cut at every flash operation of an upgrade, and more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf-test.h"
#include "fw-fixture.h"
#include "journal.h"

#define B CF_AREA_APP_ADDR
#define C CF_AREA_STAGING_ADDR

#define EXTRA_CUTS 3u /* random further cuts per cut point, during the boots that follow */

static uint8_t img_v1[CF_IMAGE_AREA_SIZE], img_v2[CF_IMAGE_AREA_SIZE];
static uint64_t n_ops, boot_ops; /* flash operations of a clean upgrade; of its boot part */
static uint64_t cut_points[2], extra_cuts;
static uint64_t prng_state = 0x243F6A8885A308D3ull;

static uint64_t prng(void)
{
        prng_state ^= prng_state << 13;
        prng_state ^= prng_state >> 7;
        prng_state ^= prng_state << 17;
        return prng_state;
}

/* A node running v1, counters cleared. */
static void fresh(struct fx *f)
{
        memset(f->flash, CF_FLASH_ERASED, CF_FLASH_SIZE);
        f->hal.cut_at_op = 0;
        f->hal.cut_torn = false;
        fx_poke_area(f, B, img_v1);
        fx_power_on(f);
        CU_ASSERT_EQUAL_FATAL(fx_run(f, NULL), CF_NODE_APP);
        f->hal.flash_ops = f->hal.erases = f->hal.programs = f->hal.program_bytes = 0;
}

static unsigned version_of_b(struct fx *f)
{
        struct cf_image_info info;

        if (fx_area_check(f, B, &info) != CF_IMAGE_OK)
                return 0;
        return info.ver_major;
}

static void test_clean_run(void)
{
        struct fx f;

        fx_init(&f);
        fresh(&f);
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        uint64_t ccp_ops = f.hal.flash_ops;
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        n_ops = f.hal.flash_ops;
        boot_ops = n_ops - ccp_ops;
        CU_ASSERT_EQUAL(version_of_b(&f), 2);
        CU_ASSERT_EQUAL(f.node.slave.last_update, CF_UPDATE_INSTALLED);
        /* CCP: 2 erases of C and the PROGRAMs; boot: 2 erases of B, the copy, 2 erases of C. */
        CU_ASSERT(ccp_ops > 100);
        CU_ASSERT(boot_ops > 4);
        printf("\n  clean upgrade: %llu flash operations (%llu CCP, %llu boot copy)\n",
               (unsigned long long) n_ops, (unsigned long long) ccp_ops, (unsigned long long) boot_ops);
        fx_fini(&f);
}

/* After a cut: power up again and again, with random further cuts in the boots, until it runs.
 * Returns the phase it ends in; *recovery is set when a boot ever ended in recovery. */
static int recover(struct fx *f, bool *recovery)
{
        int res = -1;

        for (unsigned j = 0; j < EXTRA_CUTS && res == -1; j++) {
                f->hal.cut_at_op = f->hal.flash_ops + 1 + prng() % (boot_ops + 2);
                f->hal.cut_torn = prng() & 1;
                fx_power_on(f);
                res = fx_run(f, recovery);
                if (res == -1)
                        extra_cuts++;
        }
        f->hal.cut_at_op = 0;
        if (res == -1) {
                fx_power_on(f);
                res = fx_run(f, recovery);
        }
        return res;
}

/* Run an upgrade with the power going at operation cut (0: never) of it, and recover. Checks the
 * invariants; returns the version B ends with, 0 on a violation. */
static unsigned upgrade_cut(struct fx *f, uint64_t cut, bool torn, bool count_cut, const char *what)
{
        bool recovery = false, c_complete = false;
        int res;

        f->hal.cut_at_op = cut ? f->hal.flash_ops + cut : 0;
        f->hal.cut_torn = torn;
        int r = fx_upgrade(f, img_v2);
        res = f->hal.powered_off ? -1 : fx_run(f, &recovery);
        if (res == -1) {
                if (count_cut)
                        extra_cuts++;
                /* What the boot will find: a complete C must end up installed. */
                c_complete = fx_area_crc_ok(f, C);
                res = recover(f, &recovery);
        } else if (r != 0) {
                printf("\n  %s: upgrade failed without a cut (%d)\n", what, r);
                return 0;
        }

        unsigned v = version_of_b(f);
        bool ok = res == CF_NODE_APP && !recovery && (c_complete ? v == 2 : (v == 1 || v == 2));
        /* The node reports what B holds. */
        uint8_t st[CF_STATUS_SIZE];
        cf_ccp_slave_status(&f->node.slave, st);
        ok = ok && st[8] == v && st[CF_STATUS_MODE] == CF_MODE_APP;
        if (!ok) {
                printf("\n  %s, cut %s at op %llu: phase %d, recovery %d, C complete %d, B version %u\n",
                       what, torn ? "torn" : "plain", (unsigned long long) cut, res, recovery, c_complete,
                       v);
                return 0;
        }
        return v;
}

/* Cut at operation k of the upgrade, keep cutting at random while the node recovers; then, as a
 * gateway would, retry the upgrade (with one more random cut somewhere in it), and once more
 * without: it must end with v2. */
static bool cut_and_recover(struct fx *f, uint64_t k, bool torn)
{
        fresh(f);
        unsigned v = upgrade_cut(f, k, torn, false, "first upgrade");
        if (v == 0)
                return false;
        CU_ASSERT_FATAL(f->hal.flash_ops >= k);
        if (v == 1) {
                v = upgrade_cut(f, 1 + prng() % n_ops, prng() & 1, true, "retried upgrade");
                if (v == 0)
                        return false;
        }
        if (v == 1)
                v = upgrade_cut(f, 0, false, false, "second retry");
        return v == 2;
}

static void sweep(bool torn)
{
        struct fx f;
        unsigned failures = 0;

        CU_ASSERT_FATAL(n_ops > 0);
        fx_init(&f);
        for (uint64_t k = 1; k <= n_ops; k++) {
                if (!cut_and_recover(&f, k, torn))
                        failures++;
                cut_points[torn]++;
        }
        CU_ASSERT_EQUAL(failures, 0);
        CU_ASSERT_EQUAL(cut_points[torn], n_ops);
        fx_fini(&f);
}

static void test_plain_cuts(void)
{
        sweep(false);
}

static void test_torn_cuts(void)
{
        sweep(true);
}

/* ---- Group transfer (docs/design.md §7): cuts in the pass, in the repair, in the boot copy ---- */

#define GROUP_DROP_EVERY 13u /* every 13th group frame lost: the repair by PROGRAM_6 has work */

static uint64_t group_ops, group_cut_points;
/* The same sweep in block mode (canfleet/ccp.h "Checked blocks", canfleetd's way with nodes that have
 * it), every 11th group frame also corrupted: the cuts then fall in block commits. */
static bool group_checked;
#define GROUP_CORRUPT_EVERY 11u

static void group_mode(struct fx *f)
{
        f->checked = group_checked;
        f->corrupt_every = group_checked ? GROUP_CORRUPT_EVERY : 0;
}

static void test_group_clean_run(void)
{
        struct fx f;
        uint32_t repaired = 0;

        fx_init(&f);
        fresh(&f);
        group_mode(&f);
        CU_ASSERT_EQUAL_FATAL(fx_group_upgrade(&f, img_v2, GROUP_DROP_EVERY, &repaired), 0);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(version_of_b(&f), 2);
        CU_ASSERT(repaired > 10);
        group_ops = f.hal.flash_ops;
        printf("\n  clean group update%s: %llu flash operations, %u slots repaired by PROGRAM_6\n",
               group_checked ? " in block mode" : "", (unsigned long long) group_ops, repaired);
        fx_fini(&f);
}

/* Cut at operation k of a group update (and at random while it recovers): the node runs B (v1, or
 * v2 when C was complete), never recovery, and a new group update then installs v2. */
static bool group_cut(struct fx *f, uint64_t k, bool torn)
{
        bool recovery = false, c_complete = false;

        fresh(f);
        group_mode(f);
        f->hal.cut_at_op = f->hal.flash_ops + k;
        f->hal.cut_torn = torn;
        int r = fx_group_upgrade(f, img_v2, GROUP_DROP_EVERY, NULL);
        int res = f->hal.powered_off ? -1 : fx_run(f, &recovery);
        if (res == -1) {
                c_complete = fx_area_crc_ok(f, C);
                res = recover(f, &recovery);
        } else if (r != 0) {
                printf("\n  group update failed without a cut (%d) at k %llu\n", r, (unsigned long long) k);
                return false;
        }
        unsigned v = version_of_b(f);
        if (res != CF_NODE_APP || recovery || (c_complete ? v != 2 : v == 0)) {
                printf("\n  group update, cut %s at op %llu: phase %d, recovery %d, C complete %d, B v%u\n",
                       torn ? "torn" : "plain", (unsigned long long) k, res, recovery, c_complete, v);
                return false;
        }
        if (v == 1) {
                f->hal.cut_at_op = 0;
                if (fx_group_upgrade(f, img_v2, GROUP_DROP_EVERY, NULL) != 0 || fx_run(f, NULL) != CF_NODE_APP)
                        return false;
                v = version_of_b(f);
        }
        return v == 2;
}

static void test_group_cuts(void)
{
        struct fx f;
        unsigned failures = 0;

        CU_ASSERT_FATAL(group_ops > 0);
        group_cut_points = 0;
        fx_init(&f);
        /* Plain at every operation, torn at every 4th (a pass costs 43,691 slot visits: time). */
        for (uint64_t k = 1; k <= group_ops; k++)
                for (int torn = 0; torn < (k % 4 == 0 ? 2 : 1); torn++) {
                        if (!group_cut(&f, k, torn))
                                failures++;
                        group_cut_points++;
                }
        CU_ASSERT_EQUAL(failures, 0);
        printf("\n  group update%s: %llu cut points (plain at every operation, torn at every 4th), all recovered\n",
               group_checked ? " in block mode" : "", (unsigned long long) group_cut_points);
        fx_fini(&f);
}

/* ---- A flash that refuses every install: cuts in the failing installs and the journal writes ---- */

static uint64_t fail_ops;        /* flash operations from DISCONNECT(end) until the node gives up */
static uint8_t *gave_up_flash;   /* the flash of a node that gave up: recovery, C valid, 3 failures */
static uint64_t fail_cut_points, reinstall_cut_points;

static uint8_t status_byte(struct fx *f, unsigned off)
{
        uint8_t st[CF_STATUS_SIZE];

        cf_ccp_slave_status(&f->node.slave, st);
        return st[off];
}

static bool ccp_reachable(struct fx *f)
{
        uint8_t cro[8];
        struct cf_ccp_dto d;

        cf_ccp_cro_connect(cro, fx_next_ctr(f), FX_STATION);
        return fx_cro(f, cro, &d) && d.err == CF_CCP_OK;
}

/* Power up again and again (a random further cut in the first boots) until the node runs. Fails
 * the check when it never settles: an endless reset loop ends fx_run() with -2. */
static int settle(struct fx *f, uint64_t window, unsigned *boots)
{
        int res = -1;
        uint32_t first = f->boot_count;

        for (unsigned j = 0; j < 8 && res == -1; j++) {
                f->hal.cut_at_op = j < 2 ? f->hal.flash_ops + 1 + prng() % (window + 2) : 0;
                f->hal.cut_torn = prng() & 1;
                fx_power_on(f);
                res = fx_run(f, NULL);
        }
        f->hal.cut_at_op = 0;
        *boots = f->boot_count - first;
        return res;
}

static void test_failing_install_reference(void)
{
        struct fx f;

        fx_init(&f);
        fresh(&f);
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        f.hal.fault_program_app = true;
        uint64_t ops = f.hal.flash_ops;
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        fail_ops = f.hal.flash_ops - ops;
        /* three tries: B's two erases, the first program refused, the failure recorded */
        CU_ASSERT_EQUAL(fail_ops, 3u * 4u);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_UPDATE), CF_UPDATE_GAVE_UP);
        gave_up_flash = malloc(CF_FLASH_SIZE);
        CU_ASSERT_FATAL(gave_up_flash != NULL);
        memcpy(gave_up_flash, f.flash, CF_FLASH_SIZE);
        printf("\n  failing install: %llu flash operations until the node gives up\n",
               (unsigned long long) fail_ops);
        fx_fini(&f);
}

/* A cut (plain or torn) at each operation of the failing installs, the failure records included,
 * then further random cuts: the node always settles, in B (v1, when the cut spared it) or in
 * recovery, answers CCP, reports the given-up install, and a good update afterwards works. */
static void test_failing_install_cuts(void)
{
        struct fx f;
        unsigned failures = 0;

        CU_ASSERT_FATAL(fail_ops > 0);
        fx_init(&f);
        for (uint64_t k = 1; k <= fail_ops; k++)
                for (int torn = 0; torn < 2; torn++) {
                        fresh(&f);
                        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
                        f.hal.fault_program_app = true;
                        f.hal.cut_at_op = f.hal.flash_ops + k;
                        f.hal.cut_torn = torn;
                        int res = fx_run(&f, NULL);
                        unsigned boots = 0;
                        if (res == -1)
                                res = settle(&f, fail_ops, &boots);
                        unsigned v = version_of_b(&f);
                        bool ok = (res == CF_NODE_APP && v == 1) || (res == CF_NODE_RECOVERY && v == 0);
                        ok = ok && boots <= 8 && ccp_reachable(&f) &&
                             status_byte(&f, CF_STATUS_LAST_UPDATE) == CF_UPDATE_GAVE_UP &&
                             status_byte(&f, CF_STATUS_INSTALL_FAILURES) >= CF_JOURNAL_MAX_FAILURES;
                        /* the flash is mended: the gateway's next update goes through */
                        f.hal.fault_program_app = false;
                        ok = ok && fx_upgrade(&f, img_v2) == 0 && fx_run(&f, NULL) == CF_NODE_APP &&
                             version_of_b(&f) == 2 &&
                             status_byte(&f, CF_STATUS_LAST_UPDATE) == CF_UPDATE_INSTALLED;
                        if (!ok) {
                                printf("\n  failing install, cut %s at op %llu: phase %d, B v%u, %u boots\n",
                                       torn ? "torn" : "plain", (unsigned long long) k, res, v, boots);
                                failures++;
                        }
                        fail_cut_points++;
                }
        CU_ASSERT_EQUAL(failures, 0);
        fx_fini(&f);
}

/* From a node that gave up (recovery, the journal at 3): the good update, cut at its operations
 * (its CLEAR_MEMORY, some PROGRAMs, the STAGED record of DISCONNECT(end) and the whole boot install
 * after it, plain and torn). It settles reachable; once the STAGED record was written whole, the
 * boot alone ends with v2 in B; otherwise the update is run again and then ends with v2. */
static void test_reinstall_cuts(void)
{
        struct fx f;
        unsigned failures = 0;

        CU_ASSERT_FATAL(gave_up_flash != NULL);
        fx_init(&f);
        memcpy(f.flash, gave_up_flash, CF_FLASH_SIZE);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        uint64_t base = f.hal.flash_ops;
        CU_ASSERT_EQUAL_FATAL(fx_upgrade(&f, img_v2), 0);
        uint64_t staged_op = f.hal.flash_ops - base; /* the last operation of the CCP part */
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        uint64_t total = f.hal.flash_ops - base;

        for (uint64_t k = 1; k <= total; k++) {
                /* the PROGRAMs in between are the main sweep's; here a sample of them */
                if (k > 8 && k + 8 < staged_op && k % 37 != 0)
                        continue;
                for (int torn = 0; torn < 2; torn++) {
                        memcpy(f.flash, gave_up_flash, CF_FLASH_SIZE);
                        f.hal.cut_at_op = 0;
                        fx_power_on(&f);
                        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
                        f.hal.cut_at_op = f.hal.flash_ops + k;
                        f.hal.cut_torn = torn;
                        int r = fx_upgrade(&f, img_v2);
                        int res = f.hal.powered_off ? -1 : fx_run(&f, NULL);
                        unsigned boots = 0;
                        if (res == -1)
                                res = settle(&f, total - staged_op, &boots);
                        bool ok = (res == CF_NODE_APP || res == CF_NODE_RECOVERY) && boots <= 8 &&
                                  ccp_reachable(&f);
                        if (k > staged_op)
                                ok = ok && r == 0 && res == CF_NODE_APP && version_of_b(&f) == 2;
                        if (ok && version_of_b(&f) != 2)
                                ok = fx_upgrade(&f, img_v2) == 0 && fx_run(&f, NULL) == CF_NODE_APP &&
                                     version_of_b(&f) == 2;
                        if (!ok) {
                                printf("\n  reinstall, cut %s at op %llu of %llu: phase %d, B v%u, %u boots\n",
                                       torn ? "torn" : "plain", (unsigned long long) k,
                                       (unsigned long long) total, res, version_of_b(&f), boots);
                                failures++;
                        }
                        reinstall_cut_points++;
                }
        }
        CU_ASSERT_EQUAL(failures, 0);
        printf("\n  reinstall after giving up: %llu flash operations, %llu cut points\n",
               (unsigned long long) total, (unsigned long long) reinstall_cut_points);
        fx_fini(&f);
}

static void test_checked_clean_run(void)
{
        group_checked = true;
        group_ops = 0;
        test_group_clean_run();
}

static void test_checked_cuts(void)
{
        test_group_cuts();
        group_checked = false;
}

static void test_summary(void)
{
        CU_ASSERT(extra_cuts > 0);
        printf(
            "\n  powerfail: %llu cut points (plain) + %llu (torn), %llu extra random cuts, all recovered\n",
            (unsigned long long) cut_points[0], (unsigned long long) cut_points[1],
            (unsigned long long) extra_cuts);
        printf("  failing install: %llu cut points; reinstall after giving up: %llu, all settled\n",
               (unsigned long long) fail_cut_points, (unsigned long long) reinstall_cut_points);
        free(gave_up_flash);
        gave_up_flash = NULL;
}

int main(void)
{
        fx_image(img_v1, FX_HW_ID, 1, 0, 0, 1, 3000, 1);
        fx_image(img_v2, FX_HW_ID, 2, 0, 0, 2, 4000, 2);

        static const struct cf_test tests[] = {
            {"clean upgrade counts its flash operations", test_clean_run},
            {"plain cut at every operation", test_plain_cuts},
            {"torn cut at every operation", test_torn_cuts},
            {"clean group update counts its flash operations", test_group_clean_run},
            {"group update: plain and torn cut at every operation", test_group_cuts},
            {"clean group update in block mode, corrupted frames", test_checked_clean_run},
            {"group update in block mode: plain and torn cut at every operation", test_checked_cuts},
            {"failing install gives up", test_failing_install_reference},
            {"cut at every operation of failing installs", test_failing_install_cuts},
            {"cuts in the good update after giving up", test_reinstall_cuts},
            {"summary", test_summary},
            {NULL, NULL},
        };
        return cf_test_run("powerfail", tests);
}
