/* The node protocols of serial nodes (docs/design.md §8): a job's steps and a node's identification for
 * an LPC17xx behind its ISP loader and an ADuCM36x behind its AN-1160 loader, on a serial bus. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "flash-job.h"

typedef struct SerialSession SerialSession;

/*
 * A serial node goes through the job's steps as a CAN node does, each saved before it acts:
 *   connecting   open the line, loader entry (isp_entry), sync (LPC: "?", Synchronized, crystal kHz,
 *                echo off; ADI: BS and the ID packet), identity (LPC: J part id, K boot code, N serial
 *                number; ADI: the ID packet's product and version); the part id must be the bundle's:
 *                a mismatch fails the node here, before any erase
 *   unlocking    LPC: U 23130 (ADI: nothing to unlock)
 *   erasing      LPC: P+E of the sectors the image covers; ADI: E of its pages
 *   programming  LPC: 4 KB blocks: W in UU lines (RESEND: again), P, C, M compare; ADI: W packets of
 *                248 bytes (BEL or silence: again). The block or page at address 0 (the vector table)
 *                goes last: until it is written the chip has no valid image and stays in its loader,
 *                so a cut at any point leaves a chip the next job can reach.
 *   verifying    LPC: R of every block, compared with the image (M after each C only compares flash with
 *                RAM, and the ISP's sums let cancelling bit errors through); ADI: V of
 *                every page (the 24-bit LFSR signature)
 *   rebooting    saved first; dtr-rts/gpio: boot pin released, reset pulsed; manual: LPC G 0 T, ADI R
 *   done         these loaders cannot report what runs: the verify is the confirmation
 *   up-to-date   after connecting, without --force: the chip (same identity) holds what canfleetd last
 *                flashed and verified on it, this image: nothing sent, the chip leaves its loader
 * A session that fails on the line (time-out, a garbled answer, RESEND or BEL after every try) starts
 * again from connecting after a pause, for node_lost_timeout_s; a chip that answers with a fact (a
 * wrong part id, an ISP error on erase) fails the node at once.
 */

/* The protocol of a node's bus. */
enum cf_node_protocol node_protocol(const Node *n);
static inline bool node_is_serial(const Node *n)
{
        return node_protocol(n) != CF_PROTOCOL_CCP;
}

void serial_job_begin(FlashJob *f);
void serial_job_resume_confirm(FlashJob *f);
void serial_job_cancel(FlashJob *f);
void serial_job_saved(FlashJob *f);
void serial_job_free(FlashJob *f);
/* Read the identity (part id, serial number / ID packet) for an inventory probe or a scan; the loader
 * is left (reset into the application) when isp_entry can do it. done gets 0 or a negative errno. */
int serial_node_identify(Node *n, node_done_fn done);
/* The session a node holds (probe or job), freed with the node. */
void serial_node_free(Node *n);
bool serial_node_busy(const Node *n);

/* Line statistics of the last session of a node: bytes both ways, and the wall time of its transfer
 * (erase to verify), for the benchmark figures. */
struct serial_stats {
        uint64_t tx, rx;
        uint64_t wall_us;
        uint32_t baud;
};
bool serial_node_stats(const Node *n, struct serial_stats *ret);

/* Whether image_sha (a raw image's sha256, hex) is what canfleetd last flashed and verified on the chip
 * it knows on n (saved across restarts): the best knowledge there is, the loaders cannot report what
 * runs. An up-to-date decision rests on it (after the chip's identity was read again, in a job). */
bool serial_node_flashed(const Node *n, const char *image_sha);

/* The part id a serial image is for and what a node is, as text ("0x26013F37", "ADuCM360"), "" unknown. */
const char *serial_node_part(const Node *n);
