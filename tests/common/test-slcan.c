/* Tests of the SLCAN line codec (common/src/slcan.c): parsing, formatting, bitrate codes, hex digits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/slcan.h"
#include "cf-test.h"

static int parse(const char *line, struct cf_can_frame *f, int32_t *ts)
{
        return cf_slcan_parse(line, strlen(line), f, ts);
}

static void test_hex_digit(void)
{
        static const char digits[] = "0123456789abcdef";
        for (int c = -128; c < 128; c++) {
                int want = -1;
                for (int v = 0; v < 16; v++)
                        if (c == digits[v] || (v >= 10 && c == digits[v] - 'a' + 'A'))
                                want = v;
                CU_ASSERT_EQUAL(cf_hex_digit((char) c), want);
        }
        CU_ASSERT_EQUAL(cf_hex_digit('7'), 7);
        CU_ASSERT_EQUAL(cf_hex_digit('a'), 10);
        CU_ASSERT_EQUAL(cf_hex_digit('F'), 15);
        CU_ASSERT_EQUAL(cf_hex_digit('g'), -1);
        CU_ASSERT_EQUAL(cf_hex_digit('\0'), -1);
}

static void test_parse_standard(void)
{
        struct cf_can_frame f;
        int32_t ts = 1234;

        CU_ASSERT_EQUAL(parse("t6C12FF00", &f, &ts), 0);
        CU_ASSERT_EQUAL(f.id, 0x6C1u);
        CU_ASSERT(!f.ext && !f.rtr);
        CU_ASSERT_EQUAL(f.dlc, 2);
        CU_ASSERT_EQUAL(f.data[0], 0xFF);
        CU_ASSERT_EQUAL(f.data[1], 0x00);
        CU_ASSERT_EQUAL(ts, CF_SLCAN_NO_TIMESTAMP);

        CU_ASSERT_EQUAL(parse("t6818010100000000000A", &f, NULL), 0);
        CU_ASSERT_EQUAL(f.id, 0x681u);
        CU_ASSERT_EQUAL(f.dlc, 8);
        static const uint8_t want[8] = {0x01, 0x01, 0, 0, 0, 0, 0, 0x0A};
        CU_ASSERT_EQUAL(memcmp(f.data, want, 8), 0);

        /* lower case digits, as some adapters send them */
        CU_ASSERT_EQUAL(parse("t6c18ff0007a1b2c3d4e5", &f, NULL), 0);
        CU_ASSERT_EQUAL(f.id, 0x6C1u);
        CU_ASSERT_EQUAL(f.data[3], 0xA1);
        CU_ASSERT_EQUAL(f.data[7], 0xE5);

        /* DLC 0 at the edges of the id range; the bytes past the DLC come back zero */
        memset(&f, 0xAA, sizeof f);
        CU_ASSERT_EQUAL(parse("t0000", &f, NULL), 0);
        CU_ASSERT_EQUAL(f.id, 0u);
        CU_ASSERT_EQUAL(f.dlc, 0);
        for (unsigned i = 0; i < 8; i++)
                CU_ASSERT_EQUAL(f.data[i], 0);
        CU_ASSERT_EQUAL(parse("t7FF0", &f, NULL), 0);
        CU_ASSERT_EQUAL(f.id, 0x7FFu);
}

static void test_parse_timestamp(void)
{
        struct cf_can_frame f;
        int32_t ts = CF_SLCAN_NO_TIMESTAMP;

        CU_ASSERT_EQUAL(parse("t6C12FF001A2B", &f, &ts), 0);
        CU_ASSERT_EQUAL(f.id, 0x6C1u);
        CU_ASSERT_EQUAL(f.dlc, 2);
        CU_ASSERT_EQUAL(f.data[0], 0xFF);
        CU_ASSERT_EQUAL(f.data[1], 0x00);
        CU_ASSERT_EQUAL(ts, 0x1A2B);

        CU_ASSERT_EQUAL(parse("t6C10ea5f", &f, &ts), 0);
        CU_ASSERT_EQUAL(f.dlc, 0);
        CU_ASSERT_EQUAL(ts, 0xEA5F);
        CU_ASSERT_EQUAL(parse("T000006C18010203040506070800FF", &f, &ts), 0);
        CU_ASSERT(f.ext);
        CU_ASSERT_EQUAL(f.data[7], 0x08);
        CU_ASSERT_EQUAL(ts, 0x00FF);
        CU_ASSERT_EQUAL(parse("r6C180000", &f, &ts), 0);
        CU_ASSERT(f.rtr);
        CU_ASSERT_EQUAL(f.dlc, 8);
        CU_ASSERT_EQUAL(ts, 0);

        /* a timestamp is not needed to parse the frame */
        CU_ASSERT_EQUAL(parse("t6C12FF001A2B", &f, NULL), 0);
        CU_ASSERT_EQUAL(f.data[0], 0xFF);
}

