/* Tests of the CCP slave: every command of ccp-slave.h, its success path and its errors, on a node. */
#include <string.h>

#include "canfleet/crc32.h"
#include "canfleet/seedkey.h"
#include "cf-test.h"
#include "fw-fixture.h"

#define B CF_AREA_APP_ADDR
#define C CF_AREA_STAGING_ADDR

static uint8_t img_v1[CF_IMAGE_AREA_SIZE], img_v2[CF_IMAGE_AREA_SIZE];
static struct cf_ccp_dto D; /* the last answer */

/* A node running v1 from B. */
static void setup(struct fx *f)
{
        fx_init(f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f->hal), 0);
        fx_poke_area(f, B, img_v1);
        fx_power_on(f);
        CU_ASSERT_EQUAL_FATAL(fx_run(f, NULL), CF_NODE_APP);
}

/* Send a CRO; the answer's error code, -1 without an answer. Checks PID, CTR and the DTO id. */
static int ask(struct fx *f, const uint8_t cro[8])
{
        const struct fx_frame *r = fx_cro(f, cro, &D);

        if (!r)
                return -1;
        CU_ASSERT_EQUAL(r->id, CF_CCP_DTO_BASE_DEFAULT + FX_STATION);
        CU_ASSERT_EQUAL(r->dlc, 8);
        CU_ASSERT_EQUAL(D.pid, CF_CCP_PID_CRM);
        CU_ASSERT_EQUAL(D.ctr, cro[1]);
        CU_ASSERT_EQUAL(f->ntx, 1);
        return D.err;
}

static uint8_t fr[8];
#define CTR(f) fx_next_ctr(f)

static int connect(struct fx *f)
{
        cf_ccp_cro_connect(fr, CTR(f), FX_STATION);
        return ask(f, fr);
}

static int set_mta(struct fx *f, uint8_t mta, uint8_t ext, uint32_t addr)
{
        cf_ccp_cro_set_mta(fr, CTR(f), mta, ext, addr);
        return ask(f, fr);
}

static int get_seed(struct fx *f, uint8_t seed[4])
{
        cf_ccp_cro_get_seed(fr, CTR(f), CF_CCP_RES_PGM);
        int r = ask(f, fr);
        if (r == 0 && seed)
                memcpy(seed, &D.data[1], 4);
        return r;
}

static int unlock_with(struct fx *f, const uint8_t key[6])
{
        cf_ccp_cro_unlock(fr, CTR(f), key);
        return ask(f, fr);
}

static void real_key(struct fx *f, const uint8_t seed[4], uint8_t key[6])
{
        uint8_t secret[32];

        cf_node_secret(f->fleet_key, f->hal.uid, secret);
        cf_ccp_key(secret, seed, key);
}

static int clear_memory(struct fx *f, uint32_t size)
{
        cf_ccp_cro_clear_memory(fr, CTR(f), size);
        return ask(f, fr);
}

static int program6(struct fx *f, const uint8_t d[6])
{
        cf_ccp_cro_program6(fr, CTR(f), d);
        return ask(f, fr);
}

static uint8_t status_byte(struct fx *f, unsigned off)
{
        uint8_t st[CF_STATUS_SIZE];

        cf_ccp_slave_status(&f->node.slave, st);
        return st[off];
}

/* ---- Connection ------------------------------------------------------------------------------ */

static void test_before_connect(void)
{
        struct fx f;

        setup(&f);
        cf_ccp_cro_get_ccp_version(fr, CTR(&f), 2, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        CU_ASSERT_EQUAL(get_seed(&f, NULL), -1);
        cf_ccp_cro_disconnect(fr, CTR(&f), CF_CCP_DISCONNECT_END, FX_STATION);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        /* TEST answers without connecting. */
        cf_ccp_cro_test(fr, CTR(&f), FX_STATION);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        cf_ccp_cro_test(fr, CTR(&f), FX_STATION + 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        cf_ccp_cro_get_ccp_version(fr, CTR(&f), 2, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        fx_fini(&f);
}

static void test_connect_station(void)
{
        struct fx f;

        setup(&f);
        cf_ccp_cro_connect(fr, CTR(&f), FX_STATION + 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        /* The station address is little-endian: 00 05 is station 0x0500. */
        cf_ccp_cro_connect(fr, CTR(&f), FX_STATION << 8);
        CU_ASSERT_EQUAL(fr[2], 0x00);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        const uint8_t raw[8] = {0x01, 0x33, 0x05, 0x00, 0, 0, 0, 0};
        CU_ASSERT_EQUAL(ask(&f, raw), 0);
        CU_ASSERT_EQUAL(D.ctr, 0x33);
        cf_ccp_cro_get_ccp_version(fr, CTR(&f), 2, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], 2);
        CU_ASSERT_EQUAL(D.data[1], 1);
        fx_fini(&f);
}

static void test_wrong_dlc(void)
{
        struct fx f;

        setup(&f);
        cf_ccp_cro_connect(fr, CTR(&f), FX_STATION);
        CU_ASSERT_PTR_NULL(fx_cro_dlc(&f, fr, 7, &D, 10));
        CU_ASSERT_EQUAL(connect(&f), 0);
        cf_ccp_cro_get_ccp_version(fr, CTR(&f), 2, 1);
        CU_ASSERT_PTR_NULL(fx_cro_dlc(&f, fr, 6, &D, 10));
        CU_ASSERT_PTR_NULL(fx_cro_dlc(&f, fr, 0, &D, 10));
        CU_ASSERT_NOT_EQUAL(fx_cro_dlc(&f, fr, 8, &D, 10), NULL);
        fx_fini(&f);
}

static void test_exchange_id(void)
{
        struct fx f;
        uint8_t seed[4], key[6];

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_CONTROL, 4), 0);
        cf_ccp_cro_exchange_id(fr, CTR(&f));
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], 16);
        CU_ASSERT_EQUAL(D.data[2], CF_CCP_RES_PGM);
        CU_ASSERT_EQUAL(D.data[3], CF_CCP_RES_PGM);
        /* MTA0 now points at the device ID: uid, hw id, bootloader version. */
        uint8_t id[16];
        for (unsigned off = 0; off < 16; off += 4) {
                cf_ccp_cro_upload(fr, CTR(&f), 4);
                CU_ASSERT_EQUAL(ask(&f, fr), 0);
                memcpy(id + off, D.data, 4);
        }
        CU_ASSERT_EQUAL(memcmp(id, f.hal.uid, 12), 0);
        CU_ASSERT_EQUAL(cf_le16_get(id + 12), FX_HW_ID);
        CU_ASSERT_EQUAL(cf_le16_get(id + 14), CF_BOOTLOADER_VERSION);

        CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
        real_key(&f, seed, key);
        CU_ASSERT_EQUAL(unlock_with(&f, key), 0);
        cf_ccp_cro_exchange_id(fr, CTR(&f));
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[3], 0);
        fx_fini(&f);
}

