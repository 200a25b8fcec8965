/* What canfleetd agrees to flash: a signed bundle verified against the keyring, or, with allow_unsigned, a
 * plain area image. The one place of the daemon that decides on trust (the checks are lib/bundle.c's). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "canfleet/image.h"

struct trusted_image {
        const uint8_t *image; /* n_images x image_size bytes inside the buffer given to trust_check() */
        size_t image_size;    /* CF_IMAGE_AREA_SIZE, or a serial target's raw image (docs/design.md §8) */
        unsigned n_images;    /* 1, or 2: the two links of a dual-bank application, bank 1's first */
        struct cf_image_info info; /* a raw image's: from the manifest (no trailer) */
        char target[16];           /* "" (CCP area image), "lpc-isp", "adi-uart" */
        char part_id[32];          /* with a target */
        bool bundle;      /* a verified signed bundle (else a plain image, allow_unsigned) */
        char signer[256]; /* a bundle's first signer (RFC 2253 subject), "" for a plain image */
};

/*
 * Decide on the bytes a caller handed in (the daemon's own copy: nothing is re-read). By size:
 *   > 262144 bytes  a bundle: cf_bundle_verify() with the keyring, every docs/design.md §6 check in order;
 *                   refused when no keyring is configured (allow_unsigned without keyring);
 *   = 262144 bytes  a plain area image: refused unless allow_unsigned, else cf_image_check_full();
 *   = 524288 bytes  the two links of a dual-bank application, unsigned: as a plain image, each link
 *                   checked for its bank (unless it is a bundle);
 *   < 262144 bytes  a serial target's bundle when it looks like one (cf_bundle_is_bundle), else neither.
 * A raw serial image is only accepted in a bundle, also with allow_unsigned: the manifest is what says
 * which chip it is for.
 * Returns 0 and fills *ret (its image points into data), or:
 *   -EBADMSG       malformed: not an image nor a bundle, or a bundle's size, cms, manifest, trailer or
 *                  image check failed
 *   -EKEYREJECTED  not trusted: an unsigned image without allow_unsigned, a bad signature, no signer
 *                  chaining to the keyring, an image that is not the one the manifest signs (sha256)
 *   -ENOMEM
 * *error (malloc'ed, caller frees) is one line for the operator, e.g.
 *   unsigned image refused: set "allow_unsigned": true in canfleetd.conf for development
 *   bundle refused: trust: no signer chains to the keyring: signer 1 (CN=x): unable to get local issuer ...
 * Nothing is logged here.
 */
int trust_check(const struct cf_keyring *keyring, bool allow_unsigned, const uint8_t *data, size_t size,
                struct trusted_image *ret, char **error);
