/* One interface over the CAN transports (SLCAN, SocketCAN): open, send, a receive callback and link-state
 * events. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "canfleet/can-frame.h"

struct cf_bus_conf;

/* The transports deliver only standard data frames (the only kind CCP uses): extended and remote
 * frames are dropped as they arrive, and can_transport_send() refuses them with -EINVAL. */

enum cf_link_state {
        CF_LINK_UP,
        CF_LINK_DOWN,    /* interface down / adapter gone: sessions pause until it is back */
        CF_LINK_BUS_OFF, /* the controller left the bus; a restart has been asked for */
        CF_LINK_ERROR,   /* cannot be opened at all (bad device, no AF_CAN); retried */
};

/* "up", "down", "bus-off", "error" as on D-Bus. */
const char *cf_link_state_str(enum cf_link_state s);

typedef struct CanTransport CanTransport;

typedef void (*can_frame_cb)(CanTransport *t, const struct cf_can_frame *f, void *userdata);
typedef void (*can_link_cb)(CanTransport *t, enum cf_link_state state, void *userdata);

/* What an implementation supplies. send() queues when the device is not writable (never blocks);
 * it returns 0 when the frame is sent or queued, -ENETDOWN when the link is down (the caller keeps
 * its request and re-sends when the link is back), another negative errno otherwise. */
struct can_transport_ops {
        int (*send)(CanTransport *t, const struct cf_can_frame *f);
        void (*free)(CanTransport *t);
        /* The bitrate the hardware reports, 0 when unknown (optional). */
        uint32_t (*bitrate)(CanTransport *t);
        /* Frames sent but not yet taken by the device (its write queue), for flow control of a
         * group pass (optional: 0 when unknown). */
        size_t (*backlog)(CanTransport *t);
};

struct CanTransport {
        const struct can_transport_ops *ops;
        sd_event *event;
        enum cf_link_state state;
        can_frame_cb on_frame;
        can_link_cb on_link;
        void *userdata;
        uint64_t frames_tx, frames_rx;
        char *name; /* for messages: "slcan:/dev/ttyACM0" */
        char error[160]; /* why the link is not up, when known ("cannot open /dev/ttyACM0: …") */
        char bus[16]; /* the bus's name (CF_BUS_NAME_MAX): BUS= of the transport's journal entries */
};

/* Open the transport of a configured bus. The link may come up later (on_link tells); opening
 * fails only for bad arguments or lack of memory. dto_ids: the ids to receive (kernel filters). */
int can_transport_new(sd_event *e, const struct cf_bus_conf *b, const uint32_t *dto_ids, size_t n_ids,
                      can_frame_cb on_frame, can_link_cb on_link, void *userdata, CanTransport **ret);
int slcan_transport_new(sd_event *e, const struct cf_bus_conf *b, CanTransport **ret);
/* A serial bus (serial-bus.c): the node's sessions open the line themselves. */
int serial_bus_transport_new(sd_event *e, const struct cf_bus_conf *b, CanTransport **ret);
int socketcan_transport_new(sd_event *e, const struct cf_bus_conf *b, const uint32_t *dto_ids, size_t n_ids,
                            CanTransport **ret);

int can_transport_send(CanTransport *t, const struct cf_can_frame *f);
CanTransport *can_transport_free(CanTransport *t);
uint32_t can_transport_bitrate(CanTransport *t);
size_t can_transport_backlog(CanTransport *t);

/* For implementations: watch the device's fd for received frames (EPOLLIN), at a priority above
 * the sessions' time-outs. */
int can_transport_add_io(CanTransport *t, sd_event_source **ret, int fd, sd_event_io_handler_t cb,
                         void *userdata);
/* For implementations: deliver a received frame / a link change to the owner. */
void can_transport_deliver(CanTransport *t, const struct cf_can_frame *f);
void can_transport_set_link(CanTransport *t, enum cf_link_state s);
