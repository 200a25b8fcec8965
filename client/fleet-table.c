/* Tables sized to their content and to the output's width. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fleet-table.h"

#define GAP        2 /* spaces between columns */
#define MIN_SHRUNK 12

struct cf_table {
        size_t n_cols;
        char **headers;
        unsigned *flags;
        char **cells; /* n_rows * n_cols */
        size_t n_rows;
};

size_t cf_text_width(const char *s)
{
        size_t w = 0;
        for (; *s; s++)
                w += ((unsigned char) *s & 0xC0) != 0x80;
        return w;
}

void cf_text_cut(char *buf, size_t size, const char *s, size_t width)
{
        size_t w = 0, i = 0;

        if (size == 0)
                return;
        if (cf_text_width(s) <= width) {
                snprintf(buf, size, "%s", s);
                return;
        }
        /* leave a column for the ellipsis; never end inside a UTF-8 sequence */
        while (s[i] && i + 4 < size) {
                bool starts = ((unsigned char) s[i] & 0xC0) != 0x80;
                if (starts && w + 1 >= width)
                        break;
                w += starts;
                buf[i] = s[i];
                i++;
        }
        while (i > 0 && ((unsigned char) s[i] & 0xC0) == 0x80)
                i--;
        buf[i] = '\0';
        if (width > 0 && i + 4 <= size)
                strcat(buf, "…");
}

struct cf_table *cf_table_new(size_t n, const char *const *headers, const unsigned *flags)
{
        struct cf_table *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->n_cols = n;
        t->headers = calloc(n, sizeof(*t->headers));
        t->flags = calloc(n, sizeof(*t->flags));
        if (!t->headers || !t->flags)
                return cf_table_free(t);
        for (size_t i = 0; i < n; i++) {
                t->flags[i] = flags ? flags[i] : 0;
                if (!(t->headers[i] = strdup(headers[i])))
                        return cf_table_free(t);
        }
        return t;
}

struct cf_table *cf_table_free(struct cf_table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; t->headers && i < t->n_cols; i++)
                free(t->headers[i]);
        for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
                free(t->cells[i]);
        free(t->headers);
        free(t->flags);
        free(t->cells);
        free(t);
        return NULL;
}

int cf_table_add(struct cf_table *t, const char *const *cells)
{
        char **v = realloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof(*v));
        if (!v)
                return -ENOMEM;
        t->cells = v;
        for (size_t c = 0; c < t->n_cols; c++) {
                char *s = strdup(cells[c] && cells[c][0] ? cells[c] : "-");
                if (!s) {
                        for (size_t k = 0; k < c; k++)
                                free(v[t->n_rows * t->n_cols + k]);
                        return -ENOMEM;
                }
                v[t->n_rows * t->n_cols + c] = s;
        }
        t->n_rows++;
        return 0;
}

static size_t total_width(const size_t *w, const bool *shown, size_t n)
{
        size_t sum = 0, cols = 0;
        for (size_t c = 0; c < n; c++)
                if (shown[c]) {
                        sum += w[c];
                        cols++;
                }
        return sum + (cols ? (cols - 1) * GAP : 0);
}

/* Shrink the CF_COL_SHRINK columns (the last first) until the table fits or they are at their minimum. */
static void shrink(size_t *w, const bool *shown, const struct cf_table *t, unsigned width)
{
        for (size_t c = t->n_cols; c-- > 0;) {
                size_t total = total_width(w, shown, t->n_cols);
                if (total <= width)
                        return;
                if (!shown[c] || !(t->flags[c] & CF_COL_SHRINK))
                        continue;
                size_t min =
                    cf_text_width(t->headers[c]) > MIN_SHRUNK ? cf_text_width(t->headers[c]) : MIN_SHRUNK;
                if (w[c] <= min)
                        continue;
                size_t excess = total - width;
                w[c] = w[c] - excess >= min && w[c] > excess ? w[c] - excess : min;
        }
}

int cf_table_print(struct cf_table *t, FILE *f, unsigned width)
{
        size_t n = t->n_cols;
        size_t *w = calloc(n, sizeof(*w));
        bool *shown = calloc(n, sizeof(*shown));
        char cut[1024];

        if (!w || !shown) {
                free(w);
                free(shown);
                return -ENOMEM;
        }
        /* "under 80 columns": a line as wide as the terminal wraps on some of them */
        if (width > 1)
                width--;
        for (size_t c = 0; c < n; c++) {
                shown[c] = true;
                w[c] = cf_text_width(t->headers[c]);
                for (size_t r = 0; r < t->n_rows; r++) {
                        size_t cw = cf_text_width(t->cells[r * n + c]);
                        if (cw > w[c])
                                w[c] = cw;
                }
        }
        if (width) {
                /* an error cut short says less than a UID left out: optional columns go first */
                for (size_t c = n; c-- > 0 && total_width(w, shown, n) > width;)
                        if (t->flags[c] & CF_COL_OPTIONAL)
                                shown[c] = false;
                shrink(w, shown, t, width);
        }
        for (size_t r = 0; r <= t->n_rows; r++) {
                size_t last = 0;
                for (size_t c = 0; c < n; c++)
                        if (shown[c])
                                last = c;
                for (size_t c = 0; c < n; c++) {
                        const char *s = r == 0 ? t->headers[c] : t->cells[(r - 1) * n + c];
                        if (!shown[c])
                                continue;
                        cf_text_cut(cut, sizeof(cut), s, w[c]);
                        size_t pad = w[c] - cf_text_width(cut);
                        if (t->flags[c] & CF_COL_RIGHT)
                                fprintf(f, "%*s%s", (int) pad, "", cut);
                        else if (c == last)
                                fputs(cut, f); /* no trailing blanks */
                        else
                                fprintf(f, "%s%*s", cut, (int) pad, "");
                        fputs(c == last ? "\n" : "  ", f);
                }
        }
        free(w);
        free(shown);
        return 0;
}

unsigned cf_table_width(bool full)
{
        struct winsize ws;
        const char *columns = getenv("COLUMNS");

        if (full)
                return 0;
        if (columns) {
                unsigned long v = strtoul(columns, NULL, 10);
                if (v >= 20 && v < 10000)
                        return (unsigned) v;
        }
        if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
                return ws.ws_col;
        return 80;
}
