/* hypersender.c - the Hypersender (enterprise instance management) dialect at /hypersender.
 * Routes (relative to the mount point):
 *   POST /create-instance {phone, name, webhook_url?}        (5/min per account)
 *   GET  /instances[?filter[uuid]=&filter[name]=&filter[phone]=&filter[status]=]
 *   GET  /{id}/health                                        (10/min per instance)
 *   POST /{id}/request-new-qr-code                           (1/min per instance)
 *   POST /{id}/restart                                       (5/min per instance)
 *   POST /{id}/logout -> {message} (5/min per instance; 409 when not connected)
 *   DELETE /{id} -> {message} (5/min per instance; account or admin key, 403 for a token)
 *   POST /{id}/send-text {chatId, text, reply_to?, link_preview?} (WAGATE_RATE_WRITE/min per
 *        instance) -> {queued, message, queued_request_uuid, queued_request_link}
 *   GET  /{id}/queued-requests/{uuid} -> {uuid, request, response_status, response_body,
 *        response_header} (WAGATE_RATE_READ/min per instance)
 * Hypersender documents no logout or delete route (its Enterprise API has create, list, health,
 * new QR and restart); those two are ours, shaped as restart answers (docs/dialects.md).
 * Auth: Bearer (account or admin key; an instance token reaches its own instance only).
 * Errors: 422 {message:"The given data was invalid.", errors:{field:[…]}, statusCode:422} with
 * one message per failing rule (Laravel wording), 429 {message:"Too many requests. Please try
 * again later."}, others {message}. Field checks call the core's validators (core/validate.h);
 * the core re-validates and decides uniqueness when it creates. */
#include "api/dialect.h"
#include "api/render.h"
#include "core/validate.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { RC_READ = 1, RC_WRITE = 2 };

static void respond(wg_http_req_t *r, int status, json_t *body)
{
    json_decref(r->json);
    r->status = status;
    r->json = body;
}

static void fail(wg_http_req_t *r, int status, const char *msg)
{
    respond(r, status, json_pack("{s:s}", "message", msg));
}

static void hs_error(wg_http_req_t *r, void *ctx, int status, const char *code, const char *msg)
{
    (void)ctx;
    (void)code;
    char m[300];
    if (status == 404 && !r->route)
        snprintf(m, sizeof(m), "The route %.200s could not be found.",
                 r->path ? r->path + 1 : "");
    else if (status == 405)
        snprintf(m, sizeof(m), "The %s method is not supported for route %.200s.",
                 r->method_name ? r->method_name : "", r->path ? r->path + 1 : "");
    else
        snprintf(m, sizeof(m), "%s", msg);
    fail(r, status, m);
}

/* {message:"The given data was invalid.", errors, statusCode:422} (steals errors) */
static json_t *invalid_body(json_t *errors)
{
    return json_pack("{s:s, s:o, s:i}", "message", "The given data was invalid.", "errors",
                     errors, "statusCode", 422);
}

static void fail_422(wg_http_req_t *r, json_t *errors)
{
    respond(r, 422, invalid_body(errors));
}

static void add_error(json_t *errors, const char *field, const char *msg)
{
    json_t *a = json_object_get(errors, field);
    if (!a) {
        a = json_array();
        json_object_set_new(errors, field, a);
    }
    json_array_append_new(a, json_string(msg));
}

static void fail_core(wg_http_req_t *r, const wg_core_err_t *e)
{
    int st = e->status ? e->status : 500;
    const char *code = e->code ? e->code : "";
    if (st == 401) {
        fail(r, 401, "Unauthenticated.");
    } else if (!strcmp(code, "not_found")) {
        fail(r, 404, "Instance not found.");
    } else if (!strcmp(code, "forbidden")) {
        fail(r, 403, "This action is unauthorized.");
    } else if (st == 422) {
        json_t *errors = json_object();
        if (e->taken && !strcmp(e->field, "name"))
            add_error(errors, "name", "The name has already been taken.");
        else
            add_error(errors,
                      !strcmp(e->field, "webhookUrl") ? "webhook_url"
                      : e->field[0]                   ? e->field
                                                      : "request",
                      e->message);
        fail_422(r, errors);
    } else
        fail(r, st, e->message);
}

static int hs_auth(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a)
{
    wg_core_err_t err = {0};
    if (wg_dialect_auth(r, c, a, &err) != 0) {
        fail_core(r, &err);
        return WG_EPERM;
    }
    return 0;
}

