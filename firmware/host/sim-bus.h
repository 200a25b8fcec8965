/* One simulated CAN bus: its nodes, frame routing by CAN id, the bus timing model, fault injection. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sim-frame.h"
#include "sim-node.h"

/*
 * Every frame, from the host port or from a node, goes through one queue. The bus sends one frame
 * at a time: when it is free, the pending frame with the lowest identifier wins arbitration. With
 * the timing model a frame is delivered only once the bus would have finished sending it
 * (sim_frame_time_ns() at the bus's bitrate); without it, at the next turn of the loop.
 * Delivery: nodes' frames go out of the port (to the host); every frame goes to each other node
 * whose CRO id it carries, and to each node that is a member of a group transfer on its id (11-bit
 * data frames only; a node with --group-loss misses a fraction of those, logged with
 * --log-frames as "<bus>: host    lost@SA 680 [8] ..."). Faults: a dropped frame reaches nobody; a
 * corrupted one has one data bit flipped (damage that slipped past the CAN CRC, e.g. in an adapter,
 * which only end-to-end checksums catch).
 */

#define SIM_BUS_QUEUE   1024u
#define SIM_MAILBOXES   3u /* bxCAN: three transmit mailboxes per node */
#define SIM_SOURCE_HOST (-1)

struct sim_port {
        /* A frame on the bus that the outside should see. */
        void (*send)(void *ctx, const struct cf_can_frame *f);
        void *ctx;
};

struct sim_bus_config {
        const char *name;
        uint32_t bitrate;
        bool timing;
        double drop, corrupt;
        uint64_t seed;
        bool log_frames;
};

struct sim_pending {
        struct cf_can_frame f;
        int source; /* node index, or SIM_SOURCE_HOST */
        uint64_t enq_ns;
};

struct sim_bus {
        char *name;
        uint32_t bitrate;
        bool timing;
        double drop, corrupt;
        uint64_t rng;
        bool log_frames;
        struct sim_port port;

        struct sim_node *nodes;
        unsigned n_nodes;

        struct sim_pending queue[SIM_BUS_QUEUE];
        unsigned n_queued;
        bool in_flight;
        struct sim_pending current;
        uint64_t current_end_ns;
        uint64_t free_at_ns;
        uint64_t delivering_ns; /* while a frame is handed to the nodes: its end on the bus */

        uint64_t frames, dropped, corrupted;
};

int sim_bus_new(struct sim_bus **ret, const struct sim_bus_config *cfg, unsigned n_nodes);
struct sim_bus *sim_bus_free(struct sim_bus *b);

/* A frame from the outside (the SLCAN host, the SocketCAN interface): -ENOBUFS when the queue is full. */
int sim_bus_host_send(struct sim_bus *b, const struct cf_can_frame *f);
/* Deliver what is due, run the nodes that are due. Returns the next deadline (µs, CLOCK_MONOTONIC),
 * UINT64_MAX when nothing is scheduled. */
uint64_t sim_bus_run(struct sim_bus *b, uint64_t now_us);
void sim_bus_set_bitrate(struct sim_bus *b, uint32_t bitrate);
