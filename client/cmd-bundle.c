/* canfleetctl bundle create / verify / inspect: signed bundles, offline (all checks in lib/bundle.c). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "bundle.h"
#include "cmd-bundle.h"
#include "canfleet/layout.h"
#include "file-io.h"
#include "fleet-error.h"

#define EXIT_INVALID 1
#define EXIT_USAGE   2
#define MAX_ARGS     8 /* signers (bundle.c's own limit) and intermediate files */

static const char *prog = "canfleetctl bundle";

/* with --json the message also becomes the error object on stdout (fleet-error.h) */
#define error(...) cf_error_deferf(prog, __VA_ARGS__)

static void bundle_usage(FILE *f)
{
        fprintf(
            f,
            "Usage: canfleetctl bundle create IMAGE [IMAGE2] --cert CERT --key KEY [--cert CERT --key "
            "KEY]...\n"
            "                                 [--intermediate PEM]... [--description TEXT] -o OUT.cfb\n"
            "       canfleetctl bundle create RAW.bin --target lpc-isp|adi-uart --part PART --version X.Y.Z\n"
            "                                 [--release N] --cert CERT --key KEY ... -o OUT.cfb\n"
            "       canfleetctl bundle verify [--json] FILE.cfb --keyring PEM\n"
            "       canfleetctl bundle inspect [--json] FILE.cfb\n"
            "\n"
            "Signed bundles, offline; no daemon is needed. canfleetd flashes only bundles signed by a key\n"
            "that chains to its keyring. A bundle (.cfb) is:\n"
            "  [the 256 KB area image][CMS SignedData with the manifest inline][CMS length, u64 "
            "big-endian]\n"
            "The manifest is JSON: format \"canfleet-bundle-1\", hw_id, version, release, image_size,\n"
            "image_sha256 (of the whole image) and an optional description.\n"
            "A dual-bank bundle (STM32F7 dual-bank nodes) carries the two links of one application,\n"
            "[bank-1 image][bank-2 image][CMS][length], manifest format \"canfleet-bundle-2\" with\n"
            "layout \"dual-bank\" and images [{bank, sha256}, {bank, sha256}]; canfleetd sends each node\n"
            "the link for its inactive bank.\n"
            "\n"
            "create IMAGE     sign an area image made by 'canfleetctl image pack'; the manifest is\n"
            "                 filled from the image trailer\n"
            "create IMAGE IMAGE2  a dual-bank bundle of the application's two links (packed with\n"
            "                 'image pack --bank 1' and '--bank 2'), in either order: each image's\n"
            "                 reset vector says which bank it is linked for\n"
            "     --cert CERT        the signer's certificate (PEM)\n"
            "     --key KEY          its private key: a PEM file, or a PKCS#11 URI 'pkcs11:token=...;\n"
            "                        object=...' used through OpenSSL's pkcs11 engine (module from\n"
            "                        $CANFLEET_PKCS11_MODULE, PIN from the URI's pin-value or\n"
            "                        $CANFLEET_PKCS11_PIN). Give --cert/--key once per signer, in pairs:\n"
            "                        several signers carry an old and a new key through a rotation\n"
            "     --intermediate PEM intermediate CA certificates to carry in the bundle (repeatable)\n"
            "     --description TEXT free text kept in the manifest\n"
            "     --target T         a serial node's raw image (docs/design.md §8): lpc-isp (NXP LPC17xx\n"
            "                        ISP) or adi-uart (ADuCM36x); IMAGE is then the raw binary made by\n"
            "                        'canfleetctl image pack --target', and the manifest says target,\n"
            "                        part_id, version and release (there is no trailer)\n"
            "     --part PART        with --target: LPC1768 (or another LPC17xx, or its part id 0x...),\n"
            "                        ADuCM360 or ADuCM361; canfleetd refuses the bundle for another chip\n"
            "  -V --version X.Y.Z    with --target: the firmware version\n"
            "     --release N        with --target: the release counter (default 0)\n"
            "  -o --output OUT.cfb   where to write the bundle (replaced atomically)\n"
            "\n");
        /* two strings: ISO C compilers need not take one longer than 4095 characters */
        fprintf(
            f,
            "verify FILE.cfb  run every check canfleetd runs before it sends a frame: sizes, CMS\n"
            "                 SignedData, every signature, a signer chaining to the keyring (codeSigning\n"
            "                 where a certificate has an extendedKeyUsage), manifest, image sha256,\n"
            "                 trailer = manifest, CRC. Exit status 0 valid, 1 refused (the check named)\n"
            "     --keyring PEM      the trust anchors (canfleetd's 'keyring')\n"
            "     --json             print one JSON object\n"
            "\n"
            "inspect FILE.cfb print the manifest, the signers (subject, issuer, validity) and the image\n"
            "                 trailer, and check all but the trust (no keyring needed); exit 1 when a\n"
            "                 check fails\n"
            "     --json             print one JSON object\n"
            "\n"
            "The stock tools make the same bundle:\n"
            "  openssl cms -sign -binary -nodetach -outform DER -in manifest.json -signer cert.pem \\\n"
            "      -inkey key.pem [-certfile intermediates.pem] -out m.cms\n"
            "  cat app.img m.cms > app.cfb\n"
            "  python3 -c 'import os,sys; "
            "sys.stdout.buffer.write(os.path.getsize(\"m.cms\").to_bytes(8,\"big\"))' >> app.cfb\n"
            "\n"
            "Examples:\n"
            "  canfleetctl bundle create app.img --cert release.crt --key release.key -o app.cfb\n"
            "  canfleetctl bundle create app-b1.img app-b2.img --cert release.crt --key release.key -o "
            "app-f7.cfb\n"
            "  canfleetctl bundle create app.img --cert hsm.crt --key 'pkcs11:token=fleet;object=release' "
            "-o app.cfb\n"
            "  canfleetctl bundle verify app.cfb --keyring /etc/canfleet/keyring.pem\n"
            "  canfleetctl bundle inspect --json app.cfb\n");
}

