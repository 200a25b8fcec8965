/* update --dry-run: canfleetd's own pre-checks (manager.c, flash-job.c) repeated on the client's view; the
 * image check is the very one canfleetd runs (cf_image_check_full). */
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

/* What canfleetd is expected to do with one node. */
enum verdict {
        V_UPDATE,  /* transferred */
        V_CURRENT, /* same version and release: done at once unless --force (canfleetd compares sha256) */
        V_SKIP,    /* --all: another hardware id, not ours to update */
        V_REFUSE,  /* the whole update would be refused (named node of other hardware, busy) */
        V_FAIL,    /* would fail on the node (anti-rollback) */
};

/* canfleetd takes exactly one flash area; any other size is refused before the trailer is read */
#define NOT_AN_AREA 1

static const char *status_text(int status)
{
        return status == NOT_AN_AREA ? "not a packed 256 KB area image" : cf_image_status_str(status);
}

static const char *const verdict_words[] = {"update", "up-to-date", "skip", "refuse", "fail"};

struct plan_node {
        const struct cf_node_info *n;
        enum verdict v;
        char reason[160];
};

static void judge(struct plan_node *p, const struct cf_image_info *img, bool all, bool force)
{
        const struct cf_node_info *n = p->n;
        bool identified = n->uid && n->uid[0];
        bool has_image = n->version && n->version[0];
        char version[24];

        snprintf(version, sizeof(version), "%u.%u.%u", img->ver_major, img->ver_minor, img->ver_patch);
        p->v = V_UPDATE;
        if (identified && n->hardware_id != img->hw_id) {
                p->v = all ? V_SKIP : V_REFUSE;
                snprintf(p->reason, sizeof(p->reason), "hw 0x%04x, not 0x%04x", n->hardware_id, img->hw_id);
        } else if (n->state && strcmp(n->state, "updating") == 0) {
                p->v = V_REFUSE;
                snprintf(p->reason, sizeof(p->reason), "busy: part of a running job");
        } else if (has_image && img->release < n->release) {
                p->v = V_FAIL;
                snprintf(p->reason, sizeof(p->reason), "release %u is below the running %u (anti-rollback)",
                         img->release, n->release);
        } else if (has_image && !force && img->release == n->release && strcmp(n->version, version) == 0) {
                p->v = V_CURRENT;
                snprintf(p->reason, sizeof(p->reason), "runs %s release %u already (--force sends it again)",
                         version, n->release);
        } else if (!identified) {
                snprintf(p->reason, sizeof(p->reason), "hw id not known yet");
        } else if (n->state && strcmp(n->state, "offline") == 0) {
                snprintf(p->reason, sizeof(p->reason), "offline at the last contact");
        }
}

static struct json_object *image_json(const char *path, const struct cf_image_info *img, int status)
{
        struct json_object *o = json_object_new_object();
        char version[24], sha[65];

