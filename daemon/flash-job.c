/* The per-node update: identify, unlock, erase C, program the planned runs, verify, reset, and confirm the
 * new version. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canfleet/crc32.h"
#include "canfleet/node-status.h"
#include "canfleet/seedkey.h"
#include "canfleet/sha256.h"
#include "cleanup.h"
#include "dual-bank.h"
#include "flash-job.h"
#include "serial-job.h"
#include "group-job.h"
#include "log.h"
#include "manager.h"

/* What identify reads, after its CONNECT: the device ID, then the status block up to and with B's CRC
 * and its install-failure count. The tick counter (CF_STATUS_TICKS) is left out: it changes between
 * two reads, and every piece is read until two reads agree. */
static const struct id_piece {
        uint8_t ext, off, len;
} id_pieces[] = {
        {CF_CCP_EXT_DEVICE_ID, 0, 5},  {CF_CCP_EXT_DEVICE_ID, 5, 5},  {CF_CCP_EXT_DEVICE_ID, 10, 5},
        {CF_CCP_EXT_DEVICE_ID, 15, 1}, {CF_CCP_EXT_STATUS, 0, 5},     {CF_CCP_EXT_STATUS, 5, 5},
        {CF_CCP_EXT_STATUS, 10, 5},    {CF_CCP_EXT_STATUS, 15, 5},    {CF_CCP_EXT_STATUS, 20, 5},
        {CF_CCP_EXT_STATUS, 25, 5},    {CF_CCP_EXT_STATUS, 30, 5},    {CF_CCP_EXT_STATUS, 35, 5},
        {CF_CCP_EXT_STATUS, 40, 5},    {CF_CCP_EXT_STATUS, 45, 5},    {CF_CCP_EXT_STATUS, 50, 5},
        {CF_CCP_EXT_STATUS, 55, 5},    {CF_CCP_EXT_STATUS, 60, 5},    {CF_CCP_EXT_STATUS, 65, 5},
        {CF_CCP_EXT_STATUS, 70, 2},    {CF_CCP_EXT_STATUS, CF_STATUS_INSTALL_FAILURES, 3},
};
#define ID_STEPS (1u + ELEMENTSOF(id_pieces)) /* CONNECT, then the pieces */
_Static_assert(CF_STATUS_B_CRC + 4 == 72 && CF_STATUS_TICKS == 72, "identify's pieces follow node-status.h");
/* install_failures, bank and trial in one piece (a single-bank node answers 0 for the last two) */
_Static_assert(CF_STATUS_BANK == CF_STATUS_INSTALL_FAILURES + 1 && CF_STATUS_TRIAL == CF_STATUS_BANK + 1,
               "identify's last piece follows node-status.h");
#define REBOOT_FIRST_US   200000ULL
#define REBOOT_BACKOFF_US 1000000ULL
/* C2 answers (ccp-master.h: -ECONNRESET) a job takes from one node before it fails the node; and the
 * pause before the new session's CONNECT, for a node that asked for a cold start to have it. */
#define MAX_REINITS     3u
#define REINIT_DELAY_US 100000ULL
/* Sessions a job starts again for one node (lost and back, a staged image that does not check out,
 * a refusal before DISCONNECT): enough for a line that corrupts frames, bounded for a node that
 * always ends the same way. */
#define MAX_RESTARTS 12u
/* Keys a node may refuse in one job before the fleet key is called wrong: a corrupted seed or key
 * costs one; five in a row, each from a fresh seed, is not a line's doing. The node locks GET_SEED
 * for 10 s after three (docs/design.md §3): the job waits that out, twice at most. */
#define MAX_KEYS_REFUSED  5u
#define MAX_LOCKOUT_WAITS 2u
#define LOCKOUT_WAIT_US   11000000ULL
/* Transfers resumed after an exchange lost all its tries, the node still answering TEST. */
#define MAX_RESYNCS 64u
/* Looking for a lost node: CONNECT probes, from the first to the longest pause. */
#define LOST_FIRST_US 100000ULL
#define LOST_MAX_US   2000000ULL
/* The identify reads are repeated until two agree (a corrupted answer cannot pass for the truth). */
#define ID_MAX_PASSES 4u
/* Cancelling a staged image: the last sector of C (128 KB) holds the trailer and the CRC word. */
#define CANCEL_ERASE_OFF  0x20000u
#define CANCEL_ERASE_SIZE 0x20000u
/* A node that rejoins its group (a restart) rides a new pass from the first run of at least this
 * many missing slots with image bytes (where the killed pass stopped); shorter holes, and whatever
 * a pass leaves, are repaired by unicast PROGRAM_6. */
#define GROUP_PASS_MIN_RUN 64u
/* Sub-steps of the group path (f->sub): in STEP_ERASING, the GROUP_JOIN of a restarted member
 * (before any erase) and the one right after CLEAR_MEMORY; in STEP_PROGRAMMING, the GAPs that find
 * where a rejoined node's pass must start, then the repair: GAP, SET_MTA, PROGRAM. */
/* Checked blocks (canfleet/ccp.h): refusals of one block in a row before a new session. A refusal
 * costs the block's frames again; at 1 % corrupted frames about one block in six is refused once. */
#define MAX_BLOCK_REFUSALS 10u
/* With block checks a lost group frame costs its whole block (16 slots), so after a lossy pass a
 * member whose record misses at least 1/REPAIR_PASS_SHARE of the slots it should hold rides a second
 * pass (from its first missing slot; what it has is ignored) instead of a unicast repair of them
 * all: a pass costs one frame per slot for every node at once, the repair two frames and a round
 * trip per slot per node. At most GROUP_PASSES passes per session; what they leave goes unicast. */
#define REPAIR_PASS_SHARE 20u
#define GROUP_PASSES      2u
enum {
        SUB_CHECK = 5,    /* STEP_PROGRAMMING, plain path: BLOCK_CHECK */
        SUB_BLKMODE = 15, /* STEP_ERASING: BLOCK_MODE, before anything else */
        SUB_REJOIN = 20,
        SUB_JOIN = 21,
        SUB_SCAN = 30,
        SUB_GAP = 31,
        SUB_MTA = 32,
        SUB_PROGRAM = 33,
        SUB_RCHECK = 34, /* BLOCK_CHECK in the GAP repair */
        SUB_COUNT = 35,  /* after a pass: GROUP_JOIN again, for the count of slots received */
        SUB_PASSGAP = 36, /* then GAP from 0: where the second pass starts */
};

static const char *const step_names[_STEP_MAX] = {
    [STEP_DOWNLOADING] = "downloading",
    [STEP_QUEUED] = "queued",       [STEP_CONNECTING] = "connecting",   [STEP_UNLOCKING] = "unlocking",
    [STEP_ERASING] = "erasing",     [STEP_PROGRAMMING] = "programming", [STEP_VERIFYING] = "verifying",
    [STEP_CANCELLING] = "cancelling", [STEP_REBOOTING] = "rebooting", [STEP_CONFIRMING] = "confirming",
    [STEP_DONE] = "done",
    [STEP_FAILED] = "failed",       [STEP_CANCELLED] = "cancelled", [STEP_UP_TO_DATE] = "up-to-date",
    [STEP_TRIAL] = "trial",         [STEP_CONFIRMED] = "confirmed",
};

const char *flash_step_str(enum flash_step s)
{
        return s < _STEP_MAX ? step_names[s] : "failed";
}

int flash_step_from_str(const char *s)
{
        for (int i = 0; i < _STEP_MAX; i++)
                if (strcmp(step_names[i], s) == 0)
                        return i;
        return -EINVAL;
}

static uint64_t now_realtime_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void node_set_state(Node *n, const char *state)
{
        if (n->state && strcmp(n->state, state) == 0)
                return;
        if (strcmp(state, "updating") == 0)
                n->idle_state = n->state;
        n->state = state;
        bus_node_changed(n, "State", NULL);
}

void node_set_error(Node *n, const char *error)
{
        if (!error)
                error = "";
        if (n->last_error && strcmp(n->last_error, error) == 0)
                return;
        char *e = strdup(error);
        if (!e)
                return;
        free(n->last_error);
        n->last_error = e;
        bus_node_changed(n, "LastError", NULL);
}

/* ---- identify: CONNECT, device ID, status block ------------------------------------------------ */

static void id_send(Node *n);

static void id_parse(Node *n)
{
        static const char hex[] = "0123456789abcdef";
        memcpy(n->uid_raw, n->devid + CF_DEVID_UID, CF_UID_LEN);
        for (unsigned i = 0; i < CF_UID_LEN; i++) {
                n->uid[2 * i] = hex[n->uid_raw[i] >> 4];
                n->uid[2 * i + 1] = hex[n->uid_raw[i] & 0xF];
        }
        n->uid[2 * CF_UID_LEN] = 0;
        n->hw_id = cf_le16_get(n->devid + CF_DEVID_HW_ID);
        n->boot_version = cf_le16_get(n->devid + CF_DEVID_BOOT_VERSION);

        cf_image_info_parse(n->status + CF_STATUS_TRAILER, &n->running);
        n->mode = n->status[CF_STATUS_MODE];
        n->last_update = n->status[CF_STATUS_LAST_UPDATE];
        n->running_crc = cf_le32_get(n->status + CF_STATUS_B_CRC);
        n->bank = n->status[CF_STATUS_BANK] <= 2 ? n->status[CF_STATUS_BANK] : 0;
        n->trial = n->status[CF_STATUS_TRIAL];
        n->has_image = n->mode == CF_MODE_APP && cf_image_check_trailer(&n->running) == CF_IMAGE_OK;
        if (n->has_image)
                snprintf(n->version, sizeof n->version, "%u.%u.%u", n->running.ver_major,
                         n->running.ver_minor, n->running.ver_patch);
        else
                n->version[0] = 0;
        if (n->has_image)
                for (unsigned i = 0; i < 32; i++) {
                        n->running_sha[2 * i] = hex[n->running.payload_sha256[i] >> 4];
                        n->running_sha[2 * i + 1] = hex[n->running.payload_sha256[i] & 0xF];
                }
        n->running_sha[n->has_image ? 64 : 0] = 0;
        n->identified = true;
        n->last_seen = now_realtime_us();
        bus_node_changed(n, "HardwareId", "Uid", "BootloaderVersion", "Version", "Release", "Mode",
                         "LastSeen", "LastUpdateStatus", "RunningSha256", "Bank", "Trial", NULL);
        manager_node_changed(n);
}

