/* http.h - one HTTP exchange as the API layer sees it: the parsed request and the response the
 * handler fills in. No libevent types here, so handlers and tests need no server.
 *
 * The server owns everything in a wg_http_req_t; a handler sets status and json (the server
 * takes ownership of json and json_decref()s it after sending). */
#ifndef WG_HTTP_HTTP_H
#define WG_HTTP_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum {
    WG_HTTP_GET = 1 << 0,
    WG_HTTP_POST = 1 << 1,
    WG_HTTP_PUT = 1 << 2,
    WG_HTTP_PATCH = 1 << 3,
    WG_HTTP_DELETE = 1 << 4,
    WG_HTTP_HEAD = 1 << 5,
    WG_HTTP_OPTIONS = 1 << 6,
    WG_HTTP_OTHER = 1 << 7,
};

#define WG_HTTP_MAX_PARAMS 4

typedef struct wg_http_req wg_http_req_t;
struct wg_route;

struct wg_http_req {
    int method;              /* one WG_HTTP_* bit */
    const char *method_name; /* "GET" ... */
    const char *path;        /* raw path, no query */
    const char *query;       /* raw query string or NULL */
    const uint8_t *body;     /* request body (not NUL-terminated) */
    size_t body_len;
    const char *remote;      /* peer address */
    /* Request header by name (case-insensitive) or NULL. */
    const char *(*header)(const wg_http_req_t *r, const char *name);
    void *impl;
    const struct wg_route *route;
    const char *params[WG_HTTP_MAX_PARAMS]; /* {placeholders} of the matched pattern */
    int nparams;
    char pbuf[512];

    /* response */
    int status;
    json_t *json;
    char retry_after[16]; /* "" or seconds */
    char allow[96];       /* "" or Allow header value (405) */
    char log_instance[64];

    /* Binary response (optional): when raw is set, it is sent instead of json with this
     * Content-Type; the server free()s raw. */
    const char *content_type;
    uint8_t *raw;
    size_t raw_len;

    /* Extra response headers (optional, e.g. Wachat's X-Instance-Name): name "" = unused.
     * Values must be header-safe text (no CR/LF; the server drops a header it refuses). */
    struct {
        char name[32];
        char value[160];
    } xhdr[2];

    /* Deferred response (optional): a handler that cannot answer yet sets wait (and wait_arg,
     * wait_ms) and leaves the response empty. The server then calls wait(r, ctx, final) on the
     * same loop every WG_HTTP_WAIT_TICK_MS: it returns 1 once it has set the response; after
     * wait_ms the call has final = 1 and must set it. If the client goes away first, it is
     * called once with final = -1 (release wait_arg, set nothing). The request's path, query,
     * params and body stay valid until then; the handler never blocks the loop. */
    int (*wait)(wg_http_req_t *r, void *ctx, int final);
    void *wait_arg;
    int wait_ms;

    /* Streaming response (optional; Server-Sent Events): a handler that sets stream (and
     * stream_arg, content_type) and leaves json/raw empty gets the status line and headers sent
     * at once (status 200, chunked). The server then calls stream(r, ctx, final) on the same
     * loop every WG_HTTP_WAIT_TICK_MS: it may set raw/raw_len (sent as one chunk, then freed)
     * and returns 1 to end the response. final = 1 when the server shuts down (last call: may
     * set raw, must release stream_arg); final = -1 when the client went away (release only).
     * The request deadline does not apply to a stream. */
    int (*stream)(wg_http_req_t *r, void *ctx, int final);
    void *stream_arg;
    /* With stream: answer "101 Switching Protocols" to a WebSocket upgrade with this
     * Sec-WebSocket-Accept value instead of a 200 (the chunks are then raw WebSocket frames;
     * what the client sends is not read). */
    char ws_accept[32];
};

#define WG_HTTP_WAIT_TICK_MS 50

#endif
