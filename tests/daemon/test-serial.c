/* Tests of the serial node pieces of canfleetd (docs/design.md §8): the serial bus keys of conf.c, the
 * ISP answer parsers, and the LPC ISP and AN-1160 masters on a real pty against a scripted chip: echo,
 * RESEND, ISP return codes as messages, and the packets AN-1160's own examples show. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "adi-master.h"
#include "canfleet/lpc-isp.h"
#include "cf-test.h"
#include "conf.h"
#include "lpc-isp-master.h"
#include "serial-line.h"

#define HEAD "{\"fleet_key_file\": \"k\", \"state_dir\": \"s\", \"cache_dir\": \"c\", "

/* ---- configuration ------------------------------------------------------------------------------ */

static void test_conf_serial(void)
{
        const char *t =
            HEAD "\"buses\": [{\"name\": \"lpc0\", \"transport\": \"serial:/dev/ttyUSB0@57600\", "
                 "\"protocol\": \"lpc-isp\", \"isp_entry\": \"dtr-rts\", \"crystal_khz\": 4000},"
                 "{\"name\": \"adi0\", \"transport\": \"serial:/dev/ttyUSB1\", \"protocol\": "
                 "\"adi-uart\", \"isp_entry\": {\"gpiochip\": \"gpiochip1\", \"reset\": 4, \"boot\": 5}}]}";
        struct cf_conf *c = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(t, "/etc/x.conf", &c, &err), 0);
        struct cf_bus_conf *b = &c->buses[0];
        CU_ASSERT_EQUAL(b->kind, CF_TRANSPORT_SERIAL);
        CU_ASSERT_STRING_EQUAL(b->device, "/dev/ttyUSB0");
        CU_ASSERT_EQUAL(b->baud, 57600);
        CU_ASSERT_EQUAL(b->protocol, CF_PROTOCOL_LPC_ISP);
        CU_ASSERT_EQUAL(b->isp_entry, CF_ISP_ENTRY_DTR_RTS);
        CU_ASSERT_EQUAL(b->crystal_khz, 4000);
        CU_ASSERT_EQUAL_FATAL(b->n_nodes, 1);
        CU_ASSERT_EQUAL(b->nodes[0].station, 1);
        b = &c->buses[1];
        CU_ASSERT_EQUAL(b->baud, 115200);
        CU_ASSERT_EQUAL(b->protocol, CF_PROTOCOL_ADI_UART);
        CU_ASSERT_EQUAL(b->isp_entry, CF_ISP_ENTRY_GPIO);
        CU_ASSERT_STRING_EQUAL(b->gpiochip, "/dev/gpiochip1");
        CU_ASSERT_EQUAL(b->gpio_reset, 4);
        CU_ASSERT_EQUAL(b->gpio_boot, 5);
        cf_conf_free(c);
}

static const struct {
        const char *text;
        const char *message;
} bads[] = {
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:/dev/ttyS0\"}]}",
     "x: buses[0].protocol: missing: \"lpc-isp\" or \"adi-uart\" on a serial bus"},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:/dev/ttyS0\", \"protocol\": \"ccp\"}]}",
     "x: buses[0].protocol: \"ccp\" is not \"lpc-isp\" or \"adi-uart\""},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:/dev/ttyS0\", \"protocol\": \"lpc-isp\", "
          "\"nodes\": [1]}]}",
     "x: buses[0].nodes: unknown key"},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"slcan:/dev/ttyS0\", \"protocol\": \"lpc-isp\"}]}",
     "x: buses[0].protocol: only for a serial bus (\"transport\": \"serial:DEV@BAUD\")"},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:/dev/ttyS0\", \"protocol\": \"adi-uart\", "
          "\"crystal_khz\": 12000}]}",
     "x: buses[0].crystal_khz: only for \"protocol\": \"lpc-isp\" (the ADI loader measures the baud rate)"},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:/dev/ttyS0@230400\", \"protocol\": "
          "\"adi-uart\"}]}",
     "x: buses[0].transport: \"serial:/dev/ttyS0@230400\": adi-uart loaders work up to 115200 baud"},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:/dev/ttyS0\", \"protocol\": \"lpc-isp\", "
          "\"isp_entry\": \"rts-dtr\"}]}",
     "x: buses[0].isp_entry: \"rts-dtr\" is not \"manual\", \"dtr-rts\" or {\"gpiochip\": …, \"reset\": N, "
     "\"boot\": N}"},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:/dev/ttyS0\", \"protocol\": \"lpc-isp\", "
          "\"isp_entry\": {\"gpiochip\": \"gpiochip0\", \"reset\": 3, \"boot\": 3}}]}",
     "x: buses[0].isp_entry: reset and boot are the same line (3)"},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:/dev/ttyS0\", \"protocol\": \"lpc-isp\", "
          "\"isp_entry\": {\"gpiochip\": \"gpiochip0\", \"reset\": 3}}]}",
     "x: buses[0].isp_entry.boot: missing"},
    {HEAD
     "\"buses\": [{\"name\": \"a\", \"transport\": \"slcan:/dev/ttyS7\"}, {\"name\": \"l\", \"transport\": "
     "\"serial:/dev/ttyS7\", \"protocol\": \"lpc-isp\"}]}",
     "x: buses[1].transport: \"serial:/dev/ttyS7\": /dev/ttyS7 is the device of buses[0] "
     "(\"slcan:/dev/ttyS7\")"},
    {HEAD "\"buses\": [{\"name\": \"l\", \"transport\": \"serial:\"}]}",
     "x: buses[0].transport: \"serial:\" is not \"slcan:DEV\", \"socketcan:IF\" or \"serial:DEV\""},
};