static void test_parse_extended_remote(void)
{
        struct cf_can_frame f;

        CU_ASSERT_EQUAL(parse("T1FFFFFFF2abCD", &f, NULL), 0);
        CU_ASSERT(f.ext && !f.rtr);
        CU_ASSERT_EQUAL(f.id, 0x1FFFFFFFu);
        CU_ASSERT_EQUAL(f.dlc, 2);
        CU_ASSERT_EQUAL(f.data[0], 0xAB);
        CU_ASSERT_EQUAL(f.data[1], 0xCD);

        CU_ASSERT_EQUAL(parse("T000006C12FF00", &f, NULL), 0);
        CU_ASSERT(f.ext);
        CU_ASSERT_EQUAL(f.id, 0x6C1u);

        CU_ASSERT_EQUAL(parse("r7FF8", &f, NULL), 0);
        CU_ASSERT(f.rtr && !f.ext);
        CU_ASSERT_EQUAL(f.id, 0x7FFu);
        CU_ASSERT_EQUAL(f.dlc, 8);
        for (unsigned i = 0; i < 8; i++)
                CU_ASSERT_EQUAL(f.data[i], 0);

        CU_ASSERT_EQUAL(parse("R000123453", &f, NULL), 0);
        CU_ASSERT(f.rtr && f.ext);
        CU_ASSERT_EQUAL(f.id, 0x12345u);
        CU_ASSERT_EQUAL(f.dlc, 3);
}

static void test_parse_range(void)
{
        struct cf_can_frame f = {.id = 0x42};
        int32_t ts = 7;

        CU_ASSERT_EQUAL(parse("t8000", &f, &ts), -ERANGE);
        CU_ASSERT_EQUAL(parse("tFFF2ABCD", &f, &ts), -ERANGE);
        CU_ASSERT_EQUAL(parse("r8001", &f, &ts), -ERANGE);
        CU_ASSERT_EQUAL(parse("T200000000", &f, &ts), -ERANGE);
        CU_ASSERT_EQUAL(parse("RFFFFFFFF0", &f, &ts), -ERANGE);
        CU_ASSERT_EQUAL(parse("t80001A2B", &f, &ts), -ERANGE);
        /* a line wrong in another way as well is malformed, not out of range */
        CU_ASSERT_EQUAL(parse("t8001", &f, &ts), -EINVAL);
        CU_ASSERT_EQUAL(parse("T2000000000", &f, &ts), -EINVAL);
        CU_ASSERT_EQUAL(parse("t8002GG00", &f, &ts), -EINVAL);
        /* nothing is written on failure */
        CU_ASSERT_EQUAL(f.id, 0x42u);
        CU_ASSERT_EQUAL(ts, 7);
}

