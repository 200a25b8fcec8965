/* Fuzz target: a whole node (boot sequence, CCP slave) on the host HAL, fed CAN frames and power events. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/ccp.h"
#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "canfleet/seedkey.h"
#include "fuzz-crc.h"
#include "fuzz.h"
#include "fw-fixture.h"
#include "journal.h"

/*
 * The node runs v1 from B, has the fixture's fleet key, station FX_STATION, and starts each input
 * from the same snapshot taken after its first boot (flash, HAL, node, virtual clock).
 *
 * The input is a series of records, each an operation byte and its arguments (zeros past the end):
 *   0x00-0x0F  a CAN frame on the node's CRO id: DLC = low nibble (0..15), then 8 data bytes
 *   0x1n b     advance the virtual clock by (b + 1) << n ms, without polling
 *   0x2n b     poll the node b + 1 times, the clock advancing n ms before each poll
 *   0x30       power cut now, then power up and boot
 *   0x31 b     arm a power cut at the (b % 64 + 1)th flash operation from now (0x32: a torn one)
 *   0x4_ b     UNLOCK with counter b and the right key for the last seed the node gave (what the
 *              gateway computes with cf_ccp_key), so that the fuzzer gets past seed & key
 *   0x5_       settle: poll (1 ms each) until a pending long operation has answered and a pending
 *              reset has happened
 *   0x6n       program test image n & 3 into C through SET_MTA + PROGRAM_6/PROGRAM, as a master
 *              does after CLEAR_MEMORY: 0 v2.0.0 (installable), 1 v0.9.0 release 0 (rollback),
 *              2 another hardware id, 3 v2 with a wrong CRC
 *   0x7n       flash timing model on (n odd: ~1 s per 128 KB erase, 16 us per word) or off
 *   0x90       a frame on the group id (CF_GROUP_ID_DEFAULT), DLC 8, then its 8 data bytes
 *   0x91 d     the same with DLC d & 15
 *   0x92 b     GROUP_JOIN (group id CF_GROUP_ID_DEFAULT, tag 0x1234) with counter b, on the CRO id
 *   0x93 b     BLOCK_MODE (block size CF_BLOCK_SIZE) with counter b, on the CRO id
 *   0x94 b k k BLOCK_CHECK with counter b and the check value of block k (u16 BE, modulo
 *              CF_BLOCKS) of test image 0, on the CRO id
 *   0x95 k k   the group check frame of block k of test image 0
 *   0x98-0x9B  one group pass of test image n & 3: a group frame for each of its slots that is not
 *              all 0xFF, each block's check frame after its last (0x9C-0x9F: every 7th of them
 *              lost), the bus time of a frame between them
 *   0x80-0xFF  (others) poll once, the clock advancing 1 ms
 * A power-up always runs the boot sequence to its end (powering up again after each reset or
 * further armed cut), since frames sent during a boot are simply dropped.
 *
 * Invariants, checked after every record (and after every frame and poll where they concern
 * frames):
 *  - areas A and D never change (A's last sector, the install journal, included: with a flash that
 *    works no install fails, so the journal stays erased); B changes only by a boot that found C
 *    installable (valid CRC, trailer and vectors, our hardware id, no rollback), and then holds
 *    exactly that C;
 *  - every frame the node sends is on its DTO id, DLC 8, PID 0xFF (or 0xFE), one per CRO at most;
 *    a command return echoes the counter of the CRO it answers, immediately or, for CLEAR_MEMORY,
 *    BUILD_CHKSUM and DISCONNECT(end), at a later poll and then only once (never, when a CONNECT to
 *    another station came first);
 *  - before CONNECT (after a power-up, a temporary DISCONNECT, a CONNECT to another station or an
 *    accepted end of session) the node answers nothing but CONNECT and TEST with its station
 *    address; once connected it answers every CRO except those addressed to another station; it
 *    sends nothing while booting;
 *  - DISCONNECT(end) is accepted exactly when C is installable;
 *  - group frames are never answered; they change no flash while the node is not a group member
 *    (whatever the port's filter would pass), and a member's frame programs nothing outside its
 *    own slot of C (with the backlog empty; A, B and D are covered by the first invariant); in
 *    block mode a data frame programs nothing, and a check frame programs nothing outside its
 *    block, which then holds bytes with the frame's check value;
 *  - at the end, after a power cut and a boot, the node runs the application (never recovery)
 *    from a valid B.
 */

#define B_OFF (CF_AREA_APP_ADDR - CF_FLASH_BASE)
#define C_OFF (CF_AREA_STAGING_ADDR - CF_FLASH_BASE)
#define D_OFF (CF_AREA_DATA_ADDR - CF_FLASH_BASE)
#define J_OFF (CF_JOURNAL_ADDR - CF_FLASH_BASE)

#define N_IMAGES 4u
#define MAX_RUNS 64u

struct run {
        uint32_t off, len;
};

struct staged_image {
        uint8_t *area;
        struct run runs[MAX_RUNS];
        unsigned nruns;
        /* The group frames of a pass (slots not all 0xFF), made once: finding them means looking at
         * all 43,691 slots, which per pass cost 85% of the target's time. */
        uint8_t (*gframes)[8];
        unsigned ngframes;
};

