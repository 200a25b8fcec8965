/* Tests of common/src/image.c: trailer codec, every cf_image_status outcome, vectors and policy. */
#include <string.h>

#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/sha256.h"
#include "cf-test.h"

static uint8_t area[CF_IMAGE_AREA_SIZE];

static struct cf_image_info sample_info(void)
{
        struct cf_image_info i = {
            .magic = CF_IMAGE_MAGIC,
            .layout_version = CF_TRAILER_LAYOUT,
            .hw_id = 0x0407,
            .ver_major = 1,
            .ver_minor = 2,
            .ver_patch = 0x0304,
            .release = 0x01020304,
            .payload_len = 0,
            .area_size = CF_IMAGE_AREA_SIZE,
            .build_time = 1700000000u,
        };
        for (unsigned k = 0; k < 32; k++)
                i.payload_sha256[k] = (uint8_t) (0xC0 + k);
        return i;
}

static void put_le32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
        p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

static void seal(void)
{
        put_le32(area + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, area, CF_CRC_OFFSET));
}

/* A plausible application image, built the way `canfleetctl image pack` does it. */
static void build_image(uint32_t sp, uint32_t reset, uint32_t payload_len, struct cf_image_info *info)
{
        memset(area, 0xFF, sizeof(area));
        for (uint32_t k = 8; k < payload_len; k++)
                area[k] = (uint8_t) (k * 7u + 3u);
        put_le32(area, sp);
        put_le32(area + 4, reset);
        *info = sample_info();
        info->payload_len = payload_len;
        cf_sha256(area, payload_len, info->payload_sha256);
        cf_image_info_pack(info, area + CF_TRAILER_OFFSET);
        seal();
}

static void build_valid(struct cf_image_info *info)
{
        build_image(0x20020000u, 0x08020199u, 0x1234, info);
}

static void retrailer(const struct cf_image_info *info)
{
        cf_image_info_pack(info, area + CF_TRAILER_OFFSET);
        seal();
}

static void test_constants(void)
{
        CU_ASSERT_EQUAL(CF_TRAILER_OFFSET, 0x3FFC0u);
        CU_ASSERT_EQUAL(CF_CRC_OFFSET, 0x3FFFCu);
        CU_ASSERT_EQUAL(CF_TRAILER_OFFSET + CF_TRAILER_SIZE, CF_CRC_OFFSET);
        CU_ASSERT_EQUAL(CF_IMAGE_MAX_PAYLOAD, 0x3FFC0u);
}

static void test_pack_layout(void)
{
        struct cf_image_info i = sample_info();
        uint8_t t[CF_TRAILER_SIZE];

        i.payload_len = 0x11223344;
        memset(t, 0xA5, sizeof(t));
        cf_image_info_pack(&i, t);
        static const uint8_t head[28] = {
            'C',  'F',  'I',  'M',  0x01, 0x00, 0x07, 0x04, 0x01, 0x02, 0x04, 0x03, 0x04, 0x03,
            0x02, 0x01, 0x44, 0x33, 0x22, 0x11, 0x00, 0x00, 0x04, 0x00, 0x00, 0xF1, 0x53, 0x65,
        };
        CU_ASSERT_EQUAL(memcmp(t, head, sizeof(head)), 0);
        CU_ASSERT_EQUAL(memcmp(t + 28, i.payload_sha256, 32), 0);
}

static void test_pack_parse_round_trip(void)
{
        struct cf_image_info a = sample_info(), b;
        uint8_t t[CF_TRAILER_SIZE];

        a.payload_len = 0x3FFC0;
        a.ver_patch = 65535;
        a.release = 0xFFFFFFFFu;
        cf_image_info_pack(&a, t);
        memset(&b, 0, sizeof(b));
        cf_image_info_parse(t, &b);
        CU_ASSERT_EQUAL(b.magic, a.magic);
        CU_ASSERT_EQUAL(b.layout_version, a.layout_version);
        CU_ASSERT_EQUAL(b.hw_id, a.hw_id);
        CU_ASSERT_EQUAL(b.ver_major, a.ver_major);
        CU_ASSERT_EQUAL(b.ver_minor, a.ver_minor);
        CU_ASSERT_EQUAL(b.ver_patch, a.ver_patch);
        CU_ASSERT_EQUAL(b.release, a.release);
        CU_ASSERT_EQUAL(b.payload_len, a.payload_len);
        CU_ASSERT_EQUAL(b.area_size, a.area_size);
        CU_ASSERT_EQUAL(b.build_time, a.build_time);
        CU_ASSERT_EQUAL(memcmp(b.payload_sha256, a.payload_sha256, 32), 0);

        /* and the raw struct view agrees on a little-endian host */
        struct cf_image_trailer_raw raw;
        memcpy(&raw, t, sizeof(raw));
        CU_ASSERT_EQUAL(raw.magic, CF_IMAGE_MAGIC);
        CU_ASSERT_EQUAL(raw.hw_id, a.hw_id);
        CU_ASSERT_EQUAL(raw.build_time, a.build_time);
}

