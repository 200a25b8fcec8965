/* io.canfleet.Gateway1 over sd-bus: translate calls to the manager, check credentials, publish properties
 * and signals. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus-api.h"
#include "canfleet/node-status.h"
#include "canfleetd-config.h"
#include "cleanup.h"
#include "canfleet/sha256.h"
#include "fd-read.h"
#include "bundle-cache.h"
#include "fetcher.h"
#include "fleet-server.h"
#include "log.h"
#include "serial-job.h"

#define NODE_PREFIX   CF_OBJECT_ROOT "/node"
#define JOB_PREFIX    CF_OBJECT_ROOT "/job"
#define IFACE_MANAGER "io.canfleet.Gateway1.Manager"
#define IFACE_NODE    "io.canfleet.Gateway1.Node"
#define IFACE_JOB     "io.canfleet.Gateway1.Job"

/* ---- credentials ------------------------------------------------------------------------------- */

static int lookup_group(const char *name, gid_t *ret)
{
        struct group grp, *res = NULL;
        char buf[4096];
        int r = getgrnam_r(name, &grp, buf, sizeof buf, &res);
        if (r != 0)
                return -r;
        if (!res)
                return -ENOENT;
        *ret = res->gr_gid;
        return 0;
}

/* Root, the daemon's own user, or a member of group "canfleet" may change things. */
static int check_privileged(sd_bus_message *msg, sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *c = NULL;
        int r = sd_bus_query_sender_creds(msg,
                                          SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID |
                                              SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT,
                                          &c);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot check the caller's credentials: %s",
                                               strerror(-r));
        uid_t uid;
        if (sd_bus_creds_get_euid(c, &uid) < 0 && sd_bus_creds_get_uid(c, &uid) < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "The caller's user is unknown");
        if (uid == 0 || uid == geteuid())
                return 0;
        gid_t cf;
        if (lookup_group("canfleet", &cf) >= 0) {
                gid_t g;
                if (sd_bus_creds_get_egid(c, &g) >= 0 && g == cf)
                        return 0;
                const gid_t *gids;
                int n = sd_bus_creds_get_supplementary_gids(c, &gids);
                for (int i = 0; i < n; i++)
                        if (gids[i] == cf)
                                return 0;
        }
        return sd_bus_error_setf(
            error, SD_BUS_ERROR_ACCESS_DENIED,
            "Changing anything needs root or membership of group canfleet (caller uid %u)", (unsigned) uid);
}

/* ---- manager object ----------------------------------------------------------------------------- */

static int prop_version(sd_bus *bus, const char *path, const char *iface, const char *prop,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", CANFLEET_VERSION);
}

/* The hawkBit connection in one line ("" without a fleet server): read when asked, no change signals
 * (it changes with every poll). */
static int prop_fleet_server(sd_bus *bus, const char *path, const char *iface, const char *prop,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        char buf[512];
        fleet_server_describe(m->fleet, buf, sizeof buf);
        return sd_bus_message_append(reply, "s", buf);
}

