/* canfleetctl update|watch|cancel: start, follow and stop canfleetd's update jobs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-client.h"
#include "cmd-fleet.h"
#include "fleet-error.h"
#include "fleet-json.h"
#include "fleet-opts.h"
#include "fleet-select.h"
#include "job-follow.h"
#include "update-plan.h"

/* images of one update --all: one job each (a mixed fleet) */
#define MAX_IMAGES 8
#define JOB_JSON_HELP "                   (job objects: canfleetctl jobs --help, docs/json.md)\n"

static void help_update(void)
{
        printf(
            "Usage: canfleetctl update IMAGE (--all | --node BUS:SA ... | --bus NAME ...)\n"
            "                          [--force] [--dry-run] [--no-wait] [--json]\n"
            "       canfleetctl update IMAGE IMAGE... --all [--force] [--no-wait]\n"
            "\n"
            "Flash IMAGE onto nodes: a signed bundle (.cfb, see canfleetctl bundle create),\n"
            "or a packed area image (canfleetctl image pack) where canfleetd.conf has\n"
            "\"allow_unsigned\": true. canfleetctl opens IMAGE and hands canfleetd the open\n"
            "file, which canfleetd reads once and verifies before any CAN traffic. IMAGE may\n"
            "be an https:// or http:// URL, which canfleetd downloads and verifies itself,\n"
            "or file:///PATH. Then canfleetctl follows the job: on a terminal one summary\n"
            "line (done/failed/active/waiting, overall %%, elapsed, ETA, bytes per second)\n"
            "and a line per active, waiting or failed node, never taller than the terminal;\n"
            "piped or with TERM=dumb, a line per node step or wait reason and one per tenth\n"
            "of the job. Ctrl-C stops following, not the job: it prints how to watch or\n"
            "cancel it and exits with 130. Needs root or group canfleet.\n"
            "\n"
            "  --all            every configured node of the image's hardware id (canfleetd\n"
            "                   decides from what it knows, also after a restart); the nodes\n"
            "                   left out are printed with the reason\n" CF_SELECT_HELP
            "\n"
            "A mixed fleet takes one image per kind of node: single-bank STM32F4 and\n"
            "dual-bank STM32F7 nodes, several hardware ids, serial nodes (an lpc-isp and an\n"
            "adi-uart bundle, docs/design.md §8). With several IMAGEs and --all, canfleetd\n"
            "starts one job per image, each with the configured nodes of its hardware id\n"
            "and node kind (a dual-bank bundle goes to dual-bank nodes only, a serial bundle\n"
            "to its part); they run side by side and are followed one after the other. The\n"
            "exit status is the first job's that did not succeed; --no-wait prints one job\n"
            "path a line.\n"
            "\n"
            "  --force          also nodes that already run this exact image\n"
            "  --dry-run        ask canfleetd which nodes it would update, by its own checks\n"
            "                   (signature, image, hardware id, anti-rollback, up to date,\n"
            "                   busy); changes nothing\n"
            "  --no-wait        print the job's object path and exit\n"
            "                   (--json: {schema, id, path})\n" CF_JSON_HELP
            "                   no progress display; the finished job: {schema, job fields}\n" JOB_JSON_HELP
            "\n"
            "Examples:\n"
            "  canfleetctl update app-1.2.0.cfb --all --dry-run\n"
            "  canfleetctl update app-1.2.0.cfb --all\n"
            "  canfleetctl update app-1.2.0.cfb --node 'bus0:*' --node bus1:7\n"
            "  canfleetctl update app-1.2.0.cfb --bus bus1 --no-wait && canfleetctl watch\n"
            "  canfleetctl update https://updates.example.com/app-1.2.0.cfb --all\n"
            "  canfleetctl update app-f4-1.2.0.cfb app-f7-1.2.0.cfb --all\n"
            "  canfleetctl update app-1.2.0.cfb lpc-3.1.0.cfb adi-2.0.0.cfb --all\n"
            "\n" CF_EXIT_CODES_HELP);
}

