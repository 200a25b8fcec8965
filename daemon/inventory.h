/* What canfleetd knows of each node, kept in STATE_DIR so that a restart lists the fleet at once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Two files in STATE_DIR, the same scheme as a job's (job-store.h):
 *
 * nodes.json, the snapshot, written whole and atomically (tmp, fsync, rename, fsync of the dir):
 *   {"seq": 12, "nodes": [RECORD, …]}
 * nodes.log, one RECORD a line with its "seq", appended with one write() each: a change of one
 * node costs O(1) whatever the fleet's size; the log is folded into a new snapshot when it grows
 * past a few records per node.
 *
 * RECORD is the whole known state of one node:
 *   {"seq": 13, "bus": "bus0", "station": 3, "configured": true, "identified": true,
 *    "uid": "…", "hw_id": 1031, "boot_version": 258, "has_image": true, "version": "1.2.0",
 *    "release": 5, "payload_sha": "<hex>", "mode": 1, "last_update": 1, "last_seen": µs,
 *    "last_result": "done", "last_job": 4, "last_time": µs, "bank": 0, "trial": 0,
 *    "protocol": "lpc-isp", "part": "0x26013F37",
 *    "identity": "LPC1768 0x26013F37, boot code 4.1, serial …"}
 * ("bank", "trial": status bytes 77/78 of a dual-bank node; absent in older files: 0)
 * ("protocol", "part", "identity": a serial node's protocol and what its loader said at its last
 *  session, docs/design.md §8; its "version", "release" and "payload_sha" are then the image canfleetd
 *  last flashed and verified on it; absent in older files and for CAN nodes: "")
 * Loading applies the log's records above the snapshot's seq in order (the later record of a node
 * replaces the earlier); a torn last line is ignored, a line that does not parse ends the replay
 * with a warning. A damaged nodes.json is logged and the inventory starts empty: it is only what
 * the daemon knew, the next probe learns it again.
 */

struct inv_node {
        char bus[16];
        uint16_t station;
        bool configured, identified, has_image;
        char uid[33];
        uint16_t hw_id, boot_version;
        char version[24];
        uint32_t release;
        char payload_sha[65];
        uint8_t mode, last_update;
        uint8_t bank, trial;
        uint64_t last_seen;
        char last_result[16]; /* "", "done", "up-to-date", "failed", "cancelled", "confirmed", "reverted" */
        unsigned last_job;
        uint64_t last_time;
        char protocol[16];  /* a serial node's ("lpc-isp", "adi-uart"), "" a CAN node or an older file */
        char part[32];      /* a serial node's part id, "" unknown or a CAN node */
        char identity[128]; /* a serial node's identity for operators */
};

/* Every node known, the log applied; *seq the highest seq seen. Missing files: none, 0. */
int inventory_load(const char *state_dir, struct inv_node **ret, size_t *n_ret, uint64_t *seq);
/* Write the snapshot (seq), then remove the log. */
int inventory_save(const char *state_dir, const struct inv_node *nodes, size_t n, uint64_t seq);
/* Append one record to nodes.log (*fd opened O_APPEND on first use, -1 before). */
int inventory_append(const char *state_dir, int *fd, uint64_t seq, const struct inv_node *node);
