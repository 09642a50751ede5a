/* instance.c - instance lifecycle: create (validation, plan limit, token), read, list, patch,
 * delete, start/stop/restart/logout, and the single status-change function.
 *
 * JSON columns are canonical objects written here: settings {autoRead, autoTyping, rejectCall,
 * msgCall, groupsIgnore, alwaysOnline, readMessages, readStatus, syncFullHistory}, webhook
 * {url, events[], byEvents, base64, secret}, proxy {protocol, host, port, username, password}.
 * Dialects map their own shapes onto these. */
#include "core/core.h"
#include "core/token.h"
#include "core/validate.h"
#include "util/err.h"
#include "util/log.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int internal(wg_core_err_t *err, int rv)
{
    wg_core_err_set(err, 500, "internal_error", NULL, "internal error (%s)", wg_strerror(rv));
    return rv;
}

static int not_found(wg_core_err_t *err)
{
    wg_core_err_set(err, 404, "not_found", NULL, "instance not found");
    return WG_ENOTFOUND;
}

/* Limits a store filter to what the caller may see: an account its own instances, an instance
 * token its own instance, the admin everything. -1 for any other credential. */
static int scope_to_caller(const wg_auth_t *a, wg_instance_filter_t *f)
{
    if (a->kind == WG_AUTH_ACCOUNT)
        f->owner_id = a->account_id;
    else if (a->kind == WG_AUTH_INSTANCE)
        f->instance_id = a->instance_id;
    else if (a->kind != WG_AUTH_ADMIN)
        return -1;
    return 0;
}

/* A lookup by name found nothing the caller may see: an instance token asking for any other
 * name is refused (401), so names cannot be probed; others get 404. */
static int not_found_for_caller(const wg_auth_t *a, wg_core_err_t *err)
{
    if (a->kind == WG_AUTH_INSTANCE) {
        wg_core_err_set(err, 401, "unauthorized", NULL, "this token belongs to another instance");
        return WG_EPERM;
    }
    return not_found(err);
}

static const struct {
    const char *key;
    int is_bool;
    int def;
} settings_keys[] = {
    {"autoRead", 1, 0},     {"autoTyping", 1, 1},   {"rejectCall", 1, 0},
    {"msgCall", 0, 0},      {"groupsIgnore", 1, 0}, {"alwaysOnline", 1, 0},
    {"readMessages", 1, 0}, {"readStatus", 1, 0},   {"syncFullHistory", 1, 0},
};
#define NSETTINGS (sizeof(settings_keys) / sizeof(settings_keys[0]))

int wg_core_settings_merge(json_t *base, json_t *in, json_t **out, wg_core_err_t *err)
{
    json_t *s = json_object();
    *out = NULL;
    if (!s)
        return internal(err, WG_ENOMEM);
    for (size_t i = 0; i < NSETTINGS; i++) {
        json_t *v = base ? json_object_get(base, settings_keys[i].key) : NULL;
        if (settings_keys[i].is_bool)
            json_object_set_new(s, settings_keys[i].key,
                                json_boolean(v && json_is_boolean(v) ? json_is_true(v)
                                                                     : settings_keys[i].def));
        else
            json_object_set_new(s, settings_keys[i].key,
                                json_string(v && json_is_string(v) ? json_string_value(v) : ""));
    }
    /* business credentials are set at create only (spec->business), never by a settings patch */
    json_t *biz = base ? json_object_get(base, "business") : NULL;
    if (json_is_object(biz))
        json_object_set(s, "business", biz);
    if (in && !json_is_null(in)) {
        const char *k;
        json_t *v;
        if (!json_is_object(in)) {
            wg_core_err_set(err, 422, "validation_error", "settings", "settings must be an object");
            goto bad;
        }
        json_object_foreach(in, k, v)
        {
            size_t i;
            for (i = 0; i < NSETTINGS; i++)
                if (!strcmp(k, settings_keys[i].key))
                    break;
            char field[64];
            snprintf(field, sizeof(field), "settings.%.50s", k);
            if (i == NSETTINGS) {
                wg_core_err_set(err, 422, "validation_error", field, "unknown setting");
                goto bad;
            }
            if (settings_keys[i].is_bool) {
                if (!json_is_boolean(v)) {
                    wg_core_err_set(err, 422, "validation_error", field, "must be a boolean");
                    goto bad;
                }
                json_object_set(s, k, v);
            } else {
                if (json_is_null(v) || json_is_false(v)) {
                    json_object_set_new(s, k, json_string(""));
                } else if (!json_is_string(v) || !json_string_length(v) ||
                           !wg_valid_text(json_string_value(v), 500)) {
                    wg_core_err_set(err, 422, "validation_error", field,
                                    "must be a text of at most 500 characters");
                    goto bad;
                } else
                    json_object_set(s, k, v);
            }
        }
    }
    *out = s;
    return 0;
bad:
    json_decref(s);
    return WG_EINVAL;
}

