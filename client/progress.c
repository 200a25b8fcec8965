/* The progress display of an update job: a frame that fits the terminal, or plain lines for logs. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "fleet-table.h"
#include "progress.h"

#define BAR_WIDTH     16
#define MIN_REDRAW_US 100000

struct cf_progress_seen {
        char *node;
        char *step;
        char *why; /* the wait reason last printed with it (plain mode) */
};

static uint64_t clock_us(clockid_t id)
{
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

bool cf_progress_want_tty(FILE *out)
{
        const char *term = getenv("TERM");
        /* only "dumb" says the terminal cannot move the cursor: an unset TERM (a CI runner's pty,
         * sudo -i) still means a VT100-compatible Linux terminal */
        return isatty(fileno(out)) && !(term && strcmp(term, "dumb") == 0);
}

void cf_progress_init(struct cf_progress *p, FILE *out, bool tty)
{
        *p = (struct cf_progress){.out = out, .tty = tty, .plain_tenth = -1};
}

static bool step_is(const struct cf_job_node *n, const char *step)
{
        return n->step && strcmp(n->step, step) == 0;
}

static bool step_final(const struct cf_job_node *n)
{
        return step_is(n, "done") || step_is(n, "up-to-date") || step_is(n, "failed") ||
               step_is(n, "cancelled") || step_is(n, "confirmed");
}

unsigned cf_progress_percent(const struct cf_job_node *n)
{
        static const struct {
                const char *step;
                unsigned pct;
        } phases[] = {
            {"queued", 0},     {"connecting", 1}, {"unlocking", 2},   {"erasing", 3},
            {"verifying", 90}, {"rebooting", 93}, {"confirming", 96}, {"trial", 98},
        };

        if (step_final(n))
                return 100;
        if (step_is(n, "programming")) {
                if (n->bytes_total == 0 || n->bytes_done >= n->bytes_total)
                        return 90;
                return 5 + (unsigned) (n->bytes_done * 85 / n->bytes_total);
        }
        for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
                if (step_is(n, phases[i].step))
                        return phases[i].pct;
        return 0;
}

const char *cf_format_bytes(char *buf, size_t size, uint64_t bytes)
{
        if (bytes < 1024)
                snprintf(buf, size, "%llu B", (unsigned long long) bytes);
        else if (bytes < 1024 * 1024)
                snprintf(buf, size, "%.1f KiB", (double) bytes / 1024.0);
        else
                snprintf(buf, size, "%.1f MiB", (double) bytes / (1024.0 * 1024.0));
        return buf;
}

const char *cf_format_duration(char *buf, size_t size, uint64_t usec)
{
        uint64_t s = (usec + 500000) / 1000000;

        if (s < 60)
                snprintf(buf, size, "%llus", (unsigned long long) s);
        else if (s < 3600)
                snprintf(buf, size, "%llum%02llus", (unsigned long long) (s / 60),
                         (unsigned long long) (s % 60));
        else
                snprintf(buf, size, "%lluh%02llum", (unsigned long long) (s / 3600),
                         (unsigned long long) (s / 60 % 60));
        return buf;
}

/* The reason a node that is not finished gives for waiting ("waiting for bus0: cannot open …"), or NULL. */
static const char *wait_reason(const struct cf_job_node *n)
{
        if (step_final(n))
                return NULL;
        const char *why = cf_strip_node_prefix(n->error, n->node);
        return why && why[0] ? why : NULL;
}

/* What the summary line is made of. */
struct totals {
        size_t done, uptodate, failed, cancelled, active, queued, waiting;
        unsigned pct;
        uint64_t bytes_done, elapsed_us;
};

static struct totals count(struct cf_progress *p, const struct cf_job_info *job)
{
        struct totals t = {0};
        uint64_t sum = 0, now = clock_us(CLOCK_REALTIME);

        for (size_t i = 0; i < job->n_nodes; i++) {
                const struct cf_job_node *n = &job->nodes[i];
                if (step_is(n, "done") || step_is(n, "confirmed")) /* confirmed: a dual-bank node's done */
                        t.done++;
                else if (step_is(n, "up-to-date"))
                        t.uptodate++;
                else if (step_is(n, "failed"))
                        t.failed++;
                else if (step_is(n, "cancelled"))
                        t.cancelled++;
                else if (step_is(n, "queued")) {
                        t.queued++;
                        t.waiting += wait_reason(n) != NULL; /* it cannot start: says why */
                } else
                        t.active++;
                sum += cf_progress_percent(n);
                /* downloading nodes all show the job's one download: its bytes are not CAN bytes */
                if (!step_is(n, "downloading"))
                        t.bytes_done += n->bytes_done;
        }
        t.pct = job->n_nodes ? (unsigned) (sum / job->n_nodes) : 100;
        if (!p->start_us)
                p->start_us = now;
        /* canfleetd's Created is when the job started, also for a job followed from the middle */
        uint64_t start = job->created && job->created <= now ? job->created : p->start_us;
        uint64_t end = job->finished && job->finished >= start ? job->finished : now;
        t.elapsed_us = end - start;
        return t;
}

static void summary_line(char *buf, size_t size, const struct cf_job_info *job, const struct totals *t,
                         bool tty)
{
        char elapsed[16], eta[16], rate[32];
        uint64_t secs = t->elapsed_us / 1000000u;
        int len;

        cf_format_duration(elapsed, sizeof(elapsed), t->elapsed_us);
        /* nothing moves while the only nodes left wait for their bus: no estimate then */
        bool stuck = t->waiting > 0 && t->active == 0 && t->queued == t->waiting;
        if (!stuck && t->pct > 0 && t->pct < 100 && t->elapsed_us >= 1000000) {
                uint64_t left = t->elapsed_us * (100 - t->pct) / t->pct;
                if (left < 1000000)
                        snprintf(eta, sizeof(eta), "<1s");
                else
                        cf_format_duration(eta, sizeof(eta), left);
        } else
                snprintf(eta, sizeof(eta), "-");
        cf_format_bytes(rate, sizeof(rate), secs ? t->bytes_done / secs : t->bytes_done);
        len = snprintf(buf, size, "job %u %3u%%  %zu/%zu done, %zu failed, %zu active", job->id, t->pct,
                       t->done, job->n_nodes, t->failed, t->active);
        /* logs are searched for "failed": a plain line says it only when a node did */
        if (!tty && t->failed == 0)
                len = snprintf(buf, size, "job %u %3u%%  %zu/%zu done, %zu active", job->id, t->pct, t->done,
                               job->n_nodes, t->active);
        if (t->waiting && len > 0 && (size_t) len < size)
                len += snprintf(buf + len, size - (size_t) len, ", %zu waiting", t->waiting);
        if (len > 0 && (size_t) len < size)
                snprintf(buf + len, size - (size_t) len, "  %s, ETA %s, %s/s", elapsed, eta, rate);
}

static void node_line(char *buf, size_t size, const struct cf_job_node *n, size_t name_width)
{
        if (step_is(n, "failed")) {
                const char *why = cf_strip_node_prefix(n->error, n->node);
                snprintf(buf, size, "  %-*s failed: %s", (int) name_width, n->node,
                         why && why[0] ? why : "no reason given");
                return;
        }
        unsigned pct = cf_progress_percent(n);
        unsigned fill = pct * BAR_WIDTH / 100;
        char bar[BAR_WIDTH + 1], done[32], total[32];
        const char *why = wait_reason(n);

        if (why && (step_is(n, "queued") || step_is(n, "programming"))) {
                /* a node that waits says why, instead of a bar that does not move */
                snprintf(buf, size, "  %-*s %-11s %s", (int) name_width, n->node, n->step, why);
                return;
        }

        for (unsigned k = 0; k < BAR_WIDTH; k++)
                bar[k] = k < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        if (step_is(n, "downloading"))
                /* canfleetd fetches the bundle before any CAN frame; the total is 0 when the server
                 * did not say */
                snprintf(buf, size, "  %-*s %-11s %s%s%s", (int) name_width, n->node, n->step,
                         cf_format_bytes(done, sizeof(done), n->bytes_done), n->bytes_total ? "/" : "",
                         n->bytes_total ? cf_format_bytes(total, sizeof(total), n->bytes_total) : "");
        else if (step_is(n, "programming") && n->bytes_total)
                snprintf(buf, size, "  %-*s %-11s [%s] %3u%%  %s/%s", (int) name_width, n->node, n->step,
                         bar, pct, cf_format_bytes(done, sizeof(done), n->bytes_done),
                         cf_format_bytes(total, sizeof(total), n->bytes_total));
        else
                /* a node that waits says why (canfleetd puts the reason in its error text) */
                snprintf(buf, size, "  %-*s %-11s [%s] %3u%%%s%s", (int) name_width, n->node, n->step, bar,
                         pct, why ? "  " : "", why ? why : "");
}

static void terminal_size(struct cf_progress *p)
{
        struct winsize ws;

        p->rows = 24;
        p->cols = 80;
        if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0) {
                if (ws.ws_row > 0)
                        p->rows = ws.ws_row;
                if (ws.ws_col >= 20)
                        p->cols = ws.ws_col;
        }
}

