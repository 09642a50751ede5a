/* evolution.c - the Evolution API v2 dialect, mounted at /evolution (and at / with
 * WAGATE_ROOT_DIALECT=evolution). Routes (relative to the mount point):
 *   POST   /instance/create
 *   GET    /instance/connect/{name}          GET /instance/connectionState/{name}
 *   GET    /instance/fetchInstances[?instanceName=&instanceId=&number=]
 *   POST   /instance/restart/{name}          DELETE /instance/logout/{name}
 *   DELETE /instance/delete/{name}
 *   POST   /webhook/set/{name}   GET /webhook/find/{name}
 *   POST   /settings/set/{name}  GET /settings/find/{name}
 *   POST   /proxy/set/{name}     GET /proxy/find/{name}
 *   POST   /instance/setPresence/{name} {presence}
 *   POST   /message/sendText/{name} {number, text, delay?, quoted?} (answers after the ack)
 * Auth: the `apikey` header (Bearer accepted too). The credential is checked before the name is
 * resolved, so an unauthenticated caller learns nothing about names; an instance token reaches
 * only its own instance (any other name: 401, like a wrong key). Errors render as
 * {status, error, response:{message:[...]}}; core validation errors (422) become 400.
 * Parsing and rendering only: rules live in core/. */
#include "api/dialect.h"
#include "api/render.h"
#include "core/validate.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RC_READ = 1, RC_WRITE = 2 };

static void respond(wg_http_req_t *r, int status, json_t *body)
{
    json_decref(r->json);
    r->status = status;
    r->json = body;
}

static void fail(wg_http_req_t *r, int status, const char *msg)
{
    respond(r, status, wg_render_error_evolution(status, msg));
}

static void evo_error(wg_http_req_t *r, void *ctx, int status, const char *code, const char *msg)
{
    (void)ctx;
    (void)code;
    char m[300];
    if (status == 404 && !r->route) /* Express/NestJS wording, as Evolution answers */
        snprintf(m, sizeof(m), "Cannot %s %s", r->method_name ? r->method_name : "GET",
                 r->path ? r->path : "/");
    else
        snprintf(m, sizeof(m), "%s", msg);
    fail(r, status, m);
}

/* A core error in Evolution's terms (name: the instance name the request used, may be NULL). */
static void fail_core(wg_http_req_t *r, const wg_core_err_t *e, const char *name)
{
    char m[300];
    int st = e->status ? e->status : 500;
    const char *code = e->code ? e->code : "";
    snprintf(m, sizeof(m), "%s", e->message);
    if (e->taken && !strcmp(e->field, "name")) {
        st = 403;
        snprintf(m, sizeof(m), "This name \"%.100s\" is already in use.", name ? name : "");
    } else if (!strcmp(code, "not_found")) {
        snprintf(m, sizeof(m), "The \"%.100s\" instance does not exist", name ? name : "");
    } else if (st == 401) {
        snprintf(m, sizeof(m), "Unauthorized");
    } else if (st == 422 || st == 409) {
        st = 400;
        if (!strcmp(e->field, "integration"))
            snprintf(m, sizeof(m), "Invalid integration");
        else if (!strncmp(e->field, "proxy", 5))
            snprintf(m, sizeof(m), "Invalid proxy: %s", e->message);
    }
    fail(r, st, m);
}

/* Authenticates and applies the read/write limit per credential. 0, or the response is set. */
static int evo_auth(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a)
{
    wg_core_err_t err = {0};
    char key[120];
    int retry;
    if (wg_dialect_auth(r, c, a, &err) != 0) {
        fail_core(r, &err, NULL);
        return WG_EPERM;
    }
    int rc = r->route ? WG_DIALECT_RC(r->route->rclass) : RC_READ;
    snprintf(key, sizeof(key), "evo%d:%s", rc,
             a->kind == WG_AUTH_INSTANCE ? a->instance_id : a->account_id);
    if (wg_dialect_limit(r, c, key, rc == RC_WRITE ? c->cfg->rate_write : c->cfg->rate_read,
                         &retry) != 0) {
        fail(r, 429, "Too many requests; retry later");
        return WG_ELIMIT;
    }
    return 0;
}

/* Auth, then the {name} of the path resolved for that credential. 0, or the response is set. */
static int evo_instance(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, wg_instance_t *in)
{
    wg_core_err_t err = {0};
    if (evo_auth(r, c, a) != 0)
        return WG_EPERM;
    if (wg_core_instance_by_name(c->core, a, r->params[0], in, &err) != 0) {
        fail_core(r, &err, r->params[0]);
        return WG_ENOTFOUND;
    }
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", in->id);
    return 0;
}

