/* config.h - the one declarative table of configuration keys (WAGATE_*), read from the
 * environment.
 *
 * Every key has a name, a type, a default, bounds (ints) and a help line; `wagate serve --help`
 * prints the table (wg_config_print_help). wg_config_load() fills a wg_config_t from a getter
 * (getenv in main, a fake in tests); it owns every string it stores, wg_config_dispose() frees
 * them. No global state: main owns one wg_config_t and passes it down read-only. */
#ifndef WG_UTIL_CONFIG_H
#define WG_UTIL_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    char *listen;              /* WAGATE_LISTEN host:port */
    char *db;                  /* WAGATE_DB path or postgresql:// URL */
    char *admin_key;           /* WAGATE_ADMIN_KEY, "" = generated on first start */
    char *master_key;          /* WAGATE_MASTER_KEY, "" = <db>.key */
    char *wa_url;              /* WAGATE_WA_URL */
    char *wa_root_key;         /* WAGATE_WA_ROOT_KEY (hex) */
    int webhook_allow_private; /* WAGATE_WEBHOOK_ALLOW_PRIVATE */
    char *webhook_ca;          /* WAGATE_WEBHOOK_CA, "" = system CAs */
    char *log_level;           /* WAGATE_LOG_LEVEL */
    int http_threads;          /* WAGATE_HTTP_THREADS */
    int http_body_limit;       /* WAGATE_HTTP_BODY_LIMIT bytes */
    int http_header_limit;     /* WAGATE_HTTP_HEADER_LIMIT bytes */
    int http_idle_timeout;     /* WAGATE_HTTP_IDLE_TIMEOUT seconds */
    int http_request_timeout;  /* WAGATE_HTTP_REQUEST_TIMEOUT seconds */
    int shutdown_timeout;      /* WAGATE_SHUTDOWN_TIMEOUT seconds */
    char *plan_limits;         /* WAGATE_PLAN_LIMITS "free=1,starter=3,..." */
    char *root_dialect;        /* WAGATE_ROOT_DIALECT "" or "evolution": also mounted at / */
    char *public_url;          /* WAGATE_PUBLIC_URL "" or "https://host[:port]" for links we render */
    int rate_create;           /* WAGATE_RATE_CREATE per minute per account */
    int rate_write;            /* WAGATE_RATE_WRITE per minute per credential */
    int rate_read;             /* WAGATE_RATE_READ per minute per credential */
    /* WhatsApp engine */
    int workers;               /* WAGATE_WORKERS engine threads, 0 = one per core */
    int qr_wait_ms;            /* WAGATE_QR_WAIT_MS create waits this long for the first QR */
    int qr_first_ms;           /* WAGATE_QR_FIRST_MS how long the first QR ref is shown */
    int qr_next_ms;            /* WAGATE_QR_NEXT_MS how long each later ref is shown */
    int wa_connect_timeout_ms; /* WAGATE_WA_CONNECT_TIMEOUT_MS */
    int wa_keepalive_ms;       /* WAGATE_WA_KEEPALIVE_MS */
    int wa_backoff_max_ms;     /* WAGATE_WA_BACKOFF_MAX_MS reconnect backoff cap */
    int wa_prekeys_initial;    /* WAGATE_WA_PREKEYS_INITIAL first prekey upload */
    int wa_login_timeout_ms;   /* WAGATE_WA_LOGIN_TIMEOUT_MS login steps before WORKING */
    int proxy_check_timeout_ms; /* WAGATE_PROXY_CHECK_TIMEOUT_MS proxy test before it is set */
    /* event delivery */
    int webhook_timeout_ms;     /* WAGATE_WEBHOOK_TIMEOUT_MS per request */
    int webhook_max_attempts;   /* WAGATE_WEBHOOK_MAX_ATTEMPTS default per instance */
    int webhook_backoff_ms;     /* WAGATE_WEBHOOK_BACKOFF_MS first retry delay */
    int webhook_backoff_max_ms; /* WAGATE_WEBHOOK_BACKOFF_MAX_MS cap */
    int webhook_concurrency;    /* WAGATE_WEBHOOK_CONCURRENCY requests in flight */
    int events_poll_ms;         /* WAGATE_EVENTS_POLL_MS dispatcher poll */
} wg_config_t;

typedef enum { WG_CFG_STR, WG_CFG_INT, WG_CFG_BOOL } wg_config_type_t;

typedef struct {
    const char *name;
    wg_config_type_t type;
    size_t offset; /* into wg_config_t */
    const char *def;
    long min, max; /* ints only */
    int secret;    /* never echo a set value */
    const char *help;
} wg_config_key_t;

/* The table, terminated by an entry with name NULL. Static; never freed. */
const wg_config_key_t *wg_config_keys(void);

/* Returns the value for `name` or NULL when unset. */
typedef const char *(*wg_config_get_cb)(const char *name, void *arg);

/* Fills *c with defaults overridden by get(). 0, WG_EINVAL (err names the key and why; errlen
 * bytes at most) or WG_ENOMEM. On error *c is disposed already. */
int wg_config_load(wg_config_t *c, wg_config_get_cb get, void *arg, char *err, size_t errlen);
void wg_config_dispose(wg_config_t *c);
void wg_config_print_help(FILE *f);

#endif
