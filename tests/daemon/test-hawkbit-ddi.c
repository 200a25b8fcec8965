/* Tests of daemon/hawkbit-ddi.c (hawkBit DDI documents) and daemon/hawkbit-outbox.c (the outbox files)
 * on canned input: the cases a live server seldom produces. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cf-test.h"
#include "fleet-server.h"
#include "hawkbit-ddi.h"
#include "hawkbit-outbox.h"
#include "manager.h"

#define U8(s) ((const uint8_t *) (s)), strlen(s)

static const char *const SHA = "C51368BF045803B429A67BDF04539A373D9FB8CAA310FE0431265E6871B4F07A";

static void test_sleep(void)
{
        unsigned s = 0;
        CU_ASSERT_EQUAL(ddi_parse_sleep("00:05:00", &s), 0);
        CU_ASSERT_EQUAL(s, 300);
        CU_ASSERT_EQUAL(ddi_parse_sleep("12:00:00", &s), 0);
        CU_ASSERT_EQUAL(s, 43200);
        CU_ASSERT_EQUAL(ddi_parse_sleep("99:59:59", &s), 0);
        CU_ASSERT_EQUAL(s, 99 * 3600 + 59 * 60 + 59);
        static const char *const bad[] = {"5:00",     "00:60:00", "00:00:60", "00:00:05x", "0a:00:00",
                                          "00-00-05", "",         " 0:00:05", NULL};
        for (const char *const *b = bad; *b; b++)
                CU_ASSERT_EQUAL(ddi_parse_sleep(*b, &s), -EINVAL);
        CU_ASSERT_EQUAL(ddi_parse_sleep(NULL, &s), -EINVAL);
}

static void test_root(void)
{
        struct ddi_root r;
        CU_ASSERT_EQUAL(
            ddi_parse_root(U8("{\"config\":{\"polling\":{\"sleep\":\"00:00:30\"}},\"_links\":{"
                              "\"deploymentBase\":{\"href\":\"https://h/T/controller/v1/c/deploymentBase/"
                              "5?c=1\"},\"configData\":{\"href\":\"x\"},\"future\":{}}}"),
                           &r),
            0);
        CU_ASSERT(r.has_sleep);
        CU_ASSERT_EQUAL(r.sleep_s, 30);
        CU_ASSERT_STRING_EQUAL(r.deployment_href, "https://h/T/controller/v1/c/deploymentBase/5?c=1");
        CU_ASSERT_PTR_NULL(r.cancel_href);
        CU_ASSERT(r.config_requested);
        ddi_root_clear(&r);
        CU_ASSERT_EQUAL(ddi_parse_root(U8("{}"), &r), 0);
        CU_ASSERT(!r.has_sleep && !r.config_requested && !r.deployment_href);
        CU_ASSERT_EQUAL(ddi_parse_root(U8("{\"config\":{\"polling\":{\"sleep\":300}}}"), &r), 0);
        CU_ASSERT(!r.has_sleep);
        static const char *const bad[] = {"[]", "\"x\"", "{", "{} {}", "", NULL};
        for (const char *const *b = bad; *b; b++)
                CU_ASSERT_EQUAL(ddi_parse_root((const uint8_t *) *b, strlen(*b), &r), -EBADMSG);
}

static char *deployment_json(const char *id, const char *extra, const char *artifacts)
{
        char *s = NULL;
        CU_ASSERT_FATAL(
            asprintf(&s,
                     "{\"id\":\"%s\",\"deployment\":{%s\"chunks\":[{\"part\":\"bApp\",\"version\":"
                     "\"1.4.0\",\"name\":\"fw\",\"artifacts\":[%s]}]}}",
                     id, extra, artifacts) >= 0);
        return s;
}

static char *artifact(const char *name, const char *sha, const char *size, const char *links)
{
        char *s = NULL;
        CU_ASSERT_FATAL(
            asprintf(
                &s,
                "{\"filename\":\"%s\",\"hashes\":{\"sha1\":\"x\",\"md5\":\"y\"%s%s%s}%s%s,\"_links\":{%s}}",
                name, sha ? ",\"sha256\":\"" : "", sha ? sha : "", sha ? "\"" : "", size ? ",\"size\":" : "",
                size ? size : "", links) >= 0);
        return s;
}

static int parse_dep(const char *json, struct ddi_deployment *d, const char **why)
{
        *why = NULL;
        return ddi_parse_deployment((const uint8_t *) json, strlen(json), d, why);
}

static void test_deployment(void)
{
        struct ddi_deployment d;
        const char *why;
        char *sig = artifact("app.cfb.sig", SHA, "10", "\"download\":{\"href\":\"https://h/sig\"}");
        char *cfb =
            artifact("app.cfb", SHA, "300000",
                     "\"download\":{\"href\":\"https://h/a\"},\"download-http\":{\"href\":\"http://h/a\"}");
        char arts[2048];
        snprintf(arts, sizeof arts, "%s,%s", sig, cfb);
        char *j = deployment_json(
            "17", "\"download\":\"skip\",\"update\":\"forced\",\"maintenanceWindow\":\"unavailable\",",
            arts);
        CU_ASSERT_EQUAL(parse_dep(j, &d, &why), 0);
        CU_ASSERT_EQUAL(d.d.action_id, 17);
        CU_ASSERT_EQUAL(d.d.download, HAWKBIT_SKIP);
        CU_ASSERT_EQUAL(d.d.update, HAWKBIT_FORCED);
        CU_ASSERT(d.d.maintenance_window_given && !d.d.maintenance_window_available);
        CU_ASSERT_STRING_EQUAL(d.d.artifact_name, "app.cfb");
        CU_ASSERT_STRING_EQUAL(d.d.artifact_url, "https://h/a"); /* download before download-http */
        CU_ASSERT_STRING_EQUAL(d.d.version, "1.4.0");
        CU_ASSERT_EQUAL(d.d.artifact_size, 300000);
        CU_ASSERT_STRING_EQUAL(d.d.artifact_sha256,
                               "c51368bf045803b429a67bdf04539a373d9fb8caa310fe0431265e6871b4f07a");
        ddi_deployment_clear(&d);
        free(j);

        /* Defaults: no modes, no window. download-http when it is the only link. */
        char *http = artifact("app.cfb", SHA, "5", "\"download-http\":{\"href\":\"http://h/a\"}");
        j = deployment_json("3", "", http);
        CU_ASSERT_EQUAL(parse_dep(j, &d, &why), 0);
        CU_ASSERT_EQUAL(d.d.download, HAWKBIT_ATTEMPT);
        CU_ASSERT_EQUAL(d.d.update, HAWKBIT_ATTEMPT);
        CU_ASSERT(!d.d.maintenance_window_given && d.d.maintenance_window_available);
        CU_ASSERT_STRING_EQUAL(d.d.artifact_url, "http://h/a");
        ddi_deployment_clear(&d);
        free(j);

        /* Refusals keep the action id, so that the action can be answered. */
        struct {
                const char *arts, *why;
        } cases[] = {
            {sig, "no *.cfb artifact in the deployment"},
            {NULL, "more than one *.cfb artifact in the deployment"},
            {NULL, "the *.cfb artifact has no sha256"},
            {NULL, "the *.cfb artifact's sha256 is not hex"},
            {NULL, "the *.cfb artifact has no size"},
            {NULL, "the *.cfb artifact has no download link"},
            {NULL, "the *.cfb artifact's download link is not an http:// or https:// URL"},
            {NULL, "the *.cfb artifact's download link is not an http:// or https:// URL"},
        };
        char two[4096];
        snprintf(two, sizeof two, "%s,%s", cfb, http);
        cases[1].arts = two;
        char *nosha = artifact("app.cfb", NULL, "5", "\"download\":{\"href\":\"https://h/a\"}");
        char *badsha =
            artifact("app.cfb", "zz1368bf045803b429a67bdf04539a373d9fb8caa310fe0431265e6871b4f07a", "5",
                     "\"download\":{\"href\":\"https://h/a\"}");
        char *nosize = artifact("app.cfb", SHA, NULL, "\"download\":{\"href\":\"https://h/a\"}");
        char *nolink = artifact("app.cfb", SHA, "5", "\"md5sum\":{\"href\":\"https://h/a.MD5SUM\"}");
        cases[2].arts = nosha;
        cases[3].arts = badsha;
        cases[4].arts = nosize;
        cases[5].arts = nolink;
        /* the server cannot have canfleetd open its own files (a FIFO there would block it for ever) */
        char *file = artifact("app.cfb", SHA, "5", "\"download\":{\"href\":\"file:///run/fifo\"}");
        char *ftp = artifact("app.cfb", SHA, "5", "\"download-http\":{\"href\":\"FTP://h/a\"}");
        cases[6].arts = file;
        cases[7].arts = ftp;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                j = deployment_json("9", "", cases[i].arts);
                CU_ASSERT_EQUAL(parse_dep(j, &d, &why), -EBADMSG);
                CU_ASSERT_STRING_EQUAL(why ? why : "", cases[i].why);
                CU_ASSERT_EQUAL(d.d.action_id, 9);
                CU_ASSERT_PTR_NULL(d.d.artifact_url);
                free(j);
        }
        j = deployment_json("x9", "", cfb);
        CU_ASSERT_EQUAL(parse_dep(j, &d, &why), -EBADMSG);
        CU_ASSERT_EQUAL(d.d.action_id, 0);
        free(j);
        CU_ASSERT_EQUAL(parse_dep("[1]", &d, &why), -EBADMSG);
        free(sig);
        free(cfb);
        free(http);
        free(nosha);
        free(badsha);
        free(nosize);
        free(nolink);
        free(file);
        free(ftp);
}

