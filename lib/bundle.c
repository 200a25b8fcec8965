/* Signed bundles: parse, verify (docs/design.md §6, in order) and create; the only user of OpenSSL's CMS. */

/* The pkcs11 engine is OpenSSL's ENGINE API, deprecated in 3.0 but the way Debian 12's libp11 is
 * reached (its provider came later); nothing else here uses deprecated calls. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bundle.h"
#include "canfleet/adi-uart.h"
#include "canfleet/layout.h"
#include "canfleet/lpc-isp.h"
#include "canfleet/crc32.h"
#include "canfleet/sha256.h"

/* A bundle carrying more signers than a key rotation needs is refused before any signature is
 * checked: each one costs a public-key operation. */
#define MAX_SIGNERS 8

static const struct {
        const char *name;
        int err;
} checks[_CF_BUNDLE_CHECK_MAX] = {
    [CF_BUNDLE_CHECK_NONE] = {"none", 0},
    [CF_BUNDLE_CHECK_SIZE] = {"size", -EMSGSIZE},
    [CF_BUNDLE_CHECK_CMS] = {"cms", -EPROTO},
    [CF_BUNDLE_CHECK_SIGNATURE] = {"signature", -EKEYREJECTED},
    [CF_BUNDLE_CHECK_TRUST] = {"trust", -ENOKEY},
    [CF_BUNDLE_CHECK_MANIFEST] = {"manifest", -EINVAL},
    [CF_BUNDLE_CHECK_SHA256] = {"sha256", -EUCLEAN},
    [CF_BUNDLE_CHECK_TRAILER] = {"trailer", -ENOEXEC},
    [CF_BUNDLE_CHECK_IMAGE] = {"image", -EBADMSG},
};

const char *cf_bundle_check_name(enum cf_bundle_check check)
{
        return check >= 0 && check < _CF_BUNDLE_CHECK_MAX ? checks[check].name : "none";
}

int cf_bundle_check_errno(enum cf_bundle_check check)
{
        return check >= 0 && check < _CF_BUNDLE_CHECK_MAX ? checks[check].err : 0;
}

/* Fill err as "CHECK: message" and return the check's errno. */
static int __attribute__((format(printf, 3, 4)))
fail(struct cf_bundle_error *err, enum cf_bundle_check check, const char *fmt, ...)
{
        va_list ap;

        if (err) {
                int n = snprintf(err->message, sizeof(err->message), "%s: ", cf_bundle_check_name(check));
                va_start(ap, fmt);
                vsnprintf(err->message + n, sizeof(err->message) - (size_t) n, fmt, ap);
                va_end(ap);
                err->check = check;
        }
        return cf_bundle_check_errno(check);
}

/* A failure that is no check's (memory, files): the errno given. */
static int __attribute__((format(printf, 3, 4)))
fail_errno(struct cf_bundle_error *err, int r, const char *fmt, ...)
{
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
                err->check = CF_BUNDLE_CHECK_NONE;
        }
        return r;
}

/* OpenSSL's reason for the latest error on this thread's queue, then the queue emptied so that the
 * next call starts clean. */
static const char *ossl_reason(char *buf, size_t len)
{
        unsigned long e = ERR_peek_last_error();
        const char *r = e ? ERR_reason_error_string(e) : NULL;

        if (r)
                snprintf(buf, len, "%s", r);
        else if (e)
                ERR_error_string_n(e, buf, len);
        else
                snprintf(buf, len, "unknown OpenSSL error");
        ERR_clear_error();
        return buf;
}

static uint64_t be64(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

static void hexstr(const uint8_t *p, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = '\0';
}

/* ---- manifest --------------------------------------------------------------------------------- */

void cf_bundle_manifest_clear(struct cf_bundle_manifest *m)
{
        free(m->description);
        memset(m, 0, sizeof(*m));
}

static int manifest_uint(struct json_object *o, const char *key, uint64_t max, uint64_t *ret,
                         struct cf_bundle_error *err)
{
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return fail(err, CF_BUNDLE_CHECK_MANIFEST, "missing \"%s\"", key);
        if (!json_object_is_type(v, json_type_int))
                return fail(err, CF_BUNDLE_CHECK_MANIFEST, "\"%s\" is not an integer", key);
        /* json-c keeps integers above INT64_MAX as unsigned: read the sign first, then the value */
        if (json_object_get_int64(v) < 0 || json_object_get_uint64(v) > max)
                return fail(err, CF_BUNDLE_CHECK_MANIFEST, "\"%s\" %s is out of range 0-%" PRIu64, key,
                            json_object_to_json_string(v), max);
        *ret = json_object_get_uint64(v);
        return 0;
}

static int manifest_string(struct json_object *o, const char *key, bool required, const char **ret,
                           struct cf_bundle_error *err)
{
        struct json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || (!required && json_object_is_type(v, json_type_null)))
                return required ? fail(err, CF_BUNDLE_CHECK_MANIFEST, "missing \"%s\"", key) : 0;
        if (!json_object_is_type(v, json_type_string))
                return fail(err, CF_BUNDLE_CHECK_MANIFEST, "\"%s\" is not a string", key);
        *ret = json_object_get_string(v);
        return 0;
}

/* One decimal number of at most max, no sign, no leading zero; *p advanced past it. */
static bool version_part(const char **p, unsigned max, unsigned *ret)
{
        const char *s = *p;
        unsigned v = 0;

        if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
                return false;
        for (; *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (unsigned) (*s - '0');
                if (v > max)
                        return false;
        }
        *p = s;
        *ret = v;
        return true;
}