int wg_core_proxy_parse(json_t *in, json_t **out, wg_core_err_t *err)
{
    json_t *p = NULL;
    *out = NULL;
    if (!in || json_is_null(in))
        return 0;
    if (!json_is_object(in)) {
        wg_core_err_set(err, 422, "validation_error", "proxy", "proxy must be an object");
        return WG_EINVAL;
    }
    json_t *proto = json_object_get(in, "protocol"), *host = json_object_get(in, "host"),
           *port = json_object_get(in, "port"), *user = json_object_get(in, "username"),
           *pass = json_object_get(in, "password");
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (strcmp(k, "protocol") && strcmp(k, "host") && strcmp(k, "port") &&
            strcmp(k, "username") && strcmp(k, "password")) {
            char field[64];
            snprintf(field, sizeof(field), "proxy.%.50s", k);
            wg_core_err_set(err, 422, "validation_error", field, "unknown proxy field");
            return WG_EINVAL;
        }
    }
    const char *ps = proto ? json_string_value(proto) : "http";
    if (!ps || (strcmp(ps, "http") && strcmp(ps, "https") && strcmp(ps, "socks5"))) {
        wg_core_err_set(err, 422, "validation_error", "proxy.protocol",
                        "protocol must be http, https or socks5");
        return WG_EINVAL;
    }
    const char *hs = host ? json_string_value(host) : NULL;
    if (!hs || !*hs || strlen(hs) > 253 || strpbrk(hs, " /@?#\t\r\n")) {
        wg_core_err_set(err, 422, "validation_error", "proxy.host", "host is required");
        return WG_EINVAL;
    }
    long long pn = -1;
    if (port && json_is_integer(port))
        pn = json_integer_value(port);
    else if (port && json_is_string(port)) {
        const char *s = json_string_value(port);
        char *e;
        if (*s && strlen(s) <= 5 && s[0] >= '0' && s[0] <= '9') {
            pn = strtoll(s, &e, 10);
            if (*e)
                pn = -1;
        }
    }
    if (pn < 1 || pn > 65535) {
        wg_core_err_set(err, 422, "validation_error", "proxy.port",
                        "port must be an integer from 1 to 65535");
        return WG_EINVAL;
    }
    if ((user && !json_is_null(user) && (!json_is_string(user) || json_string_length(user) > 255)) ||
        (pass && !json_is_null(pass) && (!json_is_string(pass) || json_string_length(pass) > 255))) {
        wg_core_err_set(err, 422, "validation_error",
                        user && !json_is_null(user) && !json_is_string(user) ? "proxy.username"
                                                                              : "proxy.password",
                        "must be a text of at most 255 characters");
        return WG_EINVAL;
    }
    p = json_pack("{s:s, s:s, s:I}", "protocol", ps, "host", hs, "port", (json_int_t)pn);
    if (!p)
        return internal(err, WG_ENOMEM);
    if (user && json_is_string(user))
        json_object_set(p, "username", user);
    if (pass && json_is_string(pass))
        json_object_set(p, "password", pass);
    *out = p;
    return 0;
}

int wg_core_events_parse(json_t *in, json_t **out, wg_core_err_t *err)
{
    size_t i;
    json_t *v;
    *out = NULL;
    if (!json_is_array(in)) {
        wg_core_err_set(err, 422, "invalid_webhook_events", "webhookEvents",
                        "webhookEvents must be an array of event names");
        return WG_EINVAL;
    }
    json_t *a = json_array();
    if (!a)
        return internal(err, WG_ENOMEM);
    json_array_foreach(in, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || !wg_valid_event(s)) {
            wg_core_err_set(err, 422, "invalid_webhook_events", "webhookEvents",
                            "unknown webhook event '%.60s'", s ? s : "(not a string)");
            json_decref(a);
            return WG_EINVAL;
        }
        size_t j;
        json_t *w;
        int dup = 0;
        json_array_foreach(a, j, w) dup |= !strcmp(json_string_value(w), s);
        if (!dup)
            json_array_append(a, v);
    }
    *out = a;
    return 0;
}

static int check_webhook_url(const char *url, wg_core_err_t *err)
{
    if (url && !wg_valid_http_url(url)) {
        wg_core_err_set(err, 422, "invalid_webhook_url", "webhookUrl",
                        "webhookUrl must be an absolute http(s) URL");
        return WG_EINVAL;
    }
    return 0;
}

/* JSON text of a webhook object built from url/events over an existing one (may be NULL). */
static char *webhook_json(const char *old, int set_url, const char *url, json_t *events)
{
    json_t *w = old ? json_loads(old, 0, NULL) : NULL;
    char *s = NULL;
    if (!w || !json_is_object(w)) {
        json_decref(w);
        w = json_pack("{s:n, s:[], s:b, s:b, s:n}", "url", "events", "byEvents", 0, "base64", 0,
                      "secret");
    }
    if (!w)
        return NULL;
    if (set_url)
        json_object_set_new(w, "url", url ? json_string(url) : json_null());
    if (events)
        json_object_set(w, "events", events);
    s = json_dumps(w, JSON_COMPACT);
    json_decref(w);
    return s;
}

/* Headers an instance may add to its webhook requests: {name: value}, at most
 * WEBHOOK_HEADERS_MAX, names RFC 9110 tokens, values without control characters (no CR/LF:
 * no header injection), and never one the gateway sets itself (framing, signatures, the
 * dialects' own headers). null clears. 0, or WG_EINVAL with err naming webhookHeaders. */
