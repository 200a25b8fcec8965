/* canfleetd's configuration: strict JSON, checked key by key, with messages that name the key. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "canfleet/seedkey.h"

#define CF_CONF_DEFAULT_PATH "/etc/canfleet/canfleetd.conf"
#define CF_BUS_NAME_MAX      15
/* A configuration larger than this is a mistake (a log or an image given by accident), not a fleet:
 * 80 buses of 63 node objects each take about 400 KB. */
#define CF_CONF_MAX_SIZE (1024u * 1024u)
/* A keyring holds a few anchors (old and new key during a rotation), not a system CA bundle. */
#define CF_KEYRING_MAX_SIZE (1024u * 1024u)
/* ca_file may be a whole system CA bundle (Debian's is about 220 KB). */
#define CF_CA_FILE_MAX_SIZE (4u * 1024u * 1024u)

/*
 * {
 *   "fleet_key_file": "/etc/canfleet/fleet.key",   required: 64 hex characters
 *   "state_dir": "/var/lib/canfleet",               required
 *   "cache_dir": "/var/cache/canfleet",             required
 *   "keyring": "/etc/canfleet/keyring.pem",         PEM file of the trust anchors that sign bundles
 *                                                   (docs/design.md §6); required unless allow_unsigned
 *   "allow_unsigned": false,                        true: plain images (no signature) are flashed
 *                                                   too; for development
 *   "ca_file": "/etc/canfleet/download-ca.pem",     PEM trust anchors for HTTPS downloads instead of
 *                                                   the system store (optional)
 *   "max_parallel": 64,                             node sessions over all buses
 *   "reboot_timeout_ms": 60000,                     how long a node may take to come back
 *   "retries": 3,                                   tries per CCP command (time-outs)
 *   "reply_timeout_ms": 25,                         the shortest wait for an answer, per try: CCP's
 *                                                   25 ms by default; raise it for slow adapters or
 *                                                   a loaded gateway (longer CCP time-outs still apply)
 *   "node_lost_timeout_s": 30,                      how long a node that stops answering mid-session
 *                                                   is probed before it fails as offline (1..3600)
 *   "trial_timeout_s": 30,                          how long a dual-bank node may run its new bank on
 *                                                   trial before the job fails it (1..3600)
 *   "confirm_trial_ms": 0,                          N > 0: canfleetd confirms a dual-bank node's trial
 *                                                   itself (CCP CONFIRM) once the node has run the
 *                                                   job's image on trial for N ms without a reset;
 *                                                   0: only the node's application confirms
 *   "hawkbit": {                                    optional: remote rollouts from an Eclipse hawkBit
 *       "url": "https://hawkbit.example:8443",      required, http(s)://, without the tenant
 *       "tenant": "DEFAULT",                        required
 *       "gateway_token_file": "/etc/canfleet/hawkbit.token",   required: its first line is the
 *                                                   tenant's gateway security token
 *       "ca_file": "/etc/canfleet/hawkbit-ca.pem",  PEM trust anchors of the server (optional;
 *                                                   default: the top-level ca_file, else the system)
 *       "poll_max_s": 300,                          longest poll interval honoured (1..86400)
 *       "max_requests_per_s": 10,                   rate cap of every request to the server (1..1000)
 *       "controller_prefix": "canfleet-"            controllerId = prefix + 24 hex of the node's UID
 *   },
 *   "download_stall_timeout_s": 30,                 a URL update's download try fails when no byte
 *                                                   came for this long (1..3600; 5 tries in all)
 *   "history": 100,                                 finished jobs kept, with their files (1..100000)
 *   "start_timeout_s": 600,                         how long a job's node may wait for its bus (cannot
 *                                                   be opened, link down) before it fails (1..86400)
 *   "buses": [ {
 *       "name": "bus0",                             required, [A-Za-z0-9_-]{1,15}, unique
 *       "transport": "slcan:/dev/ttyACM0@115200",   required: "slcan:DEV[@BAUD]" or "socketcan:IF";
 *                                                   one bus per device (compared after resolving
 *                                                   symlinks) and per interface
 *       "bitrate": 500000,
 *       "nodes": [1, 2, {"station": 3, "cro_id": "0x700", "dto_id": 1856, "seedkey": "echo"}],
 *       "scan": [1, 63],                            stations are 1..63
 *       "cro_base": "0x680", "dto_base": "0x6C0",   numbers or "0x..." strings, 11-bit
 *       "max_parallel": 16,
 *       "seedkey": "hmac"                           or "echo"
 *   }, {
 *       "name": "lpc0",                             a serial bus (docs/design.md §8): one node,
 *       "transport": "serial:/dev/ttyUSB0@115200",  "serial:DEV[@BAUD]", station 1 ("lpc0:1")
 *       "protocol": "lpc-isp",                      required: "lpc-isp" or "adi-uart"
 *       "isp_entry": "manual",                      "manual" (default), "dtr-rts", or
 *                                                   {"gpiochip": "/dev/gpiochip0", "reset": 4, "boot": 5}
 *       "crystal_khz": 12000                        lpc-isp only: the chip's clock (default 12000)
 *   } ]
 * }
 * Unknown keys are refused (a misspelt key would otherwise be silently ignored). The text must be
 * RFC 8259 JSON exactly (json-strict.h: no comments, trailing commas, duplicate keys, leading
 * zeros...). On each bus, the nodes listed and the stations of the scan range (with the bus's
 * ids) must not share a CAN id: no CRO id twice, no DTO id twice, no CRO id that is a DTO id.
 */

