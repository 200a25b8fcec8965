/* The AN-1160 loader master: one packet in flight, ACK goes on, BEL and silence send it again. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi-master.h"

/* An erase of 255 pages takes a while on the chip (about 20 ms a page). */
#define ERASE_TIMEOUT_US 8000000u
/* BS tries: the loader may still be coming out of reset */
#define SYNC_TRIES 8u

enum op {
        OP_NONE,
        OP_SYNC,
        OP_PACKET, /* one packet (E, W, R) */
        OP_VERIFY, /* two packets */
};

struct AdiLoader {
        sd_event *event;
        SerialLine *line;
        unsigned retries;
        uint64_t timeout_us;
        adi_loader_done_fn done;
        void *userdata;
        sd_event_source *timer;

        enum op op;
        unsigned stage, tries, bels;
        bool maybe_synced; /* sync: an earlier session may have left the loader synchronised */
        char what[32];
        uint8_t pkt[CF_ADI_PACKET_MAX];
        size_t pkt_len;
        uint64_t pkt_timeout;
        uint8_t pkt2[CF_ADI_PACKET_MAX]; /* verify: the second packet */
        size_t pkt2_len;
        uint8_t id_buf[CF_ADI_ID_LEN];
        size_t id_len;
        struct cf_adi_id *id;
        char error[256];
};

static int on_timeout(sd_event_source *es, uint64_t usec, void *userdata);

static int arm(AdiLoader *s, uint64_t us)
{
        uint64_t now;
        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (!s->timer)
                return sd_event_add_time(s->event, &s->timer, CLOCK_MONOTONIC, now + us, 1000, on_timeout,
                                         s);
        sd_event_source_set_time(s->timer, now + us);
        return sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

static void finish(AdiLoader *s, int r)
{
        if (s->timer)
                sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        s->op = OP_NONE;
        if (r == 0)
                s->error[0] = 0;
        if (s->done)
                s->done(s, r, s->userdata);
}

__attribute__((format(printf, 3, 4))) static void fail(AdiLoader *s, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->error, sizeof s->error, fmt, ap);
        va_end(ap);
        finish(s, r);
}

static void send_bytes(AdiLoader *s, const uint8_t *p, size_t n, uint64_t us)
{
        int r = serial_line_write(s->line, p, n);
        if (r < 0) {
                fail(s, -EIO, "cannot write to the line: %s", strerror(-r));
                return;
        }
        uint64_t line_us = (uint64_t) n * 10u * 1000000u / serial_line_baud(s->line);
        (void) arm(s, us + line_us);
}

static void send_current(AdiLoader *s)
{
        if (s->op == OP_VERIFY && s->stage == 1)
                send_bytes(s, s->pkt2, s->pkt2_len, s->pkt_timeout);
        else
                send_bytes(s, s->pkt, s->pkt_len, s->pkt_timeout);
}

/* BEL or silence: the same packet again while tries are left. A loader that did not take a packet
 * (bad checksum) has done nothing with it, so sending it again is safe; a write that was taken but
 * whose ACK was lost is written again with the same bytes, which the page verify then confirms. */
static void again(AdiLoader *s, int r, const char *why)
{
        if (++s->tries >= s->retries) {
                fail(s, r, "%s: %s after %u tries", s->what, why, s->tries);
                return;
        }
        send_current(s);
}

static void on_rx(SerialLine *l, const uint8_t *data, size_t n, void *userdata)
{
        AdiLoader *s = userdata;
        for (size_t i = 0; i < n; i++) {
                uint8_t c = data[i];
                switch (s->op) {
                case OP_NONE:
                        break; /* stray bytes (the application after R) */
                case OP_SYNC:
                        if (s->stage == 1) {
                                /* the ping of a loader that may be synchronised already */
                                if (c == CF_ADI_ACK) {
                                        finish(s, 1);
                                        return;
                                }
                                break;
                        }
                        s->id_buf[s->id_len++] = c;
                        if (s->id_len < CF_ADI_ID_LEN)
                                break;
                        if (cf_adi_id_parse(s->id_buf, s->id_len, s->id) < 0) {
                                fail(s, -EPROTO,
                                     "the ID packet after BS is not one (%02X %02X ... %02X %02X)",
                                     s->id_buf[0], s->id_buf[1], s->id_buf[22], s->id_buf[23]);
                                return;
                        }
                        finish(s, 0);
                        return;
                case OP_PACKET:
                case OP_VERIFY:
                        if (c == CF_ADI_ACK) {
                                if (s->op != OP_VERIFY)
                                        s->tries = 0; /* a verify's tries count over both its packets */
                                if (s->op == OP_VERIFY && s->stage == 0) {
                                        s->stage = 1;
                                        send_current(s);
                                        break;
                                }
                                finish(s, 0);
                                return;
                        }
                        if (c == CF_ADI_NAK) {
                                s->bels++;
                                if (s->op == OP_VERIFY && s->stage == 1) {
                                        /* AN-1160: BEL to the signature is a page that differs. A flipped
                                         * byte in the packet is told apart by asking once more. */
                                        if (++s->tries < 2) {
                                                s->stage = 0;
                                                send_current(s);
                                                break;
                                        }
                                        fail(s, -EREMOTEIO, "%s: the page's signature differs (BEL)",
                                             s->what);
                                        return;
                                }
                                again(s, -EREMOTEIO, "BEL");
                                break;
                        }
                        /* anything else is noise on the line: wait for the ACK/BEL or the time-out */
                        break;
                }
        }
}

