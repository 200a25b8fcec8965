/* Serial nodes' sessions: loader entry, sync, identity, and a job's steps over the LPC ISP or AN-1160
 * masters, behind the same FlashJob the CCP nodes use. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adi-master.h"
#include "canfleet/lpc-isp.h"
#include "cleanup.h"
#include "log.h"
#include "lpc-isp-master.h"
#include "manager.h"
#include "serial-job.h"
#include "serial-line.h"

/* Loader entry through the pins: reset held this long with the boot pin asserted, then the boot ROM
 * needs this long before it listens (UM10360: the ISP pin is sampled >= 3 ms after reset). */
#define ENTRY_RESET_US 50000u
#define ENTRY_BOOT_US  100000u
/* A session that failed on the line is started again after this pause. */
#define RESTART_PAUSE_US 1000000u
/* Sessions started again in one job at most (a chip that keeps failing is failed). */
#define MAX_RESTARTS 20u
/* Per answer; the LPC's RESEND and the ADI's BEL tries are the configuration's retries. */
#define ANSWER_TIMEOUT_US 1000000u

enum phase {
        PH_IDLE,
        PH_ENTRY, /* pins: reset and boot asserted */
        PH_BOOT,  /* pins: reset released, boot held: the ROM comes up */
        PH_SYNC,
        PH_IDENT,
        PH_UNLOCK,
        PH_ERASE,
        PH_PROGRAM,
        PH_VERIFY,
        PH_LEAVE,     /* pins: boot released, reset pulsed */
        PH_GO,        /* LPC G / ADI R */
        PH_GO_UNLOCK, /* up to date, manual entry: LPC U before G (G is a locked command) */
        PH_PAUSE,     /* before a session starts again */
};

struct SerialSession {
        Node *n;
        FlashJob *f;          /* the job's entry, NULL for an identification */
        node_done_fn id_done; /* an identification's caller */
        SerialLine *line;
        LpcIsp *lpc;
        AdiLoader *adi;
        sd_event_source *timer;
        /* A session ends inside its master's or its line's callbacks, which go on using them after the
         * call: they are freed from here, on the next turn of the loop (reap). */
        LpcIsp *dead_lpc;
        AdiLoader *dead_adi;
        SerialLine *dead_line;
        sd_event_source *reaper;
        enum phase phase;
        uint8_t *buf; /* the image padded to whole blocks (LPC) or pages (ADI) with 0xFF */
        uint32_t padded;
        uint32_t pos; /* programming: index of the block/page/chunk in the order sent */
        uint32_t n_units;
        struct lpc_isp_identity lid;
        struct cf_adi_id aid;
        uint8_t rb[LPC_ISP_BLOCK]; /* LPC verify: a block read back */
        bool reread;               /* LPC verify: this block differed once and is read again */
        unsigned restarts;
        bool touched; /* this job erased something on the chip: it holds no complete image until done */
        bool loader_synced; /* a session of ours synchronised the loader and nothing reset it since */
        bool entry_failed;  /* the pins could not be driven: a wiring or configuration fault, not retried */
        bool up_to_date;    /* the job's image is what canfleetd last flashed and verified on this chip */
        uint64_t lost_since;
        uint64_t t_erase; /* CLOCK_MONOTONIC µs of the first erase command */
        struct serial_stats stats;
        bool have_stats;
};

static Manager *mgr(const Node *n)
{
        return n->m;
}

enum cf_node_protocol node_protocol(const Node *n)
{
        return n->bus && n->bus->conf->kind == CF_TRANSPORT_SERIAL ? n->bus->conf->protocol
                                                                   : CF_PROTOCOL_CCP;
}

static bool is_lpc(const Node *n)
{
        return node_protocol(n) == CF_PROTOCOL_LPC_ISP;
}

static uint64_t now_mono(const Node *n)
{
        uint64_t t;
        sd_event_now(mgr(n)->event, CLOCK_MONOTONIC, &t);
        return t;
}

static uint64_t now_realtime_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- the session's resources ------------------------------------------------------------------ */

static void reap(SerialSession *s)
{
        s->dead_lpc = lpc_isp_free(s->dead_lpc);
        s->dead_adi = adi_loader_free(s->dead_adi);
        s->dead_line = serial_line_free(s->dead_line);
}

static int on_reap(sd_event_source *es, void *userdata)
{
        SerialSession *s = userdata;
        reap(s);
        sd_event_source_set_enabled(es, SD_EVENT_OFF);
        return 0;
}

