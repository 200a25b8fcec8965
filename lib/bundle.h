/* Signed bundles (.cfb): the one place that parses, verifies and creates them (OpenSSL CMS + json-c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "canfleet/image.h"
#include "canfleet/layout.h"

/*
 * A bundle is  [image: 262144 bytes][CMS: DER ContentInfo][u64 big-endian length of CMS]
 * (docs/design.md §6). The CMS is SignedData over content type id-data, with the manifest inline:
 *
 *   {"format": "canfleet-bundle-1", "hw_id": 1, "version": "1.4.0", "release": 12,
 *    "image_size": 262144, "image_sha256": "<64 lowercase hex of the whole image>"}
 *
 * "description" (a string) is optional; other keys are ignored.
 *
 * A dual-bank bundle (docs/design.md §9) carries the two links of one application, the one linked
 * for bank 1 first:  [bank-1 image: 262144][bank-2 image: 262144][CMS][u64 length of CMS], with
 *
 *   {"format": "canfleet-bundle-2", "hw_id": 1, "version": "1.4.0", "release": 12,
 *    "image_size": 262144, "layout": "dual-bank",
 *    "images": [{"bank": 1, "sha256": "<hex>"}, {"bank": 2, "sha256": "<hex>"}]}
 *
 * ("image_sha256" is not used there). Both trailers must agree with hw_id, version and release, and
 * each image must be linked for its bank (canfleet/image.h cf_image_link_bank()). The checks below are the same, applied to each
 * image in turn; the size check tells the two kinds apart by the file size and the CMS length (one or
 * two images), and a manifest of the other kind is refused by the manifest check.
 *
 * A bundle for a serial node (docs/design.md §8) carries the raw binary of the chip's flash instead of
 * an area image, and says so:
 *
 *   {"format": "canfleet-bundle-1", "target": "lpc-isp", "part_id": "0x26013F37", "hw_id": 0,
 *    "version": "1.4.0", "release": 12, "image_size": 65536, "image_sha256": "<hex>"}
 *
 * target "lpc-isp" or "adi-uart" (absent: a CCP node's area image); part_id (required with a target):
 * the part id the LPC ISP's J answers, "0x" and 8 hex digits, or the ADI ID packet's product
 * identifier ("ADuCM360"); image_size 1..CF_BUNDLE_RAW_MAX and the image that many bytes; hw_id may
 * be left out (0). The raw image has no trailer: version and release are the manifest's. Its image
 * check is the target's: for lpc-isp, the vector table checksum in word 7 (canfleet/lpc-isp.h).
 *
 * cf_bundle_verify() runs these checks in this order and stops at the first that fails; each has
 * its own negative errno and check id, and the message names the check:
 *
 *   check       errno          what
 *   size        -EMSGSIZE      0 < CMS length <= 64 KiB and file size == 262144 + length + 8
 *   cms         -EPROTO        DER ContentInfo of type SignedData, content id-data and inline
 *                              (not detached), at least one SignerInfo
 *   signature   -EKEYREJECTED  every SignerInfo's signature is valid over the manifest (its
 *                              certificate must travel in the CMS)
 *   trust       -ENOKEY        at least one signer's certificate chains to an anchor of the
 *                              keyring (intermediates from the CMS), is within its validity, and
 *                              every certificate of that chain below the anchor that has an
 *                              extendedKeyUsage lists codeSigning (or anyExtendedKeyUsage); a
 *                              signer with keyUsage must have digitalSignature
 *   manifest    -EINVAL        the manifest JSON as above: strict JSON, UTF-8, an object, every
 *                              required key with its type and range
 *   sha256      -EUCLEAN       SHA-256 of the 262144 image bytes == manifest image_sha256
 *   trailer     -ENOEXEC       the image trailer is one of ours (magic, layout, length) and its
 *                              hw_id, version and release equal the manifest's
 *   image       -EBADMSG       cf_image_check_full() (canfleet/image.h): CRC32, vector table,
 *                              the trailer's payload SHA-256, 0xFF padding up to the trailer
 *
 * Other failures: -ENOMEM. Nothing here logs or prints: the caller reports err->message once.
 * The hardware id and release against each target node are the caller's (the daemon's) checks.
 */