static bool parse_version(const char *s, struct cf_bundle_manifest *m)
{
        unsigned a, b, c;

        if (!version_part(&s, UINT8_MAX, &a) || *s++ != '.' || !version_part(&s, UINT8_MAX, &b) ||
            *s++ != '.' || !version_part(&s, UINT16_MAX, &c) || *s != '\0')
                return false;
        m->ver_major = (uint8_t) a;
        m->ver_minor = (uint8_t) b;
        m->ver_patch = (uint16_t) c;
        return true;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static bool parse_sha(const char *s, uint8_t out[32])
{
        bool hex_ok = strlen(s) == 64;
        for (size_t i = 0; hex_ok && i < 32; i++) {
                int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
                hex_ok = hi >= 0 && lo >= 0;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return hex_ok;
}

/* A dual-bank manifest's "layout" and "images": exactly the two links, bank 1's first (the file's order). */
static int manifest_images(struct json_object *o, struct cf_bundle_manifest *out,
                           struct cf_bundle_error *err)
{
        const char *s;
        struct json_object *a;
        int r;

        if ((r = manifest_string(o, "layout", true, &s, err)) < 0)
                return r;
        if (strcmp(s, CF_BUNDLE_LAYOUT_DUAL) != 0)
                return fail(err, CF_BUNDLE_CHECK_MANIFEST,
                            "layout \"%.64s\" is not \"" CF_BUNDLE_LAYOUT_DUAL "\"", s);
        if (!json_object_object_get_ex(o, "images", &a))
                return fail(err, CF_BUNDLE_CHECK_MANIFEST, "\"images\" is missing");
        if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != 2u)
                return fail(
                    err, CF_BUNDLE_CHECK_MANIFEST,
                    "\"images\" must be an array of 2 objects: the bank-1 link, then the bank-2 link");
        for (size_t i = 0; i < 2u; i++) {
                struct json_object *e = json_object_array_get_idx(a, i);
                uint64_t bank;
                if (!json_object_is_type(e, json_type_object))
                        return fail(err, CF_BUNDLE_CHECK_MANIFEST, "images[%zu] is not an object", i);
                if ((r = manifest_uint(e, "bank", 2u, &bank, err)) < 0)
                        return r;
                if (bank != i + 1)
                        return fail(err, CF_BUNDLE_CHECK_MANIFEST,
                                    "images[%zu] is for bank %" PRIu64
                                    ", expected bank %zu (bank 1's link first)",
                                    i, bank, i + 1);
                if ((r = manifest_string(e, "sha256", true, &s, err)) < 0)
                        return r;
                if (!parse_sha(s, i == 0 ? out->image_sha256 : out->image2_sha256))
                        return fail(err, CF_BUNDLE_CHECK_MANIFEST,
                                    "images[%zu].sha256 \"%.80s\" is not 64 lowercase hex digits", i, s);
        }
        return 0;
}

int cf_bundle_manifest_parse(const char *json, size_t len, struct cf_bundle_manifest *m,
                             struct cf_bundle_error *err)
{
        struct cf_bundle_manifest out = {0};
        struct json_object *o = NULL;
        const char *s;
        uint64_t v;
        int r;

        memset(m, 0, sizeof(*m));
        if (len == 0)
                return fail(err, CF_BUNDLE_CHECK_MANIFEST, "empty");
        if (memchr(json, '\0', len))
                return fail(err, CF_BUNDLE_CHECK_MANIFEST,
                            "contains a NUL byte; it must be UTF-8 JSON text");
        if (len >= 3 && memcmp(json, "\xef\xbb\xbf", 3) == 0)
                return fail(err, CF_BUNDLE_CHECK_MANIFEST,
                            "starts with a UTF-8 byte order mark; save it without");
        if (len > INT32_MAX)
                return fail(err, CF_BUNDLE_CHECK_MANIFEST, "too long");

        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return fail_errno(err, -ENOMEM, "out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, json, (int) len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                return fail(err, CF_BUNDLE_CHECK_MANIFEST, "not valid JSON: %s",
                            jerr == json_tokener_continue ? "unexpected end of text"
                                                          : json_tokener_error_desc(jerr));
        }
        for (; used < len; used++)
                if (!strchr(" \t\r\n", json[used])) {
                        r = fail(err, CF_BUNDLE_CHECK_MANIFEST, "text after the JSON object (offset %zu)",
                                 used);
                        goto out;
                }
        if (!json_object_is_type(o, json_type_object)) {
                r = fail(err, CF_BUNDLE_CHECK_MANIFEST, "not a JSON object");
                goto out;
        }

        if ((r = manifest_string(o, "format", true, &s, err)) < 0)
                goto out;
        if (strcmp(s, CF_BUNDLE_FORMAT) == 0)
                out.n_images = 1;
        else if (strcmp(s, CF_BUNDLE_FORMAT_DUAL) == 0)
                out.n_images = 2;
        else {
                r = fail(err, CF_BUNDLE_CHECK_MANIFEST,
                         "format \"%.64s\" is not \"" CF_BUNDLE_FORMAT "\" (or \"" CF_BUNDLE_FORMAT_DUAL
                         "\" for a dual-bank bundle)",
                         s);
                goto out;
        }
        if ((r = manifest_string(o, "target", false, &s, err)) < 0)
                goto out;
        if (s) {
                if (strcmp(s, "lpc-isp") != 0 && strcmp(s, "adi-uart") != 0) {
                        r = fail(err, CF_BUNDLE_CHECK_MANIFEST, "target \"%.64s\" is not \"lpc-isp\" or \"adi-uart\"",
                                 s);
                        goto out;
                }
                snprintf(out.target, sizeof out.target, "%s", s);
                if ((r = manifest_string(o, "part_id", true, &s, err)) < 0)
                        goto out;
                if (!cf_bundle_part_id_valid(out.target, s)) {
                        r = fail(err, CF_BUNDLE_CHECK_MANIFEST, "part_id \"%.64s\" is not %s", s,
                                 strcmp(out.target, "lpc-isp") == 0
                                     ? "\"0x\" and 8 hex digits (the part id J answers)"
                                     : "1 to 15 printable characters (the ID packet's product identifier)");
                        goto out;
                }
                snprintf(out.part_id, sizeof out.part_id, "%s", s);
                if (out.n_images == 2) {
                        r = fail(err, CF_BUNDLE_CHECK_MANIFEST,
                                 "a dual-bank bundle (" CF_BUNDLE_FORMAT_DUAL ") has no serial target");
                        goto out;
                }
        }
        if (out.target[0] && !json_object_object_get_ex(o, "hw_id", NULL))
                v = 0; /* a serial target has no hardware id of ours: the part id says what it is */
        else if ((r = manifest_uint(o, "hw_id", UINT16_MAX, &v, err)) < 0)
                goto out;
        out.hw_id = (uint16_t) v;
        if ((r = manifest_string(o, "version", true, &s, err)) < 0)
                goto out;
        if (!parse_version(s, &out)) {
                r = fail(
                    err, CF_BUNDLE_CHECK_MANIFEST,
                    "version \"%.64s\" is not X.Y.Z (decimal without leading zeros; X, Y 0-255, Z 0-65535)",
                    s);
                goto out;
        }
        if ((r = manifest_uint(o, "release", UINT32_MAX, &v, err)) < 0)
                goto out;
        out.release = (uint32_t) v;
        if ((r = manifest_uint(o, "image_size", UINT32_MAX, &v, err)) < 0)
                goto out;
        if (out.target[0] && (v == 0 || v > CF_BUNDLE_RAW_MAX)) {
                r = fail(err, CF_BUNDLE_CHECK_MANIFEST, "image_size %" PRIu64 " is not 1-%u (a raw %s image)", v,
                         CF_BUNDLE_RAW_MAX, out.target);
                goto out;
        }
        if (!out.target[0] && v != CF_IMAGE_AREA_SIZE) {
                r = fail(err, CF_BUNDLE_CHECK_MANIFEST,
                         "image_size %" PRIu64 " is not %u (a 256 KB area image)", v, CF_IMAGE_AREA_SIZE);
                goto out;
        }
        out.image_size = (uint32_t) v;
        if (out.n_images == 2) {
                if ((r = manifest_images(o, &out, err)) < 0)
                        goto out;
        } else {
                if ((r = manifest_string(o, "image_sha256", true, &s, err)) < 0)
                        goto out;
                if (!parse_sha(s, out.image_sha256)) {
                        r = fail(err, CF_BUNDLE_CHECK_MANIFEST,
                                 "image_sha256 \"%.80s\" is not 64 lowercase hex digits", s);
                        goto out;
                }
        }
        if ((r = manifest_string(o, "description", false, &s, err)) < 0)
                goto out;
        if (s && !(out.description = strdup(s))) {
                r = fail_errno(err, -ENOMEM, "out of memory");
                goto out;
        }
        *m = out;
        r = 0;
out:
        json_object_put(o);
        return r;
}

char *cf_bundle_manifest_format(const struct cf_image_info *info, const uint8_t image_sha256[32],
                                const char *description)
{
        char version[24], sha[65];
        char *ret = NULL;

        snprintf(version, sizeof(version), "%u.%u.%u", info->ver_major, info->ver_minor, info->ver_patch);
        hexstr(image_sha256, 32, sha);
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        /* json-c keeps insertion order: the keys come out as docs/design.md lists them */
        if (json_object_object_add(o, "format", json_object_new_string(CF_BUNDLE_FORMAT)) < 0 ||
            json_object_object_add(o, "hw_id", json_object_new_int(info->hw_id)) < 0 ||
            json_object_object_add(o, "version", json_object_new_string(version)) < 0 ||
            json_object_object_add(o, "release", json_object_new_int64(info->release)) < 0 ||
            json_object_object_add(o, "image_size", json_object_new_int64(CF_IMAGE_AREA_SIZE)) < 0 ||
            json_object_object_add(o, "image_sha256", json_object_new_string(sha)) < 0 ||
            (description &&
             json_object_object_add(o, "description", json_object_new_string(description)) < 0))
                goto out;
        const char *s =
            json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (s)
                ret = strdup(s);
out:
        json_object_put(o);
        return ret;
}

