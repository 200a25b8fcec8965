/* Tests of checked blocks on a node (block.c, BLOCK_MODE/BLOCK_CHECK in ccp-slave.c, check frames in
 * group.c; canfleet/ccp.h "Checked blocks"): nothing reaches flash before its block checks out. */
#include <errno.h>
#include <string.h>

#include "canfleet/crc32.h"

#include "cf-test.h"
#include "fw-fixture.h"

#define B   CF_AREA_APP_ADDR
#define C   CF_AREA_STAGING_ADDR
#define GID CF_GROUP_ID_DEFAULT
#define TAG 0x1234u

static uint8_t img_v1[CF_IMAGE_AREA_SIZE], img_v2[CF_IMAGE_AREA_SIZE];
static struct cf_ccp_dto D;
static uint8_t fr[8];

static int ask(struct fx *f, const uint8_t cro[8])
{
        if (!fx_cro(f, cro, &D))
                return -1;
        CU_ASSERT_EQUAL(D.ctr, cro[1]);
        return D.err;
}

static const uint8_t *cflash(struct fx *f, uint32_t off)
{
        return f->flash + (C - CF_FLASH_BASE) + off;
}

static bool erased(struct fx *f, uint32_t off, uint32_t n)
{
        for (uint32_t i = 0; i < n; i++)
                if (cflash(f, off)[i] != CF_FLASH_ERASED)
                        return false;
        return true;
}

static uint32_t crc_of(const uint8_t *image, uint32_t k)
{
        return cf_block_crc(k * CF_BLOCK_SIZE, image + k * CF_BLOCK_SIZE, cf_block_len(k));
}

static int block_mode(struct fx *f, uint16_t size)
{
        cf_ccp_cro_block_mode(fr, fx_next_ctr(f), size);
        return ask(f, fr);
}

static int block_check(struct fx *f, uint32_t crc)
{
        cf_ccp_cro_block_check(fr, fx_next_ctr(f), crc);
        return ask(f, fr);
}

static int set_mta(struct fx *f, uint32_t off)
{
        cf_ccp_cro_set_mta(fr, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, off);
        return ask(f, fr);
}

/* PROGRAM_6 (or PROGRAM for less) of n bytes at the MTA. */
static int program(struct fx *f, const uint8_t *d, uint8_t n)
{
        if (n == 6)
                cf_ccp_cro_program6(fr, fx_next_ctr(f), d);
        else
                cf_ccp_cro_program(fr, fx_next_ctr(f), d, n);
        return ask(f, fr);
}

/* Block k of the image by PROGRAM_6 from its start, bit `flip` of byte `at` of the block flipped on
 * the way (flip < 0: none). */
static void send_block(struct fx *f, const uint8_t *image, uint32_t k, int at, int flip)
{
        uint32_t off = k * CF_BLOCK_SIZE, len = cf_block_len(k);
        uint8_t buf[CF_BLOCK_SIZE];

        memcpy(buf, image + off, len);
        if (flip >= 0)
                buf[at] ^= (uint8_t) (1u << flip);
        CU_ASSERT_EQUAL_FATAL(set_mta(f, off), 0);
        for (uint32_t i = 0; i < len; i += 6) {
                uint8_t n = (uint8_t) (len - i < 6 ? len - i : 6);
                CU_ASSERT_EQUAL_FATAL(program(f, buf + i, n), 0);
                CU_ASSERT_EQUAL(cf_ccp_dto_mta(&D), off + i + n);
        }
}

static void setup(struct fx *f)
{
        fx_init(f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f->hal), 0);
        fx_poke_area(f, B, img_v1);
        fx_power_on(f);
        CU_ASSERT_EQUAL_FATAL(fx_run(f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(f), 0);
        CU_ASSERT_EQUAL_FATAL(set_mta(f, 0), 0);
        cf_ccp_cro_clear_memory(fr, fx_next_ctr(f), CF_IMAGE_AREA_SIZE);
        CU_ASSERT_EQUAL_FATAL(ask(f, fr), 0);
}

/* ---- Codec ----------------------------------------------------------------------------------- */