#define CF_BUNDLE_CMS_MAX     (64u * 1024u)
#define CF_BUNDLE_LENGTH_SIZE 8u
#define CF_BUNDLE_FORMAT      "canfleet-bundle-1"
#define CF_BUNDLE_FORMAT_DUAL "canfleet-bundle-2"
#define CF_BUNDLE_LAYOUT_DUAL "dual-bank"
/* The most images a bundle carries (a dual-bank bundle: one per bank). */
#define CF_BUNDLE_MAX_IMAGES 2u
/* The largest raw image of a serial target (the LPC17xx's 512 KB of flash). */
#define CF_BUNDLE_RAW_MAX (512u * 1024u)
/* The smallest and largest bundle files (of an area image; a serial target's may be smaller). */
#define CF_BUNDLE_MIN_SIZE (CF_IMAGE_AREA_SIZE + 1u + CF_BUNDLE_LENGTH_SIZE)
#define CF_BUNDLE_MAX_SIZE (CF_BUNDLE_MAX_IMAGES * CF_IMAGE_AREA_SIZE + CF_BUNDLE_CMS_MAX + CF_BUNDLE_LENGTH_SIZE)
_Static_assert(CF_BUNDLE_RAW_MAX <= CF_BUNDLE_MAX_IMAGES * CF_IMAGE_AREA_SIZE, "a raw image fits the largest bundle");

enum cf_bundle_check {
        CF_BUNDLE_CHECK_NONE = 0, /* passed, or a failure of no check (out of memory) */
        CF_BUNDLE_CHECK_SIZE,
        CF_BUNDLE_CHECK_CMS,
        CF_BUNDLE_CHECK_SIGNATURE,
        CF_BUNDLE_CHECK_TRUST,
        CF_BUNDLE_CHECK_MANIFEST,
        CF_BUNDLE_CHECK_SHA256,
        CF_BUNDLE_CHECK_TRAILER,
        CF_BUNDLE_CHECK_IMAGE,
        _CF_BUNDLE_CHECK_MAX,
};

/* "size", "cms", "signature", "trust", "manifest", "sha256", "trailer", "image"; "none". */
const char *cf_bundle_check_name(enum cf_bundle_check check);

/* The negative errno of a check (table above); 0 for NONE. */
int cf_bundle_check_errno(enum cf_bundle_check check);

/* Why something failed: the check and one line for an operator, e.g.
 *   "signature: signer 2 (CN=old release key) is not valid: ... bad signature"
 *   "trust: no signer chains to the keyring: signer 1 (CN=Build): unable to get local issuer certificate"
 *   "trailer: manifest release 12 != image trailer release 11" */
struct cf_bundle_error {
        enum cf_bundle_check check;
        char message[1024];
};

struct cf_bundle_manifest {
        uint16_t hw_id;
        uint8_t ver_major, ver_minor;
        uint16_t ver_patch;
        uint32_t release;
        uint32_t image_size;
        uint8_t image_sha256[32];  /* of the (first) image */
        char *description; /* NULL when absent */
        /* 1, or 2 for a dual-bank bundle ("canfleet-bundle-2"): image_sha256 is then bank 1's link,
         * image2_sha256 bank 2's */
        unsigned n_images;
        uint8_t image2_sha256[32];
        char target[16];   /* "" (a CCP node's area image), "lpc-isp", "adi-uart" */
        char part_id[32];  /* with a target: "0x26013F37", "ADuCM360" */
};

/* Parse and check a manifest (the "manifest" check alone). On failure *m is left empty (description
 * NULL) and err says which key is wrong. Free description with cf_bundle_manifest_clear(). */
int cf_bundle_manifest_parse(const char *json, size_t len, struct cf_bundle_manifest *m,
                             struct cf_bundle_error *err);
void cf_bundle_manifest_clear(struct cf_bundle_manifest *m);

enum cf_bundle_trust {
        CF_BUNDLE_TRUST_UNCHECKED = 0, /* no keyring given (inspect), or not reached */
        CF_BUNDLE_TRUST_OK,
        CF_BUNDLE_TRUST_REFUSED,
};

