/* Fuzz target: canfleetd's configuration parser (cf_conf_parse) on any text. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "canfleet/ccp.h"
#include "canfleet/slcan.h"
#include "conf.h"
#include "fuzz.h"

/*
 * The input, NUL-terminated, is a configuration file (etc/README.md), or, after a byte 0x01, the
 * choices a configuration is built from (below). Checked for every input:
 *  - no crash, no leak (ASan/LSan), and exactly one of: 0 with a configuration and no message, or
 *    a negative errno (-EINVAL, -ENOMEM) with a message "fuzz.conf: …" and no configuration;
 *  - an accepted text is strict JSON (RFC 8259 grammar, checked here by a validator of its own): one
 *    object, nothing after it, no comments, single quotes or trailing commas, numbers without
 *    leading zeros, spaces or signs other than a leading '-', no key twice in an object, no \u0000.
 *    Left to the parser's discretion: raw control characters in strings, bytes that are not UTF-8,
 *    and \v \f as white space (json-c's own habits);
 *  - an accepted configuration holds what etc/README.md allows: at least one bus; names
 *    [A-Za-z0-9_-]{1,15}, unique; transports unique, "slcan:DEV[@BAUD]" with a known serial speed
 *    and an SLCAN bitrate, or "socketcan:IF" with IF shorter than 16 and without '/'; stations
 *    1..63, unique per bus, scan [first, last] within 1..63; every CAN id 11-bit; per bus the
 *    configured nodes' CRO and DTO ids all different from each other, and the CRO ids of the scan
 *    range apart from its DTO ids; the numbers within their documented ranges; CAN ids given as
 *    strings written as decimal or 0x-hex (never octal) and meaning what they say;
 *  - an accepted configuration, written back as JSON by this target, parses again to the same one.
 */

#define PATH "fuzz.conf"

/* ---- a strict JSON validator ----------------------------------------------------------------- */

struct jv {
        const char *p, *end;
        int depth;
};

static bool jv_value(struct jv *v);

static void jv_ws(struct jv *v)
{
        while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r' ||
                                 *v->p == '\v' || *v->p == '\f'))
                v->p++;
}

static bool jv_lit(struct jv *v, const char *lit)
{
        size_t n = strlen(lit);
        if ((size_t) (v->end - v->p) < n || memcmp(v->p, lit, n) != 0)
                return false;
        v->p += n;
        return true;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool jv_number(struct jv *v)
{
        if (v->p < v->end && *v->p == '-')
                v->p++;
        if (v->p >= v->end || !is_digit(*v->p))
                return false;
        if (*v->p == '0')
                v->p++;
        else
                while (v->p < v->end && is_digit(*v->p))
                        v->p++;
        if (v->p < v->end && *v->p == '.') {
                v->p++;
                if (v->p >= v->end || !is_digit(*v->p))
                        return false;
                while (v->p < v->end && is_digit(*v->p))
                        v->p++;
        }
        if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
                v->p++;
                if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
                        v->p++;
                if (v->p >= v->end || !is_digit(*v->p))
                        return false;
                while (v->p < v->end && is_digit(*v->p))
                        v->p++;
        }
        return true;
}

