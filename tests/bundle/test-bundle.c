/* Unit tests of lib/bundle.c: every check of docs/design.md §6 with its own bad input, against a test PKI
 * made by tests/bundle/mkca.sh with the openssl command in a temp dir. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "bundle.h"
#include "canfleet/lpc-isp.h"
#include "canfleet/crc32.h"
#include "canfleet/sha256.h"
#include "cf-test.h"

static char dir[64];
static struct cf_keyring *keyring;
static uint8_t image[CF_IMAGE_AREA_SIZE];

/* ---- fixture ---------------------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* A valid area image: vector table, a patterned payload, trailer, CRC. */
static void make_image(uint8_t *a, uint16_t hw, uint8_t major, uint8_t minor, uint16_t patch,
                       uint32_t release)
{
        struct cf_image_info i = {
            .magic = CF_IMAGE_MAGIC,
            .layout_version = CF_TRAILER_LAYOUT,
            .hw_id = hw,
            .ver_major = major,
            .ver_minor = minor,
            .ver_patch = patch,
            .release = release,
            .payload_len = 3000,
            .area_size = CF_IMAGE_AREA_SIZE,
            .build_time = 1700000000,
        };
        memset(a, 0xFF, CF_IMAGE_AREA_SIZE);
        put32(a, 0x20020000);
        put32(a + 4, 0x08020199);
        for (uint32_t k = 8; k < i.payload_len; k++)
                a[k] = (uint8_t) (k * 37 + 11);
        cf_sha256(a, i.payload_len, i.payload_sha256);
        cf_image_info_pack(&i, a + CF_TRAILER_OFFSET);
        put32(a + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, a, CF_CRC_OFFSET));
}

static const char *path(const char *name)
{
        static char buf[16][128];
        static int k;
        k = (k + 1) % 16;
        snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
        return buf[k];
}

static char *manifest_for(const uint8_t *a, const char *extra)
{
        struct cf_image_info i;
        uint8_t sha[32];
        char hex[65], *s;

        cf_image_info_parse(a + CF_TRAILER_OFFSET, &i);
        SHA256(a, CF_IMAGE_AREA_SIZE, sha);
        for (int k = 0; k < 32; k++)
                sprintf(hex + 2 * k, "%02x", sha[k]);
        if (asprintf(&s,
                     "{\"format\": \"canfleet-bundle-1\", \"hw_id\": %u, \"version\": \"%u.%u.%u\", "
                     "\"release\": %u, \"image_size\": 262144, \"image_sha256\": \"%s\"%s}",
                     i.hw_id, i.ver_major, i.ver_minor, i.ver_patch, i.release, hex, extra ? extra : "") < 0)
                abort();
        return s;
}

enum {
        F_DETACHED = 1,
        F_NOCERTS = 2,
        F_NO_INTER = 4,
        F_OTHER_ECONTENT = 8,
        F_BAD_SIG_1 = 16, /* spoil signer 1's signature value */
        F_BAD_SIG_2 = 32,
        F_NO_SIGNERS = 64,
        F_NOT_SIGNED = 128, /* a plain id-data ContentInfo */
};

static X509 *read_cert(const char *name)
{
        FILE *f = fopen(path(name), "r");
        CU_ASSERT_FATAL(f != NULL);
        X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        CU_ASSERT_FATAL(c != NULL);
        return c;
}

static EVP_PKEY *read_key(const char *name)
{
        FILE *f = fopen(path(name), "r");
        CU_ASSERT_FATAL(f != NULL);
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        CU_ASSERT_FATAL(k != NULL);
        return k;
}

/* [image][CMS over text, signed by the NULL-terminated signers (mkca.sh names)][len]; the CMS is
 * made with OpenSSL directly, so that every defect can be built. */
static uint8_t *sign_bundle(const uint8_t *a, const char *text, const char *const *signers, int flags,
                            size_t *size)
{
        CMS_ContentInfo *cms;
        BIO *in = BIO_new_mem_buf(text, (int) strlen(text));
        unsigned detached = flags & F_DETACHED ? CMS_DETACHED : 0;

        if (flags & F_NOT_SIGNED) {
                cms = CMS_data_create(in, CMS_BINARY);
        } else {
                cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_BINARY | CMS_PARTIAL | detached);
                CU_ASSERT_FATAL(cms != NULL);
                if (flags & F_OTHER_ECONTENT) {
                        ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1);
                        CU_ASSERT_FATAL(CMS_set1_eContentType(cms, oid) == 1);
                        ASN1_OBJECT_free(oid);
                }
                for (int k = 0; signers && signers[k]; k++) {
                        char c[64], kf[64];
                        snprintf(c, sizeof(c), "%s.crt", signers[k]);
                        snprintf(kf, sizeof(kf), "%s.key", signers[k]);
                        X509 *cert = read_cert(c);
                        EVP_PKEY *key = read_key(kf);
                        CU_ASSERT_FATAL(
                            CMS_add1_signer(cms, cert, key, EVP_sha256(),
                                            CMS_BINARY | (flags & F_NOCERTS ? CMS_NOCERTS : 0)) != NULL);
                        X509_free(cert);
                        EVP_PKEY_free(key);
                }
                if (!(flags & F_NO_INTER) && !(flags & F_NOCERTS)) {
                        X509 *inter = read_cert("inter.crt");
                        CU_ASSERT_FATAL(CMS_add1_cert(cms, inter) == 1);
                        X509_free(inter);
                }
                CU_ASSERT_FATAL(CMS_final(cms, in, NULL, CMS_BINARY | detached) == 1);
        }
        CU_ASSERT_FATAL(cms != NULL);
        /* OpenSSL will not finalise a SignedData without signers: take them out after */
        while ((flags & F_NO_SIGNERS) && sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) > 0)
                sk_CMS_SignerInfo_pop(CMS_get0_SignerInfos(cms)); /* leaked: a test, a few hundred bytes */
        for (int k = 0; k < 2; k++)
                if (flags & (k ? F_BAD_SIG_2 : F_BAD_SIG_1)) {
                        CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), k);
                        ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature(si);
                        ((unsigned char *) ASN1_STRING_get0_data(sig))[ASN1_STRING_length(sig) - 1] ^= 0x01;
                }
        int len = i2d_CMS_ContentInfo(cms, NULL);
        CU_ASSERT_FATAL(len > 0);
        uint8_t *out = malloc(CF_IMAGE_AREA_SIZE + (size_t) len + 8);
        memcpy(out, a, CF_IMAGE_AREA_SIZE);
        unsigned char *p = out + CF_IMAGE_AREA_SIZE;
        CU_ASSERT_FATAL(i2d_CMS_ContentInfo(cms, &p) == len);
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
        *size = CF_IMAGE_AREA_SIZE + (size_t) len + 8;
        CMS_ContentInfo_free(cms);
        BIO_free(in);
        return out;
}