void cf_progress_print_skipped(FILE *out, const struct cf_job_info *job)
{
        /* "2 of 4 match hw 0x0407; skipped bus1:1 (hw 0x0001), bus1:2 (offline)" */
        if (job->n_skipped == 0)
                return;
        if (job->target && job->target[0] && strcmp(job->target, "ccp") != 0)
                fprintf(out, "%zu of %zu are %s nodes of its part; skipped", job->n_nodes,
                        job->n_nodes + job->n_skipped, job->target);
        else
                fprintf(out, "%zu of %zu match hw 0x%04x; skipped", job->n_nodes, job->n_nodes + job->n_skipped,
                        job->image_hardware_id);
        for (size_t i = 0; i < job->n_skipped; i++)
                fprintf(out, "%s %s (%s)", i ? "," : "", job->skipped[2 * i], job->skipped[2 * i + 1]);
        fputc('\n', out);
}

static void print_header(struct cf_progress *p, const struct cf_job_info *job)
{
        if (p->header_done)
                return;
        if (!job->image_version || !job->image_version[0]) {
                /* a URL update: canfleetd downloads and verifies the bundle first */
                fprintf(p->out, "job %u: updating %zu node%s: downloading the bundle\n", job->id,
                        job->n_nodes, job->n_nodes == 1 ? "" : "s");
                p->header_done = true;
                return;
        }
        if (job->target && job->target[0] && strcmp(job->target, "ccp") != 0)
                fprintf(p->out, "job %u: updating %zu node%s to %s (%s, release %u)\n", job->id, job->n_nodes,
                        job->n_nodes == 1 ? "" : "s",
                        job->image_version && job->image_version[0] ? job->image_version : "?", job->target,
                        job->image_release);
        else
                fprintf(p->out, "job %u: updating %zu node%s to %s (hw id 0x%04x, release %u)\n", job->id,
                        job->n_nodes, job->n_nodes == 1 ? "" : "s",
                        job->image_version && job->image_version[0] ? job->image_version : "?",
                        job->image_hardware_id, job->image_release);
        cf_progress_print_skipped(p->out, job);
        p->header_done = true;
}

