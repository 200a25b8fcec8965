/* hawkBit DDI client: polls, configData, deployments, cancel requests and a persistent feedback outbox. */
#include "hawkbit.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "conf.h"
#include "hawkbit-ddi.h"
#include "hawkbit-outbox.h"
#include "log.h"

#define USEC_PER_SEC   UINT64_C(1000000)
#define TIMER_ACCURACY 1000 /* 1 ms: the pacer's slots are tens of ms apart */
#define OUTBOX_DIR     "hawkbit-outbox"
#define CLOSED_MAX     1024U /* closed action ids remembered */

enum req_kind {
        REQ_POLL,
        REQ_CONFIG,
        REQ_DEPLOYMENT,
        REQ_CANCEL,
        REQ_FEEDBACK,
};

struct req;
typedef void (*req_done_fn)(struct req *q, int r, long status, const uint8_t *data, size_t size, Fetch *x);

/* One request: waiting in the pacer's queue, then running as a fetch. */
struct req {
        Hawkbit *h;
        struct req *prev, *next; /* in h->queue while waiting */
        struct req **owner;      /* the pointer that names this request, cleared when it ends */
        enum req_kind kind;
        HawkbitTarget *t;
        struct msg *msg;
        char *url, *body, *if_none_match;
        const char *method;
        Fetch *fetch;
        bool queued;
        req_done_fn done;
};

/* One feedback message of the outbox. */
struct msg {
        Hawkbit *h;
        struct msg *prev, *next; /* in seq order */
        struct outbox_record rec;
        bool closes;
        struct req *req;
        unsigned failures;
        uint64_t not_before;
};

struct HawkbitTarget {
        Hawkbit *h;
        HawkbitTarget *prev, *next;
        uint8_t uid[HAWKBIT_UID_SIZE];
        char *cid, *root_url;
        void *userdata;

        char *config_data; /* the configData body this node should have */
        char *config_sent; /* the one the server took */
        bool config_link;  /* the server asked for it */

        sd_event_source *poll_timer;
        uint64_t next_poll;
        unsigned sleep_s; /* the server's config.polling.sleep, 0: not said yet */
        unsigned failures;
        char *etag;
        struct req *poll_req, *config_req, *dep_req, *cancel_req;

        char *dep_href, *cancel_href; /* from the last root answered 200 */
        char *dep_href_done;          /* the deployment href fetched and handled */
        char *cancel_href_done;       /* the cancel request fetched and handed over */
        bool notified;
        uint64_t notified_action;
        enum hawkbit_handling notified_download, notified_update;
        bool notified_mw_given, notified_mw_available;
        uint64_t cancel_notified;
};

struct Hawkbit {
        sd_event *event;
        Fetcher *fetcher;
        struct hawkbit_callbacks cb;
        void *userdata;

        char *url, *tenant, *ca_file, *prefix, *outbox_dir;
        char *auth_header;
        const char *headers[2];
        const char *no_headers[1];
        unsigned poll_max_s;
        uint64_t interval_usec, timeout_usec;
        uint64_t rng;

        HawkbitTarget *targets;
        unsigned n_targets;

        struct req *queue, *queue_tail;
        sd_event_source *pacer;
        uint64_t next_slot, hold_until;
        uint64_t slots[HAWKBIT_SLOT_LOG];
        size_t n_slots;

        struct msg *msgs, *msgs_tail;
        unsigned n_msgs;
        uint64_t next_seq;
        sd_event_source *outbox_timer;

        uint64_t closed[CLOSED_MAX];
        size_t n_closed;

        uint64_t last_poll_realtime, requests, not_modified;
        char last_error[256];
        uint64_t last_error_realtime;
        enum hawkbit_link link;
};

