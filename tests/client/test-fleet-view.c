/* Unit tests of canfleetctl's fleet view: tables that fit, progress frames that fit, node selection,
 * error texts. Linked against libcanfleetctl, no daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-client.h"
#include "cf-test.h"
#include "fleet-error.h"
#include "fleet-select.h"
#include "fleet-table.h"
#include "progress.h"

static char *render(void (*draw)(FILE *f, void *arg), void *arg)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        CU_ASSERT_FATAL(f != NULL);
        draw(f, arg);
        fclose(f);
        return buf;
}

static size_t count_lines(const char *s, size_t *widest)
{
        size_t n = 0, w = 0;
        *widest = 0;
        for (const char *p = s; *p; p++) {
                if (*p == '\n') {
                        n++;
                        w = 0;
                } else if (((unsigned char) *p & 0xC0) != 0x80 && ++w > *widest)
                        *widest = w;
        }
        return n;
}

static void test_text_cut(void)
{
        char buf[64];

        cf_text_cut(buf, sizeof(buf), "short", 10);
        CU_ASSERT_STRING_EQUAL(buf, "short");
        cf_text_cut(buf, sizeof(buf), "node did not answer PROGRAM_6", 12);
        CU_ASSERT_STRING_EQUAL(buf, "node did no…");
        CU_ASSERT_EQUAL(cf_text_width(buf), 12);
        CU_ASSERT_EQUAL(cf_text_width("…x"), 2);
}

static void draw_table(FILE *f, void *arg)
{
        static const char *const headers[] = {"NODE", "STATE", "UID", "LAST ERROR"};
        static const unsigned flags[] = {0, 0, CF_COL_OPTIONAL, CF_COL_SHRINK};
        struct cf_table *t = cf_table_new(4, headers, flags);
        const char *row1[] = {
            "gateway-left-02:63", "online", "0123456789abcdef01234567",
            "image release 1 is below the running release 2 (anti-rollback; nothing erased)"};
        const char *row2[] = {"bus0:1", NULL, "", "-"};

        CU_ASSERT_FATAL(t != NULL);
        CU_ASSERT_EQUAL(cf_table_add(t, row1), 0);
        CU_ASSERT_EQUAL(cf_table_add(t, row2), 0);
        CU_ASSERT_EQUAL(cf_table_print(t, f, *(unsigned *) arg), 0);
        cf_table_free(t);
}

static void test_table_fits(void)
{
        unsigned width = 80;
        size_t widest;
        char *out = render(draw_table, &width);

        CU_ASSERT_EQUAL(count_lines(out, &widest), 3);
        CU_ASSERT(widest < 80);
        /* the first column is as wide as the longest bus:station, the optional UID gave way */
        CU_ASSERT(strncmp(out, "NODE                STATE   LAST ERROR\n", 39) == 0);
        CU_ASSERT(strstr(out, "0123456789abcdef") == NULL);
        CU_ASSERT(strstr(out, "…") != NULL);
        free(out);

        width = 0; /* --full */
        out = render(draw_table, &width);
        CU_ASSERT(strstr(out, "0123456789abcdef01234567") != NULL);
        CU_ASSERT(strstr(out, "(anti-rollback; nothing erased)\n") != NULL);
        free(out);
}

static void test_percent_phases(void)
{
        struct cf_job_node n = {.node = "bus0:1", .step = "queued", .error = ""};
        static const char *const steps[] = {"queued",    "connecting",  "unlocking",
                                            "erasing",   "programming", "verifying",
                                            "rebooting", "confirming",  "done"};
        unsigned last = 0;

        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                n.step = (char *) steps[i];
                n.bytes_total = 1000;
                n.bytes_done = strcmp(steps[i], "programming") == 0 ? 500 : 0;
                unsigned p = cf_progress_percent(&n);
                CU_ASSERT(i == 0 || p > last);
                last = p;
        }
        CU_ASSERT_EQUAL(last, 100);
        n.step = "rebooting"; /* the reset is part of the node's progress, not after 100% */
        CU_ASSERT(cf_progress_percent(&n) > 90 && cf_progress_percent(&n) < 100);
}

static void test_duration(void)
{
        char buf[16];
        CU_ASSERT_STRING_EQUAL(cf_format_duration(buf, sizeof(buf), 42 * 1000000ull), "42s");
        CU_ASSERT_STRING_EQUAL(cf_format_duration(buf, sizeof(buf), 187 * 1000000ull), "3m07s");
        CU_ASSERT_STRING_EQUAL(cf_format_duration(buf, sizeof(buf), 3720 * 1000000ull), "1h02m");
}

