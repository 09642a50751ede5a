/* test_ws.c - the WebSocket transport end to end on ONE event loop: sandbox/wsserver.c as the
 * server on 127.0.0.1 port 0, wa/ws.c clients, plus an HTTP CONNECT proxy, a SOCKS5 proxy and a
 * few misbehaving raw servers implemented here. TLS certificates (a CA and a server certificate
 * for "wagate.test") are generated in memory with OpenSSL. Loopback only. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include "sandbox/wsserver.h"
#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"
#include "wa/ws.h"

/* ---------- loop helpers ---------- */

static void flag_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs the loop until *flag becomes non-zero or ms pass. Returns *flag. */
static int run_until(struct event_base *base, const int *flag, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    int timed_out = 0;
    struct event *t = evtimer_new(base, flag_cb, &timed_out);
    evtimer_add(t, &tv);
    while (!*flag && !timed_out)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *flag;
}

static void run_for(struct event_base *base, int ms)
{
    int never = 0;
    run_until(base, &never, ms);
}

/* Runs the loop until *v >= want or ms pass. */
static int wait_count(struct event_base *base, const int *v, int want, int ms)
{
    for (int t = 0; *v < want && t < ms; t += 10)
        run_for(base, 10);
    return *v >= want;
}

/* ---------- test server (echo + commands) ---------- */

typedef struct {
    wg_wsserver_t *srv;
    int opens, closes, msgs;
    int last_code;
    char last_reason[128];
    char origin[128], path[128], xtest[64];
    int refuse;
} srv_t;

static int srv_open(wg_wsserver_conn_t *c, const wg_ws_handshake_head_t *req, void *user)
{
    srv_t *s = user;
    const char *o = wg_ws_handshake_head_get(req, "Origin");
    const char *x = wg_ws_handshake_head_get(req, "X-Test");
    (void)c;
    s->opens++;
    snprintf(s->origin, sizeof(s->origin), "%s", o ? o : "");
    snprintf(s->xtest, sizeof(s->xtest), "%s", x ? x : "");
    snprintf(s->path, sizeof(s->path), "%s", req->target);
    return s->refuse;
}

static void srv_msg(wg_wsserver_conn_t *c, int is_text, const uint8_t *d, size_t n, void *user)
{
    srv_t *s = user;
    s->msgs++;
    if (n == 8 && memcmp(d, "close-me", 8) == 0)
        wg_wsserver_conn_close(c, 4000, "bye");
    else if (n == 4 && memcmp(d, "drop", 4) == 0)
        wg_wsserver_conn_free(c);
    else if (n > 4 && n < 20 && memcmp(d, "big:", 4) == 0) {
        char num[20];
        size_t len;
        uint8_t *b;
        memcpy(num, d + 4, n - 4);
        num[n - 4] = 0;
        len = strtoul(num, NULL, 10);
        b = malloc(len);
        memset(b, 'B', len);
        wg_wsserver_conn_send(c, 0, b, len);
        free(b);
    } else
        wg_wsserver_conn_send(c, is_text, d, n);
}

static void srv_close(wg_wsserver_conn_t *c, int code, const char *reason, void *user)
{
    srv_t *s = user;
    (void)c;
    s->closes++;
    s->last_code = code;
    snprintf(s->last_reason, sizeof(s->last_reason), "%s", reason);
}

static int srv_start(srv_t *s, struct event_base *base, SSL_CTX *ssl)
{
    wg_wsserver_opts_t o = {"127.0.0.1:0", ssl, 1 << 20, 2000, 0};
    wg_wsserver_cbs_t cb = {srv_open, srv_msg, srv_close};
    memset(s, 0, sizeof(*s));
    return wg_wsserver_new(&s->srv, base, &o, &cb, s);
}

/* ---------- test client ---------- */

typedef struct {
    wg_ws_t *ws;
    int opened, done, closed, errored;
    int code, err;
    char reason[128], errmsg[256];
    int nmsg, pongs;
    wg_buf_t last;
    const char *hello; /* sent from on_open */
    int free_on_message;
    int *counter; /* shared counter for many-connection tests */
} cli_t;

static void cli_open(wg_ws_t *ws, void *user)
{
    cli_t *c = user;
    c->opened = 1;
    if (c->hello)
        wg_ws_send_binary(ws, (const uint8_t *)c->hello, strlen(c->hello));
}

static void cli_msg(wg_ws_t *ws, const uint8_t *d, size_t n, void *user)
{
    cli_t *c = user;
    c->nmsg++;
    wg_buf_reset(&c->last);
    wg_buf_append(&c->last, d, n);
    if (c->counter)
        (*c->counter)++;
    if (c->free_on_message) {
        wg_ws_free(ws);
        c->ws = NULL;
        c->done = 1;
    }
}

static void cli_close(wg_ws_t *ws, int code, const char *reason, void *user)
{
    cli_t *c = user;
    (void)ws;
    c->closed = c->done = 1;
    c->code = code;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

static void cli_error(wg_ws_t *ws, int err, const char *msg, void *user)
{
    cli_t *c = user;
    (void)ws;
    c->errored = c->done = 1;
    c->err = err;
    snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg);
}

static void cli_pong(wg_ws_t *ws, const uint8_t *d, size_t n, void *user)
{
    cli_t *c = user;
    (void)ws;
    c->pongs++;
    wg_buf_reset(&c->last);
    wg_buf_append(&c->last, d, n);
}

static const wg_ws_cbs_t cli_cbs = {cli_open, cli_msg, cli_close, cli_error, cli_pong};

static int cli_start(cli_t *c, struct event_base *base, const wg_ws_opts_t *o)
{
    wg_buf_init(&c->last, 0);
    return wg_ws_new(&c->ws, base, o, &cli_cbs, c);
}

