/* A strict RFC 8259 checker for JSON text, run before json-c (which accepts much that is not JSON). */
#pragma once

#include <stddef.h>

#define CF_JSON_MAX_DEPTH 20

struct cf_json_error {
        unsigned line;   /* 1-based */
        unsigned column; /* 1-based, in characters (a UTF-8 sequence or a tab is one) */
        char message[160];
};

/*
 * 0 when text[0, len) is exactly one JSON value (RFC 8259) with optional whitespace around it;
 * otherwise -EBADMSG with *e naming the first problem and where it is (a duplicate key is found
 * when its object closes, so a syntax error later in that object is named first), or -ENOMEM.
 * Nothing is allocated but a key table per open object; any bytes are safe (no NUL needed).
 *
 * Beyond the grammar, refused because json-c would read them differently or not at all, or
 * because they hide mistakes in a hand-edited file:
 *   - a UTF-8 byte order mark, invalid UTF-8 anywhere (overlong forms, surrogates, > U+10FFFF);
 *   - the same key twice in one object, compared after unescaping ("a" and "\u0061" are one);
 *   - "\u0000" and lone surrogate escapes in strings;
 *   - more than CF_JSON_MAX_DEPTH nested arrays/objects (json-c's own limit is 32).
 * Examples (messages as found in e->message):
 *   {"a": 1,}           1:8  trailing comma before '}'
 *   {"a": 010}          1:7  number with a leading zero ("010"): JSON has no octal numbers
 *   {"a": 1 0}          1:9  a space inside a number, or a missing ','
 *   {'a': 1}            1:2  single quotes: JSON strings take double quotes
 *   {"a": 1} // x       1:10 comments are not JSON
 *   {"a": 1} x          1:10 text after the end of the JSON value
 *   {"a": 1, "a": 2}    1:10 key "a" appears twice in this object (first at 1:2)
 *   {"a": NaN}          1:7  NaN and Infinity are not JSON numbers
 */
int cf_json_check(const char *text, size_t len, struct cf_json_error *e);