static int bad_option(int c, char **argv, const char *sub)
{
        const char *opt = argv[optind - 1];
        if (c == ':')
                error("option '%s' needs a value; see 'canfleetctl bundle --help'", opt);
        else if (optopt && optopt != '?')
                error("unknown option '-%c' for '%s'; see 'canfleetctl bundle --help'", optopt, sub);
        else
                error("unknown option '%s' for '%s'; see 'canfleetctl bundle --help'", opt, sub);
        return EXIT_USAGE;
}

/* The one file argument of a subcommand. */
static const char *one_file(int argc, char **argv, const char *what)
{
        if (optind >= argc) {
                error("no %s given; see 'canfleetctl bundle --help'", what);
                return NULL;
        }
        if (argc - optind > 1) {
                error("one %s only, got '%s' and '%s'", what, argv[optind], argv[optind + 1]);
                return NULL;
        }
        return argv[optind];
}

static void format_time(time_t t, char *buf, size_t len)
{
        struct tm tm;
        if (t == 0 || !gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, len, "unknown");
}

static void hex(const uint8_t *p, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
}

/* ---- create ----------------------------------------------------------------------------------- */

static uint8_t area[CF_IMAGE_AREA_SIZE], area2[CF_IMAGE_AREA_SIZE];

static int read_area(const char *input, uint8_t *buf)
{
        uint64_t len;
        int r = cf_read_file(input, buf, CF_IMAGE_AREA_SIZE, &len);
        if (r < 0) {
                error("cannot read '%s': %s", input, cf_read_strerror(r));
                return -1;
        }
        if (len != CF_IMAGE_AREA_SIZE) {
                error("'%s' is %" PRIu64
                      " bytes, an area image is exactly %u (256K); make one with 'canfleetctl "
                      "image pack'",
                      input, len, CF_IMAGE_AREA_SIZE);
                return -1;
        }
        return 0;
}

static uint8_t raw[CF_BUNDLE_RAW_MAX];

