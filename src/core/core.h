/* core.h - the business layer: accounts, plans, credentials and the instance lifecycle.
 *
 * A wg_core_t belongs to one thread (it holds that thread's store connection); the engine and
 * the config are shared and read-only here. Dialect adapters (api/) parse requests into the
 * structs below, call these functions and render the results; they hold no business rules.
 *
 * Errors: functions return 0 or a negative WG_E*; on any failure they fill *err with the HTTP
 * status, a stable snake_case code, the offending field (or "") and a message for the client.
 * Results (wg_instance_t, wg_account_t) are owned by the caller: dispose them.
 * Every status change goes through wg_core_instance_set_status (one transaction with its
 * connection.updated event, then one log line). */
#ifndef WG_CORE_CORE_H
#define WG_CORE_CORE_H

#include "core/engine.h"
#include "core/plan.h"
#include "store/store.h"
#include "util/config.h"

#include <jansson.h>

#define WG_STATUS_STOPPED "STOPPED"
#define WG_STATUS_STARTING "STARTING"
#define WG_STATUS_SCAN_QR "SCAN_QR_CODE"
#define WG_STATUS_WORKING "WORKING"
#define WG_STATUS_FAILED "FAILED"
#define WG_STATUS_PENDING "PENDING"

#define WG_ADMIN_ACCOUNT_ID "acc_admin"

typedef struct {
    int status;       /* HTTP status */
    const char *code; /* "validation_error", ... (static) */
    char field[64];
    char message[200];
    int taken; /* 1 when the value is well-formed but already in use (dialects render it apart) */
} wg_core_err_t;