static void test_check_ok(void)
{
        struct cf_image_info built, got;

        build_valid(&built);
        memset(&got, 0, sizeof(got));
        CU_ASSERT_EQUAL(cf_image_check(area, &got), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(got.hw_id, built.hw_id);
        CU_ASSERT_EQUAL(got.payload_len, 0x1234u);
        CU_ASSERT_EQUAL(memcmp(got.payload_sha256, built.payload_sha256, 32), 0);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_trailer(&got), CF_IMAGE_OK);

        /* the largest payload still fits */
        build_image(0x20020000u, 0x08020199u, CF_IMAGE_MAX_PAYLOAD, &built);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_OK);
}

static void test_check_bad_crc(void)
{
        struct cf_image_info i, got;

        /* an erased area */
        memset(area, 0xFF, sizeof(area));
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_CRC);

        /* one flipped bit anywhere: payload, padding, trailer, stored CRC */
        static const uint32_t where[] = {0, 9, 0x1233, 0x20000, 0x3FFBF, 0x3FFC0, 0x3FFFB, 0x3FFFC, 0x3FFFF};
        for (size_t k = 0; k < sizeof(where) / sizeof(where[0]); k++) {
                build_valid(&i);
                area[where[k]] ^= 0x10;
                CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_CRC);
        }

        /* info is filled even though the CRC failed */
        build_valid(&i);
        area[100] ^= 1;
        memset(&got, 0, sizeof(got));
        CU_ASSERT_EQUAL(cf_image_check(area, &got), CF_IMAGE_BAD_CRC);
        CU_ASSERT_EQUAL(got.magic, CF_IMAGE_MAGIC);
        CU_ASSERT_EQUAL(got.release, i.release);
}

static void test_check_bad_magic(void)
{
        struct cf_image_info i;

        build_valid(&i);
        i.magic = 0x4D494644;
        retrailer(&i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_MAGIC);
        CU_ASSERT_EQUAL(cf_image_check_trailer(&i), CF_IMAGE_BAD_MAGIC);

        /* a valid CRC over an image without a trailer at all (the seed's old binconvert output) */
        build_valid(&i);
        memset(area + CF_TRAILER_OFFSET, 0xFF, CF_TRAILER_SIZE);
        seal();
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_MAGIC);
}

static void test_check_bad_layout(void)
{
        struct cf_image_info i, got;

        build_valid(&i);
        i.layout_version = 2;
        retrailer(&i);
        CU_ASSERT_EQUAL(cf_image_check(area, &got), CF_IMAGE_BAD_LAYOUT);
        CU_ASSERT_EQUAL(got.layout_version, 2);

        build_valid(&i);
        i.layout_version = 0;
        retrailer(&i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_LAYOUT);

        build_valid(&i);
        i.area_size = 0x20000;
        retrailer(&i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_LAYOUT);

        build_valid(&i);
        i.area_size = 0x40004;
        retrailer(&i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_LAYOUT);
}

static void test_check_bad_length(void)
{
        struct cf_image_info i;
        static const uint32_t bad[] = {CF_IMAGE_MAX_PAYLOAD + 1, CF_IMAGE_AREA_SIZE, 0xFFFFFFFFu};

        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                build_valid(&i);
                i.payload_len = bad[k];
                retrailer(&i);
                CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_LENGTH);
                CU_ASSERT_EQUAL(cf_image_check_trailer(&i), CF_IMAGE_BAD_LENGTH);
        }
        build_valid(&i);
        i.payload_len = CF_IMAGE_MAX_PAYLOAD;
        CU_ASSERT_EQUAL(cf_image_check_trailer(&i), CF_IMAGE_OK);
}

static void test_check_bad_vectors(void)
{
        struct cf_image_info i;

        build_image(0xFFFFFFFFu, 0xFFFFFFFFu, 0x100, &i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_VECTORS);
        build_image(0x20020000u, 0x08020198u, 0x100, &i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_VECTORS);
        build_image(0x20030000u, 0x08020199u, 0x100, &i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_VECTORS);
        /* linked for the bootloader area, not for B */
        build_image(0x20020000u, 0x08000199u, 0x100, &i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_VECTORS);
        /* the vector table is read little-endian: the big-endian form is wrong */
        build_image(0x00000220u, 0x99010208u, 0x100, &i);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_VECTORS);
}

