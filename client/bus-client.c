/* canfleetctl's D-Bus plumbing: connect to canfleetd, decode its objects, map failures to exit codes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus-client.h"
#include "fleet-error.h"

int cf_bus_connect(sd_bus **ret)
{
        int r = sd_bus_open_system(ret);
        if (r < 0) {
                const char *addr = getenv("DBUS_SYSTEM_BUS_ADDRESS");
                cf_error(CF_EXIT_UNREACHABLE, "unreachable", "cannot connect to the system bus%s%s: %s",
                         addr ? " at " : "", addr ? addr : "", strerror(-r));
                cf_hint(CF_HINT_UNREACHABLE);
                return CF_EXIT_UNREACHABLE;
        }
        return CF_EXIT_OK;
}

int cf_bus_error_exit_code(const sd_bus_error *error, int r)
{
        if (sd_bus_error_is_set(error)) {
                if (sd_bus_error_has_names(
                        error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                        SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_NO_SERVER,
                        SD_BUS_ERROR_TIMEOUT, SD_BUS_ERROR_NO_NETWORK, SD_BUS_ERROR_ADDRESS_IN_USE))
                        return CF_EXIT_UNREACHABLE;
                if (strncmp(error->name, "io.canfleet.Gateway1.Error.", 27) == 0 ||
                    sd_bus_error_has_names(error, SD_BUS_ERROR_ACCESS_DENIED, SD_BUS_ERROR_AUTH_FAILED,
                                           SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                           SD_BUS_ERROR_INVALID_ARGS, SD_BUS_ERROR_NOT_SUPPORTED,
                                           SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_LIMITS_EXCEEDED))
                        return CF_EXIT_REFUSED;
                return CF_EXIT_FAILED;
        }
        switch (r) {
        case -ENOENT:
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -ENOTCONN:
        case -EPIPE:
        case -ETIMEDOUT:
        case -EHOSTDOWN:
        case -ESHUTDOWN:
                return CF_EXIT_UNREACHABLE;
        case -EACCES:
        case -EPERM:
                return CF_EXIT_REFUSED;
        default:
                return CF_EXIT_FAILED;
        }
}

int cf_bus_report_error(const char *what, const sd_bus_error *error, int r)
{
        int code = cf_bus_error_exit_code(error, r);
        char text[768];
        const char *kind = cf_bus_error_text(error, r, text, sizeof(text));

        /* "no job 99" names its object already: a "reading job 99: " before it would say it twice */
        bool denied = strcmp(kind, "permission-denied") == 0;
        if (!what || strncmp(kind, "no-such-", 8) == 0)
                cf_error(code, kind, "%s%s", denied ? "permission denied: " : "", text);
        else
                cf_error(code, kind, "%s: %s%s", what, denied ? "permission denied: " : "", text);
        if (code == CF_EXIT_UNREACHABLE)
                cf_hint("see: systemctl status canfleetd");
        return code;
}

/* One property of an object: its name, D-Bus signature and a reader for the field at offset. */
struct prop {
        const char *name;
        const char *sig;
        int (*read)(sd_bus_message *m, void *field);
        size_t offset;
};

static int read_str(sd_bus_message *m, void *field)
{
        const char *s;
        int r = sd_bus_message_read_basic(m, 's', &s);
        if (r < 0)
                return r;
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        free(*(char **) field);
        *(char **) field = copy;
        return 0;
}

static int read_u8(sd_bus_message *m, void *field)
{
        return sd_bus_message_read_basic(m, 'y', field);
}

static int read_u16(sd_bus_message *m, void *field)
{
        return sd_bus_message_read_basic(m, 'q', field);
}

static int read_u32(sd_bus_message *m, void *field)
{
        return sd_bus_message_read_basic(m, 'u', field);
}

static int read_u64(sd_bus_message *m, void *field)
{
        return sd_bus_message_read_basic(m, 't', field);
}

