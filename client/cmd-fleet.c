/* canfleetctl status|nodes|scan|update|jobs|watch|cancel: the operator's view of canfleetd over D-Bus. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "bus-client.h"
#include "cmd-fleet.h"
#include "fleet-json.h"
#include "progress.h"

#define EXIT_CODES_HELP                                                                                     \
        "Exit status: 0 success (every node updated), 1 a node or the job failed, 2 usage error,\n"         \
        "3 canfleetd cannot be reached, 4 the job was cancelled, 5 canfleetd refused (invalid image,\n"     \
        "hardware mismatch, permission denied, busy, no such node/bus/job).\n"

#define NODE_JSON_HELP                                                                                      \
        "  node objects: node (\"BUS:SA\"), path, bus, station, state, mode, version, release,\n"           \
        "                hardware_id, uid, bootloader_version, cro_id, dto_id, last_error, last_seen_us\n"

#define JOB_JSON_HELP                                                                                       \
        "  job objects:  id, path, state (running|done|failed|cancelled),\n"                                \
        "                image {version, hardware_id, release, sha256}, created_us, finished_us,\n"         \
        "                bytes_done, bytes_total, nodes [{node, path, step, error, bytes_done,\n"           \
        "                bytes_total}]\n"

static void help_status(void)
{
        printf("Usage: canfleetctl status [--json]\n"
               "\n"
               "Show canfleetd's version, its buses with their link state, how many nodes are in each\n"
               "state and the running jobs.\n"
               "\n"
               "  --json   print {version, buses [{name, transport, link, bitrate}],\n"
               "           nodes {total, by_state {STATE: count}}, jobs {total, running},\n"
               "           running_jobs [job objects]}\n" JOB_JSON_HELP "\n"
               "Example:\n"
               "  canfleetctl status\n"
               "\n" EXIT_CODES_HELP);
}

static void help_nodes(void)
{
        printf("Usage: canfleetctl nodes [--json]\n"
               "\n"
               "List every node canfleetd knows: BUS:SA, state, mode, running version, hardware id,\n"
               "UID and last error.\n"
               "\n"
               "  --json   print an array of node objects\n" NODE_JSON_HELP "\n"
               "Examples:\n"
               "  canfleetctl nodes\n"
               "  canfleetctl nodes --json | jq -r '.[] | select(.version != \"1.2.0\") | .node'\n"
               "\n" EXIT_CODES_HELP);
}

static void help_scan(void)
{
        printf("Usage: canfleetctl scan BUS [--json]\n"
               "\n"
               "Look for nodes on BUS (every station address of its scan range) and list those found.\n"
               "Needs root or group canfleet.\n"
               "\n"
               "  --json   print {bus, nodes [node objects]}\n" NODE_JSON_HELP "\n"
               "Example:\n"
               "  canfleetctl scan bus0\n"
               "\n" EXIT_CODES_HELP);
}

static void help_update(void)
{
        printf(
            "Usage: canfleetctl update IMAGE (--all | --node BUS:SA ...) [--force] [--no-wait] [--json]\n"
            "\n"
            "Flash IMAGE onto nodes: a signed bundle (.cfb, see canfleetctl bundle create), or a packed\n"
            "area image (canfleetctl image pack) where canfleetd.conf has \"allow_unsigned\": true.\n"
            "IMAGE may be an https:// or http:// URL, which canfleetd downloads itself (and verifies\n"
            "the same way), or file:///PATH.\n"
            "canfleetctl opens IMAGE and hands canfleetd the open file, which canfleetd reads once and\n"
            "verifies before any CAN traffic. It waits for the job and shows each node's step\n"
            "and transfer: bars redrawn in place on a terminal, one line per step and tenth otherwise.\n"
            "Interrupting canfleetctl does not stop the job (use canfleetctl cancel). Needs root or\n"
            "group canfleet.\n"
            "\n"
            "  --all            every configured node\n"
            "  --node BUS:SA    this node (repeatable; an object path works too)\n"
            "  --force          also nodes that already run this exact image\n"
            "  --no-wait        print the job's object path (--json: {id, path}) and exit\n"
            "  --json           no progress display; print the finished job as a job object\n" JOB_JSON_HELP
            "\n"
            "Examples:\n"
            "  canfleetctl update app-1.2.0.cfb --all\n"
            "  canfleetctl update app-1.2.0.cfb --node bus0:3 --node bus1:7\n"
            "  canfleetctl update https://updates.example.com/app-1.2.0.cfb --all\n"
            "  job=$(canfleetctl update app-1.2.0.cfb --all --no-wait) && canfleetctl watch \"$job\"\n"
            "\n" EXIT_CODES_HELP);
}

static void help_jobs(void)
{
        printf("Usage: canfleetctl jobs [--json]\n"
               "\n"
               "List canfleetd's jobs, oldest first: id, state, image version, node counts, progress.\n"
               "\n"
               "  --json   print an array of job objects\n" JOB_JSON_HELP "\n"
               "Example:\n"
               "  canfleetctl jobs\n"
               "\n" EXIT_CODES_HELP);
}

static void help_watch(void)
{
        printf(
            "Usage: canfleetctl watch JOB [--json]\n"
            "\n"
            "Follow a job until it ends, with the same display as update. JOB is the job's number\n"
            "(\"3\") or its object path (\"/io/canfleet/Gateway1/job/3\"). The exit status is the job's:\n"
            "0 done, 1 failed, 4 cancelled.\n"
            "\n"
            "  --json   no progress display; print the finished job as a job object\n" JOB_JSON_HELP "\n"
            "Examples:\n"
            "  canfleetctl watch 3\n"
            "  canfleetctl watch /io/canfleet/Gateway1/job/3\n"
            "\n" EXIT_CODES_HELP);
}

static void help_cancel(void)
{
        printf("Usage: canfleetctl cancel JOB [--no-wait]\n"
               "\n"
               "Stop a job. Nodes not yet reset keep their old firmware; a node already rebooting into\n"
               "the new image finishes. Waits until the job has stopped, unless --no-wait. JOB is the\n"
               "job's number (\"3\") or its object path. Needs root or group canfleet.\n"
               "\n"
               "Example:\n"
               "  canfleetctl cancel 3\n"
               "\n" EXIT_CODES_HELP);
}

enum { ARG_JSON = 0x100, ARG_NO_WAIT, ARG_FORCE, ARG_ALL, ARG_NODE };

/* Options shared by the commands; each command says which it accepts. */
struct opts {
        bool json;
        bool no_wait;
        bool force;
        bool all;
        char **nodes; /* NULL-terminated */
        size_t n_nodes;
        char **args; /* positional arguments (into argv) */
        int n_args;
};

