/* Downloads of bundles (or any artifact) through the fetcher, with a bounded on-disk cache revalidated by
 * ETag. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetcher.h"

/*
 * Layout, in CACHE_DIR/bundles/ (created when missing):
 *   <sha256 of the file>.cfb   a downloaded file that its user accepted (bundle_cache_keep)
 *   url-<sha256 of the URL>    "<sha256 of the file>\n<ETag as the server sent it>\n" (the URL without
 *                              "user:password@": a changed password names the same file)
 *   CACHE_DIR/downloads/<sha256 of the URL>.part (+ .meta): an unfinished download (fetcher.h), so
 *   that a later download of the same URL goes on with Range + If-Range.
 * A URL with an entry whose file is there is asked for with If-None-Match: a 304 hands over the cached
 * file (checked against its name first: a damaged file is removed with its entry and the URL is
 * downloaded in full); a 200 is a new download. At most BUNDLE_CACHE_MAX files are kept: the least
 * recently used go first (an entry whose file is gone is simply a miss).
 * Nothing here says whether the bytes are good: the caller verifies, then calls bundle_cache_keep().
 * Everything runs on the fetcher's event loop; no threads, and the disk I/O is a few small files
 * plus one file of at most max_size (a bundle: 320 KiB).
 */

#define BUNDLE_CACHE_MAX 8u

typedef struct BundleGet BundleGet;

/* r == 0: data/size are the file (owned by the BundleGet until done returns); cached: it came from
 * the cache after a 304 (no body was downloaded); etag: the validator to keep with it (NULL: none).
 * r < 0: why is a one-line reason naming the URL (credentials left out), e.g.
 * "HTTP 404 Not Found from https://host/x.cfb". The BundleGet is freed when done returns. */
typedef void (*bundle_get_done_fn)(BundleGet *g, int r, const uint8_t *data, size_t size, bool cached,
                                   const char *etag, const char *why, void *userdata);
typedef void (*bundle_get_progress_fn)(BundleGet *g, uint64_t done, uint64_t total, void *userdata);

struct bundle_get_options {
        const char *ca_file;         /* NULL: the system store */
        uint64_t max_size;           /* refuse larger files */
        uint64_t stall_timeout_usec; /* 0: the fetcher's default */
        const char *const *headers;  /* extra request headers, NULL-terminated (may be NULL) */
        bundle_get_progress_fn progress;
};

/* Start getting url (http:// or https://). Errors: -ENOMEM, -EINVAL (a bad URL), -errno creating
 * the cache directories; then no callback comes. */
int bundle_get_start(Fetcher *f, const char *cache_dir, const char *url, const struct bundle_get_options *o,
                     bundle_get_done_fn done, void *userdata, BundleGet **ret);
/* Stop: no callback after it. NULL is fine. Not from inside its own done callback. */
void bundle_get_cancel(BundleGet *g);

/* Keep data (accepted by the caller) as <sha256>.cfb and index url with etag (NULL: no entry, since
 * it could never be revalidated), then trim the cache to BUNDLE_CACHE_MAX files. Errors are -errno;
 * a failure only costs a later download. */
int bundle_cache_keep(const char *cache_dir, const char *url, const char *etag, const uint8_t *data,
                      size_t size);

/* The URL as the journal and error texts may show it: "user:password@" left out (NULL: no memory). */
char *bundle_url_for_log(const char *url);
