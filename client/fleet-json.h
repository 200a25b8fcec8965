/* The --json form of canfleetd's objects. The field names are an interface, documented in docs/json.md
 * and checked against docs/json-schema/canfleetctl.json: hw_id (never hardware_id), times in µs since
 * the epoch with an _us suffix, null for what is not known (never "" or 0 standing in for it). */
#pragma once

#include <json-c/json.h>

#include "bus-client.h"

/* Version of the JSON documents; every top-level object carries it as "schema". Bumped only when a
 * field changes meaning or goes away (new fields may appear at any time). */
#define CF_JSON_SCHEMA 1

/* A new top-level object: {"schema": 1}. NULL when out of memory. */
struct json_object *cf_json_document(void);

/* Node: {"node": "bus0:3", "path", "bus", "station", "state", "mode", "version", "release", "hw_id",
 *        "uid", "bootloader_version", "cro_id", "dto_id", "last_error", "last_seen_us"} */
struct json_object *cf_json_node(const struct cf_node_info *n);

/* Job: {"id", "path", "state", "image": {"version", "hw_id", "release", "sha256"},
 *       "created_us", "finished_us", "bytes_done", "bytes_total",
 *       "nodes": [{"node", "path", "step", "error", "bytes_done", "bytes_total"}]} */
struct json_object *cf_json_job(const struct cf_job_info *j);

/* Bus: {"name", "transport", "link", "bitrate"} */
struct json_object *cf_json_bus(const struct cf_bus_info *b);
/* The fleet server connection (status --json "fleet_server"); NULL (JSON null) without one. */
struct json_object *cf_json_fleet_server(const struct cf_fleet_server_info *f);

/* A string, or null for NULL and "". */
struct json_object *cf_json_string_or_null(const char *s);

/* Print a JSON value on stdout, followed by a newline; takes ownership. Negative errno. */
int cf_json_print(struct json_object *o);