static void opts_done(struct opts *o)
{
        free(o->nodes);
}

#define OPT_JSON    (1u << 0)
#define OPT_NO_WAIT (1u << 1)
#define OPT_UPDATE  (1u << 2)

/* Returns -1 to go on, or the exit code to leave with (help printed: 0, usage error: 2). */
static int parse_opts(int argc, char **argv, unsigned accepted, int min_args, int max_args,
                      void (*help)(void), struct opts *o)
{
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"json", no_argument, NULL, ARG_JSON},
            {"no-wait", no_argument, NULL, ARG_NO_WAIT},
            {"force", no_argument, NULL, ARG_FORCE},
            {"all", no_argument, NULL, ARG_ALL},
            {"node", required_argument, NULL, ARG_NODE},
            {0},
        };
        const char *cmd = argv[0];
        int c;

        *o = (struct opts){0};
        optind = 0; /* GNU: restart scanning, argv is the command's own */
        opterr = 0; /* our own messages name the command */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                unsigned need = 0;
                switch (c) {
                case 'h':
                        help();
                        return CF_EXIT_OK;
                case ARG_JSON:
                        need = OPT_JSON;
                        o->json = true;
                        break;
                case ARG_NO_WAIT:
                        need = OPT_NO_WAIT;
                        o->no_wait = true;
                        break;
                case ARG_FORCE:
                        need = OPT_UPDATE;
                        o->force = true;
                        break;
                case ARG_ALL:
                        need = OPT_UPDATE;
                        o->all = true;
                        break;
                case ARG_NODE: {
                        need = OPT_UPDATE;
                        char **v = realloc(o->nodes, (o->n_nodes + 2) * sizeof(*v));
                        if (!v) {
                                fprintf(stderr, "canfleetctl: out of memory\n");
                                return CF_EXIT_FAILED;
                        }
                        o->nodes = v;
                        v[o->n_nodes++] = optarg;
                        v[o->n_nodes] = NULL;
                        break;
                }
                default:
                        if (optopt && optopt < ARG_JSON)
                                fprintf(stderr, "canfleetctl %s: unknown option '-%c'\n", cmd, optopt);
                        else
                                fprintf(stderr, "canfleetctl %s: unknown option or missing value: '%s'\n",
                                        cmd, argv[optind - 1]);
                        fprintf(stderr, "Try 'canfleetctl %s --help'.\n", cmd);
                        return CF_EXIT_USAGE;
                }
                if (!(accepted & need)) {
                        fprintf(stderr, "canfleetctl %s: option '%s' does not apply here\n", cmd,
                                argv[optind - 1]);
                        fprintf(stderr, "Try 'canfleetctl %s --help'.\n", cmd);
                        return CF_EXIT_USAGE;
                }
        }
        o->args = argv + optind;
        o->n_args = argc - optind;
        if (o->n_args < min_args || o->n_args > max_args) {
                fprintf(stderr, "canfleetctl %s: %s\n", cmd,
                        o->n_args < min_args ? "missing argument" : "too many arguments");
                fprintf(stderr, "Try 'canfleetctl %s --help'.\n", cmd);
                return CF_EXIT_USAGE;
        }
        return -1;
}

