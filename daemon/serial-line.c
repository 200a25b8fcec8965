/* A UART for a serial node: raw termios on sd-event, with the modem and GPIO lines of loader entry. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <linux/gpio.h>

#include "cleanup.h"
#include "out-queue.h"
#include "serial-line.h"

/* A loader exchange is at most a few KB in flight (an LPC block of 4 KB as UU lines). */

struct SerialLine {
        sd_event *event;
        int fd;
        uint32_t baud;
        sd_event_source *io;
        serial_rx_fn rx;
        void *userdata;
        OutQueue out;
        int write_error; /* the last write's error, returned by the next serial_line_write() */
        uint64_t tx, rx_count;
        int gpio_fd; /* the requested GPIO lines (uAPI v2 line fd), -1 when none */
        char pins_error[256]; /* what the last failed serial_line_set_pins() could not do */
};

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
        case 115200:
                return B115200;
        case 230400:
                return B230400;
        case 460800:
                return B460800;
        case 921600:
                return B921600;
        default:
                return B0;
        }
}

static int update_events(SerialLine *l)
{
        return sd_event_source_set_io_events(l->io, EPOLLIN | (out_queue_pending(&l->out) ? EPOLLOUT : 0));
}

static void flush_out(SerialLine *l)
{
        int r = out_queue_write(&l->out, l->fd, &l->tx);
        if (r < 0) {
                l->write_error = r;
                out_queue_clear(&l->out); /* the adapter is gone: nothing will leave */
        }
        (void) update_events(l);
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
        SerialLine *l = userdata;
        if (revents & EPOLLOUT)
                flush_out(l);
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                uint8_t buf[1024];
                ssize_t n = read(fd, buf, sizeof buf);
                if (n > 0) {
                        l->rx_count += (uint64_t) n;
                        if (l->rx)
                                l->rx(l, buf, (size_t) n, l->userdata);
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                        /* The other end is gone (a pty whose simulator exited, an unplugged adapter):
                         * stop polling; the session's time-outs report it. */
                        l->write_error = n == 0 ? -EIO : -errno;
                        sd_event_source_set_enabled(es, SD_EVENT_OFF);
                }
        }
        return 0;
}

int serial_line_open(sd_event *e, const char *path, uint32_t baud, SerialLine **ret)
{
        speed_t sp = speed_of(baud);
        if (sp == B0)
                return -EINVAL;
        _cleanup_(serial_line_freep) SerialLine *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->fd = -1;
        l->gpio_fd = -1;
        l->event = sd_event_ref(e);
        l->baud = baud;
        l->fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (l->fd < 0)
                return -errno;
        struct termios t;
        if (tcgetattr(l->fd, &t) < 0)
                return -errno;
        cfmakeraw(&t);
        t.c_cflag |= CLOCAL | CREAD;
        t.c_cflag &= ~(CRTSCTS | HUPCL | CSTOPB | PARENB);
        t.c_iflag &= ~(IXON | IXOFF | IXANY);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        if (cfsetispeed(&t, sp) < 0 || cfsetospeed(&t, sp) < 0 || tcsetattr(l->fd, TCSANOW, &t) < 0)
                return -errno;
        (void) tcflush(l->fd, TCIOFLUSH);
        int r = sd_event_add_io(e, &l->io, l->fd, EPOLLIN, on_io, l);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

SerialLine *serial_line_free(SerialLine *l)
{
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->io);
        if (l->fd >= 0)
                close(l->fd);
        if (l->gpio_fd >= 0)
                close(l->gpio_fd);
        sd_event_unref(l->event);
        out_queue_free(&l->out);
        free(l);
        return NULL;
}

void serial_line_set_rx(SerialLine *l, serial_rx_fn fn, void *userdata)
{
        l->rx = fn;
        l->userdata = userdata;
}

int serial_line_write(SerialLine *l, const void *data, size_t n)
{
        if (l->write_error) {
                int r = l->write_error;
                l->write_error = 0;
                return r;
        }
        int r = out_queue_append(&l->out, data, n);
        if (r < 0)
                return r;
        flush_out(l);
        return 0;
}

