/* dialect.c - see dialect.h. */
#include "api/dialect.h"

#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const wg_dialect_t *const dialects[WG_DIALECT_COUNT] = {
    NULL, /* native: its table already holds absolute /v1 paths */
    &wg_dialect_evolution,
    &wg_dialect_hypersender,
    &wg_dialect_enviaai,
    &wg_dialect_wachat,
};

static int add_routes(wg_route_t *v, size_t *n, int d, const char *prefix)
{
    const wg_dialect_t *dl = dialects[d];
    for (size_t i = 0; i < *dl->nroutes; i++) {
        const wg_route_t *src = &dl->routes[i];
        size_t len = strlen(prefix) + strlen(src->pattern) + 1;
        char *p = malloc(len);
        if (!p)
            return WG_ENOMEM;
        snprintf(p, len, "%s%s", prefix, src->pattern);
        v[*n] = *src;
        v[*n].pattern = p;
        v[*n].rclass = WG_DIALECT_RCLASS(d, WG_DIALECT_RC(src->rclass));
        (*n)++;
    }
    return 0;
}

int wg_dialects_routes(const char *root_dialect, wg_route_t **out, size_t *n)
{
    int root = -1, rv = 0;
    size_t total = wg_native_nroutes, k = 0;
    *out = NULL;
    *n = 0;
    if (root_dialect && *root_dialect) {
        for (int d = 1; d < WG_DIALECT_COUNT; d++)
            if (!strcmp(root_dialect, dialects[d]->name) && strcmp(dialects[d]->prefix, "/v1"))
                root = d;
        if (root < 0)
            return WG_EINVAL;
    }
    for (int d = 1; d < WG_DIALECT_COUNT; d++)
        total += *dialects[d]->nroutes;
    if (root > 0)
        total += *dialects[root]->nroutes;
    wg_route_t *v = calloc(total, sizeof(*v));
    if (!v)
        return WG_ENOMEM;
    for (size_t i = 0; i < wg_native_nroutes; i++) {
        v[k] = wg_native_routes[i];
        if (!(v[k].pattern = strdup(wg_native_routes[i].pattern))) {
            rv = WG_ENOMEM;
            goto out;
        }
        k++;
    }
    for (int d = 1; d < WG_DIALECT_COUNT && !rv; d++)
        rv = add_routes(v, &k, d, dialects[d]->prefix);
    if (!rv && root > 0)
        rv = add_routes(v, &k, root, "");
out:
    if (rv) {
        wg_dialects_routes_free(v, k);
        return rv;
    }
    *out = v;
    *n = k;
    return 0;
}

void wg_dialects_routes_free(wg_route_t *routes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)routes[i].pattern);
    free(routes);
}

static int has_prefix(const char *path, const char *prefix)
{
    size_t l = strlen(prefix);
    return !strncmp(path, prefix, l) && (path[l] == '/' || path[l] == 0);
}

wg_dialect_id_t wg_dialects_of(const wg_http_req_t *r)
{
    if (r->route)
        return (wg_dialect_id_t)WG_DIALECT_OF(r->route->rclass);
    if (!r->path)
        return WG_DIALECT_NATIVE;
    for (int d = 1; d < WG_DIALECT_COUNT; d++)
        if (has_prefix(r->path, dialects[d]->prefix))
            return (wg_dialect_id_t)d;
    return WG_DIALECT_NATIVE;
}

void wg_dialects_error(wg_http_req_t *r, void *ctx, int status, const char *code,
                       const char *msg)
{
    wg_api_ctx_t *c = ctx;
    wg_dialect_id_t d = wg_dialects_of(r);
    /* an unknown path outside every prefix belongs to the root dialect when one is set */
    if (d == WG_DIALECT_NATIVE && !r->route && r->path && !has_prefix(r->path, "/v1") && c &&
        c->cfg && c->cfg->root_dialect && *c->cfg->root_dialect)
        for (int i = 1; i < WG_DIALECT_COUNT; i++)
            if (!strcmp(c->cfg->root_dialect, dialects[i]->name))
                d = (wg_dialect_id_t)i;
    if (d == WG_DIALECT_NATIVE)
        wg_native_error(r, ctx, status, code, msg);
    else
        dialects[d]->error(r, ctx, status, code, msg);
}

