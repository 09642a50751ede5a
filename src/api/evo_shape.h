/* evo_shape.h - the Evolution-shaped lifecycle routes shared by the Evolution and Wachat
 * dialects (Wachat's routes are Evolution's: connectionState, restart, logout, delete). The
 * handlers are written once here; each dialect passes what really differs between the two in
 * a wg_evo_shape_t: how the path's instance is looked up (by name / by apiInstanceName), the
 * name its messages show, its core-error renderer and its state object. */
#ifndef WG_API_EVO_SHAPE_H
#define WG_API_EVO_SHAPE_H

#include "api/dialect.h"
#include "core/core.h"

#include <jansson.h>

/* A core error renderer in a dialect's terms (name: the instance name the request used). */
typedef void (*wg_evo_fail_core_fn)(wg_http_req_t *r, const wg_core_err_t *e, const char *name);
/* How a dialect finds an instance by the name its clients use (wg_core_instance_by_name,
 * wg_core_instance_by_api_name). */
typedef int (*wg_evo_lookup_fn)(wg_core_t *c, const wg_auth_t *a, const char *name,
                                wg_instance_t *out, wg_core_err_t *err);

typedef struct {
    /* Auth, then the instance the path's {name} designates. 0, or the response is set. */
    int (*instance)(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, wg_instance_t *in);
    /* The instance name the dialect's messages show. */
    const char *(*shown)(const wg_instance_t *in);
    /* A core error in the dialect's terms (name: the instance name the request used). */
    wg_evo_fail_core_fn fail_core;
    /* The {instance:{...}} state object (connectionState and restart answer it). */
    json_t *(*state)(const wg_instance_t *in);
} wg_evo_shape_t;

/* r's body becomes `body` (stolen) with `status`. */
void wg_evo_respond(wg_http_req_t *r, int status, json_t *body);
/* Evolution's error body with `status` (render.h: wg_render_error_evolution). */
void wg_evo_fail(wg_http_req_t *r, int status, const char *msg);

/* The router's error in Evolution's words: an unrouted 404 reads "Cannot METHOD PATH" (as
 * Express/NestJS answer), the path cut at path_max characters; else msg. */
void wg_evo_route_error(wg_http_req_t *r, int status, const char *msg, int path_max);
/* The messages every Evolution-shaped dialect gives a core error the same way (name taken:
 * 403, not found, 401), written to m with *status. 1 when e is one of those, else 0 (the
 * dialect words the rest). name: the instance name the request used, may be NULL. */
int wg_evo_core_message(const wg_core_err_t *e, const char *name, int *status, char *m,
                        size_t cap);
/* The read/write rate limit of the route, keyed "<prefix><class>:<credential>". 0, or the 429
 * is set. */
int wg_evo_limit(wg_http_req_t *r, wg_api_ctx_t *c, const wg_auth_t *a, const char *prefix);

/* The request body parsed as a JSON object into *root (caller json_decref()s). 0, or the 400
 * "request body must be a JSON object" is set. */
int wg_evo_body(wg_http_req_t *r, json_t **root);
/* The instance `name` for credential a, found by lookup and named in the request log. 0, or
 * fail_core set the response (with name). */
int wg_evo_resolve(wg_http_req_t *r, wg_api_ctx_t *c, const wg_auth_t *a, const char *name,
                   wg_evo_lookup_fn lookup, wg_evo_fail_core_fn fail_core, wg_instance_t *in);

/* GET connectionState/{name}: the state object. */
void wg_evo_state(wg_http_req_t *r, wg_api_ctx_t *c, const wg_evo_shape_t *sh);
/* restart/{name} (the new state) and logout/{name} (400 unless connected; then the ok
 * envelope). */
void wg_evo_action(wg_http_req_t *r, wg_api_ctx_t *c, const wg_evo_shape_t *sh, wg_action_t what);
/* DELETE delete/{name}: the ok envelope. */
void wg_evo_delete(wg_http_req_t *r, wg_api_ctx_t *c, const wg_evo_shape_t *sh);

#endif