static int read_bool(sd_bus_message *m, void *field)
{
        int b;
        int r = sd_bus_message_read_basic(m, 'b', &b);
        if (r >= 0)
                *(bool *) field = b;
        return r;
}

static void strv_free_n(char **v, size_t n);

/* a(ss) into a flat list of pairs {char **v; size_t n} */
static int read_pairs(sd_bus_message *m, void *field)
{
        struct {
                char **v;
                size_t n;
        } *l = field;
        char **v = NULL;
        size_t n = 0;
        const char *a, *b;
        int r = sd_bus_message_enter_container(m, 'a', "(ss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ss)", &a, &b)) > 0) {
                char **nv = realloc(v, (n + 1) * 2 * sizeof(*v));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[2 * n] = strdup(a);
                v[2 * n + 1] = strdup(b);
                n++;
                if (!v[2 * n - 2] || !v[2 * n - 1]) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0) {
                strv_free_n(v, 2 * n);
                return r;
        }
        strv_free_n(l->v, 2 * l->n);
        l->v = v;
        l->n = n;
        return 0;
}

static void strv_free_n(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* An "ao" into a (char **, size_t) pair that follows it in the struct. */
struct path_list {
        char **v;
        size_t n;
};

static int read_paths(sd_bus_message *m, void *field)
{
        struct path_list *l = field;
        char **v = NULL;
        size_t n = 0;
        const char *p;
        int r = sd_bus_message_enter_container(m, 'a', "o");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read_basic(m, 'o', &p)) > 0) {
                char **nv = realloc(v, (n + 1) * sizeof(*v));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                if (!(v[n] = strdup(p))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0) {
                strv_free_n(v, n);
                return r;
        }
        strv_free_n(l->v, l->n);
        l->v = v;
        l->n = n;
        return 0;
}

struct bus_list {
        struct cf_bus_info *v;
        size_t n;
};

static void bus_list_free(struct cf_bus_info *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].transport);
                free(v[i].link);
                free(v[i].error);
        }
        free(v);
}

static int read_buses(sd_bus_message *m, void *field)
{
        struct bus_list *l = field;
        struct cf_bus_info *v = NULL;
        size_t n = 0;
        const char *name, *transport, *link, *error;
        uint32_t bitrate;
        int r = sd_bus_message_enter_container(m, 'a', "(sssus)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(sssus)", &name, &transport, &link, &bitrate, &error)) > 0) {
                struct cf_bus_info *nv = realloc(v, (n + 1) * sizeof(*v));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n] = (struct cf_bus_info){strdup(name), strdup(transport), strdup(link), bitrate,
                                            strdup(error)};
                n++;
                if (!v[n - 1].name || !v[n - 1].transport || !v[n - 1].link || !v[n - 1].error) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0) {
                bus_list_free(v, n);
                return r;
        }
        bus_list_free(l->v, l->n);
        l->v = v;
        l->n = n;
        return 0;
}

struct progress_list {
        struct cf_job_node *v;
        size_t n;
};

static void progress_list_free(struct cf_job_node *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].path);
                free(v[i].node);
                free(v[i].step);
                free(v[i].error);
        }
        free(v);
}

static int read_progress(sd_bus_message *m, void *field)
{
        struct progress_list *l = field;
        struct cf_job_node *v = NULL;
        size_t n = 0;
        const char *path, *node, *step, *error;
        uint64_t done, total;
        int r = sd_bus_message_enter_container(m, 'a', "(ossstt)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ossstt)", &path, &node, &step, &error, &done, &total)) > 0) {
                struct cf_job_node *nv = realloc(v, (n + 1) * sizeof(*v));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n] = (struct cf_job_node){strdup(path),  strdup(node), strdup(step),
                                            strdup(error), done,         total};
                n++;
                if (!v[n - 1].path || !v[n - 1].node || !v[n - 1].step || !v[n - 1].error) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0) {
                progress_list_free(v, n);
                return r;
        }
        progress_list_free(l->v, l->n);
        l->v = v;
        l->n = n;
        return 0;
}

