/* Flash controller of the STM32F767 in dual-bank mode: erase (the other bank while this one runs), program, BOOT_ADD0. */
#include <errno.h>

#include "bank-policy.h"
#include "canfleet/layout.h"
#include "flash-policy.h"
#include "hal-stm32.h"
#include "stm32f7-regs.h"

/* RM0410 table 12: a 128 KB sector erases in up to 2 s at x32; polling is bounded well above that. */
#define ERASE_POLL_LOOPS 200000000u

static int unlock(void)
{
        if (FLASH_CR & FLASH_CR_LOCK) {
                FLASH_KEYR = FLASH_KEY1;
                FLASH_KEYR = FLASH_KEY2;
        }
        return (FLASH_CR & FLASH_CR_LOCK) ? -EIO : 0;
}

static void lock(void)
{
        FLASH_CR = FLASH_CR_LOCK;
}

/* Errors of the last operation, cleared (write one to clear) for the next. */
static int take_errors(void)
{
        uint32_t sr = FLASH_SR;
        FLASH_SR = sr & (FLASH_SR_ERRORS | FLASH_SR_EOP);
        return (sr & FLASH_SR_ERRORS) ? -EIO : 0;
}

static bool wait_not_busy(uint32_t loops)
{
        for (uint32_t i = 0; i < loops; i++) {
                IWDG_KR = IWDG_KEY_RELOAD;
                if (!(FLASH_SR & FLASH_SR_BSY))
                        return true;
        }
        return false;
}

/* The bank this code runs from. */
static unsigned here(void)
{
        return cf_stm32f7_bank_of_code((uint32_t) (uintptr_t) &here);
}

/*
 * An erase in the bank the CPU fetches from stalls every fetch until it ends (as on the F4): it
 * waits in RAM with interrupts masked, kicking the watchdog and counting SysTick periods. Only the
 * running bank's journal sector could ever be erased that way; the CCP slave erases the other bank,
 * which the dual-bank flash does while this one runs (read-while-write, RM0410 §3.3.4): that erase
 * is started and left to cf_hal_flash_poll().
 */
__attribute__((section(".ramfunc"), noinline, long_call)) static int erase_in_ram(uint32_t cr, uint32_t *ms)
{
        FLASH_CR = cr;
        FLASH_CR = cr | FLASH_CR_STRT;
        uint32_t ticks = 0;
        int r = -ETIMEDOUT;
        for (uint32_t i = 0; i < ERASE_POLL_LOOPS; i++) {
                IWDG_KR = IWDG_KEY_RELOAD;
                if (SYST_CSR & SYST_CSR_COUNTFLAG)
                        ticks++;
                if (!(FLASH_SR & FLASH_SR_BSY)) {
                        r = 0;
                        break;
                }
        }
        *ms += ticks;
        return r;
}

/* The sector map and the bank numbers mean something only in dual-bank mode (nDBANK = 0); a chip
 * still in single-bank mode (4 x 32 KB, 128 KB, 7 x 256 KB) would erase other sectors than these:
 * it is refused every write, stays reachable, and says why once. */
static int dual_bank_mode(struct cf_hal *h)
{
        if (!(FLASH_OPTCR & FLASH_OPTCR_NDBANK))
                return 0;
        if (!h->mode_warned)
                cf_hal_log(h, "flash: not in dual-bank mode (option nDBANK = 1): no flash writes");
        h->mode_warned = true;
        return -ENODEV;
}

int cf_hal_flash_erase_start(struct cf_hal *h, unsigned sector)
{
        int r = cf_stm32f7_erase_allowed(sector);
        if (r < 0)
                return r;
        if ((r = dual_bank_mode(h)) < 0)
                return r;
        if (FLASH_SR & FLASH_SR_BSY)
                return -EBUSY;
        r = unlock();
        if (r < 0)
                return r;
        (void) take_errors();

        uint32_t cr = FLASH_CR_SER | cf_stm32f7_snb_bits(sector) | cf_stm32_psize_bits(4);
        if (sector / CF_F7_BANK_SECTORS + 1u != here()) {
                FLASH_CR = cr;
                FLASH_CR = cr | FLASH_CR_STRT;
                h->erase_running = true;
                h->erase_result = -EINPROGRESS;
                return 0; /* locked again by the poll that sees it end */
        }
        uint32_t primask = cf_irq_save();
        uint32_t ms = 0;
        r = erase_in_ram(cr, &ms);
        h->ms += ms;
        cf_irq_restore(primask);
        int e = take_errors();
        lock();
        h->erase_result = r < 0 ? r : e;
        return 0;
}