/* A string; its decoded bytes (escapes as UTF-16 code units, enough to compare keys) in out. */
static bool jv_string(struct jv *v, char *out, size_t cap, size_t *out_len)
{
        size_t n = 0;
#define PUT(ch)                                                                                             \
        do {                                                                                                \
                if (n < cap)                                                                                \
                        out[n] = (char) (ch);                                                               \
                n++;                                                                                        \
        } while (0)

        if (v->p >= v->end || *v->p != '"')
                return false;
        v->p++;
        for (;;) {
                if (v->p >= v->end)
                        return false;
                char c = *v->p++;
                if (c == '"')
                        break;
                if (c != '\\') {
                        PUT(c);
                        continue;
                }
                if (v->p >= v->end)
                        return false;
                c = *v->p++;
                switch (c) {
                case '"':
                case '\\':
                case '/':
                        PUT(c);
                        break;
                case 'b':
                        PUT('\b');
                        break;
                case 'f':
                        PUT('\f');
                        break;
                case 'n':
                        PUT('\n');
                        break;
                case 'r':
                        PUT('\r');
                        break;
                case 't':
                        PUT('\t');
                        break;
                case 'u': {
                        unsigned u = 0;
                        for (int i = 0; i < 4; i++) {
                                if (v->p >= v->end || cf_hex_digit(*v->p) < 0)
                                        return false;
                                u = u << 4 | (unsigned) cf_hex_digit(*v->p++);
                        }
                        if (u == 0)
                                return false; /* refused by the configuration's rules */
                        PUT(0x80 | (u >> 12));
                        PUT(u >> 6 & 0x3F);
                        PUT(u & 0x3F);
                        break;
                }
                default:
                        return false;
                }
        }
        *out_len = n;
        return true;
#undef PUT
}

struct jv_key {
        char text[64];
        size_t len;
};

static bool jv_object(struct jv *v)
{
        /* Keys of this object, to find a duplicate; long keys are compared on a hash of all bytes. */
        struct jv_key keys[64];
        size_t nkeys = 0;

        v->p++; /* '{' */
        jv_ws(v);
        if (v->p < v->end && *v->p == '}') {
                v->p++;
                return true;
        }
        for (;;) {
                char buf[4096];
                size_t len;
                jv_ws(v);
                if (!jv_string(v, buf, sizeof(buf), &len))
                        return false;
                struct jv_key k = {.len = len};
                uint64_t h = 1469598103934665603ull;
                for (size_t i = 0; i < (len < sizeof(buf) ? len : sizeof(buf)); i++)
                        h = (h ^ (uint8_t) buf[i]) * 1099511628211ull;
                if (len <= sizeof(k.text))
                        memcpy(k.text, buf, len);
                else
                        memcpy(k.text, &h, sizeof(h));
                for (size_t i = 0; i < nkeys; i++)
                        if (keys[i].len == k.len &&
                            memcmp(keys[i].text, k.text, k.len < 64 ? k.len : 64) == 0)
                                return false; /* a key twice */
                if (nkeys < 64)
                        keys[nkeys++] = k;
                jv_ws(v);
                if (v->p >= v->end || *v->p != ':')
                        return false;
                v->p++;
                if (!jv_value(v))
                        return false;
                if (v->p < v->end && *v->p == ',') {
                        v->p++;
                        continue;
                }
                if (v->p < v->end && *v->p == '}') {
                        v->p++;
                        return true;
                }
                return false;
        }
}

static bool jv_array(struct jv *v)
{
        v->p++; /* '[' */
        jv_ws(v);
        if (v->p < v->end && *v->p == ']') {
                v->p++;
                return true;
        }
        for (;;) {
                if (!jv_value(v))
                        return false;
                if (v->p < v->end && *v->p == ',') {
                        v->p++;
                        continue;
                }
                if (v->p < v->end && *v->p == ']') {
                        v->p++;
                        return true;
                }
                return false;
        }
}

static bool jv_value(struct jv *v)
{
        bool ok;
        char buf[8];
        size_t len;

        jv_ws(v);
        if (v->p >= v->end || ++v->depth > 64)
                return false;
        switch (*v->p) {
        case '{':
                ok = jv_object(v);
                break;
        case '[':
                ok = jv_array(v);
                break;
        case '"':
                ok = jv_string(v, buf, sizeof(buf), &len);
                break;
        case 't':
                ok = jv_lit(v, "true");
                break;
        case 'f':
                ok = jv_lit(v, "false");
                break;
        case 'n':
                ok = jv_lit(v, "null");
                break;
        default:
                ok = jv_number(v);
                break;
        }
        v->depth--;
        jv_ws(v);
        return ok;
}