#define WEBHOOK_HEADERS_MAX 20
#define WEBHOOK_HEADER_NAME_MAX 64
#define WEBHOOK_HEADER_VALUE_MAX 1024
static int check_webhook_headers(json_t *h, wg_core_err_t *err)
{
    static const char *const reserved[] = {
        "content-type", "content-length", "content-encoding", "transfer-encoding", "host",
        "connection", "keep-alive", "upgrade", "te", "trailer", "expect",
        "x-enviaai-signature", "x-userid", "x-instanceid"};
    const char *k;
    json_t *v;
    if (!h || json_is_null(h))
        return 0;
    if (!json_is_object(h) || json_object_size(h) > WEBHOOK_HEADERS_MAX) {
        wg_core_err_set(err, 422, "validation_error", "webhookHeaders",
                        "webhookHeaders must be an object of at most %d headers",
                        WEBHOOK_HEADERS_MAX);
        return WG_EINVAL;
    }
    json_object_foreach(h, k, v)
    {
        size_t n = strlen(k), vl = json_string_length(v);
        const char *s = json_string_value(v);
        int ok = n > 0 && n <= WEBHOOK_HEADER_NAME_MAX && strncasecmp(k, "x-wagate-", 9) != 0;
        for (size_t i = 0; ok && i < n; i++) /* tchar */
            ok = (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
                 (k[i] >= '0' && k[i] <= '9') || strchr("!#$%&'*+-.^_`|~", k[i]);
        for (size_t i = 0; ok && i < sizeof(reserved) / sizeof(reserved[0]); i++)
            ok = strcasecmp(k, reserved[i]) != 0;
        if (!ok) {
            wg_core_err_set(err, 422, "validation_error", "webhookHeaders",
                            "webhookHeaders: '%.64s' is not a header name you may set", k);
            return WG_EINVAL;
        }
        ok = s && vl <= WEBHOOK_HEADER_VALUE_MAX && strlen(s) == vl; /* no NUL inside */
        for (size_t i = 0; ok && i < vl; i++)
            ok = ((unsigned char)s[i] >= 0x20 && s[i] != 0x7f) || s[i] == '\t';
        if (!ok) {
            wg_core_err_set(err, 422, "validation_error", "webhookHeaders",
                            "webhookHeaders.%.64s must be a text of at most %d characters "
                            "without control characters",
                            k, WEBHOOK_HEADER_VALUE_MAX);
            return WG_EINVAL;
        }
    }
    return 0;
}

/* Validates {byEvents, base64, maxAttempts, headers} (any subset) and merges it into *wh. */
static int merge_webhook_opts(char **wh, json_t *opts, wg_core_err_t *err)
{
    json_t *w = NULL, *v;
    char *txt = NULL;
    int rv = WG_EINVAL;
    if (!opts)
        return 0;
    if (((v = json_object_get(opts, "byEvents")) && !json_is_boolean(v)) ||
        ((v = json_object_get(opts, "base64")) && !json_is_boolean(v))) {
        wg_core_err_set(err, 422, "validation_error", "webhookByEvents",
                        "webhookByEvents and webhookBase64 must be booleans");
        return WG_EINVAL;
    }
    if ((v = json_object_get(opts, "maxAttempts")) &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000)) {
        wg_core_err_set(err, 422, "validation_error", "webhookMaxAttempts",
                        "webhookMaxAttempts must be an integer from 1 to 1000");
        return WG_EINVAL;
    }
    if (check_webhook_headers(json_object_get(opts, "headers"), err) != 0)
        return WG_EINVAL;
    if (!(w = json_loads(*wh, 0, NULL)) || json_object_update(w, opts) != 0 ||
        !(txt = json_dumps(w, JSON_COMPACT))) {
        rv = internal(err, WG_ENOMEM);
        goto out;
    }
    free(*wh);
    *wh = txt;
    rv = 0;
out:
    json_decref(w);
    return rv;
}

/* Sets the secret that signs webhook bodies (X-Wagate-Signature); generated when not given.
 * Stored in the instance row as given (it is needed to sign: see docs/events.md). */
static int set_webhook_secret(char **wh, const char *given)
{
    json_t *w = json_loads(*wh, 0, NULL);
    char *sec = given ? strdup(given) : wg_token_new("whsec_");
    char *txt = NULL;
    int rv = WG_ENOMEM;
    if (!w || !sec)
        goto out;
    json_object_set_new(w, "secret", json_string(sec));
    if (!(txt = json_dumps(w, JSON_COMPACT)))
        goto out;
    free(*wh);
    *wh = txt;
    rv = 0;
out:
    json_decref(w);
    free(sec);
    return rv;
}

typedef struct {
    const char *id, *status, *reason;
    const char *jid, *phone, *push_name; /* WORKING: the linked identity (or NULL) */
} status_ev_t;

static int make_status_ev(const char *prev, wg_store_event_t *ev, void *arg)
{
    status_ev_t *s = arg;
    json_t *p = json_pack("{s:s, s:s, s:s?, s:s?}", "instanceId", s->id, "status", s->status,
                          "previousStatus", prev, "reason", s->reason);
    if (!p)
        return WG_ENOMEM;
    if (s->jid) {
        json_object_set_new(p, "jid", json_string(s->jid));
        json_object_set_new(p, "phone", s->phone ? json_string(s->phone) : json_null());
        json_object_set_new(p, "pushName", s->push_name ? json_string(s->push_name) : json_null());
    }
    char *txt = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (!txt)
        return WG_ENOMEM;
    ev->name = "connection.updated";
    ev->payload = txt; /* freed by the caller of wg_store_instance_set_status (below) */
    return 0;
}

