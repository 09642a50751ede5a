/* ws.c - WebSocket client on a libevent loop (see ws.h for the stack and the callback rules).
 *
 * One state machine, changed only through set_state() (which logs the transition):
 *   START -> RESOLVING -> CONNECTING -> [PROXY] -> [TLS] -> UPGRADE -> OPEN
 *   OPEN -> CLOSING (we sent close) -> DONE        OPEN -> DRAINING (peer closed / failure,
 *   flushing our last frames) -> DONE               any -> DONE on a connect failure
 * Every entry from libevent (timer, deferred step, bufferevent callbacks) goes through
 * enter()/leave(); wg_ws_free() inside a callback only marks the object and leave() frees it.
 * Network resources (bufferevent, TLS, link, DNS request) are released by finish(), right
 * after the terminal callback. */
#include "wa/ws.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/ws_link.h"

#define CLOSE_TIMEOUT_MS 5000
#define DRAIN_TIMEOUT_MS 1000
#define OUT_HIGH_WATER (256 * 1024)

typedef enum {
    ST_START,
    ST_RESOLVING,
    ST_CONNECTING,
    ST_PROXY,
    ST_TLS,
    ST_UPGRADE,
    ST_OPEN,
    ST_CLOSING,
    ST_DRAINING,
    ST_DONE,
} state_t;

static const char *state_names[] = {"start",   "resolving", "connecting", "proxy",    "tls",
                                    "upgrade", "open",      "closing",    "draining", "done"};

struct wg_ws_s {
    struct event_base *base;
    wg_ws_cbs_t cbs;
    void *user;
    state_t st;
    int depth;        /* nesting of our callbacks on the stack */
    int free_pending; /* wg_ws_free() was called inside a callback */

    /* options (owned copies) */
    int tls;
    char *host;      /* URL host: TLS name, Host header */
    char *dial_host; /* where TCP goes: proxy, connect_to or host */
    uint16_t port, dial_port;
    char *path;
    char *origin;
    wg_ws_header_t *headers;
    size_t nheaders;
    unsigned timeout_ms;
    size_t max_msg;
    SSL_CTX *ssl_ctx;
    int own_ssl_ctx;
    struct evdns_base *dns;

    /* connection */
    struct event *timer;
    struct event *step; /* deferred "continue" (start, after DNS); per-address connect timer */
    struct evdns_getaddrinfo_request *dns_req;
    struct evutil_addrinfo *addrs, *cur_addr;
    int dns_result;
    struct bufferevent *bev;
    wg_proxy_t *proxy;
    char key[WG_WS_KEY_LEN + 1];
    wg_ws_link_t *link;
    char last_err[192];

    /* terminal result held while DRAINING */
    int pend_err;
    int pend_code;
    char pend_msg[192];
};

static void finish(wg_ws_t *ws, int err, int code, const char *msg);
static void bev_read_cb(struct bufferevent *bev, void *arg);
static void bev_write_cb(struct bufferevent *bev, void *arg);
static void bev_event_cb(struct bufferevent *bev, short what, void *arg);
static void try_connect(wg_ws_t *ws);

static void set_state(wg_ws_t *ws, state_t st)
{
    wg_log(WG_LOG_DEBUG, "ws", "host=%s state=%s->%s", ws->host, state_names[ws->st],
           state_names[st]);
    ws->st = st;
}

static void arm_timer(wg_ws_t *ws, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ws->timer, &tv);
}

/* ---------- lifetime ---------- */

static void release_net(wg_ws_t *ws)
{
    if (ws->dns_req) {
        struct evdns_getaddrinfo_request *r = ws->dns_req;
        ws->dns_req = NULL;
        evdns_getaddrinfo_cancel(r); /* our callback sees EVUTIL_EAI_CANCEL and returns */
    }
    if (ws->addrs) {
        evutil_freeaddrinfo(ws->addrs);
        ws->addrs = ws->cur_addr = NULL;
    }
    wg_ws_link_free(ws->link);
    ws->link = NULL;
    if (ws->bev) {
        bufferevent_free(ws->bev); /* closes the socket; frees SSL for TLS */
        ws->bev = NULL;
    }
    wg_proxy_free(ws->proxy);
    ws->proxy = NULL;
    if (ws->timer)
        evtimer_del(ws->timer);
    if (ws->step)
        event_del(ws->step);
}

