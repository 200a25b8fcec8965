/* Logging sinks of canfleetd: sd_journal_sendv() with structured fields, or one line per message on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/uio.h>

#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static int use_journal = -1; /* -1: not decided yet */

static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(void)
{
        if (use_journal < 0)
                use_journal = stderr_is_journal();
        const char *lvl = getenv("CANFLEETD_LOG_LEVEL");
        if (lvl && strcmp(lvl, "debug") == 0)
                max_level = LOG_DEBUG;
}

void log_set_max_level(int level)
{
        max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

int log_internal(int level, int error, const char *bus, const char *node, unsigned job, const char *fmt, ...)
{
        int saved = errno;
        error = error < 0 ? -error : error;
        if (level > max_level)
                goto out;
        if (use_journal < 0)
                log_setup();

        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        errno = error; /* for %m */
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        if (use_journal) {
                char f_msg[1040], f_prio[16], f_bus[64], f_node[64], f_job[32], f_errno[32];
                struct iovec iov[6];
                size_t n = 0;

                snprintf(f_msg, sizeof f_msg, "MESSAGE=%s", msg);
                iov[n++] = (struct iovec){f_msg, strlen(f_msg)};
                snprintf(f_prio, sizeof f_prio, "PRIORITY=%d", level);
                iov[n++] = (struct iovec){f_prio, strlen(f_prio)};
                if (bus) {
                        snprintf(f_bus, sizeof f_bus, "BUS=%s", bus);
                        iov[n++] = (struct iovec){f_bus, strlen(f_bus)};
                }
                if (node) {
                        snprintf(f_node, sizeof f_node, "NODE=%s", node);
                        iov[n++] = (struct iovec){f_node, strlen(f_node)};
                }
                if (job) {
                        snprintf(f_job, sizeof f_job, "JOB=%u", job);
                        iov[n++] = (struct iovec){f_job, strlen(f_job)};
                }
                if (error) {
                        snprintf(f_errno, sizeof f_errno, "ERRNO=%d", error);
                        iov[n++] = (struct iovec){f_errno, strlen(f_errno)};
                }
                sd_journal_sendv(iov, (int) n);
        } else {
                fprintf(stderr, "canfleetd: %s\n", msg);
        }
out:
        errno = saved;
        return -error;
}
