/* wsserver.h - WebSocket server on a libevent loop: the listening side the sandbox (simulated
 * WhatsApp server) and the transport tests build on.
 *
 * An evconnlistener accepts TCP (optionally TLS with the given SSL_CTX), reads the HTTP upgrade
 * request (ws_handshake.c, head <= WG_WS_MAX_HEAD bytes, within handshake_timeout_ms), asks
 * on_open whether to accept it (the request path and headers, e.g. Origin, are in `req`), answers
 * 101 (or the refusal status) and runs RFC 6455 framing with wslay (ws_link.c). Thousands of
 * connections per loop; an idle one holds a bufferevent, a wslay context and a small struct.
 *
 * Callbacks: on_open once per upgrade request (return 0 to accept, or an HTTP status 400..599
 * to refuse; the connection is then closed after the answer and no other callback runs);
 * on_message per data message; on_close exactly once for every accepted connection, after a
 * close handshake (code from the client's close frame) or when the connection ends any other
 * way (1006 plus a reason: "connection lost", "message too big", "dropped", ...). Nothing is
 * called after on_close.
 *
 * Ownership: the server owns its connections. wg_wsserver_conn_free() (drop now, no on_close)
 * and wg_wsserver_conn_close() may be called from inside the connection's callbacks; the free
 * is carried out when the callback returns. wg_wsserver_free() frees every connection without
 * calling back. The SSL_CTX is borrowed. The head passed to on_open is valid during the call. */
#ifndef WG_SANDBOX_WSSERVER_H
#define WG_SANDBOX_WSSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "wa/ws_handshake.h"

struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

typedef struct wg_wsserver_s wg_wsserver_t;
typedef struct wg_wsserver_conn_s wg_wsserver_conn_t;

typedef struct {
    int (*on_open)(wg_wsserver_conn_t *c, const wg_ws_handshake_head_t *req, void *user);
    void (*on_message)(wg_wsserver_conn_t *c, int is_text, const uint8_t *data, size_t len,
                       void *user);
    void (*on_close)(wg_wsserver_conn_t *c, int code, const char *reason, void *user);
} wg_wsserver_cbs_t;

typedef struct {
    const char *listen;            /* "127.0.0.1:7070", "[::1]:0", port 0 = any */
    SSL_CTX *ssl_ctx;              /* NULL = plain ws:// */
    size_t max_message;            /* 0 = 16 MiB */
    unsigned handshake_timeout_ms; /* 0 = 10 s, covers TLS + upgrade request */
    int backlog;                   /* 0 = 1024 */
} wg_wsserver_opts_t;

/* Server TLS context from PEM files (certificate chain, private key). NULL on failure.
 * Caller frees with SSL_CTX_free(). */
SSL_CTX *wg_wsserver_ssl_ctx_new(const char *cert_file, const char *key_file);

/* Binds and starts listening. 0 and *out, WG_EINVAL (bad address), WG_EIO (bind/listen failed),
 * WG_ENOMEM. `user` is passed to every callback. */
int wg_wsserver_new(wg_wsserver_t **out, struct event_base *base, const wg_wsserver_opts_t *opts,
                    const wg_wsserver_cbs_t *cbs, void *user);
void wg_wsserver_free(wg_wsserver_t *s);
uint16_t wg_wsserver_port(const wg_wsserver_t *s);
/* Connections accepted by on_open and not yet closed. */
size_t wg_wsserver_count(const wg_wsserver_t *s);
/* Ends every open connection at once (no close frame); on_close(1006, "dropped") for each. */
void wg_wsserver_drop_all(wg_wsserver_t *s);

/* Per-connection user pointer (NULL until set). */
void wg_wsserver_conn_set_data(wg_wsserver_conn_t *c, void *data);
void *wg_wsserver_conn_data(const wg_wsserver_conn_t *c);
/* "ip:port" of the client. */
const char *wg_wsserver_conn_peer(const wg_wsserver_conn_t *c);

/* Queue a message (copied; large ones go out fragmented). 0, WG_ECLOSED, WG_ENOMEM. Not from
 * inside on_open (the 101 is not written yet): WG_ECLOSED there. */
int wg_wsserver_conn_send(wg_wsserver_conn_t *c, int is_text, const uint8_t *data, size_t len);
int wg_wsserver_conn_ping(wg_wsserver_conn_t *c, const uint8_t *data, size_t len);
/* Start the close handshake; on_close follows (client's code, or 1006 after a 5 s timeout). */
int wg_wsserver_conn_close(wg_wsserver_conn_t *c, uint16_t code, const char *reason);
/* Drop the connection now without a close frame; no on_close. */
void wg_wsserver_conn_free(wg_wsserver_conn_t *c);

#endif
