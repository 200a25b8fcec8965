/* Persistence of jobs and their images with atomic replace, so that a job survives a crash or SIGKILL of
 * canfleetd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "job-store.h"
#include "json-fields.h"
#include "log.h"

void job_record_done(struct job_record *r)
{
        for (size_t i = 0; i < r->n_nodes; i++)
                free(r->nodes[i].error);
        free(r->nodes);
        r->nodes = NULL;
        r->n_nodes = 0;
        for (size_t i = 0; r->skipped && i < 2 * r->n_skipped; i++)
                free(r->skipped[i]);
        free(r->skipped);
        r->skipped = NULL;
        r->n_skipped = 0;
}

static int mkdir_p(const char *path)
{
        _cleanup_(freep) char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = 0;
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *s = '/';
                }
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static char *path_join(const char *a, const char *b)
{
        char *p;
        return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

int job_store_prepare(const char *state_dir, const char *cache_dir)
{
        _cleanup_(freep) char *j = path_join(state_dir, "jobs");
        _cleanup_(freep) char *i = path_join(cache_dir, "images");
        if (!j || !i)
                return -ENOMEM;
        int r = mkdir_p(j);
        if (r < 0)
                return r;
        return mkdir_p(i);
}

int write_file_atomic(const char *dir, const char *name, const void *data, size_t size, mode_t mode)
{
        _cleanup_(freep) char *tmp = NULL, *dst = NULL;
        if (asprintf(&tmp, "%s/%s.tmp", dir, name) < 0 || asprintf(&dst, "%s/%s", dir, name) < 0)
                return -ENOMEM;

        /* Whatever sits at the tmp name is a leftover: remove it, and create afresh, so that a FIFO or
         * a symlink placed there can neither block us nor redirect the write. */
        (void) unlink(tmp);
        _cleanup_(closep) int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        const uint8_t *p = data;
        size_t left = size;
        while (left > 0) {
                ssize_t n = write(fd, p, left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        unlink(tmp);
                        return r;
                }
                p += n;
                left -= (size_t) n;
        }
        if (fsync(fd) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        if (rename(tmp, dst) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        _cleanup_(closep) int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

static json_object *record_to_json(const struct job_record *r)
{
        json_object *o = json_object_new_object();
        json_object *nodes = json_object_new_array();
        if (!o || !nodes) {
                json_object_put(o);
                json_object_put(nodes);
                return NULL;
        }
        json_object_object_add(o, "id", json_object_new_int64(r->id));
        json_object_object_add(o, "state", json_object_new_string(r->state));
        json_object_object_add(o, "created", json_object_new_int64((int64_t) r->created));
        json_object_object_add(o, "finished", json_object_new_int64((int64_t) r->finished));
        json_object_object_add(o, "force", json_object_new_boolean(r->force));
        json_object_object_add(o, "cancel", json_object_new_boolean(r->cancel));
        json_object_object_add(o, "image", json_object_new_string(r->image));
        json_object_object_add(o, "seq", json_object_new_int64((int64_t) r->seq));
        json_object_object_add(o, "version", json_object_new_string(r->version));
        json_object_object_add(o, "payload_sha", json_object_new_string(r->payload_sha));
        json_object_object_add(o, "hw_id", json_object_new_int(r->hw_id));
        json_object_object_add(o, "release", json_object_new_int64(r->release));
        json_object_object_add(o, "started", json_object_new_int64((int64_t) r->started));
        if (r->target[0]) {
                json_object_object_add(o, "target", json_object_new_string(r->target));
                json_object_object_add(o, "part_id", json_object_new_string(r->part_id));
        }
        if (r->n_skipped) {
                json_object *sk = json_object_new_array();
                for (size_t i = 0; sk && i < r->n_skipped; i++) {
                        json_object *pair = json_object_new_array();
                        if (!pair)
                                break;
                        json_object_array_add(pair, json_object_new_string(r->skipped[2 * i]));
                        json_object_array_add(pair, json_object_new_string(r->skipped[2 * i + 1]));
                        json_object_array_add(sk, pair);
                }
                json_object_object_add(o, "skipped", sk);
        }
        for (size_t i = 0; i < r->n_nodes; i++) {
                const struct job_record_node *n = &r->nodes[i];
                json_object *x = json_object_new_object();
                if (!x)
                        break;
                json_object_object_add(x, "bus", json_object_new_string(n->bus));
                json_object_object_add(x, "station", json_object_new_int(n->station));
                json_object_object_add(x, "step", json_object_new_string(n->step));
                json_object_object_add(x, "error", json_object_new_string(n->error ? n->error : ""));
                json_object_object_add(x, "bytes_done", json_object_new_int64((int64_t) n->bytes_done));
                json_object_object_add(x, "bytes_total", json_object_new_int64((int64_t) n->bytes_total));
                json_object_object_add(x, "group", json_object_new_boolean(n->group));
                json_object_array_add(nodes, x);
        }
        json_object_object_add(o, "nodes", nodes);
        return o;
}

int job_store_save(const char *state_dir, const struct job_record *r)
{
        json_object *o = record_to_json(r);
        if (!o)
                return -ENOMEM;
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        _cleanup_(freep) char *dir = path_join(state_dir, "jobs");
        char name[32];
        snprintf(name, sizeof name, "%u.json", r->id);
        int ret = dir ? write_file_atomic(dir, name, text, strlen(text), 0644) : -ENOMEM;
        json_object_put(o);
        if (ret < 0)
                return ret;
        /* The snapshot holds every record of the log (its seq says so): the log can go. A crash before
         * the unlink leaves records that the next load skips by their seq. */
        snprintf(name, sizeof name, "%u.log", r->id);
        _cleanup_(freep) char *log = path_join(dir, name);
        if (!log)
                return -ENOMEM;
        if (unlink(log) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* ---- the log ----------------------------------------------------------------------------------- */

int job_store_log_open(const char *state_dir, unsigned id, int *ret_fd)
{
        _cleanup_(freep) char *p = NULL;
        if (asprintf(&p, "%s/jobs/%u.log", state_dir, id) < 0)
                return -ENOMEM;
        int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADFD;
        }
        *ret_fd = fd;
        return 0;
}

static int append_line(int fd, json_object *o, bool sync)
{
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        size_t len = strlen(text);
        _cleanup_(freep) char *line = malloc(len + 2);
        if (!line)
                return -ENOMEM;
        memcpy(line, text, len);
        line[len++] = '\n';
        /* One write(): a record is either whole in the file or (a crash inside the kernel's copy aside)
         * not there. A short write is a full disk. */
        ssize_t n;
        do
                n = write(fd, line, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t) n != len)
                return -ENOSPC;
        if (sync && fdatasync(fd) < 0)
                return -errno;
        return 0;
}

int job_store_append_node(int fd, uint64_t seq, size_t idx, const struct job_record_node *n, bool sync)
{
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "seq", json_object_new_int64((int64_t) seq));
        json_object_object_add(o, "node", json_object_new_int64((int64_t) idx));
        json_object_object_add(o, "step", json_object_new_string(n->step));
        json_object_object_add(o, "error", json_object_new_string(n->error ? n->error : ""));
        json_object_object_add(o, "bytes_done", json_object_new_int64((int64_t) n->bytes_done));
        json_object_object_add(o, "bytes_total", json_object_new_int64((int64_t) n->bytes_total));
        json_object_object_add(o, "group", json_object_new_boolean(n->group));
        int r = append_line(fd, o, sync);
        json_object_put(o);
        return r;
}

int job_store_append_job(int fd, uint64_t seq, const char *state, uint64_t finished, bool cancel, bool sync)
{
        return job_store_append_job2(fd, seq, state, finished, cancel, 0, sync);
}

int job_store_append_job2(int fd, uint64_t seq, const char *state, uint64_t finished, bool cancel,
                          uint64_t started, bool sync)
{
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "seq", json_object_new_int64((int64_t) seq));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "finished", json_object_new_int64((int64_t) finished));
        json_object_object_add(o, "cancel", json_object_new_boolean(cancel));
        if (started)
                json_object_object_add(o, "started", json_object_new_int64((int64_t) started));
        int r = append_line(fd, o, sync);
        json_object_put(o);
        return r;
}

