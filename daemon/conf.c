/* Parsing and checking of canfleetd.conf with json-c: one message per problem, naming the key. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>

#include <json-c/json.h>

#include <inttypes.h>

#include "canfleet/ccp.h"
#include "canfleet/sha256.h"
#include "canfleet/slcan.h"
#include "cleanup.h"
#include "conf.h"

#define CAN_SFF_MAX 0x7FFu

struct ctx {
        const char *path;
        char **error;
};

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *x, const char *key, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (x->error && asprintf(x->error, "%s: %s%s%s", x->path, key ? key : "", key ? ": " : "", msg) < 0)
                *x->error = NULL;
        return -EINVAL;
}

static const char *type_name(json_object *o)
{
        switch (json_object_get_type(o)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "a boolean";
        case json_type_double:
                return "a fraction";
        case json_type_int:
                return "a number";
        case json_type_object:
                return "an object";
        case json_type_array:
                return "an array";
        case json_type_string:
                return "a string";
        }
        return "something else";
}

/* Every key of o must be in allowed. */
static int check_keys(struct ctx *x, json_object *o, const char *prefix, const char *const *allowed)
{
        json_object_object_foreach(o, k, v)
        {
                (void) v;
                bool ok = false;
                for (const char *const *a = allowed; *a; a++)
                        if (strcmp(*a, k) == 0)
                                ok = true;
                if (!ok) {
                        char key[256];
                        snprintf(key, sizeof key, "%s%s", prefix, k);
                        return fail(x, key, "unknown key");
                }
        }
        return 0;
}

static int get_uint(struct ctx *x, json_object *o, const char *key, uint64_t min, uint64_t max,
                    bool hex_string, uint64_t *out)
{
        if (json_object_is_type(o, json_type_int)) {
                int64_t v = json_object_get_int64(o);
                if (v < 0 || (uint64_t) v < min || (uint64_t) v > max)
                        return fail(x, key, "%" PRId64 " is out of range %" PRIu64 "..%" PRIu64, v, min,
                                    max);
                *out = (uint64_t) v;
                return 0;
        }
        if (hex_string && json_object_is_type(o, json_type_string)) {
                const char *s = json_object_get_string(o);
                char *end;
                errno = 0;
                unsigned long long v = strtoull(s, &end, 0);
                if (errno || !*s || *end || *s == '-')
                        return fail(x, key, "\"%s\" is not a number (e.g. 1664 or \"0x680\")", s);
                if (v < min || v > max)
                        return fail(x, key, "\"%s\" is out of range 0x%" PRIX64 "..0x%" PRIX64, s, min, max);
                *out = v;
                return 0;
        }
        return fail(x, key, "%s is not %s", type_name(o),
                    hex_string ? "a number or a \"0x...\" string" : "a number");
}

static int get_string(struct ctx *x, json_object *o, const char *key, const char **out)
{
        if (!json_object_is_type(o, json_type_string))
                return fail(x, key, "%s is not a string", type_name(o));
        const char *s = json_object_get_string(o);
        if (!*s)
                return fail(x, key, "is empty");
        *out = s;
        return 0;
}

static int get_seedkey(struct ctx *x, json_object *o, const char *key, bool *echo)
{
        const char *s;
        int r = get_string(x, o, key, &s);
        if (r < 0)
                return r;
        if (strcmp(s, "hmac") == 0)
                *echo = false;
        else if (strcmp(s, "echo") == 0)
                *echo = true;
        else
                return fail(x, key, "\"%s\" is not \"hmac\" or \"echo\"", s);
        return 0;
}

