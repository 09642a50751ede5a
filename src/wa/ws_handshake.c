/* ws_handshake.c - WebSocket opening handshake and a small HTTP/1.x head parser (see
 * ws_handshake.h). Pure: no I/O. Heads are copied once and split in place. */
#include "wa/ws_handshake.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "util/codec.h"
#include "util/err.h"

/* RFC 6455 section 1.3 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int is_tchar(int c)
{
    /* RFC 9110 token characters */
    if (c >= '0' && c <= '9')
        return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Header field bytes we accept: visible ASCII, space, tab, and obs-text (>= 0x80). */
static int is_field_byte(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

void wg_ws_handshake_head_dispose(wg_ws_handshake_head_t *h)
{
    free(h->raw);
    memset(h, 0, sizeof(*h));
}

/* Finds the end of the head: index just past the empty line, or 0 if not there yet.
 * Accepts CRLF and bare LF line ends (RFC 9112 section 2.2 allows LF-only). */
static size_t head_end(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < n && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Cheap early rejection of bytes that can never start a valid head. */
static int prefix_ok(const uint8_t *p, size_t n, int is_request)
{
    static const char http[] = "HTTP/1.";
    size_t i;

    if (is_request) {
        for (i = 0; i < n && p[i] != ' '; i++)
            if (!is_tchar(p[i]))
                return 0;
        if (i == 0 && n > 0)
            return 0;
    } else {
        for (i = 0; i < n && i < sizeof(http) - 1; i++)
            if (p[i] != (uint8_t)http[i])
                return 0;
    }
    for (i = 0; i < n; i++)
        if (p[i] != '\r' && p[i] != '\n' && !is_field_byte(p[i]))
            return 0;
    return 1;
}

static char *trim(char *s, char **endp)
{
    char *e = *endp;
    while (*s == ' ' || *s == '\t')
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *e = 0;
    *endp = e;
    return s;
}

static int parse_version(const char *s, int *minor)
{
    if (strncmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) || s[8] != 0)
        return WG_EPROTO;
    *minor = s[7] - '0';
    return 0;
}

static int parse_start_line(char *line, int is_request, wg_ws_handshake_head_t *h)
{
    char *sp1, *sp2;

    if (is_request) {
        if ((sp1 = strchr(line, ' ')) == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL)
            return WG_EPROTO;
        *sp1 = *sp2 = 0;
        if (sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' '))
            return WG_EPROTO;
        for (char *c = line; *c; c++)
            if (!is_tchar((unsigned char)*c))
                return WG_EPROTO;
        for (char *c = sp1 + 1; *c; c++)
            if (*c == '\t' || (unsigned char)*c < 0x21)
                return WG_EPROTO;
        h->method = line;
        h->target = sp1 + 1;
        return parse_version(sp2 + 1, &h->minor_version);
    }
    if ((sp1 = strchr(line, ' ')) == NULL)
        return WG_EPROTO;
    *sp1 = 0;
    if (parse_version(line, &h->minor_version) != 0)
        return WG_EPROTO;
    if (!isdigit((unsigned char)sp1[1]) || !isdigit((unsigned char)sp1[2]) ||
        !isdigit((unsigned char)sp1[3]) || (sp1[4] != 0 && sp1[4] != ' '))
        return WG_EPROTO;
    h->status = (sp1[1] - '0') * 100 + (sp1[2] - '0') * 10 + (sp1[3] - '0');
    if (h->status < 100)
        return WG_EPROTO;
    h->reason = sp1[4] ? sp1 + 5 : sp1 + 4;
    return 0;
}

int wg_ws_handshake_parse_head(const uint8_t *p, size_t n, int is_request, size_t limit,
                               wg_ws_handshake_head_t *h, size_t *consumed)
{
    size_t end, scan = n;
    char *line, *next;
    int rv = 0;

    memset(h, 0, sizeof(*h));
    if (limit == 0)
        limit = WG_WS_MAX_HEAD;
    if (scan > limit)
        scan = limit;
    end = head_end(p, scan);
    if (!prefix_ok(p, end ? end : scan, is_request))
        return WG_EPROTO;
    if (end == 0)
        return n >= limit ? WG_ETOOBIG : WG_EAGAIN;
    if (p[0] == '\r' || p[0] == '\n')
        return WG_EPROTO;

    if ((h->raw = malloc(end + 1)) == NULL)
        return WG_ENOMEM;
    memcpy(h->raw, p, end);
    h->raw[end] = 0;

    line = h->raw;
    for (int first = 1;; first = 0) {
        char *eol = strchr(line, '\n'), *colon, *name, *value, *vend;
        next = eol + 1;
        if (eol > line && eol[-1] == '\r')
            eol--;
        *eol = 0;
        if (strchr(line, '\r')) { /* bare CR inside a line */
            rv = WG_EPROTO;
            goto out;
        }
        if (first) {
            if ((rv = parse_start_line(line, is_request, h)) != 0)
                goto out;
            line = next;
            continue;
        }
        if (*line == 0)
            break;
        if (*line == ' ' || *line == '\t' || (colon = strchr(line, ':')) == NULL) {
            rv = WG_EPROTO; /* obs-fold or not a field line */
            goto out;
        }
        if (colon == line) {
            rv = WG_EPROTO;
            goto out;
        }
        *colon = 0;
        for (name = line; *name; name++)
            if (!is_tchar((unsigned char)*name)) {
                rv = WG_EPROTO;
                goto out;
            }
        if (h->nheaders == WG_WS_MAX_HEADERS) {
            rv = WG_ETOOBIG;
            goto out;
        }
        vend = eol;
        value = trim(colon + 1, &vend);
        h->headers[h->nheaders].name = line;
        h->headers[h->nheaders].value = value;
        h->nheaders++;
        line = next;
    }
    *consumed = end;
out:
    if (rv != 0)
        wg_ws_handshake_head_dispose(h);
    return rv;
}