/* A serial target's raw image (docs/design.md §8): the manifest from the options, no trailer. */
static int bundle_create_raw(const char *input, const char *target, const char *part, const char *version,
                             const char *release, const struct cf_bundle_create_options *o, const char *output)
{
        if (!target || (strcmp(target, "lpc-isp") != 0 && strcmp(target, "adi-uart") != 0)) {
                if (target)
                        error("--target '%s' is not lpc-isp or adi-uart", target);
                else
                        error("--part, --version and --release are for a serial node's raw image: give "
                              "--target lpc-isp or adi-uart too (an area image's manifest comes from its trailer)");
                return EXIT_USAGE;
        }
        if (!part) {
                error("missing --part (the chip the image is for: LPC1768, ADuCM360 ...)");
                return EXIT_USAGE;
        }
        if (!version) {
                error("missing --version X.Y.Z (a raw image has no trailer to take it from)");
                return EXIT_USAGE;
        }
        char part_id[32];
        uint32_t flash;
        if (cf_bundle_part_resolve(target, part, part_id, sizeof part_id, &flash) < 0) {
                error("--part '%s' is not a known %s part (%s)", part, target,
                      strcmp(target, "lpc-isp") == 0 ? "LPC1769, LPC1768, ... or a part id as 0x26013F37"
                                                     : "ADuCM360 or ADuCM361");
                return EXIT_USAGE;
        }
        uint64_t rel = 0;
        if (release) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(release, &end, 0);
                if (errno || end == release || *end || release[0] == '-' || v > UINT32_MAX) {
                        error("--release '%s' is not a release counter 0-4294967295", release);
                        return EXIT_USAGE;
                }
                rel = v;
        }
        uint64_t len;
        int r = cf_read_file(input, raw, sizeof(raw), &len);
        if (r < 0) {
                error("cannot read '%s': %s", input, cf_read_strerror(r));
                return EXIT_INVALID;
        }
        if (len > flash) {
                error("'%s' is %" PRIu64 " bytes, more than the %" PRIu32 " bytes of flash of %s", input, len, flash, part);
                return EXIT_INVALID;
        }
        struct cf_bundle_target t = {.target = target, .part_id = part_id, .version = version, .release = (uint32_t) rel};
        struct cf_bundle_error err = {0};
        uint8_t *bundle = NULL;
        size_t size = 0;
        r = cf_bundle_create_raw(raw, (size_t) len, &t, o, &bundle, &size, &err);
        if (r < 0) {
                error("%s: %s", input, err.message);
                return EXIT_INVALID;
        }
        r = cf_write_atomic(output, bundle, size);
        free(bundle);
        if (r < 0) {
                error("cannot write '%s': %s", output, strerror(-r));
                return EXIT_INVALID;
        }
        printf("%s: %s %s, version %s, release %" PRIu64 ", %" PRIu64 " bytes, %zu signer%s, CMS %zu bytes\n", output,
               target, part_id, version, rel, len, o->n_keys, o->n_keys == 1 ? "" : "s",
               size - (size_t) len - CF_BUNDLE_LENGTH_SIZE);
        return 0;
}

