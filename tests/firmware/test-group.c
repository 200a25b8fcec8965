/* Tests of the group transfer on a node (group.c and the ACTION_SERVICE part of ccp-slave.c, docs/design.md
 * §7). */
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

static void setup(struct fx *f)
{
        fx_init(f);
        CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f->hal), 0);
        fx_poke_area(f, B, img_v1);
        fx_power_on(f);
        CU_ASSERT_EQUAL_FATAL(fx_run(f, NULL), CF_NODE_APP);
}

static int ask(struct fx *f, const uint8_t cro[8])
{
        if (!fx_cro(f, cro, &D))
                return -1;
        CU_ASSERT_EQUAL(D.ctr, cro[1]);
        return D.err;
}

static int join(struct fx *f, uint16_t id, uint16_t tag)
{
        cf_ccp_cro_group_join(fr, fx_next_ctr(f), id, tag);
        return ask(f, fr);
}

static int leave(struct fx *f)
{
        cf_ccp_cro_group_leave(fr, fx_next_ctr(f));
        return ask(f, fr);
}

/* GAP from `from`: the error, the answer in *first / *run. */
static int gap(struct fx *f, uint16_t from, uint16_t *first, uint16_t *run)
{
        cf_ccp_cro_gap(fr, fx_next_ctr(f), from);
        int r = ask(f, fr);
        *first = cf_ccp_dto_gap_first(&D);
        *run = cf_ccp_dto_gap_run(&D);
        return r;
}

static int connect(struct fx *f, uint16_t station)
{
        cf_ccp_cro_connect(fr, fx_next_ctr(f), station);
        return station == FX_STATION ? ask(f, fr) : (fx_cro_dlc(f, fr, 8, &D, 5) ? -2 : -1);
}

static int disconnect(struct fx *f, uint8_t type)
{
        cf_ccp_cro_disconnect(fr, fx_next_ctr(f), type, FX_STATION);
        return ask(f, fr);
}

static int erase_c(struct fx *f)
{
        cf_ccp_cro_set_mta(fr, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, 0);
        if (ask(f, fr) != 0)
                return -1;
        cf_ccp_cro_clear_memory(fr, fx_next_ctr(f), CF_IMAGE_AREA_SIZE);
        return ask(f, fr);
}

static int program6_at(struct fx *f, uint32_t off, const uint8_t *d)
{
        cf_ccp_cro_set_mta(fr, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, off);
        if (ask(f, fr) != 0)
                return -1;
        cf_ccp_cro_program6(fr, fx_next_ctr(f), d);
        return ask(f, fr);
}

static const uint8_t *cflash(struct fx *f, uint32_t off)
{
        return f->flash + (C - CF_FLASH_BASE) + off;
}

/* Connected, unlocked, C erased, joined. */
static void joined(struct fx *f)
{
        setup(f);
        CU_ASSERT_EQUAL_FATAL(fx_connect_unlock(f), 0);
        CU_ASSERT_EQUAL_FATAL(erase_c(f), 0);
        CU_ASSERT_EQUAL_FATAL(join(f, GID, TAG), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_join_received(&D), 0);
}

static bool is_member(struct fx *f)
{
        uint32_t id;
        return cf_node_group_id(&f->node, &id) && id == GID;
}

/* ---- Membership ------------------------------------------------------------------------------ */

