/* Showing a job's progress. On a terminal: one summary line (done/failed/active, overall %, elapsed,
 * ETA, bytes per second; the nodes that wait for their bus) and one line per active, waiting or failed
 * node, redrawn in place and never taller than the terminal. Piped or TERM=dumb: plain lines, one per
 * node step or wait reason and one per overall tenth.
 * Either way the last line says how the job ended and how long it took. */
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
        uint64_t last_draw_us;         /* CLOCK_MONOTONIC, to keep redraws below ~10/s */
        uint64_t start_us;             /* CLOCK_REALTIME of the first picture, when the job has no Created */
        int plain_tenth;               /* last overall tenth printed (plain mode), -1 none */
        struct cf_progress_seen *seen; /* per node: last step printed (plain mode) */
        size_t n_seen;
        unsigned rows, cols; /* the terminal's size at the last frame */
};

/* Whether out should get the redrawn display: a terminal, unless TERM is "dumb". */
bool cf_progress_want_tty(FILE *out);

/* Start a display on out; tty chooses the redrawn frame. */
void cf_progress_init(struct cf_progress *p, FILE *out, bool tty);

/* Show the job's current state. force redraws a TTY frame even right after the previous one. */
void cf_progress_update(struct cf_progress *p, const struct cf_job_info *job, bool force);

/* The final picture: on a terminal the frame gives way to the failed nodes; then one line with the
 * outcome per node and the job's duration on out, each failed node's error on stderr. */
/* With --all: the configured nodes canfleetd left out and why, on one line (nothing when none). */
void cf_progress_print_skipped(FILE *out, const struct cf_job_info *job);
void cf_progress_finish(struct cf_progress *p, const struct cf_job_info *job);

/* Leave the display where it is (interrupted, or canfleetd went away): the cursor ends below it. */
void cf_progress_abandon(struct cf_progress *p);

void cf_progress_done(struct cf_progress *p);

/* A node's progress in percent, its whole update counted: connecting and unlocking take the first 2%,
 * erasing up to 5%, the transfer 5-90% by bytes, verifying, rebooting (reset) and confirming (the new
 * image installed and running) the last 10%; a finished node (done, failed, cancelled) is 100. */
unsigned cf_progress_percent(const struct cf_job_node *n);

/* "123.4 KiB"-style size into buf. */
const char *cf_format_bytes(char *buf, size_t size, uint64_t bytes);

/* "42s", "3m07s", "1h02m" into buf. */
const char *cf_format_duration(char *buf, size_t size, uint64_t usec);
