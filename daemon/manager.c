/* The canfleetd engine: buses and their transports, nodes, jobs, the scheduler, persistence, signals and the
 * watchdog. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "canfleet/crc32.h"
#include "canfleet/node-status.h"
#include "canfleet/sha256.h"
#include "bundle-cache.h"
#include "cleanup.h"
#include "fd-read.h"
#include "fetcher.h"
#include "inventory.h"
#include "fleet-server.h"
#include "job-store.h"
#include "group-job.h"
#include "log.h"
#include "manager.h"
#include "dual-bank.h"
#include "serial-job.h"
#include "trust.h"

/* Progress and the status line are emitted at most this often per job, whatever the number of events:
 * a 20,000-node job changing at once costs one Progress array per interval, not one per node. */
#define PROGRESS_INTERVAL_US 200000ULL
/* While a job cannot be saved (full disk), a snapshot is tried again this often. */
#define SAVE_RETRY_US 1000000ULL
/* A log longer than this many records per node (plus a floor) is folded into a new snapshot: the
 * snapshot costs O(nodes), so each record pays O(1) for it. */
#define COMPACT_PER_NODE     4u
#define COMPACT_FLOOR        1024u
#define FRAME_BITS           135u /* the longest 8-byte standard frame: stuff bits and the inter-frame space */

static uint64_t now_clock_us(clockid_t clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static uint64_t now_realtime_us(void)
{
        return now_clock_us(CLOCK_REALTIME);
}

static const char *const job_state_names[] = {
    [JOB_RUNNING] = "running", [JOB_DONE] = "done", [JOB_FAILED] = "failed", [JOB_CANCELLED] = "cancelled"};

const char *job_state_str(enum job_state s)
{
        return s <= JOB_CANCELLED ? job_state_names[s] : "failed";
}

static int job_state_from_str(const char *s)
{
        for (int i = 0; i <= JOB_CANCELLED; i++)
                if (strcmp(job_state_names[i], s) == 0)
                        return i;
        return -EINVAL;
}

/* ---- nodes ------------------------------------------------------------------------------------- */

static void node_ccp_cb(CcpSession *s, int r, const struct cf_ccp_dto *d, void *userdata)
{
        Node *n = userdata;
        if (n->on_reply)
                n->on_reply(n, r, d);
}

static Node *node_free(Node *n)
{
        if (!n)
                return NULL;
        ccp_session_free(n->ccp);
        serial_node_free(n);
        free(n->path);
        free(n->last_error);
        free(n);
        return NULL;
}

static int node_new(CanBus *b, const struct cf_node_conf *nc, bool configured, Node **ret)
{
        Manager *m = b->m;
        if (nc->dto_id >= CF_CAN_IDS || b->by_dto[nc->dto_id])
                return -EADDRINUSE;
        Node *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        n->m = m;
        n->bus = b;
        n->nc = *nc;
        n->configured = configured;
        n->state = "unknown";
        snprintf(n->name, sizeof n->name, "%s:%u", b->conf->name, nc->station);
        _cleanup_(freep) char *prefix = NULL;
        int r = sd_bus_path_encode("/io/canfleet/Gateway1/node", b->conf->name, &prefix);
        if (r >= 0 && asprintf(&n->path, "%s_%u", prefix, nc->station) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = ccp_session_new(m->event, b->transport, &b->load, n->name, nc->cro_id, nc->dto_id,
                                    nc->station, m->conf->retries, &n->ccp);
        if (r < 0) {
                node_free(n);
                return r;
        }
        ccp_session_set_callback(n->ccp, node_ccp_cb, n);
        ccp_session_set_min_timeout(n->ccp, (uint64_t) m->conf->reply_timeout_ms * 1000u);

        Node **p = realloc(b->nodes, (b->n_nodes + 1) * sizeof *p);
        if (!p) {
                node_free(n);
                return -ENOMEM;
        }
        b->nodes = p;
        size_t i = b->n_nodes;
        while (i > 0 && b->nodes[i - 1]->nc.station > nc->station) {
                b->nodes[i] = b->nodes[i - 1];
                i--;
        }
        b->nodes[i] = n;
        b->n_nodes++;
        b->by_dto[nc->dto_id] = n;
        *ret = n;
        return 0;
}

static Node *bus_find_station(CanBus *b, uint16_t sa)
{
        for (size_t i = 0; i < b->n_nodes; i++)
                if (b->nodes[i]->nc.station == sa)
                        return b->nodes[i];
        return NULL;
}

/* ---- the node inventory (inventory.h) ------------------------------------------------------------ */

static void node_to_inv(const Node *n, struct inv_node *x)
{
        *x = (struct inv_node){0};
        snprintf(x->bus, sizeof x->bus, "%s", n->bus->conf->name);
        x->station = n->nc.station;
        x->configured = n->configured;
        x->identified = n->identified;
        x->has_image = n->has_image;
        memcpy(x->uid, n->uid, sizeof x->uid);
        x->hw_id = n->hw_id;
        x->boot_version = n->boot_version;
        memcpy(x->version, n->version, sizeof x->version);
        /* a serial node's release is that of the image canfleetd last flashed and verified on it */
        x->release = n->has_image || (node_is_serial(n) && n->version[0]) ? n->running.release : 0;
        memcpy(x->payload_sha, n->running_sha, sizeof x->payload_sha);
        x->mode = n->mode;
        x->last_update = n->last_update;
        x->bank = n->bank;
        x->trial = n->trial;
        x->last_seen = n->last_seen;
        memcpy(x->last_result, n->last_result, sizeof x->last_result);
        x->last_job = n->last_job;
        x->last_time = n->last_time;
        if (node_is_serial(n))
                snprintf(x->protocol, sizeof x->protocol, "%s", cf_node_protocol_str(node_protocol(n)));
        memcpy(x->part, n->part, sizeof x->part);
        memcpy(x->identity, n->identity, sizeof x->identity);
}

static void inv_from(Node *n, const struct inv_node *x)
{
        /* A serial node's record on a bus that now has another protocol (or is CAN) describes another
         * chip: nothing of it is taken. Older records have no protocol: taken as before. */
        if (x->protocol[0] &&
            (!node_is_serial(n) || strcmp(x->protocol, cf_node_protocol_str(node_protocol(n))) != 0))
                return;
        n->identified = x->identified;
        n->has_image = x->has_image;
        memcpy(n->uid, x->uid, sizeof n->uid);
        n->hw_id = x->hw_id;
        n->boot_version = x->boot_version;
        memcpy(n->version, x->version, sizeof n->version);
        n->running.release = x->release;
        memcpy(n->running_sha, x->payload_sha, sizeof n->running_sha);
        n->mode = x->mode;
        n->last_update = x->last_update;
        n->bank = x->bank;
        n->trial = x->trial;
        n->last_seen = x->last_seen;
        memcpy(n->last_result, x->last_result, sizeof n->last_result);
        n->last_job = x->last_job;
        n->last_time = x->last_time;
        /* a serial node: what its loader said at its last session, until the next one says otherwise
         * (serial-job.c); its state stays "unknown" until then, as a CAN node's before its probe */
        if (node_is_serial(n)) {
                memcpy(n->part, x->part, sizeof n->part);
                memcpy(n->identity, x->identity, sizeof n->identity);
        }
}

/* Every exported node as a snapshot: O(nodes), at start and when the log has grown long. */
static int inventory_snapshot(Manager *m)
{
        size_t cnt = 0, k = 0;
        for (size_t i = 0; i < m->n_buses; i++)
                cnt += m->buses[i]->n_nodes;
        _cleanup_(freep) struct inv_node *all = calloc(cnt ? cnt : 1, sizeof *all);
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buses; i++)
                for (size_t j = 0; j < m->buses[i]->n_nodes; j++)
                        if (m->buses[i]->nodes[j]->exported)
                                node_to_inv(m->buses[i]->nodes[j], &all[k++]);
        if (m->inv_fd >= 0) {
                close(m->inv_fd);
                m->inv_fd = -1;
        }
        int r = inventory_save(m->conf->state_dir, all, k, m->inv_seq);
        if (r >= 0)
                m->inv_records = 0;
        return r;
}

void manager_node_changed(Node *n)
{
        Manager *m = n->m;
        if (!n->exported)
                return;
        struct inv_node x;
        node_to_inv(n, &x);
        ++m->inv_seq;
        /* After a failure only a whole snapshot goes on (the log may end in a torn record). */
        int r = m->inv_failed ? -EIO : inventory_append(m->conf->state_dir, &m->inv_fd, m->inv_seq, &x);
        /* Folded into a new snapshot (O(nodes)) once the log holds a few records per node: each
         * record pays O(1) for it. */
        if (r >= 0 && ++m->inv_records > 1024u) {
                size_t cnt = 0;
                for (size_t i = 0; i < m->n_buses; i++)
                        cnt += m->buses[i]->n_nodes;
                if (m->inv_records > 4u * cnt + 1024u)
                        r = inventory_snapshot(m);
        }
        if (r < 0) {
                /* The inventory is what the daemon knew: a lost record is learnt again by the next probe,
                 * so this does not stop anything. A whole snapshot is tried now and at each change
                 * (the log may end in a torn record); said once until one succeeds. */
                if (m->inv_fd >= 0) {
                        close(m->inv_fd);
                        m->inv_fd = -1;
                }
                r = inventory_snapshot(m);
                if (r < 0 && !m->inv_failed)
                        log_warning_errno(r, "%s: cannot save the node inventory: %m; what canfleetd "
                                          "learns is kept in memory and saved again once it can",
                                          m->conf->state_dir);
                m->inv_failed = r < 0;
        } else if (m->inv_failed) {
                m->inv_failed = false;
        }
}

static void node_export(Node *n);

/* The nodes known before this start: configured ones get what was known of them, nodes found by a
 * scan are exported again (unless their bus or station is gone from the configuration). */
static void inventory_restore(Manager *m)
{
        struct inv_node *list = NULL;
        size_t cnt = 0;
        int r = inventory_load(m->conf->state_dir, &list, &cnt, &m->inv_seq);
        if (r < 0) {
                log_warning_errno(r, "%s: cannot load the node inventory: %m", m->conf->state_dir);
                return;
        }
        for (size_t i = 0; i < cnt; i++) {
                CanBus *b = manager_find_bus(m, list[i].bus);
                if (!b)
                        continue;
                Node *n = bus_find_station(b, list[i].station);
                if (!n) {
                        if (list[i].station < b->conf->scan_first || list[i].station > b->conf->scan_last)
                                continue;
                        struct cf_node_conf nc = cf_bus_node_conf(b->conf, list[i].station);
                        if (node_new(b, &nc, false, &n) < 0)
                                continue;
                }
                inv_from(n, &list[i]);
                n->exported = true;
        }
        free(list);
        /* One snapshot of what is known now (configured nodes never seen included): the log starts
         * empty. */
        r = inventory_snapshot(m);
        if (r < 0)
                log_warning_errno(r, "%s: cannot save the node inventory: %m", m->conf->state_dir);
}

const char *manager_bus_error(const CanBus *b)
{
        if (b->transport->state == CF_LINK_UP)
                return NULL;
        if (b->transport->error[0])
                return b->transport->error;
        switch (b->transport->state) {
        case CF_LINK_BUS_OFF:
                return "the controller is bus-off";
        case CF_LINK_ERROR:
                return "cannot be opened";
        default:
                return "link down";
        }
}

static void node_export(Node *n)
{
        if (n->exported)
                return;
        n->exported = true;
        bus_node_added(n);
        bus_manager_changed(n->m, "Nodes", NULL);
}

CanBus *manager_find_bus(Manager *m, const char *name)
{
        for (size_t i = 0; i < m->n_buses; i++)
                if (strcmp(m->buses[i]->conf->name, name) == 0)
                        return m->buses[i];
        return NULL;
}

int manager_find_node(Manager *m, const char *ref, Node **ret)
{
        if (ref[0] == '/') {
                for (size_t i = 0; i < m->n_buses; i++)
                        for (size_t k = 0; k < m->buses[i]->n_nodes; k++) {
                                Node *n = m->buses[i]->nodes[k];
                                if (n->exported && strcmp(n->path, ref) == 0) {
                                        *ret = n;
                                        return 0;
                                }
                        }
                return -ENXIO;
        }
        const char *colon = strrchr(ref, ':');
        if (!colon || colon == ref || (size_t) (colon - ref) > CF_BUS_NAME_MAX)
                return -EINVAL;
        char bus[CF_BUS_NAME_MAX + 1];
        memcpy(bus, ref, (size_t) (colon - ref));
        bus[colon - ref] = 0;
        unsigned sa;
        if (manager_parse_id(colon + 1, &sa) < 0 || sa > 0xFFFF)
                return -EINVAL;
        CanBus *b = manager_find_bus(m, bus);
        if (!b)
                return -ENXIO;
        Node *n = bus_find_station(b, (uint16_t) sa);
        if (!n || !n->exported)
                return -ENXIO;
        *ret = n;
        return 0;
}

int manager_parse_id(const char *s, unsigned *ret)
{
        /* One spelling per number: decimal digits only, no sign, no spaces, no leading zero. strtoul()
         * takes " 1", "+1", "01" and wraps "4294967297" to 1 once cast: none of that here. */
        uint64_t v = 0;
        if (!s || s[0] < '1' || s[0] > '9')
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10u + (uint64_t) (*p - '0');
                if (v > UINT32_MAX)
                        return -ERANGE;
        }
        *ret = (unsigned) v;
        return 0;
}

Job *manager_find_job(Manager *m, unsigned id)
{
        for (size_t i = 0; i < m->n_jobs; i++)
                if (m->jobs[i]->id == id)
                        return m->jobs[i];
        return NULL;
}

/* ---- buses ------------------------------------------------------------------------------------- */

