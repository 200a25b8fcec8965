/* Checked blocks (docs/design.md §7): the bytes of one block of area C wait in RAM until their check
 * value matches, and only then are programmed. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "canfleet/ccp.h"
#include "cf-hal.h"

/*
 * One block (canfleet/ccp.h: CF_BLOCK_SIZE bytes at a multiple of it). A block is started from what
 * flash holds there (erased bytes, or bytes an earlier commit or pass wrote), so the bytes the gateway
 * leaves out (0xFF runs, slots it does not send, slots already received) are right in it, and the
 * check covers the whole block. Writes only change RAM. The commit checks the value first, then
 * programs: a power cut leaves at most a block partly programmed with its own checked bytes, which
 * the record of the membership or session, lost with the power, never counted.
 */
struct cf_block_buf {
        uint32_t area; /* the staging area's flash address: the F4's C, a dual-bank node's inactive bank */
        bool active;
        uint16_t index;
        uint8_t data[CF_BLOCK_SIZE];
};

/* Start block k (< CF_BLOCKS) from flash, dropping what was buffered. */
void cf_block_start(struct cf_block_buf *b, struct cf_hal *hal, uint16_t k);
/* Put n bytes at offset off of area C into the buffer, starting block off / CF_BLOCK_SIZE first when
 * another (or none) is buffered. The range must lie inside one block (the caller checks). */
void cf_block_put(struct cf_block_buf *b, struct cf_hal *hal, uint32_t off, const uint8_t *data, uint32_t n);
/* Compare the buffered block with crc and program it:
 *   0        it matched and flash holds it now (buffer released)
 *   -EBUSY   it matched, the flash is busy: call again (buffer kept; what was programmed stays)
 *   -EBADMSG no match (buffer dropped); -ENOENT nothing buffered
 *   -EIO     a flash byte is neither erased nor equal, or programming failed (buffer dropped) */
int cf_block_commit(struct cf_block_buf *b, struct cf_hal *hal, uint32_t crc);
/* Does flash hold block k of the area at address area with check value crc (a commit whose answer
 * was lost)? */
bool cf_block_in_flash(struct cf_hal *hal, uint32_t area, uint16_t k, uint32_t crc);