static const char *or_dash(const char *s)
{
        return s && s[0] ? s : "-";
}

static void format_time(char *buf, size_t size, uint64_t usec)
{
        time_t t = (time_t) (usec / 1000000u);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
}

/* Read every node of the list; on failure the exit code, with the nodes read so far kept. */
static int read_nodes(sd_bus *bus, char **paths, size_t n, struct cf_node_info **ret)
{
        struct cf_node_info *v = calloc(n ? n : 1, sizeof(*v));
        int r = CF_EXIT_OK;

        if (!v)
                return CF_EXIT_FAILED;
        for (size_t i = 0; i < n && r == CF_EXIT_OK; i++)
                r = cf_node_get(bus, paths[i], &v[i]);
        *ret = v;
        return r;
}

static void free_nodes(struct cf_node_info *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                cf_node_info_done(&v[i]);
        free(v);
}

static int print_node_table(const struct cf_node_info *v, size_t n)
{
        printf("%-12s %-9s %-12s %-9s %-6s %-24s %s\n", "NODE", "STATE", "MODE", "VERSION", "HW-ID", "UID",
               "LAST ERROR");
        for (size_t i = 0; i < n; i++) {
                char name[64], hw[8];
                snprintf(name, sizeof(name), "%s:%u", or_dash(v[i].bus), v[i].station);
                if (v[i].hardware_id)
                        snprintf(hw, sizeof(hw), "0x%04x", v[i].hardware_id);
                else
                        snprintf(hw, sizeof(hw), "-");
                printf("%-12s %-9s %-12s %-9s %-6s %-24s %s\n", name, or_dash(v[i].state),
                       or_dash(v[i].mode), or_dash(v[i].version), hw, or_dash(v[i].uid),
                       or_dash(v[i].last_error));
        }
        return CF_EXIT_OK;
}

static int print_nodes_json(const struct cf_node_info *v, size_t n, struct json_object **ret_array)
{
        struct json_object *a = json_object_new_array();
        if (!a)
                return CF_EXIT_FAILED;
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, cf_json_node(&v[i]));
        if (ret_array) {
                *ret_array = a;
                return CF_EXIT_OK;
        }
        return cf_json_print(a) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
}

int cmd_nodes(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        struct cf_manager_info m = {0};
        struct cf_node_info *nodes = NULL;
        struct opts o;
        int r = parse_opts(argc, argv, OPT_JSON, 0, 0, help_nodes, &o);

        if (r >= 0)
                goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_manager_get(bus, &m)) != CF_EXIT_OK)
                goto out;
        if ((r = read_nodes(bus, m.nodes, m.n_nodes, &nodes)) != CF_EXIT_OK)
                goto out;
        r = o.json ? print_nodes_json(nodes, m.n_nodes, NULL) : print_node_table(nodes, m.n_nodes);
out:
        free_nodes(nodes, m.n_nodes);
        cf_manager_info_done(&m);
        opts_done(&o);
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
        struct opts o;
        int r = parse_opts(argc, argv, OPT_JSON, 1, 1, help_scan, &o);

        if (r >= 0)
                goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        /* A scan CONNECTs up to 63 addresses with their time-outs: allow it more than the default. */
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
                fprintf(stderr, "canfleetctl: scanning %s: unexpected reply: %s\n", o.args[0], strerror(-r));
                r = CF_EXIT_FAILED;
                goto out;
        }
        if ((r = read_nodes(bus, paths, n, &nodes)) != CF_EXIT_OK)
                goto out;
        if (o.json) {
                struct json_object *obj = json_object_new_object(), *a = NULL;
                if (!obj || print_nodes_json(nodes, n, &a) != CF_EXIT_OK) {
                        json_object_put(obj);
                        r = CF_EXIT_FAILED;
                        goto out;
                }
                json_object_object_add(obj, "bus", json_object_new_string(o.args[0]));
                json_object_object_add(obj, "nodes", a);
                r = cf_json_print(obj) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
        } else {
                printf("%zu node%s found on %s\n", n, n == 1 ? "" : "s", o.args[0]);
                if (n > 0)
                        r = print_node_table(nodes, n);
        }
