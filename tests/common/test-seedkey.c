/* Tests of common/src/seedkey.c against OpenSSL's HMAC-SHA256, and of the fleet key file parser. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "canfleet/seedkey.h"
#include "cf-test.h"

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
        uint32_t x = seed * 2654435761u + 1;
        for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                p[i] = (uint8_t) x;
        }
}

static void openssl_hmac(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
                         uint8_t out[32])
{
        unsigned out_len = 0;
        CU_ASSERT_PTR_NOT_NULL_FATAL(HMAC(EVP_sha256(), key, (int) key_len, data, len, out, &out_len));
        CU_ASSERT_EQUAL_FATAL(out_len, 32u);
}

static void test_node_secret_vs_openssl(void)
{
        for (uint32_t round = 0; round < 64; round++) {
                uint8_t fleet[CF_FLEET_KEY_LEN], uid[CF_UID_LEN], ours[CF_NODE_SECRET_LEN], ref[32];
                uint8_t msg[16 + CF_UID_LEN];

                fill(fleet, sizeof(fleet), round);
                fill(uid, sizeof(uid), round + 1000);
                memcpy(msg, "canfleet-node-v1", 16);
                memcpy(msg + 16, uid, CF_UID_LEN);
                openssl_hmac(fleet, sizeof(fleet), msg, sizeof(msg), ref);
                cf_node_secret(fleet, uid, ours);
                CU_ASSERT_EQUAL(memcmp(ours, ref, 32), 0);
        }
}

static void test_key_vs_openssl(void)
{
        for (uint32_t round = 0; round < 64; round++) {
                uint8_t secret[CF_NODE_SECRET_LEN], seed[CF_SEED_LEN], key[CF_KEY_LEN], ref[32];

                fill(secret, sizeof(secret), round + 7);
                fill(seed, sizeof(seed), round + 99);
                memset(key, 0xEE, sizeof(key));
                openssl_hmac(secret, sizeof(secret), seed, sizeof(seed), ref);
                cf_ccp_key(secret, seed, key);
                CU_ASSERT_EQUAL(memcmp(key, ref, CF_KEY_LEN), 0);
        }
}

static void test_chain_distinguishes(void)
{
        /* the whole chain fleet key -> node secret -> key, and that each input matters */
        uint8_t fleet[CF_FLEET_KEY_LEN], uid[CF_UID_LEN], seed[CF_SEED_LEN] = {1, 2, 3, 4};
        uint8_t s1[32], s2[32], k1[6], k2[6];

        fill(fleet, sizeof(fleet), 5);
        fill(uid, sizeof(uid), 6);
        cf_node_secret(fleet, uid, s1);
        uid[11] ^= 1;
        cf_node_secret(fleet, uid, s2);
        CU_ASSERT_NOT_EQUAL(memcmp(s1, s2, 32), 0);
        cf_ccp_key(s1, seed, k1);
        cf_ccp_key(s2, seed, k2);
        CU_ASSERT_NOT_EQUAL(memcmp(k1, k2, 6), 0);
        seed[0] ^= 0x80;
        cf_ccp_key(s1, seed, k2);
        CU_ASSERT_NOT_EQUAL(memcmp(k1, k2, 6), 0);
}

static void test_echo_key(void)
{
        uint8_t key[CF_KEY_LEN];

        memset(key, 0xEE, sizeof(key));
        cf_ccp_key_echo((const uint8_t[]){0xDE, 0xAD, 0xBE, 0xEF}, key);
        CU_ASSERT_EQUAL(memcmp(key, (const uint8_t[]){0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF}, 6), 0);
}

