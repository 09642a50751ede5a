/* native.c - see native.h. Routes:
 *   GET  /health
 *   POST /v1/accounts  GET /v1/accounts  PATCH /v1/accounts/{id}  POST /v1/accounts/{id}/keys
 *   POST /v1/instances  GET /v1/instances  GET|PATCH|DELETE /v1/instances/{id}
 *   POST /v1/instances/{id}/start|stop|restart|logout
 *   GET  /v1/instances/{id}/qr  GET /v1/instances/{id}/qr.png
 *   POST /v1/instances/{id}/pairing-code
 *   POST /v1/instances/{id}/messages {to, text, quotedMessageId?, delay?} (answers after the
 *        server ack)
 *   POST /v1/instances/{id}/presence {presence, to?}
 *   GET  /v1/instances/{id}/events  GET /v1/instances/{id}/events/stream (SSE)
 *   POST /v1/instances/{id}/events/{evt}/replay  GET /metrics
 * Account routes need the admin key. Instance routes accept the admin key (all instances), an
 * account key (its instances) or an instance token (that instance only); anything else the
 * credential may not see answers 404, exactly like an id that does not exist. */
#include "api/native.h"
#include "api/dialect.h"
#include "api/render.h"
#include "qr/qr.h"
#include "core/validate.h"
#include "events/webhook.h"
#include "wa/ws_handshake.h"
#include "util/err.h"
#include "util/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { RC_NONE = 0, RC_READ, RC_WRITE, RC_CREATE };

static json_t *render_with_qr(wg_core_t *core, const wg_instance_t *in, const char *token);

static void respond(wg_http_req_t *r, int status, json_t *body)
{
    json_decref(r->json);
    r->status = status;
    r->json = body;
}

static void respond_err(wg_http_req_t *r, const wg_core_err_t *e)
{
    respond(r, e->status ? e->status : 500,
            wg_render_error(e->code ? e->code : "internal_error", e->message, e->field));
}

static void respond_simple(wg_http_req_t *r, int status, const char *code, const char *field,
                           const char *msg)
{
    respond(r, status, wg_render_error(code, msg, field));
}

void wg_native_error(wg_http_req_t *r, void *ctx, int status, const char *code, const char *msg)
{
    (void)ctx;
    respond_simple(r, status, code, NULL, msg);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rate_for(const wg_api_ctx_t *c, int rclass)
{
    switch (rclass) {
    case RC_READ: return c->cfg->rate_read;
    case RC_WRITE: return c->cfg->rate_write;
    case RC_CREATE: return c->cfg->rate_create;
    default: return 0;
    }
}

/* 0 when allowed; otherwise the 429 response is set. */
static int limit(wg_http_req_t *r, wg_api_ctx_t *c, int rclass, const char *who)
{
    char key[160];
    int retry = 1;
    int per_min = rate_for(c, rclass);
    if (per_min <= 0 || !c->rl)
        return 0;
    snprintf(key, sizeof(key), "%d:%s", rclass, who);
    if (wg_ratelimit_take(c->rl, key, per_min, mono_ms(), &retry) == 0)
        return 0;
    snprintf(r->retry_after, sizeof(r->retry_after), "%d", retry);
    json_t *e = wg_render_error("rate_limited", "too many requests; retry later", NULL);
    json_object_set_new(json_object_get(e, "error"), "retryAfter", json_integer(retry));
    respond(r, 429, e);
    return WG_ELIMIT;
}

static const char *who_of(const wg_auth_t *a, char *buf, size_t cap)
{
    if (a->kind == WG_AUTH_INSTANCE)
        snprintf(buf, cap, "i:%s", a->instance_id);
    else
        snprintf(buf, cap, "a:%s", a->account_id);
    return buf;
}

/* Authenticates and applies the route's rate class. 0, or the response is set. */
static int authed(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a)
{
    char tok[520], who[96];
    wg_core_err_t err = {0};
    const char *t = wg_http_credential(r, tok, sizeof(tok));
    if (wg_core_authenticate(c->core, t, a, &err) != 0) {
        respond_err(r, &err);
        return WG_EPERM;
    }
    int rc = r->route ? r->route->rclass : RC_NONE;
    if (rc == RC_CREATE)
        rc = RC_WRITE; /* creation is limited per account in the handler as well */
    return limit(r, c, rc, who_of(a, who, sizeof(who)));
}

static int admin_only(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a)
{
    if (authed(r, c, a) != 0)
        return WG_EPERM;
    if (a->kind != WG_AUTH_ADMIN) {
        respond_simple(r, 403, "forbidden", NULL, "this route needs the admin key");
        return WG_EPERM;
    }
    return 0;
}

int wg_native_parse_body(const uint8_t *body, size_t len, json_t **root, wg_core_err_t *err)
{
    json_error_t je;
    *root = NULL;
    json_t *j = len ? json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!j || !json_is_object(j)) {
        json_decref(j);
        wg_core_err_set(err, 400, "invalid_json", NULL,
                        len ? "request body must be a JSON object"
                            : "request body is empty; a JSON object is required");
        return WG_EINVAL;
    }
    *root = j;
    return 0;
}

/* Optional string member: absent or null -> *out NULL; other types -> field error. */
static int opt_string(json_t *root, const char *key, const char *field, const char **out,
                      wg_core_err_t *err)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        wg_core_err_set(err, 422, "validation_error", field, "%s must be a string", field);
        return WG_EINVAL;
    }
    *out = json_string_value(v);
    return 0;
}

