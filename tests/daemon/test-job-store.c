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

int main(void)
{
        static const struct cf_test tests[] = {
            {"round trip", test_round_trip},
            {"atomic writes, torn tmp files ignored", test_atomic},
            {"image cache", test_image_cache},
            {NULL, NULL},
        };
        return cf_test_run("daemon-job-store", tests);
}
