/* LPC17xx ISP codecs: UU lines, the checksums, the return codes and the flash geometry of UM10360. */
#include <errno.h>

#include "canfleet/lpc-isp.h"

static char uu_char(unsigned v)
{
        v &= 0x3Fu;
        return v ? (char) (v + 0x20) : '`';
}

size_t cf_uu_encode_line(const uint8_t *data, size_t n, char *out)
{
        if (n == 0 || n > CF_UU_LINE_BYTES)
                return 0;
        size_t o = 0;
        out[o++] = uu_char((unsigned) n);
        for (size_t i = 0; i < n; i += 3) {
                unsigned b0 = data[i];
                unsigned b1 = i + 1 < n ? data[i + 1] : 0;
                unsigned b2 = i + 2 < n ? data[i + 2] : 0;
                out[o++] = uu_char(b0 >> 2);
                out[o++] = uu_char(b0 << 4 | b1 >> 4);
                out[o++] = uu_char(b1 << 2 | b2 >> 6);
                out[o++] = uu_char(b2);
        }
        return o;
}

static int uu_value(char c)
{
        if (c < ' ' || c > '`')
                return -1;
        return (c - ' ') & 0x3F;
}

int cf_uu_decode_line(const char *line, size_t len, uint8_t *out, size_t out_max)
{
        if (len == 0)
                return -EINVAL;
        int n = uu_value(line[0]);
        if (n < 0 || n > (int) CF_UU_LINE_BYTES)
                return -EINVAL;
        size_t groups = ((size_t) n + 2) / 3;
        if (len != 1 + 4 * groups)
                return -EINVAL;
        for (size_t i = 1; i < len; i++)
                if (uu_value(line[i]) < 0)
                        return -EINVAL;
        if ((size_t) n > out_max)
                return -ENOBUFS;
        size_t o = 0;
        for (size_t g = 0; g < groups; g++) {
                const char *q = line + 1 + 4 * g;
                unsigned v = (unsigned) uu_value(q[0]) << 18 | (unsigned) uu_value(q[1]) << 12 |
                             (unsigned) uu_value(q[2]) << 6 | (unsigned) uu_value(q[3]);
                for (int k = 2; k >= 0 && o < (size_t) n; k--)
                        out[o++] = (uint8_t) (v >> (8 * k));
        }
        return n;
}

