/* A simulated bus: one queue, arbitration by identifier, exact frame times, faults, routing to nodes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim-bus.h"

#define MAX_DELIVERIES_PER_RUN 4096u /* without timing, bounds a storm of frames in one turn */

static uint64_t rng_next(uint64_t *s)
{
        /* xorshift64*: enough for fault injection, and reproducible from --seed */
        uint64_t x = *s;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *s = x;
        return x * 0x2545F4914F6CDD1Dull;
}

static double rng_unit(uint64_t *s)
{
        return (double) (rng_next(s) >> 11) / (double) (1ull << 53);
}

static int node_send(void *ctx, struct sim_node *n, uint32_t id, const uint8_t *data, uint8_t dlc);

int sim_bus_new(struct sim_bus **ret, const struct sim_bus_config *cfg, unsigned n_nodes)
{
        struct sim_bus *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->name = strdup(cfg->name);
        b->nodes = calloc(n_nodes ? n_nodes : 1, sizeof(*b->nodes));
        if (!b->name || !b->nodes) {
                sim_bus_free(b);
                return -ENOMEM;
        }
        b->n_nodes = n_nodes;
        b->bitrate = cfg->bitrate;
        b->timing = cfg->timing;
        b->drop = cfg->drop;
        b->corrupt = cfg->corrupt;
        b->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ull;
        b->log_frames = cfg->log_frames;
        for (unsigned i = 0; i < n_nodes; i++) {
                b->nodes[i].send = node_send;
                b->nodes[i].send_ctx = b;
        }
        *ret = b;
        return 0;
}

struct sim_bus *sim_bus_free(struct sim_bus *b)
{
        if (!b)
                return NULL;
        free(b->nodes);
        free(b->name);
        free(b);
        return NULL;
}

void sim_bus_set_bitrate(struct sim_bus *b, uint32_t bitrate)
{
        b->bitrate = bitrate;
}

static uint64_t now_ns(void)
{
        return sim_now_us() * 1000u;
}

/* A frame is queued at the moment its sender let go of it: for a node answering a frame as it is
 * delivered, the end of that frame on the bus (the simulator's own late wake-up is not the node's
 * reaction time); otherwise now. */
static int enqueue(struct sim_bus *b, const struct cf_can_frame *f, int source)
{
        if (b->n_queued >= SIM_BUS_QUEUE)
                return -ENOBUFS;
        uint64_t at = b->delivering_ns && source != SIM_SOURCE_HOST ? b->delivering_ns : now_ns();
        b->queue[b->n_queued++] = (struct sim_pending){.f = *f, .source = source, .enq_ns = at};
        return 0;
}

int sim_bus_host_send(struct sim_bus *b, const struct cf_can_frame *f)
{
        return enqueue(b, f, SIM_SOURCE_HOST);
}

static int node_send(void *ctx, struct sim_node *n, uint32_t id, const uint8_t *data, uint8_t dlc)
{
        struct sim_bus *b = ctx;
        if (n->tx_pending >= SIM_MAILBOXES)
                return -EAGAIN;
        if (id > CF_CAN_SFF_MAX || dlc > 8)
                return -EINVAL;
        struct cf_can_frame f = {.id = id, .dlc = dlc};
        memcpy(f.data, data, dlc);
        int r = enqueue(b, &f, (int) (n - b->nodes));
        if (r < 0)
                return -EAGAIN;
        n->tx_pending++;
        return 0;
}

/* Arbitration: the identifier's bits as they go on the wire (base id, then SRR/IDE, extension, RTR);
 * dominant 0 wins, so the lowest key wins. */
static uint64_t arb_key(const struct cf_can_frame *f)
{
        if (f->ext)
                return ((uint64_t) (f->id >> 18) << 32) | 1u << 31 | (uint64_t) (f->id & 0x3FFFFu) << 1 |
                       (f->rtr ? 1u : 0u);
        return ((uint64_t) f->id << 32) | (f->rtr ? 1u << 31 : 0u);
}

/* One line per frame, written at once (stderr is unbuffered), stamped with the end of the frame on
 * the bus in CLOCK_MONOTONIC microseconds: "bus0: node 1  -> 6C1 [8] FF 00 … @123456789". */
static void log_frame(struct sim_bus *b, const struct sim_pending *p, const char *what, uint64_t end_ns)
{
        char line[160], src[16];
        size_t n = 0;
        if (p->source == SIM_SOURCE_HOST)
                snprintf(src, sizeof(src), "host");
        else
                snprintf(src, sizeof(src), "node %u", b->nodes[p->source].sa);
        n += (size_t) snprintf(line, sizeof(line), "%s: %-7s %s %0*X [%u]", b->name, src, what,
                               p->f.ext ? 8 : 3, p->f.id, p->f.dlc);
        if (p->f.rtr)
                n += (size_t) snprintf(line + n, sizeof(line) - n, " remote");
        else
                for (unsigned i = 0; i < p->f.dlc && i < 8 && n < sizeof(line); i++)
                        n += (size_t) snprintf(line + n, sizeof(line) - n, " %02X", p->f.data[i]);
        if (n < sizeof(line))
                n += (size_t) snprintf(line + n, sizeof(line) - n, " @%" PRIu64 "\n", end_ns / 1000u);
        fwrite(line, 1, n < sizeof(line) ? n : sizeof(line) - 1, stderr);
}

