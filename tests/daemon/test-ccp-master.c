/* Tests of daemon/ccp-master.c against a fake transport and a scripted slave: time-outs, counters, C1
 * retries, C2 answers, lost PROGRAM answers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ccp-master.h"
#include "cf-test.h"

#define MAX_FRAMES 64

enum behaviour {
        SILENT,      /* never answers */
        OK,          /* answers every CRO with OK */
        WRONG_CTR,   /* first a stale answer (other counter, other data), then the right one */
        BUSY_ONCE,   /* BUSY to the first try, then OK */
        BUSY_ALWAYS, /* BUSY every time */
        LOCKED,      /* ACCESS_LOCKED */
        C2,          /* the error code in fake.c2 (a C2 code: "re-initialise") */
        LATE,        /* answers OK, fake.late_us after each CRO */
        FLASH,       /* a slave with an MTA and erased flash; lenient: rewriting equal bytes is fine */
        FLASH_STRICT /* same, but programming bytes that are not erased answers ACCESS_DENIED */
};

struct fake {
        CanTransport t;
        enum behaviour how;
        uint8_t sent[MAX_FRAMES][8];
        size_t n_sent;
        unsigned drop_program_answers; /* lose the next N answers to PROGRAM/PROGRAM_6 (after writing) */
        uint8_t c2;                    /* FLASH*: answer the next SET_MTA with this code (0: never) */
        uint32_t mta;
        uint8_t flash[64];
        struct cf_can_frame queue[4];
        size_t n_queue;
        sd_event_source *defer;
        uint64_t late_us;
};

struct result {
        bool done;
        int r;
        struct cf_ccp_dto reply;
        unsigned calls;
};

static CcpSession *session;

static int deliver(sd_event_source *s, void *userdata)
{
        struct fake *f = userdata;
        size_t n = f->n_queue;
        struct cf_can_frame q[4];
        memcpy(q, f->queue, sizeof q);
        f->n_queue = 0;
        for (size_t i = 0; i < n; i++)
                can_transport_deliver(&f->t, &q[i]);
        return 0;
}

static int deliver_late(sd_event_source *s, uint64_t usec, void *userdata)
{
        return deliver(NULL, userdata);
}

static void answer(struct fake *f, uint8_t err, uint8_t ctr, const uint8_t *data, uint8_t n)
{
        struct cf_can_frame fr = {.id = 0x6C3, .dlc = 8};
        cf_ccp_dto_reply(fr.data, err, ctr, data, n);
        f->queue[f->n_queue++] = fr;
        sd_event_source_set_enabled(f->defer, SD_EVENT_ONESHOT);
}

static void answer_mta(struct fake *f, uint8_t err, uint8_t ctr)
{
        struct cf_can_frame fr = {.id = 0x6C3, .dlc = 8};
        cf_ccp_dto_reply_mta(fr.data, err, ctr, 3, f->mta);
        f->queue[f->n_queue++] = fr;
        sd_event_source_set_enabled(f->defer, SD_EVENT_ONESHOT);
}

static void flash_slave(struct fake *f, const uint8_t *c)
{
        uint8_t cmd = c[0], ctr = c[1];
        switch (cmd) {
        case CF_CCP_SET_MTA:
                if (f->c2) {
                        answer(f, f->c2, ctr, NULL, 0);
                        f->c2 = 0;
                        return;
                }
                f->mta = cf_be32_get(c + 4);
                answer(f, 0, ctr, NULL, 0);
                return;
        case CF_CCP_SHORT_UP: {
                uint32_t a = cf_be32_get(c + 4);
                answer(f, 0, ctr, f->flash + a, c[2]);
                return;
        }
        case CF_CCP_PROGRAM:
        case CF_CCP_PROGRAM_6: {
                const uint8_t *d = cmd == CF_CCP_PROGRAM_6 ? c + 2 : c + 3;
                uint8_t n = cmd == CF_CCP_PROGRAM_6 ? 6 : c[2];
                for (uint8_t i = 0; i < n; i++)
                        if (f->flash[f->mta + i] != 0xFF &&
                            (f->how == FLASH_STRICT || f->flash[f->mta + i] != d[i])) {
                                answer_mta(f, CF_CCP_ERR_ACCESS_DENIED, ctr);
                                return;
                        }
                memcpy(f->flash + f->mta, d, n);
                f->mta += n;
                if (f->drop_program_answers > 0) {
                        f->drop_program_answers--;
                        return;
                }
                answer_mta(f, 0, ctr);
                return;
        }
        default:
                answer(f, 0, ctr, NULL, 0);
        }
}

