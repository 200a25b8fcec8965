/* Tests of daemon/conf.c: the sample parses; every bad key is refused with a message naming it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf-test.h"
#include "conf.h"

static const char *good =
    "{ \"fleet_key_file\": \"/etc/canfleet/fleet.key\", \"state_dir\": \"/var/lib/canfleet\",\n"
    "  \"cache_dir\": \"/var/cache/canfleet\", \"max_parallel\": 8, \"reboot_timeout_ms\": 5000, "
    "\"retries\": 4, \"reply_timeout_ms\": 120,\n"
    "  \"buses\": [ { \"name\": \"bus0\", \"transport\": \"slcan:/dev/ttyACM0\", \"bitrate\": 500000,\n"
    "                 \"nodes\": [1, 2, {\"station\": 3, \"cro_id\": \"0x700\", \"dto_id\": 1856, "
    "\"seedkey\": \"echo\"}] },\n"
    "               { \"name\": \"can-1\", \"transport\": \"socketcan:can1\", \"bitrate\": 250000, "
    "\"scan\": [5, 9],\n"
    "                 \"cro_base\": \"0x600\", \"dto_base\": 1600, \"max_parallel\": 4, \"seedkey\": "
    "\"echo\" },\n"
    "               { \"name\": \"b2\", \"transport\": \"slcan:/dev/ttyUSB0@921600\" } ] }\n";

static void test_good_sample(void)
{
        struct cf_conf *c = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(good, "/etc/x.conf", &c, &err), 0);
        CU_ASSERT_PTR_NULL(err);
        CU_ASSERT_STRING_EQUAL(c->fleet_key_file, "/etc/canfleet/fleet.key");
        CU_ASSERT_STRING_EQUAL(c->state_dir, "/var/lib/canfleet");
        CU_ASSERT_EQUAL(c->max_parallel, 8);
        CU_ASSERT_EQUAL(c->reboot_timeout_ms, 5000);
        CU_ASSERT_EQUAL(c->retries, 4);
        CU_ASSERT_EQUAL(c->reply_timeout_ms, 120);
        CU_ASSERT_EQUAL_FATAL(c->n_buses, 3);
        struct cf_bus_conf *b = &c->buses[0];
        CU_ASSERT_STRING_EQUAL(b->name, "bus0");
        CU_ASSERT_EQUAL(b->kind, CF_TRANSPORT_SLCAN);
        CU_ASSERT_STRING_EQUAL(b->device, "/dev/ttyACM0");
        CU_ASSERT_EQUAL(b->baud, 115200);
        CU_ASSERT_EQUAL(b->scan_first, 1);
        CU_ASSERT_EQUAL(b->scan_last, 63);
        CU_ASSERT_EQUAL(b->max_parallel, 16);
        CU_ASSERT_EQUAL_FATAL(b->n_nodes, 3);
        CU_ASSERT_EQUAL(b->nodes[0].station, 1);
        CU_ASSERT_EQUAL(b->nodes[0].cro_id, 0x681);
        CU_ASSERT_EQUAL(b->nodes[0].dto_id, 0x6C1);
        CU_ASSERT_FALSE(b->nodes[0].seedkey_echo);
        CU_ASSERT_EQUAL(b->nodes[2].cro_id, 0x700);
        CU_ASSERT_EQUAL(b->nodes[2].dto_id, 1856);
        CU_ASSERT_TRUE(b->nodes[2].seedkey_echo);
        b = &c->buses[1];
        CU_ASSERT_EQUAL(b->kind, CF_TRANSPORT_SOCKETCAN);
        CU_ASSERT_STRING_EQUAL(b->device, "can1");
        CU_ASSERT_EQUAL(b->bitrate, 250000);
        CU_ASSERT_EQUAL(b->cro_base, 0x600);
        CU_ASSERT_EQUAL(b->dto_base, 1600);
        CU_ASSERT_EQUAL(b->scan_first, 5);
        CU_ASSERT_EQUAL(b->scan_last, 9);
        CU_ASSERT_TRUE(b->seedkey_echo);
        struct cf_node_conf nc = cf_bus_node_conf(b, 7);
        CU_ASSERT_EQUAL(nc.cro_id, 0x607);
        CU_ASSERT_TRUE(nc.seedkey_echo);
        b = &c->buses[2];
        CU_ASSERT_STRING_EQUAL(b->device, "/dev/ttyUSB0");
        CU_ASSERT_EQUAL(b->baud, 921600);
        CU_ASSERT_EQUAL(b->bitrate, 500000);
        cf_conf_free(c);
}

static void test_defaults(void)
{
        struct cf_conf *c = NULL;
        char *err = NULL;
        const char *t = "{\"fleet_key_file\": \"k\", \"state_dir\": \"s\", \"cache_dir\": \"c\","
                        " \"buses\": [{\"name\": \"b\", \"transport\": \"socketcan:vcan0\"}]}";
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(t, "x", &c, &err), 0);
        CU_ASSERT_EQUAL(c->max_parallel, 64);
        CU_ASSERT_EQUAL(c->reboot_timeout_ms, 60000);
        CU_ASSERT_EQUAL(c->retries, 3);
        CU_ASSERT_EQUAL(c->reply_timeout_ms, 25);
        CU_ASSERT_EQUAL(c->node_lost_timeout_s, 30);
        CU_ASSERT_EQUAL(c->buses[0].cro_base, 0x680);
        CU_ASSERT_EQUAL(c->buses[0].dto_base, 0x6C0);
        CU_ASSERT_EQUAL(c->buses[0].n_nodes, 0);
        CU_ASSERT_EQUAL(c->buses[0].bitrate, 500000);
        CU_ASSERT_EQUAL(c->buses[0].max_parallel, 16);
        CU_ASSERT_EQUAL(c->buses[0].group_id, 0x680);
        CU_ASSERT_EQUAL(c->buses[0].max_load_percent, 100);
        cf_conf_free(c);

        t = "{\"fleet_key_file\": \"k\", \"state_dir\": \"s\", \"cache_dir\": \"c\","
            " \"buses\": [{\"name\": \"b\", \"transport\": \"socketcan:vcan0\", \"group_id\": \"0x7F0\","
            " \"max_load_percent\": 60}]}";
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(t, "x", &c, &err), 0);
        CU_ASSERT_EQUAL(c->buses[0].group_id, 0x7F0);
        CU_ASSERT_EQUAL(c->buses[0].max_load_percent, 60);
        cf_conf_free(c);

        t = "{\"fleet_key_file\": \"k\", \"state_dir\": \"s\", \"cache_dir\": \"c\", "
            "\"node_lost_timeout_s\": 3600,"
            " \"buses\": [{\"name\": \"b\", \"transport\": \"socketcan:vcan0\"}]}";
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(t, "x", &c, &err), 0);
        CU_ASSERT_EQUAL(c->node_lost_timeout_s, 3600);
        cf_conf_free(c);
}

struct bad {
        const char *text;
        const char *message;
};

#define HEAD  "{\"fleet_key_file\": \"k\", \"state_dir\": \"s\", \"cache_dir\": \"c\", "
#define HB(x) "\"hawkbit\": {" x "}, \"buses\": []}"
#define BUS(x)                                                                                              \
        HEAD "\"buses\": [{\"name\": \"b0\", \"transport\": \"slcan:/dev/t\"}, {\"name\": \"b1\", " x "}]}"

static const struct bad bads[] = {
    {BUS("\"transport\": \"foo\""),
     "/etc/x.conf: buses[1].transport: \"foo\" is not \"slcan:DEV\", \"socketcan:IF\" or \"serial:DEV\""},
    {BUS("\"transport\": 3"), "/etc/x.conf: buses[1].transport: a number is not a string"},
    {BUS("\"transport\": \"slcan:/dev/x@12345\""),
     "/etc/x.conf: buses[1].transport: \"slcan:/dev/x@12345\": \"12345\" is not a serial speed (e.g. "
     "115200)"},
    {BUS("\"transport\": \"socketcan:c\", \"bitrate\": \"fast\""),
     "/etc/x.conf: buses[1].bitrate: a string is not a number"},
    {BUS("\"transport\": \"slcan:/dev/u\", \"bitrate\": 300000"),
     "/etc/x.conf: buses[1].bitrate: 300000 is not an SLCAN bitrate (10000, 20000, 50000, 100000, 125000, "
     "250000, 500000, 800000, 1000000)"},
    {BUS("\"transport\": \"socketcan:c\", \"nodes\": [1, 0]"),
     "/etc/x.conf: buses[1].nodes[1]: 0 is out of range 1..63"},
    {BUS("\"transport\": \"socketcan:c\", \"nodes\": [4, 4]"),
     "/etc/x.conf: buses[1].nodes[1]: station 4 is already nodes[0]"},
    {BUS("\"transport\": \"socketcan:c\", \"nodes\": [{\"station\": 2, \"colour\": 1}]"),
     "/etc/x.conf: buses[1].nodes[0].colour: unknown key"},
    {BUS("\"transport\": \"socketcan:c\", \"nodes\": [{\"cro_id\": 2}]"),
     "/etc/x.conf: buses[1].nodes[0].station: missing"},
    {BUS("\"transport\": \"socketcan:c\", \"nodes\": [{\"station\": 2, \"dto_id\": \"0x900\"}]"),
     "/etc/x.conf: buses[1].nodes[0].dto_id: \"0x900\" is out of range 0x0..0x7FF"},
    {BUS("\"transport\": \"socketcan:c\", \"cro_base\": \"zz\""),
     "/etc/x.conf: buses[1].cro_base: \"zz\" is not a number (e.g. 1664 or \"0x680\")"},
    {BUS("\"transport\": \"socketcan:c\", \"scan\": [9, 3]"),
     "/etc/x.conf: buses[1].scan[1]: 3 is out of range 9..63"},
    {BUS("\"transport\": \"socketcan:c\", \"scan\": 4"), "/etc/x.conf: buses[1].scan: is not [first, last]"},
    {BUS("\"transport\": \"socketcan:c\", \"seedkey\": \"rot13\""),
     "/etc/x.conf: buses[1].seedkey: \"rot13\" is not \"hmac\" or \"echo\""},
    {BUS("\"transport\": \"socketcan:c\", \"max_parallel\": 0"),
     "/etc/x.conf: buses[1].max_parallel: 0 is out of range 1..1024"},
    {BUS("\"transport\": \"socketcan:c\", \"max_load_percent\": 0"),
     "/etc/x.conf: buses[1].max_load_percent: 0 is out of range 1..100"},
    {BUS("\"transport\": \"socketcan:c\", \"max_load_percent\": 101"),
     "/etc/x.conf: buses[1].max_load_percent: 101 is out of range 1..100"},
    {BUS("\"transport\": \"socketcan:c\", \"group_id\": \"0x800\""),
     "/etc/x.conf: buses[1].group_id: \"0x800\" is out of range 0x0..0x7FF"},
    {BUS("\"transport\": \"socketcan:c\", \"nodes\": [3], \"group_id\": \"0x6C3\""),
     "/etc/x.conf: buses[1].group_id: 0x6C3 is already the DTO id of station 3 (nodes[0]); pick an id no "
     "node uses"},
    {BUS("\"transport\": \"socketcan:c\", \"group_id\": \"0x681\""),
     "/etc/x.conf: buses[1].group_id: 0x681 is already the CRO id of station 1 (scan [1, 63]); pick an id no "
     "node uses"},
    {BUS("\"transport\": \"slcan:/dev/t\""),
     "/etc/x.conf: buses[1].transport: \"slcan:/dev/t\" is already the transport of buses[0]"},
    {HEAD "\"buses\": [{\"name\": \"bus 0\", \"transport\": \"socketcan:c\"}]}",
     "/etc/x.conf: buses[0].name: \"bus 0\" is not 1 to 15 of [A-Za-z0-9_-]"},
    {HEAD "\"buses\": [{\"name\": \"a\", \"transport\": \"socketcan:c\"}, {\"name\": \"a\", \"transport\": "
          "\"socketcan:d\"}]}",
     "/etc/x.conf: buses[1].name: \"a\" is already the name of buses[0]"},
    {HEAD "\"buses\": [{\"transport\": \"socketcan:c\"}]}", "/etc/x.conf: buses[0].name: missing"},
    {HEAD "\"buses\": []}", "/etc/x.conf: buses: is empty: at least one bus is needed"},
    {HEAD "\"buses\": {}}", "/etc/x.conf: buses: an object is not an array"},
    {HEAD "\"retries\": 0, \"buses\": []}", "/etc/x.conf: retries: 0 is out of range 1..20"},
    {HEAD "\"reply_timeout_ms\": 0, \"buses\": []}",
     "/etc/x.conf: reply_timeout_ms: 0 is out of range 1..60000"},
    {HEAD "\"max_parallel\": -1, \"buses\": []}", "/etc/x.conf: max_parallel: -1 is out of range 1..4096"},
    {HEAD "\"node_lost_timeout_s\": 0, \"buses\": []}",
     "/etc/x.conf: node_lost_timeout_s: 0 is out of range 1..3600"},
    {HEAD "\"node_lost_timeout_s\": 3601, \"buses\": []}",
     "/etc/x.conf: node_lost_timeout_s: 3601 is out of range 1..3600"},
    {"42", "/etc/x.conf: the configuration is a number, not an object"},
    {HEAD "\"hawkbit\": 3, \"buses\": []}", "/etc/x.conf: hawkbit: a number is not an object"},
    {HEAD HB("\"url\": \"https://h\", \"tenant\": \"T\""),
     "/etc/x.conf: hawkbit.gateway_token_file: missing"},
    {HEAD HB("\"tenant\": \"T\", \"gateway_token_file\": \"t\""), "/etc/x.conf: hawkbit.url: missing"},
    {HEAD HB("\"url\": \"ftp://h\", \"tenant\": \"T\", \"gateway_token_file\": \"t\""),
     "/etc/x.conf: hawkbit.url: \"ftp://h\" is not an http:// or https:// URL"},
    {HEAD HB("\"url\": \"https://h\", \"tenant\": \"a/b\", \"gateway_token_file\": \"t\""),
     "/etc/x.conf: hawkbit.tenant: \"a/b\" is not one path segment"},
    {HEAD HB("\"url\": \"https://h\", \"tenant\": \"T\", \"gateway_token_file\": \"t\", \"poll_max_s\": 0"),
     "/etc/x.conf: hawkbit.poll_max_s: 0 is out of range 1..86400"},
    {HEAD HB("\"url\": \"https://h\", \"tenant\": \"T\", \"gateway_token_file\": \"t\", \"max_requests_per_s\": 1001"),
     "/etc/x.conf: hawkbit.max_requests_per_s: 1001 is out of range 1..1000"},
    {HEAD HB("\"url\": \"https://h\", \"tenant\": \"T\", \"gateway_token_file\": \"t\", \"colour\": 1"),
     "/etc/x.conf: hawkbit.colour: unknown key"},
    {HEAD HB("\"url\": \"https://h\", \"tenant\": \"T\", \"gateway_token_file\": \"t\", "
             "\"controller_prefix\": \"a b\""),
     "/etc/x.conf: hawkbit.controller_prefix: \"a b\" is not 1..64 of letters, digits, '-', '_' and '.'"},
    {HEAD HB("\"url\": \"https://h\", \"tenant\": \"T\", \"gateway_token_file\": \"\""),
     "/etc/x.conf: hawkbit.gateway_token_file: is empty"},
    {HEAD "\"reboot_timeout_ms\": true, \"buses\": []}",
     "/etc/x.conf: reboot_timeout_ms: a boolean is not a number"},
    {HEAD "\"bussen\": []}", "/etc/x.conf: bussen: unknown key"},
    {"{\"state_dir\": \"s\", \"cache_dir\": \"c\", \"buses\": []}", "/etc/x.conf: fleet_key_file: missing"},
    {"{\"fleet_key_file\": \"\", \"state_dir\": \"s\", \"cache_dir\": \"c\", \"buses\": []}",
     "/etc/x.conf: fleet_key_file: is empty"},
    {"[1, 2]", "/etc/x.conf: the configuration is an array, not an object"},
    {"{\"fleet_key_file\": \"k\",\n \"state_dir\": }",
     "/etc/x.conf: line 2, column 15: not valid JSON: '}' where a value should be"},
};

static void test_bad_keys(void)
{
        for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
                struct cf_conf *c = NULL;
                char *err = NULL;
                int r = cf_conf_parse(bads[i].text, "/etc/x.conf", &c, &err);
                CU_ASSERT(r < 0);
                CU_ASSERT_PTR_NULL(c);
                CU_ASSERT_PTR_NOT_NULL_FATAL(err);
                if (strcmp(err, bads[i].message) != 0)
                        fprintf(stderr, "\n case %zu:\n  got      %s\n  expected %s\n", i, err,
                                bads[i].message);
                CU_ASSERT_STRING_EQUAL(err, bads[i].message);
                free(err);
        }
}

/* cf_conf_parse_len() reads exactly len bytes: nothing before a NUL is assumed, nothing after len is read.
 */