static uint64_t now_realtime(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

const char *hawkbit_link_str(enum hawkbit_link l)
{
        switch (l) {
        case HAWKBIT_LINK_CONNECTING:
                return "connecting";
        case HAWKBIT_LINK_ONLINE:
                return "online";
        case HAWKBIT_LINK_UNREACHABLE:
                return "unreachable";
        case HAWKBIT_LINK_SERVER_ERROR:
                return "server-error";
        case HAWKBIT_LINK_RATE_LIMITED:
                return "rate-limited";
        case HAWKBIT_LINK_UNAUTHORIZED:
                return "unauthorized";
        }
        return "unknown";
}

static bool streq_ptr(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

static uint64_t now_usec(Hawkbit *h)
{
        uint64_t t = 0;
        if (sd_event_now(h->event, CLOCK_MONOTONIC, &t) < 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                t = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
        }
        return t;
}

static void set_error(Hawkbit *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(Hawkbit *h, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->last_error, sizeof h->last_error, fmt, ap);
        va_end(ap);
        h->last_error_realtime = now_realtime();
        log_debug("hawkbit: %s", h->last_error);
}

/* xorshift64*: jitter only, seeded for reproducible tests. */
static uint64_t rand_below(Hawkbit *h, uint64_t n)
{
        h->rng ^= h->rng >> 12;
        h->rng ^= h->rng << 25;
        h->rng ^= h->rng >> 27;
        uint64_t v = h->rng * UINT64_C(2685821657736338717);
        return n ? v % n : 0;
}

static int arm(Hawkbit *h, sd_event_source **s, uint64_t when, sd_event_time_handler_t cb, void *userdata)
{
        if (*s) {
                int r = sd_event_source_set_time(*s, when);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
        }
        return sd_event_add_time(h->event, s, CLOCK_MONOTONIC, when, TIMER_ACCURACY, cb, userdata);
}

static bool is_closed(Hawkbit *h, uint64_t action_id)
{
        size_t n = h->n_closed < CLOSED_MAX ? h->n_closed : CLOSED_MAX;
        for (size_t i = 0; i < n; i++)
                if (h->closed[i] == action_id)
                        return true;
        return false;
}

static void mark_closed(Hawkbit *h, uint64_t action_id)
{
        if (!is_closed(h, action_id))
                h->closed[h->n_closed++ % CLOSED_MAX] = action_id;
}

/* ---- the pacer: every request takes a slot, slots at least interval_usec apart ---- */

static void req_free(struct req *q)
{
        if (!q)
                return;
        Hawkbit *h = q->h;
        if (q->queued) {
                if (q->prev)
                        q->prev->next = q->next;
                else
                        h->queue = q->next;
                if (q->next)
                        q->next->prev = q->prev;
                else
                        h->queue_tail = q->prev;
        }
        fetch_cancel(q->fetch);
        if (q->owner && *q->owner == q)
                *q->owner = NULL;
        free(q->url);
        free(q->body);
        free(q->if_none_match);
        free(q);
}

static int on_pacer(sd_event_source *s, uint64_t usec, void *userdata);

static void pacer_kick(Hawkbit *h)
{
        if (!h->queue)
                return;
        uint64_t when = h->next_slot > h->hold_until ? h->next_slot : h->hold_until;
        if (arm(h, &h->pacer, when, on_pacer, h) < 0)
                set_error(h, "Failed to arm the request timer");
}

static void on_fetch_done(Fetch *x, int r, const uint8_t *data, size_t size, const char *error,
                          void *userdata)
{
        struct req *q = userdata;
        Hawkbit *h = q->h;
        long status = fetch_status(x);
        q->fetch = NULL; /* the fetcher frees it when this returns */
        if (status == 429) {
                int64_t ra = fetch_retry_after_usec(x);
                uint64_t hold = ra >= 0 ? (uint64_t) ra : HAWKBIT_RETRY_AFTER_DEFAULT * USEC_PER_SEC;
                if (hold > h->poll_max_s * USEC_PER_SEC)
                        hold = h->poll_max_s * USEC_PER_SEC;
                if (now_usec(h) + hold > h->hold_until)
                        h->hold_until = now_usec(h) + hold;
        }
        if (r < 0)
                set_error(h, "%s", error ? error : strerror(-r));
        if (status == 0 && r < 0)
                h->link = HAWKBIT_LINK_UNREACHABLE;
        else if (status == 429)
                h->link = HAWKBIT_LINK_RATE_LIMITED;
        else if (status == 401 || status == 403)
                h->link = HAWKBIT_LINK_UNAUTHORIZED;
        else if (status >= 500)
                h->link = HAWKBIT_LINK_SERVER_ERROR;
        else if (status > 0)
                h->link = HAWKBIT_LINK_ONLINE; /* another 4xx is about one resource: the server is there */
        if (q->owner && *q->owner == q)
                *q->owner = NULL;
        q->owner = NULL;
        q->done(q, r, status, data, size, x);
        req_free(q);
        pacer_kick(h);
}

static void dispatch(Hawkbit *h, struct req *q)
{
        struct fetch_options o = {
            .ca_file = h->ca_file,
            .max_tries = 1,
            .max_size = 1024 * 1024,
            .stall_timeout_usec = h->timeout_usec,
            .headers = h->headers,
            .method = q->method,
            .body = q->body,
            .body_size = q->body ? strlen(q->body) : 0,
            .content_type = q->body ? "application/json" : NULL,
            .if_none_match = q->if_none_match,
        };
        h->requests++;
        int r = fetch_start(h->fetcher, q->url, &o, on_fetch_done, q, &q->fetch);
        if (r < 0) {
                q->fetch = NULL;
                set_error(h, "Failed to start a request to %s: %s", q->url, strerror(-r));
                if (q->owner && *q->owner == q)
                        *q->owner = NULL;
                q->owner = NULL;
                q->done(q, r, 0, NULL, 0, NULL);
                req_free(q);
        }
}

static int on_pacer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Hawkbit *h = userdata;
        (void) s;
        (void) usec;
        uint64_t now = now_usec(h);
        uint64_t slot = h->next_slot > h->hold_until ? h->next_slot : h->hold_until;
        if (!h->queue)
                return 0;
        if (slot > now) {
                pacer_kick(h);
                return 0;
        }
        if (slot < now)
                slot = now;
        struct req *q = h->queue;
        h->queue = q->next;
        if (h->queue)
                h->queue->prev = NULL;
        else
                h->queue_tail = NULL;
        q->queued = false;
        q->next = q->prev = NULL;
        h->slots[h->n_slots++ % HAWKBIT_SLOT_LOG] = slot;
        h->next_slot = slot + h->interval_usec;
        dispatch(h, q);
        pacer_kick(h);
        return 0;
}

/* Queue a request; url and body are taken (NULL: out of memory). */
static int req_queue(Hawkbit *h, enum req_kind kind, HawkbitTarget *t, struct msg *m, char *url,
                     const char *method, char *body, const char *if_none_match, req_done_fn done,
                     struct req **owner)
{
        struct req *q = calloc(1, sizeof *q);
        if (!q || !url || (method && !body)) {
                free(q);
                free(url);
                free(body);
                return -ENOMEM;
        }
        q->h = h;
        q->kind = kind;
        q->t = t;
        q->msg = m;
        q->url = url;
        q->method = method;
        q->body = body;
        q->done = done;
        if (if_none_match && !(q->if_none_match = strdup(if_none_match))) {
                req_free(q);
                return -ENOMEM;
        }
        q->queued = true;
        q->prev = h->queue_tail;
        if (h->queue_tail)
                h->queue_tail->next = q;
        else
                h->queue = q;
        h->queue_tail = q;
        q->owner = owner;
        *owner = q;
        pacer_kick(h);
        return 0;
}

/* ---- the outbox ---- */

static void target_act(HawkbitTarget *t);
static void outbox_pump(Hawkbit *h);

static void msg_free(struct msg *m)
{
        if (!m)
                return;
        Hawkbit *h = m->h;
        if (m->prev)
                m->prev->next = m->next;
        else
                h->msgs = m->next;
        if (m->next)
                m->next->prev = m->prev;
        else
                h->msgs_tail = m->prev;
        h->n_msgs--;
        req_free(m->req);
        outbox_record_clear(&m->rec);
        free(m);
}

static void msg_link(Hawkbit *h, struct msg *m)
{
        /* Keep seq order: loading reads the directory in any order. */
        struct msg *after = h->msgs_tail;
        while (after && after->rec.seq > m->rec.seq)
                after = after->prev;
        m->prev = after;
        m->next = after ? after->next : h->msgs;
        if (m->next)
                m->next->prev = m;
        else
                h->msgs_tail = m;
        if (after)
                after->next = m;
        else
                h->msgs = m;
        m->h = h;
        h->n_msgs++;
        if (m->rec.seq >= h->next_seq)
                h->next_seq = m->rec.seq + 1;
}

static char *msg_url(Hawkbit *h, const struct msg *m)
{
        return strdup_printf("%s/%s/controller/v1/%s/%s/%" PRIu64 "/feedback", h->url, h->tenant, m->rec.cid,
                             m->rec.cancel ? "cancelAction" : "deploymentBase", m->rec.action_id);
}

static uint64_t backoff_usec(Hawkbit *h, unsigned failures)
{
        uint64_t d = HAWKBIT_BACKOFF_FIRST_S * USEC_PER_SEC;
        for (unsigned i = 1; i < failures && d < h->poll_max_s * USEC_PER_SEC; i++)
                d *= 2;
        if (d > h->poll_max_s * USEC_PER_SEC)
                d = h->poll_max_s * USEC_PER_SEC;
        return d;
}

static void msg_done(struct req *q, int r, long status, const uint8_t *data, size_t size, Fetch *x)
{
        struct msg *m = q->msg;
        Hawkbit *h = q->h;
        (void) data;
        (void) size;
        (void) x;
        bool drop = false;
        if (r >= 0)
                drop = true;
        else if (status == 410) {
                set_error(
                    h, "Feedback for action %" PRIu64 " of %s dropped: the server says the action is gone",
                    m->rec.action_id, m->rec.cid);
                drop = true;
        } else if (status == 400 || status == 404 || status == 405 || status == 406) {
                set_error(
                    h, "Feedback for action %" PRIu64 " of %s dropped: the server refused it with HTTP %ld",
                    m->rec.action_id, m->rec.cid, status);
                drop = true;
        }
        if (drop) {
                uint64_t action_id = m->rec.action_id;
                _cleanup_(freep) char *cid = status == 410 ? strdup(m->rec.cid) : NULL;
                int k = outbox_record_remove(&m->rec);
                if (k < 0)
                        set_error(h, "Failed to remove %s: %s", m->rec.path, strerror(-k));
                m->req = NULL;
                msg_free(m);
                if (cid) {
                        /* The action is over: its later messages would get the same answer, and the
                         * owner's next feedback for it is refused (-ESTALE). */
                        mark_closed(h, action_id);
                        for (struct msg *o = h->msgs, *next; o; o = next) {
                                next = o->next;
                                if (o->rec.action_id == action_id && strcmp(o->rec.cid, cid) == 0 &&
                                    !o->req) {
                                        (void) outbox_record_remove(&o->rec);
                                        msg_free(o);
                                }
                        }
                }
        } else {
                m->failures++;
                m->not_before = now_usec(h) + backoff_usec(h, m->failures);
        }
        outbox_pump(h);
}

static int on_outbox_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void) s;
        (void) usec;
        outbox_pump(userdata);
        return 0;
}

