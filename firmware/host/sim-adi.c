/* The ADuCM36x serial download loader (AN-1160) as a protocol of the serial chip simulator. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/adi-uart.h"
#include "serial-sim.h"
#include "sim-node.h"

/*
 * What the loader does, and so the simulator:
 *  - after reset it waits for BS (0x08), ignoring anything else, and answers the 24-byte ID packet;
 *    later BS bytes are ordinary bytes (the loader autobauds once per reset).
 *  - it hunts for 0x07 0x0E, reads the count and the rest, and answers ACK or BEL: BEL for a bad
 *    checksum, an unknown command, an address outside the 128 KB, a wrong data length, a failed
 *    verify. A packet left incomplete for PACKET_GAP_US is dropped without an answer (a UART loader
 *    that lost bytes would otherwise swallow the host's retry into the broken packet).
 *  - E: the page holding the address and the following pages (count in the data byte); address 0
 *    with 0 pages: mass erase. Each page erase (and a mass erase) is one flash operation.
 *  - W: programs as NOR flash: new bits are ANDed in (the loader does not check for erased flash).
 *    One flash operation per packet.
 *  - V: step 1 (0x80000000) keeps the expected last word; step 2 (a page address) compares the LFSR
 *    of the page's first 508 bytes and the last word: ACK when both match.
 *  - R (value 1): ACK, then the application starts (the entry pin is taken as released).
 */

#define PACKET_GAP_US 100000u

enum adi_state {
        ST_WAIT_SYNC,
        ST_PACKETS,
};

struct adi {
        struct serial_chip *c;
        enum adi_state state;
        uint8_t buf[CF_ADI_PACKET_MAX];
        size_t len;
        uint64_t last_byte_us;
        bool have_last_word;
        uint32_t last_word;
        uint64_t packets, naks;
};

static void ack(struct adi *a, bool ok, const char *why)
{
        uint8_t b = ok ? CF_ADI_ACK : CF_ADI_NAK;
        if (!ok) {
                a->naks++;
                serial_chip_error(a->c, "BEL: %s", why);
        }
        serial_chip_send(a->c, &b, 1);
}

static void do_erase(struct adi *a, const struct cf_adi_packet *p)
{
        struct serial_chip *c = a->c;
        if (p->n != 1) {
                ack(a, false, "erase packet without one page-count byte");
                return;
        }
        uint32_t pages = c->flash_size / CF_ADI_PAGE_SIZE;
        if (p->value == 0 && p->data[0] == 0) {
                double part = serial_chip_flash_op(c);
                memset(c->flash, 0xFF, (size_t) (c->flash_size * part));
                if (c->off)
                        return;
                serial_chip_log(c, "mass erase");
                ack(a, true, NULL);
                return;
        }
        uint32_t first = p->value / CF_ADI_PAGE_SIZE;
        if (p->value >= c->flash_size || p->data[0] == 0 || first + p->data[0] > pages) {
                ack(a, false, "erase outside the flash");
                return;
        }
        for (uint32_t pg = first; pg < first + p->data[0]; pg++) {
                double part = serial_chip_flash_op(c);
                memset(c->flash + pg * CF_ADI_PAGE_SIZE, 0xFF, (size_t) (CF_ADI_PAGE_SIZE * part));
                if (c->off)
                        return;
        }
        ack(a, true, NULL);
}

static void do_write(struct adi *a, const struct cf_adi_packet *p)
{
        struct serial_chip *c = a->c;
        if ((uint64_t) p->value + p->n > c->flash_size) {
                ack(a, false, "write outside the flash");
                return;
        }
        double part = serial_chip_flash_op(c);
        size_t k = (size_t) ((double) p->n * part);
        for (size_t i = 0; i < k; i++)
                c->flash[p->value + i] &= p->data[i];
        if (c->off)
                return;
        ack(a, true, NULL);
}

static void do_verify(struct adi *a, const struct cf_adi_packet *p)
{
        struct serial_chip *c = a->c;
        if (p->n != 4) {
                ack(a, false, "verify packet without 4 data bytes");
                return;
        }
        uint32_t w = (uint32_t) p->data[0] | (uint32_t) p->data[1] << 8 | (uint32_t) p->data[2] << 16 |
                     (uint32_t) p->data[3] << 24;
        if (p->value == CF_ADI_VERIFY_LAST_WORD) {
                a->last_word = w;
                a->have_last_word = true;
                ack(a, true, NULL);
                return;
        }
        if (p->value % CF_ADI_PAGE_SIZE || p->value >= c->flash_size) {
                ack(a, false, "verify address is not a page of the flash");
                return;
        }
        if (!a->have_last_word) {
                ack(a, false, "verify step 2 without step 1");
                return;
        }
        a->have_last_word = false;
        const uint8_t *page = c->flash + p->value;
        uint32_t last = (uint32_t) page[508] | (uint32_t) page[509] << 8 | (uint32_t) page[510] << 16 |
                        (uint32_t) page[511] << 24;
        uint32_t sig = cf_adi_page_signature(page);
        if (sig != (w & 0xFFFFFFu) || last != a->last_word) {
                char why[96];
                snprintf(why, sizeof(why), "verify of page 0x%05" PRIX32 " failed (signature %06" PRIX32 ")",
                         p->value, sig);
                ack(a, false, why);
                return;
        }
        ack(a, true, NULL);
}

