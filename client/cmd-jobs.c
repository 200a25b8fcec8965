/* canfleetctl jobs|status: canfleetd's jobs and an overview of the gateway, sized to the terminal. */
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
#include "progress.h"

#define JOB_JSON_HELP                                                                                       \
        "  job objects:  id, path, state (running|done|failed|cancelled),\n"                                \
        "                image {version, hw_id, release, sha256}, created_us,\n"                            \
        "                finished_us (null while running), started_us, skipped\n"                        \
        "                [{node, reason}], hawkbit_actions [ids], bytes_done,\n"                           \
        "                bytes_total, nodes [{node, path, step, error, bytes_done,\n"                      \
        "                bytes_total}]\n"

static void help_status(void)
{
        printf("Usage: canfleetctl status [--full] [--json]\n"
               "\n"
               "Show canfleetd's version, its buses with their link state, how many nodes are\n"
               "in each state and the running jobs.\n"
               "\n"
               "  --full           do not cut the tables to the terminal's width\n" CF_JSON_HELP
               "                   {schema, version, buses [{name, transport, link, bitrate,\n"
               "                   error}], nodes {total, by_state {STATE: count}},\n"
               "                   jobs {total, running}, running_jobs [job objects],\n"
               "                   fleet_server (null without one) {url, tenant, state,\n"
               "                   last_poll_us, last_error, last_error_us, next_poll_us,\n"
               "                   targets, feedback_queued, requests,\n"
               "                   actions_in_progress [ids]}}\n" JOB_JSON_HELP "\n"
               "Example:\n"
               "  canfleetctl status\n"
               "\n" CF_EXIT_CODES_HELP);
}

static void help_jobs(void)
{
        printf("Usage: canfleetctl jobs [--full] [--json]\n"
               "\n"
               "List canfleetd's jobs, oldest first: id, state, image version, node counts,\n"
               "progress, duration, and the hawkBit action ids of a job the fleet server\n"
               "started.\n"
               "\n"
               "  --full           do not cut the table to the terminal's width\n" CF_JSON_HELP
               "                   {schema, jobs [job objects]}\n" JOB_JSON_HELP "\n"
               "Example:\n"
               "  canfleetctl jobs\n"
               "\n" CF_EXIT_CODES_HELP);
}

static void format_time(char *buf, size_t size, uint64_t usec)
{
        time_t t = (time_t) (usec / 1000000u);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
}

/* Action ids as runs: "12-15,19" (a job's actions are mostly consecutive: one deployment to a set). */
static void format_actions(char *buf, size_t size, const uint64_t *ids, size_t n)
{
        size_t at = 0;
        buf[0] = 0;
        for (size_t i = 0; i < n && at < size; i++) {
                size_t k = i;
                while (k + 1 < n && ids[k + 1] == ids[k] + 1)
                        k++;
                int w = k > i ? snprintf(buf + at, size - at, "%s%llu-%llu", at ? "," : "",
                                         (unsigned long long) ids[i], (unsigned long long) ids[k])
                              : snprintf(buf + at, size - at, "%s%llu", at ? "," : "",
                                         (unsigned long long) ids[i]);
                if (w < 0)
                        break;
                at += (size_t) w;
                i = k;
        }
}

static int print_jobs_table(const struct cf_job_info *jobs, size_t n, bool running_only, bool full)
{
        static const char *const headers[] = {"ID",       "STATE", "IMAGE", "NODES",   "DONE",
                                              "FAILED",   "PROGRESS", "TOOK", "CREATED", "HAWKBIT"};
        static const unsigned flags[] = {
            CF_COL_RIGHT,    0, 0, CF_COL_RIGHT, CF_COL_RIGHT, CF_COL_RIGHT, CF_COL_RIGHT, CF_COL_RIGHT,
            CF_COL_OPTIONAL, CF_COL_OPTIONAL | CF_COL_SHRINK};
        struct cf_table *t = cf_table_new(10, headers, flags);
        int r = 0;

        if (!t)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        for (size_t i = 0; i < n && r >= 0; i++) {
                const struct cf_job_info *j = &jobs[i];
                size_t done = 0, failed = 0;
                unsigned sum = 0;
                char id[16], nn[16], nd[16], nf[16], pct[16], took[16] = "", created[32], acts[256];

                if (running_only && cf_job_state_is_final(j->state))
                        continue;
                for (size_t k = 0; k < j->n_nodes; k++) {
                        done += strcmp(j->nodes[k].step, "done") == 0 ||
                                strcmp(j->nodes[k].step, "confirmed") == 0 ||
                                strcmp(j->nodes[k].step, "up-to-date") == 0;
                        failed += strcmp(j->nodes[k].step, "failed") == 0;
                        sum += cf_progress_percent(&j->nodes[k]);
                }
                snprintf(id, sizeof(id), "%u", j->id);
                snprintf(nn, sizeof(nn), "%zu", j->n_nodes);
                snprintf(nd, sizeof(nd), "%zu", done);
                snprintf(nf, sizeof(nf), "%zu", failed);
                snprintf(pct, sizeof(pct), "%u%%", j->n_nodes ? sum / (unsigned) j->n_nodes : 100);
                /* From its first node's start when known: a job that waited for its bus says so apart */
                uint64_t from = j->started ? j->started : j->created;
                if (j->finished && from && j->finished >= from)
                        cf_format_duration(took, sizeof(took), j->finished - from);
                format_time(created, sizeof(created), j->created);
                format_actions(acts, sizeof(acts), j->hawkbit_actions, j->n_hawkbit_actions);
                const char *cells[] = {id, j->state, j->image_version, nn,      nd,
                                       nf, pct,      took,           created, acts[0] ? acts : NULL};
                r = cf_table_add(t, cells);
        }
        if (r >= 0)
                r = cf_table_print(t, stdout, cf_table_width(full));
        cf_table_free(t);
        return r < 0 ? cf_error(CF_EXIT_FAILED, "failed", "printing the table: %s", strerror(-r))
                     : CF_EXIT_OK;
}