static bool strict_json_object(const char *text)
{
        struct jv v = {.p = text, .end = text + strlen(text)};
        jv_ws(&v);
        if (v.p >= v.end || *v.p != '{')
                return false;
        return jv_value(&v) && v.p == v.end;
}

/* ---- the values ---------------------------------------------------------------------------------- */

static bool valid_name(const char *s)
{
        size_t n = strlen(s);
        if (n < 1 || n > 15)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || is_digit(*s) || *s == '_' ||
                      *s == '-'))
                        return false;
        return true;
}

static bool valid_baud(uint32_t b)
{
        static const uint32_t ok[] = {9600,   19200,  38400,   57600,   115200,  230400,  460800,  500000,
                                      576000, 921600, 1000000, 1152000, 1500000, 2000000, 3000000, 4000000};
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                if (ok[i] == b)
                        return true;
        return false;
}

static void check_bus(const struct cf_conf *c, size_t bi)
{
        const struct cf_bus_conf *b = &c->buses[bi];

        FUZZ_CHECK(valid_name(b->name), "buses[%zu]: name \"%s\"", bi, b->name);
        FUZZ_CHECK(b->transport && b->device && b->device[0], "buses[%zu]: no transport or device", bi);
        for (size_t j = 0; j < bi; j++) {
                FUZZ_CHECK(strcmp(c->buses[j].name, b->name) != 0, "bus name %s twice", b->name);
                FUZZ_CHECK(strcmp(c->buses[j].transport, b->transport) != 0, "transport %s twice",
                           b->transport);
        }
        if (b->kind == CF_TRANSPORT_SLCAN) {
                FUZZ_CHECK(strncmp(b->transport, "slcan:", 6) == 0, "slcan bus with transport %s",
                           b->transport);
                FUZZ_CHECK(valid_baud(b->baud), "serial speed %" PRIu32, b->baud);
                FUZZ_CHECK(cf_slcan_bitrate_code(b->bitrate) != 0, "SLCAN bitrate %" PRIu32, b->bitrate);
                /* DEV is what the transport says, before any "@BAUD" */
                size_t n = strlen(b->device);
                FUZZ_CHECK(strncmp(b->transport + 6, b->device, n) == 0 &&
                               (b->transport[6 + n] == 0 || b->transport[6 + n] == '@'),
                           "device %s of transport %s", b->device, b->transport);
        } else {
                FUZZ_CHECK(b->kind == CF_TRANSPORT_SOCKETCAN, "transport kind %d", (int) b->kind);
                FUZZ_CHECK(strncmp(b->transport, "socketcan:", 10) == 0 &&
                               strcmp(b->transport + 10, b->device) == 0,
                           "socketcan device %s of transport %s", b->device, b->transport);
                FUZZ_CHECK(strlen(b->device) < 16 && !strchr(b->device, '/'), "interface name %s",
                           b->device);
        }
        FUZZ_CHECK(b->bitrate >= 1000 && b->bitrate <= 1000000, "bitrate %" PRIu32, b->bitrate);
        FUZZ_CHECK(b->max_parallel >= 1 && b->max_parallel <= 1024, "bus max_parallel %u", b->max_parallel);
        FUZZ_CHECK(b->scan_first >= CF_CCP_STATION_MIN && b->scan_first <= b->scan_last &&
                       b->scan_last <= CF_CCP_STATION_MAX,
                   "buses[%zu]: scan [%u, %u]", bi, b->scan_first, b->scan_last);
        FUZZ_CHECK(b->cro_base <= 0x7FF && b->dto_base <= 0x7FF && b->cro_base + b->scan_last <= 0x7FF &&
                       b->dto_base + b->scan_last <= 0x7FF,
                   "buses[%zu]: bases %x/%x with scan up to %u", bi, b->cro_base, b->dto_base, b->scan_last);
        /* the scan range's CRO ids and DTO ids do not meet */
        uint32_t cro_lo = b->cro_base + b->scan_first, cro_hi = b->cro_base + b->scan_last;
        uint32_t dto_lo = b->dto_base + b->scan_first, dto_hi = b->dto_base + b->scan_last;
        FUZZ_CHECK(cro_hi < dto_lo || dto_hi < cro_lo, "buses[%zu]: scan CRO ids %x..%x meet DTO ids %x..%x",
                   bi, cro_lo, cro_hi, dto_lo, dto_hi);

        for (size_t i = 0; i < b->n_nodes; i++) {
                const struct cf_node_conf *n = &b->nodes[i];
                FUZZ_CHECK(n->station >= CF_CCP_STATION_MIN && n->station <= CF_CCP_STATION_MAX,
                           "buses[%zu].nodes[%zu]: station %u", bi, i, n->station);
                FUZZ_CHECK(n->cro_id <= 0x7FF && n->dto_id <= 0x7FF && n->cro_id != n->dto_id,
                           "buses[%zu].nodes[%zu]: ids %x/%x", bi, i, n->cro_id, n->dto_id);
                for (size_t j = 0; j < i; j++) {
                        const struct cf_node_conf *o = &b->nodes[j];
                        FUZZ_CHECK(o->station != n->station, "buses[%zu]: station %u twice", bi, n->station);
                        FUZZ_CHECK(o->cro_id != n->cro_id && o->dto_id != n->dto_id &&
                                       o->cro_id != n->dto_id && o->dto_id != n->cro_id,
                                   "buses[%zu]: nodes[%zu] (%x/%x) and nodes[%zu] (%x/%x) share a CAN id",
                                   bi, j, o->cro_id, o->dto_id, i, n->cro_id, n->dto_id);
                }
                struct cf_node_conf q = cf_bus_node_conf(b, n->station);
                FUZZ_CHECK(q.cro_id == n->cro_id && q.dto_id == n->dto_id, "cf_bus_node_conf differs");
        }
}