        if (!o)
                return NULL;
        json_object_object_add(o, "file", json_object_new_string(path));
        json_object_object_add(o, "valid", json_object_new_boolean(status == CF_IMAGE_OK));
        json_object_object_add(o, "status", json_object_new_string(status_text(status)));
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

int cf_update_plan(const char *image_path, const struct cf_fleet *f, const bool *selected, bool force,
                   bool json)
{
        _cf_cleanup_free_ uint8_t *area = malloc(CF_BUNDLE_MAX_SIZE);
        _cf_cleanup_free_ struct plan_node *plan = calloc(f->m.n_nodes ? f->m.n_nodes : 1, sizeof(*plan));
        struct cf_image_info img = {0};
        size_t n = 0, counts[5] = {0};
        uint64_t len = 0;
        int status, r, code;

        if (!area || !plan)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        r = cf_read_file(image_path, area, CF_BUNDLE_MAX_SIZE, &len);
        if (r < 0)
                return cf_error(CF_EXIT_USAGE, "usage", "update: cannot read image %s: %s", image_path,
                                cf_read_strerror(r));
        /* A signed bundle is planned by its image (the first 256 KB); its signature is canfleetd's to
         * check against its keyring, which canfleetctl does not have. */
        if (len > CF_IMAGE_AREA_SIZE && cf_bundle_is_bundle(area, (size_t) len))
                len = CF_IMAGE_AREA_SIZE;
        status = len == CF_IMAGE_AREA_SIZE ? cf_image_check_full(area, &img) : NOT_AN_AREA;
        for (size_t i = 0; i < f->m.n_nodes; i++) {
                if (selected && !selected[i])
                        continue;
                plan[n].n = &f->nodes[i];
                if (status == CF_IMAGE_OK)
                        judge(&plan[n], &img, !selected, force);
                counts[plan[n].v]++;
                n++;
        }
        if (status != CF_IMAGE_OK)
                code = CF_EXIT_REFUSED;
        else if (counts[V_REFUSE] || counts[V_UPDATE] + counts[V_CURRENT] + counts[V_FAIL] == 0)
                code = CF_EXIT_REFUSED;
        else
                code = counts[V_FAIL] ? CF_EXIT_FAILED : CF_EXIT_OK;

        if (json) {
                struct json_object *doc = cf_json_document(), *a = json_object_new_array();
                if (!doc || !a) {
                        json_object_put(doc);
                        json_object_put(a);
                        return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
                }
                json_object_object_add(doc, "dry_run", json_object_new_boolean(true));
                json_object_object_add(doc, "image", image_json(image_path, &img, status));
                json_object_object_add(doc, "would_start", json_object_new_boolean(code != CF_EXIT_REFUSED));
                for (size_t i = 0; i < n; i++) {
                        struct json_object *o = json_object_new_object();
                        char name[64];
                        if (!o)
                                break;
                        cf_node_name(plan[i].n, name, sizeof(name));
                        json_object_object_add(o, "node", json_object_new_string(name));
                        json_object_object_add(o, "result",
                                               json_object_new_string(verdict_words[plan[i].v]));
                        json_object_object_add(o, "reason", cf_json_string_or_null(plan[i].reason));
                        json_object_array_add(a, o);
                }
                json_object_object_add(doc, "nodes", a);
                return cf_json_print(doc) < 0 ? CF_EXIT_FAILED : code;
        }

        if (status != CF_IMAGE_OK) {
                cf_error(CF_EXIT_REFUSED, "invalid-image", "dry run: canfleetd would refuse %s: %s",
                         image_path, status_text(status));
                return code;
        }
        printf("dry run: %s is %u.%u.%u for hw 0x%04x, release %u; nothing is changed\n", image_path,
               img.ver_major, img.ver_minor, img.ver_patch, img.hw_id, img.release);
        static const char *const headers[] = {"NODE", "STATE", "RUNS", "HW-ID", "RESULT", "WHY"};
        static const unsigned flags[] = {0, 0, 0, 0, 0, CF_COL_SHRINK};
        struct cf_table *t = cf_table_new(6, headers, flags);
        if (!t)
                return cf_error(CF_EXIT_FAILED, "failed", "out of memory");
        for (size_t i = 0; i < n; i++) {
                const struct cf_node_info *x = plan[i].n;
                char name[64], runs[48] = "", hw[8] = "";
                cf_node_name(x, name, sizeof(name));
                if (x->version && x->version[0])
                        snprintf(runs, sizeof(runs), "%s/%u", x->version, x->release);
                if (x->uid && x->uid[0])
                        snprintf(hw, sizeof(hw), "0x%04x", x->hardware_id);
                const char *cells[] = {name, x->state, runs, hw, verdict_words[plan[i].v], plan[i].reason};
                cf_table_add(t, cells);
        }
        cf_table_print(t, stdout, cf_table_width(false));
        cf_table_free(t);
        printf("%zu of %zu node%s would be updated", counts[V_UPDATE], n, n == 1 ? "" : "s");
        if (counts[V_CURRENT])
                printf(", %zu already up to date", counts[V_CURRENT]);
        if (counts[V_SKIP])
                printf(", %zu skipped (other hardware)", counts[V_SKIP]);
        if (counts[V_FAIL])
                printf(", %zu would fail", counts[V_FAIL]);
        printf("\n");
        if (code == CF_EXIT_REFUSED)
                cf_error(CF_EXIT_REFUSED, "refused", "dry run: canfleetd would refuse this update: %s",
                         counts[V_REFUSE] ? "see the nodes marked refuse" : "no node to update");
        return code;
}