const char *wg_ws_handshake_head_get(const wg_ws_handshake_head_t *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    return NULL;
}

int wg_ws_handshake_head_has_token(const wg_ws_handshake_head_t *h, const char *name,
                                   const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < h->nheaders; i++) {
        const char *v = h->headers[i].value;
        if (strcasecmp(h->headers[i].name, name) != 0)
            continue;
        while (*v) {
            const char *e;
            while (*v == ' ' || *v == '\t' || *v == ',')
                v++;
            e = v;
            while (*e && *e != ',')
                e++;
            {
                const char *te = e;
                while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
                    te--;
                if ((size_t)(te - v) == tl && strncasecmp(v, token, tl) == 0)
                    return 1;
            }
            v = e;
        }
    }
    return 0;
}

void wg_ws_handshake_key(const uint8_t nonce[16], char key_out[WG_WS_KEY_LEN + 1])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)nonce[i] << 16 | (uint32_t)nonce[i + 1] << 8 | nonce[i + 2];
        key_out[o++] = b64[v >> 18 & 63];
        key_out[o++] = b64[v >> 12 & 63];
        key_out[o++] = b64[v >> 6 & 63];
        key_out[o++] = b64[v & 63];
    }
    key_out[o++] = b64[nonce[15] >> 2];
    key_out[o++] = b64[(nonce[15] & 3) << 4];
    key_out[o++] = '=';
    key_out[o++] = '=';
    key_out[o] = 0;
}

