/* The per-node update state machine (connect, identify, unlock, erase, program, verify, reset, confirm) and
 * node identification. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "canfleet/ccp.h"
#include "canfleet/image.h"
#include "canfleet/seedkey.h"

typedef struct Node Node;
typedef struct FlashJob FlashJob;

/*
 * A node of a job goes through these steps (the Job.Progress "step" strings):
 *   queued → connecting (CONNECT, device ID and status block; hardware id / same image / rollback
 *   checks, nothing erased yet) → unlocking (GET_SEED/UNLOCK) → erasing (SET_MTA ext 3, CLEAR_MEMORY
 *   of C) → programming (the planned runs, flash-plan.h, then PROGRAM 0) → verifying (BUILD_CHKSUM
 *   against the image's CRC) → rebooting (saved, then DISCONNECT end of session; CONNECT with
 *   back-off until reboot_timeout_ms) → confirming (the running trailer must be the image's) → done.
 * A dual-bank node (dual-bank.h) is sent the link for its inactive bank and, after confirming, runs
 * the new bank on trial: → trial (until its application, or canfleetd with confirm_trial_ms, confirms;
 * at most trial_timeout_s) → confirmed, its success in place of done; a node back on its previous
 * bank (trial reverted) fails with "reverted: …".
 * failed / cancelled end it otherwise. Every step change is appended to the job's log (job-store.h)
 * before it acts; "rebooting" is also on the disk (fdatasync) before DISCONNECT(end) leaves, and while
 * the job cannot be saved (full disk) that DISCONNECT waits (manager_flash_saved, flash_job_saved).
 *
 * A node that stops answering before DISCONNECT(end) (all tries of an exchange lost, or it answers a
 * CONNECT while it should be erasing: it lost power) is looked for with CONNECTs, with back-off, for
 * node_lost_timeout_s; when it answers, its session starts again from CONNECT (identify: it may have
 * rebooted), and the image is staged again from CLEAR_MEMORY. A staged image that does not check out,
 * a refusal, a node that runs its old image after DISCONNECT although it did not reject C: the session
 * starts again too. Restarts are bounded (MAX_RESTARTS in flash-job.c); facts fail the node at once
 * (hardware id, anti-rollback, a wrong key twice).
 *
 * Cancelling: before any CLEAR_MEMORY the node is simply left. Once C may hold the complete image
 * (the PROGRAM of its CRC word was sent, or a restarted canfleetd found the node past erasing) a
 * cancel erases the last sector of C first (step "cancelling": CONNECT, UNLOCK, CLEAR_MEMORY), so that
 * no power cycle can install what was cancelled; saved, so that a restart finishes it. In the job
 * file such a node's step is never saved below "programming" until C was erased again.
 */
enum flash_step {
        STEP_DOWNLOADING, /* the job's bundle is being downloaded (StartUpdateUrl): no CAN traffic yet */
        STEP_QUEUED,
        STEP_CONNECTING, /* CONNECT and identify */
        STEP_UNLOCKING,
        STEP_ERASING,
        STEP_PROGRAMMING,
        STEP_VERIFYING,
        STEP_CANCELLING, /* erasing a staged image before the node is reported cancelled */
        STEP_REBOOTING, /* DISCONNECT(end) sent: past the point where a cancel stops the install */
        STEP_CONFIRMING,
        STEP_TRIAL, /* a dual-bank node runs the new bank on trial: waiting for its confirmation */
        STEP_DONE,
        STEP_FAILED,
        STEP_CANCELLED,
        STEP_UP_TO_DATE, /* the node already ran the job's image: nothing sent */
        STEP_CONFIRMED,  /* a dual-bank node runs the new bank and confirmed it: its "done" */
        _STEP_MAX,
};
const char *flash_step_str(enum flash_step s);
int flash_step_from_str(const char *s);
/* The node is known to run exactly image (info its trailer): the "already up to date" rule of a job
 * without force, also used by a dry run (PlanUpdate). */
bool node_runs_image(const Node *n, const struct cf_image_info *info, const uint8_t *image);
static inline bool flash_step_final(enum flash_step s)
{
        return s >= STEP_DONE;
}
/* The node runs the job's image: done, up to date, or (dual-bank) confirmed. */
static inline bool flash_step_success(enum flash_step s)
{
        return s == STEP_DONE || s == STEP_UP_TO_DATE || s == STEP_CONFIRMED;
}

typedef void (*node_reply_fn)(Node *n, int r, const struct cf_ccp_dto *d);
typedef void (*node_done_fn)(Node *n, int r);

/* Per-node CCP procedures (flash-job.c). */
int node_identify(Node *n, bool connect, node_done_fn done);
void node_set_error(Node *n, const char *error);
/* The UNLOCK key to the seed a node gave. */
void node_key(const Node *n, const uint8_t seed[CF_SEED_LEN], uint8_t key[CF_KEY_LEN]);
void node_set_state(Node *n, const char *state);
/* A node a job lets go of without having talked to it: the state it had before the job took it. */
void node_set_idle(Node *n);
void flash_job_begin(FlashJob *f); /* the scheduler gave it a slot */
void flash_job_resume_confirm(FlashJob *f);
void flash_job_cancel(FlashJob *f);
void flash_job_saved(FlashJob *f); /* the job's state is saved again: a held step goes on */
void flash_job_free(FlashJob *f);

/* For the dual-bank steps (dual-bank.c): the state machine's own moves. */
void flash_job_set_step(FlashJob *f, enum flash_step s);
void flash_job_finish(FlashJob *f, enum flash_step s);
void flash_job_fail(FlashJob *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int flash_job_arm_timer(FlashJob *f, uint64_t at);
/* DISCONNECT(temporary), answer or not: leaves the node's session tidy. */
void node_disconnect_quietly(Node *n);