int cmd_jobs(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        struct cf_manager_info m = {0};
        struct cf_job_info *jobs = NULL;
        struct cf_opts o;
        int r = cf_parse_opts(argc, argv, CF_OPT_JSON | CF_OPT_FULL, 0, 0, help_jobs, &o);

        if (r >= 0)
                goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_manager_get(bus, &m)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_jobs_get(bus, m.jobs, m.n_jobs, &jobs)) != CF_EXIT_OK)
                goto out;
        if (o.json) {
                struct json_object *doc = cf_json_document(), *a = json_object_new_array();
                for (size_t i = 0; a && i < m.n_jobs; i++)
                        json_object_array_add(a, cf_json_job(&jobs[i]));
                if (doc)
                        json_object_object_add(doc, "jobs", a);
                else
                        json_object_put(a);
                r = cf_json_print(doc) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
        } else
                r = print_jobs_table(jobs, m.n_jobs, false, o.full);
out:
        cf_jobs_free(jobs, m.n_jobs);
        cf_manager_info_done(&m);
        cf_opts_done(&o);
        return r;
}

/* Count of nodes per state, in order of first appearance. */
struct state_count {
        const char *state;
        size_t n;
};

static int status_json(const struct cf_fleet *f, const struct cf_job_info *jobs,
                       const struct state_count *counts, size_t n_counts, size_t running)
{
        struct json_object *obj = cf_json_document(), *buses = json_object_new_array(),
                           *jn = json_object_new_object(), *by_state = json_object_new_object(),
                           *jobs_obj = json_object_new_object(), *rj = json_object_new_array();

        if (!obj || !buses || !jn || !by_state || !jobs_obj || !rj) {
                json_object_put(obj);
                json_object_put(buses);
                json_object_put(jn);
                json_object_put(by_state);
                json_object_put(jobs_obj);
                json_object_put(rj);
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        }
        json_object_object_add(obj, "version", cf_json_string_or_null(f->m.version));
        for (size_t i = 0; i < f->m.n_buses; i++)
                json_object_array_add(buses, cf_json_bus(&f->m.buses[i]));
        json_object_object_add(obj, "buses", buses);
        json_object_object_add(jn, "total", json_object_new_int64((int64_t) f->m.n_nodes));
        for (size_t k = 0; k < n_counts; k++)
                json_object_object_add(by_state, counts[k].state,
                                       json_object_new_int64((int64_t) counts[k].n));
        json_object_object_add(jn, "by_state", by_state);
        json_object_object_add(obj, "nodes", jn);
        json_object_object_add(jobs_obj, "total", json_object_new_int64((int64_t) f->m.n_jobs));
        json_object_object_add(jobs_obj, "running", json_object_new_int64((int64_t) running));
        json_object_object_add(obj, "jobs", jobs_obj);
        for (size_t i = 0; i < f->m.n_jobs; i++)
                if (!cf_job_state_is_final(jobs[i].state))
                        json_object_array_add(rj, cf_json_job(&jobs[i]));
        json_object_object_add(obj, "running_jobs", rj);
        json_object_object_add(obj, "fleet_server", cf_json_fleet_server(&f->m.fleet));
        return cf_json_print(obj) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
}

/* "3 s ago" / "in 2 s" from a CLOCK_REALTIME µs time */
static void format_relative(char *buf, size_t size, uint64_t usec)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t now = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
        char d[32];
        if (usec <= now) {
                cf_format_duration(d, sizeof(d), now - usec);
                snprintf(buf, size, "%s ago", d);
        } else {
                cf_format_duration(d, sizeof(d), usec - now);
                snprintf(buf, size, "in %s", d);
        }
}

/* fleet server: https://hawkbit.example:8443 (tenant DEFAULT): online
 *   last poll 2026-11-30 23:40:01 (2s ago), next in 3s; 128 targets, 0 feedback queued
 *   actions in progress: 12-15
 *   last error: 2026-11-30 23:38:12: HTTP 503 …                                       */