char *cf_bundle_manifest_format_dual(const struct cf_image_info *info, const uint8_t sha1[32],
                                     const uint8_t sha2[32], const char *description)
{
        char version[24], hex[2][65];
        char *ret = NULL;

        snprintf(version, sizeof(version), "%u.%u.%u", info->ver_major, info->ver_minor, info->ver_patch);
        hexstr(sha1, 32, hex[0]);
        hexstr(sha2, 32, hex[1]);
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        if (!o || !a) {
                json_object_put(o);
                json_object_put(a);
                return NULL;
        }
        for (unsigned i = 0; i < 2u; i++) {
                struct json_object *e = json_object_new_object();
                if (!e || json_object_array_add(a, e) < 0) {
                        json_object_put(e);
                        goto out;
                }
                if (json_object_object_add(e, "bank", json_object_new_int((int) i + 1)) < 0 ||
                    json_object_object_add(e, "sha256", json_object_new_string(hex[i])) < 0)
                        goto out;
        }
        if (json_object_object_add(o, "format", json_object_new_string(CF_BUNDLE_FORMAT_DUAL)) < 0 ||
            json_object_object_add(o, "hw_id", json_object_new_int(info->hw_id)) < 0 ||
            json_object_object_add(o, "version", json_object_new_string(version)) < 0 ||
            json_object_object_add(o, "release", json_object_new_int64(info->release)) < 0 ||
            json_object_object_add(o, "image_size", json_object_new_int64(CF_IMAGE_AREA_SIZE)) < 0 ||
            json_object_object_add(o, "layout", json_object_new_string(CF_BUNDLE_LAYOUT_DUAL)) < 0)
                goto out;
        if (json_object_object_add(o, "images", a) < 0)
                goto out;
        a = NULL;
        if (description && json_object_object_add(o, "description", json_object_new_string(description)) < 0)
                goto out;
        const char *s =
            json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (s)
                ret = strdup(s);
out:
        json_object_put(a);
        json_object_put(o);
        return ret;
}

/* ---- keyring ---------------------------------------------------------------------------------- */

struct cf_keyring {
        X509_STORE *store;
        size_t count;
};

struct cf_keyring *cf_keyring_free(struct cf_keyring *k)
{
        if (k) {
                X509_STORE_free(k->store);
                free(k);
        }
        return NULL;
}

size_t cf_keyring_count(const struct cf_keyring *k)
{
        return k ? k->count : 0;
}

/* Read the anchors from in; path only names the keyring in messages. */
static int keyring_read(BIO *in, const char *path, struct cf_keyring **ret, struct cf_bundle_error *err)
{
        char why[256];
        struct cf_keyring *k = calloc(1, sizeof(*k));
        X509 *c = NULL;
        int r;

        if (!k)
                return fail_errno(err, -ENOMEM, "out of memory");
        k->store = X509_STORE_new();
        if (!k->store) {
                r = fail_errno(err, -ENOMEM, "out of memory");
                goto out;
        }
        while ((c = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
                if (!X509_STORE_add_cert(k->store, c)) {
                        unsigned long e = ERR_peek_last_error();
                        /* the same anchor twice is harmless */
                        if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
                                r = fail_errno(err, -EINVAL, "keyring '%s': certificate %zu: %s", path,
                                               k->count + 1, ossl_reason(why, sizeof(why)));
                                goto out;
                        }
                        ERR_clear_error();
                }
                X509_free(c);
                c = NULL;
                k->count++;
        }
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                ERR_clear_error(); /* the end of the file */
        else if (e) {
                r = fail_errno(err, -EINVAL, "keyring '%s': certificate %zu is not valid PEM: %s", path,
                               k->count + 1, ossl_reason(why, sizeof(why)));
                goto out;
        }
        if (k->count == 0) {
                r = fail_errno(err, -EINVAL, "keyring '%s' holds no PEM certificate", path);
                goto out;
        }
        /* every certificate of the keyring is an anchor, self-signed or not */
        X509_STORE_set_flags(k->store, X509_V_FLAG_PARTIAL_CHAIN);
        *ret = k;
        k = NULL;
        r = 0;
out:
        X509_free(c);
        cf_keyring_free(k);
        return r;
}

int cf_keyring_load(const char *path, struct cf_keyring **ret, struct cf_bundle_error *err)
{
        BIO *in = BIO_new_file(path, "r");
        if (!in) {
                int r = errno > 0 ? -errno : -EIO;
                ERR_clear_error();
                return fail_errno(err, r, "cannot read keyring '%s': %s", path, strerror(-r));
        }
        int r = keyring_read(in, path, ret, err);
        BIO_free(in);
        return r;
}

int cf_keyring_load_pem(const char *path, const void *pem, size_t len, struct cf_keyring **ret,
                        struct cf_bundle_error *err)
{
        if (len > INT_MAX)
                return fail_errno(err, -EFBIG, "keyring '%s' is too large", path);
        BIO *in = BIO_new_mem_buf(pem, (int) len);
        if (!in)
                return fail_errno(err, -ENOMEM, "out of memory");
        int r = keyring_read(in, path, ret, err);
        BIO_free(in);
        return r;
}

/* ---- verification ----------------------------------------------------------------------------- */

static void signer_clear(struct cf_bundle_signer *s)
{
        free(s->subject);
        free(s->issuer);
        free(s->trust_error);
}

struct cf_bundle *cf_bundle_free(struct cf_bundle *b)
{
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->n_signers; i++)
                signer_clear(&b->signers[i]);
        free(b->signers);
        cf_bundle_manifest_clear(&b->manifest);
        free(b);
        return NULL;
}

static char *name_string(const X509_NAME *n)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *ret = NULL, *p;

        if (!b)
                return NULL;
        if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
                long len = BIO_get_mem_data(b, &p);
                ret = strndup(len > 0 ? p : "", len > 0 ? (size_t) len : 0);
        }
        BIO_free(b);
        return ret;
}

static time_t asn1_time(const ASN1_TIME *t)
{
        struct tm tm;
        return t && ASN1_TIME_to_tm(t, &tm) ? timegm(&tm) : 0;
}

static int signer_describe(X509 *c, struct cf_bundle_signer *s)
{
        s->subject = name_string(X509_get_subject_name(c));
        s->issuer = name_string(X509_get_issuer_name(c));
        if (!s->subject || !s->issuer)
                return -ENOMEM;
        const ASN1_INTEGER *serial = X509_get0_serialNumber(c);
        BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        char *h = bn ? BN_bn2hex(bn) : NULL;
        snprintf(s->serial, sizeof(s->serial), "%s", h ? h : "?");
        OPENSSL_free(h);
        BN_free(bn);
        s->not_before = asn1_time(X509_get0_notBefore(c));
        s->not_after = asn1_time(X509_get0_notAfter(c));
        return 0;
}

/* "signer 2 (CN=...)" */
static const char *signer_label(const struct cf_bundle *b, size_t i, char *buf, size_t len)
{
        const char *subj = b->signers[i].subject;
        snprintf(buf, len, "signer %zu (%s)", i + 1, subj && *subj ? subj : "no certificate");
        return buf;
}

/* An EKU, where present, must allow code signing; a signer's keyUsage, where present, digital
 * signatures. OpenSSL 3.0 has no code-signing purpose, and its S/MIME purpose refuses code-signing
 * certificates (RAUC #1124), so the chain is built without a purpose and this is checked on it. */
static const char *chain_usage_error(STACK_OF(X509) * chain)
{
        int n = sk_X509_num(chain);

        for (int i = 0; i < n; i++) {
                X509 *c = sk_X509_value(chain, i);
                /* the anchor is trusted as configured; a leaf that is its own anchor is still a signer */
                if (i > 0 && i == n - 1)
                        break;
                uint32_t flags = X509_get_extension_flags(c);
                if ((flags & EXFLAG_XKUSAGE) &&
                    !(X509_get_extended_key_usage(c) & (XKU_CODE_SIGN | XKU_ANYEKU)))
                        return i == 0 ? "its extendedKeyUsage does not include codeSigning"
                                      : "an intermediate's extendedKeyUsage does not include codeSigning";
                if (i == 0 && (flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(c) & KU_DIGITAL_SIGNATURE))
                        return "its keyUsage does not include digitalSignature";
        }
        return NULL;
}