static void on_frame(CanTransport *t, const struct cf_can_frame *f, void *userdata)
{
        CanBus *b = userdata;
        uint64_t now;
        sd_event_now(b->m->event, CLOCK_MONOTONIC, &now);
        /* Any frame at all: the adapter delivers (a stall is told from silent nodes by this). */
        ccp_bus_frame_received(&b->load, now);
        if (f->id >= CF_CAN_IDS)
                return;
        Node *n = b->by_dto[f->id];
        if (n)
                ccp_session_handle_frame(n->ccp, f);
}

static void start_probe(CanBus *b);

static void on_link(CanTransport *t, enum cf_link_state s, void *userdata)
{
        CanBus *b = userdata;
        bool up = s == CF_LINK_UP;
        log_node(up ? LOG_INFO : LOG_WARNING, b->conf->name, NULL, 0, "%s: link %s%s", b->conf->name,
                 cf_link_state_str(s), up ? "" : ": sessions paused");
        for (size_t i = 0; i < b->n_nodes; i++)
                ccp_session_link(b->nodes[i]->ccp, up);
        /* Behind a lost adapter the nodes may have lost power and their CCP session: a node not yet
         * reset starts again from CONNECT (CLEAR_MEMORY makes C clean); one past DISCONNECT is
         * being waited for anyway. */
        /* The nodes in a session say why they stopped: "waiting for bus0: adapter … lost: …". */
        char why[224];
        snprintf(why, sizeof why, "waiting for %s: %s", b->conf->name, up ? "" : manager_bus_error(b));
        for (size_t i = 0; i < b->n_nodes; i++) {
                FlashJob *f = b->nodes[i]->flash;
                if (!f || !f->slot || f->step < STEP_CONNECTING || f->step >= STEP_REBOOTING)
                        continue;
                if (!up || (f->error && strncmp(f->error, why, strlen(why)) == 0)) {
                        free(f->error);
                        f->error = up ? NULL : strdup(why);
                        manager_flash_changed(f, false, false);
                }
        }
        for (size_t i = 0; up && i < b->n_nodes; i++) {
                FlashJob *f = b->nodes[i]->flash;
                if (f && f->slot && f->step >= STEP_CONNECTING && f->step < STEP_REBOOTING)
                        flash_job_begin(f);
        }
        bus_manager_changed(b->m, "Buses", NULL);
        if (up)
                start_probe(b);
        if (up)
                manager_schedule(b->m);
}

/* The kernel filter of a bus: every DTO id a node of this bus may answer on. */
static int bus_dto_ids(const struct cf_bus_conf *bc, uint32_t **ret, size_t *ret_n)
{
        size_t cap = bc->n_nodes + (size_t) (bc->scan_last - bc->scan_first + 1u);
        uint32_t *ids = calloc(cap, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        size_t n_ids = 0;
        for (size_t i = 0; i < bc->n_nodes; i++)
                ids[n_ids++] = bc->nodes[i].dto_id;
        for (unsigned sa = bc->scan_first; sa <= bc->scan_last; sa++) {
                uint32_t id = cf_bus_node_conf(bc, (uint16_t) sa).dto_id;
                bool dup = false;
                for (size_t i = 0; i < n_ids && !dup; i++)
                        dup = ids[i] == id;
                if (!dup)
                        ids[n_ids++] = id;
        }
        *ret = ids;
        *ret_n = n_ids;
        return 0;
}

static int bus_setup(Manager *m, CanBus *b, const struct cf_bus_conf *bc)
{
        b->m = m;
        b->conf = bc;
        b->by_dto = calloc(CF_CAN_IDS, sizeof *b->by_dto);
        if (!b->by_dto)
                return -ENOMEM;
        b->load.frame_us = (uint32_t) ((uint64_t) FRAME_BITS * 1000000u / bc->bitrate);
        if (b->load.frame_us == 0)
                b->load.frame_us = 1;
        b->load.stall_max_us = (uint64_t) m->conf->node_lost_timeout_s * 1000000u;

        _cleanup_(freep) uint32_t *ids = NULL;
        size_t n_ids = 0;
        int r = bus_dto_ids(bc, &ids, &n_ids);
        if (r < 0)
                return r;
        r = can_transport_new(m->event, bc, ids, n_ids, on_frame, on_link, b, &b->transport);
        if (r < 0)
                return r;
        for (size_t i = 0; i < bc->n_nodes; i++) {
                Node *n;
                r = node_new(b, &bc->nodes[i], true, &n);
                if (r < 0)
                        return r;
                n->exported = true;
        }
        return 0;
}

static void bus_done(CanBus *b)
{
        group_bus_done(b);
        for (size_t i = 0; i < b->n_nodes; i++)
                node_free(b->nodes[i]);
        free(b->nodes);
        free(b->by_dto);
        sd_bus_message_unref(b->scan_reply);
        can_transport_free(b->transport);
}

/* ---- jobs ------------------------------------------------------------------------------------- */

static Job *job_free(Job *j)
{
        if (!j)
                return NULL;
        bundle_get_cancel(j->download);
        free(j->url);
        for (size_t i = 0; i < j->n_nodes; i++)
                flash_job_free(&j->nodes[i]);
        free(j->nodes);
        for (size_t i = 0; i < 2 * j->n_skipped; i++)
                free(j->skipped[i]);
        free(j->skipped);
        free(j->image);
        free(j->runs);
        free(j->runs2);
        free(j->path);
        sd_event_source_disable_unref(j->progress_timer);
        sd_event_source_disable_unref(j->save_timer);
        if (j->log_fd >= 0)
                close(j->log_fd);
        free(j);
        return NULL;
}

static void node_record(const FlashJob *f, struct job_record_node *rn)
{
        snprintf(rn->bus, sizeof rn->bus, "%s", f->bus);
        rn->station = f->station;
        /* A node whose C may hold the complete image is saved as "programming" at least until
         * CLEAR_MEMORY: a restart then knows that a cancel must erase C. */
        enum flash_step st = f->step;
        if (f->staged && st < STEP_PROGRAMMING)
                st = STEP_PROGRAMMING;
        snprintf(rn->step, sizeof rn->step, "%s", flash_step_str(st));
        rn->error = f->error;
        rn->bytes_done = f->bytes_done;
        rn->bytes_total = f->bytes_total;
        rn->group = f->joined;
}

static void job_save_failed(Job *j, int r)
{
        Manager *m = j->m;
        if (!j->save_failed)
                log_internal(LOG_ERR, r, NULL, NULL, j->id,
                             "job %u: cannot save its state in %s: %m; its new steps wait until a save "
                             "succeeds (tried again every %llu s)",
                             j->id, m->conf->state_dir, (unsigned long long) (SAVE_RETRY_US / 1000000u));
        j->save_failed = true;
        if (j->log_fd >= 0) {
                /* The log may end in a torn record: only a new snapshot goes on from here. */
                close(j->log_fd);
                j->log_fd = -1;
        }
        uint64_t now;
        sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (j->save_timer) {
                sd_event_source_set_time(j->save_timer, now + SAVE_RETRY_US);
                sd_event_source_set_enabled(j->save_timer, SD_EVENT_ONESHOT);
        }
}

/* The whole job as a snapshot (N.json), which also ends its log. O(nodes): at creation, at the end, at
 * a resume, and when the log has grown long (compaction). */
static int job_snapshot(Job *j)
{
        Manager *m = j->m;
        struct job_record r = {.id = j->id,
                               .created = j->created,
                               .finished = j->finished,
                               .force = j->force,
                               .cancel = j->cancel,
                               .seq = j->seq,
                               .n_nodes = j->n_nodes};
        snprintf(r.state, sizeof r.state, "%s", job_state_str(j->state));
        memcpy(r.image, j->image_sha, sizeof r.image);
        memcpy(r.version, j->version, sizeof r.version);
        memcpy(r.payload_sha, j->payload_sha, sizeof r.payload_sha);
        r.hw_id = j->info.hw_id;
        r.release = j->info.release;
        r.started = j->started;
        memcpy(r.target, j->target, sizeof r.target);
        memcpy(r.part_id, j->part_id, sizeof r.part_id);
        r.skipped = j->skipped; /* borrowed: not freed here */
        r.n_skipped = j->n_skipped;
        r.nodes = calloc(j->n_nodes ? j->n_nodes : 1, sizeof *r.nodes);
        if (!r.nodes)
                return -ENOMEM;
        for (size_t i = 0; i < j->n_nodes; i++)
                node_record(&j->nodes[i], &r.nodes[i]);
        if (j->log_fd >= 0) {
                close(j->log_fd);
                j->log_fd = -1;
        }
        int k = job_store_save(m->conf->state_dir, &r);
        free(r.nodes);
        if (k < 0)
                return k;
        j->log_records = 0;
        j->sync_pending = false;
        return 0;
}

static void job_saved_again(Job *j)
{
        if (!j->save_failed)
                return;
        j->save_failed = false;
        log_internal(LOG_NOTICE, 0, NULL, NULL, j->id, "job %u: state saved again, going on", j->id);
        for (size_t i = 0; i < j->n_nodes; i++)
                flash_job_saved(&j->nodes[i]);
        manager_schedule(j->m);
}

static void job_save(Job *j)
{
        int r = job_snapshot(j);
        if (r < 0) {
                job_save_failed(j, r);
                return;
        }
        job_saved_again(j);
}

static int on_save_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        Job *j = userdata;
        if (j->save_failed)
                job_save(j);
        return 0;
}

/* Append one record to the job's log; O(1) whatever the job's size. */
static int job_append(Job *j, const FlashJob *f, bool sync)
{
        Manager *m = j->m;
        if (j->save_failed)
                return -ENOSPC; /* the retry timer writes a whole snapshot */
        int r = 0;
        if (j->log_fd < 0)
                r = job_store_log_open(m->conf->state_dir, j->id, &j->log_fd);
        if (r >= 0) {
                j->seq++;
                if (f) {
                        struct job_record_node rn;
                        node_record(f, &rn);
                        r = job_store_append_node(j->log_fd, j->seq, (size_t) (f - j->nodes), &rn, sync);
                } else {
                        r = job_store_append_job2(j->log_fd, j->seq, job_state_str(j->state), j->finished,
                                                  j->cancel, j->started, sync);
                }
        }
        if (r < 0) {
                job_save_failed(j, r);
                return r;
        }
        if (sync)
                j->sync_pending = false;
        else
                j->sync_pending = true;
        if (++j->log_records > (size_t) COMPACT_PER_NODE * j->n_nodes + COMPACT_FLOOR) {
                r = job_snapshot(j);
                if (r < 0)
                        job_save_failed(j, r);
        }
        return r;
}

bool manager_flash_saved(FlashJob *f)
{
        return !f->job->save_failed;
}

static int on_progress_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        Job *j = userdata;
        /* Records written since the last tick reach the disk here: a SIGKILL cannot lose them (they
         * are in the page cache), a power cut loses at most one interval of steps that resume safely. */
        if (j->sync_pending && j->log_fd >= 0) {
                j->sync_pending = false;
                if (fdatasync(j->log_fd) < 0)
                        job_save_failed(j, -errno);
        }
        if (j->progress_dirty) {
                j->progress_dirty = false;
                bus_job_changed(j, "Progress", NULL);
        }
        manager_update_status(j->m);
        return 0;
}

static void progress_later(Job *j)
{
        if (j->progress_dirty || !j->progress_timer)
                return;
        j->progress_dirty = true;
        uint64_t now;
        sd_event_now(j->m->event, CLOCK_MONOTONIC, &now);
        sd_event_source_set_time(j->progress_timer, now + PROGRESS_INTERVAL_US);
        sd_event_source_set_enabled(j->progress_timer, SD_EVENT_ONESHOT);
}

/* Queued nodes and cancelled ones whose staged image must still be erased need a session slot. */
static bool waits_for_slot(const FlashJob *f)
{
        return (f->step == STEP_QUEUED || f->step == STEP_CANCELLING) && !f->slot;
}

/* Keep n_final and sched_from right for a node whose step was set; O(1). */
static void job_track(Job *j, FlashJob *f)
{
        bool fin = flash_step_final(f->step);
        if (fin != f->counted_final) {
                f->counted_final = fin;
                if (fin)
                        j->n_final++;
                else
                        j->n_final--;
        }
        size_t idx = (size_t) (f - j->nodes);
        if (waits_for_slot(f) && idx < j->sched_from)
                j->sched_from = idx;
}

/* After steps were set directly (a resume): count again. */
static void job_recount(Job *j)
{
        j->n_final = 0;
        j->sched_from = 0;
        for (size_t i = 0; i < j->n_nodes; i++) {
                j->nodes[i].counted_final = flash_step_final(j->nodes[i].step);
                j->n_final += j->nodes[i].counted_final;
        }
}

void manager_flash_changed(FlashJob *f, bool persist, bool urgent)
{
        Job *j = f->job;
        job_track(j, f);
        fleet_server_flash_changed(j->m->fleet, f);
        /* Only DISCONNECT(end) acts on its saved step in a way a resume must know before the frame
         * leaves: that record goes to the disk at once; the others with the next progress tick. */
        if (persist)
                (void) job_append(j, f, f->step == STEP_REBOOTING);
        (void) urgent; /* every change is coalesced now: see PROGRESS_INTERVAL_US */
        progress_later(j);
}

static bool image_in_use(Manager *m, const char *sha, const Job *except)
{
        for (size_t i = 0; i < m->n_jobs; i++)
                if (m->jobs[i] != except && m->jobs[i]->state == JOB_RUNNING &&
                    strcmp(m->jobs[i]->image_sha, sha) == 0)
                        return true;
        return false;
}

static void prune_jobs(Manager *m)
{
        size_t finished = 0;
        for (size_t i = 0; i < m->n_jobs; i++)
                finished += m->jobs[i]->state != JOB_RUNNING;
        while (finished > m->conf->history) {
                size_t i = 0;
                while (m->jobs[i]->state == JOB_RUNNING)
                        i++;
                Job *j = m->jobs[i];
                bus_job_removed(j);
                job_store_remove(m->conf->state_dir, j->id);
                memmove(&m->jobs[i], &m->jobs[i + 1], (m->n_jobs - i - 1) * sizeof *m->jobs);
                m->n_jobs--;
                job_free(j);
                finished--;
                bus_manager_changed(m, "Jobs", NULL);
        }
}

