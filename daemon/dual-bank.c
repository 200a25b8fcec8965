/* Dual-bank nodes in a job: the link for the inactive bank, the trial after the reboot, confirmation
 * or revert (docs/design.md §9). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/crc32.h"
#include "canfleet/node-status.h"
#include "canfleet/seedkey.h"
#include "canfleet/sha256.h"
#include "dual-bank.h"
#include "flash-job.h"
#include "log.h"
#include "manager.h"

/* How often a node on trial is looked at (a whole identify, about 40 exchanges: a few ms of bus). */
#define TRIAL_POLL_US 500000ULL

static const struct cf_image_info *link_info(const Job *j, unsigned bank)
{
        return bank == 2 ? &j->info2 : &j->info;
}

int dual_job_set_links(Job *j, size_t size, char **error)
{
        if (size != 2u * CF_IMAGE_AREA_SIZE)
                return 0;
        const uint8_t *img2 = j->image + CF_IMAGE_AREA_SIZE;
        int s = cf_image_check_full_at(img2, &j->info2, cf_f7_app_addr(2));
        if (s == CF_IMAGE_OK && (j->info2.hw_id != j->info.hw_id || j->info2.release != j->info.release ||
                                 cf_image_version_cmp(&j->info2, &j->info) != 0))
                s = CF_IMAGE_BAD_LAYOUT;
        if (s != CF_IMAGE_OK) {
                if (error && asprintf(error, "not a valid link for bank 2 of the same application: %s",
                                      cf_image_status_str(s)) < 0)
                        *error = NULL;
                return -EBADMSG;
        }
        j->dual = true;
        j->image2_crc = cf_crc32_le(CF_CRC32_INIT, img2, CF_IMAGE_AREA_SIZE);
        int r = cf_plan_runs(img2, CF_IMAGE_AREA_SIZE, &j->runs2, &j->n_runs2);
        if (r < 0)
                return r;
        j->plan_bytes2 = cf_plan_bytes(j->runs2, j->n_runs2);
        return 0;
}

bool dual_node_runs(const Node *n, const struct cf_image_info *info, const uint8_t *image, bool dual)
{
        if (!dual)
                return node_runs_image(n, info, image);
        if (n->bank != 1 && n->bank != 2)
                return false;
        struct cf_image_info i;
        const uint8_t *link = image + (n->bank == 2 ? CF_IMAGE_AREA_SIZE : 0u);
        cf_image_info_parse(link + CF_TRAILER_OFFSET, &i);
        return node_runs_image(n, &i, link);
}

bool dual_runs_job_image(const Node *n, const Job *j)
{
        if (n->bank != 1 && n->bank != 2)
                return false;
        return node_runs_image(n, link_info(j, n->bank), job_link_image(j, n->bank));
}

const char *dual_layout_mismatch(const Node *n, bool dual)
{
        if (!n->identified)
                return NULL;
        if (dual && n->bank == 0)
                return "single-bank node";
        if (!dual && n->bank != 0)
                return "dual-bank node";
        return NULL;
}

bool dual_choose_link(FlashJob *f)
{
        Node *n = f->node;
        Job *j = f->job;
        if (!j->dual) {
                if (n->bank != 0) {
                        flash_job_fail(
                            f,
                            "%s is a dual-bank node (runs from bank %u): it takes a dual-bank bundle "
                            "with both links of the application, not one image (nothing erased)",
                            f->ref, n->bank);
                        return false;
                }
                return true;
        }
        if (n->bank == 0) {
                flash_job_fail(
                    f,
                    "%s is a single-bank node (copy layout): a dual-bank bundle is for dual-bank nodes "
                    "(nothing erased)",
                    f->ref);
                return false;
        }
        if (n->mode == CF_MODE_APP && n->trial == CF_TRIAL_PENDING && !dual_runs_job_image(n, j)) {
                /* Its previous bank is the way back of that trial: the node refuses to erase it, and
                 * so does canfleetd. */
                flash_job_fail(
                    f,
                    "%s runs %s from bank %u on trial, not confirmed yet: its other bank is the way "
                    "back and is not written until the trial ends (confirmed, or reverted by a "
                    "reset; nothing erased)",
                    f->ref, n->version[0] ? n->version : "an image", n->bank);
                return false;
        }
        /* the other bank: the one the staging extension maps to */
        f->link = n->bank == 1 ? 2 : 1;
        uint64_t total = f->link == 2 ? j->plan_bytes2 : j->plan_bytes;
        if (f->bytes_total != total) {
                f->bytes_total = total;
                manager_flash_changed(f, false, false);
        }
        return true;
}