typedef struct {
    status_ev_t s;
    char *payload;
} status_ev_owned_t;

static int make_status_ev_owned(const char *prev, wg_store_event_t *ev, void *arg)
{
    status_ev_owned_t *o = arg;
    int rv = make_status_ev(prev, ev, &o->s);
    if (!rv)
        o->payload = (char *)ev->payload;
    return rv;
}

static int set_status_ex(wg_core_t *c, const status_ev_t *s)
{
    const char *id = s->id, *status = s->status, *reason = s->reason;
    status_ev_owned_t o = {*s, NULL};
    char *prev = NULL;
    int rv = wg_store_instance_set_status(c->store, id, status, reason, make_status_ev_owned, &o,
                                          &prev);
    free(o.payload);
    if (rv == 0)
        wg_log(WG_LOG_INFO, "core", "instance=%s from=%s to=%s reason=%s", id, prev, status,
               reason ? reason : "-");
    else
        wg_log(WG_LOG_ERROR, "core", "instance=%s to=%s err=%s", id, status, wg_strerror(rv));
    free(prev);
    return rv;
}

int wg_core_instance_set_status(wg_core_t *c, const char *id, const char *status,
                                const char *reason)
{
    status_ev_t s = {id, status, reason, NULL, NULL, NULL};
    return set_status_ex(c, &s);
}

