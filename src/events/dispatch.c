/* dispatch.c - see dispatch.h. The libcurl multi interface is driven by this thread's libevent
 * loop the way curl's docs/examples/hiperfifo.c does it: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to time out (CURLMOPT_TIMERFUNCTION); the loop calls
 * curl_multi_socket_action back. Connections are kept in the multi handle's cache, so a busy
 * webhook gets keep-alive reuse.
 *
 * Outcomes are committed in batches every FLUSH_MS (and before any refill or scan).
 * Per instance: a batch of its oldest pending rows (by seq), at most one request in flight, a
 * retry timer, its webhook settings (kept while idle, so instance.deleted, written when the
 * row with the settings is gone, still reaches the webhook). The head row is not left until it has
 * an outcome (delivered, failed, skipped), which is what keeps the order. An instance refills its
 * batch only after the outcomes are written, so it never re-reads a row it has delivered. Addresses
 * are checked at connect time (open-socket callback, events/ssrf.h), after curl resolved the name:
 * DNS rebinding cannot slip through. */
#include "events/dispatch.h"
#include "events/envelope.h"
#include "events/ssrf.h"
#include "events/webhook.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

#define NBUCKETS 256
#define BATCH 64
#define FLUSH_MS 20
/* the outcome commit's wait for the write lock: short, as a failed flush is retried every
 * FLUSH_MS from the loop (the loop stalls for at most this while the engines commit) */
#define BUSY_MS 250

typedef struct inst inst_t;

typedef struct {
    inst_t *in;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body, *url;
    int refused; /* the open-socket callback refused the address */
    char errbuf[CURL_ERROR_SIZE];
} delivery_t;

struct inst {
    inst_t *hnext, *rnext;
    struct wg_dispatch *d;
    char id[64];
    wg_webhook_cfg_t cfg;
    wg_envelope_inst_t ident; /* name, JID, owner, dialect: what the envelopes show */
    int have_cfg;
    wg_outbox_row_t *rows;
    size_t nrows, pos;
    delivery_t *inflight;
    struct event *timer;
    int timer_armed, queued;
    int gone; /* the instance row no longer exists */
};

typedef struct {
    char id[64];
    const char *state; /* static */
    int attempts;
    int64_t next_at;
    char *err;
} mark_t;

struct wg_dispatch {
    const wg_config_t *cfg;
    wg_metrics_t *m;
    wg_store_t *st;
    struct event_base *base;
    struct event *poll_ev, *wake_ev, *stop_ev, *curl_timer, *flush_ev, *soon_ev, *ino_ev;
    int ino_fd;
    char wal_name[256];   /* basename of the database's WAL file */
    char server_url[512]; /* Evolution's server_url (WAGATE_PUBLIC_URL or from the listen) */
    CURLM *multi;
    pthread_t th;
    int started;
    inst_t *buckets[NBUCKETS];
    inst_t *ready_head, *ready_tail;
    int inflight;
    mark_t *marks;
    size_t nmarks, capmarks;
    int marks_stalled; /* a flush failed: instances wait for the retry (then a scan) */
};

static void pump(inst_t *in);

static uint32_t rnd32(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)clock();
    return r;
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % NBUCKETS;
}

static inst_t *inst_find(wg_dispatch_t *d, const char *id)
{
    for (inst_t *in = d->buckets[hash(id)]; in; in = in->hnext)
        if (!strcmp(in->id, id))
            return in;
    return NULL;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    inst_t *in = arg;
    (void)fd;
    (void)what;
    in->timer_armed = 0;
    pump(in);
}

static inst_t *inst_new(wg_dispatch_t *d, const char *id)
{
    inst_t *in = calloc(1, sizeof(*in));
    if (!in)
        return NULL;
    snprintf(in->id, sizeof(in->id), "%s", id);
    in->d = d;
    if (!(in->timer = evtimer_new(d->base, timer_cb, in))) {
        free(in);
        return NULL;
    }
    unsigned h = hash(id);
    in->hnext = d->buckets[h];
    d->buckets[h] = in;
    return in;
}

