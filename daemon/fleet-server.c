/* canfleetd as a hawkBit gateway: targets from nodes, deployments to jobs, job steps to feedback. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "bundle-cache.h"
#include "bundle.h"
#include "canfleet/sha256.h"
#include "cleanup.h"
#include "fetcher.h"
#include "fleet-server.h"
#include "hawkbit.h"
#include "job-store.h"
#include "log.h"
#include "manager.h"
#include "trust.h"

enum action_state {
        ACTION_WAIT_DOWNLOAD, /* download: skip, or its artifact is being downloaded */
        ACTION_READY,         /* downloaded and verified: to be installed with the round's job */
        ACTION_DOWNLOADED, /* download only (window closed, update: skip): waits to be handed over again */
        ACTION_IN_JOB,
};

struct artifact;

struct action {
        FleetServer *s;
        uint64_t id;
        uint8_t uid[HAWKBIT_UID_SIZE];
        enum action_state state;
        bool install;          /* install once downloaded (else report "downloaded" and wait) */
        bool skip_download;    /* download: skip */
        bool cancel_requested; /* by the server, accepted: answered once the node is cancelled */
        struct artifact *art;
        Job *job;
        size_t idx; /* the node's entry in job->nodes */
        int last_step;
        struct action *next;
};

struct artifact {
        FleetServer *s;
        char sha[65];
        char *url;
        char *name;
        uint64_t size;
        Fetch *fetch;
        uint8_t *data; /* verified bytes once downloaded */
        size_t data_size;
        unsigned refs;
        uint64_t round_end; /* CLOCK_MONOTONIC µs: the actions until then go into one job */
        bool round_done;    /* a round's job started: later actions wait for a round of their own */
        bool from_cache;    /* its bytes came from cache_dir/bundles, not the server */
        sd_event_source *round;
        struct artifact *next;
};

struct FleetServer {
        Manager *m;
        Hawkbit *h;
        char *key; /* config_key() of the client running */
        struct action *actions;
        struct artifact *artifacts;
};

static uint64_t now_mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- feedback ---- */

