/* Logging sinks of canfleetd: journal entries in the native protocol, or one line per message on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static int max_level = LOG_INFO;
static int use_journal = -1; /* -1: not decided yet */
static bool stderr_journal;  /* stderr is systemd's stream: lines get "<N>" */
static struct sockaddr_un journal_addr;
static socklen_t journal_addr_len;
static int journal_fd = -1;

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

static bool set_journal_path(const char *path)
{
        size_t len = strlen(path);
        if (len == 0 || len >= sizeof journal_addr.sun_path)
                return false;
        journal_addr.sun_family = AF_UNIX;
        memcpy(journal_addr.sun_path, path, len + 1);
        journal_addr_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1);
        return true;
}

void log_setup(void)
{
        if (use_journal < 0) {
                stderr_journal = stderr_is_journal();
                const char *sock = getenv("CANFLEETD_JOURNAL_SOCKET");
                if (sock && *sock)
                        use_journal = set_journal_path(sock);
                else
                        use_journal = stderr_journal && set_journal_path(JOURNAL_SOCKET);
        }
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

/* One field into buf at *pos: "KEY=value\n", or for a value with a newline the protocol's binary form
 * "KEY\n" + 64-bit little-endian length + value + "\n". false when it does not fit. */
static bool put_field(char *buf, size_t cap, size_t *pos, const char *key, const char *value, size_t vlen)
{
        size_t klen = strlen(key);
        bool binary = memchr(value, '\n', vlen) != NULL;
        size_t need = klen + 1 + (binary ? 8 : 0) + vlen + 1;
        if (cap - *pos < need)
                return false;
        char *p = buf + *pos;
        memcpy(p, key, klen);
        p += klen;
        if (binary) {
                *p++ = '\n';
                uint64_t l = vlen;
                for (int i = 0; i < 8; i++)
                        *p++ = (char) (l >> (8 * i));
        } else
                *p++ = '=';
        memcpy(p, value, vlen);
        p += vlen;
        *p++ = '\n';
        *pos = (size_t) (p - buf);
        return true;
}

static bool put_fmt(char *buf, size_t cap, size_t *pos, const char *key, const char *fmt, ...)
{
        char v[64];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(v, sizeof v, fmt, ap);
        va_end(ap);
        return n >= 0 && put_field(buf, cap, pos, key, v, strlen(v));
}

static int journal_send(const char *file, int line, const char *func, const char *msgid, const char *fields,
                        int level, int error, const char *bus, const char *node, unsigned job, const char *msg)
{
        /* A message is at most 1 KB: the datagram fits the socket's default buffer, no memfd needed. */
        char buf[4096];
        size_t pos = 0, cap = sizeof buf;
        bool ok = put_field(buf, cap, &pos, "MESSAGE", msg, strlen(msg)) &&
                  put_fmt(buf, cap, &pos, "PRIORITY", "%d", level) &&
                  put_fmt(buf, cap, &pos, "SYSLOG_IDENTIFIER", "canfleetd") &&
                  put_fmt(buf, cap, &pos, "CODE_FILE", "%s", file) &&
                  put_fmt(buf, cap, &pos, "CODE_LINE", "%d", line) &&
                  put_fmt(buf, cap, &pos, "CODE_FUNC", "%s", func);
        if (ok && msgid)
                ok = put_fmt(buf, cap, &pos, "MESSAGE_ID", "%s", msgid);
        if (ok && bus)
                ok = put_fmt(buf, cap, &pos, "BUS", "%s", bus);
        if (ok && node)
                ok = put_fmt(buf, cap, &pos, "NODE", "%s", node);
        if (ok && job)
                ok = put_fmt(buf, cap, &pos, "JOB", "%u", job);
        if (ok && error)
                ok = put_fmt(buf, cap, &pos, "ERRNO", "%d", error);
        for (const char *f = fields; ok && f && *f;) {
                const char *end = strchr(f, '\n');
                size_t len = end ? (size_t) (end - f) : strlen(f);
                const char *eq = memchr(f, '=', len);
                if (eq && eq > f && (size_t) (eq - f) < 64) {
                        char key[64];
                        memcpy(key, f, (size_t) (eq - f));
                        key[eq - f] = 0;
                        ok = put_field(buf, cap, &pos, key, eq + 1, len - (size_t) (eq - f) - 1);
                }
                f = end ? end + 1 : f + len;
        }
        if (!ok)
                return -EMSGSIZE;
        if (journal_fd < 0) {
                journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (journal_fd < 0)
                        return -errno;
        }
        if (sendto(journal_fd, buf, pos, MSG_NOSIGNAL, (const struct sockaddr *) &journal_addr,
                   journal_addr_len) < 0)
                return -errno;
        return 0;
}

static const char *level_word(int level)
{
        switch (level) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
        case LOG_ERR:
                return "error";
        case LOG_WARNING:
                return "warning";
        case LOG_NOTICE:
                return "notice";
        case LOG_INFO:
                return "info";
        default:
                return "debug";
        }
}

int log_internal_full(const char *file, int line, const char *func, const char *msgid, const char *fields,
                      int level, int error, const char *bus, const char *node, unsigned job, const char *fmt, ...)
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

        if (use_journal &&
            journal_send(file, line, func, msgid, fields, level, error, bus, node, job, msg) >= 0)
                goto out;
        /* Not the journal, or it refused the entry: the line must not be lost. */
        if (stderr_journal)
                fprintf(stderr, "<%d>%s\n", level, msg);
        else
                fprintf(stderr, "canfleetd: %s: %s\n", level_word(level), msg);
out:
        errno = saved;
        return -error;
}