static void trial_identified(Node *n, int r);

static uint64_t now_mono(const FlashJob *f)
{
        uint64_t now;
        sd_event_now(f->job->m->event, CLOCK_MONOTONIC, &now);
        return now;
}

/* The next look at the node, or the end of the trial. */
static void trial_schedule(FlashJob *f, uint64_t delay)
{
        uint64_t now = now_mono(f);
        if (now >= f->deadline) {
                Node *n = f->node;
                flash_job_fail(
                    f,
                    "%s: trial not confirmed within %u s: the node runs %s from bank %u unconfirmed%s "
                    "and goes back to its previous bank at its next reset",
                    f->ref, (unsigned) f->job->m->conf->trial_timeout_s, f->job->version, n ? n->bank : 0,
                    f->job->m->conf->confirm_trial_ms ? " (canfleetd's CONFIRM was not taken)" : "");
                return;
        }
        uint64_t at = now + delay;
        if (at > f->deadline)
                at = f->deadline;
        if (flash_job_arm_timer(f, at) < 0)
                flash_job_fail(f, "%s: out of memory", f->ref);
}

void dual_trial_poll(FlashJob *f)
{
        Node *n = f->node;
        if (ccp_session_pending(n->ccp))
                ccp_abort(n->ccp, true);
        if (node_identify(n, true, trial_identified) < 0)
                trial_schedule(f, TRIAL_POLL_US);
}

/* ---- the gateway's confirmation (confirm_trial_ms): GET_SEED, UNLOCK, ACTION_SERVICE CONFIRM ---------- */

enum { CONFIRM_SEED = 40, CONFIRM_UNLOCK, CONFIRM_SERVICE };

static void confirm_reply(Node *n, int r, const struct cf_ccp_dto *d);

static void confirm_send(FlashJob *f, const uint8_t cro[8], unsigned tries)
{
        f->node->on_reply = confirm_reply;
        if (ccp_request(f->node->ccp, cro, tries, UINT32_MAX) < 0)
                trial_schedule(f, TRIAL_POLL_US);
}

static void confirm_service(FlashJob *f)
{
        uint8_t cro[8];
        f->sub = CONFIRM_SERVICE;
        cf_ccp_cro_confirm(cro, 0);
        confirm_send(f, cro, 0);
}

static void confirm_reply(Node *n, int r, const struct cf_ccp_dto *d)
{
        FlashJob *f = n->flash;
        uint8_t cro[8];
        if (!f || f->step != STEP_TRIAL)
                return;
        if (r < 0) {
                /* Not this time (a lost answer, a busy flash): the next look tries again, until the trial's
                 * end. */
                log_node(LOG_NOTICE, f->bus, f->ref, f->job->id,
                         "%s: confirming the trial: %s; trying again", f->ref, ccp_session_error(n->ccp));
                trial_schedule(f, TRIAL_POLL_US);
                return;
        }
        switch (f->sub) {
        case CONFIRM_SEED:
                if (d->data[0] == 0) { /* PGM not protected */
                        confirm_service(f);
                        return;
                }
                uint8_t key[CF_KEY_LEN];
                node_key(n, &d->data[1], key);
                cf_ccp_cro_unlock(cro, 0, key);
                cf_memzero(key, sizeof key);
                f->sub = CONFIRM_UNLOCK;
                confirm_send(f, cro, 1); /* a seed is good for one UNLOCK */
                return;
        case CONFIRM_UNLOCK:
                confirm_service(f);
                return;
        case CONFIRM_SERVICE:
                f->confirm_sent = true;
                log_node(LOG_INFO, f->bus, f->ref, f->job->id, "%s: canfleetd confirmed its trial of %s",
                         f->ref, f->job->version);
                trial_schedule(f, 0); /* look again: the node must now say confirmed */
                return;
        default:
                return;
        }
}

static void confirm_start(FlashJob *f)
{
        uint8_t cro[8];
        f->sub = CONFIRM_SEED;
        cf_ccp_cro_get_seed(cro, 0, CF_CCP_RES_PGM);
        confirm_send(f, cro, 0);
}

