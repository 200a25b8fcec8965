/* Fuzz target: the image trailer codec and the checks of a 256 KB area image, against a model of image.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "fuzz-crc.h"
#include "fuzz.h"

/*
 * The area is built from the input as a flash area would hold it: erased (0xFF), the input from
 * offset 0, and the input's last 64 bytes once more at 0x3FFC0, where they become the trailer and
 * the CRC. An input of odd length gets its CRC fixed up by the reference CRC below, so that the
 * checks after the CRC are reached without the fuzzer having to solve a CRC.
 *
 * The reference CRC is written from the definition (docs/design.md §2: poly 0x04C11DB7, MSB first, no
 * reflection, no final XOR, each little-endian word's most significant byte first) with its own
 * table built bit by bit, so that it shares nothing with common/src/crc32.c.
 *
 * Most of the area is the erased run between the input and the trailer, and CRCing it for every
 * input would cost as much as the check under test. The CRC register is linear over GF(2): n words
 * fed from state c leave c·x^(32n) mod P xor what they leave from state 0. So the reference jumps
 * over an erased run of n words with two tables made once, word by word, by the same reference
 * (ref_xpow[n] = x^(32n) mod P, ref_ones[n] = n erased words from state 0), and the first call
 * checks the jump against the plain word-by-word CRC of whole areas.
 */

#define REF_POLY  0x04C11DB7u
#define REF_WORDS (CF_CRC_OFFSET / 4u) /* words the CRC covers */

static uint32_t ref_table[256];
static uint32_t *ref_xpow, *ref_ones;
static uint8_t *area;

static uint32_t ref_word(uint32_t crc, const uint8_t *p)
{
        for (int b = 3; b >= 0; b--)
                crc = crc << 8 ^ ref_table[(crc >> 24 ^ p[b]) & 0xFF];
        return crc;
}

/* a·b mod P, bit by bit (Horner over the bits of a). */
static uint32_t ref_mulmod(uint32_t a, uint32_t b)
{
        uint32_t r = 0;

        for (int i = 31; i >= 0; i--) {
                r = r & 0x80000000u ? r << 1 ^ REF_POLY : r << 1;
                if (a >> i & 1)
                        r ^= b;
        }
        return r;
}

/* The CRC of the area's REF_WORDS words, knowing that words [erased_from, erased_to) are erased. */
__attribute__((noinline)) static uint32_t ref_crc_area(const uint8_t *p, size_t erased_from,
                                                       size_t erased_to)
{
        uint32_t crc = 0xFFFFFFFFu;
        size_t w = 0;

        if (erased_to > REF_WORDS)
                erased_to = REF_WORDS;
        if (erased_from < erased_to) {
                for (; w < erased_from; w++)
                        crc = ref_word(crc, p + 4 * w);
                size_t n = erased_to - erased_from;
                crc = ref_mulmod(crc, ref_xpow[n]) ^ ref_ones[n];
                w = erased_to;
        }
        for (; w < REF_WORDS; w++)
                crc = ref_word(crc, p + 4 * w);
        return crc;
}

static void ref_init(void)
{
        static const uint8_t zero[4], ones[4] = {0xFF, 0xFF, 0xFF, 0xFF};

        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i << 24;
                for (int k = 0; k < 8; k++)
                        c = c & 0x80000000u ? c << 1 ^ REF_POLY : c << 1;
                ref_table[i] = c;
        }
        ref_xpow = malloc((REF_WORDS + 1) * sizeof(*ref_xpow));
        ref_ones = malloc((REF_WORDS + 1) * sizeof(*ref_ones));
        if (!ref_xpow || !ref_ones)
                abort();
        ref_xpow[0] = 1; /* x^0 */
        ref_ones[0] = 0;
        for (size_t n = 0; n < REF_WORDS; n++) {
                ref_xpow[n + 1] = ref_word(ref_xpow[n], zero);
                ref_ones[n + 1] = ref_word(ref_ones[n], ones);
        }

        /* The jump against the plain CRC (no jump: erased_from == erased_to), on an erased area
         * with a few bytes set at both ends, for a few run positions. */
        uint8_t *a = malloc(CF_IMAGE_AREA_SIZE);
        if (!a)
                abort();
        memset(a, CF_FLASH_ERASED, CF_IMAGE_AREA_SIZE);
        for (size_t i = 0; i < 100; i++) {
                a[i] = (uint8_t) (i * 37 + 11);
                if (i < 40)
                        a[CF_IMAGE_AREA_SIZE - 1 - i] = (uint8_t) (i * 91 + 5);
        }
        uint32_t plain = ref_crc_area(a, 0, 0);
        static const size_t runs[][2] = {
            {25, 25}, {25, REF_WORDS - 16}, {30, 9000}, {REF_WORDS - 20, REF_WORDS - 16}};
        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
                FUZZ_CHECK(ref_crc_area(a, runs[i][0], runs[i][1]) == plain,
                           "the reference's jump over %zu..%zu is wrong", runs[i][0], runs[i][1]);
        free(a);
}