static json_t *proxy_from(json_t *root, int prefixed);

/* ---- rendering ---- */

static json_t *render_settings(const wg_instance_t *in)
{
    static const char *const keys[] = {"rejectCall",   "msgCall",      "groupsIgnore",
                                       "alwaysOnline", "readMessages", "readStatus",
                                       "syncFullHistory"};
    json_t *s = wg_render_json_column(in->settings), *o = json_object();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(s, keys[i]);
        json_object_set(o, keys[i], v ? v : (i == 1 ? json_string("") : json_false()));
    }
    json_decref(s);
    return o;
}

/* {pairingCode, code, base64 "data:image/png;base64,…", count} or NULL when no QR is shown. */
static json_t *render_qrcode(wg_api_ctx_t *c, const char *id)
{
    char *code = NULL, *b64 = NULL;
    int64_t exp;
    if (wg_render_qr(c->core, id, &code, &b64, &exp) != 0)
        return NULL;
    size_t len = strlen(b64) + 32;
    char *uri = malloc(len);
    json_t *o = NULL;
    if (uri) {
        snprintf(uri, len, "data:image/png;base64,%s", b64);
        /* count: how many QR codes this answer has shown (Evolution counts per connect) */
        o = json_pack("{s:n, s:s, s:s, s:i}", "pairingCode", "code", code, "base64", uri,
                      "count", 1);
    }
    free(uri);
    free(code);
    free(b64);
    return o;
}

static json_t *render_state(const wg_instance_t *in)
{
    return json_pack("{s:{s:s, s:s}}", "instance", "instanceName", in->name, "state",
                     wg_render_status_evolution(in->status));
}

static json_t *render_fetch_item(const wg_instance_t *in)
{
    char num[32] = "";
    if (in->phone)
        snprintf(num, sizeof(num), "%s", in->phone[0] == '+' ? in->phone + 1 : in->phone);
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:n, s:s, s:o, s:o, s:o}", "id",
                     in->id, "name", in->name, "connectionStatus",
                     wg_render_status_evolution(in->status), "ownerJid", wg_render_str(in->jid),
                     "profileName", wg_render_str(in->push_name), "profilePicUrl",
                     wg_render_str(in->profile_pic_url), "integration",
                     in->integration ? in->integration : "WHATSAPP-BAILEYS", "number",
                     num[0] ? json_string(num) : json_null(), "businessId", "clientName",
                     "wagate", "createdAt", wg_render_time_json(in->created_at), "updatedAt",
                     wg_render_time_json(in->updated_at), "Setting", render_settings(in));
}

/* ---- create ---- */

/* Evolution's event names and the core event each one selects (NULL: accepted, nothing of
 * ours produces it yet). */
static const struct {
    const char *evo, *core;
} event_map[] = {
    {"APPLICATION_STARTUP", NULL},
    {"QRCODE_UPDATED", "qr.updated"},
    {"MESSAGES_SET", NULL},
    {"MESSAGES_UPSERT", "message.received"},
    {"MESSAGES_EDITED", NULL},
    {"MESSAGES_UPDATE", "message.ack"},
    {"MESSAGES_DELETE", "message.deleted"},
    {"SEND_MESSAGE", "message.sent"},
    {"SEND_MESSAGE_UPDATE", "message.ack"},
    {"CONTACTS_SET", NULL},
    {"CONTACTS_UPSERT", "contact.updated"},
    {"CONTACTS_UPDATE", "contact.updated"},
    {"PRESENCE_UPDATE", "presence.updated"},
    {"CHATS_SET", NULL},
    {"CHATS_UPSERT", NULL},
    {"CHATS_UPDATE", NULL},
    {"CHATS_DELETE", NULL},
    {"GROUPS_UPSERT", "group.updated"},
    {"GROUP_UPDATE", "group.updated"},
    {"GROUP_PARTICIPANTS_UPDATE", "group.updated"},
    {"CONNECTION_UPDATE", "connection.updated"},
    {"LABELS_EDIT", NULL},
    {"LABELS_ASSOCIATION", NULL},
    {"CALL", "call.received"},
    {"LOGOUT_INSTANCE", "connection.updated"},
    {"REMOVE_INSTANCE", "instance.deleted"},
    {"TYPEBOT_START", NULL},
    {"TYPEBOT_CHANGE_STATUS", NULL},
};

