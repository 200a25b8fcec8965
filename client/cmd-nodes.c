/* canfleetctl nodes|scan: the nodes canfleetd knows, as a table sized to the terminal or as JSON. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bus-client.h"
#include "cmd-fleet.h"
#include "fleet-error.h"
#include "fleet-json.h"
#include "fleet-opts.h"
#include "fleet-select.h"
#include "fleet-table.h"

#define NODE_JSON_HELP                                                                                      \
        "  node objects: node (\"BUS:SA\"), path, bus, station, state, mode, version,\n"                    \
        "                release, hw_id, uid, bootloader_version, cro_id, dto_id,\n"                        \
        "                last_error, last_seen_us (null: unknown), configured,\n"                           \
        "                running_sha256, last_update_result (done|up-to-date|failed|\n"                    \
        "                confirmed|reverted, null: none),\n"                                               \
        "                last_update_job, last_update_time_us, last_update_status,\n"                       \
        "                bank (dual-bank nodes: 1|2, else null), trial\n"                                   \
        "                (none|pending|confirmed|reverted, null for single-bank nodes),\n"                  \
        "                protocol, identity, version_source (node: the node reports it;\n"                  \
        "                flashed: a serial node, what canfleetd last flashed and\n"                        \
        "                verified)\n"

static void help_nodes(void)
{
        printf("Usage: canfleetctl nodes [BUS:SA|GLOB ...] [--bus NAME ...] [--full] [--json]\n"
               "\n"
               "List the nodes canfleetd knows: BUS:SA, state, mode, running version, hardware\n"
               "id, when it last answered (kept across restarts), UID and last error. Without\n"
               "arguments every node; else the nodes named, matched by a glob ('bus0:*') or\n"
               "on a bus named with --bus. The table keeps to the terminal's width (80\n"
               "columns when piped): the UID column goes first, then long errors are cut.\n"
               "When a dual-bank node is listed, a BANK column shows the bank it runs from and\n"
               "the state of its last swap's trial (\"2 pending\", \"1 reverted\").\n"
               "\n"
               "  --bus NAME       the nodes of bus NAME (repeatable)\n"
               "  --full           do not cut the table to the terminal's width\n" CF_JSON_HELP
               "                   {schema, nodes [node objects]}\n" NODE_JSON_HELP "\n"
               "Examples:\n"
               "  canfleetctl nodes\n"
               "  canfleetctl nodes 'bus0:*' bus1:3\n"
               "  canfleetctl nodes --json | jq -r '.nodes[] | select(.version != \"1.2.0\")'\n"
               "\n" CF_EXIT_CODES_HELP);
}

static void help_scan(void)
{
        printf("Usage: canfleetctl scan BUS [--full] [--json]\n"
               "\n"
               "Look for nodes on BUS (every station address of its scan range) and list\n"
               "those found. Needs root or group canfleet.\n"
               "\n"
               "  --full           do not cut the table to the terminal's width\n" CF_JSON_HELP
               "                   {schema, bus, nodes [node objects]}\n" NODE_JSON_HELP "\n"
               "Example:\n"
               "  canfleetctl scan bus0\n"
               "\n" CF_EXIT_CODES_HELP);
}

/* When a node last answered, as an age: "4s ago", "3h ago", "never" (kept across restarts). */
static void format_age(char *buf, size_t size, uint64_t usec)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
        if (usec == 0) {
                snprintf(buf, size, "never");
                return;
        }
        uint64_t s = now > usec ? (now - usec) / 1000000u : 0;
        if (s < 120)
                snprintf(buf, size, "%llus ago", (unsigned long long) s);
        else if (s < 7200)
                snprintf(buf, size, "%llum ago", (unsigned long long) (s / 60));
        else if (s < 172800)
                snprintf(buf, size, "%lluh ago", (unsigned long long) (s / 3600));
        else
                snprintf(buf, size, "%llud ago", (unsigned long long) (s / 86400));
}