static void inst_free(inst_t *in)
{
    wg_dispatch_t *d = in->d;
    inst_t **pp = &d->buckets[hash(in->id)];
    while (*pp && *pp != in)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = in->hnext;
    if (in->queued) {
        inst_t **rp = &d->ready_head, *prev = NULL;
        while (*rp && *rp != in) {
            prev = *rp;
            rp = &(*rp)->rnext;
        }
        if (*rp)
            *rp = in->rnext;
        if (d->ready_tail == in)
            d->ready_tail = prev;
    }
    event_free(in->timer);
    wg_outbox_list_free(in->rows, in->nrows);
    wg_webhook_cfg_dispose(&in->cfg);
    wg_envelope_inst_dispose(&in->ident);
    free(in);
}

/* ---- outcomes ---- */

static void mark(wg_dispatch_t *d, const wg_outbox_row_t *r, const char *state, int attempts,
                 int64_t next_at, const char *err)
{
    if (d->nmarks == d->capmarks) {
        size_t nc = d->capmarks ? d->capmarks * 2 : 256;
        mark_t *nm = realloc(d->marks, nc * sizeof(*nm));
        if (!nm) {
            /* the row stays pending in the store: delivered again later (at-least-once) */
            wg_log(WG_LOG_ERROR, "events", "instance=%s event=%s outcome not recorded (oom)",
                   r->instance_id, r->id);
            return;
        }
        d->marks = nm;
        d->capmarks = nc;
    }
    mark_t *m = &d->marks[d->nmarks++];
    if (!evtimer_pending(d->flush_ev, NULL)) {
        /* outcomes are written in batches (one commit per FLUSH_MS): a commit waits for the
         * disk, and delivering does not need to wait for it (an unrecorded outcome is only a
         * duplicate after a crash, never a loss) */
        struct timeval tv = {0, FLUSH_MS * 1000};
        evtimer_add(d->flush_ev, &tv);
    }
    snprintf(m->id, sizeof(m->id), "%s", r->id);
    m->state = state;
    m->attempts = attempts;
    m->next_at = next_at;
    m->err = err ? strdup(err) : NULL;
}

/* Commits the outcomes collected so far: 0 when they are recorded (or there were none). When
 * the commit fails (the write lock not got within the busy timeout while the engine threads
 * commit non-stop, or a full disk) they are KEPT and retried every FLUSH_MS: dropping them
 * would leave delivered rows pending, and the next refill would deliver them again. Callers
 * that re-read rows (refill, scan) must not do so until this returned 0. */
static int flush_marks(wg_dispatch_t *d)
{
    wg_outbox_mark_t *v;
    int rv;
    if (!d->nmarks)
        return 0;
    if (!(v = calloc(d->nmarks, sizeof(*v))))
        rv = WG_ENOMEM;
    else {
        for (size_t i = 0; i < d->nmarks; i++)
            v[i] = (wg_outbox_mark_t){d->marks[i].id, d->marks[i].state, d->marks[i].attempts,
                                      d->marks[i].next_at, d->marks[i].err};
        rv = wg_store_outbox_mark(d->st, v, d->nmarks);
        free(v);
    }
    if (rv) {
        struct timeval tv = {0, FLUSH_MS * 1000};
        if (!d->marks_stalled) /* once per stall: retries come every FLUSH_MS */
            wg_log(WG_LOG_WARN, "events", "outcomes not recorded yet n=%zu err=%s (kept, retried)",
                   d->nmarks, wg_strerror(rv));
        d->marks_stalled = 1;
        if (!evtimer_pending(d->flush_ev, NULL))
            evtimer_add(d->flush_ev, &tv);
        return rv;
    }
    for (size_t i = 0; i < d->nmarks; i++)
        free(d->marks[i].err);
    d->nmarks = 0;
    return 0;
}

/* ---- curl glue ---- */

static void check_done(wg_dispatch_t *d);

static void sock_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_dispatch_t *d = arg;
    int running = 0;
    int act = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(d->multi, fd, act, &running);
    check_done(d);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    wg_dispatch_t *d = userp;
    struct event *ev = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (ev) {
            event_free(ev);
            curl_multi_assign(d->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, d->base, s, kind, sock_ev_cb, d);
    } else {
        if (!(ev = event_new(d->base, s, kind, sock_ev_cb, d)))
            return -1;
        curl_multi_assign(d->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static void curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_dispatch_t *d = arg;
    int running = 0;
    (void)fd;
    (void)what;
    curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(d);
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    wg_dispatch_t *d = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(d->curl_timer);
    } else {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(d->curl_timer, &tv);
    }
    return 0;
}

