/* The host port of cf-hal.h: flash in the owner's buffer, STM32F4 rules, timing and power-cut models. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "canfleet/crc32.h"
#include "hal-host.h"
#include "journal.h"

/*
 * Operation counting: a call counts as a flash operation once the flash controller would have
 * accepted it (valid sector or range, not area A, not busy). Refused calls change nothing on the
 * chip either, so a power cut there would be indistinguishable from one at the next accepted call.
 */

static uint64_t now_us(struct cf_hal *h)
{
        return h->now_us(h->clock_ctx);
}

uint32_t cf_hal_host_flash_size(const struct cf_hal *h)
{
        return h->dual_bank ? CF_F7_FLASH_SIZE : CF_FLASH_SIZE;
}

static unsigned n_sectors(const struct cf_hal *h)
{
        return h->dual_bank ? CF_F7_FLASH_SECTORS : CF_FLASH_SECTORS;
}

static struct cf_flash_sector sector_info(const struct cf_hal *h, unsigned sector)
{
        return h->dual_bank ? cf_f7_sector(sector) : cf_flash_sectors[sector];
}

static int sector_of(const struct cf_hal *h, uint32_t addr)
{
        return h->dual_bank ? cf_f7_sector_of(addr) : cf_flash_sector_of(addr);
}

/* The flash's bytes [addr, addr + len) changed: counted for each sector they lie in. */
static void written(struct cf_hal *h, uint32_t addr, size_t len)
{
        int first = sector_of(h, addr), last = sector_of(h, (uint32_t) (addr + len - 1));

        for (int sct = first; sct >= 0 && sct <= last && sct < 32; sct++)
                h->sector_writes[sct]++;
}

/* Area A (the bootloader) but its journal sector: of each bank on the dual-bank chip. */
static bool sector_protected(const struct cf_hal *h, unsigned sector)
{
        unsigned in_bank = h->dual_bank ? sector % CF_F7_BANK_SECTORS : sector;
        return in_bank < cf_flash_areas[CF_AREA_BOOT].first_sector + cf_flash_areas[CF_AREA_BOOT].n_sectors &&
               in_bank != CF_JOURNAL_SECTOR;
}

static bool in_flash(const struct cf_hal *h, uint32_t addr, size_t len)
{
        uint32_t size = cf_hal_host_flash_size(h);
        return addr >= CF_FLASH_BASE && addr - CF_FLASH_BASE <= size && len <= size - (addr - CF_FLASH_BASE);
}

static void erase_apply(struct cf_hal *h, unsigned sector, uint32_t len)
{
        struct cf_flash_sector s = sector_info(h, sector);

        memset(h->flash + (s.addr - CF_FLASH_BASE), CF_FLASH_ERASED, len);
        written(h, s.addr, len);
}

/* Completes an erase whose time has come: its effect becomes visible at the end, as on the chip
 * (a power cut in the middle is modelled by the torn cut, not by an abandoned erase). */
static void settle(struct cf_hal *h)
{
        if (h->erase_sector < 0 || h->powered_off)
                return;
        if (now_us(h) < h->erase_done_us)
                return;
        erase_apply(h, (unsigned) h->erase_sector, sector_info(h, (unsigned) h->erase_sector).size);
        h->erase_sector = -1;
        h->erase_result = 0;
}

static bool busy(struct cf_hal *h)
{
        return h->erase_sector >= 0 || now_us(h) < h->busy_until_us;
}

/* Counts the operation; true when it is the one where the power goes. */
static bool op_cut(struct cf_hal *h)
{
        h->flash_ops++;
        if (h->cut_at_op == 0 || h->flash_ops != h->cut_at_op)
                return false;
        h->powered_off = true;
        return true;
}

