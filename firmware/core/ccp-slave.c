/* The node's CCP 2.1 slave: seed & key, memory access by MTA extension, an image received into C. */
#include <errno.h>
#include <string.h>

#include "canfleet/ccp.h"
#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "canfleet/seedkey.h"
#include "canfleet/sha256.h"
#include "bank.h"
#include "ccp-slave.h"
#include "journal.h"

#define LOCKOUT_MS     10000u
#define MAX_WRONG_KEYS 3u
#define CRC_CHUNK      4096u /* bytes of checksum per poll */
#define RESET_DELAY_MS 5u    /* lets the DISCONNECT reply leave the mailbox before the reset */

static uint32_t now_ms(struct cf_ccp_slave *s)
{
        return cf_hal_clock_ms(s->hal);
}

static void send(struct cf_ccp_slave *s, const uint8_t f[8])
{
        /* A frame the controller cannot take now is lost like one lost on the bus: the master's
         * time-out and retry cover both. */
        (void) cf_hal_can_send(s->hal, s->cfg->dto_id, f, CF_CCP_FRAME_LEN);
}

static void reply(struct cf_ccp_slave *s, uint8_t err, uint8_t ctr, const uint8_t *data, uint8_t n)
{
        uint8_t f[8];

        if (err != CF_CCP_OK)
                s->last_error = err;
        cf_ccp_dto_reply(f, err, ctr, data, n);
        send(s, f);
}

static void reply_err(struct cf_ccp_slave *s, uint8_t err, uint8_t ctr)
{
        reply(s, err, ctr, NULL, 0);
}

static void reply_mta(struct cf_ccp_slave *s, uint8_t ctr)
{
        uint8_t f[8];

        cf_ccp_dto_reply_mta(f, CF_CCP_OK, ctr, s->mta_ext[0], s->mta_addr[0]);
        send(s, f);
}

static uint32_t ext_size(uint8_t ext)
{
        switch (ext) {
        case CF_CCP_EXT_DEVICE_ID:
                return CF_DEVID_SIZE;
        case CF_CCP_EXT_STATUS:
                return CF_STATUS_SIZE;
        case CF_CCP_EXT_CONTROL:
                return CF_CONTROL_SIZE;
        case CF_CCP_EXT_STAGING:
                return CF_IMAGE_AREA_SIZE;
        default:
                return 0;
        }
}

/* [addr, addr + n) inside extension ext; overflow-safe. */
static bool in_range(uint8_t ext, uint32_t addr, uint32_t n)
{
        uint32_t size = ext_size(ext);
        return addr <= size && n <= size - addr;
}

static const uint8_t *staging(struct cf_ccp_slave *s, uint32_t off)
{
        return cf_hal_flash_ptr(s->hal) + (s->staging_addr - CF_FLASH_BASE) + off;
}

/* A dual-bank node? Constant on a port (CF_PORT_DUAL_BANK): the other layout's code folds away. */
static bool dual(const struct cf_ccp_slave *s)
{
        return cf_dual_bank(s->cfg) && s->bank != 0;
}

static int sector_of(struct cf_ccp_slave *s, uint32_t addr)
{
        return dual(s) ? cf_f7_sector_of(addr) : cf_flash_sector_of(addr);
}

/* Dual-bank: both banks as their journals tell, the running one (r) with the CRC the bootloader
 * checked when it runs an application from it. */
static void read_banks(struct cf_ccp_slave *s, struct cf_bank *r, struct cf_bank *o)
{
        cf_bank_read(s->hal, s->bank, s->mode == CF_MODE_APP, r);
        cf_bank_read(s->hal, cf_bank_other(s->bank), true, o);
}

static void refresh_trial(struct cf_ccp_slave *s)
{
        struct cf_bank r, o;

        if (!dual(s))
                return;
        read_banks(s, &r, &o);
        s->trial = cf_bank_trial_state(&r, &o);
}

static void device_id(struct cf_ccp_slave *s, uint8_t out[CF_DEVID_SIZE])
{
        cf_hal_uid(s->hal, out + CF_DEVID_UID);
        cf_le16_put(out + CF_DEVID_HW_ID, s->cfg->hw_id);
        cf_le16_put(out + CF_DEVID_BOOT_VERSION, CF_BOOTLOADER_VERSION);
}

