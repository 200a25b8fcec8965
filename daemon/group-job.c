/* The group pass of one bus: members, the start barrier, paced group frames. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dual-bank.h"
#include "group-job.h"
#include "log.h"
#include "manager.h"

/* Frames at most in the transport's queue: the pass never runs ahead of what the device takes, so
 * a CRO of another session queued behind it waits at most this many frames. */
#define MAX_BACKLOG 8u
/* The pacing timer's period: frames due meanwhile go out together (at 500 kbit/s about 4). */
#define TICK_US 1000u
/* Frames a late tick may catch up at once (a loaded event loop must not become a burst). */
#define MAX_CATCH_UP 16u

struct GroupPass {
        CanBus *bus;
        Job *job;
        uint8_t link; /* a dual-bank job's link that the pass carries (dual-bank.h), 0 for a single image */
        FlashJob **members;
        size_t n_members, cap;
        bool running;
        uint32_t slot;      /* the next slot to send */
        uint64_t next_ns;   /* CLOCK_MONOTONIC ns when the next frame is due */
        uint64_t period_ns; /* the longest frame at max_load_percent: the catch-up bound */
        unsigned pct;       /* max_load_percent */
        uint32_t bitrate;   /* the hardware's, else the configured one */
        uint64_t frames;    /* group frames sent in this pass */
        bool verify;        /* a rider checks blocks: each block's data frames are followed by its check frame */
        int32_t cblk;       /* the block whose data went out and whose check frame did not yet, -1: none */
        uint64_t started;   /* µs */
        sd_event_source *timer, *defer;
};

/* The bits a standard data frame takes on the wire, from SOF to the end of the intermission: the
 * stuffed part (SOF, id, RTR, IDE, r0, DLC, data, CRC-15: a stuff bit after five equal bits) plus CRC
 * delimiter, ACK slot and delimiter, EOF and the 3-bit intermission. Group frames are paced by it:
 * the worst case (135 bits) would leave about a seventh of the bus idle during a pass. */
static unsigned frame_bits(uint32_t id, const uint8_t *data, uint8_t dlc)
{
        uint8_t bits[1 + 11 + 3 + 4 + 64 + 15];
        unsigned n = 0;
        bits[n++] = 0; /* SOF */
        for (int i = 10; i >= 0; i--)
                bits[n++] = (id >> i) & 1u;
        bits[n++] = 0; /* RTR */
        bits[n++] = 0; /* IDE */
        bits[n++] = 0; /* r0 */
        for (int i = 3; i >= 0; i--)
                bits[n++] = (dlc >> i) & 1u;
        for (unsigned k = 0; k < dlc && k < 8; k++)
                for (int i = 7; i >= 0; i--)
                        bits[n++] = (data[k] >> i) & 1u;
        uint16_t crc = 0;
        for (unsigned i = 0; i < n; i++) {
                unsigned next = bits[i] ^ ((crc >> 14) & 1u);
                crc = (uint16_t) ((crc << 1) & 0x7FFFu);
                if (next)
                        crc ^= 0x4599u;
        }
        for (int i = 14; i >= 0; i--)
                bits[n++] = (crc >> i) & 1u;
        unsigned stuff = 0, run = 0;
        uint8_t last = 2;
        for (unsigned i = 0; i < n; i++) {
                if (bits[i] == last) {
                        run++;
                } else {
                        last = bits[i];
                        run = 1;
                }
                if (run == 5) {
                        stuff++;
                        last = (uint8_t) !last; /* the stuff bit starts the next run */
                        run = 1;
                }
        }
        return n + stuff + 1u + 2u + 7u + 3u;
}

