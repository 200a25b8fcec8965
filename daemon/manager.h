/* The engine of canfleetd: one Manager owning the sd-event loop, the CAN buses, the nodes, the jobs and the
 * scheduler. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "can-transport.h"
#include "canfleet/image.h"
#include "canfleet/node-status.h"
#include "canfleet/seedkey.h"
#include "ccp-master.h"
#include "conf.h"
#include "flash-job.h"
#include "flash-plan.h"

typedef struct Manager Manager;
typedef struct CanBus CanBus;
typedef struct Job Job;

#define CF_CAN_IDS           2048u

enum job_state {
        JOB_RUNNING,
        JOB_DONE,
        JOB_FAILED,
        JOB_CANCELLED,
};
const char *job_state_str(enum job_state s);

struct CanBus {
        Manager *m;
        const struct cf_bus_conf *conf;
        CanTransport *transport;
        struct ccp_bus_load load;
        Node **nodes; /* sorted by station; includes the scan probes, which are not exported */
        size_t n_nodes;
        Node **by_dto; /* CF_CAN_IDS entries */
        unsigned active;
        /* a Scan in progress */
        sd_bus_message *scan_reply;
        unsigned scan_pending;
        bool scanning;
        struct GroupPass *group; /* the bus's group transfer (group-job.h), NULL when none */
        bool probed; /* the start-up probe of its configured nodes ran (it waits for the link) */
        bool startup_probe; /* the scan running is that probe: a Scan call joins it */
};

struct Node {
        Manager *m;
        CanBus *bus;
        struct cf_node_conf nc;
        bool configured, exported;
        char name[32]; /* "bus0:3" */
        char *path;
        CcpSession *ccp;
        node_reply_fn on_reply; /* who gets the session's answers now */

        /* identity, from the device ID and the status block */
        bool identified;
        uint16_t hw_id, boot_version;
        char uid[2 * CF_UID_LEN + 1];
        uint8_t uid_raw[CF_UID_LEN];
        bool has_image;
        struct cf_image_info running;
        uint32_t running_crc; /* CRC stored at the end of B */
        char version[24];
        uint8_t mode, last_update;
        /* status bytes 77/78: 0 a single-bank (F4 copy layout) node, 1/2 the bank a dual-bank node runs
         * from; its trial state (CF_TRIAL_*) */
        uint8_t bank, trial;
        char running_sha[65]; /* payload sha256 of the running image (hex), "" when unknown */
        /* the last job that touched it: its result there ("done", "up-to-date", "failed",
         * "cancelled"; "" none), the job and when it ended (µs) */
        char last_result[16];
        unsigned last_job;
        uint64_t last_time;
        const char *state;
        /* the state it had when a job took it ("updating" hides it): what it is again when the job lets
         * go of it without a session (cancelled while queued, a download that failed) */
        const char *idle_state;
        char *last_error;
        uint64_t last_seen;

        /* identify procedure */
        node_done_fn identify_done;
        unsigned id_idx;
        unsigned id_pass; /* reads of the current piece: each is read until two reads agree */
        bool id_connect;
        uint8_t devid[16];
        uint8_t status[CF_STATUS_SIZE]; /* identify reads it in pieces (flash-job.c id_pieces) */
        uint8_t id_prev[5];

        /* a serial node (serial-job.h): its session, and what its loader said it is */
        struct SerialSession *serial;
        char part[32];      /* "0x26013F37" (LPC J), "ADuCM360" (ADI ID packet); "" unknown */
        char identity[128]; /* for operators: "LPC1768 0x26013F37, boot code 4.1, serial 1-2-3-4" */

        FlashJob *flash; /* the node's entry in the running job, NULL when idle */
        bool doomed;     /* removed from the configuration by a reload while busy: freed once idle */
        bool probing;    /* part of a scan */
        uint8_t probe_tries; /* identifies of this probe that lost an answer after the node had answered */
};

