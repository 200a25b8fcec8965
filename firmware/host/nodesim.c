/* canfleet-nodesim: main, wiring of buses, nodes and ports, and the poll loop. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "canfleet/image.h"
#include "canfleet/seedkey.h"
#include "canfleet/sha256.h"
#include "serial-sim.h"
#include "sim-bus.h"
#include "sim-options.h"
#include "sim-show.h"
#include "slcan-pty.h"
#include "socketcan-port.h"

#define READY_AT_LATEST_US 10000000u /* a node that never finishes booting must not block readiness */

struct sim {
        struct sim_options opt;
        struct sim_bus *buses[SIM_MAX_BUSES];
        struct slcan_pty *ptys[SIM_MAX_BUSES];
        struct socketcan_port *sockets[SIM_MAX_BUSES];
        unsigned n_buses;
        uint8_t fleet_key[CF_FLEET_KEY_LEN];
        uint8_t *image;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
        stop_signal = sig;
}

static int read_file(const char *path, size_t max, uint8_t **ret, size_t *len)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        uint8_t *buf = malloc(max + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        size_t n = fread(buf, 1, max + 1, f);
        int r = ferror(f) ? -EIO : 0;
        fclose(f);
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        *len = n;
        return 0;
}

static int load_fleet_key(struct sim *s)
{
        uint8_t *text;
        size_t len;
        int r = read_file(s->opt.fleet_key_file, 4096, &text, &len);
        if (r < 0) {
                fprintf(stderr, "canfleet-nodesim: --fleet-key %s: %s\n", s->opt.fleet_key_file,
                        strerror(-r));
                return r;
        }
        r = len > 4096 ? -1 : cf_fleet_key_parse((const char *) text, len, s->fleet_key);
        cf_memzero(text, len);
        free(text);
        if (r < 0) {
                fprintf(stderr, "canfleet-nodesim: --fleet-key %s: not 64 hexadecimal characters\n",
                        s->opt.fleet_key_file);
                return -EINVAL;
        }
        return 0;
}

static int load_image(struct sim *s)
{
        size_t len;
        int r = read_file(s->opt.install_file, CF_IMAGE_AREA_SIZE, &s->image, &len);
        if (r < 0) {
                fprintf(stderr, "canfleet-nodesim: --install %s: %s\n", s->opt.install_file, strerror(-r));
                return r;
        }
        if (len != CF_IMAGE_AREA_SIZE) {
                fprintf(stderr, "canfleet-nodesim: --install %s: %zu bytes, a packed image has %u\n",
                        s->opt.install_file, len, CF_IMAGE_AREA_SIZE);
                return -EINVAL;
        }
        struct cf_image_info info = {0};
        /* A dual-bank node takes an image linked for either bank (into that bank). */
        unsigned bank = s->opt.dual_bank ? cf_image_link_bank(s->image) : 1u;
        r = cf_image_check_at(s->image, &info, cf_f7_app_addr(bank ? bank : 1u));
        if (r != CF_IMAGE_OK) {
                fprintf(stderr, "canfleet-nodesim: --install %s: %s\n", s->opt.install_file,
                        cf_image_status_str(r));
                return -EINVAL;
        }
        if (info.hw_id != s->opt.hw_id) {
                fprintf(stderr,
                        "canfleet-nodesim: --install %s: built for hardware 0x%04X, nodes are 0x%04X\n",
                        s->opt.install_file, info.hw_id, s->opt.hw_id);
                return -EINVAL;
        }
        return 0;
}

