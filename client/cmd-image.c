/* canfleetctl image pack / inspect: build a 256 KB area image with trailer and CRC, check one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "canfleet/ccp.h" /* byte order helpers */
#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/sha256.h"
#include "bundle.h"
#include "canfleet/lpc-isp.h"
#include "cmd-image.h"
#include "canfleet/layout.h"
#include "file-io.h"
#include "fleet-error.h"

#define EXIT_BAD_INPUT 1
#define EXIT_USAGE     2

static const char *prog = "canfleetctl image";

/* with --json the message also becomes the error object on stdout (fleet-error.h) */
#define error(...) cf_error_deferf(prog, __VA_ARGS__)

static void image_usage(FILE *f)
{
        fprintf(
            f,
            "Usage: canfleetctl image pack APP.bin --version X.Y.Z --hw-id ID [OPTIONS] -o OUT\n"
            "       canfleetctl image pack APP.bin --target lpc-isp|adi-uart [--part PART] -o OUT.bin\n"
            "       canfleetctl image inspect [--json] FILE\n"
            "\n"
            "Offline commands for the images canfleetd flashes; no daemon is needed.\n"
            "\n"
            "An area image is exactly 256 KB (0x40000 bytes), the size of a node's application and\n"
            "staging areas:\n"
            "  0x00000  the application binary, linked at 0x08020000 (vector table first)\n"
            "  ...      0xFF padding, as erased flash\n"
            "  0x3FFC0  60-byte trailer: magic \"CFIM\", layout, hardware id, version, release,\n"
            "           payload length, area size, build time, SHA-256 of the payload\n"
            "  0x3FFFC  CRC32 of bytes 0x00000-0x3FFFB as the STM32 CRC unit computes it, little-endian\n"
            "\n"
            "pack APP.bin   pad a raw binary (arm-none-eabi-objcopy -O binary) and add trailer and CRC\n"
            "  -V --version X.Y.Z  firmware version; X and Y 0-255, Z 0-65535 (required)\n"
            "     --hw-id ID       hardware id the image is for, 0-65535, decimal or 0x hex; a node\n"
            "                      refuses an image built for another id (required)\n"
            "     --release N      anti-rollback counter, 0-4294967295; a node refuses an image whose\n"
            "                      release is below the running one (default 0: no protection)\n"
            "     --build-time T   seconds since 1970 or YYYY-MM-DDTHH:MM:SSZ, 0 for unknown\n"
            "                      (default $SOURCE_DATE_EPOCH when set, else the current time)\n"
            "     --size SIZE      area size: 256K, 262144 or 0x40000 -- the only size of this\n"
            "                      flash layout (default 256K)\n"
            "     --bank N         for a dual-bank (STM32F7) node: the binary is linked for bank N,\n"
            "                      1 (at 0x08020000, as without --bank) or 2 (at 0x08120000);\n"
            "                      'canfleetctl bundle create' takes both links into one bundle\n"
            "  -o --output OUT     where to write the image (replaced atomically)\n"
            "     --target T       a serial node's raw image instead (docs/design.md §8): lpc-isp writes\n"
            "                      the vector table checksum into word 7 (the LPC boot ROM starts only\n"
            "                      such an image), adi-uart checks the size; no trailer, no padding.\n"
            "                      Sign it with 'canfleetctl bundle create --target'\n"
            "     --part PART      with --target: the chip, for its flash size (LPC1768 by default,\n"
            "                      ADuCM360 by default)\n"
            "\n"
            "inspect FILE   print the trailer and whether CRC, trailer, vector table, payload SHA-256\n"
            "               and padding (0xFF from the payload's end up to the trailer) are valid;\n"
            "               canfleetd runs the same check; exit status 0 when valid, 1 when not.\n"
            "               An image linked for bank 2 of a dual-bank node is checked as such\n"
            "     --json           print one JSON object instead\n"
            "\n"
            "Examples:\n"
            "  canfleetctl image pack build/app.bin --version 1.4.0 --hw-id 0x0407 --release 12 -o app.img\n"
            "  canfleetctl image inspect app.img\n"
            "  canfleetctl image inspect --json app.img | jq .valid\n");
}

