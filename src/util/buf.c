/* buf.c - see buf.h. */
#include "util/buf.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wg_buf_init(wg_buf_t *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

void wg_buf_dispose(wg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int wg_buf_reserve(wg_buf_t *b, size_t extra)
{
    size_t need, ncap;
    uint8_t *p;

    if (extra > SIZE_MAX - b->len - 1)
        return WG_ETOOBIG;
    need = b->len + extra + 1;
    if (b->limit && need - 1 > b->limit)
        return WG_ETOOBIG;
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if ((p = realloc(b->data, ncap)) == NULL)
        return WG_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int wg_buf_append(wg_buf_t *b, const void *p, size_t n)
{
    int rv;
    if ((rv = wg_buf_reserve(b, n)) != 0)
        return rv;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int wg_buf_append_str(wg_buf_t *b, const char *s)
{
    return wg_buf_append(b, s, strlen(s));
}

int wg_buf_append_byte(wg_buf_t *b, uint8_t c)
{
    return wg_buf_append(b, &c, 1);
}

int wg_buf_printf(wg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n, rv;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return WG_EINVAL;
    if ((rv = wg_buf_reserve(b, (size_t)n)) != 0)
        return rv;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void wg_buf_consume(wg_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = 0;
}

void wg_buf_reset(wg_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

uint8_t *wg_buf_steal(wg_buf_t *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
