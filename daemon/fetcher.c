/* Downloads for canfleetd: libcurl's multi interface on sd-event, with resume, retries, a size cap and a
 * stall time-out. */
#include "fetcher.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "canfleetd-config.h"
#include "cleanup.h"
#include "conf.h"

#define META_MAGIC "canfleet-partial-1"
/* 1 ms: sd-event's default accuracy (250 ms) would make curl's short timers and our back-off sluggish. */
#define TIMER_ACCURACY_USEC 1000

struct sock {
        Fetcher *fetcher;
        sd_event_source *io;
        struct sock *prev, *next;
};

struct Fetcher {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer; /* curl's own time-outs */
        Fetch *fetches;
        struct sock *socks;
};

struct Fetch {
        Fetcher *fetcher;
        Fetch *prev, *next;
        CURL *easy;
        char *url;
        char *shown_url; /* for messages: no credentials, no query */
        char *ca_file;
        char *partial_path, *meta_path;
        struct curl_slist *user_headers;
        struct curl_slist *request_headers; /* this try's: user_headers + If-Range */
        uint64_t max_size, stall_usec, backoff_usec, backoff_max_usec;
        unsigned max_tries, tries;
        fetch_progress_fn progress;
        fetch_done_fn done;
        void *userdata;
        bool is_file;
        /* An API request: POST/PUT with a body, and If-None-Match. */
        bool has_method;
        char *if_none_match, *content_type;

        /* The body so far, and the validator (strong ETag or Last-Modified) it belongs to. */
        uint8_t *data;
        size_t size, alloc;
        char *validator;
        int partial_fd;

        /* State of the current try. */
        bool in_multi, finished, headers_done, has_location, stalled, in_done, progress_dirty;
        CURLcode result;
        long status;
        char reason[64];
        char *etag, *last_modified, *content_range;
        int64_t content_length;   /* -1: not given */
        int64_t retry_after_usec; /* -1: not given */
        uint64_t range_from;      /* the Range sent, 0: none */
        uint64_t total;           /* full size when known, 0 otherwise */
        int abort_r;              /* a refusal decided inside a curl callback */
        char *abort_msg;
        uint64_t last_byte;

        sd_event_source *stall_timer;
        sd_event_source *wait; /* back-off before the next try, or a failure to report later */
        int pending_r;
        char *pending_msg;
        char errbuf[CURL_ERROR_SIZE];
};

static uint64_t now_usec(Fetcher *f)
{
        uint64_t t = 0;
        if (sd_event_now(f->event, CLOCK_MONOTONIC, &t) < 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                t = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        }
        return t;
}

/* Like now_usec(), but the real current time: sd_event_now() is the time of the loop's wake-up, and a
 * long dispatch must not look like a stall. */
static uint64_t clock_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int fetch_url_check(const char *url)
{
        if (!url || !*url)
                return -EINVAL;
        CURLU *u = curl_url();
        if (!u)
                return -ENOMEM;
        int r = 0;
        char *scheme = NULL;
        CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
        if (uc != CURLUE_OK)
                r = uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
        else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
                r = -EINVAL;
        else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0 &&
                 strcasecmp(scheme, "file") != 0)
                r = -EPROTONOSUPPORT;
        curl_free(scheme);
        curl_url_cleanup(u);
        return r;
}

/* The URL as messages show it: user, password and query are dropped (tokens travel there). */
static char *shown_url(const char *url)
{
        CURLU *u = curl_url();
        char *s = NULL, *out = NULL;
        if (u && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
                bool had_query = false;
                char *q = NULL;
                if (curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK)
                        had_query = true;
                curl_free(q);
                curl_url_set(u, CURLUPART_USER, NULL, 0);
                curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
                curl_url_set(u, CURLUPART_QUERY, NULL, 0);
                if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
                        out = strdup_printf("%s%s", s, had_query ? "?…" : "");
                curl_free(s);
        }
        curl_url_cleanup(u);
        return out ? out : strdup("(unparsable URL)");
}

static const char *status_reason(long status)
{
        switch (status) {
        case 400:
                return "Bad Request";
        case 401:
                return "Unauthorized";
        case 403:
                return "Forbidden";
        case 404:
                return "Not Found";
        case 408:
                return "Request Timeout";
        case 410:
                return "Gone";
        case 416:
                return "Range Not Satisfiable";
        case 429:
                return "Too Many Requests";
        case 500:
                return "Internal Server Error";
        case 502:
                return "Bad Gateway";
        case 503:
                return "Service Unavailable";
        case 504:
                return "Gateway Timeout";
        default:
                return "";
        }
}