/* Send what can go now: each target's oldest message, when its back-off allows. */
static void outbox_pump(Hawkbit *h)
{
        uint64_t now = now_usec(h), wake = UINT64_MAX;
        for (struct msg *m = h->msgs; m; m = m->next) {
                if (m->req)
                        continue;
                bool first = true;
                for (struct msg *o = h->msgs; o != m; o = o->next)
                        if (strcmp(o->rec.cid, m->rec.cid) == 0) {
                                first = false;
                                break;
                        }
                if (!first)
                        continue;
                if (m->not_before > now) {
                        if (m->not_before < wake)
                                wake = m->not_before;
                        continue;
                }
                char *body = strdup(m->rec.body);
                if (req_queue(h, REQ_FEEDBACK, NULL, m, msg_url(h, m), "POST", body, NULL, msg_done,
                              &m->req) < 0) {
                        set_error(h, "Out of memory queueing feedback");
                        m->not_before = now + backoff_usec(h, 1);
                }
        }
        if (wake != UINT64_MAX && arm(h, &h->outbox_timer, wake, on_outbox_timer, h) < 0)
                set_error(h, "Failed to arm the outbox timer");
}

static int outbox_take(struct outbox_record *r, void *userdata)
{
        Hawkbit *h = userdata;
        struct msg *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->rec = *r;
        memset(r, 0, sizeof *r);
        m->closes = ddi_feedback_closes(m->rec.body);
        msg_link(h, m);
        if (m->closes)
                mark_closed(h, m->rec.action_id);
        return 0;
}