/* ---- parsing of option values ---------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t max, bool allow_hex, uint64_t *ret)
{
        char *end;
        int base = 10;

        if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        if (allow_hex && (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)) {
                base = 16;
                s += 2;
                if (!*s || *s == '-' || *s == '+' || *s == ' ')
                        return -EINVAL;
        }
        errno = 0;
        unsigned long long v = strtoull(s, &end, base);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* X.Y.Z, digits only, no leading 'v', no suffix. */
static int parse_version(const char *s, struct cf_image_info *info)
{
        uint64_t part[3];
        static const uint64_t max[3] = {UINT8_MAX, UINT8_MAX, UINT16_MAX};
        const char *p = s;

        for (int i = 0; i < 3; i++) {
                char buf[8];
                size_t n = strspn(p, "0123456789");
                if (n == 0 || n >= sizeof(buf))
                        return -EINVAL;
                memcpy(buf, p, n);
                buf[n] = '\0';
                if (parse_u64(buf, max[i], false, &part[i]) < 0)
                        return -ERANGE;
                p += n;
                if (i < 2) {
                        if (*p != '.')
                                return -EINVAL;
                        p++;
                }
        }
        if (*p != '\0')
                return -EINVAL;
        info->ver_major = (uint8_t) part[0];
        info->ver_minor = (uint8_t) part[1];
        info->ver_patch = (uint16_t) part[2];
        return 0;
}

/* 256K, 256KiB, 262144, 0x40000 */
static int parse_size(const char *s, uint64_t *ret)
{
        size_t n = strlen(s);
        uint64_t mult = 1;
        char buf[32];

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n + 1);
        if (n > 3 && strcasecmp(buf + n - 3, "KiB") == 0) {
                buf[n - 3] = '\0';
                mult = 1024;
        } else if (n > 1 && (buf[n - 1] == 'K' || buf[n - 1] == 'k')) {
                buf[n - 1] = '\0';
                mult = 1024;
        }
        uint64_t v;
        int r = parse_u64(buf, UINT32_MAX, mult == 1, &v);
        if (r < 0)
                return r;
        *ret = v * mult;
        return 0;
}

static int parse_build_time(const char *s, uint32_t *ret)
{
        uint64_t v;

        if (parse_u64(s, UINT32_MAX, false, &v) == 0) {
                *ret = (uint32_t) v;
                return 0;
        }
        struct tm tm = {0};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end != '\0')
                return -EINVAL;
        time_t t = timegm(&tm);
        if (t < 0 || (uint64_t) t > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) t;
        return 0;
}

static void format_time(uint32_t t, char *buf, size_t len)
{
        time_t tt = (time_t) t;
        struct tm tm;

        if (t == 0 || !gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, len, "unknown");
}

static void hex(const uint8_t *p, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
}

/* ---- file I/O --------------------------------------------------------------------------------- */

/* ---- options ---------------------------------------------------------------------------------- */

/* Report getopt's '?' / ':' with our own wording. */
static int bad_option(int c, char **argv, const char *sub)
{
        const char *opt = argv[optind - 1];
        if (c == ':')
                error("option '%s' needs a value; see 'canfleetctl image --help'", opt);
        else if (optopt && optopt != '?')
                error("unknown option '-%c' for '%s'; see 'canfleetctl image --help'", optopt, sub);
        else
                error("unknown option '%s' for '%s'; see 'canfleetctl image --help'", opt, sub);
        return EXIT_USAGE;
}

/* ---- pack ------------------------------------------------------------------------------------- */

static uint8_t area[CF_IMAGE_AREA_SIZE];