static int append_entry(sd_bus_message *reply, const char *key, const char *sig, ...)
{
        va_list ap;
        int r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 's', key);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', sig);
        if (r >= 0) {
                va_start(ap, sig);
                r = sd_bus_message_appendv(reply, sig, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* The hawkBit connection as fields (empty without a fleet server), read when asked like FleetServer. */
static int prop_fleet_server_state(sd_bus *bus, const char *path, const char *iface, const char *prop,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        struct fleet_server_state st;
        int k = fleet_server_get_state(m->fleet, &st);
        int r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0 && k >= 0) {
                if (r >= 0)
                        r = append_entry(reply, "Url", "s", st.url);
                if (r >= 0)
                        r = append_entry(reply, "Tenant", "s", st.tenant);
                if (r >= 0)
                        r = append_entry(reply, "State", "s", st.state);
                if (r >= 0)
                        r = append_entry(reply, "LastPoll", "t", st.last_poll);
                if (r >= 0)
                        r = append_entry(reply, "LastError", "s", st.last_error);
                if (r >= 0)
                        r = append_entry(reply, "LastErrorTime", "t", st.last_error_time);
                if (r >= 0)
                        r = append_entry(reply, "NextPoll", "t", st.next_poll);
                if (r >= 0)
                        r = append_entry(reply, "Targets", "u", st.targets);
                if (r >= 0)
                        r = append_entry(reply, "FeedbackQueued", "u", st.feedback_queued);
                if (r >= 0)
                        r = append_entry(reply, "Requests", "t", st.requests);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", "ActionsInProgress");
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'v', "at");
                if (r >= 0)
                        r = sd_bus_message_append_array(reply, 't', st.actions,
                                                        st.n_actions * sizeof *st.actions);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        free(st.actions);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_buses(sd_bus *bus, const char *path, const char *iface, const char *prop,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "(sssus)");
        for (size_t i = 0; r >= 0 && i < m->n_buses; i++) {
                CanBus *b = m->buses[i];
                uint32_t rate = can_transport_bitrate(b->transport);
                const char *why = manager_bus_error(b);
                r = sd_bus_message_append(reply, "(sssus)", b->conf->name, b->conf->transport,
                                          cf_link_state_str(b->transport->state),
                                          rate ? rate : b->conf->bitrate, why ? why : "");
        }
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_nodes(sd_bus *bus, const char *path, const char *iface, const char *prop,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < m->n_buses; i++)
                for (size_t k = 0; r >= 0 && k < m->buses[i]->n_nodes; k++)
                        if (m->buses[i]->nodes[k]->exported)
                                r = sd_bus_message_append(reply, "o", m->buses[i]->nodes[k]->path);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_jobs(sd_bus *bus, const char *path, const char *iface, const char *prop,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < m->n_jobs; i++)
                r = sd_bus_message_append(reply, "o", m->jobs[i]->path);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int method_scan(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = check_privileged(msg, error);
        if (r < 0)
                return r;
        CanBus *b = manager_find_bus(m, name);
        if (!b)
                return sd_bus_error_setf(error, CF_ERROR_NO_SUCH_BUS, "No bus \"%s\" is configured", name);
        if (b->scan_reply || (b->scanning && !b->startup_probe))
                return sd_bus_error_setf(error, CF_ERROR_BUSY, "A scan of %s is already running", name);
        b->scan_reply = sd_bus_message_ref(msg);
        r = manager_scan(b);
        if (r < 0) {
                b->scan_reply = sd_bus_message_unref(b->scan_reply);
                if (r == -ENETDOWN)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "The link of %s is %s", name,
                                                 cf_link_state_str(b->transport->state));
                return sd_bus_error_set_errnof(error, r, "Cannot scan %s: %s", name, strerror(-r));
        }
        return 1; /* answered by bus_scan_done() */
}

void bus_scan_done(CanBus *b)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = TAKE_PTR(b->scan_reply);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        if (!call)
                return;
        int r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < b->n_nodes; i++) {
                Node *n = b->nodes[i];
                if (n->exported && (strcmp(n->state, "online") == 0 || strcmp(n->state, "updating") == 0))
                        r = sd_bus_message_append(reply, "o", n->path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0) {
                log_warning_errno(r, "Failed to answer a Scan of %s: %m", b->conf->name);
                sd_bus_reply_method_errnof(call, r, "Cannot answer: %s", strerror(-r));
        }
}

/* The largest file StartUpdate reads or StartUpdateUrl downloads: a bundle with the largest CMS (a plain
 * image is smaller). */
#define UPDATE_MAX_SIZE CF_BUNDLE_MAX_SIZE
/* How long a pipe's writer may take to hand the whole file over. */
#define UPDATE_READ_TIMEOUT_USEC (30ull * 1000000ull)
/* StartUpdate calls whose file is still being read, at most: each holds up to UPDATE_MAX_SIZE. */
#define UPDATE_READS_MAX 8

/* A StartUpdate call waiting for its file's bytes; StartUpdateUrl uses it only while it reads its
 * arguments (its job starts at once). */
struct pending_update {
        Manager *m;
        sd_bus_message *call;
        char **refs; /* the node references as given, resolved again once the bytes are in */
        size_t n_refs;
        bool all, force;
        bool plan; /* PlanUpdate: answer what StartUpdate would do, start nothing */
};

static void pending_update_free(void *userdata)
{
        struct pending_update *p = userdata;
        if (!p)
                return;
        sd_bus_message_unref(p->call);
        for (size_t i = 0; i < p->n_refs; i++)
                free(p->refs[i]);
        free(p->refs);
        free(p);
}

static void pending_update_freep(struct pending_update **p)
{
        pending_update_free(*p);
}