static int on_timeout(sd_event_source *es, uint64_t usec, void *userdata)
{
        AdiLoader *s = userdata;
        if (s->op == OP_SYNC) {
                if (++s->tries >= SYNC_TRIES) {
                        fail(s, -ETIMEDOUT,
                             "no ID packet after BS (is the chip in its loader? see isp_entry)");
                        return 0;
                }
                s->id_len = 0;
                if (s->maybe_synced && s->stage == 0 && s->tries == 1) {
                        /* A loader synchronised by an earlier session sends no second ID packet: a
                         * packet that changes nothing (verify step 1) is answered ACK by it. Only
                         * then: to a loader measuring its first character nothing but BS is sent. */
                        static const uint8_t d[4] = {0xFF, 0xFF, 0xFF, 0xFF};
                        s->stage = 1;
                        s->pkt_len =
                            cf_adi_packet_build(CF_ADI_CMD_VERIFY, CF_ADI_VERIFY_LAST_WORD, d, 4, s->pkt);
                        send_bytes(s, s->pkt, s->pkt_len, s->timeout_us);
                        return 0;
                }
                s->stage = 0;
                uint8_t bs = CF_ADI_SYNC;
                send_bytes(s, &bs, 1, s->timeout_us);
                return 0;
        }
        if (s->op != OP_NONE)
                again(s, -ETIMEDOUT, "no ACK or BEL");
        return 0;
}

static int begin(AdiLoader *s, enum op op, const char *what)
{
        if (s->op != OP_NONE)
                return -EBUSY;
        s->op = op;
        s->stage = 0;
        s->tries = 0;
        s->error[0] = 0;
        snprintf(s->what, sizeof s->what, "%s", what);
        s->pkt_timeout = s->timeout_us;
        return 0;
}

int adi_loader_sync(AdiLoader *s, struct cf_adi_id *id, bool maybe_synced)
{
        int r = begin(s, OP_SYNC, "sync");
        if (r < 0)
                return r;
        s->maybe_synced = maybe_synced;
        s->id = id;
        s->id_len = 0;
        uint8_t bs = CF_ADI_SYNC;
        send_bytes(s, &bs, 1, s->timeout_us);
        return 0;
}

static int packet(AdiLoader *s, const char *what, uint8_t cmd, uint32_t value, const uint8_t *data, size_t n)
{
        int r = begin(s, OP_PACKET, what);
        if (r < 0)
                return r;
        s->pkt_len = cf_adi_packet_build(cmd, value, data, n, s->pkt);
        if (s->pkt_len == 0) {
                s->op = OP_NONE;
                return -EINVAL;
        }
        return 0;
}

int adi_loader_erase(AdiLoader *s, uint32_t addr, unsigned pages)
{
        if (pages < 1 || pages > ADI_ERASE_PAGES_MAX)
                return -EINVAL; /* 0 would be a mass erase */
        char what[32];
        snprintf(what, sizeof what, "erase at 0x%05" PRIX32, addr);
        uint8_t p = (uint8_t) pages;
        int r = packet(s, what, CF_ADI_CMD_ERASE, addr, &p, 1);
        if (r < 0)
                return r;
        s->pkt_timeout = ERASE_TIMEOUT_US;
        send_current(s);
        return 0;
}

int adi_loader_write(AdiLoader *s, uint32_t addr, const uint8_t *data, size_t n)
{
        char what[32];
        snprintf(what, sizeof what, "write at 0x%05" PRIX32, addr);
        int r = packet(s, what, CF_ADI_CMD_WRITE, addr, data, n);
        if (r < 0)
                return r;
        send_current(s);
        return 0;
}

int adi_loader_verify_page(AdiLoader *s, uint32_t addr, const uint8_t page[CF_ADI_PAGE_SIZE])
{
        char what[32];
        snprintf(what, sizeof what, "verify of page 0x%05" PRIX32, addr);
        int r = begin(s, OP_VERIFY, what);
        if (r < 0)
                return r;
        s->pkt_len = cf_adi_packet_build(CF_ADI_CMD_VERIFY, CF_ADI_VERIFY_LAST_WORD,
                                         page + CF_ADI_PAGE_SIZE - 4, 4, s->pkt);
        uint32_t sig = cf_adi_page_signature(page);
        uint8_t d[4] = {(uint8_t) sig, (uint8_t) (sig >> 8), (uint8_t) (sig >> 16), 0};
        s->pkt2_len = cf_adi_packet_build(CF_ADI_CMD_VERIFY, addr, d, 4, s->pkt2);
        send_current(s);
        return 0;
}

int adi_loader_reset(AdiLoader *s)
{
        int r = packet(s, "remote reset", CF_ADI_CMD_RESET, 1, NULL, 0);
        if (r < 0)
                return r;
        send_current(s);
        return 0;
}

int adi_loader_new(sd_event *e, SerialLine *line, unsigned retries, uint64_t timeout_us, AdiLoader **ret)
{
        AdiLoader *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->line = line;
        s->retries = retries ? retries : 1;
        s->timeout_us = timeout_us;
        serial_line_set_rx(line, on_rx, s);
        *ret = s;
        return 0;
}

AdiLoader *adi_loader_free(AdiLoader *s)
{
        if (!s)
                return NULL;
        serial_line_set_rx(s->line, NULL, NULL);
        sd_event_source_disable_unref(s->timer);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void adi_loader_set_callback(AdiLoader *s, adi_loader_done_fn done, void *userdata)
{
        s->done = done;
        s->userdata = userdata;
}

const char *adi_loader_error(const AdiLoader *s)
{
        return s->error;
}

unsigned adi_loader_bels(const AdiLoader *s)
{
        return s->bels;
}
