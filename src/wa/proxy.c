/* proxy.c - HTTP CONNECT and SOCKS5 client handshakes as a byte-in/byte-out state machine
 * (see proxy.h). No I/O. */
#include "wa/proxy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/codec.h"
#include "util/err.h"
#include "wa/ws_handshake.h"

typedef enum {
    ST_START,
    ST_HTTP_REPLY,
    ST_SOCKS_METHOD,
    ST_SOCKS_AUTH,
    ST_SOCKS_CONNECT,
    ST_DONE,
    ST_FAILED,
} state_t;

struct wg_proxy_s {
    wg_proxy_type_t type;
    state_t st;
    char *target;
    uint16_t port;
    char *user;
    char *pass;
    char err[160];
};

int wg_proxy_parse_type(const char *s, wg_proxy_type_t *out)
{
    if (s == NULL || *s == 0 || strcasecmp(s, "none") == 0)
        *out = WG_PROXY_NONE;
    else if (strcasecmp(s, "http") == 0)
        *out = WG_PROXY_HTTP;
    else if (strcasecmp(s, "socks5") == 0 || strcasecmp(s, "socks5h") == 0)
        *out = WG_PROXY_SOCKS5;
    else
        return WG_EINVAL;
    return 0;
}

static int field_ok(const char *s)
{
    if (strlen(s) > 255)
        return 0;
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

int wg_proxy_new(wg_proxy_t **out, const wg_proxy_opts_t *opts, const char *target_host,
                 uint16_t target_port)
{
    wg_proxy_t *p = NULL;
    int rv = WG_EINVAL;

    *out = NULL;
    if (opts->type != WG_PROXY_HTTP && opts->type != WG_PROXY_SOCKS5)
        goto out;
    if (!target_host || !*target_host || !field_ok(target_host) || strchr(target_host, ' '))
        goto out;
    if ((opts->user && !field_ok(opts->user)) || (opts->pass && !field_ok(opts->pass)))
        goto out;
    rv = WG_ENOMEM;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        goto out;
    p->type = opts->type;
    p->port = target_port;
    if ((p->target = strdup(target_host)) == NULL)
        goto out;
    if (opts->user && *opts->user) {
        if ((p->user = strdup(opts->user)) == NULL ||
            (p->pass = strdup(opts->pass ? opts->pass : "")) == NULL)
            goto out;
    }
    *out = p;
    p = NULL;
    rv = 0;
out:
    wg_proxy_free(p);
    return rv;
}

void wg_proxy_free(wg_proxy_t *p)
{
    if (!p)
        return;
    free(p->target);
    free(p->user);
    if (p->pass) {
        memset(p->pass, 0, strlen(p->pass));
        free(p->pass);
    }
    free(p);
}

const char *wg_proxy_error(const wg_proxy_t *p)
{
    return p->err[0] ? p->err : "no error";
}

__attribute__((format(printf, 3, 4))) static int fail(wg_proxy_t *p, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    p->st = ST_FAILED;
    return rv;
}

static int http_start(wg_proxy_t *p, wg_buf_t *out)
{
    /* IPv6 literals go in brackets in an authority (RFC 3986 3.2.2). */
    int v6 = strchr(p->target, ':') != NULL;
    int rv = wg_buf_printf(out, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n", v6 ? "[" : "",
                           p->target, v6 ? "]" : "", p->port, v6 ? "[" : "", p->target,
                           v6 ? "]" : "", p->port);
    if (rv == 0 && p->user) {
        size_t ul = strlen(p->user), pl = strlen(p->pass);
        uint8_t cred[512];
        char *b64;
        memcpy(cred, p->user, ul);
        cred[ul] = ':';
        memcpy(cred + ul + 1, p->pass, pl);
        b64 = wg_base64_encode(cred, ul + 1 + pl);
        memset(cred, 0, sizeof(cred));
        if (!b64)
            return WG_ENOMEM;
        rv = wg_buf_printf(out, "Proxy-Authorization: Basic %s\r\n", b64);
        memset(b64, 0, strlen(b64));
        free(b64);
    }
    if (rv == 0)
        rv = wg_buf_append_str(out, "\r\n");
    p->st = ST_HTTP_REPLY;
    return rv;
}

static int socks_start(wg_proxy_t *p, wg_buf_t *out)
{
    /* VER 5, NMETHODS, METHODS: 00 no auth, 02 username/password (only if we have one) */
    static const uint8_t noauth[] = {5, 1, 0};
    static const uint8_t withauth[] = {5, 2, 0, 2};
    p->st = ST_SOCKS_METHOD;
    return p->user ? wg_buf_append(out, withauth, sizeof(withauth))
                   : wg_buf_append(out, noauth, sizeof(noauth));
}

int wg_proxy_start(wg_proxy_t *p, wg_buf_t *out)
{
    if (p->st != ST_START)
        return WG_EINVAL;
    return p->type == WG_PROXY_HTTP ? http_start(p, out) : socks_start(p, out);
}

static int socks_send_connect(wg_proxy_t *p, wg_buf_t *out)
{
    size_t hl = strlen(p->target);
    uint8_t msg[4 + 1 + 255 + 2];
    size_t n = 0;
    msg[n++] = 5; /* VER */
    msg[n++] = 1; /* CMD CONNECT */
    msg[n++] = 0; /* RSV */
    msg[n++] = 3; /* ATYP domain name: the proxy resolves (socks5h behaviour) */
    msg[n++] = (uint8_t)hl;
    memcpy(msg + n, p->target, hl);
    n += hl;
    msg[n++] = (uint8_t)(p->port >> 8);
    msg[n++] = (uint8_t)p->port;
    p->st = ST_SOCKS_CONNECT;
    return wg_buf_append(out, msg, n);
}

static int socks_send_auth(wg_proxy_t *p, wg_buf_t *out)
{
    size_t ul = strlen(p->user), pl = strlen(p->pass);
    uint8_t msg[3 + 255 + 255];
    size_t n = 0;
    int rv;
    msg[n++] = 1; /* RFC 1929 sub-negotiation version */
    msg[n++] = (uint8_t)ul;
    memcpy(msg + n, p->user, ul);
    n += ul;
    msg[n++] = (uint8_t)pl;
    memcpy(msg + n, p->pass, pl);
    n += pl;
    rv = wg_buf_append(out, msg, n);
    memset(msg, 0, sizeof(msg));
    p->st = ST_SOCKS_AUTH;
    return rv;
}

static const char *socks_reply_text(uint8_t rep)
{
    /* RFC 1928 section 6 */
    switch (rep) {
    case 1:
        return "general SOCKS server failure";
    case 2:
        return "connection not allowed by ruleset";
    case 3:
        return "network unreachable";
    case 4:
        return "host unreachable";
    case 5:
        return "connection refused";
    case 6:
        return "TTL expired";
    case 7:
        return "command not supported";
    case 8:
        return "address type not supported";
    default:
        return "unknown failure";
    }
}

static int socks_feed(wg_proxy_t *p, const uint8_t *in, size_t n, size_t *consumed, wg_buf_t *out)
{
    size_t off = 0;
    int rv;

    for (;;) {
        const uint8_t *b = in + off;
        size_t avail = n - off;
        switch (p->st) {
        case ST_SOCKS_METHOD:
            if (avail >= 1 && b[0] != 5)
                return fail(p, WG_EPROTO, "socks5: bad version %d in method reply", b[0]);
            if (avail < 2)
                goto again;
            off += 2;
            if (b[1] == 0)
                rv = socks_send_connect(p, out);
            else if (b[1] == 2 && p->user)
                rv = socks_send_auth(p, out);
            else if (b[1] == 2 || b[1] == 0xff)
                return fail(p, WG_EPERM, "socks5: proxy accepts none of our auth methods (%d)",
                            b[1]);
            else
                return fail(p, WG_EPROTO, "socks5: proxy chose a method we did not offer (%d)",
                            b[1]);
            if (rv != 0)
                return fail(p, rv, "socks5: out of memory");
            break;
        case ST_SOCKS_AUTH:
            /* RFC 1929 says version 1; some servers echo 5. */
            if (avail >= 1 && b[0] != 1 && b[0] != 5)
                return fail(p, WG_EPROTO, "socks5: bad auth reply version %d", b[0]);
            if (avail < 2)
                goto again;
            off += 2;
            if (b[1] != 0)
                return fail(p, WG_EPERM, "socks5: authentication failed (status %d)", b[1]);
            if ((rv = socks_send_connect(p, out)) != 0)
                return fail(p, rv, "socks5: out of memory");
            break;
        case ST_SOCKS_CONNECT: {
            size_t need;
            if (avail >= 1 && b[0] != 5)
                return fail(p, WG_EPROTO, "socks5: bad version %d in connect reply", b[0]);
            if (avail >= 2 && b[1] != 0) {
                snprintf(p->err, sizeof(p->err), "socks5: %s (reply %d)", socks_reply_text(b[1]),
                         b[1]);
                p->st = ST_FAILED;
                return WG_EIO;
            }
            if (avail >= 3 && b[2] != 0)
                return fail(p, WG_EPROTO, "socks5: reserved byte %d in connect reply", b[2]);
            if (avail < 5)
                goto again;
            switch (b[3]) {
            case 1:
                need = 4 + 4 + 2;
                break;
            case 4:
                need = 4 + 16 + 2;
                break;
            case 3:
                need = 4 + 1 + (size_t)b[4] + 2;
                break;
            default:
                return fail(p, WG_EPROTO, "socks5: bad address type %d", b[3]);
            }
            if (avail < need)
                goto again;
            off += need;
            p->st = ST_DONE;
            *consumed = off;
            return 0;
        }
        default:
            return fail(p, WG_EINVAL, "proxy: feed in wrong state %d", (int)p->st);
        }
    }
again:
    *consumed = off;
    return WG_EAGAIN;
}

static int http_feed(wg_proxy_t *p, const uint8_t *in, size_t n, size_t *consumed)
{
    wg_ws_handshake_head_t h;
    int rv = wg_ws_handshake_parse_head(in, n, 0, 0, &h, consumed);

    if (rv == WG_EAGAIN) {
        *consumed = 0;
        return rv;
    }
    if (rv == WG_EPROTO || rv == WG_ETOOBIG)
        return fail(p, WG_EPROTO, "http proxy: malformed reply to CONNECT");
    if (rv != 0)
        return fail(p, rv, "http proxy: out of memory");
    if (h.status >= 200 && h.status <= 299) {
        p->st = ST_DONE;
        rv = 0;
    } else if (h.status == 407) {
        rv = fail(p, WG_EPERM, "http proxy: %s (%d)",
                  p->user ? "authentication failed" : "authentication required", h.status);
    } else {
        rv = fail(p, WG_EIO, "http proxy: CONNECT refused with status %d", h.status);
    }
    wg_ws_handshake_head_dispose(&h);
    return rv;
}

int wg_proxy_feed(wg_proxy_t *p, const uint8_t *in, size_t n, size_t *consumed, wg_buf_t *out)
{
    *consumed = 0;
    if (p->st == ST_DONE)
        return 0;
    if (p->st == ST_FAILED || p->st == ST_START)
        return WG_EINVAL;
    if (p->type == WG_PROXY_HTTP)
        return http_feed(p, in, n, consumed);
    return socks_feed(p, in, n, consumed, out);
}
