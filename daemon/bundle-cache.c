/* Downloads of bundles through the fetcher, kept in a bounded cache and revalidated with If-None-Match. */
#include "bundle-cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "canfleet/sha256.h"
#include "cleanup.h"
#include "job-store.h"
#include "log.h"

struct BundleGet {
        Fetcher *fetcher;
        Fetch *fetch;
        char *cache_dir, *url;
        char *shown; /* url without credentials */
        char url_key[65];
        char *ca_file;
        uint64_t max_size, stall;
        char **headers;
        bundle_get_progress_fn progress;
        bundle_get_done_fn done;
        void *userdata;
        char cached_sha[65]; /* the entry revalidated with If-None-Match ("": none) */
};

static void hex_of(const uint8_t *d, size_t n, char *out)
{
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex[d[i] >> 4];
                out[2 * i + 1] = hex[d[i] & 0xF];
        }
        out[2 * n] = 0;
}

static void sha_hex(const uint8_t *data, size_t size, char out[65])
{
        uint8_t d[CF_SHA256_LEN];
        cf_sha256(data, size, d);
        hex_of(d, CF_SHA256_LEN, out);
}

static int make_dir(const char *cache_dir, const char *sub, char **ret)
{
        if (asprintf(ret, "%s/%s", cache_dir, sub) < 0)
                return -ENOMEM;
        if (mkdir(*ret, 0700) < 0 && errno != EEXIST) {
                int r = -errno;
                free(*ret);
                *ret = NULL;
                return r;
        }
        return 0;
}

/* Read a regular file of at most max bytes (O_NONBLOCK: a FIFO planted in the cache never blocks). */
static int read_small(const char *path, size_t max, uint8_t **ret, size_t *size)
{
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        _cleanup_(freep) uint8_t *buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        for (;;) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size + 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                got += (size_t) n;
                if (got > max || got > (size_t) st.st_size)
                        return -EFBIG;
        }
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        *size = got;
        return 0;
}

/* The entry of url_key: the cached file's sha and its ETag; -ENOENT when there is none usable. */
static int entry_read(const char *dir, const char *url_key, char sha[65], char **etag)
{
        _cleanup_(freep) char *p = NULL;
        _cleanup_(freep) uint8_t *text = NULL;
        size_t size;
        if (asprintf(&p, "%s/url-%s", dir, url_key) < 0)
                return -ENOMEM;
        int r = read_small(p, 4096, &text, &size);
        if (r < 0)
                return r;
        char *nl = strchr((char *) text, '\n');
        if (!nl || nl - (char *) text != 64)
                return -EBADMSG;
        *nl = 0;
        char *e = nl + 1, *end = strchr(e, '\n');
        if (!end || end == e)
                return -EBADMSG;
        *end = 0;
        memcpy(sha, text, 65);
        *etag = strdup(e);
        return *etag ? 0 : -ENOMEM;
}

static void entry_remove(const char *dir, const char *url_key, const char *sha)
{
        _cleanup_(freep) char *p = NULL, *q = NULL;
        if (asprintf(&p, "%s/url-%s", dir, url_key) >= 0)
                (void) unlink(p);
        if (sha && sha[0] && asprintf(&q, "%s/%s.cfb", dir, sha) >= 0)
                (void) unlink(q);
}

static void bundle_get_free(BundleGet *g)
{
        if (!g)
                return;
        fetch_cancel(g->fetch);
        free(g->cache_dir);
        free(g->url);
        free(g->shown);
        free(g->ca_file);
        if (g->headers)
                for (char **h = g->headers; *h; h++)
                        free(*h);
        free(g->headers);
        free(g);
}

void bundle_get_cancel(BundleGet *g)
{
        bundle_get_free(g);
}

static int begin(BundleGet *g, bool revalidate);

static void on_progress(Fetch *x, uint64_t done, uint64_t total, void *userdata)
{
        BundleGet *g = userdata;
        if (g->progress)
                g->progress(g, done, total, g->userdata);
}

