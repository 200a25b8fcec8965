/* CCP 2.1 codec: CRO encoders and DTO decoder for the master, CRO decoder and DTO encoders for the slave. */
#include <string.h>

#include "canfleet/ccp.h"
#include "canfleet/crc32.h"

int cf_ccp_err_class(uint8_t err)
{
        switch (err) {
        case CF_CCP_OK:
                return 0;
        case CF_CCP_ERR_BUSY:
        case CF_CCP_ERR_DAQ_BUSY:
        case CF_CCP_ERR_TIMEOUT:
        case CF_CCP_ERR_KEY_REQUEST:
        case CF_CCP_ERR_SESSION_REQUEST:
                return 1;
        case CF_CCP_ERR_COLD_START:
        case CF_CCP_ERR_CAL_INIT:
        case CF_CCP_ERR_DAQ_INIT:
        case CF_CCP_ERR_CODE_UPDATE:
                return 2;
        default:
                /* An error we do not know cannot be retried safely. */
                return 3;
        }
}

const char *cf_ccp_err_str(uint8_t err)
{
        switch (err) {
        case CF_CCP_OK:
                return "acknowledge, no error";
        case CF_CCP_ERR_BUSY:
                return "busy";
        case CF_CCP_ERR_DAQ_BUSY:
                return "DAQ processor overload";
        case CF_CCP_ERR_TIMEOUT:
                return "internal time-out";
        case CF_CCP_ERR_KEY_REQUEST:
                return "key request";
        case CF_CCP_ERR_SESSION_REQUEST:
                return "session status request";
        case CF_CCP_ERR_COLD_START:
                return "cold start requested";
        case CF_CCP_ERR_CAL_INIT:
                return "calibration data initialisation requested";
        case CF_CCP_ERR_DAQ_INIT:
                return "DAQ list initialisation requested";
        case CF_CCP_ERR_CODE_UPDATE:
                return "code update requested";
        case CF_CCP_ERR_UNKNOWN_CMD:
                return "unknown command";
        case CF_CCP_ERR_SYNTAX:
                return "command syntax";
        case CF_CCP_ERR_OUT_OF_RANGE:
                return "parameter out of range";
        case CF_CCP_ERR_ACCESS_DENIED:
                return "access denied";
        case CF_CCP_ERR_OVERLOAD:
                return "overload";
        case CF_CCP_ERR_ACCESS_LOCKED:
                return "access locked";
        case CF_CCP_ERR_NOT_AVAILABLE:
                return "resource/function not available";
        default:
                return "unknown error";
        }
}

const char *cf_ccp_cmd_name(uint8_t cmd)
{
        switch (cmd) {
        case CF_CCP_CONNECT:
                return "CONNECT";
        case CF_CCP_SET_MTA:
                return "SET_MTA";
        case CF_CCP_DNLOAD:
                return "DNLOAD";
        case CF_CCP_UPLOAD:
                return "UPLOAD";
        case CF_CCP_TEST:
                return "TEST";
        case CF_CCP_DISCONNECT:
                return "DISCONNECT";
        case CF_CCP_BUILD_CHKSUM:
                return "BUILD_CHKSUM";
        case CF_CCP_SHORT_UP:
                return "SHORT_UP";
        case CF_CCP_CLEAR_MEMORY:
                return "CLEAR_MEMORY";
        case CF_CCP_GET_SEED:
                return "GET_SEED";
        case CF_CCP_UNLOCK:
                return "UNLOCK";
        case CF_CCP_EXCHANGE_ID:
                return "EXCHANGE_ID";
        case CF_CCP_PROGRAM:
                return "PROGRAM";
        case CF_CCP_MOVE:
                return "MOVE";
        case CF_CCP_GET_CCP_VERSION:
                return "GET_CCP_VERSION";
        case CF_CCP_ACTION_SERVICE:
                return "ACTION_SERVICE";
        case CF_CCP_PROGRAM_6:
                return "PROGRAM_6";
        case CF_CCP_DNLOAD_6:
                return "DNLOAD_6";
        default:
                return NULL;
        }
}