/* ---- the partial file ---- */

static void partial_drop(Fetch *x)
{
        x->size = 0;
        set_str(&x->validator, NULL);
        if (x->partial_fd >= 0) {
                (void) !ftruncate(x->partial_fd, 0);
                (void) lseek(x->partial_fd, 0, SEEK_SET);
        }
        if (x->meta_path)
                (void) unlink(x->meta_path);
}

/* Record which URL and validator the partial file's bytes belong to, atomically. */
static int partial_save_meta(Fetch *x)
{
        if (!x->meta_path)
                return 0;
        if (!x->validator) {
                if (unlink(x->meta_path) < 0 && errno != ENOENT)
                        return -errno;
                return 0;
        }
        _cleanup_(freep) char *tmp = strdup_printf("%s.tmp", x->meta_path);
        if (!tmp)
                return -ENOMEM;
        (void) unlink(tmp); /* a FIFO at the tmp name would block fopen() for ever */
        _cleanup_(fclosep) FILE *m = fopen(tmp, "wex");
        if (!m)
                return -errno;
        fprintf(m, "%s\n%s\n%s\n", META_MAGIC, x->url, x->validator);
        if (fflush(m) != 0 || ferror(m)) {
                int r = errno ? -errno : -EIO;
                (void) unlink(tmp);
                return r;
        }
        if (rename(tmp, x->meta_path) < 0) {
                int r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

static bool read_line(FILE *m, char *buf, size_t n)
{
        if (!fgets(buf, (int) n, m))
                return false;
        size_t l = strlen(buf);
        if (l == 0 || buf[l - 1] != '\n')
                return false;
        buf[l - 1] = 0;
        return true;
}

/* Open the partial file; keep its bytes when its meta says they are this URL's, with a validator. */
static int partial_load(Fetch *x)
{
        x->meta_path = strdup_printf("%s.meta", x->partial_path);
        if (!x->meta_path)
                return -ENOMEM;
        /* The cache is canfleetd's own: anything but a regular file at the partial file's name (a FIFO,
         * a device, a symlink) is removed and the download starts afresh; a directory is an error. */
        x->partial_fd =
            open(x->partial_path, O_RDWR | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        struct stat st;
        if (x->partial_fd >= 0 && fstat(x->partial_fd, &st) < 0)
                return -errno;
        if (x->partial_fd < 0 ? errno == ELOOP : !S_ISREG(st.st_mode)) {
                x->partial_fd = safe_close(x->partial_fd);
                if (unlink(x->partial_path) < 0)
                        return errno == EISDIR || errno == EPERM ? -EISDIR : -errno;
                x->partial_fd = open(x->partial_path,
                                     O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (x->partial_fd >= 0 && fstat(x->partial_fd, &st) < 0)
                        return -errno;
        }
        if (x->partial_fd < 0)
                return -errno;
        /* O_NONBLOCK was for the open only */
        if (fcntl(x->partial_fd, F_SETFL, 0) < 0)
                return -errno;

        bool keep = false;
        /* the meta file: read only when it is a regular file (opening a FIFO would block for ever) */
        _cleanup_(freep) char *meta = NULL;
        size_t meta_len = 0;
        _cleanup_(fclosep) FILE *m = NULL;
        if (cf_read_regular_file(x->meta_path, 8192, &meta, &meta_len, NULL) >= 0)
                m = fmemopen(meta, meta_len, "r");
        if (m) {
                char magic[32], url[4096], validator[512];
                if (read_line(m, magic, sizeof magic) && strcmp(magic, META_MAGIC) == 0 &&
                    read_line(m, url, sizeof url) && strcmp(url, x->url) == 0 &&
                    read_line(m, validator, sizeof validator) && validator[0] && st.st_size > 0 &&
                    (uint64_t) st.st_size <= x->max_size) {
                        x->validator = strdup(validator);
                        if (!x->validator)
                                return -ENOMEM;
                        keep = true;
                }
        }
        if (!keep) {
                partial_drop(x);
                return 0;
        }
        x->alloc = (size_t) st.st_size;
        x->data = malloc(x->alloc);
        if (!x->data)
                return -ENOMEM;
        ssize_t n = pread(x->partial_fd, x->data, x->alloc, 0);
        if (n < 0)
                return -errno;
        x->size = (size_t) n;
        if (lseek(x->partial_fd, (off_t) x->size, SEEK_SET) < 0)
                return -errno;
        return 0;
}

static void partial_remove(Fetch *x)
{
        if (!x->partial_path)
                return;
        x->partial_fd = safe_close(x->partial_fd);
        (void) unlink(x->partial_path);
        (void) unlink(x->meta_path);
}

/* ---- one try ---- */

static void try_reset(Fetch *x)
{
        x->finished = x->headers_done = x->has_location = x->stalled = false;
        x->result = CURLE_OK;
        x->status = 0;
        x->reason[0] = 0;
        set_str(&x->etag, NULL);
        set_str(&x->last_modified, NULL);
        set_str(&x->content_range, NULL);
        x->content_length = -1;
        x->retry_after_usec = -1;
        x->range_from = 0;
        x->total = 0;
        x->abort_r = 0;
        set_str(&x->abort_msg, NULL);
        x->errbuf[0] = 0;
}

/* Refuse from inside a curl callback: curl ends the transfer with a write error, and finish_try()
 * reports this instead. */
static int abort_with(Fetch *x, int r, char *msg)
{
        x->abort_r = r;
        set_str(&x->abort_msg, msg);
        return r;
}

static int grow(Fetch *x, uint64_t want)
{
        if (want <= x->alloc)
                return 0;
        uint64_t n = x->alloc ? x->alloc : 64 * 1024;
        while (n < want)
                n *= 2;
        if (n > x->max_size)
                n = x->max_size;
        if (n < want)
                return -EFBIG;
        uint8_t *p = realloc(x->data, (size_t) n);
        if (!p)
                return -ENOMEM;
        x->data = p;
        x->alloc = (size_t) n;
        return 0;
}

static bool parse_u64(const char *s, const char **end, uint64_t *ret)
{
        if (*s < '0' || *s > '9')
                return false;
        uint64_t v = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *end = s;
        *ret = v;
        return true;
}

/* The final response's headers are in (or, for file://, the first bytes came): decide whether its body
 * is ours. Returns < 0 to refuse, 1 to stop a response whose status finish_try() handles, 0 to go on. */
static int on_headers(Fetch *x)
{
        x->headers_done = true;
        if (x->is_file)
                return 0;
        bool success =
            x->status == 200 || x->status == 206 || (x->has_method && x->status >= 200 && x->status < 300);
        if (!success) {
                if (x->status >= 200 && x->status < 300)
                        return abort_with(
                            x, -EPROTO,
                            strdup_printf("Unexpected HTTP %ld from %s", x->status, x->shown_url));
                /* Not modified: an answer without a body, and the connection stays for the next poll. */
                if (x->status == 304 && x->if_none_match)
                        return 0;
                return 1;
        }

        if (x->status == 206) {
                uint64_t first, last, total = 0;
                const char *p = x->content_range, *e;
                bool ok = x->range_from > 0 && p && strncasecmp(p, "bytes ", 6) == 0;
                if (ok) {
                        p += 6;
                        ok = parse_u64(p, &e, &first) && *e == '-' && parse_u64(e + 1, &e, &last) &&
                             *e == '/' && last >= first && first == x->range_from;
                }
                if (ok) {
                        p = e + 1;
                        if (*p == '*')
                                ok = p[1] == 0;
                        else
                                ok = parse_u64(p, &e, &total) && *e == 0 && total > last;
                }
                if (!ok) {
                        /* Our bytes cannot be trusted to fit whatever this is: start clean next time. */
                        partial_drop(x);
                        return abort_with(
                            x, -EPROTO,
                            strdup_printf(
                                "HTTP 206 with Content-Range \"%s\" from %s, expected bytes %" PRIu64 "-",
                                x->content_range ? x->content_range : "(none)", x->shown_url,
                                x->range_from));
                }
                x->total = total;
        } else {
                /* 200: the whole file, also when we asked for a range (If-Range did not match, or the server
                 * does not do ranges): start over. */
                if (x->size > 0 || x->range_from > 0)
                        partial_drop(x);
                x->total = x->content_length >= 0 ? (uint64_t) x->content_length : 0;
                /* If-Range needs a strong validator; a weak ETag or none means no resume. */
                if (x->etag && strncmp(x->etag, "W/", 2) != 0)
                        set_str(&x->validator, strdup(x->etag));
                else if (x->last_modified)
                        set_str(&x->validator, strdup(x->last_modified));
                else
                        set_str(&x->validator, NULL);
                int r = partial_save_meta(x);
                if (r < 0)
                        return abort_with(
                            x, r, strdup_printf("Failed to write %s: %s", x->meta_path, strerror(-r)));
        }
        if (x->total > x->max_size)
                return abort_with(x, -EFBIG,
                                  strdup_printf("%s is %" PRIu64 " bytes, more than the limit of %" PRIu64,
                                                x->shown_url, x->total, x->max_size));
        if (x->total > 0) {
                int r = grow(x, x->total);
                if (r < 0)
                        return abort_with(x, r, NULL);
        }
        return 0;
}

static char *header_value(const char *line, size_t len, const char *name)
{
        size_t n = strlen(name);
        if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
                return NULL;
        const char *v = line + n + 1, *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        return strndup(v, (size_t) (end - v));
}

static int64_t parse_retry_after(const char *v)
{
        uint64_t secs;
        const char *e;
        if (parse_u64(v, &e, &secs) && *e == 0)
                return secs > INT64_MAX / 1000000 ? INT64_MAX : (int64_t) (secs * 1000000);
        time_t t = curl_getdate(v, NULL);
        if (t < 0)
                return -1;
        time_t now = time(NULL);
        return t > now ? (int64_t) (t - now) * 1000000 : 0;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userdata)
{
        Fetch *x = userdata;
        size_t len = size * n;
        x->last_byte = clock_usec();

        if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
                /* A new response (after a redirect or a 100): forget the previous one's headers. */
                uint64_t range_from = x->range_from;
                try_reset(x);
                x->range_from = range_from;
                const char *p = memchr(buf, ' ', len), *end = buf + len;
                if (p) {
                        x->status = strtol(p + 1, NULL, 10);
                        p = memchr(p + 1, ' ', (size_t) (end - p - 1));
                        if (p) {
                                p++;
                                while (end > p && (end[-1] == '\r' || end[-1] == '\n'))
                                        end--;
                                size_t l = (size_t) (end - p);
                                if (l >= sizeof x->reason)
                                        l = sizeof x->reason - 1;
                                memcpy(x->reason, p, l);
                                x->reason[l] = 0;
                        }
                }
                return len;
        }
        if ((len == 2 && buf[0] == '\r') || (len == 1 && buf[0] == '\n')) {
                if (x->status < 200 || (x->status >= 300 && x->status < 400 && x->has_location))
                        return len; /* informational, or a redirect curl follows */
                return on_headers(x) == 0 ? len : 0;
        }
        char *v;
        if ((v = header_value(buf, len, "ETag")))
                set_str(&x->etag, v);
        else if ((v = header_value(buf, len, "Last-Modified")))
                set_str(&x->last_modified, v);
        else if ((v = header_value(buf, len, "Content-Range")))
                set_str(&x->content_range, v);
        else if ((v = header_value(buf, len, "Content-Length"))) {
                uint64_t l;
                const char *e;
                if (parse_u64(v, &e, &l) && *e == 0 && l <= INT64_MAX)
                        x->content_length = (int64_t) l;
                free(v);
        } else if ((v = header_value(buf, len, "Retry-After"))) {
                x->retry_after_usec = parse_retry_after(v);
                free(v);
        } else if ((v = header_value(buf, len, "Location"))) {
                x->has_location = true;
                free(v);
        }
        return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *userdata)
{
        Fetch *x = userdata;
        size_t len = size * n;
        x->last_byte = clock_usec();

        if (!x->headers_done && on_headers(x) != 0)
                return 0;
        if (x->status >= 300)
                return len; /* the body of an error answer: finish_try() reports its status */
        if ((uint64_t) x->size + len > x->max_size) {
                abort_with(x, -EFBIG,
                           strdup_printf("%s is more than the limit of %" PRIu64 " bytes", x->shown_url,
                                         x->max_size));
                return 0;
        }
        int r = grow(x, (uint64_t) x->size + len);
        if (r < 0) {
                abort_with(x, r, NULL);
                return 0;
        }
        memcpy(x->data + x->size, buf, len);
        x->size += len;
        if (x->partial_fd >= 0 && len > 0) {
                /* Local disk: a plain write, as every file the daemon writes. */
                for (size_t off = 0; off < len;) {
                        ssize_t w = write(x->partial_fd, buf + off, len - off);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0) {
                                int e = w < 0 ? errno : EIO;
                                abort_with(
                                    x, -e,
                                    strdup_printf("Failed to write %s: %s", x->partial_path, strerror(e)));
                                return 0;
                        }
                        off += (size_t) w;
                }
        }
        x->progress_dirty = true;
        return len;
}

static int on_stall_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int on_wait(sd_event_source *s, uint64_t usec, void *userdata);
static void finish(Fetch *x, int r, const char *msg);

static int arm_time(Fetch *x, sd_event_source **s, uint64_t when, sd_event_time_handler_t cb)
{
        if (*s) {
                int r = sd_event_source_set_time(*s, when);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
        }
        return sd_event_add_time(x->fetcher->event, s, CLOCK_MONOTONIC, when, TIMER_ACCURACY_USEC, cb, x);
}

/* Add h (taken, NULL: out of memory) to this try's request headers. */
static int append_header(Fetch *x, char *h)
{
        struct curl_slist *l = h ? curl_slist_append(x->request_headers, h) : NULL;
        free(h);
        if (!l)
                return -ENOMEM;
        x->request_headers = l;
        return 0;
}

static int start_try(Fetch *x)
{
        try_reset(x);
        x->tries++;
        if (x->size > 0 && !x->validator)
                partial_drop(x); /* without a validator a resume could splice two different files */

        curl_slist_free_all(x->request_headers);
        x->request_headers = NULL;
        for (struct curl_slist *h = x->user_headers; h; h = h->next) {
                struct curl_slist *l = curl_slist_append(x->request_headers, h->data);
                if (!l)
                        return -ENOMEM;
                x->request_headers = l;
        }
        /* No 100-continue round trip for the small bodies of an API. */
        if ((x->has_method && append_header(x, strdup("Expect:")) < 0) ||
            (x->content_type && append_header(x, strdup_printf("Content-Type: %s", x->content_type)) < 0) ||
            (x->if_none_match && append_header(x, strdup_printf("If-None-Match: %s", x->if_none_match)) < 0))
                return -ENOMEM;
        char range[32];
        if (x->size > 0) {
                x->range_from = x->size;
                snprintf(range, sizeof range, "%zu-", x->size);
                _cleanup_(freep) char *h = strdup_printf("If-Range: %s", x->validator);
                struct curl_slist *l = h ? curl_slist_append(x->request_headers, h) : NULL;
                if (!l)
                        return -ENOMEM;
                x->request_headers = l;
        }
        if (curl_easy_setopt(x->easy, CURLOPT_RANGE, x->size > 0 ? range : NULL) != CURLE_OK ||
            curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->request_headers) != CURLE_OK)
                return -ENOMEM;

        if (curl_multi_add_handle(x->fetcher->multi, x->easy) != CURLM_OK)
                return -ENOMEM;
        x->in_multi = true;
        x->last_byte = clock_usec();
        int r = arm_time(x, &x->stall_timer, now_usec(x->fetcher) + x->stall_usec, on_stall_timer);
        if (r < 0)
                return r;
        return 0;
}

/* Report a failure from the event loop rather than from where it happened (fetch_start). */
static void finish_later(Fetch *x, int r, char *msg)
{
        x->pending_r = r;
        set_str(&x->pending_msg, msg);
        if (arm_time(x, &x->wait, 0, on_wait) < 0) {
                /* Cannot even arm a timer: nothing else will run this fetch, so say it now. */
                x->pending_r = 0;
                finish(x, r, msg);
        }
}

static void stop_try(Fetch *x)
{
        if (x->in_multi) {
                curl_multi_remove_handle(x->fetcher->multi, x->easy);
                x->in_multi = false;
        }
        if (x->stall_timer)
                sd_event_source_set_enabled(x->stall_timer, SD_EVENT_OFF);
        x->finished = false;
}

static int curl_code_errno(CURLcode c, bool *retry)
{
        *retry = false;
        switch (c) {
        case CURLE_COULDNT_CONNECT:
                *retry = true;
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                *retry = true;
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                *retry = true;
                return -ETIMEDOUT;
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR:
                *retry = true;
                return -ECONNRESET;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
                return -EKEYREJECTED;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_TOO_MANY_REDIRECTS:
                return -ELOOP;
        case CURLE_FILE_COULDNT_READ_FILE:
                return -ENOENT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        default:
                return -EIO;
        }
}

static int http_status_errno(long status, bool *retry)
{
        *retry = status == 408 || status == 429 || (status >= 500 && status < 600);
        if (status == 404 || status == 410)
                return -ENOENT;
        if (status == 401 || status == 403)
                return -EACCES;
        return -EREMOTEIO;
}

/* A try ended (curl finished it, or it stalled): succeed, retry after a back-off, or fail. */
static void finish_try(Fetch *x)
{
        Fetcher *f = x->fetcher;
        CURLcode c = x->result;
        stop_try(x);

        int r;
        bool retry = false;
        _cleanup_(freep) char *msg = NULL;
        if (x->stalled) {
                r = -ETIMEDOUT;
                retry = true;
                msg =
                    strdup_printf("No data for %.1f s from %s", (double) x->stall_usec / 1e6, x->shown_url);
        } else if (x->abort_r < 0) {
                r = x->abort_r;
                msg = TAKE_PTR(x->abort_msg);
        } else if (!x->is_file && x->headers_done && x->status == 304 && x->if_none_match && c == CURLE_OK) {
                finish(x, 0, NULL);
                return;
        } else if (!x->is_file && x->headers_done && x->status >= 300) {
                if (x->status == 416 && x->range_from > 0) {
                        /* Our partial copy is not a prefix of the file any more (it shrank): from zero. */
                        partial_drop(x);
                        retry = true;
                        r = -EREMOTEIO;
                } else
                        r = http_status_errno(x->status, &retry);
                if (x->status >= 300 && x->status < 400)
                        r = -EPROTO;
                msg = strdup_printf("HTTP %ld %s from %s", x->status,
                                    x->reason[0] ? x->reason : status_reason(x->status), x->shown_url);
        } else if (c == CURLE_OK) {
                if (!x->is_file && !x->headers_done) {
                        r = -EPROTO;
                        msg = strdup_printf("No HTTP response from %s", x->shown_url);
                } else {
                        partial_remove(x);
                        finish(x, 0, NULL);
                        return;
                }
        } else {
                r = curl_code_errno(c, &retry);
                msg = strdup_printf("Failed to download %s: %s", x->shown_url,
                                    x->errbuf[0] ? x->errbuf : curl_easy_strerror(c));
        }

        if (retry && x->tries < x->max_tries) {
                uint64_t delay = x->backoff_usec;
                for (unsigned i = 1; i < x->tries && delay < x->backoff_max_usec; i++)
                        delay *= 2;
                if (delay > x->backoff_max_usec)
                        delay = x->backoff_max_usec;
                if (x->retry_after_usec >= 0) {
                        uint64_t ra = (uint64_t) x->retry_after_usec;
                        if (ra > x->backoff_max_usec)
                                ra = x->backoff_max_usec;
                        if (ra > delay)
                                delay = ra;
                }
                int k = arm_time(x, &x->wait, now_usec(f) + delay, on_wait);
                if (k >= 0)
                        return;
                r = k;
        } else if (retry) {
                char *m = msg ? strdup_printf("%s (gave up after %u tries)", msg, x->tries) : NULL;
                if (m)
                        set_str(&msg, m);
        }
        finish(x, r, msg ? msg : strerror(-r));
}

static int on_stall_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Fetch *x = userdata;
        (void) s;
        (void) usec;
        uint64_t now = clock_usec();
        if (now - x->last_byte < x->stall_usec) {
                if (arm_time(x, &x->stall_timer,
                             now_usec(x->fetcher) + (x->stall_usec - (now - x->last_byte)),
                             on_stall_timer) >= 0)
                        return 0;
        }
        x->stalled = true;
        finish_try(x);
        return 0;
}

