/* The STM32F7 dual-bank port's pure logic (firmware/stm32f7/bank-policy.c) on the host: QEMU has no F7 board. */
#include <errno.h>

#include "bank-policy.h"
#include "bank.h"
#include "canfleet/layout.h"
#include "cf-test.h"

static void test_erase_allowed(void)
{
        /* header examples */
        CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(4), 0);
        CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(3), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(16), 0);
        CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(15), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(17), 0);
        CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(24), -EINVAL);
        /* each bank: its bootloader and provisioning record never, its journal and the rest yes */
        for (unsigned s = 0; s < CF_F7_FLASH_SECTORS; s++) {
                unsigned in_bank = s % 12;
                int want = in_bank < 4 ? -EACCES : 0;
                CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(s), want);
        }
        /* the journal sectors are the core's (bank.h) */
        CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(CF_BANK_JOURNAL_SECTOR), 0);
        CU_ASSERT_EQUAL(cf_stm32f7_erase_allowed(CF_F7_BANK_SECTORS + CF_BANK_JOURNAL_SECTOR), 0);
}

static void test_program_allowed(void)
{
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x08110000u, 16), 0);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x0810C000u, 4), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x0811FFFFu, 2), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x08120000u, 4), 0);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x081FFFFFu, 2), -EINVAL);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x08010000u, 16), 0);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x0800FFFFu, 2), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x08000000u, 1), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x08100000u, 1), -EACCES);
        /* bank 1's last bytes, and on into bank 2's bootloader */
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x080FFFFCu, 4), 0);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x080FFFFCu, 8), -EACCES);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x07FFFFFFu, 2), -EINVAL);
        CU_ASSERT_EQUAL(cf_stm32f7_program_allowed(0x08020000u, 0xFFFFFFFFu), -EINVAL);
}

static void test_snb(void)
{
        CU_ASSERT_EQUAL(cf_stm32f7_snb_bits(0), 0u);
        CU_ASSERT_EQUAL(cf_stm32f7_snb_bits(4), 4u << 3);
        CU_ASSERT_EQUAL(cf_stm32f7_snb_bits(11), 11u << 3);
        CU_ASSERT_EQUAL(cf_stm32f7_snb_bits(12), 0x10u << 3);
        CU_ASSERT_EQUAL(cf_stm32f7_snb_bits(17), 0x15u << 3);
        CU_ASSERT_EQUAL(cf_stm32f7_snb_bits(23), 0x1Bu << 3);
        /* never beyond the 5-bit field at [7:3] */
        for (unsigned s = 0; s < CF_F7_FLASH_SECTORS; s++)
                CU_ASSERT_EQUAL(cf_stm32f7_snb_bits(s) & ~(0x1Fu << 3), 0u);
}

static void test_optcr1(void)
{
        CU_ASSERT_EQUAL(cf_stm32f7_optcr1(0x00400080u, 2), 0x00402040u);
        CU_ASSERT_EQUAL(cf_stm32f7_optcr1(0x00402040u, 1), 0x00402000u);
        CU_ASSERT_EQUAL(cf_stm32f7_optcr1(0xFFFFFFFFu, 1), 0xFFFF2000u); /* BOOT_ADD1 kept */
        /* the value boots the bank's base: address bits [29:14] */
        CU_ASSERT_EQUAL((cf_stm32f7_optcr1(0, 2) & 0xFFFFu) << 14, CF_F7_BANK2_ADDR);
        CU_ASSERT_EQUAL((cf_stm32f7_optcr1(0, 1) & 0xFFFFu) << 14, CF_F7_BANK1_ADDR);
}

static void test_bank_of_code(void)
{
        CU_ASSERT_EQUAL(cf_stm32f7_bank_of_code(0x0812ABCDu), 2u);
        CU_ASSERT_EQUAL(cf_stm32f7_bank_of_code(0x08002851u), 1u);
        CU_ASSERT_EQUAL(cf_stm32f7_bank_of_code(0x00200400u), 1u);
        CU_ASSERT_EQUAL(cf_stm32f7_bank_of_code(0x00300400u), 2u);
        CU_ASSERT_EQUAL(cf_stm32f7_bank_of_code(0x20000000u), 0u);
        CU_ASSERT_EQUAL(cf_stm32f7_provision_addr(1), 0x0800C000u);
        CU_ASSERT_EQUAL(cf_stm32f7_provision_addr(2), 0x0810C000u);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"erase rules", test_erase_allowed},
            {"program rules", test_program_allowed},
            {"dual-bank sector numbers", test_snb},
            {"BOOT_ADD0 option word", test_optcr1},
            {"the bank of running code", test_bank_of_code},
            {NULL, NULL},
        };
        return cf_test_run("stm32f7-port", tests);
}