int wg_native_parse_create(json_t *root, wg_instance_spec_t *spec, json_t **settings_owned,
                           wg_core_err_t *err)
{
    int rv;
    memset(spec, 0, sizeof(*spec));
    *settings_owned = NULL;
    json_t *name = json_object_get(root, "name");
    if (!name || json_is_null(name) || (json_is_string(name) && !json_string_length(name))) {
        wg_core_err_set(err, 422, "validation_error", "name", "name is required");
        return WG_EINVAL;
    }
    if (!json_is_string(name)) {
        wg_core_err_set(err, 422, "validation_error", "name", "name must be a string");
        return WG_EINVAL;
    }
    spec->name = json_string_value(name);
    if ((rv = opt_string(root, "phone", "phone", &spec->phone, err)) != 0 ||
        (rv = opt_string(root, "integration", "integration", &spec->integration, err)) != 0 ||
        (rv = opt_string(root, "token", "token", &spec->token, err)) != 0 ||
        (rv = opt_string(root, "webhookSecret", "webhookSecret", &spec->webhook_secret, err)) !=
            0 ||
        (rv = opt_string(root, "accountId", "accountId", &spec->owner_id, err)) != 0)
        return rv;
    json_t *wu = json_object_get(root, "webhookUrl");
    if (wu && !json_is_null(wu)) {
        if (!json_is_string(wu)) {
            wg_core_err_set(err, 422, "invalid_webhook_url", "webhookUrl",
                            "webhookUrl must be a string");
            return WG_EINVAL;
        }
        if (json_string_length(wu))
            spec->webhook_url = json_string_value(wu);
    }
    json_t *we = json_object_get(root, "webhookEvents");
    if (we && !json_is_null(we))
        spec->webhook_events = we;
    json_t *proxy = json_object_get(root, "proxy");
    if (proxy && !json_is_null(proxy))
        spec->proxy = proxy;

    /* settings: an object, plus EnviaAI's documented dotted form "settings.autoRead": true at
     * the top level (their own example sends both); dotted keys override. */
    json_t *settings = json_object_get(root, "settings");
    json_t *merged = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (strncmp(k, "settings.", 9) != 0)
            continue;
        if (!merged) {
            merged = json_is_object(settings) ? json_deep_copy(settings) : json_object();
            if (!merged) {
                wg_core_err_set(err, 500, "internal_error", NULL, "out of memory");
                return WG_ENOMEM;
            }
        }
        json_object_set(merged, k + 9, v);
    }
    if (merged && settings && !json_is_null(settings) && !json_is_object(settings)) {
        json_decref(merged);
        wg_core_err_set(err, 422, "validation_error", "settings", "settings must be an object");
        return WG_EINVAL;
    }
    if (merged) {
        *settings_owned = merged;
        spec->settings = merged;
    } else if (settings && !json_is_null(settings))
        spec->settings = settings;
    spec->dialect = "native";
    return 0;
}

/* webhookByEvents / webhookBase64 / webhookMaxAttempts / webhookHeaders -> {byEvents, base64,
 * maxAttempts, headers} (new object in *opts, NULL when none is present; the core validates
 * the values). */
static int parse_webhook_opts(json_t *root, json_t **opts)
{
    static const char *const names[][2] = {{"webhookByEvents", "byEvents"},
                                           {"webhookBase64", "base64"},
                                           {"webhookMaxAttempts", "maxAttempts"},
                                           {"webhookHeaders", "headers"}};
    *opts = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *v = json_object_get(root, names[i][0]);
        if (!v || json_is_null(v))
            continue;
        if (!*opts && !(*opts = json_object()))
            return WG_ENOMEM;
        json_object_set(*opts, names[i][1], v);
    }
    return 0;
}

int wg_native_parse_patch(json_t *root, wg_instance_patch_t *p, wg_core_err_t *err)
{
    memset(p, 0, sizeof(*p));
    int any = 0;
    json_t *wu = json_object_get(root, "webhookUrl");
    if (wu) {
        if (!json_is_null(wu) && !json_is_string(wu)) {
            wg_core_err_set(err, 422, "invalid_webhook_url", "webhookUrl",
                            "webhookUrl must be a string or null");
            return WG_EINVAL;
        }
        p->set_webhook_url = 1;
        p->webhook_url = json_is_string(wu) && json_string_length(wu) ? json_string_value(wu) : NULL;
        any = 1;
    }
    json_t *we = json_object_get(root, "webhookEvents");
    if (we) {
        p->webhook_events = we;
        any = 1;
    }
    json_t *s = json_object_get(root, "settings");
    if (s) {
        if (!json_is_object(s)) {
            wg_core_err_set(err, 422, "validation_error", "settings", "settings must be an object");
            return WG_EINVAL;
        }
        p->settings = s;
        any = 1;
    }
    json_t *px = json_object_get(root, "proxy");
    if (px) {
        p->set_proxy = 1;
        p->proxy = json_is_null(px) ? NULL : px;
        any = 1;
    }
    if (json_object_get(root, "webhookByEvents") || json_object_get(root, "webhookBase64") ||
        json_object_get(root, "webhookMaxAttempts") || json_object_get(root, "webhookHeaders"))
        any = 1; /* the handler builds p->webhook_opts (parse_webhook_opts) */
    if (!any) {
        wg_core_err_set(err, 422, "validation_error", NULL,
                        "nothing to update: give webhookUrl, webhookEvents, settings or proxy");
        return WG_EINVAL;
    }
    return 0;
}