static int fake_send(CanTransport *t, const struct cf_can_frame *fr)
{
        struct fake *f = (struct fake *) t;
        CU_ASSERT_EQUAL(fr->id, 0x683);
        CU_ASSERT_EQUAL(fr->dlc, 8);
        if (f->n_sent < MAX_FRAMES)
                memcpy(f->sent[f->n_sent++], fr->data, 8);
        uint8_t ctr = fr->data[1];
        static const uint8_t marker[5] = {0xAA, 0xBB, 0xCC, 0xDD, 0xEE};
        switch (f->how) {
        case SILENT:
                break;
        case OK:
                answer(f, 0, ctr, marker, 5);
                break;
        case WRONG_CTR:
                answer(f, 0, (uint8_t) (ctr - 1), NULL, 0);
                answer(f, 0, (uint8_t) (ctr + 1), NULL, 0);
                answer(f, 0, ctr, marker, 5);
                break;
        case BUSY_ONCE:
                answer(f, f->n_sent == 1 ? CF_CCP_ERR_BUSY : 0, ctr, marker, 5);
                break;
        case BUSY_ALWAYS:
                answer(f, CF_CCP_ERR_BUSY, ctr, NULL, 0);
                break;
        case LOCKED:
                answer(f, CF_CCP_ERR_ACCESS_LOCKED, ctr, NULL, 0);
                break;
        case LATE: {
                struct cf_can_frame a = {.id = 0x6C3, .dlc = 8};
                cf_ccp_dto_reply(a.data, 0, ctr, marker, 5);
                f->queue[f->n_queue++] = a;
                uint64_t now;
                sd_event_now(f->t.event, CLOCK_MONOTONIC, &now);
                CU_ASSERT_EQUAL(sd_event_add_time(f->t.event, NULL, CLOCK_MONOTONIC, now + f->late_us, 0,
                                                  deliver_late, f),
                                0);
                break;
        }
        case C2:
                answer(f, f->c2, ctr, NULL, 0);
                break;
        case FLASH:
        case FLASH_STRICT:
                flash_slave(f, fr->data);
                break;
        }
        return 0;
}

static void fake_free(CanTransport *t)
{
}

static const struct can_transport_ops fake_ops = {.send = fake_send, .free = fake_free};

static void on_frame(CanTransport *t, const struct cf_can_frame *f, void *userdata)
{
        ccp_session_handle_frame(session, f);
}

static void done_cb(CcpSession *s, int r, const struct cf_ccp_dto *reply, void *userdata)
{
        struct result *res = userdata;
        res->done = true;
        res->r = r;
        res->calls++;
        if (reply)
                res->reply = *reply;
}

static int on_guard(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct result *res = userdata;
        CU_FAIL("the session never finished");
        res->done = true;
        return 0;
}

static sd_event *event;
static struct fake fake;
static struct result res;
static struct ccp_bus_load load;

static void setup(enum behaviour how)
{
        CU_ASSERT_EQUAL_FATAL(sd_event_new(&event), 0);
        memset(&fake, 0, sizeof fake);
        memset(&res, 0, sizeof res);
        memset(fake.flash, 0xFF, sizeof fake.flash);
        load = (struct ccp_bus_load){.frame_us = 250};
        fake.t.ops = &fake_ops;
        fake.t.event = event;
        fake.t.state = CF_LINK_UP;
        fake.t.on_frame = on_frame;
        fake.how = how;
        CU_ASSERT_EQUAL_FATAL(sd_event_add_defer(event, &fake.defer, deliver, &fake), 0);
        sd_event_source_set_enabled(fake.defer, SD_EVENT_OFF);
        CU_ASSERT_EQUAL_FATAL(ccp_session_new(event, &fake.t, &load, "bus0:3", 0x683, 0x6C3, 3, 3, &session),
                              0);
        ccp_session_set_callback(session, done_cb, &res);
}

/* Run until the session's callback; the guard turns a hang into a failure. */
static void run(void)
{
        sd_event_source *guard;
        uint64_t now;
        sd_event_now(event, CLOCK_MONOTONIC, &now);
        CU_ASSERT_EQUAL_FATAL(
            sd_event_add_time(event, &guard, CLOCK_MONOTONIC, now + 10000000, 0, on_guard, &res), 0);
        while (!res.done)
                CU_ASSERT_FATAL(sd_event_run(event, UINT64_MAX) >= 0);
        sd_event_source_disable_unref(guard);
        /* Let any late answer arrive: it must not call back again. */
        for (int i = 0; i < 3; i++)
                sd_event_run(event, 0);
}