static const char *const SIGN[] = {"sign", NULL};

/* A bundle of the fixture image with its right manifest plus extra keys, signed by signers. */
static uint8_t *good_bundle(const char *extra, const char *const *signers, int flags, size_t *size)
{
        char *m = manifest_for(image, extra);
        uint8_t *b = sign_bundle(image, m, signers, flags, size);
        free(m);
        return b;
}

/* Verify; expect the check (NONE = accepted) and, when given, a piece of the message. */
static void expect(const uint8_t *b, size_t size, enum cf_bundle_check check, const char *msg_part)
{
        struct cf_bundle_error err = {0};
        struct cf_bundle *bundle = NULL;
        int r = cf_bundle_verify(b, size, keyring, &bundle, &err);

        if (check == CF_BUNDLE_CHECK_NONE) {
                if (r != 0)
                        fprintf(stderr, "\n  refused: %s\n", err.message);
                CU_ASSERT_EQUAL(r, 0);
                CU_ASSERT_PTR_NOT_NULL(bundle);
        } else {
                CU_ASSERT_EQUAL(r, cf_bundle_check_errno(check));
                CU_ASSERT_EQUAL(err.check, check);
                CU_ASSERT_PTR_NULL(bundle);
                /* every message starts with its check's name */
                CU_ASSERT_EQUAL(
                    strncmp(err.message, cf_bundle_check_name(check), strlen(cf_bundle_check_name(check))),
                    0);
                if (msg_part && !strstr(err.message, msg_part)) {
                        fprintf(stderr, "\n  message '%s' lacks '%s'\n", err.message, msg_part);
                        CU_FAIL("message");
                }
        }
        cf_bundle_free(bundle);

        /* inspect with the keyring returns what verify does, and a report whenever the size was right */
        struct cf_bundle_error err2 = {0};
        bundle = NULL;
        int r2 = cf_bundle_inspect(b, size, keyring, &bundle, &err2);
        CU_ASSERT_EQUAL(r2, r);
        CU_ASSERT_EQUAL(err2.check, err.check);
        CU_ASSERT_STRING_EQUAL(err2.message, err.message);
        CU_ASSERT((bundle != NULL) == (check != CF_BUNDLE_CHECK_SIZE));
        cf_bundle_free(bundle);
}

