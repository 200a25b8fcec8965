/* The CCP master side of one node: request/response with time-outs, counters and the retry rules of
 * docs/design.md §3. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "can-transport.h"
#include "canfleet/ccp.h"

/*
 * One CcpSession per node; at most one request outstanding. The owner sends a request, and the
 * session calls the owner's callback once with the outcome:
 *   0           the node answered OK; reply is its DTO
 *   -ETIMEDOUT  no answer after the request's tries (each try waits cf_ccp_timeout_ms() plus the
 *               bus's queueing margin, counted from when the CRO left the gate, see below; a
 *               PROGRAM waits 8 times the node's smoothed answer time once known, if that is less,
 *               and never less than the session's minimum)
 *   -EBUSY      C1 errors (key request …) still after 2 waits and retries; BUSY itself is polled for
 *               up to 30 s (CCP's CLEAR_MEMORY time-out: a node erasing answers BUSY to everything)
 *   -ECONNRESET C2 errors (cold start, calibration or DAQ initialisation, code update request): the
 *               node asks the master to re-initialise; not retried here, since only a new session
 *               (CONNECT …) can answer it; reply->err has the code. Also: a node that, asked with a
 *               CONNECT while it should be busy with a long command, answers OK — it has lost its
 *               session (a power cut, a reset); reply is NULL then
 *   -EPROTO     the node refused (C3), twice; reply->err has the code
 *   -ECANCELED  ccp_abort()
 * and ccp_session_error() has the message, naming the request and what was tried, e.g.
 *   "bus0:3: no answer to PROGRAM_6 at 0x00012340 after 3 tries"
 *   "bus0:3: no answer to SET_MTA (recovering a lost answer to PROGRAM_6 at 0x00012340) after 3 tries"
 *   "bus0:3: UNLOCK refused: access locked (wrong fleet key?)"
 *   "bus0:3: PROGRAM_6 at 0x00012340: the node asks for a new session (cold start requested, error 0x20)"
 *
 * Tries. Each exchange (a command and its answer) has its own tries. The recovery after a lost
 * answer to PROGRAM (see below) is a sub-sequence whose exchanges have their own tries too: it does
 * not use up the PROGRAM's. Each transmission carries a fresh counter; a DTO with another counter (a
 * late answer to an earlier try, or a corrupted one) is ignored, as are event DTOs (0xFE) and
 * frames that are not 8 bytes: such an answer is lost, and the try times out.
 *
 * Implausible answers count as lost, never as a protocol error: on an SLCAN serial line a character
 * can be corrupted, and CAN's own CRC does not cover that. An answer to PROGRAM whose MTA is not the
 * chunk's end, to BUILD_CHKSUM whose size is not 4, or one the owner's check (ccp_request_check())
 * rejects, is a lost try. An error code is believed only when the node gives it twice to the same
 * exchange: the first is asked again (UNLOCK excepted: a seed answers one key, so its owner asks
 * for a new seed instead).
 *
 * PROGRAM/PROGRAM_6 (ccp_program()): a time-out (or an error answer, or an implausible one) may mean
 * the node wrote the bytes and advanced its MTA, so before the retry the session re-sends SET_MTA to
 * the chunk's address. If the node then refuses the retry (ACCESS_DENIED: the bytes are no longer
 * erased), the session reads the chunk back with SHORT_UP (5 + 1 bytes for PROGRAM_6): when the
 * bytes are there, the write did happen, MTA is set past it and the request succeeds. The last
 * chunk of an area (its CRC word) ends at the area's end: the MTA is not moved there, since nothing
 * but the PROGRAM of size 0 follows it, and that writes nothing.
 *
 * Long commands (timeout ≥ 1 s: CLEAR_MEMORY, BUILD_CHKSUM): after 2.5 s, then every second, the
 * session sends a CONNECT to the node's own station on the side: BUSY means it is still at it; OK
 * means it lost its session (a power cut during the erase), and the request ends at once with
 * -ECONNRESET instead of waiting out 30 s.
 *
 * While the bus's link is down (ccp_session_link(s, false)) nothing times out; when it is back the
 * outstanding try is sent again. A stall is treated alike: when a try times out, not one frame was
 * received on the bus since it was sent, other sessions of the bus wait too, and the node answered
 * the session's previous request (so that a scan of absent stations, or probes for a rebooting node,
 * are not taken for a stall), the adapter is what is silent, not the node: the try is not counted
 * and is sent again (after a short pause) until frames flow, for at most load->stall_max_us; past
 * that tries count again.
 */

typedef struct CcpSession CcpSession;
typedef void (*ccp_done_cb)(CcpSession *s, int r, const struct cf_ccp_dto *reply, void *userdata);
/* The owner's plausibility check of an OK answer to cro: false counts the answer as lost. */
typedef bool (*ccp_plausible_fn)(const uint8_t cro[8], const struct cf_ccp_dto *reply);