static void job_finish(Job *j)
{
        Manager *m = j->m;
        bool failed = false;
        for (size_t i = 0; i < j->n_nodes; i++)
                failed |= j->nodes[i].step == STEP_FAILED;
        j->state = j->cancel ? JOB_CANCELLED : failed ? JOB_FAILED : JOB_DONE;
        j->finished = now_realtime_us();
        job_save(j);
        /* One line an operator (and journalctl -o verbose) reads the outcome from: the counts and how
         * long it took, also as fields (DONE= FAILED= CANCELLED= NODES= DURATION_S=). */
        size_t n_done = 0, n_failed = 0, n_cancelled = 0;
        for (size_t i = 0; i < j->n_nodes; i++) {
                n_done += j->nodes[i].step == STEP_DONE || j->nodes[i].step == STEP_CONFIRMED;
                n_failed += j->nodes[i].step == STEP_FAILED;
                n_cancelled += j->nodes[i].step == STEP_CANCELLED;
        }
        uint64_t secs = j->finished > j->created ? (j->finished - j->created + 500000u) / 1000000u : 0;
        char fields[160];
        snprintf(fields, sizeof fields, "JOB_STATE=%s\nNODES=%zu\nDONE=%zu\nFAILED=%zu\nCANCELLED=%zu\nDURATION_S=%" PRIu64,
                 job_state_str(j->state), j->n_nodes, n_done, n_failed, n_cancelled, secs);
        log_event(CF_MSGID_JOB_FINISHED, fields, j->state == JOB_DONE ? LOG_INFO : LOG_WARNING, NULL, NULL, j->id,
                  "job %u: %s: %zu of %zu node(s) updated, %zu failed, %zu cancelled, in %" PRIu64 " s", j->id,
                  job_state_str(j->state), n_done, j->n_nodes, n_failed, n_cancelled, secs);
        for (size_t i = 0; i < m->n_buses; i++) {
                const CanBus *b = m->buses[i];
                log_debug("%s: %" PRIu64 " frames sent, %" PRIu64 " received; %" PRIu64
                          " hold windows, %" PRIu64 " answers came in one, %" PRIu64 " CROs held back",
                          b->conf->name, b->transport->frames_tx, b->transport->frames_rx, b->load.holds,
                          b->load.rescued, b->load.held);
        }
        if (!image_in_use(m, j->image_sha, j))
                job_store_drop_image(m->conf->cache_dir, j->image_sha);
        bus_job_changed(j, "State", "Finished", "Progress", NULL);
        bus_job_completed(j);
        manager_update_status(m);
        if (m->job_finished)
                m->job_finished(m, j, m->job_finished_userdata);
        prune_jobs(m);
}

void manager_flash_finished(FlashJob *f)
{
        Job *j = f->job;
        if (j->state != JOB_RUNNING)
                return;
        job_track(j, f);
        if (j->n_final >= j->n_nodes) {
                /* O(nodes) once per job, to be sure of the count */
                job_recount(j);
                if (j->n_final == j->n_nodes)
                        job_finish(j);
        }
        manager_schedule(j->m);
}

static void download_end(Job *j, enum flash_step step, const char *why);

int job_cancel(Job *j)
{
        if (j->state != JOB_RUNNING)
                return -EALREADY;
        j->cancel = true;
        log_internal(LOG_NOTICE, 0, NULL, NULL, j->id, "job %u: cancel requested", j->id);
        if (j->download) {
                /* nothing reached a bus yet: the download stops, its part stays for a later try */
                bundle_get_cancel(j->download);
                j->download = NULL;
                download_end(j, STEP_CANCELLED, NULL);
                return 0;
        }
        for (size_t i = 0; i < j->n_nodes && j->state == JOB_RUNNING; i++)
                flash_job_cancel(&j->nodes[i]);
        if (j->state == JOB_RUNNING)
                (void) job_append(j, NULL, true);
        return 0;
}