static int on_wait(sd_event_source *s, uint64_t usec, void *userdata)
{
        Fetch *x = userdata;
        (void) s;
        (void) usec;
        if (x->pending_r < 0) {
                _cleanup_(freep) char *msg = TAKE_PTR(x->pending_msg);
                finish(x, x->pending_r, msg ? msg : strerror(-x->pending_r));
                return 0;
        }
        int r = start_try(x);
        if (r < 0) {
                stop_try(x);
                finish(x, r, strerror(-r));
        }
        return 0;
}

static void fetch_free(Fetch *x)
{
        if (!x)
                return;
        Fetcher *f = x->fetcher;
        if (x->prev)
                x->prev->next = x->next;
        else if (f->fetches == x)
                f->fetches = x->next;
        if (x->next)
                x->next->prev = x->prev;
        if (x->in_multi)
                curl_multi_remove_handle(f->multi, x->easy);
        if (x->easy)
                curl_easy_cleanup(x->easy);
        sd_event_source_disable_unref(x->stall_timer);
        sd_event_source_disable_unref(x->wait);
        curl_slist_free_all(x->user_headers);
        curl_slist_free_all(x->request_headers);
        safe_close(x->partial_fd);
        free(x->url);
        free(x->shown_url);
        free(x->ca_file);
        free(x->partial_path);
        free(x->meta_path);
        free(x->data);
        free(x->validator);
        free(x->etag);
        free(x->last_modified);
        free(x->content_range);
        free(x->abort_msg);
        free(x->pending_msg);
        free(x->if_none_match);
        free(x->content_type);
        free(x);
}