/* Copy n bytes of extension memory (range already checked). */
static void read_mem(struct cf_ccp_slave *s, uint8_t ext, uint32_t addr, uint8_t *out, uint32_t n)
{
        uint8_t buf[CF_STATUS_SIZE];

        switch (ext) {
        case CF_CCP_EXT_DEVICE_ID:
                device_id(s, buf);
                memcpy(out, buf + addr, n);
                break;
        case CF_CCP_EXT_STATUS:
                cf_ccp_slave_status(s, buf);
                memcpy(out, buf + addr, n);
                break;
        case CF_CCP_EXT_CONTROL:
                memcpy(out, s->control + addr, n);
                break;
        default:
                memcpy(out, staging(s, addr), n);
                break;
        }
}

/* What a new session, or the end of one, leaves behind: nothing unlocked, nothing erased — except
 * that a group member keeps "C erased" (docs/design.md §7): its transfer goes on across sessions. */
static void session_reset(struct cf_ccp_slave *s)
{
        s->pgm_unlocked = false;
        s->seed_fresh = false;
        if (!s->group.joined)
                s->c_erased = false;
        memset(s->mta_ext, 0, sizeof(s->mta_ext));
        memset(s->mta_addr, 0, sizeof(s->mta_addr));
        s->blk_mode = false;
        s->blk.active = false;
}

void cf_ccp_slave_init(struct cf_ccp_slave *s, struct cf_hal *hal, const struct cf_node_config *cfg,
                       uint8_t mode, uint8_t last_update, uint32_t boot_count)
{
        memset(s, 0, sizeof(*s));
        s->hal = hal;
        s->cfg = cfg;
        s->mode = mode;
        s->last_update = last_update;
        s->boot_count = boot_count;
        s->staged = CF_STAGED_UNKNOWN;
        s->app_addr = CF_AREA_APP_ADDR;
        s->staging_addr = CF_AREA_STAGING_ADDR;
        s->blk.area = s->staging_addr;
        if (cf_dual_bank(cfg)) {
                unsigned bank = cf_hal_running_bank(hal);
                s->bank = (uint8_t) (bank == 2u ? 2u : 1u);
                s->app_addr = cf_f7_app_addr(s->bank);
                s->staging_addr = cf_f7_app_addr(cf_bank_other(s->bank));
                s->blk.area = s->staging_addr;
                refresh_trial(s);
                return; /* no install journal: nothing is installed by copying */
        }

        struct cf_journal j;
        cf_journal_scan(cf_hal_flash_ptr(hal), cf_le32_get(staging(s, CF_CRC_OFFSET)), &j);
        s->install_failures = j.failures > 0xFF ? 0xFF : (uint8_t) j.failures;
}

void cf_ccp_slave_status(struct cf_ccp_slave *s, uint8_t out[CF_STATUS_SIZE])
{
        const uint8_t *b = cf_hal_flash_ptr(s->hal) + (s->app_addr - CF_FLASH_BASE);

        memset(out, 0, CF_STATUS_SIZE);
        memcpy(out + CF_STATUS_TRAILER, b + CF_TRAILER_OFFSET, CF_TRAILER_SIZE);
        cf_le32_put(out + CF_STATUS_BOOT_COUNT, s->boot_count);
        out[CF_STATUS_MODE] = s->mode;
        out[CF_STATUS_LAST_UPDATE] = s->last_update;
        out[CF_STATUS_STAGED] = s->staged;
        out[CF_STATUS_LAST_ERROR] = s->last_error;
        memcpy(out + CF_STATUS_B_CRC, b + CF_CRC_OFFSET, 4);
        cf_le32_put(out + CF_STATUS_TICKS, s->ticks);
        out[CF_STATUS_INSTALL_FAILURES] = s->install_failures;
        out[CF_STATUS_BANK] = s->bank;
        out[CF_STATUS_TRIAL] = s->trial;
}

/* ---- Commands ------------------------------------------------------------------------------- */

static void cmd_exchange_id(struct cf_ccp_slave *s, uint8_t ctr)
{
        uint8_t d[4] = {CF_DEVID_SIZE, 0, CF_CCP_RES_PGM, s->pgm_unlocked ? 0 : CF_CCP_RES_PGM};

        s->mta_ext[0] = CF_CCP_EXT_DEVICE_ID;
        s->mta_addr[0] = 0;
        reply(s, CF_CCP_OK, ctr, d, sizeof(d));
}

static bool locked_out(struct cf_ccp_slave *s)
{
        if (!s->locked_out)
                return false;
        if ((int32_t) (now_ms(s) - s->lockout_until) < 0)
                return true;
        s->locked_out = false;
        return false;
}