void wg_core_err_set(wg_core_err_t *e, int status, const char *code, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

typedef struct {
    const wg_config_t *cfg;
    wg_store_t *store; /* owned */
    wg_engine_t *engine;
    wg_plans_t plans;
    char admin_hash[65];
} wg_core_t;

typedef enum { WG_AUTH_NONE = 0, WG_AUTH_ADMIN, WG_AUTH_ACCOUNT, WG_AUTH_INSTANCE } wg_auth_kind_t;

typedef struct {
    wg_auth_kind_t kind;
    char account_id[64];  /* ACCOUNT and INSTANCE (the owner) */
    char instance_id[64]; /* INSTANCE */
} wg_auth_t;

/* Opens the store (migrations) and loads the admin key hash. Takes no ownership of cfg/engine.
 * Free with wg_core_free (closes the store). */
int wg_core_new(const wg_config_t *cfg, wg_engine_t *engine, wg_core_t **out);
void wg_core_free(wg_core_t *c);
/* First start: creates the built-in admin account and, unless WAGATE_ADMIN_KEY is set, an admin
 * key. *generated (malloc'd) receives the new key to print once, or NULL when none was made. */
int wg_core_bootstrap(wg_core_t *c, char **generated);

/* Resolves a presented credential. WG_EPERM (err 401) when it matches nothing. */
int wg_core_authenticate(wg_core_t *c, const char *token, wg_auth_t *out, wg_core_err_t *err);

/* ---- accounts (admin only; the caller checks) ---- */
/* *key (malloc'd) is the new account key, shown once. */
int wg_core_account_create(wg_core_t *c, const char *name, const char *plan, wg_account_t *out,
                           char **key, wg_core_err_t *err);
int wg_core_account_update(wg_core_t *c, const char *id, const char *name, const char *plan,
                           wg_account_t *out, wg_core_err_t *err);
int wg_core_account_rotate_key(wg_core_t *c, const char *id, char **key, wg_core_err_t *err);
int64_t wg_core_plan_limit(const wg_core_t *c, const char *plan);

/* ---- instances ---- */
typedef struct {
    const char *owner_id; /* account */
    const char *name;
    const char *phone;       /* NULL */
    const char *integration; /* NULL: WHATSAPP-BAILEYS */
    const char *token;       /* NULL: generated */
    const char *dialect;     /* NULL: native */
    const char *api_name;    /* NULL */
    const char *webhook_url; /* NULL */
    json_t *webhook_events;  /* NULL or array of names (borrowed) */
    const char *webhook_secret; /* NULL: generated (whsec_...); signs webhook bodies */
    json_t *webhook_opts;    /* NULL or {byEvents?: bool, base64?: bool, maxAttempts?: 1..1000,
                                headers?: {name: value} | null (sent with each delivery)} */
    json_t *settings;        /* NULL or partial settings object (borrowed) */
    /* NULL or {rabbitmq|sqs|nats: {enabled, events[] (core names)}}: stored, not delivered
     * yet (wg_core_sinks_parse) */
    json_t *sinks;
    /* NULL or the Chatwoot integration (wg_core_chatwoot_parse): stored, not run yet */
    json_t *chatwoot;
    json_t *proxy;           /* NULL or proxy object (borrowed) */
    /* 1: the core makes a unique api_name "t<n>_<8 base36 random>_<slug of name>" (n: the
     * owner's n-th instance) and api_name above is ignored (Wachat's apiInstanceName) */
    int api_name_auto;
    /* WHATSAPP-BUSINESS (Cloud API) credentials, required for that integration and ignored
     * for others: {token, businessId, phoneNumberId}, non-empty strings (borrowed). Stored in
     * settings.business; the token is never rendered back. Field errors name
     * "business.<key>". */
    json_t *business;
} wg_instance_spec_t;

/* Validates spec (field errors), enforces the owner's plan limit, stores the instance as
 * STARTING with its event, then asks the engine to start it (FAILED + reason if it cannot).
 * *out is the instance as stored afterwards (out->webhook holds the webhook secret, to be
 * shown once at creation); *token (malloc'd) its access token. */
int wg_core_instance_create(wg_core_t *c, const wg_instance_spec_t *spec, wg_instance_t *out,
                            char **token, wg_core_err_t *err);
/* Loads an instance the credential may see; 404 not_found otherwise (no existence leak). */
int wg_core_instance_get(wg_core_t *c, const wg_auth_t *a, const char *id, wg_instance_t *out,
                         wg_core_err_t *err);
/* Loads the instance named `name` that the credential may see (the admin key: its own account's
 * first, then any owner's). An instance token sees only its own instance: any other name gives
 * WG_EPERM with err 401 (a token cannot probe names); otherwise 404 not_found when none. */
int wg_core_instance_by_name(wg_core_t *c, const wg_auth_t *a, const char *name,
                             wg_instance_t *out, wg_core_err_t *err);
/* The same for the globally unique api_name (Wachat's apiInstanceName): 404 not_found when the
 * credential may not see it or it does not exist; an instance token asking for another name
 * gets WG_EPERM with err 401. */
int wg_core_instance_by_api_name(wg_core_t *c, const wg_auth_t *a, const char *api_name,
                                 wg_instance_t *out, wg_core_err_t *err);
int wg_core_instance_list(wg_core_t *c, const wg_auth_t *a, const char *status,
                          const char *name_like, int64_t page, int64_t limit, wg_instance_t **out,
                          size_t *n, int64_t *total, wg_core_err_t *err);
/* Patch: any of webhook_url (set_webhook_url: JSON null clears), webhook_events, settings
 * (merged), proxy (set_proxy; NULL clears). */
typedef struct {
    int set_webhook_url;
    const char *webhook_url;
    json_t *webhook_events;
    json_t *webhook_opts; /* as in wg_instance_spec_t */
    json_t *settings;
    int set_proxy;
    json_t *proxy;
} wg_instance_patch_t;
int wg_core_instance_update(wg_core_t *c, const wg_auth_t *a, const char *id,
                            const wg_instance_patch_t *p, wg_instance_t *out, wg_core_err_t *err);
int wg_core_instance_delete(wg_core_t *c, const wg_auth_t *a, const char *id, wg_core_err_t *err);

typedef enum { WG_ACTION_START, WG_ACTION_STOP, WG_ACTION_RESTART, WG_ACTION_LOGOUT } wg_action_t;
int wg_core_instance_action(wg_core_t *c, const wg_auth_t *a, const char *id, wg_action_t act,
                            wg_instance_t *out, wg_core_err_t *err);

/* The one place a status changes: writes status + reason + connection.updated event in one
 * transaction and logs "instance=… from=… to=… reason=…". */
int wg_core_instance_set_status(wg_core_t *c, const char *id, const char *status,
                                const char *reason);
/* Entry point for engine reports (on this core's thread). */
void wg_core_engine_report(wg_core_t *c, const wg_engine_report_t *r);

/* Validation helpers shared with dialects. Canonical settings object with defaults applied
 * and `in` merged (NULL ok); field errors name "settings.<key>". Caller json_decref()s *out. */
int wg_core_settings_merge(json_t *base, json_t *in, json_t **out, wg_core_err_t *err);
/* Canonical proxy object from input; field errors "proxy.<key>". */
int wg_core_proxy_parse(json_t *in, json_t **out, wg_core_err_t *err);
int wg_core_events_parse(json_t *in, json_t **out, wg_core_err_t *err);

/* Event sinks besides the webhook: {rabbitmq|sqs|nats: {enabled: bool, events: [core event
 * names]}}, any subset. Canonical object with all three (enabled false, events [] when not
 * given); field errors "<sink>.enabled" / "<sink>.events". */
int wg_core_sinks_parse(json_t *in, json_t **out, wg_core_err_t *err);
/* Chatwoot integration: {accountId (text or integer), token, url (http(s)), signMsg,
 * reopenConversation, conversationPending, importContacts, mergeBrazilContacts,
 * importMessages (booleans), daysLimitImportMessages (0..3650), nameInbox, organization, logo
 * (texts)}. All or nothing: with none of accountId, token, url it is not configured (*out
 * NULL, the other keys ignored); with any of them all three are required, and err->field
 * lists every missing one ("chatwoot.token,chatwoot.url"). Defaults as Chatwoot's
 * integration documents them (importContacts and importMessages true, 60 days, nameInbox
 * = instance_name). */
int wg_core_chatwoot_parse(json_t *in, const char *instance_name, json_t **out,
                           wg_core_err_t *err);

/* ---- linking by pairing code ---- */
/* Asks the engine for a pairing code for `phone` (international number, '+' optional) on an
 * instance the credential may see and that is showing a QR. code[] gets "ABCD-EFGH" at once;
 * it is live once wg_core_pairing_code_state says so. 422 field "phone" for a bad number, 409
 * not_pairing when the instance is not waiting to be linked, 503 without an engine. */
int wg_core_pairing_code(wg_core_t *c, const wg_auth_t *a, const char *id, const char *phone,
                         char code[16], wg_core_err_t *err);
/* 1 the server took the instance's last pairing code (the phone may enter it), 0 still being
 * sent, negative refused or lost. */
int wg_core_pairing_code_state(wg_core_t *c, const char *id);
/* QR codes the instance has shown in its current connect attempt (0 when none now). */
int wg_core_qr_count(wg_core_t *c, const char *id);

/* ---- proxy test ---- */
/* A connection test of a proxy (the canonical object of wg_core_proxy_parse): a tunnel
 * through it (HTTP CONNECT, or SOCKS5) to the WhatsApp endpoint of WAGATE_WA_URL, bounded by
 * WAGATE_PROXY_CHECK_TIMEOUT_MS. It runs on its own thread; the caller polls it from its loop
 * (never blocks). Free it at any time (a running test is abandoned and ends by itself). */
typedef struct wg_proxy_check wg_proxy_check_t;
/* 0; WG_ELIMIT (503 "busy") when too many tests run at once; WG_EINVAL, WG_EIO (500). */
int wg_core_proxy_check_start(wg_core_t *c, json_t *proxy, wg_proxy_check_t **out,
                              wg_core_err_t *err);
/* 0 still running; 1 the tunnel opened; WG_EIO it did not (err: 422 "proxy_unreachable",
 * field "proxy", the reason), WG_ETIMEDOUT past the bound (err likewise). */
int wg_core_proxy_check_poll(wg_proxy_check_t *pc, wg_core_err_t *err);
void wg_core_proxy_check_free(wg_proxy_check_t *pc);

#endif