static int check_trust(struct cf_bundle *b, CMS_ContentInfo *cms, const struct cf_keyring *keyring,
                       X509 **signer_certs, struct cf_bundle_error *err)
{
        STACK_OF(X509) *certs = CMS_get1_certs(cms);
        char reasons[768] = "", label[320];
        size_t used = 0;
        bool trusted = false;
        int r = 0;

        for (size_t i = 0; i < b->n_signers; i++) {
                struct cf_bundle_signer *s = &b->signers[i];
                const char *why = NULL;
                X509_STORE_CTX *ctx = X509_STORE_CTX_new();

                if (!ctx || !X509_STORE_CTX_init(ctx, keyring->store, signer_certs[i], certs)) {
                        X509_STORE_CTX_free(ctx);
                        r = fail_errno(err, -ENOMEM, "out of memory");
                        goto out;
                }
                if (X509_verify_cert(ctx) <= 0)
                        why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
                else
                        why = chain_usage_error(X509_STORE_CTX_get0_chain(ctx));
                X509_STORE_CTX_free(ctx);
                ERR_clear_error();

                if (!why) {
                        s->trust = CF_BUNDLE_TRUST_OK;
                        trusted = true;
                        continue;
                }
                s->trust = CF_BUNDLE_TRUST_REFUSED;
                s->trust_error = strdup(why);
                if (!s->trust_error) {
                        r = fail_errno(err, -ENOMEM, "out of memory");
                        goto out;
                }
                int n = snprintf(reasons + used, sizeof(reasons) - used, "%s%s: %s", used ? "; " : "",
                                 signer_label(b, i, label, sizeof(label)), why);
                if (n > 0)
                        used = used + (size_t) n < sizeof(reasons) ? used + (size_t) n : sizeof(reasons) - 1;
        }
        if (!trusted)
                r = fail(err, CF_BUNDLE_CHECK_TRUST, "no signer chains to the keyring: %s", reasons);
out:
        sk_X509_pop_free(certs, X509_free);
        return r;
}

/* Read the manifest out of the CMS's digest chain, so that the digests the signers' messageDigest
 * attributes are compared with are those of exactly these bytes. */
static int read_content(BIO *chain, char **ret, size_t *ret_len)
{
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        /* the content is inside a CMS of at most 64 KiB */
                        if (cap >= CF_BUNDLE_CMS_MAX) {
                                free(buf);
                                return -EMSGSIZE;
                        }
                        char *nb = realloc(buf, cap * 2);
                        if (!nb) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = nb;
                        cap *= 2;
                }
                int n = BIO_read(chain, buf + len, (int) (cap - len));
                if (n <= 0) {
                        if (BIO_should_retry(chain))
                                continue;
                        break;
                }
                len += (size_t) n;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* The checks after the size check; b->image, b->cms_len and b->info are set. keyring NULL skips
 * the trust check. */
static int check_cms(struct cf_bundle *b, const uint8_t *der, const struct cf_keyring *keyring,
                     struct cf_bundle_error *err)
{
        char why[256], label[320], objbuf[80];
        CMS_ContentInfo *cms = NULL;
        BIO *chain = NULL;
        char *manifest = NULL;
        size_t manifest_len = 0;
        X509 *signer_certs[MAX_SIGNERS] = {0};
        int r;

        const unsigned char *p = der;
        cms = d2i_CMS_ContentInfo(NULL, &p, (long) b->cms_len);
        if (!cms) {
                r = fail(err, CF_BUNDLE_CHECK_CMS, "not a DER CMS ContentInfo: %s",
                         ossl_reason(why, sizeof(why)));
                goto out;
        }
        if ((size_t) (p - der) != b->cms_len) {
                r = fail(err, CF_BUNDLE_CHECK_CMS, "%zu bytes follow the CMS ContentInfo inside its length",
                         b->cms_len - (size_t) (p - der));
                goto out;
        }
        const ASN1_OBJECT *type = CMS_get0_type(cms);
        if (OBJ_obj2nid(type) != NID_pkcs7_signed) {
                OBJ_obj2txt(objbuf, sizeof(objbuf), type, 0);
                r = fail(err, CF_BUNDLE_CHECK_CMS, "content type is %s, not SignedData", objbuf);
                goto out;
        }
        const ASN1_OBJECT *etype = CMS_get0_eContentType(cms);
        if (OBJ_obj2nid(etype) != NID_pkcs7_data) {
                OBJ_obj2txt(objbuf, sizeof(objbuf), etype, 0);
                r = fail(err, CF_BUNDLE_CHECK_CMS, "signed content type is %s, not id-data", objbuf);
                goto out;
        }
        ASN1_OCTET_STRING **content = CMS_get0_content(cms);
        if (!content || !*content || CMS_is_detached(cms)) {
                r = fail(
                    err, CF_BUNDLE_CHECK_CMS,
                    "the signature is detached; the manifest must be inline (openssl cms -sign -nodetach)");
                goto out;
        }
        STACK_OF(CMS_SignerInfo) *sinfos = CMS_get0_SignerInfos(cms);
        int n = sinfos ? sk_CMS_SignerInfo_num(sinfos) : 0;
        if (n <= 0) {
                r = fail(err, CF_BUNDLE_CHECK_CMS, "no SignerInfo: the bundle is not signed");
                goto out;
        }
        if (n > MAX_SIGNERS) {
                r = fail(err, CF_BUNDLE_CHECK_CMS, "%d signers; at most %d are accepted", n, MAX_SIGNERS);
                goto out;
        }

        /* signature: every SignerInfo, its certificate found among the CMS's own */
        b->signers = calloc((size_t) n, sizeof(*b->signers));
        if (!b->signers) {
                r = fail_errno(err, -ENOMEM, "out of memory");
                goto out;
        }
        b->n_signers = (size_t) n;
        if (CMS_set1_signers_certs(cms, NULL, 0) < 0)
                ERR_clear_error(); /* a signer without its certificate is reported below */
        ERR_clear_error();
        for (int i = 0; i < n; i++) {
                CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sinfos, i);
                X509 *cert = NULL;
                CMS_SignerInfo_get0_algs(si, NULL, &cert, NULL, NULL);
                if (!cert) {
                        r = fail(
                            err, CF_BUNDLE_CHECK_SIGNATURE,
                            "signer %d: its certificate is not in the CMS (signed with -nocerts?), so its "
                            "signature cannot be checked",
                            i + 1);
                        goto out;
                }
                signer_certs[i] = cert;
                if (signer_describe(cert, &b->signers[i]) < 0) {
                        r = fail_errno(err, -ENOMEM, "out of memory");
                        goto out;
                }
        }
        for (int i = 0; i < n; i++) {
                CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sinfos, i);
                /* with signed attributes, the signature covers them; without, the content digest */
                if (CMS_signed_get_attr_count(si) >= 0 && CMS_SignerInfo_verify(si) <= 0) {
                        b->signers[i].signature_checked = true;
                        r = fail(err, CF_BUNDLE_CHECK_SIGNATURE, "%s is not valid: %s",
                                 signer_label(b, (size_t) i, label, sizeof(label)),
                                 ossl_reason(why, sizeof(why)));
                        goto out;
                }
        }
        chain = CMS_dataInit(cms, NULL);
        if (!chain) {
                r = fail(err, CF_BUNDLE_CHECK_CMS, "cannot read the signed content: %s",
                         ossl_reason(why, sizeof(why)));
                goto out;
        }
        r = read_content(chain, &manifest, &manifest_len);
        if (r < 0) {
                r = r == -ENOMEM ? fail_errno(err, r, "out of memory")
                                 : fail(err, CF_BUNDLE_CHECK_CMS, "the signed content exceeds 64 KiB");
                goto out;
        }
        for (int i = 0; i < n; i++) {
                CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sinfos, i);
                b->signers[i].signature_checked = true;
                if (CMS_SignerInfo_verify_content(si, chain) <= 0) {
                        r = fail(err, CF_BUNDLE_CHECK_SIGNATURE,
                                 "%s is not valid: the manifest does not match "
                                 "its signature: %s",
                                 signer_label(b, (size_t) i, label, sizeof(label)),
                                 ossl_reason(why, sizeof(why)));
                        goto out;
                }
                b->signers[i].signature_ok = true;
        }

        if (keyring) {
                r = check_trust(b, cms, keyring, signer_certs, err);
                if (r < 0)
                        goto out;
        }

        r = cf_bundle_manifest_parse(manifest, manifest_len, &b->manifest, err);
        if (r < 0)
                goto out;
        b->have_manifest = true;
