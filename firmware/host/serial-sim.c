/* canfleet-nodesim --bus serial:PATH: the pty, the flash and state files, faults, and the poll loop. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "canfleet/adi-uart.h"
#include "canfleet/lpc-isp.h"
#include "serial-sim.h"
#include "sim-node.h"
#include "slcan-pty.h"

#define OUT_MAX         (1u << 20)
#define HANGUP_RETRY_US 25000u

struct serial_sim {
        struct serial_chip chip;
        const struct serial_proto *proto;
        void *pst;

        char *link_path, *flash_path, *state_path;
        char slave_name[128];
        int master;
        bool hung_up;
        uint64_t retry_at_us;

        uint8_t *out;
        size_t out_len;

        uint64_t rng;
        /* power */
        uint64_t power_up_at_us; /* while off; UINT64_MAX: off for good */
        /* --stall */
        uint64_t stall_until_us;
        /* --pins: the unix datagram socket the pin levels arrive on (-1: none), the levels (true =
         * high; both float high until told otherwise) and whether RESET low holds the chip */
        int pins_fd;
        bool reset_high, boot_high, in_reset;
};

static volatile sig_atomic_t stop_signal, reset_signal;

static void on_signal(int sig)
{
        if (sig == SIGUSR1)
                reset_signal = 1;
        else
                stop_signal = sig;
}

static struct serial_sim *sim_of(struct serial_chip *c)
{
        return (struct serial_sim *) c; /* chip is the first member */
}

/* splitmix64: a fixed --seed gives the same faults on the same bytes */
static uint64_t rnd(struct serial_sim *s)
{
        uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

static bool chance(struct serial_sim *s, double p)
{
        return p > 0 && (double) (rnd(s) >> 11) * (1.0 / 9007199254740992.0) < p;
}

/* --drop / --corrupt on n bytes in place; returns the bytes left. */
static size_t faults(struct serial_sim *s, uint8_t *b, size_t n, const char *dir)
{
        const struct sim_options *o = s->chip.opt;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (chance(s, o->drop)) {
                        if (o->log_frames)
                                fprintf(stderr, "%s: %s byte 0x%02X dropped\n", s->chip.name, dir, b[i]);
                        continue;
                }
                uint8_t v = b[i];
                if (chance(s, o->corrupt)) {
                        v ^= (uint8_t) (1u << (rnd(s) % 8));
                        if (o->log_frames)
                                fprintf(stderr, "%s: %s byte 0x%02X corrupted to 0x%02X\n", s->chip.name,
                                        dir, b[i], v);
                }
                b[k++] = v;
        }
        return k;
}

static bool stalled(struct serial_sim *s)
{
        return s->stall_until_us != 0 && sim_now_us() < s->stall_until_us;
}