static void packet(struct adi *a, const struct cf_adi_packet *p)
{
        switch (p->cmd) {
        case CF_ADI_CMD_ERASE:
                do_erase(a, p);
                break;
        case CF_ADI_CMD_WRITE:
                do_write(a, p);
                break;
        case CF_ADI_CMD_VERIFY:
                do_verify(a, p);
                break;
        case CF_ADI_CMD_RESET:
                if (p->value != 1 || p->n != 0) {
                        ack(a, false, "remote reset with a value other than 1");
                        break;
                }
                ack(a, true, NULL);
                serial_chip_run_app(a->c, 0);
                return;
        default:
                ack(a, false, "unknown command");
                break;
        }
        if (!a->c->off)
                serial_chip_command(a->c);
}

static void adi_input(void *st, const uint8_t *data, size_t n)
{
        struct adi *a = st;
        struct serial_chip *c = a->c;
        for (size_t i = 0; i < n && !c->off && !c->running; i++) {
                if (a->state == ST_WAIT_SYNC) {
                        if (data[i] == CF_ADI_SYNC) {
                                uint8_t id[CF_ADI_ID_LEN];
                                cf_adi_id_build(c->part_name, "I10", id);
                                serial_chip_send(c, id, sizeof(id));
                                a->state = ST_PACKETS;
                                c->synchronized = true;
                                serial_chip_log(c, "synchronized: ID packet sent");
                                serial_chip_changed(c);
                        }
                        continue;
                }
                a->last_byte_us = sim_now_us();
                a->buf[a->len++] = data[i];
                for (;;) {
                        struct cf_adi_packet p;
                        int r = cf_adi_packet_parse(a->buf, a->len, &p);
                        if (r == 0)
                                break;
                        if (r == -EINVAL) {
                                /* not a packet start: hunt for the next 0x07 */
                                size_t k = 1;
                                while (k < a->len && a->buf[k] != CF_ADI_START0)
                                        k++;
                                memmove(a->buf, a->buf + k, a->len - k);
                                a->len -= k;
                                if (a->len == 0)
                                        break;
                                continue;
                        }
                        size_t used = r > 0 ? (size_t) r : (size_t) a->buf[2] + 4;
                        memmove(a->buf, a->buf + used, a->len - used);
                        a->len -= used;
                        a->packets++;
                        if (r < 0) {
                                c->bad_checksums++;
                                ack(a, false, "bad checksum");
                                if (!c->off)
                                        serial_chip_command(c);
                        } else {
                                packet(a, &p);
                        }
                        if (c->off || c->running)
                                return;
                }
        }
}

static uint64_t adi_deadline(void *st)
{
        struct adi *a = st;
        return a->len > 0 ? a->last_byte_us + PACKET_GAP_US : UINT64_MAX;
}

static void adi_timer(void *st, uint64_t now_us)
{
        struct adi *a = st;
        if (a->len > 0 && now_us >= a->last_byte_us + PACKET_GAP_US) {
                serial_chip_error(a->c, "incomplete packet (%zu bytes) dropped after %u ms of silence",
                                  a->len, PACKET_GAP_US / 1000u);
                a->len = 0;
        }
}

static void adi_reset(void *st)
{
        struct adi *a = st;
        a->state = ST_WAIT_SYNC;
        a->len = 0;
        a->have_last_word = false;
}

static void *adi_create(struct serial_chip *c)
{
        struct adi *a = calloc(1, sizeof(*a));
        if (a)
                a->c = c;
        return a;
}

static void adi_destroy(void *st)
{
        free(st);
}

static void adi_state_json(void *st, char *buf, size_t len)
{
        struct adi *a = st;
        snprintf(buf, len, ", \"packets\": %" PRIu64 ", \"naks\": %" PRIu64, a->packets, a->naks);
}

const struct serial_proto serial_proto_adi = {
    .name = "adi-uart",
    .create = adi_create,
    .destroy = adi_destroy,
    .reset = adi_reset,
    .input = adi_input,
    .deadline = adi_deadline,
    .timer = adi_timer,
    .state_json = adi_state_json,
};
