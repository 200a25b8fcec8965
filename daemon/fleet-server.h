/* canfleetd as a hawkBit DDI gateway (docs/design.md §6): the Hawkbit client (hawkbit.h) mapped onto the
 * manager's nodes and jobs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Manager Manager;
typedef struct Node Node;
typedef struct FlashJob FlashJob;
typedef struct FleetServer FleetServer;

/*
 * - Every identified node (its UID known) is a target; its facts are sent again after a flash.
 * - A deployment's *.cfb artifact is downloaded once per sha256 for every action that names it
 *   (cache_dir/downloads/hawkbit-<sha256>.part for resuming, the bundle size cap), its sha256 compared
 *   with the server's and verified with trust_check() before anything else happens; once verified it
 *   is kept in the bundle cache (cache_dir/bundles/<sha256>.cfb), where a later action finds it
 *   (verified again, not downloaded).
 * - The actions of one artifact that arrive within one poll round (until every target was polled once
 *   after the first one, as the client's pacer plans it: hawkbit_round_end_usec(), at most
 *   FLEET_ROUND_MAX_S) become one job through manager_start_update(), the path of canfleetctl update.
 *   Actions of that artifact that are ready after the round's job started (their target polled late)
 *   wait for a round of their own, so that they too share one job instead of one each. When that refuses the set (a node of other hardware, a rollback, a
 *   busy node), each node is started alone, so that only the nodes at fault fail, each with its reason.
 * - download: skip waits for the server to change it; update: skip or a closed maintenance window:
 *   download and verify, feedback "downloaded", install when the deployment is handed over again
 *   with the window open.
 * - Feedback: proceeding at every step of the node's flash, closed/success when it confirmed the new
 *   trailer after its reset, closed/failure with the reason otherwise.
 * - cancelAction: accepted while the node's step is before rebooting (DISCONNECT(end) not sent): that
 *   node is cancelled in its job (flash_job_cancel) and the acceptance sent once it is; rejected after.
 */
#define FLEET_ROUND_MAX_S 30U

/* Does nothing and returns 0 when the configuration has no hawkbit block. *error for config problems. */
int fleet_server_new(Manager *m, FleetServer **ret, char **error);
FleetServer *fleet_server_free(FleetServer *s);
/* After a reload (m->conf is the new configuration, its hawkbit block checked with
 * cf_conf_check_hawkbit()): a block that appeared starts a fleet server, one that went stops it (the
 * jobs of its actions go on; the action files in state_dir let a later start report them), a changed
 * url/tenant/token (file or contents)/ca_file/poll_max_s/max_requests_per_s/controller_prefix restarts the client with
 * the actions in progress and the outbox kept. Failures are logged, never fatal. */
void fleet_server_reload(Manager *m, FleetServer **s);

/* Hooks of the manager (NULL s is fine). */
void fleet_server_node_seen(FleetServer *s, Node *n);         /* identified (scan, flash) */
void fleet_server_flash_changed(FleetServer *s, FlashJob *f); /* a node's step in a job changed */

/* The hawkBit action ids job serves (Job.HawkbitActions), ascending, in a new array (*ret NULL and *n 0:
 * none, a local job). Works without a fleet server (the marks stay with the job's history). -errno. */
int fleet_server_job_actions(const Manager *m, unsigned job, uint64_t **ret, size_t *n);

/* Manager.FleetServerState: the connection as structured fields (a{sv}, empty without a fleet server).
 * Times are CLOCK_REALTIME µs, 0 for "not yet"/"none". */
struct fleet_server_state {
        const char *url, *tenant;
        const char *state;        /* hawkbit_link_str() */
        uint64_t last_poll;       /* the last answered poll */
        const char *last_error;   /* "" none yet */
        uint64_t last_error_time;
        uint64_t next_poll;       /* the earliest planned poll (or the end of a 429 hold, if later) */
        unsigned targets;
        unsigned feedback_queued; /* in the outbox, not delivered yet */
        uint64_t requests;
        uint64_t *actions;        /* the action ids the gateway works on (downloading, waiting, in a job) */
        size_t n_actions;
        char last_error_buf[256];
};
/* Fills st (free st->actions); -ENODATA without a fleet server. */
int fleet_server_get_state(FleetServer *s, struct fleet_server_state *st);

/* For Manager.FleetServer: "" when there is no fleet server. */
void fleet_server_describe(FleetServer *s, char *buf, size_t size);