/* ---- Seed & key ------------------------------------------------------------------------------ */

static void test_seed_key(void)
{
        struct fx f;
        uint8_t s1[4], s2[4], key[6];

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        /* UNLOCK without a seed. */
        memset(key, 0, sizeof(key));
        CU_ASSERT_EQUAL(unlock_with(&f, key), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(get_seed(&f, s1), 0);
        CU_ASSERT_EQUAL(D.data[0], 1);
        CU_ASSERT_EQUAL(get_seed(&f, s2), 0);
        /* Each GET_SEED draws a new seed; only the last one counts. */
        CU_ASSERT_NOT_EQUAL(memcmp(s1, s2, 4), 0);
        real_key(&f, s1, key);
        CU_ASSERT_EQUAL(unlock_with(&f, key), CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_EQUAL(get_seed(&f, s2), 0);
        real_key(&f, s2, key);
        CU_ASSERT_EQUAL(unlock_with(&f, key), 0);
        CU_ASSERT_EQUAL(D.data[0], CF_CCP_RES_PGM);
        /* The seed was used up. */
        CU_ASSERT_EQUAL(unlock_with(&f, key), CF_CCP_ERR_ACCESS_DENIED);
        /* Unlocked: GET_SEED reports no protection. */
        CU_ASSERT_EQUAL(get_seed(&f, s1), 0);
        CU_ASSERT_EQUAL(D.data[0], 0);
        /* Resources we do not protect; and nonsense. */
        cf_ccp_cro_get_seed(fr, CTR(&f), CF_CCP_RES_CAL);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], 0);
        cf_ccp_cro_get_seed(fr, CTR(&f), 0x80);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        fx_fini(&f);
}

static void test_seed_single_use(void)
{
        struct fx f;
        uint8_t seed[4], key[6], bad[6] = {1, 2, 3, 4, 5, 6};

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
        /* A wrong key spends the seed: the right one after it is refused. */
        CU_ASSERT_EQUAL(unlock_with(&f, bad), CF_CCP_ERR_ACCESS_LOCKED);
        real_key(&f, seed, key);
        CU_ASSERT_EQUAL(unlock_with(&f, key), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL(clear_memory(&f, 0x100), CF_CCP_ERR_ACCESS_LOCKED);
        fx_fini(&f);
}

static void test_lockout(void)
{
        struct fx f;
        uint8_t seed[4], key[6], bad[6] = {0};

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        /* Two wrong keys, then the right one: the count starts over. */
        for (int i = 0; i < 2; i++) {
                CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
                CU_ASSERT_EQUAL(unlock_with(&f, bad), CF_CCP_ERR_ACCESS_LOCKED);
        }
        CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
        real_key(&f, seed, key);
        CU_ASSERT_EQUAL(unlock_with(&f, key), 0);

        /* A new session: three wrong keys in a row lock GET_SEED for 10 s. */
        CU_ASSERT_EQUAL(connect(&f), 0);
        for (int i = 0; i < 3; i++) {
                CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
                CU_ASSERT_EQUAL(unlock_with(&f, bad), CF_CCP_ERR_ACCESS_LOCKED);
        }
        uint64_t t0 = f.now_us;
        CU_ASSERT_EQUAL(get_seed(&f, seed), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(unlock_with(&f, bad), CF_CCP_ERR_ACCESS_DENIED);
        /* Reconnecting does not lift it. */
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(get_seed(&f, seed), CF_CCP_ERR_ACCESS_DENIED);
        f.now_us = t0 + 9900000;
        CU_ASSERT_EQUAL(get_seed(&f, seed), CF_CCP_ERR_ACCESS_DENIED);
        f.now_us = t0 + 10001000;
        CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
        real_key(&f, seed, key);
        CU_ASSERT_EQUAL(unlock_with(&f, key), 0);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_ERROR), CF_CCP_ERR_ACCESS_DENIED);
        fx_fini(&f);
}