enum cf_transport_kind {
        CF_TRANSPORT_SLCAN,
        CF_TRANSPORT_SOCKETCAN,
        CF_TRANSPORT_SERIAL, /* a UART with one ROM-loader node (docs/design.md §8) */
};

/* The node protocol of a bus: CCP on CAN; a ROM loader on a serial line. */
enum cf_node_protocol {
        CF_PROTOCOL_CCP,
        CF_PROTOCOL_LPC_ISP,  /* NXP LPC17xx ISP (UM10360 ch. 32) */
        CF_PROTOCOL_ADI_UART, /* ADI ADuCM36x serial download (AN-1160) */
};
/* "ccp", "lpc-isp", "adi-uart"; cf_node_protocol_from_str() -EINVAL for anything else. */
const char *cf_node_protocol_str(enum cf_node_protocol p);
int cf_node_protocol_from_str(const char *s);

/* How the gateway puts a serial node into its loader. */
enum cf_isp_entry {
        CF_ISP_ENTRY_MANUAL, /* someone (or the board) holds the boot pin and resets it */
        CF_ISP_ENTRY_DTR_RTS, /* DTR drives reset, RTS the boot pin (lpc21isp's -control wiring) */
        CF_ISP_ENTRY_GPIO,    /* two lines of a GPIO chip */
};

struct cf_node_conf {
        uint16_t station;
        uint32_t cro_id;
        uint32_t dto_id;
        bool seedkey_echo;
};

struct cf_bus_conf {
        char name[CF_BUS_NAME_MAX + 1];
        char *transport; /* as written, e.g. "slcan:/dev/ttyACM0" */
        enum cf_transport_kind kind;
        char *device;  /* the tty path or the interface name */
        uint32_t baud; /* slcan serial speed, default 115200 */
        uint32_t bitrate;
        struct cf_node_conf *nodes;
        size_t n_nodes;
        uint16_t scan_first, scan_last;
        uint32_t cro_base, dto_base;
        unsigned max_parallel;
        bool seedkey_echo;
        uint32_t group_id;         /* the CAN id of group frames (docs/design.md §7), default 0x680 */
        unsigned max_load_percent; /* share of the bus a group pass may take, 1..100 */
        /* serial buses (kind CF_TRANSPORT_SERIAL): one node, station 1 */
        enum cf_node_protocol protocol;
        enum cf_isp_entry isp_entry;
        char *gpiochip;             /* CF_ISP_ENTRY_GPIO: "/dev/gpiochip0" */
        unsigned gpio_reset, gpio_boot; /* line offsets on gpiochip (active low, as the pins) */
        uint32_t crystal_khz;       /* lpc-isp: the chip's clock, told in the handshake */
};

struct cf_hawkbit_conf {
        char *url;
        char *tenant;
        char *gateway_token_file;
        char *ca_file; /* NULL: the top-level ca_file (or the system store) */
        uint32_t poll_max_s;
        uint32_t max_requests_per_s; /* the per-server rate cap of every request, polls and feedback */
        char *controller_prefix;
};

