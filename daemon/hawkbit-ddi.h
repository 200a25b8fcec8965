/* hawkBit DDI documents: what the server sends, parsed; what the gateway sends, built. No I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hawkbit.h"

/*
 * Written from hawkBit's OpenAPI description of the DDI (DdiControllerBase, DdiDeploymentBase,
 * DdiCancel, DdiConfigData, DdiActionFeedback). Parsers take the raw body (not NUL-terminated),
 * ignore keys they do not know, and return -EBADMSG for a body they cannot use.
 */

/* "HH:MM:SS" (hawkBit's config.polling.sleep) → seconds; -EINVAL otherwise.
 *   "00:05:00" → 300, "12:00:00" → 43200, "5:00" / "00:60:00" / "00:00:05x" → -EINVAL */
int ddi_parse_sleep(const char *s, unsigned *ret);

/* The root resource (DdiControllerBase). */
struct ddi_root {
        bool has_sleep;
        unsigned sleep_s;
        char *deployment_href; /* _links.deploymentBase.href, NULL: none */
        char *cancel_href;     /* _links.cancelAction.href */
        bool config_requested; /* _links.configData present */
};
int ddi_parse_root(const uint8_t *data, size_t size, struct ddi_root *ret);
void ddi_root_clear(struct ddi_root *r);

/* A deployment (DdiDeploymentBase) with exactly one "*.cfb" artifact. d's strings point into the
 * struct's own copies. On -EBADMSG, *why says what is wrong ("no *.cfb artifact in the deployment",
 * "more than one *.cfb artifact in the deployment", "the *.cfb artifact has no sha256", …) and
 * d.action_id is set when the id itself was readable (so that the action can be answered). */
struct ddi_deployment {
        struct hawkbit_deployment d;
        char *version, *artifact_name, *artifact_url;
};
int ddi_parse_deployment(const uint8_t *data, size_t size, struct ddi_deployment *ret, const char **why);
void ddi_deployment_clear(struct ddi_deployment *d);

/* A cancel request (DdiCancel): its cancelAction.stopId, a positive decimal number. */
int ddi_parse_cancel(const uint8_t *data, size_t size, uint64_t *ret_stop_id);

/* configData (DdiConfigData), mode "merge", every value a string as the schema wants:
 *   {"mode":"merge","data":{"hw_id":"1","bootloader_version":"bl-2","bus":"can0","station":"3",
 *    "version":"1.0.0","release":"7"}}   (NULL strings are left out). NULL: out of memory. */
char *ddi_config_data_body(const struct hawkbit_node *n);

/* Feedback (DdiActionFeedback): {"status":{"execution":E,"result":{"finished":F},"details":[D]},
 * "timestamp":T}. details (NULL: none) is cut at its first line break and at HAWKBIT_DETAILS_MAX
 * bytes, never inside a UTF-8 sequence. NULL: out of memory. */
char *ddi_feedback_body(const char *execution, const char *finished, const char *details,
                        uint64_t timestamp_ms);
/* Whether a feedback body closes its action (execution "closed"). */
bool ddi_feedback_closes(const char *body);