static void help_watch(void)
{
        printf(
            "Usage: canfleetctl watch [JOB] [--json]\n"
            "\n"
            "Follow a job until it ends, with the same display as update. JOB is the job's\n"
            "number (\"3\") or its object path (\"/io/canfleet/Gateway1/job/3\"); without it,\n"
            "the running job (when several run, name one). The exit status is the job's:\n"
            "0 done, 1 failed, 4 cancelled; Ctrl-C stops watching (130), the job goes on.\n"
            "\n" CF_JSON_HELP
            "                   no progress display; the finished job: {schema, job fields}\n" JOB_JSON_HELP
            "\n"
            "Examples:\n"
            "  canfleetctl watch\n"
            "  canfleetctl watch 3\n"
            "\n" CF_EXIT_CODES_HELP);
}

static void help_cancel(void)
{
        printf("Usage: canfleetctl cancel JOB [--no-wait] [--json]\n"
               "\n"
               "Stop a job. Nodes not yet reset keep their old firmware; a node already\n"
               "rebooting into the new image finishes. Waits until the job has stopped, unless\n"
               "--no-wait, and then lists what each node runs. JOB is the job's number (\"3\")\n"
               "or its object path. Needs root or group canfleet. update and watch of a\n"
               "cancelled job exit 0 when every node runs the new image, 4 otherwise.\n"
               "\n" CF_JSON_HELP "                   {schema, id, state, kept, updated,\n"
               "                   nodes [{node, step, version}]}\n"
               "\n"
               "Example:\n"
               "  canfleetctl cancel 3\n"
               "\n" CF_EXIT_CODES_HELP);
}

static int print_job_json(struct cf_follow *w)
{
        struct json_object *doc = cf_json_document(), *job;

        if (!w->job.path)
                w->job.path = strdup(w->path);
        job = cf_json_job(&w->job);
        if (!doc || !job) {
                json_object_put(doc);
                json_object_put(job);
                return CF_EXIT_FAILED;
        }
        /* the job's fields at the top, next to "schema": `jq .state` works on update and watch alike */
        json_object_object_foreach(job, key, value) json_object_object_add(doc, key, json_object_get(value));
        json_object_put(job);
        return cf_json_print(doc) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
}

/* The node references to hand canfleetd into *ret (NULL-terminated, copies): the nodes that globs and
 * --bus selected on the fleet, then the plain --node references as given. Those are canfleetd's to judge,
 * privilege first: an unprivileged caller learns nothing from the refusal. Exit code. */
static int selected_names(const struct cf_fleet *f, const bool *selected, char **exact, size_t n_exact,
                          char ***ret)
{
        char **v = calloc(f->m.n_nodes + n_exact + 1, sizeof(*v));
        size_t n = 0;

        if (!v)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        for (size_t i = 0; i < f->m.n_nodes + n_exact; i++) {
                char name[64];
                if (i < f->m.n_nodes && !selected[i])
                        continue;
                if (i < f->m.n_nodes)
                        cf_node_name(&f->nodes[i], name, sizeof(name));
                else
                        snprintf(name, sizeof(name), "%s", exact[i - f->m.n_nodes]);
                if (!(v[n++] = strdup(name))) {
                        for (size_t k = 0; k < n; k++)
                                free(v[k]);
                        free(v);
                        return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                }
        }
        *ret = v;
        return CF_EXIT_OK;
}

static void strv_free(char **v)
{
        for (char **s = v; s && *s; s++)
                free(*s);
        free(v);
}

/* url: StartUpdateUrl (canfleetd downloads it), else StartUpdate with fd */
static int start_update(sd_bus *bus, int fd, const char *url, char **names, const struct cf_opts *o,
                        const char **ret_path, sd_bus_message **ret_reply)
{
        _cf_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cf_cleanup_bus_message_ sd_bus_message *call = NULL;
        char *no_nodes[] = {NULL};
        int r;

        r = sd_bus_message_new_method_call(bus, &call, CF_BUS_NAME, CF_MANAGER_PATH, CF_MANAGER_IFACE,
                                           url ? "StartUpdateUrl" : "StartUpdate");
        if (r >= 0)
                r = url ? sd_bus_message_append(call, "s", url) : sd_bus_message_append(call, "h", fd);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, names ? names : no_nodes);
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "{sv}");
        if (r >= 0 && o->all)
                r = sd_bus_message_append(call, "{sv}", "all", "b", 1);
        if (r >= 0 && o->force)
                r = sd_bus_message_append(call, "{sv}", "force", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r < 0)
                return cf_error(CF_EXIT_FAILED, "failed", "building StartUpdate: %s", strerror(-r));
        /* a URL's answer comes after the download, retries and back-off included */
        r = sd_bus_call(bus, call, url ? UINT64_C(600) * 1000000u : 0, &error, ret_reply);
        if (r < 0) {
                r = cf_bus_report_error("update refused", &error, r);
                return r == CF_EXIT_UNREACHABLE || r == CF_EXIT_REFUSED ? r : CF_EXIT_FAILED;
        }
        r = sd_bus_message_read_basic(*ret_reply, 'o', ret_path);
        if (r <= 0)
                return cf_error(CF_EXIT_FAILED, "failed", "unexpected reply to StartUpdate");
        return CF_EXIT_OK;
}