static void on_done(Fetch *x, int r, const uint8_t *data, size_t size, const char *why, void *userdata)
{
        BundleGet *g = userdata;
        g->fetch = NULL; /* freed by the fetcher when we return */
        if (r >= 0 && fetch_status(x) == 304 && g->cached_sha[0]) {
                _cleanup_(freep) char *dir = NULL, *p = NULL;
                _cleanup_(freep) uint8_t *cached = NULL;
                size_t csize = 0;
                char sha[65];
                if (asprintf(&dir, "%s/bundles", g->cache_dir) < 0 ||
                    asprintf(&p, "%s/%s.cfb", dir, g->cached_sha) < 0)
                        r = -ENOMEM;
                int k = r < 0 ? r : read_small(p, g->max_size, &cached, &csize);
                if (k >= 0 && (sha_hex(cached, csize, sha), strcmp(sha, g->cached_sha) == 0)) {
                        /* the cache's file as the server's: touched, so that trimming keeps it longest */
                        (void) utimensat(AT_FDCWD, p, NULL, 0);
                        g->done(g, 0, cached, csize, true, fetch_etag(x), NULL, g->userdata);
                        bundle_get_free(g);
                        return;
                }
                if (r >= 0) {
                        /* Damaged or gone since the request: forget it, and download the whole file. */
                        log_warning("cached bundle %s/%s.cfb for %s is %s: removed, downloading again", dir,
                                    g->cached_sha, g->shown, k < 0 ? strerror(-k) : "damaged");
                        entry_remove(dir, g->url_key, g->cached_sha);
                        k = begin(g, false);
                        if (k >= 0)
                                return;
                        r = k;
                }
        } else if (r >= 0 && fetch_status(x) == 304)
                r = -EPROTO, why = "HTTP 304 Not Modified for a request without If-None-Match";
        if (r < 0) {
                char buf[512];
                if (!why) {
                        snprintf(buf, sizeof buf, "%s from %s", strerror(-r), g->shown);
                        why = buf;
                }
                g->done(g, r, NULL, 0, false, NULL, why, g->userdata);
        } else
                g->done(g, 0, data, size, false, fetch_etag(x), NULL, g->userdata);
        bundle_get_free(g);
}

static int begin(BundleGet *g, bool revalidate)
{
        _cleanup_(freep) char *bdir = NULL, *ddir = NULL, *part = NULL, *etag = NULL;
        int r = make_dir(g->cache_dir, "bundles", &bdir);
        if (r >= 0)
                r = make_dir(g->cache_dir, "downloads", &ddir);
        if (r < 0)
                return r;
        g->cached_sha[0] = 0;
        if (revalidate && entry_read(bdir, g->url_key, g->cached_sha, &etag) >= 0) {
                _cleanup_(freep) char *p = NULL;
                if (asprintf(&p, "%s/%s.cfb", bdir, g->cached_sha) < 0)
                        return -ENOMEM;
                if (access(p, F_OK) < 0) {
                        /* trimmed away: the entry is of no use */
                        entry_remove(bdir, g->url_key, NULL);
                        g->cached_sha[0] = 0;
                        free(etag);
                        etag = NULL;
                }
        } else
                g->cached_sha[0] = 0;
        if (asprintf(&part, "%s/%s.part", ddir, g->url_key) < 0)
                return -ENOMEM;
        const struct fetch_options o = {
            .ca_file = g->ca_file,
            .max_size = g->max_size,
            .stall_timeout_usec = g->stall,
            .headers = (const char *const *) g->headers,
            .progress = on_progress,
            /* A revalidation has a whole file already: no partial one to go on with. */
            .partial_path = etag ? NULL : part,
            .if_none_match = etag,
        };
        return fetch_start(g->fetcher, g->url, &o, on_done, g, &g->fetch);
}