void wg_core_engine_report(wg_core_t *c, const wg_engine_report_t *r)
{
    wg_instance_t cur;
    /* The engine runs only what the core started; a report that crosses a stop (or a delete)
     * on its way here must not bring the instance back. */
    if (wg_store_instance_get(c->store, r->instance_id, &cur) != 0)
        return;
    int stopped = !strcmp(cur.status, WG_STATUS_STOPPED);
    wg_instance_dispose(&cur);
    if (stopped) {
        wg_log(WG_LOG_DEBUG, "core", "instance=%s stopped: engine report %s ignored",
               r->instance_id, r->status ? r->status : "qr");
        return;
    }
    if (r->jid && wg_store_instance_set_identity(c->store, r->instance_id, r->jid, r->phone,
                                                 r->push_name) != 0)
        wg_log(WG_LOG_ERROR, "core", "instance=%s identity not stored", r->instance_id);
    if (r->status) {
        status_ev_t s = {r->instance_id, r->status, r->reason, r->jid, r->phone, r->push_name};
        set_status_ex(c, &s);
    }
    if (r->qr) {
        char exp[96];
        time_t t = (time_t)(r->qr_expires_at / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(exp, sizeof(exp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(r->qr_expires_at % 1000));
        json_t *p = json_pack("{s:s, s:s, s:s}", "instanceId", r->instance_id, "code", r->qr,
                              "expiresAt", exp);
        char *txt = p ? json_dumps(p, JSON_COMPACT) : NULL;
        json_decref(p);
        wg_store_event_t ev = {"qr.updated", txt};
        if (!txt || wg_store_event_append(c->store, r->instance_id, &ev) != 0)
            wg_log(WG_LOG_ERROR, "core", "instance=%s qr.updated not stored", r->instance_id);
        free(txt);
    }
}

static int is_business(const char *integration)
{
    return integration && !strcmp(integration, "WHATSAPP-BUSINESS");
}

/* Asks the engine to start id (already STARTING); FAILED + reason when it cannot. The engine
 * speaks the multi-device (Baileys) protocol only: a WHATSAPP-BUSINESS instance needs Meta's
 * Cloud API transport, which wagate does not have, so it fails at once with a reason that says
 * so instead of pretending to connect. */
static int engine_start(wg_core_t *c, const char *id, const char *integration)
{
    char reason[64] = "engine_unavailable";
    if (is_business(integration))
        return wg_core_instance_set_status(c, id, WG_STATUS_FAILED, "cloud_api_not_supported");
    if (c->engine && c->engine->ops->start(c->engine, id, reason, sizeof(reason)) == 0)
        return 0;
    return wg_core_instance_set_status(c, id, WG_STATUS_FAILED, reason);
}

/* settings with "business": {token, businessId, phoneNumberId} added from spec->business;
 * every key a non-empty text of at most 500 characters (field "business.<key>"). */
static int add_business(json_t *settings, json_t *biz, wg_core_err_t *err)
{
    static const char *const keys[] = {"token", "businessId", "phoneNumberId"};
    json_t *o = json_object();
    if (!o)
        return internal(err, WG_ENOMEM);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_is_object(biz) ? json_object_get(biz, keys[i]) : NULL;
        if (!json_is_string(v) || !json_string_length(v) ||
            !wg_valid_text(json_string_value(v), 500)) {
            char field[40];
            snprintf(field, sizeof(field), "business.%s", keys[i]);
            wg_core_err_set(err, 422, "validation_error", field,
                            "%s is required for WHATSAPP-BUSINESS (a text of at most 500 "
                            "characters)",
                            field);
            json_decref(o);
            return WG_EINVAL;
        }
        json_object_set(o, keys[i], v);
    }
    json_object_set_new(settings, "business", o);
    return 0;
}

/* "t<n>_<8 base36 random>_<slug>": slug = name lowered, runs of other than [a-z0-9] as one
 * '-', trimmed, at most 40 characters ("instance" when nothing is left). */
static int make_api_name(wg_core_t *c, const char *owner, const char *name, char *out,
                         size_t cap)
{
    static const char b36[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[8];
    char rs[9], slug[41];
    size_t n = 0;
    wg_instance_filter_t f = {0};
    wg_instance_t *v = NULL;
    size_t cnt = 0;
    int64_t total = 0;
    f.owner_id = owner;
    f.limit = 1;
    int rv = wg_store_instance_list(c->store, &f, &v, &cnt, &total);
    wg_instance_list_free(v, cnt);
    if (rv)
        return rv;
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return WG_ECRYPTO;
    for (size_t i = 0; i < sizeof(rnd); i++)
        rs[i] = b36[rnd[i] % 36]; /* bias of 256 % 36 is irrelevant: uniqueness is the index's */
    rs[8] = 0;
    for (const char *p = name; *p && n < sizeof(slug) - 1; p++) {
        char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            slug[n++] = ch;
        else if (n && slug[n - 1] != '-')
            slug[n++] = '-';
    }
    while (n && slug[n - 1] == '-')
        n--;
    slug[n] = 0;
    snprintf(out, cap, "t%lld_%s_%s", (long long)total + 1, rs, n ? slug : "instance");
    return 0;
}

int wg_core_instance_create(wg_core_t *c, const wg_instance_spec_t *spec, wg_instance_t *out,
                            char **token, wg_core_err_t *err)
{
    json_t *settings = NULL, *proxy = NULL, *events = NULL, *sinks = NULL, *cw = NULL;
    char phone[20], h[65];
    char *wh = NULL, *st_txt = NULL, *px_txt = NULL, *ev_txt = NULL;
    char *sk_txt = NULL, *cw_txt = NULL;
    const char *conflict = NULL;
    wg_instance_t in = {0};
    wg_account_t owner = {0};
    int rv;
    memset(out, 0, sizeof(*out));
    *token = NULL;

    if (!spec->name || !*spec->name) {
        wg_core_err_set(err, 422, "validation_error", "name", "name is required");
        return WG_EINVAL;
    }
    if (!wg_valid_text(spec->name, 50)) {
        wg_core_err_set(err, 422, "validation_error", "name",
                        "name must be 1 to 50 characters without control characters");
        return WG_EINVAL;
    }
    if (spec->phone && !wg_valid_e164(spec->phone, phone, sizeof(phone))) {
        wg_core_err_set(err, 422, "validation_error", "phone",
                        "phone must be in E.164 format, e.g. +5511999999999");
        return WG_EINVAL;
    }
    if (spec->integration && strcmp(spec->integration, "WHATSAPP-BAILEYS") &&
        strcmp(spec->integration, "WHATSAPP-BUSINESS")) {
        wg_core_err_set(err, 422, "validation_error", "integration",
                        "integration must be WHATSAPP-BAILEYS or WHATSAPP-BUSINESS");
        return WG_EINVAL;
    }
    if (spec->token && !wg_valid_token(spec->token)) {
        wg_core_err_set(err, 422, "validation_error", "token",
                        "token must be 16 to 256 printable characters without spaces");
        return WG_EINVAL;
    }
    if (spec->webhook_secret && !wg_valid_token(spec->webhook_secret)) {
        wg_core_err_set(err, 422, "validation_error", "webhookSecret",
                        "webhookSecret must be 16 to 256 printable characters without spaces");
        return WG_EINVAL;
    }
    if ((rv = check_webhook_url(spec->webhook_url, err)) != 0)
        return rv;
    if (spec->webhook_events && (rv = wg_core_events_parse(spec->webhook_events, &events, err)))
        goto out;
    if ((rv = wg_core_settings_merge(NULL, spec->settings, &settings, err)) != 0 ||
        (rv = wg_core_proxy_parse(spec->proxy, &proxy, err)) != 0)
        goto out;
    if (is_business(spec->integration) &&
        (rv = add_business(settings, spec->business, err)) != 0)
        goto out;
    if ((spec->sinks && (rv = wg_core_sinks_parse(spec->sinks, &sinks, err)) != 0) ||
        (rv = wg_core_chatwoot_parse(spec->chatwoot, spec->name, &cw, err)) != 0)
        goto out;
    if ((sinks && !(sk_txt = json_dumps(sinks, JSON_COMPACT))) ||
        (cw && !(cw_txt = json_dumps(cw, JSON_COMPACT)))) {
        rv = internal(err, WG_ENOMEM);
        goto out;
    }

    if ((rv = wg_store_account_get(c->store, spec->owner_id, &owner)) != 0) {
        if (rv == WG_ENOTFOUND)
            wg_core_err_set(err, 422, "validation_error", "accountId", "account not found");
        else
            internal(err, rv);
        goto out;
    }
    int64_t limit = wg_core_plan_limit(c, owner.plan);

    *token = spec->token ? strdup(spec->token) : wg_token_new("wgi_");
    in.id = wg_uuid_new();
    wh = webhook_json(NULL, 1, spec->webhook_url, events);
    if (wh && (rv = set_webhook_secret(&wh, spec->webhook_secret)) != 0) {
        internal(err, rv);
        goto out;
    }
    if (wh && (rv = merge_webhook_opts(&wh, spec->webhook_opts, err)) != 0)
        goto out;
    st_txt = json_dumps(settings, JSON_COMPACT);
    px_txt = proxy ? json_dumps(proxy, JSON_COMPACT) : NULL;
    if (!*token || !in.id || !wh || !st_txt || (proxy && !px_txt)) {
        rv = internal(err, WG_ENOMEM);
        goto out;
    }
    wg_token_hash(*token, strlen(*token), h);
    in.owner_id = (char *)spec->owner_id;
    in.name = (char *)spec->name;
    in.api_name = (char *)spec->api_name;
    in.phone = spec->phone ? phone : NULL;
    in.integration = (char *)(spec->integration ? spec->integration : "WHATSAPP-BAILEYS");
    in.status = WG_STATUS_STARTING;
    in.dialect = (char *)(spec->dialect ? spec->dialect : "native");
    in.webhook = wh;
    in.settings = st_txt;
    in.proxy = px_txt;
    in.sinks = sk_txt; /* NULL: "{}" */
    in.chatwoot = cw_txt;
    in.created_at = in.updated_at = wg_store_now_ms();

    json_t *evp = json_pack("{s:s, s:s, s:n}", "instanceId", in.id, "status", WG_STATUS_STARTING,
                            "previousStatus");
    ev_txt = evp ? json_dumps(evp, JSON_COMPACT) : NULL;
    json_decref(evp);
    if (!ev_txt) {
        rv = internal(err, WG_ENOMEM);
        goto out;
    }
    wg_store_event_t ev = {"connection.updated", ev_txt};
    char api_name[96];
    for (int attempt = 0;; attempt++) {
        if (spec->api_name_auto) {
            if ((rv = make_api_name(c, spec->owner_id, spec->name, api_name,
                                    sizeof(api_name))) != 0) {
                internal(err, rv);
                goto out;
            }
            in.api_name = api_name;
        }
        rv = wg_store_instance_insert(c->store, &in, h, limit, &ev, &conflict);
        /* a generated api_name that collides is drawn again (8 base36 characters: rare) */
        if (!(rv == WG_EEXIST && spec->api_name_auto && conflict &&
              !strcmp(conflict, "api_name") && attempt < 4))
            break;
    }
    if (rv == WG_ELIMIT) {
        wg_core_err_set(err, 403, "instance_limit_reached", NULL,
                        "plan '%s' allows %lld instance(s)", owner.plan, (long long)limit);
        goto out;
    }
    if (rv == WG_EEXIST) {
        if (conflict && !strcmp(conflict, "token"))
            wg_core_err_set(err, 422, "validation_error", "token", "token already in use");
        else if (conflict && !strcmp(conflict, "api_name"))
            wg_core_err_set(err, 422, "validation_error", "name", "name already in use");
        else
            wg_core_err_set(err, 422, "validation_error", "name",
                            "an instance with this name already exists");
        if (err)
            err->taken = 1;
        goto out;
    }
    if (rv) {
        internal(err, rv);
        goto out;
    }
    wg_log(WG_LOG_INFO, "core", "instance=%s created owner=%s from=- to=%s", in.id,
           spec->owner_id, WG_STATUS_STARTING);
    engine_start(c, in.id, in.integration); /* a failure is recorded as FAILED, not returned */
    if ((rv = wg_store_instance_get(c->store, in.id, out)) != 0)
        internal(err, rv);
out:
    json_decref(settings);
    json_decref(proxy);
    json_decref(events);
    free(wh);
    free(st_txt);
    free(px_txt);
    free(ev_txt);
    free(sk_txt);
    free(cw_txt);
    json_decref(sinks);
    json_decref(cw);
    free(in.id);
    wg_account_dispose(&owner);
    if (rv) {
        free(*token);
        *token = NULL;
    }
    return rv;
}

static int may_see(const wg_auth_t *a, const wg_instance_t *in)
{
    switch (a->kind) {
    case WG_AUTH_ADMIN:
        return 1;
    case WG_AUTH_ACCOUNT:
        return !strcmp(a->account_id, in->owner_id);
    case WG_AUTH_INSTANCE:
        return !strcmp(a->instance_id, in->id);
    default:
        return 0;
    }
}

int wg_core_instance_get(wg_core_t *c, const wg_auth_t *a, const char *id, wg_instance_t *out,
                         wg_core_err_t *err)
{
    int rv = wg_store_instance_get(c->store, id, out);
    if (rv == WG_ENOTFOUND)
        return not_found(err);
    if (rv)
        return internal(err, rv);
    if (!may_see(a, out)) {
        wg_instance_dispose(out);
        return not_found(err);
    }
    return 0;
}

int wg_core_instance_by_name(wg_core_t *c, const wg_auth_t *a, const char *name,
                             wg_instance_t *out, wg_core_err_t *err)
{
    wg_instance_filter_t f = {0};
    wg_instance_t *v = NULL;
    size_t n = 0;
    int64_t total = 0;
    int found = -1;
    memset(out, 0, sizeof(*out));
    if (scope_to_caller(a, &f) != 0)
        return not_found(err);
    if (!name || !*name)
        return not_found(err);
    /* name_like is a case-insensitive substring: page through and keep the exact match */
    f.name_like = name;
    f.limit = 100;
    for (f.offset = 0;; f.offset += f.limit) {
        int rv = wg_store_instance_list(c->store, &f, &v, &n, &total);
        if (rv)
            return internal(err, rv);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(v[i].name, name))
                continue;
            /* the admin's own instance wins over another owner's of the same name */
            if (found < 0 || !strcmp(v[i].owner_id, WG_ADMIN_ACCOUNT_ID)) {
                if (found >= 0)
                    wg_instance_dispose(out);
                *out = v[i];
                memset(&v[i], 0, sizeof(v[i]));
                found = 1;
            }
        }
        wg_instance_list_free(v, n);
        v = NULL;
        if (f.offset + f.limit >= total || (found >= 0 && a->kind != WG_AUTH_ADMIN))
            break;
    }
    return found < 0 ? not_found_for_caller(a, err) : 0;
}