#define GID CF_GROUP_ID_DEFAULT

static struct fx fx, fx_start;
static uint8_t *c_before;           /* C before a group frame */
static uint8_t *flash_start;        /* the flash of fx_start */
static uint8_t *ref;                /* what A, B and D must hold */
static bool flash_dirty, ref_dirty; /* fx.flash, ref differ from flash_start */
static uint8_t *c_snap;             /* C as a boot that may install found it */
static struct staged_image images[N_IMAGES];
static uint8_t secret[CF_NODE_SECRET_LEN]; /* the gateway's view: derived from the fleet key */

/* What the harness knows of the node from outside, as a master would. */
static struct {
        bool connected;
        bool resetting; /* DISCONNECT(end) accepted: the node resets without another word */
        bool pending;   /* a long operation owes its answer */
        uint8_t pending_cmd, pending_ctr;
        bool have_seed;
        uint8_t seed[CF_SEED_LEN];
        uint8_t ctr; /* counters of the CROs the harness makes up itself */
        uint32_t writes_checked[32]; /* the HAL's sector_writes at check_areas()' last look */
} m;

static bool trace; /* FUZZ_TRACE=1 in the environment: print every frame, answer and power-up */

static void power_up(void);

static void trace_frame(const char *dir, const uint8_t *f, uint8_t dlc)
{
        if (!trace)
                return;
        fprintf(stderr, "%10.3f ms %s [%u]", (double) fx.now_us / 1000.0, dir, dlc);
        for (unsigned i = 0; i < 8; i++)
                fprintf(stderr, " %02x", f[i]);
        fputc('\n', stderr);
}

static void *xmalloc(size_t n)
{
        void *p = malloc(n);
        if (!p)
                abort();
        return p;
}

/* ---- a memo of the CRC ---------------------------------------------------------------------- */

/*
 * Every boot CRCs B and C in 4 KB steps, and the checks here CRC whole areas: that was 95% of the
 * time of an input. The target is linked with -Wl,--wrap=cf_crc32_le, so that every call (the
 * node's, through the host HAL, which stands for the STM32's CRC unit, and the checks') comes here.
 * cf_crc32_le() is a pure function of (crc, bytes): the memo keeps the bytes each result was
 * computed from and answers from it only when they are identical now (a memcmp, which still has
 * ASan check the whole range); anything else goes to fuzz_crc_le(), the same value computed with a
 * jump over erased runs (fuzz-crc.h).
 */
#define MEMO_SLOTS 1024u
#define MEMO_MIN   256u /* shorter ones cost less than the lookup */

static struct memo {
        const void *data;
        size_t len, cap;
        uint32_t crc_in, crc_out;
        uint64_t version; /* bytes in the node's flash: its version then (flash_version()) */
        uint8_t *bytes;
} memo[MEMO_SLOTS];

/*
 * Bytes in the node's flash are known by their sectors' versions before they are compared (the
 * memcmps of the memos and of the end of an input were a quarter of the time). A sector's version
 * is 0 while it is as in flash_start (at the start of every input), and a number never used before
 * after each change, which the host HAL counts in sector_writes; the version of a range is the
 * highest of its sectors', so any change in the range makes it new. FUZZ_MEMO_VERIFY=1 (the
 * suite's runs) compares the bytes of every answer a version gives as well.
 */
#define NSECT 32u
static uint64_t sector_versions = 1, sector_version[NSECT], sector_writes_seen[NSECT];
static bool memo_verify;
static uint32_t guarded_sectors; /* check_areas() */
#define PAGE 0x4000u             /* the smallest sector */
static int8_t page_sector[CF_FLASH_SIZE / PAGE]; /* cf_flash_sector_of() by 16 KB page, made once */

static void versions_start(void) /* the flash is flash_start again */
{
        for (unsigned i = 0; i < NSECT; i++) {
                sector_writes_seen[i] = fx.hal.sector_writes[i];
                sector_version[i] = 0;
        }
}

static uint64_t flash_version(const uint8_t *p, size_t len)
{
        int first = page_sector[(size_t) (p - fx.flash) / PAGE];
        int last = page_sector[(size_t) (p - fx.flash + len - 1) / PAGE];
        uint64_t v = 0;

        for (int i = first; i >= 0 && i <= last; i++) {
                if (fx.hal.sector_writes[i] != sector_writes_seen[i]) {
                        sector_writes_seen[i] = fx.hal.sector_writes[i];
                        sector_version[i] = ++sector_versions;
                }
                if (sector_version[i] > v)
                        v = sector_version[i];
        }
        return v;
}

static bool in_node_flash(const void *data, size_t len)
{
        const uint8_t *p = data;
        return fx.flash && p >= fx.flash && len <= CF_FLASH_SIZE &&
               p - fx.flash <= (ptrdiff_t) (CF_FLASH_SIZE - len);
}