static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    delivery_t *dl = clientp;
    (void)purpose;
    if (!dl->in->d->cfg->webhook_allow_private &&
        !wg_ssrf_addr_public(&a->addr, (size_t)a->addrlen)) {
        dl->refused = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t discard_cb(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

static void delivery_free(delivery_t *dl)
{
    if (!dl)
        return;
    if (dl->easy)
        curl_easy_cleanup(dl->easy);
    curl_slist_free_all(dl->hdrs);
    free(dl->body);
    free(dl->url);
    free(dl);
}

static int add_header(delivery_t *dl, const char *name, const char *val)
{
    size_t cap = strlen(name) + strlen(val) + 3;
    char *h = malloc(cap);
    if (!h)
        return WG_ENOMEM;
    snprintf(h, cap, "%s: %s", name, val);
    struct curl_slist *n = curl_slist_append(dl->hdrs, h);
    free(h);
    if (!n)
        return WG_ENOMEM;
    dl->hdrs = n;
    return 0;
}

/* The instance's own headers first (core/ refused names that would collide with ours), then
 * the dialect's, then ours. */
static int add_headers(delivery_t *dl, const wg_webhook_cfg_t *c, const wg_envelope_t *env)
{
    for (size_t i = 0; i < c->nhdrs; i++)
        if (add_header(dl, c->hdr_names[i], c->hdr_values[i]))
            return WG_ENOMEM;
    for (size_t i = 0; i < env->nhdr; i++)
        if (add_header(dl, env->hdr[i].name, env->hdr[i].value))
            return WG_ENOMEM;
    return 0;
}

/* Starts the request for the head row. 0, or an error (nothing in flight then). */
static int start(inst_t *in, const wg_outbox_row_t *r)
{
    wg_dispatch_t *d = in->d;
    delivery_t *dl = calloc(1, sizeof(*dl));
    wg_envelope_t env;
    size_t blen = 0;
    char ts[32], sig[80];
    int rv = WG_ENOMEM;
    if (!dl)
        return WG_ENOMEM;
    dl->in = in;
    /* rendered now, in the instance's dialect as it is stored at this moment */
    if ((rv = wg_envelope_render(&in->ident, &in->cfg, d->server_url, r, &env)) != 0)
        goto out;
    dl->body = env.body; /* the delivery owns the body from here */
    blen = env.len;
    env.body = NULL;
    if ((rv = wg_webhook_url(&in->cfg, env.url_part, &dl->url)) != 0)
        goto out;
    rv = WG_ENOMEM;
    snprintf(ts, sizeof(ts), "%lld", (long long)(wg_store_now_ms() / 1000));
    if (add_headers(dl, &in->cfg, &env) || add_header(dl, "Content-Type", "application/json") ||
        add_header(dl, "Expect", "") || add_header(dl, "X-Wagate-Event", r->event) ||
        add_header(dl, "X-Wagate-Delivery", r->id) || add_header(dl, "X-Wagate-Timestamp", ts))
        goto out;
    if (in->cfg.secret) {
        wg_webhook_sign(in->cfg.secret, dl->body, blen, sig, sizeof(sig));
        if (add_header(dl, "X-Wagate-Signature", sig))
            goto out;
        /* the same signature under EnviaAI's name, for native (EnviaAI-compatible) instances */
        if (env.enviaai_sig && add_header(dl, "x-enviaai-signature", sig))
            goto out;
    }
    if (!(dl->easy = curl_easy_init()))
        goto out;
    CURL *e = dl->easy;
    curl_easy_setopt(e, CURLOPT_URL, dl->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, dl->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)blen);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, dl->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "wagate/" WG_VERSION);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->cfg->webhook_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->cfg->webhook_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (d->cfg->webhook_ca && *d->cfg->webhook_ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, d->cfg->webhook_ca);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, dl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, dl->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, dl);
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
        rv = WG_EIO;
        goto out;
    }
    in->inflight = dl;
    d->inflight++;
    return 0;
out:
    delivery_free(dl);
    return rv;
}

