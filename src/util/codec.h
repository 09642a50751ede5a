/* codec.h - hex and base64 (standard alphabet, padded) encoders/decoders, and random bytes.
 *
 * Encoders return a malloc'd NUL-terminated string (caller frees) or NULL on ENOMEM.
 * Decoders write into a caller buffer and return the byte count, or WG_EINVAL for bad input,
 * WG_ETOOBIG when `cap` is too small. */
#ifndef WG_UTIL_CODEC_H
#define WG_UTIL_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

char *wg_hex_encode(const uint8_t *p, size_t n);
ssize_t wg_hex_decode(const char *s, size_t slen, uint8_t *out, size_t cap);

char *wg_base64_encode(const uint8_t *p, size_t n);
/* Accepts padded or unpadded standard base64; no whitespace. */
ssize_t wg_base64_decode(const char *s, size_t slen, uint8_t *out, size_t cap);

/* Cryptographically secure random bytes (OpenSSL RAND_bytes); 0 or WG_EIO. */
int wg_random_bytes(uint8_t *out, size_t n);
/* Random token: prefix + `nbytes` random bytes as lowercase hex. Caller frees; NULL on error. */
char *wg_random_token(const char *prefix, size_t nbytes);

#endif
