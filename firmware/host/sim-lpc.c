/* The LPC17xx ROM ISP loader (UM10360 ch. 32) as a protocol of the serial chip simulator. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/lpc-isp.h"
#include "serial-sim.h"
#include "sim-node.h"

/*
 * What the ROM does, and so the simulator:
 *  - autobaud: bytes are ignored until '?'; the answer "Synchronized\r\n"; the host repeats
 *    "Synchronized" and gets "OK"; then the crystal frequency in kHz, "OK". Anything else there
 *    sends the chip back to waiting for '?', silently.
 *  - lines end with CR and/or LF, empty lines are ignored; echo (on after reset, "A 0" turns it off)
 *    repeats every byte received once synchronized, data lines included. A line ending in CR LF is
 *    echoed whole, LF included, before its answer (lpcprog reads "A 0\r\n" back, then "0\r\n");
 *    a line ended by a lone CR is taken CR_WAIT_US later.
 *  - numbers are decimal. Too few or too many parameters, or one that is not a number: PARAM_ERROR.
 *  - E, C and G are locked until "U 23130"; E and C need the sectors prepared by P, and every E or C
 *    (done or refused after the lock check) leaves all sectors unprepared again, as the IAP calls do.
 *  - C programs as NOR flash does: the new bits are ANDed into what the flash holds (a copy over
 *    bytes not erased leaves a mix of both); erasing sets 0xFF.
 *  - the boot ROM's remap of the first 64 bytes of flash during ISP is not modelled: R and M of
 *    address 0 see the flash.
 */

#define RAM_ISP_LINE_MAX 128u
#define CR_WAIT_US       10000u
#define BLOCK_MAX        (CF_UU_LINE_BYTES * CF_ISP_LINES_PER_CHECKSUM)

enum lpc_state {
        ST_AUTOBAUD,
        ST_SYNC_LINE,
        ST_FREQ_LINE,
        ST_COMMAND,
        ST_WRITE_DATA, /* W: UU lines and checksums from the host */
        ST_READ_ACK,   /* R: a block and its checksum sent, waiting for OK / RESEND */
};

struct lpc {
        struct serial_chip *c;
        const struct cf_lpc_part *part;
        enum lpc_state state;
        uint8_t *ram, *ahb_ram;
        bool prepared[CF_LPC_SECTORS];
        uint32_t crystal_khz;

        char line[RAM_ISP_LINE_MAX];
        size_t line_len;
        bool line_too_long;
        bool cr_pending; /* a CR ended the line: its LF may follow */
        uint64_t cr_at_us;

        /* W and R in progress */
        uint32_t x_addr, x_count, x_done;
        uint8_t block[BLOCK_MAX];
        size_t block_bytes;
        unsigned block_lines;
        bool block_bad;
};

static void say(struct lpc *l, const char *s)
{
        serial_chip_sends(l->c, s);
}

static void sayf(struct lpc *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sayf(struct lpc *l, const char *fmt, ...)
{
        char buf[128];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        say(l, buf);
}

static void rc(struct lpc *l, int code)
{
        sayf(l, "%d\r\n", code);
        if (code != CF_ISP_CMD_SUCCESS)
                serial_chip_error(l->c, "ISP %s: %s", cf_isp_rc_name(code), cf_isp_strerror(code));
}

/* Memory the ISP commands may address: flash, local SRAM, AHB SRAM; NULL unless [addr, addr+n) lies
 * in one of them. */
static uint8_t *mem(struct lpc *l, uint32_t addr, uint32_t n, bool *is_flash)
{
        uint64_t end = (uint64_t) addr + n;
        if (is_flash)
                *is_flash = false;
        if (end <= l->c->flash_size) {
                if (is_flash)
                        *is_flash = true;
                return l->c->flash + addr;
        }
        if (addr >= CF_LPC_RAM_BASE && end <= (uint64_t) CF_LPC_RAM_BASE + l->part->ram_size)
                return l->ram + (addr - CF_LPC_RAM_BASE);
        if (l->part->ahb_ram_size && addr >= CF_LPC_AHBRAM_BASE &&
            end <= (uint64_t) CF_LPC_AHBRAM_BASE + l->part->ahb_ram_size)
                return l->ahb_ram + (addr - CF_LPC_AHBRAM_BASE);
        return NULL;
}

static bool is_ram(struct lpc *l, uint32_t addr, uint32_t n)
{
        bool flash;
        return mem(l, addr, n, &flash) && !flash;
}

static int sectors(struct lpc *l)
{
        return cf_lpc_sector_count(l->c->flash_size);
}

/* Split a command line into its letter and decimal parameters; -1 when a parameter is no number. */
static int params(const char *args, uint32_t *v, int max, char *mode)
{
        int n = 0;
        const char *p = args;
        for (;;) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        return n;
                if (n == max) {
                        /* G's last parameter is a letter */
                        if (mode && (p[0] == 'T' || p[0] == 'A') && (p[1] == '\0' || p[1] == ' ')) {
                                *mode = p[0];
                                p++;
                                mode = NULL;
                                continue;
                        }
                        return -1;
                }
                if (*p < '0' || *p > '9')
                        return -1;
                uint64_t x = 0;
                while (*p >= '0' && *p <= '9') {
                        x = x * 10 + (uint64_t) (*p - '0');
                        if (x > UINT32_MAX)
                                return -1;
                        p++;
                }
                if (*p && *p != ' ')
                        return -1;
                v[n++] = (uint32_t) x;
        }
}