static void session_close(SerialSession *s)
{
        /* Pins left asserted would hold the chip in reset: release them (a chip without a complete image
         * comes up in its loader anyway, its ROM finds nothing to start). */
        if (s->line && s->n->bus && s->n->bus->conf->isp_entry != CF_ISP_ENTRY_MANUAL && s->phase != PH_IDLE)
                (void) serial_line_set_pins(s->line, s->n->bus->conf, false, false);
        if (s->line) {
                s->stats.tx = serial_line_tx_bytes(s->line);
                s->stats.rx = serial_line_rx_bytes(s->line);
                s->stats.baud = serial_line_baud(s->line);
        }
        if (s->lpc || s->adi || s->line) {
                reap(s); /* what an earlier close left: no callback of theirs is running any more */
                s->dead_lpc = TAKE_PTR(s->lpc);
                s->dead_adi = TAKE_PTR(s->adi);
                s->dead_line = TAKE_PTR(s->line);
                if (s->dead_lpc)
                        lpc_isp_set_callback(s->dead_lpc, NULL, NULL);
                if (s->dead_adi)
                        adi_loader_set_callback(s->dead_adi, NULL, NULL);
                if (!s->reaper && sd_event_add_defer(s->n->m->event, &s->reaper, on_reap, s) >= 0)
                        (void) sd_event_source_set_priority(s->reaper, SD_EVENT_PRIORITY_IMPORTANT);
                else if (s->reaper)
                        (void) sd_event_source_set_enabled(s->reaper, SD_EVENT_ONESHOT);
                if (!s->reaper)
                        reap(s); /* out of memory: at once, the lesser risk */
        }
        if (s->timer)
                sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        s->phase = PH_IDLE;
}

void serial_node_free(Node *n)
{
        SerialSession *s = n->serial;
        if (!s)
                return;
        session_close(s);
        reap(s);
        sd_event_source_disable_unref(s->reaper);
        sd_event_source_disable_unref(s->timer);
        free(s->buf);
        free(s);
        n->serial = NULL;
}

bool serial_node_busy(const Node *n)
{
        return n->serial && n->serial->phase != PH_IDLE;
}

bool serial_node_stats(const Node *n, struct serial_stats *ret)
{
        if (!n->serial || !n->serial->have_stats)
                return false;
        *ret = n->serial->stats;
        return true;
}

const char *serial_node_part(const Node *n)
{
        return n->part;
}

static int session_get(Node *n, SerialSession **ret)
{
        if (!n->serial) {
                n->serial = calloc(1, sizeof *n->serial);
                if (!n->serial)
                        return -ENOMEM;
                n->serial->n = n;
        }
        *ret = n->serial;
        return 0;
}

static void step(SerialSession *s);
static void session_failed(SerialSession *s, int r, const char *why);

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        SerialSession *s = userdata;
        step(s);
        return 0;
}

static void wait_us(SerialSession *s, uint64_t us)
{
        uint64_t at = now_mono(s->n) + us;
        if (!s->timer) {
                if (sd_event_add_time(mgr(s->n)->event, &s->timer, CLOCK_MONOTONIC, at, 1000, on_timer, s) <
                    0) {
                        session_failed(s, -ENOMEM, "cannot arm a timer");
                        return;
                }
        } else {
                sd_event_source_set_time(s->timer, at);
                sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        }
}

/* ---- FlashJob bookkeeping (as flash-job.c's for CCP nodes) ---------------------------------- */

static void set_step(FlashJob *f, enum flash_step st)
{
        f->step = st;
        f->sub = 0;
        manager_flash_changed(f, true, true);
}

static void finish_node(FlashJob *f, enum flash_step st)
{
        Node *n = f->node;
        f->step = st;
        if (st == STEP_DONE) {
                free(f->error);
                f->error = NULL;
        }
        if (n && st != STEP_CANCELLED) {
                snprintf(n->last_result, sizeof n->last_result, "%s", flash_step_str(st));
                n->last_job = f->job->id;
                n->last_time = now_realtime_us();
                bus_node_changed(n, "LastUpdateResult", "LastUpdateJob", "LastUpdateTime", NULL);
                manager_node_changed(n);
        }
        manager_release_slot(f);
        if (n) {
                n->flash = NULL;
                if (n->serial) {
                        n->serial->f = NULL;
                        session_close(n->serial);
                }
        }
        manager_flash_changed(f, true, true);
        manager_flash_finished(f);
}

__attribute__((format(printf, 2, 3))) static void job_fail(FlashJob *f, const char *fmt, ...)
{
        char msg[480];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        free(f->error);
        f->error = strdup(msg);
        log_event(CF_MSGID_NODE_FAILED, NULL, LOG_ERR, f->bus, f->ref, f->job->id, "%s", msg);
        if (f->node) {
                node_set_error(f->node, msg);
                node_set_state(f->node, f->lost ? "offline" : f->node->part[0] ? "online" : "unknown");
        }
        finish_node(f, STEP_FAILED);
}

