/* Fuzz target: the bundle parser (lib/bundle.c): the CMS envelope, the size field and the manifest JSON. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/sha256.h"
#include "fuzz.h"

/*
 * Input: a mode byte, then the rest (mode = first byte & 3):
 *   0  the rest is the CMS: bundle = fixture image || rest || u64 BE length of rest; verified
 *   1  the rest is manifest text for cf_bundle_manifest_parse()
 *   2  bundle = fixture image || rest[8..] || rest[0..8] (the length field itself fuzzed); verified
 *   3  as 0, but cf_bundle_inspect() (no keyring)
 * The fixture image is a valid area image (hw_id 1, 1.4.0, release 12, built below); the keyring
 * is the self-signed code-signing certificate below, whose key is here too so that the corpus
 * (mkcorpus-bundle.py) holds validly signed bundles for the mutations to start from.
 *
 * Invariants: every result is 0 or exactly the errno of the check named in err, and the message
 * starts with that check's name; inspect with the keyring gives verify's answer, without it it fails
 * at the same check except that it skips trust; an accepted bundle has an image whose SHA-256
 * (common/'s own, not OpenSSL's) is the manifest's, a trailer equal to the manifest, a valid image
 * check, every signature valid and a trusted signer; an accepted manifest is in range and survives
 * cf_bundle_manifest_format() and a second parse unchanged.
 */

/* Test-only key: it signs nothing but fuzz inputs. Valid until 2126. */
static const char fuzz_cert[] = "-----BEGIN CERTIFICATE-----\n"
                                "MIIBuTCCAWCgAwIBAgIUJZ3+uj9Qo6slsnKryFuJwTZcbZkwCgYIKoZIzj0EAwIw\n"
                                "HzEdMBsGA1UEAwwUY2FuZmxlZXQgZnV6eiBzaWduZXIwIBcNMjYxMTMwMjAxMzI0\n"
                                "WhgPMjEyNjExMDYyMDEzMjRaMB8xHTAbBgNVBAMMFGNhbmZsZWV0IGZ1enogc2ln\n"
                                "bmVyMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnSCvKSDZMOf044ga/pDyR5Jc\n"
                                "itPuAUQSUv0IgVGnmISyGYapNdQaAz/3RfI5ymORE4AKZptk5eQjns7kD27p5aN4\n"
                                "MHYwHQYDVR0OBBYEFIMLOh8Mv7Mxr8u55vBJRUgAAzwMMB8GA1UdIwQYMBaAFIML\n"
                                "Oh8Mv7Mxr8u55vBJRUgAAzwMMBMGA1UdJQQMMAoGCCsGAQUFBwMDMA4GA1UdDwEB\n"
                                "/wQEAwIChDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIDPosc07\n"
                                "rkFRTzJgt0j5AVefkqAvBaYU6K1XJhKl7uI2AiA3P4Z2pLgXpZDzAMKnzPl0XvMc\n"
                                "CTpn890faelXSrt/Fg==\n"
                                "-----END CERTIFICATE-----\n";
/* fuzz_key (used by mkcorpus-bundle.py only):
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKACffa0VYn3aZfEn
mqsn1bRZoc8cZSjkbz/oehYgMp6hRANCAASdIK8pINkw5/TjiBr+kPJHklyK0+4B
RBJS/QiBUaeYhLIZhqk11BoDP/dF8jnKY5ETgApmm2Tl5COezuQPbunl
-----END PRIVATE KEY-----
*/

#define PAYLOAD_LEN 512u

static uint8_t *image;  /* the fixture area image */
static uint8_t *bundle; /* image || CMS || length, rebuilt per input */
static struct cf_keyring *keyring;

static void wr32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* mkcorpus-bundle.py builds the same image. */
static void make_image(void)
{
        struct cf_image_info i = {
            .magic = CF_IMAGE_MAGIC,
            .layout_version = CF_TRAILER_LAYOUT,
            .hw_id = 1,
            .ver_major = 1,
            .ver_minor = 4,
            .ver_patch = 0,
            .release = 12,
            .payload_len = PAYLOAD_LEN,
            .area_size = CF_IMAGE_AREA_SIZE,
            .build_time = 1700000000,
        };
        memset(image, 0xFF, CF_IMAGE_AREA_SIZE);
        wr32(image, 0x20020000);
        wr32(image + 4, 0x08020199);
        for (uint32_t k = 8; k < PAYLOAD_LEN; k++)
                image[k] = (uint8_t) (k * 37 + 11);
        cf_sha256(image, PAYLOAD_LEN, i.payload_sha256);
        cf_image_info_pack(&i, image + CF_TRAILER_OFFSET);
        wr32(image + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, image, CF_CRC_OFFSET));
}

