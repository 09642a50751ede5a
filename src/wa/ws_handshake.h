/* ws_handshake.h - the WebSocket opening handshake (RFC 6455 section 4) as pure functions.
 *
 * Client side: build the upgrade request (wg_ws_handshake_request) and check the server's
 * answer (wg_ws_handshake_parse_response: status 101, Upgrade/Connection tokens and the
 * Sec-WebSocket-Accept value derived from our key). Server side: parse the upgrade request
 * (wg_ws_handshake_parse_request) and build the 101 answer (wg_ws_handshake_response).
 * The small HTTP/1.x head parser underneath (wg_ws_handshake_parse_head) is shared with
 * proxy.c for the HTTP CONNECT answer.
 *
 * No I/O, no clocks, no globals: the 16 random key bytes are passed in by the caller.
 * Parsers return 0 when a complete head was parsed (*consumed = its length, bytes after it
 * belong to the next layer), WG_EAGAIN when more bytes are needed, WG_EPROTO when the bytes
 * cannot be a valid head / handshake, WG_ETOOBIG when the head would exceed its limit
 * (default WG_WS_MAX_HEAD bytes, at most WG_WS_MAX_HEADERS header lines), WG_ENOMEM.
 *
 * Ownership: a parsed wg_ws_handshake_head_t owns one heap copy of the head; every string in
 * it points into that copy; wg_ws_handshake_head_dispose() frees it (safe on a zeroed or
 * already disposed head). Builders append to a caller-owned wg_buf_t. */
#ifndef WG_WA_WS_HANDSHAKE_H
#define WG_WA_WS_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define WG_WS_MAX_HEAD 8192
#define WG_WS_MAX_HEADERS 64
#define WG_WS_KEY_LEN 24    /* base64 of 16 bytes */
#define WG_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */

typedef struct {
    const char *name;
    const char *value;
} wg_ws_header_t;

typedef struct {
    char *raw;          /* owned copy of the head, split in place */
    const char *method; /* request: "GET", ... */
    const char *target; /* request: request-target, e.g. "/ws/chat" */
    int status;         /* response: 101, 200, 407, ... */
    const char *reason; /* response: reason phrase (may be "") */
    int minor_version;  /* HTTP/1.x */
    size_t nheaders;
    wg_ws_header_t headers[WG_WS_MAX_HEADERS];
} wg_ws_handshake_head_t;

/* Parses one HTTP/1.x head (start line + headers + empty line) from p[0..n).
 * is_request selects request-line or status-line syntax. limit 0 = WG_WS_MAX_HEAD.
 * On 0, *h owns a copy (dispose it) and *consumed is the head length. On any other return *h
 * is left disposed (nothing to free). Garbage is reported as WG_EPROTO as soon as it is seen,
 * even before the head is complete. */
int wg_ws_handshake_parse_head(const uint8_t *p, size_t n, int is_request, size_t limit,
                               wg_ws_handshake_head_t *h, size_t *consumed);
void wg_ws_handshake_head_dispose(wg_ws_handshake_head_t *h);
/* First header with that name (case-insensitive), or NULL. */
const char *wg_ws_handshake_head_get(const wg_ws_handshake_head_t *h, const char *name);
/* 1 if a comma-separated header value list of `name` contains `token` (case-insensitive). */
int wg_ws_handshake_head_has_token(const wg_ws_handshake_head_t *h, const char *name,
                                   const char *token);

/* key_out (25 bytes) = base64(nonce16), NUL-terminated. */
void wg_ws_handshake_key(const uint8_t nonce[16], char key_out[WG_WS_KEY_LEN + 1]);
/* accept_out (29 bytes) = base64(SHA1(key || RFC 6455 GUID)), NUL-terminated. 0 or WG_EINVAL. */
int wg_ws_handshake_accept(const char *key, char accept_out[WG_WS_ACCEPT_LEN + 1]);

typedef struct {
    const char *host;            /* Host header value ("example.com" or "example.com:8443") */
    const char *path;            /* request-target, "/" when NULL */
    const char *origin;          /* Origin header or NULL */
    const char *key;             /* from wg_ws_handshake_key() */
    const wg_ws_header_t *extra; /* more headers, or NULL */
    size_t nextra;
} wg_ws_handshake_req_t;

/* Appends the GET upgrade request. WG_EINVAL if a field holds CR, LF or NUL (header injection)
 * or a header name is not a token; WG_ENOMEM/WG_ETOOBIG from the buffer. */
int wg_ws_handshake_request(wg_buf_t *out, const wg_ws_handshake_req_t *req);

/* Client: parses and checks the server's answer to a request made with `key`.
 * 0: a valid 101 (*consumed = head length; following bytes are WebSocket frames).
 * WG_EAGAIN: incomplete. WG_EPROTO: not a valid upgrade; *status (if not NULL) is the HTTP
 * status when one was parsed (else 0) and *why (if not NULL) a static explanation. */
int wg_ws_handshake_parse_response(const uint8_t *p, size_t n, const char *key, size_t *consumed,
                                   int *status, const char **why);

/* Server: parses and checks an upgrade request. 0: *h holds it (dispose it) and *key_out points
 * into it; *consumed is the head length. WG_EAGAIN / WG_ETOOBIG as above. WG_EPROTO: not a
 * valid WebSocket upgrade (*why explains, *h disposed); answer 400 and close. */
int wg_ws_handshake_parse_request(const uint8_t *p, size_t n, wg_ws_handshake_head_t *h,
                                  const char **key_out, size_t *consumed, const char **why);

/* Server: appends "HTTP/1.1 101 Switching Protocols" with the accept value for `key`. */
int wg_ws_handshake_response(wg_buf_t *out, const char *key);
/* Server: appends a short refusal (status 400..599) with Connection: close. */
int wg_ws_handshake_reject(wg_buf_t *out, int status);

#endif