uint32_t cf_ccp_timeout_ms(uint8_t cmd)
{
        switch (cmd) {
        case CF_CCP_PROGRAM:
        case CF_CCP_PROGRAM_6:
                return 100;
        case CF_CCP_CLEAR_MEMORY:
        case CF_CCP_BUILD_CHKSUM:
        case CF_CCP_MOVE:
                return 30000;
        default:
                return 25;
        }
}

/* Every encoder starts from an all-zero frame so unused bytes are 0x00 as ccp.h promises. */
static void cro_head(uint8_t out[8], uint8_t cmd, uint8_t ctr)
{
        memset(out, 0, CF_CCP_FRAME_LEN);
        out[0] = cmd;
        out[1] = ctr;
}

static uint8_t clamp(uint8_t n, uint8_t max)
{
        return n > max ? max : n;
}

void cf_ccp_cro_connect(uint8_t out[8], uint8_t ctr, uint16_t station)
{
        cro_head(out, CF_CCP_CONNECT, ctr);
        cf_le16_put(&out[2], station);
}

void cf_ccp_cro_get_ccp_version(uint8_t out[8], uint8_t ctr, uint8_t main, uint8_t release)
{
        cro_head(out, CF_CCP_GET_CCP_VERSION, ctr);
        out[2] = main;
        out[3] = release;
}

void cf_ccp_cro_exchange_id(uint8_t out[8], uint8_t ctr)
{
        cro_head(out, CF_CCP_EXCHANGE_ID, ctr);
}

void cf_ccp_cro_get_seed(uint8_t out[8], uint8_t ctr, uint8_t resource)
{
        cro_head(out, CF_CCP_GET_SEED, ctr);
        out[2] = resource;
}

void cf_ccp_cro_unlock(uint8_t out[8], uint8_t ctr, const uint8_t key[6])
{
        cro_head(out, CF_CCP_UNLOCK, ctr);
        memcpy(&out[2], key, 6);
}

void cf_ccp_cro_set_mta(uint8_t out[8], uint8_t ctr, uint8_t mta, uint8_t ext, uint32_t addr)
{
        cro_head(out, CF_CCP_SET_MTA, ctr);
        out[2] = mta;
        out[3] = ext;
        cf_be32_put(&out[4], addr);
}

void cf_ccp_cro_clear_memory(uint8_t out[8], uint8_t ctr, uint32_t size)
{
        cro_head(out, CF_CCP_CLEAR_MEMORY, ctr);
        cf_be32_put(&out[2], size);
}

void cf_ccp_cro_program(uint8_t out[8], uint8_t ctr, const uint8_t *data, uint8_t n)
{
        cro_head(out, CF_CCP_PROGRAM, ctr);
        n = clamp(n, CF_CCP_MAX_SIZE5);
        out[2] = n;
        if (n > 0)
                memcpy(&out[3], data, n);
}

void cf_ccp_cro_program6(uint8_t out[8], uint8_t ctr, const uint8_t data[6])
{
        cro_head(out, CF_CCP_PROGRAM_6, ctr);
        memcpy(&out[2], data, 6);
}

void cf_ccp_cro_dnload(uint8_t out[8], uint8_t ctr, const uint8_t *data, uint8_t n)
{
        cro_head(out, CF_CCP_DNLOAD, ctr);
        n = clamp(n, CF_CCP_MAX_SIZE5);
        out[2] = n;
        if (n > 0)
                memcpy(&out[3], data, n);
}

void cf_ccp_cro_dnload6(uint8_t out[8], uint8_t ctr, const uint8_t data[6])
{
        cro_head(out, CF_CCP_DNLOAD_6, ctr);
        memcpy(&out[2], data, 6);
}

