/* jid.c - JID text parsing and formatting (see jid.h). No allocation except wg_jid_to_string. */
#include "wa/jid.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Decimal without sign or leading zeros, at most `max`. */
static int parse_uint(const char *s, size_t n, unsigned max, unsigned *out)
{
    unsigned v = 0;
    size_t i;

    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return WG_EINVAL;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return WG_EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return WG_EINVAL;
    *out = v;
    return 0;
}

static int view_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

static int is_domain_byte(unsigned v)
{
    return v == WG_JID_DOMAIN_WA || v == WG_JID_DOMAIN_LID || v == WG_JID_DOMAIN_HOSTED ||
           v == WG_JID_DOMAIN_HOSTED_LID;
}

int wg_jid_parse(const char *s, size_t len, wg_jid_t *out)
{
    const char *at, *colon, *dash, *server, *user, *us;
    size_t server_len, user_len;
    unsigned dev = 0, agent = 0, integ = 0;
    int has_dev = 0, has_agent = 0;

    if (!s || memchr(s, '\0', len))
        return WG_EINVAL;
    at = memchr(s, '@', len);
    if (!at)
        return WG_EINVAL;
    server = at + 1;
    server_len = len - (size_t)(server - s);
    if (server_len == 0 || memchr(server, '@', server_len))
        return WG_EINVAL;
    user = s;
    user_len = (size_t)(at - s);
    memset(out, 0, sizeof(*out));
    out->server = server;
    out->server_len = server_len;
    colon = memchr(user, ':', user_len);

    if (view_is(server, server_len, "interop") && colon) {
        /* "integrator-user:device@interop" */
        dash = memchr(user, '-', (size_t)(colon - user));
        if (!dash || parse_uint(user, (size_t)(dash - user), 0xffff, &integ) != 0)
            return WG_EINVAL;
        us = dash + 1;
        if (colon == us || parse_uint(colon + 1, user_len - (size_t)(colon + 1 - user), 0xffff, &dev) != 0)
            return WG_EINVAL;
        out->type = WG_JID_INTEROP;
        out->user = us;
        out->user_len = (size_t)(colon - us);
        out->device = (uint16_t)dev;
        out->integrator = (uint16_t)integ;
        return 0;
    }
    if (view_is(server, server_len, "msgr") && colon) {
        if (parse_uint(colon + 1, user_len - (size_t)(colon + 1 - user), 0xffff, &dev) != 0)
            return WG_EINVAL;
        out->type = WG_JID_FB;
        out->user = user;
        out->user_len = (size_t)(colon - user);
        out->device = (uint16_t)dev;
        return 0;
    }
    if (colon) {
        if (parse_uint(colon + 1, user_len - (size_t)(colon + 1 - user), 255, &dev) != 0)
            return WG_EINVAL;
        has_dev = 1;
        user_len = (size_t)(colon - user);
    }
    if (view_is(server, server_len, "s.whatsapp.net")) {
        /* A trailing "_<digits>" is a raw agent byte (Baileys' jidDecode). */
        const char *us_end = user + user_len, *p = us_end;
        while (p > user && p[-1] >= '0' && p[-1] <= '9')
            p--;
        if (p < us_end && p > user && p[-1] == '_') {
            if (parse_uint(p, (size_t)(us_end - p), 255, &agent) != 0 || is_domain_byte(agent))
                return WG_EINVAL;
            has_agent = 1;
            user_len = (size_t)(p - 1 - user);
        }
        out->domain = (uint8_t)(has_agent ? agent : WG_JID_DOMAIN_WA);
    } else if (view_is(server, server_len, "lid")) {
        out->domain = WG_JID_DOMAIN_LID;
    } else if (view_is(server, server_len, "hosted")) {
        out->domain = WG_JID_DOMAIN_HOSTED;
        has_dev = 1; /* hosted JIDs always travel as AD_JID (whatsmeow) */
    } else if (view_is(server, server_len, "hosted.lid")) {
        out->domain = WG_JID_DOMAIN_HOSTED_LID;
        has_dev = 1;
    } else if (has_dev) {
        return WG_EINVAL; /* AD_JID cannot name this server */
    }
    out->user = user;
    out->user_len = user_len;
    out->device = (uint16_t)dev;
    out->type = (has_dev || has_agent) ? WG_JID_AD : WG_JID_PAIR;
    return 0;
}

int wg_jid_format(const wg_jid_t *j, wg_buf_t *out)
{
    int rv;

    switch (j->type) {
    case WG_JID_PAIR:
        if ((rv = wg_buf_append(out, j->user, j->user_len)) != 0)
            return rv;
        break;
    case WG_JID_AD:
        if ((rv = wg_buf_append(out, j->user, j->user_len)) != 0)
            return rv;
        if (!is_domain_byte(j->domain) && (rv = wg_buf_printf(out, "_%u", j->domain)) != 0)
            return rv;
        if (j->device != 0 && (rv = wg_buf_printf(out, ":%u", j->device)) != 0)
            return rv;
        break;
    case WG_JID_FB:
        if ((rv = wg_buf_append(out, j->user, j->user_len)) != 0 ||
            (rv = wg_buf_printf(out, ":%u", j->device)) != 0)
            return rv;
        break;
    case WG_JID_INTEROP:
        if ((rv = wg_buf_printf(out, "%u-", j->integrator)) != 0 ||
            (rv = wg_buf_append(out, j->user, j->user_len)) != 0 ||
            (rv = wg_buf_printf(out, ":%u", j->device)) != 0)
            return rv;
        break;
    default:
        return WG_EINVAL;
    }
    if ((rv = wg_buf_append_byte(out, '@')) != 0)
        return rv;
    return wg_buf_append(out, j->server, j->server_len);
}

char *wg_jid_to_string(const wg_jid_t *jid)
{
    wg_buf_t b;
    size_t n;

    wg_buf_init(&b, 0);
    if (wg_jid_format(jid, &b) != 0) {
        wg_buf_dispose(&b);
        return NULL;
    }
    if (b.len == 0 && wg_buf_reserve(&b, 1) != 0) {
        wg_buf_dispose(&b);
        return NULL;
    }
    return (char *)wg_buf_steal(&b, &n);
}

int wg_jid_server_is(const wg_jid_t *jid, const char *server)
{
    return view_is(jid->server, jid->server_len, server);
}