static void test_echo_mode(void)
{
        struct fx f;
        uint8_t seed[4], key[6];

        setup(&f);
        f.cfg.seedkey_echo = true;
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
        real_key(&f, seed, key);
        CU_ASSERT_EQUAL(unlock_with(&f, key), CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
        const uint8_t echo[6] = {0, 0, seed[0], seed[1], seed[2], seed[3]};
        CU_ASSERT_EQUAL(unlock_with(&f, echo), 0);
        CU_ASSERT_EQUAL(D.data[0], CF_CCP_RES_PGM);
        fx_fini(&f);
}

/* ---- Memory access --------------------------------------------------------------------------- */

static void test_set_mta_ranges(void)
{
        struct fx f;
        static const struct {
                uint8_t ext;
                uint32_t last;
        } lim[] = {{0, 15}, {1, CF_STATUS_SIZE - 1}, {2, CF_CONTROL_SIZE - 1}, {3, 0x3FFFF}};

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        for (unsigned i = 0; i < 4; i++) {
                CU_ASSERT_EQUAL(set_mta(&f, 0, lim[i].ext, lim[i].last), 0);
                CU_ASSERT_EQUAL(set_mta(&f, 1, lim[i].ext, lim[i].last), 0);
                /* the end of the extension, one past its last byte: the MTA after its last byte */
                CU_ASSERT_EQUAL(set_mta(&f, 0, lim[i].ext, lim[i].last + 1), 0);
                CU_ASSERT_EQUAL(set_mta(&f, 0, lim[i].ext, lim[i].last + 2), CF_CCP_ERR_OUT_OF_RANGE);
                CU_ASSERT_EQUAL(set_mta(&f, 0, lim[i].ext, 0xFFFFFFFFu), CF_CCP_ERR_OUT_OF_RANGE);
        }
        CU_ASSERT_EQUAL(set_mta(&f, 0, 4, 0), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(set_mta(&f, 2, 0, 0), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(f.node.slave.mta_ext[1], 3);
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[1], 0x3FFFF);
        /* The refused SET_MTA left MTA0 where it was. */
        CU_ASSERT_EQUAL(f.node.slave.mta_ext[0], 3);
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[0], 0x40000);
        fx_fini(&f);
}

static void test_upload_short_up(void)
{
        struct fx f;
        uint8_t seed[4], key[6];

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        /* The running version, as a master reads it: SHORT_UP 4 bytes at status offset 8. */
        cf_ccp_cro_short_up(fr, CTR(&f), 4, CF_CCP_EXT_STATUS, 8);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], 1);
        CU_ASSERT_EQUAL(D.data[1], 0);
        cf_ccp_cro_short_up(fr, CTR(&f), 1, CF_CCP_EXT_STATUS, CF_STATUS_MODE);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], CF_MODE_APP);
        cf_ccp_cro_short_up(fr, CTR(&f), 4, CF_CCP_EXT_STATUS, CF_STATUS_B_CRC);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_le32_get(D.data), cf_le32_get(img_v1 + CF_CRC_OFFSET));
        /* A range reaching past the end. */
        cf_ccp_cro_short_up(fr, CTR(&f), 2, CF_CCP_EXT_DEVICE_ID, 15);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        const uint8_t six[8] = {CF_CCP_SHORT_UP, 0x46, 6, CF_CCP_EXT_DEVICE_ID, 0, 0, 0, 0};
        CU_ASSERT_EQUAL(ask(&f, six), CF_CCP_ERR_OUT_OF_RANGE);
        const uint8_t zero[8] = {CF_CCP_SHORT_UP, 0x47, 0, CF_CCP_EXT_DEVICE_ID, 0, 0, 0, 0};
        CU_ASSERT_EQUAL(ask(&f, zero), CF_CCP_ERR_OUT_OF_RANGE);
        cf_ccp_cro_short_up(fr, CTR(&f), 1, 4, 0);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        /* C is readable only when unlocked. */
        cf_ccp_cro_short_up(fr, CTR(&f), 4, CF_CCP_EXT_STAGING, 0);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
        real_key(&f, seed, key);
        CU_ASSERT_EQUAL(unlock_with(&f, key), 0);
        cf_ccp_cro_short_up(fr, CTR(&f), 4, CF_CCP_EXT_STAGING, 0);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_le32_get(D.data), 0xFFFFFFFFu);

        /* UPLOAD advances MTA0; a refused one leaves it. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_DEVICE_ID, 10), 0);
        cf_ccp_cro_upload(fr, CTR(&f), 3);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], f.hal.uid[10]);
        CU_ASSERT_EQUAL(D.data[2], FX_HW_ID & 0xFF);
        cf_ccp_cro_upload(fr, CTR(&f), 5);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        cf_ccp_cro_upload(fr, CTR(&f), 3);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_le16_get(D.data + 1), CF_BOOTLOADER_VERSION);
        cf_ccp_cro_upload(fr, CTR(&f), 1);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        fx_fini(&f);
}

static void test_dnload(void)
{
        struct fx f;
        const uint8_t d[6] = {0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6};

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_CONTROL, 2), 0);
        cf_ccp_cro_dnload(fr, CTR(&f), d, 5);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], CF_CCP_EXT_CONTROL);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), 7);
        cf_ccp_cro_dnload6(fr, CTR(&f), d);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), 13);
        /* 13 + 6 > 16 */
        cf_ccp_cro_dnload6(fr, CTR(&f), d);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[0], 13);
        cf_ccp_cro_dnload(fr, CTR(&f), d, 3);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        cf_ccp_cro_short_up(fr, CTR(&f), 5, CF_CCP_EXT_CONTROL, 2);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(memcmp(D.data, d, 5), 0);
        cf_ccp_cro_short_up(fr, CTR(&f), 3, CF_CCP_EXT_CONTROL, 13);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(memcmp(D.data, d, 3), 0);
        /* Only the control memory is written by DNLOAD. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_DEVICE_ID, 0), 0);
        cf_ccp_cro_dnload(fr, CTR(&f), d, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STATUS, 0), 0);
        cf_ccp_cro_dnload6(fr, CTR(&f), d);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        cf_ccp_cro_dnload(fr, CTR(&f), d, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(f.flash[C - CF_FLASH_BASE], 0xFF);
        /* Sizes 0 and 6 are not DNLOAD sizes. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_CONTROL, 0), 0);
        const uint8_t z[8] = {CF_CCP_DNLOAD, 0x44, 0, 0, 0, 0, 0, 0};
        CU_ASSERT_EQUAL(ask(&f, z), CF_CCP_ERR_OUT_OF_RANGE);
        const uint8_t six[8] = {CF_CCP_DNLOAD, 0x45, 6, 1, 2, 3, 4, 5};
        CU_ASSERT_EQUAL(ask(&f, six), CF_CCP_ERR_OUT_OF_RANGE);
        fx_fini(&f);
}

/* ---- Programming ----------------------------------------------------------------------------- */

