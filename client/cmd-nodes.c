/* canfleetctl nodes|scan: the nodes canfleetd knows, as a table sized to the terminal or as JSON. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
        "                last_error, last_seen_us (null: unknown)\n"

static void help_nodes(void)
{
        printf("Usage: canfleetctl nodes [BUS:SA|GLOB ...] [--bus NAME ...] [--full] [--json]\n"
               "\n"
               "List the nodes canfleetd knows: BUS:SA, state, mode, running version, hardware\n"
               "id, UID and last error. Without arguments every node; else the nodes named,\n"
               "matched by a glob ('bus0:*') or on a bus named with --bus. The table keeps to\n"
               "the terminal's width (80 columns when piped): the UID column goes first, then\n"
               "long errors are cut.\n"
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

static int print_node_table(const struct cf_node_info *v, size_t n, const bool *selected, bool full)
{
        static const char *const headers[] = {"NODE",  "STATE", "MODE",      "VERSION",
                                              "HW-ID", "UID",   "LAST ERROR"};
        static const unsigned flags[] = {0, 0, 0, 0, 0, CF_COL_OPTIONAL, CF_COL_SHRINK};
        struct cf_table *t = cf_table_new(7, headers, flags);
        int r = 0;

        if (!t)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        for (size_t i = 0; i < n && r >= 0; i++) {
                char name[64], hw[8] = "";
                if (selected && !selected[i])
                        continue;
                cf_node_name(&v[i], name, sizeof(name));
                if (v[i].hardware_id)
                        snprintf(hw, sizeof(hw), "0x%04x", v[i].hardware_id);
                const char *cells[] = {name,
                                       v[i].state,
                                       v[i].mode,
                                       v[i].version,
                                       hw,
                                       v[i].uid,
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