static void test_vectors_rules(void)
{
        /* header examples */
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x08020199u), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x08020198u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0xFFFFFFFFu, 0xFFFFFFFFu), CF_IMAGE_BAD_VECTORS);

        /* stack pointer: (base, base+size], 4-byte aligned, SRAM or CCM */
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20000000u, 0x08020199u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20000004u, 0x08020199u), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x2001FFFCu, 0x08020199u), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020004u, 0x08020199u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x2001FFFEu, 0x08020199u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x10010000u, 0x08020199u), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x10000004u, 0x08020199u), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x10000000u, 0x08020199u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x10010004u, 0x08020199u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x00000000u, 0x08020199u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x08030000u, 0x08020199u), CF_IMAGE_BAD_VECTORS);

        /* reset vector: inside B below the trailer, Thumb bit set */
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x08020001u), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x0805FFBFu), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x0805FFC1u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x0801FFFFu), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x08060001u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x00000001u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors(0x20020000u, 0x20000001u), CF_IMAGE_BAD_VECTORS);
}

/* Dual-bank images (docs/design.md §9): the same checks against bank 2's application area. */
static void test_bank2_link(void)
{
        struct cf_image_info i;

        CU_ASSERT_EQUAL(cf_image_check_vectors_at(0x20020000u, 0x08120199u, 0x08120000u), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_vectors_at(0x20020000u, 0x08020199u, 0x08120000u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors_at(0x20020000u, 0x0815FFC1u, 0x08120000u), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_vectors_at(0x20020000u, 0x08120198u, 0x08120000u), CF_IMAGE_BAD_VECTORS);

        build_image(0x20020000u, 0x08120199u, 0x100, &i);
        CU_ASSERT_EQUAL(cf_image_link_bank(area), 2u);
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_BAD_VECTORS);
        CU_ASSERT_EQUAL(cf_image_check_at(area, NULL, CF_F7_BANK2_APP_ADDR), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_at(area, NULL, CF_F7_BANK1_APP_ADDR), CF_IMAGE_BAD_VECTORS);

        build_image(0x20020000u, 0x08020199u, 0x100, &i);
        CU_ASSERT_EQUAL(cf_image_link_bank(area), 1u);
        CU_ASSERT_EQUAL(cf_image_check_at(area, NULL, CF_F7_BANK1_APP_ADDR), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_at(area, NULL, CF_F7_BANK2_APP_ADDR), CF_IMAGE_BAD_VECTORS);

        build_image(0xFFFFFFFFu, 0xFFFFFFFFu, 0x100, &i);
        CU_ASSERT_EQUAL(cf_image_link_bank(area), 0u);
}

static void test_version_cmp(void)
{
        struct cf_image_info a = sample_info(), b = sample_info();

        CU_ASSERT_EQUAL(cf_image_version_cmp(&a, &b), 0);
        b.ver_patch++;
        CU_ASSERT(cf_image_version_cmp(&a, &b) < 0);
        CU_ASSERT(cf_image_version_cmp(&b, &a) > 0);
        /* major dominates minor dominates patch */
        a.ver_major = 2, a.ver_minor = 0, a.ver_patch = 0;
        b.ver_major = 1, b.ver_minor = 255, b.ver_patch = 65535;
        CU_ASSERT(cf_image_version_cmp(&a, &b) > 0);
        a.ver_major = 1, a.ver_minor = 3, a.ver_patch = 0;
        b.ver_major = 1, b.ver_minor = 2, b.ver_patch = 65535;
        CU_ASSERT(cf_image_version_cmp(&a, &b) > 0);
        /* the release counter plays no part in the version */
        a = sample_info(), b = sample_info();
        b.release = a.release + 1;
        CU_ASSERT_EQUAL(cf_image_version_cmp(&a, &b), 0);
}

static void test_policy(void)
{
        struct cf_image_info staged = sample_info(), running = sample_info();

        CU_ASSERT_EQUAL(cf_image_check_policy(&staged, staged.hw_id, NULL), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_policy(&staged, (uint16_t) (staged.hw_id + 1), NULL),
                        CF_IMAGE_WRONG_HW);
        CU_ASSERT_EQUAL(cf_image_check_policy(&staged, staged.hw_id, &running), CF_IMAGE_OK);
        running.release = staged.release + 1;
        CU_ASSERT_EQUAL(cf_image_check_policy(&staged, staged.hw_id, &running), CF_IMAGE_ROLLBACK);
        /* a wrong hardware id is reported before rollback */
        CU_ASSERT_EQUAL(cf_image_check_policy(&staged, 0, &running), CF_IMAGE_WRONG_HW);
        running.release = staged.release - 1;
        CU_ASSERT_EQUAL(cf_image_check_policy(&staged, staged.hw_id, &running), CF_IMAGE_OK);
        /* an older version with an equal release is allowed: the release is the anti-rollback counter */
        running = sample_info();
        running.ver_major = 9;
        CU_ASSERT_EQUAL(cf_image_check_policy(&staged, staged.hw_id, &running), CF_IMAGE_OK);
}

