/* Tests of daemon/hawkbit.c on a real sd-event loop against tests/hawkbit/ddi_server.py on loopback TLS:
 * the server's request log, its record of feedback and its schema checks are the witnesses. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "canfleet/sha256.h"
#include "cf-test.h"
#include "fetcher.h"
#include "hawkbit.h"

static const char *python, *ddi_server;
static char topdir[64];
static char pki[128], ca[160];

#define STR(s) ((s) ? (s) : "(missing)")

static void write_file(const char *path, const void *data, size_t n)
{
        FILE *f = fopen(path, "we");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(fwrite(data, 1, n, f), n);
        CU_ASSERT_EQUAL(fclose(f), 0);
}

/* ---- the server ---- */

struct server {
        pid_t pid;
        int port;
        char dir[128];
};

static unsigned server_count;

static void server_start(struct server *s)
{
        memset(s, 0, sizeof *s);
        snprintf(s->dir, sizeof s->dir, "%s/srv%u", topdir, server_count++);
        CU_ASSERT_EQUAL_FATAL(mkdir(s->dir, 0700), 0);
        char portfile[200], cert[200], key[200], root[200];
        snprintf(portfile, sizeof portfile, "%s/port", s->dir);
        snprintf(root, sizeof root, "%s/root", s->dir);
        snprintf(cert, sizeof cert, "%s/server.pem", pki);
        snprintf(key, sizeof key, "%s/server.key", pki);
        s->pid = fork();
        CU_ASSERT_FATAL(s->pid >= 0);
        if (s->pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                int null = open("/dev/null", O_WRONLY);
                dup2(null, STDOUT_FILENO);
                execl(python, python, ddi_server, "serve", "--dir", root, "--port-file", portfile,
                      "--tls-cert", cert, "--tls-key", key, "--sleep", "00:00:01", "--gateway-token",
                      "gw-secret", (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 1500; i++) { /* up to 30 s on a loaded machine */
                FILE *f = fopen(portfile, "re");
                if (f) {
                        if (fscanf(f, "%d", &s->port) != 1)
                                s->port = 0;
                        fclose(f);
                        if (s->port > 0)
                                return;
                }
                if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
                        break;
                usleep(20000);
        }
        CU_FAIL_FATAL("DDI server did not start");
}

static void server_stop(struct server *s)
{
        if (s->pid > 0) {
                kill(s->pid, SIGTERM);
                waitpid(s->pid, NULL, 0);
                s->pid = 0;
        }
}

struct buf {
        char *p;
        size_t n;
};

static size_t buf_write(char *data, size_t size, size_t n, void *userdata)
{
        struct buf *b = userdata;
        char *p = realloc(b->p, b->n + size * n + 1);
        if (!p)
                return 0;
        memcpy(p + b->n, data, size * n);
        b->p = p;
        b->n += size * n;
        p[b->n] = 0;
        return size * n;
}

/* The server's admin API (blocking: the test's own side channel, not the module under test). */
static json_object *admin(const struct server *s, const char *what, const char *body)
{
        char url[256];
        snprintf(url, sizeof url, "https://127.0.0.1:%d/_admin/%s", s->port, what);
        CURL *c = curl_easy_init();
        struct buf b = {0};
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
        if (body)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        CU_ASSERT_EQUAL(rc, CURLE_OK);
        CU_ASSERT_EQUAL(status, 200);
        json_object *o = b.p ? json_tokener_parse(b.p) : NULL;
        free(b.p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        return o;
}

static json_object *jget(json_object *o, const char *key)
{
        json_object *v = NULL;
        if (!o || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v = jget(o, key);
        return v ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *key)
{
        json_object *v = jget(o, key);
        return v ? json_object_get_int64(v) : -1;
}

static uint64_t create_deployment(const struct server *s, const char *cid, const char *file,
                                  const char *extra)
{
        char body[1024];
        snprintf(body, sizeof body, "{\"controller_id\": \"%s\", \"file\": \"%s\"%s%s}", cid, file,
                 extra ? ", " : "", extra ? extra : "");
        json_object *o = admin(s, "deployment", body);
        int64_t id = jint(o, "action_id");
        json_object_put(o);
        CU_ASSERT_FATAL(id > 0);
        return (uint64_t) id;
}

/* The feedback executions the server recorded for an action, "execution/finished" joined with ' '. */
static void action_history(const struct server *s, uint64_t id, bool cancel, char *out, size_t n,
                           char *status, size_t sn)
{
        char what[64];
        snprintf(what, sizeof what, "action/%" PRIu64, id);
        json_object *o = admin(s, what, NULL);
        json_object *fb = jget(o, cancel ? "cancel_feedback" : "feedback");
        out[0] = 0;
        for (size_t i = 0; fb && i < json_object_array_length(fb); i++) {
                json_object *st = jget(json_object_array_get_idx(fb, i), "status");
                size_t l = strlen(out);
                snprintf(out + l, n - l, "%s%s/%s", l ? " " : "", STR(jstr(st, "execution")),
                         STR(jstr(jget(st, "result"), "finished")));
        }
        snprintf(status, sn, "%s", STR(jstr(o, "status")));
        json_object_put(o);
}

/* Nothing the server sent broke hawkBit's schemas, and it refused nothing we sent. */
static void assert_schema_clean(const struct server *s)
{
        json_object *log = admin(s, "log", NULL);
        CU_ASSERT_EQUAL(json_object_array_length(jget(log, "schema_errors")), 0);
        CU_ASSERT_EQUAL(json_object_array_length(jget(log, "rejected")), 0);
        if (json_object_array_length(jget(log, "rejected")))
                fprintf(stderr, "rejected: %s\n", json_object_to_json_string(jget(log, "rejected")));
        json_object_put(log);
}

/* ---- the module on a loop ---- */

struct fixture {
        sd_event *event;
        Fetcher *fetcher;
        Hawkbit *h;
        char state[128], token[160];
        struct hawkbit_config cfg;
        char url[128];
        unsigned deployments, cancels;
        struct hawkbit_deployment last;
        char last_url[512], last_name[128];
        uint64_t cancel_action;
        HawkbitTarget *last_target;
};

static unsigned fixture_count;

static void on_deployment(Hawkbit *h, HawkbitTarget *t, const struct hawkbit_deployment *d, void *userdata)
{
        struct fixture *fx = userdata;
        (void) h;
        fx->deployments++;
        fx->last = *d;
        snprintf(fx->last_url, sizeof fx->last_url, "%s", d->artifact_url);
        snprintf(fx->last_name, sizeof fx->last_name, "%s", d->artifact_name);
        fx->last.artifact_url = fx->last_url;
        fx->last.artifact_name = fx->last_name;
        fx->last.version = NULL;
        fx->last_target = t;
}

static void on_cancel(Hawkbit *h, HawkbitTarget *t, uint64_t action_id, void *userdata)
{
        struct fixture *fx = userdata;
        (void) h;
        fx->cancels++;
        fx->cancel_action = action_id;
        fx->last_target = t;
}

static const struct hawkbit_callbacks callbacks = {
    .deployment_available = on_deployment,
    .cancel_requested = on_cancel,
};

static void fixture_open(struct fixture *fx)
{
        CU_ASSERT_EQUAL_FATAL(hawkbit_new(fx->event, fx->fetcher, &fx->cfg, &callbacks, fx, &fx->h), 0);
}

static void fixture_init(struct fixture *fx, const struct server *s)
{
        memset(fx, 0, sizeof *fx);
        snprintf(fx->state, sizeof fx->state, "%s/state%u", topdir, fixture_count++);
        CU_ASSERT_EQUAL_FATAL(mkdir(fx->state, 0700), 0);
        snprintf(fx->token, sizeof fx->token, "%s/token", fx->state);
        write_file(fx->token, "gw-secret\n", 10);
        snprintf(fx->url, sizeof fx->url, "https://127.0.0.1:%d/", s ? s->port : 1);
        fx->cfg = (struct hawkbit_config){
            .url = fx->url,
            .tenant = "DEFAULT",
            .gateway_token_file = fx->token,
            .ca_file = ca,
            .state_dir = fx->state,
            .poll_max_s = 2,
            .max_requests_per_s = 50,
            .seed = 42,
            .request_timeout_usec = 10 * 1000000ULL,
        };
        CU_ASSERT_EQUAL_FATAL(sd_event_new(&fx->event), 0);
        CU_ASSERT_EQUAL_FATAL(fetcher_new(fx->event, &fx->fetcher), 0);
        fixture_open(fx);
}

static void fixture_done(struct fixture *fx)
{
        fx->h = hawkbit_free(fx->h);
        fx->fetcher = fetcher_free(fx->fetcher);
        fx->event = sd_event_unref(fx->event);
}

static uint64_t mono_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Run the loop until cond holds; the limit only keeps a broken module from hanging the run. */
#define RUN_UNTIL(fx, cond)                                                                                 \
        do {                                                                                                \
                uint64_t _end = mono_usec() + 45 * 1000000ULL;                                              \
                while (!(cond) && mono_usec() < _end)                                                       \
                        CU_ASSERT_FATAL(sd_event_run((fx)->event, 100000) >= 0);                            \
                CU_ASSERT_FATAL(cond);                                                                      \
        } while (0)

static void node_of(struct hawkbit_node *n, unsigned i, const char *version)
{
        memset(n, 0, sizeof *n);
        for (size_t k = 0; k < HAWKBIT_UID_SIZE; k++)
                n->uid[k] = (uint8_t) (0x10 * k + i);
        n->hw_id = 1;
        n->bootloader_version = "bl-2";
        n->bus = "can0";
        n->station = 3 + i;
        n->version = version;
        n->release = 7;
}

static unsigned outbox_files(const struct fixture *fx)
{
        char dir[200];
        snprintf(dir, sizeof dir, "%s/hawkbit-outbox", fx->state);
        DIR *d = opendir(dir);
        unsigned n = 0;
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strstr(de->d_name, ".json"))
                        n++;
        closedir(d);
        return n;
}

static unsigned outbox_len(const struct fixture *fx)
{
        struct hawkbit_status st;
        hawkbit_get_status(fx->h, &st);
        return st.outbox;
}

static int64_t target_field(const struct server *s, const char *cid, const char *key)
{
        json_object *o = admin(s, "targets", NULL);
        int64_t v = jint(jget(o, cid), key);
        json_object_put(o);
        return v;
}

static char *target_config(const struct server *s, const char *cid)
{
        json_object *o = admin(s, "targets", NULL);
        json_object *c = jget(jget(o, cid), "config_data");
        /* In a fixed key order, and with the number of keys: nothing more, nothing less. */
        static const char *const keys[] = {"hw_id",  "bootloader_version", "bus", "station", "version",
                                           "release"};
        char buf[1024];
        int k = snprintf(buf, sizeof buf, "%d keys", c ? json_object_object_length(c) : -1);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                k += snprintf(buf + k, sizeof buf - (size_t) k, " %s=%s", keys[i], STR(jstr(c, keys[i])));
        json_object_put(o);
        return strdup(buf);
}

static int targets_known(const struct server *s)
{
        json_object *o = admin(s, "targets", NULL);
        int n = json_object_object_length(o);
        json_object_put(o);
        return n;
}

static void make_artifact(const char *path, uint8_t *data, size_t n, char hex[65])
{
        for (size_t i = 0; i < n; i++)
                data[i] = (uint8_t) (i * 31 + 7);
        write_file(path, data, n);
        uint8_t d[CF_SHA256_LEN];
        cf_sha256(data, n, d);
        for (size_t i = 0; i < CF_SHA256_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* ---- tests ---- */

static void test_poll_etag_config(void)
{
        struct server s;
        server_start(&s);
        struct fixture fx;
        fixture_init(&fx, &s);
        struct hawkbit_node n;
        node_of(&n, 1, "1.0.0");
        HawkbitTarget *t;
        CU_ASSERT_EQUAL_FATAL(hawkbit_target_add(fx.h, &n, &t), 0);
        CU_ASSERT_EQUAL(hawkbit_target_add(fx.h, &n, NULL), -EEXIST);
        const char *cid = hawkbit_target_controller_id(t);
        CU_ASSERT_STRING_EQUAL(cid, "canfleet-01112131415161718191a1b1");
        struct hawkbit_status st;
        RUN_UNTIL(&fx, (hawkbit_get_status(fx.h, &st), st.not_modified >= 2));
        CU_ASSERT(target_field(&s, cid, "not_modified") >= 2); /* the server counted the 304s */
        CU_ASSERT_EQUAL(target_field(&s, cid, "config_puts"), 1);
        char *c = target_config(&s, cid);
        CU_ASSERT_STRING_EQUAL(
            c, "6 keys hw_id=1 bootloader_version=bl-2 bus=can0 station=4 version=1.0.0 release=7");
        free(c);
        /* Every poll after the first carried the previous ETag. */
        json_object *log = admin(&s, "log", NULL), *req = jget(log, "requests");
        unsigned roots = 0, with_inm = 0, s304 = 0;
        for (size_t i = 0; i < json_object_array_length(req); i++) {
                json_object *r = json_object_array_get_idx(req, i);
                if (strcmp(STR(jstr(r, "kind")), "root") != 0)
                        continue;
                roots++;
                with_inm += jstr(r, "if_none_match") != NULL;
                s304 += jint(r, "status") == 304;
        }
        json_object_put(log);
        CU_ASSERT(roots >= 3);
        CU_ASSERT_EQUAL(with_inm, roots - 1);
        CU_ASSERT(s304 >= 2);

        /* A changed version is sent once more. */
        node_of(&n, 1, "1.1.0");
        CU_ASSERT_EQUAL(hawkbit_target_update(t, &n), 0);
        RUN_UNTIL(&fx, target_field(&s, cid, "config_puts") == 2);
        c = target_config(&s, cid);
        CU_ASSERT_PTR_NOT_NULL(strstr(c, " version=1.1.0 "));
        free(c);
        assert_schema_clean(&s);
        fixture_done(&fx);
        server_stop(&s);
}

struct dl {
        sd_event *event;
        int r;
        bool done;
        uint8_t *data;
        size_t size;
};

static void on_dl(Fetch *x, int r, const uint8_t *data, size_t size, const char *error, void *userdata)
{
        struct dl *d = userdata;
        (void) x;
        (void) error;
        d->r = r;
        d->done = true;
        if (data) {
                d->data = malloc(size);
                memcpy(d->data, data, size);
                d->size = size;
        }
}

static void test_deployment_and_feedback(void)
{
        struct server s;
        server_start(&s);
        struct fixture fx;
        fixture_init(&fx, &s);
        struct hawkbit_node n;
        node_of(&n, 2, "1.0.0");
        HawkbitTarget *t;
        CU_ASSERT_EQUAL_FATAL(hawkbit_target_add(fx.h, &n, &t), 0);
        const char *cid = hawkbit_target_controller_id(t);

        char art[200], hex[65];
        static uint8_t data[70000];
        snprintf(art, sizeof art, "%s/app.cfb", s.dir);
        make_artifact(art, data, sizeof data, hex);
        uint64_t aid =
            create_deployment(&s, cid, art,
                              "\"maintenance_window\": \"unavailable\", \"download\": \"forced\", "
                              "\"update\": \"attempt\", \"version\": \"1.4.0\"");
        RUN_UNTIL(&fx, fx.deployments == 1);
        CU_ASSERT_PTR_EQUAL(fx.last_target, t);
        CU_ASSERT_EQUAL(fx.last.action_id, aid);
        CU_ASSERT_EQUAL(fx.last.download, HAWKBIT_FORCED);
        CU_ASSERT_EQUAL(fx.last.update, HAWKBIT_ATTEMPT);
        CU_ASSERT(fx.last.maintenance_window_given);
        CU_ASSERT(!fx.last.maintenance_window_available);
        CU_ASSERT_STRING_EQUAL(fx.last.artifact_name, "app.cfb");
        CU_ASSERT_STRING_EQUAL(fx.last.artifact_sha256, hex);
        CU_ASSERT_EQUAL(fx.last.artifact_size, sizeof data);
        CU_ASSERT_EQUAL(strncmp(fx.last.artifact_url, fx.url, strlen(fx.url) - 1), 0);

        /* The link is usable with the module's download headers, and they are the token's only for it. */
        const char *const *hd = hawkbit_download_headers(fx.h, fx.last.artifact_url);
        CU_ASSERT_FATAL(hd && hd[0]);
        CU_ASSERT_PTR_NOT_NULL(strstr(hd[0], "GatewayToken"));
        const char *const *other = hawkbit_download_headers(fx.h, "https://cdn.example/app.cfb");
        CU_ASSERT(other && !other[0]);
        struct dl d = {0};
        struct fetch_options o = {.ca_file = ca, .headers = hd};
        CU_ASSERT_EQUAL_FATAL(fetch_start(fx.fetcher, fx.last.artifact_url, &o, on_dl, &d, NULL), 0);
        RUN_UNTIL(&fx, d.done);
        CU_ASSERT_EQUAL(d.r, 0);
        CU_ASSERT_EQUAL(d.size, sizeof data);
        CU_ASSERT(d.data && memcmp(d.data, data, sizeof data) == 0);
        free(d.data);

        CU_ASSERT_EQUAL(
            hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_PROCEEDING, "Downloading app.cfb"), 0);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_DOWNLOADED,
                                         "Verified, waiting for "
                                         "the maintenance window"),
                        0);
        /* The window opens: the owner hears about the changed deployment. */
        char body[128];
        snprintf(body, sizeof body, "{\"action_id\": %" PRIu64 ", \"window\": \"available\"}", aid);
        json_object_put(admin(&s, "maintenance", body));
        RUN_UNTIL(&fx, fx.deployments == 2);
        CU_ASSERT(fx.last.maintenance_window_available);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_FAILURE, NULL), -EINVAL);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_PROCEEDING,
                                         "Flashing bus can0 station 4\nsecond line is cut"),
                        0);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_SUCCESS,
                                         "Node reset and reports 1.4.0 release 12"),
                        0);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_PROCEEDING, "late"), -ESTALE);
        struct hawkbit_status st;
        hawkbit_get_status(fx.h, &st);
        CU_ASSERT_EQUAL(st.actions_in_progress, 0);
        RUN_UNTIL(&fx, outbox_len(&fx) == 0);
        CU_ASSERT_EQUAL(outbox_files(&fx), 0);
        char hist[512], status[32];
        action_history(&s, aid, false, hist, sizeof hist, status, sizeof status);
        CU_ASSERT_STRING_EQUAL(hist, "proceeding/none downloaded/none proceeding/none closed/success");
        CU_ASSERT_STRING_EQUAL(status, "finished");
        snprintf(body, sizeof body, "action/%" PRIu64, aid);
        json_object *a = admin(&s, body, NULL);
        json_object *third =
            jget(jget(json_object_array_get_idx(jget(a, "feedback"), 2), "status"), "details");
        CU_ASSERT_STRING_EQUAL(STR(json_object_get_string(json_object_array_get_idx(third, 0))),
                               "Flashing bus can0 station 4");
        json_object_put(a);
        assert_schema_clean(&s);
        fixture_done(&fx);
        server_stop(&s);
}

