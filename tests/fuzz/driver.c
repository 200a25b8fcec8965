/* A libFuzzer stand-in: replay a corpus, then a bounded, seeded series of mutated inputs. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

/*
 * fuzz-TARGET [-n RUNS] [-t SECONDS] [-s SEED] [-m MAXLEN] [CORPUS-DIR-OR-FILE…]
 *
 * Every corpus file is run once, in name order. Then RUNS inputs are made by mutating corpus
 * entries (or from nothing when there are none) with a xorshift generator seeded by SEED, so a
 * run is reproducible: the same seed gives the same inputs. -t stops the generated part early
 * after SECONDS, so a slow machine runs a shorter prefix of the same series instead of timing
 * out. Exit status 0 when every input passed; a target that finds a broken invariant aborts, and
 * the SIGABRT handler first prints the input in hex (`xxd -r -p` turns it back into a file).
 */

#define MAX_CORPUS 4096u

struct entry {
        char *name;
        uint8_t *data;
        size_t size;
};

static struct entry *corpus;
static size_t ncorpus;

/* What runs now, for the crash report. */
static const uint8_t *cur_data;
static size_t cur_size;
static char cur_what[256];

static uint64_t rng_state;

static uint64_t rnd(void)
{
        /* xorshift64*: tiny, and the same sequence on every machine. */
        uint64_t x = rng_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng_state = x;
        return x * 0x2545F4914F6CDD1Dull;
}

static size_t rnd_below(size_t n)
{
        return n ? (size_t) (rnd() % n) : 0;
}

/* 0..n inclusive: an insertion point. */
static size_t rnd_upto(size_t n)
{
        size_t v = (size_t) (rnd() % ((uint64_t) n + 1));
        return v > n ? n : v;
}

static void put_str(const char *s)
{
        size_t n = strlen(s);
        while (n > 0) {
                ssize_t w = write(STDERR_FILENO, s, n);
                if (w <= 0)
                        return;
                s += w;
                n -= (size_t) w;
        }
}

static void on_abort(int sig)
{
        /* Only write(2) here: the process is in an unknown state. */
        static const char hex[] = "0123456789abcdef";
        char line[129];

        put_str("\nfuzz driver: failing input: ");
        put_str(cur_what);
        put_str("\nfuzz driver: input bytes (hex):\n");
        for (size_t i = 0; i < cur_size;) {
                size_t k = 0;
                for (; k < 128 && i < cur_size; i++) {
                        line[k++] = hex[cur_data[i] >> 4];
                        line[k++] = hex[cur_data[i] & 15];
                }
                line[k] = 0;
                put_str(line);
                put_str("\n");
        }
        put_str("fuzz driver: end of input\n");
        signal(sig, SIG_DFL);
        raise(sig);
}

static int read_file(const char *path, uint8_t **ret, size_t *ret_size)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t size = 0, cap = 0;

        if (!f)
                return -errno;
        for (;;) {
                if (size == cap) {
                        cap = cap ? cap * 2 : 4096;
                        uint8_t *nb = realloc(buf, cap);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return -ENOMEM;
                        }
                        buf = nb;
                }
                size_t n = fread(buf + size, 1, cap - size, f);
                size += n;
                if (n == 0)
                        break;
        }
        int r = ferror(f) ? -EIO : 0;
        fclose(f);
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_size = size;
        return 0;
}

