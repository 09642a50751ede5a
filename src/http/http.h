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
};

#endif
