/* Firmware test fixture: a node over the host HAL, virtual clock, capturing CAN bus, small CCP master. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/crc32.h"
#include "canfleet/seedkey.h"
#include "canfleet/sha256.h"
#include "fw-fixture.h"

static uint64_t fx_clock(void *ctx)
{
        return ((struct fx *) ctx)->now_us;
}

static int fx_can_send(void *ctx, uint32_t id, const uint8_t *data, uint8_t dlc)
{
        struct fx *f = ctx;

        if (f->ntx >= FX_MAX_TX)
                return -EAGAIN;
        f->tx[f->ntx].id = id;
        f->tx[f->ntx].dlc = dlc;
        memcpy(f->tx[f->ntx].data, data, dlc > 8 ? 8 : dlc);
        f->ntx++;
        return 0;
}

void fx_init(struct fx *f)
{
        memset(f, 0, sizeof(*f));
        f->flash = malloc(CF_FLASH_SIZE);
        if (!f->flash)
                abort();
        memset(f->flash, CF_FLASH_ERASED, CF_FLASH_SIZE);
        f->now_us = 1000000;

        for (unsigned i = 0; i < 12; i++)
                f->hal.uid[i] = (uint8_t) (0xA0 + i);
        for (unsigned i = 0; i < sizeof(f->fleet_key); i++)
                f->fleet_key[i] = (uint8_t) (i * 7 + 1);
        f->hal.flash = f->flash;
        f->hal.now_us = fx_clock;
        f->hal.clock_ctx = f;
        f->hal.can_send = fx_can_send;
        f->hal.can_ctx = f;
        f->hal.rng_seed = 0x5EEDull;

        f->cfg.station = FX_STATION;
        f->cfg.cro_id = CF_CCP_CRO_BASE_DEFAULT + FX_STATION;
        f->cfg.dto_id = CF_CCP_DTO_BASE_DEFAULT + FX_STATION;
        f->cfg.hw_id = FX_HW_ID;
        cf_node_secret(f->fleet_key, f->hal.uid, f->cfg.node_secret);
}

static void factory_bootloaders(struct fx *f)
{
        for (unsigned bank = 1; bank <= 2; bank++) {
                uint8_t vt[8];
                cf_le32_put(vt, CF_SRAM_BASE + CF_SRAM_SIZE);
                cf_le32_put(vt + 4, cf_f7_bank_addr(bank) + 0x1C1u);
                cf_hal_host_poke(&f->hal, cf_f7_bank_addr(bank), vt, sizeof(vt));
        }
        f->option_bytes[0] = CF_F7_BOOT_ADD_BANK1;
        f->option_bytes[1] = 0x0040u;
}

void fx_init_dual(struct fx *f)
{
        fx_init(f);
        free(f->flash);
        f->flash = malloc(CF_F7_FLASH_SIZE);
        if (!f->flash)
                abort();
        memset(f->flash, CF_FLASH_ERASED, CF_F7_FLASH_SIZE);
        f->hal.flash = f->flash;
        f->hal.dual_bank = true;
        f->hal.option_bytes = f->option_bytes;
        f->cfg.dual_bank = true;
        factory_bootloaders(f);
}

void fx_wipe(struct fx *f)
{
        memset(f->flash, CF_FLASH_ERASED, cf_hal_host_flash_size(&f->hal));
        if (f->hal.dual_bank)
                factory_bootloaders(f);
}

void fx_fini(struct fx *f)
{
        free(f->flash);
        f->flash = NULL;
}

static uint32_t lcg(uint32_t *s)
{
        *s = *s * 1664525u + 1013904223u;
        return *s >> 8;
}

void fx_image(uint8_t *area, uint16_t hw_id, uint8_t major, uint8_t minor, uint16_t patch, uint32_t release,
              uint32_t payload_len, uint32_t seed)
{
        fx_image_at(area, CF_AREA_APP_ADDR, hw_id, major, minor, patch, release, payload_len, seed);
}

void fx_image_at(uint8_t *area, uint32_t app_addr, uint16_t hw_id, uint8_t major, uint8_t minor, uint16_t patch,
                 uint32_t release, uint32_t payload_len, uint32_t seed)
{
        struct cf_image_info info = {
            .magic = CF_IMAGE_MAGIC,
            .layout_version = CF_TRAILER_LAYOUT,
            .hw_id = hw_id,
            .ver_major = major,
            .ver_minor = minor,
            .ver_patch = patch,
            .release = release,
            .payload_len = payload_len,
            .area_size = CF_IMAGE_AREA_SIZE,
        };

        memset(area, CF_FLASH_ERASED, CF_IMAGE_AREA_SIZE);
        for (uint32_t i = 8; i < payload_len; i++)
                area[i] = (uint8_t) lcg(&seed);
        /* Erased runs inside the payload, as linkers leave them between sections: a master skips
         * them and the boot copy must get them right without programming them. */
        for (uint32_t i = 700; i + 300 < payload_len; i += 1500)
                memset(area + i, CF_FLASH_ERASED, 300);
        cf_le32_put(area, 0x20020000u);
        cf_le32_put(area + 4, app_addr + 0x199u);
        cf_sha256(area, payload_len, info.payload_sha256);
        cf_image_info_pack(&info, area + CF_TRAILER_OFFSET);
        cf_le32_put(area + CF_CRC_OFFSET, cf_crc32_le(CF_CRC32_INIT, area, CF_CRC_OFFSET));
}