struct cf_bundle_signer {
        char *subject; /* RFC 2253, e.g. "CN=release key,O=Example" */
        char *issuer;
        char serial[80]; /* hex */
        time_t not_before, not_after;
        bool signature_checked, signature_ok;
        enum cf_bundle_trust trust;
        char *trust_error; /* why not trusted (REFUSED), else NULL */
};

struct cf_bundle {
        /* The CF_IMAGE_AREA_SIZE image bytes: points into the buffer given to cf_bundle_verify(),
         * valid as long as that buffer is. */
        const uint8_t *image;
        size_t image_size; /* CF_IMAGE_AREA_SIZE, or a serial target's raw image size */
        size_t cms_len;
        struct cf_image_info info; /* the image trailer as read (not necessarily valid) */
        /* 1, or 2 for a dual-bank bundle (by its size): image is then the bank-1 link and image2 (right
         * after it) the bank-2 link, info2 its trailer; image2 NULL otherwise */
        unsigned n_images;
        const uint8_t *image2;
        struct cf_image_info info2;
        bool have_manifest;
        struct cf_bundle_manifest manifest;
        size_t n_signers;
        struct cf_bundle_signer *signers;
};

struct cf_bundle *cf_bundle_free(struct cf_bundle *b);

/* The trust anchors: a PEM file of one or more certificates. Every certificate in it is an anchor,
 * also when it is not self-signed (an intermediate CA of the fleet, as RAUC's partial chains). */
struct cf_keyring;
int cf_keyring_load(const char *path, struct cf_keyring **ret, struct cf_bundle_error *err);
/* The same from PEM text already read (canfleetd reads the file itself, refusing FIFOs and devices);
 * path only names the keyring in messages. */
int cf_keyring_load_pem(const char *path, const void *pem, size_t len, struct cf_keyring **ret,
                        struct cf_bundle_error *err);
struct cf_keyring *cf_keyring_free(struct cf_keyring *k);
/* Number of anchors loaded. */
size_t cf_keyring_count(const struct cf_keyring *k);

/*
 * Verify the bundle in data[0..size) (the caller's own copy; it is never re-read), every check above
 * in order. On success returns 0 and *ret holds the parsed bundle (its image points into data).
 * On failure returns the check's negative errno, err tells which check and why, *ret is untouched.
 *
 *   r = cf_bundle_verify(buf, len, keyring, &b, &err);
 *   if (r < 0) return log_error_errno(r, "bundle refused: %s", err.message);
 *   flash(b->image, CF_IMAGE_AREA_SIZE) ... b->manifest.release ... cf_bundle_free(b);
 */
int cf_bundle_verify(const uint8_t *data, size_t size, const struct cf_keyring *keyring,
                     struct cf_bundle **ret, struct cf_bundle_error *err);

/*
 * The same checks for a report, `canfleetctl bundle inspect` and `verify`: with keyring NULL the
 * trust check is skipped (each signer's trust stays UNCHECKED). *ret is set whenever the size check
 * passed, with what could be read up to the first failing check (trailer, signers and their trust,
 * the manifest once its signatures check out), also when a check failed. Returns 0 or the first
 * failing check's negative errno: with a keyring, exactly what cf_bundle_verify() returns.
 */
int cf_bundle_inspect(const uint8_t *data, size_t size, const struct cf_keyring *keyring,
                      struct cf_bundle **ret, struct cf_bundle_error *err);

/* Whether data looks like a bundle rather than a plain area image: the size bounds and length field
 * agree (size check only). */
bool cf_bundle_is_bundle(const uint8_t *data, size_t size);

struct cf_bundle_key {
        const char *cert; /* PEM file of the signer's certificate */
        /* PEM private key file, or a PKCS#11 URI "pkcs11:token=...;object=...[;pin-value=...]",
         * signed through OpenSSL's "pkcs11" engine (libp11). The engine's module is
         * $CANFLEET_PKCS11_MODULE when set (else libp11's default, p11-kit's proxy); the PIN
         * $CANFLEET_PKCS11_PIN when set and the URI has none. */
        const char *key;
};

