/* What flash the STM32F4 port may erase or program, and with which program size (pure logic). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Area A (sectors 0-3: the bootloader and its provisioning record) is never erased or programmed by
 * our code; only the ST-Link writes it. Its last sector, 4 (0x08010000, 64 KB), is the install
 * journal (firmware/core/journal.h), which the bootloader and the CCP slave append to. Every flash
 * operation of the HAL passes through these two functions (kept in their own object so that the ELF
 * test can see the calls).
 *   cf_stm32_erase_allowed(3) == -EACCES; cf_stm32_erase_allowed(4) == 0 (journal);
 *   cf_stm32_erase_allowed(5) == 0; cf_stm32_erase_allowed(12) == -EINVAL
 *   cf_stm32_program_allowed(0x0800FFFF, 2) == -EACCES (sector 3 and the journal);
 *   (0x08010000, 16) == 0 (journal); (0x0801FFFF, 2) == -EACCES (journal and B);
 *   (0x08020000, 4) == 0; (0x080FFFFF, 2) == -EINVAL (beyond flash)
 */
int cf_stm32_erase_allowed(unsigned sector);
int cf_stm32_program_allowed(uint32_t addr, size_t len);

/* Width in bytes (4, 2 or 1) of the next program operation at addr with len bytes left: whole 32-bit
 * words (PSIZE x32, VDD 2.7-3.6 V) where aligned, else half-words (x16) where aligned, single bytes
 * (x8) at odd edges. The F405/407 flash has no ECC: the parts of one word may be programmed at
 * different times (bits only go from 1 to 0).
 *   cf_stm32_program_width(0x08020000, 8) == 4; (0x08020001, 8) == 1; (0x08020002, 8) == 2;
 *   (0x08020004, 3) == 2; (0x08020006, 1) == 1 */
unsigned cf_stm32_program_width(uint32_t addr, size_t len);

/* The FLASH_CR PSIZE field (RM0090 §3.9.7) for a program width: 1 -> 0 (x8), 2 -> 1, 4 -> 2 (x32). */
uint32_t cf_stm32_psize_bits(unsigned width);

/* The CRC unit cannot be loaded with a value; feeding it this word right after a reset brings its
 * register to crc, so that a computation can go on from any earlier result.
 *   cf_crc32_words(CF_CRC32_INIT, (uint32_t[]){cf_stm32_crc_seed_word(x)}, 1) == x */
uint32_t cf_stm32_crc_seed_word(uint32_t crc);