out:
        free_nodes(nodes, n);
        free(paths);
        opts_done(&o);
        return r;
}

static void job_counts(const struct cf_job_info *j, size_t *done, size_t *failed, uint64_t *bytes_done,
                       uint64_t *bytes_total)
{
        *done = *failed = 0;
        *bytes_done = *bytes_total = 0;
        for (size_t i = 0; i < j->n_nodes; i++) {
                if (strcmp(j->nodes[i].step, "done") == 0)
                        (*done)++;
                else if (strcmp(j->nodes[i].step, "failed") == 0)
                        (*failed)++;
                *bytes_done += j->nodes[i].bytes_done;
                *bytes_total += j->nodes[i].bytes_total;
        }
}

static int read_jobs(sd_bus *bus, char **paths, size_t n, struct cf_job_info **ret)
{
        struct cf_job_info *v = calloc(n ? n : 1, sizeof(*v));
        int r = CF_EXIT_OK;

        if (!v)
                return CF_EXIT_FAILED;
        for (size_t i = 0; i < n && r == CF_EXIT_OK; i++)
                r = cf_job_get(bus, paths[i], &v[i]);
        *ret = v;
        return r;
}

static void free_jobs(struct cf_job_info *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                cf_job_info_done(&v[i]);
        free(v);
}

static void print_job_line(const struct cf_job_info *j)
{
        size_t done, failed;
        uint64_t bd, bt;
        char created[32], bdone[32], btotal[32];

        job_counts(j, &done, &failed, &bd, &bt);
        format_time(created, sizeof(created), j->created);
        printf("%-5u %-10s %-9s %5zu %5zu %6zu %3u%% %10s / %-10s %s\n", j->id, or_dash(j->state),
               or_dash(j->image_version), j->n_nodes, done, failed, bt ? (unsigned) (bd * 100 / bt) : 0,
               cf_format_bytes(bdone, sizeof(bdone), bd), cf_format_bytes(btotal, sizeof(btotal), bt),
               created);
}

static void print_job_header(void)
{
        printf("%-5s %-10s %-9s %5s %5s %6s %4s %23s %s\n", "ID", "STATE", "IMAGE", "NODES", "DONE",
               "FAILED", "SENT", "BYTES", "CREATED");
}

int cmd_jobs(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        struct cf_manager_info m = {0};
        struct cf_job_info *jobs = NULL;
        struct opts o;
        int r = parse_opts(argc, argv, OPT_JSON, 0, 0, help_jobs, &o);

        if (r >= 0)
                goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_manager_get(bus, &m)) != CF_EXIT_OK)
                goto out;
        if ((r = read_jobs(bus, m.jobs, m.n_jobs, &jobs)) != CF_EXIT_OK)
                goto out;
        if (o.json) {
                struct json_object *a = json_object_new_array();
                for (size_t i = 0; a && i < m.n_jobs; i++)
                        json_object_array_add(a, cf_json_job(&jobs[i]));
                r = cf_json_print(a) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
        } else {
                print_job_header();
                for (size_t i = 0; i < m.n_jobs; i++)
                        print_job_line(&jobs[i]);
        }
out:
        free_jobs(jobs, m.n_jobs);
        cf_manager_info_done(&m);
        opts_done(&o);
        return r;
}

/* Count of nodes per state, in order of first appearance. */
struct state_count {
        const char *state;
        size_t n;
};

