/* CCP seed & key: node secrets from the fleet key, keys from seeds, and the fleet key file's text form. */
#include <string.h>

#include "canfleet/seedkey.h"
#include "canfleet/sha256.h"
#include "canfleet/slcan.h"

static const char node_label[] = "canfleet-node-v1";

void cf_node_secret(const uint8_t fleet_key[CF_FLEET_KEY_LEN], const uint8_t uid[CF_UID_LEN],
                    uint8_t node_secret[CF_NODE_SECRET_LEN])
{
        cf_hmac_sha256_ctx h;

        cf_hmac_sha256_init(&h, fleet_key, CF_FLEET_KEY_LEN);
        cf_hmac_sha256_update(&h, node_label, sizeof(node_label) - 1);
        cf_hmac_sha256_update(&h, uid, CF_UID_LEN);
        cf_hmac_sha256_final(&h, node_secret);
        cf_memzero(&h, sizeof(h));
}

void cf_ccp_key(const uint8_t node_secret[CF_NODE_SECRET_LEN], const uint8_t seed[CF_SEED_LEN],
                uint8_t key[CF_KEY_LEN])
{
        uint8_t mac[CF_SHA256_LEN];

        cf_hmac_sha256(node_secret, CF_NODE_SECRET_LEN, seed, CF_SEED_LEN, mac);
        memcpy(key, mac, CF_KEY_LEN);
        cf_memzero(mac, sizeof(mac));
}

void cf_ccp_key_echo(const uint8_t seed[CF_SEED_LEN], uint8_t key[CF_KEY_LEN])
{
        key[0] = 0;
        key[1] = 0;
        memcpy(&key[2], seed, CF_SEED_LEN);
}

int cf_key_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
        uint8_t diff = 0;

        /* Walk the whole length whatever differs, so timing tells nothing about where. */
        for (size_t i = 0; i < len; i++)
                diff |= (uint8_t) (a[i] ^ b[i]);
        return diff == 0;
}

static int is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int cf_fleet_key_parse(const char *text, size_t len, uint8_t key[CF_FLEET_KEY_LEN])
{
        uint8_t tmp[CF_FLEET_KEY_LEN];

        if (!text)
                return -1;
        while (len > 0 && is_space(text[0])) {
                text++;
                len--;
        }
        while (len > 0 && is_space(text[len - 1]))
                len--;
        if (len != 2 * CF_FLEET_KEY_LEN)
                return -1;

        for (size_t i = 0; i < CF_FLEET_KEY_LEN; i++) {
                int hi = cf_hex_digit(text[2 * i]), lo = cf_hex_digit(text[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        cf_memzero(tmp, sizeof(tmp));
                        return -1;
                }
                tmp[i] = (uint8_t) (hi << 4 | lo);
        }
        memcpy(key, tmp, sizeof(tmp));
        cf_memzero(tmp, sizeof(tmp));
        return 0;
}
