/* A UART for a serial node (docs/design.md §8): raw termios, non-blocking, bytes in and out on sd-event,
 * the modem lines and GPIO lines that put a chip into its ROM loader. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "conf.h"

typedef struct SerialLine SerialLine;

/* Bytes as they arrive (any split: a line protocol assembles its own lines). */
typedef void (*serial_rx_fn)(SerialLine *l, const uint8_t *data, size_t n, void *userdata);

/*
 * Open path at baud, 8N1, raw, no flow control, O_NONBLOCK|O_NOCTTY|O_CLOEXEC, HUPCL off (closing must
 * not reset a chip that DTR wires to RESET). Anything already in the input buffer is dropped.
 * Errors: -errno of open()/tcsetattr(); -EINVAL for a baud rate termios does not have.
 */
int serial_line_open(sd_event *e, const char *path, uint32_t baud, SerialLine **ret);
SerialLine *serial_line_free(SerialLine *l);

void serial_line_set_rx(SerialLine *l, serial_rx_fn fn, void *userdata);
/* Queue bytes; they leave as the tty takes them (never blocks). -ENOMEM, or the write error (-EIO: the
 * adapter went away) seen since the last call. */
int serial_line_write(SerialLine *l, const void *data, size_t n);
/* Drop what was received and not yet read (tcflush TCIFLUSH), and what is queued to send. */
void serial_line_discard(SerialLine *l);
/* Bytes queued and not yet taken by the tty. */
size_t serial_line_backlog(const SerialLine *l);

/* Bytes moved since open, both ways: the line time is (tx + rx) × 10 bits / baud (8N1). */
uint64_t serial_line_tx_bytes(const SerialLine *l);
uint64_t serial_line_rx_bytes(const SerialLine *l);
uint32_t serial_line_baud(const SerialLine *l);

/*
 * The loader entry of docs/design.md §8, as pin levels: reset asserted (chip held in reset) and boot
 * asserted (the boot pin pulled low: P2.10 on an LPC17xx, P2.2 on an ADuCM360).
 *   dtr-rts   DTR drives reset and RTS the boot pin (lpc21isp's -control wiring: an asserted modem line
 *             is a low pin behind the usual inverting level shifter), set with TIOCMSET;
 *   gpio      two lines of a GPIO character device, driven low when asserted (the kernel's uAPI v2);
 *   manual    nothing to drive: 0.
 * The GPIO lines are requested with GPIO_V2_LINE_FLAG_ACTIVE_LOW, so "asserted" (value 1) is a low pin
 * at the chip, as for the modem lines behind their inverting level shifter.
 * Errors: -errno of the ioctls or of opening the GPIO chip; serial_line_pins_error() then says what
 * failed, naming the configuration key ("isp_entry.gpiochip: cannot open /dev/gpiochip9: No such
 * file or directory").
 */
int serial_line_set_pins(SerialLine *l, const struct cf_bus_conf *bc, bool reset, bool boot);
const char *serial_line_pins_error(const SerialLine *l);

static inline void serial_line_freep(SerialLine **l)
{
        serial_line_free(*l);
}
