/* Jobs on disk: STATE_DIR/jobs/N.json written atomically, and the images they flash in
 * CACHE_DIR/images/SHA256.img. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A job file (JSON):
 *   {"id": 3, "state": "running", "created": µs, "finished": 0, "force": false, "cancel": false,
 *    "image": "<sha256 of the whole area image, hex>",
 *    "nodes": [{"bus": "bus0", "station": 3, "step": "programming", "error": "",
 *               "bytes_done": 0, "bytes_total": 41000}, …]}
 * Every write goes to N.json.tmp, is fsync'ed, renamed over N.json, and the directory fsync'ed:
 * after a crash a job file is either the old or the new one, never a mix. A leftover *.tmp is
 * ignored (and removed) when loading.
 */

struct job_record_node {
        char bus[16];
        uint16_t station;
        char step[16];
        char *error;
        uint64_t bytes_done, bytes_total;
};

struct job_record {
        unsigned id;
        char state[16];
        uint64_t created, finished;
        bool force, cancel;
        char image[65];
        struct job_record_node *nodes;
        size_t n_nodes;
};

void job_record_done(struct job_record *r);

/* Create STATE_DIR/jobs and CACHE_DIR/images when missing. */
int job_store_prepare(const char *state_dir, const char *cache_dir);
int job_store_save(const char *state_dir, const struct job_record *r);
/* Every job file, sorted by id; *max_id is the highest id seen (0 when none). Files that do not
 * parse are skipped with a warning (their ids still count). */
int job_store_load_all(const char *state_dir, struct job_record **ret, size_t *n_ret, unsigned *max_id);
int job_store_remove(const char *state_dir, unsigned id);

/* The image of a job, by the hex sha256 of its bytes. */
int job_store_put_image(const char *cache_dir, const char *sha_hex, const uint8_t *data, size_t size);
int job_store_get_image(const char *cache_dir, const char *sha_hex, size_t max, uint8_t **ret,
                        size_t *size_ret);
int job_store_drop_image(const char *cache_dir, const char *sha_hex);

/* Write data to dir/name atomically (tmp + fsync + rename + fsync of dir). */
int write_file_atomic(const char *dir, const char *name, const void *data, size_t size);