static void cli_dispose(cli_t *c)
{
    wg_ws_free(c->ws);
    c->ws = NULL;
    wg_buf_dispose(&c->last);
}

static void url_for(char *buf, size_t n, const char *scheme, const char *host, uint16_t port)
{
    snprintf(buf, n, "%s://%s:%u/ws/chat", scheme, host, port);
}

/* ---------- plain ws:// ---------- */

WG_TEST(ws_echo_small_large_and_close)
{
    struct event_base *base = event_base_new();
    wg_ws_header_t hdr[] = {{"X-Test", "yes"}};
    srv_t s;
    cli_t c;
    char url[128];
    wg_ws_opts_t o;
    uint8_t *big;
    size_t bign = 600 * 1024;

    memset(&c, 0, sizeof(c));
    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    url_for(url, sizeof(url), "ws", "127.0.0.1", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.origin = WG_WS_ORIGIN_WHATSAPP;
    o.headers = hdr;
    o.nheaders = 1;
    c.hello = "hello";
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(!c.opened); /* nothing happens inside wg_ws_new */
    WG_CHECK_EQ_INT(wg_ws_send_binary(c.ws, (const uint8_t *)"x", 1), WG_EINVAL);

    WG_CHECK(run_until(base, &c.nmsg, 3000));
    WG_CHECK(c.opened && wg_ws_is_open(c.ws));
    WG_CHECK_EQ_INT(c.last.len, 5);
    WG_CHECK_MEM(c.last.data, "hello", 5);
    WG_CHECK_STR(s.origin, "https://web.whatsapp.com");
    WG_CHECK_STR(s.path, "/ws/chat");
    WG_CHECK_STR(s.xtest, "yes");
    WG_CHECK_EQ_INT(wg_wsserver_count(s.srv), 1);

    /* large message: fragmented both ways, reassembled both ways */
    big = malloc(bign);
    wg_random_bytes(big, bign);
    WG_CHECK_EQ_INT(wg_ws_send_binary(c.ws, big, bign), 0);
    WG_CHECK(wait_count(base, &c.nmsg, 2, 5000));
    WG_CHECK_EQ_INT(c.nmsg, 2);
    WG_CHECK_EQ_INT(c.last.len, bign);
    WG_CHECK_MEM(c.last.data, big, bign);
    free(big);

    /* client-initiated close handshake */
    WG_CHECK_EQ_INT(wg_ws_close(c.ws, 1000, "done"), 0);
    WG_CHECK_EQ_INT(wg_ws_close(c.ws, 1000, "again"), WG_ECLOSED);
    WG_CHECK(run_until(base, &c.done, 3000));
    WG_CHECK(c.closed && !c.errored);
    WG_CHECK_EQ_INT(c.code, 1000);
    WG_CHECK(run_until(base, &s.closes, 3000));
    WG_CHECK_EQ_INT(s.last_code, 1000);
    WG_CHECK_STR(s.last_reason, "done");
    WG_CHECK_EQ_INT(wg_wsserver_count(s.srv), 0);
    WG_CHECK_EQ_INT(wg_ws_send_binary(c.ws, (const uint8_t *)"x", 1), WG_ECLOSED);

    cli_dispose(&c);
    wg_wsserver_free(s.srv);
    event_base_free(base);
}

WG_TEST(ws_ping_pong_and_server_close)
{
    struct event_base *base = event_base_new();
    srv_t s;
    cli_t c;
    char url[128];
    wg_ws_opts_t o;

    memset(&c, 0, sizeof(c));
    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    url_for(url, sizeof(url), "ws", "127.0.0.1", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.opened, 3000));
    WG_CHECK_EQ_INT(wg_ws_ping(c.ws, (const uint8_t *)"abc", 3), 0);
    WG_CHECK(run_until(base, &c.pongs, 3000));
    WG_CHECK_EQ_INT(c.last.len, 3);
    WG_CHECK_MEM(c.last.data, "abc", 3);

    /* server-initiated close: client echoes and reports the server's code */
    WG_CHECK_EQ_INT(wg_ws_send_binary(c.ws, (const uint8_t *)"close-me", 8), 0);
    WG_CHECK(run_until(base, &c.done, 3000));
    WG_CHECK(c.closed);
    WG_CHECK_EQ_INT(c.code, 4000);
    WG_CHECK_STR(c.reason, "bye");
    WG_CHECK(run_until(base, &s.closes, 3000));
    WG_CHECK_EQ_INT(s.last_code, 4000);
    cli_dispose(&c);
    wg_wsserver_free(s.srv);
    event_base_free(base);
}

WG_TEST(ws_oversized_messages)
{
    struct event_base *base = event_base_new();
    srv_t s;
    cli_t c, c2;
    char url[128];
    wg_ws_opts_t o;
    uint8_t *big;

    memset(&c, 0, sizeof(c));
    memset(&c2, 0, sizeof(c2));
    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    url_for(url, sizeof(url), "ws", "127.0.0.1", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.max_message = 1000;
    c.hello = "big:5000"; /* server answers 5000 bytes: over our limit */
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.done, 3000));
    WG_CHECK(c.errored);
    WG_CHECK_EQ_INT(c.err, WG_ETOOBIG);
    WG_CHECK_EQ_INT(c.nmsg, 0);
    WG_CHECK(run_until(base, &s.closes, 3000));
    WG_CHECK_EQ_INT(s.last_code, 1009); /* we told the server why */

    /* the server's limit (1 MiB): it closes with 1009 and we report that close */
    o.max_message = 0;
    WG_CHECK_EQ_INT(cli_start(&c2, base, &o), 0);
    WG_CHECK(run_until(base, &c2.opened, 3000));
    big = calloc(1, 2 << 20);
    WG_CHECK_EQ_INT(wg_ws_send_binary(c2.ws, big, 2 << 20), 0);
    free(big);
    WG_CHECK(run_until(base, &c2.done, 3000));
    WG_CHECK(c2.closed);
    WG_CHECK_EQ_INT(c2.code, 1009);
    cli_dispose(&c);
    cli_dispose(&c2);
    wg_wsserver_free(s.srv);
    event_base_free(base);
}