int cmd_status(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        struct cf_manager_info m = {0};
        struct cf_node_info *nodes = NULL;
        struct cf_job_info *jobs = NULL;
        struct state_count *counts = NULL;
        size_t n_counts = 0, running = 0;
        struct opts o;
        int r = parse_opts(argc, argv, OPT_JSON, 0, 0, help_status, &o);

        if (r >= 0)
                goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_manager_get(bus, &m)) != CF_EXIT_OK)
                goto out;
        if ((r = read_nodes(bus, m.nodes, m.n_nodes, &nodes)) != CF_EXIT_OK)
                goto out;
        if ((r = read_jobs(bus, m.jobs, m.n_jobs, &jobs)) != CF_EXIT_OK)
                goto out;
        counts = calloc(m.n_nodes ? m.n_nodes : 1, sizeof(*counts));
        if (!counts) {
                r = CF_EXIT_FAILED;
                goto out;
        }
        for (size_t i = 0; i < m.n_nodes; i++) {
                const char *s = nodes[i].state ? nodes[i].state : "unknown";
                size_t k;
                for (k = 0; k < n_counts && strcmp(counts[k].state, s) != 0; k++)
                        ;
                if (k == n_counts)
                        counts[n_counts++].state = s;
                counts[k].n++;
        }
        for (size_t i = 0; i < m.n_jobs; i++)
                if (!cf_job_state_is_final(jobs[i].state))
                        running++;

        if (o.json) {
                struct json_object *obj = json_object_new_object(), *buses = json_object_new_array(),
                                   *jn = json_object_new_object(), *by_state = json_object_new_object(),
                                   *jobs_obj = json_object_new_object(), *rj = json_object_new_array();
                if (!obj || !buses || !jn || !by_state || !jobs_obj || !rj) {
                        r = CF_EXIT_FAILED;
                        goto out;
                }
                json_object_object_add(obj, "version", json_object_new_string(m.version ? m.version : ""));
                for (size_t i = 0; i < m.n_buses; i++)
                        json_object_array_add(buses, cf_json_bus(&m.buses[i]));
                json_object_object_add(obj, "buses", buses);
                json_object_object_add(jn, "total", json_object_new_int64((int64_t) m.n_nodes));
                for (size_t k = 0; k < n_counts; k++)
                        json_object_object_add(by_state, counts[k].state,
                                               json_object_new_int64((int64_t) counts[k].n));
                json_object_object_add(jn, "by_state", by_state);
                json_object_object_add(obj, "nodes", jn);
                json_object_object_add(jobs_obj, "total", json_object_new_int64((int64_t) m.n_jobs));
                json_object_object_add(jobs_obj, "running", json_object_new_int64((int64_t) running));
                json_object_object_add(obj, "jobs", jobs_obj);
                for (size_t i = 0; i < m.n_jobs; i++)
                        if (!cf_job_state_is_final(jobs[i].state))
                                json_object_array_add(rj, cf_json_job(&jobs[i]));
                json_object_object_add(obj, "running_jobs", rj);
                r = cf_json_print(obj) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
                goto out;
        }

        printf("canfleetd %s\n", or_dash(m.version));
        printf("buses: %zu\n", m.n_buses);
        for (size_t i = 0; i < m.n_buses; i++)
                printf("  %-15s %-8s %7u bit/s  %s\n", m.buses[i].name, m.buses[i].link, m.buses[i].bitrate,
                       m.buses[i].transport);
        printf("nodes: %zu", m.n_nodes);
        for (size_t k = 0; k < n_counts; k++)
                printf("%s%s %zu", k ? ", " : " (", counts[k].state, counts[k].n);
        printf("%s\n", n_counts ? ")" : "");
        printf("jobs: %zu running, %zu in total\n", running, m.n_jobs);
        if (running) {
                print_job_header();
                for (size_t i = 0; i < m.n_jobs; i++)
                        if (!cf_job_state_is_final(jobs[i].state))
                                print_job_line(&jobs[i]);
        }
        r = CF_EXIT_OK;
out:
        free(counts);
        free_jobs(jobs, m.n_jobs);
        free_nodes(nodes, m.n_nodes);
        cf_manager_info_done(&m);
        opts_done(&o);
        return r;
}

/*
 * Following a job. The matches are added before the call that starts or cancels the job, so no
 * change is lost; the job's properties are then read once, asynchronously, so that signals queued
 * before that reply are applied before it, and those after it on top of it.
 */
struct waiter {
        sd_bus *bus;
        sd_event *event;
        sd_bus_slot *slots[4];
        sd_bus_slot *getall;
        char *path;
        struct cf_job_info job;
        bool have_props;
        bool finished;
        bool show;
        struct cf_progress progress;
};

static void waiter_finish(struct waiter *w)
{
        _cf_cleanup_bus_message_ sd_bus_message *reply = NULL;

        if (w->finished)
                return;
        w->finished = true;
        /* Completed may precede the last PropertiesChanged we would read: take the final picture. */
        if (sd_bus_call_method(w->bus, CF_BUS_NAME, w->path, "org.freedesktop.DBus.Properties", "GetAll",
                               NULL, &reply, "s", CF_JOB_IFACE) >= 0) {
                char *final_state = w->job.state ? strdup(w->job.state) : NULL;
                if (cf_job_info_read(reply, &w->job) >= 0)
                        w->have_props = true;
                /* A daemon that says Completed(state) must not be contradicted by a stale read. */
                if (final_state && !cf_job_state_is_final(w->job.state)) {
                        free(w->job.state);
                        w->job.state = final_state;
                        final_state = NULL;
                }
                free(final_state);
        }
        if (w->show)
                cf_progress_finish(&w->progress, &w->job);
        sd_event_exit(w->event, cf_job_state_exit_code(w->job.state));
}

