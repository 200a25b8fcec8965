/* Tests of daemon/trust.c: which bytes canfleetd agrees to flash, and the error kind of each refusal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canfleet/ccp.h"
#include "canfleet/crc32.h"
#include "canfleet/sha256.h"
#include "cf-test.h"
#include "trust.h"

static char dir[64];

static uint8_t *make_image(uint32_t release)
{
        uint8_t *a = malloc(CF_IMAGE_AREA_SIZE);
        memset(a, 0xFF, CF_IMAGE_AREA_SIZE);
        cf_le32_put(a, 0x20020000);
        cf_le32_put(a + 4, 0x08020199);
        for (uint32_t i = 8; i < 4096; i++)
                a[i] = (uint8_t) (i * 13);
        struct cf_image_info info = {.magic = CF_IMAGE_MAGIC,
                                     .layout_version = CF_TRAILER_LAYOUT,
                                     .hw_id = 1,
                                     .ver_major = 2,
                                     .release = release,
                                     .payload_len = 4096,
                                     .area_size = CF_IMAGE_AREA_SIZE};
        cf_sha256(a, 4096, info.payload_sha256);
        cf_image_info_pack(&info, a + CF_TRAILER_OFFSET);
        cf_le32_put(a + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, a, CF_CRC_OFFSET));
        CU_ASSERT_EQUAL(cf_image_check_full(a, NULL), CF_IMAGE_OK);
        return a;
}

/* A self-signed code-signing certificate NAME.crt/.key made with openssl: its own anchor. */
static void make_signer(const char *name)
{
        char cmd[1024];
        snprintf(
            cmd, sizeof cmd,
            "openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=%s "
            "-days 30 -addext extendedKeyUsage=codeSigning -keyout %s/%s.key -out %s/%s.crt 2>/dev/null",
            name, dir, name, dir, name);
        CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

static struct cf_keyring *keyring_of(const char *name)
{
        char path[128];
        struct cf_keyring *k = NULL;
        struct cf_bundle_error err;
        snprintf(path, sizeof path, "%s/%s.crt", dir, name);
        CU_ASSERT_EQUAL_FATAL(cf_keyring_load(path, &k, &err), 0);
        return k;
}

static void test_plain(void)
{
        struct trusted_image t;
        char *why = NULL;
        uint8_t *img = make_image(3);
        CU_ASSERT_EQUAL(trust_check(NULL, false, img, CF_IMAGE_AREA_SIZE, &t, &why), -EKEYREJECTED);
        CU_ASSERT_PTR_NOT_NULL_FATAL(why);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "unsigned image refused: set \"allow_unsigned\": true"));
        free(why);
        CU_ASSERT_EQUAL(trust_check(NULL, true, img, CF_IMAGE_AREA_SIZE, &t, &why), 0);
        CU_ASSERT_PTR_EQUAL(t.image, img);
        CU_ASSERT_FALSE(t.bundle);
        CU_ASSERT_EQUAL(t.info.release, 3);
        CU_ASSERT_PTR_NULL(why);
        img[100] ^= 1; /* the full check: CRC */
        CU_ASSERT_EQUAL(trust_check(NULL, true, img, CF_IMAGE_AREA_SIZE, &t, &why), -EBADMSG);
        CU_ASSERT_PTR_NOT_NULL(why);
        free(why);
        CU_ASSERT_EQUAL(trust_check(NULL, true, img, 2100, &t, &why), -EBADMSG);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "neither a packed 256 KB area image nor a signed bundle"));
        free(why);
        free(img);
}

static void test_bundle(void)
{
        make_signer("release");
        make_signer("stranger");
        char cert[128], key[128];
        snprintf(cert, sizeof cert, "%s/release.crt", dir);
        snprintf(key, sizeof key, "%s/release.key", dir);
        struct cf_bundle_key k = {.cert = cert, .key = key};
        struct cf_bundle_create_options o = {.keys = &k, .n_keys = 1};
        struct cf_bundle_error err;
        uint8_t *img = make_image(7), *cfb = NULL;
        size_t size = 0;
        CU_ASSERT_EQUAL_FATAL(cf_bundle_create(img, &o, &cfb, &size, &err), 0);
        struct cf_keyring *ours = keyring_of("release"), *theirs = keyring_of("stranger");
        struct trusted_image t;
        char *why = NULL;

        CU_ASSERT_EQUAL(trust_check(ours, false, cfb, size, &t, &why), 0);
        CU_ASSERT_TRUE(t.bundle);
        CU_ASSERT_PTR_EQUAL(t.image, cfb);
        CU_ASSERT_EQUAL(t.info.release, 7);
        CU_ASSERT_STRING_EQUAL(t.signer, "CN=release");

        /* no keyring (allow_unsigned only): a bundle cannot be verified */
        CU_ASSERT_EQUAL(trust_check(NULL, true, cfb, size, &t, &why), -EKEYREJECTED);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "no keyring"));
        free(why);
        /* another keyring */
        CU_ASSERT_EQUAL(trust_check(theirs, false, cfb, size, &t, &why), -EKEYREJECTED);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "bundle refused: trust:"));
        free(why);
        /* the image changed after signing */
        cfb[200] ^= 1;
        CU_ASSERT_EQUAL(trust_check(ours, false, cfb, size, &t, &why), -EKEYREJECTED);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "bundle refused: sha256:"));
        free(why);
        cfb[200] ^= 1;
        /* malformed: truncated */
        CU_ASSERT_EQUAL(trust_check(ours, false, cfb, size - 1, &t, &why), -EBADMSG);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "bundle refused: size:"));
        free(why);

        cf_keyring_free(ours);
        cf_keyring_free(theirs);
        free(cfb);
        free(img);
}

int main(void)
{
        snprintf(dir, sizeof dir, "/tmp/cf-test-trust-XXXXXX");
        if (!mkdtemp(dir))
                return 2;
        static const struct cf_test tests[] = {
            {"plain images: refused unless allow_unsigned, then the full check", test_plain},
            {"bundles: keyring, untrusted, changed image, truncated", test_bundle},
            {NULL, NULL},
        };
        int r = cf_test_run("daemon-trust", tests);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                r = r ? r : 1;
        return r;
}