static void teardown(void)
{
        session = ccp_session_free(session);
        sd_event_source_disable_unref(fake.defer);
        event = sd_event_unref(event);
        CU_ASSERT_EQUAL(load.in_flight, 0);
}

static void test_timeout_retry_fail(void)
{
        uint8_t cro[8];
        setup(SILENT);
        cf_ccp_cro_connect(cro, 0, 3);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), -EBUSY);
        run();
        CU_ASSERT_EQUAL(res.r, -ETIMEDOUT);
        CU_ASSERT_EQUAL(res.calls, 1);
        CU_ASSERT_EQUAL(fake.n_sent, 3);
        for (size_t i = 0; i < fake.n_sent; i++) {
                CU_ASSERT_EQUAL(fake.sent[i][0], CF_CCP_CONNECT);
                CU_ASSERT_EQUAL(fake.sent[i][2], 3);
        }
        /* every try has a fresh counter */
        CU_ASSERT_NOT_EQUAL(fake.sent[0][1], fake.sent[1][1]);
        CU_ASSERT_NOT_EQUAL(fake.sent[1][1], fake.sent[2][1]);
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session), "bus0:3: no answer to CONNECT after 3 tries");
        CU_ASSERT_EQUAL(ccp_session_timeouts(session), 3);
        teardown();

        setup(SILENT);
        uint8_t d[6] = {1, 2, 3, 4, 5, 6};
        CU_ASSERT_EQUAL(ccp_program(session, 3, 0x12340, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -ETIMEDOUT);
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session),
                               "bus0:3: no answer to PROGRAM_6 at 0x00012340 after 3 tries");
        teardown();
}

static void test_wrong_counter_ignored(void)
{
        uint8_t cro[8];
        setup(WRONG_CTR);
        cf_ccp_cro_exchange_id(cro, 0);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(res.calls, 1);
        CU_ASSERT_EQUAL(fake.n_sent, 1);
        CU_ASSERT_EQUAL(res.reply.ctr, fake.sent[0][1]);
        CU_ASSERT_EQUAL(res.reply.data[0], 0xAA);
        CU_ASSERT_EQUAL(res.reply.data[4], 0xEE);
        teardown();
}

static void test_busy_retried(void)
{
        uint8_t cro[8];
        setup(BUSY_ONCE);
        cf_ccp_cro_get_seed(cro, 0, CF_CCP_RES_PGM);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(fake.n_sent, 2);
        CU_ASSERT_EQUAL(fake.sent[1][0], CF_CCP_GET_SEED);
        CU_ASSERT_NOT_EQUAL(fake.sent[0][1], fake.sent[1][1]);
        CU_ASSERT_EQUAL(ccp_session_timeouts(session), 0);
        teardown();

        setup(BUSY_ALWAYS);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -EBUSY);
        CU_ASSERT_EQUAL(fake.n_sent, 3); /* the try and 2 retries */
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session),
                               "bus0:3: GET_SEED: node still busy after 3 tries");
        teardown();
}

static void test_refusal_message(void)
{
        uint8_t cro[8], key[6] = {0};
        setup(LOCKED);
        cf_ccp_cro_unlock(cro, 0, key);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 1, UINT32_MAX), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -EPROTO);
        CU_ASSERT_EQUAL(res.reply.err, CF_CCP_ERR_ACCESS_LOCKED);
        CU_ASSERT_EQUAL(fake.n_sent, 1);
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session),
                               "bus0:3: UNLOCK refused: access locked (wrong fleet key?)");
        teardown();
}