/* An id given as a string: decimal or 0x-hex, meaning the value the configuration holds. */
static void check_id_string(json_object *o, const char *key, uint32_t value)
{
        json_object *f;
        if (!json_object_object_get_ex(o, key, &f) || !json_object_is_type(f, json_type_string))
                return;
        const char *s = json_object_get_string(f);
        uint64_t v = 0;
        bool ok = *s != 0;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                ok = s[2] != 0;
                for (const char *p = s + 2; *p && ok; p++) {
                        ok = cf_hex_digit(*p) >= 0;
                        v = v * 16 + (uint64_t) (ok ? cf_hex_digit(*p) : 0);
                        ok = ok && v <= 0x7FF;
                }
        } else {
                ok = ok && !(s[0] == '0' && s[1]); /* "010" is not ten, nor eight */
                for (const char *p = s; *p && ok; p++) {
                        ok = is_digit(*p);
                        v = v * 10 + (uint64_t) (*p - '0');
                        ok = ok && v <= 0x7FF;
                }
        }
        FUZZ_CHECK(ok, "%s \"%s\" accepted", key, s);
        FUZZ_CHECK(v == value, "%s \"%s\" read as %" PRIu32, key, s, value);
}

static void check_spellings(const char *text, const struct cf_conf *c)
{
        json_object *root = json_tokener_parse(text), *buses;
        FUZZ_CHECK(root && json_object_object_get_ex(root, "buses", &buses),
                   "accepted text json-c cannot read");
        for (size_t i = 0; i < c->n_buses && i < json_object_array_length(buses); i++) {
                json_object *b = json_object_array_get_idx(buses, i), *nodes;
                check_id_string(b, "cro_base", c->buses[i].cro_base);
                check_id_string(b, "dto_base", c->buses[i].dto_base);
                if (!json_object_object_get_ex(b, "nodes", &nodes))
                        continue;
                for (size_t k = 0; k < c->buses[i].n_nodes && k < json_object_array_length(nodes); k++) {
                        json_object *n = json_object_array_get_idx(nodes, k);
                        if (json_object_is_type(n, json_type_object)) {
                                check_id_string(n, "cro_id", c->buses[i].nodes[k].cro_id);
                                check_id_string(n, "dto_id", c->buses[i].nodes[k].dto_id);
                        }
                }
        }
        json_object_put(root);
}

