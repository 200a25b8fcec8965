/* Tests of the daemon's SLCAN transport: which adapter lines reach CCP, and the transport over a real pty
 * (the line codec itself is tested in tests/common/test-slcan.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "can-transport.h"
#include "cf-test.h"
#include "conf.h"
#include "slcan.h"

static int rx_line(const char *line, struct cf_can_frame *f)
{
        return cf_slcan_rx_line(line, strlen(line), f);
}

static void test_ccp_frames(void)
{
        struct cf_can_frame f;
        memset(&f, 0, sizeof f);
        CU_ASSERT_EQUAL(rx_line("t6C12FF00", &f), 1);
        CU_ASSERT_EQUAL(f.id, 0x6C1u);
        CU_ASSERT_EQUAL(f.dlc, 2);
        CU_ASSERT_EQUAL(f.data[0], 0xFF);
        CU_ASSERT_EQUAL(f.data[1], 0x00);
        memset(&f, 0, sizeof f);
        CU_ASSERT_EQUAL(rx_line("t6C12FF001A2B", &f), 1); /* the adapter's timestamp is ignored */
        CU_ASSERT_EQUAL(f.id, 0x6C1u);
        CU_ASSERT_EQUAL(f.data[0], 0xFF);
        CU_ASSERT(!f.ext && !f.rtr);
}

static void test_not_frames(void)
{
        static const char *lines[] = {
            "",
            "z",
            "Z",
            "V0101",
            "v1013",
            "NCF01",
            "F00",
            "T000006C12FF00", /* extended: not CCP */
            "T000006C12FF001A2B",
            "r6C18", /* remote */
            "R000006C18",
        };
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
                struct cf_can_frame f = {.id = 0x42};
                CU_ASSERT_EQUAL(rx_line(lines[i], &f), 0);
                CU_ASSERT_EQUAL(f.id, 0x42u);
        }
}

static void test_malformed(void)
{
        struct cf_can_frame f = {.id = 0x42};
        CU_ASSERT_EQUAL(rx_line("t6C1", &f), -EINVAL);
        CU_ASSERT_EQUAL(rx_line("t6C12FF0", &f), -EINVAL);
        CU_ASSERT_EQUAL(rx_line("q", &f), -EINVAL);
        CU_ASSERT_EQUAL(rx_line("zz", &f), -EINVAL);
        CU_ASSERT_EQUAL(rx_line("T2000000000", &f), -EINVAL);
        CU_ASSERT_EQUAL(rx_line("t8000", &f), -ERANGE);
        CU_ASSERT_EQUAL(f.id, 0x42u);
}

/* The line reader alone: every way a line can end, and what is left for the next one. */
static enum cf_slcan_rx feed(struct cf_slcan_reader *r, const char *bytes, size_t n, size_t *len)
{
        enum cf_slcan_rx k = CF_SLCAN_RX_MORE;
        for (size_t i = 0; i < n; i++) {
                k = cf_slcan_reader_feed(r, bytes[i], len);
                if (i + 1 < n)
                        CU_ASSERT_EQUAL(k, CF_SLCAN_RX_MORE);
        }
        return k;
}

