/* STM32F76x/77x registers (RM0410) the port uses where they differ from the F405/407's; the rest is the F4 header's. */
#pragma once

/*
 * RCC, GPIO, bxCAN1, CRC, RNG, IWDG, SysTick, SCB and NVIC sit at the same addresses with the same
 * bits on the F767 as on the F405 (RM0410 §2.2.2, §5, §6, §40; the Cortex-M7 core registers are the
 * M4's): those come from stm32f4-regs.h, and the F4 port's drivers for them (can.c, crc-unit.c,
 * startup.c) are built for the F7 unchanged. What follows replaces what RM0410 lays out otherwise:
 * the flash interface (dual-bank sector numbers, option bytes), the USART, PWR and the UID.
 */
#include "stm32f4-regs.h"

/* Flash interface (RM0410 §3.7). The F7's flash interface has no instruction and data caches of its
 * own (the ART accelerator serves only fetches over the ITCM bus, which this port does not use, and
 * the Cortex-M7's L1 caches stay off): the F4 names of the cache bits are 0 here, so the shared
 * clock set-up writes only PRFTEN and the latency. */
#undef FLASH_ACR_ICEN
#undef FLASH_ACR_DCEN
#define FLASH_ACR_ICEN 0u
#define FLASH_ACR_DCEN 0u
#undef FLASH_ACR_ICRST
#undef FLASH_ACR_DCRST
#undef FLASH_SR_PGSERR
#undef FLASH_SR_ERRORS
#undef FLASH_CR_SNB_MASK
#define FLASH_OPTKEYR        REG32(FLASH_BASE_R + 0x08u)
#define FLASH_OPTCR          REG32(FLASH_BASE_R + 0x14u)
#define FLASH_OPTCR1         REG32(FLASH_BASE_R + 0x18u)
#define FLASH_OPTKEY1        0x08192A3Bu
#define FLASH_OPTKEY2        0x4C5D6E7Fu
#define FLASH_ACR_ARTEN      (1u << 9)  /* ART accelerator: caches ITCM-bus fetches only; left off */
#define FLASH_ACR_ARTRST     (1u << 11)
#define FLASH_SR_ERSERR      (1u << 7)  /* erase sequence error (PGSERR on the F4) */
#define FLASH_SR_RDERR       (1u << 8)  /* read of a PCROP sector */
#define FLASH_SR_ERRORS                                                                                     \
        (FLASH_SR_OPERR | FLASH_SR_WRPERR | FLASH_SR_PGAERR | FLASH_SR_PGPERR | FLASH_SR_ERSERR | FLASH_SR_RDERR)
#define FLASH_CR_SNB_MASK    (0x1Fu << 3) /* 5 bits in dual-bank mode: bit 4 selects bank 2 */
#define FLASH_CR_MER2        (1u << 15)
#define FLASH_OPTCR_OPTLOCK  (1u << 0)
#define FLASH_OPTCR_OPTSTRT  (1u << 1)
#define FLASH_OPTCR_NDBANK   (1u << 29) /* 0: dual-bank mode, the layout this port needs */
#define FLASH_OPTCR1_BOOT_ADD0_MASK 0xFFFFu

/* PWR (RM0410 §4.4.1): VOS[15:14] = 0b11 scale 1 (its reset value), enough for 168 MHz without over-drive */
#undef PWR_CR
#undef PWR_CR_VOS
#define PWR_CR1     REG32(0x40007000u)
#define PWR_CR1_VOS (3u << 14)
#define PWR_CR      PWR_CR1 /* the F4 name, for the shared clock set-up */
#define PWR_CR_VOS  PWR_CR1_VOS

/* Unique device ID (RM0410 §45.1) */
#undef UID_BASE
#define UID_BASE 0x1FF0F420u

/* USART1 (RM0410 §34.8): another register map than the F4's */
#undef USART1_SR
#undef USART1_DR
#undef USART1_BRR
#undef USART1_CR1
#undef USART_SR_TC
#undef USART_SR_TXE
#undef USART_CR1_UE
#define USART1_CR1   REG32(USART1_BASE + 0x00u)
#define USART1_BRR   REG32(USART1_BASE + 0x0Cu)
#define USART1_ISR   REG32(USART1_BASE + 0x1Cu)
#define USART1_TDR   REG32(USART1_BASE + 0x28u)
#define USART_ISR_TC  (1u << 6)
#define USART_ISR_TXE (1u << 7)
#define USART_CR1_UE  (1u << 0)
/* The F4 names the shared log driver uses: status (TXE, TC at the same bits) and transmit data. */
#define USART1_SR    USART1_ISR
#define USART1_DR    USART1_TDR
#define USART_SR_TC  USART_ISR_TC
#define USART_SR_TXE USART_ISR_TXE