out:
        free(manifest);
        BIO_free_all(chain);
        CMS_ContentInfo_free(cms);
        ERR_clear_error();
        return r;
}

/* The checks of one image of the bundle: bank 0 for the image of a single-image bundle, else the bank the
 * image is linked for (what names it in messages: "the bank-2 image"). */
static int check_one_image(const struct cf_bundle_manifest *m, const uint8_t *image,
                           const struct cf_image_info *t, const uint8_t want_sha[32], unsigned bank,
                           struct cf_bundle_error *err)
{
        uint8_t sha[32];
        char have[65], want[65], what[24];

        snprintf(what, sizeof(what), bank ? "the bank-%u image" : "the image", bank);
        SHA256(image, CF_IMAGE_AREA_SIZE, sha);
        if (memcmp(sha, want_sha, sizeof(sha)) != 0) {
                hexstr(sha, 32, have);
                hexstr(want_sha, 32, want);
                if (bank)
                        return fail(err, CF_BUNDLE_CHECK_SHA256,
                                    "%s's sha256 %s != manifest images[%u].sha256 %s", what, have, bank - 1,
                                    want);
                return fail(err, CF_BUNDLE_CHECK_SHA256, "the image's sha256 %s != manifest image_sha256 %s",
                            have, want);
        }
        int s = cf_image_check_trailer(t);
        if (s != CF_IMAGE_OK)
                return fail(err, CF_BUNDLE_CHECK_TRAILER, "%s has no valid trailer: %s", what,
                            cf_image_status_str(s));
        if (m->hw_id != t->hw_id)
                return fail(err, CF_BUNDLE_CHECK_TRAILER,
                            "manifest hw_id %u (0x%04x) != %s trailer hw_id %u (0x%04x)", m->hw_id, m->hw_id,
                            bank ? what : "image", t->hw_id, t->hw_id);
        if (m->ver_major != t->ver_major || m->ver_minor != t->ver_minor || m->ver_patch != t->ver_patch)
                return fail(err, CF_BUNDLE_CHECK_TRAILER,
                            "manifest version %u.%u.%u != %s trailer version %u.%u.%u", m->ver_major,
                            m->ver_minor, m->ver_patch, bank ? what : "image", t->ver_major, t->ver_minor,
                            t->ver_patch);
        if (m->release != t->release)
                return fail(err, CF_BUNDLE_CHECK_TRAILER,
                            "manifest release %" PRIu32 " != %s trailer release %" PRIu32, m->release,
                            bank ? what : "image", t->release);

        /* The same full check as canfleetd's and `canfleetctl image inspect`'s (canfleet/image.h); a link
         * of a dual-bank bundle must have its vectors in its own bank (canfleet/image.h). */
        s = bank ? cf_image_check_full_at(image, NULL, cf_f7_app_addr(bank))
                 : cf_image_check_full(image, NULL);
        if (s == CF_IMAGE_BAD_CRC) {
                uint32_t stored =
                    (uint32_t) image[CF_CRC_OFFSET] | (uint32_t) image[CF_CRC_OFFSET + 1] << 8 |
                    (uint32_t) image[CF_CRC_OFFSET + 2] << 16 | (uint32_t) image[CF_CRC_OFFSET + 3] << 24;
                return fail(err, CF_BUNDLE_CHECK_IMAGE,
                            "%sCRC32 stored 0x%08" PRIX32 " != computed 0x%08" PRIX32,
                            bank ? (bank == 1 ? "bank-1 image: " : "bank-2 image: ") : "", stored,
                            cf_crc32_le(CF_CRC32_INIT, image, CF_CRC_OFFSET));
        }
        if (s == CF_IMAGE_BAD_SHA256)
                return fail(err, CF_BUNDLE_CHECK_IMAGE,
                            "%s: the payload's SHA-256 differs from the trailer's", what);
        if (s == CF_IMAGE_BAD_VECTORS && bank)
                return fail(err, CF_BUNDLE_CHECK_IMAGE,
                            "%s is not linked for bank %u (its reset vector is %s)", what, bank,
                            cf_image_link_bank(image)
                                ? (cf_image_link_bank(image) == 1 ? "in bank 1" : "in bank 2")
                                : "in neither bank");
        if (s != CF_IMAGE_OK)
                return fail(err, CF_BUNDLE_CHECK_IMAGE, "%s%s",
                            bank ? (bank == 1 ? "bank-1 image: " : "bank-2 image: ") : "",
                            cf_image_status_str(s));
        return 0;
}

/* A serial target's raw image (docs/design.md §8): no trailer; the manifest's size and sha256, then the
 * target's own checks. */
static int check_raw_image(struct cf_bundle *b, struct cf_bundle_error *err)
{
        const struct cf_bundle_manifest *m = &b->manifest;
        uint8_t sha[32];
        char have[65], want[65], why[256];

        if (b->n_images == 2) /* whatever the size suggested: the manifest says it is one raw image */
                b->image_size = 2u * CF_IMAGE_AREA_SIZE;
        b->n_images = 1;
        b->image2 = NULL;
        if (b->image_size != m->image_size)
                return fail(err, CF_BUNDLE_CHECK_SIZE,
                            "the image is %zu bytes (file size - CMS - 8), the manifest's image_size %" PRIu32,
                            b->image_size, m->image_size);
        SHA256(b->image, b->image_size, sha);
        if (memcmp(sha, m->image_sha256, sizeof(sha)) != 0) {
                hexstr(sha, 32, have);
                hexstr(m->image_sha256, 32, want);
                return fail(err, CF_BUNDLE_CHECK_SHA256, "the image's sha256 %s != manifest image_sha256 %s",
                            have, want);
        }
        if (cf_bundle_raw_image_check(m->target, b->image, b->image_size, why, sizeof why) < 0)
                return fail(err, CF_BUNDLE_CHECK_IMAGE, "%s", why);
        return 0;
}

static int check_image(struct cf_bundle *b, struct cf_bundle_error *err)
{
        const struct cf_bundle_manifest *m = &b->manifest;

        if (m->target[0])
                return check_raw_image(b, err);
        /* The size check let a raw image's size through: only the manifest could tell. */
        if (b->image_size != CF_IMAGE_AREA_SIZE && b->image_size != 2u * CF_IMAGE_AREA_SIZE)
                return fail(err, CF_BUNDLE_CHECK_SIZE,
                            "the file is %zu bytes, not %u (image) + %zu (CMS) + 8 = %zu (truncated, or extra "
                            "bytes)",
                            b->image_size + b->cms_len + CF_BUNDLE_LENGTH_SIZE, CF_IMAGE_AREA_SIZE, b->cms_len,
                            CF_IMAGE_AREA_SIZE + b->cms_len + CF_BUNDLE_LENGTH_SIZE);
        if (m->n_images != b->n_images)
                return fail(err, CF_BUNDLE_CHECK_MANIFEST,
                            "the manifest (format %s) lists %u image%s, the file carries %u",
                            m->n_images == 2 ? CF_BUNDLE_FORMAT_DUAL : CF_BUNDLE_FORMAT, m->n_images,
                            m->n_images == 1 ? "" : "s", b->n_images);
        if (b->n_images == 1)
                return check_one_image(m, b->image, &b->info, m->image_sha256, 0, err);
        int r = check_one_image(m, b->image, &b->info, m->image_sha256, 1, err);
        if (r >= 0)
                r = check_one_image(m, b->image2, &b->info2, m->image2_sha256, 2, err);
        return r;
}

/* Whether len bytes at p are exactly one DER SEQUENCE (a CMS ContentInfo's outer header says its size). */
static bool der_sequence_of(const uint8_t *p, uint64_t len)
{
        if (len < 2 || p[0] != 0x30)
                return false;
        uint64_t total;
        if (p[1] < 0x80) {
                total = 2u + p[1];
        } else {
                unsigned k = p[1] & 0x7Fu;
                if (k < 1 || k > 3 || len < 2u + k)
                        return false;
                total = 0;
                for (unsigned i = 0; i < k; i++)
                        total = total << 8 | p[2 + i];
                total += 2u + k;
        }
        return total == len;
}

