/* validate.h - pure checks of user-supplied values (no I/O, no allocation unless stated).
 * Each returns 1 when the value is acceptable, 0 otherwise. */
#ifndef WG_CORE_VALIDATE_H
#define WG_CORE_VALIDATE_H

#include <stddef.h>

/* Native webhook event names, NULL-terminated. */
extern const char *const wg_event_names[];

/* Valid UTF-8 without control characters, 1..max_chars code points, not all whitespace. */
int wg_valid_text(const char *s, size_t max_chars);
/* E.164: optional '+', 8..15 digits, first digit 1-9. out (>= 17 bytes) gets "+digits". */
int wg_valid_e164(const char *s, char *out, size_t cap);
/* Absolute http:// or https:// URL with a host, optional port 1..65535, no whitespace or
 * control characters, at most 2048 bytes. */
int wg_valid_http_url(const char *s);
int wg_valid_event(const char *s);
/* Custom access token: 16..256 printable ASCII characters, no spaces. */
int wg_valid_token(const char *s);

#endif