static void set_len(uint8_t *b, size_t size, uint64_t len)
{
        for (int i = 0; i < 8; i++)
                b[size - 8 + (size_t) i] = (uint8_t) (len >> (56 - 8 * i));
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_valid(void)
{
        size_t size;
        uint8_t *b = good_bundle(", \"description\": \"nightly\"", SIGN, 0, &size);
        struct cf_bundle_error err;
        struct cf_bundle *bundle = NULL;

        CU_ASSERT_EQUAL_FATAL(cf_bundle_verify(b, size, keyring, &bundle, &err), 0);
        CU_ASSERT_PTR_EQUAL(bundle->image, b);
        CU_ASSERT_EQUAL(bundle->manifest.hw_id, 0x0001);
        CU_ASSERT_EQUAL(bundle->manifest.ver_major, 1);
        CU_ASSERT_EQUAL(bundle->manifest.ver_minor, 4);
        CU_ASSERT_EQUAL(bundle->manifest.ver_patch, 0);
        CU_ASSERT_EQUAL(bundle->manifest.release, 12);
        CU_ASSERT_STRING_EQUAL(bundle->manifest.description, "nightly");
        CU_ASSERT_EQUAL(bundle->info.release, 12);
        CU_ASSERT_EQUAL(bundle->n_signers, 1);
        CU_ASSERT_STRING_EQUAL(bundle->signers[0].subject, "CN=release signer");
        CU_ASSERT_STRING_EQUAL(bundle->signers[0].issuer, "CN=canfleet test intermediate");
        CU_ASSERT_EQUAL(bundle->signers[0].trust, CF_BUNDLE_TRUST_OK);
        CU_ASSERT(bundle->signers[0].signature_ok);
        CU_ASSERT(bundle->signers[0].not_after > bundle->signers[0].not_before);
        CU_ASSERT_EQUAL(bundle->cms_len, size - CF_IMAGE_AREA_SIZE - 8);
        CU_ASSERT(cf_bundle_is_bundle(b, size));
        CU_ASSERT(!cf_bundle_is_bundle(image, sizeof(image)));
        cf_bundle_free(bundle);
        free(b);
}

static void test_size(void)
{
        size_t size;
        uint8_t *b = good_bundle(NULL, SIGN, 0, &size);
        uint64_t len = size - CF_IMAGE_AREA_SIZE - 8;

        /* truncated: too short for image + length, and a cut CMS */
        expect(b, CF_IMAGE_AREA_SIZE + 7, CF_BUNDLE_CHECK_SIZE, "shorter than");
        expect(b, 100, CF_BUNDLE_CHECK_SIZE, "shorter than");
        uint8_t *cut = malloc(size);
        memcpy(cut, b, size - 9);
        set_len(cut, size - 1, len); /* one CMS byte lost, length kept */
        expect(cut, size - 1, CF_BUNDLE_CHECK_SIZE, "truncated");
        free(cut);
        /* length 0 (an image with 8 zero bytes), over 64 KiB, beyond the file */
        set_len(b, size, 0);
        expect(b, size, CF_BUNDLE_CHECK_SIZE, "CMS length is 0");
        set_len(b, size, CF_BUNDLE_CMS_MAX + 1);
        expect(b, size, CF_BUNDLE_CHECK_SIZE, "exceeds 65536");
        set_len(b, size, UINT64_MAX);
        expect(b, size, CF_BUNDLE_CHECK_SIZE, "exceeds");
        set_len(b, size, len + 1);
        expect(b, size, CF_BUNDLE_CHECK_SIZE, "not 262144");
        set_len(b, size, len - 1);
        expect(b, size, CF_BUNDLE_CHECK_SIZE, "extra bytes");
        /* a plain image is no bundle */
        expect(image, sizeof(image), CF_BUNDLE_CHECK_SIZE, NULL);
        free(b);
}

static void test_cms_envelope(void)
{
        size_t size;
        uint8_t *b;
        char *m = manifest_for(image, NULL);

        /* not DER at all */
        b = good_bundle(NULL, SIGN, 0, &size);
        memset(b + CF_IMAGE_AREA_SIZE, 'x', 16);
        expect(b, size, CF_BUNDLE_CHECK_CMS, "not a DER CMS ContentInfo");
        free(b);
        /* a ContentInfo that is not SignedData */
        b = sign_bundle(image, m, NULL, F_NOT_SIGNED, &size);
        expect(b, size, CF_BUNDLE_CHECK_CMS, "not SignedData");
        free(b);
        /* detached: the manifest is not inside */
        b = sign_bundle(image, m, SIGN, F_DETACHED, &size);
        expect(b, size, CF_BUNDLE_CHECK_CMS, "detached");
        free(b);
        /* signed content of another type than id-data */
        b = sign_bundle(image, m, SIGN, F_OTHER_ECONTENT, &size);
        expect(b, size, CF_BUNDLE_CHECK_CMS, "not id-data");
        free(b);
        /* SignedData without a SignerInfo: unsigned */
        b = sign_bundle(image, m, SIGN, F_NO_SIGNERS, &size);
        expect(b, size, CF_BUNDLE_CHECK_CMS, "not signed");
        free(b);
        free(m);
}

static void test_signature(void)
{
        size_t size;
        uint8_t *b;

        /* the signature value spoiled */
        b = good_bundle(NULL, SIGN, F_BAD_SIG_1, &size);
        expect(b, size, CF_BUNDLE_CHECK_SIGNATURE, "signer 1 (CN=release signer) is not valid");
        free(b);
        /* the manifest changed after signing: its digest no longer matches */
        b = good_bundle(NULL, SIGN, 0, &size);
        uint8_t *at = memmem(b + CF_IMAGE_AREA_SIZE, size - CF_IMAGE_AREA_SIZE, "\"release\": 12", 13);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        at[12] = '3';
        expect(b, size, CF_BUNDLE_CHECK_SIGNATURE, "the manifest does not match its signature");
        free(b);
        /* the signer's certificate left out: nothing to check the signature with */
        b = good_bundle(NULL, SIGN, F_NOCERTS, &size);
        expect(b, size, CF_BUNDLE_CHECK_SIGNATURE, "not in the CMS");
        free(b);
}

static void test_two_signers(void)
{
        size_t size;
        uint8_t *b;
        struct cf_bundle *bundle = NULL;
        struct cf_bundle_error err;

        /* one trusted, one from an unrelated CA (a rotation): accepted */
        static const char *const mixed[] = {"other", "sign", NULL};
        b = good_bundle(NULL, mixed, 0, &size);
        CU_ASSERT_EQUAL_FATAL(cf_bundle_verify(b, size, keyring, &bundle, &err), 0);
        CU_ASSERT_EQUAL(bundle->n_signers, 2);
        CU_ASSERT_EQUAL(bundle->signers[0].trust, CF_BUNDLE_TRUST_REFUSED);
        CU_ASSERT_PTR_NOT_NULL(strstr(bundle->signers[0].trust_error, "unable to get local issuer"));
        CU_ASSERT_EQUAL(bundle->signers[1].trust, CF_BUNDLE_TRUST_OK);
        cf_bundle_free(bundle);
        free(b);
        /* both trusted but the second signature bad: refused, naming signer 2 */
        static const char *const both[] = {"sign", "noeku", NULL};
        b = good_bundle(NULL, both, F_BAD_SIG_2, &size);
        expect(b, size, CF_BUNDLE_CHECK_SIGNATURE, "signer 2 (CN=no eku signer) is not valid");
        free(b);
        /* the untrusted one bad: still refused, every signature must be valid */
        b = good_bundle(NULL, mixed, F_BAD_SIG_1, &size);
        expect(b, size, CF_BUNDLE_CHECK_SIGNATURE, "signer 1 (CN=unrelated signer)");
        free(b);
        /* neither trusted: both reasons named */
        static const char *const none[] = {"other", "expired", NULL};
        b = good_bundle(NULL, none, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_TRUST, "signer 2 (CN=expired signer): certificate has expired");
        free(b);
}

static void test_trust(void)
{
        size_t size;
        uint8_t *b;

        static const char *const other[] = {"other", NULL};
        b = good_bundle(NULL, other, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_TRUST,
               "no signer chains to the keyring: signer 1 (CN=unrelated signer): "
               "unable to get local issuer certificate");
        free(b);
        static const char *const expired[] = {"expired", NULL};
        b = good_bundle(NULL, expired, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_TRUST, "certificate has expired");
        free(b);
        /* EKU emailProtection only: refused; no EKU at all: accepted (RAUC #1124) */
        static const char *const email[] = {"email", NULL};
        b = good_bundle(NULL, email, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_TRUST, "extendedKeyUsage does not include codeSigning");
        free(b);
        static const char *const noeku[] = {"noeku", NULL};
        b = good_bundle(NULL, noeku, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_NONE, NULL);
        free(b);
        /* a chain through a certificate that is no CA */
        struct cf_bundle_key subkey[] = {{path("sub.crt"), path("sub.key")}};
        const char *subchain[] = {path("sub-chain.pem")};
        struct cf_bundle_create_options o = {subkey, 1, subchain, 1, NULL};
        struct cf_bundle_error cerr;
        CU_ASSERT_EQUAL_FATAL(cf_bundle_create(image, &o, &b, &size, &cerr), 0);
        expect(b, size, CF_BUNDLE_CHECK_TRUST, "signer 1 (CN=under a leaf): invalid CA certificate");
        free(b);
        /* the intermediate not carried: no chain */
        b = good_bundle(NULL, SIGN, F_NO_INTER, &size);
        expect(b, size, CF_BUNDLE_CHECK_TRUST, "unable to get local issuer certificate");
        /* ... unless the keyring holds the intermediate itself: it is an anchor too */
        struct cf_keyring *k2 = NULL;
        struct cf_bundle_error err;
        struct cf_bundle *bundle = NULL;
        CU_ASSERT_EQUAL_FATAL(cf_keyring_load(path("inter.crt"), &k2, &err), 0);
        CU_ASSERT_EQUAL(cf_bundle_verify(b, size, k2, &bundle, &err), 0);
        cf_bundle_free(bundle);
        cf_keyring_free(k2);
        free(b);
}

static void test_manifest_schema(void)
{
        static const struct {
                const char *json, *msg;
        } bad[] = {
            {"[1, 2]", "not a JSON object"},
            {"\xef\xbb\xbf{}", "byte order mark"},
            {"{\"format\": \"canfleet-bundle-1\"", "not valid JSON"},
            {"{} {}", "not valid JSON"},
            {"{\"hw_id\": 1}", "missing \"format\""},
            {"{\"format\": \"canfleet-bundle-9\"}", "format \"canfleet-bundle-9\""},
            {"{\"format\": \"canfleet-bundle-1\", \"version\": \"1.4.0\"}", "missing \"hw_id\""},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": \"1\"}", "\"hw_id\" is not an integer"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 65536}", "\"hw_id\" 65536 is out of range"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": -1}", "out of range"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1.0}", "not an integer"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1}", "missing \"version\""},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4\"}", "is not X.Y.Z"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.04.0\"}", "is not X.Y.Z"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"256.0.0\"}", "is not X.Y.Z"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4.0\"}",
             "missing \"release\""},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4.0\", \"release\": "
             "4294967296}",
             "out of range"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4.0\", \"release\": 1}",
             "missing \"image_size\""},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4.0\", \"release\": 1, "
             "\"image_size\": 131072}",
             "image_size 131072 is not 262144"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4.0\", \"release\": 1, "
             "\"image_size\": 262144}",
             "missing \"image_sha256\""},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4.0\", \"release\": 1, "
             "\"image_size\": 262144, \"image_sha256\": "
             "\"AB647B5DDF119200023E0A4BDA6C11B587FBDF45BB2DCCA71BF089086D6AD144\"}",
             "not 64 lowercase hex"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4.0\", \"release\": 1, "
             "\"image_size\": 262144, \"image_sha256\": \"ab64\"}",
             "not 64 lowercase hex"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"version\": \"1.4.0\", \"release\": 1, "
             "\"image_size\": 262144, \"image_sha256\": "
             "\"ab647b5ddf119200023e0a4bda6c11b587fbdf45bb2dcca71bf089086d6ad144\", \"description\": 5}",
             "\"description\" is not a string"},
            {"{\"format\": \"canfleet-bundle-1\", \"hw_id\": 1, \"x\": \"\xff\"}", "not valid JSON"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                size_t size;
                uint8_t *b = sign_bundle(image, bad[i].json, SIGN, 0, &size);
                expect(b, size, CF_BUNDLE_CHECK_MANIFEST, bad[i].msg);
                free(b);
        }
        /* the parser alone: a NUL inside, empty */
        struct cf_bundle_manifest m;
        struct cf_bundle_error err;
        CU_ASSERT_EQUAL(cf_bundle_manifest_parse("{}\0", 3, &m, &err), -EINVAL);
        CU_ASSERT_EQUAL(cf_bundle_manifest_parse("", 0, &m, &err), -EINVAL);
}