static int image_pack_raw(const char *input, const char *target, const char *part, const char *output)
{
        if (strcmp(target, "lpc-isp") != 0 && strcmp(target, "adi-uart") != 0) {
                error("--target '%s' is not lpc-isp or adi-uart", target);
                return EXIT_USAGE;
        }
        if (!part)
                part = strcmp(target, "lpc-isp") == 0 ? "LPC1768" : "ADuCM360";
        char part_id[32];
        uint32_t flash;
        if (cf_bundle_part_resolve(target, part, part_id, sizeof part_id, &flash) < 0) {
                error("--part '%s' is not a known %s part (%s)", part, target,
                      strcmp(target, "lpc-isp") == 0 ? "LPC1769, LPC1768, ... or a part id as 0x26013F37"
                                                     : "ADuCM360 or ADuCM361");
                return EXIT_USAGE;
        }
        if (!output) {
                error("missing -o OUT (where to write the image)");
                return EXIT_USAGE;
        }
        static uint8_t raw[CF_BUNDLE_RAW_MAX + 1];
        uint64_t len;
        int r = cf_read_file(input, raw, sizeof(raw), &len);
        if (r < 0) {
                error("cannot read '%s': %s", input, cf_read_strerror(r));
                return EXIT_BAD_INPUT;
        }
        if (len == 0 || len > flash) {
                error("'%s' is %" PRIu64 " bytes; %s has %" PRIu32 " bytes of flash", input, len, part, flash);
                return EXIT_BAD_INPUT;
        }
        if (len >= 4 && memcmp(raw, "\177ELF", 4) == 0) {
                error("'%s' is an ELF file; pack the raw binary: arm-none-eabi-objcopy -O binary app.elf app.bin",
                      input);
                return EXIT_BAD_INPUT;
        }
        char why[256];
        if (strcmp(target, "lpc-isp") == 0) {
                if (len < 32) {
                        error("'%s' is %" PRIu64 " bytes, too short for the 8 vectors the boot ROM checks", input, len);
                        return EXIT_BAD_INPUT;
                }
                cf_lpc_vector_checksum_fix(raw, (size_t) len);
        }
        /* never write what canfleetd would refuse */
        if (cf_bundle_raw_image_check(target, raw, (size_t) len, why, sizeof why) < 0) {
                error("internal error: the packed image does not check out: %s", why);
                return EXIT_BAD_INPUT;
        }
        r = cf_write_atomic(output, raw, (size_t) len);
        if (r < 0) {
                error("cannot write '%s': %s", output, strerror(-r));
                return EXIT_BAD_INPUT;
        }
        if (strcmp(target, "lpc-isp") == 0)
                printf("%s: %s image for %s (%s), %" PRIu64 " bytes, vector checksum 0x%08X\n", output, target, part,
                       part_id, len, cf_le32_get(raw + 28));
        else
                printf("%s: %s image for %s, %" PRIu64 " bytes\n", output, target, part_id, len);
        return 0;
}

