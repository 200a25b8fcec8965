/* canfleetctl's failures in words on stderr and, with --json, as one JSON object on stdout. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "bus-client.h"
#include "fleet-error.h"

static bool json_mode;
static bool json_printed; /* one error object per run: later errors are consequences */

void cf_error_set_json(bool json)
{
        json_mode = json;
}

bool cf_error_json(void)
{
        return json_mode;
}

static void print_json_error(int exit_code, const char *kind, const char *message)
{
        struct json_object *o = json_object_new_object(), *e = json_object_new_object();

        if (!o || !e) {
                json_object_put(o);
                json_object_put(e);
                return;
        }
        json_object_object_add(o, "schema", json_object_new_int(1));
        json_object_object_add(e, "kind", json_object_new_string(kind));
        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(e, "exit_status", json_object_new_int(exit_code));
        json_object_object_add(o, "error", e);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
        json_object_put(o);
}

int cf_error(int exit_code, const char *kind, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "canfleetctl: %s\n", msg);
        if (json_mode && !json_printed) {
                json_printed = true;
                print_json_error(exit_code, kind, msg);
        }
        return exit_code;
}

static char deferred[1024];

void cf_error_defer(const char *message)
{
        if (!deferred[0])
                snprintf(deferred, sizeof(deferred), "%s", message);
}

void cf_error_deferf(const char *prog, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s: %s\n", prog, msg);
        cf_error_defer(msg);
}

void cf_error_flush(int exit_code)
{
        if (!json_mode || json_printed || exit_code == 0 || !deferred[0])
                return;
        json_printed = true;
        print_json_error(exit_code, exit_code == 2 ? "usage" : "invalid-input", deferred);
}

void cf_hint(const char *fmt, ...)
{
        va_list ap;

        fputs("canfleetctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* "Unknown object '/io/canfleet/Gateway1/job/99'." -> the path inside the quotes, into buf. */
static bool quoted_path(const char *message, char *buf, size_t size)
{
        const char *a = message ? strchr(message, '\'') : NULL;
        const char *b = a ? strchr(a + 1, '\'') : NULL;

        if (!b || (size_t) (b - a - 1) >= size)
                return false;
        memcpy(buf, a + 1, (size_t) (b - a - 1));
        buf[b - a - 1] = '\0';
        return true;
}

static void lowered(char *buf, size_t size, const char *message)
{
        snprintf(buf, size, "%s", message);
        /* canfleetd writes sentences ("No node \"bus9:1\""); ours continue after a colon */
        if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
                buf[0] = (char) (buf[0] - 'A' + 'a');
        size_t n = strlen(buf);
        if (n > 0 && buf[n - 1] == '.')
                buf[n - 1] = '\0';
}

static const struct {
        const char *name;
        const char *kind;
} canfleet_errors[] = {
    {"io.canfleet.Gateway1.Error.InvalidImage", "invalid-image"},
    {"io.canfleet.Gateway1.Error.HardwareMismatch", "hardware-mismatch"},
    {"io.canfleet.Gateway1.Error.NoSuchNode", "no-such-node"},
    {"io.canfleet.Gateway1.Error.NoSuchBus", "no-such-bus"},
    {"io.canfleet.Gateway1.Error.Busy", "busy"},
    {"io.canfleet.Gateway1.Error.NotCancellable", "not-cancellable"},
};

const char *cf_bus_error_text(const sd_bus_error *error, int r, char *buf, size_t size)
{
        char path[256];

        if (!sd_bus_error_is_set(error)) {
                snprintf(buf, size, "%s", strerror(r < 0 ? -r : EIO));
                return cf_bus_error_exit_code(error, r) == CF_EXIT_UNREACHABLE ? "unreachable" : "failed";
        }
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_INTERFACE) &&
            quoted_path(error->message, path, sizeof(path))) {
                const char *tail = strrchr(path, '/');
                if (strncmp(path, CF_JOB_PREFIX "/", sizeof(CF_JOB_PREFIX)) == 0) {
                        snprintf(buf, size, "no job %s", tail + 1);
                        return "no-such-job";
                }
                snprintf(buf, size, "no object %s in canfleetd", path);
                return "no-such-object";
        }
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                snprintf(buf, size, "canfleetd is not running");
                return "unreachable";
        }
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_TIMEOUT)) {
                snprintf(buf, size, "canfleetd did not answer in time");
                return "unreachable";
        }
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_UNKNOWN_PROPERTY)) {
                snprintf(buf, size, "canfleetd does not offer this (is it older than canfleetctl?): %s",
                         error->message ? error->message : error->name);
                return "unsupported";
        }
        lowered(buf, size, error->message && error->message[0] ? error->message : error->name);
        /* canfleetd quotes the name the caller gave ("No node \"bus9:1\"", "No bus \"bus7\" is configured");
         * node and bus names in canfleetctl's own messages are bare ("no node bus9:1", as `nodes bus9:1`
         * says it): one spelling. A name with a blank keeps its quotes. */
        if (sd_bus_error_has_names(error, "io.canfleet.Gateway1.Error.NoSuchNode",
                                   "io.canfleet.Gateway1.Error.NoSuchBus")) {
                char *a = strchr(buf, '"');
                char *b = a ? strchr(a + 1, '"') : NULL;
                if (b && b > a + 1 && !memchr(a + 1, ' ', (size_t) (b - a - 1))) {
                        memmove(b, b + 1, strlen(b + 1) + 1);
                        memmove(a, a + 1, strlen(a + 1) + 1);
                }
        }
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED))
                return "permission-denied";
        for (size_t i = 0; i < sizeof(canfleet_errors) / sizeof(canfleet_errors[0]); i++)
                if (sd_bus_error_has_name(error, canfleet_errors[i].name))
                        return canfleet_errors[i].kind;
        switch (cf_bus_error_exit_code(error, r)) {
        case CF_EXIT_UNREACHABLE:
                return "unreachable";
        case CF_EXIT_REFUSED:
                return "refused";
        default:
                return "failed";
        }
}