/* "at" into a {uint64_t *, size_t} pair */
static int read_u64_list(sd_bus_message *m, void *field)
{
        struct {
                uint64_t *v;
                size_t n;
        } *l = field;
        const void *p;
        size_t size;
        int r = sd_bus_message_read_array(m, 't', &p, &size);
        if (r < 0)
                return r;
        uint64_t *v = NULL;
        if (size) {
                v = malloc(size);
                if (!v)
                        return -ENOMEM;
                memcpy(v, p, size);
        }
        free(l->v);
        l->v = v;
        l->n = size / sizeof(uint64_t);
        return 0;
}

static int read_props(sd_bus_message *m, const struct prop *table, void *obj);

static const struct prop fleet_props[] = {
    {"Url", "s", read_str, offsetof(struct cf_fleet_server_info, url)},
    {"Tenant", "s", read_str, offsetof(struct cf_fleet_server_info, tenant)},
    {"State", "s", read_str, offsetof(struct cf_fleet_server_info, state)},
    {"LastPoll", "t", read_u64, offsetof(struct cf_fleet_server_info, last_poll)},
    {"LastError", "s", read_str, offsetof(struct cf_fleet_server_info, last_error)},
    {"LastErrorTime", "t", read_u64, offsetof(struct cf_fleet_server_info, last_error_time)},
    {"NextPoll", "t", read_u64, offsetof(struct cf_fleet_server_info, next_poll)},
    {"Targets", "u", read_u32, offsetof(struct cf_fleet_server_info, targets)},
    {"FeedbackQueued", "u", read_u32, offsetof(struct cf_fleet_server_info, feedback_queued)},
    {"Requests", "t", read_u64, offsetof(struct cf_fleet_server_info, requests)},
    {"ActionsInProgress", "at", read_u64_list, offsetof(struct cf_fleet_server_info, actions)},
    {0},
};

static void fleet_info_done(struct cf_fleet_server_info *f)
{
        free(f->url);
        free(f->tenant);
        free(f->state);
        free(f->last_error);
        free(f->actions);
        *f = (struct cf_fleet_server_info){0};
}

/* FleetServerState: a{sv}, empty without a fleet server */
static int read_fleet(sd_bus_message *m, void *field)
{
        struct cf_fleet_server_info *f = field;
        fleet_info_done(f);
        int r = read_props(m, fleet_props, f);
        if (r >= 0)
                f->present = f->url != NULL;
        return r;
}