/* ---- identity --------------------------------------------------------------------------------- */

/* What canfleetd last flashed on the chip no longer holds (another chip, or this one erased): its
 * version, release and sha256 are forgotten, so that nothing (nodes, an up-to-date decision) goes on
 * from them. */
static void forget_image(Node *n)
{
        if (!n->version[0] && !n->running_sha[0])
                return;
        n->version[0] = 0;
        n->running_sha[0] = 0;
        n->running.release = 0;
        bus_node_changed(n, "Version", "Release", "RunningSha256", NULL);
        manager_node_changed(n);
}

bool serial_node_flashed(const Node *n, const char *image_sha)
{
        return n->part[0] && n->version[0] && strcmp(n->running_sha, image_sha) == 0;
}

static void set_identity(SerialSession *s)
{
        Node *n = s->n;
        char part[32], ident[128];
        if (is_lpc(n)) {
                const struct cf_lpc_part *p = cf_lpc_part_by_id(s->lid.part_id);
                snprintf(part, sizeof part, "0x%08" PRIX32, s->lid.part_id);
                snprintf(ident, sizeof ident,
                         "%s %s, boot code %u.%u, serial %08" PRIX32 "-%08" PRIX32 "-%08" PRIX32
                         "-%08" PRIX32,
                         p ? p->name : "LPC17xx?", part, s->lid.boot_major, s->lid.boot_minor,
                         s->lid.serial[0], s->lid.serial[1], s->lid.serial[2], s->lid.serial[3]);
        } else {
                snprintf(part, sizeof part, "%s", s->aid.product);
                snprintf(ident, sizeof ident, "%s, loader version %s", s->aid.product, s->aid.version);
        }
        bool changed = strcmp(part, n->part) != 0 || strcmp(ident, n->identity) != 0;
        if (changed && n->identity[0]) {
                /* Another chip on the line (a swapped board), or the same one answering otherwise: what
                 * canfleetd flashed on the one it knew (saved across restarts) says nothing of this one.
                 * An ADuCM36x's ID packet has no serial number: a swap for a chip of the same product
                 * and loader version cannot be told here. */
                log_node(LOG_NOTICE, n->bus->conf->name, n->name, s->f ? s->f->job->id : 0,
                         "%s: the chip is now %s (was %s)%s", n->name, ident, n->identity,
                         n->version[0] ? "; the version canfleetd flashed on the former one is forgotten"
                                       : "");
                forget_image(n);
        }
        snprintf(n->part, sizeof n->part, "%s", part);
        snprintf(n->identity, sizeof n->identity, "%s", ident);
        /* n->identified stays false: it means "a CCP identify read the trailer and UID", which the
         * hardware id checks and the hawkBit targets (controllerId from the UID) rely on */
        n->last_seen = now_realtime_us();
        if (changed) {
                bus_node_changed(n, "Identity", "LastSeen", NULL);
                manager_node_changed(n); /* kept across restarts (inventory.h) */
        }
}

/* ---- the session ---------------------------------------------------------------------------- */

static void lpc_done(LpcIsp *l, int r, void *userdata);
static void adi_done(AdiLoader *a, int r, void *userdata);

static int session_open(SerialSession *s)
{
        Node *n = s->n;
        const struct cf_bus_conf *bc = n->bus->conf;
        session_close(s);
        reap(
            s); /* never called from the old session's callbacks; the device is closed before it is opened */
        int r = serial_line_open(mgr(n)->event, bc->device, bc->baud, &s->line);
        if (r < 0)
                return r;
        uint64_t timeout = ANSWER_TIMEOUT_US;
        if ((uint64_t) mgr(n)->conf->reply_timeout_ms * 1000u > timeout)
                timeout = (uint64_t) mgr(n)->conf->reply_timeout_ms * 1000u;
        if (is_lpc(n)) {
                r = lpc_isp_new(mgr(n)->event, s->line, bc->crystal_khz, mgr(n)->conf->retries, timeout,
                                &s->lpc);
                if (r >= 0)
                        lpc_isp_set_callback(s->lpc, lpc_done, s);
        } else {
                r = adi_loader_new(mgr(n)->event, s->line, mgr(n)->conf->retries, timeout, &s->adi);
                if (r >= 0)
                        adi_loader_set_callback(s->adi, adi_done, s);
        }
        return r;
}