static void test_no_cfb_is_a_failure(void)
{
        struct server s;
        server_start(&s);
        struct fixture fx;
        fixture_init(&fx, &s);
        struct hawkbit_node n;
        node_of(&n, 3, "1.0.0");
        HawkbitTarget *t;
        CU_ASSERT_EQUAL_FATAL(hawkbit_target_add(fx.h, &n, &t), 0);
        char art[200], hex[65];
        static uint8_t data[1000];
        snprintf(art, sizeof art, "%s/app.tar", s.dir);
        make_artifact(art, data, sizeof data, hex);
        uint64_t aid = create_deployment(&s, hawkbit_target_controller_id(t), art, NULL);
        char hist[512], status[32];
        RUN_UNTIL(&fx, (action_history(&s, aid, false, hist, sizeof hist, status, sizeof status),
                        strcmp(status, "error") == 0));
        CU_ASSERT_STRING_EQUAL(hist, "closed/failure");
        CU_ASSERT_EQUAL(fx.deployments, 0);
        assert_schema_clean(&s);
        fixture_done(&fx);
        server_stop(&s);
}

static void test_cancel(void)
{
        struct server s;
        server_start(&s);
        struct fixture fx;
        fixture_init(&fx, &s);
        struct hawkbit_node n;
        node_of(&n, 4, "1.0.0");
        HawkbitTarget *t;
        CU_ASSERT_EQUAL_FATAL(hawkbit_target_add(fx.h, &n, &t), 0);
        const char *cid = hawkbit_target_controller_id(t);
        char art[200], hex[65], body[128], hist[512], status[32];
        static uint8_t data[1000];
        snprintf(art, sizeof art, "%s/app.cfb", s.dir);
        make_artifact(art, data, sizeof data, hex);

        /* Rejected (the node was past DISCONNECT(end)): the action goes on. */
        uint64_t a1 = create_deployment(&s, cid, art, NULL);
        RUN_UNTIL(&fx, fx.deployments == 1);
        snprintf(body, sizeof body, "{\"action_id\": %" PRIu64 "}", a1);
        json_object_put(admin(&s, "cancel", body));
        RUN_UNTIL(&fx, fx.cancels == 1);
        CU_ASSERT_EQUAL(fx.cancel_action, a1);
        CU_ASSERT_EQUAL(hawkbit_cancel_feedback(fx.h, n.uid, a1, false, "Node already told DISCONNECT(end)"),
                        0);
        RUN_UNTIL(&fx, outbox_len(&fx) == 0);
        action_history(&s, a1, true, hist, sizeof hist, status, sizeof status);
        CU_ASSERT_STRING_EQUAL(hist, "rejected/none");
        CU_ASSERT_STRING_EQUAL(status, "running");
        /* Once a poll showed the cancel over, a new cancel of the same action is handed over again. */
        int64_t polls = target_field(&s, cid, "polls");
        RUN_UNTIL(&fx, target_field(&s, cid, "polls") > polls);
        json_object_put(admin(&s, "cancel", body));
        RUN_UNTIL(&fx, fx.cancels == 2);
        CU_ASSERT_EQUAL(fx.cancel_action, a1);
        CU_ASSERT_EQUAL(hawkbit_cancel_feedback(fx.h, n.uid, a1, false, "Still past DISCONNECT(end)"), 0);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, a1, HAWKBIT_FEEDBACK_SUCCESS, "done"), 0);
        RUN_UNTIL(&fx, outbox_len(&fx) == 0);
        action_history(&s, a1, true, hist, sizeof hist, status, sizeof status);
        CU_ASSERT_STRING_EQUAL(hist, "rejected/none rejected/none");
        CU_ASSERT_STRING_EQUAL(status, "finished");
        CU_ASSERT_EQUAL(fx.deployments, 1); /* the rejected cancels did not make it a new deployment */

        /* Accepted: the action ends canceled and is never handed over again. */
        uint64_t a2 = create_deployment(&s, cid, art, NULL);
        RUN_UNTIL(&fx, fx.deployments == 2);
        snprintf(body, sizeof body, "{\"action_id\": %" PRIu64 "}", a2);
        json_object_put(admin(&s, "cancel", body));
        RUN_UNTIL(&fx, fx.cancels == 3);
        CU_ASSERT_EQUAL(fx.cancel_action, a2);
        CU_ASSERT_EQUAL(hawkbit_cancel_feedback(fx.h, n.uid, a2, true, "Canceled before any CAN frame"), 0);
        RUN_UNTIL(&fx, outbox_len(&fx) == 0);
        action_history(&s, a2, true, hist, sizeof hist, status, sizeof status);
        CU_ASSERT_STRING_EQUAL(hist, "closed/success");
        CU_ASSERT_STRING_EQUAL(status, "canceled");
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, a2, HAWKBIT_FEEDBACK_FAILURE, "x"), -ESTALE);
        CU_ASSERT_EQUAL(fx.deployments, 2);
        assert_schema_clean(&s);
        fixture_done(&fx);
        server_stop(&s);
}