static void flush_out(struct serial_sim *s)
{
        while (s->out_len > 0 && !s->hung_up) {
                ssize_t n = write(s->master, s->out, s->out_len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                memmove(s->out, s->out + n, s->out_len - (size_t) n);
                s->out_len -= (size_t) n;
        }
}

void serial_chip_send(struct serial_chip *c, const void *data, size_t n)
{
        struct serial_sim *s = sim_of(c);
        if (c->off || s->in_reset || s->hung_up || stalled(s))
                return;
        if (n > OUT_MAX - s->out_len) {
                serial_chip_error(c, "output to the host overflows (%zu bytes queued): host not reading",
                                  s->out_len);
                return;
        }
        memcpy(s->out + s->out_len, data, n);
        size_t k = faults(s, s->out + s->out_len, n, "chip->host");
        s->out_len += k;
        c->bytes_out += k;
        flush_out(s);
}

void serial_chip_sends(struct serial_chip *c, const char *str)
{
        serial_chip_send(c, str, strlen(str));
}

void serial_chip_log(struct serial_chip *c, const char *fmt, ...)
{
        if (c->opt->quiet)
                return;
        va_list ap;
        fprintf(stderr, "%s: ", c->name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

void serial_chip_error(struct serial_chip *c, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
        va_end(ap);
        serial_chip_log(c, "%s", c->last_error);
}

static void json_string(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fprintf(f, "\\%c", *s);
                else if ((unsigned char) *s < 0x20)
                        fprintf(f, "\\u%04x", (unsigned char) *s);
                else
                        fputc(*s, f);
        }
        fputc('"', f);
}

static bool app_valid(const struct serial_chip *c, const struct serial_sim *s)
{
        if (s->proto == &serial_proto_lpc)
                return cf_lpc_vector_checksum_ok(c->flash, c->flash_size);
        /* the ADuCM360 kernel starts user code when its first word is programmed */
        return !(c->flash[0] == 0xFF && c->flash[1] == 0xFF && c->flash[2] == 0xFF && c->flash[3] == 0xFF);
}

void serial_chip_changed(struct serial_chip *c)
{
        struct serial_sim *s = sim_of(c);
        char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", s->state_path) < 0)
                return;
        FILE *f = fopen(tmp, "we");
        if (!f) {
                fprintf(stderr, "%s: %s: %s\n", c->name, tmp, strerror(errno));
                free(tmp);
                return;
        }
        char extra[512] = "";
        if (s->proto->state_json)
                s->proto->state_json(s->pst, extra, sizeof(extra));
        fprintf(f, "{\"protocol\": \"%s\", \"part\": ", s->proto->name);
        json_string(f, c->part_name);
        fprintf(f,
                ", \"part_id\": %" PRIu32 ", \"flash_size\": %" PRIu32
                ", \"state\": \"%s\", \"synchronized\": %s"
                ", \"unlocked\": %s, \"echo\": %s, \"boots\": %" PRIu64 ", \"flash_ops\": %" PRIu64
                ", \"power_cuts\": %" PRIu64 ", \"commands\": %" PRIu64 ", \"bad_checksums\": %" PRIu64
                ", \"bytes_in\": %" PRIu64 ", \"bytes_out\": %" PRIu64
                ", \"host\": \"%s\", \"app_valid\": %s, \"app_entry\": ",
                c->part_id, c->flash_size,
                c->off        ? "off"
                : s->in_reset ? "reset"
                : c->running  ? "running"
                              : "loader",
                c->synchronized ? "true" : "false", c->unlocked ? "true" : "false",
                c->echo ? "true" : "false", c->boots, c->flash_ops, c->power_cuts, c->commands,
                c->bad_checksums, c->bytes_in, c->bytes_out, s->hung_up ? "closed" : "open",
                app_valid(c, s) ? "true" : "false");
        if (c->running)
                fprintf(f, "%" PRIu32, c->app_entry);
        else
                fputs("null", f);
        if (s->pins_fd >= 0)
                fprintf(f, ", \"reset_pin\": %d, \"boot_pin\": %d", s->reset_high, s->boot_high);
        fputs(", \"last_error\": ", f);
        json_string(f, c->last_error);
        fprintf(f, "%s}\n", extra);
        bool ok = fflush(f) == 0 && !ferror(f);
        fclose(f);
        if (!ok || rename(tmp, s->state_path) < 0)
                unlink(tmp);
        free(tmp);
}

/* flush_input: bytes the host sent before the reset are lost (not so for a reset at open: the
 * host's first bytes come after it). */
static void chip_reset(struct serial_sim *s, const char *why, bool flush_input)
{
        struct serial_chip *c = &s->chip;
        c->off = false;
        c->running = false;
        c->synchronized = c->unlocked = false;
        c->echo = true;
        c->boots++;
        s->stall_until_us = 0;
        s->out_len = 0;
        if (!s->hung_up)
                tcflush(s->master, flush_input ? TCIOFLUSH : TCOFLUSH);
        s->proto->reset(s->pst);
        serial_chip_log(c, "reset (%s): %s loader waiting for %s", why, c->part_name,
                        s->proto == &serial_proto_lpc ? "'?'" : "BS");
        serial_chip_changed(c);
}

/* --pins: the ROM's start after RESET rises (or at power-up): the boot pin low enters the loader; high
 * starts valid user code, and without any the ROM stays in its loader (UM10360 §32.3.1: "if no valid
 * user program is found, the ISP command handler is invoked"; the ADuCM36x kernel alike). */
static void pins_boot(struct serial_sim *s, const char *why)
{
        struct serial_chip *c = &s->chip;
        s->in_reset = false;
        /* what waits on the line may have been sent after RESET rose (the datagram and the bytes race
         * to this process): keep it; what came before was flushed when RESET fell */
        chip_reset(s, why, false);
        if (s->boot_high && app_valid(c, s)) {
                const uint8_t *v = c->flash + 4; /* the reset vector */
                serial_chip_run_app(c, (uint32_t) v[0] | (uint32_t) v[1] << 8 | (uint32_t) v[2] << 16 |
                                           (uint32_t) v[3] << 24);
        }
}

/* A datagram "RESET=<0|1> BOOT=<0|1>" from tests/serial-shim: the pins' new levels. */
static void pins_changed(struct serial_sim *s, const char *msg)
{
        struct serial_chip *c = &s->chip;
        int reset, boot;
        if (sscanf(msg, "RESET=%d BOOT=%d", &reset, &boot) != 2 || (reset | boot) & ~1) {
                serial_chip_log(c, "--pins: ignoring \"%.40s\"", msg);
                return;
        }
        bool was_held = s->in_reset;
        if (s->reset_high != (bool) reset || s->boot_high != (bool) boot)
                serial_chip_log(c, "pins: RESET %s, boot pin %s", reset ? "high" : "low", boot ? "high" : "low");
        s->reset_high = reset;
        s->boot_high = boot;
        if (!reset) {
                if (!was_held) {
                        /* held in reset: silent, the UART's queue and the loader's RAM state gone */
                        s->in_reset = true;
                        c->running = false;
                        s->out_len = 0;
                        if (!s->hung_up)
                                tcflush(s->master, TCIOFLUSH);
                        serial_chip_log(c, "held in reset");
                }
                serial_chip_changed(c);
                return;
        }
        if (was_held) {
                s->in_reset = false;
                if (c->off) { /* no power: nothing starts until it returns */
                        serial_chip_changed(c);
                        return;
                }
                pins_boot(s, boot ? "RESET released, boot pin high" : "RESET released with the boot pin low");
                return;
        }
        serial_chip_changed(c); /* the boot pin alone is only sampled at reset */
}

static void pins_read(struct serial_sim *s)
{
        char buf[64];
        for (;;) {
                ssize_t n = recv(s->pins_fd, buf, sizeof buf - 1, MSG_DONTWAIT);
                if (n < 0)
                        return;
                buf[n] = '\0';
                pins_changed(s, buf);
        }
}

static int pins_open(struct serial_sim *s, const char *path)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        struct stat st;
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                unlink(path); /* a socket a killed simulator left */
        s->pins_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->pins_fd < 0 || bind(s->pins_fd, (struct sockaddr *) &a, sizeof a) < 0)
                return -errno;
        return 0;
}