static int record_from_json(json_object *o, struct job_record *r)
{
        uint64_t v;
        json_object *nodes;
        *r = (struct job_record){0};
        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if (json_field_uint(o, "id", INT64_MAX, &v) < 0 || v == 0 || v > UINT32_MAX)
                return -EBADMSG;
        r->id = (unsigned) v;
        if (json_field_str(o, "state", r->state, sizeof r->state) < 0 ||
            json_field_str(o, "image", r->image, sizeof r->image) < 0 ||
            json_field_uint(o, "created", INT64_MAX, &r->created) < 0 ||
            json_field_uint(o, "finished", INT64_MAX, &r->finished) < 0)
                return -EBADMSG;
        r->force = json_field_flag(o, "force");
        r->cancel = json_field_flag(o, "cancel");
        json_object *sq;
        if (json_object_object_get_ex(o, "seq", &sq) && json_field_uint(o, "seq", INT64_MAX, &r->seq) < 0)
                return -EBADMSG;
        /* Optional (older files have none): what the image is, and the start time. */
        if (json_object_object_get_ex(o, "version", &sq) &&
            json_field_str(o, "version", r->version, sizeof r->version) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "payload_sha", &sq) &&
            json_field_str(o, "payload_sha", r->payload_sha, sizeof r->payload_sha) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "hw_id", &sq)) {
                if (json_field_uint(o, "hw_id", INT64_MAX, &v) < 0 || v > 0xFFFF)
                        return -EBADMSG;
                r->hw_id = (uint16_t) v;
        }
        if (json_object_object_get_ex(o, "release", &sq)) {
                if (json_field_uint(o, "release", INT64_MAX, &v) < 0 || v > UINT32_MAX)
                        return -EBADMSG;
                r->release = (uint32_t) v;
        }
        if (json_object_object_get_ex(o, "started", &sq) &&
            json_field_uint(o, "started", INT64_MAX, &r->started) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "target", &sq) &&
            (json_field_str(o, "target", r->target, sizeof r->target) < 0 ||
             json_field_str(o, "part_id", r->part_id, sizeof r->part_id) < 0))
                return -EBADMSG;
        if (json_object_object_get_ex(o, "skipped", &sq)) {
                if (!json_object_is_type(sq, json_type_array))
                        return -EBADMSG;
                size_t k = json_object_array_length(sq);
                r->skipped = calloc(2 * k + 1, sizeof *r->skipped);
                if (!r->skipped)
                        return -ENOMEM;
                for (size_t i = 0; i < k; i++) {
                        json_object *pair = json_object_array_get_idx(sq, i);
                        if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2 ||
                            !json_object_is_type(json_object_array_get_idx(pair, 0), json_type_string) ||
                            !json_object_is_type(json_object_array_get_idx(pair, 1), json_type_string))
                                return -EBADMSG;
                        r->n_skipped = i + 1;
                        r->skipped[2 * i] = strdup(json_object_get_string(json_object_array_get_idx(pair, 0)));
                        r->skipped[2 * i + 1] = strdup(json_object_get_string(json_object_array_get_idx(pair, 1)));
                        if (!r->skipped[2 * i] || !r->skipped[2 * i + 1])
                                return -ENOMEM;
                }
        }
        if (!json_object_object_get_ex(o, "nodes", &nodes) || !json_object_is_type(nodes, json_type_array))
                return -EBADMSG;
        size_t n = json_object_array_length(nodes);
        r->nodes = calloc(n ? n : 1, sizeof *r->nodes);
        if (!r->nodes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *x = json_object_array_get_idx(nodes, i), *e;
                struct job_record_node *rn = &r->nodes[i];
                r->n_nodes = i + 1;
                if (!json_object_is_type(x, json_type_object) ||
                    json_field_str(x, "bus", rn->bus, sizeof rn->bus) < 0 ||
                    json_field_str(x, "step", rn->step, sizeof rn->step) < 0 ||
                    json_field_uint(x, "station", INT64_MAX, &v) < 0 || v > 0xFFFF ||
                    json_field_uint(x, "bytes_done", INT64_MAX, &rn->bytes_done) < 0 ||
                    json_field_uint(x, "bytes_total", INT64_MAX, &rn->bytes_total) < 0)
                        return -EBADMSG;
                rn->station = (uint16_t) v;
                rn->group = json_object_object_get_ex(x, "group", &e) && json_object_is_type(e, json_type_boolean) &&
                            json_object_get_boolean(e);
                if (json_object_object_get_ex(x, "error", &e) && json_object_is_type(e, json_type_string) &&
                    *json_object_get_string(e)) {
                        rn->error = strdup(json_object_get_string(e));
                        if (!rn->error)
                                return -ENOMEM;
                }
        }
        return 0;
}

