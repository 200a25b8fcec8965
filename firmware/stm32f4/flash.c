/* Flash controller: unlock, sector erase from RAM (watchdog kept alive), x32/x8 program, errors, lock. */
#include <errno.h>

#include "canfleet/layout.h"
#include "flash-policy.h"
#include "hal-stm32.h"
#include "stm32f4-regs.h"

/* RM0090 table 45: a 128 KB sector erases in up to 4 s at x32; polling is bounded well above that. */
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

/*
 * The F405/407 has one flash bank: while a sector erases, any fetch from flash stalls the CPU for
 * the whole erase, interrupt vectors included. So the erase waits here, in RAM, with interrupts
 * masked, kicking the watchdog and counting the SysTick periods that go by (COUNTFLAG) so that the
 * millisecond clock does not lose the erase time.
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

static void flush_caches(void)
{
        /* Stale lines of an erased sector must not be served from the data cache (RM0090 §3.5.5). */
        uint32_t acr = FLASH_ACR;
        FLASH_ACR = acr & ~(FLASH_ACR_ICEN | FLASH_ACR_DCEN);
        FLASH_ACR = (acr & ~(FLASH_ACR_ICEN | FLASH_ACR_DCEN)) | FLASH_ACR_ICRST | FLASH_ACR_DCRST;
        FLASH_ACR = acr;
}

int cf_hal_flash_erase_start(struct cf_hal *h, unsigned sector)
{
        int r = cf_stm32_erase_allowed(sector);
        if (r < 0)
                return r;
        if (FLASH_SR & FLASH_SR_BSY)
                return -EBUSY;
        r = unlock();
        if (r < 0)
                return r;
        (void) take_errors();

        uint32_t primask = cf_irq_save();
        uint32_t ms = 0;
        r = erase_in_ram(FLASH_CR_SER | sector << FLASH_CR_SNB_SHIFT | cf_stm32_psize_bits(4), &ms);
        h->ms += ms;
        cf_irq_restore(primask);

        int e = take_errors();
        lock();
        flush_caches();
        h->erase_result = r < 0 ? r : e;
        return 0;
}

int cf_hal_flash_poll(struct cf_hal *h)
{
        /* The erase already ran to its end in cf_hal_flash_erase_start(): report how it went, once. */
        int r = h->erase_result;
        h->erase_result = 0;
        return r;
}

static bool wait_not_busy(void)
{
        for (uint32_t i = 0; i < CF_WAIT_LOOPS; i++)
                if (!(FLASH_SR & FLASH_SR_BSY))
                        return true;
        return false;
}

int cf_hal_flash_program(struct cf_hal *h, uint32_t addr, const void *data, size_t len)
{
        const uint8_t *src = data;
        const uint8_t *flash = cf_hal_flash_ptr(h);
        int r = cf_stm32_program_allowed(addr, len);
        if (r < 0)
                return r;
        if (FLASH_SR & FLASH_SR_BSY)
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
                if (!wait_not_busy())
                        r = -ETIMEDOUT;
                else
                        r = take_errors();
                done += w;
        }
        FLASH_CR &= ~FLASH_CR_PG;
        lock();
        flush_caches();
        if (r == 0) {
                /* Read back: a write the controller silently dropped is an error too. */
                for (size_t i = 0; i < len; i++)
                        if (flash[addr - CF_FLASH_BASE + i] != src[i])
                                return -EIO;
        }
        return r < 0 ? -EIO : 0;
}