static void destroy(wg_ws_t *ws)
{
    release_net(ws);
    if (ws->timer)
        event_free(ws->timer);
    if (ws->step)
        event_free(ws->step);
    if (ws->own_ssl_ctx)
        SSL_CTX_free(ws->ssl_ctx);
    for (size_t i = 0; i < ws->nheaders; i++) {
        free((char *)ws->headers[i].name);
        free((char *)ws->headers[i].value);
    }
    free(ws->headers);
    free(ws->host);
    free(ws->dial_host);
    free(ws->path);
    free(ws->origin);
    free(ws);
}

static void enter(wg_ws_t *ws)
{
    ws->depth++;
}

/* Returns 1 if ws was destroyed (caller must not touch it). */
static int leave(wg_ws_t *ws)
{
    if (--ws->depth == 0 && ws->free_pending) {
        destroy(ws);
        return 1;
    }
    return 0;
}

static int alive(const wg_ws_t *ws)
{
    return !ws->free_pending && ws->st != ST_DONE;
}

void wg_ws_free(wg_ws_t *ws)
{
    if (!ws)
        return;
    if (ws->depth > 0) {
        ws->free_pending = 1;
        return;
    }
    destroy(ws);
}

/* The one terminal report: on_error when err != 0, else on_close(code, msg). */
static void finish(wg_ws_t *ws, int err, int code, const char *msg)
{
    if (ws->st == ST_DONE)
        return;
    set_state(ws, ST_DONE);
    release_net(ws);
    if (ws->free_pending)
        return;
    if (err) {
        wg_log(WG_LOG_INFO, "ws", "host=%s error=%s msg=\"%s\"", ws->host, wg_strerror(err), msg);
        if (ws->cbs.on_error)
            ws->cbs.on_error(ws, err, msg, ws->user);
    } else {
        wg_log(WG_LOG_DEBUG, "ws", "host=%s closed code=%d reason=\"%s\"", ws->host, code, msg);
        if (ws->cbs.on_close)
            ws->cbs.on_close(ws, code, msg, ws->user);
    }
}

__attribute__((format(printf, 3, 4))) static void fail(wg_ws_t *ws, int err, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    finish(ws, err, 0, msg);
}

/* Finish after our last frames left (close reply, close 1002/1009), or after DRAIN_TIMEOUT. */
static void drain_then_finish(wg_ws_t *ws, int err, int code, const char *msg)
{
    ws->pend_err = err;
    ws->pend_code = code;
    snprintf(ws->pend_msg, sizeof(ws->pend_msg), "%s", msg);
    set_state(ws, ST_DRAINING);
    if (!ws->bev || evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0) {
        finish(ws, err, code, ws->pend_msg);
        return;
    }
    bufferevent_disable(ws->bev, EV_READ);
    arm_timer(ws, DRAIN_TIMEOUT_MS);
}

/* ---------- URL ---------- */