static void id_reply(Node *n, int r, const struct cf_ccp_dto *d)
{
        if (r < 0) {
                node_done_fn done = n->identify_done;
                n->identify_done = NULL;
                done(n, r);
                return;
        }
        unsigned i = n->id_idx;
        if (i >= 1) {
                /* Each piece is read until two reads in a row agree: a corrupted answer would
                 * otherwise pass for the node's release, hardware id or UID (and so its key). */
                const struct id_piece *pc = &id_pieces[i - 1];
                unsigned len = pc->len;
                if (n->id_pass == 0 || memcmp(n->id_prev, d->data, len) != 0) {
                        if (++n->id_pass > ID_MAX_PASSES) {
                                node_done_fn done = n->identify_done;
                                n->identify_done = NULL;
                                done(n, -EIO);
                                return;
                        }
                        memcpy(n->id_prev, d->data, len);
                        id_send(n);
                        return;
                }
                n->id_pass = 0;
                memcpy((pc->ext == CF_CCP_EXT_DEVICE_ID ? n->devid : n->status) + pc->off, d->data, len);
        }
        n->id_idx++;
        if (n->id_idx < ID_STEPS) {
                id_send(n);
                return;
        }
        id_parse(n);
        node_done_fn done = n->identify_done;
        n->identify_done = NULL;
        done(n, 0);
}

static void id_send(Node *n)
{
        uint8_t cro[8];
        unsigned i = n->id_idx;
        const struct id_piece *pc = i == 0 ? NULL : &id_pieces[i - 1];
        if (!pc)
                cf_ccp_cro_connect(cro, 0, n->nc.station);
        else
                cf_ccp_cro_short_up(cro, 0, pc->len, pc->ext, pc->off);
        int r = ccp_request(n->ccp, cro, 0, pc ? pc->off : UINT32_MAX);
        if (r < 0) {
                node_done_fn done = n->identify_done;
                n->identify_done = NULL;
                done(n, r);
        }
}

int node_identify(Node *n, bool connect, node_done_fn done)
{
        if (ccp_session_pending(n->ccp))
                return -EBUSY;
        n->identify_done = done;
        n->on_reply = id_reply;
        n->id_idx = connect ? 0 : 1;
        n->id_pass = 0;
        id_send(n);
        return 0;
}

/* ---- the flash job ------------------------------------------------------------------------------- */

static void ignore_reply(Node *n, int r, const struct cf_ccp_dto *d)
{
}

/* DISCONNECT(temporary), answer or not: leaves the node's session tidy. */
static void disconnect_quietly(Node *n)
{
        uint8_t cro[8];
        if (ccp_session_pending(n->ccp))
                ccp_abort(n->ccp, true);
        n->on_reply = ignore_reply;
        cf_ccp_cro_disconnect(cro, 0, CF_CCP_DISCONNECT_TEMPORARY, n->nc.station);
        (void) ccp_request(n->ccp, cro, 1, UINT32_MAX);
}

static void set_step(FlashJob *f, enum flash_step s)
{
        f->step = s;
        f->sub = 0;
        manager_flash_changed(f, true, true);
}

static void clear_lost(FlashJob *f)
{
        f->lost = false;
        f->lost_since = 0;
        free(f->lost_why);
        f->lost_why = NULL;
}

/* What a node runs and does, after a job is done with it: the job's result is its own property
 * (LastUpdateResult), so a refused or failed update leaves a node that runs its application "online". */
static const char *node_health(const Node *n, bool lost)
{
        if (lost)
                return "offline";
        if (!n->identified)
                return "unknown";
        return n->mode == CF_MODE_BOOTLOADER ? "recovery" : "online";
}

void node_set_idle(Node *n)
{
        const char *was = n->idle_state;
        if (!was || strcmp(was, "updating") == 0)
                was = node_health(n, false);
        node_set_state(n, was);
}

static void finish_node(FlashJob *f, enum flash_step s)
{
        Node *n = f->node;
        sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
        clear_lost(f);
        group_detach(f);
        if (n)
                group_kick(n->bus); /* a pass may have waited for this node */
        f->step = s;
        if (flash_step_success(s)) {
                free(f->error); /* a wait's reason, over now */
                f->error = NULL;
        }
        if (n && s != STEP_CANCELLED) {
                /* A cancelled node's last update is the one before: nothing was installed. */
                snprintf(n->last_result, sizeof n->last_result, "%s", flash_step_str(s));
                n->last_job = f->job->id;
                n->last_time = now_realtime_us();
                bus_node_changed(n, "LastUpdateResult", "LastUpdateJob", "LastUpdateTime", NULL);
                manager_node_changed(n);
        }
        manager_release_slot(f);
        if (n) {
                n->flash = NULL;
                n->on_reply = ignore_reply;
        }
        manager_flash_changed(f, true, true);
        manager_flash_finished(f);
}

__attribute__((format(printf, 2, 3))) static void fail(FlashJob *f, const char *fmt, ...)
{
        char msg[480];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        free(f->error);
        f->error = strdup(msg);
        Node *n = f->node;
        log_event(CF_MSGID_NODE_FAILED, NULL, LOG_ERR, f->bus, f->ref, f->job->id, "%s", msg);
        if (n) {
                node_set_error(n, msg);
                node_set_state(n, node_health(n, f->lost));
                if (f->step < STEP_REBOOTING && !f->lost)
                        disconnect_quietly(n);
        }
        finish_node(f, STEP_FAILED);
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata);

static int arm_timer(FlashJob *f, uint64_t at)
{
        if (!f->timer) {
                int r =
                    sd_event_add_time(f->job->m->event, &f->timer, CLOCK_MONOTONIC, at, 1000, on_timer, f);
                if (r < 0)
                        return r;
        } else {
                sd_event_source_set_time(f->timer, at);
        }
        return sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT);
}

static uint64_t now_mono(FlashJob *f)
{
        uint64_t now;
        sd_event_now(f->job->m->event, CLOCK_MONOTONIC, &now);
        return now;
}

/* Count a C2 answer (why: the session's message) against the job's bound; at the bound the node
 * fails, and false is returned. */
static bool count_reinit(FlashJob *f, const char *why)
{
        if (f->reinits >= MAX_REINITS) {
                fail(f, "%s; still so after %u re-initialisations of the session, giving up", why,
                     f->reinits);
                return false;
        }
        f->reinits++;
        return true;
}

/* Back to CONNECT after a pause (the timer calls flash_job_begin()). Until DISCONNECT(end) the node
 * runs its old image whatever C holds, so going back to CONNECT, and erasing C again, is always
 * safe: the same restart as when a lost link comes back (manager.c). */
static void restart_after(FlashJob *f, uint64_t delay_us)
{
        f->bytes_done = 0;
        group_detach(f);
        enum flash_step keep = f->step == STEP_CANCELLING ? STEP_CANCELLING : STEP_CONNECTING;
        set_step(f, keep);
        int r = arm_timer(f, now_mono(f) + delay_us);
        if (r < 0)
                fail(f, "%s: cannot restart the session: %s", f->ref, strerror(-r));
}

/* The node answered C2 before DISCONNECT(end): it asks for a new session. */
static void reinitialise(FlashJob *f, const char *why)
{
        if (!count_reinit(f, why))
                return;
        log_node(LOG_WARNING, f->bus, f->ref, f->job->id,
                 "%s; re-initialising the session from CONNECT (%u of %u)", why, f->reinits, MAX_REINITS);
        restart_after(f, REINIT_DELAY_US);
}

/* Something went wrong that a new session may well not meet again (a corrupted frame wrote wrong
 * bytes, a refusal after a confused exchange, a node that lost power): start again from CONNECT,
 * within the job's bound for this node. */
static void restart(FlashJob *f, const char *why)
{
        if (f->restarts >= MAX_RESTARTS) {
                fail(f, "%s; still after %u new sessions, giving up", why, f->restarts);
                return;
        }
        f->restarts++;
        log_node(LOG_WARNING, f->bus, f->ref, f->job->id, "%s; starting a new session (%u of %u)", why,
                 f->restarts, MAX_RESTARTS);
        restart_after(f, REINIT_DELAY_US);
}

static void lost_probe_schedule(FlashJob *f);

/* The node stopped answering: look for it (ccp-master's probes with back-off) for
 * node_lost_timeout_s before it fails as offline. */