/* C2: neither retried like C1 nor a refusal like C3; the owner is told to start a new session. */
static void test_c2_reinit(void)
{
        static const uint8_t codes[] = {CF_CCP_ERR_COLD_START, CF_CCP_ERR_CAL_INIT, CF_CCP_ERR_DAQ_INIT,
                                        CF_CCP_ERR_CODE_UPDATE};
        uint8_t cro[8];
        for (size_t i = 0; i < sizeof codes; i++) {
                setup(C2);
                fake.c2 = codes[i];
                cf_ccp_cro_clear_memory(cro, 0, 0x40000);
                CU_ASSERT_EQUAL(ccp_request(session, cro, 0, 0), 0);
                run();
                CU_ASSERT_EQUAL(res.r, -ECONNRESET);
                CU_ASSERT_EQUAL(res.calls, 1);
                CU_ASSERT_EQUAL(res.reply.err, codes[i]);
                CU_ASSERT_EQUAL(fake.n_sent, 1);
                CU_ASSERT_EQUAL(ccp_session_timeouts(session), 0);
                CU_ASSERT_PTR_NOT_NULL(strstr(ccp_session_error(session), cf_ccp_err_str(codes[i])));
                teardown();
        }
        setup(C2);
        fake.c2 = CF_CCP_ERR_COLD_START;
        cf_ccp_cro_set_mta(cro, 0, 0, 3, 0x100);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, 0x100), 0);
        run();
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session),
                               "bus0:3: SET_MTA at 0x00000100: the node asks for a new session (cold start "
                               "requested, error 0x20)");
        teardown();

        /* A C2 to the SET_MTA before retrying a PROGRAM whose answer was lost ends the request the
         * same way: the session, not the chunk, is what has to start again. */
        static const uint8_t d[6] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
        setup(FLASH);
        fake.mta = 16;
        fake.drop_program_answers = 1;
        fake.c2 = 0;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 16, d, 6), 0);
        fake.c2 = CF_CCP_ERR_CODE_UPDATE; /* for the SET_MTA that restores the MTA */
        run();
        CU_ASSERT_EQUAL(res.r, -ECONNRESET);
        CU_ASSERT_EQUAL(res.reply.err, CF_CCP_ERR_CODE_UPDATE);
        CU_ASSERT_EQUAL_FATAL(fake.n_sent, 2);
        CU_ASSERT_EQUAL(fake.sent[0][0], CF_CCP_PROGRAM_6);
        CU_ASSERT_EQUAL(fake.sent[1][0], CF_CCP_SET_MTA);
        CU_ASSERT_STRING_EQUAL(
            ccp_session_error(session),
            "bus0:3: PROGRAM_6 at 0x00000010: the node asks for a new session (code update "
            "requested, error 0x23)");
        teardown();
}

static void test_program_ok(void)
{
        uint8_t d[6] = {1, 2, 3, 4, 5, 6};
        setup(FLASH);
        fake.mta = 8;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 8, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&res.reply), 14);
        CU_ASSERT_EQUAL(fake.n_sent, 1);
        CU_ASSERT_EQUAL(memcmp(fake.flash + 8, d, 6), 0);
        teardown();

        /* A node whose MTA is not where we think is caught at once. */
        setup(FLASH);
        fake.mta = 9;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 8, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -EPROTO);
        CU_ASSERT_STRING_EQUAL(
            ccp_session_error(session),
            "bus0:3: PROGRAM_6 at 0x00000008: the node's MTA is 0x0000000F after it, expected 0x0000000E");
        teardown();
}

static void expect_frame(size_t i, uint8_t cmd, const uint8_t *rest, size_t n)
{
        CU_ASSERT_EQUAL_FATAL(fake.sent[i][0], cmd);
        CU_ASSERT_EQUAL(memcmp(&fake.sent[i][2], rest, n), 0);
}

