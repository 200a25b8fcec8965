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
#include "log.h"

void job_record_done(struct job_record *r)
{
        for (size_t i = 0; i < r->n_nodes; i++)
                free(r->nodes[i].error);
        free(r->nodes);
        r->nodes = NULL;
        r->n_nodes = 0;
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

int write_file_atomic(const char *dir, const char *name, const void *data, size_t size)
{
        _cleanup_(freep) char *tmp = NULL, *dst = NULL;
        if (asprintf(&tmp, "%s/%s.tmp", dir, name) < 0 || asprintf(&dst, "%s/%s", dir, name) < 0)
                return -ENOMEM;

        _cleanup_(closep) int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
        int ret = dir ? write_file_atomic(dir, name, text, strlen(text)) : -ENOMEM;
        json_object_put(o);
        return ret;
}

static int copy_str(json_object *o, const char *key, char *out, size_t size)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return -EBADMSG;
        const char *s = json_object_get_string(v);
        if (strlen(s) >= size)
                return -EBADMSG;
        strcpy(out, s);
        return 0;
}

static int get_u64(json_object *o, const char *key, uint64_t *out)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return -EBADMSG;
        int64_t x = json_object_get_int64(v);
        if (x < 0)
                return -EBADMSG;
        *out = (uint64_t) x;
        return 0;
}

static bool get_bool(json_object *o, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static int record_from_json(json_object *o, struct job_record *r)
{
        uint64_t v;
        json_object *nodes;
        *r = (struct job_record){0};
        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if (get_u64(o, "id", &v) < 0 || v == 0 || v > UINT32_MAX)
                return -EBADMSG;
        r->id = (unsigned) v;
        if (copy_str(o, "state", r->state, sizeof r->state) < 0 ||
            copy_str(o, "image", r->image, sizeof r->image) < 0 || get_u64(o, "created", &r->created) < 0 ||
            get_u64(o, "finished", &r->finished) < 0)
                return -EBADMSG;
        r->force = get_bool(o, "force");
        r->cancel = get_bool(o, "cancel");
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
                    copy_str(x, "bus", rn->bus, sizeof rn->bus) < 0 ||
                    copy_str(x, "step", rn->step, sizeof rn->step) < 0 || get_u64(x, "station", &v) < 0 ||
                    v > 0xFFFF || get_u64(x, "bytes_done", &rn->bytes_done) < 0 ||
                    get_u64(x, "bytes_total", &rn->bytes_total) < 0)
                        return -EBADMSG;
                rn->station = (uint16_t) v;
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
                if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
                        /* A write interrupted before its rename: the old file (if any) is the truth. */
                        unlinkat(dirfd(d), name, 0);
                        continue;
                }
                char *end;
                unsigned long id = strtoul(name, &end, 10);
                if (end == name || strcmp(end, ".json") != 0 || id == 0 || id > UINT32_MAX)
                        continue;
                if (id > *max_id)
                        *max_id = (unsigned) id;
                _cleanup_(freep) char *path = path_join(dir, name);
                if (!path) {
                        r = -ENOMEM;
                        break;
                }
                json_object *o = json_object_from_file(path);
                struct job_record rec = {0};
                int k = o ? record_from_json(o, &rec) : -EBADMSG;
                json_object_put(o);
                if (k == 0 && rec.id != id)
                        k = -EBADMSG;
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

int job_store_remove(const char *state_dir, unsigned id)
{
        _cleanup_(freep) char *p = NULL;
        if (asprintf(&p, "%s/jobs/%u.json", state_dir, id) < 0)
                return -ENOMEM;
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
        return dir ? write_file_atomic(dir, name, data, size) : -ENOMEM;
}

int job_store_get_image(const char *cache_dir, const char *sha_hex, size_t max, uint8_t **ret,
                        size_t *size_ret)
{
        if (!valid_sha(sha_hex))
                return -EINVAL;
        _cleanup_(freep) char *p = NULL;
        if (asprintf(&p, "%s/images/%s.img", cache_dir, sha_hex) < 0)
                return -ENOMEM;
        _cleanup_(closep) int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
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
