/* ratelimit.h - token buckets keyed by a string (credential + route class).
 *
 * A bucket holds up to `per_minute` tokens and refills at per_minute/60 per second; each request
 * takes one. Time is passed in (ms, monotonic) so the module is testable. Thread-safe (one
 * mutex); shared by all HTTP threads. Memory is bounded: when the table is full, buckets that
 * are full again (indistinguishable from new ones) are dropped; if none can be dropped the
 * request is allowed (fail open) and a warning logged. */
#ifndef WG_HTTP_RATELIMIT_H
#define WG_HTTP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct wg_ratelimit wg_ratelimit_t;

wg_ratelimit_t *wg_ratelimit_new(size_t max_keys);
void wg_ratelimit_free(wg_ratelimit_t *rl);
/* 0 when allowed; WG_ELIMIT when not, with *retry_after_s (>= 1) seconds until one token is
 * back. per_minute <= 0 means unlimited. */
int wg_ratelimit_take(wg_ratelimit_t *rl, const char *key, double per_minute, int64_t now_ms,
                      int *retry_after_s);

#endif
