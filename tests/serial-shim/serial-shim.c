/* A test fake of the kernel's modem lines and GPIO character device, preloaded into test processes. */
/*
 * This machine's kernel (and the VM tier's Debian 6.1) has no serial port with modem lines to give a
 * pty and no gpio-sim / gpio-mockup, so canfleetd's loader entry (docs/design.md §8: "dtr-rts" and
 * {"gpiochip": …}) could not be exercised. This LD_PRELOAD library stands in for the serial driver and
 * the GPIO driver at the ioctl boundary, for the process it is preloaded into, and tells the simulated
 * chip (canfleet-nodesim --pins SOCKET) the levels of its RESET and boot pins. It is a test fake only:
 * meson builds it for the tests, nothing installs it.
 *
 * Modem lines: CANFLEET_SHIM_TTYS="TTY=SOCKET[,TTY=SOCKET...]". TIOCMGET/TIOCMSET/TIOCMBIS/TIOCMBIC on
 * an fd that is a pty slave whose path resolves to TTY are emulated (the lines start de-asserted; the
 * tty layer's raising of DTR/RTS at open is not modelled). The board behind it is lpc21isp's -control
 * wiring: an inverting RS-232 level shifter, so an asserted DTR pulls RESET low and an asserted RTS the
 * boot pin (P2.10 / P2.2). Every other tty (and any other ioctl) goes to the kernel.
 *
 * GPIO: a fake chip is a regular file (the path canfleetd's "gpiochip" names) that reads
 *     canfleet-shim-gpiochip
 *     lines 8
 *     reset 3
 *     boot 4
 *     pins /path/to/socket
 * (which line offsets are wired to the chip's RESET and boot pins, and where the chip listens). open()
 * is the real one (a missing chip is ENOENT as for a missing /dev/gpiochipN); GPIO_V2_GET_LINE_IOCTL on
 * such a file returns an eventfd as the line request (so close() works), EINVAL for an offset past
 * "lines", EBUSY for a line this process holds already; GPIO_V2_LINE_SET_VALUES_IOCTL and
 * GET_VALUES on that fd are emulated. As the kernel does, a line's physical level is its logical
 * value inverted when GPIO_V2_LINE_FLAG_ACTIVE_LOW is set; a released line (request closed) floats
 * high (the pins' pull-ups).
 *
 * To the chip: one datagram per change, "RESET=<0|1> BOOT=<0|1>\n", the pins' physical levels
 * (0 = low). A chip that is not listening (simulator not started) misses it, as a chip without power.
 * Single-threaded callers only (canfleetd, lpc21isp): the tables below take no lock.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/gpio.h>

#define MAX_FDS   1024
#define MAX_TTYS  8
#define PATH_MAXL 256

static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);

/* per tty (by its resolved /dev/pts/N): the modem bits the "driver" holds */
static struct {
        char pts[PATH_MAXL];
        int bits;
} ttys[MAX_TTYS];

/* per line-request fd */
struct line_req {
        bool used;
        char sock[PATH_MAXL];
        int reset_off, boot_off; /* wired offsets on the chip, -1: not wired */
        uint32_t offsets[GPIO_V2_LINES_MAX];
        unsigned num;
        bool active_low;
        uint64_t values; /* logical, bit i = offsets[i] */
        char chip[PATH_MAXL];
};
static struct line_req reqs[MAX_FDS];

static void init(void)
{
        /* through void ** : ISO C has no object-to-function pointer cast */
        if (!real_ioctl)
                *(void **) &real_ioctl = dlsym(RTLD_NEXT, "ioctl");
        if (!real_close)
                *(void **) &real_close = dlsym(RTLD_NEXT, "close");
}

static void tell_chip(const char *sock, int reset_level, int boot_level)
{
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return;
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
        char msg[32];
        int n = snprintf(msg, sizeof msg, "RESET=%d BOOT=%d\n", reset_level, boot_level);
        (void) sendto(s, msg, (size_t) n, MSG_DONTWAIT, (struct sockaddr *) &a, sizeof a);
        real_close(s);
}

