/* Fuzz target: the CCP codec — parsers on any frame and DLC, every encoder round-tripped through them. */
#include <stdlib.h>
#include <string.h>

#include "canfleet/ccp.h"
#include "fuzz.h"

/*
 * The input is a series of operations; each starts with a selector byte and takes its arguments
 * from the bytes after it (zeros past the end). Frames live in exact 8-byte heap blocks, and
 * payloads handed to encoders in blocks of exactly the length given, so that with ASan an access
 * outside them is caught.
 */

static uint8_t *frame_new(uint8_t fill)
{
        uint8_t *f = malloc(CF_CCP_FRAME_LEN);
        if (!f)
                abort();
        memset(f, fill, CF_CCP_FRAME_LEN);
        return f;
}

static uint8_t *payload_new(struct fuzz_in *in, size_t n)
{
        uint8_t *p = malloc(n ? n : 1);
        if (!p)
                abort();
        fuzz_bytes(in, p, n);
        return p;
}

/* Parse an encoder's output as the slave does and check command, counter and the zero tail. */
static const uint8_t *cro_check(const uint8_t *f, uint8_t cmd, uint8_t ctr, unsigned used)
{
        struct cf_ccp_cro c;

        FUZZ_CHECK(cf_ccp_cro_parse(f, CF_CCP_FRAME_LEN, &c) == 0, "an encoded CRO does not parse");
        FUZZ_CHECK(c.cmd == cmd, "CRO command %02x, want %02x", c.cmd, cmd);
        FUZZ_CHECK(c.ctr == ctr, "CRO %02x counter %02x, want %02x", cmd, c.ctr, ctr);
        FUZZ_CHECK(c.p == f + 2, "CRO parameters not at byte 2");
        for (unsigned i = 2 + used; i < CF_CCP_FRAME_LEN; i++)
                FUZZ_CHECK(f[i] == 0, "CRO %02x: unused byte %u is %02x, not 0", cmd, i, f[i]);
        return c.p;
}

static void check_parsers(struct fuzz_in *in)
{
        uint8_t dlc = fuzz_u8(in);
        uint8_t *f = frame_new(0);
        struct cf_ccp_dto d;
        struct cf_ccp_cro c;

        fuzz_bytes(in, f, CF_CCP_FRAME_LEN);

        int r = cf_ccp_dto_parse(f, dlc, &d);
        int want = dlc == CF_CCP_FRAME_LEN && (f[0] == CF_CCP_PID_CRM || f[0] == CF_CCP_PID_EVENT) ? 0 : -1;
        FUZZ_CHECK(r == want, "cf_ccp_dto_parse(dlc %u, pid %02x) = %d, want %d", dlc, f[0], r, want);
        if (r == 0) {
                FUZZ_CHECK(d.pid == f[0] && d.err == f[1] && d.ctr == f[2], "DTO header fields wrong");
                FUZZ_CHECK(memcmp(d.data, f + 3, 5) == 0, "DTO data wrong");
                FUZZ_CHECK(cf_ccp_dto_mta(&d) == cf_be32_get(f + 4), "MTA accessor wrong");
                FUZZ_CHECK(cf_ccp_dto_chksum(&d) == cf_be32_get(f + 4), "checksum accessor wrong");
        }

        r = cf_ccp_cro_parse(f, dlc, &c);
        want = dlc == CF_CCP_FRAME_LEN ? 0 : -1;
        FUZZ_CHECK(r == want, "cf_ccp_cro_parse(dlc %u) = %d, want %d", dlc, r, want);
        if (r == 0)
                FUZZ_CHECK(c.cmd == f[0] && c.ctr == f[1] && c.p == f + 2, "CRO fields wrong");
        free(f);
}

/* ccp.h: 0 OK; 1 wait and retry; 2 re-initialise; 3 stop, and 3 for every code not listed. */
static int model_class(uint8_t v)
{
        if (v == 0x00)
                return 0;
        if (v == 0x10 || v == 0x11 || v == 0x12 || v == 0x18 || v == 0x19)
                return 1;
        if (v >= 0x20 && v <= 0x23)
                return 2;
        return 3;
}

static void check_tables(struct fuzz_in *in)
{
        uint8_t v = fuzz_u8(in);
        int cls = cf_ccp_err_class(v);
        const char *s = cf_ccp_err_str(v);
        const char *name = cf_ccp_cmd_name(v);
        uint32_t t = cf_ccp_timeout_ms(v);

        FUZZ_CHECK(cls >= 0 && cls <= 3, "error class %d", cls);
        FUZZ_CHECK(cls == model_class(v), "code %02x: class %d, want %d", v, cls, model_class(v));
        FUZZ_CHECK(s && s[0], "no text for error %02x", v);
        if (name)
                FUZZ_CHECK(name[0], "empty command name for %02x", v);
        FUZZ_CHECK(t == 25 || t == 100 || t == 30000, "time-out %u ms for %02x", t, v);
        if (v == CF_CCP_PROGRAM || v == CF_CCP_PROGRAM_6)
                FUZZ_CHECK(t == 100, "PROGRAM time-out %u", t);
        if (v == CF_CCP_CLEAR_MEMORY || v == CF_CCP_BUILD_CHKSUM || v == CF_CCP_MOVE)
                FUZZ_CHECK(t == 30000, "long command time-out %u", t);
}