/* ---- handlers ---- */

typedef struct {
    json_t *counts;
    int64_t total;
} counts_t;

static void count_cb(const char *status, int64_t n, void *arg)
{
    counts_t *c = arg;
    json_object_set_new(c->counts, status, json_integer(n));
    c->total += n;
}

static void h_health(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    static const char *const statuses[] = {WG_STATUS_STOPPED, WG_STATUS_STARTING,
                                           WG_STATUS_SCAN_QR, WG_STATUS_WORKING,
                                           WG_STATUS_FAILED,  WG_STATUS_PENDING};
    counts_t cnt = {json_object(), 0};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        json_object_set_new(cnt.counts, statuses[i], json_integer(0));
    if (wg_store_instance_counts(c->core->store, count_cb, &cnt) != 0) {
        json_decref(cnt.counts);
        respond(r, 503, json_pack("{s:s, s:s, s:s}", "status", "error", "version", WG_VERSION,
                                  "error", "database unavailable"));
        return;
    }
    json_object_set_new(cnt.counts, "total", json_integer(cnt.total));
    respond(r, 200, json_pack("{s:s, s:s, s:o}", "status", "ok", "version", WG_VERSION,
                              "instances", cnt.counts));
}

static json_t *render_account(const wg_core_t *core, const wg_account_t *a, const char *key)
{
    int64_t lim = wg_core_plan_limit(core, a->plan);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:o}", "id", a->id, "name", a->name, "plan",
                          a->plan, "instanceLimit",
                          lim > 0 ? json_integer(lim) : json_null(), "instances",
                          (json_int_t)a->instances, "createdAt",
                          wg_render_time_json(a->created_at));
    if (o && key)
        json_object_set_new(o, "apiKey", json_string(key));
    return o;
}

static void h_accounts_create(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    json_t *root = NULL;
    wg_account_t acc = {0};
    char *key = NULL;
    const char *name = NULL, *plan = NULL;
    if (admin_only(r, c, &a) != 0)
        return;
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0 ||
        opt_string(root, "name", "name", &name, &err) != 0 ||
        opt_string(root, "plan", "plan", &plan, &err) != 0 ||
        wg_core_account_create(c->core, name, plan, &acc, &key, &err) != 0) {
        respond_err(r, &err);
        goto out;
    }
    respond(r, 201, wg_render_ok(render_account(c->core, &acc, key)));
out:
    json_decref(root);
    wg_account_dispose(&acc);
    free(key);
}

static void h_accounts_list(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_account_t *v = NULL;
    size_t n = 0;
    if (admin_only(r, c, &a) != 0)
        return;
    if (wg_store_account_list(c->core->store, &v, &n) != 0) {
        respond_simple(r, 500, "internal_error", NULL, "could not list accounts");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, render_account(c->core, &v[i], NULL));
    wg_account_list_free(v, n);
    respond(r, 200, wg_render_ok(arr));
}

static void h_accounts_patch(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    json_t *root = NULL;
    wg_account_t acc = {0};
    const char *name = NULL, *plan = NULL;
    if (admin_only(r, c, &a) != 0)
        return;
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0 ||
        opt_string(root, "name", "name", &name, &err) != 0 ||
        opt_string(root, "plan", "plan", &plan, &err) != 0) {
        respond_err(r, &err);
        goto out;
    }
    if (!name && !plan) {
        respond_simple(r, 422, "validation_error", "plan", "give plan and/or name");
        goto out;
    }
    if (wg_core_account_update(c->core, r->params[0], name, plan, &acc, &err) != 0) {
        respond_err(r, &err);
        goto out;
    }
    respond(r, 200, wg_render_ok(render_account(c->core, &acc, NULL)));
out:
    json_decref(root);
    wg_account_dispose(&acc);
}