void cf_ccp_cro_upload(uint8_t out[8], uint8_t ctr, uint8_t n)
{
        cro_head(out, CF_CCP_UPLOAD, ctr);
        out[2] = clamp(n, CF_CCP_MAX_SIZE5);
}

void cf_ccp_cro_short_up(uint8_t out[8], uint8_t ctr, uint8_t n, uint8_t ext, uint32_t addr)
{
        cro_head(out, CF_CCP_SHORT_UP, ctr);
        out[2] = clamp(n, CF_CCP_MAX_SIZE5);
        out[3] = ext;
        cf_be32_put(&out[4], addr);
}

void cf_ccp_cro_build_chksum(uint8_t out[8], uint8_t ctr, uint32_t size)
{
        cro_head(out, CF_CCP_BUILD_CHKSUM, ctr);
        cf_be32_put(&out[2], size);
}

void cf_ccp_cro_disconnect(uint8_t out[8], uint8_t ctr, uint8_t type, uint16_t station)
{
        cro_head(out, CF_CCP_DISCONNECT, ctr);
        out[2] = type;
        /* byte 3 is reserved by the spec; the station address follows it, Intel order */
        cf_le16_put(&out[4], station);
}

void cf_ccp_cro_test(uint8_t out[8], uint8_t ctr, uint16_t station)
{
        cro_head(out, CF_CCP_TEST, ctr);
        cf_le16_put(&out[2], station);
}

int cf_ccp_dto_parse(const uint8_t *frame, uint8_t dlc, struct cf_ccp_dto *out)
{
        if (dlc != CF_CCP_FRAME_LEN)
                return -1;
        if (frame[0] != CF_CCP_PID_CRM && frame[0] != CF_CCP_PID_EVENT)
                return -1;
        out->pid = frame[0];
        out->err = frame[1];
        out->ctr = frame[2];
        memcpy(out->data, &frame[3], sizeof(out->data));
        return 0;
}

int cf_ccp_cro_parse(const uint8_t *frame, uint8_t dlc, struct cf_ccp_cro *out)
{
        if (dlc != CF_CCP_FRAME_LEN)
                return -1;
        out->cmd = frame[0];
        out->ctr = frame[1];
        out->p = &frame[2];
        return 0;
}

void cf_ccp_dto_reply(uint8_t out[8], uint8_t err, uint8_t ctr, const uint8_t *data, uint8_t n)
{
        memset(out, 0, CF_CCP_FRAME_LEN);
        out[0] = CF_CCP_PID_CRM;
        out[1] = err;
        out[2] = ctr;
        n = clamp(n, 5);
        if (data && n > 0)
                memcpy(&out[3], data, n);
}

void cf_ccp_dto_reply_mta(uint8_t out[8], uint8_t err, uint8_t ctr, uint8_t ext, uint32_t addr)
{
        memset(out, 0, CF_CCP_FRAME_LEN);
        out[0] = CF_CCP_PID_CRM;
        out[1] = err;
        out[2] = ctr;
        out[3] = ext;
        cf_be32_put(&out[4], addr);
}

void cf_ccp_dto_event(uint8_t out[8], uint8_t err)
{
        memset(out, 0, CF_CCP_FRAME_LEN);
        out[0] = CF_CCP_PID_EVENT;
        out[1] = err;
}

/* ---- Group transfer ------------------------------------------------------------------------- */

static void service_head(uint8_t out[8], uint8_t ctr, uint16_t svc)
{
        cro_head(out, CF_CCP_ACTION_SERVICE, ctr);
        out[2] = (uint8_t) (svc >> 8);
        out[3] = (uint8_t) svc;
}

