/* Tests of daemon/flash-plan.c: only non-0xFF runs are sent, gaps merged where cheaper than a SET_MTA. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cf-test.h"
#include "flash-plan.h"

static uint8_t img[1024];

static void plan(struct cf_run **runs, size_t *n)
{
        CU_ASSERT_EQUAL_FATAL(cf_plan_runs(img, sizeof img, runs, n), 0);
}

static void test_all_erased(void)
{
        struct cf_run *runs;
        size_t n;
        memset(img, 0xFF, sizeof img);
        plan(&runs, &n);
        CU_ASSERT_EQUAL(n, 0);
        CU_ASSERT_EQUAL(cf_plan_bytes(runs, n), 0);
        free(runs);
}

static void test_small_gap_merged(void)
{
        struct cf_run *runs;
        size_t n;
        memset(img, 0xFF, sizeof img);
        img[0] = 0xAA;
        img[1] = 0xBB;
        img[4] = 0xCC; /* gap of 2: one frame for all 5 bytes beats 1 + SET_MTA + 1 */
        plan(&runs, &n);
        CU_ASSERT_EQUAL_FATAL(n, 1);
        CU_ASSERT_EQUAL(runs[0].start, 0);
        CU_ASSERT_EQUAL(runs[0].len, 5);
        free(runs);
}

static void test_large_gap_split(void)
{
        struct cf_run *runs;
        size_t n;
        memset(img, 0xFF, sizeof img);
        img[0] = 0xAA;
        img[21] = 0xBB; /* merged: 22 bytes = 4 frames; split: 1 + 1 + 1 = 3 */
        plan(&runs, &n);
        CU_ASSERT_EQUAL_FATAL(n, 2);
        CU_ASSERT_EQUAL(runs[0].start, 0);
        CU_ASSERT_EQUAL(runs[0].len, 1);
        CU_ASSERT_EQUAL(runs[1].start, 21);
        CU_ASSERT_EQUAL(runs[1].len, 1);
        CU_ASSERT_EQUAL(cf_plan_bytes(runs, n), 2);
        CU_ASSERT_EQUAL(cf_plan_frames(runs, n), 4); /* 2 SET_MTA + 2 PROGRAM */
        free(runs);
}

static void test_boundary(void)
{
        struct cf_run *runs;
        size_t n;
        /* a = 6 bytes (1 frame), gap g, b = 6 bytes (1 frame): split costs 3 frames; merged costs
         * ceil((12 + g) / 6): merge while g <= 6. */
        for (unsigned g = 1; g <= 12; g++) {
                memset(img, 0xFF, sizeof img);
                memset(img + 100, 0x11, 6);
                memset(img + 106 + g, 0x22, 6);
                plan(&runs, &n);
                if (g <= 6) {
                        CU_ASSERT_EQUAL(n, 1);
                        CU_ASSERT_EQUAL(runs[0].start, 100);
                        CU_ASSERT_EQUAL(runs[0].len, 12 + g);
                } else {
                        CU_ASSERT_EQUAL(n, 2);
                        CU_ASSERT_EQUAL(runs[1].start, 106 + g);
                }
                free(runs);
        }
}

static void test_image_shape(void)
{
        struct cf_run *runs;
        size_t n;
        /* An application at the start and a trailer at the end: two runs, nothing of the 0xFF between. */
        memset(img, 0xFF, sizeof img);
        for (unsigned i = 0; i < 300; i++)
                img[i] = (uint8_t) (i % 251);
        img[17] = 0xFF; /* a single 0xFF inside the payload stays in the run */
        memset(img + 960, 0x42, 64);
        plan(&runs, &n);
        CU_ASSERT_EQUAL_FATAL(n, 2);
        CU_ASSERT_EQUAL(runs[0].start, 0);
        CU_ASSERT_EQUAL(runs[0].len, 300);
        CU_ASSERT_EQUAL(runs[1].start, 960);
        CU_ASSERT_EQUAL(runs[1].len, 64);
        CU_ASSERT_EQUAL(cf_plan_bytes(runs, n), 364);
        CU_ASSERT_EQUAL(cf_plan_frames(runs, n), 1 + 50 + 1 + 11);
        /* every non-0xFF byte is covered */
        for (unsigned i = 0; i < sizeof img; i++) {
                if (img[i] == 0xFF)
                        continue;
                bool in = false;
                for (size_t k = 0; k < n; k++)
                        in |= i >= runs[k].start && i < runs[k].start + runs[k].len;
                CU_ASSERT(in);
        }
        free(runs);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"all erased: nothing to send", test_all_erased},
            {"short gap merged", test_small_gap_merged},
            {"long gap split", test_large_gap_split},
            {"merge boundary", test_boundary},
            {"image shape", test_image_shape},
            {NULL, NULL},
        };
        return cf_test_run("daemon-flash-plan", tests);
}