static void check_byte_order(struct fuzz_in *in)
{
        uint8_t b[4];
        uint32_t v = fuzz_u32(in);

        cf_be32_put(b, v);
        FUZZ_CHECK(b[0] == (uint8_t) (v >> 24) && b[3] == (uint8_t) v && cf_be32_get(b) == v, "be32");
        cf_le32_put(b, v);
        FUZZ_CHECK(b[0] == (uint8_t) v && b[3] == (uint8_t) (v >> 24) && cf_le32_get(b) == v, "le32");
        cf_le16_put(b, (uint16_t) v);
        FUZZ_CHECK(b[0] == (uint8_t) v && cf_le16_get(b) == (uint16_t) v, "le16");
}

/* One CRO encoder, chosen by sel, with fuzzed arguments. */
static void check_encoder(struct fuzz_in *in, uint8_t sel)
{
        uint8_t *f = frame_new(0xA5);
        uint8_t ctr = fuzz_u8(in);
        const uint8_t *p;
        uint8_t *data = NULL;

        switch (sel % 17) {
        case 0: {
                uint16_t st = fuzz_u16(in);
                cf_ccp_cro_connect(f, ctr, st);
                p = cro_check(f, CF_CCP_CONNECT, ctr, 2);
                FUZZ_CHECK(cf_le16_get(p) == st, "CONNECT station");
                break;
        }
        case 1: {
                uint8_t ma = fuzz_u8(in), re = fuzz_u8(in);
                cf_ccp_cro_get_ccp_version(f, ctr, ma, re);
                p = cro_check(f, CF_CCP_GET_CCP_VERSION, ctr, 2);
                FUZZ_CHECK(p[0] == ma && p[1] == re, "GET_CCP_VERSION");
                break;
        }
        case 2:
                cf_ccp_cro_exchange_id(f, ctr);
                cro_check(f, CF_CCP_EXCHANGE_ID, ctr, 0);
                break;
        case 3: {
                uint8_t res = fuzz_u8(in);
                cf_ccp_cro_get_seed(f, ctr, res);
                p = cro_check(f, CF_CCP_GET_SEED, ctr, 1);
                FUZZ_CHECK(p[0] == res, "GET_SEED resource");
                break;
        }
        case 4:
                data = payload_new(in, 6);
                cf_ccp_cro_unlock(f, ctr, data);
                p = cro_check(f, CF_CCP_UNLOCK, ctr, 6);
                FUZZ_CHECK(memcmp(p, data, 6) == 0, "UNLOCK key");
                break;
        case 5: {
                uint8_t mta = fuzz_u8(in), ext = fuzz_u8(in);
                uint32_t addr = fuzz_u32(in);
                cf_ccp_cro_set_mta(f, ctr, mta, ext, addr);
                p = cro_check(f, CF_CCP_SET_MTA, ctr, 6);
                FUZZ_CHECK(p[0] == mta && p[1] == ext && cf_be32_get(p + 2) == addr, "SET_MTA");
                break;
        }
        case 6: {
                uint32_t size = fuzz_u32(in);
                cf_ccp_cro_clear_memory(f, ctr, size);
                p = cro_check(f, CF_CCP_CLEAR_MEMORY, ctr, 4);
                FUZZ_CHECK(cf_be32_get(p) == size, "CLEAR_MEMORY size");
                break;
        }
        case 7:
        case 8: {
                /* PROGRAM takes 0..5 bytes, DNLOAD 1..5: the count byte, then the data. */
                bool prog = sel % 17 == 7;
                uint8_t n = fuzz_u8(in) % (prog ? 6 : 5) + (prog ? 0 : 1);
                data = payload_new(in, n);
                if (prog)
                        cf_ccp_cro_program(f, ctr, n ? data : NULL, n);
                else
                        cf_ccp_cro_dnload(f, ctr, data, n);
                p = cro_check(f, prog ? CF_CCP_PROGRAM : CF_CCP_DNLOAD, ctr, 1u + n);
                FUZZ_CHECK(p[0] == n && (n == 0 || memcmp(p + 1, data, n) == 0), "PROGRAM/DNLOAD of %u", n);
                break;
        }
        case 9:
        case 10: {
                bool prog = sel % 17 == 9;
                data = payload_new(in, 6);
                if (prog)
                        cf_ccp_cro_program6(f, ctr, data);
                else
                        cf_ccp_cro_dnload6(f, ctr, data);
                p = cro_check(f, prog ? CF_CCP_PROGRAM_6 : CF_CCP_DNLOAD_6, ctr, 6);
                FUZZ_CHECK(memcmp(p, data, 6) == 0, "PROGRAM_6/DNLOAD_6 data");
                break;
        }
        case 11: {
                uint8_t n = fuzz_u8(in) % 5 + 1;
                cf_ccp_cro_upload(f, ctr, n);
                p = cro_check(f, CF_CCP_UPLOAD, ctr, 1);
                FUZZ_CHECK(p[0] == n, "UPLOAD size");
                break;
        }
        case 12: {
                uint8_t n = fuzz_u8(in) % 5 + 1, ext = fuzz_u8(in);
                uint32_t addr = fuzz_u32(in);
                cf_ccp_cro_short_up(f, ctr, n, ext, addr);
                p = cro_check(f, CF_CCP_SHORT_UP, ctr, 6);
                FUZZ_CHECK(p[0] == n && p[1] == ext && cf_be32_get(p + 2) == addr, "SHORT_UP");
                break;
        }
        case 13: {
                uint32_t size = fuzz_u32(in);
                cf_ccp_cro_build_chksum(f, ctr, size);
                p = cro_check(f, CF_CCP_BUILD_CHKSUM, ctr, 4);
                FUZZ_CHECK(cf_be32_get(p) == size, "BUILD_CHKSUM size");
                break;
        }
        case 14: {
                uint8_t type = fuzz_u8(in);
                uint16_t st = fuzz_u16(in);
                cf_ccp_cro_disconnect(f, ctr, type, st);
                p = cro_check(f, CF_CCP_DISCONNECT, ctr, 4);
                FUZZ_CHECK(p[0] == type && p[1] == 0 && cf_le16_get(p + 2) == st, "DISCONNECT");
                break;
        }
        case 15: {
                uint16_t st = fuzz_u16(in);
                cf_ccp_cro_test(f, ctr, st);
                p = cro_check(f, CF_CCP_TEST, ctr, 2);
                FUZZ_CHECK(cf_le16_get(p) == st, "TEST station");
                break;
        }
        default: {
                /* Counts outside the documented ranges: only memory safety and the header are promised. */
                uint8_t what = fuzz_u8(in), n = fuzz_u8(in);
                data = payload_new(in, n);
                if (what % 4 == 0)
                        cf_ccp_cro_program(f, ctr, data, n);
                else if (what % 4 == 1)
                        cf_ccp_cro_dnload(f, ctr, data, n);
                else if (what % 4 == 2)
                        cf_ccp_cro_upload(f, ctr, n);
                else
                        cf_ccp_cro_short_up(f, ctr, n, 0, 0);
                FUZZ_CHECK(f[1] == ctr, "counter lost with an out-of-range count");
                break;
        }
        }
        free(data);
        free(f);
}

