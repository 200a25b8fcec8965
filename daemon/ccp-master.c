/* CCP master sessions: one outstanding command per node, fresh counters, time-outs as sd-event timers,
 * retries. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/layout.h"
#include "ccp-master.h"
#include "log.h"

#define C1_WAIT_US   50000ULL
#define C1_MAX_TRIES 2u
#define NO_ADDR      UINT32_MAX
/* BUSY is polled, not retried: a node erasing C (CCP's CLEAR_MEMORY time-out, 30 s) answers BUSY to
 * everything, a resumed CONNECT included. The poll backs off from C1_WAIT_US to this. */
#define BUSY_POLL_MAX_US 500000ULL
#define BUSY_WAIT_US     30000000ULL
/* While a long command (CLEAR_MEMORY, BUILD_CHKSUM) runs, a CONNECT to the node's own station asks
 * whether it is still at it: it answers BUSY while busy, and OK only when it has no session any more
 * (it lost power, or reset). The first look is after the erase of C takes on a real STM32F4. */
#define LIVENESS_FIRST_US 2500000ULL
#define LIVENESS_NEXT_US  1000000ULL
/* A stalled bus (no frame at all received since the try was sent, other sessions waiting too):
 * the try is sent again after this pause without being counted. */
#define STALL_PAUSE_US 100000ULL

/* What a node, the adapter and our own event loop add to an answer's bus time: a node answers in
 * microseconds, an SLCAN adapter on USB adds up to a millisecond each way. */
#define REPLY_SLACK_US 1000ULL
/* A request looked at and found slow is looked at again after this, doubling up to the maximum:
 * each fruitless hold window costs the bus a little idle time. */
#define RECHECK_FIRST_US 4000ULL
#define RECHECK_MAX_US   64000ULL

enum phase {
        P_IDLE,
        P_MAIN,        /* the request itself */
        P_RESTORE_MTA, /* SET_MTA to the chunk before retrying a PROGRAM */
        P_READBACK,    /* SHORT_UP of a chunk whose retry was refused: was it written after all? */
        P_SKIP_MTA,    /* it was: SET_MTA past it */
};

struct CcpSession {
        sd_event *event;
        CanTransport *t;
        struct ccp_bus_load *load;
        char *name;
        uint32_t cro_id, dto_id;
        uint16_t station;
        unsigned retries;
        uint64_t min_timeout_us;
        bool probe; /* the outstanding request is a probe: CCP's own time-out, not the minimum */
        ccp_done_cb cb;
        void *userdata;
        sd_event_source *timer;
        uint8_t ctr;

        enum phase phase;
        bool waiting_link, c1_waiting, link_up;
        /* at the bus's gate (struct ccp_bus_load) */
        bool on_wire;      /* the CRO went to the transport, no answer yet: counted in in_flight */
        bool queued;       /* held back by the gate */
        bool window;       /* in a hold window: the timer is its end */
        bool holding;      /* ... and holding the gate closed: counted in overdue, in holders */
        bool final_window; /* ... the one before the time-out */
        bool slow;         /* counted in slow */
        CcpSession *queue_next, *holder_next;
        uint64_t deadline;  /* the try's time-out */
        uint64_t check_at;  /* when the answer is overdue */
        uint64_t recheck;   /* back-off of check_at for a slow node */
        uint64_t sent_mark; /* load->sent after our CRO or our last window: was the bus busy since? */

        uint8_t main[8]; /* the request */
        uint8_t wire[8]; /* what is outstanding on the bus: main or a helper */
        unsigned tries_left, tries;
        unsigned helper_tries_left; /* the recovery exchange's own budget (P_RESTORE_MTA …) */
        unsigned c1_count;
        uint64_t busy_until; /* BUSY polled until then (0: no BUSY yet) */
        bool main_reasked;   /* an error answer to the request was asked again once */
        bool helper_reasked; /* ... to the recovery's current exchange */
        bool rb_reasked;     /* a read-back that differed was read again once */
        bool timed_out;
        ccp_plausible_fn plausible;
        unsigned implausible; /* answers counted as lost because of their content */
        /* the liveness CONNECT while a long command runs */
        sd_event_source *live_timer;
        bool live_out;
        uint8_t live_ctr, wire_ctr;
        uint64_t sent_at;   /* when the outstanding try left */
        uint64_t stall_since;
        bool stall_pause; /* waiting out a stall: counted in load->stall_waiting */
        bool answered_last; /* the previous request got an answer (stalls: ccp-master.h) */
        uint64_t srtt_us;   /* smoothed answer time of PROGRAMs (their adaptive time-out) */
        uint32_t addr;
        bool is_program;
        uint8_t ext, pn;
        uint8_t pdata[6];
        uint8_t rb_off; /* read back so far: SHORT_UP carries at most 5 bytes */

