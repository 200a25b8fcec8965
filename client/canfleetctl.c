/* canfleetctl: the operator's command line; global options, usage, and the table of commands. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd-bundle.h"
#include "cmd-fleet.h"
#include "cmd-image.h"
#include "fleet-error.h"

struct command {
        const char *name;
        /* argv[0] is the command name; returns the process exit code */
        int (*run)(int argc, char **argv);
        const char *summary;
};

/* One line per command; each lives in its own cmd-*.c. */
static const struct command commands[] = {
    {"status", cmd_status, "canfleetd's version, buses, node counts by state, running jobs"},
    {"nodes", cmd_nodes, "list the nodes (all, BUS:SA, globs, --bus): state, version, hw id"},
    {"node", cmd_node, "one node: what it runs, last seen, its update history"},
    {"scan", cmd_scan, "look for nodes on a bus"},
    {"update", cmd_update, "flash an image onto nodes and follow the job; --dry-run"},
    {"jobs", cmd_jobs, "list the update jobs"},
    {"watch", cmd_watch, "follow a job (or the running one) until it ends"},
    {"cancel", cmd_cancel, "stop a job; nodes not yet reset keep their old firmware"},
    {"image", cmd_image, "pack a binary into an area image, or inspect one (offline)"},
    {"bundle", cmd_bundle, "sign an image into a bundle (.cfb), verify or inspect one"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
        fprintf(f, "Usage: canfleetctl [OPTIONS] COMMAND [ARGS...]\n"
                   "\n"
                   "Update the firmware of a fleet of STM32 nodes over CAN through canfleetd,\n"
                   "and build or check the images it flashes.\n"
                   "\n"
                   "Commands:\n");
        for (size_t i = 0; i < N_COMMANDS; i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        fprintf(f, "  %-10s %s\n", "help", "show this help, or a command's: canfleetctl help image");
        fprintf(f, "\n"
                   "Options:\n"
                   "  -h --help      show this help\n"
                   "     --version   show the version of canfleetctl\n"
                   "\n"
                   "Examples:\n"
                   "  canfleetctl image pack app.bin --version 1.4.0 --hw-id 0x0407 --release 12 \\\n"
                   "          -o app.img\n"
                   "  canfleetctl image inspect app.img\n"
                   "  canfleetctl bundle create app.img --cert release.crt --key release.key \\\n"
                   "          -o app.cfb\n"
                   "  canfleetctl bundle verify app.cfb --keyring keyring.pem\n"
                   "  canfleetctl nodes 'bus0:*'\n"
                   "  canfleetctl update app.img --all --dry-run\n"
                   "  canfleetctl update app.img --all\n"
                   "\n"
                   "'canfleetctl COMMAND --help' describes a command.\n"
                   "\n"
                   "Exit status:\n"
                   "    0  success; for update/watch: every node runs the new image\n"
                   "    1  a node or the job failed, or an image or bundle is invalid\n"
                   "    2  usage error\n"
                   "    3  canfleetd cannot be reached (is it running? systemctl status canfleetd)\n"
                   "    4  the job was cancelled and a node still runs its old image\n"
                   "    5  refused: permission denied, invalid image, hardware mismatch, busy,\n"
                   "       no such node/bus/job\n"
                   "  130  update/watch interrupted (Ctrl-C); the job goes on in canfleetd\n"
                   "\n"
                   "With --json every command prints one JSON document with \"schema\": 1, errors\n"
                   "too ({\"schema\": 1, \"error\": {kind, message, exit_status}}): docs/json.md.\n");
}

static const struct command *find_command(const char *name)
{
        for (size_t i = 0; i < N_COMMANDS; i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

int main(int argc, char **argv)
{
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, ARG_VERSION},
            {NULL, 0, NULL, 0},
        };
        int c;

        opterr = 0;
        /* '+': stop at the command, whose options are its own */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        usage(stdout);
                        return 0;
                case ARG_VERSION:
                        printf("canfleetctl %s\n", CANFLEET_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "canfleetctl: unknown option '%s'; see 'canfleetctl --help'\n",
                                argv[optind - 1]);
                        return 2;
                }
        }

        if (optind >= argc) {
                fprintf(stderr, "canfleetctl: no command given; see 'canfleetctl --help'\n");
                return 2;
        }

        const char *name = argv[optind];
        if (strcmp(name, "help") == 0) {
                if (optind + 1 >= argc) {
                        usage(stdout);
                        return 0;
                }
                const struct command *cmd = find_command(argv[optind + 1]);
                if (!cmd) {
                        fprintf(stderr, "canfleetctl: unknown command '%s'; see 'canfleetctl --help'\n",
                                argv[optind + 1]);
                        return 2;
                }
                char *help_argv[] = {argv[optind + 1], (char *) "--help", NULL};
                optind = 0;
                return cmd->run(2, help_argv);
        }

        const struct command *cmd = find_command(name);
        if (!cmd) {
                fprintf(stderr, "canfleetctl: unknown command '%s'; see 'canfleetctl --help'\n", name);
                return 2;
        }
        int sub_argc = argc - optind;
        char **sub_argv = argv + optind;
        /* --json anywhere makes every error of the run a JSON object on stdout too (docs/json.md) */
        for (int i = 1; i < sub_argc && strcmp(sub_argv[i], "--") != 0; i++)
                if (strcmp(sub_argv[i], "--json") == 0)
                        cf_error_set_json(true);
        /* each command parses its own options with getopt again: 0 re-initialises GNU getopt */
        optind = 0;
        int rc = cmd->run(sub_argc, sub_argv);
        cf_error_flush(rc);
        return rc;
}
