/* The NXP LPC17xx ROM ISP loader (UM10360 ch. 32): UU-encoded data lines, checksums, return codes,
 * the LPC1768 sector layout and the part ids, shared by canfleetd's ISP master and the simulator. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The dialogue, every line ending "\r\n" both ways (the chip accepts a lone '\r' or '\n' too):
 *   host "?"                 chip "Synchronized"       host "Synchronized" chip "OK"
 *   host "12000" (kHz)       chip "OK"                 (echo is on: the chip first repeats each line)
 *   host "A 0"               chip "0"                  echo off from here
 *   host "U 23130"           chip "0"                  unlocks E, C, G (CMD_LOCKED before)
 *   host "J"                 chip "0", "637615927"     part id in decimal (0x26013F37, LPC1768)
 *   host "W 268435968 1024"  chip "0", then the host sends UU lines, after every 20 lines and after
 *                            the last one the sum of their raw bytes in decimal; chip "OK" or "RESEND"
 *   host "P 0 29", "E 0 29", "P 0 0", "C 0 268435968 1024", "G 0 T" ...
 *   host "R 0 64"            chip "0", UU lines, checksum line; host "OK" or "RESEND"
 */

/* Raw bytes per UU line the ISP allows, and the longest line: 1 length char + 4 per 3 bytes. */
#define CF_UU_LINE_BYTES 45u
#define CF_UU_LINE_MAX   61u
/* Lines between two checksums. */
#define CF_ISP_LINES_PER_CHECKSUM 20u

/* One UU line of n (1..45) bytes, without line end, not NUL-terminated; returns the chars written
 * (1 + 4 * ceil(n / 3)), 0 for n outside 1..45. A 6-bit 0 is written as '`' (not ' ', which a line
 * reader might strip); the last group is padded with zero bits.
 *   "Cat" -> "#0V%T"                    {0x00,0x00,0x00} -> "#````"
 *   {0x01} -> "!`0``"                   45 bytes -> 'M' + 60 chars */
size_t cf_uu_encode_line(const uint8_t *data, size_t n, char *out);

/* Decode one UU line (without line end) into out; returns the byte count (the length char's value),
 * -EINVAL for a character outside ' '..'`', a length char above 'M', or a line whose length does not
 * match its length char, -ENOBUFS when out_max is too small. ' ' and '`' both decode as 0.
 *   "#0V%T" -> 3: 'C' 'a' 't'           "`" -> 0 (an empty line)   "#0V%" -> -EINVAL */
int cf_uu_decode_line(const char *line, size_t len, uint8_t *out, size_t out_max);

/* The checksum line the ISP exchanges: the sum of the raw bytes, unreduced.
 *   "Cat" -> 0x43 + 0x61 + 0x74 = 280 */
uint32_t cf_isp_checksum(const uint8_t *data, size_t n);

/* The boot ROM accepts user code only when the sum of the first 8 little-endian words of flash is 0:
 * word 7 (offset 0x1C, a reserved exception vector) carries the two's complement of words 0..6.
 * fix: set word 7 (len >= 32, else nothing); ok: check it (false for len < 32). */
void cf_lpc_vector_checksum_fix(uint8_t *image, size_t len);
bool cf_lpc_vector_checksum_ok(const uint8_t *image, size_t len);

/* UM10360 table "ISP Return Codes". */
enum cf_isp_rc {
        CF_ISP_CMD_SUCCESS = 0,
        CF_ISP_INVALID_COMMAND = 1,
        CF_ISP_SRC_ADDR_ERROR = 2,
        CF_ISP_DST_ADDR_ERROR = 3,
        CF_ISP_SRC_ADDR_NOT_MAPPED = 4,
        CF_ISP_DST_ADDR_NOT_MAPPED = 5,
        CF_ISP_COUNT_ERROR = 6,
        CF_ISP_INVALID_SECTOR = 7,
        CF_ISP_SECTOR_NOT_BLANK = 8,
        CF_ISP_SECTOR_NOT_PREPARED_FOR_WRITE_OPERATION = 9,
        CF_ISP_COMPARE_ERROR = 10,
        CF_ISP_BUSY = 11,
        CF_ISP_PARAM_ERROR = 12,
        CF_ISP_ADDR_ERROR = 13,
        CF_ISP_ADDR_NOT_MAPPED = 14,
        CF_ISP_CMD_LOCKED = 15,
        CF_ISP_INVALID_CODE = 16,
        CF_ISP_INVALID_BAUD_RATE = 17,
        CF_ISP_INVALID_STOP_BIT = 18,
        CF_ISP_CODE_READ_PROTECTION_ENABLED = 19,
};
#define CF_ISP_RC_MAX 19

/* "CMD_SUCCESS", ... the manual's name of a code; NULL for a number that is no code. */
const char *cf_isp_rc_name(int code);
/* A sentence for an operator: cf_isp_strerror(9) == "sector not prepared for write operation (P
 * must precede E and C)"; "unknown ISP return code" for a number that is no code. */
const char *cf_isp_strerror(int code);

/* The unlock code of "U". */
#define CF_ISP_UNLOCK_CODE 23130u

/* LPC17xx flash: sectors 0..15 of 4 KB (0x00000..0x0FFFF), 16..29 of 32 KB (0x10000..0x7FFFF). */
#define CF_LPC_SECTORS   30
#define CF_LPC_FLASH_MAX 0x80000u
/* On-chip RAM the ISP's W, C and R accept, and the RAM the ISP itself uses below 0x10000200
 * (UM10360: "RAM used by ISP command handler"); a master's W buffer starts at 0x10000200. */
#define CF_LPC_RAM_BASE    0x10000000u
#define CF_LPC_RAM_ISP_TOP 0x10000200u
#define CF_LPC_AHBRAM_BASE 0x2007C000u

/* The sector holding addr, -1 beyond 512 KB.  0x0FFF -> 0, 0x1000 -> 1, 0x10000 -> 16, 0x7FFFF -> 29 */
int cf_lpc_sector_of(uint32_t addr);
/* Start and size of sector s (0..29); 0 for anything else. */
uint32_t cf_lpc_sector_start(int s);
uint32_t cf_lpc_sector_size(int s);
/* The number of sectors of a part with flash_size bytes (32 KB -> 8, 256 KB -> 22, 512 KB -> 30). */
int cf_lpc_sector_count(uint32_t flash_size);

/* The byte counts C (copy RAM to flash) accepts. */
extern const uint32_t cf_lpc_copy_sizes[4]; /* 256, 512, 1024, 4096 */
bool cf_lpc_copy_size_ok(uint32_t n);

/* The LPC17xx parts (UM10360 "LPC17xx part identification numbers"), answered by "J". */
struct cf_lpc_part {
        uint32_t id;
        const char *name;
        uint32_t flash_size;
        uint32_t ram_size;     /* local SRAM at 0x10000000 */
        uint32_t ahb_ram_size; /* AHB SRAM at 0x2007C000 (0, 16 or 32 KB) */
};

/* The part with this id, NULL when unknown.  0x26013F37 -> LPC1768, 512 KB */
const struct cf_lpc_part *cf_lpc_part_by_id(uint32_t id);
/* The part by name, case-insensitive ("lpc1768", "LPC1769"), NULL when unknown. */
const struct cf_lpc_part *cf_lpc_part_by_name(const char *name);
/* All known parts; *n receives their number. */
const struct cf_lpc_part *cf_lpc_parts(size_t *n);
