/* Clock tree (HSE 8 MHz -> 168 MHz, HSI fallback), SysTick ms, independent watchdog, reset causes. */
#include <stdbool.h>

#include "hal-stm32.h"
#include "log-line.h"
#include "stm32-regs.h"

struct cf_hal cf_stm32_hal;

static bool wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
        for (uint32_t i = 0; i < CF_WAIT_LOOPS; i++)
                if ((*reg & mask) == value)
                        return true;
        return false;
}

static void use_hsi(struct cf_hal *h)
{
        RCC_CR |= RCC_CR_HSION;
        (void) wait_set(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
        RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_HSI;
        (void) wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_HSI);
        /* Prescalers to /1 so that the peripheral clocks are what we compute. */
        RCC_CFGR = RCC_CFGR_SW_HSI;
        RCC_CR &= ~(RCC_CR_PLLON | RCC_CR_HSEON | RCC_CR_CSSON);
        h->sysclk_hz = h->apb1_hz = h->apb2_hz = CF_HSI_HZ;
        h->clock_hse = false;
}

/* 0, or the name of the step that timed out. */
static const char *use_hse_pll(struct cf_hal *h)
{
        RCC_CR |= RCC_CR_HSEON;
        if (!wait_set(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY))
                return "HSE ready";

        /* Voltage scale 1 and 5 wait states (2.7-3.6 V, RM0090 table 10) before going fast. */
        RCC_APB1ENR |= RCC_APB1ENR_PWR;
        PWR_CR |= PWR_CR_VOS;
        FLASH_ACR = FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN | 5u;
        if ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != 5u)
                return "flash latency";

        /* VCO in = 8 MHz / M 8 = 1 MHz; VCO = x N 336; SYSCLK = / P 2 = 168 MHz; 48 MHz = / Q 7. */
        RCC_CR &= ~RCC_CR_PLLON;
        RCC_PLLCFGR = 8u | 336u << 6 | 0u << 16 /* P=2 */ | RCC_PLLCFGR_SRC_HSE | 7u << 24;
        RCC_CFGR = RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2 | RCC_CFGR_SW_HSI;
        RCC_CR |= RCC_CR_PLLON;
        if (!wait_set(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY))
                return "PLL lock";
        RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
        if (!wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL))
                return "PLL switch";
        h->sysclk_hz = CF_SYSCLK_PLL_HZ;
        h->apb1_hz = CF_SYSCLK_PLL_HZ / 4;
        h->apb2_hz = CF_SYSCLK_PLL_HZ / 2;
        h->clock_hse = true;
        return 0;
}

static void systick_start(struct cf_hal *h)
{
        SYST_CSR = 0;
        SYST_RVR = h->sysclk_hz / 1000u - 1u;
        SYST_CVR = 0;
        SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

void SysTick_Handler(void);
void SysTick_Handler(void)
{
        cf_stm32_hal.ms++;
}

static void usart_start(struct cf_hal *h)
{
        /* PA9 TX, PA10 RX: alternate function 7. */
        RCC_AHB1ENR |= RCC_AHB1ENR_GPIOA;
        RCC_APB2ENR |= RCC_APB2ENR_USART1;
        cf_dsb();
        GPIO_MODER(0) = (GPIO_MODER(0) & ~(0xFu << 18)) | 0xAu << 18;
        GPIO_AFRH(0) = (GPIO_AFRH(0) & ~(0xFFu << 4)) | 0x77u << 4;
        USART1_CR1 = 0;
        /* Oversampling by 16: BRR holds USARTDIV in 1/16ths, which is fck / baud, rounded. */
        USART1_BRR = (h->apb2_hz + CF_USART_BAUD / 2) / CF_USART_BAUD;
        USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

void cf_stm32_init(struct cf_hal *h, const char *image_name)
{
        h->erase_result = 0;
        h->rx_head = h->rx_tail = 0;
        const char *failed = use_hse_pll(h);
        if (failed)
                use_hsi(h);
        systick_start(h);
        usart_start(h);

        struct cf_line l;
        cf_line_init(&l);
        cf_line_str(&l, image_name);
        cf_line_str(&l, ": clock ");
        cf_line_dec(&l, h->sysclk_hz / 1000000u);
        if (failed) {
                cf_line_str(&l, " MHz HSI (fallback: ");
                cf_line_str(&l, failed);
                cf_line_str(&l, " timed out)");
        } else {
                cf_line_str(&l, " MHz HSE PLL");
        }
        cf_hal_log(h, l.buf);
        cf_stm32_crc_init(h);
}

void cf_stm32_clock_deinit(struct cf_hal *h)
{
        SYST_CSR = 0;
        SYST_RVR = 0;
        SYST_CVR = 0;
        SCB_ICSR = SCB_ICSR_PENDSTCLR;
        use_hsi(h);
        RCC_PLLCFGR = RCC_PLLCFGR_RESET;
        RCC_CIR = 0;
}

void cf_stm32_iwdg_start(struct cf_hal *h)
{
        /* LSI ~32 kHz / 64 = 500 Hz; 1000 counts = ~2 s, far above one main-loop pass. */
        IWDG_KR = IWDG_KEY_START;
        IWDG_KR = IWDG_KEY_ACCESS;
        IWDG_PR = 4u;
        IWDG_RLR = 1000u;
        (void) wait_set(&IWDG_SR, 3u, 0u);
        IWDG_KR = IWDG_KEY_RELOAD;
        h->iwdg_on = true;
}

bool cf_stm32_reset_was_power_on(void)
{
        uint32_t csr = RCC_CSR;
        RCC_CSR = csr | RCC_CSR_RMVF;
        return csr & RCC_CSR_PORRSTF;
}

uint32_t cf_hal_clock_ms(struct cf_hal *h)
{
        return h->ms;
}

void cf_hal_watchdog_kick(struct cf_hal *h)
{
        (void) h;
        IWDG_KR = IWDG_KEY_RELOAD;
}

void cf_hal_reset(struct cf_hal *h)
{
        cf_hal_log(h, "reset");
        cf_stm32_log_deinit(h);
        cf_dsb();
        SCB_AIRCR = SCB_AIRCR_SYSRESET;
        cf_dsb();
        for (;;)
                ;
}