int wg_dialect_auth(wg_http_req_t *r, wg_api_ctx_t *c, wg_auth_t *a, wg_core_err_t *err)
{
    char tok[520];
    const char *t = wg_http_credential(r, tok, sizeof(tok));
    return wg_core_authenticate(c->core, t, a, err);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wg_dialect_limit(wg_http_req_t *r, wg_api_ctx_t *c, const char *key, int per_min,
                     int *retry)
{
    *retry = 0;
    if (per_min <= 0 || !c->rl)
        return 0;
    if (wg_ratelimit_take(c->rl, key, per_min, mono_ms(), retry) == 0)
        return 0;
    snprintf(r->retry_after, sizeof(r->retry_after), "%d", *retry);
    return WG_ELIMIT;
}

typedef struct {
    char id[64];
    wg_dialect_qr_done_fn done;
    void *arg;
    void (*arg_free)(void *);
} qr_wait_t;

static int qr_wait_cb(wg_http_req_t *r, void *ctx, int final)
{
    wg_api_ctx_t *c = ctx;
    qr_wait_t *w = r->wait_arg;
    wg_instance_t in;
    char *code = NULL;
    long long exp;
    if (final < 0)
        goto done;
    int have_qr = c->core->engine->ops->qr(c->core->engine, w->id, &code, &exp) == 0;
    free(code);
    if (wg_store_instance_get(c->core->store, w->id, &in) != 0) {
        wg_dialects_error(r, ctx, 500, "internal_error", "instance vanished while starting");
        goto done;
    }
    /* the engine stores SCAN_QR_CODE just before it publishes the QR: wait for both */
    if (!have_qr && !final &&
        (!strcmp(in.status, WG_STATUS_STARTING) || !strcmp(in.status, WG_STATUS_SCAN_QR) ||
         !strcmp(in.status, WG_STATUS_PENDING))) {
        wg_instance_dispose(&in);
        return 0;
    }
    w->done(r, c, &in, w->arg);
    wg_instance_dispose(&in);
done:
    if (w->arg_free)
        w->arg_free(w->arg);
    free(w);
    r->wait_arg = NULL;
    return 1;
}

int wg_dialect_wait_qr(wg_http_req_t *r, wg_api_ctx_t *c, const char *id, int wait_ms,
                       wg_dialect_qr_done_fn done, void *arg, void (*arg_free)(void *))
{
    qr_wait_t *w;
    if (wait_ms <= 0 || !c->core->engine || !c->core->engine->ops->qr ||
        !(w = calloc(1, sizeof(*w))))
        return 0;
    snprintf(w->id, sizeof(w->id), "%s", id);
    w->done = done;
    w->arg = arg;
    w->arg_free = arg_free;
    r->wait = qr_wait_cb;
    r->wait_arg = w;
    r->wait_ms = wait_ms;
    /* the engine wakes the instance's key when it shows a QR or reports a status */
    wg_http_watch(r, wg_http_key_str(id));
    return 1;
}

int wg_dialect_qr_wait_ms(const wg_api_ctx_t *c)
{
    return c->cfg->qr_wait_ms > 0 ? c->cfg->qr_wait_ms : 10000;
}

typedef struct {
    wg_core_send_t s;
    wg_dialect_send_done_fn done;
    void *arg;
    void (*arg_free)(void *);
} send_wait_t;

static int send_wait_cb(wg_http_req_t *r, void *ctx, int final)
{
    wg_api_ctx_t *c = ctx;
    send_wait_t *w = r->wait_arg;
    wg_core_sent_t sent;
    wg_core_err_t err = {0};
    if (final >= 0) {
        int st = wg_core_send_result(c->core, &w->s, final, &sent, &err);
        if (st == 0)
            return 0;
        w->done(r, c, &w->s, st == 1 ? &sent : NULL, st == 1 ? NULL : &err, w->arg);
    }
    wg_core_send_drop(c->core, &w->s);
    if (w->arg_free)
        w->arg_free(w->arg);
    free(w);
    r->wait_arg = NULL;
    return 1;
}

int wg_dialect_send_text(wg_http_req_t *r, wg_api_ctx_t *c, const wg_instance_t *in,
                         const wg_core_send_text_t *m, wg_dialect_send_done_fn done, void *arg,
                         void (*arg_free)(void *), wg_core_err_t *err)
{
    int rv;
    send_wait_t *w = calloc(1, sizeof(*w));
    if (!w) {
        wg_core_err_set(err, 500, "internal_error", NULL, "out of memory");
        return WG_ENOMEM;
    }
    if ((rv = wg_core_send_text(c->core, in, m, &w->s, err)) != 0) {
        free(w);
        return rv;
    }
    w->done = done;
    w->arg = arg;
    w->arg_free = arg_free;
    r->wait = send_wait_cb;
    r->wait_arg = w;
    r->wait_ms = WG_SEND_WAIT_MS + (int)w->s.delay_ms;
    /* the engine wakes the token's key when the send ends (acked or failed): the answer goes
     * out then, not at the next poll */
    wg_http_watch(r, wg_http_key_num(w->s.token));
    return 0;
}

void wg_dialect_origin(const wg_http_req_t *r, const wg_api_ctx_t *c, char *out, size_t cap)
{
    const char *host = r->header ? r->header(r, "Host") : NULL;
    out[0] = 0;
    if (c->cfg->public_url && *c->cfg->public_url)
        snprintf(out, cap, "%.250s", c->cfg->public_url);
    else if (host && *host && !strpbrk(host, " /\\\"<>\r\n"))
        snprintf(out, cap, "http://%.250s", host);
    size_t n = strlen(out);
    if (n && out[n - 1] == '/')
        out[n - 1] = 0;
}