static int image_pack(int argc, char **argv)
{
        enum { ARG_HW_ID = 0x100, ARG_RELEASE, ARG_BUILD_TIME, ARG_SIZE, ARG_BANK, ARG_TARGET, ARG_PART };
        static const struct option options[] = {
            {"target", required_argument, NULL, ARG_TARGET},
            {"part", required_argument, NULL, ARG_PART},
            {"help", no_argument, NULL, 'h'},
            {"version", required_argument, NULL, 'V'},
            {"hw-id", required_argument, NULL, ARG_HW_ID},
            {"release", required_argument, NULL, ARG_RELEASE},
            {"build-time", required_argument, NULL, ARG_BUILD_TIME},
            {"size", required_argument, NULL, ARG_SIZE},
            {"bank", required_argument, NULL, ARG_BANK},
            {"output", required_argument, NULL, 'o'},
            {NULL, 0, NULL, 0},
        };
        unsigned bank = 0; /* 0: no --bank (the application area at 0x08020000, as bank 1) */
        struct cf_image_info info = {
            .magic = CF_IMAGE_MAGIC,
            .layout_version = CF_TRAILER_LAYOUT,
            .area_size = CF_IMAGE_AREA_SIZE,
        };
        const char *output = NULL, *input = NULL, *target = NULL, *part = NULL;
        bool have_version = false, have_hw_id = false, have_build_time = false;
        uint64_t v;
        int c, r;

        prog = "canfleetctl image pack";
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hV:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        image_usage(stdout);
                        return 0;
                case 'V':
                        r = parse_version(optarg, &info);
                        if (r < 0) {
                                error("--version '%s' is not X.Y.Z with X and Y 0-255 and Z 0-65535 "
                                      "(for example 1.4.0)",
                                      optarg);
                                return EXIT_USAGE;
                        }
                        have_version = true;
                        break;
                case ARG_HW_ID:
                        if (parse_u64(optarg, UINT16_MAX, true, &v) < 0) {
                                error(
                                    "--hw-id '%s' is not a hardware id 0-65535 (decimal, or hex as 0x0407)",
                                    optarg);
                                return EXIT_USAGE;
                        }
                        info.hw_id = (uint16_t) v;
                        have_hw_id = true;
                        break;
                case ARG_RELEASE:
                        if (parse_u64(optarg, UINT32_MAX, true, &v) < 0) {
                                error("--release '%s' is not a release counter 0-4294967295", optarg);
                                return EXIT_USAGE;
                        }
                        info.release = (uint32_t) v;
                        break;
                case ARG_BUILD_TIME:
                        if (parse_build_time(optarg, &info.build_time) < 0) {
                                error("--build-time '%s' is neither seconds since 1970 nor "
                                      "YYYY-MM-DDTHH:MM:SSZ (up to 2106)",
                                      optarg);
                                return EXIT_USAGE;
                        }
                        have_build_time = true;
                        break;
                case ARG_SIZE:
                        r = parse_size(optarg, &v);
                        if (r < 0) {
                                error("--size '%s' is not a size; give 256K, 262144 or 0x40000", optarg);
                                return EXIT_USAGE;
                        }
                        if (v != CF_IMAGE_AREA_SIZE) {
                                error("--size %s: this flash layout has 256K (0x40000) application and "
                                      "staging areas, no other size is valid; give --size 256K or leave it "
                                      "out",
                                      optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_BANK:
                        if (strcmp(optarg, "1") != 0 && strcmp(optarg, "2") != 0) {
                                error("--bank '%s': a dual-bank node has banks 1 and 2", optarg);
                                return EXIT_USAGE;
                        }
                        bank = (unsigned) (optarg[0] - '0');
                        break;
                case 'o':
                        output = optarg;
                        break;
                case ARG_TARGET:
                        target = optarg;
                        break;
                case ARG_PART:
                        part = optarg;
                        break;
                default:
                        return bad_option(c, argv, "image pack");
                }
        }

        if (optind >= argc) {
                error(
                    "no input file; give the application binary, e.g. 'canfleetctl image pack app.bin ...'");
                return EXIT_USAGE;
        }
        if (argc - optind > 1) {
                error("one input file only, got '%s' and '%s'", argv[optind], argv[optind + 1]);
                return EXIT_USAGE;
        }
        input = argv[optind];
        if (target) {
                if (have_version || have_hw_id) {
                        error("--version and --hw-id belong to an area image; a raw %s image gets its version "
                              "in the bundle ('canfleetctl bundle create --target ... --version')", target);
                        return EXIT_USAGE;
                }
                return image_pack_raw(input, target, part, output);
        }
        if (part) {
                error("--part goes with --target lpc-isp|adi-uart");
                return EXIT_USAGE;
        }
        if (!have_version) {
                error("missing --version X.Y.Z (the firmware version to record in the trailer)");
                return EXIT_USAGE;
        }
        if (!have_hw_id) {
                error("missing --hw-id ID (the hardware id the image is for; a node refuses any other)");
                return EXIT_USAGE;
        }
        if (!output) {
                error("missing -o OUT (where to write the image)");
                return EXIT_USAGE;
        }
        if (!have_build_time) {
                /* reproducible builds set SOURCE_DATE_EPOCH; honour it like compilers do */
                const char *sde = getenv("SOURCE_DATE_EPOCH");
                if (sde && *sde) {
                        if (parse_u64(sde, UINT32_MAX, false, &v) < 0) {
                                error("SOURCE_DATE_EPOCH='%s' is not seconds since 1970; fix it or give "
                                      "--build-time",
                                      sde);
                                return EXIT_USAGE;
                        }
                        info.build_time = (uint32_t) v;
                } else {
                        time_t now = time(NULL);
                        info.build_time = now > 0 && (uint64_t) now <= UINT32_MAX ? (uint32_t) now : 0;
                }
        }

        uint64_t len;
        memset(area, CF_FLASH_ERASED, sizeof(area));
        r = cf_read_file(input, area, CF_IMAGE_MAX_PAYLOAD, &len);
        if (r < 0) {
                error("cannot read '%s': %s", input, cf_read_strerror(r));
                return EXIT_BAD_INPUT;
        }
        if (len == 0) {
                error("'%s' is empty; give the application binary (arm-none-eabi-objcopy -O binary app.elf "
                      "app.bin)",
                      input);
                return EXIT_BAD_INPUT;
        }
        if (len > CF_IMAGE_MAX_PAYLOAD) {
                error("'%s' is %" PRIu64 " bytes; at most %u (0x%X) fit before the trailer of a 256K area "
                      "image%s",
                      input, len, CF_IMAGE_MAX_PAYLOAD, CF_IMAGE_MAX_PAYLOAD,
                      len == CF_IMAGE_AREA_SIZE
                          ? " (is it an image already? see 'canfleetctl image inspect')"
                          : "");
                return EXIT_BAD_INPUT;
        }
        if (len >= 4 && memcmp(area, "\177ELF", 4) == 0) {
                error("'%s' is an ELF file; pack the raw binary: arm-none-eabi-objcopy -O binary app.elf "
                      "app.bin",
                      input);
                return EXIT_BAD_INPUT;
        }
        if (len < 8) {
                error("'%s' is %" PRIu64
                      " bytes, too short to hold a vector table (initial SP, reset handler)",
                      input, len);
                return EXIT_BAD_INPUT;
        }
        uint32_t sp = cf_le32_get(area), reset = cf_le32_get(area + 4);
        if (bank == 2 && cf_image_link_bank(area) != 2) {
                error("'%s' does not start with a vector table for bank 2 of a dual-bank node: initial SP "
                      "0x%08X (must be in SRAM 0x20000004-0x20020000 or CCM), reset handler 0x%08X (must be "
                      "odd, in 0x08120000-0x0815FFBF); is it the link for bank 2 (at 0x08120000)?",
                      input, sp, reset);
                return EXIT_BAD_INPUT;
        }
        if (bank != 2 && cf_image_check_vectors(sp, reset) != CF_IMAGE_OK) {
                error(
                    "'%s' does not start with a vector table for the application area: initial SP 0x%08X "
                    "(must be in SRAM 0x20000004-0x20020000 or CCM), reset handler 0x%08X (must be odd, in "
                    "0x08020000-0x0805FFBF); is it linked at 0x08020000 and a raw binary?",
                    input, sp, reset);
                return EXIT_BAD_INPUT;
        }

        info.payload_len = (uint32_t) len;
        cf_sha256(area, info.payload_len, info.payload_sha256);
        cf_image_info_pack(&info, area + CF_TRAILER_OFFSET);
        cf_le32_put(area + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, area, CF_CRC_OFFSET));

        /* never write what a node or canfleetd would refuse */
        r = cf_image_check_full_at(area, NULL, cf_f7_app_addr(bank ? bank : 1));
        if (r != CF_IMAGE_OK) {
                error("internal error: the packed image does not check out: %s", cf_image_status_str(r));
                return EXIT_BAD_INPUT;
        }

        r = cf_write_atomic(output, area, sizeof(area));
        if (r < 0) {
                error("cannot write '%s': %s", output, strerror(-r));
                return EXIT_BAD_INPUT;
        }
        printf("%s: version %u.%u.%u, hw id 0x%04x, release %" PRIu32 ", payload %" PRIu32
               " bytes, CRC 0x%08X%s\n",
               output, info.ver_major, info.ver_minor, info.ver_patch, info.hw_id, info.release,
               info.payload_len, cf_le32_get(area + CF_CRC_OFFSET),
               bank ? (bank == 1 ? ", bank 1 link" : ", bank 2 link") : "");
        return 0;
}