static void test_conf_serial_bad(void)
{
        for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
                struct cf_conf *c = NULL;
                char *err = NULL;
                CU_ASSERT(cf_conf_parse(bads[i].text, "x", &c, &err) < 0);
                CU_ASSERT_PTR_NOT_NULL_FATAL(err);
                if (strcmp(err, bads[i].message) != 0)
                        fprintf(stderr, "\n case %zu:\n  got      %s\n  expected %s\n", i, err,
                                bads[i].message);
                CU_ASSERT_STRING_EQUAL(err, bads[i].message);
                free(err);
        }
}

/* ---- parsers ------------------------------------------------------------------------------------ */

static void test_isp_parsers(void)
{
        CU_ASSERT_EQUAL(lpc_isp_parse_code("0"), 0);
        CU_ASSERT_EQUAL(lpc_isp_parse_code("9"), 9);
        CU_ASSERT_EQUAL(lpc_isp_parse_code("19"), 19);
        CU_ASSERT_EQUAL(lpc_isp_parse_code("20"), -EPROTO);
        CU_ASSERT_EQUAL(lpc_isp_parse_code("09"), -EPROTO);
        CU_ASSERT_EQUAL(lpc_isp_parse_code(""), -EPROTO);
        CU_ASSERT_EQUAL(lpc_isp_parse_code("OK"), -EPROTO);
        CU_ASSERT_EQUAL(lpc_isp_parse_code("1 "), -EPROTO);
        uint32_t v = 0;
        CU_ASSERT_EQUAL(lpc_isp_parse_u32("637615927", &v), 0);
        CU_ASSERT_EQUAL(v, 0x26013F37u);
        CU_ASSERT_EQUAL(lpc_isp_parse_u32("4294967295", &v), 0);
        CU_ASSERT_EQUAL(v, UINT32_MAX);
        CU_ASSERT_EQUAL(lpc_isp_parse_u32("4294967296", &v), -EPROTO);
        CU_ASSERT_EQUAL(lpc_isp_parse_u32("-1", &v), -EPROTO);
        CU_ASSERT_EQUAL(lpc_isp_parse_u32("", &v), -EPROTO);
}

/* ---- the masters against a scripted chip on a pty ----------------------------------------------- */

struct chip {
        int fd; /* the pty's master side: the chip */
        char line[8192];
        size_t len;
        uint8_t bytes[4096]; /* ADI: what came */
        size_t n_bytes;
        size_t parsed; /* ADI: bytes of whole packets already answered */
        unsigned resends_left;
        unsigned lines, checksums;
        bool echo;
        unsigned damaged_reads; /* R: groups sent with one line damaged */
        unsigned read_acks, read_resends;
        int done_r;
        bool done;
        char error[256];
        sd_event *e;
};

static void say(struct chip *c, const char *s)
{
        CU_ASSERT_EQUAL(write(c->fd, s, strlen(s)), (ssize_t) strlen(s));
}

/* R's data: 180 bytes (4 UU lines, one group) of a fixed pattern. */
static uint8_t read_data(size_t i)
{
        return (uint8_t) (i * 31 + 7);
}

static void send_read_group(struct chip *c, bool damage)
{
        uint8_t d[180];
        char line[CF_UU_LINE_MAX + 3];
        for (size_t i = 0; i < sizeof d; i++)
                d[i] = read_data(i);
        for (size_t off = 0; off < sizeof d; off += CF_UU_LINE_BYTES) {
                size_t k = cf_uu_encode_line(d + off, CF_UU_LINE_BYTES, line);
                if (damage && off == 90)
                        line[10] ^= 0x01; /* a flipped bit: the group's sum no longer matches */
                memcpy(line + k, "\r\n", 3);
                say(c, line);
        }
        char sum[24];
        snprintf(sum, sizeof sum, "%u\r\n", cf_isp_checksum(d, sizeof d));
        say(c, sum);
}