/* Every line is cut to the terminal's width (a wrapped line would break the cursor-up arithmetic) and
 * the frame keeps to the terminal's height less two rows (the header's and the cursor's), so that
 * nothing ever scrolls: the nodes that do not fit are counted on the last line. */
static void put_line(struct cf_progress *p, const char *line)
{
        char cut[1024];
        cf_text_cut(cut, sizeof(cut), line, p->cols - 1);
        fprintf(p->out, "\r\033[2K%s\n", cut);
}

static bool listed(const struct cf_job_node *n, bool final, int pass)
{
        /* active nodes first: they change; then the queued ones that say why they cannot start (a bus
         * that cannot be opened); the failed ones last. The final frame is empty: the last line and the
         * errors on stderr say it all */
        if (final)
                return false;
        if (pass == 0)
                return !step_final(n) && !step_is(n, "queued");
        if (pass == 1)
                return step_is(n, "queued") && wait_reason(n);
        return step_is(n, "failed");
}

static void draw_tty(struct cf_progress *p, const struct cf_job_info *job, bool final)
{
        struct totals t = count(p, job);
        size_t name_width = 6, room, wanted = 0, shown = 0;
        char line[1024];

        terminal_size(p);
        room = p->rows > 3 ? p->rows - 2 : 1;
        for (size_t i = 0; i < job->n_nodes; i++) {
                if (strlen(job->nodes[i].node) > name_width)
                        name_width = strlen(job->nodes[i].node);
                wanted += listed(&job->nodes[i], final, 0) || listed(&job->nodes[i], final, 1) ||
                          listed(&job->nodes[i], final, 2);
        }
        if (p->lines_drawn > 0)
                fprintf(p->out, "\033[%zuA", p->lines_drawn);
        fputs("\r\033[J", p->out);
        p->lines_drawn = 0;
        if (!final) {
                summary_line(line, sizeof(line), job, &t, true);
                put_line(p, line);
                p->lines_drawn++;
                room--;
        }
        /* when not all fit, the last row counts the others */
        size_t limit = wanted <= room ? wanted : (room > 0 ? room - 1 : 0);
        for (int pass = 0; pass < 3; pass++)
                for (size_t i = 0; i < job->n_nodes && shown < limit; i++) {
                        if (!listed(&job->nodes[i], final, pass))
                                continue;
                        node_line(line, sizeof(line), &job->nodes[i], name_width);
                        put_line(p, line);
                        p->lines_drawn++;
                        shown++;
                }
        if (shown < wanted && room > 0) {
                snprintf(line, sizeof(line), "  … and %zu more", wanted - shown);
                put_line(p, line);
                p->lines_drawn++;
        }
        fflush(p->out);
}