static int free_port(void)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        CU_ASSERT_FATAL(bind(fd, (struct sockaddr *) &a, sizeof a) == 0);
        CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *) &a, &l) == 0);
        close(fd);
        return ntohs(a.sin_port);
}

static void test_outbox_survives_restart_and_outage(void)
{
        struct server s;
        server_start(&s);
        char art[200], hex[65];
        static uint8_t data[1000];
        snprintf(art, sizeof art, "%s/app.cfb", s.dir);
        make_artifact(art, data, sizeof data, hex);
        struct hawkbit_node n;
        node_of(&n, 5, "1.0.0");
        const char *cid = "canfleet-05152535455565758595a5b5";
        uint64_t aid = create_deployment(&s, cid, art, NULL);

        /* The server is down (connection refused): feedback waits in the outbox, on disk. */
        struct fixture fx;
        struct server down = {.port = free_port()};
        fixture_init(&fx, &down);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_PROCEEDING, "Flashing"), 0);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_FAILURE, "Node silent"), 0);
        CU_ASSERT_EQUAL(outbox_files(&fx), 2);
        struct hawkbit_status st;
        RUN_UNTIL(&fx, (hawkbit_get_status(fx.h, &st), st.requests >= 2));
        CU_ASSERT_EQUAL(outbox_len(&fx), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.last_error, "127.0.0.1"));

        /* The gateway restarts, and now the server is there. */
        fx.h = hawkbit_free(fx.h);
        CU_ASSERT_EQUAL(outbox_files(&fx), 2);
        snprintf(fx.url, sizeof fx.url, "https://127.0.0.1:%d", s.port);
        fixture_open(&fx);
        CU_ASSERT_EQUAL(outbox_len(&fx), 2);
        /* The closing feedback on disk still counts: the action is closed for this process too. */
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_SUCCESS, "x"), -ESTALE);
        RUN_UNTIL(&fx, outbox_len(&fx) == 0);
        CU_ASSERT_EQUAL(outbox_files(&fx), 0);
        char hist[512], status[32];
        action_history(&s, aid, false, hist, sizeof hist, status, sizeof status);
        CU_ASSERT_STRING_EQUAL(hist, "proceeding/none closed/failure"); /* in order, each once */
        CU_ASSERT_STRING_EQUAL(status, "error");
        assert_schema_clean(&s);
        fixture_done(&fx);
        server_stop(&s);
}

