/* A node's part of a group transfer (docs/design.md §7): membership, the record of received slots, slot
 * programming. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "block.h"
#include "canfleet/ccp.h"
#include "cf-hal.h"

/*
 * A slot is 6 bytes of area C at offset slot * 6 (canfleet/ccp.h). The record is one bit per slot:
 * CF_GROUP_SLOTS = 43,691 bits in 1,366 words = 5,464 bytes of RAM, plus the backlog below.
 *
 * Programming, and why nothing is held back waiting for a neighbour: slot offsets are 6 * slot, so
 * an even slot starts on a 32-bit word and an odd one 2 bytes into a word. A pair of slots (2k,
 * 2k+1) is 12 bytes = 3 whole words, the middle one shared: the even slot owns its first half, the
 * odd slot its second half. A slot is written the moment it arrives, as one aligned word plus one
 * aligned half-word (the STM32F4 port programs x32 and x16). The STM32F4's flash has no ECC and
 * programs by clearing bits, so the two halves of the shared word can be programmed at different
 * times, in either order, and a half whose slot is never sent (all 0xFF: the gateway leaves those
 * out) is simply left erased — which is its right value. So there is no buffer to flush, no
 * "complete the word with 0xFF" step at BUILD_CHKSUM, and a power cut loses at most the slot
 * being written. (A port whose flash has a program unit larger than a half-word with ECC, e.g. the
 * 64-bit double words of an STM32L4, would need a word buffer here; the F405/407 does not.)
 *
 * A slot is recorded only when its bytes are in flash as sent: programmed now, or found already
 * holding exactly those bytes (a repeat after the record was lost cannot happen: the record lives
 * as long as C stays erased-for-this-transfer). Repeats of recorded slots are ignored without
 * touching flash. A slot whose bytes are neither erased nor equal is refused and stays missing (it
 * was written otherwise, e.g. by an unaligned PROGRAM: the master sees it in GAP and its checksum).
 *
 * Block mode (canfleet/ccp.h "Checked blocks"; set by the session's BLOCK_MODE, kept by the
 * membership): data frames are not programmed but collected in `blk`, one block at a time; the
 * block's check frame commits it (block.h) and records all its slots. A block whose check frame is
 * lost, or whose bytes do not check out, is dropped and stays missing for GAP. About 110 bytes of RAM.
 *
 * The backlog: cf_hal_flash_program() may answer -EBUSY (the simulator's flash timing model: a
 * word still being programmed); such frames wait here, in order, and cf_group_poll() writes them.
 * On the MCU programming is synchronous and the backlog stays empty; the port's CAN RX ring is
 * what absorbs bursts there (firmware/stm32f4/README.md).
 */

#define CF_GROUP_WORDS   ((CF_GROUP_SLOTS + 31u) / 32u)
#define CF_GROUP_BACKLOG 16u

struct cf_group {
        bool joined;
        uint32_t area_addr; /* flash address of the area the slots fill (C, or the inactive bank's) */
        uint16_t can_id;
        uint16_t tag;
        uint16_t received; /* slots recorded since the join */
        uint32_t frames;   /* group frames taken since the join */
        uint32_t
            refused; /* frames not recorded: slot beyond the area, bytes already different, flash error */
        uint32_t overruns; /* frames lost because the backlog was full */
        bool verify;             /* block mode: frames wait in blk for their block's check frame */
        uint32_t blocks_ok;      /* blocks committed from check frames */
        uint32_t blocks_bad;     /* blocks dropped: check value or flash refused them */
        struct cf_block_buf blk;
        uint8_t backlog[CF_GROUP_BACKLOG][CF_CCP_FRAME_LEN];
        uint8_t bl_head, bl_count;
        uint32_t bits[CF_GROUP_WORDS];
};

/* Not a member, nothing recorded. */
void cf_group_clear(struct cf_group *g);
/* Join with an empty record (the caller checked the rules). */
void cf_group_join(struct cf_group *g, uint16_t can_id, uint16_t tag, uint32_t area_addr);

/* Record every slot of block k: its bytes are in flash, checked. */
void cf_group_record_block(struct cf_group *g, uint16_t k);
bool cf_group_has(const struct cf_group *g, uint32_t slot);
/* Record every slot wholly inside [off, off + n) of C (a unicast PROGRAM while joined); the last,
 * short slot counts as whole when its 4 in-area bytes are. */
void cf_group_record_range(struct cf_group *g, uint32_t off, uint32_t n);

/* GAP: first slot >= from not recorded and the number missing in a row from it (capped at 0xFFFF);
 * CF_GROUP_SLOT_NONE and 0 when there is none. */
void cf_group_gap(const struct cf_group *g, uint16_t from, uint16_t *first, uint16_t *run);

/* A frame received on the group id while joined: programmed now, or queued when the flash is busy. */
void cf_group_rx(struct cf_group *g, struct cf_hal *hal, const uint8_t *data, uint8_t dlc);
/* Write what the backlog holds, as far as the flash lets us. */
void cf_group_poll(struct cf_group *g, struct cf_hal *hal);
static inline bool cf_group_pending(const struct cf_group *g)
{
        return g->bl_count > 0;
}