/* Hypersender's fixed per-route limits. 0, or the 429 is set. */
static int hs_limit(wg_http_req_t *r, wg_api_ctx_t *c, const char *route, const char *who,
                    int per_min)
{
    char key[160];
    int retry;
    snprintf(key, sizeof(key), "hs:%s:%s", route, who);
    if (wg_dialect_limit(r, c, key, per_min, &retry) == 0)
        return 0;
    fail(r, 429, "Too many requests. Please try again later.");
    return WG_ELIMIT;
}

/* Auth, the instance {id} for that credential, then the route's limit. 0 or response set. */
static int hs_instance(wg_http_req_t *r, wg_api_ctx_t *c, const char *route, int per_min,
                       wg_auth_t *a, wg_instance_t *in)
{
    wg_core_err_t err = {0};
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (hs_auth(r, c, a) != 0)
        return WG_EPERM;
    if (wg_core_instance_get(c->core, a, r->params[0], in, &err) != 0) {
        fail_core(r, &err);
        return WG_ENOTFOUND;
    }
    if (hs_limit(r, c, route, in->id, per_min) != 0) {
        wg_instance_dispose(in);
        return WG_ELIMIT;
    }
    return 0;
}

/* {id, name, phone, service_type, status, created_at} (+ qr_code, access_token when asked) */
static json_t *render_instance(wg_api_ctx_t *c, const wg_instance_t *in, int with_qr,
                               const char *token)
{
    char ts[32];
    wg_render_time_plain(in->created_at, ts, sizeof(ts));
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s}", "id", in->id, "name", in->name, "phone",
                          wg_render_str(in->phone), "service_type", "whatsapp", "status",
                          in->status);
    if (!o)
        return NULL;
    if (with_qr) {
        char *code = NULL, *b64 = NULL;
        int64_t exp;
        json_object_set_new(o, "qr_code", wg_render_qr(c->core, in->id, &code, &b64, &exp) == 0
                                              ? json_string(b64)
                                              : json_null());
        free(code);
        free(b64);
        json_object_set_new(o, "access_token", wg_render_str(token));
    }
    json_object_set_new(o, "created_at", json_string(ts));
    return o;
}

typedef struct {
    char *token;
    int status;
} qr_wait_arg_t;

static void qr_arg_free(void *p)
{
    qr_wait_arg_t *w = p;
    if (w)
        free(w->token);
    free(w);
}

static void qr_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in, void *arg)
{
    qr_wait_arg_t *w = arg;
    respond(r, w->status, render_instance(c, in, 1, w->token));
}

/* Answers with the instance and its QR once the engine shows one (bounded wait). */
static void answer_with_qr(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in,
                           const char *token, int status)
{
    qr_wait_arg_t *w = calloc(1, sizeof(*w));
    if (w) {
        w->status = status;
        w->token = token ? strdup(token) : NULL;
    }
    if (w && wg_dialect_wait_qr(r, c, in->id, wg_dialect_qr_wait_ms(c), qr_done, w, qr_arg_free))
        return;
    qr_arg_free(w);
    respond(r, status, render_instance(c, in, 1, token));
}

static void h_create(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    json_t *root = NULL, *errors = json_object();
    wg_instance_spec_t spec;
    wg_instance_t in = {0};
    char *token = NULL, e164[40];
    if (hs_auth(r, c, &a) != 0)
        goto out;
    if (a.kind == WG_AUTH_INSTANCE) {
        fail(r, 403, "This action is unauthorized.");
        goto out;
    }
    if (hs_limit(r, c, "create", a.account_id, 5) != 0)
        goto out;
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0)
        root = json_object(); /* every required field then fails with its own message */
    memset(&spec, 0, sizeof(spec));
    spec.dialect = "hypersender";
    spec.owner_id = a.kind == WG_AUTH_ACCOUNT ? a.account_id : WG_ADMIN_ACCOUNT_ID;
    json_t *phone = json_object_get(root, "phone"), *name = json_object_get(root, "name");
    json_t *wu = json_object_get(root, "webhook_url");
    if (!phone || json_is_null(phone) || (json_is_string(phone) && !json_string_length(phone)))
        add_error(errors, "phone", "The phone field is required.");
    else if (!json_is_string(phone))
        add_error(errors, "phone", "The phone field must be a string.");
    else if (!wg_valid_e164(json_string_value(phone), e164, sizeof(e164)))
        add_error(errors, "phone", "The phone field format is invalid.");
    else
        spec.phone = e164;
    if (!name || json_is_null(name) || (json_is_string(name) && !json_string_length(name)))
        add_error(errors, "name", "The name field is required.");
    else if (!json_is_string(name))
        add_error(errors, "name", "The name field must be a string.");
    else {
        if (!wg_valid_text(json_string_value(name), 50)) {
            if (wg_valid_text(json_string_value(name), json_string_length(name)))
                add_error(errors, "name", "The name field must not be greater than 50 characters.");
            else
                add_error(errors, "name", "The name field format is invalid.");
        }
        spec.name = json_string_value(name);
    }
    if (wu && !json_is_null(wu)) {
        const char *u = json_string_value(wu);
        if (!u || !wg_valid_http_url(u))
            add_error(errors, "webhook_url", "The webhook url field must be a valid URL.");
        if (!u || strncasecmp(u, "https://", 8))
            add_error(errors, "webhook_url",
                      "The webhook url field must start with one of the following: https://.");
        spec.webhook_url = u;
    }
    if (json_object_size(errors)) {
        fail_422(r, errors);
        errors = NULL;
        goto out;
    }
    if (wg_core_instance_create(c->core, &spec, &in, &token, &err) != 0) {
        fail_core(r, &err);
        goto out;
    }
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", in.id);
    answer_with_qr(r, c, &in, token, 201);
