/* The generic half of the CAN transport interface: dispatch to the implementation and to the owner's
 * callbacks. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "can-transport.h"
#include "conf.h"

const char *cf_link_state_str(enum cf_link_state s)
{
        switch (s) {
        case CF_LINK_UP:
                return "up";
        case CF_LINK_DOWN:
                return "down";
        case CF_LINK_BUS_OFF:
                return "bus-off";
        case CF_LINK_ERROR:
                return "error";
        }
        return "error";
}

int can_transport_new(sd_event *e, const struct cf_bus_conf *b, const uint32_t *dto_ids, size_t n_ids,
                      can_frame_cb on_frame, can_link_cb on_link, void *userdata, CanTransport **ret)
{
        CanTransport *t = NULL;
        int r;

        if (b->kind == CF_TRANSPORT_SLCAN)
                r = slcan_transport_new(e, b, &t);
        else if (b->kind == CF_TRANSPORT_SERIAL)
                r = serial_bus_transport_new(e, b, &t);
        else
                r = socketcan_transport_new(e, b, dto_ids, n_ids, &t);
        if (r < 0)
                return r;
        t->on_frame = on_frame;
        t->on_link = on_link;
        t->userdata = userdata;
        *ret = t;
        return 0;
}

int can_transport_send(CanTransport *t, const struct cf_can_frame *f)
{
        if (f->ext || f->rtr || f->id > CF_CAN_SFF_MAX || f->dlc > 8)
                return -EINVAL;
        if (t->state != CF_LINK_UP)
                return -ENETDOWN;
        int r = t->ops->send(t, f);
        if (r >= 0)
                t->frames_tx++;
        return r;
}

uint32_t can_transport_bitrate(CanTransport *t)
{
        return t->ops->bitrate ? t->ops->bitrate(t) : 0;
}

size_t can_transport_backlog(CanTransport *t)
{
        return t->ops->backlog ? t->ops->backlog(t) : 0;
}

CanTransport *can_transport_free(CanTransport *t)
{
        if (!t)
                return NULL;
        free(t->name);
        t->ops->free(t);
        return NULL;
}

void can_transport_deliver(CanTransport *t, const struct cf_can_frame *f)
{
        t->frames_rx++;
        if (t->on_frame)
                t->on_frame(t, f, t->userdata);
}

int can_transport_add_io(CanTransport *t, sd_event_source **ret, int fd, sd_event_io_handler_t cb,
                         void *userdata)
{
        int r = sd_event_add_io(t->event, ret, fd, EPOLLIN, cb, userdata);
        if (r < 0)
                return r;
        /* Received frames before time-outs: when the daemon was not scheduled for a while, an answer
         * that came in time is read before the timer that would call it lost. */
        (void) sd_event_source_set_priority(*ret, SD_EVENT_PRIORITY_IMPORTANT);
        return 0;
}

void can_transport_set_link(CanTransport *t, enum cf_link_state s)
{
        if (s == CF_LINK_UP)
                t->error[0] = 0;
        if (t->state == s)
                return;
        t->state = s;
        if (t->on_link)
                t->on_link(t, s, t->userdata);
}
