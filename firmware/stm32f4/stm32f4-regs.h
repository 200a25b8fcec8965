/* STM32F405/407 and Cortex-M4 registers we use, from RM0090 and the ARMv7-M ARM (our own minimal map). */
#pragma once

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *) (uintptr_t) (addr))

/* RCC (RM0090 §7.3) */
#define RCC_BASE     0x40023800u
#define RCC_CR       REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR  REG32(RCC_BASE + 0x04u)
#define RCC_CFGR     REG32(RCC_BASE + 0x08u)
#define RCC_CIR      REG32(RCC_BASE + 0x0Cu)
#define RCC_APB1RSTR REG32(RCC_BASE + 0x20u)
#define RCC_APB2RSTR REG32(RCC_BASE + 0x24u)
#define RCC_AHB1ENR  REG32(RCC_BASE + 0x30u)
#define RCC_AHB2ENR  REG32(RCC_BASE + 0x34u)
#define RCC_APB1ENR  REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR  REG32(RCC_BASE + 0x44u)
#define RCC_CSR      REG32(RCC_BASE + 0x74u)

#define RCC_CR_HSION        (1u << 0)
#define RCC_CR_HSIRDY       (1u << 1)
#define RCC_CR_HSEON        (1u << 16)
#define RCC_CR_HSERDY       (1u << 17)
#define RCC_CR_HSEBYP       (1u << 18)
#define RCC_CR_CSSON        (1u << 19)
#define RCC_CR_PLLON        (1u << 24)
#define RCC_CR_PLLRDY       (1u << 25)
#define RCC_PLLCFGR_SRC_HSE (1u << 22)
#define RCC_PLLCFGR_RESET   0x24003010u
#define RCC_CFGR_SW_MASK    3u
#define RCC_CFGR_SW_HSI     0u
#define RCC_CFGR_SW_PLL     2u
#define RCC_CFGR_SWS_MASK   (3u << 2)
#define RCC_CFGR_SWS_HSI    (0u << 2)
#define RCC_CFGR_SWS_PLL    (2u << 2)
#define RCC_CFGR_PPRE1_DIV4 (5u << 10)
#define RCC_CFGR_PPRE2_DIV2 (4u << 13)
#define RCC_AHB1ENR_GPIOA   (1u << 0)
#define RCC_AHB1ENR_GPIOB   (1u << 1)
#define RCC_AHB1ENR_GPIOD   (1u << 3)
#define RCC_AHB1ENR_CRC     (1u << 12)
#define RCC_AHB2ENR_RNG     (1u << 6)
#define RCC_APB1ENR_CAN1    (1u << 25)
#define RCC_APB1ENR_PWR     (1u << 28)
#define RCC_APB1RSTR_CAN1   (1u << 25)
#define RCC_APB2ENR_USART1  (1u << 4)
#define RCC_APB2RSTR_USART1 (1u << 4)
#define RCC_CSR_LSION       (1u << 0)
#define RCC_CSR_LSIRDY      (1u << 1)
#define RCC_CSR_RMVF        (1u << 24)
#define RCC_CSR_PORRSTF     (1u << 27)
#define RCC_CSR_IWDGRSTF    (1u << 29)

/* PWR (RM0090 §5.4): VOS=1 selects scale 1, needed for 168 MHz on the F405/407 */
#define PWR_CR     REG32(0x40007000u)
#define PWR_CR_VOS (1u << 14)

/* Embedded flash interface (RM0090 §3.9) */
#define FLASH_BASE_R           0x40023C00u
#define FLASH_ACR              REG32(FLASH_BASE_R + 0x00u)
#define FLASH_KEYR             REG32(FLASH_BASE_R + 0x04u)
#define FLASH_SR               REG32(FLASH_BASE_R + 0x0Cu)
#define FLASH_CR               REG32(FLASH_BASE_R + 0x10u)
#define FLASH_KEY1             0x45670123u
#define FLASH_KEY2             0xCDEF89ABu
#define FLASH_ACR_LATENCY_MASK 7u
#define FLASH_ACR_PRFTEN       (1u << 8)
#define FLASH_ACR_ICEN         (1u << 9)
#define FLASH_ACR_DCEN         (1u << 10)
#define FLASH_ACR_ICRST        (1u << 11)
#define FLASH_ACR_DCRST        (1u << 12)
#define FLASH_SR_EOP           (1u << 0)
#define FLASH_SR_OPERR         (1u << 1)
#define FLASH_SR_WRPERR        (1u << 4)
#define FLASH_SR_PGAERR        (1u << 5)
#define FLASH_SR_PGPERR        (1u << 6)
#define FLASH_SR_PGSERR        (1u << 7)
#define FLASH_SR_BSY           (1u << 16)
#define FLASH_SR_ERRORS                                                                                     \
        (FLASH_SR_OPERR | FLASH_SR_WRPERR | FLASH_SR_PGAERR | FLASH_SR_PGPERR | FLASH_SR_PGSERR)
