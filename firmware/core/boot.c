/* The bootloader's boot sequence (docs/design.md §2) as a step function: install a staged image, run B. */
#include <errno.h>
#include <string.h>

#include "boot.h"
#include "canfleet/ccp.h"
#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "canfleet/node-status.h"

/*
 * Power-loss argument. C is only erased after B has been verified equal to it, so at any instant
 * either C is CRC-valid (the next boot redoes the whole install: B is erased first, so whatever
 * a torn erase or program left in B does not matter) or B holds the verified copy (a cut while C
 * is erased leaves C with a wrong CRC, or, when the cut touched nothing that mattered, still valid:
 * then the install is simply done again). Everything the sequence needs is recomputed from flash
 * at each boot; the only thing remembered across a reset is the install journal (journal.h), which
 * counts installs that failed (not ones that were cut), so that cuts are retried without limit and
 * a flash that refuses the install is given up on after a few tries instead of resetting forever.
 */

enum {
        ST_B_CRC,   /* CRC of B, to know whether B runs (and whether rollback applies) */
        ST_C_CRC,   /* CRC of C */
        ST_ERASE_B, /* install: erase B's sectors */
        ST_COPY,    /* program C's non-erased chunks into B */
        ST_VERIFY,  /* CRC of B against C's */
        ST_ERASE_C, /* B verified: retire C */
        ST_DONE,    /* outcome JUMP or RECOVERY */
        ST_RESET,   /* outcome RESET */
        ST_JOURNAL_ERASE, /* the journal is nearly full: erase its sector */
        ST_JOURNAL_CARRY, /* write the staged image's failures again */
        ST_FAILED,  /* the install failed: count it in the journal */
};
/* B was found valid in ST_B_CRC: kept beside the state so it survives the later phases. */
#define ST_FLAG_B_VALID 0x100
#define ST_FLAG_C_CRC_OK 0x200 /* C's CRC checked out */

/* Why this boot goes on without installing C (b->give_up). */
enum {
        GIVE_UP_NO = 0,
        GIVE_UP_COUNTED = 1,   /* CF_JOURNAL_MAX_FAILURES failures counted: CF_UPDATE_GAVE_UP */
        GIVE_UP_UNCOUNTED = 2, /* a failure the journal could not take: try at the next power-on */
};
#define ST_MASK         0xFF

#define CRC_CHUNK  4096u /* bytes of CRC per step: well under a millisecond with the CRC unit */
#define COPY_CHUNK 256u  /* bytes programmed per step */
#define COPY_SCAN  16u   /* erased chunks skipped per step at most */

#define CRC_LEN CF_CRC_OFFSET

static const uint8_t *area_ptr(struct cf_boot *b, uint32_t addr)
{
        return cf_hal_flash_ptr(b->hal) + (addr - CF_FLASH_BASE);
}

static uint32_t stored_crc(struct cf_boot *b, uint32_t area_addr)
{
        return cf_le32_get(area_ptr(b, area_addr + CF_CRC_OFFSET));
}

static void read_info(struct cf_boot *b, uint32_t area_addr, struct cf_image_info *info)
{
        cf_image_info_parse(area_ptr(b, area_addr + CF_TRAILER_OFFSET), info);
}

static int check_vectors(struct cf_boot *b, uint32_t area_addr)
{
        const uint8_t *p = area_ptr(b, area_addr);
        return cf_image_check_vectors(cf_le32_get(p), cf_le32_get(p + 4));
}

static void set_state(struct cf_boot *b, int st)
{
        b->state = (b->state & ~ST_MASK) | st;
        b->off = 0;
        b->crc = CF_CRC32_INIT;
}

/* One CRC chunk of [area, area + CRC_LEN); true when the whole range is done. */
static bool crc_step(struct cf_boot *b, uint32_t area_addr)
{
        uint32_t n = CRC_LEN - b->off;

        if (n > CRC_CHUNK)
                n = CRC_CHUNK;
        b->crc = cf_hal_flash_crc(b->hal, b->crc, area_addr + b->off, n);
        b->off += n;
        return b->off >= CRC_LEN;
}

