/* native.h - the native API dialect mounted at /v1 (EnviaAI-compatible superset) plus
 * GET /health.
 *
 * Request parsing (JSON body -> core structs) is separated from the handlers so the fuzzer can
 * drive it without a server. Handlers authenticate (Bearer / apikey), rate-limit per
 * (credential, route class), call the core and render {"success":…} envelopes. */
#ifndef WG_API_NATIVE_H
#define WG_API_NATIVE_H

#include "core/core.h"
#include "events/metrics.h"
#include "http/ratelimit.h"
#include "http/router.h"

/* Per-thread context handed to handlers by the server. */
typedef struct {
    wg_core_t *core;        /* this thread's */
    wg_ratelimit_t *rl;     /* shared, thread-safe */
    const wg_config_t *cfg; /* shared, read-only */
    wg_metrics_t *metrics;  /* shared, atomics; may be NULL */
} wg_api_ctx_t;

/* wg_http_app_t.observe: counts the answered request in ctx->metrics. */
void wg_native_observe(void *ctx, const wg_http_req_t *r, int status);

extern const wg_route_t wg_native_routes[];
extern const size_t wg_native_nroutes;

/* Error renderer for the server (404/405/400) in the native shape. */
void wg_native_error(wg_http_req_t *r, void *ctx, int status, const char *code, const char *msg);

/* Parses a JSON body that must be an object. *root is the new reference to free. 0 or
 * WG_EINVAL with err = 400 invalid_json. */
int wg_native_parse_body(const uint8_t *body, size_t len, json_t **root, wg_core_err_t *err);
/* Fills spec from a create-instance body (strings borrowed from root; spec->settings may be a
 * new object owned by *settings_owned, json_decref it). 0 or WG_EINVAL with a field error. */
int wg_native_parse_create(json_t *root, wg_instance_spec_t *spec, json_t **settings_owned,
                           wg_core_err_t *err);
/* Fills patch from a PATCH body; 0 or WG_EINVAL. */
int wg_native_parse_patch(json_t *root, wg_instance_patch_t *p, wg_core_err_t *err);

#endif