static void finish(Fetch *x, int r, const char *msg)
{
        x->in_done = true;
        if (x->done) {
                if (r < 0)
                        x->done(x, r, NULL, 0, msg, x->userdata);
                else
                        x->done(x, 0, x->data, x->size, NULL, x->userdata);
        }
        fetch_free(x);
}

long fetch_status(const Fetch *x)
{
        return x ? x->status : 0;
}

const char *fetch_etag(const Fetch *x)
{
        return x ? x->etag : NULL;
}

int64_t fetch_retry_after_usec(const Fetch *x)
{
        return x ? x->retry_after_usec : -1;
}

/* POST or PUT with a body: curl copies the body now, so the caller's buffer is free after fetch_start. */
static int method_setup(Fetch *x, const struct fetch_options *o)
{
        CURL *c = x->easy;
        bool put = strcmp(o->method, "PUT") == 0;
        if (!put && strcmp(o->method, "POST") != 0)
                return strcmp(o->method, "GET") == 0 && !o->body && !o->body_size ? 0 : -EINVAL;
        if (o->partial_path || (o->body_size && !o->body))
                return -EINVAL;
        x->has_method = true;
        static const char empty[1] = "";
        if (curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) o->body_size) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, o->body ? o->body : empty) != CURLE_OK ||
            (put && curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT") != CURLE_OK) ||
            curl_easy_setopt(c, CURLOPT_POSTREDIR, (long) CURL_REDIR_POST_ALL) != CURLE_OK)
                return -ENOMEM;
        return 0;
}

