/* A bounded text line built without stdio, for the USART log: strings, decimal and hexadecimal numbers. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CF_LINE_MAX 120u

struct cf_line {
        char buf[CF_LINE_MAX + 1];
        size_t n;
};

/* Each returns l so that calls chain; text beyond CF_LINE_MAX is dropped, buf stays NUL-terminated.
 *   cf_line_hex(cf_line_str(cf_line_init(&l), "id 0x"), 0x681, 3)->buf == "id 0x681"
 *   cf_line_dec(l, 168000000) appends "168000000"; cf_line_int(l, -110) appends "-110" */
struct cf_line *cf_line_init(struct cf_line *l);
struct cf_line *cf_line_str(struct cf_line *l, const char *s);
struct cf_line *cf_line_dec(struct cf_line *l, uint32_t v);
struct cf_line *cf_line_int(struct cf_line *l, int32_t v);
struct cf_line *cf_line_hex(struct cf_line *l, uint32_t v, unsigned digits);
/* "1.2.3" */
struct cf_line *cf_line_version(struct cf_line *l, unsigned major, unsigned minor, unsigned patch);