static const char *master_error(SerialSession *s)
{
        return s->lpc ? lpc_isp_error(s->lpc) : s->adi ? adi_loader_error(s->adi) : "";
}

/* Start (or start again) a session: open the line, enter the loader. */
static void session_start(SerialSession *s)
{
        Node *n = s->n;
        s->up_to_date = false; /* decided again in every session, after the identity */
        int r = session_open(s);
        if (r < 0) {
                char why[200];
                snprintf(why, sizeof why, "cannot open %s: %s", n->bus->conf->device, strerror(-r));
                session_failed(s, r, why);
                return;
        }
        if (n->bus->conf->isp_entry == CF_ISP_ENTRY_MANUAL) {
                s->phase = PH_BOOT;
                step(s);
                return;
        }
        r = serial_line_set_pins(s->line, n->bus->conf, true, true);
        if (r < 0) {
                char why[320];
                snprintf(why, sizeof why, "loader entry failed (nothing flashed): %s",
                         serial_line_pins_error(s->line));
                s->entry_failed = true;
                session_failed(s, r, why);
                return;
        }
        s->phase = PH_ENTRY;
        wait_us(s, ENTRY_RESET_US);
}

/* ---- a job's plan: the units in the order they are sent -------------------------------------- */

static uint32_t unit_size(const Node *n)
{
        return is_lpc(n) ? LPC_ISP_BLOCK : CF_ADI_PAGE_SIZE;
}

/* The address of the i-th unit sent: unit 0 (the vector table) goes last. */
static uint32_t unit_addr(const SerialSession *s, uint32_t i)
{
        uint32_t u = unit_size(s->n);
        return (i + 1 == s->n_units ? 0 : (i + 1)) * u;
}

static int plan(SerialSession *s)
{
        Job *j = s->f->job;
        uint32_t u = unit_size(s->n);
        s->padded = (uint32_t) ((j->image_size + u - 1) / u * u);
        free(s->buf);
        s->buf = malloc(s->padded);
        if (!s->buf)
                return -ENOMEM;
        memset(s->buf, 0xFF, s->padded);
        memcpy(s->buf, j->image, j->image_size);
        s->n_units = s->padded / u;
        return 0;
}

static void set_progress(SerialSession *s, uint64_t done)
{
        FlashJob *f = s->f;
        if (!f)
                return;
        f->bytes_done = done > f->bytes_total ? f->bytes_total : done;
        manager_flash_changed(f, false, false);
}

/* ---- steps ------------------------------------------------------------------------------------ */

static void do_program(SerialSession *s);
static void do_verify(SerialSession *s);
static void leave_loader(SerialSession *s);

static void after_identify(SerialSession *s)
{
        Node *n = s->n;
        set_identity(s);
        FlashJob *f = s->f;
        if (!f) {
                /* an identification: leave the loader when the pins can */
                if (n->bus->conf->isp_entry != CF_ISP_ENTRY_MANUAL) {
                        (void) serial_line_set_pins(s->line, n->bus->conf, true, false);
                        s->phase = PH_LEAVE;
                        wait_us(s, ENTRY_RESET_US);
                        return;
                }
                node_done_fn done = s->id_done;
                s->id_done = NULL;
                session_close(s);
                node_set_state(n, "online");
                manager_node_changed(n);
                if (done)
                        done(n, 0);
                return;
        }
        Job *j = f->job;
        /* The part id is a fact: another chip is failed here, before anything is erased. */
        bool same = is_lpc(n) ? strcasecmp(n->part, j->part_id) == 0 : strcmp(n->part, j->part_id) == 0;
        if (!same) {
                job_fail(f, "%s: the chip is %s, the bundle is for part %s (nothing erased)", f->ref,
                         n->identity, j->part_id);
                return;
        }
        if (is_lpc(n)) {
                const struct cf_lpc_part *p = cf_lpc_part_by_id(s->lid.part_id);
                if (p && j->image_size > p->flash_size) {
                        job_fail(f,
                                 "%s: the image is %zu bytes, the %s has %" PRIu32
                                 " bytes of flash (nothing erased)",
                                 f->ref, j->image_size, p->name, p->flash_size);
                        return;
                }
                /* Checked again here, right before it goes out: a chip whose word 7 is wrong stays in ISP.
                 */
                if (!cf_lpc_vector_checksum_ok(j->image, j->image_size)) {
                        job_fail(f,
                                 "%s: the image's vector table checksum (word 7) is wrong (nothing erased)",
                                 f->ref);
                        return;
                }
        }
        if (!j->force && serial_node_flashed(n, j->payload_sha)) {
                /* The same chip (identity) holds what canfleetd last flashed and verified on it, this
                 * very image: nothing is sent (--force flashes it again). The loader cannot report what
                 * runs: only another tool flashing it meanwhile could make this wrong. The chip leaves
                 * its loader as after an update. */
                log_node(LOG_INFO, f->bus, f->ref, j->id,
                         "%s: holds %s as canfleetd last flashed and verified it: up to date", f->ref,
                         j->version);
                s->up_to_date = true;
                leave_loader(s);
                return;
        }
        int r = plan(s);
        if (r < 0) {
                job_fail(f, "%s: out of memory", f->ref);
                return;
        }
        f->lost = false;
        s->lost_since = 0;
        if (is_lpc(n)) {
                set_step(f, STEP_UNLOCKING);
                s->phase = PH_UNLOCK;
                r = lpc_isp_unlock(s->lpc);
        } else {
                s->touched = true;
                forget_image(n); /* erased from here on: it holds no complete image until done */
                set_step(f, STEP_ERASING);
                s->phase = PH_ERASE;
                s->pos = 0;
                s->t_erase = now_mono(n);
                r = adi_loader_erase(s->adi, 0,
                                     s->n_units > ADI_ERASE_PAGES_MAX ? ADI_ERASE_PAGES_MAX : s->n_units);
        }
        if (r < 0)
                session_failed(s, r, "cannot start");
}

