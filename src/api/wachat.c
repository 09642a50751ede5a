/* wachat.c - the Wachat dialect, mounted at /wachat. Routes (relative to the mount point):
 *   POST   /instance/create[?response=image]
 *   GET    /instance/qr?instanceName=            the QR shown now (a closed instance is started)
 *   GET    /instance/qr/image?instanceName=&apiKey=   the same QR as image/png (for an <img>)
 *   GET    /instance/qr/live?instanceName=&apiKey=    self-updating HTML page (for an <iframe>)
 *   GET    /instance/connectionState/{apiInstanceName}
 *   POST   /instance/restart/{apiInstanceName}   DELETE /instance/logout/{apiInstanceName}
 *   DELETE /instance/delete/{apiInstanceName}
 *   POST   /send/text {instanceName, number, type:"text", message, delay?}
 * Instances are addressed by apiInstanceName, the unique name the core generates at create
 * (`t<n>_<random>_<slug of instanceName>`); instanceName is the friendly name.
 * Auth: "Authorization: Bearer <account key>" (apikey header and instance tokens too, as every
 * dialect); the three QR routes also take the key as ?apiKey= because an <img> or <iframe>
 * cannot send headers. The credential is checked before the name is resolved; an instance token
 * reaches its own instance only (any other name: 401).
 * Wachat documents create only; the other routes and every error mirror Evolution API v2
 * ({status, error, response:{message:[…]}}; core validation errors become 400 naming the
 * Wachat field). Parsing and rendering only: rules live in core/. */
#include "api/dialect.h"
#include "api/evo_shape.h"
#include "api/render.h"
#include "qr/qr.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { RC_READ = 1, RC_WRITE = 2 };

/* web/ files embedded at build time by scripts/embed.sh (build/gen/web_assets.c) */
typedef struct {
    const char *path;
    const unsigned char *data;
    size_t len;
} wg_web_asset_t;
extern const wg_web_asset_t wg_web_assets[];

#define LIVE_PAGE "/wachat-live.html"

/* the Evolution response helpers are shared with Wachat (evo_shape.c); short local names */
#define respond wg_evo_respond
#define fail wg_evo_fail

static void wac_error(wg_http_req_t *r, void *ctx, int status, const char *code, const char *msg)
{
    (void)ctx;
    (void)code;
    wg_evo_route_error(r, status, msg, 200);
}

