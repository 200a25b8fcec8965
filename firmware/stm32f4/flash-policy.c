/* Flash access rules of the STM32F4 port (area A is read-only to our code) and program-size planning. */
#include <errno.h>

#include "canfleet/crc32.h"
#include "canfleet/layout.h"
#include "flash-policy.h"
#include "journal.h"

int cf_stm32_erase_allowed(unsigned sector)
{
        if (sector >= CF_FLASH_SECTORS)
                return -EINVAL;
        if (sector < cf_flash_areas[CF_AREA_BOOT].first_sector + cf_flash_areas[CF_AREA_BOOT].n_sectors &&
            sector != CF_JOURNAL_SECTOR)
                return -EACCES;
        return 0;
}

int cf_stm32_program_allowed(uint32_t addr, size_t len)
{
        uint32_t off = addr - CF_FLASH_BASE;
        if (off >= CF_FLASH_SIZE || len > CF_FLASH_SIZE - off)
                return -EINVAL;
        /* Any overlap with A, which starts at the base of flash, unless wholly inside the journal. */
        uint32_t joff = addr - CF_JOURNAL_ADDR;
        if (off < CF_AREA_BOOT_SIZE && (joff >= CF_JOURNAL_SIZE || len > CF_JOURNAL_SIZE - joff))
                return -EACCES;
        return 0;
}

unsigned cf_stm32_program_width(uint32_t addr, size_t len)
{
        if ((addr & 3u) == 0 && len >= 4)
                return 4u;
        /* A half-word where aligned: a group slot (6 bytes at 6 * slot) is then one word and one
         * half-word, never single bytes (firmware/core/group.h). */
        return (addr & 1u) == 0 && len >= 2 ? 2u : 1u;
}

uint32_t cf_stm32_psize_bits(unsigned width)
{
        switch (width) {
        case 4:
                return 2u << 8;
        case 2:
                return 1u << 8;
        default:
                return 0;
        }
}

uint32_t cf_stm32_crc_seed_word(uint32_t crc)
{
        /* Run the register backwards over 32 zero bits (the polynomial's x^0 term makes each step
         * invertible), then cancel the initial value: the unit XORs the word into its register. */
        uint32_t r = crc;
        for (int i = 0; i < 32; i++)
                r = (r & 1u) ? ((r ^ 0x04C11DB7u) >> 1) | 0x80000000u : r >> 1;
        return r ^ CF_CRC32_INIT;
}