/* Erase the sectors of an area one at a time, last sector first (for C that drops the trailer
 * and CRC at once). b->sector counts sectors started. Returns 1 done, 0 busy, <0 failure. */
static int erase_step(struct cf_boot *b, enum cf_area area)
{
        const struct cf_flash_area *a = &cf_flash_areas[area];
        int r = cf_hal_flash_poll(b->hal);

        if (r == -EINPROGRESS)
                return 0;
        if (r < 0)
                return r;
        if (b->sector >= a->n_sectors)
                return 1;
        r = cf_hal_flash_erase_start(b->hal, (unsigned) (a->first_sector + a->n_sectors - 1 - b->sector));
        if (r == -EBUSY)
                return 0;
        if (r < 0)
                return r;
        b->sector++;
        return 0;
}

/* Out of line, so that the fuzz build can leave its byte loop out of its coverage tracing
 * (tests/fuzz/coverage-ignore.txt). */
__attribute__((noinline)) static bool all_erased(const uint8_t *p, uint32_t n)
{
        for (uint32_t i = 0; i < n; i++)
                if (p[i] != CF_FLASH_ERASED)
                        return false;
        return true;
}

/* Returns 1 done, 0 busy, <0 failure. */
static int copy_step(struct cf_boot *b)
{
        for (unsigned scanned = 0; scanned < COPY_SCAN; scanned++) {
                if (b->off >= CF_IMAGE_AREA_SIZE)
                        return 1;

                uint32_t n = CF_IMAGE_AREA_SIZE - b->off;
                if (n > COPY_CHUNK)
                        n = COPY_CHUNK;
                const uint8_t *src = area_ptr(b, CF_AREA_STAGING_ADDR + b->off);

                /* B was erased in this boot: an erased chunk of C is already there. */
                if (all_erased(src, n)) {
                        b->off += n;
                        continue;
                }
                int r = cf_hal_flash_program(b->hal, CF_AREA_APP_ADDR + b->off, src, n);
                if (r == -EBUSY)
                        return 0;
                if (r < 0)
                        return r;
                b->off += n;
                return 0;
        }
        return 0;
}

/* Decide what C is worth, once both CRCs are known. */
static void decide(struct cf_boot *b, bool c_crc_ok)
{
        bool b_valid = b->state & ST_FLAG_B_VALID;
        struct cf_image_info c, running;

        if (c_crc_ok && b->give_up == GIVE_UP_UNCOUNTED) {
                cf_hal_log(b->hal, "boot: the staged image failed to install, tried again at the next power-on");
                b->last_update = CF_UPDATE_VERIFY_FAILED;
                set_state(b, ST_DONE);
                return;
        }
        if (c_crc_ok && (b->give_up || (!b->no_journal && b->journal.failures >= CF_JOURNAL_MAX_FAILURES))) {
                /* Not even the policy checks: whatever C is, it failed to install before. */
                cf_hal_log(b->hal, "boot: the staged image failed to install 3 times, not tried again");
                b->last_update = CF_UPDATE_GAVE_UP;
                set_state(b, ST_DONE);
                return;
        }

        if (!c_crc_ok) {
                /* last_update stays as cf_boot_init() (or the caller) left it. */
                set_state(b, ST_DONE);
                return;
        }

        read_info(b, CF_AREA_STAGING_ADDR, &c);
        int r = cf_image_check_trailer(&c);
        /* An image that would not boot from B is refused before B is touched. */
        if (r == CF_IMAGE_OK)
                r = check_vectors(b, CF_AREA_STAGING_ADDR);
        if (r == CF_IMAGE_OK) {
                if (b_valid)
                        read_info(b, CF_AREA_APP_ADDR, &running);
                r = cf_image_check_policy(&c, b->cfg->hw_id, b_valid ? &running : NULL);
        }
        if (r != CF_IMAGE_OK) {
                cf_hal_log(b->hal, "boot: staged image refused");
                b->last_update = CF_UPDATE_REJECTED;
                set_state(b, ST_DONE);
                return;
        }

        cf_hal_log(b->hal, "boot: installing the staged image");
        b->sector = 0;
        set_state(b, ST_ERASE_B);
}

