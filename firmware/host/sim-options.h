/* canfleet-nodesim's command line: parsed and checked into one struct, nothing opened yet. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sim-frame.h"
#include "sim-node.h"

enum sim_port_kind {
        SIM_PORT_SLCAN,
        SIM_PORT_SOCKETCAN,
        SIM_PORT_SERIAL, /* one chip's ROM loader on a pty: --protocol */
};

enum sim_protocol {
        SIM_PROTO_NONE,
        SIM_PROTO_LPC_ISP,
        SIM_PROTO_ADI_UART,
};

struct sim_bus_spec {
        enum sim_port_kind kind;
        char *path; /* slcan, serial: the symlink to create; socketcan: the interface */
        char *name; /* bus name in file names and logs: basename of the path / the ifname */
};

struct sim_cut_spec {
        uint16_t sa; /* 0 = every node */
        struct sim_power_cut cut;
};

struct sim_stall_spec {
        uint64_t after_frame; /* N: the host's Nth frame, counted from start-up */
        uint32_t ms;
        char *bus; /* bus name; NULL = every slcan bus */
};

#define SIM_MAX_STALLS 64u
#define SIM_MAX_BUSES 16u
#define SIM_MAX_CUTS  64u
#define SIM_MAX_NODES 1024u

struct sim_options {
        struct sim_bus_spec buses[SIM_MAX_BUSES];
        unsigned n_buses;
        unsigned nodes;
        const char *state_dir;
        const char *fleet_key_file;
        const char *install_file;
        uint16_t hw_id;
        uint32_t cro_base, dto_base;
        uint32_t bitrate;
        bool bus_timing, flash_timing;
        double drop, corrupt;
        uint64_t seed;
        bool seed_set;
        uint16_t silent[SIM_MAX_NODES];
        unsigned n_silent;
        struct sim_cut_spec cuts[SIM_MAX_CUTS];
        unsigned n_cuts;
        struct sim_stall_spec stalls[SIM_MAX_STALLS];
        unsigned n_stalls;
        uint16_t install_faults[SIM_MAX_NODES]; /* station addresses, 0 = every node */
        unsigned n_install_faults;
        uint16_t no_group[SIM_MAX_NODES]; /* --no-group: station addresses, 0 = every node */
        unsigned n_no_group;
        uint16_t no_block[SIM_MAX_NODES]; /* --no-block-check: station addresses, 0 = every node */
        unsigned n_no_block;
        struct {
                uint16_t sa;
                double p;
        } group_loss[SIM_MAX_NODES];
        unsigned n_group_loss;
        uint32_t adapter_latency_us;
        bool dual_bank; /* --layout f7-dual-bank */
        uint16_t app_fails[SIM_MAX_NODES]; /* --app-fails-after-update: station addresses, 0 = every node */
        unsigned n_app_fails;
        uint16_t app_no_confirm[SIM_MAX_NODES]; /* --app-no-confirm: station addresses, 0 = every node */
        unsigned n_app_no_confirm;
        bool seedkey_echo;
        uint16_t
            echo_nodes[SIM_MAX_NODES]; /* --seedkey echo:SA: the seed demo's firmware on these stations */
        unsigned n_echo_nodes;
        bool log_frames;
        bool quiet;
        int ready_fd; /* -1: "ready" on stdout */
        bool show, json;
        bool help, version;
        /* --bus serial:PATH */
        enum sim_protocol protocol;
        const char *part;
        bool reset_on_open;
        const char *pins; /* --pins SOCKET: the RESET and boot pins' levels arrive there */
};

/* Parse argv. On a usage error prints one line "canfleet-nodesim: --opt: what is wrong" to stderr
 * and returns -EINVAL (the caller exits 2). */
int sim_options_parse(struct sim_options *o, int argc, char **argv);
void sim_options_free(struct sim_options *o);
void sim_options_help(void);

/* Derive a bus name from a path or interface name: the last path component, '@baud' dropped,
 * characters other than [A-Za-z0-9._-] replaced by '_'.  "/tmp/x/ttyCF0@115200" -> "ttyCF0" */
char *sim_bus_name_of(const char *path);