static void test_410_drops_feedback(void)
{
        struct server s;
        server_start(&s);
        char art[200], hex[65], body[128];
        static uint8_t data[1000];
        snprintf(art, sizeof art, "%s/app.cfb", s.dir);
        make_artifact(art, data, sizeof data, hex);
        struct hawkbit_node n;
        node_of(&n, 6, "1.0.0");
        uint64_t aid = create_deployment(&s, "canfleet-06162636465666768696a6b6", art, NULL);
        snprintf(body, sizeof body, "{\"action_id\": %" PRIu64 "}", aid);
        json_object_put(admin(&s, "gone", body));
        struct fixture fx;
        fixture_init(&fx, &s);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_PROCEEDING, "Flashing"), 0);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_PROCEEDING, "Verifying"), 0);
        RUN_UNTIL(&fx, outbox_len(&fx) == 0);
        CU_ASSERT_EQUAL(outbox_files(&fx), 0);
        struct hawkbit_status st;
        hawkbit_get_status(fx.h, &st);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.last_error, "gone"));
        char hist[512], status[32];
        action_history(&s, aid, false, hist, sizeof hist, status, sizeof status);
        CU_ASSERT_STRING_EQUAL(hist, "");
        /* One request: the 410 ended the action, so its second message went without asking again. */
        json_object *log = admin(&s, "log", NULL), *req = jget(log, "requests");
        CU_ASSERT_EQUAL(json_object_array_length(req), 1);
        CU_ASSERT_EQUAL(jint(json_object_array_get_idx(req, 0), "status"), 410);
        json_object_put(log);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_PROCEEDING, "late"), -ESTALE);
        assert_schema_clean(&s);
        fixture_done(&fx);
        server_stop(&s);
}