static void be16_put(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

void cf_ccp_cro_group_join(uint8_t out[8], uint8_t ctr, uint16_t group_id, uint16_t tag)
{
        service_head(out, ctr, CF_CCP_SVC_GROUP_JOIN);
        be16_put(&out[4], group_id);
        be16_put(&out[6], tag);
}

void cf_ccp_cro_group_leave(uint8_t out[8], uint8_t ctr)
{
        service_head(out, ctr, CF_CCP_SVC_GROUP_LEAVE);
}

void cf_ccp_cro_confirm(uint8_t out[8], uint8_t ctr)
{
        service_head(out, ctr, CF_CCP_SVC_CONFIRM);
}

void cf_ccp_cro_gap(uint8_t out[8], uint8_t ctr, uint16_t from)
{
        service_head(out, ctr, CF_CCP_SVC_GAP);
        be16_put(&out[4], from);
}

void cf_ccp_dto_reply_gap(uint8_t out[8], uint8_t ctr, uint16_t first, uint16_t run)
{
        uint8_t d[4];

        be16_put(&d[0], first);
        be16_put(&d[2], run);
        cf_ccp_dto_reply(out, CF_CCP_OK, ctr, d, sizeof(d));
}

int cf_ccp_group_frame(uint8_t out[8], const uint8_t *area, uint16_t slot)
{
        if (slot >= CF_GROUP_SLOTS)
                return -1;
        uint32_t off = (uint32_t) slot * CF_GROUP_SLOT_SIZE;
        uint32_t n =
            CF_GROUP_AREA_SIZE - off < CF_GROUP_SLOT_SIZE ? CF_GROUP_AREA_SIZE - off : CF_GROUP_SLOT_SIZE;
        int send = 0;

        /* Past the end of the area: 0xFF, what the node ignores anyway. */
        memset(out, 0xFF, CF_CCP_FRAME_LEN);
        be16_put(&out[0], slot);
        memcpy(&out[2], area + off, n);
        for (uint32_t i = 0; i < n; i++)
                if (area[off + i] != 0xFF)
                        send = 1;
        return send;
}

int cf_ccp_group_frame_parse(const uint8_t *frame, uint8_t dlc, uint16_t *slot, const uint8_t **data)
{
        if (dlc != CF_CCP_FRAME_LEN)
                return -1;
        *slot = (uint16_t) (frame[0] << 8 | frame[1]);
        *data = &frame[2];
        return 0;
}

uint32_t cf_block_crc(uint32_t off, const uint8_t *bytes, uint32_t len)
{
        return cf_crc32_le(cf_crc32_words(CF_CRC32_INIT, &off, 1), bytes, len);
}

void cf_ccp_cro_block_mode(uint8_t out[8], uint8_t ctr, uint16_t size)
{
        service_head(out, ctr, CF_CCP_SVC_BLOCK_MODE);
        be16_put(&out[4], size);
}

void cf_ccp_cro_block_check(uint8_t out[8], uint8_t ctr, uint32_t crc)
{
        service_head(out, ctr, CF_CCP_SVC_BLOCK_CHECK);
        cf_be32_put(&out[4], crc);
}

int cf_ccp_group_check_frame(uint8_t out[8], const uint8_t *area, uint16_t k)
{
        uint32_t len = cf_block_len(k), off = (uint32_t) k * CF_BLOCK_SIZE;
        int send = 0;

        if (len == 0)
                return -1;
        for (uint32_t i = 0; i < len && !send; i++)
                send = area[off + i] != 0xFF;
        be16_put(&out[0], CF_GROUP_CHECK_MARK);
        be16_put(&out[2], k);
        cf_be32_put(&out[4], cf_block_crc(off, area + off, len));
        return send;
}

int cf_ccp_group_check_parse(const uint8_t *frame, uint8_t dlc, uint16_t *k, uint32_t *crc)
{
        if (dlc != CF_CCP_FRAME_LEN || (uint16_t) (frame[0] << 8 | frame[1]) != CF_GROUP_CHECK_MARK)
                return -1;
        *k = (uint16_t) (frame[2] << 8 | frame[3]);
        *crc = cf_be32_get(&frame[4]);
        return 0;
}