/* The Wachat name of a core field ("settings.rejectCall" -> "rejectCalls"). */
static const char *wachat_field(const char *core)
{
    static const char *const map[][2] = {
        {"name", "instanceName"},
        {"phone", "number"},
        {"settings.rejectCall", "rejectCalls"},
        {"settings.groupsIgnore", "ignoreGroups"},
        {"settings.alwaysOnline", "alwaysOnline"},
        {"settings.readMessages", "readMessages"},
        {"settings.readStatus", "readStatus"},
        {"business.token", "metaToken"},
        {"business.businessId", "metaBusinessId"},
        {"business.phoneNumberId", "metaPhoneNumberId"},
        {"to", "number"},
        {"text", "message"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(core, map[i][0]))
            return map[i][1];
    return core;
}

/* A core error in Wachat's (Evolution's) terms; name: the instance name the request used. */
static void fail_core(wg_http_req_t *r, const wg_core_err_t *e, const char *name)
{
    char m[300];
    int st = e->status ? e->status : 500;
    const char *f = wachat_field(e->field);
    snprintf(m, sizeof(m), "%s", e->message);
    if (wg_evo_core_message(e, name, &st, m, sizeof(m))) {
        /* the messages Evolution shares (evo_shape.c) */
    } else if (!strncmp(e->field, "business.", 9)) {
        st = 400;
        snprintf(m, sizeof(m), "%s is required for WHATSAPP-BUSINESS", f);
    } else if (st == 422 && !strcmp(e->field, "integration")) {
        st = 400;
        snprintf(m, sizeof(m),
                 "Invalid integration: integration must be WHATSAPP-BAILEYS or "
                 "WHATSAPP-BUSINESS");
    } else if (st == 422) {
        st = 400;
        if (*f)
            snprintf(m, sizeof(m), "%s: %.200s", f, e->message);
    }
    fail(r, st, m);
}

/* Authenticates (Bearer / apikey header; with query_key also ?apiKey=, for <img>/<iframe>) and
 * applies the read/write limit per credential. 0, or the response is set. */
static int wac_auth(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, int query_key)
{
    wg_core_err_t err = {0};
    char tok[520];
    const char *t = wg_http_credential(r, tok, sizeof(tok));
    if (!t && query_key && wg_http_query_get(r->query, "apiKey", tok, sizeof(tok)) == 0 && tok[0])
        t = tok;
    /* the core hashes the key and compares hashes in constant time (core/token.h) */
    if (wg_core_authenticate(c->core, t, a, &err) != 0) {
        fail_core(r, &err, NULL);
        return WG_EPERM;
    }
    return wg_evo_limit(r, c, a, "wac");
}

/* The instance called api_name, for credential a. 0, or the response is set. */
static int wac_resolve(wg_http_req_t *r, wg_api_ctx_t *c, const wg_auth_t *a, const char *api_name,
                       wg_instance_t *in)
{
    return wg_evo_resolve(r, c, a, api_name, wg_core_instance_by_api_name, fail_core, in);
}

/* Auth, then the instance named by the path's {name}. */
static int wac_instance(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, wg_instance_t *in)
{
    if (wac_auth(r, c, a, 0) != 0)
        return WG_EPERM;
    return wac_resolve(r, c, a, r->params[0], in);
}

/* Auth (header or ?apiKey=), then the instance named by ?instanceName=. */
static int wac_instance_q(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, wg_instance_t *in)
{
    char name[160];
    if (wac_auth(r, c, a, 1) != 0)
        return WG_EPERM;
    if (wg_http_query_get(r->query, "instanceName", name, sizeof(name)) != 0 || !name[0]) {
        fail(r, 400, "instanceName is required");
        return WG_EINVAL;
    }
    return wac_resolve(r, c, a, name, in);
}

/* ---- rendering ---- */

static int is_business(const wg_instance_t *in)
{
    return in->integration && !strcmp(in->integration, "WHATSAPP-BUSINESS");
}

/* Wachat's numbers have no '+'. */
static json_t *render_number(const char *phone)
{
    return phone ? json_string(phone[0] == '+' ? phone + 1 : phone) : json_null();
}

static json_t *render_instance(const wg_instance_t *in)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o}", "instanceName", in->name,
                     "apiInstanceName", in->api_name ? in->api_name : "", "instanceId", in->id,
                     "integration", in->integration ? in->integration : "WHATSAPP-BAILEYS",
                     "number", render_number(in->phone), "state",
                     wg_render_status_evolution(in->status), "statusReason",
                     wg_render_str(in->status_reason));
}

static json_t *render_settings(const wg_instance_t *in)
{
    static const char *const k[][2] = {{"rejectCall", "rejectCalls"},
                                       {"groupsIgnore", "ignoreGroups"},
                                       {"alwaysOnline", "alwaysOnline"},
                                       {"readMessages", "readMessages"},
                                       {"readStatus", "readStatus"}};
    json_t *s = wg_render_json_column(in->settings), *o = json_object();
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        json_object_set_new(o, k[i][1], json_boolean(json_is_true(json_object_get(s, k[i][0]))));
    json_decref(s);
    return o;
}

/* Percent-encodes s (RFC 3986 unreserved kept) onto out. */
static void url_escape(char *out, size_t cap, const char *s)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t n = strlen(out);
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hx[ch >> 4];
            out[n++] = hx[ch & 15];
        }
    }
    out[n] = 0;
}

/* The links of the QR routes: imageUrl and liveUrl carry the key the request presented (as
 * Wachat's do), so the caller can drop them into an <img>/<iframe> as they are. The origin is
 * wg_dialect_origin's (WAGATE_PUBLIC_URL, else http:// + the Host header, else a path). */
typedef struct {
    char image[2200], live[2200]; /* origin (300) + path + query (1800) */
} links_t;