static void test_429_honoured(void)
{
        struct server s;
        server_start(&s);
        char art[200], hex[65];
        static uint8_t data[1000];
        snprintf(art, sizeof art, "%s/app.cfb", s.dir);
        make_artifact(art, data, sizeof data, hex);
        struct hawkbit_node n;
        node_of(&n, 7, "1.0.0");
        uint64_t aid = create_deployment(&s, "canfleet-07172737475767778797a7b7", art, NULL);
        /* Retry-After 3 s is longer than the first back-off (2 s): only the hold explains a 3 s gap. */
        json_object_put(admin(
            &s, "fault", "{\"status\": 429, \"times\": 1, \"retry_after\": 3, \"kind\": \"feedback\"}"));
        struct fixture fx;
        fixture_init(&fx, &s);
        fx.cfg.poll_max_s = 10;
        fx.h = hawkbit_free(fx.h);
        fixture_open(&fx);
        CU_ASSERT_EQUAL(hawkbit_feedback(fx.h, n.uid, aid, HAWKBIT_FEEDBACK_PROCEEDING, "Flashing"), 0);
        RUN_UNTIL(&fx, outbox_len(&fx) == 0);
        /* The module's decision: the request after the 429 took a slot at least Retry-After later. */
        uint64_t slots[8];
        size_t k = hawkbit_slot_log(fx.h, slots, 8);
        CU_ASSERT_EQUAL_FATAL(k, 2);
        CU_ASSERT(slots[1] - slots[0] >= 3 * 1000000ULL);
        json_object *log = admin(&s, "log", NULL), *req = jget(log, "requests");
        CU_ASSERT_EQUAL(json_object_array_length(req), 2);
        CU_ASSERT_EQUAL(jint(json_object_array_get_idx(req, 0), "status"), 429);
        CU_ASSERT_EQUAL(jint(json_object_array_get_idx(req, 1), "status"), 200);
        json_object_put(log);
        char hist[512], status[32];
        action_history(&s, aid, false, hist, sizeof hist, status, sizeof status);
        CU_ASSERT_STRING_EQUAL(hist, "proceeding/none");
        assert_schema_clean(&s);
        fixture_done(&fx);
        server_stop(&s);
}