static void node_lost(FlashJob *f, const char *why)
{
        Manager *m = f->job->m;
        uint64_t now = now_mono(f);
        group_detach(f);
        if (!f->lost) {
                f->lost = true;
                f->lost_since = now;
                f->backoff = LOST_FIRST_US;
                free(f->lost_why);
                f->lost_why = strdup(why);
                log_node(LOG_WARNING, f->bus, f->ref, f->job->id,
                         "%s; looking for the node for up to %u s", why, m->conf->node_lost_timeout_s);
                node_set_error(f->node, why);
        }
        lost_probe_schedule(f);
}

static void lost_probe_schedule(FlashJob *f)
{
        Manager *m = f->job->m;
        uint64_t now = now_mono(f);
        uint64_t end = f->lost_since + (uint64_t) m->conf->node_lost_timeout_s * 1000000u;
        if (now >= end) {
                fail(f, "%s; no answer since, for %u s (offline)", f->lost_why ? f->lost_why : f->ref,
                     m->conf->node_lost_timeout_s);
                return;
        }
        uint64_t at = now + f->backoff;
        f->backoff = f->backoff * 2 > LOST_MAX_US ? LOST_MAX_US : f->backoff * 2;
        if (arm_timer(f, at < end ? at : end) < 0)
                fail(f, "%s: out of memory", f->ref);
}

static void lost_probe_reply(Node *n, int r, const struct cf_ccp_dto *d)
{
        FlashJob *f = n->flash;
        if (!f)
                return;
        if (r < 0) {
                lost_probe_schedule(f);
                return;
        }
        uint64_t gone = (now_mono(f) - f->lost_since) / 1000u;
        log_node(LOG_NOTICE, f->bus, f->ref, f->job->id, "%s: answers again after %llu ms; new session",
                 f->ref, (unsigned long long) gone);
        clear_lost(f);
        if (f->restarts >= MAX_RESTARTS) {
                fail(f, "%s: lost and found again %u times, giving up", f->ref, f->restarts);
                return;
        }
        f->restarts++;
        flash_job_begin(f);
}

static void flash_reply(Node *n, int r, const struct cf_ccp_dto *d);
static void decided(FlashJob *f);

/* TEST's answer after an exchange lost all its tries mid-transfer. */
static void resync_reply(Node *n, int r, const struct cf_ccp_dto *d)
{
        FlashJob *f = n->flash;
        if (!f)
                return;
        if (r < 0) {
                char why[256];
                snprintf(why, sizeof why, "%s", f->lost_why ? f->lost_why : ccp_session_error(n->ccp));
                node_lost(f, why);
                return;
        }
        /* The node is there, and TEST leaves its session as it was: the transfer goes on from the
         * chunk whose answers were lost, the MTA put back first (ccp-master's read-back tells whether
         * that chunk was written). */
        uint8_t cro[8];
        free(f->lost_why);
        f->lost_why = NULL;
        if (f->sub >= SUB_SCAN) {
                /* The group repair goes on from the slot it was at: GAP says what is still missing
                 * (from the start of a block not yet checked: its bytes are sent again). */
                if (f->verify && f->vblk >= 0) {
                        f->gslot = (uint32_t) f->vblk * CF_BLOCK_SLOTS;
                        f->vblk = -1;
                }
                decided(f); /* no second pass after all: unicast from here */
                f->sub = SUB_GAP;
                n->on_reply = flash_reply;
                cf_ccp_cro_gap(cro, 0, (uint16_t) f->gslot);
                if (ccp_request(n->ccp, cro, 0, f->gslot * CF_GROUP_SLOT_SIZE) < 0)
                        fail(f, "%s: cannot send GAP", f->ref);
                return;
        }
        if (f->verify && f->vblk >= 0) {
                /* The block not yet checked is sent again from its start. */
                f->run = f->vrun;
                f->off = f->voff;
                f->bytes_done = f->vbytes;
                f->vblk = -1;
        }
        const struct cf_run *run = &fj_runs(f)[f->run];
        f->sub = 1;
        n->on_reply = flash_reply;
        cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, run->start + f->off);
        int k = ccp_request(n->ccp, cro, 0, run->start + f->off);
        if (k < 0)
                fail(f, "%s: cannot send SET_MTA: %s", f->ref, strerror(-k));
}

/* An exchange of the transfer lost all its tries: a node that lost power would have to start again,
 * but one whose answers were merely unlucky still holds its session, and a new session would throw
 * the transfer so far away. TEST (unlike CONNECT) asks without ending the session. */
static void resync(FlashJob *f, const char *why)
{
        Node *n = f->node;
        uint8_t cro[8];
        f->resyncs++;
        free(f->lost_why);
        f->lost_why = strdup(why);
        log_node(LOG_NOTICE, f->bus, f->ref, f->job->id, "%s; asking the node with TEST", why);
        n->on_reply = resync_reply;
        cf_ccp_cro_test(cro, 0, n->nc.station);
        if (ccp_request(n->ccp, cro, 0, UINT32_MAX) < 0)
                node_lost(f, why);
}

static void fail_ccp(FlashJob *f, int r, const struct cf_ccp_dto *d)
{
        const char *e = ccp_session_error(f->node->ccp);
        char buf[256];
        if (!*e) {
                snprintf(buf, sizeof buf, "%s: %s", f->ref, strerror(-r));
                e = buf;
        }
        if (f->step >= STEP_REBOOTING) {
                fail(f, "%s", e);
                return;
        }
        if (r == -ECONNRESET && d) {
                reinitialise(f, e);
                return;
        }
        /* Once per stretch of progress: TEST is answered by a node without a session too (one that
         * rebooted), and then the resumed transfer gets no answer either. */
        if (r == -ETIMEDOUT && f->step == STEP_PROGRAMMING && !f->lost && f->resyncs < MAX_RESYNCS &&
            (f->resyncs == 0 || f->bytes_done != f->resync_mark)) {
                f->resync_mark = f->bytes_done;
                resync(f, e);
                return;
        }
        if (r == -ETIMEDOUT) {
                node_lost(f, e);
                return;
        }
        /* A node that dropped its session (-ECONNRESET without an answer), a refusal or an answer
         * that never made sense: a new session. */
        restart(f, e);
}

static void request_check(FlashJob *f, const uint8_t cro[8], unsigned tries, uint32_t addr,
                          ccp_plausible_fn check);
static void on_group_reply(FlashJob *f, int r, const struct cf_ccp_dto *d);
static uint16_t group_tag(const FlashJob *f);
static void start_unlock(FlashJob *f);
static void program_next(FlashJob *f);
static void start_reboot_wait(FlashJob *f, uint64_t first_us);

static void request_check(FlashJob *f, const uint8_t cro[8], unsigned tries, uint32_t addr,
                          ccp_plausible_fn check)
{
        f->node->on_reply = flash_reply;
        int r = ccp_request_check(f->node->ccp, cro, tries, addr, check);
        if (r < 0)
                fail(f, "%s: cannot send %s: %s", f->ref, cf_ccp_cmd_name(cro[0]), strerror(-r));
}

static void request(FlashJob *f, const uint8_t cro[8], unsigned tries, uint32_t addr)
{
        request_check(f, cro, tries, addr, NULL);
}

/* The node runs the job's image: same trailer byte for byte (version, release, payload length and
 * SHA-256, build time) and the same CRC at the end of B. The version alone proves nothing (v2 code
 * packed under v1's version), so the "already up to date" decision and the confirmation after the
 * reboot both compare what identifies the bytes. */
bool node_runs_image(const Node *n, const struct cf_image_info *info, const uint8_t *image)
{
        uint8_t a[CF_TRAILER_SIZE], b[CF_TRAILER_SIZE];
        if (!n->has_image || n->mode != CF_MODE_APP)
                return false;
        cf_image_info_pack(&n->running, a);
        cf_image_info_pack(info, b);
        return memcmp(a, b, sizeof a) == 0 && n->running_crc == cf_le32_get(image + CF_CRC_OFFSET);
}

static bool runs_image(const Node *n, const Job *j)
{
        if (j->dual)
                return dual_runs_job_image(n, j);
        return node_runs_image(n, &j->info, j->image);
}

static void identified(Node *n, int r)
{
        FlashJob *f = n->flash;
        Job *j = f->job;

        if (r == -EIO) {
                restart(f, "the node's device ID and status block read differently each time");
                return;
        }
        if (r < 0) {
                fail_ccp(f, r, NULL);
                return;
        }
        node_set_state(n, "updating");
        if (f->step == STEP_CANCELLING) {
                /* Whatever it runs: C must not keep this job's image. */
                start_unlock(f);
                return;
        }
        if (n->hw_id != j->info.hw_id) {
                fail(f, "%s: hardware id 0x%04X does not match the image's 0x%04X (nothing erased)", f->ref,
                     n->hw_id, j->info.hw_id);
                return;
        }
        if (!dual_choose_link(f))
                return; /* failed: a node of the other layout */
        if (!j->force && runs_image(n, j) && j->dual && n->trial == CF_TRIAL_PENDING) {
                /* It runs this image on trial already (a job before was stopped there): nothing to
                 * send, the trial decides. */
                dual_trial_begin(f);
                return;
        }
        if (!j->force && runs_image(n, j)) {
                log_node(LOG_INFO, f->bus, f->ref, j->id, "%s: already runs %s: up to date", f->ref,
                         j->version);
                disconnect_quietly(n);
                node_set_error(n, NULL);
                node_set_state(n, "online");
                finish_node(f, STEP_UP_TO_DATE);
                return;
        }
        if (n->has_image && j->info.release < n->running.release) {
                fail(f,
                     "%s: image release %u is below the running release %u (anti-rollback; nothing erased)",
                     f->ref, j->info.release, n->running.release);
                return;
        }
        start_unlock(f);
}

