/* RFC 8259, strictly: a recursive-descent checker that builds nothing and says where the text goes wrong. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json-strict.h"

struct key {
        const char *name; /* unescaped; owned when own */
        size_t len;
        size_t pos; /* offset of the opening quote in the text */
        bool own;
};

struct parser {
        const unsigned char *s;
        size_t len, pos;
        unsigned depth;
        struct cf_json_error *e;
        bool failed;
        bool oom;
};

static void where(const struct parser *p, size_t pos, unsigned *line, unsigned *column)
{
        unsigned l = 1, c = 1;
        for (size_t i = 0; i < pos && i < p->len; i++) {
                if (p->s[i] == '\n') {
                        l++;
                        c = 1;
                } else if ((p->s[i] & 0xC0) !=
                           0x80) { /* continuation bytes belong to the character before */
                        c++;
                }
        }
        *line = l;
        *column = c;
}

__attribute__((format(printf, 3, 4))) static int fail_at(struct parser *p, size_t pos, const char *fmt, ...)
{
        if (p->failed)
                return -EBADMSG;
        p->failed = true;
        where(p, pos, &p->e->line, &p->e->column);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->e->message, sizeof p->e->message, fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

static int peek(const struct parser *p)
{
        return p->pos < p->len ? p->s[p->pos] : -1;
}

static void skip_ws(struct parser *p)
{
        while (p->pos < p->len &&
               (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
                p->pos++;
}

/* Length of the valid UTF-8 sequence at s[0, n) (Unicode Table 3-7: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0; *cp gets the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
        unsigned char c = s[0];
        size_t need;
        uint32_t v;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
                *cp = c;
                return 1;
        }
        if (c >= 0xC2 && c <= 0xDF) {
                need = 1;
                v = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
                need = 2;
                v = c & 0x0F;
                if (c == 0xE0)
                        lo = 0xA0;
                else if (c == 0xED)
                        hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
                need = 3;
                v = c & 0x07;
                if (c == 0xF0)
                        lo = 0x90;
                else if (c == 0xF4)
                        hi = 0x8F;
        } else {
                return 0;
        }
        if (n < need + 1)
                return 0;
        for (size_t i = 1; i <= need; i++) {
                unsigned char b = s[i];
                if (i == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80)
                        return 0;
                v = (v << 6) | (b & 0x3F);
        }
        *cp = v;
        return need + 1;
}

/* An error for the character at pos where `expected` should be, with a message for the usual slips. */
static int unexpected(struct parser *p, const char *expected)
{
        size_t at = p->pos;
        if (at >= p->len)
                return fail_at(p, at, "the text ends where %s should be", expected);
        unsigned char c = p->s[at];
        if (c == '/' || c == '#')
                return fail_at(p, at, "comments are not JSON");
        if (c == '\'')
                return fail_at(p, at, "single quotes: JSON strings take double quotes");
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') {
                size_t n = 0;
                while (at + n < p->len && n < 40 &&
                       ((p->s[at + n] >= 'A' && p->s[at + n] <= 'Z') ||
                        (p->s[at + n] >= 'a' && p->s[at + n] <= 'z') ||
                        (p->s[at + n] >= '0' && p->s[at + n] <= '9') || p->s[at + n] == '_'))
                        n++;
                const char *w = (const char *) p->s + at;
                if ((n == 3 && strncmp(w, "NaN", 3) == 0) || (n == 8 && strncmp(w, "Infinity", 8) == 0) ||
                    (n == 3 && strncasecmp(w, "nan", 3) == 0) || (n == 3 && strncasecmp(w, "inf", 3) == 0) ||
                    (n == 8 && strncasecmp(w, "infinity", 8) == 0))
                        return fail_at(p, at, "NaN and Infinity are not JSON numbers");
                if ((n == 4 && (strncasecmp(w, "true", 4) == 0 || strncasecmp(w, "null", 4) == 0)) ||
                    (n == 5 && strncasecmp(w, "false", 5) == 0))
                        return fail_at(p, at, "\"%.*s\": JSON's literals are lowercase (true, false, null)",
                                       (int) n, w);
                return fail_at(p, at, "\"%.*s\" without quotes where %s should be", (int) n, w, expected);
        }
        if (c == 0)
                return fail_at(p, at, "a NUL byte where %s should be", expected);
        if (c < 0x20 || c == 0x7F)
                return fail_at(p, at, "control character U+%04X where %s should be", c, expected);
        if (c >= 0x80) {
                uint32_t cp;
                if (!utf8_seq(p->s + at, p->len - at, &cp))
                        return fail_at(p, at, "invalid UTF-8 (byte 0x%02X)", c);
                return fail_at(p, at, "character U+%04X where %s should be", (unsigned) cp, expected);
        }
        return fail_at(p, at, "'%c' where %s should be", c, expected);
}

static int hex4(const struct parser *p, size_t at, uint32_t *v)
{
        if (at + 4 > p->len)
                return -1;
        uint32_t r = 0;
        for (size_t i = 0; i < 4; i++) {
                unsigned char c = p->s[at + i];
                r <<= 4;
                if (c >= '0' && c <= '9')
                        r |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        r |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        r |= (uint32_t) (c - 'A' + 10);
                else
                        return -1;
        }
        *v = r;
        return 0;
}

static size_t utf8_put(char *out, uint32_t cp)
{
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xC0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xE0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char) (0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char) (0xF0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char) (0x80 | (cp & 0x3F));
        return 4;
}

/* A string at p->pos (the opening quote). With k, the unescaped text is handed back for the
 * duplicate-key check: a pointer into the text when it has no escape, a copy otherwise. */
static int parse_string(struct parser *p, struct key *k)
{
        size_t start = p->pos++;
        bool escaped = false;
        for (;;) {
                if (p->pos >= p->len)
                        return fail_at(p, start, "string not closed (no '\"' before the end of the text)");
                unsigned char c = p->s[p->pos];
                if (c == '"')
                        break;
                if (c < 0x20)
                        return fail_at(p, p->pos,
                                       "control character U+%04X inside a string (write it escaped)", c);
                if (c == '\\') {
                        escaped = true;
                        if (p->pos + 1 >= p->len)
                                return fail_at(p, p->pos,
                                               "string not closed (no '\"' before the end of the text)");
                        unsigned char x = p->s[p->pos + 1];
                        if (strchr("\"\\/bfnrt", x) && x) {
                                p->pos += 2;
                                continue;
                        }
                        if (x != 'u')
                                return fail_at(p, p->pos, "\\%c is not a JSON escape",
                                               x >= 0x20 && x < 0x7F ? x : '?');
                        uint32_t u;
                        if (hex4(p, p->pos + 2, &u) < 0)
                                return fail_at(p, p->pos, "\\u needs four hexadecimal digits");
                        if (u == 0)
                                return fail_at(p, p->pos, "\\u0000 (a NUL character) inside a string");
                        if (u >= 0xDC00 && u <= 0xDFFF)
                                return fail_at(
                                    p, p->pos,
                                    "\\u%04X is the second half of a surrogate pair without the first",
                                    (unsigned) u);
                        if (u >= 0xD800 && u <= 0xDBFF) {
                                uint32_t lo;
                                if (p->pos + 12 > p->len || p->s[p->pos + 6] != '\\' ||
                                    p->s[p->pos + 7] != 'u' || hex4(p, p->pos + 8, &lo) < 0 || lo < 0xDC00 ||
                                    lo > 0xDFFF)
                                        return fail_at(
                                            p, p->pos,
                                            "\\u%04X is half of a surrogate pair without the second",
                                            (unsigned) u);
                                p->pos += 12;
                        } else {
                                p->pos += 6;
                        }
                        continue;
                }
                if (c >= 0x80) {
                        uint32_t cp;
                        size_t n = utf8_seq(p->s + p->pos, p->len - p->pos, &cp);
                        if (!n)
                                return fail_at(p, p->pos, "invalid UTF-8 (byte 0x%02X)", c);
                        p->pos += n;
                        continue;
                }
                p->pos++;
        }
        size_t end = p->pos++; /* the closing quote */
        if (!k)
                return 0;
        k->pos = start;
        k->own = false;
        if (!escaped) {
                k->name = (const char *) p->s + start + 1;
                k->len = end - start - 1;
                return 0;
        }
        /* Unescaped text is never longer than the escaped one. */
        char *out = malloc(end - start);
        if (!out) {
                p->oom = true;
                return fail_at(p, start, "out of memory");
        }
        size_t n = 0;
        for (size_t i = start + 1; i < end;) {
                unsigned char c = p->s[i];
                if (c != '\\') {
                        out[n++] = (char) c;
                        i++;
                        continue;
                }
                unsigned char x = p->s[i + 1];
                if (x != 'u') {
                        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
                        out[n++] = to[strchr(from, x) - from];
                        i += 2;
                        continue;
                }
                uint32_t u, lo;
                hex4(p, i + 2, &u);
                i += 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                        hex4(p, i + 2, &lo);
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                }
                n += utf8_put(out + n, u);
        }
        k->name = out;
        k->len = n;
        k->own = true;
        return 0;
}