/* Evolution event names -> new array of core names (*out). 0 or WG_EINVAL (message in m). */
static int map_events(json_t *in, json_t **out, char *m, size_t cap)
{
    size_t i;
    json_t *v;
    *out = NULL;
    if (!json_is_array(in)) {
        snprintf(m, cap, "webhook.events must be an array");
        return WG_EINVAL;
    }
    json_t *a = json_array();
    json_array_foreach(in, i, v)
    {
        const char *s = json_string_value(v);
        size_t k;
        for (k = 0; s && k < sizeof(event_map) / sizeof(event_map[0]); k++)
            if (!strcmp(s, event_map[k].evo))
                break;
        if (!s || k == sizeof(event_map) / sizeof(event_map[0])) {
            snprintf(m, cap, "webhook.events[%zu] is not a valid event: %.60s", i,
                     s ? s : "(not a string)");
            json_decref(a);
            return WG_EINVAL;
        }
        if (event_map[k].core)
            json_array_append_new(a, json_string(event_map[k].core));
    }
    *out = a;
    return 0;
}

typedef struct {
    json_t *body; /* the 201 body, qrcode added when the QR shows */
} create_wait_t;

static void create_wait_free(void *arg)
{
    create_wait_t *w = arg;
    json_decref(w->body);
    free(w);
}

static void create_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in, void *arg)
{
    create_wait_t *w = arg;
    json_t *q = render_qrcode(c, in->id);
    json_object_set_new(json_object_get(w->body, "instance"), "status",
                        json_string(wg_render_status_evolution(in->status)));
    json_object_set_new(w->body, "qrcode", q ? q : json_pack("{s:i}", "count", 0));
    respond(r, 201, w->body);
    w->body = NULL;
}

static const char *str_of(json_t *root, const char *key)
{
    return json_string_value(json_object_get(root, key));
}

static void h_create(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    json_t *root = NULL, *settings = json_object(), *opts = json_object(), *events = NULL;
    json_t *proxy = NULL;
    wg_instance_spec_t spec;
    wg_instance_t in = {0};
    char *token = NULL, m[200], phone[40];
    static const char *const skeys[] = {"rejectCall",   "msgCall",    "groupsIgnore",
                                        "alwaysOnline", "readMessages", "readStatus",
                                        "syncFullHistory"};
    if (evo_auth(r, c, &a) != 0)
        goto out;
    if (a.kind == WG_AUTH_INSTANCE) {
        fail(r, 401, "Unauthorized");
        goto out;
    }
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0) {
        fail(r, 400, "request body must be a JSON object");
        goto out;
    }
    memset(&spec, 0, sizeof(spec));
    spec.dialect = "evolution";
    spec.owner_id = a.kind == WG_AUTH_ACCOUNT ? a.account_id : WG_ADMIN_ACCOUNT_ID;
    json_t *nm = json_object_get(root, "instanceName");
    if (!json_is_string(nm) || !json_string_length(nm)) {
        fail(r, 400, "instanceName is required");
        goto out;
    }
    spec.name = json_string_value(nm);
    spec.token = str_of(root, "token");
    if (spec.token && !*spec.token)
        spec.token = NULL;
    spec.integration = str_of(root, "integration");
    json_t *integ = json_object_get(root, "integration");
    if (integ && !json_is_null(integ) && !json_is_string(integ)) {
        fail(r, 400, "Invalid integration");
        goto out;
    }
    const char *num = str_of(root, "number");
    if (num && *num) { /* Evolution numbers have no '+'; the core wants E.164 */
        snprintf(phone, sizeof(phone), "%s%.36s", num[0] == '+' ? "" : "+", num);
        spec.phone = phone;
    }
    for (size_t i = 0; i < sizeof(skeys) / sizeof(skeys[0]); i++) {
        json_t *v = json_object_get(root, skeys[i]);
        if (v && !json_is_null(v))
            json_object_set(settings, skeys[i], v);
    }
    spec.settings = settings;
    json_t *wh = json_object_get(root, "webhook");
    if (wh && !json_is_null(wh)) {
        if (!json_is_object(wh)) {
            fail(r, 400, "webhook must be an object");
            goto out;
        }
        spec.webhook_url = str_of(wh, "url");
        json_t *ev = json_object_get(wh, "events");
        if (ev && !json_is_null(ev)) {
            if (map_events(ev, &events, m, sizeof(m)) != 0) {
                fail(r, 400, m);
                goto out;
            }
            spec.webhook_events = events;
        }
        json_t *be = json_object_get(wh, "byEvents"), *b64 = json_object_get(wh, "base64");
        if (be && !json_is_null(be))
            json_object_set(opts, "byEvents", be);
        if (b64 && !json_is_null(b64))
            json_object_set(opts, "base64", b64);
        json_t *hd = json_object_get(wh, "headers"); /* sent with each delivery (core checks) */
        if (hd && !json_is_null(hd))
            json_object_set(opts, "headers", hd);
        spec.webhook_opts = opts;
    }
    proxy = proxy_from(root, 1);
    spec.proxy = proxy;
    if (wg_core_instance_create(c->core, &spec, &in, &token, &err) != 0) {
        fail_core(r, &err, spec.name);
        goto out;
    }
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", in.id);
    json_t *whj = wg_render_json_column(in.webhook);
    json_t *wurl = json_object_get(whj, "url");
    json_t *hdrs = json_object_get(wh, "headers"), *evs = json_object_get(wh, "events");
    json_t *webhook =
        json_is_string(wurl)
            ? json_pack("{s:O, s:o, s:b, s:b, s:o}", "webhookUrl", wurl, "webhookHeaders",
                        json_is_object(hdrs) ? json_incref(hdrs) : json_object(),
                        "webhookByEvents", json_is_true(json_object_get(whj, "byEvents")),
                        "webhookBase64", json_is_true(json_object_get(whj, "base64")), "events",
                        json_is_array(evs) ? json_incref(evs) : json_array())
            : json_object();
    json_decref(whj);
    json_t *body = json_pack(
        "{s:{s:s, s:s, s:s, s:n, s:s, s:s}, s:s, s:o, s:{s:b}, s:{s:b}, s:{s:b}, s:o}",
        "instance", "instanceName", in.name, "instanceId", in.id, "integration",
        in.integration ? in.integration : "WHATSAPP-BAILEYS", "webhookWaBusiness",
        "accessTokenWaBusiness", "", "status", wg_render_status_evolution(in.status), "hash",
        token, "webhook", webhook, "rabbitmq", "enabled", 0, "nats", "enabled", 0, "sqs",
        "enabled", 0, "settings", render_settings(&in));
    if (!json_is_true(json_object_get(root, "qrcode"))) {
        respond(r, 201, body);
        goto out;
    }
    create_wait_t *w = calloc(1, sizeof(*w));
    if (w)
        w->body = body;
    if (!w || !wg_dialect_wait_qr(r, c, in.id, c->cfg->qr_wait_ms > 0 ? c->cfg->qr_wait_ms : 10000,
                                  create_done, w, create_wait_free)) {
        if (w)
            create_done(r, c, &in, w), create_wait_free(w);
        else
            respond(r, 201, body);
    }
