/* bxCAN bit timing: prescaler and segments for an exact bitrate, sample point near 87.5 %. */
#include <errno.h>

#include "can-timing.h"

int cf_can_timing_compute(uint32_t pclk_hz, uint32_t bitrate, struct cf_can_timing *t)
{
        int best_err = -1;

        if (bitrate == 0 || pclk_hz == 0)
                return -EINVAL;
        for (unsigned tq = 25; tq >= 8; tq--) {
                uint64_t per_bit = (uint64_t) bitrate * tq;
                if (pclk_hz % per_bit)
                        continue;
                uint64_t presc = pclk_hz / per_bit;
                if (presc < 1 || presc > 1024)
                        continue;
                /* Sample point at the end of sync + ts1. */
                unsigned ts1 = (tq * 7 + 4) / 8 - 1;
                unsigned ts2 = tq - 1 - ts1;
                if (ts1 > 16) {
                        ts1 = 16;
                        ts2 = tq - 17;
                }
                if (ts1 < 1 || ts2 < 1 || ts2 > 8)
                        continue;
                unsigned sp = (1 + ts1) * 1000 / tq;
                int err = sp > 875 ? (int) sp - 875 : 875 - (int) sp;
                if (best_err < 0 || err < best_err) {
                        best_err = err;
                        t->prescaler = (uint16_t) presc;
                        t->tq = (uint8_t) tq;
                        t->ts1 = (uint8_t) ts1;
                        t->ts2 = (uint8_t) ts2;
                        t->sjw = (uint8_t) (ts2 < 4 ? ts2 : 4);
                        t->sample_permille = (uint16_t) sp;
                }
        }
        return best_err < 0 ? -EINVAL : 0;
}

uint32_t cf_can_timing_btr(const struct cf_can_timing *t)
{
        return (uint32_t) (t->sjw - 1u) << 24 | (uint32_t) (t->ts2 - 1u) << 20 |
               (uint32_t) (t->ts1 - 1u) << 16 | (uint32_t) (t->prescaler - 1u);
}
