/* The node's CCP slave: receives an image into area C while the node keeps doing its work. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "canfleet/node-status.h"
#include "cf-hal.h"
#include "group.h"
#include "node-config.h"

/*
 * Non-blocking: cf_ccp_slave_rx() handles one CRO and either answers at once or starts a long
 * operation (CLEAR_MEMORY, BUILD_CHKSUM) that cf_ccp_slave_poll() advances a bounded amount of
 * work per call and answers when done. While a long operation runs, further CROs are answered
 * with CF_CCP_ERR_BUSY.
 *
 * Behaviour (docs/design.md §3; canfleet/ccp.h has the frame layouts):
 *  - Before CONNECT with our station address, every CRO but CONNECT and TEST is ignored (no reply).
 *    A CRO whose DLC is not 8 is ignored.
 *  - PGM is locked after CONNECT. GET_SEED(PGM) gives a fresh random seed, valid for one UNLOCK.
 *    A wrong key answers ACCESS_LOCKED; the third wrong key in a row locks GET_SEED for 10 s
 *    (answered ACCESS_DENIED). UNLOCK without a fresh seed: ACCESS_DENIED.
 *  - SET_MTA: extensions 0..3, address range-checked (OUT_OF_RANGE) up to one past the last byte
 *    (the end of an extension, e.g. 0x40000 of C: the MTA a PROGRAM of the last bytes reports; a
 *    transfer there with data is OUT_OF_RANGE, PROGRAM with size 0 ends the sequence). MTA0 and MTA1.
 *  - UPLOAD/SHORT_UP read extensions 0,1,2 (and 3 when unlocked); DNLOAD/DNLOAD_6 write only 2.
 *  - CLEAR_MEMORY: needs PGM unlocked (ACCESS_LOCKED), MTA0 in extension 3 and the range inside C
 *    (OUT_OF_RANGE); erases every sector the range touches.
 *  - PROGRAM/PROGRAM_6: needs PGM unlocked, MTA0 in extension 3, a CLEAR_MEMORY earlier in this
 *    session (ACCESS_DENIED otherwise), the range inside C, the bytes still erased (ACCESS_DENIED).
 *    Size 0 ends a programming sequence. The reply carries MTA0 after the write.
 *  - BUILD_CHKSUM: CRC32 (canfleet/crc32.h) of [MTA0, MTA0+size), size a multiple of 4.
 *  - DISCONNECT(end of session): when C is valid (CRC, trailer, hw id, no rollback) answer OK, then
 *    reset into the bootloader; otherwise answer ACCESS_DENIED and keep running, connected. When C
 *    was erased by CLEAR_MEMORY since power-on (a new image) and the install journal holds failures,
 *    a STAGED record is written first, so the bootloader tries the new image (journal.h); the same
 *    C accepted again without a new CLEAR_MEMORY keeps its count.
 *    DISCONNECT(temporary) only ends the connection.
 *  - CONNECT or TEST with our station address while a long operation runs (CLEAR_MEMORY,
 *    BUILD_CHKSUM, DISCONNECT(end)'s check of C) is answered BUSY with its own counter and changes
 *    nothing: the operation goes on and later answers with the counter of the CRO
 *    that started it (a master that restarted meanwhile must ignore that answer). So a gateway can
 *    probe a node it lost: BUSY = still working, OK = idle (after a power cut or reset: a new
 *    session, C to be erased again), silence = no power.
 *  - CONNECT to another station while connected ends the connection as DISCONNECT(temporary) does
 *    (CCP 2.1), without an answer. A long operation in progress is dropped, unanswered: an erase
 *    already started completes, C needs a new CLEAR_MEMORY, a DISCONNECT(end) does not reset.
 *  - ACTION_SERVICE (docs/design.md §7, frame layouts in canfleet/ccp.h), unless the node is in
 *    echo mode or configured without it (cfg->no_group): then UNKNOWN_CMD, as the seed's firmware.
 *    An unknown service number: OUT_OF_RANGE.
 *    GROUP_JOIN: PGM unlocked (ACCESS_LOCKED), C erased by CLEAR_MEMORY in this session, or carried
 *    by the membership (ACCESS_DENIED), group id 11-bit and neither our CRO nor DTO id
 *    (OUT_OF_RANGE). Already joined: with the same id and tag OK, the record kept (answer: slots
 *    received); with others ACCESS_DENIED. From then on frames on the group id are programmed
 *    (cf_ccp_slave_group_rx, group.h), connected or not.
 *    GROUP_LEAVE: PGM unlocked; OK also when not joined. GAP: joined (ACCESS_DENIED otherwise).
 *    BLOCK_MODE, BLOCK_CHECK (canfleet/ccp.h "Checked blocks"): with block mode PROGRAM/PROGRAM_6
 *    collect a block in RAM (block.h), checked before anything is programmed; the mode lasts for the
 *    session, and a member's for its membership. DISCONNECT, CONNECT, CLEAR_MEMORY drop a buffered
 *    block.
 *    Membership, its record and "C erased" survive CONNECT (to us or another station) and
 *    DISCONNECT(temporary); they end with GROUP_LEAVE, a CLEAR_MEMORY, DISCONNECT(end) (taken,
 *    whatever the check of C then answers) or a reset. A unicast PROGRAM/PROGRAM_6 by a member
 *    records the slots it fills wholly.
 *  - CONFIRM (ACTION_SERVICE 0xCF10): PGM unlocked; on a dual-bank node on trial writes the
 *    confirmation (BUSY while the flash is busy, NOT_AVAILABLE when it cannot be written); OK also
 *    with nothing to confirm.
 *  - Any other command: UNKNOWN_CMD.
 *
 * Dual-bank nodes (cf_dual_bank(cfg), docs/design.md §9): extension 3 ("C") is the application area
 * of the bank the node does not run from (the running bank is the HAL's, from where the code is).
 * CLEAR_MEMORY of it first erases that bank's journal (bank.h), and is refused with ACCESS_DENIED
 * while the running bank is on trial (that bank is the way back). DISCONNECT(end) checks the image
 * for that bank's address and against the running release, writes its STAGED record and resets; an
 * image that was tried already (its journal has a TRIAL) must be staged again (ACCESS_DENIED). The
 * status block says which bank runs and the state of the last swap (bytes 77 and 78).
 */