__attribute__((format(printf, 4, 5))) static void feedback(FleetServer *s, struct action *a,
                                                           enum hawkbit_feedback kind, const char *fmt, ...)
{
        char msg[HAWKBIT_DETAILS_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        int r = hawkbit_feedback(s->h, a->uid, a->id, kind, msg);
        if (r < 0 && r != -ESTALE)
                log_warning_errno(r, "hawkBit action %" PRIu64 ": cannot queue feedback \"%s\": %m", a->id,
                                  msg);
}

static void artifact_unref(struct artifact *art);

/* Which job runs an action survives a restart in <state_dir>/hawkbit-actions/<action id> ("job ID REF"):
 * the server hands a running action over again after one, and it must then be followed to its end in
 * the resumed job, not started twice. Written before the first feedback about the job, removed once the
 * closing feedback is in the outbox. */
#define ACTIONS_DIR "hawkbit-actions"

static char *map_path(FleetServer *s, uint64_t id)
{
        char *p;
        if (asprintf(&p, "%s/" ACTIONS_DIR "/%" PRIu64, s->m->conf->state_dir, id) < 0)
                return NULL;
        return p;
}

static void map_save(FleetServer *s, uint64_t id, unsigned job, const char *ref)
{
        _cleanup_(freep) char *dir = NULL;
        if (asprintf(&dir, "%s/" ACTIONS_DIR, s->m->conf->state_dir) < 0)
                return;
        int r = mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
        if (r >= 0) {
                char name[32], line[64];
                snprintf(name, sizeof name, "%" PRIu64, id);
                int n = snprintf(line, sizeof line, "job %u %s\n", job, ref);
                r = write_file_atomic(dir, name, line, (size_t) n, 0600);
        }
        if (r < 0)
                /* not fatal: after a restart the action would be refused as "node busy" instead of followed */
                log_warning_errno(r, "hawkBit action %" PRIu64 ": cannot save its job in %s: %m", id, dir);
}

static void map_drop(FleetServer *s, uint64_t id)
{
        _cleanup_(freep) char *path = map_path(s, id);
        if (path)
                (void) unlink(path);
}

static bool map_load(FleetServer *s, uint64_t id, unsigned *job, char ref[32])
{
        _cleanup_(freep) char *path = map_path(s, id);
        if (!path)
                return false;
        /* A regular file only: a FIFO put in its place would block canfleetd for ever. */
        _cleanup_(freep) char *text = NULL;
        if (cf_read_regular_file(path, 4096, &text, NULL, NULL) < 0)
                return false;
        return sscanf(text, "job %u %31s", job, ref) == 2;
}

/* The action ids a job serves, for the Job's HawkbitActions property (canfleetctl jobs): in
 * <state_dir>/hawkbit-jobs/<job id>, decimal ids separated by spaces on one line. Unlike hawkbit-actions/
 * they stay after the actions closed, as long as the job is in the history; the files of jobs gone from
 * it are removed whenever a new one is written. */
#define JOBS_DIR "hawkbit-jobs"
#define JOB_ACTIONS_MAX 4096U

int fleet_server_job_actions(const Manager *m, unsigned job, uint64_t **ret, size_t *n)
{
        *ret = NULL;
        *n = 0;
        _cleanup_(freep) char *path = NULL;
        if (asprintf(&path, "%s/" JOBS_DIR "/%u", m->conf->state_dir, job) < 0)
                return -ENOMEM;
        /* A regular file only (a FIFO would block the D-Bus answer that lists the job for ever). */
        _cleanup_(freep) char *text = NULL;
        size_t len;
        int k0 = cf_read_regular_file(path, JOB_ACTIONS_MAX * 21U, &text, &len, NULL);
        if (k0 < 0)
                return k0 == -ENOENT ? 0 : k0;
        FILE *f = fmemopen(text, len, "r");
        if (!f)
                return -errno;
        uint64_t *ids = NULL;
        size_t k = 0;
        unsigned long long v;
        int r = 0;
        while (k < JOB_ACTIONS_MAX && fscanf(f, "%llu", &v) == 1) {
                uint64_t *nv = realloc(ids, (k + 1) * sizeof *ids);
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                ids = nv;
                ids[k++] = v;
        }
        fclose(f);
        if (r < 0) {
                free(ids);
                return r;
        }
        *ret = ids;
        *n = k;
        return 0;
}

static void job_actions_prune(FleetServer *s, const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                unsigned id;
                char extra;
                if (sscanf(de->d_name, "%u%c", &id, &extra) != 1 || manager_find_job(s->m, id))
                        continue;
                (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static void job_actions_add(FleetServer *s, Job *j, const uint64_t *add, size_t n_add)
{
        _cleanup_(freep) char *dir = NULL, *text = NULL;
        _cleanup_(freep) uint64_t *ids = NULL;
        size_t n = 0;
        if (asprintf(&dir, "%s/" JOBS_DIR, s->m->conf->state_dir) < 0)
                return;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                goto fail;
        (void) fleet_server_job_actions(s->m, j->id, &ids, &n);
        if (!ids)
                job_actions_prune(s, dir); /* a new job's file: the time to drop those of forgotten jobs */
        uint64_t *all = realloc(ids, (n + n_add) * sizeof *all);
        if (!all)
                return;
        ids = all;
        for (size_t i = 0; i < n_add; i++) {
                bool have = false;
                for (size_t k = 0; k < n && !have; k++)
                        have = ids[k] == add[i];
                if (!have)
                        ids[n++] = add[i];
        }
        qsort(ids, n, sizeof *ids, cmp_u64);
        text = malloc(n * 21 + 2); /* 20 digits and a blank or the line's end each */
        if (!text)
                return;
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
                len += (size_t) sprintf(text + len, "%s%" PRIu64, i ? " " : "", ids[i]);
        text[len++] = '\n';
        char name[16];
        snprintf(name, sizeof name, "%u", j->id);
        int r = write_file_atomic(dir, name, text, len, 0600);
        if (r >= 0) {
                bus_job_changed(j, "HawkbitActions", NULL);
                return;
        }
        errno = -r;
fail:
        /* not fatal: the job runs and reports as before, only canfleetctl jobs cannot name its actions */
        log_warning_errno(-errno, "hawkBit: cannot note the actions of job %u in %s: %m", j->id, dir);
}

static void action_free(struct action *a)
{
        FleetServer *s = a->s;
        for (struct action **p = &s->actions; *p; p = &(*p)->next)
                if (*p == a) {
                        *p = a->next;
                        break;
                }
        if (a->art)
                artifact_unref(a->art);
        free(a);
}

/* Close an action with a failure (the reason given) and forget it. */
__attribute__((format(printf, 3, 4))) static void action_fail(FleetServer *s, struct action *a,
                                                              const char *fmt, ...)
{
        char msg[HAWKBIT_DETAILS_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_warning("hawkBit action %" PRIu64 ": failed: %s", a->id, msg);
        feedback(s, a, HAWKBIT_FEEDBACK_FAILURE, "%s", msg);
        map_drop(s, a->id);
        action_free(a);
}

static struct action *find_action(FleetServer *s, uint64_t id)
{
        for (struct action *a = s->actions; a; a = a->next)
                if (a->id == id)
                        return a;
        return NULL;
}

static Node *node_of(FleetServer *s, const uint8_t uid[HAWKBIT_UID_SIZE])
{
        HawkbitTarget *t = hawkbit_target_find(s->h, uid);
        return t ? hawkbit_target_get_userdata(t) : NULL;
}

/* ---- artifacts: one download per sha256 ---- */

static void artifact_unref(struct artifact *art)
{
        if (--art->refs > 0)
                return;
        FleetServer *s = art->s;
        for (struct artifact **p = &s->artifacts; *p; p = &(*p)->next)
                if (*p == art) {
                        *p = art->next;
                        break;
                }
        fetch_cancel(art->fetch);
        sd_event_source_disable_unref(art->round);
        free(art->data);
        free(art->url);
        free(art->name);
        free(art);
}

static void start_round_job(FleetServer *s, struct artifact *art);
static uint64_t round_end_from_now(FleetServer *s);

static int on_round(sd_event_source *es, uint64_t usec, void *userdata)
{
        struct artifact *art = userdata;
        FleetServer *s = art->s;
        art->refs++; /* the actions may all go while the job starts */
        art->round_done = true;
        start_round_job(s, art);
        artifact_unref(art);
        return 0;
}

/* The round of this artifact ends when every target was polled once more (the deployment reaches all
 * of them), at most FLEET_ROUND_MAX_S after it began. */
static void round_arm(FleetServer *s, struct artifact *art)
{
        if (!art->data)
                return; /* the download's end arms it */
        uint64_t now = now_mono();
        if (art->round_done && art->round_end <= now) {
                /* the targets the last round missed (their poll came later): together, not one job each */
                art->round_end = round_end_from_now(s);
                art->round_done = false;
        }
        uint64_t when = art->round_end > now ? art->round_end : now;
        if (!art->round) {
                if (sd_event_add_time(s->m->event, &art->round, CLOCK_MONOTONIC, when, 0, on_round, art) <
                    0) {
                        start_round_job(s, art);
                        return;
                }
        } else
                sd_event_source_set_time(art->round, when);
        sd_event_source_set_enabled(art->round, SD_EVENT_ONESHOT);
}

static uint64_t round_end_from_now(FleetServer *s)
{
        uint64_t now = now_mono(), cap = now + FLEET_ROUND_MAX_S * 1000000ull;
        /* the pacer's plan for every target's next poll and deployment GET, plus their answers: on a
         * healthy link 2 s is ample */
        uint64_t end = hawkbit_round_end_usec(s->h) + 2000000u;
        if (end < now + 1000000u)
                end = now + 1000000u;
        return end < cap ? end : cap;
}

/* The download is complete: compare, verify, then report or wait for the round. */
static void artifact_ready(FleetServer *s, struct artifact *art, const uint8_t *data, size_t size)
{
        char why[512] = "";
        uint8_t d[CF_SHA256_LEN];
        char hex[65];
        cf_sha256(data, size, d);
        for (unsigned i = 0; i < CF_SHA256_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
        if (strcmp(hex, art->sha) != 0)
                snprintf(why, sizeof why, "%s: sha256 %s is not the server's %s", art->name, hex, art->sha);
        struct trusted_image t;
        _cleanup_(freep) char *terr = NULL;
        int r = why[0] ? -EBADMSG
                       : trust_check(s->m->keyring, s->m->conf->allow_unsigned, data, size, &t, &terr);
        if (r < 0 && !why[0])
                snprintf(why, sizeof why, "%s refused: %s", art->name, terr ? terr : strerror(-r));
        if (!why[0] && !art->from_cache)
                /* for a later round or action of the same artifact (a failure costs a download) */
                (void) bundle_cache_keep(s->m->conf->cache_dir, art->url, NULL, data, size);
        if (!why[0]) {
                art->data = malloc(size ? size : 1);
                if (!art->data)
                        snprintf(why, sizeof why, "out of memory");
                else {
                        memcpy(art->data, data, size);
                        art->data_size = size;
                }
        }
        art->refs++;
        for (struct action *a = s->actions, *next; a; a = next) {
                next = a->next;
                if (a->art != art || a->skip_download)
                        continue; /* download: skip waits for the server even when the bytes are here */
                if (why[0]) {
                        action_fail(s, a, "%s", why);
                        continue;
                }
                if (a->state != ACTION_WAIT_DOWNLOAD)
                        continue;
                if (a->install) {
                        a->state = ACTION_READY;
                        feedback(s, a, HAWKBIT_FEEDBACK_PROCEEDING, "%s %s and verified (%s, release %u)",
                                 art->name, art->from_cache ? "taken from the gateway's cache" : "downloaded",
                                 t.bundle ? "signed bundle" : "unsigned image", t.info.release);
                } else {
                        a->state = ACTION_DOWNLOADED;
                        feedback(s, a, HAWKBIT_FEEDBACK_DOWNLOADED,
                                 "%s downloaded and verified; installing when the maintenance window opens",
                                 art->name);
                }
        }
        if (!why[0])
                round_arm(s, art);
        artifact_unref(art);
}

static void artifact_fetched(Fetch *x, int r, const uint8_t *data, size_t size, const char *error,
                             void *userdata)
{
        struct artifact *art = userdata;
        FleetServer *s = art->s;
        art->fetch = NULL;
        if (r < 0) {
                char why[512];
                snprintf(why, sizeof why, "download failed: %s", error ? error : strerror(-r));
                log_warning("hawkBit: %s", why);
                art->refs++;
                for (struct action *a = s->actions, *next; a; a = next) {
                        next = a->next;
                        if (a->art == art && !a->skip_download)
                                action_fail(s, a, "%s", why);
                }
                artifact_unref(art);
                return;
        }
        log_info("hawkBit: downloaded %s (%zu bytes)", art->name, size);
        artifact_ready(s, art, data, size);
}

static int artifact_download(FleetServer *s, struct artifact *art)
{
        _cleanup_(freep) char *dir = NULL, *part = NULL;
        if (asprintf(&dir, "%s/downloads", s->m->conf->cache_dir) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* keyed by content: the same artifact behind another URL (a new action) resumes too */
        if (asprintf(&part, "%s/hawkbit-%s.part", dir, art->sha) < 0)
                return -ENOMEM;
        const struct cf_hawkbit_conf *hc = s->m->conf->hawkbit;
        const struct fetch_options o = {
            .ca_file = hc->ca_file ? hc->ca_file : s->m->conf->ca_file,
            .max_size = CF_BUNDLE_MAX_SIZE,
            .partial_path = part,
            .headers = hawkbit_download_headers(s->h, art->url),
        };
        return fetch_start(s->m->fetcher, art->url, &o, artifact_fetched, art, &art->fetch);
}

/* The artifact's bytes: cache_dir/bundles/<sha256>.cfb when an earlier action verified them (the
 * actions of one artifact may come in rounds far apart: each after the first would download it again),
 * else downloaded. May call artifact_ready() (and so fail or free actions) before it returns. */
static int artifact_fetch(FleetServer *s, struct artifact *art)
{
        _cleanup_(freep) char *path = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size = 0;
        if (asprintf(&path, "%s/bundles/%s.cfb", s->m->conf->cache_dir, art->sha) < 0)
                return -ENOMEM;
        if (cf_read_regular_file(path, CF_BUNDLE_MAX_SIZE, (char **) &data, &size, NULL) >= 0) {
                uint8_t d[CF_SHA256_LEN];
                char hex[65];
                cf_sha256(data, size, d);
                for (unsigned i = 0; i < CF_SHA256_LEN; i++)
                        snprintf(hex + 2 * i, 3, "%02x", d[i]);
                if (strcmp(hex, art->sha) == 0) {
                        log_info("hawkBit: %s from the cache (%zu bytes, %s)", art->name, size, path);
                        art->from_cache = true;
                        art->refs++;
                        artifact_ready(s, art, data, size);
                        artifact_unref(art);
                        return 0;
                }
                (void) unlink(path); /* damaged: download it again */
        }
        return artifact_download(s, art);
}

static struct artifact *artifact_get(FleetServer *s, const struct hawkbit_deployment *d, int *err)
{
        for (struct artifact *art = s->artifacts; art; art = art->next)
                if (strcmp(art->sha, d->artifact_sha256) == 0) {
                        art->refs++;
                        return art;
                }
        struct artifact *art = calloc(1, sizeof *art);
        if (!art) {
                *err = -ENOMEM;
                return NULL;
        }
        art->s = s;
        art->refs = 1;
        memcpy(art->sha, d->artifact_sha256, sizeof art->sha);
        art->url = strdup(d->artifact_url);
        art->name = strdup(d->artifact_name);
        art->size = d->artifact_size;
        art->round_end = round_end_from_now(s);
        art->next = s->artifacts;
        s->artifacts = art;
        if (!art->url || !art->name) {
                *err = -ENOMEM;
                artifact_unref(art);
                return NULL;
        }
        return art;
}

/* ---- jobs ---- */

static const char *reason_of(int r)
{
        switch (r) {
        case -EKEYREJECTED:
        case -EBADMSG:
                return "bundle refused";
        case -EXDEV:
                return "hardware mismatch";
        case -ERANGE:
                return "anti-rollback";
        case -EBUSY:
                return "node busy";
        default:
                return "cannot start the update";
        }
}

static void bind_job(FleetServer *s, Job *j, struct action **set, Node **nodes, size_t n)
{
        _cleanup_(freep) uint64_t *ids = calloc(n ? n : 1, sizeof *ids);
        for (size_t i = 0; ids && i < n; i++)
                ids[i] = set[i]->id;
        if (ids)
                job_actions_add(s, j, ids, n);
        for (size_t i = 0; i < n; i++) {
                set[i]->state = ACTION_IN_JOB;
                set[i]->job = j;
                set[i]->last_step = -1;
                for (size_t k = 0; k < j->n_nodes; k++)
                        if (j->nodes[k].node == nodes[i])
                                set[i]->idx = k;
                map_save(s, set[i]->id, j->id, j->nodes[set[i]->idx].ref);
                /* report the step it is at now ("queued", or further when the job moved it already) */
                fleet_server_flash_changed(s, &j->nodes[set[i]->idx]);
        }
}

static void start_round_job(FleetServer *s, struct artifact *art)
{
        size_t cap = 0;
        for (struct action *a = s->actions; a; a = a->next)
                cap += a->art == art && a->state == ACTION_READY;
        if (cap == 0)
                return;
        _cleanup_(freep) struct action **set = calloc(cap, sizeof *set);
        _cleanup_(freep) Node **nodes = calloc(cap, sizeof *nodes);
        if (!set || !nodes)
                return;
        size_t n = 0;
        for (struct action *a = s->actions, *next; a; a = next) {
                next = a->next;
                if (a->art != art || a->state != ACTION_READY)
                        continue;
                Node *node = node_of(s, a->uid);
                if (!node) {
                        action_fail(s, a, "the node is no longer known to the gateway");
                        continue;
                }
                set[n] = a;
                nodes[n++] = node;
        }
        if (n == 0)
                return;
        Job *j = NULL;
        _cleanup_(freep) char *why = NULL;
        int r = manager_start_update(s->m, art->data, art->data_size, nodes, n, false, false, &j, &why);
        if (r >= 0) {
                log_info("hawkBit: %s: job %u for %zu node(s)", art->name, j->id, n);
                bind_job(s, j, set, nodes, n);
                return;
        }
        if (n > 1 && (r == -EXDEV || r == -ERANGE || r == -EBUSY)) {
                /* one node's fact refused the set: each alone, so that only those at fault fail */
                for (size_t i = 0; i < n; i++) {
                        _cleanup_(freep) char *w = NULL;
                        r = manager_start_update(s->m, art->data, art->data_size, &nodes[i], 1, false, false,
                                                 &j, &w);
                        if (r >= 0)
                                bind_job(s, j, &set[i], &nodes[i], 1);
                        else
                                action_fail(s, set[i], "%s: %s: %s", nodes[i]->name, reason_of(r),
                                            w ? w : strerror(-r));
                }
                return;
        }
        for (size_t i = 0; i < n; i++)
                action_fail(s, set[i], "%s: %s: %s", nodes[i]->name, reason_of(r), why ? why : strerror(-r));
}

/* ---- the client's callbacks ---- */

/* The action's artifact was downloaded and verified already (for another action). */
static void action_have_bytes(FleetServer *s, struct action *a)
{
        if (a->install) {
                a->state = ACTION_READY;
                feedback(s, a, HAWKBIT_FEEDBACK_PROCEEDING, "%s already downloaded and verified",
                         a->art->name);
                round_arm(s, a->art);
        } else {
                a->state = ACTION_DOWNLOADED;
                feedback(s, a, HAWKBIT_FEEDBACK_DOWNLOADED,
                         "%s downloaded and verified; installing when the maintenance window opens",
                         a->art->name);
        }
}

static void on_deployment(Hawkbit *h, HawkbitTarget *t, const struct hawkbit_deployment *d, void *userdata)
{
        FleetServer *s = userdata;
        Node *node = hawkbit_target_get_userdata(t);
        struct action *a = find_action(s, d->action_id);
        bool install = d->update != HAWKBIT_SKIP && d->maintenance_window_available;
        bool skip = d->download == HAWKBIT_SKIP;

        if (a) {
                /* handed over again: the server changed download/update/maintenanceWindow */
                a->install = install;
                if (a->state == ACTION_WAIT_DOWNLOAD && a->skip_download && !skip) {
                        a->skip_download = false;
                        if (a->art->data)
                                action_have_bytes(s, a);
                        else if (!a->art->fetch) {
                                int r = artifact_fetch(s, a->art);
                                if (r < 0)
                                        action_fail(s, a, "cannot download %s: %s", d->artifact_url,
                                                    strerror(-r));
                        }
                } else if (a->state == ACTION_DOWNLOADED && install) {
                        a->state = ACTION_READY;
                        feedback(s, a, HAWKBIT_FEEDBACK_PROCEEDING, "maintenance window open: installing");
                        a->art->round_end = round_end_from_now(s);
                        round_arm(s, a->art);
                }
                return;
        }
        if (!node)
                return;
        a = calloc(1, sizeof *a);
        if (!a)
                return;
        a->s = s;
        a->id = d->action_id;
        memcpy(a->uid, node->uid_raw, HAWKBIT_UID_SIZE);
        a->install = install;
        a->skip_download = skip;
        a->last_step = -1;
        a->next = s->actions;
        s->actions = a;

        /* handed over again after a restart: follow the job it runs in */
        unsigned job_id;
        char ref[32];
        if (map_load(s, a->id, &job_id, ref)) {
                Job *j = manager_find_job(s->m, job_id);
                for (size_t k = 0; j && k < j->n_nodes; k++)
                        if (strcmp(j->nodes[k].ref, ref) == 0) {
                                log_info("hawkBit action %" PRIu64 ": %s in job %u, resumed", a->id, ref,
                                         j->id);
                                a->state = ACTION_IN_JOB;
                                a->job = j;
                                a->idx = k;
                                job_actions_add(s, j, &a->id, 1);
                                feedback(s, a, HAWKBIT_FEEDBACK_PROCEEDING,
                                         "canfleetd restarted: %s in job %u, at step %s", ref, j->id,
                                         flash_step_str(j->nodes[k].step));
                                a->last_step = (int) j->nodes[k].step;
                                if (flash_step_final(j->nodes[k].step)) {
                                        a->last_step = -1; /* report the end now */
                                        fleet_server_flash_changed(s, &j->nodes[k]);
                                }
                                return;
                        }
                map_drop(s, a->id); /* that job is gone: start over */
        }
        if (node->flash) {
                action_fail(s, a, "%s is being updated by job %u of the gateway: assign again once it ended",
                            node->name, node->flash->job->id);
                return;
        }
        log_info("hawkBit action %" PRIu64 ": %s to %s (%s, %" PRIu64 " bytes)%s", a->id, node->name,
                 d->version ? d->version : "?", d->artifact_name, d->artifact_size,
                 install ? "" : ", download only");

        if (d->artifact_size > CF_BUNDLE_MAX_SIZE) {
                action_fail(s, a, "%s is %" PRIu64 " bytes: a bundle has at most %u", d->artifact_name,
                            d->artifact_size, (unsigned) CF_BUNDLE_MAX_SIZE);
                return;
        }
        int r = 0;
        a->art = artifact_get(s, d, &r);
        if (!a->art) {
                action_fail(s, a, "cannot prepare the download: %s", strerror(-r));
                return;
        }
        if (skip) {
                feedback(s, a, HAWKBIT_FEEDBACK_PROCEEDING, "download: skip: waiting for the server");
                return;
        }
        if (a->art->data) {
                action_have_bytes(s, a);
                return;
        }
        feedback(s, a, HAWKBIT_FEEDBACK_PROCEEDING, "downloading %s", a->art->name);
        if (!a->art->fetch) {
                r = artifact_fetch(s, a->art);
                if (r < 0)
                        action_fail(s, a, "cannot download %s: %s", d->artifact_url, strerror(-r));
        }
}

static void on_cancel(Hawkbit *h, HawkbitTarget *t, uint64_t action_id, void *userdata)
{
        FleetServer *s = userdata;
        struct action *a = find_action(s, action_id);
        Node *node = hawkbit_target_get_userdata(t);
        const uint8_t *uid = a ? a->uid : node ? node->uid_raw : NULL;
        if (!uid)
                return;
        if (!a) {
                /* nothing under way here (done, or never seen): nothing will be installed */
                (void) hawkbit_cancel_feedback(h, uid, action_id, true, "nothing under way for this action");
                return;
        }
        if (a->state != ACTION_IN_JOB) {
                (void) hawkbit_cancel_feedback(h, uid, action_id, true,
                                               "cancelled before the node was touched");
                log_info("hawkBit action %" PRIu64 ": cancelled before its job", action_id);
                action_free(a);
                return;
        }
        FlashJob *f = &a->job->nodes[a->idx];
        if (f->step >= STEP_REBOOTING && !flash_step_final(f->step)) {
                (void) hawkbit_cancel_feedback(
                    h, uid, action_id, false,
                    "too late: the node was told to install (DISCONNECT end of session)");
                log_info("hawkBit action %" PRIu64 ": cancel rejected: %s is at %s", action_id, f->ref,
                         flash_step_str(f->step));
                return;
        }
        a->cancel_requested = true;
        log_info("hawkBit action %" PRIu64 ": cancelling %s in job %u", action_id, f->ref, a->job->id);
        flash_job_cancel(f); /* the acceptance goes when its step is "cancelled" */
}

/* ---- the manager's hooks ---- */

static void node_facts(Node *n, struct hawkbit_node *hn, char boot[16])
{
        snprintf(boot, 16, "%u.%u", n->boot_version >> 8, n->boot_version & 0xFF);
        *hn = (struct hawkbit_node){
            .hw_id = n->hw_id,
            .bootloader_version = boot,
            .bus = n->bus->conf->name,
            .station = n->nc.station,
            .version = n->version,
            .release = n->has_image ? n->running.release : 0,
        };
        memcpy(hn->uid, n->uid_raw, HAWKBIT_UID_SIZE);
}

void fleet_server_node_seen(FleetServer *s, Node *n)
{
        if (!s || !n->identified)
                return;
        struct hawkbit_node hn;
        char boot[16];
        node_facts(n, &hn, boot);
        HawkbitTarget *t = hawkbit_target_find(s->h, n->uid_raw);
        if (t) {
                hawkbit_target_set_userdata(t, n); /* it may have moved bus or station */
                (void) hawkbit_target_update(t, &hn);
                return;
        }
        int r = hawkbit_target_add(s->h, &hn, &t);
        if (r < 0) {
                log_warning_errno(r, "hawkBit: cannot add %s as a target: %m", n->name);
                return;
        }
        hawkbit_target_set_userdata(t, n);
        log_info("hawkBit: %s is target %s", n->name, hawkbit_target_controller_id(t));
}

void fleet_server_flash_changed(FleetServer *s, FlashJob *f)
{
        if (!s)
                return;
        /* a node identified by its job is a target from then on; one that runs a new image says so */
        if (f->node && f->node->identified &&
            (f->step == STEP_DONE || f->step == STEP_CONFIRMED || !hawkbit_target_find(s->h, f->node->uid_raw)))
                fleet_server_node_seen(s, f->node);
        struct action *a = NULL;
        for (struct action *x = s->actions; x && !a; x = x->next)
                if (x->state == ACTION_IN_JOB && x->job == f->job && &x->job->nodes[x->idx] == f)
                        a = x;
        if (!a || a->last_step == (int) f->step)
                return;
        a->last_step = (int) f->step;
        switch (f->step) {
        case STEP_DONE:
        case STEP_CONFIRMED: /* a dual-bank node: only once its new bank is confirmed */
                feedback(s, a, HAWKBIT_FEEDBACK_SUCCESS, "%s: reset and runs %s (release %u)%s", f->ref,
                         f->job->version, f->job->info.release, f->step == STEP_CONFIRMED ? ", confirmed" : "");
                map_drop(s, a->id);
                action_free(a);
                break;
        case STEP_FAILED:
                action_fail(s, a, "%s", f->error ? f->error : "the update of the node failed");
                break;
        case STEP_CANCELLED:
                if (a->cancel_requested) {
                        (void) hawkbit_cancel_feedback(
                            s->h, a->uid, a->id, true,
                            "cancelled before the install: the node keeps its firmware");
                        map_drop(s, a->id);
                        action_free(a);
                } else
                        action_fail(s, a, "%s: cancelled on the gateway", f->ref);
                break;
        default:
                feedback(s, a, HAWKBIT_FEEDBACK_PROCEEDING, "%s: %s (job %u)", f->ref,
                         flash_step_str(f->step), f->job->id);
                break;
        }
}

/* ---- life cycle ---- */

static size_t count_actions(const FleetServer *s)
{
        size_t n = 0;
        for (const struct action *a = s->actions; a; a = a->next)
                n++;
        return n;
}

/* Every identified node a target of a new client. */
static void fleet_server_nodes_seen(FleetServer *s)
{
        for (size_t b = 0; s && b < s->m->n_buses; b++)
                for (size_t k = 0; k < s->m->buses[b]->n_nodes; k++)
                        fleet_server_node_seen(s, s->m->buses[b]->nodes[k]);
}

/* What the client was started with, token included (its file may change under the same name): a reload
 * restarts the client only when this differs. NULL when out of memory or the token file is unreadable. */
static char *config_key(const Manager *m)
{
        const struct cf_hawkbit_conf *hc = m->conf->hawkbit;
        _cleanup_(freep) char *token = NULL;
        if (cf_read_regular_file(hc->gateway_token_file, 4096, &token, NULL, NULL) < 0)
                return NULL;
        uint8_t d[CF_SHA256_LEN];
        cf_sha256((const uint8_t *) token, strlen(token), d);
        cf_memzero(token, strlen(token));
        char hex[2 * CF_SHA256_LEN + 1];
        for (unsigned i = 0; i < CF_SHA256_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
        const char *ca = hc->ca_file ? hc->ca_file : m->conf->ca_file;
        char *key;
        if (asprintf(&key, "%s\n%s\n%s\n%s\n%s\n%u\n%u\n%s", hc->url, hc->tenant, hc->gateway_token_file, hex,
                     ca ? ca : "", hc->poll_max_s, hc->max_requests_per_s,
                     hc->controller_prefix ? hc->controller_prefix : "") < 0)
                return NULL;
        return key;
}

/* A Hawkbit client for m->conf's hawkbit block. */
static int client_start(FleetServer *s, Hawkbit **ret, char **error)
{
        Manager *m = s->m;
        const struct cf_hawkbit_conf *hc = m->conf->hawkbit;
        const struct hawkbit_config c = {
            .url = hc->url,
            .tenant = hc->tenant,
            .gateway_token_file = hc->gateway_token_file,
            .ca_file = hc->ca_file ? hc->ca_file : m->conf->ca_file,
            .state_dir = m->conf->state_dir,
            .poll_max_s = hc->poll_max_s,
            .controller_prefix = hc->controller_prefix,
            .max_requests_per_s = hc->max_requests_per_s,
        };
        const struct hawkbit_callbacks cb = {
            .deployment_available = on_deployment,
            .cancel_requested = on_cancel,
        };
        int r = hawkbit_new(m->event, m->fetcher, &c, &cb, s, ret);
        if (r < 0 && error &&
            asprintf(error,
                     "%s: hawkbit: cannot start the fleet server client (token file %s, outbox in "
                     "%s/hawkbit-outbox): %s",
                     m->conf->path, hc->gateway_token_file, m->conf->state_dir, strerror(-r)) < 0)
                *error = NULL;
        return r;
}

int fleet_server_new(Manager *m, FleetServer **ret, char **error)
{
        const struct cf_hawkbit_conf *hc = m->conf->hawkbit;
        *ret = NULL;
        if (!hc)
                return 0;
        /* the token file and ca_file, with messages that name the key */
        int r = cf_conf_check_hawkbit(m->conf, error);
        if (r < 0)
                return r;
        FleetServer *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->m = m;
        s->key = config_key(m);
        r = client_start(s, &s->h, error);
        if (r < 0) {
                free(s->key);
                free(s);
                return r;
        }
        log_info("hawkBit: gateway for %s, tenant %s", hc->url, hc->tenant);
        *ret = s;
        return 0;
}

void fleet_server_reload(Manager *m, FleetServer **sp)
{
        FleetServer *s = *sp;
        const struct cf_hawkbit_conf *hc = m->conf->hawkbit;
        _cleanup_(freep) char *error = NULL;
        if (!hc) {
                if (s) {
                        log_info("hawkBit: the hawkbit block was removed from the configuration: no more "
                                 "polls; %zu action(s) in progress go on locally and are reported when a "
                                 "fleet server is configured again",
                                 count_actions(s));
                        *sp = fleet_server_free(s);
                }
                return;
        }
        if (!s) {
                int r = fleet_server_new(m, sp, &error);
                if (r < 0) {
                        log_error_errno(r, "hawkBit: cannot start after the reload: %s", error ? error : "%m");
                        return;
                }
                fleet_server_nodes_seen(*sp);
                return;
        }
        _cleanup_(freep) char *key = config_key(m);
        if (key && s->key && strcmp(key, s->key) == 0)
                return; /* nothing of the client's changed: it goes on undisturbed */
        /* The old client stops first, so that the outbox on disk has one reader: the new one loads it
         * and delivers what the old one had not, to the new URL with the new token. A request cut here
         * may have reached the server: it is sent again (a repeated "proceeding" is harmless; a repeated
         * closing one gets 410 and is dropped). */
        hawkbit_free(s->h);
        s->h = NULL;
        int r = client_start(s, &s->h, &error);
        if (r < 0) {
                log_error_errno(r, "hawkBit: %s; remote rollouts are off until the next reload",
                                error ? error : "cannot restart the fleet server client: %m");
                *sp = fleet_server_free(s);
                return;
        }
        free(s->key);
        s->key = TAKE_PTR(key);
        log_info("hawkBit: reconfigured: gateway for %s, tenant %s; %zu action(s) in progress kept", hc->url,
                 hc->tenant, count_actions(s));
        fleet_server_nodes_seen(s);
}

FleetServer *fleet_server_free(FleetServer *s)
{
        if (!s)
                return NULL;
        free(s->key);
        while (s->actions)
                action_free(s->actions);
        while (s->artifacts) {
                s->artifacts->refs = 1;
                artifact_unref(s->artifacts);
        }
        hawkbit_free(s->h);
        free(s);
        return NULL;
}

int fleet_server_get_state(FleetServer *s, struct fleet_server_state *st)
{
        memset(st, 0, sizeof *st);
        if (!s)
                return -ENODATA;
        struct hawkbit_status hs;
        hawkbit_get_status(s->h, &hs);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now_rt = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u, mono = now_mono();
        /* monotonic → wall clock for the client (the planned time may be a little in the past while due) */
        uint64_t next = hs.next_poll_usec > hs.held_until_usec ? hs.next_poll_usec : hs.held_until_usec;
        if (next)
                st->next_poll = next > mono ? now_rt + (next - mono) : now_rt;
        const struct cf_hawkbit_conf *hc = s->m->conf->hawkbit;
        st->url = hc ? hc->url : "";
        st->tenant = hc ? hc->tenant : "";
        st->state = hawkbit_link_str(hs.link);
        st->last_poll = hs.last_poll_realtime_usec;
        snprintf(st->last_error_buf, sizeof st->last_error_buf, "%s", hs.last_error);
        st->last_error = st->last_error_buf;
        st->last_error_time = hs.last_error_realtime_usec;
        st->targets = hs.targets;
        st->feedback_queued = hs.outbox;
        st->requests = hs.requests;
        size_t n = 0;
        for (struct action *a = s->actions; a; a = a->next)
                n++;
        st->actions = calloc(n ? n : 1, sizeof *st->actions);
        if (!st->actions)
                return -ENOMEM;
        for (struct action *a = s->actions; a; a = a->next)
                st->actions[st->n_actions++] = a->id;
        return 0;
}

void fleet_server_describe(FleetServer *s, char *buf, size_t size)
{
        if (!s) {
                snprintf(buf, size, "%s", "");
                return;
        }
        struct hawkbit_status st;
        hawkbit_get_status(s->h, &st);
        uint64_t now_rt;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_rt = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
        char last[64];
        if (st.last_poll_realtime_usec)
                snprintf(last, sizeof last, "last poll %" PRIu64 " s ago",
                         (now_rt - st.last_poll_realtime_usec) / 1000000u);
        else
                snprintf(last, sizeof last, "no poll answered yet");
        snprintf(buf, size, "%s: %u target(s), %zu action(s) in progress, %u feedback queued, %s%s%s",
                 s->m->conf->hawkbit->url, st.targets, count_actions(s), st.outbox, last,
                 st.last_error[0] ? "; last error: " : "", st.last_error);
}