static void test_manifest_extra_keys(void)
{
        size_t size;
        /* unknown keys of any type are ignored; description may be absent or null */
        uint8_t *b = good_bundle(", \"build\": {\"ci\": [1, 2, {\"x\": null}]}, \"platform\": \"stm32f4\", "
                                 "\"description\": null",
                                 SIGN, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_NONE, NULL);
        free(b);
}

static void test_sha256(void)
{
        size_t size;
        /* one image byte flipped after signing */
        uint8_t *b = good_bundle(NULL, SIGN, 0, &size);
        b[1000] ^= 0x40;
        expect(b, size, CF_BUNDLE_CHECK_SHA256, "the image's sha256");
        free(b);
        /* the manifest names another image's sha256 */
        char *m = manifest_for(image, NULL);
        char *h = strstr(m, "image_sha256\": \"") + 16;
        h[0] = h[0] == '0' ? '1' : '0';
        b = sign_bundle(image, m, SIGN, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_SHA256, "!= manifest image_sha256");
        free(b);
        free(m);
}

static void test_trailer(void)
{
        static uint8_t other[CF_IMAGE_AREA_SIZE];
        size_t size;
        uint8_t *b;
        char *m, *m2;

        /* the manifest made for release 11's image, signed over release 12's */
        make_image(other, 0x0001, 1, 4, 0, 11);
        m = manifest_for(other, NULL);
        uint8_t sha[32];
        char hex[65];
        SHA256(image, sizeof(image), sha);
        for (int k = 0; k < 32; k++)
                sprintf(hex + 2 * k, "%02x", sha[k]);
        memcpy(strstr(m, "image_sha256\": \"") + 16, hex, 64);
        b = sign_bundle(image, m, SIGN, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_TRAILER, "manifest release 11 != image trailer release 12");
        free(b);
        free(m);

        struct {
                uint16_t hw;
                uint8_t a, b;
                uint16_t c;
                const char *msg;
        } cases[] = {
            {0x0002, 1, 4, 0, "manifest hw_id 2 (0x0002) != image trailer hw_id 1 (0x0001)"},
            {0x0001, 1, 3, 0, "manifest version 1.3.0 != image trailer version 1.4.0"},
        };
        for (int i = 0; i < 2; i++) {
                make_image(other, cases[i].hw, cases[i].a, cases[i].b, cases[i].c, 12);
                m2 = manifest_for(other, NULL);
                memcpy(strstr(m2, "image_sha256\": \"") + 16, hex, 64);
                b = sign_bundle(image, m2, SIGN, 0, &size);
                expect(b, size, CF_BUNDLE_CHECK_TRAILER, cases[i].msg);
                free(b);
                free(m2);
        }

        /* no trailer of ours at all (signed as it is) */
        memcpy(other, image, sizeof(other));
        memset(other + CF_TRAILER_OFFSET, 0, 4);
        b = good_bundle(NULL, SIGN, 0, &size);
        free(b);
        m = manifest_for(other, NULL);
        b = sign_bundle(other, m, SIGN, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_TRAILER, "no valid trailer");
        free(b);
        free(m);
}

