/* config.c - see config.h. The table below is the single source of truth for key names,
 * defaults, bounds and help text. */
#include "util/config.h"
#include "util/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S(field) WG_CFG_STR, offsetof(wg_config_t, field)
#define I(field) WG_CFG_INT, offsetof(wg_config_t, field)
#define B(field) WG_CFG_BOOL, offsetof(wg_config_t, field)

static const wg_config_key_t keys[] = {
    {"WAGATE_LISTEN", S(listen), "0.0.0.0:8080", 0, 0, 0, "HTTP API address (host:port)"},
    {"WAGATE_DB", S(db), "./wagate.db", 0, 0, 0, "SQLite file, or a postgresql:// URL"},
    {"WAGATE_ADMIN_KEY", S(admin_key), "", 0, 0, 1,
     "admin credential; empty: generated on first start and printed once"},
    {"WAGATE_MASTER_KEY", S(master_key), "", 0, 0, 1,
     "key that encrypts WhatsApp credentials at rest; empty: generated into <db>.key"},
    {"WAGATE_WA_URL", S(wa_url), "wss://web.whatsapp.com/ws/chat", 0, 0, 0,
     "WhatsApp server (the sandbox in tests)"},
    {"WAGATE_WA_ROOT_KEY", S(wa_root_key), "", 0, 0, 0,
     "hex public key that must sign the server's certificate chain; empty: WhatsApp's"},
    {"WAGATE_WEBHOOK_ALLOW_PRIVATE", B(webhook_allow_private), "0", 0, 1, 0,
     "allow webhooks to loopback/private addresses"},
    {"WAGATE_WEBHOOK_CA", S(webhook_ca), "", 0, 0, 0, "CA file for webhook TLS; empty: system CAs"},
    {"WAGATE_LOG_LEVEL", S(log_level), "info", 0, 0, 0, "debug, info, warn, error or off"},
    {"WAGATE_HTTP_THREADS", I(http_threads), "2", 1, 64, 0, "HTTP API threads (one loop each)"},
    {"WAGATE_HTTP_BODY_LIMIT", I(http_body_limit), "1048576", 1024, 1073741824, 0,
     "largest request body in bytes (413 above)"},
    {"WAGATE_HTTP_HEADER_LIMIT", I(http_header_limit), "16384", 1024, 1048576, 0,
     "largest request header block in bytes"},
    {"WAGATE_HTTP_IDLE_TIMEOUT", I(http_idle_timeout), "15", 1, 3600, 0,
     "seconds a connection may stay silent (keep-alive idle, slow headers or body)"},
    {"WAGATE_HTTP_REQUEST_TIMEOUT", I(http_request_timeout), "30", 1, 3600, 0,
     "seconds a connection gets to deliver a complete request (headers + body), counted from "
     "accept or its previous response"},
    {"WAGATE_SHUTDOWN_TIMEOUT", I(shutdown_timeout), "5", 0, 600, 0,
     "seconds in-flight requests get to finish after SIGTERM/SIGINT"},
    {"WAGATE_PLAN_LIMITS", S(plan_limits), "free=1,starter=3,pro=10,enterprise=0", 0, 0, 0,
     "instances per plan; 0 = unlimited"},
    {"WAGATE_ROOT_DIALECT", S(root_dialect), "", 0, 0, 0,
     "API dialect also mounted at / (\"\" = none, \"evolution\": Evolution API v2 paths)"},
    {"WAGATE_PUBLIC_URL", S(public_url), "", 0, 0, 0,
     "scheme://host[:port] clients reach the gateway at, for links in answers (Wachat's "
     "imageUrl/liveUrl; empty: http:// + the request's Host header) and as server_url in "
     "Evolution/Wachat webhooks (empty: http://<WAGATE_LISTEN>, 0.0.0.0 as localhost)"},
    {"WAGATE_RATE_CREATE", I(rate_create), "5", 0, 1000000, 0,
     "instance creations per minute per account; 0 = unlimited"},
    {"WAGATE_RATE_WRITE", I(rate_write), "600", 0, 100000000, 0,
     "write requests per minute per credential; 0 = unlimited"},
    {"WAGATE_RATE_READ", I(rate_read), "6000", 0, 100000000, 0,
     "read requests per minute per credential; 0 = unlimited"},
    {"WAGATE_WORKERS", I(workers), "0", 0, 256, 0,
     "WhatsApp engine threads (one event loop each); 0 = one per CPU core"},
    {"WAGATE_QR_WAIT_MS", I(qr_wait_ms), "10000", 0, 120000, 0,
     "POST /v1/instances waits up to this long for the first QR code (0 = do not wait)"},
    {"WAGATE_QR_FIRST_MS", I(qr_first_ms), "60000", 100, 600000, 0,
     "how long the first QR code is shown before the next ref (WhatsApp: 60 s)"},
    {"WAGATE_QR_NEXT_MS", I(qr_next_ms), "20000", 100, 600000, 0,
     "how long each later QR code is shown (WhatsApp: 20 s)"},
    {"WAGATE_WA_CONNECT_TIMEOUT_MS", I(wa_connect_timeout_ms), "20000", 100, 600000, 0,
     "WhatsApp connect + handshake timeout"},
    {"WAGATE_WA_KEEPALIVE_MS", I(wa_keepalive_ms), "25000", 100, 600000, 0,
     "interval of keepalive pings on an idle WhatsApp connection"},
    {"WAGATE_WA_BACKOFF_MAX_MS", I(wa_backoff_max_ms), "60000", 100, 3600000, 0,
     "cap of the reconnect backoff (exponential from 1 s, full jitter)"},
    {"WAGATE_WA_PREKEYS_INITIAL", I(wa_prekeys_initial), "812", 5, 5000, 0,
     "one-time prekeys uploaded when the server has none (WhatsApp clients: 812)"},
    {"WAGATE_WA_LOGIN_TIMEOUT_MS", I(wa_login_timeout_ms), "30000", 100, 600000, 0,
     "bound of the login steps after <success> (prekey count and upload, passive iq); "
     "unanswered: reconnect with backoff instead of WORKING"},
    {"WAGATE_PROXY_CHECK_TIMEOUT_MS", I(proxy_check_timeout_ms), "5000", 100, 60000, 0,
     "bound of the proxy test (a tunnel to the WhatsApp endpoint) before an Evolution "
     "create or proxy/set stores a proxy"},
    /* event delivery (events/) */
    {"WAGATE_WEBHOOK_TIMEOUT_MS", I(webhook_timeout_ms), "10000", 100, 600000, 0,
     "total time allowed for one webhook request (connect + TLS + answer)"},
    {"WAGATE_WEBHOOK_MAX_ATTEMPTS", I(webhook_max_attempts), "15", 1, 1000, 0,
     "delivery attempts before an event goes to the dead-letter table (per instance: "
     "webhook.maxAttempts)"},
    {"WAGATE_WEBHOOK_BACKOFF_MS", I(webhook_backoff_ms), "2000", 1, 3600000, 0,
     "first retry delay; doubles per attempt, with jitter"},
    {"WAGATE_WEBHOOK_BACKOFF_MAX_MS", I(webhook_backoff_max_ms), "600000", 1, 86400000, 0,
     "cap of the retry delay"},
    {"WAGATE_WEBHOOK_CONCURRENCY", I(webhook_concurrency), "256", 1, 100000, 0,
     "webhook requests in flight at once (at most one per instance)"},
    {"WAGATE_EVENTS_POLL_MS", I(events_poll_ms), "200", 10, 60000, 0,
     "how often the dispatcher looks for pending events written outside its wakeups"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL},
};

