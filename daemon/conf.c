/* canfleetd.conf: strict JSON (json-strict.c), then json-c's tree checked key by key, naming the key. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <sys/stat.h>
#include <termios.h>

#include <json-c/json.h>

#include "canfleet/ccp.h"
#include "canfleet/sha256.h"
#include "canfleet/slcan.h"
#include "cleanup.h"
#include "conf.h"
#include "json-strict.h"

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
                return "a number with a fraction or an exponent";
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

/* A decimal number without sign, spaces or leading zeros, or "0x" and hexadecimal digits when hex:
 * what JSON itself allows, so that "010" is never read as octal 8 (strtoul's base 0 would). */
static int parse_unsigned(const char *s, bool hex, uint64_t *out)
{
        uint64_t v = 0;
        const char *p = s;
        unsigned base = 10;
        if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                p += 2;
        } else if (s[0] == '0' && s[1]) {
                return -EINVAL;
        }
        if (!*p || strlen(p) > 16)
                return -EINVAL;
        for (; *p; p++) {
                unsigned d;
                if (*p >= '0' && *p <= '9')
                        d = (unsigned) (*p - '0');
                else if (base == 16 && *p >= 'a' && *p <= 'f')
                        d = (unsigned) (*p - 'a' + 10);
                else if (base == 16 && *p >= 'A' && *p <= 'F')
                        d = (unsigned) (*p - 'A' + 10);
                else
                        return -EINVAL;
                v = v * base + d;
        }
        *out = v;
        return 0;
}

static int get_uint(struct ctx *x, json_object *o, const char *key, uint64_t min, uint64_t max,
                    bool hex_string, uint64_t *out)
{
        if (json_object_is_type(o, json_type_int)) {
                /* json-c clamps what does not fit in 64 bits: say so instead of printing the clamp. */
                int64_t v = json_object_get_int64(o);
                if (v == INT64_MAX || v == INT64_MIN)
                        return fail(x, key, "a number this large is out of range %" PRIu64 "..%" PRIu64, min,
                                    max);
                if (v < 0 || (uint64_t) v < min || (uint64_t) v > max)
                        return fail(x, key, "%" PRId64 " is out of range %" PRIu64 "..%" PRIu64, v, min,
                                    max);
                *out = (uint64_t) v;
                return 0;
        }
        if (hex_string && json_object_is_type(o, json_type_string)) {
                const char *s = json_object_get_string(o);
                uint64_t v;
                if (parse_unsigned(s, true, &v) < 0)
                        return fail(x, key, "\"%s\" is not a number (e.g. 1664 or \"0x680\")", s);
                if (v < min || v > max)
                        return fail(x, key, "\"%s\" is out of range 0x%" PRIX64 "..0x%" PRIX64, s, min, max);
                *out = v;
                return 0;
        }
        return fail(x, key, "%s is not %s", type_name(o),
                    hex_string ? "a number or a \"0x...\" string" : "a number");
}

/* Unsigned integer keys: one row each, so that a new key is one line (and its field, of 2, 4 or 8
 * bytes). */
struct uint_key {
        const char *name;
        size_t offset, size;
        uint64_t min, max, def;
        bool hex_string; /* also "0x..." strings, for CAN ids */
};

#define UINT_KEY(type, key, field, lo, hi, dflt, hex)                                                       \
        {key, offsetof(type, field), sizeof(((type *) 0)->field), lo, hi, dflt, hex}

static void set_uint(void *base, const struct uint_key *k, uint64_t v)
{
        char *p = (char *) base + k->offset;
        switch (k->size) {
        case sizeof(uint16_t): {
                uint16_t u = (uint16_t) v;
                memcpy(p, &u, sizeof u);
                break;
        }
        case sizeof(uint32_t): {
                uint32_t u = (uint32_t) v;
                memcpy(p, &u, sizeof u);
                break;
        }
        default: {
                uint64_t u = v;
                memcpy(p, &u, sizeof u);
                break;
        }
        }
}

/* Defaults first, then the keys o has; prefix is "" or "buses[N]." for the messages. */
static int parse_uint_keys(struct ctx *x, json_object *o, const char *prefix, const struct uint_key *keys,
                           size_t n, void *base)
{
        for (size_t i = 0; i < n; i++) {
                set_uint(base, &keys[i], keys[i].def);
                json_object *f;
                if (!json_object_object_get_ex(o, keys[i].name, &f))
                        continue;
                char k[256];
                uint64_t v;
                snprintf(k, sizeof k, "%s%s", prefix, keys[i].name);
                int r = get_uint(x, f, k, keys[i].min, keys[i].max, keys[i].hex_string, &v);
                if (r < 0)
                        return r;
                set_uint(base, &keys[i], v);
        }
        return 0;
}

static bool uint_key_known(const struct uint_key *keys, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i].name, name) == 0)
                        return true;
        return false;
}