int wg_ws_url_parse(const char *url, int *tls, char **host, uint16_t *port, char **path)
{
    const char *p, *hs, *he, *pe;
    unsigned long prt;
    int rv = WG_EINVAL;

    *host = *path = NULL;
    if (!url)
        return WG_EINVAL;
    if (strncasecmp(url, "wss://", 6) == 0) {
        *tls = 1;
        p = url + 6;
    } else if (strncasecmp(url, "ws://", 5) == 0) {
        *tls = 0;
        p = url + 5;
    } else
        return WG_EINVAL;
    for (pe = p; *pe && *pe != '/' && *pe != '?' && *pe != '#'; pe++)
        if (*pe == '@' || (unsigned char)*pe <= 0x20)
            return WG_EINVAL;
    if (*p == '[') {
        hs = p + 1;
        if ((he = memchr(hs, ']', (size_t)(pe - hs))) == NULL)
            return WG_EINVAL;
        p = he + 1;
    } else {
        hs = p;
        for (he = hs; he < pe && *he != ':'; he++)
            ;
        p = he;
    }
    if (he == hs || he - hs > 255)
        return WG_EINVAL;
    if (p < pe) {
        char *end;
        if (*p != ':' || p + 1 == pe)
            return WG_EINVAL;
        errno = 0;
        prt = strtoul(p + 1, &end, 10);
        if (end != pe || prt == 0 || prt > 65535 || errno)
            return WG_EINVAL;
    } else
        prt = *tls ? 443 : 80;
    if (*pe == '#')
        return WG_EINVAL;
    for (const char *c = pe; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '#')
            return WG_EINVAL;
    rv = WG_ENOMEM;
    if ((*host = strndup(hs, (size_t)(he - hs))) == NULL)
        goto out;
    if (*pe == '?')
        rv = asprintf(path, "/%s", pe) < 0 ? WG_ENOMEM : 0;
    else
        rv = (*path = strdup(*pe ? pe : "/")) ? 0 : WG_ENOMEM;
    if (rv != 0)
        *path = NULL;
    *port = (uint16_t)prt;
out:
    if (rv != 0) {
        free(*host);
        *host = NULL;
    }
    return rv;
}

/* ---------- TLS ---------- */

SSL_CTX *wg_ws_ssl_ctx_new(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* DESIGN.md: released buffers roughly halve the memory of an idle TLS link. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int is_ip_literal(const char *h)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), strchr(h, ':') ? "[%s]:1" : "%s:1", h);
    return evutil_parse_sockaddr_port(tmp, (struct sockaddr *)&ss, &len) == 0;
}

static void start_tls(wg_ws_t *ws)
{
    evutil_socket_t fd = bufferevent_getfd(ws->bev);
    struct bufferevent *tb;
    SSL *ssl;

    if (evbuffer_get_length(bufferevent_get_input(ws->bev)) != 0) {
        fail(ws, WG_EPROTO, "proxy: unexpected bytes before TLS");
        return;
    }
    if ((ssl = SSL_new(ws->ssl_ctx)) == NULL) {
        fail(ws, WG_ENOMEM, "tls: SSL_new failed");
        return;
    }
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    if (is_ip_literal(ws->host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ws->host);
    } else {
        SSL_set_tlsext_host_name(ssl, ws->host); /* SNI */
        SSL_set1_host(ssl, ws->host);            /* verify the certificate names this host */
    }
    /* Hand the socket from the plain bufferevent to the TLS one. */
    bufferevent_setfd(ws->bev, -1);
    bufferevent_free(ws->bev);
    ws->bev = NULL;
    tb = bufferevent_openssl_socket_new(ws->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                        BEV_OPT_CLOSE_ON_FREE);
    if (!tb) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        fail(ws, WG_ENOMEM, "tls: bufferevent_openssl_socket_new failed");
        return;
    }
    /* A peer that drops TCP without close_notify is just EOF for us. */
    bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
    ws->bev = tb;
    bufferevent_setcb(tb, bev_read_cb, bev_write_cb, bev_event_cb, ws);
    bufferevent_enable(tb, EV_READ | EV_WRITE);
    set_state(ws, ST_TLS);
}

static void tls_fail(wg_ws_t *ws)
{
    SSL *ssl = bufferevent_openssl_get_ssl(ws->bev);
    unsigned long e = bufferevent_get_openssl_error(ws->bev);
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    int sockerr = EVUTIL_SOCKET_ERROR();

    if (vr != X509_V_OK) {
        fail(ws, WG_ECRYPTO, "tls: certificate verify failed: %s",
             X509_verify_cert_error_string(vr));
    } else if (e) {
        char b[160];
        ERR_error_string_n(e, b, sizeof(b));
        fail(ws, WG_EIO, "tls: handshake failed: %s", b);
    } else {
        fail(ws, WG_EIO, "tls: handshake failed: %s",
             sockerr ? evutil_socket_error_to_string(sockerr) : "connection closed");
    }
}

/* ---------- upgrade ---------- */