static void make_links(wg_http_req_t *r, wg_api_ctx_t *c, const char *api_name, links_t *l)
{
    char q[1800] = "", tok[520], origin[300]; /* q: a 519-byte key escaped fits */
    const char *key = wg_http_credential(r, tok, sizeof(tok));
    if (!key && wg_http_query_get(r->query, "apiKey", tok, sizeof(tok)) == 0)
        key = tok;
    wg_dialect_origin(r, c, origin, sizeof(origin));
    snprintf(q, sizeof(q), "?instanceName=");
    url_escape(q, sizeof(q), api_name);
    strncat(q, "&apiKey=", sizeof(q) - strlen(q) - 1);
    url_escape(q, sizeof(q), key ? key : "");
    snprintf(l->image, sizeof(l->image), "%s/wachat/instance/qr/image%s", origin, q);
    snprintf(l->live, sizeof(l->live), "%s/wachat/instance/qr/live%s", origin, q);
}

/* {code, base64 "data:image/png;base64,…", expiresAt, imageUrl, liveUrl}; code, base64 and
 * expiresAt are null while the engine shows no QR. */
static json_t *render_qrcode(wg_api_ctx_t *c, const wg_instance_t *in, const links_t *l)
{
    char *code = NULL, *b64 = NULL, *uri = NULL;
    int64_t exp = 0;
    json_t *o;
    if (wg_render_qr(c->core, in->id, &code, &b64, &exp) == 0) {
        size_t len = strlen(b64) + 32;
        if ((uri = malloc(len)))
            snprintf(uri, len, "data:image/png;base64,%s", b64);
    }
    o = json_pack("{s:o, s:o, s:o, s:s, s:s}", "code", wg_render_str(uri ? code : NULL), "base64",
                  wg_render_str(uri), "expiresAt", uri ? wg_render_time_json(exp) : json_null(),
                  "imageUrl", l->image, "liveUrl", l->live);
    free(code);
    free(b64);
    free(uri);
    return o;
}

/* The PNG of the QR shown now into r (raw); 0, or WG_ENOTFOUND when none is shown. */
static int respond_png(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in, int status)
{
    char *code = NULL, *b64 = NULL;
    int64_t exp;
    uint8_t *png = NULL;
    size_t len = 0;
    if (wg_render_qr(c->core, in->id, &code, &b64, &exp) != 0)
        return WG_ENOTFOUND;
    free(b64);
    int rv = wg_qr_png(code, 0, -1, &png, &len);
    free(code);
    if (rv != 0)
        return rv;
    json_decref(r->json);
    r->json = NULL;
    r->status = status;
    r->content_type = "image/png";
    r->raw = png;
    r->raw_len = len;
    return 0;
}

static void set_name_headers(wg_http_req_t *r, const wg_instance_t *in)
{
    snprintf(r->xhdr[0].name, sizeof(r->xhdr[0].name), "X-Instance-Name");
    snprintf(r->xhdr[0].value, sizeof(r->xhdr[0].value), "%s", in->name);
    snprintf(r->xhdr[1].name, sizeof(r->xhdr[1].name), "X-Api-Instance-Name");
    snprintf(r->xhdr[1].value, sizeof(r->xhdr[1].value), "%s", in->api_name ? in->api_name : "");
}

static int qr_wait_ms(wg_api_ctx_t *c)
{
    return c->cfg->qr_wait_ms > 0 ? c->cfg->qr_wait_ms : 10000;
}

/* ---- create ---- */

typedef struct {
    json_t *body; /* the 201 body; qrcode and state filled in when the QR shows */
    links_t links;
    int image; /* ?response=image */
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
    set_name_headers(r, in);
    if (w->image && respond_png(r, c, in, 201) == 0)
        return;
    /* no QR (yet): the JSON answer, whatever was asked, so the caller still gets the names */
    json_object_set_new(json_object_get(w->body, "instance"), "state",
                        json_string(wg_render_status_evolution(in->status)));
    json_object_set_new(w->body, "qrcode", render_qrcode(c, in, &w->links));
    respond(r, 201, w->body);
    w->body = NULL;
}

/* {token, businessId, phoneNumberId} from the meta* fields given (the core checks them). */
static json_t *business_from(json_t *root)
{
    static const char *const k[][2] = {{"metaToken", "token"},
                                       {"metaBusinessId", "businessId"},
                                       {"metaPhoneNumberId", "phoneNumberId"}};
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        json_t *v = json_object_get(root, k[i][0]);
        if (v && !json_is_null(v))
            json_object_set(o, k[i][1], v);
    }
    return o;
}

/* The create body into spec (strings borrowed from root; settings and *business are filled,
 * the caller frees them; phone holds the E.164 number). 0, or the 400 naming the field is set.
 * Types are checked here; values (name, number, integration, settings, meta*) by the core. */