static void test_cancel(void)
{
        uint64_t id = 0;
        CU_ASSERT_EQUAL(ddi_parse_cancel(U8("{\"id\":\"11\",\"cancelAction\":{\"stopId\":\"11\"}}"), &id),
                        0);
        CU_ASSERT_EQUAL(id, 11);
        CU_ASSERT_EQUAL(ddi_parse_cancel(U8("{\"cancelAction\":{\"stopId\":11}}"), &id), -EBADMSG);
        CU_ASSERT_EQUAL(ddi_parse_cancel(U8("{\"cancelAction\":{\"stopId\":\"-1\"}}"), &id), -EBADMSG);
        CU_ASSERT_EQUAL(ddi_parse_cancel(U8("{\"cancelAction\":{}}"), &id), -EBADMSG);
}

static void test_bodies(void)
{
        struct hawkbit_node n = {.hw_id = 1,
                                 .bootloader_version = "bl-2",
                                 .bus = "can0",
                                 .station = 3,
                                 .version = "1.0.0",
                                 .release = 7};
        char *s = ddi_config_data_body(&n);
        CU_ASSERT_STRING_EQUAL(
            s, "{\"mode\":\"merge\",\"data\":{\"hw_id\":\"1\",\"bootloader_version\":\"bl-2\","
               "\"bus\":\"can0\",\"station\":\"3\",\"version\":\"1.0.0\",\"release\":\"7\"}}");
        free(s);
        n.bootloader_version = NULL;
        s = ddi_config_data_body(&n);
        CU_ASSERT_PTR_NULL(strstr(s, "bootloader_version"));
        free(s);

        s = ddi_feedback_body("closed", "failure", "Node silent\nsecond line", 1627997501890ULL);
        CU_ASSERT_STRING_EQUAL(s,
                               "{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"failure\"},"
                               "\"details\":[\"Node silent\"]},\"timestamp\":1627997501890}");
        CU_ASSERT(ddi_feedback_closes(s));
        free(s);
        s = ddi_feedback_body("proceeding", "none", NULL, 1);
        CU_ASSERT_PTR_NULL(strstr(s, "details"));
        CU_ASSERT(!ddi_feedback_closes(s));
        free(s);
        /* A long line is cut at HAWKBIT_DETAILS_MAX bytes, back to the start of a UTF-8 sequence. */
        char longline[HAWKBIT_DETAILS_MAX + 10];
        memset(longline, 'a', sizeof longline);
        memcpy(longline + HAWKBIT_DETAILS_MAX - 1, "\xc3\xa9", 2); /* é across the limit */
        longline[sizeof longline - 1] = 0;
        s = ddi_feedback_body("proceeding", "none", longline, 1);
        json_object *o = json_tokener_parse(s), *st, *det;
        CU_ASSERT_FATAL(o && json_object_object_get_ex(o, "status", &st) &&
                        json_object_object_get_ex(st, "details", &det));
        CU_ASSERT_EQUAL(strlen(json_object_get_string(json_object_array_get_idx(det, 0))),
                        HAWKBIT_DETAILS_MAX - 1);
        json_object_put(o);
        free(s);
        CU_ASSERT(!ddi_feedback_closes("not json"));
}

