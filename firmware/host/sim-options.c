/* Command line parsing of canfleet-nodesim: strict, one clear line per mistake. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/ccp.h"
#include "sim-options.h"

enum {
        OPT_BUS = 0x100,
        OPT_NODES,
        OPT_STATE,
        OPT_FLEET_KEY,
        OPT_INSTALL,
        OPT_HW_ID,
        OPT_CRO_BASE,
        OPT_DTO_BASE,
        OPT_BITRATE,
        OPT_BUS_TIMING,
        OPT_FLASH_TIMING,
        OPT_DROP,
        OPT_CORRUPT,
        OPT_SEED,
        OPT_SILENT,
        OPT_POWER_CUT,
        OPT_STALL,
        OPT_FLASH_FAULT,
        OPT_NO_GROUP,
        OPT_NO_BLOCK,
        OPT_GROUP_LOSS,
        OPT_ADAPTER_LATENCY,
        OPT_SEEDKEY,
        OPT_LAYOUT,
        OPT_APP_FAILS,
        OPT_APP_NO_CONFIRM,
        OPT_LOG_FRAMES,
        OPT_QUIET,
        OPT_READY_FD,
        OPT_SHOW,
        OPT_JSON,
        OPT_PROTOCOL,
        OPT_PART,
        OPT_RESET_ON_OPEN,
        OPT_PINS,
        OPT_HELP,
        OPT_VERSION,
};

static const struct option long_options[] = {
    {"bus", required_argument, NULL, OPT_BUS},
    {"nodes", required_argument, NULL, OPT_NODES},
    {"state", required_argument, NULL, OPT_STATE},
    {"fleet-key", required_argument, NULL, OPT_FLEET_KEY},
    {"install", required_argument, NULL, OPT_INSTALL},
    {"hw-id", required_argument, NULL, OPT_HW_ID},
    {"cro-base", required_argument, NULL, OPT_CRO_BASE},
    {"dto-base", required_argument, NULL, OPT_DTO_BASE},
    {"bitrate", required_argument, NULL, OPT_BITRATE},
    {"bus-timing", no_argument, NULL, OPT_BUS_TIMING},
    {"flash-timing", no_argument, NULL, OPT_FLASH_TIMING},
    {"drop", required_argument, NULL, OPT_DROP},
    {"corrupt", required_argument, NULL, OPT_CORRUPT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"silent", required_argument, NULL, OPT_SILENT},
    {"power-cut", required_argument, NULL, OPT_POWER_CUT},
    {"stall", required_argument, NULL, OPT_STALL},
    {"flash-fault", required_argument, NULL, OPT_FLASH_FAULT},
    {"no-group", required_argument, NULL, OPT_NO_GROUP},
    {"no-block-check", required_argument, NULL, OPT_NO_BLOCK},
    {"group-loss", required_argument, NULL, OPT_GROUP_LOSS},
    {"adapter-latency-us", required_argument, NULL, OPT_ADAPTER_LATENCY},
    {"seedkey", required_argument, NULL, OPT_SEEDKEY},
    {"layout", required_argument, NULL, OPT_LAYOUT},
    {"app-fails-after-update", optional_argument, NULL, OPT_APP_FAILS},
    {"app-no-confirm", optional_argument, NULL, OPT_APP_NO_CONFIRM},
    {"log-frames", no_argument, NULL, OPT_LOG_FRAMES},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"ready-fd", required_argument, NULL, OPT_READY_FD},
    {"show", no_argument, NULL, OPT_SHOW},
    {"json", no_argument, NULL, OPT_JSON},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"part", required_argument, NULL, OPT_PART},
    {"reset-on-open", no_argument, NULL, OPT_RESET_ON_OPEN},
    {"pins", required_argument, NULL, OPT_PINS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

void sim_options_help(void)
{
        printf(
            "Usage: canfleet-nodesim --bus slcan:PATH|socketcan:IFNAME [--bus ...] --nodes N --state DIR\n"
            "                        (--fleet-key FILE | --seedkey echo) [OPTIONS]\n"
            "       canfleet-nodesim --bus serial:PATH --protocol lpc-isp|adi-uart --state DIR [--part P]\n"
            "                        [--drop P] [--corrupt P] [--seed N] [--power-cut N[,torn][,off]]\n"
            "                        [--stall N:MS] [--reset-on-open] [--pins SOCKET]\n"
            "       canfleet-nodesim --state DIR --show [--json]\n"
            "\n"
            "Simulates CAN nodes running the canfleet bootloader and CCP slave, or one chip's ROM\n"
            "serial loader (NXP LPC17xx ISP, ADI ADuCM36x AN-1160) on a pseudo-terminal.\n"
            "\n"
            "  --bus slcan:PATH        a bus behind a simulated SLCAN adapter: PATH becomes a symlink\n"
            "                          to a new pseudo-terminal\n"
            "  --bus socketcan:IFNAME  a bus on a SocketCAN interface (raw socket)\n"
            "  --bus serial:PATH       one chip on a UART: PATH becomes a symlink to a new pseudo-\n"
            "                          terminal; its flash is DIR/<name>.bin, its loader state\n"
            "                          DIR/<name>.json (name = basename of PATH without '@baud')\n"
            "  --protocol lpc-isp|adi-uart\n"
            "                          the serial chip's loader (required with serial:)\n"
            "  --part P                lpc-isp: LPC1768 (default) or another LPC17xx name or part id;\n"
            "                          adi-uart: ADuCM360 (default) or ADuCM361\n"
            "  --reset-on-open         serial: the chip resets into its loader whenever the host\n"
            "                          opens the pty (DTR wired to reset); SIGUSR1 resets it too\n"
            "  --pins SOCKET           serial: the chip follows its RESET and boot pins, whose levels\n"
            "                          arrive as datagrams \"RESET=0|1 BOOT=0|1\" on this unix socket\n"
            "                          (tests/serial-shim): RESET low holds it silent in reset; its\n"
            "                          rise starts the loader with BOOT low, else the application\n"
            "  --nodes N               station addresses 1..N on every bus\n"
            "  --state DIR             node flash files DIR/<bus>-<sa>.flash (bus = basename of the\n"
            "                          slcan PATH without '@baud', or IFNAME); kept across runs\n"
            "  --fleet-key FILE        64 hex characters; node_secret = HMAC(fleet key, uid)\n"
            "  --seedkey echo|hmac     echo: the seed demo's key (00 00 seed), no fleet key needed\n"
            "  --seedkey echo:SA       only node SA runs the seed's demo firmware (echo key, no\n"
            "                          group transfer); the others use the fleet key (repeatable)\n"
            "  --install FILE          put this packed 256 KB image into B of every node without a\n"
            "                          valid application (factory programming); f7-dual-bank: into\n"
            "                          the bank it is linked for, which then boots\n"
            "  --layout f4-copy|f7-dual-bank\n");
        printf(
            "                          the node kind (default f4-copy): an STM32F405/407 whose\n"
            "                          bootloader copies C to B, or an STM32F767 in dual-bank mode that\n"
            "                          receives into its inactive bank, flips BOOT_ADD0 and boots it on\n"
            "                          trial (option-byte writes are flash operations for --power-cut)\n"
            "  --app-fails-after-update[=SA]\n"
            "                          f7-dual-bank: the application of node SA (default every node)\n"
            "                          crashes 250 ms after a new bank booted, before it would confirm\n"
            "                          (500 ms): the node reverts to the previous bank (repeatable)\n"
            "  --app-no-confirm[=SA]   f7-dual-bank: the application of node SA (default every node)\n"
            "                          runs healthily but never confirms its trial itself: only a\n"
            "                          gateway's CCP CONFIRM (0xCF10) does; a reset before that\n"
            "                          reverts (repeatable)\n"
            "  --hw-id ID              hardware id of the nodes (default 0x0001)\n"
            "  --cro-base ID           CRO id = base + station (default 0x680)\n"
            "  --dto-base ID           DTO id = base + station (default 0x6C0)\n"
            );
        /* two strings: ISO C caps one literal at 4095 characters */
        printf(
            "  --bitrate BPS           bus bitrate for the timing model (default 500000; SLCAN 'Sn'\n"
            "                          changes it)\n"
            "  --bus-timing            deliver frames only when the bus would have sent them (exact\n"
            "                          bit length with stuff bits, one frame at a time)\n"
            "  --flash-timing          erase 8 ms per KB, program 16 us per word\n"
            "  --drop P                lose a fraction P of the frames (both directions); serial:\n"
            "                          of the bytes\n"
            "  --corrupt P             flip one data bit in a fraction P of the frames; serial: one\n"
            "                          bit in a fraction P of the bytes, each direction\n"
            "  --seed N                seed of the fault injection (default: random, printed)\n"
            "  --silent SA             node SA is disconnected from the bus (repeatable)\n"
            "  --power-cut N[:SA][,torn][,after-reset][,off]\n"
            "                          cut the power of node SA (default every node) at its Nth\n"
            "                          flash operation, counted from start-up (after-reset: from\n"
            "                          its first software reset); torn: that operation half\n"
            "                          happens; power returns ~100 ms later (off: never); serial:\n"
            "                          N counts the chip's flash operations (LPC: each sector\n"
            "                          erased, each C; ADI: each page erase, mass erase, W), no SA\n"
            "  --stall N:MS[:BUS]      the SLCAN adapter of BUS (default every slcan bus) freezes for\n"
            "                          MS ms right after the host's Nth frame went on the bus (frames\n"
            "                          counted from start-up): what the host writes meanwhile and the\n"
            "                          frames for the host are lost; then it resumes (repeatable);\n"
            "                          serial: the chip freezes after the host's Nth command (LPC\n"
            "                          line, ADI packet), no BUS\n"
            "  --flash-fault install[:SA]\n"
            "                          every flash program operation of the boot install (C copied to\n"
            "                          B) fails on node SA (default every node), writing nothing, as\n"
            "                          an STM32F4 programming error; erasing B still works (repeatable)\n");
        /* Two strings: one would pass the 4095 characters C99 promises. */
        printf(
            "  --no-group SA|all       node SA (or every node) has an older bootloader without the group\n"
            "                          transfer: ACTION_SERVICE answers 'unknown command', as with\n"
            "                          --seedkey echo (the seed's demo firmware) (repeatable)\n"
            "  --no-block-check SA|all node SA (or every node) has a bootloader with the group transfer\n"
            "                          but without checked blocks: BLOCK_MODE/BLOCK_CHECK answer 'out of\n"
            "                          range' (an unknown service) (repeatable)\n"
            "  --group-loss SA:P       node SA misses a fraction P of the group frames it should take\n"
            "                          (its receive FIFO overran); the others get them (repeatable)\n"
            "  --adapter-latency-us N  every SLCAN frame host->bus and bus->host is delayed N us, as\n"
            "                          by a USB adapter (0..1000000)\n"
            "  --log-frames            print every frame on stderr\n"
            "  --quiet                 do not print the nodes' own log messages\n"
            "  --ready-fd FD           write \"ready\\n\" to FD and close it once every pty exists and\n"
            "                          every node has finished booting (default: that line on stdout)\n"
            "  --show [--json]         print the node RAM the group transfer costs, the state of the\n"
            "                          nodes in DIR, and exit\n"
            "  --help, --version\n"
            "\n"
            "SIGTERM/SIGINT: flash files synced, pty symlinks removed, exit 0. SIGUSR1 (serial): reset\n"
            "the chip into its loader. Bad arguments: exit 2.\n");
}