uint32_t __wrap_cf_crc32_le(uint32_t crc, const void *data, size_t len)
{
        if (len < MEMO_MIN)
                return __real_cf_crc32_le(crc, data, len);
        uint64_t h =
            ((uint64_t) (uintptr_t) data * 0x9E3779B97F4A7C15ull) ^ len * 0xC2B2AE3D27D4EB4Full ^ crc;
        struct memo *e = &memo[(h ^ h >> 29) % MEMO_SLOTS];
        bool flash = in_node_flash(data, len);
        uint64_t version = flash ? flash_version(data, len) : 0;
        if (e->data == data && e->len == len && e->crc_in == crc) {
                if (flash && e->version == version) {
                        FUZZ_CHECK(!memo_verify || memcmp(e->bytes, data, len) == 0,
                                   "the CRC memo's sector version %llu stands for other bytes",
                                   (unsigned long long) version);
                        return e->crc_out;
                }
                if (memcmp(e->bytes, data, len) == 0) {
                        e->version = version; /* the same bytes in this version too */
                        return e->crc_out;
                }
        }
        uint32_t out = fuzz_crc_le(crc, data, len);
        if (e->cap < len) {
                free(e->bytes);
                e->bytes = xmalloc(len);
                e->cap = len;
        }
        memcpy(e->bytes, data, len);
        e->data = data;
        e->len = len;
        e->crc_in = crc;
        e->crc_out = out;
        e->version = version;
        return out;
}

/*
 * The install journal is read the same way: cf_journal_scan() reads the journal's 64 KB sector slot
 * by slot at every boot and every CCP start, which took more than half of an input's time, for a
 * sector that stays erased in most inputs. Its result is a function of (crc, the sector's bytes):
 * the same memo, by a copy of the sector (-Wl,--wrap=cf_journal_scan). A sector the memo has not
 * seen goes to the real function, whose coverage the fuzzer still sees.
 */
void __real_cf_journal_scan(const uint8_t *flash, uint32_t crc, struct cf_journal *j);
void __wrap_cf_journal_scan(const uint8_t *flash, uint32_t crc, struct cf_journal *j);

#define JMEMO_SLOTS 8u

static struct jmemo {
        const uint8_t *flash;
        uint32_t crc;
        uint64_t version; /* of the node's flash (flash_version()) when flash is the node's */
        struct cf_journal j;
        uint8_t *sector;
} jmemo[JMEMO_SLOTS];
static unsigned jmemo_next;

void __wrap_cf_journal_scan(const uint8_t *flash, uint32_t crc, struct cf_journal *j)
{
        const uint8_t *sector = flash + (CF_JOURNAL_ADDR - CF_FLASH_BASE);
        bool node = in_node_flash(sector, CF_JOURNAL_SIZE);
        uint64_t version = node ? flash_version(sector, CF_JOURNAL_SIZE) : 0;

        for (unsigned i = 0; i < JMEMO_SLOTS; i++) {
                struct jmemo *e = &jmemo[i];
                if (!e->sector || e->flash != flash || e->crc != crc)
                        continue;
                if (node && e->version == version) {
                        FUZZ_CHECK(!memo_verify || memcmp(e->sector, sector, CF_JOURNAL_SIZE) == 0,
                                   "the journal memo's sector version %llu stands for other bytes",
                                   (unsigned long long) version);
                        *j = e->j;
                        return;
                }
                if (memcmp(e->sector, sector, CF_JOURNAL_SIZE) == 0) {
                        e->version = version; /* the same bytes in this version too */
                        *j = e->j;
                        return;
                }
        }
        __real_cf_journal_scan(flash, crc, j);
        struct jmemo *e = &jmemo[jmemo_next++ % JMEMO_SLOTS];
        if (!e->sector)
                e->sector = xmalloc(CF_JOURNAL_SIZE);
        memcpy(e->sector, sector, CF_JOURNAL_SIZE);
        e->flash = flash;
        e->crc = crc;
        e->version = version;
        e->j = *j;
}

/* ---- setup ---------------------------------------------------------------------------------- */

/* The runs of non-erased bytes a master programs; runs closer than 16 bytes are merged. */
static void find_runs(struct staged_image *im)
{
        uint32_t off = 0;

        im->nruns = 0;
        while (off < CF_IMAGE_AREA_SIZE) {
                while (off < CF_IMAGE_AREA_SIZE && im->area[off] == CF_FLASH_ERASED)
                        off++;
                if (off >= CF_IMAGE_AREA_SIZE)
                        break;
                uint32_t end = off, gap = 0;
                while (end + gap < CF_IMAGE_AREA_SIZE && gap < 16) {
                        if (im->area[end + gap] != CF_FLASH_ERASED) {
                                end += gap + 1;
                                gap = 0;
                        } else {
                                gap++;
                        }
                }
                if (im->nruns == MAX_RUNS)
                        abort();
                im->runs[im->nruns++] = (struct run){off, end - off};
                off = end;
        }
}