static void test_join_rules(void)
{
        struct fx f;
        uint16_t a, b;

        setup(&f);
        CU_ASSERT_EQUAL(connect(&f, FX_STATION), 0);
        CU_ASSERT_EQUAL(join(&f, GID, TAG), CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_EQUAL(leave(&f), CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_EQUAL(gap(&f, 0, &a, &b), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(fx_connect_unlock(&f), 0);
        /* Unlocked but C not erased in this session (it is erased in flash: that is not enough). */
        CU_ASSERT_EQUAL(join(&f, GID, TAG), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(erase_c(&f), 0);
        CU_ASSERT_EQUAL(join(&f, 0x800, TAG), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(join(&f, CF_CCP_CRO_BASE_DEFAULT + FX_STATION, TAG), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_EQUAL(join(&f, CF_CCP_DTO_BASE_DEFAULT + FX_STATION, TAG), CF_CCP_ERR_OUT_OF_RANGE);
        CU_ASSERT_FALSE(is_member(&f));
        CU_ASSERT_EQUAL(join(&f, GID, TAG), 0);
        CU_ASSERT_TRUE(is_member(&f));
        fx_group_frame(&f, img_v2, 0);
        /* The same join again keeps the record and says how much of it there is. */
        CU_ASSERT_EQUAL(join(&f, GID, TAG), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_join_received(&D), 1);
        CU_ASSERT_EQUAL(join(&f, GID, TAG + 1), CF_CCP_ERR_ACCESS_DENIED);
        CU_ASSERT_EQUAL(join(&f, GID + 0x10, TAG), CF_CCP_ERR_ACCESS_DENIED);
        /* An unknown service number. */
        const uint8_t svc[8] = {CF_CCP_ACTION_SERVICE, 0x40, 0xCF, 0x7F, 0, 0, 0, 0};
        CU_ASSERT_EQUAL(ask(&f, svc), CF_CCP_ERR_OUT_OF_RANGE);
        fx_fini(&f);
}

/* The seed's demo firmware (echo mode) and an older bootloader do not know ACTION_SERVICE at all. */
static void test_old_nodes_unknown(void)
{
        for (int mode = 0; mode < 2; mode++) {
                struct fx f;
                fx_init(&f);
                CU_ASSERT_EQUAL_FATAL(cf_hal_host_init(&f.hal), 0);
                if (mode == 0)
                        f.cfg.seedkey_echo = true;
                else
                        f.cfg.no_group = true;
                fx_poke_area(&f, B, img_v1);
                fx_power_on(&f);
                CU_ASSERT_EQUAL_FATAL(fx_run(&f, NULL), CF_NODE_APP);
                CU_ASSERT_EQUAL(connect(&f, FX_STATION), 0);
                CU_ASSERT_EQUAL(join(&f, GID, TAG), CF_CCP_ERR_UNKNOWN_CMD);
                CU_ASSERT_EQUAL(leave(&f), CF_CCP_ERR_UNKNOWN_CMD);
                fx_fini(&f);
        }
}

static void test_frames_before_join_ignored(void)
{
        struct fx f;

        setup(&f);
        CU_ASSERT_EQUAL(fx_connect_unlock(&f), 0);
        CU_ASSERT_EQUAL(erase_c(&f), 0);
        uint64_t ops = f.hal.flash_ops;
        for (uint16_t s = 0; s < 100; s++)
                fx_group_frame(&f, img_v2, s);
        CU_ASSERT_EQUAL(f.hal.flash_ops, ops);
        CU_ASSERT_EQUAL(cflash(&f, 0)[0], 0xFF);
        fx_fini(&f);
}

/* Survives CONNECT to another station, DISCONNECT(temporary) and a new CONNECT to us: the record,
 * "C erased" (PROGRAM_6 repair works after a new UNLOCK) and the frames taken meanwhile. */
static void test_membership_survives(void)
{
        struct fx f;
        uint16_t a, b;

        joined(&f);
        fx_group_frame(&f, img_v2, 0);
        CU_ASSERT_EQUAL(connect(&f, FX_STATION + 1), -1);
        CU_ASSERT_FALSE(f.node.slave.connected);
        CU_ASSERT_TRUE(is_member(&f));
        fx_group_frame(&f, img_v2, 1);
        CU_ASSERT_EQUAL(connect(&f, FX_STATION), 0);
        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_TEMPORARY), 0);
        fx_group_frame(&f, img_v2, 3);
        CU_ASSERT_TRUE(is_member(&f));
        CU_ASSERT_EQUAL(fx_connect_unlock(&f), 0);
        CU_ASSERT_EQUAL(gap(&f, 0, &a, &b), 0);
        CU_ASSERT_EQUAL(a, 2);
        CU_ASSERT_EQUAL(b, 1);
        CU_ASSERT_EQUAL(program6_at(&f, 12, img_v2 + 12), 0);
        CU_ASSERT_EQUAL(gap(&f, 0, &a, &b), 0);
        CU_ASSERT_EQUAL(a, 4);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 0), img_v2, 24), 0);
        fx_fini(&f);
}

/* Each of the four ends: frames after it are not programmed, and "C erased" no longer outlives
 * the connection. */
static void test_membership_ends(void)
{
        for (int ev = 0; ev < 4; ev++) {
                struct fx f;
                uint16_t a, b;
                joined(&f);
                switch (ev) {
                case 0:
                        CU_ASSERT_EQUAL(leave(&f), 0);
                        CU_ASSERT_EQUAL(leave(&f), 0); /* idempotent */
                        break;
                case 1:
                        CU_ASSERT_EQUAL(erase_c(&f), 0);
                        break;
                case 2:
                        /* C is not valid: refused, and the node stays up; the membership still ends. */
                        CU_ASSERT_EQUAL(disconnect(&f, CF_CCP_DISCONNECT_END), CF_CCP_ERR_ACCESS_DENIED);
                        break;
                case 3:
                        fx_power_on(&f);
                        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
                        break;
                }
                CU_ASSERT_FALSE(is_member(&f));
                uint64_t ops = f.hal.flash_ops;
                fx_group_frame(&f, img_v2, 0);
                CU_ASSERT_EQUAL(f.hal.flash_ops, ops);
                CU_ASSERT_EQUAL(fx_connect_unlock(&f), 0);
                CU_ASSERT_EQUAL(gap(&f, 0, &a, &b), CF_CCP_ERR_ACCESS_DENIED);
                if (ev != 1) {
                        /* New connection, no membership: C must be erased again before PROGRAM. */
                        CU_ASSERT_EQUAL(program6_at(&f, 0, img_v2), CF_CCP_ERR_ACCESS_DENIED);
                }
                fx_fini(&f);
        }
}

/* ---- Slots ----------------------------------------------------------------------------------- */

/* Odd slots before even ones, so both halves of each shared word are written in both orders. */
static void test_slots_partial_words(void)
{
        struct fx f;

        joined(&f);
        for (uint16_t s = 1; s < 64; s += 2)
                fx_group_frame(&f, img_v2, s);
        for (uint16_t s = 0; s < 64; s += 2)
                fx_group_frame(&f, img_v2, s);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 0), img_v2, 64 * 6), 0);
        CU_ASSERT_EQUAL(cflash(&f, 64 * 6)[0], 0xFF);
        /* Slot 70 alone: its shared word's other half (slot 71, never sent) stays erased. */
        fx_group_frame(&f, img_v2, 70);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 420), img_v2 + 420, 6), 0);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 426), (const uint8_t[6]){0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 6),
                        0);
        CU_ASSERT_EQUAL(f.node.slave.group.received, 65);
        /* An all-0xFF slot sent anyway: recorded, no flash operation. */
        uint8_t g[8] = {0x00, 100, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
        uint64_t ops = f.hal.flash_ops;
        cf_node_rx_group(&f.node, g, 8);
        CU_ASSERT_EQUAL(f.hal.flash_ops, ops);
        CU_ASSERT_TRUE(cf_group_has(&f.node.slave.group, 100));
        fx_fini(&f);
}

