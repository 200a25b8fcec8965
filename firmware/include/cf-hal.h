/* The narrow hardware interface under the portable bootloader and CCP slave; each port (host, stm32f4) supplies it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Bound at link time. Every call takes the port's own context (struct cf_hal, defined by the port):
 * on the MCU it is a singleton, in the simulator one per node. Failures are negative errno values
 * (<errno.h>: EIO, EINVAL, EBUSY, ERANGE …); 0 is success.
 *
 * Flash rules (STM32F4, RM0090 §3): erase works on whole sectors; programming only clears bits
 * (programming a byte that is not 0xFF is refused by the simulator with -EIO, and must never be
 * attempted); reads are plain memory reads through cf_hal_flash_ptr().
 */
struct cf_hal;

/* Read access to the whole flash: the byte at addr is cf_hal_flash_ptr(h)[addr - CF_FLASH_BASE]. */
const uint8_t *cf_hal_flash_ptr(struct cf_hal *h);

/* Start erasing one sector (0..11). Returns at once; completion through cf_hal_flash_poll().
 * -EBUSY while another erase is running, -EINVAL for a bad sector, -EACCES for a sector of area A. */
int cf_hal_flash_erase_start(struct cf_hal *h, unsigned sector);

/* State of the last erase: 0 done (or none started), -EINPROGRESS still running, <0 it failed. */
int cf_hal_flash_poll(struct cf_hal *h);

/* Program len bytes at addr (any alignment; the port picks the widest program size it can).
 * Synchronous: a few µs a word. -EBUSY during an erase, -EACCES in area A, -EIO on a flash error
 * (including a target byte that is not erased). */
int cf_hal_flash_program(struct cf_hal *h, uint32_t addr, const void *data, size_t len);

/* CRC of len bytes of flash at addr (len a multiple of 4), continuing from crc (canfleet/crc32.h
 * semantics): the CRC unit where there is one, the software CRC otherwise. */
uint32_t cf_hal_flash_crc(struct cf_hal *h, uint32_t crc, uint32_t addr, uint32_t len);

/* Queue a CAN frame (11-bit id) for transmission. -EAGAIN when the mailboxes are full (try again at
 * the next poll), -ENETDOWN when the controller is bus-off. */
int cf_hal_can_send(struct cf_hal *h, uint32_t id, const uint8_t *data, uint8_t dlc);

/* Monotonic milliseconds (wraps; compare with (int32_t)(a - b)). */
uint32_t cf_hal_clock_ms(struct cf_hal *h);

/* Fill buf with unpredictable bytes (hardware RNG on the MCU; /dev/urandom-seeded in the simulator). */
void cf_hal_random(struct cf_hal *h, uint8_t *buf, size_t n);

/* The 96-bit unique ID. */
void cf_hal_uid(struct cf_hal *h, uint8_t uid[12]);

/* Keep the independent watchdog from firing (call at least every 100 ms in any long loop). */
void cf_hal_watchdog_kick(struct cf_hal *h);

/* System reset. On the MCU it does not return. In the simulator it marks the node for a reset,
 * which happens when control returns to the simulator's loop; the caller must return promptly. */
void cf_hal_reset(struct cf_hal *h);

/* MCU bootloader only (the simulator's cf_node switches to the application logic itself):
 * de-initialise what the bootloader started, set VTOR and MSP, jump to B. Does not return. */
void cf_hal_jump_to_app(struct cf_hal *h);

/* ---- Dual-bank ports only (docs/design.md §9; the F4 port's copies answer "single bank") ---------
 * Sector numbers there run 0-23: 0-11 bank 1, 12-23 bank 2 (canfleet/layout.h, cf_f7_sector()); each
 * bank's area A is its sectors 0-4 and only its sector 4 (the bank's journal, bank.h) is writable. */

/* The bank the running code executes from: 1 or 2, from where the code is (VTOR / the address of
 * the reset handler), never SYSCFG_MEMRMP.SWP_FB. 0 on a single-bank port. */
unsigned cf_hal_running_bank(struct cf_hal *h);

/* The bank BOOT_ADD0 boots at the next reset: 1, 2, or 0 when it names neither bank's base (the
 * chip then falls back to bank 1). */
unsigned cf_hal_boot_bank(struct cf_hal *h);

/* Program the option byte BOOT_ADD0 with bank's base (1 or 2): a flash operation (power cuts and
 * torn writes apply), synchronous. Takes effect at the next reset, which the caller makes with
 * cf_hal_reset(). -EBUSY during an erase, -EIO on a programming error, -ENOTSUP on a single-bank port. */
int cf_hal_boot_bank_set(struct cf_hal *h, unsigned bank);

/* Diagnostic text (USART on the MCU, the simulator's log); NUL-terminated, no newline needed. */
void cf_hal_log(struct cf_hal *h, const char *msg);
