/* cf_hal_flash_crc on the STM32 CRC unit after a self-test; the software CRC is reference and fallback. */
#include "canfleet/crc32.h"
#include "canfleet/layout.h"
#include "flash-policy.h"
#include "hal-stm32.h"
#include "stm32-regs.h"

void cf_stm32_crc_init(struct cf_hal *h)
{
        RCC_AHB1ENR |= RCC_AHB1ENR_CRC;
        cf_dsb();
        CRC_CR = CRC_CR_RESET;
        CRC_DR = 0x12345678u;
        uint32_t hw = CRC_DR;
        uint32_t word = 0x12345678u;
        uint32_t sw = cf_crc32_words(CF_CRC32_INIT, &word, 1);
        h->crc_unit = hw == sw && sw == 0xDF8A8A2Bu;
        if (!h->crc_unit) {
                RCC_AHB1ENR &= ~RCC_AHB1ENR_CRC;
                cf_hal_log(h, "crc: CRC unit failed its self-test, using the software CRC");
        }
}

uint32_t cf_hal_flash_crc(struct cf_hal *h, uint32_t crc, uint32_t addr, uint32_t len)
{
        const uint8_t *p = cf_hal_flash_ptr(h) + (addr - CF_FLASH_BASE);
        if (!h->crc_unit || (addr & 3u))
                return cf_crc32_le(crc, p, len);

        CRC_CR = CRC_CR_RESET;
        if (crc != CF_CRC32_INIT)
                CRC_DR = cf_stm32_crc_seed_word(crc);
        const volatile uint32_t *w = (const volatile uint32_t *) (uintptr_t) addr;
        for (uint32_t i = 0; i < len / 4; i++)
                CRC_DR = w[i];
        return CRC_DR;
}