out:
    json_decref(root);
    json_decref(settings);
    json_decref(opts);
    json_decref(events);
    json_decref(proxy);
    wg_instance_dispose(&in);
    free(token);
}

/* ---- lifecycle ---- */

static void connect_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in, void *arg)
{
    (void)arg;
    json_t *q = strcmp(in->status, WG_STATUS_WORKING) ? render_qrcode(c, in->id) : NULL;
    respond(r, 200, q ? q : render_state(in));
}

static void h_connect(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, now = {0};
    wg_core_err_t err = {0};
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    if (!strcmp(in.status, WG_STATUS_STOPPED) || !strcmp(in.status, WG_STATUS_FAILED)) {
        /* Evolution's connect (re)starts a closed instance and answers with its first QR */
        if (wg_core_instance_action(c->core, &a, in.id, WG_ACTION_START, &now, &err) != 0) {
            fail_core(r, &err, in.name);
            goto out;
        }
        wg_instance_dispose(&now);
    }
    if (!strcmp(in.status, WG_STATUS_WORKING) ||
        !wg_dialect_wait_qr(r, c, in.id, c->cfg->qr_wait_ms > 0 ? c->cfg->qr_wait_ms : 10000,
                            connect_done, NULL, NULL))
        connect_done(r, c, &in, NULL);
out:
    wg_instance_dispose(&in);
}

static void h_state(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    respond(r, 200, render_state(&in));
    wg_instance_dispose(&in);
}

static void h_fetch(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    char name[128], id[64], num[40];
    int has_name, has_id, has_num;
    if (evo_auth(r, c, &a) != 0)
        return;
    has_name = wg_http_query_get(r->query, "instanceName", name, sizeof(name)) == 0 && name[0];
    has_id = wg_http_query_get(r->query, "instanceId", id, sizeof(id)) == 0 && id[0];
    has_num = wg_http_query_get(r->query, "number", num, sizeof(num)) == 0 && num[0];
    json_t *arr = json_array();
    for (int64_t page = 1;; page++) {
        wg_instance_t *v = NULL;
        size_t n = 0;
        int64_t total = 0;
        if (wg_core_instance_list(c->core, &a, NULL, has_name ? name : NULL, page, 100, &v, &n,
                                  &total, &err) != 0) {
            json_decref(arr);
            fail_core(r, &err, NULL);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            const char *ph = v[i].phone ? v[i].phone + (v[i].phone[0] == '+') : "";
            if ((has_name && strcmp(v[i].name, name)) || (has_id && strcmp(v[i].id, id)) ||
                (has_num && strcmp(ph, num + (num[0] == '+'))))
                continue;
            json_array_append_new(arr, render_fetch_item(&v[i]));
        }
        wg_instance_list_free(v, n);
        if (page * 100 >= total)
            break;
    }
    respond(r, 200, arr);
}

