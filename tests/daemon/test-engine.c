/* The canfleetd engine (manager, flash jobs, job store, SLCAN) against a real canfleet-nodesim over a pty,
 * without D-Bus. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/node-status.h"
#include "canfleet/sha256.h"
#include "cf-test.h"
#include "manager.h"

static char dir[64];
static pid_t sim = -1;
static const char *fleet_key_hex = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

static void write_file(const char *name, const void *data, size_t size)
{
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        FILE *f = fopen(p, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_EQUAL(fwrite(data, 1, size, f), size);
        fclose(f);
}

/* A packed area image as canfleetctl image pack makes it: payload, 0xFF, trailer, CRC. */
static uint8_t *make_image(uint8_t major, uint8_t minor, uint32_t release, uint16_t hw_id,
                           uint32_t payload_len, uint32_t seed)
{
        uint8_t *a = malloc(CF_IMAGE_AREA_SIZE);
        memset(a, 0xFF, CF_IMAGE_AREA_SIZE);
        cf_le32_put(a, 0x20020000);
        cf_le32_put(a + 4, 0x08020199);
        for (uint32_t i = 8; i < payload_len; i++) {
                seed = seed * 1103515245u + 12345u;
                a[i] = (uint8_t) (seed >> 16);
        }
        /* some erased-looking stretches inside the payload, as real code has */
        memset(a + 2000, 0xFF, 300);
        struct cf_image_info info = {.magic = CF_IMAGE_MAGIC,
                                     .layout_version = CF_TRAILER_LAYOUT,
                                     .hw_id = hw_id,
                                     .ver_major = major,
                                     .ver_minor = minor,
                                     .ver_patch = 0,
                                     .release = release,
                                     .payload_len = payload_len,
                                     .area_size = CF_IMAGE_AREA_SIZE};
        cf_sha256(a, payload_len, info.payload_sha256);
        cf_image_info_pack(&info, a + CF_TRAILER_OFFSET);
        cf_le32_put(a + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, a, CF_CRC_OFFSET));
        CU_ASSERT_EQUAL(cf_image_check(a, NULL), CF_IMAGE_OK);
        return a;
}

/* nodes: stations 1..nodes on bus0; bus_timing: the simulator's faithful CAN (one frame at a time,
 * the lowest identifier wins arbitration, exact bit times). */
/* The simulator's nodes refuse GROUP_JOIN (--no-group all): the tests of the plain CCP path. */
static bool sim_no_group;

static void start_sim(unsigned nodes, bool bus_timing)
{
        const char *exe = getenv("CANFLEET_NODESIM");
        CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
        int p[2];
        CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
        char bus[96], state[96], key[96], img[96];
        snprintf(bus, sizeof bus, "slcan:%s/bus0", dir);
        snprintf(state, sizeof state, "%s/sim", dir);
        snprintf(key, sizeof key, "%s/fleet.key", dir);
        snprintf(img, sizeof img, "%s/v1.img", dir);
        char count[16];
        snprintf(count, sizeof count, "%u", nodes);
        sim = fork();
        CU_ASSERT_FATAL(sim >= 0);
        if (sim == 0) {
                dup2(p[1], STDOUT_FILENO);
                close(p[0]);
                const char *argv[24] = {exe,     "--bus", bus,       "--nodes", count,    "--state",
                                        state,   "--fleet-key", key, "--install", img, "--hw-id",
                                        "0x0001", "--quiet"};
                size_t k = 14;
                if (bus_timing)
                        argv[k++] = "--bus-timing";
                if (sim_no_group) {
                        argv[k++] = "--no-group";
                        argv[k++] = "all";
                }
                execv(exe, (char *const *) argv);
                _exit(127);
        }
        close(p[1]);
        char line[64] = {0};
        size_t n = 0;
        while (n < sizeof line - 1) {
                ssize_t k = read(p[0], line + n, 1);
                if (k <= 0 || line[n] == '\n')
                        break;
                n++;
        }
        close(p[0]);
        line[n] = 0;
        CU_ASSERT_STRING_EQUAL_FATAL(line, "ready");
}

static void stop_sim(void)
{
        if (sim > 0) {
                kill(sim, SIGTERM);
                waitpid(sim, NULL, 0);
                sim = -1;
        }
}

static unsigned n_sim_nodes;