static void do_program(SerialSession *s)
{
        Node *n = s->n;
        uint32_t u = unit_size(n);
        if (s->pos >= s->n_units) {
                do_verify(s);
                return;
        }
        uint32_t addr = unit_addr(s, s->pos);
        int r = lpc_isp_program(s->lpc, addr, s->buf + addr, u);
        if (r < 0)
                session_failed(s, r, "cannot program");
}

/* ADI: a page goes as chunks of 248, 248 and 16 bytes; FlashJob.sub counts them. */
static uint32_t adi_chunk_len(uint32_t k)
{
        uint32_t off = k * ADI_WRITE_CHUNK;
        uint32_t left = CF_ADI_PAGE_SIZE - off;
        return left < ADI_WRITE_CHUNK ? left : ADI_WRITE_CHUNK;
}

static void adi_write_next(SerialSession *s)
{
        FlashJob *f = s->f;
        if (s->pos >= s->n_units) {
                do_verify(s);
                return;
        }
        uint32_t addr = unit_addr(s, s->pos);
        uint32_t off = f->sub * ADI_WRITE_CHUNK;
        int r = adi_loader_write(s->adi, addr + off, s->buf + addr + off, adi_chunk_len(f->sub));
        if (r < 0)
                session_failed(s, r, "cannot program");
}

static void do_verify(SerialSession *s)
{
        FlashJob *f = s->f;
        set_step(f, STEP_VERIFYING);
        s->phase = PH_VERIFY;
        s->pos = 0;
        s->reread = false;
        int r = is_lpc(s->n) ? lpc_isp_read(s->lpc, 0, s->rb, LPC_ISP_BLOCK)
                             : adi_loader_verify_page(s->adi, 0, s->buf);
        if (r < 0)
                session_failed(s, r, "cannot verify");
}

static void do_reboot(SerialSession *s)
{
        FlashJob *f = s->f;
        Node *n = s->n;
        s->stats.wall_us = now_mono(n) - s->t_erase;
        s->stats.tx = serial_line_tx_bytes(s->line);
        s->stats.rx = serial_line_rx_bytes(s->line);
        s->stats.baud = serial_line_baud(s->line);
        s->have_stats = true;
        if (f->step != STEP_REBOOTING)
                set_step(f, STEP_REBOOTING);
        if (!manager_flash_saved(f)) {
                f->held = true; /* serial_job_saved() goes on */
                return;
        }
        f->held = false;
        leave_loader(s);
}

/* Start the application: with the pins, boot pin released and a reset (the ROM checks the image and
 * runs it); by hand, LPC G (after U when this session did not unlock) or ADI R. */
static void leave_loader(SerialSession *s)
{
        Node *n = s->n;
        if (n->bus->conf->isp_entry != CF_ISP_ENTRY_MANUAL) {
                (void) serial_line_set_pins(s->line, n->bus->conf, true, false);
                s->phase = PH_LEAVE;
                wait_us(s, ENTRY_RESET_US);
                return;
        }
        int r;
        if (is_lpc(n) && s->up_to_date) {
                s->phase = PH_GO_UNLOCK;
                r = lpc_isp_unlock(s->lpc);
        } else {
                s->phase = PH_GO;
                r = is_lpc(n) ? lpc_isp_go(s->lpc) : adi_loader_reset(s->adi);
        }
        if (r < 0)
                session_failed(s, r, "cannot start the application");
}

