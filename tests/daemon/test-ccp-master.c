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
        FLASH_STRICT, /* same, but programming bytes that are not erased answers ACCESS_DENIED */
        BUSY_N,       /* BUSY to the first fake.busy_n tries, then OK */
        LONG_OP,      /* never answers the long command; answers CONNECT with BUSY fake.busy_n times,
                       * then OK (a node that lost power while erasing) */
        STALLED,      /* answers OK, except to CROs sent before fake.stall_until (the adapter stalls) */
        ANSWER_FN     /* answers with fake.answer_fn */
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
        struct cf_can_frame queue[8];
        size_t n_queue;
        sd_event_source *defer;
        uint64_t late_us;
        uint32_t base;               /* FLASH*: the address of flash[0] */
        unsigned drop_set_mta_answers; /* FLASH*: lose the next N answers to SET_MTA */
        bool c2_sticky;              /* FLASH*: answer every SET_MTA with c2 */
        unsigned corrupt_mta;        /* FLASH*: the next N answers to PROGRAM carry a wrong MTA */
        unsigned busy_n;
        uint64_t stall_until;
        void (*answer_fn)(struct fake *f, const uint8_t *cro);
        unsigned calls;
};

struct result {
        bool done;
        int r;
        struct cf_ccp_dto reply;
        unsigned calls;
};

static CcpSession *session, *session2;

static int deliver(sd_event_source *s, void *userdata)
{
        struct fake *f = userdata;
        size_t n = f->n_queue;
        struct cf_can_frame q[8];
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

static uint32_t answer_id = 0x6C3; /* the DTO id of the CRO being answered */

static void answer(struct fake *f, uint8_t err, uint8_t ctr, const uint8_t *data, uint8_t n)
{
        struct cf_can_frame fr = {.id = answer_id, .dlc = 8};
        cf_ccp_dto_reply(fr.data, err, ctr, data, n);
        f->queue[f->n_queue++] = fr;
        sd_event_source_set_enabled(f->defer, SD_EVENT_ONESHOT);
}

static void answer_mta(struct fake *f, uint8_t err, uint8_t ctr)
{
        struct cf_can_frame fr = {.id = answer_id, .dlc = 8};
        uint32_t mta = f->mta;
        if (err == 0 && f->corrupt_mta > 0) {
                f->corrupt_mta--;
                mta ^= 0x100; /* one bit flipped on the line */
        }
        cf_ccp_dto_reply_mta(fr.data, err, ctr, 3, mta);
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
                        if (!f->c2_sticky)
                                f->c2 = 0;
                        return;
                }
                if (cf_be32_get(c + 4) >= 0x40000) {
                        /* as the node did before it took the end of the area */
                        answer(f, CF_CCP_ERR_OUT_OF_RANGE, ctr, NULL, 0);
                        return;
                }
                f->mta = cf_be32_get(c + 4) - f->base;
                if (f->drop_set_mta_answers > 0) {
                        f->drop_set_mta_answers--;
                        return;
                }
                answer(f, 0, ctr, NULL, 0);
                return;
        case CF_CCP_SHORT_UP: {
                uint32_t a = cf_be32_get(c + 4) - f->base;
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
                f->mta += f->base;
                answer_mta(f, 0, ctr);
                f->mta -= f->base;
                return;
        }
        default:
                answer(f, 0, ctr, NULL, 0);
        }
}

static int fake_send(CanTransport *t, const struct cf_can_frame *fr)
{
        struct fake *f = (struct fake *) t;
        CU_ASSERT(fr->id == 0x683 || fr->id == 0x684);
        CU_ASSERT_EQUAL(fr->dlc, 8);
        answer_id = fr->id + 0x40;
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
        case BUSY_N:
                answer(f, f->calls++ < f->busy_n ? CF_CCP_ERR_BUSY : 0, ctr, marker, 5);
                break;
        case LONG_OP:
                if (fr->data[0] == CF_CCP_CONNECT)
                        answer(f, f->calls++ < f->busy_n ? CF_CCP_ERR_BUSY : 0, ctr, NULL, 0);
                break;
        case STALLED: {
                uint64_t now;
                sd_event_now(f->t.event, CLOCK_MONOTONIC, &now);
                if (now >= f->stall_until)
                        answer(f, 0, ctr, marker, 5);
                break;
        }
        case ANSWER_FN:
                f->answer_fn(f, fr->data);
                break;
        }
        return 0;
}

static void fake_free(CanTransport *t)
{
}

static const struct can_transport_ops fake_ops = {.send = fake_send, .free = fake_free};

static struct ccp_bus_load load;