static void act(wg_http_req_t *r, void *ctx, wg_action_t what)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, out = {0};
    wg_core_err_t err = {0};
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    if (what == WG_ACTION_LOGOUT && strcmp(in.status, WG_STATUS_WORKING)) {
        char m[200];
        snprintf(m, sizeof(m), "The \"%.100s\" instance is not connected", in.name);
        fail(r, 400, m);
        goto done;
    }
    if (wg_core_instance_action(c->core, &a, in.id, what, &out, &err) != 0) {
        fail_core(r, &err, in.name);
        goto done;
    }
    if (what == WG_ACTION_LOGOUT)
        respond(r, 200, json_pack("{s:s, s:b, s:{s:s}}", "status", "SUCCESS", "error", 0,
                                  "response", "message", "Instance logged out"));
    else
        respond(r, 200, render_state(&out));
done:
    wg_instance_dispose(&in);
    wg_instance_dispose(&out);
}

static void h_restart(wg_http_req_t *r, void *ctx)
{
    act(r, ctx, WG_ACTION_RESTART);
}

static void h_logout(wg_http_req_t *r, void *ctx)
{
    act(r, ctx, WG_ACTION_LOGOUT);
}

static void h_delete(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    wg_core_err_t err = {0};
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    if (wg_core_instance_delete(c->core, &a, in.id, &err) != 0)
        fail_core(r, &err, in.name);
    else
        respond(r, 200, json_pack("{s:s, s:b, s:{s:s}}", "status", "SUCCESS", "error", 0,
                                  "response", "message", "Instance deleted"));
    wg_instance_dispose(&in);
}

/* ---- webhook and settings ---- */

/* {enabled, url, events (Evolution names), webhookByEvents, webhookBase64, headers} of the
 * instance. */
static json_t *render_webhook(const wg_instance_t *in)
{
    json_t *wh = wg_render_json_column(in->webhook), *evs = json_array();
    json_t *url = json_object_get(wh, "url"), *ce = json_object_get(wh, "events");
    size_t i;
    json_t *v;
    /* core event -> the first Evolution name that selects it */
    json_array_foreach(ce, i, v)
    {
        for (size_t k = 0; k < sizeof(event_map) / sizeof(event_map[0]); k++)
            if (event_map[k].core && !strcmp(event_map[k].core, json_string_value(v))) {
                json_array_append_new(evs, json_string(event_map[k].evo));
                break;
            }
    }
    json_t *o = json_pack("{s:b, s:O, s:o, s:b, s:b}", "enabled", json_is_string(url), "url",
                          json_is_string(url) ? url : json_null(), "events", evs,
                          "webhookByEvents", json_is_true(json_object_get(wh, "byEvents")),
                          "webhookBase64", json_is_true(json_object_get(wh, "base64")));
    json_t *hd = json_object_get(wh, "headers");
    json_object_set_new(o, "headers", json_is_object(hd) ? json_incref(hd) : json_object());
    json_decref(wh);
    return o;
}

static void h_webhook_set(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, out = {0};
    wg_core_err_t err = {0};
    wg_instance_patch_t p;
    json_t *root = NULL, *events = NULL, *opts = json_object();
    char m[200];
    if (evo_instance(r, c, &a, &in) != 0) {
        json_decref(opts);
        return;
    }
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0) {
        fail(r, 400, "request body must be a JSON object");
        goto out;
    }
    /* v2 wraps the fields in "webhook"; v1 clients send them at the top level */
    json_t *wh = json_object_get(root, "webhook");
    if (!json_is_object(wh))
        wh = root;
    memset(&p, 0, sizeof(p));
    json_t *en = json_object_get(wh, "enabled");
    const char *url = json_string_value(json_object_get(wh, "url"));
    p.set_webhook_url = 1;
    p.webhook_url = json_is_false(en) ? NULL : url;
    if (!json_is_false(en) && !url) {
        fail(r, 400, "webhook.url is required when the webhook is enabled");
        goto out;
    }
    json_t *ev = json_object_get(wh, "events");
    if (ev && !json_is_null(ev)) {
        if (map_events(ev, &events, m, sizeof(m)) != 0) {
            fail(r, 400, m);
            goto out;
        }
        p.webhook_events = events;
    }
    json_t *be = json_object_get(wh, "byEvents"), *b64 = json_object_get(wh, "base64");
    if (!be)
        be = json_object_get(wh, "webhookByEvents");
    if (!b64)
        b64 = json_object_get(wh, "webhookBase64");
    if (be && !json_is_null(be))
        json_object_set(opts, "byEvents", be);
    if (b64 && !json_is_null(b64))
        json_object_set(opts, "base64", b64);
    json_t *hd = json_object_get(wh, "headers");
    if (!hd)
        hd = json_object_get(wh, "webhookHeaders");
    if (hd) /* null clears them */
        json_object_set(opts, "headers", hd);
    p.webhook_opts = json_object_size(opts) ? opts : NULL;
    if (wg_core_instance_update(c->core, &a, in.id, &p, &out, &err) != 0) {
        fail_core(r, &err, in.name);
        goto out;
    }
    respond(r, 201, render_webhook(&out));