static Manager *new_manager(sd_event *e)
{
        char text[1024], nodes[256] = "";
        for (unsigned sa = 1; sa <= n_sim_nodes; sa++)
                snprintf(nodes + strlen(nodes), sizeof nodes - strlen(nodes), "%s%u", sa > 1 ? ", " : "",
                         sa);
        snprintf(text, sizeof text,
                 "{\"fleet_key_file\": \"%s/fleet.key\", \"state_dir\": \"%s/state\", \"cache_dir\": "
                 "\"%s/cache\","
                 " \"reboot_timeout_ms\": 20000, \"reply_timeout_ms\": 500, \"allow_unsigned\": true,"
                 " \"buses\": [{\"name\": \"bus0\", \"transport\": \"slcan:%s/bus0\", \"nodes\": [%s]}]}",
                 dir, dir, dir, dir, nodes);
        struct cf_conf *c = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL_FATAL(cf_conf_parse(text, "engine.conf", &c, &err), 0);
        Manager *m = NULL;
        int r = manager_new(e, c, &m, &err);
        if (r < 0)
                fprintf(stderr, "manager_new: %s\n", err ? err : strerror(-r));
        CU_ASSERT_EQUAL_FATAL(r, 0);
        /* these tests count frames and drive identify themselves: no background probe (it is tested
         * with the whole daemon, tests/integration/test_fleet_model.py) */
        m->probe_at_start = false;
        CU_ASSERT_EQUAL_FATAL(manager_start(m), 0);
        return m;
}

static bool finished;
static void on_finished(Manager *m, Job *j, void *userdata)
{
        finished = true;
}

static int on_guard(sd_event_source *s, uint64_t usec, void *userdata)
{
        CU_FAIL("the job did not finish in time");
        finished = true;
        return 0;
}

/* Run the loop until the job finishes, or until stop() says so. */
static void run(Manager *m, bool (*stop)(Manager *m))
{
        sd_event_source *guard;
        uint64_t now;
        finished = false;
        m->job_finished = on_finished;
        sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        CU_ASSERT_EQUAL_FATAL(
            sd_event_add_time(m->event, &guard, CLOCK_MONOTONIC, now + 90000000, 0, on_guard, NULL), 0);
        while (!finished && !(stop && stop(m)))
                CU_ASSERT_FATAL(sd_event_run(m->event, UINT64_MAX) >= 0);
        sd_event_source_disable_unref(guard);
}

static Node *node(Manager *m, const char *ref)
{
        Node *n = NULL;
        CU_ASSERT_EQUAL_FATAL(manager_find_node(m, ref, &n), 0);
        return n;
}

static void setup_fleet(unsigned nodes, bool bus_timing)
{
        snprintf(dir, sizeof dir, "/tmp/cf-test-engine-XXXXXX");
        CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
        write_file("fleet.key", fleet_key_hex, strlen(fleet_key_hex));
        uint8_t *v1 = make_image(1, 0, 1, 0x0001, 30000, 1);
        write_file("v1.img", v1, CF_IMAGE_AREA_SIZE);
        free(v1);
        n_sim_nodes = nodes;
        start_sim(nodes, bus_timing);
}

static void setup(void)
{
        setup_fleet(2, false);
}