static void on_frame(CanTransport *t, const struct cf_can_frame *f, void *userdata)
{
        uint64_t now;
        sd_event_now(t->event, CLOCK_MONOTONIC, &now);
        ccp_bus_frame_received(&load, now);
        if (f->id == 0x6C4 && session2)
                ccp_session_handle_frame(session2, f);
        else if (f->id == 0x6C3)
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
        session2 = ccp_session_free(session2);
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
        /* the PROGRAM's first try and the recovery's SET_MTA, tried 3 times, named as such */
        CU_ASSERT_EQUAL(fake.n_sent, 4);
        CU_ASSERT_STRING_EQUAL(
            ccp_session_error(session),
            "bus0:3: no answer to SET_MTA (recovering a lost answer to PROGRAM_6 at 0x00012340) after 3 tries");
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

        /* BUSY is polled, not tried 3 times: a node erasing C answers BUSY for seconds. */
        setup(BUSY_N);
        fake.busy_n = 8;
        cf_ccp_cro_connect(cro, 0, 3);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(fake.n_sent, 9);
        CU_ASSERT_EQUAL(ccp_session_timeouts(session), 0);
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
                CU_ASSERT_EQUAL(fake.n_sent, 2); /* believed when said twice */
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
         * same way (when the node says it twice): the session, not the chunk, is what has to start
         * again; the message names the PROGRAM. */
        static const uint8_t d[6] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
        setup(FLASH);
        fake.mta = 16;
        fake.drop_program_answers = 1;
        fake.c2_sticky = true;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 16, d, 6), 0);
        fake.c2 = CF_CCP_ERR_CODE_UPDATE; /* for the SET_MTA that restores the MTA */
        run();
        CU_ASSERT_EQUAL(res.r, -ECONNRESET);
        CU_ASSERT_EQUAL(res.reply.err, CF_CCP_ERR_CODE_UPDATE);
        CU_ASSERT_EQUAL_FATAL(fake.n_sent, 3);
        CU_ASSERT_EQUAL(fake.sent[0][0], CF_CCP_PROGRAM_6);
        CU_ASSERT_EQUAL(fake.sent[1][0], CF_CCP_SET_MTA);
        CU_ASSERT_EQUAL(fake.sent[2][0], CF_CCP_SET_MTA);
        CU_ASSERT_STRING_EQUAL(
            ccp_session_error(session),
            "bus0:3: PROGRAM_6 at 0x00000010: the node asks for a new session (code update "
            "requested, error 0x23)");
        teardown();

        /* Said once (a corrupted OK): asked again, and the request goes on. */
        setup(FLASH);
        fake.mta = 16;
        fake.drop_program_answers = 1;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 16, d, 6), 0);
        fake.c2 = CF_CCP_ERR_COLD_START;
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL_FATAL(fake.n_sent, 4);
        CU_ASSERT_EQUAL(fake.sent[2][0], CF_CCP_SET_MTA);
        CU_ASSERT_EQUAL(fake.sent[3][0], CF_CCP_PROGRAM_6);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&res.reply), 22);
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

        /* An answer whose MTA is not the chunk's end (a bit flipped on the line) is a lost one: the
         * MTA is put back and the chunk sent again. */
        setup(FLASH);
        fake.mta = 8;
        fake.corrupt_mta = 1;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 8, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&res.reply), 14);
        CU_ASSERT_EQUAL_FATAL(fake.n_sent, 3);
        CU_ASSERT_EQUAL(fake.sent[1][0], CF_CCP_SET_MTA);
        CU_ASSERT_EQUAL(ccp_session_implausible(session), 1);
        teardown();

        /* ... and when it never makes sense, the request ends naming that. */
        setup(FLASH);
        fake.mta = 8;
        fake.corrupt_mta = 100;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 8, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -EPROTO);
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session),
                               "bus0:3: no plausible answer to PROGRAM_6 at 0x00000008 after 3 tries");
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
        /* refused, asked again after restoring the MTA, refused, read back twice */
        CU_ASSERT_EQUAL(fake.n_sent, 5);
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session),
                               "bus0:3: PROGRAM_6 at 0x00000010 refused: access denied (flash not erased); "
                               "retried after restoring the MTA and read back twice: the bytes in flash are "
                               "not ours");
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

/* Every exchange has its own tries: a PROGRAM whose answer is lost, then whose recovery SET_MTA
 * loses 2 answers, still succeeds, and so does a PROGRAM lost twice with lossy recoveries. With
 * the 3 tries shared (the old model) both failed. */