static int bundle_create(int argc, char **argv)
{
        enum { ARG_CERT = 0x100, ARG_KEY, ARG_INTERMEDIATE, ARG_DESCRIPTION, ARG_TARGET, ARG_PART, ARG_RELEASE };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"target", required_argument, NULL, ARG_TARGET},
            {"part", required_argument, NULL, ARG_PART},
            {"version", required_argument, NULL, 'V'},
            {"release", required_argument, NULL, ARG_RELEASE},
            {"cert", required_argument, NULL, ARG_CERT},
            {"key", required_argument, NULL, ARG_KEY},
            {"intermediate", required_argument, NULL, ARG_INTERMEDIATE},
            {"description", required_argument, NULL, ARG_DESCRIPTION},
            {"output", required_argument, NULL, 'o'},
            {NULL, 0, NULL, 0},
        };
        struct cf_bundle_key keys[MAX_ARGS] = {0};
        const char *intermediates[MAX_ARGS];
        size_t n_certs = 0, n_keys = 0, n_inter = 0;
        const char *output = NULL, *description = NULL;
        const char *target = NULL, *part = NULL, *version = NULL, *release = NULL;
        int c, r;

        prog = "canfleetctl bundle create";
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hV:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        bundle_usage(stdout);
                        return 0;
                case ARG_TARGET:
                        target = optarg;
                        break;
                case ARG_PART:
                        part = optarg;
                        break;
                case 'V':
                        version = optarg;
                        break;
                case ARG_RELEASE:
                        release = optarg;
                        break;
                case ARG_CERT:
                case ARG_KEY:
                        if ((c == ARG_CERT ? n_certs : n_keys) >= MAX_ARGS) {
                                error("at most %d signers", MAX_ARGS);
                                return EXIT_USAGE;
                        }
                        if (c == ARG_CERT)
                                keys[n_certs++].cert = optarg;
                        else
                                keys[n_keys++].key = optarg;
                        break;
                case ARG_INTERMEDIATE:
                        if (n_inter >= MAX_ARGS) {
                                error("at most %d --intermediate files; put several certificates in one PEM",
                                      MAX_ARGS);
                                return EXIT_USAGE;
                        }
                        intermediates[n_inter++] = optarg;
                        break;
                case ARG_DESCRIPTION:
                        description = optarg;
                        break;
                case 'o':
                        output = optarg;
                        break;
                default:
                        return bad_option(c, argv, "bundle create");
                }
        }
        const char *input = NULL, *input2 = NULL;
        if (argc - optind == 2) {
                input = argv[optind];
                input2 = argv[optind + 1];
        } else if (!(input = one_file(argc, argv, "image")))
                return EXIT_USAGE;
        if (n_certs == 0 || n_keys == 0) {
                error("missing %s; a bundle needs at least one signer: --cert CERT --key KEY",
                      n_certs == 0 ? "--cert" : "--key");
                return EXIT_USAGE;
        }
        if (n_certs != n_keys) {
                error("%zu --cert but %zu --key: give them in pairs, one pair per signer", n_certs, n_keys);
                return EXIT_USAGE;
        }
        if (!output) {
                error("missing -o OUT.cfb (where to write the bundle)");
                return EXIT_USAGE;
        }
        struct cf_bundle_create_options o = {
            .keys = keys,
            .n_keys = n_keys,
            .intermediates = intermediates,
            .n_intermediates = n_inter,
            .description = description,
        };
        if (target || part || version || release)
                return bundle_create_raw(input, target, part, version, release, &o, output);

        if (read_area(input, area) < 0 || (input2 && read_area(input2, area2) < 0))
                return EXIT_INVALID;
        const uint8_t *bank1 = area, *bank2 = area2;
        if (input2) {
                /* either order: each link says by its reset vector which bank it is for */
                unsigned b1 = cf_image_link_bank(area), b2 = cf_image_link_bank(area2);
                if (b1 == 2 && b2 == 1) {
                        bank1 = area2;
                        bank2 = area;
                } else if (b1 != 1 || b2 != 2) {
                        error("a dual-bank bundle needs one image linked for bank 1 and one for bank 2; "
                              "'%s' is linked for %s, '%s' for %s (canfleetctl image inspect shows it)",
                              input, b1 ? (b1 == 1 ? "bank 1" : "bank 2") : "neither bank", input2,
                              b2 ? (b2 == 1 ? "bank 1" : "bank 2") : "neither bank");
                        return EXIT_INVALID;
                }
        }

        struct cf_bundle_error err = {0};
        uint8_t *bundle = NULL;
        size_t size = 0;
        r = input2 ? cf_bundle_create_dual(bank1, bank2, &o, &bundle, &size, &err)
                   : cf_bundle_create(area, &o, &bundle, &size, &err);
        if (r < 0) {
                error("%s: %s", input2 ? output : input, err.message);
                return EXIT_INVALID;
        }
        r = cf_write_atomic(output, bundle, size);
        free(bundle);
        if (r < 0) {
                error("cannot write '%s': %s", output, strerror(-r));
                return EXIT_INVALID;
        }
        struct cf_image_info info;
        cf_image_info_parse(area + CF_TRAILER_OFFSET, &info);
        size_t n_images = input2 ? 2 : 1;
        printf("%s: %sversion %u.%u.%u, hw id 0x%04x, release %" PRIu32 ", %zu signer%s, CMS %zu bytes\n",
               output, input2 ? "dual-bank (links for bank 1 and 2), " : "", info.ver_major, info.ver_minor,
               info.ver_patch, info.hw_id, info.release, n_keys, n_keys == 1 ? "" : "s",
               size - n_images * CF_IMAGE_AREA_SIZE - CF_BUNDLE_LENGTH_SIZE);
        return 0;
}