static int cmp_record(const void *a, const void *b)
{
        const struct job_record *x = a, *y = b;
        return x->id < y->id ? -1 : x->id > y->id;
}

/* Read a whole regular file below dirfd, never blocking: a FIFO or device there is refused with
 * -EBADFD without a read, a symlink with -ELOOP. NUL-terminated. */
static int read_regular(int dirfd, const char *name, size_t max, char **ret, size_t *size_ret)
{
        _cleanup_(closep) int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        size_t cap = (size_t) st.st_size;
        _cleanup_(freep) char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        while (got < cap) {
                ssize_t n = read(fd, buf + got, cap - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        if (size_ret)
                *size_ret = got;
        return 0;
}

#define JOB_FILE_MAX (256u << 20)

static const char *read_strerror(int r)
{
        return r == -EBADFD ? "not a regular file" : strerror(-r);
}

/* Apply one log record; -EBADMSG when it is not one. */
static int apply_record(struct job_record *r, json_object *o)
{
        uint64_t seq, v;
        json_object *x;
        if (!json_object_is_type(o, json_type_object) || json_field_uint(o, "seq", INT64_MAX, &seq) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "node", &x)) {
                struct job_record_node n = {0};
                if (json_field_uint(o, "node", INT64_MAX, &v) < 0 || v >= r->n_nodes ||
                    json_field_str(o, "step", n.step, sizeof n.step) < 0 ||
                    json_field_uint(o, "bytes_done", INT64_MAX, &n.bytes_done) < 0 ||
                    json_field_uint(o, "bytes_total", INT64_MAX, &n.bytes_total) < 0)
                        return -EBADMSG;
                if (seq <= r->seq)
                        return 0; /* already in the snapshot */
                struct job_record_node *t = &r->nodes[v];
                char *e = NULL;
                if (json_object_object_get_ex(o, "error", &x) && json_object_is_type(x, json_type_string) &&
                    *json_object_get_string(x) && !(e = strdup(json_object_get_string(x))))
                        return -ENOMEM;
                free(t->error);
                t->error = e;
                memcpy(t->step, n.step, sizeof t->step);
                t->bytes_done = n.bytes_done;
                t->bytes_total = n.bytes_total;
                t->group = json_object_object_get_ex(o, "group", &x) && json_object_is_type(x, json_type_boolean) &&
                           json_object_get_boolean(x);
        } else {
                char state[sizeof r->state];
                if (json_field_str(o, "state", state, sizeof state) < 0 ||
                    json_field_uint(o, "finished", INT64_MAX, &v) < 0)
                        return -EBADMSG;
                if (seq <= r->seq)
                        return 0;
                memcpy(r->state, state, sizeof state);
                r->finished = v;
                r->cancel = json_field_flag(o, "cancel");
                if (json_object_object_get_ex(o, "started", &x) &&
                    json_field_uint(o, "started", INT64_MAX, &v) >= 0)
                        r->started = v;
        }
        r->seq = seq;
        return 0;
}

static void replay_log(int dirfd, const char *dir, struct job_record *r)
{
        char name[32];
        snprintf(name, sizeof name, "%u.log", r->id);
        _cleanup_(freep) char *text = NULL;
        size_t size;
        int k = read_regular(dirfd, name, JOB_FILE_MAX, &text, &size);
        if (k == -ENOENT)
                return;
        if (k < 0) {
                log_warning("%s/%s: %s; job %u goes on from its snapshot", dir, name, read_strerror(k),
                            r->id);
                return;
        }
        unsigned line = 0;
        for (char *p = text; p < text + size;) {
                char *nl = memchr(p, '\n', (size_t) (text + size - p));
                line++;
                if (!nl) {
                        /* A torn append: that change never counted (its step had not acted). */
                        log_debug("%s/%s:%u: torn last record ignored", dir, name, line);
                        break;
                }
                *nl = 0;
                json_object *o = json_tokener_parse(p);
                k = o ? apply_record(r, o) : -EBADMSG;
                json_object_put(o);
                if (k < 0) {
                        log_warning("%s/%s:%u: %s; the records from there on are ignored", dir, name, line,
                                    k == -EBADMSG ? "not a valid job record" : strerror(-k));
                        break;
                }
                p = nl + 1;
        }
}

static int cmp_node_ref(const void *a, const void *b, void *userdata)
{
        const struct job_record *r = userdata;
        const struct job_record_node *x = &r->nodes[*(const size_t *) a],
                                     *y = &r->nodes[*(const size_t *) b];
        int c = strcmp(x->bus, y->bus);
        if (c)
                return c;
        if (x->station != y->station)
                return x->station < y->station ? -1 : 1;
        /* the first entry of a duplicate stays first */
        return *(const size_t *) a < *(const size_t *) b ? -1 : 1;
}

static bool step_final(const char *step)
{
        return strcmp(step, "done") == 0 || strcmp(step, "failed") == 0 || strcmp(step, "cancelled") == 0 ||
               strcmp(step, "confirmed") == 0;
}

/* A node listed twice would have two state machines driving one CCP session: the first entry goes on,
 * a later unfinished one is failed with the reason. Sorting keeps it O(n log n) for big jobs. */
static int mark_duplicates(struct job_record *r, const char *path)
{
        if (r->n_nodes < 2)
                return 0;
        _cleanup_(freep) size_t *idx = calloc(r->n_nodes, sizeof *idx);
        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_nodes; i++)
                idx[i] = i;
        qsort_r(idx, r->n_nodes, sizeof *idx, cmp_node_ref, r);
        for (size_t i = 1; i < r->n_nodes; i++) {
                struct job_record_node *a = &r->nodes[idx[i - 1]], *b = &r->nodes[idx[i]];
                if (strcmp(a->bus, b->bus) != 0 || a->station != b->station)
                        continue;
                log_warning(
                    "%s: node %s:%u is listed twice in job %u (entries %zu and %zu): the first goes on",
                    path, b->bus, b->station, r->id, idx[i - 1], idx[i]);
                if (step_final(b->step))
                        continue;
                char *e = NULL;
                if (asprintf(&e, "%s:%u: listed twice in job %u (damaged job file); the first entry goes on",
                             b->bus, b->station, r->id) < 0)
                        return -ENOMEM;
                free(b->error);
                b->error = e;
                snprintf(b->step, sizeof b->step, "failed");
        }
        return 0;
}

