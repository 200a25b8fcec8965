/* canfleetctl --json: canfleetd's nodes, jobs and buses as json-c objects with stable field names. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fleet-json.h"

struct json_object *cf_json_document(void)
{
        struct json_object *o = json_object_new_object();
        if (o)
                json_object_object_add(o, "schema", json_object_new_int(CF_JSON_SCHEMA));
        return o;
}

struct json_object *cf_json_string_or_null(const char *s)
{
        return s && s[0] ? json_object_new_string(s) : NULL;
}

static void add_str(struct json_object *o, const char *key, const char *value)
{
        json_object_object_add(o, key, json_object_new_string(value ? value : ""));
}

static void add_str_or_null(struct json_object *o, const char *key, const char *value)
{
        json_object_object_add(o, key, cf_json_string_or_null(value));
}

static void add_int(struct json_object *o, const char *key, int64_t value)
{
        json_object_object_add(o, key, json_object_new_int64(value));
}

/* canfleetd says 0 for "not known yet" in these properties (HardwareId, LastSeen, Finished, ...) */
static void add_uint_or_null(struct json_object *o, const char *key, uint64_t value)
{
        json_object_object_add(o, key, value ? json_object_new_uint64(value) : NULL);
}

static void add_uint(struct json_object *o, const char *key, uint64_t value)
{
        json_object_object_add(o, key, json_object_new_uint64(value));
}

struct json_object *cf_json_node(const struct cf_node_info *n)
{
        struct json_object *o = json_object_new_object();
        bool identified = n->uid && n->uid[0];
        bool has_image = n->version && n->version[0];
        char name[64];

        if (!o)
                return NULL;
        cf_node_name(n, name, sizeof(name));
        add_str(o, "node", name);
        add_str(o, "path", n->path);
        add_str(o, "bus", n->bus);
        add_int(o, "station", n->station);
        add_str(o, "state", n->state);
        add_str(o, "mode", n->mode);
        add_str_or_null(o, "version", n->version);
        json_object_object_add(o, "release", has_image ? json_object_new_int64(n->release) : NULL);
        json_object_object_add(o, "hw_id",
                               identified || n->hardware_id ? json_object_new_int(n->hardware_id) : NULL);
        add_str_or_null(o, "uid", n->uid);
        json_object_object_add(o, "bootloader_version",
                               identified ? json_object_new_int(n->bootloader_version) : NULL);
        add_int(o, "cro_id", n->cro_id);
        add_int(o, "dto_id", n->dto_id);
        add_str_or_null(o, "last_error", n->last_error);
        add_uint_or_null(o, "last_seen_us", n->last_seen);
        json_object_object_add(o, "configured", json_object_new_boolean(n->configured));
        add_str_or_null(o, "running_sha256", n->running_sha256);
        add_str_or_null(o, "last_update_result", n->last_update_result);
        add_uint_or_null(o, "last_update_job", n->last_update_job);
        add_uint_or_null(o, "last_update_time_us", n->last_update_time);
        add_str_or_null(o, "last_update_status", n->last_update_status);
        /* dual-bank nodes: the bank it runs from and its last swap's trial; null for a single-bank node */
        bool dual = identified && n->bank != 0;
        json_object_object_add(o, "bank", dual ? json_object_new_int(n->bank) : NULL);
        json_object_object_add(o, "trial", dual && n->trial ? json_object_new_string(n->trial) : NULL);
        add_str(o, "protocol", n->protocol && n->protocol[0] ? n->protocol : "ccp");
        add_str_or_null(o, "identity", n->identity);
        /* where "version" comes from: the node's own report (CAN), or what canfleetd last flashed and
         * verified on a serial node (its loader cannot report what runs); null without a version */
        bool serial = n->protocol && n->protocol[0] && strcmp(n->protocol, "ccp") != 0;
        json_object_object_add(o, "version_source",
                               has_image ? json_object_new_string(serial ? "flashed" : "node") : NULL);
        return o;
}

