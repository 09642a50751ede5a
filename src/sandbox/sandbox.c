/* sandbox.c - `wagate sandbox`: options, start-up and shut-down of the simulated WhatsApp
 * server (server.c), its state file (state.c) and its control API (control.c) on one libevent
 * loop. Prints the root public key (hex) and both addresses at start, writes the key to
 * --root-key-out, and stops cleanly on SIGINT/SIGTERM. Everything is freed before returning. */
#include "sandbox/sandbox.h"

#include "sandbox/sb_int.h"
#include "sandbox/wsserver.h"
#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: wagate sandbox [options]\n"
    "\n"
    "A simulated WhatsApp server (WebSocket + Noise + binary nodes) with scriptable phones.\n"
    "\n"
    "  --listen ADDR        WebSocket address, path /ws/chat (default 127.0.0.1:7070)\n"
    "  --control ADDR       control API address, JSON over HTTP (default 127.0.0.1:7071)\n"
    "  --state FILE         SQLite state file (default ./wagate-sandbox.db)\n"
    "  --root-key-out FILE  write the root public key (hex) there; use it as WAGATE_WA_ROOT_KEY\n"
    "  --tls-cert FILE      serve wss:// with this PEM certificate chain (needs --tls-key)\n"
    "  --tls-key FILE       PEM private key for --tls-cert\n"
    "  --first-node-ms N    pause before the first node after the handshake (default 50)\n"
    "  --pair-timeout-ms N  how long scan/link-code wait for the companion (default 20000)\n"
    "  --idle-timeout-s N   close a logged-in connection silent this long (default 180, 0 off)\n"
    "  --help               this text\n"
    "\n"
    "Log level: WAGATE_LOG_LEVEL (debug, info, warn, error). Port 0 picks a free port.\n";

typedef struct {
    const char *listen, *control, *state, *root_out, *cert, *key;
    unsigned first_node_ms, pair_timeout_ms, idle_s;
} args_t;

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > max)
        return WG_EINVAL;
    *out = (unsigned)v;
    return 0;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    a->listen = "127.0.0.1:7070";
    a->control = "127.0.0.1:7071";
    a->state = "./wagate-sandbox.db";
    a->first_node_ms = 50;
    a->pair_timeout_ms = 20000;
    a->idle_s = 180;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(USAGE, stdout);
            return 1;
        }
        if (!v) {
            fprintf(stderr, "wagate sandbox: unknown option or missing value: %s\n%s", o, USAGE);
            return 2;
        }
        i++;
        if (!strcmp(o, "--listen"))
            a->listen = v;
        else if (!strcmp(o, "--control"))
            a->control = v;
        else if (!strcmp(o, "--state"))
            a->state = v;
        else if (!strcmp(o, "--root-key-out"))
            a->root_out = v;
        else if (!strcmp(o, "--tls-cert"))
            a->cert = v;
        else if (!strcmp(o, "--tls-key"))
            a->key = v;
        else if (!strcmp(o, "--first-node-ms") && parse_uint(v, 10000, &a->first_node_ms) == 0)
            ;
        else if (!strcmp(o, "--idle-timeout-s") && parse_uint(v, 86400, &a->idle_s) == 0)
            ;
        else if (!strcmp(o, "--pair-timeout-ms") &&
                 parse_uint(v, 600000, &a->pair_timeout_ms) == 0 && a->pair_timeout_ms > 0)
            ;
        else {
            fprintf(stderr, "wagate sandbox: bad option %s %s\n%s", o, v, USAGE);
            return 2;
        }
    }
    if (!a->cert != !a->key) {
        fprintf(stderr, "wagate sandbox: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    wg_log(WG_LOG_INFO, "sandbox", "signal %d: stopping", (int)sig);
    event_base_loopbreak(arg);
}

static int write_root(const char *path, const char *hex)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return WG_EIO;
    fprintf(f, "%s\n", hex);
    return fclose(f) == 0 ? 0 : WG_EIO;
}