static void teardown(void)
{
        stop_sim();
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_update_one_node(void)
{
        setup();
        sd_event *e;
        CU_ASSERT_EQUAL_FATAL(sd_event_new(&e), 0);
        Manager *m = new_manager(e);
        Node *n1 = node(m, "bus0:1");
        CU_ASSERT_STRING_EQUAL(n1->state, "unknown");

        uint8_t *v2 = make_image(1, 1, 2, 0x0001, 41000, 2);
        Job *j = NULL;
        char *err = NULL;
        Node *list[] = {n1};
        CU_ASSERT_EQUAL_FATAL(
            manager_start_update(m, v2, CF_IMAGE_AREA_SIZE, list, 1, false, false, &j, &err), 0);
        CU_ASSERT_EQUAL(j->id, 1);
        CU_ASSERT_EQUAL(j->nodes[0].step, STEP_QUEUED);
        /* 0xFF runs are not sent */
        CU_ASSERT(j->nodes[0].bytes_total < 41000 + 64);
        /* the same node cannot be in two running jobs */
        Job *j2 = NULL;
        CU_ASSERT_EQUAL(manager_start_update(m, v2, CF_IMAGE_AREA_SIZE, list, 1, false, false, &j2, &err),
                        -EBUSY);
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, "bus0:1 is already being updated by job 1");
        free(err);
        err = NULL;

        run(m, NULL);
        CU_ASSERT_EQUAL(j->state, JOB_DONE);
        CU_ASSERT_EQUAL(j->nodes[0].step, STEP_DONE);
        CU_ASSERT_PTR_NULL(j->nodes[0].error);
        CU_ASSERT_EQUAL(j->nodes[0].bytes_done, j->nodes[0].bytes_total);
        CU_ASSERT_STRING_EQUAL(n1->version, "1.1.0");
        CU_ASSERT_EQUAL(n1->running.release, 2);
        CU_ASSERT_STRING_EQUAL(n1->state, "online");
        CU_ASSERT_EQUAL(n1->hw_id, 0x0001);
        /* the other node was not touched */
        CU_ASSERT_STRING_EQUAL(node(m, "bus0:2")->state, "unknown");

        /* The same image again: the node already runs it and is done without being flashed. */
        CU_ASSERT_EQUAL_FATAL(
            manager_start_update(m, v2, CF_IMAGE_AREA_SIZE, list, 1, false, false, &j, &err), 0);
        run(m, NULL);
        CU_ASSERT_EQUAL(j->state, JOB_DONE);
        CU_ASSERT_NOT_EQUAL(j->nodes[0].step, STEP_FAILED);

        /* An image for other hardware: refused on the node before anything is erased. */
        uint8_t *hw2 = make_image(2, 0, 3, 0x0002, 1000, 3);
        CU_ASSERT_EQUAL(manager_start_update(m, hw2, CF_IMAGE_AREA_SIZE, list, 1, false, false, &j, &err),
                        -EXDEV);
        /* (err is set only on failure: a stale one would be freed twice) */
        CU_ASSERT_PTR_NOT_NULL_FATAL(err);
        CU_ASSERT_STRING_EQUAL(err, "bus0:1 has hardware id 0x0001, the image is for 0x0002");
        free(err);
        err = NULL;
        Node *list2[] = {node(m, "bus0:2")};
        CU_ASSERT_EQUAL_FATAL(
            manager_start_update(m, hw2, CF_IMAGE_AREA_SIZE, list2, 1, false, false, &j, &err), 0);
        run(m, NULL);
        CU_ASSERT_EQUAL(j->state, JOB_FAILED);
        CU_ASSERT_EQUAL(j->nodes[0].step, STEP_FAILED);
        CU_ASSERT_STRING_EQUAL(
            j->nodes[0].error,
            "bus0:2: hardware id 0x0001 does not match the image's 0x0002 (nothing erased)");
        CU_ASSERT_STRING_EQUAL(list2[0]->version, "1.0.0");

        /* An invalid image is refused at once. */
        hw2[100] ^= 1;
        CU_ASSERT_EQUAL(manager_start_update(m, hw2, CF_IMAGE_AREA_SIZE, list2, 1, false, false, &j, &err),
                        -EBADMSG);
        CU_ASSERT_PTR_NOT_NULL(err);
        free(err);

        free(hw2);
        free(v2);
        manager_free(m);
        sd_event_unref(e);
        teardown();
}

static bool programming_half_way(Manager *m)
{
        Job *j = manager_find_job(m, 1);
        return j && j->nodes[0].step == STEP_PROGRAMMING &&
               j->nodes[0].bytes_done > j->nodes[0].bytes_total / 3;
}