static void unprepare(struct lpc *l)
{
        memset(l->prepared, 0, sizeof(l->prepared));
}

static void cmd_prepare(struct lpc *l, const uint32_t *v)
{
        if (v[0] > v[1] || (int) v[1] >= sectors(l)) {
                rc(l, CF_ISP_INVALID_SECTOR);
                return;
        }
        for (uint32_t s = v[0]; s <= v[1]; s++)
                l->prepared[s] = true;
        rc(l, CF_ISP_CMD_SUCCESS);
}

static void cmd_erase(struct lpc *l, const uint32_t *v)
{
        if (!l->c->unlocked) {
                rc(l, CF_ISP_CMD_LOCKED);
                return;
        }
        if (v[0] > v[1] || (int) v[1] >= sectors(l)) {
                unprepare(l);
                rc(l, CF_ISP_INVALID_SECTOR);
                return;
        }
        for (uint32_t s = v[0]; s <= v[1]; s++)
                if (!l->prepared[s]) {
                        unprepare(l);
                        rc(l, CF_ISP_SECTOR_NOT_PREPARED_FOR_WRITE_OPERATION);
                        return;
                }
        unprepare(l);
        for (uint32_t s = v[0]; s <= v[1]; s++) {
                uint32_t start = cf_lpc_sector_start((int) s), size = cf_lpc_sector_size((int) s);
                double part = serial_chip_flash_op(l->c);
                memset(l->c->flash + start, 0xFF, (size_t) (size * part));
                if (l->c->off)
                        return;
        }
        serial_chip_log(l->c, "erased sectors %" PRIu32 "..%" PRIu32, v[0], v[1]);
        rc(l, CF_ISP_CMD_SUCCESS);
}

static void cmd_copy(struct lpc *l, const uint32_t *v)
{
        uint32_t dst = v[0], src = v[1], n = v[2];
        if (!l->c->unlocked) {
                rc(l, CF_ISP_CMD_LOCKED);
                return;
        }
        int code = CF_ISP_CMD_SUCCESS;
        if (!cf_lpc_copy_size_ok(n))
                code = CF_ISP_COUNT_ERROR;
        else if (dst % 256)
                code = CF_ISP_DST_ADDR_ERROR;
        else if (src % 4)
                code = CF_ISP_SRC_ADDR_ERROR;
        else if ((uint64_t) dst + n > l->c->flash_size)
                code = CF_ISP_DST_ADDR_NOT_MAPPED;
        else if (!is_ram(l, src, n))
                code = CF_ISP_SRC_ADDR_NOT_MAPPED;
        else
                for (int s = cf_lpc_sector_of(dst); s <= cf_lpc_sector_of(dst + n - 1); s++)
                        if (!l->prepared[s])
                                code = CF_ISP_SECTOR_NOT_PREPARED_FOR_WRITE_OPERATION;
        unprepare(l);
        if (code != CF_ISP_CMD_SUCCESS) {
                rc(l, code);
                return;
        }
        const uint8_t *from = mem(l, src, n, NULL);
        double part = serial_chip_flash_op(l->c);
        size_t k = (size_t) (n * part);
        for (size_t i = 0; i < k; i++)
                l->c->flash[dst + i] &= from[i];
        if (l->c->off)
                return;
        rc(l, CF_ISP_CMD_SUCCESS);
}