static int bad(const char *opt, const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "canfleet-nodesim: %s: ", opt);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -EINVAL;
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
        char *end;
        if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 0);
        if (errno || *end || v > max)
                return -EINVAL;
        *out = v;
        return 0;
}

static int parse_prob(const char *s, double *out)
{
        char *end;
        if (!s || !*s)
                return -EINVAL;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || *end || !(v >= 0.0 && v <= 1.0))
                return -EINVAL;
        *out = v;
        return 0;
}

char *sim_bus_name_of(const char *path)
{
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t len = strcspn(base, "@");
        char *name = strndup(base, len);
        if (!name)
                return NULL;
        for (char *c = name; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '.' || *c == '_' || *c == '-'))
                        *c = '_';
        return name;
}

static int parse_bus(struct sim_options *o, const char *arg)
{
        struct sim_bus_spec *b;
        const char *rest;

        if (o->n_buses >= SIM_MAX_BUSES)
                return bad("--bus", "at most %u buses", SIM_MAX_BUSES);
        b = &o->buses[o->n_buses];
        if (strncmp(arg, "slcan:", 6) == 0) {
                b->kind = SIM_PORT_SLCAN;
                rest = arg + 6;
        } else if (strncmp(arg, "socketcan:", 10) == 0) {
                b->kind = SIM_PORT_SOCKETCAN;
                rest = arg + 10;
        } else if (strncmp(arg, "serial:", 7) == 0) {
                b->kind = SIM_PORT_SERIAL;
                rest = arg + 7;
        } else {
                return bad("--bus", "'%s' is neither slcan:PATH, socketcan:IFNAME nor serial:PATH", arg);
        }
        if (!*rest)
                return bad("--bus", "'%s': empty path or interface name", arg);
        /* the daemon's "slcan:/dev/ttyX@baud" syntax: a pty has no baud rate */
        b->path = strndup(rest, b->kind != SIM_PORT_SOCKETCAN ? strcspn(rest, "@") : strlen(rest));
        b->name = sim_bus_name_of(rest);
        if (!b->path || !b->name)
                return bad("--bus", "out of memory");
        if (!*b->path || !*b->name || strcmp(b->name, ".") == 0 || strcmp(b->name, "..") == 0)
                return bad("--bus", "'%s': no usable name", arg);
        o->n_buses++;
        for (unsigned i = 0; i + 1 < o->n_buses; i++)
                if (strcmp(o->buses[i].name, b->name) == 0)
                        return bad("--bus", "two buses named '%s' would share flash files", b->name);
        return 0;
}