WG_TEST(ws_free_inside_callback_and_abrupt_drop)
{
    struct event_base *base = event_base_new();
    srv_t s;
    cli_t c, c2;
    char url[128];
    wg_ws_opts_t o;

    memset(&c, 0, sizeof(c));
    memset(&c2, 0, sizeof(c2));
    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    url_for(url, sizeof(url), "ws", "127.0.0.1", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    c.hello = "x";
    c.free_on_message = 1;
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.done, 3000));
    WG_CHECK(c.ws == NULL);
    /* the server sees the connection go away without a close frame */
    WG_CHECK(run_until(base, &s.closes, 3000));
    WG_CHECK_EQ_INT(s.last_code, 1006);

    c2.hello = "drop";
    WG_CHECK_EQ_INT(cli_start(&c2, base, &o), 0);
    WG_CHECK(run_until(base, &c2.done, 3000));
    WG_CHECK(c2.errored);
    WG_CHECK_EQ_INT(c2.err, WG_ECLOSED);
    WG_CHECK_EQ_INT(s.closes, 1); /* a dropped connection owes no on_close */
    cli_dispose(&c);
    cli_dispose(&c2);
    wg_wsserver_free(s.srv);
    event_base_free(base);
}

WG_TEST(ws_server_refuses_upgrade)
{
    struct event_base *base = event_base_new();
    srv_t s;
    cli_t c;
    char url[128];
    wg_ws_opts_t o;

    memset(&c, 0, sizeof(c));
    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    s.refuse = 503;
    url_for(url, sizeof(url), "ws", "127.0.0.1", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.done, 3000));
    WG_CHECK(c.errored && !c.opened);
    WG_CHECK_EQ_INT(c.err, WG_EPROTO);
    WG_CHECK(strstr(c.errmsg, "HTTP 503") != NULL);
    WG_CHECK_EQ_INT(s.closes, 0);
    cli_dispose(&c);
    wg_wsserver_free(s.srv);
    event_base_free(base);
}

/* ---------- misbehaving raw servers ---------- */

typedef struct {
    struct evconnlistener *lev;
    uint16_t port;
    const char *answer; /* written once the request head arrived */
    struct bufferevent *bev;
} raw_t;

static void raw_read(struct bufferevent *bev, void *arg)
{
    raw_t *r = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_search(in, "\r\n\r\n", 4, NULL).pos >= 0) {
        evbuffer_drain(in, evbuffer_get_length(in));
        bufferevent_write(bev, r->answer, strlen(r->answer));
    }
}

static void raw_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n,
                       void *arg)
{
    raw_t *r = arg;
    (void)l;
    (void)sa;
    (void)n;
    if (r->bev)
        bufferevent_free(r->bev);
    r->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(r->bev, raw_read, NULL, NULL, r);
    bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

static uint16_t bound_port(evutil_socket_t fd)
{
    struct sockaddr_in sin;
    socklen_t l = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &l);
    return ntohs(sin.sin_port);
}

static int raw_start(raw_t *r, struct event_base *base, const char *answer)
{
    struct sockaddr_in sin;
    memset(r, 0, sizeof(*r));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->answer = answer;
    r->lev = evconnlistener_new_bind(base, raw_accept, r, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                     16, (struct sockaddr *)&sin, sizeof(sin));
    if (!r->lev)
        return -1;
    r->port = bound_port(evconnlistener_get_fd(r->lev));
    return 0;
}

static void raw_stop(raw_t *r)
{
    if (r->bev)
        bufferevent_free(r->bev);
    evconnlistener_free(r->lev);
}

WG_TEST(ws_bad_accept_is_an_error)
{
    struct event_base *base = event_base_new();
    raw_t r;
    cli_t c;
    char url[128];
    wg_ws_opts_t o;

    memset(&c, 0, sizeof(c));
    WG_CHECK_EQ_INT(raw_start(&r, base,
                              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
                    0);
    url_for(url, sizeof(url), "ws", "127.0.0.1", r.port);
    memset(&o, 0, sizeof(o));
    o.url = url;
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.done, 3000));
    WG_CHECK(c.errored && !c.opened);
    WG_CHECK_EQ_INT(c.err, WG_EPROTO);
    WG_CHECK(strstr(c.errmsg, "Sec-WebSocket-Accept") != NULL);
    cli_dispose(&c);
    raw_stop(&r);
    event_base_free(base);
}

WG_TEST(ws_connect_timeout_and_refused)
{
    struct event_base *base = event_base_new();
    struct sockaddr_in sin;
    evutil_socket_t lfd, dead;
    uint16_t lport, dport;
    cli_t c, c2;
    char url[128];
    wg_ws_opts_t o;
    struct timeval t0, t1;

    memset(&c, 0, sizeof(c));
    memset(&c2, 0, sizeof(c2));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* a socket that listens but never accepts nor answers */
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    WG_CHECK(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(lfd, 4) == 0);
    lport = bound_port(lfd);
    /* a port with nobody behind it */
    dead = socket(AF_INET, SOCK_STREAM, 0);
    WG_CHECK(bind(dead, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    dport = bound_port(dead);
    close(dead);

    url_for(url, sizeof(url), "ws", "127.0.0.1", lport);
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.connect_timeout_ms = 300;
    evutil_gettimeofday(&t0, NULL);
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.done, 3000));
    evutil_gettimeofday(&t1, NULL);
    WG_CHECK(c.errored);
    WG_CHECK_EQ_INT(c.err, WG_ETIMEDOUT);
    {
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
        WG_CHECK(ms >= 250 && ms < 2000);
    }

    url_for(url, sizeof(url), "ws", "127.0.0.1", dport);
    WG_CHECK_EQ_INT(cli_start(&c2, base, &o), 0);
    WG_CHECK(run_until(base, &c2.done, 3000));
    WG_CHECK(c2.errored);
    WG_CHECK_EQ_INT(c2.err, WG_EIO);
    WG_CHECK(strstr(c2.errmsg, "refused") != NULL);
    cli_dispose(&c);
    cli_dispose(&c2);
    close(lfd);
    event_base_free(base);
}