/* The manager's answer as a D-Bus error (a reply when r == 0). */
static int start_update_error(int r, const char *why, sd_bus_error *error)
{
        switch (r) {
        case -EBADMSG:
                return sd_bus_error_setf(error, CF_ERROR_INVALID_IMAGE, "%s", why ? why : "Invalid image");
        case -EKEYREJECTED:
                return sd_bus_error_setf(error, CF_ERROR_NOT_TRUSTED, "%s", why ? why : "Not trusted");
        case -ERANGE:
                return sd_bus_error_setf(error, CF_ERROR_ROLLBACK, "%s", why ? why : "Anti-rollback");
        case -EXDEV:
                return sd_bus_error_setf(error, CF_ERROR_HARDWARE_MISMATCH, "%s",
                                         why ? why : "Hardware mismatch");
        case -EBUSY:
                return sd_bus_error_setf(error, CF_ERROR_BUSY, "%s", why ? why : "Busy");
        case -EINVAL:
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s",
                                         why ? why : "Invalid arguments");
        default:
                if (why)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "%s", why);
                return sd_bus_error_set_errnof(error, r, "Cannot start the update: %s", strerror(-r));
        }
}

/* PlanUpdate's answer: (s trust, s refusal, a(sss) nodes), manager_plan_update()'s findings. */
static void complete_plan(struct pending_update *p, const uint8_t *data, size_t size, Node **nodes)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) struct plan_entry *v = NULL;
        _cleanup_(freep) char *trust = NULL, *refusal = NULL;
        size_t n = 0;
        int r = manager_plan_update(p->m, data, size, nodes, p->n_refs, p->all, p->force, &v, &n, &trust,
                                    &refusal);
        if (r >= 0)
                r = sd_bus_message_new_method_return(p->call, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "ss", trust, refusal ? refusal : "");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sss)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(sss)", v[i].node, v[i].verdict, v[i].reason);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        else
                r = sd_bus_reply_method_errnof(p->call, r, "Cannot plan the update: %s", strerror(-r));
        if (r < 0)
                log_warning_errno(r, "Failed to answer a PlanUpdate: %m");
}

/* The bytes are in (or error is set): start the job and answer the call. */
static void complete_update(struct pending_update *p, const uint8_t *data, size_t size, sd_bus_error *error)
{
        _cleanup_(freep) Node **nodes = NULL;
        _cleanup_(freep) char *why = NULL;
        Manager *m = p->m;
        Job *j = NULL;
        int r = sd_bus_error_is_set(error) ? -EIO : 0;

        if (r >= 0) {
                nodes = calloc(p->n_refs ? p->n_refs : 1, sizeof *nodes);
                if (!nodes)
                        r = sd_bus_error_set_errno(error, -ENOMEM);
        }
        for (size_t i = 0; r >= 0 && i < p->n_refs; i++)
                /* checked before the read; a node cannot have gone since, but say so if it did */
                if (manager_find_node(m, p->refs[i], &nodes[i]) < 0)
                        r = sd_bus_error_setf(error, CF_ERROR_NO_SUCH_NODE, "No node \"%s\"", p->refs[i]);
        if (r >= 0 && p->plan) {
                complete_plan(p, data, size, nodes);
                return;
        }
        if (r >= 0) {
                r = manager_start_update(m, data, size, nodes, p->n_refs, p->all, p->force, &j, &why);
                if (r < 0)
                        start_update_error(r, why, error);
        }
        if (r >= 0)
                r = sd_bus_reply_method_return(p->call, "o", j->path);
        else
                r = sd_bus_reply_method_error(p->call, error);
        if (r < 0)
                log_warning_errno(r, "Failed to answer a StartUpdate: %m");
}

static void update_read_done(FdRead *rd, int r, uint8_t *data, size_t size, void *userdata)
{
        _cleanup_(freep) uint8_t *bytes = data;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (r == -EFBIG)
                sd_bus_error_setf(
                    &error, CF_ERROR_INVALID_IMAGE,
                    "the file is larger than %u bytes: neither a packed area image nor a signed "
                    "bundle (.cfb)",
                    UPDATE_MAX_SIZE);
        else if (r == -ETIMEDOUT)
                /* not ...Error.Timeout: clients take that for "no answer from the daemon" */
                sd_bus_error_setf(&error, SD_BUS_ERROR_FAILED,
                                  "the file descriptor did not reach its end within %llu s (a pipe's writer "
                                  "must close it)",
                                  UPDATE_READ_TIMEOUT_USEC / 1000000ull);
        else if (r < 0)
                sd_bus_error_set_errnof(&error, r, "Cannot read the image from the file descriptor: %s",
                                        strerror(-r));
        complete_update(userdata, bytes, size, &error);
}