static int print_node_table(const struct cf_node_info *v, size_t n, const bool *selected, bool full)
{
        static const char *const headers[] = {"NODE", "STATE", "MODE",      "VERSION",   "HW-ID",
                                              "SEEN", "UID", "LAST ERROR", "BANK"};
        static const unsigned flags[] = {0, 0, 0, 0, 0, 0, CF_COL_OPTIONAL, CF_COL_SHRINK, 0};
        /* A BANK column only when a dual-bank node is listed: a fleet of single-bank nodes reads as before. */
        bool dual = false;
        for (size_t i = 0; i < n; i++)
                dual |= (!selected || selected[i]) && v[i].bank != 0;
        struct cf_table *t = dual ? cf_table_new(9, (const char *const[]){"NODE", "STATE", "MODE", "VERSION",
                                                                          "BANK", "HW-ID", "SEEN", "UID",
                                                                          "LAST ERROR"},
                                                 (const unsigned[]){0, 0, 0, 0, 0, 0, 0, CF_COL_OPTIONAL,
                                                                    CF_COL_SHRINK})
                                  : cf_table_new(8, headers, flags);
        int r = 0;

        if (!t)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        for (size_t i = 0; i < n && r >= 0; i++) {
                char name[64], hw[8] = "", seen[24];
                if (selected && !selected[i])
                        continue;
                cf_node_name(&v[i], name, sizeof(name));
                if (v[i].hardware_id)
                        snprintf(hw, sizeof(hw), "0x%04x", v[i].hardware_id);
                format_age(seen, sizeof(seen), v[i].last_seen);
                /* a serial node (docs/design.md §8): its protocol for a mode, what its loader said for a uid */
                bool serial = v[i].protocol && v[i].protocol[0] && strcmp(v[i].protocol, "ccp") != 0;
                char bank[24] = "";
                if (v[i].bank)
                        snprintf(bank, sizeof(bank), "%u%s%s", v[i].bank,
                                 v[i].trial && v[i].trial[0] && strcmp(v[i].trial, "none") != 0 ? " " : "",
                                 v[i].trial && strcmp(v[i].trial, "none") != 0 ? v[i].trial : "");
                if (dual) {
                        const char *cells9[] = {name, v[i].state, v[i].mode, v[i].version, bank, hw, seen, v[i].uid,
                                                cf_strip_node_prefix(v[i].last_error, name)};
                        r = cf_table_add(t, cells9);
                        continue;
                }
                /* a serial node's version is the image canfleetd last flashed and verified on it: its
                 * loader cannot report what runs, so the column says where the version comes from */
                char version[40];
                snprintf(version, sizeof(version), "%s%s", v[i].version ? v[i].version : "",
                         serial && v[i].version && v[i].version[0] ? " (flashed)" : "");
                const char *cells[] = {name,
                                       v[i].state,
                                       serial ? v[i].protocol : v[i].mode,
                                       version,
                                       hw,
                                       seen,
                                       serial ? v[i].identity : v[i].uid,
                                       cf_strip_node_prefix(v[i].last_error, name)};
                r = cf_table_add(t, cells);
        }
        if (r >= 0)
                r = cf_table_print(t, stdout, cf_table_width(full));
        cf_table_free(t);
        return r < 0 ? cf_error(CF_EXIT_FAILED, "failed", "printing the table: %s", strerror(-r))
                     : CF_EXIT_OK;
}

static struct json_object *nodes_json(const struct cf_node_info *v, size_t n, const bool *selected)
{
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < n; i++)
                if (!selected || selected[i])
                        json_object_array_add(a, cf_json_node(&v[i]));
        return a;
}

int cmd_nodes(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        _cf_cleanup_free_ bool *selected = NULL;
        struct cf_fleet f = {0};
        struct cf_opts o;
        size_t n_selected;
        bool filtered;
        int r =
            cf_parse_opts(argc, argv, CF_OPT_JSON | CF_OPT_SELECT | CF_OPT_FULL, 0, 1024, help_nodes, &o);

        if (r >= 0)
                goto out;
        if (o.n_nodes > 0) {
                r = cf_error(CF_EXIT_USAGE, "usage",
                             "nodes: name the nodes as arguments: canfleetctl nodes 'bus0:*'");
                goto out;
        }
        for (int i = 0; i < o.n_args; i++)
                if ((r = cf_check_node_ref("nodes", o.args[i])) != CF_EXIT_OK)
                        goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_fleet_read(bus, &f)) != CF_EXIT_OK)
                goto out;
        filtered = o.n_args > 0 || o.n_buses > 0;
        if (filtered) {
                if (!(selected = calloc(f.m.n_nodes ? f.m.n_nodes : 1, sizeof(*selected)))) {
                        r = cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                        goto out;
                }
                r = cf_fleet_select(&f, o.args, (size_t) o.n_args, o.buses, o.n_buses, selected,
                                    &n_selected);
                if (r != CF_EXIT_OK)
                        goto out;
        }
        if (o.json) {
                struct json_object *doc = cf_json_document();
                if (doc)
                        json_object_object_add(doc, "nodes", nodes_json(f.nodes, f.m.n_nodes, selected));
                r = cf_json_print(doc) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
        } else
                r = print_node_table(f.nodes, f.m.n_nodes, selected, o.full);