int wg_core_instance_by_api_name(wg_core_t *c, const wg_auth_t *a, const char *api_name,
                                 wg_instance_t *out, wg_core_err_t *err)
{
    wg_instance_filter_t f = {0};
    wg_instance_t *v = NULL;
    size_t n = 0;
    int64_t total = 0;
    memset(out, 0, sizeof(*out));
    if (scope_to_caller(a, &f) != 0)
        return not_found(err);
    if (!api_name || !*api_name)
        return not_found(err);
    f.api_name = api_name;
    f.limit = 1;
    int rv = wg_store_instance_list(c->store, &f, &v, &n, &total);
    if (rv)
        return internal(err, rv);
    if (n == 1) {
        *out = v[0];
        memset(&v[0], 0, sizeof(v[0]));
    }
    wg_instance_list_free(v, n);
    return n == 1 ? 0 : not_found_for_caller(a, err);
}

int wg_core_instance_list(wg_core_t *c, const wg_auth_t *a, const char *status,
                          const char *name_like, int64_t page, int64_t limit, wg_instance_t **out,
                          size_t *n, int64_t *total, wg_core_err_t *err)
{
    wg_instance_filter_t f = {0};
    static const char *const statuses[] = {WG_STATUS_STOPPED, WG_STATUS_STARTING,
                                           WG_STATUS_SCAN_QR, WG_STATUS_WORKING,
                                           WG_STATUS_FAILED,  WG_STATUS_PENDING};
    if (status) {
        size_t i;
        for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
            if (!strcmp(status, statuses[i]))
                break;
        if (i == sizeof(statuses) / sizeof(statuses[0])) {
            wg_core_err_set(err, 422, "validation_error", "status",
                            "status must be one of STOPPED, STARTING, SCAN_QR_CODE, WORKING, "
                            "FAILED, PENDING");
            return WG_EINVAL;
        }
    }
    if (page < 1 || page > 1000000) {
        wg_core_err_set(err, 422, "validation_error", "page", "page must be a positive integer");
        return WG_EINVAL;
    }
    if (limit < 1 || limit > 100) {
        wg_core_err_set(err, 422, "validation_error", "limit", "limit must be from 1 to 100");
        return WG_EINVAL;
    }
    if (scope_to_caller(a, &f) != 0)
        return not_found(err);
    f.status = status;
    f.name_like = name_like && *name_like ? name_like : NULL;
    f.offset = (page - 1) * limit;
    f.limit = limit;
    int rv = wg_store_instance_list(c->store, &f, out, n, total);
    return rv ? internal(err, rv) : 0;
}