/* The images are the file's bytes before the CMS and its length: 262144 of them for an area image,
 * twice that for a dual-bank bundle (the CMS, at most 64 KiB, cannot make up for 256 KB, so the size
 * tells the two apart); a serial target's raw image (docs/design.md §8) any other number up to
 * CF_BUNDLE_RAW_MAX, and then the CMS must start right after it as one DER SEQUENCE of exactly the
 * length given, so that a cut or padded area bundle is still reported by its size. Whether the size is
 * the manifest's is checked once the manifest is read (check_image). */
static int check_size(const uint8_t *data, size_t size, uint64_t *cms_len, size_t *images_size,
                      struct cf_bundle_error *err)
{
        uint64_t len = size >= CF_BUNDLE_LENGTH_SIZE ? be64(data + size - CF_BUNDLE_LENGTH_SIZE) : 0;
        bool raw = len > 0 && len <= CF_BUNDLE_CMS_MAX && len + CF_BUNDLE_LENGTH_SIZE < size &&
                   size - len - CF_BUNDLE_LENGTH_SIZE <= CF_BUNDLE_RAW_MAX &&
                   der_sequence_of(data + size - len - CF_BUNDLE_LENGTH_SIZE, len);
        if (size < (size_t) CF_IMAGE_AREA_SIZE + CF_BUNDLE_LENGTH_SIZE && !raw)
                return fail(err, CF_BUNDLE_CHECK_SIZE,
                            "the file is %zu bytes, shorter than a %u-byte image and the 8-byte CMS length "
                            "(truncated, or not a bundle)",
                            size, CF_IMAGE_AREA_SIZE);
        if (len == 0)
                return fail(err, CF_BUNDLE_CHECK_SIZE, "CMS length is 0: no signature");
        if (len > CF_BUNDLE_CMS_MAX)
                return fail(err, CF_BUNDLE_CHECK_SIZE, "CMS length %" PRIu64 " exceeds %u (64 KiB)", len,
                            CF_BUNDLE_CMS_MAX);
        if (size != CF_IMAGE_AREA_SIZE + len + CF_BUNDLE_LENGTH_SIZE &&
            size != 2u * CF_IMAGE_AREA_SIZE + len + CF_BUNDLE_LENGTH_SIZE && !raw)
                return fail(err, CF_BUNDLE_CHECK_SIZE,
                            "the file is %zu bytes, not %u (image) + %" PRIu64 " (CMS) + 8 = %" PRIu64
                            " (truncated, or extra bytes)",
                            size, CF_IMAGE_AREA_SIZE, len, CF_IMAGE_AREA_SIZE + len + CF_BUNDLE_LENGTH_SIZE);
        *cms_len = len;
        *images_size = size - (size_t) len - CF_BUNDLE_LENGTH_SIZE;
        return 0;
}

bool cf_bundle_is_bundle(const uint8_t *data, size_t size)
{
        uint64_t len;
        size_t n;
        return check_size(data, size, &len, &n, NULL) == 0;
}

static int bundle_check(const uint8_t *data, size_t size, const struct cf_keyring *keyring,
                        struct cf_bundle **ret, struct cf_bundle_error *err)
{
        uint64_t cms_len;
        int r;

        size_t images_size;
        r = check_size(data, size, &cms_len, &images_size, err);
        if (r < 0)
                return r;
        struct cf_bundle *b = calloc(1, sizeof(*b));
        if (!b)
                return fail_errno(err, -ENOMEM, "out of memory");
        b->image = data;
        b->cms_len = (size_t) cms_len;
        b->image_size = images_size;
        b->n_images = 1;
        if (images_size == 2u * CF_IMAGE_AREA_SIZE) {
                /* two links (a serial target's manifest makes it one raw image again: check_image) */
                b->n_images = 2;
                b->image_size = CF_IMAGE_AREA_SIZE;
                b->image2 = data + CF_IMAGE_AREA_SIZE;
                cf_image_info_parse(b->image2 + CF_TRAILER_OFFSET, &b->info2);
        }
        if (images_size >= CF_IMAGE_AREA_SIZE)
                cf_image_info_parse(data + CF_TRAILER_OFFSET, &b->info);

        r = check_cms(b, data + images_size, keyring, err);
        if (r >= 0)
                r = check_image(b, err);
        if (r >= 0 && err) {
                err->check = CF_BUNDLE_CHECK_NONE;
                err->message[0] = '\0';
        }
        *ret = b;
        return r;
}

int cf_bundle_verify(const uint8_t *data, size_t size, const struct cf_keyring *keyring,
                     struct cf_bundle **ret, struct cf_bundle_error *err)
{
        struct cf_bundle *b = NULL;

        if (!keyring)
                return fail_errno(err, -EINVAL, "no keyring given");
        int r = bundle_check(data, size, keyring, &b, err);
        if (r < 0) {
                cf_bundle_free(b);
                return r;
        }
        *ret = b;
        return 0;
}

int cf_bundle_inspect(const uint8_t *data, size_t size, const struct cf_keyring *keyring,
                      struct cf_bundle **ret, struct cf_bundle_error *err)
{
        struct cf_bundle *b = NULL;
        int r = bundle_check(data, size, keyring, &b, err);
        if (b)
                *ret = b;
        return r;
}

/* ---- creation --------------------------------------------------------------------------------- */

struct signing {
        ENGINE *engine; /* the pkcs11 engine, loaded for the first pkcs11: key */
        CMS_ContentInfo *cms;
};

static int open_file_bio(const char *path, const char *what, BIO **ret, struct cf_bundle_error *err)
{
        BIO *b = BIO_new_file(path, "r");
        if (!b) {
                int r = errno > 0 ? -errno : -EIO;
                ERR_clear_error();
                return fail_errno(err, r, "cannot read %s '%s': %s", what, path, strerror(-r));
        }
        *ret = b;
        return 0;
}

static int load_cert(const char *path, X509 **ret, struct cf_bundle_error *err)
{
        char why[256];
        BIO *in;
        int r = open_file_bio(path, "certificate", &in, err);
        if (r < 0)
                return r;
        *ret = PEM_read_bio_X509(in, NULL, NULL, NULL);
        BIO_free(in);
        if (!*ret)
                return fail_errno(err, -EINVAL, "certificate '%s' is not a PEM certificate: %s", path,
                                  ossl_reason(why, sizeof(why)));
        return 0;
}

static int engine_key(struct signing *sg, const char *uri, EVP_PKEY **ret, struct cf_bundle_error *err)
{
        char why[256];

        if (!sg->engine) {
                ENGINE *e = ENGINE_by_id("pkcs11");
                if (!e)
                        return fail_errno(err, -ENOPKG,
                                          "cannot load OpenSSL's pkcs11 engine for '%s' (install "
                                          "libengine-pkcs11-openssl): %s",
                                          uri, ossl_reason(why, sizeof(why)));
                const char *module = getenv("CANFLEET_PKCS11_MODULE");
                if (module && *module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) {
                        ENGINE_free(e);
                        return fail_errno(err, -EINVAL, "pkcs11 engine: cannot use module '%s': %s", module,
                                          ossl_reason(why, sizeof(why)));
                }
                if (!ENGINE_init(e)) {
                        ENGINE_free(e);
                        return fail_errno(err, -EIO, "pkcs11 engine: cannot initialise it: %s",
                                          ossl_reason(why, sizeof(why)));
                }
                sg->engine = e;
        }
        const char *pin = getenv("CANFLEET_PKCS11_PIN");
        if (pin && *pin && !strstr(uri, "pin-value=") && !ENGINE_ctrl_cmd_string(sg->engine, "PIN", pin, 0))
                return fail_errno(err, -EINVAL, "pkcs11 engine: cannot set the PIN: %s",
                                  ossl_reason(why, sizeof(why)));
        *ret = ENGINE_load_private_key(sg->engine, uri, NULL, NULL);
        if (!*ret)
                return fail_errno(err, -ENOKEY, "pkcs11 engine: cannot load key '%s': %s", uri,
                                  ossl_reason(why, sizeof(why)));
        return 0;
}

