/* canfleetctl update --dry-run: the nodes an update would touch and every check canfleetctl can make
 * from canfleetd's node list and the image itself, without starting anything. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "fleet-select.h"

/* Ask canfleetd what StartUpdate would do with the file open on fd (image_path: the same file, for the
 * heading) and names (NULL: --all), and print it (text or JSON) with f's view of each node. Nothing is
 * started. Exit code: 0 the update would start, 5 canfleetd would refuse it (not trusted, invalid image,
 * hardware mismatch, anti-rollback, busy node, no node to update), or the call's own error's. (1, a node
 * predicted to fail, is not a verdict canfleetd's checks give: they refuse the whole update instead.) */
int cf_update_plan(sd_bus *bus, int fd, const char *image_path, const struct cf_fleet *f, char **names,
                   bool force, bool json);
