/* canfleet-nodesim --bus serial:PATH: one chip's ROM loader (LPC ISP or ADI) on a pseudo-terminal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim-options.h"

/*
 * The chip: a flash file DIR/<name>.bin holding exactly the part's flash (raw, address 0 at offset
 * 0, 0xFF when erased; mapped shared, so every programmed byte is in the file at once and a kill
 * keeps it), a state file DIR/<name>.json rewritten (atomically) at every change of the loader's
 * state, and the pty whose slave PATH links to. <name> is the bus name (basename of PATH).
 *
 * The state file: {"protocol": "lpc-isp", "part": "LPC1768", "part_id": 637878071,
 *   "flash_size": 524288, "state": "loader" | "running" | "off" | "reset", "synchronized": true,
 *   "unlocked": false, "echo": true, "boots": 1, "flash_ops": 12, "power_cuts": 0,
 *   "app_entry": 0 (after G/R, else null), "app_valid": true (LPC: vector checksum of the flash;
 *   ADI: first word not erased), "commands": 42, "bad_checksums": 0, "bytes_in": 91234 (from the
 *   host), "bytes_out": 1234 (to it), "host": "open" | "closed" (the pty's slave side),
 *   "last_error": "...", plus the protocol's own members}
 * It is rewritten after every command and when the host closes the pty.
 *
 * Resets: at start-up, after a power cut and on SIGUSR1 the chip resets with its loader-entry pin
 * held (P2.10 / P2.2 low): it is in the loader again, waiting for '?' / BS, its RAM lost. With
 * --reset-on-open the same happens whenever the host opens the pty (a USB adapter whose DTR drives
 * reset). G (LPC) and R (ADI) start the application: the chip no longer answers until reset.
 *
 * With --pins SOCKET the chip follows its RESET and boot pins instead, their levels arriving as
 * datagrams "RESET=<0|1> BOOT=<0|1>" (tests/serial-shim sends them): RESET low holds it in reset
 * (state "reset", silent, input dropped); RESET rising with the boot pin low starts the loader, with it
 * high the application when the flash holds valid user code (else the loader, as the ROM does). The
 * power-up boots the same way, both pins high until told; the state file then has "reset_pin" and
 * "boot_pin" (1 = high).
 */

struct serial_chip;

/* One protocol: its state behind an opaque pointer. */
struct serial_proto {
        const char *name;
        void *(*create)(struct serial_chip *c);
        void (*destroy)(void *st);
        /* power-on or reset: back to waiting for the autobaud character */
        void (*reset)(void *st);
        /* bytes from the host (after fault injection) */
        void (*input)(void *st, const uint8_t *data, size_t n);
        /* next deadline in µs (UINT64_MAX: none) and its handler */
        uint64_t (*deadline)(void *st);
        void (*timer)(void *st, uint64_t now_us);
        /* extra JSON members for the state file, each ",\"k\": v" */
        void (*state_json)(void *st, char *buf, size_t len);
};

extern const struct serial_proto serial_proto_lpc;
extern const struct serial_proto serial_proto_adi;

/* What the protocols use. */
struct serial_chip {
        const struct sim_options *opt;
        char *name;
        uint8_t *flash;
        uint32_t flash_size;
        const char *part_name;
        uint32_t part_id; /* LPC: J's answer; ADI: 0 */
        uint32_t uid[4];  /* LPC: N's answer */

        /* loader state, for the state file */
        bool running;
        uint32_t app_entry;
        bool synchronized, unlocked, echo;
        uint64_t boots, flash_ops, commands, bad_checksums, power_cuts;
        uint64_t bytes_in, bytes_out; /* on the line, before the faults of the way in / after those out */
        char last_error[96];

        /* set by serial_chip_flash_op() when the power goes: the protocol stops at once */
        bool off;
};

/* Queue bytes to the host (through --drop / --corrupt); nothing while off or stalled. */
void serial_chip_send(struct serial_chip *c, const void *data, size_t n);
void serial_chip_sends(struct serial_chip *c, const char *s);

/* Count a flash operation before doing it. Returns the fraction of it that happens: 1.0 normally;
 * when --power-cut hits this operation 0.0 or (torn) 0.5, and the chip is off from now on (the
 * protocol must return without answering). */
double serial_chip_flash_op(struct serial_chip *c);

/* A command (LPC line / ADI packet) was received and answered; counts it for --stall (the chip
 * freezes after the answer to the Nth). */
void serial_chip_command(struct serial_chip *c);

/* The application runs (after G or R) from entry. */
void serial_chip_run_app(struct serial_chip *c, uint32_t entry);

void serial_chip_error(struct serial_chip *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void serial_chip_log(struct serial_chip *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The state changed: rewrite the state file. */
void serial_chip_changed(struct serial_chip *c);

/* Run the serial simulator described by o (one bus of kind SIM_PORT_SERIAL); returns the exit code. */
int serial_sim_main(const struct sim_options *o);
