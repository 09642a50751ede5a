/* evo_shape.c - see evo_shape.h. Parsing and rendering only: the rules live in core/. */
#include "api/evo_shape.h"

#include "api/render.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

void wg_evo_respond(wg_http_req_t *r, int status, json_t *body)
{
    json_decref(r->json);
    r->status = status;
    r->json = body;
}

void wg_evo_fail(wg_http_req_t *r, int status, const char *msg)
{
    wg_evo_respond(r, status, wg_render_error_evolution(status, msg));
}

void wg_evo_route_error(wg_http_req_t *r, int status, const char *msg, int path_max)
{
    char m[300];
    if (status == 404 && !r->route)
        snprintf(m, sizeof(m), "Cannot %s %.*s", r->method_name ? r->method_name : "GET",
                 path_max, r->path ? r->path : "/");
    else
        snprintf(m, sizeof(m), "%s", msg);
    wg_evo_fail(r, status, m);
}

int wg_evo_core_message(const wg_core_err_t *e, const char *name, int *status, char *m,
                        size_t cap)
{
    const char *code = e->code ? e->code : "";
    if (e->taken && !strcmp(e->field, "name")) {
        *status = 403;
        snprintf(m, cap, "This name \"%.100s\" is already in use.", name ? name : "");
    } else if (!strcmp(code, "not_found")) {
        snprintf(m, cap, "The \"%.100s\" instance does not exist", name ? name : "");
    } else if (*status == 401) {
        snprintf(m, cap, "Unauthorized");
    } else {
        return 0;
    }
    return 1;
}

/* the route classes both dialects give their routes (WG_DIALECT_RC) */
enum { EVO_RC_READ = 1, EVO_RC_WRITE = 2 };

int wg_evo_limit(wg_http_req_t *r, wg_api_ctx_t *c, const wg_auth_t *a, const char *prefix)
{
    char key[120];
    int retry;
    int rc = r->route ? WG_DIALECT_RC(r->route->rclass) : EVO_RC_READ;
    snprintf(key, sizeof(key), "%s%d:%s", prefix, rc,
             a->kind == WG_AUTH_INSTANCE ? a->instance_id : a->account_id);
    if (wg_dialect_limit(r, c, key, rc == EVO_RC_WRITE ? c->cfg->rate_write : c->cfg->rate_read,
                         &retry) != 0) {
        wg_evo_fail(r, 429, "Too many requests; retry later");
        return WG_ELIMIT;
    }
    return 0;
}

int wg_evo_body(wg_http_req_t *r, json_t **root)
{
    wg_core_err_t err = {0};
    if (wg_native_parse_body(r->body, r->body_len, root, &err) != 0) {
        wg_evo_fail(r, 400, "request body must be a JSON object");
        return WG_EINVAL;
    }
    return 0;
}

int wg_evo_resolve(wg_http_req_t *r, wg_api_ctx_t *c, const wg_auth_t *a, const char *name,
                   wg_evo_lookup_fn lookup, wg_evo_fail_core_fn fail_core, wg_instance_t *in)
{
    wg_core_err_t err = {0};
    if (lookup(c->core, a, name, in, &err) != 0) {
        fail_core(r, &err, name);
        return WG_ENOTFOUND;
    }
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", in->id);
    return 0;
}

void wg_evo_state(wg_http_req_t *r, wg_api_ctx_t *c, const wg_evo_shape_t *sh)
{
    wg_auth_t a;
    wg_instance_t in;
    if (sh->instance(r, c, &a, &in) != 0)
        return;
    wg_evo_respond(r, 200, sh->state(&in));
    wg_instance_dispose(&in);
}

void wg_evo_action(wg_http_req_t *r, wg_api_ctx_t *c, const wg_evo_shape_t *sh, wg_action_t what)
{
    wg_auth_t a;
    wg_instance_t in, out = {0};
    wg_core_err_t err = {0};
    if (sh->instance(r, c, &a, &in) != 0)
        return;
    /* Evolution refuses a logout of an instance that is not connected (its wording) */
    if (what == WG_ACTION_LOGOUT && strcmp(in.status, WG_STATUS_WORKING)) {
        char m[200];
        snprintf(m, sizeof(m), "The \"%.100s\" instance is not connected", sh->shown(&in));
        wg_evo_fail(r, 400, m);
        goto done;
    }
    if (wg_core_instance_action(c->core, &a, in.id, what, &out, &err) != 0) {
        sh->fail_core(r, &err, sh->shown(&in));
        goto done;
    }
    if (what == WG_ACTION_LOGOUT)
        wg_evo_respond(r, 200, wg_render_ok_evolution("Instance logged out"));
    else
        wg_evo_respond(r, 200, sh->state(&out));
done:
    wg_instance_dispose(&in);
    wg_instance_dispose(&out);
}

void wg_evo_delete(wg_http_req_t *r, wg_api_ctx_t *c, const wg_evo_shape_t *sh)
{
    wg_auth_t a;
    wg_instance_t in;
    wg_core_err_t err = {0};
    if (sh->instance(r, c, &a, &in) != 0)
        return;
    if (wg_core_instance_delete(c->core, &a, in.id, &err) != 0)
        sh->fail_core(r, &err, sh->shown(&in));
    else
        wg_evo_respond(r, 200, wg_render_ok_evolution("Instance deleted"));
    wg_instance_dispose(&in);
}