/* The head row of in failed (err): retry later or dead-letter it. */
static void failed_attempt(inst_t *in, const char *err, int final)
{
    wg_dispatch_t *d = in->d;
    wg_outbox_row_t *r = &in->rows[in->pos];
    int max = in->cfg.max_attempts ? in->cfg.max_attempts : d->cfg->webhook_max_attempts;
    r->attempts++;
    if (final || r->attempts >= max) {
        mark(d, r, "failed", r->attempts, 0, err);
        wg_metrics_dead(d->m);
        wg_log(WG_LOG_WARN, "events", "instance=%s event=%s dead-lettered attempts=%d err=\"%s\"",
               in->id, r->id, r->attempts, err);
        in->pos++;
        return;
    }
    int64_t delay = wg_webhook_backoff_ms(r->attempts, d->cfg->webhook_backoff_ms,
                                          d->cfg->webhook_backoff_max_ms, rnd32());
    r->next_attempt_at = wg_store_now_ms() + delay;
    mark(d, r, "pending", r->attempts, r->next_attempt_at, err);
    wg_metrics_retried(d->m);
    wg_log(WG_LOG_INFO, "events",
           "instance=%s event=%s attempt=%d failed err=\"%s\" retry_in_ms=%lld", in->id, r->id,
           r->attempts, err, (long long)delay);
}

static void drain_ready(wg_dispatch_t *d)
{
    while (d->ready_head && d->inflight < d->cfg->webhook_concurrency) {
        inst_t *in = d->ready_head;
        d->ready_head = in->rnext;
        if (!d->ready_head)
            d->ready_tail = NULL;
        in->rnext = NULL;
        in->queued = 0;
        pump(in);
    }
}