int wg_sandbox_main(int argc, char **argv)
{
    args_t a = {0};
    struct event_base *base = NULL;
    struct event *sigint = NULL, *sigterm = NULL;
    wg_sandbox_state_t *st = NULL;
    wg_sandbox_t *sb = NULL;
    wg_sandbox_control_t *ctl = NULL;
    SSL_CTX *ssl = NULL;
    char *hex = NULL;
    const char *lvl_env = getenv("WAGATE_LOG_LEVEL");
    wg_log_level_t lvl;
    int rv, status = 1;
    if ((rv = parse_args(argc, argv, &a)) != 0)
        return rv == 1 ? 0 : 2;
    if (lvl_env && wg_log_parse_level(lvl_env, &lvl) == 0)
        wg_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);
    if (a.cert && !(ssl = wg_wsserver_ssl_ctx_new(a.cert, a.key))) {
        fprintf(stderr, "wagate sandbox: cannot load TLS certificate %s / key %s\n", a.cert, a.key);
        goto out;
    }
    if (!(base = event_base_new()))
        goto out;
    if ((rv = wg_sandbox_state_open(&st, a.state)) != 0) {
        fprintf(stderr, "wagate sandbox: cannot open state file %s: %s\n", a.state,
                wg_strerror(rv));
        goto out;
    }
    wg_sandbox_opts_t so = {a.listen, ssl, a.first_node_ms, a.pair_timeout_ms, 200, a.idle_s};
    if ((rv = wg_sandbox_new(&sb, base, st, &so)) != 0) {
        fprintf(stderr, "wagate sandbox: cannot listen on %s: %s\n", a.listen, wg_strerror(rv));
        goto out;
    }
    if ((rv = wg_sandbox_control_new(&ctl, base, sb, a.control)) != 0) {
        fprintf(stderr, "wagate sandbox: cannot listen on %s (control): %s\n", a.control,
                wg_strerror(rv));
        goto out;
    }
    if (!(hex = wg_hex_encode(wg_sandbox_root(sb)->pub, WG_KEYS_KEY_LEN)))
        goto out;
    if (a.root_out && write_root(a.root_out, hex) != 0) {
        fprintf(stderr, "wagate sandbox: cannot write %s\n", a.root_out);
        goto out;
    }
    {
        /* the host part as given, the port as bound (port 0 means any) */
        const char *lc = strrchr(a.listen, ':'), *cc = strrchr(a.control, ':');
        printf("wagate sandbox: root key %s\n", hex);
        printf("wagate sandbox: websocket %s://%.*s:%u/ws/chat\n", ssl ? "wss" : "ws",
               (int)(lc - a.listen), a.listen, wg_sandbox_port(sb));
        printf("wagate sandbox: control http://%.*s:%u\n", (int)(cc - a.control), a.control,
               wg_sandbox_control_port(ctl));
        printf("wagate sandbox: state %s (%zu phones, %zu linked devices)\n", a.state,
               wg_sandbox_state_phone_count(st), wg_sandbox_state_device_count(st));
        printf("wagate sandbox: use WAGATE_WA_URL=%s://%.*s:%u/ws/chat WAGATE_WA_ROOT_KEY=%s\n",
               ssl ? "wss" : "ws", (int)(lc - a.listen), a.listen, wg_sandbox_port(sb), hex);
        fflush(stdout);
    }
    if (!(sigint = evsignal_new(base, SIGINT, on_signal, base)) ||
        !(sigterm = evsignal_new(base, SIGTERM, on_signal, base)) ||
        evsignal_add(sigint, NULL) != 0 || evsignal_add(sigterm, NULL) != 0)
        goto out;
    event_base_dispatch(base);
    wg_log(WG_LOG_INFO, "sandbox", "stopped");
    status = 0;
out:
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    wg_sandbox_control_free(ctl);
    wg_sandbox_free(sb);
    wg_sandbox_state_close(st);
    if (ssl)
        SSL_CTX_free(ssl);
    if (base)
        event_base_free(base);
    free(hex);
    return status;
}