static bool is_digit(int c)
{
        return c >= '0' && c <= '9';
}

static int parse_number(struct parser *p)
{
        size_t start = p->pos;
        if (peek(p) == '-') {
                p->pos++;
                if (!is_digit(peek(p))) {
                        if (peek(p) == ' ' || peek(p) == '\t')
                                return fail_at(p, start, "a space inside a number");
                        return unexpected(p, "a digit after '-'");
                }
        }
        if (peek(p) == '0') {
                p->pos++;
                if (is_digit(peek(p))) {
                        size_t e = p->pos;
                        while (is_digit(e < p->len ? p->s[e] : -1) && e - start < 24)
                                e++;
                        return fail_at(p, start,
                                       "number with a leading zero (\"%.*s\"): JSON has no octal numbers",
                                       (int) (e - start), (const char *) p->s + start);
                }
                if (peek(p) == 'x' || peek(p) == 'X')
                        return fail_at(p, start,
                                       "hexadecimal numbers are not JSON (a \"0x...\" string is, where the "
                                       "key takes one)");
        } else {
                while (is_digit(peek(p)))
                        p->pos++;
        }
        if (peek(p) == '.') {
                p->pos++;
                if (!is_digit(peek(p)))
                        return unexpected(p, "a digit after '.'");
                while (is_digit(peek(p)))
                        p->pos++;
        }
        if (peek(p) == 'e' || peek(p) == 'E') {
                p->pos++;
                if (peek(p) == '+' || peek(p) == '-')
                        p->pos++;
                if (!is_digit(peek(p)))
                        return unexpected(p, "a digit in the exponent");
                while (is_digit(peek(p)))
                        p->pos++;
        }
        int c = peek(p);
        if (c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '_' || (c >= 'a' && c <= 'z') ||
            (c >= 'A' && c <= 'Z'))
                return fail_at(p, p->pos, "'%c' inside a number", c);
        return 0;
}