/* Every key of o must be in allowed or in keys. */
static int check_keys(struct ctx *x, json_object *o, const char *prefix, const char *const *allowed,
                      const struct uint_key *keys, size_t n_keys)
{
        json_object_object_foreach(o, k, v)
        {
                (void) v;
                bool ok = uint_key_known(keys, n_keys, k);
                for (const char *const *a = allowed; *a && !ok; a++)
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

/* What Linux's dev_valid_name() accepts, so that a name the kernel cannot have is refused here. */
static bool valid_ifname(const char *s)
{
        size_t n = strlen(s);
        if (n < 1 || n >= 16 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        for (const char *p = s; *p; p++)
                if (*p == '/' || *p == ':' || *p == ' ' || (*p >= '\t' && *p <= '\r'))
                        return false;
        return true;
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
        bool ser = strncmp(s, "serial:", 7) == 0 && s[7];
        if ((strncmp(s, "slcan:", 6) == 0 && s[6]) || ser) {
                b->kind = ser ? CF_TRANSPORT_SERIAL : CF_TRANSPORT_SLCAN;
                b->baud = 115200;
                s += ser ? 1 : 0; /* "serial:" is one longer than "slcan:" */
                const char *at = strrchr(s + 6, '@');
                if (at) {
                        uint64_t v;
                        if (parse_unsigned(at + 1, false, &v) < 0 || v > UINT32_MAX ||
                            !valid_baud((uint32_t) v))
                                return fail(x, key, "\"%s\": \"%s\" is not a serial speed (e.g. 115200)",
                                            b->transport, at + 1);
                        b->baud = (uint32_t) v;
                        b->device = strndup(s + 6, (size_t) (at - (s + 6)));
                } else {
                        b->device = strdup(s + 6);
                }
                if (!b->device)
                        return -ENOMEM;
                if (!*b->device)
                        return fail(x, key, "\"%s\" names no device", b->transport);
                return 0;
        }
        if (strncmp(s, "socketcan:", 10) == 0 && s[10]) {
                b->kind = CF_TRANSPORT_SOCKETCAN;
                if (!valid_ifname(s + 10))
                        return fail(x, key, "\"%s\": \"%s\" is not a network interface name", s, s + 10);
                b->device = strdup(s + 10);
                return b->device ? 0 : -ENOMEM;
        }
        return fail(x, key, "\"%s\" is not \"slcan:DEV\", \"socketcan:IF\" or \"serial:DEV\"", s);
}

static int parse_node(struct ctx *x, struct cf_bus_conf *b, json_object *o, const char *key,
                      struct cf_node_conf *n)
{
        char k[400];
        uint64_t v;
        int r;

        n->seedkey_echo = b->seedkey_echo;
        if (json_object_is_type(o, json_type_int)) {
                r = get_uint(x, o, key, CF_CCP_STATION_MIN, CF_CCP_STATION_MAX, false, &v);
                if (r < 0)
                        return r;
                n->station = (uint16_t) v;
                n->cro_id = b->cro_base + n->station;
                n->dto_id = b->dto_base + n->station;
        } else if (json_object_is_type(o, json_type_object)) {
                static const char *const allowed[] = {"station", "cro_id", "dto_id", "seedkey", NULL};
                snprintf(k, sizeof k, "%s.", key);
                r = check_keys(x, o, k, allowed, NULL, 0);
                if (r < 0)
                        return r;
                json_object *f;
                snprintf(k, sizeof k, "%s.station", key);
                if (!json_object_object_get_ex(o, "station", &f))
                        return fail(x, k, "missing");
                r = get_uint(x, f, k, CF_CCP_STATION_MIN, CF_CCP_STATION_MAX, false, &v);
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

/*
 * The CAN ids of a bus: every node the gateway may talk to there (those listed in nodes, and the
 * other stations of the scan range with the bus's ids, as cf_bus_node_conf() gives them) has its
 * own CRO and DTO id, and no id is both a CRO and a DTO. Otherwise a command would reach two nodes,
 * or an answer would be taken for another node's, or for a command. Listed nodes are checked first,
 * in order, so that the message names the later of two entries; then the scan range.
 */
enum { ID_FREE, ID_CRO, ID_DTO, ID_GROUP };

struct id_use {
        uint8_t what;
        uint16_t station;
};

static const char *id_role(uint8_t what)
{
        return what == ID_CRO ? "CRO" : what == ID_DTO ? "DTO" : "group";
}

static void describe_station(const struct cf_bus_conf *b, uint16_t sa, char *buf, size_t size)
{
        for (size_t i = 0; i < b->n_nodes; i++)
                if (b->nodes[i].station == sa) {
                        snprintf(buf, size, "station %u (nodes[%zu])", sa, i);
                        return;
                }
        snprintf(buf, size, "station %u (scan [%u, %u])", sa, b->scan_first, b->scan_last);
}

static int claim_id(struct ctx *x, const struct cf_bus_conf *b, struct id_use *ids, uint32_t id,
                    uint8_t what, uint16_t sa, const char *key, bool scanned)
{
        if (ids[id].what == ID_FREE) {
                ids[id] = (struct id_use){.what = what, .station = sa};
                return 0;
        }
        char other[64];
        describe_station(b, ids[id].station, other, sizeof other);
        if (ids[id].station == sa)
                return fail(x, key, "station %u: its %s id 0x%X is also its %s id", sa, id_role(what), id,
                            id_role(ids[id].what));
        if (scanned) { /* say which station and why it has that id */
                bool other_listed = false;
                for (size_t i = 0; i < b->n_nodes; i++)
                        other_listed |= b->nodes[i].station == ids[id].station;
                return fail(x, key, "station %u would use %s id 0x%X (%s + %u), already the %s id of %s; %s",
                            sa, id_role(what), id, what == ID_CRO ? "cro_base" : "dto_base", sa,
                            id_role(ids[id].what), other,
                            other_listed ? "narrow scan or change that node's ids"
                                         : "narrow scan or move cro_base and dto_base apart");
        }
        return fail(x, key, "%s id 0x%X is already the %s id of %s", id_role(what), id,
                    id_role(ids[id].what), other);
}

static int check_can_ids(struct ctx *x, const struct cf_bus_conf *b, const char *prefix)
{
        struct id_use ids[CAN_SFF_MAX + 1] = {{0}};
        char k[320];
        int r;

        for (size_t i = 0; i < b->n_nodes; i++) {
                const struct cf_node_conf *n = &b->nodes[i];
                snprintf(k, sizeof k, "%s.nodes[%zu]", prefix, i);
                r = claim_id(x, b, ids, n->cro_id, ID_CRO, n->station, k, false);
                if (r < 0)
                        return r;
                r = claim_id(x, b, ids, n->dto_id, ID_DTO, n->station, k, false);
                if (r < 0)
                        return r;
        }
        snprintf(k, sizeof k, "%s.scan", prefix);
        for (unsigned sa = b->scan_first; sa <= b->scan_last; sa++) {
                bool listed = false;
                for (size_t i = 0; i < b->n_nodes; i++)
                        listed |= b->nodes[i].station == sa;
                if (listed)
                        continue;
                r = claim_id(x, b, ids, b->cro_base + sa, ID_CRO, (uint16_t) sa, k, true);
                if (r < 0)
                        return r;
                r = claim_id(x, b, ids, b->dto_base + sa, ID_DTO, (uint16_t) sa, k, true);
                if (r < 0)
                        return r;
        }
        /* Group frames reach every member: an id a node also answers or listens on would be taken
         * for its CROs (or mistaken by the gateway for its DTOs). */
        if (ids[b->group_id].what != ID_FREE) {
                char other[64];
                describe_station(b, ids[b->group_id].station, other, sizeof other);
                snprintf(k, sizeof k, "%s.group_id", prefix);
                return fail(x, k, "0x%X is already the %s id of %s; pick an id no node uses", b->group_id,
                            id_role(ids[b->group_id].what), other);
        }
        return 0;
}

static const struct uint_key bus_uints[] = {
    UINT_KEY(struct cf_bus_conf, "bitrate", bitrate, 1000, 1000000, 500000, false),
    UINT_KEY(struct cf_bus_conf, "cro_base", cro_base, 0, CAN_SFF_MAX, CF_CCP_CRO_BASE_DEFAULT, true),
    UINT_KEY(struct cf_bus_conf, "dto_base", dto_base, 0, CAN_SFF_MAX, CF_CCP_DTO_BASE_DEFAULT, true),
    UINT_KEY(struct cf_bus_conf, "max_parallel", max_parallel, 1, 1024, 16, false),
    UINT_KEY(struct cf_bus_conf, "group_id", group_id, 0, CAN_SFF_MAX, CF_GROUP_ID_DEFAULT, true),
    UINT_KEY(struct cf_bus_conf, "max_load_percent", max_load_percent, 1, 100, 100, false),
};

/* ---- serial buses (docs/design.md §8) ------------------------------------------------------------ */

const char *cf_node_protocol_str(enum cf_node_protocol p)
{
        switch (p) {
        case CF_PROTOCOL_CCP:
                return "ccp";
        case CF_PROTOCOL_LPC_ISP:
                return "lpc-isp";
        case CF_PROTOCOL_ADI_UART:
                return "adi-uart";
        }
        return "?";
}

int cf_node_protocol_from_str(const char *s)
{
        for (int p = CF_PROTOCOL_CCP; p <= CF_PROTOCOL_ADI_UART; p++)
                if (strcmp(s, cf_node_protocol_str((enum cf_node_protocol) p)) == 0)
                        return p;
        return -EINVAL;
}

static const struct uint_key serial_uints[] = {
    UINT_KEY(struct cf_bus_conf, "crystal_khz", crystal_khz, 1000, 100000, 12000, false),
};

static int parse_isp_entry(struct ctx *x, struct cf_bus_conf *b, json_object *o, const char *key)
{
        if (json_object_is_type(o, json_type_string)) {
                const char *s = json_object_get_string(o);
                if (strcmp(s, "manual") == 0)
                        b->isp_entry = CF_ISP_ENTRY_MANUAL;
                else if (strcmp(s, "dtr-rts") == 0)
                        b->isp_entry = CF_ISP_ENTRY_DTR_RTS;
                else
                        return fail(x, key, "\"%s\" is not \"manual\", \"dtr-rts\" or "
                                            "{\"gpiochip\": …, \"reset\": N, \"boot\": N}", s);
                return 0;
        }
        if (!json_object_is_type(o, json_type_object))
                return fail(x, key, "%s is not \"manual\", \"dtr-rts\" or an object", type_name(o));
        static const char *const allowed[] = {"gpiochip", "reset", "boot", NULL};
        char k[320];
        snprintf(k, sizeof k, "%s.", key);
        int r = check_keys(x, o, k, allowed, NULL, 0);
        if (r < 0)
                return r;
        json_object *f;
        const char *chip;
        snprintf(k, sizeof k, "%s.gpiochip", key);
        if (!json_object_object_get_ex(o, "gpiochip", &f))
                return fail(x, k, "missing");
        r = get_string(x, f, k, &chip);
        if (r < 0)
                return r;
        /* "gpiochip0" is /dev/gpiochip0, as gpioset names chips */
        if (chip[0] == '/')
                b->gpiochip = strdup(chip);
        else if (strchr(chip, '/') || asprintf(&b->gpiochip, "/dev/%s", chip) < 0)
                b->gpiochip = NULL;
        if (!b->gpiochip)
                return strchr(chip, '/') ? fail(x, k, "\"%s\" is not a chip name or an absolute path", chip)
                                         : -ENOMEM;
        uint64_t v[2];
        static const char *const lines[] = {"reset", "boot"};
        for (unsigned i = 0; i < 2; i++) {
                snprintf(k, sizeof k, "%s.%s", key, lines[i]);
                if (!json_object_object_get_ex(o, lines[i], &f))
                        return fail(x, k, "missing");
                r = get_uint(x, f, k, 0, 511, false, &v[i]);
                if (r < 0)
                        return r;
        }
        if (v[0] == v[1])
                return fail(x, key, "reset and boot are the same line (%" PRIu64 ")", v[0]);
        b->isp_entry = CF_ISP_ENTRY_GPIO;
        b->gpio_reset = (unsigned) v[0];
        b->gpio_boot = (unsigned) v[1];
        return 0;
}

/* A serial bus: one node behind a ROM loader, station 1. The CAN keys have no meaning there and are
 * refused as unknown, so that a CAN bus given a serial transport by mistake says so. */
static int parse_serial_bus(struct ctx *x, json_object *o, const char *p, struct cf_bus_conf *b)
{
        static const char *const allowed[] = {"name", "transport", "protocol", "isp_entry", NULL};
        char k[256];
        json_object *f;
        snprintf(k, sizeof k, "%s.", p);
        int r = check_keys(x, o, k, allowed, serial_uints, ELEMENTSOF(serial_uints));
        if (r < 0)
                return r;
        r = parse_uint_keys(x, o, k, serial_uints, ELEMENTSOF(serial_uints), b);
        if (r < 0)
                return r;
        snprintf(k, sizeof k, "%s.protocol", p);
        if (!json_object_object_get_ex(o, "protocol", &f))
                return fail(x, k, "missing: \"lpc-isp\" or \"adi-uart\" on a serial bus");
        const char *s;
        r = get_string(x, f, k, &s);
        if (r < 0)
                return r;
        int proto = cf_node_protocol_from_str(s);
        if (proto != CF_PROTOCOL_LPC_ISP && proto != CF_PROTOCOL_ADI_UART)
                return fail(x, k, "\"%s\" is not \"lpc-isp\" or \"adi-uart\"", s);
        b->protocol = (enum cf_node_protocol) proto;
        if (b->protocol != CF_PROTOCOL_LPC_ISP && json_object_object_get_ex(o, "crystal_khz", &f)) {
                snprintf(k, sizeof k, "%s.crystal_khz", p);
                return fail(x, k, "only for \"protocol\": \"lpc-isp\" (the ADI loader measures the baud rate)");
        }
        if (json_object_object_get_ex(o, "isp_entry", &f)) {
                snprintf(k, sizeof k, "%s.isp_entry", p);
                r = parse_isp_entry(x, b, f, k);
                if (r < 0)
                        return r;
        }
        /* AN-1160: the loader measures 600..115200 bps; UM10360: ISP autobauds up to 230400 */
        uint32_t max_baud = b->protocol == CF_PROTOCOL_ADI_UART ? 115200u : 230400u;
        if (b->baud > max_baud) {
                snprintf(k, sizeof k, "%s.transport", p);
                return fail(x, k, "\"%s\": %s loaders work up to %u baud", b->transport,
                            cf_node_protocol_str(b->protocol), max_baud);
        }
        b->nodes = calloc(1, sizeof *b->nodes);
        if (!b->nodes)
                return -ENOMEM;
        b->nodes[0] = (struct cf_node_conf){
            .station = 1, .cro_id = CF_CCP_CRO_BASE_DEFAULT + 1, .dto_id = CF_CCP_DTO_BASE_DEFAULT + 1};
        b->n_nodes = 1;
        b->scan_first = b->scan_last = 1;
        b->cro_base = CF_CCP_CRO_BASE_DEFAULT;
        b->dto_base = CF_CCP_DTO_BASE_DEFAULT;
        b->bitrate = 500000; /* unused; keeps CAN arithmetic (frame times) defined */
        b->max_parallel = 1;
        b->max_load_percent = 100;
        b->group_id = CF_GROUP_ID_DEFAULT;
        return 0;
}

static int parse_bus(struct ctx *x, json_object *o, size_t idx, struct cf_conf *c)
{
        static const char *const allowed[] = {"name", "transport", "nodes", "scan", "seedkey", NULL};
        static const char *const serial_keys[] = {"protocol", "isp_entry", "crystal_khz", NULL};
        struct cf_bus_conf *b = &c->buses[idx];
        char p[64], k[256];
        json_object *f;
        int r;

        snprintf(p, sizeof p, "buses[%zu]", idx);
        if (!json_object_is_type(o, json_type_object))
                return fail(x, p, "%s is not an object", type_name(o));
        /* A serial bus has its own keys (parse_serial_bus): the CAN ones are checked once the transport
         * says which kind of bus this is. */
        json_object *tr;
        bool serial = json_object_object_get_ex(o, "transport", &tr) && json_object_is_type(tr, json_type_string) &&
                      strncmp(json_object_get_string(tr), "serial:", 7) == 0;
        snprintf(k, sizeof k, "%s.", p);
        if (!serial) {
                for (const char *const *sk = serial_keys; *sk; sk++)
                        if (json_object_object_get_ex(o, *sk, NULL)) {
                                snprintf(k, sizeof k, "%s.%s", p, *sk);
                                return fail(x, k, "only for a serial bus (\"transport\": \"serial:DEV@BAUD\")");
                        }
                r = check_keys(x, o, k, allowed, bus_uints, ELEMENTSOF(bus_uints));
                if (r < 0)
                        return r;
        }

        *b = (struct cf_bus_conf){.scan_first = CF_CCP_STATION_MIN, .scan_last = CF_CCP_STATION_MAX};

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
        if (b->kind == CF_TRANSPORT_SERIAL)
                return parse_serial_bus(x, o, p, b);

        snprintf(k, sizeof k, "%s.", p);
        r = parse_uint_keys(x, o, k, bus_uints, ELEMENTSOF(bus_uints), b);
        if (r < 0)
                return r;
        if (b->kind == CF_TRANSPORT_SLCAN && !slcan_bitrate_ok(b->bitrate)) {
                snprintf(k, sizeof k, "%s.bitrate", p);
                return fail(x, k,
                            "%u is not an SLCAN bitrate (10000, 20000, 50000, 100000, 125000, 250000, "
                            "500000, 800000, 1000000)",
                            b->bitrate);
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
                r = get_uint(x, json_object_array_get_idx(f, 0), ke, CF_CCP_STATION_MIN, CF_CCP_STATION_MAX,
                             false, &first);
                if (r < 0)
                        return r;
                snprintf(ke, sizeof ke, "%s[1]", k);
                r = get_uint(x, json_object_array_get_idx(f, 1), ke, first, CF_CCP_STATION_MAX, false,
                             &last);
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
                        for (size_t j = 0; j < i; j++)
                                if (b->nodes[j].station == b->nodes[i].station)
                                        return fail(x, ke, "station %u is already nodes[%zu]",
                                                    b->nodes[i].station, j);
                        b->n_nodes++;
                }
        }
        return check_can_ids(x, b, p);
}

/* "//" collapsed, "." dropped, ".." resolved against what is before it, no trailing '/'. */
static char *normalise_path(const char *path)
{
        size_t n = strlen(path);
        char *out = malloc(n + 2);
        if (!out)
                return NULL;
        bool abs = path[0] == '/';
        size_t root = abs ? 1 : 0, o = root;
        if (abs)
                out[0] = '/';
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                size_t l = (size_t) (e - p);
                if (l == 0)
                        break;
                size_t last = o; /* where out's last component starts */
                while (last > root && out[last - 1] != '/')
                        last--;
                bool last_is_up = o - last == 2 && out[last] == '.' && out[last + 1] == '.';
                if (l == 1 && p[0] == '.') {
                        /* same directory */
                } else if (l == 2 && p[0] == '.' && p[1] == '.' && o > root && !last_is_up) {
                        o = last > root ? last - 1 : root;
                } else if (l == 2 && p[0] == '.' && p[1] == '.' && abs && o == root) {
                        /* "/.." is "/" */
                } else {
                        if (o > root)
                                out[o++] = '/';
                        memcpy(out + o, p, l);
                        o += l;
                }
                p = e;
        }
        if (o == 0)
                out[o++] = '.';
        out[o] = 0;
        return out;
}

/* The same tty under two names (a by-id symlink, "//", "/./", "..") is one device: compare what
 * realpath() says. A device that is not there yet (an adapter plugged in later) is compared by its
 * resolved directory and its name, or at worst as a normalised string. */
static char *canonical_device(const char *dev)
{
        char *r = realpath(dev, NULL);
        if (r)
                return r;
        char *norm = normalise_path(dev);
        if (!norm)
                return NULL;
        char *slash = strrchr(norm, '/');
        if (!slash || slash == norm)
                return norm;
        *slash = 0;
        char *dir = realpath(norm, NULL);
        *slash = '/';
        if (!dir)
                return norm;
        char *joined;
        if (asprintf(&joined, "%s%s", strcmp(dir, "/") == 0 ? "" : dir, slash) < 0)
                joined = NULL;
        free(dir);
        if (!joined)
                return norm;
        free(norm);
        return joined;
}

/* One bus per SLCAN device and per SocketCAN interface: two buses on one would fight over it. */
static int check_devices(struct ctx *x, struct cf_conf *c)
{
        char k[64];
        for (size_t i = 0; i < c->n_buses; i++) {
                snprintf(k, sizeof k, "buses[%zu].transport", i);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(c->buses[i].transport, c->buses[j].transport) == 0)
                                return fail(x, k, "\"%s\" is already the transport of buses[%zu]",
                                            c->buses[i].transport, j);
        }
        char **canon = calloc(c->n_buses ? c->n_buses : 1, sizeof *canon);
        if (!canon)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; i < c->n_buses && r == 0; i++) {
                const struct cf_bus_conf *b = &c->buses[i];
                if (b->kind != CF_TRANSPORT_SOCKETCAN) {
                        canon[i] = canonical_device(b->device);
                } else {
                        /* An interface can have altnames: the index says whether two names are one. */
                        unsigned idx = if_nametoindex(b->device);
                        if (idx == 0 || asprintf(&canon[i], "if:%u", idx) < 0)
                                canon[i] = strdup(b->device);
                }
                if (!canon[i]) {
                        r = -ENOMEM;
                        break;
                }
                snprintf(k, sizeof k, "buses[%zu].transport", i);
                for (size_t j = 0; j < i && r == 0; j++) {
                        /* a tty is one device whether SLCAN or a serial node uses it */
                        if ((c->buses[j].kind == CF_TRANSPORT_SOCKETCAN) != (b->kind == CF_TRANSPORT_SOCKETCAN) ||
                            strcmp(canon[i], canon[j]) != 0)
                                continue;
                        if (b->kind == CF_TRANSPORT_SOCKETCAN)
                                r = fail(x, k, "\"%s\": interface %s is already that of buses[%zu] (\"%s\")",
                                         b->transport, b->device, j, c->buses[j].transport);
                        else
                                r = fail(x, k, "\"%s\": %s is the device of buses[%zu] (\"%s\")",
                                         b->transport, canon[i], j, c->buses[j].transport);
                }
        }
        for (size_t i = 0; i < c->n_buses; i++)
                free(canon[i]);
        free(canon);
        return r;
}

static const struct uint_key hawkbit_uints[] = {
    UINT_KEY(struct cf_hawkbit_conf, "poll_max_s", poll_max_s, 1, 86400, 300, false),
    UINT_KEY(struct cf_hawkbit_conf, "max_requests_per_s", max_requests_per_s, 1, 1000, 10, false),
};

/* controllerId must be a path segment hawkBit accepts: letters, digits, '-', '_', '.'. */
static bool valid_prefix(const char *s)
{
        if (strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '-' || *s == '_' || *s == '.'))
                        return false;
        return true;
}

