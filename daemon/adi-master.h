/* The gateway's side of the ADuCM36x serial download loader (AN-1160, docs/design.md §8): BS sync and
 * the ID packet, then 0x07 0x0E packets answered ACK or BEL, each retried on BEL and on silence. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "canfleet/adi-uart.h"
#include "serial-line.h"

typedef struct AdiLoader AdiLoader;

/* An operation ended: r = 0 (1: adi_loader_sync() met a loader synchronised before), or
 *   -ETIMEDOUT  no ID packet / no ACK or BEL after every try
 *   -EREMOTEIO  BEL after every try (adi_loader_error() says for what)
 *   -EPROTO     an ID packet that does not parse
 *   -EIO        the line failed */
typedef void (*adi_loader_done_fn)(AdiLoader *s, int r, void *userdata);

/* Per packet: the pages of one erase packet (its data byte), the bytes of one write packet (a multiple
 * of 4, so that every packet starts on a flash word). */
#define ADI_ERASE_PAGES_MAX 255u
#define ADI_WRITE_CHUNK     248u

int adi_loader_new(sd_event *e, SerialLine *line, unsigned retries, uint64_t timeout_us, AdiLoader **ret);
AdiLoader *adi_loader_free(AdiLoader *s);
void adi_loader_set_callback(AdiLoader *s, adi_loader_done_fn done, void *userdata);
const char *adi_loader_error(const AdiLoader *s);

/* BS, then the 24-byte ID packet into *id: done gets 0. With maybe_synced (an earlier session may have
 * left the loader synchronised, and a BS to it gets no second ID packet), the first unanswered BS is
 * followed by a packet that changes nothing (verify step 1); its ACK ends the sync with done's r = 1
 * and *id untouched (the loader's identity is the one it gave then). */
int adi_loader_sync(AdiLoader *s, struct cf_adi_id *id, bool maybe_synced);
/* E from the page of addr, pages pages (1..255): one packet. */
int adi_loader_erase(AdiLoader *s, uint32_t addr, unsigned pages);
/* W of n (1..250) bytes at addr: one packet. */
int adi_loader_write(AdiLoader *s, uint32_t addr, const uint8_t *data, size_t n);
/* V of the page at addr (its 512 bytes as they must be): the two packets of AN-1160 (the last word,
 * then the LFSR of the first 508 bytes). BEL here is a page that differs: -EREMOTEIO, not retried. */
int adi_loader_verify_page(AdiLoader *s, uint32_t addr, const uint8_t page[CF_ADI_PAGE_SIZE]);
/* R 1: the loader resets the chip. */
int adi_loader_reset(AdiLoader *s);

/* Bytes of the packets sent and their ACK/BEL, BELs and tries counted since adi_loader_new(). */
unsigned adi_loader_bels(const AdiLoader *s);
