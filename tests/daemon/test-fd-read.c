/* Tests of daemon/fd-read.c on a real sd-event loop: a caller's fd read once, pipes and sockets without
 * blocking, the size cap, the time-out, the kinds of file refused. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf-test.h"
#include "fd-read.h"

struct outcome {
        bool called;
        int r;
        uint8_t *data;
        size_t size;
        sd_event *e;
};

static void done(FdRead *rd, int r, uint8_t *data, size_t size, void *userdata)
{
        struct outcome *o = userdata;
        o->called = true;
        o->r = r;
        o->data = data;
        o->size = size;
        sd_event_exit(o->e, 0);
}

/* A writer that hands over its bytes in steps from the loop: one step per timer tick, then closes. */
struct writer {
        int fd;
        const uint8_t *data;
        size_t size, off, step;
        bool close_at_end;
        sd_event_source *timer;
};

static int on_write(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct writer *w = userdata;
        size_t n = w->size - w->off < w->step ? w->size - w->off : w->step;
        if (n > 0) {
                ssize_t k = write(w->fd, w->data + w->off, n);
                CU_ASSERT_EQUAL(k, (ssize_t) n);
                w->off += n;
        }
        if (w->off < w->size) {
                CU_ASSERT_EQUAL(sd_event_source_set_time_relative(s, 100), 0);
                CU_ASSERT_EQUAL(sd_event_source_set_enabled(s, SD_EVENT_ONESHOT), 0);
                return 0;
        }
        if (w->close_at_end) {
                close(w->fd);
                w->fd = -1;
        }
        return 0;
}

static uint8_t *pattern(size_t n)
{
        uint8_t *p = malloc(n);
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (i * 7 + (i >> 8));
        return p;
}

static void run_loop(sd_event *e, struct outcome *o)
{
        o->e = e;
        CU_ASSERT_EQUAL(sd_event_loop(e), 0);
        CU_ASSERT_TRUE(o->called);
}

static void test_regular(void)
{
        sd_event *e;
        FdRead *list = NULL;
        struct outcome o = {0};
        char path[] = "/tmp/cf-test-fdread-XXXXXX";
        int fd = mkstemp(path);
        CU_ASSERT_FATAL(fd >= 0);
        uint8_t *p = pattern(5000);
        CU_ASSERT_EQUAL(write(fd, p, 5000), 5000);
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        /* the fd's own offset is not used: the file is read from its start */
        CU_ASSERT_EQUAL(fd_read_start(e, fd, 8192, 1000000, done, NULL, &o, &list, NULL), 0);
        CU_ASSERT_EQUAL(fd_read_count(list), 1);
        close(fd);
        CU_ASSERT_FALSE(o.called); /* always from the loop */
        run_loop(e, &o);
        CU_ASSERT_EQUAL(o.r, 0);
        CU_ASSERT_EQUAL_FATAL(o.size, 5000);
        CU_ASSERT_EQUAL(memcmp(o.data, p, 5000), 0);
        CU_ASSERT_PTR_NULL(list);
        free(o.data);

        /* exactly the cap is fine, one byte more is -EFBIG (a loop runs once: a new one each time) */
        e = sd_event_unref(e);
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        struct outcome big = {0};
        fd = open(path, O_RDONLY);
        CU_ASSERT_EQUAL(fd_read_start(e, fd, 4999, 1000000, done, NULL, &big, &list, NULL), 0);
        close(fd);
        run_loop(e, &big);
        CU_ASSERT_EQUAL(big.r, -EFBIG);
        CU_ASSERT_PTR_NULL(big.data);
        e = sd_event_unref(e);
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        struct outcome exact = {0};
        fd = open(path, O_RDONLY);
        CU_ASSERT_EQUAL(fd_read_start(e, fd, 5000, 1000000, done, NULL, &exact, &list, NULL), 0);
        close(fd);
        run_loop(e, &exact);
        CU_ASSERT_EQUAL(exact.r, 0);
        CU_ASSERT_EQUAL(exact.size, 5000);
        free(exact.data);
        unlink(path);
        free(p);
        sd_event_unref(e);
}

/* A pipe written in 100 small steps from the same loop: the reader never blocks it (were it to
 * block, the writer, on the same thread, could never go on). */
static void test_pipe_in_steps(void)
{
        sd_event *e;
        FdRead *list = NULL;
        struct outcome o = {0};
        int p[2];
        CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
        uint8_t *data = pattern(300000);
        struct writer w = {.fd = p[1], .data = data, .size = 300000, .step = 3000, .close_at_end = true};
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        CU_ASSERT_EQUAL(fd_read_start(e, p[0], 400000, 60000000, done, NULL, &o, &list, NULL), 0);
        close(p[0]); /* the reader has its own */
        /* the caller's description keeps its flags (the pipe was reopened, not made non-blocking) */
        CU_ASSERT_EQUAL(sd_event_add_time_relative(e, &w.timer, CLOCK_MONOTONIC, 0, 1, on_write, &w), 0);
        run_loop(e, &o);
        CU_ASSERT_EQUAL(o.r, 0);
        CU_ASSERT_EQUAL_FATAL(o.size, 300000);
        CU_ASSERT_EQUAL(memcmp(o.data, data, 300000), 0);
        free(o.data);
        sd_event_source_unref(w.timer);
        free(data);
        sd_event_unref(e);
}