struct json_object *cf_json_job(const struct cf_job_info *j)
{
        struct json_object *o = json_object_new_object();
        struct json_object *image = json_object_new_object();
        struct json_object *nodes = json_object_new_array();
        uint64_t done = 0, total = 0;

        if (!o || !image || !nodes) {
                json_object_put(o);
                json_object_put(image);
                json_object_put(nodes);
                return NULL;
        }
        add_int(o, "id", j->id);
        add_str(o, "path", j->path);
        add_str(o, "state", j->state);
        add_str_or_null(image, "version", j->image_version);
        add_int(image, "hw_id", j->image_hardware_id);
        add_int(image, "release", j->image_release);
        add_str_or_null(image, "sha256", j->image_sha256);
        add_str(image, "target", j->target && j->target[0] ? j->target : "ccp");
        json_object_object_add(o, "image", image);
        add_uint_or_null(o, "created_us", j->created);
        add_uint_or_null(o, "finished_us", j->finished);
        add_uint_or_null(o, "started_us", j->started);
        struct json_object *sk = json_object_new_array();
        for (size_t i = 0; sk && i < j->n_skipped; i++) {
                struct json_object *x = json_object_new_object();
                if (!x)
                        break;
                add_str(x, "node", j->skipped[2 * i]);
                add_str(x, "reason", j->skipped[2 * i + 1]);
                json_object_array_add(sk, x);
        }
        json_object_object_add(o, "skipped", sk);
        struct json_object *ha = json_object_new_array();
        for (size_t i = 0; ha && i < j->n_hawkbit_actions; i++)
                json_object_array_add(ha, json_object_new_int64((int64_t) j->hawkbit_actions[i]));
        json_object_object_add(o, "hawkbit_actions", ha);
        for (size_t i = 0; i < j->n_nodes; i++) {
                const struct cf_job_node *n = &j->nodes[i];
                struct json_object *jn = json_object_new_object();
                if (!jn)
                        break;
                add_str(jn, "node", n->node);
                add_str(jn, "path", n->path);
                add_str(jn, "step", n->step);
                add_str_or_null(jn, "error", n->error);
                add_uint(jn, "bytes_done", n->bytes_done);
                add_uint(jn, "bytes_total", n->bytes_total);
                json_object_array_add(nodes, jn);
                done += n->bytes_done;
                total += n->bytes_total;
        }
        add_uint(o, "bytes_done", done);
        add_uint(o, "bytes_total", total);
        json_object_object_add(o, "nodes", nodes);
        return o;
}

struct json_object *cf_json_fleet_server(const struct cf_fleet_server_info *f)
{
        if (!f->present)
                return NULL;
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        if (!o || !a) {
                json_object_put(o);
                json_object_put(a);
                return NULL;
        }
        add_str(o, "url", f->url);
        add_str(o, "tenant", f->tenant);
        add_str(o, "state", f->state);
        add_uint_or_null(o, "last_poll_us", f->last_poll);
        add_str_or_null(o, "last_error", f->last_error);
        add_uint_or_null(o, "last_error_us", f->last_error_time);
        add_uint_or_null(o, "next_poll_us", f->next_poll);
        add_uint(o, "targets", f->targets);
        add_uint(o, "feedback_queued", f->feedback_queued);
        add_uint(o, "requests", f->requests);
        for (size_t i = 0; i < f->n_actions; i++)
                json_object_array_add(a, json_object_new_int64((int64_t) f->actions[i]));
        json_object_object_add(o, "actions_in_progress", a);
        return o;
}

struct json_object *cf_json_bus(const struct cf_bus_info *b)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        add_str(o, "name", b->name);
        add_str(o, "transport", b->transport);
        add_str(o, "link", b->link);
        add_int(o, "bitrate", b->bitrate);
        add_str_or_null(o, "error", b->error);
        return o;
}

int cf_json_print(struct json_object *o)
{
        if (!o)
                return -ENOMEM;
        const char *s =
            json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        int r = s && puts(s) >= 0 ? 0 : -EIO;
        json_object_put(o);
        if (fflush(stdout) != 0)
                r = -errno;
        return r;
}