static int job_new(Manager *m, unsigned id, Job **ret)
{
        Job *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->m = m;
        j->id = id;
        j->log_fd = -1;
        int r = asprintf(&j->path, "/io/canfleet/Gateway1/job/%u", id) < 0 ? -ENOMEM : 0;
        if (r >= 0)
                r = sd_event_add_time(m->event, &j->progress_timer, CLOCK_MONOTONIC, 0, 0, on_progress_timer,
                                      j);
        if (r >= 0)
                r = sd_event_source_set_enabled(j->progress_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(m->event, &j->save_timer, CLOCK_MONOTONIC, 0, 0, on_save_timer, j);
        if (r >= 0)
                r = sd_event_source_set_enabled(j->save_timer, SD_EVENT_OFF);
        if (r < 0) {
                job_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

/* A serial target's raw image (docs/design.md §8): j->target, part_id, image_size and info (from the
 * manifest) are set; sent as it is, so the plan is its size. */
static int job_set_raw_image(Job *j, uint8_t *image, const char *sha_hex)
{
        j->image = image;
        memcpy(j->image_sha, sha_hex, 65);
        memcpy(j->payload_sha, sha_hex, 65); /* no trailer: the raw image's own sha256 */
        snprintf(j->version, sizeof j->version, "%u.%u.%u", j->info.ver_major, j->info.ver_minor,
                 j->info.ver_patch);
        j->image_crc = cf_crc32_le(CF_CRC32_INIT, image, j->image_size);
        j->plan_bytes = j->image_size;
        return 0;
}

/* image: size bytes, one area image or the two links of a dual-bank application (dual-bank.h), or a
 * serial target's raw image (j->target set) */
static int job_set_image(Job *j, uint8_t *image, size_t size, const char *sha_hex, char **error)
{
        if (j->target[0])
                return job_set_raw_image(j, image, sha_hex);
        j->image_size = CF_IMAGE_AREA_SIZE;
        int s = cf_image_check_full(image, &j->info);
        if (s != CF_IMAGE_OK) {
                if (error &&
                    asprintf(error, "not a valid packed area image: %s", cf_image_status_str(s)) < 0)
                        *error = NULL;
                free(image);
                return -EBADMSG;
        }
        j->image = image;
        memcpy(j->image_sha, sha_hex, 65);
        static const char hex[] = "0123456789abcdef";
        for (unsigned i = 0; i < 32; i++) {
                j->payload_sha[2 * i] = hex[j->info.payload_sha256[i] >> 4];
                j->payload_sha[2 * i + 1] = hex[j->info.payload_sha256[i] & 0xF];
        }
        j->payload_sha[64] = 0;
        snprintf(j->version, sizeof j->version, "%u.%u.%u", j->info.ver_major, j->info.ver_minor,
                 j->info.ver_patch);
        j->image_crc = cf_crc32_le(CF_CRC32_INIT, image, CF_IMAGE_AREA_SIZE);
        int r = cf_plan_runs(image, CF_IMAGE_AREA_SIZE, &j->runs, &j->n_runs);
        if (r < 0)
                return r;
        j->plan_bytes = cf_plan_bytes(j->runs, j->n_runs);
        return dual_job_set_links(j, size, error);
}

static void sha_hex_of(const uint8_t *data, size_t size, char out[65])
{
        static const char hex[] = "0123456789abcdef";
        uint8_t d[CF_SHA256_LEN];
        cf_sha256(data, size, d);
        for (unsigned i = 0; i < 32; i++) {
                out[2 * i] = hex[d[i] >> 4];
                out[2 * i + 1] = hex[d[i] & 0xF];
        }
        out[64] = 0;
}

/* The next job id: ids grow from the highest one ever saved; past 4294967295 they start again at 1,
 * skipping every id a job (or a damaged job file) still holds, so that an id is never 0 and never
 * names two jobs. */
static int alloc_job_id(Manager *m, unsigned *ret)
{
        unsigned id = m->next_job_id ? m->next_job_id : 1;
        for (size_t tries = 0; tries <= m->n_jobs + 4096u; tries++) {
                if (!manager_find_job(m, id) && !job_store_id_taken(m->conf->state_dir, id)) {
                        if (id < m->next_job_id)
                                log_notice("Job ids wrapped around: the new job is %u", id);
                        *ret = id;
                        return 0;
                }
                id = id == UINT32_MAX ? 1 : id + 1;
        }
        return -ENOSPC;
}

static int manager_add_job(Manager *m, Job *j)
{
        Job **p = realloc(m->jobs, (m->n_jobs + 1) * sizeof *p);
        if (!p)
                return -ENOMEM;
        m->jobs = p;
        m->jobs[m->n_jobs++] = j;
        bus_job_added(j);
        bus_manager_changed(m, "Jobs", NULL);
        return 0;
}

/* Pairs of strings (node, reason) being built; freed unless taken. */
struct pairs {
        char **v;
        size_t n;
};

static void pairs_done(struct pairs *p)
{
        for (size_t i = 0; p->v && i < 2 * p->n; i++)
                free(p->v[i]);
        free(p->v);
}

/* Anti-rollback up front: every target node whose running release is known must not be above the
 * image's. The whole update is refused, naming each such node, rather than failing them one by one
 * inside the job; nodes whose release is unknown yet are checked in the job (flash-job.c). */
static int check_rollback(Node *const *set, size_t n_set, const struct cf_image_info *info, bool bundle,
                          char **error)
{
        _cleanup_(freep) char *names = NULL;
        size_t len = 0, count = 0;
        for (size_t i = 0; i < n_set; i++) {
                const Node *x = set[i];
                if (!x->identified || !x->has_image || x->running.release <= info->release)
                        continue;
                count++;
                if (!error)
                        continue;
                char part[96];
                int k = snprintf(part, sizeof part, "%s%s runs release %" PRIu32, count > 1 ? ", " : "",
                                 x->name, x->running.release);
                char *p = realloc(names, len + (size_t) k + 1);
                if (!p)
                        return -ENOMEM;
                names = p;
                memcpy(names + len, part, (size_t) k + 1);
                len += (size_t) k;
        }
        if (count == 0)
                return 0;
        if (error && asprintf(error, "anti-rollback: %s, the %s has release %" PRIu32 " (nothing erased)",
                              names, bundle ? "bundle" : "image", info->release) < 0)
                *error = NULL;
        log_warning("update refused: %s", error && *error ? *error : "anti-rollback");
        return -ERANGE;
}

/* The checks of an update, in docs/design.md §6's order, on the daemon's own copy of data: trust, the full
 * image check, hardware id, anti-rollback. *ret_set gets the nodes to update (with all: the exported
 * nodes that are not known to be other hardware; candidates: only those, all == false: nodes). */
static int update_check(Manager *m, const uint8_t *data, size_t data_size, Node **nodes, size_t n, bool all,
                        Node *const *candidates, size_t n_candidates, struct trusted_image *ret_t,
                        struct cf_image_info *ret_info, Node ***ret_set, size_t *ret_n, struct pairs *ret_skipped,
                        char **error)
{
        _cleanup_(freep) Node **set = NULL;
        size_t n_set = 0, other_hw = 0, other_layout = 0;
        struct trusted_image t;
        struct cf_image_info info;

        if (error)
                *error = NULL;
        /* Trust first (signed bundle against the keyring, or allow_unsigned), on the daemon's own copy,
         * before anything reaches a bus. */
        int r = trust_check(m->keyring, m->conf->allow_unsigned, data, data_size, &t, error);
        if (r < 0) {
                log_warning("update refused: %s", error && *error ? *error : strerror(-r));
                return r;
        }
        *ret_t = t; /* how the bytes are trusted, also when a later check refuses them (PlanUpdate) */
        const uint8_t *image = t.image;
        /* A serial target's raw image was checked as its target's (cf_bundle_raw_image_check); an area
         * image gets the same full check as `canfleetctl image inspect`, also a bundle's (which
         * cf_bundle_verify() has checked already: one rule for both ways in). */
        int proto = t.target[0] ? cf_node_protocol_from_str(t.target) : (int) CF_PROTOCOL_CCP;
        int s = CF_IMAGE_OK;
        if (t.target[0])
                info = t.info;
        else
                s = cf_image_check_full(image, &info);
        if (s == CF_IMAGE_OK && !t.target[0] && t.n_images == 2)
                s = cf_image_check_full_at(image + CF_IMAGE_AREA_SIZE, NULL, cf_f7_app_addr(2));
        if (s != CF_IMAGE_OK) {
                if (error &&
                    asprintf(error, "not a valid packed area image: %s", cf_image_status_str(s)) < 0)
                        *error = NULL;
                return -EBADMSG;
        }
        bool dual = t.n_images == 2;

        size_t cap = n + n_candidates;
        if (n == 0 && all && !candidates)
                for (size_t i = 0; i < m->n_buses; i++)
                        cap += m->buses[i]->n_nodes;
        set = calloc(cap ? cap : 1, sizeof *set);
        if (!set)
                return -ENOMEM;
        if (n == 0 && all) {
                /* "all" is the configured nodes, decided from what is known of them (the inventory
                 * survives restarts, the start-up probe refreshes it), the same way whether or not a
                 * scan ran: nodes found only by a scan are not part of it; a node known to be other
                 * hardware is not ours to update; one known offline (its last probe got no answer) is
                 * left out rather than failed. A node never identified is included and checked in the
                 * job (a hardware mismatch there fails it, nothing erased). Each left-out node is
                 * reported with its reason (the job's Skipped). A URL job chose its candidates (the
                 * nodes it holds) before the image was known: the same rule is applied to them. */
                for (size_t i = 0, bi = 0, k = 0; candidates ? i < n_candidates : bi < m->n_buses;) {
                        Node *x;
                        if (candidates)
                                x = candidates[i++];
                        else if (k < m->buses[bi]->n_nodes)
                                x = m->buses[bi]->nodes[k++];
                        else {
                                bi++;
                                k = 0;
                                continue;
                        }
                        if (!x->exported || !x->configured)
                                continue;
                        char why[48] = "";
                        const char *layout = dual_layout_mismatch(x, dual);
                        if ((int) node_protocol(x) != proto) {
                                /* another kind of node: another bundle's (update accepts one per target) */
                                snprintf(why, sizeof why, "%s node", cf_node_protocol_str(node_protocol(x)));
                        } else if (t.target[0] && x->part[0] && strcasecmp(x->part, t.part_id) != 0) {
                                snprintf(why, sizeof why, "part %s", x->part);
                                other_hw++;
                        } else if (!t.target[0] && x->identified && x->hw_id != info.hw_id) {
                                snprintf(why, sizeof why, "hw 0x%04X", x->hw_id);
                                other_hw++;
                        } else if (layout) {
                                /* a dual-bank node needs both links, a single-bank one a single image */
                                snprintf(why, sizeof why, "%s", layout);
                                other_layout++;
                        } else if (strcmp(x->state, "offline") == 0) {
                                snprintf(why, sizeof why, "offline");
                        }
                        if (!why[0]) {
                                set[n_set++] = x;
                                continue;
                        }
                        if (!ret_skipped)
                                continue;
                        char **p = realloc(ret_skipped->v, (ret_skipped->n + 1) * 2 * sizeof *p);
                        if (!p)
                                return -ENOMEM;
                        ret_skipped->v = p;
                        p[2 * ret_skipped->n] = strdup(x->name);
                        p[2 * ret_skipped->n + 1] = strdup(why);
                        ret_skipped->n++;
                        if (!p[2 * ret_skipped->n - 2] || !p[2 * ret_skipped->n - 1])
                                return -ENOMEM;
                }
        } else {
                for (size_t i = 0; i < n; i++) {
                        bool dup = false;
                        for (size_t k = 0; k < n_set && !dup; k++)
                                dup = set[k] == nodes[i];
                        if (dup)
                                continue;
                        if ((int) node_protocol(nodes[i]) != proto) {
                                if (error && asprintf(error, "%s is a %s node, the %s is for %s", nodes[i]->name,
                                                      cf_node_protocol_str(node_protocol(nodes[i])),
                                                      t.bundle ? "bundle" : "image",
                                                      t.target[0] ? t.target : "ccp (an area image)") < 0)
                                        *error = NULL;
                                return -EXDEV;
                        }
                        if (t.target[0] && nodes[i]->part[0] && strcasecmp(nodes[i]->part, t.part_id) != 0) {
                                if (error && asprintf(error, "%s is %s, the bundle is for part %s (nothing erased)",
                                                      nodes[i]->name, nodes[i]->identity, t.part_id) < 0)
                                        *error = NULL;
                                return -EXDEV;
                        }
                        if (!t.target[0] && nodes[i]->identified && nodes[i]->hw_id != info.hw_id) {
                                if (error &&
                                    asprintf(error, "%s has hardware id 0x%04X, the image is for 0x%04X",
                                             nodes[i]->name, nodes[i]->hw_id, info.hw_id) < 0)
                                        *error = NULL;
                                return -EXDEV;
                        }
                        const char *layout = dual_layout_mismatch(nodes[i], dual);
                        if (layout) {
                                if (error && asprintf(error, "%s is a %s: it takes %s", nodes[i]->name, layout,
                                                      dual ? "a single image or bundle, not a dual-bank bundle"
                                                           : "a dual-bank bundle with both links "
                                                             "(canfleetctl bundle create IMAGE IMAGE2)") < 0)
                                        *error = NULL;
                                return -EXDEV;
                        }
                        set[n_set++] = nodes[i];
                }
        }
        if (n_set == 0 && other_layout > 0) {
                if (error && asprintf(error, "every node of hardware id 0x%04X is a %s node: %s",
                                      info.hw_id, dual ? "single-bank" : "dual-bank",
                                      dual ? "a dual-bank bundle is for dual-bank nodes"
                                           : "it takes a dual-bank bundle with both links "
                                             "(canfleetctl bundle create IMAGE IMAGE2)") < 0)
                        *error = NULL;
                return -EXDEV;
        }
        if (n_set == 0 && other_hw > 0) {
                if (t.target[0]) {
                        if (error && asprintf(error, "every %s node is another part than the bundle's %s",
                                              t.target, t.part_id) < 0)
                                *error = NULL;
                        return -EXDEV;
                }
                if (error && asprintf(error, "every node has another hardware id than the image's 0x%04X",
                                      info.hw_id) < 0)
                        *error = NULL;
                return -EXDEV;
        }
        if (n_set == 0) {
                if (error)
                        *error = t.target[0] ? strdup_printf("no node to update (no configured %s node)", t.target)
                                 : strdup(all ? "no node to update (no configured node of this hardware id)"
                                              : "no node to update");
                return -EINVAL;
        }
        r = check_rollback(set, n_set, &info, t.bundle, error);
        if (r < 0)
                return r;
        *ret_t = t;
        *ret_info = info;
        *ret_set = TAKE_PTR(set);
        *ret_n = n_set;
        return 0;
}

/* A job made but not accepted (not in m->jobs): its file goes, its nodes are left as they were. */
static void job_discard(Job *j)
{
        job_store_remove(j->m->conf->state_dir, j->id);
        for (size_t i = 0; i < j->n_nodes; i++)
                j->nodes[i].node = NULL;
        job_free(j);
}

/* A job just accepted: its id is taken and its nodes are now its. */
static void job_claim_nodes(Job *j)
{
        j->m->next_job_id = j->id == UINT32_MAX ? 1 : j->id + 1;
        for (size_t i = 0; i < j->n_nodes; i++) {
                j->nodes[i].node->flash = &j->nodes[i];
                node_set_state(j->nodes[i].node, "updating");
        }
}

/* Fill the job's (allocated) node entries with set[], each at step; the bytes to send are the plan's. */
static void job_place_nodes(Job *j, Node *const *set, size_t n_set, enum flash_step step)
{
        j->n_nodes = n_set;
        for (size_t i = 0; i < n_set; i++) {
                FlashJob *f = &j->nodes[i];
                f->job = j;
                f->node = set[i];
                snprintf(f->ref, sizeof f->ref, "%s", set[i]->name);
                snprintf(f->bus, sizeof f->bus, "%s", set[i]->bus->conf->name);
                f->station = set[i]->nc.station;
                f->step = step;
                f->bytes_total = j->plan_bytes;
        }
}

/* Copy the verified image into the job and the cache (by its sha256). */
static void job_set_target(Job *j, const struct trusted_image *t)
{
        j->image_size = t->image_size;
        snprintf(j->target, sizeof j->target, "%s", t->target);
        snprintf(j->part_id, sizeof j->part_id, "%s", t->part_id);
        if (t->target[0])
                j->info = t->info;
}

static int job_take_image(Job *j, const struct trusted_image *t, char **error)
{
        Manager *m = j->m;
        const uint8_t *image = t->image;
        size_t size = t->image_size * (t->n_images ? t->n_images : 1u);
        job_set_target(j, t);
        uint8_t *copy = malloc(size);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, image, size);
        char sha[65];
        sha_hex_of(copy, size, sha);
        int r = job_store_put_image(m->conf->cache_dir, sha, copy, size);
        if (r < 0) {
                free(copy);
                if (error && asprintf(error, "cannot store the image in %s: %s", m->conf->cache_dir,
                                      strerror(-r)) < 0)
                        *error = NULL;
                return r;
        }
        return job_set_image(j, copy, size, sha, error);
}

int manager_start_update(Manager *m, const uint8_t *data, size_t data_size, Node **nodes, size_t n, bool all,
                         bool force, Job **ret, char **error)
{
        _cleanup_(freep) Node **set = NULL;
        size_t n_set = 0;
        struct cf_image_info info;
        struct trusted_image t;
        _cleanup_(pairs_done) struct pairs skipped = {0};
        int r = update_check(m, data, data_size, nodes, n, all, NULL, 0, &t, &info, &set, &n_set, &skipped,
                             error);
        if (r < 0)
                return r;
        const uint8_t *image = t.image;
        size_t size = t.image_size * (t.n_images ? t.n_images : 1u);
        for (size_t i = 0; i < n_set; i++)
                if (set[i]->flash) {
                        if (error && asprintf(error, "%s is already being updated by job %u", set[i]->name,
                                              set[i]->flash->job->id) < 0)
                                *error = NULL;
                        return -EBUSY;
                }

        uint8_t *copy = malloc(size);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, image, size);
        char sha[65];
        sha_hex_of(copy, size, sha);
        r = job_store_put_image(m->conf->cache_dir, sha, copy, size);
        if (r < 0) {
                free(copy);
                if (error && asprintf(error, "cannot store the image in %s: %s", m->conf->cache_dir,
                                      strerror(-r)) < 0)
                        *error = NULL;
                return r;
        }

        Job *j;
        unsigned id;
        r = alloc_job_id(m, &id);
        if (r < 0) {
                free(copy);
                if (error)
                        *error = strdup("no job id is free");
                return r;
        }
        r = job_new(m, id, &j);
        if (r < 0) {
                free(copy);
                return r;
        }
        job_set_target(j, &t);
        r = job_set_image(j, copy, size, sha, error);
        if (r >= 0) {
                j->nodes = calloc(n_set, sizeof *j->nodes);
                if (!j->nodes)
                        r = -ENOMEM;
        }
        if (r < 0) {
                job_free(j);
                return r;
        }
        j->force = force;
        j->skipped = TAKE_PTR(skipped.v);
        j->n_skipped = skipped.n;
        skipped.n = 0;
        j->created = now_realtime_us();
        job_place_nodes(j, set, n_set, STEP_QUEUED);
        /* A job that cannot be saved is refused before anything happens: accepted, it would be lost
         * by the next crash, with nodes half way through. */
        r = job_snapshot(j);
        if (r < 0) {
                if (error &&
                    asprintf(error, "cannot save job in %s: %s", m->conf->state_dir, strerror(-r)) < 0)
                        *error = NULL;
                job_discard(j);
                if (!image_in_use(m, sha, NULL))
                        job_store_drop_image(m->conf->cache_dir, sha);
                return r;
        }
        r = manager_add_job(m, j);
        if (r < 0) {
                job_discard(j);
                return r;
        }
        job_claim_nodes(j);
        char fields[64];
        snprintf(fields, sizeof fields, "NODES=%zu\nVERSION=%s", n_set, j->version);
        log_event(CF_MSGID_JOB_STARTED, fields, LOG_INFO, NULL, NULL, j->id,
                     "job %u: update of %zu node(s) to %s (release %u, %" PRIu64
                     " bytes to send per node), %s%s",
                     j->id, n_set, j->version, j->info.release, j->plan_bytes,
                     t.bundle ? "bundle signed by " : "unsigned image (allow_unsigned)", t.signer);
        manager_schedule(m);
        manager_update_status(m);
        *ret = j;
        return 0;
}

static int plan_add(struct plan_entry **v, size_t *n, const char *node, const char *verdict, const char *why)
{
        struct plan_entry *p = realloc(*v, (*n + 1) * sizeof *p);
        if (!p)
                return -ENOMEM;
        *v = p;
        snprintf(p[*n].node, sizeof p[*n].node, "%s", node);
        p[*n].verdict = verdict;
        snprintf(p[*n].reason, sizeof p[*n].reason, "%s", why ? why : "");
        (*n)++;
        return 0;
}

int manager_plan_update(Manager *m, const uint8_t *data, size_t data_size, Node **nodes, size_t n, bool all,
                        bool force, struct plan_entry **ret_entries, size_t *ret_n, char **ret_trust,
                        char **ret_refusal)
{
        _cleanup_(freep) Node **set = NULL;
        _cleanup_(freep) struct plan_entry *v = NULL;
        _cleanup_(freep) char *why = NULL, *trust = NULL;
        _cleanup_(pairs_done) struct pairs skipped = {0};
        size_t n_set = 0, n_v = 0;
        struct cf_image_info info;
        struct trusted_image t = {0};

        /* update_check() is StartUpdate's own, in its order; what it logs is logged the same way. */
        int r = update_check(m, data, data_size, nodes, n, all, NULL, 0, &t, &info, &set, &n_set, &skipped,
                             &why);
        if (r == -ENOMEM)
                return r;
        if (!t.image) /* refused by trust_check(), before any other check */
                trust = strdup_printf("not trusted: %s", why ? why : strerror(-r));
        else if (t.bundle)
                trust = strdup_printf("bundle signed by %s, trusted by the keyring", t.signer);
        else
                trust = strdup("unsigned image, accepted by allow_unsigned");
        if (!trust)
                return -ENOMEM;
        /* a serial target's image: its sha256, as a job keeps it (job_set_raw_image) */
        char raw_sha[65] = "";
        if (t.image && t.target[0])
                sha_hex_of(t.image, t.image_size, raw_sha);
        if (r < 0) {
                if (!why && !(why = strdup(strerror(-r))))
                        return -ENOMEM;
                /* the named nodes (each once) share the refusal; with "all", the nodes the rule left
                 * out so far follow as skipped */
                for (size_t i = 0; i < n; i++) {
                        bool dup = false;
                        for (size_t k = 0; k < i && !dup; k++)
                                dup = nodes[k] == nodes[i];
                        if (!dup && plan_add(&v, &n_v, nodes[i]->name, "refuse", why) < 0)
                                return -ENOMEM;
                }
        } else {
                for (size_t i = 0; i < n_set; i++) {
                        char busy[128];
                        int k;
                        if (set[i]->flash) {
                                snprintf(busy, sizeof busy, "%s is already being updated by job %u",
                                         set[i]->name, set[i]->flash->job->id);
                                /* StartUpdate refuses the whole update with the first busy node's text */
                                if (!why && !(why = strdup(busy)))
                                        return -ENOMEM;
                                k = plan_add(&v, &n_v, set[i]->name, "busy", busy);
                        } else if (!force && t.target[0] && serial_node_flashed(set[i], raw_sha))
                                /* a serial node: the job reads its identity first, then decides the same */
                                k = plan_add(
                                    &v, &n_v, set[i]->name, "up-to-date",
                                    "canfleetd last flashed and verified this image on it (its loader "
                                    "cannot report what runs; --force sends it again)");
                        else if (!force && dual_node_runs(set[i], &info, t.image, t.n_images == 2))
                                k = plan_add(&v, &n_v, set[i]->name, "up-to-date",
                                             "runs this very image already (--force sends it again)");
                        else if (!t.target[0] && !set[i]->identified)
                                /* never met (its bus down since canfleetd started, say): the job checks */
                                k = plan_add(&v, &n_v, set[i]->name, "update", "hw id checked on connect");
                        else
                                k = plan_add(&v, &n_v, set[i]->name, "update", NULL);
                        if (k < 0)
                                return k;
                }
        }
        for (size_t i = 0; i < skipped.n; i++)
                if (plan_add(&v, &n_v, skipped.v[2 * i], "skip", skipped.v[2 * i + 1]) < 0)
                        return -ENOMEM;
        *ret_entries = TAKE_PTR(v);
        *ret_n = n_v;
        *ret_trust = TAKE_PTR(trust);
        *ret_refusal = TAKE_PTR(why);
        return 0;
}

/* A download job's nodes all end at once (a failed or refused download, a cancel): no CCP happened. */
static void download_end(Job *j, enum flash_step step, const char *why)
{
        for (size_t i = 0; i < j->n_nodes; i++) {
                FlashJob *f = &j->nodes[i];
                if (flash_step_final(f->step))
                        continue;
                if (why) {
                        free(f->error);
                        if (asprintf(&f->error, "%s: %s", f->ref, why) < 0)
                                f->error = NULL;
                }
                f->step = step;
                if (f->node && f->node->flash == f) {
                        f->node->flash = NULL;
                        node_set_idle(f->node); /* no CCP happened: as it was before the job */
                }
                manager_flash_changed(f, true, true);
        }
        job_recount(j);
        job_finish(j);
        manager_schedule(j->m);
}

static void url_job_progress(BundleGet *g, uint64_t done, uint64_t total, void *userdata)
{
        Job *j = userdata;
        j->dl_done = done;
        j->dl_total = total;
        /* shown through every downloading node's bytes (job_prop in bus-api.c): O(1) per callback */
        progress_later(j);
}

static void url_job_done(BundleGet *g, int r, const uint8_t *data, size_t size, bool cached,
                         const char *etag, const char *why, void *userdata)
{
        Job *j = userdata;
        Manager *m = j->m;
        uint64_t us = now_clock_us(CLOCK_MONOTONIC) - j->dl_started, ms = us / 1000;
        j->download = NULL; /* freed by bundle-cache when we return */
        if (r < 0) {
                _cleanup_(freep) char *reason = NULL;
                if (asprintf(&reason, "download failed: %s", why) < 0)
                        reason = NULL;
                log_internal(LOG_WARNING, 0, NULL, NULL, j->id,
                             "job %u: download of %s failed after %" PRIu64 " ms: %s", j->id, j->url, ms,
                             why);
                download_end(j, STEP_FAILED, reason ? reason : "download failed");
                return;
        }
        if (cached)
                log_internal(LOG_INFO, 0, NULL, NULL, j->id,
                             "job %u: %s not modified: the cached bundle is used", j->id, j->url);
        else
                log_internal(LOG_INFO, 0, NULL, NULL, j->id,
                             "job %u: downloaded %s: %zu bytes in %" PRIu64 ".%" PRIu64 " ms", j->id, j->url,
                             size, ms, us % 1000 / 100);
        j->dl_done = size;
        j->dl_total = size;

        /* The same checks as StartUpdate, in the same order, on the nodes this job holds. */
        _cleanup_(freep) Node **cand = calloc(j->n_nodes ? j->n_nodes : 1, sizeof *cand);
        _cleanup_(freep) Node **set = NULL;
        _cleanup_(freep) char *error = NULL;
        _cleanup_(pairs_done) struct pairs skipped = {0};
        size_t n_cand = 0, n_set = 0;
        struct trusted_image t;
        struct cf_image_info info;
        if (!cand)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < j->n_nodes; i++)
                if (j->nodes[i].node)
                        cand[n_cand++] = j->nodes[i].node;
        if (r >= 0)
                r = update_check(m, data, size, j->all ? NULL : cand, j->all ? 0 : n_cand, j->all, cand,
                                 n_cand, &t, &info, &set, &n_set, &skipped, &error);
        if (r >= 0)
                r = job_take_image(j, &t, &error);
        if (r < 0) {
                if (cached)
                        /* a cached bundle that no longer passes (another keyring): the next job downloads */
                        (void) bundle_cache_keep(m->conf->cache_dir, j->url, NULL, data, size);
                download_end(j, STEP_FAILED, error ? error : strerror(-r));
                return;
        }
        if (!cached) {
                int k = bundle_cache_keep(m->conf->cache_dir, j->url, etag, data, size);
                if (k < 0)
                        log_warning_errno(k,
                                          "job %u: cannot keep the bundle in %s/bundles: %m (a later job "
                                          "downloads it again)",
                                          j->id, m->conf->cache_dir);
        }

        /* With "all", nodes known now to be other hardware are not this job's to update: they leave it. */
        size_t kept = 0;
        for (size_t i = 0; i < j->n_nodes; i++) {
                FlashJob *f = &j->nodes[i];
                bool keep = false;
                for (size_t k = 0; k < n_set && !keep; k++)
                        keep = f->node == set[k];
                if (f->node && f->node->flash == f)
                        f->node->flash = NULL;
                if (!keep) {
                        if (f->node)
                                node_set_state(f->node, "online");
                        flash_job_free(f);
                        continue;
                }
                if (kept != i)
                        j->nodes[kept] = *f;
                kept++;
        }
        j->n_nodes = kept;
        j->skipped = TAKE_PTR(skipped.v);
        j->n_skipped = skipped.n;
        skipped.n = 0;
        for (size_t i = 0; i < j->n_nodes; i++) {
                FlashJob *f = &j->nodes[i];
                f->node->flash = f;
                f->step = STEP_QUEUED;
                f->bytes_done = 0;
                f->bytes_total = j->plan_bytes;
        }
        job_recount(j);
        free(j->url);
        j->url = NULL;
        r = job_snapshot(j);
        if (r < 0)
                job_save_failed(j, r); /* the save timer retries; new steps wait for it */
        bus_job_changed(j, "ImageVersion", "ImageHardwareId", "ImageRelease", "ImageSha256", "Target", "Progress",
                        NULL);
        log_internal(LOG_INFO, 0, NULL, NULL, j->id,
                     "job %u: update of %zu node(s) to %s (release %u, %" PRIu64
                     " bytes to send per node), %s%s",
                     j->id, j->n_nodes, j->version, j->info.release, j->plan_bytes,
                     t.bundle ? "bundle signed by " : "unsigned image (allow_unsigned)", t.signer);
        manager_schedule(m);
        manager_update_status(m);
}

