/* The dual-bank boot sequence (docs/design.md §9): trial boot of a staged bank, confirmation, revert. */
#include <errno.h>

#include "boot.h"
#include "canfleet/ccp.h"
#include "canfleet/crc32.h"
#include "canfleet/image.h"
#include "canfleet/layout.h"
#include "canfleet/node-status.h"

/*
 * Power-loss argument (bank.h has the records). Whatever the chip boots — the bank BOOT_ADD0 names,
 * or bank 1 when a torn write left it naming neither — that bank's bootloader decides from flash
 * alone, the same way either bank would: the decision depends on the two areas and the two journals,
 * not on which bootloader makes it. So a flip cut before, inside or after its write is simply done
 * again (or undone) by the next boot. Each step writes at most one thing, and every record is
 * written before the act it permits: TRIAL before the flip that starts a trial (a TRIAL without
 * the flip only resumes it), BOOTED before the image's first run (a torn BOOTED counts as booted),
 * REVERTED before the flip back. An image on trial thus runs once per BOOTED, and a second boot
 * finds BOOTED without CONFIRMED and reverts: never twice unconfirmed. Nothing here erases: both
 * areas survive every boot, and the image that ran before a trial is there to go back to.
 */

enum {
        DS_CRC_RUN = 0, /* CRC of the running bank's area */
        DS_CRC_OTHER,   /* CRC of the other bank's area */
        DS_DECIDE,      /* one decision (and at most one write) per step */
        DS_JUMP,
        DS_RECOVERY,
        DS_RESET,
};

#define CRC_CHUNK 4096u

/* One CRC chunk of bank's area; true when done (b->crc then holds the whole CRC). */
static bool crc_step(struct cf_boot *b, unsigned bank)
{
        uint32_t n = CF_CRC_OFFSET - b->off;

        if (n > CRC_CHUNK)
                n = CRC_CHUNK;
        b->crc = cf_hal_flash_crc(b->hal, b->crc, cf_f7_app_addr(bank) + b->off, n);
        b->off += n;
        return b->off >= CF_CRC_OFFSET;
}

static void next_state(struct cf_boot *b, int st)
{
        b->state = st;
        b->off = 0;
        b->crc = CF_CRC32_INIT;
}

static bool crc_matches(struct cf_boot *b, unsigned bank)
{
        const uint8_t *area = cf_hal_flash_ptr(b->hal) + (cf_f7_app_addr(bank) - CF_FLASH_BASE);
        return b->crc == cf_le32_get(area + CF_CRC_OFFSET);
}

static void info_of(struct cf_boot *b, unsigned bank, struct cf_image_info *info)
{
        const uint8_t *area = cf_hal_flash_ptr(b->hal) + (cf_f7_app_addr(bank) - CF_FLASH_BASE);
        cf_image_info_parse(area + CF_TRAILER_OFFSET, info);
}

/* Write BOOT_ADD0 for bank and end in a reset; when that cannot be done, this boot flips no more
 * and decides again without it. */
static enum cf_boot_outcome flip(struct cf_boot *b, unsigned bank)
{
        if (b->no_flip)
                return CF_BOOT_BUSY;
        int r = cf_hal_boot_bank_set(b->hal, bank);
        if (r == -EBUSY)
                return CF_BOOT_BUSY;
        if (r < 0) {
                cf_hal_log(b->hal, "boot: BOOT_ADD0 cannot be written, staying in this bank");
                b->no_flip = true;
                return CF_BOOT_BUSY;
        }
        cf_hal_log(b->hal, bank == 2u ? "boot: boot address set to bank 2, resetting"
                                      : "boot: boot address set to bank 1, resetting");
        next_state(b, DS_RESET);
        return CF_BOOT_RESET;
}

/* Append a record; a write that fails for good is taken as written for this boot's decisions
 * (REVERTED, BOOTED: the image does not run; TRIAL: the request is dropped) and done again by the
 * next boot. Returns false only while the flash is busy. */
static bool record(struct cf_boot *b, struct cf_bank *bank, enum cf_bank_kind kind)
{
        int r = cf_bank_append(b->hal, bank, kind);

        if (r == -EBUSY)
                return false;
        if (r < 0) {
                cf_hal_log(b->hal, "boot: the bank's journal cannot be written");
                if (kind == CF_BANK_TRIAL)
                        b->refused[bank->bank] = true;
                else
                        bank->reverted = true;
        }
        return true;
}

/* Is bank's request one to try: hardware id, and not below the release it would replace. */
static bool request_ok(struct cf_boot *b, struct cf_bank *req, const struct cf_bank *alt)
{
        struct cf_image_info staged, running;

        if (b->refused[req->bank] || !cf_bank_requested(req))
                return false;
        info_of(b, req->bank, &staged);
        if (cf_bank_good(alt))
                info_of(b, alt->bank, &running);
        int r = cf_image_check_policy(&staged, b->cfg->hw_id, cf_bank_good(alt) ? &running : NULL);
        if (r == CF_IMAGE_OK && !cf_bank_has_bootloader(b->hal, req->bank))
                r = CF_IMAGE_BAD_VECTORS;
        if (r != CF_IMAGE_OK) {
                cf_hal_log(b->hal, "boot: staged image refused");
                b->last_update = CF_UPDATE_REJECTED;
                b->refused[req->bank] = true;
                return false;
        }
        return true;
}