void fx_poke_area(struct fx *f, uint32_t area_addr, const uint8_t *area)
{
        cf_hal_host_poke(&f->hal, area_addr, area, CF_IMAGE_AREA_SIZE);
}

void fx_power_on(struct fx *f)
{
        if (cf_hal_host_init(&f->hal) < 0)
                abort();
        /* The chip starts the bank BOOT_ADD0 names (bank 1 when it names neither). */
        if (f->hal.dual_bank)
                f->hal.running_bank = cf_hal_host_boot_bank(&f->hal);
        f->boot_count++;
        cf_node_power_on(&f->node, &f->hal, &f->cfg, f->boot_count);
}

void fx_poll(struct fx *f, uint64_t us)
{
        f->now_us += us;
        cf_node_poll(&f->node);
}

int fx_run(struct fx *f, bool *saw_recovery)
{
        for (unsigned i = 0; i < 1000000; i++) {
                if (f->hal.powered_off)
                        return -1;
                if (f->hal.reset_requested) {
                        fx_power_on(f);
                        continue;
                }
                /* A slave that accepted an image resets a few ms after its answer. */
                bool running = !f->node.slave.reset_pending;
                if (f->node.phase == CF_NODE_APP && running)
                        return CF_NODE_APP;
                if (f->node.phase == CF_NODE_RECOVERY && running) {
                        if (saw_recovery)
                                *saw_recovery = true;
                        return CF_NODE_RECOVERY;
                }
                fx_poll(f, 100);
        }
        return -2;
}

uint8_t fx_next_ctr(struct fx *f)
{
        return ++f->ctr;
}

const struct fx_frame *fx_cro_dlc(struct fx *f, const uint8_t *cro, uint8_t dlc, struct cf_ccp_dto *dto,
                                  unsigned max_polls)
{
        f->ntx = 0;
        cf_node_rx(&f->node, cro, dlc);
        for (unsigned i = 0; f->ntx == 0 && i < max_polls && !f->hal.powered_off; i++)
                fx_poll(f, 1000);
        if (f->ntx == 0)
                return NULL;
        if (dto && cf_ccp_dto_parse(f->tx[0].data, f->tx[0].dlc, dto) < 0)
                memset(dto, 0xEE, sizeof(*dto));
        return &f->tx[0];
}

const struct fx_frame *fx_cro(struct fx *f, const uint8_t cro[8], struct cf_ccp_dto *dto)
{
        return fx_cro_dlc(f, cro, 8, dto, 2000);
}

/* Send, expect an answer with err 0; -1 no answer, else the error code. */
static int call(struct fx *f, const uint8_t cro[8], struct cf_ccp_dto *dto)
{
        struct cf_ccp_dto d;

        if (!dto)
                dto = &d;
        if (!fx_cro(f, cro, dto))
                return -1;
        if (dto->pid != CF_CCP_PID_CRM || dto->ctr != cro[1])
                return 0x100;
        return dto->err;
}

int fx_connect_unlock(struct fx *f)
{
        uint8_t cro[8], key[CF_KEY_LEN], secret[CF_NODE_SECRET_LEN];
        struct cf_ccp_dto d;
        int r;

        cf_ccp_cro_connect(cro, fx_next_ctr(f), FX_STATION);
        if ((r = call(f, cro, &d)) != 0)
                return r;
        cf_ccp_cro_get_seed(cro, fx_next_ctr(f), CF_CCP_RES_PGM);
        if ((r = call(f, cro, &d)) != 0)
                return r;
        /* The gateway's side of seed & key: derived from the fleet key and the node's UID. */
        cf_node_secret(f->fleet_key, f->hal.uid, secret);
        cf_ccp_key(secret, &d.data[1], key);
        cf_ccp_cro_unlock(cro, fx_next_ctr(f), key);
        if ((r = call(f, cro, &d)) != 0)
                return r;
        return d.data[0] == CF_CCP_RES_PGM ? 0 : 0x101;
}

static int map_err(int r)
{
        return r == -1 ? -EIO : -EPROTO;
}

