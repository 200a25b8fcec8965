/* SLCAN transport: a Lawicel adapter on a serial line (or canfleet-nodesim's pty), non-blocking with an
 * output queue. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

#include "canfleet/slcan.h"
#include "cleanup.h"
#include "conf.h"
#include "log.h"
#include "out-queue.h"
#include "slcan.h"

#define RECONNECT_MIN_US 100000ULL
#define RECONNECT_MAX_US 1000000ULL

typedef struct Slcan {
        CanTransport t;
        char *device;
        uint32_t baud;
        uint32_t bitrate;
        int fd;
        sd_event_source *io;
        sd_event_source *reconnect;
        uint64_t reconnect_us;
        /* output queue: bytes [head, len) not yet written */
        OutQueue out;
        struct cf_slcan_reader rx;
        bool open_failed_logged;
} Slcan;

int cf_slcan_rx_line(const char *line, size_t len, struct cf_can_frame *f)
{
        if (len == 0)
                return 0;
        char kind = line[0];
        if (len == 1 && (kind == 'z' || kind == 'Z'))
                return 0;
        if (kind == 'V' || kind == 'v' || kind == 'N' || kind == 'F')
                return 0; /* answers to version / serial / status queries */

        struct cf_can_frame fr;
        int r = cf_slcan_parse(line, len, &fr, NULL);
        if (r < 0)
                return r;
        if (fr.ext || fr.rtr)
                return 0; /* not CCP: another protocol shares the bus */
        *f = fr;
        return 1;
}

enum cf_slcan_rx cf_slcan_reader_feed(struct cf_slcan_reader *r, char c, size_t *len)
{
        if (c == '\r' || c == '\a') {
                /* Either ends the line, so either ends an overlong one: without that, a BEL after
                 * garbage would leave the reader dropping the next good line as well. */
                bool overflow = r->overflow;
                *len = r->len;
                r->len = 0;
                r->overflow = false;
                if (overflow)
                        return CF_SLCAN_RX_OVERLONG;
                return c == '\r' ? CF_SLCAN_RX_LINE : CF_SLCAN_RX_BEL;
        }
        if (c == '\n')
                return CF_SLCAN_RX_MORE;
        if (r->len < sizeof r->line)
                r->line[r->len++] = c;
        else
                r->overflow = true;
        return CF_SLCAN_RX_MORE;
}

static speed_t speed_of(uint32_t baud)
{
        switch (baud) {
        case 9600:
                return B9600;
        case 19200:
                return B19200;
        case 38400:
                return B38400;
        case 57600:
                return B57600;
        case 230400:
                return B230400;
        case 460800:
                return B460800;
        case 500000:
                return B500000;
        case 576000:
                return B576000;
        case 921600:
                return B921600;
        case 1000000:
                return B1000000;
        case 1152000:
                return B1152000;
        case 1500000:
                return B1500000;
        case 2000000:
                return B2000000;
        case 3000000:
                return B3000000;
        case 4000000:
                return B4000000;
        default:
                return B115200;
        }
}

static void slcan_close(Slcan *s);
static int slcan_try_open(Slcan *s);

static void schedule_reconnect(Slcan *s)
{
        uint64_t now;
        sd_event_now(s->t.event, CLOCK_MONOTONIC, &now);
        s->reconnect_us = s->reconnect_us ? s->reconnect_us * 2 : RECONNECT_MIN_US;
        if (s->reconnect_us > RECONNECT_MAX_US)
                s->reconnect_us = RECONNECT_MAX_US;
        sd_event_source_set_time(s->reconnect, now + s->reconnect_us);
        sd_event_source_set_enabled(s->reconnect, SD_EVENT_ONESHOT);
}

/* The adapter went away (pty closed, USB unplugged): pause, and look for it again. */
static void slcan_lost(Slcan *s, int error)
{
        log_debug_errno(error, "%s: adapter lost: %m", s->t.name);
        slcan_close(s);
        snprintf(s->t.error, sizeof s->t.error, "adapter %s lost: %s", s->device, strerror(-error));
        can_transport_set_link(&s->t, CF_LINK_DOWN);
        schedule_reconnect(s);
}

static int update_events(Slcan *s)
{
        uint32_t ev = EPOLLIN | (out_queue_pending(&s->out) ? EPOLLOUT : 0);
        return sd_event_source_set_io_events(s->io, ev);
}

static int flush_out(Slcan *s)
{
        int r = out_queue_write(&s->out, s->fd, NULL);
        if (r < 0)
                return r;
        return update_events(s);
}

static int queue_out(Slcan *s, const char *data, size_t n)
{
        return out_queue_append(&s->out, data, n);
}

static void handle_line(Slcan *s, const char *line, size_t len)
{
        struct cf_can_frame f;
        int r = cf_slcan_rx_line(line, len, &f);
        if (r < 0)
                log_debug("%s: malformed line \"%.*s\" ignored", s->t.name, (int) len, line);
        else if (r > 0)
                can_transport_deliver(&s->t, &f);
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
        Slcan *s = userdata;
        int r;

        if (revents & EPOLLIN) {
                char buf[4096];
                for (;;) {
                        ssize_t n = read(fd, buf, sizeof buf);
                        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                break;
                        if (n <= 0) {
                                slcan_lost(s, n < 0 ? -errno : -EPIPE);
                                return 0;
                        }
                        for (ssize_t i = 0; i < n; i++) {
                                size_t len;
                                switch (cf_slcan_reader_feed(&s->rx, buf[i], &len)) {
                                case CF_SLCAN_RX_LINE:
                                        handle_line(s, s->rx.line, len);
                                        break;
                                case CF_SLCAN_RX_BEL:
                                        log_debug("%s: the adapter refused a command (BEL)", s->t.name);
                                        break;
                                case CF_SLCAN_RX_OVERLONG:
                                        log_debug("%s: overlong line from the adapter ignored", s->t.name);
                                        break;
                                case CF_SLCAN_RX_MORE:
                                        break;
                                }
                        }
                        /* A read loop on a busy line could starve the other sources: yield. */
                        if ((size_t) n < sizeof buf)
                                break;
                }
        } else if (revents & (EPOLLHUP | EPOLLERR)) {
                slcan_lost(s, -EPIPE);
                return 0;
        }
        if (revents & EPOLLOUT) {
                r = flush_out(s);
                if (r < 0)
                        slcan_lost(s, r);
        }
        return 0;
}