static void test_crc(void)
{
        static uint8_t bad[CF_IMAGE_AREA_SIZE];
        size_t size;

        /* a padding byte changed, the manifest's sha256 made for it: only the CRC can tell */
        memcpy(bad, image, sizeof(bad));
        bad[0x20000] = 0x00;
        char *m = manifest_for(bad, NULL);
        uint8_t *b = sign_bundle(bad, m, SIGN, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_IMAGE, "CRC32 stored 0x");
        free(b);
        free(m);

        /* the CRC right but the vector table not an application's */
        memcpy(bad, image, sizeof(bad));
        put32(bad, 0xFFFFFFFF);
        put32(bad + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, bad, CF_CRC_OFFSET));
        m = manifest_for(bad, NULL);
        b = sign_bundle(bad, m, SIGN, 0, &size);
        expect(b, size, CF_BUNDLE_CHECK_IMAGE, NULL);
        free(b);
        free(m);
}

static void test_errnos_distinct(void)
{
        for (int a = CF_BUNDLE_CHECK_SIZE; a < _CF_BUNDLE_CHECK_MAX; a++) {
                CU_ASSERT(cf_bundle_check_errno(a) < 0);
                CU_ASSERT(cf_bundle_check_errno(a) != -ENOMEM);
                for (int b = a + 1; b < _CF_BUNDLE_CHECK_MAX; b++) {
                        CU_ASSERT(cf_bundle_check_errno(a) != cf_bundle_check_errno(b));
                        CU_ASSERT(strcmp(cf_bundle_check_name(a), cf_bundle_check_name(b)) != 0);
                }
        }
        CU_ASSERT_EQUAL(cf_bundle_check_errno(CF_BUNDLE_CHECK_NONE), 0);
}

