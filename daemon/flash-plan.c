/* Run planning of an area image: skip what erased flash already holds. */
#include <errno.h>
#include <stdlib.h>

#include "flash-plan.h"

static uint64_t frames(uint64_t len)
{
        return (len + 5) / 6;
}

int cf_plan_runs(const uint8_t *img, size_t size, struct cf_run **ret, size_t *n_ret)
{
        struct cf_run *runs = NULL;
        size_t n = 0, cap = 0;
        size_t i = 0;

        while (i < size) {
                while (i < size && img[i] == 0xFF)
                        i++;
                if (i == size)
                        break;
                size_t start = i;
                while (i < size && img[i] != 0xFF)
                        i++;
                size_t len = i - start;

                if (n > 0) {
                        struct cf_run *cur = &runs[n - 1];
                        uint64_t merged = (uint64_t) (start + len) - cur->start;
                        if (frames(merged) <= frames(cur->len) + 1 + frames(len)) {
                                cur->len = (uint32_t) merged;
                                continue;
                        }
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        struct cf_run *p = realloc(runs, cap * sizeof *p);
                        if (!p) {
                                free(runs);
                                return -ENOMEM;
                        }
                        runs = p;
                }
                runs[n++] = (struct cf_run){.start = (uint32_t) start, .len = (uint32_t) len};
        }
        *ret = runs;
        *n_ret = n;
        return 0;
}

uint64_t cf_plan_bytes(const struct cf_run *runs, size_t n)
{
        uint64_t b = 0;
        for (size_t i = 0; i < n; i++)
                b += runs[i].len;
        return b;
}

uint64_t cf_plan_frames(const struct cf_run *runs, size_t n)
{
        uint64_t f = 0;
        for (size_t i = 0; i < n; i++)
                f += 1 + frames(runs[i].len);
        return f;
}
