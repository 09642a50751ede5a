/* enviaai.c - EnviaAI's connection routes on the native /v1 mount (the rest of EnviaAI is the
 * native API itself, api/native.c). Routes:
 *   POST /v1/instances/{id}/connect {method:"qrcode"} -> {status:"qr_pending", qrCode,
 *        qrCodeExpiresAt} (a stopped/failed instance is started; the answer waits for its QR)
 *   GET  /v1/instances/{id}/qrcode   GET /v1/instances/{id}/status
 *   POST /v1/instances/{id}/disconnect (logs the WhatsApp session out)
 *   POST /v1/messages/send {instanceId, to, message, quotedMessageId?} -> {success, messageId,
 *        status:"sent", timestamp} (answers after the server ack; media: 422)
 * Statuses in EnviaAI's words: connected | disconnected | connecting | qr_pending. Envelopes,
 * auth (Bearer / apikey; instance tokens reach their own instance only) and errors are the
 * native ones. */
#include "api/dialect.h"
#include "api/render.h"
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

static void fail_core(wg_http_req_t *r, const wg_core_err_t *e)
{
    respond(r, e->status ? e->status : 500,
            wg_render_error(e->code ? e->code : "internal_error", e->message, e->field));
}

/* Auth and the per-credential limit. 0, or the response is set. */
static int ea_auth(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a)
{
    wg_core_err_t err = {0};
    char key[120];
    int retry;
    if (wg_dialect_auth(r, c, a, &err) != 0) {
        fail_core(r, &err);
        return WG_EPERM;
    }
    int rc = r->route ? WG_DIALECT_RC(r->route->rclass) : RC_READ;
    snprintf(key, sizeof(key), "ea%d:%s", rc,
             a->kind == WG_AUTH_INSTANCE ? a->instance_id : a->account_id);
    if (wg_dialect_limit(r, c, key, rc == RC_WRITE ? c->cfg->rate_write : c->cfg->rate_read,
                         &retry) != 0) {
        json_t *e = wg_render_error("rate_limited", "too many requests; retry later", NULL);
        json_object_set_new(json_object_get(e, "error"), "retryAfter", json_integer(retry));
        respond(r, 429, e);
        return WG_ELIMIT;
    }
    return 0;
}

/* Auth, limit, then the instance {id}. 0, or the response is set. */
static int ea_instance(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, wg_instance_t *in)
{
    wg_core_err_t err = {0};
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", r->params[0]);
    if (ea_auth(r, c, a) != 0)
        return WG_EPERM;
    if (wg_core_instance_get(c->core, a, r->params[0], in, &err) != 0) {
        fail_core(r, &err);
        return WG_ENOTFOUND;
    }
    return 0;
}

/* {status, qrCode ("data:image/png;base64,…" or null), qrCodeExpiresAt (or null)} */
static json_t *render_connection(wg_api_ctx_t *c, const wg_instance_t *in)
{
    char *code = NULL, *b64 = NULL;
    int64_t exp = 0;
    json_t *qr = json_null(), *qexp = json_null();
    if (strcmp(in->status, WG_STATUS_WORKING) &&
        wg_render_qr(c->core, in->id, &code, &b64, &exp) == 0) {
        size_t len = strlen(b64) + 32;
        char *uri = malloc(len);
        if (uri) {
            snprintf(uri, len, "data:image/png;base64,%s", b64);
            qr = json_string(uri);
            qexp = wg_render_time_json(exp);
        }
        free(uri);
    }
    free(code);
    free(b64);
    /* a QR on screen is qr_pending even while the stored status still says STARTING */
    const char *st = json_is_string(qr) ? "qr_pending" : wg_render_status_enviaai(in->status);
    return json_pack("{s:s, s:o, s:o}", "status", st, "qrCode", qr, "qrCodeExpiresAt", qexp);
}

static void connect_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in, void *arg)
{
    (void)arg;
    respond(r, 200, wg_render_ok(render_connection(c, in)));
}

static void h_connect(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in, now = {0};
    json_t *root = NULL;
    if (ea_instance(r, c, &a, &in) != 0)
        return;
    if (r->body_len && wg_native_parse_body(r->body, r->body_len, &root, &err) != 0) {
        fail_core(r, &err);
        goto out;
    }
    json_t *m = json_object_get(root, "method");
    if (m && !json_is_null(m) && (!json_is_string(m) || strcmp(json_string_value(m), "qrcode"))) {
        respond(r, 422, wg_render_error("validation_error",
                                        "method must be \"qrcode\" (pairing codes: POST "
                                        "/v1/instances/{id}/pairing-code)",
                                        "method"));
        goto out;
    }
    if (!strcmp(in.status, WG_STATUS_STOPPED) || !strcmp(in.status, WG_STATUS_FAILED)) {
        if (wg_core_instance_action(c->core, &a, in.id, WG_ACTION_START, &now, &err) != 0) {
            fail_core(r, &err);
            goto out;
        }
    }
    if (!strcmp(in.status, WG_STATUS_WORKING) ||
        !wg_dialect_wait_qr(r, c, in.id, wg_dialect_qr_wait_ms(c), connect_done, NULL, NULL))
        connect_done(r, c, now.id ? &now : &in, NULL);
out:
    json_decref(root);
    wg_instance_dispose(&in);
    wg_instance_dispose(&now);
}

