/* CCP seed & key (docs/design.md §3): node secrets derived from the fleet key, 6-byte keys from 4-byte seeds. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CF_FLEET_KEY_LEN   32u
#define CF_NODE_SECRET_LEN 32u
#define CF_UID_LEN         12u
#define CF_SEED_LEN        4u
#define CF_KEY_LEN         6u

/* node_secret = HMAC-SHA256(fleet_key, "canfleet-node-v1" || uid[12]) */
void cf_node_secret(const uint8_t fleet_key[CF_FLEET_KEY_LEN], const uint8_t uid[CF_UID_LEN],
                    uint8_t node_secret[CF_NODE_SECRET_LEN]);

/* key = HMAC-SHA256(node_secret, seed)[0..5] */
void cf_ccp_key(const uint8_t node_secret[CF_NODE_SECRET_LEN], const uint8_t seed[CF_SEED_LEN],
                uint8_t key[CF_KEY_LEN]);

/* The seed's demo firmware: key = 00 00 seed0 seed1 seed2 seed3 */
void cf_ccp_key_echo(const uint8_t seed[CF_SEED_LEN], uint8_t key[CF_KEY_LEN]);

/* Constant-time comparison: 1 when equal. */
int cf_key_equal(const uint8_t *a, const uint8_t *b, size_t len);

/* Parse 64 hexadecimal characters (surrounding white space allowed, nothing else) into 32 bytes.
 * Returns 0, or -1 when the text is not exactly that. */
int cf_fleet_key_parse(const char *text, size_t len, uint8_t key[CF_FLEET_KEY_LEN]);
