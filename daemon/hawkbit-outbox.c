/* The hawkBit feedback outbox's files: atomic, durable writes and a tolerant load. */
#include "hawkbit-outbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "conf.h"
#include "job-store.h"

/* A record is a feedback body and two ids: far below this. */
#define OUTBOX_RECORD_MAX (256U * 1024U)

void outbox_record_clear(struct outbox_record *r)
{
        free(r->path);
        free(r->cid);
        free(r->body);
        memset(r, 0, sizeof *r);
}

int outbox_record_write(const char *dir, struct outbox_record *r)
{
        if (!dir || !r || !r->cid || !r->body)
                return -EINVAL;
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "controller_id", json_object_new_string(r->cid));
        json_object_object_add(o, "action_id", json_object_new_int64((int64_t) r->action_id));
        json_object_object_add(o, "cancel", json_object_new_boolean(r->cancel));
        json_object_object_add(o, "body", json_object_new_string(r->body));
        _cleanup_(freep) char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        char name[32], *path = NULL;
        snprintf(name, sizeof name, "%016" PRIx64 ".json", r->seq);
        if (!text || asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        int k = write_file_atomic(dir, name, text, strlen(text), 0600);
        if (k < 0) {
                (void) unlink(path);
                free(path);
                return k;
        }
        free(r->path);
        r->path = path;
        return 0;
}

int outbox_record_remove(const struct outbox_record *r)
{
        if (r->path && unlink(r->path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

/* The record in path, or -EBADMSG. */
static int record_read(const char *path, struct outbox_record *r)
{
        /* Only a regular file is read (a FIFO named like a record would block the start for ever). */
        _cleanup_(freep) char *text = NULL;
        int k = cf_read_regular_file(path, OUTBOX_RECORD_MAX, &text, NULL, NULL);
        if (k == -ENOMEM)
                return k;
        json_object *o = k < 0 ? NULL : json_tokener_parse(text), *aid = NULL, *cancel = NULL, *cid = NULL,
                    *body = NULL;
        k = -EBADMSG;
        if (o && json_object_is_type(o, json_type_object) &&
            json_object_object_get_ex(o, "action_id", &aid) && json_object_is_type(aid, json_type_int) &&
            json_object_get_int64(aid) > 0 && json_object_object_get_ex(o, "controller_id", &cid) &&
            json_object_is_type(cid, json_type_string) && json_object_object_get_ex(o, "body", &body) &&
            json_object_is_type(body, json_type_string) &&
            (!json_object_object_get_ex(o, "cancel", &cancel) ||
             json_object_is_type(cancel, json_type_boolean))) {
                /* The body must be a JSON object itself: it goes to the server as it is. */
                json_object *b = json_tokener_parse(json_object_get_string(body));
                if (b && json_object_is_type(b, json_type_object)) {
                        r->action_id = (uint64_t) json_object_get_int64(aid);
                        r->cancel = cancel && json_object_get_boolean(cancel);
                        r->cid = strdup(json_object_get_string(cid));
                        r->body = strdup(json_object_get_string(body));
                        k = r->cid && r->body ? 0 : -ENOMEM;
                }
                json_object_put(b);
        }
        json_object_put(o);
        return k;
}

int outbox_records_load(const char *dir, outbox_record_fn fn, outbox_damaged_fn damaged, void *userdata)
{
        _cleanup_(closedirp) DIR *d = opendir(dir);
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                const char *name = de->d_name;
                size_t l = strlen(name);
                _cleanup_(freep) char *path = NULL;
                if (asprintf(&path, "%s/%s", dir, name) < 0)
                        return -ENOMEM;
                if (l > 4 && strcmp(name + l - 4, ".tmp") == 0) {
                        (void) unlink(path);
                        continue;
                }
                char *end;
                if (l != 21 || strcmp(name + 16, ".json") != 0)
                        continue;
                errno = 0;
                uint64_t seq = strtoull(name, &end, 16);
                if (errno || end != name + 16)
                        continue;
                struct outbox_record r = {.seq = seq};
                int k = record_read(path, &r);
                if (k == -ENOMEM) {
                        outbox_record_clear(&r);
                        return k;
                }
                if (k < 0) {
                        outbox_record_clear(&r);
                        /* Never delivered wrong, never lost: set aside under another name. */
                        _cleanup_(freep) char *bad = NULL;
                        if (asprintf(&bad, "%s.corrupt", path) >= 0 && rename(path, bad) == 0 && damaged)
                                damaged(path, bad, userdata);
                        continue;
                }
                r.path = TAKE_PTR(path);
                k = fn(&r, userdata);
                if (k < 0)
                        return k;
        }
        return 0;
}
