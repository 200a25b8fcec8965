/* Tests of common/src/ccp.c: every encoder example of ccp.h byte for byte, the decoders, the tables. */
#include <string.h>

#include "canfleet/ccp.h"
#include "cf-test.h"

#define FRAME(...) ((const uint8_t[8]){__VA_ARGS__})

static uint8_t f[8];

/* Start every encoding from garbage so an encoder that leaves a byte alone is caught. */
static uint8_t *dirty(void)
{
        memset(f, 0xA5, sizeof(f));
        return f;
}

#define ASSERT_FRAME(...) CU_ASSERT_EQUAL(memcmp(f, FRAME(__VA_ARGS__), 8), 0)

static const uint8_t d6[6] = {0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5};

static void test_encoders(void)
{
        cf_ccp_cro_connect(dirty(), 0x01, 0x0203);
        ASSERT_FRAME(0x01, 0x01, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_get_ccp_version(dirty(), 2, 2, 1);
        ASSERT_FRAME(0x1B, 0x02, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_exchange_id(dirty(), 3);
        ASSERT_FRAME(0x17, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_get_seed(dirty(), 4, CF_CCP_RES_PGM);
        ASSERT_FRAME(0x12, 0x04, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_unlock(dirty(), 5, (const uint8_t[6]){0x10, 0x20, 0x30, 0x40, 0x50, 0x60});
        ASSERT_FRAME(0x13, 0x05, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60);
        cf_ccp_cro_set_mta(dirty(), 6, 0, 3, 0x00001234);
        ASSERT_FRAME(0x02, 0x06, 0x00, 0x03, 0x00, 0x00, 0x12, 0x34);
        cf_ccp_cro_clear_memory(dirty(), 7, 0x40000);
        ASSERT_FRAME(0x10, 0x07, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_program(dirty(), 8, d6, 3);
        ASSERT_FRAME(0x18, 0x08, 0x03, 0xD0, 0xD1, 0xD2, 0x00, 0x00);
        cf_ccp_cro_program6(dirty(), 9, d6);
        ASSERT_FRAME(0x22, 0x09, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5);
        cf_ccp_cro_dnload(dirty(), 10, d6, 2);
        ASSERT_FRAME(0x03, 0x0A, 0x02, 0xD0, 0xD1, 0x00, 0x00, 0x00);
        cf_ccp_cro_dnload6(dirty(), 11, d6);
        ASSERT_FRAME(0x23, 0x0B, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5);
        cf_ccp_cro_upload(dirty(), 12, 4);
        ASSERT_FRAME(0x04, 0x0C, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_short_up(dirty(), 13, 4, 1, 0x08);
        ASSERT_FRAME(0x0F, 0x0D, 0x04, 0x01, 0x00, 0x00, 0x00, 0x08);
        cf_ccp_cro_build_chksum(dirty(), 14, 0x3FFFC);
        ASSERT_FRAME(0x0E, 0x0E, 0x00, 0x03, 0xFF, 0xFC, 0x00, 0x00);
        cf_ccp_cro_disconnect(dirty(), 15, CF_CCP_DISCONNECT_END, 0x0005);
        ASSERT_FRAME(0x07, 0x0F, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00);
        cf_ccp_cro_test(dirty(), 16, 0x0005);
        ASSERT_FRAME(0x05, 0x10, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00);
}

static void test_encoder_edges(void)
{
        /* PROGRAM with size 0 ends a sequence; data is not touched */
        cf_ccp_cro_program(dirty(), 0xFF, NULL, 0);
        ASSERT_FRAME(0x18, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_program(dirty(), 1, d6, 5);
        ASSERT_FRAME(0x18, 0x01, 0x05, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4);
        /* more than 5 cannot fit: clamped, never written past the frame */
        cf_ccp_cro_program(dirty(), 1, d6, 6);
        ASSERT_FRAME(0x18, 0x01, 0x05, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4);
        cf_ccp_cro_dnload(dirty(), 1, d6, 200);
        ASSERT_FRAME(0x03, 0x01, 0x05, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4);
        cf_ccp_cro_set_mta(dirty(), 0, 1, 2, 0x08060000);
        ASSERT_FRAME(0x02, 0x00, 0x01, 0x02, 0x08, 0x06, 0x00, 0x00);
        cf_ccp_cro_disconnect(dirty(), 0, CF_CCP_DISCONNECT_TEMPORARY, 0xBEEF);
        ASSERT_FRAME(0x07, 0x00, 0x00, 0x00, 0xEF, 0xBE, 0x00, 0x00);
        cf_ccp_cro_connect(dirty(), 0, 0xFFFF);
        ASSERT_FRAME(0x01, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_clear_memory(dirty(), 0, 0x12345678);
        ASSERT_FRAME(0x10, 0x00, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00);
}

static void test_dto_parse(void)
{
        struct cf_ccp_dto d;
        const uint8_t *fr = FRAME(0xFF, 0x00, 0x07, 0x04, 0x12, 0x34, 0x56, 0x78);

        memset(&d, 0xA5, sizeof(d));
        CU_ASSERT_EQUAL(cf_ccp_dto_parse(fr, 8, &d), 0);
        CU_ASSERT_EQUAL(d.pid, 0xFF);
        CU_ASSERT_EQUAL(d.err, 0x00);
        CU_ASSERT_EQUAL(d.ctr, 0x07);
        CU_ASSERT_EQUAL(memcmp(d.data, (const uint8_t[]){0x04, 0x12, 0x34, 0x56, 0x78}, 5), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&d), 0x12345678u);
        CU_ASSERT_EQUAL(cf_ccp_dto_chksum(&d), 0x12345678u);

        CU_ASSERT_EQUAL(cf_ccp_dto_parse(FRAME(0xFE, 0x20, 0, 0, 0, 0, 0, 0), 8, &d), 0);
        CU_ASSERT_EQUAL(d.pid, 0xFE);
        CU_ASSERT_EQUAL(d.err, 0x20);

        for (uint8_t dlc = 0; dlc <= 15; dlc++)
                if (dlc != 8)
                        CU_ASSERT_EQUAL(cf_ccp_dto_parse(fr, dlc, &d), -1);
        for (unsigned pid = 0; pid < 0xFE; pid++) {
                uint8_t bad[8] = {(uint8_t) pid, 0, 7, 0, 0, 0, 0, 0};
                CU_ASSERT_EQUAL(cf_ccp_dto_parse(bad, 8, &d), -1);
        }
}

static void test_cro_parse(void)
{
        struct cf_ccp_cro c;
        const uint8_t *fr = FRAME(0x02, 0x06, 0x00, 0x03, 0x00, 0x00, 0x12, 0x34);

        CU_ASSERT_EQUAL(cf_ccp_cro_parse(fr, 8, &c), 0);
        CU_ASSERT_EQUAL(c.cmd, CF_CCP_SET_MTA);
        CU_ASSERT_EQUAL(c.ctr, 0x06);
        CU_ASSERT_PTR_EQUAL(c.p, fr + 2);
        CU_ASSERT_EQUAL(cf_be32_get(c.p + 2), 0x1234u);
        CU_ASSERT_EQUAL(cf_ccp_cro_parse(fr, 7, &c), -1);
        CU_ASSERT_EQUAL(cf_ccp_cro_parse(fr, 0, &c), -1);
        CU_ASSERT_EQUAL(cf_ccp_cro_parse(fr, 9, &c), -1);
}

static void test_dto_encoders(void)
{
        cf_ccp_dto_reply(dirty(), 0x00, 0x07, (const uint8_t[]){2, 1}, 2);
        ASSERT_FRAME(0xFF, 0x00, 0x07, 0x02, 0x01, 0x00, 0x00, 0x00);
        cf_ccp_dto_reply(dirty(), CF_CCP_ERR_ACCESS_LOCKED, 0x09, NULL, 0);
        ASSERT_FRAME(0xFF, 0x35, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_dto_reply(dirty(), 0, 1, d6, 5);
        ASSERT_FRAME(0xFF, 0x00, 0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4);
        cf_ccp_dto_reply(dirty(), 0, 1, d6, 6);
        ASSERT_FRAME(0xFF, 0x00, 0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4);
        cf_ccp_dto_reply_mta(dirty(), 0x00, 0x08, 3, 0x00000105);
        ASSERT_FRAME(0xFF, 0x00, 0x08, 0x03, 0x00, 0x00, 0x01, 0x05);
        cf_ccp_dto_event(dirty(), CF_CCP_ERR_COLD_START);
        ASSERT_FRAME(0xFE, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);

        /* what the slave encodes the master decodes */
        struct cf_ccp_dto d;
        cf_ccp_dto_reply_mta(f, 0x00, 0x42, 3, 0x0003FFC0);
        CU_ASSERT_EQUAL(cf_ccp_dto_parse(f, 8, &d), 0);
        CU_ASSERT_EQUAL(d.ctr, 0x42);
        CU_ASSERT_EQUAL(d.data[0], 3);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&d), 0x0003FFC0u);
}

static const uint8_t known_errs[][2] = {
    {0x00, 0}, {0x10, 1}, {0x11, 1}, {0x12, 1}, {0x18, 1}, {0x19, 1}, {0x20, 2}, {0x21, 2}, {0x22, 2},
    {0x23, 2}, {0x30, 3}, {0x31, 3}, {0x32, 3}, {0x33, 3}, {0x34, 3}, {0x35, 3}, {0x36, 3},
};
#define N_KNOWN_ERRS (sizeof(known_errs) / sizeof(known_errs[0]))

static int err_known(unsigned e)
{
        for (size_t i = 0; i < N_KNOWN_ERRS; i++)
                if (known_errs[i][0] == e)
                        return 1;
        return 0;
}

static void test_err_class(void)
{
        for (size_t i = 0; i < N_KNOWN_ERRS; i++)
                CU_ASSERT_EQUAL(cf_ccp_err_class(known_errs[i][0]), known_errs[i][1]);
        for (unsigned e = 0; e < 256; e++)
                if (!err_known(e))
                        CU_ASSERT_EQUAL(cf_ccp_err_class((uint8_t) e), 3);
}

static void test_err_str(void)
{
        const char *unknown = cf_ccp_err_str(0x13);
        CU_ASSERT_STRING_EQUAL(unknown, "unknown error");
        CU_ASSERT_STRING_EQUAL(cf_ccp_err_str(CF_CCP_ERR_BUSY), "busy");
        CU_ASSERT_STRING_EQUAL(cf_ccp_err_str(CF_CCP_ERR_ACCESS_LOCKED), "access locked");
        for (size_t i = 0; i < N_KNOWN_ERRS; i++) {
                const char *s = cf_ccp_err_str(known_errs[i][0]);
                CU_ASSERT_PTR_NOT_NULL_FATAL(s);
                CU_ASSERT_STRING_NOT_EQUAL(s, "unknown error");
                for (size_t j = 0; j < i; j++)
                        CU_ASSERT_STRING_NOT_EQUAL(s, cf_ccp_err_str(known_errs[j][0]));
        }
        for (unsigned e = 0; e < 256; e++)
                if (!err_known(e)) {
                        CU_ASSERT_PTR_NOT_NULL_FATAL(cf_ccp_err_str((uint8_t) e));
                        CU_ASSERT_STRING_EQUAL(cf_ccp_err_str((uint8_t) e), "unknown error");
                }
}

static const struct {
        uint8_t code;
        const char *name;
        uint32_t timeout;
} cmds[] = {
    {0x01, "CONNECT", 25},         {0x02, "SET_MTA", 25},  {0x03, "DNLOAD", 25},
    {0x04, "UPLOAD", 25},          {0x05, "TEST", 25},     {0x07, "DISCONNECT", 25},
    {0x0E, "BUILD_CHKSUM", 30000}, {0x0F, "SHORT_UP", 25}, {0x10, "CLEAR_MEMORY", 30000},
    {0x12, "GET_SEED", 25},        {0x13, "UNLOCK", 25},   {0x17, "EXCHANGE_ID", 25},
    {0x18, "PROGRAM", 100},        {0x19, "MOVE", 30000},  {0x1B, "GET_CCP_VERSION", 25},
    {0x21, "ACTION_SERVICE", 25},  {0x22, "PROGRAM_6", 100}, {0x23, "DNLOAD_6", 25},
};
#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static void test_cmd_names_and_timeouts(void)
{
        for (size_t i = 0; i < N_CMDS; i++) {
                const char *n = cf_ccp_cmd_name(cmds[i].code);
                CU_ASSERT_PTR_NOT_NULL_FATAL(n);
                CU_ASSERT_STRING_EQUAL(n, cmds[i].name);
                CU_ASSERT_EQUAL(cf_ccp_timeout_ms(cmds[i].code), cmds[i].timeout);
        }
        for (unsigned c = 0; c < 256; c++) {
                int known = 0;
                for (size_t i = 0; i < N_CMDS; i++)
                        known |= cmds[i].code == c;
                if (!known) {
                        CU_ASSERT_PTR_NULL(cf_ccp_cmd_name((uint8_t) c));
                        CU_ASSERT_EQUAL(cf_ccp_timeout_ms((uint8_t) c), 25u);
                }
        }
}

static void test_byte_order_helpers(void)
{
        uint8_t b[4];
        cf_be32_put(b, 0x01020304);
        CU_ASSERT_EQUAL(memcmp(b, (const uint8_t[]){1, 2, 3, 4}, 4), 0);
        CU_ASSERT_EQUAL(cf_be32_get(b), 0x01020304u);
        CU_ASSERT_EQUAL(cf_le32_get(b), 0x04030201u);
        cf_le32_put(b, 0xA1B2C3D4);
        CU_ASSERT_EQUAL(memcmp(b, (const uint8_t[]){0xD4, 0xC3, 0xB2, 0xA1}, 4), 0);
        cf_le16_put(b, 0xBEEF);
        CU_ASSERT_EQUAL(b[0], 0xEF);
        CU_ASSERT_EQUAL(b[1], 0xBE);
        CU_ASSERT_EQUAL(cf_le16_get(b), 0xBEEF);
}

/* The group transfer's services and frames (ccp.h examples, byte for byte). */
static void test_group_codec(void)
{
        struct cf_ccp_cro c;
        struct cf_ccp_dto d;

        cf_ccp_cro_group_join(dirty(), 1, 0x680, 0xBEEF);
        ASSERT_FRAME(0x21, 0x01, 0xCF, 0x01, 0x06, 0x80, 0xBE, 0xEF);
        CU_ASSERT_EQUAL(cf_ccp_cro_parse(f, 8, &c), 0);
        CU_ASSERT_EQUAL(cf_ccp_cro_service(&c), CF_CCP_SVC_GROUP_JOIN);
        cf_ccp_cro_group_leave(dirty(), 2);
        ASSERT_FRAME(0x21, 0x02, 0xCF, 0x02, 0x00, 0x00, 0x00, 0x00);
        cf_ccp_cro_gap(dirty(), 3, 0x1234);
        ASSERT_FRAME(0x21, 0x03, 0xCF, 0x03, 0x12, 0x34, 0x00, 0x00);
        CU_ASSERT_EQUAL(cf_ccp_cro_parse(f, 8, &c), 0);
        CU_ASSERT_EQUAL(cf_ccp_cro_service(&c), 0xCF03);
        cf_ccp_cro_confirm(dirty(), 4);
        ASSERT_FRAME(0x21, 0x04, 0xCF, 0x10, 0x00, 0x00, 0x00, 0x00);
        CU_ASSERT_EQUAL(cf_ccp_cro_parse(f, 8, &c), 0);
        CU_ASSERT_EQUAL(cf_ccp_cro_service(&c), CF_CCP_SVC_CONFIRM);

        cf_ccp_dto_reply_gap(dirty(), 3, 0x1234, 5);
        ASSERT_FRAME(0xFF, 0x00, 0x03, 0x12, 0x34, 0x00, 0x05, 0x00);
        CU_ASSERT_EQUAL(cf_ccp_dto_parse(f, 8, &d), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_gap_first(&d), 0x1234);
        CU_ASSERT_EQUAL(cf_ccp_dto_gap_run(&d), 5);
        cf_ccp_dto_reply_gap(dirty(), 4, CF_GROUP_SLOT_NONE, 0);
        ASSERT_FRAME(0xFF, 0x00, 0x04, 0xFF, 0xFF, 0x00, 0x00, 0x00);
        CU_ASSERT_EQUAL(cf_ccp_dto_parse(f, 8, &d), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_gap_first(&d), 0xFFFF);
        CU_ASSERT_EQUAL(cf_ccp_dto_join_received(&d), 0xFFFF);

        CU_ASSERT_EQUAL(CF_GROUP_SLOTS, 43691u);
        static uint8_t area[CF_GROUP_AREA_SIZE];
        for (size_t i = 0; i < sizeof(area); i++)
                area[i] = (uint8_t) i;
        CU_ASSERT_EQUAL(cf_ccp_group_frame(dirty(), area, 1), 1);
        ASSERT_FRAME(0x00, 0x01, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B);
        uint16_t slot;
        const uint8_t *data;
        CU_ASSERT_EQUAL(cf_ccp_group_frame_parse(f, 8, &slot, &data), 0);
        CU_ASSERT_EQUAL(slot, 1);
        CU_ASSERT_PTR_EQUAL(data, f + 2);
        CU_ASSERT_EQUAL(cf_ccp_group_frame_parse(f, 7, &slot, &data), -1);
        /* The last slot: 4 bytes in the area, 2 past its end sent as 0xFF. */
        memcpy(area + 0x3FFFC, (const uint8_t[]){0xC0, 0xC1, 0xC2, 0xC3}, 4);
        CU_ASSERT_EQUAL(cf_ccp_group_frame(dirty(), area, 43690), 1);
        ASSERT_FRAME(0xAA, 0xAA, 0xC0, 0xC1, 0xC2, 0xC3, 0xFF, 0xFF);
        CU_ASSERT_EQUAL(cf_ccp_group_frame(dirty(), area, 43691), -1);
        /* All 0xFF: not sent; one byte that is not makes it a frame. */
        memset(area + 12, 0xFF, 6);
        CU_ASSERT_EQUAL(cf_ccp_group_frame(dirty(), area, 2), 0);
        area[17] = 0xFE;
        CU_ASSERT_EQUAL(cf_ccp_group_frame(dirty(), area, 2), 1);
        memset(area + 0x3FFFC, 0xFF, 4);
        CU_ASSERT_EQUAL(cf_ccp_group_frame(dirty(), area, 43690), 0);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"CRO encoders (ccp.h examples)", test_encoders},
            {"CRO encoder edges", test_encoder_edges},
            {"DTO parse", test_dto_parse},
            {"CRO parse", test_cro_parse},
            {"DTO encoders", test_dto_encoders},
            {"error classes", test_err_class},
            {"error strings", test_err_str},
            {"command names and time-outs", test_cmd_names_and_timeouts},
            {"byte order helpers", test_byte_order_helpers},
            {"group transfer codec", test_group_codec},
            {NULL, NULL},
        };
        return cf_test_run("ccp", tests);
}
