/* CCP 2.1 as canfleet uses it (docs/design.md §3): constants and the codec of every CRO and DTO. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every frame is 8 bytes (DLC 8); a frame with another DLC is not CCP and is ignored.
 *   CRO (master -> slave):            [CMD][CTR][p0 p1 p2 p3 p4 p5]
 *   Command return DTO (slave -> m.): [0xFF][ERR][CTR][d0 d1 d2 d3 d4]
 *   Event DTO:                        [0xFE][ERR][...]
 * Addresses and sizes are big-endian; the station address of CONNECT/DISCONNECT/TEST is
 * little-endian. Unused bytes are sent as 0x00 by our encoders and ignored by our decoders.
 */
#define CF_CCP_FRAME_LEN 8u
#define CF_CCP_PID_CRM   0xFFu /* command return message */
#define CF_CCP_PID_EVENT 0xFEu

enum cf_ccp_cmd {
        CF_CCP_CONNECT = 0x01,
        CF_CCP_SET_MTA = 0x02,
        CF_CCP_DNLOAD = 0x03,
        CF_CCP_UPLOAD = 0x04,
        CF_CCP_TEST = 0x05,
        CF_CCP_DISCONNECT = 0x07,
        CF_CCP_BUILD_CHKSUM = 0x0E,
        CF_CCP_SHORT_UP = 0x0F,
        CF_CCP_CLEAR_MEMORY = 0x10,
        CF_CCP_GET_SEED = 0x12,
        CF_CCP_UNLOCK = 0x13,
        CF_CCP_EXCHANGE_ID = 0x17,
        CF_CCP_PROGRAM = 0x18,
        CF_CCP_MOVE = 0x19,
        CF_CCP_GET_CCP_VERSION = 0x1B,
        CF_CCP_ACTION_SERVICE = 0x21,
        CF_CCP_PROGRAM_6 = 0x22,
        CF_CCP_DNLOAD_6 = 0x23,
};

enum cf_ccp_err {
        CF_CCP_OK = 0x00,
        CF_CCP_ERR_BUSY = 0x10,            /* C1: wait, retry */
        CF_CCP_ERR_DAQ_BUSY = 0x11,        /* C1 */
        CF_CCP_ERR_TIMEOUT = 0x12,         /* C1: internal time-out */
        CF_CCP_ERR_KEY_REQUEST = 0x18,     /* C1 */
        CF_CCP_ERR_SESSION_REQUEST = 0x19, /* C1 */
        CF_CCP_ERR_COLD_START = 0x20,      /* C2: re-initialise */
        CF_CCP_ERR_CAL_INIT = 0x21,        /* C2 */
        CF_CCP_ERR_DAQ_INIT = 0x22,        /* C2 */
        CF_CCP_ERR_CODE_UPDATE = 0x23,     /* C2 */
        CF_CCP_ERR_UNKNOWN_CMD = 0x30,     /* C3: stop */
        CF_CCP_ERR_SYNTAX = 0x31,          /* C3 */
        CF_CCP_ERR_OUT_OF_RANGE = 0x32,    /* C3 */
        CF_CCP_ERR_ACCESS_DENIED = 0x33,   /* C3 */
        CF_CCP_ERR_OVERLOAD = 0x34,        /* C3 */
        CF_CCP_ERR_ACCESS_LOCKED = 0x35,   /* C3 */
        CF_CCP_ERR_NOT_AVAILABLE = 0x36,   /* C3 */
};

/* Error category: 0 for OK, 1 (wait and retry, 2 tries), 2 (re-initialise), 3 (stop); 3 for codes not listed. */
int cf_ccp_err_class(uint8_t err);
/* "busy", "access locked" …; "unknown error" for codes not listed. Never NULL. */
const char *cf_ccp_err_str(uint8_t err);
/* "CONNECT", "PROGRAM_6" …; NULL for codes not listed. */
const char *cf_ccp_cmd_name(uint8_t cmd);
/* Master time-out for a command, in ms: 25; PROGRAM/PROGRAM_6 100; CLEAR_MEMORY, BUILD_CHKSUM, MOVE 30000. */
uint32_t cf_ccp_timeout_ms(uint8_t cmd);

