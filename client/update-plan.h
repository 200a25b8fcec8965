/* canfleetctl update --dry-run: the nodes an update would touch and every check canfleetctl can make
 * from canfleetd's node list and the image itself, without starting anything. */
#pragma once

#include <stdbool.h>

#include "fleet-select.h"

/* Print the plan (text or JSON) for image_path onto the fleet: selected (NULL: --all) marks the named
 * nodes. Exit code: 0 the update would start and no check predicts a failure, 1 some node is predicted
 * to fail (anti-rollback), 5 canfleetd would refuse it (invalid image, hardware mismatch, busy node,
 * no node to update). */
int cf_update_plan(const char *image_path, const struct cf_fleet *f, const bool *selected, bool force,
                   bool json);
