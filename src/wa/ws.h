/* ws.h - WebSocket client connection on a libevent loop: the transport under the Noise layer.
 *
 * Stack: DNS (evdns; every address tried in turn, each for at most a quarter of the connect
 * timeout, clamped to 250 ms..5 s, while others remain) -> TCP (bufferevent_socket, non-blocking)
 * -> optional HTTP CONNECT / SOCKS5 tunnel (proxy.c) -> optional TLS (bufferevent_openssl on the
 * same socket; certificate and host name verified; SNI; SSL_MODE_RELEASE_BUFFERS) -> HTTP
 * upgrade (ws_handshake.c, Origin and extra headers) -> RFC 6455 framing (ws_link.c, wslay).
 * One connect timeout covers everything up to on_open. Many connections may share one loop,
 * one SSL_CTX and one evdns_base.
 *
 * Callbacks: on_open once when the upgrade succeeded; on_message per binary message (text
 * messages are logged and dropped: WhatsApp sends binary only); then exactly ONE terminal call:
 * on_close(code, reason) after a close handshake (either side started it), or on_error(WG_E*,
 * text) when the connection failed (DNS, refused, timeout, proxy, TLS, bad upgrade, message too
 * big, connection lost). No callback runs after the terminal one, and none runs from inside
 * wg_ws_new(). The network resources are released right after the terminal callback; the
 * wg_ws_t itself stays until wg_ws_free().
 *
 * Ownership: wg_ws_new() copies every option string. SSL_CTX and evdns_base passed in options
 * are borrowed (must outlive the connection). wg_ws_free(), wg_ws_send_binary(), wg_ws_close()
 * may be called from inside any of this connection's callbacks; a free inside a callback is
 * carried out when the callback returns, and no further callbacks are made. */
#ifndef WG_WA_WS_H
#define WG_WA_WS_H

#include <stddef.h>
#include <stdint.h>

#include "wa/proxy.h"
#include "wa/ws_handshake.h"

struct event_base;
struct evdns_base;
typedef struct ssl_ctx_st SSL_CTX;

#define WG_WS_DEFAULT_TIMEOUT_MS 20000          /* [W] NoiseHandshakeResponseTimeout: 20 s */
#define WG_WS_DEFAULT_MAX_MSG ((size_t)1 << 24) /* WhatsApp frames are < 2^24 (fact sheet 1.4) */
#define WG_WS_ORIGIN_WHATSAPP "https://web.whatsapp.com"

typedef struct wg_ws_s wg_ws_t;

typedef struct {
    void (*on_open)(wg_ws_t *ws, void *user);
    void (*on_message)(wg_ws_t *ws, const uint8_t *data, size_t len, void *user);
    void (*on_close)(wg_ws_t *ws, int code, const char *reason, void *user);
    void (*on_error)(wg_ws_t *ws, int err, const char *msg, void *user);
    void (*on_pong)(wg_ws_t *ws, const uint8_t *data, size_t len, void *user); /* optional */
} wg_ws_cbs_t;

typedef struct {
    const char *url;               /* ws://host[:port]/path or wss://... (required) */
    const char *origin;            /* Origin header, NULL = none (WG_WS_ORIGIN_WHATSAPP) */
    const wg_ws_header_t *headers; /* extra request headers */
    size_t nheaders;
    wg_proxy_opts_t proxy;       /* type WG_PROXY_NONE = direct */
    const char *connect_to;      /* NULL, or a host/IP to connect to instead of the URL's
                                    host; TLS name and Host header stay the URL's (tests) */
    unsigned connect_timeout_ms; /* 0 = WG_WS_DEFAULT_TIMEOUT_MS */
    size_t max_message;          /* 0 = WG_WS_DEFAULT_MAX_MSG */
    SSL_CTX *ssl_ctx;            /* shared client context (wg_ws_ssl_ctx_new); NULL = a private
                                    one made from ca_file */
    const char *ca_file;         /* only when ssl_ctx is NULL: PEM CA file, NULL = system CAs */
    struct evdns_base *dns;      /* the loop's resolver; required unless the host we dial
                                    (proxy, connect_to or URL host) is an IP literal */
} wg_ws_opts_t;

/* Client TLS context for a loop: peer verification on, TLS >= 1.2, SSL_MODE_RELEASE_BUFFERS,
 * CAs from ca_file (PEM) or the system store when NULL. Caller frees with SSL_CTX_free().
 * NULL on failure. */
SSL_CTX *wg_ws_ssl_ctx_new(const char *ca_file);

/* Splits a ws:// or wss:// URL. *host and *path are malloc'd (caller frees); host has no
 * brackets. 0 or WG_EINVAL (other scheme, userinfo, bad port, empty host), WG_ENOMEM. */
int wg_ws_url_parse(const char *url, int *tls, char **host, uint16_t *port, char **path);

/* Starts connecting on `base`. 0 and *out, or WG_EINVAL (bad URL/options/headers, a name to
 * resolve without opts->dns, unreadable ca_file), WG_EIO, WG_ENOMEM;
 * on failure no callback will ever run. */
int wg_ws_new(wg_ws_t **out, struct event_base *base, const wg_ws_opts_t *opts,
              const wg_ws_cbs_t *cbs, void *user);

/* Queue one binary message (copied). 0, WG_EINVAL (not open yet), WG_ECLOSED (closing/closed),
 * WG_ENOMEM. */
int wg_ws_send_binary(wg_ws_t *ws, const uint8_t *data, size_t len);
/* Ping (payload <= 125 bytes); the pong is reported to on_pong. Same returns. */
int wg_ws_ping(wg_ws_t *ws, const uint8_t *data, size_t len);
/* Start the close handshake (code 1000 if 0). on_close follows when the server answers, or
 * on_error(WG_ETIMEDOUT) if it does not within 5 s. WG_EINVAL before on_open (use wg_ws_free
 * to cancel a connect), WG_ECLOSED if already closing. */
int wg_ws_close(wg_ws_t *ws, uint16_t code, const char *reason);
/* 1 between on_open and the terminal callback. */
int wg_ws_is_open(const wg_ws_t *ws);
/* Bytes queued in the socket's output buffer (not yet written to the kernel). */
size_t wg_ws_pending_output(const wg_ws_t *ws);
void wg_ws_free(wg_ws_t *ws);

#endif
