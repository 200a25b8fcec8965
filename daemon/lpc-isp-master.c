/* The LPC17xx ISP master: each operation a short script of commands, driven by the answers' lines. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/lpc-isp.h"
#include "cleanup.h"
#include "lpc-isp-master.h"

/* Answers longer than this are not the ISP's. */
#define LINE_MAX_LEN 128u
/* The "?" of the autobaud: a short wait per try (the chip answers within a character time). */
#define SYNC_TIMEOUT_US 300000u
#define SYNC_TRIES      8u
/* Erasing sectors takes up to 100 ms each on the chip (UM10360's flash timing); 30 of them. */
#define ERASE_TIMEOUT_US 5000000u

enum op {
        OP_NONE,
        OP_SYNC,
        OP_IDENTIFY,
        OP_UNLOCK,
        OP_ERASE,
        OP_PROGRAM,
        OP_READ,
        OP_GO,
};

struct LpcIsp {
        sd_event *event;
        SerialLine *line;
        uint32_t crystal_khz;
        unsigned retries;
        uint64_t timeout_us;
        lpc_isp_done_fn done;
        void *userdata;
        sd_event_source *timer;

        char rx[LINE_MAX_LEN + 1];
        size_t rx_len;
        bool rx_overflow;
        char sent[64]; /* the last command, without line end: its echo is skipped */

        enum op op;
        unsigned stage;
        unsigned tries;
        bool maybe_synced;  /* sync: an earlier session may have left the chip synchronised */
        unsigned cmd_tries; /* the current command sent again (retry_cmd) */
        uint64_t cmd_timeout;
        bool group_bad; /* R: a line of this group did not decode */
        int last_code;
        char error[256];

        /* the operation's arguments and progress */
        struct lpc_isp_identity *id;
        unsigned first, last;
        uint32_t addr, n;
        const uint8_t *data;
        uint8_t *out;
        uint32_t pos;       /* bytes sent (or read) before the current group of lines */
        uint32_t group_len; /* bytes of the group of up to 20 lines in flight */
        uint32_t group_sum;
        unsigned lines_in_group;
};

static int on_timeout(sd_event_source *es, uint64_t usec, void *userdata);

static void disarm(LpcIsp *s)
{
        if (s->timer)
                sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
}

static int arm(LpcIsp *s, uint64_t us)
{
        uint64_t now;
        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (!s->timer)
                return sd_event_add_time(s->event, &s->timer, CLOCK_MONOTONIC, now + us, 1000, on_timeout,
                                         s);
        sd_event_source_set_time(s->timer, now + us);
        return sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

static void finish(LpcIsp *s, int r)
{
        disarm(s);
        s->op = OP_NONE;
        if (r == 0)
                s->error[0] = 0;
        if (s->done)
                s->done(s, r, s->userdata);
}

__attribute__((format(printf, 3, 4))) static void fail(LpcIsp *s, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->error, sizeof s->error, fmt, ap);
        va_end(ap);
        finish(s, r);
}

/* Send a command line and wait for its answer (us). */
static void send_cmd(LpcIsp *s, uint64_t us, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_cmd(LpcIsp *s, uint64_t us, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->sent, sizeof s->sent, fmt, ap);
        va_end(ap);
        char buf[72];
        int k = snprintf(buf, sizeof buf, "%s\r\n", s->sent);
        s->cmd_tries = 0;
        s->cmd_timeout = us;
        int r = serial_line_write(s->line, buf, (size_t) k);
        if (r < 0) {
                fail(s, -EIO, "cannot write to the line: %s", strerror(-r));
                return;
        }
        (void) arm(s, us);
}

int lpc_isp_parse_code(const char *line)
{
        /* "0".."19", decimal, no sign, no leading zero */
        size_t n = strlen(line);
        if (n < 1 || n > 2 || (n == 2 && line[0] == '0'))
                return -EPROTO;
        int v = 0;
        for (size_t i = 0; i < n; i++) {
                if (line[i] < '0' || line[i] > '9')
                        return -EPROTO;
                v = v * 10 + (line[i] - '0');
        }
        return v <= CF_ISP_RC_MAX ? v : -EPROTO;
}

