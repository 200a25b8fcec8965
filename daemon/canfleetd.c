/* canfleetd: the canfleet gateway daemon — command line, configuration, wiring of the manager and the bus.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "bus-api.h"
#include "canfleet/sha256.h"
#include "canfleetd-config.h"
#include "cleanup.h"
#include "log.h"
#include "manager.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free)

static void help(void)
{
        printf("Usage: canfleetd [OPTIONS]\n"
               "Flash fleets of STM32 nodes over CAN; driven over D-Bus (io.canfleet.Gateway1).\n\n"
               "  -c, --config FILE   configuration (default " CF_CONF_DEFAULT_PATH ")\n"
               "      --check         check the configuration and exit\n"
               "  -h, --help          show this help\n"
               "      --version       show the version\n");
}

int main(int argc, char *argv[])
{
        enum { ARG_VERSION = 0x100, ARG_CHECK };
        static const struct option options[] = {
            {"config", required_argument, NULL, 'c'},
            {"check", no_argument, NULL, ARG_CHECK},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, ARG_VERSION},
            {NULL, 0, NULL, 0},
        };
        const char *config = CF_CONF_DEFAULT_PATH;
        bool check_only = false;
        int c;

        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case ARG_CHECK:
                        check_only = true;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("canfleetd %s\n", CANFLEET_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "canfleetd: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        log_setup();

        struct cf_conf *conf = NULL;
        _cleanup_(freep) char *error = NULL;
        int r = cf_conf_load(config, &conf, &error);
        if (r < 0) {
                log_error("%s", error ? error : "cannot load the configuration");
                return EXIT_FAILURE;
        }
        if (check_only) {
                /* Every file the configuration names is read as the daemon will read it at start: the
                 * fleet key, the keyring (what a signed update needs) and ca_file, so that a missing or
                 * malformed one shows here, not at the start or the first update. */
                uint8_t key[CF_FLEET_KEY_LEN];
                r = cf_conf_read_fleet_key(conf, key, &error);
                cf_memzero(key, sizeof key);
                if (r == -EACCES || r == -EPERM) {
                        /* The key is readable by root and the daemon's user only (tmpfiles): an
                         * operator running --check meets this, and must not take it for a bad key. */
                        char *e = NULL;
                        if (asprintf(&e, "%s (run --check as root or canfleetd)",
                                     error ? error : "fleet_key_file: Permission denied") >= 0) {
                                free(error);
                                error = e;
                        }
                }
                struct cf_keyring *k = NULL;
                if (r >= 0)
                        r = cf_conf_load_keyring(conf, &k, &error);
                cf_keyring_free(k);
                if (r >= 0)
                        r = cf_conf_check_ca_file(conf, &error);
                if (r >= 0)
                        r = cf_conf_check_hawkbit(conf, &error);
                cf_conf_free(conf);
                if (r < 0) {
                        log_error("%s", error ? error : "cannot read the fleet key, keyring or ca_file");
                        return EXIT_FAILURE;
                }
                return EXIT_SUCCESS;
        }

        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        r = sd_event_default(&event);
        if (r < 0) {
                log_error_errno(r, "Failed to allocate the event loop: %m");
                return EXIT_FAILURE;
        }
        _cleanup_(manager_freep) Manager *m = NULL;
        r = manager_new(event, conf, &m, &error);
        if (r < 0) {
                if (error)
                        log_error("%s", error);
                else
                        log_error_errno(r, "Failed to set up: %m");
                return EXIT_FAILURE;
        }
        m->notify = true;
        r = manager_start(m);
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_connect_bus(m);
        if (r < 0)
                return EXIT_FAILURE;

        log_info("canfleetd %s running: %zu bus(es), configuration %s", CANFLEET_VERSION, m->conf->n_buses,
                 config);
        sd_notifyf(false, "READY=1\nSTATUS=%s", m->status[0] ? m->status : "Idle");

        r = sd_event_loop(event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