/* ---- verify and inspect ----------------------------------------------------------------------- */

static uint8_t file_buf[CF_BUNDLE_MAX_SIZE];

/* Read a bundle file; a file beyond the largest bundle is refused here as the size check would. */
static int read_bundle(const char *path, size_t *size)
{
        uint64_t len;
        int r = cf_read_file(path, file_buf, sizeof(file_buf), &len);
        if (r < 0) {
                error("cannot read '%s': %s", path, cf_read_strerror(r));
                return -1;
        }
        if (len > sizeof(file_buf)) {
                error("%s: refused: size: the file is %" PRIu64 " bytes, more than the largest bundle (%zu)",
                      path, len, sizeof(file_buf));
                return -1;
        }
        *size = (size_t) len;
        return 0;
}

static const char *trust_str(enum cf_bundle_trust t)
{
        return t == CF_BUNDLE_TRUST_OK        ? "trusted"
               : t == CF_BUNDLE_TRUST_REFUSED ? "refused"
                                              : "not checked";
}

static struct json_object *json_time(time_t t)
{
        char buf[32];
        format_time(t, buf, sizeof(buf));
        return t ? json_object_new_string(buf) : NULL;
}

/* An image's trailer; bank: what the image is linked for in a dual-bank bundle (0: a single image). */
/* An image's trailer fields and whether the image checks out (valid: decided by the caller). */
static struct json_object *trailer_json(const struct cf_image_info *t, bool valid, unsigned bank)
{
        char buf[80], sha[65];
        struct json_object *to = json_object_new_object();
        if (!to)
                return NULL;
        snprintf(buf, sizeof(buf), "%u.%u.%u", t->ver_major, t->ver_minor, t->ver_patch);
        hex(t->payload_sha256, 32, sha);
        json_object_object_add(to, "valid", json_object_new_boolean(valid));
        json_object_object_add(to, "version", json_object_new_string(buf));
        json_object_object_add(to, "hw_id", json_object_new_int(t->hw_id));
        json_object_object_add(to, "release", json_object_new_int64(t->release));
        json_object_object_add(to, "payload_len", json_object_new_int64(t->payload_len));
        json_object_object_add(to, "build_time", json_object_new_int64(t->build_time));
        json_object_object_add(to, "payload_sha256", json_object_new_string(sha));
        if (bank)
                json_object_object_add(to, "bank", json_object_new_int((int) bank));
        return to;
}

