/* Unit tests of the simulator's frame timing: bit length with stuffing. */
#include <stdlib.h>
#include <string.h>

#include "cf-test.h"
#include "sim-frame.h"

/* SOF..CRC all dominant (CRC-15 of zeros is 0): 34 bits, a stuff bit after every 5 -> 6; +13 tail. */
static void test_bits_all_zero(void)
{
        struct cf_can_frame f = {.id = 0, .dlc = 0};
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
                struct cf_can_frame f = {.ext = (i & 1) != 0, .dlc = (uint8_t) (rand() % 9)};
                f.id = (uint32_t) rand() & (f.ext ? CF_CAN_EFF_MAX : CF_CAN_SFF_MAX);
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
        struct cf_can_frame a = {.id = 0x2AA, .dlc = 8}, b = {.id = 0x2AA, .dlc = 8};
        memset(a.data, 0x00, 8);
        memset(b.data, 0x55, 8);
        CU_ASSERT(sim_frame_bits(&a) >= sim_frame_bits(&b) + 10);
        struct cf_can_frame r = {.id = 0x2AA, .dlc = 8, .rtr = true};
        CU_ASSERT(sim_frame_bits(&r) < 47 + 64); /* a remote frame carries no data */
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"bits of an all-zero frame", test_bits_all_zero},
            {"bits within the stuffing bounds", test_bits_bounds},
            {"bits depend on the data", test_bits_depend_on_data},
            {NULL, NULL},
        };
        return cf_test_run("nodesim-units", tests);
}