WG_TEST(ws_bad_options_fail_synchronously)
{
    struct event_base *base = event_base_new();
    cli_t c;
    wg_ws_opts_t o;
    memset(&c, 0, sizeof(c));
    memset(&o, 0, sizeof(o));
    o.url = "http://127.0.0.1/";
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), WG_EINVAL);
    o.url = "ws://needs-dns.example/"; /* a name but no resolver */
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), WG_EINVAL);
    o.url = "ws://127.0.0.1:1/";
    o.origin = "x\r\nEvil: 1";
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), WG_EINVAL);
    WG_CHECK(c.ws == NULL);
    run_for(base, 20);
    WG_CHECK(!c.done); /* a failed start never calls back */
    wg_buf_dispose(&c.last);
    event_base_free(base);
}

WG_TEST(ws_dns_localhost)
{
    struct event_base *base = event_base_new();
    struct evdns_base *dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    srv_t s;
    cli_t c;
    char url[128];
    wg_ws_opts_t o;

    memset(&c, 0, sizeof(c));
    WG_CHECK(dns != NULL);
    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    url_for(url, sizeof(url), "ws", "localhost", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.dns = dns;
    c.hello = "via-dns";
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.nmsg, 3000));
    WG_CHECK_EQ_INT(c.nmsg, 1);
    WG_CHECK(!c.errored);
    cli_dispose(&c);
    wg_wsserver_free(s.srv);
    evdns_base_free(dns, 0);
    event_base_free(base);
}

/* ---------- TLS ---------- */

typedef struct {
    EVP_PKEY *ca_key, *ca2_key, *srv_key;
    X509 *ca, *ca2, *srv;
    char ca_path[64], ca2_path[64];
    SSL_CTX *server_ctx;
} pki_t;

static int add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
    X509V3_CTX v3;
    X509_EXTENSION *e;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, val)) == NULL)
        return -1;
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return 0;
}

static X509 *mk_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                     const char *san, long serial)
{
    X509 *x = X509_new();
    X509_NAME *n;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    if (!issuer) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
        add_ext(x, issuer, NID_subject_alt_name, san);
    }
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    return x;
}

static int write_pem(char *path, X509 *x)
{
    int fd;
    FILE *f;
    strcpy(path, "/tmp/wg_test_caXXXXXX");
    if ((fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL)
        return -1;
    PEM_write_X509(f, x);
    fclose(f);
    return 0;
}

static int pki_init(pki_t *p)
{
    memset(p, 0, sizeof(*p));
    p->ca_key = EVP_EC_gen("P-256");
    p->ca2_key = EVP_EC_gen("P-256");
    p->srv_key = EVP_EC_gen("P-256");
    if (!p->ca_key || !p->ca2_key || !p->srv_key)
        return -1;
    p->ca = mk_cert(p->ca_key, "wagate test CA", NULL, NULL, NULL, 1);
    p->ca2 = mk_cert(p->ca2_key, "some other CA", NULL, NULL, NULL, 2);
    p->srv = mk_cert(p->srv_key, "wagate.test", p->ca, p->ca_key, "DNS:wagate.test", 3);
    if (write_pem(p->ca_path, p->ca) != 0 || write_pem(p->ca2_path, p->ca2) != 0)
        return -1;
    p->server_ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate(p->server_ctx, p->srv) != 1 ||
        SSL_CTX_use_PrivateKey(p->server_ctx, p->srv_key) != 1)
        return -1;
    SSL_CTX_set_mode(p->server_ctx, SSL_MODE_RELEASE_BUFFERS);
    return 0;
}

static void pki_dispose(pki_t *p)
{
    unlink(p->ca_path);
    unlink(p->ca2_path);
    SSL_CTX_free(p->server_ctx);
    X509_free(p->ca);
    X509_free(p->ca2);
    X509_free(p->srv);
    EVP_PKEY_free(p->ca_key);
    EVP_PKEY_free(p->ca2_key);
    EVP_PKEY_free(p->srv_key);
}