static void unlocked(struct fx *f)
{
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(f), 0);
}

static void test_clear_memory(void)
{
        struct fx f;

        setup(&f);
        memset(f.flash + (C - CF_FLASH_BASE), 0x00, CF_IMAGE_AREA_SIZE);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL(clear_memory(&f, CF_IMAGE_AREA_SIZE), CF_CCP_ERR_ACCESS_LOCKED);
        unlocked(&f);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_CONTROL, 0), 0);
        CU_ASSERT_EQUAL(clear_memory(&f, 4), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0x20000), 0);
        CU_ASSERT_EQUAL(clear_memory(&f, 0x20001), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(clear_memory(&f, 0), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(f.hal.flash_ops, 0);
        /* One byte of the second sector: erases that sector only. */
        CU_ASSERT_EQUAL(clear_memory(&f, 1), 0);
        CU_ASSERT_EQUAL(f.hal.erases, 1);
        CU_ASSERT_EQUAL(f.flash[C - CF_FLASH_BASE + 0x1FFFF], 0x00);
        CU_ASSERT_EQUAL(f.flash[C - CF_FLASH_BASE + 0x20000], 0xFF);
        CU_ASSERT_EQUAL(f.flash[C - CF_FLASH_BASE + 0x3FFFF], 0xFF);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_STAGED), CF_STAGED_ERASED);
        /* MTA0 unchanged. */
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[0], 0x20000);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL(clear_memory(&f, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(f.hal.erases, 3);
        CU_ASSERT_EQUAL(f.flash[C - CF_FLASH_BASE], 0xFF);
        /* Area D beyond C untouched. */
        fx_fini(&f);
}

static void test_busy_while_erasing(void)
{
        struct fx f;

        fx_init(&f);
        f.hal.erase_us_per_kb = 8000;
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        unlocked(&f);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);

        cf_ccp_cro_clear_memory(fr, 0x77, CF_IMAGE_AREA_SIZE);
        f.ntx = 0;
        cf_node_rx(&f.node, fr, 8);
        CU_ASSERT_EQUAL(f.ntx, 0);
        uint32_t ticks = f.node.slave.ticks;
        unsigned polls = 0, busy = 0;
        while (f.ntx == 0 && polls < 100000) {
                fx_poll(&f, 1000);
                polls++;
                /* Meanwhile every CRO is answered BUSY, and nothing changes: CONNECT and TEST
                 * to our station too (a gateway that lost us probes so). */
                if (polls % 100 == 0) {
                        if (busy % 3 == 0)
                                cf_ccp_cro_get_ccp_version(fr, 0x10 + (uint8_t) busy, 2, 1);
                        else if (busy % 3 == 1)
                                cf_ccp_cro_connect(fr, 0x10 + (uint8_t) busy, FX_STATION);
                        else
                                cf_ccp_cro_test(fr, 0x10 + (uint8_t) busy, FX_STATION);
                        cf_node_rx(&f.node, fr, 8);
                        CU_ASSERT_EQUAL_FATAL(f.ntx, 1);
                        CU_ASSERT_EQUAL(f.tx[0].data[1], CF_CCP_ERR_BUSY);
                        CU_ASSERT_EQUAL(f.tx[0].data[2], 0x10 + (uint8_t) busy);
                        f.ntx = 0;
                        busy++;
                }
        }
        CU_ASSERT_EQUAL(f.ntx, 1);
        CU_ASSERT_EQUAL(f.tx[0].data[1], 0);
        CU_ASSERT_EQUAL(f.tx[0].data[2], 0x77);
        /* Two 128 KB sectors at ~1 s each, and the node ticked all along. */
        CU_ASSERT(polls >= 2048);
        CU_ASSERT(busy >= 20);
        CU_ASSERT_EQUAL(f.node.slave.ticks - ticks, polls);
        CU_ASSERT_EQUAL(f.node.phase, CF_NODE_APP);
        fx_fini(&f);
}

