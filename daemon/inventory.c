/* The node inventory on disk: a snapshot and a log of whole-node records (inventory.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "inventory.h"
#include "job-store.h"
#include "json-fields.h"
#include "log.h"

#define INV_FILE_MAX (64u << 20)

static json_object *node_to_json(const struct inv_node *n, uint64_t seq, bool with_seq)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        if (with_seq)
                json_object_object_add(o, "seq", json_object_new_int64((int64_t) seq));
        json_object_object_add(o, "bus", json_object_new_string(n->bus));
        json_object_object_add(o, "station", json_object_new_int(n->station));
        json_object_object_add(o, "configured", json_object_new_boolean(n->configured));
        json_object_object_add(o, "identified", json_object_new_boolean(n->identified));
        json_object_object_add(o, "uid", json_object_new_string(n->uid));
        json_object_object_add(o, "hw_id", json_object_new_int(n->hw_id));
        json_object_object_add(o, "boot_version", json_object_new_int(n->boot_version));
        json_object_object_add(o, "has_image", json_object_new_boolean(n->has_image));
        json_object_object_add(o, "version", json_object_new_string(n->version));
        json_object_object_add(o, "release", json_object_new_int64(n->release));
        json_object_object_add(o, "payload_sha", json_object_new_string(n->payload_sha));
        json_object_object_add(o, "mode", json_object_new_int(n->mode));
        json_object_object_add(o, "last_update", json_object_new_int(n->last_update));
        json_object_object_add(o, "bank", json_object_new_int(n->bank));
        json_object_object_add(o, "trial", json_object_new_int(n->trial));
        json_object_object_add(o, "last_seen", json_object_new_int64((int64_t) n->last_seen));
        json_object_object_add(o, "last_result", json_object_new_string(n->last_result));
        json_object_object_add(o, "last_job", json_object_new_int64(n->last_job));
        json_object_object_add(o, "last_time", json_object_new_int64((int64_t) n->last_time));
        if (n->protocol[0]) {
                json_object_object_add(o, "protocol", json_object_new_string(n->protocol));
                json_object_object_add(o, "part", json_object_new_string(n->part));
                json_object_object_add(o, "identity", json_object_new_string(n->identity));
        }
        return o;
}

static int node_from_json(json_object *o, struct inv_node *n)
{
        uint64_t st, hw, bv, rel, mode, lu, seen, job, t;
        *n = (struct inv_node){0};
        if (!json_object_is_type(o, json_type_object) ||
            json_field_str(o, "bus", n->bus, sizeof n->bus) < 0 ||
            json_field_uint(o, "station", 0xFFFF, &st) < 0 ||
            json_field_str(o, "uid", n->uid, sizeof n->uid) < 0 ||
            json_field_uint(o, "hw_id", 0xFFFF, &hw) < 0 ||
            json_field_uint(o, "boot_version", 0xFFFF, &bv) < 0 ||
            json_field_str(o, "version", n->version, sizeof n->version) < 0 ||
            json_field_uint(o, "release", UINT32_MAX, &rel) < 0 ||
            json_field_str(o, "payload_sha", n->payload_sha, sizeof n->payload_sha) < 0 ||
            json_field_uint(o, "mode", 0xFF, &mode) < 0 ||
            json_field_uint(o, "last_update", 0xFF, &lu) < 0 ||
            json_field_uint(o, "last_seen", UINT64_MAX, &seen) < 0 ||
            json_field_str(o, "last_result", n->last_result, sizeof n->last_result) < 0 ||
            json_field_uint(o, "last_job", UINT32_MAX, &job) < 0 ||
            json_field_uint(o, "last_time", UINT64_MAX, &t) < 0)
                return -EBADMSG;
        n->station = (uint16_t) st;
        n->hw_id = (uint16_t) hw;
        n->boot_version = (uint16_t) bv;
        n->release = (uint32_t) rel;
        n->mode = (uint8_t) mode;
        n->last_update = (uint8_t) lu;
        n->last_seen = seen;
        n->last_job = (unsigned) job;
        n->last_time = t;
        /* bank and trial: absent in files of older versions (0: a single-bank node) */
        uint64_t bank = 0, trial = 0;
        json_object *v;
        if (json_object_object_get_ex(o, "bank", &v) && json_field_uint(o, "bank", 2, &bank) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "trial", &v) && json_field_uint(o, "trial", 0xFF, &trial) < 0)
                return -EBADMSG;
        n->bank = (uint8_t) bank;
        n->trial = (uint8_t) trial;
        /* a serial node's protocol, part and identity: absent in files of older versions and for CAN
         * nodes */
        if (json_object_object_get_ex(o, "protocol", &v) &&
            json_field_str(o, "protocol", n->protocol, sizeof n->protocol) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "part", &v) &&
            json_field_str(o, "part", n->part, sizeof n->part) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "identity", &v) &&
            json_field_str(o, "identity", n->identity, sizeof n->identity) < 0)
                return -EBADMSG;
        n->configured = json_field_flag(o, "configured");
        n->identified = json_field_flag(o, "identified");
        n->has_image = json_field_flag(o, "has_image");
        return 0;
}

/* A whole regular file (never a FIFO: O_NONBLOCK, then fstat), NUL-terminated; -ENOENT when missing. */
static int read_file(const char *path, char **ret, size_t *size_ret)
{
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t) st.st_size > INV_FILE_MAX)
                return -EFBIG;
        char *buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        while (got < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + got, (size_t) st.st_size - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        buf[got] = 0;
        *ret = buf;
        *size_ret = got;
        return 0;
}