static void start_unlock(FlashJob *f)
{
        uint8_t cro[8];
        if (f->step != STEP_CANCELLING)
                set_step(f, STEP_UNLOCKING);
        f->sub = 0;
        f->unlock_tries = 0;
        cf_ccp_cro_get_seed(cro, 0, CF_CCP_RES_PGM);
        request_check(f, cro, 0, UINT32_MAX, NULL);
}

/* BLOCK_MODE's answer repeats the block size asked for. */
static bool block_mode_plausible(const uint8_t cro[8], const struct cf_ccp_dto *d)
{
        return d->data[0] == cro[4] && d->data[1] == cro[5];
}

static void erase_after_mode(FlashJob *f);

static void start_erase(FlashJob *f)
{
        uint8_t cro[8];
        if (f->step == STEP_CANCELLING) {
                f->sub = 10;
                cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, CANCEL_ERASE_OFF);
                request(f, cro, 0, CANCEL_ERASE_OFF);
                return;
        }
        set_step(f, STEP_ERASING);
        f->verify = false;
        f->vblk = -1;
        f->vfails = 0;
        f->gpasses = 0;
        f->gdeciding = false;
        if (!f->no_verify) {
                /* First of all, so that a rejoined member takes its group frames checked too. */
                f->sub = SUB_BLKMODE;
                cf_ccp_cro_block_mode(cro, 0, CF_BLOCK_SIZE);
                request_check(f, cro, 0, UINT32_MAX, block_mode_plausible);
                return;
        }
        erase_after_mode(f);
}

/* After BLOCK_MODE (or without it): rejoin a group, or erase C. */
static void erase_after_mode(FlashJob *f)
{
        uint8_t cro[8];
        f->sub = 0;
        if (f->joined && !f->no_group && group_attach(f)) {
                /* A member before a restart (of canfleetd, of the session): if it still is, its C
                 * holds what it recorded, and GAP completes it without an erase. */
                f->sub = SUB_REJOIN;
                cf_ccp_cro_group_join(cro, 0, (uint16_t) f->node->bus->conf->group_id, group_tag(f));
                request(f, cro, 0, UINT32_MAX);
                return;
        }
        cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, 0);
        request(f, cro, 0, 0);
}

static void start_verify(FlashJob *f)
{
        f->chk_reasked = false;
        uint8_t cro[8];
        set_step(f, STEP_VERIFYING);
        cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, 0);
        request(f, cro, 0, 0);
}

static void send_disconnect(FlashJob *f)
{
        uint8_t cro[8];
        cf_ccp_cro_disconnect(cro, 0, CF_CCP_DISCONNECT_END, f->node->nc.station);
        request(f, cro, 0, UINT32_MAX);
}

static void start_disconnect(FlashJob *f)
{
        /* DISCONNECT(end) ends the node's membership, whatever its check of C says. */
        f->joined = false;
        group_detach(f);
        /* Saved before the frame leaves: from here on the node may install the image at any time. A
         * save that failed (full disk) holds the frame until a save succeeds (flash_job_saved), so that
         * a crash meanwhile never finds a stale step for a node that installed. */
        set_step(f, STEP_REBOOTING);
        if (!manager_flash_saved(f)) {
                f->held = true;
                log_node(LOG_WARNING, f->bus, f->ref, f->job->id,
                         "%s: DISCONNECT waits until the job's state can be saved", f->ref);
                return;
        }
        send_disconnect(f);
}

void flash_job_saved(FlashJob *f)
{
        if (f->node && node_is_serial(f->node)) {
                serial_job_saved(f);
                return;
        }
        if (!f->held)
                return;
        f->held = false;
        if (f->step == STEP_REBOOTING && f->node && f->node->flash == f)
                send_disconnect(f);
}

/* The next PROGRAM's size: 6 bytes, less at the end of a run, and in block mode never across the
 * end of a block (the node takes a write inside one block only). */
static uint32_t chunk_len(const FlashJob *f)
{
        const struct cf_run *run = &fj_runs(f)[f->run];
        uint32_t addr = run->start + f->off, left = run->len - f->off;
        uint32_t k = left >= 6 ? 6 : left;
        if (f->verify) {
                uint32_t end = (addr / CF_BLOCK_SIZE + 1u) * CF_BLOCK_SIZE;
                if (addr + k > end)
                        k = end - addr;
        }
        return k;
}

/* BLOCK_CHECK of f->vblk, with the check value of the image's bytes there. */
static void send_block_check(FlashJob *f, unsigned sub)
{
        uint32_t k = (uint32_t) f->vblk, off = k * CF_BLOCK_SIZE;
        uint8_t cro[8];
        f->sub = sub;
        cf_ccp_cro_block_check(cro, 0, cf_block_crc(off, fj_image(f) + off, cf_block_len(k)));
        request(f, cro, 0, off);
}

/* BLOCK_CHECK answered OK for the block we sent (its number is in the answer)? */
static bool block_checked(const FlashJob *f, int r, const struct cf_ccp_dto *d)
{
        return r == 0 && f->vblk >= 0 && (uint32_t) (d->data[0] << 8 | d->data[1]) == (uint32_t) f->vblk;
}

/* The node refused the block (its bytes, or the check value, were corrupted on the way), or answered
 * for another one: it is sent again, up to MAX_BLOCK_REFUSALS times in a row; then a new session.
 * False when the session restarts. */
static bool block_refused(FlashJob *f, int r)
{
        uint32_t k = (uint32_t) f->vblk;
        if (++f->vfails > MAX_BLOCK_REFUSALS) {
                char why[200];
                snprintf(why, sizeof why, "%s: block %u at 0x%05X refused by its check %u times in a row",
                         f->ref, k, k * CF_BLOCK_SIZE, f->vfails - 1u);
                f->vfails = 0;
                restart(f, why);
                return false;
        }
        log_node(LOG_DEBUG, f->bus, f->ref, f->job->id, "%s: block %u at 0x%05X %s: sent again", f->ref, k,
                 k * CF_BLOCK_SIZE, r == 0 ? "confirmed as another block" : "did not check out");
        return true;
}

/* Plain path: the answer to BLOCK_CHECK. */
static void on_check_reply(FlashJob *f, int r, const struct cf_ccp_dto *d)
{
        if (block_checked(f, r, d)) {
                f->vblk = -1;
                f->vfails = 0;
                f->sub = f->vsub;
                program_next(f);
                return;
        }
        if (r < 0 && !(r == -EPROTO && d)) {
                fail_ccp(f, r, d);
                return;
        }
        if (!block_refused(f, r))
                return;
        f->run = f->vrun;
        f->off = f->voff;
        f->bytes_done = f->vbytes;
        f->vblk = -1;
        f->sub = 0;
        manager_flash_changed(f, false, false);
        program_next(f);
}

static void program_next(FlashJob *f)
{
        Node *n = f->node;
        uint8_t cro[8];

        if (f->run >= fj_n_runs(f)) {
                if (f->verify && f->vblk >= 0) {
                        f->vsub = f->sub;
                        send_block_check(f, SUB_CHECK);
                        return;
                }
                f->sub = 3;
                n->on_reply = flash_reply;
                int r = ccp_program(n->ccp, CF_CCP_EXT_STAGING, 0, NULL, 0);
                if (r < 0)
                        fail(f, "%s: cannot send PROGRAM: %s", f->ref, strerror(-r));
                return;
        }
        const struct cf_run *run = &fj_runs(f)[f->run];
        uint32_t addr = run->start + f->off;
        if (f->verify && f->vblk >= 0 && addr / CF_BLOCK_SIZE != (uint32_t) f->vblk) {
                /* The block the node holds in RAM is complete: it is checked before the next. */
                f->vsub = f->sub;
                send_block_check(f, SUB_CHECK);
                return;
        }
        if (f->sub == 0) {
                f->sub = 1;
                cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, addr);
                request(f, cro, 0, addr);
                return;
        }
        if (f->verify && f->vblk < 0) {
                /* Where this block starts, for sending it again when it is refused. */
                f->vblk = (int32_t) (addr / CF_BLOCK_SIZE);
                f->vrun = f->run;
                f->voff = f->off;
                f->vbytes = f->bytes_done;
        }
        uint8_t k = (uint8_t) chunk_len(f);
        f->sub = 2;
        n->on_reply = flash_reply;
        if (addr + k >= CF_IMAGE_AREA_SIZE && !f->staged) {
                /* The CRC word goes out: from now on C may be valid, and a cancel must erase it. */
                f->staged = true;
                manager_flash_changed(f, true, false);
        }
        int r = ccp_program(n->ccp, CF_CCP_EXT_STAGING, addr, fj_image(f) + addr, k);
        if (r < 0)
                fail(f, "%s: cannot send PROGRAM: %s", f->ref, strerror(-r));
}

/* The key to a node's seed: the demo firmware's echo, or HMAC of the node's secret, itself derived from
 * the fleet key and the node's UID (docs/design.md §3). */
void node_key(const Node *n, const uint8_t seed[CF_SEED_LEN], uint8_t key[CF_KEY_LEN])
{
        if (n->nc.seedkey_echo) {
                cf_ccp_key_echo(seed, key);
                return;
        }
        uint8_t secret[CF_NODE_SECRET_LEN];
        cf_node_secret(n->m->fleet_key, n->uid_raw, secret);
        cf_ccp_key(secret, seed, key);
        cf_memzero(secret, sizeof secret);
}

