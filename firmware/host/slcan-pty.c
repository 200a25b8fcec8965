/* The SLCAN adapter: pty creation and symlink, the Lawicel command set, buffered output to the host. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "canfleet/slcan.h"
#include "slcan-pty.h"

#define OUT_BUF_SIZE    65536u
#define HANGUP_RETRY_US 25000u
#define FLAG_RX_FULL    0x01u
#define FLAG_TX_FULL    0x02u
#define FLAG_OVERRUN    0x08u
#define DELAY_SLOTS     SLCAN_PTY_DELAY_SLOTS

struct slcan_pty {
        char *link_path;
        char slave_name[128];
        int master;
        struct sim_bus *bus;

        bool open, listen_only, timestamps;
        bool hung_up;
        uint64_t retry_at_us;
        uint8_t flags;

        char line[CF_SLCAN_LINE_MAX];
        size_t line_len;
        bool line_too_long;

        char out[OUT_BUF_SIZE];
        size_t out_len;

        /* --stall: planned stalls, the host's frames counted, the stall in progress */
        struct {
                uint64_t after_frame;
                uint32_t ms;
        } stalls[SLCAN_PTY_MAX_STALLS];
        unsigned n_stalls;
        uint64_t host_frames;
        bool stalled;
        uint64_t stall_until_us;
        uint64_t stall_lost_in, stall_lost_out; /* bytes from the host, frames to it */
        char stall_last_in;                      /* last byte thrown away */

        /* --adapter-latency-us: frames on their way through the "USB" in each direction, in order
         * (one constant delay keeps each line sorted by due time) */
        uint32_t latency_us;
        struct {
                uint64_t due;
                struct cf_can_frame f;
        } to_bus[DELAY_SLOTS];
        unsigned to_bus_head, to_bus_n;
        struct {
                uint64_t due;
                uint8_t len;
                char text[CF_SLCAN_LINE_MAX];
        } to_host[DELAY_SLOTS];
        unsigned to_host_head, to_host_n;
};

static void set_raw(int fd)
{
        struct termios t;
        if (tcgetattr(fd, &t) < 0)
                return;
        cfmakeraw(&t);
        tcsetattr(fd, TCSANOW, &t);
}

static void flush_out(struct slcan_pty *p)
{
        while (p->out_len > 0 && !p->hung_up) {
                ssize_t n = write(p->master, p->out, p->out_len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return; /* EAGAIN: POLLOUT will tell; EIO: the hang-up is handled by poll */
                }
                memmove(p->out, p->out + n, p->out_len - (size_t) n);
                p->out_len -= (size_t) n;
        }
}

/* Ends a stall whose time is up; true while the adapter is frozen. */
static bool stalled(struct slcan_pty *p, uint64_t now_us)
{
        if (!p->stalled)
                return false;
        if (now_us < p->stall_until_us)
                return true;
        p->stalled = false;
        if (p->stall_lost_out > 0)
                p->flags |= FLAG_RX_FULL | FLAG_OVERRUN;
        /* The stall ended inside a line: its start is gone, the rest must not pass for a command. */
        if (p->stall_lost_in > 0 && p->stall_last_in != '\r')
                p->line_too_long = true;
        fprintf(stderr, "%s: adapter %s resumes (lost %" PRIu64 " bytes from the host, %" PRIu64
                " frames to it)\n", p->bus->name, p->link_path, p->stall_lost_in, p->stall_lost_out);
        return false;
}

static void stall_check(struct slcan_pty *p)
{
        uint64_t ms = 0;
        for (unsigned i = 0; i < p->n_stalls; i++)
                if (p->stalls[i].after_frame == p->host_frames && p->stalls[i].ms > ms)
                        ms = p->stalls[i].ms;
        if (ms == 0)
                return;
        p->stalled = true;
        p->stall_until_us = sim_now_us() + ms * 1000u;
        p->stall_lost_in = p->stall_lost_out = 0;
        p->stall_last_in = '\r';
        fprintf(stderr, "%s: adapter %s stalls for %" PRIu64 " ms after host frame %" PRIu64 "\n",
                p->bus->name, p->link_path, ms, p->host_frames);
}