/* ---- inspect ---------------------------------------------------------------------------------- */

struct inspection {
        struct cf_image_info info;
        int status; /* cf_image_check_full(): the verdict canfleetd reaches on the same bytes */
        uint32_t crc_stored, crc_computed;
        uint32_t sp, reset;
        bool crc_ok, trailer_ok, vectors_ok, sha_ok, padding_ok;
        unsigned bank; /* cf_image_link_bank(): 1 at 0x08020000 (F4 area B, dual-bank bank 1), 2 bank 2, 0
                          neither */
};

/* Each part on its own, so that the report names every fault; the verdict is cf_image_check_full()'s. */
static void inspect_area(const uint8_t *a, struct inspection *in)
{
        uint8_t sha[CF_SHA256_LEN];

        /* an image linked for bank 2 of a dual-bank node is checked as such (canfleet/image.h) */
        in->bank = cf_image_link_bank(a);
        in->status = cf_image_check_full_at(a, &in->info, cf_f7_app_addr(in->bank == 2 ? 2 : 1));
        in->crc_stored = cf_le32_get(a + CF_CRC_OFFSET);
        in->crc_computed = cf_crc32_le(CF_CRC32_INIT, a, CF_CRC_OFFSET);
        in->crc_ok = in->crc_stored == in->crc_computed;
        in->trailer_ok = cf_image_check_trailer(&in->info) == CF_IMAGE_OK;
        in->sp = cf_le32_get(a);
        in->reset = cf_le32_get(a + 4);
        in->vectors_ok = in->bank != 0;
        in->sha_ok = false;
        in->padding_ok = false;
        if (in->trailer_ok) {
                cf_sha256(a, in->info.payload_len, sha);
                in->sha_ok = memcmp(sha, in->info.payload_sha256, sizeof(sha)) == 0;
                in->padding_ok = true;
                for (uint32_t k = in->info.payload_len; k < CF_TRAILER_OFFSET && in->padding_ok; k++)
                        in->padding_ok = a[k] == CF_FLASH_ERASED;
        }
}