uint32_t cf_isp_checksum(const uint8_t *data, size_t n)
{
        uint32_t sum = 0;
        for (size_t i = 0; i < n; i++)
                sum += data[i];
        return sum;
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint32_t vector_sum(const uint8_t *image)
{
        uint32_t sum = 0;
        for (int w = 0; w < 7; w++)
                sum += le32(image + 4 * w);
        return sum;
}

void cf_lpc_vector_checksum_fix(uint8_t *image, size_t len)
{
        if (len < 32)
                return;
        uint32_t v = 0u - vector_sum(image);
        for (int i = 0; i < 4; i++)
                image[0x1C + i] = (uint8_t) (v >> (8 * i));
}

bool cf_lpc_vector_checksum_ok(const uint8_t *image, size_t len)
{
        return len >= 32 && vector_sum(image) + le32(image + 0x1C) == 0;
}

static const struct {
        const char *name, *text;
} isp_codes[CF_ISP_RC_MAX + 1] = {
    [CF_ISP_CMD_SUCCESS] = {"CMD_SUCCESS", "command succeeded"},
    [CF_ISP_INVALID_COMMAND] = {"INVALID_COMMAND", "invalid command"},
    [CF_ISP_SRC_ADDR_ERROR] = {"SRC_ADDR_ERROR", "source address is not on a word boundary"},
    [CF_ISP_DST_ADDR_ERROR] = {"DST_ADDR_ERROR", "destination address is not on a correct boundary"},
    [CF_ISP_SRC_ADDR_NOT_MAPPED] = {"SRC_ADDR_NOT_MAPPED",
                                    "source address is not mapped in the memory map (or the count reaches "
                                    "past it)"},
    [CF_ISP_DST_ADDR_NOT_MAPPED] = {"DST_ADDR_NOT_MAPPED",
                                    "destination address is not mapped in the memory map (or the count "
                                    "reaches past it)"},
    [CF_ISP_COUNT_ERROR] = {"COUNT_ERROR", "byte count is not a multiple of 4 or not a permitted value"},
    [CF_ISP_INVALID_SECTOR] = {"INVALID_SECTOR",
                               "sector number is invalid, or the end sector is below the start sector"},
    [CF_ISP_SECTOR_NOT_BLANK] = {"SECTOR_NOT_BLANK", "sector is not blank"},
    [CF_ISP_SECTOR_NOT_PREPARED_FOR_WRITE_OPERATION] = {"SECTOR_NOT_PREPARED_FOR_WRITE_OPERATION",
                                                        "sector not prepared for write operation (P must "
                                                        "precede E and C)"},
    [CF_ISP_COMPARE_ERROR] = {"COMPARE_ERROR", "source and destination data are not equal"},
    [CF_ISP_BUSY] = {"BUSY", "flash programming interface is busy"},
    [CF_ISP_PARAM_ERROR] = {"PARAM_ERROR", "insufficient number of parameters or invalid parameter"},
    [CF_ISP_ADDR_ERROR] = {"ADDR_ERROR", "address is not on a word boundary"},
    [CF_ISP_ADDR_NOT_MAPPED] = {"ADDR_NOT_MAPPED",
                                "address is not mapped in the memory map (or the count reaches past it)"},
    [CF_ISP_CMD_LOCKED] = {"CMD_LOCKED", "command is locked (unlock with U 23130 first)"},
    [CF_ISP_INVALID_CODE] = {"INVALID_CODE", "unlock code is invalid"},
    [CF_ISP_INVALID_BAUD_RATE] = {"INVALID_BAUD_RATE", "invalid baud rate setting"},
    [CF_ISP_INVALID_STOP_BIT] = {"INVALID_STOP_BIT", "invalid stop bit setting"},
    [CF_ISP_CODE_READ_PROTECTION_ENABLED] = {"CODE_READ_PROTECTION_ENABLED",
                                             "code read protection is enabled"},
};

const char *cf_isp_rc_name(int code)
{
        return code >= 0 && code <= CF_ISP_RC_MAX ? isp_codes[code].name : NULL;
}

const char *cf_isp_strerror(int code)
{
        return code >= 0 && code <= CF_ISP_RC_MAX ? isp_codes[code].text : "unknown ISP return code";
}

int cf_lpc_sector_of(uint32_t addr)
{
        if (addr < 0x10000u)
                return (int) (addr >> 12);
        if (addr < CF_LPC_FLASH_MAX)
                return 16 + (int) ((addr - 0x10000u) >> 15);
        return -1;
}

uint32_t cf_lpc_sector_start(int s)
{
        if (s < 0 || s >= CF_LPC_SECTORS)
                return 0;
        return s < 16 ? (uint32_t) s << 12 : 0x10000u + ((uint32_t) (s - 16) << 15);
}

uint32_t cf_lpc_sector_size(int s)
{
        if (s < 0 || s >= CF_LPC_SECTORS)
                return 0;
        return s < 16 ? 0x1000u : 0x8000u;
}

int cf_lpc_sector_count(uint32_t flash_size)
{
        if (flash_size == 0)
                return 0;
        if (flash_size > CF_LPC_FLASH_MAX)
                flash_size = CF_LPC_FLASH_MAX;
        return cf_lpc_sector_of(flash_size - 1) + 1;
}

const uint32_t cf_lpc_copy_sizes[4] = {256, 512, 1024, 4096};

bool cf_lpc_copy_size_ok(uint32_t n)
{
        for (size_t i = 0; i < sizeof(cf_lpc_copy_sizes) / sizeof(cf_lpc_copy_sizes[0]); i++)
                if (cf_lpc_copy_sizes[i] == n)
                        return true;
        return false;
}

#define KB 1024u
static const struct cf_lpc_part parts[] = {
    {0x26113F37u, "LPC1769", 512 * KB, 32 * KB, 32 * KB},
    {0x26013F37u, "LPC1768", 512 * KB, 32 * KB, 32 * KB},
    {0x26012837u, "LPC1767", 512 * KB, 32 * KB, 32 * KB},
    {0x26013F33u, "LPC1766", 256 * KB, 32 * KB, 32 * KB},
    {0x26013733u, "LPC1765", 256 * KB, 32 * KB, 32 * KB},
    {0x26011922u, "LPC1764", 128 * KB, 16 * KB, 16 * KB},
    {0x26012033u, "LPC1763", 256 * KB, 32 * KB, 32 * KB},
    {0x25113737u, "LPC1759", 512 * KB, 32 * KB, 32 * KB},
    {0x25013F37u, "LPC1758", 512 * KB, 32 * KB, 32 * KB},
    {0x25011723u, "LPC1756", 256 * KB, 16 * KB, 16 * KB},
    {0x25011722u, "LPC1754", 128 * KB, 16 * KB, 16 * KB},
    {0x25001121u, "LPC1752", 64 * KB, 16 * KB, 0},
    {0x25001118u, "LPC1751", 32 * KB, 8 * KB, 0},
    {0x25001110u, "LPC1751", 32 * KB, 8 * KB, 0}, /* the LPC1751 without code read protection */
};

const struct cf_lpc_part *cf_lpc_part_by_id(uint32_t id)
{
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
                if (parts[i].id == id)
                        return &parts[i];
        return NULL;
}

static char lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

const struct cf_lpc_part *cf_lpc_part_by_name(const char *name)
{
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
                const char *a = parts[i].name, *b = name;
                while (*a && lower(*a) == lower(*b))
                        a++, b++;
                if (!*a && !*b)
                        return &parts[i];
        }
        return NULL;
}

const struct cf_lpc_part *cf_lpc_parts(size_t *n)
{
        *n = sizeof(parts) / sizeof(parts[0]);
        return parts;
}