#define N_TARGETS 50
#define RATE      20
#define SPREAD_S  2

static void test_rate_cap_50_targets(void)
{
        struct server s;
        server_start(&s);
        struct fixture fx;
        fixture_init(&fx, &s);
        fx.cfg.max_requests_per_s = RATE;
        fx.cfg.poll_max_s = SPREAD_S; /* the first polls spread over 2 s: 25 a second, above the cap */
        fx.h = hawkbit_free(fx.h);
        fixture_open(&fx);
        uint64_t t0 = mono_usec();
        /* Ten buckets of the spread window. */
        unsigned buckets[10] = {0};
        const uint64_t bucket_usec = SPREAD_S * 1000000ULL / 10;
        HawkbitTarget *ts[N_TARGETS];
        for (unsigned i = 0; i < N_TARGETS; i++) {
                struct hawkbit_node n;
                node_of(&n, 0x80 + i, "1.0.0");
                n.uid[0] = (uint8_t) i;
                CU_ASSERT_EQUAL_FATAL(hawkbit_target_add(fx.h, &n, &ts[i]), 0);
        }
        /* The first polls are planned over the spread window, never all at once. */
        for (unsigned i = 0; i < N_TARGETS; i++) {
                uint64_t next = hawkbit_target_next_poll_usec(ts[i]);
                CU_ASSERT(next + 1000000 >= t0);
                CU_ASSERT(next < mono_usec() + SPREAD_S * 1000000ULL);
                uint64_t b = next > t0 ? (next - t0) / bucket_usec : 0;
                if (b < 10)
                        buckets[b]++;
        }
        unsigned max_bucket = 0, total = 0;
        for (unsigned b = 0; b < 10; b++) {
                total += buckets[b];
                if (buckets[b] > max_bucket)
                        max_bucket = buckets[b];
        }
        CU_ASSERT_EQUAL(total, N_TARGETS);
        CU_ASSERT(max_bucket <= N_TARGETS / 3);
        /* Run until every target polled and 150 requests went out, against a cap of RATE per second
         * while 50 targets told to poll every second would want 50. */
        struct hawkbit_status st;
        RUN_UNTIL(&fx, (hawkbit_get_status(fx.h, &st), st.requests >= 3 * N_TARGETS) &&
                           targets_known(&s) == N_TARGETS);
        /* The pacer's decisions: no two slots closer than 1/RATE s. */
        static uint64_t slots[HAWKBIT_SLOT_LOG];
        size_t k = hawkbit_slot_log(fx.h, slots, HAWKBIT_SLOT_LOG);
        CU_ASSERT(k >= 2 * N_TARGETS);
        unsigned closer = 0;
        for (size_t i = 1; i < k; i++)
                closer += slots[i] - slots[i - 1] < 1000000 / RATE;
        CU_ASSERT_EQUAL(closer, 0);
        printf("\n  %zu requests for %u targets, slots %.3f s apart at least, over %.1f s\n", k, N_TARGETS,
               1.0 / RATE, (double) (slots[k - 1] - slots[0]) / 1e6);
        assert_schema_clean(&s);
        fixture_done(&fx);
        server_stop(&s);
}