static void setup(void)
{
        uint8_t *v1 = xmalloc(CF_IMAGE_AREA_SIZE);

        trace = getenv("FUZZ_TRACE") != NULL;
        /* Until the first input starts, no sector is known to be as in flash_start (version 1). */
        for (uint32_t off = 0; off < CF_FLASH_SIZE; off += PAGE)
                page_sector[off / PAGE] = (int8_t) cf_flash_sector_of(CF_FLASH_BASE + off);
        for (unsigned i = 0; i < NSECT; i++)
                sector_version[i] = 1;

        /* Small payloads keep the images' PROGRAM sequences short: a few hundred frames at most. */
        for (unsigned i = 0; i < N_IMAGES; i++)
                images[i].area = xmalloc(CF_IMAGE_AREA_SIZE);
        fx_image(v1, FX_HW_ID, 1, 0, 0, 1, 4096, 1);
        fx_image(images[0].area, FX_HW_ID, 2, 0, 0, 2, 600, 2);
        fx_image(images[1].area, FX_HW_ID, 0, 9, 0, 0, 400, 3);
        fx_image(images[2].area, FX_HW_ID + 1, 2, 0, 0, 2, 400, 4);
        fx_image(images[3].area, FX_HW_ID, 2, 0, 0, 2, 600, 2);
        images[3].area[100] ^= 0x01;
        for (unsigned i = 0; i < N_IMAGES; i++)
                find_runs(&images[i]);
        for (unsigned i = 0; i < N_IMAGES; i++) {
                struct staged_image *im = &images[i];
                uint8_t g[8];
                im->gframes = xmalloc((CF_GROUP_SLOTS + CF_BLOCKS) * sizeof(*im->gframes));
                im->ngframes = 0;
                for (uint32_t k = 0; k < CF_BLOCKS; k++) {
                        bool any = false;
                        for (uint32_t slot = k * CF_BLOCK_SLOTS; slot < (k + 1) * CF_BLOCK_SLOTS && slot < CF_GROUP_SLOTS; slot++)
                                if (cf_ccp_group_frame(g, im->area, (uint16_t) slot) == 1) {
                                        memcpy(im->gframes[im->ngframes++], g, 8);
                                        any = true;
                                }
                        if (any && cf_ccp_group_check_frame(g, im->area, (uint16_t) k) == 1)
                                memcpy(im->gframes[im->ngframes++], g, 8);
                }
        }

        fx_init(&fx);
        if (cf_hal_host_init(&fx.hal) < 0)
                abort();
        fx_poke_area(&fx, CF_AREA_APP_ADDR, v1);
        /* A stands for the bootloader, D for user data: erased they would hide an erase. */
        uint8_t *fill = xmalloc(CF_AREA_DATA_SIZE);
        for (uint32_t i = 0; i < CF_AREA_DATA_SIZE; i++)
                fill[i] = (uint8_t) (i * 131u + (i >> 9));
        cf_hal_host_poke(&fx.hal, CF_AREA_BOOT_ADDR, fill, CF_AREA_BOOT_SIZE);
        cf_hal_host_poke(&fx.hal, CF_AREA_DATA_ADDR, fill, CF_AREA_DATA_SIZE);
        free(fill);
        fx_power_on(&fx);
        if (fx_run(&fx, NULL) != CF_NODE_APP)
                abort();
        cf_node_secret(fx.fleet_key, fx.hal.uid, secret);

        memo_verify = getenv("FUZZ_MEMO_VERIFY") != NULL;
        /* The sectors of A (with the journal), B and D: check_areas() compares them when one of
         * them was written since its last look. */
        for (uint32_t off = 0; off < CF_FLASH_SIZE; off += PAGE)
                if (off < J_OFF + CF_JOURNAL_SIZE || (off >= B_OFF && off < B_OFF + CF_IMAGE_AREA_SIZE) ||
                    (off >= D_OFF && off < D_OFF + CF_AREA_DATA_SIZE))
                        guarded_sectors |= 1u << cf_flash_sector_of(CF_FLASH_BASE + off);
        flash_start = xmalloc(CF_FLASH_SIZE);
        memcpy(flash_start, fx.flash, CF_FLASH_SIZE);
        fx_start = fx;
        ref = xmalloc(CF_FLASH_SIZE);
        flash_dirty = ref_dirty = true;
        c_snap = xmalloc(CF_IMAGE_AREA_SIZE);
        c_before = xmalloc(CF_IMAGE_AREA_SIZE);
        free(v1);
}

/* ---- the model ------------------------------------------------------------------------------ */

static bool known_err(uint8_t e)
{
        static const uint8_t codes[] = {0x00, 0x10, 0x11, 0x12, 0x18, 0x19, 0x20, 0x21, 0x22,
                                        0x23, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36};
        return memchr(codes, e, sizeof(codes)) != NULL;
}

/* Would a boot install C now? The bootloader's rule (boot.h, image.h), checked from scratch; the
 * CRC last because it is the costly part. */