/* cf_image_check()'s CRC: fuzz_crc_le() jumps over the erased run (fuzz-crc.h), the value staying
 * the same; one input in 16 (picked by its bytes, so that a replay does the same) also has the
 * real function CRC the whole area, checked against the reference. */
uint32_t __wrap_cf_crc32_le(uint32_t crc, const void *data, size_t len)
{
        return fuzz_crc_le(crc, data, len);
}

static uint32_t rd32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint16_t rd16(const uint8_t *p)
{
        return (uint16_t) (p[0] | p[1] << 8);
}

/* The trailer as image.h documents it, read field by field. */
static void model_parse(const uint8_t *t, struct cf_image_info *i)
{
        i->magic = rd32(t);
        i->layout_version = rd16(t + 4);
        i->hw_id = rd16(t + 6);
        i->ver_major = t[8];
        i->ver_minor = t[9];
        i->ver_patch = rd16(t + 10);
        i->release = rd32(t + 12);
        i->payload_len = rd32(t + 16);
        i->area_size = rd32(t + 20);
        i->build_time = rd32(t + 24);
        memcpy(i->payload_sha256, t + 28, 32);
}

static bool info_equal(const struct cf_image_info *a, const struct cf_image_info *b)
{
        return a->magic == b->magic && a->layout_version == b->layout_version && a->hw_id == b->hw_id &&
               a->ver_major == b->ver_major && a->ver_minor == b->ver_minor &&
               a->ver_patch == b->ver_patch && a->release == b->release &&
               a->payload_len == b->payload_len && a->area_size == b->area_size &&
               a->build_time == b->build_time && memcmp(a->payload_sha256, b->payload_sha256, 32) == 0;
}

static int model_vectors(uint32_t sp, uint32_t rv)
{
        /* 64-bit arithmetic: the model must not share the implementation's wrap-around tricks. */
        uint64_t s = sp, e = rv & ~1u;
        bool sram = s > CF_SRAM_BASE && s <= (uint64_t) CF_SRAM_BASE + CF_SRAM_SIZE;
        bool ccm = s > CF_CCM_BASE && s <= (uint64_t) CF_CCM_BASE + CF_CCM_SIZE;

        if ((sp & 3) || !(sram || ccm) || !(rv & 1))
                return CF_IMAGE_BAD_VECTORS;
        if (e < CF_AREA_APP_ADDR || e >= (uint64_t) CF_AREA_APP_ADDR + CF_TRAILER_OFFSET)
                return CF_IMAGE_BAD_VECTORS;
        return CF_IMAGE_OK;
}

static int model_trailer(const struct cf_image_info *i)
{
        if (i->magic != CF_IMAGE_MAGIC)
                return CF_IMAGE_BAD_MAGIC;
        if (i->layout_version != 1 || i->area_size != 0x40000u)
                return CF_IMAGE_BAD_LAYOUT;
        if (i->payload_len > 0x3FFC0u)
                return CF_IMAGE_BAD_LENGTH;
        return CF_IMAGE_OK;
}

static int model_cmp(const struct cf_image_info *a, const struct cf_image_info *b)
{
        uint32_t va = (uint32_t) a->ver_major << 24 | (uint32_t) a->ver_minor << 16 | a->ver_patch;
        uint32_t vb = (uint32_t) b->ver_major << 24 | (uint32_t) b->ver_minor << 16 | b->ver_patch;
        return va < vb ? -1 : va > vb;
}

static int sign(int v)
{
        return v < 0 ? -1 : v > 0;
}

