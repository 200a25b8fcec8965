/* canfleetd's hawkBit DDI client: every node a target, polled on sd-event timers through the fetcher. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "fetcher.h"

/*
 * One Hawkbit per fleet server. It polls each target's root resource
 * (<url>/<tenant>/controller/v1/<controllerId>) with Authorization: GatewayToken, answers configData,
 * fetches deployments and cancel requests and hands them to its owner, and delivers the owner's
 * feedback through a persistent outbox. It never blocks and never stops local work: every request is
 * one fetch (max_tries 1) whose result this module handles itself.
 *
 * Scheduling (the design asks for polls "spreading … so that it never bursts"):
 *  - every request, polls and feedback alike, takes a slot of a per-server pacer: slots are at least
 *    1/max_requests_per_s apart, so the server never sees more than that rate from this gateway;
 *  - a target's first poll is at a random point of the first HAWKBIT_FIRST_SPREAD_S seconds (or
 *    poll_max_s when shorter; seeded PRNG), each later one config.polling.sleep after the previous
 *    answer, capped at poll_max_s, plus a jitter of up to 10 % of that interval; a target never has
 *    two polls queued;
 *  - 429: the whole server is held for Retry-After (default 30 s, capped at poll_max_s); 5xx and
 *    network errors: that request's target backs off 2, 4, 8 … s, capped at poll_max_s.
 *
 * Feedback: hawkbit_feedback()/hawkbit_cancel_feedback() write the message into
 * <state_dir>/hawkbit-outbox/ (one file each, written atomically and fsynced) before returning, then
 * deliver it, oldest first and one at a time per target. A message leaves the outbox when the server
 * takes it (2xx) or answers 410 (the action is gone: its other queued messages go too, and later
 * feedback for it is refused with -ESTALE); 400/404/405/406 also drop it (the server will
 * never take that body, and keeping it would block the target's later feedback forever) and set
 * last_error. Anything else (network, 401/403, 409, 429, 5xx) keeps it and retries with the
 * back-off above, across restarts: hawkbit_new() loads what an earlier process left.
 *
 * Callbacks come from the event loop only, never from inside a call of this API; they may call this
 * API (hawkbit_target_remove() of their own target included) but not hawkbit_free():
 *  - deployment_available: a deploymentBase the target has not been told about, or whose
 *    download/update/maintenanceWindow changed since (e.g. the window opened). Not for actions whose
 *    closing feedback was given. d and its strings live until the callback returns. Nothing about
 *    handed-over actions is kept across a restart (only the outbox is): after one, a running action
 *    is handed over again, and the owner's job store says whether it is already under way.
 *    A deployment without a "*.cfb" artifact is not handed over: the module answers closed/failure
 *    itself ("no *.cfb artifact in the deployment").
 *  - cancel_requested: the server asks to cancel action_id, once per action; answer with
 *    hawkbit_cancel_feedback() (accepted until the node's DISCONNECT(end), rejected after).
 *
 * Errors: negative errno. Nothing here logs above debug; the last failure is in
 * hawkbit_get_status().last_error for the owner (D-Bus, canfleetctl status).
 */

#define HAWKBIT_UID_SIZE            12
#define HAWKBIT_CONTROLLER_PREFIX   "canfleet-"
#define HAWKBIT_POLL_MAX_DEFAULT    300U /* s */
#define HAWKBIT_RATE_DEFAULT        10U  /* requests per second per server */
#define HAWKBIT_FIRST_SPREAD_S      10U
#define HAWKBIT_RETRY_AFTER_DEFAULT 30U /* s, for a 429 without Retry-After */
#define HAWKBIT_BACKOFF_FIRST_S     2U
#define HAWKBIT_DETAILS_MAX         512U /* bytes of one details line; longer ones are cut */

typedef struct Hawkbit Hawkbit;
typedef struct HawkbitTarget HawkbitTarget;

