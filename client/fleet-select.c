/* Resolving node selectors (names, globs, object paths, buses) against canfleetd's node list. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "fleet-error.h"
#include "fleet-select.h"

int cf_fleet_read(sd_bus *bus, struct cf_fleet *f)
{
        int r;

        *f = (struct cf_fleet){0};
        r = cf_manager_get(bus, &f->m);
        if (r != CF_EXIT_OK)
                return r;
        return cf_nodes_get(bus, f->m.nodes, f->m.n_nodes, &f->nodes);
}

void cf_fleet_done(struct cf_fleet *f)
{
        cf_nodes_free(f->nodes, f->m.n_nodes);
        cf_manager_info_done(&f->m);
        *f = (struct cf_fleet){0};
}

bool cf_is_glob(const char *ref)
{
        return strpbrk(ref, "*?[") != NULL;
}

int cf_check_node_ref(const char *cmd, const char *ref)
{
        const char *colon = strchr(ref, ':');

        if (ref[0] == '/' || cf_is_glob(ref))
                return CF_EXIT_OK;
        /* the form only: whether the name is spelled canfleetd's one way ("bus0:03" is not) and exists is
         * canfleetd's to say, after it checked the caller's privilege */
        if (!colon || colon == ref || !colon[1] || colon[1 + strspn(colon + 1, "0123456789")]) {
                cf_error(CF_EXIT_USAGE, "usage",
                         "%s: '%s' is not a node: expected BUS:SA, e.g. bus0:3, or a glob", cmd, ref);
                return CF_EXIT_USAGE;
        }
        return CF_EXIT_OK;
}

static bool ref_matches(const char *ref, const struct cf_node_info *n)
{
        char name[64];

        if (ref[0] == '/')
                return n->path && strcmp(ref, n->path) == 0;
        cf_node_name(n, name, sizeof(name));
        return cf_is_glob(ref) ? fnmatch(ref, name, 0) == 0 : strcmp(ref, name) == 0;
}

int cf_fleet_select(const struct cf_fleet *f, char **refs, size_t n_refs, char **buses, size_t n_buses,
                    bool *selected, size_t *n_selected)
{
        size_t n = f->m.n_nodes;

        memset(selected, 0, n * sizeof(*selected));
        *n_selected = 0;
        for (size_t b = 0; b < n_buses; b++) {
                bool known = false;
                for (size_t i = 0; i < f->m.n_buses && !known; i++)
                        known = strcmp(f->m.buses[i].name, buses[b]) == 0;
                if (!known)
                        return cf_error(CF_EXIT_REFUSED, "no-such-bus",
                                        "no bus %s (canfleetctl status lists them)", buses[b]);
                for (size_t i = 0; i < n; i++)
                        if (f->nodes[i].bus && strcmp(f->nodes[i].bus, buses[b]) == 0)
                                selected[i] = true;
        }
        for (size_t k = 0; k < n_refs; k++) {
                bool any = false;
                for (size_t i = 0; i < n; i++)
                        if (ref_matches(refs[k], &f->nodes[i]))
                                selected[i] = any = true;
                if (!any && cf_is_glob(refs[k]))
                        return cf_error(CF_EXIT_REFUSED, "no-such-node", "no node matches '%s'", refs[k]);
                if (!any)
                        return cf_error(CF_EXIT_REFUSED, "no-such-node", "no node %s", refs[k]);
        }
        for (size_t i = 0; i < n; i++)
                *n_selected += selected[i];
        return CF_EXIT_OK;
}