/* A small LPC ISP: enough of UM10360's dialogue for the master's paths. */
static void lpc_line(struct chip *c, const char *l)
{
        if (c->echo) {
                say(c, l);
                say(c, "\r\n");
        }
        if (strcmp(l, "Synchronized") == 0 || strcmp(l, "12000") == 0)
                say(c, "OK\r\n");
        else if (strcmp(l, "A 0") == 0) {
                c->echo = false;
                say(c, "0\r\n");
        } else if (strcmp(l, "J") == 0)
                say(c, "0\r\n637615927\r\n");
        else if (strcmp(l, "K") == 0)
                say(c, "0\r\n1\r\n4\r\n");
        else if (strcmp(l, "N") == 0)
                say(c, "0\r\n1\r\n2\r\n3\r\n4\r\n");
        else if (strncmp(l, "E ", 2) == 0)
                say(c, "9\r\n"); /* not prepared */
        else if (strcmp(l, "R 0 180") == 0) {
                say(c, "0\r\n");
                bool damage = c->damaged_reads > 0;
                if (damage)
                        c->damaged_reads--;
                send_read_group(c, damage);
        } else if (strcmp(l, "RESEND") == 0) {
                c->read_resends++;
                send_read_group(c, false);
        } else if (strcmp(l, "OK") == 0)
                c->read_acks++;
        else if (strncmp(l, "W ", 2) == 0 || strncmp(l, "P ", 2) == 0 || strncmp(l, "C ", 2) == 0 ||
                 strncmp(l, "M ", 2) == 0)
                say(c, "0\r\n");
        else if (l[0] >= '!' && l[0] <= 'M' && strlen(l) > 1 && !(l[0] >= '0' && l[0] <= '9'))
                c->lines++; /* a UU line */
        else if (l[0] >= '0' && l[0] <= '9') {
                c->checksums++;
                if (c->resends_left) {
                        c->resends_left--;
                        say(c, "RESEND\r\n");
                } else {
                        say(c, "OK\r\n");
                }
        }
}

static int on_chip(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct chip *c = userdata;
        uint8_t buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        for (ssize_t i = 0; i < n; i++) {
                if (c->n_bytes < sizeof c->bytes)
                        c->bytes[c->n_bytes++] = buf[i];
                if (buf[i] == '?' && c->len == 0) {
                        say(c, "Synchronized\r\n");
                        continue;
                }
                if (buf[i] == '\n')
                        continue;
                if (buf[i] == '\r') {
                        c->line[c->len] = 0;
                        lpc_line(c, c->line);
                        c->len = 0;
                        continue;
                }
                if (c->len + 1 < sizeof c->line)
                        c->line[c->len++] = (char) buf[i];
        }
        return 0;
}

static void lpc_cb(LpcIsp *s, int r, void *userdata)
{
        struct chip *c = userdata;
        c->done = true;
        c->done_r = r;
        snprintf(c->error, sizeof c->error, "%s", lpc_isp_error(s));
}

static void run_until_done(struct chip *c)
{
        c->done = false;
        for (int i = 0; i < 2000 && !c->done; i++)
                CU_ASSERT_FATAL(sd_event_run(c->e, 10000) >= 0);
        CU_ASSERT_FATAL(c->done);
}

static int open_pty(char *name, size_t len)
{
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        CU_ASSERT_FATAL(m >= 0);
        CU_ASSERT_FATAL(grantpt(m) == 0 && unlockpt(m) == 0);
        CU_ASSERT_FATAL(ptsname_r(m, name, len) == 0);
        struct termios t;
        tcgetattr(m, &t);
        cfmakeraw(&t);
        tcsetattr(m, TCSANOW, &t);
        return m;
}

