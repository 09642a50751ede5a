/* wsserver.c - WebSocket server on an evconnlistener (see wsserver.h).
 *
 * Connection states, changed only through set_state():
 *   UPGRADE (TLS handshake, then reading the request) -> OPEN -> CLOSING (we sent close)
 *   -> DONE;  OPEN -> DRAINING (client closed or failed; flushing our last frames) -> DONE;
 *   UPGRADE -> REFUSING (writing the refusal) -> DONE.
 * Entries from libevent go through enter()/leave(); a free requested inside a callback (ours or
 * the user's) is carried out by leave(). */
#include "sandbox/wsserver.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "wa/ws_link.h"

#define DEFAULT_MAX_MSG ((size_t)1 << 24)
#define DEFAULT_HS_TIMEOUT_MS 10000
#define CLOSE_TIMEOUT_MS 5000
#define DRAIN_TIMEOUT_MS 1000
#define OUT_HIGH_WATER (1024 * 1024)

typedef enum { CS_UPGRADE, CS_REFUSING, CS_OPEN, CS_CLOSING, CS_DRAINING, CS_DONE } cstate_t;

static const char *cstate_names[] = {"upgrade", "refusing", "open", "closing", "draining", "done"};

struct wg_wsserver_conn_s {
    wg_wsserver_t *srv;
    wg_wsserver_conn_t *prev, *next;
    struct bufferevent *bev;
    wg_ws_link_t *link;
    struct event *timer;
    cstate_t st;
    int depth;
    int free_pending;
    int accepted; /* on_open said yes: on_close is owed */
    void *data;
    uint16_t pend_code;
    char pend_reason[96];
    char peer[64];
};

struct wg_wsserver_s {
    struct event_base *base;
    struct evconnlistener *lev;
    SSL_CTX *ssl_ctx;
    wg_wsserver_cbs_t cbs;
    void *user;
    size_t max_msg;
    unsigned hs_timeout_ms;
    uint16_t port;
    size_t nopen;
    wg_wsserver_conn_t *conns;
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static void set_state(wg_wsserver_conn_t *c, cstate_t st)
{
    wg_log(WG_LOG_DEBUG, "wsserver", "peer=%s state=%s->%s", c->peer, cstate_names[c->st],
           cstate_names[st]);
    c->st = st;
}

static void arm(wg_wsserver_conn_t *c, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void conn_destroy(wg_wsserver_conn_t *c)
{
    wg_wsserver_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    wg_ws_link_free(c->link);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->timer)
        event_free(c->timer);
    free(c);
}

static void enter(wg_wsserver_conn_t *c)
{
    c->depth++;
}

static void leave(wg_wsserver_conn_t *c)
{
    if (--c->depth == 0 && c->free_pending)
        conn_destroy(c);
}

/* Terminal: release the socket, owe-d on_close, then free (now or when the stack unwinds). */
static void conn_finish(wg_wsserver_conn_t *c, int code, const char *reason)
{
    wg_wsserver_t *s = c->srv;
    if (c->st == CS_DONE)
        return;
    set_state(c, CS_DONE);
    wg_ws_link_free(c->link);
    c->link = NULL;
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    evtimer_del(c->timer);
    if (c->accepted) {
        c->accepted = 0;
        s->nopen--;
        if (!c->free_pending && s->cbs.on_close)
            s->cbs.on_close(c, code, reason, s->user);
    }
    if (c->depth > 0)
        c->free_pending = 1;
    else
        conn_destroy(c);
}

static void drain_then_finish(wg_wsserver_conn_t *c, uint16_t code, const char *reason)
{
    c->pend_code = code;
    snprintf(c->pend_reason, sizeof(c->pend_reason), "%s", reason);
    set_state(c, CS_DRAINING);
    if (!c->bev || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_finish(c, code, c->pend_reason);
        return;
    }
    bufferevent_disable(c->bev, EV_READ);
    arm(c, DRAIN_TIMEOUT_MS);
}

static void link_message_cb(void *owner, int is_text, const uint8_t *data, size_t len)
{
    wg_wsserver_conn_t *c = owner;
    if (c->free_pending || (c->st != CS_OPEN && c->st != CS_CLOSING))
        return;
    if (c->srv->cbs.on_message)
        c->srv->cbs.on_message(c, is_text, data, len, c->srv->user);
}

static void process_frames(wg_wsserver_conn_t *c)
{
    int rv = wg_ws_link_recv(c->link);
    const char *reason;
    uint16_t code;

    if (c->free_pending || c->st == CS_DONE)
        return;
    if (rv == WG_ETOOBIG)
        drain_then_finish(c, WG_WS_CLOSE_TOO_BIG, "message too big");
    else if (rv != 0)
        drain_then_finish(c, WG_WS_CLOSE_PROTOCOL, "protocol error");
    else if (c->link && wg_ws_link_close_received(c->link) &&
             (c->st == CS_OPEN || c->st == CS_CLOSING)) {
        code = wg_ws_link_peer_close(c->link, &reason);
        wg_ws_link_flush(c->link);
        drain_then_finish(c, code, reason);
    }
}

static void refuse(wg_wsserver_conn_t *c, int status)
{
    wg_buf_t b;
    wg_buf_init(&b, 0);
    if (wg_ws_handshake_reject(&b, status) != 0 && wg_ws_handshake_reject(&b, 400) != 0) {
        wg_buf_dispose(&b);
        conn_finish(c, WG_WS_CLOSE_ABNORMAL, "refused");
        return;
    }
    bufferevent_write(c->bev, b.data, b.len);
    wg_buf_dispose(&b);
    bufferevent_disable(c->bev, EV_READ);
    set_state(c, CS_REFUSING);
    arm(c, DRAIN_TIMEOUT_MS);
}

static void read_upgrade(wg_wsserver_conn_t *c)
{
    wg_wsserver_t *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in), consumed = 0;
    wg_ws_handshake_head_t req;
    wg_ws_link_cbs_t lcb = {link_message_cb, NULL};
    const char *key = NULL, *why = NULL;
    wg_buf_t b;
    int rv, status;