static uint64_t splitmix64(uint64_t *state)
{
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

static int seed_rng(struct cf_hal *h)
{
        uint64_t seed = h->rng_seed;

        if (seed == 0) {
                int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                ssize_t n = read(fd, &seed, sizeof(seed));
                int r = n < 0 ? -errno : n != (ssize_t) sizeof(seed) ? -EIO : 0;
                close(fd);
                if (r < 0)
                        return r;
        }
        /* A state of 0 means "not seeded yet"; splitmix64 is fine with any other. */
        h->rng = seed ? seed : 1;
        return 0;
}

int cf_hal_host_init(struct cf_hal *h)
{
        if (!h || !h->flash || !h->now_us || (h->dual_bank && !h->option_bytes))
                return -EINVAL;

        h->erase_sector = -1;
        h->erase_result = 0;
        h->erase_done_us = 0;
        h->busy_until_us = 0;
        h->powered_off = false;
        h->reset_requested = false;

        /* Seeded once: a power cycle continues the sequence rather than replaying its seeds. */
        if (h->rng == 0)
                return seed_rng(h);
        return 0;
}

void cf_hal_host_poke(struct cf_hal *h, uint32_t addr, const void *data, uint32_t len)
{
        if (!in_flash(h, addr, len))
                return;
        memcpy(h->flash + (addr - CF_FLASH_BASE), data, len);
        written(h, addr, len);
}

const uint8_t *cf_hal_flash_ptr(struct cf_hal *h)
{
        settle(h);
        return h->flash;
}

int cf_hal_flash_erase_start(struct cf_hal *h, unsigned sector)
{
        if (h->powered_off)
                return -EIO;
        if (sector >= n_sectors(h))
                return -EINVAL;
        /* Area A is the bootloader's, except the sector of its journal. */
        if (sector_protected(h, sector))
                return -EACCES;
        settle(h);
        if (busy(h))
                return -EBUSY;

        uint32_t size = sector_info(h, sector).size;

        if (op_cut(h)) {
                if (h->cut_torn)
                        erase_apply(h, sector, size / 2);
                return -EIO;
        }
        if (h->fault_sectors & (1u << sector))
                return -EIO;
        h->erases++;

        uint64_t t = now_us(h);
        uint64_t dur = (uint64_t) (size / 1024u) * h->erase_us_per_kb;

        if (dur == 0) {
                erase_apply(h, sector, size);
                h->erase_result = 0;
                return 0;
        }
        h->erase_sector = (int) sector;
        h->erase_result = -EINPROGRESS;
        h->erase_done_us = t + dur;
        h->busy_until_us = t + dur;
        return 0;
}

int cf_hal_flash_poll(struct cf_hal *h)
{
        if (h->powered_off)
                return -EIO;
        settle(h);
        if (h->erase_sector >= 0)
                return -EINPROGRESS;
        return h->erase_result;
}

int cf_hal_flash_program(struct cf_hal *h, uint32_t addr, const void *data, size_t len)
{
        const uint8_t *src = data;

        if (h->powered_off)
                return -EIO;
        if (!in_flash(h, addr, len))
                return -EINVAL;
        if (len == 0)
                return 0;
        /* Only the journal's sector of area A (of each bank), and a journal write stays in it. */
        {
                int first = sector_of(h, addr), last = sector_of(h, (uint32_t) (addr + len - 1));
                unsigned first_in_bank = (unsigned) first % CF_F7_BANK_SECTORS;
                for (int sct = first; sct <= last; sct++)
                        if (sector_protected(h, (unsigned) sct))
                                return -EACCES;
                if (first_in_bank == CF_JOURNAL_SECTOR && last != first)
                        return -EACCES;
        }
        settle(h);
        if (busy(h))
                return -EBUSY;

        uint8_t *dst = h->flash + (addr - CF_FLASH_BASE);

        if (op_cut(h)) {
                if (h->cut_torn) {
                        /* The first half lands; the last byte of it only partly: the bits it
                         * should clear minus the lowest one (so it differs from both values). */
                        size_t n = (len + 1) / 2;
                        for (size_t i = 0; i + 1 < n; i++)
                                dst[i] &= src[i];
                        uint8_t clear = (uint8_t) ~src[n - 1];
                        dst[n - 1] &= (uint8_t) ~(clear & (clear - 1u));
                        written(h, addr, n);
                }
                return -EIO;
        }

        /* STM32F4 programming can only clear bits; the simulator is stricter and refuses any
         * target byte that is not erased, before touching anything. */
        for (size_t i = 0; i < len; i++)
                if (dst[i] != CF_FLASH_ERASED)
                        return -EIO;
        if (h->fault_program_app && !h->dual_bank && cf_flash_area_of(addr) == CF_AREA_APP)
                return -EIO;
        for (uint32_t a = addr; a - addr < len; a = sector_info(h, (unsigned) sector_of(h, a)).addr +
                                                    sector_info(h, (unsigned) sector_of(h, a)).size)
                if (h->fault_sectors & (1u << sector_of(h, a)))
                        return -EIO;

        memcpy(dst, src, len);
        written(h, addr, len);
        h->programs++;
        h->program_bytes += len;

        /* Time runs per 32-bit word touched: an unaligned write costs its partial words too. */
        uint64_t words = (addr + len - 1) / 4 - addr / 4 + 1;
        h->busy_until_us = now_us(h) + words * h->program_us_per_word;
        return 0;
}

uint32_t cf_hal_flash_crc(struct cf_hal *h, uint32_t crc, uint32_t addr, uint32_t len)
{
        settle(h);
        if (!in_flash(h, addr, len))
                return crc;
        return cf_crc32_le(crc, h->flash + (addr - CF_FLASH_BASE), len);
}

int cf_hal_can_send(struct cf_hal *h, uint32_t id, const uint8_t *data, uint8_t dlc)
{
        /* A node without power says nothing. */
        if (h->powered_off)
                return 0;
        if (!h->can_send)
                return -ENETDOWN;
        return h->can_send(h->can_ctx, id, data, dlc);
}

uint32_t cf_hal_clock_ms(struct cf_hal *h)
{
        return (uint32_t) (now_us(h) / 1000u);
}

void cf_hal_random(struct cf_hal *h, uint8_t *buf, size_t n)
{
        while (n > 0) {
                uint64_t v = splitmix64(&h->rng);
                size_t k = n < sizeof(v) ? n : sizeof(v);

                memcpy(buf, &v, k);
                buf += k;
                n -= k;
        }
}

void cf_hal_uid(struct cf_hal *h, uint8_t uid[12])
{
        memcpy(uid, h->uid, 12);
}

void cf_hal_watchdog_kick(struct cf_hal *h)
{
        h->watchdog_kicks++;
}

void cf_hal_reset(struct cf_hal *h)
{
        h->reset_requested = true;
}

unsigned cf_hal_running_bank(struct cf_hal *h)
{
        return h->dual_bank ? h->running_bank : 0u;
}

unsigned cf_hal_host_boot_bank(const struct cf_hal *h)
{
        unsigned bank = h->dual_bank ? cf_f7_bank_of_boot_add(h->option_bytes[0]) : 0u;
        return bank ? bank : 1u;
}

unsigned cf_hal_boot_bank(struct cf_hal *h)
{
        return h->dual_bank ? cf_f7_bank_of_boot_add(h->option_bytes[0]) : 0u;
}

int cf_hal_boot_bank_set(struct cf_hal *h, unsigned bank)
{
        if (!h->dual_bank)
                return -ENOTSUP;
        if (h->powered_off)
                return -EIO;
        if (bank != 1u && bank != 2u)
                return -EINVAL;
        settle(h);
        if (busy(h))
                return -EBUSY;
        bool cut = op_cut(h);
        h->option_op = h->flash_ops;
        if (cut) {
                /* The option bytes are erased and programmed inside the controller: torn, they are
                 * left erased, naming no bank. */
                if (h->cut_torn)
                        h->option_bytes[0] = 0xFFFFu;
                return -EIO;
        }
        h->option_bytes[0] = cf_f7_boot_add_of(bank);
        h->option_writes++;
        /* RM0410: an option byte change takes as long as a sector erase of 16 KB, order of 0.25 s. */
        h->busy_until_us = now_us(h) + 16u * h->erase_us_per_kb;
        return 0;
}

void cf_hal_log(struct cf_hal *h, const char *msg)
{
        if (h->log)
                h->log(h->log_ctx, msg);
}