static void setup(void)
{
        struct cf_bundle_error err;
        char path[] = "/tmp/fuzz-bundle-keyring-XXXXXX";

        image = malloc(CF_IMAGE_AREA_SIZE);
        bundle = malloc(CF_BUNDLE_MAX_SIZE + 4096);
        FUZZ_CHECK(image && bundle, "out of memory");
        make_image();
        FUZZ_CHECK(cf_image_check(image, NULL) == CF_IMAGE_OK, "fixture image invalid");
        int fd = mkstemp(path);
        FUZZ_CHECK(fd >= 0, "mkstemp");
        FUZZ_CHECK(write(fd, fuzz_cert, sizeof(fuzz_cert) - 1) == (ssize_t) sizeof(fuzz_cert) - 1, "write");
        close(fd);
        int r = cf_keyring_load(path, &keyring, &err);
        unlink(path);
        FUZZ_CHECK(r == 0, "keyring: %s", err.message);
}

static void check_result(int r, const struct cf_bundle_error *err, const char *what)
{
        if (r == 0 || r == -ENOMEM)
                return;
        FUZZ_CHECK(err->check > CF_BUNDLE_CHECK_NONE && err->check < _CF_BUNDLE_CHECK_MAX,
                   "%s: %d without a check", what, r);
        FUZZ_CHECK(r == cf_bundle_check_errno(err->check), "%s: %d is not the errno of check %s", what, r,
                   cf_bundle_check_name(err->check));
        const char *name = cf_bundle_check_name(err->check);
        FUZZ_CHECK(strncmp(err->message, name, strlen(name)) == 0 && err->message[strlen(name)] == ':',
                   "%s: message '%s' does not start with '%s:'", what, err->message, name);
}

static void check_accepted(const struct cf_bundle *b, const uint8_t *data, size_t size, bool trusted)
{
        uint8_t sha[32];
        struct cf_image_info t;

        FUZZ_CHECK(b->image == data, "image not in the caller's buffer");
        FUZZ_CHECK(b->cms_len > 0 && b->cms_len <= CF_BUNDLE_CMS_MAX &&
                       size == CF_IMAGE_AREA_SIZE + b->cms_len + CF_BUNDLE_LENGTH_SIZE,
                   "accepted with CMS length %zu in %zu bytes", b->cms_len, size);
        FUZZ_CHECK(b->have_manifest, "accepted without a manifest");
        cf_sha256(data, CF_IMAGE_AREA_SIZE, sha);
        FUZZ_CHECK(memcmp(sha, b->manifest.image_sha256, 32) == 0, "accepted with another image's sha256");
        cf_image_info_parse(data + CF_TRAILER_OFFSET, &t);
        FUZZ_CHECK(t.hw_id == b->manifest.hw_id && t.release == b->manifest.release &&
                       t.ver_major == b->manifest.ver_major && t.ver_minor == b->manifest.ver_minor &&
                       t.ver_patch == b->manifest.ver_patch,
                   "accepted with a trailer that differs from the manifest");
        FUZZ_CHECK(cf_image_check(data, NULL) == CF_IMAGE_OK, "accepted an invalid image");
        FUZZ_CHECK(b->n_signers > 0, "accepted without signers");
        bool any = false;
        for (size_t i = 0; i < b->n_signers; i++) {
                FUZZ_CHECK(b->signers[i].signature_checked && b->signers[i].signature_ok,
                           "accepted with signer %zu not valid", i + 1);
                any |= b->signers[i].trust == CF_BUNDLE_TRUST_OK;
                FUZZ_CHECK(trusted || b->signers[i].trust == CF_BUNDLE_TRUST_UNCHECKED,
                           "inspect checked trust");
        }
        FUZZ_CHECK(!trusted || any, "accepted without a trusted signer");
}