static void test_program(void)
{
        struct fx f;
        const uint8_t d[6] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60};

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_ACCESS_LOCKED);
        unlocked(&f);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0x100), 0);
        /* Before CLEAR_MEMORY in this session. */
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL(clear_memory(&f, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0x100), 0);
        CU_ASSERT_EQUAL(program6(&f, d), 0);
        CU_ASSERT_EQUAL(D.data[0], CF_CCP_EXT_STAGING);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), 0x106);
        cf_ccp_cro_program(fr, CTR(&f), d, 5);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), 0x10B);
        CU_ASSERT_EQUAL(memcmp(f.flash + (C - CF_FLASH_BASE) + 0x100, d, 6), 0);
        CU_ASSERT_EQUAL(memcmp(f.flash + (C - CF_FLASH_BASE) + 0x106, d, 5), 0);
        /* Size 0 ends the sequence, MTA stays. */
        cf_ccp_cro_program(fr, CTR(&f), NULL, 0);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), 0x10B);
        /* Over bytes already programmed: refused, nothing written, MTA not advanced. */
        uint64_t progs = f.hal.programs;
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0x0FE), 0);
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[0], 0x0FE);
        CU_ASSERT_EQUAL(f.flash[C - CF_FLASH_BASE + 0x0FE], 0xFF);
        CU_ASSERT_EQUAL(f.hal.programs, progs);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_ERROR), CF_CCP_ERR_ACCESS_DENIED);
        /* Reaching past the end of C. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0x3FFFC), 0);
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[0], 0x3FFFC);
        cf_ccp_cro_program(fr, CTR(&f), d, 4);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), 0x40000);
        cf_ccp_cro_program(fr, CTR(&f), d, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        /* Outside C altogether. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_CONTROL, 0), 0);
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_OUT_OF_RANGE);
        const uint8_t six[8] = {CF_CCP_PROGRAM, 0x45, 6, 1, 2, 3, 4, 5};
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0x200), 0);
        CU_ASSERT_EQUAL(ask(&f, six), CF_CCP_ERR_OUT_OF_RANGE);
        /* B is never reachable: its bytes are intact. */
        CU_ASSERT_EQUAL(memcmp(f.flash + (B - CF_FLASH_BASE), img_v1, CF_IMAGE_AREA_SIZE), 0);
        fx_fini(&f);
}

static void test_build_chksum(void)
{
        struct fx f;

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        cf_ccp_cro_build_chksum(fr, CTR(&f), 0x100);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_ACCESS_LOCKED);
        unlocked(&f);
        /* Some data in C to sum: v2 straight into the flash. */
        fx_poke_area(&f, C, img_v2);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0x10), 0);
        cf_ccp_cro_build_chksum(fr, CTR(&f), 0x2000);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], 4);
        CU_ASSERT_EQUAL(cf_ccp_dto_chksum(&D), cf_crc32_le(CF_CRC32_INIT, img_v2 + 0x10, 0x2000));
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[0], 0x10);
        /* The whole image minus its CRC: the stored CRC. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        cf_ccp_cro_build_chksum(fr, CTR(&f), CF_CRC_OFFSET);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_chksum(&D), cf_le32_get(img_v2 + CF_CRC_OFFSET));
        cf_ccp_cro_build_chksum(fr, CTR(&f), 6);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        cf_ccp_cro_build_chksum(fr, CTR(&f), CF_IMAGE_AREA_SIZE + 4);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        /* The device ID, summed at once. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_DEVICE_ID, 0), 0);
        cf_ccp_cro_build_chksum(fr, CTR(&f), 12);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_chksum(&D), cf_crc32_le(CF_CRC32_INIT, f.hal.uid, 12));
        cf_ccp_cro_build_chksum(fr, CTR(&f), 20);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        fx_fini(&f);
}

static void test_busy_while_summing(void)
{
        struct fx f;

        setup(&f);
        unlocked(&f);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        cf_ccp_cro_build_chksum(fr, 0x61, CF_IMAGE_AREA_SIZE);
        f.ntx = 0;
        cf_node_rx(&f.node, fr, 8);
        CU_ASSERT_EQUAL(f.ntx, 0);
        fx_poll(&f, 1000);
        CU_ASSERT_EQUAL(f.ntx, 0);
        const uint8_t set[8] = {CF_CCP_SET_MTA, 0x62, 0, CF_CCP_EXT_CONTROL, 0, 0, 0, 0};
        cf_node_rx(&f.node, set, 8);
        CU_ASSERT_EQUAL_FATAL(f.ntx, 1);
        CU_ASSERT_EQUAL(f.tx[0].data[1], CF_CCP_ERR_BUSY);
        CU_ASSERT_EQUAL(f.tx[0].data[2], 0x62);
        CU_ASSERT_EQUAL(f.node.slave.mta_ext[0], CF_CCP_EXT_STAGING);
        f.ntx = 0;
        for (int i = 0; i < 1000 && f.ntx == 0; i++)
                fx_poll(&f, 1000);
        CU_ASSERT_EQUAL_FATAL(f.ntx, 1);
        CU_ASSERT_EQUAL(f.tx[0].data[2], 0x61);
        CU_ASSERT_EQUAL(cf_be32_get(&f.tx[0].data[4]),
                        cf_crc32_le(CF_CRC32_INIT, f.flash + (C - CF_FLASH_BASE), CF_IMAGE_AREA_SIZE));
        fx_fini(&f);
}

/* ---- Disconnect ------------------------------------------------------------------------------ */

static int disconnect(struct fx *f, uint8_t type, uint16_t station)
{
        cf_ccp_cro_disconnect(fr, CTR(f), type, station);
        return ask(f, fr);
}

static void test_disconnect_temporary(void)
{
        struct fx f;
        const uint8_t d[6] = {1, 2, 3, 4, 5, 6};

        setup(&f);
        unlocked(&f);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_TEMPORARY, FX_STATION + 1), -1);
        CU_ASSERT_EQUAL(disconnect(&f, 2, FX_STATION), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_TEMPORARY, FX_STATION), 0);
        cf_ccp_cro_get_ccp_version(fr, CTR(&f), 2, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        /* Reconnected: PGM locked again. */
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_FALSE(f.hal.reset_requested);
        fx_fini(&f);
}