static bool queue_out(struct slcan_pty *p, const char *s, size_t len)
{
        if (p->hung_up)
                return false;
        if (len > OUT_BUF_SIZE - p->out_len) {
                p->flags |= FLAG_RX_FULL | FLAG_OVERRUN;
                return false;
        }
        memcpy(p->out + p->out_len, s, len);
        p->out_len += len;
        flush_out(p);
        return true;
}

static void reply(struct slcan_pty *p, const char *s)
{
        queue_out(p, s, strlen(s));
}

/* Towards the host through the latency line (or at once without one). */
static void delayed_out(struct slcan_pty *p, const char *s, size_t len)
{
        if (p->latency_us == 0) {
                queue_out(p, s, len);
                return;
        }
        if (p->to_host_n == DELAY_SLOTS || len > CF_SLCAN_LINE_MAX) {
                p->flags |= FLAG_RX_FULL | FLAG_OVERRUN;
                return;
        }
        unsigned i = (p->to_host_head + p->to_host_n++) % DELAY_SLOTS;
        p->to_host[i].due = sim_now_us() + p->latency_us;
        p->to_host[i].len = (uint8_t) len;
        memcpy(p->to_host[i].text, s, len);
}

static void frame_to_host(void *ctx, const struct cf_can_frame *f)
{
        struct slcan_pty *p = ctx;
        if (!p->open || p->hung_up)
                return;
        if (stalled(p, sim_now_us())) {
                p->stall_lost_out++;
                return;
        }
        char buf[CF_SLCAN_LINE_MAX];
        int32_t ts = p->timestamps ? (int32_t) ((sim_now_us() / 1000u) % 60000u) : CF_SLCAN_NO_TIMESTAMP;
        size_t n = cf_slcan_format(f, ts, buf);
        delayed_out(p, buf, n);
}

static bool is_hex(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (cf_hex_digit(s[i]) < 0)
                        return false;
        return true;
}

/* A frame from the host reaches the adapter: onto the bus, acknowledged. */
static void to_bus(struct slcan_pty *p, const struct cf_can_frame *f)
{
        if (sim_bus_host_send(p->bus, f) < 0) {
                p->flags |= FLAG_TX_FULL;
                delayed_out(p, "\a", 1);
                return;
        }
        delayed_out(p, f->ext ? "Z\r" : "z\r", 2);
        p->host_frames++;
        stall_check(p);
}

/* Move what the latency lines hold once it is due. */
static void latency_run(struct slcan_pty *p, uint64_t now_us)
{
        while (p->to_bus_n > 0 && p->to_bus[p->to_bus_head].due <= now_us) {
                struct cf_can_frame f = p->to_bus[p->to_bus_head].f;
                p->to_bus_head = (p->to_bus_head + 1) % DELAY_SLOTS;
                p->to_bus_n--;
                if (p->open && !p->hung_up)
                        to_bus(p, &f);
        }
        while (p->to_host_n > 0 && p->to_host[p->to_host_head].due <= now_us) {
                unsigned i = p->to_host_head;
                p->to_host_head = (p->to_host_head + 1) % DELAY_SLOTS;
                p->to_host_n--;
                if (p->open) /* a channel closed meanwhile: what was on the way is gone */
                        queue_out(p, p->to_host[i].text, p->to_host[i].len);
        }
}

static void transmit(struct slcan_pty *p, const char *line, size_t len)
{
        struct cf_can_frame f;
        int32_t ts;
        /* A timestamp is the adapter's to add: on a transmit line it is a malformed line. */
        if (!p->open || p->listen_only || cf_slcan_parse(line, len, &f, &ts) < 0 ||
            ts != CF_SLCAN_NO_TIMESTAMP) {
                reply(p, "\a");
                return;
        }
        if (p->latency_us > 0) {
                if (p->to_bus_n == DELAY_SLOTS) {
                        p->flags |= FLAG_TX_FULL;
                        reply(p, "\a");
                        return;
                }
                unsigned i = (p->to_bus_head + p->to_bus_n++) % DELAY_SLOTS;
                p->to_bus[i].due = sim_now_us() + p->latency_us;
                p->to_bus[i].f = f;
                return;
        }
        to_bus(p, &f);
}

