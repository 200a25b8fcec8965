/* Showing a job's per-node progress: bars redrawn in place on a terminal, sparse plain lines otherwise. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bus-client.h"

struct cf_progress_seen;

struct cf_progress {
        FILE *out;
        bool tty; /* redraw with ANSI escapes instead of appending lines */
        bool header_done;
        size_t lines_drawn;            /* lines of the last TTY frame, to move the cursor back over */
        uint64_t last_draw_us;         /* CLOCK_MONOTONIC, to keep redraws below ~20/s */
        struct cf_progress_seen *seen; /* per node: last step and tenth printed (plain mode) */
        size_t n_seen;
};

/* Start a display on out; tty chooses the redrawn bars. */
void cf_progress_init(struct cf_progress *p, FILE *out, bool tty);

/* Show the job's current state. force redraws a TTY frame even right after the previous one. */
void cf_progress_update(struct cf_progress *p, const struct cf_job_info *job, bool force);

/* The final frame and a summary: counts per outcome on out, each failed node's error on stderr. */
void cf_progress_finish(struct cf_progress *p, const struct cf_job_info *job);

void cf_progress_done(struct cf_progress *p);

/* Percentage of a node's transfer (0-100); a node with nothing to send is 100 once done. */
unsigned cf_progress_percent(const struct cf_job_node *n);

/* "123.4 KiB"-style size into buf. */
const char *cf_format_bytes(char *buf, size_t size, uint64_t bytes);
