/* metrics.c - see metrics.h. HTTP request counts live in a fixed open-addressed table keyed by
 * (route, status); route strings are the static patterns of the route table (or a literal),
 * so the key holds the pointer, never a copy. */
#include "events/metrics.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets_s[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                   1,     2.5,  5,     10,   30,  60,  300};
#define NBUCKETS (sizeof(buckets_s) / sizeof(buckets_s[0]))
#define HTTP_SLOTS 512

/* key = route pointer | status << 52 (user-space pointers fit in 47 bits on the platforms we
 * build for), claimed once with a compare-and-swap; 0 = free slot. */
typedef struct {
    _Atomic uint64_t key;
    _Atomic uint64_t n;
} http_slot_t;

struct wg_metrics {
    _Atomic uint64_t delivered, retried, dead;
    _Atomic uint64_t lat_bucket[NBUCKETS]; /* non-cumulative; summed at render */
    _Atomic uint64_t lat_sum_ms;
    http_slot_t http[HTTP_SLOTS];
};

wg_metrics_t *wg_metrics_new(void)
{
    return calloc(1, sizeof(wg_metrics_t));
}

void wg_metrics_free(wg_metrics_t *m)
{
    free(m);
}

void wg_metrics_delivered(wg_metrics_t *m, int64_t latency_ms)
{
    if (!m)
        return;
    if (latency_ms < 0)
        latency_ms = 0;
    atomic_fetch_add(&m->delivered, 1);
    atomic_fetch_add(&m->lat_sum_ms, (uint64_t)latency_ms);
    for (size_t i = 0; i < NBUCKETS; i++)
        if ((double)latency_ms / 1000.0 <= buckets_s[i]) {
            atomic_fetch_add(&m->lat_bucket[i], 1);
            return;
        }
    /* above the last bucket: only +Inf (count) has it */
}

void wg_metrics_retried(wg_metrics_t *m)
{
    if (m)
        atomic_fetch_add(&m->retried, 1);
}

void wg_metrics_dead(wg_metrics_t *m)
{
    if (m)
        atomic_fetch_add(&m->dead, 1);
}

void wg_metrics_http(wg_metrics_t *m, const char *route, int status)
{
    if (!m)
        return;
    if (!route)
        route = "unmatched";
    uint64_t key = (uint64_t)(uintptr_t)route | ((uint64_t)(status & 0x3ff) << 52);
    size_t h = (size_t)((key >> 3) * 0x9e3779b97f4a7c15ull >> 40);
    for (size_t k = 0; k < HTTP_SLOTS; k++) {
        http_slot_t *s = &m->http[(h + k) % HTTP_SLOTS];
        uint64_t cur = atomic_load(&s->key);
        if (cur == 0) {
            uint64_t expect = 0;
            if (atomic_compare_exchange_strong(&s->key, &expect, key))
                cur = key;
            else
                cur = expect;
        }
        if (cur == key) {
            atomic_fetch_add(&s->n, 1);
            return;
        }
    }
    /* table full: dropped (512 route x status pairs is far above what the API has) */
}

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} out_t;

static void emit(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(out_t *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        if (o->oom)
            return;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t nc = (o->cap + (size_t)n) * 2;
        char *nb = realloc(o->buf, nc);
        if (!nb) {
            o->oom = 1;
            return;
        }
        o->buf = nb;
        o->cap = nc;
    }
}

static void count_state_cb(const char *state, int64_t n, void *arg)
{
    emit(arg, "wagate_outbox_events{state=\"%s\"} %lld\n", state, (long long)n);
}

static void total_cb(const char *state, int64_t n, void *arg)
{
    (void)state;
    *(int64_t *)arg += n;
}

static void inst_cb(const char *status, int64_t n, void *arg)
{
    emit(arg, "wagate_instances{status=\"%s\"} %lld\n", status, (long long)n);
}

int wg_metrics_render(wg_metrics_t *m, wg_store_t *st, char **out, size_t *len)
{
    out_t o = {0};
    *out = NULL;
    *len = 0;
    if (!(o.buf = malloc(o.cap = 4096)))
        return WG_ENOMEM;
    o.buf[0] = 0;
    if (st) {
        int64_t total = 0;
        wg_store_outbox_counts(st, total_cb, &total);
        emit(&o, "# HELP wagate_events_written_total Events written to the outbox (all states).\n"
                 "# TYPE wagate_events_written_total counter\n"
                 "wagate_events_written_total %lld\n",
             (long long)total);
        emit(&o, "# HELP wagate_outbox_events Outbox rows by delivery state.\n"
                 "# TYPE wagate_outbox_events gauge\n");
        wg_store_outbox_counts(st, count_state_cb, &o);
        emit(&o, "# HELP wagate_instances Instances by status.\n# TYPE wagate_instances gauge\n");
        wg_store_instance_counts(st, inst_cb, &o);
    }
    emit(&o,
         "# HELP wagate_events_delivered_total Webhook deliveries answered 2xx (this process).\n"
         "# TYPE wagate_events_delivered_total counter\nwagate_events_delivered_total %llu\n"
         "# HELP wagate_events_retried_total Failed webhook attempts scheduled for retry.\n"
         "# TYPE wagate_events_retried_total counter\nwagate_events_retried_total %llu\n"
         "# HELP wagate_events_dead_lettered_total Events moved to the dead-letter table.\n"
         "# TYPE wagate_events_dead_lettered_total counter\n"
         "wagate_events_dead_lettered_total %llu\n",
         (unsigned long long)atomic_load(&m->delivered),
         (unsigned long long)atomic_load(&m->retried), (unsigned long long)atomic_load(&m->dead));
    emit(&o, "# HELP wagate_delivery_latency_seconds From event creation to 2xx delivery.\n"
             "# TYPE wagate_delivery_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        cum += atomic_load(&m->lat_bucket[i]);
        emit(&o, "wagate_delivery_latency_seconds_bucket{le=\"%g\"} %llu\n", buckets_s[i],
             (unsigned long long)cum);
    }
    uint64_t cnt = atomic_load(&m->delivered);
    emit(&o,
         "wagate_delivery_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
         "wagate_delivery_latency_seconds_sum %.3f\n"
         "wagate_delivery_latency_seconds_count %llu\n",
         (unsigned long long)cnt, (double)atomic_load(&m->lat_sum_ms) / 1000.0,
         (unsigned long long)cnt);
    emit(&o, "# HELP wagate_http_requests_total HTTP API requests by route and status.\n"
             "# TYPE wagate_http_requests_total counter\n");
    for (size_t i = 0; i < HTTP_SLOTS; i++) {
        uint64_t key = atomic_load(&m->http[i].key);
        if (!key)
            continue;
        const char *r = (const char *)(uintptr_t)(key & ((1ull << 52) - 1));
        emit(&o, "wagate_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", r,
             (int)(key >> 52), (unsigned long long)atomic_load(&m->http[i].n));
    }
    if (o.oom) {
        free(o.buf);
        return WG_ENOMEM;
    }
    *out = o.buf;
    *len = o.len;
    return 0;
}
