/* The SLCAN transport's reading of adapter lines: which carry a frame for CCP, which are answers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "can-transport.h"

/*
 * The line codec itself is canfleet/slcan.h. We send only standard data frames ("tIIILDD..\r"); the
 * adapter sends received frames the same way, optionally with a timestamp, and answers commands
 * with '\r' (ok), "z\r"/"Z\r" (frame queued) or BEL (error).
 */

/* Classify one received line (without its '\r').
 *   returns 1 and fills f for a standard data frame:  "t6C12FF00" -> id 0x6C1, dlc 2, FF 00
 *                                                     "t6C12FF001A2B" (timestamp) -> the same
 *   returns 0 for a line that carries no CCP frame:   "", "z", "Z", "V0101", extended ("T...") or
 *                                                     remote ("r..."/"R...") frames when well formed
 *   returns -EINVAL or -ERANGE as cf_slcan_parse() for any other line: "t6C1", "q", "t8000"
 */
int cf_slcan_rx_line(const char *line, size_t len, struct cf_can_frame *f);

/*
 * The line reader: bytes from the adapter in, whole lines out. A line ends with '\r'; '\n' is
 * ignored anywhere (some adapters send "\r\n"); BEL ends an answer too (the adapter refused a
 * command) and drops what came before it on that line. A line longer than CF_SLCAN_RX_LINE_MAX
 * cannot be a frame: it is dropped whole, up to the next '\r' or BEL, and the line after it is read
 * as usual. Feed one byte at a time:
 *   "t6C12FF00\r"        -> CF_SLCAN_RX_LINE at the '\r', with line = "t6C12FF00", len 9
 *   "\a"                 -> CF_SLCAN_RX_BEL
 *   70 x 'A', "\r"       -> CF_SLCAN_RX_OVERLONG at the '\r'
 *   70 x 'A', "\a"       -> CF_SLCAN_RX_OVERLONG at the BEL; then "t6C12FF00\r" -> CF_SLCAN_RX_LINE
 * The line stays in r->line until the next byte is fed.
 */
#define CF_SLCAN_RX_LINE_MAX 64

struct cf_slcan_reader {
        char line[CF_SLCAN_RX_LINE_MAX];
        size_t len;
        bool overflow;
};

enum cf_slcan_rx {
        CF_SLCAN_RX_MORE,     /* no line ended */
        CF_SLCAN_RX_LINE,     /* a line ended: r->line, *len bytes (maybe 0: an "ok" answer) */
        CF_SLCAN_RX_BEL,      /* BEL: the adapter refused a command */
        CF_SLCAN_RX_OVERLONG, /* an overlong line ended (with '\r' or BEL) and was dropped */
};

enum cf_slcan_rx cf_slcan_reader_feed(struct cf_slcan_reader *r, char c, size_t *len);