static void waiter_changed(struct waiter *w)
{
        if (cf_job_state_is_final(w->job.state)) {
                waiter_finish(w);
                return;
        }
        if (w->have_props && w->show)
                cf_progress_update(&w->progress, &w->job, false);
}

static int on_getall(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct waiter *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        w->getall = sd_bus_slot_unref(w->getall);
        if (e) {
                char what[160];
                snprintf(what, sizeof(what), "reading job %s", w->path);
                sd_event_exit(w->event, cf_bus_report_error(what, e, -sd_bus_message_get_errno(m)));
                return 0;
        }
        if (cf_job_info_read(m, &w->job) < 0) {
                fprintf(stderr, "canfleetctl: job %s: unexpected reply from canfleetd\n", w->path);
                sd_event_exit(w->event, CF_EXIT_FAILED);
                return 0;
        }
        w->have_props = true;
        waiter_changed(w);
        return 0;
}

static int waiter_refresh(struct waiter *w)
{
        if (w->getall)
                return 0;
        return sd_bus_call_method_async(w->bus, &w->getall, CF_BUS_NAME, w->path,
                                        "org.freedesktop.DBus.Properties", "GetAll", on_getall, w, "s",
                                        CF_JOB_IFACE);
}

static bool is_our_job(struct waiter *w, sd_bus_message *m)
{
        const char *path = sd_bus_message_get_path(m);
        return w->path && path && strcmp(path, w->path) == 0 && !w->finished;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct waiter *w = userdata;
        const char *iface;
        char **invalidated = NULL;
        int r;

        if (!is_our_job(w, m))
                return 0;
        r = sd_bus_message_read_basic(m, 's', &iface);
        if (r < 0 || strcmp(iface, CF_JOB_IFACE) != 0)
                return 0;
        r = cf_job_info_read(m, &w->job);
        if (r >= 0 && sd_bus_message_read_strv(m, &invalidated) >= 0 && invalidated && invalidated[0])
                r = waiter_refresh(w);
        for (char **s = invalidated; s && *s; s++)
                free(*s);
        free(invalidated);
        if (r < 0)
                return 0;
        waiter_changed(w);
        return 0;
}

static int on_completed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct waiter *w = userdata;
        const char *state;

        if (!is_our_job(w, m) || sd_bus_message_read_basic(m, 's', &state) < 0)
                return 0;
        char *copy = strdup(state);
        if (copy) {
                free(w->job.state);
                w->job.state = copy;
        }
        waiter_finish(w);
        return 0;
}

static void report_gone(struct waiter *w, const char *why)
{
        if (w->show && w->progress.tty)
                fputc('\n', stdout);
        fprintf(
            stderr,
            "canfleetctl: %s while following %s; canfleetd resumes unfinished jobs when it starts again\n"
            "canfleetctl: " CF_HINT_UNREACHABLE "; then: canfleetctl watch %s\n",
            why, w->path, w->path);
        sd_event_exit(w->event, CF_EXIT_UNREACHABLE);
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct waiter *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (strcmp(name, CF_BUS_NAME) == 0 && !new_owner[0] && w->path && !w->finished)
                report_gone(w, "canfleetd went away");
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct waiter *w = userdata;
        if (!w->finished)
                report_gone(w, "the D-Bus connection was lost");
        return 0;
}

static void waiter_done(struct waiter *w)
{
        for (size_t i = 0; i < sizeof(w->slots) / sizeof(w->slots[0]); i++)
                w->slots[i] = sd_bus_slot_unref(w->slots[i]);
        w->getall = sd_bus_slot_unref(w->getall);
        if (w->bus && w->event)
                sd_bus_detach_event(w->bus);
        w->event = sd_event_unref(w->event);
        cf_job_info_done(&w->job);
        cf_progress_done(&w->progress);
        free(w->path);
        w->path = NULL;
}