out:
    json_decref(root);
    json_decref(events);
    json_decref(opts);
    wg_instance_dispose(&in);
    wg_instance_dispose(&out);
}

static void h_webhook_find(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    respond(r, 200, render_webhook(&in));
    wg_instance_dispose(&in);
}

static void h_settings_set(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, out = {0};
    wg_core_err_t err = {0};
    wg_instance_patch_t p;
    json_t *root = NULL, *s = json_object();
    static const char *const skeys[] = {"rejectCall",   "msgCall",      "groupsIgnore",
                                        "alwaysOnline", "readMessages", "readStatus",
                                        "syncFullHistory"};
    if (evo_instance(r, c, &a, &in) != 0) {
        json_decref(s);
        return;
    }
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0) {
        fail(r, 400, "request body must be a JSON object");
        goto out;
    }
    json_t *src = json_is_object(json_object_get(root, "settings"))
                      ? json_object_get(root, "settings")
                      : root;
    for (size_t i = 0; i < sizeof(skeys) / sizeof(skeys[0]); i++) {
        json_t *v = json_object_get(src, skeys[i]);
        if (v && !json_is_null(v))
            json_object_set(s, skeys[i], v);
    }
    memset(&p, 0, sizeof(p));
    p.settings = s;
    if (wg_core_instance_update(c->core, &a, in.id, &p, &out, &err) != 0) {
        fail_core(r, &err, in.name);
        goto out;
    }
    respond(r, 201, json_pack("{s:{s:s, s:o}}", "settings", "instanceName", out.name,
                              "settings", render_settings(&out)));
out:
    json_decref(root);
    json_decref(s);
    wg_instance_dispose(&in);
    wg_instance_dispose(&out);
}

static void h_settings_find(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    respond(r, 200, render_settings(&in));
    wg_instance_dispose(&in);
}

/* ---- proxy ---- */

/* Evolution's proxy fields (proxyHost… on create, host… on /proxy/set) -> a new core proxy
 * object, or NULL when no host is given. */
static json_t *proxy_from(json_t *root, int prefixed)
{
    static const char *const k[][2] = {{"proxyHost", "host"},
                                       {"proxyPort", "port"},
                                       {"proxyProtocol", "protocol"},
                                       {"proxyUsername", "username"},
                                       {"proxyPassword", "password"}};
    json_t *o = NULL;
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        json_t *v = json_object_get(root, k[i][prefixed ? 0 : 1]);
        if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)))
            continue;
        if (!o)
            o = json_object();
        json_object_set(o, k[i][1], v);
    }
    return o;
}

/* {enabled, host, port (text, as Evolution), protocol, username}; the password never leaves. */
static const char *str_or_empty(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static json_t *render_proxy(const wg_instance_t *in)
{
    json_t *p = wg_render_json_column(in->proxy);
    char port[16] = "";
    if (json_is_integer(json_object_get(p, "port")))
        snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(json_object_get(p, "port")));
    json_t *o = json_pack("{s:b, s:s, s:s, s:s, s:s}", "enabled", json_is_object(p), "host",
                          str_or_empty(p, "host"), "port", port, "protocol",
                          str_or_empty(p, "protocol"), "username", str_or_empty(p, "username"));
    json_decref(p);
    return o;
}

static void h_proxy_set(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, out = {0};
    wg_core_err_t err = {0};
    wg_instance_patch_t p;
    json_t *root = NULL, *px = NULL;
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0) {
        fail(r, 400, "request body must be a JSON object");
        goto out;
    }
    memset(&p, 0, sizeof(p));
    p.set_proxy = 1;
    if (!json_is_false(json_object_get(root, "enabled"))) {
        if (!(px = proxy_from(root, 0))) {
            fail(r, 400, "Invalid proxy: host is required");
            goto out;
        }
        p.proxy = px;
    }
    if (wg_core_instance_update(c->core, &a, in.id, &p, &out, &err) != 0) {
        fail_core(r, &err, in.name);
        goto out;
    }
    respond(r, 201, render_proxy(&out));