static int setup_bus(struct sim *s, unsigned bi)
{
        const struct sim_bus_spec *spec = &s->opt.buses[bi];
        const struct sim_options *o = &s->opt;
        struct sim_bus_config bc = {
            .name = spec->name,
            .bitrate = o->bitrate,
            .timing = o->bus_timing,
            .drop = o->drop,
            .corrupt = o->corrupt,
            .seed = o->seed + bi * 0x9E3779B97F4A7C15ull,
            .log_frames = o->log_frames,
        };
        struct sim_bus *b;
        int r = sim_bus_new(&b, &bc, o->nodes);
        if (r < 0)
                return r;
        s->buses[bi] = b;

        struct cf_node_config tmpl = {
            .cro_id = o->cro_base,
            .dto_id = o->dto_base,
            .hw_id = o->hw_id,
            .seedkey_echo = o->seedkey_echo,
            .dual_bank = o->dual_bank,
        };
        for (unsigned i = 0; i < o->nodes; i++) {
                struct sim_node *n = &b->nodes[i];
                uint16_t sa = (uint16_t) (i + 1);
                char *path = NULL;
                snprintf(n->name, sizeof(n->name), "%s-%u", spec->name, sa);
                if (asprintf(&path, "%s/%s.flash", o->state_dir, n->name) < 0)
                        return -ENOMEM;
                r = sim_node_init(n, path, &tmpl, sa, o->fleet_key_file ? s->fleet_key : NULL,
                                  o->flash_timing);
                if (r < 0) {
                        fprintf(stderr, "canfleet-nodesim: %s: %s\n", path,
                                r == -EBADMSG       ? "not a node flash file"
                                : r == -EMEDIUMTYPE ? (o->dual_bank ? "a node of the f4-copy layout, not f7-dual-bank"
                                                                    : "a node of the f7-dual-bank layout, not f4-copy")
                                                    : strerror(-r));
                        free(path);
                        return r;
                }
                free(path);
                n->quiet = o->quiet;
                for (unsigned k = 0; k < o->n_silent; k++)
                        if (o->silent[k] == sa)
                                n->silent = true;
                for (unsigned k = 0; k < o->n_cuts; k++)
                        if (o->cuts[k].sa == 0 || o->cuts[k].sa == sa) {
                                n->cut = o->cuts[k].cut;
                                n->cut_pending = true;
                        }
                for (unsigned k = 0; k < o->n_echo_nodes; k++)
                        if (o->echo_nodes[k] == sa)
                                n->cfg.seedkey_echo = true;
                for (unsigned k = 0; k < o->n_no_group; k++)
                        if (o->no_group[k] == 0 || o->no_group[k] == sa)
                                n->cfg.no_group = true;
                for (unsigned k = 0; k < o->n_no_block; k++)
                        if (o->no_block[k] == 0 || o->no_block[k] == sa)
                                n->cfg.no_block = true;
                for (unsigned k = 0; k < o->n_group_loss; k++)
                        if (o->group_loss[k].sa == sa)
                                n->group_loss = o->group_loss[k].p;
                for (unsigned k = 0; k < o->n_install_faults; k++)
                        if (o->install_faults[k] == 0 || o->install_faults[k] == sa)
                                n->hal.fault_program_app = true;
                for (unsigned k = 0; k < o->n_app_fails; k++)
                        if (o->app_fails[k] == 0 || o->app_fails[k] == sa)
                                n->app_fails = true;
                for (unsigned k = 0; k < o->n_app_no_confirm; k++)
                        if (o->app_no_confirm[k] == 0 || o->app_no_confirm[k] == sa)
                                n->app_no_confirm = true;
                if (s->image && sim_node_install(n, s->image) > 0)
                        fprintf(stderr, o->dual_bank ? "%s: application installed in its bank\n"
                                                     : "%s: application installed in B\n", n->name);
        }

        if (spec->kind == SIM_PORT_SLCAN) {
                r = slcan_pty_new(&s->ptys[bi], spec->path, b);
                if (r < 0) {
                        fprintf(stderr, "canfleet-nodesim: --bus slcan:%s: %s\n", spec->path,
                                r == -EEXIST ? "exists and is not a symlink" : strerror(-r));
                        return r;
                }
                slcan_pty_set_latency(s->ptys[bi], o->adapter_latency_us);
                for (unsigned k = 0; k < o->n_stalls; k++)
                        if (!o->stalls[k].bus || strcmp(o->stalls[k].bus, spec->name) == 0) {
                                r = slcan_pty_add_stall(s->ptys[bi], o->stalls[k].after_frame,
                                                        o->stalls[k].ms);
                                if (r < 0)
                                        return r;
                        }
        } else {
                r = socketcan_port_new(&s->sockets[bi], spec->path, b);
                if (r < 0) {
                        fprintf(stderr, "canfleet-nodesim: --bus socketcan:%s: %s\n", spec->path,
                                r == -EAFNOSUPPORT ? "no CAN support in this kernel" : strerror(-r));
                        return r;
                }
        }
        return 0;
}

static void teardown(struct sim *s)
{
        for (unsigned i = 0; i < s->n_buses; i++) {
                s->ptys[i] = slcan_pty_free(s->ptys[i]);
                s->sockets[i] = socketcan_port_free(s->sockets[i]);
                if (s->buses[i])
                        for (unsigned k = 0; k < s->buses[i]->n_nodes; k++)
                                sim_node_fini(&s->buses[i]->nodes[k]);
                s->buses[i] = sim_bus_free(s->buses[i]);
        }
        free(s->image);
        cf_memzero(s->fleet_key, sizeof(s->fleet_key));
}

static bool all_booted(struct sim *s)
{
        for (unsigned i = 0; i < s->n_buses; i++)
                for (unsigned k = 0; k < s->buses[i]->n_nodes; k++) {
                        const struct sim_node *n = &s->buses[i]->nodes[k];
                        if (!n->dead && (n->off || n->node.phase == CF_NODE_BOOTING))
                                return false;
                }
        return true;
}

static void signal_ready(struct sim *s)
{
        static const char msg[] = "ready\n";
        int fd = s->opt.ready_fd >= 0 ? s->opt.ready_fd : STDOUT_FILENO;
        if (write(fd, msg, sizeof(msg) - 1) < 0)
                fprintf(stderr, "canfleet-nodesim: readiness: %s\n", strerror(errno));
        if (s->opt.ready_fd >= 0)
                close(s->opt.ready_fd);
}

