/* The bootloader-to-application handoff: a checked word block in .noinit RAM that survives the jump. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * Both images link the block at CF_HANDOFF_ADDR (the last 32 bytes of SRAM, below nothing: the
 * stacks start under it) in a NOLOAD section, so neither start-up code clears it. Power-on leaves
 * random RAM, which the magic and the check word reject; the bootloader also discards it after a
 * power-on reset (RCC_CSR PORRSTF). Words, little-endian:
 *   0 magic 0x48464643 ("CFFH")   1 boot_count (boots since power-on, this one included)
 *   2 last_update (enum cf_update_result) | clock source << 8 (0 HSI fallback, 1 HSE PLL)
 *   3 check = magic ^ boot_count ^ word 2 ^ 0xA5A5A5A5
 */
#define CF_HANDOFF_ADDR  0x2001FFE0u
#define CF_HANDOFF_MAGIC 0x48464643u

struct cf_handoff {
        uint32_t magic;
        uint32_t boot_count;
        uint32_t info;
        uint32_t check;
        uint32_t reserved[4];
};
_Static_assert(sizeof(struct cf_handoff) == 32, "the handoff block fills the 32 bytes reserved for it");

void cf_handoff_write(volatile struct cf_handoff *h, uint32_t boot_count, uint8_t last_update,
                      uint8_t clock_hse);
/* true when the block is intact; then fills what it carries. */
bool cf_handoff_read(const volatile struct cf_handoff *h, uint32_t *boot_count, uint8_t *last_update);
/* The boot count for this boot: one more than a valid block says, 1 after power-on. */
uint32_t cf_handoff_next_boot_count(const volatile struct cf_handoff *h, bool power_on);