        char error[256];
        uint64_t frames_sent, timeouts;
};

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata);
static int on_live_timer(sd_event_source *es, uint64_t usec, void *userdata);
static void send_now(CcpSession *s);

void ccp_bus_frame_received(struct ccp_bus_load *l, uint64_t now_us)
{
        l->last_rx = now_us;
}

/* ---- the bus's gate ------------------------------------------------------------------------------ */

static uint64_t now_us(const CcpSession *s)
{
        uint64_t now;
        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void arm_at(CcpSession *s, uint64_t at)
{
        sd_event_source_set_time(s->timer, at);
        sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

static void unqueue(CcpSession *s)
{
        struct ccp_bus_load *l = s->load;
        if (!s->queued)
                return;
        CcpSession **p = &l->queue_head, *prev = NULL;
        while (*p && *p != s) {
                prev = *p;
                p = &(*p)->queue_next;
        }
        if (*p)
                *p = s->queue_next;
        if (l->queue_tail == s)
                l->queue_tail = prev;
        s->queue_next = NULL;
        s->queued = false;
        l->queued--;
}

/* Send what the gate held back, in order, for as long as it stays open. A send may fail and call an
 * owner back, who may queue again: each turn takes the head afresh. */
static void pump(struct ccp_bus_load *l)
{
        while (l && l->overdue == 0 && l->queue_head) {
                CcpSession *s = l->queue_head;
                l->queue_head = s->queue_next;
                if (!l->queue_head)
                        l->queue_tail = NULL;
                s->queue_next = NULL;
                s->queued = false;
                l->queued--;
                send_now(s);
        }
}

static void set_slow(CcpSession *s, bool slow)
{
        if (s->slow == slow)
                return;
        s->slow = slow;
        if (slow)
                s->load->slow++;
        else
                s->load->slow--;
}

/* Stop holding the gate (the caller pumps). */
static void stop_holding(CcpSession *s)
{
        struct ccp_bus_load *l = s->load;
        if (!s->holding)
                return;
        CcpSession **p = &l->holders;
        while (*p && *p != s)
                p = &(*p)->holder_next;
        if (*p)
                *p = s->holder_next;
        s->holder_next = NULL;
        s->holding = false;
        l->overdue--;
}

/* The gate reopens early when the one overdue request is all that is left of ours on the wire (slow
 * ones aside): see ccp-master.h. It keeps its window, shortened to the answer's own frame. */
static void release_early(struct ccp_bus_load *l)
{
        CcpSession *h = l->holders;
        if (l->overdue != 1 || l->in_flight - l->slow != 1 || h->slow)
                return;
        stop_holding(h);
        arm_at(h, now_us(h) + l->frame_us + REPLY_SLACK_US);
}

/* The session's CRO is answered, abandoned or no longer wanted: it leaves the wire and the queue. */
static void leave_gate(CcpSession *s)
{
        struct ccp_bus_load *l = s->load;
        if (!l)
                return;
        unqueue(s);
        bool was_holding = s->holding;
        stop_holding(s);
        s->window = s->final_window = false;
        set_slow(s, false);
        if (s->on_wire) {
                s->on_wire = false;
                l->in_flight--;
        }
        if (l->overdue > 0)
                release_early(l);
        if ((was_holding || l->queue_head) && l->overdue == 0)
                pump(l);
}

/* Hold the bus's new CROs back until our answer comes or the requests on the wire had the time to
 * drain and leave the bus idle for it: two frames each (CRO and answer), ours, and the slack. */
static void open_window(CcpSession *s, bool final)
{
        struct ccp_bus_load *l = s->load;
        set_slow(s, false);
        s->window = s->holding = true;
        s->final_window = final;
        s->holder_next = l->holders;
        l->holders = s;
        l->overdue++;
        l->holds++;
        arm_at(s, now_us(s) + (2ULL * l->in_flight + 1u) * l->frame_us + REPLY_SLACK_US);
        release_early(l);
        if (l->overdue == 0)
                pump(l);
}

int ccp_session_new(sd_event *e, CanTransport *t, struct ccp_bus_load *load, const char *name,
                    uint32_t cro_id, uint32_t dto_id, uint16_t station, unsigned retries, CcpSession **ret)
{
        CcpSession *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->t = t;
        s->load = load;
        s->cro_id = cro_id;
        s->dto_id = dto_id;
        s->station = station;
        s->retries = retries ? retries : 3;
        s->link_up = t ? t->state == CF_LINK_UP : true;
        s->name = strdup(name);
        int r = s->name ? 0 : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_time(e, &s->timer, CLOCK_MONOTONIC, 0, 1, on_timer,
                                      s); /* 1 µs: not the 250 ms default */
        if (r >= 0)
                r = sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(e, &s->live_timer, CLOCK_MONOTONIC, 0, 1000, on_live_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->live_timer, SD_EVENT_OFF);
        if (r < 0) {
                ccp_session_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

CcpSession *ccp_session_free(CcpSession *s)
{
        if (!s)
                return NULL;
        leave_gate(s);
        if (s->stall_pause && s->load)
                s->load->stall_waiting--;
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->live_timer);
        sd_event_unref(s->event);
        free(s->name);
        free(s);
        return NULL;
}

void ccp_session_set_callback(CcpSession *s, ccp_done_cb cb, void *userdata)
{
        s->cb = cb;
        s->userdata = userdata;
}

void ccp_session_set_min_timeout(CcpSession *s, uint64_t usec)
{
        s->min_timeout_us = usec;
}

bool ccp_session_pending(const CcpSession *s)
{
        return s->phase != P_IDLE;
}
const char *ccp_session_error(const CcpSession *s)
{
        return s->error;
}
const char *ccp_session_name(const CcpSession *s)
{
        return s->name;
}
uint16_t ccp_session_station(const CcpSession *s)
{
        return s->station;
}
uint64_t ccp_session_frames_sent(const CcpSession *s)
{
        return s->frames_sent;
}
uint64_t ccp_session_implausible(const CcpSession *s)
{
        return s->implausible;
}

uint64_t ccp_session_timeouts(const CcpSession *s)
{
        return s->timeouts;
}

static const char *cmd_name(uint8_t cmd)
{
        const char *n = cf_ccp_cmd_name(cmd);
        return n ? n : "command";
}

/* "PROGRAM_6 at 0x00012340" / "CONNECT" */
static void describe(const CcpSession *s, char *buf, size_t size)
{
        if (s->addr != NO_ADDR)
                snprintf(buf, size, "%s at 0x%08X", cmd_name(s->main[0]), s->addr);
        else
                snprintf(buf, size, "%s", cmd_name(s->main[0]));
}

static const char *hint(uint8_t cmd, uint8_t err)
{
        switch (err) {
        case CF_CCP_ERR_ACCESS_LOCKED:
                if (cmd == CF_CCP_UNLOCK)
                        return " (wrong fleet key?)";
                return " (not unlocked)";
        case CF_CCP_ERR_ACCESS_DENIED:
                if (cmd == CF_CCP_GET_SEED || cmd == CF_CCP_UNLOCK)
                        return " (locked out after wrong keys?)";
                if (cmd == CF_CCP_PROGRAM || cmd == CF_CCP_PROGRAM_6)
                        return " (flash not erased)";
                if (cmd == CF_CCP_DISCONNECT)
                        return " (the staged image is not valid)";
                return "";
        default:
                return "";
        }
}

__attribute__((format(printf, 2, 3))) static void set_error(CcpSession *s, const char *fmt, ...)
{
        int n = snprintf(s->error, sizeof s->error, "%s: ", s->name);
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t) n < sizeof s->error)
                vsnprintf(s->error + n, sizeof s->error - (size_t) n, fmt, ap);
        va_end(ap);
}

static void live_stop(CcpSession *s)
{
        s->live_out = false;
        sd_event_source_set_enabled(s->live_timer, SD_EVENT_OFF);
}

static void stall_end(CcpSession *s)
{
        if (!s->stall_pause)
                return;
        s->stall_pause = false;
        if (s->load && s->load->stall_waiting)
                s->load->stall_waiting--;
}

static void finish(CcpSession *s, int r, const struct cf_ccp_dto *reply)
{
        s->answered_last = r >= 0 || reply;
        sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        live_stop(s);
        stall_end(s);
        s->phase = P_IDLE;
        s->waiting_link = s->c1_waiting = false;
        leave_gate(s);
        if (r >= 0)
                s->error[0] = 0;
        else
                log_debug("%s", s->error);
        if (s->cb)
                s->cb(s, r, reply, s->userdata);
}

static void arm(CcpSession *s, uint64_t usec)
{
        uint64_t now;
        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        sd_event_source_set_time(s->timer, now + usec);
        sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

/* Put s->wire on the bus now; the try's time-out and its overdue check start here. */
static void send_now(CcpSession *s)
{
        struct ccp_bus_load *l = s->load;
        stall_end(s);
        s->wire[1] = ++s->ctr;
        s->wire_ctr = s->ctr;
        struct cf_can_frame f = {.id = s->cro_id, .dlc = 8};
        memcpy(f.data, s->wire, 8);
        int r = s->link_up ? can_transport_send(s->t, &f) : -ENETDOWN;
        if (r == -ENETDOWN) {
                /* Not an answer missing: nothing counts until the link is back. */
                s->waiting_link = true;
                sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
                return;
        }
        if (r < 0) {
                char d[64];
                describe(s, d, sizeof d);
                set_error(s, "cannot send %s: %s", d, strerror(-r));
                finish(s, r, NULL);
                return;
        }
        s->frames_sent++;
        uint64_t now = now_us(s);
        s->sent_at = now;
        uint64_t timeout = (uint64_t) cf_ccp_timeout_ms(s->wire[0]) * 1000u;
        if ((s->wire[0] == CF_CCP_PROGRAM || s->wire[0] == CF_CCP_PROGRAM_6) && s->srtt_us > 0) {
                /* CCP allows a PROGRAM 100 ms, but a node answers as soon as its flash took the bytes
                 * (microseconds on an STM32F4): once this node's answer times are known, a lost
                 * answer is retried after 8 of them (never below the configured minimum), so that a
                 * lossy line does not cost 100 ms per lost frame. A retry is always safe. */
                uint64_t adaptive = 8u * s->srtt_us;
                if (adaptive < timeout)
                        timeout = adaptive;
        }
        if (timeout >= 1000000u && s->phase == P_MAIN) {
                sd_event_source_set_time(s->live_timer, now + LIVENESS_FIRST_US);
                sd_event_source_set_enabled(s->live_timer, SD_EVENT_ONESHOT);
        } else {
                live_stop(s);
        }
        if (!s->probe && timeout < s->min_timeout_us)
                timeout = s->min_timeout_us;
        if (!l) {
                s->deadline = now + timeout;
                arm_at(s, s->deadline);
                return;
        }
        /* Each request on the wire, and each the gate is about to let go, may put its CRO (any CRO
         * beats any answer) and its answer before ours. */
        uint64_t ahead = 2ULL * (l->in_flight + l->queued) * l->frame_us;
        s->on_wire = true;
        l->in_flight++;
        s->sent_mark = ++l->sent;
        s->deadline = now + timeout + ahead;
        s->check_at = now + ahead + 2u * l->frame_us + REPLY_SLACK_US;
        s->recheck = RECHECK_FIRST_US;
        arm_at(s, s->check_at < s->deadline ? s->check_at : s->deadline);
}

/* Send s->wire when the bus's gate lets it. */
static void transmit(CcpSession *s)
{
        struct ccp_bus_load *l = s->load;
        if (l && s->link_up && (l->overdue > 0 || l->queue_head)) {
                sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
                s->queued = true;
                if (l->queue_tail)
                        l->queue_tail->queue_next = s;
                else
                        l->queue_head = s;
                l->queue_tail = s;
                l->queued++;
                l->held++;
                return;
        }
        send_now(s);
}

static void set_mta_wire(CcpSession *s, uint32_t addr)
{
        cf_ccp_cro_set_mta(s->wire, 0, 0, s->ext, addr);
}

/* A new exchange of the request starts: the main request again, or a step of the recovery. */
static void set_phase(CcpSession *s, enum phase p)
{
        s->phase = p;
        if (p != P_MAIN) {
                s->helper_tries_left = s->retries;
                s->helper_reasked = false;
        }
}

static const char *phase_what(const CcpSession *s)
{
        switch (s->phase) {
        case P_RESTORE_MTA:
                return "recovering a lost answer to";
        case P_READBACK:
                return "reading back, after a lost answer,";
        case P_SKIP_MTA:
                return "moving past, after a lost answer,";
        default:
                return "";
        }
}

/* The main request is tried again. A PROGRAM's lost answer may have been the only thing lost: the
 * node may have written the bytes and moved its MTA on, so the MTA is put back first. */
static void retry_main(CcpSession *s)
{
        s->timed_out = true;
        if (s->is_program) {
                set_phase(s, P_RESTORE_MTA);
                set_mta_wire(s, s->addr);
        } else {
                set_phase(s, P_MAIN);
                memcpy(s->wire, s->main, 8);
        }
        transmit(s);
}

/* A stall of the bus's adapter, not a silent node: see ccp-master.h. */
static bool stalled(CcpSession *s, uint64_t now)
{
        struct ccp_bus_load *l = s->load;
        /* Only a node that answered its previous request, and never a probe: silence is what a
         * scan of absent stations or the wait for a rebooting node expect. */
        if (!l || s->probe || !s->answered_last || l->last_rx >= s->sent_at ||
            l->in_flight + l->stall_waiting == 0)
                return false;
        uint64_t max = l->stall_max_us ? l->stall_max_us : BUSY_WAIT_US;
        if (s->stall_since == 0)
                s->stall_since = now;
        return now - s->stall_since < max;
}

/* The try got no (plausible) answer. */
static void try_lost(CcpSession *s, bool implausible)
{
        if (implausible)
                s->implausible++;
        else
                s->timeouts++;
        uint64_t now = now_us(s);
        if (!implausible && stalled(s, now)) {
                /* Not counted: sent again after a pause, until frames flow or the stall is too long. */
                s->load->stalls++;
                s->stall_pause = true;
                s->load->stall_waiting++;
                arm(s, STALL_PAUSE_US);
                return;
        }
        const char *why = implausible ? "no plausible answer" : "no answer";
        char d[64];
        describe(s, d, sizeof d);
        if (s->phase == P_MAIN) {
                if (s->tries_left > 1) {
                        s->tries_left--;
                        retry_main(s);
                        return;
                }
                set_error(s, "%s to %s after %u tries", why, d, s->tries);
                finish(s, implausible ? -EPROTO : -ETIMEDOUT, NULL);
                return;
        }
        if (s->helper_tries_left > 1) {
                s->helper_tries_left--;
                transmit(s);
                return;
        }
        set_error(s, "%s to %s (%s %s) after %u tries", why, cmd_name(s->wire[0]), phase_what(s), d,
                  s->retries);
        finish(s, implausible ? -EPROTO : -ETIMEDOUT, NULL);
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        CcpSession *s = userdata;
        struct ccp_bus_load *l = s->load;

        if (s->phase == P_IDLE)
                return 0;
        if (s->stall_pause) {
                stall_end(s);
                transmit(s);
                return 0;
        }
        if (s->c1_waiting) {
                s->c1_waiting = false;
                if (s->phase == P_MAIN && s->is_program) {
                        /* BUSY to a PROGRAM may be an OK that lost a bit: put the MTA back first. */
                        s->timed_out = true;
                        set_phase(s, P_RESTORE_MTA);
                        set_mta_wire(s, s->addr);
                }
                transmit(s);
                return 0;
        }
        if (!l) {
                try_lost(s, false);
                return 0;
        }
        if (!s->on_wire)
                return 0;
        uint64_t now = now_us(s);

        if (s->window) {
                /* The window ended without our answer: the node is slow, or silent. */
                bool final = s->final_window;
                s->window = s->final_window = false;
                stop_holding(s);
                s->sent_mark = l->sent;
                set_slow(s, true);
                if (l->overdue > 0)
                        release_early(l);
                if (l->overdue == 0)
                        pump(l);
                if (final || now >= s->deadline) {
                        leave_gate(s);
                        try_lost(s, false);
                        return 0;
                }
                s->check_at = now + s->recheck;
                s->recheck = s->recheck * 2 > RECHECK_MAX_US ? RECHECK_MAX_US : s->recheck * 2;
                arm_at(s, s->check_at < s->deadline ? s->check_at : s->deadline);
                return 0;
        }
        if (now >= s->deadline) {
                /* Other requests had the bus since we last looked: our answer may be waiting behind
                 * them. It gets one window on a quiet bus before the try counts as lost. */
                if (l->in_flight > 1 || l->sent != s->sent_mark) {
                        open_window(s, true);
                        return 0;
                }
                leave_gate(s);
                try_lost(s, false);
                return 0;
        }
        if (l->in_flight > 1) {
                open_window(s, false);
                return 0;
        }
        /* Alone on the wire: nothing can be in the way of our answer; the node takes its time. */
        set_slow(s, true);
        s->check_at = now + s->recheck;
        s->recheck = s->recheck * 2 > RECHECK_MAX_US ? RECHECK_MAX_US : s->recheck * 2;
        s->sent_mark = l->sent;
        arm_at(s, s->check_at < s->deadline ? s->check_at : s->deadline);
        return 0;
}

/* A long command runs: is the node still at it? (ccp-master.h) */
static int on_live_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        CcpSession *s = userdata;
        if (s->phase != P_MAIN || s->waiting_link || s->c1_waiting || s->stall_pause ||
            (s->load && !s->on_wire))
                return 0;
        uint8_t cro[8];
        cf_ccp_cro_connect(cro, ++s->ctr, s->station);
        s->live_ctr = s->ctr;
        struct cf_can_frame f = {.id = s->cro_id, .dlc = 8};
        memcpy(f.data, cro, 8);
        if (s->link_up && can_transport_send(s->t, &f) >= 0) {
                s->frames_sent++;
                s->live_out = true;
        }
        sd_event_source_set_time(s->live_timer, usec + LIVENESS_NEXT_US);
        sd_event_source_set_enabled(s->live_timer, SD_EVENT_ONESHOT);
        return 0;
}

static int start(CcpSession *s, const uint8_t cro[8], unsigned tries, uint32_t addr, bool probe)
{
        if (s->phase != P_IDLE)
                return -EBUSY;
        s->probe = probe;
        memcpy(s->main, cro, 8);
        memcpy(s->wire, cro, 8);
        s->tries = s->tries_left = tries ? tries : s->retries;
        s->c1_count = 0;
        s->busy_until = 0;
        s->timed_out = false;
        s->rb_reasked = false;
        s->main_reasked = false;
        s->stall_since = 0;
        s->addr = addr;
        set_phase(s, P_MAIN);
        s->error[0] = 0;
        transmit(s);
        return 0;
}

int ccp_request_check(CcpSession *s, const uint8_t cro[8], unsigned tries, uint32_t addr,
                      ccp_plausible_fn plausible)
{
        if (s->phase != P_IDLE)
                return -EBUSY;
        s->is_program = false;
        s->plausible = plausible;
        return start(s, cro, tries, addr, false);
}

int ccp_request(CcpSession *s, const uint8_t cro[8], unsigned tries, uint32_t addr)
{
        return ccp_request_check(s, cro, tries, addr, NULL);
}

int ccp_probe(CcpSession *s, const uint8_t cro[8])
{
        if (s->phase != P_IDLE)
                return -EBUSY;
        s->is_program = false;
        s->plausible = NULL;
        return start(s, cro, 1, NO_ADDR, true);
}

int ccp_program(CcpSession *s, uint8_t ext, uint32_t addr, const uint8_t *data, uint8_t n)
{
        uint8_t cro[8];
        if (n > 6)
                return -EINVAL;
        if (s->phase != P_IDLE)
                return -EBUSY;
        if (n == 6)
                cf_ccp_cro_program6(cro, 0, data);
        else
                cf_ccp_cro_program(cro, 0, data, n);
        /* PROGRAM of size 0 writes nothing: a plain retry is right for it. */
        s->is_program = n > 0;
        s->plausible = NULL;
        s->ext = ext;
        s->pn = n;
        if (n)
                memcpy(s->pdata, data, n);
        return start(s, cro, 0, addr, false);
}

void ccp_abort(CcpSession *s, bool quiet)
{
        if (s->phase == P_IDLE)
                return;
        set_error(s, "cancelled");
        if (quiet) {
                ccp_done_cb cb = s->cb;
                s->cb = NULL;
                finish(s, -ECANCELED, NULL);
                s->cb = cb;
        } else {
                finish(s, -ECANCELED, NULL);
        }
}

void ccp_session_link(CcpSession *s, bool up)
{
        s->link_up = up;
        if (s->phase == P_IDLE)
                return;
        if (!up) {
                s->waiting_link = true;
                s->c1_waiting = false;
                stall_end(s);
                live_stop(s);
                sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
                leave_gate(s);
        } else if (s->waiting_link) {
                s->waiting_link = false;
                transmit(s);
        }
}

static void refused(CcpSession *s, const struct cf_ccp_dto *d)
{
        char desc[64];
        describe(s, desc, sizeof desc);
        uint8_t cmd = s->wire[0];
        if (cmd != s->main[0])
                set_error(s, "%s refused (%s %s): %s", cmd_name(cmd), phase_what(s), desc,
                          cf_ccp_err_str(d->err));
        else
                set_error(s, "%s refused: %s%s", desc, cf_ccp_err_str(d->err), hint(cmd, d->err));
        finish(s, -EPROTO, d);
}

/* The node's answer to our liveness CONNECT during a long command. */
static void live_answer(CcpSession *s, const struct cf_ccp_dto *d)
{
        s->live_out = false;
        if (d->err != CF_CCP_OK)
                return; /* BUSY: still at it */
        char desc[64];
        describe(s, desc, sizeof desc);
        set_error(s, "%s: the node answered a CONNECT while it should have been busy: it lost its session "
                     "(power cut or reset)",
                  desc);
        finish(s, -ECONNRESET, NULL);
}

/* An error answer the node gave twice (or once, to UNLOCK): what it means. */
static void believe_error(CcpSession *s, const struct cf_ccp_dto *d)
{
        char desc[64];
        describe(s, desc, sizeof desc);
        if (cf_ccp_err_class(d->err) == 1) {
                set_error(s, "%s: node still %s after %u tries", desc, cf_ccp_err_str(d->err), C1_MAX_TRIES + 1);
                finish(s, -EBUSY, d);
                return;
        }
        if (cf_ccp_err_class(d->err) == 2) {
                /* Retrying the command in this session cannot help: the owner starts a new one. */
                set_error(s, "%s: the node asks for a new session (%s, error 0x%02X)", desc,
                          cf_ccp_err_str(d->err), d->err);
                finish(s, -ECONNRESET, d);
                return;
        }
        refused(s, d);
}

static void error_answer(CcpSession *s, const struct cf_ccp_dto *d)
{
        if (d->err == CF_CCP_ERR_BUSY) {
                uint64_t now = now_us(s);
                if (s->busy_until == 0)
                        s->busy_until = now + BUSY_WAIT_US;
                if (now < s->busy_until) {
                        unsigned k = s->c1_count < 4 ? s->c1_count : 4;
                        uint64_t wait = C1_WAIT_US << k;
                        s->c1_count++;
                        s->c1_waiting = true;
                        arm(s, wait < BUSY_POLL_MAX_US ? wait : BUSY_POLL_MAX_US);
                        return;
                }
                char desc[64];
                describe(s, desc, sizeof desc);
                set_error(s, "%s: node still busy after %llu s", desc, BUSY_WAIT_US / 1000000ULL);
                finish(s, -EBUSY, d);
                return;
        }
        if (cf_ccp_err_class(d->err) == 1) {
                if (++s->c1_count <= C1_MAX_TRIES) {
                        s->c1_waiting = true;
                        arm(s, C1_WAIT_US);
                        return;
                }
                believe_error(s, d);
                return;
        }
        if (s->phase == P_MAIN && s->is_program && s->timed_out && d->err == CF_CCP_ERR_ACCESS_DENIED) {
                /* The first try probably got through; look before calling it a failure. */
                set_phase(s, P_READBACK);
                s->rb_off = 0;
                cf_ccp_cro_short_up(s->wire, 0, s->pn > 5 ? 5 : s->pn, s->ext, s->addr);
                transmit(s);
                return;
        }
        bool *reasked = s->phase == P_MAIN ? &s->main_reasked : &s->helper_reasked;
        if (!*reasked && s->wire[0] != CF_CCP_UNLOCK) {
                /* Believed only when said twice: the first may be a corrupted answer. */
                *reasked = true;
                if (s->phase == P_MAIN && s->is_program) {
                        /* ... an OK one, after which the node moved its MTA on. */
                        s->timed_out = true;
                        set_phase(s, P_RESTORE_MTA);
                        set_mta_wire(s, s->addr);
                }
                transmit(s);
                return;
        }
        believe_error(s, d);
}

static bool plausible_main(CcpSession *s, const struct cf_ccp_dto *d)
{
        if (s->is_program)
                return d->data[0] == s->ext && cf_ccp_dto_mta(d) == s->addr + s->pn;
        if (s->main[0] == CF_CCP_BUILD_CHKSUM && d->data[0] != 4)
                return false;
        return !s->plausible || s->plausible(s->main, d);
}

void ccp_session_handle_frame(CcpSession *s, const struct cf_can_frame *f)
{
        struct cf_ccp_dto d;

        if (s->phase == P_IDLE || s->waiting_link || s->c1_waiting || s->stall_pause ||
            (s->load && !s->on_wire))
                return;
        if (cf_ccp_dto_parse(f->data, f->dlc, &d) < 0 || d.pid != CF_CCP_PID_CRM)
                return;
        if (s->live_out && d.ctr == s->live_ctr) {
                live_answer(s, &d);
                return;
        }
        if (d.ctr != s->wire_ctr) {
                log_debug("%s: stale answer (counter %u, expected %u) ignored", s->name, d.ctr, s->wire_ctr);
                return;
        }
        sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        live_stop(s);
        s->stall_since = 0;
        if (s->wire[0] == CF_CCP_PROGRAM || s->wire[0] == CF_CCP_PROGRAM_6) {
                uint64_t rtt = now_us(s) - s->sent_at;
                s->srtt_us = s->srtt_us ? (7u * s->srtt_us + rtt) / 8u : rtt;
        }
        if (s->window)
                s->load->rescued++;
        /* Off the wire before anything else is sent: what the gate held back goes first. */
        leave_gate(s);

        if (d.err != CF_CCP_OK) {
                error_answer(s, &d);
                return;
        }

        switch (s->phase) {
        case P_RESTORE_MTA:
                set_phase(s, P_MAIN);
                memcpy(s->wire, s->main, 8);
                transmit(s);
                return;
        case P_READBACK: {
                uint8_t k = s->pn - s->rb_off > 5 ? 5 : (uint8_t) (s->pn - s->rb_off);
                if (memcmp(d.data, s->pdata + s->rb_off, k) != 0) {
                        if (!s->rb_reasked) {
                                /* The read-back answer may be the corrupted one: read again once. */
                                s->rb_reasked = true;
                                transmit(s);
                                return;
                        }
                        char desc[64];
                        describe(s, desc, sizeof desc);
                        set_error(s,
                                  "%s refused: access denied (flash not erased); retried after restoring the "
                                  "MTA and read back twice: the bytes in flash are not ours",
                                  desc);
                        finish(s, -EPROTO, &d);
                        return;
                }
                s->rb_off += k;
                if (s->rb_off < s->pn) {
                        uint8_t rest = s->pn - s->rb_off > 5 ? 5 : (uint8_t) (s->pn - s->rb_off);
                        cf_ccp_cro_short_up(s->wire, 0, rest, s->ext, s->addr + s->rb_off);
                        set_phase(s, P_READBACK);
                        transmit(s);
                        return;
                }
                if (s->addr + s->pn >= CF_IMAGE_AREA_SIZE) {
                        /* The area's last chunk (its CRC word): only PROGRAM 0 follows, which writes
                         * nothing, so the MTA need not move to the end of the area. */
                        struct cf_ccp_dto ok = {
                            .pid = CF_CCP_PID_CRM, .err = CF_CCP_OK, .ctr = d.ctr, .data = {s->ext}};
                        cf_be32_put(&ok.data[1], s->addr + s->pn);
                        finish(s, 0, &ok);
                        return;
                }
                set_phase(s, P_SKIP_MTA);
                set_mta_wire(s, s->addr + s->pn);
                transmit(s);
                return;
        }
        case P_SKIP_MTA: {
                struct cf_ccp_dto ok = {
                    .pid = CF_CCP_PID_CRM, .err = CF_CCP_OK, .ctr = d.ctr, .data = {s->ext}};
                cf_be32_put(&ok.data[1], s->addr + s->pn);
                finish(s, 0, &ok);
                return;
        }
        case P_MAIN:
                if (!plausible_main(s, &d)) {
                        log_debug("%s: implausible answer to %s counted as lost", s->name, cmd_name(s->main[0]));
                        try_lost(s, true);
                        return;
                }
                finish(s, 0, &d);
                return;
        case P_IDLE:
                return;
        }
}