static struct json_object *bundle_json(const char *path, const struct cf_bundle *b, int r,
                                       const struct cf_bundle_error *err, bool trust_checked)
{
        char buf[80], sha[65];
        struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "schema", json_object_new_int(1));
        json_object_object_add(o, "file", json_object_new_string(path));
        json_object_object_add(o, "valid", json_object_new_boolean(r >= 0));
        json_object_object_add(o, "failed_check",
                               r < 0 ? json_object_new_string(cf_bundle_check_name(err->check)) : NULL);
        json_object_object_add(o, "error", r < 0 ? json_object_new_string(err->message) : NULL);
        json_object_object_add(o, "trust_checked", json_object_new_boolean(trust_checked));
        if (!b)
                return o;
        json_object_object_add(o, "cms_size", json_object_new_int64((int64_t) b->cms_len));

        if (b->have_manifest) {
                const struct cf_bundle_manifest *m = &b->manifest;
                struct json_object *mo = json_object_new_object();
                snprintf(buf, sizeof(buf), "%u.%u.%u", m->ver_major, m->ver_minor, m->ver_patch);
                hex(m->image_sha256, 32, sha);
                json_object_object_add(
                    mo, "format",
                    json_object_new_string(m->n_images == 2 ? CF_BUNDLE_FORMAT_DUAL : CF_BUNDLE_FORMAT));
                json_object_object_add(mo, "hw_id", json_object_new_int(m->hw_id));
                json_object_object_add(mo, "version", json_object_new_string(buf));
                json_object_object_add(mo, "release", json_object_new_int64(m->release));
                json_object_object_add(mo, "image_size", json_object_new_int64(m->image_size));
                json_object_object_add(mo, "image_sha256", json_object_new_string(sha));
                json_object_object_add(mo, "description",
                                       m->description ? json_object_new_string(m->description) : NULL);
                if (m->n_images == 2) {
                        struct json_object *ia = json_object_new_array();
                        json_object_object_add(mo, "layout", json_object_new_string(CF_BUNDLE_LAYOUT_DUAL));
                        for (int i = 0; ia && i < 2; i++) {
                                struct json_object *e = json_object_new_object();
                                hex(i == 0 ? m->image_sha256 : m->image2_sha256, 32, sha);
                                json_object_object_add(e, "bank", json_object_new_int(i + 1));
                                json_object_object_add(e, "sha256", json_object_new_string(sha));
                                json_object_array_add(ia, e);
                        }
                        json_object_object_add(mo, "images", ia);
                }
                if (m->target[0]) { /* a serial node's raw image only: an area image's manifest is as it was */
                        json_object_object_add(mo, "target", json_object_new_string(m->target));
                        json_object_object_add(mo, "part_id", json_object_new_string(m->part_id));
                }
                json_object_object_add(o, "manifest", mo);
        } else
                json_object_object_add(o, "manifest", NULL);

        struct json_object *sa = json_object_new_array();
        for (size_t i = 0; i < b->n_signers; i++) {
                const struct cf_bundle_signer *s = &b->signers[i];
                struct json_object *so = json_object_new_object();
                json_object_object_add(so, "subject",
                                       s->subject ? json_object_new_string(s->subject) : NULL);
                json_object_object_add(so, "issuer", s->issuer ? json_object_new_string(s->issuer) : NULL);
                json_object_object_add(so, "serial", json_object_new_string(s->serial));
                json_object_object_add(so, "not_before", json_time(s->not_before));
                json_object_object_add(so, "not_after", json_time(s->not_after));
                json_object_object_add(so, "signature_valid",
                                       s->signature_checked ? json_object_new_boolean(s->signature_ok)
                                                            : NULL);
                json_object_object_add(so, "trust", json_object_new_string(trust_str(s->trust)));
                json_object_object_add(so, "trust_error",
                                       s->trust_error ? json_object_new_string(s->trust_error) : NULL);
                json_object_array_add(sa, so);
        }
        json_object_object_add(o, "signers", sa);

        /* a serial target's raw image has no trailer (docs/design.md §8): its own check, zeros */
        bool is_raw = b->image_size != CF_IMAGE_AREA_SIZE || (b->have_manifest && b->manifest.target[0]);
        if (is_raw) {
                char why[256];
                bool valid = b->have_manifest && b->manifest.target[0] &&
                             cf_bundle_raw_image_check(b->manifest.target, b->image, b->image_size, why,
                                                       sizeof why) == 0;
                json_object_object_add(o, "image", trailer_json(&b->info, valid, 0));
        } else if (b->n_images == 2) {
                /* a dual-bank bundle: "image" is the bank-1 link, "image2" the bank-2 link */
                for (unsigned bank = 1; bank <= 2; bank++) {
                        const uint8_t *image = bank == 1 ? b->image : b->image2;
                        bool valid = cf_image_check_full_at(image, NULL, cf_f7_app_addr(bank)) == CF_IMAGE_OK;
                        json_object_object_add(o, bank == 1 ? "image" : "image2",
                                               trailer_json(bank == 1 ? &b->info : &b->info2, valid, bank));
                }
        } else {
                json_object_object_add(o, "image", trailer_json(&b->info, cf_image_check(b->image, NULL) == CF_IMAGE_OK, 0));
        }
        return o;
}

static int print_json(struct json_object *o)
{
        if (!o)
                return -ENOMEM;
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        int r = s && puts(s) >= 0 ? 0 : -EIO;
        json_object_put(o);
        return r;
}

