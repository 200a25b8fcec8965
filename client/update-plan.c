/* update --dry-run: canfleetd's own pre-checks asked of canfleetd (PlanUpdate: the very checks of StartUpdate
 * on its own copy of the file, with its keyring), printed with the client's view of each node. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <canfleet/image.h>
#include <canfleet/layout.h>

#include "bus-client.h"
#include "file-io.h"
#include "fleet-error.h"
#include "fleet-json.h"
#include "fleet-table.h"
#include "bundle.h"
#include "update-plan.h"

/* canfleetd takes exactly one flash area; any other size is refused before the trailer is read */
#define NOT_AN_AREA 1

static const char *status_text(int status)
{
        return status == NOT_AN_AREA ? "not a packed 256 KB area image" : cf_image_status_str(status);
}

/* PlanUpdate's verdicts (daemon/io.canfleet.Gateway1.xml), in the order the summary counts them. */
enum verdict { V_UPDATE, V_CURRENT, V_SKIP, V_BUSY, V_REFUSE, N_VERDICTS };
static const char *const verdict_words[N_VERDICTS] = {"update", "up-to-date", "skip", "busy", "refuse"};

struct plan_node {
        const char *node, *reason; /* inside the reply */
        enum verdict v;
};

static enum verdict verdict_of(const char *word)
{
        for (int v = 0; v < N_VERDICTS; v++)
                if (strcmp(word, verdict_words[v]) == 0)
                        return (enum verdict) v;
        return V_REFUSE; /* a word this canfleetctl does not know yet: not "would go ahead" */
}

static const struct cf_node_info *find_node(const struct cf_fleet *f, const char *name)
{
        for (size_t i = 0; i < f->m.n_nodes; i++) {
                char n[64];
                cf_node_name(&f->nodes[i], n, sizeof(n));
                if (strcmp(n, name) == 0)
                        return &f->nodes[i];
        }
        return NULL;
}