void cf_boot_init(struct cf_boot *b, struct cf_hal *hal, const struct cf_node_config *cfg)
{
        memset(b, 0, sizeof(*b));
        b->hal = hal;
        b->cfg = cfg;
        b->last_update = CF_UPDATE_NONE;
        b->state = ST_B_CRC;
        b->crc = CF_CRC32_INIT;
}

static enum cf_boot_outcome install_failed(struct cf_boot *b)
{
        set_state(b, ST_FAILED);
        return CF_BOOT_BUSY;
}

/* C is still intact. Below the limit the next boot starts the install over; at the limit, or when
 * the failure cannot even be counted, this boot goes on without C: B is checked again from scratch
 * (the failed install may have erased it) and decide() gives up on C. */
static enum cf_boot_outcome record_failure(struct cf_boot *b)
{
        int r = b->no_journal ? -ENOSPC : cf_journal_append(b->hal, &b->journal, CF_JOURNAL_FAILED, b->c_crc);

        if (r == -EBUSY)
                return CF_BOOT_BUSY;
        if (r == 0 && b->journal.failures < CF_JOURNAL_MAX_FAILURES) {
                cf_hal_log(b->hal, "boot: install failed, C kept for a retry");
                b->last_update = CF_UPDATE_VERIFY_FAILED;
                set_state(b, ST_RESET);
                return CF_BOOT_RESET;
        }
        if (r < 0)
                cf_hal_log(b->hal, "boot: install failed and the journal cannot count it");
        b->give_up = r < 0 ? GIVE_UP_UNCOUNTED : GIVE_UP_COUNTED;
        b->state = ST_B_CRC; /* B's flag too */
        set_state(b, ST_B_CRC);
        return CF_BOOT_BUSY;
}

/* The journal's sector, erased when nearly full. Returns 1 done, 0 busy, <0 failure. */
static int journal_erase_step(struct cf_boot *b)
{
        int r = cf_hal_flash_poll(b->hal);

        if (r == -EINPROGRESS)
                return 0;
        if (r < 0)
                return r;
        if (b->sector > 0)
                return 1;
        r = cf_hal_flash_erase_start(b->hal, CF_JOURNAL_SECTOR);
        if (r == -EBUSY)
                return 0;
        if (r < 0)
                return r;
        b->sector = 1;
        return 0;
}

static void scan_journal(struct cf_boot *b)
{
        cf_journal_scan(cf_hal_flash_ptr(b->hal), b->c_crc, &b->journal);
}

enum cf_boot_outcome cf_boot_step(struct cf_boot *b)
{
        int r;
        bool c_crc_ok;

        cf_hal_watchdog_kick(b->hal);
        if (cf_dual_bank(b->cfg))
                return cf_boot_dual_step(b);

