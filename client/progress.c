/* Per-node progress of an update job: live bars on a terminal, one line per step or tenth when piped. */
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "progress.h"

#define BAR_WIDTH     20
#define MIN_REDRAW_US 50000

struct cf_progress_seen {
        char *node;
        char *step;
        int tenth; /* last tenth of the transfer printed, -1 none */
};

static uint64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void cf_progress_init(struct cf_progress *p, FILE *out, bool tty)
{
        *p = (struct cf_progress){.out = out, .tty = tty};
}

unsigned cf_progress_percent(const struct cf_job_node *n)
{
        if (n->bytes_total == 0)
                return strcmp(n->step, "done") == 0 ? 100 : 0;
        if (n->bytes_done >= n->bytes_total)
                return 100;
        return (unsigned) (n->bytes_done * 100 / n->bytes_total);
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

static void print_header(struct cf_progress *p, const struct cf_job_info *job)
{
        if (p->header_done)
                return;
        fprintf(p->out, "job %u: updating %zu node%s to %s (hardware id 0x%04x, release %u)\n", job->id,
                job->n_nodes, job->n_nodes == 1 ? "" : "s", job->image_version ? job->image_version : "?",
                job->image_hardware_id, job->image_release);
        p->header_done = true;
}

static unsigned terminal_columns(FILE *out)
{
        struct winsize ws;
        if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
                return ws.ws_col;
        return 80;
}

/* Lines are cut to the terminal's width: a wrapped line would break the cursor-up arithmetic. */
static void draw_tty(struct cf_progress *p, const struct cf_job_info *job)
{
        unsigned cols = terminal_columns(p->out);
        size_t width = 6;

        for (size_t i = 0; i < job->n_nodes; i++)
                if (strlen(job->nodes[i].node) > width)
                        width = strlen(job->nodes[i].node);
        if (p->lines_drawn > 0)
                fprintf(p->out, "\033[%zuA", p->lines_drawn);
        for (size_t i = 0; i < job->n_nodes; i++) {
                const struct cf_job_node *n = &job->nodes[i];
                unsigned pct = cf_progress_percent(n);
                unsigned fill = pct * BAR_WIDTH / 100;
                char bar[BAR_WIDTH + 1], done[32], total[32], line[512];

                for (unsigned k = 0; k < BAR_WIDTH; k++)
                        bar[k] = k < fill ? '#' : '.';
                bar[BAR_WIDTH] = '\0';
                snprintf(line, sizeof(line), "%-*s %-11s [%s] %3u%% %s/%s%s%s", (int) width, n->node,
                         n->step, bar, pct, cf_format_bytes(done, sizeof(done), n->bytes_done),
                         cf_format_bytes(total, sizeof(total), n->bytes_total), n->error[0] ? "  " : "",
                         n->error);
                if (strlen(line) >= cols)
                        line[cols - 1] = '\0';
                fprintf(p->out, "\r\033[2K%s\n", line);
        }
        p->lines_drawn = job->n_nodes;
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
        v[p->n_seen] = (struct cf_progress_seen){.node = strdup(node), .step = NULL, .tenth = -1};
        if (!v[p->n_seen].node)
                return NULL;
        return &v[p->n_seen++];
}

/* Plain output is for logs: a line when a node changes step and at each tenth of its transfer. */
static void draw_plain(struct cf_progress *p, const struct cf_job_info *job)
{
        for (size_t i = 0; i < job->n_nodes; i++) {
                const struct cf_job_node *n = &job->nodes[i];
                struct cf_progress_seen *s = seen_for(p, n->node);
                unsigned pct = cf_progress_percent(n);
                bool step_changed;
                int tenth;

                if (!s)
                        return;
                step_changed = !s->step || strcmp(s->step, n->step) != 0;
                tenth = n->bytes_total > 0 ? (int) (pct / 10) : -1;
                if (!step_changed && tenth <= s->tenth)
                        continue;
                if (step_changed) {
                        free(s->step);
                        s->step = strdup(n->step);
                }
                s->tenth = tenth;
                if (n->error[0])
                        fprintf(p->out, "%s: %s: %s\n", n->node, n->step, n->error);
                else if (n->bytes_total > 0)
                        fprintf(p->out, "%s: %s %u%% (%llu/%llu bytes)\n", n->node, n->step, pct,
                                (unsigned long long) n->bytes_done, (unsigned long long) n->bytes_total);
                else
                        fprintf(p->out, "%s: %s\n", n->node, n->step);
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
        uint64_t t = now_us();
        if (!force && p->lines_drawn == job->n_nodes && t - p->last_draw_us < MIN_REDRAW_US)
                return;
        p->last_draw_us = t;
        draw_tty(p, job);
}

void cf_progress_finish(struct cf_progress *p, const struct cf_job_info *job)
{
        size_t done = 0, failed = 0, cancelled = 0, other = 0;

        cf_progress_update(p, job, true);
        for (size_t i = 0; i < job->n_nodes; i++) {
                const char *step = job->nodes[i].step;
                if (strcmp(step, "done") == 0)
                        done++;
                else if (strcmp(step, "failed") == 0)
                        failed++;
                else if (strcmp(step, "cancelled") == 0)
                        cancelled++;
                else
                        other++;
        }
        fprintf(p->out, "job %u %s: %zu updated", job->id, job->state ? job->state : "?", done);
        if (failed)
                fprintf(p->out, ", %zu failed", failed);
        if (cancelled)
                fprintf(p->out, ", %zu cancelled (they keep their old firmware)", cancelled);
        if (other)
                fprintf(p->out, ", %zu not finished", other);
        fputc('\n', p->out);
        fflush(p->out);
        for (size_t i = 0; i < job->n_nodes; i++)
                if (strcmp(job->nodes[i].step, "failed") == 0)
                        fprintf(stderr, "canfleetctl: node %s failed: %s\n", job->nodes[i].node,
                                job->nodes[i].error[0] ? job->nodes[i].error : "(no reason given)");
}

void cf_progress_done(struct cf_progress *p)
{
        for (size_t i = 0; i < p->n_seen; i++) {
                free(p->seen[i].node);
                free(p->seen[i].step);
        }
        free(p->seen);
        p->seen = NULL;
        p->n_seen = 0;
}
