/* Parsing the fleet commands' options: one table, one set of messages. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-client.h"
#include "fleet-error.h"
#include "fleet-opts.h"

enum { ARG_JSON = 0x100, ARG_NO_WAIT, ARG_FORCE, ARG_ALL, ARG_NODE, ARG_BUS, ARG_DRY_RUN, ARG_FULL };

void cf_opts_done(struct cf_opts *o)
{
        free(o->nodes);
        free(o->buses);
        o->nodes = o->buses = NULL;
}

static int strv_push(char ***v, size_t *n, char *s)
{
        char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
        if (!nv)
                return -1;
        nv[(*n)++] = s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

static int usage_error(const char *cmd, const char *what, const char *arg)
{
        if (arg)
                cf_error(CF_EXIT_USAGE, "usage", "%s: %s: '%s'", cmd, what, arg);
        else
                cf_error(CF_EXIT_USAGE, "usage", "%s: %s", cmd, what);
        cf_hint("try 'canfleetctl %s --help'", cmd);
        return CF_EXIT_USAGE;
}

int cf_parse_opts(int argc, char **argv, unsigned accepted, int min_args, int max_args, void (*help)(void),
                  struct cf_opts *o)
{
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"json", no_argument, NULL, ARG_JSON},
            {"no-wait", no_argument, NULL, ARG_NO_WAIT},
            {"force", no_argument, NULL, ARG_FORCE},
            {"all", no_argument, NULL, ARG_ALL},
            {"node", required_argument, NULL, ARG_NODE},
            {"bus", required_argument, NULL, ARG_BUS},
            {"dry-run", no_argument, NULL, ARG_DRY_RUN},
            {"full", no_argument, NULL, ARG_FULL},
            {0},
        };
        const char *cmd = argv[0];
        int c;

        *o = (struct cf_opts){0};
        /* a usage error found before --json is read must already come out as JSON */
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--json") == 0 && (accepted & CF_OPT_JSON))
                        cf_error_set_json(true);
        optind = 0; /* GNU: restart scanning, argv is the command's own */
        opterr = 0; /* our own messages name the command */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                unsigned need = 0;
                switch (c) {
                case 'h':
                        help();
                        return CF_EXIT_OK;
                case ARG_JSON:
                        need = CF_OPT_JSON;
                        o->json = true;
                        break;
                case ARG_NO_WAIT:
                        need = CF_OPT_NO_WAIT;
                        o->no_wait = true;
                        break;
                case ARG_FORCE:
                        need = CF_OPT_UPDATE;
                        o->force = true;
                        break;
                case ARG_ALL:
                        need = CF_OPT_UPDATE;
                        o->all = true;
                        break;
                case ARG_DRY_RUN:
                        need = CF_OPT_UPDATE;
                        o->dry_run = true;
                        break;
                case ARG_FULL:
                        need = CF_OPT_FULL;
                        o->full = true;
                        break;
                case ARG_NODE:
                        need = CF_OPT_SELECT;
                        if (strv_push(&o->nodes, &o->n_nodes, optarg) < 0)
                                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                        break;
                case ARG_BUS:
                        need = CF_OPT_SELECT;
                        if (strv_push(&o->buses, &o->n_buses, optarg) < 0)
                                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                        break;
                default:
                        if (optopt && optopt < ARG_JSON) {
                                char opt[3] = {'-', (char) optopt, '\0'};
                                return usage_error(cmd, "unknown option", opt);
                        }
                        return usage_error(cmd, "unknown option or missing value", argv[optind - 1]);
                }
                if (!(accepted & need))
                        return usage_error(cmd, "option does not apply here", argv[optind - 1]);
        }
        o->args = argv + optind;
        o->n_args = argc - optind;
        if (o->n_args < min_args || o->n_args > max_args)
                return usage_error(cmd, o->n_args < min_args ? "missing argument" : "too many arguments",
                                   NULL);
        return -1;
}