static void deliver(struct sim_bus *b, struct sim_pending *p, uint64_t now_us)
{
        const char *what = "->";
        if (p->source != SIM_SOURCE_HOST && b->nodes[p->source].tx_pending > 0)
                b->nodes[p->source].tx_pending--;
        b->frames++;

        if (b->drop > 0 && rng_unit(&b->rng) < b->drop) {
                b->dropped++;
                if (b->log_frames)
                        log_frame(b, p, "dropped", b->current_end_ns);
                return;
        }
        if (b->corrupt > 0 && rng_unit(&b->rng) < b->corrupt && p->f.dlc > 0 && !p->f.rtr) {
                unsigned bit = (unsigned) (rng_next(&b->rng) % (8u * (p->f.dlc > 8 ? 8 : p->f.dlc)));
                p->f.data[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                b->corrupted++;
                what = "corrupt";
        }

        /* The host hears it first: the log line is not on the way of the answer. */
        if (p->source != SIM_SOURCE_HOST && b->port.send)
                b->port.send(b->port.ctx, &p->f);
        if (!p->f.ext && !p->f.rtr) {
                b->delivering_ns = b->timing ? b->current_end_ns : 0;
                for (unsigned i = 0; i < b->n_nodes; i++) {
                        struct sim_node *n = &b->nodes[i];
                        uint32_t gid;
                        if ((int) i == p->source)
                                continue;
                        if (n->cfg.cro_id == p->f.id) {
                                sim_node_rx(n, p->f.data, p->f.dlc, now_us);
                        } else if (sim_node_listening(n) && cf_node_group_id(&n->node, &gid) &&
                                   gid == p->f.id) {
                                /* --group-loss: this node's receiver misses it (an RX overrun). */
                                if (n->group_loss > 0 && rng_unit(&b->rng) < n->group_loss) {
                                        n->group_lost++;
                                        if (b->log_frames) {
                                                char what_lost[16];
                                                snprintf(what_lost, sizeof(what_lost), "lost@%u", n->sa);
                                                log_frame(b, p, what_lost, b->current_end_ns);
                                        }
                                        continue;
                                }
                                sim_node_rx_group(n, p->f.data, p->f.dlc, now_us, b->delivering_ns / 1000u);
                        }
                }
                b->delivering_ns = 0;
        }
        if (b->log_frames)
                log_frame(b, p, what, b->current_end_ns);
}

/* Start the next frame when the bus is free: the earliest moment a frame was waiting, and among
 * the frames waiting then, the lowest identifier. */
static void start_next(struct sim_bus *b)
{
        uint64_t earliest = UINT64_MAX;
        for (unsigned i = 0; i < b->n_queued; i++)
                if (b->queue[i].enq_ns < earliest)
                        earliest = b->queue[i].enq_ns;
        uint64_t start = earliest > b->free_at_ns ? earliest : b->free_at_ns;

        unsigned best = 0;
        uint64_t best_key = UINT64_MAX;
        for (unsigned i = 0; i < b->n_queued; i++) {
                uint64_t k = arb_key(&b->queue[i].f);
                if (b->queue[i].enq_ns <= start && k < best_key) {
                        best_key = k;
                        best = i;
                }
        }
        b->current = b->queue[best];
        memmove(&b->queue[best], &b->queue[best + 1], (b->n_queued - best - 1) * sizeof(b->queue[0]));
        b->n_queued--;
        b->in_flight = true;
        b->current_end_ns = start + (b->timing ? sim_frame_time_ns(&b->current.f, b->bitrate) : 0);
        b->free_at_ns = b->current_end_ns;
}

uint64_t sim_bus_run(struct sim_bus *b, uint64_t now_us)
{
        for (unsigned budget = MAX_DELIVERIES_PER_RUN; budget > 0; budget--) {
                uint64_t t = now_ns();
                if (!b->in_flight && b->n_queued > 0)
                        start_next(b);
                if (!b->in_flight || b->current_end_ns > t)
                        break;
                b->in_flight = false;
                deliver(b, &b->current, now_us);
        }
        for (unsigned i = 0; i < b->n_nodes; i++)
                sim_node_run(&b->nodes[i], now_us);

        uint64_t next = UINT64_MAX;
        if (b->in_flight)
                next = (b->current_end_ns + 999u) / 1000u;
        else if (b->n_queued > 0)
                next = now_us;
        for (unsigned i = 0; i < b->n_nodes; i++) {
                const struct sim_node *n = &b->nodes[i];
                uint64_t t = n->dead ? UINT64_MAX : n->off ? n->power_up_at_us : n->next_poll_us;
                if (t < next)
                        next = t;
        }
        return next;
}