static void test_repeats_and_range(void)
{
        struct fx f;
        uint8_t g[8];

        joined(&f);
        fx_group_frame(&f, img_v2, 5);
        uint64_t ops = f.hal.flash_ops;
        /* A repeat, even with other data, changes nothing. */
        fx_group_frame(&f, img_v2, 5);
        (void) cf_ccp_group_frame(g, img_v2, 5);
        g[4] ^= 0xFF;
        cf_node_rx_group(&f.node, g, 8);
        CU_ASSERT_EQUAL(f.hal.flash_ops, ops);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 30), img_v2 + 30, 6), 0);
        /* Beyond the area, wrong DLC: ignored. */
        memset(g, 0x00, sizeof(g));
        g[0] = 0xAA;
        g[1] = 0xAB; /* slot 43691 */
        cf_node_rx_group(&f.node, g, 8);
        g[0] = g[1] = 0xFF;
        cf_node_rx_group(&f.node, g, 8);
        g[0] = g[1] = 0;
        cf_node_rx_group(&f.node, g, 7);
        CU_ASSERT_EQUAL(f.hal.flash_ops, ops);
        CU_ASSERT_EQUAL(f.node.slave.group.received, 1);
        CU_ASSERT_EQUAL(cflash(&f, 0)[0], 0xFF);
        /* The last slot: 4 bytes programmed, its 2 bytes past the end ignored. */
        (void) cf_ccp_group_frame(g, img_v2, 43690);
        g[6] = g[7] = 0x00;
        cf_node_rx_group(&f.node, g, 8);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, CF_CRC_OFFSET), img_v2 + CF_CRC_OFFSET, 4), 0);
        CU_ASSERT_TRUE(cf_group_has(&f.node.slave.group, 43690));
        /* The byte after C (area D) untouched. */
        CU_ASSERT_EQUAL(f.flash[C - CF_FLASH_BASE + CF_IMAGE_AREA_SIZE], 0xFF);
        fx_fini(&f);
}