static bool c_installable(void)
{
        const uint8_t *c = fx.flash + C_OFF, *b = fx.flash + B_OFF;
        struct cf_image_info ci, bi;

        cf_image_info_parse(c + CF_TRAILER_OFFSET, &ci);
        if (cf_image_check_trailer(&ci) != CF_IMAGE_OK ||
            cf_image_check_vectors(cf_le32_get(c), cf_le32_get(c + 4)) != CF_IMAGE_OK)
                return false;
        /* B is the reference image (valid) except in the middle of an install. */
        bool b_valid;
        if (memcmp(b, ref + B_OFF, CF_IMAGE_AREA_SIZE) == 0) {
                cf_image_info_parse(b + CF_TRAILER_OFFSET, &bi);
                b_valid = true;
        } else {
                b_valid = cf_image_check(b, &bi) == CF_IMAGE_OK;
        }
        if (cf_image_check_policy(&ci, FX_HW_ID, b_valid ? &bi : NULL) != CF_IMAGE_OK)
                return false;
        return cf_crc32_le(CF_CRC32_INIT, c, CF_CRC_OFFSET) == cf_le32_get(c + CF_CRC_OFFSET);
}

static void check_areas(bool force)
{
        /* Flash changes only through the HAL, which counts the changes of each sector (or a stray
         * write, which the forced check at the end of every input still sees). */
        bool written = false;
        for (unsigned i = 0; i < NSECT; i++)
                written |= (guarded_sectors >> i & 1u) && fx.hal.sector_writes[i] != m.writes_checked[i];
        if (!force && !written)
                return;
        FUZZ_CHECK(memcmp(fx.flash, ref, J_OFF) == 0, "area A (the bootloader's sectors) changed");
        FUZZ_CHECK(memcmp(fx.flash + J_OFF, ref + J_OFF, CF_JOURNAL_SIZE) == 0 &&
                       ref[J_OFF] == CF_FLASH_ERASED,
                   "the install journal was written although no install failed");
        FUZZ_CHECK(memcmp(fx.flash + B_OFF, ref + B_OFF, CF_IMAGE_AREA_SIZE) == 0,
                   "area B changed without an install");
        FUZZ_CHECK(memcmp(fx.flash + D_OFF, ref + D_OFF, CF_AREA_DATA_SIZE) == 0, "area D changed");
        memcpy(m.writes_checked, fx.hal.sector_writes, sizeof m.writes_checked);
}

/* The one frame the node sent, checked as a command return; its parsed form in *d. */
static void check_dto(const struct fx_frame *fr, struct cf_ccp_dto *d)
{
        FUZZ_CHECK(fr->id == fx.cfg.dto_id, "frame sent on id %03x, not the DTO id %03x", fr->id,
                   fx.cfg.dto_id);
        FUZZ_CHECK(fr->dlc == CF_CCP_FRAME_LEN, "DTO of DLC %u", fr->dlc);
        FUZZ_CHECK(cf_ccp_dto_parse(fr->data, fr->dlc, d) == 0, "DTO with PID %02x", fr->data[0]);
        /* The slave sends no events: whatever it sends answers a CRO. */
        FUZZ_CHECK(d->pid == CF_CCP_PID_CRM, "unexpected event DTO (error %02x)", d->err);
        FUZZ_CHECK(known_err(d->err), "DTO with undefined return code %02x", d->err);
}

static void reset_model(void)
{
        m.connected = false;
        m.resetting = false;
        m.pending = false;
        m.have_seed = false;
}

/* ---- driving the node ----------------------------------------------------------------------- */

static void after_event(void)
{
        if (fx.hal.powered_off || fx.hal.reset_requested)
                power_up();
}

static void poll_node(uint64_t us)
{
        struct cf_ccp_dto d;

        fx.now_us += us;
        fx.ntx = 0;
        cf_node_poll(&fx.node);
        FUZZ_CHECK(fx.ntx <= 1, "%u frames sent in one poll", fx.ntx);
        if (fx.ntx == 1) {
                trace_frame("node  (late)", fx.tx[0].data, fx.tx[0].dlc);
                check_dto(&fx.tx[0], &d);
                FUZZ_CHECK(m.pending, "DTO (error %02x, counter %02x) sent while no CRO was waiting", d.err,
                           d.ctr);
                FUZZ_CHECK(d.ctr == m.pending_ctr, "late answer to %02x echoes counter %02x, not %02x",
                           m.pending_cmd, d.ctr, m.pending_ctr);
                m.pending = false;
                if (m.pending_cmd == CF_CCP_DISCONNECT) {
                        bool ok = c_installable();
                        FUZZ_CHECK(d.err == (ok ? CF_CCP_OK : CF_CCP_ERR_ACCESS_DENIED),
                                   "DISCONNECT(end) answered %02x while C is %s", d.err,
                                   ok ? "installable" : "not installable");
                        if (d.err == CF_CCP_OK) {
                                m.connected = false;
                                m.resetting = true;
                        }
                }
        }
        after_event();
}

static bool station_is_ours(const uint8_t *p)
{
        return cf_le16_get(p) == FX_STATION;
}

