/* canfleetd's fetcher (daemon/fetcher.c) alone on an sd-event loop: one download's time and throughput, for
 * bench.py's scenario u with files larger than canfleetd's URL updates take (a bundle is at most 588 KB). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "fetcher.h"

struct result {
        int r;
        size_t size;
        char error[512];
        double end;
};

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static long vm_hwm_kb(void)
{
        char line[256];
        long kb = -1;
        FILE *f = fopen("/proc/self/status", "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, "VmHWM:", 6) == 0)
                        kb = strtol(line + 6, NULL, 10);
        fclose(f);
        return kb;
}

static void on_done(Fetch *x, int r, const uint8_t *data, size_t size, const char *error, void *userdata)
{
        struct result *res = userdata;
        (void) x;
        (void) data;
        res->end = now_s();
        res->r = r;
        res->size = size;
        if (error)
                snprintf(res->error, sizeof res->error, "%s", error);
}

int main(int argc, char **argv)
{
        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: %s URL [CA_FILE]\n", argv[0]);
                return 2;
        }
        sd_event *e = NULL;
        Fetcher *f = NULL;
        struct result res = {.r = 1}; /* 1: not done yet (done hands over 0 or a negative errno) */
        int r = sd_event_new(&e);
        if (r >= 0)
                r = fetcher_new(e, &f);
        if (r < 0) {
                fprintf(stderr, "bench-fetch: cannot set up: %s\n", strerror(-r));
                return 1;
        }
        const struct fetch_options o = {
            .ca_file = argc > 2 ? argv[2] : NULL,
            .max_size = UINT64_C(1) << 30,
            .max_tries = 1,
        };
        long hwm0 = vm_hwm_kb();
        double t0 = now_s();
        r = fetch_start(f, argv[1], &o, on_done, &res, NULL);
        if (r < 0) {
                fprintf(stderr, "bench-fetch: %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        while (res.r == 1) {
                r = sd_event_run(e, UINT64_MAX);
                if (r < 0) {
                        fprintf(stderr, "bench-fetch: event loop: %s\n", strerror(-r));
                        return 1;
                }
        }
        if (res.r < 0) {
                fprintf(stderr, "bench-fetch: %s\n", res.error);
                return 1;
        }
        double s = res.end - t0;
        printf("bytes %zu seconds %.4f MB/s %.1f VmHWM-before %ld VmHWM %ld\n", res.size, s,
               (double) res.size / 1e6 / s, hwm0, vm_hwm_kb());
        fetcher_free(f);
        sd_event_unref(e);
        return 0;
}