/* 60 nodes: 20 done, 1 failed, 30 active, 9 queued */
static struct cf_job_info *big_job(void)
{
        static struct cf_job_node nodes[60];
        static char names[60][16];
        static struct cf_job_info job;

        for (int i = 0; i < 60; i++) {
                snprintf(names[i], sizeof(names[i]), "bus%d:%d", i / 30, i % 30 + 1);
                nodes[i] = (struct cf_job_node){.node = names[i], .error = "", .bytes_total = 8192};
                nodes[i].step = i < 20 ? "done" : i == 20 ? "failed" : i < 51 ? "programming" : "queued";
                nodes[i].bytes_done = i < 20 ? 8192 : i < 51 ? 4096 : 0;
                if (i == 20)
                        nodes[i].error = "bus0:21: node did not answer PROGRAM_6 (3 tries)";
        }
        job = (struct cf_job_info){
            .id = 7, .state = "running", .image_version = "2.0.0", .nodes = nodes, .n_nodes = 60};
        return &job;
}

static void draw_frame(FILE *f, void *arg)
{
        struct cf_progress p;
        /* a memory stream is no terminal: the display assumes 80x24 */
        cf_progress_init(&p, f, true);
        cf_progress_update(&p, arg, true);
        cf_progress_done(&p);
}

static void test_frame_fits_24_rows(void)
{
        size_t widest;
        char *out = render(draw_frame, big_job());
        size_t lines = count_lines(out, &widest);

        /* header + frame within 23 rows, the cursor's row left free */
        CU_ASSERT(lines <= 23);
        CU_ASSERT(widest < 80 + 16); /* escape sequences aside, see below */
        CU_ASSERT(strstr(out, "job 7  ") != NULL && strstr(out, "20/60 done, 1 failed, 30 active") != NULL);
        CU_ASSERT(strstr(out, "… and ") != NULL);
        CU_ASSERT(strstr(out, "bus0:1 ") == NULL); /* done nodes are not listed */
        CU_ASSERT(strstr(out, "bus1:30") == NULL); /* nor queued ones */
        for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
                char *text = strrchr(l, 'K'); /* after the last "\033[2K" */
                CU_ASSERT(cf_text_width(text && strstr(l, "\033[2K") ? text + 1 : l) < 80);
        }
        free(out);
}

static void draw_plain(FILE *f, void *arg)
{
        struct cf_progress p;
        cf_progress_init(&p, f, false);
        cf_progress_update(&p, arg, false);
        cf_progress_update(&p, arg, false); /* nothing changed: nothing printed */
        cf_progress_done(&p);
}

static void test_plain_lines(void)
{
        char *out = render(draw_plain, big_job());
        CU_ASSERT(strstr(out, "\033") == NULL);
        /* the failed node is named once, its error without the name canfleetd put before it */
        CU_ASSERT(strstr(out, "bus0:21: failed: node did not answer PROGRAM_6 (3 tries)\n") != NULL);
        CU_ASSERT(strstr(out, "bus1:30") == NULL);
        size_t widest, lines = count_lines(out, &widest);
        CU_ASSERT_EQUAL(lines, 1 + 20 + 1 + 30 + 1); /* header, steps, summary */
        free(out);
}