/* The socket for this fd when it is a configured pty slave, else NULL. */
static const char *tty_sock(int fd, char *pts, size_t len, char *sock, size_t socklen)
{
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) < 136 || major(st.st_rdev) > 143)
                return NULL; /* not a UNIX98 pty slave */
        const char *env = getenv("CANFLEET_SHIM_TTYS");
        if (!env)
                return NULL;
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, pts, len - 1);
        if (n <= 0)
                return NULL;
        pts[n] = '\0';
        char *list = strdup(env), *save = NULL;
        const char *found = NULL;
        for (char *e = list ? strtok_r(list, ",", &save) : NULL; e; e = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(e, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                char *real = realpath(e, NULL);
                if (real && strcmp(real, pts) == 0) {
                        snprintf(sock, socklen, "%s", eq + 1);
                        found = sock;
                }
                free(real);
                if (found)
                        break;
        }
        free(list);
        return found;
}

static int *tty_bits(const char *pts)
{
        for (int i = 0; i < MAX_TTYS; i++)
                if (strcmp(ttys[i].pts, pts) == 0)
                        return &ttys[i].bits;
        for (int i = 0; i < MAX_TTYS; i++)
                if (!ttys[i].pts[0]) {
                        snprintf(ttys[i].pts, sizeof ttys[i].pts, "%s", pts);
                        return &ttys[i].bits;
                }
        return NULL;
}

static int modem_ioctl(int fd, unsigned long req, int *arg, bool *handled)
{
        char pts[PATH_MAXL], sock[PATH_MAXL];
        *handled = false;
        if (!tty_sock(fd, pts, sizeof pts, sock, sizeof sock))
                return 0;
        int *bits = tty_bits(pts);
        if (!bits)
                return 0;
        *handled = true;
        switch (req) {
        case TIOCMGET:
                *arg = *bits;
                return 0;
        case TIOCMSET:
                *bits = *arg & (TIOCM_DTR | TIOCM_RTS);
                break;
        case TIOCMBIS:
                *bits |= *arg & (TIOCM_DTR | TIOCM_RTS);
                break;
        case TIOCMBIC:
                *bits &= ~*arg;
                break;
        }
        /* the inverting level shifter: an asserted line is a low pin */
        tell_chip(sock, !(*bits & TIOCM_DTR), !(*bits & TIOCM_RTS));
        return 0;
}