/* The arguments StartUpdate and StartUpdateUrl share: nodes "as" and options "a{sv}". */
static int read_update_args(sd_bus_message *msg, Manager *m, struct pending_update *p, sd_bus_error *error)
{
        size_t cap = 0;
        int r = sd_bus_message_enter_container(msg, 'a', "s");
        if (r < 0)
                return r;
        const char *ref;
        while ((r = sd_bus_message_read(msg, "s", &ref)) > 0) {
                Node *node;
                int k = manager_find_node(m, ref, &node);
                if (k == -EINVAL)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "\"%s\" is not a node reference (BUS:SA with SA in decimal "
                                                 "without sign, spaces or leading zeros, or a node path)",
                                                 ref);
                if (k < 0)
                        return sd_bus_error_setf(error, CF_ERROR_NO_SUCH_NODE, "No node \"%s\"", ref);
                if (p->n_refs == cap) {
                        cap = cap ? cap * 2 : 16;
                        char **q = realloc(p->refs, cap * sizeof *q);
                        if (!q)
                                return -ENOMEM;
                        p->refs = q;
                }
                p->refs[p->n_refs] = strdup(ref);
                if (!p->refs[p->n_refs])
                        return -ENOMEM;
                p->n_refs++;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                bool *dest = strcmp(key, "all") == 0     ? &p->all
                             : strcmp(key, "force") == 0 ? &p->force
                                                         : NULL;
                if (!dest)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown option \"%s\" (known: \"all\", \"force\")", key);
                r = sd_bus_message_enter_container(msg, 'v', "b");
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option \"%s\" must be a boolean (b)", key);
                int v;
                r = sd_bus_message_read(msg, "b", &v);
                if (r < 0)
                        return r;
                *dest = v;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;

        if (p->n_refs == 0 && !p->all)
                return sd_bus_error_set(
                    error, SD_BUS_ERROR_INVALID_ARGS,
                    "No node given: name nodes, or set the option \"all\" to update every node");
        if (p->n_refs > 0 && p->all)
                return sd_bus_error_set(
                    error, SD_BUS_ERROR_INVALID_ARGS,
                    "Nodes given together with the option \"all\": give one or the other");
        p->m = m;
        p->call = sd_bus_message_ref(msg);
        return 0;
}

/* StartUpdate and PlanUpdate (plan): the same arguments, the same read of the descriptor. */
static int start_or_plan_update(sd_bus_message *msg, Manager *m, bool plan, sd_bus_error *error)
{
        _cleanup_(pending_update_freep) struct pending_update *p = calloc(1, sizeof *p);
        int fd, r;

        if (!p)
                return -ENOMEM;
        p->plan = plan;
        /* Privilege first: an unprivileged caller must not learn from the errors which nodes exist. */
        r = check_privileged(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "h", &fd);
        if (r < 0)
                return r;
        r = read_update_args(msg, m, p, error);
        if (r < 0)
                return r;

        if (fd_read_count(m->reads) >= UPDATE_READS_MAX)
                return sd_bus_error_setf(error, CF_ERROR_BUSY,
                                         "%u updates are already being read from their callers; try again",
                                         UPDATE_READS_MAX);
        /* The file is read once into our memory, and the answer waits for its end: a pipe or a socket
         * is read without blocking (every other bus goes on), a regular file at once. */
        r = fd_read_start(m->event, fd, UPDATE_MAX_SIZE, UPDATE_READ_TIMEOUT_USEC, update_read_done,
                          pending_update_free, p, &m->reads, NULL);
        if (r == -EISDIR || r == -EBADFD || r == -EBADF)
                return sd_bus_error_setf(
                    error, SD_BUS_ERROR_INVALID_ARGS,
                    "The file descriptor is %s: pass a regular file, a pipe or a socket "
                    "open for reading",
                    r == -EISDIR  ? "a directory"
                    : r == -EBADF ? "not open for reading"
                                  : "a device or another kind of file");
        if (r < 0)
                return sd_bus_error_set_errnof(
                    error, r, "Cannot read the image from the file descriptor: %s", strerror(-r));
        TAKE_PTR(p); /* the read owns it now */
        return 1;    /* answered by update_read_done() */
}

