/* A Lawicel SLCAN adapter on a pseudo-terminal, with a whole simulated bus behind it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sim-bus.h"

/*
 * The pty's slave side is reachable through a symlink at the path given (a stale link is
 * replaced; anything else at that path is refused). Commands (each ends with '\r'; '\n' is
 * ignored; an empty line is ignored; the answer '\r' is OK, BEL is an error):
 *   Sn      bitrate (S0 10k, S1 20k, S2 50k, S3 100k, S4 125k, S5 250k, S6 500k, S7 800k, S8 1M);
 *           only while closed
 *   O / L   open the channel / open it listen-only (BEL when already open)
 *   C       close (also OK when closed)
 *   V / v   "V1013\r" / "v1013\r"       N  "NCF01\r"
 *   F       status flags "Fxx\r" (only while open), then cleared: 0x01 receive queue full,
 *           0x02 transmit queue full, 0x08 data overrun (frames to the host were lost)
 *   Zn      timestamps off/on (4 hex digits of ms appended to received frames)
 *   Mxxxxxxxx / mxxxxxxxx  acceptance code/mask: accepted, no effect (the host sees every frame)
 *   t/T/r/R transmit (only while open, not listen-only): answered "z\r" (t, r) or "Z\r" (T, R)
 * Frame lines are canfleet/slcan.h's; a transmit line with a timestamp is refused (hosts send none).
 * Anything else, a malformed line, or a line longer than CF_SLCAN_LINE_MAX: BEL.
 * While open every frame a node sends comes to the host as "tIIILDD..\r".
 *
 * When the host closes the slave side the master reads EIO and polls POLLHUP until someone opens
 * it again: the adapter then counts as unplugged (channel closed, queues flushed) and the master
 * is checked every 25 ms instead of being polled, so the loop never spins on the hang-up.
 *
 * Stalls (--stall N:MS): right after the adapter has put the Nth frame from the host on the bus
 * (frames counted from start-up, only those that went on the bus; the Nth is acknowledged with
 * "z\r" as usual) it freezes for MS milliseconds, as a USB adapter whose buffers overflowed: every
 * byte the host writes meanwhile is thrown away (frames and commands alike, no answer), and every
 * frame from the bus meant for the host is lost (the nodes' answers included); what was already
 * queued for the host before the stall still drains. Afterwards the F flags show a data overrun
 * when frames were lost, and a line the host was half-way through when the stall ended is
 * discarded up to its '\r' (answered BEL). The start is counted in frames, so a test is
 * reproducible; only the length is wall time.
 */
struct slcan_pty;

int slcan_pty_new(struct slcan_pty **ret, const char *link_path, struct sim_bus *bus);
/* Add a stall after the host's nth frame (n >= 1), lasting ms. -ENOSPC beyond SLCAN_PTY_MAX_STALLS. */
#define SLCAN_PTY_MAX_STALLS 64u
int slcan_pty_add_stall(struct slcan_pty *p, uint64_t n, uint32_t ms);
/* Remove the symlink (when it still points at our pty) and close. Returns NULL. */
struct slcan_pty *slcan_pty_free(struct slcan_pty *p);

/* For poll(): fd (-1 while the host side is closed) and events. */
int slcan_pty_fd(const struct slcan_pty *p);
short slcan_pty_events(const struct slcan_pty *p);
/* Handle poll() results. */
void slcan_pty_io(struct slcan_pty *p, short revents);
/* Next time the pty wants slcan_pty_timer() (UINT64_MAX: none). */
uint64_t slcan_pty_deadline(const struct slcan_pty *p);
void slcan_pty_timer(struct slcan_pty *p, uint64_t now_us);
const char *slcan_pty_slave_name(const struct slcan_pty *p);
/* --adapter-latency-us: every frame host->bus, and every frame and transmit acknowledgement bus->host,
 * arrives us microseconds after it was sent, as through a USB adapter (commands are answered at once).
 * At most SLCAN_PTY_DELAY_SLOTS frames on the way each direction: beyond that a transmit is refused
 * (BEL, flag 0x02) and frames for the host are lost (flag 0x08). */
#define SLCAN_PTY_DELAY_SLOTS 1024u
void slcan_pty_set_latency(struct slcan_pty *p, uint32_t us);

/* Point the symlink path at target (atomically; a stale link is replaced): -EEXIST when path exists
 * and is not a symlink. The SLCAN and the serial chip ptys share it. */
int sim_make_link(const char *target, const char *path);
