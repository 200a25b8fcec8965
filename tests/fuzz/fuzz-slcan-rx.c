/* Fuzz target: the SLCAN transport's line reader and line classifier (daemon/slcan.h) on any byte stream. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/slcan.h"
#include "fuzz.h"
#include "slcan.h"

/*
 * The input is what an adapter sends: any bytes. They go through cf_slcan_reader_feed() one by
 * one, as canfleetd's read loop does, and every event is checked against the input itself, looked
 * at backwards from the byte that caused it:
 *  - '\r' and BEL end the segment that began after the previous '\r' or BEL (or at the start);
 *    its bytes without the '\n's make the line. '\r' gives LINE when the line has at most
 *    CF_SLCAN_RX_LINE_MAX bytes and then r->line holds exactly them; BEL gives BEL; either gives
 *    OVERLONG when the line is longer. Every other byte gives MORE.
 *  - every line is classified by cf_slcan_rx_line(): 1 only for a standard data frame, which
 *    cf_slcan_format() writes back as the line's first characters (hex case aside), what follows
 *    being a 4-digit timestamp or nothing; 0 for the answers and the frames CCP does not use;
 *    -EINVAL or -ERANGE otherwise, leaving the frame untouched.
 * Then, whatever state the input left the reader in, a '\r' or a BEL (the last input byte says
 * which) and a well-formed frame line follow: that line must be decoded. A BEL or '\r' after an
 * overlong line once left the reader dropping the next line too.
 */

static const char good_line[] = "t6C22AB05\r";

static char upper(char c)
{
        return c >= 'a' && c <= 'z' ? (char) (c - 'a' + 'A') : c;
}

static void check_line(const char *line, size_t len)
{
        struct cf_can_frame f, untouched;
        memset(&f, 0x5A, sizeof(f));
        untouched = f;

        int r = cf_slcan_rx_line(line, len, &f);
        FUZZ_CHECK(r == 1 || r == 0 || r == -EINVAL || r == -ERANGE, "cf_slcan_rx_line returned %d", r);
        if (r != 1) {
                FUZZ_CHECK(memcmp(&f, &untouched, sizeof(f)) == 0, "frame changed by a line giving %d", r);
                if (len > 0 && line[0] == 't')
                        FUZZ_CHECK(r != 0, "a standard data frame line (%.*s) classified as no frame",
                                   (int) len, line);
                return;
        }
        FUZZ_CHECK(!f.ext && !f.rtr, "extended or remote frame delivered to CCP");
        FUZZ_CHECK(f.id <= 0x7FF && f.dlc <= 8, "frame id %x dlc %u", f.id, f.dlc);
        char out[CF_SLCAN_LINE_MAX];
        size_t n = cf_slcan_format(&f, CF_SLCAN_NO_TIMESTAMP, out);
        FUZZ_CHECK(n >= 1 && out[n - 1] == '\r', "format gave no line end");
        n--; /* without the '\r' */
        FUZZ_CHECK(len == n || len == n + 4, "frame line of %zu characters for a %zu-character frame", len,
                   n);
        for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(upper(line[i]) == upper(out[i]), "line %.*s decoded as %.*s", (int) len, line,
                           (int) n, out);
        for (size_t i = n; i < len; i++)
                FUZZ_CHECK(cf_hex_digit(line[i]) >= 0, "timestamp of %.*s not hex", (int) len, line);
}

/* Feed one byte; check the event against the segment data[seg, at] of the stream. */
static enum cf_slcan_rx feed_checked(struct cf_slcan_reader *r, const uint8_t *data, size_t seg, size_t at)
{
        char c = (char) data[at];
        size_t len = (size_t) -1;
        enum cf_slcan_rx k = cf_slcan_reader_feed(r, c, &len);

        if (c != '\r' && c != '\a') {
                FUZZ_CHECK(k == CF_SLCAN_RX_MORE, "byte %02x at %zu ended a line (%d)", data[at], at, k);
                return k;
        }
        /* The model's line: the segment without its '\n's. */
        char want[CF_SLCAN_RX_LINE_MAX];
        size_t n = 0;
        for (size_t i = seg; i < at; i++) {
                if (data[i] == '\n')
                        continue;
                if (n < sizeof(want))
                        want[n] = (char) data[i];
                n++;
        }
        enum cf_slcan_rx expect = n > CF_SLCAN_RX_LINE_MAX ? CF_SLCAN_RX_OVERLONG
                                  : c == '\r'              ? CF_SLCAN_RX_LINE
                                                           : CF_SLCAN_RX_BEL;
        FUZZ_CHECK(k == expect, "segment %zu..%zu of %zu bytes ended by %02x gave %d, want %d", seg, at, n,
                   data[at], k, expect);
        if (k == CF_SLCAN_RX_LINE) {
                FUZZ_CHECK(len == n, "line of %zu bytes reported as %zu", n, len);
                FUZZ_CHECK(memcmp(r->line, want, n) == 0, "line bytes differ from the stream");
                check_line(r->line, len);
        }
        return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cf_slcan_reader r = {0};
        size_t seg = 0;

        for (size_t i = 0; i < size; i++)
                if (feed_checked(&r, data, seg, i) != CF_SLCAN_RX_MORE)
                        seg = i + 1;

        /* The stream goes on: an end of line, then a good frame, which must come out. */
        size_t tail_len = sizeof(good_line); /* the end byte and the line */
        uint8_t *all = malloc(size + tail_len);
        if (!all)
                abort();
        if (size)
                memcpy(all, data, size);
        all[size] = size && (data[size - 1] & 1) ? '\a' : '\r';
        memcpy(all + size + 1, good_line, sizeof(good_line) - 1);
        enum cf_slcan_rx k = CF_SLCAN_RX_MORE;
        for (size_t i = size; i < size + tail_len; i++)
                if ((k = feed_checked(&r, all, seg, i)) != CF_SLCAN_RX_MORE)
                        seg = i + 1;
        free(all);
        FUZZ_CHECK(k == CF_SLCAN_RX_LINE, "the good line after the stream gave %d", k);
        struct cf_can_frame f;
        FUZZ_CHECK(cf_slcan_rx_line(r.line, sizeof(good_line) - 2, &f) == 1 && f.id == 0x6C2 && f.dlc == 2 &&
                       f.data[0] == 0xAB && f.data[1] == 0x05,
                   "the good line after the stream was not decoded");
        return 0;
}
