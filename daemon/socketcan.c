/* SocketCAN transport: a CAN_RAW socket with kernel filters on the bus's DTO ids; libsocketcan for link
 * state and bus-off restart. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libsocketcan.h>
#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/netlink.h>
#include <linux/can/raw.h>

#include "cleanup.h"
#include "can-transport.h"
#include "conf.h"
#include "log.h"

#define LINK_POLL_US 500000ULL
#define TXQ_MAX      4096u
#define TX_RETRY_US  2000ULL

typedef struct SocketCan {
        CanTransport t;
        char ifname[IFNAMSIZ];
        uint32_t bitrate;
        struct can_filter *filters;
        size_t n_filters;
        int fd;
        sd_event_source *io;
        sd_event_source *poll; /* link watch while down, and transmit retry after ENOBUFS */
        /* transmit queue: frames the socket did not take yet (EAGAIN / ENOBUFS) */
        struct can_frame *txq;
        size_t tx_head, tx_len, tx_cap;
        /* vcan and other virtual interfaces have no CAN netlink state, and libsocketcan says so on
         * stderr at every call: once it has, the interface flags alone decide. */
        bool no_can_state;
        char lib_said[512]; /* libsocketcan's last complaint, logged once until it says something else */
} SocketCan;

/* libsocketcan reports some failures itself, on stderr ("Cannot find device \"can0\"", "no state data
 * found"), past canfleetd's log: under systemd such a line would land in the journal without a level,
 * BUS= or CODE_*. Around each of its calls fd 2 is a pipe of ours, and what it wrote is logged as the
 * bus's. canfleetd is single-threaded and logs nothing during the call, so only libsocketcan writes to
 * fd 2 meanwhile; the pipe is non-blocking, so a flood is cut, never a hang; should the redirect fail,
 * the call runs with stderr as it is. */
static int lib_pipe[2] = {-1, -1};

