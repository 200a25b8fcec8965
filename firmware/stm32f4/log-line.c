/* Bounded line formatting for the firmware log (no printf on the node: it would cost kilobytes). */
#include "log-line.h"

static void put(struct cf_line *l, char c)
{
        if (l->n < CF_LINE_MAX)
                l->buf[l->n++] = c;
        l->buf[l->n] = '\0';
}

struct cf_line *cf_line_init(struct cf_line *l)
{
        l->n = 0;
        l->buf[0] = '\0';
        return l;
}

struct cf_line *cf_line_str(struct cf_line *l, const char *s)
{
        while (*s)
                put(l, *s++);
        return l;
}

struct cf_line *cf_line_dec(struct cf_line *l, uint32_t v)
{
        char tmp[10];
        unsigned n = 0;
        do {
                tmp[n++] = (char) ('0' + v % 10);
                v /= 10;
        } while (v);
        while (n)
                put(l, tmp[--n]);
        return l;
}

struct cf_line *cf_line_int(struct cf_line *l, int32_t v)
{
        if (v < 0) {
                put(l, '-');
                return cf_line_dec(l, 0u - (uint32_t) v);
        }
        return cf_line_dec(l, (uint32_t) v);
}

struct cf_line *cf_line_hex(struct cf_line *l, uint32_t v, unsigned digits)
{
        if (digits == 0 || digits > 8)
                digits = 8;
        for (unsigned i = digits; i-- > 0;)
                put(l, "0123456789ABCDEF"[(v >> (4 * i)) & 0xFu]);
        return l;
}

struct cf_line *cf_line_version(struct cf_line *l, unsigned major, unsigned minor, unsigned patch)
{
        cf_line_dec(l, major);
        put(l, '.');
        cf_line_dec(l, minor);
        put(l, '.');
        return cf_line_dec(l, patch);
}
