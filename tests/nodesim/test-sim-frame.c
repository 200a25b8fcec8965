/* Unit tests of the simulator's frame timing (bit length with stuffing) and the SLCAN line codec. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf-test.h"
#include "sim-frame.h"
#include "slcan.h"

/* SOF..CRC all dominant (CRC-15 of zeros is 0): 34 bits, a stuff bit after every 5 -> 6; +13 tail. */
static void test_bits_all_zero(void)
{
        struct sim_frame f = {.id = 0, .dlc = 0};
        CU_ASSERT_EQUAL(sim_frame_bits(&f), 53u);
        /* 53 bits at 500 kbit/s: 106 us */
        CU_ASSERT_EQUAL(sim_frame_time_ns(&f, 500000), 106000u);
        CU_ASSERT_EQUAL(sim_frame_time_ns(&f, 0), 0u);
}

/* The stuffing bounds of CAN 2.0 for random frames: a classic result (Davis et al.), independent of our CRC.
 */
static void test_bits_bounds(void)
{
        srand(1234);
        for (int i = 0; i < 20000; i++) {
                struct sim_frame f = {.ext = (i & 1) != 0, .dlc = (uint8_t) (rand() % 9)};
                f.id = (uint32_t) rand() & (f.ext ? SIM_CAN_EFF_MAX : SIM_CAN_SFF_MAX);
                for (unsigned k = 0; k < 8; k++)
                        f.data[k] = (uint8_t) (i % 3 == 0 ? 0 : rand());
                unsigned n = f.dlc, g = f.ext ? 54 : 34, fixed = (f.ext ? 67 : 47) + 8 * n;
                unsigned bits = sim_frame_bits(&f);
                CU_ASSERT(bits >= fixed);
                CU_ASSERT(bits <= fixed + (g + 8 * n - 1) / 4);
        }
}

/* Stuffing depends on the bits: data 0x00 stuffs more than 0x55 (alternating bits never stuff). */
static void test_bits_depend_on_data(void)
{
        struct sim_frame a = {.id = 0x2AA, .dlc = 8}, b = {.id = 0x2AA, .dlc = 8};
        memset(a.data, 0x00, 8);
        memset(b.data, 0x55, 8);
        CU_ASSERT(sim_frame_bits(&a) >= sim_frame_bits(&b) + 10);
        struct sim_frame r = {.id = 0x2AA, .dlc = 8, .rtr = true};
        CU_ASSERT(sim_frame_bits(&r) < 47 + 64); /* a remote frame carries no data */
}

static void test_parse_ok(void)
{
        struct sim_frame f;
        const char *l = "t6818010100000000000A";
        CU_ASSERT_EQUAL(slcan_parse_frame(l, strlen(l), &f), 0);
        CU_ASSERT_EQUAL(f.id, 0x681u);
        CU_ASSERT_EQUAL(f.dlc, 8);
        CU_ASSERT(!f.ext && !f.rtr);
        CU_ASSERT_EQUAL(f.data[0], 0x01);
        CU_ASSERT_EQUAL(f.data[7], 0x0A);

        l = "T1FFFFFFF2abCD";
        CU_ASSERT_EQUAL(slcan_parse_frame(l, strlen(l), &f), 0);
        CU_ASSERT(f.ext);
        CU_ASSERT_EQUAL(f.id, 0x1FFFFFFFu);
        CU_ASSERT_EQUAL(f.data[0], 0xAB);
        CU_ASSERT_EQUAL(f.data[1], 0xCD);

        l = "r7FF8";
        CU_ASSERT_EQUAL(slcan_parse_frame(l, strlen(l), &f), 0);
        CU_ASSERT(f.rtr && f.dlc == 8 && f.id == 0x7FF);
        l = "t1230";
        CU_ASSERT_EQUAL(slcan_parse_frame(l, strlen(l), &f), 0);
        CU_ASSERT_EQUAL(f.dlc, 0);
}

static void test_parse_bad(void)
{
        static const char *bad[] = {
            "",      "t",     "t68",       "t681",     "t6819000000000000000000", "t68110102", "t6812010",
            "t68G1", "x6810", "T12345670", "R1234567", "t6818010100000000000A0"};
        struct sim_frame f;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                CU_ASSERT_EQUAL(slcan_parse_frame(bad[i], strlen(bad[i]), &f), -EINVAL);
        CU_ASSERT_EQUAL(slcan_parse_frame("t8000", 5, &f), -ERANGE);
        CU_ASSERT_EQUAL(slcan_parse_frame("T200000000", 10, &f), -ERANGE);
}

static void test_format(void)
{
        char buf[SLCAN_MAX_LINE];
        struct sim_frame f = {.id = 0x6C1, .dlc = 2, .data = {0xFF, 0x00}};
        size_t n = slcan_format_frame(&f, false, 0, buf);
        CU_ASSERT_EQUAL(n, 10u);
        CU_ASSERT_NSTRING_EQUAL(buf, "t6C12FF00\r", n);
        n = slcan_format_frame(&f, true, 0xEA5F, buf);
        CU_ASSERT_NSTRING_EQUAL(buf, "t6C12FF00EA5F\r", n);
        struct sim_frame e = {.id = 0x12345, .ext = true, .rtr = true, .dlc = 3};
        n = slcan_format_frame(&e, false, 0, buf);
        CU_ASSERT_NSTRING_EQUAL(buf, "R000123453\r", n);

        /* round trip of the longest line */
        struct sim_frame g = {.id = 0x1ABCDEF0, .ext = true, .dlc = 8, .data = {1, 2, 3, 4, 5, 6, 7, 0xFE}},
                         h;
        n = slcan_format_frame(&g, false, 0, buf);
        CU_ASSERT(n <= SLCAN_MAX_LINE);
        CU_ASSERT_EQUAL(slcan_parse_frame(buf, n - 1, &h), 0);
        CU_ASSERT_EQUAL(memcmp(&g.data, &h.data, 8), 0);
        CU_ASSERT(h.id == g.id && h.ext && h.dlc == 8);
}

static void test_bitrates(void)
{
        CU_ASSERT_EQUAL(slcan_bitrate_of('0'), 10000u);
        CU_ASSERT_EQUAL(slcan_bitrate_of('6'), 500000u);
        CU_ASSERT_EQUAL(slcan_bitrate_of('8'), 1000000u);
        CU_ASSERT_EQUAL(slcan_bitrate_of('9'), 0u);
        CU_ASSERT_EQUAL(slcan_bitrate_of('x'), 0u);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"bits of an all-zero frame", test_bits_all_zero},
            {"bits within the stuffing bounds", test_bits_bounds},
            {"bits depend on the data", test_bits_depend_on_data},
            {"slcan parse valid lines", test_parse_ok},
            {"slcan refuse malformed lines", test_parse_bad},
            {"slcan format frames", test_format},
            {"slcan bitrate codes", test_bitrates},
            {NULL, NULL},
        };
        return cf_test_run("nodesim-units", tests);
}
