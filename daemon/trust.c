/* The daemon's trust decision on an update's bytes: signed bundle against the keyring, or a plain image
 * when the configuration allows unsigned ones. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trust.h"

static int refuse(char **error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char **error, int r, const char *fmt, ...)
{
        if (error) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(error, fmt, ap) < 0)
                        *error = NULL;
                va_end(ap);
        }
        return r;
}

int trust_check(const struct cf_keyring *keyring, bool allow_unsigned, const uint8_t *data, size_t size,
                struct trusted_image *ret, char **error)
{
        if (error)
                *error = NULL;
        memset(ret, 0, sizeof *ret);

        /* A serial target's bundle (docs/design.md §8) may be smaller than an area image. */
        if (size < CF_IMAGE_AREA_SIZE && !cf_bundle_is_bundle(data, size))
                return refuse(error, -EBADMSG,
                              "the file is %zu bytes: neither a packed %u KB area image nor a signed bundle "
                              "(.cfb)",
                              size, CF_IMAGE_AREA_SIZE / 1024);

        if (size == CF_IMAGE_AREA_SIZE && !cf_bundle_is_bundle(data, size)) {
                /* The refusal comes first and names the key that lifts it: an operator who flashes a
                 * plain image by mistake learns what to do, whatever the image holds. */
                if (!allow_unsigned)
                        return refuse(
                            error, -EKEYREJECTED,
                            "unsigned image refused: set \"allow_unsigned\": true in canfleetd.conf "
                            "for development, or flash a signed bundle (canfleetctl bundle create)");
                int s = cf_image_check_full(data, &ret->info);
                if (s != CF_IMAGE_OK)
                        return refuse(error, -EBADMSG, "not a valid packed area image: %s",
                                      cf_image_status_str(s));
                ret->image = data;
                ret->n_images = 1;
                ret->image_size = size;
                return 0;
        }
        if (size == 2u * CF_IMAGE_AREA_SIZE && !cf_bundle_is_bundle(data, size)) {
                /* The two links of a dual-bank application, bank 1's first, unsigned (development). */
                if (!allow_unsigned)
                        return refuse(
                            error, -EKEYREJECTED,
                            "unsigned dual-bank images refused: set \"allow_unsigned\": true in canfleetd.conf "
                            "for development, or flash a signed bundle (canfleetctl bundle create IMAGE IMAGE2)");
                for (unsigned bank = 1; bank <= 2; bank++) {
                        struct cf_image_info info;
                        int s = cf_image_check_full_at(data + (bank - 1) * CF_IMAGE_AREA_SIZE, &info,
                                                       cf_f7_app_addr(bank));
                        if (s != CF_IMAGE_OK)
                                return refuse(error, -EBADMSG, "not the two links of a dual-bank image: bank %u: %s",
                                              bank, cf_image_status_str(s));
                        if (bank == 1)
                                ret->info = info;
                        else if (info.hw_id != ret->info.hw_id || info.release != ret->info.release ||
                                 cf_image_version_cmp(&info, &ret->info) != 0)
                                return refuse(error, -EBADMSG,
                                              "the two links of the dual-bank image differ in hardware id, "
                                              "version or release");
                }
                ret->image = data;
                ret->image_size = CF_IMAGE_AREA_SIZE;
                ret->n_images = 2;
                return 0;
        }

        if (!keyring)
                return refuse(error, -EKEYREJECTED,
                              "bundle refused: no keyring is configured to verify it (set \"keyring\" in "
                              "canfleetd.conf)");
        struct cf_bundle *b = NULL;
        struct cf_bundle_error err = {0};
        int r = cf_bundle_verify(data, size, keyring, &b, &err);
        if (r < 0) {
                switch (err.check) {
                case CF_BUNDLE_CHECK_SIGNATURE:
                case CF_BUNDLE_CHECK_TRUST:
                case CF_BUNDLE_CHECK_SHA256: /* the image is not the one that was signed */
                        r = -EKEYREJECTED;
                        break;
                case CF_BUNDLE_CHECK_NONE:
                        break; /* -ENOMEM */
                default:
                        r = -EBADMSG;
                        break;
                }
                return refuse(error, r, "bundle refused: %s", err.message[0] ? err.message : strerror(-r));
        }
        ret->image = b->image; /* a dual-bank bundle's two links follow each other */
        ret->image_size = b->image_size;
        ret->n_images = b->n_images;
        ret->info = b->info;
        ret->bundle = true;
        if (b->manifest.target[0]) {
                /* A raw image has no trailer: what the job shows and checks comes from the manifest. */
                const struct cf_bundle_manifest *m = &b->manifest;
                cf_bundle_manifest_info(m, &ret->info);
                snprintf(ret->target, sizeof ret->target, "%s", m->target);
                snprintf(ret->part_id, sizeof ret->part_id, "%s", m->part_id);
        }
        for (size_t i = 0; i < b->n_signers; i++)
                if (b->signers[i].trust == CF_BUNDLE_TRUST_OK && b->signers[i].subject) {
                        snprintf(ret->signer, sizeof ret->signer, "%s", b->signers[i].subject);
                        break;
                }
        cf_bundle_free(b);
        return 0;
}