static void h_accounts_keys(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    char *key = NULL;
    if (admin_only(r, c, &a) != 0)
        return;
    if (wg_core_account_rotate_key(c->core, r->params[0], &key, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    respond(r, 201, wg_render_ok(json_pack("{s:s, s:s}", "id", r->params[0], "apiKey", key)));
    free(key);
}

/* The 201 of a create waits (bounded by WAGATE_QR_WAIT_MS, polled on the loop, never
 * blocking it) until the engine shows the first QR, so the response carries qrCode; it answers
 * early when the instance leaves STARTING without one (e.g. FAILED). */
typedef struct {
    char id[64];
    char *token;
} create_wait_t;

static int create_wait(wg_http_req_t *r, void *ctx, int final)
{
    wg_api_ctx_t *c = ctx;
    create_wait_t *cw = r->wait_arg;
    wg_instance_t in;
    char *code = NULL;
    long long exp;
    if (final < 0)
        goto done;
    int have_qr = c->core->engine->ops->qr(c->core->engine, cw->id, &code, &exp) == 0;
    free(code);
    if (wg_store_instance_get(c->core->store, cw->id, &in) != 0) {
        respond_simple(r, 500, "internal_error", NULL, "instance vanished while starting");
        goto done;
    }
    /* the engine stores SCAN_QR_CODE just before it publishes the QR: wait for both */
    if (!have_qr && !final &&
        (!strcmp(in.status, WG_STATUS_STARTING) || !strcmp(in.status, WG_STATUS_SCAN_QR))) {
        wg_instance_dispose(&in);
        return 0;
    }
    respond(r, 201, wg_render_ok(render_with_qr(c->core, &in, cw->token)));
    wg_instance_dispose(&in);
done:
    free(cw->token);
    free(cw);
    r->wait_arg = NULL;
    return 1;
}

/* 1 when the response is deferred (create_wait answers it). */
static int create_wait_start(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in,
                             const char *token)
{
    create_wait_t *cw;
    if (c->cfg->qr_wait_ms <= 0 || !c->core->engine || !c->core->engine->ops->qr ||
        strcmp(in->status, WG_STATUS_STARTING) || !(cw = calloc(1, sizeof(*cw))))
        return 0;
    snprintf(cw->id, sizeof(cw->id), "%s", in->id);
    if (token && !(cw->token = strdup(token))) {
        free(cw);
        return 0;
    }
    r->wait = create_wait;
    r->wait_arg = cw;
    r->wait_ms = c->cfg->qr_wait_ms;
    wg_http_watch(r, wg_http_key_str(in->id)); /* woken by the engine's QR and status */
    return 1;
}

static void h_instances_create(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    json_t *root = NULL, *settings_owned = NULL, *opts = NULL;
    wg_instance_spec_t spec;
    wg_instance_t in = {0};
    char *token = NULL, who[96];
    if (authed(r, c, &a) != 0)
        return;
    if (a.kind == WG_AUTH_INSTANCE) {
        respond_simple(r, 403, "forbidden", NULL, "an instance token cannot create instances");
        return;
    }
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0 ||
        wg_native_parse_create(root, &spec, &settings_owned, &err) != 0) {
        respond_err(r, &err);
        goto out;
    }
    if (parse_webhook_opts(root, &opts) != 0) {
        respond_simple(r, 500, "internal_error", NULL, "out of memory");
        goto out;
    }
    spec.webhook_opts = opts;
    if (a.kind == WG_AUTH_ACCOUNT) {
        if (spec.owner_id && strcmp(spec.owner_id, a.account_id)) {
            respond_simple(r, 403, "forbidden", "accountId",
                           "an account key creates instances for its own account only");
            goto out;
        }
        spec.owner_id = a.account_id;
    } else if (!spec.owner_id)
        spec.owner_id = WG_ADMIN_ACCOUNT_ID;
    snprintf(who, sizeof(who), "a:%s", spec.owner_id);
    if (limit(r, c, RC_CREATE, who) != 0)
        goto out;
    if (wg_core_instance_create(c->core, &spec, &in, &token, &err) != 0) {
        respond_err(r, &err);
        goto out;
    }
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", in.id);
    if (!create_wait_start(r, c, &in, token)) {
        respond(r, 201, wg_render_ok(render_with_qr(c->core, &in, token)));
    }
out:
    json_decref(root);
    json_decref(settings_owned);
    json_decref(opts);
    wg_instance_dispose(&in);
    free(token);
}

static int query_int(wg_http_req_t *r, const char *key, int64_t def, int64_t *out)
{
    char b[24];
    int rv = wg_http_query_get(r->query, key, b, sizeof(b));
    if (rv == WG_ENOTFOUND || (rv == 0 && !b[0])) {
        *out = def;
        return 0;
    }
    char *e;
    long long v = rv == 0 ? strtoll(b, &e, 10) : 0;
    if (rv != 0 || *e || !isdigit((unsigned char)b[0])) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%s must be a positive integer", key);
        respond_simple(r, 422, "validation_error", key, msg);
        return WG_EINVAL;
    }
    *out = v;
    return 0;
}