static bool valid_bus_name(const char *s)
{
        size_t n = strlen(s);
        if (n < 1 || n > CF_BUS_NAME_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

static bool valid_baud(uint32_t b)
{
        static const uint32_t ok[] = {9600,   19200,  38400,   57600,   115200,  230400,  460800,  500000,
                                      576000, 921600, 1000000, 1152000, 1500000, 2000000, 3000000, 4000000};
        for (size_t i = 0; i < ELEMENTSOF(ok); i++)
                if (ok[i] == b)
                        return true;
        return false;
}

static bool slcan_bitrate_ok(uint32_t b)
{
        return cf_slcan_bitrate_code(b) != 0;
}

static int parse_transport(struct ctx *x, struct cf_bus_conf *b, json_object *o, const char *key)
{
        const char *s;
        int r = get_string(x, o, key, &s);
        if (r < 0)
                return r;
        b->transport = strdup(s);
        if (!b->transport)
                return -ENOMEM;
        if (strncmp(s, "slcan:", 6) == 0 && s[6]) {
                b->kind = CF_TRANSPORT_SLCAN;
                b->baud = 115200;
                const char *at = strrchr(s + 6, '@');
                if (at) {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(at + 1, &end, 10);
                        if (errno || !at[1] || *end || v > UINT32_MAX || !valid_baud((uint32_t) v))
                                return fail(x, key, "\"%s\": \"%s\" is not a serial speed (e.g. 115200)", s,
                                            at + 1);
                        b->baud = (uint32_t) v;
                        b->device = strndup(s + 6, (size_t) (at - (s + 6)));
                } else {
                        b->device = strdup(s + 6);
                }
                if (!b->device)
                        return -ENOMEM;
                if (!*b->device)
                        return fail(x, key, "\"%s\" names no device", s);
                return 0;
        }
        if (strncmp(s, "socketcan:", 10) == 0 && s[10]) {
                b->kind = CF_TRANSPORT_SOCKETCAN;
                if (strlen(s + 10) >= 16 || strchr(s + 10, '/'))
                        return fail(x, key, "\"%s\": \"%s\" is not a network interface name", s, s + 10);
                b->device = strdup(s + 10);
                return b->device ? 0 : -ENOMEM;
        }
        return fail(x, key, "\"%s\" is not \"slcan:DEV\" or \"socketcan:IF\"", s);
}

static int parse_node(struct ctx *x, struct cf_bus_conf *b, json_object *o, const char *key,
                      struct cf_node_conf *n)
{
        char k[400];
        uint64_t v;
        int r;

        n->seedkey_echo = b->seedkey_echo;
        if (json_object_is_type(o, json_type_int)) {
                r = get_uint(x, o, key, 1, 0xFFFF, false, &v);
                if (r < 0)
                        return r;
                n->station = (uint16_t) v;
                n->cro_id = b->cro_base + n->station;
                n->dto_id = b->dto_base + n->station;
        } else if (json_object_is_type(o, json_type_object)) {
                static const char *const allowed[] = {"station", "cro_id", "dto_id", "seedkey", NULL};
                snprintf(k, sizeof k, "%s.", key);
                r = check_keys(x, o, k, allowed);
                if (r < 0)
                        return r;
                json_object *f;
                snprintf(k, sizeof k, "%s.station", key);
                if (!json_object_object_get_ex(o, "station", &f))
                        return fail(x, k, "missing");
                r = get_uint(x, f, k, 1, 0xFFFF, false, &v);
                if (r < 0)
                        return r;
                n->station = (uint16_t) v;
                n->cro_id = b->cro_base + n->station;
                n->dto_id = b->dto_base + n->station;
                if (json_object_object_get_ex(o, "cro_id", &f)) {
                        snprintf(k, sizeof k, "%s.cro_id", key);
                        r = get_uint(x, f, k, 0, CAN_SFF_MAX, true, &v);
                        if (r < 0)
                                return r;
                        n->cro_id = (uint32_t) v;
                }
                if (json_object_object_get_ex(o, "dto_id", &f)) {
                        snprintf(k, sizeof k, "%s.dto_id", key);
                        r = get_uint(x, f, k, 0, CAN_SFF_MAX, true, &v);
                        if (r < 0)
                                return r;
                        n->dto_id = (uint32_t) v;
                }
                if (json_object_object_get_ex(o, "seedkey", &f)) {
                        snprintf(k, sizeof k, "%s.seedkey", key);
                        r = get_seedkey(x, f, k, &n->seedkey_echo);
                        if (r < 0)
                                return r;
                }
        } else {
                return fail(x, key, "%s is not a station address or a node object", type_name(o));
        }
        if (n->cro_id > CAN_SFF_MAX || n->dto_id > CAN_SFF_MAX)
                return fail(x, key, "station %u gives CAN id 0x%X/0x%X beyond 0x7FF", n->station, n->cro_id,
                            n->dto_id);
        if (n->cro_id == n->dto_id)
                return fail(x, key, "CRO and DTO ids are the same (0x%X)", n->cro_id);
        return 0;
}

static int parse_bus(struct ctx *x, json_object *o, size_t idx, struct cf_conf *c)
{
        static const char *const allowed[] = {"name",     "transport", "bitrate",      "nodes",   "scan",
                                              "cro_base", "dto_base",  "max_parallel", "seedkey", NULL};
        struct cf_bus_conf *b = &c->buses[idx];
        char p[64], k[256];
        json_object *f;
        uint64_t v;
        int r;

        snprintf(p, sizeof p, "buses[%zu]", idx);
        if (!json_object_is_type(o, json_type_object))
                return fail(x, p, "%s is not an object", type_name(o));
        snprintf(k, sizeof k, "%s.", p);
        r = check_keys(x, o, k, allowed);
        if (r < 0)
                return r;

        *b = (struct cf_bus_conf){.bitrate = 500000,
                                  .scan_first = CF_CCP_STATION_MIN,
                                  .scan_last = CF_CCP_STATION_MAX,
                                  .cro_base = CF_CCP_CRO_BASE_DEFAULT,
                                  .dto_base = CF_CCP_DTO_BASE_DEFAULT,
                                  .max_parallel = 16};

        snprintf(k, sizeof k, "%s.name", p);
        if (!json_object_object_get_ex(o, "name", &f))
                return fail(x, k, "missing");
        const char *name;
        r = get_string(x, f, k, &name);
        if (r < 0)
                return r;
        if (!valid_bus_name(name))
                return fail(x, k, "\"%s\" is not 1 to 15 of [A-Za-z0-9_-]", name);
        for (size_t i = 0; i < idx; i++)
                if (strcmp(c->buses[i].name, name) == 0)
                        return fail(x, k, "\"%s\" is already the name of buses[%zu]", name, i);
        strcpy(b->name, name);

        snprintf(k, sizeof k, "%s.transport", p);
        if (!json_object_object_get_ex(o, "transport", &f))
                return fail(x, k, "missing");
        r = parse_transport(x, b, f, k);
        if (r < 0)
                return r;

        if (json_object_object_get_ex(o, "bitrate", &f)) {
                snprintf(k, sizeof k, "%s.bitrate", p);
                r = get_uint(x, f, k, 1000, 1000000, false, &v);
                if (r < 0)
                        return r;
                b->bitrate = (uint32_t) v;
        }
        if (b->kind == CF_TRANSPORT_SLCAN && !slcan_bitrate_ok(b->bitrate)) {
                snprintf(k, sizeof k, "%s.bitrate", p);
                return fail(x, k,
                            "%u is not an SLCAN bitrate (10000, 20000, 50000, 100000, 125000, 250000, "
                            "500000, 800000, 1000000)",
                            b->bitrate);
        }
        if (json_object_object_get_ex(o, "cro_base", &f)) {
                snprintf(k, sizeof k, "%s.cro_base", p);
                r = get_uint(x, f, k, 0, CAN_SFF_MAX, true, &v);
                if (r < 0)
                        return r;
                b->cro_base = (uint32_t) v;
        }
        if (json_object_object_get_ex(o, "dto_base", &f)) {
                snprintf(k, sizeof k, "%s.dto_base", p);
                r = get_uint(x, f, k, 0, CAN_SFF_MAX, true, &v);
                if (r < 0)
                        return r;
                b->dto_base = (uint32_t) v;
        }
        if (json_object_object_get_ex(o, "max_parallel", &f)) {
                snprintf(k, sizeof k, "%s.max_parallel", p);
                r = get_uint(x, f, k, 1, 1024, false, &v);
                if (r < 0)
                        return r;
                b->max_parallel = (unsigned) v;
        }
        if (json_object_object_get_ex(o, "seedkey", &f)) {
                snprintf(k, sizeof k, "%s.seedkey", p);
                r = get_seedkey(x, f, k, &b->seedkey_echo);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "scan", &f)) {
                snprintf(k, sizeof k, "%s.scan", p);
                if (!json_object_is_type(f, json_type_array) || json_object_array_length(f) != 2)
                        return fail(x, k, "is not [first, last]");
                uint64_t first, last;
                char ke[320];
                snprintf(ke, sizeof ke, "%s[0]", k);
                r = get_uint(x, json_object_array_get_idx(f, 0), ke, 1, 0xFFFF, false, &first);
                if (r < 0)
                        return r;
                snprintf(ke, sizeof ke, "%s[1]", k);
                r = get_uint(x, json_object_array_get_idx(f, 1), ke, first, 0xFFFF, false, &last);
                if (r < 0)
                        return r;
                b->scan_first = (uint16_t) first;
                b->scan_last = (uint16_t) last;
        }
        if (b->cro_base + b->scan_last > CAN_SFF_MAX || b->dto_base + b->scan_last > CAN_SFF_MAX) {
                snprintf(k, sizeof k, "%s.scan", p);
                return fail(x, k, "station %u gives a CAN id beyond 0x7FF", b->scan_last);
        }
        if (b->cro_base == b->dto_base) {
                snprintf(k, sizeof k, "%s.dto_base", p);
                return fail(x, k, "equals cro_base (0x%X)", b->cro_base);
        }

        if (json_object_object_get_ex(o, "nodes", &f)) {
                snprintf(k, sizeof k, "%s.nodes", p);
                if (!json_object_is_type(f, json_type_array))
                        return fail(x, k, "%s is not an array", type_name(f));
                size_t n = json_object_array_length(f);
                b->nodes = calloc(n ? n : 1, sizeof *b->nodes);
                if (!b->nodes)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        char ke[320];
                        snprintf(ke, sizeof ke, "%s.nodes[%zu]", p, i);
                        r = parse_node(x, b, json_object_array_get_idx(f, i), ke, &b->nodes[i]);
                        if (r < 0)
                                return r;
                        for (size_t j = 0; j < i; j++) {
                                if (b->nodes[j].station == b->nodes[i].station)
                                        return fail(x, ke, "station %u is already nodes[%zu]",
                                                    b->nodes[i].station, j);
                                if (b->nodes[j].dto_id == b->nodes[i].dto_id)
                                        return fail(x, ke, "DTO id 0x%X is already that of nodes[%zu]",
                                                    b->nodes[i].dto_id, j);
                        }
                        b->n_nodes++;
                }
        }
        return 0;
}

