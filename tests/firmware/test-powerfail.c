/* The power-loss proof, MCUboot simulator style: a cut at every flash operation of an upgrade, and more. */
#include <stdio.h>
#include <string.h>

#include "cf-test.h"
#include "fw-fixture.h"

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

static void test_summary(void)
{
        CU_ASSERT(extra_cuts > 0);
        printf(
            "\n  powerfail: %llu cut points (plain) + %llu (torn), %llu extra random cuts, all recovered\n",
            (unsigned long long) cut_points[0], (unsigned long long) cut_points[1],
            (unsigned long long) extra_cuts);
}

int main(void)
{
        fx_image(img_v1, FX_HW_ID, 1, 0, 0, 1, 3000, 1);
        fx_image(img_v2, FX_HW_ID, 2, 0, 0, 2, 4000, 2);

        static const struct cf_test tests[] = {
            {"clean upgrade counts its flash operations", test_clean_run},
            {"plain cut at every operation", test_plain_cuts},
            {"torn cut at every operation", test_torn_cuts},
            {"summary", test_summary},
            {NULL, NULL},
        };
        return cf_test_run("powerfail", tests);
}