static void h_instances_list(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    char status[32], name[128];
    const char *st = NULL, *nm = NULL;
    int64_t page, lim, total = 0;
    wg_instance_t *v = NULL;
    size_t n = 0;
    if (authed(r, c, &a) != 0)
        return;
    int q = wg_http_query_get(r->query, "status", status, sizeof(status));
    if (q == 0 && status[0]) {
        for (char *p = status; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        st = status;
    } else if (q != 0 && q != WG_ENOTFOUND) {
        respond_simple(r, 422, "validation_error", "status", "invalid status");
        return;
    }
    q = wg_http_query_get(r->query, "name", name, sizeof(name));
    if (q == 0)
        nm = name;
    else if (q != WG_ENOTFOUND) {
        respond_simple(r, 422, "validation_error", "name", "invalid name filter");
        return;
    }
    if (query_int(r, "page", 1, &page) != 0 || query_int(r, "limit", 20, &lim) != 0)
        return;
    if (wg_core_instance_list(c->core, &a, st, nm, page, lim, &v, &n, &total, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, wg_render_instance_native(&v[i], NULL));
    wg_instance_list_free(v, n);
    json_t *body = wg_render_ok(arr);
    json_object_set_new(body, "pagination",
                        json_pack("{s:I, s:I, s:I, s:I}", "page", (json_int_t)page, "limit",
                                  (json_int_t)lim, "total", (json_int_t)total, "totalPages",
                                  (json_int_t)((total + lim - 1) / lim)));
    respond(r, 200, body);
}

static void h_instance_get(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    respond(r, 200, wg_render_ok(render_with_qr(c->core, &in, NULL)));
    wg_instance_dispose(&in);
}

static void h_instance_patch(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    json_t *root = NULL;
    wg_instance_patch_t p;
    wg_instance_t in = {0}, cur;
    json_t *opts = NULL;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    /* existence/ownership first so another owner's id never reveals validation details */
    if (wg_core_instance_get(c->core, &a, r->params[0], &cur, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    wg_instance_dispose(&cur);
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0 ||
        wg_native_parse_patch(root, &p, &err) != 0 ||
        parse_webhook_opts(root, &opts) != 0 ||
        (p.webhook_opts = opts, wg_core_instance_update(c->core, &a, r->params[0], &p, &in, &err)) != 0) {
        if (!err.status)
            wg_core_err_set(&err, 500, "internal_error", NULL, "out of memory");
        respond_err(r, &err);
        goto out;
    }
    respond(r, 200, wg_render_ok(wg_render_instance_native(&in, NULL)));
out:
    json_decref(root);
    json_decref(opts);
    wg_instance_dispose(&in);
}

static void h_instance_delete(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_delete(c->core, &a, r->params[0], &err) != 0) {
        respond_err(r, &err);
        return;
    }
    respond(r, 200, wg_render_ok(json_pack("{s:s, s:b}", "id", r->params[0], "deleted", 1)));
}

static void action(wg_http_req_t *r, void *ctx, wg_action_t act)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_action(c->core, &a, r->params[0], act, &in, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    respond(r, 200, wg_render_ok(wg_render_instance_native(&in, NULL)));
    wg_instance_dispose(&in);
}

/* ---- QR and pairing code (the engine's current state, not stored) ---- */

/* {code, base64 (PNG, no data: prefix), expiresAt} of the QR now shown, or NULL when none. */
static json_t *qr_json(wg_core_t *core, const char *id)
{
    char *code = NULL, *b64 = NULL;
    long long exp = 0;
    json_t *o = NULL;
    if (!core->engine || !core->engine->ops->qr ||
        core->engine->ops->qr(core->engine, id, &code, &exp) != 0)
        return NULL;
    if ((b64 = wg_qr_png_base64(code, 0, -1, NULL)))
        o = json_pack("{s:s, s:s, s:o}", "code", code, "base64", b64, "expiresAt",
                      wg_render_time_json(exp));
    free(code);
    free(b64);
    return o;
}

/* The native instance object with qrCode filled when a QR is shown. */
static json_t *render_with_qr(wg_core_t *core, const wg_instance_t *in, const char *token)
{
    json_t *o = wg_render_instance_native(in, token);
    json_t *q = o ? qr_json(core, in->id) : NULL;
    if (o && token) { /* creation: the webhook secret is shown this once */
        json_t *wh = wg_render_json_column(in->webhook);
        json_t *sec = json_object_get(wh, "secret");
        json_object_set(o, "webhookSecret", json_is_string(sec) ? sec : json_null());
        json_decref(wh);
    }
    if (q)
        json_object_set_new(o, "qrCode", q);
    return o;
}

static void h_qr(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    json_t *q = qr_json(c->core, in.id);
    if (q)
        respond(r, 200, wg_render_ok(q));
    else {
        char msg[120];
        snprintf(msg, sizeof(msg), "no QR code to scan now (status %s)", in.status);
        respond_simple(r, 404, "qr_not_available", NULL, msg);
    }
    wg_instance_dispose(&in);
}

static void h_qr_png(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in;
    char *code = NULL;
    long long exp;
    uint8_t *png = NULL;
    size_t len = 0;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    if (!c->core->engine || !c->core->engine->ops->qr ||
        c->core->engine->ops->qr(c->core->engine, in.id, &code, &exp) != 0) {
        char msg[120];
        snprintf(msg, sizeof(msg), "no QR code to scan now (status %s)", in.status);
        respond_simple(r, 404, "qr_not_available", NULL, msg);
    } else if (wg_qr_png(code, 0, -1, &png, &len) != 0) {
        respond_simple(r, 500, "internal_error", NULL, "could not render the QR code");
    } else {
        r->status = 200;
        r->content_type = "image/png";
        r->raw = png;
        r->raw_len = len;
    }
    free(code);
    wg_instance_dispose(&in);
}

typedef struct {
    char id[64];
    char code[16];
} pairing_wait_t;

static int pairing_wait(wg_http_req_t *r, void *ctx, int final)
{
    wg_api_ctx_t *c = ctx;
    pairing_wait_t *pw = r->wait_arg;
    if (final >= 0) {
        int st = c->core->engine->ops->pairing_code_state(c->core->engine, pw->id);
        if (st == 0 && !final)
            return 0;
        if (st == 1)
            respond(r, 200, wg_render_ok(json_pack("{s:s}", "code", pw->code)));
        else if (st == 0)
            respond_simple(r, 504, "pairing_code_timeout", NULL,
                           "WhatsApp did not confirm the pairing code in time");
        else
            respond_simple(r, 502, "pairing_code_failed", NULL,
                           "WhatsApp refused the pairing code request (or the connection ended)");
    }
    free(pw);
    r->wait_arg = NULL;
    return 1;
}

static void h_pairing_code(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in = {0};
    json_t *root = NULL;
    const char *phone = NULL;
    char code[16];
    pairing_wait_t *pw = NULL;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0 ||
        wg_native_parse_body(r->body, r->body_len, &root, &err) != 0 ||
        opt_string(root, "phone", "phone", &phone, &err) != 0) {
        respond_err(r, &err);
        goto out;
    }
    if (!phone || !*phone) {
        respond_simple(r, 422, "validation_error", "phone", "phone is required");
        goto out;
    }
    if (!c->core->engine || !c->core->engine->ops->pairing_code) {
        respond_simple(r, 503, "engine_unavailable", NULL, "no WhatsApp engine");
        goto out;
    }
    int rv = c->core->engine->ops->pairing_code(c->core->engine, in.id, phone, code);
    if (rv == WG_EINVAL)
        respond_simple(r, 422, "validation_error", "phone",
                       "phone must be the account's number in international format, digits only");
    else if (rv == WG_EPERM)
        respond_simple(r, 409, "not_pairing", NULL,
                       "the instance is not waiting to be linked (status must be SCAN_QR_CODE)");
    else if (rv)
        respond_simple(r, 500, "internal_error", NULL, "could not start the pairing code");
    else if (!c->core->engine->ops->pairing_code_state || !(pw = calloc(1, sizeof(*pw))))
        respond(r, 200, wg_render_ok(json_pack("{s:s}", "code", code)));
    else {
        /* answer once the server has taken the code (the phone may enter it then) */
        snprintf(pw->id, sizeof(pw->id), "%s", in.id);
        snprintf(pw->code, sizeof(pw->code), "%s", code);
        r->wait = pairing_wait;
        r->wait_arg = pw;
        r->wait_ms = 30000;
        wg_http_watch(r, wg_http_key_str(in.id)); /* woken when the server takes the code */
    }
out:
    json_decref(root);
    wg_instance_dispose(&in);
}

/* ---- messages and presence (rules in core/send.c; the reply waits for the server ack) */

static void send_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_core_send_t *s,
                      const wg_core_sent_t *sent, const wg_core_err_t *err, void *arg)
{
    (void)c;
    (void)s;
    (void)arg;
    if (sent)
        respond(r, 200, wg_render_ok(json_pack("{s:s,s:s}", "messageId", sent->message_id,
                                               "status", "sent")));
    else
        respond_err(r, err);
}