static void test_create(void)
{
        struct cf_bundle_key keys[] = {{path("sign.crt"), path("sign.key")},
                                       {path("noeku.crt"), path("noeku.key")}};
        const char *inter[] = {path("inter.crt")};
        struct cf_bundle_create_options o = {keys, 2, inter, 1, "two signers"};
        struct cf_bundle_error err;
        struct cf_bundle *bundle = NULL;
        uint8_t *b = NULL;
        size_t size = 0;

        int r = cf_bundle_create(image, &o, &b, &size, &err);
        if (r < 0)
                fprintf(stderr, "\n  %s\n", err.message);
        CU_ASSERT_EQUAL_FATAL(r, 0);
        CU_ASSERT_EQUAL_FATAL(cf_bundle_verify(b, size, keyring, &bundle, &err), 0);
        CU_ASSERT_EQUAL(bundle->n_signers, 2);
        CU_ASSERT_STRING_EQUAL(bundle->manifest.description, "two signers");
        CU_ASSERT_EQUAL(memcmp(bundle->image, image, sizeof(image)), 0);
        cf_bundle_free(bundle);
        free(b);

        /* inspect needs no keyring and says what it read */
        o.n_keys = 1;
        o.n_intermediates = 0;
        CU_ASSERT_EQUAL_FATAL(cf_bundle_create(image, &o, &b, &size, &err), 0);
        CU_ASSERT_EQUAL(cf_bundle_inspect(b, size, NULL, &bundle, &err), 0);
        CU_ASSERT_EQUAL(bundle->signers[0].trust, CF_BUNDLE_TRUST_UNCHECKED);
        cf_bundle_free(bundle);
        expect(b, size, CF_BUNDLE_CHECK_TRUST, "unable to get local issuer");
        free(b);

        /* refused inputs */
        struct cf_bundle_key mismatch[] = {{path("sign.crt"), path("email.key")}};
        o.keys = mismatch;
        CU_ASSERT_EQUAL(cf_bundle_create(image, &o, &b, &size, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "does not belong to certificate"));
        struct cf_bundle_key missing[] = {{path("sign.crt"), path("nonexistent.key")}};
        o.keys = missing;
        CU_ASSERT_EQUAL(cf_bundle_create(image, &o, &b, &size, &err), -ENOENT);
        o.keys = keys;
        static uint8_t broken[CF_IMAGE_AREA_SIZE];
        memcpy(broken, image, sizeof(broken));
        broken[5] ^= 1;
        CU_ASSERT_EQUAL(cf_bundle_create(broken, &o, &b, &size, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "not a valid area image"));
}

/* A dual-bank bundle (docs/design.md §9): both links of one application, each checked for its bank. */
static void test_dual_bank(void)
{
        static uint8_t b1[CF_IMAGE_AREA_SIZE], b2[CF_IMAGE_AREA_SIZE], other[CF_IMAGE_AREA_SIZE];
        struct cf_bundle_key keys[] = {{path("sign.crt"), path("sign.key")}};
        const char *inter[] = {path("inter.crt")};
        struct cf_bundle_create_options o = {keys, 1, inter, 1, NULL};
        struct cf_bundle_error err;
        struct cf_bundle *bundle = NULL;
        uint8_t *b = NULL;
        size_t size = 0;

        memcpy(b1, image, sizeof(b1));
        /* the bank-2 link: the same application moved by 1 MB (its reset vector), trailer and CRC again */
        make_image(b2, 0x0001, 1, 4, 0, 12);
        put32(b2 + 4, 0x08120199);
        struct cf_image_info i2;
        cf_image_info_parse(b2 + CF_TRAILER_OFFSET, &i2);
        cf_sha256(b2, i2.payload_len, i2.payload_sha256);
        cf_image_info_pack(&i2, b2 + CF_TRAILER_OFFSET);
        put32(b2 + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, b2, CF_CRC_OFFSET));
        CU_ASSERT_EQUAL(cf_image_link_bank(b2), 2);

        int r = cf_bundle_create_dual(b1, b2, &o, &b, &size, &err);
        if (r < 0)
                fprintf(stderr, "\n  %s\n", err.message);
        CU_ASSERT_EQUAL_FATAL(r, 0);
        CU_ASSERT(cf_bundle_is_bundle(b, size));
        CU_ASSERT_EQUAL_FATAL(cf_bundle_verify(b, size, keyring, &bundle, &err), 0);
        CU_ASSERT_EQUAL(bundle->n_images, 2);
        CU_ASSERT_EQUAL(bundle->manifest.n_images, 2);
        CU_ASSERT_PTR_EQUAL(bundle->image2, b + CF_IMAGE_AREA_SIZE);
        CU_ASSERT_EQUAL(memcmp(bundle->image2, b2, sizeof(b2)), 0);
        CU_ASSERT_EQUAL(bundle->info2.release, 12);
        CU_ASSERT_EQUAL(bundle->cms_len, size - 2 * CF_IMAGE_AREA_SIZE - 8);
        cf_bundle_free(bundle);
        bundle = NULL;

        /* the bank-2 image swapped for a bank-1 link: the signature still holds, the sha256 does not */
        static uint8_t *t;
        t = malloc(size);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        memcpy(t, b, size);
        memcpy(t + CF_IMAGE_AREA_SIZE, b1, CF_IMAGE_AREA_SIZE);
        expect(t, size, CF_BUNDLE_CHECK_SHA256, "bank-2 image");
        /* cut to one image: the size says one image, the manifest two */
        memcpy(t, b, size);
        memmove(t + CF_IMAGE_AREA_SIZE, t + 2 * CF_IMAGE_AREA_SIZE, size - 2 * CF_IMAGE_AREA_SIZE);
        expect(t, size - CF_IMAGE_AREA_SIZE, CF_BUNDLE_CHECK_MANIFEST, "lists 2 images, the file carries 1");
        free(t);
        free(b);

        /* creation refuses links in the wrong banks and links of two applications */
        CU_ASSERT_EQUAL(cf_bundle_create_dual(b2, b1, &o, &b, &size, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "not linked for bank 1"));
        CU_ASSERT_EQUAL(cf_bundle_create_dual(b1, b1, &o, &b, &size, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "not linked for bank 2"));
        make_image(other, 0x0001, 1, 5, 0, 13);
        put32(other + 4, 0x08120199);
        cf_image_info_parse(other + CF_TRAILER_OFFSET, &i2);
        cf_sha256(other, i2.payload_len, i2.payload_sha256);
        cf_image_info_pack(&i2, other + CF_TRAILER_OFFSET);
        put32(other + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, other, CF_CRC_OFFSET));
        CU_ASSERT_EQUAL(cf_bundle_create_dual(b1, other, &o, &b, &size, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "not of one application"));

        /* a dual-bank manifest over a single image: refused by the size/manifest agreement */
        struct cf_bundle_manifest m;
        const char *bad = "{\"format\": \"canfleet-bundle-2\", \"hw_id\": 1, \"version\": \"1.4.0\", "
                          "\"release\": 12, \"image_size\": 262144, \"layout\": \"dual-bank\", \"images\": "
                          "[{\"bank\": 2, \"sha256\": \"00\"}]}";
        CU_ASSERT_EQUAL(cf_bundle_manifest_parse(bad, strlen(bad), &m, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "array of 2 objects"));
}

