/* The --json form of canfleetd's objects: the field names are an interface, documented in --help. */
#pragma once

#include <json-c/json.h>

#include "bus-client.h"

/* Node: {"node": "bus0:3", "path", "bus", "station", "state", "mode", "version", "release",
 *        "hardware_id", "uid", "bootloader_version", "cro_id", "dto_id", "last_error", "last_seen_us"} */
struct json_object *cf_json_node(const struct cf_node_info *n);

/* Job: {"id", "path", "state", "image": {"version", "hardware_id", "release", "sha256"},
 *       "created_us", "finished_us", "bytes_done", "bytes_total",
 *       "nodes": [{"node", "path", "step", "error", "bytes_done", "bytes_total"}]} */
struct json_object *cf_json_job(const struct cf_job_info *j);

/* Bus: {"name", "transport", "link", "bitrate"} */
struct json_object *cf_json_bus(const struct cf_bus_info *b);

/* Print a JSON value on stdout, followed by a newline; takes ownership. Negative errno. */
int cf_json_print(struct json_object *o);