void fetch_cancel(Fetch *x)
{
        if (!x || x->in_done)
                return;
        fetch_free(x);
}

/* After curl ran: tell about progress, then end the tries it finished. Each callback may cancel any
 * fetch, so the list is searched again after each one. */
static void fetcher_process(Fetcher *f)
{
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(f->multi, &left)))
                if (m->msg == CURLMSG_DONE) {
                        Fetch *x = NULL;
                        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &x);
                        if (x) {
                                x->finished = true;
                                x->result = m->data.result;
                        }
                }
        /* Progress first, so that the last bytes of a download that ended in the same round are told. */
        for (;;) {
                Fetch *x = f->fetches;
                while (x && !x->progress_dirty)
                        x = x->next;
                if (!x)
                        break;
                x->progress_dirty = false;
                if (x->progress)
                        x->progress(x, x->size, x->total, x->userdata);
        }
        for (;;) {
                Fetch *x = f->fetches;
                while (x && !x->finished)
                        x = x->next;
                if (!x)
                        break;
                finish_try(x);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct sock *k = userdata;
        Fetcher *f = k->fetcher; /* k may be gone after curl ran */
        (void) s;
        int flags = 0, running;
        if (revents & (EPOLLIN | EPOLLHUP))
                flags |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(f->multi, fd, flags, &running);
        fetcher_process(f);
        return 0;
}

