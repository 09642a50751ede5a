/* ws_idle.c - memory of idle WebSocket links: N wss:// (or ws://) connections from wa/ws.c
 * clients in this process to a sandbox/wsserver.c server in a forked child, both on one loop
 * each, TLS with SSL_MODE_RELEASE_BUFFERS and an EC P-256 certificate made at start. Prints
 * connect time and RSS per idle link on each side (after malloc_trim, so freed handshake
 * transients do not count). Built and run by bench/ws_idle.sh.
 * Usage: ws_idle [N=2000] [tls=1] */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sandbox/wsserver.h"
#include "wa/ws.h"

static int opened, failed;

static long rss_kb(pid_t pid)
{
    char p[64];
    long a = 0, r = 0;
    FILE *f;
    snprintf(p, sizeof(p), "/proc/%d/statm", (int)pid);
    if ((f = fopen(p, "r")) == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &a, &r) != 2)
        r = 0;
    fclose(f);
    return r * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static void on_open(wg_ws_t *ws, void *u)
{
    (void)ws;
    (void)u;
    opened++;
}

static void on_error(wg_ws_t *ws, int err, const char *msg, void *u)
{
    (void)ws;
    (void)err;
    (void)u;
    if (failed++ < 3)
        fprintf(stderr, "connect failed: %s\n", msg);
}

static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    malloc_trim(0); /* measure live memory, not freed handshake transients */
}

static int srv_open(wg_wsserver_conn_t *c, const wg_ws_handshake_head_t *r, void *u)
{
    (void)c;
    (void)r;
    (void)u;
    return 0;
}

static SSL_CTX *make_server_ctx(char *ca_path)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *e;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    FILE *f;
    int fd;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"wagate.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:wagate.test");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    X509_sign(x, k, EVP_sha256());
    SSL_CTX_use_certificate(ctx, x);
    SSL_CTX_use_PrivateKey(ctx, k);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    strcpy(ca_path, "/tmp/wg_bench_caXXXXXX");
    fd = mkstemp(ca_path);
    f = fdopen(fd, "w");
    PEM_write_X509(f, x); /* self-signed: it is its own CA */
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    return ctx;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000, tls = argc > 2 ? atoi(argv[2]) : 1;
    char ca_path[64] = "", url[128];
    int pfd[2];
    uint16_t port = 0;
    SSL_CTX *sctx = tls ? make_server_ctx(ca_path) : NULL;
    pid_t child;

    if (pipe(pfd) != 0)
        return 1;
    if ((child = fork()) == 0) {
        struct event_base *b = event_base_new();
        wg_wsserver_t *s;
        wg_wsserver_opts_t o = {"127.0.0.1:0", sctx, 0, 60000, 4096};
        wg_wsserver_cbs_t cb = {srv_open, NULL, NULL};
        if (wg_wsserver_new(&s, b, &o, &cb, NULL) != 0)
            _exit(1);
        port = wg_wsserver_port(s);
        {
            struct timeval tv = {0, 200000};
            event_add(event_new(b, -1, EV_PERSIST, trim_cb, NULL), &tv);
        }
        if (write(pfd[1], &port, sizeof(port)) != sizeof(port))
            _exit(1);
        event_base_dispatch(b);
        _exit(0);
    }
    if (read(pfd[0], &port, sizeof(port)) != sizeof(port))
        return 1;
    {
        struct event_base *base = event_base_new();
        SSL_CTX *cctx = tls ? wg_ws_ssl_ctx_new(ca_path) : NULL;
        wg_ws_cbs_t cbs = {on_open, NULL, NULL, on_error, NULL};
        wg_ws_opts_t o;
        wg_ws_t **ws = calloc((size_t)n, sizeof(*ws));
        long c0, s0, c1, s1;
        double t0, t1;

        memset(&o, 0, sizeof(o));
        snprintf(url, sizeof(url), "%s://wagate.test:%u/ws/chat", tls ? "wss" : "ws", port);
        o.url = url;
        o.connect_to = "127.0.0.1";
        o.origin = WG_WS_ORIGIN_WHATSAPP;
        o.ssl_ctx = cctx;
        o.connect_timeout_ms = 60000;
        usleep(300000);
        trim_cb(-1, 0, NULL);
        c0 = rss_kb(getpid());
        s0 = rss_kb(child);
        t0 = now();
        for (int i = 0; i < n; i++) {
            if (wg_ws_new(&ws[i], base, &o, &cbs, NULL) != 0)
                return 1;
            /* keep the listen backlog from overflowing: let the loop run every 200 starts */
            if (i % 200 == 199)
                while (opened + failed < i - 400)
                    event_base_loop(base, EVLOOP_ONCE);
        }
        while (opened + failed < n)
            event_base_loop(base, EVLOOP_ONCE);
        t1 = now();
        {
            /* idle: let both sides settle */
            struct timeval tv = {0, 500000};
            event_base_loopexit(base, &tv);
            event_base_dispatch(base);
        }
        trim_cb(-1, 0, NULL);
        c1 = rss_kb(getpid());
        s1 = rss_kb(child);
        printf("%s links=%d failed=%d connect=%.2fs (%.0f/s)\n", tls ? "wss" : "ws", opened, failed,
               t1 - t0, n / (t1 - t0));
        printf("client rss +%ld KiB = %.1f KiB per idle link\n", c1 - c0,
               (double)(c1 - c0) / (n ? n : 1));
        printf("server rss +%ld KiB = %.1f KiB per idle link\n", s1 - s0,
               (double)(s1 - s0) / (n ? n : 1));
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
        for (int i = 0; i < n; i++)
            wg_ws_free(ws[i]);
        free(ws);
        SSL_CTX_free(cctx);
        event_base_free(base);
    }
    if (ca_path[0])
        unlink(ca_path);
    SSL_CTX_free(sctx);
    return 0;
}
