/* canfleetctl's offline bundle commands: `bundle create`, `bundle verify`, `bundle inspect`. */
#pragma once

/* argv[0] is "bundle", argv[1] the subcommand. Exit code: 0 done / bundle valid, 1 bad input or a
 * refused bundle (the check named on stderr), 2 usage error. */
int cmd_bundle(int argc, char **argv);
