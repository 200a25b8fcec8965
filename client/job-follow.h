/* Following one job of canfleetd until it ends: signals subscribed before the job can change, the
 * progress display fed from them, Ctrl-C answered with how to go on. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-client.h"
#include "progress.h"

struct cf_follow {
        sd_bus *bus;
        sd_event *event;
        sd_bus_slot *slots[4];
        sd_bus_slot *getall;
        sd_event_source *signals[2];
        char *path;
        struct cf_job_info job;
        bool have_props;
        bool finished;
        bool show;
        bool interruptible;
        struct cf_progress progress;
};

/* Subscribe to every job's changes on bus (call it before the call that starts or cancels the job, so
 * that no change is lost). show: draw the progress on stdout. interruptible: SIGINT and SIGTERM are
 * blocked from now on and, while following, end it with CF_EXIT_INTERRUPTED and the message
 * "job N continues in canfleetd: canfleetctl watch N / canfleetctl cancel N". Exit code. */
int cf_follow_subscribe(struct cf_follow *w, sd_bus *bus, bool show, bool interruptible);

/* Whether SIGINT/SIGTERM arrived since cf_follow_subscribe (so that a job is not started after it). */
bool cf_follow_interrupt_pending(void);

/* Wait until the job at path ends; returns the exit code for its final state (0 done, 1 failed,
 * 4 cancelled), or 3/5/130 when canfleetd went away, the job does not exist, or the user interrupted. */
int cf_follow_run(struct cf_follow *w, const char *path);

void cf_follow_done(struct cf_follow *w);

/* The job number at the end of a job object path (0 when none). */
uint32_t cf_job_id_from_path(const char *path);
