/* Fuzz target: the serial loaders' codecs (lpc-isp.h's UU lines, adi-uart.h's packets and ID packet). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/adi-uart.h"
#include "canfleet/lpc-isp.h"
#include "fuzz.h"

/*
 * The first byte picks a codec, the rest is its input, in a heap block of exactly that size (ASan
 * catches a read past it):
 *  0: cf_uu_decode_line on any line: a count, -EINVAL or -ENOBUFS; a decoded line encodes again to a
 *     line that decodes to the same bytes, with the length char the decoder read;
 *  1: cf_uu_encode_line of up to 45 bytes, decoded back;
 *  2: cf_adi_packet_parse on any bytes: a length that cf_adi_packet_build rebuilds byte for byte, 0
 *     only for a true prefix, -EINVAL only for a bad start or a count below 5, -EBADMSG otherwise;
 *  3: cf_adi_id_parse on any bytes: what it accepts builds back to an ID packet that parses the same.
 */

static void uu_decode(const uint8_t *in, size_t n)
{
        uint8_t out[CF_UU_LINE_BYTES], again[CF_UU_LINE_BYTES];
        size_t max = n > 0 ? in[0] % (CF_UU_LINE_BYTES + 1) : 0;
        const char *line = (const char *) in + (n > 0);
        size_t len = n > 0 ? n - 1 : 0;
        int r = cf_uu_decode_line(line, len, out, max);
        FUZZ_CHECK(r >= 0 || r == -EINVAL || r == -ENOBUFS, "decode returned %d", r);
        if (r < 0)
                return;
        FUZZ_CHECK((size_t) r <= max && len == 1 + 4 * (((size_t) r + 2) / 3), "decoded %d from %zu chars",
                   r, len);
        if (r == 0)
                return;
        char enc[CF_UU_LINE_MAX];
        size_t elen = cf_uu_encode_line(out, (size_t) r, enc);
        FUZZ_CHECK(elen == len && enc[0] == (line[0] == ' ' ? '`' : line[0]), "re-encoded length or count");
        FUZZ_CHECK(cf_uu_decode_line(enc, elen, again, sizeof(again)) == r &&
                       memcmp(again, out, (size_t) r) == 0,
                   "re-encoded line decodes differently");
}

static void uu_encode(const uint8_t *in, size_t n)
{
        char line[CF_UU_LINE_MAX];
        uint8_t back[CF_UU_LINE_BYTES];
        size_t len = cf_uu_encode_line(in, n, line);
        if (n == 0 || n > CF_UU_LINE_BYTES) {
                FUZZ_CHECK(len == 0, "encoded %zu bytes", n);
                return;
        }
        for (size_t i = 0; i < len; i++)
                FUZZ_CHECK(line[i] > ' ' && line[i] <= '`', "character 0x%02x in a line", line[i]);
        FUZZ_CHECK(cf_uu_decode_line(line, len, back, sizeof(back)) == (int) n && memcmp(back, in, n) == 0,
                   "round trip of %zu bytes", n);
}

static void adi_packet(const uint8_t *in, size_t n)
{
        struct cf_adi_packet p;
        int r = cf_adi_packet_parse(in, n, &p);
        bool start_ok = (n < 1 || in[0] == CF_ADI_START0) && (n < 2 || in[1] == CF_ADI_START1);
        if (r > 0) {
                uint8_t out[CF_ADI_PACKET_MAX];
                size_t len = cf_adi_packet_build(p.cmd, p.value, p.data, p.n, out);
                FUZZ_CHECK(len == (size_t) r && len <= n && memcmp(out, in, len) == 0,
                           "rebuilt packet differs");
        } else if (r == 0) {
                FUZZ_CHECK(start_ok && (n < 3 || (in[2] >= 5 && n < (size_t) in[2] + 4)),
                           "0 for a whole packet");
        } else if (r == -EINVAL) {
                FUZZ_CHECK(!start_ok || (n >= 3 && in[2] < 5), "-EINVAL for a good start");
        } else {
                FUZZ_CHECK(r == -EBADMSG && start_ok && n >= (size_t) in[2] + 4, "returned %d", r);
        }
}

static void adi_id(const uint8_t *in, size_t n)
{
        struct cf_adi_id id, again;
        if (cf_adi_id_parse(in, n, &id) < 0)
                return;
        FUZZ_CHECK(n == CF_ADI_ID_LEN && id.product[0] && strlen(id.product) <= 15 &&
                       strlen(id.version) <= 3,
                   "accepted ID fields");
        uint8_t out[CF_ADI_ID_LEN];
        cf_adi_id_build(id.product, id.version, out);
        FUZZ_CHECK(cf_adi_id_parse(out, sizeof(out), &again) == 0 &&
                       strcmp(again.product, id.product) == 0 && strcmp(again.version, id.version) == 0,
                   "rebuilt ID packet parses differently");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size == 0)
                return 0;
        size_t n = size - 1;
        uint8_t *in = malloc(n ? n : 1);
        if (!in)
                abort();
        memcpy(in, data + 1, n);
        switch (data[0] % 4) {
        case 0:
                uu_decode(in, n);
                break;
        case 1:
                uu_encode(in, n);
                break;
        case 2:
                adi_packet(in, n);
                break;
        default:
                adi_id(in, n);
                break;
        }
        free(in);
        return 0;
}