static void h_qrcode(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    if (ea_instance(r, c, &a, &in) != 0)
        return;
    json_t *d = render_connection(c, &in);
    if (json_is_string(json_object_get(d, "qrCode")))
        respond(r, 200, wg_render_ok(d));
    else {
        json_decref(d);
        respond(r, 404, wg_render_error("qr_not_available",
                                        "no QR code to scan now: POST /v1/instances/{id}/connect",
                                        NULL));
    }
    wg_instance_dispose(&in);
}

static void h_status(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    if (ea_instance(r, c, &a, &in) != 0)
        return;
    json_t *d = render_connection(c, &in);
    json_object_set_new(d, "id", json_string(in.id));
    json_object_set_new(d, "phone", wg_render_str(in.phone));
    json_object_set_new(d, "profileName", wg_render_str(in.push_name));
    respond(r, 200, wg_render_ok(d));
    wg_instance_dispose(&in);
}

static void h_disconnect(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in, now = {0};
    if (ea_instance(r, c, &a, &in) != 0)
        return;
    if (wg_core_instance_action(c->core, &a, in.id, WG_ACTION_LOGOUT, &now, &err) != 0)
        fail_core(r, &err);
    else
        respond(r, 200, wg_render_ok(json_pack("{s:s, s:s}", "id", in.id, "status",
                                               wg_render_status_enviaai(now.status))));
    wg_instance_dispose(&in);
    wg_instance_dispose(&now);
}

/* ---- messages (the rules are core/send.c's) ---- */

/* {success:true, messageId, status:"sent", timestamp} - flat, as EnviaAI documents it. wagate
 * answers once WhatsApp's server took the message, so the status is "sent" (EnviaAI's own
 * queue answers "queued"). */
static void send_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_core_send_t *s,
                      const wg_core_sent_t *sent, const wg_core_err_t *err, void *arg)
{
    (void)c;
    (void)s;
    (void)arg;
    if (!sent)
        fail_core(r, err);
    else
        respond(r, 200, json_pack("{s:b, s:s, s:s, s:o}", "success", 1, "messageId",
                                  sent->message_id, "status", "sent", "timestamp",
                                  wg_render_time_json(sent->acked_at)));
}

/* 0 when key is absent/null or a string (*out set); else the 422 is set. */
static int body_string(wg_http_req_t *r, json_t *root, const char *key, const char **out)
{
    json_t *v = json_object_get(root, key);
    char m[80];
    *out = json_string_value(v);
    if (!v || json_is_null(v) || json_is_string(v))
        return 0;
    snprintf(m, sizeof(m), "%s must be a string", key);
    respond(r, 422, wg_render_error("validation_error", m, key));
    return WG_EINVAL;
}

static void h_send(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in = {0};
    json_t *root = NULL;
    wg_core_send_text_t m = {0};
    const char *id, *media;
    if (ea_auth(r, c, &a) != 0)
        return;
    if (wg_native_parse_body(r->body, r->body_len, &root, &err) != 0) {
        fail_core(r, &err);
        goto out;
    }
    if (body_string(r, root, "instanceId", &id) || body_string(r, root, "to", &m.to) ||
        body_string(r, root, "message", &m.text) ||
        body_string(r, root, "quotedMessageId", &m.quoted_id) ||
        body_string(r, root, "mediaUrl", &media))
        goto out;
    if (!id || !*id) {
        respond(r, 422, wg_render_error("validation_error", "instanceId is required",
                                        "instanceId"));
        goto out;
    }
    if (media) {
        respond(r, 422, wg_render_error("validation_error",
                                        "media messages are not supported yet: send text "
                                        "in message",
                                        "mediaUrl"));
        goto out;
    }
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", id);
    if (wg_core_instance_get(c->core, &a, id, &in, &err) != 0) {
        fail_core(r, &err);
        goto out;
    }
    if (wg_dialect_send_text(r, c, &in, &m, send_done, NULL, NULL, &err) != 0) {
        /* the core names its fields after the native body; EnviaAI calls the text "message" */
        if (!strcmp(err.field, "text"))
            snprintf(err.field, sizeof(err.field), "message");
        fail_core(r, &err);
    }
out:
    json_decref(root);
    wg_instance_dispose(&in);
}

static const wg_route_t routes[] = {
    {WG_HTTP_POST, "/instances/{id}/connect", h_connect, RC_WRITE},
    {WG_HTTP_GET, "/instances/{id}/qrcode", h_qrcode, RC_READ},
    {WG_HTTP_GET, "/instances/{id}/status", h_status, RC_READ},
    {WG_HTTP_POST, "/instances/{id}/disconnect", h_disconnect, RC_WRITE},
    {WG_HTTP_POST, "/messages/send", h_send, RC_WRITE},
};
static const size_t nroutes = sizeof(routes) / sizeof(routes[0]);

const wg_dialect_t wg_dialect_enviaai = {"enviaai", "/v1", routes, &nroutes, wg_native_error};
