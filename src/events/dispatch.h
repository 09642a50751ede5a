/* dispatch.h - the outbox dispatcher: delivers pending outbox rows to each instance's webhook.
 *
 * Runs on its own thread with its own event loop, store connection and libcurl multi handle
 * driven by that loop (curl_multi_socket_action: many requests in flight, no thread per
 * request). It finds work when the database's WAL file changes (inotify on its directory:
 * a commit by any thread or process), when woken by wg_dispatch_notify, and by polling the
 * outbox every WAGATE_EVENTS_POLL_MS, so rows written anywhere, or before a crash, are found.
 *
 * Guarantees: at-least-once (a row is marked delivered only after a 2xx answer, so a crash
 * re-delivers the unmarked tail); per instance in seq order with at most one request in flight
 * per instance (a later event never overtakes an earlier one; retries hold the instance's
 * queue); instances deliver in parallel up to WAGATE_WEBHOOK_CONCURRENCY. Failures retry with
 * exponential backoff and jitter; 410 Gone, a refused address (SSRF) or exhausted attempts
 * move the row to the dead letters (state failed). Rows of an instance without a webhook URL,
 * or filtered out by its event list, are marked skipped (still readable through the API). */
#ifndef WG_EVENTS_DISPATCH_H
#define WG_EVENTS_DISPATCH_H

#include "events/metrics.h"
#include "util/config.h"

typedef struct wg_dispatch wg_dispatch_t;

/* Opens a store connection on cfg->db and starts the thread. cfg and m must outlive the
 * dispatcher. *out freed with wg_dispatch_free. WG_ESTORE, WG_ENOMEM, WG_EIO. */
int wg_dispatch_new(const wg_config_t *cfg, wg_metrics_t *m, wg_dispatch_t **out);
/* Wakes the dispatcher to look for new rows now (any thread; cheap; d may be NULL). */
void wg_dispatch_notify(wg_dispatch_t *d);
/* Stops the thread (requests in flight are abandoned: those rows stay pending and are sent
 * again next time), records outcomes already known, closes the store. NULL is a no-op. */
void wg_dispatch_free(wg_dispatch_t *d);

#endif