typedef struct {
    const wg_auth_t *a;
    const wg_instance_patch_t *p;
    wg_core_err_t *err;
    json_t *events, *proxy;
    char *wh, *st_txt, *px_txt; /* what merge_patch wrote; freed by the caller */
    int refused;                /* merge_patch set err */
} patch_t;

/* The read-merge-write of a patch: runs inside the store's write transaction on the row as
 * stored, so it sees every patch committed before it, and one committed after it sees this one:
 * two concurrent patches of different fields (webhookUrl and webhookEvents, two settings keys)
 * both survive. Validation happens here too, after the visibility check, so another owner's id
 * never reveals validation details; it is only JSON work, the write lock is held for
 * microseconds. */
static int merge_fields(const wg_instance_t *cur, wg_instance_change_t *chg, patch_t *x)
{
    const wg_instance_patch_t *p = x->p;
    json_t *old = NULL, *settings = NULL;
    int rv;
    if (!may_see(x->a, cur))
        return not_found(x->err);
    if (p->set_webhook_url && (rv = check_webhook_url(p->webhook_url, x->err)) != 0)
        return rv;
    if (p->webhook_events && (rv = wg_core_events_parse(p->webhook_events, &x->events, x->err)))
        return rv;
    if (p->settings) {
        old = json_loads(cur->settings, 0, NULL);
        rv = wg_core_settings_merge(old, p->settings, &settings, x->err);
        json_decref(old);
        if (rv)
            return rv;
        x->st_txt = json_dumps(settings, JSON_COMPACT);
        json_decref(settings);
        if (!x->st_txt)
            return internal(x->err, WG_ENOMEM);
        chg->settings = x->st_txt;
    }
    if (p->set_proxy) {
        if ((rv = wg_core_proxy_parse(p->proxy, &x->proxy, x->err)) != 0)
            return rv;
        if (x->proxy && !(x->px_txt = json_dumps(x->proxy, JSON_COMPACT)))
            return internal(x->err, WG_ENOMEM);
        chg->set_proxy = 1;
        chg->proxy = x->px_txt;
    }
    if (p->set_webhook_url || x->events || p->webhook_opts) {
        if (!(x->wh = webhook_json(cur->webhook, p->set_webhook_url, p->webhook_url, x->events)))
            return internal(x->err, WG_ENOMEM);
        if ((rv = merge_webhook_opts(&x->wh, p->webhook_opts, x->err)) != 0)
            return rv;
        chg->webhook = x->wh;
    }
    return 0;
}