static void test_codec(void)
{
        static const uint8_t mode[8] = {0x21, 0x04, 0xCF, 0x04, 0x00, 0x60, 0x00, 0x00};
        static const uint8_t check[8] = {0x21, 0x05, 0xCF, 0x05, 0x11, 0x22, 0x33, 0x44};
        uint8_t g[8];
        uint16_t k;
        uint32_t crc;

        cf_ccp_cro_block_mode(fr, 4, 96);
        CU_ASSERT_EQUAL(memcmp(fr, mode, 8), 0);
        cf_ccp_cro_block_check(fr, 5, 0x11223344u);
        CU_ASSERT_EQUAL(memcmp(fr, check, 8), 0);
        CU_ASSERT_EQUAL(CF_BLOCKS, 2731u);
        CU_ASSERT_EQUAL(cf_block_len(0), 96u);
        CU_ASSERT_EQUAL(cf_block_len(2730), 64u);
        CU_ASSERT_EQUAL(cf_block_len(2731), 0u);
        /* The offset is part of the value: equal bytes in two blocks check differently. */
        uint8_t zero[CF_BLOCK_SIZE] = {0};
        CU_ASSERT_NOT_EQUAL(cf_block_crc(0, zero, 96), cf_block_crc(96, zero, 96));
        uint32_t w = 96;
        CU_ASSERT_EQUAL(cf_block_crc(96, zero, 96), cf_crc32_le(cf_crc32_words(CF_CRC32_INIT, &w, 1), zero, 96));

        CU_ASSERT_EQUAL(cf_ccp_group_check_frame(g, img_v2, 1), 1);
        CU_ASSERT_EQUAL(g[0], 0xFF);
        CU_ASSERT_EQUAL(g[1], 0xC0);
        CU_ASSERT_EQUAL(cf_ccp_group_check_parse(g, 8, &k, &crc), 0);
        CU_ASSERT_EQUAL(k, 1);
        CU_ASSERT_EQUAL(crc, crc_of(img_v2, 1));
        CU_ASSERT_EQUAL(cf_ccp_group_check_parse(g, 7, &k, &crc), -1);
        CU_ASSERT_EQUAL(cf_ccp_group_check_frame(g, img_v2, 2000), 0); /* all 0xFF past the payload */
        CU_ASSERT_EQUAL(cf_ccp_group_check_frame(g, img_v2, CF_BLOCKS), -1);
        (void) cf_ccp_group_frame(g, img_v2, 5);
        CU_ASSERT_EQUAL(cf_ccp_group_check_parse(g, 8, &k, &crc), -1);
}

/* ---- Unicast --------------------------------------------------------------------------------- */

static void test_mode_rules(void)
{
        struct fx f;

        setup(&f);
        CU_ASSERT_EQUAL(block_check(&f, 0), CF_CCP_ERR_ACCESS_DENIED); /* no block mode */
        CU_ASSERT_EQUAL(block_mode(&f, 64), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(block_mode(&f, CF_BLOCK_SIZE), 0);
        CU_ASSERT_EQUAL(D.data[0] << 8 | D.data[1], CF_BLOCK_SIZE);
        /* A write across a block's end is refused. */
        CU_ASSERT_EQUAL(set_mta(&f, CF_BLOCK_SIZE - 2), 0);
        CU_ASSERT_EQUAL(program(&f, img_v2, 6), CF_CCP_ERR_OUT_OF_RANGE);
        /* A new session has no block mode. */
        CU_ASSERT_EQUAL(fx_connect_unlock(&f), 0);
        CU_ASSERT_EQUAL(block_check(&f, 0), CF_CCP_ERR_ACCESS_DENIED);
        fx_fini(&f);

        /* The seed's firmware and --no-group nodes: no ACTION_SERVICE at all. */
        fx_init(&f);
        f.cfg.no_group = true;
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(&f), 0);
        CU_ASSERT_EQUAL(block_mode(&f, CF_BLOCK_SIZE), CF_CCP_ERR_UNKNOWN_CMD);
        fx_fini(&f);
}