#define FLASH_CR_PG          (1u << 0)
#define FLASH_CR_SER         (1u << 1)
#define FLASH_CR_SNB_SHIFT   3u
#define FLASH_CR_SNB_MASK    (0xFu << 3)
#define FLASH_CR_PSIZE_SHIFT 8u
#define FLASH_CR_PSIZE_MASK  (3u << 8)
#define FLASH_CR_STRT        (1u << 16)
#define FLASH_CR_LOCK        (1u << 31)

/* CRC calculation unit (RM0090 §4) */
#define CRC_DR       REG32(0x40023000u)
#define CRC_CR       REG32(0x40023008u)
#define CRC_CR_RESET (1u << 0)

/* Independent watchdog (RM0090 §19) */
#define IWDG_KR         REG32(0x40003000u)
#define IWDG_PR         REG32(0x40003004u)
#define IWDG_RLR        REG32(0x40003008u)
#define IWDG_SR         REG32(0x4000300Cu)
#define IWDG_KEY_RELOAD 0xAAAAu
#define IWDG_KEY_ACCESS 0x5555u
#define IWDG_KEY_START  0xCCCCu

/* Random number generator (RM0090 §24) */
#define RNG_CR       REG32(0x50060800u)
#define RNG_SR       REG32(0x50060804u)
#define RNG_DR       REG32(0x50060808u)
#define RNG_CR_RNGEN (1u << 2)
#define RNG_SR_DRDY  (1u << 0)
#define RNG_SR_CECS  (1u << 1)
#define RNG_SR_SECS  (1u << 2)

/* Device electronic signature: the 96-bit unique ID (RM0090 §39.1) */
#define UID_BASE 0x1FFF7A10u

/* GPIO (RM0090 §8.4) */
#define GPIO_BASE(port) (0x40020000u + 0x400u * (port))
#define GPIO_MODER(p)   REG32(GPIO_BASE(p) + 0x00u)
#define GPIO_OSPEEDR(p) REG32(GPIO_BASE(p) + 0x08u)
#define GPIO_PUPDR(p)   REG32(GPIO_BASE(p) + 0x0Cu)
#define GPIO_AFRL(p)    REG32(GPIO_BASE(p) + 0x20u)
#define GPIO_AFRH(p)    REG32(GPIO_BASE(p) + 0x24u)

/* USART1 (RM0090 §30.6) */
#define USART1_BASE  0x40011000u
#define USART1_SR    REG32(USART1_BASE + 0x00u)
#define USART1_DR    REG32(USART1_BASE + 0x04u)
#define USART1_BRR   REG32(USART1_BASE + 0x08u)
#define USART1_CR1   REG32(USART1_BASE + 0x0Cu)
#define USART_SR_TC  (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)

