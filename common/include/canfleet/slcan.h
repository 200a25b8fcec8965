/* The Lawicel SLCAN line codec: frame lines both ways, "Sn" bitrate codes, and the hex digits they use. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "canfleet/can-frame.h"

/*
 * A line ends with '\r' (some hosts add '\n', which the line readers skip). Frame lines are the same
 * whether the host transmits them or the adapter reports a received frame:
 *   tIIILDD..       standard data frame: 3 hex digits of id (<= 7FF), DLC digit 0..8, 2*DLC hex digits
 *   TIIIIIIIILDD..  extended data frame: 8 hex digits of id (<= 1FFFFFFF)
 *   rIIIL           standard remote frame: no data digits
 *   RIIIIIIIIL      extended remote frame
 * An adapter switched to timestamps ("Z1") appends 4 hex digits of milliseconds (0..EA5F, wrapping
 * every minute) to the frames it reports. Hex digits are read in either case and written upper case.
 * Everything else an adapter says ('\r' ok, BEL error, "z"/"Z" transmitted, "V1013" version…) is
 * the business of the transport that reads it, not of this codec.
 */

/* Longest line with its '\r' and a NUL: "T" + 8 + 1 + 16 + 4 timestamp digits + "\r" = 31, + 1. */
#define CF_SLCAN_LINE_MAX 32

/* The timestamp argument and result when a line has none. */
#define CF_SLCAN_NO_TIMESTAMP (-1)

/* The value of one hex digit, either case; -1 for any other character.
 *   cf_hex_digit('7') == 7, cf_hex_digit('a') == 10, cf_hex_digit('F') == 15, cf_hex_digit('g') == -1 */
int cf_hex_digit(char c);

/* Parse one frame line, without its '\r'. On success fills f (data bytes past the DLC are zero) and,
 * when timestamp is not NULL, stores the line's timestamp or CF_SLCAN_NO_TIMESTAMP. The line is
 * checked in full before the id's range; f and *timestamp are untouched on failure.
 * Returns 0, -EINVAL for a malformed line, -ERANGE for a well-formed line whose id is too large.
 *   "t6C12FF00"              -> 0: id 0x6C1, dlc 2, data FF 00, no timestamp
 *   "t6C12FF001A2B"          -> 0: the same frame, timestamp 0x1A2B
 *   "t6818010100000000000A"  -> 0: id 0x681, dlc 8, data 01 01 00 00 00 00 00 0A
 *   "T1FFFFFFF2abCD"         -> 0: extended id 0x1FFFFFFF, dlc 2, data AB CD
 *   "r7FF8"                  -> 0: remote, id 0x7FF, dlc 8
 *   "t68110102", "t6C12FF0"  -> -EINVAL (DLC and data disagree)
 *   "t6C19", "tXYZ0", "z", ""  -> -EINVAL
 *   "t8000"                  -> -ERANGE (standard id above 0x7FF)
 *   "T200000000"             -> -ERANGE (extended id above 0x1FFFFFFF)
 */
int cf_slcan_parse(const char *line, size_t len, struct cf_can_frame *f, int32_t *timestamp);

/* Format f as a line with its '\r' and a terminating NUL; the returned length counts the '\r', not
 * the NUL. timestamp: CF_SLCAN_NO_TIMESTAMP, or 0..0xFFFF to append as 4 hex digits. An id too large
 * for its kind is cut to 11 or 29 bits and a dlc above 8 is sent as 8: the line is always well formed.
 *   {id 0x681, dlc 2, AB CD}, no timestamp              -> "t6812ABCD\r" (10)
 *   {id 0x681, dlc 8, 01 02 03 04 05 06 07 08}          -> "t68180102030405060708\r" (22)
 *   {id 0x6C1, dlc 2, FF 00}, timestamp 0xEA5F          -> "t6C12FF00EA5F\r" (14)
 *   {id 0x12345, ext, rtr, dlc 3}                       -> "R000123453\r" (11)
 */
size_t cf_slcan_format(const struct cf_can_frame *f, int32_t timestamp, char out[CF_SLCAN_LINE_MAX]);

/* The bitrates of "S0".."S8": 10k 20k 50k 100k 125k 250k 500k 800k 1M. */

/* The code of a bitrate in bit/s, 0 when it has none.
 *   cf_slcan_bitrate_code(500000) == '6', cf_slcan_bitrate_code(300000) == 0 */
char cf_slcan_bitrate_code(uint32_t bitrate);

/* The bitrate of a code, 0 for anything but '0'..'8'.
 *   cf_slcan_bitrate('0') == 10000, cf_slcan_bitrate('8') == 1000000, cf_slcan_bitrate('9') == 0 */
uint32_t cf_slcan_bitrate(char code);