/* Put n in the list, replacing the record of the same node. */
static int upsert(struct inv_node **list, size_t *count, const struct inv_node *n)
{
        for (size_t i = 0; i < *count; i++)
                if ((*list)[i].station == n->station && strcmp((*list)[i].bus, n->bus) == 0) {
                        (*list)[i] = *n;
                        return 0;
                }
        struct inv_node *p = realloc(*list, (*count + 1) * sizeof *p);
        if (!p)
                return -ENOMEM;
        *list = p;
        p[(*count)++] = *n;
        return 0;
}

int inventory_load(const char *state_dir, struct inv_node **ret, size_t *n_ret, uint64_t *seq_ret)
{
        struct inv_node *list = NULL;
        size_t count = 0;
        uint64_t seq = 0;
        _cleanup_(freep) char *snap = NULL, *logp = NULL;
        if (asprintf(&snap, "%s/nodes.json", state_dir) < 0 || asprintf(&logp, "%s/nodes.log", state_dir) < 0)
                return -ENOMEM;

        _cleanup_(freep) char *text = NULL;
        size_t size;
        int r = read_file(snap, &text, &size);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "%s: cannot read it (%m); the node inventory starts from its log", snap);
        if (r >= 0) {
                json_object *o = json_tokener_parse(text);
                json_object *nodes = NULL, *sq;
                bool ok = o && json_object_is_type(o, json_type_object) &&
                          json_object_object_get_ex(o, "nodes", &nodes) &&
                          json_object_is_type(nodes, json_type_array) &&
                          json_object_object_get_ex(o, "seq", &sq) && json_object_is_type(sq, json_type_int);
                if (ok) {
                        seq = (uint64_t) json_object_get_int64(sq);
                        for (size_t i = 0; i < json_object_array_length(nodes); i++) {
                                struct inv_node n;
                                if (node_from_json(json_object_array_get_idx(nodes, i), &n) < 0) {
                                        log_warning("%s: node entry %zu is malformed, ignored", snap, i);
                                        continue;
                                }
                                if (upsert(&list, &count, &n) < 0) {
                                        json_object_put(o);
                                        free(list);
                                        return -ENOMEM;
                                }
                        }
                } else {
                        log_warning("%s: not a node inventory, ignored (the next probes learn the nodes again)",
                                    snap);
                }
                json_object_put(o);
        }

        free(text);
        text = NULL;
        r = read_file(logp, &text, &size);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "%s: cannot read it: %m", logp);
        unsigned line = 0;
        for (char *p = text; r >= 0 && p < text + size;) {
                char *nl = memchr(p, '\n', (size_t) (text + size - p));
                line++;
                if (!nl)
                        break; /* a torn append: that change is lost, the next probe redoes it */
                *nl = 0;
                json_object *o = json_tokener_parse(p);
                struct inv_node n;
                uint64_t s;
                if (!o || json_field_uint(o, "seq", UINT64_MAX, &s) < 0 || node_from_json(o, &n) < 0) {
                        json_object_put(o);
                        log_warning("%s:%u: not a node record; the rest of the log is ignored", logp, line);
                        break;
                }
                json_object_put(o);
                if (s > seq) {
                        seq = s;
                        if (upsert(&list, &count, &n) < 0) {
                                free(list);
                                return -ENOMEM;
                        }
                }
                p = nl + 1;
        }
        *ret = list;
        *n_ret = count;
        *seq_ret = seq;
        return 0;
}

int inventory_save(const char *state_dir, const struct inv_node *nodes, size_t n, uint64_t seq)
{
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        if (!o || !arr) {
                json_object_put(o);
                json_object_put(arr);
                return -ENOMEM;
        }
        json_object_object_add(o, "seq", json_object_new_int64((int64_t) seq));
        for (size_t i = 0; i < n; i++) {
                json_object *x = node_to_json(&nodes[i], 0, false);
                if (!x) {
                        json_object_put(o);
                        json_object_put(arr);
                        return -ENOMEM;
                }
                json_object_array_add(arr, x);
        }
        json_object_object_add(o, "nodes", arr);
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        int r = write_file_atomic(state_dir, "nodes.json", text, strlen(text), 0644);
        json_object_put(o);
        if (r < 0)
                return r;
        _cleanup_(freep) char *logp = NULL;
        if (asprintf(&logp, "%s/nodes.log", state_dir) < 0)
                return -ENOMEM;
        if (unlink(logp) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int inventory_append(const char *state_dir, int *fd, uint64_t seq, const struct inv_node *node)
{
        if (*fd < 0) {
                _cleanup_(freep) char *logp = NULL;
                if (asprintf(&logp, "%s/nodes.log", state_dir) < 0)
                        return -ENOMEM;
                int k = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
                if (k < 0)
                        return -errno;
                struct stat st;
                if (fstat(k, &st) < 0 || !S_ISREG(st.st_mode)) {
                        close(k);
                        return -EBADFD;
                }
                *fd = k;
        }
        json_object *o = node_to_json(node, seq, true);
        if (!o)
                return -ENOMEM;
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        size_t len = strlen(text);
        char *line = malloc(len + 2);
        if (!line) {
                json_object_put(o);
                return -ENOMEM;
        }
        memcpy(line, text, len);
        line[len++] = '\n';
        json_object_put(o);
        /* One write(): a record is whole in the file or, torn, ignored by the next load. */
        ssize_t k;
        do
                k = write(*fd, line, len);
        while (k < 0 && errno == EINTR);
        free(line);
        if (k < 0)
                return -errno;
        if ((size_t) k != len)
                return -ENOSPC;
        return 0;
}
