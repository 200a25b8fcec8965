/* canfleetd's own _cleanup_ helpers (libsystemd exports sd_*_unrefp but not systemd's internal macros). */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

/* Hand a pointer over and leave NULL behind, so that the cleanup of the local does nothing. */
#define TAKE_PTR(p)                                                                                         \
        __extension__({                                                                                     \
                __typeof__(p) _p_ = (p);                                                                    \
                (p) = NULL;                                                                                 \
                _p_;                                                                                        \
        })

#define TAKE_FD(fd)                                                                                         \
        __extension__({                                                                                     \
                int _fd_ = (fd);                                                                            \
                (fd) = -1;                                                                                  \
                _fd_;                                                                                       \
        })

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void freep(void *p)
{
        free(*(void **) p);
}

/* close() that keeps errno, for cleanup paths. */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd)
{
        safe_close(*fd);
}

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

/* Define name##p(T **p) calling func(*p) when non-NULL: the cleanup form of a destructor. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                             \
        static inline void func##p(type *p)                                                                 \
        {                                                                                                   \
                if (*p)                                                                                     \
                        func(*p);                                                                           \
        }

/* A new string from a format, NULL when out of memory (the caller owns it). */
static inline char *strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *strdup_printf(const char *fmt, ...)
{
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

/* Replace an owned string: *p is freed and takes s. */
static inline void set_str(char **p, char *s)
{
        free(*p);
        *p = s;
}
