/* Logging of canfleetd: the journal with structured fields (NODE=, BUS=, JOB=) when stderr is the journal,
 * plain lines otherwise. */
#pragma once

#include <stdlib.h>
#include <syslog.h>

/*
 * Library code logs at debug level only; the edge (manager, flash job outcome, main) logs once
 * with context. Every log_*_errno() returns -abs(error), so that
 *     return log_error_errno(r, "Failed to open %s: %m", path);
 * both logs and propagates (%m prints strerror(abs(error))).
 */

/* Decide the sink: the journal when $JOURNAL_STREAM names our stderr, else stderr. Idempotent. */
void log_setup(void);
void log_set_max_level(int level);
int log_get_max_level(void);

/* bus, node may be NULL, job 0 when none. */
/* No format attribute: gcc's -Wpedantic refuses glibc's %m in a checked printf format. */
int log_internal(int level, int error, const char *bus, const char *node, unsigned job, const char *fmt,
                 ...);

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