out:
    json_decref(root);
    json_decref(px);
    wg_instance_dispose(&in);
    wg_instance_dispose(&out);
}

static void h_proxy_find(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    respond(r, 200, render_proxy(&in));
    wg_instance_dispose(&in);
}

/* ---- messages and presence (the rules are core/send.c's) ---- */

/* jsonschema's wording, which Evolution returns for a body that fails its schema */
static void require_string(json_t *root, const char *key, const char *bad_type, json_t *msgs)
{
    char m[80];
    json_t *v = json_object_get(root, key);
    if (!v)
        snprintf(m, sizeof(m), "instance requires property \"%s\"", key);
    else if (!json_is_string(v))
        snprintf(m, sizeof(m), "%s", bad_type);
    else
        return;
    json_array_append_new(msgs, json_string(m));
}

/* 400 with the messages collected (steals msgs) */
static void fail_list(wg_http_req_t *r, json_t *msgs)
{
    respond(r, 400, json_pack("{s:i, s:s, s:{s:o}}", "status", 400, "error", "Bad Request",
                              "response", "message", msgs));
}

/* Evolution answers a recipient it cannot reach with its onWhatsApp lookup:
 * 400 {message:[{jid, exists:false, number}]}. */
static void fail_number(wg_http_req_t *r, const char *number)
{
    char jid[200];
    if (strchr(number, '@'))
        snprintf(jid, sizeof(jid), "%s", number);
    else
        snprintf(jid, sizeof(jid), "%.100s@s.whatsapp.net", number + (number[0] == '+'));
    fail_list(r, json_pack("[{s:s, s:b, s:s}]", "jid", jid, "exists", 0, "number", number));
}

/* A core send error in Evolution's terms (number: the recipient, NULL when none).
 * not_connected: the words Evolution's Baileys socket throws ("Connection Closed"), as a 400
 * rather than its unhandled 500. */
static void fail_send(wg_http_req_t *r, const wg_core_err_t *e, const char *number,
                      const char *not_connected)
{
    const char *code = e->code ? e->code : "";
    if (number && (!strcmp(code, "not_on_whatsapp") ||
                   (e->status == 422 && !strcmp(e->field, "to"))))
        fail_number(r, number);
    else if (!strcmp(code, "instance_not_connected"))
        fail(r, 400, not_connected);
    else
        fail_core(r, e, NULL);
}

typedef struct {
    json_t *root; /* the request body: number and text are echoed back */
    char instance_id[64];
    char *push_name;
} evo_send_arg_t;

static void evo_send_arg_free(void *p)
{
    evo_send_arg_t *a = p;
    json_decref(a->root);
    free(a->push_name);
    free(a);
}

/* 201 with the message record Evolution stores and returns: {key{remoteJid, fromMe, id},
 * pushName, status:"PENDING", message{conversation}, messageType, messageTimestamp (seconds),
 * instanceId, source}. The status is PENDING as in Evolution (its SEND_MESSAGE_UPDATE events
 * carry the acks), though wagate answers once the server took the message. pushName: the
 * instance's profile name, else Evolution's own placeholder for fromMe messages. */
static void send_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_core_send_t *s,
                      const wg_core_sent_t *sent, const wg_core_err_t *err, void *arg)
{
    evo_send_arg_t *a = arg;
    (void)c;
    if (!sent) {
        fail_send(r, err, str_of(a->root, "number"), "Connection Closed");
        return;
    }
    respond(r, 201,
            json_pack("{s:{s:s, s:b, s:s}, s:s, s:s, s:{s:s}, s:s, s:I, s:s, s:s}", "key",
                      "remoteJid", s->to, "fromMe", 1, "id", sent->message_id, "pushName",
                      a->push_name ? a->push_name : "Você", "status", "PENDING", "message",
                      "conversation", str_of(a->root, "text"), "messageType", "conversation",
                      "messageTimestamp", (json_int_t)(sent->acked_at / 1000), "instanceId",
                      a->instance_id, "source", "web"));
}

