/* One simulated node: its flash file, its host HAL, the real portable node code, and its power. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "hal-host.h"
#include "node.h"
#include "sim-flash.h"

/* A planned power cut (--power-cut N[:SA][,torn][,after-reset][,off]). */
struct sim_power_cut {
        uint64_t at_op;   /* N: the Nth flash operation counted from when the cut is armed */
        bool torn;        /* the cut operation half happens (hal-host.h) */
        bool after_reset; /* armed at the node's first software reset instead of at start-up */
        bool stay_off;    /* the node stays dead until the simulator restarts */
};

#define SIM_POWER_UP_DELAY_US 100000u /* a brown-out and the supply coming back */

struct sim_node;
/* Where a node's transmitted frames go: the bus. -EAGAIN when the node's mailboxes are full. */
typedef int (*sim_node_send_fn)(void *ctx, struct sim_node *n, uint32_t id, const uint8_t *data,
                                uint8_t dlc);

struct sim_node {
        char name[48]; /* "<bus>-<sa>", the prefix of its log lines */
        uint16_t sa;
        struct cf_node_config cfg;
        struct sim_flash flash;
        struct cf_hal hal;
        struct cf_node node;
        bool silent; /* disconnected from the bus: hears nothing, says nothing */
        bool quiet;  /* don't print the node's own log messages */
        double group_loss;   /* --group-loss: fraction of group frames this node misses */
        uint64_t group_lost;
        uint64_t clock_at_us; /* non-zero: the node's clock while it takes a group frame */

        struct sim_power_cut cut;
        bool cut_pending;  /* cut configured, not yet armed */
        uint64_t cut_base; /* the HAL's operation count when the cut was armed */
        bool off;          /* no power */
        bool dead;         /* off for good (stay_off) */
        uint64_t power_up_at_us;
        uint64_t next_poll_us;
        unsigned tx_pending; /* frames of this node waiting for the bus (mailboxes) */

        sim_node_send_fn send;
        void *send_ctx;

        /* Dual-bank nodes (docs/design.md §9): the simulated application confirms its trial once it
         * ran SIM_APP_CONFIRM_US, or, with app_fails, crashes (resets) after SIM_APP_CRASH_US; with
         * app_no_confirm it runs healthily and never confirms by itself: only a master's CCP CONFIRM
         * (ACTION_SERVICE 0xCF10) does, which the node's log then names. */
        bool app_fails;
        bool app_no_confirm;
        bool app_said; /* app_no_confirm's line was printed for this boot */
        uint64_t app_since_us; /* when the application phase began (0: not running) */
};

#define SIM_APP_CONFIRM_US 500000u
#define SIM_APP_CRASH_US   250000u

uint64_t sim_now_us(void);

/* Open (or create) the node's flash file and set up the HAL; does not power it on yet. The layout
 * is cfg_template->dual_bank's; a file of the other layout: -EMEDIUMTYPE. */
int sim_node_init(struct sim_node *n, const char *path, const struct cf_node_config *cfg_template,
                  uint16_t sa, const uint8_t *fleet_key, bool flash_timing);
/* Put a packed 256 KB image into area B when B holds no valid image (first programming with the
 * factory programmer). 1 when installed, 0 when B was already valid. A dual-bank node takes it into
 * the bank it is linked for, when neither bank holds a valid application, and boots that bank;
 * -EINVAL for an image linked for neither. */
int sim_node_install(struct sim_node *n, const uint8_t *image);
/* Power-on: boot_count + 1 (persisted), HAL private state reset, cf_node_power_on(). */
void sim_node_power_on(struct sim_node *n, uint64_t now);
/* Poll when due; notices resets and power cuts. */
void sim_node_run(struct sim_node *n, uint64_t now);
/* A frame on the node's CRO id. */
void sim_node_rx(struct sim_node *n, const uint8_t *data, uint8_t dlc, uint64_t now);
/* A frame on the group id the node is a member of, that ended on the bus at at_us (0: now). */
void sim_node_rx_group(struct sim_node *n, const uint8_t *data, uint8_t dlc, uint64_t now, uint64_t at_us);
/* Does the node hear the bus right now? */
bool sim_node_listening(const struct sim_node *n);
void sim_node_fini(struct sim_node *n);