static int collect(struct outbox_record *r, void *userdata)
{
        struct outbox_record *out = userdata;
        outbox_record_clear(out);
        *out = *r;
        memset(r, 0, sizeof *r);
        return 0;
}

static unsigned damaged_calls;
static void on_damaged(const char *path, const char *kept_as, void *userdata)
{
        (void) path;
        (void) kept_as;
        (void) userdata;
        damaged_calls++;
}

static void test_outbox_files(void)
{
        char dir[] = "/tmp/cf-test-outbox-XXXXXX";
        CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
        struct outbox_record r = {.seq = 0x2a,
                                  .cid = strdup("canfleet-00"),
                                  .action_id = 5,
                                  .cancel = true,
                                  .body = strdup("{\"status\":{\"execution\":\"closed\"}}")};
        CU_ASSERT_EQUAL(outbox_record_write(dir, &r), 0);
        char want[128];
        snprintf(want, sizeof want, "%s/000000000000002a.json", dir);
        CU_ASSERT_STRING_EQUAL(r.path ? r.path : "", want);
        /* A leftover temporary file and a damaged one. */
        char p[160];
        snprintf(p, sizeof p, "%s/000000000000002b.json.tmp", dir);
        FILE *f = fopen(p, "w");
        fputs("{", f);
        fclose(f);
        snprintf(p, sizeof p, "%s/000000000000002c.json", dir);
        f = fopen(p, "w");
        fputs("{\"controller_id\":\"c\",\"action_id\":1,\"body\":\"not json\"}", f);
        fclose(f);
        struct outbox_record got = {0};
        CU_ASSERT_EQUAL(outbox_records_load(dir, collect, on_damaged, &got), 0);
        CU_ASSERT_EQUAL(got.seq, 0x2a);
        CU_ASSERT_STRING_EQUAL(got.cid ? got.cid : "", "canfleet-00");
        CU_ASSERT_EQUAL(got.action_id, 5);
        CU_ASSERT(got.cancel);
        CU_ASSERT_STRING_EQUAL(got.body ? got.body : "", r.body);
        CU_ASSERT_EQUAL(damaged_calls, 1);
        snprintf(p, sizeof p, "%s/000000000000002b.json.tmp", dir);
        CU_ASSERT_NOT_EQUAL(access(p, F_OK), 0);
        snprintf(p, sizeof p, "%s/000000000000002c.json.corrupt", dir);
        CU_ASSERT_EQUAL(access(p, F_OK), 0);
        CU_ASSERT_EQUAL(unlink(p), 0);
        CU_ASSERT_EQUAL(outbox_record_remove(&got), 0);
        CU_ASSERT_EQUAL(outbox_record_remove(&got), 0);
        outbox_record_clear(&got);
        outbox_record_clear(&r);
        CU_ASSERT_EQUAL(rmdir(dir), 0); /* nothing else was left behind */
}