/* N:MS[:BUS] */
static int parse_stall(struct sim_options *o, const char *arg)
{
        if (o->n_stalls >= SIM_MAX_STALLS)
                return bad("--stall", "at most %u", SIM_MAX_STALLS);
        char *copy = strdup(arg);
        if (!copy)
                return bad("--stall", "out of memory");
        int r = 0;
        unsigned long n, ms;
        char *ms_s = strchr(copy, ':');
        char *bus = ms_s ? strchr(ms_s + 1, ':') : NULL;
        if (ms_s)
                *ms_s++ = '\0';
        if (bus)
                *bus++ = '\0';
        if (!ms_s || parse_ulong(copy, ULONG_MAX, &n) < 0 || n == 0) {
                r = bad("--stall", "'%s': expected N:MS[:BUS], N a host frame number from 1", arg);
                goto out;
        }
        if (parse_ulong(ms_s, 3600000, &ms) < 0 || ms == 0) {
                r = bad("--stall", "'%s': MS must be 1..3600000 milliseconds", arg);
                goto out;
        }
        if (bus && !*bus) {
                r = bad("--stall", "'%s': empty bus name", arg);
                goto out;
        }
        struct sim_stall_spec *st = &o->stalls[o->n_stalls];
        *st = (struct sim_stall_spec){.after_frame = n, .ms = (uint32_t) ms};
        if (bus) {
                st->bus = strdup(bus);
                if (!st->bus) {
                        r = bad("--stall", "out of memory");
                        goto out;
                }
        }
        o->n_stalls++;
out:
        free(copy);
        return r;
}