/* update IMAGE IMAGE... --all: a job per image (a mixed fleet), each with the nodes of its kind. */
static int update_several(struct cf_opts *o)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        int fds[MAX_IMAGES];
        char *paths[MAX_IMAGES] = {0};
        size_t n_fds = 0, n_started = 0;
        int r = CF_EXIT_OK;

        if (!o->all) {
                r = cf_error(CF_EXIT_USAGE, "usage",
                             "update: several images go with --all (one job per image, each for the nodes of its "
                             "kind); name nodes with one image at a time");
                goto out;
        }
        if (o->dry_run || o->json) {
                r = cf_error(CF_EXIT_USAGE, "usage", "update: --%s takes one image at a time",
                             o->dry_run ? "dry-run" : "json");
                goto out;
        }
        /* every file opened before anything starts: a typo refuses the whole command */
        for (size_t i = 0; i < (size_t) o->n_args; i++) {
                const char *path = o->args[i];
                struct stat st;
                if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0) {
                        r = cf_error(CF_EXIT_USAGE, "usage", "update: several images must be files, not URLs");
                        goto out;
                }
                if (strncmp(path, "file://", 7) == 0)
                        path += 7;
                int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        r = cf_error(CF_EXIT_USAGE, "usage", "update: cannot read image %s: %s", o->args[i],
                                     fd < 0 ? strerror(errno) : "not a regular file");
                        if (fd >= 0)
                                close(fd);
                        goto out;
                }
                fds[n_fds++] = fd;
        }
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if (sd_bus_can_send(bus, SD_BUS_TYPE_UNIX_FD) <= 0) {
                r = cf_error(CF_EXIT_UNREACHABLE, "unreachable", "the bus connection cannot pass file descriptors");
                goto out;
        }
        for (size_t i = 0; i < n_fds; i++) {
                _cf_cleanup_bus_message_ sd_bus_message *reply = NULL;
                const char *job_path;
                r = start_update(bus, fds[i], NULL, NULL, o, &job_path, &reply);
                if (r != CF_EXIT_OK) {
                        /* the jobs already started go on, and are followed below */
                        cf_hint("%s: not started%s", o->args[i], n_started ? "; the jobs started go on" : "");
                        break;
                }
                if (!(paths[n_started] = strdup(job_path))) {
                        r = cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                        break;
                }
                n_started++;
                if (!o->no_wait)
                        printf("%s: job %u\n", o->args[i], cf_job_id_from_path(job_path));
        }
        if (o->no_wait) {
                for (size_t i = 0; i < n_started; i++)
                        printf("%s\n", paths[i]);
                goto out;
        }
        for (size_t i = 0; i < n_started; i++) {
                /* a follower ends its connection with its event loop: one each */
                _cf_cleanup_bus_ sd_bus *b = NULL;
                struct cf_follow w = {0};
                int k = cf_bus_connect(&b);
                if (k == CF_EXIT_OK)
                        k = cf_follow_subscribe(&w, b, true, true);
                if (k == CF_EXIT_OK)
                        k = cf_follow_run(&w, paths[i]);
                cf_follow_done(&w);
                if (r == CF_EXIT_OK)
                        r = k;
                if (k == CF_EXIT_INTERRUPTED || k == CF_EXIT_UNREACHABLE)
                        break;
        }
out:
        for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
        for (size_t i = 0; i < n_started; i++)
                free(paths[i]);
        return r;
}

