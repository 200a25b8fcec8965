/* AN-1160 codecs: the loader's packets, its ID packet and its 24-bit LFSR page signature. */
#include <errno.h>

#include "canfleet/adi-uart.h"

size_t cf_adi_packet_build(uint8_t cmd, uint32_t value, const uint8_t *data, size_t n, uint8_t *out)
{
        if (n > CF_ADI_DATA_MAX)
                return 0;
        size_t o = 0;
        out[o++] = CF_ADI_START0;
        out[o++] = CF_ADI_START1;
        out[o++] = (uint8_t) (5 + n);
        out[o++] = cmd;
        for (int k = 3; k >= 0; k--)
                out[o++] = (uint8_t) (value >> (8 * k));
        for (size_t i = 0; i < n; i++)
                out[o++] = data[i];
        uint8_t sum = 0;
        for (size_t i = 2; i < o; i++)
                sum = (uint8_t) (sum + out[i]);
        out[o++] = (uint8_t) (0u - sum);
        return o;
}

int cf_adi_packet_parse(const uint8_t *in, size_t len, struct cf_adi_packet *p)
{
        if (len >= 1 && in[0] != CF_ADI_START0)
                return -EINVAL;
        if (len >= 2 && in[1] != CF_ADI_START1)
                return -EINVAL;
        if (len < 3)
                return 0;
        size_t count = in[2];
        if (count < 5)
                return -EINVAL;
        size_t total = count + 4;
        if (len < total)
                return 0;
        uint8_t sum = 0;
        for (size_t i = 2; i < total; i++)
                sum = (uint8_t) (sum + in[i]);
        if (sum != 0)
                return -EBADMSG;
        p->cmd = in[3];
        p->value = (uint32_t) in[4] << 24 | (uint32_t) in[5] << 16 | (uint32_t) in[6] << 8 | in[7];
        p->n = count - 5;
        for (size_t i = 0; i < p->n; i++)
                p->data[i] = in[8 + i];
        return (int) total;
}

/*
 * AN-1160's CRC24_D32 is a table of XOR equations: new bit k is the parity of some data bits D and
 * some old bits C. Each row here lists exactly the bits of the application note's equation for
 * NewCRC[k] (data mask, old-LFSR mask), so the result is the note's, whatever polynomial it implies.
 */
#define B(n)    (1u << (n))
#define R(a, b) ((uint32_t) (((1ull << ((b) + 1)) - 1) & ~((1ull << (a)) - 1))) /* bits a..b */
static const struct {
        uint32_t d, c;
} crc24_rows[24] = {
    /*  0 */ {R(23, 31) | R(0, 17), R(0, 9) | R(15, 23)},
    /*  1 */ {B(23) | B(18) | B(0), B(10) | B(15)},
    /*  2 */ {B(24) | B(19) | B(1), B(11) | B(16)},
    /*  3 */ {B(25) | B(20) | B(2), B(12) | B(17)},
    /*  4 */ {B(26) | B(21) | B(3), B(13) | B(18)},
    /*  5 */ {R(28, 31) | R(22, 26) | R(5, 17) | R(0, 3), R(0, 9) | R(14, 18) | R(20, 23)},
    /*  6 */ {B(28) | B(18) | B(5) | B(0), B(10) | B(20)},
    /*  7 */ {B(29) | B(19) | B(6) | B(1), B(11) | B(21)},
    /*  8 */ {B(30) | B(20) | B(7) | B(2), B(12) | B(22)},
    /*  9 */ {B(31) | B(21) | B(8) | B(3), B(0) | B(13) | B(23)},
    /* 10 */ {B(22) | B(9) | B(4), B(1) | B(14)},
    /* 11 */ {B(23) | B(10) | B(5), B(2) | B(15)},
    /* 12 */ {B(24) | B(11) | B(6), B(3) | B(16)},
    /* 13 */ {B(25) | B(12) | B(7), B(4) | B(17)},
    /* 14 */ {B(26) | B(13) | B(8), B(0) | B(5) | B(18)},
    /* 15 */ {B(27) | B(14) | B(9), B(1) | B(6) | B(19)},
    /* 16 */ {B(28) | B(15) | B(10), B(2) | B(7) | B(20)},
    /* 17 */ {B(29) | B(16) | B(11), B(3) | B(8) | B(21)},
    /* 18 */ {B(30) | B(17) | B(12), B(4) | B(9) | B(22)},
    /* 19 */ {B(31) | B(18) | B(13), B(5) | B(10) | B(23)},
    /* 20 */ {B(19) | B(14), B(6) | B(11)},
    /* 21 */ {B(20) | B(15), B(7) | B(12)},
    /* 22 */ {B(21) | B(16), B(8) | B(13)},
    /* 23 */ {R(22, 31) | R(0, 16), R(0, 8) | R(14, 23)},
};
#undef B
#undef R

