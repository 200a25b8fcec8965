/* The SLCAN transport's reading of adapter lines: which carry a frame for CCP, which are answers. */
#pragma once

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
