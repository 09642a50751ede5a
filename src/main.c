/* main.c - the wagate command: sub-commands, configuration, start-up and shut-down.
 *
 * serve: loads the config table from the environment, bootstraps the database (migrations,
 * admin account, admin key printed once), starts the HTTP API threads (each with its own core
 * and store connection) and runs until SIGTERM/SIGINT, then drains and closes the database.
 * The only process-wide mutable state lives here (the server pointer the signal handler uses). */
#include "api/dialect.h"
#include "api/native.h"
#include "core/core.h"
#include "core/token.h"
#include "events/dispatch.h"
#include "events/metrics.h"
#include "http/ratelimit.h"
#include "http/server.h"
#include "sandbox/sandbox.h"
#include "store/store.h"
#include "util/config.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/engine.h"
#include "wa/masterkey.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wg_http_server_t *g_server; /* for the signal handler only */

static int usage(FILE *f)
{
    fprintf(f, "usage: wagate <command> [options]\n"
               "  serve     run the gateway (HTTP API, WhatsApp engine, event delivery)\n"
               "  sandbox   run a simulated WhatsApp server with scriptable phones\n"
               "  migrate   apply database migrations and exit\n"
               "  keygen    print a new random key\n"
               "  version   print the version\n"
               "`wagate serve --help` lists every configuration key.\n");
    return f == stdout ? 0 : 2;
}

