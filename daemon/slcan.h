/* The host side of the Lawicel SLCAN line codec: transmit lines out, received frame lines in. */
#pragma once

#include <stddef.h>

#include "can-transport.h"

/*
 * Lines end with '\r' ('\n' is ignored). We send only standard data frames:
 *   tIIILDD..\r   3 hex digits id (<= 7FF), DLC digit 0..8, 2*DLC hex digits, upper case
 * The adapter sends received frames the same way, optionally with 4 hex digits of timestamp after
 * the data; it answers commands with '\r' (ok), "z\r"/"Z\r" (frame queued) or BEL (error).
 */
#define CF_SLCAN_LINE_MAX 32

/* Returns the length written (a NUL follows):
 *   {0x681, dlc 2, AB CD}                    -> "t6812ABCD\r"
 *   {0x681, dlc 8, 01 02 03 04 05 06 07 08}  -> "t68180102030405060708\r" (22 characters) */
size_t cf_slcan_encode(const struct cf_can_frame *f, char out[CF_SLCAN_LINE_MAX]);

/* Decode one line (without its '\r').
 *   returns 1 and fills f for a standard data frame:  "t6C12FF00" -> id 0x6C1, dlc 2, FF 00
 *                                                     "t6C12FF001A2B" (timestamp) -> the same
 *   returns 0 for a line that carries no CCP frame:   "", "z", "Z", "V0101", extended ("T...") or
 *                                                     remote ("r..."/"R...") frames when well formed
 *   returns -EINVAL for anything else:                "t6C1", "t6C19...", "t6C12FF0", "tXYZ0", "q"
 */
int cf_slcan_decode(const char *line, size_t len, struct cf_can_frame *f);

/* The Lawicel "Sn" code of a bitrate ('0' 10k .. '8' 1M), 0 when there is none. */
char cf_slcan_bitrate_code(uint32_t bitrate);