/* Send one frame to the node; the node's immediate answer in *d, or false without one. */
static bool send_frame(const uint8_t f[8], uint8_t dlc, struct cf_ccp_dto *d)
{
        uint8_t cmd = f[0];
        bool ccp = dlc == CF_CCP_FRAME_LEN;
        bool addressed = ccp && (cmd == CF_CCP_CONNECT || cmd == CF_CCP_TEST) && station_is_ours(f + 2);
        bool for_us = ccp;
        if (cmd == CF_CCP_CONNECT || cmd == CF_CCP_TEST)
                for_us = addressed;
        else if (cmd == CF_CCP_DISCONNECT)
                for_us = ccp && station_is_ours(f + 4);
        bool was_connected = m.connected;

        trace_frame("master      ", f, dlc);
        fx.ntx = 0;
        cf_node_rx(&fx.node, f, dlc);
        if (fx.ntx == 1)
                trace_frame("node        ", fx.tx[0].data, fx.tx[0].dlc);
        FUZZ_CHECK(fx.ntx <= 1, "%u frames in answer to one CRO", fx.ntx);
        if (fx.hal.powered_off) {
                /* A node without power says nothing, and the HAL drops what it would have sent. */
                FUZZ_CHECK(fx.ntx == 0, "a frame sent without power");
                after_event();
                return false;
        }

        bool answered = fx.ntx == 1;
        if (answered) {
                check_dto(&fx.tx[0], d);
                FUZZ_CHECK(ccp, "answered a frame of DLC %u", dlc);
                FUZZ_CHECK(!m.resetting, "answered CRO %02x after accepting the end of the session", cmd);
                FUZZ_CHECK(was_connected || addressed, "answered CRO %02x before CONNECT", cmd);
                FUZZ_CHECK(for_us, "answered CRO %02x addressed to another station", cmd);
                FUZZ_CHECK(d->ctr == f[1], "answer to CRO %02x echoes counter %02x, not %02x", cmd, d->ctr,
                           f[1]);
        } else if (ccp && !m.resetting && (was_connected ? for_us : addressed)) {
                /* Silence is allowed only for the three long operations, which answer later. */
                bool long_op = cmd == CF_CCP_CLEAR_MEMORY || cmd == CF_CCP_BUILD_CHKSUM ||
                               (cmd == CF_CCP_DISCONNECT && f[2] == CF_CCP_DISCONNECT_END);
                FUZZ_CHECK(long_op, "no answer to CRO %02x (counter %02x)", cmd, f[1]);
                FUZZ_CHECK(!m.pending, "CRO %02x started a long operation while %02x was still running", cmd,
                           m.pending_cmd);
                m.pending = true;
                m.pending_cmd = cmd;
                m.pending_ctr = f[1];
        }

        if (answered && ccp) {
                if (cmd == CF_CCP_CONNECT && addressed)
                        m.connected = true;
                if (cmd == CF_CCP_GET_SEED && d->err == CF_CCP_OK && d->data[0] == 1) {
                        m.have_seed = true;
                        memcpy(m.seed, &d->data[1], CF_SEED_LEN);
                }
                if (cmd == CF_CCP_DISCONNECT && f[2] == CF_CCP_DISCONNECT_TEMPORARY && d->err == CF_CCP_OK)
                        m.connected = false;
        }
        if (ccp && cmd == CF_CCP_CONNECT && !addressed && was_connected && !m.resetting) {
                /* CCP 2.1: the master turned to another station; a long operation owes nothing now. */
                m.connected = false;
                m.pending = false;
        }
        after_event();
        return answered;
}

/* Power up with the flash as it is and run the boot sequence to its end, through resets and any
 * armed power cut. */
static void power_up(void)
{
        bool install = false;

        if (trace)
                fprintf(stderr, "power up (flash operation %llu%s)\n", (unsigned long long) fx.hal.flash_ops,
                        fx.hal.powered_off ? ", after a cut" : "");
        for (unsigned boots = 0;; boots++) {
                FUZZ_CHECK(boots < 16, "no end to the boots: %u resets or cuts in a row", boots);
                if (!install && c_installable()) {
                        install = true;
                        memcpy(c_snap, fx.flash + C_OFF, CF_IMAGE_AREA_SIZE);
                }
                fx_power_on(&fx);
                reset_model();
                unsigned i;
                for (i = 0; i < 200000; i++) {
                        if (fx.hal.powered_off || fx.hal.reset_requested)
                                break;
                        if (fx.node.phase == CF_NODE_APP || fx.node.phase == CF_NODE_RECOVERY)
                                break;
                        fx.now_us += 1000;
                        fx.ntx = 0;
                        cf_node_poll(&fx.node);
                        FUZZ_CHECK(fx.ntx == 0, "a frame sent while booting");
                }
                if (fx.hal.powered_off) {
                        /* An armed cut fires once. */
                        fx.hal.cut_at_op = 0;
                        continue;
                }
                if (fx.hal.reset_requested)
                        continue;
                FUZZ_CHECK(i < 200000, "the boot did not end in 200 s of polls");
                break;
        }
        FUZZ_CHECK(fx.node.phase == CF_NODE_APP, "the node booted into recovery (B lost)");
        if (install) {
                FUZZ_CHECK(memcmp(fx.flash + B_OFF, c_snap, CF_IMAGE_AREA_SIZE) == 0,
                           "a boot that had to install C left B different from it");
                memcpy(ref + B_OFF, c_snap, CF_IMAGE_AREA_SIZE);
                ref_dirty = true;
        }
        check_areas(true);
}