static int parse_hawkbit(struct ctx *x, json_object *o, struct cf_conf *c)
{
        static const char *const allowed[] = {
            "url", "tenant", "gateway_token_file", "ca_file", "controller_prefix", NULL};
        if (!json_object_is_type(o, json_type_object))
                return fail(x, "hawkbit", "%s is not an object", type_name(o));
        int r = check_keys(x, o, "hawkbit.", allowed, hawkbit_uints, ELEMENTSOF(hawkbit_uints));
        if (r < 0)
                return r;
        struct cf_hawkbit_conf *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        c->hawkbit = h;
        static const struct {
                const char *key;
                bool required;
        } strings[] = {
            {"url", true},
            {"tenant", true},
            {"gateway_token_file", true},
            {"ca_file", false},
            {"controller_prefix", false},
        };
        char **dest[] = {&h->url, &h->tenant, &h->gateway_token_file, &h->ca_file, &h->controller_prefix};
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                char k[64];
                json_object *f;
                const char *s;
                snprintf(k, sizeof k, "hawkbit.%s", strings[i].key);
                if (!json_object_object_get_ex(o, strings[i].key, &f)) {
                        if (strings[i].required)
                                return fail(x, k, "missing");
                        continue;
                }
                r = get_string(x, f, k, &s);
                if (r < 0)
                        return r;
                *dest[i] = strdup(s);
                if (!*dest[i])
                        return -ENOMEM;
        }
        if (strncmp(h->url, "https://", 8) != 0 && strncmp(h->url, "http://", 7) != 0)
                return fail(x, "hawkbit.url", "\"%s\" is not an http:// or https:// URL", h->url);
        if (strpbrk(h->url, " \t\r\n?#"))
                return fail(x, "hawkbit.url", "\"%s\" has a space, query or fragment", h->url);
        if (strpbrk(h->tenant, "/?#% \t\r\n"))
                return fail(x, "hawkbit.tenant", "\"%s\" is not one path segment", h->tenant);
        if (h->controller_prefix && !valid_prefix(h->controller_prefix))
                return fail(x, "hawkbit.controller_prefix",
                            "\"%s\" is not 1..64 of letters, digits, '-', '_' and '.'",
                            h->controller_prefix);
        return parse_uint_keys(x, o, "hawkbit.", hawkbit_uints, ELEMENTSOF(hawkbit_uints), h);
}

