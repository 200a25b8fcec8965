/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) without allocation, for nodes and gateway alike. */
#include <string.h>

#include "canfleet/sha256.h"

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static inline uint32_t ror(uint32_t x, unsigned n)
{
        return (x >> n) | (x << (32u - n));
}

static void compress(uint32_t h[8], const uint8_t blk[64])
{
        uint32_t w[64];

        for (unsigned i = 0; i < 16; i++)
                w[i] = (uint32_t) blk[4 * i] << 24 | (uint32_t) blk[4 * i + 1] << 16 |
                       (uint32_t) blk[4 * i + 2] << 8 | blk[4 * i + 3];
        for (unsigned i = 16; i < 64; i++) {
                uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }

        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (unsigned i = 0; i < 64; i++) {
                uint32_t t1 =
                    hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
                uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
                hh = g;
                g = f;
                f = e;
                e = d + t1;
                d = c;
                c = b;
                b = a;
                a = t1 + t2;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
        h[5] += f;
        h[6] += g;
        h[7] += hh;
        /* The schedule is derived from key material during HMAC: do not leave it on the stack. */
        cf_memzero(w, sizeof(w));
}

void cf_sha256_init(cf_sha256_ctx *s)
{
        static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                       0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
        memcpy(s->h, iv, sizeof(iv));
        s->len = 0;
        s->nbuf = 0;
}

void cf_sha256_update(cf_sha256_ctx *s, const void *data, size_t len)
{
        const uint8_t *p = data;

        s->len += len;
        if (s->nbuf > 0) {
                size_t take = CF_SHA256_BLOCK - s->nbuf;
                if (take > len)
                        take = len;
                memcpy(s->buf + s->nbuf, p, take);
                s->nbuf += (uint32_t) take;
                p += take;
                len -= take;
                if (s->nbuf < CF_SHA256_BLOCK)
                        return;
                compress(s->h, s->buf);
                s->nbuf = 0;
        }
        while (len >= CF_SHA256_BLOCK) {
                compress(s->h, p);
                p += CF_SHA256_BLOCK;
                len -= CF_SHA256_BLOCK;
        }
        if (len > 0) {
                memcpy(s->buf, p, len);
                s->nbuf = (uint32_t) len;
        }
}

void cf_sha256_final(cf_sha256_ctx *s, uint8_t out[CF_SHA256_LEN])
{
        uint64_t bits = s->len * 8u;

        s->buf[s->nbuf++] = 0x80;
        if (s->nbuf > CF_SHA256_BLOCK - 8) {
                memset(s->buf + s->nbuf, 0, CF_SHA256_BLOCK - s->nbuf);
                compress(s->h, s->buf);
                s->nbuf = 0;
        }
        memset(s->buf + s->nbuf, 0, CF_SHA256_BLOCK - 8 - s->nbuf);
        for (unsigned i = 0; i < 8; i++)
                s->buf[CF_SHA256_BLOCK - 1 - i] = (uint8_t) (bits >> (8 * i));
        compress(s->h, s->buf);

        for (unsigned i = 0; i < 8; i++) {
                out[4 * i] = (uint8_t) (s->h[i] >> 24);
                out[4 * i + 1] = (uint8_t) (s->h[i] >> 16);
                out[4 * i + 2] = (uint8_t) (s->h[i] >> 8);
                out[4 * i + 3] = (uint8_t) s->h[i];
        }
        cf_memzero(s, sizeof(*s));
}

void cf_sha256(const void *data, size_t len, uint8_t out[CF_SHA256_LEN])
{
        cf_sha256_ctx s;

        cf_sha256_init(&s);
        cf_sha256_update(&s, data, len);
        cf_sha256_final(&s, out);
}

void cf_hmac_sha256_init(cf_hmac_sha256_ctx *h, const void *key, size_t key_len)
{
        uint8_t k[CF_SHA256_BLOCK] = {0};
        uint8_t pad[CF_SHA256_BLOCK];

        if (key_len > CF_SHA256_BLOCK)
                cf_sha256(key, key_len, k);
        else if (key_len > 0)
                memcpy(k, key, key_len);

        for (unsigned i = 0; i < CF_SHA256_BLOCK; i++)
                pad[i] = k[i] ^ 0x36u;
        cf_sha256_init(&h->inner);
        cf_sha256_update(&h->inner, pad, sizeof(pad));
        for (unsigned i = 0; i < CF_SHA256_BLOCK; i++)
                pad[i] = k[i] ^ 0x5cu;
        cf_sha256_init(&h->outer);
        cf_sha256_update(&h->outer, pad, sizeof(pad));

        cf_memzero(k, sizeof(k));
        cf_memzero(pad, sizeof(pad));
}

void cf_hmac_sha256_update(cf_hmac_sha256_ctx *h, const void *data, size_t len)
{
        cf_sha256_update(&h->inner, data, len);
}

void cf_hmac_sha256_final(cf_hmac_sha256_ctx *h, uint8_t out[CF_SHA256_LEN])
{
        uint8_t ihash[CF_SHA256_LEN];

        cf_sha256_final(&h->inner, ihash);
        cf_sha256_update(&h->outer, ihash, sizeof(ihash));
        cf_sha256_final(&h->outer, out);
        cf_memzero(ihash, sizeof(ihash));
}

void cf_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[CF_SHA256_LEN])
{
        cf_hmac_sha256_ctx h;

        cf_hmac_sha256_init(&h, key, key_len);
        cf_hmac_sha256_update(&h, data, len);
        cf_hmac_sha256_final(&h, out);
}

void cf_memzero(void *p, size_t len)
{
        volatile uint8_t *v = p;

        while (len--)
                *v++ = 0;
}
