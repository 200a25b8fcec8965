/* The hawkBit client's feedback outbox on disk: one small JSON file per message, written atomically. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * <dir>/<seq: 16 lowercase hex>.json holds
 *     {"controller_id": "canfleet-…", "action_id": 12, "cancel": false, "body": "<the JSON to POST>"}
 * The body is kept as the exact text to send, so a message goes out byte for byte as it was queued,
 * however often it is re-sent. A file is written to "<name>.tmp", fsynced, renamed into place and the
 * directory fsynced: after a crash a message is either whole or absent. Only canfleetd writes here.
 */

struct outbox_record {
        uint64_t seq;
        char *path; /* set by outbox_record_write() and outbox_records_load() */
        char *cid;
        uint64_t action_id;
        bool cancel; /* cancelAction feedback; deploymentBase feedback otherwise */
        char *body;
};

void outbox_record_clear(struct outbox_record *r);

/* Write r (seq, cid, action_id, cancel, body) into dir and set r->path. -errno; nothing is left
 * behind on failure. */
int outbox_record_write(const char *dir, struct outbox_record *r);

/* Remove r's file; 0 also when it is gone already. */
int outbox_record_remove(const struct outbox_record *r);

/* Read every record of dir: fn gets each one (in no particular order) and owns it afterwards
 * (a negative return stops the load and is returned). A damaged file is renamed to "<name>.corrupt",
 * kept for a human, and reported to damaged (which may be NULL); leftover "*.tmp" files (a write that
 * never completed: its feedback call had failed) are removed. -errno of reading dir. */
typedef int (*outbox_record_fn)(struct outbox_record *r, void *userdata);
typedef void (*outbox_damaged_fn)(const char *path, const char *kept_as, void *userdata);
int outbox_records_load(const char *dir, outbox_record_fn fn, outbox_damaged_fn damaged, void *userdata);