static void test_corrupted_block_refused(void)
{
        struct fx f;

        setup(&f);
        CU_ASSERT_EQUAL_FATAL(block_mode(&f, CF_BLOCK_SIZE), 0);
        /* A flipped bit: every PROGRAM answered OK, nothing in flash, BLOCK_CHECK refuses. */
        send_block(&f, img_v2, 3, 17, 4);
        CU_ASSERT_TRUE(erased(&f, 3 * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, 3)), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_TRUE(erased(&f, 3 * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
        /* Asked again (the master believes an error only twice): still refused, nothing buffered. */
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, 3)), CF_CCP_ERR_ACCESS_DENIED);
        /* A good block is written. */
        send_block(&f, img_v2, 3, 0, -1);
        CU_ASSERT_TRUE(erased(&f, 3 * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, 3)), 0);
        CU_ASSERT_EQUAL(D.data[0] << 8 | D.data[1], 3);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 3 * CF_BLOCK_SIZE), img_v2 + 3 * CF_BLOCK_SIZE, CF_BLOCK_SIZE), 0);
        /* Its OK answer lost: asked again, the node finds the block in flash. */
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, 3)), 0);
        /* A corrupted check value refuses a good block. */
        send_block(&f, img_v2, 4, 0, -1);
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, 4) ^ 0x100u), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_TRUE(erased(&f, 4 * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
        /* Block 3's value while block 4 is buffered: the offset in the value tells them apart. */
        send_block(&f, img_v2, 4, 0, -1);
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, 3)), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_TRUE(erased(&f, 4 * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
        fx_fini(&f);
}

static void test_wrong_address_refused(void)
{
        struct fx f;
        uint32_t k = 7, off = k * CF_BLOCK_SIZE;

        setup(&f);
        CU_ASSERT_EQUAL_FATAL(block_mode(&f, CF_BLOCK_SIZE), 0);
        /* A SET_MTA whose address a flipped bit moved (0x2A0 -> 0x2A0 ^ 0x40): the chunk lands in
         * the wrong place of another block; the master puts the MTA back and sends on. */
        CU_ASSERT_EQUAL(set_mta(&f, off ^ 0x40u), 0);
        CU_ASSERT_EQUAL(program(&f, img_v2 + off, 6), 0);
        CU_ASSERT_EQUAL(set_mta(&f, off), 0);
        for (uint32_t i = 0; i < CF_BLOCK_SIZE; i += 6)
                CU_ASSERT_EQUAL(program(&f, img_v2 + off + i, 6), 0);
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, k)), 0);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, off), img_v2 + off, CF_BLOCK_SIZE), 0);
        /* The stray chunk never reached flash. */
        CU_ASSERT_TRUE(erased(&f, 6 * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
        /* A stray write inside the block itself, at a place the real data does not overwrite: the
         * block does not check out. */
        off = 9 * CF_BLOCK_SIZE;
        CU_ASSERT_EQUAL(set_mta(&f, off), 0);
        for (uint32_t i = 0; i < CF_BLOCK_SIZE - 6; i += 6)
                CU_ASSERT_EQUAL(program(&f, img_v2 + off + i, 6), 0);
        static const uint8_t junk[6] = {1, 2, 3, 4, 5, 6};
        CU_ASSERT_EQUAL(program(&f, junk, 6), 0); /* where the last chunk should be */
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, 9)), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_TRUE(erased(&f, off, CF_BLOCK_SIZE));
        fx_fini(&f);
}