struct hawkbit_config {
        const char *url;                /* the server, e.g. "https://hawkbit.example:8443" (no tenant) */
        const char *tenant;             /* e.g. "DEFAULT" */
        const char *gateway_token_file; /* its first line is the token */
        const char *ca_file;            /* trust anchors instead of the system store; NULL: system */
        const char *state_dir;          /* the outbox lives in <state_dir>/hawkbit-outbox */
        unsigned poll_max_s;            /* longest sleep honoured (0: HAWKBIT_POLL_MAX_DEFAULT) */
        const char *controller_prefix;  /* NULL: HAWKBIT_CONTROLLER_PREFIX */
        unsigned max_requests_per_s;    /* 0: HAWKBIT_RATE_DEFAULT */
        uint64_t seed;                  /* of the jitter PRNG; 0: from the clock */
        uint64_t request_timeout_usec;  /* stall time-out of one request (0: the fetcher's 30 s) */
};

/* What configData tells the server about a node (all strings copied). */
struct hawkbit_node {
        uint8_t uid[HAWKBIT_UID_SIZE];
        uint32_t hw_id;
        const char *bootloader_version;
        const char *bus;
        unsigned station;
        const char *version;
        uint32_t release;
};

enum hawkbit_handling {
        HAWKBIT_SKIP,
        HAWKBIT_ATTEMPT,
        HAWKBIT_FORCED,
};

struct hawkbit_deployment {
        uint64_t action_id;
        enum hawkbit_handling download, update; /* "attempt" when the server left them out */
        bool maintenance_window_given;          /* false: no window for this action */
        bool maintenance_window_available;      /* true when not given */
        const char *version;                    /* of the chunk that carries the artifact */
        const char *artifact_name;              /* "*.cfb" */
        const char *artifact_url;               /* "download" link, else "download-http" */
        char artifact_sha256[65];               /* lowercase hex */
        uint64_t artifact_size;
};

enum hawkbit_feedback {
        HAWKBIT_FEEDBACK_PROCEEDING, /* execution proceeding, result none: one step, with its details */
        HAWKBIT_FEEDBACK_DOWNLOADED, /* downloaded and verified, waiting for the maintenance window */
        HAWKBIT_FEEDBACK_SUCCESS,    /* closed/success: the node reset and reports the new trailer */
        HAWKBIT_FEEDBACK_FAILURE,    /* closed/failure: details say why */
};

struct hawkbit_callbacks {
        void (*deployment_available)(Hawkbit *h, HawkbitTarget *t, const struct hawkbit_deployment *d,
                                     void *userdata);
        void (*cancel_requested)(Hawkbit *h, HawkbitTarget *t, uint64_t action_id, void *userdata);
};

/* The connection as the last answer showed it. */
enum hawkbit_link {
        HAWKBIT_LINK_CONNECTING,   /* nothing answered yet */
        HAWKBIT_LINK_ONLINE,       /* the last request was answered (2xx, 304, or a 4xx about one resource) */
        HAWKBIT_LINK_UNREACHABLE,  /* no answer: connection, TLS, DNS, time-out */
        HAWKBIT_LINK_SERVER_ERROR, /* 5xx */
        HAWKBIT_LINK_RATE_LIMITED, /* 429: every request held for Retry-After */
        HAWKBIT_LINK_UNAUTHORIZED, /* 401/403: the gateway token is refused */
};
/* "connecting", "online", "unreachable", "server-error", "rate-limited", "unauthorized" */
const char *hawkbit_link_str(enum hawkbit_link l);

struct hawkbit_status {
        enum hawkbit_link link;
        uint64_t last_poll_realtime_usec;  /* CLOCK_REALTIME of the last answered poll, 0: none yet */
        char last_error[256];              /* the most recent failure, "" when none yet */
        uint64_t last_error_realtime_usec; /* when it happened, 0: none yet */
        uint64_t next_poll_usec;           /* CLOCK_MONOTONIC of the earliest planned poll, 0: none planned */
        uint64_t held_until_usec;          /* CLOCK_MONOTONIC end of a 429 hold, 0: not held */
        unsigned targets;
        unsigned actions_in_progress; /* deployments handed over and not closed yet */
        unsigned outbox;              /* feedback messages not delivered yet */
        uint64_t requests;            /* requests sent */
        uint64_t not_modified;        /* polls answered 304 */
};

