/* bxCAN bit timing from the APB1 clock and a bitrate: pure logic, unit-tested on the host. */
#pragma once

#include <stdint.h>

struct cf_can_timing {
        uint16_t prescaler; /* 1..1024 */
        uint8_t tq;         /* time quanta per bit, 8..25 */
        uint8_t ts1, ts2;   /* segments in tq (sync segment of 1 tq not included) */
        uint8_t sjw;
        uint16_t sample_permille;
};

/*
 * An exact division (a CAN bit rate may not be approximated) with the sample point nearest 87.5 %
 * (CiA 301's recommendation). 0, or -EINVAL when no exact setting exists.
 *   cf_can_timing_compute(42000000, 500000, &t) == 0: prescaler 6, tq 14, ts1 11, ts2 2 (85.7 %)
 *   cf_can_timing_compute(16000000, 500000, &t) == 0: prescaler 2, tq 16, ts1 13, ts2 2 (87.5 %)
 */
int cf_can_timing_compute(uint32_t pclk_hz, uint32_t bitrate, struct cf_can_timing *t);

/* The CAN_BTR value (RM0090 §32.9.2) for t, normal mode. */
uint32_t cf_can_timing_btr(const struct cf_can_timing *t);