static void job_done(SerialSession *s)
{
        FlashJob *f = s->f;
        Node *n = s->n;
        Job *j = f->job;
        if (s->up_to_date) {
                s->up_to_date = false;
                node_set_error(n, NULL);
                node_set_state(n, "online");
                finish_node(f, STEP_UP_TO_DATE);
                return;
        }
        char fields[160];
        snprintf(fields, sizeof fields,
                 "SERIAL_TX=%" PRIu64 "\nSERIAL_RX=%" PRIu64 "\nSERIAL_WALL_US=%" PRIu64, s->stats.tx,
                 s->stats.rx, s->stats.wall_us);
        log_event(CF_MSGID_NODE_UPDATED, fields, LOG_INFO, f->bus, f->ref, j->id,
                  "%s: now holds %s (release %u), %zu bytes verified; line: %" PRIu64 " bytes out, %" PRIu64
                  " in (%.1f s at %u baud), %.2f s wall",
                  f->ref, j->version, j->info.release, j->image_size, s->stats.tx, s->stats.rx,
                  (double) (s->stats.tx + s->stats.rx) * 10.0 / s->stats.baud, s->stats.baud,
                  (double) s->stats.wall_us / 1e6);
        snprintf(n->version, sizeof n->version, "%s", j->version);
        n->running.release = j->info.release;
        memcpy(n->running_sha, j->payload_sha, sizeof n->running_sha);
        bus_node_changed(n, "Version", "Release", "RunningSha256", NULL);
        node_set_error(n, NULL);
        node_set_state(n, "online");
        f->bytes_done = f->bytes_total;
        finish_node(f, STEP_DONE);
}

static void identify_finished(SerialSession *s, int r)
{
        Node *n = s->n;
        node_done_fn done = s->id_done;
        s->id_done = NULL;
        session_close(s);
        if (r < 0)
                node_set_state(n, "offline");
        else
                node_set_state(n, "online");
        manager_node_changed(n);
        if (done)
                done(n, r);
}

/* The line failed this session (a time-out, a garbled answer, a RESEND or BEL too often, the device
 * gone): a job's node is looked for again for node_lost_timeout_s, each time from the loader entry. */
static void session_failed(SerialSession *s, int r, const char *why)
{
        Node *n = s->n;
        FlashJob *f = s->f;
        bool entry_failed = s->entry_failed;
        s->entry_failed = false;
        session_close(s);
        if (!f) {
                log_node(LOG_INFO, n->bus->conf->name, n->name, 0, "%s: not identified: %s", n->name, why);
                identify_finished(s, r);
                return;
        }
        uint64_t now = now_mono(n);
        if (!s->lost_since)
                s->lost_since = now;
        /* a line that cannot be driven is the configuration's or the wiring's fault: trying again for
         * node_lost_timeout_s would only hide it */
        bool facts = (r == -EREMOTEIO && (f->step == STEP_ERASING || f->step == STEP_UNLOCKING)) || entry_failed;
        if (facts || ++s->restarts > MAX_RESTARTS ||
            now - s->lost_since >= (uint64_t) mgr(n)->conf->node_lost_timeout_s * 1000000u) {
                f->lost = !facts && r != -EREMOTEIO;
                job_fail(f, "%s: %s at step %s%s", f->ref, why, flash_step_str(f->step),
                         s->touched ? " (the chip has no complete image: it stays in its loader; "
                                      "the next update finishes it)"
                                    : "");
                return;
        }
        log_node(LOG_NOTICE, f->bus, f->ref, f->job->id, "%s: %s at step %s: starting the session again",
                 f->ref, why, flash_step_str(f->step));
        free(f->error);
        f->error = strdup(why);
        set_step(f, STEP_CONNECTING);
        s->phase = PH_PAUSE;
        wait_us(s, RESTART_PAUSE_US);
}

static void master_failed(SerialSession *s, int r)
{
        char why[300];
        snprintf(why, sizeof why, "%s", master_error(s));
        session_failed(s, r, why);
}