int fx_upgrade(struct fx *f, const uint8_t *image)
{
        uint8_t cro[8];
        struct cf_ccp_dto d;
        int r;

        if ((r = fx_connect_unlock(f)) != 0)
                return map_err(r);
        cf_ccp_cro_set_mta(cro, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, 0);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        cf_ccp_cro_clear_memory(cro, fx_next_ctr(f), CF_IMAGE_AREA_SIZE);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);

        /* Program only the runs that are not erased; runs closer than 16 bytes are merged. */
        uint32_t off = 0;
        while (off < CF_CRC_OFFSET + 4) {
                while (off < CF_IMAGE_AREA_SIZE && image[off] == CF_FLASH_ERASED)
                        off++;
                if (off >= CF_IMAGE_AREA_SIZE)
                        break;
                uint32_t end = off, gap = 0;
                while (end + gap < CF_IMAGE_AREA_SIZE && gap < 16) {
                        if (image[end + gap] != CF_FLASH_ERASED) {
                                end += gap + 1;
                                gap = 0;
                        } else {
                                gap++;
                        }
                }
                cf_ccp_cro_set_mta(cro, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, off);
                if ((r = call(f, cro, &d)) != 0)
                        return map_err(r);
                while (off < end) {
                        uint32_t n = end - off;
                        if (n >= 6) {
                                cf_ccp_cro_program6(cro, fx_next_ctr(f), image + off);
                                n = 6;
                        } else {
                                cf_ccp_cro_program(cro, fx_next_ctr(f), image + off, (uint8_t) n);
                        }
                        if ((r = call(f, cro, &d)) != 0)
                                return map_err(r);
                        off += n;
                        if (cf_ccp_dto_mta(&d) != off)
                                return -EPROTO;
                }
        }
        cf_ccp_cro_program(cro, fx_next_ctr(f), NULL, 0);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);

        cf_ccp_cro_set_mta(cro, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, 0);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        cf_ccp_cro_build_chksum(cro, fx_next_ctr(f), CF_CRC_OFFSET);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        if (d.data[0] != 4 || cf_ccp_dto_chksum(&d) != cf_le32_get(image + CF_CRC_OFFSET))
                return -EPROTO;

        cf_ccp_cro_disconnect(cro, fx_next_ctr(f), CF_CCP_DISCONNECT_END, FX_STATION);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        return 0;
}

int fx_confirm(struct fx *f)
{
        uint8_t cro[8];

        cf_ccp_cro_confirm(cro, fx_next_ctr(f));
        return call(f, cro, NULL);
}

bool fx_area_crc_ok(const struct fx *f, uint32_t area_addr)
{
        const uint8_t *a = f->flash + (area_addr - CF_FLASH_BASE);
        return cf_crc32_le(CF_CRC32_INIT, a, CF_CRC_OFFSET) == cf_le32_get(a + CF_CRC_OFFSET);
}

int fx_area_check(const struct fx *f, uint32_t area_addr, struct cf_image_info *info)
{
        /* a dual-bank area is checked for its own bank's link address */
        uint32_t app = f->hal.dual_bank ? cf_f7_app_addr(cf_f7_bank_of(area_addr)) : CF_AREA_APP_ADDR;
        return cf_image_check_at(f->flash + (area_addr - CF_FLASH_BASE), info, app);
}

void fx_group_frame(struct fx *f, const uint8_t *image, uint16_t slot)
{
        uint8_t g[8];

        (void) cf_ccp_group_frame(g, image, slot);
        cf_node_rx_group(&f->node, g, 8);
        fx_poll(f, 200);
}

void fx_group_check(struct fx *f, const uint8_t *image, uint16_t k)
{
        uint8_t g[8];

        (void) cf_ccp_group_check_frame(g, image, k);
        cf_node_rx_group(&f->node, g, 8);
        fx_poll(f, 200);
}

/* BLOCK_MODE after each unlock when f->checked. */
static int unlock_mode(struct fx *f)
{
        uint8_t cro[8];
        struct cf_ccp_dto d;
        int r = fx_connect_unlock(f);
        if (r != 0 || !f->checked)
                return r;
        cf_ccp_cro_block_mode(cro, fx_next_ctr(f), CF_BLOCK_SIZE);
        return call(f, cro, &d);
}

static int block_check(struct fx *f, const uint8_t *image, uint32_t k)
{
        uint8_t cro[8];
        struct cf_ccp_dto d;
        uint32_t off = k * CF_BLOCK_SIZE;
        cf_ccp_cro_block_check(cro, fx_next_ctr(f), cf_block_crc(off, image + off, cf_block_len(k)));
        int r = call(f, cro, &d);
        if (r == 0 && (uint32_t) (d.data[0] << 8 | d.data[1]) != k)
                return -EPROTO;
        return r;
}

/* The master's side of docs/design.md §7 for one node, as canfleetd does it: erase, join, one pass
 * (all-0xFF slots left out, every drop_every-th sent slot lost), then reconnect, GAP, PROGRAM_6
 * repair of the missing slots that are not all 0xFF, BUILD_CHKSUM, DISCONNECT(end). */