static void command(struct slcan_pty *p, const char *line, size_t len)
{
        char buf[16];

        if (len == 0)
                return; /* hosts send bare '\r's to flush a half-typed command: nothing to answer */

        switch (line[0]) {
        case 't':
        case 'T':
        case 'r':
        case 'R':
                transmit(p, line, len);
                return;
        case 'S':
                if (len == 2 && !p->open && cf_slcan_bitrate(line[1]) != 0) {
                        sim_bus_set_bitrate(p->bus, cf_slcan_bitrate(line[1]));
                        reply(p, "\r");
                        return;
                }
                break;
        case 'O':
        case 'L':
                if (len == 1 && !p->open) {
                        p->open = true;
                        p->listen_only = line[0] == 'L';
                        reply(p, "\r");
                        return;
                }
                break;
        case 'C':
                if (len == 1) {
                        p->open = false;
                        reply(p, "\r");
                        return;
                }
                break;
        case 'V':
        case 'v':
                if (len == 1) {
                        snprintf(buf, sizeof(buf), "%c1013\r", line[0]);
                        reply(p, buf);
                        return;
                }
                break;
        case 'N':
                if (len == 1) {
                        reply(p, "NCF01\r");
                        return;
                }
                break;
        case 'F':
                if (len == 1 && p->open) {
                        snprintf(buf, sizeof(buf), "F%02X\r", p->flags);
                        p->flags = 0;
                        reply(p, buf);
                        return;
                }
                break;
        case 'Z':
                if (len == 2 && (line[1] == '0' || line[1] == '1')) {
                        p->timestamps = line[1] == '1';
                        reply(p, "\r");
                        return;
                }
                break;
        case 'M':
        case 'm':
                if (len == 9 && is_hex(line + 1, 8)) {
                        reply(p, "\r");
                        return;
                }
                break;
        default:
                break;
        }
        reply(p, "\a");
}

static void input(struct slcan_pty *p, const char *data, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                char c = data[i];
                if (stalled(p, sim_now_us())) {
                        p->stall_lost_in++;
                        p->stall_last_in = c;
                        continue;
                }
                if (c == '\n')
                        continue;
                if (c == '\r') {
                        if (p->line_too_long)
                                reply(p, "\a");
                        else
                                command(p, p->line, p->line_len);
                        p->line_len = 0;
                        p->line_too_long = false;
                        continue;
                }
                if (p->line_len >= sizeof(p->line))
                        p->line_too_long = true;
                else
                        p->line[p->line_len++] = c;
        }
}

static bool host_side_closed(struct slcan_pty *p)
{
        struct pollfd pfd = {.fd = p->master, .events = POLLIN};
        return poll(&pfd, 1, 0) >= 0 && (pfd.revents & POLLHUP);
}

/* The host closed its side: like pulling the USB adapter out, the channel closes and what was queued
 * for the host is gone (the next host must not read a previous session's frames). The input was read
 * up to the hang-up; it is not flushed, or a host that opens the side again at once would lose its
 * first commands. */
static void hang_up(struct slcan_pty *p)
{
        fprintf(stderr, "%s: host closed %s\n", p->bus->name, p->link_path);
        p->hung_up = true;
        p->open = false;
        p->listen_only = false;
        p->out_len = 0;
        p->line_len = 0;
        p->line_too_long = false;
        tcflush(p->master, TCOFLUSH);
        p->retry_at_us = sim_now_us() + HANGUP_RETRY_US;
}

int sim_make_link(const char *target, const char *path)
{
        struct stat st;
        if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode))
                return -EEXIST;

        char *tmp = NULL;
        if (asprintf(&tmp, "%s.%d.tmp", path, (int) getpid()) < 0)
                return -ENOMEM;
        unlink(tmp);
        int r = 0;
        if (symlink(target, tmp) < 0 || rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
        }
        free(tmp);
        return r;
}