static uint32_t parity(uint32_t v)
{
        v ^= v >> 16;
        v ^= v >> 8;
        v ^= v >> 4;
        v ^= v >> 2;
        v ^= v >> 1;
        return v & 1u;
}

static uint32_t crc24_d32(uint32_t crc, uint32_t data)
{
        uint32_t out = 0;
        for (int k = 0; k < 24; k++)
                out |= (parity(data & crc24_rows[k].d) ^ parity(crc & crc24_rows[k].c)) << k;
        return out;
}

uint32_t cf_adi_lfsr_signature(const uint8_t *page, size_t n)
{
        uint32_t lfsr = 0xFFFFFFu;
        for (size_t i = 0; i + 4 <= n; i += 4) {
                uint32_t w = (uint32_t) page[i] | (uint32_t) page[i + 1] << 8 |
                             (uint32_t) page[i + 2] << 16 | (uint32_t) page[i + 3] << 24;
                lfsr = crc24_d32(lfsr, w);
        }
        return lfsr & 0xFFFFFFu;
}

uint32_t cf_adi_page_signature(const uint8_t page[CF_ADI_PAGE_SIZE])
{
        return cf_adi_lfsr_signature(page, CF_ADI_PAGE_SIZE - 4);
}

static void pad_copy(uint8_t *out, const char *s, size_t width)
{
        size_t i = 0;
        for (; s && s[i] && i < width; i++)
                out[i] = (uint8_t) s[i];
        for (; i < width; i++)
                out[i] = ' ';
}

void cf_adi_id_build(const char *product, const char *version, uint8_t out[CF_ADI_ID_LEN])
{
        pad_copy(out, product, 15);
        pad_copy(out + 15, version, 3);
        for (int i = 18; i < 22; i++)
                out[i] = 0;
        out[22] = '\n';
        out[23] = '\r';
}

/* Copy a printable field, dropping trailing spaces and NULs; -EINVAL for anything else. */
static int take_field(const uint8_t *in, size_t width, char *out)
{
        size_t end = width;
        while (end > 0 && (in[end - 1] == ' ' || in[end - 1] == 0))
                end--;
        for (size_t i = 0; i < end; i++) {
                if (in[i] < 0x20 || in[i] > 0x7E)
                        return -EINVAL;
                out[i] = (char) in[i];
        }
        out[end] = '\0';
        return (int) end;
}

int cf_adi_id_parse(const uint8_t *in, size_t len, struct cf_adi_id *id)
{
        struct cf_adi_id t;
        if (len != CF_ADI_ID_LEN || in[22] != '\n' || in[23] != '\r')
                return -EINVAL;
        if (take_field(in, 15, t.product) <= 0 || take_field(in + 15, 3, t.version) < 0)
                return -EINVAL;
        for (int i = 0; i < 4; i++)
                t.reserved[i] = in[18 + i];
        *id = t;
        return 0;
}
