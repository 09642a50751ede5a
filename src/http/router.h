/* router.h - a static route table: (methods, pattern with {name} placeholders, handler, rate
 * class). Pure string matching; no allocation, no I/O (fuzzed by tests/fuzz/fuzz_router.c).
 *
 * Patterns are absolute paths; a "{x}" segment matches one non-empty segment of at most 128
 * bytes made of [A-Za-z0-9_.~-] and %. A trailing '/' on the request path is ignored. */
#ifndef WG_HTTP_ROUTER_H
#define WG_HTTP_ROUTER_H

#include "http/http.h"

typedef void (*wg_http_handler_t)(wg_http_req_t *r, void *ctx);

typedef struct wg_route {
    unsigned methods; /* WG_HTTP_* mask */
    const char *pattern;
    wg_http_handler_t handler;
    int rclass; /* rate-limit class, meaning chosen by the API layer */
} wg_route_t;

/* Finds the route for (method, path) and fills r->route, r->params, r->nparams.
 * 0 on a match; WG_ENOTFOUND when no pattern matches the path; WG_EPERM when patterns match
 * the path but not the method (r->allow then lists the methods allowed). */
int wg_router_match(const wg_route_t *routes, size_t n, int method, const char *path,
                    wg_http_req_t *r);

/* Query parameter `key` percent- and '+'-decoded into out (NUL-terminated).
 * 0, WG_ENOTFOUND (absent), WG_ETOOBIG (does not fit), WG_EINVAL (bad escape or NUL byte). */
int wg_http_query_get(const char *query, const char *key, char *out, size_t cap);

/* The credential of a request: "Authorization: Bearer <t>" or "apikey: <t>", trimmed, copied to
 * out. Returns out, or NULL when absent or too long. */
const char *wg_http_credential(const wg_http_req_t *r, char *out, size_t cap);

/* Method bit for a method name; WG_HTTP_OTHER when unknown. */
int wg_http_method_from_name(const char *name);

#endif
