/* Tests of daemon/inventory.c: the node inventory round-trips through its snapshot and log; a later
 * record of a node replaces the earlier; records already in the snapshot are not applied again; a torn
 * last line and a damaged snapshot lose only what they held. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf-test.h"
#include "inventory.h"

static char dir[64];

static void mkfixture(void)
{
        snprintf(dir, sizeof dir, "/tmp/cf-test-inv-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
}

static void rmfixture(void)
{
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
}

static struct inv_node node(const char *bus, uint16_t sa, const char *version, const char *result)
{
        struct inv_node n = {.station = sa, .configured = true, .identified = true, .has_image = true,
                             .hw_id = 0x0407, .boot_version = 0x0100, .release = 7, .mode = 1,
                             .last_update = 1, .last_seen = 1700000000000001ULL, .last_job = 3,
                             .last_time = 1700000000000002ULL};
        snprintf(n.bus, sizeof n.bus, "%s", bus);
        snprintf(n.uid, sizeof n.uid, "0123456789abcdef01234567");
        snprintf(n.version, sizeof n.version, "%s", version);
        snprintf(n.payload_sha, sizeof n.payload_sha, "%064x", 0xab);
        snprintf(n.last_result, sizeof n.last_result, "%s", result);
        return n;
}

static void append_text(const char *name, const char *text)
{
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        int fd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0644);
        CU_ASSERT_TRUE_FATAL(fd >= 0);
        CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
}

static void test_round_trip(void)
{
        mkfixture();
        struct inv_node list[2] = {node("bus0", 1, "1.0.0", "done"), node("bus1", 63, "2.0.0", "failed")};
        CU_ASSERT_EQUAL(inventory_save(dir, list, 2, 5), 0);
        int fd = -1;
        struct inv_node later = node("bus0", 1, "1.1.0", "up-to-date");
        later.last_seen = 1800000000000000ULL;
        CU_ASSERT_EQUAL(inventory_append(dir, &fd, 4, &list[1]), 0); /* older than the snapshot: ignored */
        CU_ASSERT_EQUAL(inventory_append(dir, &fd, 6, &later), 0);
        struct inv_node scan_only = node("bus0", 9, "", "");
        scan_only.configured = false;
        scan_only.has_image = false;
        CU_ASSERT_EQUAL(inventory_append(dir, &fd, 7, &scan_only), 0);
        close(fd);

        struct inv_node *got;
        size_t n;
        uint64_t seq;
        CU_ASSERT_EQUAL_FATAL(inventory_load(dir, &got, &n, &seq), 0);
        CU_ASSERT_EQUAL_FATAL(n, 3);
        CU_ASSERT_EQUAL(seq, 7);
        CU_ASSERT_STRING_EQUAL(got[0].version, "1.1.0");
        CU_ASSERT_STRING_EQUAL(got[0].last_result, "up-to-date");
        CU_ASSERT_EQUAL(got[0].last_seen, 1800000000000000ULL);
        CU_ASSERT_STRING_EQUAL(got[1].bus, "bus1");
        CU_ASSERT_EQUAL(got[1].station, 63);
        CU_ASSERT_STRING_EQUAL(got[1].last_result, "failed");
        CU_ASSERT_EQUAL(got[1].hw_id, 0x0407);
        CU_ASSERT_EQUAL(got[1].release, 7);
        CU_ASSERT_EQUAL(got[1].last_job, 3);
        CU_ASSERT_STRING_EQUAL(got[1].uid, "0123456789abcdef01234567");
        CU_ASSERT_FALSE(got[2].configured);
        CU_ASSERT_EQUAL(got[2].station, 9);
        free(got);

        /* the snapshot folds the log in and removes it */
        CU_ASSERT_EQUAL(inventory_save(dir, list, 2, 8), 0);
        char p[128];
        snprintf(p, sizeof p, "%s/nodes.log", dir);
        CU_ASSERT_EQUAL(access(p, F_OK), -1);
        rmfixture();
}

static void test_damaged(void)
{
        mkfixture();
        struct inv_node *got;
        size_t n;
        uint64_t seq;
        /* nothing at all: an empty inventory */
        CU_ASSERT_EQUAL_FATAL(inventory_load(dir, &got, &n, &seq), 0);
        CU_ASSERT_EQUAL(n, 0);
        free(got);

        /* a damaged snapshot: the log still counts; a torn last record is ignored */
        append_text("nodes.json", "{\"seq\": 3, \"nodes\": [");
        int fd = -1;
        struct inv_node a = node("bus0", 2, "1.0.0", "");
        CU_ASSERT_EQUAL(inventory_append(dir, &fd, 4, &a), 0);
        close(fd);
        append_text("nodes.log", "{\"seq\": 5, \"bus\": \"bus0\", \"sta");
        CU_ASSERT_EQUAL_FATAL(inventory_load(dir, &got, &n, &seq), 0);
        CU_ASSERT_EQUAL_FATAL(n, 1);
        CU_ASSERT_EQUAL(got[0].station, 2);
        CU_ASSERT_EQUAL(seq, 4);
        free(got);

        /* a line that is no record ends the replay there */
        append_text("nodes.log", "\nnot json\n");
        fd = -1;
        struct inv_node b = node("bus0", 3, "1.0.0", "");
        CU_ASSERT_EQUAL(inventory_append(dir, &fd, 6, &b), 0);
        close(fd);
        CU_ASSERT_EQUAL_FATAL(inventory_load(dir, &got, &n, &seq), 0);
        CU_ASSERT_EQUAL(n, 1);
        free(got);
        rmfixture();
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"round trip: snapshot, log, later records replace, old ones skipped", test_round_trip},
            {"missing, damaged snapshot, torn and bad log lines", test_damaged},
            {NULL, NULL},
        };
        return cf_test_run("daemon-inventory", tests);
}