static int add_file(const char *path)
{
        uint8_t *data = NULL;
        size_t size = 0;

        if (ncorpus >= MAX_CORPUS)
                return -E2BIG;
        int r = read_file(path, &data, &size);
        if (r < 0)
                return r;
        corpus[ncorpus].name = strdup(path);
        corpus[ncorpus].data = data;
        corpus[ncorpus].size = size;
        if (!corpus[ncorpus].name)
                return -ENOMEM;
        ncorpus++;
        return 0;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int add_path(const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return add_file(path);

        DIR *d = opendir(path);
        if (!d)
                return -errno;
        char **names = NULL;
        size_t n = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char **nn = realloc(names, (n + 1) * sizeof(*names));
                if (!nn) {
                        r = -ENOMEM;
                        break;
                }
                names = nn;
                if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        /* readdir order depends on the file system; the replay order must not. */
        qsort(names, n, sizeof(*names), cmp_names);
        for (size_t i = 0; i < n; i++) {
                if (r == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
                        r = add_file(names[i]);
                free(names[i]);
        }
        free(names);
        return r;
}

static void run_one(const uint8_t *data, size_t size)
{
        /* An exact-size copy: a target reading past its input then trips ASan when it is on. */
        uint8_t *copy = malloc(size ? size : 1);

        if (!copy)
                abort();
        if (size)
                memcpy(copy, data, size);
        cur_data = copy;
        cur_size = size;
        LLVMFuzzerTestOneInput(copy, size);
        cur_data = NULL;
        cur_size = 0;
        free(copy);
}

/* ---- Mutations: the usual blind ones of libFuzzer and AFL, enough to walk around a seed. ------- */

static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                      0x10, 0x20, 0x3F, 0x40, 0x7F, 0x80, 0xFE, 0xFF};

static size_t mutate(uint8_t *buf, size_t size, size_t max)
{
        size_t pos, len, at;
        const struct entry *other;

        switch (rnd_below(11)) {
        case 0: /* flip a bit */
                if (size)
                        buf[rnd_below(size)] ^= (uint8_t) (1u << rnd_below(8));
                break;
        case 1: /* random byte */
                if (size)
                        buf[rnd_below(size)] = (uint8_t) rnd();
                break;
        case 2: /* interesting byte */
                if (size)
                        buf[rnd_below(size)] = interesting[rnd_below(sizeof(interesting))];
                break;
        case 3: /* small add or subtract */
                if (size)
                        buf[rnd_below(size)] += (uint8_t) (rnd_below(33) - 16);
                break;
        case 4: /* insert random bytes */
                len = 1 + rnd_below(16);
                if (size + len > max)
                        break;
                pos = rnd_upto(size);
                memmove(buf + pos + len, buf + pos, size - pos);
                for (size_t i = 0; i < len; i++)
                        buf[pos + i] = (uint8_t) rnd();
                size += len;
                break;
        case 5: /* delete a range */
                if (size == 0)
                        break;
                pos = rnd_below(size);
                len = 1 + rnd_below(size - pos < 32 ? size - pos : 32);
                memmove(buf + pos, buf + pos + len, size - pos - len);
                size -= len;
                break;
        case 6: /* duplicate a chunk of the input elsewhere in it */
                if (size == 0)
                        break;
                pos = rnd_below(size);
                len = 1 + rnd_below(size - pos < 64 ? size - pos : 64);
                if (size + len > max)
                        break;
                at = rnd_upto(size);
                memmove(buf + at + len, buf + at, size - at);
                /* the source may have moved if it lay after the insertion point */
                memmove(buf + at, buf + (pos >= at ? pos + len : pos), len);
                size += len;
                break;
        case 7: /* overwrite with a chunk of another corpus entry */
        case 8: /* insert a chunk of another corpus entry */
                if (ncorpus == 0)
                        break;
                other = &corpus[rnd_below(ncorpus)];
                if (other->size == 0)
                        break;
                pos = rnd_below(other->size);
                len = 1 + rnd_below(other->size - pos < 128 ? other->size - pos : 128);
                if (size + len > max)
                        break;
                at = rnd_upto(size);
                if (rnd() & 1 && at + len <= size) {
                        memcpy(buf + at, other->data + pos, len);
                        break;
                }
                memmove(buf + at + len, buf + at, size - at);
                memcpy(buf + at, other->data + pos, len);
                size += len;
                break;
        case 9: /* a 32-bit value, either byte order */
                if (size >= 4) {
                        uint32_t v = rnd_below(4) == 0 ? (uint32_t) rnd() : (uint32_t) rnd_below(0x50000);
                        pos = rnd_below(size - 3);
                        for (int i = 0; i < 4; i++)
                                buf[pos + (size_t) i] = (uint8_t) (v >> ((rnd() & 1 ? i : 3 - i) * 8));
                }
                break;
        default: /* truncate */
                if (size)
                        size = rnd_below(size) + 1;
                break;
        }
        return size;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void usage(const char *prog)
{
        fprintf(stderr, "usage: %s [-n RUNS] [-t SECONDS] [-s SEED] [-m MAXLEN] [CORPUS-DIR-OR-FILE...]\n",
                prog);
}

int main(int argc, char **argv)
{
        unsigned long runs = 20000, seed = 1, max_len = 4096;
        double max_time = 10;
        int c;

        while ((c = getopt(argc, argv, "n:t:s:m:h")) >= 0) {
                switch (c) {
                case 'n':
                        runs = strtoul(optarg, NULL, 0);
                        break;
                case 't':
                        max_time = strtod(optarg, NULL);
                        break;
                case 's':
                        seed = strtoul(optarg, NULL, 0);
                        break;
                case 'm':
                        max_len = strtoul(optarg, NULL, 0);
                        break;
                case 'h':
                        usage(argv[0]);
                        return 0;
                default:
                        usage(argv[0]);
                        return 2;
                }
        }
        if (max_len == 0) {
                fprintf(stderr, "%s: -m must be at least 1\n", argv[0]);
                return 2;
        }

        corpus = calloc(MAX_CORPUS, sizeof(*corpus));
        if (!corpus)
                return 2;
        for (int i = optind; i < argc; i++) {
                int r = add_path(argv[i]);
                if (r < 0) {
                        fprintf(stderr, "%s: cannot read corpus %s: %s\n", argv[0], argv[i], strerror(-r));
                        return 2;
                }
        }

        struct sigaction sa = {.sa_handler = on_abort};
        sigaction(SIGABRT, &sa, NULL);

        double start = now_s();
        for (size_t i = 0; i < ncorpus; i++) {
                snprintf(cur_what, sizeof(cur_what), "corpus file %s", corpus[i].name);
                run_one(corpus[i].data, corpus[i].size);
        }

        uint8_t *buf = malloc(max_len);
        if (!buf)
                return 2;
        rng_state = 0x9E3779B97F4A7C15ull ^ ((uint64_t) seed * 0xD1B54A32D192ED03ull);
        if (rng_state == 0)
                rng_state = 1;
        unsigned long done = 0;
        for (; done < runs; done++) {
                /* The clock is read every 64 inputs only; it decides how many run, never a result. */
                if (done % 64 == 0 && max_time > 0 && now_s() - start > max_time)
                        break;
                size_t size = 0;
                if (ncorpus > 0 && rnd_below(16) != 0) {
                        const struct entry *e = &corpus[rnd_below(ncorpus)];
                        size = e->size < max_len ? e->size : max_len;
                        memcpy(buf, e->data, size);
                } else {
                        size = rnd_below(max_len < 256 ? max_len : 256);
                        for (size_t k = 0; k < size; k++)
                                buf[k] = (uint8_t) rnd();
                }
                unsigned n = 1 + (unsigned) rnd_below(8);
                for (unsigned k = 0; k < n; k++)
                        size = mutate(buf, size, max_len);
                snprintf(cur_what, sizeof(cur_what), "generated input %lu of seed %lu", done, seed);
                run_one(buf, size);
        }
        printf("%s: %zu corpus inputs replayed, %lu generated inputs (seed %lu) passed in %.1f s\n", argv[0],
               ncorpus, done, seed, now_s() - start);

        free(buf);
        for (size_t i = 0; i < ncorpus; i++) {
                free(corpus[i].name);
                free(corpus[i].data);
        }
        free(corpus);
        return 0;
}