int cmd_update(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        _cf_cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cf_cleanup_close_ int fd = -1;
        _cf_cleanup_free_ bool *selected = NULL;
        struct cf_follow w = {0};
        struct cf_fleet f = {0};
        char **names = NULL;
        _cf_cleanup_free_ char **exact = NULL, **globs = NULL;
        size_t n_exact = 0, n_globs = 0;
        const char *job_path;
        size_t n_selected = 0;
        struct stat st;
        struct cf_opts o;
        int r = cf_parse_opts(argc, argv, CF_OPT_JSON | CF_OPT_NO_WAIT | CF_OPT_UPDATE | CF_OPT_SELECT, 1,
                              MAX_IMAGES, help_update, &o);

        if (r >= 0)
                goto out;
        if (o.n_args > 1) {
                r = update_several(&o);
                goto out;
        }
        if (o.all == (o.n_nodes + o.n_buses > 0)) {
                r = cf_error(CF_EXIT_USAGE, "usage",
                             "update: say which nodes: --all, or --node BUS:SA / --bus NAME (not both)");
                cf_hint("try 'canfleetctl update --help'");
                goto out;
        }
        for (size_t i = 0; i < o.n_nodes; i++)
                if ((r = cf_check_node_ref("update", o.nodes[i])) != CF_EXIT_OK)
                        goto out;
        /* http(s): canfleetd downloads it; file://PATH and plain paths: opened here, with our rights */
        const char *path = o.args[0];
        const char *url =
            strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0 ? path : NULL;
        if (strncmp(path, "file://", 7) == 0)
                path += 7;
        if (url && o.dry_run) {
                r = cf_error(CF_EXIT_USAGE, "usage", "update: --dry-run needs a file, not a URL");
                goto out;
        }
        if (!url) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        r = cf_error(CF_EXIT_USAGE, "usage", "update: cannot read image %s: %s", o.args[0],
                                     fd < 0 ? strerror(errno) : "not a regular file");
                        goto out;
                }
        }

        exact = calloc(o.n_nodes + 1, sizeof(*exact));
        globs = calloc(o.n_nodes + 1, sizeof(*globs));
        if (!exact || !globs) {
                r = cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                goto out;
        }
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        /* globs and buses are resolved here, on the node list everyone may read; so is all of a dry run */
        for (size_t i = 0; i < o.n_nodes; i++)
                if (!o.dry_run && !cf_is_glob(o.nodes[i]))
                        exact[n_exact++] = o.nodes[i];
                else
                        globs[n_globs++] = o.nodes[i];
        if (o.dry_run || n_globs > 0 || o.n_buses > 0) {
                if ((r = cf_fleet_read(bus, &f)) != CF_EXIT_OK)
                        goto out;
                if (!(selected = calloc(f.m.n_nodes ? f.m.n_nodes : 1, sizeof(*selected)))) {
                        r = cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                        goto out;
                }
                if (!o.all && (r = cf_fleet_select(&f, globs, n_globs, o.buses, o.n_buses, selected,
                                                   &n_selected)) != CF_EXIT_OK)
                        goto out;
        }
        if (!o.all && (r = selected_names(&f, selected, exact, n_exact, &names)) != CF_EXIT_OK)
                goto out;
        if (!url && sd_bus_can_send(bus, SD_BUS_TYPE_UNIX_FD) <= 0) {
                r = cf_error(CF_EXIT_UNREACHABLE, "unreachable",
                             "the bus connection cannot pass file descriptors");
                goto out;
        }
        if (o.dry_run) {
                r = cf_update_plan(bus, fd, path, &f, names, o.force, o.json);
                goto out;
        }
        if (!o.no_wait && (r = cf_follow_subscribe(&w, bus, !o.json, true)) != CF_EXIT_OK)
                goto out;
        if (!o.no_wait && cf_follow_interrupt_pending()) {
                r = cf_error(CF_EXIT_INTERRUPTED, "interrupted", "interrupted before the update started");
                goto out;
        }
        if ((r = start_update(bus, fd, url, names, &o, &job_path, &reply)) != CF_EXIT_OK)
                goto out;
        if (o.no_wait) {
                if (o.json) {
                        struct json_object *doc = cf_json_document();
                        if (doc) {
                                json_object_object_add(doc, "id",
                                                       json_object_new_int64(cf_job_id_from_path(job_path)));
                                json_object_object_add(doc, "path", json_object_new_string(job_path));
                        }
                        r = cf_json_print(doc) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
                } else {
                        printf("%s\n", job_path);
                        r = CF_EXIT_OK;
                }
                goto out;
        }
        r = cf_follow_run(&w, job_path);
        if (o.json && w.finished) {
                int rj = print_job_json(&w);
                if (rj != CF_EXIT_OK)
                        r = rj;
        }