static void finish(wg_dispatch_t *d, delivery_t *dl, CURLcode res)
{
    inst_t *in = dl->in;
    wg_outbox_row_t *r = &in->rows[in->pos];
    long code = 0;
    char err[160];
    curl_easy_getinfo(dl->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(d->multi, dl->easy);
    in->inflight = NULL;
    d->inflight--;
    if (res == CURLE_OK && code >= 200 && code < 300) {
        mark(d, r, "delivered", r->attempts + 1, 0, NULL);
        wg_metrics_delivered(d->m, wg_store_now_ms() - r->created_at);
        in->pos++;
    } else if (dl->refused) {
        failed_attempt(in, "address not allowed (private, loopback or link-local)", 1);
    } else if (res != CURLE_OK) {
        snprintf(err, sizeof(err), "%.150s", dl->errbuf[0] ? dl->errbuf : curl_easy_strerror(res));
        failed_attempt(in, err, 0);
    } else {
        snprintf(err, sizeof(err), "HTTP %ld", code);
        failed_attempt(in, err, code == 410);
    }
    delivery_free(dl);
}

static void check_done(wg_dispatch_t *d)
{
    CURLMsg *msg;
    int left = 0, any = 0;
    inst_t *done[64];
    size_t ndone = 0;
    do {
        ndone = 0;
        while (ndone < 64 && (msg = curl_multi_info_read(d->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            delivery_t *dl = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&dl);
            CURLcode res = msg->data.result;
            done[ndone++] = dl->in;
            finish(d, dl, res);
            any = 1;
        }
        for (size_t i = 0; i < ndone; i++)
            pump(done[i]);
    } while (ndone == 64);
    if (any)
        drain_ready(d);
}

/* ---- per-instance queue ---- */

static int refill(inst_t *in)
{
    wg_dispatch_t *d = in->d;
    wg_instance_t row;
    int rv;
    if ((rv = flush_marks(d)) != 0)
        return rv; /* its delivered rows would read as pending: wait for the retry's scan */
    wg_outbox_list_free(in->rows, in->nrows);
    in->rows = NULL;
    in->nrows = in->pos = 0;
    rv = wg_store_instance_get(d->st, in->id, &row);
    if (rv == 0) {
        wg_webhook_cfg_t c;
        wg_envelope_inst_t ident;
        if (wg_envelope_inst_from(&row, &ident) == 0) {
            if (wg_webhook_cfg_parse(row.webhook, row.dialect, &c) == 0) {
                wg_webhook_cfg_dispose(&in->cfg);
                wg_envelope_inst_dispose(&in->ident);
                in->cfg = c;
                in->ident = ident;
                in->have_cfg = 1;
            } else {
                wg_envelope_inst_dispose(&ident);
            }
        }
        wg_instance_dispose(&row);
    } else if (rv == WG_ENOTFOUND) {
        in->gone = 1;
    } else {
        return rv;
    }
    /* WG_ENOTFOUND: the instance is gone (its instance.deleted is among the rows); the last
     * settings seen are used, or none (the rows are skipped) if this process never saw it */
    wg_outbox_query_t q = {in->id, "pending", 0, BATCH};
    return wg_store_outbox_query(d->st, &q, &in->rows, &in->nrows);
}

static void pump(inst_t *in)
{
    wg_dispatch_t *d = in->d;
    for (;;) {
        if (in->inflight || in->timer_armed || in->queued)
            return;
        if (in->pos >= in->nrows) {
            if (refill(in) != 0)
                return; /* store trouble: the next poll tries again */
            if (in->nrows == 0) {
                /* idle: kept (with its settings) while the instance exists, so the rows
                 * written when it is deleted still go to its webhook */
                if (in->gone)
                    inst_free(in);
                return;
            }
        }
        wg_outbox_row_t *r = &in->rows[in->pos];
        if (!in->cfg.url || !wg_webhook_wants(&in->cfg, r->event)) {
            mark(d, r, "skipped", r->attempts, 0, in->cfg.url ? "filtered" : "no webhook url");
            in->pos++;
            continue;
        }
        int64_t now = wg_store_now_ms();
        if (r->next_attempt_at > now) {
            int64_t ms = r->next_attempt_at - now;
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            evtimer_add(in->timer, &tv);
            in->timer_armed = 1;
            return;
        }
        if (d->inflight >= d->cfg->webhook_concurrency) {
            in->queued = 1;
            if (d->ready_tail)
                d->ready_tail->rnext = in;
            else
                d->ready_head = in;
            d->ready_tail = in;
            return;
        }
        int rv = start(in, r);
        if (rv == 0)
            return;
        failed_attempt(in, wg_strerror(rv), 0);
    }
}

/* ---- finding work ---- */

typedef struct {
    char (*ids)[64];
    size_t n, cap;
} idlist_t;

static int collect_cb(const char *id, void *arg)
{
    idlist_t *l = arg;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        void *nv = realloc(l->ids, nc * sizeof(*l->ids));
        if (!nv)
            return WG_ENOMEM;
        l->ids = nv;
        l->cap = nc;
    }
    snprintf(l->ids[l->n++], 64, "%s", id);
    return 0;
}

static void scan(wg_dispatch_t *d)
{
    idlist_t l = {0};
    if (flush_marks(d) != 0)
        return; /* the retry scans once the outcomes are recorded */
    wg_store_outbox_pending_instances(d->st, collect_cb, &l);
    for (size_t i = 0; i < l.n; i++) {
        inst_t *in = inst_find(d, l.ids[i]);
        if (!in)
            in = inst_new(d, l.ids[i]);
        if (in) /* a no-op while it is busy: it refills itself */
            pump(in);
    }
    free(l.ids);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_dispatch_t *d = arg;
    (void)fd;
    (void)what;
    if (flush_marks(d) == 0 && d->marks_stalled) {
        /* instances that found their refill blocked went idle: start them again */
        d->marks_stalled = 0;
        wg_log(WG_LOG_INFO, "events", "outcomes recorded after retries");
        scan(d);
    }
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scan(arg);
}

/* Any write to the database by any thread or process lands in its WAL file: inotify tells us
 * and a scan follows within SOON_MS (coalescing bursts). The poll stays as the safety net. */
#define SOON_MS 5
static void ino_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_dispatch_t *d = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int hit = 0;
    ssize_t n;
    (void)what;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ie = (struct inotify_event *)p;
            if (ie->len && !strcmp(ie->name, d->wal_name))
                hit = 1;
            p += sizeof(*ie) + ie->len;
        }
    if (hit && !evtimer_pending(d->soon_ev, NULL)) {
        struct timeval tv = {0, SOON_MS * 1000};
        evtimer_add(d->soon_ev, &tv);
    }
}

static void watch_db(wg_dispatch_t *d)
{
    char dir[1024], base[512];
    snprintf(dir, sizeof(dir), "%s", d->cfg->db);
    snprintf(base, sizeof(base), "%s", d->cfg->db);
    snprintf(d->wal_name, sizeof(d->wal_name), "%s-wal", basename(base));
    d->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->ino_fd < 0 || inotify_add_watch(d->ino_fd, dirname(dir), IN_MODIFY) < 0 ||
        !(d->ino_ev = event_new(d->base, d->ino_fd, EV_READ | EV_PERSIST, ino_cb, d)) ||
        event_add(d->ino_ev, NULL) != 0)
        wg_log(WG_LOG_WARN, "events", "no inotify on the database directory: polling only");
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    wg_dispatch_t *d = arg;
    (void)fd;
    (void)what;
    event_base_loopbreak(d->base);
}

