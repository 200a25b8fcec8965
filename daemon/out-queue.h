/* A growable queue of bytes waiting for a non-blocking fd to take them (the SLCAN adapter's and the
 * serial line's output). */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* More than this waiting means the other end stopped reading: refuse rather than grow forever. */
#define OUT_QUEUE_MAX (256u * 1024u)

typedef struct OutQueue {
        uint8_t *buf;
        size_t head, len, cap; /* bytes head..len wait */
} OutQueue;

static inline size_t out_queue_pending(const OutQueue *q)
{
        return q->len - q->head;
}

static inline void out_queue_clear(OutQueue *q)
{
        q->head = q->len = 0;
}

static inline void out_queue_free(OutQueue *q)
{
        free(q->buf);
        *q = (OutQueue){0};
}

/* 0, -ENOBUFS past OUT_QUEUE_MAX, -ENOMEM. */
static inline int out_queue_append(OutQueue *q, const void *data, size_t n)
{
        if (q->head > 0 && q->len + n > q->cap) {
                memmove(q->buf, q->buf + q->head, q->len - q->head);
                q->len -= q->head;
                q->head = 0;
        }
        if (q->len + n > q->cap) {
                size_t cap = q->cap ? q->cap * 2 : 4096;
                while (cap < q->len + n)
                        cap *= 2;
                if (cap > OUT_QUEUE_MAX)
                        return -ENOBUFS;
                uint8_t *b = realloc(q->buf, cap);
                if (!b)
                        return -ENOMEM;
                q->buf = b;
                q->cap = cap;
        }
        memcpy(q->buf + q->len, data, n);
        q->len += n;
        return 0;
}

/* Write what fd takes now; *written (may be NULL) counts it. 0 (all written, or the fd is full),
 * or the write's -errno (what waits stays queued). */
static inline int out_queue_write(OutQueue *q, int fd, uint64_t *written)
{
        int r = 0;
        while (q->head < q->len) {
                ssize_t n = write(fd, q->buf + q->head, q->len - q->head);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                r = -errno;
                        break;
                }
                if (written)
                        *written += (uint64_t) n;
                q->head += (size_t) n;
        }
        if (q->head == q->len)
                out_queue_clear(q);
        return r;
}