WG_TEST(ws_tls_verification)
{
    struct event_base *base = event_base_new();
    pki_t p;
    srv_t s;
    cli_t c, bad_name, bad_ca;
    char url[128];
    wg_ws_opts_t o;
    SSL_CTX *cctx, *cctx2;

    memset(&c, 0, sizeof(c));
    memset(&bad_name, 0, sizeof(bad_name));
    memset(&bad_ca, 0, sizeof(bad_ca));
    WG_CHECK_EQ_INT(pki_init(&p), 0);
    WG_CHECK_EQ_INT(srv_start(&s, base, p.server_ctx), 0);
    cctx = wg_ws_ssl_ctx_new(p.ca_path);
    cctx2 = wg_ws_ssl_ctx_new(p.ca2_path);
    WG_CHECK(cctx && cctx2);

    /* right name, trusted CA */
    url_for(url, sizeof(url), "wss", "wagate.test", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.connect_to = "127.0.0.1";
    o.ssl_ctx = cctx;
    c.hello = "over tls";
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.nmsg, 3000));
    WG_CHECK_EQ_INT(c.last.len, 8);
    WG_CHECK_MEM(c.last.data, "over tls", 8);
    WG_CHECK_EQ_INT(wg_ws_close(c.ws, 0, NULL), 0);
    WG_CHECK(run_until(base, &c.done, 3000));
    WG_CHECK(c.closed);

    /* wrong name */
    url_for(url, sizeof(url), "wss", "wrong.test", wg_wsserver_port(s.srv));
    WG_CHECK_EQ_INT(cli_start(&bad_name, base, &o), 0);
    WG_CHECK(run_until(base, &bad_name.done, 3000));
    WG_CHECK(bad_name.errored && !bad_name.opened);
    WG_CHECK_EQ_INT(bad_name.err, WG_ECRYPTO);
    WG_CHECK(strstr(bad_name.errmsg, "hostname mismatch") != NULL);

    /* right name, CA we do not trust (private context from ca_file) */
    url_for(url, sizeof(url), "wss", "wagate.test", wg_wsserver_port(s.srv));
    o.ssl_ctx = NULL;
    o.ca_file = p.ca2_path;
    WG_CHECK_EQ_INT(cli_start(&bad_ca, base, &o), 0);
    WG_CHECK(run_until(base, &bad_ca.done, 3000));
    WG_CHECK(bad_ca.errored && !bad_ca.opened);
    WG_CHECK_EQ_INT(bad_ca.err, WG_ECRYPTO);
    WG_CHECK(strstr(bad_ca.errmsg, "certificate verify failed") != NULL);

    cli_dispose(&c);
    cli_dispose(&bad_name);
    cli_dispose(&bad_ca);
    wg_wsserver_free(s.srv);
    SSL_CTX_free(cctx);
    SSL_CTX_free(cctx2);
    pki_dispose(&p);
    event_base_free(base);
}

/* ---------- proxies implemented in the test ---------- */

typedef struct {
    struct evconnlistener *lev;
    uint16_t port;
    int socks;
    const char *user, *pass;
    int tunnels;
    char last_target[300];
} tproxy_t;

typedef struct {
    tproxy_t *px;
    struct bufferevent *a, *b; /* a: client side, b: target side */
    int stage;                 /* 0 greeting/request, 1 socks auth, 2 socks connect, 3 relay */
    int closing;
} pconn_t;

static void pconn_free(pconn_t *pc)
{
    if (pc->a)
        bufferevent_free(pc->a);
    if (pc->b)
        bufferevent_free(pc->b);
    free(pc);
}

static void pconn_write_cb(struct bufferevent *bev, void *arg)
{
    pconn_t *pc = arg;
    (void)bev;
    if (pc->closing)
        pconn_free(pc);
}

static void pconn_fail(pconn_t *pc, const void *msg, size_t n)
{
    pc->closing = 1;
    bufferevent_write(pc->a, msg, n); /* freed by pconn_write_cb once written */
}

static void pconn_relay_a(struct bufferevent *bev, void *arg);

static void pconn_b_read(struct bufferevent *bev, void *arg)
{
    pconn_t *pc = arg;
    evbuffer_add_buffer(bufferevent_get_output(pc->a), bufferevent_get_input(bev));
}

static void pconn_event(struct bufferevent *bev, short what, void *arg)
{
    pconn_t *pc = arg;
    if (what & BEV_EVENT_CONNECTED) {
        pc->px->tunnels++;
        if (pc->px->socks) {
            static const uint8_t ok[] = {5, 0, 0, 1, 127, 0, 0, 1, 0, 0};
            bufferevent_write(pc->a, ok, sizeof(ok));
        } else {
            static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
            bufferevent_write(pc->a, ok, sizeof(ok) - 1);
        }
        pc->stage = 3;
        /* anything the client sent early goes through now */
        pconn_relay_a(pc->a, pc);
        return;
    }
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        pconn_free(pc);
}