static void test_reader(void)
{
        struct cf_slcan_reader r = {0};
        size_t len = 99;
        char longline[CF_SLCAN_RX_LINE_MAX + 1];
        memset(longline, 'A', sizeof longline);

        CU_ASSERT_EQUAL(feed(&r, "t6C12FF00\r", 10, &len), CF_SLCAN_RX_LINE);
        CU_ASSERT_EQUAL(len, 9u);
        CU_ASSERT_EQUAL(memcmp(r.line, "t6C12FF00", 9), 0);
        CU_ASSERT_EQUAL(feed(&r, "\r", 1, &len), CF_SLCAN_RX_LINE); /* an "ok" answer */
        CU_ASSERT_EQUAL(len, 0u);
        CU_ASSERT_EQUAL(feed(&r, "t6\n", 3, &len), CF_SLCAN_RX_MORE);
        CU_ASSERT_EQUAL(feed(&r, "C1\r", 3, &len), CF_SLCAN_RX_LINE); /* '\n' is not part of it */
        CU_ASSERT_EQUAL(len, 4u);
        CU_ASSERT_EQUAL(memcmp(r.line, "t6C1", 4), 0);
        CU_ASSERT_EQUAL(feed(&r, "t6C1\a", 5, &len), CF_SLCAN_RX_BEL); /* BEL drops the line */
        CU_ASSERT_EQUAL(feed(&r, "Z\r", 2, &len), CF_SLCAN_RX_LINE);
        CU_ASSERT_EQUAL(len, 1u);

        /* exactly the longest line, then one byte more */
        CU_ASSERT_EQUAL(feed(&r, longline, CF_SLCAN_RX_LINE_MAX, &len), CF_SLCAN_RX_MORE);
        CU_ASSERT_EQUAL(feed(&r, "\r", 1, &len), CF_SLCAN_RX_LINE);
        CU_ASSERT_EQUAL(len, (size_t) CF_SLCAN_RX_LINE_MAX);
        static const char *const ends[] = {"\r", "\a", "\n\r", "\n\a"};
        for (size_t i = 0; i < 4; i++) {
                CU_ASSERT_EQUAL(feed(&r, longline, sizeof longline, &len), CF_SLCAN_RX_MORE);
                CU_ASSERT_EQUAL(feed(&r, ends[i], strlen(ends[i]), &len), CF_SLCAN_RX_OVERLONG);
                CU_ASSERT(!r.overflow);
                CU_ASSERT_EQUAL(feed(&r, "t6C3101\r", 8, &len), CF_SLCAN_RX_LINE);
                CU_ASSERT_EQUAL(len, 7u);
                CU_ASSERT_EQUAL(memcmp(r.line, "t6C3101", 7), 0);
        }
}

/* The transport over a pty, the test playing the adapter on the master side. */
struct rx {
        struct cf_can_frame frames[8];
        size_t n;
        enum cf_link_state link;
        unsigned link_changes;
};

static void on_frame(CanTransport *t, const struct cf_can_frame *f, void *userdata)
{
        struct rx *rx = userdata;
        if (rx->n < 8)
                rx->frames[rx->n] = *f;
        rx->n++;
}

static void on_link(CanTransport *t, enum cf_link_state s, void *userdata)
{
        struct rx *rx = userdata;
        rx->link = s;
        rx->link_changes++;
}

/* Read exactly n bytes from the adapter's side; the time-out only bounds a failing test. */
static void expect_out(int master, const char *want)
{
        size_t n = strlen(want), got = 0;
        char buf[128] = {0};
        CU_ASSERT_FATAL(n < sizeof buf);
        while (got < n) {
                struct pollfd p = {.fd = master, .events = POLLIN};
                if (poll(&p, 1, 5000) <= 0)
                        break;
                ssize_t r = read(master, buf + got, n - got);
                if (r <= 0)
                        break;
                got += (size_t) r;
        }
        if (got != n || memcmp(buf, want, n) != 0)
                fprintf(stderr, "adapter read \"%.*s\", wanted \"%s\"\n", (int) got, buf, want);
        CU_ASSERT_EQUAL(got, n);
        CU_ASSERT_EQUAL(memcmp(buf, want, n), 0);
}

static void run_until(sd_event *e, const size_t *count, size_t want)
{
        for (int i = 0; i < 100 && *count < want; i++)
                CU_ASSERT_FATAL(sd_event_run(e, 100000) >= 0);
}