double serial_chip_flash_op(struct serial_chip *c)
{
        struct serial_sim *s = sim_of(c);
        const struct sim_options *o = c->opt;
        c->flash_ops++;
        for (unsigned i = 0; i < o->n_cuts; i++) {
                if (o->cuts[i].cut.at_op != c->flash_ops)
                        continue;
                bool torn = o->cuts[i].cut.torn;
                c->off = true;
                c->power_cuts++;
                s->out_len = 0; /* what the UART had not sent yet is gone with the power */
                s->power_up_at_us =
                    o->cuts[i].cut.stay_off ? UINT64_MAX : sim_now_us() + SIM_POWER_UP_DELAY_US;
                serial_chip_log(c, "power cut at flash operation %" PRIu64 "%s%s", c->flash_ops,
                                torn ? " (torn: half of it happens)" : "",
                                o->cuts[i].cut.stay_off ? ", power stays off" : "");
                serial_chip_changed(c);
                return torn ? 0.5 : 0.0;
        }
        return 1.0;
}

void serial_chip_command(struct serial_chip *c)
{
        struct serial_sim *s = sim_of(c);
        const struct sim_options *o = c->opt;
        c->commands++;
        serial_chip_changed(c);
        for (unsigned i = 0; i < o->n_stalls; i++)
                if (o->stalls[i].after_frame == c->commands) {
                        s->stall_until_us = sim_now_us() + (uint64_t) o->stalls[i].ms * 1000u;
                        serial_chip_log(c, "stalls for %" PRIu32 " ms after host command %" PRIu64,
                                        o->stalls[i].ms, c->commands);
                }
}

void serial_chip_run_app(struct serial_chip *c, uint32_t entry)
{
        c->running = true;
        c->app_entry = entry;
        serial_chip_log(c, "application started at 0x%08" PRIX32 " (%s)", entry,
                        app_valid(c, sim_of(c)) ? "valid user code" : "NO valid user code in flash");
        serial_chip_changed(c);
}