struct cf_conf {
        char *path;
        char *fleet_key_file;
        char *state_dir;
        char *cache_dir;
        char *keyring; /* NULL when not given */
        bool allow_unsigned;
        char *ca_file; /* NULL: the system's CA store */
        unsigned max_parallel;
        uint32_t reboot_timeout_ms;
        unsigned retries;
        uint32_t reply_timeout_ms;
        uint32_t node_lost_timeout_s;
        uint32_t download_stall_timeout_s;
        unsigned history;         /* finished jobs kept (oldest pruned) */
        uint32_t start_timeout_s; /* a node that cannot start (bus down) fails after this */
        uint32_t trial_timeout_s; /* a dual-bank node's trial: confirmed within this, or failed */
        uint32_t confirm_trial_ms; /* canfleetd sends CONFIRM (0xCF10) after this long on trial; 0 never */
        struct cf_hawkbit_conf *hawkbit; /* NULL: no fleet server */
        struct cf_bus_conf *buses;
        size_t n_buses;
};

/* Parse text (the contents of path; path is only used in messages). On error returns a negative
 * errno and *error is a message "PATH: KEY: problem", e.g.
 *   /etc/x.conf: buses[1].transport: "foo" is not "slcan:DEV", "socketcan:IF" or "serial:DEV"
 *   /etc/x.conf: line 3, column 17: not valid JSON: trailing comma before '}'
 * (the caller frees it). error may be NULL. */
int cf_conf_parse(const char *text, const char *path, struct cf_conf **ret, char **error);
/* The same for len bytes that need not end in a NUL (any bytes are safe: the fuzzing entry point). */
int cf_conf_parse_len(const char *text, size_t len, const char *path, struct cf_conf **ret, char **error);
/* Read (cf_read_regular_file(), at most CF_CONF_MAX_SIZE) and parse path. */
int cf_conf_load(const char *path, struct cf_conf **ret, char **error);
struct cf_conf *cf_conf_free(struct cf_conf *c);

/* Read a file the configuration is or names (the configuration, fleet_key_file; later the keyring)
 * without ever blocking: anything but a regular file (a FIFO, directory, device, socket) is refused
 * before it is opened, and again after (opened O_NONBLOCK|O_NOCTTY, in case it was swapped), so that
 * a FIFO cannot stall the start and a device is never opened. Refuses more than max bytes. On
 * success *ret holds the bytes plus a NUL, *ret_len their number (ret_len may be NULL). On error a
 * negative errno and *error = "PATH: problem", e.g.
 *   /etc/canfleet/canfleetd.conf: is a FIFO (named pipe), not a regular file
 *   /etc/canfleet/canfleetd.conf: is too large (2097152 bytes, at most 1048576) */
int cf_read_regular_file(const char *path, size_t max, char **ret, size_t *ret_len, char **error);

/* Read fleet_key_file: 64 hex characters. Errors name the key:
 *   /etc/x.conf: fleet_key_file: /etc/canfleet/fleet.key: No such file or directory
 *   /etc/x.conf: fleet_key_file: /etc/canfleet/fleet.key: is a directory, not a regular file */
int cf_conf_read_fleet_key(const struct cf_conf *c, uint8_t key[CF_FLEET_KEY_LEN], char **error);

/* Read and load the keyring (cf_read_regular_file(), at most CF_KEYRING_MAX_SIZE; every certificate
 * an anchor). *ret is NULL and 0 is returned when no keyring is configured and allow_unsigned is set.
 * Errors name the key:
 *   /etc/x.conf: keyring: missing: a PEM file of the certificates that sign firmware bundles is ...
 *   /etc/x.conf: keyring: /etc/canfleet/keyring.pem: No such file or directory
 *   /etc/x.conf: keyring: keyring '/etc/canfleet/keyring.pem' holds no PEM certificate */
int cf_conf_load_keyring(const struct cf_conf *c, struct cf_keyring **ret, char **error);

/* When ca_file is set: a regular file (read as above, at most CF_CA_FILE_MAX_SIZE) with at least one
 * PEM certificate. Errors name the key: "/etc/x.conf: ca_file: /etc/ca.pem: No such file or directory". */
int cf_conf_check_ca_file(const struct cf_conf *c, char **error);

/* When a hawkbit block is set: its gateway_token_file is a regular file (cf_read_regular_file(), at
 * most 4 KB) whose first line is not empty, and its ca_file (when given) holds a PEM certificate.
 * Errors name the key: "/etc/x.conf: hawkbit.gateway_token_file: /etc/t: No such file or directory". */
int cf_conf_check_hawkbit(const struct cf_conf *c, char **error);

/* The node configuration of station sa on bus b: the configured entry, or the bus defaults. */
struct cf_node_conf cf_bus_node_conf(const struct cf_bus_conf *b, uint16_t sa);