static void send_upgrade(wg_ws_t *ws)
{
    uint8_t nonce[16];
    char hosthdr[300];
    wg_ws_handshake_req_t req;
    wg_buf_t b;
    int v6 = strchr(ws->host, ':') != NULL, rv;
    int dflt = ws->port == (ws->tls ? 443 : 80);

    if (wg_random_bytes(nonce, sizeof(nonce)) != 0) {
        fail(ws, WG_EIO, "random bytes failed");
        return;
    }
    wg_ws_handshake_key(nonce, ws->key);
    if (dflt)
        snprintf(hosthdr, sizeof(hosthdr), v6 ? "[%s]" : "%s", ws->host);
    else
        snprintf(hosthdr, sizeof(hosthdr), v6 ? "[%s]:%u" : "%s:%u", ws->host, ws->port);
    memset(&req, 0, sizeof(req));
    req.host = hosthdr;
    req.path = ws->path;
    req.origin = ws->origin;
    req.key = ws->key;
    req.extra = ws->headers;
    req.nextra = ws->nheaders;
    wg_buf_init(&b, 0);
    if ((rv = wg_ws_handshake_request(&b, &req)) == 0 &&
        bufferevent_write(ws->bev, b.data, b.len) != 0)
        rv = WG_ENOMEM;
    wg_buf_dispose(&b);
    if (rv != 0) {
        fail(ws, rv, "cannot build upgrade request");
        return;
    }
    set_state(ws, ST_UPGRADE);
}

/* After TCP (and proxy): TLS or straight to the upgrade. */
static void tunnel_ready(wg_ws_t *ws)
{
    if (ws->tls)
        start_tls(ws);
    else
        send_upgrade(ws);
}

/* ---------- link callbacks ---------- */

static void link_message_cb(void *owner, int is_text, const uint8_t *data, size_t len)
{
    wg_ws_t *ws = owner;
    if (!alive(ws) || (ws->st != ST_OPEN && ws->st != ST_CLOSING))
        return;
    if (is_text) {
        wg_log(WG_LOG_DEBUG, "ws", "host=%s dropped text message len=%zu", ws->host, len);
        return;
    }
    if (ws->cbs.on_message)
        ws->cbs.on_message(ws, data, len, ws->user);
}

static void link_pong_cb(void *owner, const uint8_t *data, size_t len)
{
    wg_ws_t *ws = owner;
    if (alive(ws) && ws->cbs.on_pong)
        ws->cbs.on_pong(ws, data, len, ws->user);
}

/* After reading or writing while open/closing: is the close handshake complete? */
static void check_closed(wg_ws_t *ws)
{
    const char *reason;
    uint16_t code;

    if (!alive(ws) || !ws->link || !wg_ws_link_close_received(ws->link))
        return;
    code = wg_ws_link_peer_close(ws->link, &reason);
    if (ws->st == ST_OPEN || ws->st == ST_CLOSING) {
        /* wslay queued the echo of the peer's close (RFC 6455 5.5.1); send it, then report. */
        wg_ws_link_flush(ws->link);
        drain_then_finish(ws, 0, code, reason);
    }
}

static void process_frames(wg_ws_t *ws)
{
    int rv = wg_ws_link_recv(ws->link);
    if (!alive(ws))
        return;
    if (rv == WG_ETOOBIG)
        drain_then_finish(ws, rv, 0, "message larger than the limit");
    else if (rv != 0)
        drain_then_finish(ws, rv, 0, "WebSocket protocol error from server");
    else
        check_closed(ws);
}

static void read_upgrade(wg_ws_t *ws)
{
    struct evbuffer *in = bufferevent_get_input(ws->bev);
    size_t n = evbuffer_get_length(in), consumed = 0;
    const char *why = NULL;
    int status = 0, rv;
    wg_ws_link_cbs_t lcb = {link_message_cb, link_pong_cb};
    uint8_t *p;

    if (n > WG_WS_MAX_HEAD + 1)
        n = WG_WS_MAX_HEAD + 1;
    p = evbuffer_pullup(in, (ssize_t)n);
    rv = wg_ws_handshake_parse_response(p, n, ws->key, &consumed, &status, &why);
    if (rv == WG_EAGAIN)
        return;
    if (rv != 0) {
        if (status)
            fail(ws, rv, "upgrade refused: HTTP %d (%s)", status, why ? why : "?");
        else
            fail(ws, rv, "upgrade failed: %s", why ? why : wg_strerror(rv));
        return;
    }
    evbuffer_drain(in, consumed);
    rv = wg_ws_link_new(&ws->link, 1, in, bufferevent_get_output(ws->bev), ws->max_msg,
                        OUT_HIGH_WATER, &lcb, ws);
    if (rv != 0) {
        fail(ws, rv, "out of memory");
        return;
    }
    evtimer_del(ws->timer);
    set_state(ws, ST_OPEN);
    wg_log(WG_LOG_DEBUG, "ws", "host=%s open", ws->host);
    if (ws->cbs.on_open)
        ws->cbs.on_open(ws, ws->user);
    if (alive(ws) && ws->link && evbuffer_get_length(in) > 0)
        process_frames(ws);
}