static void pconn_connect_target(pconn_t *pc, const char *host, uint16_t port)
{
    struct sockaddr_in sin;
    snprintf(pc->px->last_target, sizeof(pc->px->last_target), "%s:%u", host, port);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* every name is us */
    sin.sin_port = htons(port);
    pc->b = bufferevent_socket_new(bufferevent_get_base(pc->a), -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(pc->b, pconn_b_read, NULL, pconn_event, pc);
    bufferevent_enable(pc->b, EV_READ | EV_WRITE);
    bufferevent_socket_connect(pc->b, (struct sockaddr *)&sin, sizeof(sin));
}

static void pconn_http(pconn_t *pc, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in), used;
    wg_ws_handshake_head_t h;
    static const char r407[] = "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
    static const char r400[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    char *colon;
    int rv = wg_ws_handshake_parse_head(evbuffer_pullup(in, (ssize_t)n), n, 1, 0, &h, &used);
    if (rv == WG_EAGAIN)
        return;
    if (rv != 0 || strcmp(h.method, "CONNECT") != 0 || !(colon = strrchr(h.target, ':'))) {
        if (rv == 0)
            wg_ws_handshake_head_dispose(&h);
        pconn_fail(pc, r400, sizeof(r400) - 1);
        return;
    }
    evbuffer_drain(in, used);
    if (pc->px->user) {
        char cred[200], *b64, want[300];
        const char *got = wg_ws_handshake_head_get(&h, "Proxy-Authorization");
        snprintf(cred, sizeof(cred), "%s:%s", pc->px->user, pc->px->pass);
        b64 = wg_base64_encode((const uint8_t *)cred, strlen(cred));
        snprintf(want, sizeof(want), "Basic %s", b64);
        free(b64);
        if (!got || strcmp(got, want) != 0) {
            wg_ws_handshake_head_dispose(&h);
            pconn_fail(pc, r407, sizeof(r407) - 1);
            return;
        }
    }
    *colon = 0;
    pc->stage = 2;
    pconn_connect_target(pc, h.target, (uint16_t)atoi(colon + 1));
    wg_ws_handshake_head_dispose(&h);
}

static void pconn_socks(pconn_t *pc, struct evbuffer *in)
{
    uint8_t *p;
    size_t n = evbuffer_get_length(in);
    p = evbuffer_pullup(in, (ssize_t)n);
    if (pc->stage == 0) {
        uint8_t reply[2] = {5, 0xff};
        int want_auth = pc->px->user != NULL;
        if (n < 2 || n < 2u + p[1])
            return;
        for (size_t i = 0; i < p[1]; i++)
            if (p[2 + i] == (want_auth ? 2 : 0))
                reply[1] = want_auth ? 2 : 0;
        evbuffer_drain(in, 2u + p[1]);
        if (reply[1] == 0xff) {
            pconn_fail(pc, reply, 2);
            return;
        }
        bufferevent_write(pc->a, reply, 2);
        pc->stage = want_auth ? 1 : 2;
    } else if (pc->stage == 1) {
        size_t ul, pl;
        uint8_t ok[2] = {1, 0};
        if (n < 2 || n < 3u + p[1] || n < 3u + p[1] + p[2 + p[1]])
            return;
        ul = p[1];
        pl = p[2 + ul];
        if (ul != strlen(pc->px->user) || memcmp(p + 2, pc->px->user, ul) != 0 ||
            pl != strlen(pc->px->pass) || memcmp(p + 3 + ul, pc->px->pass, pl) != 0) {
            ok[1] = 1;
            evbuffer_drain(in, 3 + ul + pl);
            pconn_fail(pc, ok, 2);
            return;
        }
        evbuffer_drain(in, 3 + ul + pl);
        bufferevent_write(pc->a, ok, 2);
        pc->stage = 2;
    } else if (pc->stage == 2 && pc->b == NULL) {
        char host[256];
        uint16_t port;
        if (n < 5 || p[3] != 3 || n < 7u + p[4])
            return;
        memcpy(host, p + 5, p[4]);
        host[p[4]] = 0;
        port = (uint16_t)(p[5 + p[4]] << 8 | p[6 + p[4]]);
        evbuffer_drain(in, 7u + p[4]);
        pconn_connect_target(pc, host, port);
        return;
    } else
        return;
    if (evbuffer_get_length(in))
        pconn_socks(pc, in);
}

static void pconn_relay_a(struct bufferevent *bev, void *arg)
{
    pconn_t *pc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (pc->closing)
        evbuffer_drain(in, evbuffer_get_length(in));
    else if (pc->stage == 3)
        evbuffer_add_buffer(bufferevent_get_output(pc->b), in);
    else if (pc->px->socks)
        pconn_socks(pc, in);
    else if (pc->stage == 0)
        pconn_http(pc, in);
}

static void pconn_a_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        pconn_free(arg);
}

static void tproxy_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n,
                          void *arg)
{
    pconn_t *pc = calloc(1, sizeof(*pc));
    (void)sa;
    (void)n;
    pc->px = arg;
    pc->a = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(pc->a, pconn_relay_a, pconn_write_cb, pconn_a_event, pc);
    bufferevent_enable(pc->a, EV_READ | EV_WRITE);
}

static int tproxy_start(tproxy_t *px, struct event_base *base, int socks, const char *user,
                        const char *pass)
{
    struct sockaddr_in sin;
    memset(px, 0, sizeof(*px));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    px->socks = socks;
    px->user = user;
    px->pass = pass;
    px->lev =
        evconnlistener_new_bind(base, tproxy_accept, px, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                16, (struct sockaddr *)&sin, sizeof(sin));
    if (!px->lev)
        return -1;
    px->port = bound_port(evconnlistener_get_fd(px->lev));
    return 0;
}