static void cmd_blank_check(struct lpc *l, const uint32_t *v)
{
        if (v[0] > v[1] || (int) v[1] >= sectors(l)) {
                rc(l, CF_ISP_INVALID_SECTOR);
                return;
        }
        uint32_t start = cf_lpc_sector_start((int) v[0]);
        uint32_t end = cf_lpc_sector_start((int) v[1]) + cf_lpc_sector_size((int) v[1]);
        for (uint32_t a = start; a < end; a += 4) {
                const uint8_t *p = l->c->flash + a;
                uint32_t w =
                    (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
                if (w != 0xFFFFFFFFu) {
                        sayf(l, "%d\r\n%" PRIu32 "\r\n%" PRIu32 "\r\n", CF_ISP_SECTOR_NOT_BLANK, a - start,
                             w);
                        return;
                }
        }
        rc(l, CF_ISP_CMD_SUCCESS);
}

static void cmd_compare(struct lpc *l, const uint32_t *v)
{
        uint32_t a = v[0], b = v[1], n = v[2];
        if (a % 4 || b % 4) {
                rc(l, CF_ISP_ADDR_ERROR);
                return;
        }
        if (n % 4) {
                rc(l, CF_ISP_COUNT_ERROR);
                return;
        }
        const uint8_t *pa = mem(l, a, n, NULL), *pb = mem(l, b, n, NULL);
        if (!pa || !pb) {
                rc(l, CF_ISP_ADDR_NOT_MAPPED);
                return;
        }
        for (uint32_t i = 0; i < n; i++)
                if (pa[i] != pb[i]) {
                        sayf(l, "%d\r\n%" PRIu32 "\r\n", CF_ISP_COMPARE_ERROR, i & ~3u);
                        return;
                }
        rc(l, CF_ISP_CMD_SUCCESS);
}

static void cmd_write(struct lpc *l, const uint32_t *v)
{
        if (v[0] % 4) {
                rc(l, CF_ISP_ADDR_ERROR);
                return;
        }
        if (v[1] % 4) {
                rc(l, CF_ISP_COUNT_ERROR);
                return;
        }
        if (!is_ram(l, v[0], v[1])) {
                rc(l, CF_ISP_ADDR_NOT_MAPPED);
                return;
        }
        rc(l, CF_ISP_CMD_SUCCESS);
        if (v[1] == 0)
                return;
        l->x_addr = v[0];
        l->x_count = v[1];
        l->x_done = 0;
        l->block_bytes = 0;
        l->block_lines = 0;
        l->block_bad = false;
        l->state = ST_WRITE_DATA;
}

/* R: the next block of up to 20 lines and its checksum. */
static void read_block(struct lpc *l)
{
        const uint8_t *p = mem(l, l->x_addr, l->x_count, NULL);
        uint32_t off = l->x_done, left = l->x_count - l->x_done;
        char line[CF_UU_LINE_MAX + 2];
        uint32_t sum = 0;
        l->block_bytes = 0;
        for (unsigned i = 0; i < CF_ISP_LINES_PER_CHECKSUM && left > 0; i++) {
                size_t n = left < CF_UU_LINE_BYTES ? left : CF_UU_LINE_BYTES;
                size_t len = cf_uu_encode_line(p + off, n, line);
                line[len++] = '\r';
                line[len++] = '\n';
                serial_chip_send(l->c, line, len);
                sum += cf_isp_checksum(p + off, n);
                off += (uint32_t) n;
                left -= (uint32_t) n;
                l->block_bytes += n;
        }
        sayf(l, "%" PRIu32 "\r\n", sum);
        l->state = ST_READ_ACK;
}

static void cmd_read(struct lpc *l, const uint32_t *v)
{
        if (v[0] % 4) {
                rc(l, CF_ISP_ADDR_ERROR);
                return;
        }
        if (v[1] % 4) {
                rc(l, CF_ISP_COUNT_ERROR);
                return;
        }
        if (!mem(l, v[0], v[1], NULL)) {
                rc(l, CF_ISP_ADDR_NOT_MAPPED);
                return;
        }
        rc(l, CF_ISP_CMD_SUCCESS);
        if (v[1] == 0)
                return;
        l->x_addr = v[0];
        l->x_count = v[1];
        l->x_done = 0;
        read_block(l);
}

static void cmd_go(struct lpc *l, const uint32_t *v, char mode)
{
        if (!l->c->unlocked) {
                rc(l, CF_ISP_CMD_LOCKED);
                return;
        }
        if (mode != 'T') { /* a Cortex-M3 has no ARM mode */
                rc(l, CF_ISP_PARAM_ERROR);
                return;
        }
        if (v[0] % 2) {
                rc(l, CF_ISP_ADDR_ERROR);
                return;
        }
        if (!mem(l, v[0], 4, NULL)) {
                rc(l, CF_ISP_ADDR_NOT_MAPPED);
                return;
        }
        rc(l, CF_ISP_CMD_SUCCESS);
        serial_chip_run_app(l->c, v[0]);
}

static void command(struct lpc *l, const char *line)
{
        uint32_t v[4];
        char mode = 0;
        const char *args = line + 1;
        int n;
        struct serial_chip *c = l->c;

        if (line[0] == '\0' || (line[1] != '\0' && line[1] != ' ')) {
                rc(l, CF_ISP_INVALID_COMMAND);
                return;
        }
        n = params(args, v, line[0] == 'G' ? 1 : 4, line[0] == 'G' ? &mode : NULL);
#define WANT(k)                                                                                             \
        do {                                                                                                \
                if (n != (k)) {                                                                             \
                        rc(l, CF_ISP_PARAM_ERROR);                                                          \
                        return;                                                                             \
                }                                                                                           \
        } while (0)
        switch (line[0]) {
        case 'U':
                WANT(1);
                if (v[0] != CF_ISP_UNLOCK_CODE) {
                        rc(l, CF_ISP_INVALID_CODE);
                        return;
                }
                c->unlocked = true;
                rc(l, CF_ISP_CMD_SUCCESS);
                serial_chip_changed(c);
                return;
        case 'B':
                WANT(2);
                if (v[0] != 9600 && v[0] != 19200 && v[0] != 38400 && v[0] != 57600 && v[0] != 115200 &&
                    v[0] != 230400) {
                        rc(l, CF_ISP_INVALID_BAUD_RATE);
                        return;
                }
                if (v[1] != 1 && v[1] != 2) {
                        rc(l, CF_ISP_INVALID_STOP_BIT);
                        return;
                }
                rc(l, CF_ISP_CMD_SUCCESS); /* a pty has no baud rate */
                return;
        case 'A':
                WANT(1);
                if (v[0] > 1) {
                        rc(l, CF_ISP_PARAM_ERROR);
                        return;
                }
                rc(l, CF_ISP_CMD_SUCCESS); /* the answer is still echoed... */
                c->echo = v[0] == 1;       /* ...what follows is not */
                serial_chip_changed(c);
                return;
        case 'W':
                WANT(2);
                cmd_write(l, v);
                return;
        case 'R':
                WANT(2);
                cmd_read(l, v);
                return;
        case 'P':
                WANT(2);
                cmd_prepare(l, v);
                return;
        case 'C':
                WANT(3);
                cmd_copy(l, v);
                return;
        case 'G':
                if (n != 1 || !mode) {
                        rc(l, CF_ISP_PARAM_ERROR);
                        return;
                }
                cmd_go(l, v, mode);
                return;
        case 'E':
                WANT(2);
                cmd_erase(l, v);
                return;
        case 'I':
                WANT(2);
                cmd_blank_check(l, v);
                return;
        case 'J':
                WANT(0);
                sayf(l, "0\r\n%" PRIu32 "\r\n", c->part_id);
                return;
        case 'K':
                WANT(0);
                /* UM10360: two bytes, <byte1 (major)>.<byte0 (minor)>: sent byte0 first */
                say(l, "0\r\n1\r\n4\r\n");
                return;
        case 'N':
                WANT(0);
                sayf(l, "0\r\n%" PRIu32 "\r\n%" PRIu32 "\r\n%" PRIu32 "\r\n%" PRIu32 "\r\n", c->uid[0],
                     c->uid[1], c->uid[2], c->uid[3]);
                return;
        case 'M':
                WANT(3);
                cmd_compare(l, v);
                return;
        default:
                rc(l, CF_ISP_INVALID_COMMAND);
                return;
        }
#undef WANT
}

static bool all_digits(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

static void block_reset(struct lpc *l)
{
        l->block_bytes = 0;
        l->block_lines = 0;
        l->block_bad = false;
}

static void write_checksum(struct lpc *l, const char *line)
{
        uint64_t want = strtoull(line, NULL, 10);
        if (!l->block_bad && want == cf_isp_checksum(l->block, l->block_bytes)) {
                memcpy(mem(l, l->x_addr + l->x_done, (uint32_t) l->block_bytes, NULL), l->block,
                       l->block_bytes);
                l->x_done += (uint32_t) l->block_bytes;
                say(l, "OK\r\n");
        } else {
                l->c->bad_checksums++;
                serial_chip_error(l->c,
                                  "W: block checksum mismatch at byte %" PRIu32 " of %" PRIu32 ": RESEND",
                                  l->x_done, l->x_count);
                say(l, "RESEND\r\n");
        }
        block_reset(l);
        if (l->x_done >= l->x_count) {
                l->state = ST_COMMAND;
                serial_chip_command(l->c);
        }
}

static void write_line(struct lpc *l, const char *line)
{
        size_t len = strlen(line);
        bool due = l->block_lines == CF_ISP_LINES_PER_CHECKSUM || l->x_done + l->block_bytes >= l->x_count;
        if (due) {
                /* a line that is no number where the checksum belongs: the block is lost */
                if (!all_digits(line))
                        l->block_bad = true;
                write_checksum(l, line);
                return;
        }
        uint8_t data[CF_UU_LINE_BYTES];
        int n = cf_uu_decode_line(line, len, data, sizeof(data));
        if (n < 0 && all_digits(line)) {
                /* the host counts lines differently (one was lost or split): its checksum comes early */
                l->block_bad = true;
                write_checksum(l, line);
                return;
        }
        if (n < 0) {
                /* a damaged line still stands for the bytes its length char announces */
                l->block_bad = true;
                n = line[0] > ' ' && line[0] <= 'M' ? (line[0] - ' ') : (int) CF_UU_LINE_BYTES;
                memset(data, 0, sizeof(data));
        }
        l->block_lines++;
        size_t room = l->x_count - l->x_done - l->block_bytes;
        if ((size_t) n > room) {
                l->block_bad = true;
                n = (int) room;
        }
        memcpy(l->block + l->block_bytes, data, (size_t) n);
        l->block_bytes += (size_t) n;
}

static void read_ack(struct lpc *l, const char *line)
{
        if (strcmp(line, "OK") == 0) {
                l->x_done += (uint32_t) l->block_bytes;
                if (l->x_done >= l->x_count) {
                        l->state = ST_COMMAND;
                        serial_chip_command(l->c);
                        return;
                }
        } else if (strcmp(line, "RESEND") != 0) {
                /* neither: the ROM takes it as RESEND too, it never leaves a block unconfirmed */
                serial_chip_error(l->c, "R: '%.20s' instead of OK or RESEND", line);
        } else {
                l->c->bad_checksums++;
        }
        read_block(l);
}

static void line_done(struct lpc *l)
{
        struct serial_chip *c = l->c;
        char *line = l->line;
        line[l->line_len] = '\0';
        bool too_long = l->line_too_long;
        l->line_len = 0;
        l->line_too_long = false;

        switch (l->state) {
        case ST_AUTOBAUD:
                return;
        case ST_SYNC_LINE:
                while (*line == '?') /* the host may have sent '?' more than once */
                        line++;
                if (strcmp(line, "Synchronized") == 0) {
                        say(l, "OK\r\n");
                        l->state = ST_FREQ_LINE;
                } else {
                        l->state = ST_AUTOBAUD;
                }
                return;
        case ST_FREQ_LINE:
                if (!too_long && all_digits(line) && strlen(line) <= 9) {
                        l->crystal_khz = (uint32_t) strtoul(line, NULL, 10);
                        say(l, "OK\r\n");
                        l->state = ST_COMMAND;
                        c->synchronized = true;
                        serial_chip_log(c, "synchronized (crystal %" PRIu32 " kHz)", l->crystal_khz);
                        serial_chip_changed(c);
                } else {
                        l->state = ST_AUTOBAUD;
                }
                return;
        case ST_COMMAND:
                if (too_long)
                        rc(l, CF_ISP_INVALID_COMMAND);
                else
                        command(l, line);
                if (!c->off && l->state == ST_COMMAND)
                        serial_chip_command(c);
                return;
        case ST_WRITE_DATA:
                if (too_long)
                        line[0] = '\0'; /* malformed */
                write_line(l, line);
                return;
        case ST_READ_ACK:
                read_ack(l, line);
                return;
        }
}

static void echo(struct lpc *l, char ch)
{
        /* the ROM echoes what it receives once it knows the baud rate (not the '?') */
        if (l->c->echo && !(l->state == ST_SYNC_LINE && ch == '?'))
                serial_chip_send(l->c, &ch, 1);
}

static void lpc_input(void *st, const uint8_t *data, size_t n)
{
        struct lpc *l = st;
        struct serial_chip *c = l->c;
        for (size_t i = 0; i < n && !c->off && !c->running; i++) {
                char ch = (char) data[i];
                if (l->state == ST_AUTOBAUD) {
                        if (ch == '?') {
                                say(l, "Synchronized\r\n");
                                l->state = ST_SYNC_LINE;
                                l->line_len = 0;
                                l->line_too_long = false;
                                l->cr_pending = false;
                        }
                        continue;
                }
                if (l->cr_pending) {
                        /* CR LF: both are echoed before the answer, as masters expect */
                        l->cr_pending = false;
                        if (ch == '\n') {
                                echo(l, ch);
                                line_done(l);
                                continue;
                        }
                        line_done(l);
                        if (c->off || c->running || l->state == ST_AUTOBAUD) {
                                i--; /* this byte meets the new state */
                                continue;
                        }
                }
                echo(l, ch);
                if (ch == '\r' || ch == '\n') {
                        if (l->line_len == 0 && !l->line_too_long)
                                continue; /* extra CRs and LFs are ignored */
                        if (ch == '\r') {
                                l->cr_pending = true;
                                l->cr_at_us = sim_now_us();
                        } else {
                                line_done(l);
                        }
                        continue;
                }
                if (l->line_len >= sizeof(l->line) - 1)
                        l->line_too_long = true;
                else
                        l->line[l->line_len++] = ch;
        }
}

/* A line ended by a CR alone is taken once no LF follows within CR_WAIT_US. */
static uint64_t lpc_deadline(void *st)
{
        struct lpc *l = st;
        return l->cr_pending ? l->cr_at_us + CR_WAIT_US : UINT64_MAX;
}

static void lpc_timer(void *st, uint64_t now_us)
{
        struct lpc *l = st;
        if (l->cr_pending && now_us >= l->cr_at_us + CR_WAIT_US && !l->c->running) {
                l->cr_pending = false;
                line_done(l);
        }
}

static void lpc_reset(void *st)
{
        struct lpc *l = st;
        l->state = ST_AUTOBAUD;
        l->line_len = 0;
        l->line_too_long = false;
        l->cr_pending = false;
        unprepare(l);
        /* SRAM keeps no meaning across a reset: fill it with a pattern a test would notice */
        memset(l->ram, 0xA5, l->part->ram_size);
        if (l->ahb_ram)
                memset(l->ahb_ram, 0xA5, l->part->ahb_ram_size);
        block_reset(l);
}

static void *lpc_create(struct serial_chip *c)
{
        struct lpc *l = calloc(1, sizeof(*l));
        if (!l)
                return NULL;
        l->c = c;
        l->part = cf_lpc_part_by_id(c->part_id);
        l->ram = malloc(l->part->ram_size);
        l->ahb_ram = l->part->ahb_ram_size ? malloc(l->part->ahb_ram_size) : NULL;
        if (!l->ram || (l->part->ahb_ram_size && !l->ahb_ram)) {
                free(l->ram);
                free(l->ahb_ram);
                free(l);
                return NULL;
        }
        return l;
}

static void lpc_destroy(void *st)
{
        struct lpc *l = st;
        if (!l)
                return;
        free(l->ram);
        free(l->ahb_ram);
        free(l);
}

static void lpc_state_json(void *st, char *buf, size_t len)
{
        struct lpc *l = st;
        static const char *names[] = {"autobaud", "sync", "frequency", "command", "write-data", "read-ack"};
        int n = 0;
        for (int s = 0; s < CF_LPC_SECTORS; s++)
                n += l->prepared[s];
        snprintf(buf, len, ", \"isp_state\": \"%s\", \"crystal_khz\": %" PRIu32 ", \"prepared_sectors\": %d",
                 names[l->state], l->crystal_khz, n);
}

const struct serial_proto serial_proto_lpc = {
    .name = "lpc-isp",
    .create = lpc_create,
    .destroy = lpc_destroy,
    .reset = lpc_reset,
    .input = lpc_input,
    .deadline = lpc_deadline,
    .timer = lpc_timer,
    .state_json = lpc_state_json,
};
