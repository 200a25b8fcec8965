/* Reading an update's bytes from a caller's file descriptor: once, into the daemon's own memory, never
 * blocking the event loop. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct FdRead FdRead;

/* Called once from the event loop: r = 0 and data (malloc'ed, size bytes; the callee takes it over) or
 * a negative errno with data NULL:
 *   -EFBIG     more than max bytes
 *   -ETIMEDOUT a pipe or socket did not reach its end within the time-out
 *   -errno     of read()
 * The FdRead is freed right after the callback returns (do not free it in the callback). */
typedef void (*fd_read_done_fn)(FdRead *rd, int r, uint8_t *data, size_t size, void *userdata);

/*
 * Read fd (the caller keeps and closes its own fd: a duplicate or reopened description is used) up
 * to its end, at most max bytes, and call done with the bytes. The bytes are read once: a regular file
 * with pread() from offset 0 at once (the result still comes through done, from a defer source, so the
 * caller has one path); a pipe or a socket through an sd-event io source, non-blocking, within
 * timeout_usec in total (a writer that never closes cannot stall the daemon). A pipe is reopened
 * through /proc/self/fd with O_NONBLOCK, so that the caller's description keeps its flags; a socket is
 * read with MSG_DONTWAIT.
 * Refused at once (nothing is called later):
 *   -EISDIR   a directory        -EBADFD  a device or anything else but a regular file, pipe, socket
 *   -EBADF    not open for reading
 * destroy (may be NULL) frees userdata when the FdRead is freed, called or not.
 * The FdRead is linked into *list (the owner's list of reads in progress; fd_read_free_all() ends
 * them all without calling done).
 */
int fd_read_start(sd_event *e, int fd, size_t max, uint64_t timeout_usec, fd_read_done_fn done,
                  void (*destroy)(void *userdata), void *userdata, FdRead **list, FdRead **ret);
FdRead *fd_read_free(FdRead *rd);
void fd_read_free_all(FdRead **list);
/* Reads in progress in list. */
size_t fd_read_count(FdRead *list);
