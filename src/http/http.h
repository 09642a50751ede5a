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
#define WG_HTTP_WATCH_MAX 4

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
     * same loop: once right away, again whenever one of the keys in watch[] is woken
     * (wg_http_wake, below), and as a safety net every WG_HTTP_WAIT_POLL_MS (every
     * WG_HTTP_WAIT_TICK_MS when the request watches no key: an outcome nothing announces). It
     * returns 1 once it has set the response; after wait_ms the call has final = 1 and must set
     * it. If the client goes away first, it is called once with final = -1 (release wait_arg,
     * set nothing). The request's path, query, params and body stay valid until then; the
     * handler never blocks the loop. A call may add keys (wg_http_watch); the server then calls
     * wait once more at once, so nothing woken in between is missed. */
    int (*wait)(wg_http_req_t *r, void *ctx, int final);
    void *wait_arg;
    int wait_ms;
    uint64_t watch[WG_HTTP_WATCH_MAX]; /* wake keys (wg_http_watch) */
    int nwatch;
    /* Kept by the server (read-only for handlers; logs, observe): calls of wait so far made
     * because a key was woken, and the others (the first call, polls, the deadline). */
    int wait_wakes, wait_polls;

    /* Streaming response (optional; Server-Sent Events): a handler that sets stream (and
     * stream_arg, content_type) and leaves json/raw empty gets the status line and headers sent
     * at once (status 200, chunked). The server then calls stream(r, ctx, final) on the same
     * loop every WG_HTTP_STREAM_TICK_MS (a stream is one long response: the tick delays its
     * events a little, it does not bound a client's request rate): it may set raw/raw_len (sent
     * as one chunk, then freed) and returns 1 to end the response. final = 1 when the server
     * shuts down (last call: may set raw, must release stream_arg); final = -1 when the client
     * went away (release only). The request deadline does not apply to a stream. */
    int (*stream)(wg_http_req_t *r, void *ctx, int final);
    void *stream_arg;
    /* With stream: answer "101 Switching Protocols" to a WebSocket upgrade with this
     * Sec-WebSocket-Accept value instead of a 200 (the chunks are then raw WebSocket frames;
     * what the client sends is not read). */
    char ws_accept[32];
};

#define WG_HTTP_WAIT_POLL_MS 1000 /* a deferred request that watches keys (safety net) */
#define WG_HTTP_WAIT_TICK_MS 50   /* a deferred request that watches none */
#define WG_HTTP_STREAM_TICK_MS 50

/* Wake keys: a deferred request is answered as soon as its outcome is known, not at the next
 * poll. Whoever produces an outcome (the engine: a send ended, a QR was shown, a status
 * changed) calls wg_http_wake(key) on any thread; every deferred request that watches key gets
 * its wait called on its own loop at once. A key is only a number: a notifier holds no pointer
 * to a request, and a key nobody watches (the request already answered, its client gone) wakes
 * nothing. Two outcomes sharing a key by a hash collision cost an extra wait call, never a
 * wrong answer (wait always re-checks the outcome itself). */
uint64_t wg_http_key_str(const char *s); /* e.g. an instance id: its QR, status, pairing code */
uint64_t wg_http_key_num(uint64_t n);    /* e.g. an engine send token: its outcome */
/* Adds key to r's watch list (a handler deferring r, or its wait). 0; WG_ELIMIT when
 * WG_HTTP_WATCH_MAX keys are watched already (r then relies on the polls). */
int wg_http_watch(wg_http_req_t *r, uint64_t key);
/* Any thread, any time; never blocks on a loop (it only queues the requests' events). */
void wg_http_wake(uint64_t key);

#endif
