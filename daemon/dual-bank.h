/* Dual-bank nodes in a job (docs/design.md §9): which link of the application a node is sent, and its
 * trial after the reboot until it is confirmed or reverted. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "manager.h"

/*
 * A dual-bank job holds both links of one application (j->dual; j->image is bank 1's link followed by
 * bank 2's). Identify reads which bank a node runs (status byte 77): the job sends the link for the
 * other bank (f->link), into the staging extension, which a dual-bank node maps to its inactive bank.
 * A group pass carries one link: like nodes are those of one job that run from the same bank.
 *
 * After DISCONNECT(end) the node validates the inactive bank, flips its boot bank and boots the new
 * application on trial (status byte 78 CF_TRIAL_PENDING). The job's node then goes:
 *   rebooting → confirming (it runs the job's link for its new bank) → trial → confirmed
 * trial lasts until the node reports CF_TRIAL_CONFIRMED: its application confirms itself once
 * healthy, or canfleetd sends CCP CONFIRM (0xCF10) when the configuration says "confirm_trial_ms": N,
 * after its own checks: the node has run the job's image (trailer and CRC) in its application, on
 * trial, for N ms by canfleetd's clock, with the same boot count at every look (no reset). canfleetd
 * looks every TRIAL_POLL_US (a fresh identify); a node that does not answer meanwhile (resetting) is
 * looked for again until trial_timeout_s. A node back on its previous bank with CF_TRIAL_REVERTED
 * fails with "reverted: …" and its LastUpdateResult is "reverted". That REVERTED is always this job's:
 * the trial byte speaks of the inactive bank's journal, whose records name the bank's image by its CRC
 * and which the node erases with the bank when the job's CLEAR_MEMORY begins (the byte reads "none"
 * from then on: tests/nodesim/test-dual-bank.py), and
 * a new trial needs the STAGED record the node writes only when it takes DISCONNECT(end). So a node
 * that shows REVERTED after this job's DISCONNECT took it and tried this job's image; one that did not
 * take it shows no REVERTED and is staged again. (A node that says which image a revert was of — the
 * reverted area's CRC in the status block — would let the gateway check it too.) One still pending at
 * trial_timeout_s fails as not confirmed (it reverts at its next reset). The trial step is saved; a
 * restarted canfleetd resumes it as it resumes "rebooting" (looks at the node, then waits again, the
 * full trial_timeout_s from then).
 */

/* A job's image for a link: the job's one image (link 0 or 1), or of a dual-bank job the bank-2 link. */
static inline const uint8_t *job_link_image(const Job *j, unsigned link)
{
        return j->image + (link == 2 ? CF_IMAGE_AREA_SIZE : 0u);
}

/* What a node of the job is sent: the job's image, or of a dual-bank job the link f->link. */
static inline const uint8_t *fj_image(const FlashJob *f)
{
        return job_link_image(f->job, f->link);
}
static inline uint32_t fj_image_crc(const FlashJob *f)
{
        return f->link == 2 ? f->job->image2_crc : f->job->image_crc;
}
static inline const struct cf_run *fj_runs(const FlashJob *f)
{
        return f->link == 2 ? f->job->runs2 : f->job->runs;
}
static inline size_t fj_n_runs(const FlashJob *f)
{
        return f->link == 2 ? f->job->n_runs2 : f->job->n_runs;
}

/* A job's image of size bytes (one area image, or two links): for two, check the bank-2 link (the first is
 * the caller's, cf_image_check_full() as for any image) and fill info2, image2_crc and its plan.
 * -EBADMSG (with *error) when it is not a link for bank 2 of the same application. */
int dual_job_set_links(Job *j, size_t size, char **error);

/* Whether n, identified, runs the image of a job (one area image, or with dual the two links): a dual-bank
 * node the link for the bank it runs from. */
bool dual_node_runs(const Node *n, const struct cf_image_info *info, const uint8_t *image, bool dual);
bool dual_runs_job_image(const Node *n, const Job *j);

/* Why an identified node cannot take the image (dual: a dual-bank bundle): "single-bank node",
 * "dual-bank node"; NULL when it can. */
const char *dual_layout_mismatch(const Node *n, bool dual);

/* After identify: a node of the other layout fails (nothing erased) and false is returned; else f->link
 * and bytes_total are set for a dual-bank job. */
bool dual_choose_link(FlashJob *f);
/* After the reboot's identify of a dual-bank job's node: confirmed, on trial, or reverted are handled
 * (true); false leaves the rest to flash-job.c (old image without a trial: staged again or failed). */
bool dual_confirm_identified(FlashJob *f);
/* The node runs the job's link on trial: step trial, confirm when configured, look until trial_timeout_s. */
void dual_trial_begin(FlashJob *f);
/* The trial's timer: look at the node again. */
void dual_trial_poll(FlashJob *f);