/* Subscribe to every job's changes before anything can happen to ours. Exit code. */
static int waiter_subscribe(struct waiter *w, sd_bus *bus, bool show)
{
        static const char props_rule[] = "type='signal',sender='" CF_BUS_NAME "',"
                                         "interface='org.freedesktop.DBus.Properties',"
                                         "member='PropertiesChanged',path_namespace='" CF_JOB_PREFIX "'";
        static const char completed_rule[] =
            "type='signal',sender='" CF_BUS_NAME "',interface='" CF_JOB_IFACE
            "',member='Completed',path_namespace='" CF_JOB_PREFIX "'";
        int r;

        *w = (struct waiter){.bus = bus, .show = show};
        cf_progress_init(&w->progress, stdout, isatty(STDOUT_FILENO));
        r = sd_bus_add_match(bus, &w->slots[0], props_rule, on_properties_changed, w);
        if (r >= 0)
                r = sd_bus_add_match(bus, &w->slots[1], completed_rule, on_completed, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &w->slots[2], "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &w->slots[3], "org.freedesktop.DBus.Local",
                                        "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                        "Disconnected", on_disconnected, w);
        if (r < 0)
                return cf_bus_report_error("subscribing to job changes", NULL, r);
        return CF_EXIT_OK;
}

/* Wait until the job ends; returns the exit code for its final state. */
static int waiter_run(struct waiter *w, const char *path)
{
        int r, code;

        if (!(w->path = strdup(path)))
                return CF_EXIT_FAILED;
        r = sd_event_default(&w->event);
        if (r >= 0)
                r = sd_bus_attach_event(w->bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = waiter_refresh(w);
        if (r < 0) {
                fprintf(stderr, "canfleetctl: following %s: %s\n", path, strerror(-r));
                return CF_EXIT_FAILED;
        }
        r = sd_event_loop(w->event);
        if (r < 0) {
                fprintf(stderr, "canfleetctl: following %s: %s\n", path, strerror(-r));
                return CF_EXIT_FAILED;
        }
        code = r;
        return code;
}

static uint32_t job_id_from_path(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? (uint32_t) strtoul(slash + 1, NULL, 10) : 0;
}

static int print_job_json(struct waiter *w)
{
        if (!w->job.path)
                w->job.path = strdup(w->path);
        return cf_json_print(cf_json_job(&w->job)) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
}

int cmd_update(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        _cf_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cf_cleanup_bus_message_ sd_bus_message *call = NULL, *reply = NULL;
        _cf_cleanup_close_ int fd = -1;
        struct waiter w = {0};
        const char *job_path;
        char *no_nodes[] = {NULL};
        struct stat st;
        struct opts o;
        int r = parse_opts(argc, argv, OPT_JSON | OPT_NO_WAIT | OPT_UPDATE, 1, 1, help_update, &o);

        if (r >= 0)
                goto out;
        if (o.all == (o.n_nodes > 0)) {
                fprintf(stderr, "canfleetctl update: say which nodes: --all or --node BUS:SA (not both)\n"
                                "Try 'canfleetctl update --help'.\n");
                r = CF_EXIT_USAGE;
                goto out;
        }
        for (size_t i = 0; i < o.n_nodes; i++) {
                const char *colon = strchr(o.nodes[i], ':');
                if (o.nodes[i][0] != '/' && (!colon || colon == o.nodes[i] || !colon[1] ||
                                             colon[1 + strspn(colon + 1, "0123456789")])) {
                        fprintf(stderr,
                                "canfleetctl update: '%s' is not a node: expected BUS:SA, e.g. bus0:3\n",
                                o.nodes[i]);
                        r = CF_EXIT_USAGE;
                        goto out;
                }
        }
        /* http(s): canfleetd downloads it; file://PATH and plain paths: opened here, with our rights. */
        const char *path = o.args[0];
        bool url = strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0;
        if (strncmp(path, "file://", 7) == 0)
                path += 7;
        if (!url) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        fprintf(stderr, "canfleetctl update: cannot read image %s: %s\n", o.args[0],
                                fd < 0 ? strerror(errno) : "not a regular file");
                        r = CF_EXIT_USAGE;
                        goto out;
                }
        }

        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if (sd_bus_can_send(bus, SD_BUS_TYPE_UNIX_FD) <= 0) {
                fprintf(stderr, "canfleetctl: the bus connection cannot pass file descriptors\n");
                r = CF_EXIT_UNREACHABLE;
                goto out;
        }
        if (!o.no_wait && (r = waiter_subscribe(&w, bus, !o.json)) != CF_EXIT_OK)
                goto out;

        r = sd_bus_message_new_method_call(bus, &call, CF_BUS_NAME, CF_MANAGER_PATH, CF_MANAGER_IFACE,
                                           url ? "StartUpdateUrl" : "StartUpdate");
        if (r >= 0)
                r = url ? sd_bus_message_append(call, "s", path) : sd_bus_message_append(call, "h", fd);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, o.nodes ? o.nodes : no_nodes);
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "{sv}");
        if (r >= 0 && o.all)
                r = sd_bus_message_append(call, "{sv}", "all", "b", 1);
        if (r >= 0 && o.force)
                r = sd_bus_message_append(call, "{sv}", "force", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r < 0) {
                fprintf(stderr, "canfleetctl: building StartUpdate: %s\n", strerror(-r));
                r = CF_EXIT_FAILED;
                goto out;
        }
        /* A URL's answer comes after the download (retries and back-off included) */
        r = sd_bus_call(bus, call, url ? UINT64_C(600) * 1000000u : 0, &error, &reply);
        if (r < 0) {
                char what[300];
                snprintf(what, sizeof(what), "update with %s refused", o.args[0]);
                r = cf_bus_report_error(what, &error, r);
                if (r != CF_EXIT_UNREACHABLE && r != CF_EXIT_REFUSED)
                        r = CF_EXIT_FAILED;
                goto out;
        }
        r = sd_bus_message_read_basic(reply, 'o', &job_path);
        if (r <= 0) {
                fprintf(stderr, "canfleetctl: unexpected reply to StartUpdate\n");
                r = CF_EXIT_FAILED;
                goto out;
        }
        if (o.no_wait) {
                if (o.json) {
                        struct json_object *obj = json_object_new_object();
                        if (obj) {
                                json_object_object_add(obj, "id",
                                                       json_object_new_int64(job_id_from_path(job_path)));
                                json_object_object_add(obj, "path", json_object_new_string(job_path));
                        }
                        r = cf_json_print(obj) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
                } else {
                        printf("%s\n", job_path);
                        r = CF_EXIT_OK;
                }
                goto out;
        }
        r = waiter_run(&w, job_path);
        if (o.json && w.finished) {
                int rj = print_job_json(&w);
                if (rj != CF_EXIT_OK)
                        r = rj;
        }
