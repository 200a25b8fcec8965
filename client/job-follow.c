/*
 * Following a job. The matches are added before the call that starts or cancels the job, so no
 * change is lost; the job's properties are then read once, asynchronously, so that signals queued
 * before that reply are applied before it, and those after it on top of it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fleet-error.h"
#include "job-follow.h"

uint32_t cf_job_id_from_path(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? (uint32_t) strtoul(slash + 1, NULL, 10) : 0;
}

static void follow_finish(struct cf_follow *w)
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
        sd_event_exit(w->event, cf_job_exit_code(&w->job));
}

static void follow_changed(struct cf_follow *w)
{
        if (cf_job_state_is_final(w->job.state)) {
                follow_finish(w);
                return;
        }
        if (w->have_props && w->show)
                cf_progress_update(&w->progress, &w->job, false);
}

static int on_getall(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct cf_follow *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        w->getall = sd_bus_slot_unref(w->getall);
        if (e) {
                char what[160];
                snprintf(what, sizeof(what), "reading job %u", cf_job_id_from_path(w->path));
                sd_event_exit(w->event, cf_bus_report_error(what, e, -sd_bus_message_get_errno(m)));
                return 0;
        }
        if (cf_job_info_read(m, &w->job) < 0) {
                sd_event_exit(w->event,
                              cf_error(CF_EXIT_FAILED, "failed", "job %u: unexpected reply from canfleetd",
                                       cf_job_id_from_path(w->path)));
                return 0;
        }
        w->have_props = true;
        follow_changed(w);
        return 0;
}

static int follow_refresh(struct cf_follow *w)
{
        if (w->getall)
                return 0;
        return sd_bus_call_method_async(w->bus, &w->getall, CF_BUS_NAME, w->path,
                                        "org.freedesktop.DBus.Properties", "GetAll", on_getall, w, "s",
                                        CF_JOB_IFACE);
}

static bool is_our_job(struct cf_follow *w, sd_bus_message *m)
{
        const char *path = sd_bus_message_get_path(m);
        return w->path && path && strcmp(path, w->path) == 0 && !w->finished;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct cf_follow *w = userdata;
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
                r = follow_refresh(w);
        for (char **s = invalidated; s && *s; s++)
                free(*s);
        free(invalidated);
        if (r < 0)
                return 0;
        follow_changed(w);
        return 0;
}

static int on_completed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct cf_follow *w = userdata;
        const char *state;

        if (!is_our_job(w, m) || sd_bus_message_read_basic(m, 's', &state) < 0)
                return 0;
        char *copy = strdup(state);
        if (copy) {
                free(w->job.state);
                w->job.state = copy;
        }
        follow_finish(w);
        return 0;
}

static void report_gone(struct cf_follow *w, const char *why)
{
        uint32_t id = cf_job_id_from_path(w->path);

        if (w->show)
                cf_progress_abandon(&w->progress);
        cf_error(CF_EXIT_UNREACHABLE, "unreachable",
                 "%s while following job %u; canfleetd resumes unfinished jobs when it starts again", why,
                 id);
        cf_hint(CF_HINT_UNREACHABLE "; then: canfleetctl watch %u", id);
        sd_event_exit(w->event, CF_EXIT_UNREACHABLE);
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct cf_follow *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (strcmp(name, CF_BUS_NAME) == 0 && !new_owner[0] && w->path && !w->finished)
                report_gone(w, "canfleetd went away");
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct cf_follow *w = userdata;
        if (!w->finished)
                report_gone(w, "the D-Bus connection was lost");
        return 0;
}

/* Ctrl-C stops following, never the job: say how to find it again or stop it. */
static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct cf_follow *w = userdata;
        uint32_t id = cf_job_id_from_path(w->path);

        if (w->show)
                cf_progress_abandon(&w->progress);
        cf_error(CF_EXIT_INTERRUPTED, "interrupted",
                 "job %u continues in canfleetd: canfleetctl watch %u / canfleetctl cancel %u", id, id, id);
        sd_event_exit(w->event, CF_EXIT_INTERRUPTED);
        return 0;
}

static sigset_t interrupt_signals(void)
{
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        return set;
}

bool cf_follow_interrupt_pending(void)
{
        sigset_t pending;
        return sigpending(&pending) == 0 &&
               (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1);
}

void cf_follow_done(struct cf_follow *w)
{
        for (size_t i = 0; i < sizeof(w->slots) / sizeof(w->slots[0]); i++)
                w->slots[i] = sd_bus_slot_unref(w->slots[i]);
        for (size_t i = 0; i < sizeof(w->signals) / sizeof(w->signals[0]); i++)
                w->signals[i] = sd_event_source_unref(w->signals[i]);
        w->getall = sd_bus_slot_unref(w->getall);
        if (w->bus && w->event)
                sd_bus_detach_event(w->bus);
        w->event = sd_event_unref(w->event);
        cf_job_info_done(&w->job);
        cf_progress_done(&w->progress);
        free(w->path);
        w->path = NULL;
}

int cf_follow_subscribe(struct cf_follow *w, sd_bus *bus, bool show, bool interruptible)
{
        static const char props_rule[] = "type='signal',sender='" CF_BUS_NAME "',"
                                         "interface='org.freedesktop.DBus.Properties',"
                                         "member='PropertiesChanged',path_namespace='" CF_JOB_PREFIX "'";
        static const char completed_rule[] =
            "type='signal',sender='" CF_BUS_NAME "',interface='" CF_JOB_IFACE
            "',member='Completed',path_namespace='" CF_JOB_PREFIX "'";
        int r;

        *w = (struct cf_follow){.bus = bus, .show = show, .interruptible = interruptible};
        cf_progress_init(&w->progress, stdout, cf_progress_want_tty(stdout));
        if (interruptible) {
                /* from here a Ctrl-C waits for the loop, which knows the job's number */
                sigset_t set = interrupt_signals();
                sigprocmask(SIG_BLOCK, &set, NULL);
        }
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

int cf_follow_run(struct cf_follow *w, const char *path)
{
        int r;

        if (!(w->path = strdup(path)))
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        r = sd_event_default(&w->event);
        if (r >= 0)
                r = sd_bus_attach_event(w->bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0 && w->interruptible)
                r = sd_event_add_signal(w->event, &w->signals[0], SIGINT, on_signal, w);
        if (r >= 0 && w->interruptible)
                r = sd_event_add_signal(w->event, &w->signals[1], SIGTERM, on_signal, w);
        if (r >= 0)
                r = follow_refresh(w);
        if (r >= 0)
                r = sd_event_loop(w->event);
        if (r < 0)
                return cf_error(CF_EXIT_FAILED, "failed", "following job %u: %s", cf_job_id_from_path(path),
                                strerror(-r));
        return r;
}