static void test_pipe_keeps_caller_flags(void)
{
        sd_event *e;
        FdRead *list = NULL;
        int p[2];
        CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        CU_ASSERT_EQUAL(fd_read_start(e, p[0], 10, 1000000, done, NULL, NULL, &list, NULL), 0);
        CU_ASSERT_EQUAL(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
        fd_read_free_all(&list); /* no callback */
        CU_ASSERT_PTR_NULL(list);
        close(p[0]);
        close(p[1]);
        sd_event_unref(e);
}

/* A writer that never closes: the time-out ends the read, the loop was never blocked. */
static void test_pipe_timeout(void)
{
        sd_event *e;
        FdRead *list = NULL;
        struct outcome o = {0};
        int p[2];
        CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
        CU_ASSERT_EQUAL(write(p[1], "half", 4), 4);
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        CU_ASSERT_EQUAL(fd_read_start(e, p[0], 100, 200000, done, NULL, &o, &list, NULL), 0);
        run_loop(e, &o);
        CU_ASSERT_EQUAL(o.r, -ETIMEDOUT);
        CU_ASSERT_PTR_NULL(o.data);
        close(p[0]);
        close(p[1]);
        sd_event_unref(e);
}

static void test_pipe_too_big(void)
{
        sd_event *e;
        FdRead *list = NULL;
        struct outcome o = {0};
        int p[2];
        CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
        uint8_t buf[1000] = {0};
        CU_ASSERT_EQUAL(write(p[1], buf, sizeof buf), (ssize_t) sizeof buf);
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        /* the writer stays open: the cap ends the read, not EOF */
        CU_ASSERT_EQUAL(fd_read_start(e, p[0], 999, 10000000, done, NULL, &o, &list, NULL), 0);
        run_loop(e, &o);
        CU_ASSERT_EQUAL(o.r, -EFBIG);
        close(p[0]);
        close(p[1]);
        sd_event_unref(e);
}

static void test_socket(void)
{
        sd_event *e;
        FdRead *list = NULL;
        struct outcome o = {0};
        int sv[2];
        CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        CU_ASSERT_EQUAL(write(sv[1], "bundle bytes", 12), 12);
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        CU_ASSERT_EQUAL(fd_read_start(e, sv[0], 100, 10000000, done, NULL, &o, &list, NULL), 0);
        close(sv[0]);
        shutdown(sv[1], SHUT_WR);
        run_loop(e, &o);
        CU_ASSERT_EQUAL(o.r, 0);
        CU_ASSERT_EQUAL(o.size, 12);
        CU_ASSERT_EQUAL(memcmp(o.data, "bundle bytes", 12), 0);
        free(o.data);
        close(sv[1]);
        sd_event_unref(e);
}

static int destroyed;
static void destroy(void *userdata)
{
        destroyed++;
}

static void test_refused_kinds(void)
{
        sd_event *e;
        FdRead *list = NULL;
        CU_ASSERT_EQUAL(sd_event_new(&e), 0);
        int fd = open("/dev/null", O_RDONLY);
        CU_ASSERT_EQUAL(fd_read_start(e, fd, 10, 1000000, done, destroy, NULL, &list, NULL), -EBADFD);
        close(fd);
        fd = open("/tmp", O_RDONLY | O_DIRECTORY);
        CU_ASSERT_EQUAL(fd_read_start(e, fd, 10, 1000000, done, destroy, NULL, &list, NULL), -EISDIR);
        close(fd);
        int p[2];
        CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
        /* the write end would be reopened for reading through /proc: not the caller's to give */
        CU_ASSERT_EQUAL(fd_read_start(e, p[1], 10, 1000000, done, destroy, NULL, &list, NULL), -EBADF);
        close(p[0]);
        close(p[1]);
        CU_ASSERT_PTR_NULL(list);
        CU_ASSERT_EQUAL(destroyed, 0); /* refused: the userdata stays the caller's */
        sd_event_unref(e);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"a regular file: read from its start, from the loop; the cap", test_regular},
            {"a pipe written in 100 steps by the same loop", test_pipe_in_steps},
            {"the caller's pipe keeps its flags", test_pipe_keeps_caller_flags},
            {"a pipe whose writer never closes times out", test_pipe_timeout},
            {"a pipe over the cap", test_pipe_too_big},
            {"a socket", test_socket},
            {"devices, directories, write ends refused", test_refused_kinds},
            {NULL, NULL},
        };
        return cf_test_run("daemon-fd-read", tests);
}