static int parse_literal(struct parser *p, const char *word)
{
        size_t n = strlen(word);
        if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
                return unexpected(p, "a value");
        p->pos += n;
        int c = peek(p);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_') {
                p->pos -= n;
                return unexpected(p, "a value");
        }
        return 0;
}

static int parse_value(struct parser *p);

/* After a member or element: ',' or the closing bracket; a second number right after a number is
 * most likely one number written with a space in it. */
static int after_item(struct parser *p, bool was_number, char close, const char *expected)
{
        skip_ws(p);
        int c = peek(p);
        if (c == ',' || c == close)
                return 0;
        if (was_number && (is_digit(c) || c == '-'))
                return fail_at(p, p->pos, "a space inside a number, or a missing ','");
        return unexpected(p, expected);
}

static int parse_array(struct parser *p)
{
        p->pos++; /* [ */
        skip_ws(p);
        if (peek(p) == ']') {
                p->pos++;
                return 0;
        }
        for (;;) {
                skip_ws(p);
                bool number = peek(p) == '-' || is_digit(peek(p));
                int r = parse_value(p);
                if (r < 0)
                        return r;
                r = after_item(p, number, ']', "',' or ']'");
                if (r < 0)
                        return r;
                if (p->s[p->pos++] == ']')
                        return 0;
                size_t comma = p->pos - 1;
                skip_ws(p);
                if (peek(p) == ']')
                        return fail_at(p, comma, "trailing comma before ']'");
        }
}