static void test_out_of_order(void)
{
        struct fx f;
        uint32_t k = 11, off = k * CF_BLOCK_SIZE;

        setup(&f);
        CU_ASSERT_EQUAL_FATAL(block_mode(&f, CF_BLOCK_SIZE), 0);
        /* Last chunk first, then backwards, one chunk twice (a retry after a lost answer), and an
         * odd split: 4 + 2 bytes. */
        for (int i = CF_BLOCK_SIZE - 6; i >= 0; i -= 6) {
                CU_ASSERT_EQUAL(set_mta(&f, off + (uint32_t) i), 0);
                if (i == 30) {
                        CU_ASSERT_EQUAL(program(&f, img_v2 + off + i, 4), 0);
                        CU_ASSERT_EQUAL(program(&f, img_v2 + off + i + 4, 2), 0);
                } else {
                        CU_ASSERT_EQUAL(program(&f, img_v2 + off + i, 6), 0);
                }
                if (i == 48) {
                        CU_ASSERT_EQUAL(set_mta(&f, off + (uint32_t) i), 0);
                        CU_ASSERT_EQUAL(program(&f, img_v2 + off + i, 6), 0);
                }
        }
        CU_ASSERT_TRUE(erased(&f, off, CF_BLOCK_SIZE));
        /* The MTA is at the block's second chunk now: the check names the buffered block. */
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, k)), 0);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, off), img_v2 + off, CF_BLOCK_SIZE), 0);
        /* The last block (64 bytes, the CRC word at its end). */
        send_block(&f, img_v2, CF_BLOCKS - 1, 0, -1);
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, CF_BLOCKS - 1)), 0);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, CF_IMAGE_AREA_SIZE - 64), img_v2 + CF_IMAGE_AREA_SIZE - 64, 64), 0);
        fx_fini(&f);
}

/* ---- Group ----------------------------------------------------------------------------------- */

static void group_setup(struct fx *f)
{
        setup(f);
        CU_ASSERT_EQUAL_FATAL(block_mode(f, CF_BLOCK_SIZE), 0);
        cf_ccp_cro_group_join(fr, fx_next_ctr(f), GID, TAG);
        CU_ASSERT_EQUAL_FATAL(ask(f, fr), 0);
}

static void gap(struct fx *f, uint16_t from, uint16_t *first, uint16_t *run)
{
        cf_ccp_cro_gap(fr, fx_next_ctr(f), from);
        CU_ASSERT_EQUAL(ask(f, fr), 0);
        *first = cf_ccp_dto_gap_first(&D);
        *run = cf_ccp_dto_gap_run(&D);
}

/* The data frames of block k, with frame `bad` (index in the block, < 0: none) changed by `mangle`. */
static void group_block(struct fx *f, const uint8_t *image, uint32_t k, int bad, void (*mangle)(uint8_t *g))
{
        uint8_t g[8];
        for (uint32_t i = 0; i < CF_BLOCK_SLOTS; i++) {
                if (cf_ccp_group_frame(g, image, (uint16_t) (k * CF_BLOCK_SLOTS + i)) != 1)
                        continue;
                if ((int) i == bad)
                        mangle(g);
                cf_node_rx_group(&f->node, g, 8);
                fx_poll(f, 200);
        }
}

static void flip_data(uint8_t *g)
{
        g[5] ^= 0x08;
}
static void flip_slot_low(uint8_t *g)
{
        g[1] ^= 0x01; /* the neighbouring slot, same block */
}
static void flip_slot_high(uint8_t *g)
{
        g[0] ^= 0x10; /* 4096 slots further: another block */
}