/* Both banks good (after a confirmed swap the previous image stays): is other the one to run rather
 * than run? Only when other proved itself in a trial and run never had one (an image from the
 * factory, or one whose journal was erased when a new image began to arrive: such a journal
 * cannot be trusted to say the image failed before). Equal footing keeps the bank BOOT_ADD0 named,
 * which is the right one whenever no flip is under way: only a chip started in the wrong bank by a
 * torn BOOT_ADD0 ever gets here. */
static bool preferred(struct cf_boot *b, const struct cf_bank *other, const struct cf_bank *run)
{
        struct cf_image_info io, ir;

        if (!(other->trial && other->confirmed) || run->trial)
                return false;
        info_of(b, other->bank, &io);
        info_of(b, run->bank, &ir);
        return io.release >= ir.release;
}

static enum cf_boot_outcome decide(struct cf_boot *b)
{
        struct cf_bank *run = &b->run, *other = &b->other;
        unsigned here = run->bank;

        if (cf_bank_on_trial(run)) {
                if (run->booted) {
                        cf_hal_log(b->hal, "boot: the trial was not confirmed before a reset: reverting");
                        (void) record(b, run, CF_BANK_REVERTED);
                        return CF_BOOT_BUSY;
                }
                /* BOOT_ADD0 first: a cut there must not have spent the trial's one boot. */
                if (cf_hal_boot_bank(b->hal) != here && !b->no_flip)
                        return flip(b, here);
                if (!record(b, run, CF_BANK_BOOTED))
                        return CF_BOOT_BUSY;
                if (run->reverted)
                        return CF_BOOT_BUSY; /* BOOTED could not be written: not run */
                cf_hal_log(b->hal, "boot: running the new bank on trial");
                b->last_update = CF_UPDATE_SWAPPED;
                next_state(b, DS_JUMP);
                return CF_BOOT_BUSY;
        }
        if (cf_bank_on_trial(other)) {
                if (other->booted) {
                        (void) record(b, other, CF_BANK_REVERTED);
                        return CF_BOOT_BUSY;
                }
                if (!b->no_flip && cf_bank_has_bootloader(b->hal, other->bank))
                        return flip(b, other->bank);
                /* Cannot get there: the trial is over before it started. */
                (void) record(b, other, CF_BANK_REVERTED);
                return CF_BOOT_BUSY;
        }
        if (request_ok(b, other, run)) {
                (void) record(b, other, CF_BANK_TRIAL);
                return CF_BOOT_BUSY;
        }
        if (request_ok(b, run, other)) {
                (void) record(b, run, CF_BANK_TRIAL);
                return CF_BOOT_BUSY;
        }
        if (cf_bank_good(run) && cf_bank_good(other) && !b->no_flip && preferred(b, other, run) &&
            cf_bank_has_bootloader(b->hal, other->bank))
                return flip(b, other->bank);
        if (cf_bank_good(run)) {
                if (cf_hal_boot_bank(b->hal) != here && !b->no_flip)
                        return flip(b, here);
                if (run->trial && b->last_update == CF_UPDATE_NONE)
                        b->last_update = CF_UPDATE_SWAPPED;
                next_state(b, DS_JUMP);
                return CF_BOOT_BUSY;
        }
        if (cf_bank_good(other) && !b->no_flip && cf_bank_has_bootloader(b->hal, other->bank))
                return flip(b, other->bank);
        next_state(b, DS_RECOVERY);
        return CF_BOOT_BUSY;
}

enum cf_boot_outcome cf_boot_dual_step(struct cf_boot *b)
{
        unsigned here = cf_hal_running_bank(b->hal) == 2u ? 2u : 1u;

        switch (b->state) {
        case DS_CRC_RUN:
                if (!crc_step(b, here))
                        return CF_BOOT_BUSY;
                cf_bank_read(b->hal, here, crc_matches(b, here), &b->run);
                next_state(b, DS_CRC_OTHER);
                return CF_BOOT_BUSY;
        case DS_CRC_OTHER:
                if (!crc_step(b, cf_bank_other(here)))
                        return CF_BOOT_BUSY;
                cf_bank_read(b->hal, cf_bank_other(here), crc_matches(b, cf_bank_other(here)), &b->other);
                next_state(b, DS_DECIDE);
                return CF_BOOT_BUSY;
        case DS_DECIDE:
                return decide(b);
        case DS_JUMP:
                return CF_BOOT_JUMP;
        case DS_RECOVERY:
                return CF_BOOT_RECOVERY;
        default:
                return CF_BOOT_RESET;
        }
}