static int lib_catch_begin(void)
{
        if (lib_pipe[0] < 0 && pipe2(lib_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return -1;
        fflush(stderr);
        int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        if (saved < 0)
                return -1;
        if (dup2(lib_pipe[1], STDERR_FILENO) < 0) {
                close(saved);
                return -1;
        }
        return saved;
}

static void lib_catch_end(SocketCan *s, int saved, const char *call)
{
        if (saved < 0)
                return;
        int e = errno;
        fflush(stderr);
        (void) dup2(saved, STDERR_FILENO);
        close(saved);
        char buf[sizeof s->lib_said];
        ssize_t n = read(lib_pipe[0], buf, sizeof buf - 1);
        char rest[256];
        while (read(lib_pipe[0], rest, sizeof rest) > 0)
                ; /* beyond what one complaint takes: dropped, never left for the next call */
        if (n > 0) {
                buf[n] = '\0';
                /* the same words at every poll: logged once, until it says something else */
                if (strcmp(buf, s->lib_said) != 0) {
                        memcpy(s->lib_said, buf, (size_t) n + 1);
                        for (char *line = buf, *end; line < buf + n; line = end + 1) {
                                end = strchr(line, '\n');
                                if (!end)
                                        end = buf + n;
                                *end = '\0';
                                if (line[0])
                                        log_node(LOG_INFO, s->t.bus, NULL, 0, "%s: libsocketcan %s: %s", s->t.name,
                                                 call, line);
                        }
                }
        }
        errno = e;
}

/* libsocketcan's calls, with their stderr caught (errno is the call's). */
static int lib_get_state(SocketCan *s, int *state)
{
        int saved = lib_catch_begin();
        int r = can_get_state(s->ifname, state);
        lib_catch_end(s, saved, "can_get_state");
        return r;
}

static int lib_do_restart(SocketCan *s)
{
        int saved = lib_catch_begin();
        int r = can_do_restart(s->ifname);
        lib_catch_end(s, saved, "can_do_restart");
        return r;
}

static int lib_get_bittiming(SocketCan *s, struct can_bittiming *bt)
{
        int saved = lib_catch_begin();
        int r = can_get_bittiming(s->ifname, bt);
        lib_catch_end(s, saved, "can_get_bittiming");
        return r;
}

static void arm_poll(SocketCan *s, uint64_t after)
{
        uint64_t now;
        sd_event_now(s->t.event, CLOCK_MONOTONIC, &now);
        sd_event_source_set_time(s->poll, now + after);
        sd_event_source_set_enabled(s->poll, SD_EVENT_ONESHOT);
}

/* libsocketcan answers -1 with errno, or 0; vcan and friends have no CAN netlink data at all. */
static int link_state(SocketCan *s, enum cf_link_state *ret)
{
        struct ifreq ifr = {0};
        memcpy(ifr.ifr_name, s->ifname, IFNAMSIZ);
        if (ioctl(s->fd, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        if (!(ifr.ifr_flags & IFF_UP) || !(ifr.ifr_flags & IFF_RUNNING)) {
                *ret = CF_LINK_DOWN;
                return 0;
        }
        int state;
        *ret = CF_LINK_UP;
        if (s->no_can_state)
                return 0;
        if (lib_get_state(s, &state) < 0) {
                s->no_can_state = true;
                return 0;
        }
        if (state == CAN_STATE_BUS_OFF)
                *ret = CF_LINK_BUS_OFF;
        else if (state == CAN_STATE_STOPPED)
                *ret = CF_LINK_DOWN;
        return 0;
}

static void went_down(SocketCan *s, enum cf_link_state st)
{
        if (s->t.state == st)
                return;
        log_debug("%s: link %s", s->t.name, cf_link_state_str(st));
        if (st == CF_LINK_BUS_OFF && lib_do_restart(s) < 0)
                log_debug_errno(-errno, "%s: bus-off restart: %m", s->t.name);
        s->tx_head = s->tx_len = 0;
        can_transport_set_link(&s->t, st);
        arm_poll(s, LINK_POLL_US);
}

static int flush_tx(SocketCan *s)
{
        while (s->tx_head < s->tx_len) {
                ssize_t n = write(s->fd, &s->txq[s->tx_head], sizeof(struct can_frame));
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return sd_event_source_set_io_events(s->io, EPOLLIN | EPOLLOUT);
                        /* ENOBUFS: the qdisc is full and EPOLLOUT will not tell us when it drains */
                        if (errno == ENOBUFS) {
                                arm_poll(s, TX_RETRY_US);
                                return 0;
                        }
                        return -errno;
                }
                s->tx_head++;
        }
        s->tx_head = s->tx_len = 0;
        return sd_event_source_set_io_events(s->io, EPOLLIN);
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
        SocketCan *s = userdata;

        /* A link going down raises a socket error: EPOLLERR without EPOLLIN. Only read() takes the
         * error off the socket; left there, it would wake the loop again at once, for ever. */
        if (revents & (EPOLLIN | EPOLLERR)) {
                for (unsigned i = 0; i < 64; i++) {
                        struct can_frame cf;
                        ssize_t n = read(fd, &cf, sizeof cf);
                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        break;
                                if (errno == ENETDOWN)
                                        went_down(s, CF_LINK_DOWN);
                                else
                                        log_debug_errno(-errno, "%s: read: %m", s->t.name);
                                return 0;
                        }
                        if (n != sizeof cf)
                                continue;
                        if (cf.can_id & CAN_ERR_FLAG) {
                                if (cf.can_id & CAN_ERR_BUSOFF)
                                        went_down(s, CF_LINK_BUS_OFF);
                                continue;
                        }
                        if (cf.can_id & (CAN_EFF_FLAG | CAN_RTR_FLAG))
                                continue;
                        struct cf_can_frame f = {.id = cf.can_id & CAN_SFF_MASK,
                                                 .dlc = cf.len > 8 ? 8 : cf.len};
                        memcpy(f.data, cf.data, f.dlc);
                        can_transport_deliver(&s->t, &f);
                }
        }
        if (revents & EPOLLOUT) {
                int r = flush_tx(s);
                if (r == -ENETDOWN)
                        went_down(s, CF_LINK_DOWN);
        }
        return 0;
}

static int socketcan_open(SocketCan *s);

static int on_poll(sd_event_source *es, uint64_t usec, void *userdata)
{
        SocketCan *s = userdata;

        if (s->fd < 0) {
                if (socketcan_open(s) < 0) {
                        arm_poll(s, 2 * LINK_POLL_US);
                        return 0;
                }
                can_transport_set_link(&s->t, CF_LINK_DOWN); /* opened: the link state decides now */
        }
        if (s->t.state == CF_LINK_UP) {
                int r = flush_tx(s); /* the ENOBUFS retry */
                if (r == -ENETDOWN)
                        went_down(s, CF_LINK_DOWN);
                return 0;
        }
        enum cf_link_state st;
        if (link_state(s, &st) < 0)
                st = CF_LINK_DOWN;
        if (st == CF_LINK_UP) {
                log_debug("%s: link up", s->t.name);
                can_transport_set_link(&s->t, CF_LINK_UP);
        } else {
                if (st == CF_LINK_BUS_OFF && lib_do_restart(s) < 0)
                        log_debug_errno(-errno, "%s: bus-off restart: %m", s->t.name);
                arm_poll(s, LINK_POLL_US);
        }
        return 0;
}

static int socketcan_send(CanTransport *t, const struct cf_can_frame *f)
{
        SocketCan *s = (SocketCan *) t;
        struct can_frame cf = {.can_id = f->id & CAN_SFF_MASK, .len = f->dlc};
        memcpy(cf.data, f->data, f->dlc > 8 ? 8 : f->dlc);

        if (s->tx_head == s->tx_len) {
                ssize_t n = write(s->fd, &cf, sizeof cf);
                if (n == sizeof cf)
                        return 0;
                if (n < 0 && errno == ENETDOWN) {
                        went_down(s, CF_LINK_DOWN);
                        return -ENETDOWN;
                }
                if (n < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
                        return -errno;
        }
        if (s->tx_len == s->tx_cap) {
                if (s->tx_head > 0) {
                        memmove(s->txq, s->txq + s->tx_head, (s->tx_len - s->tx_head) * sizeof *s->txq);
                        s->tx_len -= s->tx_head;
                        s->tx_head = 0;
                }
                if (s->tx_len == s->tx_cap) {
                        size_t cap = s->tx_cap ? s->tx_cap * 2 : 64;
                        if (cap > TXQ_MAX)
                                return -ENOBUFS;
                        struct can_frame *q = realloc(s->txq, cap * sizeof *q);
                        if (!q)
                                return -ENOMEM;
                        s->txq = q;
                        s->tx_cap = cap;
                }
        }
        s->txq[s->tx_len++] = cf;
        if (s->tx_len - s->tx_head == 1)
                return flush_tx(s) == -ENETDOWN ? -ENETDOWN : 0;
        return 0;
}

static uint32_t socketcan_bitrate(CanTransport *t)
{
        SocketCan *s = (SocketCan *) t;
        struct can_bittiming bt;
        if (lib_get_bittiming(s, &bt) == 0 && bt.bitrate)
                return bt.bitrate;
        return s->bitrate;
}

static void socketcan_free(CanTransport *t)
{
        SocketCan *s = (SocketCan *) t;
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->poll);
        safe_close(s->fd);
        sd_event_unref(s->t.event);
        free(s->filters);
        free(s->txq);
        free(s);
}

static size_t socketcan_backlog(CanTransport *t)
{
        SocketCan *s = (SocketCan *) t;
        return s->tx_len - s->tx_head;
}

static const struct can_transport_ops socketcan_ops = {
    .backlog = socketcan_backlog,
    .send = socketcan_send,
    .free = socketcan_free,
    .bitrate = socketcan_bitrate,
};

/* Bind the socket; the interface may not exist yet or be down: that is a link state, not a failure. */
static int socketcan_open(SocketCan *s)
{
        int fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
        if (fd < 0)
                return -errno;
        _cleanup_(closep) int sfd = fd;

        unsigned idx = if_nametoindex(s->ifname);
        if (idx == 0)
                return -errno;
        if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, s->filters,
                       (socklen_t) (s->n_filters * sizeof *s->filters)) < 0)
                return -errno;
        can_err_mask_t errmask = CAN_ERR_BUSOFF;
        if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &errmask, sizeof errmask) < 0)
                return -errno;
        struct sockaddr_can addr = {.can_family = AF_CAN, .can_ifindex = (int) idx};
        if (bind(fd, (struct sockaddr *) &addr, sizeof addr) < 0)
                return -errno;
        int r = can_transport_add_io(&s->t, &s->io, fd, on_io, s);
        if (r < 0)
                return r;
        s->fd = TAKE_FD(sfd);
        return 0;
}