static void test_key_equal(void)
{
        uint8_t a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 2, 3, 4, 5, 6};

        CU_ASSERT_EQUAL(cf_key_equal(a, b, 6), 1);
        CU_ASSERT_EQUAL(cf_key_equal(a, b, 0), 1);
        for (size_t i = 0; i < 6; i++) {
                b[i] ^= 0x01;
                CU_ASSERT_EQUAL(cf_key_equal(a, b, 6), 0);
                b[i] ^= 0x81;
                CU_ASSERT_EQUAL(cf_key_equal(a, b, 6), 0);
                b[i] ^= 0x80;
        }
        CU_ASSERT_EQUAL(cf_key_equal(a, b, 6), 1);
}

static const char good_hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static int parse(const char *s, uint8_t key[32])
{
        return cf_fleet_key_parse(s, strlen(s), key);
}

static void assert_sequence(const uint8_t key[32])
{
        for (unsigned i = 0; i < 32; i++)
                CU_ASSERT_EQUAL(key[i], i);
}

static void test_fleet_key_good(void)
{
        uint8_t key[32];

        memset(key, 0xEE, sizeof(key));
        CU_ASSERT_EQUAL(parse(good_hex, key), 0);
        assert_sequence(key);

        memset(key, 0xEE, sizeof(key));
        CU_ASSERT_EQUAL(parse("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n", key), 0);
        assert_sequence(key);

        memset(key, 0xEE, sizeof(key));
        CU_ASSERT_EQUAL(
            parse(" \t\r\n000102030405060708090a0B0c0D0e0F101112131415161718191a1b1c1d1e1f \r\n\n", key), 0);
        assert_sequence(key);

        CU_ASSERT_EQUAL(parse("ffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFF", key), 0);
        for (unsigned i = 0; i < 32; i++)
                CU_ASSERT_EQUAL(key[i], 0xFF);

        /* len bounds the text: what follows is not looked at */
        char longer[80];
        snprintf(longer, sizeof(longer), "%sZZZZ", good_hex);
        CU_ASSERT_EQUAL(cf_fleet_key_parse(longer, 64, key), 0);
        assert_sequence(key);
}

static void test_fleet_key_bad(void)
{
        uint8_t key[32], before[32];
        char buf[100];
        static const char *bad[] = {
            "",
            "   \n",
            /* short: 63 and 62 digits */
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
            /* long: 65 and 66 digits */
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00",
            /* non-hex digits */
            "g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
            "0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "000102030405060708090a0b0c0d0e0f-01112131415161718191a1b1c1d1e1f",
            /* white space inside the key */
            "00010203040506070809 a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "0001020304050607 08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "000102030405060708090a0b0c0d0e0f\n101112131415161718191a1b1c1d1e1f",
            /* anything else around it */
            "key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f # fleet",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                memset(key, 0xEE, sizeof(key));
                memcpy(before, key, sizeof(key));
                CU_ASSERT_EQUAL(parse(bad[i], key), -1);
                /* a refused text leaves the output alone */
                CU_ASSERT_EQUAL(memcmp(key, before, sizeof(key)), 0);
        }

        /* an embedded NUL within len is not a digit */
        memcpy(buf, good_hex, 64);
        buf[10] = '\0';
        CU_ASSERT_EQUAL(cf_fleet_key_parse(buf, 64, key), -1);
        /* len shorter than the text */
        CU_ASSERT_EQUAL(cf_fleet_key_parse(good_hex, 63, key), -1);
        CU_ASSERT_EQUAL(cf_fleet_key_parse(good_hex, 0, key), -1);
        CU_ASSERT_EQUAL(cf_fleet_key_parse(NULL, 0, key), -1);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"node secret = OpenSSL HMAC", test_node_secret_vs_openssl},
            {"CCP key = OpenSSL HMAC", test_key_vs_openssl},
            {"every input changes the key", test_chain_distinguishes},
            {"echo key", test_echo_key},
            {"constant-time key compare", test_key_equal},
            {"fleet key parse: good", test_fleet_key_good},
            {"fleet key parse: refused", test_fleet_key_bad},
            {NULL, NULL},
        };
        return cf_test_run("seedkey", tests);
}