static void run_bundle(const uint8_t *data, size_t size, bool inspect)
{
        struct cf_bundle_error e1 = {0}, e2 = {0}, e3 = {0};
        struct cf_bundle *b1 = NULL, *b2 = NULL, *b3 = NULL;

        int r_inspect = cf_bundle_inspect(data, size, NULL, &b3, &e3);
        check_result(r_inspect, &e3, "inspect");
        if (r_inspect == 0)
                check_accepted(b3, data, size, false);
        FUZZ_CHECK(b3 || r_inspect == cf_bundle_check_errno(CF_BUNDLE_CHECK_SIZE) || r_inspect == -ENOMEM,
                   "inspect gave nothing back after the size check passed");
        FUZZ_CHECK(cf_bundle_is_bundle(data, size) ==
                       (r_inspect != cf_bundle_check_errno(CF_BUNDLE_CHECK_SIZE)),
                   "cf_bundle_is_bundle disagrees with the size check");
        cf_bundle_free(b3);
        if (inspect)
                return;

        int r = cf_bundle_verify(data, size, keyring, &b1, &e1);
        check_result(r, &e1, "verify");
        FUZZ_CHECK((r == 0) == (b1 != NULL), "verify: result %d with bundle %p", r, (void *) b1);
        if (r == 0)
                check_accepted(b1, data, size, true);
        cf_bundle_free(b1);

        /* inspect with the keyring is verify with a report */
        int again = cf_bundle_inspect(data, size, keyring, &b2, &e2);
        FUZZ_CHECK(again == r && e2.check == e1.check && strcmp(e2.message, e1.message) == 0,
                   "verify %d, inspect with the keyring %d", r, again);
        if (again == 0)
                check_accepted(b2, data, size, true);
        cf_bundle_free(b2);

        /* inspect runs the same checks without trust */
        if (e1.check != CF_BUNDLE_CHECK_TRUST && r != -ENOMEM && r_inspect != -ENOMEM)
                FUZZ_CHECK(r_inspect == r && e3.check == e1.check, "verify %s but inspect %s",
                           cf_bundle_check_name(e1.check), cf_bundle_check_name(e3.check));
        if (e1.check == CF_BUNDLE_CHECK_TRUST)
                FUZZ_CHECK(e3.check == CF_BUNDLE_CHECK_NONE || e3.check > CF_BUNDLE_CHECK_TRUST,
                           "refused for trust, but inspect failed earlier at %s",
                           cf_bundle_check_name(e3.check));
}

static void run_manifest(const uint8_t *data, size_t size)
{
        struct cf_bundle_manifest m, m2;
        struct cf_bundle_error err = {0};

        int r = cf_bundle_manifest_parse((const char *) data, size, &m, &err);
        check_result(r, &err, "manifest");
        if (r != 0) {
                FUZZ_CHECK(r == -ENOMEM || err.check == CF_BUNDLE_CHECK_MANIFEST, "manifest refused by %s",
                           cf_bundle_check_name(err.check));
                FUZZ_CHECK(m.description == NULL, "description left behind");
                return;
        }
        FUZZ_CHECK(m.image_size == CF_IMAGE_AREA_SIZE, "image_size %u accepted", m.image_size);
        FUZZ_CHECK(memmem(data, size, CF_BUNDLE_FORMAT, strlen(CF_BUNDLE_FORMAT)), "no format string in it");

        struct cf_image_info info = {.hw_id = m.hw_id,
                                     .ver_major = m.ver_major,
                                     .ver_minor = m.ver_minor,
                                     .ver_patch = m.ver_patch,
                                     .release = m.release};
        char *text = cf_bundle_manifest_format(&info, m.image_sha256, m.description);
        FUZZ_CHECK(text, "format failed");
        r = cf_bundle_manifest_parse(text, strlen(text), &m2, &err);
        FUZZ_CHECK(r == 0, "formatted manifest refused: %s: %s", err.message, text);
        FUZZ_CHECK(m2.hw_id == m.hw_id && m2.release == m.release && m2.ver_major == m.ver_major &&
                       m2.ver_minor == m.ver_minor && m2.ver_patch == m.ver_patch &&
                       memcmp(m2.image_sha256, m.image_sha256, 32) == 0,
                   "round trip changed the manifest: %s", text);
        FUZZ_CHECK((m.description == NULL) == (m2.description == NULL) &&
                       (!m.description || strcmp(m.description, m2.description) == 0),
                   "round trip changed the description");
        free(text);
        cf_bundle_manifest_clear(&m);
        cf_bundle_manifest_clear(&m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!image)
                setup();
        if (size == 0)
                return 0;
        unsigned mode = data[0] & 3;
        data++;
        size--;
        if (size > CF_BUNDLE_CMS_MAX + 16)
                return 0;

        switch (mode) {
        case 1:
                run_manifest(data, size);
                return 0;
        case 2: {
                if (size < 8)
                        return 0;
                memcpy(bundle, image, CF_IMAGE_AREA_SIZE);
                memcpy(bundle + CF_IMAGE_AREA_SIZE, data + 8, size - 8);
                memcpy(bundle + CF_IMAGE_AREA_SIZE + size - 8, data, 8);
                run_bundle(bundle, CF_IMAGE_AREA_SIZE + size, false);
                return 0;
        }
        default:
                memcpy(bundle, image, CF_IMAGE_AREA_SIZE);
                memcpy(bundle + CF_IMAGE_AREA_SIZE, data, size);
                for (int i = 0; i < 8; i++)
                        bundle[CF_IMAGE_AREA_SIZE + size + (size_t) i] =
                            (uint8_t) ((uint64_t) size >> (56 - 8 * i));
                run_bundle(bundle, CF_IMAGE_AREA_SIZE + size + 8, mode == 3);
                return 0;
        }
}