static int parse_root(struct ctx *x, json_object *root, struct cf_conf *c)
{
        static const char *const allowed[] = {"fleet_key_file", "state_dir",         "cache_dir", "buses",
                                              "max_parallel",   "reboot_timeout_ms", "retries",   "reply_timeout_ms",
                                              "node_lost_timeout_s", NULL};
        json_object *f;
        uint64_t v;
        int r;

        if (!json_object_is_type(root, json_type_object))
                return fail(x, NULL, "the configuration is %s, not an object", type_name(root));
        r = check_keys(x, root, "", allowed);
        if (r < 0)
                return r;

        static const char *const strings[] = {"fleet_key_file", "state_dir", "cache_dir"};
        char **dest[] = {&c->fleet_key_file, &c->state_dir, &c->cache_dir};
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                const char *s;
                if (!json_object_object_get_ex(root, strings[i], &f))
                        return fail(x, strings[i], "missing");
                r = get_string(x, f, strings[i], &s);
                if (r < 0)
                        return r;
                *dest[i] = strdup(s);
                if (!*dest[i])
                        return -ENOMEM;
        }

        c->max_parallel = 64;
        c->reboot_timeout_ms = 60000;
        c->retries = 3;
        c->reply_timeout_ms = 25;
        c->node_lost_timeout_s = 30;
        if (json_object_object_get_ex(root, "node_lost_timeout_s", &f)) {
                r = get_uint(x, f, "node_lost_timeout_s", 1, 86400, false, &v);
                if (r < 0)
                        return r;
                c->node_lost_timeout_s = (uint32_t) v;
        }
        if (json_object_object_get_ex(root, "max_parallel", &f)) {
                r = get_uint(x, f, "max_parallel", 1, 4096, false, &v);
                if (r < 0)
                        return r;
                c->max_parallel = (unsigned) v;
        }
        if (json_object_object_get_ex(root, "reboot_timeout_ms", &f)) {
                r = get_uint(x, f, "reboot_timeout_ms", 100, 86400000, false, &v);
                if (r < 0)
                        return r;
                c->reboot_timeout_ms = (uint32_t) v;
        }
        if (json_object_object_get_ex(root, "retries", &f)) {
                r = get_uint(x, f, "retries", 1, 20, false, &v);
                if (r < 0)
                        return r;
                c->retries = (unsigned) v;
        }
        if (json_object_object_get_ex(root, "reply_timeout_ms", &f)) {
                r = get_uint(x, f, "reply_timeout_ms", 1, 60000, false, &v);
                if (r < 0)
                        return r;
                c->reply_timeout_ms = (uint32_t) v;
        }

        if (!json_object_object_get_ex(root, "buses", &f))
                return fail(x, "buses", "missing");
        if (!json_object_is_type(f, json_type_array))
                return fail(x, "buses", "%s is not an array", type_name(f));
        size_t n = json_object_array_length(f);
        if (n == 0)
                return fail(x, "buses", "is empty: at least one bus is needed");
        c->buses = calloc(n, sizeof *c->buses);
        if (!c->buses)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = parse_bus(x, json_object_array_get_idx(f, i), i, c);
                c->n_buses = i + 1; /* so that cf_conf_free() frees what parse_bus() allocated */
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        if (strcmp(c->buses[i].transport, c->buses[j].transport) == 0) {
                                char k[64];
                                snprintf(k, sizeof k, "buses[%zu].transport", i);
                                return fail(x, k, "\"%s\" is already the transport of buses[%zu]",
                                            c->buses[i].transport, j);
                        }
        return 0;
}