static void h_messages_send(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in = {0};
    json_t *root = NULL;
    wg_core_send_text_t m = {0};
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0 ||
        wg_native_parse_body(r->body, r->body_len, &root, &err) != 0 ||
        opt_string(root, "to", "to", &m.to, &err) != 0 ||
        opt_string(root, "text", "text", &m.text, &err) != 0 ||
        opt_string(root, "quotedMessageId", "quotedMessageId", &m.quoted_id, &err) != 0) {
        respond_err(r, &err);
        goto out;
    }
    m.delay = json_object_get(root, "delay");
    if (wg_dialect_send_text(r, c, &in, &m, send_done, NULL, NULL, &err) != 0)
        respond_err(r, &err);
out:
    json_decref(root);
    wg_instance_dispose(&in);
}

static void h_presence(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in = {0};
    json_t *root = NULL;
    const char *state = NULL, *to = NULL;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0 ||
        wg_native_parse_body(r->body, r->body_len, &root, &err) != 0 ||
        opt_string(root, "presence", "presence", &state, &err) != 0 ||
        opt_string(root, "to", "to", &to, &err) != 0 ||
        wg_core_send_presence(c->core, &in, state, to, &err) != 0)
        respond_err(r, &err);
    else
        respond(r, 202, wg_render_ok(json_pack("{s:s}", "presence", state)));
    json_decref(root);
    wg_instance_dispose(&in);
}

static void h_start(wg_http_req_t *r, void *ctx) { action(r, ctx, WG_ACTION_START); }
static void h_stop(wg_http_req_t *r, void *ctx) { action(r, ctx, WG_ACTION_STOP); }
static void h_restart(wg_http_req_t *r, void *ctx) { action(r, ctx, WG_ACTION_RESTART); }
static void h_logout(wg_http_req_t *r, void *ctx) { action(r, ctx, WG_ACTION_LOGOUT); }

/* ---- events (docs/events.md) ---- */

static json_t *render_event(const wg_outbox_row_t *e)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:s, s:i}", "id", e->id, "event",
                          e->event, "instanceId", e->instance_id, "seq", (json_int_t)e->seq,
                          "timestamp", wg_render_time_json(e->created_at), "data",
                          wg_render_json_column(e->payload), "status", e->state, "attempts",
                          e->attempts);
    if (!o)
        return NULL;
    json_object_set_new(o, "lastError", wg_render_str(e->last_error[0] ? e->last_error : NULL));
    json_object_set_new(o, "nextAttemptAt",
                        e->next_attempt_at ? wg_render_time_json(e->next_attempt_at) : json_null());
    json_object_set_new(o, "deliveredAt",
                        e->delivered_at ? wg_render_time_json(e->delivered_at) : json_null());
    return o;
}