static int map_flash(struct serial_sim *s)
{
        struct serial_chip *c = &s->chip;
        int fd = open(s->flash_path, O_RDWR | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                /* built under a temporary name: a kill during creation leaves no half file */
                char *tmp = NULL;
                if (asprintf(&tmp, "%s.tmp", s->flash_path) < 0)
                        return -ENOMEM;
                int t = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (t < 0) {
                        free(tmp);
                        return -errno;
                }
                uint8_t *ff = malloc(c->flash_size);
                int r = 0;
                if (!ff)
                        r = -ENOMEM;
                else {
                        memset(ff, 0xFF, c->flash_size);
                        if (write(t, ff, c->flash_size) != (ssize_t) c->flash_size || fsync(t) < 0)
                                r = -EIO;
                }
                free(ff);
                close(t);
                if (r == 0 && rename(tmp, s->flash_path) < 0)
                        r = -errno;
                if (r < 0)
                        unlink(tmp);
                free(tmp);
                if (r < 0)
                        return r;
                fd = open(s->flash_path, O_RDWR | O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return -errno;
        }
        if (st.st_size != (off_t) c->flash_size) {
                close(fd);
                return -EBADMSG;
        }
        void *m = mmap(NULL, c->flash_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (m == MAP_FAILED)
                return -errno;
        c->flash = m;
        return 0;
}

static int pick_part(struct serial_sim *s)
{
        struct serial_chip *c = &s->chip;
        const char *part = c->opt->part;
        if (c->opt->protocol == SIM_PROTO_LPC_ISP) {
                const struct cf_lpc_part *p =
                    part ? cf_lpc_part_by_name(part) : cf_lpc_part_by_id(0x26013F37u);
                if (!p && part) {
                        char *end;
                        errno = 0;
                        unsigned long id = strtoul(part, &end, 0);
                        if (!errno && !*end && *part)
                                p = cf_lpc_part_by_id((uint32_t) id);
                }
                if (!p) {
                        fprintf(stderr, "canfleet-nodesim: --part %s: not an LPC17xx part name or id\n",
                                part);
                        return -EINVAL;
                }
                c->part_name = p->name;
                c->part_id = p->id;
                c->flash_size = p->flash_size;
                s->proto = &serial_proto_lpc;
        } else {
                if (!part)
                        part = "ADuCM360";
                if (strcasecmp(part, "ADuCM360") == 0)
                        c->part_name = "ADuCM360";
                else if (strcasecmp(part, "ADuCM361") == 0)
                        c->part_name = "ADuCM361";
                else {
                        fprintf(stderr, "canfleet-nodesim: --part %s: expected ADuCM360 or ADuCM361\n",
                                part);
                        return -EINVAL;
                }
                c->flash_size = CF_ADI_FLASH_SIZE;
                s->proto = &serial_proto_adi;
        }
        /* N's serial number: fixed per chip name, so the gateway sees the same identity each run */
        uint64_t h = 1469598103934665603ull;
        for (const char *p = c->name; *p; p++)
                h = (h ^ (uint8_t) *p) * 1099511628211ull;
        for (int i = 0; i < 4; i++) {
                h = (h ^ (uint64_t) i) * 1099511628211ull;
                c->uid[i] = (uint32_t) (h >> 16);
        }
        return 0;
}

static void set_raw(int fd)
{
        struct termios t;
        if (tcgetattr(fd, &t) < 0)
                return;
        cfmakeraw(&t);
        tcsetattr(fd, TCSANOW, &t);
}

static bool host_side_closed(struct serial_sim *s)
{
        struct pollfd pfd = {.fd = s->master, .events = POLLIN};
        return poll(&pfd, 1, 0) >= 0 && (pfd.revents & POLLHUP);
}

static void hang_up(struct serial_sim *s)
{
        serial_chip_log(&s->chip, "host closed %s", s->link_path);
        s->hung_up = true;
        serial_chip_changed(&s->chip);
        s->out_len = 0;
        tcflush(s->master, TCOFLUSH);
        s->retry_at_us = sim_now_us() + HANGUP_RETRY_US;
}

static void host_opened(struct serial_sim *s)
{
        s->hung_up = false;
        serial_chip_changed(&s->chip);
        set_raw(s->master);
        serial_chip_log(&s->chip, "host opened %s", s->link_path);
        if (s->chip.opt->reset_on_open && !s->chip.off && !s->in_reset)
                chip_reset(s, "host opened the port, DTR", false);
}

static void input(struct serial_sim *s, uint8_t *buf, size_t n)
{
        struct serial_chip *c = &s->chip;
        c->bytes_in += n;
        if (c->off || s->in_reset || c->running || stalled(s))
                return; /* no power / the application does not speak the loader's protocol / frozen */
        n = faults(s, buf, n, "host->chip");
        /* one byte at a time: a command may power the chip off or start a stall halfway through */
        for (size_t i = 0; i < n && !c->off && !c->running && !stalled(s); i++)
                s->proto->input(s->pst, buf + i, 1);
}

static void io(struct serial_sim *s, short revents)
{
        if (s->hung_up)
                return;
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
                uint8_t buf[4096];
                for (;;) {
                        ssize_t n = read(s->master, buf, sizeof(buf));
                        if (n > 0) {
                                input(s, buf, (size_t) n);
                                continue;
                        }
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN)
                                break;
                        hang_up(s);
                        return;
                }
        }
        if (revents & POLLHUP) {
                if (host_side_closed(s)) {
                        hang_up(s);
                        return;
                }
        }
        if (revents & POLLOUT)
                flush_out(s);
}