/* Walk an a{sv}: known names are read into obj, unknown ones skipped (the daemon may grow). */
static int read_props(sd_bus_message *m, const struct prop *table, void *obj)
{
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;
                const struct prop *p;

                r = sd_bus_message_read_basic(m, 's', &name);
                if (r < 0)
                        return r;
                for (p = table; p->name && strcmp(p->name, name) != 0; p++)
                        ;
                if (!p->name) {
                        r = sd_bus_message_skip(m, "v");
                } else {
                        r = sd_bus_message_enter_container(m, 'v', p->sig);
                        if (r < 0)
                                return r;
                        r = p->read(m, (char *) obj + p->offset);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* The list readers write a {pointer, count} pair: the structs keep those two fields adjacent. */
_Static_assert(offsetof(struct cf_manager_info, n_buses) ==
                   offsetof(struct cf_manager_info, buses) + offsetof(struct bus_list, n),
               "buses/n_buses adjacent");
_Static_assert(offsetof(struct cf_manager_info, n_nodes) ==
                   offsetof(struct cf_manager_info, nodes) + offsetof(struct path_list, n),
               "nodes/n_nodes adjacent");
_Static_assert(offsetof(struct cf_manager_info, n_jobs) ==
                   offsetof(struct cf_manager_info, jobs) + offsetof(struct path_list, n),
               "jobs/n_jobs adjacent");
_Static_assert(offsetof(struct cf_job_info, n_hawkbit_actions) ==
                   offsetof(struct cf_job_info, hawkbit_actions) + sizeof(uint64_t *),
               "hawkbit_actions/n_hawkbit_actions adjacent");
_Static_assert(offsetof(struct cf_fleet_server_info, n_actions) ==
                   offsetof(struct cf_fleet_server_info, actions) + sizeof(uint64_t *),
               "actions/n_actions adjacent");
_Static_assert(offsetof(struct cf_job_info, n_skipped) == offsetof(struct cf_job_info, skipped) + sizeof(char **),
               "skipped/n_skipped adjacent");
_Static_assert(offsetof(struct cf_job_info, n_nodes) ==
                   offsetof(struct cf_job_info, nodes) + offsetof(struct progress_list, n),
               "nodes/n_nodes adjacent");

static const struct prop manager_props[] = {
    {"Version", "s", read_str, offsetof(struct cf_manager_info, version)},
    {"Buses", "a(sssus)", read_buses, offsetof(struct cf_manager_info, buses)},
    {"Nodes", "ao", read_paths, offsetof(struct cf_manager_info, nodes)},
    {"Jobs", "ao", read_paths, offsetof(struct cf_manager_info, jobs)},
    {"FleetServer", "s", read_str, offsetof(struct cf_manager_info, fleet_server)},
    {"FleetServerState", "a{sv}", read_fleet, offsetof(struct cf_manager_info, fleet)},
    {0},
};

static const struct prop node_props[] = {
    {"Bus", "s", read_str, offsetof(struct cf_node_info, bus)},
    {"Station", "q", read_u16, offsetof(struct cf_node_info, station)},
    {"CroId", "u", read_u32, offsetof(struct cf_node_info, cro_id)},
    {"DtoId", "u", read_u32, offsetof(struct cf_node_info, dto_id)},
    {"HardwareId", "q", read_u16, offsetof(struct cf_node_info, hardware_id)},
    {"Uid", "s", read_str, offsetof(struct cf_node_info, uid)},
    {"BootloaderVersion", "q", read_u16, offsetof(struct cf_node_info, bootloader_version)},
    {"Version", "s", read_str, offsetof(struct cf_node_info, version)},
    {"Release", "u", read_u32, offsetof(struct cf_node_info, release)},
    {"Mode", "s", read_str, offsetof(struct cf_node_info, mode)},
    {"State", "s", read_str, offsetof(struct cf_node_info, state)},
    {"LastError", "s", read_str, offsetof(struct cf_node_info, last_error)},
    {"LastSeen", "t", read_u64, offsetof(struct cf_node_info, last_seen)},
    {"Configured", "b", read_bool, offsetof(struct cf_node_info, configured)},
    {"RunningSha256", "s", read_str, offsetof(struct cf_node_info, running_sha256)},
    {"LastUpdateResult", "s", read_str, offsetof(struct cf_node_info, last_update_result)},
    {"LastUpdateJob", "u", read_u32, offsetof(struct cf_node_info, last_update_job)},
    {"LastUpdateTime", "t", read_u64, offsetof(struct cf_node_info, last_update_time)},
    {"LastUpdateStatus", "s", read_str, offsetof(struct cf_node_info, last_update_status)},
    {"Bank", "y", read_u8, offsetof(struct cf_node_info, bank)},
    {"Trial", "s", read_str, offsetof(struct cf_node_info, trial)},
    {"Protocol", "s", read_str, offsetof(struct cf_node_info, protocol)},
    {"Identity", "s", read_str, offsetof(struct cf_node_info, identity)},
    {0},
};

static const struct prop job_props[] = {
    {"Id", "u", read_u32, offsetof(struct cf_job_info, id)},
    {"State", "s", read_str, offsetof(struct cf_job_info, state)},
    {"ImageVersion", "s", read_str, offsetof(struct cf_job_info, image_version)},
    {"ImageHardwareId", "q", read_u16, offsetof(struct cf_job_info, image_hardware_id)},
    {"ImageRelease", "u", read_u32, offsetof(struct cf_job_info, image_release)},
    {"ImageSha256", "s", read_str, offsetof(struct cf_job_info, image_sha256)},
    {"Target", "s", read_str, offsetof(struct cf_job_info, target)},
    {"Progress", "a(ossstt)", read_progress, offsetof(struct cf_job_info, nodes)},
    {"Created", "t", read_u64, offsetof(struct cf_job_info, created)},
    {"Finished", "t", read_u64, offsetof(struct cf_job_info, finished)},
    {"Started", "t", read_u64, offsetof(struct cf_job_info, started)},
    {"Skipped", "a(ss)", read_pairs, offsetof(struct cf_job_info, skipped)},
    {"HawkbitActions", "at", read_u64_list, offsetof(struct cf_job_info, hawkbit_actions)},
    {0},
};

int cf_manager_info_read(sd_bus_message *m, struct cf_manager_info *info)
{
        return read_props(m, manager_props, info);
}

int cf_node_info_read(sd_bus_message *m, struct cf_node_info *info)
{
        return read_props(m, node_props, info);
}

int cf_job_info_read(sd_bus_message *m, struct cf_job_info *info)
{
        return read_props(m, job_props, info);
}

static int get_all(sd_bus *bus, const char *path, const char *iface, const char *what,
                   int (*read)(sd_bus_message *, void *), void *info)
{
        _cf_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cf_cleanup_bus_message_ sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, CF_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                                   &error, &reply, "s", iface);
        if (r < 0)
                return cf_bus_report_error(what, &error, r);
        r = read(reply, info);
        if (r < 0)
                return cf_error(CF_EXIT_FAILED, "failed", "%s: unexpected reply from canfleetd: %s", what,
                                strerror(-r));
        return CF_EXIT_OK;
}

static int manager_read_cb(sd_bus_message *m, void *info)
{
        return cf_manager_info_read(m, info);
}
static int node_read_cb(sd_bus_message *m, void *info)
{
        return cf_node_info_read(m, info);
}
static int job_read_cb(sd_bus_message *m, void *info)
{
        return cf_job_info_read(m, info);
}

int cf_manager_get(sd_bus *bus, struct cf_manager_info *info)
{
        return get_all(bus, CF_MANAGER_PATH, CF_MANAGER_IFACE, "reading canfleetd's state", manager_read_cb,
                       info);
}

int cf_node_get(sd_bus *bus, const char *path, struct cf_node_info *info)
{
        if (!info->path && !(info->path = strdup(path)))
                return CF_EXIT_FAILED;
        return get_all(bus, path, CF_NODE_IFACE, path, node_read_cb, info);
}

int cf_job_get(sd_bus *bus, const char *path, struct cf_job_info *info)
{
        if (!info->path && !(info->path = strdup(path)))
                return CF_EXIT_FAILED;
        return get_all(bus, path, CF_JOB_IFACE, path, job_read_cb, info);
}

void cf_manager_info_done(struct cf_manager_info *info)
{
        free(info->version);
        bus_list_free(info->buses, info->n_buses);
        strv_free_n(info->nodes, info->n_nodes);
        strv_free_n(info->jobs, info->n_jobs);
        free(info->fleet_server);
        fleet_info_done(&info->fleet);
        *info = (struct cf_manager_info){0};
}

void cf_node_info_done(struct cf_node_info *info)
{
        free(info->path);
        free(info->bus);
        free(info->uid);
        free(info->version);
        free(info->mode);
        free(info->state);
        free(info->last_error);
        free(info->running_sha256);
        free(info->last_update_result);
        free(info->last_update_status);
        free(info->trial);
        free(info->protocol);
        free(info->identity);
        *info = (struct cf_node_info){0};
}

void cf_job_info_done(struct cf_job_info *info)
{
        free(info->path);
        free(info->state);
        free(info->image_version);
        free(info->image_sha256);
        free(info->target);
        progress_list_free(info->nodes, info->n_nodes);
        strv_free_n(info->skipped, 2 * info->n_skipped);
        free(info->hawkbit_actions);
        *info = (struct cf_job_info){0};
}

char *cf_job_path_from_arg(const char *arg)
{
        char *path = NULL;

        if (arg[0] == '/') {
                if (!sd_bus_object_path_is_valid(arg)) {
                        errno = EINVAL;
                        return NULL;
                }
                return strdup(arg);
        }
        /* Plain decimal only: "3", not "0x3" or " 3", so that a typo never names another job. */
        if (arg[0] < '1' || arg[0] > '9' || strlen(arg) > 9 || arg[strspn(arg, "0123456789")] != '\0') {
                errno = EINVAL;
                return NULL;
        }
        if (asprintf(&path, CF_JOB_PREFIX "/%s", arg) < 0)
                return NULL;
        return path;
}

bool cf_job_state_is_final(const char *state)
{
        return state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
                         strcmp(state, "cancelled") == 0);
}

