/* Tests of daemon/conf.c against hostile or mistaken configurations (issue 15): strict JSON, stations,
 * CAN-id collisions, one bus per device, and files that are not regular files. Only the API that
 * conf.h has had from the start is used, so that these tests also run against older parsers. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cf-test.h"
#include "conf.h"

#define N_ELEMENTS(x) (sizeof(x) / sizeof((x)[0]))

struct bad {
        const char *text;
        const char *message;
};

#define HEAD "{\"fleet_key_file\": \"k\", \"state_dir\": \"s\", \"cache_dir\": \"c\", "
#define BUS(x)                                                                                              \
        HEAD "\"buses\": [{\"name\": \"b0\", \"transport\": \"slcan:/dev/t\"}, {\"name\": \"b1\", "         \
             "\"transport\": \"socketcan:c\", " x "}]}"
#define GOOD HEAD "\"buses\": [{\"name\": \"b0\", \"transport\": \"socketcan:c\"}]}"
#define P    "/etc/x.conf: "
#define J    "/etc/x.conf: line 1, column "

static void expect_refused(const struct bad *cases, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                struct cf_conf *c = NULL;
                char *err = NULL;
                int r = cf_conf_parse(cases[i].text, "/etc/x.conf", &c, &err);
                if (r >= 0 || !err || strcmp(err, cases[i].message) != 0)
                        fprintf(stderr, "\n case %zu: %s\n  got      %s\n  expected %s\n", i, cases[i].text,
                                err ? err : "(accepted)", cases[i].message);
                CU_ASSERT(r < 0);
                CU_ASSERT_PTR_NULL(c);
                cf_conf_free(c);
                CU_ASSERT_PTR_NOT_NULL(err);
                if (err)
                        CU_ASSERT_STRING_EQUAL(err, cases[i].message);
                free(err);
        }
}

static void expect_accepted(const char *text)
{
        struct cf_conf *c = NULL;
        char *err = NULL;
        int r = cf_conf_parse(text, "/etc/x.conf", &c, &err);
        if (r < 0)
                fprintf(stderr, "\n refused: %s\n  %s\n", text, err ? err : "(no message)");
        CU_ASSERT_EQUAL(r, 0);
        CU_ASSERT_PTR_NULL(err);
        free(err);
        cf_conf_free(c);
}

/* JSON exactly as RFC 8259 has it: json-c accepts every one of these. */
static const struct bad json_cases[] = {
    /* trailing garbage */
    {"{\"retries\": 3}}", J "15: not valid JSON: text after the end of the JSON value"},
    {GOOD "\nx", "/etc/x.conf: line 2, column 1: not valid JSON: text after the end of the JSON value"},
    {GOOD " {}", J "116: not valid JSON: text after the end of the JSON value"},
    /* comments */
    {"{\"retries\": 3} // three", J "16: not valid JSON: comments are not JSON"},
    {"{\n  // tries\n  \"retries\": 3\n}",
     "/etc/x.conf: line 2, column 3: not valid JSON: comments are not JSON"},
    {"{\"retries\": 3 /* three */}", J "15: not valid JSON: comments are not JSON"},
    {"{\"retries\": /* three */ 3}", J "13: not valid JSON: comments are not JSON"},
    {"# canfleet\n{}", J "1: not valid JSON: comments are not JSON"},
    {"{\"retries\": 3} # three", J "16: not valid JSON: comments are not JSON"},
    /* single quotes */
    {"{'retries': 3}", J "2: not valid JSON: single quotes: JSON strings take double quotes"},
    {"{\"state_dir\": 's'}", J "15: not valid JSON: single quotes: JSON strings take double quotes"},
    /* trailing commas */
    {"{\"retries\": 3,}", J "14: not valid JSON: trailing comma before '}'"},
    {"{\"buses\": [1, 2, ]}", J "16: not valid JSON: trailing comma before ']'"},
    {"{\"buses\": [,]}", J "12: not valid JSON: ',' where a value should be"},
    /* duplicate keys, at any depth, compared after unescaping */
    {"{\"retries\": 3, \"retries\": 4}",
     J "16: not valid JSON: key \"retries\" appears twice in this object (first at 1:2)"},
    {"{\"retries\": 3, \"re\\u0074ries\": 4}",
     J "16: not valid JSON: key \"retries\" appears twice in this object (first at 1:2)"},
    {HEAD "\"buses\": [{\"name\": \"a\", \"transport\": \"socketcan:c\", \"name\": \"b\"}]}",
     J "113: not valid JSON: key \"name\" appears twice in this object (first at 1:72)"},
    {"{\"b\": [{\"n\": [{\"station\": 1, \"station\": 2}]}]}",
     J "30: not valid JSON: key \"station\" appears twice in this object (first at 1:16)"},
    /* NUL, control characters, escapes */
    {"{\"state_dir\": \"a\\u0000b\"}", J "17: not valid JSON: \\u0000 (a NUL character) inside a string"},
    {"{\"state_dir\": \"a\nb\"}",
     J "17: not valid JSON: control character U+000A inside a string (write it escaped)"},
    {"{\"state_dir\": \"a\\xb\"}", J "17: not valid JSON: \\x is not a JSON escape"},
    {"{\"state_dir\": \"\\u12\"}", J "16: not valid JSON: \\u needs four hexadecimal digits"},
    {"{\"state_dir\": \"\\uD800x\"}",
     J "16: not valid JSON: \\uD800 is half of a surrogate pair without the second"},
    {"{\"state_dir\": \"\\uDC00\"}",
     J "16: not valid JSON: \\uDC00 is the second half of a surrogate pair without the first"},
    {"{\"state_dir\": \"abc",
     J "15: not valid JSON: string not closed (no '\"' before the end of the text)"},
    /* numbers: leading zeros (octal-looking), spaces inside, and what JavaScript has but JSON has not */
    {"{\"retries\": 010}",
     J "13: not valid JSON: number with a leading zero (\"010\"): JSON has no octal numbers"},
    {"{\"retries\": -01}",
     J "13: not valid JSON: number with a leading zero (\"-01\"): JSON has no octal numbers"},
    {"{\"retries\": 00}",
     J "13: not valid JSON: number with a leading zero (\"00\"): JSON has no octal numbers"},
    {"{\"retries\": 1 0}", J "15: not valid JSON: a space inside a number, or a missing ','"},
    {"{\"buses\": [1 0]}", J "14: not valid JSON: a space inside a number, or a missing ','"},
    {"{\"retries\": - 1}", J "13: not valid JSON: a space inside a number"},
    {"{\"retries\": 1. 5}", J "15: not valid JSON: ' ' where a digit after '.' should be"},
    {"{\"retries\": NaN}", J "13: not valid JSON: NaN and Infinity are not JSON numbers"},
    {"{\"retries\": Infinity}", J "13: not valid JSON: NaN and Infinity are not JSON numbers"},
    {"{\"retries\": -Infinity}", J "13: not valid JSON: NaN and Infinity are not JSON numbers"},
    {"{\"retries\": 0x3}", J "13: not valid JSON: hexadecimal numbers are not JSON (a \"0x...\" string is, "
                             "where the key takes one)"},
    {"{\"retries\": +3}", J "13: not valid JSON: a '+' before a number is not JSON"},
    {"{\"retries\": .5}", J "13: not valid JSON: a number starting with '.' is not JSON (write 0.)"},
    {"{\"retries\": 3e}", J "15: not valid JSON: '}' where a digit in the exponent should be"},
    {"{\"retries\": True}",
     J "13: not valid JSON: \"True\": JSON's literals are lowercase (true, false, null)"},
    {"{\"retries\": three}", J "13: not valid JSON: \"three\" without quotes where a value should be"},
    {"{retries: 3}",
     J "2: not valid JSON: \"retries\" without quotes where a key in double quotes should be"},
    /* encoding: invalid UTF-8 (bad lead byte, overlong, surrogate, beyond U+10FFFF, cut short), BOM,
     * a no-break space pasted where whitespace belongs */
    {"{\"state_dir\": \"\xC3\x28\"}", J "16: not valid JSON: invalid UTF-8 (byte 0xC3)"},
    {"{\"state_dir\": \"\xC0\xAF\"}", J "16: not valid JSON: invalid UTF-8 (byte 0xC0)"},
    {"{\"state_dir\": \"\xED\xA0\x80\"}", J "16: not valid JSON: invalid UTF-8 (byte 0xED)"},
    {"{\"state_dir\": \"\xF4\x90\x80\x80\"}", J "16: not valid JSON: invalid UTF-8 (byte 0xF4)"},
    {"{\"state_dir\": \"\xE2\x82", J "16: not valid JSON: invalid UTF-8 (byte 0xE2)"},
    {"{\"st\xFF\": 1}", J "5: not valid JSON: invalid UTF-8 (byte 0xFF)"},
    {"\xEF\xBB\xBF{}", J "1: not valid JSON: a UTF-8 byte order mark (save the file without one)"},
    {"{\"retries\":\xC2\xA0"
     "3}",
     J "12: not valid JSON: character U+00A0 where a value should be"},
    {"{\"d\": \"\xC3\xA9\", \"retries\": 3,}", J "24: not valid JSON: trailing comma before '}'"},
    /* structure */
    {"", J "1: not valid JSON: no JSON value (the text is empty)"},
    {" \n\t", "/etc/x.conf: line 2, column 2: not valid JSON: no JSON value (the text is empty)"},
    {"{\"retries\": 3", J "14: not valid JSON: the text ends where ',' or '}' should be"},
    {"{\"retries\" 3}", J "12: not valid JSON: '3' where ':' should be"},
    {"{\"a\": [[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]}",
     J "26: not valid JSON: nested more than 20 arrays and objects deep"},
    /* numbers inside strings and the serial speed take the same care ("0700" is not octal 448) */
    {BUS("\"cro_base\": \"0700\""),
     P "buses[1].cro_base: \"0700\" is not a number (e.g. 1664 or \"0x680\")"},
    {BUS("\"cro_base\": \" 0x680\""),
     P "buses[1].cro_base: \" 0x680\" is not a number (e.g. 1664 or \"0x680\")"},
    {BUS("\"cro_base\": \"0x\""), P "buses[1].cro_base: \"0x\" is not a number (e.g. 1664 or \"0x680\")"},
    {BUS("\"cro_base\": \"+1\""), P "buses[1].cro_base: \"+1\" is not a number (e.g. 1664 or \"0x680\")"},
    {HEAD "\"buses\": [{\"name\": \"a\", \"transport\": \"slcan:/dev/t@0115200\"}]}",
     P "buses[0].transport: \"slcan:/dev/t@0115200\": \"0115200\" is not a serial speed (e.g. 115200)"},
    {HEAD "\"buses\": [{\"name\": \"a\", \"transport\": \"slcan:/dev/t@ 115200\"}]}",
     P "buses[0].transport: \"slcan:/dev/t@ 115200\": \" 115200\" is not a serial speed (e.g. 115200)"},
    {HEAD "\"retries\": 99999999999999999999999, \"buses\": []}",
     P "retries: a number this large is out of range 1..20"},
    {HEAD "\"retries\": 3e0, \"buses\": []}",
     P "retries: a number with a fraction or an exponent is not a number"},
    {HEAD "\"buses\": [{\"name\": \"a\", \"transport\": \"socketcan:c:1\"}]}",
     P "buses[0].transport: \"socketcan:c:1\": \"c:1\" is not a network interface name"},
};

