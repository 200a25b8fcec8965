/* Encode and check the .noinit handoff block between the bootloader and the application. */
#include "handoff.h"

static uint32_t check_word(uint32_t boot_count, uint32_t info)
{
        return CF_HANDOFF_MAGIC ^ boot_count ^ info ^ 0xA5A5A5A5u;
}

void cf_handoff_write(volatile struct cf_handoff *h, uint32_t boot_count, uint8_t last_update,
                      uint8_t clock_hse)
{
        uint32_t info = last_update | (uint32_t) clock_hse << 8;
        h->magic = CF_HANDOFF_MAGIC;
        h->boot_count = boot_count;
        h->info = info;
        h->check = check_word(boot_count, info);
}

bool cf_handoff_read(const volatile struct cf_handoff *h, uint32_t *boot_count, uint8_t *last_update)
{
        uint32_t count = h->boot_count, info = h->info;
        if (h->magic != CF_HANDOFF_MAGIC || h->check != check_word(count, info))
                return false;
        *boot_count = count;
        *last_update = (uint8_t) info;
        return true;
}

uint32_t cf_handoff_next_boot_count(const volatile struct cf_handoff *h, bool power_on)
{
        uint32_t count;
        uint8_t last;
        if (power_on || !cf_handoff_read(h, &count, &last))
                return 1;
        return count + 1;
}