static int parse_create(wg_http_req_t *r, json_t *root, wg_instance_spec_t *spec, json_t *settings,
                        json_t **business, char *phone, size_t cap)
{
    static const char *const skeys[][2] = {{"rejectCalls", "rejectCall"},
                                           {"ignoreGroups", "groupsIgnore"},
                                           {"alwaysOnline", "alwaysOnline"},
                                           {"readMessages", "readMessages"},
                                           {"readStatus", "readStatus"}};
    json_t *nm = json_object_get(root, "instanceName"),
           *integ = json_object_get(root, "integration");
    json_t *num = json_object_get(root, "number");
    if (!json_is_string(nm) || !json_string_length(nm)) {
        fail(r, 400, "instanceName is required");
        return WG_EINVAL;
    }
    if (integ && !json_is_null(integ) && !json_is_string(integ)) {
        fail(r, 400,
             "Invalid integration: integration must be WHATSAPP-BAILEYS or "
             "WHATSAPP-BUSINESS");
        return WG_EINVAL;
    }
    if (num && !json_is_null(num) && !json_is_string(num)) {
        fail(r, 400, "number must be a string of digits with the country code");
        return WG_EINVAL;
    }
    spec->name = json_string_value(nm);
    spec->integration = json_string_value(integ);
    const char *ns = json_string_value(num);
    if (ns && *ns) { /* Wachat numbers have no '+'; the core wants E.164 */
        snprintf(phone, cap, "%s%.36s", ns[0] == '+' ? "" : "+", ns);
        spec->phone = phone;
    }
    for (size_t i = 0; i < sizeof(skeys) / sizeof(skeys[0]); i++) {
        json_t *v = json_object_get(root, skeys[i][0]);
        if (v && !json_is_null(v))
            json_object_set(settings, skeys[i][1], v);
    }
    spec->settings = settings;
    spec->business = *business = business_from(root);
    return 0;
}

/* The 201 for a created instance: at once for WHATSAPP-BUSINESS (no QR), else once the first
 * QR shows (JSON, or the PNG with ?response=image). */
static void answer_create(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in,
                          const char *token, int image)
{
    json_t *body = json_pack("{s:o, s:s, s:o, s:n}", "instance", render_instance(in), "hash", token,
                             "settings", render_settings(in), "qrcode");
    create_wait_t *w = calloc(1, sizeof(*w));
    if (!w || is_business(in)) {
        /* no QR for the Cloud API: the instance is stored (FAILED, cloud_api_not_supported) */
        set_name_headers(r, in);
        respond(r, 201, body);
        free(w);
        return;
    }
    w->body = body;
    w->image = image;
    make_links(r, c, in->api_name ? in->api_name : "", &w->links);
    if (!wg_dialect_wait_qr(r, c, in->id, qr_wait_ms(c), create_done, w, create_wait_free)) {
        create_done(r, c, in, w);
        create_wait_free(w);
    }
}

static void h_create(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    json_t *root = NULL, *settings = json_object(), *business = NULL;
    wg_instance_spec_t spec;
    wg_instance_t in = {0};
    char *token = NULL, phone[40], resp[16] = "", bucket[96];
    int retry, qrv;
    if (wac_auth(r, c, &a, 0) != 0)
        goto out;
    if (a.kind == WG_AUTH_INSTANCE) {
        fail(r, 401, "Unauthorized");
        goto out;
    }
    snprintf(bucket, sizeof(bucket), "wac-create:%s", a.account_id);
    if (wg_dialect_limit(r, c, bucket, c->cfg->rate_create, &retry) != 0) {
        fail(r, 429, "Too many requests; retry later");
        goto out;
    }
    qrv = wg_http_query_get(r->query, "response", resp, sizeof(resp));
    if ((qrv != 0 && qrv != WG_ENOTFOUND) ||
        (qrv == 0 && resp[0] && strcmp(resp, "json") && strcmp(resp, "image"))) {
        fail(r, 400, "response must be json or image");
        goto out;
    }
    if (wg_evo_body(r, &root) != 0)
        goto out;
    memset(&spec, 0, sizeof(spec));
    spec.dialect = "wachat";
    spec.api_name_auto = 1;
    spec.owner_id = a.kind == WG_AUTH_ACCOUNT ? a.account_id : WG_ADMIN_ACCOUNT_ID;
    if (parse_create(r, root, &spec, settings, &business, phone, sizeof(phone)) != 0)
        goto out;
    if (wg_core_instance_create(c->core, &spec, &in, &token, &err) != 0) {
        fail_core(r, &err, spec.name);
        goto out;
    }
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", in.id);
    answer_create(r, c, &in, token, !strcmp(resp, "image"));
out:
    json_decref(root);
    json_decref(settings);
    json_decref(business);
    wg_instance_dispose(&in);
    free(token);
}