static void test_strict_json(void)
{
        expect_refused(json_cases, N_ELEMENTS(json_cases));
        /* What RFC 8259 allows stays allowed: escapes, non-ASCII, CRLF, tabs, every kind of value. */
        expect_accepted(
            "{\"fleet_key_file\": \"\\/etc\\/canfleet\\/fleet.key\", \"state_dir\": "
            "\"/var/lib/\xC3\xA9t\xC3\xA9\","
            "\r\n\t\"cache_dir\": \"c \\ud83d\\ude00 \\u00e9\\n\", \"retries\": 1,"
            "\r\n\t\"buses\": [{\"name\": \"b0\", \"transport\": \"socketcan:c\", \"cro_base\": 1536,"
            " \"dto_base\": \"0X640\", \"nodes\": [ 1 , {\"station\" : 2} ]}]}\r\n");
        /* Keys that differ only after unescaping are different keys. */
        struct cf_conf *c = NULL;
        char *err = NULL;
        CU_ASSERT(cf_conf_parse("{\"x\": 1, \"x \": 2}", "/etc/x.conf", &c, &err) < 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, P "x: unknown key");
        free(err);
}

static const struct bad station_cases[] = {
    {BUS("\"nodes\": [64]"), P "buses[1].nodes[0]: 64 is out of range 1..63"},
    {BUS("\"nodes\": [1, 2, 1000]"), P "buses[1].nodes[2]: 1000 is out of range 1..63"},
    {BUS("\"nodes\": [{\"station\": 100, \"cro_id\": 1, \"dto_id\": 2}]"),
     P "buses[1].nodes[0].station: 100 is out of range 1..63"},
    {BUS("\"nodes\": [0]"), P "buses[1].nodes[0]: 0 is out of range 1..63"},
    {BUS("\"scan\": [1, 64]"), P "buses[1].scan[1]: 64 is out of range 1..63"},
    {BUS("\"scan\": [0, 5]"), P "buses[1].scan[0]: 0 is out of range 1..63"},
    {BUS("\"cro_base\": 0, \"dto_base\": 1000, \"scan\": [70, 80]"),
     P "buses[1].scan[0]: 70 is out of range 1..63"},
};

