/* Exact bit length of a CAN 2.0 frame (stuffing depends on the CRC, so the CRC-15 is computed too). */
#include "sim-frame.h"

struct bitbuf {
        uint8_t bits[160];
        unsigned n;
};

static void put_bits(struct bitbuf *b, uint32_t value, unsigned count)
{
        while (count-- > 0)
                b->bits[b->n++] = (uint8_t) ((value >> count) & 1u);
}

/* CAN CRC-15: polynomial x^15+x^14+x^10+x^8+x^7+x^4+x^3+1 (0x4599), register starting at 0. */
static uint16_t crc15(const struct bitbuf *b)
{
        uint16_t crc = 0;
        for (unsigned i = 0; i < b->n; i++) {
                unsigned nxt = b->bits[i] ^ ((crc >> 14) & 1u);
                crc = (uint16_t) ((crc << 1) & 0x7FFFu);
                if (nxt)
                        crc ^= 0x4599u;
        }
        return crc;
}

unsigned sim_frame_bits(const struct cf_can_frame *f)
{
        struct bitbuf b = {.n = 0};
        unsigned dlc = f->dlc > 8 ? 8 : f->dlc;
        unsigned ndata = f->rtr ? 0 : dlc;

        put_bits(&b, 0, 1); /* SOF, dominant */
        if (f->ext) {
                put_bits(&b, f->id >> 18, 11);
                put_bits(&b, 1, 1); /* SRR */
                put_bits(&b, 1, 1); /* IDE */
                put_bits(&b, f->id & 0x3FFFFu, 18);
                put_bits(&b, f->rtr ? 1 : 0, 1);
                put_bits(&b, 0, 2); /* r1, r0 */
        } else {
                put_bits(&b, f->id, 11);
                put_bits(&b, f->rtr ? 1 : 0, 1);
                put_bits(&b, 0, 1); /* IDE */
                put_bits(&b, 0, 1); /* r0 */
        }
        put_bits(&b, f->dlc, 4);
        for (unsigned i = 0; i < ndata; i++)
                put_bits(&b, f->data[i], 8);
        put_bits(&b, crc15(&b), 15);

        unsigned stuff = 0, run = 0;
        uint8_t last = 2;
        for (unsigned i = 0; i < b.n; i++) {
                if (b.bits[i] == last) {
                        run++;
                } else {
                        last = b.bits[i];
                        run = 1;
                }
                if (run == 5) {
                        stuff++;
                        last = (uint8_t) !last; /* the stuff bit starts the next run */
                        run = 1;
                }
        }
        return b.n + stuff + 1 /* CRC delimiter */ + 2 /* ACK slot, delimiter */ + 7 /* EOF */ +
               3 /* intermission */;
}

uint64_t sim_frame_time_ns(const struct cf_can_frame *f, uint32_t bitrate)
{
        if (bitrate == 0)
                return 0;
        return ((uint64_t) sim_frame_bits(f) * 1000000000u + bitrate - 1) / bitrate;
}