out:
        cf_fleet_done(&f);
        cf_opts_done(&o);
        return r;
}

int cmd_scan(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        _cf_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cf_cleanup_bus_message_ sd_bus_message *reply = NULL;
        struct cf_node_info *nodes = NULL;
        char **paths = NULL;
        size_t n = 0;
        const char *p;
        struct cf_opts o;
        int r = cf_parse_opts(argc, argv, CF_OPT_JSON | CF_OPT_FULL, 1, 1, help_scan, &o);

        if (r >= 0)
                goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        r = sd_bus_call_method(bus, CF_BUS_NAME, CF_MANAGER_PATH, CF_MANAGER_IFACE, "Scan", &error, &reply,
                               "s", o.args[0]);
        if (r < 0) {
                char what[128];
                snprintf(what, sizeof(what), "scanning %s", o.args[0]);
                r = cf_bus_report_error(what, &error, r);
                goto out;
        }
        r = sd_bus_message_enter_container(reply, 'a', "o");
        while (r >= 0 && (r = sd_bus_message_read_basic(reply, 'o', &p)) > 0) {
                char **v = realloc(paths, (n + 1) * sizeof(*v));
                if (!v) {
                        r = -ENOMEM;
                        break;
                }
                paths = v;
                paths[n++] = (char *) p; /* borrowed from reply, which outlives them */
        }
        if (r < 0) {
                r = cf_error(CF_EXIT_FAILED, "failed", "scanning %s: unexpected reply: %s", o.args[0],
                             strerror(-r));
                goto out;
        }
        if ((r = cf_nodes_get(bus, paths, n, &nodes)) != CF_EXIT_OK)
                goto out;
        if (o.json) {
                struct json_object *doc = cf_json_document();
                if (doc) {
                        json_object_object_add(doc, "bus", json_object_new_string(o.args[0]));
                        json_object_object_add(doc, "nodes", nodes_json(nodes, n, NULL));
                }
                r = cf_json_print(doc) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
        } else {
                printf("%zu node%s found on %s\n", n, n == 1 ? "" : "s", o.args[0]);
                r = n > 0 ? print_node_table(nodes, n, NULL, o.full) : CF_EXIT_OK;
        }
out:
        cf_nodes_free(nodes, n);
        free(paths);
        cf_opts_done(&o);
        return r;
}

static void help_node(void)
{
        printf("Usage: canfleetctl node BUS:SA [--json]\n"
               "\n"
               "Show one node: what canfleetd knows of it (kept across restarts: state, what\n"
               "it runs, hardware id, UID, last seen, its last update's result and its own\n"
               "report of its last install) and its update history: every job canfleetd\n"
               "keeps (canfleetd.conf \"history\") that touched it, with the node's result.\n"
               "\n" CF_JSON_HELP "                   {schema, node {node object},\n"
               "                   history [{job, job_state, version, step, error,\n"
               "                   started_us, finished_us}]}\n" NODE_JSON_HELP "\n"
               "Example:\n"
               "  canfleetctl node bus0:3\n"
               "\n" CF_EXIT_CODES_HELP);
}

static void format_when(char *buf, size_t size, uint64_t usec)
{
        time_t t = (time_t) (usec / 1000000u);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "never");
}