int slcan_pty_new(struct slcan_pty **ret, const char *link_path, struct sim_bus *bus)
{
        struct slcan_pty *p = calloc(1, sizeof(*p));
        int r;
        if (!p)
                return -ENOMEM;
        p->master = -1;
        p->bus = bus;
        p->link_path = strdup(link_path);
        if (!p->link_path) {
                r = -ENOMEM;
                goto fail;
        }

        p->master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (p->master < 0 || grantpt(p->master) < 0 || unlockpt(p->master) < 0 ||
            ptsname_r(p->master, p->slave_name, sizeof(p->slave_name)) != 0) {
                r = -errno;
                goto fail;
        }
        set_raw(p->master);

        r = sim_make_link(p->slave_name, link_path);
        if (r < 0)
                goto fail;

        bus->port = (struct sim_port){.send = frame_to_host, .ctx = p};
        *ret = p;
        return 0;
fail:
        if (p->master >= 0)
                close(p->master);
        free(p->link_path);
        free(p);
        return r;
}

struct slcan_pty *slcan_pty_free(struct slcan_pty *p)
{
        if (!p)
                return NULL;
        char target[sizeof(p->slave_name)];
        ssize_t n = readlink(p->link_path, target, sizeof(target) - 1);
        if (n > 0) {
                target[n] = '\0';
                if (strcmp(target, p->slave_name) == 0)
                        unlink(p->link_path);
        }
        if (p->bus->port.ctx == p)
                p->bus->port = (struct sim_port){0};
        close(p->master);
        free(p->link_path);
        free(p);
        return NULL;
}

int slcan_pty_fd(const struct slcan_pty *p)
{
        return p->hung_up ? -1 : p->master;
}

short slcan_pty_events(const struct slcan_pty *p)
{
        return (short) (POLLIN | (p->out_len > 0 ? POLLOUT : 0));
}

void slcan_pty_io(struct slcan_pty *p, short revents)
{
        if (p->hung_up)
                return;
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
                char buf[4096];
                for (;;) {
                        ssize_t n = read(p->master, buf, sizeof(buf));
                        if (n > 0) {
                                input(p, buf, (size_t) n);
                                continue;
                        }
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN)
                                break;
                        hang_up(p); /* EIO: no slave side open any more */
                        return;
                }
        }
        if (revents & POLLHUP) {
                /* POLLHUP says the host closed its side when poll() looked. A host that restarts
                 * may have opened it again since and sent its first commands, read just above: its
                 * channel is open and stays so. Only a side still closed is a hang-up. */
                if (!host_side_closed(p)) {
                        fprintf(stderr, "%s: host reopened %s\n", p->bus->name, p->link_path);
                } else {
                        hang_up(p);
                        return;
                }
        }
        if (revents & POLLOUT)
                flush_out(p);
}

int slcan_pty_add_stall(struct slcan_pty *p, uint64_t n, uint32_t ms)
{
        if (p->n_stalls >= SLCAN_PTY_MAX_STALLS)
                return -ENOSPC;
        p->stalls[p->n_stalls].after_frame = n;
        p->stalls[p->n_stalls].ms = ms;
        p->n_stalls++;
        return 0;
}

uint64_t slcan_pty_deadline(const struct slcan_pty *p)
{
        uint64_t t = p->hung_up ? p->retry_at_us : UINT64_MAX;
        /* the end of a stall is logged (and the flags set) when it happens, not at the next frame */
        if (p->stalled && p->stall_until_us < t)
                t = p->stall_until_us;
        if (p->to_bus_n > 0 && p->to_bus[p->to_bus_head].due < t)
                t = p->to_bus[p->to_bus_head].due;
        if (p->to_host_n > 0 && p->to_host[p->to_host_head].due < t)
                t = p->to_host[p->to_host_head].due;
        return t;
}

void slcan_pty_set_latency(struct slcan_pty *p, uint32_t us)
{
        p->latency_us = us;
}

void slcan_pty_timer(struct slcan_pty *p, uint64_t now_us)
{
        (void) stalled(p, now_us);
        latency_run(p, now_us);
        if (!p->hung_up || now_us < p->retry_at_us)
                return;
        if (host_side_closed(p)) {
                p->retry_at_us = now_us + HANGUP_RETRY_US;
                return;
        }
        p->hung_up = false;
        set_raw(p->master);
        fprintf(stderr, "%s: host opened %s\n", p->bus->name, p->link_path);
}

const char *slcan_pty_slave_name(const struct slcan_pty *p)
{
        return p->slave_name;
}