static void print_text(const char *path, const struct cf_bundle *b)
{
        char t1[32], t2[32], sha[65];

        printf("file:              %s\n", path);
        printf("CMS:               %zu bytes\n", b->cms_len);
        if (b->have_manifest) {
                const struct cf_bundle_manifest *m = &b->manifest;
                hex(m->image_sha256, 32, sha);
                printf("manifest:\n");
                printf("  format           %s\n",
                       m->n_images == 2 ? CF_BUNDLE_FORMAT_DUAL : CF_BUNDLE_FORMAT);
                if (m->n_images == 2)
                        printf("  layout           %s\n", CF_BUNDLE_LAYOUT_DUAL);
                printf("  hardware id      0x%04x\n", m->hw_id);
                printf("  version          %u.%u.%u\n", m->ver_major, m->ver_minor, m->ver_patch);
                printf("  release          %" PRIu32 "\n", m->release);
                printf("  image size       %" PRIu32 "\n", m->image_size);
                if (m->n_images == 2) {
                        printf("  bank 1 sha256    %s\n", sha);
                        hex(m->image2_sha256, 32, sha);
                        printf("  bank 2 sha256    %s\n", sha);
                } else
                        printf("  image sha256     %s\n", sha);
                if (m->description)
                        printf("  description      %s\n", m->description);
                if (m->target[0])
                        printf("  target           %s, part %s\n", m->target, m->part_id);
        } else
                printf("manifest:          not read (see the failed check)\n");
        for (size_t i = 0; i < b->n_signers; i++) {
                const struct cf_bundle_signer *s = &b->signers[i];
                format_time(s->not_before, t1, sizeof(t1));
                format_time(s->not_after, t2, sizeof(t2));
                printf("signer %zu:          %s\n", i + 1, s->subject ? s->subject : "?");
                printf("  issuer           %s\n", s->issuer ? s->issuer : "?");
                printf("  serial           %s\n", s->serial);
                printf("  valid            %s to %s\n", t1, t2);
                printf("  signature        %s\n",
                       s->signature_checked ? (s->signature_ok ? "valid" : "INVALID") : "not checked");
                if (s->trust != CF_BUNDLE_TRUST_UNCHECKED)
                        printf("  trust            %s%s%s\n", trust_str(s->trust),
                               s->trust_error ? ": " : "", s->trust_error ? s->trust_error : "");
        }
        if (b->image_size != CF_IMAGE_AREA_SIZE || (b->have_manifest && b->manifest.target[0])) {
                printf("image:             raw %s image, %zu bytes (no trailer)\n",
                       b->have_manifest && b->manifest.target[0] ? b->manifest.target : "serial", b->image_size);
                return;
        }
        for (unsigned k = 0; k < b->n_images; k++) {
                const struct cf_image_info *t = k == 0 ? &b->info : &b->info2;
                format_time((time_t) t->build_time, t1, sizeof(t1));
                hex(t->payload_sha256, 32, sha);
                if (b->n_images == 2)
                        printf("image trailer, bank %u link:\n", k + 1);
                else
                        printf("image trailer:\n");
                printf("  version          %u.%u.%u\n", t->ver_major, t->ver_minor, t->ver_patch);
                printf("  hardware id      0x%04x\n", t->hw_id);
                printf("  release          %" PRIu32 "\n", t->release);
                printf("  payload length   %" PRIu32 " bytes\n", t->payload_len);
                printf("  build time       %s\n", t1);
                printf("  payload sha256   %s\n", sha);
        }
}