struct FlashJob {
        Job *job;
        Node *node; /* NULL when the node is no longer configured */
        char ref[32];
        char bus[16];
        uint16_t station;
        enum flash_step step;
        char *error;
        uint64_t bytes_done, bytes_total;
        bool slot;
        bool counted_final; /* counted in Job.n_final */
        bool held;          /* DISCONNECT(end) waits for the job's state to be saved (manager_flash_saved) */
        bool resumed; /* resumed at rebooting/confirming: a mismatch restarts from CONNECT once */
        unsigned sub; /* position inside a step */
        unsigned unlock_tries;
        unsigned reinits; /* sessions re-initialised on a C2 answer (flash-job.c), in this job */
        unsigned resyncs;  /* transfers resumed after a TEST (flash-job.c), in this job */
        uint64_t resync_mark; /* bytes_done at the last one */
        unsigned restarts; /* sessions restarted (node lost and back, staged image wrong …), in this job */
        unsigned keys_refused;  /* UNLOCK answers "wrong key" in this job (flash-job.c) */
        unsigned lockout_waits; /* GET_SEED locked after three wrong keys: waits in this job */
        bool chk_reasked;  /* a wrong checksum was asked again once */
        bool staged;       /* C may hold this job's complete image: a cancel must erase it */
        bool lost;         /* the node stopped answering: probing it (timer) */
        uint64_t lost_since;
        char *lost_why;
        size_t run;
        uint32_t off;
        /* group transfer (group-job.h) */
        bool joined;   /* the node is believed a member of the job's group (saved: "group") */
        bool no_group; /* it refused GROUP_JOIN (an older node): plain CCP for the rest of the job */
        struct GroupPass *group; /* the pass it is attached to, NULL when none */
        uint8_t gstate;          /* enum group_member_state */
        uint16_t gfrom;          /* the first slot it still needs from a pass */
        uint32_t gslot, gend;    /* GAP repair: the slot being sent, the end of the reported run */
        /* checked blocks (canfleet/ccp.h, flash-job.c): the node programs a block only when its CRC matches */
        bool verify;     /* BLOCK_MODE taken in this session */
        bool no_verify;  /* the node refused BLOCK_MODE (an older node): unchecked PROGRAMs, as before */
        int32_t vblk;    /* the block with bytes sent and not yet checked, -1: none */
        size_t vrun;     /* plain path: where that block's first chunk was (run, off, bytes_done) */
        uint32_t voff;
        uint64_t vbytes;
        unsigned vsub;   /* what follows the check: plain path sub 0 (SET_MTA) or 2; repair: slot vnext */
        uint32_t vnext;
        bool vfollow;
        unsigned vfails; /* refusals of the block in a row */
        uint32_t gap_from, gap_seen; /* the GAP asked and its first answer (first << 16 | run) */
        bool gap_once;               /* a GAP answer waits for a second, equal one */
        unsigned gpasses;            /* group passes it rode in this session */
        bool gdeciding;              /* after a pass: asking what it misses, a second pass or unicast */
        sd_event_source *timer; /* reboot back-off; the pause before a re-initialised session */
        uint64_t deadline;
        uint64_t backoff;
        uint64_t wait_since; /* CLOCK_MONOTONIC µs it first waited for its bus (0: not waiting) */
        /* dual-bank job (dual-bank.h): the link sent, 1 or 2 (the node's inactive bank); 0 before the
         * node was identified, and always for a single-image job */
        uint8_t link;
        bool confirm_sent; /* trial: canfleetd's CONFIRM (confirm_trial_ms) was answered */
        uint64_t trial_seen;  /* CLOCK_MONOTONIC µs canfleetd first saw it on trial (0: not yet) */
        uint32_t trial_boots; /* its boot count then: a reset in between starts the wait again */
};