static void sock_free(struct sock *k)
{
        if (!k)
                return;
        if (k->prev)
                k->prev->next = k->next;
        else
                k->fetcher->socks = k->next;
        if (k->next)
                k->next->prev = k->prev;
        sd_event_source_disable_unref(k->io);
        free(k);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        Fetcher *f = userp;
        struct sock *k = socketp;
        (void) easy;
        if (what == CURL_POLL_REMOVE) {
                sock_free(k);
                return 0;
        }
        uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
        if (k)
                return sd_event_source_set_io_events(k->io, events) < 0 ? -1 : 0;
        k = calloc(1, sizeof *k);
        if (!k)
                return -1;
        k->fetcher = f;
        if (sd_event_add_io(f->event, &k->io, fd, events, on_io, k) < 0) {
                free(k);
                return -1;
        }
        k->next = f->socks;
        if (k->next)
                k->next->prev = k;
        f->socks = k;
        curl_multi_assign(f->multi, fd, k);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Fetcher *f = userdata;
        (void) s;
        (void) usec;
        int running;
        curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        fetcher_process(f);
        return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
        Fetcher *f = userp;
        (void) multi;
        if (timeout_ms < 0)
                return f->timer && sd_event_source_set_enabled(f->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        uint64_t when = now_usec(f) + (uint64_t) timeout_ms * 1000;
        if (f->timer) {
                if (sd_event_source_set_time(f->timer, when) < 0 ||
                    sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT) < 0)
                        return -1;
                return 0;
        }
        return sd_event_add_time(f->event, &f->timer, CLOCK_MONOTONIC, when, TIMER_ACCURACY_USEC, on_timer,
                                 f) < 0
                   ? -1
                   : 0;
}