/* Vector-table words near the edges the rules draw, picked by the input. */
static void check_vectors_edges(uint8_t a, uint8_t b)
{
        static const uint32_t sp_edges[] = {
            CF_SRAM_BASE, CF_SRAM_BASE + CF_SRAM_SIZE, CF_CCM_BASE, CF_CCM_BASE + CF_CCM_SIZE, 0,
            0xFFFFFFFCu};
        static const uint32_t rv_edges[] = {CF_AREA_APP_ADDR, CF_AREA_APP_ADDR + CF_TRAILER_OFFSET,
                                            CF_AREA_STAGING_ADDR, 0, 0xFFFFFFFEu};
        uint32_t sp = sp_edges[(a >> 4) % 6] + (uint32_t) ((int32_t) (a & 15) - 8);
        uint32_t rv = rv_edges[(b >> 4) % 5] + (uint32_t) ((int32_t) (b & 15) - 8);
        int r = cf_image_check_vectors(sp, rv);

        FUZZ_CHECK(r == model_vectors(sp, rv), "cf_image_check_vectors(%08x, %08x) = %d, model %d", sp, rv,
                   r, model_vectors(sp, rv));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cf_image_info info, want, other;
        uint8_t packed[CF_TRAILER_SIZE];

        if (!area) {
                ref_init();
                area = malloc(CF_IMAGE_AREA_SIZE);
                if (!area)
                        abort();
        }

        /* ---- the area ---- */
        memset(area, CF_FLASH_ERASED, CF_IMAGE_AREA_SIZE);
        memcpy(area, data, size < CF_IMAGE_AREA_SIZE ? size : CF_IMAGE_AREA_SIZE);
        size_t tail = size < 64 ? size : 64;
        memcpy(area + CF_IMAGE_AREA_SIZE - tail, data + size - tail, tail);

        /* Erased by construction: from the first whole word after the input to the copied tail. */
        size_t head = size < CF_IMAGE_AREA_SIZE ? size : CF_IMAGE_AREA_SIZE;
        uint32_t crc = ref_crc_area(area, (head + 3) / 4, (CF_IMAGE_AREA_SIZE - tail) / 4);
        if (size & 1)
                wr32(area + CF_CRC_OFFSET, crc);
        uint32_t stored = rd32(area + CF_CRC_OFFSET);

        uint32_t pick = 2166136261u;
        for (size_t i = 0; i < size; i++)
                pick = (pick ^ data[i]) * 16777619u;
        if (pick % 16 == 0)
                FUZZ_CHECK(__real_cf_crc32_le(CF_CRC32_INIT, area, CF_CRC_OFFSET) == crc,
                           "cf_crc32_le differs from the reference CRC");

        /* cf_crc32_le is checked through cf_image_check: with the CRC fixed up by the reference,
         * a differing implementation shows as BAD_CRC where the model expects more. */
        model_parse(area + CF_TRAILER_OFFSET, &want);
        int expect = crc != stored ? CF_IMAGE_BAD_CRC : model_trailer(&want);
        if (expect == CF_IMAGE_OK)
                expect = model_vectors(rd32(area), rd32(area + 4));

        memset(&info, 0xA5, sizeof(info));
        int r = cf_image_check(area, &info);
        FUZZ_CHECK(r == expect, "cf_image_check = %d (%s), model %d", r, cf_image_status_str(r), expect);
        if (r == CF_IMAGE_OK)
                FUZZ_CHECK(stored == crc, "image accepted with CRC %08x stored, %08x computed", stored, crc);
        if (r != CF_IMAGE_BAD_CRC)
                FUZZ_CHECK(info_equal(&info, &want), "cf_image_check filled info wrongly");
        FUZZ_CHECK(cf_image_check_trailer(&want) == model_trailer(&want), "cf_image_check_trailer differs");

        /* ---- the trailer codec: parse and pack are inverse on any 60 bytes ---- */
        cf_image_info_parse(area + CF_TRAILER_OFFSET, &info);
        FUZZ_CHECK(info_equal(&info, &want), "cf_image_info_parse differs from the documented layout");
        memset(packed, 0x5A, sizeof(packed));
        cf_image_info_pack(&info, packed);
        FUZZ_CHECK(memcmp(packed, area + CF_TRAILER_OFFSET, CF_TRAILER_SIZE) == 0, "pack(parse(t)) != t");

        /* ---- vectors, versions and policy on values from the input ---- */
        uint32_t sp = rd32(area), rv = rd32(area + 4);
        FUZZ_CHECK(cf_image_check_vectors(sp, rv) == model_vectors(sp, rv),
                   "cf_image_check_vectors(%08x, %08x)", sp, rv);
        check_vectors_edges(area[8], area[9]);

        model_parse(area + 16, &other); /* a second trailer from the payload: the running image */
        int c = cf_image_version_cmp(&want, &other);
        FUZZ_CHECK(sign(c) == model_cmp(&want, &other), "cf_image_version_cmp = %d", c);
        FUZZ_CHECK(sign(cf_image_version_cmp(&other, &want)) == -sign(c), "version order not antisymmetric");
        FUZZ_CHECK(cf_image_version_cmp(&want, &want) == 0, "version differs from itself");

        uint16_t node_hw = rd16(area + 12);
        for (int with_running = 0; with_running < 2; with_running++) {
                int p = cf_image_check_policy(&want, node_hw, with_running ? &other : NULL);
                int m = want.hw_id != node_hw                          ? CF_IMAGE_WRONG_HW
                        : with_running && want.release < other.release ? CF_IMAGE_ROLLBACK
                                                                       : CF_IMAGE_OK;
                FUZZ_CHECK(p == m, "cf_image_check_policy = %d, model %d", p, m);
        }

        for (int s = -8; s <= 0; s++)
                FUZZ_CHECK(cf_image_status_str(s) && cf_image_status_str(s)[0], "no text for status %d", s);
        FUZZ_CHECK(cf_image_status_str(size ? (int8_t) data[size - 1] : 0) != NULL, "status text NULL");
        return 0;
}