static void test_parse_malformed(void)
{
        static const char *bad[] = {
            "",                        /* empty */
            "t",                       /* no id */
            "t68",                     /* short id */
            "t681",                    /* no DLC */
            "t6C19",                   /* DLC 9 */
            "t6819000000000000000000", /* DLC 9 with 9 bytes */
            "t681:",                   /* DLC not a digit */
            "t68110102",               /* DLC 1 but 2 bytes */
            "t6812010",                /* odd number of data digits */
            "t6C12FF0",                /* one digit short */
            "t6C12FF0000",             /* one byte too many, and not a timestamp */
            "t6C12FF001A2",            /* 3 timestamp digits */
            "t6C12FF001A2B3",          /* 5 timestamp digits */
            "t6C12FF001A2G",           /* timestamp not hex */
            "t6818010100000000000A0",  /* one digit after 8 bytes */
            "t68G1",                   /* id not hex */
            "tXYZ0",                   /* id not hex */
            "t 681",                   /* blank */
            "t6C12GG00",               /* data not hex */
            "t6C12+F00",               /* data not hex */
            "x6810",                   /* unknown kind */
            "q",                       /* unknown command */
            "z",                       /* an acknowledgement, not a frame */
            "V1013",                   /* a version answer */
            "T1",                      /* short extended id */
            "T12345670",               /* extended id of 7 digits */
            "R1234567",                /* extended remote, short id */
            "r6C12FF",                 /* remote frame with data */
            "T1FFFFFFF2abCD\r",        /* the terminator is not part of the line */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct cf_can_frame f = {.id = 0x42};
                int r = parse(bad[i], &f, NULL);
                if (r != -EINVAL)
                        fprintf(stderr, "\"%s\" -> %d\n", bad[i], r);
                CU_ASSERT_EQUAL(r, -EINVAL);
                CU_ASSERT_EQUAL(f.id, 0x42u);
        }
        /* len bounds the line: a valid prefix is not enough, and bytes past len are not read */
        struct cf_can_frame f;
        CU_ASSERT_EQUAL(cf_slcan_parse("t6C12FF00", 8, &f, NULL), -EINVAL);
        CU_ASSERT_EQUAL(cf_slcan_parse("t6C12FF00junk", 9, &f, NULL), 0);
        CU_ASSERT_EQUAL(f.data[1], 0x00);
}

static void test_format(void)
{
        char out[CF_SLCAN_LINE_MAX];
        struct cf_can_frame f = {.id = 0x681, .dlc = 2, .data = {0xAB, 0xCD}};

        CU_ASSERT_EQUAL(cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out), 10u);
        CU_ASSERT_STRING_EQUAL(out, "t6812ABCD\r");

        f = (struct cf_can_frame){.id = 0x681, .dlc = 8, .data = {1, 2, 3, 4, 5, 6, 7, 8}};
        CU_ASSERT_EQUAL(cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out), 22u);
        CU_ASSERT_STRING_EQUAL(out, "t68180102030405060708\r");

        f = (struct cf_can_frame){.id = 0x6C1, .dlc = 2, .data = {0xFF, 0x00}};
        CU_ASSERT_EQUAL(cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out), 10u);
        CU_ASSERT_STRING_EQUAL(out, "t6C12FF00\r");
        CU_ASSERT_EQUAL(cf_slcan_format(&f, 0xEA5F, out), 14u);
        CU_ASSERT_STRING_EQUAL(out, "t6C12FF00EA5F\r");
        CU_ASSERT_EQUAL(cf_slcan_format(&f, 0, out), 14u);
        CU_ASSERT_STRING_EQUAL(out, "t6C12FF000000\r");

        f = (struct cf_can_frame){.id = 0x7FF, .dlc = 0};
        CU_ASSERT_EQUAL(cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out), 6u);
        CU_ASSERT_STRING_EQUAL(out, "t7FF0\r");

        f = (struct cf_can_frame){.id = 0x12345, .ext = true, .rtr = true, .dlc = 3, .data = {9, 9, 9}};
        CU_ASSERT_EQUAL(cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out), 11u);
        CU_ASSERT_STRING_EQUAL(out, "R000123453\r");
        f.ext = false;
        f.id = 0x123;
        cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out);
        CU_ASSERT_STRING_EQUAL(out, "r1233\r");
        f = (struct cf_can_frame){.id = 0x1ABCDEF0, .ext = true, .dlc = 1, .data = {0x5A}};
        cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out);
        CU_ASSERT_STRING_EQUAL(out, "T1ABCDEF015A\r");

        /* out-of-range fields still give a well-formed line */
        f = (struct cf_can_frame){.id = 0xFFFF, .dlc = 12, .data = {1, 2, 3, 4, 5, 6, 7, 8}};
        cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out);
        CU_ASSERT_STRING_EQUAL(out, "t7FF80102030405060708\r");

        /* the longest line fits, NUL included */
        f = (struct cf_can_frame){.id = CF_CAN_EFF_MAX, .ext = true, .dlc = 8};
        memset(out, 'x', sizeof out);
        size_t n = cf_slcan_format(&f, 0xFFFF, out);
        CU_ASSERT_EQUAL(n, CF_SLCAN_LINE_MAX - 1u);
        CU_ASSERT_EQUAL(out[n], '\0');
        CU_ASSERT_STRING_EQUAL(out, "T1FFFFFFF80000000000000000FFFF\r");
}