/* Flash still busy with the last word (the timing model): frames wait in the backlog, in order. */
static void test_backlog_while_busy(void)
{
        struct fx f;

        joined(&f);
        f.hal.program_us_per_word = 16;
        uint8_t g[8];
        for (uint16_t s = 0; s < 4; s++) {
                (void) cf_ccp_group_frame(g, img_v2, s);
                cf_node_rx_group(&f.node, g, 8); /* no time passes */
        }
        CU_ASSERT_EQUAL(f.node.slave.group.received, 1);
        CU_ASSERT_TRUE(cf_group_pending(&f.node.slave.group));
        for (int i = 0; i < 10; i++)
                fx_poll(&f, 40);
        CU_ASSERT_FALSE(cf_group_pending(&f.node.slave.group));
        CU_ASSERT_EQUAL(f.node.slave.group.received, 4);
        CU_ASSERT_EQUAL(memcmp(cflash(&f, 0), img_v2, 24), 0);
        /* A full backlog loses the frame, counted: GAP will show it. */
        for (uint16_t s = 10; s < 10 + CF_GROUP_BACKLOG + 3; s++) {
                (void) cf_ccp_group_frame(g, img_v2, s);
                cf_node_rx_group(&f.node, g, 8);
        }
        CU_ASSERT_EQUAL(f.node.slave.group.overruns, 2);
        fx_fini(&f);
}

/* ---- GAP ------------------------------------------------------------------------------------- */

