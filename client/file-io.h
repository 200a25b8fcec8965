/* canfleetctl's file helpers: read a regular file whole, write one atomically. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Read at most max bytes of path into buf; *len gets the file's full size so the caller can tell
 * "too large" apart from "fits". Negative errno; -EBADFD when path is not a regular file. */
int cf_read_file(const char *path, uint8_t *buf, size_t max, uint64_t *len);

/* strerror() of cf_read_file()'s result, "not a regular file" for -EBADFD. */
const char *cf_read_strerror(int r);

/* Write data to path through a temporary file in the same directory and rename(), so that a reader
 * (or a crash) sees either the old file or the whole new one. Negative errno. */
int cf_write_atomic(const char *path, const uint8_t *data, size_t len);
