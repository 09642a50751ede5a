/* webhook.h - the pure parts of webhook delivery: the per-instance webhook settings, the body
 * of an event, its signature and the retry schedule. No I/O; dispatch.c does the sending.
 *
 * wg_webhook_render is the native envelope; envelope.h renders the other dialects' envelopes
 * and calls it for native instances. */
#ifndef WG_EVENTS_WEBHOOK_H
#define WG_EVENTS_WEBHOOK_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* An instance's webhook settings parsed from its `webhook` JSON column. */
typedef struct {
    char *url;     /* NULL: no webhook */
    char *secret;  /* NULL: unsigned */
    char **events; /* filter; nevents == 0: every event */
    size_t nevents;
    int by_events;                  /* append "/<event name>" to the URL */
    int base64;                     /* inline media as base64 (no media events yet) */
    int max_attempts;               /* 0: the configured default */
    char **hdr_names, **hdr_values; /* the instance's own request headers (validated by core/) */
    size_t nhdrs;
    char dialect[24];
} wg_webhook_cfg_t;

/* Parses the column (NULL/invalid -> no webhook). `headers` {name: value} is taken as stored
 * (core/ validated it), skipping any entry that is not a string. 0 or WG_ENOMEM.
 * wg_webhook_cfg_dispose. */
int wg_webhook_cfg_parse(const char *json, const char *dialect, wg_webhook_cfg_t *out);
void wg_webhook_cfg_dispose(wg_webhook_cfg_t *c);
/* 1 when the filter lets `event` through. */
int wg_webhook_wants(const wg_webhook_cfg_t *c, const char *event);

/* The request body for row: native {id, event, instanceId, seq, timestamp, data}. *body
 * malloc'd (NUL-terminated, *len bytes). 0 or WG_ENOMEM. */
int wg_webhook_render(const wg_webhook_cfg_t *c, const wg_outbox_row_t *row, char **body,
                      size_t *len);
/* The URL to post to: by_events appends "/<event>" (event: the segment the dialect uses,
 * envelope.h url_part), before any query string. *out malloc'd; 0 or WG_ENOMEM. */
int wg_webhook_url(const wg_webhook_cfg_t *c, const char *event, char **out);
/* "sha256=" + hex HMAC-SHA256(secret, body) into out (>= 72 bytes). */
void wg_webhook_sign(const char *secret, const void *body, size_t len, char *out, size_t cap);
/* Delay before attempt number `failures + 1` after `failures` failed ones (>= 1): base doubled
 * per failure, capped, then "equal jitter": a uniform value in [d/2, d] drawn from rnd. */
int64_t wg_webhook_backoff_ms(int failures, int64_t base_ms, int64_t cap_ms, uint32_t rnd);

#endif