static void *thread_main(void *arg)
{
    wg_dispatch_t *d = arg;
    scan(d);
    event_base_dispatch(d->base);
    return NULL;
}

void wg_dispatch_notify(wg_dispatch_t *d)
{
    if (d && d->wake_ev)
        event_active(d->wake_ev, 0, 0);
}

int wg_dispatch_new(const wg_config_t *cfg, wg_metrics_t *m, wg_dispatch_t **out)
{
    wg_dispatch_t *d = calloc(1, sizeof(*d));
    int rv = WG_ENOMEM;
    *out = NULL;
    if (!d)
        return WG_ENOMEM;
    d->cfg = cfg;
    d->m = m;
    d->ino_fd = -1;
    wg_envelope_server_url(cfg->public_url, cfg->listen, d->server_url, sizeof(d->server_url));
    evthread_use_pthreads(); /* event_active from other threads (notify, stop) */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((rv = wg_store_open(cfg->db, &d->st)) == 0)
        wg_store_busy_timeout(d->st, BUSY_MS);
    if (rv != 0)
        goto fail;
    rv = WG_ENOMEM;
    if (!(d->base = event_base_new()) || !(d->multi = curl_multi_init()))
        goto fail;
    struct timeval tv = {cfg->events_poll_ms / 1000, (cfg->events_poll_ms % 1000) * 1000};
    if (!(d->poll_ev = event_new(d->base, -1, EV_PERSIST, poll_cb, d)) ||
        !(d->wake_ev = event_new(d->base, -1, 0, poll_cb, d)) ||
        !(d->stop_ev = event_new(d->base, -1, 0, stop_cb, d)) ||
        !(d->curl_timer = evtimer_new(d->base, curl_timer_cb, d)) ||
        !(d->flush_ev = evtimer_new(d->base, flush_cb, d)) ||
        !(d->soon_ev = evtimer_new(d->base, poll_cb, d)))
        goto fail;
    watch_db(d);
    event_add(d->poll_ev, &tv);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)cfg->webhook_concurrency);
    if (pthread_create(&d->th, NULL, thread_main, d) != 0) {
        rv = WG_EIO;
        goto fail;
    }
    d->started = 1;
    *out = d;
    return 0;
fail:
    wg_dispatch_free(d);
    return rv;
}

void wg_dispatch_free(wg_dispatch_t *d)
{
    if (!d)
        return;
    if (d->started) {
        event_active(d->stop_ev, 0, 0);
        pthread_join(d->th, NULL);
    }
    for (size_t b = 0; b < NBUCKETS; b++)
        while (d->buckets[b]) {
            inst_t *in = d->buckets[b];
            if (in->inflight) {
                curl_multi_remove_handle(d->multi, in->inflight->easy);
                delivery_free(in->inflight);
                in->inflight = NULL;
            }
            in->queued = 0;
            inst_free(in);
        }
    if (d->st)
        wg_store_busy_timeout(d->st, 5000); /* the last chance: no loop retries after this */
    if (d->st && flush_marks(d) != 0)
        wg_log(WG_LOG_ERROR, "events",
               "outcomes not recorded at exit n=%zu (delivered again after the restart)",
               d->nmarks);
    for (size_t i = 0; i < d->nmarks; i++)
        free(d->marks[i].err);
    free(d->marks);
    if (d->multi)
        curl_multi_cleanup(d->multi); /* may call sock_cb REMOVE: events still exist */
    if (d->curl_timer)
        event_free(d->curl_timer);
    if (d->flush_ev)
        event_free(d->flush_ev);
    if (d->soon_ev)
        event_free(d->soon_ev);
    if (d->ino_ev)
        event_free(d->ino_ev);
    if (d->ino_fd >= 0)
        close(d->ino_fd);
    if (d->poll_ev)
        event_free(d->poll_ev);
    if (d->wake_ev)
        event_free(d->wake_ev);
    if (d->stop_ev)
        event_free(d->stop_ev);
    if (d->base)
        event_base_free(d->base);
    wg_store_close(d->st);
    free(d);
}