/* ---- QR routes ---- */

typedef struct {
    links_t links;
    int image;
} qr_wait_arg_t;

static void qr_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in, void *arg)
{
    qr_wait_arg_t *w = arg;
    if (w->image) {
        if (respond_png(r, c, in, 200) != 0) {
            char m[120];
            snprintf(m, sizeof(m), "No QR code to show: the instance is %s",
                     wg_render_status_evolution(in->status));
            fail(r, 404, m);
        }
        return;
    }
    respond(r, 200,
            json_pack("{s:o, s:o}", "instance", render_instance(in), "qrcode",
                      strcmp(in->status, WG_STATUS_WORKING) ? render_qrcode(c, in, &w->links)
                                                            : json_null()));
}

/* GET /instance/qr and /instance/qr/image: the QR shown now; a closed instance is started
 * again and the answer waits for its first QR (as Evolution's connect). */
static void qr_route(wg_http_req_t *r, void *ctx, int image)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, now = {0};
    wg_core_err_t err = {0};
    qr_wait_arg_t *w = NULL;
    if (wac_instance_q(r, c, &a, &in) != 0)
        return;
    if (is_business(&in)) {
        fail(r, 400, "WHATSAPP-BUSINESS instances have no QR code");
        goto out;
    }
    if (!strcmp(in.status, WG_STATUS_STOPPED) || !strcmp(in.status, WG_STATUS_FAILED)) {
        if (wg_core_instance_action(c->core, &a, in.id, WG_ACTION_START, &now, &err) != 0) {
            fail_core(r, &err, in.api_name);
            goto out;
        }
    }
    if (!(w = calloc(1, sizeof(*w)))) {
        fail(r, 500, "out of memory");
        goto out;
    }
    w->image = image;
    make_links(r, c, in.api_name ? in.api_name : "", &w->links);
    if (!strcmp(in.status, WG_STATUS_WORKING) ||
        !wg_dialect_wait_qr(r, c, in.id, qr_wait_ms(c), qr_done, w, free)) {
        qr_done(r, c, now.id ? &now : &in, w);
        free(w);
    }
out:
    wg_instance_dispose(&in);
    wg_instance_dispose(&now);
}

static void h_qr(wg_http_req_t *r, void *ctx)
{
    qr_route(r, ctx, 0);
}

static void h_qr_image(wg_http_req_t *r, void *ctx)
{
    qr_route(r, ctx, 1);
}

/* The live page (web/wachat-live.html): the same credential check first, so a wrong key gets
 * the 401 here and not a page that fails later. The page polls GET /instance/qr with the
 * query it was opened with. */
static void h_qr_live(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in;
    const wg_web_asset_t *p;
    if (wac_instance_q(r, c, &a, &in) != 0)
        return;
    for (p = wg_web_assets; p->path && strcmp(p->path, LIVE_PAGE); p++)
        ;
    uint8_t *html = p->path ? malloc(p->len) : NULL;
    if (!html) {
        fail(r, 500, "live page not available");
    } else {
        memcpy(html, p->data, p->len);
        json_decref(r->json);
        r->json = NULL;
        r->status = 200;
        r->content_type = "text/html; charset=utf-8";
        r->raw = html;
        r->raw_len = p->len;
    }
    wg_instance_dispose(&in);
}

/* ---- lifecycle ---- */

static json_t *render_state(const wg_instance_t *in)
{
    return json_pack("{s:{s:s, s:s, s:s}}", "instance", "instanceName", in->name, "apiInstanceName",
                     in->api_name ? in->api_name : "", "state",
                     wg_render_status_evolution(in->status));
}

static const char *shown_name(const wg_instance_t *in)
{
    return in->api_name;
}