out:
        strv_free(names);
        cf_follow_done(&w);
        cf_fleet_done(&f);
        cf_opts_done(&o);
        return r;
}

/* watch without a job: the one running job. Exit code; *ret the path. */
static int running_job(sd_bus *bus, char **ret)
{
        struct cf_manager_info m = {0};
        struct cf_job_info *jobs = NULL;
        size_t running = 0, last = 0;
        char ids[256] = "";
        int r;

        if ((r = cf_manager_get(bus, &m)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_jobs_get(bus, m.jobs, m.n_jobs, &jobs)) != CF_EXIT_OK)
                goto out;
        for (size_t i = 0; i < m.n_jobs; i++)
                if (!cf_job_state_is_final(jobs[i].state)) {
                        size_t len = strlen(ids);
                        snprintf(ids + len, sizeof(ids) - len, "%s%u", running ? ", " : "", jobs[i].id);
                        running++;
                        last = i;
                }
        if (running == 0)
                r = cf_error(CF_EXIT_REFUSED, "no-such-job",
                             "no job is running (canfleetctl jobs lists the others)");
        else if (running > 1) {
                r = cf_error(CF_EXIT_USAGE, "usage",
                             "watch: %zu jobs are running (%s): say which, e.g. canfleetctl watch %u",
                             running, ids, jobs[last].id);
        } else if (!(*ret = strdup(jobs[last].path)))
                r = cf_error(CF_EXIT_FAILED, "failed", "out of memory");
out:
        cf_jobs_free(jobs, m.n_jobs);
        cf_manager_info_done(&m);
        return r;
}

static char *job_arg(const char *cmd, const char *arg)
{
        char *path = cf_job_path_from_arg(arg);
        if (!path)
                cf_error(CF_EXIT_USAGE, "usage",
                         "%s: '%s' is not a job: expected a number or a job object path", cmd, arg);
        return path;
}

int cmd_watch(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        _cf_cleanup_free_ char *path = NULL;
        struct cf_follow w = {0};
        struct cf_opts o;
        int r = cf_parse_opts(argc, argv, CF_OPT_JSON, 0, 1, help_watch, &o);

        if (r >= 0)
                goto out;
        if (o.n_args == 1 && !(path = job_arg("watch", o.args[0]))) {
                r = CF_EXIT_USAGE;
                goto out;
        }
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if ((r = cf_follow_subscribe(&w, bus, !o.json, true)) != CF_EXIT_OK)
                goto out;
        if (!path && (r = running_job(bus, &path)) != CF_EXIT_OK)
                goto out;
        r = cf_follow_run(&w, path);
        if (o.json && w.finished) {
                int rj = print_job_json(&w);
                if (rj != CF_EXIT_OK)
                        r = rj;
        }
out:
        cf_follow_done(&w);
        cf_opts_done(&o);
        return r;
}