static void settle(void)
{
        for (unsigned i = 0; i < 100000 && (m.pending || m.resetting); i++)
                poll_node(1000);
        FUZZ_CHECK(!m.pending, "long operation %02x (counter %02x) never answered", m.pending_cmd,
                   m.pending_ctr);
        FUZZ_CHECK(!m.resetting, "the node accepted the end of the session but never reset");
}

static void unlock(uint8_t ctr)
{
        uint8_t key[CF_KEY_LEN], f[8], zero[CF_SEED_LEN] = {0};
        struct cf_ccp_dto d;

        cf_ccp_key(secret, m.have_seed ? m.seed : zero, key);
        cf_ccp_cro_unlock(f, ctr, key);
        send_frame(f, 8, &d);
}

/* The master's part of a download after CLEAR_MEMORY; stops at the first refusal, like a master. */
static void stage(const struct staged_image *im)
{
        uint8_t f[8];
        struct cf_ccp_dto d;

        for (unsigned r = 0; r < im->nruns; r++) {
                uint32_t off = im->runs[r].off, end = off + im->runs[r].len;

                cf_ccp_cro_set_mta(f, ++m.ctr, 0, CF_CCP_EXT_STAGING, off);
                if (!send_frame(f, 8, &d) || d.err != CF_CCP_OK)
                        return;
                while (off < end) {
                        uint32_t n = end - off;
                        if (n >= 6) {
                                cf_ccp_cro_program6(f, ++m.ctr, im->area + off);
                                n = 6;
                        } else {
                                cf_ccp_cro_program(f, ++m.ctr, im->area + off, (uint8_t) n);
                        }
                        /* The bus time of a frame: lets a timed flash finish the previous write. */
                        poll_node(250);
                        if (!send_frame(f, 8, &d) || d.err != CF_CCP_OK)
                                return;
                        FUZZ_CHECK(cf_ccp_dto_mta(&d) == off + n, "PROGRAM answered MTA %08x, want %08x",
                                   cf_ccp_dto_mta(&d), off + n);
                        off += n;
                }
        }
}

/* A frame on the group id, delivered to the node whether or not it is a member: the core must not
 * rely on the port's filter for the membership. The CAN id is the port's to match (the core's
 * group_rx takes frames on the id cf_node_group_id() names, ccp-slave.h): a node that joined on
 * another id than GID (GROUP_JOIN's id is fuzzed) is a member, and this frame stands for one on its
 * own id. */
static void send_group(const uint8_t f[8], uint8_t dlc, bool precise)
{
        uint32_t id;
        bool member = cf_node_group_id(&fx.node, &id);
        bool exact = precise && member && !cf_group_pending(&fx.node.slave.group);
        uint64_t ops = fx.hal.flash_ops;

        if (exact)
                memcpy(c_before, fx.flash + C_OFF, CF_IMAGE_AREA_SIZE);
        trace_frame("group       ", f, dlc);
        fx.ntx = 0;
        cf_node_rx_group(&fx.node, f, dlc);
        FUZZ_CHECK(fx.ntx == 0, "a group frame was answered");
        if (!member)
                FUZZ_CHECK(fx.hal.flash_ops == ops,
                           "a group frame changed flash while the node was no member");
        uint16_t k;
        uint32_t crc;
        if (exact && fx.node.slave.group.verify && fx.hal.flash_ops != ops) {
                /* Block mode: only a check frame programs, only its block, and only matching bytes. */
                FUZZ_CHECK(cf_ccp_group_check_parse(f, dlc, &k, &crc) == 0 && k < CF_BLOCKS,
                           "in block mode a group data frame (slot %u) was programmed", f[0] << 8 | f[1]);
                uint32_t off = (uint32_t) k * CF_BLOCK_SIZE, end = off + cf_block_len(k);
                FUZZ_CHECK(memcmp(c_before, fx.flash + C_OFF, off) == 0 &&
                               memcmp(c_before + end, fx.flash + C_OFF + end, CF_IMAGE_AREA_SIZE - end) == 0,
                           "a check frame for block %u programmed C outside its block", k);
                FUZZ_CHECK(cf_block_crc(off, fx.flash + C_OFF + off, cf_block_len(k)) == crc,
                           "block %u was programmed with bytes that do not match its check value", k);
        } else if (exact && fx.hal.flash_ops != ops) {
                uint32_t off = (uint32_t) (f[0] << 8 | f[1]) * CF_GROUP_SLOT_SIZE;
                uint32_t end = off + CF_GROUP_SLOT_SIZE < CF_IMAGE_AREA_SIZE ? off + CF_GROUP_SLOT_SIZE
                                                                             : CF_IMAGE_AREA_SIZE;
                FUZZ_CHECK(dlc == 8 && off < CF_IMAGE_AREA_SIZE,
                           "a group frame of DLC %u or slot %u was programmed", dlc, f[0] << 8 | f[1]);
                FUZZ_CHECK(memcmp(c_before, fx.flash + C_OFF, off) == 0 &&
                               memcmp(c_before + end, fx.flash + C_OFF + end, CF_IMAGE_AREA_SIZE - end) == 0,
                           "a group frame for slot %u programmed C outside its slot", f[0] << 8 | f[1]);
        }
        after_event();
}

