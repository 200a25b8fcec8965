/* The register header of the chip being built: this port's F405/407, or the F76x/77x (firmware/stm32f7). */
#pragma once

/* The drivers of this directory serve both chips where RM0410 keeps RM0090's registers (bxCAN, CRC,
 * RNG, IWDG, RCC, GPIO, SysTick): the F7 build defines CF_STM32F7 and finds its header on its
 * include path; it gives the F4 names to what the F7 lays out otherwise. */
#if defined(CF_STM32F7)
#include "stm32f7-regs.h"
#else
#include "stm32f4-regs.h"
#endif
