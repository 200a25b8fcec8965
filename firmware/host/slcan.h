/* The Lawicel SLCAN ASCII protocol: the codec of frame lines and the adapter's command set. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim-frame.h"

/*
 * Lines end with '\r' ('\n' is ignored). The adapter answers '\r' for OK and BEL ('\a') for an
 * error. Frame lines, sent by the host (transmit) and by the adapter (received frames):
 *   tIIILDD..      standard data frame: 3 hex id (<= 7FF), 1 digit DLC 0..8, 2*DLC hex bytes
 *   TIIIIIIIILDD.. extended data frame: 8 hex id (<= 1FFFFFFF)
 *   rIIIL / RIIIIIIIIL  remote frames (no data)
 * Hex digits may be upper or lower case; we send upper case.
 *   slcan_parse_frame("t6818010100000000000", ...) == 0: id 0x681, dlc 8, data 01 01 00 .. 00
 *   slcan_parse_frame("t68110102", ...) == -EINVAL (DLC 1 but 2 bytes of data)
 *   slcan_parse_frame("t8000", ...) == -ERANGE (standard id above 0x7FF)
 */
#define SLCAN_MAX_LINE 32 /* longest valid command is 26 characters (T, 8+1+16 digits) */

/* Parse a frame line (without the terminator). 0, -EINVAL for a malformed line, -ERANGE for an
 * id out of range. */
int slcan_parse_frame(const char *line, size_t len, struct sim_frame *f);

/* Format f as a received-frame line with its '\r'; with timestamp, 4 hex digits of milliseconds
 * (0..0xEA5F) before it (Lawicel "Z1"). Returns the length; out needs SLCAN_MAX_LINE bytes.
 *   id 0x6C1, dlc 2, data FF 00 -> "t6C12FF00\r" */
size_t slcan_format_frame(const struct sim_frame *f, bool timestamp, uint16_t ms, char *out);

/* Bitrate of the Lawicel "Sn" code (S0 10k .. S8 1M); 0 for an unknown code. */
uint32_t slcan_bitrate_of(char code);