/* GET_SEED's answer: protection status 1 with a seed, or 0 (already unlocked) with nothing. */
static bool seed_plausible(const uint8_t cro[8], const struct cf_ccp_dto *d)
{
        static const uint8_t zero[4];
        return d->data[0] == 1 || (d->data[0] == 0 && memcmp(&d->data[1], zero, 4) == 0);
}

static void unlock_again(FlashJob *f, const char *why)
{
        uint8_t cro[8];
        if (++f->unlock_tries >= f->job->m->conf->retries + 1) {
                restart(f, why);
                return;
        }
        f->sub = 0;
        cf_ccp_cro_get_seed(cro, 0, CF_CCP_RES_PGM);
        request_check(f, cro, 0, UINT32_MAX, seed_plausible);
}

/* GET_SEED refused: the node locked it for 10 s after three wrong keys (docs/design.md §3) — ours
 * when corrupted frames changed seeds or keys, or another master's. Wait it out and start again from
 * CONNECT, twice at most; the refused keys keep counting across the wait. */
static void wait_lockout(FlashJob *f)
{
        if (f->lockout_waits >= MAX_LOCKOUT_WAITS) {
                fail(f, "%s; still locked after waiting out the node's lockout %u times (another master "
                        "sending wrong keys?)",
                     ccp_session_error(f->node->ccp), f->lockout_waits);
                return;
        }
        f->lockout_waits++;
        log_node(LOG_NOTICE, f->bus, f->ref, f->job->id,
                 "%s; the node locks GET_SEED for 10 s after three wrong keys: trying again in %u s",
                 ccp_session_error(f->node->ccp), (unsigned) (LOCKOUT_WAIT_US / 1000000u));
        restart_after(f, LOCKOUT_WAIT_US);
}

static void on_unlock_reply(FlashJob *f, int r, const struct cf_ccp_dto *d)
{
        Node *n = f->node;
        uint8_t cro[8];

        if (f->sub == 0) { /* GET_SEED */
                if (r < 0) {
                        if (r == -EPROTO && d && d->err == CF_CCP_ERR_ACCESS_DENIED) {
                                wait_lockout(f);
                                return;
                        }
                        fail_ccp(f, r, d);
                        return;
                }
                if (d->data[0] == 0) { /* PGM not protected (still unlocked from an answer we lost) */
                        start_erase(f);
                        return;
                }
                uint8_t key[CF_KEY_LEN];
                node_key(n, &d->data[1], key);
                cf_ccp_cro_unlock(cro, 0, key);
                cf_memzero(key, sizeof key);
                f->sub = 1;
                /* One try: a seed is good for one UNLOCK, so a lost answer means a new GET_SEED. */
                request(f, cro, 1, UINT32_MAX);
                return;
        }
        /* UNLOCK */
        if (r == -ETIMEDOUT) {
                unlock_again(f, ccp_session_error(n->ccp));
                return;
        }
        if (r == -EPROTO && d && d->err == CF_CCP_ERR_ACCESS_LOCKED) {
                /* A wrong key, or a seed or key that a corrupted frame changed (an SLCAN line flips
                 * bits before the adapter computes the CAN CRC). Only a key refused again and again,
                 * each from a fresh seed, is a wrong fleet key. */
                if (++f->keys_refused >= MAX_KEYS_REFUSED) {
                        fail(f,
                             "%s: UNLOCK refused %u keys in a row, each computed from a fresh seed: the fleet "
                             "key does not match this node's secret (check fleet_key_file, or the node's "
                             "seedkey setting)",
                             f->ref, f->keys_refused);
                        return;
                }
                log_node(LOG_NOTICE, f->bus, f->ref, f->job->id, "%s; asking for a new seed (%u of %u keys refused)",
                         ccp_session_error(n->ccp), f->keys_refused, MAX_KEYS_REFUSED);
                f->sub = 0;
                cf_ccp_cro_get_seed(cro, 0, CF_CCP_RES_PGM);
                request_check(f, cro, 0, UINT32_MAX, seed_plausible);
                return;
        }
        if (r == -EPROTO && d && d->err == CF_CCP_ERR_ACCESS_DENIED) {
                /* The node holds no fresh seed: our GET_SEED or its answer was not what we think. */
                unlock_again(f, ccp_session_error(n->ccp));
                return;
        }
        if (r < 0) {
                fail_ccp(f, r, d);
                return;
        }
        if (!(d->data[0] & CF_CCP_RES_PGM)) {
                /* Implausible after an OK: GET_SEED tells (0 when unlocked after all). */
                char why[160];
                snprintf(why, sizeof why, "%s: UNLOCK answered but programming is still locked (privileges 0x%02X)",
                         f->ref, d->data[0]);
                unlock_again(f, why);
                return;
        }
        start_erase(f);
}

/* The checksum of an erased area, as BUILD_CHKSUM of C computes it. */
static uint32_t erased_crc(void)
{
        static uint32_t crc;
        static bool known;
        if (!known) {
                uint8_t ff[4096];
                memset(ff, 0xFF, sizeof ff);
                crc = CF_CRC32_INIT;
                for (uint32_t off = 0; off < CF_IMAGE_AREA_SIZE; off += sizeof ff)
                        crc = cf_crc32_le(crc, ff, sizeof ff);
                known = true;
        }
        return crc;
}

/* The cancel of a staged image: its last sector is erased. */
static void on_cancel_erase_reply(FlashJob *f, int r, const struct cf_ccp_dto *d)
{
        uint8_t cro[8];
        if (r < 0) {
                fail_ccp(f, r, d);
                return;
        }
        if (f->sub == 10) {
                f->sub = 11;
                cf_ccp_cro_clear_memory(cro, 0, CANCEL_ERASE_SIZE);
                request(f, cro, 0, CANCEL_ERASE_OFF);
                return;
        }
        f->staged = false;
        log_node(LOG_NOTICE, f->bus, f->ref, f->job->id, "%s: cancelled; the staged image is erased", f->ref);
        disconnect_quietly(f->node);
        node_set_state(f->node, "online");
        finish_node(f, STEP_CANCELLED);
}

/* ---- the group path (group-job.h, docs/design.md §7) ---------------------------------------------- */

/* The tag a member joins with: the image's CRC, low 16 bits. A restarted canfleetd rejoins with the
 * same one; a node that joined for another image answers ACCESS_DENIED. */
static uint16_t group_tag(const FlashJob *f)
{
        return (uint16_t) (fj_image_crc(f) & 0xFFFFu);
}

/* Slots that are all 0xFF are never sent (erased flash holds them), and GAP reports them as
 * missing: the repair skips them. */
static bool slot_has_data(const FlashJob *f, uint32_t slot)
{
        uint8_t fr[8];
        return slot < CF_GROUP_SLOTS && cf_ccp_group_frame(fr, fj_image(f), (uint16_t) slot) == 1;
}

static uint32_t next_data_slot(const FlashJob *f, uint32_t from, uint32_t end)
{
        while (from < end && !slot_has_data(f, from))
                from++;
        return from;
}

static uint8_t slot_len(uint32_t slot)
{
        uint32_t off = slot * CF_GROUP_SLOT_SIZE;
        return (uint8_t) (CF_GROUP_AREA_SIZE - off < CF_GROUP_SLOT_SIZE ? CF_GROUP_AREA_SIZE - off
                                                                         : CF_GROUP_SLOT_SIZE);
}

static void send_gap(FlashJob *f, unsigned sub, uint32_t from)
{
        uint8_t cro[8];
        f->sub = sub;
        f->gap_from = from;
        f->gap_once = false;
        cf_ccp_cro_gap(cro, 0, (uint16_t) from);
        request(f, cro, 0, from * CF_GROUP_SLOT_SIZE);
}

/* The node refused GROUP_JOIN (an older node, or one in a state the rules refuse): plain CCP for it,
 * in this job. */
static void group_fallback(FlashJob *f, const char *why)
{
        log_node(LOG_NOTICE, f->bus, f->ref, f->job->id, "%s; plain CCP for this node", why);
        f->no_group = true;
        f->joined = false;
        group_detach(f);
        group_kick(f->node->bus);
        manager_flash_changed(f, true, false);
}

static void repair_send(FlashJob *f)
{
        Node *n = f->node;
        if (f->verify && f->vblk < 0)
                f->vblk = (int32_t) (f->gslot / CF_BLOCK_SLOTS);
        f->sub = SUB_PROGRAM;
        n->on_reply = flash_reply;
        uint32_t addr = f->gslot * CF_GROUP_SLOT_SIZE;
        int r = ccp_program(n->ccp, CF_CCP_EXT_STAGING, addr, fj_image(f) + addr, slot_len(f->gslot));
        if (r < 0)
                fail(f, "%s: cannot send PROGRAM: %s", f->ref, strerror(-r));
}

/* Nothing missing any more: the last block sent is checked, then the whole of C. */
static void repair_end(FlashJob *f)
{
        if (f->verify && f->vblk >= 0) {
                f->vnext = CF_GROUP_SLOTS;
                send_block_check(f, SUB_RCHECK);
                return;
        }
        start_verify(f);
}

/* The next slot of the reported run: consecutive ones follow the node's MTA, after a skipped one
 * SET_MTA first; at the run's end, GAP from there. */