out:
    json_decref(root);
    json_decref(errors);
    wg_instance_dispose(&in);
    free(token);
}

/* filter[key] in either spelling (raw or percent-encoded brackets). 1 when present. */
static int filter_get(wg_http_req_t *r, const char *key, char *out, size_t cap)
{
    char k1[48], k2[48];
    snprintf(k1, sizeof(k1), "filter[%s]", key);
    snprintf(k2, sizeof(k2), "filter%%5B%s%%5D", key);
    if (wg_http_query_get(r->query, k1, out, cap) == 0 ||
        wg_http_query_get(r->query, k2, out, cap) == 0)
        return out[0] != 0;
    return 0;
}

static void h_list(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    char uuid[64], name[128], phone[40], status[32], e164[40];
    if (hs_auth(r, c, &a) != 0)
        return;
    int f_uuid = filter_get(r, "uuid", uuid, sizeof(uuid));
    int f_name = filter_get(r, "name", name, sizeof(name));
    int f_phone = filter_get(r, "phone", phone, sizeof(phone));
    int f_status = filter_get(r, "status", status, sizeof(status));
    if (f_phone && !wg_valid_e164(phone, e164, sizeof(e164)))
        e164[0] = 0; /* matches nothing */
    json_t *arr = json_array();
    for (int64_t page = 1;; page++) {
        wg_instance_t *v = NULL;
        size_t n = 0;
        int64_t total = 0;
        if (wg_core_instance_list(c->core, &a, f_status ? status : NULL, f_name ? name : NULL,
                                  page, 100, &v, &n, &total, &err) != 0) {
            json_decref(arr);
            fail_core(r, &err);
            return;
        }
        for (size_t i = 0; i < n; i++)
            if ((!f_uuid || !strcmp(v[i].id, uuid)) &&
                (!f_phone || (v[i].phone && !strcmp(v[i].phone, e164))))
                json_array_append_new(arr, render_instance(c, &v[i], 0, NULL));
        wg_instance_list_free(v, n);
        if (page * 100 >= total)
            break;
    }
    respond(r, 200, json_pack("{s:o}", "data", arr));
}

static void h_health(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    if (hs_instance(r, c, "health", 10, &a, &in) != 0)
        return;
    /* connected_at: when the instance last became WORKING (its status time), null otherwise */
    char ts[32];
    wg_render_time_plain(in.updated_at, ts, sizeof(ts));
    respond(r, 200, json_pack("{s:s, s:o, s:s}", "instance_id", in.id, "connected_at",
                              strcmp(in.status, WG_STATUS_WORKING) ? json_null() : json_string(ts),
                              "status", in.status));
    wg_instance_dispose(&in);
}

static void h_new_qr(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, now = {0};
    wg_core_err_t err = {0};
    if (hs_instance(r, c, "qr", 1, &a, &in) != 0)
        return;
    if (!strcmp(in.status, WG_STATUS_WORKING)) {
        fail(r, 409, "The instance is already connected.");
        goto out;
    }
    /* a new pairing session: the engine starts over and shows a fresh first QR */
    if (wg_core_instance_action(c->core, &a, in.id, WG_ACTION_RESTART, &now, &err) != 0) {
        fail_core(r, &err);
        goto out;
    }
    answer_with_qr(r, c, &now, NULL, 200);
out:
    wg_instance_dispose(&in);
    wg_instance_dispose(&now);
}

/* restart or logout of {id} (5/min per instance each), answered {message:done}. Logout unlinks
 * the device (the engine logs out, credentials are wiped) and stops the instance; a new link
 * starts with request-new-qr-code. Only a connected instance logs out. */