static const struct uint_key root_uints[] = {
    UINT_KEY(struct cf_conf, "max_parallel", max_parallel, 1, 4096, 64, false),
    UINT_KEY(struct cf_conf, "reboot_timeout_ms", reboot_timeout_ms, 100, 86400000, 60000, false),
    UINT_KEY(struct cf_conf, "retries", retries, 1, 20, 3, false),
    UINT_KEY(struct cf_conf, "reply_timeout_ms", reply_timeout_ms, 1, 60000, 25, false),
    UINT_KEY(struct cf_conf, "node_lost_timeout_s", node_lost_timeout_s, 1, 3600, 30, false),
    UINT_KEY(struct cf_conf, "download_stall_timeout_s", download_stall_timeout_s, 1, 3600, 30, false),
    UINT_KEY(struct cf_conf, "history", history, 1, 100000, 100, false),
    UINT_KEY(struct cf_conf, "start_timeout_s", start_timeout_s, 1, 86400, 600, false),
    UINT_KEY(struct cf_conf, "trial_timeout_s", trial_timeout_s, 1, 3600, 30, false),
    UINT_KEY(struct cf_conf, "confirm_trial_ms", confirm_trial_ms, 0, 3600000, 0, false),
};

static int parse_root(struct ctx *x, json_object *root, struct cf_conf *c)
{
        static const char *const allowed[] = {"fleet_key_file", "state_dir",      "cache_dir",
                                              "keyring",        "allow_unsigned", "ca_file",
                                              "hawkbit",        "buses",          NULL};
        json_object *f;
        int r;

        if (!json_object_is_type(root, json_type_object))
                return fail(x, NULL, "the configuration is %s, not an object", type_name(root));
        r = check_keys(x, root, "", allowed, root_uints, ELEMENTSOF(root_uints));
        if (r < 0)
                return r;

        /* keyring is required unless allow_unsigned: cf_conf_load_keyring() says so, where it is read. */
        static const struct {
                const char *key;
                bool required;
        } strings[] = {
            {"fleet_key_file", true}, {"state_dir", true}, {"cache_dir", true},
            {"keyring", false},       {"ca_file", false},
        };
        char **dest[] = {&c->fleet_key_file, &c->state_dir, &c->cache_dir, &c->keyring, &c->ca_file};
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                const char *s;
                if (!json_object_object_get_ex(root, strings[i].key, &f)) {
                        if (strings[i].required)
                                return fail(x, strings[i].key, "missing");
                        continue;
                }
                r = get_string(x, f, strings[i].key, &s);
                if (r < 0)
                        return r;
                *dest[i] = strdup(s);
                if (!*dest[i])
                        return -ENOMEM;
        }
        static const struct {
                const char *key;
                size_t offset;
        } bools[] = {
            {"allow_unsigned", offsetof(struct cf_conf, allow_unsigned)},
        };
        for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
                if (!json_object_object_get_ex(root, bools[i].key, &f))
                        continue; /* false */
                if (!json_object_is_type(f, json_type_boolean))
                        return fail(x, bools[i].key, "%s is not a boolean (true or false)", type_name(f));
                *(bool *) ((char *) c + bools[i].offset) = json_object_get_boolean(f);
        }

        r = parse_uint_keys(x, root, "", root_uints, ELEMENTSOF(root_uints), c);
        if (r < 0)
                return r;

        if (json_object_object_get_ex(root, "hawkbit", &f)) {
                r = parse_hawkbit(x, f, c);
                if (r < 0)
                        return r;
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
        return check_devices(x, c);
}