static int merge_patch(const wg_instance_t *cur, wg_instance_change_t *chg, void *arg)
{
    patch_t *x = arg;
    int rv = merge_fields(cur, chg, x);
    x->refused = rv != 0;
    return rv;
}

int wg_core_instance_update(wg_core_t *c, const wg_auth_t *a, const char *id,
                            const wg_instance_patch_t *p, wg_instance_t *out, wg_core_err_t *err)
{
    patch_t x = {.a = a, .p = p, .err = err};
    int rv = wg_store_instance_patch(c->store, id, merge_patch, &x, out);
    if (rv == WG_ENOTFOUND && !x.refused)
        not_found(err);
    else if (rv && !x.refused)
        internal(err, rv);
    else if (!rv)
        wg_log(WG_LOG_INFO, "core", "instance=%s updated", id);
    json_decref(x.events);
    json_decref(x.proxy);
    free(x.wh);
    free(x.st_txt);
    free(x.px_txt);
    return rv;
}

int wg_core_instance_delete(wg_core_t *c, const wg_auth_t *a, const char *id, wg_core_err_t *err)
{
    wg_instance_t cur;
    int rv;
    if (a->kind == WG_AUTH_INSTANCE) {
        /* an instance token may operate its instance but not destroy it */
        if ((rv = wg_core_instance_get(c, a, id, &cur, err)) != 0)
            return rv;
        wg_instance_dispose(&cur);
        wg_core_err_set(err, 403, "forbidden", NULL,
                        "an instance token cannot delete its instance; use the account key");
        return WG_EPERM;
    }
    if ((rv = wg_core_instance_get(c, a, id, &cur, err)) != 0)
        return rv;
    if (c->engine)
        c->engine->ops->stop(c->engine, id);
    json_t *p = json_pack("{s:s, s:s, s:s}", "instanceId", id, "name", cur.name,
                          "previousStatus", cur.status);
    char *txt = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!txt) {
        rv = internal(err, WG_ENOMEM);
        goto out;
    }
    wg_store_event_t ev = {"instance.deleted", txt};
    rv = wg_store_instance_delete(c->store, id, &ev);
    free(txt);
    if (rv == WG_ENOTFOUND)
        not_found(err);
    else if (rv)
        internal(err, rv);
    else
        wg_log(WG_LOG_INFO, "core", "instance=%s deleted from=%s", id, cur.status);
out:
    wg_instance_dispose(&cur);
    return rv;
}

static int is_running(const char *s)
{
    return !strcmp(s, WG_STATUS_STARTING) || !strcmp(s, WG_STATUS_SCAN_QR) ||
           !strcmp(s, WG_STATUS_WORKING) || !strcmp(s, WG_STATUS_PENDING);
}

int wg_core_instance_action(wg_core_t *c, const wg_auth_t *a, const char *id, wg_action_t act,
                            wg_instance_t *out, wg_core_err_t *err)
{
    wg_instance_t cur;
    int rv;
    memset(out, 0, sizeof(*out));
    if ((rv = wg_core_instance_get(c, a, id, &cur, err)) != 0)
        return rv;
    int running = is_running(cur.status), business = is_business(cur.integration);
    wg_instance_dispose(&cur);
    if (act == WG_ACTION_STOP || act == WG_ACTION_RESTART || act == WG_ACTION_LOGOUT) {
        if (c->engine) {
            if (act == WG_ACTION_LOGOUT)
                c->engine->ops->logout(c->engine, id);
            else
                c->engine->ops->stop(c->engine, id);
        }
        if (act == WG_ACTION_LOGOUT)
            rv = wg_core_instance_set_status(c, id, WG_STATUS_STOPPED, "logout");
        else if (running || act == WG_ACTION_STOP)
            rv = wg_core_instance_set_status(c, id, WG_STATUS_STOPPED, NULL);
        running = 0;
    }
    if (!rv && (act == WG_ACTION_START || act == WG_ACTION_RESTART) && !running) {
        if ((rv = wg_core_instance_set_status(c, id, WG_STATUS_STARTING, NULL)) == 0)
            rv = engine_start(c, id, business ? "WHATSAPP-BUSINESS" : NULL);
    }
    if (rv == WG_ENOTFOUND) /* deleted meanwhile */
        return not_found(err);
    if (rv || (rv = wg_store_instance_get(c->store, id, out)) != 0)
        return rv == WG_ENOTFOUND ? not_found(err) : internal(err, rv);
    return 0;
}