int fetcher_new(sd_event *e, Fetcher **ret)
{
        if (!e || !ret)
                return -EINVAL;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        Fetcher *f = calloc(1, sizeof *f);
        if (!f) {
                curl_global_cleanup();
                return -ENOMEM;
        }
        f->event = sd_event_ref(e);
        f->multi = curl_multi_init();
        if (!f->multi || curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK) {
                fetcher_free(f);
                return -ENOMEM;
        }
        *ret = f;
        return 0;
}

Fetcher *fetcher_free(Fetcher *f)
{
        if (!f)
                return NULL;
        while (f->fetches)
                fetch_free(f->fetches);
        if (f->multi)
                curl_multi_cleanup(f->multi); /* may still say CURL_POLL_REMOVE for cached connections */
        while (f->socks)
                sock_free(f->socks);
        sd_event_source_disable_unref(f->timer);
        sd_event_unref(f->event);
        free(f);
        curl_global_cleanup();
        return NULL;
}

static int easy_setup(Fetch *x)
{
        CURL *c = x->easy;
        bool ok = curl_easy_setopt(c, CURLOPT_URL, x->url) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_PRIVATE, x) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file") == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_USERAGENT, "canfleetd/" CANFLEET_VERSION) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_WRITEDATA, x) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_HEADERDATA, x) == CURLE_OK;
        /* ca_file replaces the system store (the default bundle and the default directory) rather than
         * adding to it: a fleet pinned to its own CA trusts nothing else. */
        if (ok && x->ca_file)
                ok = curl_easy_setopt(c, CURLOPT_CAINFO, x->ca_file) == CURLE_OK &&
                     curl_easy_setopt(c, CURLOPT_CAPATH, NULL) == CURLE_OK;
        return ok ? 0 : -ENOMEM;
}