static void test_resume(void)
{
        setup();
        sd_event *e;
        CU_ASSERT_EQUAL_FATAL(sd_event_new(&e), 0);
        Manager *m = new_manager(e);
        uint8_t *v3 = make_image(1, 2, 3, 0x0001, 60000, 4);
        Job *j = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL_FATAL(
            manager_start_update(m, v3, CF_IMAGE_AREA_SIZE, NULL, 0, true, false, &j, &err), 0);
        CU_ASSERT_EQUAL(j->n_nodes, 2);
        run(m, programming_half_way);
        CU_ASSERT_EQUAL_FATAL(j->state, JOB_RUNNING);
        /* The daemon goes away mid-transfer (its state is on disk), and comes back. */
        manager_free(m);
        sd_event_unref(e);

        CU_ASSERT_EQUAL_FATAL(sd_event_new(&e), 0);
        m = new_manager(e);
        j = manager_find_job(m, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_EQUAL(j->state, JOB_RUNNING);
        CU_ASSERT_STRING_EQUAL(j->version, "1.2.0");
        run(m, NULL);
        CU_ASSERT_EQUAL(j->state, JOB_DONE);
        for (size_t i = 0; i < j->n_nodes; i++) {
                CU_ASSERT_EQUAL(j->nodes[i].step, STEP_DONE);
                CU_ASSERT_STRING_EQUAL(j->nodes[i].node->version, "1.2.0");
        }
        /* a new job gets the next id */
        CU_ASSERT_EQUAL(m->next_job_id, 2);

        free(v3);
        manager_free(m);
        sd_event_unref(e);
        teardown();
}

/* With a faithful CAN bus the gateway's CROs (0x681..) beat every DTO (0x6C1..), and the answers of the
 * lower nodes beat those of the higher ones: with eight sessions interleaved on one bus, the answers
 * of the highest nodes can only get through when the gateway lets the bus drain. Every node must be
 * updated and confirmed. */
static void test_saturated_bus_is_fair(void)
{
        enum { NODES = 8 };
        /* The gate is about interleaved CCP sessions: the plain path (the group pass is one stream). */
        sim_no_group = true;
        setup_fleet(NODES, true);
        sd_event *e;
        CU_ASSERT_EQUAL_FATAL(sd_event_new(&e), 0);
        Manager *m = new_manager(e);
        /* Few frames: a 3 KB payload, the rest of the area erased. */
        uint8_t *v2 = make_image(1, 1, 2, 0x0001, 3000, 5);
        Job *j = NULL;
        char *err = NULL;
        CU_ASSERT_EQUAL_FATAL(
            manager_start_update(m, v2, CF_IMAGE_AREA_SIZE, NULL, 0, true, false, &j, &err), 0);
        CU_ASSERT_EQUAL_FATAL(j->n_nodes, NODES);
        run(m, NULL);
        CU_ASSERT_EQUAL(j->state, JOB_DONE);
        uint64_t timeouts = 0;
        for (size_t i = 0; i < j->n_nodes; i++) {
                FlashJob *f = &j->nodes[i];
                if (f->error)
                        fprintf(stderr, "%s\n", f->error);
                CU_ASSERT_EQUAL(f->step, STEP_DONE);
                CU_ASSERT_PTR_NULL(f->error);
                CU_ASSERT_EQUAL(f->bytes_done, f->bytes_total);
                CU_ASSERT_PTR_NOT_NULL_FATAL(f->node);
                CU_ASSERT_STRING_EQUAL(f->node->version, "1.1.0");
                CU_ASSERT_STRING_EQUAL(f->node->state, "online");
                timeouts += ccp_session_timeouts(f->node->ccp);
        }
        const CanBus *b = m->buses[0];
        fprintf(stderr,
                "  %u nodes: %" PRIu64 " frames sent, %" PRIu64 " time-outs, %" PRIu64
                " hold windows, %" PRIu64 " answers came in one\n",
                NODES, b->transport->frames_tx, timeouts, b->load.holds, b->load.rescued);
        free(v2);
        manager_free(m);
        sd_event_unref(e);
        teardown();
        sim_no_group = false;
}

/* ---- C2 answers ------------------------------------------------------------------------------- */

/* Between the engine and the bus: watches the CROs to station 1 and turns the node's OK answers to
 * one command into C2 (cold start request) answers, as a node asking for a new session would. */
static struct {
        const struct can_transport_ops *ops; /* the transport's own */
        struct can_transport_ops spy_ops;
        can_frame_cb on_frame; /* the manager's */
        Job *job;
        uint8_t last_cmd, last_ctr; /* the last CRO to station 1: what its answer answers */
        uint8_t inject_cmd;         /* make up C2 answers to this command */
        unsigned inject;            /* this many */
        bool past_third;            /* only once a third of the image is sent */
        bool answer;                /* the spy answers those CROs at once, before the node can */
        bool swallow;               /* ... and the node never sees them */
        struct cf_can_frame fake;   /* that answer, delivered from the event loop */
        bool delivering;            /* spy_frame() is given the spy's answer, not the node's */
        bool faked;                 /* the spy answered a CRO with counter faked_ctr ... */
        uint8_t faked_ctr;          /* ... and the node's own answer to it is lost */
        sd_event_source *defer;
        unsigned made;
        uint8_t after_c2; /* the first CRO to station 1 after the last made-up C2 */
        /* CONNECTs and CLEAR_MEMORYs to station 1, a command's retries counted once */
        unsigned connects, clears;
        unsigned program0; /* PROGRAMs of size 0 (the end of the transfer: the CRC word is written) */
        /* A lost session: from the first GAP on, every CRO to station 1 is lost until lose_connects
         * CONNECTs (the engine's probes for a lost node) were lost too; then counted what follows. */
        unsigned lose_connects;
        bool losing;                                                     /* the first GAP was seen */
        unsigned lost_cros;                                              /* CROs to station 1 lost */
        unsigned joins_after, clears_after, programs_after, group_after; /* once the CROs pass again */
        /* group frames: the drop_group_n after the first drop_group_from ones are lost */
        unsigned group_sent, drop_group_from, drop_group_n;
} spy;

static uint16_t cro_service(const struct cf_can_frame *f)
{
        return f->data[0] == CF_CCP_ACTION_SERVICE ? (uint16_t) (f->data[2] << 8 | f->data[3]) : 0;
}

static int spy_send(CanTransport *t, const struct cf_can_frame *f)
{
        if (f->id == CF_GROUP_ID_DEFAULT) {
                spy.group_sent++;
                spy.group_after += spy.losing && spy.lose_connects == 0;
                if (spy.group_sent > spy.drop_group_from &&
                    spy.group_sent <= spy.drop_group_from + spy.drop_group_n)
                        return 0; /* lost on the bus */
        }
        if (f->id == CF_CCP_CRO_BASE_DEFAULT + 1) {
                uint8_t cmd = f->data[0];
                if (spy.lose_connects > 0 && !spy.losing && cro_service(f) == CF_CCP_SVC_GAP)
                        spy.losing = true;
                if (spy.losing && spy.lose_connects > 0) {
                        spy.lost_cros++;
                        spy.lose_connects -= cmd == CF_CCP_CONNECT;
                        return 0;
                }
                if (spy.losing) {
                        spy.joins_after += cro_service(f) == CF_CCP_SVC_GROUP_JOIN;
                        spy.clears_after += cmd == CF_CCP_CLEAR_MEMORY && spy.last_cmd != cmd;
                        spy.programs_after += cmd == CF_CCP_PROGRAM_6 || cmd == CF_CCP_PROGRAM;
                }
                if (spy.made && !spy.after_c2)
                        spy.after_c2 = cmd;
                spy.connects += cmd == CF_CCP_CONNECT && spy.last_cmd != cmd;
                spy.clears += cmd == CF_CCP_CLEAR_MEMORY && spy.last_cmd != cmd;
                spy.program0 += cmd == CF_CCP_PROGRAM && f->data[2] == 0;
                spy.last_cmd = cmd;
                spy.last_ctr = f->data[1];
                if (spy.answer && spy.inject > 0 && cmd == spy.inject_cmd) {
                        /* An OK, made a C2 by spy_frame(); the node's own answer comes too late. */
                        spy.fake = (struct cf_can_frame){.id = CF_CCP_DTO_BASE_DEFAULT + 1, .dlc = 8};
                        cf_ccp_dto_reply(spy.fake.data, CF_CCP_OK, f->data[1], NULL, 0);
                        spy.faked = true;
                        spy.faked_ctr = f->data[1];
                        sd_event_source_set_enabled(spy.defer, SD_EVENT_ONESHOT);
                        if (spy.swallow)
                                return 0;
                }
        }
        return spy.ops->send(t, f);
}

static void spy_frame(CanTransport *t, const struct cf_can_frame *f, void *userdata)
{
        struct cf_can_frame g = *f;
        const FlashJob *fj = spy.job ? &spy.job->nodes[0] : NULL;
        bool node_answer = g.id == CF_CCP_DTO_BASE_DEFAULT + 1 && g.data[0] == CF_CCP_PID_CRM;
        /* When the spy answers in the node's place, the node's own answer to that CRO never arrives
         * (whether it comes before or after the spy's depends on the machine's load), and only the
         * spy's answers are made C2: the same answers in the same order on every run. */
        if (spy.answer && !spy.delivering && node_answer && spy.faked && g.data[2] == spy.faked_ctr)
                return;
        /* Only the answer to the last CRO: a late one to an earlier try is ignored by the session. */
        /* OK answers, and ACCESS_DENIED (the refused retry of a PROGRAM asked again): a node asking
         * for a new session says so to every try, and the session believes an error said twice. */
        if (node_answer && (!spy.answer || spy.delivering) &&
            (g.data[1] == CF_CCP_OK || g.data[1] == CF_CCP_ERR_ACCESS_DENIED) && g.data[2] == spy.last_ctr &&
            spy.inject > 0 && spy.last_cmd == spy.inject_cmd &&
            (!spy.past_third || (fj && fj->bytes_done > fj->bytes_total / 3))) {
                g.data[1] = CF_CCP_ERR_COLD_START;
                spy.inject--;
                spy.made++;
                spy.after_c2 = 0;
        }
        spy.on_frame(t, &g, userdata);
}

static int spy_deliver(sd_event_source *es, void *userdata)
{
        spy.delivering = true;
        can_transport_deliver(userdata, &spy.fake);
        spy.delivering = false;
        return 0;
}

static void spy_on(Manager *m, uint8_t cmd, unsigned n, bool past_third)
{
        CanTransport *t = m->buses[0]->transport;
        memset(&spy, 0, sizeof spy);
        CU_ASSERT_EQUAL_FATAL(sd_event_add_defer(m->event, &spy.defer, spy_deliver, t), 0);
        sd_event_source_set_enabled(spy.defer, SD_EVENT_OFF);
        spy.ops = t->ops;
        spy.spy_ops = *t->ops;
        spy.spy_ops.send = spy_send;
        t->ops = &spy.spy_ops;
        spy.on_frame = t->on_frame;
        t->on_frame = spy_frame;
        spy.inject_cmd = cmd;
        spy.inject = n;
        spy.past_third = past_third;
}

static Job *update_node1(Manager *m, const uint8_t *image)
{
        Job *j = NULL;
        char *err = NULL;
        Node *list[] = {node(m, "bus0:1")};
        int r = manager_start_update(m, image, CF_IMAGE_AREA_SIZE, list, 1, false, false, &j, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err ? err : strerror(-r));
        CU_ASSERT_EQUAL_FATAL(r, 0);
        spy.job = j;
        return j;
}

/* The C2 tests' fixture: a fresh fleet and manager, an image for node 1, the spy armed to turn
 * n answers to cmd into C2. */
struct c2_case {
        sd_event *e;
        Manager *m;
        uint8_t *image;
};

static void c2_begin(struct c2_case *c, uint32_t payload, uint32_t seed, uint8_t cmd, unsigned n, bool past_third)
{
        /* These follow PROGRAM_6 and PROGRAM 0 of the plain path; test_c2_group has the group's. */
        sim_no_group = cmd != CF_CCP_ACTION_SERVICE;
        setup();
        CU_ASSERT_EQUAL_FATAL(sd_event_new(&c->e), 0);
        c->m = new_manager(c->e);
        c->image = make_image(1, 1, 2, 0x0001, payload, seed);
        spy_on(c->m, cmd, n, past_third);
}

static void report(const FlashJob *f)
{
        if (f->error)
                fprintf(stderr, "%s\n", f->error);
}

static void c2_end(struct c2_case *c)
{
        free(c->image);
        spy.defer = sd_event_source_disable_unref(spy.defer);
        manager_free(c->m);
        sd_event_unref(c->e);
        teardown();
        sim_no_group = false;
}

/* The group path: a C2 answer to the GAP after the pass. The new session rejoins the group (the node
 * kept its record) and completes from GAP: C is erased once only. */
static void test_c2_group(void)
{
        struct c2_case c;
        c2_begin(&c, 12000, 11, CF_CCP_ACTION_SERVICE, 2, true);
        Manager *m = c.m;
        Job *j = update_node1(m, c.image);
        run(m, NULL);
        FlashJob *f = &j->nodes[0];
        report(f);
        CU_ASSERT_EQUAL(spy.made, 2);
        CU_ASSERT_EQUAL(spy.after_c2, CF_CCP_CONNECT);
        CU_ASSERT_EQUAL(f->reinits, 1);
        CU_ASSERT_EQUAL(spy.clears, 1);
        CU_ASSERT_EQUAL(j->state, JOB_DONE);
        CU_ASSERT_EQUAL(f->step, STEP_DONE);
        CU_ASSERT_FALSE(f->no_group);
        CU_ASSERT_STRING_EQUAL(node(m, "bus0:1")->version, "1.1.0");
        c2_end(&c);
}

/* A lost session in the group repair: the node stops answering after the pass (its CROs are lost:
 * GAP, the TEST that asks whether it is still there, the first CONNECT probes) while it keeps its
 * membership, as behind an unplugged adapter. Found again, it rejoins from a new session and is
 * completed from GAP: the blocks whose group frames the bus lost, nothing else, and C erased once. */
static void test_lost_session_group(void)
{
        struct c2_case c;
        /* c2_begin()'s fixture on the group path */
        setup();
        CU_ASSERT_EQUAL_FATAL(sd_event_new(&c.e), 0);
        c.m = new_manager(c.e);
        c.image = make_image(1, 1, 2, 0x0001, 12000, 12);
        spy_on(c.m, 0, 0, false);
        Manager *m = c.m;
        spy.lose_connects = 2;
        spy.drop_group_from = 200;
        spy.drop_group_n = 20;
        Job *j = update_node1(m, c.image);
        run(m, NULL);
        FlashJob *f = &j->nodes[0];
        report(f);
        CU_ASSERT_EQUAL(j->state, JOB_DONE);
        CU_ASSERT_EQUAL(f->step, STEP_DONE);
        CU_ASSERT_STRING_EQUAL(node(m, "bus0:1")->version, "1.1.0");
        CU_ASSERT_FALSE(f->no_group);
        CU_ASSERT_EQUAL(f->restarts, 1); /* lost and found once */
        CU_ASSERT(spy.lost_cros > 2);    /* GAP's tries, TEST's, the probes */
        CU_ASSERT_EQUAL(spy.lose_connects, 0);
        CU_ASSERT_EQUAL(spy.clears, 1);
        CU_ASSERT_EQUAL(spy.clears_after, 0);
        CU_ASSERT(spy.joins_after >= 1); /* the rejoin */
        /* 20 group frames lost cost their blocks (16 slots each, at most 3 blocks): repaired by
         * PROGRAM_6, no new pass, nothing else sent again */
        CU_ASSERT(spy.programs_after > 0);
        CU_ASSERT(spy.programs_after <= 3 * CF_BLOCK_SLOTS);
        CU_ASSERT_EQUAL(spy.group_after, 0);
        c2_end(&c);
}

/* A C2 answer in the middle of the transfer: a new session from CONNECT, C erased again, and the
 * update completes. */
static void test_c2_reinitialises(void)
{
        struct c2_case c;
        c2_begin(&c, 12000, 6, CF_CCP_PROGRAM_6, 2, true);
        Manager *m = c.m;
        Job *j = update_node1(m, c.image);
        run(m, NULL);
        FlashJob *f = &j->nodes[0];
        report(f);
        CU_ASSERT_EQUAL(spy.made, 2);
        CU_ASSERT_EQUAL(spy.after_c2, CF_CCP_CONNECT);
        CU_ASSERT_EQUAL(f->reinits, 1);
        CU_ASSERT_EQUAL(spy.clears, 2);
        CU_ASSERT_EQUAL(j->state, JOB_DONE);
        CU_ASSERT_EQUAL(f->step, STEP_DONE);
        CU_ASSERT_PTR_NULL(f->error);
        CU_ASSERT_EQUAL(f->bytes_done, f->bytes_total);
        CU_ASSERT_STRING_EQUAL(node(m, "bus0:1")->version, "1.1.0");
        CU_ASSERT_STRING_EQUAL(node(m, "bus0:1")->state, "online");
        c2_end(&c);
}

/* Four C2 answers in a row: three new sessions, then the node fails, saying why. */
static void test_c2_bounded(void)
{
        struct c2_case c;
        c2_begin(&c, 12000, 7, CF_CCP_PROGRAM_6, 8, false);
        Manager *m = c.m;
        Job *j = update_node1(m, c.image);
        run(m, NULL);
        FlashJob *f = &j->nodes[0];
        report(f);
        static const char msg[] =
            "bus0:1: PROGRAM_6 at 0x00000000: the node asks for a new session (cold start "
            "requested, error 0x20); still so after 3 re-initialisations of the session, "
            "giving up";
        CU_ASSERT_EQUAL(spy.made, 8);
        CU_ASSERT_EQUAL(spy.connects, 4);
        CU_ASSERT_EQUAL(spy.clears, 4);
        CU_ASSERT_EQUAL(j->state, JOB_FAILED);
        CU_ASSERT_EQUAL(f->step, STEP_FAILED);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f->error);
        CU_ASSERT_STRING_EQUAL(f->error, msg);
        Node *n1 = node(m, "bus0:1");
        CU_ASSERT_STRING_EQUAL(n1->last_error, msg);
        /* it still runs its application: online; the failure is its last update's result */
        CU_ASSERT_STRING_EQUAL(n1->state, "online");
        CU_ASSERT_STRING_EQUAL(n1->last_result, "failed");
        CU_ASSERT_EQUAL(n1->last_job, j->id);
        CU_ASSERT_STRING_EQUAL(n1->version, "1.0.0");
        c2_end(&c);
}