/* GET /v1/instances/{id}/events?status=&since=&limit= : the instance's outbox by seq. */
static void h_events_list(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in;
    char status[16] = "", since[64] = "";
    int64_t lim = 100;
    wg_outbox_row_t *v = NULL;
    size_t n = 0;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    wg_instance_dispose(&in);
    wg_http_query_get(r->query, "status", status, sizeof(status));
    if (status[0] && strcmp(status, "pending") && strcmp(status, "delivered") &&
        strcmp(status, "failed") && strcmp(status, "skipped")) {
        respond_simple(r, 422, "validation_error", "status",
                       "status must be pending, delivered, failed or skipped");
        return;
    }
    if (query_int(r, "limit", 100, &lim) != 0 || lim < 1 || lim > 1000) {
        respond_simple(r, 422, "validation_error", "limit", "limit must be 1 to 1000");
        return;
    }
    wg_outbox_query_t q = {r->params[0], status[0] ? status : NULL, 0, lim};
    if (wg_http_query_get(r->query, "since", since, sizeof(since)) == 0 && since[0]) {
        wg_outbox_row_t e;
        if (wg_store_outbox_get(c->core->store, since, &e) != 0 ||
            strcmp(e.instance_id, r->params[0])) {
            free(e.payload);
            respond_simple(r, 422, "validation_error", "since", "no such event of this instance");
            return;
        }
        q.after_seq = e.seq;
        free(e.payload);
    }
    if (wg_store_outbox_query(c->core->store, &q, &v, &n) != 0) {
        respond_simple(r, 500, "internal_error", NULL, "could not read events");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, render_event(&v[i]));
    wg_outbox_list_free(v, n);
    respond(r, 200, wg_render_ok(arr));
}

/* POST /v1/instances/{id}/events/{evt}/replay : a dead letter back to pending. */
static void h_event_replay(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in;
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    wg_instance_dispose(&in);
    int rv = wg_store_outbox_replay(c->core->store, r->params[0], r->params[1]);
    if (rv == WG_ENOTFOUND) {
        respond_simple(r, 404, "not_found", NULL, "no such event");
        return;
    }
    if (rv == WG_EEXIST) {
        respond_simple(r, 409, "not_failed", NULL, "only failed (dead-lettered) events replay");
        return;
    }
    if (rv != 0) {
        respond_simple(r, 500, "internal_error", NULL, "could not replay");
        return;
    }
    wg_outbox_row_t e;
    if (wg_store_outbox_get(c->core->store, r->params[1], &e) != 0) {
        respond_simple(r, 500, "internal_error", NULL, "could not read the event");
        return;
    }
    respond(r, 200, wg_render_ok(render_event(&e)));
    free(e.payload);
}

/* GET /v1/instances/{id}/events/stream : Server-Sent Events, or a WebSocket when the request
 * is an upgrade. Starts after ?since=<event id> (or the Last-Event-ID header a reconnecting
 * EventSource sends), else with the next event; every event, whatever its delivery state, is
 * "id: <evt>\nevent: <name>\ndata: <native envelope>\n\n" (SSE) or one text frame holding
 * the envelope (WebSocket); a comment line (SSE) or a ping frame every 10 s keeps proxies
 * from closing an idle stream; a WebSocket gets a close frame (1001) at shutdown. */
typedef struct {
    char inst[64];
    int64_t after_seq;
    unsigned ticks, idle_ticks;
    int ws; /* WebSocket: one text frame per event instead of SSE lines */
} sse_t;

