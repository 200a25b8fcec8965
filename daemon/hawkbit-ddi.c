/* hawkBit DDI documents with json-c: the root resource, deployments, cancel requests, configData, feedback.
 */
#include "hawkbit-ddi.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cleanup.h"

static json_object *parse_json(const uint8_t *data, size_t size)
{
        if (!data || size == 0 || size > INT32_MAX)
                return NULL;
        json_tokener *tok = json_tokener_new();
        if (!tok)
                return NULL;
        json_object *o = json_tokener_parse_ex(tok, (const char *) data, (int) size);
        /* One document and nothing after it. */
        if (o && (json_tokener_get_error(tok) != json_tokener_success ||
                  json_tokener_get_parse_end(tok) != size)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

static json_object *jget(json_object *o, const char *key)
{
        json_object *v = NULL;
        if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v = jget(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static const char *link_href(json_object *links, const char *name)
{
        return jstr(jget(links, name), "href");
}

static int parse_id(const char *s, uint64_t *ret)
{
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v == 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

int ddi_parse_sleep(const char *s, unsigned *ret)
{
        if (!s || strlen(s) != 8 || s[2] != ':' || s[5] != ':')
                return -EINVAL;
        for (size_t i = 0; i < 8; i++)
                if (i != 2 && i != 5 && !isdigit((unsigned char) s[i]))
                        return -EINVAL;
        unsigned hh = (unsigned) (s[0] - '0') * 10 + (unsigned) (s[1] - '0');
        unsigned mm = (unsigned) (s[3] - '0') * 10 + (unsigned) (s[4] - '0');
        unsigned ss = (unsigned) (s[6] - '0') * 10 + (unsigned) (s[7] - '0');
        if (mm > 59 || ss > 59)
                return -EINVAL;
        *ret = hh * 3600 + mm * 60 + ss;
        return 0;
}

void ddi_root_clear(struct ddi_root *r)
{
        free(r->deployment_href);
        free(r->cancel_href);
        memset(r, 0, sizeof *r);
}

int ddi_parse_root(const uint8_t *data, size_t size, struct ddi_root *ret)
{
        memset(ret, 0, sizeof *ret);
        json_object *o = parse_json(data, size);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        ret->has_sleep =
            ddi_parse_sleep(jstr(jget(jget(o, "config"), "polling"), "sleep"), &ret->sleep_s) >= 0;
        json_object *links = jget(o, "_links");
        const char *dep = link_href(links, "deploymentBase"), *cancel = link_href(links, "cancelAction");
        ret->config_requested = jget(links, "configData") != NULL;
        int r = 0;
        if ((dep && !(ret->deployment_href = strdup(dep))) ||
            (cancel && !(ret->cancel_href = strdup(cancel)))) {
                ddi_root_clear(ret);
                r = -ENOMEM;
        }
        json_object_put(o);
        return r;
}

static enum hawkbit_handling handling(const char *s)
{
        if (s && strcmp(s, "skip") == 0)
                return HAWKBIT_SKIP;
        if (s && strcmp(s, "forced") == 0)
                return HAWKBIT_FORCED;
        return HAWKBIT_ATTEMPT;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* NULL, or why the deployment cannot be used. Strings are copied into ret. */
static const char *deployment_from(json_object *o, struct ddi_deployment *ret)
{
        struct hawkbit_deployment *d = &ret->d;
        if (parse_id(jstr(o, "id"), &d->action_id) < 0)
                return "the deployment has no numeric id";
        json_object *dep = jget(o, "deployment");
        if (!dep)
                return "the deployment has no deployment object";
        d->download = handling(jstr(dep, "download"));
        d->update = handling(jstr(dep, "update"));
        const char *mw = jstr(dep, "maintenanceWindow");
        d->maintenance_window_given = mw != NULL;
        d->maintenance_window_available = !mw || strcmp(mw, "unavailable") != 0;

        json_object *chunks = jget(dep, "chunks"), *found = NULL, *found_chunk = NULL;
        unsigned n_found = 0;
        size_t nc =
            chunks && json_object_is_type(chunks, json_type_array) ? json_object_array_length(chunks) : 0;
        for (size_t i = 0; i < nc; i++) {
                json_object *chunk = json_object_array_get_idx(chunks, i), *arts = jget(chunk, "artifacts");
                size_t na =
                    arts && json_object_is_type(arts, json_type_array) ? json_object_array_length(arts) : 0;
                for (size_t j = 0; j < na; j++) {
                        json_object *a = json_object_array_get_idx(arts, j);
                        const char *fn = jstr(a, "filename");
                        if (fn && ends_with(fn, ".cfb") && n_found++ == 0) {
                                found = a;
                                found_chunk = chunk;
                        }
                }
        }
        if (n_found == 0)
                return "no *.cfb artifact in the deployment";
        /* Which one a node should get would be a guess. */
        if (n_found > 1)
                return "more than one *.cfb artifact in the deployment";
        json_object *links = jget(found, "_links");
        const char *url = link_href(links, "download");
        if (!url)
                url = link_href(links, "download-http");
        if (!url)
                return "the *.cfb artifact has no download link";
        /* The server names what canfleetd opens: file:// would have it read its own files (a FIFO
         * blocks it for ever, a device node acts when opened), other schemes are not ours. */
        if (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0)
                return "the *.cfb artifact's download link is not an http:// or https:// URL";
        const char *sha = jstr(jget(found, "hashes"), "sha256");
        if (!sha || strlen(sha) != 64)
                return "the *.cfb artifact has no sha256";
        for (size_t i = 0; i < 64; i++) {
                if (!isxdigit((unsigned char) sha[i]))
                        return "the *.cfb artifact's sha256 is not hex";
                d->artifact_sha256[i] = (char) tolower((unsigned char) sha[i]);
        }
        d->artifact_sha256[64] = 0;
        json_object *size = jget(found, "size");
        if (!size || !json_object_is_type(size, json_type_int) || json_object_get_int64(size) <= 0)
                return "the *.cfb artifact has no size";
        d->artifact_size = (uint64_t) json_object_get_int64(size);
        const char *version = jstr(found_chunk, "version");
        ret->artifact_name = strdup(jstr(found, "filename"));
        ret->artifact_url = strdup(url);
        ret->version = version ? strdup(version) : NULL;
        if (!ret->artifact_name || !ret->artifact_url || (version && !ret->version))
                return "out of memory";
        d->artifact_name = ret->artifact_name;
        d->artifact_url = ret->artifact_url;
        d->version = ret->version;
        return NULL;
}

int ddi_parse_deployment(const uint8_t *data, size_t size, struct ddi_deployment *ret, const char **why)
{
        memset(ret, 0, sizeof *ret);
        json_object *o = parse_json(data, size);
        const char *w = o && json_object_is_type(o, json_type_object)
                            ? deployment_from(o, ret)
                            : "the deployment is not a JSON object";
        json_object_put(o);
        if (w) {
                uint64_t id = ret->d.action_id;
                ddi_deployment_clear(ret);
                ret->d.action_id = id;
                if (why)
                        *why = w;
                return strcmp(w, "out of memory") == 0 ? -ENOMEM : -EBADMSG;
        }
        return 0;
}

void ddi_deployment_clear(struct ddi_deployment *d)
{
        free(d->version);
        free(d->artifact_name);
        free(d->artifact_url);
        memset(d, 0, sizeof *d);
}

int ddi_parse_cancel(const uint8_t *data, size_t size, uint64_t *ret_stop_id)
{
        json_object *o = parse_json(data, size);
        int r = parse_id(jstr(jget(o, "cancelAction"), "stopId"), ret_stop_id) < 0 ? -EBADMSG : 0;
        json_object_put(o);
        return r;
}

static char *to_string(json_object *o)
{
        char *s = o ? strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) : NULL;
        json_object_put(o);
        return s;
}

static void add_str(json_object *o, const char *key, const char *value)
{
        if (value)
                json_object_object_add(o, key, json_object_new_string(value));
}

static void add_uint(json_object *o, const char *key, uint64_t value)
{
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRIu64, value);
        add_str(o, key, buf);
}

char *ddi_config_data_body(const struct hawkbit_node *n)
{
        json_object *o = json_object_new_object(), *d = json_object_new_object();
        if (!o || !d) {
                json_object_put(o);
                json_object_put(d);
                return NULL;
        }
        add_str(o, "mode", "merge");
        add_uint(d, "hw_id", n->hw_id);
        add_str(d, "bootloader_version", n->bootloader_version);
        add_str(d, "bus", n->bus);
        add_uint(d, "station", n->station);
        add_str(d, "version", n->version);
        add_uint(d, "release", n->release);
        json_object_object_add(o, "data", d);
        return to_string(o);
}

char *ddi_feedback_body(const char *execution, const char *finished, const char *details,
                        uint64_t timestamp_ms)
{
        json_object *body = json_object_new_object(), *status = json_object_new_object(),
                    *result = json_object_new_object();
        if (!body || !status || !result) {
                json_object_put(body);
                json_object_put(status);
                json_object_put(result);
                return NULL;
        }
        add_str(result, "finished", finished);
        add_str(status, "execution", execution);
        json_object_object_add(status, "result", result);
        if (details) {
                size_t n = strcspn(details, "\r\n");
                if (n > HAWKBIT_DETAILS_MAX)
                        n = HAWKBIT_DETAILS_MAX;
                /* Back to the start of a UTF-8 sequence the cut would split. */
                while (n > 0 && details[n] && ((unsigned char) details[n] & 0xC0) == 0x80)
                        n--;
                _cleanup_(freep) char *line = strndup(details, n);
                json_object *arr = json_object_new_array();
                if (!line || !arr) {
                        json_object_put(arr);
                        json_object_put(body);
                        json_object_put(status);
                        return NULL;
                }
                json_object_array_add(arr, json_object_new_string(line));
                json_object_object_add(status, "details", arr);
        }
        json_object_object_add(body, "status", status);
        json_object_object_add(body, "timestamp", json_object_new_int64((int64_t) timestamp_ms));
        return to_string(body);
}

bool ddi_feedback_closes(const char *body)
{
        json_object *o = body ? parse_json((const uint8_t *) body, strlen(body)) : NULL;
        const char *e = jstr(jget(o, "status"), "execution");
        bool closes = e && strcmp(e, "closed") == 0;
        json_object_put(o);
        return closes;
}