/* verify (keyring given) and inspect (none) */
static int bundle_check_cmd(int argc, char **argv, bool verify)
{
        enum { ARG_JSON = 0x100, ARG_KEYRING };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"json", no_argument, NULL, ARG_JSON},
            {"keyring", required_argument, NULL, ARG_KEYRING},
            {NULL, 0, NULL, 0},
        };
        const char *keyring_path = NULL;
        bool json = false;
        int c, r;

        prog = verify ? "canfleetctl bundle verify" : "canfleetctl bundle inspect";
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        bundle_usage(stdout);
                        return 0;
                case ARG_JSON:
                        json = true;
                        break;
                case ARG_KEYRING:
                        if (!verify) {
                                error(
                                    "inspect takes no --keyring; 'canfleetctl bundle verify FILE --keyring "
                                    "PEM' checks the trust");
                                return EXIT_USAGE;
                        }
                        keyring_path = optarg;
                        break;
                default:
                        return bad_option(c, argv, verify ? "bundle verify" : "bundle inspect");
                }
        }
        const char *path = one_file(argc, argv, "bundle file");
        if (!path)
                return EXIT_USAGE;
        if (verify && !keyring_path) {
                error("missing --keyring PEM (the trust anchors; 'bundle inspect' reads a bundle without)");
                return EXIT_USAGE;
        }

        struct cf_bundle_error err = {0};
        struct cf_keyring *keyring = NULL;
        if (verify) {
                r = cf_keyring_load(keyring_path, &keyring, &err);
                if (r < 0) {
                        error("%s", err.message);
                        return EXIT_INVALID;
                }
        }
        size_t size;
        if (read_bundle(path, &size) < 0) {
                cf_keyring_free(keyring);
                return EXIT_INVALID;
        }

        /* with the keyring, the same result as cf_bundle_verify(), and what could be read of a
         * refused bundle for the report */
        struct cf_bundle *b = NULL;
        r = cf_bundle_inspect(file_buf, size, keyring, &b, &err);
        cf_keyring_free(keyring);
        if (r == -ENOMEM) {
                error("out of memory");
                cf_bundle_free(b);
                return EXIT_INVALID;
        }

        if (json) {
                if (print_json(bundle_json(path, b, r, &err, verify)) < 0) {
                        error("cannot print JSON");
                        r = -EIO;
                }
        } else if (verify) {
                if (r >= 0) {
                        const struct cf_bundle_manifest *m = &b->manifest;
                        size_t trusted = 0;
                        for (size_t i = 0; i < b->n_signers; i++)
                                trusted += b->signers[i].trust == CF_BUNDLE_TRUST_OK;
                        if (m->target[0])
                                printf("%s: valid: version %u.%u.%u, %s part %s, release %" PRIu32
                                       "; trusted signer%s:",
                                       path, m->ver_major, m->ver_minor, m->ver_patch, m->target, m->part_id,
                                       m->release, trusted == 1 ? "" : "s");
                        else
                                printf("%s: valid: version %u.%u.%u, hw id 0x%04x, release %" PRIu32
                                       "; trusted signer%s:",
                                       path, m->ver_major, m->ver_minor, m->ver_patch, m->hw_id, m->release,
                                       trusted == 1 ? "" : "s");
                        for (size_t i = 0, n = 0; i < b->n_signers; i++)
                                if (b->signers[i].trust == CF_BUNDLE_TRUST_OK)
                                        printf("%s %s", n++ ? ";" : "", b->signers[i].subject);
                        printf("\n");
                }
        } else if (b)
                print_text(path, b);
        if (r < 0 && !json)
                error("%s: refused: %s", path, err.message);
        else if (!verify && !json && r >= 0)
                printf("checks:            all passed (trust not checked: 'canfleetctl bundle verify "
                       "--keyring')\n");
        cf_bundle_free(b);
        if (fflush(stdout) != 0) {
                error("cannot write the output: %s", strerror(errno));
                return EXIT_INVALID;
        }
        return r < 0 ? EXIT_INVALID : 0;
}

/* ---- dispatch --------------------------------------------------------------------------------- */

int cmd_bundle(int argc, char **argv)
{
        if (argc < 2) {
                error("which one? 'canfleetctl bundle create|verify|inspect ...'; see 'canfleetctl bundle "
                      "--help'");
                return EXIT_USAGE;
        }
        const char *sub = argv[1];
        if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
                bundle_usage(stdout);
                return 0;
        }
        optind = 0;
        if (strcmp(sub, "create") == 0)
                return bundle_create(argc - 1, argv + 1);
        if (strcmp(sub, "verify") == 0)
                return bundle_check_cmd(argc - 1, argv + 1, true);
        if (strcmp(sub, "inspect") == 0)
                return bundle_check_cmd(argc - 1, argv + 1, false);
        error("unknown subcommand '%s'; 'create', 'verify' or 'inspect', see 'canfleetctl bundle --help'",
              sub);
        return EXIT_USAGE;
}