static int run(struct sim *s)
{
        struct pollfd pfd[SIM_MAX_BUSES];
        bool ready = false;
        uint64_t started = sim_now_us();
        sigset_t unblocked;

        sigprocmask(SIG_SETMASK, NULL, &unblocked);
        sigdelset(&unblocked, SIGTERM);
        sigdelset(&unblocked, SIGINT);

        while (!stop_signal) {
                uint64_t now = sim_now_us();
                uint64_t deadline = UINT64_MAX;

                for (unsigned i = 0; i < s->n_buses; i++) {
                        if (s->ptys[i])
                                slcan_pty_timer(s->ptys[i], now);
                        if (s->sockets[i])
                                socketcan_port_timer(s->sockets[i], now);
                        uint64_t d = sim_bus_run(s->buses[i], now);
                        deadline = d < deadline ? d : deadline;
                        d = s->ptys[i] ? slcan_pty_deadline(s->ptys[i])
                                       : socketcan_port_deadline(s->sockets[i]);
                        deadline = d < deadline ? d : deadline;
                        if (s->ptys[i])
                                pfd[i] = (struct pollfd){.fd = slcan_pty_fd(s->ptys[i]),
                                                         .events = slcan_pty_events(s->ptys[i])};
                        else
                                pfd[i] = (struct pollfd){.fd = socketcan_port_fd(s->sockets[i]),
                                                         .events = POLLIN};
                }
                if (!ready && (all_booted(s) || now - started > READY_AT_LATEST_US)) {
                        signal_ready(s);
                        ready = true;
                }

                now = sim_now_us();
                struct timespec ts = {0}, *tsp = NULL;
                if (deadline != UINT64_MAX) {
                        uint64_t wait = deadline > now ? deadline - now : 0;
                        ts.tv_sec = (time_t) (wait / 1000000u);
                        ts.tv_nsec = (long) (wait % 1000000u) * 1000;
                        tsp = &ts;
                }
                int r = ppoll(pfd, s->n_buses, tsp, &unblocked);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "canfleet-nodesim: poll: %s\n", strerror(errno));
                        return -errno;
                }
                for (unsigned i = 0; i < s->n_buses && r > 0; i++) {
                        if (!pfd[i].revents)
                                continue;
                        if (s->ptys[i])
                                slcan_pty_io(s->ptys[i], pfd[i].revents);
                        else
                                socketcan_port_io(s->sockets[i], pfd[i].revents);
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct sim s = {0};
        int r = sim_options_parse(&s.opt, argc, argv);
        if (r < 0) {
                sim_options_free(&s.opt);
                return 2;
        }
        if (s.opt.help) {
                sim_options_help();
                return 0;
        }
        if (s.opt.version) {
                printf("canfleet-nodesim " CANFLEET_VERSION "\n");
                return 0;
        }
        /* The bus timing model sleeps until each frame's last bit: the default 50 µs of timer slack
         * would add to every frame time (PR_SET_TIMERSLACK takes nanoseconds; 0 means the default). */
        if (s.opt.bus_timing)
                prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        if (s.opt.show) {
                r = sim_show(s.opt.state_dir, s.opt.json);
                return r < 0 ? 1 : 0;
        }
        if (s.opt.buses[0].kind == SIM_PORT_SERIAL) {
                r = serial_sim_main(&s.opt);
                sim_options_free(&s.opt);
                return r;
        }

        if (s.opt.fleet_key_file && load_fleet_key(&s) < 0)
                goto usage;
        if (s.opt.install_file && load_image(&s) < 0)
                goto usage;
        if (mkdir(s.opt.state_dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "canfleet-nodesim: --state %s: %s\n", s.opt.state_dir, strerror(errno));
                goto usage;
        }
        if (!s.opt.seed_set) {
                if (getrandom(&s.opt.seed, sizeof(s.opt.seed), 0) != (ssize_t) sizeof(s.opt.seed))
                        s.opt.seed = (uint64_t) sim_now_us();
                if (s.opt.drop > 0 || s.opt.corrupt > 0)
                        fprintf(stderr, "canfleet-nodesim: fault injection seed %" PRIu64 "\n", s.opt.seed);
        }

        /* SIGTERM/SIGINT only between polls, so a signal never lands halfway through a flash write */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        for (unsigned i = 0; i < s.opt.n_buses; i++) {
                s.n_buses = i + 1;
                r = setup_bus(&s, i);
                if (r < 0)
                        goto fail;
        }
        uint64_t now = sim_now_us();
        for (unsigned i = 0; i < s.n_buses; i++)
                for (unsigned k = 0; k < s.buses[i]->n_nodes; k++)
                        sim_node_power_on(&s.buses[i]->nodes[k], now);

        r = run(&s);
fail:
        teardown(&s);
        sim_options_free(&s.opt);
        return r < 0 ? 1 : 0;
usage:
        teardown(&s);
        sim_options_free(&s.opt);
        return 2;
}