static void on_alarm(int sig)
{
        (void) sig;
        static const char m[] = "\nblocked for 10 s: a FIFO in the outbox was opened\n";
        (void) !write(STDERR_FILENO, m, sizeof m - 1);
        _exit(1);
}

/* A FIFO named like a record is set aside unopened (opening it would block canfleetd's start for
 * ever); one at a record's tmp name is replaced, not written into. */
static void test_outbox_fifos(void)
{
        char dir[] = "/tmp/cf-test-outbox-XXXXXX";
        CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
        char fifo[160], tmp[160], p[180];
        snprintf(fifo, sizeof fifo, "%s/0000000000000007.json", dir);
        snprintf(tmp, sizeof tmp, "%s/0000000000000008.json.tmp", dir);
        CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
        CU_ASSERT_EQUAL_FATAL(mkfifo(tmp, 0600), 0);
        signal(SIGALRM, on_alarm);
        alarm(10);
        struct outbox_record r = {.seq = 8,
                                  .cid = strdup("canfleet-00"),
                                  .action_id = 9,
                                  .body = strdup("{\"status\":{\"execution\":\"proceeding\"}}")};
        CU_ASSERT_EQUAL(outbox_record_write(dir, &r), 0);
        damaged_calls = 0;
        struct outbox_record got = {0};
        CU_ASSERT_EQUAL(outbox_records_load(dir, collect, on_damaged, &got), 0);
        alarm(0);
        CU_ASSERT_EQUAL(got.seq, 8);
        CU_ASSERT_EQUAL(got.action_id, 9);
        CU_ASSERT_EQUAL(damaged_calls, 1);
        snprintf(p, sizeof p, "%s.corrupt", fifo);
        CU_ASSERT_EQUAL(access(p, F_OK), 0);
        CU_ASSERT_EQUAL(unlink(p), 0);
        CU_ASSERT_EQUAL(outbox_record_remove(&got), 0);
        outbox_record_clear(&got);
        outbox_record_clear(&r);
        CU_ASSERT_EQUAL(rmdir(dir), 0);
}