static void program_image(struct fx *f, const uint8_t *img, uint32_t upto)
{
        CU_ASSERT_EQUAL_FATAL(set_mta(f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL_FATAL(clear_memory(f, CF_IMAGE_AREA_SIZE), 0);
        /* The payload by PROGRAM_6, the trailer and CRC straight in (the master test does it all). */
        for (uint32_t off = 0; off + 6 <= upto && off + 6 <= 6000; off += 6)
                CU_ASSERT_EQUAL_FATAL(program6(f, img + off), 0);
        if (upto == CF_IMAGE_AREA_SIZE)
                cf_hal_host_poke(&f->hal, C + 6000, img + 6000, CF_IMAGE_AREA_SIZE - 6000);
}

/* The answer to the last PROGRAM (the CRC word at 0x3FFFC) is lost: the node's MTA is 0x40000, the
 * end of C, which it reported itself. A master may set it again and end the sequence there (PROGRAM
 * size 0); data there is out of range, and the word itself, sent again, is refused as already written
 * (the master reads back instead). The staged image stays complete and installs. */
static void test_program_end_of_area(void)
{
        struct fx f;
        const uint8_t *crc_word = img_v2 + CF_CRC_OFFSET;
        const uint8_t d[6] = {1, 2, 3, 4, 5, 6};

        setup(&f);
        unlocked(&f);
        program_image(&f, img_v2, 6000);
        cf_hal_host_poke(&f.hal, C + 6000, img_v2 + 6000, CF_CRC_OFFSET - 6000);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, CF_CRC_OFFSET), 0);
        cf_ccp_cro_program(fr, CTR(&f), crc_word, 4);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), CF_IMAGE_AREA_SIZE); /* ... and say this answer was lost */
        uint64_t progs = f.hal.programs;

        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[0], CF_IMAGE_AREA_SIZE);
        cf_ccp_cro_program(fr, CTR(&f), NULL, 0);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], CF_CCP_EXT_STAGING);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), CF_IMAGE_AREA_SIZE);
        cf_ccp_cro_program(fr, CTR(&f), d, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(f.node.slave.mta_addr[0], CF_IMAGE_AREA_SIZE);
        /* One past the end is the limit. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, CF_IMAGE_AREA_SIZE + 1), CF_CCP_ERR_OUT_OF_RANGE);
        /* The word again at its own address: already written. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, CF_CRC_OFFSET), 0);
        cf_ccp_cro_program(fr, CTR(&f), crc_word, 4);
        CU_ASSERT_EQUAL(ask(&f, fr), CF_CCP_ERR_ACCESS_DENIED);
        /* A checksum of nothing at the end is fine too. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, CF_IMAGE_AREA_SIZE), 0);
        cf_ccp_cro_build_chksum(fr, CTR(&f), 0);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_chksum(&D), CF_CRC32_INIT);
        CU_ASSERT_EQUAL(f.hal.programs, progs);
        CU_ASSERT_EQUAL(memcmp(f.flash + (C - CF_FLASH_BASE), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_END, FX_STATION), 0);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(f.flash + (B - CF_FLASH_BASE), img_v2, CF_IMAGE_AREA_SIZE), 0);
        fx_fini(&f);
}

static void test_disconnect_invalid_c(void)
{
        struct fx f;

        setup(&f);
        unlocked(&f);
        /* Half an image: CRC wrong. */
        program_image(&f, img_v2, 3000);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_END, FX_STATION), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_STAGED), CF_STAGED_INVALID);
        /* Still connected and unlocked; the node keeps running, no reset. */
        for (int i = 0; i < 100; i++)
                fx_poll(&f, 1000);
        CU_ASSERT_FALSE(f.hal.reset_requested);
        CU_ASSERT_EQUAL(f.node.phase, CF_NODE_APP);
        cf_ccp_cro_get_ccp_version(fr, CTR(&f), 2, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        cf_ccp_cro_short_up(fr, CTR(&f), 4, CF_CCP_EXT_STAGING, 0);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);

        /* A complete image for other hardware: refused as well. */
        static uint8_t other[CF_IMAGE_AREA_SIZE];
        fx_image(other, FX_HW_ID + 1, 2, 0, 0, 2, 5000, 2);
        program_image(&f, other, CF_IMAGE_AREA_SIZE);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_END, FX_STATION), CF_CCP_ERR_ACCESS_DENIED);
        /* And one rolling back. */
        fx_image(other, FX_HW_ID, 2, 0, 0, 0, 5000, 2);
        program_image(&f, other, CF_IMAGE_AREA_SIZE);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_END, FX_STATION), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_FALSE(f.hal.reset_requested);
        fx_fini(&f);
}