int socketcan_transport_new(sd_event *e, const struct cf_bus_conf *b, const uint32_t *dto_ids, size_t n_ids,
                            CanTransport **ret)
{
        SocketCan *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->t.ops = &socketcan_ops;
        s->t.event = sd_event_ref(e);
        s->t.state = CF_LINK_DOWN;
        s->fd = -1;
        s->bitrate = b->bitrate;
        snprintf(s->ifname, sizeof s->ifname, "%s", b->device);
        s->t.name = strdup(b->transport);
        snprintf(s->t.bus, sizeof s->t.bus, "%s", b->name);
        s->filters = calloc(n_ids ? n_ids : 1, sizeof *s->filters);
        int r = s->t.name && s->filters ? 0 : -ENOMEM;
        for (size_t i = 0; i < n_ids; i++)
                s->filters[i] = (struct can_filter){.can_id = dto_ids[i],
                                                    .can_mask = CAN_SFF_MASK | CAN_EFF_FLAG | CAN_RTR_FLAG};
        s->n_filters = n_ids;
        if (r >= 0)
                r = sd_event_add_time(e, &s->poll, CLOCK_MONOTONIC, 0, 1000, on_poll, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->poll, SD_EVENT_OFF);
        if (r >= 0)
                r = socketcan_open(s);
        if (r < 0) {
                /* No AF_CAN in this kernel or no such interface: the daemon runs, the bus stays "error". */
                log_internal(LOG_WARNING, r, b->name, NULL, 0, "%s: cannot open CAN interface %s: %m", b->transport,
                             b->device);
                if (r == -ENOMEM) {
                        free(s->t.name);
                        socketcan_free(&s->t);
                        return r;
                }
                s->t.state = CF_LINK_ERROR;
                snprintf(s->t.error, sizeof s->t.error, "cannot open CAN interface %s: %s", b->device,
                         strerror(-r));
                arm_poll(s, 2 * LINK_POLL_US);
                *ret = &s->t;
                return 0;
        }
        enum cf_link_state st;
        if (link_state(s, &st) < 0)
                st = CF_LINK_DOWN;
        s->t.state = st;
        if (st != CF_LINK_UP)
                arm_poll(s, LINK_POLL_US);
        *ret = &s->t;
        return 0;
}