static bool inspection_valid(const struct inspection *in)
{
        return in->status == CF_IMAGE_OK;
}

static const char *validity(bool ok)
{
        return ok ? "valid" : "INVALID";
}

static int print_json(const char *path, const struct inspection *in)
{
        char version[24], when[32], sha[2 * CF_SHA256_LEN + 1], crc[16];
        const struct cf_image_info *i = &in->info;

        snprintf(version, sizeof(version), "%u.%u.%u", i->ver_major, i->ver_minor, i->ver_patch);
        format_time(i->build_time, when, sizeof(when));
        hex(i->payload_sha256, CF_SHA256_LEN, sha);
        snprintf(crc, sizeof(crc), "0x%08x", in->crc_stored);

        struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "schema", json_object_new_int(1));
        json_object_object_add(o, "file", json_object_new_string(path));
        json_object_object_add(o, "valid", json_object_new_boolean(inspection_valid(in)));
        json_object_object_add(o, "status", json_object_new_string(cf_image_status_str(in->status)));
        json_object_object_add(o, "version", json_object_new_string(version));
        json_object_object_add(o, "hw_id", json_object_new_int(i->hw_id));
        json_object_object_add(o, "release", json_object_new_int64(i->release));
        json_object_object_add(o, "payload_len", json_object_new_int64(i->payload_len));
        json_object_object_add(o, "build_time", json_object_new_int64(i->build_time));
        json_object_object_add(o, "build_time_iso", i->build_time ? json_object_new_string(when) : NULL);
        json_object_object_add(o, "payload_sha256", json_object_new_string(sha));
        json_object_object_add(o, "layout_version", json_object_new_int(i->layout_version));
        json_object_object_add(o, "area_size", json_object_new_int64(i->area_size));
        json_object_object_add(o, "crc", json_object_new_string(crc));
        json_object_object_add(o, "crc_valid", json_object_new_boolean(in->crc_ok));
        json_object_object_add(o, "trailer_valid", json_object_new_boolean(in->trailer_ok));
        json_object_object_add(o, "vectors_valid", json_object_new_boolean(in->vectors_ok));
        json_object_object_add(o, "link_bank", in->bank ? json_object_new_int((int) in->bank) : NULL);
        json_object_object_add(o, "payload_sha256_valid", json_object_new_boolean(in->sha_ok));
        json_object_object_add(o, "padding_valid", json_object_new_boolean(in->padding_ok));

        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        int r = s && puts(s) >= 0 ? 0 : -EIO;
        json_object_put(o);
        return r;
}