int cf_conf_parse_len(const char *text, size_t len, const char *path, struct cf_conf **ret, char **error)
{
        struct ctx x = {.path = path, .error = error};
        if (error)
                *error = NULL;
        if (len > CF_CONF_MAX_SIZE)
                return fail(&x, NULL, "is too large (%zu bytes, at most %u)", len, CF_CONF_MAX_SIZE);

        /* json-c accepts comments, trailing commas, single quotes, duplicate keys (the last wins),
         * octal-looking numbers and text after the value: only RFC 8259 reaches it. */
        struct cf_json_error je;
        int r = cf_json_check(text, len, &je);
        if (r == -ENOMEM)
                return -ENOMEM;
        if (r < 0)
                return fail(&x, NULL, "line %u, column %u: not valid JSON: %s", je.line, je.column,
                            je.message);

        /* A copy ending in NUL, handed over with that NUL (cf_json_check() allows no other): json-c
         * then knows the text ends there, also after a bare number. */
        _cleanup_(freep) char *copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, text, len);
        copy[len] = 0;
        json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_object *root = json_tokener_parse_ex(tok, copy, (int) len + 1);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        if (!root && jerr == json_tokener_continue)
                jerr = json_tokener_error_parse_eof;
        json_tokener_free(tok);
        if (jerr != json_tokener_success || !root) {
                /* Not expected after cf_json_check(); kept so that a difference between the two is an
                 * error, never a half-read configuration. */
                json_object_put(root);
                return fail(&x, NULL, "not valid JSON: %s", json_tokener_error_desc(jerr));
        }

        struct cf_conf *c = calloc(1, sizeof *c);
        if (!c) {
                json_object_put(root);
                return -ENOMEM;
        }
        r = parse_root(&x, root, c);
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

