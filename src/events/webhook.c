/* webhook.c - see webhook.h. */
#include "events/webhook.h"
#include "util/err.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void wg_webhook_cfg_dispose(wg_webhook_cfg_t *c)
{
    if (!c)
        return;
    free(c->url);
    free(c->secret);
    for (size_t i = 0; i < c->nevents; i++)
        free(c->events[i]);
    free(c->events);
    for (size_t i = 0; i < c->nhdrs; i++) {
        free(c->hdr_names[i]);
        free(c->hdr_values[i]);
    }
    free(c->hdr_names);
    free(c->hdr_values);
    memset(c, 0, sizeof(*c));
}

static int parse_headers(json_t *h, wg_webhook_cfg_t *out)
{
    const char *k;
    json_t *v;
    size_t n = json_is_object(h) ? json_object_size(h) : 0;
    if (!n)
        return 0;
    if (!(out->hdr_names = calloc(n, sizeof(char *))) ||
        !(out->hdr_values = calloc(n, sizeof(char *))))
        return WG_ENOMEM;
    json_object_foreach(h, k, v)
    {
        if (!json_is_string(v))
            continue;
        out->hdr_names[out->nhdrs] = strdup(k);
        out->hdr_values[out->nhdrs] = strdup(json_string_value(v));
        out->nhdrs++; /* counted before the check: dispose frees both slots */
        if (!out->hdr_names[out->nhdrs - 1] || !out->hdr_values[out->nhdrs - 1])
            return WG_ENOMEM;
    }
    return 0;
}

int wg_webhook_cfg_parse(const char *json, const char *dialect, wg_webhook_cfg_t *out)
{
    json_t *w = json ? json_loads(json, 0, NULL) : NULL;
    int rv = 0;
    memset(out, 0, sizeof(*out));
    snprintf(out->dialect, sizeof(out->dialect), "%s", dialect ? dialect : "native");
    if (!w || !json_is_object(w))
        goto out;
    const char *url = json_string_value(json_object_get(w, "url"));
    const char *sec = json_string_value(json_object_get(w, "secret"));
    json_t *ev = json_object_get(w, "events");
    if ((url && *url && !(out->url = strdup(url))) ||
        (sec && *sec && !(out->secret = strdup(sec)))) {
        rv = WG_ENOMEM;
        goto out;
    }
    out->by_events = json_is_true(json_object_get(w, "byEvents"));
    out->base64 = json_is_true(json_object_get(w, "base64"));
    json_t *ma = json_object_get(w, "maxAttempts");
    if (json_is_integer(ma) && json_integer_value(ma) > 0 && json_integer_value(ma) <= 1000)
        out->max_attempts = (int)json_integer_value(ma);
    if (json_is_array(ev) && json_array_size(ev)) {
        size_t i;
        json_t *v;
        if (!(out->events = calloc(json_array_size(ev), sizeof(char *)))) {
            rv = WG_ENOMEM;
            goto out;
        }
        json_array_foreach(ev, i, v)
        {
            if (!json_is_string(v))
                continue;
            if (!(out->events[out->nevents] = strdup(json_string_value(v)))) {
                rv = WG_ENOMEM;
                goto out;
            }
            out->nevents++;
        }
    }
    rv = parse_headers(json_object_get(w, "headers"), out);
out:
    json_decref(w);
    if (rv)
        wg_webhook_cfg_dispose(out);
    return rv;
}

int wg_webhook_wants(const wg_webhook_cfg_t *c, const char *event)
{
    if (c->nevents == 0)
        return 1;
    for (size_t i = 0; i < c->nevents; i++)
        if (!strcmp(c->events[i], event))
            return 1;
    return 0;
}

/* JSON string literal of s (ids and event names are plain ASCII, but never trust that). */
static char *quoted(const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return t;
}

int wg_webhook_render(const wg_webhook_cfg_t *c, const wg_outbox_row_t *row, char **body,
                      size_t *len)
{
    /* One envelope today. Dialect adapters add a branch on c->dialect here (their own shapes
     * and signature headers) so nothing else in the sink changes. */
    char ts[96];
    time_t secs = (time_t)(row->created_at / 1000);
    struct tm tm;
    char *id = quoted(row->id), *ev = quoted(row->event), *inst = quoted(row->instance_id);
    int rv = WG_ENOMEM;
    (void)c;
    *body = NULL;
    *len = 0;
    gmtime_r(&secs, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(row->created_at % 1000));
    if (!id || !ev || !inst)
        goto out;
    const char *data = row->payload && *row->payload ? row->payload : "null";
    size_t cap = strlen(id) + strlen(ev) + strlen(inst) + strlen(data) + 128;
    char *b = malloc(cap);
    if (!b)
        goto out;
    int n = snprintf(b, cap,
                     "{\"id\":%s,\"event\":%s,\"instanceId\":%s,\"seq\":%lld,\"timestamp\":\"%s\","
                     "\"data\":%s}",
                     id, ev, inst, (long long)row->seq, ts, data);
    if (n < 0 || (size_t)n >= cap) {
        free(b);
        goto out;
    }
    *body = b;
    *len = (size_t)n;
    rv = 0;
out:
    free(id);
    free(ev);
    free(inst);
    return rv;
}

int wg_webhook_url(const wg_webhook_cfg_t *c, const char *event, char **out)
{
    *out = NULL;
    if (!c->url)
        return WG_EINVAL;
    if (!c->by_events)
        return (*out = strdup(c->url)) ? 0 : WG_ENOMEM;
    /* the event goes into the path, before any query string */
    const char *q = strchr(c->url, '?');
    size_t plen = q ? (size_t)(q - c->url) : strlen(c->url);
    int slash = plen && c->url[plen - 1] == '/';
    size_t cap = strlen(c->url) + strlen(event) + 2;
    char *u = malloc(cap);
    if (!u)
        return WG_ENOMEM;
    snprintf(u, cap, "%.*s%s%s%s", (int)plen, c->url, slash ? "" : "/", event, q ? q : "");
    *out = u;
    return 0;
}

void wg_webhook_sign(const char *secret, const void *body, size_t len, char *out, size_t cap)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    static const char hex[] = "0123456789abcdef";
    if (cap < 8 + 64) {
        if (cap)
            out[0] = 0;
        return;
    }
    HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &mlen);
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < mlen && 7 + 2 * i + 2 < cap; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[8 + 2 * i] = hex[mac[i] & 15];
    }
    out[7 + 2 * mlen] = 0;
}

int64_t wg_webhook_backoff_ms(int failures, int64_t base_ms, int64_t cap_ms, uint32_t rnd)
{
    int64_t d = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < failures && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    int64_t half = d / 2;
    return half + (int64_t)(rnd % (uint64_t)(d - half + 1));
}
