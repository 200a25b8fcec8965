/* Cortex-M4 start-up of both images: vector table, reset handler (FPU, .data, .bss), faults. */
#include <stdint.h>

#include "hal-stm32.h"
#include "log-line.h"
#include "stm32-regs.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void CAN1_RX0_IRQHandler(void) __attribute__((weak, alias("Default_Handler")));

#define N_IRQ 82u /* STM32F405/407: IRQ 0..81 (FPU) */

/* Sixteen system exceptions, then the device interrupts; the linker puts this first in the image. */
#define D       ((uintptr_t) Default_Handler)
#define FAULT   ((uintptr_t) HardFault_Handler)
#define CAN_RX0 ((uintptr_t) CAN1_RX0_IRQHandler)
/* clang-format off */
__attribute__((section(".isr_vector"), used)) const uintptr_t cf_vector_table[16 + N_IRQ] = {
        (uintptr_t) &_estack, (uintptr_t) Reset_Handler, D /* NMI */, FAULT, FAULT /* MemManage */,
        FAULT /* BusFault */, FAULT /* UsageFault */, 0, 0, 0, 0, D /* SVCall */, D /* DebugMon */, 0,
        D /* PendSV */, (uintptr_t) SysTick_Handler,
        /* IRQ 0..81; 20 is CAN1 RX0 */
        D, D, D, D, D, D, D, D,
        D, D, D, D, D, D, D, D,
        D, D, D, D, CAN_RX0, D, D, D,
        D, D, D, D, D, D, D, D,
        D, D, D, D, D, D, D, D,
        D, D, D, D, D, D, D, D,
        D, D, D, D, D, D, D, D,
        D, D, D, D, D, D, D, D,
        D, D, D, D, D, D, D, D,
        D, D, D, D, D, D, D, D,
        D, D,
};
/* clang-format on */
_Static_assert(CAN1_RX0_IRQN == 20, "the table above places CAN1 RX0 at IRQ 20");

void Reset_Handler(void)
{
        /* CP10/CP11 full access before any floating-point instruction (-mfloat-abi=hard). */
        SCB_CPACR |= 0xFu << 20;
        cf_dsb();
        cf_isb();
        /* Our own table, also when a debugger starts the application directly. */
        SCB_VTOR = (uint32_t) (uintptr_t) cf_vector_table;

        uint32_t *src = &_sidata;
        for (uint32_t *dst = &_sdata; dst < &_edata;)
                *dst++ = *src++;
        for (uint32_t *dst = &_sbss; dst < &_ebss;)
                *dst++ = 0;

        main();
        for (;;)
                cf_hal_reset(&cf_stm32_hal);
}

void Default_Handler(void)
{
        struct cf_line l;
        uint32_t icsr = SCB_ICSR;
        cf_hal_log(
            &cf_stm32_hal,
            cf_line_dec(cf_line_str(cf_line_init(&l), "fault: unexpected exception "), icsr & 0x1FFu)->buf);
        for (;;)
                ;
}

/* The probe: the fault handler recognises a fault at cf_probe_load, skips that 16-bit load and sets
 * r2 in the stacked frame. */
__attribute__((naked)) int cf_stm32_probe_read32(uint32_t addr, uint32_t *out)
{
        __asm__ volatile("movs r2, #0\n"
                         ".global cf_probe_load\n"
                         "cf_probe_load:\n"
                         "ldr r3, [r0]\n"
                         "cbnz r2, 1f\n"
                         "str r3, [r1]\n"
                         "movs r0, #0\n"
                         "bx lr\n"
                         "1:\n"
                         "movs r0, #14\n" /* EFAULT */
                         "rsbs r0, r0, #0\n"
                         "bx lr\n");
}

extern const char cf_probe_load[];

void cf_fault_report(uint32_t *frame);
void cf_fault_report(uint32_t *frame)
{
        if ((frame[6] & ~1u) == ((uint32_t) (uintptr_t) cf_probe_load & ~1u)) {
                frame[6] += 2;
                frame[2] = 1;
                SCB_CFSR = SCB_CFSR; /* write-one-to-clear the bus fault status */
                SCB_HFSR = SCB_HFSR;
                return;
        }
        struct cf_line l;
        cf_line_init(&l);
        cf_line_str(&l, "fault: pc 0x");
        cf_line_hex(&l, frame[6], 8);
        cf_line_str(&l, " lr 0x");
        cf_line_hex(&l, frame[5], 8);
        cf_line_str(&l, " cfsr 0x");
        cf_line_hex(&l, SCB_CFSR, 8);
        cf_line_str(&l, " bfar 0x");
        cf_line_hex(&l, SCB_BFAR, 8);
        cf_hal_log(&cf_stm32_hal, l.buf);
        /* The watchdog resets a real node; under a debugger or QEMU, stop here. */
        for (;;)
                ;
}

__attribute__((naked)) void HardFault_Handler(void)
{
        __asm__ volatile("tst lr, #4\n"
                         "ite eq\n"
                         "mrseq r0, msp\n"
                         "mrsne r0, psp\n"
                         "b cf_fault_report\n");
}
