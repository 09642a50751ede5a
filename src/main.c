/* main.c - the wagate command: sub-commands, configuration, start-up and shut-down.
 *
 * serve: loads the config table from the environment, bootstraps the database (migrations,
 * admin account, admin key printed once), starts the HTTP API threads (each with its own core
 * and store connection) and runs until SIGTERM/SIGINT, then drains and closes the database.
 * The only process-wide mutable state lives here (the server pointer the signal handler uses). */
#include "api/native.h"
#include "core/core.h"
#include "core/token.h"
#include "http/ratelimit.h"
#include "http/server.h"
#include "sandbox/sandbox.h"
#include "store/store.h"
#include "util/config.h"
#include "util/err.h"
#include "util/log.h"

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
    return c;
}

static void api_ctx_free(void *p)
{
    wg_api_ctx_t *c = p;
    wg_core_free(c->core);
    free(c);
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
    if (!(engine = wg_engine_unavailable_new()) || !(rl = wg_ratelimit_new(100000))) {
        rv = WG_ENOMEM;
        goto out;
    }
    if ((rv = wg_core_new(&cfg, engine, &boot)) != 0) {
        fprintf(stderr, "wagate: cannot open database %s: %s\n", cfg.db, wg_strerror(rv));
        goto out;
    }
    if ((rv = wg_core_bootstrap(boot, &admin_key)) != 0) {
        fprintf(stderr, "wagate: bootstrap failed: %s\n", wg_strerror(rv));
        goto out;
    }
    wg_log(WG_LOG_INFO, "main", "version=%s db=%s schema=%d engine=%s", WG_VERSION, cfg.db,
           wg_store_schema_version(boot->store), engine->ops->name);
    wg_core_free(boot);
    boot = NULL;

    serve_env_t env = {&cfg, engine, rl};
    wg_http_app_t app = {wg_native_routes, wg_native_nroutes, api_ctx_new, api_ctx_free,
                         wg_native_error, &env};
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
    wg_core_free(boot);
    wg_ratelimit_free(rl);
    wg_engine_free(engine);
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
