/* Which bytes of an area image to send: the runs that differ from erased flash, merged where a gap is
 * cheaper than a SET_MTA. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct cf_run {
        uint32_t start; /* offset in the area */
        uint32_t len;
};

/*
 * The area was just erased, so bytes of 0xFF need not be sent. Each run costs one SET_MTA plus
 * ceil(len / 6) PROGRAM_6/PROGRAM frames; two runs separated by a gap of 0xFF are merged when
 *     ceil((a + gap + b) / 6) <= ceil(a / 6) + 1 + ceil(b / 6)
 * (sending the gap costs no more frames than the SET_MTA it saves). Greedy, left to right.
 *   "AA BB FF FF CC"         -> one run {0, 5}          (gap 2: 1 frame vs 1 + 1 + 1)
 *   "AA" + 20 x FF + "BB"    -> {0, 1}, {21, 1}         (merged would be 4 frames vs 3)
 *   all FF                   -> no run
 * *ret is malloc'ed (NULL when there is no run).
 */
int cf_plan_runs(const uint8_t *img, size_t size, struct cf_run **ret, size_t *n_ret);

/* Bytes the runs send. */
uint64_t cf_plan_bytes(const struct cf_run *runs, size_t n);
/* CROs the runs cost: one SET_MTA per run plus the PROGRAM_6/PROGRAM frames (not the final PROGRAM 0). */
uint64_t cf_plan_frames(const struct cf_run *runs, size_t n);