int manager_start_update_url(Manager *m, const char *url, const char *url_for_log, Node **nodes, size_t n,
                             bool all, bool force, Job **ret, char **error)
{
        _cleanup_(freep) Node **set = NULL;
        size_t n_set = 0;

        if (error)
                *error = NULL;
        size_t cap = n;
        if (n == 0 && all)
                for (size_t i = 0; i < m->n_buses; i++)
                        cap += m->buses[i]->n_nodes;
        set = calloc(cap ? cap : 1, sizeof *set);
        if (!set)
                return -ENOMEM;
        if (n == 0 && all) {
                for (size_t i = 0; i < m->n_buses; i++)
                        for (size_t k = 0; k < m->buses[i]->n_nodes; k++)
                                if (m->buses[i]->nodes[k]->exported)
                                        set[n_set++] = m->buses[i]->nodes[k];
        } else
                for (size_t i = 0; i < n; i++) {
                        bool dup = false;
                        for (size_t k = 0; k < n_set && !dup; k++)
                                dup = set[k] == nodes[i];
                        if (!dup)
                                set[n_set++] = nodes[i];
                }
        if (n_set == 0) {
                if (error)
                        *error = strdup("no node to update");
                return -EINVAL;
        }
        for (size_t i = 0; i < n_set; i++)
                if (set[i]->flash) {
                        if (error && asprintf(error, "%s is already being updated by job %u", set[i]->name,
                                              set[i]->flash->job->id) < 0)
                                *error = NULL;
                        return -EBUSY;
                }

        Job *j;
        unsigned id;
        int r = alloc_job_id(m, &id);
        if (r < 0) {
                if (error)
                        *error = strdup("no job id is free");
                return r;
        }
        r = job_new(m, id, &j);
        if (r < 0)
                return r;
        j->nodes = calloc(n_set, sizeof *j->nodes);
        j->url = strdup(url_for_log);
        if (!j->nodes || !j->url) {
                job_free(j);
                return -ENOMEM;
        }
        j->force = force;
        j->all = all;
        j->created = now_realtime_us();
        job_place_nodes(j, set, n_set, STEP_DOWNLOADING);
        const struct bundle_get_options o = {
            .ca_file = m->conf->ca_file,
            .max_size = CF_BUNDLE_MAX_SIZE,
            .stall_timeout_usec = (uint64_t) m->conf->download_stall_timeout_s * 1000000u,
            .progress = url_job_progress,
        };
        /* Saved (without an image) like any job, so that a restart during the download ends it with
         * its reason instead of losing it (resume_jobs). */
        r = job_snapshot(j);
        if (r >= 0) {
                /* the clock, not the loop's time: the job's snapshot (fsync) is not the download's */
                j->dl_started = now_clock_us(CLOCK_MONOTONIC);
                r = bundle_get_start(m->fetcher, m->conf->cache_dir, url, &o, url_job_done, j, &j->download);
        }
        if (r >= 0)
                r = manager_add_job(m, j);
        if (r < 0) {
                if (error && asprintf(error, "cannot start the download: %s", strerror(-r)) < 0)
                        *error = NULL;
                job_discard(j);
                return r;
        }
        job_claim_nodes(j);
        log_internal(LOG_INFO, 0, NULL, NULL, j->id, "job %u: downloading %s for %zu node(s)", j->id, j->url,
                     n_set);
        manager_update_status(m);
        *ret = j;
        return 0;
}

/* Fail an entry of a job that has no node to act on (its bus is gone from the configuration, or the
 * state was damaged); O(1), no CCP. */
static void job_fail_entry(FlashJob *f, const char *why)
{
        free(f->error);
        f->error = NULL;
        if (asprintf(&f->error, "%s: %s", f->ref, why) < 0)
                f->error = NULL;
        f->step = STEP_FAILED;
        manager_flash_changed(f, true, true);
}

/* A job that had finished before this start: listed (jobs, node history) from its file, without its
 * image (the cache dropped it). */
static void history_job(Manager *m, struct job_record *rec, enum job_state state)
{
        Job *j;
        if (job_new(m, rec->id, &j) < 0)
                return;
        j->history = true;
        j->state = state;
        j->created = rec->created;
        j->started = rec->started;
        j->finished = rec->finished;
        j->force = rec->force;
        j->cancel = rec->cancel;
        j->seq = rec->seq;
        memcpy(j->image_sha, rec->image, sizeof j->image_sha);
        memcpy(j->version, rec->version, sizeof j->version);
        memcpy(j->payload_sha, rec->payload_sha, sizeof j->payload_sha);
        j->info.hw_id = rec->hw_id;
        j->info.release = rec->release;
        j->skipped = rec->skipped; /* taken over */
        j->n_skipped = rec->n_skipped;
        rec->skipped = NULL;
        rec->n_skipped = 0;
        j->nodes = calloc(rec->n_nodes ? rec->n_nodes : 1, sizeof *j->nodes);
        if (!j->nodes) {
                job_free(j);
                return;
        }
        j->n_nodes = rec->n_nodes;
        for (size_t x = 0; x < rec->n_nodes; x++) {
                const struct job_record_node *rn = &rec->nodes[x];
                FlashJob *f = &j->nodes[x];
                f->job = j;
                snprintf(f->ref, sizeof f->ref, "%s:%u", rn->bus, rn->station);
                snprintf(f->bus, sizeof f->bus, "%s", rn->bus);
                f->station = rn->station;
                int st = flash_step_from_str(rn->step);
                f->step = st < 0 || !flash_step_final((enum flash_step) st) ? STEP_FAILED : (enum flash_step) st;
                f->counted_final = true;
                f->bytes_done = rn->bytes_done;
                f->bytes_total = rn->bytes_total;
                if (rn->error)
                        f->error = strdup(rn->error);
                /* Its node object, when it still exists: for the Progress path. Not claimed (flash). */
                CanBus *b = manager_find_bus(m, rn->bus);
                Node *node = b ? bus_find_station(b, rn->station) : NULL;
                f->node = node && node->exported ? node : NULL;
        }
        j->n_final = j->n_nodes;
        if (manager_add_job(m, j) < 0)
                job_free(j);
}