/* PlanUpdate: canfleetd's own checks on its own copy of the file (fd), with its keyring. */
static int call_plan(sd_bus *bus, int fd, char **names, bool force, sd_bus_message **ret_reply)
{
        _cf_cleanup_bus_message_ sd_bus_message *call = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *no_nodes[] = {NULL};
        int r = sd_bus_message_new_method_call(bus, &call, CF_BUS_NAME, CF_MANAGER_PATH, CF_MANAGER_IFACE,
                                               "PlanUpdate");
        if (r >= 0)
                r = sd_bus_message_append(call, "h", fd);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, names ? names : no_nodes);
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "{sv}");
        if (r >= 0 && !names)
                r = sd_bus_message_append(call, "{sv}", "all", "b", 1);
        if (r >= 0 && force)
                r = sd_bus_message_append(call, "{sv}", "force", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r < 0)
                return cf_error(CF_EXIT_FAILED, "failed", "building PlanUpdate: %s", strerror(-r));
        r = sd_bus_call(bus, call, 0, &error, ret_reply);
        if (r < 0) {
                r = cf_bus_report_error("dry run", &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        return CF_EXIT_OK;
}

/* raw_status: a serial target's raw image (status CF_IMAGE_OK, img from its manifest), else NULL */
static struct json_object *image_json(const char *path, const struct cf_image_info *img, int status,
                                      const char *raw_status)
{
        struct json_object *o = json_object_new_object();
        char version[24], sha[65];

        if (!o)
                return NULL;
        json_object_object_add(o, "file", json_object_new_string(path));
        json_object_object_add(o, "valid", json_object_new_boolean(status == CF_IMAGE_OK));
        json_object_object_add(o, "status", json_object_new_string(raw_status ? raw_status : status_text(status)));
        if (status != CF_IMAGE_OK) {
                json_object_object_add(o, "version", NULL);
                json_object_object_add(o, "hw_id", NULL);
                json_object_object_add(o, "release", NULL);
                json_object_object_add(o, "payload_sha256", NULL);
                return o;
        }
        snprintf(version, sizeof(version), "%u.%u.%u", img->ver_major, img->ver_minor, img->ver_patch);
        for (size_t i = 0; i < 32; i++)
                snprintf(sha + 2 * i, 3, "%02x", img->payload_sha256[i]);
        json_object_object_add(o, "version", json_object_new_string(version));
        json_object_object_add(o, "hw_id", json_object_new_int(img->hw_id));
        json_object_object_add(o, "release", json_object_new_int64(img->release));
        json_object_object_add(o, "payload_sha256", json_object_new_string(sha));
        return o;
}

int cf_update_plan(sd_bus *bus, int fd, const char *image_path, const struct cf_fleet *f, char **names,
                   bool force, bool json)
{
        _cf_cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cf_cleanup_free_ uint8_t *area = malloc(CF_BUNDLE_MAX_SIZE);
        _cf_cleanup_free_ struct plan_node *plan = NULL;
        struct cf_image_info img = {0};
        const char *trust, *refusal;
        size_t n = 0, cap = 0, counts[N_VERDICTS] = {0};
        uint64_t len = 0;
        int status, r, code;

        if (!area)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        /* The image's own fields for the heading, read here; every verdict is canfleetd's. */
        r = cf_read_file(image_path, area, CF_BUNDLE_MAX_SIZE, &len);
        if (r < 0)
                return cf_error(CF_EXIT_USAGE, "usage", "update: cannot read image %s: %s", image_path,
                                cf_read_strerror(r));
        /* a serial node's raw image (docs/design.md §8): the heading from its manifest */
        char raw_heading[160] = "", raw_status[160] = "";
        struct cf_bundle *rb = NULL;
        struct cf_bundle_error rerr;
        bool raw = false;
        if (cf_bundle_is_bundle(area, (size_t) len) && cf_bundle_inspect(area, (size_t) len, NULL, &rb, &rerr) >= 0 &&
            rb->have_manifest && rb->manifest.target[0]) {
                const struct cf_bundle_manifest *m = &rb->manifest;
                raw = true;
                snprintf(raw_heading, sizeof raw_heading, "%u.%u.%u for %s part %s, release %" PRIu32, m->ver_major,
                         m->ver_minor, m->ver_patch, m->target, m->part_id, m->release);
                snprintf(raw_status, sizeof raw_status, "a raw %s image for part %s (no trailer: the manifest's fields)",
                         m->target, m->part_id);
                cf_bundle_manifest_info(m, &img);
        }
        cf_bundle_free(rb);
        if (len > CF_IMAGE_AREA_SIZE && cf_bundle_is_bundle(area, (size_t) len))
                len = CF_IMAGE_AREA_SIZE;
        if (raw)
                status = CF_IMAGE_OK;
        else
                status = len == CF_IMAGE_AREA_SIZE ? cf_image_check_full(area, &img) : NOT_AN_AREA;

        if ((r = call_plan(bus, fd, names, force, &reply)) != CF_EXIT_OK)
                return r;
        r = sd_bus_message_read(reply, "ss", &trust, &refusal);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        while (r >= 0) {
                const char *node, *verdict, *reason;
                r = sd_bus_message_read(reply, "(sss)", &node, &verdict, &reason);
                if (r <= 0)
                        break;
                if (n == cap) {
                        struct plan_node *p = realloc(plan, (cap = cap ? 2 * cap : 16) * sizeof(*p));
                        if (!p)
                                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                        plan = p;
                }
                plan[n] = (struct plan_node){.node = node, .reason = reason, .v = verdict_of(verdict)};
                counts[plan[n].v]++;
                n++;
        }
        if (r < 0)
                return cf_error(CF_EXIT_FAILED, "failed", "unexpected reply to PlanUpdate: %s", strerror(-r));
        code = refusal[0] ? CF_EXIT_REFUSED : CF_EXIT_OK;

        if (json) {
                struct json_object *doc = cf_json_document(), *a = json_object_new_array();
                if (!doc || !a) {
                        json_object_put(doc);
                        json_object_put(a);
                        return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                }
                json_object_object_add(doc, "dry_run", json_object_new_boolean(true));
                json_object_object_add(doc, "image", image_json(image_path, &img, status, raw ? raw_status : NULL));
                json_object_object_add(doc, "signature", json_object_new_string(trust));
                json_object_object_add(doc, "would_start", json_object_new_boolean(code != CF_EXIT_REFUSED));
                json_object_object_add(doc, "refusal", cf_json_string_or_null(refusal));
                for (size_t i = 0; i < n; i++) {
                        struct json_object *o = json_object_new_object();
                        if (!o)
                                break;
                        json_object_object_add(o, "node", json_object_new_string(plan[i].node));
                        json_object_object_add(o, "result", json_object_new_string(verdict_words[plan[i].v]));
                        json_object_object_add(o, "reason", cf_json_string_or_null(plan[i].reason));
                        json_object_array_add(a, o);
                }
                json_object_object_add(doc, "nodes", a);
                return cf_json_print(doc) < 0 ? CF_EXIT_FAILED : code;
        }

        if (raw_heading[0])
                printf("dry run: %s is %s; nothing is changed\n", image_path, raw_heading);
        else if (status == CF_IMAGE_OK)
                printf("dry run: %s is %u.%u.%u for hw 0x%04x, release %u; nothing is changed\n", image_path,
                       img.ver_major, img.ver_minor, img.ver_patch, img.hw_id, img.release);
        else
                printf("dry run: %s: %s; nothing is changed\n", image_path, status_text(status));
        printf("signature: %s\n", trust);
        if (n > 0) {
                static const char *const headers[] = {"NODE", "STATE", "RUNS", "HW-ID", "RESULT", "WHY"};
                static const unsigned flags[] = {0, 0, 0, 0, 0, CF_COL_SHRINK};
                struct cf_table *t = cf_table_new(6, headers, flags);
                if (!t)
                        return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                for (size_t i = 0; i < n; i++) {
                        const struct cf_node_info *x = find_node(f, plan[i].node);
                        char runs[48] = "", hw[8] = "";
                        if (x && x->version && x->version[0])
                                snprintf(runs, sizeof(runs), "%s/%u", x->version, x->release);
                        if (x && x->uid && x->uid[0])
                                snprintf(hw, sizeof(hw), "0x%04x", x->hardware_id);
                        const char *cells[] = {plan[i].node, x && x->state ? x->state : "", runs, hw,
                                               verdict_words[plan[i].v], plan[i].reason};
                        cf_table_add(t, cells);
                }
                cf_table_print(t, stdout, cf_table_width(false));
                cf_table_free(t);
        }
        printf("%zu of %zu node%s would be updated", code == CF_EXIT_OK ? counts[V_UPDATE] : 0, n,
               n == 1 ? "" : "s");
        if (counts[V_CURRENT])
                printf(", %zu already up to date", counts[V_CURRENT]);
        if (counts[V_SKIP])
                printf(", %zu skipped", counts[V_SKIP]);
        if (counts[V_BUSY])
                printf(", %zu busy", counts[V_BUSY]);
        printf("\n");
        if (code == CF_EXIT_REFUSED)
                cf_error(CF_EXIT_REFUSED, "refused", "dry run: canfleetd would refuse this update: %s", refusal);
        return code;
}