static void next(SerialSession *s, int r)
{
        Node *n = s->n;
        FlashJob *f = s->f;
        if (r < 0 && s->phase == PH_GO) {
                /* G or R sent; the chip is verified, whatever it answers while it jumps */
                r = 0;
        }
        if (r < 0) {
                master_failed(s, r);
                return;
        }
        switch (s->phase) {
        case PH_SYNC:
                s->loader_synced = true;
                if (r == 1) {
                        /* ADI: a loader synchronised earlier sent no ID packet again; it is the one
                         * whose ID this session keeps, unless someone else synchronised it */
                        if (!n->part[0]) {
                                session_failed(s, -EPROTO,
                                               "the loader was synchronised before and sends no ID "
                                               "packet again: reset the chip into its loader");
                                return;
                        }
                        after_identify(s);
                        return;
                }
                s->phase = PH_IDENT;
                if (is_lpc(n)) {
                        if (lpc_isp_identify(s->lpc, &s->lid) < 0)
                                session_failed(s, -EIO, "cannot identify");
                } else {
                        after_identify(s);
                }
                return;
        case PH_IDENT:
                after_identify(s);
                return;
        case PH_UNLOCK:
                s->touched = true;
                forget_image(n); /* erased from here on: it holds no complete image until done */
                set_step(f, STEP_ERASING);
                s->phase = PH_ERASE;
                s->t_erase = now_mono(n);
                if (lpc_isp_erase(s->lpc, 0, (unsigned) cf_lpc_sector_of(s->padded - 1)) < 0)
                        session_failed(s, -EIO, "cannot erase");
                return;
        case PH_ERASE:
                if (!is_lpc(n)) {
                        s->pos += ADI_ERASE_PAGES_MAX;
                        if (s->pos < s->n_units) {
                                uint32_t left = s->n_units - s->pos;
                                if (adi_loader_erase(s->adi, s->pos * CF_ADI_PAGE_SIZE,
                                                     left > ADI_ERASE_PAGES_MAX ? ADI_ERASE_PAGES_MAX
                                                                                : left) < 0)
                                        session_failed(s, -EIO, "cannot erase");
                                return;
                        }
                }
                set_step(f, STEP_PROGRAMMING);
                s->phase = PH_PROGRAM;
                s->pos = 0;
                f->sub = 0;
                if (is_lpc(n))
                        do_program(s);
                else
                        adi_write_next(s);
                return;
        case PH_PROGRAM:
                if (is_lpc(n)) {
                        s->pos++;
                        set_progress(s, (uint64_t) s->pos * LPC_ISP_BLOCK);
                        do_program(s);
                } else {
                        f->sub++;
                        if (f->sub * ADI_WRITE_CHUNK >= CF_ADI_PAGE_SIZE) {
                                f->sub = 0;
                                s->pos++;
                                set_progress(s, (uint64_t) s->pos * CF_ADI_PAGE_SIZE);
                        }
                        adi_write_next(s);
                }
                return;
        case PH_VERIFY:
                if (is_lpc(n)) {
                        /* Every block read back and compared with the image: the ISP's sum of each 20
                         * lines lets two bit errors that cancel through, and M only compares flash with
                         * what reached RAM. A block that differs is read again once (the read itself may
                         * have been hit); differing twice, the flash is wrong: stage again. */
                        uint32_t a = s->pos * LPC_ISP_BLOCK;
                        if (memcmp(s->rb, s->buf + a, LPC_ISP_BLOCK) != 0) {
                                if (s->reread) {
                                        char why[96];
                                        snprintf(why, sizeof why,
                                                 "the flash at 0x%05" PRIX32 " differs from the image", a);
                                        session_failed(s, -EIO, why);
                                        return;
                                }
                                s->reread = true;
                        } else {
                                s->reread = false;
                                s->pos++;
                        }
                        if (s->pos < s->n_units) {
                                if (lpc_isp_read(s->lpc, s->pos * LPC_ISP_BLOCK, s->rb, LPC_ISP_BLOCK) < 0)
                                        session_failed(s, -EIO, "cannot verify");
                                return;
                        }
                        do_reboot(s);
                        return;
                }
                if (++s->pos < s->n_units) {
                        uint32_t a = s->pos * CF_ADI_PAGE_SIZE;
                        if (adi_loader_verify_page(s->adi, a, s->buf + a) < 0)
                                session_failed(s, -EIO, "cannot verify");
                        return;
                }
                do_reboot(s);
                return;
        case PH_GO_UNLOCK:
                s->phase = PH_GO;
                if (lpc_isp_go(s->lpc) < 0)
                        session_failed(s, -EIO, "cannot start the application");
                return;
        case PH_GO:
                s->loader_synced = false; /* G / R: the application runs */
                job_done(s);
                return;
        default:
                return;
        }
}

static void lpc_done(LpcIsp *l, int r, void *userdata)
{
        next(userdata, r);
}

static void adi_done(AdiLoader *a, int r, void *userdata)
{
        next(userdata, r);
}