struct cf_ccp_slave {
        struct cf_hal *hal;
        const struct cf_node_config *cfg;
        uint8_t mode;        /* enum cf_node_mode */
        uint8_t last_update; /* from the bootloader */
        uint32_t boot_count;
        uint32_t ticks;
        bool connected;
        bool pgm_unlocked;
        bool seed_fresh;
        bool c_erased;       /* CLEAR_MEMORY done in this session */
        bool reset_pending;
        uint8_t seed[4];
        uint8_t wrong_keys;
        uint32_t lockout_until;
        bool locked_out;
        uint8_t mta_ext[2];
        uint32_t mta_addr[2];
        uint8_t control[CF_CONTROL_SIZE];
        uint8_t staged;      /* enum cf_staged_state */
        uint8_t last_error;
        uint8_t install_failures; /* the journal's count for the image in C (status block) */
        bool c_restaged;     /* a CLEAR_MEMORY of C completed since power-on: a new image */
        /* long operation in progress */
        uint8_t busy_cmd;    /* 0 = none */
        uint8_t busy_ctr;
        uint32_t busy_addr, busy_end, busy_crc;
        uint8_t busy_sector;
        uint32_t reset_at;
        /* layout: the F4's fixed B and C, or the dual-bank node's running and inactive banks */
        uint32_t app_addr;     /* the running application's area */
        uint32_t staging_addr; /* extension 3 */
        uint8_t bank;          /* 0 single-bank, else the running bank */
        uint8_t trial;         /* enum cf_trial_state, kept up to date with the journals */
        bool busy_journal;     /* CLEAR_MEMORY: the inactive bank's journal is still to be erased */
        bool blk_mode;              /* BLOCK_MODE in this session: PROGRAMs go to blk */
        uint32_t blocks_bad;        /* BLOCK_CHECKs refused */
        struct cf_block_buf blk;    /* the unicast block buffer (the group has its own) */
        struct cf_group group; /* last: 5.5 KB of slot record */
};

void cf_ccp_slave_init(struct cf_ccp_slave *s, struct cf_hal *hal, const struct cf_node_config *cfg,
                       uint8_t mode, uint8_t last_update, uint32_t boot_count);
/* A frame received on cfg->cro_id. */
void cf_ccp_slave_rx(struct cf_ccp_slave *s, const uint8_t *data, uint8_t dlc);
/* While joined: true and the group CAN id the port must also receive (and pass to group_rx). */
bool cf_ccp_slave_group_id(const struct cf_ccp_slave *s, uint32_t *id);
/* A frame received on the group id. */
void cf_ccp_slave_group_rx(struct cf_ccp_slave *s, const uint8_t *data, uint8_t dlc);
/* Advance long operations, lockout and pending reset; count a tick of normal work. */
void cf_ccp_slave_poll(struct cf_ccp_slave *s);
/* The application is healthy: confirm the running bank's trial (dual-bank nodes). 0 when confirmed
 * now or when there is nothing to confirm; -EBUSY (flash busy: call again), or the flash's error. */
int cf_ccp_slave_confirm(struct cf_ccp_slave *s);
/* Fill the status block (extension 1). */
void cf_ccp_slave_status(struct cf_ccp_slave *s, uint8_t out[CF_STATUS_SIZE]);