static const char *env_get(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

static int load_config(wg_config_t *cfg)
{
    char err[200];
    wg_log_level_t lvl;
    if (wg_config_load(cfg, env_get, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "wagate: bad configuration: %s\n", err);
        return WG_EINVAL;
    }
    if (wg_log_parse_level(cfg->log_level, &lvl) != 0) {
        fprintf(stderr, "wagate: bad configuration: WAGATE_LOG_LEVEL=%s\n", cfg->log_level);
        wg_config_dispose(cfg);
        return WG_EINVAL;
    }
    wg_log_set_level(lvl);
    return 0;
}

typedef struct {
    const wg_config_t *cfg;
    wg_engine_t *engine;
    wg_ratelimit_t *rl;
    wg_metrics_t *metrics;
} serve_env_t;

static void *api_ctx_new(void *arg, int idx)
{
    serve_env_t *env = arg;
    wg_api_ctx_t *c = calloc(1, sizeof(*c));
    (void)idx;
    if (!c)
        return NULL;
    if (wg_core_new(env->cfg, env->engine, &c->core) != 0) {
        free(c);
        return NULL;
    }
    c->rl = env->rl;
    c->cfg = env->cfg;
    c->metrics = env->metrics;
    return c;
}

static void api_ctx_free(void *p)
{
    wg_api_ctx_t *c = p;
    wg_core_free(c->core);
    free(c);
}

/* Engine hooks: each engine worker thread gets a core of its own (a core belongs to one thread)
 * and engine reports go to it. Its engine pointer stays NULL: a worker's core only records
 * what the engine reports and never starts instances itself. */
static void *engine_ctx_new(void *arg, int idx)
{
    wg_core_t *c = NULL;
    (void)idx;
    return wg_core_new(arg, NULL, &c) == 0 ? c : NULL;
}

static void engine_ctx_free(void *ctx)
{
    wg_core_free(ctx);
}

static void engine_report(void *ctx, const wg_engine_report_t *r)
{
    wg_core_engine_report(ctx, r);
    /* stored: a request waiting for this instance (its first QR, its link) answers now */
    if (r->instance_id)
        wg_http_wake(wg_http_key_str(r->instance_id));
}

/* The engine's QR, pairing-code or send-outcome tables changed: wake the deferred requests
 * that watch that instance or send token (http.h wake keys; the API handlers watch them). */
static void engine_changed(void *arg, const char *instance_id, uint64_t token)
{
    (void)arg;
    wg_http_wake(instance_id ? wg_http_key_str(instance_id) : wg_http_key_num(token));
}

/* Gateway restart: every instance that was running (STARTING, SCAN_QR_CODE, WORKING, PENDING)
 * starts again; a linked one logs in with its stored credentials, an unlinked one gets new
 * QR codes until they run out (FAILED qr_timeout), so nothing reconnects in a loop. */
static void resume_instances(wg_core_t *c)
{
    static const char *const running[] = {WG_STATUS_STARTING, WG_STATUS_SCAN_QR,
                                          WG_STATUS_WORKING, WG_STATUS_PENDING};
    char **ids = NULL;
    size_t nids = 0, cap = 0;
    /* collect first, then change statuses (the lists page by offset) */
    for (size_t k = 0; k < sizeof(running) / sizeof(running[0]); k++) {
        int64_t total = 0;
        for (int64_t off = 0; off == 0 || off < total; off += 100) {
            wg_instance_filter_t f = {.status = running[k], .offset = off, .limit = 100};
            wg_instance_t *v = NULL;
            size_t n = 0;
            if (wg_store_instance_list(c->store, &f, &v, &n, &total) != 0 || n == 0) {
                wg_instance_list_free(v, n);
                break;
            }
            for (size_t i = 0; i < n; i++) {
                if (nids == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    char **ni = realloc(ids, nc * sizeof(*ids));
                    if (!ni)
                        break;
                    ids = ni;
                    cap = nc;
                }
                if ((ids[nids] = strdup(v[i].id)))
                    nids++;
            }
            wg_instance_list_free(v, n);
        }
    }
    for (size_t i = 0; i < nids; i++) {
        char reason[64] = "engine_unavailable";
        /* started even when STARTING was not stored (the write lock not got within the busy
         * timeout): else the instance stays listed as running with no connection; its engine
         * reports store the status once the lock is free */
        if (wg_core_instance_set_status(c, ids[i], WG_STATUS_STARTING, "restart") != 0)
            wg_log(WG_LOG_WARN, "main", "instance=%s resumed without its STARTING status", ids[i]);
        if (c->engine->ops->start(c->engine, ids[i], reason, sizeof(reason)) != 0)
            wg_core_instance_set_status(c, ids[i], WG_STATUS_FAILED, reason);
        free(ids[i]);
    }
    free(ids);
    if (nids)
        wg_log(WG_LOG_INFO, "main", "resumed instances=%zu", nids);
}

static void on_signal(int sig)
{
    (void)sig;
    if (g_server)
        wg_http_server_stop(g_server);
}

static void print_welcome(const wg_config_t *cfg, const char *addr, const char *admin_key)
{
    char url[128];
    const char *colon = strrchr(addr, ':');
    const char *port = colon ? colon + 1 : "8080";
    snprintf(url, sizeof(url), "http://127.0.0.1:%s", port);
    (void)cfg;
    if (admin_key) {
        printf("\nwagate: admin key (shown only this once; keep it):\n\n    %s\n\n", admin_key);
        printf("Create an instance:\n\n"
               "    curl -s -X POST %s/v1/instances \\\n"
               "      -H 'Authorization: Bearer %s' \\\n"
               "      -H 'Content-Type: application/json' \\\n"
               "      -d '{\"name\": \"my-first-instance\"}'\n\n",
               url, admin_key);
    } else {
        printf("\nwagate: listening on %s (admin key: WAGATE_ADMIN_KEY or the one printed at "
               "first start)\n\n"
               "    curl -s -X POST %s/v1/instances -H \"Authorization: Bearer $WAGATE_ADMIN_KEY\" "
               "-H 'Content-Type: application/json' -d '{\"name\": \"my-first-instance\"}'\n\n",
               addr, url);
    }
    fflush(stdout);
}

static int cmd_serve(int argc, char **argv)
{
    wg_config_t cfg;
    wg_core_t *boot = NULL;
    wg_engine_t *engine = NULL;
    wg_ratelimit_t *rl = NULL;
    wg_http_server_t *srv = NULL;
    wg_route_t *routes = NULL;
    size_t nroutes = 0;
    wg_metrics_t *metrics = NULL;
    wg_dispatch_t *dispatch = NULL;
    char *admin_key = NULL;
    int rv;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: wagate serve\n\nRuns the gateway. ");
            wg_config_print_help(stdout);
            return 0;
        }
        fprintf(stderr, "wagate serve: unknown option '%s' (configuration comes from the "
                        "environment; see --help)\n", argv[i]);
        return 2;
    }
    if (load_config(&cfg) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    if (!(rl = wg_ratelimit_new(100000))) {
        rv = WG_ENOMEM;
        goto out;
    }
    if ((rv = wg_core_new(&cfg, NULL, &boot)) != 0) {
        fprintf(stderr, "wagate: cannot open database %s: %s\n", cfg.db, wg_strerror(rv));
        goto out;
    }
    if ((rv = wg_core_bootstrap(boot, &admin_key)) != 0) {
        fprintf(stderr, "wagate: bootstrap failed: %s\n", wg_strerror(rv));
        goto out;
    }
    uint8_t master[WG_MASTERKEY_LEN];
    if ((rv = wg_masterkey_load(cfg.master_key, cfg.db, master, NULL)) != 0) {
        fprintf(stderr, "wagate: no usable master key (WAGATE_MASTER_KEY or %s.key): %s\n",
                cfg.db, wg_strerror(rv));
        goto out;
    }
    wg_engine_hooks_t hooks = {engine_ctx_new, engine_ctx_free, engine_report, &cfg,
                               engine_changed};
    rv = wg_engine_wa_new(&cfg, master, &hooks, &engine);
    memset(master, 0, sizeof(master));
    if (rv != 0) {
        fprintf(stderr, "wagate: cannot start the WhatsApp engine: %s\n", wg_strerror(rv));
        goto out;
    }
    boot->engine = engine;
    wg_log(WG_LOG_INFO, "main", "version=%s db=%s schema=%d engine=%s", WG_VERSION, cfg.db,
           wg_store_schema_version(boot->store), engine->ops->name);
    if (!(metrics = wg_metrics_new())) {
        rv = WG_ENOMEM;
        goto out;
    }
    /* events (webhooks) before instances resume: their events are delivered from the start */
    if ((rv = wg_dispatch_new(&cfg, metrics, &dispatch)) != 0) {
        fprintf(stderr, "wagate: cannot start event delivery: %s\n", wg_strerror(rv));
        goto out;
    }
    resume_instances(boot);
    wg_core_free(boot);
    boot = NULL;

    serve_env_t env = {&cfg, engine, rl, metrics};
    /* every dialect mounted together; errors render in the shape of the request's dialect */
    if ((rv = wg_dialects_routes(cfg.root_dialect, &routes, &nroutes)) != 0) {
        fprintf(stderr, "wagate: WAGATE_ROOT_DIALECT=%s: %s\n", cfg.root_dialect,
                rv == WG_EINVAL ? "unknown dialect (\"\" or \"evolution\")" : wg_strerror(rv));
        goto out;
    }
    wg_http_app_t app = {routes, nroutes, api_ctx_new, api_ctx_free,
                         wg_dialects_error, &env, wg_native_observe};
    if ((rv = wg_http_server_new(&cfg, &app, &srv)) != 0) {
        fprintf(stderr, "wagate: cannot listen on %s\n", cfg.listen);
        goto out;
    }
    print_welcome(&cfg, wg_http_server_address(srv), admin_key);
    g_server = srv;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    rv = wg_http_server_run(srv);
    g_server = NULL;
    wg_log(WG_LOG_INFO, "main", "stopped rv=%d", rv);
out:
    wg_http_server_free(srv);
    wg_dialects_routes_free(routes, nroutes);
    wg_core_free(boot);
    wg_engine_free(engine); /* after the HTTP threads: they call into it */
    wg_dispatch_free(dispatch); /* undelivered rows stay pending for the next start */
    wg_metrics_free(metrics);
    wg_ratelimit_free(rl);
    free(admin_key);
    wg_config_dispose(&cfg);
    return rv ? 1 : 0;
}

static int cmd_migrate(void)
{
    wg_config_t cfg;
    wg_store_t *st = NULL;
    if (load_config(&cfg) != 0)
        return 2;
    int rv = wg_store_open(cfg.db, &st);
    if (rv == 0)
        printf("wagate: %s at schema version %d\n", cfg.db, wg_store_schema_version(st));
    else
        fprintf(stderr, "wagate: migrate %s: %s\n", cfg.db, wg_strerror(rv));
    wg_store_close(st);
    wg_config_dispose(&cfg);
    return rv ? 1 : 0;
}

static int cmd_keygen(void)
{
    char *k = wg_token_new("wga_");
    if (!k)
        return 1;
    printf("%s\n", k);
    free(k);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "version") == 0) {
        printf("wagate %s\n", WG_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(argv[1], "sandbox") == 0)
        return wg_sandbox_main(argc, argv);
    if (strcmp(argv[1], "migrate") == 0)
        return cmd_migrate();
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen();
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0)
        return usage(stdout);
    fprintf(stderr, "wagate: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
