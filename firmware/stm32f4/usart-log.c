/* The diagnostic log on USART1 (what QEMU's -serial shows): blocking, bounded writes of whole lines. */
#include "hal-stm32.h"
#include "stm32-regs.h"

static void put_byte(char c)
{
        for (uint32_t i = 0; i < CF_WAIT_LOOPS && !(USART1_SR & USART_SR_TXE); i++)
                ;
        USART1_DR = (uint8_t) c;
}

void cf_stm32_log_write(struct cf_hal *h, const char *s, uint32_t len)
{
        (void) h;
        for (uint32_t i = 0; i < len; i++)
                put_byte(s[i]);
}

void cf_hal_log(struct cf_hal *h, const char *msg)
{
        uint32_t n = 0;
        while (msg[n])
                n++;
        cf_stm32_log_write(h, msg, n);
        cf_stm32_log_write(h, "\r\n", 2);
}

void cf_stm32_log_deinit(struct cf_hal *h)
{
        (void) h;
        for (uint32_t i = 0; i < CF_WAIT_LOOPS && !(USART1_SR & USART_SR_TC); i++)
                ;
        USART1_CR1 = 0;
        RCC_APB2RSTR |= RCC_APB2RSTR_USART1;
        RCC_APB2RSTR &= ~RCC_APB2RSTR_USART1;
        RCC_APB2ENR &= ~RCC_APB2ENR_USART1;
}