/* Jobs that were running when canfleetd stopped: each node goes on from a safe point. */
static int resume_jobs(Manager *m)
{
        struct job_record *recs;
        size_t n;
        unsigned max_id;
        int r = job_store_load_all(m->conf->state_dir, &recs, &n, &max_id);
        if (r < 0)
                return log_error_errno(r, "Failed to read the jobs in %s: %m", m->conf->state_dir);
        m->next_job_id = max_id == UINT32_MAX ? 1 : max_id + 1;

        for (size_t i = 0; i < n; i++) {
                struct job_record *rec = &recs[i];
                int state = job_state_from_str(rec->state);
                if (state < 0) {
                        /* Hand-edited, or from a version that knows more states: its nodes say what is
                         * left to do, so it is resumed and ends by their outcome. */
                        log_internal(LOG_WARNING, 0, NULL, NULL, rec->id,
                                     "job %u: unknown state \"%s\" in its file; resumed, its state follows "
                                     "from its nodes",
                                     rec->id, rec->state);
                        state = JOB_RUNNING;
                }
                if (state != JOB_RUNNING) {
                        history_job(m, rec, (enum job_state) state);
                        continue;
                }
                Job *j;
                if (job_new(m, rec->id, &j) < 0)
                        continue;
                j->started = rec->started;
                j->skipped = rec->skipped; /* taken over */
                j->n_skipped = rec->n_skipped;
                rec->skipped = NULL;
                rec->n_skipped = 0;
                j->created = rec->created;
                j->force = rec->force;
                j->cancel = rec->cancel;
                j->seq = rec->seq;
                j->nodes = calloc(rec->n_nodes ? rec->n_nodes : 1, sizeof *j->nodes);
                uint8_t *img = NULL;
                size_t size = 0;
                char sha[65];
                /* The cached image was verified (signature and keyring, or allow_unsigned) when the job
                 * was accepted; the cache is the daemon's own, as the state directory is, so the resumed
                 * job does not verify a signature again (a key removed from the keyring since does not
                 * strand nodes half way). Its bytes are still checked against their name and in full. */
                if (rec->target[0]) {
                        /* a serial target's job: what its raw image is comes from the file */
                        snprintf(j->target, sizeof j->target, "%s", rec->target);
                        snprintf(j->part_id, sizeof j->part_id, "%s", rec->part_id);
                        unsigned a = 0, b = 0, c = 0;
                        (void) sscanf(rec->version, "%u.%u.%u", &a, &b, &c);
                        j->info = (struct cf_image_info){.hw_id = rec->hw_id, .ver_major = (uint8_t) a,
                                                         .ver_minor = (uint8_t) b, .ver_patch = (uint16_t) c,
                                                         .release = rec->release};
                }
                size_t max = rec->target[0] ? CF_BUNDLE_RAW_MAX : 2u * CF_IMAGE_AREA_SIZE;
                int k = rec->image[0] ? job_store_get_image(m->conf->cache_dir, rec->image, max, &img, &size)
                                      : -ENODATA;
                const char *why = NULL;
                if (k == -ENODATA)
                        /* A URL job still downloading: not resumed (its caller may be gone, and its URL may
                         * carry credentials that are never saved); the part downloaded stays in
                         * cache_dir/downloads, so the same update goes on from there. */
                        why = "canfleetd stopped while its bundle was being downloaded; start the update "
                              "again (the download goes on from the part kept in cache_dir)";
                else if (k == -EBADFD)
                        why = "its cached image is not a regular file";
                else if (k < 0)
                        why = "its image is gone from the cache";
                else if ((rec->target[0] ? size == 0 : size != CF_IMAGE_AREA_SIZE && size != 2u * CF_IMAGE_AREA_SIZE) ||
                         (sha_hex_of(img, size, sha), strcmp(sha, rec->image) != 0))
                        why = "its cached image is corrupted";
                if (!why)
                        j->image_size = size;
                if (!why && job_set_image(j, img, size, rec->image, NULL) < 0) {
                        img = NULL; /* freed by job_set_image() */
                        why = "its cached image is not valid";
                }
                if (why)
                        free(img);
                if (!j->nodes) {
                        job_free(j);
                        continue;
                }
                memcpy(j->image_sha, rec->image, sizeof j->image_sha);
                j->n_nodes = rec->n_nodes;
                const char *gone_bus = NULL;
                size_t gone = 0;
                for (size_t x = 0; x < rec->n_nodes; x++) {
                        struct job_record_node *rn = &rec->nodes[x];
                        FlashJob *f = &j->nodes[x];
                        f->job = j;
                        snprintf(f->ref, sizeof f->ref, "%s:%u", rn->bus, rn->station);
                        snprintf(f->bus, sizeof f->bus, "%s", rn->bus);
                        f->station = rn->station;
                        int st = flash_step_from_str(rn->step);
                        if (st < 0)
                                log_internal(LOG_WARNING, 0, rn->bus, f->ref, j->id,
                                             "job %u: %s: unknown step \"%s\" in its file, started again",
                                             j->id, f->ref, rn->step);
                        f->step = st < 0 ? STEP_QUEUED : (enum flash_step) st;
                        f->bytes_total = rn->bytes_total;
                        f->bytes_done = flash_step_final(f->step) ? rn->bytes_done : 0;
                        f->joined = rn->group && !flash_step_final(f->step);
                        if (rn->error)
                                f->error = strdup(rn->error);
                        CanBus *b = manager_find_bus(m, rn->bus);
                        if (!b && !flash_step_final(f->step)) {
                                gone++;
                                if (!gone_bus || strcmp(gone_bus, rn->bus) != 0) {
                                        gone_bus = rn->bus;
                                        log_internal(LOG_WARNING, 0, rn->bus, NULL, j->id,
                                                     "job %u: bus %s is no longer configured: its nodes in "
                                                     "this job fail",
                                                     j->id, rn->bus);
                                }
                        }
                        Node *node = b ? bus_find_station(b, rn->station) : NULL;
                        if (b && !node) {
                                /* Found by a scan before the restart. */
                                struct cf_node_conf nc = cf_bus_node_conf(b->conf, rn->station);
                                if (node_new(b, &nc, false, &node) < 0)
                                        node = NULL;
                        }
                        if (node && node->flash && !flash_step_final(f->step) && !why) {
                                /* The same node in two running jobs (damaged or hand-edited state): the
                                 * older job keeps it. */
                                log_internal(LOG_WARNING, 0, rn->bus, f->ref, j->id,
                                             "job %u: %s is also in running job %u; that job keeps it",
                                             j->id, f->ref, node->flash->job->id);
                                free(f->error);
                                f->error = NULL;
                                if (asprintf(&f->error,
                                             "%s: also in running job %u (damaged state); left to it",
                                             f->ref, node->flash->job->id) < 0)
                                        f->error = NULL;
                                f->step = STEP_FAILED;
                                node = NULL;
                        }
                        if (node)
                                node->exported = true;
                        f->node = node;
                        if (node && !flash_step_final(f->step) && !why)
                                node->flash = f; /* claimed now, so that a later job sees it */
                }
                if (gone)
                        log_internal(LOG_WARNING, 0, NULL, NULL, j->id,
                                     "job %u: %zu node(s) on buses no longer configured", j->id, gone);
                if (manager_add_job(m, j) < 0) {
                        job_free(j);
                        continue;
                }
                log_internal(LOG_INFO, 0, NULL, NULL, j->id, "job %u: resuming", j->id);
                for (size_t x = 0; x < j->n_nodes; x++) {
                        FlashJob *f = &j->nodes[x];
                        if (flash_step_final(f->step))
                                continue;
                        if (why) {
                                f->step = STEP_FAILED;
                                free(f->error);
                                f->error = NULL;
                                if (asprintf(&f->error, "%s: job %u cannot go on: %s", f->ref, j->id, why) <
                                    0)
                                        f->error = NULL;
                                continue;
                        }
                        if (!f->node) {
                                /* Its bus is gone: failed by the scheduler, in the event loop, with the
                                 * reason (fail_unplaced). */
                                f->step = STEP_QUEUED;
                                j->has_unplaced = true;
                                continue;
                        }
                        if (f->step == STEP_REBOOTING || f->step == STEP_CONFIRMING || f->step == STEP_TRIAL) {
                                flash_job_resume_confirm(f);
                        } else if (f->step == STEP_CANCELLING) {
                                /* Killed while erasing a cancelled node's staged image: scheduled. */
                                f->staged = true;
                                f->node->flash = f;
                                node_set_state(f->node, "updating");
                        } else {
                                /* From programming on, C may hold the complete image (a cancel must
                                 * erase it) until the new session's CLEAR_MEMORY. */
                                f->staged = f->step >= STEP_PROGRAMMING;
                                /* Before DISCONNECT B was never touched; CLEAR_MEMORY will make C clean. */
                                f->step = STEP_QUEUED;
                                f->node->flash = f;
                                node_set_state(f->node, "updating");
                        }
                }
                job_recount(j);
                if (j->cancel)
                        for (size_t x = 0; x < j->n_nodes && j->state == JOB_RUNNING; x++)
                                flash_job_cancel(&j->nodes[x]);
                if (j->state == JOB_RUNNING) {
                        job_save(j);
                        job_recount(j);
                        if (j->n_final == j->n_nodes)
                                job_finish(j);
                }
        }
        for (size_t i = 0; i < n; i++)
                job_record_done(&recs[i]);
        free(recs);
        return 0;
}

/* ---- scheduler --------------------------------------------------------------------------------- */

static void job_fail_entry(FlashJob *f, const char *why);

/* Queued nodes without a Node (their bus is gone): failed at once, no slot needed since nothing is
 * sent. Returns true when that finished the job. */
static bool fail_unplaced(Manager *m, Job *j)
{
        j->has_unplaced = false;
        for (size_t k = 0; k < j->n_nodes; k++) {
                FlashJob *f = &j->nodes[k];
                if (f->step != STEP_QUEUED || f->node)
                        continue;
                char why[64];
                if (!manager_find_bus(m, f->bus))
                        snprintf(why, sizeof why, "bus %s is no longer configured", f->bus);
                else
                        snprintf(why, sizeof why, "node is not configured any more");
                job_fail_entry(f, why);
        }
        if (j->n_final < j->n_nodes)
                return false;
        job_finish(j);
        return true;
}

static int on_start_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        manager_schedule(userdata);
        return 0;
}

/* A queued node whose bus is not up: its progress says why it waits; after start_timeout_s it fails
 * with that reason. Returns true when that finished its job. */
static bool wait_for_bus(Manager *m, FlashJob *f, CanBus *b)
{
        Job *j = f->job;
        uint64_t now;
        sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (!f->wait_since)
                f->wait_since = now;
        char why[224];
        snprintf(why, sizeof why, "waiting for %s: %s", b->conf->name, manager_bus_error(b));
        uint64_t limit = (uint64_t) m->conf->start_timeout_s * 1000000u;
        if (now - f->wait_since >= limit) {
                char msg[288];
                snprintf(msg, sizeof msg, "could not start within %" PRIu32 " s (start_timeout_s): %s",
                         m->conf->start_timeout_s, why);
                f->wait_since = 0;
                job_fail_entry(f, msg);
                if (j->n_final < j->n_nodes)
                        return false;
                job_finish(j);
                return true;
        }
        if (!f->error || strcmp(f->error, why) != 0) {
                char *e = strdup(why);
                if (e) {
                        free(f->error);
                        f->error = e;
                        manager_flash_changed(f, false, false);
                }
        }
        /* Looked at again in a second (the link may stay down: nothing else wakes the scheduler), and
         * at the latest when its time is up. */
        uint64_t next = now + 1000000u;
        if (f->wait_since + limit < next)
                next = f->wait_since + limit;
        int on = SD_EVENT_OFF;
        uint64_t at = 0;
        if (m->start_timer && (sd_event_source_get_enabled(m->start_timer, &on) < 0 || on == SD_EVENT_OFF ||
                               (sd_event_source_get_time(m->start_timer, &at) >= 0 && at > next))) {
                sd_event_source_set_time(m->start_timer, next);
                sd_event_source_set_enabled(m->start_timer, SD_EVENT_ONESHOT);
        }
        return false;
}

static int on_schedule(sd_event_source *es, void *userdata)
{
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_jobs; i++) {
                Job *j = m->jobs[i];
                /* A job whose state cannot be saved starts nothing new until it can. */
                if (j->state != JOB_RUNNING || j->save_failed)
                        continue;
                if (j->has_unplaced && fail_unplaced(m, j)) {
                        /* job_finish() may have pruned jobs: start over on the next round */
                        manager_schedule(m);
                        return 0;
                }
                /* Start where the first queued node is: O(1) per call in a big job, not O(nodes). */
                while (j->sched_from < j->n_nodes && !waits_for_slot(&j->nodes[j->sched_from]))
                        j->sched_from++;
                for (size_t k = j->sched_from; k < j->n_nodes && m->active < m->conf->max_parallel; k++) {
                        FlashJob *f = &j->nodes[k];
                        if (!waits_for_slot(f))
                                continue;
                        if (f->node) {
                                CanBus *b = f->node->bus;
                                if (b->transport->state != CF_LINK_UP) {
                                        if (wait_for_bus(m, f, b)) {
                                                /* job_finish() may have pruned jobs */
                                                manager_schedule(m);
                                                return 0;
                                        }
                                        continue;
                                }
                                if (b->active >= b->conf->max_parallel || b->scanning)
                                        continue;
                                b->active++;
                        }
                        f->slot = true;
                        m->active++;
                        if (f->wait_since) {
                                f->wait_since = 0;
                                free(f->error);
                                f->error = NULL;
                        }
                        if (!j->started) {
                                j->started = now_realtime_us();
                                bus_job_changed(j, "Started", NULL);
                                (void) job_append(j, NULL, false);
                        }
                        flash_job_begin(f);
                        if (j->state != JOB_RUNNING || j->save_failed)
                                break;
                }
        }
        return 0;
}

void manager_schedule(Manager *m)
{
        if (m->sched)
                sd_event_source_set_enabled(m->sched, SD_EVENT_ONESHOT);
}

void manager_release_slot(FlashJob *f)
{
        if (!f->slot)
                return;
        Manager *m = f->job->m;
        f->slot = false;
        if (m->active)
                m->active--;
        if (f->node && f->node->bus->active)
                f->node->bus->active--;
        manager_schedule(m);
}

