/* engine.h - the real WhatsApp engine behind core/engine.h.
 *
 * Threads: WAGATE_WORKERS worker threads (default: one per CPU core), each with its own
 * event_base, evdns_base, client SSL_CTX, store connection and hook context (the report
 * target: main wires a wg_core_t per worker, since a core belongs to one thread). Every
 * instance lives on one worker, chosen by a hash of its id, and is touched only there (its
 * wg_conn_t, wa/conn.h). The core's calls (start/stop/logout/pairing_code, from API threads)
 * post a command to the worker's queue and wake its loop; they never wait for it. Reports go
 * to hooks->report on the worker thread, with that worker's context.
 *
 * Shared state: only the table of current QR codes (instance id -> QR string, expiry) and
 * the table of send outcomes (token -> result), each behind a mutex, written by workers and
 * read by API threads (ops->qr, ops->send_result); hooks->changed says when either changed,
 * so a waiting request is answered then instead of at its next poll.
 *
 * The master key is loaded by the caller (wa/masterkey.h) and copied. wg_engine_free() stops
 * the workers (connections closed, no reports) and joins them. */
#ifndef WG_WA_ENGINE_H
#define WG_WA_ENGINE_H

#include <stdint.h>

#include "core/engine.h"
#include "util/config.h"

typedef struct {
    /* On worker thread `index` before its loop starts: the context reports go to (NULL =
     * failure). */
    void *(*ctx_new)(void *arg, int index);
    /* On the worker thread after its loop ended. */
    void (*ctx_free)(void *ctx);
    /* On the worker thread. */
    void (*report)(void *ctx, const wg_engine_report_t *r);
    void *arg;
    /* Optional; any thread, no engine lock held: what ops->qr, qr_count and pairing_code_state
     * answer for instance_id may have changed (token 0), or the send `token` ended and
     * ops->send_result tells its outcome now (instance_id NULL). For waking whoever waits on
     * it (main: the deferred HTTP requests); it must not block. */
    void (*changed)(void *arg, const char *instance_id, uint64_t token);
} wg_engine_hooks_t;

/* Starts the workers. cfg (borrowed, must outlive the engine): WAGATE_WA_URL,
 * WAGATE_WA_ROOT_KEY, WAGATE_DB, WAGATE_WORKERS and the engine timings. 0 and *out;
 * WG_EINVAL (bad root key or URL), WG_ENOMEM, WG_EIO (a thread, loop or store failed). */
int wg_engine_wa_new(const wg_config_t *cfg, const uint8_t master_key[32],
                     const wg_engine_hooks_t *hooks, wg_engine_t **out);

/* Instances the engine currently runs (all workers), for tests and /health. */
int wg_engine_wa_count(wg_engine_t *e);

#endif
