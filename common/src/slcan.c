/* Lawicel SLCAN frame lines: strict parsing (every malformed line is refused) and formatting. */
#include <errno.h>

#include "canfleet/slcan.h"

static const char hex_upper[] = "0123456789ABCDEF";

static const uint32_t bitrates[] = {10000, 20000, 50000, 100000, 125000, 250000, 500000, 800000, 1000000};

int cf_hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int parse_hex(const char *s, size_t n, uint32_t *out)
{
        uint32_t v = 0;
        for (size_t i = 0; i < n; i++) {
                int d = cf_hex_digit(s[i]);
                if (d < 0)
                        return -EINVAL;
                v = v << 4 | (uint32_t) d;
        }
        *out = v;
        return 0;
}

int cf_slcan_parse(const char *line, size_t len, struct cf_can_frame *f, int32_t *timestamp)
{
        if (len < 1)
                return -EINVAL;
        char kind = line[0];
        if (kind != 't' && kind != 'T' && kind != 'r' && kind != 'R')
                return -EINVAL;
        bool ext = kind == 'T' || kind == 'R';
        bool rtr = kind == 'r' || kind == 'R';

        size_t idlen = ext ? 8 : 3;
        uint32_t id, v;
        if (len < 1 + idlen + 1 || parse_hex(line + 1, idlen, &id) < 0)
                return -EINVAL;
        char d = line[1 + idlen];
        if (d < '0' || d > '8')
                return -EINVAL;
        uint8_t dlc = (uint8_t) (d - '0');

        size_t ndata = rtr ? 0 : dlc;
        size_t end = 1 + idlen + 1 + 2 * ndata;
        int32_t ts = CF_SLCAN_NO_TIMESTAMP;
        if (len == end + 4) {
                if (parse_hex(line + end, 4, &v) < 0)
                        return -EINVAL;
                ts = (int32_t) v;
        } else if (len != end) {
                return -EINVAL;
        }

        struct cf_can_frame fr = {.id = id, .ext = ext, .rtr = rtr, .dlc = dlc};
        for (size_t i = 0; i < ndata; i++) {
                if (parse_hex(line + 1 + idlen + 1 + 2 * i, 2, &v) < 0)
                        return -EINVAL;
                fr.data[i] = (uint8_t) v;
        }
        /* Only a line that is right in every other way is out of range: the caller can tell a
         * garbled line from a frame it cannot carry. */
        if (id > (ext ? CF_CAN_EFF_MAX : CF_CAN_SFF_MAX))
                return -ERANGE;

        *f = fr;
        if (timestamp)
                *timestamp = ts;
        return 0;
}

static size_t put_hex(char *out, size_t pos, uint32_t v, unsigned digits)
{
        while (digits-- > 0)
                out[pos++] = hex_upper[(v >> (4 * digits)) & 0xFu];
        return pos;
}

size_t cf_slcan_format(const struct cf_can_frame *f, int32_t timestamp, char out[CF_SLCAN_LINE_MAX])
{
        size_t pos = 0;
        uint8_t dlc = f->dlc > 8 ? 8 : f->dlc;

        out[pos++] = f->rtr ? (f->ext ? 'R' : 'r') : (f->ext ? 'T' : 't');
        if (f->ext)
                pos = put_hex(out, pos, f->id & CF_CAN_EFF_MAX, 8);
        else
                pos = put_hex(out, pos, f->id & CF_CAN_SFF_MAX, 3);
        out[pos++] = (char) ('0' + dlc);
        if (!f->rtr)
                for (unsigned i = 0; i < dlc; i++)
                        pos = put_hex(out, pos, f->data[i], 2);
        if (timestamp >= 0)
                pos = put_hex(out, pos, (uint32_t) timestamp & 0xFFFFu, 4);
        out[pos++] = '\r';
        out[pos] = '\0';
        return pos;
}

char cf_slcan_bitrate_code(uint32_t bitrate)
{
        for (size_t i = 0; i < sizeof(bitrates) / sizeof(bitrates[0]); i++)
                if (bitrates[i] == bitrate)
                        return (char) ('0' + i);
        return 0;
}

uint32_t cf_slcan_bitrate(char code)
{
        if (code < '0' || code > '8')
                return 0;
        return bitrates[code - '0'];
}