struct Job {
        Manager *m;
        unsigned id;
        char *path;
        enum job_state state;
        uint8_t *image; /* a dual-bank job: the two links, bank 1's then bank 2's (2 x 256 KB) */
        size_t image_size; /* CF_IMAGE_AREA_SIZE (each link of a dual-bank job), or a serial target's raw image */
        char target[16];   /* "" (CCP nodes), "lpc-isp", "adi-uart" (docs/design.md §8) */
        char part_id[32];  /* with a target: the part it is for */
        struct cf_image_info info; /* a dual-bank job: bank 1's link (hw id, version, release: both's) */
        /* a dual-bank bundle's job (dual-bank.h): the bank-2 link's trailer, CRC and plan */
        bool dual;
        struct cf_image_info info2;
        uint32_t image2_crc;
        struct cf_run *runs2;
        size_t n_runs2;
        uint64_t plan_bytes2;
        char image_sha[65];   /* of the whole area image: the cache key */
        char payload_sha[65]; /* from the trailer */
        char version[24];
        uint32_t image_crc;
        struct cf_run *runs;
        size_t n_runs;
        uint64_t plan_bytes;
        FlashJob *nodes;
        size_t n_nodes;
        size_t n_final;    /* nodes in a final step: the job ends when all are */
        size_t sched_from; /* no queued node below this index: the scheduler starts here */
        bool has_unplaced; /* queued nodes without a Node (bus gone): failed by the scheduler */
        bool force, cancel;
        /* StartUpdateUrl: the download before the image is known (nodes at STEP_DOWNLOADING) */
        struct BundleGet *download;
        char *url; /* for messages and the cache index: credentials left out */
        bool all;
        uint64_t dl_done, dl_total; /* the download's bytes, shown by every node that waits for it */
        uint64_t dl_started;
        bool history; /* finished before this start: loaded from its file, without its image */
        uint64_t created, started, finished;
        /* with "all": configured nodes left out and why ("hw 0x0001", "offline", …) */
        char **skipped; /* pairs: name, reason */
        size_t n_skipped;
        sd_event_source *progress_timer;
        bool progress_dirty;
        /* persistence (job-store.h): the snapshot's log, appended to at each change */
        int log_fd;         /* -1: not open */
        uint64_t seq;       /* of the last record written */
        size_t log_records; /* since the last snapshot */
        bool sync_pending;  /* records written but not yet fdatasync'ed */
        bool save_failed;   /* the last save failed: new steps wait, save_timer retries */
        sd_event_source *save_timer;
};

struct Manager {
        sd_event *event;
        sd_bus *bus;
        struct cf_conf *conf;
        uint8_t fleet_key[CF_FLEET_KEY_LEN];
        struct cf_keyring *keyring;       /* NULL: none configured (allow_unsigned) */
        struct FdRead *reads;             /* StartUpdate calls whose image is still being read (fd-read.h) */
        struct Fetcher *fetcher;          /* downloads (fetcher.h) */
        struct FleetServer *fleet;        /* the hawkBit gateway (fleet-server.h), NULL without one */
        CanBus **buses; /* each allocated alone: a reload adds and removes buses, nodes point to theirs */
        size_t n_buses;
        Job **jobs;
        size_t n_jobs;
        unsigned next_job_id;
        unsigned active;
        sd_event_source *sched, *sig_term, *sig_int, *watchdog;
        sd_event_source *start_timer; /* the next start_timeout_s of a node waiting for its bus */
        /* the node inventory (inventory.h) */
        int inv_fd;
        uint64_t inv_seq;
        size_t inv_records;
        bool inv_failed; /* the last save failed: the next change writes a snapshot */
        sd_event_source *sig_hup; /* reload */
        sd_event_source *sweep;   /* frees doomed nodes once idle (post source, on while any) */
        bool notify;
        bool started; /* manager_start() ran: the start-up probes may begin */
        char status[128];
        /* the start-up probe of the configured nodes (true from manager_new); tests that count
         * frames switch it off before manager_start() */
        bool probe_at_start;
        /* hook for tests: called when a job leaves "running" */
        void (*job_finished)(Manager *m, Job *j, void *userdata);
        void *job_finished_userdata;
};

/* Build the manager from a configuration (taken over, also on failure). *error gets a message for
 * configuration problems (fleet key). Transports are opened; nodes of "nodes" lists exist. */
int manager_new(sd_event *e, struct cf_conf *conf, Manager **ret, char **error);
Manager *manager_free(Manager *m);
/* Resume the unfinished jobs of state_dir; signals (SIGTERM/SIGINT: exit the loop), watchdog. */
int manager_start(Manager *m);

CanBus *manager_find_bus(Manager *m, const char *name);
/* "BUS:SA" or a node object path of an exported node; -ENXIO none, -EINVAL malformed. */
int manager_find_node(Manager *m, const char *ref, Node **ret);
Job *manager_find_job(Manager *m, unsigned id);
/* A job id or station as it appears in an object path or "BUS:SA": 1-4294967295 in decimal, nothing
 * else ("01", "+1", " 1", "4294967297" are -EINVAL/-ERANGE). */
int manager_parse_id(const char *s, unsigned *ret);