/* format then parse gives the frame back, for frames of every kind, with and without a timestamp */
static void test_round_trip(void)
{
        srand(4321);
        for (int i = 0; i < 20000; i++) {
                bool ext = (i & 1) != 0, rtr = (i & 2) != 0;
                uint32_t id = (uint32_t) rand() << 8 ^ (uint32_t) rand();
                struct cf_can_frame f = {.id = id & (ext ? CF_CAN_EFF_MAX : CF_CAN_SFF_MAX),
                                         .ext = ext,
                                         .rtr = rtr,
                                         .dlc = (uint8_t) (rand() % 9)};
                if (!f.rtr)
                        for (unsigned k = 0; k < f.dlc; k++)
                                f.data[k] = (uint8_t) rand();
                int32_t ts_in = (i & 4) ? rand() % 0x10000 : CF_SLCAN_NO_TIMESTAMP, ts_out = -2;

                char out[CF_SLCAN_LINE_MAX];
                size_t n = cf_slcan_format(&f, ts_in, out);
                CU_ASSERT_FATAL(n >= 2 && n < CF_SLCAN_LINE_MAX);
                CU_ASSERT_EQUAL(out[n - 1], '\r');
                CU_ASSERT_EQUAL(strlen(out), n);

                struct cf_can_frame g;
                memset(&g, 0x55, sizeof g);
                CU_ASSERT_EQUAL_FATAL(cf_slcan_parse(out, n - 1, &g, &ts_out), 0);
                CU_ASSERT_EQUAL(g.id, f.id);
                CU_ASSERT_EQUAL(g.ext, f.ext);
                CU_ASSERT_EQUAL(g.rtr, f.rtr);
                CU_ASSERT_EQUAL(g.dlc, f.dlc);
                CU_ASSERT_EQUAL(memcmp(g.data, f.data, 8), 0);
                CU_ASSERT_EQUAL(ts_out, ts_in);
        }
}

static void test_bitrates(void)
{
        static const uint32_t rates[] = {10000,  20000,  50000,  100000, 125000,
                                         250000, 500000, 800000, 1000000};
        for (unsigned i = 0; i < 9; i++) {
                CU_ASSERT_EQUAL(cf_slcan_bitrate_code(rates[i]), (char) ('0' + i));
                CU_ASSERT_EQUAL(cf_slcan_bitrate((char) ('0' + i)), rates[i]);
        }
        CU_ASSERT_EQUAL(cf_slcan_bitrate_code(500000), '6');
        CU_ASSERT_EQUAL(cf_slcan_bitrate_code(300000), 0);
        CU_ASSERT_EQUAL(cf_slcan_bitrate_code(0), 0);
        CU_ASSERT_EQUAL(cf_slcan_bitrate_code(125001), 0);
        CU_ASSERT_EQUAL(cf_slcan_bitrate('9'), 0u);
        CU_ASSERT_EQUAL(cf_slcan_bitrate('x'), 0u);
        CU_ASSERT_EQUAL(cf_slcan_bitrate('/'), 0u);
        CU_ASSERT_EQUAL(cf_slcan_bitrate('\0'), 0u);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"hex digits", test_hex_digit},
            {"parse standard data frames", test_parse_standard},
            {"parse timestamps", test_parse_timestamp},
            {"parse extended and remote frames", test_parse_extended_remote},
            {"ids out of range", test_parse_range},
            {"malformed lines refused", test_parse_malformed},
            {"format frames", test_format},
            {"format and parse round trip", test_round_trip},
            {"bitrate codes", test_bitrates},
            {NULL, NULL},
        };
        return cf_test_run("common-slcan", tests);
}