static void repair_next(FlashJob *f, uint32_t slot, bool mta_follows)
{
        uint8_t cro[8];
        uint32_t s = next_data_slot(f, slot, f->gend);
        if (s >= f->gend) {
                f->gslot = f->gend;
                if (f->gend >= CF_GROUP_SLOTS)
                        repair_end(f);
                else
                        send_gap(f, SUB_GAP, f->gend); /* may go on in the same block */
                return;
        }
        if (f->verify && f->vblk >= 0 && s / CF_BLOCK_SLOTS != (uint32_t) f->vblk) {
                f->vnext = s;
                f->vfollow = mta_follows && s == slot;
                send_block_check(f, SUB_RCHECK);
                return;
        }
        f->gslot = s;
        if (mta_follows && s == slot) {
                repair_send(f);
                return;
        }
        f->sub = SUB_MTA;
        cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, s * CF_GROUP_SLOT_SIZE);
        request(f, cro, 0, s * CF_GROUP_SLOT_SIZE);
}

/* A joined node: wait for a pass from `from` on; when none can be had, repair from GAP at once. */
static void group_wait_pass(FlashJob *f, uint32_t from)
{
        if (f->step != STEP_PROGRAMMING)
                set_step(f, STEP_PROGRAMMING);
        if (from >= CF_GROUP_SLOTS || group_enlist(f, (uint16_t) from) < 0)
                flash_job_group_done(f);
}

/* Slots a member in block mode holds once complete: every slot of each block with data (a checked
 * block records all its slots). */
static uint32_t slots_expected(const FlashJob *f)
{
        uint32_t n = 0;
        uint8_t fr[8];
        for (uint32_t k = 0; k < CF_BLOCKS; k++)
                if (cf_ccp_group_check_frame(fr, fj_image(f), (uint16_t) k) == 1)
                        n += (cf_block_len(k) + CF_GROUP_SLOT_SIZE - 1u) / CF_GROUP_SLOT_SIZE;
        return n;
}

/* The pass it rode is over and its decision made: the bus's next pass may start without it. */
static void decided(FlashJob *f)
{
        if (!f->gdeciding)
                return;
        f->gdeciding = false;
        if (f->node)
                group_kick(f->node->bus);
}

void flash_job_group_done(FlashJob *f)
{
        if (!f->node || f->node->flash != f || f->step != STEP_PROGRAMMING)
                return;
        f->gslot = 0;
        if (f->verify && f->gpasses < GROUP_PASSES) {
                /* How much is missing: a repeated GROUP_JOIN answers the slots received. */
                uint8_t cro[8];
                f->gdeciding = true;
                f->sub = SUB_COUNT;
                cf_ccp_cro_group_join(cro, 0, (uint16_t) f->node->bus->conf->group_id, group_tag(f));
                request(f, cro, 0, UINT32_MAX);
                return;
        }
        send_gap(f, SUB_GAP, 0);
}

/* A member whose membership is gone (GAP refused): it reset or erased C; a new session erases. */
static void group_membership_lost(FlashJob *f, const char *what)
{
        char why[200];
        snprintf(why, sizeof why, "%s: %s refused: the node is no longer a member of the group (it reset)",
                 f->ref, what);
        f->joined = false;
        restart(f, why);
}

static void on_group_reply(FlashJob *f, int r, const struct cf_ccp_dto *d)
{
        Node *n = f->node;
        Job *j = f->job;
        uint8_t cro[8];
        bool refused = r == -EPROTO && d;
        char why[256];

        switch (f->sub) {
        case SUB_REJOIN:
                if (r == 0) {
                        log_node(LOG_NOTICE, f->bus, f->ref, j->id,
                                 "%s: still a member of the group (%u slots received): completed from GAP, "
                                 "not erased again",
                                 f->ref, cf_ccp_dto_join_received(d));
                        f->staged = true;
                        set_step(f, STEP_PROGRAMMING);
                        send_gap(f, SUB_SCAN, 0);
                        return;
                }
                if (refused) {
                        /* ACCESS_DENIED: it reset (or took another image) and must be erased; any
                         * other refusal: it cannot join at all. Either way, from CLEAR_MEMORY. */
                        if (d->err == CF_CCP_ERR_ACCESS_DENIED) {
                                log_node(LOG_NOTICE, f->bus, f->ref, j->id,
                                         "%s: no longer a member of the group: erased and sent again", f->ref);
                                f->joined = false;
                                manager_flash_changed(f, true, false);
                        } else {
                                snprintf(why, sizeof why, "%s", ccp_session_error(n->ccp));
                                group_fallback(f, why);
                        }
                        f->sub = 0;
                        cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, 0);
                        request(f, cro, 0, 0);
                        return;
                }
                fail_ccp(f, r, d);
                return;
        case SUB_JOIN:
                if (r == 0) {
                        f->joined = true;
                        /* From here group frames may carry the CRC word: a cancel must erase C. */
                        f->staged = true;
                        f->bytes_done = 0;
                        group_wait_pass(f, 0); /* saves "group": a restart rejoins */
                        return;
                }
                if (refused) {
                        snprintf(why, sizeof why, "%s", ccp_session_error(n->ccp));
                        group_fallback(f, why);
                        /* The plain path checks C's erase, as it always did. */
                        f->sub = 2;
                        cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, 0);
                        request(f, cro, 0, 0);
                        return;
                }
                fail_ccp(f, r, d);
                return;
        case SUB_COUNT: {
                if (refused && d->err == CF_CCP_ERR_ACCESS_DENIED) {
                        decided(f);
                        group_membership_lost(f, "GROUP_JOIN");
                        return;
                }
                if (r < 0) {
                        decided(f);
                        fail_ccp(f, r, d);
                        return;
                }
                uint32_t want = slots_expected(f), have = cf_ccp_dto_join_received(d);
                if (have < want && (want - have) * REPAIR_PASS_SHARE >= want) {
                        log_node(LOG_INFO, f->bus, f->ref, j->id,
                                 "%s: %u of %u slots missing after the pass: a second pass, not unicast", f->ref,
                                 want - have, want);
                        send_gap(f, SUB_PASSGAP, 0);
                        return;
                }
                decided(f);
                send_gap(f, SUB_GAP, 0);
                return;
        }
        case SUB_SCAN:
        case SUB_GAP:
        case SUB_PASSGAP:
                if (refused && d->err == CF_CCP_ERR_ACCESS_DENIED) {
                        decided(f);
                        group_membership_lost(f, "GAP");
                        return;
                }
                if (r < 0) {
                        decided(f);
                        fail_ccp(f, r, d);
                        return;
                }
                uint16_t first = cf_ccp_dto_gap_first(d), run = cf_ccp_dto_gap_run(d);
                uint32_t seen = (uint32_t) first << 16 | run;
                if (!f->gap_once || f->gap_seen != seen) {
                        /* Acted upon only when two answers in a row agree: a bit flipped on the line in
                         * `first` would skip the slots in between, and only BUILD_CHKSUM would tell. */
                        unsigned sub = f->sub;
                        send_gap(f, sub, f->gap_from);
                        f->gap_once = true;
                        f->gap_seen = seen;
                        return;
                }
                f->gap_once = false;
                if (f->sub == SUB_PASSGAP) {
                        decided(f);
                        if (first == CF_GROUP_SLOT_NONE || first >= CF_GROUP_SLOTS)
                                send_gap(f, SUB_GAP, 0);
                        else
                                group_wait_pass(f, first);
                        return;
                }
                if (first == CF_GROUP_SLOT_NONE || first >= CF_GROUP_SLOTS) {
                        if (f->sub == SUB_SCAN)
                                flash_job_group_done(f);
                        else
                                repair_end(f);
                        return;
                }
                uint32_t end = (uint32_t) first + (run ? run : 1u);
                if (end > CF_GROUP_SLOTS)
                        end = CF_GROUP_SLOTS;
                if (f->sub == SUB_SCAN) {
                        unsigned data = 0;
                        for (uint32_t s = first; s < end && data < GROUP_PASS_MIN_RUN; s++)
                                data += slot_has_data(f, s);
                        if (data >= GROUP_PASS_MIN_RUN)
                                group_wait_pass(f, first);
                        else if (end >= CF_GROUP_SLOTS)
                                flash_job_group_done(f);
                        else
                                send_gap(f, SUB_SCAN, end);
                        return;
                }
                f->gend = end;
                repair_next(f, first, false);
                return;
        case SUB_MTA:
                if (r < 0) {
                        fail_ccp(f, r, d);
                        return;
                }
                repair_send(f);
                return;
        case SUB_RCHECK:
                if (block_checked(f, r, d)) {
                        f->vblk = -1;
                        f->vfails = 0;
                        if (f->vnext >= CF_GROUP_SLOTS)
                                start_verify(f);
                        else
                                repair_next(f, f->vnext, f->vfollow);
                        return;
                }
                if (r < 0 && !refused) {
                        fail_ccp(f, r, d);
                        return;
                }
                if (!block_refused(f, r))
                        return;
                /* Nothing of it was recorded: GAP reports the whole block again. */
                uint32_t bfirst = (uint32_t) f->vblk * CF_BLOCK_SLOTS;
                f->vblk = -1;
                send_gap(f, SUB_GAP, bfirst);
                return;
        case SUB_PROGRAM:
                if (r < 0) {
                        fail_ccp(f, r, d);
                        return;
                }
                f->bytes_done += slot_len(f->gslot);
                if (f->bytes_done > f->bytes_total)
                        f->bytes_done = f->bytes_total;
                manager_flash_changed(f, false, false);
                repair_next(f, f->gslot + 1, true);
                return;
        default:
                return;
        }
}