/* An unmasked server frame (RFC 6455 5.2) header for len payload bytes; returns its size. */
static size_t ws_frame_head(uint8_t *h, uint8_t opcode, size_t len)
{
    h[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

#define SSE_POLL_TICKS 2   /* store read every 2 ticks (100 ms) */
#define SSE_PING_TICKS 200 /* 10 s */

static int sse_tick(wg_http_req_t *r, void *ctx, int final)
{
    wg_api_ctx_t *c = ctx;
    sse_t *s = r->stream_arg;
    wg_outbox_row_t *v = NULL;
    size_t n = 0, len = 0, cap = 0;
    char *out = NULL;
    if (final < 0) {
        free(s);
        return 1;
    }
    if (s->ticks++ % SSE_POLL_TICKS == 0 && !final) {
        wg_outbox_query_t q = {s->inst, NULL, s->after_seq, 200};
        if (wg_store_outbox_query(c->core->store, &q, &v, &n) != 0)
            n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        wg_webhook_cfg_t wc = {0};
        char *body = NULL;
        size_t blen = 0;
        if (wg_webhook_render(&wc, &v[i], &body, &blen) != 0)
            break;
        size_t need = len + blen + strlen(v[i].id) + strlen(v[i].event) + 32;
        if (need > cap) {
            char *nb = realloc(out, cap = need * 2);
            if (!nb) {
                free(body);
                break;
            }
            out = nb;
        }
        if (s->ws) {
            len += ws_frame_head((uint8_t *)out + len, 0x1, blen);
            memcpy(out + len, body, blen);
            len += blen;
        } else {
            len += (size_t)snprintf(out + len, cap - len, "id: %s\nevent: %s\ndata: %s\n\n",
                                    v[i].id, v[i].event, body);
        }
        s->after_seq = v[i].seq;
        free(body);
    }
    wg_outbox_list_free(v, n);
    if (!out && ++s->idle_ticks >= SSE_PING_TICKS) {
        if (s->ws && (out = malloc(2)))
            out[0] = (char)0x89, out[1] = 0, len = 2; /* ping */
        else if (!s->ws)
            out = strdup(": ping\n\n"), len = out ? strlen(out) : 0;
    }
    if (final && s->ws && !out && (out = malloc(4))) { /* close 1001 going away */
        memcpy(out, "\x88\x02\x03\xe9", 4);
        len = 4;
    }
    if (out) {
        s->idle_ticks = 0;
        r->raw = (uint8_t *)out;
        r->raw_len = len;
    }
    if (final)
        free(s);
    return final ? 1 : 0;
}

static void h_events_stream(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in;
    char since[64] = "";
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (authed(r, c, &a) != 0)
        return;
    if (wg_core_instance_get(c->core, &a, r->params[0], &in, &err) != 0) {
        respond_err(r, &err);
        return;
    }
    wg_instance_dispose(&in);
    sse_t *s = calloc(1, sizeof(*s));
    if (!s) {
        respond_simple(r, 500, "internal_error", NULL, "out of memory");
        return;
    }
    snprintf(s->inst, sizeof(s->inst), "%s", r->params[0]);
    const char *up = r->header ? r->header(r, "Upgrade") : NULL;
    if (up && !strcasecmp(up, "websocket")) {
        const char *key = r->header(r, "Sec-WebSocket-Key");
        const char *ver = r->header(r, "Sec-WebSocket-Version");
        char acc[WG_WS_ACCEPT_LEN + 1];
        if (!key || !ver || strcmp(ver, "13") || wg_ws_handshake_accept(key, acc) != 0) {
            free(s);
            respond_simple(r, 400, "bad_websocket_upgrade", NULL,
                           "a WebSocket upgrade needs Sec-WebSocket-Key and version 13");
            return;
        }
        snprintf(r->ws_accept, sizeof(r->ws_accept), "%s", acc);
        s->ws = 1;
    }
    const char *lei = r->header ? r->header(r, "Last-Event-ID") : NULL;
    if (wg_http_query_get(r->query, "since", since, sizeof(since)) != 0 && lei)
        snprintf(since, sizeof(since), "%s", lei);
    if (since[0]) {
        wg_outbox_row_t e;
        if (wg_store_outbox_get(c->core->store, since, &e) != 0 ||
            strcmp(e.instance_id, s->inst)) {
            free(e.payload);
            free(s);
            respond_simple(r, 422, "validation_error", "since", "no such event of this instance");
            return;
        }
        s->after_seq = e.seq;
        free(e.payload);
    } else if (wg_store_outbox_last_seq(c->core->store, s->inst, &s->after_seq) != 0) {
        free(s);
        respond_simple(r, 500, "internal_error", NULL, "could not read events");
        return;
    }
    r->content_type = "text/event-stream";
    r->stream = sse_tick;
    r->stream_arg = s;
}

/* GET /metrics (admin key): Prometheus text. */
static void h_metrics(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    char *txt = NULL;
    size_t len = 0;
    if (admin_only(r, c, &a) != 0)
        return;
    if (!c->metrics || wg_metrics_render(c->metrics, c->core->store, &txt, &len) != 0) {
        respond_simple(r, 500, "internal_error", NULL, "metrics unavailable");
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    r->raw = (uint8_t *)txt;
    r->raw_len = len;
}

void wg_native_observe(void *ctx, const wg_http_req_t *r, int status)
{
    wg_api_ctx_t *c = ctx;
    wg_metrics_http(c->metrics, r->route ? r->route->pattern : NULL, status);
}

const wg_route_t wg_native_routes[] = {
    {WG_HTTP_GET, "/health", h_health, RC_NONE},
    {WG_HTTP_POST, "/v1/accounts", h_accounts_create, RC_WRITE},
    {WG_HTTP_GET, "/v1/accounts", h_accounts_list, RC_READ},
    {WG_HTTP_PATCH, "/v1/accounts/{id}", h_accounts_patch, RC_WRITE},
    {WG_HTTP_POST, "/v1/accounts/{id}/keys", h_accounts_keys, RC_WRITE},
    {WG_HTTP_POST, "/v1/instances", h_instances_create, RC_CREATE},
    {WG_HTTP_GET, "/v1/instances", h_instances_list, RC_READ},
    {WG_HTTP_GET, "/v1/instances/{id}", h_instance_get, RC_READ},
    {WG_HTTP_PATCH, "/v1/instances/{id}", h_instance_patch, RC_WRITE},
    {WG_HTTP_DELETE, "/v1/instances/{id}", h_instance_delete, RC_WRITE},
    {WG_HTTP_POST, "/v1/instances/{id}/start", h_start, RC_WRITE},
    {WG_HTTP_POST, "/v1/instances/{id}/stop", h_stop, RC_WRITE},
    {WG_HTTP_POST, "/v1/instances/{id}/restart", h_restart, RC_WRITE},
    {WG_HTTP_POST, "/v1/instances/{id}/logout", h_logout, RC_WRITE},
    {WG_HTTP_GET, "/v1/instances/{id}/qr", h_qr, RC_READ},
    {WG_HTTP_GET, "/v1/instances/{id}/qr.png", h_qr_png, RC_READ},
    {WG_HTTP_POST, "/v1/instances/{id}/pairing-code", h_pairing_code, RC_WRITE},
    {WG_HTTP_POST, "/v1/instances/{id}/messages", h_messages_send, RC_WRITE},
    {WG_HTTP_POST, "/v1/instances/{id}/presence", h_presence, RC_WRITE},
    {WG_HTTP_GET, "/v1/instances/{id}/events", h_events_list, RC_READ},
    {WG_HTTP_GET, "/v1/instances/{id}/events/stream", h_events_stream, RC_READ},
    {WG_HTTP_POST, "/v1/instances/{id}/events/{evt}/replay", h_event_replay, RC_WRITE},
    {WG_HTTP_GET, "/metrics", h_metrics, RC_NONE},
};
const size_t wg_native_nroutes = sizeof(wg_native_routes) / sizeof(wg_native_routes[0]);