static int load_key(struct signing *sg, const char *path, EVP_PKEY **ret, struct cf_bundle_error *err)
{
        char why[256];

        if (strncmp(path, "pkcs11:", 7) == 0)
                return engine_key(sg, path, ret, err);
        BIO *in;
        int r = open_file_bio(path, "key", &in, err);
        if (r < 0)
                return r;
        *ret = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
        BIO_free(in);
        if (!*ret)
                return fail_errno(err, -EINVAL,
                                  "key '%s' is not a PEM private key (an encrypted one needs its "
                                  "passphrase on a terminal): %s",
                                  path, ossl_reason(why, sizeof(why)));
        return 0;
}

static int add_signer(struct signing *sg, const struct cf_bundle_key *k, struct cf_bundle_error *err)
{
        char why[256];
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int r;

        r = load_cert(k->cert, &cert, err);
        if (r < 0)
                return r;
        r = load_key(sg, k->key, &key, err);
        if (r < 0)
                goto out;
        if (!X509_check_private_key(cert, key)) {
                ERR_clear_error();
                r = fail_errno(err, -EINVAL, "key '%s' does not belong to certificate '%s'", k->key,
                               k->cert);
                goto out;
        }
        if (!CMS_add1_signer(sg->cms, cert, key, EVP_sha256(), CMS_BINARY | CMS_NOSMIMECAP)) {
                r = fail_errno(err, -EINVAL, "cannot add signer '%s': %s", k->cert,
                               ossl_reason(why, sizeof(why)));
                goto out;
        }
        r = 0;
out:
        EVP_PKEY_free(key);
        X509_free(cert);
        return r;
}

static int add_intermediates(struct signing *sg, const char *path, struct cf_bundle_error *err)
{
        char why[256];
        BIO *in;
        X509 *c;
        int n = 0, r;

        r = open_file_bio(path, "intermediate certificates", &in, err);
        if (r < 0)
                return r;
        while ((c = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
                n++;
                if (!CMS_add1_cert(sg->cms, c)) {
                        unsigned long e = ERR_peek_last_error();
                        /* a certificate that is already in (a signer's own) is fine */
                        if (ERR_GET_REASON(e) != CMS_R_CERTIFICATE_ALREADY_PRESENT) {
                                X509_free(c);
                                BIO_free(in);
                                return fail_errno(err, -EINVAL, "'%s': cannot add certificate %d: %s", path,
                                                  n, ossl_reason(why, sizeof(why)));
                        }
                        ERR_clear_error();
                }
                X509_free(c);
        }
        BIO_free(in);
        unsigned long e = ERR_peek_last_error();
        if (n > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                return 0;
        }
        return fail_errno(err, -EINVAL, "'%s': %s", path,
                          n == 0 ? "holds no PEM certificate" : ossl_reason(why, sizeof(why)));
}

static int create_signed(const uint8_t *const images[], unsigned n_images, size_t image_size,
                         char *manifest, const struct cf_bundle_create_options *o, uint8_t **ret,
                         size_t *ret_size, struct cf_bundle_error *err);

static int check_create_options(const struct cf_bundle_create_options *o, struct cf_bundle_error *err)
{
        if (!o || o->n_keys == 0)
                return fail_errno(err, -EINVAL, "no signing key given");
        if (o->n_keys > MAX_SIGNERS)
                return fail_errno(err, -EINVAL, "%zu signers; at most %d are accepted", o->n_keys,
                                  MAX_SIGNERS);
        return 0;
}

int cf_bundle_create(const uint8_t image[CF_IMAGE_AREA_SIZE], const struct cf_bundle_create_options *o,
                     uint8_t **ret, size_t *ret_size, struct cf_bundle_error *err)
{
        struct cf_image_info info;
        uint8_t sha[32];

        int r = check_create_options(o, err);
        if (r < 0)
                return r;
        int s = cf_image_check_full(image, &info);
        if (s != CF_IMAGE_OK)
                return fail_errno(err, -EINVAL, "not a valid area image: %s", cf_image_status_str(s));
        SHA256(image, CF_IMAGE_AREA_SIZE, sha);
        char *manifest = cf_bundle_manifest_format(&info, sha, o->description);
        if (!manifest)
                return fail_errno(err, -ENOMEM, "out of memory");
        const uint8_t *const images[] = {image};
        return create_signed(images, 1, CF_IMAGE_AREA_SIZE, manifest, o, ret, ret_size, err);
}

int cf_bundle_create_dual(const uint8_t bank1[CF_IMAGE_AREA_SIZE], const uint8_t bank2[CF_IMAGE_AREA_SIZE],
                          const struct cf_bundle_create_options *o, uint8_t **ret, size_t *ret_size,
                          struct cf_bundle_error *err)
{
        const uint8_t *const images[] = {bank1, bank2};
        struct cf_image_info info[2];
        uint8_t sha[2][32];

        int r = check_create_options(o, err);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 2; i++) {
                int s = cf_image_check_full_at(images[i], &info[i], cf_f7_app_addr(i + 1));
                if (s == CF_IMAGE_BAD_VECTORS)
                        return fail_errno(err, -EINVAL,
                                          "the bank-%u image is not linked for bank %u (reset vector %s)",
                                          i + 1, i + 1,
                                          cf_image_link_bank(images[i]) == 0   ? "in neither bank"
                                          : cf_image_link_bank(images[i]) == 1 ? "in bank 1"
                                                                               : "in bank 2");
                if (s != CF_IMAGE_OK)
                        return fail_errno(err, -EINVAL, "the bank-%u image is not a valid area image: %s",
                                          i + 1, cf_image_status_str(s));
                SHA256(images[i], CF_IMAGE_AREA_SIZE, sha[i]);
        }
        if (info[0].hw_id != info[1].hw_id || cf_image_version_cmp(&info[0], &info[1]) != 0 ||
            info[0].release != info[1].release)
                return fail_errno(err, -EINVAL,
                                  "the two links are not of one application: bank 1 has hw 0x%04x %u.%u.%u "
                                  "release %u, bank 2 hw 0x%04x %u.%u.%u release %u",
                                  info[0].hw_id, info[0].ver_major, info[0].ver_minor, info[0].ver_patch,
                                  info[0].release, info[1].hw_id, info[1].ver_major, info[1].ver_minor,
                                  info[1].ver_patch, info[1].release);
        char *manifest = cf_bundle_manifest_format_dual(&info[0], sha[0], sha[1], o->description);
        if (!manifest)
                return fail_errno(err, -ENOMEM, "out of memory");
        return create_signed(images, 2, CF_IMAGE_AREA_SIZE, manifest, o, ret, ret_size, err);
}

/* Sign manifest (taken over) and lay out [images, image_size bytes each][CMS][length]. */
static int create_signed(const uint8_t *const images[], unsigned n_images, size_t image_size,
                         char *manifest, const struct cf_bundle_create_options *o, uint8_t **ret,
                         size_t *ret_size, struct cf_bundle_error *err)
{
        struct signing sg = {0};
        char why[256];
        uint8_t *out = NULL;
        BIO *in = NULL;
        int r;

        sg.cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP);
        if (!sg.cms) {
                r = fail_errno(err, -ENOMEM, "cannot start a CMS: %s", ossl_reason(why, sizeof(why)));
                goto out;
        }
        for (size_t i = 0; i < o->n_keys; i++)
                if ((r = add_signer(&sg, &o->keys[i], err)) < 0)
                        goto out;
        for (size_t i = 0; i < o->n_intermediates; i++)
                if ((r = add_intermediates(&sg, o->intermediates[i], err)) < 0)
                        goto out;

        in = BIO_new_mem_buf(manifest, (int) strlen(manifest));
        if (!in || !CMS_final(sg.cms, in, NULL, CMS_BINARY)) {
                r = fail_errno(err, -EIO, "cannot sign: %s", ossl_reason(why, sizeof(why)));
                goto out;
        }
        int len = i2d_CMS_ContentInfo(sg.cms, NULL);
        if (len <= 0) {
                r = fail_errno(err, -EIO, "cannot encode the CMS: %s", ossl_reason(why, sizeof(why)));
                goto out;
        }
        if ((unsigned) len > CF_BUNDLE_CMS_MAX) {
                r = fail_errno(err, -EMSGSIZE,
                               "the CMS is %d bytes, more than %u (64 KiB): fewer signers or "
                               "intermediates",
                               len, CF_BUNDLE_CMS_MAX);
                goto out;
        }
        size_t total = (size_t) n_images * image_size + (size_t) len + CF_BUNDLE_LENGTH_SIZE;
        out = malloc(total);
        if (!out) {
                r = fail_errno(err, -ENOMEM, "out of memory");
                goto out;
        }
        for (unsigned i = 0; i < n_images; i++)
                memcpy(out + (size_t) i * image_size, images[i], image_size);
        unsigned char *p = out + (size_t) n_images * image_size;
        if (i2d_CMS_ContentInfo(sg.cms, &p) != len) {
                r = fail_errno(err, -EIO, "cannot encode the CMS: %s", ossl_reason(why, sizeof(why)));
                goto out;
        }
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));

        /* never hand out what a verifier would refuse for a reason of ours */
        struct cf_bundle *b = NULL;
        struct cf_bundle_error check;
        r = cf_bundle_inspect(out, total, NULL, &b, &check);
        cf_bundle_free(b);
        if (r < 0) {
                r = fail_errno(err, -EIO, "internal error: the new bundle does not check out: %s",
                               check.message);
                goto out;
        }
        *ret = out;
        *ret_size = total;
        out = NULL;
        r = 0;