void serial_line_discard(SerialLine *l)
{
        (void) tcflush(l->fd, TCIOFLUSH);
        out_queue_clear(&l->out);
        (void) update_events(l);
}

size_t serial_line_backlog(const SerialLine *l)
{
        return out_queue_pending(&l->out);
}

uint64_t serial_line_tx_bytes(const SerialLine *l)
{
        return l->tx;
}

uint64_t serial_line_rx_bytes(const SerialLine *l)
{
        return l->rx_count;
}

uint32_t serial_line_baud(const SerialLine *l)
{
        return l->baud;
}

/* Request the two lines as outputs once, then set their values: the lines stay ours while the line is
 * open, so that nothing else drives the chip's reset mid-update. */
static int gpio_set(SerialLine *l, const struct cf_bus_conf *bc, bool reset, bool boot)
{
        if (l->gpio_fd < 0) {
                int chip = open(bc->gpiochip, O_RDWR | O_CLOEXEC);
                if (chip < 0) {
                        int r = -errno;
                        snprintf(l->pins_error, sizeof l->pins_error, "isp_entry.gpiochip: cannot open %s: %s",
                                 bc->gpiochip, strerror(-r));
                        return r;
                }
                struct gpio_v2_line_request req = {0};
                req.offsets[0] = bc->gpio_reset;
                req.offsets[1] = bc->gpio_boot;
                req.num_lines = 2;
                req.config.flags = GPIO_V2_LINE_FLAG_OUTPUT | GPIO_V2_LINE_FLAG_ACTIVE_LOW;
                req.config.num_attrs = 1;
                req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
                req.config.attrs[0].attr.values = (reset ? 1u : 0u) | (boot ? 2u : 0u);
                req.config.attrs[0].mask = 3;
                strncpy(req.consumer, "canfleetd", sizeof req.consumer - 1);
                int r = ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req);
                int err = errno;
                close(chip);
                if (r < 0) {
                        snprintf(l->pins_error, sizeof l->pins_error,
                                 "isp_entry.reset/boot: lines %u and %u of %s cannot be requested: %s",
                                 bc->gpio_reset, bc->gpio_boot, bc->gpiochip, strerror(err));
                        return -err;
                }
                l->gpio_fd = req.fd;
                return 0;
        }
        struct gpio_v2_line_values v = {.bits = (reset ? 1u : 0u) | (boot ? 2u : 0u), .mask = 3};
        if (ioctl(l->gpio_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0) {
                int r = -errno;
                snprintf(l->pins_error, sizeof l->pins_error, "isp_entry: cannot set lines %u and %u of %s: %s",
                         bc->gpio_reset, bc->gpio_boot, bc->gpiochip, strerror(-r));
                return r;
        }
        return 0;
}

const char *serial_line_pins_error(const SerialLine *l)
{
        return l->pins_error;
}

int serial_line_set_pins(SerialLine *l, const struct cf_bus_conf *bc, bool reset, bool boot)
{
        switch (bc->isp_entry) {
        case CF_ISP_ENTRY_MANUAL:
                return 0;
        case CF_ISP_ENTRY_DTR_RTS: {
                int bits;
                if (ioctl(l->fd, TIOCMGET, &bits) >= 0) {
                        bits = reset ? bits | TIOCM_DTR : bits & ~TIOCM_DTR;
                        bits = boot ? bits | TIOCM_RTS : bits & ~TIOCM_RTS;
                        if (ioctl(l->fd, TIOCMSET, &bits) >= 0)
                                return 0;
                }
                int r = -errno;
                /* a pty or an adapter without modem lines: ENOTTY / EINVAL */
                snprintf(l->pins_error, sizeof l->pins_error,
                         "isp_entry \"dtr-rts\": cannot set DTR and RTS (TIOCMSET): %s", strerror(-r));
                return r;
        }
        case CF_ISP_ENTRY_GPIO:
                return gpio_set(l, bc, reset, boot);
        }
        return -EINVAL;
}