static int method_start_update(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return start_or_plan_update(msg, userdata, false, error);
}

static int method_plan_update(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return start_or_plan_update(msg, userdata, true, error);
}

static int method_start_update_url(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_(pending_update_freep) struct pending_update *p = calloc(1, sizeof *p);
        _cleanup_(freep) char *part = NULL;
        const char *url;
        int r;

        if (!p)
                return -ENOMEM;
        r = check_privileged(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &url);
        if (r < 0)
                return r;
        r = read_update_args(msg, m, p, error);
        if (r < 0)
                return r;
        /* file:// would have the daemon read files with its own rights on a caller's behalf: the caller
         * opens files itself and hands over the descriptor (StartUpdate; canfleetctl does that). */
        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                return sd_bus_error_setf(
                    error, SD_BUS_ERROR_INVALID_ARGS,
                    "\"%s\" is not an http:// or https:// URL (a local file is opened by "
                    "the caller and passed to StartUpdate)",
                    url);
        r = fetch_url_check(url);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "\"%s\" is not a valid URL", url);
        _cleanup_(freep) char *shown = bundle_url_for_log(url);
        _cleanup_(freep) Node **nodes = calloc(p->n_refs ? p->n_refs : 1, sizeof *nodes);
        _cleanup_(freep) char *why = NULL;
        if (!shown || !nodes)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_refs; i++)
                if (manager_find_node(m, p->refs[i], &nodes[i]) < 0)
                        return sd_bus_error_setf(error, CF_ERROR_NO_SUCH_NODE, "No node \"%s\"", p->refs[i]);
        /* The job is answered at once; its nodes show the download ("downloading", bytes), then the
         * checks of StartUpdate and the transfer. A refusal after this point fails the job's nodes. */
        Job *j;
        r = manager_start_update_url(m, url, shown, nodes, p->n_refs, p->all, p->force, &j, &why);
        if (r < 0)
                return start_update_error(r, why, error);
        return sd_bus_reply_method_return(msg, "o", j->path);
}