/* "N.json" with N in 1..UINT32_MAX written canonically; anything else is not a job file name. */
static bool job_file_name(const char *name, unsigned *id)
{
        uint64_t v = 0;
        const char *p = name;
        if (*p < '1' || *p > '9')
                return false;
        for (; *p >= '0' && *p <= '9'; p++) {
                v = v * 10u + (uint64_t) (*p - '0');
                if (v > UINT32_MAX)
                        return false;
        }
        if (strcmp(p, ".json") != 0)
                return false;
        *id = (unsigned) v;
        return true;
}

int job_store_load_all(const char *state_dir, struct job_record **ret, size_t *n_ret, unsigned *max_id)
{
        _cleanup_(freep) char *dir = path_join(state_dir, "jobs");
        if (!dir)
                return -ENOMEM;
        *ret = NULL;
        *n_ret = 0;
        *max_id = 0;
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;

        struct job_record *recs = NULL;
        size_t n = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                const char *name = de->d_name;
                size_t len = strlen(name);
                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        continue;
                if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
                        /* A write interrupted before its rename: the old file (if any) is the truth. */
                        unlinkat(dirfd(d), name, 0);
                        continue;
                }
                unsigned id;
                if (len > 4 && strcmp(name + len - 4, ".log") == 0)
                        continue; /* read with its job */
                if (!job_file_name(name, &id)) {
                        log_warning("%s/%s: not a job file name (N.json, N a job id without leading zeros), "
                                    "ignored",
                                    dir, name);
                        continue;
                }
                if (id > *max_id)
                        *max_id = id;
                _cleanup_(freep) char *path = path_join(dir, name);
                _cleanup_(freep) char *text = NULL;
                if (!path) {
                        r = -ENOMEM;
                        break;
                }
                int k = read_regular(dirfd(d), name, JOB_FILE_MAX, &text, NULL);
                if (k < 0) {
                        log_warning("%s: %s, ignored", path, read_strerror(k));
                        continue;
                }
                json_object *o = json_tokener_parse(text);
                struct job_record rec = {0};
                k = o ? record_from_json(o, &rec) : -EBADMSG;
                json_object_put(o);
                if (k == 0 && rec.id != id)
                        k = -EBADMSG;
                if (k == 0) {
                        replay_log(dirfd(d), dir, &rec);
                        k = mark_duplicates(&rec, path);
                }
                if (k < 0) {
                        job_record_done(&rec);
                        log_warning("%s: not a valid job file, ignored", path);
                        continue;
                }
                struct job_record *p = realloc(recs, (n + 1) * sizeof *p);
                if (!p) {
                        job_record_done(&rec);
                        r = -ENOMEM;
                        break;
                }
                recs = p;
                recs[n++] = rec;
        }
        closedir(d);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        job_record_done(&recs[i]);
                free(recs);
                return r;
        }
        if (n > 1)
                qsort(recs, n, sizeof *recs, cmp_record);
        *ret = recs;
        *n_ret = n;
        return 0;
}