int fx_group_upgrade(struct fx *f, const uint8_t *image, uint32_t drop_every, uint32_t *repaired)
{
        uint8_t cro[8], g[8];
        struct cf_ccp_dto d;
        int r;
        uint32_t sent = 0, pending = UINT32_MAX;

        if (repaired)
                *repaired = 0;
        if ((r = unlock_mode(f)) != 0)
                return map_err(r);
        cf_ccp_cro_set_mta(cro, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, 0);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        cf_ccp_cro_clear_memory(cro, fx_next_ctr(f), CF_IMAGE_AREA_SIZE);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        cf_ccp_cro_group_join(cro, fx_next_ctr(f), CF_GROUP_ID_DEFAULT, 0x1234);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        cf_ccp_cro_disconnect(cro, fx_next_ctr(f), CF_CCP_DISCONNECT_TEMPORARY, FX_STATION);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);

        for (uint32_t slot = 0; slot <= CF_GROUP_SLOTS; slot++) {
                if (f->checked && pending != UINT32_MAX && (slot == CF_GROUP_SLOTS || slot / CF_BLOCK_SLOTS != pending)) {
                        (void) cf_ccp_group_check_frame(g, image, (uint16_t) pending);
                        pending = UINT32_MAX;
                        cf_node_rx_group(&f->node, g, 8);
                        fx_poll(f, 20);
                        if (f->hal.powered_off)
                                return -EIO;
                }
                if (slot == CF_GROUP_SLOTS || cf_ccp_group_frame(g, image, (uint16_t) slot) != 1)
                        continue;
                pending = slot / CF_BLOCK_SLOTS;
                if (drop_every && ++sent % drop_every == 0)
                        continue;
                if (f->corrupt_every && sent % f->corrupt_every == 0)
                        g[sent % 8] ^= (uint8_t) (1u << (sent / 8u % 8u)); /* slot number or data */
                cf_node_rx_group(&f->node, g, 8);
                fx_poll(f, 20);
                if (f->hal.powered_off)
                        return -EIO;
        }

        if ((r = unlock_mode(f)) != 0)
                return map_err(r);
        for (uint32_t from = 0; from < CF_GROUP_SLOTS;) {
                cf_ccp_cro_gap(cro, fx_next_ctr(f), (uint16_t) from);
                if ((r = call(f, cro, &d)) != 0)
                        return map_err(r);
                uint16_t first = cf_ccp_dto_gap_first(&d), run = cf_ccp_dto_gap_run(&d);
                if (first == CF_GROUP_SLOT_NONE)
                        break;
                if (first < from || run == 0)
                        return -EPROTO;
                pending = UINT32_MAX;
                for (uint32_t slot = first; slot <= (uint32_t) first + run; slot++) {
                        /* Block mode: a block is checked once its slots of this run are sent. */
                        if (f->checked && pending != UINT32_MAX &&
                            (slot == (uint32_t) first + run || slot / CF_BLOCK_SLOTS != pending)) {
                                if ((r = block_check(f, image, pending)) != 0)
                                        return map_err(r);
                                pending = UINT32_MAX;
                        }
                        if (slot == (uint32_t) first + run || cf_ccp_group_frame(g, image, (uint16_t) slot) != 1)
                                continue;
                        pending = slot / CF_BLOCK_SLOTS;
                        uint32_t off = slot * CF_GROUP_SLOT_SIZE;
                        cf_ccp_cro_set_mta(cro, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, off);
                        if ((r = call(f, cro, &d)) != 0)
                                return map_err(r);
                        if (off + 6 <= CF_IMAGE_AREA_SIZE)
                                cf_ccp_cro_program6(cro, fx_next_ctr(f), image + off);
                        else
                                cf_ccp_cro_program(cro, fx_next_ctr(f), image + off,
                                                   (uint8_t) (CF_IMAGE_AREA_SIZE - off));
                        if ((r = call(f, cro, &d)) != 0)
                                return map_err(r);
                        if (repaired)
                                (*repaired)++;
                }
                from = (uint32_t) first + run;
        }

        cf_ccp_cro_set_mta(cro, fx_next_ctr(f), 0, CF_CCP_EXT_STAGING, 0);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        cf_ccp_cro_build_chksum(cro, fx_next_ctr(f), CF_CRC_OFFSET);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        if (d.data[0] != 4 || cf_ccp_dto_chksum(&d) != cf_le32_get(image + CF_CRC_OFFSET))
                return -EPROTO;
        cf_ccp_cro_disconnect(cro, fx_next_ctr(f), CF_CCP_DISCONNECT_END, FX_STATION);
        if ((r = call(f, cro, &d)) != 0)
                return map_err(r);
        return 0;
}