static void test_budgets(void)
{
        static const uint8_t d[6] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
        setup(FLASH_STRICT);
        fake.mta = 16;
        fake.drop_program_answers = 1;
        fake.drop_set_mta_answers = 2;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 16, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&res.reply), 22);
        /* PROGRAM_6, 3 × SET_MTA, PROGRAM_6 (refused), 2 × SHORT_UP, SET_MTA past it */
        CU_ASSERT_EQUAL(fake.n_sent, 8);
        CU_ASSERT_EQUAL(ccp_session_timeouts(session), 3);
        teardown();

        /* A slave that takes equal bytes again: the PROGRAM's answer is lost twice, the first
         * recovery loses 2 of its SET_MTA's answers: 3 PROGRAMs and 4 SET_MTAs, and it succeeds. */
        setup(FLASH);
        fake.mta = 16;
        fake.drop_program_answers = 2;
        fake.drop_set_mta_answers = 2;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 16, d, 6), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&res.reply), 22);
        CU_ASSERT_EQUAL(fake.n_sent, 7);
        teardown();
}

static bool marker_plausible(const uint8_t cro[8], const struct cf_ccp_dto *d)
{
        return d->data[0] == 0xAA;
}

static void corrupt_first_answer(struct fake *f, const uint8_t *cro)
{
        static const uint8_t good[5] = {0xAA, 0xBB, 0xCC, 0xDD, 0xEE};
        static const uint8_t bad[5] = {0xAB, 0xBB, 0xCC, 0xDD, 0xEE};
        if (cro[0] == CF_CCP_BUILD_CHKSUM) {
                uint8_t c[5] = {f->calls++ == 0 ? 5 : 4, 0x12, 0x34, 0x56, 0x78};
                answer(f, 0, cro[1], c, 5);
                return;
        }
        answer(f, 0, cro[1], f->calls++ == 0 ? bad : good, 5);
}

static void lock_first_answer(struct fake *f, const uint8_t *cro)
{
        answer(f, f->calls++ == 0 ? CF_CCP_ERR_ACCESS_LOCKED : 0, cro[1], NULL, 0);
}

/* Implausible answers are lost answers: BUILD_CHKSUM with a checksum size that is not 4, an answer
 * the owner's check rejects; an error code said once is asked again. */
static void test_implausible(void)
{
        uint8_t cro[8];
        setup(ANSWER_FN);
        fake.answer_fn = corrupt_first_answer;
        cf_ccp_cro_build_chksum(cro, 0, 0x40000);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, 0), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(fake.n_sent, 2);
        CU_ASSERT_EQUAL(cf_ccp_dto_chksum(&res.reply), 0x12345678);
        CU_ASSERT_EQUAL(ccp_session_implausible(session), 1);
        teardown();

        setup(ANSWER_FN);
        fake.answer_fn = corrupt_first_answer;
        cf_ccp_cro_short_up(cro, 0, 5, 1, 0);
        CU_ASSERT_EQUAL(ccp_request_check(session, cro, 0, 0, marker_plausible), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(fake.n_sent, 2);
        CU_ASSERT_EQUAL(res.reply.data[0], 0xAA);
        teardown();

        setup(ANSWER_FN);
        fake.answer_fn = lock_first_answer;
        cf_ccp_cro_clear_memory(cro, 0, 0x40000);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, 0), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(fake.n_sent, 2);
        teardown();
}

/* The lost answer to the area's last PROGRAM (the CRC word at 0x3FFFC): the retry is refused (the
 * word is written), the word is read back, and the request succeeds without a SET_MTA to 0x40000,
 * which a node may refuse as out of range. */
static void test_lost_last_program(void)
{
        static const uint8_t crc[4] = {0xF6, 0xA3, 0x27, 0x63};
        static const uint8_t set_mta_last[6] = {0x00, 0x03, 0x00, 0x03, 0xFF, 0xFC};
        static const uint8_t short_up_last[6] = {0x04, 0x03, 0x00, 0x03, 0xFF, 0xFC};
        setup(FLASH_STRICT);
        fake.base = 0x3FFC0;
        fake.mta = 0x3C;
        fake.drop_program_answers = 1;
        CU_ASSERT_EQUAL(ccp_program(session, 3, 0x3FFFC, crc, 4), 0);
        run();
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(cf_ccp_dto_mta(&res.reply), 0x40000);
        CU_ASSERT_EQUAL_FATAL(fake.n_sent, 4);
        CU_ASSERT_EQUAL(fake.sent[0][0], CF_CCP_PROGRAM);
        expect_frame(1, CF_CCP_SET_MTA, set_mta_last, 6);
        CU_ASSERT_EQUAL(fake.sent[2][0], CF_CCP_PROGRAM);
        expect_frame(3, CF_CCP_SHORT_UP, short_up_last, 6);
        CU_ASSERT_EQUAL(memcmp(fake.flash + 0x3C, crc, 4), 0);
        teardown();
}

/* A node that loses power while erasing never answers CLEAR_MEMORY; the CONNECT asked on the side
 * finds it busy, then (back without a session) answering OK: the request ends long before CCP's
 * 30 s time-out, as a lost session. */