static void test_parse_len(void)
{
        size_t n = strlen(good);
        char *exact = malloc(n); /* no NUL: a read past the end would show under ASan */
        CU_ASSERT_PTR_NOT_NULL_FATAL(exact);
        memcpy(exact, good, n);
        struct cf_conf *c = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL(cf_conf_parse_len(exact, n, "/etc/x.conf", &c, &err), 0);
        CU_ASSERT_PTR_NULL(err);
        CU_ASSERT_PTR_NOT_NULL(c);
        cf_conf_free(c);
        free(exact);

        char text[64];
        memcpy(text, "{\"a\": 1} garbage", 17);
        c = NULL;
        CU_ASSERT(cf_conf_parse_len(text, 8, "/etc/x.conf", &c, &err) < 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, "/etc/x.conf: a: unknown key");
        free(err);

        memcpy(text, "{\"a\":\0 1}", 10);
        CU_ASSERT(cf_conf_parse_len(text, 10, "/etc/x.conf", &c, &err) < 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(
            err, "/etc/x.conf: line 1, column 6: not valid JSON: a NUL byte where a value should be");
        free(err);
        memcpy(text, "{\"a\": \"\0\"}", 9);
        CU_ASSERT(cf_conf_parse_len(text, 9, "/etc/x.conf", &c, &err) < 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(
            err, "/etc/x.conf: line 1, column 8: not valid JSON: control character U+0000 inside a "
                 "string (write it escaped)");
        free(err);

        CU_ASSERT(cf_conf_parse_len("", 0, "/etc/x.conf", &c, NULL) < 0);
        CU_ASSERT(cf_conf_parse_len(good, 1024 * 1024 + 1, "/etc/x.conf", &c, &err) == -EINVAL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, "/etc/x.conf: is too large (1048577 bytes, at most 1048576)");
        free(err);
}

/* Mutations of a valid configuration (fixed seed): every result is a configuration or a message,
 * never a crash, and each input is an exact-size buffer. What a fuzzer does for hours, in short. */
static void test_mutations(void)
{
        uint32_t seed = 0x15C0FFEEu;
        size_t n0 = strlen(good);
        unsigned accepted = 0, refused = 0;
        static const char tokens[] = "{}[]\",:0123456789-+.eE \\/'\x00\x80\xC3\xFFtrufalsn";
        for (unsigned i = 0; i < 20000; i++) {
                size_t n = n0;
                char *buf = malloc(n0 + 8);
                CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
                memcpy(buf, good, n0);
                unsigned edits = 1 + i % 4;
                for (unsigned e = 0; e < edits && n > 1; e++) {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        size_t at = seed % n;
                        switch ((seed >> 16) % 4) {
                        case 0: /* replace */
                                buf[at] = tokens[(seed >> 8) % (sizeof tokens - 1)];
                                break;
                        case 1: /* cut short */
                                n = at + 1;
                                break;
                        case 2: /* delete */
                                memmove(buf + at, buf + at + 1, n - at - 1);
                                n--;
                                break;
                        default: /* insert */
                                memmove(buf + at + 1, buf + at, n - at);
                                buf[at] = tokens[(seed >> 8) % (sizeof tokens - 1)];
                                n++;
                                break;
                        }
                }
                char *exact = malloc(n ? n : 1);
                CU_ASSERT_PTR_NOT_NULL_FATAL(exact);
                memcpy(exact, buf, n);
                free(buf);
                struct cf_conf *c = NULL;
                char *err = NULL;
                int r = cf_conf_parse_len(exact, n, "/etc/x.conf", &c, &err);
                if (r == 0) {
                        accepted++;
                        CU_ASSERT_PTR_NOT_NULL(c);
                        CU_ASSERT_PTR_NULL(err);
                } else {
                        refused++;
                        CU_ASSERT_PTR_NULL(c);
                        CU_ASSERT(err && strncmp(err, "/etc/x.conf: ", 13) == 0);
                }
                cf_conf_free(c);
                free(err);
                free(exact);
        }
        /* Both outcomes occur, so the mutations reach the checks after the JSON syntax. */
        CU_ASSERT(accepted > 100);
        CU_ASSERT(refused > 10000);
}

static void test_fleet_key(void)
{
        char dir[] = "/tmp/cf-test-conf-XXXXXX";
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
        char path[64], text[512];
        snprintf(path, sizeof path, "%s/fleet.key", dir);
        snprintf(text, sizeof text,
                 "{\"fleet_key_file\": \"%s\", \"state_dir\": \"s\", \"cache_dir\": \"c\","
                 " \"buses\": [{\"name\": \"b\", \"transport\": \"socketcan:vcan0\"}]}",
                 path);
        struct cf_conf *c = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(text, "/etc/x.conf", &c, &err), 0);
        uint8_t key[32];
        CU_ASSERT(cf_conf_read_fleet_key(c, key, &err) < 0);
        char expect[256];
        snprintf(expect, sizeof expect, "/etc/x.conf: fleet_key_file: %s: No such file or directory", path);
        CU_ASSERT_STRING_EQUAL(err, expect);
        free(err);

        FILE *f = fopen(path, "w");
        fputs("not hex\n", f);
        fclose(f);
        err = NULL;
        CU_ASSERT(cf_conf_read_fleet_key(c, key, &err) < 0);
        snprintf(expect, sizeof expect, "/etc/x.conf: fleet_key_file: %s: not 64 hexadecimal characters",
                 path);
        CU_ASSERT_STRING_EQUAL(err, expect);
        free(err);

        f = fopen(path, "w");
        fputs("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", f);
        fclose(f);
        err = NULL;
        CU_ASSERT_EQUAL(cf_conf_read_fleet_key(c, key, &err), 0);
        CU_ASSERT_EQUAL(key[0], 0x00);
        CU_ASSERT_EQUAL(key[31], 0x1F);
        cf_conf_free(c);
        unlink(path);
        rmdir(dir);
}

/* The hawkbit block: defaults, and what --check says about the token file. */
static void test_hawkbit(void)
{
        char dir[] = "/tmp/cf-test-conf-XXXXXX";
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
        char path[64], text[512];
        snprintf(path, sizeof path, "%s/hawkbit.token", dir);
        snprintf(text, sizeof text,
                 HEAD "\"hawkbit\": {\"url\": \"https://h:8443\", \"tenant\": \"DEFAULT\", "
                      "\"gateway_token_file\": \"%s\"}, \"buses\": [{\"name\": \"b\", \"transport\": "
                      "\"socketcan:vcan0\"}]}",
                 path);
        struct cf_conf *c = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(text, "/etc/x.conf", &c, &err), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c->hawkbit);
        CU_ASSERT_STRING_EQUAL(c->hawkbit->url, "https://h:8443");
        CU_ASSERT_EQUAL(c->hawkbit->poll_max_s, 300);
        CU_ASSERT_EQUAL(c->hawkbit->max_requests_per_s, 10);
        CU_ASSERT_PTR_NULL(c->hawkbit->ca_file);
        CU_ASSERT_PTR_NULL(c->hawkbit->controller_prefix);

        char expect[256];
        CU_ASSERT(cf_conf_check_hawkbit(c, &err) < 0);
        snprintf(expect, sizeof expect,
                 "/etc/x.conf: hawkbit.gateway_token_file: %s: No such file or directory", path);
        CU_ASSERT_STRING_EQUAL(err, expect);
        free(err);

        FILE *f = fopen(path, "w");
        fputs("\nsecret\n", f);
        fclose(f);
        err = NULL;
        CU_ASSERT(cf_conf_check_hawkbit(c, &err) < 0);
        snprintf(expect, sizeof expect,
                 "/etc/x.conf: hawkbit.gateway_token_file: %s: the first line (the token) is empty", path);
        CU_ASSERT_STRING_EQUAL(err, expect);
        free(err);

        f = fopen(path, "w");
        fputs("secret\n", f);
        fclose(f);
        err = NULL;
        CU_ASSERT_EQUAL(cf_conf_check_hawkbit(c, &err), 0);
        cf_conf_free(c);
        unlink(path);
        rmdir(dir);

        /* without the block: nothing to check */
        const char *t = HEAD "\"buses\": [{\"name\": \"b\", \"transport\": \"socketcan:vcan0\"}]}";
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(t, "x", &c, &err), 0);
        CU_ASSERT_PTR_NULL(c->hawkbit);
        CU_ASSERT_EQUAL(cf_conf_check_hawkbit(c, &err), 0);
        cf_conf_free(c);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"good sample parses", test_good_sample},
            {"defaults", test_defaults},
            {"every error names the key", test_bad_keys},
            {"cf_conf_parse_len reads len bytes", test_parse_len},
            {"mutated configurations", test_mutations},
            {"fleet key file", test_fleet_key},
            {"hawkbit block", test_hawkbit},
            {NULL, NULL},
        };
        return cf_test_run("daemon-conf", tests);
}
