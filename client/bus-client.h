/* canfleetctl's side of the io.canfleet.Gateway1 D-Bus API: connecting, reading objects, exit codes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define CF_BUS_NAME      "io.canfleet.Gateway1"
#define CF_MANAGER_PATH  "/io/canfleet/Gateway1"
#define CF_JOB_PREFIX    "/io/canfleet/Gateway1/job"
#define CF_MANAGER_IFACE "io.canfleet.Gateway1.Manager"
#define CF_NODE_IFACE    "io.canfleet.Gateway1.Node"
#define CF_JOB_IFACE     "io.canfleet.Gateway1.Job"

/* canfleetctl's exit codes: scripts rely on them, so they never change meaning. */
enum {
        CF_EXIT_OK = 0,          /* every node updated / the command succeeded */
        CF_EXIT_FAILED = 1,      /* at least one node failed, the job failed, or another error */
        CF_EXIT_USAGE = 2,       /* bad command line */
        CF_EXIT_UNREACHABLE = 3, /* canfleetd cannot be reached over D-Bus */
        CF_EXIT_CANCELLED = 4,   /* the job was cancelled */
        CF_EXIT_REFUSED = 5, /* canfleetd refused: invalid image, hardware mismatch, permission, busy… */
        /* update/watch interrupted (Ctrl-C: 128 + SIGINT, as shells report it); the job goes on */
        CF_EXIT_INTERRUPTED = 130,
};

#define CF_HINT_UNREACHABLE "is canfleetd running? systemctl status canfleetd"

static inline void cf_freep(void *p)
{
        free(*(void **) p);
}
static inline void cf_closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
static inline void cf_bus_unrefp(sd_bus **b)
{
        sd_bus_flush_close_unref(*b);
}
static inline void cf_bus_message_unrefp(sd_bus_message **m)
{
        sd_bus_message_unref(*m);
}
#define _cf_cleanup_(f)          __attribute__((cleanup(f)))
#define _cf_cleanup_free_        _cf_cleanup_(cf_freep)
#define _cf_cleanup_close_       _cf_cleanup_(cf_closep)
#define _cf_cleanup_bus_         _cf_cleanup_(cf_bus_unrefp)
#define _cf_cleanup_bus_message_ _cf_cleanup_(cf_bus_message_unrefp)
#define _cf_cleanup_bus_error_   _cf_cleanup_(sd_bus_error_free)

struct cf_bus_info {
        char *name;
        char *transport;
        char *link;
        uint32_t bitrate;
        char *error; /* why the link is not up, "" when up */
};

struct cf_node_info {
        char *path;
        char *bus;
        uint16_t station;
        uint32_t cro_id, dto_id;
        uint16_t hardware_id;
        char *uid;
        uint16_t bootloader_version;
        char *version;
        uint32_t release;
        char *mode;
        char *state;
        char *last_error;
        uint64_t last_seen;
        bool configured;
        char *running_sha256;     /* "" unknown */
        char *last_update_result; /* "" none, "done", "up-to-date", "failed" */
        uint32_t last_update_job;
        uint64_t last_update_time;
        char *last_update_status; /* the node's own report (status block) */
        uint8_t bank;             /* dual-bank: the bank it runs from (1, 2); 0 a single-bank node */
        char *trial;              /* dual-bank: "none", "pending", "confirmed", "reverted"; "" single-bank */
        char *protocol;           /* "ccp", "lpc-isp", "adi-uart" (NULL: an older canfleetd) */
        char *identity;           /* a serial node's loader's answer, "" unknown */
};

struct cf_job_node {
        char *path;
        char *node; /* "BUS:SA" */
        char *step;
        char *error;
        uint64_t bytes_done, bytes_total;
};

struct cf_job_info {
        char *path;
        uint32_t id;
        char *state;
        char *image_version;
        uint16_t image_hardware_id;
        uint32_t image_release;
        char *image_sha256;
        char *target; /* "ccp", "lpc-isp", "adi-uart" (NULL: an older canfleetd) */
        struct cf_job_node *nodes;
        size_t n_nodes;
        uint64_t created, finished, started;
        char **skipped; /* pairs: node, reason */
        size_t n_skipped;
        uint64_t *hawkbit_actions; /* the fleet server's action ids this job serves; none: a local job */
        size_t n_hawkbit_actions;
};

