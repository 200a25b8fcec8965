/* The STM32F405/407 port of cf-hal.h (and the F76x/77x's, firmware/stm32f7): the singleton HAL state and the port calls the image mains use. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cf-hal.h"

#define CF_HSE_HZ        8000000u
#define CF_HSI_HZ        16000000u
#define CF_SYSCLK_PLL_HZ 168000000u
#define CF_USART_BAUD    115200u
/* Bounded busy-wait: the ready bits of peripherals QEMU does not model never come up there, and a
 * broken crystal must not hang a node. ~10 ms at 168 MHz, longer at 16 MHz: only ever an upper bound. */
#define CF_WAIT_LOOPS  200000u
/* Frames between the RX interrupt and the main loop. A group transfer sends back-to-back frames:
 * one every 111 us at 1 Mbit/s (8 data bytes, no stuff bits; up to ~135 us with them), 222 us at
 * 500 kbit/s, and a slot costs the main loop ~32 us of programming (a word and a half-word, 16 us
 * each typ.), so the loop keeps up on average; the ring absorbs its stalls, the longest being a
 * blocking USART log line (up to 96 characters at 115200 baud = 8.3 ms = 75 frames at 1 Mbit/s).
 * 128 frames = 14 ms at 1 Mbit/s, 28 ms at 500 kbit/s; 2 KB of RAM. A power of two, < 256. */
#define CF_CAN_RX_RING 128u

struct cf_bxcan_frame {
        uint32_t id;
        uint8_t dlc;
        uint8_t data[8];
};

struct cf_hal {
        uint32_t sysclk_hz, apb1_hz, apb2_hz;
        bool clock_hse; /* running from the HSE PLL (false: HSI fallback) */
        bool crc_unit;  /* the CRC unit passed its self-test */
        bool rng_unit;  /* the RNG produced data */
        bool rng_warned;
        bool can_up;
        bool can_irq; /* RX by interrupt (application) rather than polling (bootloader) */
        bool iwdg_on;
        volatile uint32_t ms;
        int erase_result;
        bool erase_running; /* F7: an erase of the other bank runs on (read-while-write) */
        bool mode_warned;   /* F7: "not in dual-bank mode" logged */
        uint32_t prng;
        uint32_t can_cro_id;
        bool can_group_on; /* filter bank 1 passes can_group_id */
        uint32_t can_group_id;
        volatile uint8_t rx_head, rx_tail; /* head: producer (ISR or poll), tail: main loop */
        uint32_t rx_overruns;
        struct cf_bxcan_frame rx[CF_CAN_RX_RING];
};

extern struct cf_hal cf_stm32_hal;

/* Clocks: HSE 8 MHz -> PLL 168 MHz (APB1 42, APB2 84), 5 flash wait states; falls back to the 16 MHz
 * HSI when any ready bit times out, and says so. Then SysTick at 1 kHz and the USART1 log
 * (PA9/PA10, 115200 8N1). */
void cf_stm32_init(struct cf_hal *h, const char *image_name);
/* Undo what cf_stm32_clock_init did: back to HSI, PLL and HSE off, SysTick off. */
void cf_stm32_clock_deinit(struct cf_hal *h);
/* Start the independent watchdog (~2 s); it cannot be stopped again: the application kicks it too. */
void cf_stm32_iwdg_start(struct cf_hal *h);
/* CRC unit self-test: 0x12345678 -> 0xDF8A8A2B, else the software CRC. */
void cf_stm32_crc_init(struct cf_hal *h);

/* bxCAN1 at bitrate, hardware filter passing only cro_id (standard data frames) into FIFO 0.
 * with_irq: frames are taken by the CAN1 RX0 interrupt; otherwise call cf_stm32_can_poll().
 * 0, or -ETIMEDOUT (the controller did not enter/leave initialisation), -EINVAL (bitrate). */
int cf_stm32_can_start(struct cf_hal *h, uint32_t cro_id, uint32_t bitrate, bool with_irq);
void cf_stm32_can_stop(struct cf_hal *h);
/* Pass frames on a group transfer's id too (on), or stop (off); cheap when nothing changes. */
void cf_stm32_can_group_filter(struct cf_hal *h, bool on, uint32_t id);
/* Move received frames from the controller into the ring (polling mode; the ISR does the same). */
void cf_stm32_can_poll(struct cf_hal *h);
/* Take the oldest received frame: true when there was one. */
bool cf_stm32_can_recv(struct cf_hal *h, struct cf_bxcan_frame *f);

/* USART1 log output of len bytes (blocking, bounded). */
void cf_stm32_log_write(struct cf_hal *h, const char *s, uint32_t len);
/* Wait for the last byte to leave the USART, then switch it off. */
void cf_stm32_log_deinit(struct cf_hal *h);

/* Read a word where a bus fault is possible (QEMU has no system memory at the UID): 0, or -EFAULT. */
int cf_stm32_probe_read32(uint32_t addr, uint32_t *out);

/* The application area this image belongs with (F4: B; F7: the running bank's) and the
 * provisioning record (F4: 0x0800C000; F7: the running bank's sector 3). */
uint32_t cf_stm32_app_addr(struct cf_hal *h);
uint32_t cf_stm32_provision_addr(struct cf_hal *h);

/* Was the last reset a power-on? (RCC_CSR, cleared after reading.) */
bool cf_stm32_reset_was_power_on(void);