out:
        waiter_done(&w);
        opts_done(&o);
        return r;
}

int cmd_watch(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        _cf_cleanup_free_ char *path = NULL;
        struct waiter w = {0};
        struct opts o;
        int r = parse_opts(argc, argv, OPT_JSON, 1, 1, help_watch, &o);

        if (r >= 0)
                goto out;
        if (!(path = cf_job_path_from_arg(o.args[0]))) {
                fprintf(stderr,
                        "canfleetctl watch: '%s' is not a job: expected a number or a job object path\n",
                        o.args[0]);
                r = CF_EXIT_USAGE;
                goto out;
        }
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = waiter_subscribe(&w, bus, !o.json)) != CF_EXIT_OK)
                goto out;
        r = waiter_run(&w, path);
        if (o.json && w.finished) {
                int rj = print_job_json(&w);
                if (rj != CF_EXIT_OK)
                        r = rj;
        }
out:
        waiter_done(&w);
        opts_done(&o);
        return r;
}

int cmd_cancel(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        _cf_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cf_cleanup_free_ char *path = NULL;
        struct waiter w = {0};
        struct opts o;
        int r = parse_opts(argc, argv, OPT_NO_WAIT, 1, 1, help_cancel, &o);

        if (r >= 0)
                goto out;
        if (!(path = cf_job_path_from_arg(o.args[0]))) {
                fprintf(stderr,
                        "canfleetctl cancel: '%s' is not a job: expected a number or a job object path\n",
                        o.args[0]);
                r = CF_EXIT_USAGE;
                goto out;
        }
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if (!o.no_wait && (r = waiter_subscribe(&w, bus, false)) != CF_EXIT_OK)
                goto out;
        r = sd_bus_call_method(bus, CF_BUS_NAME, path, CF_JOB_IFACE, "Cancel", &error, NULL, "");
        if (r < 0) {
                char what[160];
                snprintf(what, sizeof(what), "cancelling %s", path);
                r = cf_bus_report_error(what, &error, r);
                if (r != CF_EXIT_UNREACHABLE && r != CF_EXIT_REFUSED)
                        r = CF_EXIT_FAILED;
                goto out;
        }
        if (o.no_wait) {
                printf("cancelling job %u\n", job_id_from_path(path));
                r = CF_EXIT_OK;
                goto out;
        }
        r = waiter_run(&w, path);
        if (!w.finished)
                goto out;
        if (w.job.state && strcmp(w.job.state, "cancelled") == 0) {
                size_t kept = 0, installed = 0;
                for (size_t i = 0; i < w.job.n_nodes; i++) {
                        if (strcmp(w.job.nodes[i].step, "cancelled") == 0)
                                kept++;
                        else if (strcmp(w.job.nodes[i].step, "done") == 0)
                                installed++;
                }
                printf("job %u cancelled: %zu node%s keep their old firmware, %zu already updated\n",
                       w.job.id, kept, kept == 1 ? "" : "s", installed);
                r = CF_EXIT_OK;
        } else {
                fprintf(stderr, "canfleetctl: job %u ended %s before it could be cancelled\n", w.job.id,
                        or_dash(w.job.state));
                r = CF_EXIT_FAILED;
        }
out:
        waiter_done(&w);
        opts_done(&o);
        return r;
}
