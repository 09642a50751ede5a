/* dialect.h - the API dialects mounted together: native /v1 (EnviaAI-compatible), Evolution API
 * v2 at /evolution (and at / with WAGATE_ROOT_DIALECT=evolution), Hypersender at /hypersender,
 * Wachat at /wachat.
 *
 * Each adapter exports a route table with patterns relative to its mount point; this module
 * builds the one table the HTTP server matches, with every route tagged by its dialect (in the
 * high bits of rclass, so the router stays generic), and renders request-level errors (404, 405,
 * 400) in the shape of the dialect that owns the route or, with no route, the path prefix.
 * Also the small pieces every adapter needs: authentication, per-key rate limits and a deferred
 * "wait for the first QR" response. No business rules here: those are in core/. */
#ifndef WG_API_DIALECT_H
#define WG_API_DIALECT_H

#include "api/native.h"
#include "core/send.h"

typedef enum {
    WG_DIALECT_NATIVE = 0,
    WG_DIALECT_EVOLUTION = 1,
    WG_DIALECT_HYPERSENDER = 2,
    WG_DIALECT_ENVIAAI = 3, /* EnviaAI's connection routes on /v1, native shapes */
    WG_DIALECT_WACHAT = 4,
    WG_DIALECT_COUNT
} wg_dialect_id_t;

/* rclass of a dialect route: dialect in bits 8.., the adapter's own rate class in bits 0..7. */
#define WG_DIALECT_RCLASS(d, rc) (((d) << 8) | (rc))
#define WG_DIALECT_OF(rclass) ((rclass) >> 8)
#define WG_DIALECT_RC(rclass) ((rclass)&0xff)

typedef void (*wg_dialect_error_fn)(wg_http_req_t *r, void *ctx, int status, const char *code,
                                    const char *msg);

/* One adapter: name stored in instances.dialect, mount prefix, relative routes, error shape. */
typedef struct {
    const char *name;
    const char *prefix;
    const wg_route_t *routes;
    const size_t *nroutes;
    wg_dialect_error_fn error;
} wg_dialect_t;

extern const wg_dialect_t wg_dialect_evolution;
extern const wg_dialect_t wg_dialect_hypersender;
extern const wg_dialect_t wg_dialect_enviaai;
extern const wg_dialect_t wg_dialect_wachat;

/* The combined route table (native first, then each dialect under its prefix, then the root
 * dialect at "/" when root_dialect names one). *out is malloc'd with its patterns: free with
 * wg_dialects_routes_free. 0, WG_EINVAL (unknown root dialect), WG_ENOMEM. */
int wg_dialects_routes(const char *root_dialect, wg_route_t **out, size_t *n);
void wg_dialects_routes_free(wg_route_t *routes, size_t n);
/* wg_http_app_t.error: renders in the shape of the request's dialect. */
void wg_dialects_error(wg_http_req_t *r, void *ctx, int status, const char *code,
                       const char *msg);
/* The dialect of a request (its route's tag, else its path). */
wg_dialect_id_t wg_dialects_of(const wg_http_req_t *r);

/* Resolves the request's credential (Bearer or apikey). 0, or WG_EPERM with err 401. */
int wg_dialect_auth(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, wg_core_err_t *err);
/* Takes one from the bucket `key` allowing per_min per minute (0 = unlimited). 0 when allowed;
 * WG_ELIMIT with *retry seconds (r->retry_after is set too). */
int wg_dialect_limit(wg_http_req_t *r, wg_api_ctx_t *c, const char *key, int per_min,
                     int *retry);

/* Deferred answer: once the engine shows a QR for instance id, or the instance leaves
 * STARTING/SCAN_QR_CODE, or wait_ms passed, calls done(r, c, instance as stored, arg), which
 * sets the response; then arg_free(arg). Returns 1 when deferred, 0 when it cannot defer (no
 * engine, wait_ms <= 0, out of memory: the caller answers at once and still owns arg). */
typedef void (*wg_dialect_qr_done_fn)(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in,
                                      void *arg);
int wg_dialect_wait_qr(wg_http_req_t *r, wg_api_ctx_t *c, const char *id, int wait_ms,
                       wg_dialect_qr_done_fn done, void *arg, void (*arg_free)(void *));
/* How long a dialect answer that documents the first QR waits for it: WAGATE_QR_WAIT_MS, or
 * 10 s when that is 0 (0 means "do not wait" for the native create only). */
int wg_dialect_qr_wait_ms(const wg_api_ctx_t *c);

/* Deferred text send: validates and queues m for instance `in` through the core
 * (wg_core_send_text), then, once the server acked it, it failed, or WG_SEND_WAIT_MS (plus the
 * delay) passed, calls done(r, c, s, sent, err, arg) with exactly one of sent (acked) and err
 * (failed or timed out) non-NULL; done sets the response in the adapter's shape. Then
 * arg_free(arg). Returns 0 when deferred; a negative WG_E* with *err set when the core refused
 * or memory ran out (nothing queued, done is never called, the caller answers and still owns
 * arg). */
typedef void (*wg_dialect_send_done_fn)(wg_http_req_t *r, wg_api_ctx_t *c,
                                        const wg_core_send_t *s, const wg_core_sent_t *sent,
                                        const wg_core_err_t *err, void *arg);
int wg_dialect_send_text(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in,
                         const wg_core_send_text_t *m, wg_dialect_send_done_fn done, void *arg,
                         void (*arg_free)(void *), wg_core_err_t *err);

/* The origin of links we render: WAGATE_PUBLIC_URL, else "http://" + the request's Host header
 * (when it looks like a host), else "" (the link is then a path). No trailing '/'. */
void wg_dialect_origin(const wg_http_req_t *r, const wg_api_ctx_t *c, char *out, size_t cap);

#endif
