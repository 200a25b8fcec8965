/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), freestanding. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CF_SHA256_LEN   32u
#define CF_SHA256_BLOCK 64u

/* The context types carry a _ctx suffix: plain cf_sha256 / cf_hmac_sha256 are the one-shot functions
 * (a typedef and a function of one name cannot coexist in C). */
typedef struct cf_sha256 {
        uint32_t h[8];
        uint64_t len; /* bytes fed so far */
        uint8_t buf[CF_SHA256_BLOCK];
        uint32_t nbuf;
} cf_sha256_ctx;

void cf_sha256_init(cf_sha256_ctx *s);
void cf_sha256_update(cf_sha256_ctx *s, const void *data, size_t len);
void cf_sha256_final(cf_sha256_ctx *s, uint8_t out[CF_SHA256_LEN]);
/* One shot.  cf_sha256("abc", 3, d): d = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad */
void cf_sha256(const void *data, size_t len, uint8_t out[CF_SHA256_LEN]);

typedef struct cf_hmac_sha256 {
        cf_sha256_ctx inner;
        cf_sha256_ctx outer;
} cf_hmac_sha256_ctx;

void cf_hmac_sha256_init(cf_hmac_sha256_ctx *h, const void *key, size_t key_len);
void cf_hmac_sha256_update(cf_hmac_sha256_ctx *h, const void *data, size_t len);
void cf_hmac_sha256_final(cf_hmac_sha256_ctx *h, uint8_t out[CF_SHA256_LEN]);
void cf_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, uint8_t out[CF_SHA256_LEN]);

/* Overwrite a secret in a way the compiler may not remove. */
void cf_memzero(void *p, size_t len);