int cmd_cancel(int argc, char **argv)
{
        _cf_cleanup_bus_ sd_bus *bus = NULL;
        _cf_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cf_cleanup_free_ char *path = NULL;
        struct cf_follow w = {0};
        struct cf_opts o;
        int r = cf_parse_opts(argc, argv, CF_OPT_NO_WAIT | CF_OPT_JSON, 1, 1, help_cancel, &o);

        if (r >= 0)
                goto out;
        if (!(path = job_arg("cancel", o.args[0]))) {
                r = CF_EXIT_USAGE;
                goto out;
        }
        if ((r = cf_bus_connect(&bus)) != CF_EXIT_OK)
                goto out;
        if (!o.no_wait && (r = cf_follow_subscribe(&w, bus, false, false)) != CF_EXIT_OK)
                goto out;
        r = sd_bus_call_method(bus, CF_BUS_NAME, path, CF_JOB_IFACE, "Cancel", &error, NULL, "");
        if (r < 0) {
                /* canfleetd's messages name the job ("Job 3 is done"): the prefix must not again */
                r = cf_bus_report_error("cannot cancel", &error, r);
                if (r != CF_EXIT_UNREACHABLE && r != CF_EXIT_REFUSED)
                        r = CF_EXIT_FAILED;
                goto out;
        }
        if (o.no_wait) {
                if (o.json) {
                        struct json_object *doc = cf_json_document();
                        if (doc) {
                                json_object_object_add(doc, "id",
                                                       json_object_new_int64(cf_job_id_from_path(path)));
                                json_object_object_add(doc, "state", json_object_new_string("cancelling"));
                                json_object_object_add(doc, "kept", NULL);
                                json_object_object_add(doc, "updated", NULL);
                        }
                        r = cf_json_print(doc) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
                } else {
                        printf("cancelling job %u\n", cf_job_id_from_path(path));
                        r = CF_EXIT_OK;
                }
                goto out;
        }
        r = cf_follow_run(&w, path);
        if (!w.finished)
                goto out;
        size_t kept = 0, installed = 0;
        for (size_t i = 0; i < w.job.n_nodes; i++) {
                if (strcmp(w.job.nodes[i].step, "cancelled") == 0)
                        kept++;
                else if (strcmp(w.job.nodes[i].step, "done") == 0 ||
                         strcmp(w.job.nodes[i].step, "confirmed") == 0 ||
                         strcmp(w.job.nodes[i].step, "up-to-date") == 0)
                        installed++;
        }
        /* What each node runs now, as canfleetd last read it (nodes reset before the cancel finished
         * installing and were confirmed). */
        struct cf_node_info *runs = calloc(w.job.n_nodes ? w.job.n_nodes : 1, sizeof(*runs));
        /* the follower's connection ended with its event loop: a new one for these reads */
        _cf_cleanup_bus_ sd_bus *bus2 = NULL;
        if (runs && cf_bus_connect(&bus2) == CF_EXIT_OK)
                for (size_t i = 0; i < w.job.n_nodes; i++)
                        if (w.job.nodes[i].path && strcmp(w.job.nodes[i].path, "/") != 0)
                                (void) cf_node_get(bus2, w.job.nodes[i].path, &runs[i]);
        if (!w.job.state || strcmp(w.job.state, "cancelled") != 0) {
                r = cf_error(CF_EXIT_FAILED, "failed", "job %u ended %s before it could be cancelled",
                             w.job.id, w.job.state ? w.job.state : "?");
                goto out;
        }
        if (o.json) {
                struct json_object *doc = cf_json_document();
                if (doc) {
                        json_object_object_add(doc, "id", json_object_new_int64(w.job.id));
                        json_object_object_add(doc, "state", json_object_new_string(w.job.state));
                        json_object_object_add(doc, "kept", json_object_new_int64((int64_t) kept));
                        json_object_object_add(doc, "updated", json_object_new_int64((int64_t) installed));
                        struct json_object *a = json_object_new_array();
                        for (size_t i = 0; a && runs && i < w.job.n_nodes; i++) {
                                struct json_object *x = json_object_new_object();
                                if (!x)
                                        break;
                                json_object_object_add(x, "node", json_object_new_string(w.job.nodes[i].node));
                                json_object_object_add(x, "step", json_object_new_string(w.job.nodes[i].step));
                                json_object_object_add(x, "version", cf_json_string_or_null(runs[i].version));
                                json_object_array_add(a, x);
                        }
                        json_object_object_add(doc, "nodes", a);
                }
                r = cf_json_print(doc) < 0 ? CF_EXIT_FAILED : CF_EXIT_OK;
        } else {
                printf("job %u cancelled: %zu node%s %s old firmware, %zu already updated\n", w.job.id, kept,
                       kept == 1 ? "" : "s", kept == 1 ? "keeps its" : "keep their", installed);
                for (size_t i = 0; runs && i < w.job.n_nodes; i++)
                        printf("  %s: runs %s (%s)\n", w.job.nodes[i].node,
                               runs[i].version && runs[i].version[0] ? runs[i].version : "an unknown version",
                               strcmp(w.job.nodes[i].step, "cancelled") == 0 ? "kept" : w.job.nodes[i].step);
                r = CF_EXIT_OK;
        }
        cf_nodes_free(runs, w.job.n_nodes);
out:
        cf_follow_done(&w);
        cf_opts_done(&o);
        return r;
}