/* Start an update of nodes (n == 0 and all: every exported node) with data: a signed bundle or a plain
 * area image (trust.h decides, with the keyring and allow_unsigned), the caller's bytes read once. The
 * verified image is copied and stored in cache_dir by its sha256. Errors (*error says why):
 *   -EBADMSG      invalid image or bundle               -EBUSY   a node is in a running job
 *   -EKEYREJECTED not trusted (unsigned, signature, keyring, image not the one signed)
 *   -EXDEV        hardware id of a node known to differ  -EINVAL nothing to update
 *   -ERANGE       anti-rollback: a node known to run a higher release (every such node named) */
int manager_start_update(Manager *m, const uint8_t *data, size_t data_size, Node **nodes, size_t n, bool all,
                         bool force, Job **ret, char **error);
/* One node of a dry run: its name, "update", "up-to-date", "skip" or "busy", and why (may be ""). */
struct plan_entry {
        char node[32];
        const char *verdict;
        char reason[128];
};
/* What manager_start_update() would do with the same arguments, by the very same checks in the same
 * order, without creating a job, saving or sending anything. *ret_trust says how the bytes are trusted
 * ("bundle signed by ...", "unsigned image (allow_unsigned)") or why not; *ret_refusal is NULL when the
 * update would start, else the text StartUpdate would answer (the entries then list the nodes named
 * or left out as far as the checks got). Returns 0, or -ENOMEM. */
int manager_plan_update(Manager *m, const uint8_t *data, size_t data_size, Node **nodes, size_t n, bool all,
                        bool force, struct plan_entry **ret_entries, size_t *ret_n, char **ret_trust,
                        char **ret_refusal);
/* Start an update of nodes (as manager_start_update) whose bundle canfleetd downloads from url
 * (http:// or https://; url_for_log: the same without credentials): the job is returned at once with
 * its nodes at step "downloading" (bytes in their progress) and the nodes reserved. When the download
 * is verified, the job goes on exactly as manager_start_update() would have started it, same checks
 * in the same order; a refusal or a failed download fails its nodes with the reason, before any CAN
 * frame. Errors here: -EBUSY, -EINVAL (no node), -ENOMEM, -errno of the cache or state directory. */
int manager_start_update_url(Manager *m, const char *url, const char *url_for_log, Node **nodes, size_t n,
                             bool all, bool force, Job **ret, char **error);
/* -EALREADY when the job is finished. */
int job_cancel(Job *j);

/* Scan: when done, the bus-api gets bus_scan_done(). -EBUSY when a scan of b runs. */
int manager_scan(CanBus *b);

/* Manager services used by flash-job.c */
void manager_schedule(Manager *m);
void manager_release_slot(FlashJob *f);
void manager_flash_changed(FlashJob *f, bool persist, bool urgent);
void manager_flash_finished(FlashJob *f);
/* Whether the job's state, f's latest step included, is saved. When not (full disk), the step that
 * must not act unsaved (DISCONNECT(end)) sets f->held and waits: flash_job_saved(f) is called once a
 * save succeeds. */
bool manager_flash_saved(FlashJob *f);
void manager_update_status(Manager *m);
/* What the daemon knows of n changed (identified, an update ended): one record in the inventory. */
void manager_node_changed(Node *n);
/* The reason a node of b cannot start: "cannot open /dev/ttyACM0: …", "link down"; NULL when up. */
const char *manager_bus_error(const CanBus *b);

/* Re-read the configuration (SIGHUP): buses and nodes added and removed, running jobs kept. All or
 * nothing: what cannot change while running (state_dir, cache_dir, retries, the fleet key while a job
 * runs, a bus's transport or ids while a job or scan uses it) refuses the whole reload, logged with
 * what and why, and the configuration in use stays. A removed node a job still uses stays until the job
 * is done with it. *error (may be NULL) gets the reason of a refusal. */
int manager_reload(Manager *m, char **error);

/* bus-api.c: every emission is a no-op without a bus. */
int manager_connect_bus(Manager *m);
void bus_node_changed(Node *n, const char *prop, ...) __attribute__((sentinel));
void bus_node_added(Node *n);
/* Before n leaves the exported set (InterfacesRemoved needs the object still found). */
void bus_node_removed(Node *n);
void bus_manager_changed(Manager *m, const char *prop, ...) __attribute__((sentinel));
void bus_job_added(Job *j);
void bus_job_removed(Job *j);
void bus_job_changed(Job *j, const char *prop, ...) __attribute__((sentinel));
void bus_job_completed(Job *j);
void bus_scan_done(CanBus *b);