void manager_update_status(Manager *m)
{
        unsigned running = 0, nodes = 0, done = 0;
        for (size_t i = 0; i < m->n_jobs; i++) {
                Job *j = m->jobs[i];
                if (j->state != JOB_RUNNING)
                        continue;
                running++;
                for (size_t k = 0; k < j->n_nodes; k++) {
                        nodes++;
                        done += j->nodes[k].step == STEP_DONE || j->nodes[k].step == STEP_CONFIRMED;
                }
        }
        char s[128];
        if (running)
                snprintf(s, sizeof s, "%u job%s running, %u/%u nodes done", running, running == 1 ? "" : "s",
                         done, nodes);
        else
                snprintf(s, sizeof s, "Idle");
        if (strcmp(s, m->status) == 0)
                return;
        snprintf(m->status, sizeof m->status, "%s", s);
        if (m->notify)
                sd_notifyf(false, "STATUS=%s", s);
}

/* ---- scan -------------------------------------------------------------------------------------- */

/* A probe whose node answered CONNECT and then lost an answer (a lossy line) is tried again from the
 * start, this often, before it counts as failed. */
#define PROBE_TRIES 3

static void scan_identified(Node *n, int r)
{
        CanBus *b = n->bus;
        /* n->id_idx > 0: the node answered CONNECT in this identify, so it is there */
        bool answered = !node_is_serial(n) && n->id_idx > 0;
        if (r == -ETIMEDOUT && answered && ++n->probe_tries < PROBE_TRIES && !n->flash &&
            !ccp_session_pending(n->ccp) && node_identify(n, true, scan_identified) >= 0)
                return; /* still probing: scan_pending holds */
        n->probing = false;
        if (r >= 0) {
                node_export(n);
                manager_node_changed(n);
                node_set_error(n, NULL);
                node_set_state(n, n->mode == CF_MODE_BOOTLOADER ? "recovery" : "online");
                if (node_is_serial(n))
                        goto done; /* no UID for hawkBit, no CCP session to end */
                fleet_server_node_seen(b->m->fleet, n);
                uint8_t cro[8];
                n->on_reply = NULL;
                cf_ccp_cro_disconnect(cro, 0, CF_CCP_DISCONNECT_TEMPORARY, n->nc.station);
                (void) ccp_request(n->ccp, cro, 1, UINT32_MAX);
        } else if (n->exported) {
                node_set_error(n, node_is_serial(n) ? "its loader did not answer (is it in its loader? see isp_entry)"
                                  : r == -EIO ? "the device ID and status block read differently each time"
                                              : ccp_session_error(n->ccp));
                /* offline: it did not answer at all; one that answered but could not be read through
                 * is there (update --all takes it, the job reads it again) */
                node_set_state(n, r == -ETIMEDOUT && !answered ? "offline" : "unknown");
        }
done:
        if (b->scan_pending && --b->scan_pending == 0) {
                b->scanning = false;
                b->startup_probe = false;
                log_node(LOG_INFO, b->conf->name, NULL, 0, "%s: scan done", b->conf->name);
                bus_scan_done(b);
                manager_schedule(b->m);
        }
}

static void probe_node(CanBus *b, Node *n)
{
        if (n->flash || ccp_session_pending(n->ccp) || serial_node_busy(n))
                return;
        n->probing = true;
        n->probe_tries = 0;
        b->scan_pending++;
        if ((node_is_serial(n) ? serial_node_identify(n, scan_identified) : node_identify(n, true, scan_identified)) <
            0) {
                n->probing = false;
                b->scan_pending--;
        }
}

/* At start-up (or when the link first comes up): identify the configured nodes in the background, so
 * that their state and what they run are current without a scan. It counts as a scan of the bus: jobs
 * start on it once it is done, a Scan call meanwhile is refused as busy. */
static void start_probe(CanBus *b)
{
        /* Not before manager_start(): a link that comes up while the buses are set up has no nodes yet. */
        if (!b->m->started || !b->m->probe_at_start || b->probed || b->scanning ||
            b->transport->state != CF_LINK_UP)
                return;
        b->probed = true;
        b->scanning = true;
        b->startup_probe = true;
        b->scan_pending = 1;
        for (size_t i = 0; i < b->n_nodes; i++)
                /* A serial node whose loader someone else enters (isp_entry manual) is identified by
                 * its first job or a Scan: the probe would leave it synchronised in its loader. */
                if (b->nodes[i]->configured &&
                    !(node_is_serial(b->nodes[i]) && b->conf->isp_entry == CF_ISP_ENTRY_MANUAL))
                        probe_node(b, b->nodes[i]);
        if (--b->scan_pending == 0) {
                b->scanning = false;
                b->startup_probe = false;
                bus_scan_done(b);
        }
}

int manager_scan(CanBus *b)
{
        /* A scan during the start-up probe joins it: the probes running count for it too. */
        if (b->scanning && !b->startup_probe)
                return -EBUSY;
        if (b->transport->state != CF_LINK_UP)
                return -ENETDOWN;
        b->probed = true;
        b->startup_probe = false;
        b->scanning = true;
        b->scan_pending++; /* held until every probe is started */
        for (unsigned sa = b->conf->scan_first; sa <= b->conf->scan_last; sa++) {
                Node *n = bus_find_station(b, (uint16_t) sa);
                if (!n) {
                        struct cf_node_conf nc = cf_bus_node_conf(b->conf, (uint16_t) sa);
                        if (node_new(b, &nc, false, &n) < 0)
                                continue;
                }
                probe_node(b, n);
        }
        /* Release the hold; with no probe at all this ends the scan at once. */
        if (--b->scan_pending == 0) {
                b->scanning = false;
                bus_scan_done(b);
        }
        return 0;
}

/* ---- reload ------------------------------------------------------------------------------------ */

/* Busy: a job, a scan or an identification still acts on the node; it cannot go or change now. */
static bool node_busy(const Node *n)
{
        return n->flash || n->probing || n->identify_done || ccp_session_pending(n->ccp) || serial_node_busy(n);
}

/* The running job that uses a node of b (0: none), for messages. */
static unsigned bus_job(const CanBus *b)
{
        for (size_t i = 0; i < b->n_nodes; i++)
                if (b->nodes[i]->flash)
                        return b->nodes[i]->flash->job->id;
        return 0;
}

static bool bus_busy(const CanBus *b)
{
        if (b->scanning)
                return true;
        for (size_t i = 0; i < b->n_nodes; i++)
                if (node_busy(b->nodes[i]))
                        return true;
        return false;
}

static const struct cf_node_conf *conf_station(const struct cf_bus_conf *bc, uint16_t sa)
{
        for (size_t i = 0; i < bc->n_nodes; i++)
                if (bc->nodes[i].station == sa)
                        return &bc->nodes[i];
        return NULL;
}

static bool node_conf_equal(const struct cf_node_conf *a, const struct cf_node_conf *b)
{
        return a->station == b->station && a->cro_id == b->cro_id && a->dto_id == b->dto_id &&
               a->seedkey_echo == b->seedkey_echo;
}

/* Whether bus b can take configuration nb with its transport and nodes as they are: only the node list
 * and max_parallel differ, and the transport's kernel filter already has every new DTO id. */
static bool bus_keeps_transport(const CanBus *b, const struct cf_bus_conf *nb)
{
        const struct cf_bus_conf *ob = b->conf;
        if (strcmp(ob->transport, nb->transport) != 0 || ob->baud != nb->baud || ob->bitrate != nb->bitrate ||
            ob->scan_first != nb->scan_first || ob->scan_last != nb->scan_last || ob->cro_base != nb->cro_base ||
            ob->dto_base != nb->dto_base || ob->seedkey_echo != nb->seedkey_echo)
                return false;
        /* a serial bus's loader is part of its transport: its session reads them as it goes */
        if (ob->protocol != nb->protocol || ob->isp_entry != nb->isp_entry || ob->crystal_khz != nb->crystal_khz ||
            ob->gpio_reset != nb->gpio_reset || ob->gpio_boot != nb->gpio_boot ||
            strcmp(ob->gpiochip ? ob->gpiochip : "", nb->gpiochip ? nb->gpiochip : "") != 0)
                return false;
        _cleanup_(freep) uint32_t *ids = NULL;
        size_t n_ids = 0;
        if (bus_dto_ids(ob, &ids, &n_ids) < 0)
                return false;
        for (size_t i = 0; i < nb->n_nodes; i++) {
                bool found = false;
                for (size_t k = 0; k < n_ids && !found; k++)
                        found = ids[k] == nb->nodes[i].dto_id;
                if (!found)
                        return false;
        }
        return true;
}

/* What a reload does to an existing node of a kept bus. */
enum node_fate { NODE_KEEP, NODE_REPLACE, NODE_REMOVE, NODE_DOOM };

static enum node_fate node_fate(const Node *n, const struct cf_bus_conf *nb)
{
        const struct cf_node_conf *c = conf_station(nb, n->nc.station);
        if (c)
                return node_conf_equal(&n->nc, c) ? NODE_KEEP : NODE_REPLACE;
        if (!n->configured && !n->doomed)
                return NODE_KEEP; /* found by a scan: stays, the bus's defaults did not change */
        return node_busy(n) ? NODE_DOOM : NODE_REMOVE;
}

/* Forget n: its D-Bus object goes (InterfacesRemoved), the entries of jobs that name it lose their
 * pointer (they keep the name), then it is freed. */
static void node_remove(Node *n)
{
        Manager *m = n->m;
        CanBus *b = n->bus;
        if (n->exported)
                bus_node_removed(n);
        for (size_t i = 0; i < m->n_jobs; i++)
                for (size_t k = 0; k < m->jobs[i]->n_nodes; k++)
                        if (m->jobs[i]->nodes[k].node == n)
                                m->jobs[i]->nodes[k].node = NULL;
        if (b->by_dto[n->nc.dto_id] == n)
                b->by_dto[n->nc.dto_id] = NULL;
        for (size_t i = 0; i < b->n_nodes; i++)
                if (b->nodes[i] == n) {
                        memmove(b->nodes + i, b->nodes + i + 1, (b->n_nodes - i - 1) * sizeof *b->nodes);
                        b->n_nodes--;
                        break;
                }
        node_free(n);
}

static void bus_remove(Manager *m, size_t idx)
{
        CanBus *b = m->buses[idx];
        while (b->n_nodes > 0)
                node_remove(b->nodes[b->n_nodes - 1]);
        bus_done(b);
        free(b);
        memmove(m->buses + idx, m->buses + idx + 1, (m->n_buses - idx - 1) * sizeof *m->buses);
        m->n_buses--;
}

/* Doomed nodes (removed by a reload while busy) go as soon as they are idle: after any event. */
static int on_sweep(sd_event_source *es, void *userdata)
{
        Manager *m = userdata;
        bool left = false, gone = false;
        for (size_t i = 0; i < m->n_buses; i++) {
                CanBus *b = m->buses[i];
                for (size_t k = b->n_nodes; k > 0; k--) {
                        Node *n = b->nodes[k - 1];
                        if (!n->doomed)
                                continue;
                        if (node_busy(n)) {
                                left = true;
                                continue;
                        }
                        log_node(LOG_INFO, b->conf->name, n->name, 0,
                                 "%s: removed from the configuration, gone now that no job uses it", n->name);
                        node_remove(n);
                        gone = true;
                }
        }
        if (gone)
                bus_manager_changed(m, "Nodes", NULL);
        if (!left)
                sd_event_source_set_enabled(es, SD_EVENT_OFF);
        return 0;
}

static int refuse(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(char **why, const char *fmt, ...)
{
        if (*why)
                return -EBUSY; /* the first reason is the one told */
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(why, fmt, ap) < 0)
                *why = NULL;
        va_end(ap);
        return -EBUSY;
}

static unsigned running_job(Manager *m)
{
        for (size_t i = 0; i < m->n_jobs; i++)
                if (m->jobs[i]->state == JOB_RUNNING)
                        return m->jobs[i]->id;
        return 0;
}

/* Everything that can refuse the reload, checked before anything changes. */
static void reload_check(Manager *m, const struct cf_conf *nc, const uint8_t key[CF_FLEET_KEY_LEN], char **why)
{
        const struct cf_conf *oc = m->conf;
        if (strcmp(oc->state_dir, nc->state_dir) != 0)
                refuse(why, "state_dir cannot change while canfleetd runs (%s in use, %s asked): restart canfleetd",
                       oc->state_dir, nc->state_dir);
        if (strcmp(oc->cache_dir, nc->cache_dir) != 0)
                refuse(why, "cache_dir cannot change while canfleetd runs (%s in use, %s asked): restart canfleetd",
                       oc->cache_dir, nc->cache_dir);
        if (oc->retries != nc->retries)
                refuse(why, "retries cannot change while canfleetd runs (the CCP sessions have %u): restart canfleetd",
                       oc->retries);
        unsigned job = running_job(m);
        if (job && memcmp(key, m->fleet_key, CF_FLEET_KEY_LEN) != 0)
                refuse(why, "fleet_key_file: the fleet key cannot change while job %u runs", job);

        for (size_t i = 0; i < m->n_buses; i++) {
                const CanBus *b = m->buses[i];
                const struct cf_bus_conf *nb = NULL;
                for (size_t k = 0; k < nc->n_buses && !nb; k++)
                        if (strcmp(nc->buses[k].name, b->conf->name) == 0)
                                nb = &nc->buses[k];
                if (!nb || !bus_keeps_transport(b, nb)) {
                        if (!bus_busy(b))
                                continue;
                        unsigned bj = bus_job(b);
                        if (bj)
                                refuse(why, "bus %s: %s while job %u updates its nodes", b->conf->name,
                                       nb ? "its transport, bitrate or CAN ids cannot change" : "cannot be removed",
                                       bj);
                        else
                                refuse(why, "bus %s: %s while a scan or identification runs on it", b->conf->name,
                                       nb ? "its transport, bitrate or CAN ids cannot change" : "cannot be removed");
                        continue;
                }
                for (size_t k = 0; k < b->n_nodes; k++) {
                        const Node *n = b->nodes[k];
                        if (node_fate(n, nb) == NODE_REPLACE && node_busy(n))
                                refuse(why, "%s: its CAN ids or seedkey cannot change while %s", n->name,
                                       n->flash ? "a job updates it" : "it is being identified");
                }
                /* a new node's DTO id must be free of the nodes that stay */
                for (size_t k = 0; k < nb->n_nodes; k++) {
                        const Node *x = b->by_dto[nb->nodes[k].dto_id];
                        if (!x || x->nc.station == nb->nodes[k].station)
                                continue;
                        enum node_fate f = node_fate(x, nb);
                        if (f == NODE_KEEP || f == NODE_DOOM || (f == NODE_REPLACE && node_busy(x)))
                                refuse(why, "bus %s: station %u: DTO id 0x%03X is still used by %s", b->conf->name,
                                       nb->nodes[k].station, (unsigned) nb->nodes[k].dto_id, x->name);
                }
        }
}

