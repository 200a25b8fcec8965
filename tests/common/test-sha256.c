/* Tests of common/src/sha256.c: FIPS 180-4 example messages and the RFC 4231 HMAC-SHA256 test cases. */
#include <string.h>

#include "canfleet/sha256.h"
#include "cf-test.h"

static int unhex(const char *hex, uint8_t *out, size_t max)
{
        size_t n = strlen(hex) / 2;
        if (n > max)
                return -1;
        for (size_t i = 0; i < n; i++) {
                unsigned v;
                if (sscanf(hex + 2 * i, "%2x", &v) != 1)
                        return -1;
                out[i] = (uint8_t) v;
        }
        return (int) n;
}

static void assert_digest(const uint8_t *got, const char *want_hex, size_t n)
{
        uint8_t want[CF_SHA256_LEN];
        CU_ASSERT_EQUAL_FATAL(unhex(want_hex, want, sizeof(want)), (int) n);
        CU_ASSERT_EQUAL(memcmp(got, want, n), 0);
}

static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char m448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char m448_hex[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char m896[] =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
    "lmnopqrsmnopqrstnopqrstu";
static const char m896_hex[] = "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1";
static const char million_a_hex[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

static void test_fips_vectors(void)
{
        uint8_t d[CF_SHA256_LEN];

        cf_sha256("abc", 3, d);
        assert_digest(d, abc_hex, 32);
        cf_sha256(m448, strlen(m448), d);
        assert_digest(d, m448_hex, 32);
        cf_sha256(m896, strlen(m896), d);
        assert_digest(d, m896_hex, 32);
        cf_sha256("", 0, d);
        assert_digest(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 32);
}

static void test_million_a(void)
{
        static uint8_t a[1000000];
        uint8_t d[CF_SHA256_LEN];
        cf_sha256_ctx s;

        memset(a, 'a', sizeof(a));
        cf_sha256(a, sizeof(a), d);
        assert_digest(d, million_a_hex, 32);

        /* fed in uneven pieces that straddle block boundaries */
        static const size_t pieces[] = {1, 63, 64, 65, 127, 3, 1000};
        size_t off = 0, k = 0;
        cf_sha256_init(&s);
        while (off < sizeof(a)) {
                size_t n = pieces[k++ % (sizeof(pieces) / sizeof(pieces[0]))];
                if (n > sizeof(a) - off)
                        n = sizeof(a) - off;
                cf_sha256_update(&s, a + off, n);
                off += n;
        }
        cf_sha256_final(&s, d);
        assert_digest(d, million_a_hex, 32);
}

static void test_incremental_matches_oneshot(void)
{
        uint8_t msg[300], one[CF_SHA256_LEN], inc[CF_SHA256_LEN];

        for (size_t i = 0; i < sizeof(msg); i++)
                msg[i] = (uint8_t) (i * 31u + 7u);
        /* every length around the padding boundaries (55/56, 63/64, 119/120), every split point */
        for (size_t len = 0; len <= 130; len++)
                for (size_t cut = 0; cut <= len; cut += (len < 70 ? 1 : 13)) {
                        cf_sha256_ctx s;
                        cf_sha256(msg, len, one);
                        cf_sha256_init(&s);
                        cf_sha256_update(&s, msg, cut);
                        cf_sha256_update(&s, msg + cut, 0);
                        cf_sha256_update(&s, msg + cut, len - cut);
                        cf_sha256_final(&s, inc);
                        if (memcmp(one, inc, sizeof(one)) != 0) {
                                CU_FAIL("incremental digest differs");
                                return;
                        }
                }
        CU_PASS("all splits agree");
}

static void run_hmac_case(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len,
                          const char *mac_hex, size_t mac_len)
{
        uint8_t mac[CF_SHA256_LEN];
        cf_hmac_sha256_ctx h;

        cf_hmac_sha256(key, key_len, data, data_len, mac);
        assert_digest(mac, mac_hex, mac_len);

        /* the streaming form agrees, data fed a byte at a time */
        cf_hmac_sha256_init(&h, key, key_len);
        for (size_t i = 0; i < data_len; i++)
                cf_hmac_sha256_update(&h, data + i, 1);
        cf_hmac_sha256_final(&h, mac);
        assert_digest(mac, mac_hex, mac_len);
}

static void test_rfc4231(void)
{
        uint8_t key[131], data[200];

        /* 1 */
        memset(key, 0x0b, 20);
        run_hmac_case(key, 20, (const uint8_t *) "Hi There", 8,
                      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32);
        /* 2: a key shorter than the output */
        run_hmac_case((const uint8_t *) "Jefe", 4, (const uint8_t *) "what do ya want for nothing?", 28,
                      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32);
        /* 3 */
        memset(key, 0xaa, 20);
        memset(data, 0xdd, 50);
        run_hmac_case(key, 20, data, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
                      32);
        /* 4 */
        for (unsigned i = 0; i < 25; i++)
                key[i] = (uint8_t) (i + 1);
        memset(data, 0xcd, 50);
        run_hmac_case(key, 25, data, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
                      32);
        /* 5: output truncated to 128 bits */
        memset(key, 0x0c, 20);
        run_hmac_case(key, 20, (const uint8_t *) "Test With Truncation", 20,
                      "a3b6167473100ee06e0c796c2955552b", 16);
        /* 6: a key larger than the block is hashed first */
        memset(key, 0xaa, 131);
        static const char d6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
        run_hmac_case(key, 131, (const uint8_t *) d6, strlen(d6),
                      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 32);
        /* 7: and data larger than the block */
        static const char d7[] =
            "This is a test using a larger than block-size key and a larger than block-size "
            "data. The key needs to be hashed before being used by the HMAC algorithm.";
        run_hmac_case(key, 131, (const uint8_t *) d7, strlen(d7),
                      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 32);
}

static void test_memzero(void)
{
        uint8_t b[33];
        memset(b, 0x5A, sizeof(b));
        cf_memzero(b + 1, 31);
        CU_ASSERT_EQUAL(b[0], 0x5A);
        for (size_t i = 1; i < 32; i++)
                CU_ASSERT_EQUAL(b[i], 0);
        CU_ASSERT_EQUAL(b[32], 0x5A);
        cf_memzero(b, 0);
        CU_ASSERT_EQUAL(b[0], 0x5A);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"FIPS 180-4 vectors", test_fips_vectors},
            {"one million 'a'", test_million_a},
            {"incremental equals one-shot", test_incremental_matches_oneshot},
            {"RFC 4231 HMAC-SHA256 cases 1-7", test_rfc4231},
            {"memzero", test_memzero},
            {NULL, NULL},
        };
        return cf_test_run("sha256", tests);
}