static void signal_ready(const struct sim_options *o)
{
        static const char msg[] = "ready\n";
        int fd = o->ready_fd >= 0 ? o->ready_fd : STDOUT_FILENO;
        if (write(fd, msg, sizeof(msg) - 1) < 0)
                fprintf(stderr, "canfleet-nodesim: readiness: %s\n", strerror(errno));
        if (o->ready_fd >= 0)
                close(o->ready_fd);
}

static int run(struct serial_sim *s)
{
        struct serial_chip *c = &s->chip;
        sigset_t unblocked;
        sigprocmask(SIG_SETMASK, NULL, &unblocked);
        sigdelset(&unblocked, SIGTERM);
        sigdelset(&unblocked, SIGINT);
        sigdelset(&unblocked, SIGUSR1);

        signal_ready(c->opt);
        while (!stop_signal) {
                uint64_t now = sim_now_us();
                if (reset_signal) {
                        reset_signal = 0;
                        if (!(c->off && s->power_up_at_us == UINT64_MAX) && !s->in_reset)
                                chip_reset(s, "SIGUSR1, reset button", true);
                }
                if (c->off && now >= s->power_up_at_us) {
                        if (s->pins_fd < 0)
                                chip_reset(s, "power returned", true);
                        else if (s->in_reset) {
                                c->off = false; /* powered, and held by its RESET pin */
                                serial_chip_changed(c);
                        } else
                                pins_boot(s, "power returned");
                }
                if (s->stall_until_us && now >= s->stall_until_us) {
                        s->stall_until_us = 0;
                        serial_chip_log(c, "resumes after the stall");
                }
                if (s->hung_up && now >= s->retry_at_us) {
                        if (host_side_closed(s))
                                s->retry_at_us = now + HANGUP_RETRY_US;
                        else
                                host_opened(s);
                }
                if (!c->off && !s->in_reset && s->proto->timer)
                        s->proto->timer(s->pst, now);

                uint64_t deadline = UINT64_MAX;
                if (c->off && s->power_up_at_us < deadline)
                        deadline = s->power_up_at_us;
                if (s->stall_until_us && s->stall_until_us < deadline)
                        deadline = s->stall_until_us;
                if (s->hung_up && s->retry_at_us < deadline)
                        deadline = s->retry_at_us;
                if (!c->off && !s->in_reset && s->proto->deadline) {
                        uint64_t d = s->proto->deadline(s->pst);
                        deadline = d < deadline ? d : deadline;
                }
                struct pollfd pfd[2] = {{.fd = s->hung_up ? -1 : s->master,
                                         .events = (short) (POLLIN | (s->out_len ? POLLOUT : 0))},
                                        {.fd = s->pins_fd, .events = POLLIN}};
                now = sim_now_us();
                struct timespec ts = {0}, *tsp = NULL;
                if (deadline != UINT64_MAX) {
                        uint64_t wait = deadline > now ? deadline - now : 0;
                        ts.tv_sec = (time_t) (wait / 1000000u);
                        ts.tv_nsec = (long) (wait % 1000000u) * 1000;
                        tsp = &ts;
                }
                int r = ppoll(pfd, 2, tsp, &unblocked);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "canfleet-nodesim: poll: %s\n", strerror(errno));
                        return -errno;
                }
                if (r > 0 && pfd[1].revents)
                        pins_read(s); /* first: bytes sent after a reset pulse meet the chip it started */
                if (r > 0 && pfd[0].revents)
                        io(s, pfd[0].revents);
        }
        return 0;
}