/* bxCAN1 (RM0090 §32.9) */
#define CAN1_BASE      0x40006400u
#define CAN_MCR        REG32(CAN1_BASE + 0x000u)
#define CAN_MSR        REG32(CAN1_BASE + 0x004u)
#define CAN_TSR        REG32(CAN1_BASE + 0x008u)
#define CAN_RF0R       REG32(CAN1_BASE + 0x00Cu)
#define CAN_IER        REG32(CAN1_BASE + 0x014u)
#define CAN_ESR        REG32(CAN1_BASE + 0x018u)
#define CAN_BTR        REG32(CAN1_BASE + 0x01Cu)
#define CAN_TIR(n)     REG32(CAN1_BASE + 0x180u + 0x10u * (n))
#define CAN_TDTR(n)    REG32(CAN1_BASE + 0x184u + 0x10u * (n))
#define CAN_TDLR(n)    REG32(CAN1_BASE + 0x188u + 0x10u * (n))
#define CAN_TDHR(n)    REG32(CAN1_BASE + 0x18Cu + 0x10u * (n))
#define CAN_RI0R       REG32(CAN1_BASE + 0x1B0u)
#define CAN_RDT0R      REG32(CAN1_BASE + 0x1B4u)
#define CAN_RDL0R      REG32(CAN1_BASE + 0x1B8u)
#define CAN_RDH0R      REG32(CAN1_BASE + 0x1BCu)
#define CAN_FMR        REG32(CAN1_BASE + 0x200u)
#define CAN_FM1R       REG32(CAN1_BASE + 0x204u)
#define CAN_FS1R       REG32(CAN1_BASE + 0x20Cu)
#define CAN_FFA1R      REG32(CAN1_BASE + 0x214u)
#define CAN_FA1R       REG32(CAN1_BASE + 0x21Cu)
#define CAN_FR1(b)     REG32(CAN1_BASE + 0x240u + 8u * (b))
#define CAN_FR2(b)     REG32(CAN1_BASE + 0x244u + 8u * (b))
#define CAN_MCR_INRQ   (1u << 0)
#define CAN_MCR_SLEEP  (1u << 1)
#define CAN_MCR_TXFP   (1u << 2)
#define CAN_MCR_ABOM   (1u << 6)
#define CAN_MCR_RESET  (1u << 15)
#define CAN_MSR_INAK   (1u << 0)
#define CAN_TSR_TME0   (1u << 26)
#define CAN_RF0R_FMP0  (3u << 0)
#define CAN_RF0R_FOVR0 (1u << 4)
#define CAN_RF0R_RFOM0 (1u << 5)
#define CAN_IER_FMPIE0 (1u << 1)
#define CAN_ESR_BOFF   (1u << 2)
#define CAN_TIR_TXRQ   (1u << 0)
#define CAN_RIR_RTR    (1u << 1)
#define CAN_RIR_IDE    (1u << 2)
#define CAN_FMR_FINIT  (1u << 0)
#define CAN1_RX0_IRQN  20u

/* Cortex-M4 system control space (ARMv7-M ARM B3) */
#define SCB_ICSR           REG32(0xE000ED04u)
#define SCB_VTOR           REG32(0xE000ED08u)
#define SCB_AIRCR          REG32(0xE000ED0Cu)
#define SCB_SHCSR          REG32(0xE000ED24u)
#define SCB_CFSR           REG32(0xE000ED28u)
#define SCB_HFSR           REG32(0xE000ED2Cu)
#define SCB_BFAR           REG32(0xE000ED38u)
#define SCB_CPACR          REG32(0xE000ED88u)
#define SCB_ICSR_PENDSTCLR (1u << 25)
#define SCB_AIRCR_SYSRESET (0x05FA0000u | (1u << 2))
#define SYST_CSR           REG32(0xE000E010u)
#define SYST_RVR           REG32(0xE000E014u)
#define SYST_CVR           REG32(0xE000E018u)
#define SYST_CSR_ENABLE    (1u << 0)
#define SYST_CSR_TICKINT   (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)
#define SYST_CSR_COUNTFLAG (1u << 16)
#define NVIC_ISER(n)       REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n)       REG32(0xE000E180u + 4u * (n))
#define NVIC_ICPR(n)       REG32(0xE000E280u + 4u * (n))

static inline void cf_dsb(void)
{
        __asm__ volatile("dsb" ::: "memory");
}

static inline void cf_isb(void)
{
        __asm__ volatile("isb" ::: "memory");
}

static inline void cf_irq_disable(void)
{
        __asm__ volatile("cpsid i" ::: "memory");
}

static inline void cf_irq_enable(void)
{
        __asm__ volatile("cpsie i" ::: "memory");
}

/* PRIMASK, to restore the caller's interrupt state after a critical section. */
static inline uint32_t cf_irq_save(void)
{
        uint32_t primask;
        __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
        return primask;
}

static inline void cf_irq_restore(uint32_t primask)
{
        __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}