/* ---- the trial --------------------------------------------------------------------------------- */

void dual_trial_begin(FlashJob *f)
{
        Manager *m = f->job->m;
        Node *n = f->node;
        if (f->step != STEP_TRIAL) {
                f->deadline = now_mono(f) + (uint64_t) m->conf->trial_timeout_s * 1000000u;
                f->confirm_sent = false;
                f->trial_seen = 0;
                char why[160];
                snprintf(why, sizeof why, "%s runs %s from bank %u on trial: waiting for %s (up to %u s)",
                         f->ref, f->job->version, n->bank,
                         m->conf->confirm_trial_ms ? "a confirmation" : "its application to confirm",
                         (unsigned) m->conf->trial_timeout_s);
                free(f->error);
                f->error = strdup(why);
                log_node(LOG_INFO, f->bus, f->ref, f->job->id, "%s", why);
                flash_job_set_step(f, STEP_TRIAL);
        }
        /* canfleetd's own checks before it confirms (confirm_trial_ms): the node has run this image on
         * trial, in its application, for that long by our clock without a reset in between. */
        uint64_t now = now_mono(f);
        uint32_t boots = cf_le32_get(n->status + CF_STATUS_BOOT_COUNT);
        if (!f->trial_seen || boots != f->trial_boots) {
                f->trial_seen = now;
                f->trial_boots = boots;
        }
        uint64_t settle = (uint64_t) m->conf->confirm_trial_ms * 1000u;
        if (settle && !f->confirm_sent) {
                if (now - f->trial_seen >= settle) {
                        confirm_start(f);
                        return;
                }
                uint64_t left = settle - (now - f->trial_seen);
                trial_schedule(f, left < TRIAL_POLL_US ? left : TRIAL_POLL_US);
                return;
        }
        trial_schedule(f, TRIAL_POLL_US);
}

static void fail_reverted(FlashJob *f)
{
        Node *n = f->node;
        flash_job_fail(
            f,
            "%s: reverted: %s was not confirmed before the node reset; it runs %s from bank %u again "
            "(its previous image)",
            f->ref, f->job->version, n->version[0] ? n->version : "no valid image", n->bank);
        /* What the node did with this update, for `canfleetctl nodes`: not merely failed. */
        snprintf(n->last_result, sizeof n->last_result, "reverted");
        bus_node_changed(n, "LastUpdateResult", NULL);
        manager_node_changed(n);
}

bool dual_confirm_identified(FlashJob *f)
{
        Node *n = f->node;
        Job *j = f->job;
        if (dual_runs_job_image(n, j)) {
                if (n->trial == CF_TRIAL_PENDING) {
                        dual_trial_begin(f);
                        return true;
                }
                /* CONFIRMED (or NONE: nothing left to confirm, the image runs) */
                log_event(CF_MSGID_NODE_UPDATED, NULL, LOG_INFO, f->bus, f->ref, j->id,
                          "%s: now runs %s (release %u) from bank %u, confirmed", f->ref, j->version,
                          j->info.release, n->bank);
                node_disconnect_quietly(n);
                node_set_error(n, NULL);
                node_set_state(n, "online");
                f->bytes_done = f->bytes_total;
                f->staged = false;
                flash_job_finish(f, STEP_CONFIRMED);
                return true;
        }
        if (n->mode == CF_MODE_APP && n->trial == CF_TRIAL_REVERTED) {
                fail_reverted(f);
                return true;
        }
        if (f->step == STEP_TRIAL) {
                /* It ran the new bank on trial and now runs something else without a revert. */
                flash_job_fail(f, "%s: runs %s from bank %u during its trial of %s (trial state %u)", f->ref,
                               n->version[0] ? n->version : "no valid image", n->bank, j->version, n->trial);
                return true;
        }
        return false;
}

static void trial_identified(Node *n, int r)
{
        FlashJob *f = n->flash;
        if (!f || f->step != STEP_TRIAL)
                return;
        if (r < 0) {
                /* Silent: resetting (a revert, or a crash), or a lost frame; looked for until the trial's
                 * end. */
                trial_schedule(f, TRIAL_POLL_US);
                return;
        }
        if (!dual_confirm_identified(f))
                trial_schedule(f, TRIAL_POLL_US);
}