int cf_job_exit_code(const struct cf_job_info *job)
{
        /* The exit code follows what the nodes run: a cancel that came after every node was reset
         * into the new image (or already ran it) leaves the fleet updated, so that is success. */
        if (job->state && strcmp(job->state, "cancelled") == 0 && job->n_nodes > 0) {
                bool all_new = true;
                for (size_t i = 0; i < job->n_nodes && all_new; i++)
                        all_new = job->nodes[i].step && (strcmp(job->nodes[i].step, "done") == 0 ||
                                                         strcmp(job->nodes[i].step, "confirmed") == 0 ||
                                                         strcmp(job->nodes[i].step, "up-to-date") == 0);
                if (all_new)
                        return CF_EXIT_OK;
        }
        return cf_job_state_exit_code(job->state);
}

int cf_job_state_exit_code(const char *state)
{
        if (state && strcmp(state, "done") == 0)
                return CF_EXIT_OK;
        if (state && strcmp(state, "cancelled") == 0)
                return CF_EXIT_CANCELLED;
        return CF_EXIT_FAILED;
}

int cf_nodes_get(sd_bus *bus, char **paths, size_t n, struct cf_node_info **ret)
{
        struct cf_node_info *v = calloc(n ? n : 1, sizeof(*v));
        int r = CF_EXIT_OK;

        if (!v)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        for (size_t i = 0; i < n && r == CF_EXIT_OK; i++)
                r = cf_node_get(bus, paths[i], &v[i]);
        *ret = v;
        return r;
}