static void test_stations(void)
{
        expect_refused(station_cases, N_ELEMENTS(station_cases));
        expect_accepted(BUS("\"nodes\": [1, 63, {\"station\": 62}], \"scan\": [63, 63]"));
}

static const struct bad id_cases[] = {
    /* two nodes with one CRO id */
    {BUS("\"nodes\": [{\"station\": 1, \"cro_id\": \"0x700\", \"dto_id\": \"0x701\"}, "
         "{\"station\": 2, \"cro_id\": \"0x700\", \"dto_id\": \"0x702\"}]"),
     P "buses[1].nodes[1]: CRO id 0x700 is already the CRO id of station 1 (nodes[0])"},
    /* a CRO id that is another node's DTO id, and the other way round */
    {BUS("\"nodes\": [1, {\"station\": 2, \"cro_id\": \"0x6C1\", \"dto_id\": \"0x702\"}]"),
     P "buses[1].nodes[1]: CRO id 0x6C1 is already the DTO id of station 1 (nodes[0])"},
    {BUS("\"nodes\": [{\"station\": 2, \"cro_id\": \"0x700\", \"dto_id\": \"0x701\"}, "
         "{\"station\": 3, \"cro_id\": \"0x702\", \"dto_id\": \"0x700\"}]"),
     P "buses[1].nodes[1]: DTO id 0x700 is already the CRO id of station 2 (nodes[0])"},
    /* two answers on one id */
    {BUS("\"nodes\": [{\"station\": 2, \"cro_id\": \"0x700\", \"dto_id\": \"0x701\"}, "
         "{\"station\": 3, \"cro_id\": \"0x702\", \"dto_id\": \"0x701\"}]"),
     P "buses[1].nodes[1]: DTO id 0x701 is already the DTO id of station 2 (nodes[0])"},
    /* its own */
    {BUS("\"nodes\": [{\"station\": 2, \"cro_id\": 5, \"dto_id\": 5}]"),
     P "buses[1].nodes[0]: CRO and DTO ids are the same (0x5)"},
    /* bases closer than the scan range: station 17's CRO is station 1's DTO */
    {BUS("\"cro_base\": \"0x680\", \"dto_base\": \"0x690\""),
     P "buses[1].scan: station 17 would use CRO id 0x691 (cro_base + 17), already the DTO id of station 1 "
       "(scan [1, 63]); narrow scan or move cro_base and dto_base apart"},
    {BUS("\"cro_base\": \"0x6A0\", \"dto_base\": \"0x690\", \"scan\": [1, 20]"),
     P "buses[1].scan: station 17 would use DTO id 0x6A1 (dto_base + 17), already the CRO id of station 1 "
       "(scan [1, 20]); narrow scan or move cro_base and dto_base apart"},
    /* a scanned station's default ids are a listed node's */
    {BUS("\"nodes\": [{\"station\": 40, \"cro_id\": \"0x685\", \"dto_id\": \"0x7A0\"}]"),
     P "buses[1].scan: station 5 would use CRO id 0x685 (cro_base + 5), already the CRO id of station 40 "
       "(nodes[0]); narrow scan or change that node's ids"},
    {BUS("\"nodes\": [{\"station\": 40, \"cro_id\": \"0x790\", \"dto_id\": \"0x6C9\"}]"),
     P "buses[1].scan: station 9 would use DTO id 0x6C9 (dto_base + 9), already the DTO id of station 40 "
       "(nodes[0]); narrow scan or change that node's ids"},
    /* 11-bit ids only */
    {BUS("\"nodes\": [{\"station\": 2, \"cro_id\": 2048}]"),
     P "buses[1].nodes[0].cro_id: 2048 is out of range 0..2047"},
    {BUS("\"nodes\": [{\"station\": 2, \"dto_id\": \"0x800\"}]"),
     P "buses[1].nodes[0].dto_id: \"0x800\" is out of range 0x0..0x7FF"},
    {BUS("\"cro_base\": \"0x7D0\""), P "buses[1].scan: station 63 gives a CAN id beyond 0x7FF"},
    {BUS("\"dto_base\": \"0x7C1\", \"scan\": [1, 2], \"nodes\": [63]"),
     P "buses[1].nodes[0]: station 63 gives CAN id 0x6BF/0x800 beyond 0x7FF"},
};