int bundle_get_start(Fetcher *f, const char *cache_dir, const char *url, const struct bundle_get_options *o,
                     bundle_get_done_fn done, void *userdata, BundleGet **ret)
{
        BundleGet *g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        g->fetcher = f;
        g->done = done;
        g->userdata = userdata;
        g->max_size = o->max_size;
        g->stall = o->stall_timeout_usec;
        g->progress = o->progress;
        g->cache_dir = strdup(cache_dir);
        g->url = strdup(url);
        g->shown = bundle_url_for_log(url);
        g->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
        int r = g->cache_dir && g->url && g->shown && (!o->ca_file || g->ca_file) ? 0 : -ENOMEM;
        size_t nh = 0;
        while (o->headers && o->headers[nh])
                nh++;
        if (r >= 0 && nh) {
                g->headers = calloc(nh + 1, sizeof *g->headers);
                for (size_t i = 0; g->headers && i < nh; i++)
                        if (!(g->headers[i] = strdup(o->headers[i])))
                                r = -ENOMEM;
                if (!g->headers)
                        r = -ENOMEM;
        }
        if (r >= 0) {
                sha_hex((const uint8_t *) g->shown, strlen(g->shown), g->url_key);
                r = begin(g, true);
        }
        if (r < 0) {
                bundle_get_free(g);
                return r;
        }
        if (ret)
                *ret = g;
        return 0;
}

/* Keep the BUNDLE_CACHE_MAX most recently used files; entries of removed files become misses. */
static void trim(const char *dir)
{
        struct item {
                char name[80];
                struct timespec t;
        } items[64];
        size_t n = 0;
        DIR *d = opendir(dir);
        if (!d)
                return;
        for (;;) {
                struct dirent *e;
                do {
                        e = readdir(d);
                        if (!e)
                                break;
                } while (strlen(e->d_name) != 68 || strcmp(e->d_name + 64, ".cfb") != 0);
                struct stat st;
                if (!e || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (!e)
                                break;
                        continue;
                }
                struct item it;
                snprintf(it.name, sizeof it.name, "%s", e->d_name);
                it.t = st.st_mtim;
                if (n < ELEMENTSOF(items)) {
                        items[n++] = it;
                        continue;
                }
                /* more than fit: the oldest of the list goes now */
                size_t old = 0;
                for (size_t i = 1; i < n; i++)
                        if (items[i].t.tv_sec < items[old].t.tv_sec ||
                            (items[i].t.tv_sec == items[old].t.tv_sec &&
                             items[i].t.tv_nsec < items[old].t.tv_nsec))
                                old = i;
                (void) unlinkat(dirfd(d), items[old].name, 0);
                items[old] = it;
        }
        while (n > BUNDLE_CACHE_MAX) {
                size_t old = 0;
                for (size_t i = 1; i < n; i++)
                        if (items[i].t.tv_sec < items[old].t.tv_sec ||
                            (items[i].t.tv_sec == items[old].t.tv_sec &&
                             items[i].t.tv_nsec < items[old].t.tv_nsec))
                                old = i;
                (void) unlinkat(dirfd(d), items[old].name, 0);
                items[old] = items[--n];
        }
        closedir(d);
}

int bundle_cache_keep(const char *cache_dir, const char *url, const char *etag, const uint8_t *data,
                      size_t size)
{
        _cleanup_(freep) char *dir = NULL, *text = NULL;
        char sha[65], key[65], name[80];
        int r = make_dir(cache_dir, "bundles", &dir);
        if (r < 0)
                return r;
        sha_hex(data, size, sha);
        snprintf(name, sizeof name, "%s.cfb", sha);
        r = write_file_atomic(dir, name, data, size, 0600);
        if (r < 0)
                return r;
        _cleanup_(freep) char *shown = bundle_url_for_log(url);
        if (!shown)
                return -ENOMEM;
        sha_hex((const uint8_t *) shown, strlen(shown), key);
        snprintf(name, sizeof name, "url-%s", key);
        /* a weak or missing validator cannot revalidate the bytes: no entry (a later job downloads) */
        if (etag && etag[0] && strncmp(etag, "W/", 2) != 0 && !strchr(etag, '\n')) {
                if (asprintf(&text, "%s\n%s\n", sha, etag) < 0)
                        return -ENOMEM;
                r = write_file_atomic(dir, name, text, strlen(text), 0600);
        } else
                entry_remove(dir, key, NULL);
        trim(dir);
        return r;
}

char *bundle_url_for_log(const char *url)
{
        const char *host = strstr(url, "://");
        host = host ? host + 3 : url;
        const char *end = host + strcspn(host, "/?#");
        const char *at = memchr(host, '@', (size_t) (end - host));
        if (!at)
                return strdup(url);
        char *r = NULL;
        if (asprintf(&r, "%.*s%s", (int) (host - url), url, at + 1) < 0)
                return NULL;
        return r;
}