/* SA of --seedkey echo:SA */
static int parse_echo_node(struct sim_options *o, const char *arg)
{
        unsigned long sa = 0;
        if (parse_ulong(arg, SIM_MAX_NODES, &sa) < 0 || sa == 0)
                return bad("--seedkey", "'echo:%s': expected a station address after 'echo:'", arg);
        if (o->n_echo_nodes >= SIM_MAX_NODES)
                return bad("--seedkey", "too many");
        o->echo_nodes[o->n_echo_nodes++] = (uint16_t) sa;
        return 0;
}

/* SA|all */
static int parse_no_group(struct sim_options *o, const char *arg)
{
        unsigned long sa = 0;
        if (strcmp(arg, "all") != 0 && (parse_ulong(arg, SIM_MAX_NODES, &sa) < 0 || sa == 0))
                return bad("--no-group", "'%s': expected a station address or 'all'", arg);
        if (o->n_no_group >= SIM_MAX_NODES)
                return bad("--no-group", "too many");
        o->no_group[o->n_no_group++] = (uint16_t) sa;
        return 0;
}

/* SA|all */
static int parse_no_block(struct sim_options *o, const char *arg)
{
        unsigned long sa = 0;
        if (strcmp(arg, "all") != 0 && (parse_ulong(arg, SIM_MAX_NODES, &sa) < 0 || sa == 0))
                return bad("--no-block-check", "'%s': expected a station address or 'all'", arg);
        if (o->n_no_block >= SIM_MAX_NODES)
                return bad("--no-block-check", "too many");
        o->no_block[o->n_no_block++] = (uint16_t) sa;
        return 0;
}

/* SA:P */
static int parse_group_loss(struct sim_options *o, const char *arg)
{
        unsigned long sa;
        const char *colon = strchr(arg, ':');
        char buf[16];
        if (!colon || (size_t) (colon - arg) >= sizeof(buf))
                return bad("--group-loss", "'%s': expected SA:P", arg);
        memcpy(buf, arg, (size_t) (colon - arg));
        buf[colon - arg] = '\0';
        if (parse_ulong(buf, SIM_MAX_NODES, &sa) < 0 || sa == 0)
                return bad("--group-loss", "'%s': bad station address", arg);
        if (o->n_group_loss >= SIM_MAX_NODES)
                return bad("--group-loss", "too many");
        if (parse_prob(colon + 1, &o->group_loss[o->n_group_loss].p) < 0)
                return bad("--group-loss", "'%s': P is not a fraction between 0 and 1", arg);
        o->group_loss[o->n_group_loss++].sa = (uint16_t) sa;
        return 0;
}