static int key_cmp(const void *a, const void *b)
{
        const struct key *x = a, *y = b;
        size_t n = x->len < y->len ? x->len : y->len;
        int c = memcmp(x->name, y->name, n);
        if (c)
                return c;
        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The earliest key that repeats one before it. Sorting keeps this O(n log n) for huge objects. */
static int check_duplicates(struct parser *p, struct key *keys, size_t n)
{
        if (n < 2)
                return 0;
        qsort(keys, n, sizeof *keys, key_cmp);
        const struct key *dup = NULL, *first = NULL;
        for (size_t i = 1; i < n; i++)
                if (keys[i].len == keys[i - 1].len &&
                    memcmp(keys[i].name, keys[i - 1].name, keys[i].len) == 0 &&
                    (!dup || keys[i].pos < dup->pos)) {
                        dup = &keys[i];
                        size_t j = i - 1;
                        while (j > 0 && keys[j - 1].len == keys[i].len &&
                               memcmp(keys[j - 1].name, keys[i].name, keys[i].len) == 0)
                                j--;
                        first = &keys[j];
                }
        if (!dup)
                return 0;
        unsigned l, c;
        where(p, first->pos, &l, &c);
        bool printable = dup->len <= 40;
        for (size_t i = 0; printable && i < dup->len; i++)
                printable =
                    (unsigned char) dup->name[i] >= 0x20 && dup->name[i] != '"' && dup->name[i] != '\\';
        if (printable)
                return fail_at(p, dup->pos, "key \"%.*s\" appears twice in this object (first at %u:%u)",
                               (int) dup->len, dup->name, l, c);
        return fail_at(p, dup->pos, "this key appears twice in this object (first at %u:%u)", l, c);
}

static int parse_object(struct parser *p)
{
        struct key *keys = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        p->pos++; /* { */
        skip_ws(p);
        if (peek(p) == '}') {
                p->pos++;
                return 0;
        }
        for (;;) {
                skip_ws(p);
                if (peek(p) != '"') {
                        r = unexpected(p, "a key in double quotes");
                        goto out;
                }
                if (n == cap) {
                        size_t nc = cap ? cap * 2 : 8;
                        struct key *nk = realloc(keys, nc * sizeof *nk);
                        if (!nk) {
                                p->oom = true;
                                r = fail_at(p, p->pos, "out of memory");
                                goto out;
                        }
                        keys = nk;
                        cap = nc;
                }
                r = parse_string(p, &keys[n]);
                if (r < 0)
                        goto out;
                n++;
                skip_ws(p);
                if (peek(p) != ':') {
                        r = unexpected(p, "':'");
                        goto out;
                }
                p->pos++;
                skip_ws(p);
                bool number = peek(p) == '-' || is_digit(peek(p));
                r = parse_value(p);
                if (r < 0)
                        goto out;
                r = after_item(p, number, '}', "',' or '}'");
                if (r < 0)
                        goto out;
                if (p->s[p->pos++] == '}')
                        break;
                size_t comma = p->pos - 1;
                skip_ws(p);
                if (peek(p) == '}') {
                        r = fail_at(p, comma, "trailing comma before '}'");
                        goto out;
                }
        }
        r = check_duplicates(p, keys, n);
out:
        for (size_t i = 0; i < n; i++)
                if (keys[i].own)
                        free((char *) keys[i].name);
        free(keys);
        return r;
}

static int parse_value(struct parser *p)
{
        int c = peek(p);
        int r;
        switch (c) {
        case '{':
        case '[':
                if (p->depth >= CF_JSON_MAX_DEPTH)
                        return fail_at(p, p->pos, "nested more than %d arrays and objects deep",
                                       CF_JSON_MAX_DEPTH);
                p->depth++;
                r = c == '{' ? parse_object(p) : parse_array(p);
                p->depth--;
                return r;
        case '"':
                return parse_string(p, NULL);
        case 't':
                return parse_literal(p, "true");
        case 'f':
                return parse_literal(p, "false");
        case 'n':
                return parse_literal(p, "null");
        case '+':
                return fail_at(p, p->pos, "a '+' before a number is not JSON");
        case '.':
                return fail_at(p, p->pos, "a number starting with '.' is not JSON (write 0.)");
        default:
                if (c == '-' || is_digit(c)) {
                        if (c == '-' && p->pos + 1 < p->len && p->s[p->pos + 1] == 'I')
                                return fail_at(p, p->pos, "NaN and Infinity are not JSON numbers");
                        return parse_number(p);
                }
                return unexpected(p, "a value");
        }
}

int cf_json_check(const char *text, size_t len, struct cf_json_error *e)
{
        struct parser p = {.s = (const unsigned char *) text, .len = len, .e = e};
        *e = (struct cf_json_error){0};

        if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
                return fail_at(&p, 0, "a UTF-8 byte order mark (save the file without one)");
        skip_ws(&p);
        if (p.pos == len)
                return fail_at(&p, p.pos, "no JSON value (the text is empty)");
        int r = parse_value(&p);
        if (r < 0)
                return p.oom ? -ENOMEM : r;
        skip_ws(&p);
        if (p.pos < len) {
                if (p.s[p.pos] == '/' || p.s[p.pos] == '#')
                        return fail_at(&p, p.pos, "comments are not JSON");
                return fail_at(&p, p.pos, "text after the end of the JSON value");
        }
        return 0;
}