int cmd_node(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        struct cf_fleet f = {0};
        struct cf_job_info *jobs = NULL;
        struct cf_opts o;
        const struct cf_node_info *n = NULL;
        char name[64];
        int r = cf_parse_opts(argc, argv, CF_OPT_JSON, 1, 1, help_node, &o);

        if (r >= 0)
                goto out;
        if ((r = cf_check_node_ref("node", o.args[0])) != CF_EXIT_OK)
                goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_fleet_read(bus, &f)) != CF_EXIT_OK)
                goto out;
        for (size_t i = 0; i < f.m.n_nodes && !n; i++) {
                cf_node_name(&f.nodes[i], name, sizeof(name));
                if (strcmp(name, o.args[0]) == 0)
                        n = &f.nodes[i];
        }
        if (!n) {
                r = cf_error(CF_EXIT_REFUSED, "no-such-node", "no node %s", o.args[0]);
                goto out;
        }
        if ((r = cf_jobs_get(bus, f.m.jobs, f.m.n_jobs, &jobs)) != CF_EXIT_OK)
                goto out;
        if (o.json) {
                struct json_object *doc = cf_json_document(), *h = json_object_new_array();
                for (size_t i = 0; h && i < f.m.n_jobs; i++)
                        for (size_t k = 0; k < jobs[i].n_nodes; k++) {
                                const struct cf_job_node *jn = &jobs[i].nodes[k];
                                if (strcmp(jn->node, name) != 0)
                                        continue;
                                struct json_object *x = json_object_new_object();
                                if (!x)
                                        break;
                                json_object_object_add(x, "job", json_object_new_int64(jobs[i].id));
                                json_object_object_add(x, "job_state", json_object_new_string(jobs[i].state));
                                json_object_object_add(x, "version",
                                                       cf_json_string_or_null(jobs[i].image_version));
                                json_object_object_add(x, "step", json_object_new_string(jn->step));
                                json_object_object_add(x, "error", cf_json_string_or_null(jn->error));
                                json_object_object_add(x, "started_us", jobs[i].started
                                                                            ? json_object_new_int64(
                                                                                  (int64_t) jobs[i].started)
                                                                            : NULL);
                                json_object_object_add(x, "finished_us", jobs[i].finished
                                                                             ? json_object_new_int64(
                                                                                   (int64_t) jobs[i].finished)
                                                                             : NULL);
                                json_object_array_add(h, x);
                        }
                if (doc) {
                        json_object_object_add(doc, "node", cf_json_node(n));
                        json_object_object_add(doc, "history", h);
                } else
                        json_object_put(h);
                r = cf_json_print(doc) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
                goto out;
        }
        char seen[32], when[32];
        format_when(seen, sizeof(seen), n->last_seen);
        printf("%s (%s)\n", name, n->configured ? "configured" : "found by a scan");
        printf("  state:        %s\n", n->state ? n->state : "unknown");
        bool serial = n->protocol && n->protocol[0] && strcmp(n->protocol, "ccp") != 0;
        if (serial)
                /* its loader cannot report what runs: what canfleetd last flashed and verified is the
                 * best knowledge there is (kept across restarts) */
                printf("  flashed:      %s\n",
                       n->version && n->version[0]
                           ? n->version
                           : "- (nothing canfleetd flashed and verified on this chip)");
        else
                printf("  runs:         %s (%s)\n", n->version && n->version[0] ? n->version : "-",
                       n->mode ? n->mode : "unknown");
        if (n->hardware_id)
                printf("  hw id:        0x%04x, bootloader %u\n", n->hardware_id, n->bootloader_version);
        if (n->uid && n->uid[0])
                printf("  uid:          %s\n", n->uid);
        if (n->bank)
                printf("  dual-bank:    runs from bank %u, last trial %s\n", n->bank,
                       n->trial && n->trial[0] ? n->trial : "unknown");
        if (serial) {
                printf("  protocol:     %s (serial node)\n", n->protocol);
                printf("  identity:     %s%s\n",
                       n->identity && n->identity[0] ? n->identity : "- (not met yet)",
                       n->identity && n->identity[0] && n->state && strcmp(n->state, "unknown") == 0
                           ? " (at its last session, not met since canfleetd started)"
                           : "");
                if (n->version && n->version[0])
                        printf("  version:      last flashed and verified by canfleetd (the loader "
                               "cannot report what runs)\n");
        }
        printf("  last seen:    %s\n", seen);
        if (n->last_update_result && n->last_update_result[0]) {
                format_when(when, sizeof(when), n->last_update_time);
                printf("  last update:  %s (job %u, %s)\n", n->last_update_result, n->last_update_job, when);
        } else
                printf("  last update:  none\n");
        if (n->last_update_status && n->last_update_status[0])
                printf("  node reports: last install %s\n", n->last_update_status);
        if (n->last_error && n->last_error[0])
                printf("  last error:   %s\n", cf_strip_node_prefix(n->last_error, name));
        printf("history:\n");
        size_t shown = 0;
        for (size_t i = 0; i < f.m.n_jobs; i++)
                for (size_t k = 0; k < jobs[i].n_nodes; k++) {
                        const struct cf_job_node *jn = &jobs[i].nodes[k];
                        if (strcmp(jn->node, name) != 0)
                                continue;
                        format_when(when, sizeof(when), jobs[i].finished ? jobs[i].finished : jobs[i].created);
                        const char *why = cf_strip_node_prefix(jn->error, name);
                        printf("  job %u  %s  %s  %s%s%s\n", jobs[i].id, when,
                               jobs[i].image_version && jobs[i].image_version[0] ? jobs[i].image_version : "?",
                               jn->step, why && why[0] ? ": " : "", why && why[0] ? why : "");
                        shown++;
                }
        if (!shown)
                printf("  (no job kept touched it)\n");
        r = CF_EXIT_OK;
out:
        cf_jobs_free(jobs, f.m.n_jobs);
        cf_fleet_done(&f);
        cf_opts_done(&o);
        return r;
}