static void print_text(const char *path, const struct inspection *in)
{
        char when[32], sha[2 * CF_SHA256_LEN + 1];
        const struct cf_image_info *i = &in->info;

        format_time(i->build_time, when, sizeof(when));
        hex(i->payload_sha256, CF_SHA256_LEN, sha);

        printf("file:            %s\n", path);
        printf("version:         %u.%u.%u\n", i->ver_major, i->ver_minor, i->ver_patch);
        printf("hardware id:     0x%04x\n", i->hw_id);
        printf("release:         %" PRIu32 "\n", i->release);
        printf("payload length:  %" PRIu32 " bytes (0x%" PRIX32 ")\n", i->payload_len, i->payload_len);
        printf("build time:      %s\n", when);
        printf("payload sha256:  %s\n", sha);
        printf("layout:          %u, area size 0x%" PRIX32 "\n", i->layout_version, i->area_size);
        printf("\n");
        if (in->crc_ok)
                printf("CRC32:           valid (0x%08X)\n", in->crc_stored);
        else
                printf("CRC32:           INVALID (stored 0x%08X, computed 0x%08X)\n", in->crc_stored,
                       in->crc_computed);
        if (in->trailer_ok)
                printf("trailer:         valid\n");
        else
                printf("trailer:         INVALID (%s)\n", cf_image_status_str(cf_image_check_trailer(i)));
        printf("vector table:    %s (initial SP 0x%08X, reset 0x%08X%s)\n", validity(in->vectors_ok), in->sp,
               in->reset, in->bank == 2 ? ": linked for bank 2 of a dual-bank node" : "");
        printf("payload sha256:  %s\n",
               in->trailer_ok ? validity(in->sha_ok) : "not checked (no valid trailer)");
        printf("padding:         %s\n", in->trailer_ok
                                            ? (in->padding_ok ? "valid (0xFF up to the trailer)"
                                                              : "INVALID (bytes after the payload "
                                                                "are not 0xFF)")
                                            : "not checked (no valid trailer)");
        printf("image:           %s\n", inspection_valid(in) ? "valid" : cf_image_status_str(in->status));
}

static int image_inspect(int argc, char **argv)
{
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"json", no_argument, NULL, ARG_JSON},
            {NULL, 0, NULL, 0},
        };
        bool json = false;
        int c, r;

        prog = "canfleetctl image inspect";
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        image_usage(stdout);
                        return 0;
                case ARG_JSON:
                        json = true;
                        break;
                default:
                        return bad_option(c, argv, "image inspect");
                }
        }
        if (optind >= argc) {
                error("no file given; 'canfleetctl image inspect FILE'");
                return EXIT_USAGE;
        }
        if (argc - optind > 1) {
                error("one file only, got '%s' and '%s'", argv[optind], argv[optind + 1]);
                return EXIT_USAGE;
        }
        const char *path = argv[optind];

        uint64_t len;
        r = cf_read_file(path, area, sizeof(area), &len);
        if (r < 0) {
                error("cannot read '%s': %s", path, cf_read_strerror(r));
                return EXIT_BAD_INPUT;
        }
        if (len != CF_IMAGE_AREA_SIZE) {
                error("'%s' is %" PRIu64 " bytes, an area image is exactly %u (256K)%s", path, len,
                      CF_IMAGE_AREA_SIZE,
                      len < CF_IMAGE_AREA_SIZE ? "; a raw binary is packed with 'canfleetctl image pack'"
                                               : "");
                return EXIT_BAD_INPUT;
        }

        struct inspection in;
        inspect_area(area, &in);
        if (json) {
                r = print_json(path, &in);
                if (r < 0) {
                        error("cannot print JSON: %s", strerror(-r));
                        return EXIT_BAD_INPUT;
                }
        } else
                print_text(path, &in);
        if (fflush(stdout) != 0) {
                error("cannot write the output: %s", strerror(errno));
                return EXIT_BAD_INPUT;
        }
        return inspection_valid(&in) ? 0 : EXIT_BAD_INPUT;
}

/* ---- dispatch --------------------------------------------------------------------------------- */

int cmd_image(int argc, char **argv)
{
        if (argc < 2) {
                error("which one? 'canfleetctl image pack ...' or 'canfleetctl image inspect ...'; "
                      "see 'canfleetctl image --help'");
                return EXIT_USAGE;
        }
        const char *sub = argv[1];
        if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
                image_usage(stdout);
                return 0;
        }
        /* the subcommand's argv starts at its name, as getopt expects */
        optind = 0;
        if (strcmp(sub, "pack") == 0)
                return image_pack(argc - 1, argv + 1);
        if (strcmp(sub, "inspect") == 0)
                return image_inspect(argc - 1, argv + 1);
        error("unknown subcommand '%s'; 'pack' or 'inspect', see 'canfleetctl image --help'", sub);
        return EXIT_USAGE;
}