bool job_store_id_taken(const char *state_dir, unsigned id)
{
        _cleanup_(freep) char *p = NULL;
        struct stat st;
        if (asprintf(&p, "%s/jobs/%u.json", state_dir, id) < 0)
                return true;
        return lstat(p, &st) == 0 || errno != ENOENT;
}

int job_store_remove(const char *state_dir, unsigned id)
{
        _cleanup_(freep) char *p = NULL, *l = NULL;
        if (asprintf(&p, "%s/jobs/%u.json", state_dir, id) < 0 ||
            asprintf(&l, "%s/jobs/%u.log", state_dir, id) < 0)
                return -ENOMEM;
        if (unlink(l) < 0 && errno != ENOENT)
                return -errno;
        if (unlink(p) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static bool valid_sha(const char *s)
{
        if (strlen(s) != 64)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

int job_store_put_image(const char *cache_dir, const char *sha_hex, const uint8_t *data, size_t size)
{
        if (!valid_sha(sha_hex))
                return -EINVAL;
        _cleanup_(freep) char *dir = path_join(cache_dir, "images");
        char name[80];
        snprintf(name, sizeof name, "%s.img", sha_hex);
        return dir ? write_file_atomic(dir, name, data, size, 0644) : -ENOMEM;
}

int job_store_get_image(const char *cache_dir, const char *sha_hex, size_t max, uint8_t **ret,
                        size_t *size_ret)
{
        if (!valid_sha(sha_hex))
                return -EINVAL;
        _cleanup_(freep) char *p = NULL;
        if (asprintf(&p, "%s/images/%s.img", cache_dir, sha_hex) < 0)
                return -ENOMEM;
        /* O_NONBLOCK: a FIFO put in the cache must not block startup; only a regular file is read. */
        _cleanup_(closep) int fd = open(p, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        _cleanup_(freep) uint8_t *buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        for (;;) {
                ssize_t n = read(fd, buf + got, max + 1 - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t) n;
                if (got > max)
                        return -EFBIG;
        }
        *ret = TAKE_PTR(buf);
        *size_ret = got;
        return 0;
}

int job_store_drop_image(const char *cache_dir, const char *sha_hex)
{
        if (!valid_sha(sha_hex))
                return -EINVAL;
        _cleanup_(freep) char *p = NULL;
        if (asprintf(&p, "%s/images/%s.img", cache_dir, sha_hex) < 0)
                return -ENOMEM;
        if (unlink(p) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