/*
 * Shared by the sessions of one bus: the bus's gate. CAN arbitration always lets the lowest identifier
 * through, and the gateway's CROs (cro_base + sa) are below every DTO, so on a bus kept busy by several
 * interleaved sessions the answer of a node with a high DTO id can wait for ever: each session that
 * gets its answer sends its next CRO at once, and that CRO (or the quick answer to it) wins again.
 * The gate bounds that wait:
 *   - a request whose answer is later than the bus could explain (2 frame times per request on the
 *     wire, plus a slack) is overdue: while any request of the bus is overdue, the gate holds every
 *     NEW CRO of the bus back (in a queue, first come first served, no time-out running) and lets
 *     the requests on the wire drain, so that the bus goes idle and the starved answer wins. The hold
 *     ends with that answer, or after a window long enough for the drain; a node that is merely slow
 *     (an erase) is looked at again later, with a back-off. It also ends as soon as the overdue
 *     request is the last of ours on the wire (slow ones aside): its answer, if sent, has then
 *     already won the idle bus, and a frame on the wire is not pre-empted, so reopening at once
 *     saves the bus our round trip;
 *   - a time-out is not final while the bus was busy with other requests: one last hold window gives
 *     the answer its chance on an idle bus first.
 * frame_us is the bus's worst-case frame time (8 data bytes, stuff bits, the inter-frame space): the
 * unit of every bound above.
 */
struct ccp_bus_load {
        uint32_t frame_us;
        unsigned in_flight;  /* sessions with a CRO handed to the transport and no answer yet */
        unsigned overdue;    /* of those, how many hold the gate closed */
        unsigned slow;       /* of those, how many were found slow: their node is busy (an erase) */
        CcpSession *holders; /* the overdue ones */
        uint64_t sent;       /* CROs handed to the transport, ever: "was the bus busy since?" */
        CcpSession *queue_head, *queue_tail; /* CROs held back by the gate */
        unsigned queued;
        /* counters for the benchmark and tests */
        uint64_t holds;   /* hold windows opened */
        uint64_t held;    /* CROs that waited at the gate */
        uint64_t rescued; /* overdue answers that came during their hold window */
        /* stalls: the owner calls ccp_bus_frame_received() for every frame of the bus */
        uint64_t last_rx;      /* CLOCK_MONOTONIC µs of the last frame received */
        uint64_t stall_max_us; /* how long a stall may pause tries (0: 30 s) */
        unsigned stall_waiting; /* sessions pausing for a stall */
        uint64_t stalls;       /* tries not counted because of a stall */
};

void ccp_bus_frame_received(struct ccp_bus_load *l, uint64_t now_us);

int ccp_session_new(sd_event *e, CanTransport *t, struct ccp_bus_load *load, const char *name,
                    uint32_t cro_id, uint32_t dto_id, uint16_t station, unsigned retries, CcpSession **ret);
CcpSession *ccp_session_free(CcpSession *s);
void ccp_session_set_callback(CcpSession *s, ccp_done_cb cb, void *userdata);
/* The shortest wait for an answer, per try (default 0: CCP's own time-out of each command). */
void ccp_session_set_min_timeout(CcpSession *s, uint64_t usec);

/* A frame received on the session's DTO id. */
void ccp_session_handle_frame(CcpSession *s, const struct cf_can_frame *f);
void ccp_session_link(CcpSession *s, bool up);

/* Send cro (byte 1, the counter, is the session's). tries: 0 means the session's retries. addr is
 * only for messages (UINT32_MAX: none). -EBUSY when a request is outstanding. */
int ccp_request(CcpSession *s, const uint8_t cro[8], unsigned tries, uint32_t addr);
/* The same, with the owner's plausibility check of the answer (NULL: none). */
int ccp_request_check(CcpSession *s, const uint8_t cro[8], unsigned tries, uint32_t addr,
                      ccp_plausible_fn plausible);
/* One try with CCP's own time-out, whatever the session's minimum: for a request whose loss is
 * expected and cheap, such as the CONNECTs that look for a node coming back from its reset. */
int ccp_probe(CcpSession *s, const uint8_t cro[8]);
/* PROGRAM_6 when n == 6, PROGRAM otherwise (n 0..5; 0 ends the sequence); addr is the chunk's
 * address in extension ext, i.e. the node's MTA0 before the write. */
int ccp_program(CcpSession *s, uint8_t ext, uint32_t addr, const uint8_t *data, uint8_t n);
/* Forget the outstanding request (its answer will be stale); calls the callback with -ECANCELED
 * unless quiet. */
void ccp_abort(CcpSession *s, bool quiet);

bool ccp_session_pending(const CcpSession *s);
const char *ccp_session_error(const CcpSession *s);
const char *ccp_session_name(const CcpSession *s);
uint16_t ccp_session_station(const CcpSession *s);
/* Counters for the benchmark and tests. */
uint64_t ccp_session_frames_sent(const CcpSession *s);
uint64_t ccp_session_timeouts(const CcpSession *s);
uint64_t ccp_session_implausible(const CcpSession *s);