static void test_lpc_master(void)
{
        sd_event *e = NULL;
        CU_ASSERT_FATAL(sd_event_new(&e) >= 0);
        char name[64];
        struct chip c = {.echo = true, .e = e};
        c.fd = open_pty(name, sizeof name);
        sd_event_source *src = NULL;
        CU_ASSERT_FATAL(sd_event_add_io(e, &src, c.fd, EPOLLIN, on_chip, &c) >= 0);
        SerialLine *l = NULL;
        CU_ASSERT_EQUAL_FATAL(serial_line_open(e, name, 115200, &l), 0);
        LpcIsp *s = NULL;
        CU_ASSERT_EQUAL_FATAL(lpc_isp_new(e, l, 12000, 3, 500000, &s), 0);
        lpc_isp_set_callback(s, lpc_cb, &c);

        /* the handshake with echo on: each line's echo is skipped */
        CU_ASSERT_EQUAL(lpc_isp_sync(s, false), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, 0);
        CU_ASSERT_FALSE(c.echo);

        struct lpc_isp_identity id;
        CU_ASSERT_EQUAL(lpc_isp_identify(s, &id), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, 0);
        CU_ASSERT_EQUAL(id.part_id, 0x26013F37u);
        CU_ASSERT_EQUAL(id.boot_major, 4);
        CU_ASSERT_EQUAL(id.boot_minor, 1);
        CU_ASSERT_EQUAL(id.serial[3], 4);

        /* one 1 KB block: 23 UU lines, checksums after 20 and after the last; one RESEND costs the
         * group again */
        static uint8_t block[1024];
        for (size_t i = 0; i < sizeof block; i++)
                block[i] = (uint8_t) (i * 7);
        c.resends_left = 1;
        CU_ASSERT_EQUAL(lpc_isp_program(s, 0x1000, block, sizeof block), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, 0);
        CU_ASSERT_EQUAL(c.checksums, 3);
        CU_ASSERT_EQUAL(c.lines, 20 + 20 + 3);

        /* R: a line damaged on the way back is answered RESEND, the group comes again, the data is whole */
        static uint8_t back[180];
        c.damaged_reads = 1;
        CU_ASSERT_EQUAL(lpc_isp_read(s, 0, back, sizeof back), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, 0);
        for (int i = 0; i < 50 && c.read_acks == 0; i++) /* the OK that ended it is still on its way */
                CU_ASSERT_FATAL(sd_event_run(e, 10000) >= 0);
        CU_ASSERT_EQUAL(c.read_resends, 1);
        CU_ASSERT_EQUAL(c.read_acks, 1);
        for (size_t i = 0; i < sizeof back; i++)
                if (back[i] != read_data(i)) {
                        CU_FAIL("the data read back differs");
                        break;
                }

        /* an ISP error is named and explained */
        CU_ASSERT_EQUAL(lpc_isp_erase(s, 0, 3), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, -EREMOTEIO);
        CU_ASSERT_EQUAL(lpc_isp_last_code(s), 9);
        CU_ASSERT_PTR_NOT_NULL(
            strstr(c.error, "\"E 0 3\" answered SECTOR_NOT_PREPARED_FOR_WRITE_OPERATION (9)"));

        /* a chip that stays silent */
        close(c.fd);
        src = sd_event_source_disable_unref(src);
        c.fd = -1;
        lpc_isp_free(s);
        serial_line_free(l);
        sd_event_unref(e);
}

/* ---- AN-1160: the master's packets are the application note's examples ------------------------- */

static int on_adi(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
        struct chip *c = userdata;
        uint8_t buf[512];
        ssize_t n = read(fd, buf, sizeof buf);
        for (ssize_t i = 0; i < n; i++) {
                c->bytes[c->n_bytes++] = buf[i];
                if (c->n_bytes == 1 && buf[i] == CF_ADI_SYNC) {
                        uint8_t id[CF_ADI_ID_LEN];
                        cf_adi_id_build("ADuCM360", "I10", id);
                        CU_ASSERT_EQUAL(write(fd, id, sizeof id), (ssize_t) sizeof id);
                        c->n_bytes = c->parsed = 0;
                        continue;
                }
                struct cf_adi_packet p;
                int k = cf_adi_packet_parse(c->bytes + c->parsed, c->n_bytes - c->parsed, &p);
                if (k > 0) {
                        c->parsed += (size_t) k;
                        uint8_t a = c->resends_left ? CF_ADI_NAK : CF_ADI_ACK;
                        if (c->resends_left)
                                c->resends_left--;
                        c->lines++;
                        CU_ASSERT_EQUAL(write(fd, &a, 1), 1);
                }
        }
        return 0;
}

static void adi_cb(AdiLoader *s, int r, void *userdata)
{
        struct chip *c = userdata;
        c->done = true;
        c->done_r = r;
        snprintf(c->error, sizeof c->error, "%s", adi_loader_error(s));
}