/* install[:SA] */
static int parse_flash_fault(struct sim_options *o, const char *arg)
{
        unsigned long sa = 0;
        if (strncmp(arg, "install", 7) != 0 || (arg[7] != '\0' && arg[7] != ':'))
                return bad("--flash-fault", "'%s': expected install[:SA]", arg);
        if (arg[7] == ':' && (parse_ulong(arg + 8, SIM_MAX_NODES, &sa) < 0 || sa == 0))
                return bad("--flash-fault", "'%s': bad station address", arg);
        if (o->n_install_faults >= SIM_MAX_NODES)
                return bad("--flash-fault", "too many");
        o->install_faults[o->n_install_faults++] = (uint16_t) sa;
        return 0;
}

static int parse_cut(struct sim_options *o, const char *arg)
{
        if (o->n_cuts >= SIM_MAX_CUTS)
                return bad("--power-cut", "at most %u", SIM_MAX_CUTS);
        struct sim_cut_spec *c = &o->cuts[o->n_cuts];
        *c = (struct sim_cut_spec){0};

        char *copy = strdup(arg);
        if (!copy)
                return bad("--power-cut", "out of memory");
        int r = 0;
        char *save = NULL;
        char *tok = strtok_r(copy, ",", &save);
        if (!tok) {
                r = bad("--power-cut", "'%s': expected N[:SA][,torn][,after-reset][,off]", arg);
                goto out;
        }
        char *colon = strchr(tok, ':');
        if (colon)
                *colon = '\0';
        unsigned long n, sa = 0;
        if (parse_ulong(tok, ULONG_MAX, &n) < 0 || n == 0) {
                r = bad("--power-cut", "'%s': N must be a flash operation number from 1", arg);
                goto out;
        }
        if (colon && (parse_ulong(colon + 1, SIM_MAX_NODES, &sa) < 0 || sa == 0)) {
                r = bad("--power-cut", "'%s': bad station address", arg);
                goto out;
        }
        c->cut.at_op = n;
        c->sa = (uint16_t) sa;
        while ((tok = strtok_r(NULL, ",", &save))) {
                if (strcmp(tok, "torn") == 0)
                        c->cut.torn = true;
                else if (strcmp(tok, "after-reset") == 0)
                        c->cut.after_reset = true;
                else if (strcmp(tok, "off") == 0)
                        c->cut.stay_off = true;
                else {
                        r = bad("--power-cut", "'%s': unknown flag '%s'", arg, tok);
                        goto out;
                }
        }
        o->n_cuts++;
out:
        free(copy);
        return r;
}

/* A serial chip is one process: one bus, its protocol, and only the options that mean something on
 * a UART (the CAN node options are refused rather than ignored). */
static int check_serial(struct sim_options *o, bool nodes_set)
{
        if (o->n_buses != 1)
                return bad("--bus", "serial:PATH simulates one chip: no other --bus with it");
        if (o->protocol == SIM_PROTO_NONE)
                return bad("--protocol", "required with --bus serial:PATH (lpc-isp or adi-uart)");
        if (nodes_set || o->fleet_key_file || o->install_file || o->n_silent || o->n_install_faults ||
            o->n_no_group || o->n_echo_nodes || o->n_group_loss || o->adapter_latency_us || o->bus_timing ||
            o->flash_timing)
                return bad(nodes_set               ? "--nodes"
                           : o->fleet_key_file     ? "--fleet-key"
                           : o->install_file       ? "--install"
                           : o->n_silent           ? "--silent"
                           : o->n_install_faults   ? "--flash-fault"
                           : o->n_no_group         ? "--no-group"
                           : o->n_echo_nodes       ? "--seedkey"
                           : o->n_group_loss       ? "--group-loss"
                           : o->adapter_latency_us ? "--adapter-latency-us"
                           : o->bus_timing         ? "--bus-timing"
                                                   : "--flash-timing",
                           "is for CAN nodes, not with --bus serial:PATH");
        for (unsigned i = 0; i < o->n_cuts; i++) {
                if (o->cuts[i].sa != 0)
                        return bad("--power-cut", "a serial bus has one chip: N[,torn][,off] without :SA");
                if (o->cuts[i].cut.after_reset)
                        return bad("--power-cut", "after-reset is for CAN nodes");
        }
        for (unsigned i = 0; i < o->n_stalls; i++)
                if (o->stalls[i].bus)
                        return bad("--stall", "a serial bus has one chip: N:MS without :BUS");
        return 0;
}