int serial_sim_main(const struct sim_options *o)
{
        struct serial_sim s = {.master = -1, .pins_fd = -1, .reset_high = true, .boot_high = true};
        const struct sim_bus_spec *spec = &o->buses[0];
        int r, rc = 1;

        s.chip.opt = o;
        s.chip.name = spec->name;
        s.chip.echo = true;
        s.link_path = spec->path;
        s.rng = o->seed;
        if (!o->seed_set && getrandom(&s.rng, sizeof(s.rng), 0) != (ssize_t) sizeof(s.rng))
                s.rng = sim_now_us();
        if (pick_part(&s) < 0)
                return 2;
        if (mkdir(o->state_dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "canfleet-nodesim: --state %s: %s\n", o->state_dir, strerror(errno));
                return 2;
        }
        if (asprintf(&s.flash_path, "%s/%s.bin", o->state_dir, spec->name) < 0 ||
            asprintf(&s.state_path, "%s/%s.json", o->state_dir, spec->name) < 0 ||
            !(s.out = malloc(OUT_MAX))) {
                fprintf(stderr, "canfleet-nodesim: out of memory\n");
                goto out;
        }
        r = map_flash(&s);
        if (r < 0) {
                fprintf(stderr, "canfleet-nodesim: %s: %s\n", s.flash_path,
                        r == -EBADMSG ? "not a flash file of this part (wrong size)" : strerror(-r));
                rc = 2;
                goto out;
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGUSR1, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        s.master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (s.master < 0 || grantpt(s.master) < 0 || unlockpt(s.master) < 0 ||
            ptsname_r(s.master, s.slave_name, sizeof(s.slave_name)) != 0) {
                fprintf(stderr, "canfleet-nodesim: pty: %s\n", strerror(errno));
                goto out;
        }
        set_raw(s.master);
        r = sim_make_link(s.slave_name, s.link_path);
        if (r < 0) {
                fprintf(stderr, "canfleet-nodesim: --bus serial:%s: %s\n", s.link_path,
                        r == -EEXIST ? "exists and is not a symlink" : strerror(-r));
                rc = 2;
                goto out;
        }
        /* nobody has the slave open yet: treat it as hung up until a host opens it */
        s.hung_up = host_side_closed(&s);
        s.retry_at_us = sim_now_us();

        s.pst = s.proto->create(&s.chip);
        if (!s.pst) {
                fprintf(stderr, "canfleet-nodesim: out of memory\n");
                goto out;
        }
        if (o->drop > 0 || o->corrupt > 0)
                fprintf(stderr, "canfleet-nodesim: fault injection seed %" PRIu64 "\n", s.rng);
        if (o->pins) {
                r = pins_open(&s, o->pins);
                if (r < 0) {
                        fprintf(stderr, "canfleet-nodesim: --pins %s: %s\n", o->pins, strerror(-r));
                        rc = 2;
                        goto out;
                }
                pins_boot(&s, "power on, RESET and boot pin high");
        } else
                chip_reset(&s, "power on", true);
        r = run(&s);
        rc = r < 0 ? 1 : 0;
out:
        if (s.pst)
                s.proto->destroy(s.pst);
        if (s.master >= 0) {
                char target[sizeof(s.slave_name)];
                ssize_t n = readlink(s.link_path, target, sizeof(target) - 1);
                if (n > 0) {
                        target[n] = '\0';
                        if (strcmp(target, s.slave_name) == 0)
                                unlink(s.link_path);
                }
                close(s.master);
        }
        if (s.pins_fd >= 0) {
                close(s.pins_fd);
                unlink(o->pins);
        }
        if (s.chip.flash) {
                msync(s.chip.flash, s.chip.flash_size, MS_SYNC);
                munmap(s.chip.flash, s.chip.flash_size);
        }
        free(s.out);
        free(s.flash_path);
        free(s.state_path);
        return rc;
}
