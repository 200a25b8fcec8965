/* canfleetctl's tables: columns as wide as their widest cell, cut to the width of the output (terminal
 * columns, $COLUMNS, or 80 when piped) unless --full. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Per column: how it gives way when the table is too wide. */
#define CF_COL_RIGHT  (1u << 0) /* numbers: aligned right */
#define CF_COL_SHRINK (1u << 1) /* cut with "…" when the table is still too wide (free text: errors) */
#define CF_COL_OPTIONAL                                                                                     \
        (1u << 2) /* left out first when the table is too wide (--full or --json show it)                   \
                   */

struct cf_table;

/* A table with n columns; headers[i] and flags[i] per column. NULL when out of memory. */
struct cf_table *cf_table_new(size_t n, const char *const *headers, const unsigned *flags);
struct cf_table *cf_table_free(struct cf_table *t);

/* Append a row of n cells (copied; NULL shows as "-"). Negative errno. */
int cf_table_add(struct cf_table *t, const char *const *cells);

/* Print on f within width columns (0: no limit). Negative errno. */
int cf_table_print(struct cf_table *t, FILE *f, unsigned width);

/* The width tables on stdout keep to: 0 (none) with full; else $COLUMNS, the terminal's width, or 80. */
unsigned cf_table_width(bool full);

/* Columns s takes on a terminal (UTF-8: continuation bytes take none). */
size_t cf_text_width(const char *s);

/* Copy s into buf cut to at most width columns, with "…" at the end when cut. */
void cf_text_cut(char *buf, size_t size, const char *s, size_t width);