int wg_ws_handshake_accept(const char *key, char accept_out[WG_WS_ACCEPT_LEN + 1])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    char cat[256 + sizeof(ws_guid)];
    unsigned int mdlen = 0;
    size_t kl;
    char *b;

    if (key == NULL || (kl = strlen(key)) > 256)
        return WG_EINVAL;
    memcpy(cat, key, kl);
    memcpy(cat + kl, ws_guid, sizeof(ws_guid) - 1);
    if (!EVP_Digest(cat, kl + sizeof(ws_guid) - 1, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return WG_EINVAL;
    if ((b = wg_base64_encode(md, mdlen)) == NULL)
        return WG_ENOMEM;
    memcpy(accept_out, b, WG_WS_ACCEPT_LEN);
    accept_out[WG_WS_ACCEPT_LEN] = 0;
    free(b);
    return 0;
}

static int safe_value(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

static int safe_name(const char *s)
{
    if (*s == 0)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

int wg_ws_handshake_request(wg_buf_t *out, const wg_ws_handshake_req_t *req)
{
    const char *path = req->path && *req->path ? req->path : "/";
    int rv;

    if (!req->host || !req->key || !safe_value(req->host) || !safe_value(path) ||
        strchr(path, ' ') || !safe_value(req->key) || (req->origin && !safe_value(req->origin)))
        return WG_EINVAL;
    for (size_t i = 0; i < req->nextra; i++)
        if (!safe_name(req->extra[i].name) || !req->extra[i].value ||
            !safe_value(req->extra[i].value))
            return WG_EINVAL;
    rv = wg_buf_printf(out,
                       "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n",
                       path, req->host, req->key);
    if (rv == 0 && req->origin)
        rv = wg_buf_printf(out, "Origin: %s\r\n", req->origin);
    for (size_t i = 0; rv == 0 && i < req->nextra; i++)
        rv = wg_buf_printf(out, "%s: %s\r\n", req->extra[i].name, req->extra[i].value);
    if (rv == 0)
        rv = wg_buf_append_str(out, "\r\n");
    return rv;
}

int wg_ws_handshake_parse_response(const uint8_t *p, size_t n, const char *key, size_t *consumed,
                                   int *status, const char **why)
{
    wg_ws_handshake_head_t h;
    char want[WG_WS_ACCEPT_LEN + 1];
    const char *accept, *reason = NULL;
    int rv;

    if (status)
        *status = 0;
    rv = wg_ws_handshake_parse_head(p, n, 0, 0, &h, consumed);
    if (rv == WG_EPROTO)
        reason = "malformed HTTP response";
    else if (rv == WG_ETOOBIG) {
        reason = "HTTP response head too large";
        rv = WG_EPROTO;
    }
    if (rv != 0)
        goto out;
    if (status)
        *status = h.status;
    rv = WG_EPROTO;
    if (h.status != 101)
        reason = "server did not switch protocols";
    else if (!wg_ws_handshake_head_has_token(&h, "Upgrade", "websocket"))
        reason = "missing Upgrade: websocket";
    else if (!wg_ws_handshake_head_has_token(&h, "Connection", "upgrade"))
        reason = "missing Connection: Upgrade";
    else if ((accept = wg_ws_handshake_head_get(&h, "Sec-WebSocket-Accept")) == NULL)
        reason = "missing Sec-WebSocket-Accept";
    else if (wg_ws_handshake_accept(key, want) != 0 || strcmp(accept, want) != 0)
        reason = "bad Sec-WebSocket-Accept";
    else if (wg_ws_handshake_head_get(&h, "Sec-WebSocket-Extensions"))
        reason = "server chose an extension we did not offer"; /* RFC 6455 4.1 item 5 */
    else if (wg_ws_handshake_head_get(&h, "Sec-WebSocket-Protocol"))
        reason = "server chose a subprotocol we did not offer";
    else
        rv = 0;
    wg_ws_handshake_head_dispose(&h);
out:
    if (why)
        *why = reason;
    return rv;
}

int wg_ws_handshake_parse_request(const uint8_t *p, size_t n, wg_ws_handshake_head_t *h,
                                  const char **key_out, size_t *consumed, const char **why)
{
    const char *key, *ver, *reason = NULL;
    uint8_t raw[32];
    int rv;

    rv = wg_ws_handshake_parse_head(p, n, 1, 0, h, consumed);
    if (rv == WG_EPROTO)
        reason = "malformed HTTP request";
    else if (rv == WG_ETOOBIG)
        reason = "HTTP request head too large";
    if (rv != 0)
        goto out;
    rv = WG_EPROTO;
    key = wg_ws_handshake_head_get(h, "Sec-WebSocket-Key");
    ver = wg_ws_handshake_head_get(h, "Sec-WebSocket-Version");
    if (strcmp(h->method, "GET") != 0)
        reason = "method is not GET";
    else if (h->minor_version < 1)
        reason = "HTTP/1.1 required";
    else if (!wg_ws_handshake_head_get(h, "Host"))
        reason = "missing Host";
    else if (!wg_ws_handshake_head_has_token(h, "Upgrade", "websocket"))
        reason = "missing Upgrade: websocket";
    else if (!wg_ws_handshake_head_has_token(h, "Connection", "upgrade"))
        reason = "missing Connection: Upgrade";
    else if (!ver || strcmp(ver, "13") != 0)
        reason = "unsupported Sec-WebSocket-Version";
    else if (!key || strlen(key) != WG_WS_KEY_LEN ||
             wg_base64_decode(key, WG_WS_KEY_LEN, raw, sizeof(raw)) != 16)
        reason = "bad Sec-WebSocket-Key";
    else {
        *key_out = key;
        rv = 0;
    }
    if (rv != 0)
        wg_ws_handshake_head_dispose(h);
out:
    if (why)
        *why = reason;
    return rv;
}

int wg_ws_handshake_response(wg_buf_t *out, const char *key)
{
    char acc[WG_WS_ACCEPT_LEN + 1];
    int rv;
    if ((rv = wg_ws_handshake_accept(key, acc)) != 0)
        return rv;
    return wg_buf_printf(out,
                         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                         acc);
}

int wg_ws_handshake_reject(wg_buf_t *out, int status)
{
    const char *reason;
    if (status < 400 || status > 599)
        return WG_EINVAL;
    switch (status) {
    case 400:
        reason = "Bad Request";
        break;
    case 403:
        reason = "Forbidden";
        break;
    case 404:
        reason = "Not Found";
        break;
    case 426:
        reason = "Upgrade Required";
        break;
    case 503:
        reason = "Service Unavailable";
        break;
    default:
        reason = "Error";
        break;
    }
    return wg_buf_printf(out, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: 0\r\n%s\r\n",
                         status, reason,
                         status == 426 || status == 400 ? "Sec-WebSocket-Version: 13\r\n" : "");
}