static void test_bad_config(void)
{
        sd_event *e = NULL;
        Fetcher *f = NULL;
        Hawkbit *h = NULL;
        CU_ASSERT_EQUAL_FATAL(sd_event_new(&e), 0);
        CU_ASSERT_EQUAL_FATAL(fetcher_new(e, &f), 0);
        char dir[160], tok[200];
        snprintf(dir, sizeof dir, "%s/badcfg", topdir);
        CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
        snprintf(tok, sizeof tok, "%s/token", dir);
        struct hawkbit_config c = {
            .url = "https://x", .tenant = "DEFAULT", .gateway_token_file = tok, .state_dir = dir};
        CU_ASSERT_EQUAL(hawkbit_new(e, f, &c, NULL, NULL, &h), -ENOENT);
        write_file(tok, "  \n", 3);
        CU_ASSERT_EQUAL(hawkbit_new(e, f, &c, NULL, NULL, &h), -EINVAL);
        write_file(tok, "tok\n", 4);
        c.url = "ftp://x";
        CU_ASSERT_EQUAL(hawkbit_new(e, f, &c, NULL, NULL, &h), -EINVAL);
        c.url = "https://x";
        c.tenant = "a/b";
        CU_ASSERT_EQUAL(hawkbit_new(e, f, &c, NULL, NULL, &h), -EINVAL);
        c.tenant = "DEFAULT";
        CU_ASSERT_EQUAL(hawkbit_new(e, f, &c, NULL, NULL, &h), 0);
        /* A damaged outbox file is set aside, not delivered and not lost. */
        h = hawkbit_free(h);
        char bad[256];
        snprintf(bad, sizeof bad, "%s/hawkbit-outbox/0000000000000007.json", dir);
        write_file(bad, "{\"body\": 3", 10);
        CU_ASSERT_EQUAL(hawkbit_new(e, f, &c, NULL, NULL, &h), 0);
        struct hawkbit_status st;
        hawkbit_get_status(h, &st);
        CU_ASSERT_EQUAL(st.outbox, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(st.last_error, "damaged"));
        strcat(bad, ".corrupt");
        CU_ASSERT_EQUAL(access(bad, F_OK), 0);
        hawkbit_free(h);
        fetcher_free(f);
        sd_event_unref(e);
}

