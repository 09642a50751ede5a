/* server.h - the HTTP API server: libevent evhttp on WAGATE_HTTP_THREADS threads, one loop each,
 * all accepting from one listening socket.
 *
 * Each thread gets its own application context (ctx_new/ctx_free: e.g. a core with its own
 * store connection), so handlers never share mutable state except what the app makes
 * thread-safe itself (the rate limiter). Responses are JSON (application/json) unless a handler
 * sets a raw body (http.h); a handler may also defer its answer (http.h "wait"); the app's
 * `error` callback renders 404/405 and request-level errors in its own shape.
 *
 * Limits: body WAGATE_HTTP_BODY_LIMIT (libevent answers 413 itself and closes), headers
 * WAGATE_HTTP_HEADER_LIMIT, WAGATE_HTTP_IDLE_TIMEOUT seconds of silence on any connection
 * (idle keep-alive, slow headers, slow body) closes it. A slow client costs one socket, never
 * a thread: handlers do not wait on the network.
 *
 * Shutdown: wg_http_server_stop() (async-signal-safe: it only writes to a pipe) makes every
 * thread stop accepting, answer further requests with "Connection: close", and leave its loop
 * once its connections are gone or WAGATE_SHUTDOWN_TIMEOUT has passed; then ctx_free runs on
 * that thread (closing its database connection) and wg_http_server_run returns. */
#ifndef WG_HTTP_SERVER_H
#define WG_HTTP_SERVER_H

#include "http/router.h"
#include "util/config.h"

typedef struct {
    const wg_route_t *routes;
    size_t nroutes;
    void *(*ctx_new)(void *arg, int thread_index); /* NULL = failure */
    void (*ctx_free)(void *ctx);
    /* Renders a request-level error (404, 405, 400) into r->status/r->json. */
    void (*error)(wg_http_req_t *r, void *ctx, int status, const char *code, const char *msg);
    void *arg;
    /* Optional: called on the request's thread once its response is sent (metrics). */
    void (*observe)(void *ctx, const wg_http_req_t *r, int status);
} wg_http_app_t;

typedef struct wg_http_server wg_http_server_t;

/* errpage.c: libevent's own error pages (413, 400, 501) are rendered as JSON. */
extern int wg_http_errpage_json;

/* Binds cfg->listen. *out freed by wg_http_server_free. WG_EINVAL (bad address), WG_EIO. */
int wg_http_server_new(const wg_config_t *cfg, const wg_http_app_t *app, wg_http_server_t **out);
/* "host:port" actually bound (port resolved when 0). */
const char *wg_http_server_address(const wg_http_server_t *s);
/* Runs the threads until stopped. 0, or WG_EIO/WG_ENOMEM if a thread could not start. */
int wg_http_server_run(wg_http_server_t *s);
void wg_http_server_stop(wg_http_server_t *s);
void wg_http_server_free(wg_http_server_t *s);

#endif
