/* Tests of daemon/job-store.c: a job round-trips through its file; writes are atomic; leftovers of a torn
 * write are ignored. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf-test.h"
#include "job-store.h"

static char dir[64];
static char state[96], cache[96];

static void mkfixture(void)
{
        snprintf(dir, sizeof dir, "/tmp/cf-test-store-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
        snprintf(state, sizeof state, "%s/state/deep", dir);
        snprintf(cache, sizeof cache, "%s/cache", dir);
        CU_ASSERT_EQUAL_FATAL(job_store_prepare(state, cache), 0);
}

static void rmfixture(void)
{
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
}

static const char *sha = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static void make_record(struct job_record *r, unsigned id, const char *step0)
{
        static struct job_record_node nodes[2];
        memset(nodes, 0, sizeof nodes);
        snprintf(nodes[0].bus, sizeof nodes[0].bus, "bus0");
        nodes[0].station = 3;
        snprintf(nodes[0].step, sizeof nodes[0].step, "%s", step0);
        nodes[0].bytes_done = 1234;
        nodes[0].bytes_total = 40000;
        snprintf(nodes[1].bus, sizeof nodes[1].bus, "bus-1");
        nodes[1].station = 63;
        snprintf(nodes[1].step, sizeof nodes[1].step, "failed");
        nodes[1].error = (char *) "bus-1:63: no answer to CONNECT after 3 tries";
        nodes[1].bytes_total = 40000;
        *r = (struct job_record){
            .id = id, .created = 1700000000000000ULL, .force = true, .nodes = nodes, .n_nodes = 2};
        snprintf(r->state, sizeof r->state, "running");
        snprintf(r->image, sizeof r->image, "%s", sha);
}

static void test_round_trip(void)
{
        mkfixture();
        struct job_record r;
        make_record(&r, 7, "rebooting");
        CU_ASSERT_EQUAL(job_store_save(state, &r), 0);
        make_record(&r, 2, "programming");
        r.cancel = true;
        CU_ASSERT_EQUAL(job_store_save(state, &r), 0);

        struct job_record *recs;
        size_t n;
        unsigned max_id;
        CU_ASSERT_EQUAL_FATAL(job_store_load_all(state, &recs, &n, &max_id), 0);
        CU_ASSERT_EQUAL_FATAL(n, 2);
        CU_ASSERT_EQUAL(max_id, 7);
        CU_ASSERT_EQUAL(recs[0].id, 2); /* sorted */
        CU_ASSERT_TRUE(recs[0].cancel);
        CU_ASSERT_STRING_EQUAL(recs[0].nodes[0].step, "programming");
        struct job_record *x = &recs[1];
        CU_ASSERT_EQUAL(x->id, 7);
        CU_ASSERT_STRING_EQUAL(x->state, "running");
        CU_ASSERT_STRING_EQUAL(x->image, sha);
        CU_ASSERT_EQUAL(x->created, 1700000000000000ULL);
        CU_ASSERT_TRUE(x->force);
        CU_ASSERT_FALSE(x->cancel);
        CU_ASSERT_EQUAL_FATAL(x->n_nodes, 2);
        CU_ASSERT_STRING_EQUAL(x->nodes[0].bus, "bus0");
        CU_ASSERT_EQUAL(x->nodes[0].station, 3);
        CU_ASSERT_STRING_EQUAL(x->nodes[0].step, "rebooting");
        CU_ASSERT_EQUAL(x->nodes[0].bytes_done, 1234);
        CU_ASSERT_PTR_NULL(x->nodes[0].error);
        CU_ASSERT_STRING_EQUAL(x->nodes[1].bus, "bus-1");
        CU_ASSERT_EQUAL(x->nodes[1].station, 63);
        CU_ASSERT_STRING_EQUAL(x->nodes[1].error, "bus-1:63: no answer to CONNECT after 3 tries");
        for (size_t i = 0; i < n; i++)
                job_record_done(&recs[i]);
        free(recs);

        CU_ASSERT_EQUAL(job_store_remove(state, 7), 0);
        CU_ASSERT_EQUAL_FATAL(job_store_load_all(state, &recs, &n, &max_id), 0);
        CU_ASSERT_EQUAL(n, 1);
        CU_ASSERT_EQUAL(max_id, 2);
        job_record_done(&recs[0]);
        free(recs);
        rmfixture();
}

