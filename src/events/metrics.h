/* metrics.h - the process's metrics registry (Prometheus text exposition).
 *
 * One wg_metrics_t made by main and passed down (no global state). Counters are C11 atomics,
 * so any thread adds without a lock; the scrape sums them. Figures that the database already
 * knows (events written by state, instances by status) are read from a store at scrape time,
 * which keeps them right across restarts and across every writer thread. */
#ifndef WG_EVENTS_METRICS_H
#define WG_EVENTS_METRICS_H

#include "store/store.h"

#include <stdint.h>

typedef struct wg_metrics wg_metrics_t;

/* NULL on out-of-memory. */
wg_metrics_t *wg_metrics_new(void);
void wg_metrics_free(wg_metrics_t *m);

/* Webhook delivery outcomes (m may be NULL: ignored). latency_ms: from the event's creation
 * to its successful delivery. */
void wg_metrics_delivered(wg_metrics_t *m, int64_t latency_ms);
void wg_metrics_retried(wg_metrics_t *m);
void wg_metrics_dead(wg_metrics_t *m);
/* One answered HTTP API request (route pattern or "unmatched"). */
void wg_metrics_http(wg_metrics_t *m, const char *route, int status);

/* Renders the exposition text (st may be NULL: store-derived series left out). *out malloc'd.
 * 0 or WG_ENOMEM. */
int wg_metrics_render(wg_metrics_t *m, wg_store_t *st, char **out, size_t *len);

#endif