/* One proxy type: right credentials (plain and TLS), wrong, missing. */
static void proxy_case(int socks, int *wg_failed_)
{
    struct event_base *base = event_base_new();
    tproxy_t px;
    pki_t p;
    srv_t s, st;
    cli_t ok, tls, wrong, none;
    char url[128];
    wg_ws_opts_t o;
    SSL_CTX *cctx;
    wg_proxy_type_t type = socks ? WG_PROXY_SOCKS5 : WG_PROXY_HTTP;

    memset(&ok, 0, sizeof(ok));
    memset(&tls, 0, sizeof(tls));
    memset(&wrong, 0, sizeof(wrong));
    memset(&none, 0, sizeof(none));
    WG_CHECK_EQ_INT(pki_init(&p), 0);
    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    WG_CHECK_EQ_INT(srv_start(&st, base, p.server_ctx), 0);
    WG_CHECK_EQ_INT(tproxy_start(&px, base, socks, "alice", "s3cret"), 0);
    cctx = wg_ws_ssl_ctx_new(p.ca_path);

    /* the proxy is given the name; it resolves it (here: everything is loopback) */
    url_for(url, sizeof(url), "ws", "sandbox.test", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.proxy = (wg_proxy_opts_t){type, "127.0.0.1", px.port, "alice", "s3cret"};
    ok.hello = "through proxy";
    WG_CHECK_EQ_INT(cli_start(&ok, base, &o), 0);
    WG_CHECK(run_until(base, &ok.nmsg, 3000));
    WG_CHECK_EQ_INT(ok.last.len, 13);
    WG_CHECK_MEM(ok.last.data, "through proxy", 13);
    {
        char want[64];
        snprintf(want, sizeof(want), "sandbox.test:%u", wg_wsserver_port(s.srv));
        WG_CHECK_STR(px.last_target, want);
    }

    /* TLS inside the tunnel, verified against the URL's host name */
    url_for(url, sizeof(url), "wss", "wagate.test", wg_wsserver_port(st.srv));
    o.ssl_ctx = cctx;
    tls.hello = "tls in tunnel";
    WG_CHECK_EQ_INT(cli_start(&tls, base, &o), 0);
    WG_CHECK(run_until(base, &tls.nmsg, 3000));
    WG_CHECK_MEM(tls.last.data, "tls in tunnel", 13);

    /* wrong password */
    o.proxy.pass = "nope";
    WG_CHECK_EQ_INT(cli_start(&wrong, base, &o), 0);
    WG_CHECK(run_until(base, &wrong.done, 3000));
    WG_CHECK(wrong.errored && !wrong.opened);
    WG_CHECK_EQ_INT(wrong.err, WG_EPERM);
    WG_CHECK(strstr(wrong.errmsg, "authentication failed") != NULL);

    /* no credentials at all */
    o.proxy.user = o.proxy.pass = NULL;
    WG_CHECK_EQ_INT(cli_start(&none, base, &o), 0);
    WG_CHECK(run_until(base, &none.done, 3000));
    WG_CHECK(none.errored);
    WG_CHECK_EQ_INT(none.err, WG_EPERM);
    WG_CHECK_EQ_INT(px.tunnels, 2);

    cli_dispose(&ok);
    cli_dispose(&tls);
    cli_dispose(&wrong);
    cli_dispose(&none);
    evconnlistener_free(px.lev);
    wg_wsserver_free(s.srv);
    wg_wsserver_free(st.srv);
    SSL_CTX_free(cctx);
    pki_dispose(&p);
    run_for(base, 10);
    event_base_free(base);
}

WG_TEST(ws_http_connect_proxy)
{
    proxy_case(0, wg_failed_);
}

WG_TEST(ws_socks5_proxy)
{
    proxy_case(1, wg_failed_);
}

/* ---------- many connections on one loop ---------- */

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

WG_TEST(ws_200_connections_one_loop)
{
    enum { N = 200 };
    struct event_base *base = event_base_new();
    srv_t s;
    cli_t *c = calloc(N, sizeof(*c));
    char url[128];
    wg_ws_opts_t o;
    int echoed = 0, all = 0, closed;
    long rss0, rss1;

    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    url_for(url, sizeof(url), "ws", "127.0.0.1", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    rss0 = rss_kb();
    for (int i = 0; i < N; i++) {
        c[i].hello = "n";
        c[i].counter = &echoed;
        WG_CHECK_EQ_INT(cli_start(&c[i], base, &o), 0);
    }
    WG_CHECK(wait_count(base, &echoed, N, 5000));
    WG_CHECK_EQ_INT(wg_wsserver_count(s.srv), N);
    rss1 = rss_kb();
    printf("    info: %d client+server WebSocket pairs open, rss +%ld KiB (%ld B per pair)\n", N,
           rss1 - rss0, (rss1 - rss0) * 1024 / N);
    for (int i = 0; i < N; i++)
        WG_CHECK_EQ_INT(wg_ws_close(c[i].ws, 1000, "bye"), 0);
    for (int k = 0; k < 500 && !all; k++) {
        run_for(base, 10);
        closed = 0;
        for (int i = 0; i < N; i++)
            closed += c[i].closed;
        all = closed == N;
    }
    WG_CHECK(all);
    for (int k = 0; k < 100 && wg_wsserver_count(s.srv) > 0; k++)
        run_for(base, 10);
    WG_CHECK_EQ_INT(wg_wsserver_count(s.srv), 0);
    WG_CHECK_EQ_INT(s.closes, N);
    for (int i = 0; i < N; i++)
        cli_dispose(&c[i]);
    free(c);
    wg_wsserver_free(s.srv);
    event_base_free(base);
}

/* ---------- server side against raw clients ---------- */

typedef struct {
    struct bufferevent *bev;
    wg_buf_t got;
    int eof;
} rawcli_t;

static void rawcli_read(struct bufferevent *bev, void *arg)
{
    rawcli_t *r = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    wg_buf_append(&r->got, evbuffer_pullup(in, (ssize_t)n), n);
    evbuffer_drain(in, n);
}

static void rawcli_event(struct bufferevent *bev, short what, void *arg)
{
    rawcli_t *r = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        r->eof = 1;
}

static void rawcli_start(rawcli_t *r, struct event_base *base, uint16_t port, const char *send)
{
    struct sockaddr_in sin;
    memset(r, 0, sizeof(*r));
    wg_buf_init(&r->got, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    r->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(r->bev, rawcli_read, NULL, rawcli_event, r);
    bufferevent_enable(r->bev, EV_READ | EV_WRITE);
    bufferevent_socket_connect(r->bev, (struct sockaddr *)&sin, sizeof(sin));
    if (send)
        bufferevent_write(r->bev, send, strlen(send));
}

static void rawcli_dispose(rawcli_t *r)
{
    bufferevent_free(r->bev);
    wg_buf_dispose(&r->got);
}

WG_TEST(ws_server_rejects_bad_requests_and_idle_clients)
{
    struct event_base *base = event_base_new();
    wg_wsserver_opts_t o = {"127.0.0.1:0", NULL, 0, 200, 0};
    wg_wsserver_cbs_t cb = {srv_open, srv_msg, srv_close};
    srv_t s;
    rawcli_t plain_get, tls_hello, silent;

    memset(&s, 0, sizeof(s));
    WG_CHECK_EQ_INT(wg_wsserver_new(&s.srv, base, &o, &cb, &s), 0);
    /* an ordinary HTTP GET without the upgrade headers */
    rawcli_start(&plain_get, base, wg_wsserver_port(s.srv), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    /* a TLS ClientHello sent to a plain listener */
    rawcli_start(&tls_hello, base, wg_wsserver_port(s.srv), "\x16\x03\x01\x02\x00\x01");
    /* says nothing: dropped after the handshake timeout (200 ms here) */
    rawcli_start(&silent, base, wg_wsserver_port(s.srv), NULL);
    WG_CHECK(run_until(base, &plain_get.eof, 3000));
    WG_CHECK(run_until(base, &tls_hello.eof, 3000));
    WG_CHECK(strncmp((char *)plain_get.got.data, "HTTP/1.1 400 ", 13) == 0);
    WG_CHECK(strstr((char *)plain_get.got.data, "Sec-WebSocket-Version: 13\r\n") != NULL);
    WG_CHECK(strncmp((char *)tls_hello.got.data, "HTTP/1.1 400 ", 13) == 0);
    WG_CHECK(run_until(base, &silent.eof, 3000));
    WG_CHECK_EQ_INT(silent.got.len, 0);
    WG_CHECK_EQ_INT(s.opens, 0);
    WG_CHECK_EQ_INT(s.closes, 0);
    WG_CHECK_EQ_INT(wg_wsserver_count(s.srv), 0);
    rawcli_dispose(&plain_get);
    rawcli_dispose(&tls_hello);
    rawcli_dispose(&silent);
    wg_wsserver_free(s.srv);
    event_base_free(base);
}

WG_TEST(ws_server_drop_all)
{
    struct event_base *base = event_base_new();
    srv_t s;
    cli_t c[3];
    char url[128];
    wg_ws_opts_t o;
    int opened = 0;

    memset(c, 0, sizeof(c));
    WG_CHECK_EQ_INT(srv_start(&s, base, NULL), 0);
    url_for(url, sizeof(url), "ws", "127.0.0.1", wg_wsserver_port(s.srv));
    memset(&o, 0, sizeof(o));
    o.url = url;
    for (int i = 0; i < 3; i++) {
        c[i].hello = "x";
        c[i].counter = &opened;
        WG_CHECK_EQ_INT(cli_start(&c[i], base, &o), 0);
    }
    WG_CHECK(wait_count(base, &opened, 3, 3000));
    WG_CHECK_EQ_INT(wg_wsserver_count(s.srv), 3);
    wg_wsserver_drop_all(s.srv);
    WG_CHECK_EQ_INT(s.closes, 3);
    WG_CHECK_EQ_INT(s.last_code, 1006);
    WG_CHECK_STR(s.last_reason, "dropped");
    WG_CHECK_EQ_INT(wg_wsserver_count(s.srv), 0);
    for (int i = 0; i < 3; i++) {
        WG_CHECK(run_until(base, &c[i].done, 3000));
        WG_CHECK_EQ_INT(c[i].err, WG_ECLOSED);
        cli_dispose(&c[i]);
    }
    wg_wsserver_free(s.srv);
    event_base_free(base);
}

WG_TEST(ws_next_address_after_blackhole)
{
    /* "multi.test" resolves (hosts file given to evdns) to 127.0.0.2 first, then 127.0.0.1.
     * 127.0.0.2:P is a listener whose accept queue is full, so our SYN goes unanswered; the
     * per-address timer must move on to 127.0.0.1:P where the server is. */
    struct event_base *base = event_base_new();
    struct evdns_base *dns = evdns_base_new(base, 0);
    struct sockaddr_in sin;
    char hosts[] = "/tmp/wg_test_hostsXXXXXX", listen_addr[64], url[128];
    evutil_socket_t bh, fill[4];
    wg_wsserver_opts_t so = {listen_addr, NULL, 0, 2000, 0};
    wg_wsserver_cbs_t scb = {srv_open, srv_msg, srv_close};
    srv_t s;
    cli_t c;
    wg_ws_opts_t o;
    uint16_t port;
    FILE *f;
    int fd;
    struct timeval t0, t1;
    long ms;

    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x7f000002);
    bh = socket(AF_INET, SOCK_STREAM, 0);
    WG_CHECK(bind(bh, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(bh, 0) == 0);
    port = bound_port(bh);
    sin.sin_port = htons(port);
    for (int i = 0; i < 4; i++) { /* fill the accept queue */
        fill[i] = socket(AF_INET, SOCK_STREAM, 0);
        evutil_make_socket_nonblocking(fill[i]);
        connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
    }
    run_for(base, 50);
    snprintf(listen_addr, sizeof(listen_addr), "127.0.0.1:%u", port);
    WG_CHECK_EQ_INT(wg_wsserver_new(&s.srv, base, &so, &scb, &s), 0);

    WG_CHECK((fd = mkstemp(hosts)) >= 0 && (f = fdopen(fd, "w")) != NULL);
    fputs("127.0.0.2 multi.test\n127.0.0.1 multi.test\n", f);
    fclose(f);
    WG_CHECK(dns && evdns_base_load_hosts(dns, hosts) == 0);
    unlink(hosts);

    url_for(url, sizeof(url), "ws", "multi.test", port);
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.dns = dns;
    o.connect_timeout_ms = 2000; /* 500 ms per address */
    c.hello = "second address";
    evutil_gettimeofday(&t0, NULL);
    WG_CHECK_EQ_INT(cli_start(&c, base, &o), 0);
    WG_CHECK(run_until(base, &c.nmsg, 3000));
    evutil_gettimeofday(&t1, NULL);
    WG_CHECK(!c.errored);
    /* it did try the black hole first and gave it its 500 ms */
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    WG_CHECK(ms >= 450 && ms < 1500);
    WG_CHECK_EQ_INT(c.last.len, 14);
    cli_dispose(&c);
    wg_wsserver_free(s.srv);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(bh);
    evdns_base_free(dns, 0);
    event_base_free(base);
}
