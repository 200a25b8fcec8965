/* Logging of canfleetd: the journal with structured fields (NODE=, BUS=, JOB=, CODE_FILE/LINE/FUNC of the
 * caller, MESSAGE_ID for the events of systemd/canfleet.catalog) when stderr is the journal, lines with a
 * level otherwise. */
#pragma once

#include <stdlib.h>
#include <syslog.h>

/*
 * Library code logs at debug level only; the edge (manager, flash job outcome, main) logs once
 * with context. Every log_*_errno() returns -abs(error), so that
 *     return log_error_errno(r, "Failed to open %s: %m", path);
 * both logs and propagates (%m prints strerror(abs(error))).
 *
 * Sinks (decided once by log_setup()):
 *   - the journal, when $JOURNAL_STREAM names our stderr (systemd's stream) or when
 *     $CANFLEETD_JOURNAL_SOCKET names a socket: entries are sent in the journal's native protocol to
 *     /run/systemd/journal/socket, or to that socket. canfleetd writes the datagrams itself (log.c)
 *     rather than through sd_journal_sendv(), whose socket path is fixed: so the tests receive, from a
 *     real canfleetd, exactly the bytes journald gets. Should a send fail, the line goes to stderr.
 *   - stderr otherwise, one line per message with the level: "<3>..." when stderr is systemd's stream
 *     (journald reads the prefix), "canfleetd: error: ..." on a terminal or a file.
 * libsocketcan prints some complaints itself on stderr: socketcan.c catches them in a pipe around each
 * of its calls and logs them as the bus's (BUS=, a level, once until the words change), so that nothing
 * reaches stderr past this log.
 */

/* MESSAGE_IDs, explained in systemd/canfleet.catalog (journalctl -x shows the text). */
#define CF_MSGID_JOB_STARTED  "c8b976d634c34f6a85bad328cbe1b53b"
#define CF_MSGID_JOB_FINISHED "a73fb82976b7419fbaedc289d867dbca"
#define CF_MSGID_NODE_UPDATED "14237a1a82cc42b6a2c21b10b3b3a485"
#define CF_MSGID_NODE_FAILED  "6a3a10566d0a482780dbda73e5d4e9ef"

/* Decide the sink (see above). Idempotent. */
void log_setup(void);
void log_set_max_level(int level);
int log_get_max_level(void);

/* bus, node, msgid, fields may be NULL, job 0 when none. fields: more journal fields, "KEY=value" lines
 * separated by '\n' (e.g. "DONE=3\nFAILED=1"); the journal only. file/line/func: the caller's
 * (the macros below pass them). */
/* No format attribute: gcc's -Wpedantic refuses glibc's %m in a checked printf format. */
int log_internal_full(const char *file, int line, const char *func, const char *msgid, const char *fields,
                      int level, int error, const char *bus, const char *node, unsigned job, const char *fmt, ...);

#define log_internal(level, error, bus, node, job, ...)                                                    \
        log_internal_full(__FILE__, __LINE__, __func__, NULL, NULL, level, error, bus, node, job, __VA_ARGS__)
/* An event of the catalog: MESSAGE_ID plus fields. */
#define log_event(msgid, fields, level, bus, node, job, ...)                                               \
        log_internal_full(__FILE__, __LINE__, __func__, msgid, fields, level, 0, bus, node, job, __VA_ARGS__)

#define log_full_errno(level, error, ...) log_internal(level, error, NULL, NULL, 0, __VA_ARGS__)
#define log_debug(...)                    log_internal(LOG_DEBUG, 0, NULL, NULL, 0, __VA_ARGS__)
#define log_info(...)                     log_internal(LOG_INFO, 0, NULL, NULL, 0, __VA_ARGS__)
#define log_notice(...)                   log_internal(LOG_NOTICE, 0, NULL, NULL, 0, __VA_ARGS__)
#define log_warning(...)                  log_internal(LOG_WARNING, 0, NULL, NULL, 0, __VA_ARGS__)
#define log_error(...)                    log_internal(LOG_ERR, 0, NULL, NULL, 0, __VA_ARGS__)
#define log_debug_errno(e, ...)           log_internal(LOG_DEBUG, e, NULL, NULL, 0, __VA_ARGS__)
#define log_warning_errno(e, ...)         log_internal(LOG_WARNING, e, NULL, NULL, 0, __VA_ARGS__)
#define log_error_errno(e, ...)           log_internal(LOG_ERR, e, NULL, NULL, 0, __VA_ARGS__)
/* With the node's context: BUS=, NODE= ("bus0:3"), JOB= (0: none). */
#define log_node(level, bus, node, job, ...) log_internal(level, 0, bus, node, job, __VA_ARGS__)