/* ---- written back --------------------------------------------------------------------------------- */

static void put_str(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(f, "\\u%04x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

static char *write_back(const struct cf_conf *c)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                abort();
        fputs("{\"fleet_key_file\": ", f);
        put_str(f, c->fleet_key_file);
        fputs(", \"state_dir\": ", f);
        put_str(f, c->state_dir);
        fputs(", \"cache_dir\": ", f);
        put_str(f, c->cache_dir);
        fprintf(f, ", \"max_parallel\": %u, \"reboot_timeout_ms\": %" PRIu32 ", \"retries\": %u",
                c->max_parallel, c->reboot_timeout_ms, c->retries);
        fprintf(f, ", \"reply_timeout_ms\": %" PRIu32 ", \"buses\": [", c->reply_timeout_ms);
        for (size_t i = 0; i < c->n_buses; i++) {
                const struct cf_bus_conf *b = &c->buses[i];
                fprintf(f, "%s{\"name\": ", i ? ", " : "");
                put_str(f, b->name);
                fputs(", \"transport\": ", f);
                put_str(f, b->transport);
                fprintf(f,
                        ", \"bitrate\": %" PRIu32 ", \"scan\": [%u, %u], \"cro_base\": \"0x%" PRIX32
                        "\", \"dto_base\": %" PRIu32
                        ", \"max_parallel\": %u, \"seedkey\": \"%s\", \"nodes\": [",
                        b->bitrate, b->scan_first, b->scan_last, b->cro_base, b->dto_base, b->max_parallel,
                        b->seedkey_echo ? "echo" : "hmac");
                for (size_t k = 0; k < b->n_nodes; k++) {
                        const struct cf_node_conf *n = &b->nodes[k];
                        fprintf(f,
                                "%s{\"station\": %u, \"cro_id\": %" PRIu32 ", \"dto_id\": \"0x%" PRIx32
                                "\", \"seedkey\": \"%s\"}",
                                k ? ", " : "", n->station, n->cro_id, n->dto_id,
                                n->seedkey_echo ? "echo" : "hmac");
                }
                fputs("]}", f);
        }
        fputs("]}\n", f);
        if (fclose(f) != 0)
                abort();
        return text;
}

static bool same_conf(const struct cf_conf *a, const struct cf_conf *b)
{
        if (strcmp(a->fleet_key_file, b->fleet_key_file) || strcmp(a->state_dir, b->state_dir) ||
            strcmp(a->cache_dir, b->cache_dir) || a->max_parallel != b->max_parallel ||
            a->reboot_timeout_ms != b->reboot_timeout_ms || a->retries != b->retries ||
            a->reply_timeout_ms != b->reply_timeout_ms || a->n_buses != b->n_buses)
                return false;
        for (size_t i = 0; i < a->n_buses; i++) {
                const struct cf_bus_conf *x = &a->buses[i], *y = &b->buses[i];
                if (strcmp(x->name, y->name) || strcmp(x->transport, y->transport) || x->kind != y->kind ||
                    strcmp(x->device, y->device) || x->baud != y->baud || x->bitrate != y->bitrate ||
                    x->n_nodes != y->n_nodes || x->scan_first != y->scan_first ||
                    x->scan_last != y->scan_last || x->cro_base != y->cro_base ||
                    x->dto_base != y->dto_base || x->max_parallel != y->max_parallel ||
                    x->seedkey_echo != y->seedkey_echo)
                        return false;
                for (size_t k = 0; k < x->n_nodes; k++)
                        if (x->nodes[k].station != y->nodes[k].station ||
                            x->nodes[k].cro_id != y->nodes[k].cro_id ||
                            x->nodes[k].dto_id != y->nodes[k].dto_id ||
                            x->nodes[k].seedkey_echo != y->nodes[k].seedkey_echo)
                                return false;
        }
        return true;
}

/* ---- configurations built from the input -------------------------------------------------------- */

/*
 * Blind mutations of a text rarely keep it JSON, so an input starting with byte 0x01 is read as
 * choices instead: the rest picks, byte by byte, the values of a configuration written from a
 * template (buses, transports, bases and ids in every spelling, scan ranges, nodes), near and past
 * the edges of what etc/README.md allows. Every other input is the text itself.
 */
static const char *pick(struct fuzz_in *in, const char *const *set, size_t n)
{
        return set[fuzz_u8(in) % n];
}

#define PICK(in, set) pick(in, set, sizeof(set) / sizeof((set)[0]))

static const char *const names[] = {"bus0", "bus1", "bus0", "can-0_A", "", "a.b", "sixteen_chars_xx"};
static const char *const transports[] = {"slcan:/dev/ttyACM0",
                                         "slcan:/dev/ttyACM1@921600",
                                         "slcan:/dev/ttyACM0@115200",
                                         "slcan:/dev//ttyACM0",
                                         "socketcan:can0",
                                         "socketcan:vcan1",
                                         "socketcan:can0",
                                         "slcan:/dev/ttyACM2@12345",
                                         "slcan:",
                                         "socketcan:a/b",
                                         "socketcan:interface_name_x",
                                         "tcp:1.2.3.4"};
static const char *const ids[] = {"\"0x680\"", "\"0x6C0\"", "1664", "\"1664\"", "\"010\"",
                                  "\"0x\"",    "\"0x7FF\"", "2047", "2048",     "\" 0x680\"",
                                  "\"-1\"",    "\"0X700\"", "0",    "\"0x600\""};
static const char *const bitrates[] = {"500000", "250000", "125000", "1000000", "300000", "999", "1000"};

static void put_number(FILE *f, struct fuzz_in *in)
{
        static const long edges[] = {0,   1,    2,    3,    20,   21,    25,    63,       64,      99,
                                     100, 1024, 1025, 4096, 4097, 60000, 60001, 86400000, 86400001};
        uint8_t b = fuzz_u8(in);
        if (b < 0xC0)
                fprintf(f, "%ld", edges[b % (sizeof(edges) / sizeof(edges[0]))]);
        else
                fprintf(f, "%u", fuzz_u16(in));
}

static char *build_text(struct fuzz_in *in)
{
        static const char *const tops[] = {"max_parallel", "reboot_timeout_ms", "retries",
                                           "reply_timeout_ms"};
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                abort();
        fputs("{\"fleet_key_file\": \"/k\", \"state_dir\": \"/s\", \"cache_dir\": \"/c\"", f);
        for (size_t i = 0; i < 4; i++)
                if (fuzz_u8(in) & 1) {
                        fprintf(f, ", \"%s\": ", tops[i]);
                        put_number(f, in);
                }
        fputs(", \"buses\": [", f);
        unsigned nb = fuzz_u8(in) % 4;
        for (unsigned b = 0; b < nb; b++) {
                uint8_t has = fuzz_u8(in);
                fprintf(f, "%s{\"name\": \"%s\", \"transport\": \"%s\"", b ? ", " : "", PICK(in, names),
                        PICK(in, transports));
                if (has & 1)
                        fprintf(f, ", \"bitrate\": %s", PICK(in, bitrates));
                if (has & 2)
                        fprintf(f, ", \"cro_base\": %s", PICK(in, ids));
                if (has & 4)
                        fprintf(f, ", \"dto_base\": %s", PICK(in, ids));
                if (has & 8) {
                        uint8_t lo = fuzz_u8(in) % 70, hi = fuzz_u8(in) % 70;
                        fprintf(f, ", \"scan\": [%u, %u]", lo, hi);
                }
                if (has & 16) {
                        fputs(", \"max_parallel\": ", f);
                        put_number(f, in);
                }
                if (has & 32)
                        fprintf(f, ", \"seedkey\": \"%s\"", fuzz_u8(in) & 1 ? "echo" : "hmac");
                if (has & 64) {
                        unsigned nn = fuzz_u8(in) % 6;
                        fputs(", \"nodes\": [", f);
                        for (unsigned k = 0; k < nn; k++) {
                                uint8_t form = fuzz_u8(in), st = fuzz_u8(in) % 70;
                                if (k)
                                        fputs(", ", f);
                                if (!(form & 1)) {
                                        fprintf(f, "%u", st);
                                        continue;
                                }
                                fprintf(f, "{\"station\": %u", st);
                                if (form & 2)
                                        fprintf(f, ", \"cro_id\": %s", PICK(in, ids));
                                if (form & 4)
                                        fprintf(f, ", \"dto_id\": %s", PICK(in, ids));
                                if (form & 8)
                                        fprintf(f, ", \"seedkey\": \"%s\"", form & 16 ? "echo" : "hmac");
                                fputc('}', f);
                        }
                        fputc(']', f);
                }
                fputc('}', f);
        }
        fputs("]}", f);
        if (fclose(f) != 0)
                abort();
        return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text;
        if (size > 0 && data[0] == 0x01) {
                struct fuzz_in in = {data + 1, size - 1};
                text = build_text(&in);
        } else {
                text = malloc(size + 1);
                if (!text)
                        abort();
                if (size)
                        memcpy(text, data, size);
                text[size] = 0;
        }

        struct cf_conf *c = NULL;
        char *error = NULL;
        int r = cf_conf_parse(text, PATH, &c, &error);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM, "cf_conf_parse returned %d", r);
        if (getenv("FUZZ_TRACE"))
                fprintf(stderr, "%s\n", r < 0 ? (error ? error : "(no message)") : "accepted");
        if (r < 0) {
                FUZZ_CHECK(!c, "a configuration with error %d", r);
                FUZZ_CHECK(error && strncmp(error, PATH ": ", strlen(PATH) + 2) == 0 &&
                               error[strlen(PATH) + 2],
                           "error %d with message \"%s\"", r, error ? error : "(none)");
                free(error);
                free(text);
                return 0;
        }
        FUZZ_CHECK(c && !error, "success with %s", c ? "a message" : "no configuration");
        FUZZ_CHECK(c->path && strcmp(c->path, PATH) == 0, "path %s", c->path ? c->path : "(null)");
        FUZZ_CHECK(strict_json_object(text), "accepted a text that is not strict JSON");

        FUZZ_CHECK(c->fleet_key_file && c->fleet_key_file[0] && c->state_dir && c->state_dir[0] &&
                       c->cache_dir && c->cache_dir[0],
                   "empty path accepted");
        FUZZ_CHECK(c->max_parallel >= 1 && c->max_parallel <= 4096, "max_parallel %u", c->max_parallel);
        FUZZ_CHECK(c->reboot_timeout_ms >= 100 && c->reboot_timeout_ms <= 86400000,
                   "reboot_timeout_ms %" PRIu32, c->reboot_timeout_ms);
        FUZZ_CHECK(c->retries >= 1 && c->retries <= 20, "retries %u", c->retries);
        FUZZ_CHECK(c->reply_timeout_ms >= 1 && c->reply_timeout_ms <= 60000, "reply_timeout_ms %" PRIu32,
                   c->reply_timeout_ms);
        FUZZ_CHECK(c->n_buses >= 1, "no bus");
        for (size_t i = 0; i < c->n_buses; i++)
                check_bus(c, i);
        check_spellings(text, c);

        char *again = write_back(c);
        struct cf_conf *c2 = NULL;
        char *error2 = NULL;
        r = cf_conf_parse(again, PATH, &c2, &error2);
        FUZZ_CHECK(r == 0, "written back, the configuration is refused: %s\n%s", error2 ? error2 : "",
                   again);
        FUZZ_CHECK(same_conf(c, c2), "written back, the configuration reads differently:\n%s", again);

        free(again);
        cf_conf_free(c2);
        cf_conf_free(c);
        free(text);
        return 0;
}