int lpc_isp_parse_u32(const char *line, uint32_t *ret)
{
        if (!*line || strlen(line) > 10)
                return -EPROTO;
        uint64_t v = 0;
        for (const char *p = line; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EPROTO;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        if (v > UINT32_MAX)
                return -EPROTO;
        *ret = (uint32_t) v;
        return 0;
}

/* A return code line: CMD_SUCCESS goes on (true); anything else ends the operation. */
/* The same command once more, for an answer that was garbled or an error code that a damaged command
 * line explains (a flipped bit on the way turns "P 7 7" into a PARAM_ERROR): tries are the
 * configuration's retries. Only for commands that may run twice: not C (it would program over what it
 * programmed) nor G. */
static bool retry_cmd(LpcIsp *s, int code)
{
        if (s->cmd_tries >= s->retries || strncmp(s->sent, "G ", 2) == 0 ||
            (strncmp(s->sent, "C ", 2) == 0 && code < 0))
                return false;
        s->cmd_tries++;
        char buf[72];
        int k = snprintf(buf, sizeof buf, "%s\r\n", s->sent);
        int r = serial_line_write(s->line, buf, (size_t) k);
        if (r < 0)
                return false;
        (void) arm(s, s->cmd_timeout);
        return true;
}

static bool code_ok(LpcIsp *s, const char *line, const char *what)
{
        int c = lpc_isp_parse_code(line);
        if (c < 0) {
                if (retry_cmd(s, c))
                        return false;
                fail(s, -EPROTO, "%s: unexpected answer \"%.40s\" to \"%s\"", what, line, s->sent);
                return false;
        }
        s->last_code = c;
        if (c != CF_ISP_CMD_SUCCESS && c != CF_ISP_COMPARE_ERROR && retry_cmd(s, c))
                return false;
        if (c != CF_ISP_CMD_SUCCESS) {
                fail(s, -EREMOTEIO, "%s: \"%s\" answered %s (%d): %s", what, s->sent, cf_isp_rc_name(c), c,
                     cf_isp_strerror(c));
                return false;
        }
        return true;
}

/* ---- W: the data as UU lines, a checksum after each 20 ---------------------------------------- */

static void send_group(LpcIsp *s)
{
        char buf[CF_ISP_LINES_PER_CHECKSUM * (CF_UU_LINE_MAX + 2) + 16];
        size_t len = 0;
        uint32_t off = s->pos;
        s->group_sum = 0;
        s->lines_in_group = 0;
        while (off < s->n && s->lines_in_group < CF_ISP_LINES_PER_CHECKSUM) {
                uint32_t k = s->n - off < CF_UU_LINE_BYTES ? s->n - off : CF_UU_LINE_BYTES;
                len += cf_uu_encode_line(s->data + off, k, buf + len);
                buf[len++] = '\r';
                buf[len++] = '\n';
                s->group_sum += cf_isp_checksum(s->data + off, k);
                off += k;
                s->lines_in_group++;
        }
        s->group_len = off - s->pos;
        len += (size_t) snprintf(buf + len, sizeof buf - len, "%" PRIu32 "\r\n", s->group_sum);
        snprintf(s->sent, sizeof s->sent, "%" PRIu32, s->group_sum);
        int r = serial_line_write(s->line, buf, len);
        if (r < 0) {
                fail(s, -EIO, "cannot write to the line: %s", strerror(-r));
                return;
        }
        /* the chip reads 20 lines at the line's pace before it answers */
        uint64_t line_us = (uint64_t) len * 10u * 1000000u / serial_line_baud(s->line);
        (void) arm(s, s->timeout_us + line_us);
}

/* OK: the next group, or the end of the data; RESEND: the same group again. */
static int group_answer(LpcIsp *s, const char *line)
{
        if (strcmp(line, "OK") == 0) {
                s->pos += s->group_len;
                s->tries = 0;
                return s->pos >= s->n ? 1 : 0;
        }
        if (strcmp(line, "RESEND") == 0) {
                if (++s->tries > s->retries) {
                        fail(s, -EILSEQ,
                             "write to RAM: the chip asked to RESEND the lines at offset %" PRIu32
                             " %u times (a noisy line?)",
                             s->pos, s->tries);
                        return -1;
                }
                return 0;
        }
        fail(s, -EPROTO, "write to RAM: unexpected answer \"%.40s\" to a checksum", line);
        return -1;
}

/* ---- R: UU lines from the chip, checked against its checksums -------------------------------- */

static int read_line(LpcIsp *s, const char *line)
{
        uint32_t left = s->n - s->pos - s->group_len;
        if (s->lines_in_group == CF_ISP_LINES_PER_CHECKSUM || left == 0) {
                /* the checksum line of the group: a damaged line or sum is answered RESEND, and the chip
                 * sends the group again */
                uint32_t sum;
                bool ok = !s->group_bad && lpc_isp_parse_u32(line, &sum) == 0 && sum == s->group_sum;
                if (!ok && ++s->tries > s->retries) {
                        fail(s, -EILSEQ, "read: the data at offset %" PRIu32 " kept failing its checksum",
                             s->pos);
                        return -1;
                }
                if (ok) {
                        s->pos += s->group_len;
                        s->tries = 0;
                }
                s->group_len = 0;
                s->group_sum = 0;
                s->lines_in_group = 0;
                s->group_bad = false;
                int r = serial_line_write(s->line, ok ? "OK\r\n" : "RESEND\r\n", ok ? 4 : 8);
                if (r < 0) {
                        fail(s, -EIO, "cannot write to the line: %s", strerror(-r));
                        return -1;
                }
                return s->pos >= s->n ? 1 : 0;
        }
        /* Each line holds 45 bytes but the last: a line that does not decode to what it must hold is
         * counted as that many bytes, and the group is asked again at its checksum. */
        uint32_t want = left < CF_UU_LINE_BYTES ? left : CF_UU_LINE_BYTES;
        uint8_t buf[CF_UU_LINE_BYTES];
        int k = cf_uu_decode_line(line, strlen(line), buf, sizeof buf);
        if (k < 0 || (uint32_t) k != want)
                s->group_bad = true;
        else {
                memcpy(s->out + s->pos + s->group_len, buf, want);
                s->group_sum += cf_isp_checksum(buf, want);
        }
        s->group_len += want;
        s->lines_in_group++;
        return 0;
}

/* ---- the scripts ------------------------------------------------------------------------------ */

static void sync_start(LpcIsp *s)
{
        strcpy(s->sent, "?");
        int r = serial_line_write(s->line, "?", 1);
        if (r < 0) {
                fail(s, -EIO, "cannot write to the line: %s", strerror(-r));
                return;
        }
        (void) arm(s, SYNC_TIMEOUT_US);
}

static void on_line(LpcIsp *s, const char *line)
{
        switch (s->op) {
        case OP_NONE:
                return; /* stray output (the application after G) */
        case OP_SYNC:
                switch (s->stage) {
                case 0: /* "?" */
                        if (strcmp(line, "Synchronized") == 0) {
                                s->stage = 1;
                                send_cmd(s, s->timeout_us, "Synchronized");
                        } else if (lpc_isp_parse_code(line) >= 0) {
                                /* already synchronised: "?" is an invalid command to it */
                                s->stage = 3;
                                send_cmd(s, s->timeout_us, "A 0");
                        } else {
                                fail(s, -EPROTO, "sync: unexpected answer \"%.40s\" to \"?\"", line);
                        }
                        return;
                case 1:
                case 2:
                        if (strcmp(line, "OK") != 0) {
                                fail(s, -EPROTO, "sync: unexpected answer \"%.40s\" to \"%s\"", line,
                                     s->sent);
                                return;
                        }
                        if (s->stage++ == 1)
                                send_cmd(s, s->timeout_us, "%" PRIu32, s->crystal_khz);
                        else
                                send_cmd(s, s->timeout_us, "A 0");
                        return;
                case 3:
                        if (code_ok(s, line, "echo off"))
                                finish(s, 0);
                        return;
                }
                return;
        case OP_IDENTIFY:
                switch (s->stage) {
                case 0: /* J */
                case 2: /* K */
                case 5: /* N */
                        if (code_ok(s, line,
                                    s->stage == 0   ? "part id"
                                    : s->stage == 2 ? "boot code version"
                                                    : "serial number"))
                                s->stage++;
                        return;
                case 1:
                        if (lpc_isp_parse_u32(line, &s->id->part_id) < 0) {
                                fail(s, -EPROTO, "part id: \"%.40s\" is not a number", line);
                                return;
                        }
                        s->stage = 2;
                        send_cmd(s, s->timeout_us, "K");
                        return;
                case 3:
                case 4: {
                        uint32_t v;
                        if (lpc_isp_parse_u32(line, &v) < 0 || v > 255) {
                                fail(s, -EPROTO, "boot code version: \"%.40s\" is not a byte", line);
                                return;
                        }
                        /* byte0 (minor) comes first, then byte1 (major): "<byte1>.<byte0>" */
                        if (s->stage == 3)
                                s->id->boot_minor = v;
                        else
                                s->id->boot_major = v;
                        if (s->stage++ == 4)
                                send_cmd(s, s->timeout_us, "N");
                        return;
                }
                default: /* 6..9: the serial number's words */
                        if (lpc_isp_parse_u32(line, &s->id->serial[s->stage - 6]) < 0) {
                                fail(s, -EPROTO, "serial number: \"%.40s\" is not a number", line);
                                return;
                        }
                        if (++s->stage == 10)
                                finish(s, 0);
                        return;
                }
        case OP_UNLOCK:
                if (code_ok(s, line, "unlock"))
                        finish(s, 0);
                return;
        case OP_ERASE:
                if (!code_ok(s, line, s->stage == 0 ? "prepare sectors" : "erase sectors"))
                        return;
                if (s->stage++ == 0)
                        send_cmd(s, ERASE_TIMEOUT_US, "E %u %u", s->first, s->last);
                else
                        finish(s, 0);
                return;
        case OP_PROGRAM:
                switch (s->stage) {
                case 0: /* W */
                        if (code_ok(s, line, "write to RAM")) {
                                s->stage = 1;
                                send_group(s);
                        }
                        return;
                case 1: { /* a group's OK / RESEND */
                        int k = group_answer(s, line);
                        if (k == 0)
                                send_group(s);
                        else if (k > 0) {
                                s->stage = 2;
                                int sec = cf_lpc_sector_of(s->addr);
                                int sec_end = cf_lpc_sector_of(s->addr + s->n - 1);
                                send_cmd(s, s->timeout_us, "P %d %d", sec, sec_end);
                        }
                        return;
                }
                case 2: /* P */
                        if (code_ok(s, line, "prepare sector")) {
                                s->stage = 3;
                                send_cmd(s, s->timeout_us, "C %" PRIu32 " %u %" PRIu32, s->addr,
                                         LPC_ISP_RAM_BUF, s->n);
                        }
                        return;
                case 3: /* C */
                        if (code_ok(s, line, "copy RAM to flash")) {
                                s->stage = 4;
                                send_cmd(s, s->timeout_us, "M %" PRIu32 " %u %" PRIu32, s->addr,
                                         LPC_ISP_RAM_BUF, s->n);
                        }
                        return;
                case 4: { /* M */
                        int c = lpc_isp_parse_code(line);
                        if (c == CF_ISP_COMPARE_ERROR) {
                                s->last_code = c;
                                s->stage = 5; /* the offset follows */
                                return;
                        }
                        if (code_ok(s, line, "compare"))
                                finish(s, 0);
                        return;
                }
                case 5:
                        fail(s, -EREMOTEIO,
                             "compare: flash at 0x%05" PRIX32 " differs from what was written at "
                             "offset %.20s (COMPARE_ERROR)",
                             s->addr, line);
                        return;
                }
                return;
        case OP_READ:
                if (s->stage == 0) {
                        if (code_ok(s, line, "read memory"))
                                s->stage = 1;
                        return;
                }
                if (read_line(s, line) > 0)
                        finish(s, 0);
                else if (s->op == OP_READ)
                        (void) arm(s, s->timeout_us);
                return;
        case OP_GO:
                if (code_ok(s, line, "go"))
                        finish(s, 0);
                return;
        }
}

static void on_rx(SerialLine *l, const uint8_t *data, size_t n, void *userdata)
{
        LpcIsp *s = userdata;
        for (size_t i = 0; i < n; i++) {
                char c = (char) data[i];
                if (c != '\r' && c != '\n') {
                        if (s->rx_len < LINE_MAX_LEN)
                                s->rx[s->rx_len++] = c;
                        else
                                s->rx_overflow = true;
                        continue;
                }
                if (s->rx_len == 0 && !s->rx_overflow)
                        continue; /* the other half of "\r\n", or an empty line */
                s->rx[s->rx_len] = 0;
                bool overflow = s->rx_overflow;
                s->rx_len = 0;
                s->rx_overflow = false;
                if (s->op == OP_NONE)
                        continue;
                if (overflow) {
                        fail(s, -EPROTO, "an answer longer than %u characters to \"%s\"", LINE_MAX_LEN,
                             s->sent);
                        continue;
                }
                /* The echo of what was sent (on until "A 0" is done). A UU line read back is never the
                 * command. */
                if (strcmp(s->rx, s->sent) == 0 && !(s->op == OP_READ && s->stage > 0))
                        continue;
                on_line(s, s->rx);
        }
}

static int on_timeout(sd_event_source *es, uint64_t usec, void *userdata)
{
        LpcIsp *s = userdata;
        if (s->op == OP_SYNC && s->stage == 0 && ++s->tries < SYNC_TRIES) {
                s->rx_len = 0;
                if (s->maybe_synced && s->tries == 1) {
                        /* A chip synchronised by an earlier session reads "?" as the start of a
                         * command line: the line end makes it one, answered INVALID_COMMAND. Only
                         * then: a chip waiting for its autobaud character is sent nothing but "?". */
                        int r = serial_line_write(s->line, "\r\n", 2);
                        if (r < 0) {
                                fail(s, -EIO, "cannot write to the line: %s", strerror(-r));
                                return 0;
                        }
                        (void) arm(s, SYNC_TIMEOUT_US);
                        return 0;
                }
                /* autobaud: "?" again (the chip may still be coming out of reset) */
                sync_start(s);
                return 0;
        }
        fail(s, -ETIMEDOUT, "no answer to \"%s\"%s", s->sent,
             s->op == OP_SYNC && s->stage == 0 ? " (is the chip in its ISP loader? see isp_entry)" : "");
        return 0;
}

/* ---- operations ------------------------------------------------------------------------------- */

static int begin(LpcIsp *s, enum op op)
{
        if (s->op != OP_NONE)
                return -EBUSY;
        s->op = op;
        s->stage = 0;
        s->tries = 0;
        s->last_code = -1;
        s->error[0] = 0;
        return 0;
}

int lpc_isp_sync(LpcIsp *s, bool maybe_synced)
{
        int r = begin(s, OP_SYNC);
        if (r < 0)
                return r;
        s->maybe_synced = maybe_synced;
        s->rx_len = 0;
        sync_start(s);
        return 0;
}

int lpc_isp_identify(LpcIsp *s, struct lpc_isp_identity *id)
{
        int r = begin(s, OP_IDENTIFY);
        if (r < 0)
                return r;
        *id = (struct lpc_isp_identity){0};
        s->id = id;
        send_cmd(s, s->timeout_us, "J");
        return 0;
}

int lpc_isp_unlock(LpcIsp *s)
{
        int r = begin(s, OP_UNLOCK);
        if (r < 0)
                return r;
        send_cmd(s, s->timeout_us, "U %u", CF_ISP_UNLOCK_CODE);
        return 0;
}

int lpc_isp_erase(LpcIsp *s, unsigned first, unsigned last)
{
        int r = begin(s, OP_ERASE);
        if (r < 0)
                return r;
        s->first = first;
        s->last = last;
        send_cmd(s, s->timeout_us, "P %u %u", first, last);
        return 0;
}

int lpc_isp_program(LpcIsp *s, uint32_t addr, const uint8_t *data, uint32_t n)
{
        if (!cf_lpc_copy_size_ok(n) || addr % n != 0 || cf_lpc_sector_of(addr + n - 1) < 0)
                return -EINVAL;
        int r = begin(s, OP_PROGRAM);
        if (r < 0)
                return r;
        s->addr = addr;
        s->data = data;
        s->n = n;
        s->pos = 0;
        send_cmd(s, s->timeout_us, "W %u %" PRIu32, LPC_ISP_RAM_BUF, n);
        return 0;
}

int lpc_isp_read(LpcIsp *s, uint32_t addr, uint8_t *out, uint32_t n)
{
        if (n == 0 || n % 4 != 0)
                return -EINVAL;
        int r = begin(s, OP_READ);
        if (r < 0)
                return r;
        s->addr = addr;
        s->out = out;
        s->n = n;
        s->pos = 0;
        s->group_len = s->group_sum = 0;
        s->lines_in_group = 0;
        s->group_bad = false;
        send_cmd(s, s->timeout_us, "R %" PRIu32 " %" PRIu32, addr, n);
        return 0;
}

int lpc_isp_go(LpcIsp *s)
{
        int r = begin(s, OP_GO);
        if (r < 0)
                return r;
        send_cmd(s, s->timeout_us, "G 0 T");
        return 0;
}

int lpc_isp_new(sd_event *e, SerialLine *line, uint32_t crystal_khz, unsigned retries, uint64_t timeout_us,
                LpcIsp **ret)
{
        LpcIsp *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->line = line;
        s->crystal_khz = crystal_khz;
        s->retries = retries ? retries : 1;
        s->timeout_us = timeout_us;
        s->last_code = -1;
        serial_line_set_rx(line, on_rx, s);
        *ret = s;
        return 0;
}

LpcIsp *lpc_isp_free(LpcIsp *s)
{
        if (!s)
                return NULL;
        serial_line_set_rx(s->line, NULL, NULL);
        sd_event_source_disable_unref(s->timer);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void lpc_isp_set_callback(LpcIsp *s, lpc_isp_done_fn done, void *userdata)
{
        s->done = done;
        s->userdata = userdata;
}

const char *lpc_isp_error(const LpcIsp *s)
{
        return s->error;
}

int lpc_isp_last_code(const LpcIsp *s)
{
        return s->last_code;
}