int fetch_start(Fetcher *f, const char *url, const struct fetch_options *o, fetch_done_fn done,
                void *userdata, Fetch **ret)
{
        if (!f || !url || !done)
                return -EINVAL;
        int r = fetch_url_check(url);
        if (r < 0)
                return r;
        static const struct fetch_options defaults = {0};
        if (!o)
                o = &defaults;

        Fetch *x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        x->fetcher = f;
        x->partial_fd = -1;
        x->done = done;
        x->userdata = userdata;
        x->progress = o->progress;
        x->max_size = o->max_size ? o->max_size : FETCH_MAX_SIZE_DEFAULT;
        if (x->max_size > SIZE_MAX / 2)
                x->max_size = SIZE_MAX / 2;
        x->max_tries = o->max_tries ? o->max_tries : FETCH_MAX_TRIES_DEFAULT;
        x->stall_usec = o->stall_timeout_usec ? o->stall_timeout_usec : FETCH_STALL_TIMEOUT_DEFAULT;
        x->backoff_usec = o->backoff_usec ? o->backoff_usec : FETCH_BACKOFF_DEFAULT;
        x->backoff_max_usec = o->backoff_max_usec ? o->backoff_max_usec : FETCH_BACKOFF_MAX_DEFAULT;
        x->url = strdup(url);
        x->shown_url = shown_url(url);
        x->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
        x->easy = curl_easy_init();
        bool ok = x->url && x->shown_url && (!o->ca_file || x->ca_file) && x->easy;
        for (const char *const *h = o->headers; ok && h && *h; h++) {
                struct curl_slist *l = curl_slist_append(x->user_headers, *h);
                if (!l)
                        ok = false;
                else
                        x->user_headers = l;
        }
        if (!ok || easy_setup(x) < 0) {
                fetch_free(x);
                return -ENOMEM;
        }
        x->is_file = strncasecmp(url, "file:", 5) == 0;
        if (o->method || o->body || o->body_size) {
                r = o->method ? method_setup(x, o) : -EINVAL;
                if (r < 0) {
                        fetch_free(x);
                        return r;
                }
        }
        if ((o->content_type && !(x->content_type = strdup(o->content_type))) ||
            (o->if_none_match && !(x->if_none_match = strdup(o->if_none_match)))) {
                fetch_free(x);
                return -ENOMEM;
        }

        x->next = f->fetches;
        if (x->next)
                x->next->prev = x;
        f->fetches = x;

        /* A local file is read whole every time; only network downloads are worth resuming. */
        if (o->partial_path && !x->is_file) {
                x->partial_path = strdup(o->partial_path);
                if (!x->partial_path) {
                        fetch_free(x);
                        return -ENOMEM;
                }
                r = partial_load(x);
                if (r < 0) {
                        finish_later(x, r,
                                     strdup_printf("Failed to open partial download %s: %s", x->partial_path,
                                                   strerror(-r)));
                        goto out;
                }
        }
        r = start_try(x);
        if (r < 0) {
                stop_try(x);
                finish_later(
                    x, r, strdup_printf("Failed to start download of %s: %s", x->shown_url, strerror(-r)));
        }
out:
        if (ret)
                *ret = x;
        return 0;
}