struct cf_bundle_create_options {
        const struct cf_bundle_key *keys; /* one per signer, at least one */
        size_t n_keys;
        const char *const *intermediates; /* PEM files of certificates to carry in the CMS */
        size_t n_intermediates;
        const char *description; /* NULL: none */
};

/*
 * Make a bundle from a valid area image (the full image check must pass): the manifest is filled
 * from the trailer, signed by every key (SHA-256, signed attributes, the manifest inline), the
 * signers' and intermediates' certificates included. Each signer's certificate must match its key.
 * On success *ret (malloc'ed, *ret_size bytes) is the whole .cfb file. The result is run through
 * cf_bundle_inspect() before it is handed back. -EINVAL bad image or key/cert, -ENOENT a file
 * missing, -EMSGSIZE the CMS exceeds 64 KiB, -ENOMEM.
 */
int cf_bundle_create(const uint8_t image[CF_IMAGE_AREA_SIZE], const struct cf_bundle_create_options *o,
                     uint8_t **ret, size_t *ret_size, struct cf_bundle_error *err);

/* The same for a serial target's raw image (docs/design.md §8): the manifest is the one given (target,
 * part_id, version "X.Y.Z", release; hw_id 0), filled with the image's size and sha256; the image must
 * pass the target's image check. */
struct cf_bundle_target {
        const char *target;  /* "lpc-isp", "adi-uart" */
        const char *part_id; /* as in the manifest */
        const char *version;
        uint32_t release;
};
int cf_bundle_create_raw(const uint8_t *image, size_t size, const struct cf_bundle_target *t,
                         const struct cf_bundle_create_options *o, uint8_t **ret, size_t *ret_size,
                         struct cf_bundle_error *err);
/* The target's own checks of a raw image (also the "image" check of such a bundle): 0 or -EBADMSG with
 * a reason in why: lpc-isp: 32..CF_BUNDLE_RAW_MAX bytes with a valid vector checksum; adi-uart: at most
 * 128 KB. */
int cf_bundle_raw_image_check(const char *target, const uint8_t *image, size_t size, char *why, size_t why_len);
/* What a raw image's manifest says, as the fields of a trailer it does not have: hw_id, version,
 * release, payload_len and area_size (image_size), payload_sha256 (image_sha256); the rest 0. */
void cf_bundle_manifest_info(const struct cf_bundle_manifest *m, struct cf_image_info *info);
/* The manifest's part_id for what an operator names (target lpc-isp: "LPC1768" or a part id as
 * "0x26013F37" or decimal, which must be a known LPC17xx part; adi-uart: "ADuCM360", "ADuCM361", the
 * ID packet's product identifier) into part_id, and the part's flash size. -EINVAL unknown part. */
int cf_bundle_part_resolve(const char *target, const char *given, char *part_id, size_t len, uint32_t *flash_size);
/* A part_id valid for target ("0x" + 8 hex for lpc-isp; 1..15 printable ASCII for adi-uart). */
bool cf_bundle_part_id_valid(const char *target, const char *part_id);

/* Format a manifest for an image trailer as bundle create does (no trailing newline); malloc'ed
 * string or NULL when out of memory. */
char *cf_bundle_manifest_format(const struct cf_image_info *info, const uint8_t image_sha256[32],
                                const char *description);

/* The same for a dual-bank bundle: bank1 and bank2 are the two links of one application (each must pass
 * cf_image_check_link() for its bank, and their trailers agree on hw_id, version and release). *ret is
 * [bank1][bank2][CMS][length]. Errors as cf_bundle_create(). */
int cf_bundle_create_dual(const uint8_t bank1[CF_IMAGE_AREA_SIZE], const uint8_t bank2[CF_IMAGE_AREA_SIZE],
                          const struct cf_bundle_create_options *o, uint8_t **ret, size_t *ret_size,
                          struct cf_bundle_error *err);
char *cf_bundle_manifest_format_dual(const struct cf_image_info *info, const uint8_t sha1[32],
                                     const uint8_t sha2[32], const char *description);
