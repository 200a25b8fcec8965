/* canfleetctl's fleet commands, which drive canfleetd over D-Bus: status, nodes, scan, update, jobs, watch,
 * cancel. */
#pragma once

/* Each takes the command's own argv (argv[0] is the command name) and returns canfleetctl's exit code
 * (bus-client.h: 0 ok, 1 failed, 2 usage, 3 canfleetd unreachable, 4 cancelled, 5 refused). */
int cmd_status(int argc, char **argv);
int cmd_nodes(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_node(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