static void group_pass(const struct staged_image *im, unsigned lose_every)
{
        unsigned n = 0;

        for (unsigned k = 0; k < im->ngframes; k++) {
                if (lose_every && ++n % lose_every == 0)
                        continue;
                poll_node(130);
                send_group(im->gframes[k], 8, false);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in in = {data, size};
        struct cf_ccp_dto d;
        uint8_t f[8];

        if (!flash_start)
                setup();

        /* Back to the snapshot; the two megabytes are copied only when the last input changed them. */
        fx = fx_start;
        if (flash_dirty)
                memcpy(fx.flash, flash_start, CF_FLASH_SIZE);
        if (ref_dirty)
                memcpy(ref, flash_start, CF_FLASH_SIZE);
        flash_dirty = ref_dirty = false;
        versions_start();
        memset(&m, 0, sizeof(m));
        memcpy(m.writes_checked, fx.hal.sector_writes, sizeof m.writes_checked);

        while (fuzz_left(&in)) {
                uint8_t op = fuzz_u8(&in), b;

                switch (op >> 4) {
                case 0x0:
                        fuzz_bytes(&in, f, sizeof(f));
                        send_frame(f, op & 15, &d);
                        break;
                case 0x1:
                        b = fuzz_u8(&in);
                        fx.now_us += (uint64_t) (b + 1) * 1000u << (op & 15);
                        break;
                case 0x2:
                        b = fuzz_u8(&in);
                        for (unsigned i = 0; i <= b; i++)
                                poll_node((op & 15) * 1000u);
                        break;
                case 0x3:
                        if (op == 0x31 || op == 0x32) {
                                b = fuzz_u8(&in);
                                fx.hal.cut_at_op = fx.hal.flash_ops + 1 + b % 64;
                                fx.hal.cut_torn = op == 0x32;
                        } else {
                                power_up();
                        }
                        break;
                case 0x4:
                        unlock(fuzz_u8(&in));
                        break;
                case 0x5:
                        settle();
                        break;
                case 0x6:
                        stage(&images[op & 3]);
                        break;
                case 0x7:
                        fx.hal.erase_us_per_kb = op & 1 ? 8000 : 0;
                        fx.hal.program_us_per_word = op & 1 ? 16 : 0;
                        break;
                case 0x9:
                        if (op == 0x90 || op == 0x91) {
                                b = op == 0x91 ? fuzz_u8(&in) & 15 : 8;
                                fuzz_bytes(&in, f, sizeof(f));
                                send_group(f, b, true);
                        } else if (op == 0x92) {
                                cf_ccp_cro_group_join(f, fuzz_u8(&in), GID, 0x1234);
                                send_frame(f, 8, &d);
                        } else if (op == 0x93) {
                                cf_ccp_cro_block_mode(f, fuzz_u8(&in), CF_BLOCK_SIZE);
                                send_frame(f, 8, &d);
                        } else if (op == 0x94 || op == 0x95) {
                                b = op == 0x94 ? fuzz_u8(&in) : 0;
                                uint32_t k = (uint32_t) (fuzz_u8(&in) << 8);
                                k = (k | fuzz_u8(&in)) % CF_BLOCKS;
                                if (op == 0x95) {
                                        (void) cf_ccp_group_check_frame(f, images[0].area, (uint16_t) k);
                                        send_group(f, 8, true);
                                } else {
                                        uint32_t off = k * CF_BLOCK_SIZE;
                                        cf_ccp_cro_block_check(f, b, cf_block_crc(off, images[0].area + off, cf_block_len(k)));
                                        send_frame(f, 8, &d);
                                }
                        } else if (op >= 0x98) {
                                group_pass(&images[op & 3], op >= 0x9C ? 7 : 0);
                        } else {
                                poll_node(1000);
                        }
                        break;
                default:
                        poll_node(1000);
                        break;
                }
                check_areas(false);
        }

        /* The end: the power goes, comes back, and the node must run a valid application. A flash
         * just as it was at the start boots as it did then (the boot sequence reads nothing else),
         * so that boot is skipped: most inputs never touch the flash, and two CRCs of 256 KB are
         * most of the cost of one. */
        fx.hal.cut_at_op = 0;
        if (memcmp(fx.hal.sector_writes, fx_start.hal.sector_writes, sizeof fx.hal.sector_writes) != 0) {
                /* written to (or by chance the same) */
                flash_dirty = true;
                power_up();
        }
        FUZZ_CHECK(cf_image_check(fx.flash + B_OFF, NULL) == CF_IMAGE_OK,
                   "B is not a valid image at the end");
        return 0;
}