static void test_liveness_probe(void)
{
        uint8_t cro[8];
        setup(LONG_OP);
        fake.busy_n = 1;
        cf_ccp_cro_clear_memory(cro, 0, 0x40000);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, 0), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -ECONNRESET);
        CU_ASSERT_EQUAL(fake.n_sent, 3); /* CLEAR_MEMORY, CONNECT (busy), CONNECT (ok) */
        CU_ASSERT_EQUAL(fake.sent[1][0], CF_CCP_CONNECT);
        CU_ASSERT_EQUAL(fake.sent[1][2], 3);
        CU_ASSERT_EQUAL(ccp_session_timeouts(session), 0);
        CU_ASSERT_STRING_EQUAL(ccp_session_error(session),
                               "bus0:3: CLEAR_MEMORY at 0x00000000: the node answered a CONNECT while it should "
                               "have been busy: it lost its session (power cut or reset)");
        teardown();
}

static struct result res2;

/* Two sessions of a bus whose adapter delivers nothing for 400 ms: far more than 3 tries of 25 ms,
 * but no try is spent while no frame at all comes from the bus; both succeed once frames flow. */
static void test_stall(void)
{
        uint8_t cro[8];
        setup(STALLED);
        memset(&res2, 0, sizeof res2);
        CU_ASSERT_EQUAL_FATAL(
            ccp_session_new(event, &fake.t, &load, "bus0:4", 0x684, 0x6C4, 4, 3, &session2), 0);
        ccp_session_set_callback(session2, done_cb, &res2);
        load.stall_max_us = 30000000;
        /* both nodes answer once: they are there */
        cf_ccp_cro_exchange_id(cro, 0);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        CU_ASSERT_EQUAL(ccp_request(session2, cro, 0, UINT32_MAX), 0);
        run();
        while (!res2.done)
                CU_ASSERT_FATAL(sd_event_run(event, UINT64_MAX) >= 0);
        CU_ASSERT_EQUAL_FATAL(res.r, 0);
        CU_ASSERT_EQUAL_FATAL(res2.r, 0);
        res.done = res2.done = false;
        uint64_t now;
        sd_event_now(event, CLOCK_MONOTONIC, &now);
        fake.stall_until = now + 400000;
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        CU_ASSERT_EQUAL(ccp_request(session2, cro, 0, UINT32_MAX), 0);
        run();
        while (!res2.done)
                CU_ASSERT_FATAL(sd_event_run(event, UINT64_MAX) >= 0);
        CU_ASSERT_EQUAL(res.r, 0);
        CU_ASSERT_EQUAL(res2.r, 0);
        CU_ASSERT(load.stalls > 0);
        CU_ASSERT(ccp_session_timeouts(session) > 3);
        teardown();

        /* Stations that never answered (a scan) are not taken for a stall. */
        setup(SILENT);
        memset(&res2, 0, sizeof res2);
        CU_ASSERT_EQUAL_FATAL(
            ccp_session_new(event, &fake.t, &load, "bus0:4", 0x684, 0x6C4, 4, 3, &session2), 0);
        ccp_session_set_callback(session2, done_cb, &res2);
        load.stall_max_us = 30000000;
        cf_ccp_cro_connect(cro, 0, 3);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        cf_ccp_cro_connect(cro, 0, 4);
        CU_ASSERT_EQUAL(ccp_request(session2, cro, 0, UINT32_MAX), 0);
        run();
        while (!res2.done)
                CU_ASSERT_FATAL(sd_event_run(event, UINT64_MAX) >= 0);
        CU_ASSERT_EQUAL(res.r, -ETIMEDOUT);
        CU_ASSERT_EQUAL(res2.r, -ETIMEDOUT);
        CU_ASSERT_EQUAL(load.stalls, 0);
        teardown();

        /* One node alone that does not answer is not a stall: its tries count. */
        setup(SILENT);
        load.stall_max_us = 30000000;
        cf_ccp_cro_exchange_id(cro, 0);
        CU_ASSERT_EQUAL(ccp_request(session, cro, 0, UINT32_MAX), 0);
        run();
        CU_ASSERT_EQUAL(res.r, -ETIMEDOUT);
        CU_ASSERT_EQUAL(load.stalls, 0);
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
            {"each exchange and each recovery exchange has its own tries", test_budgets},
            {"implausible answers and single error codes are lost answers", test_implausible},
            {"lost answer to the last PROGRAM (CRC word)", test_lost_last_program},
            {"a node that loses power during CLEAR_MEMORY is noticed by a CONNECT", test_liveness_probe},
            {"a stalled adapter does not spend tries", test_stall},
            {NULL, NULL},
        };
        return cf_test_run("daemon-ccp-master", tests);
}