/* The actions of a job as canfleetctl jobs lists them: a FIFO at the file's name is refused at once
 * (reading it would block the D-Bus answer for ever). */
static void test_job_actions_fifo(void)
{
        char dir[] = "/tmp/cf-test-hbjobs-XXXXXX";
        CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
        char p[160];
        snprintf(p, sizeof p, "%s/hawkbit-jobs", dir);
        CU_ASSERT_EQUAL_FATAL(mkdir(p, 0700), 0);
        snprintf(p, sizeof p, "%s/hawkbit-jobs/3", dir);
        FILE *f = fopen(p, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs("7 12 40\n", f);
        fclose(f);
        snprintf(p, sizeof p, "%s/hawkbit-jobs/5", dir);
        CU_ASSERT_EQUAL_FATAL(mkfifo(p, 0600), 0);
        struct cf_conf conf = {.state_dir = dir};
        Manager m = {.conf = &conf};
        uint64_t *ids = NULL;
        size_t n = 0;
        CU_ASSERT_EQUAL(fleet_server_job_actions(&m, 3, &ids, &n), 0);
        CU_ASSERT_EQUAL_FATAL(n, 3);
        CU_ASSERT(ids[0] == 7 && ids[1] == 12 && ids[2] == 40);
        free(ids);
        signal(SIGALRM, on_alarm);
        alarm(10);
        CU_ASSERT(fleet_server_job_actions(&m, 5, &ids, &n) < 0);
        alarm(0);
        CU_ASSERT_PTR_NULL(ids);
        CU_ASSERT_EQUAL(n, 0);
        CU_ASSERT_EQUAL(fleet_server_job_actions(&m, 4, &ids, &n), 0); /* none yet */
        CU_ASSERT_EQUAL(n, 0);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"polling.sleep HH:MM:SS", test_sleep},
            {"root resource", test_root},
            {"deployment: one *.cfb artifact, or a reason", test_deployment},
            {"cancel request", test_cancel},
            {"configData and feedback bodies", test_bodies},
            {"outbox files: write, load, damaged, leftovers", test_outbox_files},
            {"outbox FIFOs: set aside or replaced, never opened", test_outbox_fifos},
            {"a job's action ids: a FIFO refused, never opened", test_job_actions_fifo},
            {NULL, NULL},
        };
        return cf_test_run("hawkbit-ddi", tests);
}
