/* The ADuCM36x serial download loader (AN-1160): packets, the ID packet and the 24-bit LFSR page
 * signature, shared by canfleetd's loader master and the simulator. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The dialogue: host BS (0x08) -> loader the 24-byte ID packet. Then per packet host
 *   0x07 0x0E  count  cmd  A31..24 A23..16 A15..8 A7..0  data[count - 5]  cs
 * with count = 5 + data bytes (5..255) and cs making the 8-bit sum of count..cs zero;
 * loader ACK (0x06) or BEL (0x07): BEL for a bad checksum, an unknown command, an address out of
 * range, a failed verify. Commands:
 *   E addr, data {pages}       erase pages from addr's page; addr 0 with 0 pages: mass erase
 *   W addr, data {bytes...}    program up to 250 bytes (over erased flash: the loader does not check)
 *   V 0x80000000, {4 bytes}    verify step 1: the page's last word (offset 0x1FC), little-endian
 *   V addr, {L0 L1 L2 00}      verify step 2: the LFSR of the page's first 508 bytes, LSB first
 *   R 1                        remote reset (the value is always 1)
 */

#define CF_ADI_START0 0x07u
#define CF_ADI_START1 0x0Eu
#define CF_ADI_ACK    0x06u
#define CF_ADI_NAK    0x07u /* BEL */
#define CF_ADI_SYNC   0x08u /* BS: the loader measures the baud rate on it */

#define CF_ADI_CMD_ERASE  'E'
#define CF_ADI_CMD_WRITE  'W'
#define CF_ADI_CMD_VERIFY 'V'
#define CF_ADI_CMD_RESET  'R'

#define CF_ADI_DATA_MAX   250u
#define CF_ADI_PACKET_MAX (CF_ADI_DATA_MAX + 9u) /* start id 2, count, cmd, value 4, cs */

/* The value of verify step 1. */
#define CF_ADI_VERIFY_LAST_WORD 0x80000000u

/* ADuCM360/361 flash: 128 KB in 512-byte pages at address 0. */
#define CF_ADI_PAGE_SIZE  512u
#define CF_ADI_FLASH_SIZE 0x20000u

struct cf_adi_packet {
        uint8_t cmd;
        uint32_t value; /* the address (or 1 for R, 0x80000000 for verify step 1) */
        uint8_t data[CF_ADI_DATA_MAX];
        size_t n; /* data bytes */
};

/* Write one packet into out (n + 9 bytes, at most CF_ADI_PACKET_MAX); returns its length, 0 for
 * n > 250.
 *   ('R', 1, none)                -> 07 0E 05 52 00 00 00 01 A8
 *   ('E', 0x200, {01})            -> 07 0E 06 45 00 00 02 00 01 B2 */
size_t cf_adi_packet_build(uint8_t cmd, uint32_t value, const uint8_t *data, size_t n, uint8_t *out);

/* Parse the packet at the start of in. Returns its length (> 0) and fills p; 0 when in holds only
 * the first part of a packet (read more); -EINVAL when in does not start with 0x07 0x0E or the count
 * is below 5; -EBADMSG for a bad checksum. The command letter is not checked: the loader answers BEL
 * to one it does not know. */
int cf_adi_packet_parse(const uint8_t *in, size_t len, struct cf_adi_packet *p);

/* The 24-bit LFSR signature of n bytes (n a multiple of 4; a trailing partial word is ignored), the
 * bytes taken as little-endian 32-bit words, exactly as AN-1160's GenerateChecksumCRC24_D32 (initial
 * value 0xFFFFFF). The loader's V signs a page's first 508 bytes: cf_adi_page_signature(). */
uint32_t cf_adi_lfsr_signature(const uint8_t *page, size_t n);
uint32_t cf_adi_page_signature(const uint8_t page[CF_ADI_PAGE_SIZE]);

/* The ID packet the loader sends after BS: 15 bytes product identifier (ASCII, space padded),
 * 3 bytes hardware/firmware version, 4 reserved bytes, "\n\r". AN-1160 defines no checksum in it;
 * the reserved bytes are passed through. */
#define CF_ADI_ID_LEN 24u

struct cf_adi_id {
        char product[16]; /* trailing spaces and NULs removed, NUL-terminated */
        char version[4];  /* NUL-terminated */
        uint8_t reserved[4];
};

/* Build the packet: product cut/padded to 15 chars with spaces, version to 3; reserved bytes zero.
 *   ("ADuCM360", "I23") -> "ADuCM360       I23" 00 00 00 00 "\n\r" */
void cf_adi_id_build(const char *product, const char *version, uint8_t out[CF_ADI_ID_LEN]);

/* Parse the 24 bytes; -EINVAL unless len is 24, the packet ends "\n\r" and the product and version
 * are printable ASCII (some loaders pad with NULs; those are accepted and removed) with a product
 * that is not empty. */
int cf_adi_id_parse(const uint8_t *in, size_t len, struct cf_adi_id *id);