int cf_conf_parse(const char *text, const char *path, struct cf_conf **ret, char **error)
{
        return cf_conf_parse_len(text, strlen(text), path, ret, error);
}

static const char *file_kind(mode_t m)
{
        if (S_ISDIR(m))
                return "a directory";
        if (S_ISFIFO(m))
                return "a FIFO (named pipe)";
        if (S_ISCHR(m))
                return "a character device";
        if (S_ISBLK(m))
                return "a block device";
        if (S_ISSOCK(m))
                return "a socket";
        return "not a plain file";
}

__attribute__((format(printf, 3, 4))) static int file_fail(char **error, int r, const char *fmt, ...)
{
        if (!error)
                return r;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(error, fmt, ap) < 0)
                *error = NULL;
        va_end(ap);
        return r;
}

int cf_read_regular_file(const char *path, size_t max, char **ret, size_t *ret_len, char **error)
{
        struct stat st;

        if (error)
                *error = NULL;
        /* stat() first: opening a device can have effects (a tty raises DTR, a watchdog starts). */
        if (stat(path, &st) < 0)
                return file_fail(error, -errno, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return file_fail(error, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL,
                                 "%s: is %s, not a regular file", path, file_kind(st.st_mode));
        /* O_NONBLOCK: should a FIFO have taken its place since, open() must not wait for a writer. */
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return file_fail(error, -errno, "%s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0)
                return file_fail(error, -errno, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return file_fail(error, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL,
                                 "%s: is %s, not a regular file", path, file_kind(st.st_mode));
        if ((uint64_t) st.st_size > max)
                return file_fail(error, -EFBIG, "%s: is too large (%jd bytes, at most %zu)", path,
                                 (intmax_t) st.st_size, max);
        _cleanup_(freep) char *buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = 0;
        for (;;) { /* files that grow or whose size stat() does not know (/proc) */
                ssize_t k = read(fd, buf + n, max + 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return file_fail(error, -errno, "%s: %s", path, strerror(errno));
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max)
                        return file_fail(error, -EFBIG, "%s: is too large (more than %zu bytes)", path, max);
        }
        buf[n] = 0;
        if (ret_len)
                *ret_len = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int cf_conf_load(const char *path, struct cf_conf **ret, char **error)
{
        _cleanup_(freep) char *text = NULL;
        size_t len;
        int r = cf_read_regular_file(path, CF_CONF_MAX_SIZE, &text, &len, error);
        if (r < 0) {
                if (r == -ENOMEM && error && !*error)
                        *error = strdup("out of memory");
                return r;
        }
        return cf_conf_parse_len(text, len, path, ret, error);
}

int cf_conf_read_fleet_key(const struct cf_conf *c, uint8_t key[CF_FLEET_KEY_LEN], char **error)
{
        struct ctx x = {.path = c->path, .error = error};
        _cleanup_(freep) char *text = NULL;
        _cleanup_(freep) char *why = NULL;
        size_t len = 0;
        int r = cf_read_regular_file(c->fleet_key_file, 4096, &text, &len, &why);
        if (r < 0) {
                fail(&x, "fleet_key_file", "%s", why ? why : strerror(-r));
                return r;
        }
        r = cf_fleet_key_parse(text, len, key);
        cf_memzero(text, len);
        if (r < 0)
                return fail(&x, "fleet_key_file", "%s: not 64 hexadecimal characters", c->fleet_key_file);
        return 0;
}

int cf_conf_load_keyring(const struct cf_conf *c, struct cf_keyring **ret, char **error)
{
        struct ctx x = {.path = c->path, .error = error};
        *ret = NULL;
        if (!c->keyring) {
                if (c->allow_unsigned)
                        return 0;
                return fail(&x, "keyring",
                            "missing: a PEM file of the certificates that sign firmware bundles is needed "
                            "(or \"allow_unsigned\": true, for development only)");
        }
        _cleanup_(freep) char *text = NULL;
        _cleanup_(freep) char *why = NULL;
        size_t len = 0;
        int r = cf_read_regular_file(c->keyring, CF_KEYRING_MAX_SIZE, &text, &len, &why);
        if (r < 0)
                return fail(&x, "keyring", "%s", why ? why : strerror(-r));
        struct cf_bundle_error berr = {0};
        r = cf_keyring_load_pem(c->keyring, text, len, ret, &berr);
        if (r < 0)
                return fail(&x, "keyring", "%s", berr.message);
        return 0;
}

int cf_conf_check_ca_file(const struct cf_conf *c, char **error)
{
        struct ctx x = {.path = c->path, .error = error};
        if (!c->ca_file)
                return 0;
        _cleanup_(freep) char *text = NULL;
        _cleanup_(freep) char *why = NULL;
        size_t len = 0;
        int r = cf_read_regular_file(c->ca_file, CF_CA_FILE_MAX_SIZE, &text, &len, &why);
        if (r < 0)
                return fail(&x, "ca_file", "%s", why ? why : strerror(-r));
        /* libcurl reads it again at each download; a file without a certificate would only show then */
        if (!strstr(text, "-----BEGIN CERTIFICATE-----"))
                return fail(&x, "ca_file", "%s holds no PEM certificate", c->ca_file);
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
                free(c->buses[i].gpiochip);
                free(c->buses[i].nodes);
        }
        free(c->buses);
        free(c->path);
        free(c->fleet_key_file);
        free(c->state_dir);
        free(c->cache_dir);
        free(c->keyring);
        free(c->ca_file);
        if (c->hawkbit) {
                free(c->hawkbit->url);
                free(c->hawkbit->tenant);
                free(c->hawkbit->gateway_token_file);
                free(c->hawkbit->ca_file);
                free(c->hawkbit->controller_prefix);
                free(c->hawkbit);
        }
        free(c);
        return NULL;
}

int cf_conf_check_hawkbit(const struct cf_conf *c, char **error)
{
        struct ctx x = {.path = c->path, .error = error};
        const struct cf_hawkbit_conf *h = c->hawkbit;
        if (!h)
                return 0;
        _cleanup_(freep) char *text = NULL;
        _cleanup_(freep) char *why = NULL;
        int r = cf_read_regular_file(h->gateway_token_file, 4096, &text, NULL, &why);
        if (r < 0)
                return fail(&x, "hawkbit.gateway_token_file", "%s", why ? why : strerror(-r));
        /* the same rule as the client's: the first line is the token */
        size_t tl = strcspn(text, "\r\n");
        while (tl > 0 && (text[tl - 1] == ' ' || text[tl - 1] == '\t'))
                tl--;
        if (tl == 0)
                return fail(&x, "hawkbit.gateway_token_file", "%s: the first line (the token) is empty",
                            h->gateway_token_file);
        cf_memzero(text, strlen(text));
        if (!h->ca_file)
                return 0;
        free(text);
        text = NULL;
        free(why);
        why = NULL;
        r = cf_read_regular_file(h->ca_file, CF_CA_FILE_MAX_SIZE, &text, NULL, &why);
        if (r < 0)
                return fail(&x, "hawkbit.ca_file", "%s", why ? why : strerror(-r));
        if (!strstr(text, "-----BEGIN CERTIFICATE-----"))
                return fail(&x, "hawkbit.ca_file", "%s holds no PEM certificate", h->ca_file);
        return 0;
}