static void h_send_text(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    wg_core_err_t err = {0};
    json_t *root = NULL, *msgs = json_array();
    wg_core_send_text_t m = {0};
    evo_send_arg_t *arg = NULL;
    if (evo_instance(r, c, &a, &in) != 0) {
        json_decref(msgs);
        return;
    }
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0) {
        fail(r, 400, "request body must be a JSON object");
        goto out;
    }
    require_string(root, "number", "Invalid format", msgs);
    require_string(root, "text", "text is not of a type(s) string", msgs);
    json_t *delay = json_object_get(root, "delay");
    if (delay && !json_is_integer(delay))
        json_array_append_new(msgs, json_string("delay is not of a type(s) integer"));
    if (json_array_size(msgs)) {
        fail_list(r, msgs);
        msgs = NULL;
        goto out;
    }
    m.to = str_of(root, "number");
    m.text = str_of(root, "text");
    m.delay = delay;
    m.quoted_id = str_of(json_object_get(json_object_get(root, "quoted"), "key"), "id");
    if (!wg_valid_text(m.text, WG_SEND_MAX_TEXT)) { /* Evolution: text.trim() must be left */
        fail(r, 400, "Text is required");
        goto out;
    }
    if (!(arg = calloc(1, sizeof(*arg)))) {
        fail(r, 500, "out of memory");
        goto out;
    }
    arg->root = json_incref(root);
    snprintf(arg->instance_id, sizeof(arg->instance_id), "%s", in.id);
    arg->push_name = in.push_name ? strdup(in.push_name) : NULL;
    if (wg_dialect_send_text(r, c, &in, &m, send_done, arg, evo_send_arg_free, &err) != 0) {
        fail_send(r, &err, m.to, "Connection Closed");
        evo_send_arg_free(arg);
    }
out:
    json_decref(root);
    json_decref(msgs);
    wg_instance_dispose(&in);
}

static void h_set_presence(wg_http_req_t *r, void *ctx)
{
    static const char *const states[] = {"unavailable", "available", "composing", "recording",
                                         "paused"};
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    wg_core_err_t err = {0};
    json_t *root = NULL;
    size_t i;
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0) {
        fail(r, 400, "request body must be a JSON object");
        goto out;
    }
    json_t *p = json_object_get(root, "presence");
    const char *state = json_string_value(p);
    for (i = 0; state && i < sizeof(states) / sizeof(states[0]); i++)
        if (!strcmp(state, states[i]))
            break;
    if (!p) {
        fail(r, 400, "instance requires property \"presence\"");
        goto out;
    }
    if (!state || i == sizeof(states) / sizeof(states[0])) {
        fail(r, 400, json_is_string(p) ? "presence is not one of enum values: unavailable,"
                                         "available,composing,recording,paused"
                                       : "presence is not of a type(s) string");
        goto out;
    }
    /* Evolution's socket error when the connection is down, caught and wrapped */
    if (wg_core_send_presence(c->core, &in, state, NULL, &err) != 0)
        fail_send(r, &err, NULL, "Error: Connection Closed");
    else
        respond(r, 201, json_pack("{s:s}", "presence", state));
out:
    json_decref(root);
    wg_instance_dispose(&in);
}

static const wg_route_t routes[] = {
    {WG_HTTP_POST, "/instance/create", h_create, RC_WRITE},
    {WG_HTTP_GET, "/instance/connect/{name}", h_connect, RC_WRITE},
    {WG_HTTP_GET, "/instance/connectionState/{name}", h_state, RC_READ},
    {WG_HTTP_GET, "/instance/fetchInstances", h_fetch, RC_READ},
    {WG_HTTP_POST | WG_HTTP_PUT, "/instance/restart/{name}", h_restart, RC_WRITE},
    {WG_HTTP_DELETE, "/instance/logout/{name}", h_logout, RC_WRITE},
    {WG_HTTP_DELETE, "/instance/delete/{name}", h_delete, RC_WRITE},
    {WG_HTTP_POST, "/webhook/set/{name}", h_webhook_set, RC_WRITE},
    {WG_HTTP_GET, "/webhook/find/{name}", h_webhook_find, RC_READ},
    {WG_HTTP_POST, "/settings/set/{name}", h_settings_set, RC_WRITE},
    {WG_HTTP_GET, "/settings/find/{name}", h_settings_find, RC_READ},
    {WG_HTTP_POST, "/proxy/set/{name}", h_proxy_set, RC_WRITE},
    {WG_HTTP_GET, "/proxy/find/{name}", h_proxy_find, RC_READ},
    {WG_HTTP_POST, "/instance/setPresence/{name}", h_set_presence, RC_WRITE},
    {WG_HTTP_POST, "/message/sendText/{name}", h_send_text, RC_WRITE},
};
static const size_t nroutes = sizeof(routes) / sizeof(routes[0]);

const wg_dialect_t wg_dialect_evolution = {"evolution", "/evolution", routes, &nroutes,
                                           evo_error};