const wg_config_key_t *wg_config_keys(void)
{
    return keys;
}

static int set_one(wg_config_t *c, const wg_config_key_t *k, const char *v, char *err,
                   size_t errlen)
{
    void *p = (char *)c + k->offset;
    if (k->type == WG_CFG_STR) {
        char *s = strdup(v);
        if (!s)
            return WG_ENOMEM;
        free(*(char **)p);
        *(char **)p = s;
        return 0;
    }
    if (k->type == WG_CFG_BOOL) {
        if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
            !strcasecmp(v, "on"))
            *(int *)p = 1;
        else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
                 !strcasecmp(v, "off") || !*v)
            *(int *)p = 0;
        else {
            snprintf(err, errlen, "%s: expected a boolean (0/1), got '%.40s'", k->name, v);
            return WG_EINVAL;
        }
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < k->min || n > k->max) {
        snprintf(err, errlen, "%s: expected an integer in [%ld, %ld], got '%.40s'", k->name,
                 k->min, k->max, v);
        return WG_EINVAL;
    }
    *(int *)p = (int)n;
    return 0;
}

int wg_config_load(wg_config_t *c, wg_config_get_cb get, void *arg, char *err, size_t errlen)
{
    int rv = 0;
    memset(c, 0, sizeof(*c));
    if (errlen)
        err[0] = 0;
    for (const wg_config_key_t *k = keys; k->name; k++) {
        if ((rv = set_one(c, k, k->def, err, errlen)) != 0)
            goto out;
        const char *v = get ? get(k->name, arg) : NULL;
        if (v && (rv = set_one(c, k, v, err, errlen)) != 0)
            goto out;
    }
out:
    if (rv)
        wg_config_dispose(c);
    return rv;
}

void wg_config_dispose(wg_config_t *c)
{
    for (const wg_config_key_t *k = keys; k->name; k++) {
        if (k->type == WG_CFG_STR) {
            char **p = (char **)((char *)c + k->offset);
            free(*p);
            *p = NULL;
        }
    }
}

void wg_config_print_help(FILE *f)
{
    fprintf(f, "Configuration (environment variables):\n");
    for (const wg_config_key_t *k = keys; k->name; k++) {
        const char *t = k->type == WG_CFG_STR ? "string" : k->type == WG_CFG_INT ? "int" : "bool";
        fprintf(f, "  %-30s %-6s default \"%s\"", k->name, t, k->def);
        if (k->type == WG_CFG_INT)
            fprintf(f, " [%ld..%ld]", k->min, k->max);
        fprintf(f, "\n      %s\n", k->help);
    }
}