static uint64_t now_us(GroupPass *g)
{
        uint64_t now;
        sd_event_now(g->bus->m->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void pass_free(GroupPass *g)
{
        if (!g)
                return;
        for (size_t i = 0; i < g->n_members; i++) {
                g->members[i]->group = NULL;
                g->members[i]->gstate = GROUP_NONE;
        }
        sd_event_source_disable_unref(g->timer);
        sd_event_source_disable_unref(g->defer);
        if (g->bus->group == g)
                g->bus->group = NULL;
        free(g->members);
        free(g);
}

static int on_defer(sd_event_source *es, void *userdata);
static int on_tick(sd_event_source *es, uint64_t usec, void *userdata);

bool group_attach(FlashJob *f)
{
        if (f->group)
                return true;
        if (!f->node)
                return false;
        CanBus *b = f->node->bus;
        GroupPass *g = b->group;
        /* nodes of one job on different banks take different links: one pass carries one of them */
        if (g && (g->job != f->job || g->link != f->link))
                return false;
        if (!g) {
                g = calloc(1, sizeof *g);
                if (!g)
                        return false;
                g->bus = b;
                g->job = f->job;
                g->link = f->link;
                if (sd_event_add_defer(b->m->event, &g->defer, on_defer, g) < 0 ||
                    sd_event_source_set_enabled(g->defer, SD_EVENT_OFF) < 0) {
                        pass_free(g);
                        return false;
                }
                b->group = g;
        }
        if (g->n_members == g->cap) {
                size_t cap = g->cap ? g->cap * 2 : 8;
                FlashJob **m = realloc(g->members, cap * sizeof *m);
                if (!m) {
                        if (g->n_members == 0)
                                pass_free(g);
                        return false;
                }
                g->members = m;
                g->cap = cap;
        }
        g->members[g->n_members++] = f;
        f->group = g;
        f->gstate = GROUP_ATTACHED;
        return true;
}

void group_kick(CanBus *b)
{
        if (b && b->group)
                sd_event_source_set_enabled(b->group->defer, SD_EVENT_ONESHOT);
}

int group_enlist(FlashJob *f, uint16_t from)
{
        if (!f->group && !group_attach(f))
                return -EBUSY;
        f->gstate = GROUP_WAITING;
        f->gfrom = from;
        group_kick(f->group->bus);
        return 0;
}

static bool any_riding(const GroupPass *g)
{
        for (size_t i = 0; i < g->n_members; i++)
                if (g->members[i]->gstate == GROUP_RIDING)
                        return true;
        return false;
}

static void pass_stop(GroupPass *g)
{
        g->running = false;
        if (g->timer)
                sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
}

void group_detach(FlashJob *f)
{
        GroupPass *g = f->group;
        if (!g)
                return;
        for (size_t i = 0; i < g->n_members; i++)
                if (g->members[i] == f) {
                        g->members[i] = g->members[--g->n_members];
                        break;
                }
        f->group = NULL;
        f->gstate = GROUP_NONE;
        if (g->n_members == 0) {
                pass_free(g);
                return;
        }
        if (g->running && !any_riding(g)) {
                log_node(LOG_NOTICE, g->bus->conf->name, NULL, g->job->id,
                         "%s: group pass stopped at slot %u: no member left in it", g->bus->conf->name,
                         g->slot);
                pass_stop(g);
        }
        group_kick(g->bus);
}

void group_bus_done(CanBus *b)
{
        pass_free(b->group);
        b->group = NULL;
}

/* Whether a node of the job is still on its way to the join: the pass waits for it, so that one
 * pass serves every node started together. Lost nodes do not hold it up: they join a later pass. */
static bool someone_coming(const GroupPass *g)
{
        const CanBus *b = g->bus;
        for (size_t i = 0; i < b->n_nodes; i++) {
                const FlashJob *f = b->nodes[i]->flash;
                if (!f || f->job != g->job || !f->slot || f->lost || f->no_group)
                        continue;
                if (f->link && f->link != g->link)
                        continue; /* the other bank's link: not this pass */
                if (f->gstate == GROUP_WAITING || f->gstate == GROUP_RIDING)
                        continue;
                if (f->gdeciding && f->step == STEP_PROGRAMMING)
                        return true; /* it may want the second pass: one pass for all of them */
                if (f->step >= STEP_CONNECTING && f->step <= STEP_ERASING)
                        return true;
        }
        return false;
}

static void pass_finish(GroupPass *g)
{
        pass_stop(g);
        uint64_t ms = (now_us(g) - g->started) / 1000u;
        log_node(LOG_INFO, g->bus->conf->name, NULL, g->job->id,
                 "%s: group pass done: %llu frames in %llu ms", g->bus->conf->name,
                 (unsigned long long) g->frames, (unsigned long long) ms);
        /* Collect first: flash_job_group_done() may detach members (a failed send). */
        size_t n = 0;
        FlashJob **riders = calloc(g->n_members ? g->n_members : 1, sizeof *riders);
        for (size_t i = 0; i < g->n_members; i++)
                if (g->members[i]->gstate == GROUP_RIDING) {
                        g->members[i]->gstate = GROUP_ATTACHED;
                        if (riders)
                                riders[n++] = g->members[i];
                }
        CanBus *b = g->bus;
        for (size_t i = 0; i < n; i++)
                flash_job_group_done(riders[i]);
        free(riders);
        group_kick(b); /* nodes that joined meanwhile: the next pass */
}

static int arm(GroupPass *g, uint64_t at_us)
{
        if (!g->timer) {
                int r = sd_event_add_time(g->bus->m->event, &g->timer, CLOCK_MONOTONIC, at_us, TICK_US / 4,
                                          on_tick, g);
                if (r < 0)
                        return r;
        } else {
                sd_event_source_set_time(g->timer, at_us);
        }
        return sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT);
}

static void pass_start(GroupPass *g)
{
        uint32_t from = CF_GROUP_SLOTS;
        unsigned riders = 0;
        bool verify = false;
        for (size_t i = 0; i < g->n_members; i++) {
                FlashJob *f = g->members[i];
                if (f->gstate != GROUP_WAITING)
                        continue;
                f->gstate = GROUP_RIDING;
                f->gpasses++;
                riders++;
                verify |= f->verify;
                if (f->gfrom < from)
                        from = f->gfrom;
        }
        const struct cf_bus_conf *bc = g->bus->conf;
        unsigned pct = bc->max_load_percent ? bc->max_load_percent : 100;
        g->running = true;
        g->slot = from;
        g->frames = 0;
        g->verify = verify;
        g->cblk = -1;
        g->started = now_us(g);
        g->pct = pct;
        g->bitrate = can_transport_bitrate(g->bus->transport);
        if (!g->bitrate)
                g->bitrate = bc->bitrate ? bc->bitrate : 500000u;
        g->period_ns = (uint64_t) g->bus->load.frame_us * 1000u * 100u / pct;
        g->next_ns = g->started * 1000u;
        log_node(LOG_INFO, bc->name, NULL, g->job->id,
                 "%s: group pass to %u node%s from slot %u on id 0x%03X (at most %u%% of the bus)", bc->name,
                 riders, riders == 1 ? "" : "s", from, bc->group_id, pct);
        if (arm(g, g->started) < 0) {
                log_node(LOG_ERR, bc->name, NULL, g->job->id,
                         "%s: cannot pace the group pass: out of memory", bc->name);
                pass_finish(g); /* the members repair what they miss by unicast */
        }
}

static int on_defer(sd_event_source *es, void *userdata)
{
        GroupPass *g = userdata;
        if (g->running)
                return 0;
        bool waiting = false;
        for (size_t i = 0; i < g->n_members && !waiting; i++)
                waiting = g->members[i]->gstate == GROUP_WAITING;
        if (!waiting || someone_coming(g))
                return 0;
        pass_start(g);
        return 0;
}

static int on_tick(sd_event_source *es, uint64_t usec, void *userdata)
{
        GroupPass *g = userdata;
        CanTransport *t = g->bus->transport;
        if (!g->running)
                return 0;
        uint64_t now = now_us(g), now_ns = now * 1000u;
        if (g->next_ns + MAX_CATCH_UP * g->period_ns < now_ns)
                g->next_ns = now_ns - MAX_CATCH_UP * g->period_ns;
        const uint8_t *link_image = job_link_image(g->job, g->link);
        while ((g->slot < CF_GROUP_SLOTS || g->cblk >= 0) && g->next_ns <= now_ns) {
                struct cf_can_frame fr = {.id = g->bus->conf->group_id, .dlc = 8};
                /* A block's check frame goes out once the pass is past its last slot. */
                bool check = g->cblk >= 0 && (g->slot >= CF_GROUP_SLOTS || g->slot / CF_BLOCK_SLOTS != (uint32_t) g->cblk);
                if (check) {
                        (void) cf_ccp_group_check_frame(fr.data, link_image, (uint16_t) g->cblk);
                } else if (cf_ccp_group_frame(fr.data, link_image, (uint16_t) g->slot) <= 0) {
                        g->slot++; /* all 0xFF: the erased flash holds it already */
                        continue;
                }
                if (can_transport_backlog(t) >= MAX_BACKLOG)
                        break;
                int r = can_transport_send(t, &fr);
                if (r == -ENETDOWN)
                        break; /* the link's return restarts the members' sessions */
                if (r < 0 && r != -ENOBUFS) {
                        log_node(LOG_WARNING, g->bus->conf->name, NULL, g->job->id,
                                 "%s: group frame of slot %u not sent: %s (repaired from GAP)",
                                 g->bus->conf->name, g->slot, strerror(-r));
                } else if (r == -ENOBUFS) {
                        break;
                }
                if (check) {
                        g->cblk = -1;
                } else {
                        if (g->verify)
                                g->cblk = (int32_t) (g->slot / CF_BLOCK_SLOTS);
                        g->slot++;
                }
                g->frames++;
                g->next_ns += (uint64_t) frame_bits(fr.id, fr.data, fr.dlc) * 1000000000u * 100u /
                              ((uint64_t) g->bitrate * g->pct);
        }
        /* Progress: the riders have the slots sent so far (losses are repaired later). */
        for (size_t i = 0; i < g->n_members; i++) {
                FlashJob *f = g->members[i];
                if (f->gstate != GROUP_RIDING)
                        continue;
                uint64_t done = (uint64_t) g->slot * CF_GROUP_SLOT_SIZE;
                if (done > CF_GROUP_AREA_SIZE)
                        done = CF_GROUP_AREA_SIZE;
                f->bytes_done = f->bytes_total * done / CF_GROUP_AREA_SIZE;
                manager_flash_changed(f, false, false);
        }
        if (g->slot >= CF_GROUP_SLOTS && g->cblk < 0) {
                pass_finish(g);
                return 0;
        }
        uint64_t at = g->next_ns / 1000u;
        if (at < now + TICK_US)
                at = now + TICK_US;
        if (arm(g, at) < 0)
                pass_finish(g);
        return 0;
}
