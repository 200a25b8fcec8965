/* What flash the STM32F7 dual-bank port may erase or program, its sector encoding and option word (pure logic). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * The dual-bank map of canfleet/layout.h (sectors 0-23). Each bank's area A (its sectors 0-4) holds
 * that bank's bootloader (0-2), provisioning record (3) and journal (4, firmware/core/bank.h): our
 * code erases and programs only the journals there; the ST-Link writes the rest. Both HAL entry
 * points pass through these (kept in their own object so that the ELF test sees the calls).
 *   cf_stm32f7_erase_allowed(4) == 0; (3) == -EACCES; (16) == 0 (bank 2's journal); (15) == -EACCES;
 *   (17) == 0; (24) == -EINVAL
 *   cf_stm32f7_program_allowed(0x08110000, 16) == 0; (0x0810C000, 4) == -EACCES; (0x0811FFFF, 2)
 *   == -EACCES (journal and area); (0x08120000, 4) == 0; (0x081FFFFF, 2) == -EINVAL
 */
int cf_stm32f7_erase_allowed(unsigned sector);
int cf_stm32f7_program_allowed(uint32_t addr, size_t len);

/* FLASH_CR's SNB field for a dual-bank sector (RM0410 §3.3.2: bank 2's sectors 12-23 are numbered
 * 0x10-0x1B), already shifted: cf_stm32f7_snb_bits(4) == 4 << 3; cf_stm32f7_snb_bits(17) == 0x15 << 3 */
uint32_t cf_stm32f7_snb_bits(unsigned sector);

/* FLASH_OPTCR1 with BOOT_ADD0 naming bank's base and BOOT_ADD1 kept:
 *   cf_stm32f7_optcr1(0x00400080, 2) == 0x00402040 */
uint32_t cf_stm32f7_optcr1(uint32_t optcr1, unsigned bank);

/* The bank (1, 2) an address of running code is in, 0 elsewhere; the ITCM alias of the flash
 * (0x00200000, RM0410 §2.3.2) is bank 1 or 2 too: cf_stm32f7_bank_of_code(0x0812ABCD) == 2,
 * (0x00200400) == 1, (0x20000000) == 0 */
unsigned cf_stm32f7_bank_of_code(uint32_t addr);

/* Provisioning record of a bank: its sector 3 (0x0800C000 / 0x0810C000). */
uint32_t cf_stm32f7_provision_addr(unsigned bank);