    if (n > WG_WS_MAX_HEAD + 1)
        n = WG_WS_MAX_HEAD + 1;
    rv = wg_ws_handshake_parse_request(evbuffer_pullup(in, (ssize_t)n), n, &req, &key, &consumed,
                                       &why);
    if (rv == WG_EAGAIN)
        return;
    if (rv != 0) {
        wg_log(WG_LOG_INFO, "wsserver", "peer=%s bad upgrade: %s", c->peer,
               why ? why : wg_strerror(rv));
        refuse(c, 400);
        return;
    }
    evbuffer_drain(in, consumed);
    status = s->cbs.on_open ? s->cbs.on_open(c, &req, s->user) : 0;
    if (status == 0 && !c->free_pending) {
        c->accepted = 1; /* from here on, on_close is owed */
        s->nopen++;
    }
    wg_buf_init(&b, 0);
    rv = status == 0 && !c->free_pending ? wg_ws_handshake_response(&b, key) : 0;
    wg_ws_handshake_head_dispose(&req);
    if (c->free_pending) {
        wg_buf_dispose(&b);
        return;
    }
    if (status != 0) {
        wg_buf_dispose(&b);
        refuse(c, status >= 400 && status <= 599 ? status : 403);
        return;
    }
    if (rv != 0 || bufferevent_write(c->bev, b.data, b.len) != 0 ||
        wg_ws_link_new(&c->link, 0, in, bufferevent_get_output(c->bev), s->max_msg, OUT_HIGH_WATER,
                       &lcb, c) != 0) {
        wg_buf_dispose(&b);
        conn_finish(c, WG_WS_CLOSE_ABNORMAL, "out of memory");
        return;
    }
    wg_buf_dispose(&b);
    evtimer_del(c->timer);
    set_state(c, CS_OPEN);
    if (evbuffer_get_length(in) > 0)
        process_frames(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    wg_wsserver_conn_t *c = arg;
    enter(c);
    if (c->st == CS_UPGRADE)
        read_upgrade(c);
    else if (c->st == CS_OPEN || c->st == CS_CLOSING)
        process_frames(c);
    else
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
    leave(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    wg_wsserver_conn_t *c = arg;
    int empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;
    enter(c);
    if ((c->st == CS_OPEN || c->st == CS_CLOSING) && c->link) {
        if (wg_ws_link_flush(c->link) != 0)
            conn_finish(c, WG_WS_CLOSE_ABNORMAL, "out of memory");
    } else if (c->st == CS_DRAINING && empty)
        conn_finish(c, c->pend_code, c->pend_reason);
    else if (c->st == CS_REFUSING && empty)
        conn_finish(c, WG_WS_CLOSE_ABNORMAL, "refused");
    leave(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    wg_wsserver_conn_t *c = arg;
    (void)bev;
    enter(c);
    if (what & BEV_EVENT_CONNECTED)
        ; /* TLS handshake done; the request follows */
    else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if ((c->st == CS_OPEN || c->st == CS_CLOSING) && c->link &&
            evbuffer_get_length(bufferevent_get_input(c->bev)))
            process_frames(c);
        if (c->st == CS_DRAINING)
            conn_finish(c, c->pend_code, c->pend_reason);
        else if (c->st == CS_CLOSING && c->link && wg_ws_link_close_received(c->link)) {
            const char *reason;
            uint16_t code = wg_ws_link_peer_close(c->link, &reason);
            conn_finish(c, code, reason);
        } else
            conn_finish(c, WG_WS_CLOSE_ABNORMAL, "connection lost");
    }
    leave(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_wsserver_conn_t *c = arg;
    (void)fd;
    (void)what;
    enter(c);
    switch (c->st) {
    case CS_UPGRADE:
        conn_finish(c, WG_WS_CLOSE_ABNORMAL, "handshake timeout");
        break;
    case CS_CLOSING:
        conn_finish(c, WG_WS_CLOSE_ABNORMAL, "close handshake timeout");
        break;
    case CS_DRAINING:
        conn_finish(c, c->pend_code, c->pend_reason);
        break;
    case CS_REFUSING:
        conn_finish(c, WG_WS_CLOSE_ABNORMAL, "refused");
        break;
    default:
        break;
    }
    leave(c);
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    wg_wsserver_t *s = arg;
    wg_wsserver_conn_t *c;
    char ip[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    (void)lev;
    (void)salen;

    if ((c = calloc(1, sizeof(*c))) == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    if (sa->sa_family == AF_INET) {
        evutil_inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        evutil_inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in6 *)sa)->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, port);
    if (s->ssl_ctx) {
        SSL *ssl = SSL_new(s->ssl_ctx);
        if (ssl) {
            SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
            c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
            if (!c->bev)
                SSL_free(ssl);
            else
                bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        }
    } else
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev || (c->timer = evtimer_new(s->base, conn_timer_cb, c)) == NULL) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm(c, s->hs_timeout_ms);
}

static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();
    (void)lev;
    (void)arg;
    /* EMFILE and friends: log and keep listening. */
    wg_log(WG_LOG_WARN, "wsserver", "accept failed: %s", evutil_socket_error_to_string(e));
}

SSL_CTX *wg_wsserver_ssl_ctx_new(const char *cert_file, const char *key_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* "ip:port" or "[ipv6]:port", port 0 allowed (evutil_parse_sockaddr_port refuses 0). */
static int parse_listen(const char *a, struct sockaddr_storage *ss, int *len)
{
    char host[64];
    const char *colon = strrchr(a, ':'), *hs = a, *he;
    char *end;
    unsigned long port;

    if (!colon)
        return -1;
    he = colon;
    if (*a == '[') {
        hs = a + 1;
        if (colon == a || colon[-1] != ']')
            return -1;
        he = colon - 1;
    }
    if (he <= hs || (size_t)(he - hs) >= sizeof(host))
        return -1;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = 0;
    port = strtoul(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port > 65535)
        return -1;
    memset(ss, 0, sizeof(*ss));
    if (evutil_inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (evutil_inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return -1;
}

int wg_wsserver_new(wg_wsserver_t **out, struct event_base *base, const wg_wsserver_opts_t *opts,
                    const wg_wsserver_cbs_t *cbs, void *user)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    wg_wsserver_t *s;

    *out = NULL;
    if (!opts->listen || parse_listen(opts->listen, &ss, &sslen) != 0)
        return WG_EINVAL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return WG_ENOMEM;
    s->base = base;
    s->ssl_ctx = opts->ssl_ctx;
    s->cbs = *cbs;
    s->user = user;
    s->max_msg = opts->max_message ? opts->max_message : DEFAULT_MAX_MSG;
    s->hs_timeout_ms =
        opts->handshake_timeout_ms ? opts->handshake_timeout_ms : DEFAULT_HS_TIMEOUT_MS;
    s->lev = evconnlistener_new_bind(
        base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        opts->backlog ? opts->backlog : 1024, (struct sockaddr *)&ss, sslen);
    if (!s->lev) {
        wg_log(WG_LOG_ERROR, "wsserver", "listen %s: %s", opts->listen,
               evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        free(s);
        return WG_EIO;
    }
    evconnlistener_set_error_cb(s->lev, accept_error_cb);
    {
        struct sockaddr_storage bound;
        socklen_t bl = sizeof(bound);
        if (getsockname(evconnlistener_get_fd(s->lev), (struct sockaddr *)&bound, &bl) == 0)
            s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                        : ((struct sockaddr_in *)&bound)->sin_port);
    }
    *out = s;
    return 0;
}

void wg_wsserver_free(wg_wsserver_t *s)
{
    if (!s)
        return;
    evconnlistener_free(s->lev);
    while (s->conns) {
        s->conns->depth = 0;
        conn_destroy(s->conns);
    }
    free(s);
}

uint16_t wg_wsserver_port(const wg_wsserver_t *s)
{
    return s->port;
}

size_t wg_wsserver_count(const wg_wsserver_t *s)
{
    return s->nopen;
}

void wg_wsserver_drop_all(wg_wsserver_t *s)
{
    /* Restart the scan after every finish: an on_close may free other connections. */
    for (;;) {
        wg_wsserver_conn_t *c = s->conns;
        while (c && (c->st == CS_DONE || !c->accepted))
            c = c->next;
        if (!c)
            break;
        enter(c);
        conn_finish(c, WG_WS_CLOSE_ABNORMAL, "dropped");
        leave(c);
    }
}

void wg_wsserver_conn_set_data(wg_wsserver_conn_t *c, void *data)
{
    c->data = data;
}

void *wg_wsserver_conn_data(const wg_wsserver_conn_t *c)
{
    return c->data;
}

const char *wg_wsserver_conn_peer(const wg_wsserver_conn_t *c)
{
    return c->peer;
}

int wg_wsserver_conn_send(wg_wsserver_conn_t *c, int is_text, const uint8_t *data, size_t len)
{
    if (c->st != CS_OPEN || c->free_pending || !c->link)
        return WG_ECLOSED;
    return wg_ws_link_send(c->link, is_text, data, len);
}

int wg_wsserver_conn_ping(wg_wsserver_conn_t *c, const uint8_t *data, size_t len)
{
    if (c->st != CS_OPEN || c->free_pending || !c->link)
        return WG_ECLOSED;
    return wg_ws_link_ping(c->link, data, len);
}

int wg_wsserver_conn_close(wg_wsserver_conn_t *c, uint16_t code, const char *reason)
{
    int rv;
    if (c->st != CS_OPEN || c->free_pending || !c->link)
        return WG_ECLOSED;
    if ((rv = wg_ws_link_close(c->link, code ? code : WG_WS_CLOSE_NORMAL, reason)) != 0)
        return rv;
    set_state(c, CS_CLOSING);
    arm(c, CLOSE_TIMEOUT_MS);
    return 0;
}

void wg_wsserver_conn_free(wg_wsserver_conn_t *c)
{
    if (!c)
        return;
    if (c->accepted) {
        c->accepted = 0;
        c->srv->nopen--;
    }
    if (c->depth > 0) {
        c->free_pending = 1;
        return;
    }
    conn_destroy(c);
}
