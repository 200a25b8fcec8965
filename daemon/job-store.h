/* Jobs on disk: STATE_DIR/jobs/N.json written atomically, and the images they flash in
 * CACHE_DIR/images/SHA256.img. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

/*
 * A job is two files in STATE_DIR/jobs:
 *
 * N.json, the snapshot (JSON), written whole and atomically: to N.json.tmp, fsync'ed, renamed over
 * N.json, the directory fsync'ed; after a crash it is either the old or the new one, never a mix:
 *   {"id": 3, "state": "running", "created": µs, "finished": 0, "force": false, "cancel": false,
 *    "image": "<sha256 of the whole area image, hex>", "seq": 17, "version": "1.2.0",
 *    "payload_sha": "<hex>", "hw_id": 1031, "release": 5, "started": µs,
 *    ["target": "lpc-isp", "part_id": "0x26013F37",]  (serial targets only)
 *    "skipped": [["bus1:1", "hw 0x0001"], …],
 *    "nodes": [{"bus": "bus0", "station": 3, "step": "programming", "error": "",
 *               "bytes_done": 0, "bytes_total": 41000, "group": false}, …]}
 * (files of older versions have no "seq": 0.)
 *
 * N.log, the changes since the snapshot, one JSON object a line, appended with one write() each (a
 * SIGKILL cannot lose a record once write() returned; fdatasync() makes it power-safe):
 *   {"seq": 18, "node": 12, "step": "failed", "error": "…", "bytes_done": 0, "bytes_total": 41000}
 *   {"seq": 19, "state": "running", "cancel": true, "finished": 0}
 * Every record is the whole new state of one node (or of the job's own fields), so a change costs the
 * same whatever the job's size. Loading applies, in order, the records whose seq is above the
 * snapshot's: a snapshot written (compaction) just before a crash could remove the log is never
 * undone by its older records. A last line without its newline (a torn append) is ignored; a line
 * that does not parse ends the replay there, with a warning. Compaction writes a new snapshot and
 * then removes the log.
 *
 * Loading refuses quietly nothing: files whose names are not canonical ("01.json", "1.json~"), files
 * that are not regular (a FIFO is never opened for reading: O_NONBLOCK, then fstat), job files that
 * do not parse, and the same node listed twice in one job are each logged with a warning; the second
 * entry of a duplicated node is marked failed with the reason, and the first goes on.
 */

struct job_record_node {
        char bus[16];
        uint16_t station;
        char step[16];
        char *error;
        uint64_t bytes_done, bytes_total;
        /* "group": true while the node is believed a member of the job's group transfer (its C
         * erased for this image and the slots received recorded by the node): a restart asks it to
         * join again and completes it from GAP instead of erasing (docs/design.md §7). Files without
         * the field: false. */
        bool group;
};

struct job_record {
        unsigned id;
        char state[16];
        uint64_t created, finished;
        bool force, cancel;
        char image[65];
        uint64_t seq; /* of the last change folded in */
        /* What the image is, so that a finished job (history, without its image) still says it; and
         * when its first node started. Absent in files of older versions (empty / 0). */
        char version[24];
        char payload_sha[65];
        uint16_t hw_id;
        uint32_t release;
        uint64_t started;
        /* A serial target's job (docs/design.md §8): "target" ("lpc-isp", "adi-uart") and "part_id";
         * absent (empty) for CCP nodes' area images. Its image in the cache is the raw binary. */
        char target[16];
        char part_id[32];
        /* update --all: the configured nodes left out, pairs (node, reason); may be NULL */
        char **skipped;
        size_t n_skipped;
        struct job_record_node *nodes;
        size_t n_nodes;
};

void job_record_done(struct job_record *r);

/* Create STATE_DIR/jobs and CACHE_DIR/images when missing. */
int job_store_prepare(const char *state_dir, const char *cache_dir);
/* Write the snapshot N.json (with r->seq), then remove N.log: what the log held is now in N.json. */
int job_store_save(const char *state_dir, const struct job_record *r);
/* Every job file with its log applied, sorted by id; *max_id is the highest id seen (0 when none).
 * Files that do not parse are skipped with a warning (their ids still count). */
int job_store_load_all(const char *state_dir, struct job_record **ret, size_t *n_ret, unsigned *max_id);
/* Remove N.json and N.log. */
int job_store_remove(const char *state_dir, unsigned id);
/* Whether anything (a job file, a damaged one) is named N.json: its id is taken. */
bool job_store_id_taken(const char *state_dir, unsigned id);

/* The log of job id: an fd for job_store_append_*() (O_APPEND, created when missing). */
int job_store_log_open(const char *state_dir, unsigned id, int *ret_fd);
/* Append one record (one write()); sync: fdatasync() too. -ENOSPC and friends are returned as is; after
 * a failure the caller must write a snapshot (job_store_save) before appending again, since the log
 * may end in a torn record. */
int job_store_append_node(int fd, uint64_t seq, size_t idx, const struct job_record_node *n, bool sync);
int job_store_append_job(int fd, uint64_t seq, const char *state, uint64_t finished, bool cancel, bool sync);
/* The same with the job's start time (µs, 0: not started). */
int job_store_append_job2(int fd, uint64_t seq, const char *state, uint64_t finished, bool cancel,
                          uint64_t started, bool sync);

/* The image of a job, by the hex sha256 of its bytes. */
int job_store_put_image(const char *cache_dir, const char *sha_hex, const uint8_t *data, size_t size);
int job_store_get_image(const char *cache_dir, const char *sha_hex, size_t max, uint8_t **ret,
                        size_t *size_ret);
int job_store_drop_image(const char *cache_dir, const char *sha_hex);

/* Write data to dir/name atomically (tmp + fsync + rename + fsync of dir), a new file of that mode. */
int write_file_atomic(const char *dir, const char *name, const void *data, size_t size, mode_t mode);