/* A serial node's raw image (docs/design.md §8): any size up to 512 KB, target and part in the manifest,
 * the target's image check instead of the trailer's; the size check still catches a cut bundle. */
static void test_serial_target(void)
{
        struct cf_bundle_key keys[] = {{path("sign.crt"), path("sign.key")}};
        const char *inter[] = {path("inter.crt")};
        struct cf_bundle_create_options o = {keys, 1, inter, 1, NULL};
        struct cf_bundle_error err;
        struct cf_bundle *bundle = NULL;
        static uint8_t raw[65536];
        uint8_t *b = NULL;
        size_t size = 0;

        for (size_t i = 0; i < sizeof raw; i++)
                raw[i] = (uint8_t) (i * 13 + 1);
        cf_lpc_vector_checksum_fix(raw, sizeof raw);
        struct cf_bundle_target t = {"lpc-isp", "0x26013F37", "3.1.0", 4};
        CU_ASSERT_EQUAL_FATAL(cf_bundle_create_raw(raw, sizeof raw, &t, &o, &b, &size, &err), 0);
        CU_ASSERT_TRUE(cf_bundle_is_bundle(b, size));
        int r = cf_bundle_verify(b, size, keyring, &bundle, &err);
        if (r < 0)
                fprintf(stderr, "\n  %s\n", err.message);
        CU_ASSERT_EQUAL_FATAL(r, 0);
        CU_ASSERT_STRING_EQUAL(bundle->manifest.target, "lpc-isp");
        CU_ASSERT_STRING_EQUAL(bundle->manifest.part_id, "0x26013F37");
        CU_ASSERT_EQUAL(bundle->manifest.release, 4);
        CU_ASSERT_EQUAL(bundle->image_size, sizeof raw);
        CU_ASSERT_EQUAL(memcmp(bundle->image, raw, sizeof raw), 0);
        cf_bundle_free(bundle);
        /* one byte lost at the end: the length no longer frames a CMS */
        CU_ASSERT_FALSE(cf_bundle_is_bundle(b, size - 1));
        expect(b, size - 1, CF_BUNDLE_CHECK_SIZE, NULL);
        free(b);

        /* the vector checksum is the LPC image's check, at creation and at verification */
        raw[0] ^= 1;
        CU_ASSERT_EQUAL(cf_bundle_create_raw(raw, sizeof raw, &t, &o, &b, &size, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "vector table checksum"));
        raw[0] ^= 1;
        /* an unknown part and an unknown target are refused */
        struct cf_bundle_target bad = {"lpc-isp", "LPC1768", "1.0.0", 0};
        CU_ASSERT_EQUAL(cf_bundle_create_raw(raw, sizeof raw, &bad, &o, &b, &size, &err), -EINVAL);
        char part[32];
        uint32_t flash = 0;
        CU_ASSERT_EQUAL(cf_bundle_part_resolve("lpc-isp", "lpc1768", part, sizeof part, &flash), 0);
        CU_ASSERT_STRING_EQUAL(part, "0x26013F37");
        CU_ASSERT_EQUAL(flash, 512u * 1024u);
        CU_ASSERT_EQUAL(cf_bundle_part_resolve("lpc-isp", "0x26113F37", part, sizeof part, NULL), 0);
        CU_ASSERT_STRING_EQUAL(part, "0x26113F37");
        CU_ASSERT_EQUAL(cf_bundle_part_resolve("lpc-isp", "LPC2148", part, sizeof part, NULL), -EINVAL);
        CU_ASSERT_EQUAL(cf_bundle_part_resolve("adi-uart", "aducm360", part, sizeof part, &flash), 0);
        CU_ASSERT_STRING_EQUAL(part, "ADuCM360");
        CU_ASSERT_EQUAL(flash, 128u * 1024u);

        /* the manifest: a target's part_id is required, and a target must be one of ours */
        struct cf_bundle_manifest m;
        const char *j = "{\"format\": \"canfleet-bundle-1\", \"target\": \"adi-uart\", \"version\": \"1.0.0\", "
                        "\"release\": 1, \"image_size\": 100, \"image_sha256\": "
                        "\"0000000000000000000000000000000000000000000000000000000000000000\"}";
        CU_ASSERT_EQUAL(cf_bundle_manifest_parse(j, strlen(j), &m, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "missing \"part_id\""));
        const char *k = "{\"format\": \"canfleet-bundle-1\", \"target\": \"stm32f7\", \"part_id\": \"x\", "
                        "\"version\": \"1.0.0\", \"release\": 1, \"image_size\": 100, \"image_sha256\": "
                        "\"0000000000000000000000000000000000000000000000000000000000000000\"}";
        CU_ASSERT_EQUAL(cf_bundle_manifest_parse(k, strlen(k), &m, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "target \"stm32f7\" is not"));
}