static void test_disconnect_valid_c(void)
{
        struct fx f;

        setup(&f);
        unlocked(&f);
        program_image(&f, img_v2, CF_IMAGE_AREA_SIZE);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_END, FX_STATION), 0);
        /* The answer went out before the reset. */
        CU_ASSERT_FALSE(f.hal.reset_requested);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_STAGED), CF_STAGED_VALID);
        cf_ccp_cro_get_ccp_version(fr, CTR(&f), 2, 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        CU_ASSERT_TRUE(f.hal.reset_requested);
        /* The reset installs v2. */
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(f.flash + (B - CF_FLASH_BASE), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(f.node.slave.last_update, CF_UPDATE_INSTALLED);
        fx_fini(&f);
}

static int get_version(struct fx *f)
{
        cf_ccp_cro_get_ccp_version(fr, CTR(f), 2, 1);
        return ask(f, fr);
}

/* CCP 2.1: a CONNECT to another station disconnects us, as DISCONNECT(temporary) does, unanswered. */
static void test_connect_other_station(void)
{
        struct fx f;
        uint8_t seed[4], bad[6] = {0};
        const uint8_t d[6] = {1, 2, 3, 4, 5, 6};

        setup(&f);
        /* Not connected: nothing happens. */
        cf_ccp_cro_connect(fr, CTR(&f), FX_STATION + 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        CU_ASSERT_EQUAL(get_version(&f), -1);

        unlocked(&f);
        CU_ASSERT_EQUAL(get_version(&f), 0);
        cf_ccp_cro_connect(fr, CTR(&f), FX_STATION + 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        CU_ASSERT_EQUAL(f.ntx, 0);
        /* Disconnected: nothing is answered until a CONNECT to us, not even a DISCONNECT. */
        CU_ASSERT_EQUAL(get_version(&f), -1);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), -1);
        CU_ASSERT_EQUAL(get_seed(&f, NULL), -1);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_TEMPORARY, FX_STATION), -1);
        /* TEST answers without connecting, as before any CONNECT. */
        cf_ccp_cro_test(fr, CTR(&f), FX_STATION);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(get_version(&f), -1);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(get_version(&f), 0);
        /* As after DISCONNECT(temporary): the new session starts locked, and nothing reset. */
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_FALSE(f.hal.reset_requested);
        CU_ASSERT_EQUAL(f.node.phase, CF_NODE_APP);

        /* What a temporary disconnect keeps is kept: the wrong keys counted so far. */
        for (int i = 0; i < 2; i++) {
                CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
                CU_ASSERT_EQUAL(unlock_with(&f, bad), CF_CCP_ERR_ACCESS_LOCKED);
        }
        cf_ccp_cro_connect(fr, CTR(&f), FX_STATION + 1);
        CU_ASSERT_EQUAL(ask(&f, fr), -1);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(get_seed(&f, seed), 0);
        CU_ASSERT_EQUAL(unlock_with(&f, bad), CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_EQUAL(get_seed(&f, seed), CF_CCP_ERR_ACCESS_DENIED);
        fx_fini(&f);
}

/* Busy when the CONNECT to another station comes: the long operation is dropped, never answered
 * (the master talks to the other station now), and leaves nothing half-done behind it. */
static void test_connect_other_station_while_busy(void)
{
        struct fx f;
        const uint8_t d[6] = {1, 2, 3, 4, 5, 6};

        /* CLEAR_MEMORY of C (two sectors, ~1 s each), interrupted in its first sector. */
        fx_init(&f);
        f.hal.erase_us_per_kb = 8000;
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        memset(f.flash + (C - CF_FLASH_BASE), 0x00, CF_IMAGE_AREA_SIZE);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        unlocked(&f);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        cf_ccp_cro_clear_memory(fr, 0x77, CF_IMAGE_AREA_SIZE);
        f.ntx = 0;
        cf_node_rx(&f.node, fr, 8);
        for (int i = 0; i < 100; i++)
                fx_poll(&f, 1000);
        CU_ASSERT_EQUAL(f.ntx, 0);
        CU_ASSERT_EQUAL(f.hal.erases, 1);
        /* Busy is answered to our commands only. */
        cf_ccp_cro_disconnect(fr, CTR(&f), CF_CCP_DISCONNECT_TEMPORARY, FX_STATION + 1);
        cf_node_rx(&f.node, fr, 8);
        CU_ASSERT_EQUAL(f.ntx, 0);
        cf_ccp_cro_connect(fr, CTR(&f), FX_STATION + 1);
        cf_node_rx(&f.node, fr, 8);
        for (int i = 0; i < 5000; i++)
                fx_poll(&f, 1000);
        CU_ASSERT_EQUAL(f.ntx, 0);
        /* The sector under way was finished by the flash; the next one never started. */
        CU_ASSERT_EQUAL(f.hal.erases, 1);
        CU_ASSERT_EQUAL(cf_hal_flash_ptr(&f.hal)[C - CF_FLASH_BASE], 0xFF);
        CU_ASSERT_EQUAL(cf_hal_flash_ptr(&f.hal)[C - CF_FLASH_BASE + 0x20000], 0x00);
        CU_ASSERT_EQUAL(get_version(&f), -1);
        /* Back to us: no BUSY, a new session, which must erase C itself before programming. */
        f.hal.erase_us_per_kb = 0;
        unlocked(&f);
        CU_ASSERT_EQUAL(set_mta(&f, 0, CF_CCP_EXT_STAGING, 0), 0);
        CU_ASSERT_EQUAL(program6(&f, d), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(clear_memory(&f, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(f.flash[C - CF_FLASH_BASE + 0x20000], 0xFF);
        CU_ASSERT_EQUAL(program6(&f, d), 0);
        fx_fini(&f);

        /* DISCONNECT(end) with a valid C, still checking C: not taken, no answer, no reset. */
        setup(&f);
        unlocked(&f);
        program_image(&f, img_v2, CF_IMAGE_AREA_SIZE);
        cf_ccp_cro_disconnect(fr, 0x55, CF_CCP_DISCONNECT_END, FX_STATION);
        f.ntx = 0;
        cf_node_rx(&f.node, fr, 8);
        fx_poll(&f, 1000);
        CU_ASSERT_EQUAL(f.ntx, 0);
        cf_ccp_cro_connect(fr, CTR(&f), FX_STATION + 1);
        cf_node_rx(&f.node, fr, 8);
        for (int i = 0; i < 1000; i++)
                fx_poll(&f, 1000);
        CU_ASSERT_EQUAL(f.ntx, 0);
        CU_ASSERT_FALSE(f.hal.reset_requested);
        CU_ASSERT_EQUAL(f.node.phase, CF_NODE_APP);
        /* C is as it was: the master can end the session for real. */
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_END, FX_STATION), 0);
        CU_ASSERT_EQUAL(get_version(&f), -1);
        CU_ASSERT_TRUE(f.hal.reset_requested);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(f.flash + (B - CF_FLASH_BASE), img_v2, CF_IMAGE_AREA_SIZE), 0);
        fx_fini(&f);
}