static void read_proxy(wg_ws_t *ws)
{
    struct evbuffer *in = bufferevent_get_input(ws->bev);
    size_t n = evbuffer_get_length(in), consumed = 0;
    wg_buf_t out;
    int rv;

    wg_buf_init(&out, 0);
    rv = wg_proxy_feed(ws->proxy, evbuffer_pullup(in, (ssize_t)n), n, &consumed, &out);
    evbuffer_drain(in, consumed);
    if (out.len && bufferevent_write(ws->bev, out.data, out.len) != 0 && rv >= 0)
        rv = WG_ENOMEM;
    wg_buf_dispose(&out);
    if (rv == WG_EAGAIN)
        return;
    if (rv != 0) {
        fail(ws, rv, "%s", wg_proxy_error(ws->proxy));
        return;
    }
    wg_proxy_free(ws->proxy);
    ws->proxy = NULL;
    wg_log(WG_LOG_DEBUG, "ws", "host=%s proxy tunnel open", ws->host);
    tunnel_ready(ws);
}

/* ---------- bufferevent callbacks ---------- */

/* An idle TLS link keeps no record buffers (issue 8: ~17 KiB each). SSL_MODE_RELEASE_BUFFERS
 * alone does not do it: libevent reads until SSL_read wants more, and that last read leaves the
 * read buffer allocated. libevent calls the read callback after that read, so the buffers are
 * freed here; SSL_free_buffers leaves them alone while they hold pending data. */
static void tls_release_buffers(wg_ws_t *ws)
{
    SSL *ssl;
    if (ws->tls && ws->bev && (ssl = bufferevent_openssl_get_ssl(ws->bev)) != NULL)
        SSL_free_buffers(ssl);
}

static void bev_read_cb(struct bufferevent *bev, void *arg)
{
    wg_ws_t *ws = arg;
    enter(ws);
    switch (ws->st) {
    case ST_PROXY:
        read_proxy(ws);
        break;
    case ST_UPGRADE:
        read_upgrade(ws);
        break;
    case ST_OPEN:
    case ST_CLOSING:
        process_frames(ws);
        break;
    default:
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        break;
    }
    tls_release_buffers(ws);
    leave(ws);
}

static void bev_write_cb(struct bufferevent *bev, void *arg)
{
    wg_ws_t *ws = arg;
    (void)bev;
    enter(ws);
    if ((ws->st == ST_OPEN || ws->st == ST_CLOSING) && ws->link) {
        /* output drained below the watermark: let wslay queue more */
        if (wg_ws_link_flush(ws->link) != 0)
            fail(ws, WG_ENOMEM, "out of memory");
    } else if (ws->st == ST_DRAINING && evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0) {
        finish(ws, ws->pend_err, ws->pend_code, ws->pend_msg);
    }
    leave(ws);
}

static void connect_failed(wg_ws_t *ws, int sockerr)
{
    char a[128] = "?";
    if (ws->cur_addr)
        evutil_inet_ntop(ws->cur_addr->ai_family,
                         ws->cur_addr->ai_family == AF_INET6
                             ? (void *)&((struct sockaddr_in6 *)ws->cur_addr->ai_addr)->sin6_addr
                             : (void *)&((struct sockaddr_in *)ws->cur_addr->ai_addr)->sin_addr,
                         a, sizeof(a));
    snprintf(ws->last_err, sizeof(ws->last_err), "connect to %s port %u: %s", a, ws->dial_port,
             sockerr ? evutil_socket_error_to_string(sockerr) : "failed");
    if (ws->bev) {
        bufferevent_free(ws->bev);
        ws->bev = NULL;
    }
    if (ws->cur_addr)
        ws->cur_addr = ws->cur_addr->ai_next;
    try_connect(ws);
}