/* The full check: everything cf_image_check() checks, then payload SHA-256 and 0xFF padding, each
 * caught even with the CRC recomputed over the tampered bytes. */
static void test_check_full(void)
{
        struct cf_image_info info, got;
        build_valid(&info);
        CU_ASSERT_EQUAL(cf_image_check_full(area, &got), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(got.payload_len, info.payload_len);

        /* a payload byte changed, CRC fixed up: only the SHA-256 tells */
        area[100] ^= 0x01;
        seal();
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_full(area, NULL), CF_IMAGE_BAD_SHA256);

        /* the trailer's SHA-256 changed, CRC fixed up */
        build_valid(&info);
        area[CF_TRAILER_OFFSET + 28 + 31] ^= 0x80;
        seal();
        CU_ASSERT_EQUAL(cf_image_check_full(area, NULL), CF_IMAGE_BAD_SHA256);

        /* a byte after the payload, first and last of the padding */
        build_valid(&info);
        area[info.payload_len] = 0x00;
        seal();
        CU_ASSERT_EQUAL(cf_image_check(area, NULL), CF_IMAGE_OK);
        CU_ASSERT_EQUAL(cf_image_check_full(area, NULL), CF_IMAGE_BAD_PADDING);
        build_valid(&info);
        area[CF_TRAILER_OFFSET - 1] = 0xFE;
        seal();
        CU_ASSERT_EQUAL(cf_image_check_full(area, NULL), CF_IMAGE_BAD_PADDING);

        /* the cheaper checks come first: a bad CRC is reported as such */
        build_valid(&info);
        area[100] ^= 0x01;
        CU_ASSERT_EQUAL(cf_image_check_full(area, NULL), CF_IMAGE_BAD_CRC);

        /* a payload reaching up to the trailer has no padding to check */
        build_image(0x20020000u, 0x08020199u, CF_IMAGE_MAX_PAYLOAD, &info);
        CU_ASSERT_EQUAL(cf_image_check_full(area, NULL), CF_IMAGE_OK);
}

static void test_status_str(void)
{
        static const int all[] = {CF_IMAGE_OK,         CF_IMAGE_BAD_CRC,    CF_IMAGE_BAD_MAGIC,
                                  CF_IMAGE_BAD_LAYOUT, CF_IMAGE_BAD_LENGTH, CF_IMAGE_BAD_VECTORS,
                                  CF_IMAGE_WRONG_HW,   CF_IMAGE_ROLLBACK,   CF_IMAGE_BAD_SHA256,
                                  CF_IMAGE_BAD_PADDING};
        const char *unknown = cf_image_status_str(-100);

        CU_ASSERT_PTR_NOT_NULL_FATAL(unknown);
        CU_ASSERT_PTR_NOT_NULL(cf_image_status_str(1));
        CU_ASSERT_STRING_EQUAL(cf_image_status_str(CF_IMAGE_BAD_CRC), "CRC mismatch");
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
                const char *s = cf_image_status_str(all[k]);
                CU_ASSERT_PTR_NOT_NULL_FATAL(s);
                CU_ASSERT(strlen(s) > 0);
                CU_ASSERT_STRING_NOT_EQUAL(s, unknown);
                for (size_t j = 0; j < k; j++)
                        CU_ASSERT_STRING_NOT_EQUAL(s, cf_image_status_str(all[j]));
        }
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"constants", test_constants},
            {"pack byte layout", test_pack_layout},
            {"pack/parse round trip", test_pack_parse_round_trip},
            {"check: OK", test_check_ok},
            {"check: BAD_CRC", test_check_bad_crc},
            {"check: BAD_MAGIC", test_check_bad_magic},
            {"check: BAD_LAYOUT", test_check_bad_layout},
            {"check: BAD_LENGTH", test_check_bad_length},
            {"check: BAD_VECTORS", test_check_bad_vectors},
            {"vector table rules", test_vectors_rules},
            {"bank 2 link", test_bank2_link},
            {"version_cmp", test_version_cmp},
            {"policy: WRONG_HW, ROLLBACK", test_policy},
            {"check_full: SHA-256 and padding", test_check_full},
            {"status strings", test_status_str},
            {NULL, NULL},
        };
        return cf_test_run("image", tests);
}