static void test_full_upgrade_by_master(void)
{
        struct fx f;

        setup(&f);
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_v2), 0);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(f.flash + (B - CF_FLASH_BASE), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(connect(&f), 0);
        cf_ccp_cro_short_up(fr, CTR(&f), 4, CF_CCP_EXT_STATUS, 8);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], 2);
        fx_fini(&f);
}

static void test_recovery_mode(void)
{
        struct fx f;

        /* No application: the bootloader's CCP takes an image, with no rollback reference. */
        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_RECOVERY);
        CU_ASSERT_EQUAL(connect(&f), 0);
        cf_ccp_cro_short_up(fr, CTR(&f), 1, CF_CCP_EXT_STATUS, CF_STATUS_MODE);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(D.data[0], CF_MODE_BOOTLOADER);
        CU_ASSERT_EQUAL(fx_upgrade(&f, img_v1), 0);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(memcmp(f.flash + (B - CF_FLASH_BASE), img_v1, CF_IMAGE_AREA_SIZE), 0);
        fx_fini(&f);
}

static void test_unknown_commands(void)
{
        struct fx f;
        const uint8_t move[8] = {CF_CCP_MOVE, 0x21, 0, 0, 0x10, 0, 0, 0};
        const uint8_t x55[8] = {0x55, 0x22, 0, 0, 0, 0, 0, 0};

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f), 0);
        CU_ASSERT_EQUAL(ask(&f, move), CF_CCP_ERR_UNKNOWN_CMD);
        CU_ASSERT_EQUAL(ask(&f, x55), CF_CCP_ERR_UNKNOWN_CMD);
        CU_ASSERT_EQUAL(status_byte(&f, CF_STATUS_LAST_ERROR), CF_CCP_ERR_UNKNOWN_CMD);
        fx_fini(&f);
}

static void test_status_block(void)
{
        struct fx f;
        uint8_t st[CF_STATUS_SIZE];

        setup(&f);
        fx_poll(&f, 1000);
        fx_poll(&f, 1000);
        cf_ccp_slave_status(&f.node.slave, st);
        CU_ASSERT_EQUAL(memcmp(st, img_v1 + CF_TRAILER_OFFSET, CF_TRAILER_SIZE), 0);
        CU_ASSERT_EQUAL(cf_le32_get(st + CF_STATUS_BOOT_COUNT), 1);
        CU_ASSERT_EQUAL(st[CF_STATUS_MODE], CF_MODE_APP);
        CU_ASSERT_EQUAL(st[CF_STATUS_LAST_UPDATE], CF_UPDATE_NONE);
        CU_ASSERT_EQUAL(st[CF_STATUS_STAGED], CF_STAGED_UNKNOWN);
        CU_ASSERT_EQUAL(st[CF_STATUS_LAST_ERROR], 0);
        CU_ASSERT_EQUAL(cf_le32_get(st + CF_STATUS_B_CRC), cf_le32_get(img_v1 + CF_CRC_OFFSET));
        CU_ASSERT_EQUAL(cf_le32_get(st + CF_STATUS_TICKS), 2);
        CU_ASSERT_EQUAL(cf_le32_get(st + 76), 0);
        fx_fini(&f);
}

int main(void)
{
        fx_image(img_v1, FX_HW_ID, 1, 0, 0, 1, 3000, 1);
        fx_image(img_v2, FX_HW_ID, 2, 0, 0, 2, 5000, 2);

        static const struct cf_test tests[] = {
            {"before CONNECT only CONNECT and TEST", test_before_connect},
            {"CONNECT station address LE", test_connect_station},
            {"wrong DLC ignored", test_wrong_dlc},
            {"EXCHANGE_ID", test_exchange_id},
            {"GET_SEED / UNLOCK", test_seed_key},
            {"seed single use", test_seed_single_use},
            {"three wrong keys: 10 s lockout", test_lockout},
            {"echo seed & key", test_echo_mode},
            {"SET_MTA ranges", test_set_mta_ranges},
            {"UPLOAD / SHORT_UP", test_upload_short_up},
            {"DNLOAD / DNLOAD_6", test_dnload},
            {"CLEAR_MEMORY", test_clear_memory},
            {"BUSY while erasing, ticks go on", test_busy_while_erasing},
            {"PROGRAM / PROGRAM_6", test_program},
            {"BUILD_CHKSUM", test_build_chksum},
            {"BUSY while summing", test_busy_while_summing},
            {"DISCONNECT temporary", test_disconnect_temporary},
            {"CONNECT to another station disconnects", test_connect_other_station},
            {"CONNECT to another station while busy", test_connect_other_station_while_busy},
            {"SET_MTA to the end of C after a lost answer", test_program_end_of_area},
            {"DISCONNECT end, invalid C", test_disconnect_invalid_c},
            {"DISCONNECT end, valid C", test_disconnect_valid_c},
            {"full upgrade by the master", test_full_upgrade_by_master},
            {"recovery mode takes an image", test_recovery_mode},
            {"MOVE and unknown commands", test_unknown_commands},
            {"status block", test_status_block},
            {NULL, NULL},
        };
        return cf_test_run("ccp-slave", tests);
}