static void test_keyring(void)
{
        struct cf_keyring *k = NULL;
        struct cf_bundle_error err;

        CU_ASSERT_EQUAL(cf_keyring_load(path("nonexistent.pem"), &k, &err), -ENOENT);
        FILE *f = fopen(path("empty.pem"), "w");
        fclose(f);
        CU_ASSERT_EQUAL(cf_keyring_load(path("empty.pem"), &k, &err), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "holds no PEM certificate"));
        CU_ASSERT_EQUAL(cf_keyring_load(path("sign.key"), &k, &err), -EINVAL);
        /* two anchors in one file */
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "cat %s %s > %s", path("root.crt"), path("other-root.crt"),
                 path("two.pem"));
        CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
        CU_ASSERT_EQUAL_FATAL(cf_keyring_load(path("two.pem"), &k, &err), 0);
        CU_ASSERT_EQUAL(cf_keyring_count(k), 2);
        size_t size;
        static const char *const other[] = {"other", NULL};
        uint8_t *b = good_bundle(NULL, other, 0, &size);
        struct cf_bundle *bundle = NULL;
        CU_ASSERT_EQUAL(cf_bundle_verify(b, size, k, &bundle, &err), 0);
        cf_bundle_free(bundle);
        free(b);
        cf_keyring_free(k);
}

/* A figure for the report, never a pass/fail criterion: the time of one whole verification. */
static void test_figure_time(void)
{
        static const char *const rsa[] = {"noeku", NULL};
        const char *const *signers[] = {SIGN, rsa};
        const char *names[] = {"ECDSA P-256", "RSA 2048"};

        for (int k = 0; k < 2; k++) {
                size_t size;
                uint8_t *b = good_bundle(NULL, signers[k], 0, &size);
                struct timespec t0, t1;
                enum { N = 50 };
                clock_gettime(CLOCK_MONOTONIC, &t0);
                for (int i = 0; i < N; i++) {
                        struct cf_bundle *bundle = NULL;
                        struct cf_bundle_error err;
                        CU_ASSERT_EQUAL(cf_bundle_verify(b, size, keyring, &bundle, &err), 0);
                        cf_bundle_free(bundle);
                }
                clock_gettime(CLOCK_MONOTONIC, &t1);
                double ms =
                    ((double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6) / N;
                printf("\n  figure: cf_bundle_verify of a %zu-byte bundle, %s signer: %.2f ms", size,
                       names[k], ms);
                free(b);
        }
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"valid bundle", test_valid},
            {"size: truncated, length 0, > 64 KiB, beyond the file", test_size},
            {"cms: garbage, not SignedData, detached, other content, unsigned", test_cms_envelope},
            {"signature: spoiled, manifest changed, certificate missing", test_signature},
            {"two signers: one untrusted accepted, one bad refused", test_two_signers},
            {"trust: unknown CA, expired, EKU, intermediates", test_trust},
            {"manifest: schema errors", test_manifest_schema},
            {"manifest: unknown keys ignored", test_manifest_extra_keys},
            {"sha256: image byte flipped, other sha", test_sha256},
            {"trailer: release, hw_id, version, no trailer", test_trailer},
            {"image: CRC, vectors", test_crc},
            {"one errno per check", test_errnos_distinct},
            {"create and inspect", test_create},
            {"dual-bank bundle: both links, each checked for its bank", test_dual_bank},
            {"serial targets: raw images (docs/design.md §8)", test_serial_target},
            {"keyring files", test_keyring},
            {"figure: verification time", test_figure_time},
            {NULL, NULL},
        };
        const char *mkca = getenv("CANFLEET_MKCA");
        char cmd[512];
        struct cf_bundle_error err;

        if (!mkca) {
                fprintf(stderr, "CANFLEET_MKCA is not set (meson test sets it)\n");
                return 2;
        }
        snprintf(dir, sizeof(dir), "/tmp/canfleet-bundle-XXXXXX");
        if (!mkdtemp(dir))
                return 2;
        snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", mkca, dir);
        if (system(cmd) != 0) {
                fprintf(stderr, "%s failed\n", cmd);
                return 2;
        }
        if (cf_keyring_load(path("keyring.pem"), &keyring, &err) < 0) {
                fprintf(stderr, "%s\n", err.message);
                return 2;
        }
        make_image(image, 0x0001, 1, 4, 0, 12);

        int r = cf_test_run("bundle", tests);
        cf_keyring_free(keyring);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                r = r ? r : 2;
        return r;
}