void cf_nodes_free(struct cf_node_info *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                cf_node_info_done(&v[i]);
        free(v);
}

int cf_jobs_get(sd_bus *bus, char **paths, size_t n, struct cf_job_info **ret)
{
        struct cf_job_info *v = calloc(n ? n : 1, sizeof(*v));
        int r = CF_EXIT_OK;

        if (!v)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        for (size_t i = 0; i < n && r == CF_EXIT_OK; i++)
                r = cf_job_get(bus, paths[i], &v[i]);
        *ret = v;
        return r;
}

void cf_jobs_free(struct cf_job_info *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                cf_job_info_done(&v[i]);
        free(v);
}

void cf_node_name(const struct cf_node_info *n, char *buf, size_t size)
{
        snprintf(buf, size, "%s:%u", n->bus ? n->bus : "", n->station);
}

const char *cf_strip_node_prefix(const char *error, const char *node)
{
        size_t len = strlen(node);

        /* canfleetd's node errors start with the node's name ("bus0:1: …", "bus0:1 runs 2.0.0 from bank 2
         * on trial: …"); the caller names the node already */
        if (error && strncmp(error, node, len) == 0 && error[len] == ':' && error[len + 1] == ' ')
                return error + len + 2;
        if (error && strncmp(error, node, len) == 0 && error[len] == ' ' && error[len + 1])
                return error + len + 1;
        return error;
}