/* A C2 answer to DISCONNECT(end): the node may have reset all the same (this one did); the
 * confirmation finds the new image, and nothing is staged again. */
static void test_c2_at_disconnect(void)
{
        struct c2_case c;
        c2_begin(&c, 6000, 8, CF_CCP_DISCONNECT, 2, false);
        Manager *m = c.m;
        spy.answer = true; /* the node's answer waits for the CRC of C: load could make it late */
        Job *j = update_node1(m, c.image);
        run(m, NULL);
        FlashJob *f = &j->nodes[0];
        report(f);
        CU_ASSERT_EQUAL(spy.made, 2);
        CU_ASSERT_EQUAL(f->reinits, 1);
        CU_ASSERT_EQUAL(spy.clears, 1);
        CU_ASSERT_EQUAL(j->state, JOB_DONE);
        CU_ASSERT_EQUAL(f->step, STEP_DONE);
        CU_ASSERT_STRING_EQUAL(node(m, "bus0:1")->version, "1.1.0");
        c2_end(&c);
}

static bool c2_believed(Manager *m)
{
        return spy.made > 1;
}

/* A C2 answer to DISCONNECT(end) from a node that did not take it (the spy answers in its place):
 * the confirmation finds the old image and the image is staged again from CONNECT; or, when the job
 * is cancelled meanwhile, the node is left as it is, cancelled. */
