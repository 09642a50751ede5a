/* buf.h - growable byte buffer with an optional hard limit.
 *
 * A wg_buf_t is embedded by its owner: wg_buf_init() / wg_buf_dispose(). data is always
 * NUL-terminated past len (so text can be used as a C string), but may hold binary bytes.
 * limit 0 means unlimited; crossing a non-zero limit returns WG_ETOOBIG and leaves the
 * buffer unchanged. */
#ifndef WG_UTIL_BUF_H
#define WG_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit;
} wg_buf_t;

void wg_buf_init(wg_buf_t *b, size_t limit);
void wg_buf_dispose(wg_buf_t *b);
/* Ensures room for `extra` more bytes; 0, WG_ENOMEM or WG_ETOOBIG. */
int wg_buf_reserve(wg_buf_t *b, size_t extra);
int wg_buf_append(wg_buf_t *b, const void *p, size_t n);
int wg_buf_append_str(wg_buf_t *b, const char *s);
int wg_buf_append_byte(wg_buf_t *b, uint8_t c);
int wg_buf_printf(wg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void wg_buf_consume(wg_buf_t *b, size_t n);
void wg_buf_reset(wg_buf_t *b);
/* Hands the bytes to the caller (free() them); the buffer is left empty. */
uint8_t *wg_buf_steal(wg_buf_t *b, size_t *len);

#endif
