/* Group transfer, node side: the record of received slots and their programming into area C. */
#include <errno.h>
#include <string.h>

#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "group.h"

_Static_assert(CF_GROUP_AREA_SIZE == CF_IMAGE_AREA_SIZE, "a group slot addresses area C");
_Static_assert(CF_GROUP_SLOTS == 43691u, "43,691 slots cover 256 KB");

void cf_group_clear(struct cf_group *g)
{
        memset(g, 0, sizeof(*g));
}

void cf_group_join(struct cf_group *g, uint16_t can_id, uint16_t tag, uint32_t area_addr)
{
        cf_group_clear(g);
        g->joined = true;
        g->can_id = can_id;
        g->tag = tag;
        g->area_addr = area_addr;
        g->blk.area = area_addr;
}

bool cf_group_has(const struct cf_group *g, uint32_t slot)
{
        return slot < CF_GROUP_SLOTS && (g->bits[slot / 32u] >> (slot % 32u) & 1u);
}

static void record(struct cf_group *g, uint32_t slot)
{
        if (cf_group_has(g, slot))
                return;
        g->bits[slot / 32u] |= 1u << (slot % 32u);
        g->received++;
}

static uint32_t slot_len(uint32_t slot)
{
        uint32_t off = slot * CF_GROUP_SLOT_SIZE;
        return CF_GROUP_AREA_SIZE - off < CF_GROUP_SLOT_SIZE ? CF_GROUP_AREA_SIZE - off : CF_GROUP_SLOT_SIZE;
}

void cf_group_record_range(struct cf_group *g, uint32_t off, uint32_t n)
{
        if (!g->joined || off >= CF_GROUP_AREA_SIZE)
                return;
        if (n > CF_GROUP_AREA_SIZE - off)
                n = CF_GROUP_AREA_SIZE - off;
        uint32_t end = off + n;
        for (uint32_t slot = (off + CF_GROUP_SLOT_SIZE - 1u) / CF_GROUP_SLOT_SIZE;
             slot < CF_GROUP_SLOTS && slot * CF_GROUP_SLOT_SIZE + slot_len(slot) <= end; slot++)
                record(g, slot);
}

void cf_group_record_block(struct cf_group *g, uint16_t k)
{
        cf_group_record_range(g, (uint32_t) k * CF_BLOCK_SIZE, cf_block_len(k));
}

/* Index of the first bit of value `set` at or after slot, or CF_GROUP_SLOTS. Word at a time. */
static uint32_t scan(const struct cf_group *g, uint32_t slot, bool set)
{
        while (slot < CF_GROUP_SLOTS) {
                uint32_t w = g->bits[slot / 32u];
                if (!set)
                        w = ~w;
                w &= ~0u << (slot % 32u);
                if (w) {
                        uint32_t i = (slot & ~31u) + (uint32_t) __builtin_ctz(w);
                        return i < CF_GROUP_SLOTS ? i : CF_GROUP_SLOTS;
                }
                slot = (slot & ~31u) + 32u;
        }
        return CF_GROUP_SLOTS;
}

void cf_group_gap(const struct cf_group *g, uint16_t from, uint16_t *first, uint16_t *run)
{
        uint32_t f = scan(g, from, false);
        if (f >= CF_GROUP_SLOTS) {
                *first = CF_GROUP_SLOT_NONE;
                *run = 0;
                return;
        }
        uint32_t e = scan(g, f, true);
        *first = (uint16_t) f;
        *run = (uint16_t) (e - f); /* at most CF_GROUP_SLOTS < 0xFFFF */
}

static const uint8_t *staging(const struct cf_group *g, struct cf_hal *hal, uint32_t off)
{
        return cf_hal_flash_ptr(hal) + (g->area_addr - CF_FLASH_BASE) + off;
}

/* Block mode: a data frame goes into the block buffer, a check frame commits it. 1 done, 0 busy. */
static int buffer_frame(struct cf_group *g, struct cf_hal *hal, const uint8_t *frame)
{
        uint16_t slot, k;
        uint32_t crc;
        const uint8_t *data;

        if (cf_ccp_group_check_parse(frame, CF_CCP_FRAME_LEN, &k, &crc) == 0) {
                if (!g->blk.active || g->blk.index != k)
                        return 1; /* its data went to another block, or the check is corrupted */
                int r = cf_block_commit(&g->blk, hal, crc);
                if (r == -EBUSY)
                        return 0;
                if (r < 0) {
                        g->blocks_bad++;
                        return 1;
                }
                g->blocks_ok++;
                cf_group_record_block(g, k);
                return 1;
        }
        (void) cf_ccp_group_frame_parse(frame, CF_CCP_FRAME_LEN, &slot, &data);
        if (slot >= CF_GROUP_SLOTS) {
                g->refused++;
                return 1;
        }
        if (cf_group_has(g, slot))
                return 1;
        cf_block_put(&g->blk, hal, (uint32_t) slot * CF_GROUP_SLOT_SIZE, data, slot_len(slot));
        return 1;
}

/* 1 done (recorded, repeated or refused), 0 the flash is busy: try again later. */
static int write_slot(struct cf_group *g, struct cf_hal *hal, const uint8_t *frame)
{
        uint16_t slot;
        const uint8_t *data;

        if (g->verify)
                return buffer_frame(g, hal, frame);
        (void) cf_ccp_group_frame_parse(frame, CF_CCP_FRAME_LEN, &slot, &data);
        if (slot >= CF_GROUP_SLOTS) {
                g->refused++;
                return 1;
        }
        if (cf_group_has(g, slot))
                return 1;
        uint32_t off = (uint32_t) slot * CF_GROUP_SLOT_SIZE, n = slot_len(slot);
        const uint8_t *dst = staging(g, hal, off);
        bool erased = true, same = true;
        for (uint32_t i = 0; i < n; i++) {
                erased &= dst[i] == CF_FLASH_ERASED;
                same &= dst[i] == data[i];
        }
        /* Equal already (an all-0xFF slot on erased flash, or written by a unicast PROGRAM): no
         * flash operation needed. */
        if (!erased || same) {
                if (same)
                        record(g, slot);
                else
                        g->refused++;
                return 1;
        }
        int r = cf_hal_flash_program(hal, g->area_addr + off, data, n);
        if (r == -EBUSY)
                return 0;
        if (r < 0) {
                /* Left unrecorded: GAP shows it, and the unicast repair reports the flash error. */
                g->refused++;
                return 1;
        }
        record(g, slot);
        return 1;
}

void cf_group_poll(struct cf_group *g, struct cf_hal *hal)
{
        while (g->bl_count > 0) {
                if (!write_slot(g, hal, g->backlog[g->bl_head]))
                        return;
                g->bl_head = (uint8_t) ((g->bl_head + 1u) % CF_GROUP_BACKLOG);
                g->bl_count--;
        }
}

void cf_group_rx(struct cf_group *g, struct cf_hal *hal, const uint8_t *data, uint8_t dlc)
{
        if (!g->joined || dlc != CF_CCP_FRAME_LEN)
                return;
        g->frames++;
        /* In order: a frame must not overtake one that waits (a repeat would then find its slot). */
        cf_group_poll(g, hal);
        if (g->bl_count == 0 && write_slot(g, hal, data))
                return;
        if (g->bl_count == CF_GROUP_BACKLOG) {
                g->overruns++;
                return;
        }
        memcpy(g->backlog[(g->bl_head + g->bl_count) % CF_GROUP_BACKLOG], data, CF_CCP_FRAME_LEN);
        g->bl_count++;
}