static int on_reconnect(sd_event_source *es, uint64_t usec, void *userdata)
{
        Slcan *s = userdata;
        if (slcan_try_open(s) < 0)
                schedule_reconnect(s);
        return 0;
}

static void slcan_close(Slcan *s)
{
        s->io = sd_event_source_disable_unref(s->io);
        s->fd = safe_close(s->fd);
        out_queue_clear(&s->out);
        s->rx = (struct cf_slcan_reader){0};
}

static int slcan_try_open(Slcan *s)
{
        int fd = open(s->device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                if (!s->open_failed_logged)
                        log_internal(LOG_WARNING, r, s->t.bus, NULL, 0, "%s: cannot open %s (will retry): %m",
                                     s->t.name, s->device);
                s->open_failed_logged = true;
                snprintf(s->t.error, sizeof s->t.error, "cannot open %s: %s", s->device, strerror(-r));
                if (s->t.state == CF_LINK_UP)
                        can_transport_set_link(&s->t, CF_LINK_DOWN);
                return r;
        }
        struct termios tio;
        if (tcgetattr(fd, &tio) == 0) {
                cfmakeraw(&tio);
                tio.c_cflag |= CLOCAL | CREAD;
                tio.c_cc[VMIN] = 1;
                tio.c_cc[VTIME] = 0;
                cfsetspeed(&tio, speed_of(s->baud));
                if (tcsetattr(fd, TCSANOW, &tio) < 0)
                        log_debug_errno(-errno, "%s: tcsetattr: %m", s->t.name);
                tcflush(fd, TCIOFLUSH);
        }
        int r = can_transport_add_io(&s->t, &s->io, fd, on_io, s);
        if (r < 0) {
                close(fd);
                return r;
        }
        s->fd = fd;
        s->open_failed_logged = false;
        s->reconnect_us = 0;

        /* Close first: an adapter left open by a previous run refuses S/O otherwise. */
        char cmd[16] = "C\rS6\rO\r";
        cmd[3] = cf_slcan_bitrate_code(s->bitrate);
        r = queue_out(s, cmd, strlen(cmd));
        if (r >= 0)
                r = flush_out(s);
        if (r < 0) {
                slcan_close(s);
                return r;
        }
        log_debug("%s: opened %s", s->t.name, s->device);
        can_transport_set_link(&s->t, CF_LINK_UP);
        return 0;
}

static int slcan_send(CanTransport *t, const struct cf_can_frame *f)
{
        Slcan *s = (Slcan *) t;
        char line[CF_SLCAN_LINE_MAX];
        size_t n = cf_slcan_format(f, CF_SLCAN_NO_TIMESTAMP, line);
        bool idle = out_queue_pending(&s->out) == 0;
        int r = queue_out(s, line, n);
        if (r < 0)
                return r;
        if (idle) {
                r = flush_out(s);
                if (r < 0) {
                        slcan_lost(s, r);
                        return -ENETDOWN;
                }
        }
        return 0;
}

static uint32_t slcan_bitrate(CanTransport *t)
{
        return ((Slcan *) t)->bitrate;
}

static void slcan_free(CanTransport *t)
{
        Slcan *s = (Slcan *) t;
        if (s->fd >= 0 && out_queue_pending(&s->out) == 0)
                (void) !write(s->fd, "C\r", 2); /* best effort: leave the adapter closed */
        slcan_close(s);
        sd_event_source_disable_unref(s->reconnect);
        sd_event_unref(s->t.event);
        free(s->device);
        out_queue_free(&s->out);
        free(s);
}

/* A standard data frame of 8 bytes is "tIIIL" + 16 hex digits + CR: 22 characters. */
static size_t slcan_backlog(CanTransport *t)
{
        Slcan *s = (Slcan *) t;
        return (out_queue_pending(&s->out) + 21u) / 22u;
}

static const struct can_transport_ops slcan_ops = {
    .backlog = slcan_backlog,
    .send = slcan_send,
    .free = slcan_free,
    .bitrate = slcan_bitrate,
};

int slcan_transport_new(sd_event *e, const struct cf_bus_conf *b, CanTransport **ret)
{
        if (!cf_slcan_bitrate_code(b->bitrate))
                return -EINVAL;
        Slcan *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->t.ops = &slcan_ops;
        s->t.event = sd_event_ref(e);
        s->t.state = CF_LINK_DOWN;
        s->fd = -1;
        s->baud = b->baud;
        s->bitrate = b->bitrate;
        s->device = strdup(b->device);
        s->t.name = strdup(b->transport);
        snprintf(s->t.bus, sizeof s->t.bus, "%s", b->name);
        int r = s->device && s->t.name ? 0 : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_time(e, &s->reconnect, CLOCK_MONOTONIC, 0, 0, on_reconnect, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->reconnect, SD_EVENT_OFF);
        if (r < 0) {
                free(s->t.name);
                slcan_free(&s->t);
                return r;
        }
        if (slcan_try_open(s) < 0) {
                s->t.state = CF_LINK_ERROR;
                schedule_reconnect(s);
        }
        *ret = &s->t;
        return 0;
}
