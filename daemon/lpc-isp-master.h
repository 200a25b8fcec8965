/* The gateway's side of the NXP LPC17xx ROM ISP loader (UM10360 ch. 32, docs/design.md §8): commands as
 * text lines over a SerialLine, each answer parsed and every ISP return code turned into a message. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "serial-line.h"

typedef struct LpcIsp LpcIsp;

/* An operation ended: r = 0, or
 *   -ETIMEDOUT  no (complete) answer in time, after the tries the operation has
 *   -EPROTO     an answer that is not what the ISP says (a flipped byte, another program on the line)
 *   -EILSEQ     the data kept coming back RESEND after every try
 *   -EREMOTEIO  the chip answered an ISP return code other than CMD_SUCCESS (lpc_isp_error() says which)
 *   -EIO        the line failed
 * lpc_isp_error() has one line for an operator either way. */
typedef void (*lpc_isp_done_fn)(LpcIsp *s, int r, void *userdata);

struct lpc_isp_identity {
        uint32_t part_id;                /* J */
        unsigned boot_major, boot_minor; /* K */
        uint32_t serial[4];              /* N */
};

/* The RAM buffer W fills and C copies from (above the ISP's own RAM, UM10360), and the block size. */
#define LPC_ISP_RAM_BUF 0x10000200u
#define LPC_ISP_BLOCK   4096u

/* timeout_us: per answer (an erase of many sectors waits longer: see lpc_isp_erase); retries: tries of
 * the "?" autobaud and of a RESEND block. */
int lpc_isp_new(sd_event *e, SerialLine *line, uint32_t crystal_khz, unsigned retries, uint64_t timeout_us,
                LpcIsp **ret);
LpcIsp *lpc_isp_free(LpcIsp *s);
void lpc_isp_set_callback(LpcIsp *s, lpc_isp_done_fn done, void *userdata);
const char *lpc_isp_error(const LpcIsp *s);
/* The last ISP return code (CMD_SUCCESS = 0), -1 when none was read. */
int lpc_isp_last_code(const LpcIsp *s);

/* "?" until "Synchronized", the handshake with the crystal's kHz, then "A 0" (echo off). A chip that
 * is already synchronised (a session started again without a reset) takes "?" as the start of a
 * command: with maybe_synced, the first unanswered "?" is followed by a line end, which it answers
 * INVALID_COMMAND; then only echo off is needed. */
int lpc_isp_sync(LpcIsp *s, bool maybe_synced);
/* J, K, N into *id (valid until the next operation). */
int lpc_isp_identify(LpcIsp *s, struct lpc_isp_identity *id);
/* U 23130. */
int lpc_isp_unlock(LpcIsp *s);
/* P first last, E first last. */
int lpc_isp_erase(LpcIsp *s, unsigned first, unsigned last);
/* One block to flash at addr (a multiple of LPC_ISP_BLOCK... or of the copy size): W to RAM in UU
 * lines with a checksum every 20 lines (RESEND: the lines again), P of its sector, C RAM to flash, M
 * flash against RAM. n is a copy size (256, 512, 1024, 4096): pad the data before. */
int lpc_isp_program(LpcIsp *s, uint32_t addr, const uint8_t *data, uint32_t n);
/* R addr n: read back into out (n a multiple of 4), the UU lines checked against the checksums (a
 * mismatch answered RESEND). */
int lpc_isp_read(LpcIsp *s, uint32_t addr, uint8_t *out, uint32_t n);
/* G 0 T: run the application from the reset vector (no answer once it jumps). */
int lpc_isp_go(LpcIsp *s);

/* Parsers, exposed for the unit tests: an ISP answer line as a return code (0..CF_ISP_RC_MAX, -EPROTO
 * for anything else: "0" -> 0, "19" -> 19, "0x" / "" / "20" -> -EPROTO); the K answer's two lines
 * (byte1 = major, byte0 = minor, in that order); N's four decimal words. */
int lpc_isp_parse_code(const char *line);
int lpc_isp_parse_u32(const char *line, uint32_t *ret);