int cf_conf_parse(const char *text, const char *path, struct cf_conf **ret, char **error)
{
        struct ctx x = {.path = path, .error = error};
        if (error)
                *error = NULL;

        json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_object *root = json_tokener_parse_ex(tok, text, (int) strlen(text));
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        if (!root && jerr == json_tokener_continue)
                jerr = json_tokener_error_parse_eof;
        size_t off = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (jerr != json_tokener_success || !root) {
                unsigned line = 1;
                for (size_t i = 0; i < off && text[i]; i++)
                        line += text[i] == '\n';
                json_object_put(root);
                return fail(&x, NULL, "line %u: not valid JSON: %s", line, json_tokener_error_desc(jerr));
        }

        struct cf_conf *c = calloc(1, sizeof *c);
        if (!c) {
                json_object_put(root);
                return -ENOMEM;
        }
        int r = parse_root(&x, root, c);
        json_object_put(root);
        if (r >= 0) {
                c->path = strdup(path);
                if (!c->path)
                        r = -ENOMEM;
        }
        if (r < 0) {
                if (r == -ENOMEM && error && !*error)
                        *error = strdup("out of memory");
                cf_conf_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

static int read_small_file(const char *path, size_t max, char **ret)
{
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        _cleanup_(freep) char *buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = fread(buf, 1, max + 1, f);
        if (ferror(f))
                return -EIO;
        if (n > max)
                return -EFBIG;
        buf[n] = 0;
        if (strlen(buf) != n)
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        return 0;
}

int cf_conf_load(const char *path, struct cf_conf **ret, char **error)
{
        _cleanup_(freep) char *text = NULL;
        int r = read_small_file(path, 1024 * 1024, &text);
        if (r < 0) {
                if (error && asprintf(error, "%s: %s", path, strerror(-r)) < 0)
                        *error = NULL;
                return r;
        }
        return cf_conf_parse(text, path, ret, error);
}

int cf_conf_read_fleet_key(const struct cf_conf *c, uint8_t key[CF_FLEET_KEY_LEN], char **error)
{
        struct ctx x = {.path = c->path, .error = error};
        _cleanup_(freep) char *text = NULL;
        int r = read_small_file(c->fleet_key_file, 4096, &text);
        if (r < 0) {
                fail(&x, "fleet_key_file", "%s: %s", c->fleet_key_file, strerror(-r));
                return r;
        }
        r = cf_fleet_key_parse(text, strlen(text), key);
        cf_memzero(text, strlen(text));
        if (r < 0)
                return fail(&x, "fleet_key_file", "%s: not 64 hexadecimal characters", c->fleet_key_file);
        return 0;
}

struct cf_node_conf cf_bus_node_conf(const struct cf_bus_conf *b, uint16_t sa)
{
        for (size_t i = 0; i < b->n_nodes; i++)
                if (b->nodes[i].station == sa)
                        return b->nodes[i];
        return (struct cf_node_conf){.station = sa,
                                     .cro_id = b->cro_base + sa,
                                     .dto_id = b->dto_base + sa,
                                     .seedkey_echo = b->seedkey_echo};
}

struct cf_conf *cf_conf_free(struct cf_conf *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_buses; i++) {
                free(c->buses[i].transport);
                free(c->buses[i].device);
                free(c->buses[i].nodes);
        }
        free(c->buses);
        free(c->path);
        free(c->fleet_key_file);
        free(c->state_dir);
        free(c->cache_dir);
        free(c);
        return NULL;
}