static void on_connected(wg_ws_t *ws)
{
    wg_buf_t out;
    int rv;

    evutil_freeaddrinfo(ws->addrs);
    ws->addrs = ws->cur_addr = NULL;
    /* No Nagle: the session writes small frames in bursts and then waits for an answer (a
     * chatstate, then the usync <iq> of a send); with Nagle the second frame waits for the
     * peer's delayed ACK of the first, ~40 ms on Linux, on every send. Best effort. */
    int one = 1;
    (void)setsockopt(bufferevent_getfd(ws->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!ws->proxy) {
        tunnel_ready(ws);
        return;
    }
    wg_buf_init(&out, 0);
    if ((rv = wg_proxy_start(ws->proxy, &out)) == 0 &&
        bufferevent_write(ws->bev, out.data, out.len) != 0)
        rv = WG_ENOMEM;
    wg_buf_dispose(&out);
    if (rv != 0) {
        fail(ws, rv, "proxy: cannot build request");
        return;
    }
    set_state(ws, ST_PROXY);
}

static void bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
    wg_ws_t *ws = arg;
    int sockerr = EVUTIL_SOCKET_ERROR();
    (void)bev;

    enter(ws);
    if (ws->st == ST_CONNECTING) {
        event_del(ws->step); /* the per-address timer */
        if (what & BEV_EVENT_CONNECTED)
            on_connected(ws);
        else
            connect_failed(ws, sockerr);
    } else if (ws->st == ST_TLS) {
        if (what & BEV_EVENT_CONNECTED)
            send_upgrade(ws);
        else
            tls_fail(ws);
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        const char *why = (what & BEV_EVENT_EOF) ? "connection closed by peer"
                                                 : evutil_socket_error_to_string(sockerr);
        switch (ws->st) {
        case ST_OPEN:
            /* pending input first: a close frame may be sitting in it */
            if (ws->link && evbuffer_get_length(bufferevent_get_input(ws->bev)))
                process_frames(ws);
            if (alive(ws) && ws->st == ST_OPEN)
                fail(ws, WG_ECLOSED, "%s without a close frame", why);
            else if (alive(ws))
                finish(ws, ws->pend_err, ws->pend_code, ws->pend_msg);
            break;
        case ST_CLOSING: {
            const char *reason = "";
            int code = WG_WS_CLOSE_ABNORMAL;
            if (ws->link && evbuffer_get_length(bufferevent_get_input(ws->bev)))
                wg_ws_link_recv(ws->link);
            if (ws->link && wg_ws_link_close_received(ws->link))
                code = wg_ws_link_peer_close(ws->link, &reason);
            finish(ws, 0, code, reason);
            break;
        }
        case ST_DRAINING:
            finish(ws, ws->pend_err, ws->pend_code, ws->pend_msg);
            break;
        case ST_PROXY:
            fail(ws, WG_EPROTO, "proxy: %s during handshake", why);
            break;
        case ST_UPGRADE:
            fail(ws, WG_EPROTO, "upgrade: %s before the 101 answer", why);
            break;
        default:
            break;
        }
    }
    leave(ws);
}

/* ---------- connect ---------- */

