/* canfleetctl's failures: one line on stderr naming each thing once, and with --json one error object on
 * stdout ({"schema": 1, "error": {...}}, docs/json.md) so that scripts never parse stderr. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

/* With --json, the first error of the run is also printed on stdout as a JSON object. */
void cf_error_set_json(bool json);
bool cf_error_json(void);

/* Report a failure: "canfleetctl: MESSAGE" on stderr (and the JSON object, see above). kind is a short
 * stable word for scripts ("usage", "unreachable", "refused", "no-such-job", "no-such-node", "no-such-bus",
 * "interrupted", "failed", ...). Returns exit_code, so that callers can `return cf_error(...)`. */
int cf_error(int exit_code, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* For commands with messages of their own (image, bundle): keep the first message for
 * cf_error_flush, which turns it into the JSON error object with the command's real exit code. */
void cf_error_defer(const char *message);
/* "PROG: message" on stderr, and the message deferred as above: the one way image and bundle report. */
void cf_error_deferf(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* After a command: with --json, a failed command (exit_code != 0) whose message was deferred and that
 * printed no error object yet prints it now (kind "usage" for exit 2, else "invalid-input"). */
void cf_error_flush(int exit_code);

/* A further line on stderr only ("canfleetctl: HINT"): how to go on, never a second error. */
void cf_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Put a D-Bus failure in the operator's words into buf: canfleetd's own errors keep its message
 * (first letter lowered), an unknown job object becomes "no job 99", a missing canfleetd "canfleetd is
 * not running". Returns the kind word (see cf_error). r is the negative errno sd-bus returned. */
const char *cf_bus_error_text(const sd_bus_error *error, int r, char *buf, size_t size);