static const sd_bus_vtable manager_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Buses", "a(sssus)", prop_buses, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Nodes", "ao", prop_nodes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Jobs", "ao", prop_jobs, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("FleetServer", "s", prop_fleet_server, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
    SD_BUS_PROPERTY("FleetServerState", "a{sv}", prop_fleet_server_state, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
    SD_BUS_METHOD_WITH_NAMES("Scan", "s", SD_BUS_PARAM(bus), "ao", SD_BUS_PARAM(nodes), method_scan,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("StartUpdate", "hasa{sv}",
                             SD_BUS_PARAM(image) SD_BUS_PARAM(nodes) SD_BUS_PARAM(options), "o",
                             SD_BUS_PARAM(job), method_start_update, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("StartUpdateUrl", "sasa{sv}",
                             SD_BUS_PARAM(url) SD_BUS_PARAM(nodes) SD_BUS_PARAM(options), "o",
                             SD_BUS_PARAM(job), method_start_update_url, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("PlanUpdate", "hasa{sv}",
                             SD_BUS_PARAM(image) SD_BUS_PARAM(nodes) SD_BUS_PARAM(options), "ssa(sss)",
                             SD_BUS_PARAM(trust) SD_BUS_PARAM(refusal) SD_BUS_PARAM(plan), method_plan_update,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

/* ---- node objects ------------------------------------------------------------------------------- */

static int node_find(sd_bus *bus, const char *path, const char *iface, void *userdata, void **found,
                     sd_bus_error *error)
{
        Manager *m = userdata;
        Node *n;
        if (manager_find_node(m, path, &n) < 0)
                return 0;
        *found = n;
        return 1;
}

static int node_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error)
{
        Manager *m = userdata;
        size_t cnt = 0, k = 0;
        for (size_t i = 0; i < m->n_buses; i++)
                for (size_t j = 0; j < m->buses[i]->n_nodes; j++)
                        cnt += m->buses[i]->nodes[j]->exported;
        char **l = calloc(cnt + 1, sizeof *l);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buses; i++)
                for (size_t j = 0; j < m->buses[i]->n_nodes; j++)
                        if (m->buses[i]->nodes[j]->exported) {
                                l[k] = strdup(m->buses[i]->nodes[j]->path);
                                if (!l[k]) {
                                        for (size_t x = 0; x < k; x++)
                                                free(l[x]);
                                        free(l);
                                        return -ENOMEM;
                                }
                                k++;
                        }
        *nodes = l;
        return 1;
}

static int node_prop(sd_bus *bus, const char *path, const char *iface, const char *prop,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Node *n = userdata;
        if (strcmp(prop, "Bus") == 0)
                return sd_bus_message_append(reply, "s", n->bus->conf->name);
        if (strcmp(prop, "Station") == 0)
                return sd_bus_message_append(reply, "q", n->nc.station);
        if (strcmp(prop, "CroId") == 0)
                return sd_bus_message_append(reply, "u", n->nc.cro_id);
        if (strcmp(prop, "DtoId") == 0)
                return sd_bus_message_append(reply, "u", n->nc.dto_id);
        if (strcmp(prop, "HardwareId") == 0)
                return sd_bus_message_append(reply, "q", n->identified ? n->hw_id : 0);
        if (strcmp(prop, "Uid") == 0)
                return sd_bus_message_append(reply, "s", n->identified ? n->uid : "");
        if (strcmp(prop, "BootloaderVersion") == 0)
                return sd_bus_message_append(reply, "q", n->identified ? n->boot_version : 0);
        if (strcmp(prop, "Version") == 0)
                return sd_bus_message_append(reply, "s", n->version);
        if (strcmp(prop, "Release") == 0)
                return sd_bus_message_append(reply, "u",
                                             n->has_image || (node_is_serial(n) && n->version[0]) ? n->running.release : 0);
        if (strcmp(prop, "Protocol") == 0)
                return sd_bus_message_append(reply, "s", cf_node_protocol_str(node_protocol(n)));
        if (strcmp(prop, "Identity") == 0)
                return sd_bus_message_append(reply, "s", n->identity);
        if (strcmp(prop, "Mode") == 0)
                return sd_bus_message_append(reply, "s",
                                             !n->identified                  ? "unknown"
                                             : n->mode == CF_MODE_APP        ? "application"
                                             : n->mode == CF_MODE_BOOTLOADER ? "bootloader"
                                                                             : "unknown");
        if (strcmp(prop, "State") == 0)
                return sd_bus_message_append(reply, "s", n->state);
        if (strcmp(prop, "LastError") == 0)
                return sd_bus_message_append(reply, "s", n->last_error ? n->last_error : "");
        if (strcmp(prop, "LastSeen") == 0)
                return sd_bus_message_append(reply, "t", n->last_seen);
        if (strcmp(prop, "Configured") == 0)
                return sd_bus_message_append(reply, "b", n->configured);
        if (strcmp(prop, "RunningSha256") == 0)
                /* a serial node: the image canfleetd last flashed and verified on it (its loader cannot
                 * report what runs) */
                return sd_bus_message_append(
                    reply, "s", n->has_image || (node_is_serial(n) && n->version[0]) ? n->running_sha : "");
        if (strcmp(prop, "LastUpdateResult") == 0)
                return sd_bus_message_append(reply, "s", n->last_result);
        if (strcmp(prop, "LastUpdateJob") == 0)
                return sd_bus_message_append(reply, "u", n->last_job);
        if (strcmp(prop, "LastUpdateTime") == 0)
                return sd_bus_message_append(reply, "t", n->last_time);
        if (strcmp(prop, "LastUpdateStatus") == 0) {
                /* The node's own report (status block, node-status.h), as of its last identify. */
                static const char *const words[] = {"none", "installed", "rejected", "verify failed",
                                                    "gave up", "swapped"};
                return sd_bus_message_append(reply, "s",
                                             !n->identified             ? ""
                                             : n->last_update < 6 ? words[n->last_update]
                                                                  : "unknown");
        }
        if (strcmp(prop, "Bank") == 0)
                return sd_bus_message_append(reply, "y", n->identified ? n->bank : 0);
        if (strcmp(prop, "Trial") == 0) {
                static const char *const trials[] = {"none", "pending", "confirmed", "reverted"};
                return sd_bus_message_append(reply, "s",
                                             !n->identified || n->bank == 0 ? ""
                                             : n->trial < 4                 ? trials[n->trial]
                                                                            : "unknown");
        }
        return -ENOENT;
}

static const sd_bus_vtable node_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Bus", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Station", "q", node_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("CroId", "u", node_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("DtoId", "u", node_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("HardwareId", "q", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Uid", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("BootloaderVersion", "q", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Version", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Release", "u", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Mode", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("State", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastError", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastSeen", "t", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Configured", "b", node_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("RunningSha256", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastUpdateResult", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastUpdateJob", "u", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastUpdateTime", "t", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastUpdateStatus", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Bank", "y", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Trial", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Protocol", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Identity", "s", node_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_VTABLE_END,
};

/* ---- job objects -------------------------------------------------------------------------------- */

static Job *job_of_path(Manager *m, const char *path)
{
        if (strncmp(path, JOB_PREFIX "/", strlen(JOB_PREFIX) + 1) != 0)
                return NULL;
        unsigned id;
        if (manager_parse_id(path + strlen(JOB_PREFIX) + 1, &id) < 0)
                return NULL;
        return manager_find_job(m, id);
}

static int job_find(sd_bus *bus, const char *path, const char *iface, void *userdata, void **found,
                    sd_bus_error *error)
{
        Job *j = job_of_path(userdata, path);
        if (!j)
                return 0;
        *found = j;
        return 1;
}

static int job_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error)
{
        Manager *m = userdata;
        char **l = calloc(m->n_jobs + 1, sizeof *l);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_jobs; i++) {
                l[i] = strdup(m->jobs[i]->path);
                if (!l[i]) {
                        for (size_t x = 0; x < i; x++)
                                free(l[x]);
                        free(l);
                        return -ENOMEM;
                }
        }
        *nodes = l;
        return 1;
}

static int job_prop(sd_bus *bus, const char *path, const char *iface, const char *prop,
                    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Job *j = userdata;
        if (strcmp(prop, "Id") == 0)
                return sd_bus_message_append(reply, "u", j->id);
        if (strcmp(prop, "State") == 0)
                return sd_bus_message_append(reply, "s", job_state_str(j->state));
        if (strcmp(prop, "ImageVersion") == 0)
                return sd_bus_message_append(reply, "s", j->version);
        if (strcmp(prop, "ImageHardwareId") == 0)
                return sd_bus_message_append(reply, "q", j->info.hw_id);
        if (strcmp(prop, "ImageRelease") == 0)
                return sd_bus_message_append(reply, "u", j->info.release);
        if (strcmp(prop, "ImageSha256") == 0)
                return sd_bus_message_append(reply, "s", j->payload_sha);
        if (strcmp(prop, "Target") == 0)
                return sd_bus_message_append(reply, "s", j->target[0] ? j->target : "ccp");
        if (strcmp(prop, "Created") == 0)
                return sd_bus_message_append(reply, "t", j->created);
        if (strcmp(prop, "Finished") == 0)
                return sd_bus_message_append(reply, "t", j->finished);
        if (strcmp(prop, "Started") == 0)
                return sd_bus_message_append(reply, "t", j->started);
        if (strcmp(prop, "HawkbitActions") == 0) {
                _cleanup_(freep) uint64_t *ids = NULL;
                size_t n = 0;
                (void) fleet_server_job_actions(j->m, j->id, &ids, &n); /* unreadable: shown as none */
                return sd_bus_message_append_array(reply, 't', ids, n * sizeof *ids);
        }
        if (strcmp(prop, "Skipped") == 0) {
                int r = sd_bus_message_open_container(reply, 'a', "(ss)");
                for (size_t i = 0; r >= 0 && i < j->n_skipped; i++)
                        r = sd_bus_message_append(reply, "(ss)", j->skipped[2 * i], j->skipped[2 * i + 1]);
                return r < 0 ? r : sd_bus_message_close_container(reply);
        }
        if (strcmp(prop, "Progress") == 0) {
                int r = sd_bus_message_open_container(reply, 'a', "(ossstt)");
                for (size_t i = 0; r >= 0 && i < j->n_nodes; i++) {
                        FlashJob *f = &j->nodes[i];
                        bool dl = f->step == STEP_DOWNLOADING; /* the job's one download, for each node */
                        r = sd_bus_message_append(reply, "(ossstt)", f->node ? f->node->path : "/", f->ref,
                                                  flash_step_str(f->step), f->error ? f->error : "",
                                                  dl ? j->dl_done : f->bytes_done,
                                                  dl ? j->dl_total : f->bytes_total);
                }
                return r < 0 ? r : sd_bus_message_close_container(reply);
        }
        return -ENOENT;
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Job *j = userdata;
        int r = check_privileged(msg, error);
        if (r < 0)
                return r;
        r = job_cancel(j);
        if (r == -EALREADY)
                return sd_bus_error_setf(error, CF_ERROR_NOT_CANCELLABLE, "Job %u is %s", j->id,
                                         job_state_str(j->state));
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

static const sd_bus_vtable job_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Id", "u", job_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("State", "s", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ImageVersion", "s", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ImageHardwareId", "q", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ImageRelease", "u", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ImageSha256", "s", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Target", "s", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Progress", "a(ossstt)", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Created", "t", job_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Finished", "t", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Started", "t", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Skipped", "a(ss)", job_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("HawkbitActions", "at", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_METHOD("Cancel", NULL, NULL, method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("Completed", "s", SD_BUS_PARAM(state), 0),
    SD_BUS_VTABLE_END,
};

/* ---- emission ---------------------------------------------------------------------------------- */

static void emit_changed(Manager *m, const char *path, const char *iface, const char *first, va_list ap)
{
        if (!m->bus)
                return;
        char *names[16];
        size_t n = 0;
        for (const char *p = first; p && n < ELEMENTSOF(names) - 1; p = va_arg(ap, const char *))
                names[n++] = (char *) p;
        names[n] = NULL;
        int r = sd_bus_emit_properties_changed_strv(m->bus, path, iface, names);
        if (r < 0)
                log_debug_errno(r, "Failed to emit PropertiesChanged on %s: %m", path);
}

void bus_node_changed(Node *n, const char *prop, ...)
{
        if (!n->exported)
                return;
        va_list ap;
        va_start(ap, prop);
        emit_changed(n->m, n->path, IFACE_NODE, prop, ap);
        va_end(ap);
}

void bus_manager_changed(Manager *m, const char *prop, ...)
{
        va_list ap;
        va_start(ap, prop);
        emit_changed(m, CF_OBJECT_ROOT, IFACE_MANAGER, prop, ap);
        va_end(ap);
}

void bus_job_changed(Job *j, const char *prop, ...)
{
        va_list ap;
        va_start(ap, prop);
        emit_changed(j->m, j->path, IFACE_JOB, prop, ap);
        va_end(ap);
}

void bus_node_added(Node *n)
{
        if (n->m->bus)
                (void) sd_bus_emit_object_added(n->m->bus, n->path);
}

void bus_node_removed(Node *n)
{
        if (n->m->bus)
                (void) sd_bus_emit_object_removed(n->m->bus, n->path);
}

void bus_job_added(Job *j)
{
        if (j->m->bus)
                (void) sd_bus_emit_object_added(j->m->bus, j->path);
}

void bus_job_removed(Job *j)
{
        if (j->m->bus)
                (void) sd_bus_emit_object_removed(j->m->bus, j->path);
}

void bus_job_completed(Job *j)
{
        if (j->m->bus)
                (void) sd_bus_emit_signal(j->m->bus, j->path, IFACE_JOB, "Completed", "s",
                                          job_state_str(j->state));
}

/* ---- connection -------------------------------------------------------------------------------- */

int manager_connect_bus(Manager *m)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_add_object_vtable(bus, NULL, CF_OBJECT_ROOT, IFACE_MANAGER, manager_vtable, m);
        if (r >= 0)
                r = sd_bus_add_object_manager(bus, NULL, CF_OBJECT_ROOT);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(bus, NULL, NODE_PREFIX, IFACE_NODE, node_vtable, node_find,
                                               m);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(bus, NULL, NODE_PREFIX, node_enumerate, m);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(bus, NULL, JOB_PREFIX, IFACE_JOB, job_vtable, job_find, m);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(bus, NULL, JOB_PREFIX, job_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish the D-Bus objects: %m");
        r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        (void) sd_bus_set_exit_on_disconnect(bus, true);
        r = sd_bus_request_name(bus, CF_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire the name %s: %m", CF_BUS_NAME);
        m->bus = TAKE_PTR(bus);
        return 0;
}