static struct cf_progress_seen *seen_for(struct cf_progress *p, const char *node)
{
        for (size_t i = 0; i < p->n_seen; i++)
                if (strcmp(p->seen[i].node, node) == 0)
                        return &p->seen[i];
        struct cf_progress_seen *v = realloc(p->seen, (p->n_seen + 1) * sizeof(*v));
        if (!v)
                return NULL;
        p->seen = v;
        v[p->n_seen] = (struct cf_progress_seen){.node = strdup(node)};
        if (!v[p->n_seen].node)
                return NULL;
        return &v[p->n_seen++];
}

/* Plain output is for logs: a line when a node changes step, the summary at each tenth of the job. */
static void draw_plain(struct cf_progress *p, const struct cf_job_info *job)
{
        struct totals t = count(p, job);
        char line[1024];

        for (size_t i = 0; i < job->n_nodes; i++) {
                const struct cf_job_node *n = &job->nodes[i];
                struct cf_progress_seen *s = seen_for(p, n->node);

                if (!s)
                        return;
                const char *wait = wait_reason(n);
                bool new_step = !s->step || strcmp(s->step, n->step) != 0;
                bool new_wait = wait && (!s->why || strcmp(s->why, wait) != 0);
                if (!new_step && !new_wait) {
                        if (!wait && s->why) { /* the wait is over: said by the next step */
                                free(s->why);
                                s->why = NULL;
                        }
                        continue;
                }
                free(s->step);
                s->step = strdup(n->step);
                free(s->why);
                s->why = wait ? strdup(wait) : NULL;
                if (step_is(n, "failed")) {
                        const char *why = cf_strip_node_prefix(n->error, n->node);
                        fprintf(p->out, "%s: failed: %s\n", n->node,
                                why && why[0] ? why : "no reason given");
                } else if (step_is(n, "queued") && wait)
                        fprintf(p->out, "%s: %s\n", n->node, wait); /* "waiting for bus9: …" */
                else if (wait)
                        fprintf(p->out, "%s: %s: %s\n", n->node, n->step, wait);
                else if (!step_is(n, "queued"))
                        fprintf(p->out, "%s: %s\n", n->node, n->step);
        }
        if ((int) (t.pct / 10) > p->plain_tenth && t.pct < 100) {
                p->plain_tenth = (int) (t.pct / 10);
                summary_line(line, sizeof(line), job, &t, false);
                fprintf(p->out, "%s\n", line);
        }
        fflush(p->out);
}

void cf_progress_update(struct cf_progress *p, const struct cf_job_info *job, bool force)
{
        print_header(p, job);
        if (!p->tty) {
                draw_plain(p, job);
                return;
        }
        uint64_t t = clock_us(CLOCK_MONOTONIC);
        if (!force && p->lines_drawn > 0 && t - p->last_draw_us < MIN_REDRAW_US)
                return;
        p->last_draw_us = t;
        draw_tty(p, job, false);
}

void cf_progress_finish(struct cf_progress *p, const struct cf_job_info *job)
{
        struct totals t;
        char took[16];

        print_header(p, job);
        if (p->tty)
                draw_tty(p, job, true);
        else
                draw_plain(p, job);
        t = count(p, job);
        fprintf(p->out, "job %u %s: %zu updated", job->id, job->state ? job->state : "?", t.done);
        if (t.uptodate)
                fprintf(p->out, ", %zu up to date", t.uptodate);
        if (t.failed)
                fprintf(p->out, ", %zu failed", t.failed);
        if (t.cancelled)
                fprintf(p->out, ", %zu cancelled (they keep their old firmware)", t.cancelled);
        if (t.active + t.queued)
                fprintf(p->out, ", %zu not finished", t.active + t.queued);
        fprintf(p->out, " in %s\n", cf_format_duration(took, sizeof(took), t.elapsed_us));
        fflush(p->out);
        p->lines_drawn = 0;
        for (size_t i = 0; i < job->n_nodes; i++)
                if (step_is(&job->nodes[i], "failed")) {
                        const char *why = cf_strip_node_prefix(job->nodes[i].error, job->nodes[i].node);
                        fprintf(stderr, "canfleetctl: %s failed: %s\n", job->nodes[i].node,
                                why && why[0] ? why : "no reason given");
                }
}

void cf_progress_abandon(struct cf_progress *p)
{
        /* the frame's lines all end in a newline: the cursor is below it already */
        p->lines_drawn = 0;
        fflush(p->out);
}

void cf_progress_done(struct cf_progress *p)
{
        for (size_t i = 0; i < p->n_seen; i++) {
                free(p->seen[i].node);
                free(p->seen[i].step);
                free(p->seen[i].why);
        }
        free(p->seen);
        p->seen = NULL;
        p->n_seen = 0;
}