int main(void)
{
        python = getenv("PYTHON");
        ddi_server = getenv("CANFLEET_DDI_SERVER");
        if (!python || !ddi_server) {
                fprintf(stderr, "PYTHON and CANFLEET_DDI_SERVER must be set (meson does)\n");
                return 1;
        }
        /* The loopback server must be reached directly, whatever the environment says. */
        static const char *const proxies[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                              "ALL_PROXY"};
        for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
                unsetenv(proxies[i]);
        signal(SIGPIPE, SIG_IGN);
        snprintf(topdir, sizeof topdir, "/tmp/cf-hawkbit-XXXXXX");
        if (!mkdtemp(topdir))
                return 1;
        snprintf(pki, sizeof pki, "%s/pki", topdir);
        snprintf(ca, sizeof ca, "%s/ca.pem", pki);
        pid_t p = fork();
        if (p == 0) {
                execl(python, python, ddi_server, "certs", pki, (char *) NULL);
                _exit(127);
        }
        int status;
        if (p < 0 || waitpid(p, &status, 0) != p || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "making the test PKI failed\n");
                return 1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        static const struct cf_test tests[] = {
            {"bad configuration and a damaged outbox file", test_bad_config},
            {"poll, ETag/304, configData once and on change", test_poll_etag_config},
            {"deployment parsed, artifact link, feedback sequence", test_deployment_and_feedback},
            {"deployment without a *.cfb artifact: closed/failure", test_no_cfb_is_a_failure},
            {"cancel rejected, then accepted", test_cancel},
            {"outbox survives a restart and a server that was down",
             test_outbox_survives_restart_and_outage},
            {"410 drops the feedback", test_410_drops_feedback},
            {"429 holds the server for Retry-After", test_429_honoured},
            {"50 targets: spread first polls, paced requests", test_rate_cap_50_targets},
            {NULL, NULL},
        };
        int r = cf_test_run("hawkbit", tests);
        curl_global_cleanup();
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", topdir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", topdir);
        return r;
}
