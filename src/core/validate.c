/* validate.c - see validate.h. */
#include "core/validate.h"

#include <string.h>
#include <strings.h>

const char *const wg_event_names[] = {
    "qr.updated",       "connection.updated", "message.received", "message.sent",
    "message.ack",      "message.deleted",    "call.received",    "presence.updated",
    "group.updated",    "contact.updated",    "instance.deleted", NULL,
};

int wg_valid_text(const char *s, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    int visible = 0;
    if (!s)
        return 0;
    while (*p) {
        unsigned c = *p;
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len)
            return 0;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        if (len == 1 && (c < 0x20 || c == 0x7f))
            return 0;
        if (!(len == 1 && c == ' '))
            visible = 1;
        p += len;
        if (++n > max_chars)
            return 0;
    }
    return n > 0 && visible;
}

int wg_valid_e164(const char *s, char *out, size_t cap)
{
    if (!s || cap < 17)
        return 0;
    if (*s == '+')
        s++;
    size_t n = strlen(s);
    if (n < 8 || n > 15 || s[0] < '1' || s[0] > '9')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    out[0] = '+';
    memcpy(out + 1, s, n + 1);
    return 1;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

int wg_valid_http_url(const char *s)
{
    const char *p;
    if (!s || strlen(s) > 2048)
        return 0;
    for (p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
            return 0;
    if (!strncasecmp(s, "http://", 7))
        p = s + 7;
    else if (!strncasecmp(s, "https://", 8))
        p = s + 8;
    else
        return 0;
    /* authority ends at '/', '?', '#' or the end; userinfo is not allowed (it would leak
     * credentials into logs and confuses host checks). */
    const char *end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(end - p)))
        return 0;
    const char *host_end;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb || rb == p + 1)
            return 0;
        for (const char *q = p + 1; q < rb; q++)
            if (!(host_char(*q) || *q == ':'))
                return 0;
        host_end = rb + 1;
    } else {
        host_end = p;
        while (host_end < end && host_char(*host_end))
            host_end++;
        if (host_end == p || *p == '.' || *p == '-')
            return 0;
    }
    if (host_end == end)
        return 1;
    if (*host_end != ':' || host_end + 1 == end || end - host_end > 6)
        return 0;
    long port = 0;
    for (const char *q = host_end + 1; q < end; q++) {
        if (*q < '0' || *q > '9')
            return 0;
        port = port * 10 + (*q - '0');
    }
    return port >= 1 && port <= 65535;
}

int wg_valid_event(const char *s)
{
    for (int i = 0; s && wg_event_names[i]; i++)
        if (!strcmp(s, wg_event_names[i]))
            return 1;
    return 0;
}

int wg_valid_token(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 16 || n > 256)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return 0;
    return 1;
}