out:
        free(out);
        free(manifest);
        BIO_free(in);
        CMS_ContentInfo_free(sg.cms);
        if (sg.engine) {
                ENGINE_finish(sg.engine);
                ENGINE_free(sg.engine);
        }
        ERR_clear_error();
        return r;
}

/* ---- serial targets (docs/design.md §8) -------------------------------------------------------- */

bool cf_bundle_part_id_valid(const char *target, const char *part_id)
{
        size_t n = strlen(part_id);
        if (strcmp(target, "lpc-isp") == 0) {
                if (n != 10 || part_id[0] != '0' || (part_id[1] != 'x' && part_id[1] != 'X'))
                        return false;
                for (size_t i = 2; i < n; i++)
                        if (hexval(part_id[i]) < 0 && !(part_id[i] >= 'A' && part_id[i] <= 'F'))
                                return false;
                return true;
        }
        if (strcmp(target, "adi-uart") == 0) {
                if (n < 1 || n > 15 || part_id[0] == ' ' || part_id[n - 1] == ' ')
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (part_id[i] < 0x20 || part_id[i] > 0x7E)
                                return false;
                return true;
        }
        return false;
}

int cf_bundle_part_resolve(const char *target, const char *given, char *part_id, size_t len, uint32_t *flash_size)
{
        if (strcmp(target, "lpc-isp") == 0) {
                const struct cf_lpc_part *p = cf_lpc_part_by_name(given);
                if (!p) {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(given, &end, 0);
                        if (errno || end == given || *end || v > UINT32_MAX || given[0] == '-')
                                return -EINVAL;
                        p = cf_lpc_part_by_id((uint32_t) v);
                }
                if (!p)
                        return -EINVAL;
                snprintf(part_id, len, "0x%08" PRIX32, p->id);
                if (flash_size)
                        *flash_size = p->flash_size;
                return 0;
        }
        if (strcmp(target, "adi-uart") == 0) {
                if (strcasecmp(given, "ADuCM360") != 0 && strcasecmp(given, "ADuCM361") != 0)
                        return -EINVAL;
                snprintf(part_id, len, "ADuCM36%c", given[7]);
                if (flash_size)
                        *flash_size = CF_ADI_FLASH_SIZE;
                return 0;
        }
        return -EINVAL;
}

void cf_bundle_manifest_info(const struct cf_bundle_manifest *m, struct cf_image_info *info)
{
        *info = (struct cf_image_info){.hw_id = m->hw_id, .ver_major = m->ver_major, .ver_minor = m->ver_minor,
                                       .ver_patch = m->ver_patch, .release = m->release,
                                       .payload_len = m->image_size, .area_size = m->image_size};
        memcpy(info->payload_sha256, m->image_sha256, sizeof info->payload_sha256);
}

int cf_bundle_raw_image_check(const char *target, const uint8_t *image, size_t size, char *why, size_t why_len)
{
        if (strcmp(target, "lpc-isp") == 0) {
                if (size < 32 || size > CF_LPC_FLASH_MAX) {
                        snprintf(why, why_len, "a %zu-byte image: an LPC17xx image is 32 to %u bytes", size,
                                 CF_LPC_FLASH_MAX);
                        return -EBADMSG;
                }
                /* The boot ROM runs user code only when words 0..7 sum to 0: an image without it would be
                 * flashed and then never start (canfleetctl image pack --target lpc-isp sets it). */
                if (!cf_lpc_vector_checksum_ok(image, size)) {
                        snprintf(why, why_len, "the vector table checksum (word 7) is wrong: the boot ROM "
                                               "would not start it (canfleetctl image pack --target lpc-isp fills it in)");
                        return -EBADMSG;
                }
                return 0;
        }
        if (strcmp(target, "adi-uart") == 0) {
                if (size == 0 || size > CF_ADI_FLASH_SIZE) {
                        snprintf(why, why_len, "a %zu-byte image: an ADuCM360 image is 1 to %u bytes", size,
                                 CF_ADI_FLASH_SIZE);
                        return -EBADMSG;
                }
                return 0;
        }
        snprintf(why, why_len, "unknown target \"%s\"", target);
        return -EBADMSG;
}

int cf_bundle_create_raw(const uint8_t *image, size_t size, const struct cf_bundle_target *t,
                         const struct cf_bundle_create_options *o, uint8_t **ret, size_t *ret_size,
                         struct cf_bundle_error *err)
{
        char why[256];
        uint8_t sha[32];
        char hex[65];
        struct cf_bundle_manifest vm = {0};

        int r = check_create_options(o, err);
        if (r < 0)
                return r;
        if (!t->target || !t->part_id || !t->version)
                return fail_errno(err, -EINVAL, "target, part id and version are required");
        if (strcmp(t->target, "lpc-isp") != 0 && strcmp(t->target, "adi-uart") != 0)
                return fail_errno(err, -EINVAL, "target \"%s\" is not lpc-isp or adi-uart", t->target);
        if (!cf_bundle_part_id_valid(t->target, t->part_id))
                return fail_errno(err, -EINVAL, "part id \"%s\" is not valid for %s", t->part_id, t->target);
        if (!parse_version(t->version, &vm))
                return fail_errno(err, -EINVAL, "version \"%s\" is not X.Y.Z", t->version);
        if (cf_bundle_raw_image_check(t->target, image, size, why, sizeof why) < 0)
                return fail_errno(err, -EINVAL, "not a valid %s image: %s", t->target, why);
        SHA256(image, size, sha);
        hexstr(sha, 32, hex);
        struct json_object *m = json_object_new_object();
        if (!m)
                return fail_errno(err, -ENOMEM, "out of memory");
        char *manifest = NULL;
        if (json_object_object_add(m, "format", json_object_new_string(CF_BUNDLE_FORMAT)) == 0 &&
            json_object_object_add(m, "target", json_object_new_string(t->target)) == 0 &&
            json_object_object_add(m, "part_id", json_object_new_string(t->part_id)) == 0 &&
            json_object_object_add(m, "hw_id", json_object_new_int(0)) == 0 &&
            json_object_object_add(m, "version", json_object_new_string(t->version)) == 0 &&
            json_object_object_add(m, "release", json_object_new_int64(t->release)) == 0 &&
            json_object_object_add(m, "image_size", json_object_new_int64((int64_t) size)) == 0 &&
            json_object_object_add(m, "image_sha256", json_object_new_string(hex)) == 0 &&
            (!o->description ||
             json_object_object_add(m, "description", json_object_new_string(o->description)) == 0)) {
                const char *js =
                    json_object_to_json_string_ext(m, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
                if (js)
                        manifest = strdup(js);
        }
        json_object_put(m);
        if (!manifest)
                return fail_errno(err, -ENOMEM, "out of memory");
        const uint8_t *const images[] = {image};
        return create_signed(images, 1, size, manifest, o, ret, ret_size, err);
}