/* A fake chip file: fills r's wiring; false when fd is not one. */
static bool read_chip(int fd, struct line_req *r, unsigned *lines)
{
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        char buf[1024];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        if (strncmp(buf, "canfleet-shim-gpiochip\n", 23) != 0)
                return false;
        *lines = 0;
        r->reset_off = r->boot_off = -1;
        r->sock[0] = '\0';
        char *save = NULL;
        for (char *l = strtok_r(buf + 23, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char key[16], val[PATH_MAXL];
                if (sscanf(l, "%15s %255s", key, val) != 2)
                        continue;
                if (strcmp(key, "lines") == 0)
                        *lines = (unsigned) atoi(val);
                else if (strcmp(key, "reset") == 0)
                        r->reset_off = atoi(val);
                else if (strcmp(key, "boot") == 0)
                        r->boot_off = atoi(val);
                else if (strcmp(key, "pins") == 0)
                        snprintf(r->sock, sizeof r->sock, "%s", val);
        }
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(link, r->chip, sizeof r->chip - 1);
        r->chip[k > 0 ? k : 0] = '\0';
        return true;
}

/* The physical level of a wired pin: a line not requested floats high. */
static int level(const struct line_req *r, int off)
{
        for (unsigned i = 0; i < r->num; i++)
                if ((int) r->offsets[i] == off)
                        return (int) (((r->values >> i) & 1u) ^ (r->active_low ? 1u : 0u));
        return 1;
}

static void gpio_tell(const struct line_req *r)
{
        if (r->sock[0])
                tell_chip(r->sock, level(r, r->reset_off), level(r, r->boot_off));
}

static int gpio_get_line(int fd, struct gpio_v2_line_request *q, bool *handled)
{
        struct line_req r = {0};
        unsigned lines;
        *handled = read_chip(fd, &r, &lines);
        if (!*handled)
                return 0;
        if (q->num_lines == 0 || q->num_lines > GPIO_V2_LINES_MAX)
                return -EINVAL;
        for (unsigned i = 0; i < q->num_lines; i++) {
                if (q->offsets[i] >= lines)
                        return -EINVAL; /* as the kernel: no such line on this chip */
                for (int f = 0; f < MAX_FDS; f++)
                        if (reqs[f].used && strcmp(reqs[f].chip, r.chip) == 0)
                                for (unsigned j = 0; j < reqs[f].num; j++)
                                        if (reqs[f].offsets[j] == q->offsets[i])
                                                return -EBUSY;
        }
        if (!(q->config.flags & GPIO_V2_LINE_FLAG_OUTPUT))
                return -EINVAL; /* this fake only drives */
        r.num = q->num_lines;
        memcpy(r.offsets, q->offsets, sizeof(r.offsets[0]) * r.num);
        r.active_low = q->config.flags & GPIO_V2_LINE_FLAG_ACTIVE_LOW;
        for (unsigned a = 0; a < q->config.num_attrs && a < GPIO_V2_LINE_NUM_ATTRS_MAX; a++) {
                const struct gpio_v2_line_config_attribute *at = &q->config.attrs[a];
                if (at->attr.id == GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES)
                        r.values = (r.values & ~at->mask) | (at->attr.values & at->mask);
                else
                        return -EINVAL; /* per-line flags or debounce: not needed, not faked */
        }
        int lfd = eventfd(0, EFD_CLOEXEC);
        if (lfd < 0)
                return -errno;
        if (lfd >= MAX_FDS) {
                real_close(lfd);
                return -EMFILE;
        }
        r.used = true;
        reqs[lfd] = r;
        q->fd = lfd;
        gpio_tell(&reqs[lfd]);
        return 0;
}

int ioctl(int fd, unsigned long req, ...)
{
        init();
        va_list ap;
        va_start(ap, req);
        void *arg = va_arg(ap, void *);
        va_end(ap);
        bool handled = false;
        int r = 0;
        switch (req) {
        case TIOCMGET:
        case TIOCMSET:
        case TIOCMBIS:
        case TIOCMBIC:
                r = modem_ioctl(fd, req, arg, &handled);
                break;
        case GPIO_V2_GET_LINE_IOCTL:
                r = gpio_get_line(fd, arg, &handled);
                break;
        case GPIO_V2_LINE_SET_VALUES_IOCTL:
        case GPIO_V2_LINE_GET_VALUES_IOCTL:
                if (fd >= 0 && fd < MAX_FDS && reqs[fd].used) {
                        struct gpio_v2_line_values *v = arg;
                        struct line_req *lr = &reqs[fd];
                        uint64_t all = lr->num >= 64 ? ~0ull : (1ull << lr->num) - 1;
                        handled = true;
                        if (req == GPIO_V2_LINE_GET_VALUES_IOCTL) {
                                v->bits = lr->values & v->mask & all;
                        } else {
                                lr->values = (lr->values & ~v->mask) | (v->bits & v->mask & all);
                                gpio_tell(lr);
                        }
                }
                break;
        }
        if (!handled)
                return real_ioctl(fd, req, arg);
        if (r < 0) {
                errno = -r;
                return -1;
        }
        return 0;
}

int close(int fd)
{
        init();
        if (fd >= 0 && fd < MAX_FDS && reqs[fd].used) {
                /* the request is released: its lines go back to inputs and the pull-ups win */
                reqs[fd].num = 0;
                gpio_tell(&reqs[fd]);
                reqs[fd].used = false;
        }
        return real_close(fd);
}