static void test_c2_at_disconnect_not_taken(void)
{
        for (int cancel = 0; cancel < 2; cancel++) {
                struct c2_case c;
                c2_begin(&c, 6000, 9, CF_CCP_DISCONNECT, 2, false);
                Manager *m = c.m;
                spy.answer = spy.swallow = true;
                Job *j = update_node1(m, c.image);
                FlashJob *f = &j->nodes[0];
                run(m, c2_believed);
                CU_ASSERT_EQUAL_FATAL(spy.made, 2);
                if (cancel) {
                        CU_ASSERT_EQUAL(f->step, STEP_REBOOTING);
                        CU_ASSERT_EQUAL(job_cancel(j), 0);
                }
                run(m, NULL);
                report(f);
                CU_ASSERT_EQUAL(f->reinits, 1);
                /* staged again: a second erase of C; cancelled: the staged image's sector erased */
                CU_ASSERT_EQUAL(spy.clears, 2);
                CU_ASSERT_EQUAL(j->state, cancel ? JOB_CANCELLED : JOB_DONE);
                CU_ASSERT_EQUAL(f->step, cancel ? STEP_CANCELLED : STEP_DONE);
                CU_ASSERT_STRING_EQUAL(node(m, "bus0:1")->version, cancel ? "1.0.0" : "1.1.0");
                CU_ASSERT_STRING_EQUAL(node(m, "bus0:1")->state, "online");
                c2_end(&c);
        }
}