int cf_hal_flash_poll(struct cf_hal *h)
{
        if (h->erase_running) {
                if (FLASH_SR & FLASH_SR_BSY)
                        return -EINPROGRESS;
                h->erase_running = false;
                h->erase_result = take_errors();
                lock();
        }
        /* Report how the last erase went, once. */
        int r = h->erase_result;
        h->erase_result = 0;
        return r;
}

int cf_hal_flash_program(struct cf_hal *h, uint32_t addr, const void *data, size_t len)
{
        const uint8_t *src = data;
        const uint8_t *flash = cf_hal_flash_ptr(h);
        int r = cf_stm32f7_program_allowed(addr, len);
        if (r < 0)
                return r;
        if ((r = dual_bank_mode(h)) < 0)
                return r;
        if (h->erase_running || (FLASH_SR & FLASH_SR_BSY))
                return -EBUSY;
        /* Programming a byte that is not erased would only AND bits into it: refuse, never attempt. */
        for (size_t i = 0; i < len; i++)
                if (flash[addr - CF_FLASH_BASE + i] != CF_FLASH_ERASED)
                        return -EIO;
        r = unlock();
        if (r < 0)
                return r;
        (void) take_errors();

        size_t done = 0;
        while (done < len && r == 0) {
                uint32_t a = addr + (uint32_t) done;
                unsigned w = cf_stm32_program_width(a, len - done);
                FLASH_CR = FLASH_CR_PG | cf_stm32_psize_bits(w);
                if (w == 4) {
                        uint32_t v = (uint32_t) src[done] | (uint32_t) src[done + 1] << 8 |
                                     (uint32_t) src[done + 2] << 16 | (uint32_t) src[done + 3] << 24;
                        *(volatile uint32_t *) (uintptr_t) a = v;
                } else if (w == 2) {
                        *(volatile uint16_t *) (uintptr_t) a = (uint16_t) (src[done] | src[done + 1] << 8);
                } else {
                        *(volatile uint8_t *) (uintptr_t) a = src[done];
                }
                cf_dsb();
                if (!wait_not_busy(CF_WAIT_LOOPS))
                        r = -ETIMEDOUT;
                else
                        r = take_errors();
                done += w;
        }
        FLASH_CR &= ~FLASH_CR_PG;
        lock();
        /* The data cache stays off (startup): a read of flash is the flash, no stale line. */
        if (r == 0) {
                /* Read back: a write the controller silently dropped is an error too. */
                for (size_t i = 0; i < len; i++)
                        if (flash[addr - CF_FLASH_BASE + i] != src[i])
                                return -EIO;
        }
        return r < 0 ? -EIO : 0;
}

unsigned cf_hal_running_bank(struct cf_hal *h)
{
        (void) h;
        return here();
}

unsigned cf_hal_boot_bank(struct cf_hal *h)
{
        (void) h;
        return cf_f7_bank_of_boot_add((uint16_t) (FLASH_OPTCR1 & FLASH_OPTCR1_BOOT_ADD0_MASK));
}

/*
 * RM0410 §3.4.2: unlock the flash and the option bytes, wait for no operation, write the new value
 * into FLASH_OPTCR1, set OPTSTRT, wait while BSY. The option bytes are programmed then; the boot
 * address takes effect at the next reset (cf_hal_reset()). The controller erases and reprograms the
 * option word internally: a power cut in between leaves it corrupt (the simulator's torn write),
 * and the chip then boots from the default address, bank 1.
 */
int cf_hal_boot_bank_set(struct cf_hal *h, unsigned bank)
{
        if (bank != 1u && bank != 2u)
                return -EINVAL;
        int r = dual_bank_mode(h);
        if (r < 0)
                return r;
        if (h->erase_running || (FLASH_SR & FLASH_SR_BSY))
                return -EBUSY;
        r = unlock();
        if (r < 0)
                return r;
        if (FLASH_OPTCR & FLASH_OPTCR_OPTLOCK) {
                FLASH_OPTKEYR = FLASH_OPTKEY1;
                FLASH_OPTKEYR = FLASH_OPTKEY2;
        }
        if (FLASH_OPTCR & FLASH_OPTCR_OPTLOCK) {
                lock();
                return -EIO;
        }
        (void) take_errors();
        FLASH_OPTCR1 = cf_stm32f7_optcr1(FLASH_OPTCR1, bank);
        FLASH_OPTCR |= FLASH_OPTCR_OPTSTRT;
        cf_dsb();
        r = wait_not_busy(ERASE_POLL_LOOPS) ? take_errors() : -ETIMEDOUT;
        FLASH_OPTCR |= FLASH_OPTCR_OPTLOCK;
        lock();
        if (r == 0 && cf_hal_boot_bank(h) != bank)
                r = -EIO;
        return r < 0 ? -EIO : 0;
}