static void test_select(void)
{
        struct cf_bus_info buses[] = {{.name = "bus0"}, {.name = "bus1"}};
        struct cf_node_info nodes[] = {{.path = "/n/a", .bus = "bus0", .station = 1},
                                       {.path = "/n/b", .bus = "bus0", .station = 12},
                                       {.path = "/n/c", .bus = "bus1", .station = 1},
                                       {.path = "/n/d", .bus = "bus10", .station = 1}};
        struct cf_fleet f = {.m = {.buses = buses, .n_buses = 2, .n_nodes = 4}, .nodes = nodes};
        bool sel[4];
        size_t n;
        char *glob[] = {"bus0:*"}, *name[] = {"bus1:1"}, *none[] = {"bus7:*"}, *bus[] = {"bus1"},
             *bad[] = {"bus9"};

        CU_ASSERT_EQUAL(cf_fleet_select(&f, glob, 1, NULL, 0, sel, &n), CF_EXIT_OK);
        CU_ASSERT(n == 2 && sel[0] && sel[1] && !sel[2] && !sel[3]);
        CU_ASSERT_EQUAL(cf_fleet_select(&f, name, 1, bus, 1, sel, &n), CF_EXIT_OK);
        CU_ASSERT(n == 1 && sel[2]);
        CU_ASSERT_EQUAL(cf_fleet_select(&f, none, 1, NULL, 0, sel, &n), CF_EXIT_REFUSED);
        CU_ASSERT_EQUAL(cf_fleet_select(&f, NULL, 0, bad, 1, sel, &n), CF_EXIT_REFUSED);
        CU_ASSERT_EQUAL(cf_check_node_ref("update", "bus0"), CF_EXIT_USAGE);
        CU_ASSERT_EQUAL(cf_check_node_ref("update", "bus0:x"), CF_EXIT_USAGE);
        CU_ASSERT_EQUAL(cf_check_node_ref("update", "bus0:*"), CF_EXIT_OK);
}

static void test_error_text(void)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[256];

        sd_bus_error_set(&e, SD_BUS_ERROR_UNKNOWN_OBJECT, "Unknown object '/io/canfleet/Gateway1/job/99'.");
        CU_ASSERT_STRING_EQUAL(cf_bus_error_text(&e, -ENOENT, buf, sizeof(buf)), "no-such-job");
        CU_ASSERT_STRING_EQUAL(buf, "no job 99");
        sd_bus_error_free(&e);
        sd_bus_error_set(&e, "io.canfleet.Gateway1.Error.NoSuchNode", "No node \"bus9:1\"");
        CU_ASSERT_STRING_EQUAL(cf_bus_error_text(&e, -EINVAL, buf, sizeof(buf)), "no-such-node");
        CU_ASSERT_STRING_EQUAL(buf, "no node bus9:1");
        sd_bus_error_free(&e);
        /* a name with a blank keeps canfleetd's quotes */
        sd_bus_error_set(&e, "io.canfleet.Gateway1.Error.NoSuchNode", "No node \"bus 9:1\"");
        CU_ASSERT_STRING_EQUAL(cf_bus_error_text(&e, -EINVAL, buf, sizeof(buf)), "no-such-node");
        CU_ASSERT_STRING_EQUAL(buf, "no node \"bus 9:1\"");
        sd_bus_error_free(&e);
        sd_bus_error_set(&e, "io.canfleet.Gateway1.Error.NoSuchBus", "No bus \"bus77\" is configured");
        CU_ASSERT_STRING_EQUAL(cf_bus_error_text(&e, -EINVAL, buf, sizeof(buf)), "no-such-bus");
        CU_ASSERT_STRING_EQUAL(buf, "no bus bus77 is configured");
        sd_bus_error_free(&e);
        sd_bus_error_set(&e, SD_BUS_ERROR_SERVICE_UNKNOWN, "The name io.canfleet.Gateway1 was not provided");
        CU_ASSERT_STRING_EQUAL(cf_bus_error_text(&e, -EHOSTDOWN, buf, sizeof(buf)), "unreachable");
        CU_ASSERT_STRING_EQUAL(buf, "canfleetd is not running");
        sd_bus_error_free(&e);
        CU_ASSERT_STRING_EQUAL(cf_strip_node_prefix("bus0:1: no answer", "bus0:1"), "no answer");
        CU_ASSERT_STRING_EQUAL(cf_strip_node_prefix("bus0:10: no answer", "bus0:1"), "bus0:10: no answer");
        CU_ASSERT_STRING_EQUAL(cf_strip_node_prefix("bus0:1 runs 2.0.0 from bank 2 on trial", "bus0:1"),
                               "runs 2.0.0 from bank 2 on trial");
        CU_ASSERT_STRING_EQUAL(cf_strip_node_prefix("bus0:10 runs 2.0.0", "bus0:1"), "bus0:10 runs 2.0.0");
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"text_cut", test_text_cut},
            {"table_fits", test_table_fits},
            {"percent_phases", test_percent_phases},
            {"duration", test_duration},
            {"frame_fits_24_rows", test_frame_fits_24_rows},
            {"plain_lines", test_plain_lines},
            {"select", test_select},
            {"error_text", test_error_text},
            {NULL, NULL},
        };
        return cf_test_run("fleet-view", tests);
}
