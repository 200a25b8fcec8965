/* canfleet-nodesim --show: the state of every node flash file in a state directory, offline. */
#pragma once

#include <stdbool.h>

/* Print one line (or, with json, one JSON document) per node file DIR/<bus>-<sa>.flash:
 *   ttyCF0-1: uid 0011..  boots 3  B valid 1.0.0 release 1 hw 0x0001  C erased
 * JSON: {"nodes":[{"name":"ttyCF0-1","bus":"ttyCF0","station":1,"uid":"..","boot_count":3,
 *   "B":{"state":"valid","version":"1.0.0","release":1,"hw_id":1},"C":{"state":"erased"}}]}
 * Area states: "valid", "erased" (all 0xFF), "invalid" (with "reason"); version, release and hw_id
 * are given whenever the trailer carries our magic. Returns 0, or negative errno (message printed). */
int sim_show(const char *dir, bool json);
