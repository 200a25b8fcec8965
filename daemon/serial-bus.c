/* The CAN transport interface of a serial bus (docs/design.md §8): no frames, a link that is always up.
 * The line itself is opened by each session of its node (serial-job.c): a chip's loader is reached
 * only while the gateway talks to it, and a device that comes back under the same name (an adapter
 * plugged in again, a simulator started again) is simply opened again. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "can-transport.h"
#include "conf.h"

static int serial_send(CanTransport *t, const struct cf_can_frame *f)
{
        return -EOPNOTSUPP; /* no CCP on a serial bus */
}

static void serial_free(CanTransport *t)
{
        free(t);
}

static const struct can_transport_ops serial_ops = {
    .send = serial_send,
    .free = serial_free,
};

int serial_bus_transport_new(sd_event *e, const struct cf_bus_conf *b, CanTransport **ret)
{
        CanTransport *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->ops = &serial_ops;
        t->event = e;
        t->state = CF_LINK_UP;
        t->name = strdup(b->transport);
        if (!t->name) {
                free(t);
                return -ENOMEM;
        }
        snprintf(t->bus, sizeof t->bus, "%s", b->name);
        *ret = t;
        return 0;
}