int manager_reload(Manager *m, char **error)
{
        _cleanup_(freep) char *why = NULL;
        struct cf_conf *nc = NULL;
        struct cf_keyring *keyring = NULL;
        uint8_t key[CF_FLEET_KEY_LEN];
        CanBus **added = NULL;
        size_t n_added = 0;
        int r = cf_conf_load(m->conf->path, &nc, &why);
        if (r >= 0)
                r = cf_conf_read_fleet_key(nc, key, &why);
        if (r >= 0)
                r = cf_conf_load_keyring(nc, &keyring, &why);
        if (r >= 0)
                r = cf_conf_check_ca_file(nc, &why);
        if (r >= 0)
                r = cf_conf_check_hawkbit(nc, &why); /* its token file, before the old client stops */
        if (r >= 0) {
                reload_check(m, nc, key, &why);
                if (why)
                        r = -EBUSY;
        }
        if (r < 0)
                goto refused;

        /* The buses that are new or have a new transport are set up before anything changes, so that a
         * failure (no memory) leaves the configuration in use whole. Their sessions take nc's values. */
        added = calloc(nc->n_buses ? nc->n_buses : 1, sizeof *added);
        if (!added) {
                r = -ENOMEM;
                goto refused;
        }
        struct cf_conf *oc = m->conf;
        m->conf = nc;
        for (size_t k = 0; k < nc->n_buses && r >= 0; k++) {
                CanBus *b = manager_find_bus(m, nc->buses[k].name);
                if (b && bus_keeps_transport(b, &nc->buses[k]))
                        continue;
                added[n_added] = calloc(1, sizeof *added[n_added]);
                if (!added[n_added]) {
                        r = -ENOMEM;
                        break;
                }
                n_added++;
                r = bus_setup(m, added[n_added - 1], &nc->buses[k]);
                if (r < 0)
                        refuse(&why, "buses[%zu]: %s", k, strerror(-r));
        }
        m->conf = oc;
        CanBus **grown = r >= 0 ? realloc(m->buses, (m->n_buses + n_added) * sizeof *m->buses) : NULL;
        if (r >= 0 && !grown && m->n_buses + n_added > 0)
                r = -ENOMEM;
        if (r < 0) {
                for (size_t k = 0; k < n_added; k++) {
                        bus_done(added[k]);
                        free(added[k]);
                }
                goto refused;
        }
        m->buses = grown;

        /* From here on nothing fails: the new configuration takes over. */
        unsigned buses_gone = 0, nodes_new = 0, nodes_gone = 0, nodes_later = 0;
        for (size_t i = m->n_buses; i > 0; i--) {
                CanBus *b = m->buses[i - 1];
                const struct cf_bus_conf *nb = NULL;
                for (size_t k = 0; k < nc->n_buses && !nb; k++)
                        if (strcmp(nc->buses[k].name, b->conf->name) == 0)
                                nb = &nc->buses[k];
                if (nb && bus_keeps_transport(b, nb)) {
                        b->conf = nb;
                        continue;
                }
                log_node(LOG_INFO, b->conf->name, NULL, 0, "%s: %s", b->conf->name,
                         nb ? "transport or CAN ids changed: the bus is opened again" : "removed from the configuration");
                buses_gone += !nb;
                bus_remove(m, i - 1);
        }
        /* The new buses join the kept ones, all in the configuration's order (status lists them so). */
        for (size_t k = 0; k < n_added; k++)
                m->buses[m->n_buses++] = added[k];
        for (size_t k = 0, at = 0; k < nc->n_buses; k++)
                for (size_t i = at; i < m->n_buses; i++)
                        if (strcmp(m->buses[i]->conf->name, nc->buses[k].name) == 0) {
                                CanBus *t = m->buses[i];
                                m->buses[i] = m->buses[at];
                                m->buses[at++] = t;
                                break;
                        }
        for (size_t i = 0; i < m->n_buses; i++) {
                CanBus *b = m->buses[i];
                const struct cf_bus_conf *nb = b->conf;
                bool fresh = false;
                for (size_t k = 0; k < n_added && !fresh; k++)
                        fresh = added[k] == b;
                if (fresh) {
                        for (size_t k = 0; k < b->n_nodes; k++)
                                bus_node_added(b->nodes[k]);
                        nodes_new += (unsigned) b->n_nodes;
                        log_node(LOG_INFO, nb->name, NULL, 0, "%s: added (%s, %zu node(s))", nb->name, nb->transport,
                                 b->n_nodes);
                        continue;
                }
                b->load.stall_max_us = (uint64_t) nc->node_lost_timeout_s * 1000000u;
                for (size_t k = b->n_nodes; k > 0; k--) {
                        Node *n = b->nodes[k - 1];
                        switch (node_fate(n, nb)) {
                        case NODE_KEEP:
                                if (conf_station(nb, n->nc.station)) {
                                        n->configured = true;
                                        n->doomed = false;
                                }
                                break;
                        case NODE_DOOM:
                                if (!n->doomed) {
                                        n->doomed = true;
                                        n->configured = false;
                                        nodes_later++;
                                        log_node(LOG_INFO, nb->name, n->name, n->flash ? n->flash->job->id : 0,
                                                 "%s: removed from the configuration; stays until its job is done",
                                                 n->name);
                                }
                                break;
                        case NODE_REPLACE:
                        case NODE_REMOVE:
                                nodes_gone++;
                                node_remove(n);
                                break;
                        }
                }
                for (size_t k = 0; k < nb->n_nodes; k++) {
                        if (bus_find_station(b, nb->nodes[k].station))
                                continue;
                        Node *n;
                        r = node_new(b, &nb->nodes[k], true, &n);
                        if (r < 0) {
                                log_node(LOG_ERR, nb->name, NULL, 0, "%s: station %u: cannot be added: %s", nb->name,
                                         nb->nodes[k].station, strerror(-r));
                                continue;
                        }
                        n->exported = true;
                        bus_node_added(n);
                        nodes_new++;
                }
        }
        for (size_t i = 0; i < m->n_buses; i++)
                for (size_t k = 0; k < m->buses[i]->n_nodes; k++)
                        ccp_session_set_min_timeout(m->buses[i]->nodes[k]->ccp,
                                                    (uint64_t) nc->reply_timeout_ms * 1000u);
        memcpy(m->fleet_key, key, sizeof key);
        cf_memzero(key, sizeof key);
        cf_keyring_free(m->keyring);
        m->keyring = keyring;
        cf_conf_free(m->conf);
        m->conf = nc;
        free(added);
        if (nodes_later && m->sweep)
                sd_event_source_set_enabled(m->sweep, SD_EVENT_ON);
        fleet_server_reload(m, &m->fleet); /* url, tenant, token…: its actions in progress kept */
        bus_manager_changed(m, "Buses", "Nodes", NULL);
        log_info("Reloaded %s: %zu bus(es); %zu bus(es) added, %u removed; %u node(s) added, %u removed, %u "
                 "removed once their job is done",
                 nc->path, m->n_buses, n_added, buses_gone, nodes_new, nodes_gone, nodes_later);
        manager_schedule(m);
        manager_update_status(m);
        return 0;

refused:
        cf_memzero(key, sizeof key);
        cf_keyring_free(keyring);
        free(added);
        log_error("Reload refused, the configuration in use stays: %s", why ? why : strerror(-r));
        cf_conf_free(nc);
        if (error)
                *error = TAKE_PTR(why);
        return r < 0 ? r : -EINVAL;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        /* systemd (ExecReload=kill -HUP) waits for READY=1 after RELOADING=1 */
        if (m->notify) {
                uint64_t now;
                sd_event_now(m->event, CLOCK_MONOTONIC, &now);
                sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=Reloading the configuration", now);
        }
        _cleanup_(freep) char *error = NULL;
        int r = manager_reload(m, &error);
        if (m->notify) {
                if (r < 0)
                        sd_notifyf(false, "READY=1\nSTATUS=Reload refused: %s", error ? error : strerror(-r));
                else
                        sd_notifyf(false, "READY=1\nSTATUS=%s", m->status[0] ? m->status : "Idle");
        }
        return 0;
}

/* ---- life cycle -------------------------------------------------------------------------------- */

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        log_info("Received %s, saving state and exiting", strsignal((int) si->ssi_signo));
        if (m->notify)
                sd_notify(false, "STOPPING=1");
        return sd_event_exit(m->event, 0);
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        uint64_t wd;
        sd_notify(false, "WATCHDOG=1");
        if (sd_watchdog_enabled(false, &wd) > 0) {
                sd_event_source_set_time(s, usec + wd / 2);
                sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        (void) m;
        return 0;
}

int manager_new(sd_event *e, struct cf_conf *conf, Manager **ret, char **error)
{
        Manager *m = calloc(1, sizeof *m);
        if (!m) {
                cf_conf_free(conf);
                return -ENOMEM;
        }
        m->event = sd_event_ref(e);
        m->conf = conf;
        m->next_job_id = 1;
        m->inv_fd = -1;
        m->probe_at_start = true;
        int r = cf_conf_read_fleet_key(conf, m->fleet_key, error);
        if (r < 0)
                goto fail;
        r = cf_conf_load_keyring(conf, &m->keyring, error);
        if (r < 0)
                goto fail;
        r = cf_conf_check_ca_file(conf, error);
        if (r < 0)
                goto fail;
        r = fetcher_new(e, &m->fetcher);
        if (r < 0)
                goto fail;
        r = job_store_prepare(conf->state_dir, conf->cache_dir);
        if (r < 0) {
                if (error &&
                    asprintf(error, "%s: state_dir/cache_dir: cannot create %s/jobs or %s/images: %s",
                             conf->path, conf->state_dir, conf->cache_dir, strerror(-r)) < 0)
                        *error = NULL;
                goto fail;
        }
        r = fleet_server_new(m, &m->fleet, error);
        if (r < 0)
                goto fail;
        r = sd_event_add_defer(e, &m->sched, on_schedule, m);
        if (r < 0)
                goto fail;
        sd_event_source_set_enabled(m->sched, SD_EVENT_OFF);
        r = sd_event_add_time(e, &m->start_timer, CLOCK_MONOTONIC, 0, 100000, on_start_timer, m);
        if (r < 0)
                goto fail;
        sd_event_source_set_enabled(m->start_timer, SD_EVENT_OFF);
        m->buses = calloc(conf->n_buses, sizeof *m->buses);
        if (!m->buses) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < conf->n_buses; i++) {
                m->buses[i] = calloc(1, sizeof *m->buses[i]);
                if (!m->buses[i]) {
                        r = -ENOMEM;
                        goto fail;
                }
                m->n_buses = i + 1;
                r = bus_setup(m, m->buses[i], &conf->buses[i]);
                if (r < 0) {
                        if (error && asprintf(error, "%s: buses[%zu]: %s", conf->path, i, strerror(-r)) < 0)
                                *error = NULL;
                        goto fail;
                }
        }
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

int manager_start(Manager *m)
{
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        int r = sd_event_add_signal(m->event, &m->sig_term, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sig_int, SIGINT, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sig_hup, SIGHUP, on_sighup, m);
        if (r >= 0)
                r = sd_event_add_post(m->event, &m->sweep, on_sweep, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->sweep, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Failed to set up signal handlers: %m");

        uint64_t wd;
        if (sd_watchdog_enabled(false, &wd) > 0) {
                uint64_t now;
                sd_event_now(m->event, CLOCK_MONOTONIC, &now);
                r = sd_event_add_time(m->event, &m->watchdog, CLOCK_MONOTONIC, now + wd / 2, 0, on_watchdog,
                                      m);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the watchdog timer: %m");
        }
        inventory_restore(m);
        m->started = true;
        r = resume_jobs(m);
        if (r < 0)
                return r;
        prune_jobs(m);
        for (size_t i = 0; i < m->n_buses; i++)
                start_probe(m->buses[i]);
        manager_schedule(m);
        manager_update_status(m);
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        /* first: its actions point at jobs */
        m->fleet = fleet_server_free(m->fleet);
        for (size_t i = 0; i < m->n_jobs; i++) {
                if (m->jobs[i]->state == JOB_RUNNING)
                        job_save(m->jobs[i]);
                job_free(m->jobs[i]);
        }
        free(m->jobs);
        for (size_t i = 0; i < m->n_buses; i++) {
                bus_done(m->buses[i]);
                free(m->buses[i]);
        }
        free(m->buses);
        sd_event_source_disable_unref(m->sched);
        sd_event_source_disable_unref(m->start_timer);
        if (m->inv_fd >= 0)
                close(m->inv_fd);
        sd_event_source_disable_unref(m->sig_term);
        sd_event_source_disable_unref(m->sig_int);
        sd_event_source_disable_unref(m->sig_hup);
        sd_event_source_disable_unref(m->sweep);
        sd_event_source_disable_unref(m->watchdog);
        sd_bus_flush_close_unref(m->bus);
        cf_memzero(m->fleet_key, sizeof m->fleet_key);
        cf_keyring_free(m->keyring);
        fd_read_free_all(&m->reads);
        fetcher_free(m->fetcher);
        cf_conf_free(m->conf);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
