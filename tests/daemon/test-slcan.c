/* Tests of the SLCAN line codec of daemon/slcan.c: encoding, decoding, malformed lines refused. */
#include <errno.h>
#include <string.h>

#include "cf-test.h"
#include "slcan.h"

static void test_encode(void)
{
        char out[CF_SLCAN_LINE_MAX];
        struct cf_can_frame f = {.id = 0x681, .dlc = 8, .data = {1, 2, 3, 4, 5, 6, 7, 8}};
        CU_ASSERT_EQUAL(cf_slcan_encode(&f, out), 22);
        CU_ASSERT_STRING_EQUAL(out, "t68180102030405060708\r");
        f = (struct cf_can_frame){.id = 0x681, .dlc = 2, .data = {0xAB, 0xCD}};
        CU_ASSERT_EQUAL(cf_slcan_encode(&f, out), 10);
        CU_ASSERT_STRING_EQUAL(out, "t6812ABCD\r");
        f = (struct cf_can_frame){.id = 0x7FF, .dlc = 0};
        cf_slcan_encode(&f, out);
        CU_ASSERT_STRING_EQUAL(out, "t7FF0\r");
}

static void test_decode(void)
{
        struct cf_can_frame f;
        CU_ASSERT_EQUAL(cf_slcan_decode("t6C12FF00", 9, &f), 1);
        CU_ASSERT_EQUAL(f.id, 0x6C1);
        CU_ASSERT_EQUAL(f.dlc, 2);
        CU_ASSERT_EQUAL(f.data[0], 0xFF);
        CU_ASSERT_EQUAL(f.data[1], 0x00);
        memset(&f, 0, sizeof f);
        CU_ASSERT_EQUAL(cf_slcan_decode("t6c18ff0007a1b2c3d4e5", 21, &f), 1);
        CU_ASSERT_EQUAL(f.id, 0x6C1);
        CU_ASSERT_EQUAL(f.dlc, 8);
        CU_ASSERT_EQUAL(f.data[3], 0xA1);
        CU_ASSERT_EQUAL(f.data[7], 0xE5);
        /* with a timestamp */
        memset(&f, 0, sizeof f);
        CU_ASSERT_EQUAL(cf_slcan_decode("t6C12FF001A2B", 13, &f), 1);
        CU_ASSERT_EQUAL(f.dlc, 2);
        CU_ASSERT_EQUAL(f.data[0], 0xFF);
        /* round trip */
        char out[CF_SLCAN_LINE_MAX];
        struct cf_can_frame g = {.id = 0x123, .dlc = 5, .data = {9, 8, 7, 6, 5}};
        size_t n = cf_slcan_encode(&g, out);
        CU_ASSERT_EQUAL(cf_slcan_decode(out, n - 1, &f), 1);
        CU_ASSERT_EQUAL(f.id, g.id);
        CU_ASSERT_EQUAL(f.dlc, g.dlc);
        CU_ASSERT_EQUAL(memcmp(f.data, g.data, 5), 0);
}

static void test_not_frames(void)
{
        struct cf_can_frame f;
        CU_ASSERT_EQUAL(cf_slcan_decode("", 0, &f), 0);
        CU_ASSERT_EQUAL(cf_slcan_decode("z", 1, &f), 0);
        CU_ASSERT_EQUAL(cf_slcan_decode("Z", 1, &f), 0);
        CU_ASSERT_EQUAL(cf_slcan_decode("V0101", 5, &f), 0);
        CU_ASSERT_EQUAL(cf_slcan_decode("T000006C12FF00", 14, &f), 0); /* extended: not CCP */
        CU_ASSERT_EQUAL(cf_slcan_decode("r6C18", 5, &f), 0);           /* remote */
}

static void test_malformed(void)
{
        static const char *bad[] = {
            "t6C1",        /* no DLC */
            "t6C19FF",     /* DLC 9 */
            "t6C12FF0",    /* odd data */
            "t6C12FF0000", /* 1 byte too many (and not a timestamp) */
            "tXYZ0",       /* not hex */
            "t6C12GG00",   /* not hex data */
            "t8000",       /* id above 7FF */
            "q",           /* unknown */
            "T1",          /* short extended */
            "T2000000000", /* extended id above 1FFFFFFF */
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct cf_can_frame f;
                int r = cf_slcan_decode(bad[i], strlen(bad[i]), &f);
                if (r != -EINVAL)
                        fprintf(stderr, "\"%s\" -> %d\n", bad[i], r);
                CU_ASSERT_EQUAL(r, -EINVAL);
        }
}

static void test_bitrate_codes(void)
{
        CU_ASSERT_EQUAL(cf_slcan_bitrate_code(10000), '0');
        CU_ASSERT_EQUAL(cf_slcan_bitrate_code(500000), '6');
        CU_ASSERT_EQUAL(cf_slcan_bitrate_code(1000000), '8');
        CU_ASSERT_EQUAL(cf_slcan_bitrate_code(300000), 0);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"encode", test_encode},
            {"decode", test_decode},
            {"acks and other frames carry nothing", test_not_frames},
            {"malformed lines refused", test_malformed},
            {"bitrate codes", test_bitrate_codes},
            {NULL, NULL},
        };
        return cf_test_run("daemon-slcan", tests);
}