/* BLOCK_MODE's answer: OK, the node checks every block before it programs it; unknown, an older node:
 * unchecked PROGRAMs and group frames for the rest of the job, as before (BUILD_CHKSUM at the end
 * still catches damage); any other refusal (locked: the session is not what we think) restarts. */
static void on_block_mode_reply(FlashJob *f, int r, const struct cf_ccp_dto *d)
{
        if (r == 0) {
                f->verify = true;
        } else if (r == -EPROTO && d &&
                   (d->err == CF_CCP_ERR_UNKNOWN_CMD || d->err == CF_CCP_ERR_OUT_OF_RANGE)) {
                /* What a node answers that has no ACTION_SERVICE, or not this service (ccp.h). */
                log_node(LOG_NOTICE, f->bus, f->ref, f->job->id,
                         "%s; programming without block checks for this node", ccp_session_error(f->node->ccp));
                f->no_verify = true;
        } else {
                fail_ccp(f, r, d);
                return;
        }
        erase_after_mode(f);
}

static void flash_reply(Node *n, int r, const struct cf_ccp_dto *d)
{
        FlashJob *f = n->flash;
        Job *j;
        uint8_t cro[8];

        if (!f)
                return;
        j = f->job;
        if (r >= 0)
                n->last_seen = now_realtime_us();
        if (f->step == STEP_ERASING && f->sub == SUB_BLKMODE) {
                on_block_mode_reply(f, r, d);
                return;
        }
        if (f->step == STEP_PROGRAMMING && f->sub == SUB_CHECK) {
                on_check_reply(f, r, d);
                return;
        }
        if ((f->step == STEP_ERASING && f->sub >= SUB_REJOIN) || (f->step == STEP_PROGRAMMING && f->sub >= SUB_SCAN)) {
                on_group_reply(f, r, d);
                return;
        }
        if (r < 0 && (f->step == STEP_ERASING || f->step == STEP_PROGRAMMING || f->step == STEP_VERIFYING)) {
                fail_ccp(f, r, d);
                return;
        }

        switch (f->step) {
        case STEP_UNLOCKING:
                on_unlock_reply(f, r, d);
                return;
        case STEP_CANCELLING:
                if (f->sub < 10)
                        on_unlock_reply(f, r, d);
                else
                        on_cancel_erase_reply(f, r, d);
                return;
        case STEP_ERASING:
                if (f->sub == 0) {
                        f->sub = 1;
                        f->joined = false; /* CLEAR_MEMORY ends any membership */
                        cf_ccp_cro_clear_memory(cro, 0, CF_IMAGE_AREA_SIZE);
                        request(f, cro, 0, 0);
                        return;
                }
                if (f->sub == 1 && !f->no_group && group_attach(f)) {
                        /* Joined right after the erase, in the same connection (the node's rule); C's
                         * erased state is then proven by the final checksum, not checked here. */
                        f->sub = SUB_JOIN;
                        cf_ccp_cro_group_join(cro, 0, (uint16_t) n->bus->conf->group_id, group_tag(f));
                        request(f, cro, 0, UINT32_MAX);
                        return;
                }
                /* C is checked to be erased: a CLEAR_MEMORY whose size a corrupted frame changed
                 * erases less, and the bytes we then program onto old ones only show at the end. */
                if (f->sub == 1) {
                        f->sub = 2;
                        cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, 0);
                        request(f, cro, 0, 0);
                        return;
                }
                if (f->sub == 2) {
                        f->sub = 3;
                        cf_ccp_cro_build_chksum(cro, 0, CF_IMAGE_AREA_SIZE);
                        request(f, cro, 0, 0);
                        return;
                }
                if (cf_ccp_dto_chksum(d) != erased_crc()) {
                        char why[160];
                        snprintf(why, sizeof why, "%s: C is not erased after CLEAR_MEMORY (checksum 0x%08X)",
                                 f->ref, cf_ccp_dto_chksum(d));
                        restart(f, why);
                        return;
                }
                if (f->staged) {
                        f->staged = false; /* C holds nothing of ours any more */
                        manager_flash_changed(f, true, false);
                }
                set_step(f, STEP_PROGRAMMING);
                f->run = 0;
                f->off = 0;
                program_next(f);
                return;
        case STEP_PROGRAMMING:
                if (f->sub == 1) {
                        program_next(f);
                        return;
                }
                if (f->sub == 2) {
                        const struct cf_run *run = &fj_runs(f)[f->run];
                        uint32_t k = chunk_len(f);
                        f->off += k;
                        f->bytes_done += k;
                        manager_flash_changed(f, false, false);
                        if (f->off >= run->len) {
                                f->run++;
                                f->off = 0;
                                f->sub = 0;
                        }
                        program_next(f);
                        return;
                }
                f->chk_reasked = false;
                start_verify(f);
                return;
        case STEP_VERIFYING:
                if (f->sub == 0) {
                        f->sub = 1;
                        cf_ccp_cro_build_chksum(cro, 0, CF_IMAGE_AREA_SIZE);
                        request(f, cro, 0, 0);
                        return;
                }
                if (cf_ccp_dto_chksum(d) != fj_image_crc(f)) {
                        /* A corrupted group frame shows only here: the node erases again. */
                        if (f->chk_reasked && f->joined) {
                                f->joined = false;
                                manager_flash_changed(f, true, false);
                        }
                        if (!f->chk_reasked) {
                                /* The answer may be what is wrong: ask again once. */
                                f->chk_reasked = true;
                                f->sub = 0;
                                cf_ccp_cro_set_mta(cro, 0, 0, CF_CCP_EXT_STAGING, 0);
                                request(f, cro, 0, 0);
                                return;
                        }
                        char why[160];
                        snprintf(why, sizeof why, "%s: checksum of the staged image is 0x%08X, expected 0x%08X",
                                 f->ref, cf_ccp_dto_chksum(d), fj_image_crc(f));
                        restart(f, why);
                        return;
                }
                start_disconnect(f);
                return;
        case STEP_REBOOTING:
                if (r == -EPROTO && d) {
                        /* DISCONNECT(end) refused (twice): the node did not take it and runs its old
                         * image, C not valid in its eyes; staging again is safe. */
                        char why[256];
                        snprintf(why, sizeof why, "%s", ccp_session_error(n->ccp));
                        restart(f, why);
                        return;
                }
                if (r == -EPROTO) {
                        fail_ccp(f, r, d);
                        return;
                }
                if (r == -ECONNRESET && d) {
                        /* Refused, as a C2: the node most likely did not take the end of the session and
                         * runs its old image, but it may yet reset. The confirmation tells: the new image,
                         * done; the old one, staged again from CONNECT, as after a resume. */
                        const char *e = ccp_session_error(n->ccp);
                        if (!count_reinit(f, e))
                                return;
                        log_node(LOG_WARNING, f->bus, f->ref, j->id,
                                 "%s; waiting to see what the node runs, then a new session (%u of %u)", e,
                                 f->reinits, MAX_REINITS);
                        f->resumed = true;
                } else if (r < 0) {
                        log_node(LOG_WARNING, f->bus, f->ref, j->id,
                                 "%s: no answer to DISCONNECT, waiting for the node to come back", f->ref);
                }
                /* OK, or no answer: the node may have reset before answering; the confirmation tells. */
                manager_release_slot(f);
                f->deadline = 0;
                start_reboot_wait(f, REBOOT_FIRST_US);
                return;
        default:
                return;
        }
}

/* ---- after DISCONNECT: wait for the node, then read what it runs -------------------------------------- */

static void confirm_identified(Node *n, int r);

static void reboot_connect_reply(Node *n, int r, const struct cf_ccp_dto *d)
{
        FlashJob *f = n->flash;
        if (!f)
                return;
        if (r < 0) {
                start_reboot_wait(f, 0);
                return;
        }
        set_step(f, STEP_CONFIRMING);
        if (node_identify(n, false, confirm_identified) < 0)
                start_reboot_wait(f, 0);
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        FlashJob *f = userdata;
        Node *n = f->node;
        uint8_t cro[8];

        if (f->lost) {
                if (ccp_session_pending(n->ccp))
                        ccp_abort(n->ccp, true);
                /* One try with the configured reply time-out (a loaded gateway's answers are late,
                 * not lost); BUSY is polled by the session (a node erasing). */
                n->on_reply = lost_probe_reply;
                cf_ccp_cro_connect(cro, 0, n->nc.station);
                if (ccp_request(n->ccp, cro, 1, UINT32_MAX) < 0)
                        lost_probe_schedule(f);
                return 0;
        }
        if (f->step == STEP_TRIAL) {
                dual_trial_poll(f);
                return 0;
        }
        if (f->step < STEP_REBOOTING) {
                /* The pause before a re-initialised session is over. */
                flash_job_begin(f);
                return 0;
        }
        if (ccp_session_pending(n->ccp))
                ccp_abort(n->ccp, true);
        n->on_reply = reboot_connect_reply;
        cf_ccp_cro_connect(cro, 0, n->nc.station);
        if (ccp_probe(n->ccp, cro) < 0)
                start_reboot_wait(f, 0);
        return 0;
}

