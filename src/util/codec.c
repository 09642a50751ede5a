/* codec.c - see codec.h. */
#include "util/codec.h"
#include "util/err.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *wg_hex_encode(const uint8_t *p, size_t n)
{
    char *s = malloc(n * 2 + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hexdig[p[i] >> 4];
        s[2 * i + 1] = hexdig[p[i] & 15];
    }
    s[2 * n] = 0;
    return s;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t wg_hex_decode(const char *s, size_t slen, uint8_t *out, size_t cap)
{
    if (slen % 2)
        return WG_EINVAL;
    if (slen / 2 > cap)
        return WG_ETOOBIG;
    for (size_t i = 0; i < slen / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return WG_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (ssize_t)(slen / 2);
}

char *wg_base64_encode(const uint8_t *p, size_t n)
{
    size_t olen = (n + 2) / 3 * 4, j = 0;
    char *s = malloc(olen + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        s[j++] = b64[(v >> 18) & 63];
        s[j++] = b64[(v >> 12) & 63];
        s[j++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        s[j++] = i + 2 < n ? b64[v & 63] : '=';
    }
    s[j] = 0;
    return s;
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

ssize_t wg_base64_decode(const char *s, size_t slen, uint8_t *out, size_t cap)
{
    size_t o = 0, i;
    uint32_t acc = 0;
    int bits = 0;

    while (slen > 0 && s[slen - 1] == '=')
        slen--;
    if (slen % 4 == 1)
        return WG_EINVAL;
    for (i = 0; i < slen; i++) {
        int v = b64val(s[i]);
        if (v < 0)
            return WG_EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return WG_ETOOBIG;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (ssize_t)o;
}

int wg_random_bytes(uint8_t *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1 ? 0 : WG_EIO;
}

char *wg_random_token(const char *prefix, size_t nbytes)
{
    uint8_t raw[64];
    char *hex, *s;
    size_t plen = prefix ? strlen(prefix) : 0;

    if (nbytes > sizeof(raw) || wg_random_bytes(raw, nbytes) != 0)
        return NULL;
    if ((hex = wg_hex_encode(raw, nbytes)) == NULL)
        return NULL;
    if ((s = malloc(plen + nbytes * 2 + 1)) != NULL) {
        memcpy(s, prefix ? prefix : "", plen);
        memcpy(s + plen, hex, nbytes * 2 + 1);
    }
    free(hex);
    return s;
}
