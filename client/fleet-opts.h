/* The options of canfleetctl's fleet commands, parsed in one place so that they mean the same everywhere,
 * and the help text they share. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct cf_opts {
        bool json;
        bool no_wait;
        bool force;
        bool all;
        bool dry_run;
        bool full;
        char **nodes; /* --node values, NULL-terminated (into argv) */
        size_t n_nodes;
        char **buses; /* --bus values, NULL-terminated (into argv) */
        size_t n_buses;
        char **args; /* positional arguments (into argv) */
        int n_args;
};

/* Which options a command accepts. */
#define CF_OPT_JSON    (1u << 0)
#define CF_OPT_NO_WAIT (1u << 1)
#define CF_OPT_UPDATE  (1u << 2) /* --all --force --dry-run */
#define CF_OPT_SELECT  (1u << 3) /* --node --bus */
#define CF_OPT_FULL    (1u << 4)

/* Parse a command's own argv (argv[0] its name). Returns -1 to go on, or the exit code to leave with
 * (help printed: 0; usage error, reported: 2). --json anywhere on the line makes errors JSON too. */
int cf_parse_opts(int argc, char **argv, unsigned accepted, int min_args, int max_args, void (*help)(void),
                  struct cf_opts *o);
void cf_opts_done(struct cf_opts *o);

#define CF_EXIT_CODES_HELP                                                                                  \
        "Exit status: 0 success (every node updated), 1 a node or the job failed,\n"                        \
        "2 usage error, 3 canfleetd cannot be reached, 4 the job was cancelled and\n"                       \
        "some node still runs its old image (a cancelled job whose every node runs the\n"                  \
        "new image is 0),\n"                                                                                \
        "5 refused (invalid image, hardware mismatch, permission denied, busy, no such\n"                   \
        "node/bus/job), 130 interrupted by Ctrl-C (the job goes on in canfleetd).\n"

#define CF_SELECT_HELP                                                                                      \
        "  --node BUS:SA    this node (repeatable); a glob selects every known node it\n"                   \
        "                   matches: --node 'bus0:*', --node 'bus[01]:1?'\n"                                \
        "  --bus NAME       every known node of bus NAME (repeatable)\n"

#define CF_JSON_HELP "  --json           print JSON, errors too (docs/json.md): {\"schema\": 1, ...}\n"
