/* Flash access rules, sector encoding and BOOT_ADD0 of the STM32F7 dual-bank port (pure logic). */
#include <errno.h>

#include "bank-policy.h"
#include "bank.h"
#include "canfleet/layout.h"

#define ITCM_FLASH 0x00200000u

int cf_stm32f7_erase_allowed(unsigned sector)
{
        if (sector >= CF_F7_FLASH_SECTORS)
                return -EINVAL;
        unsigned in_bank = sector % CF_F7_BANK_SECTORS;
        if (in_bank < CF_F7_APP_FIRST_SECTOR && in_bank != CF_BANK_JOURNAL_SECTOR)
                return -EACCES;
        return 0;
}

int cf_stm32f7_program_allowed(uint32_t addr, size_t len)
{
        uint32_t off = addr - CF_F7_BANK1_ADDR;
        if (off >= CF_F7_FLASH_SIZE || len > CF_F7_FLASH_SIZE - off)
                return -EINVAL;
        if (len == 0)
                return 0;
        unsigned bank = cf_f7_bank_of(addr);
        uint32_t in_bank = addr - cf_f7_bank_addr(bank);
        /* Area A of either bank, which starts at its base, unless wholly inside that bank's journal. */
        if (in_bank < CF_F7_APP_OFFSET) {
                uint32_t joff = in_bank - CF_BANK_JOURNAL_OFFSET;
                if (joff >= CF_BANK_JOURNAL_SIZE || len > CF_BANK_JOURNAL_SIZE - joff)
                        return -EACCES;
        }
        /* A write running from bank 1's end into bank 2's area A. */
        if (bank == 1u && len > CF_F7_BANK_SIZE - in_bank)
                return -EACCES;
        return 0;
}

uint32_t cf_stm32f7_snb_bits(unsigned sector)
{
        uint32_t snb = sector < CF_F7_BANK_SECTORS ? sector : 0x10u + (sector - CF_F7_BANK_SECTORS);
        return snb << 3;
}

uint32_t cf_stm32f7_optcr1(uint32_t optcr1, unsigned bank)
{
        return (optcr1 & ~0xFFFFu) | cf_f7_boot_add_of(bank);
}

unsigned cf_stm32f7_bank_of_code(uint32_t addr)
{
        if (addr - ITCM_FLASH < CF_F7_FLASH_SIZE)
                return (addr - ITCM_FLASH) < CF_F7_BANK_SIZE ? 1u : 2u;
        return cf_f7_bank_of(addr);
}

uint32_t cf_stm32f7_provision_addr(unsigned bank)
{
        return cf_f7_bank_addr(bank) + 0xC000u;
}