/* The slave's DTO encoders, parsed back as the master does. */
static void check_dto_encoders(struct fuzz_in *in, uint8_t sel)
{
        uint8_t *f = frame_new(0x5A);
        uint8_t err = fuzz_u8(in), ctr = fuzz_u8(in);
        struct cf_ccp_dto d;
        uint8_t *data = NULL;

        switch (sel % 3) {
        case 0: {
                uint8_t k = fuzz_u8(in), n = k % 6;
                /* data may be NULL: the reply then carries zeros. */
                bool null = k & 0x80;
                data = payload_new(in, n);
                cf_ccp_dto_reply(f, err, ctr, null ? NULL : data, n);
                FUZZ_CHECK(cf_ccp_dto_parse(f, 8, &d) == 0, "reply does not parse");
                FUZZ_CHECK(d.pid == CF_CCP_PID_CRM && d.err == err && d.ctr == ctr, "reply header");
                FUZZ_CHECK(null || memcmp(d.data, data, n) == 0, "reply data");
                for (unsigned i = null ? 0 : n; i < 5; i++)
                        FUZZ_CHECK(d.data[i] == 0, "reply byte %u not zero", 3 + i);
                break;
        }
        case 1: {
                uint8_t ext = fuzz_u8(in);
                uint32_t addr = fuzz_u32(in);
                cf_ccp_dto_reply_mta(f, err, ctr, ext, addr);
                FUZZ_CHECK(cf_ccp_dto_parse(f, 8, &d) == 0, "MTA reply does not parse");
                FUZZ_CHECK(d.pid == CF_CCP_PID_CRM && d.err == err && d.ctr == ctr, "MTA reply header");
                FUZZ_CHECK(d.data[0] == ext && cf_ccp_dto_mta(&d) == addr, "MTA reply payload");
                break;
        }
        default:
                cf_ccp_dto_event(f, err);
                FUZZ_CHECK(cf_ccp_dto_parse(f, 8, &d) == 0, "event does not parse");
                FUZZ_CHECK(d.pid == CF_CCP_PID_EVENT && d.err == err, "event header");
                for (unsigned i = 2; i < 8; i++)
                        FUZZ_CHECK(f[i] == 0, "event byte %u not zero", i);
                break;
        }
        free(data);
        free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};

        /* Bounded: an input of n bytes runs at most n operations. */
        while (fuzz_left(&in)) {
                uint8_t op = fuzz_u8(&in);
                switch (op >> 6) {
                case 0:
                        check_parsers(&in);
                        break;
                case 1:
                        check_encoder(&in, op);
                        break;
                case 2:
                        check_dto_encoders(&in, op);
                        break;
                default:
                        check_tables(&in);
                        check_byte_order(&in);
                        break;
                }
        }
        return 0;
}