static void test_lost_program_answer(void)
{
        static const uint8_t d[6] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
        static const uint8_t set_mta_16[6] = {0x00, 0x03, 0x00, 0x00, 0x00, 0x10};
        static const uint8_t set_mta_22[6] = {0x00, 0x03, 0x00, 0x00, 0x00, 0x16};
        static const uint8_t short_up_16[6] = {0x05, 0x03, 0x00, 0x00, 0x00, 0x10};
        static const uint8_t short_up_21[6] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x15};

        /* A slave that accepts the same bytes again: PROGRAM_6, (answer lost) SET_MTA, PROGRAM_6. */
        setup(FLASH);
        fake.mta = 16;
        fake.drop_program_answers = 1;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 16, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL_FATAL(fake.n_sent, 3);
        expect_frame(0, CF_CCP_PROGRAM_6, d, 6);
        expect_frame(1, CF_CCP_SET_MTA, set_mta_16, 6);
        expect_frame(2, CF_CCP_PROGRAM_6, d, 6);
        CU_ASSERT_EQUAL(fake.mta, 22);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&res.reply), 22);
        CU_ASSERT_EQUAL(memcmp(fake.flash + 16, d, 6), 0);
        teardown();

        /* A slave that refuses to program bytes that are not erased: the retry is refused, the chunk
         * is read back, found written, and MTA set past it. */
        setup(FLASH_STRICT);
        fake.mta = 16;
        fake.drop_program_answers = 1;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 16, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL_FATAL(fake.n_sent, 6);
        expect_frame(0, CF_CCP_PROGRAM_6, d, 6);
        expect_frame(1, CF_CCP_SET_MTA, set_mta_16, 6);
        expect_frame(2, CF_CCP_PROGRAM_6, d, 6);
        expect_frame(3, CF_CCP_SHORT_UP, short_up_16, 6);
        expect_frame(4, CF_CCP_SHORT_UP, short_up_21, 6);
        expect_frame(5, CF_CCP_SET_MTA, set_mta_22, 6);
        CU_ASSERT_EQUAL(fake.mta, 22);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&res.reply), 22);
        teardown();

        /* The chunk's bytes differ from what we sent: a real refusal, not a lost answer. */
        setup(FLASH_STRICT);
        fake.mta = 16;
        fake.drop_program_answers = 1;
        fake.flash[17] = 0x00; /* not erased, and not ours */
        CU_ASSERT_EQUAL(ccp_program(session, 3, 16, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -EPROTO);
        CU_ASSERT_EQUAL(fake.n_sent, 1);
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session),
                               "bus0:3: PROGRAM_6 at 0x00000010 refused: access denied (flash not erased)");
        teardown();
}

static void test_link_down_pauses(void)
{
        uint8_t cro[8];
        setup(OK);
        fake.t.state = CF_LINK_DOWN;
        ccp_session_link(session, false);
        cf_ccp_cro_connect(cro, 0, 3);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        /* Nothing can be sent and nothing times out while the link is down. */
        for (int i = 0; i < 3; i++)
                sd_event_run(event, 30000);
        CU_ASSERT_FALSE(res.done);
        CU_ASSERT_EQUAL(fake.n_sent, 0);
        CU_ASSERT_EQUAL(ccp_session_timeouts(session), 0);
        fake.t.state = CF_LINK_UP;
        ccp_session_link(session, true);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(fake.n_sent, 1);
        teardown();
}

/* A node (or adapter) that answers every request 400 ms late: lost with CCP's 25 ms time-out (and
 * the gate's hold windows); with reply_timeout_ms 1000 each answer is in time and one try does. The fake's answer and the session's
 * time-out are timers of one loop, so their order does not depend on the machine's speed. */
static void test_min_timeout(void)
{
        uint8_t cro[8];
        setup(LATE);
        fake.late_us = 400000;
        cf_ccp_cro_connect(cro, 0, 3);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -ETIMEDOUT);
        CU_ASSERT_EQUAL(fake.n_sent, 3);
        teardown();

        setup(LATE);
        fake.late_us = 400000;
        ccp_session_set_min_timeout(session, 1000000);
        for (int i = 0; i < 3; i++) {
                res.done = false;
                cf_ccp_cro_connect(cro, 0, 3);
                CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
                run();
                CU_ASSERT_EQUAL(res.r, 0);
        }
        CU_ASSERT_EQUAL(fake.n_sent, 3); /* one try each */
        CU_ASSERT_EQUAL(ccp_session_timeouts(session), 0);

        /* a probe keeps CCP's own time-out: one try, lost */
        res.done = false;
        cf_ccp_cro_connect(cro, 0, 3);
        CU_ASSERT_EQUAL(ccp_probe(session, cro), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -ETIMEDOUT);
        CU_ASSERT_EQUAL(fake.n_sent, 4);
        teardown();
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"time-out, retry, fail with a message", test_timeout_retry_fail},
            {"a DTO with a wrong counter is ignored", test_wrong_counter_ignored},
            {"busy is waited for and retried", test_busy_retried},
            {"a refusal gets a clear message", test_refusal_message},
            {"C2 asks the owner to re-initialise", test_c2_reinit},
            {"reply_timeout_ms: a late answer is waited for", test_min_timeout},
            {"PROGRAM answer carries the MTA", test_program_ok},
            {"lost PROGRAM answer: SET_MTA before the retry", test_lost_program_answer},
            {"link down pauses the session", test_link_down_pauses},
            {NULL, NULL},
        };
        return cf_test_run("daemon-ccp-master", tests);
}