static bool crc_word_written(Manager *m)
{
        return spy.program0 > 0;
}

static bool identify_finished;
static int identify_result;
static void identify_cb(Node *n, int r)
{
        identify_finished = true;
        identify_result = r;
}

/* Cancelled once the whole image is in C (the CRC word programmed, PROGRAM 0 on its way) and before
 * DISCONNECT(end): C is erased before the node is reported cancelled, so a power cycle does not
 * install the cancelled image. The second time canfleetd stops while erasing and a new one finishes
 * the cancel. */
static void test_cancel_staged(void)
{
        for (int restart = 0; restart < 2; restart++) {
                struct c2_case c;
                c2_begin(&c, 6000, 10, 0, 0, false);
                Job *j = update_node1(c.m, c.image);
                FlashJob *f = &j->nodes[0];
                run(c.m, crc_word_written);
                CU_ASSERT_EQUAL_FATAL(f->step, STEP_PROGRAMMING);
                CU_ASSERT_TRUE(f->staged);
                CU_ASSERT_EQUAL(job_cancel(j), 0);
                CU_ASSERT_EQUAL(f->step, STEP_CANCELLING);
                CU_ASSERT_EQUAL(j->state, JOB_RUNNING);
                if (restart) {
                        spy.defer = sd_event_source_disable_unref(spy.defer);
                        manager_free(c.m);
                        sd_event_unref(c.e);
                        CU_ASSERT_EQUAL_FATAL(sd_event_new(&c.e), 0);
                        c.m = new_manager(c.e);
                        j = manager_find_job(c.m, 1);
                        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
                        f = &j->nodes[0];
                        CU_ASSERT_EQUAL(f->step, STEP_CANCELLING);
                        spy_on(c.m, 0, 0, false);
                }
                run(c.m, NULL);
                report(f);
                CU_ASSERT_EQUAL(j->state, JOB_CANCELLED);
                CU_ASSERT_EQUAL(f->step, STEP_CANCELLED);
                CU_ASSERT_EQUAL(spy.clears, restart ? 1 : 2);
                CU_ASSERT_STRING_EQUAL(node(c.m, "bus0:1")->state, "online");
                spy.defer = sd_event_source_disable_unref(spy.defer);
                manager_free(c.m);
                sd_event_unref(c.e);

                /* Power cycle: the boot sequence finds no valid C; the node runs 1.0.0. */
                stop_sim();
                start_sim(n_sim_nodes, false);
                CU_ASSERT_EQUAL_FATAL(sd_event_new(&c.e), 0);
                c.m = new_manager(c.e);
                Node *n = node(c.m, "bus0:1");
                identify_finished = false;
                CU_ASSERT_EQUAL_FATAL(node_identify(n, true, identify_cb), 0);
                while (!identify_finished)
                        CU_ASSERT_FATAL(sd_event_run(c.e, UINT64_MAX) >= 0);
                CU_ASSERT_EQUAL(identify_result, 0);
                CU_ASSERT_STRING_EQUAL(n->version, "1.0.0");
                CU_ASSERT_EQUAL(n->last_update, CF_UPDATE_NONE);
                spy.defer = NULL;
                c2_end(&c);
        }
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"update one node over slcan, confirmed", test_update_one_node},
            {"a job resumes after the daemon stops mid-transfer", test_resume},
            {"8 nodes on a saturated bus are all updated", test_saturated_bus_is_fair},
            {"a C2 answer mid-transfer: new session, update done", test_c2_reinitialises},
            {"a C2 answer after the group pass: rejoined, completed from GAP, erased once", test_c2_group},
            {"a session lost in the group repair: rejoined, completed from GAP, erased once",
             test_lost_session_group},
            {"four C2 answers in a row fail the node", test_c2_bounded},
            {"a C2 answer to DISCONNECT(end): confirmed, not restaged", test_c2_at_disconnect},
            {"a C2 answer to DISCONNECT(end) not taken: restaged or cancelled",
             test_c2_at_disconnect_not_taken},
            {"a cancel after the CRC word erases C: the power cycle keeps the old image",
             test_cancel_staged},
            {NULL, NULL},
        };
        signal(SIGPIPE, SIG_IGN);
        int r = cf_test_run("daemon-engine", tests);
        stop_sim();
        return r;
}