        switch (b->state & ST_MASK) {
        case ST_B_CRC:
                if (!crc_step(b, CF_AREA_APP_ADDR))
                        return CF_BOOT_BUSY;
                if (b->crc == stored_crc(b, CF_AREA_APP_ADDR) &&
                    check_vectors(b, CF_AREA_APP_ADDR) == CF_IMAGE_OK) {
                        struct cf_image_info info;
                        read_info(b, CF_AREA_APP_ADDR, &info);
                        if (cf_image_check_trailer(&info) == CF_IMAGE_OK)
                                b->state |= ST_FLAG_B_VALID;
                }
                set_state(b, ST_C_CRC);
                return CF_BOOT_BUSY;

        case ST_C_CRC:
                if (!crc_step(b, CF_AREA_STAGING_ADDR))
                        return CF_BOOT_BUSY;
                b->c_crc = stored_crc(b, CF_AREA_STAGING_ADDR);
                c_crc_ok = b->crc == b->c_crc;
                if (c_crc_ok)
                        b->state |= ST_FLAG_C_CRC_OK;
                scan_journal(b);
                if (cf_journal_low(&b->journal) && !b->give_up) {
                        cf_hal_log(b->hal, "boot: compacting the install journal");
                        b->carry = c_crc_ok ? b->journal.failures : 0;
                        if (b->carry > CF_JOURNAL_MAX_FAILURES)
                                b->carry = CF_JOURNAL_MAX_FAILURES;
                        b->sector = 0;
                        set_state(b, ST_JOURNAL_ERASE);
                        return CF_BOOT_BUSY;
                }
                decide(b, c_crc_ok);
                return CF_BOOT_BUSY;

        case ST_JOURNAL_ERASE:
                r = journal_erase_step(b);
                if (r == 0)
                        return CF_BOOT_BUSY;
                scan_journal(b);
                if (r < 0 || b->journal.next != 0) {
                        /* A journal that cannot be erased cannot count: what it holds is ignored,
                         * the install is tried, and a failure ends this boot without a reset
                         * (record_failure()): one try per power-on, never a loop. */
                        cf_hal_log(b->hal, "boot: the install journal cannot be erased, not counting");
                        b->no_journal = true;
                        decide(b, b->state & ST_FLAG_C_CRC_OK);
                        return CF_BOOT_BUSY;
                }
                set_state(b, ST_JOURNAL_CARRY);
                return CF_BOOT_BUSY;

        case ST_JOURNAL_CARRY:
                if (b->off < b->carry) {
                        r = cf_journal_append(b->hal, &b->journal, CF_JOURNAL_FAILED, b->c_crc);
                        if (r == -EBUSY)
                                return CF_BOOT_BUSY;
                        b->off++; /* a failed write is counted by the scan as garbage, or lost */
                        return CF_BOOT_BUSY;
                }
                scan_journal(b);
                decide(b, b->state & ST_FLAG_C_CRC_OK);
                return CF_BOOT_BUSY;

        case ST_FAILED:
                return record_failure(b);

        case ST_ERASE_B:
                r = erase_step(b, CF_AREA_APP);
                if (r < 0)
                        return install_failed(b);
                if (r == 1) {
                        /* B no longer holds an image, whatever it held before. */
                        b->state &= ~ST_FLAG_B_VALID;
                        set_state(b, ST_COPY);
                }
                return CF_BOOT_BUSY;

        case ST_COPY:
                r = copy_step(b);
                if (r < 0)
                        return install_failed(b);
                if (r == 1)
                        set_state(b, ST_VERIFY);
                return CF_BOOT_BUSY;

        case ST_VERIFY:
                if (!crc_step(b, CF_AREA_APP_ADDR))
                        return CF_BOOT_BUSY;
                {
                        uint32_t c_crc = stored_crc(b, CF_AREA_STAGING_ADDR);
                        if (b->crc != c_crc || stored_crc(b, CF_AREA_APP_ADDR) != c_crc ||
                            memcmp(area_ptr(b, CF_AREA_APP_ADDR + CF_TRAILER_OFFSET),
                                   area_ptr(b, CF_AREA_STAGING_ADDR + CF_TRAILER_OFFSET),
                                   CF_TRAILER_SIZE) != 0)
                                return install_failed(b);
                }
                b->sector = 0;
                set_state(b, ST_ERASE_C);
                return CF_BOOT_BUSY;

        case ST_ERASE_C:
                r = erase_step(b, CF_AREA_STAGING);
                if (r == 0)
                        return CF_BOOT_BUSY;
                /* B is verified; should C resist erasing, the next boot installs it again, which is
                 * harmless. Either way the reset starts the new application cleanly. */
                cf_hal_log(b->hal, r == 1 ? "boot: image installed" : "boot: installed, C not erased");
                b->last_update = CF_UPDATE_INSTALLED;
                set_state(b, ST_RESET);
                return CF_BOOT_RESET;

        case ST_RESET:
                return CF_BOOT_RESET;

        default:
                return (b->state & ST_FLAG_B_VALID) ? CF_BOOT_JUMP : CF_BOOT_RECOVERY;
        }
}

uint8_t cf_boot_last_update(const struct cf_boot *b)
{
        return b->last_update;
}

uint32_t cf_boot_install_failures(const struct cf_boot *b)
{
        return b->journal.failures;
}
