/* Raw AF_CAN socket for the simulator: filters on the nodes' CRO ids, ENETDOWN survived. */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/raw.h>

#include "socketcan-port.h"

#define ERROR_PAUSE_US 100000u

struct socketcan_port {
        char ifname[IFNAMSIZ];
        int fd;
        struct sim_bus *bus;
        bool pausing;
        uint64_t resume_at_us;
        int last_tx_error; /* logged once per streak */
};

static void report(struct socketcan_port *p, int err, const char *what)
{
        fprintf(stderr, "%s: %s: %s\n", p->ifname, what, strerror(err));
}

static void frame_out(void *ctx, const struct cf_can_frame *f)
{
        struct socketcan_port *p = ctx;
        struct can_frame cf = {0};
        cf.can_id = f->id | (f->ext ? CAN_EFF_FLAG : 0) | (f->rtr ? CAN_RTR_FLAG : 0);
        cf.can_dlc = f->dlc > 8 ? 8 : f->dlc;
        memcpy(cf.data, f->data, cf.can_dlc);

        ssize_t n;
        do
                n = write(p->fd, &cf, sizeof(cf));
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t) sizeof(cf)) {
                if (p->last_tx_error) {
                        fprintf(stderr, "%s: sending again\n", p->ifname);
                        p->last_tx_error = 0;
                }
                return;
        }
        int err = n < 0 ? errno : EIO;
        if (err != p->last_tx_error)
                report(p, err, "frame lost");
        p->last_tx_error = err;
}

int socketcan_port_new(struct socketcan_port **ret, const char *ifname, struct sim_bus *bus)
{
        if (strlen(ifname) >= IFNAMSIZ)
                return -ENAMETOOLONG;
        struct socketcan_port *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        snprintf(p->ifname, sizeof(p->ifname), "%s", ifname);
        p->bus = bus;
        int r;

        p->fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
        if (p->fd < 0) {
                r = -errno;
                free(p);
                return r;
        }
        unsigned idx = if_nametoindex(ifname);
        if (idx == 0) {
                r = -ENODEV;
                goto fail;
        }

        struct can_filter *flt = calloc(bus->n_nodes ? bus->n_nodes : 1, sizeof(*flt));
        if (!flt) {
                r = -ENOMEM;
                goto fail;
        }
        for (unsigned i = 0; i < bus->n_nodes; i++) {
                flt[i].can_id = bus->nodes[i].cfg.cro_id;
                flt[i].can_mask = CAN_SFF_MASK | CAN_EFF_FLAG | CAN_RTR_FLAG;
        }
        r = setsockopt(p->fd, SOL_CAN_RAW, CAN_RAW_FILTER, flt, (socklen_t) (bus->n_nodes * sizeof(*flt)));
        free(flt);
        if (r < 0) {
                r = -errno;
                goto fail;
        }

        struct sockaddr_can addr = {.can_family = AF_CAN, .can_ifindex = (int) idx};
        if (bind(p->fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
                r = -errno;
                goto fail;
        }
        bus->port = (struct sim_port){.send = frame_out, .ctx = p};
        *ret = p;
        return 0;
fail:
        close(p->fd);
        free(p);
        return r;
}

struct socketcan_port *socketcan_port_free(struct socketcan_port *p)
{
        if (!p)
                return NULL;
        if (p->bus->port.ctx == p)
                p->bus->port = (struct sim_port){0};
        close(p->fd);
        free(p);
        return NULL;
}

int socketcan_port_fd(const struct socketcan_port *p)
{
        return p->pausing ? -1 : p->fd;
}

void socketcan_port_io(struct socketcan_port *p, short revents)
{
        if (!(revents & (POLLIN | POLLERR)))
                return;
        for (unsigned budget = 256; budget > 0; budget--) {
                struct can_frame cf;
                ssize_t n = read(p->fd, &cf, sizeof(cf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) {
                        /* ENETDOWN when the link goes down: wait for it to come back */
                        report(p, errno, "receive");
                        p->pausing = true;
                        p->resume_at_us = sim_now_us() + ERROR_PAUSE_US;
                        return;
                }
                if (n != (ssize_t) sizeof(cf) || (cf.can_id & CAN_ERR_FLAG))
                        continue;
                struct cf_can_frame f = {
                    .ext = (cf.can_id & CAN_EFF_FLAG) != 0,
                    .rtr = (cf.can_id & CAN_RTR_FLAG) != 0,
                    .dlc = cf.can_dlc > 8 ? 8 : cf.can_dlc,
                };
                f.id = cf.can_id & (f.ext ? CAN_EFF_MASK : CAN_SFF_MASK);
                memcpy(f.data, cf.data, f.dlc);
                if (sim_bus_host_send(p->bus, &f) < 0)
                        report(p, ENOBUFS, "bus queue full, frame lost");
        }
}

uint64_t socketcan_port_deadline(const struct socketcan_port *p)
{
        return p->pausing ? p->resume_at_us : UINT64_MAX;
}

void socketcan_port_timer(struct socketcan_port *p, uint64_t now_us)
{
        if (p->pausing && now_us >= p->resume_at_us)
                p->pausing = false;
}
