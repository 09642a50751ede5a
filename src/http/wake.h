/* wake.h - the server's side of http.h's wake keys: a process-wide table of (key -> deferred
 * request) registrations, so that wg_http_wake(key), called on any thread, reaches the requests
 * that watch key on their own loops.
 *
 * The table holds watchers the caller embeds (no allocation, nothing to fail); fn(arg) is called
 * with the table lock held, so once wg_http_watcher_del() has returned, fn is never called for
 * that watcher again and its arg may be freed. That is the whole lifetime rule: a notifier holds
 * only a key (a number), never a pointer to a request, so a request that has ended (client gone,
 * timeout) is simply not found. fn must be quick and must not call back into this table
 * (server.c: event_active() on the request's event, which only queues it on its loop).
 *
 * No libevent here: the server passes fn; unit tests pass their own. */
#ifndef WG_HTTP_WAKE_H
#define WG_HTTP_WAKE_H

#include <stdint.h>

typedef struct wg_http_watcher {
    struct wg_http_watcher *next; /* table chain (owned by the table while added) */
    uint64_t key;
    void (*fn)(void *arg);
    void *arg;
    int added;
} wg_http_watcher_t;

/* Adds w (key, fn, arg set by the caller; w must stay put until wg_http_watcher_del). */
void wg_http_watcher_add(wg_http_watcher_t *w);
/* Removes w if added; afterwards fn(arg) is not running and will not run for w. */
void wg_http_watcher_del(wg_http_watcher_t *w);
/* Watchers currently added (tests: every request ended must have left the table). */
int wg_http_watcher_count(void);

#endif
