/* router.c - see router.h. */
#include "http/router.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int seg_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.' || c == '~' || c == '%';
}

/* Matches path against pattern; on success copies placeholder values into r->pbuf. */
static int match_one(const char *pattern, const char *path, size_t plen, wg_http_req_t *r)
{
    const char *pp = pattern, *sp = path, *end = path + plen;
    size_t used = 0;
    int np = 0;
    while (*pp && sp < end) {
        if (*pp == '{') {
            const char *close = strchr(pp, '}');
            if (!close)
                return 0;
            const char *seg_end = sp;
            while (seg_end < end && *seg_end != '/') {
                if (!seg_char(*seg_end))
                    return 0;
                seg_end++;
            }
            size_t len = (size_t)(seg_end - sp);
            if (len == 0 || len > 128 || np == WG_HTTP_MAX_PARAMS ||
                used + len + 1 > sizeof(r->pbuf))
                return 0;
            memcpy(r->pbuf + used, sp, len);
            r->pbuf[used + len] = 0;
            r->params[np++] = r->pbuf + used;
            used += len + 1;
            pp = close + 1;
            sp = seg_end;
            continue;
        }
        if (*pp != *sp)
            return 0;
        pp++;
        sp++;
    }
    if (*pp || sp != end)
        return 0;
    r->nparams = np;
    return 1;
}

static const char *method_names[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

int wg_http_method_from_name(const char *name)
{
    for (int i = 0; i < 7; i++)
        if (!strcmp(name, method_names[i]))
            return 1 << i;
    return WG_HTTP_OTHER;
}

int wg_router_match(const wg_route_t *routes, size_t n, int method, const char *path,
                    wg_http_req_t *r)
{
    unsigned allowed = 0;
    size_t plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/')
        plen--;
    r->route = NULL;
    r->nparams = 0;
    r->allow[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (!match_one(routes[i].pattern, path, plen, r))
            continue;
        if (routes[i].methods & (unsigned)method) {
            r->route = &routes[i];
            return 0;
        }
        allowed |= routes[i].methods;
    }
    r->nparams = 0;
    if (!allowed)
        return WG_ENOTFOUND;
    size_t used = 0;
    for (int i = 0; i < 7; i++) {
        if (!(allowed & (1u << i)))
            continue;
        int w = snprintf(r->allow + used, sizeof(r->allow) - used, "%s%s", used ? ", " : "",
                         method_names[i]);
        if (w < 0 || (size_t)w >= sizeof(r->allow) - used)
            break;
        used += (size_t)w;
    }
    return WG_EPERM;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int wg_http_query_get(const char *query, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if ((size_t)(kend - p) == klen && !memcmp(p, key, klen)) {
            size_t o = 0;
            const char *v = eq ? eq + 1 : end;
            while (v < end) {
                int c = (unsigned char)*v;
                if (c == '+') {
                    c = ' ';
                    v++;
                } else if (c == '%') {
                    if (end - v < 3 || hexv(v[1]) < 0 || hexv(v[2]) < 0)
                        return WG_EINVAL;
                    c = hexv(v[1]) * 16 + hexv(v[2]);
                    v += 3;
                } else
                    v++;
                if (c == 0)
                    return WG_EINVAL;
                if (o + 1 >= cap)
                    return WG_ETOOBIG;
                out[o++] = (char)c;
            }
            out[o] = 0;
            return 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return WG_ENOTFOUND;
}

static const char *trim_copy(const char *s, char *out, size_t cap)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (!n || n >= cap)
        return NULL;
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

const char *wg_http_credential(const wg_http_req_t *r, char *out, size_t cap)
{
    const char *h = r->header ? r->header(r, "Authorization") : NULL;
    if (h) {
        while (*h == ' ')
            h++;
        if (!strncasecmp(h, "Bearer ", 7))
            return trim_copy(h + 7, out, cap);
    }
    h = r->header ? r->header(r, "apikey") : NULL;
    return h ? trim_copy(h, out, cap) : NULL;
}