static void write_raw(const char *name, const char *text)
{
        char p[160];
        snprintf(p, sizeof p, "%s/jobs/%s", state, name);
        FILE *f = fopen(p, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(text, f);
        fclose(f);
}

static bool exists(const char *name)
{
        char p[160];
        snprintf(p, sizeof p, "%s/jobs/%s", state, name);
        return access(p, F_OK) == 0;
}

static void test_atomic(void)
{
        mkfixture();
        struct job_record r;
        make_record(&r, 5, "erasing");
        CU_ASSERT_EQUAL(job_store_save(state, &r), 0);
        /* A newer write torn before its rename: the tmp file is half of a job. */
        write_raw("5.json.tmp", "{\"id\": 5, \"state\": \"running\", \"nod");
        /* A tmp file of a job that never got its first rename. */
        write_raw("9.json.tmp", "{\"id\": 9");
        /* A corrupted job file: skipped, but its id is not reused. */
        write_raw("8.json", "garbage");
        CU_ASSERT_TRUE(exists("5.json.tmp"));

        struct job_record *recs;
        size_t n;
        unsigned max_id;
        CU_ASSERT_EQUAL_FATAL(job_store_load_all(state, &recs, &n, &max_id), 0);
        CU_ASSERT_EQUAL_FATAL(n, 1);
        CU_ASSERT_EQUAL(recs[0].id, 5);
        CU_ASSERT_STRING_EQUAL(recs[0].nodes[0].step, "erasing");
        CU_ASSERT_EQUAL(max_id, 8);
        CU_ASSERT_FALSE(exists("5.json.tmp"));
        CU_ASSERT_FALSE(exists("9.json.tmp"));
        job_record_done(&recs[0]);
        free(recs);

        /* A save leaves no tmp file behind and replaces the old content whole. */
        make_record(&r, 5, "verifying");
        CU_ASSERT_EQUAL(job_store_save(state, &r), 0);
        CU_ASSERT_FALSE(exists("5.json.tmp"));
        CU_ASSERT_EQUAL_FATAL(job_store_load_all(state, &recs, &n, &max_id), 0);
        CU_ASSERT_STRING_EQUAL(recs[0].nodes[0].step, "verifying");
        job_record_done(&recs[0]);
        free(recs);
        rmfixture();
}

static void test_image_cache(void)
{
        mkfixture();
        uint8_t img[4096], *back = NULL;
        size_t size;
        for (unsigned i = 0; i < sizeof img; i++)
                img[i] = (uint8_t) (i * 7);
        CU_ASSERT_EQUAL(job_store_put_image(cache, sha, img, sizeof img), 0);
        CU_ASSERT_EQUAL_FATAL(job_store_get_image(cache, sha, sizeof img, &back, &size), 0);
        CU_ASSERT_EQUAL(size, sizeof img);
        CU_ASSERT_EQUAL(memcmp(back, img, sizeof img), 0);
        free(back);
        CU_ASSERT_EQUAL(job_store_get_image(cache, sha, 100, &back, &size), -EFBIG);
        CU_ASSERT_EQUAL(job_store_put_image(cache, "../../etc/passwd", img, 1), -EINVAL);
        CU_ASSERT_EQUAL(job_store_drop_image(cache, sha), 0);
        CU_ASSERT_EQUAL(job_store_get_image(cache, sha, sizeof img, &back, &size), -ENOENT);
        rmfixture();
}

static void free_all(struct job_record *recs, size_t n)
{
        for (size_t i = 0; i < n; i++)
                job_record_done(&recs[i]);
        free(recs);
}

/* Hand-edited or damaged state is detected and handled, never loaded twice nor blocking. */
static void test_damaged(void)
{
        mkfixture();
        struct job_record r;
        make_record(&r, 1, "programming");
        CU_ASSERT_EQUAL(job_store_save(state, &r), 0);
        /* the same job under a second spelling of its id */
        write_raw("01.json",
                  "{\"id\": 1, \"state\": \"running\", \"created\": 1, \"finished\": 0, \"image\": "
                  "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\", \"nodes\": []}");
        write_raw("1.json~", "{}");
        write_raw("+3.json", "{}");
        /* a FIFO named as a job file: opening it for reading would block for ever */
        char p[160];
        snprintf(p, sizeof p, "%s/jobs/4.json", state);
        CU_ASSERT_EQUAL_FATAL(mkfifo(p, 0644), 0);
        /* the same node twice in one job; and an unknown state, kept for the manager to judge */
        write_raw("6.json",
                  "{\"id\": 6, \"state\": \"paused\", \"created\": 1, \"finished\": 0, \"image\": "
                  "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\", \"nodes\": ["
                  "{\"bus\": \"bus0\", \"station\": 2, \"step\": \"programming\", \"error\": \"\", "
                  "\"bytes_done\": 0, \"bytes_total\": 9},"
                  "{\"bus\": \"bus0\", \"station\": 3, \"step\": \"queued\", \"error\": \"\", "
                  "\"bytes_done\": 0, \"bytes_total\": 9},"
                  "{\"bus\": \"bus0\", \"station\": 2, \"step\": \"queued\", \"error\": \"\", "
                  "\"bytes_done\": 0, \"bytes_total\": 9}]}");
        /* the highest id there is */
        write_raw("4294967295.json",
                  "{\"id\": 4294967295, \"state\": \"done\", \"created\": 1, \"finished\": 2, \"image\": "
                  "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\", \"nodes\": []}");

        struct job_record *recs;
        size_t n;
        unsigned max_id;
        CU_ASSERT_EQUAL_FATAL(job_store_load_all(state, &recs, &n, &max_id), 0);
        CU_ASSERT_EQUAL_FATAL(n, 3);
        CU_ASSERT_EQUAL(recs[0].id, 1);
        CU_ASSERT_EQUAL(recs[0].n_nodes, 2); /* 1.json, not 01.json's empty list */
        CU_ASSERT_EQUAL(recs[1].id, 6);
        CU_ASSERT_STRING_EQUAL(recs[1].state, "paused");
        CU_ASSERT_EQUAL_FATAL(recs[1].n_nodes, 3);
        CU_ASSERT_STRING_EQUAL(recs[1].nodes[0].step, "programming");
        CU_ASSERT_STRING_EQUAL(recs[1].nodes[1].step, "queued");
        CU_ASSERT_STRING_EQUAL(recs[1].nodes[2].step, "failed");
        CU_ASSERT_PTR_NOT_NULL_FATAL(recs[1].nodes[2].error);
        CU_ASSERT_PTR_NOT_NULL(strstr(recs[1].nodes[2].error, "listed twice"));
        CU_ASSERT_EQUAL(recs[2].id, 4294967295u);
        CU_ASSERT_EQUAL(max_id, 4294967295u);
        free_all(recs, n);
        rmfixture();
}

/* A FIFO at a cached image's name is refused without blocking. */
static void test_image_fifo(void)
{
        mkfixture();
        char p[200];
        snprintf(p, sizeof p, "%s/images/%s.img", cache, sha);
        CU_ASSERT_EQUAL_FATAL(mkfifo(p, 0644), 0);
        uint8_t *back = NULL;
        size_t size;
        CU_ASSERT_EQUAL(job_store_get_image(cache, sha, 4096, &back, &size), -EBADFD);
        /* and a FIFO at the tmp name of a write is replaced, not written into */
        snprintf(p, sizeof p, "%s/jobs/3.json.tmp", state);
        CU_ASSERT_EQUAL_FATAL(mkfifo(p, 0644), 0);
        struct job_record r;
        make_record(&r, 3, "queued");
        CU_ASSERT_EQUAL(job_store_save(state, &r), 0);
        rmfixture();
}

/* The log: each change one record; loading applies those past the snapshot, ignores a torn last one,
 * and a snapshot written later is never undone by older records. */
static void test_log(void)
{
        mkfixture();
        struct job_record r;
        make_record(&r, 4, "queued");
        r.seq = 10;
        CU_ASSERT_EQUAL(job_store_save(state, &r), 0);
        int fd;
        CU_ASSERT_EQUAL_FATAL(job_store_log_open(state, 4, &fd), 0);
        struct job_record_node n = {.station = 3, .bytes_done = 6, .bytes_total = 40000};
        snprintf(n.bus, sizeof n.bus, "bus0");
        snprintf(n.step, sizeof n.step, "programming");
        /* older than the snapshot: already in it */
        CU_ASSERT_EQUAL(job_store_append_node(fd, 9, 0, &n, false), 0);
        snprintf(n.step, sizeof n.step, "rebooting");
        CU_ASSERT_EQUAL(job_store_append_node(fd, 11, 0, &n, true), 0);
        n.error = (char *) "bus-1:63: \"quoted\"\nnew line";
        snprintf(n.step, sizeof n.step, "failed");
        CU_ASSERT_EQUAL(job_store_append_node(fd, 12, 1, &n, false), 0);
        CU_ASSERT_EQUAL(job_store_append_job(fd, 13, "running", 0, true, false), 0);
        /* a torn append */
        CU_ASSERT_EQUAL(write(fd, "{\"seq\": 14, \"node\": 0, \"st", 26), 26);
        close(fd);

        struct job_record *recs;
        size_t cnt;
        unsigned max_id;
        CU_ASSERT_EQUAL_FATAL(job_store_load_all(state, &recs, &cnt, &max_id), 0);
        CU_ASSERT_EQUAL_FATAL(cnt, 1);
        CU_ASSERT_EQUAL(recs[0].seq, 13);
        CU_ASSERT_TRUE(recs[0].cancel);
        CU_ASSERT_STRING_EQUAL(recs[0].nodes[0].step, "rebooting");
        CU_ASSERT_EQUAL(recs[0].nodes[0].bytes_done, 6);
        CU_ASSERT_STRING_EQUAL(recs[0].nodes[1].step, "failed");
        CU_ASSERT_STRING_EQUAL(recs[0].nodes[1].error, "bus-1:63: \"quoted\"\nnew line");

        /* compaction: the snapshot with seq 13, then the log removed */
        CU_ASSERT_EQUAL(job_store_save(state, &recs[0]), 0);
        CU_ASSERT_FALSE(exists("4.log"));
        free_all(recs, cnt);

        /* a crash between a snapshot's rename and the log's removal: old records are skipped */
        make_record(&r, 4, "done");
        r.seq = 20;
        CU_ASSERT_EQUAL(job_store_save(state, &r), 0);
        CU_ASSERT_EQUAL_FATAL(job_store_log_open(state, 4, &fd), 0);
        snprintf(n.step, sizeof n.step, "programming");
        CU_ASSERT_EQUAL(job_store_append_node(fd, 19, 0, &n, false), 0);
        /* a record that is not one ends the replay */
        CU_ASSERT_EQUAL(write(fd, "garbage\n", 8), 8);
        snprintf(n.step, sizeof n.step, "queued");
        CU_ASSERT_EQUAL(job_store_append_node(fd, 21, 0, &n, false), 0);
        close(fd);
        CU_ASSERT_EQUAL_FATAL(job_store_load_all(state, &recs, &cnt, &max_id), 0);
        CU_ASSERT_STRING_EQUAL(recs[0].nodes[0].step, "done");
        CU_ASSERT_EQUAL(recs[0].seq, 20);
        free_all(recs, cnt);

        /* an old file, without seq, loads as before */
        write_raw("9.json",
                  "{\"id\": 9, \"state\": \"running\", \"created\": 1, \"finished\": 0, \"force\": false, "
                  "\"cancel\": false, \"image\": "
                  "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\", \"nodes\": ["
                  "{\"bus\": \"bus0\", \"station\": 2, \"step\": \"verifying\", \"error\": \"\", "
                  "\"bytes_done\": 5, \"bytes_total\": 9}]}");
        CU_ASSERT_EQUAL_FATAL(job_store_load_all(state, &recs, &cnt, &max_id), 0);
        CU_ASSERT_EQUAL_FATAL(cnt, 2);
        CU_ASSERT_EQUAL(recs[1].id, 9);
        CU_ASSERT_EQUAL(recs[1].seq, 0);
        CU_ASSERT_STRING_EQUAL(recs[1].nodes[0].step, "verifying");
        free_all(recs, cnt);
        CU_ASSERT_TRUE(job_store_id_taken(state, 9));
        CU_ASSERT_FALSE(job_store_id_taken(state, 10));
        CU_ASSERT_EQUAL(job_store_remove(state, 4), 0);
        CU_ASSERT_FALSE(exists("4.json"));
        rmfixture();
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"round trip", test_round_trip},
            {"atomic writes, torn tmp files ignored", test_atomic},
            {"image cache", test_image_cache},
            {"damaged state: names, FIFO, duplicates, unknown state, highest id", test_damaged},
            {"FIFO in the image cache and at a tmp name", test_image_fifo},
            {"append-only log, torn record, compaction, old files", test_log},
            {NULL, NULL},
        };
        return cf_test_run("daemon-job-store", tests);
}
