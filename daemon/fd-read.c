/* A caller's file descriptor read once into memory, asynchronously for pipes and sockets (RAUC's
 * CVE-2020-25860 is why the bytes are never read twice; a blocking read() of a pipe would stall every bus).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-read.h"

struct FdRead {
        FdRead **list;
        FdRead *next, *prev;
        int fd;
        bool socket;
        uint8_t *buf;
        size_t got, max;
        sd_event_source *io, *timer, *defer;
        int result; /* for the defer source: the regular file's outcome */
        fd_read_done_fn done;
        void (*destroy)(void *userdata);
        void *userdata;
};

FdRead *fd_read_free(FdRead *rd)
{
        if (!rd)
                return NULL;
        if (rd->list) {
                if (rd->prev)
                        rd->prev->next = rd->next;
                else
                        *rd->list = rd->next;
                if (rd->next)
                        rd->next->prev = rd->prev;
        }
        sd_event_source_disable_unref(rd->io);
        sd_event_source_disable_unref(rd->timer);
        sd_event_source_disable_unref(rd->defer);
        safe_close(rd->fd);
        free(rd->buf);
        if (rd->destroy)
                rd->destroy(rd->userdata);
        free(rd);
        return NULL;
}

void fd_read_free_all(FdRead **list)
{
        while (*list)
                fd_read_free(*list);
}

size_t fd_read_count(FdRead *list)
{
        size_t n = 0;
        for (; list; list = list->next)
                n++;
        return n;
}

static void finish(FdRead *rd, int r)
{
        uint8_t *data = NULL;
        size_t size = 0;
        if (r >= 0) {
                data = TAKE_PTR(rd->buf);
                size = rd->got;
                r = 0;
        }
        rd->done(rd, r, data, size, rd->userdata);
        fd_read_free(rd);
}

static int on_defer(sd_event_source *s, void *userdata)
{
        FdRead *rd = userdata;
        finish(rd, rd->result);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        finish(userdata, -ETIMEDOUT);
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        FdRead *rd = userdata;
        /* Up to one read past max, to tell "exactly max" from "more". */
        for (;;) {
                size_t want = rd->max + 1 - rd->got;
                ssize_t n = rd->socket ? recv(rd->fd, rd->buf + rd->got, want, MSG_DONTWAIT)
                                       : read(rd->fd, rd->buf + rd->got, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0; /* more later */
                        finish(rd, -errno);
                        return 0;
                }
                if (n == 0) {
                        finish(rd, 0);
                        return 0;
                }
                rd->got += (size_t) n;
                if (rd->got > rd->max) {
                        finish(rd, -EFBIG);
                        return 0;
                }
        }
}

static int read_regular(int fd, uint8_t *buf, size_t max, size_t *got)
{
        *got = 0;
        while (*got <= max) {
                ssize_t n = pread(fd, buf + *got, max + 1 - *got, (off_t) *got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                *got += (size_t) n;
        }
        return -EFBIG;
}

/* A descriptor of the pipe of our own, non-blocking, without touching the caller's flags. */
static int reopen_pipe(int fd)
{
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        int r = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (r >= 0)
                return r;
        /* No /proc: the caller's description it is; it handed the read end over. */
        r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (r < 0)
                return -errno;
        int fl = fcntl(r, F_GETFL);
        if (fl < 0 || fcntl(r, F_SETFL, fl | O_NONBLOCK) < 0) {
                int e = -errno;
                close(r);
                return e;
        }
        return r;
}

int fd_read_start(sd_event *e, int fd, size_t max, uint64_t timeout_usec, fd_read_done_fn done,
                  void (*destroy)(void *userdata), void *userdata, FdRead **list, FdRead **ret)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
                return -EBADFD;
        if ((fl & O_ACCMODE) == O_WRONLY)
                return -EBADF;

        FdRead *rd = calloc(1, sizeof *rd);
        if (!rd)
                return -ENOMEM;
        rd->fd = -1;
        rd->max = max;
        rd->done = done;
        rd->buf = malloc(max + 1);
        int r = rd->buf ? 0 : -ENOMEM;
        if (r >= 0 && S_ISREG(st.st_mode)) {
                /* A regular file does not block: read it now, deliver from the loop. */
                rd->result = read_regular(fd, rd->buf, max, &rd->got);
                r = sd_event_add_defer(e, &rd->defer, on_defer, rd);
        } else if (r >= 0) {
                rd->socket = S_ISSOCK(st.st_mode);
                rd->fd = rd->socket ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : reopen_pipe(fd);
                if (rd->fd < 0)
                        r = rd->socket ? -errno : rd->fd;
                if (r >= 0)
                        r = sd_event_add_io(e, &rd->io, rd->fd, EPOLLIN, on_io, rd);
                if (r >= 0)
                        r = sd_event_add_time_relative(e, &rd->timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                                       on_timeout, rd);
        }
        if (r < 0) {
                fd_read_free(rd); /* userdata stays the caller's: destroy not yet set */
                return r;
        }
        rd->destroy = destroy;
        rd->userdata = userdata;
        rd->list = list;
        rd->next = *list;
        if (rd->next)
                rd->next->prev = rd;
        *list = rd;
        if (ret)
                *ret = rd;
        return 0;
}
