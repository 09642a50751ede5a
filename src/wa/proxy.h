/* proxy.h - client side of the HTTP CONNECT (RFC 9110 section 9.3.6, Basic auth RFC 7617) and
 * SOCKS5 (RFC 1928, username/password RFC 1929) tunnel handshakes, as a pure state machine.
 *
 * It does no I/O: wg_proxy_start() appends the first bytes to send; each time bytes arrive from
 * the proxy, wg_proxy_feed() takes them, appends any answer to send, and says whether the tunnel
 * is open. Used by ws.c between TCP connect and TLS. The target host is sent to the proxy as a
 * name (SOCKS5 ATYP 3 / CONNECT host:port), so the proxy resolves it.
 *
 * Ownership: wg_proxy_new() copies every string it is given; wg_proxy_free() frees the state.
 * Output goes to a caller-owned wg_buf_t. */
#ifndef WG_WA_PROXY_H
#define WG_WA_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum { WG_PROXY_NONE = 0, WG_PROXY_HTTP, WG_PROXY_SOCKS5 } wg_proxy_type_t;

typedef struct {
    wg_proxy_type_t type;
    const char *host; /* proxy address (name or IP literal) */
    uint16_t port;
    const char *user; /* NULL or "" = no authentication */
    const char *pass;
} wg_proxy_opts_t;

typedef struct wg_proxy_s wg_proxy_t;

/* "http" -> WG_PROXY_HTTP, "socks5"/"socks5h" -> WG_PROXY_SOCKS5, "", "none" -> WG_PROXY_NONE;
 * 0 or WG_EINVAL. */
int wg_proxy_parse_type(const char *s, wg_proxy_type_t *out);

/* New handshake state for reaching target_host:target_port through the proxy in opts.
 * 0 and *out, or WG_EINVAL (type NONE, empty host, a name/user/password longer than 255 bytes
 * or holding CR/LF/NUL), WG_ENOMEM. */
int wg_proxy_new(wg_proxy_t **out, const wg_proxy_opts_t *opts, const char *target_host,
                 uint16_t target_port);
void wg_proxy_free(wg_proxy_t *p);

/* Appends the first message (CONNECT request or SOCKS5 greeting) to out. */
int wg_proxy_start(wg_proxy_t *p, wg_buf_t *out);

/* Feeds bytes received from the proxy. *consumed = how many of them the handshake used; the
 * caller drops those and keeps the rest (after 0 they belong to the tunnel). Any bytes appended
 * to out must be sent to the proxy.
 *   0           tunnel open
 *   WG_EAGAIN   need more bytes (after sending out, if anything was appended)
 *   WG_EPERM    the proxy rejected our credentials or requires some we do not have
 *   WG_EIO      the proxy could not or would not reach the target (SOCKS5 reply != 0, HTTP != 2xx)
 *   WG_EPROTO   the bytes are not a valid proxy answer
 * After a failure, wg_proxy_error() tells why (static text plus detail). */
int wg_proxy_feed(wg_proxy_t *p, const uint8_t *in, size_t n, size_t *consumed, wg_buf_t *out);
const char *wg_proxy_error(const wg_proxy_t *p);

#endif
