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
#include "api/evo_shape.h"
#include "api/render.h"
#include "core/validate.h"
#include "qr/qr.h"
#include "util/err.h"

#include "util/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { RC_READ = 1, RC_WRITE = 2 };

/* the Evolution response helpers are shared with Wachat (evo_shape.c); short local names */
#define respond wg_evo_respond
#define fail wg_evo_fail

static void evo_error(wg_http_req_t *r, void *ctx, int status, const char *code, const char *msg)
{
    (void)ctx;
    (void)code;
    wg_evo_route_error(r, status, msg, 300); /* the path as long as the message holds */
}

/* 400 with one message per entry of msgs (an array of strings, taken). */
static void fail_many(wg_http_req_t *r, json_t *msgs)
{
    size_t i;
    json_t *v;
    fail(r, 400, json_string_value(json_array_get(msgs, 0)));
    json_t *list = json_object_get(json_object_get(r->json, "response"), "message");
    json_array_foreach(msgs, i, v) if (i > 0 && json_is_array(list)) json_array_append(list, v);
    json_decref(msgs);
}

/* A Chatwoot field error: the core names every missing field of the all-or-nothing trio in
 * e->field ("chatwoot.token,chatwoot.url"); each becomes "chatwootToken is required". */
static void fail_chatwoot(wg_http_req_t *r, const wg_core_err_t *e)
{
    json_t *msgs = json_array();
    char f[64], *save = NULL;
    snprintf(f, sizeof(f), "%s", e->field);
    int missing = strstr(e->message, "missing") != NULL;
    for (char *t = strtok_r(f, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const char *k = t + 9; /* after "chatwoot." */
        size_t fl = strlen(t);
        char m[300];
        if (missing)
            snprintf(m, sizeof(m), "chatwoot%c%.40s is required", toupper((unsigned char)*k),
                     k + 1);
        else if (!strcmp(k, "url"))
            snprintf(m, sizeof(m), "Invalid \"url\" property in chatwoot"); /* Evolution's */
        else
            snprintf(m, sizeof(m), "chatwoot%c%.40s %.200s", toupper((unsigned char)*k), k + 1,
                     !strncmp(e->message, t, fl) ? e->message + fl + (e->message[fl] == ' ')
                                                 : e->message);
        json_array_append_new(msgs, json_string(m));
    }
    fail_many(r, msgs);
}

/* A core error in Evolution's terms (name: the instance name the request used, may be NULL). */
static void fail_core(wg_http_req_t *r, const wg_core_err_t *e, const char *name)
{
    char m[300];
    int st = e->status ? e->status : 500;
    const char *code = e->code ? e->code : "";
    snprintf(m, sizeof(m), "%s", e->message);
    if (wg_evo_core_message(e, name, &st, m, sizeof(m))) {
        /* the messages Wachat shares (evo_shape.c) */
    } else if (!strncmp(e->field, "chatwoot.", 9)) {
        fail_chatwoot(r, e);
        return;
    } else if (st == 422 || st == 409) {
        st = 400;
        if (!strcmp(e->field, "integration"))
            snprintf(m, sizeof(m), "Invalid integration");
        else if (!strcmp(code, "proxy_unreachable"))
            snprintf(m, sizeof(m), "Invalid proxy"); /* Evolution's words; the log says why */
        else if (!strncmp(e->field, "proxy", 5))
            snprintf(m, sizeof(m), "Invalid proxy: %s", e->message);
    }
    fail(r, st, m);
}

/* Authenticates and applies the read/write limit per credential. 0, or the response is set. */
static int evo_auth(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a)
{
    wg_core_err_t err = {0};
    if (wg_dialect_auth(r, c, a, &err) != 0) {
        fail_core(r, &err, NULL);
        return WG_EPERM;
    }
    return wg_evo_limit(r, c, a, "evo");
}

/* Auth, then the {name} of the path resolved for that credential. 0, or the response is set. */
static int evo_instance(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, wg_instance_t *in)
{
    if (evo_auth(r, c, a) != 0)
        return WG_EPERM;
    return wg_evo_resolve(r, c, a, r->params[0], wg_core_instance_by_name, fail_core, in);
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

/* {pairingCode, code, base64 "data:image/png;base64,…", count} or NULL when no QR is shown.
 * pairing: the live pairing code ("ABCD-EFGH") or NULL; rendered as Baileys gives it to
 * Evolution, the 8 characters without the dash. count: the QRs of this connect attempt. */
static json_t *render_qrcode(wg_api_ctx_t *c, const char *id, const char *pairing)
{
    char *code = NULL, *b64 = NULL;
    long long exp;
    int n = 0;
    wg_engine_t *e = c->core->engine;
    if (!e || !e->ops->qr)
        return NULL;
    /* the count read around the code: equal before and after, it is this code's (a rotation
     * in between would pair an old code with a new count) */
    for (int tries = 0; tries < 3; tries++) {
        int before = wg_core_qr_count(c->core, id);
        free(code);
        code = NULL;
        if (e->ops->qr(e, id, &code, &exp) != 0)
            return NULL;
        if ((n = wg_core_qr_count(c->core, id)) == before)
            break;
    }
    if (!(b64 = wg_qr_png_base64(code, 0, -1, NULL))) {
        free(code);
        return NULL;
    }
    size_t len = strlen(b64) + 32;
    char *uri = malloc(len);
    json_t *o = NULL;
    if (uri) {
        snprintf(uri, len, "data:image/png;base64,%s", b64);
        char pc[16] = "";
        for (size_t i = 0, k = 0; pairing && pairing[i] && k + 1 < sizeof(pc); i++)
            if (pairing[i] != '-')
                pc[k++] = pairing[i], pc[k] = 0;
        o = json_pack("{s:o, s:s, s:s, s:i}", "pairingCode", pc[0] ? json_string(pc) : json_null(),
                      "code", code, "base64", uri, "count",
                      n > 0 ? n : 1); /* a QR is shown: at least this one */
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

static json_t *render_sink(const wg_instance_t *in, const char *name, int full);
static json_t *render_chatwoot(const wg_instance_t *in, int with_token);
static json_t *render_fetch_core(const wg_instance_t *in);

/* fetchInstances' item: the instance with its Setting, Chatwoot (never its token), Rabbitmq,
 * Sqs and Nats (null when not configured), as Evolution includes its related rows. A
 * WHATSAPP-BUSINESS instance shows its business id and phone number id as businessId and
 * number. */
static json_t *render_fetch_item(const wg_instance_t *in)
{
    json_t *o = render_fetch_core(in), *cw = render_chatwoot(in, 0);
    if (!o) {
        json_decref(cw);
        return NULL;
    }
    json_t *s = wg_render_json_column(in->settings), *biz = json_object_get(s, "business");
    if (json_is_object(biz)) {
        json_t *b = json_object_get(biz, "businessId"), *n = json_object_get(biz, "phoneNumberId");
        json_object_set(o, "businessId", json_is_string(b) ? b : json_null());
        json_object_set(o, "number", json_is_string(n) ? n : json_null());
    }
    json_decref(s);
    json_object_set_new(o, "Chatwoot", cw ? cw : json_null());
    json_object_set_new(o, "Rabbitmq", render_sink(in, "rabbitmq", 1));
    json_object_set_new(o, "Sqs", render_sink(in, "sqs", 1));
    json_object_set_new(o, "Nats", render_sink(in, "nats", 1));
    return o;
}

static json_t *render_fetch_core(const wg_instance_t *in)
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

/* ---- event sinks and Chatwoot (stored by the core, not delivered yet) ---- */

static const char *const sink_keys[] = {"rabbitmq", "sqs", "nats"};

/* Evolution event names (array) -> core names, errors naming `what` ("rabbitmq.events"). */
static int map_events_of(json_t *in, const char *what, json_t **out, char *m, size_t cap)
{
    char tmp[200];
    int rv = map_events(in, out, tmp, sizeof(tmp));
    if (rv) /* map_events words its message for the webhook: name the field asked for */
        snprintf(m, cap, "%.31s%.160s", what, !strncmp(tmp, "webhook.events", 14) ? tmp + 14 : tmp);
    return rv;
}

/* rabbitmq|sqs|nats {enabled, events} -> the core's sinks object (events as core names), or
 * NULL when none is given. 0, or WG_EINVAL with the message in m. */
static int sinks_from(json_t *root, json_t **out, char *m, size_t cap)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof(sink_keys) / sizeof(sink_keys[0]); i++) {
        json_t *v = json_object_get(root, sink_keys[i]), *o, *ev, *mapped = NULL;
        char what[32];
        if (!v || json_is_null(v))
            continue;
        if (!json_is_object(v)) {
            snprintf(m, cap, "%s must be an object {enabled, events}", sink_keys[i]);
            goto bad;
        }
        snprintf(what, sizeof(what), "%s.events", sink_keys[i]);
        ev = json_object_get(v, "events");
        if (ev && !json_is_null(ev) && map_events_of(ev, what, &mapped, m, cap) != 0)
            goto bad;
        o = json_object();
        if (json_object_get(v, "enabled")) /* the core checks its type */
            json_object_set(o, "enabled", json_object_get(v, "enabled"));
        if (mapped)
            json_object_set_new(o, "events", mapped);
        if (!*out)
            *out = json_object();
        json_object_set_new(*out, sink_keys[i], o);
    }
    return 0;
bad:
    json_decref(*out);
    *out = NULL;
    return WG_EINVAL;
}

/* The core's events (array of names) -> the first Evolution name of each. */
static json_t *evo_events(json_t *core)
{
    json_t *a = json_array(), *v;
    size_t i;
    json_array_foreach(core, i, v)
    {
        for (size_t k = 0; k < sizeof(event_map) / sizeof(event_map[0]); k++)
            if (event_map[k].core && !strcmp(event_map[k].core, json_string_value(v))) {
                json_array_append_new(a, json_string(event_map[k].evo));
                break;
            }
    }
    return a;
}

/* A stored sink: {enabled} (create's answer) or, full, {enabled, events} (fetchInstances:
 * null when it was never configured, as Evolution's missing row). */
static json_t *render_sink(const wg_instance_t *in, const char *name, int full)
{
    json_t *all = wg_render_json_column(in->sinks), *s = json_object_get(all, name), *o;
    int en = json_is_true(json_object_get(s, "enabled"));
    json_t *ev = json_object_get(s, "events");
    if (!full)
        o = json_pack("{s:b}", "enabled", en);
    else if (!en && !json_array_size(ev))
        o = json_null();
    else
        o = json_pack("{s:b, s:o}", "enabled", en, "events", evo_events(ev));
    json_decref(all);
    return o;
}

/* chatwoot* fields -> the core's Chatwoot object (keys without the prefix), NULL when none. */
static json_t *chatwoot_from(json_t *root)
{
    static const char *const keys[] = {"AccountId",
                                       "Token",
                                       "Url",
                                       "SignMsg",
                                       "ReopenConversation",
                                       "ConversationPending",
                                       "ImportContacts",
                                       "NameInbox",
                                       "MergeBrazilContacts",
                                       "ImportMessages",
                                       "DaysLimitImportMessages",
                                       "Organization",
                                       "Logo"};
    json_t *o = NULL;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char evo[48], core[48];
        snprintf(evo, sizeof(evo), "chatwoot%s", keys[i]);
        json_t *v = json_object_get(root, evo);
        if (!v || json_is_null(v))
            continue;
        snprintf(core, sizeof(core), "%c%s", keys[i][0] - 'A' + 'a', keys[i] + 1);
        if (!o)
            o = json_object();
        json_object_set(o, core, v);
    }
    return o;
}

/* The stored Chatwoot integration in Evolution's shape, or NULL when none. with_token: the
 * create's answer echoes what the caller sent; fetchInstances never shows the token. */
static json_t *render_chatwoot(const wg_instance_t *in, int with_token)
{
    json_t *cw = wg_render_json_column(in->chatwoot);
    if (!json_is_true(json_object_get(cw, "enabled"))) {
        json_decref(cw);
        return NULL;
    }
    if (!with_token)
        json_object_del(cw, "token");
    char num[32] = "";
    if (in->phone)
        snprintf(num, sizeof(num), "%s", in->phone[0] == '+' ? in->phone + 1 : in->phone);
    json_object_set_new(cw, "number", num[0] ? json_string(num) : json_null());
    /* Evolution's receiver for Chatwoot's callbacks; wagate has none yet */
    json_object_set_new(cw, "webhookUrl", json_null());
    return cw;
}

/* ---- deferred answers: proxy test, first QR, pairing code ----
 * One waiter per request, in stages: W_PROXY_CREATE / W_PROXY_SET poll the core's proxy test
 * and then run the handler again with the proxy known good; W_QR waits for the instance's
 * first QR (bounded by WAGATE_QR_WAIT_MS) and, with a phone number, asks the core for a
 * pairing code and waits until the server took it (PAIR_WAIT_MS). Nothing here blocks. */

#define PAIR_WAIT_MS 20000

enum { W_PROXY_CREATE = 1, W_PROXY_SET, W_QR };

typedef struct {
    int stage;
    wg_proxy_check_t *pc;
    char id[64];
    wg_auth_t a;
    json_t *body;     /* W_QR of a create: the 201 body, qrcode added at the end */
    int64_t qr_until; /* monotonic ms */
    char phone[24];   /* "" = no pairing code */
    char code[16];    /* the pairing code once asked */
    int asked;
    int64_t pair_until;
} evo_wait_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void evo_wait_free(evo_wait_t *w)
{
    if (!w)
        return;
    wg_core_proxy_check_free(w->pc);
    json_decref(w->body);
    free(w);
}

static int evo_wait(wg_http_req_t *r, void *ctx, int final);

/* Defers r on w (taking it); the server's bound is wait_ms from now. */
static void evo_defer(wg_http_req_t *r, evo_wait_t *w, int wait_ms)
{
    r->wait = evo_wait;
    r->wait_arg = w;
    r->wait_ms = wait_ms;
}

/* Starts W_QR for instance id (body: the create's 201, taken; NULL for connect). */
static evo_wait_t *qr_waiter(wg_api_ctx_t *c, const wg_auth_t *a, const char *id, json_t *body,
                             const char *phone)
{
    evo_wait_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->stage = W_QR;
    w->a = *a;
    w->body = body;
    snprintf(w->id, sizeof(w->id), "%s", id);
    snprintf(w->phone, sizeof(w->phone), "%s", phone ? phone : "");
    w->qr_until = mono_ms() + wg_dialect_qr_wait_ms(c);
    return w;
}

/* W_QR: 0 keep waiting, 1 answer now (*in loaded), negative: the instance vanished. */
static int qr_step(wg_api_ctx_t *c, evo_wait_t *w, int final, wg_instance_t *in)
{
    char *qr = NULL;
    long long exp;
    wg_core_err_t err = {0};
    int have_qr = c->core->engine && c->core->engine->ops->qr &&
                  c->core->engine->ops->qr(c->core->engine, w->id, &qr, &exp) == 0;
    free(qr);
    if (wg_store_instance_get(c->core->store, w->id, in) != 0)
        return WG_ENOTFOUND;
    int64_t now = mono_ms();
    if (w->asked) { /* a pairing code is on its way: answer once the server took it */
        int st = w->code[0] ? wg_core_pairing_code_state(c->core, w->id) : 1;
        if (st == 0 && !final && now < w->pair_until)
            goto wait;
        if (st != 1) { /* refused, lost or late: no code the phone could use */
            wg_log(WG_LOG_INFO, "evolution", "instance=%s pairing code %s", w->id,
                   st == 0 ? "not confirmed in time" : "refused");
            w->code[0] = 0;
        }
        return 1;
    }
    if (!have_qr) {
        /* the engine stores SCAN_QR_CODE just before it publishes the QR: wait for both */
        int waiting = !strcmp(in->status, WG_STATUS_STARTING) ||
                      !strcmp(in->status, WG_STATUS_SCAN_QR) ||
                      !strcmp(in->status, WG_STATUS_PENDING);
        if (waiting && !final && now < w->qr_until)
            goto wait;
        return 1;
    }
    if (!w->phone[0] || final)
        return 1;
    /* Evolution asks for the code as the first QR shows (the instance then waits for a link) */
    w->asked = 1;
    if (wg_core_pairing_code(c->core, &w->a, w->id, w->phone, w->code, &err) != 0) {
        wg_log(WG_LOG_INFO, "evolution", "instance=%s pairing code not started: %s", w->id,
               err.message);
        w->code[0] = 0;
        return 1;
    }
    w->pair_until = now + PAIR_WAIT_MS;
wait:
    wg_instance_dispose(in);
    return 0;
}

/* The answer of W_QR: the create's 201 with its qrcode, or connect's QR (or state). */
static void qr_answer(wg_http_req_t *r, wg_api_ctx_t *c, evo_wait_t *w, const wg_instance_t *in)
{
    json_t *q = strcmp(in->status, WG_STATUS_WORKING)
                    ? render_qrcode(c, in->id, w->code[0] ? w->code : NULL)
                    : NULL;
    if (!w->body) {
        respond(r, 200, q ? q : render_state(in));
        return;
    }
    json_object_set_new(json_object_get(w->body, "instance"), "status",
                        json_string(wg_render_status_evolution(in->status)));
    json_object_set_new(w->body, "qrcode",
                        q ? q : json_pack("{s:n, s:i}", "pairingCode", "count", 0));
    respond(r, 201, w->body);
    w->body = NULL;
}

static void create_run(wg_http_req_t *r, wg_api_ctx_t *c, int proxy_ok);

/* The core refused a WHATSAPP-BUSINESS create for one of its credentials (e->field
 * "business.<key>"): every one of them the request left empty is named, in Evolution's words
 * ("number is required"); one given but refused is named with the core's reason. */
static void fail_business(wg_http_req_t *r, const wg_core_err_t *e, json_t *biz)
{
    static const char *const k[][2] = {
        {"token", "token"}, {"phoneNumberId", "number"}, {"businessId", "businessId"}};
    json_t *msgs = json_array();
    char m[300];
    for (size_t i = 0; i < 3; i++) {
        const char *v = json_string_value(json_object_get(biz, k[i][0]));
        if (!v || !*v) {
            snprintf(m, sizeof(m), "%s is required", k[i][1]);
            json_array_append_new(msgs, json_string(m));
        } else if (!strcmp(e->field + 9, k[i][0])) {
            snprintf(m, sizeof(m), "%s: %.200s", k[i][1], e->message);
            json_array_append_new(msgs, json_string(m));
        }
    }
    if (!json_array_size(msgs))
        json_array_append_new(msgs, json_string(e->message));
    fail_many(r, msgs);
}
static void proxy_set_run(wg_http_req_t *r, wg_api_ctx_t *c, int proxy_ok);

static int evo_wait(wg_http_req_t *r, void *ctx, int final)
{
    wg_api_ctx_t *c = ctx;
    evo_wait_t *w = r->wait_arg;
    wg_core_err_t err = {0};
    wg_instance_t in;
    int rv;
    if (final < 0)
        goto done;
    if (w->stage == W_QR) {
        if ((rv = qr_step(c, w, final, &in)) == 0)
            return 0;
        if (rv < 0)
            fail(r, 500, "instance vanished while starting");
        else {
            qr_answer(r, c, w, &in);
            wg_instance_dispose(&in);
        }
        goto done;
    }
    if ((rv = wg_core_proxy_check_poll(w->pc, &err)) == 0 && !final)
        return 0;
    r->wait = NULL;
    r->wait_arg = NULL;
    if (rv == 1) {
        /* the proxy works: run the handler again, without the test; it answers or defers
         * once more (the first QR), unless the server's bound is reached */
        int stage = w->stage;
        evo_wait_free(w);
        if (stage == W_PROXY_CREATE)
            create_run(r, c, final ? 2 : 1);
        else
            proxy_set_run(r, c, 1);
        return r->wait ? 0 : 1;
    }
    fail(r, 400, "Invalid proxy"); /* Evolution's words; the reason is in the log */
    evo_wait_free(w);
    return 1;
done:
    evo_wait_free(w);
    r->wait_arg = NULL;
    return 1;
}

/* Tests the proxy (core object from Evolution fields) before the handler goes on: defers r
 * in `stage` (extra_ms: what the stage after the test may wait). 1 deferred, 0 the response
 * is set (a bad proxy field or an internal error). */
static int proxy_test_defer(wg_http_req_t *r, wg_api_ctx_t *c, json_t *proxy, int stage,
                            int extra_ms, const char *name)
{
    wg_core_err_t err = {0};
    json_t *canon = NULL;
    evo_wait_t *w = NULL;
    if (wg_core_proxy_parse(proxy, &canon, &err) != 0 || !(w = calloc(1, sizeof(*w))) ||
        wg_core_proxy_check_start(c->core, canon, &w->pc, &err) != 0) {
        if (!err.status)
            wg_core_err_set(&err, 500, "internal_error", NULL, "out of memory");
        fail_core(r, &err, name);
        json_decref(canon);
        evo_wait_free(w);
        return 0;
    }
    json_decref(canon);
    w->stage = stage;
    evo_defer(r, w, c->cfg->proxy_check_timeout_ms + 500 + extra_ms);
    return 1;
}

static const char *str_of(json_t *root, const char *key)
{
    return json_string_value(json_object_get(root, key));
}

/* Authentication of a handler run again after its proxy test (again = 1): the credential is
 * checked once more (it may have been revoked meanwhile) but the rate limit was taken once. */
static int evo_auth_again(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, int again)
{
    wg_core_err_t err = {0};
    if (!again)
        return evo_auth(r, c, a);
    if (wg_dialect_auth(r, c, a, &err) != 0) {
        fail_core(r, &err, NULL);
        return WG_EPERM;
    }
    return 0;
}

/* The create; proxy_ok: 0 first run (a proxy is tested first), 1 run again after the test
 * passed, 2 the same but the server's bound is reached (answer without waiting for a QR). */
static void create_run(wg_http_req_t *r, wg_api_ctx_t *c, int proxy_ok)
{
    wg_auth_t a;
    wg_core_err_t err = {0};
    json_t *root = NULL, *settings = json_object(), *opts = json_object(), *events = NULL;
    json_t *proxy = NULL, *sinks = NULL, *cw = NULL, *biz = NULL;
    wg_instance_spec_t spec;
    wg_instance_t in = {0};
    char *token = NULL, m[200], phone[40];
    static const char *const skeys[] = {"rejectCall",   "msgCall",    "groupsIgnore",
                                        "alwaysOnline", "readMessages", "readStatus",
                                        "syncFullHistory"};
    if (evo_auth_again(r, c, &a, proxy_ok) != 0)
        goto out;
    if (a.kind == WG_AUTH_INSTANCE) {
        fail(r, 401, "Unauthorized");
        goto out;
    }
    if (wg_evo_body(r, &root) != 0)
        goto out;
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
    int business = spec.integration && !strcmp(spec.integration, "WHATSAPP-BUSINESS");
    if (business) {
        /* Evolution's Cloud API instance: token (Meta's, also the instance's apikey), number
         * (the phone number id, not a phone) and businessId; the core requires all three */
        biz = json_pack("{s:s?, s:s?, s:s?}", "token", spec.token, "businessId",
                        str_of(root, "businessId"), "phoneNumberId", num);
        spec.business = biz;
        spec.phone = NULL;
    }
    if (sinks_from(root, &sinks, m, sizeof(m)) != 0) {
        fail(r, 400, m);
        goto out;
    }
    spec.sinks = sinks;
    spec.chatwoot = cw = chatwoot_from(root);
    int want_qr = json_is_true(json_object_get(root, "qrcode")) && !business;
    if (proxy && !proxy_ok) {
        /* Evolution keeps a proxy only when a connection through it works: test, then run
         * this again (the test's own bound plus what the first QR may take) */
        proxy_test_defer(r, c, proxy, W_PROXY_CREATE,
                         want_qr ? wg_dialect_qr_wait_ms(c) + PAIR_WAIT_MS + 1000 : 0, spec.name);
        goto out;
    }
    if (wg_core_instance_create(c->core, &spec, &in, &token, &err) != 0) {
        if (business && !strncmp(err.field, "business.", 9))
            fail_business(r, &err, biz);
        else
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
    /* webhookWaBusiness / accessTokenWaBusiness: Evolution gives the URL and verify token of
     * its Meta webhook receiver; wagate has none (no Cloud API transport), so there is no URL
     * Meta could call: null and "" as for a Baileys instance (docs/dialects.md) */
    json_t *body =
        json_pack("{s:{s:s, s:s, s:s, s:n, s:s, s:s}, s:s, s:o, s:o, s:o, s:o, s:o}", "instance",
                  "instanceName", in.name, "instanceId", in.id, "integration",
                  in.integration ? in.integration : "WHATSAPP-BAILEYS", "webhookWaBusiness",
                  "accessTokenWaBusiness", "", "status", wg_render_status_evolution(in.status),
                  "hash", token, "webhook", webhook, "rabbitmq", render_sink(&in, "rabbitmq", 0),
                  "nats", render_sink(&in, "nats", 0), "sqs", render_sink(&in, "sqs", 0),
                  "settings", render_settings(&in));
    json_t *cwo = render_chatwoot(&in, 1);
    if (body && cwo)
        json_object_set_new(body, "chatwoot", cwo);
    else
        json_decref(cwo);
    evo_wait_t *w = want_qr ? qr_waiter(c, &a, in.id, body, num) : NULL;
    if (!w) {
        respond(r, 201, body);
        goto out;
    }
    if (proxy_ok == 2) { /* no time left to wait: the QR as it stands now */
        wg_instance_t now;
        if (qr_step(c, w, 1, &now) == 1) {
            qr_answer(r, c, w, &now);
            wg_instance_dispose(&now);
        } else
            fail(r, 500, "instance vanished while starting");
        evo_wait_free(w);
        goto out;
    }
    evo_defer(r, w, wg_dialect_qr_wait_ms(c) + PAIR_WAIT_MS + 1000);
out:
    json_decref(root);
    json_decref(settings);
    json_decref(opts);
    json_decref(events);
    json_decref(proxy);
    json_decref(sinks);
    json_decref(cw);
    json_decref(biz);
    wg_instance_dispose(&in);
    free(token);
}

static void h_create(wg_http_req_t *r, void *ctx)
{
    create_run(r, ctx, 0);
}

/* ---- lifecycle ---- */

/* GET /instance/connect/{name}[?number=]: the QR (and, with a number, a pairing code the
 * server took) of a waiting instance; a closed one is started first. */
static void h_connect(wg_http_req_t *r, void *ctx)
{
    wg_api_ctx_t *c = ctx;
    wg_auth_t a;
    wg_instance_t in, now = {0};
    wg_core_err_t err = {0};
    char number[40] = "", e164[20];
    if (evo_instance(r, c, &a, &in) != 0)
        return;
    if (wg_http_query_get(r->query, "number", number, sizeof(number)) == 0 && number[0] &&
        !wg_valid_e164(number, e164, sizeof(e164))) {
        fail(r, 400,
             "number must be the account's number in international format, digits "
             "only");
        goto out;
    }
    if (!strcmp(in.status, WG_STATUS_STOPPED) || !strcmp(in.status, WG_STATUS_FAILED)) {
        /* Evolution's connect (re)starts a closed instance and answers with its first QR */
        if (wg_core_instance_action(c->core, &a, in.id, WG_ACTION_START, &now, &err) != 0) {
            fail_core(r, &err, in.name);
            goto out;
        }
        wg_instance_dispose(&now);
    }
    if (!strcmp(in.status, WG_STATUS_WORKING)) {
        respond(r, 200, render_state(&in));
        goto out;
    }
    evo_wait_t *w = qr_waiter(c, &a, in.id, NULL, number);
    if (!w) {
        fail(r, 500, "out of memory");
        goto out;
    }
    evo_defer(r, w, wg_dialect_qr_wait_ms(c) + PAIR_WAIT_MS + 1000);
out:
    wg_instance_dispose(&in);
}

static const char *shown_name(const wg_instance_t *in)
{
    return in->name;
}

/* What Evolution's lifecycle routes differ by; the handlers are evo_shape.c's. */
static const wg_evo_shape_t shape = {evo_instance, shown_name, fail_core, render_state};

static void h_state(wg_http_req_t *r, void *ctx)
{
    wg_evo_state(r, ctx, &shape);
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
            json_t *item = NULL;
            if ((has_name && strcmp(v[i].name, name)) || (has_id && strcmp(v[i].id, id)))
                continue;
            /* number: as the item shows it (the phone, or a WHATSAPP-BUSINESS phone number id) */
            item = render_fetch_item(&v[i]);
            const char *ph = json_string_value(json_object_get(item, "number"));
            if (has_num && (!ph || strcmp(ph, num + (num[0] == '+')))) {
                json_decref(item);
                continue;
            }
            json_array_append_new(arr, item);
        }
        wg_instance_list_free(v, n);
        if (page * 100 >= total)
            break;
    }
    respond(r, 200, arr);
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
    if (wg_evo_body(r, &root) != 0)
        goto out;
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
    if (wg_evo_body(r, &root) != 0)
        goto out;
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

/* POST /proxy/set/{name}; proxy_ok as in create_run: an enabled proxy is stored only after a
 * connection through it worked (Evolution's rule). */
static void proxy_set_run(wg_http_req_t *r, wg_api_ctx_t *c, int proxy_ok)
{
    wg_auth_t a;
    wg_instance_t in, out = {0};
    wg_core_err_t err = {0};
    wg_instance_patch_t p;
    json_t *root = NULL, *px = NULL;
    if (evo_auth_again(r, c, &a, proxy_ok) != 0)
        return;
    if (wg_core_instance_by_name(c->core, &a, r->params[0], &in, &err) != 0) {
        fail_core(r, &err, r->params[0]);
        return;
    }
    snprintf(r->log_instance, sizeof(r->log_instance), "%s", in.id);
    if (wg_evo_body(r, &root) != 0)
        goto out;
    memset(&p, 0, sizeof(p));
    p.set_proxy = 1;
    if (!json_is_false(json_object_get(root, "enabled"))) {
        if (!(px = proxy_from(root, 0))) {
            fail(r, 400, "Invalid proxy: host is required");
            goto out;
        }
        p.proxy = px;
        if (!proxy_ok) {
            proxy_test_defer(r, c, px, W_PROXY_SET, 0, in.name);
            goto out;
        }
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

static void h_proxy_set(wg_http_req_t *r, void *ctx)
{
    proxy_set_run(r, ctx, 0);
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
    if (wg_evo_body(r, &root) != 0)
        goto out;
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
    if (wg_evo_body(r, &root) != 0)
        goto out;
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
