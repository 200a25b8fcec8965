/* A classic CAN 2.0 frame as the gateway, the simulator and the SLCAN codec carry it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define CF_CAN_SFF_MAX 0x7FFu      /* largest 11-bit (standard) identifier */
#define CF_CAN_EFF_MAX 0x1FFFFFFFu /* largest 29-bit (extended) identifier */

/*
 * CCP uses only standard data frames; the others exist because a bus carries them: the daemon's
 * transports drop them, the simulator passes them on (they take bus time like any frame).
 *   {.id = 0x681, .dlc = 8, .data = {...}}        a CRO to station 1
 *   {.id = 0x12345, .ext = true, .rtr = true, .dlc = 3}  an extended remote frame: no data on the wire
 */
struct cf_can_frame {
        uint32_t id; /* <= CF_CAN_SFF_MAX, or <= CF_CAN_EFF_MAX when ext */
        bool ext;    /* 29-bit identifier */
        bool rtr;    /* remote frame: dlc is sent, data is not */
        uint8_t dlc; /* 0..8 */
        uint8_t data[8];
};