static void test_can_ids(void)
{
        expect_refused(id_cases, N_ELEMENTS(id_cases));
        /* Decided: a listed node outside the scan range may use ids the range would not reach; the
         * same ids on two buses are two buses' business. */
        expect_accepted(BUS("\"scan\": [6, 63], \"nodes\": [{\"station\": 40, \"cro_id\": \"0x685\", "
                            "\"dto_id\": \"0x7A0\"}]"));
        expect_accepted(BUS("\"cro_base\": \"0x680\", \"dto_base\": \"0x690\", \"scan\": [1, 16]"));
        expect_accepted(HEAD
                        "\"buses\": [{\"name\": \"a\", \"transport\": \"socketcan:c\", \"nodes\": [1]}, "
                        "{\"name\": \"b\", \"transport\": \"socketcan:d\", \"nodes\": [1]}]}");
        /* A listed station in the scan range answers on its own ids; the defaults it would have had
         * are free for nobody else to take but are not claimed either. */
        expect_accepted(BUS("\"nodes\": [{\"station\": 5, \"cro_id\": \"0x700\", \"dto_id\": \"0x701\"}]"));
}

static char tmp[64];

static void make_tmp(void)
{
        snprintf(tmp, sizeof tmp, "/tmp/cf-test-conf-h-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmp));
}

static void rm_tmp(void)
{
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        CU_ASSERT_EQUAL(system(cmd), 0);
}

/* Two buses on transports a and b must be refused with message (NULL: accepted). */
static void two_buses(const char *a, const char *b, const char *message)
{
        char text[1024];
        snprintf(text, sizeof text,
                 HEAD
                 "\"buses\": [{\"name\": \"b0\", \"transport\": \"%s\"}, {\"name\": \"b1\", \"transport\": "
                 "\"%s\"}]}",
                 a, b);
        if (!message) {
                expect_accepted(text);
                return;
        }
        struct bad c = {text, message};
        expect_refused(&c, 1);
}

static void test_devices(void)
{
        make_tmp();
        char tty[96], byid[96], link[128], real[PATH_MAX], a[256], b[256], msg[PATH_MAX + 1024];
        snprintf(tty, sizeof tty, "%s/ttyACM0", tmp);
        FILE *f = fopen(tty, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fclose(f);
        snprintf(byid, sizeof byid, "%s/by-id", tmp);
        CU_ASSERT_EQUAL_FATAL(mkdir(byid, 0755), 0);
        snprintf(link, sizeof link, "%s/usb-CANable_123-if00", byid);
        CU_ASSERT_EQUAL_FATAL(symlink("../ttyACM0", link), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(tty, real));

        /* a by-id symlink */
        snprintf(a, sizeof a, "slcan:%s", tty);
        snprintf(b, sizeof b, "slcan:%s", link);
        snprintf(msg, sizeof msg, P "buses[1].transport: \"%s\": %s is the device of buses[0] (\"%s\")", b,
                 real, a);
        two_buses(a, b, msg);
        /* "//" and another speed */
        snprintf(b, sizeof b, "slcan:%s//ttyACM0@921600", tmp);
        snprintf(msg, sizeof msg, P "buses[1].transport: \"%s\": %s is the device of buses[0] (\"%s\")", b,
                 real, a);
        two_buses(a, b, msg);
        snprintf(b, sizeof b, "slcan:%s/by-id/../ttyACM0", tmp);
        snprintf(msg, sizeof msg, P "buses[1].transport: \"%s\": %s is the device of buses[0] (\"%s\")", b,
                 real, a);
        two_buses(a, b, msg);
        /* devices that are not there (yet): by their directory, or as written once normalised */
        two_buses("slcan:/dev/cf-no-such-tty", "slcan:/dev//./cf-no-such-tty@115200",
                  P
                  "buses[1].transport: \"slcan:/dev//./cf-no-such-tty@115200\": /dev/cf-no-such-tty is the "
                  "device of buses[0] (\"slcan:/dev/cf-no-such-tty\")");
        two_buses("slcan:/cf-no-dir/x/../tty/", "slcan:/cf-no-dir//tty",
                  P
                  "buses[1].transport: \"slcan:/cf-no-dir//tty\": /cf-no-dir/tty is the device of buses[0] "
                  "(\"slcan:/cf-no-dir/x/../tty/\")");
        /* the same interface */
        two_buses("socketcan:lo", "socketcan:lo",
                  P "buses[1].transport: \"socketcan:lo\" is already the transport of buses[0]");
        /* different devices stay different */
        snprintf(b, sizeof b, "slcan:%s/ttyACM1", tmp);
        two_buses(a, b, NULL);
        two_buses("slcan:/cf-no-dir/a/../tty", "slcan:/cf-no-dir/a/tty", NULL);
        two_buses("socketcan:lo", "socketcan:can0", NULL);
        rm_tmp();
}

static void on_alarm(int sig)
{
        (void) sig;
        static const char m[] = "\nblocked for 10 s reading a FIFO: the start would hang\n";
        (void) !write(STDERR_FILENO, m, sizeof m - 1);
        _exit(1);
}

/* Load path as the configuration and expect message; a hang is a failure, not a wait. */
static void expect_load_refused(const char *path, const char *message)
{
        struct cf_conf *c = NULL;
        char *err = NULL;
        alarm(10);
        int r = cf_conf_load(path, &c, &err);
        alarm(0);
        if (r >= 0 || !err || strcmp(err, message) != 0)
                fprintf(stderr, "\n %s\n  got      %s\n  expected %s\n", path, err ? err : "(accepted)",
                        message);
        CU_ASSERT(r < 0);
        CU_ASSERT_PTR_NULL(c);
        cf_conf_free(c);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, message);
        free(err);
}

static void test_files(void)
{
        signal(SIGALRM, on_alarm);
        make_tmp();
        char fifo[96], dir[96], big[96], sock[96], conf[96], msg[512];

        snprintf(dir, sizeof dir, "%s/dir.conf", tmp);
        CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
        snprintf(msg, sizeof msg, "%s: is a directory, not a regular file", dir);
        expect_load_refused(dir, msg);

        expect_load_refused("/dev/null", "/dev/null: is a character device, not a regular file");

        snprintf(sock, sizeof sock, "%s/sock", tmp);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
        CU_ASSERT_EQUAL_FATAL(bind(s, (struct sockaddr *) &sa, sizeof sa), 0);
        snprintf(msg, sizeof msg, "%s: is a socket, not a regular file", sock);
        expect_load_refused(sock, msg);
        close(s);

        /* 1 MiB + 1 of spaces around a valid configuration: refused for its size alone */
        snprintf(big, sizeof big, "%s/big.conf", tmp);
        FILE *f = fopen(big, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(GOOD, f);
        for (long i = (long) strlen(GOOD); i < 1024 * 1024 + 1; i++)
                fputc(' ', f);
        fclose(f);
        snprintf(msg, sizeof msg, "%s: is too large (1048577 bytes, at most 1048576)", big);
        expect_load_refused(big, msg);

        /* last, as it is the one that hangs a parser that opens before it looks */
        snprintf(fifo, sizeof fifo, "%s/fifo.conf", tmp);
        CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
        snprintf(msg, sizeof msg, "%s: is a FIFO (named pipe), not a regular file", fifo);
        expect_load_refused(fifo, msg);

        /* the key file: a FIFO or a directory named as fleet_key_file */
        snprintf(conf, sizeof conf, "%s/ok.conf", tmp);
        f = fopen(conf, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fprintf(f,
                "{\"fleet_key_file\": \"%s\", \"state_dir\": \"s\", \"cache_dir\": \"c\", \"buses\": "
                "[{\"name\": \"b0\", \"transport\": \"socketcan:c\"}]}\n",
                fifo);
        fclose(f);
        struct cf_conf *c = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL_FATAL(cf_conf_load(conf, &c, &err), 0);
        uint8_t key[32];
        alarm(10);
        CU_ASSERT(cf_conf_read_fleet_key(c, key, &err) < 0);
        alarm(0);
        snprintf(msg, sizeof msg, "%s: fleet_key_file: %s: is a FIFO (named pipe), not a regular file", conf,
                 fifo);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, msg);
        free(err);
        free(c->fleet_key_file);
        c->fleet_key_file = strdup(dir);
        err = NULL;
        CU_ASSERT(cf_conf_read_fleet_key(c, key, &err) < 0);
        snprintf(msg, sizeof msg, "%s: fleet_key_file: %s: is a directory, not a regular file", conf, dir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, msg);
        free(err);
        cf_conf_free(c);

        /* a symlink to a regular file is fine */
        char ln[160];
        snprintf(ln, sizeof ln, "%s/link.conf", tmp);
        CU_ASSERT_EQUAL_FATAL(symlink("ok.conf", ln), 0);
        c = NULL;
        err = NULL;
        CU_ASSERT_EQUAL(cf_conf_load(ln, &c, &err), 0);
        CU_ASSERT_PTR_NULL(err);
        cf_conf_free(c);
        rm_tmp();
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"strict JSON", test_strict_json},
            {"stations 1..63", test_stations},
            {"no CAN id twice on a bus", test_can_ids},
            {"one bus per device", test_devices},
            {"only regular files, never a hang", test_files},
            {NULL, NULL},
        };
        return cf_test_run("daemon-conf-hardening", tests);
}