/* c's strings are copied; the token file is read now (-ENOENT, -EACCES…, -EINVAL when empty; -EINVAL
 * also for a missing url/tenant/state_dir or a url that is not http(s)). The outbox is loaded and its
 * delivery starts. f and e must outlive the Hawkbit. */
int hawkbit_new(sd_event *e, Fetcher *f, const struct hawkbit_config *c, const struct hawkbit_callbacks *cb,
                void *userdata, Hawkbit **ret);
/* Stops every request (no callbacks); the outbox stays on disk. Returns NULL. */
Hawkbit *hawkbit_free(Hawkbit *h);

/* Start polling a node. -EEXIST when its uid is already a target. */
int hawkbit_target_add(Hawkbit *h, const struct hawkbit_node *n, HawkbitTarget **ret);
/* New facts about the node (a flash changed version/release, it moved bus or station): configData is
 * sent again, after the target's next poll, when anything changed. */
int hawkbit_target_update(HawkbitTarget *t, const struct hawkbit_node *n);
/* Stop polling it (its outbox messages are still delivered). NULL is fine. */
void hawkbit_target_remove(HawkbitTarget *t);
HawkbitTarget *hawkbit_target_find(Hawkbit *h, const uint8_t uid[HAWKBIT_UID_SIZE]);
/* prefix + 24 lowercase hex of the uid. */
const char *hawkbit_target_controller_id(const HawkbitTarget *t);
void hawkbit_target_set_userdata(HawkbitTarget *t, void *userdata);
void *hawkbit_target_get_userdata(const HawkbitTarget *t);
/* CLOCK_MONOTONIC µs of the next planned poll (0: one is queued or running). */
uint64_t hawkbit_target_next_poll_usec(const HawkbitTarget *t);

/* Queue feedback for a node's action (the node need not be a target now: after a restart it may
 * not be yet). details: one line (NULL allowed except for FAILURE: -EINVAL; cut at the first line
 * break and at HAWKBIT_DETAILS_MAX bytes). SUCCESS and FAILURE close the action, as does a 410 for
 * it: later feedback for it is refused with -ESTALE. Returns once the message is on
 * disk (-errno of writing it otherwise, and then nothing was queued). */
int hawkbit_feedback(Hawkbit *h, const uint8_t uid[HAWKBIT_UID_SIZE], uint64_t action_id,
                     enum hawkbit_feedback kind, const char *details);
/* Answer a cancel request: accepted → closed/success (the action ends), otherwise rejected/none. */
int hawkbit_cancel_feedback(Hawkbit *h, const uint8_t uid[HAWKBIT_UID_SIZE], uint64_t action_id,
                            bool accepted, const char *details);

/* Request headers for downloading an artifact URL (fetch_options.headers): the Authorization header
 * when url is on the server's own origin (scheme, host, port), none otherwise so that the token never
 * goes to a third party (a CDN link). Valid until hawkbit_free(). */
const char *const *hawkbit_download_headers(const Hawkbit *h, const char *url);

void hawkbit_get_status(const Hawkbit *h, struct hawkbit_status *ret);

/* CLOCK_MONOTONIC µs by which every target will have been polled once more and a deployment it was
 * given fetched, if the server answers at once: the planned polls laid on the pacer's slots behind what is
 * queued now (and a 429 hold), then one more slot per target. For gathering the targets that get the
 * same deployment in one poll round. */
uint64_t hawkbit_round_end_usec(const Hawkbit *h);

/* The pacer's decisions: CLOCK_MONOTONIC µs slots of the last requests (at most n, oldest first; the
 * module keeps the last HAWKBIT_SLOT_LOG). Returns how many were copied. For tests and diagnostics. */
#define HAWKBIT_SLOT_LOG 1024U
size_t hawkbit_slot_log(const Hawkbit *h, uint64_t *ret, size_t n);