static void try_connect(wg_ws_t *ws)
{
    while (ws->cur_addr) {
        struct evutil_addrinfo *a = ws->cur_addr;
        ws->bev = bufferevent_socket_new(ws->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!ws->bev) {
            fail(ws, WG_ENOMEM, "bufferevent_socket_new failed");
            return;
        }
        bufferevent_setcb(ws->bev, bev_read_cb, bev_write_cb, bev_event_cb, ws);
        bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
        set_state(ws, ST_CONNECTING);
        if (bufferevent_socket_connect(ws->bev, a->ai_addr, (int)a->ai_addrlen) == 0) {
            /* outcome arrives in bev_event_cb; with more addresses to try, do not let one
             * black-holed address (say a broken IPv6 route) eat the whole connect timeout */
            if (a->ai_next) {
                unsigned ms = ws->timeout_ms / 4;
                struct timeval tv;
                ms = ms < 250 ? 250 : ms > 5000 ? 5000 : ms;
                tv.tv_sec = ms / 1000;
                tv.tv_usec = (ms % 1000) * 1000;
                event_add(ws->step, &tv);
            }
            return;
        }
        snprintf(ws->last_err, sizeof(ws->last_err), "connect: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        bufferevent_free(ws->bev);
        ws->bev = NULL;
        ws->cur_addr = a->ai_next;
    }
    fail(ws, WG_EIO, "%s", ws->last_err[0] ? ws->last_err : "no address to connect to");
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    wg_ws_t *ws = arg;
    if (result == EVUTIL_EAI_CANCEL) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    /* Never do real work inside evdns: store the answer and continue from our own event. */
    ws->dns_req = NULL;
    ws->dns_result = result;
    ws->addrs = res;
    event_active(ws->step, EV_TIMEOUT, 0);
}

static void resolve(wg_ws_t *ws)
{
    struct evutil_addrinfo hints;
    char portstr[8];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(portstr, sizeof(portstr), "%u", ws->dial_port);
    set_state(ws, ST_RESOLVING);
    if (is_ip_literal(ws->dial_host)) {
        hints.ai_flags = EVUTIL_AI_NUMERICHOST;
        ws->dns_result = evutil_getaddrinfo(ws->dial_host, portstr, &hints, &ws->addrs);
        event_active(ws->step, EV_TIMEOUT, 0);
        return;
    }
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    ws->dns_req = evdns_getaddrinfo(ws->dns, ws->dial_host, portstr, &hints, dns_cb, ws);
}

static void step_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_ws_t *ws = arg;
    (void)fd;
    (void)what;
    enter(ws);
    if (!alive(ws))
        ;
    else if (ws->st == ST_START)
        resolve(ws);
    else if (ws->st == ST_CONNECTING)
        connect_failed(ws, ETIMEDOUT); /* this address did not answer in time: next one */
    else if (ws->st == ST_RESOLVING) {
        if (ws->dns_result != 0 || !ws->addrs)
            fail(ws, WG_ENOTFOUND, "dns: cannot resolve %s: %s", ws->dial_host,
                 evutil_gai_strerror(ws->dns_result));
        else {
            ws->cur_addr = ws->addrs;
            try_connect(ws);
        }
    }
    leave(ws);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_ws_t *ws = arg;
    (void)fd;
    (void)what;
    enter(ws);
    if (ws->st == ST_CLOSING)
        fail(ws, WG_ETIMEDOUT, "close handshake timed out");
    else if (ws->st == ST_DRAINING)
        finish(ws, ws->pend_err, ws->pend_code, ws->pend_msg);
    else if (ws->st < ST_OPEN)
        fail(ws, WG_ETIMEDOUT, "connect timed out after %u ms (%s)", ws->timeout_ms,
             state_names[ws->st]);
    leave(ws);
}

/* ---------- public ---------- */