static void test_group_corrupted(void)
{
        struct fx f;
        uint16_t first, run;
        void (*mangles[])(uint8_t *) = {flip_data, flip_slot_low, flip_slot_high};

        group_setup(&f);
        /* Frames are held, not programmed, until the check frame. */
        group_block(&f, img_v2, 0, -1, NULL);
        CU_ASSERT_TRUE(erased(&f, 0, CF_BLOCK_SIZE));
        fx_group_check(&f, img_v2, 0);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 0), img_v2, CF_BLOCK_SIZE), 0);
        gap(&f, 0, &first, &run);
        CU_ASSERT_EQUAL(first, CF_BLOCK_SLOTS);

        for (uint32_t m = 0; m < 3; m++) {
                uint32_t k = 1 + m;
                group_block(&f, img_v2, k, 5, mangles[m]);
                fx_group_check(&f, img_v2, (uint16_t) k);
                CU_ASSERT_TRUE(erased(&f, k * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
                CU_ASSERT_TRUE(erased(&f, (k + 4096 / CF_BLOCK_SLOTS) * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
                /* The whole block stays missing for GAP. */
                gap(&f, (uint16_t) (k * CF_BLOCK_SLOTS), &first, &run);
                CU_ASSERT_EQUAL(first, k * CF_BLOCK_SLOTS);
                CU_ASSERT_TRUE(run >= CF_BLOCK_SLOTS);
        }
        /* A lost check frame: the next block's data drops the unchecked one. */
        group_block(&f, img_v2, 4, -1, NULL);
        group_block(&f, img_v2, 5, -1, NULL);
        fx_group_check(&f, img_v2, 4); /* late: block 4 is no longer held */
        fx_group_check(&f, img_v2, 5);
        CU_ASSERT_TRUE(erased(&f, 4 * CF_BLOCK_SIZE, CF_BLOCK_SIZE));
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 5 * CF_BLOCK_SIZE), img_v2 + 5 * CF_BLOCK_SIZE, CF_BLOCK_SIZE), 0);
        /* A corrupted check frame. */
        group_block(&f, img_v2, 6, -1, NULL);
        uint8_t g[8];
        (void) cf_ccp_group_check_frame(g, img_v2, 6);
        g[6] ^= 0x20;
        cf_node_rx_group(&f.node, g, 8);
        fx_poll(&f, 200);
        CU_ASSERT_TRUE(erased(&f, 6 * CF_BLOCK_SIZE, CF_BLOCK_SIZE));

        /* The unicast repair of a refused block, through the same check. */
        uint32_t k = 2, off = k * CF_BLOCK_SIZE;
        CU_ASSERT_EQUAL(set_mta(&f, off), 0);
        for (uint32_t i = 0; i < CF_BLOCK_SIZE; i += 6)
                CU_ASSERT_EQUAL(program(&f, img_v2 + off + i, 6), 0);
        CU_ASSERT_EQUAL(block_check(&f, crc_of(img_v2, k)), 0);
        gap(&f, (uint16_t) (k * CF_BLOCK_SLOTS), &first, &run);
        CU_ASSERT_EQUAL(first, 3 * CF_BLOCK_SLOTS);
        fx_fini(&f);
}

/* A whole update the way canfleetd does it, every 7th group frame with a flipped bit and every 13th
 * lost: what reaches C is the image, and it installs. */
static void test_group_update_corrupted(void)
{
        struct fx f;
        uint32_t repaired = 0;
        struct cf_image_info info;

        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        f.checked = true;
        f.corrupt_every = 7;
        CU_ASSERT_EQUAL(fx_group_upgrade(&f, img_v2, 13, &repaired), 0);
        CU_ASSERT_TRUE(repaired > 0);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(fx_area_check(&f, B, &info), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(info.ver_major, 2);
        fx_fini(&f);

        /* Without block mode the same line writes the damage: BUILD_CHKSUM refuses the image. */
        fx_init(&f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
        fx_poke_area(&f, B, img_v1);
        fx_power_on(&f);
        CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
        f.corrupt_every = 7;
        CU_ASSERT_EQUAL(fx_group_upgrade(&f, img_v2, 13, &repaired), -EPROTO);
        fx_fini(&f);
}

int main(void)
{
        fx_image(img_v1, FX_HW_ID, 1, 0, 0, 1, 3000, 1);
        fx_image(img_v2, FX_HW_ID, 2, 0, 0, 2, 60000, 2);

        static const struct cf_test tests[] = {
            {"codec: BLOCK_MODE, BLOCK_CHECK, check frames, check value", test_codec},
            {"BLOCK_MODE rules; old nodes answer UNKNOWN_CMD", test_mode_rules},
            {"corrupted block refused and not written, good block written", test_corrupted_block_refused},
            {"a write at a corrupted address never reaches flash", test_wrong_address_refused},
            {"block split over frames out of order", test_out_of_order},
            {"group: corrupted data or slot number, lost or corrupted check frame", test_group_corrupted},
            {"group update through a corrupting line installs", test_group_update_corrupted},
            {NULL, NULL},
        };
        return cf_test_run("block", tests);
}