static void cmd_get_seed(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint8_t d[5] = {0};

        if (p[0] == CF_CCP_RES_CAL || p[0] == CF_CCP_RES_DAQ) {
                /* Not protected here: status 0, no seed needed. */
                reply(s, CF_CCP_OK, ctr, d, sizeof(d));
                return;
        }
        if (p[0] != CF_CCP_RES_PGM) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        if (locked_out(s)) {
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        if (s->pgm_unlocked) {
                reply(s, CF_CCP_OK, ctr, d, sizeof(d));
                return;
        }
        cf_hal_random(s->hal, s->seed, sizeof(s->seed));
        s->seed_fresh = true;
        d[0] = 1;
        memcpy(d + 1, s->seed, sizeof(s->seed));
        reply(s, CF_CCP_OK, ctr, d, sizeof(d));
}

static void cmd_unlock(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint8_t key[CF_KEY_LEN];

        if (!s->seed_fresh || locked_out(s)) {
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        /* A seed answers one key, right or wrong: no second guess on the same seed. */
        s->seed_fresh = false;
        if (s->cfg->seedkey_echo)
                cf_ccp_key_echo(s->seed, key);
        else
                cf_ccp_key(s->cfg->node_secret, s->seed, key);
        int ok = cf_key_equal(key, p, CF_KEY_LEN);
        cf_memzero(key, sizeof(key));

        if (!ok) {
                if (++s->wrong_keys >= MAX_WRONG_KEYS) {
                        s->wrong_keys = 0;
                        s->locked_out = true;
                        s->lockout_until = now_ms(s) + LOCKOUT_MS;
                        cf_hal_log(s->hal, "ccp: three wrong keys, GET_SEED locked for 10 s");
                }
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        s->wrong_keys = 0;
        s->pgm_unlocked = true;
        uint8_t d[1] = {CF_CCP_RES_PGM};
        reply(s, CF_CCP_OK, ctr, d, sizeof(d));
}

static void cmd_set_mta(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint8_t mta = p[0], ext = p[1];
        uint32_t addr = cf_be32_get(p + 2);

        /* One past the last byte is legal: it is the MTA the node itself reports after writing or
         * reading the last bytes, and a master that lost that answer sets it again. Only a transfer of
         * size 0 (PROGRAM ending the sequence, BUILD_CHKSUM of nothing) works there. */
        if (mta > 1 || ext > CF_CCP_EXT_STAGING || addr > ext_size(ext)) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        s->mta_ext[mta] = ext;
        s->mta_addr[mta] = addr;
        reply(s, CF_CCP_OK, ctr, NULL, 0);
}

static void cmd_dnload(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *data, uint8_t n)
{
        if (n == 0 || n > CF_CCP_MAX_SIZE6) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        if (s->mta_ext[0] != CF_CCP_EXT_CONTROL) {
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        if (!in_range(CF_CCP_EXT_CONTROL, s->mta_addr[0], n)) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        memcpy(s->control + s->mta_addr[0], data, n);
        s->mta_addr[0] += n;
        reply_mta(s, ctr);
}

/* UPLOAD (mta0 and advance) and SHORT_UP (given address, MTA untouched). */
static void upload(struct cf_ccp_slave *s, uint8_t ctr, uint8_t n, uint8_t ext, uint32_t addr, bool advance)
{
        uint8_t d[CF_CCP_MAX_SIZE5];

        if (n == 0 || n > CF_CCP_MAX_SIZE5 || ext > CF_CCP_EXT_STAGING || !in_range(ext, addr, n)) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        if (ext == CF_CCP_EXT_STAGING && !s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        read_mem(s, ext, addr, d, n);
        if (advance)
                s->mta_addr[0] = addr + n;
        reply(s, CF_CCP_OK, ctr, d, n);
}

static void start_busy(struct cf_ccp_slave *s, uint8_t cmd, uint8_t ctr)
{
        s->busy_cmd = cmd;
        s->busy_ctr = ctr;
}

static void cmd_clear_memory(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint32_t size = cf_be32_get(p);

        if (!s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        if (s->mta_ext[0] != CF_CCP_EXT_STAGING || size == 0 ||
            !in_range(CF_CCP_EXT_STAGING, s->mta_addr[0], size)) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        /* The bank this node runs on trial is the previous one's only way back to it. */
        if (dual(s) && s->trial == CF_TRIAL_PENDING) {
                cf_hal_log(s->hal, "ccp: on trial: the previous bank is not erased before a confirmation");
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        uint32_t first = s->staging_addr + s->mta_addr[0];
        s->busy_sector = (uint8_t) sector_of(s, first);
        s->busy_end = (uint32_t) sector_of(s, first + size - 1);
        /* Dual-bank: the bank's story ends with its image (bank.h), before a byte of it goes. */
        s->busy_journal = dual(s);
        s->staged = CF_STAGED_UNKNOWN;
        /* From here on C is no longer what it was, whether or not the erase completes; a group
         * transfer into it is over. */
        s->c_erased = false;
        s->blk.active = false;
        cf_group_clear(&s->group);
        start_busy(s, CF_CCP_CLEAR_MEMORY, ctr);
}

static void cmd_program(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *data, uint8_t n)
{
        if (!s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        if (n > CF_CCP_MAX_SIZE6 || s->mta_ext[0] != CF_CCP_EXT_STAGING) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        if (!s->c_erased) {
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        if (n == 0) {
                /* End of a programming sequence: nothing is buffered, so nothing to flush. */
                reply_mta(s, ctr);
                return;
        }
        uint32_t off = s->mta_addr[0];
        if (!in_range(CF_CCP_EXT_STAGING, off, n)) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        if (s->blk_mode) {
                /* Into RAM only: BLOCK_CHECK programs it once its check value matches. Bytes sent
                 * twice (a retry after a lost answer) just land again. */
                if (off / CF_BLOCK_SIZE != (off + n - 1u) / CF_BLOCK_SIZE) {
                        reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                        return;
                }
                cf_block_put(&s->blk, s->hal, off, data, n);
                s->mta_addr[0] = off + n;
                s->staged = CF_STAGED_ERASED;
                reply_mta(s, ctr);
                return;
        }
        const uint8_t *dst = staging(s, off);
        for (uint8_t i = 0; i < n; i++)
                if (dst[i] != CF_FLASH_ERASED) {
                        reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                        return;
                }
        int r = cf_hal_flash_program(s->hal, s->staging_addr + off, data, n);
        if (r == -EBUSY) {
                reply_err(s, CF_CCP_ERR_BUSY, ctr);
                return;
        }
        if (r < 0) {
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        s->mta_addr[0] = off + n;
        s->staged = CF_STAGED_ERASED;
        /* A member's repair: the slots it fills are no longer missing. */
        cf_group_record_range(&s->group, off, n);
        reply_mta(s, ctr);
}

static void reply_chksum(struct cf_ccp_slave *s, uint8_t ctr, uint32_t crc)
{
        uint8_t d[5];

        d[0] = 4;
        cf_be32_put(d + 1, crc);
        reply(s, CF_CCP_OK, ctr, d, sizeof(d));
}

static void cmd_build_chksum(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint32_t size = cf_be32_get(p);
        uint8_t ext = s->mta_ext[0];
        uint32_t addr = s->mta_addr[0];

        if (size % 4 != 0 || !in_range(ext, addr, size)) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        if (ext != CF_CCP_EXT_STAGING) {
                uint8_t buf[CF_STATUS_SIZE];
                read_mem(s, ext, addr, buf, size);
                reply_chksum(s, ctr, cf_crc32_le(CF_CRC32_INIT, buf, size));
                return;
        }
        if (!s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        s->busy_addr = addr;
        s->busy_end = addr + size;
        s->busy_crc = CF_CRC32_INIT;
        start_busy(s, CF_CCP_BUILD_CHKSUM, ctr);
}

static void end_connection(struct cf_ccp_slave *s)
{
        s->connected = false;
        session_reset(s);
}

/* CCP 2.1: a CONNECT to another station disconnects us as DISCONNECT(temporary) would, without a
 * word: the master talks to that station now, maybe on our DTO id. For the same reason a long
 * operation in progress must not answer late, and as nothing would use its result it is dropped: an
 * erase already started ends in the flash controller and C waits for a new CLEAR_MEMORY; a
 * DISCONNECT(end) is not taken, so no reset. */
static void to_other_station(struct cf_ccp_slave *s)
{
        s->busy_cmd = 0;
        end_connection(s);
}

static void cmd_disconnect(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        if (p[0] == CF_CCP_DISCONNECT_TEMPORARY) {
                end_connection(s);
                reply(s, CF_CCP_OK, ctr, NULL, 0);
                return;
        }
        if (p[0] != CF_CCP_DISCONNECT_END) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        /* The end of the session ends a group transfer, whatever the check of C says. */
        cf_group_clear(&s->group);
        /* Validating C takes a CRC of 256 KB: done in steps by the poll. */
        s->busy_addr = 0;
        s->busy_end = CF_CRC_OFFSET;
        s->busy_crc = CF_CRC32_INIT;
        start_busy(s, CF_CCP_DISCONNECT, ctr);
}

/* ---- Group transfer services (ACTION_SERVICE, docs/design.md §7) ----------------------------- */

static void svc_group_join(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint16_t id = (uint16_t) (p[0] << 8 | p[1]), tag = (uint16_t) (p[2] << 8 | p[3]);
        uint8_t d[2];

        if (!s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        if (!s->c_erased) {
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        /* The group id must not be one we already listen or answer on. */
        if (id > 0x7FFu || id == s->cfg->cro_id || id == s->cfg->dto_id) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        if (s->group.joined && (s->group.can_id != id || s->group.tag != tag)) {
                /* Another transfer is writing C: only a new CLEAR_MEMORY (or LEAVE) frees it. */
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        if (!s->group.joined)
                cf_group_join(&s->group, id, tag, s->staging_addr);
        if (s->blk_mode)
                s->group.verify = true;
        d[0] = (uint8_t) (s->group.received >> 8);
        d[1] = (uint8_t) s->group.received;
        reply(s, CF_CCP_OK, ctr, d, sizeof(d));
}

static void svc_group_leave(struct cf_ccp_slave *s, uint8_t ctr)
{
        if (!s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        /* "C erased" stays for this connection only (it was erased, or carried into it). */
        cf_group_clear(&s->group);
        reply(s, CF_CCP_OK, ctr, NULL, 0);
}

static void svc_gap(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint16_t first, run;
        uint8_t f[8];

        if (!s->group.joined) {
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        cf_group_gap(&s->group, (uint16_t) (p[0] << 8 | p[1]), &first, &run);
        cf_ccp_dto_reply_gap(f, ctr, first, run);
        send(s, f);
}

int cf_ccp_slave_confirm(struct cf_ccp_slave *s)
{
        struct cf_bank r, o;

        if (!dual(s) || s->mode != CF_MODE_APP)
                return 0;
        read_banks(s, &r, &o);
        if (!cf_bank_on_trial(&r))
                return 0;
        int e = cf_bank_append(s->hal, &r, CF_BANK_CONFIRMED);
        refresh_trial(s);
        if (e == 0)
                cf_hal_log(s->hal, "node: the running bank is confirmed");
        return e;
}

static void svc_confirm(struct cf_ccp_slave *s, uint8_t ctr)
{
        if (!s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        int e = cf_ccp_slave_confirm(s);
        if (e == -EBUSY)
                reply_err(s, CF_CCP_ERR_BUSY, ctr);
        else if (e < 0)
                reply_err(s, CF_CCP_ERR_NOT_AVAILABLE, ctr);
        else
                reply(s, CF_CCP_OK, ctr, NULL, 0);
}

static void svc_block_mode(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint16_t size = (uint16_t) (p[0] << 8 | p[1]);

        if (!s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        if (size != CF_BLOCK_SIZE) {
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, ctr);
                return;
        }
        s->blk_mode = true;
        if (s->group.joined)
                s->group.verify = true;
        uint8_t d[2] = {(uint8_t) (size >> 8), (uint8_t) size};
        reply(s, CF_CCP_OK, ctr, d, sizeof(d));
}

static void svc_block_check(struct cf_ccp_slave *s, uint8_t ctr, const uint8_t *p)
{
        uint32_t crc = cf_be32_get(p);
        uint16_t k;

        if (!s->pgm_unlocked) {
                reply_err(s, CF_CCP_ERR_ACCESS_LOCKED, ctr);
                return;
        }
        if (!s->blk_mode || !s->c_erased) {
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                return;
        }
        if (s->blk.active) {
                k = s->blk.index;
                int r = cf_block_commit(&s->blk, s->hal, crc);
                if (r == -EBUSY) {
                        reply_err(s, CF_CCP_ERR_BUSY, ctr);
                        return;
                }
                if (r < 0) {
                        s->blocks_bad++;
                        reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                        return;
                }
        } else {
                /* Nothing buffered: committed already, and the OK answer lost? The block the
                 * PROGRAMs filled ends at MTA0. */
                if (s->mta_ext[0] != CF_CCP_EXT_STAGING || s->mta_addr[0] == 0) {
                        reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                        return;
                }
                k = (uint16_t) ((s->mta_addr[0] - 1u) / CF_BLOCK_SIZE);
                if (!cf_block_in_flash(s->hal, s->staging_addr, k, crc)) {
                        reply_err(s, CF_CCP_ERR_ACCESS_DENIED, ctr);
                        return;
                }
        }
        /* A member's repair: the block's slots are no longer missing. */
        cf_group_record_block(&s->group, k);
        uint8_t d[2] = {(uint8_t) (k >> 8), (uint8_t) k};
        reply(s, CF_CCP_OK, ctr, d, sizeof(d));
}

static void cmd_action_service(struct cf_ccp_slave *s, const struct cf_ccp_cro *c)
{
        /* The seed's demo firmware (echo mode) and older bootloaders have no ACTION_SERVICE. */
        if (s->cfg->seedkey_echo || s->cfg->no_group) {
                reply_err(s, CF_CCP_ERR_UNKNOWN_CMD, c->ctr);
                return;
        }
        switch (cf_ccp_cro_service(c)) {
        case CF_CCP_SVC_GROUP_JOIN:
                svc_group_join(s, c->ctr, c->p + 2);
                break;
        case CF_CCP_SVC_GROUP_LEAVE:
                svc_group_leave(s, c->ctr);
                break;
        case CF_CCP_SVC_GAP:
                svc_gap(s, c->ctr, c->p + 2);
                break;
        case CF_CCP_SVC_CONFIRM:
                svc_confirm(s, c->ctr);
                break;
        case CF_CCP_SVC_BLOCK_MODE:
        case CF_CCP_SVC_BLOCK_CHECK:
                /* cfg->no_block: a bootloader from before checked blocks, the service unknown. */
                if (s->cfg->no_block)
                        reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, c->ctr);
                else if (cf_ccp_cro_service(c) == CF_CCP_SVC_BLOCK_MODE)
                        svc_block_mode(s, c->ctr, c->p + 2);
                else
                        svc_block_check(s, c->ctr, c->p + 2);
                break;
        default:
                reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, c->ctr);
                break;
        }
}

bool cf_ccp_slave_group_id(const struct cf_ccp_slave *s, uint32_t *id)
{
        if (!s->group.joined || s->reset_pending)
                return false;
        *id = s->group.can_id;
        return true;
}

void cf_ccp_slave_group_rx(struct cf_ccp_slave *s, const uint8_t *data, uint8_t dlc)
{
        if (s->reset_pending)
                return;
        cf_group_rx(&s->group, s->hal, data, dlc);
}

void cf_ccp_slave_rx(struct cf_ccp_slave *s, const uint8_t *data, uint8_t dlc)
{
        struct cf_ccp_cro c;

        if (s->reset_pending || cf_ccp_cro_parse(data, dlc, &c) < 0)
                return;

        if (c.cmd == CF_CCP_CONNECT || c.cmd == CF_CCP_TEST) {
                if (cf_le16_get(c.p) != s->cfg->station) {
                        if (c.cmd == CF_CCP_CONNECT && s->connected)
                                to_other_station(s);
                        return;
                }
                if (s->busy_cmd) {
                        reply_err(s, CF_CCP_ERR_BUSY, c.ctr);
                        return;
                }
                if (c.cmd == CF_CCP_CONNECT) {
                        /* Every CONNECT starts a session from scratch: locked, nothing erased. */
                        s->connected = true;
                        session_reset(s);
                }
                reply(s, CF_CCP_OK, c.ctr, NULL, 0);
                return;
        }
        if (!s->connected)
                return;
        /* Another station's, busy or not: an answer from us would pass for that station's. */
        if (c.cmd == CF_CCP_DISCONNECT && cf_le16_get(c.p + 2) != s->cfg->station)
                return;
        if (s->busy_cmd) {
                reply_err(s, CF_CCP_ERR_BUSY, c.ctr);
                return;
        }

        switch (c.cmd) {
        case CF_CCP_GET_CCP_VERSION: {
                uint8_t d[2] = {2, 1};
                reply(s, CF_CCP_OK, c.ctr, d, sizeof(d));
                break;
        }
        case CF_CCP_EXCHANGE_ID:
                cmd_exchange_id(s, c.ctr);
                break;
        case CF_CCP_GET_SEED:
                cmd_get_seed(s, c.ctr, c.p);
                break;
        case CF_CCP_UNLOCK:
                cmd_unlock(s, c.ctr, c.p);
                break;
        case CF_CCP_SET_MTA:
                cmd_set_mta(s, c.ctr, c.p);
                break;
        case CF_CCP_DNLOAD:
                if (c.p[0] > CF_CCP_MAX_SIZE5)
                        reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, c.ctr);
                else
                        cmd_dnload(s, c.ctr, c.p + 1, c.p[0]);
                break;
        case CF_CCP_DNLOAD_6:
                cmd_dnload(s, c.ctr, c.p, CF_CCP_MAX_SIZE6);
                break;
        case CF_CCP_UPLOAD:
                upload(s, c.ctr, c.p[0], s->mta_ext[0], s->mta_addr[0], true);
                break;
        case CF_CCP_SHORT_UP:
                upload(s, c.ctr, c.p[0], c.p[1], cf_be32_get(c.p + 2), false);
                break;
        case CF_CCP_CLEAR_MEMORY:
                cmd_clear_memory(s, c.ctr, c.p);
                break;
        case CF_CCP_PROGRAM:
                if (c.p[0] > CF_CCP_MAX_SIZE5)
                        reply_err(s, CF_CCP_ERR_OUT_OF_RANGE, c.ctr);
                else
                        cmd_program(s, c.ctr, c.p + 1, c.p[0]);
                break;
        case CF_CCP_PROGRAM_6:
                cmd_program(s, c.ctr, c.p, CF_CCP_MAX_SIZE6);
                break;
        case CF_CCP_BUILD_CHKSUM:
                cmd_build_chksum(s, c.ctr, c.p);
                break;
        case CF_CCP_DISCONNECT:
                cmd_disconnect(s, c.ctr, c.p);
                break;
        case CF_CCP_ACTION_SERVICE:
                cmd_action_service(s, &c);
                break;
        default:
                /* MOVE included: C is written only through PROGRAM. */
                reply_err(s, CF_CCP_ERR_UNKNOWN_CMD, c.ctr);
                break;
        }
}

/* ---- Long operations ------------------------------------------------------------------------ */

static void finish(struct cf_ccp_slave *s)
{
        s->busy_cmd = 0;
}

static void poll_clear_memory(struct cf_ccp_slave *s)
{
        int r = cf_hal_flash_poll(s->hal);

        if (r == -EINPROGRESS)
                return;
        if (r >= 0 && dual(s) && s->busy_journal) {
                r = cf_hal_flash_erase_start(s->hal, cf_bank_journal_sector(cf_bank_other(s->bank)));
                if (r == -EBUSY)
                        return;
                if (r >= 0) {
                        s->busy_journal = false;
                        return;
                }
        }
        if (r >= 0 && s->busy_sector <= s->busy_end) {
                r = cf_hal_flash_erase_start(s->hal, s->busy_sector);
                if (r == -EBUSY)
                        return;
                if (r >= 0) {
                        s->busy_sector++;
                        return;
                }
        }
        finish(s);
        if (r < 0) {
                cf_hal_log(s->hal, "ccp: erase of C failed");
                s->staged = CF_STAGED_UNKNOWN;
                reply_err(s, CF_CCP_ERR_NOT_AVAILABLE, s->busy_ctr);
                return;
        }
        s->c_erased = true;
        s->c_restaged = true;
        s->staged = CF_STAGED_ERASED;
        refresh_trial(s); /* the other bank's story is gone */
        reply(s, CF_CCP_OK, s->busy_ctr, NULL, 0);
}

/* One chunk of the running CRC over C; true when busy_end is reached. */
static bool crc_chunk(struct cf_ccp_slave *s)
{
        uint32_t n = s->busy_end - s->busy_addr;

        if (n > CRC_CHUNK)
                n = CRC_CHUNK;
        s->busy_crc = cf_hal_flash_crc(s->hal, s->busy_crc, s->staging_addr + s->busy_addr, n);
        s->busy_addr += n;
        return s->busy_addr >= s->busy_end;
}

/* The bootloader's own test (boot.c): CRC done by the caller, then trailer, vectors, policy. */
static int staged_check(struct cf_ccp_slave *s, uint32_t crc)
{
        const uint8_t *flash = cf_hal_flash_ptr(s->hal);
        const uint8_t *c = staging(s, 0);
        const uint8_t *b = flash + (s->app_addr - CF_FLASH_BASE);
        struct cf_image_info staged, running;
        bool have_running = false;

        if (crc != cf_le32_get(c + CF_CRC_OFFSET))
                return CF_IMAGE_BAD_CRC;
        cf_image_info_parse(c + CF_TRAILER_OFFSET, &staged);
        int r = cf_image_check_trailer(&staged);
        if (r != CF_IMAGE_OK)
                return r;
        /* An image linked for the other bank would not run from this one (docs/design.md §9). */
        r = cf_image_check_vectors_at(cf_le32_get(c), cf_le32_get(c + 4),
                                      dual(s) ? s->staging_addr : CF_AREA_APP_ADDR);
        if (r != CF_IMAGE_OK)
                return r;
        /* The application runs from a B the bootloader validated; in recovery there is none. */
        if (s->mode == CF_MODE_APP) {
                cf_image_info_parse(b + CF_TRAILER_OFFSET, &running);
                have_running = cf_image_check_trailer(&running) == CF_IMAGE_OK;
        }
        return cf_image_check_policy(&staged, s->cfg->hw_id, have_running ? &running : NULL);
}

/* A new image is about to be installed: earlier failed installs must not count against it. Only
 * written when there is something to forget, so a journal without failures is never touched. A write
 * that fails leaves the old count: the bootloader then reports CF_UPDATE_GAVE_UP, which the gateway
 * sees, rather than the node refusing the session here. */
static void forget_failures(struct cf_ccp_slave *s)
{
        struct cf_journal j;

        cf_journal_scan(cf_hal_flash_ptr(s->hal), 0, &j);
        if (!j.since_staged)
                return;
        if (cf_journal_append(s->hal, &j, CF_JOURNAL_STAGED, cf_le32_get(staging(s, CF_CRC_OFFSET))) < 0) {
                cf_hal_log(s->hal, "ccp: the install journal cannot take the new image");
                return;
        }
        s->install_failures = 0;
        cf_hal_log(s->hal, "ccp: new image staged, earlier failed installs forgotten");
}

/* Dual-bank DISCONNECT(end) with a valid image: the STAGED record that makes the next boot try it.
 * CF_CCP_OK, or the error to answer. */
static uint8_t request_trial(struct cf_ccp_slave *s)
{
        struct cf_bank r, o;

        read_banks(s, &r, &o);
        if (cf_bank_requested(&o))
                return CF_CCP_OK; /* asked before (a DISCONNECT repeated): once is enough */
        if (o.trial) {
                /* Tried already (and confirmed or reverted): a new trial needs a new staging, so
                 * that a master that lost track cannot make a failing image boot again and again. */
                s->staged = CF_STAGED_INVALID;
                cf_hal_log(s->hal, "ccp: DISCONNECT refused, the staged image was tried already");
                return CF_CCP_ERR_ACCESS_DENIED;
        }
        int e = cf_bank_append(s->hal, &o, CF_BANK_STAGED);
        if (e < 0) {
                cf_hal_log(s->hal, "ccp: DISCONNECT refused, the trial request cannot be written");
                return e == -EBUSY ? CF_CCP_ERR_BUSY : CF_CCP_ERR_NOT_AVAILABLE;
        }
        return CF_CCP_OK;
}

static void poll_disconnect(struct cf_ccp_slave *s)
{
        if (!crc_chunk(s))
                return;
        finish(s);
        int r = staged_check(s, s->busy_crc);
        if (r != CF_IMAGE_OK) {
                s->staged = CF_STAGED_INVALID;
                cf_hal_log(s->hal, "ccp: DISCONNECT refused, staged image invalid");
                reply_err(s, CF_CCP_ERR_ACCESS_DENIED, s->busy_ctr);
                return;
        }
        if (dual(s)) {
                uint8_t err = request_trial(s);
                if (err != CF_CCP_OK) {
                        reply_err(s, err, s->busy_ctr);
                        return;
                }
        }
        s->staged = CF_STAGED_VALID;
        if (!dual(s) && s->c_restaged)
                forget_failures(s);
        reply(s, CF_CCP_OK, s->busy_ctr, NULL, 0);
        end_connection(s);
        s->reset_pending = true;
        s->reset_at = now_ms(s) + RESET_DELAY_MS;
        cf_hal_log(s->hal, "ccp: staged image valid, resetting into the bootloader");
}

void cf_ccp_slave_poll(struct cf_ccp_slave *s)
{
        s->ticks++;
        cf_hal_watchdog_kick(s->hal);

        if (s->reset_pending) {
                if ((int32_t) (now_ms(s) - s->reset_at) >= 0)
                        cf_hal_reset(s->hal);
                return;
        }
        if (s->locked_out)
                (void) locked_out(s);
        cf_group_poll(&s->group, s->hal);

        switch (s->busy_cmd) {
        case CF_CCP_CLEAR_MEMORY:
                poll_clear_memory(s);
                break;
        case CF_CCP_BUILD_CHKSUM:
                if (crc_chunk(s)) {
                        finish(s);
                        reply_chksum(s, s->busy_ctr, s->busy_crc);
                }
                break;
        case CF_CCP_DISCONNECT:
                poll_disconnect(s);
                break;
        default:
                break;
        }
}
