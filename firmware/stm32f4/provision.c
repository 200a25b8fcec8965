/* The factory provisioning record: decoding with a CRC check and falling back to defaults. */
#include <string.h>

#include "canfleet/crc32.h"
#include "provision.h"

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint16_t get16(const uint8_t *p)
{
        return (uint16_t) (p[0] | p[1] << 8);
}

static void set_defaults(struct cf_provision *p)
{
        memset(p, 0, sizeof(*p));
        p->cfg.station = CF_DEFAULT_STATION;
        p->cfg.cro_id = CF_DEFAULT_CRO_BASE + CF_DEFAULT_STATION;
        p->cfg.dto_id = CF_DEFAULT_DTO_BASE + CF_DEFAULT_STATION;
        p->cfg.hw_id = CF_DEFAULT_HW_ID;
        p->bitrate = CF_DEFAULT_BITRATE;
}

int cf_provision_parse(const uint8_t rec[CF_PROVISION_SIZE], struct cf_provision *p)
{
        set_defaults(p);
        if (get32(rec) != CF_PROVISION_MAGIC)
                return CF_PROVISION_MISSING;
        if (cf_crc32_le(CF_CRC32_INIT, rec, 60) != get32(rec + 60))
                return CF_PROVISION_BAD_CRC;

        uint16_t station = get16(rec + 6);
        uint32_t cro = get32(rec + 8), dto = get32(rec + 12);
        if (get16(rec + 4) != CF_PROVISION_LAYOUT || station == 0 || cro > 0x7FFu || dto > 0x7FFu ||
            cro == dto)
                return CF_PROVISION_BAD_FIELD;

        p->cfg.station = station;
        p->cfg.cro_id = cro;
        p->cfg.dto_id = dto;
        p->cfg.hw_id = get16(rec + 16);
        p->cfg.seedkey_echo = rec[18] & CF_PROVISION_FLAG_ECHO;
        uint32_t bitrate = get32(rec + 20);
        p->bitrate = bitrate ? bitrate : CF_DEFAULT_BITRATE;
        memcpy(p->cfg.node_secret, rec + 24, CF_NODE_SECRET_LEN);
        return CF_PROVISION_OK;
}

const char *cf_provision_status_str(int status)
{
        switch (status) {
        case CF_PROVISION_OK:
                return "ok";
        case CF_PROVISION_MISSING:
                return "no record";
        case CF_PROVISION_BAD_CRC:
                return "record CRC mismatch";
        case CF_PROVISION_BAD_FIELD:
                return "record has an invalid field";
        default:
                return "unknown";
        }
}