/* What Wachat's lifecycle routes differ by; the handlers are evo_shape.c's. */
static const wg_evo_shape_t shape = {wac_instance, shown_name, fail_core, render_state};

static void h_state(wg_http_req_t *r, void *ctx)
{
    wg_evo_state(r, ctx, &shape);
}

static void h_restart(wg_http_req_t *r, void *ctx)
{
    wg_evo_action(r, ctx, &shape, WG_ACTION_RESTART);
}

static void h_logout(wg_http_req_t *r, void *ctx)
{
    wg_evo_action(r, ctx, &shape, WG_ACTION_LOGOUT);
}

static void h_delete(wg_http_req_t *r, void *ctx)
{
    wg_evo_delete(r, ctx, &shape);
}

/* ---- send text ---- */

/* Wachat documents the request only ("processed and queued for dispatch", 200); the answer is
 * Evolution's sendText shape, sent once the WhatsApp server acked the message. */
static void send_done(wg_http_req_t *r, wg_api_ctx_t *c, const wg_core_send_t *s,
                      const wg_core_sent_t *sent, const wg_core_err_t *err, void *arg)
{
    (void)c;
    if (!sent) {
        fail_core(r, err, NULL);
        return;
    }
    respond(r, 200,
            json_pack("{s:{s:s, s:b, s:s}, s:{s:s}, s:I, s:s}", "key", "remoteJid", s->to, "fromMe",
                      1, "id", sent->message_id, "message", "conversation", (const char *)arg,
                      "messageTimestamp", (json_int_t)(sent->acked_at / 1000), "status",
                      "SERVER_ACK"));
}

/* A required text field of the body; 0, or the 400 naming it is set. */
static int req_string(wg_http_req_t *r, json_t *root, const char *key, const char **out)
{
    json_t *v = json_object_get(root, key);
    char m[120];
    if (json_is_string(v) && json_string_length(v)) {
        *out = json_string_value(v);
        return 0;
    }
    snprintf(m, sizeof(m), "%s is required", key);
    fail(r, 400, m);
    return WG_EINVAL;
}

static void h_send_text(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_core_err_t err = {0};
    wg_instance_t in = {0};
    wg_core_send_text_t m = {0};
    json_t *root = NULL;
    const char *name, *type;
    char *text = NULL;
    if (wac_auth(r, c, &a, 0) != 0)
        return;
    if (wg_evo_body(r, &root) != 0)
        return;
    if (req_string(r, root, "instanceName", &name) != 0 ||
        req_string(r, root, "number", &m.to) != 0 || req_string(r, root, "type", &type) != 0 ||
        req_string(r, root, "message", &m.text) != 0)
        goto out;
    if (strcmp(type, "text")) {
        fail(r, 400, "type must be text");
        goto out;
    }
    if (wac_resolve(r, c, &a, name, &in) != 0)
        goto out;
    m.delay = json_object_get(root, "delay");
    if (!(text = strdup(m.text))) {
        fail(r, 500, "out of memory");
        goto out;
    }
    if (wg_dialect_send_text(r, c, &in, &m, send_done, text, free, &err) != 0) {
        fail_core(r, &err, in.api_name);
        free(text);
    }
out:
    json_decref(root);
    wg_instance_dispose(&in);
}

static const wg_route_t routes[] = {
    {WG_HTTP_POST, "/instance/create", h_create, RC_WRITE},
    {WG_HTTP_GET, "/instance/qr", h_qr, RC_READ},
    {WG_HTTP_GET, "/instance/qr/image", h_qr_image, RC_READ},
    {WG_HTTP_GET, "/instance/qr/live", h_qr_live, RC_READ},
    {WG_HTTP_GET, "/instance/connectionState/{name}", h_state, RC_READ},
    {WG_HTTP_POST | WG_HTTP_PUT, "/instance/restart/{name}", h_restart, RC_WRITE},
    {WG_HTTP_DELETE, "/instance/logout/{name}", h_logout, RC_WRITE},
    {WG_HTTP_DELETE, "/instance/delete/{name}", h_delete, RC_WRITE},
    {WG_HTTP_POST, "/send/text", h_send_text, RC_WRITE},
};
static const size_t nroutes = sizeof(routes) / sizeof(routes[0]);

const wg_dialect_t wg_dialect_wachat = {"wachat", "/wachat", routes, &nroutes, wac_error};