static void print_fleet_server(const struct cf_fleet_server_info *fs)
{
        char when[32], rel[48], acts[256];
        printf("fleet server: %s (tenant %s): %s\n", fs->url, fs->tenant ? fs->tenant : "-",
               fs->state ? fs->state : "-");
        if (fs->last_poll) {
                format_time(when, sizeof(when), fs->last_poll);
                format_relative(rel, sizeof(rel), fs->last_poll);
                printf("  last poll %s (%s)", when, rel);
        } else
                printf("  no poll answered yet");
        if (fs->next_poll) {
                format_relative(rel, sizeof(rel), fs->next_poll);
                printf(", next %s", rel);
        }
        printf("; %u target(s), %u feedback queued\n", fs->targets, fs->feedback_queued);
        format_actions(acts, sizeof(acts), fs->actions, fs->n_actions);
        printf("  actions in progress: %s\n", acts[0] ? acts : "none");
        if (fs->last_error && fs->last_error[0]) {
                format_time(when, sizeof(when), fs->last_error_time);
                printf("  last error: %s: %s\n", when, fs->last_error);
        }
}

static int print_buses_table(const struct cf_manager_info *m, bool full)
{
        static const char *const headers[] = {"BUS", "LINK", "BITRATE", "TRANSPORT"};
        static const unsigned flags[] = {0, 0, CF_COL_RIGHT, CF_COL_SHRINK};
        struct cf_table *t = cf_table_new(4, headers, flags);
        int r = 0;

        if (!t)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        for (size_t i = 0; i < m->n_buses && r >= 0; i++) {
                char rate[32];
                snprintf(rate, sizeof(rate), "%u bit/s", m->buses[i].bitrate);
                const char *cells[] = {m->buses[i].name, m->buses[i].link, rate, m->buses[i].transport};
                r = cf_table_add(t, cells);
        }
        if (r >= 0)
                r = cf_table_print(t, stdout, cf_table_width(full));
        cf_table_free(t);
        /* Why a bus is not up, whole (a table cell would be cut at 80 columns). */
        for (size_t i = 0; r >= 0 && i < m->n_buses; i++)
                if (m->buses[i].error && m->buses[i].error[0])
                        printf("%s: %s\n", m->buses[i].name, m->buses[i].error);
        return r < 0 ? cf_error(CF_EXIT_FAILED, "failed", "printing the table: %s", strerror(-r))
                     : CF_EXIT_OK;
}

int cmd_status(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        struct cf_fleet f = {0};
        struct cf_job_info *jobs = NULL;
        struct state_count *counts = NULL;
        size_t n_counts = 0, running = 0;
        struct cf_opts o;
        int r = cf_parse_opts(argc, argv, CF_OPT_JSON | CF_OPT_FULL, 0, 0, help_status, &o);

        if (r >= 0)
                goto out;
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_fleet_read(bus, &f)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_jobs_get(bus, f.m.jobs, f.m.n_jobs, &jobs)) != CF_EXIT_OK)
                goto out;
        counts = calloc(f.m.n_nodes ? f.m.n_nodes : 1, sizeof(*counts));
        if (!counts) {
                r = cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                goto out;
        }
        for (size_t i = 0; i < f.m.n_nodes; i++) {
                const char *s = f.nodes[i].state ? f.nodes[i].state : "unknown";
                size_t k;
                for (k = 0; k < n_counts && strcmp(counts[k].state, s) != 0; k++)
                        ;
                if (k == n_counts)
                        counts[n_counts++].state = s;
                counts[k].n++;
        }
        for (size_t i = 0; i < f.m.n_jobs; i++)
                if (!cf_job_state_is_final(jobs[i].state))
                        running++;

        if (o.json) {
                r = status_json(&f, jobs, counts, n_counts, running);
                goto out;
        }
        printf("canfleetd %s\n", f.m.version && f.m.version[0] ? f.m.version : "-");
        printf("buses: %zu\n", f.m.n_buses);
        if (f.m.n_buses && (r = print_buses_table(&f.m, o.full)) != CF_EXIT_OK)
                goto out;
        printf("nodes: %zu", f.m.n_nodes);
        for (size_t k = 0; k < n_counts; k++)
                printf("%s%s %zu", k ? ", " : " (", counts[k].state, counts[k].n);
        printf("%s\n", n_counts ? ")" : "");
        if (f.m.fleet.present)
                print_fleet_server(&f.m.fleet);
        else if (f.m.fleet_server && f.m.fleet_server[0])
                printf("fleet server: %s\n", f.m.fleet_server); /* a canfleetd without FleetServerState */
        printf("jobs: %zu running, %zu in total\n", running, f.m.n_jobs);
        r = running ? print_jobs_table(jobs, f.m.n_jobs, true, o.full) : CF_EXIT_OK;
out:
        free(counts);
        cf_jobs_free(jobs, f.m.n_jobs);
        cf_fleet_done(&f);
        cf_opts_done(&o);
        return r;
}