int sim_options_parse(struct sim_options *o, int argc, char **argv)
{
        unsigned long v;
        bool nodes_set = false;

        *o = (struct sim_options){
            .hw_id = 0x0001,
            .cro_base = CF_CCP_CRO_BASE_DEFAULT,
            .dto_base = CF_CCP_DTO_BASE_DEFAULT,
            .bitrate = 500000,
            .ready_fd = -1,
        };

        opterr = 0;
        optind = 1;
        for (;;) {
                int c = getopt_long(argc, argv, "h", long_options, NULL);
                if (c < 0)
                        break;
                const char *name = optind > 1 && optind - 1 < argc ? argv[optind - 1] : "?";
                switch (c) {
                case OPT_BUS:
                        if (parse_bus(o, optarg) < 0)
                                return -EINVAL;
                        break;
                case OPT_NODES:
                        if (parse_ulong(optarg, SIM_MAX_NODES, &v) < 0 || v == 0)
                                return bad("--nodes", "'%s' is not a number of nodes (1..%u)", optarg,
                                           SIM_MAX_NODES);
                        o->nodes = (unsigned) v;
                        nodes_set = true;
                        break;
                case OPT_STATE:
                        o->state_dir = optarg;
                        break;
                case OPT_FLEET_KEY:
                        o->fleet_key_file = optarg;
                        break;
                case OPT_INSTALL:
                        o->install_file = optarg;
                        break;
                case OPT_HW_ID:
                        if (parse_ulong(optarg, 0xFFFF, &v) < 0)
                                return bad("--hw-id", "'%s' is not a 16-bit hardware id", optarg);
                        o->hw_id = (uint16_t) v;
                        break;
                case OPT_CRO_BASE:
                case OPT_DTO_BASE:
                        if (parse_ulong(optarg, CF_CAN_SFF_MAX, &v) < 0)
                                return bad(c == OPT_CRO_BASE ? "--cro-base" : "--dto-base",
                                           "'%s' is not an 11-bit CAN id", optarg);
                        *(c == OPT_CRO_BASE ? &o->cro_base : &o->dto_base) = (uint32_t) v;
                        break;
                case OPT_BITRATE:
                        if (parse_ulong(optarg, 1000000, &v) < 0 || v < 1000)
                                return bad("--bitrate", "'%s' is not a bitrate (1000..1000000)", optarg);
                        o->bitrate = (uint32_t) v;
                        break;
                case OPT_BUS_TIMING:
                        o->bus_timing = true;
                        break;
                case OPT_FLASH_TIMING:
                        o->flash_timing = true;
                        break;
                case OPT_DROP:
                        if (parse_prob(optarg, &o->drop) < 0)
                                return bad("--drop", "'%s' is not a fraction between 0 and 1", optarg);
                        break;
                case OPT_CORRUPT:
                        if (parse_prob(optarg, &o->corrupt) < 0)
                                return bad("--corrupt", "'%s' is not a fraction between 0 and 1", optarg);
                        break;
                case OPT_SEED:
                        if (parse_ulong(optarg, ULONG_MAX, &v) < 0)
                                return bad("--seed", "'%s' is not a number", optarg);
                        o->seed = v;
                        o->seed_set = true;
                        break;
                case OPT_SILENT:
                        if (parse_ulong(optarg, SIM_MAX_NODES, &v) < 0 || v == 0)
                                return bad("--silent", "'%s' is not a station address", optarg);
                        if (o->n_silent >= SIM_MAX_NODES)
                                return bad("--silent", "too many");
                        o->silent[o->n_silent++] = (uint16_t) v;
                        break;
                case OPT_POWER_CUT:
                        if (parse_cut(o, optarg) < 0)
                                return -EINVAL;
                        break;
                case OPT_STALL:
                        if (parse_stall(o, optarg) < 0)
                                return -EINVAL;
                        break;
                case OPT_FLASH_FAULT:
                        if (parse_flash_fault(o, optarg) < 0)
                                return -EINVAL;
                        break;
                case OPT_NO_GROUP:
                        if (parse_no_group(o, optarg) < 0)
                                return -EINVAL;
                        break;
                case OPT_NO_BLOCK:
                        if (parse_no_block(o, optarg) < 0)
                                return -EINVAL;
                        break;
                case OPT_GROUP_LOSS:
                        if (parse_group_loss(o, optarg) < 0)
                                return -EINVAL;
                        break;
                case OPT_ADAPTER_LATENCY:
                        if (parse_ulong(optarg, 1000000, &v) < 0)
                                return bad("--adapter-latency-us", "'%s': expected 0..1000000 microseconds",
                                           optarg);
                        o->adapter_latency_us = (uint32_t) v;
                        break;
                case OPT_SEEDKEY:
                        if (strncmp(optarg, "echo:", 5) == 0) {
                                if (parse_echo_node(o, optarg + 5) < 0)
                                        return -EINVAL;
                        } else if (strcmp(optarg, "echo") == 0)
                                o->seedkey_echo = true;
                        else if (strcmp(optarg, "hmac") == 0)
                                o->seedkey_echo = false;
                        else
                                return bad("--seedkey", "'%s': expected echo, hmac or echo:SA", optarg);
                        break;
                case OPT_LAYOUT:
                        if (strcmp(optarg, "f4-copy") == 0)
                                o->dual_bank = false;
                        else if (strcmp(optarg, "f7-dual-bank") == 0)
                                o->dual_bank = true;
                        else
                                return bad("--layout", "'%s': expected f4-copy or f7-dual-bank", optarg);
                        break;
                case OPT_APP_FAILS:
                        v = 0;
                        if (optarg && (parse_ulong(optarg, SIM_MAX_NODES, &v) < 0 || v == 0))
                                return bad("--app-fails-after-update", "'%s' is not a station address", optarg);
                        if (o->n_app_fails >= SIM_MAX_NODES)
                                return bad("--app-fails-after-update", "too many");
                        o->app_fails[o->n_app_fails++] = (uint16_t) v;
                        break;
                case OPT_APP_NO_CONFIRM:
                        v = 0;
                        if (optarg && (parse_ulong(optarg, SIM_MAX_NODES, &v) < 0 || v == 0))
                                return bad("--app-no-confirm", "'%s' is not a station address", optarg);
                        if (o->n_app_no_confirm >= SIM_MAX_NODES)
                                return bad("--app-no-confirm", "too many");
                        o->app_no_confirm[o->n_app_no_confirm++] = (uint16_t) v;
                        break;
                case OPT_LOG_FRAMES:
                        o->log_frames = true;
                        break;
                case OPT_QUIET:
                        o->quiet = true;
                        break;
                case OPT_READY_FD:
                        if (parse_ulong(optarg, INT_MAX, &v) < 0 || v < 3)
                                return bad("--ready-fd", "'%s' is not a file descriptor above 2", optarg);
                        o->ready_fd = (int) v;
                        break;
                case OPT_SHOW:
                        o->show = true;
                        break;
                case OPT_PROTOCOL:
                        if (strcmp(optarg, "lpc-isp") == 0)
                                o->protocol = SIM_PROTO_LPC_ISP;
                        else if (strcmp(optarg, "adi-uart") == 0)
                                o->protocol = SIM_PROTO_ADI_UART;
                        else
                                return bad("--protocol", "'%s': expected lpc-isp or adi-uart", optarg);
                        break;
                case OPT_PART:
                        o->part = optarg;
                        break;
                case OPT_RESET_ON_OPEN:
                        o->reset_on_open = true;
                        break;
                case OPT_PINS:
                        if (!optarg[0] || strlen(optarg) >= 108)
                                return bad("--pins", "'%s' is not a unix socket path (at most 107 bytes)",
                                           optarg);
                        o->pins = optarg;
                        break;
                case OPT_JSON:
                        o->json = true;
                        break;
                case 'h':
                case OPT_HELP:
                        o->help = true;
                        return 0;
                case OPT_VERSION:
                        o->version = true;
                        return 0;
                case ':':
                        return bad(name, "needs an argument");
                default:
                        if (optopt >= OPT_BUS && optopt <= OPT_VERSION)
                                return bad(name, "needs an argument");
                        return bad(name, "unknown option");
                }
        }
        if (optind < argc)
                return bad(argv[optind], "unexpected argument");

        if (!o->state_dir)
                return bad("--state", "a state directory is required");
        if (o->show) {
                if (o->n_buses > 0)
                        return bad("--show", "reads the state directory only; no --bus with it");
                return 0;
        }
        if (o->json)
                return bad("--json", "only with --show");
        if (o->n_buses == 0)
                return bad("--bus", "at least one bus is required");
        bool serial = false;
        for (unsigned k = 0; k < o->n_buses; k++)
                serial |= o->buses[k].kind == SIM_PORT_SERIAL;
        if (serial)
                return check_serial(o, nodes_set);
        if (o->protocol != SIM_PROTO_NONE || o->part || o->reset_on_open || o->pins)
                return bad(o->protocol != SIM_PROTO_NONE ? "--protocol"
                           : o->part                     ? "--part"
                           : o->reset_on_open            ? "--reset-on-open"
                                                         : "--pins",
                           "only with --bus serial:PATH");
        if (!nodes_set)
                return bad("--nodes", "the number of nodes per bus is required");
        if (!o->fleet_key_file && !o->seedkey_echo)
                return bad("--fleet-key", "required (or --seedkey echo for the seed demo's key)");
        if (o->cro_base + o->nodes > CF_CAN_SFF_MAX || o->dto_base + o->nodes > CF_CAN_SFF_MAX)
                return bad("--nodes", "%u nodes do not fit in 11-bit ids above the bases", o->nodes);
        if (o->cro_base + o->nodes >= o->dto_base + 1 && o->dto_base + o->nodes >= o->cro_base + 1)
                return bad("--nodes",
                           "CRO ids 0x%X..0x%X overlap DTO ids 0x%X..0x%X (--cro-base, --dto-base)",
                           o->cro_base + 1, o->cro_base + o->nodes, o->dto_base + 1, o->dto_base + o->nodes);
        for (unsigned i = 0; i < o->n_silent; i++)
                if (o->silent[i] > o->nodes)
                        return bad("--silent", "station %u does not exist (--nodes %u)", o->silent[i],
                                   o->nodes);
        for (unsigned i = 0; i < o->n_cuts; i++)
                if (o->cuts[i].sa > o->nodes)
                        return bad("--power-cut", "station %u does not exist (--nodes %u)", o->cuts[i].sa,
                                   o->nodes);
        for (unsigned i = 0; i < o->n_install_faults; i++)
                if (o->install_faults[i] > o->nodes)
                        return bad("--flash-fault", "station %u does not exist (--nodes %u)",
                                   o->install_faults[i], o->nodes);
        for (unsigned i = 0; i < o->n_echo_nodes; i++)
                if (o->echo_nodes[i] > o->nodes)
                        return bad("--seedkey", "echo:%u: station %u does not exist (--nodes %u)",
                                   o->echo_nodes[i], o->echo_nodes[i], o->nodes);
        for (unsigned i = 0; i < o->n_no_group; i++)
                if (o->no_group[i] > o->nodes)
                        return bad("--no-group", "station %u does not exist (--nodes %u)", o->no_group[i],
                                   o->nodes);
        if (o->n_app_fails > 0 && !o->dual_bank)
                return bad("--app-fails-after-update", "only a dual-bank node confirms an update: --layout f7-dual-bank");
        if (o->n_install_faults > 0 && o->dual_bank)
                return bad("--flash-fault", "a dual-bank node installs nothing by copying: --layout f4-copy only");
        for (unsigned i = 0; i < o->n_app_fails; i++)
                if (o->app_fails[i] > o->nodes)
                        return bad("--app-fails-after-update", "station %u does not exist (--nodes %u)",
                                   o->app_fails[i], o->nodes);
        if (o->n_app_no_confirm > 0 && !o->dual_bank)
                return bad("--app-no-confirm", "only a dual-bank node confirms an update: --layout f7-dual-bank");
        for (unsigned i = 0; i < o->n_app_no_confirm; i++)
                if (o->app_no_confirm[i] > o->nodes)
                        return bad("--app-no-confirm", "station %u does not exist (--nodes %u)",
                                   o->app_no_confirm[i], o->nodes);
        for (unsigned i = 0; i < o->n_no_block; i++)
                if (o->no_block[i] > o->nodes)
                        return bad("--no-block-check", "station %u does not exist (--nodes %u)", o->no_block[i],
                                   o->nodes);
        for (unsigned i = 0; i < o->n_group_loss; i++)
                if (o->group_loss[i].sa > o->nodes)
                        return bad("--group-loss", "station %u does not exist (--nodes %u)",
                                   o->group_loss[i].sa, o->nodes);
        if (o->adapter_latency_us > 0) {
                bool slcan = false;
                for (unsigned k = 0; k < o->n_buses; k++)
                        slcan |= o->buses[k].kind == SIM_PORT_SLCAN;
                if (!slcan)
                        return bad("--adapter-latency-us",
                                   "only an SLCAN adapter has one: no --bus slcan:PATH");
        }
        for (unsigned i = 0; i < o->n_stalls; i++) {
                const char *want = o->stalls[i].bus;
                bool slcan = false, found = !want;
                for (unsigned k = 0; k < o->n_buses; k++) {
                        if (o->buses[k].kind != SIM_PORT_SLCAN)
                                continue;
                        slcan = true;
                        if (want && strcmp(o->buses[k].name, want) == 0)
                                found = true;
                }
                if (!slcan)
                        return bad("--stall", "only an SLCAN adapter stalls: no --bus slcan:PATH");
                if (!found)
                        return bad("--stall", "no slcan bus named '%s'", want);
        }
        return 0;
}

void sim_options_free(struct sim_options *o)
{
        for (unsigned i = 0; i < o->n_buses; i++) {
                free(o->buses[i].path);
                free(o->buses[i].name);
        }
        o->n_buses = 0;
        for (unsigned i = 0; i < o->n_stalls; i++)
                free(o->stalls[i].bus);
        o->n_stalls = 0;
}