int wg_ws_new(wg_ws_t **out, struct event_base *base, const wg_ws_opts_t *opts,
              const wg_ws_cbs_t *cbs, void *user)
{
    wg_ws_t *ws;
    int rv;

    *out = NULL;
    if (!base || !opts || !cbs)
        return WG_EINVAL;
    if ((ws = calloc(1, sizeof(*ws))) == NULL)
        return WG_ENOMEM;
    ws->base = base;
    ws->cbs = *cbs;
    ws->user = user;
    if ((rv = wg_ws_url_parse(opts->url, &ws->tls, &ws->host, &ws->port, &ws->path)) != 0)
        goto out;
    rv = WG_EINVAL;
    if (opts->origin && (strchr(opts->origin, '\r') || strchr(opts->origin, '\n')))
        goto out;
    rv = WG_ENOMEM;
    if (opts->origin && (ws->origin = strdup(opts->origin)) == NULL)
        goto out;
    if (opts->nheaders) {
        if ((ws->headers = calloc(opts->nheaders, sizeof(*ws->headers))) == NULL)
            goto out;
        for (size_t i = 0; i < opts->nheaders; i++, ws->nheaders++) {
            if (!opts->headers[i].name || !opts->headers[i].value) {
                rv = WG_EINVAL;
                goto out;
            }
            if ((ws->headers[i].name = strdup(opts->headers[i].name)) == NULL ||
                (ws->headers[i].value = strdup(opts->headers[i].value)) == NULL) {
                ws->nheaders++;
                goto out;
            }
        }
    }
    ws->timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : WG_WS_DEFAULT_TIMEOUT_MS;
    ws->max_msg = opts->max_message ? opts->max_message : WG_WS_DEFAULT_MAX_MSG;
    ws->dns = opts->dns;
    if (opts->proxy.type != WG_PROXY_NONE) {
        const char *target = opts->connect_to ? opts->connect_to : ws->host;
        if (!opts->proxy.host || !*opts->proxy.host || opts->proxy.port == 0) {
            rv = WG_EINVAL;
            goto out;
        }
        if ((rv = wg_proxy_new(&ws->proxy, &opts->proxy, target, ws->port)) != 0)
            goto out;
        rv = WG_ENOMEM;
        ws->dial_host = strdup(opts->proxy.host);
        ws->dial_port = opts->proxy.port;
    } else {
        ws->dial_host = strdup(opts->connect_to ? opts->connect_to : ws->host);
        ws->dial_port = ws->port;
    }
    if (!ws->dial_host)
        goto out;
    if (!ws->dns && !is_ip_literal(ws->dial_host)) {
        rv = WG_EINVAL; /* a name needs the loop's resolver */
        goto out;
    }
    if (ws->tls) {
        if (opts->ssl_ctx)
            ws->ssl_ctx = opts->ssl_ctx;
        else if ((ws->ssl_ctx = wg_ws_ssl_ctx_new(opts->ca_file)) != NULL)
            ws->own_ssl_ctx = 1;
        else {
            rv = opts->ca_file ? WG_EINVAL : WG_EIO;
            goto out;
        }
    }
    if ((ws->timer = evtimer_new(base, timer_cb, ws)) == NULL ||
        (ws->step = event_new(base, -1, 0, step_cb, ws)) == NULL)
        goto out;
    /* Start from the loop so that no callback ever runs inside wg_ws_new(). */
    arm_timer(ws, ws->timeout_ms);
    event_active(ws->step, EV_TIMEOUT, 0);
    *out = ws;
    ws = NULL;
    rv = 0;
out:
    if (ws)
        destroy(ws);
    return rv;
}

int wg_ws_send_binary(wg_ws_t *ws, const uint8_t *data, size_t len)
{
    if (ws->st < ST_OPEN)
        return WG_EINVAL;
    if (ws->st != ST_OPEN || ws->free_pending)
        return WG_ECLOSED;
    return wg_ws_link_send(ws->link, 0, data, len);
}

int wg_ws_ping(wg_ws_t *ws, const uint8_t *data, size_t len)
{
    if (ws->st < ST_OPEN)
        return WG_EINVAL;
    if (ws->st != ST_OPEN || ws->free_pending)
        return WG_ECLOSED;
    return wg_ws_link_ping(ws->link, data, len);
}

int wg_ws_close(wg_ws_t *ws, uint16_t code, const char *reason)
{
    int rv;
    if (ws->st < ST_OPEN)
        return WG_EINVAL;
    if (ws->st != ST_OPEN || ws->free_pending)
        return WG_ECLOSED;
    if ((rv = wg_ws_link_close(ws->link, code ? code : WG_WS_CLOSE_NORMAL, reason)) != 0)
        return rv;
    set_state(ws, ST_CLOSING);
    arm_timer(ws, CLOSE_TIMEOUT_MS);
    return 0;
}

int wg_ws_is_open(const wg_ws_t *ws)
{
    return ws->st == ST_OPEN && !ws->free_pending;
}

size_t wg_ws_pending_output(const wg_ws_t *ws)
{
    return ws->bev ? evbuffer_get_length(bufferevent_get_output(ws->bev)) : 0;
}
