/* The one place canfleetd speaks HTTP(S): downloads with libcurl's multi interface driven by sd-event. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

/*
 * One Fetcher per event loop (the manager's): one CURLM whose sockets and timer are sd-event sources.
 * No threads of ours, no sleeps, nothing blocks on the network.
 *
 * Every Fetch ends in exactly one call of its done callback, always from the event loop (never from
 * inside fetch_start), unless fetch_cancel() or fetcher_free() came first:
 *   r == 0:   data/size hold the whole body; error is NULL.
 *   r < 0:    data is NULL, size 0; error is a one-line message naming the URL (credentials in it
 *             are never shown) and, after retries, how many tries were made.
 * data and error belong to the Fetch and live until done returns; copy what you keep. The Fetch is
 * freed when done returns: the pointer is invalid afterwards (fetch_cancel() on it inside its own
 * done callback is a harmless no-op).
 *
 * Error codes handed to done (fetch_start itself only fails with -EINVAL, -EPROTONOSUPPORT,
 * -ENOMEM, and then no callback comes; -EINVAL also for an unknown method, a body with GET or a
 * partial_path with POST/PUT):
 *   -ENOENT            HTTP 404/410, or a file:// path that cannot be read
 *   -EACCES            HTTP 401/403
 *   -EREMOTEIO         any other HTTP error status (4xx without retry; 5xx/408/429 after max_tries)
 *   -EFBIG             the body (Content-Length, Content-Range total or bytes received) exceeds max_size
 *   -ETIMEDOUT         no byte for stall_timeout_usec, after max_tries
 *   -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET   network errors after max_tries
 *   -EKEYREJECTED      the server's TLS certificate is not trusted (never retried)
 *   -EPROTONOSUPPORT   redirect to a scheme other than http/https
 *   -ELOOP             more than 5 redirects
 *   -EPROTO            a reply that breaks HTTP's rules (206 with a wrong Content-Range, 2xx other
 *                      than 200/206, a 3xx without Location)
 *   -EIO, or -errno of the partial file's I/O; -ENOMEM
 *
 * Thread-safety: none; everything belongs to the event loop's thread.
 */

typedef struct Fetcher Fetcher;
typedef struct Fetch Fetch;

/* Bytes held so far (a resumed part included) and the full size, 0 when the server did not say.
 * Called from the event loop after bytes arrived; fetch_cancel() is allowed inside it. */
typedef void (*fetch_progress_fn)(Fetch *x, uint64_t done, uint64_t total, void *userdata);
typedef void (*fetch_done_fn)(Fetch *x, int r, const uint8_t *data, size_t size, const char *error,
                              void *userdata);

struct fetch_options {
        /* PEM file of trust anchors instead of the system store. TLS is always verified. */
        const char *ca_file;
        /* Refuse bodies larger than this (0: FETCH_MAX_SIZE_DEFAULT). The body is held in memory. */
        uint64_t max_size;
        /* Requests at most, retries included (0: FETCH_MAX_TRIES_DEFAULT). */
        unsigned max_tries;
        /* A try fails when no byte arrived for this long, connecting included (0: 30 s). */
        uint64_t stall_timeout_usec;
        /* When set, the bytes received are kept in this file (and its validator in
         * "<partial_path>.meta"), so that a later fetch of the same URL continues with Range + If-Range
         * instead of starting over. Removed after a success; kept after a failure or cancel. */
        const char *partial_path;
        /* NULL-terminated extra request headers ("Authorization: GatewayToken …"); copied. */
        const char *const *headers;
        fetch_progress_fn progress;
        /* Back-off before the 2nd try (0: 1 s), doubled for each further try, capped at
         * backoff_max_usec (0: 60 s). A Retry-After of a 429/503 is honoured up to backoff_max_usec. */
        uint64_t backoff_usec;
        uint64_t backoff_max_usec;

        /* For APIs (hawkBit's DDI): "GET" (NULL), "POST" or "PUT". A POST or PUT sends body_size bytes of
         * body (copied; NULL/0: an empty body) with Content-Type: content_type (NULL: none), and any
         * 2xx is a success (its body, possibly empty, handed to done). partial_path goes with GET only. */
        const char *method;
        const void *body;
        size_t body_size;
        const char *content_type;
        /* Sent as If-None-Match. A 304 answer is then a success: done gets r == 0 with data NULL, size 0,
         * and fetch_status() says 304 ("not modified"). */
        const char *if_none_match;
};

#define FETCH_MAX_SIZE_DEFAULT      (UINT64_C(16) * 1024 * 1024)
#define FETCH_MAX_TRIES_DEFAULT     5U
#define FETCH_STALL_TIMEOUT_DEFAULT (UINT64_C(30) * 1000000)
#define FETCH_BACKOFF_DEFAULT       (UINT64_C(1) * 1000000)
#define FETCH_BACKOFF_MAX_DEFAULT   (UINT64_C(60) * 1000000)
#define FETCH_MAX_REDIRECTS         5L

int fetcher_new(sd_event *e, Fetcher **ret);
/* Cancels every running fetch (no callbacks). Not from inside one of its own callbacks. Returns NULL. */
Fetcher *fetcher_free(Fetcher *f);

/* Start downloading url (http://, https:// or file://). o may be NULL for the defaults; its strings
 * are copied. ret may be NULL when the caller never cancels. */
int fetch_start(Fetcher *f, const char *url, const struct fetch_options *o, fetch_done_fn done,
                void *userdata, Fetch **ret);
/* Stop and free a fetch: no callback after it. NULL is fine. */
void fetch_cancel(Fetch *x);

/* What the last response said, for the done callback (valid until it returns; the fetch is freed
 * after): the HTTP status (0: none, e.g. a network error or file://), its ETag header (NULL: none;
 * as sent, quotes included, ready for if_none_match), and its Retry-After in µs (-1: none). With
 * max_tries 1 a caller sees every status and decides about retries itself (hawkBit's client does). */
long fetch_status(const Fetch *x);
const char *fetch_etag(const Fetch *x);
int64_t fetch_retry_after_usec(const Fetch *x);

/* 0 when url has a scheme fetch_start accepts, -EPROTONOSUPPORT or -EINVAL otherwise: for checking
 * a URL when it is handed over, before a job exists. */
int fetch_url_check(const char *url);