static void act(wg_http_req_t *r, void *ctx, const char *route, wg_action_t what, const char *done)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, now = {0};
    wg_core_err_t err = {0};
    if (hs_instance(r, c, route, 5, &a, &in) != 0)
        return;
    if (what == WG_ACTION_LOGOUT && strcmp(in.status, WG_STATUS_WORKING))
        fail(r, 409, "The instance is not connected.");
    else if (wg_core_instance_action(c->core, &a, in.id, what, &now, &err) != 0)
        fail_core(r, &err);
    else
        fail(r, 200, done);
    wg_instance_dispose(&in);
    wg_instance_dispose(&now);
}

static void h_restart(wg_http_req_t *r, void *ctx)
{
    act(r, ctx, "restart", WG_ACTION_RESTART, "WhatsApp instance restarted successfully.");
}

static void h_logout(wg_http_req_t *r, void *ctx)
{
    act(r, ctx, "logout", WG_ACTION_LOGOUT, "WhatsApp instance logged out successfully.");
}

/* DELETE /{id}: the instance, its credentials and its data are gone (the core decides who may:
 * an instance token may not). */
static void h_delete(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    wg_core_err_t err = {0};
    if (hs_instance(r, c, "delete", 5, &a, &in) != 0)
        return;
    if (wg_core_instance_delete(c->core, &a, in.id, &err) != 0)
        fail_core(r, &err);
    else
        fail(r, 200, "WhatsApp instance deleted successfully.");
    wg_instance_dispose(&in);
}

/* ---- send-text (the rules are core/send.c's), answered as Hypersender v2 queues ---- */

/* A failed send in Hypersender's shapes (*status set): field errors as Laravel 422s on the
 * body's names, the rest {message}. New reference. */
static json_t *send_error(const wg_core_err_t *e, int *status)
{
    const char *code = e->code ? e->code : "";
    *status = e->status ? e->status : 500;
    if (e->status == 422) {
        json_t *errors = json_object();
        if (!strcmp(e->field, "to"))
            add_error(errors, "chatId", "The chat id field format is invalid.");
        else if (!strcmp(e->field, "text"))
            add_error(errors, "text", "The text field must not be greater than 65536 characters.");
        else
            add_error(errors, e->field[0] ? e->field : "request", e->message);
        return invalid_body(errors);
    }
    if (!strcmp(code, "not_on_whatsapp"))
        return json_pack("{s:s}", "message", "The recipient is not on WhatsApp.");
    if (!strcmp(code, "instance_not_connected"))
        return json_pack("{s:s}", "message", "The instance is not connected.");
    return json_pack("{s:s}", "message", e->message);
}

/* The message as Hypersender's send-text documents it: {key{id, fromMe, remoteJid},
 * status:"PENDING", message{extendedTextMessage{text}}, messageTimestamp (seconds, text)}. */
static json_t *render_sent(const wg_core_queued_t *q, json_t *request)
{
    char ts[24];
    const char *text = json_string_value(json_object_get(request, "text"));
    snprintf(ts, sizeof(ts), "%lld", (long long)(q->sent.acked_at / 1000));
    return json_pack("{s:{s:s, s:b, s:s}, s:s, s:{s:{s:s}}, s:s}", "key", "id",
                     q->sent.message_id, "fromMe", 1, "remoteJid", q->send.to, "status",
                     "PENDING", "message", "extendedTextMessage", "text", text ? text : "",
                     "messageTimestamp", ts);
}

/* Laravel's "required|string" on key (label: its words). */
static void need_string(json_t *root, const char *key, const char *label, json_t *errors)
{
    char m[120];
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)))
        snprintf(m, sizeof(m), "The %s field is required.", label);
    else if (!json_is_string(v))
        snprintf(m, sizeof(m), "The %s field must be a string.", label);
    else
        return;
    add_error(errors, key, m);
}

/* The body's fields checked as Hypersender's validation does; errors gets one entry per
 * failing rule. */
static void check_send_body(json_t *root, json_t *errors)
{
    static const char *const flags[][2] = {
        {"link_preview", "link preview"},
        {"link_preview_high_quality", "link preview high quality"}};
    char m[96];
    need_string(root, "chatId", "chat id", errors);
    need_string(root, "text", "text", errors);
    json_t *rt = json_object_get(root, "reply_to");
    if (rt && !json_is_null(rt) && !json_is_string(rt))
        add_error(errors, "reply_to", "The reply to field must be a string.");
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        json_t *v = json_object_get(root, flags[i][0]);
        snprintf(m, sizeof(m), "The %s field must be true or false.", flags[i][1]);
        if (v && !json_is_null(v) && !json_is_boolean(v))
            add_error(errors, flags[i][0], m);
    }
}