/* Manager.FleetServerState (times CLOCK_REALTIME µs, 0: not yet / none). present: a fleet server is
 * configured (the daemon sent the fields). */
struct cf_fleet_server_info {
        bool present;
        char *url, *tenant, *state, *last_error;
        uint64_t last_poll, last_error_time, next_poll, requests;
        uint32_t targets, feedback_queued;
        uint64_t *actions; /* in progress */
        size_t n_actions;
};

struct cf_manager_info {
        char *version;
        struct cf_bus_info *buses;
        size_t n_buses;
        char **nodes; /* object paths */
        size_t n_nodes;
        char **jobs;
        size_t n_jobs;
        char *fleet_server; /* the hawkBit connection in one line; NULL/"" without one */
        struct cf_fleet_server_info fleet;
};

/* Open the system bus (DBUS_SYSTEM_BUS_ADDRESS when set). On failure prints why and returns
 * CF_EXIT_UNREACHABLE; CF_EXIT_OK otherwise. */
int cf_bus_connect(sd_bus **ret);

/* Print a failed call's error in the operator's words (fleet-error.h: "canfleetctl: WHAT: message", or
 * only "no job 99" when the message names the object; plus a hint when canfleetd is not there) and
 * return the exit code it maps to. what may be NULL. r is the negative errno sd-bus returned. */
int cf_bus_report_error(const char *what, const sd_bus_error *error, int r);

/* Map a failed call onto an exit code without printing. */
int cf_bus_error_exit_code(const sd_bus_error *error, int r);

/* Read every property of an object; the message is positioned at the a{sv} of a GetAll reply or
 * of a PropertiesChanged signal (only the properties present are updated). Negative errno. */
int cf_manager_info_read(sd_bus_message *m, struct cf_manager_info *info);
int cf_node_info_read(sd_bus_message *m, struct cf_node_info *info);
int cf_job_info_read(sd_bus_message *m, struct cf_job_info *info);

/* GetAll of one object into info (info->path set for nodes and jobs). Exit code, error printed. */
int cf_manager_get(sd_bus *bus, struct cf_manager_info *info);
int cf_node_get(sd_bus *bus, const char *path, struct cf_node_info *info);
int cf_job_get(sd_bus *bus, const char *path, struct cf_job_info *info);

/* GetAll of every path into a new array of n (freed with cf_nodes_free/cf_jobs_free, also on failure,
 * which returns the exit code with the objects read so far kept). */
int cf_nodes_get(sd_bus *bus, char **paths, size_t n, struct cf_node_info **ret);
void cf_nodes_free(struct cf_node_info *v, size_t n);
int cf_jobs_get(sd_bus *bus, char **paths, size_t n, struct cf_job_info **ret);
void cf_jobs_free(struct cf_job_info *v, size_t n);

/* "BUS:SA" of a node into buf. */
void cf_node_name(const struct cf_node_info *n, char *buf, size_t size);

/* A node's error without the "BUS:SA: " or "BUS:SA " canfleetd starts it with, for text that names the
 * node itself:
 *   cf_strip_node_prefix("bus0:1: no answer", "bus0:1") == "no answer"
 *   cf_strip_node_prefix("bus0:1 runs 2.0.0 on trial", "bus0:1") == "runs 2.0.0 on trial" */
const char *cf_strip_node_prefix(const char *error, const char *node);

void cf_manager_info_done(struct cf_manager_info *info);
void cf_node_info_done(struct cf_node_info *info);
void cf_job_info_done(struct cf_job_info *info);

/* A job reference on the command line: "3" or "/io/canfleet/Gateway1/job/3". Returns a newly
 * allocated object path, or NULL (errno EINVAL) when the reference is neither. */
char *cf_job_path_from_arg(const char *arg);

/* Job states: "running" and the final ones. */
bool cf_job_state_is_final(const char *state);
/* Exit code for a final job state: done 0, failed 1, cancelled 4. */
int cf_job_state_exit_code(const char *state);
/* The exit code of a finished job: its state's, except that a cancelled job whose every node runs
 * the new image (done or up-to-date) is 0. */
int cf_job_exit_code(const struct cf_job_info *job);