static void test_adi_master(void)
{
        sd_event *e = NULL;
        CU_ASSERT_FATAL(sd_event_new(&e) >= 0);
        char name[64];
        struct chip c = {.e = e};
        c.fd = open_pty(name, sizeof name);
        sd_event_source *src = NULL;
        CU_ASSERT_FATAL(sd_event_add_io(e, &src, c.fd, EPOLLIN, on_adi, &c) >= 0);
        SerialLine *l = NULL;
        CU_ASSERT_EQUAL_FATAL(serial_line_open(e, name, 115200, &l), 0);
        AdiLoader *s = NULL;
        CU_ASSERT_EQUAL_FATAL(adi_loader_new(e, l, 3, 500000, &s), 0);
        adi_loader_set_callback(s, adi_cb, &c);

        struct cf_adi_id id;
        CU_ASSERT_EQUAL(adi_loader_sync(s, &id, false), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, 0);
        CU_ASSERT_STRING_EQUAL(id.product, "ADuCM360");
        CU_ASSERT_STRING_EQUAL(id.version, "I10");

        /* "To erase one page at 0x00000200": 07 0E 06 45 00 00 02 00 01 B2 */
        static const uint8_t erase[] = {0x07, 0x0E, 0x06, 0x45, 0x00, 0x00, 0x02, 0x00, 0x01, 0xB2};
        c.n_bytes = c.parsed = 0;
        CU_ASSERT_EQUAL(adi_loader_erase(s, 0x200, 1), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, 0);
        CU_ASSERT_EQUAL(c.lines, 1);
        CU_ASSERT_EQUAL_FATAL(c.n_bytes, sizeof erase);
        CU_ASSERT_EQUAL(memcmp(c.bytes, erase, sizeof erase), 0);
        /* "To write 16 data bytes starting at 0x00000200", BEL'd once: the same packet twice */
        static const uint8_t data[] = {0x77, 0xFF, 0x2C, 0xB1, 0x00, 0x20, 0x00, 0xF0,
                                       0x5A, 0xFC, 0x08, 0xB1, 0x01, 0x20, 0x00, 0xE0};
        static const uint8_t write_pkt[] = {0x07, 0x0E, 0x15, 0x57, 0x00, 0x00, 0x02, 0x00, 0x77,
                                            0xFF, 0x2C, 0xB1, 0x00, 0x20, 0x00, 0xF0, 0x5A, 0xFC,
                                            0x08, 0xB1, 0x01, 0x20, 0x00, 0xE0, 0x1F};
        c.n_bytes = c.parsed = 0;
        c.lines = 0;
        c.resends_left = 1;
        CU_ASSERT_EQUAL(adi_loader_write(s, 0x200, data, sizeof data), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, 0);
        CU_ASSERT_EQUAL(c.lines, 2);
        CU_ASSERT_EQUAL_FATAL(c.n_bytes, 2 * sizeof write_pkt);
        CU_ASSERT_EQUAL(memcmp(c.bytes, write_pkt, sizeof write_pkt), 0);
        CU_ASSERT_EQUAL(memcmp(c.bytes + sizeof write_pkt, write_pkt, sizeof write_pkt), 0);
        /* BEL to every try: the write fails, named */
        c.n_bytes = c.parsed = 0;
        c.resends_left = 5;
        CU_ASSERT_EQUAL(adi_loader_write(s, 0x200, data, sizeof data), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, -EREMOTEIO);
        CU_ASSERT_STRING_EQUAL(c.error, "write at 0x00200: BEL after 3 tries");
        c.resends_left = 0;
        /* "To perform a reset": 07 0E 05 52 00 00 00 01 A8 */
        static const uint8_t reset[] = {0x07, 0x0E, 0x05, 0x52, 0x00, 0x00, 0x00, 0x01, 0xA8};
        c.n_bytes = c.parsed = 0;
        CU_ASSERT_EQUAL(adi_loader_reset(s), 0);
        run_until_done(&c);
        CU_ASSERT_EQUAL(c.done_r, 0);
        CU_ASSERT_EQUAL_FATAL(c.n_bytes, sizeof reset);
        CU_ASSERT_EQUAL(memcmp(c.bytes, reset, sizeof reset), 0);

        src = sd_event_source_disable_unref(src);
        close(c.fd);
        adi_loader_free(s);
        serial_line_free(l);
        sd_event_unref(e);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"serial bus keys", test_conf_serial},
            {"serial bus keys: every error names the key", test_conf_serial_bad},
            {"ISP answer parsers", test_isp_parsers},
            {"LPC ISP master: echo, identity, RESEND, return codes", test_lpc_master},
            {"AN-1160 master: the application note's packets, BEL", test_adi_master},
            {NULL, NULL},
        };
        return cf_test_run("daemon-serial", tests);
}