/* Resource bits (GET_SEED, EXCHANGE_ID, UNLOCK). */
#define CF_CCP_RES_CAL 0x01u
#define CF_CCP_RES_DAQ 0x02u
#define CF_CCP_RES_PGM 0x40u

/* Memory transfer address extensions (seed 000). */
enum cf_ccp_ext {
        CF_CCP_EXT_DEVICE_ID = 0, /* 16 bytes, read-only: uid[12], hw_id u16 LE, bootloader version u16 LE */
        CF_CCP_EXT_STATUS = 1,    /* node status block, read-only (canfleet/node-status.h) */
        CF_CCP_EXT_CONTROL = 2,   /* read/write control memory */
        CF_CCP_EXT_STAGING = 3,   /* area C; offset 0 = 0x08060000 */
};

/* DISCONNECT types */
#define CF_CCP_DISCONNECT_TEMPORARY 0x00u
#define CF_CCP_DISCONNECT_END       0x01u

/* Payload limits */
#define CF_CCP_MAX_SIZE5 5u /* DNLOAD, UPLOAD, PROGRAM, SHORT_UP */
#define CF_CCP_MAX_SIZE6 6u /* DNLOAD_6, PROGRAM_6 */

/* Byte order helpers. */
static inline uint32_t cf_be32_get(const uint8_t *p)
{
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}
static inline void cf_be32_put(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}
static inline uint16_t cf_le16_get(const uint8_t *p)
{
        return (uint16_t) (p[0] | p[1] << 8);
}
static inline void cf_le16_put(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}
static inline uint32_t cf_le32_get(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static inline void cf_le32_put(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
        p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

/* ---- Master side: encoders of CROs. Each fills all 8 bytes of out. ---------------------------- */

/* cf_ccp_cro_connect(f, 0x01, 0x0203): 01 01 03 02 00 00 00 00 */
void cf_ccp_cro_connect(uint8_t out[8], uint8_t ctr, uint16_t station);
/* cf_ccp_cro_get_ccp_version(f, 2, 2, 1): 1B 02 02 01 00 00 00 00 */
void cf_ccp_cro_get_ccp_version(uint8_t out[8], uint8_t ctr, uint8_t main, uint8_t release);
/* cf_ccp_cro_exchange_id(f, 3): 17 03 00 00 00 00 00 00 (no master ID bytes) */
void cf_ccp_cro_exchange_id(uint8_t out[8], uint8_t ctr);
/* cf_ccp_cro_get_seed(f, 4, CF_CCP_RES_PGM): 12 04 40 00 00 00 00 00 */
void cf_ccp_cro_get_seed(uint8_t out[8], uint8_t ctr, uint8_t resource);
/* cf_ccp_cro_unlock(f, 5, key): 13 05 k0 k1 k2 k3 k4 k5 */
void cf_ccp_cro_unlock(uint8_t out[8], uint8_t ctr, const uint8_t key[6]);
/* cf_ccp_cro_set_mta(f, 6, 0, 3, 0x00001234): 02 06 00 03 00 00 12 34 */
void cf_ccp_cro_set_mta(uint8_t out[8], uint8_t ctr, uint8_t mta, uint8_t ext, uint32_t addr);
/* cf_ccp_cro_clear_memory(f, 7, 0x40000): 10 07 00 04 00 00 00 00 */
void cf_ccp_cro_clear_memory(uint8_t out[8], uint8_t ctr, uint32_t size);
/* cf_ccp_cro_program(f, 8, d, 3): 18 08 03 d0 d1 d2 00 00 ; n 0..5 (0 ends a sequence) */
void cf_ccp_cro_program(uint8_t out[8], uint8_t ctr, const uint8_t *data, uint8_t n);
/* cf_ccp_cro_program6(f, 9, d): 22 09 d0 d1 d2 d3 d4 d5 */
void cf_ccp_cro_program6(uint8_t out[8], uint8_t ctr, const uint8_t data[6]);
/* cf_ccp_cro_dnload(f, 10, d, 2): 03 0A 02 d0 d1 00 00 00 ; n 1..5 */
void cf_ccp_cro_dnload(uint8_t out[8], uint8_t ctr, const uint8_t *data, uint8_t n);
/* cf_ccp_cro_dnload6(f, 11, d): 23 0B d0 d1 d2 d3 d4 d5 */
void cf_ccp_cro_dnload6(uint8_t out[8], uint8_t ctr, const uint8_t data[6]);
/* cf_ccp_cro_upload(f, 12, 4): 04 0C 04 00 00 00 00 00 ; n 1..5 */
void cf_ccp_cro_upload(uint8_t out[8], uint8_t ctr, uint8_t n);
/* cf_ccp_cro_short_up(f, 13, 4, 1, 0x08): 0F 0D 04 01 00 00 00 08 */
void cf_ccp_cro_short_up(uint8_t out[8], uint8_t ctr, uint8_t n, uint8_t ext, uint32_t addr);
/* cf_ccp_cro_build_chksum(f, 14, 0x3FFFC): 0E 0E 00 03 FF FC 00 00 */
void cf_ccp_cro_build_chksum(uint8_t out[8], uint8_t ctr, uint32_t size);
/* cf_ccp_cro_disconnect(f, 15, CF_CCP_DISCONNECT_END, 0x0005): 07 0F 01 00 05 00 00 00 */
void cf_ccp_cro_disconnect(uint8_t out[8], uint8_t ctr, uint8_t type, uint16_t station);
/* cf_ccp_cro_test(f, 16, 0x0005): 05 10 05 00 00 00 00 00 */
void cf_ccp_cro_test(uint8_t out[8], uint8_t ctr, uint16_t station);

/* ---- Master side: decoding a DTO ------------------------------------------------------------- */

struct cf_ccp_dto {
        uint8_t pid;     /* 0xFF command return, 0xFE event */
        uint8_t err;     /* return code */
        uint8_t ctr;     /* echoed counter (command return only) */
        uint8_t data[5]; /* bytes 3..7 */
};

/* Parse a received frame. Returns 0, or -1 when dlc != 8 or the PID is neither 0xFF nor 0xFE.
 *   FF 00 07 04 12 34 56 78 -> pid FF, err 00, ctr 07, data 04 12 34 56 78 */
int cf_ccp_dto_parse(const uint8_t *frame, uint8_t dlc, struct cf_ccp_dto *out);

/* Accessors of command-return payloads (call only on pid 0xFF, err 0): */
/* GET_SEED: data[0] protection status (1 = protected), data[1..4] seed. */
/* UNLOCK: data[0] current privilege status (resource mask now unlocked). */
/* PROGRAM, PROGRAM_6, DNLOAD, DNLOAD_6: data[0] MTA0 extension, data[1..4] MTA0 address after the write, BE. */
static inline uint32_t cf_ccp_dto_mta(const struct cf_ccp_dto *d)
{
        return cf_be32_get(&d->data[1]);
}
/* BUILD_CHKSUM: data[0] checksum size (4), data[1..4] checksum BE. */
static inline uint32_t cf_ccp_dto_chksum(const struct cf_ccp_dto *d)
{
        return cf_be32_get(&d->data[1]);
}
/* EXCHANGE_ID: data[0] length of slave device ID, data[1] data type qualifier,
 * data[2] resource availability mask, data[3] resource protection mask. */
/* GET_CCP_VERSION: data[0] main version, data[1] release. */

/* ---- Slave side: decoding a CRO, encoding a DTO ---------------------------------------------- */

/* A CRO split into its parts; p points at the 6 parameter bytes of the frame. */
struct cf_ccp_cro {
        uint8_t cmd;
        uint8_t ctr;
        const uint8_t *p;
};

/* Returns 0, or -1 when dlc != 8. */
int cf_ccp_cro_parse(const uint8_t *frame, uint8_t dlc, struct cf_ccp_cro *out);

/* Command return: FF err ctr d0..d4 ; data may be NULL, n <= 5, the rest zero.
 *   cf_ccp_dto_reply(f, 0x00, 0x07, (uint8_t[]){2, 1}, 2): FF 00 07 02 01 00 00 00 */
void cf_ccp_dto_reply(uint8_t out[8], uint8_t err, uint8_t ctr, const uint8_t *data, uint8_t n);
/* Reply to a write (PROGRAM/DNLOAD…): FF err ctr ext a3 a2 a1 a0 */
void cf_ccp_dto_reply_mta(uint8_t out[8], uint8_t err, uint8_t ctr, uint8_t ext, uint32_t addr);
/* Event: FE err 00 00 00 00 00 00 */
void cf_ccp_dto_event(uint8_t out[8], uint8_t err);

/* ---- Group transfer (docs/design.md §7) ----------------------------------------------------------
 *
 * ACTION_SERVICE CRO: [0x21][CTR][service u16 BE][4 parameter bytes]. canfleet's services:
 *   GROUP_JOIN  0xCF01 [group CAN id u16 BE][tag u16 BE]
 *               DTO ok: FF 00 CTR [slots received since the join u16 BE] 00 00 00
 *               (0 on a new join; a repeated join with the same id and tag keeps the record and
 *               says how much of it is there, so a master that lost the node can resume)
 *   GROUP_LEAVE 0xCF02
 *               DTO ok: FF 00 CTR 00 00 00 00 00 (also when not joined)
 *   GAP         0xCF03 [from slot u16 BE]
 *               DTO ok: FF 00 CTR [first missing slot >= from u16 BE][run u16 BE] 00
 *               first = 0xFFFF (CF_GROUP_SLOT_NONE) and run = 0 when nothing from `from` on is
 *               missing; run = how many slots in a row from first are missing.
 * A node without these services answers UNKNOWN_CMD (0x30, no ACTION_SERVICE at all: the seed's
 * demo firmware) or OUT_OF_RANGE (0x32, an unknown service number): the master then uses plain CCP.
 *
 * Group data frame on the group CAN id, DLC 8, no answer:
 *   [slot u16 BE][6 bytes] = bytes [slot*6, slot*6+6) of area C; slot < CF_GROUP_SLOTS. The last
 *   slot (43690) covers the area's last 4 bytes (the CRC); its 2 bytes past the end are ignored
 *   (sent as 0xFF). Slots whose in-area bytes are all 0xFF are not sent: erased flash already
 *   holds them. A node's GAP cannot tell them from lost ones, so a master skips all-0xFF slots in
 *   the runs GAP reports (cf_ccp_group_frame() says which they are). A master may still send
 *   some (the few inside a payload, say): a node records them like any other slot, without
 *   programming anything, and GAP then reports only real losses.
 */
/* ---- Confirming a trial (dual-bank nodes, docs/design.md §9) --------------------------------------
 *
 *   CONFIRM     0xCF10 (no parameters; PGM must be unlocked)
 *               DTO ok: FF 00 CTR 00 00 00 00 00 when the running bank's trial was confirmed now,
 *               or when there is nothing to confirm (no trial pending, a single-bank node);
 *               errors: ACCESS_LOCKED (0x35) PGM locked; BUSY (0x10) the flash is busy (an erase
 *               runs: retry); NOT_AVAILABLE (0x36) the confirmation could not be written (a flash
 *               error: the trial stays pending); OUT_OF_RANGE (0x32) a node without the service.
 *               Confirming is what the application does itself once it runs healthily; a gateway
 *               confirms after its own checks.
 * A dual-bank node on trial refuses CLEAR_MEMORY of the staging extension (its previous bank, the
 * way back) with ACCESS_DENIED (0x33): confirm first, or reset it to revert.
 * Services 0xCF04-0xCF0F belong to other features. */
#define CF_CCP_SVC_CONFIRM     0xCF10u
/* cf_ccp_cro_confirm(f, 4): 21 04 CF 10 00 00 00 00 */
void cf_ccp_cro_confirm(uint8_t out[8], uint8_t ctr);

#define CF_CCP_SVC_GROUP_JOIN  0xCF01u
#define CF_CCP_SVC_GROUP_LEAVE 0xCF02u
#define CF_CCP_SVC_GAP         0xCF03u

#define CF_GROUP_AREA_SIZE 0x40000u /* area C, = CF_IMAGE_AREA_SIZE */
#define CF_GROUP_SLOT_SIZE 6u
#define CF_GROUP_SLOTS     ((CF_GROUP_AREA_SIZE + CF_GROUP_SLOT_SIZE - 1u) / CF_GROUP_SLOT_SIZE) /* 43691 */
#define CF_GROUP_SLOT_NONE 0xFFFFu
#define CF_GROUP_ID_DEFAULT 0x680u /* cro_base + 0: no node has station 0 */

/* cf_ccp_cro_group_join(f, 1, 0x680, 0xBEEF): 21 01 CF 01 06 80 BE EF */
void cf_ccp_cro_group_join(uint8_t out[8], uint8_t ctr, uint16_t group_id, uint16_t tag);
/* cf_ccp_cro_group_leave(f, 2): 21 02 CF 02 00 00 00 00 */
void cf_ccp_cro_group_leave(uint8_t out[8], uint8_t ctr);
/* cf_ccp_cro_gap(f, 3, 0x1234): 21 03 CF 03 12 34 00 00 */
void cf_ccp_cro_gap(uint8_t out[8], uint8_t ctr, uint16_t from);

/* Service number of an ACTION_SERVICE CRO: cro->p[0..1] BE. */
static inline uint16_t cf_ccp_cro_service(const struct cf_ccp_cro *c)
{
        return (uint16_t) (c->p[0] << 8 | c->p[1]);
}

/* GAP answer (pid 0xFF, err 0): FF 00 03 12 34 00 05 00 -> first 0x1234, run 5 */
static inline uint16_t cf_ccp_dto_gap_first(const struct cf_ccp_dto *d)
{
        return (uint16_t) (d->data[0] << 8 | d->data[1]);
}
static inline uint16_t cf_ccp_dto_gap_run(const struct cf_ccp_dto *d)
{
        return (uint16_t) (d->data[2] << 8 | d->data[3]);
}
/* GROUP_JOIN answer: slots received since the join (the same bytes as GAP's first). */
static inline uint16_t cf_ccp_dto_join_received(const struct cf_ccp_dto *d)
{
        return cf_ccp_dto_gap_first(d);
}

/* Slave: the GAP answer. cf_ccp_dto_reply_gap(f, 3, 0x1234, 5): FF 00 03 12 34 00 05 00 */
void cf_ccp_dto_reply_gap(uint8_t out[8], uint8_t ctr, uint16_t first, uint16_t run);

/* Master: the group frame of one slot of a whole area image (CF_GROUP_AREA_SIZE bytes). Returns 1
 * when the frame must be sent, 0 when the slot is all 0xFF (not sent), -1 for slot >= CF_GROUP_SLOTS.
 *   slot 1 of an area starting 00 01 02 … : 00 01 06 07 08 09 0A 0B
 *   slot 43690: AA AA c0 c1 c2 c3 FF FF (c = the CRC bytes at 0x3FFFC) */
int cf_ccp_group_frame(uint8_t out[8], const uint8_t *area, uint16_t slot);

/* Slave: a group frame's slot and data. 0, or -1 when dlc != 8.
 *   00 01 d0 d1 d2 d3 d4 d5 -> slot 1, data -> d0 */
int cf_ccp_group_frame_parse(const uint8_t *frame, uint8_t dlc, uint16_t *slot, const uint8_t **data);

/* ---- Checked blocks (docs/design.md §7): data is checked before it is programmed ------------------
 *
 * A bit flipped on an SLCAN serial line passes CAN's own CRC (the adapter computes it after the
 * damage). So that such a frame is never written to flash, a node in block mode collects the bytes
 * of area C per block in RAM and programs them only when the block's check value, sent by the
 * gateway, matches; otherwise it drops them and the gateway sends the block again.
 *
 * Blocks: C is cut at multiples of CF_BLOCK_SIZE (96 bytes = 16 group slots = 24 words); the last
 * block (2730) is 64 bytes. Check value of block k at offset off = k * 96:
 *     cf_block_crc(off, bytes, len) = CRC32 (canfleet/crc32.h) of the LE word `off`, then the
 *     block's len bytes as LE words
 * The offset is part of it, so bytes that a corrupted address or slot number put into the wrong block
 * never pass for that block's (two equal blocks, e.g. of zeros, still have different values).
 *
 *   BLOCK_MODE  0xCF04 [block size u16 BE][00 00]
 *               DTO ok: FF 00 CTR [block size u16 BE] 00 00 00
 *               Needs PGM unlocked (ACCESS_LOCKED); a size other than CF_BLOCK_SIZE: OUT_OF_RANGE.
 *               For the rest of the session PROGRAM/PROGRAM_6 into C go to the node's block buffer
 *               (range checks as before; a write must stay inside one block, OUT_OF_RANGE
 *               otherwise); a write into another block than the buffered one starts that block
 *               afresh from flash, dropping the unchecked one. A group member (GROUP_JOIN in this
 *               session, before or after) takes group frames the same way, see below; its
 *               membership keeps block mode across sessions.
 *   BLOCK_CHECK 0xCF05 [crc32 BE]
 *               DTO ok: FF 00 CTR [block u16 BE] 00 00 00 — the buffered block matched and is in
 *               flash now (bytes already there are left alone; a byte that is neither erased nor
 *               equal fails it); a member records its slots.
 *               ACCESS_DENIED: no match (the buffer is dropped), or nothing buffered and the block
 *               before MTA0 (the one the PROGRAMs just filled) does not hold it in flash either;
 *               so a check whose OK answer was lost is answered OK again. BUSY: flash busy, ask
 *               again. Needs block mode (ACCESS_DENIED) and PGM unlocked (ACCESS_LOCKED).
 *
 * Group check frame (on the group id, after the data frames of a block):
 *     [0xFF 0xC0][block u16 BE][crc32 BE]
 * Its first two bytes read as a slot number past the area, so a node without block mode ignores
 * it. A member in block mode buffers data frames of one block; the check frame of that block
 * commits them as BLOCK_CHECK does, and then every slot of the block counts as received (its
 * all-0xFF slots too: the check proves them). A frame of another block starts that block afresh; a
 * check frame of a block that is not buffered is ignored. What does not check out stays missing:
 * GAP reports it and the gateway repairs it by unicast (block mode, BLOCK_CHECK).
 */
#define CF_CCP_SVC_BLOCK_MODE  0xCF04u
#define CF_CCP_SVC_BLOCK_CHECK 0xCF05u

#define CF_BLOCK_SIZE        96u
#define CF_BLOCKS            ((CF_GROUP_AREA_SIZE + CF_BLOCK_SIZE - 1u) / CF_BLOCK_SIZE) /* 2731 */
#define CF_BLOCK_SLOTS       (CF_BLOCK_SIZE / CF_GROUP_SLOT_SIZE)                        /* 16 */
#define CF_GROUP_CHECK_MARK  0xFFC0u

/* Length of block k (96, the last one 64); 0 for k >= CF_BLOCKS. */
static inline uint32_t cf_block_len(uint32_t k)
{
        if (k >= CF_BLOCKS)
                return 0;
        uint32_t off = k * CF_BLOCK_SIZE;
        return CF_GROUP_AREA_SIZE - off < CF_BLOCK_SIZE ? CF_GROUP_AREA_SIZE - off : CF_BLOCK_SIZE;
}
/* The check value above; len a multiple of 4. */
uint32_t cf_block_crc(uint32_t off, const uint8_t *bytes, uint32_t len);

/* cf_ccp_cro_block_mode(f, 4, 96): 21 04 CF 04 00 60 00 00 */
void cf_ccp_cro_block_mode(uint8_t out[8], uint8_t ctr, uint16_t size);
/* cf_ccp_cro_block_check(f, 5, 0x11223344): 21 05 CF 05 11 22 33 44 */
void cf_ccp_cro_block_check(uint8_t out[8], uint8_t ctr, uint32_t crc);

/* Master: the check frame of block k of a whole area image. 1 when it must be sent (the block has a
 * slot that is sent), 0 when the block is all 0xFF (no frame of it is sent), -1 for k >= CF_BLOCKS.
 *   block 1: FF C0 00 01 c3 c2 c1 c0 (c = cf_block_crc(96, area + 96, 96)) */
int cf_ccp_group_check_frame(uint8_t out[8], const uint8_t *area, uint16_t k);
/* Node: 0 and the block and check value when frame is a check frame, -1 otherwise. */
int cf_ccp_group_check_parse(const uint8_t *frame, uint8_t dlc, uint16_t *k, uint32_t *crc);

/* ---- Addressing (docs/design.md §3) --------------------------------------------------------------- */

#define CF_CCP_CRO_BASE_DEFAULT 0x680u
#define CF_CCP_DTO_BASE_DEFAULT 0x6C0u
#define CF_CCP_STATION_MIN      1u
#define CF_CCP_STATION_MAX      63u
