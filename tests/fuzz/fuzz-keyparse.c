/* Fuzz target: cf_fleet_key_parse() against a model of the fleet key file's grammar. */
#include <stdlib.h>
#include <string.h>

#include "canfleet/seedkey.h"
#include "fuzz.h"

/*
 * The grammar (seedkey.h, docs/design.md §3): optional white space, exactly 64 hexadecimal digits of
 * either case, optional white space, nothing else. White space is what the C locale's isspace()
 * accepts — space, \t \n \v \f \r — written out here so that the model does not depend on a locale.
 * Accepted text decodes to 32 bytes, high nibble first; refused text leaves the output untouched.
 */

static int model_space(uint8_t c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int model_hex(uint8_t c)
{
        static const char digits[] = "0123456789abcdef";
        const char *p;

        if (c == 0)
                return -1;
        p = strchr(digits, c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
        return p ? (int) (p - digits) : -1;
}

/* 0 and the key, or -1. */
static int model_parse(const uint8_t *t, size_t n, uint8_t key[CF_FLEET_KEY_LEN])
{
        size_t b = 0, e = n;

        while (b < e && model_space(t[b]))
                b++;
        while (e > b && model_space(t[e - 1]))
                e--;
        if (e - b != 64)
                return -1;
        for (size_t i = 0; i < 64; i++)
                if (model_hex(t[b + i]) < 0)
                        return -1;
        for (size_t i = 0; i < 32; i++)
                key[i] = (uint8_t) (model_hex(t[b + 2 * i]) << 4 | model_hex(t[b + 2 * i + 1]));
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t key[CF_FLEET_KEY_LEN + 8], want[CF_FLEET_KEY_LEN];
        /* On failure nothing may change; the 8 bytes past the key catch a write beyond it. */
        uint8_t canary = size ? (uint8_t) (data[0] ^ 0xA5) : 0x5A;

        memset(key, canary, sizeof(key));
        /* The text is exactly the input, no terminating NUL: the parser must honour len. */
        char *text = malloc(size ? size : 1);
        if (!text)
                abort();
        if (size)
                memcpy(text, data, size);
        else
                text[0] = 0;

        int r = cf_fleet_key_parse(text, size, key);
        int m = model_parse(data, size, want);

        FUZZ_CHECK(r == 0 || r == -1, "cf_fleet_key_parse returned %d", r);
        FUZZ_CHECK(r == m, "cf_fleet_key_parse returned %d, the grammar says %d (input of %zu bytes)", r, m,
                   size);
        if (r == 0)
                FUZZ_CHECK(memcmp(key, want, CF_FLEET_KEY_LEN) == 0, "accepted key decoded wrongly");
        for (size_t i = r == 0 ? CF_FLEET_KEY_LEN : 0; i < sizeof(key); i++)
                FUZZ_CHECK(key[i] == canary, "output byte %zu changed (%s)", i,
                           r == 0 ? "past the 32 bytes" : "on a refused key");
        FUZZ_CHECK(memcmp(text, data, size) == 0, "the parser modified its input");

        /* A NULL text is refused too, whatever the length says. */
        if (size == 0)
                FUZZ_CHECK(cf_fleet_key_parse(NULL, 64, key) == -1, "NULL text accepted");
        free(text);
        return 0;
}