static void test_gap_answers(void)
{
        struct fx f;
        uint16_t a, b;

        joined(&f);
        CU_ASSERT_EQUAL(gap(&f, 0, &a, &b), 0);
        CU_ASSERT_EQUAL(a, 0);
        CU_ASSERT_EQUAL(b, CF_GROUP_SLOTS);
        /* Holes: at the start (0..2), in the middle (10, 40..99), at the end (43600..43690 but
         * the partial last slot). */
        for (uint32_t s = 3; s < CF_GROUP_SLOTS; s++)
                if (s != 10 && !(s >= 40 && s < 100) && !(s >= 43600 && s < 43690))
                        fx_group_frame(&f, img_v2, (uint16_t) s);
        static const struct {
                uint16_t from, first, run;
        } want[] = {
            {0, 0, 3},        {1, 1, 2},         {3, 10, 1},         {11, 40, 60},       {64, 64, 36},
            {100, 43600, 90}, {43689, 43689, 1}, {43690, 0xFFFF, 0}, {43691, 0xFFFF, 0}, {0xFFFF, 0xFFFF, 0},
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                CU_ASSERT_EQUAL(gap(&f, want[i].from, &a, &b), 0);
                CU_ASSERT_EQUAL(a, want[i].first);
                CU_ASSERT_EQUAL(b, want[i].run);
        }
        /* The partial last slot missing on its own. */
        fx_fini(&f);
        joined(&f);
        for (uint32_t s = 0; s < CF_GROUP_SLOTS - 1; s++)
                fx_group_frame(&f, img_v2, (uint16_t) s);
        CU_ASSERT_EQUAL(gap(&f, 0, &a, &b), 0);
        CU_ASSERT_EQUAL(a, 43690);
        CU_ASSERT_EQUAL(b, 1);
        /* Repaired by a unicast PROGRAM of its 4 bytes: recorded. */
        cf_ccp_cro_set_mta(fr, fx_next_ctr(&f), 0, CF_CCP_EXT_STAGING, 43690u * 6);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        cf_ccp_cro_program(fr, fx_next_ctr(&f), img_v2 + 43690u * 6, 4);
        CU_ASSERT_EQUAL(ask(&f, fr), 0);
        CU_ASSERT_EQUAL(gap(&f, 0, &a, &b), 0);
        CU_ASSERT_EQUAL(a, 0xFFFF);
        CU_ASSERT_EQUAL(b, 0);
        CU_ASSERT_EQUAL(join(&f, GID, TAG), 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_join_received(&D), CF_GROUP_SLOTS);
        fx_fini(&f);
}

/* ---- A whole update --------------------------------------------------------------------------- */

static void test_group_update_installs(void)
{
        struct fx f;
        uint32_t repaired = 0;
        struct cf_image_info info;

        setup(&f);
        CU_ASSERT_EQUAL(fx_group_upgrade(&f, img_v2, 97, &repaired), 0);
        CU_ASSERT_TRUE(repaired > 0);
        CU_ASSERT_EQUAL(memcmp(f.flash + (C - CF_FLASH_BASE), img_v2, CF_IMAGE_AREA_SIZE), 0);
        CU_ASSERT_EQUAL(fx_run(&f, NULL), CF_NODE_APP);
        CU_ASSERT_EQUAL(fx_area_check(&f, B, &info), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(info.ver_major, 2);
        CU_ASSERT_EQUAL(memcmp(f.flash + (B - CF_FLASH_BASE), img_v2, CF_IMAGE_AREA_SIZE), 0);
        fx_fini(&f);
}

int main(void)
{
        fx_image(img_v1, FX_HW_ID, 1, 0, 0, 1, 3000, 1);
        fx_image(img_v2, FX_HW_ID, 2, 0, 0, 2, 60000, 2);

        static const struct cf_test tests[] = {
            {"GROUP_JOIN rules", test_join_rules},
            {"echo mode and --no-group: UNKNOWN_CMD", test_old_nodes_unknown},
            {"group frames before the join ignored", test_frames_before_join_ignored},
            {"membership survives CONNECT elsewhere and DISCONNECT temporary", test_membership_survives},
            {"membership ends: LEAVE, CLEAR_MEMORY, DISCONNECT end, reset", test_membership_ends},
            {"slots: partial words in either order, unsent neighbour", test_slots_partial_words},
            {"repeats, slots beyond the area, last slot", test_repeats_and_range},
            {"backlog while the flash is busy", test_backlog_while_busy},
            {"GAP: holes at start, middle, end, last slot", test_gap_answers},
            {"group update with losses installs", test_group_update_installs},
            {NULL, NULL},
        };
        return cf_test_run("group", tests);
}
