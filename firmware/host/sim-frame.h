/* The exact length on the wire of a classic CAN frame, as the simulator's bus timing counts it. */
#pragma once

#include <stdint.h>

#include "canfleet/can-frame.h"

/*
 * Bits the frame occupies on the bus: SOF through the CRC sequence with the stuff bits the
 * transmitter inserts (a complementary bit after every five equal bits, stuff bits counted in the
 * next run), then CRC delimiter, ACK slot and delimiter, EOF (7) and the 3-bit intermission before
 * the next frame may start.
 *   standard id 0x000, dlc 0: 34 zero bits (CRC-15 of zeros is 0) + 6 stuff bits + 1+2+7+3 = 53
 *   a standard data frame lies in [47 + 8 * dlc, 47 + 8 * dlc + floor((34 + 8 * dlc - 1) / 4)]
 */
unsigned sim_frame_bits(const struct cf_can_frame *f);

/* Nanoseconds the frame takes at bitrate bit/s (rounded up). */
uint64_t sim_frame_time_ns(const struct cf_can_frame *f, uint32_t bitrate);