static void outbox_damaged(const char *path, const char *kept_as, void *userdata)
{
        set_error(userdata, "Outbox file %s is damaged; kept as %s", path, kept_as);
}

static char *controller_id(Hawkbit *h, const uint8_t uid[HAWKBIT_UID_SIZE])
{
        char hex[2 * HAWKBIT_UID_SIZE + 1];
        for (size_t i = 0; i < HAWKBIT_UID_SIZE; i++)
                snprintf(hex + 2 * i, 3, "%02x", uid[i]);
        return strdup_printf("%s%s", h->prefix, hex);
}

static int queue_feedback(Hawkbit *h, const uint8_t uid[HAWKBIT_UID_SIZE], uint64_t action_id, bool cancel,
                          const char *execution, const char *finished, const char *details, bool closes)
{
        if (!h || !uid || action_id == 0)
                return -EINVAL;
        if (is_closed(h, action_id))
                return -ESTALE;
        _cleanup_(freep) char *cid = controller_id(h, uid);
        if (!cid)
                return -ENOMEM;

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct msg *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->rec.seq = h->next_seq;
        m->rec.cid = TAKE_PTR(cid);
        m->rec.action_id = action_id;
        m->rec.cancel = cancel;
        m->rec.body = ddi_feedback_body(execution, finished, details,
                                        (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000);
        m->closes = closes;
        int r = m->rec.body ? outbox_record_write(h->outbox_dir, &m->rec) : -ENOMEM;
        if (r < 0) {
                outbox_record_clear(&m->rec);
                free(m);
                return r;
        }
        msg_link(h, m);
        if (closes)
                mark_closed(h, action_id);
        outbox_pump(h);
        return 0;
}

int hawkbit_feedback(Hawkbit *h, const uint8_t uid[HAWKBIT_UID_SIZE], uint64_t action_id,
                     enum hawkbit_feedback kind, const char *details)
{
        switch (kind) {
        case HAWKBIT_FEEDBACK_PROCEEDING:
                return queue_feedback(h, uid, action_id, false, "proceeding", "none", details, false);
        case HAWKBIT_FEEDBACK_DOWNLOADED:
                return queue_feedback(h, uid, action_id, false, "downloaded", "none", details, false);
        case HAWKBIT_FEEDBACK_SUCCESS:
                return queue_feedback(h, uid, action_id, false, "closed", "success", details, true);
        case HAWKBIT_FEEDBACK_FAILURE:
                /* Never closed/none for a failure: hawkBit would count it as a success. */
                if (!details || !*details)
                        return -EINVAL;
                return queue_feedback(h, uid, action_id, false, "closed", "failure", details, true);
        }
        return -EINVAL;
}

int hawkbit_cancel_feedback(Hawkbit *h, const uint8_t uid[HAWKBIT_UID_SIZE], uint64_t action_id,
                            bool accepted, const char *details)
{
        if (accepted)
                return queue_feedback(h, uid, action_id, true, "closed", "success", details, true);
        return queue_feedback(h, uid, action_id, true, "rejected", "none", details, false);
}

/* ---- targets ---- */

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void schedule_poll(HawkbitTarget *t, uint64_t delay)
{
        Hawkbit *h = t->h;
        t->next_poll = now_usec(h) + delay;
        if (arm(h, &t->poll_timer, t->next_poll, on_poll_timer, t) < 0)
                set_error(h, "Failed to arm the poll timer of %s", t->cid);
}

/* The server's sleep, capped at poll_max_s, plus up to 10 % of it so that targets drift apart. */
static void schedule_next_poll(HawkbitTarget *t)
{
        Hawkbit *h = t->h;
        uint64_t interval = (t->sleep_s ? t->sleep_s : h->poll_max_s) * USEC_PER_SEC;
        if (interval > h->poll_max_s * USEC_PER_SEC)
                interval = h->poll_max_s * USEC_PER_SEC;
        if (interval < USEC_PER_SEC)
                interval = USEC_PER_SEC; /* 00:00:00 would be a busy loop */
        /* A failing server is never polled faster than usual; back-off only lengthens the wait. */
        if (t->failures > 0 && backoff_usec(h, t->failures) > interval)
                interval = backoff_usec(h, t->failures);
        schedule_poll(t, interval + rand_below(h, interval / 10 + 1));
}

static bool href_is_ours(HawkbitTarget *t, const char *href)
{
        size_t n = strlen(t->root_url);
        return href && strncmp(href, t->root_url, n) == 0 && href[n] == '/';
}

static void config_done(struct req *q, int r, long status, const uint8_t *data, size_t size, Fetch *x)
{
        HawkbitTarget *t = q->t;
        (void) status;
        (void) data;
        (void) size;
        (void) x;
        if (r >= 0) {
                set_str(&t->config_sent, strdup(q->body));
                t->config_link = false;
        }
}

static void deployment_done(struct req *q, int r, long status, const uint8_t *data, size_t size, Fetch *x);
static void cancel_done(struct req *q, int r, long status, const uint8_t *data, size_t size, Fetch *x);

/* After a root answer: send configData, fetch a new deployment or cancel request. */
static void target_act(HawkbitTarget *t)
{
        Hawkbit *h = t->h;
        if (!t->config_req && t->config_data &&
            (t->config_link || !streq_ptr(t->config_data, t->config_sent)))
                (void) req_queue(h, REQ_CONFIG, t, NULL, strdup_printf("%s/configData", t->root_url), "PUT",
                                 strdup(t->config_data), NULL, config_done, &t->config_req);
        if (!t->dep_req && t->dep_href && !streq_ptr(t->dep_href, t->dep_href_done))
                (void) req_queue(h, REQ_DEPLOYMENT, t, NULL, strdup(t->dep_href), NULL, NULL, NULL,
                                 deployment_done, &t->dep_req);
        if (!t->cancel_req && t->cancel_href && !streq_ptr(t->cancel_href, t->cancel_href_done))
                (void) req_queue(h, REQ_CANCEL, t, NULL, strdup(t->cancel_href), NULL, NULL, NULL,
                                 cancel_done, &t->cancel_req);
}

static void poll_done(struct req *q, int r, long status, const uint8_t *data, size_t size, Fetch *x)
{
        HawkbitTarget *t = q->t;
        Hawkbit *h = t->h;
        if (r < 0) {
                if (status == 0 || status >= 500)
                        t->failures++;
                schedule_next_poll(t);
                return;
        }
        t->failures = 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        h->last_poll_realtime = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
        if (status == 304) {
                h->not_modified++;
                schedule_next_poll(t);
                target_act(t);
                return;
        }
        struct ddi_root root;
        int k = ddi_parse_root(data, size, &root);
        if (k < 0) {
                set_error(h, "The root resource of %s is not a JSON object", t->cid);
                schedule_next_poll(t);
                return;
        }
        if (root.has_sleep)
                t->sleep_s = root.sleep_s;
        /* The token goes only to this target's own resources on this server. */
        if (root.deployment_href && !href_is_ours(t, root.deployment_href)) {
                set_error(h, "Ignoring deploymentBase link of %s outside %s", t->cid, t->root_url);
                set_str(&root.deployment_href, NULL);
        }
        if (root.cancel_href && !href_is_ours(t, root.cancel_href)) {
                set_error(h, "Ignoring cancelAction link of %s outside %s", t->cid, t->root_url);
                set_str(&root.cancel_href, NULL);
        }
        set_str(&t->dep_href, TAKE_PTR(root.deployment_href));
        set_str(&t->cancel_href, TAKE_PTR(root.cancel_href));
        if (!t->cancel_href) {
                /* No cancel pending (a rejected one is over): a new request for the same action is
                 * handed over again. */
                set_str(&t->cancel_href_done, NULL);
                t->cancel_notified = 0;
        }
        t->config_link = root.config_requested;
        ddi_root_clear(&root);
        const char *etag = fetch_etag(x);
        set_str(&t->etag, etag ? strdup(etag) : NULL);
        schedule_next_poll(t);
        target_act(t);
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        HawkbitTarget *t = userdata;
        (void) s;
        (void) usec;
        t->next_poll = 0;
        if (t->poll_req)
                return 0;
        if (req_queue(t->h, REQ_POLL, t, NULL, strdup(t->root_url), NULL, NULL, t->etag, poll_done,
                      &t->poll_req) < 0)
                schedule_next_poll(t);
        return 0;
}

static void deployment_done(struct req *q, int r, long status, const uint8_t *data, size_t size, Fetch *x)
{
        HawkbitTarget *t = q->t;
        Hawkbit *h = t->h;
        (void) x;
        if (r < 0) {
                /* Gone or unknown: the action ended meanwhile; anything else: again at the next poll. */
                if (status == 410 || status == 404)
                        set_str(&t->dep_href_done, strdup(q->url));
                return;
        }
        set_str(&t->dep_href_done, strdup(q->url));
        struct ddi_deployment dd;
        const char *why = NULL;
        int k = ddi_parse_deployment(data, size, &dd, &why);
        const struct hawkbit_deployment *d = &dd.d;
        if (k < 0) {
                set_error(h, "Deployment for %s: %s", t->cid, why ? why : strerror(-k));
                /* Answered at once when it can never be installed, so the rollout does not wait. */
                if (k == -EBADMSG && d->action_id && !is_closed(h, d->action_id)) {
                        k = hawkbit_feedback(h, t->uid, d->action_id, HAWKBIT_FEEDBACK_FAILURE, why);
                        if (k < 0)
                                set_error(h, "Failed to queue feedback for %s: %s", t->cid, strerror(-k));
                }
                return;
        }
        if (is_closed(h, d->action_id) ||
            (t->notified && t->notified_action == d->action_id && t->notified_download == d->download &&
             t->notified_update == d->update && t->notified_mw_given == d->maintenance_window_given &&
             t->notified_mw_available == d->maintenance_window_available)) {
                ddi_deployment_clear(&dd);
                return;
        }
        t->notified = true;
        t->notified_action = d->action_id;
        t->notified_download = d->download;
        t->notified_update = d->update;
        t->notified_mw_given = d->maintenance_window_given;
        t->notified_mw_available = d->maintenance_window_available;
        if (h->cb.deployment_available)
                h->cb.deployment_available(h, t, d, h->userdata); /* t may be gone after this */
        ddi_deployment_clear(&dd);
}

static void cancel_done(struct req *q, int r, long status, const uint8_t *data, size_t size, Fetch *x)
{
        HawkbitTarget *t = q->t;
        Hawkbit *h = t->h;
        (void) status;
        (void) x;
        if (r < 0)
                return;
        uint64_t id;
        if (ddi_parse_cancel(data, size, &id) < 0) {
                set_error(h, "Cancel request for %s without a usable stopId", t->cid);
                return;
        }
        set_str(&t->cancel_href_done, strdup(q->url));
        if (id == t->cancel_notified || is_closed(h, id))
                return;
        t->cancel_notified = id;
        if (h->cb.cancel_requested)
                h->cb.cancel_requested(h, t, id, h->userdata);
}

HawkbitTarget *hawkbit_target_find(Hawkbit *h, const uint8_t uid[HAWKBIT_UID_SIZE])
{
        for (HawkbitTarget *t = h ? h->targets : NULL; t; t = t->next)
                if (memcmp(t->uid, uid, HAWKBIT_UID_SIZE) == 0)
                        return t;
        return NULL;
}

int hawkbit_target_add(Hawkbit *h, const struct hawkbit_node *n, HawkbitTarget **ret)
{
        if (!h || !n)
                return -EINVAL;
        if (hawkbit_target_find(h, n->uid))
                return -EEXIST;
        HawkbitTarget *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->h = h;
        memcpy(t->uid, n->uid, HAWKBIT_UID_SIZE);
        t->cid = controller_id(h, n->uid);
        t->root_url = t->cid ? strdup_printf("%s/%s/controller/v1/%s", h->url, h->tenant, t->cid) : NULL;
        t->config_data = ddi_config_data_body(n);
        if (!t->cid || !t->root_url || !t->config_data) {
                free(t->cid);
                free(t->root_url);
                free(t->config_data);
                free(t);
                return -ENOMEM;
        }
        t->next = h->targets;
        if (t->next)
                t->next->prev = t;
        h->targets = t;
        h->n_targets++;
        /* Spread the first polls of targets added together (a bus scan, a restart), over at most the
         * longest sleep: a gateway told to poll every 2 s does not wait 10 s to start. */
        unsigned spread = h->poll_max_s < HAWKBIT_FIRST_SPREAD_S ? h->poll_max_s : HAWKBIT_FIRST_SPREAD_S;
        schedule_poll(t, rand_below(h, spread * USEC_PER_SEC));
        if (ret)
                *ret = t;
        return 0;
}

int hawkbit_target_update(HawkbitTarget *t, const struct hawkbit_node *n)
{
        if (!t || !n)
                return -EINVAL;
        char *c = ddi_config_data_body(n);
        if (!c)
                return -ENOMEM;
        set_str(&t->config_data, c);
        /* Sent with the next poll's answer, so that it takes a pacer slot like everything else. */
        return 0;
}

void hawkbit_target_remove(HawkbitTarget *t)
{
        if (!t)
                return;
        Hawkbit *h = t->h;
        req_free(t->poll_req);
        req_free(t->config_req);
        req_free(t->dep_req);
        req_free(t->cancel_req);
        sd_event_source_disable_unref(t->poll_timer);
        if (t->prev)
                t->prev->next = t->next;
        else
                h->targets = t->next;
        if (t->next)
                t->next->prev = t->prev;
        h->n_targets--;
        free(t->cid);
        free(t->root_url);
        free(t->config_data);
        free(t->config_sent);
        free(t->etag);
        free(t->dep_href);
        free(t->cancel_href);
        free(t->dep_href_done);
        free(t->cancel_href_done);
        free(t);
}

const char *hawkbit_target_controller_id(const HawkbitTarget *t)
{
        return t ? t->cid : NULL;
}

void hawkbit_target_set_userdata(HawkbitTarget *t, void *userdata)
{
        if (t)
                t->userdata = userdata;
}

void *hawkbit_target_get_userdata(const HawkbitTarget *t)
{
        return t ? t->userdata : NULL;
}

uint64_t hawkbit_target_next_poll_usec(const HawkbitTarget *t)
{
        return t ? t->next_poll : 0;
}

/* ---- the server ---- */

static int read_token(const char *path, char **ret)
{
        /* A regular file only: a FIFO swapped in since the configuration was checked must not block. */
        _cleanup_(freep) char *text = NULL;
        int r = cf_read_regular_file(path, 4096, &text, NULL, NULL);
        if (r < 0)
                return r;
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int) strcspn(text, "\n"), text);
        size_t n = strlen(line);
        while (n > 0 && isspace((unsigned char) line[n - 1]))
                line[--n] = 0;
        const char *s = line;
        while (isspace((unsigned char) *s))
                s++;
        if (!*s)
                return -EINVAL;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return -EINVAL; /* would break the header line */
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* "scheme://host[:port]" of url, lowercase, with the scheme's default port made explicit. */
static char *origin_of(const char *url)
{
        const char *p = strstr(url, "://");
        if (!p)
                return NULL;
        size_t sl = (size_t) (p - url);
        const char *hs = p + 3, *he = hs + strcspn(hs, "/?#");
        _cleanup_(freep) char *scheme = strndup(url, sl), *host = strndup(hs, (size_t) (he - hs));
        if (!scheme || !host || strchr(host, '@'))
                return NULL; /* userinfo in a link: never send the token there */
        for (char *c = scheme; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        for (char *c = host; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        const char *colon = strrchr(host, ':');
        bool has_port = colon && !strchr(colon, ']');
        if (has_port)
                return strdup_printf("%s://%s", scheme, host);
        return strdup_printf("%s://%s:%s", scheme, host, strcmp(scheme, "https") == 0 ? "443" : "80");
}

const char *const *hawkbit_download_headers(const Hawkbit *h, const char *url)
{
        if (!h || !url)
                return NULL;
        _cleanup_(freep) char *a = origin_of(h->url), *b = origin_of(url);
        return a && b && strcmp(a, b) == 0 ? h->headers : h->no_headers;
}

int hawkbit_new(sd_event *e, Fetcher *f, const struct hawkbit_config *c, const struct hawkbit_callbacks *cb,
                void *userdata, Hawkbit **ret)
{
        if (!e || !f || !c || !ret || !c->url || !c->tenant || !*c->tenant || !c->state_dir ||
            !c->gateway_token_file)
                return -EINVAL;
        if (strncasecmp(c->url, "https://", 8) != 0 && strncasecmp(c->url, "http://", 7) != 0)
                return -EINVAL;
        if (strchr(c->tenant, '/') || (c->controller_prefix && strchr(c->controller_prefix, '/')))
                return -EINVAL;

        _cleanup_(freep) char *token = NULL;
        Hawkbit *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->event = sd_event_ref(e);
        h->fetcher = f;
        if (cb)
                h->cb = *cb;
        h->userdata = userdata;
        h->poll_max_s = c->poll_max_s ? c->poll_max_s : HAWKBIT_POLL_MAX_DEFAULT;
        h->interval_usec =
            USEC_PER_SEC / (c->max_requests_per_s ? c->max_requests_per_s : HAWKBIT_RATE_DEFAULT);
        h->timeout_usec = c->request_timeout_usec;
        h->rng = c->seed;
        if (!h->rng) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                h->rng = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 20) ^ (uint64_t) getpid();
        }
        if (!h->rng)
                h->rng = 1;
        h->url = strdup(c->url);
        if (h->url) {
                size_t n = strlen(h->url);
                while (n > 0 && h->url[n - 1] == '/')
                        h->url[--n] = 0;
        }
        h->tenant = strdup(c->tenant);
        h->ca_file = c->ca_file ? strdup(c->ca_file) : NULL;
        h->prefix = strdup(c->controller_prefix ? c->controller_prefix : HAWKBIT_CONTROLLER_PREFIX);
        h->outbox_dir = strdup_printf("%s/%s", c->state_dir, OUTBOX_DIR);
        int r = -ENOMEM;
        if (!h->url || !h->tenant || (c->ca_file && !h->ca_file) || !h->prefix || !h->outbox_dir)
                goto fail;
        r = read_token(c->gateway_token_file, &token);
        if (r < 0)
                goto fail;
        h->auth_header = strdup_printf("Authorization: GatewayToken %s", token);
        explicit_bzero(token, strlen(token));
        r = -ENOMEM;
        if (!h->auth_header)
                goto fail;
        h->headers[0] = h->auth_header;
        if (mkdir(h->outbox_dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                goto fail;
        }
        r = outbox_records_load(h->outbox_dir, outbox_take, outbox_damaged, h);
        if (r < 0)
                goto fail;
        outbox_pump(h);
        *ret = h;
        return 0;
fail:
        hawkbit_free(h);
        return r;
}

Hawkbit *hawkbit_free(Hawkbit *h)
{
        if (!h)
                return NULL;
        while (h->targets)
                hawkbit_target_remove(h->targets);
        while (h->msgs)
                msg_free(h->msgs);
        while (h->queue)
                req_free(h->queue);
        sd_event_source_disable_unref(h->pacer);
        sd_event_source_disable_unref(h->outbox_timer);
        sd_event_unref(h->event);
        if (h->auth_header)
                explicit_bzero(h->auth_header, strlen(h->auth_header));
        free(h->auth_header);
        free(h->url);
        free(h->tenant);
        free(h->ca_file);
        free(h->prefix);
        free(h->outbox_dir);
        free(h);
        return NULL;
}

void hawkbit_get_status(const Hawkbit *h, struct hawkbit_status *ret)
{
        memset(ret, 0, sizeof *ret);
        if (!h)
                return;
        ret->link = h->link;
        ret->last_poll_realtime_usec = h->last_poll_realtime;
        snprintf(ret->last_error, sizeof ret->last_error, "%s", h->last_error);
        ret->last_error_realtime_usec = h->last_error_realtime;
        for (const HawkbitTarget *t = h->targets; t; t = t->next) {
                uint64_t np = hawkbit_target_next_poll_usec(t);
                if (np && (!ret->next_poll_usec || np < ret->next_poll_usec))
                        ret->next_poll_usec = np;
        }
        if (h->hold_until > now_usec((Hawkbit *) h))
                ret->held_until_usec = h->hold_until;
        ret->targets = h->n_targets;
        for (const HawkbitTarget *t = h->targets; t; t = t->next)
                if (t->notified && !is_closed((Hawkbit *) h, t->notified_action))
                        ret->actions_in_progress++;
        ret->outbox = h->n_msgs;
        ret->requests = h->requests;
        ret->not_modified = h->not_modified;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

uint64_t hawkbit_round_end_usec(const Hawkbit *h)
{
        Hawkbit *hh = (Hawkbit *) h;
        uint64_t now = now_usec(hh), slot = now;
        if (h->next_slot > slot)
                slot = h->next_slot;
        if (h->hold_until > slot)
                slot = h->hold_until;
        for (const struct req *q = h->queue; q; q = q->next)
                slot += h->interval_usec; /* what waits now goes first */
        uint64_t *polls = calloc(h->n_targets ? h->n_targets : 1, sizeof *polls);
        size_t n = 0;
        for (const HawkbitTarget *t = h->targets; polls && t; t = t->next)
                polls[n++] = t->next_poll ? t->next_poll : now; /* 0: queued or under way */
        if (polls)
                qsort(polls, n, sizeof *polls, cmp_u64);
        for (size_t i = 0; i < n; i++)
                slot = (polls[i] > slot ? polls[i] : slot) + h->interval_usec;
        free(polls);
        /* each target's deploymentBase GET after its answer, at worst behind every other poll */
        return slot + (uint64_t) h->n_targets * h->interval_usec;
}

size_t hawkbit_slot_log(const Hawkbit *h, uint64_t *ret, size_t n)
{
        if (!h)
                return 0;
        size_t have = h->n_slots < HAWKBIT_SLOT_LOG ? h->n_slots : HAWKBIT_SLOT_LOG;
        if (n > have)
                n = have;
        for (size_t i = 0; i < n; i++)
                ret[i] = h->slots[(h->n_slots - n + i) % HAWKBIT_SLOT_LOG];
        return n;
}
