/* UID, random numbers and the bootloader's jump into the application: the rest of cf-hal.h. */
#include <errno.h>
#include <string.h>

#include "canfleet/layout.h"
#include "hal-stm32.h"
#include "provision.h"
#if CF_PORT_DUAL_BANK
#include "bank-policy.h"
#endif
#include "stm32-regs.h"

void cf_hal_uid(struct cf_hal *h, uint8_t uid[12])
{
        (void) h;
        for (unsigned i = 0; i < 3; i++) {
                uint32_t w = 0;
                /* QEMU maps nothing at the system memory: a zero UID there, not a fault. */
                if (cf_stm32_probe_read32(UID_BASE + 4u * i, &w) < 0)
                        w = 0;
                memcpy(uid + 4 * i, &w, 4);
        }
}

static uint32_t rng_word(struct cf_hal *h, bool *ok)
{
        for (uint32_t i = 0; i < CF_WAIT_LOOPS; i++) {
                uint32_t sr = RNG_SR;
                if (sr & (RNG_SR_SECS | RNG_SR_CECS))
                        break;
                if (sr & RNG_SR_DRDY) {
                        uint32_t v = RNG_DR;
                        /* RM0090: a zero word right after enabling is not valid data. */
                        if (v) {
                                *ok = true;
                                return v;
                        }
                }
        }
        (void) h;
        *ok = false;
        return 0;
}

/* xorshift32, seeded from what differs between nodes and boots: weak, only when there is no RNG
 * (HSI fallback has no 48 MHz clock for it, QEMU has none at all). */
static uint32_t prng_word(struct cf_hal *h)
{
        if (!h->prng) {
                uint8_t uid[12];
                uint32_t s = 0x9E3779B9u;
                cf_hal_uid(h, uid);
                for (unsigned i = 0; i < 12; i++)
                        s = (s ^ uid[i]) * 0x01000193u;
                h->prng = (s ^ SYST_CVR ^ h->ms) | 1u;
        }
        uint32_t x = h->prng ^ SYST_CVR;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        h->prng = x ? x : 1u;
        return x;
}

void cf_hal_random(struct cf_hal *h, uint8_t *buf, size_t n)
{
        if (!h->rng_unit && h->clock_hse && !h->rng_warned) {
                RCC_AHB2ENR |= RCC_AHB2ENR_RNG;
                cf_dsb();
                RNG_CR = RNG_CR_RNGEN;
        }
        while (n) {
                bool ok = false;
                uint32_t v = h->clock_hse && !h->rng_warned ? rng_word(h, &ok) : 0;
                if (!ok) {
                        if (!h->rng_warned)
                                cf_hal_log(h, "rng: no hardware random numbers, using a weak fallback");
                        h->rng_warned = true;
                        v = prng_word(h);
                } else {
                        h->rng_unit = true;
                }
                size_t k = n < 4 ? n : 4;
                memcpy(buf, &v, k);
                buf += k;
                n -= k;
        }
}

const uint8_t *cf_hal_flash_ptr(struct cf_hal *h)
{
        (void) h;
        return (const uint8_t *) (uintptr_t) CF_FLASH_BASE;
}

/* Set MSP and branch: nothing may touch the old stack after the switch, hence assembly. */
__attribute__((naked, noreturn, noinline)) static void enter(uint32_t sp, uint32_t entry)
{
        __asm__ volatile("msr msp, r0\n"
                         "dsb\n"
                         "isb\n"
                         "bx r1\n");
}

void cf_hal_jump_to_app(struct cf_hal *h)
{
        uint32_t app = cf_stm32_app_addr(h);
        const volatile uint32_t *vectors = (const volatile uint32_t *) (uintptr_t) app;
        uint32_t sp = vectors[0], entry = vectors[1];

        cf_irq_disable();
        cf_stm32_can_stop(h);
        cf_stm32_log_deinit(h);
        RCC_AHB1ENR &= ~RCC_AHB1ENR_CRC;
        RNG_CR = 0;
        RCC_AHB2ENR &= ~RCC_AHB2ENR_RNG;
        cf_stm32_clock_deinit(h);
        for (unsigned i = 0; i < 3; i++) {
                NVIC_ICER(i) = 0xFFFFFFFFu;
                NVIC_ICPR(i) = 0xFFFFFFFFu;
        }
        if (h->iwdg_on)
                IWDG_KR = IWDG_KEY_RELOAD;
        SCB_VTOR = app;
        /* Privileged thread mode on MSP, no floating-point context, interrupts on as after a reset. */
        __asm__ volatile("msr control, %0\nisb" ::"r"(0u) : "memory");
        cf_dsb();
        cf_isb();
        cf_irq_enable();
        enter(sp, entry);
}

#if CF_PORT_DUAL_BANK
/* The dual-bank F7 (firmware/stm32f7): its flash.c has the bank calls of cf-hal.h. */
uint32_t cf_stm32_app_addr(struct cf_hal *h)
{
        return cf_f7_app_addr(cf_hal_running_bank(h));
}

uint32_t cf_stm32_provision_addr(struct cf_hal *h)
{
        return cf_stm32f7_provision_addr(cf_hal_running_bank(h));
}
#else
uint32_t cf_stm32_app_addr(struct cf_hal *h)
{
        (void) h;
        return CF_AREA_APP_ADDR;
}

uint32_t cf_stm32_provision_addr(struct cf_hal *h)
{
        (void) h;
        return CF_PROVISION_ADDR;
}

/* A single-bank chip: the dual-bank calls of cf-hal.h answer so (never called: CF_PORT_DUAL_BANK=0). */
unsigned cf_hal_running_bank(struct cf_hal *h)
{
        (void) h;
        return 0;
}

unsigned cf_hal_boot_bank(struct cf_hal *h)
{
        (void) h;
        return 0;
}

int cf_hal_boot_bank_set(struct cf_hal *h, unsigned bank)
{
        (void) h;
        (void) bank;
        return -ENOTSUP;
}
#endif
