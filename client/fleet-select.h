/* Which nodes a command means: --node BUS:SA (or a glob, or an object path), --bus NAME, resolved
 * against the nodes canfleetd lists. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "bus-client.h"

/* canfleetd's manager and every node it lists, read once. */
struct cf_fleet {
        struct cf_manager_info m;
        struct cf_node_info *nodes; /* m.n_nodes of them, in canfleetd's order (bus, then station) */
};

/* Read the fleet; exit code (error reported). cf_fleet_done also after a failure. */
int cf_fleet_read(sd_bus *bus, struct cf_fleet *f);
void cf_fleet_done(struct cf_fleet *f);

/* Whether a node reference is a glob (has * ? or [). */
bool cf_is_glob(const char *ref);

/* Check the form of a node reference: BUS:SA, a glob of that, or an object path. Exit code: OK, or
 * CF_EXIT_USAGE with the error reported for command cmd. */
int cf_check_node_ref(const char *cmd, const char *ref);

/* Mark in selected[] (m.n_nodes entries, cleared first) the nodes that refs (fnmatch patterns on
 * "BUS:SA", exact names, object paths) or buses name. A bus that is not configured, a name that is
 * no node, or a glob that matches none is an error (reported; CF_EXIT_REFUSED). Returns the exit code
 * and the count through n_selected. */
int cf_fleet_select(const struct cf_fleet *f, char **refs, size_t n_refs, char **buses, size_t n_buses,
                    bool *selected, size_t *n_selected);
