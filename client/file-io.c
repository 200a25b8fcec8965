/* canfleetctl's file helpers (file-io.h): whole reads of regular files, atomic writes. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-io.h"

/* Read at most max bytes of path into buf; *len gets the file's full size so the caller can tell
 * "too large" apart from "fits". Negative errno; -EBADFD when path is not a regular file. */
int cf_read_file(const char *path, uint8_t *buf, size_t max, uint64_t *len)
{
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD;
        }
        *len = (uint64_t) st.st_size;
        size_t want = *len < max ? (size_t) *len : max, got = 0;
        while (got < want) {
                ssize_t n = read(fd, buf + got, want - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        close(fd);
        if (got != want)
                return -EIO; /* the file shrank while we read it */
        return 0;
}

const char *cf_read_strerror(int r)
{
        return r == -EBADFD ? "not a regular file" : strerror(-r);
}

/* Write data to path through a temporary file in the same directory and rename(), so that a reader
 * (or a crash) sees either the old file or the whole new one. Negative errno. */
int cf_write_atomic(const char *path, const uint8_t *data, size_t len)
{
        char *dup = strdup(path), *tmp = NULL;
        int fd = -1, r;

        if (!dup)
                return -ENOMEM;
        char *base = basename(dup);
        char *dirdup = strdup(path);
        if (!dirdup) {
                free(dup);
                return -ENOMEM;
        }
        const char *dir = dirname(dirdup);
        if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
                tmp = NULL;
                r = -ENOMEM;
                goto out;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                free(tmp);
                tmp = NULL;
                goto out;
        }
        /* mkostemp() creates 0600; an image is no secret, give it what a plain create would */
        mode_t um = umask(0);
        umask(um);
        if (fchmod(fd, 0666 & ~um) < 0) {
                r = -errno;
                goto out;
        }
        for (size_t done = 0; done < len;) {
                ssize_t n = write(fd, data + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        goto out;
                }
                done += (size_t) n;
        }
        if (fsync(fd) < 0) {
                r = -errno;
                goto out;
        }
        if (close(fd) < 0) {
                fd = -1;
                r = -errno;
                goto out;
        }
        fd = -1;
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto out;
        }
        free(tmp);
        tmp = NULL;
        r = 0;
out:
        if (fd >= 0)
                close(fd);
        if (tmp) {
                unlink(tmp);
                free(tmp);
        }
        free(dup);
        free(dirdup);
        return r;
}