/* first_us: delay of the first attempt (0: the next back-off step). */
static void start_reboot_wait(FlashJob *f, uint64_t first_us)
{
        Manager *m = f->job->m;
        uint64_t now;
        sd_event_now(m->event, CLOCK_MONOTONIC, &now);

        if (f->deadline == 0) {
                f->deadline = now + (uint64_t) m->conf->reboot_timeout_ms * 1000u;
                f->backoff = first_us ? first_us : REBOOT_FIRST_US;
                /* Every wait has a reason: the progress says what this one is. */
                char why[128]; /* shown beside the node's name: it does not name the node again */
                snprintf(why, sizeof why, "waiting for the node to come back from its reset and install (up to %u s)",
                         (unsigned) (m->conf->reboot_timeout_ms / 1000u));
                free(f->error);
                f->error = strdup(why);
        } else {
                f->backoff = f->backoff * 3 / 2;
                if (f->backoff > REBOOT_BACKOFF_US)
                        f->backoff = REBOOT_BACKOFF_US;
        }
        if (f->step != STEP_REBOOTING)
                set_step(f, STEP_REBOOTING);
        if (now >= f->deadline) {
                fail(f, "%s: did not come back within %u ms after DISCONNECT", f->ref,
                     m->conf->reboot_timeout_ms);
                return;
        }
        uint64_t at = now + (first_us ? first_us : f->backoff);
        if (at > f->deadline)
                at = f->deadline;
        if (arm_timer(f, at) < 0)
                fail(f, "%s: out of memory", f->ref);
}

static void stage_again(FlashJob *f, const char *why)
{
        Node *n = f->node;
        Job *j = f->job;
        if (j->cancel) {
                log_node(LOG_NOTICE, f->bus, f->ref, j->id, "%s: still runs %s, cancelled", f->ref,
                         n->version[0] ? n->version : "no image");
                /* C may still hold the image (a DISCONNECT that was not taken): erase it, in a
                 * session of its own when the scheduler gives one. */
                disconnect_quietly(n);
                manager_release_slot(f);
                f->staged = true;
                f->resumed = false;
                f->deadline = 0;
                set_step(f, STEP_CANCELLING);
                manager_schedule(n->m);
                return;
        }
        if (f->restarts >= MAX_RESTARTS) {
                fail(f, "%s; still after %u new sessions, giving up", why, f->restarts);
                return;
        }
        f->restarts++;
        log_node(LOG_NOTICE, f->bus, f->ref, j->id, "%s; staging the image again (%u of %u)", why, f->restarts,
                 MAX_RESTARTS);
        disconnect_quietly(n);
        manager_release_slot(f);
        f->resumed = false;
        f->bytes_done = 0;
        f->deadline = 0;
        f->staged = true; /* C may still hold the image until CLEAR_MEMORY */
        set_step(f, STEP_QUEUED);
        manager_schedule(n->m);
}

static void confirm_identified(Node *n, int r)
{
        FlashJob *f = n->flash;
        Job *j = f->job;

        if (r < 0) {
                start_reboot_wait(f, 0);
                return;
        }
        if (j->dual && dual_confirm_identified(f))
                return;
        if (runs_image(n, j)) {
                log_event(CF_MSGID_NODE_UPDATED, NULL, LOG_INFO, f->bus, f->ref, j->id, "%s: now runs %s (release %u)", f->ref, j->version,
                         j->info.release);
                disconnect_quietly(n);
                node_set_error(n, NULL);
                node_set_state(n, "online");
                f->bytes_done = f->bytes_total;
                f->staged = false;
                finish_node(f, STEP_DONE);
                return;
        }
        if (n->last_update == CF_UPDATE_GAVE_UP) {
                fail(f,
                     "%s: the bootloader gave up installing %s after %u failed tries; the node runs %s (%s)",
                     f->ref, j->version, n->status[CF_STATUS_INSTALL_FAILURES],
                     n->version[0] ? n->version : "no valid image",
                     n->mode == CF_MODE_APP ? "application" : "bootloader recovery mode, CCP only");
                return;
        }
        if (n->mode == CF_MODE_APP &&
            (f->resumed || n->last_update == CF_UPDATE_NONE || n->last_update == CF_UPDATE_INSTALLED ||
             (j->dual && n->last_update == CF_UPDATE_SWAPPED))) {
                /* Resumed after a crash between saving "rebooting" and the DISCONNECT leaving, a C2
                 * answer to the DISCONNECT, or a DISCONNECT the node did not take as the end of the
                 * session (a corrupted frame): it still runs its old image and did not reject ours,
                 * so nothing is lost by staging again from the start, unless the job was cancelled. */
                char why[160];
                snprintf(why, sizeof why, "%s: still runs %s after DISCONNECT", f->ref,
                         n->version[0] ? n->version : "no image");
                stage_again(f, why);
                return;
        }
        static const char *const results[] = {"none", "installed", "rejected", "verify failed", "gave up",
                                              "swapped"};
        fail(f, "%s: runs %s after the reboot, not %s (mode %s, last update: %s)", f->ref,
             n->version[0] ? n->version : "no valid image", j->version,
             n->mode == CF_MODE_APP          ? "application"
             : n->mode == CF_MODE_BOOTLOADER ? "bootloader"
                                             : "unknown",
             n->last_update < 6 ? results[n->last_update] : "unknown");
}

/* ---- entry points -------------------------------------------------------------------------------- */

void flash_job_begin(FlashJob *f)
{
        if (f->node && node_is_serial(f->node)) {
                serial_job_begin(f); /* the node protocol of docs/design.md §8 */
                return;
        }
        Node *n = f->node;
        if (!n) {
                fail(f, "%s: node is not configured any more", f->ref);
                return;
        }
        n->flash = f;
        /* Also a restart (link back, re-initialisation): a pending pause is over. */
        if (f->timer)
                sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
        clear_lost(f);
        group_detach(f);
        f->bytes_done = 0;
        f->unlock_tries = 0;
        f->deadline = 0;
        node_set_state(n, "updating");
        if (f->step == STEP_CANCELLING)
                manager_flash_changed(f, true, true);
        else
                set_step(f, STEP_CONNECTING);
        if (ccp_session_pending(n->ccp))
                ccp_abort(n->ccp, true);
        int r = node_identify(n, true, identified);
        if (r < 0)
                fail(f, "%s: cannot start: %s", f->ref, strerror(-r));
}

void flash_job_resume_confirm(FlashJob *f)
{
        if (f->node && node_is_serial(f->node)) {
                serial_job_resume_confirm(f);
                return;
        }
        Node *n = f->node;
        if (!n) {
                fail(f, "%s: node is not configured any more", f->ref);
                return;
        }
        n->flash = f;
        f->resumed = true;
        f->deadline = 0;
        node_set_state(n, "updating");
        start_reboot_wait(f, 1);
}

void flash_job_cancel(FlashJob *f)
{
        if (f->node && node_is_serial(f->node)) {
                serial_job_cancel(f);
                return;
        }
        if (flash_step_final(f->step))
                return;
        if (f->step >= STEP_REBOOTING)
                return; /* the node installs the image anyway: keep confirming */
        if (f->step == STEP_CANCELLING)
                return; /* already at it */
        Node *n = f->node;
        group_detach(f);
        if (f->staged && n) {
                /* C may hold the complete image: erase it before the node counts as cancelled. */
                f->joined = false; /* the erase ends its membership */
                log_node(LOG_NOTICE, f->bus, f->ref, f->job->id,
                         "%s: cancel at step %s: erasing the staged image first", f->ref, flash_step_str(f->step));
                if (ccp_session_pending(n->ccp))
                        ccp_abort(n->ccp, true);
                if (f->timer)
                        sd_event_source_set_enabled(f->timer, SD_EVENT_OFF);
                bool had_slot = f->slot;
                clear_lost(f);
                set_step(f, STEP_CANCELLING);
                if (had_slot)
                        flash_job_begin(f);
                else
                        manager_schedule(n->m);
                return;
        }
        if (n && f->step != STEP_QUEUED) {
                disconnect_quietly(n);
                node_set_state(n, node_health(n, f->lost));
        } else if (n)
                node_set_idle(n); /* never talked to: what it was before this job */
        log_node(LOG_NOTICE, f->bus, f->ref, f->job->id, "%s: cancelled at step %s", f->ref,
                 flash_step_str(f->step));
        finish_node(f, STEP_CANCELLED);
}

void flash_job_free(FlashJob *f)
{
        if (f->node && node_is_serial(f->node)) {
                f->timer = sd_event_source_disable_unref(f->timer);
                serial_job_free(f);
                return;
        }
        group_detach(f);
        if (f->node && f->node->flash == f) {
                f->node->flash = NULL;
                if (ccp_session_pending(f->node->ccp))
                        ccp_abort(f->node->ccp, true);
        }
        f->timer = sd_event_source_disable_unref(f->timer);
        free(f->error);
        f->error = NULL;
        free(f->lost_why);
        f->lost_why = NULL;
}

/* ---- for the dual-bank steps (dual-bank.c) ------------------------------------------------------ */

void flash_job_set_step(FlashJob *f, enum flash_step s)
{
        set_step(f, s);
}

void flash_job_finish(FlashJob *f, enum flash_step s)
{
        finish_node(f, s);
}

void flash_job_fail(FlashJob *f, const char *fmt, ...)
{
        char msg[480];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fail(f, "%s", msg);
}

int flash_job_arm_timer(FlashJob *f, uint64_t at)
{
        return arm_timer(f, at);
}

void node_disconnect_quietly(Node *n)
{
        disconnect_quietly(n);
}
