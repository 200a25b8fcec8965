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

/* A serial node's protocol, part and identity (docs/design.md §8) go through snapshot and log; a file
 * of an older version, without them, still loads (empty: not known yet); a wrong type is refused. */
static void test_serial(void)
{
        mkfixture();
        struct inv_node lpc = node("lpc0", 1, "3.1.0", "done");
        lpc.identified = lpc.has_image = false;
        snprintf(lpc.protocol, sizeof lpc.protocol, "lpc-isp");
        snprintf(lpc.part, sizeof lpc.part, "0x26013F37");
        snprintf(lpc.identity, sizeof lpc.identity,
                 "LPC1768 0x26013F37, boot code 4.1, serial 0A1B2C3D-00000000-11111111-22222222");
        struct inv_node adi = node("adi0", 1, "2.0.0", "done");
        snprintf(adi.protocol, sizeof adi.protocol, "adi-uart");
        snprintf(adi.part, sizeof adi.part, "ADuCM360");
        snprintf(adi.identity, sizeof adi.identity, "ADuCM360, loader version 1.2");
        CU_ASSERT_EQUAL(inventory_save(dir, &lpc, 1, 1), 0);
        int fd = -1;
        CU_ASSERT_EQUAL(inventory_append(dir, &fd, 2, &adi), 0);
        close(fd);
        /* a record of an older canfleetd: no protocol, part nor identity */
        append_text("nodes.log", "{\"seq\": 3, \"bus\": \"old0\", \"station\": 1, \"configured\": true, "
                                 "\"identified\": false, \"uid\": \"\", \"hw_id\": 0, \"boot_version\": 0, "
                                 "\"has_image\": false, \"version\": \"1.0.0\", \"release\": 1, "
                                 "\"payload_sha\": \"\", \"mode\": 0, \"last_update\": 0, \"last_seen\": 5, "
                                 "\"last_result\": \"done\", \"last_job\": 1, \"last_time\": 6}\n");
        struct inv_node *got;
        size_t n;
        uint64_t seq;
        CU_ASSERT_EQUAL_FATAL(inventory_load(dir, &got, &n, &seq), 0);
        CU_ASSERT_EQUAL_FATAL(n, 3);
        CU_ASSERT_EQUAL(seq, 3);
        CU_ASSERT_STRING_EQUAL(got[0].protocol, "lpc-isp");
        CU_ASSERT_STRING_EQUAL(got[0].part, "0x26013F37");
        CU_ASSERT_STRING_EQUAL(got[0].identity, lpc.identity);
        CU_ASSERT_STRING_EQUAL(got[0].version, "3.1.0");
        CU_ASSERT_EQUAL(got[0].release, 7);
        CU_ASSERT_STRING_EQUAL(got[1].protocol, "adi-uart");
        CU_ASSERT_STRING_EQUAL(got[1].part, "ADuCM360");
        CU_ASSERT_STRING_EQUAL(got[1].identity, "ADuCM360, loader version 1.2");
        CU_ASSERT_STRING_EQUAL(got[2].bus, "old0");
        CU_ASSERT_STRING_EQUAL(got[2].protocol, "");
        CU_ASSERT_STRING_EQUAL(got[2].part, "");
        CU_ASSERT_STRING_EQUAL(got[2].identity, "");
        CU_ASSERT_STRING_EQUAL(got[2].version, "1.0.0");
        free(got);

        /* the snapshot keeps them too; a CAN node's record has none of the keys */
        struct inv_node can = node("bus0", 4, "1.0.0", "");
        struct inv_node both[2] = {lpc, can};
        CU_ASSERT_EQUAL(inventory_save(dir, both, 2, 9), 0);
        CU_ASSERT_EQUAL_FATAL(inventory_load(dir, &got, &n, &seq), 0);
        CU_ASSERT_EQUAL_FATAL(n, 2);
        CU_ASSERT_STRING_EQUAL(got[0].identity, lpc.identity);
        CU_ASSERT_STRING_EQUAL(got[1].protocol, "");
        free(got);
        char p[128], text[4096];
        snprintf(p, sizeof p, "%s/nodes.json", dir);
        FILE *fp = fopen(p, "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
        size_t k = fread(text, 1, sizeof text - 1, fp);
        text[k] = 0;
        fclose(fp);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"protocol\":\"lpc-isp\""));
        const char *first = strstr(text, "\"protocol\"");
        CU_ASSERT_PTR_NULL(first ? strstr(first + 1, "\"protocol\"") : NULL); /* once: not the CAN node's */

        /* an identity that is not a string: that record is refused (the log ends there) */
        append_text("nodes.log", "{\"seq\": 10, \"bus\": \"lpc0\", \"station\": 1, \"configured\": true, "
                                 "\"identified\": false, \"uid\": \"\", \"hw_id\": 0, \"boot_version\": 0, "
                                 "\"has_image\": false, \"version\": \"9.9.9\", \"release\": 1, "
                                 "\"payload_sha\": \"\", \"mode\": 0, \"last_update\": 0, \"last_seen\": 5, "
                                 "\"last_result\": \"done\", \"last_job\": 1, \"last_time\": 6, "
                                 "\"protocol\": \"lpc-isp\", \"part\": 7, \"identity\": \"x\"}\n");
        CU_ASSERT_EQUAL_FATAL(inventory_load(dir, &got, &n, &seq), 0);
        CU_ASSERT_EQUAL(seq, 9);
        CU_ASSERT_STRING_EQUAL(got[0].version, "3.1.0");
        free(got);
        rmfixture();
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"round trip: snapshot, log, later records replace, old ones skipped", test_round_trip},
            {"missing, damaged snapshot, torn and bad log lines", test_damaged},
            {"serial nodes: protocol, part, identity; older files without them", test_serial},
            {NULL, NULL},
        };
        return cf_test_run("daemon-inventory", tests);
}