static void test_transport_pty(void)
{
        int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        CU_ASSERT_FATAL(master >= 0);
        CU_ASSERT_FATAL(grantpt(master) == 0 && unlockpt(master) == 0);
        char slave[128];
        CU_ASSERT_FATAL(ptsname_r(master, slave, sizeof slave) == 0);
        struct termios tio;
        CU_ASSERT_FATAL(tcgetattr(master, &tio) == 0);
        cfmakeraw(&tio);
        CU_ASSERT_FATAL(tcsetattr(master, TCSANOW, &tio) == 0);

        char transport[160];
        snprintf(transport, sizeof transport, "slcan:%s", slave);
        struct cf_bus_conf b = {
            .name = "bus0",
            .transport = transport,
            .kind = CF_TRANSPORT_SLCAN,
            .device = slave,
            .baud = 115200,
            .bitrate = 250000,
        };
        sd_event *e = NULL;
        CU_ASSERT_FATAL(sd_event_new(&e) >= 0);
        struct rx rx = {.link = CF_LINK_ERROR};
        CanTransport *t = NULL;
        CU_ASSERT_FATAL(can_transport_new(e, &b, NULL, 0, on_frame, on_link, &rx, &t) >= 0);
        CU_ASSERT_EQUAL(t->state, CF_LINK_UP);

        /* the adapter is closed, set to S5 (250k) and opened */
        expect_out(master, "C\rS5\rO\r");

        struct cf_can_frame f = {.id = 0x681, .dlc = 2, .data = {0xAB, 0xCD}};
        CU_ASSERT_EQUAL(can_transport_send(t, &f), 0);
        expect_out(master, "t6812ABCD\r");
        f = (struct cf_can_frame){.id = 0x681, .dlc = 8, .data = {1, 2, 3, 4, 5, 6, 7, 8}};
        CU_ASSERT_EQUAL(can_transport_send(t, &f), 0);
        expect_out(master, "t68180102030405060708\r");
        /* only standard data frames go out */
        struct cf_can_frame ext = {.id = 0x681, .ext = true, .dlc = 0};
        struct cf_can_frame rtr = {.id = 0x681, .rtr = true, .dlc = 0};
        CU_ASSERT_EQUAL(can_transport_send(t, &ext), -EINVAL);
        CU_ASSERT_EQUAL(can_transport_send(t, &rtr), -EINVAL);
        CU_ASSERT_EQUAL(t->frames_tx, 2u);

        /* only the standard data frames come in; '\n' and BEL do not upset the line reader */
        static const char in[] = "z\r\nZ\rT000006C12FF00\rr6C18\rt6C12FF001A2B\rt8000\rgarbage\r\a"
                                 "t6C22AA\nBB\r" /* split by '\n': still one line */
                                 "t6C3101\r";
        CU_ASSERT_FATAL(write(master, in, sizeof in - 1) == (ssize_t) sizeof in - 1);
        run_until(e, &rx.n, 3);
        CU_ASSERT_EQUAL_FATAL(rx.n, 3u);
        CU_ASSERT_EQUAL(rx.frames[0].id, 0x6C1u);
        CU_ASSERT_EQUAL(rx.frames[0].dlc, 2);
        CU_ASSERT_EQUAL(rx.frames[0].data[0], 0xFF);
        CU_ASSERT_EQUAL(rx.frames[1].id, 0x6C2u);
        CU_ASSERT_EQUAL(rx.frames[1].data[0], 0xAA);
        CU_ASSERT_EQUAL(rx.frames[1].data[1], 0xBB);
        CU_ASSERT_EQUAL(rx.frames[2].id, 0x6C3u);
        CU_ASSERT_EQUAL(rx.frames[2].dlc, 1);
        for (size_t i = 0; i < 3; i++)
                CU_ASSERT(!rx.frames[i].ext && !rx.frames[i].rtr);
        CU_ASSERT_EQUAL(t->frames_rx, 3u);

        /* An overlong line is dropped up to its end, a BEL as well as a '\r', and the next line
         * is read: a BEL after garbage once left the reader dropping the good line after it. */
        char junk[200];
        memset(junk, 'A', sizeof junk);
        for (int k = 0; k < 2; k++) {
                CU_ASSERT_FATAL(write(master, junk, sizeof junk) == (ssize_t) sizeof junk);
                static const char after[2][16] = {"\at6C4100\r", "\rt6C5100\r"};
                CU_ASSERT_FATAL(write(master, after[k], strlen(after[k])) == (ssize_t) strlen(after[k]));
                run_until(e, &rx.n, 4u + (size_t) k);
                CU_ASSERT_EQUAL_FATAL(rx.n, 4u + (size_t) k);
                CU_ASSERT_EQUAL(rx.frames[3 + k].id, k == 0 ? 0x6C4u : 0x6C5u);
                CU_ASSERT_EQUAL(rx.frames[3 + k].dlc, 1);
        }

        /* the adapter goes away: the link goes down, sending says so */
        close(master);
        unsigned changes = rx.link_changes;
        for (int i = 0; i < 100 && rx.link_changes == changes; i++)
                CU_ASSERT_FATAL(sd_event_run(e, 100000) >= 0);
        CU_ASSERT(rx.link_changes > changes);
        CU_ASSERT_EQUAL(rx.link, CF_LINK_DOWN);
        CU_ASSERT_EQUAL(can_transport_send(t, &f), -ENETDOWN);

        can_transport_free(t);
        sd_event_unref(e);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"standard data frames reach CCP", test_ccp_frames},
            {"acks, answers and other frames carry nothing", test_not_frames},
            {"malformed lines refused", test_malformed},
            {"the line reader ends every line, overlong ones too", test_reader},
            {"transport over a pty", test_transport_pty},
            {NULL, NULL},
        };
        return cf_test_run("daemon-slcan", tests);
}
