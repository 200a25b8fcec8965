/* Fuzz target: canfleetd reading its job files back from STATE_DIR (job_store_load_all) after any damage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "job-store.h"
#include "log.h"

/*
 * The input describes what STATE_DIR/jobs holds when canfleetd starts: a series of entries, each
 *   kind (1 byte), id (1 byte: below 0xF0 the id is that byte % 8, else 4 more bytes give it),
 *   length (2 bytes, big-endian, cut to what is left), then that many bytes of content
 * kind & 7 = 1: "ID.json.tmp" (a write cut before its rename); 2: "0ID.json" (a hand-made second
 * spelling of the same id); 3: a directory "ID.json"; 4: "ID.log" (the job's log of changes); 5, 6:
 * a FIFO "ID.json", "ID.log"; else: the file "ID.json" with the content.
 * A later entry of the same name replaces the earlier one. The files are written into a private
 * directory (on /dev/shm when there is one: the round trip below fsyncs), then loaded as
 * canfleetd does at start. Checked:
 *  - no crash, no leak, no hang (a FIFO is not opened for reading); the load succeeds (0) or fails with a
 * negative errno and nothing;
 *  - records come sorted by id, each id once (one job per id, however its file is spelt), every id
 *    in 1..max_id; strings within their fields;
 *  - every record, saved with job_store_save() into a fresh directory and loaded again, comes back
 *    the same: what the daemon loads it can write and read back.
 */

static char base[64];
static char state[2][96], jobs[2][112];

static void rm_all(const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    unlinkat(dirfd(d), de->d_name, 0) < 0)
                        unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
        closedir(d);
}

static void cleanup(void)
{
        for (int i = 0; i < 2; i++) {
                rm_all(jobs[i]);
                rmdir(jobs[i]);
                rmdir(state[i]);
        }
        rmdir(base);
}

static void setup(void)
{
        struct stat st;
        const char *tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                              ? "/dev/shm"
                              : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(base, sizeof(base), "%.40s/fuzz-job-store-XXXXXX", tmp);
        if (!mkdtemp(base))
                abort();
        for (int i = 0; i < 2; i++) {
                snprintf(state[i], sizeof(state[i]), "%s/state%d", base, i);
                snprintf(jobs[i], sizeof(jobs[i]), "%s/jobs", state[i]);
                if (mkdir(state[i], 0700) < 0 || mkdir(jobs[i], 0700) < 0)
                        abort();
        }
        atexit(cleanup);
        if (!getenv("FUZZ_TRACE"))
                log_set_max_level(LOG_ERR); /* a warning per damaged file would drown the fuzzer */
}

static void put_entry(uint8_t kind, uint32_t id, const uint8_t *content, size_t len)
{
        char name[48], path[200];

        switch (kind & 7) {
        case 4:
        case 6:
                snprintf(name, sizeof(name), "%u.log", id);
                break;
        case 1:
                snprintf(name, sizeof(name), "%u.json.tmp", id);
                break;
        case 2:
                snprintf(name, sizeof(name), "0%u.json", id);
                break;
        default:
                snprintf(name, sizeof(name), "%u.json", id);
                break;
        }
        snprintf(path, sizeof(path), "%s/%s", jobs[0], name);
        if (unlink(path) < 0)
                rmdir(path);
        if ((kind & 7) == 3) {
                if (mkdir(path, 0700) < 0)
                        abort();
                return;
        }
        if ((kind & 7) >= 5) {
                /* Nobody ever writes to it: opening it for reading would block the load for good. */
                if (mkfifo(path, 0600) < 0)
                        abort();
                return;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || (len && write(fd, content, len) != (ssize_t) len) || close(fd) < 0)
                abort();
}

static void check_record(const struct job_record *r)
{
        FUZZ_CHECK(memchr(r->state, 0, sizeof(r->state)) && memchr(r->image, 0, sizeof(r->image)),
                   "job %u: unterminated string", r->id);
        FUZZ_CHECK(r->n_nodes == 0 || r->nodes, "job %u: %zu nodes and no array", r->id, r->n_nodes);
        for (size_t i = 0; i < r->n_nodes; i++)
                FUZZ_CHECK(memchr(r->nodes[i].bus, 0, sizeof(r->nodes[i].bus)) &&
                               memchr(r->nodes[i].step, 0, sizeof(r->nodes[i].step)),
                           "job %u node %zu: unterminated string", r->id, i);
}

static bool same_record(const struct job_record *a, const struct job_record *b)
{
        if (a->id != b->id || strcmp(a->state, b->state) || a->created != b->created ||
            a->finished != b->finished || a->force != b->force || a->cancel != b->cancel ||
            strcmp(a->image, b->image) || a->n_nodes != b->n_nodes)
                return false;
        for (size_t i = 0; i < a->n_nodes; i++) {
                const struct job_record_node *x = &a->nodes[i], *y = &b->nodes[i];
                if (strcmp(x->bus, y->bus) || x->station != y->station || strcmp(x->step, y->step) ||
                    strcmp(x->error ? x->error : "", y->error ? y->error : "") ||
                    x->bytes_done != y->bytes_done || x->bytes_total != y->bytes_total)
                        return false;
        }
        return true;
}

static void free_records(struct job_record *recs, size_t n)
{
        for (size_t i = 0; i < n; i++)
                job_record_done(&recs[i]);
        free(recs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};

        if (!base[0])
                setup();
        rm_all(jobs[0]);
        rm_all(jobs[1]);

        for (unsigned n = 0; fuzz_left(&in) && n < 32; n++) {
                uint8_t kind = fuzz_u8(&in), sel = fuzz_u8(&in);
                uint32_t id = sel < 0xF0 ? sel % 8u : fuzz_u32(&in);
                size_t len = fuzz_u16(&in);
                if (len > in.n)
                        len = in.n;
                put_entry(kind, id, in.p, len);
                in.p += len;
                in.n -= len;
        }

        struct job_record *recs = NULL;
        size_t n = 0;
        unsigned max_id = 0;
        int r = job_store_load_all(state[0], &recs, &n, &max_id);
        FUZZ_CHECK(r == 0 || (r < 0 && !recs && n == 0), "job_store_load_all returned %d with %zu records",
                   r, n);
        if (r < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                check_record(&recs[i]);
                FUZZ_CHECK(recs[i].id >= 1 && recs[i].id <= max_id, "job %u loaded, max_id %u", recs[i].id,
                           max_id);
                if (i > 0)
                        FUZZ_CHECK(recs[i - 1].id < recs[i].id, "jobs %u and %u out of order or twice",
                                   recs[i - 1].id, recs[i].id);
        }

        /* What was loaded, written back and loaded again. */
        for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(job_store_save(state[1], &recs[i]) == 0, "job %u loaded but cannot be saved",
                           recs[i].id);
        struct job_record *again = NULL;
        size_t n2 = 0;
        unsigned max2 = 0;
        FUZZ_CHECK(job_store_load_all(state[1], &again, &n2, &max2) == 0, "saved jobs do not load");
        FUZZ_CHECK(n2 == n, "%zu jobs saved, %zu loaded back", n, n2);
        for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(same_record(&recs[i], &again[i]), "job %u reads back differently", recs[i].id);

        free_records(again, n2);
        free_records(recs, n);
        return 0;
}