/* Timer steps: the pins' pauses and a restart's pause. */
static void step(SerialSession *s)
{
        Node *n = s->n;
        int r;
        switch (s->phase) {
        case PH_ENTRY:
                r = serial_line_set_pins(s->line, n->bus->conf, false, true);
                if (r < 0) {
                        char why[320];
                        snprintf(why, sizeof why, "loader entry failed (nothing flashed): %s",
                                 serial_line_pins_error(s->line));
                        s->entry_failed = true;
                        session_failed(s, r, why);
                        return;
                }
                s->phase = PH_BOOT;
                wait_us(s, ENTRY_BOOT_US);
                return;
        case PH_BOOT:
                s->phase = PH_SYNC;
                {
                        /* only a chip this gateway synchronised and did not reset since can be in
                         * command mode: what it is sent to find out must not upset an autobaud */
                        bool maybe = s->loader_synced && n->bus->conf->isp_entry == CF_ISP_ENTRY_MANUAL;
                        r = s->lpc ? lpc_isp_sync(s->lpc, maybe) : adi_loader_sync(s->adi, &s->aid, maybe);
                }
                if (r < 0)
                        session_failed(s, r, "cannot sync");
                return;
        case PH_LEAVE:
                /* reset released: the chip boots its application */
                s->loader_synced = false;
                (void) serial_line_set_pins(s->line, n->bus->conf, false, false);
                if (s->f)
                        job_done(s);
                else
                        identify_finished(s, 0);
                return;
        case PH_PAUSE:
                session_start(s);
                return;
        default:
                return;
        }
}

/* ---- entry points ----------------------------------------------------------------------------- */

void serial_job_begin(FlashJob *f)
{
        Node *n = f->node;
        SerialSession *s;
        if (session_get(n, &s) < 0) {
                job_fail(f, "%s: out of memory", f->ref);
                return;
        }
        if (f->step == STEP_CANCELLING) {
                /* nothing staged on a serial node to take back: cancelled */
                finish_node(f, STEP_CANCELLED);
                return;
        }
        n->flash = f;
        s->f = f;
        s->id_done = NULL;
        s->restarts = 0;
        s->touched = false;
        s->lost_since = 0;
        f->bytes_done = 0;
        f->lost = false;
        node_set_state(n, "updating");
        set_step(f, STEP_CONNECTING);
        session_start(s);
}

void serial_job_resume_confirm(FlashJob *f)
{
        /* "rebooting" is saved only after the whole image was verified on the chip: what is left is the
         * start of the application, which a power cycle does as well. */
        Node *n = f->node;
        if (n) {
                n->flash = f;
                node_set_state(n, "online");
        }
        log_node(LOG_INFO, f->bus, f->ref, f->job->id,
                 "%s: resumed after its image was verified; it starts it at its next reset", f->ref);
        f->bytes_done = f->bytes_total;
        finish_node(f, STEP_DONE);
}

void serial_job_cancel(FlashJob *f)
{
        if (flash_step_final(f->step) || f->step >= STEP_REBOOTING)
                return; /* verified: the node starts it anyway */
        Node *n = f->node;
        bool touched = f->step >= STEP_ERASING || (n && n->serial && n->serial->touched);
        if (n && n->serial)
                session_close(n->serial);
        if (n && f->step == STEP_QUEUED && !touched)
                node_set_idle(n); /* never talked to in this job */
        else if (n)
                node_set_state(n, touched ? "recovery" : "online");
        log_node(LOG_NOTICE, f->bus, f->ref, f->job->id, "%s: cancelled at step %s%s", f->ref,
                 flash_step_str(f->step),
                 touched ? ": the chip holds no complete image and stays in its loader until the next update"
                         : "");
        if (touched) {
                free(f->error);
                f->error =
                    strdup("cancelled after erasing: the chip stays in its loader until the next update");
        }
        finish_node(f, STEP_CANCELLED);
}

void serial_job_saved(FlashJob *f)
{
        if (f->held && f->node && f->node->serial && f->node->serial->f == f)
                do_reboot(f->node->serial);
}

void serial_job_free(FlashJob *f)
{
        if (f->node && f->node->flash == f) {
                f->node->flash = NULL;
                if (f->node->serial && f->node->serial->f == f) {
                        f->node->serial->f = NULL;
                        session_close(f->node->serial);
                }
        }
        free(f->error);
        f->error = NULL;
        free(f->lost_why);
        f->lost_why = NULL;
}

int serial_node_identify(Node *n, node_done_fn done)
{
        SerialSession *s;
        int r = session_get(n, &s);
        if (r < 0)
                return r;
        if (s->phase != PH_IDLE || n->flash)
                return -EBUSY;
        s->f = NULL;
        s->id_done = done;
        session_start(s);
        return 0;
}
