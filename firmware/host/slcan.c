/* Lawicel SLCAN frame lines: strict parsing (every malformed line is refused) and formatting. */
#include <errno.h>

#include "slcan.h"

static int hexval(char c)
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
                int d = hexval(s[i]);
                if (d < 0)
                        return -EINVAL;
                v = v << 4 | (uint32_t) d;
        }
        *out = v;
        return 0;
}

int slcan_parse_frame(const char *line, size_t len, struct sim_frame *f)
{
        if (len < 1)
                return -EINVAL;
        char kind = line[0];
        bool ext = kind == 'T' || kind == 'R';
        bool rtr = kind == 'r' || kind == 'R';
        if (kind != 't' && kind != 'T' && kind != 'r' && kind != 'R')
                return -EINVAL;

        size_t idlen = ext ? 8 : 3;
        if (len < 1 + idlen + 1)
                return -EINVAL;
        uint32_t id, dlc;
        if (parse_hex(line + 1, idlen, &id) < 0)
                return -EINVAL;
        if (line[1 + idlen] < '0' || line[1 + idlen] > '8')
                return -EINVAL;
        dlc = (uint32_t) (line[1 + idlen] - '0');
        size_t ndata = rtr ? 0 : dlc;
        if (len != 1 + idlen + 1 + 2 * ndata)
                return -EINVAL;
        if (id > (ext ? SIM_CAN_EFF_MAX : SIM_CAN_SFF_MAX))
                return -ERANGE;

        *f = (struct sim_frame){.id = id, .ext = ext, .rtr = rtr, .dlc = (uint8_t) dlc};
        for (size_t i = 0; i < ndata; i++) {
                uint32_t b;
                if (parse_hex(line + 1 + idlen + 1 + 2 * i, 2, &b) < 0)
                        return -EINVAL;
                f->data[i] = (uint8_t) b;
        }
        return 0;
}

static void put_hex(char *out, size_t *pos, uint32_t v, unsigned digits)
{
        static const char hex[] = "0123456789ABCDEF";
        while (digits-- > 0)
                out[(*pos)++] = hex[(v >> (4 * digits)) & 0xFu];
}

size_t slcan_format_frame(const struct sim_frame *f, bool timestamp, uint16_t ms, char *out)
{
        size_t pos = 0;
        uint8_t dlc = f->dlc > 8 ? 8 : f->dlc;
        out[pos++] = f->rtr ? (f->ext ? 'R' : 'r') : (f->ext ? 'T' : 't');
        put_hex(out, &pos, f->id, f->ext ? 8 : 3);
        out[pos++] = (char) ('0' + dlc);
        if (!f->rtr)
                for (unsigned i = 0; i < dlc; i++)
                        put_hex(out, &pos, f->data[i], 2);
        if (timestamp)
                put_hex(out, &pos, ms, 4);
        out[pos++] = '\r';
        return pos;
}

uint32_t slcan_bitrate_of(char code)
{
        static const uint32_t rates[] = {10000,  20000,  50000,  100000, 125000,
                                         250000, 500000, 800000, 1000000};
        if (code < '0' || code > '8')
                return 0;
        return rates[code - '0'];
}