/* POST /{id}/send-text: checked and handed to the engine at once; the answer names the queued
 * request whose outcome GET /{id}/queued-requests/{uuid} gives. A request the core refuses
 * (validation, not connected) is answered at once with its error, as Hypersender validates
 * before queueing. */
static void h_send_text(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    wg_core_err_t err = {0};
    json_t *root = NULL, *errors = json_object();
    wg_core_send_text_t m = {0};
    char id[40], origin[300], link[600], *req = NULL;
    int st;
    if (hs_instance(r, c, "send", c->cfg->rate_write, &a, &in) != 0) {
        json_decref(errors);
        return;
    }
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0)
        root = json_object(); /* every required field then fails with its own message */
    check_send_body(root, errors);
    if (json_object_size(errors)) {
        fail_422(r, errors);
        errors = NULL;
        goto out;
    }
    m.to = json_string_value(json_object_get(root, "chatId"));
    m.text = json_string_value(json_object_get(root, "text"));
    m.quoted_id = json_string_value(json_object_get(root, "reply_to"));
    if (!(req = json_dumps(root, JSON_COMPACT))) {
        fail(r, 500, "Server Error");
        goto out;
    }
    if (wg_core_send_enqueue(c->core, &in, &m, req, id, &err) != 0) {
        json_t *body = send_error(&err, &st);
        respond(r, st, body);
        goto out;
    }
    wg_dialect_origin(r, c, origin, sizeof(origin));
    snprintf(link, sizeof(link), "%s/hypersender/%s/queued-requests/%s", origin, in.id, id);
    respond(r, 200, json_pack("{s:b, s:s, s:s, s:s}", "queued", 1, "message",
                              "Processing your request...", "queued_request_uuid", id,
                              "queued_request_link", link));
out:
    free(req);
    json_decref(root);
    json_decref(errors);
    wg_instance_dispose(&in);
}

/* GET /{id}/queued-requests/{uuid} -> {uuid, request, response_status, response_body,
 * response_header}; the last three are null while the send is under way. */
static void h_queued(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    wg_core_err_t err = {0};
    wg_core_queued_t q;
    json_t *request, *status = json_null(), *body = json_null(), *header = json_null();
    int st;
    if (hs_instance(r, c, "queued", c->cfg->rate_read, &a, &in) != 0)
        return;
    if (wg_core_send_queued(c->core, in.id, r->params[1], &q, &err) != 0) {
        fail(r, err.status == 404 ? 404 : 500,
             err.status == 404 ? "Queued request not found." : "Server Error");
        wg_instance_dispose(&in);
        return;
    }
    if (!(request = json_loads(q.request, 0, NULL)))
        request = json_object();
    if (q.state != WG_QUEUED_PENDING) {
        char date[40];
        time_t t = (time_t)(q.ended_at / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        body = q.state == WG_QUEUED_SENT ? render_sent(&q, request) : send_error(&q.err, &st);
        status = json_integer(q.state == WG_QUEUED_SENT ? 201 : st);
        header = json_pack("{s:[s], s:[s]}", "date", date, "content-type", "application/json");
    }
    respond(r, 200, json_pack("{s:s, s:o, s:o, s:o, s:o}", "uuid", q.id, "request", request,
                              "response_status", status, "response_body", body,
                              "response_header", header));
    wg_core_queued_dispose(&q);
    wg_instance_dispose(&in);
}

static const wg_route_t routes[] = {
    {WG_HTTP_POST, "/create-instance", h_create, RC_WRITE},
    {WG_HTTP_GET, "/instances", h_list, RC_READ},
    {WG_HTTP_GET, "/{id}/health", h_health, RC_READ},
    {WG_HTTP_POST, "/{id}/request-new-qr-code", h_new_qr, RC_WRITE},
    {WG_HTTP_POST, "/{id}/restart", h_restart, RC_WRITE},
    {WG_HTTP_POST, "/{id}/logout", h_logout, RC_WRITE},
    {WG_HTTP_DELETE, "/{id}", h_delete, RC_WRITE},
    {WG_HTTP_POST, "/{id}/send-text", h_send_text, RC_WRITE},
    {WG_HTTP_GET, "/{id}/queued-requests/{uuid}", h_queued, RC_READ},
};
static const size_t nroutes = sizeof(routes) / sizeof(routes[0]);

const wg_dialect_t wg_dialect_hypersender = {"hypersender", "/hypersender", routes, &nroutes,
                                             hs_error};
